// Live streams when things go wrong: PostgreSQL stopped and started again, too
// many streams, a client that does not read, the gateway closing.
import { request } from 'node:http'
import { connect } from 'node:net'
import t from 'tap'
import Fastify from 'fastify'
import activeConversations, { FLOOR_ROUTE_URL, GROUP_METRICS_ROUTE_URL } from '../lib/index.js'
import { freshDatabase, serverOfItsOwn } from './helpers/database.js'
import { listen } from './helpers/events.js'
import { gateway, viewUrl } from './helpers/gateway.js'
import { insertConversations, insertStream } from './helpers/rows.js'
import { logLines } from './helpers/log.js'
import { managerToken, sign, SECRET } from './helpers/tokens.js'
import { seedWorld, STREAM } from './helpers/world.js'

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))
const agentEvents = (agentId: string) => `${viewUrl(STREAM, agentId)}/events`
const floorEvents = (stream: string, query = '') => `${FLOOR_ROUTE_URL.replace(':streamId', stream)}/events${query}`

t.test('PostgreSQL stopped: open streams stay open with `event: error` 503; started again: a fresh view', async (t) => {
  const { database, pool: writer } = await serverOfItsOwn(t) // this test stops it
  await seedWorld(writer)

  const app = Fastify()
  await app.register(activeConversations, { connectionString: database.connectionString, connectionTimeoutMillis: 1000, jwt: { secret: SECRET }, live: { coalesceMillis: 50 } })
  t.teardown(() => app.close())
  const base = await app.listen({ port: 0, host: '127.0.0.1' })
  const token = managerToken([STREAM])
  const agent = listen(`${base}${agentEvents('a1')}`, token)
  const floor = listen(`${base}${floorEvents(STREAM)}`, token)
  // Queue metrics of no group: figures that never change, so only the outage can make them be sent again.
  const metrics = listen(`${base}${GROUP_METRICS_ROUTE_URL.replace(':streamId', STREAM)}/events?agentGroupId=none`, token)
  t.teardown(() => { agent.close(); floor.close(); metrics.close() })
  await agent.next((event) => event.type === 'view')
  await floor.next((event) => event.type === 'view')
  await metrics.next((event) => event.type === 'metrics')

  await database.pause()
  const [agentError, floorError, metricsError] = await Promise.all([agent.next((event) => event.type === 'error'), floor.next((event) => event.type === 'error'), metrics.next((event) => event.type === 'error')])
  for (const error of [agentError, floorError, metricsError]) {
    t.same(JSON.parse(error.data), { statusCode: 503, code: 'FAC_ERR_DATABASE_UNAVAILABLE', error: 'Service Unavailable', message: 'Database unavailable, retry later' })
  }
  t.equal(agent.readyState, 1, 'the agent stream stays open')
  t.equal(floor.readyState, 1, 'the floor stream stays open')
  const opening = await fetch(`${base}${agentEvents('a2')}`, { headers: { auth: token } })
  t.equal(opening.status, 503, 'a new stream meanwhile: the 503 body, not an open stream')
  t.equal(opening.headers.get('retry-after'), '5')
  t.match(await opening.json(), { code: 'FAC_ERR_DATABASE_UNAVAILABLE' })

  const afterError = agent.events.length
  const floorAfterError = floor.events.length
  const metricsAfterError = metrics.events.length
  await database.resume()
  const fresh = await agent.next((event) => event.type === 'view', 15_000, afterError)
  t.match(JSON.parse(fresh.data), { name: 'Ann Lee' }, 'back: a fresh view, without a change')
  await floor.next((event) => event.type === 'view', 15_000, floorAfterError)
  const figures = await metrics.next((event) => event.type === 'metrics', 15_000, metricsAfterError)
  t.same(JSON.parse(figures.data).groups, [], 'and the queue metrics again, unchanged as they are: the screen knows they are current')
  t.equal(agent.readyState, 1)

  const beforeChange = agent.events.length
  await insertConversations(writer, STREAM, [{ id: 'after-outage', status: 'queued', group: 'g1', skills: ['sk1'] }])
  await agent.next((event) => event.data.includes('after-outage'), 3000, beforeChange)
  t.pass('changes reach the stream again')
})

