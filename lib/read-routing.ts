import type { FastifyBaseLogger } from 'fastify'
import type pg from 'pg'
import { isDatabaseUnavailable, isPreparedStatementMismatch, isRecoveryConflict } from './database.js'

/** Runs a read on the pool it is given. */
export type OnPool = <T>(read: (pool: pg.Pool) => Promise<T>) => Promise<T>

export interface ReadRouterOptions {
  /** How long reads skip a replica that failed to answer before one read tries it again. */
  retryMillis: number
  log: FastifyBaseLogger
  /** Told of each statement sent to the primary for the replica, and of the replica's state when it changes. */
  report: { fallback: (reason: 'recovery_conflict' | 'unavailable') => void, available: (up: boolean) => void }
}

/**
 * Reads on the replica, the primary when the replica cannot answer: a
 * wallboard would rather read the primary than get 503.
 * - A recovery conflict (the standby cancelled the statement to replay the
 *   primary's changes) sends that statement to the primary; the replica stays in use.
 * - The replica unavailable (down, overloaded, too slow): the statement goes to
 *   the primary, and so do all reads for `retryMillis` (no request waits on a
 *   dead replica's connection timeout); then one read tries the replica again
 *   while the others keep to the primary. One warning when it goes, one
 *   message when it is back.
 * Any other error is the statement's own and is not retried.
 */
export function createReadRouter (replica: pg.Pool, primary: pg.Pool, { retryMillis, log, report }: ReadRouterOptions): OnPool {
  let down = false
  let skipUntil = 0
  return async (read) => {
    if (down && Date.now() < skipUntil) return await read(primary)
    const probe = down
    if (probe) skipUntil = Date.now() + retryMillis // this read tries the replica; the others keep to the primary
    try {
      const result = await read(replica)
      if (probe && down) {
        down = false
        report.available(true)
        log.info('fastify-active-conversations: read replica answering again, reading it')
      }
      return result
    } catch (err) {
      if (isRecoveryConflict(err)) {
        report.fallback('recovery_conflict')
        return await read(primary)
      }
      if (!isDatabaseUnavailable(err)) throw err
      report.fallback('unavailable')
      if (!down) {
        down = true
        report.available(false)
        log.warn({ err }, `fastify-active-conversations: read replica unavailable, reading the primary; trying the replica again every ${retryMillis} ms`)
      }
      skipUntil = Date.now() + retryMillis
      return await read(primary)
    }
  }
}

/**
 * Behind a transaction-mode pooler a named statement lands on server
 * connections that lack it or have it already; the 500s that gives say nothing
 * of the fix, so the first one gets a warning that names it.
 */
export function withPoolerHint (onPool: OnPool, log: FastifyBaseLogger): OnPool {
  let hinted = false
  return async (read) => {
    try {
      return await onPool(read)
    } catch (err) {
      if (!hinted && isPreparedStatementMismatch(err)) {
        hinted = true
        log.warn({ err }, 'fastify-active-conversations: the server connection does not hold the prepared statements this client made: ' +
          'behind a transaction-mode pooler (PgBouncer before 1.21) set preparedStatements: false')
      }
      throw err
    }
  }
}
