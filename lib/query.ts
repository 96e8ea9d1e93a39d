import { createHash } from 'node:crypto'
import type pg from 'pg'
import type { Source } from '../schemas/common.js'
import type { AgentView } from '../schemas/response.js'
import type { Scope } from './auth.js'

/*
 * The whole response body in one statement, one round trip.
 *
 *   $1 stream_id   $2 agent_id
 *   $3 source filter, NULL: both
 *   $4 conversation groups (request filter or token scope), NULL: any group or none
 *   $5 agent groups (group-scoped token), NULL: any agent of the stream
 *   $6 metrics window, seconds
 *
 * Every join includes stream_id. Durations use now(), the database clock, the
 * same instant for every row. No row: no such agent in this stream; visible
 * false: the agent is outside the token's groups, and nothing else was read.
 *
 * Written for the prepared statement's generic plan (the one Postgres settles
 * on after five executions): every read is an index range driven by the agent
 * row, so the plan is the same good one whatever the parameters; the optional
 * filters only thin out rows already found.
 */
export const AGENT_VIEW_SQL = `
WITH agent AS (
  SELECT a.stream_id, a.id, a.first_name, a.last_name, a.prof_image, a.online_status,
         g.group_ids, k.skill_ids,
         ($5::text[] IS NULL OR g.group_ids && $5::text[]) AS visible
  FROM agents a
  CROSS JOIN LATERAL (
    SELECT coalesce(array_agg(m.agent_group_id), '{}') AS group_ids
    FROM agent_group_members m
    WHERE m.stream_id = a.stream_id AND m.agent_id = a.id
  ) g
  CROSS JOIN LATERAL (
    SELECT coalesce(array_agg(s.skill_id), '{}') AS skill_ids
    FROM agent_skills s
    WHERE s.stream_id = a.stream_id AND s.agent_id = a.id
  ) k
  WHERE a.stream_id = $1 AND a.id = $2
),
-- Averages over the conversations the agent accepted inside the window (an index-only range).
metrics AS (
  SELECT
    round(avg(extract(epoch FROM c.closed_at - c.accepted_at)) FILTER (WHERE c.closed_at IS NOT NULL))::int AS resolution_time,
    round(avg(extract(epoch FROM c.first_response_at - c.accepted_at)) FILTER (WHERE c.first_response_at IS NOT NULL))::int AS first_response_time,
    round(sum(c.response_seconds_total) / nullif(sum(c.response_count), 0))::int AS response_time
  FROM agent
  JOIN conversations c ON c.stream_id = agent.stream_id AND c.agent_id = agent.id
  WHERE agent.visible AND c.accepted_at >= now() - make_interval(secs => $6)
),
-- The open conversations to consider: the agent's active ones, and the queued
-- ones routed to one of its groups or to none (one index range per group, and
-- one for the ungrouped: never the whole queue of the stream).
open AS (
  SELECT c.id, c.stream_id, c.source, c.customer_first_name, c.customer_last_name, c.customer_prof_image,
         c.started_at, c.queued_at, c.accepted_at, true AS is_active
  FROM agent
  JOIN conversations c ON c.stream_id = agent.stream_id AND c.agent_id = agent.id AND c.status = 'active'
  WHERE agent.visible AND ($4::text[] IS NULL OR c.agent_group_id = ANY ($4))
  UNION ALL
  SELECT c.id, c.stream_id, c.source, c.customer_first_name, c.customer_last_name, c.customer_prof_image,
         c.started_at, c.queued_at, c.accepted_at, false
  FROM agent
  CROSS JOIN LATERAL unnest(agent.group_ids) AS g (id)
  JOIN conversations c ON c.stream_id = agent.stream_id AND c.status = 'queued' AND c.agent_group_id = g.id
  WHERE agent.visible AND ($4::text[] IS NULL OR g.id = ANY ($4))
  UNION ALL
  SELECT c.id, c.stream_id, c.source, c.customer_first_name, c.customer_last_name, c.customer_prof_image,
         c.started_at, c.queued_at, c.accepted_at, false
  FROM agent
  JOIN conversations c ON c.stream_id = agent.stream_id AND c.status = 'queued' AND c.agent_group_id IS NULL
  WHERE agent.visible AND $4::text[] IS NULL
),
-- What is shown: the active ones, and the queued ones needing no skill the agent
-- lacks (each one's needed skill ids from an index-only scan).
shown AS (
  SELECT c.*, coalesce(needs.skill_ids, '{}') AS skill_ids
  FROM agent, open c
  CROSS JOIN LATERAL (
    SELECT array_agg(cs.skill_id) AS skill_ids
    FROM conversation_skills cs
    WHERE cs.stream_id = c.stream_id AND cs.conversation_id = c.id
  ) needs
  WHERE ($3::text IS NULL OR c.source = $3)
    AND (c.is_active OR needs.skill_ids IS NULL OR needs.skill_ids <@ agent.skill_ids)
),
-- Each shown conversation as its JSON object, skills by name: an active one with
-- engagementTime and the wait before acceptance, a queued one with the wait so far.
item AS (
  SELECT c.is_active, c.started_at, c.queued_at, c.id,
         CASE WHEN c.is_active
           THEN json_build_object('firstName', f.first_name, 'lastName', f.last_name, 'skills', f.skills,
                                  'startTime', f.start_time, 'conversationId', c.id, 'source', c.source, 'profImage', f.prof_image,
                                  'engagementTime', greatest(0, floor(extract(epoch FROM now() - c.accepted_at)))::int,
                                  'waitTime', greatest(0, floor(extract(epoch FROM c.accepted_at - c.queued_at)))::int)
           ELSE json_build_object('firstName', f.first_name, 'lastName', f.last_name, 'skills', f.skills,
                                  'startTime', f.start_time, 'conversationId', c.id, 'source', c.source, 'profImage', f.prof_image,
                                  'waitTime', greatest(0, floor(extract(epoch FROM now() - c.queued_at)))::int)
         END AS body
  FROM shown c
  CROSS JOIN LATERAL (
    SELECT c.customer_first_name AS first_name,
           c.customer_last_name AS last_name,
           coalesce(nullif(c.customer_prof_image, ''), 'no-avatar') AS prof_image,
           to_char(c.started_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') AS start_time,
           (SELECT coalesce(json_agg(json_build_object('id', s.id, 'name', s.name) ORDER BY s.name, s.id), '[]')
            FROM skills s WHERE s.stream_id = c.stream_id AND s.id = ANY (c.skill_ids)) AS skills
  ) f
),
lists AS (
  SELECT
    -- active: oldest first
    json_agg(body ORDER BY started_at, id) FILTER (WHERE is_active) AS active,
    -- queue: longest waiting first
    json_agg(body ORDER BY queued_at, id) FILTER (WHERE NOT is_active) AS queue
  FROM item
)
SELECT agent.visible,
       metrics.resolution_time     AS "resolutionTime",
       metrics.first_response_time AS "firstResponseTime",
       metrics.response_time       AS "responseTime",
       agent.first_name            AS "firstName",
       agent.last_name             AS "lastName",
       concat_ws(' ', nullif(agent.first_name, ''), nullif(agent.last_name, '')) AS "name",
       coalesce(nullif(agent.prof_image, ''), 'no-avatar') AS "profImage",
       agent.online_status         AS "onlineStatus",
       coalesce(lists.active, '[]') AS "active",
       coalesce(lists.queue, '[]')  AS "queue"
FROM agent, metrics, lists
`

