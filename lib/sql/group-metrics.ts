import type pg from 'pg'
import type { Source } from '../../schemas/common.js'
import type { GroupFigures, GroupMetrics, TotalFigures, UngroupedFigures } from '../../schemas/response.js'
import { statementName } from './statement-name.js'

/*
 * A wallboard's queue figures, per group, for the ungrouped queue and in total,
 * in one statement whatever the number of groups. Each figure of a queue is
 * one index range of that queue (migration 008), never the stream's
 * conversations: what waits (the queued index), what is handled (the active
 * index), the window's cohort (every conversation of the group by queued_at,
 * read from the index alone). The groups' members are read in one range for
 * all of them, and each agent looked up once, however many groups it is in.
 *
 * The sums are kept raw per queue (`per`), so that the totals add them up
 * before anything is rounded, and one expression (the final SELECT) turns raw
 * sums into the answer's figures for a group, the ungrouped queue and the
 * totals alike. Durations use now(), one instant for the whole statement.
 *
 *   $1 stream, $2 groups (NULL: every group of the stream), $3 source (NULL: both),
 *   $4 whether the ungrouped queue is reported, $5 the metrics window in seconds,
 *   $6 the service level's target in seconds, $7 most groups reported
 */

/**
 * The figures of the conversations of one queue; `queue` is its condition on
 * c.agent_group_id. The cohort's durations are summed as intervals (exact, and
 * turned into seconds once per queue rather than once per conversation), and
 * answered in time compares timestamps: cheaper per conversation than seconds
 * (BENCHMARKS.md, the queue metrics).
 */
const QUEUE_FIGURES = (queue: string) => `
CROSS JOIN LATERAL (
  SELECT count(*) AS waiting, min(c.queued_at) AS oldest
  FROM conversations c
  WHERE c.stream_id = $1 AND c.status = 'queued' AND ${queue} AND ($3::text IS NULL OR c.source = $3)
) w
CROSS JOIN LATERAL (
  SELECT count(*) AS active
  FROM conversations c
  WHERE c.stream_id = $1 AND c.status = 'active' AND ${queue} AND ($3::text IS NULL OR c.source = $3)
) h
CROSS JOIN LATERAL (
  SELECT count(*) AS offered,
         count(c.accepted_at) AS answered,
         count(*) FILTER (WHERE c.accepted_at IS NULL AND c.closed_at IS NOT NULL) AS abandoned,
         sum(c.accepted_at - c.queued_at) AS answer_time,
         count(*) FILTER (WHERE c.accepted_at <= c.queued_at + (SELECT make_interval(secs => $6))) AS answered_in_time,
         sum(c.closed_at - c.accepted_at) AS handle_time,
         count(*) FILTER (WHERE c.closed_at IS NOT NULL AND c.accepted_at IS NOT NULL) AS handled
  FROM conversations c
  WHERE c.stream_id = $1 AND ${queue} AND ($3::text IS NULL OR c.source = $3)
    AND c.queued_at >= (SELECT now() - make_interval(secs => $5))
) co`

/** Counts agents a by presence. */
const AGENT_COUNTS = `
count(*) FILTER (WHERE a.online_status = 'available') AS available,
count(*) FILTER (WHERE a.online_status = 'busy') AS busy,
count(*) FILTER (WHERE a.online_status = 'away') AS away,
count(*) FILTER (WHERE a.online_status = 'offline') AS offline`

/** A queue's raw figures, from QUEUE_FIGURES's three reads. */
const RAW_COLUMNS = 'w.waiting, w.oldest, h.active, co.offered, co.answered, co.abandoned, co.answer_time, co.answered_in_time, co.handle_time, co.handled'

