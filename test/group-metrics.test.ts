// The agent groups' metrics route: each figure's value on conversations built
// for it, the filters, who may see which groups, the 500-group bound, one
// statement per request, and the schema of a live answer.
import t, { type Test } from 'tap'
import Ajv from 'ajv'
import addFormats from 'ajv-formats'
import type { LightMyRequestResponse } from 'fastify'
import { GROUP_METRICS_ROUTE_URL } from '../lib/index.js'
import { GroupMetrics } from '../schemas/response.js'
import { countStatements } from '../support/count-statements.js'
import { freshDatabase } from './helpers/database.js'
import { gateway } from './helpers/gateway.js'
import { insert, insertConversations, insertStream } from './helpers/rows.js'
import { managerToken, sign } from './helpers/tokens.js'

const QUEUES = 'st-queues'
const OTHER = 'st-queues-other'
const WINDOW_SECONDS = 3600

const db = await freshDatabase(t)
await insertStream(db.pool, QUEUES, {
  groups: ['g1', 'g2', 'g3'],
  agents: [
    { id: 'a1', status: 'available', groups: ['g1', 'g2'] }, // in two groups: one agent in the totals
    { id: 'a2', status: 'busy', groups: ['g1'] },
    { id: 'a3', status: 'away', groups: ['g2'] },
    { id: 'a4', status: 'offline', groups: ['g1'] },
    { id: 'a5', status: 'available' } // in no group: in no figure
  ]
})
// Seconds ago. g1: two waiting, two handled (one queued before the window), one answered and closed, one abandoned, one before the window.
await insertConversations(db.pool, QUEUES, [
  { id: 'q1', status: 'queued', group: 'g1', started: 110, queued: 100 },
  { id: 'q2', status: 'queued', group: 'g1', source: 'call', started: 50, queued: 40 },
  { id: 'act1', status: 'active', group: 'g1', agent: 'a1', started: 310, queued: 300, accepted: 290 },
  { id: 'act2', status: 'active', group: 'g1', agent: 'a2', source: 'call', started: 5010, queued: 5000, accepted: 4970 },
  { id: 'cl1', status: 'closed', group: 'g1', agent: 'a2', started: 1010, queued: 1000, accepted: 970, closed: 700 },
  { id: 'ab1', status: 'closed', group: 'g1', source: 'call', started: 510, queued: 500, closed: 400 },
  { id: 'old', status: 'closed', group: 'g1', agent: 'a1', started: 7210, queued: 7200, accepted: 7190, closed: 7000 },
  // g2: one waiting; two answered and closed, one at the service level's 20 s exactly, one after it.
  { id: 'q3', status: 'queued', group: 'g2', started: 20, queued: 10 },
  { id: 'cl2', status: 'closed', group: 'g2', agent: 'a3', started: 210, queued: 200, accepted: 180, closed: 100 },
  { id: 'cl3', status: 'closed', group: 'g2', agent: 'a1', source: 'call', started: 310, queued: 300, accepted: 275, closed: 250 },
  // The ungrouped queue: one waiting, one abandoned.
  { id: 'u1', status: 'queued', group: null, started: 70, queued: 60 },
  { id: 'u2', status: 'closed', group: null, started: 60, queued: 50, closed: 45 }
])
// Another stream with the same group ids: never counted.
await insertStream(db.pool, OTHER, { groups: ['g1', 'g2'], agents: [{ id: 'a1', status: 'busy', groups: ['g1'] }] })
await insertConversations(db.pool, OTHER, [
  { id: 'q1', status: 'queued', group: 'g1', queued: 9000, started: 9000 },
  { id: 'u1', status: 'queued', group: null, queued: 30, started: 30 },
  { id: 'cl1', status: 'closed', group: 'g2', agent: 'a1', queued: 100, accepted: 99, closed: 50, started: 100 }
])

const statements = countStatements(db.pool)
const app = await gateway(t, { pool: db.pool, metricsWindowSeconds: WINDOW_SECONDS })
const metricsUrl = (stream: string, query = '') => `${GROUP_METRICS_ROUTE_URL.replace(':streamId', stream)}${query === '' ? '' : `?${query}`}`
const get = async (url: string, token: string): Promise<LightMyRequestResponse> => await app.inject({ url, headers: { auth: token } })

const ajv = addFormats.default(new Ajv.default({ strict: false }))
const valid = ajv.compile(GroupMetrics)

