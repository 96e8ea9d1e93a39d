import type { FastifyBaseLogger } from 'fastify'
import type pg from 'pg'
import { MAX_METRICS_GROUPS } from '../schemas/request.js'
import type { BatchLimits } from './batch.js'
import type { LiveReads } from './live/hub.js'
import { createReadRouter, withPoolerHint, type OnPool } from './read-routing.js'
import { readGroupMetrics, type GroupMetricsRequest, type GroupMetricsResult } from './sql/group-metrics.js'
import { readAgentViews, readFloor, readGroupMembers, type AgentViewRequest, type AgentViewResult, type FloorPage, type FloorRequest, type ReadAgentViews } from './sql/views.js'
import { readInvisible } from './sql/visibility.js'
import type { Telemetry } from './telemetry/index.js'

export interface StatementSettings {
  primary: pg.Pool
  replica: pg.Pool | null
  readPoolRetryMillis: number
  preparedStatements: boolean
  metricsWindowSeconds: number
  batching: BatchLimits
  telemetry: Telemetry
  log: FastifyBaseLogger
}

export interface Statements {
  /** One agent request's view: concurrent requests share statements. */
  agentView: (request: AgentViewRequest) => Promise<AgentViewResult>
  /** One floor page: pages take turns. */
  floorPage: (request: FloorRequest) => Promise<FloorPage>
  /** One queue metrics answer: answers take turns. */
  groupMetrics: (request: GroupMetricsRequest) => Promise<GroupMetricsResult>
  /** A live refresh's reads, on the primary, each statement in a span of its own. */
  live: LiveReads
  /** A live stream's first view, on the primary: streams opening together share statements. */
  firstLiveView: (request: AgentViewRequest) => Promise<AgentViewResult>
}

/**
 * Where each statement runs and how requests reach it: the routes' reads on
 * the replica when there is one (the primary while it cannot answer), the
 * live views' on the primary (a change is told at its commit there, before a
 * replica may have it); each try measured on the pool it ran on (lib/telemetry).
 */
export function createStatements ({ primary, replica, readPoolRetryMillis, preparedStatements, metricsWindowSeconds, batching, telemetry, log }: StatementSettings): Statements {
  // Behind a transaction-mode pooler the defaults fail now and then: one warning says what to do.
  const onPrimary = withPoolerHint(async (read) => await read(primary), log)
  const onPool: OnPool = replica === null
    ? onPrimary
    : withPoolerHint(createReadRouter(replica, primary, { retryMillis: readPoolRetryMillis, log, report: telemetry.replica }), log)

  const viewsOn = (on: OnPool): ReadAgentViews => async (requests) =>
    await on(telemetry.onPool('agent', (target) => readAgentViews(target, requests, metricsWindowSeconds, preparedStatements)))
  const floorOn = (on: OnPool) => async (request: FloorRequest) =>
    await on(telemetry.onPool('floor', (target) => readFloor(target, request, metricsWindowSeconds, preparedStatements)))
  const groupMetricsOn = (on: OnPool) => async (request: GroupMetricsRequest) =>
    await on(telemetry.onPool('group_metrics', (target) => readGroupMetrics(target, request, metricsWindowSeconds, MAX_METRICS_GROUPS, preparedStatements)))
  const members = async (streamId: string, groups: string[]) =>
    await onPrimary(telemetry.onPool('group_members', (target) => readGroupMembers(target, streamId, groups, preparedStatements)))
  const invisible = async (xids: number[]) =>
    await onPrimary(telemetry.onPool('visibility', (target) => readInvisible(target, xids, preparedStatements)))

  // Concurrent agent requests share statements (createBatcher). A floor page's or the metrics' statement cannot
  // share, but they take turns in the same number of slots, so that a burst neither crowds the database nor
  // holds every answer in memory at once (BENCHMARKS.md, step 17).
  const oneAtATime = { concurrency: batching.concurrency, maxSize: 1 }
  const single = <In, Out>(read: (input: In) => Promise<Out>) => async ([input]: In[]) => [await read(input as In)]
  const liveViews = viewsOn(onPrimary)
  const liveFloor = floorOn(onPrimary)
  const liveGroupMetrics = groupMetricsOn(onPrimary)
  return {
    agentView: telemetry.batcher('agent', viewsOn(onPool), batching),
    floorPage: telemetry.batcher('floor', single(floorOn(onPool)), oneAtATime),
    groupMetrics: telemetry.batcher('group_metrics', single(groupMetricsOn(onPool)), oneAtATime),
    // No request waits on a refresh's statements.
    live: {
      views: async (requests) => await telemetry.statement('agent', requests.length, async () => await liveViews(requests)),
      floor: async (request) => await telemetry.statement('floor', 1, async () => await liveFloor(request)),
      members: async (streamId, groups) => await telemetry.statement('group_members', 1, async () => await members(streamId, groups)),
      groupMetrics: async (request) => await telemetry.statement('group_metrics', 1, async () => await liveGroupMetrics(request)),
      invisible: async (xids) => await telemetry.statement('visibility', xids.length, async () => await invisible(xids))
    },
    firstLiveView: telemetry.batcher('agent', liveViews, batching)
  }
}
