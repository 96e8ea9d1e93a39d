// The bench's data sets are what the bench says they are: the busy shape's views
// hold the number of conversations the curve names, and the counts add up.
import t from 'tap'
import { readAgentViews } from '../lib/sql/views.js'
import { BUSY, conversationCount, CURVE, randomAgent, seed } from '../support/data-sets.js'
import { freshDatabase } from './helpers/database.js'

const db = await freshDatabase(t)
for (const { shape } of CURVE) await seed(db.pool, shape) // six streams side by side, one per point

t.test('each point of the curve: its conversations, and views of about the size it names', async (t) => {
  for (const { conversationsPerView, shape } of CURVE) {
    const streamId = `st-${shape.firstStream as number}`
    const { rows } = await db.pool.query('SELECT count(*)::int AS n FROM conversations WHERE stream_id = $1', [streamId])
    t.equal(rows[0].n, conversationCount(shape), `${streamId}: ${conversationCount(shape)} conversations`)
    const requests = Array.from({ length: shape.agentsPerStream }, (_, i) => ({ streamId, agentId: `a-${i}`, source: undefined, scope: { agentGroups: null, conversationGroups: null } }))
    const views = await readAgentViews(db.pool, requests, 86_400)
    const sizes = views.map((view) => typeof view === 'object' && view !== null ? JSON.parse(view.active).length + JSON.parse(view.queue).length : -1)
    const mean = sizes.reduce((sum, size) => sum + size, 0) / sizes.length
    if (conversationsPerView === 0) t.same(new Set(sizes), new Set([0]), 'empty views')
    else t.ok(mean >= 0.85 * conversationsPerView && mean <= 1.15 * conversationsPerView, `${conversationsPerView} a view: ${mean.toFixed(1)} on average`)
    t.ok(randomAgent(shape).streamId === streamId, 'randomAgent stays in the point\'s stream')
  }
})

t.test('busy skills follow groups: about 6 an agent, 1 or 2 a conversation', async (t) => {
  const streams = CURVE.map(({ shape }) => `st-${shape.firstStream as number}`)
  const perAgent = await db.pool.query('SELECT min(n)::int AS min, max(n)::int AS max FROM (SELECT count(*) AS n FROM agent_skills WHERE stream_id = ANY ($1) GROUP BY stream_id, agent_id) x', [streams])
  t.ok(perAgent.rows[0].min >= 3 && perAgent.rows[0].max === 6, `agents have ${perAgent.rows[0].min as number} to 6 skills`)
  const perConversation = await db.pool.query("SELECT min(cardinality(skill_ids))::int AS min, max(cardinality(skill_ids))::int AS max FROM conversations WHERE status <> 'closed' AND stream_id = ANY ($1)", [streams])
  t.same(perConversation.rows[0], { min: 1, max: 2 })
  t.equal(conversationCount(BUSY), 1_069_190, 'the busy set: about a million, like the light large one')
})
