// `npm start` installs the OpenTelemetry metrics SDK with a Prometheus reader and
// serves the plugin's metrics at /metrics: each series shows what was done.
import t from 'tap'
import { spawnDemo } from '../examples/demo-process.js'
import { DEMO_STREAM_ID } from '../examples/demo-data.js'
import { INSTRUMENTS } from '../lib/telemetry/instruments.js'
import { freshDatabase } from './helpers/database.js'
import { listen } from './helpers/events.js'
import { sign, SECRET } from './helpers/tokens.js'

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

/** A metric's Prometheus name, as the exporter writes it: dots as underscores, `_total` after a counter's. */
function prometheusName ({ name, instrument }: { name: string, instrument: string }): string {
  return `${name.replaceAll('.', '_')}${instrument === 'counter' ? '_total' : ''}`
}

/** The value of the series `name` whose labels include `labels` (summed over them; undefined: no such series). */
function series (page: string, name: string, labels: Record<string, string> = {}): number | undefined {
  let found: number | undefined
  for (const line of page.split('\n')) {
    const match = /^([a-z_]+)(?:\{(.*)\})? (\S+)$/.exec(line)
    if (match === null || match[1] !== name) continue
    const own = Object.fromEntries([...(match[2] ?? '').matchAll(/([a-z_]+)="([^"]*)"/g)].map(([, key, value]) => [key, value]))
    if (Object.entries(labels).every(([key, value]) => own[key] === value)) found = (found ?? 0) + Number(match[3])
  }
  return found
}

t.test('npm start serves the plugin\'s metrics at /metrics, each series as the requests left it', async (t) => {
  const db = await freshDatabase(t, { migrated: false })
  const demo = await spawnDemo({ ...process.env, PORT: '0', DATABASE_URL: db.connectionString, DEMO_WRITER: 'off', DEMO_JWT_SECRET: SECRET, LOG_LEVEL: 'warn' })
  t.teardown(() => { if (demo.child.exitCode === null) demo.child.kill('SIGKILL') })
  const metricsUrl = /^The plugin's metrics \(OpenTelemetry, Prometheus text format\): (\S+)$/m.exec(demo.output())?.[1] as string
  t.match(metricsUrl, /^http:\/\/127\.0\.0\.1:\d+\/metrics$/, 'printed next to the token')
  const base = new URL(demo.url).origin
  const scrape = async (): Promise<string> => {
    const response = await fetch(metricsUrl)
    t.equal(response.headers.get('content-type'), 'text/plain', 'the Prometheus text format')
    return await response.text()
  }
  const get = async (path: string, token = demo.token) => (await fetch(`${base}${path}`, { headers: { auth: token } })).status
  const manager = `/public/${DEMO_STREAM_ID}/analytics/manager`
  const agent = { active_conversations_prefix: '', active_conversations_statement: 'agent' }

  let page = await scrape()
  t.equal(series(page, 'active_conversations_live_streams', { active_conversations_live_stream: 'agent' }), 0, 'no stream open yet')
  t.equal(series(page, 'active_conversations_live_source_connected'), 0, 'no stream: no slot')

  t.same(await Promise.all(['a-1234', 'a-2345', 'a-3456'].map(async (id) => await get(`${manager}/agent/${id}/active-conversations`))), [200, 200, 200])
  t.equal(await get(`${manager}/agents/active-conversations`), 200)
  t.equal(await get(`${manager}/agent-groups/metrics`), 200)
  page = await scrape()
  t.equal(series(page, 'active_conversations_statement_requests_sum', agent), 3, 'three agent requests')
  const statements = series(page, 'active_conversations_statement_requests_count', agent) as number
  t.equal(series(page, 'active_conversations_statement_wait_count', agent), statements, 'each statement\'s wait')
  t.equal(series(page, 'active_conversations_statement_duration_count', { ...agent, active_conversations_pool: 'primary' }), statements, 'each statement\'s duration')
  for (const statement of ['floor', 'group_metrics']) {
    t.equal(series(page, 'active_conversations_statement_duration_count', { active_conversations_statement: statement }), 1, `one ${statement} statement`)
  }
  t.ok((series(page, 'active_conversations_pool_connections', { active_conversations_connection_state: 'idle' }) as number) >= 1, 'the pool\'s idle connections')
  t.equal(series(page, 'active_conversations_pool_waiting'), 0)

  // A floor statement waits on a lock until the statement timeout (2 s).
  const locker = await db.pool.connect()
  await locker.query('BEGIN; LOCK TABLE agents IN ACCESS EXCLUSIVE MODE')
  t.equal(await get(`${manager}/agents/active-conversations`), 503, 'the statement timed out')
  await locker.query('ROLLBACK')
  locker.release()

  // Streams: one open, one refused, one whose token expires.
  const stream = listen(`${base}${manager}/agent/a-1234/active-conversations/events`, demo.token)
  const expiring = listen(`${base}${manager}/agent/a-2345/active-conversations/events`, sign({ sub: 'expiring', role: 'manager', streamIds: [DEMO_STREAM_ID] }, { expiresIn: 2 }))
  t.teardown(() => { stream.close(); expiring.close() })
  await stream.next((event) => event.type === 'view')
  await expiring.next((event) => event.type === 'view')
  t.equal(await get(`${manager}/agent/a-9999/active-conversations/events`), 404, 'not an agent: not a stream')
  page = await scrape()
  t.equal(series(page, 'active_conversations_live_streams', { active_conversations_live_stream: 'agent' }), 2, 'two streams open')
  t.equal(series(page, 'active_conversations_live_source_connected'), 1, 'a slot decodes changes')
  await db.pool.query("UPDATE conversations SET customer_first_name = 'Marie' WHERE id = 'c-1233'")
  await stream.next((event) => event.type === 'view' && event.data.includes('Marie'))
  await expiring.next((event) => event.type === 'error', 5000)
  stream.close()
  expiring.close()
  await sleep(300)

  page = await scrape()
  const live = { active_conversations_live_stream: 'agent' }
  t.equal(series(page, 'active_conversations_live_streams', live), 0, 'none open after')
  t.equal(series(page, 'active_conversations_live_events_total', { ...live, active_conversations_live_event: 'view' }), 3, 'two first views and a change')
  t.equal(series(page, 'active_conversations_live_events_total', { ...live, active_conversations_live_event: 'error' }), 1, 'the expired token\'s error')
  t.equal(series(page, 'active_conversations_live_dropped_total', { ...live, active_conversations_reason: 'token_expired' }), 1)
  t.equal(series(page, 'active_conversations_live_refused_total', { ...live, active_conversations_reason: 'caller_limit' }), 0)
  t.ok((series(page, 'active_conversations_live_changes_total') as number) >= 1, 'the decoded change')
  t.ok((series(page, 'active_conversations_live_lag_count') as number) >= 1, 'its lag')
  t.equal(series(page, 'active_conversations_statement_failures_total', { active_conversations_statement: 'floor', error_type: 'timeout' }), 1, 'the floor statement that timed out')
  const floorDuration = series(page, 'active_conversations_statement_duration_sum', { active_conversations_statement: 'floor' }) as number
  t.ok(floorDuration >= 2, `its 2 s are in the floor statements' durations: ${floorDuration} s`)

  // Every documented series is on the page, but the replica's: the demo has none (test/telemetry.test.ts covers them).
  const absent = ['active_conversations.replica.available', 'active_conversations.replica.fallbacks']
  for (const instrument of Object.values(INSTRUMENTS)) {
    const name = prometheusName(instrument)
    t.equal(page.includes(`\n# TYPE ${name} `), !absent.includes(instrument.name), `${name}${absent.includes(instrument.name) ? ': not in the demo' : ''}`)
  }

  demo.child.kill('SIGTERM')
  t.equal(await demo.exited, 0, 'SIGTERM: a clean exit, the SDK shut down')
})
