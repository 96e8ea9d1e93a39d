// The 200 body: every field and every rule of the contract, on known rows.
import t, { type Test } from 'tap'
import type { AgentView } from '../schemas/response.js'
import { freshDatabase } from './helpers/database.js'
import { gateway, viewUrl } from './helpers/gateway.js'
import { insertConversations, insertStream } from './helpers/rows.js'
import { managerToken } from './helpers/tokens.js'
import { OTHER_STREAM, STREAM, seedWorld } from './helpers/world.js'

const db = await freshDatabase(t)
await seedWorld(db.pool)
const app = await gateway(t, { pool: db.pool })
const token = managerToken([STREAM, OTHER_STREAM])

async function view (agentId: string, query = '', streamId = STREAM): Promise<AgentView> {
  const response = await app.inject({ url: viewUrl(streamId, agentId, query), headers: { auth: token } })
  t.equal(response.statusCode, 200, `200 for ${streamId}/${agentId}?${query}`)
  return response.json()
}
const ids = (list: Array<{ conversationId: string }>) => list.map((c) => c.conversationId)

/** A duration read against the database clock: the seconds set up, plus the time the test took so far. */
function near (t: Test, actual: number, expected: number, what: string): void {
  t.ok(actual >= expected && actual <= expected + 3, `${what}: ${actual} is ${expected} s plus the test's own run time`)
}

t.test('the agent, the metrics and both arrays, exactly as the contract says', async (t) => {
  const response = await app.inject({ url: viewUrl(STREAM, 'a1'), headers: { auth: token } })
  t.equal(response.statusCode, 200)
  t.match(response.headers['content-type'], /^application\/json/)
  t.equal(response.headers['cache-control'], 'no-store', 'live data is never cached')
  const body = response.json()

  t.same(Object.keys(body), ['resolutionTime', 'firstResponseTime', 'responseTime', 'firstName', 'lastName', 'name', 'profImage', 'onlineStatus', 'active', 'queue'],
    'exactly the fields of the sample response')
  t.equal(body.firstName, 'Ann')
  t.equal(body.lastName, 'Lee')
  t.equal(body.name, 'Ann Lee')
  t.equal(body.profImage, 'https://img.example/ann.png')
  t.equal(body.onlineStatus, 'busy')

  // Accepted in the last 24 h: act-1, act-2, act-3, cl-1, cl-2, cl-3 (cl-old is 25 h old).
  t.equal(body.resolutionTime, 633, 'mean of 1200, 600 and 100 s over the closed ones, rounded')
  t.equal(body.firstResponseTime, 47, 'mean of 10, 100 and 30 s over the answered ones, rounded')
  t.equal(body.responseTime, 53, '(20 + 300 + 50) s over 2 + 4 + 1 replies, rounded')

  t.same(ids(body.active), ['act-3', 'act-1', 'act-2'], 'her active conversations only, oldest first')
  const [, act1] = body.active
  t.same(Object.keys(act1), ['firstName', 'lastName', 'skills', 'startTime', 'conversationId', 'source', 'profImage', 'engagementTime', 'waitTime'])
  t.equal(act1.firstName, 'Maria')
  t.equal(act1.lastName, 'Garcia')
  t.equal(act1.source, 'call')
  t.equal(act1.profImage, 'https://img.example/maria.png')
  t.same(act1.skills, [{ id: 'sk1', name: 'Skill sk1' }, { id: 'sk2', name: 'Skill sk2' }])
  t.match(act1.startTime, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/, 'ISO 8601 UTC with milliseconds')
  near(t, (Date.now() - Date.parse(act1.startTime)) / 1000 | 0, 600, 'startTime is when it started')
  t.equal(act1.waitTime, 90, 'accepted 590 - 500 s after it was queued')
  near(t, act1.engagementTime, 500, 'engagementTime counts from acceptance')
  t.equal(body.active[0].profImage, 'no-avatar', 'a customer without an image')
  t.same(body.active[0].skills, [], 'a conversation that needs no skill')

  t.same(ids(body.queue), ['q-1', 'q-7', 'q-3', 'q-2'], 'what she can take, longest waiting first')
  const [q1] = body.queue
  t.same(Object.keys(q1), ['firstName', 'lastName', 'skills', 'startTime', 'conversationId', 'source', 'profImage', 'waitTime'], 'no engagementTime in the queue')
  near(t, q1.waitTime, 400, 'waiting since it was queued')
  t.same(q1.skills, [{ id: 'sk1', name: 'Skill sk1' }])
})

t.test('queue eligibility', async (t) => {
  const queue = ids((await view('a1')).queue)
  t.ok(queue.includes('q-2'), 'a conversation routed to no group is anyone\'s')
  t.ok(queue.includes('q-3'), 'one in another of her groups, needing only skills she has')
  t.notOk(queue.includes('q-4'), 'not one that needs a skill she lacks')
  t.notOk(queue.includes('q-6'), 'not one that needs her skill and one she lacks')
  t.notOk(queue.includes('q-5'), 'not one routed to a group she is not in')
  t.notOk(queue.includes('o-q'), 'never a conversation of another stream, though its group id is the same')

  const a2 = await view('a2')
  t.same(ids(a2.queue), ['q-5', 'q-2'], 'a2 takes its group\'s and the ungrouped one without skills')
  t.same(ids(a2.active), ['act-a2'])
})

