import pg from 'pg'
import { migrate } from '../lib/index.js'
import { startEmbeddedPostgres, type EmbeddedDatabase } from '../scripts/embedded-postgres.js'
import { seed, type DataSetShape } from '../support/data-sets.js'

/**
 * An embedded PostgreSQL sized for the large data set (about 400 MB with its
 * indexes) and the busy one: 2 GB of shared buffers. (Huge pages made no measurable difference:
 * BENCHMARKS.md, step 13.)
 */
export async function startBenchPostgres (settings: Record<string, string> = {}): Promise<EmbeddedDatabase> {
  return await startEmbeddedPostgres({ shared_buffers: '2GB', ...settings })
}

/** A fresh database of this name on the server, migrated and seeded with the shapes; its URL. */
export async function createDataSet (serverUrl: string, name: string, shapes: DataSetShape[]): Promise<string> {
  const admin = new pg.Client({ connectionString: serverUrl })
  await admin.connect()
  try {
    await admin.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`)
    await admin.query(`CREATE DATABASE ${name}`)
  } finally {
    await admin.end()
  }
  const url = new URL(serverUrl)
  url.pathname = `/${name}`
  await migrate(url.toString())
  const pool = new pg.Pool({ connectionString: url.toString() })
  try {
    for (const shape of shapes) await seed(pool, shape)
  } finally {
    await pool.end()
  }
  return url.toString()
}
