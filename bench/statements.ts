// npm run bench:statements: the views statements alone, without HTTP, on the
// bench's light large and busy data sets: PostgreSQL's CPU a request for the
// agent statement (batches of 7, as under load), and for a floor page of 100
// busy agents, whole and with one part cut away at a time, so that the page's
// time can be told part by part. Writes BENCHMARKS.md's section "The
// statements alone". About 3 minutes.
// Env: DATABASE_URL (default: embedded PostgreSQL), STATEMENTS_ROUNDS (4).
import pg from 'pg'
import { AGENT_VIEWS_SQL, FLOOR_VIEWS_SQL, requestsParameter } from '../lib/sql/views.js'
import { BUSY, LARGE, type DataSetShape } from '../support/data-sets.js'
import { processCpuMs } from './cpu.js'
import { createDataSet, startBenchPostgres } from './database.js'
import { log, median, writeReport } from './runner.js'

const ROUNDS = Number(process.env.STATEMENTS_ROUNDS ?? 4)
const AGENT_BATCH = 7
const AGENT_BATCHES = 1500
const FLOOR_PAGES = 150
const WINDOW_SECONDS = 86_400

/** The floor statement with a part cut away: each replacement must find its text, or the variant would measure the whole. */
function cut (replacements: Array<[string, string]>): string {
  return replacements.reduce((sql, [part, instead]) => {
    if (!sql.includes(part)) throw new Error(`bench:statements: the floor statement no longer has ${part}`)
    return sql.replaceAll(part, instead)
  }, FLOOR_VIEWS_SQL)
}
const QUEUE_AGGREGATE = "'[' || string_agg(x.item, ',' ORDER BY x.queued_at, x.id) || ']' AS queue"
const FLOOR_VARIANTS: Array<{ name: string, sql: string }> = [
  { name: 'whole', sql: FLOOR_VIEWS_SQL },
  { name: 'without the queue', sql: cut([['LEFT JOIN q ON q.i = r.i', 'LEFT JOIN (SELECT NULL::int AS i, NULL::text AS queue) q ON q.i = r.i']]) },
  // ($7 stays named, with its type: a prepared statement's parameters must all be used.)
  { name: 'without the metrics', sql: cut([['c.accepted_at >= (SELECT now() - make_interval(secs => $7))', '($7::int IS NULL AND false)']]) },
  { name: 'without the active lists', sql: cut([["c.status = 'active'", "c.status = 'active' AND false"]]) },
  { name: "the queue's agent-item pairs counted, not sorted or aggregated", sql: cut([[QUEUE_AGGREGATE, 'count(*)::text AS queue']]) },
  { name: "the queue's conversation ids aggregated instead of its items", sql: cut([[QUEUE_AGGREGATE, "string_agg(x.id, ',' ORDER BY x.queued_at, x.id) AS queue"]]) }
]

/** A client of its own (its backend's CPU is the measure) with the statement prepared. */
async function backend (url: string, name: string, sql: string): Promise<{ client: pg.Client, pid: number, run: (values: unknown[]) => Promise<unknown> }> {
  const client = new pg.Client({ connectionString: url })
  await client.connect()
  const pid = (await client.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0]?.pid as number
  return { client, pid, run: async (values) => await client.query({ name, text: sql, values }) }
}

/** PostgreSQL CPU (ms) an execution, per round, of each statement: the same arguments for all, their order turned every round. */
async function measure (url: string, statements: Array<{ name: string, sql: string }>, argumentsOf: (i: number) => unknown[], executions: number): Promise<number[][]> {
  const backends = await Promise.all(statements.map(async ({ name, sql }, k) => await backend(url, `s${k}`, sql).then((b) => ({ ...b, name }))))
  try {
    for (const b of backends) for (let i = 0; i < 30; i++) await b.run(argumentsOf(i)) // past the custom plans, caches warm
    const perRound: number[][] = backends.map(() => [])
    for (let round = 0; round < ROUNDS; round++) {
      const order = round % 2 === 0 ? backends.map((_, k) => k) : backends.map((_, k) => backends.length - 1 - k)
      for (const k of order) {
        const b = backends[k] as (typeof backends)[number]
        const before = processCpuMs(b.pid)
        for (let i = 0; i < executions; i++) await b.run(argumentsOf(i))
        perRound[k]?.push((processCpuMs(b.pid) - before) / executions)
      }
    }
    return perRound
  } finally {
    await Promise.all(backends.map(async (b) => { await b.client.end() }))
  }
}

