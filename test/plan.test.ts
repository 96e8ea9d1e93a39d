// The request path keeps to its indexes: EXPLAIN of the routes' statements, in the
// generic plan a prepared statement settles on and in a custom one, on a seeded
// database of the benchmark's shape (scaled down), shows no sequential scan of
// conversations or agents, for one request, a batch of several, and floor pages.
import t, { type Test } from 'tap'
import pg from 'pg'
import { AGENT_VIEWS_SQL, AGENT_VIEWS_STATEMENT, FLOOR_VIEWS_SQL, FLOOR_VIEWS_STATEMENT, readAgentViews, readFloor, requestsParameter, type AgentViewRequest, type FloorRequest } from '../lib/sql/views.js'
import { GROUP_METRICS_SQL, GROUP_METRICS_STATEMENT, readGroupMetrics, type GroupMetricsRequest } from '../lib/sql/group-metrics.js'
import { conversationCount, randomAgent, seed, type DataSetShape } from '../support/data-sets.js'
import { freshDatabase } from './helpers/database.js'

const db = await freshDatabase(t)
const escapeLiteral = (value: string): string => pg.escapeLiteral(value)
// 2 streams x 500 agents x 40 closed + 3 active, 50 groups x 10 queued: about 45,000 conversations.
const shape: DataSetShape = { streams: 2, agentsPerStream: 500, groupsPerStream: 50, skillsPerStream: 20, closedPerAgent: 40, activePerAgent: 3, queuedPerGroup: 10, ungroupedPerStream: 0 }
await seed(db.pool, shape)

t.test('the seed makes the data set it says', async (t) => {
  const { rows } = await db.pool.query('SELECT status, count(*)::int AS n FROM conversations GROUP BY status ORDER BY status')
  t.same(rows, [{ status: 'active', n: 3000 }, { status: 'closed', n: 40000 }, { status: 'queued', n: 1000 }])
  t.equal(conversationCount(shape), 44_000)
})

// The bench asks for random agents: each must exist (else it measures 404s), over the whole shape.
t.test('randomAgent draws agents of the seeded data set, from every stream', async (t) => {
  const drawn = Array.from({ length: 2000 }, () => randomAgent(shape))
  const { rows } = await db.pool.query(
    'SELECT count(*)::int AS n FROM agents a JOIN json_to_recordset($1) AS d("streamId" text, "agentId" text) ON a.stream_id = d."streamId" AND a.id = d."agentId"',
    [JSON.stringify(drawn)])
  t.equal(rows[0].n, drawn.length, 'every drawn agent exists')
  t.same([...new Set(drawn.map((agent) => agent.streamId))].sort(), ['st-1', 'st-2'], 'both streams')
  t.ok(new Set(drawn.map((agent) => agent.agentId)).size > 400, 'a spread over the 500 agents of a stream')
})

const request = (streamId: string, agentId: string, more: Partial<AgentViewRequest> = {}): AgentViewRequest =>
  ({ streamId, agentId, source: undefined, scope: { agentGroups: null, conversationGroups: null }, ...more })
const cases: Array<[string, AgentViewRequest[]]> = [
  ['no filter', [request('st-1', 'a-17')]],
  ['source and groups', [request('st-2', 'a-400', { source: 'chat', scope: { agentGroups: null, conversationGroups: ['ag-0', 'ag-1'] } })]],
  ['a group-scoped token', [request('st-1', 'a-3', { scope: { agentGroups: ['ag-3'], conversationGroups: ['ag-3'] } })]],
  ['a batch of 20 over both streams', Array.from({ length: 20 }, (_, i) => request(`st-${1 + i % 2}`, `a-${i * 23}`))]
]
/** EXPLAIN of a statement, prepared in this plan mode, for each list of argument literals. */
async function plans (mode: string, signature: string, sql: string, argumentLists: string[]): Promise<string[]> {
  const client = await db.pool.connect()
  try {
    await client.query(`SET plan_cache_mode = ${mode}`)
    await client.query(`PREPARE explained (${signature}) AS ${sql}`)
    const explained: string[] = []
    for (const args of argumentLists) {
      const { rows } = await client.query(`EXPLAIN (COSTS OFF) EXECUTE explained (${args})`)
      explained.push(rows.map((row) => row['QUERY PLAN'] as string).join('\n'))
    }
    await client.query('DEALLOCATE explained')
    return explained
  } finally {
    client.release()
  }
}

