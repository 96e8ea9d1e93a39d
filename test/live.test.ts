// The live streams: the first events are the GET routes' answers, a change
// reaches the streams it concerns within the coalescing window, and a stream
// fails before it opens exactly as the GET route does.
import t, { type Test } from 'tap'
import type { FastifyInstance } from 'fastify'
import { FLOOR_ROUTE_URL } from '../lib/index.js'
import { withoutDurations } from './helpers/bodies.js'
import { freshDatabase } from './helpers/database.js'
import { listen, type EventClient, type ReceivedEvent } from './helpers/events.js'
import { gateway, viewUrl } from './helpers/gateway.js'
import { insert, insertConversations } from './helpers/rows.js'
import { managerToken, sign } from './helpers/tokens.js'
import { seedWorld, STREAM } from './helpers/world.js'

const db = await freshDatabase(t)
await seedWorld(db.pool)

async function listening (app: FastifyInstance): Promise<string> {
  return await app.listen({ port: 0, host: '127.0.0.1' })
}
const app = await gateway(t, { pool: db.pool, live: { coalesceMillis: 50 } })
const base = await listening(app)
const floorUrl = (stream: string, query = '') => `${FLOOR_ROUTE_URL.replace(':streamId', stream)}${query === '' ? '' : `?${query}`}`

function opened (t: Test, url: string, token: string): EventClient {
  const client = listen(`${base}${url}`, token)
  t.teardown(() => { client.close() })
  return client
}
const body = async (url: string, token: string) => (await app.inject({ url, headers: { auth: token } })).body

t.test('an agent stream: first its view, exactly the GET body; then the view again after each change', async (t) => {
  const token = managerToken([STREAM])
  const client = opened(t, `${viewUrl(STREAM, 'a1')}/events`, token)
  const first = await client.next((event) => event.type === 'view')
  t.equal(withoutDurations(first.data), withoutDurations(await body(viewUrl(STREAM, 'a1'), token)), 'the GET route\'s 200 body')
  const [readAt, n] = first.id.split('-').map(Number)
  t.ok(Math.abs(Date.now() - (readAt as number)) < 5000, 'the id starts with the instant the view was read')
  t.equal(n, 1, 'and numbers the event')

  const written = Date.now()
  await insertConversations(db.pool, STREAM, [{ id: 'live-q1', status: 'queued', group: 'g1', started: 5, queued: 5, skills: ['sk1'] }])
  const next = await client.next((event) => event.data.includes('live-q1'), 2000)
  t.ok(Date.now() - written < 1000, `the change arrived within a second (${Date.now() - written} ms)`)
  t.equal(withoutDurations(next.data), withoutDurations(await body(viewUrl(STREAM, 'a1'), token)), 'the whole new view')
  t.equal(next.id.split('-')[1], String(Number(client.events.indexOf(next)) + 1), 'numbered in order')
})

t.test('a floor stream: one view per agent, exactly the floor route\'s items; a change sends only the agents it touched', async (t) => {
  const token = managerToken([STREAM])
  const client = opened(t, `${floorUrl(STREAM)}/events`, token)
  const page = JSON.parse(await body(floorUrl(STREAM), token)) as { agents: Array<{ agentId: string }> }
  await client.next(() => client.events.length >= page.agents.length)
  t.same(client.events.map((event) => event.type), page.agents.map(() => 'view'))
  const parsed = (text: string): unknown => JSON.parse(withoutDurations(text))
  t.same(client.events.map((event) => parsed(event.data)), page.agents.map((agent) => parsed(JSON.stringify(agent))), 'each a floor item, in the floor\'s order')

  const before = client.events.length
  await insertConversations(db.pool, STREAM, [{ id: 'live-q3', status: 'queued', group: 'g3', started: 5, queued: 5 }])
  const event = await client.next((event) => event.data.includes('live-q3'), 2000, before)
  t.equal((JSON.parse(event.data) as { agentId: string }).agentId, 'a2', 'g3\'s member')
  await new Promise((resolve) => setTimeout(resolve, 300))
  t.same(client.events.slice(before).map((event) => (JSON.parse(event.data) as { agentId: string }).agentId), ['a2'], 'and no one else')

  const removed = client.events.length
  await db.pool.query("DELETE FROM agent_group_members WHERE stream_id = $1 AND agent_id = 'a2'", [STREAM])
  await insert(db.pool, 'agents', [{ stream_id: STREAM, id: 'a-new', first_name: 'New', last_name: 'Agent' }])
  const joined = await client.next((event) => event.data.includes('a-new'), 2000, removed)
  t.equal(joined.type, 'view', 'a new agent of the stream joins the whole-stream floor')
})

t.test('failures before the stream opens are the GET route\'s JSON errors', async (t) => {
  const url = (path: string) => `${base}${path}`
  const cases: Array<[string, string | undefined, number, string]> = [
    [`${viewUrl(STREAM, 'a1')}/events`, undefined, 401, 'FAC_ERR_UNAUTHORIZED'],
    [`${viewUrl(STREAM, 'nobody')}/events`, managerToken([STREAM]), 404, 'FAC_ERR_AGENT_NOT_FOUND'],
    [`${viewUrl(STREAM, 'a2')}/events`, managerToken([STREAM], ['g1']), 403, 'FAC_ERR_FORBIDDEN'],
    [`${viewUrl(STREAM, 'a1')}/events?source=fax`, managerToken([STREAM]), 400, 'FAC_ERR_INVALID_REQUEST'],
    [`${floorUrl(STREAM)}/events`, sign({ sub: 'a1', role: 'agent', streamIds: [STREAM] }), 403, 'FAC_ERR_FORBIDDEN'],
    [`${floorUrl(STREAM)}/events?limit=5`, managerToken([STREAM]), 200, '']
  ]
  for (const [path, token, status, code] of cases) {
    const response = await fetch(url(path), { headers: token === undefined ? {} : { auth: token }, signal: AbortSignal.timeout(3000) })
    t.equal(response.status, status, `${path}: ${status}`)
    if (status !== 200) {
      t.match(response.headers.get('content-type'), /^application\/json/)
      t.match(await response.json(), { statusCode: status, code })
    } else {
      t.match(response.headers.get('content-type'), /^text\/event-stream/, 'unknown query parameters are dropped, as on the GET route')
      await response.body?.cancel()
    }
  }
})

t.test('the token expires: a last `event: error` with the 401 body', async (t) => {
  const token = sign({ role: 'manager', streamIds: [STREAM] }, { expiresIn: 2 })
  const client = opened(t, `${viewUrl(STREAM, 'a1')}/events`, token)
  await client.next((event) => event.type === 'view')
  const error: ReceivedEvent = await client.next((event) => event.type === 'error', 4000)
  t.match(JSON.parse(error.data), { statusCode: 401, code: 'FAC_ERR_UNAUTHORIZED', error: 'Unauthorized', message: 'Missing or invalid token' })
})
