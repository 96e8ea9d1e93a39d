import type { FastifyInstance, FastifyPluginAsync } from 'fastify'
import sseModule, { type SSEPluginOptions } from '@fastify/sse'
import type pg from 'pg'
import type { ResolvedOptions } from '../options.js'
import type { Authentication } from '../routes/parts.js'
import type { AgentViewRequest, AgentViewResult } from '../sql/views.js'
import type { LiveTelemetry } from '../telemetry/index.js'
import { createHub, type LiveReads } from './hub.js'
import { createChangeSource } from './source.js'
import { registerLiveRoutes } from './routes.js'

// The package's module.exports is the plugin wrapped by fastify-plugin (its hook must reach our routes);
// its types declare an ES default export, which under NodeNext names the exports object instead.
const fastifySse = sseModule as unknown as FastifyPluginAsync<SSEPluginOptions>

/** How long registration waits for its check of logical decoding (it says in one warning why the views will be polled). */
const CHECK_WAIT_MILLIS = 1000
/** How long a stream's first view waits for a slot being made; longer (a long transaction holds it up), it is read and polled until the slot is up. */
const FIRST_VIEW_WAIT_MILLIS = 1000

export interface LiveDependencies extends Authentication {
  settings: NonNullable<ResolvedOptions['live']>
  /** The replication connection's settings. */
  replicationConfig: pg.ClientConfig
  reads: LiveReads
  /** A stream's first view: streams opening together read them together, as the agent route's requests do. */
  firstViews: (request: AgentViewRequest) => Promise<AgentViewResult>
  telemetry: LiveTelemetry
}

/**
 * Live views: the change source (lib/live/source.ts: a replication slot while
 * streams are open, or polling), the watches and their refreshes
 * (lib/live/hub.ts), and the three `/events` routes (lib/live/routes.ts), all
 * ended when the gateway closes.
 */
export async function registerLive (fastify: FastifyInstance, { settings, replicationConfig, reads, firstViews, telemetry, ...authentication }: LiveDependencies): Promise<void> {
  await fastify.register(fastifySse, { heartbeatInterval: settings.heartbeatMillis })

  // The source's events reach the hub only once a stream is open (after both are made).
  const source = createChangeSource({
    config: replicationConfig,
    slotLingerMillis: settings.slotLingerMillis,
    slotWaitMillis: settings.slotWaitMillis,
    pollMillis: settings.pollMillis,
    log: fastify.log,
    events: {
      onChanges: (changes) => { for (const change of changes) hub.change(change) },
      onStreaming: () => {
        hub.poll(false)
        hub.refreshAll()
      },
      onPolling: () => { hub.poll(true) }
    }
  })
  const hub = createHub({
    reads,
    coalesceMillis: settings.coalesceMillis,
    retryMillis: settings.retryMillis,
    metricsIntervalMillis: settings.metricsIntervalMillis,
    pollMillis: settings.pollMillis,
    onWatching: (active) => { source.watching(active) },
    log: fastify.log,
    telemetry
  })
  hub.poll(true) // until a slot is up
  telemetry.start(source)
  fastify.addHook('onClose', async () => {
    hub.close()
    await source.close()
  })
  // Registration waits a little for its check, so that its warning comes with it; never long.
  let waited: NodeJS.Timeout | undefined
  await Promise.race([source.checked, new Promise((resolve) => { waited = setTimeout(resolve, CHECK_WAIT_MILLIS) })])
  clearTimeout(waited)

  registerLiveRoutes(fastify, {
    ...authentication,
    hub,
    settled: async () => { await source.settled(FIRST_VIEW_WAIT_MILLIS) },
    readView: firstViews,
    readFloor: reads.floor,
    readGroupMetrics: reads.groupMetrics,
    stream: { retryMillis: settings.retryMillis, maxUnsentBytes: settings.maxUnsentBytes },
    maxStreams: settings.maxStreams,
    maxStreamsPerCaller: settings.maxStreamsPerCaller,
    telemetry
  })
}
