import type pg from 'pg'

export interface DataSetShape {
  /**
   * light: agents with 3 skills spread over 20, open conversations needing one
   * of them at random (a view holds about 4). busy: skills follow groups, as
   * routing does: a group's conversations need 1 or 2 of its 3 core skills (one
   * in ten also one from outside), its members have the cores of both their
   * groups (about 6 skills), and each stream has ungrouped conversations too.
   */
  kind?: 'light' | 'busy'
  /** The first stream is st-<firstStream> (default 1): shapes can share a database. */
  firstStream?: number
  streams: number
  agentsPerStream: number
  groupsPerStream: number
  skillsPerStream: number
  /** Closed conversations per agent, spread over the last 30 days. */
  closedPerAgent: number
  /** busy: 1 fewer to 1 more, by agent (0: none). */
  activePerAgent: number
  queuedPerGroup: number
  /** busy: queued conversations of no group, per stream (light: 0; its two come from groups 0 and 1). */
  ungroupedPerStream: number
  /**
   * Closed conversations per group queued in the last day besides (default 0): a
   * wallboard's cohort. Five in six answered by the group's members after 3 to
   * 40 s, one in six abandoned after 5 to 90 s.
   */
  recentPerGroup?: number
}

/** 10,000 agents in 1,000 groups over 10 streams, 20 skills each, 1,003,000 conversations; a few (3) queued per group. */
export const LARGE: DataSetShape = { streams: 10, agentsPerStream: 1000, groupsPerStream: 100, skillsPerStream: 20, closedPerAgent: 97, activePerAgent: 3, queuedPerGroup: 3, ungroupedPerStream: 0 }
/** 100 agents, 10,000 conversations: the same shape, a hundredth of it. */
export const SMALL: DataSetShape = { streams: 1, agentsPerStream: 100, groupsPerStream: 10, skillsPerStream: 20, closedPerAgent: 97, activePerAgent: 3, queuedPerGroup: 3, ungroupedPerStream: 0 }

/**
 * About 1,000,000 conversations like LARGE, with busy views: 2 to 4 active, 10 to 20 of the
 * agent's groups' queue and some ungrouped ones it may take, about 21 a view.
 */
export const BUSY: DataSetShape = { kind: 'busy', streams: 10, agentsPerStream: 1000, groupsPerStream: 100, skillsPerStream: 30, closedPerAgent: 97, activePerAgent: 3, queuedPerGroup: 9, ungroupedPerStream: 20, recentPerGroup: 60 }

/** The curve's points: busy-kind streams of 100 agents whose views hold about this many conversations, one stream each. */
export const CURVE: Array<{ conversationsPerView: number, shape: DataSetShape }> = [
  [0, 0, 0, 0], [5, 2, 1, 8], [10, 3, 3, 10], [20, 3, 8, 20], [40, 4, 18, 30], [80, 4, 40, 40]
].map(([conversationsPerView, activePerAgent, queuedPerGroup, ungroupedPerStream], i) => ({
  conversationsPerView: conversationsPerView as number,
  shape: { kind: 'busy', firstStream: i + 1, streams: 1, agentsPerStream: 100, groupsPerStream: 10, skillsPerStream: 30, closedPerAgent: 20, activePerAgent: activePerAgent as number, queuedPerGroup: queuedPerGroup as number, ungroupedPerStream: ungroupedPerStream as number }
}))

/** A random agent of a data set of this shape, so that caches see a wallboard's spread. */
export function randomAgent (shape: DataSetShape): { streamId: string, agentId: string } {
  const stream = (shape.firstStream ?? 1) + Math.floor(Math.random() * shape.streams)
  const agent = Math.floor(Math.random() * shape.agentsPerStream)
  return { streamId: `st-${stream}`, agentId: `a-${agent}` }
}

export function conversationCount (shape: DataSetShape): number {
  const agents = shape.streams * shape.agentsPerStream
  const ungrouped = shape.streams * shape.ungroupedPerStream
  return agents * shape.closedPerAgent + shape.streams * activePerStream(shape) +
    shape.streams * shape.groupsPerStream * (shape.queuedPerGroup + (shape.recentPerGroup ?? 0)) + ungrouped
}

/** Busy agents handle one fewer to one more than activePerAgent, by agent (none when it is 0). */
function activePerStream (shape: DataSetShape): number {
  if (shape.kind !== 'busy' || shape.activePerAgent === 0) return shape.agentsPerStream * shape.activePerAgent
  return Array.from({ length: shape.agentsPerStream }, (_, i) => shape.activePerAgent - 1 + i % 3).reduce((sum, n) => sum + n, 0)
}

/*
 * Set-based seeding (generate_series), one statement per table. Stream s is
 * 'st-<s>'; agent i of a stream is 'a-<i>', in groups 'ag-<i % groups>' and
 * 'ag-<(i * 7 + 1) % groups>'. Light: skills i, i+5 and i+11 (mod skills); open
 * conversations need one skill at random. Busy: see DataSetShape.kind. Closed
 * conversations carry no skill (the request path never reads them). The
 * shape's numbers come in as parameters, named in p.
 */
