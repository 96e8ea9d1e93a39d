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
import { insert, insertConversations, insertStream } from './helpers/rows.js'
import { managerToken, sign } from './helpers/tokens.js'
import { OTHER_STREAM, seedWorld, STREAM } from './helpers/world.js'

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
const sleep = async (ms: number) => await new Promise((resolve) => setTimeout(resolve, ms))

/**
 * Until this gateway's slot is made (its consistent point reached). Until then
 * the streams are polled, and a change committed meanwhile can reach a stream
 * twice: quietly by a poll, then by the slot. Another test file's transaction
 * on the shared server can hold the slot up (it waits for every running one).
 */
async function slotMade (): Promise<void> {
  for (let i = 0; i < 400; i++) {
    const { rowCount } = await db.pool.query('SELECT 1 FROM pg_replication_slots WHERE slot_name LIKE $1 AND confirmed_flush_lsn IS NOT NULL', [`fastify_active_conversations_${process.pid}_%`])
    if (rowCount !== null && rowCount > 0) return
    await sleep(50)
  }
  throw new Error('no slot made in 20 s')
}

t.test('an agent stream: first its view, exactly the GET body; then the view again after each change', async (t) => {
  const token = managerToken([STREAM])
  const client = opened(t, `${viewUrl(STREAM, 'a1')}/events`, token)
  const first = await client.next((event) => event.type === 'view')
  t.equal(withoutDurations(first.data), withoutDurations(await body(viewUrl(STREAM, 'a1'), token)), 'the GET route\'s 200 body')
  const [readAt, n] = first.id.split('-').map(Number)
  t.ok(Math.abs(Date.now() - (readAt as number)) < 5000, 'the id starts with the instant the view was read')
  t.equal(n, 1, 'and numbers the event')
  await slotMade()
  await sleep(100) // the slot's quiet refresh of every stream, sent only where changed

  const written = Date.now()
  await insertConversations(db.pool, STREAM, [{ id: 'live-q1', status: 'queued', group: 'g1', started: 5, queued: 5, skills: ['sk1'] }])
  const next = await client.next((event) => event.data.includes('live-q1'), 2000)
  t.ok(Date.now() - written < 1000, `the change arrived within a second (${Date.now() - written} ms)`)
  t.equal(withoutDurations(next.data), withoutDurations(await body(viewUrl(STREAM, 'a1'), token)), 'the whole new view')
  t.equal(next.id.split('-')[1], String(Number(client.events.indexOf(next)) + 1), 'numbered in order')

  const count = client.events.length
  await insertConversations(db.pool, STREAM, [{ id: 'live-g3', status: 'queued', group: 'g3', started: 5, queued: 5 }])
  await new Promise((resolve) => setTimeout(resolve, 300)) // several coalescing windows
  t.equal(client.events.length, count, 'a change to another group\'s queue sends her nothing')
  await insertConversations(db.pool, STREAM, [{ id: 'live-anyone', status: 'queued', group: null, started: 5, queued: 5 }])
  const ungrouped = await client.next(() => true, 2000, count)
  t.ok(ungrouped.data.includes('"conversationId":"live-anyone"'), 'an ungrouped conversation is in every agent\'s queue: a new view')
  t.notOk(ungrouped.data.includes('live-g3'), 'the other group\'s is not')
})