t.test('an agent with nothing to show: null metrics, no active conversation', async (t) => {
  const { queue, ...body } = await view('a3')
  t.same(ids(queue), ['q-2'], 'in no group and without skills, only the ungrouped conversation that needs none')
  t.same(body, {
    resolutionTime: null,
    firstResponseTime: null,
    responseTime: null,
    firstName: 'Solo',
    lastName: '',
    name: 'Solo',
    profImage: 'no-avatar',
    onlineStatus: 'offline',
    active: []
  })
})

t.test('metrics: null when nothing qualifies, never a made-up 0', async (t) => {
  // a2 accepted one conversation, not closed, never answered, no replies.
  const body = await view('a2')
  t.equal(body.resolutionTime, null)
  t.equal(body.firstResponseTime, null)
  t.equal(body.responseTime, null)
})

t.test('source narrows both arrays', async (t) => {
  const calls = await view('a1', 'source=call')
  t.same(ids(calls.active), ['act-1'])
  t.same(ids(calls.queue), ['q-7'])
  const chats = await view('a1', 'source=chat')
  t.same(ids(chats.active), ['act-3', 'act-2'])
  t.same(ids(chats.queue), ['q-1', 'q-3', 'q-2'])
  t.equal(chats.resolutionTime, 633, 'filters narrow the arrays, not the agent\'s metrics')
})

t.test('agentGroupId narrows both arrays, repeated or comma-separated', async (t) => {
  const g1 = await view('a1', 'agentGroupId=g1')
  t.same(ids(g1.active), ['act-1'])
  t.same(ids(g1.queue), ['q-1'], 'ungrouped conversations are not of g1')
  const repeated = await view('a1', 'agentGroupId=g1&agentGroupId=g2')
  const commas = await view('a1', 'agentGroupId=g1,g2')
  t.same(ids(repeated.active), ['act-1', 'act-2'])
  t.same(ids(repeated.queue), ['q-1', 'q-3'])
  t.same(commas.active, repeated.active, 'a,b means the same as a&b')
  t.same(commas.queue, repeated.queue)
  const both = await view('a1', 'agentGroupId=g2&source=call')
  t.same([ids(both.active), ids(both.queue)], [[], []], 'the two filters combine')
  const g3 = await view('a1', 'agentGroupId=g3')
  t.same([ids(g3.active), ids(g3.queue)], [[], []], 'a group she is not in gives nothing, not someone else\'s queue')
})

t.test('agentId in the query, as on the vendor page, when it matches the path', async (t) => {
  const body = await view('a1', 'agentId=a1')
  t.equal(body.name, 'Ann Lee')
})

t.test('unknown query parameters are ignored', async (t) => {
  const body = await view('a1', 'foo=bar&limit=1')
  t.equal(body.active.length, 3)
})

t.test('streams never mix', async (t) => {
  const other = await view('a1', '', OTHER_STREAM)
  t.equal(other.name, 'Other Tenant')
  t.same(ids(other.active), ['act-1', 'o-act'], 'the same ids in another stream are other rows')
  t.same(ids(other.queue), ['o-q'])
  t.equal(other.resolutionTime, 298, 'its metrics come from its own rows only')
  const main = await view('a1')
  t.notOk(ids(main.active).includes('o-act'))
})

t.test('the metrics window is an option', async (t) => {
  const wide = await gateway(t, { pool: db.pool, metricsWindowSeconds: 100_000 })
  const response = await wide.inject({ url: viewUrl(STREAM, 'a1'), headers: { auth: token } })
  const body = response.json()
  t.equal(body.resolutionTime, 725, 'cl-old (1000 s) counts now: (1200 + 600 + 100 + 1000) / 4')
  t.equal(body.firstResponseTime, 38, '(10 + 100 + 30 + 10) / 4, rounded')
  t.equal(body.responseTime, 171, '(20 + 300 + 50 + 1000) / 8, rounded')

  const narrow = await gateway(t, { pool: db.pool, metricsWindowSeconds: 1000 })
  const recent = (await narrow.inject({ url: viewUrl(STREAM, 'a1'), headers: { auth: token } })).json()
  t.equal(recent.resolutionTime, null, 'none closed of those accepted in the last 1000 s')
  t.equal(recent.firstResponseTime, 10, 'act-1 only')
})

t.test('the averages round half up, as the vendor sample implies (2.5 s is 3, not the even 2)', async (t) => {
  await insertStream(db.pool, 'st-round', { agents: [{ id: 'r1' }] })
  await insertConversations(db.pool, 'st-round', [
    { id: 'r-1', status: 'closed', agent: 'r1', started: 200, queued: 150, accepted: 100, firstResponse: 99, closed: 98, replySeconds: 5, replies: 2 },
    { id: 'r-2', status: 'closed', agent: 'r1', started: 200, queued: 150, accepted: 100, firstResponse: 98, closed: 97 }
  ])
  const app = await gateway(t, { pool: db.pool })
  const body = (await app.inject({ url: viewUrl('st-round', 'r1'), headers: { auth: managerToken(['st-round']) } })).json()
  t.same([body.resolutionTime, body.firstResponseTime, body.responseTime], [3, 2, 3], '(2 + 3) / 2, (1 + 2) / 2 and 5 s over 2 replies')
})
