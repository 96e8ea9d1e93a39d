import type pg from 'pg'
import type { Source } from '../../schemas/common.js'
import type { AgentView } from '../../schemas/response.js'
import type { Scope } from '../auth.js'
import { statementName } from './statement-name.js'

/*
 * The views of several agents in one statement, one round trip. Each agent's
 * request is a row r, and everything read for it is joined on r's own stream
 * and agent: two requests' rows never meet. The agent route's statement takes
 * its requests as a JSON array (AGENT_VIEWS_SQL); the floor's makes them from
 * a page of a stream's or groups' agents, and builds their queues together
 * (FLOOR_VIEWS_SQL). Both are built from the same parts. A request r is
 *   { i, stream_id, agent_id,
 *     source: NULL for both,
 *     conversation_groups (request filter or token scope): NULL for any group or none,
 *     agent_groups (group-scoped token): NULL for any agent of the stream }
 *
 * One row per request whose agent exists in its stream; visible false: the
 * agent is outside the token's groups, and nothing else was read for it.
 * Durations use now(), the database clock, one instant for the whole statement.
 *
 * Written for the prepared statement's generic plan (the one Postgres settles
 * on after five executions): every read is an index range driven by the
 * request's agent row, so the plan is the same good one whatever the
 * parameters; the optional filters only thin out rows already found. What
 * costs here is the number of plan nodes and index descents, not rows.
 */
// The parts; each reads for one request r (and its agent a), joined on r's own stream and agent.

/** The answer's columns: one row per request whose agent exists. */
const COLUMNS = `
SELECT r.i AS "requestIndex",
       v.visible,
       r.agent_id            AS "agentId",
       m.resolution_time     AS "resolutionTime",
       m.first_response_time AS "firstResponseTime",
       m.response_time       AS "responseTime",
       a.first_name          AS "firstName",
       a.last_name           AS "lastName",
       concat_ws(' ', nullif(a.first_name, ''), nullif(a.last_name, '')) AS "name",
       coalesce(nullif(a.prof_image, ''), 'no-avatar') AS "profImage",
       a.online_status       AS "onlineStatus",
       coalesce(al.active, '[]') AS "active",
       coalesce(q.queue, '[]')   AS "queue"`

/** The agent row's columns the view reads: its groups and skills are kept on it (migration 007). */
const AGENT_COLUMNS = 'a.first_name, a.last_name, a.prof_image, a.online_status, a.stream_id, a.id, a.group_ids, a.skill_ids'

/** The request's agent; LIMIT keeps this a lookup by primary key per request, whatever the planner guesses of the requests. */
const AGENT = (streamId: string, agentId: string) => `
CROSS JOIN LATERAL (
  SELECT ${AGENT_COLUMNS}
  FROM agents a
  WHERE a.stream_id = ${streamId} AND a.id = ${agentId}
  LIMIT 1
) a`

/**
 * Averages over the conversations the agent accepted inside the window (an
 * index-only range). The window's start is a sub-select so that custom plans
 * cannot estimate it either: with the same estimates, Postgres settles on the
 * generic plan instead of planning anew on every call. The durations are
 * averaged in double precision (date_part; extract computes in numeric, several
 * times slower: BENCHMARKS.md, step 19), and all three are rounded half up
 * (none is ever negative): round() of a double would round half to even.
 */
const METRICS = (windowSeconds: string) => `
CROSS JOIN LATERAL (
  SELECT
    floor(avg(date_part('epoch', c.closed_at - c.accepted_at)) FILTER (WHERE c.closed_at IS NOT NULL) + 0.5)::int AS resolution_time,
    floor(avg(date_part('epoch', c.first_response_at - c.accepted_at)) FILTER (WHERE c.first_response_at IS NOT NULL) + 0.5)::int AS first_response_time,
    floor(sum(c.response_seconds_total) / nullif(sum(c.response_count), 0) + 0.5)::int AS response_time
  FROM conversations c
  WHERE v.visible
    AND c.stream_id = a.stream_id AND c.agent_id = a.id AND c.accepted_at >= (SELECT now() - make_interval(secs => ${windowSeconds}))
) m`

