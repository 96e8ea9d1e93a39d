// Migration 002: conversations.skill_ids, which the request path reads, always
// equals the conversation's rows in conversation_skills, whatever writers do.
import { cpSync, mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import type pg from 'pg'
import { migrate, MIGRATIONS_DIRECTORY } from '../lib/index.js'
import { freshDatabase } from './helpers/database.js'
import { twoWritersAtOnce } from './helpers/concurrent.js'
import { insertConversations, insertStream } from './helpers/rows.js'

const SKILLS = ['k1', 'k2', 'k3', 'k4']
async function skillIds (pool: pg.Pool): Promise<Record<string, string[]>> {
  const { rows } = await pool.query<{ id: string, skill_ids: string[] }>('SELECT id, skill_ids FROM conversations ORDER BY id')
  return Object.fromEntries(rows.map((row) => [row.id, [...row.skill_ids].sort()]))
}

t.test('writes to conversation_skills show in skill_ids at once', async (t) => {
  const db = await freshDatabase(t)
  await insertStream(db.pool, 's1', { groups: ['g1'], skills: SKILLS, agents: [] })
  await insertConversations(db.pool, 's1', [
    { id: 'c1', status: 'queued', group: 'g1', skills: ['k1', 'k2'] },
    { id: 'c2', status: 'queued', group: 'g1' }
  ])
  t.same(await skillIds(db.pool), { c1: ['k1', 'k2'], c2: [] }, 'inserted')

  await db.pool.query("DELETE FROM conversation_skills WHERE conversation_id = 'c1' AND skill_id = 'k1'")
  t.same(await skillIds(db.pool), { c1: ['k2'], c2: [] }, 'deleted')

  await db.pool.query("UPDATE conversation_skills SET skill_id = 'k3' WHERE conversation_id = 'c1' AND skill_id = 'k2'")
  t.same(await skillIds(db.pool), { c1: ['k3'], c2: [] }, 'skill changed')

  await db.pool.query("UPDATE conversation_skills SET conversation_id = 'c2' WHERE conversation_id = 'c1'")
  t.same(await skillIds(db.pool), { c1: [], c2: ['k3'] }, 'moved to another conversation')

  await db.pool.query("INSERT INTO conversation_skills (stream_id, conversation_id, skill_id) VALUES ('s1', 'c1', 'k4'), ('s1', 'c2', 'k4')")
  await db.pool.query("DELETE FROM conversations WHERE id = 'c1'")
  t.same(await skillIds(db.pool), { c2: ['k3', 'k4'] }, 'a deleted conversation takes its skills with it (cascade)')

  await db.pool.query('BEGIN')
  await db.pool.query("INSERT INTO conversation_skills (stream_id, conversation_id, skill_id) VALUES ('s1', 'c2', 'k1')")
  await db.pool.query('ROLLBACK')
  t.same(await skillIds(db.pool), { c2: ['k3', 'k4'] }, 'a rolled back write leaves nothing')

  await db.pool.query('TRUNCATE conversation_skills')
  t.same(await skillIds(db.pool), { c2: [] }, 'truncated')
})

t.test('two transactions adding skills to one conversation at once: both land', async (t) => {
  const db = await freshDatabase(t)
  await insertStream(db.pool, 's1', { groups: ['g1'], skills: SKILLS, agents: [] })
  await insertConversations(db.pool, 's1', [{ id: 'c1', status: 'queued', group: 'g1' }])
  // The second waits for the first's row lock, then appends to what the first committed.
  const blocked = await twoWritersAtOnce(db.pool,
    "INSERT INTO conversation_skills (stream_id, conversation_id, skill_id) VALUES ('s1', 'c1', 'k1')",
    "INSERT INTO conversation_skills (stream_id, conversation_id, skill_id) VALUES ('s1', 'c1', 'k2')")
  t.equal(blocked, 1, 'the second waits for the first')
  t.same(await skillIds(db.pool), { c1: ['k1', 'k2'] })
})

t.test('migration 002 fills skill_ids for the rows already there', async (t) => {
  const db = await freshDatabase(t, { migrated: false })
  const onlyFirst = mkdtempSync(join(tmpdir(), 'migrations-'))
  cpSync(join(MIGRATIONS_DIRECTORY, '001_initial_schema.sql'), join(onlyFirst, '001_initial_schema.sql'))
  t.same(await migrate(db.pool, { directory: onlyFirst }), ['001_initial_schema.sql'])
  await insertStream(db.pool, 's1', { groups: ['g1'], skills: SKILLS, agents: [] })
  await insertConversations(db.pool, 's1', [
    { id: 'c1', status: 'queued', group: 'g1', skills: ['k2', 'k1'] },
    { id: 'c2', status: 'queued', group: 'g1' }
  ])
  t.same((await migrate(db.pool)).slice(0, 4), ['002_conversation_skill_ids.sql', '003_skill_names_index.sql', '004_floor_order.sql', '005_conversation_list_items.sql'], 'the later ones follow')
  t.same(await skillIds(db.pool), { c1: ['k1', 'k2'], c2: [] })
})
