import type pg from 'pg'

export interface DataSetShape {
  streams: number
  agentsPerStream: number
  groupsPerStream: number
  skillsPerStream: number
  /** Closed conversations per agent, spread over the last 30 days. */
  closedPerAgent: number
  activePerAgent: number
  queuedPerGroup: number
}

/** 10,000 agents in 1,000 groups over 10 streams, 20 skills each, 1,003,000 conversations; a few (3) queued per group. */
export const LARGE: DataSetShape = { streams: 10, agentsPerStream: 1000, groupsPerStream: 100, skillsPerStream: 20, closedPerAgent: 97, activePerAgent: 3, queuedPerGroup: 3 }
/** 100 agents, 10,000 conversations: the same shape, a hundredth of it. */
export const SMALL: DataSetShape = { streams: 1, agentsPerStream: 100, groupsPerStream: 10, skillsPerStream: 20, closedPerAgent: 97, activePerAgent: 3, queuedPerGroup: 3 }

/** A random agent of a data set of this shape, so that caches see a wallboard's spread. */
export function randomAgent (shape: DataSetShape): { streamId: string, agentId: string } {
  const stream = 1 + Math.floor(Math.random() * shape.streams)
  const agent = Math.floor(Math.random() * shape.agentsPerStream)
  return { streamId: `st-${stream}`, agentId: `a-${agent}` }
}

export function conversationCount (shape: DataSetShape): number {
  const agents = shape.streams * shape.agentsPerStream
  return agents * (shape.closedPerAgent + shape.activePerAgent) + shape.streams * shape.groupsPerStream * shape.queuedPerGroup
}

/*
 * Set-based seeding (generate_series), one statement per table. Stream s is
 * 'st-<s>'; agent i of a stream is 'a-<i>', in groups 'ag-<i % groups>' and
 * 'ag-<(i * 7 + 1) % groups>', with skills i, i+5 and i+11 (mod skills).
 * Open conversations need one skill; closed ones carry none (the request path
 * never reads their skills). The shape's numbers come in as parameters, named in p.
 */
const PARAMETERS = 'WITH p AS (SELECT $1::int AS streams, $2::int AS agents, $3::int AS groups, $4::int AS skills, $5::int AS closed, $6::int AS active, $7::int AS queued)'

