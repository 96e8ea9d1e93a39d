// The floor route: who is on it, each agent exactly as the agent route answers
// it, keyset paging with an opaque cursor, one statement per page, and the same
// authentication and errors as the agent route.
import t, { type Test } from 'tap'
import type { LightMyRequestResponse } from 'fastify'
import { FLOOR_ROUTE_URL } from '../lib/index.js'
import { countStatements } from '../support/count-statements.js'
import { freshDatabase } from './helpers/database.js'
import { gateway, viewUrl } from './helpers/gateway.js'
import { insert, insertConversations, insertStream } from './helpers/rows.js'
import { managerToken, sign } from './helpers/tokens.js'
import { OTHER_STREAM, seedWorld, STREAM } from './helpers/world.js'

// Ids whose byte order differs from a linguistic one: '-' < digits < upper case < '_' < lower case.
const FLOOR = 'st-floor'
const FLOOR_AGENTS = ['b', 'A-1', 'a_1', 'a-2', 'Zed', 'a1', '0x']
const BYTE_ORDER = ['0x', 'A-1', 'Zed', 'a-2', 'a1', 'a_1', 'b']

const db = await freshDatabase(t)
await seedWorld(db.pool)
await insertStream(db.pool, FLOOR, {
  groups: ['g1', 'g2', 'empty'],
  skills: ['sk1'],
  agents: FLOOR_AGENTS.map((id, i) => ({ id, name: [`First${i}`, `Last${i}`], groups: i % 2 === 0 ? ['g1'] : ['g2'], skills: ['sk1'] }))
})
await insertConversations(db.pool, FLOOR, [
  { id: 'f-act', status: 'active', group: 'g1', agent: 'b', started: 300, queued: 290, accepted: 200 },
  { id: 'f-act-2', status: 'active', group: 'g2', agent: 'A-1', source: 'call', started: 300, queued: 290, accepted: 200 },
  { id: 'f-q1', status: 'queued', group: 'g1', started: 100, queued: 90, skills: ['sk1'] },
  { id: 'f-q2', status: 'queued', group: 'g2', source: 'call', started: 100, queued: 80 },
  { id: 'f-q3', status: 'queued', group: null, started: 100, queued: 70 }
])
const statements = countStatements(db.pool)
const app = await gateway(t, { pool: db.pool })

const floorUrl = (stream: string, query = '') => `${FLOOR_ROUTE_URL.replace(':streamId', stream)}${query === '' ? '' : `?${query}`}`
const get = async (url: string, token: string): Promise<LightMyRequestResponse> => await app.inject({ url, headers: { auth: token } })

interface Item { agentId: string, active: Array<Record<string, unknown>>, queue: Array<Record<string, unknown>>, [field: string]: unknown }

/** Every page of a floor, following nextCursor. */
async function allPages (url: string, token: string): Promise<{ items: Item[], pages: number }> {
  const items: Item[] = []
  let cursor: string | null = null
  let pages = 0
  do {
    const response = await get(`${url}${url.includes('?') ? '&' : '?'}${cursor === null ? '' : `cursor=${cursor}`}`, token)
    if (response.statusCode !== 200) throw new Error(`${response.statusCode} ${response.body}`)
    const body = response.json() as { agents: Item[], nextCursor: string | null }
    items.push(...body.agents)
    cursor = body.nextCursor
    pages++
  } while (cursor !== null)
  return { items, pages }
}

/** The durations, which the two routes compute at two instants: apart, so the rest can be compared exactly. */
function withoutDurations (item: Record<string, unknown>): { rest: unknown, durations: number[] } {
  const durations: number[] = []
  const strip = (list: unknown) => (list as Array<Record<string, unknown>>).map(({ engagementTime, waitTime, ...rest }) => {
    durations.push(...[engagementTime, waitTime].filter((value) => value !== undefined) as number[])
    return rest
  })
  return { rest: { ...item, active: strip(item.active), queue: strip(item.queue) }, durations }
}

