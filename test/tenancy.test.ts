// Property test: whatever the token claims and the request ask, an answer holds only
// rows of the token's streams (and groups), and a foreign stream runs no SQL at all.
import t from 'tap'
import fc from 'fast-check'
import { countStatements } from '../support/count-statements.js'
import { freshDatabase } from './helpers/database.js'
import { gateway, viewUrl } from './helpers/gateway.js'
import { insertConversations, insertStream } from './helpers/rows.js'
import { sign } from './helpers/tokens.js'

const STREAMS = ['s-a', 's-b', 's-c']
const GROUPS = ['g1', 'g2', 'g3']
const AGENTS = ['a1', 'a2', 'a3', 'a4']
/** Agent i of every stream is in these groups (a4 in none), so that streams look alike but never share a row. */
const MEMBERSHIP: Record<string, string[]> = { a1: ['g1'], a2: ['g2', 'g3'], a3: ['g1', 'g3'], a4: [] }

const db = await freshDatabase(t)
for (const stream of STREAMS) {
  await insertStream(db.pool, stream, {
    groups: GROUPS,
    agents: AGENTS.map((id) => ({ id, name: [stream, id], groups: MEMBERSHIP[id] }))
  })
  // Conversation ids say where they belong: <stream>.<group or none>.<n>
  let n = 0
  const id = (group: string | null) => `${stream}.${group ?? 'none'}.${n++}`
  await insertConversations(db.pool, stream, [
    ...AGENTS.flatMap((agent) => [...(MEMBERSHIP[agent] as string[]), null].map((group) => ({
      id: id(group), status: 'active' as const, group, agent, source: n % 2 ? 'chat' as const : 'call' as const, started: 100, queued: 90, accepted: 80
    }))),
    ...[...GROUPS, null].map((group) => ({ id: id(group), status: 'queued' as const, group, started: 60, queued: 50 }))
  ])
}

// The real pool, with a count of the statements sent through it.
const statements = countStatements(db.pool)
const app = await gateway(t, { pool: db.pool })

const claimsArbitrary = fc.record({
  role: fc.constantFrom('manager', 'manager', 'manager', 'agent', 'agent', 'supervisor', undefined),
  sub: fc.constantFrom(...AGENTS, undefined),
  streamIds: fc.subarray([...STREAMS, 's-x'], { minLength: 2 }),
  agentGroupIds: fc.option(fc.subarray(GROUPS), { nil: undefined, freq: 1 })
}, { requiredKeys: ['streamIds'] })
const requestArbitrary = fc.record({
  stream: fc.constantFrom(...STREAMS, 's-x'),
  agent: fc.constantFrom(...AGENTS, 'nobody'),
  groups: fc.option(fc.subarray(GROUPS, { minLength: 1 }), { nil: undefined }),
  source: fc.option(fc.constantFrom('chat', 'call'), { nil: undefined })
})

t.test('every answer is 403, 404, or only rows the token may see', async (t) => {
  const seen = new Map<number, number>()
  await fc.assert(fc.asyncProperty(claimsArbitrary, requestArbitrary, async (claims, request) => {
    const query = [request.groups && `agentGroupId=${request.groups.join(',')}`, request.source && `source=${request.source}`].filter(Boolean).join('&')
    const before = statements.count()
    const response = await app.inject({ url: viewUrl(request.stream, request.agent, query), headers: { auth: sign(claims) } })
    seen.set(response.statusCode, (seen.get(response.statusCode) ?? 0) + 1)

    if (!claims.streamIds.includes(request.stream)) {
      return response.statusCode === 403 && statements.count() === before // refused before any SQL
    }
    if (response.statusCode === 403 || response.statusCode === 404) return true
    if (response.statusCode !== 200) return false

    const body = response.json()
    const restricted = claims.role === 'manager' ? claims.agentGroupIds : undefined
    const allowed = (claims.role === 'manager' || (claims.role === 'agent' && claims.sub === request.agent)) &&
      (restricted === undefined || (MEMBERSHIP[request.agent] ?? []).some((group) => restricted.includes(group)))
    const rows = [...body.active, ...body.queue] as Array<{ conversationId: string, source: string }>
    return allowed &&
      body.firstName === request.stream && // the agent of this stream, not its namesake elsewhere
      rows.every(({ conversationId, source }) => {
        const [stream, group] = conversationId.split('.')
        return stream === request.stream &&
          (restricted === undefined || restricted.includes(group as string)) &&
          (request.groups === undefined || request.groups.includes(group as string)) &&
          (request.source === undefined || source === request.source)
      })
  }), { numRuns: 1000, seed: 20261125 })
  t.ok((seen.get(200) ?? 0) > 100 && (seen.get(403) ?? 0) > 100 && (seen.get(404) ?? 0) > 10, `both answers were exercised: ${JSON.stringify([...seen])}`)
})

t.test('requests batched into one statement each get the answer they get alone', async (t) => {
  const alone = await gateway(t, { pool: db.pool, maxRequestsPerStatement: 1 })
  const batched = await gateway(t, { pool: db.pool, maxConcurrentStatements: 1 })
  const cases = fc.sample(fc.tuple(claimsArbitrary, requestArbitrary), { numRuns: 300, seed: 20261126 }).map(([claims, request]) => ({
    url: viewUrl(request.stream, request.agent, [request.groups && `agentGroupId=${request.groups.join(',')}`, request.source && `source=${request.source}`].filter(Boolean).join('&')),
    headers: { auth: sign(claims) }
  }))
  // Waits count seconds on the database clock: the two runs may fall on different seconds.
  const comparable = (response: { statusCode: number, body: string }) =>
    `${response.statusCode} ${response.body.replace(/"(waitTime|engagementTime)":\d+/g, '"$1":_')}`

  const expected: string[] = []
  for (const request of cases) expected.push(comparable(await alone.inject(request)))
  const before = statements.count()
  const answers = await Promise.all(cases.map(async (request) => comparable(await batched.inject(request))))
  const sent = statements.count() - before

  t.same(answers, expected)
  t.ok(expected.filter((answer) => answer.startsWith('200')).length > 50, 'many answers carry rows')
  t.ok(sent < cases.length / 4, `batched: ${cases.length} requests, ${sent} statements`)
})