/*
 * The lists are JSON text: each conversation's list_item_head (its fields that
 * do not change with the clock, kept on its row by migration 005) with the
 * durations appended, whole seconds floored. date_part, not extract: extract
 * computes in numeric, several times slower per item (BENCHMARKS.md, step 16),
 * for the same whole seconds (an interval's epoch is exact in double precision).
 */

/** The conversations the agent is handling (an index range), oldest first, with engagementTime and the wait before acceptance. */
const ACTIVE_LIST = `
CROSS JOIN LATERAL (
  SELECT '[' || string_agg(c.list_item_head
                           || ',"engagementTime":' || greatest(0, floor(date_part('epoch', now() - c.accepted_at)))::int
                           || ',"waitTime":' || greatest(0, floor(date_part('epoch', c.accepted_at - c.queued_at)))::int || '}',
                           ',' ORDER BY c.started_at, c.id) || ']' AS active
  FROM conversations c
  WHERE v.visible AND c.stream_id = a.stream_id AND c.agent_id = a.id AND c.status = 'active'
    AND (r.conversation_groups IS NULL OR c.agent_group_id = ANY (r.conversation_groups))
    AND (r.source IS NULL OR c.source = r.source)
) al`

/** A queued conversation c as a list item, with the wait so far. */
const QUEUED_ITEM = `c.list_item_head || ',"waitTime":' || greatest(0, floor(date_part('epoch', now() - c.queued_at)))::int || '}'`

/**
 * The queue the agent could take, longest waiting first: the queued
 * conversations routed to one of its groups or to none (one index range per
 * group, and one for the ungrouped: never the whole queue of the stream),
 * needing no skill the agent lacks (skill_ids: kept on the row by migration 002).
 */
const QUEUE_LIST = `
CROSS JOIN LATERAL (
  SELECT '[' || string_agg(c.item, ',' ORDER BY c.queued_at, c.id) || ']' AS queue
  FROM (
    SELECT c.id, c.queued_at, c.source, c.skill_ids, ${QUEUED_ITEM} AS item
    FROM unnest(a.group_ids) AS gid (id)
    JOIN conversations c ON c.stream_id = a.stream_id AND c.status = 'queued' AND c.agent_group_id = gid.id
    WHERE r.conversation_groups IS NULL OR gid.id = ANY (r.conversation_groups)
    UNION ALL
    SELECT c.id, c.queued_at, c.source, c.skill_ids, ${QUEUED_ITEM}
    FROM conversations c
    WHERE c.stream_id = a.stream_id AND c.status = 'queued' AND c.agent_group_id IS NULL AND r.conversation_groups IS NULL
  ) c
  WHERE v.visible AND (r.source IS NULL OR c.source = r.source) AND c.skill_ids <@ a.skill_ids
) q`

/*
 * The agent route's requests, batched: $1 a JSON array of requests, $2 the metrics window in seconds.
 */
export const AGENT_VIEWS_SQL = `${COLUMNS}
FROM json_to_recordset($1::json) AS r (i int, stream_id text, agent_id text, source text, conversation_groups text[], agent_groups text[])
${AGENT('r.stream_id', 'r.agent_id')}
CROSS JOIN LATERAL (
  SELECT r.agent_groups IS NULL OR a.group_ids && r.agent_groups AS visible
) v
${METRICS('$2')}
${ACTIVE_LIST}
${QUEUE_LIST}
`

/*
 * One page of the floor: the agents of stream $1 after agent id $5 in byte
 * order, $6 of them at most: every agent of the stream when $2 (groups) is
 * NULL, else the members of those groups, each one once. The token's scope was
 * applied before: $2 is within it, every agent is visible, and conversation
 * groups ($3) and source ($4) narrow the lists as on the agent route. One more
 * agent than the page holds is looked up, not viewed, to tell whether a next
 * page exists ("more").
 *
 * The queue is built for the whole page at once: the page's agents share
 * groups and the stream's ungrouped conversations, so each queued conversation
 * is read and made a list item once, then handed to each agent that may take
 * it (a hash join on the group, then the skill check), instead of once per agent.
 *   $1 stream, $2 floor groups, $3 conversation groups, $4 source,
 *   $5 the cursor's agent id ('' for the first page), $6 page size, $7 metrics window, seconds
 */