t.test('two gateways on one database each deliver a change', async (t) => {
  const db = await freshDatabase(t)
  await seedWorld(db.pool)
  const token = managerToken([STREAM])
  const clients = []
  for (let i = 0; i < 2; i++) {
    const app = await gateway(t, { connectionString: db.connectionString, live: { coalesceMillis: 50 } })
    const client = listen(`${await app.listen({ port: 0, host: '127.0.0.1' })}${agentEvents('a2')}`, token)
    t.teardown(() => { client.close() })
    await client.next((event) => event.type === 'view')
    clients.push(client)
  }
  await insertConversations(db.pool, STREAM, [{ id: 'both', status: 'queued', group: 'g3' }])
  for (const [i, client] of clients.entries()) {
    const event = await client.next((event) => event.data.includes('"conversationId":"both"'), 2000)
    t.equal(event.type, 'view', `gateway ${i + 1} delivered it`)
  }
})

t.test('limits: streams per caller (429), streams per registration (503), released when streams close', async (t) => {
  const db = await freshDatabase(t)
  await seedWorld(db.pool)
  const app = await gateway(t, { pool: db.pool, live: { maxStreamsPerCaller: 2, maxStreams: 3 } })
  const base = await app.listen({ port: 0, host: '127.0.0.1' })
  const tokenOf = (sub: string) => sign({ sub, role: 'manager', streamIds: [STREAM] })
  const open = async (sub: string) => {
    const controller = new AbortController()
    const response = await fetch(`${base}${agentEvents('a1')}`, { headers: { auth: tokenOf(sub) }, signal: controller.signal })
    t.teardown(() => { controller.abort() })
    return { response, close: () => { controller.abort() } }
  }
  const first = await open('alice')
  await open('alice')
  t.equal(first.response.status, 200)
  const third = await open('alice')
  t.equal(third.response.status, 429, 'a third for the same subject')
  t.same(await third.response.json(), { statusCode: 429, code: 'FAC_ERR_TOO_MANY_STREAMS', error: 'Too Many Requests', message: 'Too many open streams for this caller (at most 2)' })
  t.equal((await open('bob')).response.status, 200, 'another subject may')
  const full = await open('carol')
  t.equal(full.response.status, 503, 'past the registration\'s limit')
  t.equal(full.response.headers.get('retry-after'), '5')
  t.same(await full.response.json(), { statusCode: 503, code: 'FAC_ERR_STREAMS_FULL', error: 'Service Unavailable', message: 'This gateway has as many open streams as it may serve, retry later' })

  first.close()
  let again = await open('carol')
  for (let i = 0; i < 20 && again.response.status !== 200; i++) { await sleep(50); again = await open('carol') }
  t.equal(again.response.status, 200, 'a closed stream frees its place')
  const refused = await fetch(`${base}${agentEvents('nobody')}`, { headers: { auth: tokenOf('dave') } })
  t.equal(refused.status, 503, 'still full: the limit is checked before the view is read')
})

t.test('the stream: `retry:` first, a heartbeat comment at the interval', async (t) => {
  const db = await freshDatabase(t)
  await seedWorld(db.pool)
  const app = await gateway(t, { pool: db.pool, live: { heartbeatMillis: 1000, retryMillis: 2500 } })
  const address = await app.listen({ port: 0, host: '127.0.0.1' })
  const { hostname, port } = new URL(address)
  const text = await new Promise<string>((resolve, reject) => {
    const req = request({ host: hostname, port, path: agentEvents('a3'), headers: { auth: managerToken([STREAM]) } }, (response) => {
      t.equal(response.headers['content-type'], 'text/event-stream')
      t.equal(response.headers['cache-control'], 'no-cache')
      let received = ''
      response.on('data', (chunk) => { received += String(chunk) })
      setTimeout(() => { req.destroy(); resolve(received) }, 1600)
    })
    req.on('error', reject)
    req.end()
  })
  t.match(text, /^retry: 2500\n\nid: \d+-1\nevent: view\ndata: \{"resolutionTime":null,.*"name":"Solo".*\}\n\n: heartbeat\n\n$/s, 'retry, the view, then one heartbeat')
})