export const GROUP_METRICS_SQL = `
WITH listed AS MATERIALIZED (
  -- The groups asked for, in byte order; one more than may be reported tells that there are too many.
  SELECT g.id, g.name
  FROM agent_groups g
  WHERE g.stream_id = $1 AND ($2::text[] IS NULL OR g.id = ANY ($2))
  ORDER BY g.id COLLATE "C"
  LIMIT $7::int + 1
),
too_many AS (SELECT count(*) > $7::int AS too_many FROM listed),
g AS MATERIALIZED (SELECT listed.* FROM listed WHERE NOT (SELECT too_many FROM too_many)),
-- The groups' members: one range of the members' key for all the groups.
membership AS MATERIALIZED (
  SELECT gm.agent_group_id, gm.agent_id
  FROM agent_group_members gm
  WHERE gm.stream_id = $1 AND gm.agent_group_id = ANY (ARRAY(SELECT g.id FROM g))
),
-- Each of them once, however many of the groups it is in, by primary key (LIMIT keeps it a lookup whatever the planner guesses).
members AS MATERIALIZED (
  SELECT m.agent_id, a.online_status
  FROM (SELECT DISTINCT membership.agent_id FROM membership) m
  CROSS JOIN LATERAL (SELECT a.online_status FROM agents a WHERE a.stream_id = $1 AND a.id = m.agent_id LIMIT 1) a
),
group_agents AS (
  SELECT ms.agent_group_id, ${AGENT_COUNTS}
  FROM membership ms JOIN members a ON a.agent_id = ms.agent_id
  GROUP BY ms.agent_group_id
),
-- Each queue's raw figures: kind 0 a group, 1 the ungrouped queue.
per AS MATERIALIZED (
  SELECT 0 AS kind, g.id, g.name, ${RAW_COLUMNS},
         coalesce(m.available, 0) AS available, coalesce(m.busy, 0) AS busy, coalesce(m.away, 0) AS away, coalesce(m.offline, 0) AS offline
  FROM g
  LEFT JOIN group_agents m ON m.agent_group_id = g.id
  ${QUEUE_FIGURES('c.agent_group_id = g.id')}
  UNION ALL
  SELECT 1, NULL, NULL, ${RAW_COLUMNS}, NULL, NULL, NULL, NULL
  FROM (SELECT WHERE $4::boolean AND NOT (SELECT too_many FROM too_many)) u
  ${QUEUE_FIGURES('c.agent_group_id IS NULL')}
),
-- Kind 2, the totals: the queues' sums (a conversation is in one queue only) and the members; one row, even with no queue.
x AS (
  SELECT * FROM per
  UNION ALL
  SELECT 2, NULL, NULL,
         coalesce(sum(per.waiting), 0), min(per.oldest), coalesce(sum(per.active), 0),
         coalesce(sum(per.offered), 0), coalesce(sum(per.answered), 0), coalesce(sum(per.abandoned), 0),
         sum(per.answer_time), coalesce(sum(per.answered_in_time), 0), sum(per.handle_time), coalesce(sum(per.handled), 0),
         t.available, t.busy, t.away, t.offline
  FROM (SELECT ${AGENT_COUNTS} FROM members a) t LEFT JOIN per ON true
  GROUP BY t.available, t.busy, t.away, t.offline
)
-- The answer's figures from the raw ones, the same for every kind: averages rounded half up (none is negative).
SELECT x.kind,
       x.id AS "agentGroupId",
       x.name,
       x.waiting::int AS waiting,
       -- (greatest() skips a NULL: with none waiting it would say 0)
       CASE WHEN x.oldest IS NOT NULL THEN greatest(0, floor(date_part('epoch', now() - x.oldest)))::int END AS "longestWaitTime",
       x.active::int AS active,
       x.available::int AS available, x.busy::int AS busy, x.away::int AS away, x.offline::int AS offline,
       x.offered::int AS offered,
       x.answered::int AS answered,
       x.abandoned::int AS abandoned,
       floor(date_part('epoch', x.answer_time) / nullif(x.answered, 0) + 0.5)::int AS "averageSpeedOfAnswer",
       round(x.answered_in_time::numeric / nullif(x.answered + x.abandoned, 0), 4)::float8 AS "serviceLevel",
       floor(date_part('epoch', x.handle_time) / nullif(x.handled, 0) + 0.5)::int AS "averageHandleTime",
       (SELECT too_many FROM too_many) AS "tooMany"
FROM x
ORDER BY x.kind, x.id COLLATE "C"
`
export const GROUP_METRICS_STATEMENT = statementName('group-metrics', GROUP_METRICS_SQL)

export interface GroupMetricsRequest {
  streamId: string
  /** The groups to report (null: every group of the stream). */
  groups: string[] | null
  /** Whether the ungrouped queue is reported (a manager of the whole stream, asking for no group). */
  ungrouped: boolean
  source: Source | undefined
  serviceLevelSeconds: number
}

/** The answer, or 'too-many' when more than maxGroups groups would be reported. */
export type GroupMetricsResult = GroupMetrics | 'too-many'

interface Row {
  kind: 0 | 1 | 2
  agentGroupId: string | null
  name: string | null
  waiting: number
  longestWaitTime: number | null
  active: number
  available: number
  busy: number
  away: number
  offline: number
  offered: number
  answered: number
  abandoned: number
  averageSpeedOfAnswer: number | null
  serviceLevel: number | null
  averageHandleTime: number | null
  tooMany: boolean
}

/** The groups' figures from one statement on the pool, groups in ascending agentGroupId (byte order). */
export async function readGroupMetrics (pool: pg.Pool, request: GroupMetricsRequest, metricsWindowSeconds: number, maxGroups: number, prepared = true): Promise<GroupMetricsResult> {
  const { rows } = await pool.query<Row>({
    name: prepared ? GROUP_METRICS_STATEMENT : undefined,
    text: GROUP_METRICS_SQL,
    values: [request.streamId, request.groups, request.source ?? null, request.ungrouped, metricsWindowSeconds, request.serviceLevelSeconds, maxGroups]
  })
  if ((rows[0] as Row).tooMany) return 'too-many' // the totals row is always there
  const groups: GroupFigures[] = []
  let ungrouped: UngroupedFigures | null = null
  let totals: TotalFigures | undefined
  for (const row of rows) {
    const queue = {
      waiting: row.waiting,
      longestWaitTime: row.longestWaitTime,
      active: row.active
    }
    const cohort = {
      offered: row.offered,
      answered: row.answered,
      abandoned: row.abandoned,
      averageSpeedOfAnswer: row.averageSpeedOfAnswer,
      serviceLevel: row.serviceLevel,
      averageHandleTime: row.averageHandleTime
    }
    const agents = { available: row.available, busy: row.busy, away: row.away, offline: row.offline }
    if (row.kind === 0) groups.push({ agentGroupId: row.agentGroupId as string, name: row.name as string, ...queue, agents, ...cohort })
    else if (row.kind === 1) ungrouped = { ...queue, ...cohort }
    else totals = { ...queue, agents, ...cohort }
  }
  return { groups, ungrouped, totals: totals as TotalFigures }
}
