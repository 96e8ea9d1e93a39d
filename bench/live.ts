// npm run bench:live: the live views under a steady stream of changes, on a
// server with durable commits (fsync = on, synchronous_commit = on) and
// wal_level = logical.
//
// One stream of 200 agents (20 groups; about 6 conversations a view). The bench
// server (bench/server.ts, a process of its own) serves the streams; this
// process reads them over raw HTTP and writes the changes. Reports, from one run:
// - the delay from a write's commit to its event at the client (p50, p99), on
//   10 floor streams while 1,000 streams are open;
// - PostgreSQL's CPU per change with 10 open streams (10 floors) and with 1,000
//   (the same 10 floors and 990 agent streams over the same 200 agents: the
//   same views, watched by 100 times the screens), 10 measured before and after;
// - the gateway's RSS with 10,000 idle agent streams open;
// - the writers' mix (conversations inserted, accepted, replied to twice,
//   closed; 4 connections, autocommit) with a gateway running against no
//   gateway, in alternating rounds: with 10 agent streams open (`writes`: its
//   slot decodes every commit), registered with none (`writes_idle`: no slot),
//   with 10 floor streams, with 1,000 streams; and, as a control, the same slot
//   read by pg_recvlogical instead of a gateway (`writes_bare`: what decoding
//   alone costs the writers, the client next to free);
// - the fallback: a gateway whose role may not replicate polls every 1,000 ms:
//   the delay from commit to event on its 10 floor streams, and PostgreSQL's
//   CPU a second with 1,000 agent streams watched.
// Ends with: live: p99_ms=… cost_1000/10=… rss_10k_mb=… writes=… writes_idle=… poll_p99_ms=…
import { spawn } from 'node:child_process'
import { existsSync, readFileSync } from 'node:fs'
import { request, type ClientRequest } from 'node:http'
import pg from 'pg'
import { postgresCpuMs, processCpuMs } from './cpu.js'
import { createDataSet, startBenchPostgres } from './database.js'
import { log, managerToken, startServer, stopServer, writeReport, type Server } from './runner.js'
import { AGENTS, connectWriters, GROUPS, LIVE_SHAPE, STREAM, livesPerSecond, writersMix, type Toggle } from './writers.js'
import { PUBLICATION } from '../lib/live/changes.js'

const CHANGES_PER_SECOND = Number(process.env.BENCH_LIVE_CHANGES ?? 5)
const PHASE_SECONDS = Number(process.env.BENCH_LIVE_SECONDS ?? 30)
// 9, not the 5 the issue asks at least: one round's ratio spreads 0.7 to 1.1 on these shared cores.
const MIX_ROUNDS = Number(process.env.BENCH_LIVE_ROUNDS ?? 9)
const POLL_MILLIS = 1000
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
let delays: number[] = []
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

/** The writers' mix with a gateway (toggled on and off) against none; the gateway stopped after. */
async function mixWith (url: string, pool: pg.Pool, gateway: Toggle): Promise<{ ratio: number, rounds: string[] }> {
  return await writersMix(url, pool, MIX_ROUNDS, gateway, false)
}

/**
 * How long a started gateway decodes the whole mix before a round: a gateway
 * runs for hours, and its first seconds under load are a start's (V8
 * compiling the hot paths, the walsender's caches), not decoding's. Its CPU a
 * life settles after about 4 s of the mix (`npm run bench:decoding` prints
 * the curve: BENCHMARKS.md); a 1 s warm-up from 2 connections measured the
 * start too.
 */
const WARM_SECONDS = 4

/** The whole mix for WARM_SECONDS, from connections of its own: what a started reader decodes before a round. */
async function warmUp (url: string): Promise<void> {
  const warm = await connectWriters(url)
  await livesPerSecond(warm, WARM_SECONDS, 'warm')
  for (const client of warm) await client.end()
  await sleep(500) // the last of it decoded and refreshed
}

/** A gateway running with these streams open (on), or none (off): what the writers' mix is measured with. */
function gatewayWith (url: string, streams: (server: Server) => Promise<Client[]>): Toggle {
  let running: { server: Server, clients: Client[] } | null = null
  return async (on) => {
    if (on && running === null) {
      const server = await startServer(url)
      running = { server, clients: await streams(server) }
      await warmUp(url)
    } else if (!on && running !== null) {
      await closeAll(running.clients)
      await stopServer(running.server)
      running = null
    }
  }
}

/** PostgreSQL 15's pg_recvlogical (Debian's postgresql-15, which .ci/run installs): a replication client in C. */
const RECVLOGICAL = '/usr/lib/postgresql/15/bin/pg_recvlogical'

/**
 * The control: a slot read by pg_recvlogical (on), or none (off). It asks
 * the walsender for what a gateway asks (pgoutput, the publication, binary
 * columns), tells it how far it got once a second as a gateway does, and
 * throws the stream away: the walsender's work stays, the gateway's is gone.
 */
