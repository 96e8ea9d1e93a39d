// Migration 006: after each statement that changes what a view shows, one
// NOTIFY per stream on fastify_active_conversations saying which agents,
// which groups' queues and whether the ungrouped queue changed; a stream-wide
// notice when that would not fit; nothing for a rolled-back transaction.
import t from 'tap'
import pg from 'pg'
import { CHANNEL, LISTENING_LOCK } from '../lib/live/listener.js'
import { freshDatabase } from './helpers/database.js'
import { insert, insertConversations, insertStream } from './helpers/rows.js'

interface Notice { s: string, a?: string[], g?: string[], u?: boolean, m?: boolean, all?: boolean }


const db = await freshDatabase(t)
await insertStream(db.pool, 's1', {
  groups: ['g1', 'g2'],
  skills: ['k1', 'k2'],
  agents: [{ id: 'a1', groups: ['g1'], skills: ['k1'] }, { id: 'a2', groups: ['g2'] }]
})
await insertStream(db.pool, 's2', { groups: ['g1'], agents: [{ id: 'a1', groups: ['g1'] }] })

const listener = new pg.Client({ connectionString: db.connectionString })
await listener.connect()
t.teardown(() => listener.end())
const received: Notice[] = []
listener.on('notification', (message) => { if (message.channel === CHANNEL) received.push(JSON.parse(message.payload as string) as Notice) })
await listener.query(`LISTEN ${CHANNEL}`)
await listener.query('SELECT pg_advisory_lock_shared($1)', [LISTENING_LOCK]) // as a listening gateway does

/** Waits until a marker notice sent now has arrived: every notice of earlier commits is in by then. */
async function drain (): Promise<void> {
  const marker = `marker-${Math.random()}`
  await db.pool.query('SELECT pg_notify($1, $2)', [CHANNEL, JSON.stringify({ s: marker })])
  for (let i = 0; i < 400 && !received.some((notice) => notice.s === marker); i++) await new Promise((resolve) => setTimeout(resolve, 5))
}

/** The notices that a write (one or more statements, one transaction each unless it says) sends, in order. */
async function noticesOf (write: () => Promise<unknown>): Promise<Notice[]> {
  await drain()
  received.length = 0
  await write()
  await drain()
  return received.slice(0, -1).map(({ a, g, ...notice }) => ({ ...notice, ...(a && { a: a.sort() }), ...(g && { g: g.sort() }) }))
}

t.test('a conversation queued in a group, then accepted, then closed', async (t) => {
  t.same(await noticesOf(() => insertConversations(db.pool, 's1', [{ id: 'c1', status: 'queued', group: 'g1' }])),
    [{ s: 's1', a: [], g: ['g1'], u: false, m: false }], 'queued: the group\'s queue')
  t.same(await noticesOf(() => db.pool.query("UPDATE conversations SET status = 'active', agent_id = 'a1', accepted_at = now() WHERE id = 'c1'")),
    [{ s: 's1', a: ['a1'], g: ['g1'], u: false, m: false }], 'accepted: out of the group\'s queue, into the agent\'s active list')
  t.same(await noticesOf(() => db.pool.query("UPDATE conversations SET status = 'closed', closed_at = now() WHERE id = 'c1'")),
    [{ s: 's1', a: ['a1'], g: [], u: false, m: false }], 'closed: the agent\'s list and metrics')
  t.same(await noticesOf(() => db.pool.query("DELETE FROM conversations WHERE id = 'c1'")), [{ s: 's1', a: ['a1'], g: [], u: false, m: false }])
})

t.test('an ungrouped conversation: every agent\'s queue', async (t) => {
  t.same(await noticesOf(() => insertConversations(db.pool, 's1', [{ id: 'u1', status: 'queued', group: null }])), [{ s: 's1', a: [], g: [], u: true, m: false }])
})

t.test('its skills and a skill\'s new name reach the conversation\'s row, and so the notice', async (t) => {
  await insertConversations(db.pool, 's1', [{ id: 'c2', status: 'queued', group: 'g2' }])
  t.same(await noticesOf(() => insert(db.pool, 'conversation_skills', [{ stream_id: 's1', conversation_id: 'c2', skill_id: 'k2' }])),
    [{ s: 's1', a: [], g: ['g2'], u: false, m: false }])
  t.same(await noticesOf(() => db.pool.query("UPDATE skills SET name = 'Renamed' WHERE stream_id = 's1' AND id = 'k2'")),
    [{ s: 's1', a: [], g: ['g2'], u: false, m: false }])
})

