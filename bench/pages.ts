// npm run bench:pages: the endpoint's statement alone (no HTTP, no plugin), on
// PostgreSQL with 4 kB pages and then with huge pages, each an embedded server
// of its own with the bench's data sets. For random agents of the large set,
// of only 100 of its agents, and of the small set, it prints requests a second
// and PostgreSQL's CPU per request: whether the large set's extra cost follows
// the number of distinct pages a run touches (BENCHMARKS.md, step 13).
// Env: BENCH_SECONDS (5 per run), BENCH_ROUNDS (3), BENCH_CLIENTS (4),
// BENCH_BATCH (8 requests a statement, as under the bench's load).
import pg from 'pg'
import { DEFAULT_METRICS_WINDOW_SECONDS } from '../lib/options.js'
import { readAgentViews, type AgentViewRequest } from '../lib/query.js'
import { postgresCpuMs } from './cpu.js'
import { createDataSet, startBenchPostgres } from './database.js'
import { LARGE, randomAgent, SMALL, type DataSetShape } from './seed.js'

const SECONDS = Number(process.env.BENCH_SECONDS ?? 5)
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3)
const CLIENTS = Number(process.env.BENCH_CLIENTS ?? 4)
const BATCH = Number(process.env.BENCH_BATCH ?? 8)
const log = (message: string) => console.error(`[bench:pages] ${message}`)

interface Case { name: string, database: 'large' | 'small', agents: DataSetShape }
const CASES: Case[] = [
  { name: 'large, random agents of 10,000', database: 'large', agents: LARGE },
  { name: 'large, random agents of 100', database: 'large', agents: { ...LARGE, streams: 1, agentsPerStream: 100 } },
  { name: 'small, random agents of 100', database: 'small', agents: SMALL }
]

/** The statement in a loop on CLIENTS connections for `seconds`: requests a second, PostgreSQL CPU ms a request. */
async function run (pool: pg.Pool, database: string, agents: DataSetShape, seconds: number): Promise<{ rps: number, cpu: number }> {
  const batch = (): AgentViewRequest[] => Array.from({ length: BATCH }, () => ({ ...randomAgent(agents), source: undefined, scope: { agentGroups: null, conversationGroups: null } }))
  const cpuBefore = postgresCpuMs(database)
  const started = Date.now()
  const deadline = started + seconds * 1000
  let requests = 0
  await Promise.all(Array.from({ length: CLIENTS }, async () => {
    while (Date.now() < deadline) {
      const results = await readAgentViews(pool, batch(), DEFAULT_METRICS_WINDOW_SECONDS)
      if (results.some((result) => result === null || result === 'forbidden')) throw new Error('an agent of the data set was not found')
      requests += results.length
    }
  }))
  const elapsed = (Date.now() - started) / 1000
  return { rps: requests / elapsed, cpu: (postgresCpuMs(database) - cpuBefore) / requests }
}

/** A pool whose connections stay open (their CPU time is read from /proc). */
function benchPool (connectionString: string): pg.Pool {
  const pool = new pg.Pool({ connectionString, max: CLIENTS, idleTimeoutMillis: 0 })
  pool.on('error', () => {}) // a connection still closing when its server stops
  return pool
}

const lines: string[] = []
for (const huge of [false, true]) {
  const server = await startBenchPostgres(huge)
  const pages = huge ? 'huge pages' : '4 kB pages'
  log(`${pages}: PostgreSQL huge pages ${server.hugePages}`)
  if (huge && !server.hugePages.startsWith('on')) {
    lines.push(`| ${pages} | not measured: huge pages ${server.hugePages} | | |`)
    await server.stop()
    continue
  }
  const urls = { large: await createDataSet(server.connectionString, 'fac_pages_large', LARGE), small: await createDataSet(server.connectionString, 'fac_pages_small', SMALL) }
  const pools = { large: benchPool(urls.large), small: benchPool(urls.small) }
  const figures = new Map<Case, Array<{ rps: number, cpu: number }>>(CASES.map((c) => [c, []]))
  for (const c of CASES) await run(pools[c.database], `fac_pages_${c.database}`, c.agents, SECONDS) // warm-up
  for (let round = 1; round <= ROUNDS; round++) {
    for (const c of CASES) figures.get(c)?.push(await run(pools[c.database], `fac_pages_${c.database}`, c.agents, SECONDS))
    log(`${pages}, round ${round}: ${CASES.map((c) => `${c.name} ${figures.get(c)?.at(-1)?.rps.toFixed(0)}`).join(', ')} requests/s`)
  }
  await pools.large.end()
  await pools.small.end()
  await server.stop()
  for (const c of CASES) {
    const runs = figures.get(c) ?? []
    lines.push(`| ${pages} | ${c.name} | ${runs.map((f) => f.rps.toFixed(0)).join(', ')} | ${runs.map((f) => (f.cpu * 1000).toFixed(0)).join(', ')} |`)
  }
}

console.log(`Statement alone, ${BATCH} requests a statement, ${CLIENTS} clients, ${ROUNDS} rounds of ${SECONDS} s:\n`)
console.log('| PostgreSQL | agents asked for | requests/s, per round | PostgreSQL CPU µs a request, per round |')
console.log('|---|---|---|---|')
console.log(lines.join('\n'))