function bareDecoding (url: string, pool: pg.Pool): Toggle {
  let running: { child: ReturnType<typeof spawn>, slot: string } | null = null
  let made = 0
  return async (on) => {
    if (on && running === null) {
      const slot = `bench_bare_${made++}`
      await pool.query("SELECT pg_create_logical_replication_slot($1, 'pgoutput')", [slot])
      const options = ['proto_version=1', `publication_names=${PUBLICATION}`, 'binary=true'].flatMap((option) => ['-o', option])
      const child = spawn(RECVLOGICAL, ['-d', url, '--slot', slot, '--start', '--no-loop', '-f', '/dev/null', '-s', '1', ...options], { stdio: 'ignore' })
      running = { child, slot }
      await warmUp(url)
    } else if (!on && running !== null) {
      const { child, slot } = running
      running = null
      child.kill('SIGINT')
      await new Promise((resolve) => child.once('exit', resolve))
      for (let tries = 0; ; tries++) { // its walsender lets go of the slot as it ends
        try { await pool.query('SELECT pg_drop_replication_slot($1)', [slot]); break } catch (error) { if (tries === 100) throw error; await sleep(50) }
      }
    }
  }
}

/** The control's ratio, or why there is none. */
async function bareMix (url: string, pool: pg.Pool): Promise<{ ratio: number, rounds: string[] } | string> {
  if (!existsSync(RECVLOGICAL)) return `no ${RECVLOGICAL} (apt-get install postgresql-15)`
  return await mixWith(url, pool, bareDecoding(url, pool))
}
const show = (mix: { ratio: number, rounds: string[] } | string): string => typeof mix === 'string' ? mix : `${mix.ratio.toFixed(2)} (${mix.rounds.join(', ')})`