const PARAMETERS = `WITH p AS (SELECT $1::int AS streams, $2::int AS agents, $3::int AS groups, $4::int AS skills, $5::int AS closed,
                              $6::int AS active, $7::int AS queued, $8::int AS first, $9::int AS ungrouped, $10::int AS recent)`
const STREAMS = 'generate_series(p.first, p.first + p.streams - 1) s'
const AGENTS = 'generate_series(0, p.agents - 1) i'
/** The shape's own streams, for statements that read what was inserted (shapes may share a database). */
const OWN_STREAMS = `(SELECT 'st-' || s FROM p, ${STREAMS})`

const LIGHT_AGENT_SKILLS = 'LATERAL (VALUES (i % p.skills), ((i + 5) % p.skills), ((i + 11) % p.skills)) AS m (k)'
// The three core skills of each of the agent's two groups.
const BUSY_AGENT_SKILLS = `LATERAL (SELECT DISTINCT (3 * g + c) % p.skills FROM (VALUES (i % p.groups), ((i * 7 + 1) % p.groups)) AS m (g),
                                  generate_series(0, 2) c) AS m (k)`

const seedSql = (busy: boolean): string[] => [
  `INSERT INTO agents (stream_id, id, first_name, last_name, prof_image, online_status)
   ${PARAMETERS}
   SELECT 'st-' || s, 'a-' || i, 'First' || i, 'Last' || i,
          CASE WHEN i % 3 = 0 THEN NULL ELSE 'https://img.example/a-' || i || '.png' END,
          (ARRAY['available', 'busy', 'away', 'offline'])[1 + i % 4]
   FROM p, ${STREAMS}, ${AGENTS}`,
  `INSERT INTO agent_groups (stream_id, id, name)
   ${PARAMETERS}
   SELECT 'st-' || s, 'ag-' || g, 'Group ' || g FROM p, ${STREAMS}, generate_series(0, p.groups - 1) g`,
  `INSERT INTO skills (stream_id, id, name)
   ${PARAMETERS}
   SELECT 'st-' || s, 'sk-' || k, 'Skill ' || k FROM p, ${STREAMS}, generate_series(0, p.skills - 1) k`,
  `INSERT INTO agent_group_members (stream_id, agent_group_id, agent_id)
   ${PARAMETERS}
   SELECT DISTINCT 'st-' || s, 'ag-' || g, 'a-' || i
   FROM p, ${STREAMS}, ${AGENTS},
        LATERAL (VALUES (i % p.groups), ((i * 7 + 1) % p.groups)) AS m (g)`,
  `INSERT INTO agent_skills (stream_id, agent_id, skill_id)
   ${PARAMETERS}
   SELECT 'st-' || s, 'a-' || i, 'sk-' || k
   FROM p, ${STREAMS}, ${AGENTS}, ${busy ? BUSY_AGENT_SKILLS : LIGHT_AGENT_SKILLS}`,
  // Closed: accepted at a random time in the last 30 days (the metrics window sees about 1/30 of them).
  `INSERT INTO conversations (stream_id, id, source, status, customer_first_name, customer_last_name, agent_group_id, agent_id,
                              started_at, queued_at, accepted_at, first_response_at, closed_at, response_seconds_total, response_count)
   ${PARAMETERS}
   SELECT 'st-' || s, 'c-' || i || '-' || n, CASE WHEN n % 2 = 0 THEN 'chat' ELSE 'call' END, 'closed', 'Cus' || n, 'Tomer' || i,
          'ag-' || (i % p.groups), 'a-' || i,
          t - interval '65 seconds', t - interval '60 seconds', t, t + interval '20 seconds', t + interval '600 seconds', 90, 3
   FROM p, ${STREAMS}, ${AGENTS}, generate_series(1, p.closed) n,
        LATERAL (SELECT now() - interval '30 days' * random() - interval '1 hour' + interval '0' * n AS t) AS at`,
  `INSERT INTO conversations (stream_id, id, source, status, customer_first_name, customer_last_name, agent_group_id, agent_id,
                              started_at, queued_at, accepted_at, first_response_at, response_seconds_total, response_count)
   ${PARAMETERS}
   SELECT 'st-' || s, 'act-' || i || '-' || n, CASE WHEN n % 2 = 0 THEN 'chat' ELSE 'call' END, 'active', 'Cus' || n, 'Tomer' || i,
          'ag-' || (i % p.groups), 'a-' || i,
          now() - interval '30 minutes' * n - interval '70 seconds', now() - interval '30 minutes' * n - interval '60 seconds',
          now() - interval '30 minutes' * n, now() - interval '30 minutes' * n + interval '10 seconds', 40, 2
   FROM p, ${STREAMS}, ${AGENTS},
        generate_series(1, ${busy ? 'CASE WHEN p.active = 0 THEN 0 ELSE p.active - 1 + i % 3 END' : 'p.active'}) n`,
  // The last day's cohort of each group: conversation n is answered by the group's member
  // a-<g + groups * (n mod members)> (agent i is in group i mod groups), unless one in six: abandoned.
  `INSERT INTO conversations (stream_id, id, source, status, customer_first_name, customer_last_name, agent_group_id, agent_id,
                              started_at, queued_at, accepted_at, first_response_at, closed_at, response_seconds_total, response_count)
   ${PARAMETERS}
   SELECT 'st-' || s, 'r-' || g || '-' || n, CASE WHEN n % 2 = 0 THEN 'chat' ELSE 'call' END, 'closed', 'Cus' || n, 'Recent' || g,
          'ag-' || g, CASE WHEN NOT x.abandoned THEN 'a-' || (g + p.groups * (n % greatest(1, p.agents / p.groups))) END,
          x.t - interval '5 seconds', x.t,
          CASE WHEN NOT x.abandoned THEN x.t + make_interval(secs => 3 + (n * 7) % 38) END,
          CASE WHEN NOT x.abandoned THEN x.t + make_interval(secs => 10 + (n * 7) % 38) END,
          x.t + make_interval(secs => CASE WHEN x.abandoned THEN 5 + (n * 13) % 86 ELSE 120 + (n * 31) % 600 END),
          CASE WHEN x.abandoned THEN 0 ELSE 60 END, CASE WHEN x.abandoned THEN 0 ELSE 2 END
   FROM p, ${STREAMS}, generate_series(0, p.groups - 1) g, generate_series(1, p.recent) n,
        LATERAL (SELECT n % 6 = 0 AS abandoned, now() - interval '22 hours' * random() - interval '1 hour' + interval '0' * n AS t) AS x`,
  // Queued: per group. Light: in groups 0 and 1 the first is routed to no group instead, so that
  // every stream, large or small, has two ungrouped conversations: the same per-agent work.
  // Busy: every stream has p.ungrouped conversations of no group besides.
  `INSERT INTO conversations (stream_id, id, source, status, customer_first_name, customer_last_name, agent_group_id,
                              started_at, queued_at)
   ${PARAMETERS}
   SELECT 'st-' || s, 'q-' || g || '-' || n, CASE WHEN n % 2 = 0 THEN 'chat' ELSE 'call' END, 'queued', 'Cus' || n, 'Waiting' || g,
          CASE WHEN ${busy ? 'false' : 'true'} AND n = 1 AND g < 2 THEN NULL ELSE 'ag-' || g END,
          now() - interval '10 seconds' * n - interval '5 seconds', now() - interval '10 seconds' * n
   FROM p, ${STREAMS}, generate_series(0, p.groups - 1) g, generate_series(1, p.queued) n
   UNION ALL
   SELECT 'st-' || s, 'u-' || n, CASE WHEN n % 2 = 0 THEN 'chat' ELSE 'call' END, 'queued', 'Cus' || n, 'Anyone',
          NULL, now() - interval '7 seconds' * n - interval '5 seconds', now() - interval '7 seconds' * n
   FROM p, ${STREAMS}, generate_series(1, p.ungrouped) n`,
  busy
    // A group's conversation needs one of its 3 core skills, half of them a second one
    // (in one case of ten, from outside the core); an ungrouped one, one or two at random.
    ? `INSERT INTO conversation_skills (stream_id, conversation_id, skill_id)
       ${PARAMETERS}
       SELECT DISTINCT c.stream_id, c.id, 'sk-' || k.k
       FROM p, conversations c,
            LATERAL (SELECT hashtext(c.id) & 2147483647 AS h, substring(c.agent_group_id FROM 4)::int AS g) x,
            LATERAL (VALUES (CASE WHEN x.g IS NULL THEN x.h % p.skills ELSE (3 * x.g + x.h % 3) % p.skills END),
                            (CASE WHEN x.h % 2 = 1 THEN NULL
                                  WHEN x.g IS NULL THEN (x.h / 7) % p.skills
                                  WHEN x.h % 10 = 0 THEN (3 * x.g + 3 + x.h % 7) % p.skills
                                  ELSE (3 * x.g + (x.h + 1) % 3) % p.skills END)) AS k (k)
       WHERE c.status <> 'closed' AND c.stream_id IN ${OWN_STREAMS} AND k.k IS NOT NULL`
    : `INSERT INTO conversation_skills (stream_id, conversation_id, skill_id)
       ${PARAMETERS}
       SELECT stream_id, id, 'sk-' || (hashtext(id) & 2147483647) % p.skills FROM p, conversations
       WHERE status <> 'closed' AND stream_id IN ${OWN_STREAMS}`
]

/** Fills a migrated database with a data set of this shape (its streams must be new there), then ANALYZEs it. */
export async function seed (pool: pg.Pool, shape: DataSetShape): Promise<void> {
  const values = [shape.streams, shape.agentsPerStream, shape.groupsPerStream, shape.skillsPerStream, shape.closedPerAgent,
    shape.activePerAgent, shape.queuedPerGroup, shape.firstStream ?? 1, shape.ungroupedPerStream, shape.recentPerGroup ?? 0]
  for (const sql of seedSql(shape.kind === 'busy')) await pool.query(sql, values)
  await pool.query('VACUUM ANALYZE')
}
