// npm run bench:live: the live views under a steady stream of changes.
//
// One stream of 200 agents (20 groups; about 6 conversations a view). The bench
// server (bench/server.ts, a process of its own) serves the streams; this
// process reads them over raw HTTP and writes the changes. Reports, from one run:
// - the delay from a write's commit to its event at the client (p50, p99), on
//   10 floor streams while 1,000 streams are open;
// - PostgreSQL's CPU per change with 10 open streams (10 floors) and with 1,000
//   (the same 10 floors and 990 agent streams over the same 200 agents: the
//   same views, watched by 100 times the screens), 10 measured before and after;
// - the writers' mix (conversations inserted, accepted, replied to twice,
//   closed; 4 connections, autocommit) with migration 006's triggers against
//   the same mix with them disabled, alternating rounds: while a gateway
//   listens (the summary's `writes`), while it also keeps 1,000 streams fresh
//   on the same cores, and while nobody listens;
// - the gateway's RSS with 10,000 idle agent streams open.
// Ends with: live: p99_ms=… cost_1000/10=… rss_10k_mb=… writes=…
import { request, type ClientRequest } from 'node:http'
import { readFileSync } from 'node:fs'
import pg from 'pg'
import { postgresCpuMs, processCpuMs } from './cpu.js'
import { createDataSet, startBenchPostgres } from './database.js'
import { log, managerToken, startServer, stopServer, writeReport, type Server } from './runner.js'
import { AGENTS, GROUPS, LIVE_SHAPE, STREAM, writersMix } from './writers.js'

const CHANGES_PER_SECOND = Number(process.env.BENCH_LIVE_CHANGES ?? 5)
const PHASE_SECONDS = Number(process.env.BENCH_LIVE_SECONDS ?? 30)
const MIX_ROUNDS = Number(process.env.BENCH_LIVE_ROUNDS ?? 4)
const IDLE_STREAMS = Number(process.env.BENCH_LIVE_IDLE ?? 10_000)
const sleep = async (ms: number) => await new Promise((resolve) => setTimeout(resolve, ms))
const percentile = (values: number[], p: number) => [...values].sort((a, b) => a - b)[Math.min(values.length - 1, Math.floor(values.length * p))] as number

const floorPath = `/public/${STREAM}/analytics/manager/agents/active-conversations/events`
const agentPath = (agent: number) => `/public/${STREAM}/analytics/manager/agent/a-${agent}/active-conversations/events`
/** 20 streams per token subject: the default live.maxStreamsPerCaller. */
const tokenFor = (i: number) => managerToken(1, `bench-manager-${Math.floor(i / 20)}`)

interface Client { req: ClientRequest, closed: Promise<void> }

/** When each marker's write committed, and what the floor streams saw of it. */
const committed = new Map<number, number>()
const delays: number[] = []
let measuring = false

/** A stream read over raw HTTP; floor streams look for the markers' first arrival. */
async function open (server: Server, path: string, i: number, watchMarkers: boolean): Promise<Client> {
  const { hostname, port } = new URL(server.url)
  let resolveOpen: () => void = () => {}
  let rejectOpen: (error: Error) => void = () => {}
  const opened = new Promise<void>((resolve, reject) => { resolveOpen = resolve; rejectOpen = reject })
  let resolveClosed: () => void = () => {}
  const closed = new Promise<void>((resolve) => { resolveClosed = resolve })
  const seen = new Set<number>()
  const req = request({ host: hostname, port, path, agent: false, headers: { auth: tokenFor(i) } }, (response) => {
    if (response.statusCode !== 200) { rejectOpen(new Error(`stream ${path}: ${response.statusCode}`)); response.resume(); return }
    let rest = ''
    response.setEncoding('utf8')
    response.on('data', (chunk: string) => {
      if (chunk.includes('event: view')) resolveOpen()
      if (!watchMarkers) return
      const text = rest + chunk
      const end = text.lastIndexOf('\n\n')
      rest = end < 0 ? text : text.slice(end + 2)
      const now = Date.now()
      for (const [, marker] of text.slice(0, end < 0 ? 0 : end).matchAll(/"firstName":"L(\d+)"/g)) {
        const n = Number(marker)
        if (seen.has(n)) continue
        seen.add(n)
        const at = committed.get(n)
        if (measuring && at !== undefined) delays.push(now - at)
      }
    })
    response.on('close', () => { resolveClosed() })
  })
  req.on('error', (error) => { rejectOpen(error); resolveClosed() })
  req.end()
  await opened
  return { req, closed }
}