/** Each floor item is what the agent route answers for that agent, with the same token and filters. */
async function sameAsAgentRoute (t: Test, stream: string, items: Item[], token: string, query: string): Promise<void> {
  for (const { agentId, ...item } of items) {
    const single = await get(viewUrl(stream, agentId, query), token)
    t.equal(single.statusCode, 200, `${agentId}: the agent route answers 200 too`)
    const floor = withoutDurations(item)
    const alone = withoutDurations(single.json())
    t.same(floor.rest, alone.rest, `${agentId}${query === '' ? '' : ` ?${query}`}: the same view`)
    t.ok(floor.durations.length === alone.durations.length && floor.durations.every((d, i) => Math.abs(d - (alone.durations[i] as number)) <= 1),
      `${agentId}: the same durations, to the second`)
    t.same(Object.keys(item), Object.keys(single.json()), 'the same fields in the same order')
  }
}

t.test('an unrestricted manager: every agent of the stream, in byte order, each as the agent route answers it', async (t) => {
  const token = managerToken([FLOOR])
  const response = await get(floorUrl(FLOOR), token)
  t.equal(response.statusCode, 200)
  t.equal(response.headers['cache-control'], 'no-store')
  const body = response.json()
  t.same(Object.keys(body), ['agents', 'nextCursor'])
  t.equal(body.nextCursor, null, 'one page holds them all')
  t.same(body.agents.map((agent: Item) => agent.agentId), BYTE_ORDER)
  t.same(Object.keys(body.agents[0]).slice(0, 2), ['agentId', 'resolutionTime'], 'agentId first, then the agent route\'s fields')
  await sameAsAgentRoute(t, FLOOR, body.agents, token, '')
  const b = body.agents.find((agent: Item) => agent.agentId === 'b') as Item
  t.same(b.active.map((c) => c.conversationId), ['f-act'])
  t.same(b.queue.map((c) => c.conversationId), ['f-q1', 'f-q3'], 'its group\'s queue and the ungrouped, skills permitting')
})

t.test('filters: agentGroupId picks the floor and narrows the lists; source narrows the lists', async (t) => {
  const token = managerToken([FLOOR])
  for (const query of ['agentGroupId=g2', 'agentGroupId=g1,g2', 'agentGroupId=g1&agentGroupId=g2', 'source=call', 'agentGroupId=g2&source=call']) {
    const { items } = await allPages(floorUrl(FLOOR, query), token)
    const groups = /agentGroupId=g1/.test(query) ? FLOOR_AGENTS : /g2/.test(query) ? FLOOR_AGENTS.filter((_, i) => i % 2 === 1) : FLOOR_AGENTS
    t.same(items.map((item) => item.agentId), BYTE_ORDER.filter((id) => groups.includes(id)), `${query}: the members of those groups`)
    await sameAsAgentRoute(t, FLOOR, items, token, query)
  }
  const g2 = (await get(floorUrl(FLOOR, 'agentGroupId=g2'), token)).json().agents as Item[]
  t.same(g2.find((item) => item.agentId === 'A-1')?.queue.map((c) => c.conversationId), ['f-q2'], 'the ungrouped queue is narrowed away, as on the agent route')
})

t.test('a group-scoped manager: its groups\' members; its own narrowing; nothing outside', async (t) => {
  const token = managerToken([STREAM], ['g1'])
  const { items } = await allPages(floorUrl(STREAM), token)
  t.same(items.map((item) => item.agentId), ['a1'], 'only g1\'s members (a2 is in g3, a3 in none)')
  await sameAsAgentRoute(t, STREAM, items, token, '')
  await sameAsAgentRoute(t, STREAM, (await allPages(floorUrl(STREAM, 'agentGroupId=g1'), token)).items, token, 'agentGroupId=g1')
  const outside = await get(floorUrl(STREAM, 'agentGroupId=g1,g3'), token)
  t.equal(outside.statusCode, 403)
  t.same(outside.json(), { statusCode: 403, code: 'FAC_ERR_FORBIDDEN', error: 'Forbidden', message: "agentGroupId names a group outside the token's agentGroupIds" })
  t.same((await get(floorUrl(STREAM), managerToken([STREAM], []))).json(), { agents: [], nextCursor: null }, 'no groups: an empty floor')
})

t.test('streams never mix', async (t) => {
  const both = managerToken([STREAM, OTHER_STREAM])
  const { items } = await allPages(floorUrl(OTHER_STREAM), both)
  t.same(items.map((item) => item.agentId), ['a-only-other', 'a1'])
  t.equal(items.find((item) => item.agentId === 'a1')?.firstName, 'Other', 'the other stream\'s a1')
  t.same(items.flatMap((item) => [...item.active, ...item.queue].map((c) => c.conversationId)).sort(), ['act-1', 'o-act', 'o-q'])
  await sameAsAgentRoute(t, OTHER_STREAM, items, both, '')
})

