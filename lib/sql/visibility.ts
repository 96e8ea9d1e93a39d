import type pg from 'pg'
import { statementName } from './statement-name.js'

/*
 * Which decoded transactions a new snapshot does not see yet.
 *
 * A commit is decoded once its record is flushed, and a transaction leaves
 * the proc array (becomes visible to new snapshots) only after that; with a
 * synchronous standby, after the standby's answer too. So a refresh woken by
 * a decoded commit could read the view as it was. Each refresh first asks
 * this of the transactions it was woken by, and reads again later for those
 * not visible yet (lib/live/hub.ts).
 *
 * pgoutput gives a 32-bit xid; pg_visible_in_snapshot wants a 64-bit one.
 * Every decoded xid was assigned before the snapshot was taken, so it is
 * below the snapshot's xmax: it has xmax's epoch, or the one before when its
 * low 32 bits are not below xmax's (the counter wrapped between them).
 *
 *   $1 the decoded xids (32 bits, as bigint)
 */
const INVISIBLE_SQL = `
SELECT x AS xid
FROM (SELECT pg_current_snapshot() AS snapshot) s
CROSS JOIN LATERAL (SELECT pg_snapshot_xmax(s.snapshot)::text::bigint AS xmax) m
CROSS JOIN unnest($1::bigint[]) AS x
WHERE NOT pg_visible_in_snapshot(
  ((((m.xmax >> 32) - CASE WHEN x >= (m.xmax & 4294967295) THEN 1 ELSE 0 END) << 32) | x)::text::xid8,
  s.snapshot)`
export const INVISIBLE_STATEMENT = statementName('invisible', INVISIBLE_SQL)

export async function readInvisible (pool: pg.Pool, xids: number[], prepared = true): Promise<number[]> {
  const { rows } = await pool.query<{ xid: string }>({ name: prepared ? INVISIBLE_STATEMENT : undefined, text: INVISIBLE_SQL, values: [xids] })
  return rows.map((row) => Number(row.xid))
}
