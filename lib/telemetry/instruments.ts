import type { Counter, Histogram, Meter, ObservableGauge, ObservableUpDownCounter, UpDownCounter } from '@opentelemetry/api'

/*
 * Every metric the plugin records, declared once: the code records through
 * these, and README's "Observability" table is checked against this list.
 * Attributes are few and bounded: never a stream, agent, group or
 * conversation id; the route prefix tells registrations apart.
 */

/** The attributes, by what they say. */
export const ATTRIBUTE = {
  /** The plugin's route prefix in the gateway ('' at the root). */
  prefix: 'active_conversations.prefix',
  /** Which statement: agent, floor, group_metrics, group_members, visibility. */
  statement: 'active_conversations.statement',
  /** Which pool ran it: primary or replica. */
  pool: 'active_conversations.pool',
  /** Why a statement failed (see errorType in lib/database.ts). */
  errorType: 'error.type',
  /** idle or used. */
  connectionState: 'active_conversations.connection.state',
  /** Which live stream: agent, floor or metrics. */
  liveStream: 'active_conversations.live.stream',
  /** view, remove, metrics or error. */
  liveEvent: 'active_conversations.live.event',
  /** Why it happened (each instrument lists its reasons). */
  reason: 'active_conversations.reason'
} as const

export type StatementKind = 'agent' | 'floor' | 'group_metrics' | 'group_members' | 'visibility'
export type PoolName = 'primary' | 'replica'
export type LiveStreamKind = 'agent' | 'floor' | 'metrics'

interface Descriptor<K extends string> {
  name: string
  instrument: K
  unit: string
  attributes: Array<keyof typeof ATTRIBUTE>
  description: string
}

/** Seconds: statements, waits and refreshes from a tenth of a millisecond to ten seconds. */
const SECONDS_BUCKETS = [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10]
/** Counts of requests or views: a statement answers 1 to 1,000. */
const COUNT_BUCKETS = [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000]