t.test('any text in the agent\'s fields comes out as escaped JSON, as the agent route has it', async (t) => {
  const nasty = 'Quote " back\\slash \n new\tline \u0001 </script> ü 😀'
  await insertStream(db.pool, 'st-json', { agents: [{ id: 'j1', name: [nasty, `${nasty} last`], image: `https://img.example/"${nasty}".png` }, { id: 'j2', name: ['', ''], image: '' }] })
  const token = managerToken(['st-json'])
  const response = await get(floorUrl('st-json'), token)
  t.equal(response.statusCode, 200)
  const body = JSON.parse(response.body) as { agents: Item[] } // valid JSON, or this throws
  t.same(body.agents.map((item) => [item.firstName, item.lastName, item.name, item.profImage]), [
    [nasty, `${nasty} last`, `${nasty} ${nasty} last`, `https://img.example/"${nasty}".png`],
    ['', '', '', 'no-avatar']
  ])
  await sameAsAgentRoute(t, 'st-json', body.agents, token, '')
})

t.test('who may not read a floor: 403 before any SQL', async (t) => {
  const before = statements.count()
  const cases: Array<[string, string, string]> = [
    ['an agent', sign({ sub: 'a1', role: 'agent', streamIds: [STREAM] }), 'Only a manager may read the floor'],
    ['no role', sign({ streamIds: [STREAM] }), 'Only a manager may read the floor'],
    ['another stream', managerToken([OTHER_STREAM]), 'Not allowed to read this stream']
  ]
  for (const [who, token, message] of cases) {
    const response = await get(floorUrl(STREAM), token)
    t.equal(response.statusCode, 403, who)
    t.same(response.json(), { statusCode: 403, code: 'FAC_ERR_FORBIDDEN', error: 'Forbidden', message }, who)
  }
  t.equal(statements.count(), before, 'no statement was sent')
})

t.test('unknown or empty groups: an empty floor', async (t) => {
  for (const query of ['agentGroupId=nope', 'agentGroupId=empty']) {
    const response = await get(floorUrl(FLOOR, query), managerToken([FLOOR]))
    t.equal(response.statusCode, 200, query)
    t.same(response.json(), { agents: [], nextCursor: null }, query)
  }
})

t.test('paging: keyset on agentId, one statement per page, null at the end', async (t) => {
  const token = managerToken([FLOOR])
  for (const limit of [1, 2, 3, 7, 500]) {
    const before = statements.count()
    const { items, pages } = await allPages(floorUrl(FLOOR, `limit=${limit}`), token)
    t.same(items.map((item) => item.agentId), BYTE_ORDER, `limit ${limit}: every agent once, in order`)
    t.equal(pages, Math.max(1, Math.ceil(BYTE_ORDER.length / limit)), `limit ${limit}: ${pages} pages`)
    t.equal(statements.count() - before, pages, `limit ${limit}: one statement per page`)
  }
  const first = (await get(floorUrl(FLOOR, 'limit=3'), token)).json()
  t.match(first.nextCursor, /^[A-Za-z0-9_-]+$/, 'an opaque cursor')
  const fromSecond = (await get(floorUrl(FLOOR, `limit=3&cursor=${first.nextCursor as string}`), token)).json()
  t.same(fromSecond.agents.map((item: Item) => item.agentId), BYTE_ORDER.slice(3, 6))
})

t.test('agents added while a client pages show up once or not at all', async (t) => {
  const token = managerToken([FLOOR])
  const first = (await get(floorUrl(FLOOR, 'limit=3'), token)).json()
  await insert(db.pool, 'agents', [
    { stream_id: FLOOR, id: '00-before', first_name: 'Early', last_name: 'Bird', online_status: 'available' },
    { stream_id: FLOOR, id: 'zz-after', first_name: 'Late', last_name: 'Comer', online_status: 'available' }
  ])
  t.teardown(async () => { await db.pool.query("DELETE FROM agents WHERE stream_id = $1 AND id IN ('00-before', 'zz-after')", [FLOOR]) })
  let cursor = first.nextCursor as string | null
  const seen: string[] = first.agents.map((item: Item) => item.agentId)
  while (cursor !== null) {
    const page = (await get(floorUrl(FLOOR, `limit=3&cursor=${cursor}`), token)).json()
    seen.push(...page.agents.map((item: Item) => item.agentId))
    cursor = page.nextCursor
  }
  t.same(seen, [...BYTE_ORDER, 'zz-after'], 'the one after the cursor once, the one before not at all, none twice')
})