export const FLOOR_VIEWS_SQL = `
WITH page AS (
  SELECT p.agent_id COLLATE "default" AS agent_id, (row_number() OVER (ORDER BY p.agent_id))::int AS i
  FROM (
    (SELECT a.id COLLATE "C" AS agent_id
     FROM agents a
     WHERE $2::text[] IS NULL AND a.stream_id = $1 AND a.id COLLATE "C" > $5
     ORDER BY 1 LIMIT $6 + 1)
    UNION ALL
    (SELECT DISTINCT gm.agent_id COLLATE "C"
     FROM agent_group_members gm
     WHERE $2::text[] IS NOT NULL AND gm.stream_id = $1 AND gm.agent_group_id = ANY ($2) AND gm.agent_id COLLATE "C" > $5
     ORDER BY 1 LIMIT $6 + 1)
  ) p
),
r AS MATERIALIZED (
  SELECT page.i, page.agent_id, $4::text AS source, $3::text[] AS conversation_groups, a.*
  FROM page ${AGENT('$1', 'page.agent_id')}
  WHERE page.i <= $6
),
-- The queued conversations of the page's groups (those $3 keeps) and the stream's ungrouped ones (unless $3), each as its list item.
queued AS MATERIALIZED (
  SELECT c.agent_group_id, c.id, c.queued_at, c.skill_ids, ${QUEUED_ITEM} AS item
  FROM (SELECT DISTINCT unnest(r.group_ids) AS id FROM r) gid
  JOIN conversations c ON c.stream_id = $1 AND c.status = 'queued' AND c.agent_group_id = gid.id
  WHERE ($3::text[] IS NULL OR gid.id = ANY ($3)) AND ($4::text IS NULL OR c.source = $4)
  UNION ALL
  SELECT NULL, c.id, c.queued_at, c.skill_ids, ${QUEUED_ITEM}
  FROM conversations c
  WHERE c.stream_id = $1 AND c.status = 'queued' AND c.agent_group_id IS NULL AND $3::text[] IS NULL AND ($4::text IS NULL OR c.source = $4)
),
-- Each agent's queue: its groups' and the ungrouped conversations it has the skills for.
q AS (
  SELECT x.i, '[' || string_agg(x.item, ',' ORDER BY x.queued_at, x.id) || ']' AS queue
  FROM (
    SELECT r.i, c.item, c.queued_at, c.id
    FROM r CROSS JOIN LATERAL unnest(r.group_ids) AS gid (id) JOIN queued c ON c.agent_group_id = gid.id
    WHERE c.skill_ids <@ r.skill_ids
    UNION ALL
    SELECT r.i, c.item, c.queued_at, c.id
    FROM r JOIN queued c ON c.agent_group_id IS NULL AND c.skill_ids <@ r.skill_ids
  ) x
  GROUP BY x.i
)
${COLUMNS},
       (SELECT count(*) FROM page) > $6 AS more
FROM r
-- r carries the agent row, looked up once: a names its columns for the parts shared with the agent statement.
CROSS JOIN LATERAL (SELECT r.first_name, r.last_name, r.prof_image, r.online_status, r.stream_id, r.id) a
CROSS JOIN LATERAL (SELECT true AS visible) v
${METRICS('$7')}
${ACTIVE_LIST}
LEFT JOIN q ON q.i = r.i
`

export const AGENT_VIEWS_STATEMENT = statementName('agent-views', AGENT_VIEWS_SQL)
export const FLOOR_VIEWS_STATEMENT = statementName('floor-views', FLOOR_VIEWS_SQL)

export interface AgentViewRequest {
  streamId: string
  agentId: string
  source: Source | undefined
  scope: Scope
}

/**
 * The agent's view; null when there is no such agent in the stream; 'forbidden'
 * when the token is restricted to groups the agent is not in (whether or not the
 * agent exists: a group-scoped caller cannot probe for agents outside its groups).
 */
