import { randomBytes } from 'node:crypto'
import Fastify, { type FastifyInstance } from 'fastify'
import { createSigner } from 'fast-jwt'
import pg from 'pg'
import activeConversations, { migrate } from '../lib/index.js'
import { startEmbeddedPostgres } from '../scripts/embedded-postgres.js'
import { DEMO_AGENT_ID, DEMO_STREAM_ID, seedDemo } from './demo-data.js'
import { registerDocs } from './docs.js'

export interface DemoOptions {
  host: string
  port: number
  /** Use this database (migrated and seeded) instead of starting an embedded one. */
  databaseUrl: string | undefined
  /** The embedded database's port (default: any free one). */
  embeddedPort?: number
  /** The HS256 secret the demo verifies (and signs its token) with. */
  jwtSecret: string
  /** Fastify logger level, or false for none. */
  logger: false | string
}

/**
 * HOST, PORT (default 127.0.0.1:3000), DATABASE_URL (default: embedded), EMBEDDED_POSTGRES_PORT
 * (default: any free one), DEMO_JWT_SECRET (default: random), LOG_LEVEL (default info).
 */
export function demoOptionsFromEnv (env: NodeJS.ProcessEnv): DemoOptions {
  return {
    host: env.HOST || '127.0.0.1',
    port: env.PORT ? Number(env.PORT) : 3000,
    databaseUrl: env.DATABASE_URL || undefined,
    embeddedPort: env.EMBEDDED_POSTGRES_PORT ? Number(env.EMBEDDED_POSTGRES_PORT) : undefined,
    jwtSecret: env.DEMO_JWT_SECRET || randomBytes(32).toString('hex'),
    logger: env.LOG_LEVEL || 'info'
  }
}

export interface Demo {
  gateway: FastifyInstance
  /** The demo agent's active conversations. */
  url: string
  /** A manager token for the demo stream, valid for 24 hours. */
  token: string
  /** A command that prints a real answer. */
  curl: string
  /** The same for the demo stream's floor. */
  floorCurl: string
  /** Swagger UI. */
  docsUrl: string
  /** The OpenAPI document. */
  openApiUrl: string
  /** Closes the server, then the plugin's pool, then the embedded database. */
  close: () => Promise<void>
}

/**
 * A gateway with the plugin at its root, on a migrated and seeded database:
 * the embedded PostgreSQL unless a database URL is given.
 */
export async function startDemo (options: DemoOptions): Promise<Demo> {
  const embedded = options.databaseUrl ? undefined : await startEmbeddedPostgres({}, { port: options.embeddedPort })
  const connectionString = options.databaseUrl ?? embedded?.connectionString as string
  const gateway = Fastify({ logger: options.logger === false ? false : { level: options.logger }, connectionTimeout: 10_000, requestTimeout: 10_000 })
  const close = async (): Promise<void> => {
    // Fastify reaps the connections that are idle when close() starts; one that finishes
    // its last response afterwards would hold the process for keepAliveTimeout (72 s).
    const reaper = setInterval(() => gateway.server.closeIdleConnections(), 100)
    await gateway.close().finally(() => clearInterval(reaper))
    await embedded?.stop()
  }
  try {
    await migrate(connectionString)
    const seeding = new pg.Pool({ connectionString, max: 1 })
    await seedDemo(seeding).finally(() => seeding.end())
    await registerDocs(gateway)
    await gateway.register(activeConversations, { connectionString, jwt: { secret: options.jwtSecret } })
    const address = await gateway.listen({ host: options.host, port: options.port })

    const sign = createSigner({ key: options.jwtSecret, algorithm: 'HS256', expiresIn: 24 * 3600 * 1000 })
    const token = sign({ sub: 'demo-manager', role: 'manager', streamIds: [DEMO_STREAM_ID] })
    const url = `${address}/public/${DEMO_STREAM_ID}/analytics/manager/agent/${DEMO_AGENT_ID}/active-conversations`
    const floorUrl = `${address}/public/${DEMO_STREAM_ID}/analytics/manager/agents/active-conversations`
    return { gateway, url, token, curl: `curl -s -H 'auth: ${token}' '${url}'`, floorCurl: `curl -s -H 'auth: ${token}' '${floorUrl}'`, docsUrl: `${address}/docs`, openApiUrl: `${address}/openapi.json`, close }
  } catch (error) {
    await close()
    throw error
  }
}
