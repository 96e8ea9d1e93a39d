import type { FastifyBaseLogger } from 'fastify'
import { MAX_FLOOR_LIMIT } from '../../schemas/request.js'
import type { AgentViewRequest, AgentViewResult, AgentViewText, FloorPage, FloorRequest } from '../sql/views.js'
import type { GroupMetricsRequest, GroupMetricsResult } from '../sql/group-metrics.js'
import { EVERY_STREAM, type Change } from './changes.js'
import { READ_EVERY_MILLIS } from './wal.js'
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
  /** Which of these decoded transactions a new snapshot does not see yet (lib/sql/visibility.ts). */
  invisible: (xids: number[]) => Promise<number[]>
}

/** One agent's view, as a watch receives it. */
export interface ViewUpdate {
  agentId: string
  /** The view; null: the agent is gone (or, on a floor, left it); 'forbidden': outside the token's groups. */
  view: AgentViewText | null | 'forbidden'
  /** When the statement that read it was sent (ms since the epoch): the durations are right at that instant. */
  readAt: number
  /** Read by a poll or a fresh start, not for a change: send it only if it changed apart from its durations. */
  quiet?: boolean
}

/** An open stream, as the hub sees it. */
/** When a stream's first read began (performance.now()); unset until then. A quiet read asked for before it is not needed. */
interface FirstRead { firstReadAt?: number }

export interface Watch extends FirstRead {
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
  /** As ViewUpdate's. */
  quiet?: boolean
}

/**
 * An open queue metrics stream. The change source does not say which group an
 * active or closed conversation is in (lib/live/changes.ts names a conversation's
 * group only while it is queued), so any change in its stream reads it again,
 * at most once per coalescing window and once per distinct request however
 * many screens; and so does the clock, every `metricsIntervalMillis`.
 */
export interface MetricsWatch extends FirstRead {
  streamId: string
  metrics: GroupMetricsRequest
  deliver: (updates: MetricsUpdate[]) => void
  unavailable: () => void
}

/**
 * What a stream has to read. The views a change names (its agents, the
 * members of its groups, everyone for an ungrouped change or a truncation:
 * `truncated`) are sent; the others `all` reads again (a poll, a fresh start)
 * only if they changed apart from their durations. `loud`: a change or the
 * clock asks for the metrics (else they are quiet too). `xids`: the decoded
 * transactions behind it, to be visible first.
 */
interface Pending { agents: Set<string>, groups: Set<string>, ungrouped: boolean, all: boolean, truncated: boolean, loud: boolean, xids: Set<number>, since: number }

export interface Hub {
  add: (watch: Watch | MetricsWatch) => void
  remove: (watch: Watch | MetricsWatch) => void
  /** A decoded change (lib/live/changes.ts). */
  change: (change: Change) => void
  /** Every watch reads its views again, sent where they changed apart from durations (a slot is up: what was committed before it is in this read). */
  refreshAll: () => void
  /** Whether to read every watch again every `pollMillis` (no slot decodes changes). */
  poll: (on: boolean) => void
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
  /** While polling, how often every watch is read again. */
  pollMillis: number
  /** Told when the first watch is added and when the last is removed. */
  onWatching: (active: boolean) => void
  log: FastifyBaseLogger
  telemetry: Pick<LiveTelemetry, 'changed' | 'refreshed'>
}

/** How soon a stream woken by a transaction not yet visible is read again. */
export const VISIBILITY_RETRY_MILLIS = 10

