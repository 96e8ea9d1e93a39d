// The plugin's metrics and spans through a real OpenTelemetry SDK, installed as
// an application does (globally): an in-memory metric reader and span exporter,
// @fastify/otel on the gateway, @opentelemetry/instrumentation-pg patching pg.
import { createRequire } from 'node:module'
import { connect } from 'node:net'
import t from 'tap'
import Fastify, { type FastifyInstance } from 'fastify'
import { FastifyOtelInstrumentation } from '@fastify/otel'
import { PgInstrumentation } from '@opentelemetry/instrumentation-pg'
import { SpanStatusCode } from '@opentelemetry/api'
import activeConversations, { FLOOR_ROUTE_URL, GROUP_METRICS_ROUTE_URL, type ActiveConversationsOptions } from '../lib/index.js'
import { errorType } from '../lib/database.js'
import { INSTRUMENTS } from '../lib/telemetry/instruments.js'
import { freshDatabase } from './helpers/database.js'
import { listen } from './helpers/events.js'
import { gateway, viewUrl } from './helpers/gateway.js'
import { insertConversations, insertStream } from './helpers/rows.js'
import { histogramOf, installSdk, pointsOf, valueOf } from './helpers/telemetry.js'
import { managerToken, sign, SECRET } from './helpers/tokens.js'
import { seedWorld, STREAM } from './helpers/world.js'

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))
const db = await freshDatabase(t)
await seedWorld(db.pool)
const token = managerToken([STREAM])
const CLOSED_PORT_URL = 'postgres://nobody@127.0.0.1:1/none' // nothing listens on port 1
const name = Object.fromEntries(Object.entries(INSTRUMENTS).map(([key, { name }]) => [key, name])) as Record<keyof typeof INSTRUMENTS, string>
const PREFIX = 'active_conversations.prefix'

/** A gateway with the plugin under `prefix`; closed at teardown. */
async function gatewayAt (t: { teardown: (fn: () => unknown) => void }, prefix: string, options: Partial<ActiveConversationsOptions> = {}, before?: (app: FastifyInstance) => Promise<void>): Promise<FastifyInstance> {
  return await gateway(t, { prefix, ...(options.connectionString === undefined && { pool: db.pool }), ...options } as ActiveConversationsOptions, {}, before)
}

// Registered before the SDK is installed: the metrics API has no proxy, so its meter stays a no-op.
const early = Fastify()
await early.register(activeConversations, { prefix: '/early', pool: db.pool, jwt: { secret: SECRET }, live: { enabled: false } })
t.teardown(() => early.close())

const sdk = installSdk()
// instrumentation-pg patches pg's prototypes where require() loads it; the ESM import of pg above shares that module.
const pgInstrumentation = new PgInstrumentation()
pgInstrumentation.setTracerProvider(sdk.tracerProvider)
pgInstrumentation.enable()
createRequire(import.meta.url)('pg')

t.test('a gateway registered before the SDK records nothing; one registered after, its statements', async (t) => {
  const late = await gatewayAt(t, '/late', { live: { enabled: false } })
  for (const app of [early, late]) {
    const prefix = app === early ? '/early' : '/late'
    t.equal((await app.inject({ url: `${prefix}${viewUrl(STREAM, 'a1')}`, headers: { auth: token } })).statusCode, 200)
  }
  const points = await sdk.collect()
  t.same(pointsOf(points, name.statementDuration, { [PREFIX]: '/early' }), [], 'nothing of the early registration')
  t.equal(histogramOf(points, name.statementDuration, { [PREFIX]: '/late' }).count, 1, 'the late one\'s statement')
})

