import type pg from 'pg'
import { DEMO_STREAM_ID } from './demo-data.js'

/*
 * Small changes to the demo stream every few seconds, so that the wallboard
 * visibly moves: a conversation arrives, the one waiting longest is accepted
 * by a member of its group, the longest-running one closes, an agent's status
 * changes. Each is one autocommit statement, as a contact-center system
 * writes: the gateway decodes them from the WAL (migration 009).
 */
const ARRIVE = `
INSERT INTO conversations (stream_id, id, source, status, customer_first_name, customer_last_name, agent_group_id, started_at, queued_at)
VALUES ($1, 'c-live-' || $2::int, (ARRAY['chat', 'call'])[1 + $2::int % 2], 'queued', $3, $4, (ARRAY['ag-1234', 'ag-5678', NULL])[1 + $2::int % 3], now(), now())`
const ACCEPT = `
UPDATE conversations c
SET status = 'active', accepted_at = now(),
    agent_id = (SELECT m.agent_id FROM agent_group_members m
                WHERE m.stream_id = c.stream_id AND (c.agent_group_id IS NULL OR m.agent_group_id = c.agent_group_id)
                ORDER BY random() LIMIT 1)
WHERE c.stream_id = $1 AND c.id = (SELECT id FROM conversations WHERE stream_id = $1 AND status = 'queued' ORDER BY queued_at LIMIT 1)`
const CLOSE = `
UPDATE conversations
SET status = 'closed', closed_at = now(), first_response_at = coalesce(first_response_at, now()),
    response_seconds_total = response_seconds_total + 12, response_count = response_count + 1
WHERE stream_id = $1 AND id = (SELECT id FROM conversations WHERE stream_id = $1 AND status = 'active' ORDER BY accepted_at LIMIT 1)`
const STATUS = `
UPDATE agents SET online_status = (ARRAY['available', 'busy', 'away'])[1 + $2 % 3]
WHERE stream_id = $1 AND id = (ARRAY['a-2345', 'a-3456'])[1 + $2 % 2]`
const COUNTS = `SELECT count(*) FILTER (WHERE status = 'queued')::int AS queued, count(*) FILTER (WHERE status = 'active')::int AS active FROM conversations WHERE stream_id = $1`

const CUSTOMERS = [['Nina', 'Park'], ['Omar', 'Haddad'], ['Lea', 'Martin'], ['Raj', 'Patel'], ['Ines', 'Costa'], ['Tom', 'Berg']]

/** Writes one change every `intervalMillis` until stopped; stop() waits for the change under way. */
export function startDemoWriter (pool: pg.Pool, intervalMillis: number, log: (error: unknown) => void): () => Promise<void> {
  let n = Date.now() % 100_000
  let running: Promise<void> = Promise.resolve()
  const step = async (): Promise<void> => {
    n++
    const { rows: [counts] } = await pool.query<{ queued: number, active: number }>(COUNTS, [DEMO_STREAM_ID])
    const { queued, active } = counts as { queued: number, active: number }
    if (n % 5 === 0) {
      await pool.query(STATUS, [DEMO_STREAM_ID, n])
    } else if (queued < 3 || (n % 3 === 0 && queued < 8)) {
      const [first, last] = CUSTOMERS[n % CUSTOMERS.length] as [string, string]
      await pool.query(ARRIVE, [DEMO_STREAM_ID, n, first, last])
    } else if (active < 6 && n % 3 === 1) {
      await pool.query(ACCEPT, [DEMO_STREAM_ID])
    } else {
      await pool.query(CLOSE, [DEMO_STREAM_ID])
    }
  }
  const timer = setInterval(() => { running = step().catch(log) }, intervalMillis)
  return async () => {
    clearInterval(timer)
    await running
  }
}