async function openMany (server: Server, count: number, make: (i: number) => [string, boolean], from = 0): Promise<Client[]> {
  const clients: Client[] = []
  for (let start = 0; start < count; start += 200) { // in steps, within the listen backlog
    clients.push(...await Promise.all(Array.from({ length: Math.min(200, count - start) }, async (_, k) => {
      const [path, watch] = make(from + start + k)
      return await open(server, path, from + start + k, watch)
    })))
  }
  return clients
}

async function closeAll (clients: Client[]): Promise<void> {
  for (const client of clients) client.req.destroy()
  await Promise.all(clients.map(async (client) => await client.closed))
}

/**
 * Marks a queued conversation of a random group at a steady rate (its customer's
 * first name becomes L<n>: every member's queue changes, the data does not grow,
 * so every phase reads views of the same size); resolves with the changes written.
 */
async function writeChanges (pool: pg.Pool, seconds: number, first: number): Promise<number> {
  let n = first
  const end = Date.now() + seconds * 1000
  while (Date.now() < end) {
    const started = Date.now()
    await pool.query("UPDATE conversations SET customer_first_name = 'L' || $2::int WHERE stream_id = $1 AND id = 'q-' || ($2::int % $3::int) || '-2'", [STREAM, n, GROUPS])
    committed.set(n, Date.now())
    n++
    await sleep(Math.max(0, 1000 / CHANGES_PER_SECOND - (Date.now() - started)))
  }
  return n - first
}

/** PostgreSQL's and the gateway's CPU per change while changes are written for PHASE_SECONDS. */
async function costPerChange (server: Server, pool: pg.Pool, first: number): Promise<{ postgres: number, gateway: number, changes: number }> {
  await sleep(1000) // the streams' first views are read and sent
  const before = { postgres: postgresCpuMs(server.database), gateway: processCpuMs(server.process.pid as number) }
  const changes = await writeChanges(pool, PHASE_SECONDS, first)
  await sleep(500) // the last window's views
  return {
    postgres: (postgresCpuMs(server.database) - before.postgres) / changes,
    gateway: (processCpuMs(server.process.pid as number) - before.gateway) / changes,
    changes
  }
}