t.test('the statements: requests each one answered, their waits, durations by pool, the pool\'s connections', async (t) => {
  const app = await gatewayAt(t, '/a', { live: { enabled: false } })
  const agents = ['a1', 'a2', 'a3', 'a1', 'nobody']
  const answers = await Promise.all(agents.map(async (agentId) => await app.inject({ url: `/a${viewUrl(STREAM, agentId)}`, headers: { auth: token } })))
  t.same(answers.map((answer) => answer.statusCode), [200, 200, 200, 200, 404])
  t.equal((await app.inject({ url: `/a${FLOOR_ROUTE_URL.replace(':streamId', STREAM)}`, headers: { auth: token } })).statusCode, 200)
  t.equal((await app.inject({ url: `/a${GROUP_METRICS_ROUTE_URL.replace(':streamId', STREAM)}`, headers: { auth: token } })).statusCode, 200)

  const points = await sdk.collect()
  const mine = { [PREFIX]: '/a' }
  const agent = { ...mine, 'active_conversations.statement': 'agent' }
  const requests = histogramOf(points, name.statementRequests, agent)
  t.equal(requests.sum, 5, 'five requests answered by agent statements')
  t.ok(requests.count >= 1 && requests.count < 5, `in fewer statements than requests (${requests.count})`)
  const waits = histogramOf(points, name.statementWait, agent)
  t.equal(waits.count, requests.count, 'each statement\'s oldest request\'s wait')
  t.ok(waits.min >= 0 && waits.max < 1, 'in seconds')
  const durations = histogramOf(points, name.statementDuration, { ...agent, 'active_conversations.pool': 'primary' })
  t.equal(durations.count, requests.count, 'one duration a statement, on the primary')
  t.ok(durations.min > 0 && durations.max < 1, 'in seconds')
  t.same(Object.keys(pointsOf(points, name.statementDuration, agent)[0]?.attributes ?? {}).sort(),
    ['active_conversations.pool', 'active_conversations.prefix', 'active_conversations.statement'], 'no attribute but these: never an id')
  for (const statement of ['floor', 'group_metrics']) {
    t.same(histogramOf(points, name.statementRequests, { ...mine, 'active_conversations.statement': statement }), { count: 1, sum: 1, min: 1, max: 1 }, `${statement}: one statement`)
    t.equal(histogramOf(points, name.statementDuration, { ...mine, 'active_conversations.statement': statement }).count, 1)
  }
  t.same(pointsOf(points, name.statementFailures, mine), [], 'no failure')
  const connections = (state: string) => valueOf(points, name.poolConnections, { ...mine, 'active_conversations.pool': 'primary', 'active_conversations.connection.state': state })
  t.equal((connections('idle') as number) + (connections('used') as number), db.pool.totalCount, 'the pool\'s connections, idle and used')
  t.equal(valueOf(points, name.poolWaiting, { ...mine, 'active_conversations.pool': 'primary' }), 0, 'nothing waits for a connection')
  t.same(pointsOf(points, name.replicaAvailable, mine), [], 'no replica, no replica gauge')
})

t.test('failures by error type: a statement timeout, a pool timeout, an unreachable database', async (t) => {
  const { connectionString } = db
  const app = await gatewayAt(t, '/f', { connectionString, poolMax: 1, statementTimeoutMillis: 300, connectionTimeoutMillis: 100, live: { enabled: false } })
  // Reads of agents wait behind this lock until the statement timeout.
  const locker = await db.pool.connect()
  t.teardown(() => { locker.release() })
  await locker.query('BEGIN; LOCK TABLE agents IN ACCESS EXCLUSIVE MODE')
  const floor = app.inject({ url: `/f${FLOOR_ROUTE_URL.replace(':streamId', STREAM)}`, headers: { auth: token } })
  await sleep(50) // the floor's statement holds the only connection, waiting on the lock
  const agent = await app.inject({ url: `/f${viewUrl(STREAM, 'a1')}`, headers: { auth: token } })
  t.equal(agent.statusCode, 503, 'no connection within connectionTimeoutMillis')
  t.equal((await floor).statusCode, 503, 'the statement timed out')
  await locker.query('ROLLBACK')

  const unreachable = await gatewayAt(t, '/u', { connectionString: CLOSED_PORT_URL, live: { enabled: false } })
  t.equal((await unreachable.inject({ url: `/u${viewUrl(STREAM, 'a1')}`, headers: { auth: token } })).statusCode, 503)

  const points = await sdk.collect()
  const failures = (prefix: string, statement: string, type: string) =>
    valueOf(points, name.statementFailures, { [PREFIX]: prefix, 'active_conversations.statement': statement, 'active_conversations.pool': 'primary', 'error.type': type })
  t.equal(failures('/f', 'agent', 'pool_timeout'), 1)
  t.equal(failures('/f', 'floor', 'timeout'), 1)
  t.equal(failures('/u', 'agent', 'unavailable'), 1)
  t.equal(histogramOf(points, name.statementDuration, { [PREFIX]: '/f', 'active_conversations.statement': 'floor' }).count, 1, 'a failed statement has its duration too')
})