export function createHub ({ reads, coalesceMillis, retryMillis, metricsIntervalMillis, pollMillis, onWatching, log, telemetry }: HubSettings): Hub {
  const watches = new Map<string, Set<Watch>>() // by stream
  const metricsWatches = new Map<string, Set<MetricsWatch>>() // by stream
  let clock: NodeJS.Timeout | null = null // while any metrics watch is open
  let pending = new Map<string, Pending>()
  let oldestChange: number | null = null // when the oldest change pending arrived (performance.now())
  let timer: NodeJS.Timeout | null = null
  let flushing = false
  let closed = false
  let polling = false
  let poller: NodeJS.Timeout | null = null // while polling and any watch is open
  let watchCount = 0

  function pendingOf (streamId: string): Pending {
    let entry = pending.get(streamId)
    if (entry === undefined) {
      entry = { agents: new Set(), groups: new Set(), ungrouped: false, all: false, truncated: false, loud: false, xids: new Set(), since: performance.now() }
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
    let outcome: Outcome = 'done'
    try {
      outcome = await refresh(batch, since)
    } finally {
      flushing = false
      schedule(outcome === 'failed' ? retryMillis : outcome === 'deferred' ? VISIBILITY_RETRY_MILLIS : coalesceMillis)
    }
  }

  /**
   * Reads and delivers what a window's changes touched. 'failed': a read
   * failed (its changes are pending again). 'deferred': some were woken by a
   * transaction a new snapshot does not see yet: read now, and pending again
   * until it is seen.
   */
  async function refresh (batch: Map<string, Pending>, since: number | null): Promise<Outcome> {
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
    const named = new Map<string, Set<string> | 'everyone'>() // by stream: the agents whose views its changes name
    try {
      const xids = new Set<number>()
      for (const changed of batch.values()) for (const xid of changed.xids) xids.add(xid)
      const unseen = new Set(xids.size === 0 ? [] : await reads.invisible([...xids]))
      for (const [streamId, changed] of batch) {
        const waiting = [...changed.xids].filter((xid) => unseen.has(xid))
        if (waiting.length > 0) addChanges(pendingOf(streamId), { ...changed, xids: new Set(waiting) })
        // A quiet read skips the watches whose first read began after it was asked for (or has not begun):
        // they show what it would (the first stream's view is read once its slot is up).
        const needs = (watch: FirstRead): boolean => changed.loud || (watch.firstReadAt !== undefined && watch.firstReadAt < changed.since)
        const streamMetricsWatches = [...metricsWatches.get(streamId) ?? []].filter(needs)
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
        const everyone = changed.truncated || changed.ungrouped
        if (!everyone && changed.groups.size > 0) {
          for (const agentId of await reads.members(streamId, [...changed.groups])) touched.add(agentId)
        }
        named.set(streamId, everyone ? 'everyone' : touched)
        for (const watch of streamWatches) {
          if (!needs(watch)) continue
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
      for (const { watch, index } of metricsReads) watch.deliver([{ metrics: metrics[index] as GroupMetricsResult, readAt, quiet: !(batch.get(watch.streamId) as Pending).loud }])
      // A view no change named was read by a poll or a fresh start, merged into this window: quiet.
      const quiet = (streamId: string, agentId: string): boolean => {
        const agents = named.get(streamId) as Set<string> | 'everyone'
        return agents !== 'everyone' && !agents.has(agentId)
      }
      for (const { watch, agentIds } of wanted) {
        watch.deliver(agentIds.map((agentId) => ({ agentId, view: views[requestIndex.get(viewKey(watch, agentId)) as number] as AgentViewResult, readAt, quiet: quiet(watch.streamId, agentId) })))
      }
      const floorViews = floors.map((page) => page.agents.map(({ agentId, ...view }): ViewUpdate => ({ agentId, view, readAt })))
      for (const watch of floorReads) {
        const updates = floorUpdates(watch, floorViews[floorIndex.get(JSON.stringify(floorRequest(watch))) as number] as ViewUpdate[], readAt)
        watch.deliver(updates.map((update) => quiet(watch.streamId, update.agentId) ? { ...update, quiet: true } : update))
      }
      const done = performance.now()
      const viewsRead = requests.length + floorViews.reduce((sum, views) => sum + views.length, 0) + metricsRequests.length
      telemetry.refreshed(done - started, viewsRead, since === null ? null : done - since)
      return unseen.size > 0 ? 'deferred' : 'done'
    } catch (error) {
      log.warn({ err: error }, 'fastify-active-conversations: live views could not be read; retrying')
      if (since !== null) oldestChange = Math.min(oldestChange ?? since, since)
      for (const [streamId, changed] of batch) {
        addChanges(pendingOf(streamId), changed)
        for (const watch of concerned.get(streamId) ?? []) watch.unavailable()
      }
      return 'failed'
    }
  }

  /** Every stream with a metrics watch reads its metrics again (the window moved). */
  function tick (): void {
    for (const streamId of metricsWatches.keys()) pendingOf(streamId).loud = true // (an unchanged body is not sent again: lib/live/routes.ts)
    schedule(0)
  }

  /** Every watched stream reads all its views again, quietly. */
  function readAllAgain (): void {
    for (const streamId of [...watches.keys(), ...metricsWatches.keys()]) pendingOf(streamId).all = true
    schedule(0)
  }

  /** The poll's clock runs while polling and any watch is open. */
  function pollClock (): void {
    const run = polling && watchCount > 0 && !closed
    if (run && poller === null) poller = setInterval(readAllAgain, pollMillis)
    if (!run && poller !== null) {
      clearInterval(poller)
      poller = null
    }
  }

  function counted (delta: 1 | -1): void {
    watchCount += delta
    if (watchCount === (delta === 1 ? 1 : 0)) onWatching(delta === 1)
    pollClock()
  }

  return {
    add (watch) {
      if ('metrics' in watch) {
        addTo(metricsWatches, watch)
        clock ??= setInterval(tick, metricsIntervalMillis)
      } else {
        addTo(watches, watch)
      }
      counted(1)
    },
    remove (watch) {
      const removed = 'metrics' in watch ? removeFrom(metricsWatches, watch) : removeFrom(watches, watch)
      if ('metrics' in watch && metricsWatches.size === 0) {
        clearInterval(clock ?? undefined)
        clock = null
      }
      if (removed) counted(-1)
    },
    change (change) {
      const truncated = change.s === EVERY_STREAM
      const changed = { agents: change.a, groups: change.g, ungrouped: change.u, all: truncated, truncated, loud: true, xids: [change.xid] }
      if (changed.all) { // a truncation: every view of every stream
        for (const streamId of [...watches.keys(), ...metricsWatches.keys()]) addChanges(pendingOf(streamId), changed)
      } else if (watches.has(change.s) || metricsWatches.has(change.s)) {
        addChanges(pendingOf(change.s), changed)
      } else {
        return // nobody watches that stream here
      }
      telemetry.changed()
      // The lag counts from the commit: how long ago it was, on the server's clock, set on this one's.
      const age = Math.max(0, Date.now() - change.committedAt)
      oldestChange ??= performance.now() - age
      // So does the window, for as long as the change may have waited in the WAL client's socket (no longer:
      // a server clock behind this one's would otherwise make every window close at once).
      schedule(coalesceMillis - Math.min(age, READ_EVERY_MILLIS))
    },
    refreshAll: readAllAgain,
    poll (on) {
      polling = on
      pollClock()
    },
    close () {
      closed = true
      clearTimeout(timer ?? undefined)
      clearInterval(clock ?? undefined)
      clearInterval(poller ?? undefined)
      watches.clear()
      metricsWatches.clear()
      pending.clear()
    }
  }
}

type Outcome = 'done' | 'deferred' | 'failed'

interface Changed { agents: Iterable<string>, groups: Iterable<string>, ungrouped: boolean, all: boolean, truncated: boolean, loud: boolean, xids: Iterable<number>, since?: number }

/** Adds changes to what a stream has pending (a decoded change's, or a failed or unseen read's again). */
function addChanges (entry: Pending, changed: Changed): void {
  for (const agentId of changed.agents) entry.agents.add(agentId)
  for (const group of changed.groups) entry.groups.add(group)
  for (const xid of changed.xids) entry.xids.add(xid)
  entry.ungrouped ||= changed.ungrouped
  entry.all ||= changed.all
  entry.truncated ||= changed.truncated
  entry.loud ||= changed.loud
  if (changed.since !== undefined) entry.since = Math.min(entry.since, changed.since)
}

function addTo<W extends { streamId: string }> (byStream: Map<string, Set<W>>, watch: W): void {
  let streamWatches = byStream.get(watch.streamId)
  if (streamWatches === undefined) byStream.set(watch.streamId, streamWatches = new Set())
  streamWatches.add(watch)
}

/** Whether the watch was there. */
function removeFrom<W extends { streamId: string }> (byStream: Map<string, Set<W>>, watch: W): boolean {
  const streamWatches = byStream.get(watch.streamId)
  const removed = streamWatches?.delete(watch) === true
  if (streamWatches?.size === 0) byStream.delete(watch.streamId)
  return removed
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
