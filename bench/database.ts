import pg from 'pg'
import { migrate } from '../lib/index.js'
import { startEmbeddedPostgres } from '../scripts/embedded-postgres.js'
import { reserveHugePages } from './huge-pages.js'
import { seed, type DataSetShape } from './seed.js'

export interface BenchPostgres {
  connectionString: string
  /** huge_pages_status as the server reports it (PostgreSQL 17 and later; 'unknown' before), and how. */
  hugePages: string
  /** Stops the server and gives back the huge pages reserved for it. */
  stop: () => Promise<void>
}

/**
 * An embedded PostgreSQL sized for the large data set (about 400 MB with its
 * indexes): 1 GB of shared buffers, in huge pages unless `hugePages` is false
 * or they cannot be had (see huge-pages.ts). The margin holds its other shared
 * memory (200 connections).
 */
export async function startBenchPostgres (hugePages: boolean): Promise<BenchPostgres> {
  const reserved = hugePages ? reserveHugePages(1.15 * 2 ** 30) : undefined
  const embedded = await startEmbeddedPostgres({ shared_buffers: '1GB', huge_pages: reserved?.setting ?? 'off' })
  const status = await hugePagesStatus(embedded.connectionString)
  return {
    connectionString: embedded.connectionString,
    hugePages: reserved === undefined ? status : `${status}: ${reserved.note}`,
    stop: async () => {
      await embedded.stop()
      reserved?.release()
    }
  }
}

/** What the server at this URL reports of its huge pages. */
export async function hugePagesStatus (connectionString: string): Promise<string> {
  const client = new pg.Client({ connectionString })
  await client.connect()
  try {
    return await client.query('SHOW huge_pages_status').then(({ rows }) => rows[0].huge_pages_status as string, () => 'unknown')
  } finally {
    await client.end()
  }
}

/** A fresh database of this name on the server, migrated and seeded with the shape; its URL. */
export async function createDataSet (serverUrl: string, name: string, shape: DataSetShape): Promise<string> {
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
    await seed(pool, shape)
  } finally {
    await pool.end()
  }
  return url.toString()
}