/** Batch i of the agent statement: AGENT_BATCH agents spread over the shape's streams, the same for every run. */
const agentBatch = (shape: DataSetShape) => (i: number): unknown[] => [requestsParameter(Array.from({ length: AGENT_BATCH }, (_, k) => ({
  streamId: `st-${1 + (i * 7 + k) % shape.streams}`,
  agentId: `a-${(i * 131 + k * 17) % shape.agentsPerStream}`,
  source: undefined,
  scope: { agentGroups: null, conversationGroups: null }
}))), WINDOW_SECONDS]
/** Page i of the floor: 100 agents of a stream from an agent on, the same for every variant. */
const floorPage = (i: number): unknown[] => [`st-${1 + i % BUSY.streams}`, null, null, null, `a-${(i * 37) % (BUSY.agentsPerStream - 100)}`, 100, WINDOW_SECONDS]

const embedded = process.env.DATABASE_URL ? undefined : await startBenchPostgres()
const serverUrl = process.env.DATABASE_URL ?? (embedded?.connectionString as string)
log('seeding the light large and the busy data sets (about 80 s)')
const largeUrl = await createDataSet(serverUrl, 'fac_statements_large', [LARGE])
const busyUrl = await createDataSet(serverUrl, 'fac_statements_busy', [BUSY])

const agent = {
  light: await measure(largeUrl, [{ name: 'agent', sql: AGENT_VIEWS_SQL }], agentBatch(LARGE), AGENT_BATCHES),
  busy: await measure(busyUrl, [{ name: 'agent', sql: AGENT_VIEWS_SQL }], agentBatch(BUSY), AGENT_BATCHES)
}
log(`agent statement: light ${(median(agent.light[0] as number[]) * 1000 / AGENT_BATCH).toFixed(0)} µs, busy ${(median(agent.busy[0] as number[]) * 1000 / AGENT_BATCH).toFixed(0)} µs a request`)
const floor = await measure(busyUrl, FLOOR_VARIANTS, floorPage, FLOOR_PAGES)
await embedded?.stop()

const perRound = (values: number[], scale: number, digits: number) => values.map((v) => (v * scale).toFixed(digits)).join(' / ')
const whole = median(floor[0] as number[])
const report = `<!-- statements:start (written by npm run bench:statements) -->
Run ${new Date().toISOString()}: each statement prepared on a connection of its own, past its custom plans; PostgreSQL CPU (the backend's, from /proc, 10 ms ticks) an execution, ${ROUNDS} rounds with the statements' order turned each round, the same arguments for all.

| statement | per round | median |
|---|---|---|
| agent statement, light large set, a request (batches of ${AGENT_BATCH}, ${AGENT_BATCHES} batches a round) | ${perRound(agent.light[0] as number[], 1000 / AGENT_BATCH, 0)} µs | **${(median(agent.light[0] as number[]) * 1000 / AGENT_BATCH).toFixed(0)} µs** |
| agent statement, busy set, a request (the same) | ${perRound(agent.busy[0] as number[], 1000 / AGENT_BATCH, 0)} µs | **${(median(agent.busy[0] as number[]) * 1000 / AGENT_BATCH).toFixed(0)} µs** |
${FLOOR_VARIANTS.map((variant, k) => `| floor page of 100 busy agents, ${variant.name} (${FLOOR_PAGES} pages a round) | ${perRound(floor[k] as number[], 1, 2)} ms | **${median(floor[k] as number[]).toFixed(2)} ms**${k === 0 ? '' : ` (${(median(floor[k] as number[]) - whole).toFixed(2)})`} |`).join('\n')}
<!-- statements:end -->`
writeReport('statements', 'The statements alone (npm run bench:statements)', report)
console.log(report)