const database = await startBenchPostgres({ fsync: 'on', synchronous_commit: 'on' })
// BENCH_LIVE_MIX_ONLY=1: the writers' figures alone (writes, writes_idle, and the control, writes_bare), for a quick look; no report written.
if (process.env.BENCH_LIVE_MIX_ONLY === '1') {
  const url = await createDataSet(database.connectionString, 'live', [LIVE_SHAPE])
  const pool = new pg.Pool({ connectionString: url, max: 2 })
  const writes = await mixWith(url, pool, gatewayWith(url, async (s) => await openMany(s, 10, (i) => [agentPath(i % AGENTS), false])))
  const idleMix = await mixWith(url, pool, gatewayWith(url, async () => []))
  const bare = await bareMix(url, pool)
  console.log(`writes=${show(writes)} writes_idle=${show(idleMix)} writes_bare=${show(bare)}`)
  await pool.end()
  await database.stop()
  process.exit(0)
}
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
    const agents = await openMany(server, 990, (i) => [agentPath(i % AGENTS), false], 10)
    measuring = true
    const cost1000 = await costPerChange(server, pool, 100_000)
    measuring = false
    log(`1,000 streams: ${cost1000.postgres.toFixed(2)} ms PostgreSQL, ${cost1000.gateway.toFixed(2)} ms gateway a change; ${delays.length} deliveries timed`)
    await closeAll(agents)
    const after10 = await costPerChange(server, pool, 200_000)
    log(`10 streams again: ${after10.postgres.toFixed(2)} ms PostgreSQL, ${after10.gateway.toFixed(2)} ms gateway a change`)
    const cost10 = { postgres: (before10.postgres + after10.postgres) / 2, gateway: (before10.gateway + after10.gateway) / 2 }
    await closeAll(floors)

    log(`${IDLE_STREAMS} idle streams …`)
    const rssBefore = rssMb(server)
    const idle = await openMany(server, IDLE_STREAMS, (i) => [agentPath(i % AGENTS), false])
    await sleep(2000)
    const rss10k = rssMb(server)
    await closeAll(idle)
    await sleep(500)
    const peak = await stopServer(server)
    const decoded = { p50: percentile(delays, 0.5), p99: percentile(delays, 0.99), count: delays.length }

    // The fallback: a role without REPLICATION, so the gateway polls.
    log(`the fallback: polling every ${POLL_MILLIS} ms …`)
    await pool.query('CREATE ROLE bench_no_replication LOGIN PASSWORD \'bench\'')
    const plain = new URL(url)
    plain.username = 'bench_no_replication'
    plain.password = 'bench'
    const poller = await startServer(url, { BENCH_LIVE_URL: plain.toString(), BENCH_POLL_MILLIS: String(POLL_MILLIS) })
    delays = []
    const pollFloors = await openMany(poller, 10, () => [floorPath, true])
    const pollAgents = await openMany(poller, 990, (i) => [agentPath(i % AGENTS), false], 10)
    await sleep(2000)
    const pollCpuBefore = postgresCpuMs(poller.database)
    const pollStarted = Date.now()
    measuring = true
    await writeChanges(pool, PHASE_SECONDS, 300_000)
    await sleep(1500) // the last poll
    measuring = false
    const pollCpuPerSecond = (postgresCpuMs(poller.database) - pollCpuBefore) / ((Date.now() - pollStarted) / 1000)
    const polled = { p50: percentile(delays, 0.5), p99: percentile(delays, 0.99), count: delays.length }
    log(`polled: p99 ${polled.p99} ms over ${polled.count} deliveries; PostgreSQL ${pollCpuPerSecond.toFixed(0)} ms CPU a second`)
    await closeAll([...pollFloors, ...pollAgents])
    await stopServer(poller)

    log('writers\' mix: a gateway with 10 agent streams against none …')
    const writes = await mixWith(url, pool, gatewayWith(url, async (s) => await openMany(s, 10, (i) => [agentPath(i % AGENTS), false])))
    log(`… ${writes.ratio.toFixed(2)}; a gateway with no stream against none …`)
    const idleMix = await mixWith(url, pool, gatewayWith(url, async () => []))
    log(`… ${idleMix.ratio.toFixed(2)}; with 10 floor streams …`)
    const floorMix = await mixWith(url, pool, gatewayWith(url, async (s) => await openMany(s, 10, () => [floorPath, false])))
    log(`… ${floorMix.ratio.toFixed(2)}; with 1,000 streams …`)
    const manyMix = await mixWith(url, pool, gatewayWith(url, async (s) => [
      ...await openMany(s, 10, () => [floorPath, false]),
      ...await openMany(s, 990, (i) => [agentPath(i % AGENTS), false], 10)
    ]))
    log(`… ${manyMix.ratio.toFixed(2)}; the slot read by pg_recvlogical instead …`)
    const bare = await bareMix(url, pool)
    log(`… ${show(bare)}`)
    await pool.end()

    const costRatio = cost1000.postgres / cost10.postgres
    const summary = `live: p99_ms=${decoded.p99} cost_1000/10=${costRatio.toFixed(2)} rss_10k_mb=${rss10k.toFixed(0)} ` +
      `writes=${writes.ratio.toFixed(2)} writes_idle=${idleMix.ratio.toFixed(2)} poll_p99_ms=${polled.p99}`
    const report = [
      '<!-- live:start: written by `npm run bench:live` -->',
      `Run ${new Date().toISOString()} on ${(/model name\s*:\s*(.*)/.exec(readFileSync('/proc/cpuinfo', 'utf8'))?.[1] ?? 'unknown CPU')}, ` +
        `durable commits (\`fsync = on\`, \`synchronous_commit = on\`), \`wal_level = logical\`, ` +
        `${CHANGES_PER_SECOND} changes a second for ${PHASE_SECONDS} s in each phase, live.coalesceMillis 200 (the default). ` +
        `Writers' mix figures: the mix's rate with a gateway running over its rate with none, median of ${MIX_ROUNDS} rounds in alternating order.`,
      '',
      '| figure | value | target |',
      '|---|---|---|',
      `| delay from commit to event at the client, p50 / p99 (${decoded.count} deliveries, 1,000 streams open) | ${decoded.p50} / ${decoded.p99} ms | p99 ≤ 300 ms |`,
      `| PostgreSQL CPU a change, 10 streams (before and after the 1,000: ${before10.postgres.toFixed(2)}, ${after10.postgres.toFixed(2)} ms) | ${cost10.postgres.toFixed(2)} ms (gateway ${cost10.gateway.toFixed(2)} ms) | |`,
      `| PostgreSQL CPU a change, 1,000 streams | ${cost1000.postgres.toFixed(2)} ms (gateway ${cost1000.gateway.toFixed(2)} ms) | |`,
      `| ratio, 1,000 / 10 | ${costRatio.toFixed(2)} | ≤ 1.2 |`,
      `| gateway RSS with ${IDLE_STREAMS.toLocaleString('en')} idle streams | ${rss10k.toFixed(0)} MB (${rssBefore.toFixed(0)} MB before them, peak ${peak.toFixed(0)} MB) | ≤ 500 MB |`,
      `| writers' mix, a gateway with 10 agent streams (its slot decodes every commit) (${writes.rounds.join(', ')}) | **${writes.ratio.toFixed(2)}** | ≥ 0.90, goal 0.95 |`,
      `| writers' mix, a gateway registered, no stream open (no slot) (${idleMix.rounds.join(', ')}) | **${idleMix.ratio.toFixed(2)}** | ≥ 0.97 |`,
      `| writers' mix, a gateway with 10 floor streams (${floorMix.rounds.join(', ')}) | ${floorMix.ratio.toFixed(2)} | |`,
      `| writers' mix, a gateway with 1,000 streams, its refreshes on the same 2 cores (${manyMix.rounds.join(', ')}) | ${manyMix.ratio.toFixed(2)} | |`,
      typeof bare === 'string'
        ? `| writers' mix, the control: a slot read by pg_recvlogical, no gateway | ${bare} | |`
        : `| writers' mix, the control: a slot read by pg_recvlogical, no gateway (what decoding alone costs; ${bare.rounds.join(', ')}) | ${bare.ratio.toFixed(2)} | |`,
      `| the fallback (\`live.pollMillis\` ${POLL_MILLIS}): delay from commit to event, p50 / p99 (${polled.count} deliveries, 1,000 streams) | ${polled.p50} / ${polled.p99} ms | p99 ≤ 1,300 ms |`,
      `| the fallback: PostgreSQL CPU a second, 1,000 streams watched (200 distinct agents, 10 floors) | ${pollCpuPerSecond.toFixed(0)} ms | |`,
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
