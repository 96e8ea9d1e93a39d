// What the WAL tells the hub (lib/live/changes.ts, migration 009): each
// committed transaction, decoded from the publication on a temporary slot,
// as one change per stream saying which agents, which groups' queues and
// whether the ungrouped queue changed; nothing for a rolled-back transaction.
import t from 'tap'
import { CHANGE_COLUMNS, changesOf, EVERY_STREAM, PUBLICATION, type Change } from '../lib/live/changes.js'
import { openWalStream } from '../lib/live/wal.js'
import { freshDatabase } from './helpers/database.js'
import { insert, insertConversations, insertStream } from './helpers/rows.js'

type Told = Omit<Change, 'xid' | 'committedAt'>

const db = await freshDatabase(t)
await insertStream(db.pool, 's1', {
  groups: ['g1', 'g2'],
  skills: ['k1', 'k2'],
  agents: [{ id: 'a1', groups: ['g1'], skills: ['k1'] }, { id: 'a2', groups: ['g2'] }]
})
await insertStream(db.pool, 's2', { groups: ['g1'], agents: [{ id: 'a1', groups: ['g1'] }] })

const received: Change[][] = []
const wal = await openWalStream({ connectionString: db.connectionString }, {
  publication: PUBLICATION,
  columns: CHANGE_COLUMNS,
  slotWaitMillis: 10_000,
  onCommit: (commit) => { received.push(changesOf(commit)) },
  onLost: (error) => { throw error }
})
t.teardown(() => wal.close())

/** Waits until a marker transaction committed now has been decoded: every earlier commit is in by then. */
async function drain (): Promise<void> {
  const marker = `marker-${Math.random()}`
  await db.pool.query("INSERT INTO agent_groups (stream_id, id, name) VALUES ($1, 'm', 'm')", [marker])
  for (let i = 0; i < 400 && !received.some((changes) => changes.some((change) => change.s === marker)); i++) await new Promise((resolve) => setTimeout(resolve, 5))
}

/** What a write's transactions tell, one array per transaction, in commit order. */
async function toldOf (write: () => Promise<unknown>): Promise<Told[][]> {
  await drain()
  received.length = 0
  await write()
  await drain()
  return received.slice(0, -1).map((changes) => changes.map(({ xid, committedAt, a, g, ...change }) => ({ ...change, a: a.sort(), g: g.sort() })))
}

const only = (s: string, fields: Partial<Told>): Told[][] => [[{ s, a: [], g: [], u: false, ...fields }]]

t.test('a conversation queued in a group, then accepted, then closed, then deleted', async (t) => {
  t.same(await toldOf(() => insertConversations(db.pool, 's1', [{ id: 'c1', status: 'queued', group: 'g1' }])), only('s1', { g: ['g1'] }), 'queued: the group\'s queue')
  t.same(await toldOf(() => db.pool.query("UPDATE conversations SET status = 'active', agent_id = 'a1', accepted_at = now() WHERE id = 'c1'")),
    only('s1', { a: ['a1'], g: ['g1'] }), 'accepted: out of the group\'s queue (its old row), into the agent\'s active list')
  t.same(await toldOf(() => db.pool.query("UPDATE conversations SET agent_id = 'a2' WHERE id = 'c1'")), only('s1', { a: ['a1', 'a2'] }), 'moved: both agents')
  t.same(await toldOf(() => db.pool.query("UPDATE conversations SET status = 'closed', closed_at = now() WHERE id = 'c1'")), only('s1', { a: ['a2'] }), 'closed: the agent\'s list and metrics')
  t.same(await toldOf(() => db.pool.query("DELETE FROM conversations WHERE id = 'c1'")), only('s1', { a: ['a2'] }), 'deleted: its whole old row tells')
})

t.test('an ungrouped conversation: every agent\'s queue', async (t) => {
  t.same(await toldOf(() => insertConversations(db.pool, 's1', [{ id: 'u1', status: 'queued', group: null }])), only('s1', { u: true }))
})

