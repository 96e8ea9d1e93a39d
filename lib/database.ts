import type { FastifyBaseLogger } from 'fastify'
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
  /**
   * Set statement_timeout and read-only sessions as startup parameters. false
   * behind a transaction-mode pooler, which refuses them ("unsupported startup
   * parameter"): the database role's settings give them instead.
   */
  startupParameters: boolean
}

/** The own pool's settings when no option is given: the defaults of schemas/options.ts. */
export const DEFAULT_POOL_SETTINGS: PoolSettings = {
  max: defaultOf('poolMax') as number,
  connectionTimeoutMillis: defaultOf('connectionTimeoutMillis') as number,
  statementTimeoutMillis: defaultOf('statementTimeoutMillis') as number,
  queryTimeoutMillis: defaultOf('statementTimeoutMillis') as number + QUERY_TIMEOUT_MARGIN_MILLIS,
  applicationName: defaultOf('applicationName') as string,
  startupParameters: true
}

/**
 * A pool for a connection string. Its sessions are read-only
 * (default_transaction_read_only), so the plugin cannot write whatever happens,
 * and it has an `error` listener: without one, Postgres ending an idle
 * connection would crash the process. Without startup parameters (behind a
 * pooler) only application_name is sent, which PgBouncer passes on.
 */
export function createPool (connectionString: string, settings: PoolSettings, onIdleError: (err: Error) => void): pg.Pool {
  const pool = new pg.Pool({
    connectionString,
    max: settings.max,
    connectionTimeoutMillis: settings.connectionTimeoutMillis,
    query_timeout: settings.queryTimeoutMillis,
    application_name: settings.applicationName,
    keepAlive: true,
    ...(settings.startupParameters && {
      statement_timeout: settings.statementTimeoutMillis,
      options: '-c default_transaction_read_only=on'
    })
  })
  pool.on('error', onIdleError)
  return pool
}

/** What a pool's sessions lack of the settings the plugin's own pool gives them. */
async function missingSessionSettings (pool: pg.Pool): Promise<string[]> {
  const { rows: [settings] } = await pool.query<{ statementTimeout: string, readOnly: string }>(
    // transaction_read_only: on where default_transaction_read_only is, and on a hot standby.
    `SELECT current_setting('statement_timeout') AS "statementTimeout", current_setting('transaction_read_only') AS "readOnly"`
  )
  const missing: string[] = []
  if (settings?.statementTimeout === '0') missing.push('statement_timeout')
  if (settings?.readOnly !== 'on') missing.push('default_transaction_read_only')
  return missing
}

/** How long registration waits for the session-settings check before going on without it. */
const SETTINGS_CHECK_MILLIS = 1000

/**
 * The plugin's own pool makes its sessions read-only with a statement timeout;
 * a pool it did not configure may lack either: one query at registration, and
 * one warning naming what is missing (set it on the database role: README, Scaling).
 */
export async function warnOfMissingSessionSettings (pool: pg.Pool, option: string, log: FastifyBaseLogger): Promise<void> {
  const check = missingSessionSettings(pool)
  let timer: NodeJS.Timeout | undefined
  const late = new Promise<'late'>((resolve) => { timer = setTimeout(resolve, SETTINGS_CHECK_MILLIS, 'late') })
  try {
    const missing = await Promise.race([check, late])
    if (missing === 'late') {
      check.catch(() => {}) // it may still fail; nothing waits for it
      log.warn(`fastify-active-conversations: could not check the sessions of \`${option}\` within ${SETTINGS_CHECK_MILLIS} ms`)
    } else if (missing.length > 0) {
      log.warn(`fastify-active-conversations: the sessions of \`${option}\` have no ${missing.join(' and no ')}; ` +
        'set them on the database role (ALTER ROLE … SET), see the README section Scaling')
    }
  } catch (err) {
    log.warn({ err }, `fastify-active-conversations: could not check the sessions of \`${option}\``)
  } finally {
    clearTimeout(timer)
  }
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

/**
 * True when a hot standby cancelled the statement because it conflicted with
 * replaying the primary's changes (40001 "canceling statement due to conflict
 * with recovery", 40P01 for a deadlock with replay): the primary can answer it.
 */
export function isRecoveryConflict (error: unknown): boolean {
  return ['40001', '40P01'].includes(sqlState(error))
}

/**
 * True when the server connection does not hold the prepared statements pg
 * thinks it made on it: 42P05 (already exists) or 26000 (does not exist), what
 * a transaction-mode pooler causes by handing a client's statements to other
 * server connections.
 */
export function isPreparedStatementMismatch (error: unknown): boolean {
  return ['42P05', '26000'].includes(sqlState(error))
}

/** The error's SQLSTATE (or Node's errno code), '' when it has none. */
function sqlState (error: unknown): string {
  const code = (error as { code?: unknown } | null)?.code
  return typeof code === 'string' ? code : ''
}

/** True when an error means the database is unreachable, overloaded or too slow. */
export function isDatabaseUnavailable (error: unknown): boolean {
  if (!(error instanceof Error)) return false
  const code = sqlState(error)
  if (UNAVAILABLE_SQLSTATE.test(code) || UNAVAILABLE_ERRNO.has(code)) return true
  if (error instanceof AggregateError) return error.errors.some(isDatabaseUnavailable)
  return UNAVAILABLE_MESSAGE.test(error.message)
}

/** What kind of failure a statement met, for the failures metric: a small, fixed set of values. */
export type ErrorType = 'recovery_conflict' | 'prepared_statement_mismatch' | 'timeout' | 'pool_timeout' | 'unavailable' | 'other'

export function errorType (error: unknown): ErrorType {
  if (isRecoveryConflict(error)) return 'recovery_conflict'
  if (isPreparedStatementMismatch(error)) return 'prepared_statement_mismatch'
  const message = error instanceof Error ? error.message : ''
  if (message.startsWith('timeout exceeded when trying to connect')) return 'pool_timeout' // pg-pool: no connection in time
  if (sqlState(error) === '57014' || message.startsWith('Query read timeout')) return 'timeout' // statement_timeout, query_timeout
  return isDatabaseUnavailable(error) ? 'unavailable' : 'other'
}
