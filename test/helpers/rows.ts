import type pg from 'pg'

/** A timestamp this many seconds before the database's now(). */
export interface Ago { secondsAgo: number }
export const ago = (secondsAgo: number): Ago => ({ secondsAgo })

type Value = string | number | boolean | null | Ago
export type Row = Record<string, Value>

const isAgo = (value: Value): value is Ago => typeof value === 'object' && value !== null

/** Inserts rows into a table (test fixtures only: the names come from the test code). */
export async function insert (pool: pg.Pool, table: string, rows: Row[]): Promise<void> {
  for (const row of rows) {
    const columns = Object.keys(row)
    const values: unknown[] = []
    const placeholders = columns.map((column) => {
      const value = row[column] as Value
      values.push(isAgo(value) ? value.secondsAgo : value)
      return isAgo(value) ? `now() - make_interval(secs => $${values.length})` : `$${values.length}`
    })
    await pool.query(`INSERT INTO ${table} (${columns.join(', ')}) VALUES (${placeholders.join(', ')})`, values)
  }
}

export interface ConversationFixture {
  id: string
  status: 'queued' | 'active' | 'closed'
  source?: 'chat' | 'call'
  group?: string | null
  agent?: string | null
  /** Seconds ago; queued and started default to 10 s and 20 s ago. */
  started?: number
  queued?: number
  accepted?: number
  firstResponse?: number
  closed?: number
  replySeconds?: number
  replies?: number
  customer?: [string, string]
  image?: string | null
  skills?: string[]
}

/** Inserts conversations of a stream with their skills. */
export async function insertConversations (pool: pg.Pool, streamId: string, conversations: ConversationFixture[]): Promise<void> {
  const at = (seconds: number | undefined) => (seconds === undefined ? null : ago(seconds))
  for (const c of conversations) {
    await insert(pool, 'conversations', [{
      stream_id: streamId,
      id: c.id,
      source: c.source ?? 'chat',
      status: c.status,
      customer_first_name: c.customer?.[0] ?? 'Cus',
      customer_last_name: c.customer?.[1] ?? 'Tomer',
      customer_prof_image: c.image ?? null,
      agent_group_id: c.group ?? null,
      agent_id: c.agent ?? null,
      started_at: ago(c.started ?? 20),
      queued_at: ago(c.queued ?? 10),
      accepted_at: at(c.accepted),
      first_response_at: at(c.firstResponse),
      closed_at: at(c.closed),
      response_seconds_total: c.replySeconds ?? 0,
      response_count: c.replies ?? 0
    }])
    await insert(pool, 'conversation_skills', (c.skills ?? []).map((skill) => ({ stream_id: streamId, conversation_id: c.id, skill_id: skill })))
  }
}

export interface AgentFixture {
  id: string
  name?: [string, string]
  image?: string | null
  status?: string
  groups?: string[]
  skills?: string[]
}

/** Inserts a stream's groups, skills and agents with their memberships and skills. */
export async function insertStream (
  pool: pg.Pool,
  streamId: string,
  { groups = [], skills = [], agents = [] }: { groups?: string[], skills?: string[], agents?: AgentFixture[] }
): Promise<void> {
  await insert(pool, 'agent_groups', groups.map((id) => ({ stream_id: streamId, id, name: `Group ${id}` })))
  await insert(pool, 'skills', skills.map((id) => ({ stream_id: streamId, id, name: `Skill ${id}` })))
  for (const agent of agents) {
    await insert(pool, 'agents', [{
      stream_id: streamId,
      id: agent.id,
      first_name: agent.name?.[0] ?? 'Agent',
      last_name: agent.name?.[1] ?? agent.id,
      prof_image: agent.image ?? null,
      online_status: agent.status ?? 'available'
    }])
    await insert(pool, 'agent_group_members', (agent.groups ?? []).map((group) => ({ stream_id: streamId, agent_group_id: group, agent_id: agent.id })))
    await insert(pool, 'agent_skills', (agent.skills ?? []).map((skill) => ({ stream_id: streamId, agent_id: agent.id, skill_id: skill })))
  }
}
