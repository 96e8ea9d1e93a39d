// The request path keeps to its indexes: EXPLAIN of the endpoint's statement, in the
// generic plan a prepared statement settles on and in a custom one, on a seeded
// database of the benchmark's shape (scaled down), shows no sequential scan of conversations.
import t from 'tap'
import { AGENT_VIEW_SQL } from '../lib/query.js'
import { conversationCount, seed, type DataSetShape } from '../bench/seed.js'
import { freshDatabase } from './helpers/database.js'

const db = await freshDatabase(t)
// 2 streams x 500 agents x 40 closed + 3 active, 50 groups x 10 queued: about 45,000 conversations.
const shape: DataSetShape = { streams: 2, agentsPerStream: 500, groupsPerStream: 50, skillsPerStream: 20, closedPerAgent: 40, activePerAgent: 3, queuedPerGroup: 10 }
await seed(db.pool, shape)

t.test('the seed makes the data set it says', async (t) => {
  const { rows } = await db.pool.query('SELECT status, count(*)::int AS n FROM conversations GROUP BY status ORDER BY status')
  t.same(rows, [{ status: 'active', n: 3000 }, { status: 'closed', n: 40000 }, { status: 'queued', n: 1000 }])
  t.equal(conversationCount(shape), 44_000)
})

const cases: Array<[string, string]> = [
  ['no filter', "'st-1', 'a-17', NULL, NULL, NULL, 86400"],
  ['source and groups', "'st-2', 'a-400', 'chat', ARRAY['ag-0', 'ag-1'], NULL, 86400"],
  ['a group-scoped token', "'st-1', 'a-3', NULL, ARRAY['ag-3'], ARRAY['ag-3'], 86400"]
]
for (const mode of ['force_generic_plan', 'force_custom_plan']) {
  t.test(mode, async (t) => {
    const client = await db.pool.connect()
    t.teardown(() => client.release())
    await client.query(`SET plan_cache_mode = ${mode}`)
    await client.query(`PREPARE agent_view (text, text, text, text[], text[], int) AS ${AGENT_VIEW_SQL}`)
    for (const [what, values] of cases) {
      const { rows } = await client.query(`EXPLAIN (COSTS OFF) EXECUTE agent_view (${values})`)
      const plan = rows.map((row) => row['QUERY PLAN'] as string).join('\n')
      t.match(plan, /Index (Only )?Scan using conversations_active_by_agent/, `${what}: active conversations by index`)
      t.notMatch(plan, /Seq Scan on conversations/, `${what}: no sequential scan of conversations`)
      t.notMatch(plan, /Bitmap Index Scan on conversations_pkey/, `${what}: nor a sweep of a stream's conversations`)
    }
    await client.query('DEALLOCATE agent_view')
  })
}
