// Migration 007: agents.group_ids and agents.skill_ids, which the request path
// reads, always equal the agent's rows in agent_group_members and agent_skills,
// whatever writers do.
import { cpSync, mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import type pg from 'pg'
import { migrate, MIGRATIONS_DIRECTORY } from '../lib/index.js'
import { freshDatabase } from './helpers/database.js'
import { twoWritersAtOnce } from './helpers/concurrent.js'
import { insertStream } from './helpers/rows.js'

const GROUPS = ['g1', 'g2', 'g3']
const SKILLS = ['k1', 'k2', 'k3']

/** Each agent's kept ids, sorted (their order carries no meaning). */
async function keptIds (pool: pg.Pool): Promise<Record<string, { groups: string[], skills: string[] }>> {
  const { rows } = await pool.query<{ stream_id: string, id: string, group_ids: string[], skill_ids: string[] }>(
    'SELECT stream_id, id, group_ids, skill_ids FROM agents ORDER BY stream_id, id')
  return Object.fromEntries(rows.map((row) => [`${row.stream_id}/${row.id}`, { groups: [...row.group_ids].sort(), skills: [...row.skill_ids].sort() }]))
}

t.test('writes to memberships and agent skills show on the agent row at once', async (t) => {
  const db = await freshDatabase(t)
  await insertStream(db.pool, 's1', { groups: GROUPS, skills: SKILLS, agents: [{ id: 'a1', groups: ['g1', 'g2'], skills: ['k1'] }, { id: 'a2' }] })
  await insertStream(db.pool, 's2', { groups: GROUPS, skills: SKILLS, agents: [{ id: 'a1', groups: ['g3'], skills: ['k3'] }] })
  t.same(await keptIds(db.pool), {
    's1/a1': { groups: ['g1', 'g2'], skills: ['k1'] },
    's1/a2': { groups: [], skills: [] },
    's2/a1': { groups: ['g3'], skills: ['k3'] }
  }, 'inserted, each stream its own')

  await db.pool.query("DELETE FROM agent_group_members WHERE stream_id = 's1' AND agent_group_id = 'g1'")
  await db.pool.query("DELETE FROM agent_skills WHERE stream_id = 's1' AND agent_id = 'a1'")
  t.same(await keptIds(db.pool), {
    's1/a1': { groups: ['g2'], skills: [] },
    's1/a2': { groups: [], skills: [] },
    's2/a1': { groups: ['g3'], skills: ['k3'] }
  }, 'deleted')

  await db.pool.query("UPDATE agent_group_members SET agent_id = 'a2' WHERE stream_id = 's1' AND agent_id = 'a1'")
  await db.pool.query("UPDATE agent_skills SET skill_id = 'k2' WHERE stream_id = 's2' AND agent_id = 'a1'")
  t.same(await keptIds(db.pool), {
    's1/a1': { groups: [], skills: [] },
    's1/a2': { groups: ['g2'], skills: [] },
    's2/a1': { groups: ['g3'], skills: ['k2'] }
  }, 'a membership moved to another agent; a skill changed')

  await db.pool.query("DELETE FROM agent_groups WHERE stream_id = 's1' AND id = 'g2'")
  await db.pool.query("DELETE FROM skills WHERE stream_id = 's2' AND id = 'k2'")
  t.same(await keptIds(db.pool), {
    's1/a1': { groups: [], skills: [] },
    's1/a2': { groups: [], skills: [] },
    's2/a1': { groups: ['g3'], skills: [] }
  }, 'a deleted group or skill leaves its agents (cascade)')

  await db.pool.query('BEGIN')
  await db.pool.query("INSERT INTO agent_skills (stream_id, agent_id, skill_id) VALUES ('s1', 'a1', 'k1')")
  await db.pool.query('ROLLBACK')
  t.same((await keptIds(db.pool))['s1/a1'], { groups: [], skills: [] }, 'a rolled back write leaves nothing')

  await db.pool.query("DELETE FROM agents WHERE stream_id = 's2' AND id = 'a1'")
  t.same(Object.keys(await keptIds(db.pool)), ['s1/a1', 's1/a2'], 'an agent deleted with its memberships and skills (cascade) is simply gone')

  await db.pool.query("INSERT INTO agent_group_members (stream_id, agent_group_id, agent_id) VALUES ('s1', 'g1', 'a1'), ('s1', 'g3', 'a2')")
  await db.pool.query("INSERT INTO agent_skills (stream_id, agent_id, skill_id) VALUES ('s1', 'a1', 'k1'), ('s1', 'a2', 'k3')")
  await db.pool.query('TRUNCATE agent_group_members')
  t.same(await keptIds(db.pool), { 's1/a1': { groups: [], skills: ['k1'] }, 's1/a2': { groups: [], skills: ['k3'] } }, 'memberships truncated')
  await db.pool.query('TRUNCATE agent_skills')
  t.same(await keptIds(db.pool), { 's1/a1': { groups: [], skills: [] }, 's1/a2': { groups: [], skills: [] } }, 'skills truncated')
})

t.test('two transactions changing one agent at once: both land', async (t) => {
  const db = await freshDatabase(t)
  await insertStream(db.pool, 's1', { groups: GROUPS, skills: SKILLS, agents: [{ id: 'a1', groups: ['g1'], skills: ['k1'] }] })
  // The second waits for the first's row lock, then applies its change to what the first committed.
  t.equal(await twoWritersAtOnce(db.pool,
    "INSERT INTO agent_group_members (stream_id, agent_group_id, agent_id) VALUES ('s1', 'g2', 'a1')",
    "INSERT INTO agent_group_members (stream_id, agent_group_id, agent_id) VALUES ('s1', 'g3', 'a1')"), 1, 'the second membership waits for the first')
  t.equal(await twoWritersAtOnce(db.pool,
    "DELETE FROM agent_skills WHERE stream_id = 's1' AND agent_id = 'a1' AND skill_id = 'k1'",
    "INSERT INTO agent_skills (stream_id, agent_id, skill_id) VALUES ('s1', 'a1', 'k2')"), 1, 'the skill added waits for the one removed')
  t.same(await keptIds(db.pool), { 's1/a1': { groups: ['g1', 'g2', 'g3'], skills: ['k2'] } })
})

t.test('migration 007 fills the ids of the agents already there', async (t) => {
  const db = await freshDatabase(t, { migrated: false })
  const upTo6 = mkdtempSync(join(tmpdir(), 'migrations-'))
  for (const name of ['001_initial_schema.sql', '002_conversation_skill_ids.sql', '003_skill_names_index.sql', '004_floor_order.sql', '005_conversation_list_items.sql', '006_change_notifications.sql']) {
    cpSync(join(MIGRATIONS_DIRECTORY, name), join(upTo6, name))
  }
  t.equal((await migrate(db.pool, { directory: upTo6 })).length, 6)
  await insertStream(db.pool, 's1', { groups: GROUPS, skills: SKILLS, agents: [{ id: 'a1', groups: ['g2', 'g1'], skills: ['k3', 'k1'] }, { id: 'a2', skills: ['k2'] }, { id: 'a3' }] })
  t.same(await migrate(db.pool), ['007_agent_group_and_skill_ids.sql', '008_group_metrics_indexes.sql', '009_change_publication.sql'])
  t.same(await keptIds(db.pool), {
    's1/a1': { groups: ['g1', 'g2'], skills: ['k1', 'k3'] },
    's1/a2': { groups: [], skills: ['k2'] },
    's1/a3': { groups: [], skills: [] }
  })
})