t.test('error types of the errors the statements meet', async (t) => {
  const pgError = (code: string, message = 'message') => Object.assign(new Error(message), { code })
  t.equal(errorType(pgError('40001')), 'recovery_conflict')
  t.equal(errorType(pgError('26000')), 'prepared_statement_mismatch')
  t.equal(errorType(new Error('Query read timeout')), 'timeout')
  t.equal(errorType(pgError('57P01')), 'unavailable')
  t.equal(errorType(pgError('42P01')), 'other')
  t.equal(errorType('not an error'), 'other')
})

t.test('a replica that cannot answer: its failures, the fallbacks, the replica gauge at 0', async (t) => {
  const pg = (await import('pg')).default
  const replica = new pg.Pool({ connectionString: CLOSED_PORT_URL })
  t.teardown(() => replica.end())
  const app = await gatewayAt(t, '/r', { readPool: replica, live: { enabled: false } })
  t.equal(valueOf(await sdk.collect(), name.replicaAvailable, { [PREFIX]: '/r' }), 1, 'the replica is in use until it fails')
  t.equal((await app.inject({ url: `/r${viewUrl(STREAM, 'a1')}`, headers: { auth: token } })).statusCode, 200, 'the primary answers')
  const points = await sdk.collect()
  const mine = { [PREFIX]: '/r' }
  t.equal(valueOf(points, name.replicaFallbacks, { ...mine, 'active_conversations.reason': 'unavailable' }), 1)
  t.equal(valueOf(points, name.replicaAvailable, mine), 0)
  t.equal(valueOf(points, name.statementFailures, { ...mine, 'active_conversations.pool': 'replica', 'error.type': 'unavailable' }), 1)
  t.equal(histogramOf(points, name.statementDuration, { ...mine, 'active_conversations.pool': 'primary' }).count, 1)
  t.equal(valueOf(points, name.poolWaiting, { ...mine, 'active_conversations.pool': 'replica' }), 0, 'the replica\'s pool is observed too')
})

t.test('live streams: open by kind, events, changes, refreshes and their lag, drops and refusals', async (t) => {
  const app = await gatewayAt(t, '/l', { live: { coalesceMillis: 50, maxStreamsPerCaller: 3 } })
  const base = await app.listen({ port: 0, host: '127.0.0.1' })
  const mine = { [PREFIX]: '/l' }
  const kind = (stream: string) => ({ ...mine, 'active_conversations.live.stream': stream })
  let points = await sdk.collect()
  for (const stream of ['agent', 'floor', 'metrics']) {
    t.equal(valueOf(points, name.liveStreams, kind(stream)), 0, `${stream}: 0 open before any`)
    t.equal(valueOf(points, name.liveRefused, { ...kind(stream), 'active_conversations.reason': 'caller_limit' }), 0, 'counters start at 0')
  }
  t.equal(valueOf(points, name.liveSourceConnected, mine), 0, 'no stream open: no slot')

  const agent = listen(`${base}/l${viewUrl(STREAM, 'a1')}/events`, token)
  const floor = listen(`${base}/l${FLOOR_ROUTE_URL.replace(':streamId', STREAM)}/events`, token)
  const metrics = listen(`${base}/l${GROUP_METRICS_ROUTE_URL.replace(':streamId', STREAM)}/events`, token)
  t.teardown(() => { agent.close(); floor.close(); metrics.close() })
  await Promise.all([agent.next((event) => event.type === 'view'), floor.next((event) => event.type === 'view'), metrics.next((event) => event.type === 'metrics')])
  const fourth = await fetch(`${base}/l${viewUrl(STREAM, 'a2')}/events`, { headers: { auth: token } })
  t.equal(fourth.status, 429)
  await fourth.body?.cancel()
  points = await sdk.collect()
  for (const stream of ['agent', 'floor', 'metrics']) t.equal(valueOf(points, name.liveStreams, kind(stream)), 1, `${stream}: 1 open`)
  t.equal(valueOf(points, name.liveRefused, { ...kind('agent'), 'active_conversations.reason': 'caller_limit' }), 1, 'the fourth: refused')
  t.equal(valueOf(points, name.liveEvents, { ...kind('agent'), 'active_conversations.live.event': 'view' }), 1, 'the agent\'s first view')
  t.equal(valueOf(points, name.liveEvents, { ...kind('floor'), 'active_conversations.live.event': 'view' }), 3, 'one view per agent on the floor')
  t.equal(valueOf(points, name.liveSourceConnected, mine), 1, 'streams open: a slot decodes')
  const backlog = valueOf(points, name.liveSourceBacklog, mine) as number
  t.ok(backlog >= 0 && backlog < 16 * 1024 * 1024, `the slot's backlog, in bytes: ${backlog}`)

  await db.pool.query("UPDATE conversations SET customer_first_name = 'Changed' WHERE stream_id = $1 AND id = 'act-1'", [STREAM])
  await agent.next((event) => event.type === 'view' && event.data.includes('Changed'))
  await floor.next((event) => event.type === 'view' && event.data.includes('Changed'))
  points = await sdk.collect()
  t.equal(valueOf(points, name.liveEvents, { ...kind('agent'), 'active_conversations.live.event': 'view' }), 2, 'and the changed one')
  t.ok((valueOf(points, name.liveChanges, mine) as number) >= 1, 'the decoded change')
  const lag = histogramOf(points, name.liveLag, mine)
  t.ok(lag.count >= 1 && lag.min >= 0.05 && lag.max < 1, `the lag, from the commit, includes the 50 ms coalescing: ${lag.min} s`)
  const refreshes = histogramOf(points, name.liveRefreshDuration, mine)
  t.ok(refreshes.count >= 1 && refreshes.max < 1, 'the refresh\'s duration')
  t.ok(histogramOf(points, name.liveRefreshViews, mine).sum >= 2, 'its views: a1 on its own stream and on the floor, and the metrics')

  agent.close()
  floor.close()
  metrics.close()
  await sleep(200)
  points = await sdk.collect()
  for (const stream of ['agent', 'floor', 'metrics']) t.equal(valueOf(points, name.liveStreams, kind(stream)), 0, `${stream}: 0 open after`)
})