t.test('agents, their groups and their skills', async (t) => {
  t.same(await noticesOf(() => db.pool.query("UPDATE agents SET online_status = 'busy' WHERE stream_id = 's1' AND id = 'a2'")), [{ s: 's1', a: ['a2'], g: [], u: false, m: false }])
  t.same(await noticesOf(() => insert(db.pool, 'agent_group_members', [{ stream_id: 's1', agent_group_id: 'g1', agent_id: 'a2' }])),
    // Migration 007 keeps the agent's group ids on its row: that UPDATE of agents tells of the agent first.
    [{ s: 's1', a: ['a2'], g: [], u: false, m: false }, { s: 's1', a: ['a2'], g: ['g1'], u: false, m: true }],
    'a membership: the agent and the group (a group\'s floor gains it)')
  // The skills' notice and the one of 007's UPDATE of the agent row are the same text: NOTIFY sends it once.
  t.same(await noticesOf(() => db.pool.query("DELETE FROM agent_skills WHERE stream_id = 's1' AND agent_id = 'a1'")), [{ s: 's1', a: ['a1'], g: [], u: false, m: false }])
  t.same(await noticesOf(() => insertStream(db.pool, 's1', { agents: [{ id: 'a3' }] })), [{ s: 's1', a: ['a3'], g: [], u: false, m: false }], 'a new agent')
})

t.test('one notice per statement and stream, whatever the rows', async (t) => {
  const many = await noticesOf(() => db.pool.query(`
    INSERT INTO conversations (stream_id, id, source, status, customer_first_name, customer_last_name, agent_group_id, started_at, queued_at)
    SELECT s, 'm-' || s || '-' || i, 'chat', 'queued', 'C', 'T', 'g1', now(), now() FROM unnest(ARRAY['s1', 's2']) s, generate_series(1, 100) i`))
  t.same(many.sort((x, y) => x.s.localeCompare(y.s)), [{ s: 's1', a: [], g: ['g1'], u: false, m: false }, { s: 's2', a: [], g: ['g1'], u: false, m: false }])
  t.same(await noticesOf(() => db.pool.query("UPDATE agents SET online_status = 'away' WHERE stream_id = 'nowhere'")), [], 'no row changed: no notice')
})

t.test('a rolled-back transaction tells nothing; a committed one tells once per distinct notice', async (t) => {
  const client = await db.pool.connect()
  t.teardown(() => client.release())
  t.same(await noticesOf(async () => {
    await client.query('BEGIN')
    await client.query("UPDATE agents SET online_status = 'offline' WHERE stream_id = 's1' AND id = 'a1'")
    await client.query('ROLLBACK')
  }), [])
  t.same(await noticesOf(async () => {
    await client.query('BEGIN')
    await client.query("UPDATE agents SET online_status = 'offline' WHERE stream_id = 's1' AND id = 'a1'")
    await client.query("UPDATE agents SET online_status = 'available' WHERE stream_id = 's1' AND id = 'a1'")
    await client.query('COMMIT')
  }), [{ s: 's1', a: ['a1'], g: [], u: false, m: false }])
})

t.test('a statement that touches more than a notice can hold: the whole stream', async (t) => {
  await insertStream(db.pool, 's-big', { agents: Array.from({ length: 400 }, (_, i) => ({ id: `agent-with-a-long-id-${i}` })) })
  t.same(await noticesOf(() => db.pool.query("UPDATE agents SET online_status = 'busy' WHERE stream_id = 's-big'")), [{ s: 's-big', all: true }])
})

t.test('nobody listening: nothing is sent, and a gateway that starts listening waits for the writes under way', async (t) => {
  await listener.query('SELECT pg_advisory_unlock_shared($1)', [LISTENING_LOCK])
  t.same(await noticesOf(() => db.pool.query("UPDATE agents SET online_status = 'busy' WHERE stream_id = 's1' AND id = 'a1'")), [], 'no lock held: no notice')

  // A writer's transaction that found nobody listening holds the lock to its end:
  // a gateway starting to listen meanwhile waits, so its first read sees the write.
  const writer = await db.pool.connect()
  t.teardown(() => writer.release())
  await writer.query('BEGIN')
  await writer.query("UPDATE agents SET online_status = 'away' WHERE stream_id = 's1' AND id = 'a1'")
  let locked = false
  const locking = listener.query('SELECT pg_advisory_lock_shared($1)', [LISTENING_LOCK]).then(() => { locked = true })
  await new Promise((resolve) => setTimeout(resolve, 200))
  t.equal(locked, false, 'the listener waits while the writer\'s transaction is open')
  await writer.query('COMMIT')
  await locking
  const { rows: [status] } = await db.pool.query("SELECT online_status FROM agents WHERE stream_id = 's1' AND id = 'a1'")
  t.equal(status.online_status, 'away', 'once it holds the lock, the write is there to read')
  t.same(await noticesOf(() => db.pool.query("UPDATE agents SET online_status = 'available' WHERE stream_id = 's1' AND id = 'a1'")), [{ s: 's1', a: ['a1'], g: [], u: false, m: false }], 'listening again: notices again')
})
