import type { FastifyBaseLogger } from 'fastify'
import { MAX_FLOOR_LIMIT } from '../../schemas/request.js'
import type { AgentViewRequest, AgentViewResult, AgentViewText, FloorPage, FloorRequest } from '../sql/views.js'
import type { GroupMetricsRequest, GroupMetricsResult } from '../sql/group-metrics.js'
import type { Change } from './listener.js'
import type { LiveTelemetry } from '../telemetry/index.js'

/*
 * Who watches what, and what a change means for them. Views are recomputed
 * per change, not per screen: the changes of one coalescing window are routed
 * to the watches they concern, every view they need is read in one statement
 * (a view watched by a thousand screens is read once), serialized once, and
 * written to each of its watchers.
 */

/** What the hub needs from the database. */
export interface LiveReads {
  /** The views of many agents, in one statement (the agent route's). */
  views: (requests: AgentViewRequest[]) => Promise<AgentViewResult[]>
  /** A whole floor (the floor route's statement, one page of its largest size, MAX_FLOOR_LIMIT). */
  floor: (request: FloorRequest) => Promise<FloorPage>
  /** The agents who are members of any of these groups of a stream. */
  members: (streamId: string, groups: string[]) => Promise<string[]>
  /** Queue metrics of groups (the queue metrics route's statement). */
  groupMetrics: (request: GroupMetricsRequest) => Promise<GroupMetricsResult>
}

/** One agent's view, as a watch receives it. */
export interface ViewUpdate {
  agentId: string
  /** The view; null: the agent is gone (or, on a floor, left it); 'forbidden': outside the token's groups. */
  view: AgentViewText | null | 'forbidden'
  /** When the statement that read it was sent (ms since the epoch): the durations are right at that instant. */
  readAt: number
}

/** An open stream, as the hub sees it. */
export interface Watch {
  streamId: string
  source: AgentViewRequest['source']
  conversationGroups: string[] | null
  /** An agent stream: its agent and the token's group scope. */
  agent?: { agentId: string, agentGroups: string[] | null }
  /** A floor stream: its groups (null: the whole stream) and the agents on it now. */
  floor?: { floorGroups: string[] | null, agents: Set<string> }
  /** New views (in read order), to write. */
  deliver: (updates: ViewUpdate[]) => void
  /** The database failed this watch's refresh: tell the client, keep the stream. */
  unavailable: () => void
}

/** One read of queue metrics, as a metrics watch receives it. */
export interface MetricsUpdate {
  metrics: GroupMetricsResult
  /** When the statement was sent (ms since the epoch): `longestWaitTime` is right at that instant. */
  readAt: number
}

/**
 * An open queue metrics stream. The change source does not say which group an
 * active or closed conversation is in (migration 006 names a conversation's
 * group only while it is queued), so any change in its stream reads it again,
 * at most once per coalescing window and once per distinct request however
 * many screens; and so does the clock, every `metricsIntervalMillis`.
 */
export interface MetricsWatch {
  streamId: string
  metrics: GroupMetricsRequest
  deliver: (updates: MetricsUpdate[]) => void
  unavailable: () => void
}

interface Pending { agents: Set<string>, groups: Set<string>, ungrouped: boolean, all: boolean }

export interface Hub {
  add: (watch: Watch | MetricsWatch) => void
  remove: (watch: Watch | MetricsWatch) => void
  /** A notification from the listener. */
  change: (change: Change) => void
  /** Every watch reads fresh views (the listener is back: changes may have been missed). */
  refreshAll: () => void
  /** Every watch is told the database is unavailable. */
  unavailableAll: () => void
  close: () => void
}

export interface HubSettings {
  reads: LiveReads
  /** How long changes gather before the views they touch are read. */
  coalesceMillis: number
  /** After a failed read, how long until the watches it concerned are tried again. */
  retryMillis: number
  /** How often the metrics watches are read again without a change. */
  metricsIntervalMillis: number
  log: FastifyBaseLogger
  telemetry: Pick<LiveTelemetry, 'changed' | 'refreshed'>
}