t.test('live streams: the view is gone, the token expires, the gateway is full, the database is unavailable', async (t) => {
  const gone = await gatewayAt(t, '/g')
  const goneBase = await gone.listen({ port: 0, host: '127.0.0.1' })
  await insertStream(db.pool, 'st-gone', { agents: [{ id: 'a-gone' }] })
  const goneStream = listen(`${goneBase}/g${viewUrl('st-gone', 'a-gone')}/events`, managerToken(['st-gone']))
  t.teardown(() => { goneStream.close() })
  await goneStream.next((event) => event.type === 'view')
  await db.pool.query("DELETE FROM agents WHERE stream_id = 'st-gone'")
  await goneStream.next((event) => event.type === 'error')
  goneStream.close()

  const app = await gatewayAt(t, '/e', { live: { maxStreams: 1 } })
  const base = await app.listen({ port: 0, host: '127.0.0.1' })
  const expiring = listen(`${base}/e${viewUrl(STREAM, 'a2')}/events`, sign({ sub: 'm-exp', role: 'manager', streamIds: [STREAM] }, { expiresIn: 2 }))
  t.teardown(() => { expiring.close() })
  await expiring.next((event) => event.type === 'view')
  const full = await fetch(`${base}/e${viewUrl(STREAM, 'a3')}/events`, { headers: { auth: token } })
  t.equal(full.status, 503)
  await full.body?.cancel()
  await expiring.next((event) => event.type === 'error', 5000)
  expiring.close()

  const unavailable = await gatewayAt(t, '/n', { connectionString: CLOSED_PORT_URL })
  const refused = await unavailable.inject({ url: `/n${viewUrl(STREAM, 'a2')}/events`, headers: { auth: token } })
  t.equal(refused.statusCode, 503)

  const points = await sdk.collect()
  const reason = (prefix: string, stream: string, why: string) => ({ [PREFIX]: prefix, 'active_conversations.live.stream': stream, 'active_conversations.reason': why })
  t.equal(valueOf(points, name.liveDropped, reason('/g', 'agent', 'view_gone')), 1)
  t.equal(valueOf(points, name.liveDropped, reason('/e', 'agent', 'token_expired')), 1)
  t.equal(valueOf(points, name.liveRefused, reason('/e', 'agent', 'gateway_limit')), 1)
  t.equal(valueOf(points, name.liveRefused, reason('/n', 'agent', 'unavailable')), 1)
  t.equal(valueOf(points, name.liveSourceConnected, { [PREFIX]: '/n' }), 0, 'it has no slot')
  t.equal(valueOf(points, name.liveSourceBacklog, { [PREFIX]: '/n' }), 0, 'and so no backlog')
})