t.test('a forged or corrupt cursor is a 400, never a 500 and never a way into another stream', async (t) => {
  const token = managerToken([FLOOR])
  for (const cursor of ['!!!', 'x'.repeat(300), Buffer.from('../../etc').toString('base64url'), Buffer.from('a1').toString('base64'), 'YTE=', '']) {
    const response = await get(`${floorUrl(FLOOR)}?cursor=${encodeURIComponent(cursor)}`, token)
    t.equal(response.statusCode, 400, `cursor ${JSON.stringify(cursor.slice(0, 20))}`)
    t.match(response.json(), { statusCode: 400, code: 'FAC_ERR_INVALID_REQUEST', error: 'Bad Request', message: /^querystring\/cursor / })
  }
  // A well-formed cursor is only a position: it reads nothing beyond the caller's own floor.
  const position = Buffer.from('a-only-other').toString('base64url')
  const response = await get(floorUrl(FLOOR, `cursor=${position}`), token)
  t.same(response.json().agents.map((item: Item) => item.agentId), BYTE_ORDER.filter((id) => Buffer.compare(Buffer.from(id), Buffer.from('a-only-other')) > 0))
  t.equal((await get(floorUrl(OTHER_STREAM, `cursor=${position}`), token)).statusCode, 403, 'another stream stays forbidden')
})

t.test('the same authentication and input errors as the agent route', async (t) => {
  const anonymous = await app.inject({ url: floorUrl(FLOOR) })
  t.equal(anonymous.statusCode, 401)
  t.same(anonymous.json(), { statusCode: 401, code: 'FAC_ERR_UNAUTHORIZED', error: 'Unauthorized', message: 'Missing or invalid token' })
  t.equal((await app.inject({ url: floorUrl(FLOOR), headers: { authorization: `Bearer ${managerToken([FLOOR])}` } })).statusCode, 200, 'Authorization: Bearer works too')
  const token = managerToken([FLOOR])
  const cases: Array<[string, RegExp]> = [
    ['limit=0', /^querystring\/limit must be >= 1/],
    ['limit=501', /^querystring\/limit must be <= 500/],
    ['limit=ten', /^querystring\/limit must be integer/],
    ['source=sms', /^querystring\/source must be equal to one of the allowed values/],
    [`agentGroupId=${Array.from({ length: 51 }, (_, i) => `g${i}`).join(',')}`, /^querystring\/agentGroupId must NOT have more than 50 items/],
    ['agentGroupId=bad%20id', /^querystring\/agentGroupId\/0 must match pattern/]
  ]
  for (const [query, message] of cases) {
    const response = await get(floorUrl(FLOOR, query), token)
    t.equal(response.statusCode, 400, query)
    t.match(response.json(), { statusCode: 400, code: 'FAC_ERR_INVALID_REQUEST', error: 'Bad Request', message }, query)
  }
  t.equal((await get(floorUrl('bad stream!'), token)).statusCode, 400, 'a malformed stream id')
})

t.test('pages take turns: at most maxConcurrentStatements floor statements at once, every page answered', async (t) => {
  const own = await gateway(t, { pool: db.pool, maxConcurrentStatements: 1 })
  const query = db.pool.query.bind(db.pool)
  let running = 0
  let most = 0
  db.pool.query = (async (...args: Parameters<typeof query>) => {
    most = Math.max(most, ++running)
    try { return await query(...args) } finally { running-- }
  }) as typeof db.pool.query
  t.teardown(() => { db.pool.query = query })
  const token = managerToken([FLOOR])
  const pages = await Promise.all(Array.from({ length: 6 }, async (_, i) => await own.inject({ url: floorUrl(FLOOR, `limit=${1 + i}`), headers: { auth: token } })))
  t.same(pages.map((page) => page.statusCode), [200, 200, 200, 200, 200, 200])
  t.same(pages.map((page) => page.json().agents.length), [1, 2, 3, 4, 5, 6], 'each page as asked')
  t.equal(most, 1, 'one statement at a time')
})