export function createHub ({ reads, coalesceMillis, retryMillis, metricsIntervalMillis, log, telemetry }: HubSettings): Hub {
  const watches = new Map<string, Set<Watch>>() // by stream
  const metricsWatches = new Map<string, Set<MetricsWatch>>() // by stream
  let clock: NodeJS.Timeout | null = null // while any metrics watch is open
  let pending = new Map<string, Pending>()
  let oldestChange: number | null = null // when the oldest change pending arrived (performance.now())
  let timer: NodeJS.Timeout | null = null
  let flushing = false
  let closed = false

  function pendingOf (streamId: string): Pending {
    let entry = pending.get(streamId)
    if (entry === undefined) {
      entry = { agents: new Set(), groups: new Set(), ungrouped: false, all: false }
      pending.set(streamId, entry)
    }
    return entry
  }

  function schedule (delay: number): void {
    if (timer !== null || flushing || closed || pending.size === 0) return
    timer = setTimeout(() => { timer = null; void flush() }, delay)
  }

  async function flush (): Promise<void> {
    flushing = true
    const batch = pending
    const since = oldestChange
    pending = new Map()
    oldestChange = null
    let failed = false
    try {
      failed = await refresh(batch, since)
    } finally {
      flushing = false
      schedule(failed ? retryMillis : coalesceMillis)
    }
  }

  /** Reads and delivers what a window's changes touched; true when a read failed (its changes are pending again). */
  async function refresh (batch: Map<string, Pending>, since: number | null): Promise<boolean> {
    const started = performance.now()
    const requests: AgentViewRequest[] = []
    const requestIndex = new Map<string, number>()
    const wanted: Array<{ watch: Watch, agentIds: string[] }> = []
    const floorReads: Watch[] = []
    const floorIndex = new Map<string, number>() // one read per distinct floor
    const floorRequests: FloorRequest[] = []
    const metricsReads: Array<{ watch: MetricsWatch, index: number }> = []
    const metricsIndex = new Map<string, number>() // one read per distinct request
    const metricsRequests: GroupMetricsRequest[] = []
    const concerned = new Map<string, Array<Watch | MetricsWatch>>() // by stream, for a failure
    try {
      for (const [streamId, changed] of batch) {
        const streamMetricsWatches = [...metricsWatches.get(streamId) ?? []]
        for (const watch of streamMetricsWatches) {
          const key = JSON.stringify(watch.metrics)
          if (!metricsIndex.has(key)) {
            metricsIndex.set(key, metricsRequests.length)
            metricsRequests.push(watch.metrics)
          }
          metricsReads.push({ watch, index: metricsIndex.get(key) as number })
        }
        const streamWatches = watches.get(streamId)
        concerned.set(streamId, [...streamMetricsWatches, ...streamWatches ?? []])
        if (streamWatches === undefined) continue
        // The members of the groups whose queues changed: their queues did too.
        const touched = new Set(changed.agents)
        if (!changed.all && changed.groups.size > 0) {
          for (const agentId of await reads.members(streamId, [...changed.groups])) touched.add(agentId)
        }
        for (const watch of streamWatches) {
          if (watch.floor !== undefined && changed.all) {
            floorReads.push(watch)
            const request = floorRequest(watch)
            const key = JSON.stringify(request)
            if (!floorIndex.has(key)) {
              floorIndex.set(key, floorRequests.length)
              floorRequests.push(request)
            }
            continue
          }
          const agentIds = agentsToRead(watch, changed, touched)
          if (agentIds.length === 0) continue
          wanted.push({ watch, agentIds })
          for (const agentId of agentIds) {
            const key = viewKey(watch, agentId)
            if (!requestIndex.has(key)) {
              requestIndex.set(key, requests.length)
              requests.push(viewRequest(watch, agentId))
            }
          }
        }
      }
      const readAt = Date.now()
      const [views, floors, metrics] = await Promise.all([
        readInStatements(reads, requests),
        Promise.all(floorRequests.map(async (request) => await reads.floor(request))),
        Promise.all(metricsRequests.map(async (request) => await reads.groupMetrics(request)))
      ])
      for (const { watch, index } of metricsReads) watch.deliver([{ metrics: metrics[index] as GroupMetricsResult, readAt }])
      for (const { watch, agentIds } of wanted) {
        watch.deliver(agentIds.map((agentId) => ({ agentId, view: views[requestIndex.get(viewKey(watch, agentId)) as number] as AgentViewResult, readAt })))
      }
      const floorViews = floors.map((page) => page.agents.map(({ agentId, ...view }): ViewUpdate => ({ agentId, view, readAt })))
      for (const watch of floorReads) {
        watch.deliver(floorUpdates(watch, floorViews[floorIndex.get(JSON.stringify(floorRequest(watch))) as number] as ViewUpdate[], readAt))
      }
      const done = performance.now()
      const viewsRead = requests.length + floorViews.reduce((sum, views) => sum + views.length, 0) + metricsRequests.length
      telemetry.refreshed(done - started, viewsRead, since === null ? null : done - since)
      return false
    } catch (error) {
      log.warn({ err: error }, 'fastify-active-conversations: live views could not be read; retrying')
      if (since !== null) oldestChange = Math.min(oldestChange ?? since, since)
      for (const [streamId, changed] of batch) {
        addChanges(pendingOf(streamId), changed.agents, changed.groups, changed.ungrouped, changed.all)
        for (const watch of concerned.get(streamId) ?? []) watch.unavailable()
      }
      return true
    }
  }

  /** Every stream with a metrics watch reads its metrics again (the window moved). */
  function tick (): void {
    for (const streamId of metricsWatches.keys()) pendingOf(streamId)
    schedule(0)
  }

  return {
    add (watch) {
      if ('metrics' in watch) {
        addTo(metricsWatches, watch)
        clock ??= setInterval(tick, metricsIntervalMillis)
      } else {
        addTo(watches, watch)
      }
    },
    remove (watch) {
      if ('metrics' in watch) {
        removeFrom(metricsWatches, watch)
        if (metricsWatches.size === 0) {
          clearInterval(clock ?? undefined)
          clock = null
        }
      } else {
        removeFrom(watches, watch)
      }
    },
    change (change) {
      if (!watches.has(change.s) && !metricsWatches.has(change.s)) return // nobody watches that stream here
      telemetry.changed()
      oldestChange ??= performance.now()
      // (memberships, m: their agents are in a, which is what is read)
      addChanges(pendingOf(change.s), change.a ?? [], change.g ?? [], change.u === true, change.all === true)
      schedule(coalesceMillis)
    },
    refreshAll () {
      for (const streamId of [...watches.keys(), ...metricsWatches.keys()]) pendingOf(streamId).all = true
      schedule(0)
    },
    unavailableAll () {
      for (const streamWatches of [...watches.values(), ...metricsWatches.values()]) for (const watch of streamWatches) watch.unavailable()
    },
    close () {
      closed = true
      clearTimeout(timer ?? undefined)
      clearInterval(clock ?? undefined)
      watches.clear()
      metricsWatches.clear()
      pending.clear()
    }
  }
}