/** What both statements' plans must keep to. */
function keepsToIndexes (t: Test, what: string, plan: string): void {
  t.match(plan, /Index Scan using agents_pkey/, `${what}: each agent by primary key`)
  t.match(plan, /Index (Only )?Scan using conversations_queued_by_group/, `${what}: the queue by index`)
  t.notMatch(plan, /Seq Scan on (conversations|agents|agent_group_members)/, `${what}: no sequential scan of conversations, agents or members`)
  t.notMatch(plan, /Bitmap Index Scan on conversations_pkey/, `${what}: nor a sweep of a stream's conversations`)
}

/** How often pg ran a prepared statement on its generic and on custom plans. */
async function planCounts (pool: pg.Pool, name: string): Promise<unknown[]> {
  return (await pool.query('SELECT generic_plans::int AS generic, custom_plans::int AS custom FROM pg_prepared_statements WHERE name = $1', [name])).rows
}

for (const mode of ['force_generic_plan', 'force_custom_plan']) {
  t.test(mode, async (t) => {
    const explained = await plans(mode, 'json, int', AGENT_VIEWS_SQL, cases.map(([, list]) => `${escapeLiteral(requestsParameter(list))}, 86400`))
    cases.forEach(([what], i) => {
      const plan = explained[i] as string
      keepsToIndexes(t, what, plan)
      t.match(plan, /Index (Only )?Scan using conversations_active_by_agent/, `${what}: active conversations by index`)
    })
  })
}

// A custom plan is planned anew on every call (about three times the statement's
// execution); Postgres keeps making them when they look cheaper than the generic plan.
t.test('through pg, the statement settles on the generic plan after five calls', async (t) => {
  const pool = new pg.Pool({ connectionString: db.connectionString, max: 1 })
  t.teardown(() => pool.end())
  for (let i = 0; i < 12; i++) {
    const batch = Array.from({ length: 1 + (i % 4) }, (_, j) => request(`st-${1 + (i + j) % 2}`, `a-${(i * 37 + j) % 500}`))
    const results = await readAgentViews(pool, batch, 86_400)
    t.equal(results.filter((result) => result !== null && result !== 'forbidden').length, batch.length)
  }
  t.same(await planCounts(pool, AGENT_VIEWS_STATEMENT), [{ generic: 7, custom: 5 }])
})

const floor = (more: Partial<FloorRequest> = {}): FloorRequest =>
  ({ streamId: 'st-1', floorGroups: null, conversationGroups: null, source: undefined, after: '', limit: 100, ...more })
const floorCases: Array<[string, FloorRequest, RegExp]> = [
  ['a whole stream, first page', floor(), /Index (Only )?Scan using agents_in_id_byte_order/],
  ['a whole stream, after a cursor', floor({ after: 'a-250', limit: 500 }), /Index (Only )?Scan using agents_in_id_byte_order/],
  ['three groups, narrowed, one source', floor({ streamId: 'st-2', floorGroups: ['ag-1', 'ag-2', 'ag-3'], conversationGroups: ['ag-1', 'ag-2', 'ag-3'], source: 'call' }),
    /Index (Only )?Scan using agent_group_members_in_agent_byte_order/]
]
for (const mode of ['force_generic_plan', 'force_custom_plan']) {
  t.test(`the floor, ${mode}`, async (t) => {
    const literal = (value: unknown) => value === null ? 'NULL' : Array.isArray(value) ? `ARRAY[${value.map(escapeLiteral).join(', ')}]` : typeof value === 'number' ? String(value) : escapeLiteral(value as string)
    const explained = await plans(mode, 'text, text[], text[], text, text, int, int', FLOOR_VIEWS_SQL, floorCases.map(([, request]) =>
      [request.streamId, request.floorGroups, request.conversationGroups, request.source ?? null, request.after, request.limit, 86_400].map(literal).join(', ')))
    floorCases.forEach(([what, , pageIndex], i) => {
      const plan = explained[i] as string
      keepsToIndexes(t, what, plan)
      t.match(plan, pageIndex, `${what}: the page from an index in byte order`)
    })
  })
}