const rssMb = (server: Server) => Number(/VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${server.process.pid}/status`, 'utf8'))?.[1]) / 1024

const database = await startBenchPostgres()
try {
  log('seeding 200 agents …')
  const url = await createDataSet(database.connectionString, 'live', [LIVE_SHAPE])
  const pool = new pg.Pool({ connectionString: url, max: 2 })
  const server = await startServer(url)
  try {
    // 10 streams, then 1,000 (990 more), then 10 again: the two 10-stream phases bracket the other.
    log('10 floor streams …')
    const floors = await openMany(server, 10, () => [floorPath, true])
    const before10 = await costPerChange(server, pool, 0)
    log(`10 streams: ${before10.postgres.toFixed(2)} ms PostgreSQL, ${before10.gateway.toFixed(2)} ms gateway a change`)
    log('and 990 agent streams over the same 200 agents …')
    let agents = await openMany(server, 990, (i) => [agentPath(i % AGENTS), false], 10)
    measuring = true
    const cost1000 = await costPerChange(server, pool, 100_000)
    measuring = false
    log(`1,000 streams: ${cost1000.postgres.toFixed(2)} ms PostgreSQL, ${cost1000.gateway.toFixed(2)} ms gateway a change; ${delays.length} deliveries timed`)
    await closeAll(agents)
    const after10 = await costPerChange(server, pool, 200_000)
    log(`10 streams again: ${after10.postgres.toFixed(2)} ms PostgreSQL, ${after10.gateway.toFixed(2)} ms gateway a change`)
    const cost10 = { postgres: (before10.postgres + after10.postgres) / 2, gateway: (before10.gateway + after10.gateway) / 2 }
    agents = await openMany(server, 990, (i) => [agentPath(i % AGENTS), false], 10)

    log('writers\' mix, with and without the triggers, the gateway listening with its 1,000 streams …')
    const withStreams = await writersMix(url, pool, MIX_ROUNDS)
    await closeAll([...floors, ...agents])
    log('… listening without streams …')
    const listening = await writersMix(url, pool, MIX_ROUNDS)

    log(`${IDLE_STREAMS} idle streams …`)
    const rssBefore = rssMb(server)
    const idle = await openMany(server, IDLE_STREAMS, (i) => [agentPath(i % AGENTS), false])
    await sleep(2000)
    const rss10k = rssMb(server)
    await closeAll(idle)
    await sleep(500)
    const peak = await stopServer(server)

    log('… and nobody listening')
    const quiet = await writersMix(url, pool, MIX_ROUNDS)
    await pool.end()

    const p50 = percentile(delays, 0.5)
    const p99 = percentile(delays, 0.99)
    const costRatio = cost1000.postgres / cost10.postgres
    const summary = `live: p99_ms=${p99} cost_1000/10=${costRatio.toFixed(2)} rss_10k_mb=${rss10k.toFixed(0)} writes=${listening.ratio.toFixed(2)}`
    const report = [
      '<!-- live:start: written by `npm run bench:live` -->',
      `Run ${new Date().toISOString()} on ${(/model name\s*:\s*(.*)/.exec(readFileSync('/proc/cpuinfo', 'utf8'))?.[1] ?? 'unknown CPU')}, ` +
        `${CHANGES_PER_SECOND} changes a second for ${PHASE_SECONDS} s in each phase, live.coalesceMillis 200 (the default).`,
      '',
      '| figure | value | target |',
      '|---|---|---|',
      `| delay from commit to event at the client, p50 / p99 (${delays.length} deliveries, 1,000 streams open) | ${p50} / ${p99} ms | p99 ≤ 1,000 ms |`,
      `| PostgreSQL CPU a change, 10 streams (before and after the 1,000: ${before10.postgres.toFixed(2)}, ${after10.postgres.toFixed(2)} ms) | ${cost10.postgres.toFixed(2)} ms (gateway ${cost10.gateway.toFixed(2)} ms) | |`,
      `| PostgreSQL CPU a change, 1,000 streams | ${cost1000.postgres.toFixed(2)} ms (gateway ${cost1000.gateway.toFixed(2)} ms) | |`,
      `| ratio, 1,000 / 10 | ${costRatio.toFixed(2)} | ≤ 1.2 |`,
      `| gateway RSS with ${IDLE_STREAMS.toLocaleString('en')} idle streams | ${rss10k.toFixed(0)} MB (${rssBefore.toFixed(0)} MB before them, peak ${peak.toFixed(0)} MB) | ≤ 500 MB |`,
      `| writers' mix with / without the triggers, a gateway listening (median of ${MIX_ROUNDS} rounds: ${listening.rounds.join(', ')}) | **${listening.ratio.toFixed(2)}** | ≥ 0.8 |`,
      `| the same while the gateway keeps its 1,000 streams fresh on the same 2 cores (${withStreams.rounds.join(', ')}) | ${withStreams.ratio.toFixed(2)} | |`,
      `| the same, no gateway listening (${quiet.rounds.join(', ')}) | ${quiet.ratio.toFixed(2)} | |`,
      '',
      '```',
      summary,
      '```',
      '<!-- live:end -->'
    ].join('\n')
    writeReport('live', 'Live views (npm run bench:live)', report)
    console.log(report.split('\n').slice(1, -4).join('\n'))
    console.log(summary)
  } finally {
    if (server.process.exitCode === null) server.process.kill('SIGKILL')
  }
} finally {
  await database.stop()
}
