// The benchmark's server, in a process of its own: the plugin and, on the same
// server and pool, a baseline route that runs SELECT 1 without auth.
// Env: DATABASE_URL, BENCH_JWT_SECRET, BENCH_PREPARED_STATEMENTS (true; false as
// behind a transaction-mode pooler), BENCH_TELEMETRY (none; metrics: the OpenTelemetry
// metrics SDK with a Prometheus reader; traces: that and tracing), BENCH_LIVE_URL (live.connectionString),
// BENCH_POLL_MILLIS (live.pollMillis). Prints "listening <url>".
import Fastify from 'fastify'
import pg from 'pg'
import activeConversations from '../lib/index.js'
import { countStatements } from '../support/count-statements.js'
import { installBenchTelemetry, type BenchTelemetry } from './telemetry-sdk.js'

// Before the plugin registers: it takes its meter then.
installBenchTelemetry((process.env.BENCH_TELEMETRY ?? 'none') as BenchTelemetry)

// Connections are kept (no idle timeout): the bench reads its backends' CPU time.
const pool = new pg.Pool({ connectionString: process.env.DATABASE_URL, max: 10, idleTimeoutMillis: 0 })
pool.on('error', () => {})
// Statements sent through the pool (the baseline's counted apart).
const statements = countStatements(pool)
let baselineStatements = 0
let endpointResponses = 0

const app = Fastify({ logger: false })
app.addHook('onResponse', async (request) => { if (request.url.startsWith('/public/')) endpointResponses++ })
await app.register(activeConversations, {
  pool,
  jwt: { secret: process.env.BENCH_JWT_SECRET as string },
  preparedStatements: process.env.BENCH_PREPARED_STATEMENTS !== 'false',
  live: {
    ...(process.env.BENCH_LIVE_URL !== undefined && { connectionString: process.env.BENCH_LIVE_URL }),
    ...(process.env.BENCH_POLL_MILLIS !== undefined && { pollMillis: Number(process.env.BENCH_POLL_MILLIS) })
  }
})
app.get('/baseline', async () => {
  baselineStatements++
  return (await pool.query('SELECT 1 AS one')).rows[0]
})
app.get('/bench/statements', async () => ({ statements: statements.count() - baselineStatements, responses: endpointResponses }))
const address = await app.listen({ host: '127.0.0.1', port: 0 })
console.log(`listening ${address}`)
process.once('SIGTERM', () => { app.close().then(() => pool.end()).then(() => process.exit(0)) })