t.test('a client that does not read is dropped once its unsent bytes pass the bound', async (t) => {
  const db = await freshDatabase(t)
  const agents = Array.from({ length: 40 }, (_, i) => ({ id: `agent-${String(i).padStart(2, '0')}` }))
  await insertStream(db.pool, 'st-slow', { agents })
  await insertConversations(db.pool, 'st-slow', Array.from({ length: 150 }, (_, i) => ({ id: `u-${i}`, status: 'queued' as const, group: null })))
  const log = logLines()
  const app = await gateway(t, { pool: db.pool, live: { coalesceMillis: 20, maxUnsentBytes: 64 * 1024 } }, { logger: { level: 'info', stream: log.stream } })
  const { port } = new URL(await app.listen({ port: 0, host: '127.0.0.1' }))
  const token = managerToken(['st-slow'])

  const reader = listen(`http://127.0.0.1:${port}${floorEvents('st-slow')}`, token)
  t.teardown(() => { reader.close() })
  // A client that sends its request and never reads a byte.
  const stalled = connect(Number(port), '127.0.0.1')
  stalled.pause()
  const closed = new Promise<void>((resolve) => { stalled.on('close', () => { resolve() }); stalled.on('error', () => {}) })
  stalled.write(`GET ${floorEvents('st-slow')} HTTP/1.1\r\nHost: test\r\nauth: ${token}\r\n\r\n`)
  await reader.next(() => reader.events.length >= agents.length, 5000)

  // Every agent's queue changes (the ungrouped queue), again and again: about 1.5 MB of views each time.
  for (let i = 0; i < 40 && !log.lines.some((line) => line.includes('live stream dropped')); i++) {
    await db.pool.query("UPDATE conversations SET customer_first_name = 'Round " + i + "' WHERE stream_id = 'st-slow' AND id = 'u-0'")
    await sleep(60)
  }
  const dropped = log.lines.filter((line) => line.includes('live stream dropped'))
  t.equal(dropped.length, 1, 'the stalled client was dropped, once')
  t.ok((JSON.parse(dropped[0] as string) as { unsentBytes: number }).unsentBytes > 64 * 1024, 'past the bound')
  stalled.resume()
  await closed
  t.pass('its connection was closed')
  const count = reader.events.length
  await db.pool.query("UPDATE conversations SET customer_first_name = 'After' WHERE stream_id = 'st-slow' AND id = 'u-0'")
  await reader.next((event) => event.data.includes('"After"'), 3000, count)
  t.pass('the client that reads still gets every change')
})

t.test('a client that leaves while its first view is read frees its stream slot, once', async (t) => {
  const db = await freshDatabase(t)
  await seedWorld(db.pool)
  const app = await gateway(t, { pool: db.pool, live: { maxStreamsPerCaller: 1 } })
  const base = await app.listen({ port: 0, host: '127.0.0.1' })
  const token = managerToken([STREAM])
  // The first view waits on this lock while the client leaves.
  const locker = await db.pool.connect()
  await locker.query('BEGIN; LOCK TABLE agents IN ACCESS EXCLUSIVE MODE')
  const leaving = new AbortController()
  const opening = fetch(`${base}${agentEvents('a1')}`, { headers: { auth: token }, signal: leaving.signal }).then(() => 'answered', () => 'left')
  await sleep(200)
  leaving.abort()
  t.equal(await opening, 'left')
  await sleep(100)
  // The first read still waits on the lock: the place is free all the same.
  const again = listen(`${base}${agentEvents('a1')}`, token)
  t.teardown(() => { again.close() })
  await sleep(100)
  await locker.query('ROLLBACK')
  locker.release()
  await again.next((event) => event.type === 'view')
  t.pass('the caller\'s one stream is free again before the first read ends: a new one opens')
  const third = await fetch(`${base}${agentEvents('a2')}`, { headers: { auth: token } })
  t.equal(third.status, 429, 'and counted once: a second is still refused')
  await third.body?.cancel()
})