t.test('its skills and a skill\'s new name reach the conversation\'s row, and so the change', async (t) => {
  await insertConversations(db.pool, 's1', [{ id: 'c2', status: 'queued', group: 'g2' }])
  t.same(await toldOf(() => insert(db.pool, 'conversation_skills', [{ stream_id: 's1', conversation_id: 'c2', skill_id: 'k2' }])), only('s1', { g: ['g2'] }))
  t.same(await toldOf(() => db.pool.query("UPDATE skills SET name = 'Renamed' WHERE stream_id = 's1' AND id = 'k2'")), only('s1', { g: ['g2'] }))
})

t.test('agents, their groups and their skills; groups\' own rows name the stream', async (t) => {
  t.same(await toldOf(() => db.pool.query("UPDATE agents SET online_status = 'busy' WHERE stream_id = 's1' AND id = 'a2'")), only('s1', { a: ['a2'] }))
  t.same(await toldOf(() => insert(db.pool, 'agent_group_members', [{ stream_id: 's1', agent_group_id: 'g1', agent_id: 'a2' }])),
    only('s1', { a: ['a2'], g: ['g1'] }), 'a membership: the agent and the group (a group\'s floor gains it)')
  t.same(await toldOf(() => db.pool.query("DELETE FROM agent_skills WHERE stream_id = 's1' AND agent_id = 'a1'")), only('s1', { a: ['a1'] }), 'a delete carries its key: the agent')
  t.same(await toldOf(() => db.pool.query("DELETE FROM agents WHERE stream_id = 's1' AND id = 'a2'")), only('s1', { a: ['a2'], g: ['g1', 'g2'] }), 'a deleted agent, with its memberships (cascaded)')
  t.same(await toldOf(() => db.pool.query("UPDATE agent_groups SET name = 'Sales' WHERE stream_id = 's1' AND id = 'g1'")), only('s1', {}), 'a group renamed: the stream (its queue metrics)')
})

t.test('one change per transaction and stream, whatever the rows and statements', async (t) => {
  const many = await toldOf(() => db.pool.query(`
    INSERT INTO conversations (stream_id, id, source, status, customer_first_name, customer_last_name, agent_group_id, started_at, queued_at)
    SELECT s, 'm-' || s || '-' || i, 'chat', 'queued', 'C', 'T', 'g1', now(), now() FROM unnest(ARRAY['s1', 's2']) s, generate_series(1, 100) i`))
  t.same(many.map((changes) => changes.sort((x, y) => x.s.localeCompare(y.s))), [[{ s: 's1', a: [], g: ['g1'], u: false }, { s: 's2', a: [], g: ['g1'], u: false }]])
  t.same(await toldOf(() => db.pool.query("UPDATE agents SET online_status = 'away' WHERE stream_id = 'nowhere'")), [], 'no row changed: nothing')
})

t.test('a rolled-back transaction tells nothing; a committed one tells once', async (t) => {
  const client = await db.pool.connect()
  t.teardown(() => client.release())
  t.same(await toldOf(async () => {
    await client.query('BEGIN')
    await client.query("UPDATE agents SET online_status = 'offline' WHERE stream_id = 's1' AND id = 'a1'")
    await client.query('ROLLBACK')
  }), [])
  t.same(await toldOf(async () => {
    await client.query('BEGIN')
    await client.query("UPDATE agents SET online_status = 'offline' WHERE stream_id = 's1' AND id = 'a1'")
    await client.query("UPDATE conversations SET status = 'active', agent_id = 'a1', accepted_at = now() WHERE stream_id = 's1' AND id = 'u1'")
    await client.query('COMMIT')
  }), only('s1', { a: ['a1'], u: true }))
})

t.test('a truncation: every view of every stream', async (t) => {
  t.same(await toldOf(() => db.pool.query('TRUNCATE conversations CASCADE')), [[{ s: EVERY_STREAM, a: [], g: [], u: false }]])
})

t.test('each change carries its transaction and commit time', async (t) => {
  const before = Date.now()
  const { rows: [{ xid }] } = await db.pool.query("UPDATE agents SET online_status = 'busy' WHERE stream_id = 's1' AND id = 'a1' RETURNING pg_current_xact_id()::text AS xid")
  await drain()
  const change = received.flat().find((change) => change.s === 's1') as Change
  t.equal(change.xid, Number(BigInt(xid) & 0xffffffffn))
  t.ok(change.committedAt >= before - 1000 && change.committedAt <= Date.now() + 1000, 'on the server\'s clock, which is this one\'s here')
})
