import type { FastifyInstance, FastifyPluginAsync } from 'fastify'
import sseModule, { type SSEPluginOptions } from '@fastify/sse'
import type pg from 'pg'
import type { ResolvedOptions } from '../options.js'
import type { Authentication } from '../routes/parts.js'
import type { AgentViewRequest, AgentViewResult } from '../sql/views.js'
import type { LiveTelemetry } from '../telemetry/index.js'
import { createHub, type LiveReads } from './hub.js'
import { listenForChanges } from './listener.js'
import { registerLiveRoutes } from './routes.js'

// The package's module.exports is the plugin wrapped by fastify-plugin (its hook must reach our routes);
// its types declare an ES default export, which under NodeNext names the exports object instead.
const fastifySse = sseModule as unknown as FastifyPluginAsync<SSEPluginOptions>

/** How long registration waits for the listener's first connection. */
const LISTENER_WAIT_MILLIS = 1000

export interface LiveDependencies extends Authentication {
  settings: NonNullable<ResolvedOptions['live']>
  /** The listening connection's settings. */
  listenerConfig: pg.ClientConfig
  reads: LiveReads
  /** A stream's first view: streams opening together read them together, as the agent route's requests do. */
  firstViews: (request: AgentViewRequest) => Promise<AgentViewResult>
  telemetry: LiveTelemetry
}

/**
 * Live views: one listening connection (lib/live/listener.ts), the watches and
 * their refreshes (lib/live/hub.ts), and the two `/events` routes
 * (lib/live/routes.ts), all ended when the gateway closes.
 */
export async function registerLive (fastify: FastifyInstance, { settings, listenerConfig, reads, firstViews, telemetry, ...authentication }: LiveDependencies): Promise<void> {
  await fastify.register(fastifySse, { heartbeatInterval: settings.heartbeatMillis })

  const hub = createHub({ reads, coalesceMillis: settings.coalesceMillis, retryMillis: settings.retryMillis, metricsIntervalMillis: settings.metricsIntervalMillis, log: fastify.log, telemetry })
  const listener = listenForChanges(listenerConfig, fastify.log, {
    onReady: () => { hub.refreshAll() },
    onDown: () => { hub.unavailableAll() },
    onChange: (change) => { hub.change(change) }
  })
  telemetry.start(listener)
  fastify.addHook('onClose', async () => {
    hub.close()
    await listener.close()
  })
  // Registration waits a little for the listener, so that streams open at once; never long: streams answer
  // 503 until it listens, and it keeps trying.
  let waited: NodeJS.Timeout | undefined
  await Promise.race([listener.started, new Promise((resolve) => { waited = setTimeout(resolve, LISTENER_WAIT_MILLIS) })])
  clearTimeout(waited)

  registerLiveRoutes(fastify, {
    ...authentication,
    hub,
    listening: () => listener.ready,
    readView: firstViews,
    readFloor: reads.floor,
    readGroupMetrics: reads.groupMetrics,
    stream: { retryMillis: settings.retryMillis, maxUnsentBytes: settings.maxUnsentBytes },
    maxStreams: settings.maxStreams,
    maxStreamsPerCaller: settings.maxStreamsPerCaller,
    telemetry
  })
}
