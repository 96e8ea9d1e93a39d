import type pg from 'pg'

/**
 * Counts the statements sent through a real pool, where they leave it (the
 * bench's statements per request; the tests' "no SQL was sent").
 */
export function countStatements (pool: pg.Pool): { count: () => number } {
  let statements = 0
  const query = pool.query.bind(pool)
  pool.query = ((...args: Parameters<typeof query>) => { statements++; return query(...args) }) as typeof pool.query
  return { count: () => statements }
}