t.test('live streams: a client that does not read is counted as dropped', async (t) => {
  await insertStream(db.pool, 'st-slow', { agents: Array.from({ length: 40 }, (_, i) => ({ id: `agent-${i}` })) })
  await insertConversations(db.pool, 'st-slow', Array.from({ length: 150 }, (_, i) => ({ id: `u-${i}`, status: 'queued' as const, group: null })))
  const app = await gatewayAt(t, '/s', { live: { coalesceMillis: 20, maxUnsentBytes: 64 * 1024 } })
  const { port } = new URL(await app.listen({ port: 0, host: '127.0.0.1' }))
  const slowToken = managerToken(['st-slow'])
  const stalled = connect(Number(port), '127.0.0.1')
  stalled.pause()
  stalled.on('error', () => {})
  t.teardown(() => { stalled.destroy() })
  stalled.write(`GET /s${FLOOR_ROUTE_URL.replace(':streamId', 'st-slow')}/events HTTP/1.1\r\nHost: test\r\nauth: ${slowToken}\r\n\r\n`)
  const dropped = { [PREFIX]: '/s', 'active_conversations.live.stream': 'floor', 'active_conversations.reason': 'slow_client' }
  let count = 0
  for (let i = 0; i < 40 && count === 0; i++) {
    await db.pool.query("UPDATE conversations SET customer_first_name = 'Round " + i + "' WHERE stream_id = 'st-slow' AND id = 'u-0'")
    await sleep(60)
    count = valueOf(await sdk.collect(), name.liveDropped, dropped) as number
  }
  t.equal(count, 1)
})

t.test('traces: a request\'s wait in its own trace, linked to its statement\'s span from the root context, pg\'s span under it', async (t) => {
  const fastifyOtel = new FastifyOtelInstrumentation()
  fastifyOtel.setTracerProvider(sdk.tracerProvider)
  const app = await gatewayAt(t, '/t', { live: { enabled: false } }, async (app) => { await app.register(fastifyOtel.plugin()) })
  const answers = await Promise.all(['a2', 'a3', 'a1'].map(async (agentId) => await app.inject({ url: `/t${viewUrl(STREAM, agentId)}`, headers: { auth: token } })))
  t.same(answers.map((answer) => answer.statusCode), [200, 200, 200])

  const spans = sdk.spans()
  const waits = spans.filter((span) => span.name === 'fastify-active-conversations agent wait')
  t.equal(waits.length, 3, 'a wait span per request')
  const statementIds = new Set(waits.flatMap((wait) => wait.links.map((link) => link.context.spanId)))
  const statements = spans.filter((span) => statementIds.has(span.spanContext().spanId))
  t.ok(statements.length >= 1 && statements.length <= 2, 'linked to their statement spans')
  for (const statement of statements) {
    t.equal(statement.name, 'fastify-active-conversations agent statement')
    t.equal(statement.parentSpanContext, undefined, 'the statement span is a root')
    t.equal(statement.attributes['active_conversations.pool'], 'primary')
    t.equal(statement.attributes['active_conversations.requests'], statement.links.length, 'linked to each request it answered')
    const queries = spans.filter((span) => span.parentSpanContext?.spanId === statement.spanContext().spanId && span.name.startsWith('pg.query'))
    t.equal(queries.length, 1, 'pg\'s query span is under the statement span')
  }
  for (const wait of waits) {
    const request = spans.find((span) => span.spanContext().spanId === wait.parentSpanContext?.spanId)
    t.ok(request !== undefined && request.spanContext().traceId === wait.spanContext().traceId, 'the wait is in the request\'s trace')
    t.not(wait.spanContext().traceId, statements[0]?.spanContext().traceId, 'not in the statement\'s')
    t.ok(statements.some((statement) => statement.links.some((link) => link.context.spanId === wait.spanContext().spanId)), 'the statement links back to it')
  }

  const unreachable = await gatewayAt(t, '/tu', { connectionString: CLOSED_PORT_URL, live: { enabled: false } })
  const before = sdk.spans().length
  t.equal((await unreachable.inject({ url: `/tu${viewUrl(STREAM, 'a1')}`, headers: { auth: token } })).statusCode, 503)
  const failed = sdk.spans().slice(before).filter((span) => span.name === 'fastify-active-conversations agent statement' && span.status.code === SpanStatusCode.ERROR)
  t.equal(failed.length, 1)
  t.same([failed[0]?.status.message, failed[0]?.attributes['error.type']], ['unavailable', 'unavailable'], 'the error type, never the driver\'s message')
})
