import { createHash } from 'node:crypto'
import type pg from 'pg'
import type { Source } from '../schemas/common.js'
import type { AgentView } from '../schemas/response.js'
import type { Scope } from './auth.js'

/*
 * The views of several agents in one statement, one round trip. Each agent's
 * request is a row r, and everything read for it is joined on r's own stream
 * and agent: two requests' rows never meet. Where the requests come from is
 * the only difference between the agent route's statement (a JSON array of
 * requests, AGENT_VIEWS_SQL) and the floor's (a page of a stream's or groups'
 * agents, FLOOR_VIEWS_SQL); a request r is
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
/** The statement, given where its requests come from (and anything before them, and beside them in the output). */
function viewsSql ({ head = '', requests, columns = '', windowSeconds }: { head?: string, requests: string, columns?: string, windowSeconds: string }): string {
  return `${head}
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
       coalesce(l.active, '[]') AS "active",
       coalesce(l.queue, '[]')  AS "queue"${columns}
FROM ${requests}
-- The request's agent; LIMIT keeps this a lookup by primary key per request, whatever the planner guesses of $1.
CROSS JOIN LATERAL (
  SELECT a.first_name, a.last_name, a.prof_image, a.online_status, a.stream_id, a.id
  FROM agents a
  WHERE a.stream_id = r.stream_id AND a.id = r.agent_id
  LIMIT 1
) a
-- The agent's groups and skills, each an index-only range.
CROSS JOIN LATERAL (
  SELECT coalesce(array_agg(gm.agent_group_id), '{}') AS group_ids
  FROM agent_group_members gm
  WHERE gm.stream_id = a.stream_id AND gm.agent_id = a.id
) g
CROSS JOIN LATERAL (
  SELECT coalesce(array_agg(sk.skill_id), '{}') AS skill_ids
  FROM agent_skills sk
  WHERE sk.stream_id = a.stream_id AND sk.agent_id = a.id
) k
CROSS JOIN LATERAL (
  SELECT r.agent_groups IS NULL OR g.group_ids && r.agent_groups AS visible
) v
-- Averages over the conversations the agent accepted inside the window (an index-only range).
-- The window's start is a sub-select so that custom plans cannot estimate it either:
-- with the same estimates, Postgres settles on the generic plan instead of planning anew on every call.
CROSS JOIN LATERAL (
  SELECT
    round(avg(extract(epoch FROM c.closed_at - c.accepted_at)) FILTER (WHERE c.closed_at IS NOT NULL))::int AS resolution_time,
    round(avg(extract(epoch FROM c.first_response_at - c.accepted_at)) FILTER (WHERE c.first_response_at IS NOT NULL))::int AS first_response_time,
    round(sum(c.response_seconds_total) / nullif(sum(c.response_count), 0))::int AS response_time
  FROM conversations c
  WHERE v.visible
    AND c.stream_id = a.stream_id AND c.agent_id = a.id AND c.accepted_at >= (SELECT now() - make_interval(secs => ${windowSeconds}))
) m
-- The two lists, each conversation as its JSON object: active ones oldest first,
-- with engagementTime and the wait before acceptance; queued ones longest
-- waiting first, with the wait so far.
CROSS JOIN LATERAL (
  SELECT
    json_agg(json_build_object('firstName', c.customer_first_name, 'lastName', c.customer_last_name, 'skills', coalesce(names.skills, '[]'),
                               'startTime', to_char(c.started_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'),
                               'conversationId', c.id, 'source', c.source, 'profImage', coalesce(nullif(c.customer_prof_image, ''), 'no-avatar'),
                               'engagementTime', greatest(0, floor(extract(epoch FROM now() - c.accepted_at)))::int,
                               'waitTime', greatest(0, floor(extract(epoch FROM c.accepted_at - c.queued_at)))::int)
             ORDER BY c.started_at, c.id) FILTER (WHERE c.is_active) AS active,
    json_agg(json_build_object('firstName', c.customer_first_name, 'lastName', c.customer_last_name, 'skills', coalesce(names.skills, '[]'),
                               'startTime', to_char(c.started_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'),
                               'conversationId', c.id, 'source', c.source, 'profImage', coalesce(nullif(c.customer_prof_image, ''), 'no-avatar'),
                               'waitTime', greatest(0, floor(extract(epoch FROM now() - c.queued_at)))::int)
             ORDER BY c.queued_at, c.id) FILTER (WHERE NOT c.is_active) AS queue
  FROM (
    -- The open conversations to consider: the agent's active ones, and the queued
    -- ones routed to one of its groups or to none (one index range per group,
    -- and one for the ungrouped: never the whole queue of the stream).
    SELECT c.id, c.stream_id, c.source, c.customer_first_name, c.customer_last_name, c.customer_prof_image,
           c.started_at, c.queued_at, c.accepted_at, c.skill_ids, true AS is_active
    FROM conversations c
    WHERE c.stream_id = a.stream_id AND c.agent_id = a.id AND c.status = 'active'
      AND (r.conversation_groups IS NULL OR c.agent_group_id = ANY (r.conversation_groups))
    UNION ALL
    SELECT c.id, c.stream_id, c.source, c.customer_first_name, c.customer_last_name, c.customer_prof_image,
           c.started_at, c.queued_at, c.accepted_at, c.skill_ids, false
    FROM unnest(g.group_ids) AS gid (id)
    JOIN conversations c ON c.stream_id = a.stream_id AND c.status = 'queued' AND c.agent_group_id = gid.id
    WHERE r.conversation_groups IS NULL OR gid.id = ANY (r.conversation_groups)
    UNION ALL
    SELECT c.id, c.stream_id, c.source, c.customer_first_name, c.customer_last_name, c.customer_prof_image,
           c.started_at, c.queued_at, c.accepted_at, c.skill_ids, false
    FROM conversations c
    WHERE c.stream_id = a.stream_id AND c.status = 'queued' AND c.agent_group_id IS NULL AND r.conversation_groups IS NULL
  ) c
  -- The skills of those shown, by name.
  LEFT JOIN LATERAL (
    SELECT json_agg(json_build_object('id', s.id, 'name', s.name) ORDER BY s.name, s.id) AS skills
    FROM skills s
    WHERE s.stream_id = c.stream_id AND s.id = ANY (c.skill_ids)
  ) names ON true
  -- Shown: the active ones, and the queued ones needing no skill the agent lacks
  -- (skill_ids: the conversation's conversation_skills, kept on its row by migration 002).
  WHERE v.visible AND (r.source IS NULL OR c.source = r.source)
    AND (c.is_active OR c.skill_ids <@ k.skill_ids)
) l
`
}