const SEED_SQL = [
  `INSERT INTO agents (stream_id, id, first_name, last_name, prof_image, online_status)
   ${PARAMETERS}
   SELECT 'st-' || s, 'a-' || i, 'First' || i, 'Last' || i,
          CASE WHEN i % 3 = 0 THEN NULL ELSE 'https://img.example/a-' || i || '.png' END,
          (ARRAY['available', 'busy', 'away', 'offline'])[1 + i % 4]
   FROM p, generate_series(1, p.streams) s, generate_series(0, p.agents - 1) i`,
  `INSERT INTO agent_groups (stream_id, id, name)
   ${PARAMETERS}
   SELECT 'st-' || s, 'ag-' || g, 'Group ' || g FROM p, generate_series(1, p.streams) s, generate_series(0, p.groups - 1) g`,
  `INSERT INTO skills (stream_id, id, name)
   ${PARAMETERS}
   SELECT 'st-' || s, 'sk-' || k, 'Skill ' || k FROM p, generate_series(1, p.streams) s, generate_series(0, p.skills - 1) k`,
  `INSERT INTO agent_group_members (stream_id, agent_group_id, agent_id)
   ${PARAMETERS}
   SELECT DISTINCT 'st-' || s, 'ag-' || g, 'a-' || i
   FROM p, generate_series(1, p.streams) s, generate_series(0, p.agents - 1) i,
        LATERAL (VALUES (i % p.groups), ((i * 7 + 1) % p.groups)) AS m (g)`,
  `INSERT INTO agent_skills (stream_id, agent_id, skill_id)
   ${PARAMETERS}
   SELECT 'st-' || s, 'a-' || i, 'sk-' || k
   FROM p, generate_series(1, p.streams) s, generate_series(0, p.agents - 1) i,
        LATERAL (VALUES (i % p.skills), ((i + 5) % p.skills), ((i + 11) % p.skills)) AS m (k)`,
  // Closed: accepted at a random time in the last 30 days (the metrics window sees about 1/30 of them).
  `INSERT INTO conversations (stream_id, id, source, status, customer_first_name, customer_last_name, agent_group_id, agent_id,
                              started_at, queued_at, accepted_at, first_response_at, closed_at, response_seconds_total, response_count)
   ${PARAMETERS}
   SELECT 'st-' || s, 'c-' || i || '-' || n, CASE WHEN n % 2 = 0 THEN 'chat' ELSE 'call' END, 'closed', 'Cus' || n, 'Tomer' || i,
          'ag-' || (i % p.groups), 'a-' || i,
          t - interval '65 seconds', t - interval '60 seconds', t, t + interval '20 seconds', t + interval '600 seconds', 90, 3
   FROM p, generate_series(1, p.streams) s, generate_series(0, p.agents - 1) i, generate_series(1, p.closed) n,
        LATERAL (SELECT now() - interval '30 days' * random() - interval '1 hour' + interval '0' * n AS t) AS at`,
  `INSERT INTO conversations (stream_id, id, source, status, customer_first_name, customer_last_name, agent_group_id, agent_id,
                              started_at, queued_at, accepted_at, first_response_at, response_seconds_total, response_count)
   ${PARAMETERS}
   SELECT 'st-' || s, 'act-' || i || '-' || n, CASE WHEN n % 2 = 0 THEN 'chat' ELSE 'call' END, 'active', 'Cus' || n, 'Tomer' || i,
          'ag-' || (i % p.groups), 'a-' || i,
          now() - interval '30 minutes' * n - interval '70 seconds', now() - interval '30 minutes' * n - interval '60 seconds',
          now() - interval '30 minutes' * n, now() - interval '30 minutes' * n + interval '10 seconds', 40, 2
   FROM p, generate_series(1, p.streams) s, generate_series(0, p.agents - 1) i, generate_series(1, p.active) n`,
  // Queued: per group; in groups 0 and 1 the first is routed to no group instead, so that
  // every stream, large or small, has two ungrouped conversations: the same per-agent work.
  `INSERT INTO conversations (stream_id, id, source, status, customer_first_name, customer_last_name, agent_group_id,
                              started_at, queued_at)
   ${PARAMETERS}
   SELECT 'st-' || s, 'q-' || g || '-' || n, CASE WHEN n % 2 = 0 THEN 'chat' ELSE 'call' END, 'queued', 'Cus' || n, 'Waiting' || g,
          CASE WHEN n = 1 AND g < 2 THEN NULL ELSE 'ag-' || g END,
          now() - interval '10 seconds' * n - interval '5 seconds', now() - interval '10 seconds' * n
   FROM p, generate_series(1, p.streams) s, generate_series(0, p.groups - 1) g, generate_series(1, p.queued) n`,
  `INSERT INTO conversation_skills (stream_id, conversation_id, skill_id)
   ${PARAMETERS}
   SELECT stream_id, id, 'sk-' || (hashtext(id) & 2147483647) % p.skills FROM p, conversations WHERE status <> 'closed'`
]

/** Fills an empty, migrated database with a data set of this shape, then ANALYZEs it. */
export async function seed (pool: pg.Pool, shape: DataSetShape): Promise<void> {
  const values = [shape.streams, shape.agentsPerStream, shape.groupsPerStream, shape.skillsPerStream, shape.closedPerAgent, shape.activePerAgent, shape.queuedPerGroup]
  for (const sql of SEED_SQL) await pool.query(sql, values)
  await pool.query('VACUUM ANALYZE')
}
