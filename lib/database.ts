import pg from 'pg'
import { defaultOf, QUERY_TIMEOUT_MARGIN_MILLIS } from '../schemas/options.js'

/** Pool settings the plugin applies to a pool it creates itself. */
export interface PoolSettings {
  /** Most connections the pool opens. */
  max: number
  /** How long a request waits for a connection before it is answered 503. */
  connectionTimeoutMillis: number
  /** Postgres cancels a statement that runs longer than this (answered 503). */
  statementTimeoutMillis: number
  /**
   * The client gives up on an answer after this long (answered 503) and frees the
   * connection: the statement_timeout cannot fire when the server is unreachable.
   */
  queryTimeoutMillis: number
  /** Shows in pg_stat_activity. */
  applicationName: string
}

/** The own pool's settings when no option is given: the defaults of schemas/options.ts. */
export const DEFAULT_POOL_SETTINGS: PoolSettings = {
  max: defaultOf('poolMax') as number,
  connectionTimeoutMillis: defaultOf('connectionTimeoutMillis') as number,
  statementTimeoutMillis: defaultOf('statementTimeoutMillis') as number,
  queryTimeoutMillis: defaultOf('statementTimeoutMillis') as number + QUERY_TIMEOUT_MARGIN_MILLIS,
  applicationName: defaultOf('applicationName') as string
}

/**
 * A pool for a connection string. Its sessions are read-only
 * (default_transaction_read_only), so the plugin cannot write whatever happens,
 * and it has an `error` listener: without one, Postgres ending an idle
 * connection would crash the process.
 */
export function createPool (connectionString: string, settings: PoolSettings, onIdleError: (err: Error) => void): pg.Pool {
  const pool = new pg.Pool({
    connectionString,
    max: settings.max,
    connectionTimeoutMillis: settings.connectionTimeoutMillis,
    statement_timeout: settings.statementTimeoutMillis,
    query_timeout: settings.queryTimeoutMillis,
    application_name: settings.applicationName,
    keepAlive: true,
    options: '-c default_transaction_read_only=on'
  })
  pool.on('error', onIdleError)
  return pool
}

// SQLSTATE classes that mean "the database cannot answer now", not "the query is wrong":
// 08 connection exception, 28 invalid authorization, 3D invalid catalog (database gone),
// 53 insufficient resources, 57 operator intervention (57014: statement_timeout,
// 57P01: shutdown), 58 system error.
const UNAVAILABLE_SQLSTATE = /^(08|28|3D|53|57|58)/
// Node socket errors on the way to the database.
const UNAVAILABLE_ERRNO = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH'])
// pg and pg-pool signal timeouts and lost connections by message only.
const UNAVAILABLE_MESSAGE =
  /^(timeout exceeded when trying to connect|Connection terminated|Query read timeout|Client has encountered a connection error|Client was closed|Cannot use a pool after calling end)/

/** True when an error means the database is unreachable, overloaded or too slow. */
export function isDatabaseUnavailable (error: unknown): boolean {
  if (!(error instanceof Error)) return false
  const code = (error as { code?: unknown }).code
  if (typeof code === 'string' && (UNAVAILABLE_SQLSTATE.test(code) || UNAVAILABLE_ERRNO.has(code))) return true
  if (error instanceof AggregateError) return error.errors.some(isDatabaseUnavailable)
  return UNAVAILABLE_MESSAGE.test(error.message)
}
