// The queue metrics stream: its first event is the GET route's answer, a change
// in its stream reaches it within the coalescing window, the clock reads it
// again, an unchanged answer is not sent twice, and it fails before it opens
// as the GET route does.
import t, { type Test } from 'tap'
import { GROUP_METRICS_ROUTE_URL } from '../lib/index.js'
import { withoutDurations } from './helpers/bodies.js'
import { freshDatabase } from './helpers/database.js'
import { listen, type EventClient } from './helpers/events.js'
import { gateway } from './helpers/gateway.js'
import { insert, insertConversations, insertStream } from './helpers/rows.js'
import { managerToken, sign } from './helpers/tokens.js'

const QUEUES = 'st-live-queues'
const QUIET = 'st-live-quiet'
const db = await freshDatabase(t)
await insertStream(db.pool, QUEUES, { groups: ['g1', 'g2'], agents: [{ id: 'a1', status: 'available', groups: ['g1'] }, { id: 'a2', status: 'busy', groups: ['g2'] }] })
await insertConversations(db.pool, QUEUES, [{ id: 'w1', status: 'queued', group: 'g1', started: 30, queued: 30 }])
await insertStream(db.pool, QUIET, { groups: ['g1'], agents: [{ id: 'a1', status: 'available', groups: ['g1'] }] })

const METRICS_INTERVAL_MILLIS = 1500
const app = await gateway(t, { pool: db.pool, live: { coalesceMillis: 50, metricsIntervalMillis: METRICS_INTERVAL_MILLIS } })
const base = await app.listen({ port: 0, host: '127.0.0.1' })
const metricsUrl = (stream: string, query = '') => `${GROUP_METRICS_ROUTE_URL.replace(':streamId', stream)}${query === '' ? '' : `?${query}`}`
const eventsUrl = (stream: string, query = '') => metricsUrl(stream, query).replace('/metrics', '/metrics/events')
const sleep = async (ms: number) => await new Promise((resolve) => setTimeout(resolve, ms))

function opened (t: Test, url: string, token: string): EventClient {
  const client = listen(`${base}${url}`, token)
  t.teardown(() => { client.close() })
  return client
}
const get = async (url: string, token: string) => (await app.inject({ url, headers: { auth: token } })).json()
/** An answer with its wait times as the instant they count from (readAt minus the wait), to the second. */
function anchored (metrics: any, readAt: number): unknown {
  const anchor = (figures: any) => figures === null ? null : { ...figures, longestWaitTime: figures.longestWaitTime === null ? null : Math.round(readAt / 1000 - figures.longestWaitTime) }
  return { groups: metrics.groups.map(anchor), ungrouped: anchor(metrics.ungrouped), totals: anchor(metrics.totals) }
}
const readAtOf = (id: string) => Number(id.split('-')[0])

t.test('first the GET body, then the whole body again after a change', async (t) => {
  const token = managerToken([QUEUES])
  const client = opened(t, eventsUrl(QUEUES), token)
  const first = await client.next((event) => event.type === 'metrics')
  const now = Date.now()
  const answer = await get(metricsUrl(QUEUES), token)
  const sent = JSON.parse(first.data)
  t.same(Object.keys(sent), ['groups', 'ungrouped', 'totals'])
  const drift = Math.abs((anchored(sent, readAtOf(first.id)) as any).totals.longestWaitTime - (anchored(answer, now) as any).totals.longestWaitTime)
  t.ok(drift <= 1, 'longestWaitTime counts from the same instant, to the second, as the event\'s readAt says')
  t.equal(withoutDurations(first.data), withoutDurations(JSON.stringify(answer)), 'the rest: the GET route\'s answer')

  const written = Date.now()
  await insertConversations(db.pool, QUEUES, [{ id: 'w2', status: 'queued', group: 'g2', started: 5, queued: 5 }])
  const next = await client.next((event) => event.type === 'metrics' && JSON.parse(event.data).totals.waiting === 2, 2000)
  t.ok(Date.now() - written < 1000, `the change arrived within a second (${Date.now() - written} ms)`)
  t.same(JSON.parse(next.data).groups.map((group: any) => group.waiting), [1, 1], 'g2\'s tile now has one waiting')

  await db.pool.query("UPDATE conversations SET status = 'active', agent_id = 'a2', accepted_at = now() WHERE stream_id = $1 AND id = 'w2'", [QUEUES])
  const accepted = await client.next((event) => event.type === 'metrics' && JSON.parse(event.data).totals.active === 1, 2000)
  t.match(JSON.parse(accepted.data).groups[1], { agentGroupId: 'g2', waiting: 0, active: 1, answered: 1 }, 'an acceptance: its group\'s waiting, active and answered')
})