const noCohort = { offered: 0, answered: 0, abandoned: 0, averageSpeedOfAnswer: null, serviceLevel: null, averageHandleTime: null }
const noAgents = { available: 0, busy: 0, away: 0, offline: 0 }
const G1 = {
  agentGroupId: 'g1', name: 'Group g1', waiting: 2, longestWaitTime: 100, active: 2, agents: { available: 1, busy: 1, away: 0, offline: 1 },
  // the cohort: q1, q2, act1, cl1, ab1; answered act1 (10 s) and cl1 (30 s); in 20 s: act1; handled: cl1 (270 s)
  offered: 5, answered: 2, abandoned: 1, averageSpeedOfAnswer: 20, serviceLevel: 0.3333, averageHandleTime: 270
}
const G2 = {
  agentGroupId: 'g2', name: 'Group g2', waiting: 1, longestWaitTime: 10, active: 0, agents: { available: 1, busy: 0, away: 1, offline: 0 },
  // answered in 20 s (in time: ≤) and 25 s, mean 22.5 rounded half up; handled in 80 s and 25 s, mean 52.5
  offered: 3, answered: 2, abandoned: 0, averageSpeedOfAnswer: 23, serviceLevel: 0.5, averageHandleTime: 53
}
const G3 = { agentGroupId: 'g3', name: 'Group g3', waiting: 0, longestWaitTime: null, active: 0, agents: noAgents, ...noCohort }
/** A manager of g2 and g3. */
const G2_AND_G3 = {
  groups: [G2, G3],
  ungrouped: null,
  totals: { waiting: 1, longestWaitTime: 10, active: 0, agents: { available: 1, busy: 0, away: 1, offline: 0 }, offered: 3, answered: 2, abandoned: 0, averageSpeedOfAnswer: 23, serviceLevel: 0.5, averageHandleTime: 53 }
}
const UNGROUPED = { waiting: 1, longestWaitTime: 60, active: 0, offered: 2, answered: 0, abandoned: 1, averageSpeedOfAnswer: null, serviceLevel: 0, averageHandleTime: null }

/** The answer, its wait times checked against what they were at insertion (they tick while the test runs) and then set to them. */
function settled (t: Test, body: any, expected: any): unknown {
  const figures = [...body.groups, body.ungrouped, body.totals].filter((figure) => figure !== null)
  const wanted = [...expected.groups, expected.ungrouped, expected.totals].filter((figure) => figure !== null)
  figures.forEach((figure, i) => {
    const want = wanted[i]?.longestWaitTime
    if (want === null || want === undefined) return
    t.ok(figure.longestWaitTime >= want && figure.longestWaitTime <= want + 5, `longestWaitTime ${figure.longestWaitTime}: ${want} s and the test's seconds since`)
    figure.longestWaitTime = want
  })
  return body
}

t.test('an unrestricted manager: every group in byte order, the ungrouped queue, and the totals', async (t) => {
  const before = statements.count()
  const response = await get(metricsUrl(QUEUES), managerToken([QUEUES]))
  t.equal(statements.count() - before, 1, 'one statement')
  t.equal(response.statusCode, 200)
  t.equal(response.headers['cache-control'], 'no-store')
  const body = response.json()
  t.ok(valid(body), 'valid against the response schema')
  const expected = {
    groups: [G1, G2, G3],
    ungrouped: UNGROUPED,
    totals: {
      waiting: 4, longestWaitTime: 100, active: 2,
      agents: { available: 1, busy: 1, away: 1, offline: 1 }, // a1 once; a5 is in no group
      // answered 10, 30, 20, 25 s: mean 21.25; in 20 s: act1, cl2 of 4 + 2; handled 270, 80, 25 s: mean 125
      offered: 10, answered: 4, abandoned: 2, averageSpeedOfAnswer: 21, serviceLevel: 0.3333, averageHandleTime: 125
    }
  }
  t.same(settled(t, body, expected), expected)
  t.same(Object.keys(body.groups[0]), Object.keys(G1), 'the fields in the documented order')
})

t.test('source narrows every conversation figure, not the agent counts', async (t) => {
  const body = (await get(metricsUrl(QUEUES, 'source=call'), managerToken([QUEUES]))).json()
  const expected = {
    // g1's calls: q2 waits; act2 is handled (queued before the window); ab1 was abandoned
    groups: [{ ...G1, waiting: 1, longestWaitTime: 40, active: 1, offered: 2, answered: 0, abandoned: 1, averageSpeedOfAnswer: null, serviceLevel: 0, averageHandleTime: null },
      { ...G2, waiting: 0, longestWaitTime: null, offered: 1, answered: 1, averageSpeedOfAnswer: 25, serviceLevel: 0, averageHandleTime: 25 },
      G3],
    ungrouped: { ...UNGROUPED, ...noCohort, waiting: 0, longestWaitTime: null },
    totals: { waiting: 1, longestWaitTime: 40, active: 1, agents: { available: 1, busy: 1, away: 1, offline: 1 }, offered: 3, answered: 1, abandoned: 1, averageSpeedOfAnswer: 25, serviceLevel: 0, averageHandleTime: 25 }
  }
  t.same(settled(t, body, expected), expected)
})