export type AgentViewResult = AgentViewText | null | 'forbidden'

/**
 * An agent's view as the statement returns it: the agent's fields, and its two
 * lists as JSON text, built by the statement in the schema's order (the routes
 * splice them into the body: lib/routes/bodies.ts).
 */
export type AgentViewText = Omit<AgentView, 'active' | 'queue'> & { active: string, queue: string }

type AgentViewRow = AgentViewText & { requestIndex: number, visible: boolean, agentId: string }

/** Answers a batch of requests, in their order. */
export type ReadAgentViews = (requests: AgentViewRequest[]) => Promise<AgentViewResult[]>

/** The results of the requests, in their order, from one statement on the pool. All share one metrics window. */
export async function readAgentViews (pool: pg.Pool, requests: AgentViewRequest[], metricsWindowSeconds: number, prepared = true): Promise<AgentViewResult[]> {
  const { rows } = await pool.query<AgentViewRow>({
    name: prepared ? AGENT_VIEWS_STATEMENT : undefined,
    text: AGENT_VIEWS_SQL,
    values: [requestsParameter(requests), metricsWindowSeconds]
  })
  const results: AgentViewResult[] = requests.map((request) => request.scope.agentGroups === null ? null : 'forbidden')
  for (const { requestIndex, visible, agentId, ...view } of rows) {
    results[requestIndex] = visible ? view : 'forbidden'
  }
  return results
}

/** The statement's $1: the requests as the JSON array json_to_recordset reads. */
export function requestsParameter (requests: AgentViewRequest[]): string {
  return JSON.stringify(requests.map((request, i) => ({
    i,
    stream_id: request.streamId,
    agent_id: request.agentId,
    source: request.source ?? null,
    conversation_groups: request.scope.conversationGroups,
    agent_groups: request.scope.agentGroups
  })))
}

export interface FloorRequest {
  streamId: string
  /** The floor: members of these groups (null: every agent of the stream). */
  floorGroups: string[] | null
  /** As Scope.conversationGroups on the agent route. */
  conversationGroups: string[] | null
  source: Source | undefined
  /** The page starts after this agent id ('' for the first page). */
  after: string
  limit: number
}

export interface FloorPage {
  agents: Array<AgentViewText & { agentId: string }>
  /** Whether agents follow this page. */
  more: boolean
}

/** One page of the floor, from one statement on the pool; agents in ascending agentId (byte order). */
export async function readFloor (pool: pg.Pool, request: FloorRequest, metricsWindowSeconds: number, prepared = true): Promise<FloorPage> {
  const { rows } = await pool.query<AgentViewRow & { more: boolean }>({
    name: prepared ? FLOOR_VIEWS_STATEMENT : undefined,
    text: FLOOR_VIEWS_SQL,
    values: [request.streamId, request.floorGroups, request.conversationGroups, request.source ?? null, request.after, request.limit, metricsWindowSeconds]
  })
  const agents: FloorPage['agents'] = new Array(rows.length)
  for (const { requestIndex, visible, more, agentId, ...view } of rows) agents[requestIndex - 1] = { agentId, ...view }
  return { agents, more: rows[0]?.more ?? false }
}

/*
 * The agents who are members of any of the groups $2 of stream $1: whose
 * queues a change to those groups' queues changed (live views). One range of
 * the primary key per group.
 */
export const GROUP_MEMBERS_SQL = `
SELECT DISTINCT gm.agent_id AS "agentId"
FROM agent_group_members gm
WHERE gm.stream_id = $1 AND gm.agent_group_id = ANY ($2::text[])`
export const GROUP_MEMBERS_STATEMENT = statementName('group-members', GROUP_MEMBERS_SQL)

export async function readGroupMembers (pool: pg.Pool, streamId: string, groups: string[], prepared = true): Promise<string[]> {
  const { rows } = await pool.query<{ agentId: string }>({ name: prepared ? GROUP_MEMBERS_STATEMENT : undefined, text: GROUP_MEMBERS_SQL, values: [streamId, groups] })
  return rows.map((row) => row.agentId)
}
