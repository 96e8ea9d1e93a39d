// npm run bench:pooler: what running behind PgBouncer costs. The agent route on
// light views of the large data set against a SELECT 1 route on the same server
// and pool, by three paths, side by side in every round: prepared statements
// straight to PostgreSQL (the default); unnamed statements
// (`preparedStatements: false`) straight to PostgreSQL; unnamed statements
// through PgBouncer in transaction mode. CPU per request counts the server,
// the PostgreSQL backends and, on the pooled path, PgBouncer.
// Env: DATABASE_URL (default: embedded PostgreSQL), BENCH_SECONDS (5), BENCH_ROUNDS (3).
import { execFileSync } from 'node:child_process'
import pg from 'pg'
import { LARGE, randomAgent } from '../support/data-sets.js'
import { PGBOUNCER, pgbouncerMissing, startPgBouncer } from '../support/pgbouncer.js'
import { processCpuMs } from './cpu.js'
import { createDataSet, startBenchPostgres } from './database.js'
import { BASELINE, load, log, managerToken, median, startServer, stopServer, writeReport, type Figures, type Server, type Target } from './runner.js'

const SECONDS = Number(process.env.BENCH_SECONDS ?? 5)
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3)
if (pgbouncerMissing) {
  console.error(`bench:pooler: ${pgbouncerMissing}`)
  process.exit(1)
}
const PGBOUNCER_VERSION = /PgBouncer (\S+)/.exec(execFileSync(PGBOUNCER, ['--version'], { encoding: 'utf8' }))?.[1] ?? ''

const embedded = process.env.DATABASE_URL ? undefined : await startBenchPostgres()
const serverUrl = process.env.DATABASE_URL ?? (embedded?.connectionString as string)
const started = Date.now()
const seeded = await createDataSet(serverUrl, 'fac_pooler_prepared', [LARGE])
// Each path its own copy (a file copy of the seeded one), so that each one's backends are counted apart.
const admin = new pg.Client({ connectionString: serverUrl })
await admin.connect()
for (const copy of ['fac_pooler_unnamed', 'fac_pooler_pgbouncer']) {
  await admin.query(`DROP DATABASE IF EXISTS ${copy} WITH (FORCE)`)
  await admin.query(`CREATE DATABASE ${copy} TEMPLATE fac_pooler_prepared`)
}
await admin.end()
log(`large data set seeded and copied in ${((Date.now() - started) / 1000).toFixed(1)} s`)
const databaseUrl = (name: string) => Object.assign(new URL(seeded), { pathname: `/${name}` }).toString()

// As a fleet runs it: transaction mode, as many server connections as the gateway's pool.
const bouncer = await startPgBouncer(serverUrl, { default_pool_size: 10 })
const token = managerToken(LARGE.streams)
const agentRoute: Target = () => {
  const { streamId, agentId } = randomAgent(LARGE)
  return `/public/${streamId}/analytics/manager/agent/${agentId}/active-conversations`
}
const paths = [
  { name: 'prepared, direct', server: await startServer(databaseUrl('fac_pooler_prepared')), pooler: false },
  { name: 'unnamed, direct', server: await startServer(databaseUrl('fac_pooler_unnamed'), { BENCH_PREPARED_STATEMENTS: 'false' }), pooler: false },
  { name: 'unnamed, through PgBouncer', server: await startServer(bouncer.url('fac_pooler_pgbouncer'), { BENCH_PREPARED_STATEMENTS: 'false' }), pooler: true }
]

/** A load run, with PgBouncer's CPU time added to the database's on the pooled path. */
async function measure (server: Server, target: Target, pooler: boolean): Promise<Figures> {
  const before = pooler ? processCpuMs(bouncer.pid) : 0
  const figures = await load(server, target, SECONDS, token)
  const after = pooler ? processCpuMs(bouncer.pid) : 0
  return { ...figures, postgresCpu: figures.postgresCpu + (after - before) / (figures.rps * SECONDS) }
}
for (const path of paths) { await measure(path.server, BASELINE, path.pooler); await measure(path.server, agentRoute, path.pooler) } // warm-up

const ratios = paths.map(() => [] as number[])
const rows: string[] = []
const cpu = (f: Figures) => (f.serverCpu + f.postgresCpu).toFixed(3)
for (let round = 1; round <= ROUNDS; round++) {
  for (const [i, path] of paths.entries()) {
    const baseline = await measure(path.server, BASELINE, path.pooler)
    const route = await measure(path.server, agentRoute, path.pooler)
    const failures = baseline.non2xx + baseline.errors + route.non2xx + route.errors
    ratios[i]?.push(route.rps / baseline.rps)
    rows.push(`| round ${round}: ${path.name} | ${baseline.rps.toFixed(0)} | ${route.rps.toFixed(0)} | ${(route.rps / baseline.rps).toFixed(3)} | ${cpu(baseline)} | ${cpu(route)} | ${failures} |`)
    log(`round ${round}, ${path.name}: SELECT 1 ${baseline.rps.toFixed(0)} req/s, agent route ${route.rps.toFixed(0)} (ratio ${(route.rps / baseline.rps).toFixed(3)}), ${failures} failures`)
  }
}
for (const path of paths) await stopServer(path.server)
await bouncer.stop()
await embedded?.stop()

const [prepared, unnamed, pooled] = ratios.map(median)
const summary = `bench:pooler: prepared_direct=${prepared?.toFixed(2)} unnamed_direct=${unnamed?.toFixed(2)} unnamed_pgbouncer=${pooled?.toFixed(2)}`
const table = [
  '| run | SELECT 1 req/s | agent route req/s | ratio | SELECT 1 CPU ms/request | agent route CPU ms/request | non-2xx and errors |',
  '|---|---|---|---|---|---|---|',
  ...rows
].join('\n')
writeReport('pooler', 'Behind a pooler', `<!-- pooler:start (written by npm run bench:pooler) -->
Command: \`npm run bench:pooler\` (BENCH_SECONDS=${SECONDS}, BENCH_ROUNDS=${ROUNDS}), ${new Date().toISOString().slice(0, 10)}. The agent route on light views of ${LARGE.streams * LARGE.agentsPerStream} agents against a \`SELECT 1\` route on the same server and pool, by three paths side by side in every round: prepared statements straight to PostgreSQL (the default), unnamed statements (\`preparedStatements: false\`) straight to PostgreSQL, and unnamed statements through PgBouncer ${PGBOUNCER_VERSION} in transaction mode. Each path's pool has 10 connections (through PgBouncer, its 10 server connections). CPU a request counts the server, the PostgreSQL backends and, on the pooled path, PgBouncer.

${table}

\`${summary}\`
<!-- pooler:end -->`)
console.log(table)
console.log(summary)