t.test('serviceLevelSeconds sets the target', async (t) => {
  const token = managerToken([QUEUES])
  const at30 = (await get(metricsUrl(QUEUES, 'serviceLevelSeconds=30'), token)).json()
  t.same(at30.groups.map((group: typeof G1) => group.serviceLevel), [0.6667, 1, null], 'g1: 2 of 3; g2: 2 of 2')
  const at19 = (await get(metricsUrl(QUEUES, 'serviceLevelSeconds=19'), token)).json()
  t.same(at19.groups.map((group: typeof G1) => group.serviceLevel), [0.3333, 0, null], 'g2\'s answer in 20 s is late for 19')
  for (const bad of ['0', '3601', '1.5', 'x']) {
    const response = await get(metricsUrl(QUEUES, `serviceLevelSeconds=${bad}`), token)
    t.equal(response.statusCode, 400, `serviceLevelSeconds=${bad}`)
    t.match(response.json(), { code: 'FAC_ERR_INVALID_REQUEST', message: /^querystring\/serviceLevelSeconds / })
  }
})

t.test('agentGroupId picks the groups (unknown ones left out), without the ungrouped queue', async (t) => {
  const token = managerToken([QUEUES])
  for (const query of ['agentGroupId=g2,nope', 'agentGroupId=nope&agentGroupId=g2', 'agentGroupId=g2,g2']) {
    const body = (await get(metricsUrl(QUEUES, query), token)).json()
    const { agentGroupId, name, ...g2Figures } = G2
    const expected = { groups: [G2], ungrouped: null, totals: g2Figures }
    t.same(settled(t, body, expected), expected, `${query}: g2 alone, and its figures are the totals`)
  }
  t.same((await get(metricsUrl(QUEUES, 'agentGroupId=nope'), token)).json(),
    { groups: [], ungrouped: null, totals: { waiting: 0, longestWaitTime: null, active: 0, agents: noAgents, ...noCohort } }, 'no such group: empty')
})

t.test('a group-scoped manager: its groups, never the ungrouped queue, nothing outside', async (t) => {
  const token = managerToken([QUEUES], ['g2', 'g3'])
  const body = (await get(metricsUrl(QUEUES), token)).json()
  t.same(settled(t, body, G2_AND_G3), G2_AND_G3)
  const outside = await get(metricsUrl(QUEUES, 'agentGroupId=g1,g2'), token)
  t.equal(outside.statusCode, 403)
  t.same(outside.json(), { statusCode: 403, code: 'FAC_ERR_FORBIDDEN', error: 'Forbidden', message: "agentGroupId names a group outside the token's agentGroupIds" })
})

t.test('who may not: before any statement', async (t) => {
  const before = statements.count()
  const cases: Array<[string, Record<string, string>, number, string]> = [
    ['no token', {}, 401, 'Missing or invalid token'],
    ['an agent', { auth: sign({ sub: 'a1', role: 'agent', streamIds: [QUEUES] }) }, 403, 'Only a manager may read the groups\' metrics'],
    ['another stream\'s manager', { auth: managerToken([OTHER]) }, 403, 'Not allowed to read this stream']
  ]
  for (const [name, headers, status, message] of cases) {
    const response = await app.inject({ url: metricsUrl(QUEUES), headers })
    t.equal(response.statusCode, status, name)
    t.equal(response.json().message, message, name)
  }
  t.equal(statements.count(), before, 'no statement')
})

t.test('streams never mix', async (t) => {
  const body = (await get(metricsUrl(OTHER), managerToken([QUEUES, OTHER]))).json()
  t.same(body.groups.map((group: typeof G1) => [group.agentGroupId, group.waiting, group.offered, group.agents.busy]), [['g1', 1, 0, 1], ['g2', 0, 1, 0]])
  t.equal(body.ungrouped.waiting, 1)
  t.equal(body.totals.waiting, 2)
})

t.test('at most 500 groups: more is a 400 that says to name them; named, they are answered', async (t) => {
  const stream = 'st-many-groups'
  await insert(db.pool, 'agent_groups', Array.from({ length: 501 }, (_, i) => ({ stream_id: stream, id: `g${String(i).padStart(3, '0')}`, name: `G${i}` })))
  const token = managerToken([stream])
  const tooMany = await get(metricsUrl(stream), token)
  t.equal(tooMany.statusCode, 400)
  t.same(tooMany.json(), { statusCode: 400, code: 'FAC_ERR_INVALID_REQUEST', error: 'Bad Request', message: 'The stream has more than 500 agent groups: name the ones to report with agentGroupId' })
  const named = await get(metricsUrl(stream, 'agentGroupId=g000,g500'), token)
  t.same(named.json().groups.map((group: typeof G1) => group.agentGroupId), ['g000', 'g500'])
  await db.pool.query('DELETE FROM agent_groups WHERE stream_id = $1 AND id = $2', [stream, 'g500'])
  t.equal((await get(metricsUrl(stream), token)).json().groups.length, 500, 'exactly 500: answered')
})

t.test('with preparedStatements: false (behind a transaction-mode pooler), the same answer from an unnamed statement', async (t) => {
  const unprepared = await gateway(t, { pool: db.pool, metricsWindowSeconds: WINDOW_SECONDS, preparedStatements: false })
  const response = await unprepared.inject({ url: metricsUrl(QUEUES), headers: { auth: managerToken([QUEUES], ['g2', 'g3']) } })
  t.equal(response.statusCode, 200)
  t.same(settled(t, response.json(), G2_AND_G3), G2_AND_G3)
})