t.test('through pg, the floor statement settles on the generic plan after five calls, and pages as asked', async (t) => {
  const pool = new pg.Pool({ connectionString: db.connectionString, max: 1 })
  t.teardown(() => pool.end())
  for (let i = 0; i < 12; i++) {
    const page = await readFloor(pool, floor({ streamId: `st-${1 + i % 2}`, limit: 10 + i, floorGroups: i % 3 === 0 ? ['ag-4', 'ag-5'] : null }), 86_400)
    t.equal(page.agents.length, 10 + i, `page ${i}: as many agents as asked`)
    t.equal(page.more, true)
  }
  t.same(await planCounts(pool, FLOOR_VIEWS_STATEMENT), [{ generic: 7, custom: 5 }])
})

const metrics = (more: Partial<GroupMetricsRequest> = {}): GroupMetricsRequest =>
  ({ streamId: 'st-1', groups: null, ungrouped: true, source: undefined, serviceLevelSeconds: 20, ...more })
const metricsCases: Array<[string, GroupMetricsRequest]> = [
  ['every group of a stream, and the ungrouped queue', metrics()],
  ['three groups, one source', metrics({ streamId: 'st-2', groups: ['ag-1', 'ag-2', 'ag-3'], ungrouped: false, source: 'call' })]
]
for (const mode of ['force_generic_plan', 'force_custom_plan']) {
  t.test(`the groups' metrics, ${mode}`, async (t) => {
    const literal = (value: unknown) => value === null ? 'NULL' : Array.isArray(value) ? `ARRAY[${value.map(escapeLiteral).join(', ')}]` : typeof value === 'number' || typeof value === 'boolean' ? String(value) : escapeLiteral(value as string)
    const explained = await plans(mode, 'text, text[], text, boolean, int, int, int', GROUP_METRICS_SQL, metricsCases.map(([, request]) =>
      [request.streamId, request.groups, request.source ?? null, request.ungrouped, 86_400, request.serviceLevelSeconds, 500].map(literal).join(', ')))
    metricsCases.forEach(([what], i) => {
      const plan = explained[i] as string
      t.match(plan, /Index (Only )?Scan using conversations_queued_by_group/, `${what}: what waits, by index`)
      t.match(plan, /Index (Only )?Scan using conversations_active_by_group/, `${what}: what is handled, by index`)
      t.match(plan, /Index Only Scan using conversations_by_group_queued/, `${what}: the cohort from the index alone`)
      t.match(plan, /Index (Only )?Scan using agent_group_members_\w+ on agent_group_members/, `${what}: each group's members by index`)
      t.notMatch(plan, /Seq Scan on (conversations|agents|agent_group_members)/, `${what}: no sequential scan of conversations, agents or members`)
    })
  })
}

t.test('through pg, the groups\' metrics statement settles on the generic plan after five calls', async (t) => {
  const pool = new pg.Pool({ connectionString: db.connectionString, max: 1 })
  t.teardown(() => pool.end())
  for (let i = 0; i < 12; i++) {
    const groups = i % 3 === 0 ? null : [`ag-${i}`, `ag-${i + 10}`]
    const result = await readGroupMetrics(pool, metrics({ streamId: `st-${1 + i % 2}`, groups, ungrouped: groups === null }), 86_400, 500)
    t.equal(result === 'too-many' ? -1 : result.groups.length, groups === null ? 50 : 2, `call ${i}: every group asked for`)
  }
  t.same(await planCounts(pool, GROUP_METRICS_STATEMENT), [{ generic: 7, custom: 5 }])
})