export const INSTRUMENTS = {
  statementDuration: {
    name: 'active_conversations.statement.duration',
    instrument: 'histogram',
    unit: 's',
    attributes: ['prefix', 'statement', 'pool'],
    description: 'How long a statement took on a pool, from sending it to its answer (each try: a statement the replica could not answer counts once on each pool).'
  },
  statementFailures: {
    name: 'active_conversations.statement.failures',
    instrument: 'counter',
    unit: '{statement}',
    attributes: ['prefix', 'statement', 'pool', 'errorType'],
    description: 'Statements that failed, by `error.type`: `unavailable`, `timeout` (statement or query timeout), `pool_timeout` (no connection within `connectionTimeoutMillis`), `recovery_conflict`, `prepared_statement_mismatch` (a transaction-mode pooler), `other`.'
  },
  statementRequests: {
    name: 'active_conversations.statement.requests',
    instrument: 'histogram',
    unit: '{request}',
    attributes: ['prefix', 'statement'],
    description: 'Requests (or, for a live refresh, views) one statement answered: how much the batching shares.'
  },
  statementWait: {
    name: 'active_conversations.statement.wait',
    instrument: 'histogram',
    unit: 's',
    attributes: ['prefix', 'statement'],
    description: 'How long a statement\'s oldest request waited for it to be sent, the longest wait of the requests it answered: the rest of the request\'s event-loop turn, and a free slot among `maxConcurrentStatements`.'
  },
  poolConnections: {
    name: 'active_conversations.pool.connections',
    instrument: 'observableUpDownCounter',
    unit: '{connection}',
    attributes: ['prefix', 'pool', 'connectionState'],
    description: 'The pools\' connections, `idle` or `used`.'
  },
  poolWaiting: {
    name: 'active_conversations.pool.waiting',
    instrument: 'observableUpDownCounter',
    unit: '{statement}',
    attributes: ['prefix', 'pool'],
    description: 'Statements waiting for a pool connection: above 0 for long, the pool is too small or the database too slow.'
  },
  replicaAvailable: {
    name: 'active_conversations.replica.available',
    instrument: 'observableGauge',
    unit: '1',
    attributes: ['prefix'],
    description: 'With `readPool`: 1 while reads go to the replica, 0 while they go to the primary because it failed to answer (every `readPoolRetryMillis` one read tries it).'
  },
  replicaFallbacks: {
    name: 'active_conversations.replica.fallbacks',
    instrument: 'counter',
    unit: '{statement}',
    attributes: ['prefix', 'reason'],
    description: 'With `readPool`: statements the replica did not answer, sent to the primary; `reason`: `recovery_conflict` (cancelled by replay) or `unavailable`.'
  },
  liveStreams: {
    name: 'active_conversations.live.streams',
    instrument: 'upDownCounter',
    unit: '{stream}',
    attributes: ['prefix', 'liveStream'],
    description: 'Live streams open now.'
  },
  liveEvents: {
    name: 'active_conversations.live.events',
    instrument: 'counter',
    unit: '{event}',
    attributes: ['prefix', 'liveStream', 'liveEvent'],
    description: 'Events written to live streams, by event (`view`, `remove`, `metrics`, `error`).'
  },
  liveDropped: {
    name: 'active_conversations.live.dropped',
    instrument: 'counter',
    unit: '{stream}',
    attributes: ['prefix', 'liveStream', 'reason'],
    description: 'Open streams the gateway ended; `reason`: `slow_client` (unsent bytes passed `live.maxUnsentBytes`), `token_expired`, `view_gone` (the agent deleted or out of the token\'s groups, or too many groups).'
  },
  liveRefused: {
    name: 'active_conversations.live.refused',
    instrument: 'counter',
    unit: '{stream}',
    attributes: ['prefix', 'liveStream', 'reason'],
    description: 'Streams refused before they opened; `reason`: `caller_limit` (429, `live.maxStreamsPerCaller`), `gateway_limit` (503, `live.maxStreams`), `unavailable` (503, the database).'
  },
  liveChanges: {
    name: 'active_conversations.live.changes',
    instrument: 'counter',
    unit: '{change}',
    attributes: ['prefix'],
    description: 'Decoded changes (one per transaction and stream) received for streams this gateway watches.'
  },
  liveRefreshDuration: {
    name: 'active_conversations.live.refresh.duration',
    instrument: 'histogram',
    unit: 's',
    attributes: ['prefix'],
    description: 'How long a refresh took: reading every view a window\'s changes touched, and writing the events.'
  },
  liveRefreshViews: {
    name: 'active_conversations.live.refresh.views',
    instrument: 'histogram',
    unit: '{view}',
    attributes: ['prefix'],
    description: 'Views one refresh read: agent views (each floor\'s agents counted) and queue metrics answers.'
  },
  liveLag: {
    name: 'active_conversations.live.lag',
    instrument: 'histogram',
    unit: 's',
    attributes: ['prefix'],
    description: 'From the commit of a refresh\'s oldest change (its commit time in the WAL, on PostgreSQL\'s clock) to its events written: decoding, coalescing (`live.coalesceMillis`), waiting for a running refresh, and the refresh.'
  },
  liveSourceConnected: {
    name: 'active_conversations.live.source.connected',
    instrument: 'observableGauge',
    unit: '1',
    attributes: ['prefix'],
    description: '1 while a replication slot decodes changes; 0 without one (no stream open, the slot being made or lost, or logical decoding unavailable): streams are then polled every `live.pollMillis`.'
  },
  liveSourceBacklog: {
    name: 'active_conversations.live.source.backlog',
    instrument: 'observableGauge',
    unit: 'By',
    attributes: ['prefix'],
    description: 'WAL bytes PostgreSQL has written past what this gateway\'s slot decoded, as of the server\'s last keepalive: it grows when the gateway falls behind, and the slot holds that much WAL.'
  }
} as const satisfies Record<string, Descriptor<'histogram' | 'counter' | 'upDownCounter' | 'observableGauge' | 'observableUpDownCounter'>>

type Instruments = typeof INSTRUMENTS
type Created<K> = K extends 'histogram' ? Histogram
  : K extends 'counter' ? Counter
    : K extends 'upDownCounter' ? UpDownCounter
      : K extends 'observableGauge' ? ObservableGauge
        : ObservableUpDownCounter
export type CreatedInstruments = { [N in keyof Instruments]: Created<Instruments[N]['instrument']> }

// Each meter's instruments are made once, however many registrations share it.
const made = new WeakMap<Meter, CreatedInstruments>()

/** The instruments on this meter. */
export function instrumentsOf (meter: Meter): CreatedInstruments {
  let instruments = made.get(meter)
  if (instruments !== undefined) return instruments
  const create = ({ name, instrument, unit, description }: Descriptor<string>): unknown => {
    const options = { unit, description }
    switch (instrument) {
      case 'histogram': return meter.createHistogram(name, { ...options, advice: { explicitBucketBoundaries: unit === 's' ? SECONDS_BUCKETS : COUNT_BUCKETS } })
      case 'counter': return meter.createCounter(name, options)
      case 'upDownCounter': return meter.createUpDownCounter(name, options)
      case 'observableGauge': return meter.createObservableGauge(name, options)
      default: return meter.createObservableUpDownCounter(name, options)
    }
  }
  instruments = Object.fromEntries(Object.entries(INSTRUMENTS).map(([key, descriptor]) => [key, create(descriptor)])) as CreatedInstruments
  made.set(meter, instruments)
  return instruments
}
