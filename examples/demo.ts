import { randomBytes } from 'node:crypto'
import Fastify, { type FastifyInstance } from 'fastify'
import { createSigner } from 'fast-jwt'
import pg from 'pg'
import activeConversations, { migrate } from '../lib/index.js'
import { startEmbeddedPostgres } from '../scripts/embedded-postgres.js'
import { DEMO_AGENT_ID, DEMO_STREAM_ID, seedDemo } from './demo-data.js'
import { registerDocs } from './docs.js'
import { startDemoWriter } from './demo-writer.js'
import { registerWallboard } from './wallboard.js'
import { registerMetricsPage, type DemoMetrics } from './metrics.js'

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
  /** Write small changes to the demo stream this often (ms), so the wallboard moves; 0 or absent: never. */
  writerIntervalMillis?: number
  /** The metrics SDK installed (examples/metrics.ts): its page is served at /metrics. */
  metrics?: DemoMetrics
}

/**
 * HOST, PORT (default 127.0.0.1:3000), DATABASE_URL (default: embedded), EMBEDDED_POSTGRES_PORT
 * (default: any free one), DEMO_JWT_SECRET (default: random), LOG_LEVEL (default info),
 * DEMO_WRITER (`off`: no changes written; default every 3 s; or a number of milliseconds).
 */
export function demoOptionsFromEnv (env: NodeJS.ProcessEnv): DemoOptions {
  return {
    host: env.HOST || '127.0.0.1',
    port: env.PORT ? Number(env.PORT) : 3000,
    databaseUrl: env.DATABASE_URL || undefined,
    embeddedPort: env.EMBEDDED_POSTGRES_PORT ? Number(env.EMBEDDED_POSTGRES_PORT) : undefined,
    jwtSecret: env.DEMO_JWT_SECRET || randomBytes(32).toString('hex'),
    logger: env.LOG_LEVEL || 'info',
    writerIntervalMillis: env.DEMO_WRITER === 'off' ? 0 : Number(env.DEMO_WRITER || 3000)
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
  /** The live floor page. */
  wallboardUrl: string
  /** The Prometheus page, when the metrics SDK is installed. */
  metricsUrl: string | undefined
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
  let stopWriter = async (): Promise<void> => {}
  const close = async (): Promise<void> => {
    await stopWriter()
    // Fastify reaps the connections that are idle when close() starts; one that finishes
    // its last response afterwards would hold the process for keepAliveTimeout (72 s).
    const reaper = setInterval(() => gateway.server.closeIdleConnections(), 100)
    await gateway.close().finally(() => clearInterval(reaper))
    await options.metrics?.shutdown()
    await embedded?.stop()
  }
  try {
    await migrate(connectionString)
    const seeding = new pg.Pool({ connectionString, max: 1 })
    await seedDemo(seeding).finally(() => seeding.end())
    await registerDocs(gateway)
    if (options.metrics !== undefined) registerMetricsPage(gateway, options.metrics.exporter)
    await gateway.register(activeConversations, { connectionString, jwt: { secret: options.jwtSecret } })

    const sign = createSigner({ key: options.jwtSecret, algorithm: 'HS256', expiresIn: 24 * 3600 * 1000 })
    const token = sign({ sub: 'demo-manager', role: 'manager', streamIds: [DEMO_STREAM_ID] })
    const floorPath = `/public/${DEMO_STREAM_ID}/analytics/manager/agents/active-conversations`
    const metricsPath = `/public/${DEMO_STREAM_ID}/analytics/manager/agent-groups/metrics`
    registerWallboard(gateway, { token, streamId: DEMO_STREAM_ID, eventsPath: `${floorPath}/events`, metricsPath: `${metricsPath}/events?serviceLevelSeconds=20` })
    const address = await gateway.listen({ host: options.host, port: options.port })
    if (options.writerIntervalMillis !== undefined && options.writerIntervalMillis > 0) {
      const writing = new pg.Pool({ connectionString, max: 1 })
      const stop = startDemoWriter(writing, options.writerIntervalMillis, (error) => { gateway.log.warn({ err: error }, 'demo writer') })
      stopWriter = async () => { await stop(); await writing.end() }
    }

    const url = `${address}/public/${DEMO_STREAM_ID}/analytics/manager/agent/${DEMO_AGENT_ID}/active-conversations`
    return {
      gateway,
      url,
      token,
      curl: `curl -s -H 'auth: ${token}' '${url}'`,
      floorCurl: `curl -s -H 'auth: ${token}' '${address}${floorPath}'`,
      docsUrl: `${address}/docs`,
      openApiUrl: `${address}/openapi.json`,
      wallboardUrl: `${address}/wallboard`,
      metricsUrl: options.metrics === undefined ? undefined : `${address}/metrics`,
      close
    }
  } catch (error) {
    await close()
    throw error
  }
}
