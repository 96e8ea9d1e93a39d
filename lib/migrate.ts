import { createHash } from 'node:crypto'
import { existsSync } from 'node:fs'
import { readdir, readFile } from 'node:fs/promises'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import pg from 'pg'

/** Where the numbered .sql files are: the package's `migrations/`, beside lib/ or dist/ (this file is in either). */
export const MIGRATIONS_DIRECTORY = ['..', '../..']
  .map((up) => join(dirname(fileURLToPath(import.meta.url)), up, 'migrations'))
  .find((directory) => existsSync(directory)) as string

const MIGRATION_FILE = /^(\d+)_[\w-]+\.sql$/
// pg_advisory_lock key: one migrator at a time per database (any 64-bit number of our own).
const LOCK_KEY = '7306417306417306'

export interface MigrateOptions {
  /** A directory of numbered .sql files (default: the package's migrations). */
  directory?: string
}

/**
 * Applies the numbered migrations not applied yet, in order, each in its own
 * transaction, and records them in `fastify_active_conversations_migrations`
 * with a checksum. Safe to run twice or from two processes at once (an advisory
 * lock serializes them). Refuses to go on when an applied file was edited.
 * Returns the names of the files it applied.
 */
export async function migrate (target: pg.Pool | string, options: MigrateOptions = {}): Promise<string[]> {
  const migrations = await readMigrations(options.directory ?? MIGRATIONS_DIRECTORY)
  const client: pg.Client | pg.PoolClient = typeof target === 'string'
    ? await connected(new pg.Client({ connectionString: target }))
    : await target.connect()
  try {
    await client.query('SELECT pg_advisory_lock($1)', [LOCK_KEY])
    try {
      return await applyPending(client, migrations)
    } finally {
      await client.query('SELECT pg_advisory_unlock($1)', [LOCK_KEY])
    }
  } finally {
    if (typeof target === 'string') await client.end()
    else (client as pg.PoolClient).release()
  }
}

async function connected (client: pg.Client): Promise<pg.Client> {
  await client.connect()
  return client
}

interface Migration { name: string, sql: string, checksum: string }

async function applyPending (client: pg.ClientBase, migrations: Migration[]): Promise<string[]> {
  await client.query(`CREATE TABLE IF NOT EXISTS fastify_active_conversations_migrations (
    name       text PRIMARY KEY,
    checksum   text NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now()
  )`)
  const { rows } = await client.query<{ name: string, checksum: string }>('SELECT name, checksum FROM fastify_active_conversations_migrations')
  const applied = new Map(rows.map((row) => [row.name, row.checksum]))
  const done: string[] = []
  for (const migration of migrations) {
    const checksum = applied.get(migration.name)
    if (checksum !== undefined) {
      if (checksum !== migration.checksum) throw new Error(`migration ${migration.name} was changed after it was applied`)
      continue
    }
    await client.query('BEGIN')
    try {
      await client.query(migration.sql)
      await client.query('INSERT INTO fastify_active_conversations_migrations (name, checksum) VALUES ($1, $2)', [migration.name, migration.checksum])
      await client.query('COMMIT')
    } catch (error) {
      await client.query('ROLLBACK')
      throw error
    }
    done.push(migration.name)
  }
  return done
}

async function readMigrations (directory: string): Promise<Migration[]> {
  const names = (await readdir(directory)).filter((name) => MIGRATION_FILE.test(name))
  names.sort((a, b) => migrationNumber(a) - migrationNumber(b) || a.localeCompare(b))
  return Promise.all(names.map(async (name) => {
    const sql = await readFile(join(directory, name), 'utf8')
    return { name, sql, checksum: createHash('sha256').update(sql).digest('hex') }
  }))
}

function migrationNumber (name: string): number {
  return Number(MIGRATION_FILE.exec(name)?.[1])
}
