import pg from 'pg'
import type { DataSetShape } from '../support/data-sets.js'
import { median } from './runner.js'

// The writers' mix of npm run bench:live, bench:identity and bench:indexes:
// what a gateway decoding the WAL, a replica identity, or an index cost the
// systems that write conversations. The data set is the live bench's: stream st-1, agents a-0…
// and groups ag-0….

export const STREAM = 'st-1'
export const AGENTS = 200
export const GROUPS = 20
/** One stream of 200 agents in 20 groups, light views (about 6 conversations). */
export const LIVE_SHAPE: DataSetShape = { streams: 1, agentsPerStream: AGENTS, groupsPerStream: GROUPS, skillsPerStream: 20, closedPerAgent: 97, activePerAgent: 3, queuedPerGroup: 3, ungroupedPerStream: 0 }
/** Connections the mix writes from at once. */
export const WRITERS = 4
const SECONDS = 5

/** WRITERS connections for the mix (or a warm-up), each a backend of its own. */
export async function connectWriters (url: string): Promise<pg.Client[]> {
  return await Promise.all(Array.from({ length: WRITERS }, async () => { const client = new pg.Client({ connectionString: url }); await client.connect(); return client }))
}

/** One conversation's life, 5 autocommit statements: queued, accepted, two replies, closed. */
export async function life (client: pg.Client, id: string, n: number): Promise<void> {
  const values = [STREAM, id]
  await client.query(`INSERT INTO conversations (stream_id, id, source, status, customer_first_name, customer_last_name, agent_group_id, started_at, queued_at)
                      VALUES ($1, $2, 'chat', 'queued', 'Mix', 'Writer', 'ag-${n % GROUPS}', now(), now())`, values)
  await client.query(`UPDATE conversations SET status = 'active', agent_id = 'a-${n % AGENTS}', accepted_at = now() WHERE stream_id = $1 AND id = $2`, values)
  for (let reply = 0; reply < 2; reply++) {
    await client.query('UPDATE conversations SET response_seconds_total = response_seconds_total + 5, response_count = response_count + 1, first_response_at = coalesce(first_response_at, now()) WHERE stream_id = $1 AND id = $2', values)
  }
  await client.query("UPDATE conversations SET status = 'closed', closed_at = now() WHERE stream_id = $1 AND id = $2", values)
}

let lifeNumber = 0

/** The mix on these connections at once for this long: lives a second (conversation ids `<tag>-<n>`). */
export async function livesPerSecond (writers: pg.Client[], seconds: number, tag: string): Promise<number> {
  let lives = 0
  const end = Date.now() + seconds * 1000
  await Promise.all(writers.map(async (client) => {
    while (Date.now() < end) { const n = lifeNumber++; await life(client, `${tag}-${n}`, n); lives++ }
  }))
  return lives / seconds
}

/** Puts what is measured in place (on) or takes it away (off). */
export type Toggle = (on: boolean) => Promise<void>

/**
 * The mix from 4 connections at once, with what `toggle` puts in place over
 * the same mix without it,
 * in alternating rounds of 5 s; the median of the rounds' ratios. Leaves
 * what it measured in place (`leaveOn`: an index, a replica identity) or not
 * (a gateway, which it would otherwise start only to be stopped).
 */
export async function writersMix (url: string, admin: pg.Pool, rounds: number, toggle: Toggle, leaveOn = true): Promise<{ ratio: number, rounds: string[] }> {
  const writers = await connectWriters(url)
  // Vacuumed before, not by autovacuum during the first rounds: a fresh data set, or the tens of thousands of lives
  // the last measure deleted, woke it there, and its work fell on whichever rounds it overlapped (a clean clone's
  // writes_idle: 0.93, its first round 0.83; with this, 1.04, rounds 0.94 to 1.13).
  await admin.query('VACUUM ANALYZE conversations')
  const run = async (seconds: number): Promise<number> => await livesPerSecond(writers, seconds, 'mix')
  await toggle(true); await run(2); await toggle(false); await run(2) // warm-up
  const ratios: number[] = []
  const figures: string[] = []
  for (let r = 0; r < rounds; r++) {
    const rate: Record<string, number> = {}
    for (const on of r % 2 === 0 ? [true, false] : [false, true]) { await toggle(on); rate[String(on)] = await run(SECONDS) }
    ratios.push((rate.true as number) / (rate.false as number))
    figures.push(`${(rate.true as number).toFixed(0)} / ${(rate.false as number).toFixed(0)} lives/s`)
  }
  await toggle(leaveOn)
  await admin.query("DELETE FROM conversations WHERE stream_id = $1 AND (id LIKE 'mix-%' OR id LIKE 'warm-%')", [STREAM])
  for (const client of writers) await client.end()
  return { ratio: median(ratios), rounds: figures }
}
