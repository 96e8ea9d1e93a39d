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
 */
export const AGENT_VIEW_SQL = `
WITH agent AS (
  SELECT a.stream_id, a.id, a.first_name, a.last_name, a.prof_image, a.online_status, g.group_ids,
         ($5::text[] IS NULL OR g.group_ids && $5::text[]) AS visible
  FROM agents a
  CROSS JOIN LATERAL (
    SELECT coalesce(array_agg(m.agent_group_id), '{}') AS group_ids
    FROM agent_group_members m
    WHERE m.stream_id = a.stream_id AND m.agent_id = a.id
  ) g
  WHERE a.stream_id = $1 AND a.id = $2
),
-- Averages over the conversations the agent accepted inside the window.
metrics AS (
  SELECT
    round(avg(extract(epoch FROM c.closed_at - c.accepted_at)) FILTER (WHERE c.closed_at IS NOT NULL))::int AS resolution_time,
    round(avg(extract(epoch FROM c.first_response_at - c.accepted_at)) FILTER (WHERE c.first_response_at IS NOT NULL))::int AS first_response_time,
    round(sum(c.response_seconds_total) / nullif(sum(c.response_count), 0))::int AS response_time
  FROM agent
  JOIN conversations c ON c.stream_id = agent.stream_id AND c.agent_id = agent.id
  WHERE agent.visible AND c.accepted_at >= now() - make_interval(secs => $6)
),
-- The conversations the agent is handling now, oldest first.
active AS (
  SELECT json_agg(json_build_object(
           'firstName', c.customer_first_name,
           'lastName', c.customer_last_name,
           'skills', needs.skills,
           'startTime', to_char(c.started_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'),
           'conversationId', c.id,
           'source', c.source,
           'profImage', coalesce(nullif(c.customer_prof_image, ''), 'no-avatar'),
           'engagementTime', greatest(0, floor(extract(epoch FROM now() - c.accepted_at)))::int,
           'waitTime', greatest(0, floor(extract(epoch FROM c.accepted_at - c.queued_at)))::int
         ) ORDER BY c.started_at, c.id) AS list
  FROM agent
  JOIN conversations c ON c.stream_id = agent.stream_id AND c.agent_id = agent.id AND c.status = 'active'
  CROSS JOIN LATERAL (
    SELECT coalesce(json_agg(json_build_object('id', s.id, 'name', s.name) ORDER BY s.name, s.id), '[]') AS skills
    FROM conversation_skills cs
    JOIN skills s ON s.stream_id = cs.stream_id AND s.id = cs.skill_id
    WHERE cs.stream_id = c.stream_id AND cs.conversation_id = c.id
  ) needs
  WHERE agent.visible
    AND ($3::text IS NULL OR c.source = $3)
    AND ($4::text[] IS NULL OR c.agent_group_id = ANY ($4))
),
-- Waiting conversations the agent could take: routed to one of its groups or to
-- none, and needing no skill it lacks. Longest waiting first.
queue AS (
  SELECT json_agg(json_build_object(
           'firstName', c.customer_first_name,
           'lastName', c.customer_last_name,
           'skills', needs.skills,
           'startTime', to_char(c.started_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'),
           'conversationId', c.id,
           'source', c.source,
           'profImage', coalesce(nullif(c.customer_prof_image, ''), 'no-avatar'),
           'waitTime', greatest(0, floor(extract(epoch FROM now() - c.queued_at)))::int
         ) ORDER BY c.queued_at, c.id) AS list
  FROM agent
  JOIN conversations c ON c.stream_id = agent.stream_id AND c.status = 'queued'
                      AND (c.agent_group_id = ANY (agent.group_ids) OR c.agent_group_id IS NULL)
  CROSS JOIN LATERAL (
    SELECT coalesce(json_agg(json_build_object('id', s.id, 'name', s.name) ORDER BY s.name, s.id), '[]') AS skills
    FROM conversation_skills cs
    JOIN skills s ON s.stream_id = cs.stream_id AND s.id = cs.skill_id
    WHERE cs.stream_id = c.stream_id AND cs.conversation_id = c.id
  ) needs
  WHERE agent.visible
    AND ($3::text IS NULL OR c.source = $3)
    AND ($4::text[] IS NULL OR c.agent_group_id = ANY ($4))
    AND NOT EXISTS (
      SELECT 1 FROM conversation_skills cs
      WHERE cs.stream_id = c.stream_id AND cs.conversation_id = c.id
        AND NOT EXISTS (
          SELECT 1 FROM agent_skills k
          WHERE k.stream_id = cs.stream_id AND k.agent_id = agent.id AND k.skill_id = cs.skill_id))
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
       coalesce(active.list, '[]') AS "active",
       coalesce(queue.list, '[]')  AS "queue"
FROM agent, metrics, active, queue
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