t.test('the clock: read again every metricsIntervalMillis; an unchanged answer is not sent again', async (t) => {
  const ticking = opened(t, eventsUrl(QUEUES, 'agentGroupId=g1'), managerToken([QUEUES]))
  const first = await ticking.next((event) => event.type === 'metrics')
  const again = await ticking.next(() => true, METRICS_INTERVAL_MILLIS + 2000, ticking.events.indexOf(first) + 1)
  t.equal(again.type, 'metrics', 'without a change, the clock read it again')
  t.ok(JSON.parse(again.data).groups[0].longestWaitTime > JSON.parse(first.data).groups[0].longestWaitTime, 'the wait grew meanwhile')

  const quiet = opened(t, eventsUrl(QUIET), managerToken([QUIET]))
  await quiet.next((event) => event.type === 'metrics')
  await db.pool.query("UPDATE agents SET first_name = 'Renamed' WHERE stream_id = $1", [QUIET]) // a change of the stream that no figure shows
  await sleep(METRICS_INTERVAL_MILLIS + 500) // a change and a tick of the clock, nothing waiting
  t.same(quiet.events.map((event) => event.type), ['metrics'], 'the same figures: nothing more sent')
  await db.pool.query("UPDATE agents SET online_status = 'away' WHERE stream_id = $1", [QUIET])
  const away = await quiet.next((event) => event.type === 'metrics', 2000, 1)
  t.same(JSON.parse(away.data).totals.agents, { available: 0, busy: 0, away: 1, offline: 0 }, 'a member\'s status: sent')
})

t.test('before it opens, the GET route\'s errors', async (t) => {
  const cases: Array<[string, string, string, number, string]> = [
    ['an agent', eventsUrl(QUEUES), sign({ sub: 'a1', role: 'agent', streamIds: [QUEUES] }), 403, 'Only a manager may read the groups\' metrics'],
    ['a group outside the token\'s', eventsUrl(QUEUES, 'agentGroupId=g2'), managerToken([QUEUES], ['g1']), 403, 'agentGroupId names a group outside the token\'s agentGroupIds'],
    ['a bad serviceLevelSeconds', eventsUrl(QUEUES, 'serviceLevelSeconds=0'), managerToken([QUEUES]), 400, 'querystring/serviceLevelSeconds must be >= 1']
  ]
  for (const [name, url, token, status, message] of cases) {
    const response = await fetch(`${base}${url}`, { headers: { auth: token } })
    t.equal(response.status, status, name)
    t.equal(response.headers.get('content-type'), 'application/json; charset=utf-8', `${name}: a JSON body, not a stream`)
    t.equal((await response.json()).message, message, name)
  }
})

t.test('the token expires: a last `event: error` with the 401 body', async (t) => {
  const client = opened(t, eventsUrl(QUIET), sign({ role: 'manager', streamIds: [QUIET] }, { expiresIn: 2 }))
  await client.next((event) => event.type === 'metrics')
  const error = await client.next((event) => event.type === 'error', 4000)
  t.match(JSON.parse(error.data), { statusCode: 401, code: 'FAC_ERR_UNAUTHORIZED', message: 'Missing or invalid token' })
})

t.test('more than 500 groups: a 400 before it opens; past 500 while open, it ends with the 400 body', async (t) => {
  const stream = 'st-live-many'
  const groups = (from: number, to: number) => Array.from({ length: to - from }, (_, i) => ({ stream_id: stream, id: `g${String(from + i).padStart(3, '0')}`, name: `G${from + i}` }))
  await insert(db.pool, 'agent_groups', groups(0, 501))
  const token = managerToken([stream])
  const refused = await fetch(`${base}${eventsUrl(stream)}`, { headers: { auth: token } })
  t.equal(refused.status, 400)
  t.match(await refused.json(), { message: /more than 500 agent groups/ })

  await db.pool.query("DELETE FROM agent_groups WHERE stream_id = $1 AND id = 'g500'", [stream])
  const client = opened(t, eventsUrl(stream), token)
  const first = await client.next((event) => event.type === 'metrics')
  t.equal(JSON.parse(first.data).groups.length, 500)
  await insert(db.pool, 'agent_groups', groups(500, 502))
  await db.pool.query("INSERT INTO agents (stream_id, id, first_name, last_name) VALUES ($1, 'new', 'A', 'B')", [stream]) // a change the stream hears
  const error = await client.next((event) => event.type === 'error', 3000)
  t.match(JSON.parse(error.data), { statusCode: 400, message: /more than 500 agent groups/ })
})