t.test('a floor stream: one view per agent, exactly the floor route\'s items; a change sends only the agents it touched', async (t) => {
  const token = managerToken([STREAM])
  const client = opened(t, `${floorUrl(STREAM)}/events`, token)
  const page = JSON.parse(await body(floorUrl(STREAM), token)) as { agents: Array<{ agentId: string }> }
  await client.next(() => client.events.length >= page.agents.length)
  t.same(client.events.map((event) => event.type), page.agents.map(() => 'view'))
  const parsed = (text: string): unknown => JSON.parse(withoutDurations(text))
  t.same(client.events.map((event) => parsed(event.data)), page.agents.map((agent) => parsed(JSON.stringify(agent))), 'each a floor item, in the floor\'s order')
  await slotMade()
  await sleep(100)

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
    [`${viewUrl(STREAM, 'a1')}/events?agentId=a2`, managerToken([STREAM]), 400, 'FAC_ERR_INVALID_REQUEST'],
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

t.test('one statement changes the same agent id in two streams: each stream gets its own agent, never the other\'s', async (t) => {
  const token = managerToken([STREAM, OTHER_STREAM])
  const main = opened(t, `${viewUrl(STREAM, 'a1')}/events`, token)
  const other = opened(t, `${viewUrl(OTHER_STREAM, 'a1')}/events`, token)
  await main.next((event) => event.type === 'view')
  await other.next((event) => event.type === 'view')
  await db.pool.query("UPDATE agents SET online_status = 'away' WHERE id = 'a1' AND stream_id IN ($1, $2)", [STREAM, OTHER_STREAM])
  const [mainView, otherView] = await Promise.all([main.next(() => true, 2000, 1), other.next(() => true, 2000, 1)])
  t.match(JSON.parse(mainView.data), { name: 'Ann Lee', onlineStatus: 'away' })
  t.match(JSON.parse(otherView.data), { name: 'Other Tenant', onlineStatus: 'away' })
  t.equal(withoutDurations(otherView.data), withoutDurations(await body(viewUrl(OTHER_STREAM, 'a1'), token)), 'the other stream\'s GET body')
})

t.test('the token in `Authorization: Bearer` works as in `auth`', async (t) => {
  const client = listen(`${base}${viewUrl(STREAM, 'a3')}/events`, managerToken([STREAM]), 'authorization')
  t.teardown(() => { client.close() })
  const first = await client.next((event) => event.type === 'view')
  t.match(JSON.parse(first.data), { name: 'Solo' })
})

t.test('the token expires: a last `event: error` with the 401 body', async (t) => {
  const token = sign({ role: 'manager', streamIds: [STREAM] }, { expiresIn: 2 })
  const client = opened(t, `${viewUrl(STREAM, 'a1')}/events`, token)
  await client.next((event) => event.type === 'view')
  const error: ReceivedEvent = await client.next((event) => event.type === 'error', 4000)
  t.match(JSON.parse(error.data), { statusCode: 401, code: 'FAC_ERR_UNAUTHORIZED', error: 'Unauthorized', message: 'Missing or invalid token' })
})

t.test('a floor of groups: agents join and leave it with their memberships', async (t) => {
  const client = opened(t, `${floorUrl(STREAM)}/events?agentGroupId=g1`, managerToken([STREAM]))
  await client.next((event) => event.data.includes('"agentId":"a1"'))
  t.same(client.events.map((event) => (JSON.parse(event.data) as { agentId: string }).agentId), ['a1'], 'g1 has a1')

  let from = client.events.length
  await insert(db.pool, 'agent_group_members', [{ stream_id: STREAM, agent_group_id: 'g1', agent_id: 'a3' }])
  const joined = await client.next(() => true, 2000, from)
  t.equal(joined.type, 'view', 'a3 joins g1: its view')
  t.equal((JSON.parse(joined.data) as { agentId: string }).agentId, 'a3')

  from = client.events.length
  await db.pool.query("DELETE FROM agent_group_members WHERE stream_id = $1 AND agent_group_id = 'g1' AND agent_id = 'a3'", [STREAM])
  const left = await client.next(() => true, 2000, from)
  t.same([left.type, JSON.parse(left.data)], ['remove', { agentId: 'a3' }], 'and leaves it: `event: remove`')
})

t.test('one transaction that adds 300 agents and deletes one: each named; a truncation: every view of the stream again', async (t) => {
  await insert(db.pool, 'agents', [{ stream_id: STREAM, id: 'a-gone', first_name: 'Soon', last_name: 'Gone' }])
  const client = opened(t, `${floorUrl(STREAM)}/events`, managerToken([STREAM]))
  const agent = opened(t, `${viewUrl(STREAM, 'a3')}/events`, managerToken([STREAM]))
  await client.next((event) => event.data.includes('"agentId":"a-gone"'))
  await agent.next((event) => event.type === 'view')
  const onFloor = client.events.length
  // One statement that adds 300 agents and deletes one: each is named (migration 006's notices could not).
  await db.pool.query(`
    WITH deleted AS (DELETE FROM agents WHERE stream_id = $1 AND id = 'a-gone')
    INSERT INTO agents (stream_id, id, first_name, last_name)
    SELECT $1, 'a-bulk-with-a-rather-long-identifier-' || i, 'Bulk', 'Agent' FROM generate_series(1, 300) i`, [STREAM])
  const removed = await client.next((event) => event.type === 'remove', 3000, onFloor)
  t.same(JSON.parse(removed.data), { agentId: 'a-gone' })
  await client.next(() => client.events.slice(onFloor).filter((event) => event.type === 'view').length >= 300, 3000)
  t.pass('the 300 new agents join the floor')
  // A truncation names no row: every view of every watched stream is read again.
  await db.pool.query('CREATE TABLE saved_skills AS SELECT * FROM agent_skills; TRUNCATE agent_skills; INSERT INTO agent_skills SELECT * FROM saved_skills; DROP TABLE saved_skills')
  await agent.next((event) => event.type === 'view', 3000, 1)
  t.pass('a truncation: every agent stream of the stream, a3\'s among them')
  await db.pool.query("DELETE FROM agents WHERE stream_id = $1 AND id LIKE 'a-bulk-%'", [STREAM])
})

t.test('a floor of more agents than a stream carries: 400', async (t) => {
  await insertStream(db.pool, 'st-huge', { agents: Array.from({ length: 501 }, (_, i) => ({ id: `h-${i}` })) })
  const response = await fetch(`${base}${floorUrl('st-huge')}/events`, { headers: { auth: managerToken(['st-huge']) } })
  t.equal(response.status, 400)
  t.same(await response.json(), { statusCode: 400, code: 'FAC_ERR_INVALID_REQUEST', error: 'Bad Request', message: 'The floor has more than 500 agents: narrow it with agentGroupId' })
})

t.test('an agent stream ends with the error the GET route would now answer', async (t) => {
  await insertStream(db.pool, STREAM, { agents: [{ id: 'a-temp', groups: ['g2'] }] })
  const scoped = opened(t, `${viewUrl(STREAM, 'a-temp')}/events`, managerToken([STREAM], ['g2']))
  const unscoped = opened(t, `${viewUrl(STREAM, 'a-temp')}/events`, managerToken([STREAM]))
  await scoped.next((event) => event.type === 'view')
  await unscoped.next((event) => event.type === 'view')

  await db.pool.query("DELETE FROM agent_group_members WHERE stream_id = $1 AND agent_id = 'a-temp'", [STREAM])
  const forbidden = await scoped.next((event) => event.type === 'error', 2000)
  t.match(JSON.parse(forbidden.data), { statusCode: 403, code: 'FAC_ERR_FORBIDDEN' }, 'out of the token\'s groups: 403')
  await db.pool.query("DELETE FROM agents WHERE stream_id = $1 AND id = 'a-temp'", [STREAM])
  const gone = await unscoped.next((event) => event.type === 'error', 2000)
  t.match(JSON.parse(gone.data), { statusCode: 404, code: 'FAC_ERR_AGENT_NOT_FOUND' }, 'deleted: 404')
})