/*
 * The agent route's requests, batched: $1 a JSON array of requests, $2 the metrics window in seconds.
 */
export const AGENT_VIEWS_SQL = viewsSql({
  requests: 'json_to_recordset($1::json) AS r (i int, stream_id text, agent_id text, source text, conversation_groups text[], agent_groups text[])',
  windowSeconds: '$2'
})

/*
 * One page of the floor: the agents of stream $1 after agent id $5 in byte
 * order, $6 of them at most: every agent of the stream when $2 (groups) is
 * NULL, else the members of those groups, each one once. The token's scope was
 * applied before: $2 is within it, and agent_groups stays NULL. One more agent
 * than the page holds is looked up, not viewed, to tell whether a next page
 * exists ("more").
 *   $1 stream, $2 floor groups, $3 conversation groups (as on the agent route),
 *   $4 source, $5 the cursor's agent id ('' for the first page), $6 page size,
 *   $7 metrics window, seconds
 */
export const FLOOR_VIEWS_SQL = viewsSql({
  head: `
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
)`,
  requests: `(
  SELECT page.i, $1::text AS stream_id, page.agent_id, $4::text AS source, $3::text[] AS conversation_groups, NULL::text[] AS agent_groups
  FROM page WHERE page.i <= $6
) AS r`,
  columns: ',\n       (SELECT count(*) FROM page) > $6 AS more',
  windowSeconds: '$7'
})

/**
 * The prepared statement's name: pg prepares it once per connection. The hash
 * makes a changed text a new name, so two versions of the plugin can share a pool.
 */
export const AGENT_VIEWS_STATEMENT = statementName('agent-views', AGENT_VIEWS_SQL)
export const FLOOR_VIEWS_STATEMENT = statementName('floor-views', FLOOR_VIEWS_SQL)

function statementName (what: string, sql: string): string {
  return `fastify-active-conversations/${what}/${createHash('sha256').update(sql).digest('hex').slice(0, 12)}`
}

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
export type AgentViewResult = AgentView | null | 'forbidden'

type AgentViewRow = AgentView & { requestIndex: number, visible: boolean, agentId: string }

/** Answers a batch of requests, in their order. */
export type ReadAgentViews = (requests: AgentViewRequest[]) => Promise<AgentViewResult[]>

/** The results of the requests, in their order, from one statement on the pool. All share one metrics window. */
export async function readAgentViews (pool: pg.Pool, requests: AgentViewRequest[], metricsWindowSeconds: number): Promise<AgentViewResult[]> {
  const { rows } = await pool.query<AgentViewRow>({
    name: AGENT_VIEWS_STATEMENT,
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
  agents: Array<AgentView & { agentId: string }>
  /** Whether agents follow this page. */
  more: boolean
}

/** One page of the floor, from one statement on the pool; agents in ascending agentId (byte order). */
export async function readFloor (pool: pg.Pool, request: FloorRequest, metricsWindowSeconds: number): Promise<FloorPage> {
  const { rows } = await pool.query<AgentViewRow & { more: boolean }>({
    name: FLOOR_VIEWS_STATEMENT,
    text: FLOOR_VIEWS_SQL,
    values: [request.streamId, request.floorGroups, request.conversationGroups, request.source ?? null, request.after, request.limit, metricsWindowSeconds]
  })
  const agents: FloorPage['agents'] = new Array(rows.length)
  for (const { requestIndex, visible, more, agentId, ...view } of rows) agents[requestIndex - 1] = { agentId, ...view }
  return { agents, more: rows[0]?.more ?? false }
}