/** Adds changes to what a stream has pending (a notification's, or a failed read's again). */
function addChanges (entry: Pending, agents: Iterable<string>, groups: Iterable<string>, ungrouped: boolean, all: boolean): void {
  for (const agentId of agents) entry.agents.add(agentId)
  for (const group of groups) entry.groups.add(group)
  entry.ungrouped ||= ungrouped
  entry.all ||= all
}

function addTo<W extends { streamId: string }> (byStream: Map<string, Set<W>>, watch: W): void {
  let streamWatches = byStream.get(watch.streamId)
  if (streamWatches === undefined) byStream.set(watch.streamId, streamWatches = new Set())
  streamWatches.add(watch)
}

function removeFrom<W extends { streamId: string }> (byStream: Map<string, Set<W>>, watch: W): void {
  const streamWatches = byStream.get(watch.streamId)
  streamWatches?.delete(watch)
  if (streamWatches?.size === 0) byStream.delete(watch.streamId)
}

/**
 * Most views one statement reads. A refresh reads every view it needs in one
 * statement up to this; beyond (a reconnect refreshing thousands of agents'
 * streams), one statement after another, so that none runs into the statement
 * timeout and fails the whole refresh again at every retry.
 */
export const VIEWS_PER_STATEMENT = 1000

async function readInStatements (reads: LiveReads, requests: AgentViewRequest[]): Promise<AgentViewResult[]> {
  const views: AgentViewResult[] = []
  for (let start = 0; start < requests.length; start += VIEWS_PER_STATEMENT) {
    views.push(...await reads.views(requests.slice(start, start + VIEWS_PER_STATEMENT)))
  }
  return views
}

/** The agents of a watch whose views a window's changes may have changed (touched: named agents and members of changed groups). */
function agentsToRead (watch: Watch, changed: Pending, touched: Set<string>): string[] {
  if (watch.agent !== undefined) {
    return changed.all || changed.ungrouped || touched.has(watch.agent.agentId) ? [watch.agent.agentId] : []
  }
  const { floorGroups, agents } = watch.floor as NonNullable<Watch['floor']>
  const read = new Set<string>()
  if (changed.ungrouped) for (const agentId of agents) read.add(agentId)
  for (const agentId of touched) {
    // On the floor: its view. Not on it: a new agent of the stream may join a whole-stream floor, and an
    // agent named by a change of memberships may join a group floor (the read tells: 'forbidden' if not).
    if (agents.has(agentId) || floorGroups === null || changed.agents.has(agentId)) read.add(agentId)
  }
  return [...read]
}

/** Views are read once per distinct request: the same stream, agent, filters and scope give the same view. */
function viewKey (watch: Watch, agentId: string): string {
  return JSON.stringify([watch.streamId, agentId, watch.source ?? null, watch.conversationGroups, watch.agent?.agentGroups ?? watch.floor?.floorGroups ?? null])
}

/** A floor's agent is read as the agent route reads it, the floor's groups standing for the token's scope (outside them: 'forbidden'). */
function viewRequest (watch: Watch, agentId: string): AgentViewRequest {
  const agentGroups = watch.agent !== undefined ? watch.agent.agentGroups : (watch.floor as NonNullable<Watch['floor']>).floorGroups
  return { streamId: watch.streamId, agentId, source: watch.source, scope: { agentGroups, conversationGroups: watch.conversationGroups } }
}

/** The floor stream's floor: the floor route's, whole, in one page of its largest size. */
export function floorRequest (watch: Watch): FloorRequest {
  const { floorGroups } = watch.floor as NonNullable<Watch['floor']>
  return { streamId: watch.streamId, floorGroups, conversationGroups: watch.conversationGroups, source: watch.source, after: '', limit: MAX_FLOOR_LIMIT }
}

/** A floor read again whole (`views`, shared by the floor's screens): every agent on it now, and the ones gone from it (null). */
function floorUpdates (watch: Watch, views: ViewUpdate[], readAt: number): ViewUpdate[] {
  const updates = [...views]
  const present = new Set(views.map((update) => update.agentId))
  for (const agentId of (watch.floor as NonNullable<Watch['floor']>).agents) {
    if (!present.has(agentId)) updates.push({ agentId, view: null, readAt })
  }
  return updates
}
