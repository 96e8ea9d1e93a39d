import { context, metrics, ROOT_CONTEXT, SpanStatusCode, trace, type Attributes, type BatchObservableResult, type Link, type Observable, type Span } from '@opentelemetry/api'
import type pg from 'pg'
import { createBatcher, type BatchLimits } from '../batch.js'
import { errorType } from '../database.js'
import { ATTRIBUTE, instrumentsOf, type LiveStreamKind, type PoolName, type StatementKind } from './instruments.js'

export type { LiveStreamKind, PoolName, StatementKind }

/*
 * The plugin's metrics and spans, through @opentelemetry/api alone: without
 * an SDK in the application every call is the API's no-op. The meter is taken
 * when the plugin registers (the metrics API has no proxy: a meter taken
 * before the application's SDK is installed stays a no-op).
 */

/** The meter's and tracer's name. */
export const INSTRUMENTATION_NAME = 'fastify-active-conversations'

const STATEMENTS: StatementKind[] = ['agent', 'floor', 'group_metrics', 'group_members', 'visibility']
const POOLS: PoolName[] = ['primary', 'replica']
const LIVE_STREAMS: LiveStreamKind[] = ['agent', 'floor', 'metrics']
const LIVE_EVENTS: LiveEventName[] = ['view', 'remove', 'metrics', 'error']

/** The span names, one per statement: `<statement> statement` and `<statement> wait`. */
const spanName = (kind: StatementKind, what: 'statement' | 'wait'): string => `fastify-active-conversations ${kind} ${what}`

export type LiveEventName = 'view' | 'remove' | 'metrics' | 'error'
export type DropReason = 'slow_client' | 'token_expired' | 'view_gone'
export type RefuseReason = 'caller_limit' | 'gateway_limit' | 'unavailable'

/** What the change source tells of itself. */
export interface ChangeSourceState {
  /** Whether a slot decodes changes. */
  readonly streaming: boolean
  /** WAL bytes written past what the slot decoded. */
  backlogBytes: () => number
}

/** What the live views report. */
export interface LiveTelemetry {
  /** A stream opened; the returned function says it closed. */
  opened: (stream: LiveStreamKind) => () => void
  /** Events written to a stream. */
  sent: (stream: LiveStreamKind, events: ReadonlyArray<{ event: LiveEventName }>) => void
  dropped: (stream: LiveStreamKind, reason: DropReason) => void
  refused: (stream: LiveStreamKind, reason: RefuseReason) => void
  /** A decoded change for a watched stream arrived. */
  changed: () => void
  /** A refresh ended: its duration and views; the wait of its oldest change (ms), when changes caused it. */
  refreshed: (millis: number, views: number, lagMillis: number | null) => void
  /** Live views are on: their counters start at 0, and the change source's state is read at each collection. */
  start: (source: ChangeSourceState) => void
}

export interface Telemetry {
  /** A read on a pool, measured: its duration and failures by pool (each try of the read router counts). */
  onPool: <T>(kind: StatementKind, read: (pool: pg.Pool) => Promise<T>) => (pool: pg.Pool) => Promise<T>
  /** One statement for `requests` requests (or views), in a span of its own from the root context. */
  statement: <T>(kind: StatementKind, requests: number, run: () => Promise<T>) => Promise<T>
  /** createBatcher, with each statement's wait measured and, in a traced request, a wait span linked to its statement's span. */
  batcher: <In, Out>(kind: StatementKind, run: (inputs: In[]) => Promise<Out[]>, limits: BatchLimits) => (input: In) => Promise<Out>
  /** The read router's reports. */
  replica: { fallback: (reason: 'recovery_conflict' | 'unavailable') => void, available: (up: boolean) => void }
  live: LiveTelemetry
  /** Stops observing (the gateway closes). */
  close: () => void
}

interface Waiting<In> { input: In, at: number, span: Span | undefined }

