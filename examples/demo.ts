import { randomBytes } from 'node:crypto'
import Fastify, { type FastifyInstance } from 'fastify'
import { createSigner } from 'fast-jwt'
import pg from 'pg'
import activeConversations, { migrate } from '../lib/index.js'
import { startEmbeddedPostgres, type EmbeddedDatabase } from '../scripts/embedded-postgres.js'
import { DEMO_AGENT_ID, DEMO_STREAM_ID, seedDemo } from './demo-data.js'

export interface DemoOptions {
  host?: string
  port?: number
  /** Use this database (migrated and seeded) instead of starting an embedded one. */
  databaseUrl?: string
  logger?: boolean
}

export interface Demo {
  gateway: FastifyInstance
  /** The demo agent's active conversations. */
  url: string
  /** A manager token for the demo stream, valid for 24 hours. */
  token: string
  /** A command that prints a real answer. */
  curl: string
  close: () => Promise<void>
}

/**
 * A gateway with the plugin at the root, on a migrated and seeded database:
 * the embedded PostgreSQL unless a database URL is given.
 */
export async function startDemo (options: DemoOptions = {}): Promise<Demo> {
  const embedded: EmbeddedDatabase | undefined = options.databaseUrl ? undefined : await startEmbeddedPostgres()
  const connectionString = options.databaseUrl ?? (embedded as EmbeddedDatabase).connectionString
  const close = async (): Promise<void> => {
    await gateway.close()
    await embedded?.stop()
  }
  const gateway = Fastify({ logger: options.logger ?? false, connectionTimeout: 10_000, requestTimeout: 10_000 })
  try {
    await migrate(connectionString)
    const seeding = new pg.Pool({ connectionString, max: 1 })
    await seedDemo(seeding).finally(() => seeding.end())

    const secret = process.env.DEMO_JWT_SECRET ?? randomBytes(32).toString('hex')
    await gateway.register(activeConversations, { connectionString, jwt: { secret } })
    const address = await gateway.listen({ host: options.host ?? '127.0.0.1', port: options.port ?? 3000 })

    const sign = createSigner({ key: secret, algorithm: 'HS256', expiresIn: 24 * 3600 * 1000 })
    const token = sign({ sub: 'demo-manager', role: 'manager', streamIds: [DEMO_STREAM_ID] })
    const url = `${address}/public/${DEMO_STREAM_ID}/analytics/manager/agent/${DEMO_AGENT_ID}/active-conversations`
    return { gateway, url, token, curl: `curl -s -H 'auth: ${token}' '${url}'`, close }
  } catch (error) {
    await close()
    throw error
  }
}
