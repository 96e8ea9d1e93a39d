// Migrations (applied once, in order, under a lock) and the constraints of the data model.
import { execFile } from 'node:child_process'
import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import t from 'tap'
import { migrate, MIGRATIONS_DIRECTORY } from '../lib/index.js'
import { freshDatabase } from './helpers/database.js'
import { insert, ago, insertStream, type Row } from './helpers/rows.js'

const run = promisify(execFile)
const applied = async (db: { pool: import('pg').Pool }) =>
  (await db.pool.query<{ name: string }>('SELECT name FROM fastify_active_conversations_migrations ORDER BY name')).rows.map((row) => row.name)

const PACKAGE_MIGRATIONS = ['001_initial_schema.sql', '002_conversation_skill_ids.sql', '003_skill_names_index.sql', '004_floor_order.sql', '005_conversation_list_items.sql', '006_change_notifications.sql', '007_agent_group_and_skill_ids.sql', '008_group_metrics_indexes.sql', '009_change_publication.sql']

t.test('applies the package\'s migrations once, from a connection string or a pool', async (t) => {
  const db = await freshDatabase(t, { migrated: false })
  t.same(await migrate(db.connectionString), PACKAGE_MIGRATIONS)
  t.same(await migrate(db.pool), [], 'a second run has nothing to do')
  t.same(await applied(db), PACKAGE_MIGRATIONS, 'recorded')
  const { rows } = await db.pool.query("SELECT count(*)::int AS n FROM information_schema.tables WHERE table_name IN ('agents', 'agent_groups', 'agent_group_members', 'skills', 'agent_skills', 'conversations', 'conversation_skills')")
  t.equal(rows[0].n, 7, 'every table of the data model')
  t.match(MIGRATIONS_DIRECTORY, /migrations$/)
})

// A released migration is never edited: every installed database recorded its checksum,
// and an edited file stops their gateways at start-up. Add a new numbered file instead.
t.test('the released migrations are as they were released', async (t) => {
  const db = await freshDatabase(t, { migrated: false })
  await migrate(db.pool)
  const { rows } = await db.pool.query<{ name: string, checksum: string }>('SELECT name, checksum FROM fastify_active_conversations_migrations ORDER BY name')
  t.same(Object.fromEntries(rows.map((row) => [row.name, row.checksum])), {
    '001_initial_schema.sql': 'cbc9d7d418b67b98f214d9f50fc86d6f91a6d2d08d6d989e47da6fa37c05aa5d',
    '002_conversation_skill_ids.sql': '3dc9a618c8ef98725a2bb0a80871f2d399421f4db386bde24033304f264eb71a',
    '003_skill_names_index.sql': '000f7ea2797e7aaf6a5ab75d5f0443800268bca55e02512c114f555b1f7ecf2c',
    '004_floor_order.sql': 'df7b53831d723ed20cb53b9841bad02be85691107a1f81ca4c34f4cc2e3be20d',
    '005_conversation_list_items.sql': '1580b4177ae2fca185ffb14f892635331342c8653d853a21f3a53aedc9b13ad3',
    '006_change_notifications.sql': 'db741de0d92a290800c06acbe3bffaffe31bbb0f8c317a38bbebb657068d5851',
    '007_agent_group_and_skill_ids.sql': '9f90cd1da292d85de7c6156286a83a977f932fa9ee1f3be81dacf2fa977320f8',
    '008_group_metrics_indexes.sql': '101a36c0e2c2345de987cbb2961cf292b454af638ab2827afa8e360f340a8956',
    '009_change_publication.sql': '882cc4ab7c0ec33a298817765b4a147926b57c05b67d1d459908e4593e8a5f7f'
  })
})

t.test('three migrators at once: one applies, none fails', async (t) => {
  const db = await freshDatabase(t, { migrated: false })
  const results = await Promise.all([migrate(db.connectionString), migrate(db.connectionString), migrate(db.pool)])
  t.same(results.flat(), PACKAGE_MIGRATIONS)
})

t.test('numbered files in numeric order; a failing one is rolled back; an edited one is refused', async (t) => {
  const db = await freshDatabase(t, { migrated: false })
  const directory = mkdtempSync(join(tmpdir(), 'migrations-'))
  writeFileSync(join(directory, '2_second.sql'), 'INSERT INTO log VALUES (2);')
  writeFileSync(join(directory, '1_first.sql'), 'CREATE TABLE log (n int);')
  writeFileSync(join(directory, '10_tenth.sql'), 'INSERT INTO log VALUES (10);')
  writeFileSync(join(directory, '2_another.sql'), 'INSERT INTO log VALUES (3);') // the same number: by name
  writeFileSync(join(directory, 'README.md'), 'not a migration')
  t.same(await migrate(db.pool, { directory }), ['1_first.sql', '2_another.sql', '2_second.sql', '10_tenth.sql'])
  t.same((await db.pool.query('SELECT n FROM log')).rows.map((row) => row.n), [3, 2, 10])

  writeFileSync(join(directory, '11_broken.sql'), 'INSERT INTO log VALUES (11); SELECT * FROM nowhere;')
  await t.rejects(migrate(db.pool, { directory }), { code: '42P01' })
  t.same((await db.pool.query('SELECT n FROM log')).rows.map((row) => row.n), [3, 2, 10], 'nothing of the failed file stays')
  t.notOk((await applied(db)).includes('11_broken.sql'), 'and it is not recorded')

  writeFileSync(join(directory, '11_broken.sql'), 'SELECT 1;')
  writeFileSync(join(directory, '2_second.sql'), 'INSERT INTO log VALUES (22);')
  await t.rejects(migrate(db.pool, { directory }), { message: 'migration 2_second.sql was changed after it was applied' })
})