export function createTelemetry ({ prefix, primary, replica }: { prefix: string, primary: pg.Pool, replica: pg.Pool | null }): Telemetry {
  const meter = metrics.getMeter(INSTRUMENTATION_NAME)
  const tracer = trace.getTracer(INSTRUMENTATION_NAME)
  const m = instrumentsOf(meter)

  // Every attribute set is built here once: recording allocates none.
  const base = { [ATTRIBUTE.prefix]: prefix }
  const attributes = <K extends string, V>(keys: K[], make: (key: K) => V) => Object.fromEntries(keys.map((key) => [key, make(key)])) as Record<K, V>
  const byStatement = attributes(STATEMENTS, (statement): Attributes => ({ ...base, [ATTRIBUTE.statement]: statement }))
  const byPool = attributes(STATEMENTS, (statement) => attributes(POOLS, (pool): Attributes => ({ ...byStatement[statement], [ATTRIBUTE.pool]: pool })))
  const byStream = attributes(LIVE_STREAMS, (stream): Attributes => ({ ...base, [ATTRIBUTE.liveStream]: stream }))
  const byReason = <R extends string>(reasons: R[]) => attributes(LIVE_STREAMS, (stream) => attributes(reasons, (reason): Attributes => ({ ...byStream[stream], [ATTRIBUTE.reason]: reason })))
  const dropped = byReason<DropReason>(['slow_client', 'token_expired', 'view_gone'])
  const refused = byReason<RefuseReason>(['caller_limit', 'gateway_limit', 'unavailable'])
  const byEvent = attributes(LIVE_STREAMS, (stream) => attributes(LIVE_EVENTS, (event): Attributes => ({ ...byStream[stream], [ATTRIBUTE.liveEvent]: event })))

  // Collected values: the pools' connections, and what the router and the change source report.
  const pools: Array<[PoolName, pg.Pool]> = replica === null ? [['primary', primary]] : [['primary', primary], ['replica', replica]]
  let replicaUp = true
  let source: ChangeSourceState | null = null
  const observeConnections = (result: BatchObservableResult): void => {
    for (const [name, pool] of pools) {
      const attributes = { ...base, [ATTRIBUTE.pool]: name }
      result.observe(m.poolConnections, pool.idleCount, { ...attributes, [ATTRIBUTE.connectionState]: 'idle' })
      result.observe(m.poolConnections, pool.totalCount - pool.idleCount, { ...attributes, [ATTRIBUTE.connectionState]: 'used' })
      result.observe(m.poolWaiting, pool.waitingCount, attributes)
    }
    if (replica !== null) result.observe(m.replicaAvailable, replicaUp ? 1 : 0, base)
    if (source !== null) {
      result.observe(m.liveSourceConnected, source.streaming ? 1 : 0, base)
      result.observe(m.liveSourceBacklog, source.backlogBytes(), base)
    }
  }
  const observed: Observable[] = [m.poolConnections, m.poolWaiting, m.replicaAvailable, m.liveSourceConnected, m.liveSourceBacklog]
  meter.addBatchObservableCallback(observeConnections, observed)

  async function statement<T> (kind: StatementKind, requests: number, run: () => Promise<T>, links?: Link[], started?: (span: Span) => void): Promise<T> {
    m.statementRequests.record(requests, byStatement[kind])
    const span = tracer.startSpan(spanName(kind, 'statement'), {
      root: true, // not inside whichever request happened to send the batch: linked to each
      links,
      attributes: { [ATTRIBUTE.statement]: kind, 'active_conversations.requests': requests }
    }, ROOT_CONTEXT)
    started?.(span)
    try {
      const result = await context.with(trace.setSpan(ROOT_CONTEXT, span), run)
      span.end()
      return result
    } catch (error) {
      const type = errorType(error)
      span.setAttribute(ATTRIBUTE.errorType, type)
      span.setStatus({ code: SpanStatusCode.ERROR, message: type }) // no driver message, no SQL
      span.end()
      throw error
    }
  }

  return {
    onPool: (kind, read) => async (target) => {
      const pool: PoolName = target === replica ? 'replica' : 'primary'
      trace.getActiveSpan()?.setAttribute(ATTRIBUTE.pool, pool) // the pool that answered is the last one set
      const start = performance.now()
      const took = (): void => { m.statementDuration.record((performance.now() - start) / 1000, byPool[kind][pool]) }
      try {
        const result = await read(target)
        took()
        return result
      } catch (error) {
        took()
        m.statementFailures.add(1, { ...byPool[kind][pool], [ATTRIBUTE.errorType]: errorType(error) })
        throw error
      }
    },
    statement,
    batcher: <In, Out>(kind: StatementKind, run: (inputs: In[]) => Promise<Out[]>, limits: BatchLimits): (input: In) => Promise<Out> => {
      const batch = createBatcher<Waiting<In>, Out>(async (waiting) => {
        // One record a statement, its oldest request's wait (the batch is in arrival order): a record a
        // request cost the metrics SDK's users 5 % of the agent route's rate (BENCHMARKS.md, Observability).
        m.statementWait.record((performance.now() - (waiting[0] as Waiting<In>).at) / 1000, byStatement[kind])
        const links: Link[] = []
        for (const { span } of waiting) if (span !== undefined) links.push({ context: span.spanContext() })
        const inputs = waiting.map((call) => call.input)
        return await statement(kind, waiting.length, async () => await run(inputs), links, (statementSpan) => {
          for (const { span } of waiting) {
            span?.addLink({ context: statementSpan.spanContext() })
            span?.end()
          }
        })
      }, limits)
      return async (input) => {
        // A wait span only inside a traced request: otherwise it would be a trace of its own per request.
        const parent = context.active()
        const span = trace.getSpan(parent) === undefined ? undefined : tracer.startSpan(spanName(kind, 'wait'), undefined, parent)
        return await batch({ input, at: performance.now(), span })
      }
    },
    replica: {
      fallback: (reason) => { m.replicaFallbacks.add(1, { ...base, [ATTRIBUTE.reason]: reason }) },
      available: (up) => { replicaUp = up }
    },
    live: {
      opened: (stream) => {
        m.liveStreams.add(1, byStream[stream])
        return () => { m.liveStreams.add(-1, byStream[stream]) }
      },
      sent: (stream, sent) => {
        const counts = new Map<LiveEventName, number>()
        for (const { event } of sent) counts.set(event, (counts.get(event) ?? 0) + 1)
        for (const [event, count] of counts) m.liveEvents.add(count, byEvent[stream][event])
      },
      dropped: (stream, reason) => { m.liveDropped.add(1, dropped[stream][reason]) },
      refused: (stream, reason) => { m.liveRefused.add(1, refused[stream][reason]) },
      changed: () => { m.liveChanges.add(1, base) },
      refreshed: (millis, views, lagMillis) => {
        m.liveRefreshDuration.record(millis / 1000, base)
        m.liveRefreshViews.record(views, base)
        if (lagMillis !== null) m.liveLag.record(lagMillis / 1000, base)
      },
      start: (changeSource) => {
        source = changeSource
        // Counters at 0 from the start, so that a rate or an alert on them has a series before the first event.
        for (const stream of LIVE_STREAMS) {
          m.liveStreams.add(0, byStream[stream])
          for (const attributes of Object.values(dropped[stream])) m.liveDropped.add(0, attributes)
          for (const attributes of Object.values(refused[stream])) m.liveRefused.add(0, attributes)
        }
      }
    },
    close: () => {
      meter.removeBatchObservableCallback(observeConnections, observed)
      source = null
    }
  }
}
