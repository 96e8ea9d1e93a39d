// npm run soak: minutes of load against the demo gateway (loopback only), with a
// PostgreSQL outage in the middle. Reports requests sent, answers by status,
// errors, and the gateway's RSS over time. SOAK_SECONDS (default 180),
// SOAK_CONNECTIONS (default 20), SOAK_OUTAGE_SECONDS (default 5).
import { readFileSync } from 'node:fs'
import autocannon from 'autocannon'
import { migrate } from '../lib/index.js'
import { startEmbeddedPostgres } from '../scripts/embedded-postgres.js'
import { DEMO_STREAM_ID } from '../examples/demo-data.js'
import { spawnDemo } from '../examples/demo-process.js'

const seconds = Number(process.env.SOAK_SECONDS ?? 180)
const connections = Number(process.env.SOAK_CONNECTIONS ?? 20)
const outageSeconds = Number(process.env.SOAK_OUTAGE_SECONDS ?? 5)
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))
const rssMb = (pid: number) => Number(/VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1]) / 1024

const database = await startEmbeddedPostgres()
await migrate(database.connectionString)

// The gateway in a process of its own, so that its memory is measured alone.
const gateway = await spawnDemo({ ...process.env, DATABASE_URL: database.connectionString, PORT: '0', LOG_LEVEL: 'warn' })
gateway.child.stderr.pipe(process.stderr)
const { origin } = new URL(gateway.url)
const token = gateway.token
const pid = gateway.child.pid as number

const rss: Array<[number, number]> = [[0, rssMb(pid)]]
const started = Date.now()
const sampler = setInterval(() => rss.push([Math.round((Date.now() - started) / 1000), rssMb(pid)]), 5000)
const outage = (async () => {
  await sleep((seconds / 2) * 1000)
  console.error(`${Math.round((Date.now() - started) / 1000)} s: stopping PostgreSQL for ${outageSeconds} s`)
  await database.pause()
  await sleep(outageSeconds * 1000)
  await database.resume()
  console.error(`${Math.round((Date.now() - started) / 1000)} s: PostgreSQL is back`)
})()

const result = await autocannon({
  url: origin,
  connections,
  duration: seconds,
  headers: { auth: token },
  // The demo stream's three agents in turn.
  requests: ['a-1234', 'a-2345', 'a-3456'].map((agent) => ({
    method: 'GET' as const,
    path: `/public/${DEMO_STREAM_ID}/analytics/manager/agent/${agent}/active-conversations`
  }))
})
await outage
clearInterval(sampler)
rss.push([Math.round((Date.now() - started) / 1000), rssMb(pid)])

gateway.child.kill('SIGTERM')
const exitCode = await gateway.exited
await database.stop()

const byStatus = Object.fromEntries(Object.entries(result.statusCodeStats ?? {}).map(([status, { count }]) => [status, count]))
const third = Math.max(1, Math.floor(rss.length / 3))
const mean = (values: number[]) => values.reduce((a, b) => a + b, 0) / values.length
const early = mean(rss.slice(1, 1 + third).map(([, mb]) => mb))
const late = mean(rss.slice(-third).map(([, mb]) => mb))

console.log(`soak: ${seconds} s, ${connections} connections, PostgreSQL stopped for ${outageSeconds} s at ${seconds / 2} s`)
console.log(`requests sent: ${result.requests.sent}, answered: ${result.requests.total}`)
console.log(`answers by status: ${JSON.stringify(byStatus)}`)
console.log(`errors: ${result.errors}, timeouts: ${result.timeouts}, resets: ${result.resets}`)
console.log(`latency ms: p50 ${result.latency.p50}, p99 ${result.latency.p99}, max ${result.latency.max}`)
console.log(`gateway RSS MB (s, MB): ${rss.map(([s, mb]) => `${s}:${mb.toFixed(0)}`).join(' ')}`)
console.log(`gateway RSS MB: start ${rss[0]?.[1].toFixed(1)}, end ${rss.at(-1)?.[1].toFixed(1)}, mean of first third ${early.toFixed(1)}, of last third ${late.toFixed(1)}`)
console.log(`gateway exit code after SIGTERM: ${String(exitCode)}`)