t.test('the constraints keep bad rows out', async (t) => {
  const db = await freshDatabase(t)
  await insertStream(db.pool, 's1', { groups: ['g1'], skills: ['k1'], agents: [{ id: 'a1', groups: ['g1'], skills: ['k1'] }] })
  await insertStream(db.pool, 's2', { groups: ['g2'], skills: ['k2'], agents: [{ id: 'a2' }] })
  const conversation = (overrides: Row): Row => ({
    stream_id: 's1', id: `c-${Math.random()}`, source: 'chat', status: 'queued', customer_first_name: 'C', customer_last_name: 'D',
    started_at: ago(20), queued_at: ago(10), ...overrides
  })

  await t.resolves(insert(db.pool, 'conversations', [conversation({ id: 'minimal' })]), 'a writer that knows only the contract\'s columns can insert')
  const { rows } = await db.pool.query("SELECT response_seconds_total, response_count, customer_prof_image FROM conversations WHERE id = 'minimal'")
  t.same(rows[0], { response_seconds_total: 0, response_count: 0, customer_prof_image: null }, 'counters default to 0')

  const rejected: Array<[string, string, Row, string]> = [
    ['an unknown online status', 'agents', { stream_id: 's1', id: 'x', first_name: 'a', last_name: 'b', online_status: 'sleeping' }, '23514'],
    ['a duplicate agent in a stream', 'agents', { stream_id: 's1', id: 'a1', first_name: 'a', last_name: 'b' }, '23505'],
    ['a member of a group of another stream', 'agent_group_members', { stream_id: 's1', agent_group_id: 'g2', agent_id: 'a1' }, '23503'],
    ['a skill of another stream', 'agent_skills', { stream_id: 's1', agent_id: 'a1', skill_id: 'k2' }, '23503'],
    ['an unknown source', 'conversations', conversation({ source: 'sms' }), '23514'],
    ['an unknown status', 'conversations', conversation({ status: 'waiting' }), '23514'],
    ['an agent of another stream', 'conversations', conversation({ status: 'active', agent_id: 'a2', accepted_at: ago(5) }), '23503'],
    ['a group of another stream', 'conversations', conversation({ agent_group_id: 'g2' }), '23503'],
    ['an active conversation without an agent', 'conversations', conversation({ status: 'active', accepted_at: ago(5) }), '23514'],
    ['an active conversation never accepted', 'conversations', conversation({ status: 'active', agent_id: 'a1' }), '23514'],
    ['a closed conversation without closed_at', 'conversations', conversation({ status: 'closed', agent_id: 'a1', accepted_at: ago(5) }), '23514'],
    ['a queued conversation that is closed', 'conversations', conversation({ closed_at: ago(1) }), '23514'],
    ['queued before it started', 'conversations', conversation({ started_at: ago(5), queued_at: ago(10) }), '23514'],
    ['accepted before it was queued', 'conversations', conversation({ status: 'active', agent_id: 'a1', accepted_at: ago(15) }), '23514'],
    ['answered before it was accepted', 'conversations', conversation({ status: 'active', agent_id: 'a1', accepted_at: ago(5), first_response_at: ago(8) }), '23514'],
    ['closed before it was accepted', 'conversations', conversation({ status: 'closed', agent_id: 'a1', accepted_at: ago(5), closed_at: ago(7) }), '23514'],
    ['a negative reply count', 'conversations', conversation({ response_count: -1 }), '23514'],
    ['negative reply seconds', 'conversations', conversation({ response_seconds_total: -0.5 }), '23514'],
    ['a conversation skill of another stream', 'conversation_skills', { stream_id: 's1', conversation_id: 'minimal', skill_id: 'k2' }, '23503'],
    ['a skill for a conversation of another stream', 'conversation_skills', { stream_id: 's2', conversation_id: 'minimal', skill_id: 'k2' }, '23503']
  ]
  for (const [what, table, row, code] of rejected) {
    await t.rejects(insert(db.pool, table, [row]), { code }, what)
  }
})

t.test('npm run migrate (the package bin): applies, then says it is up to date; without DATABASE_URL, says how', async (t) => {
  const db = await freshDatabase(t, { migrated: false })
  const bin = new URL('../dist/scripts/migrate.js', import.meta.url).pathname
  const first = await run(process.execPath, [bin], { env: { ...process.env, DATABASE_URL: db.connectionString } })
  t.equal(first.stdout.trim(), `Applied: ${PACKAGE_MIGRATIONS.join(', ')}`)
  const second = await run(process.execPath, [bin], { env: { ...process.env, DATABASE_URL: db.connectionString } })
  t.equal(second.stdout.trim(), 'Up to date.')
  await t.rejects(run(process.execPath, [bin], { env: { ...process.env, DATABASE_URL: '' } }), { code: 2, stderr: /Set DATABASE_URL/ })
})