/**
 * The prepared statement's name: pg prepares it once per connection. The hash
 * makes a changed text a new name, so two versions of the plugin can share a pool.
 */
export const AGENT_VIEW_STATEMENT = `fastify-active-conversations/agent-view/${createHash('sha256').update(AGENT_VIEW_SQL).digest('hex').slice(0, 12)}`

export interface AgentViewRequest {
  streamId: string
  agentId: string
  source: Source | undefined
  scope: Scope
  metricsWindowSeconds: number
}

type AgentViewRow = AgentView & { visible: boolean }

/**
 * The agent's view; null when there is no such agent in the stream; 'forbidden'
 * when the token is restricted to groups the agent is not in (whether or not the
 * agent exists: a group-scoped caller cannot probe for agents outside its groups).
 */
export async function readAgentView (pool: pg.Pool, request: AgentViewRequest): Promise<AgentView | null | 'forbidden'> {
  const { rows } = await pool.query<AgentViewRow>({
    name: AGENT_VIEW_STATEMENT,
    text: AGENT_VIEW_SQL,
    values: [
      request.streamId,
      request.agentId,
      request.source ?? null,
      request.scope.conversationGroups,
      request.scope.agentGroups,
      request.metricsWindowSeconds
    ]
  })
  const row = rows[0]
  if (row === undefined) return request.scope.agentGroups === null ? null : 'forbidden'
  if (!row.visible) return 'forbidden'
  const { visible, ...view } = row
  return view
}
