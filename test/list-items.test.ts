// Migration 005: conversations.list_item_head, the clock-free part of a list item
// that the request path appends durations to, always says what the row and its
// skills say, whatever writers do; and what the routes send from it is the contract.
import { cpSync, mkdtempSync, readdirSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import type pg from 'pg'
import { migrate, MIGRATIONS_DIRECTORY } from '../lib/index.js'
import { freshDatabase } from './helpers/database.js'
import { gateway, viewUrl } from './helpers/gateway.js'
import { twoWritersAtOnce } from './helpers/concurrent.js'
import { insertConversations, insertStream } from './helpers/rows.js'
import { managerToken } from './helpers/tokens.js'

/** Each conversation's list item head, closed with a brace and parsed. */
async function heads (pool: pg.Pool): Promise<Record<string, unknown>> {
  const { rows } = await pool.query<{ id: string, head: string }>('SELECT id, list_item_head AS head FROM conversations ORDER BY id')
  return Object.fromEntries(rows.map((row) => [row.id, row.head === null ? null : JSON.parse(`${row.head}}`)]))
}

/** What a head must say, from the row itself, computed here rather than by the trigger. */
async function expected (pool: pg.Pool): Promise<Record<string, unknown>> {
  const { rows } = await pool.query(`
    SELECT c.id, c.status, c.customer_first_name, c.customer_last_name, c.customer_prof_image, c.source,
           to_char(c.started_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') AS start_time,
           coalesce((SELECT json_agg(json_build_object('id', s.id, 'name', s.name) ORDER BY s.name, s.id)
                     FROM conversation_skills cs JOIN skills s ON s.stream_id = cs.stream_id AND s.id = cs.skill_id
                     WHERE cs.stream_id = c.stream_id AND cs.conversation_id = c.id), '[]') AS skills
    FROM conversations c ORDER BY c.id`)
  return Object.fromEntries(rows.map((row) => [row.id, row.status === 'closed' ? null : {
    firstName: row.customer_first_name,
    lastName: row.customer_last_name,
    skills: row.skills,
    startTime: row.start_time,
    conversationId: row.id,
    source: row.source,
    profImage: row.customer_prof_image === null || row.customer_prof_image === '' ? 'no-avatar' : row.customer_prof_image
  }]))
}

async function insertSkills (pool: pg.Pool, skills: Array<[string, string]>): Promise<void> {
  for (const [id, name] of skills) await pool.query("INSERT INTO skills (stream_id, id, name) VALUES ('s1', $1, $2)", [id, name])
}

t.test('every write that changes what a list item shows rebuilds it, in the contract\'s field order', async (t) => {
  const db = await freshDatabase(t)
  await insertStream(db.pool, 's1', { groups: ['g1'], agents: [{ id: 'a1', groups: ['g1'] }] })
  await insertSkills(db.pool, [['k1', 'Zulu'], ['k2', 'Alpha'], ['k3', 'Mike']])
  await insertConversations(db.pool, 's1', [
    { id: 'c1', status: 'queued', group: 'g1', skills: ['k1', 'k2'], customer: ['Ann', 'Lee'], image: 'https://img.example/ann.png' },
    { id: 'c2', status: 'queued', group: 'g1', customer: ['Bob', ''], image: '' }
  ])
  const check = async (what: string): Promise<void> => { t.same(await heads(db.pool), await expected(db.pool), what) }
  await check('inserted')
  const { rows } = await db.pool.query("SELECT list_item_head FROM conversations WHERE id = 'c1'")
  t.match(rows[0].list_item_head, /^\{"firstName":"Ann","lastName":"Lee","skills":\[\{"id" ?: ?"k2", ?"name" ?: ?"Alpha"\}, ?\{"id" ?: ?"k1", ?"name" ?: ?"Zulu"\}\],"startTime":"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z","conversationId":"c1","source":"chat","profImage":"https:\/\/img\.example\/ann\.png"$/,
    'the fields in the contract\'s order, skills by name, no closing brace')

  await db.pool.query("UPDATE conversations SET customer_first_name = 'Anna', source = 'call', customer_prof_image = NULL, started_at = started_at - interval '1 minute' WHERE id = 'c1'")
  await check('the shown columns changed')
  await db.pool.query("INSERT INTO conversation_skills (stream_id, conversation_id, skill_id) VALUES ('s1', 'c2', 'k3')")
  await db.pool.query("DELETE FROM conversation_skills WHERE conversation_id = 'c1' AND skill_id = 'k1'")
  await check('skills added and removed')
  await db.pool.query("UPDATE skills SET name = 'Bravo' WHERE id = 'k3'")
  await check('a skill renamed: every conversation that needs it')
  await db.pool.query("UPDATE conversations SET list_item_head = 'forged' WHERE id = 'c2'")
  await check('a writer cannot set it')
  await db.pool.query("UPDATE conversations SET status = 'active', agent_id = 'a1', accepted_at = now() WHERE id = 'c2'")
  await db.pool.query("UPDATE conversations SET response_count = 3, response_seconds_total = 30 WHERE id = 'c2'")
  await check('accepting a conversation and counting replies leave it right')
  await db.pool.query("UPDATE conversations SET status = 'closed', closed_at = now() WHERE id = 'c2'")
  await check('closed: none (no list shows it)')
  await db.pool.query("UPDATE conversations SET status = 'queued', closed_at = NULL, agent_id = NULL, accepted_at = NULL WHERE id = 'c2'")
  await check('queued again: rebuilt')
  await t.rejects(db.pool.query("ALTER TABLE conversations DISABLE TRIGGER conversations_list_item_head_on_insert; INSERT INTO conversations (stream_id, id, source, status, customer_first_name, customer_last_name, started_at, queued_at) VALUES ('s1', 'c9', 'chat', 'queued', 'No', 'Head', now(), now())"),
    { message: /conversations_open_have_list_item_head/ }, 'an open conversation without a head is refused, whatever happened to the trigger')
  await db.pool.query('TRUNCATE conversation_skills')
  await check('conversation_skills truncated')
})

t.test('two transactions adding skills to one conversation at once: both show', async (t) => {
  const db = await freshDatabase(t)
  await insertStream(db.pool, 's1', { groups: ['g1'], agents: [] })
  await insertSkills(db.pool, [['k1', 'One'], ['k2', 'Two']])
  await insertConversations(db.pool, 's1', [{ id: 'c1', status: 'queued', group: 'g1' }])
  const blocked = await twoWritersAtOnce(db.pool,
    "INSERT INTO conversation_skills (stream_id, conversation_id, skill_id) VALUES ('s1', 'c1', 'k1')",
    "INSERT INTO conversation_skills (stream_id, conversation_id, skill_id) VALUES ('s1', 'c1', 'k2')")
  t.equal(blocked, 1, 'the second waits for the first')
  t.same((await heads(db.pool)).c1, (await expected(db.pool)).c1)
  t.same(((await heads(db.pool)).c1 as { skills: unknown[] }).skills, [{ id: 'k1', name: 'One' }, { id: 'k2', name: 'Two' }])
})

t.test('what the routes send from it: any text, escaped; the durations appended', async (t) => {
  const db = await freshDatabase(t)
  const odd = ['quote " and \\ backslash', 'line\nbreak\ttab', 'ünïcødé ✓ 𝄞', '</script><script>', '\u0001control']
  await insertSkills(db.pool, [['k1', odd[0] as string]])
  await insertStream(db.pool, 's1', { groups: ['g1'], agents: [{ id: 'a1', groups: ['g1'], skills: ['k1'] }] })
  await insertConversations(db.pool, 's1', odd.map((name, i) => ({
    id: `c${i}`, status: i % 2 === 0 ? 'queued' as const : 'active' as const, agent: i % 2 === 0 ? null : 'a1', group: 'g1', started: 100 + i, queued: 90 + i, accepted: i % 2 === 0 ? undefined : 50,
    customer: [name, name] as [string, string], image: name, skills: ['k1']
  })))
  const app = await gateway(t, { pool: db.pool })
  const response = await app.inject({ url: viewUrl('s1', 'a1'), headers: { auth: managerToken(['s1']) } })
  t.equal(response.statusCode, 200)
  t.equal(response.headers['content-type'], 'application/json; charset=utf-8')
  const body = response.json()
  const shown = [...body.active, ...body.queue]
  t.same(shown.map((c: { firstName: string }) => c.firstName).sort(), [...odd].sort(), 'every name, as written')
  t.ok(shown.every((c: { lastName: string, profImage: string, skills: Array<{ name: string }> }) =>
    c.profImage === c.lastName && c.skills[0]?.name === odd[0]), 'images and skill names too')
  t.same(body.active.map((c: Record<string, unknown>) => Object.keys(c)),
    body.active.map(() => ['firstName', 'lastName', 'skills', 'startTime', 'conversationId', 'source', 'profImage', 'engagementTime', 'waitTime']))
  t.same(body.queue.map((c: Record<string, unknown>) => Object.keys(c)),
    body.queue.map(() => ['firstName', 'lastName', 'skills', 'startTime', 'conversationId', 'source', 'profImage', 'waitTime']))
  t.ok(body.active.every((c: { engagementTime: number, waitTime: number }) => c.engagementTime >= 50 && c.engagementTime <= 52 && c.waitTime >= 41 && c.waitTime <= 43), 'active durations: since acceptance, and queued (91 or 93 s ago) to accepted (50 s ago)')
})

t.test('migration 005 fills list_item_head for the rows already there', async (t) => {
  const db = await freshDatabase(t, { migrated: false })
  const before = mkdtempSync(join(tmpdir(), 'migrations-'))
  for (const file of readdirSync(MIGRATIONS_DIRECTORY).filter((name) => name < '005')) cpSync(join(MIGRATIONS_DIRECTORY, file), join(before, file))
  t.same(await migrate(db.pool, { directory: before }), ['001_initial_schema.sql', '002_conversation_skill_ids.sql', '003_skill_names_index.sql', '004_floor_order.sql'])
  await insertStream(db.pool, 's1', { groups: ['g1'], agents: [] })
  await insertSkills(db.pool, [['k1', 'One'], ['k2', 'Two']])
  await insertConversations(db.pool, 's1', [
    { id: 'c1', status: 'queued', group: 'g1', skills: ['k2', 'k1'] },
    { id: 'c2', status: 'closed', group: 'g1', started: 100, queued: 90, closed: 10 }
  ])
  t.same((await migrate(db.pool))[0], '005_conversation_list_items.sql')
  t.same(await heads(db.pool), await expected(db.pool))
})
