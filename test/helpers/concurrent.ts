import type pg from 'pg'

/**
 * Two transactions write at once: the first writes and holds its transaction
 * open, the second writes (and waits on the first's row lock), then the first
 * commits and the second after it. Returns how many lock waits were seen while
 * both were open (1 when the second really waited).
 */
export async function twoWritersAtOnce (pool: pg.Pool, first: string, second: string): Promise<number> {
  const one = await pool.connect()
  const two = await pool.connect()
  try {
    await one.query('BEGIN')
    await two.query('BEGIN')
    await one.query(first)
    const waiting = two.query(second)
    let blocked = 0
    for (let i = 0; i < 100 && blocked === 0; i++) {
      await new Promise((resolve) => setTimeout(resolve, 20))
      blocked = (await pool.query("SELECT count(*)::int AS n FROM pg_locks WHERE NOT granted AND locktype = 'transactionid'")).rows[0].n
    }
    await one.query('COMMIT')
    await waiting
    await two.query('COMMIT')
    return blocked
  } finally {
    one.release()
    two.release()
  }
}
