import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox'
import { Type } from '@sinclair/typebox'
import { FloorParams, FloorStreamQuerystring, GroupMetricsQuerystring, MAX_FLOOR_LIMIT, Params, Querystring } from '../../schemas/request.js'
import { GroupMetrics } from '../../schemas/response.js'
import { authorizeFloor, type Caller } from '../auth.js'
import { AgentViewHead, FloorAgentHead, withLists, type Serialize } from '../routes/bodies.js'
import {
  AgentNotFoundError, DatabaseUnavailableError, errorResponse, ForbiddenError, InvalidRequestError,
  StreamsFullError, TooManyStreamsError, UnauthorizedError
} from '../errors.js'
import { securityRequirement } from '../openapi.js'
import type { AgentViewRequest, AgentViewResult, AgentViewText, FloorPage, FloorRequest } from '../sql/views.js'
import type { GroupMetricsRequest, GroupMetricsResult } from '../sql/group-metrics.js'
import { agentErrors, authenticate, authorizeAgent, commonErrors, errorBody, floorErrors, groupMetricsErrors, operationId, splitAgentGroupIds, TOO_MANY_GROUPS, type Authentication } from '../routes/parts.js'
import { ROUTE_URL } from '../routes/agent.js'
import { FLOOR_ROUTE_URL } from '../routes/floor.js'
import { GROUP_METRICS_ROUTE_URL, groupMetricsOrTooMany, groupMetricsRequest } from '../routes/group-metrics.js'
import { floorRequest, type Hub, type MetricsUpdate, type MetricsWatch, type ViewUpdate, type Watch } from './hub.js'
import { expireAt, streamCounter } from './limits.js'
import { LiveStream, type LiveEvent, type StreamSettings } from './stream.js'
import { isDatabaseUnavailable } from '../database.js'
import type { LiveStreamKind, LiveTelemetry } from '../telemetry/index.js'

export const AGENT_EVENTS_URL = `${ROUTE_URL}/events`
export const FLOOR_EVENTS_URL = `${FLOOR_ROUTE_URL}/events`
export const METRICS_EVENTS_URL = `${GROUP_METRICS_ROUTE_URL}/events`

export interface LiveRouteDependencies extends Authentication {
  hub: Hub
  /** Resolves once the change source has a slot up, cannot make one, or has been waited on long enough (lib/live/source.ts). */
  settled: () => Promise<void>
  readView: (request: AgentViewRequest) => Promise<AgentViewResult>
  readFloor: (request: FloorRequest) => Promise<FloorPage>
  readGroupMetrics: (request: GroupMetricsRequest) => Promise<GroupMetricsResult>
  stream: StreamSettings
  maxStreams: number
  maxStreamsPerCaller: number
  telemetry: LiveTelemetry
}

/** A stream's first views (or figures), and when they were read. */
interface First<U> { readAt: number, updates: U[] }

const eventStream = (description: string) => ({
  description,
  content: { 'text/event-stream': { schema: Type.String({ description: 'Server-sent events (see the operation\'s description).' }) } }
})

/** The errors both streams answer before they open, for the docs: the GET routes', and the streams' limits. */
const streamErrors = {
  ...commonErrors,
  429: errorBody('Too many open streams for this token\'s subject (`live.maxStreamsPerCaller`), or too many requests.', new TooManyStreamsError('20')),
  503: errorBody('Database unavailable, or this gateway serves `live.maxStreams` streams already.', new StreamsFullError())
}

const STREAM_RULES =
  'Authentication and authorization are those of the GET route, from the same headers (`auth`, or `Authorization: Bearer`; never ' +
  'the URL), and fail with its JSON error bodies before any stream opens. The stream is `text/event-stream`: `retry:` once, a ' +
  'comment (`: heartbeat`) at a fixed interval, and events whose `id` is `<readAt>-<n>`: `readAt` is the instant (milliseconds ' +
  'since the epoch) at which the durations in the data (`engagementTime`, `waitTime`) were right; a client adds the whole seconds ' +
  'elapsed since then to keep them ticking. `event: error` carries an error body: 503 when the database is unavailable (the stream ' +
  'stays open and a fresh view follows when it is back); 401 when the token expires, 403 or 404 when the view is no longer ' +
  'the caller\'s to see: these end the stream.'

/** The two live streams: an agent's view, and a floor's views, pushed as they change. */
export function registerLiveRoutes (fastify: FastifyInstance, deps: LiveRouteDependencies): void {
  const { hub, callers, verifyToken, telemetry } = deps
  const counter = streamCounter(deps.maxStreams, deps.maxStreamsPerCaller)
  const open = new Set<LiveStream>()
  // A gateway's close ends every stream (server.close waits for open responses).
  fastify.addHook('preClose', async () => { for (const stream of open) stream.end() })

  // Each view is serialized once, however many streams it goes to (one read answers them all).
  const serializers: { agent?: Serialize, floor?: Serialize, metrics?: Serialize } = {}
  const agentBodies = new WeakMap<AgentViewText, string>()
  const floorItems = new WeakMap<AgentViewText, string>()
  const agentBody = (view: AgentViewText): string => memo(agentBodies, view, () => withLists(serializers.agent as Serialize, view))
  const floorItem = (agentId: string, view: AgentViewText): string =>
    memo(floorItems, view, () => withLists(serializers.floor as Serialize, { agentId, ...view } as unknown as AgentViewText))

  /** Opens the stream once the first views are read, and keeps it until the client, the token or the gateway ends it. */
  async function serve<W extends Watch | MetricsWatch, U extends { readAt: number }> (
    kind: LiveStreamKind, request: FastifyRequest, reply: FastifyReply, watch: Omit<W, 'deliver' | 'unavailable'>,
    first: () => Promise<First<U>>,
    /** The events of new views; `end` ends the stream with an error body (the view is no longer the caller's). */
    toEvents: (updates: U[], end: (error: FastifyError) => void) => LiveEvent[],
    onUnavailable: () => void
  ): Promise<void> {
    const caller = callers.get(request) as Caller
    let release: () => void
    try {
      release = counter.take(caller)
    } catch (error) {
      telemetry.refused(kind, error instanceof TooManyStreamsError ? 'caller_limit' : 'gateway_limit')
      throw error
    }
    let stream: LiveStream | null = null
    const end = (error: FastifyError): void => {
      telemetry.dropped(kind, 'view_gone')
      ;(stream as LiveStream).end(errorResponse(error))
    }
    let early: U[] = [] // refreshed while the first views were read: sent after them when newer
    let lastReadAt = 0
    const live = {
      ...watch,
      deliver (updates: U[]) {
        /* c8 ignore next: a refresh that lands while the first views are read, a race no test can time */
        if (stream === null) { early.push(...updates); return }
        // A refresh that was read before the last one sent is older: never send it after.
        const fresh = updates.filter((update) => update.readAt >= lastReadAt)
        if (fresh.length === 0) return
        lastReadAt = Math.max(...fresh.map((update) => update.readAt))
        stream.send(toEvents(fresh, end))
      },
      unavailable () {
        /* c8 ignore next: the same race; the first read then fails (503) or is fresh */
        if (stream === null) return
        stream.send([{ event: 'error', data: JSON.stringify(errorResponse(new DatabaseUnavailableError())), readAt: Date.now() }])
        onUnavailable()
      }
    } as unknown as W & { deliver: (updates: U[]) => void }
    // A client that leaves before its stream opens frees its place at once, not after the first read (which may wait on a slot or a lock).
    const leftEarly = (): void => { hub.remove(live); release() }
    reply.raw.once('close', leftEarly)
    try {
      hub.add(live) // before the first read: a change committed after it reaches this stream
      await deps.settled() // the first stream's slot: its first view is read after its consistent point
      live.firstReadAt = performance.now()
      const { readAt, updates } = await first()
      if (request.raw.socket.destroyed) { // the client left while its first views were read: nothing to open
        leftEarly()
        reply.hijack()
        return
      }
      reply.raw.off('close', leftEarly)
      const cancelExpiry = expireAt(caller.expiresAt * 1000, () => {
        telemetry.dropped(kind, 'token_expired')
        ;(stream as LiveStream).end(errorResponse(new UnauthorizedError()))
      })
      const closed = telemetry.opened(kind)
      const report = { sent: (events: LiveEvent[]) => { telemetry.sent(kind, events) }, slowClient: () => { telemetry.dropped(kind, 'slow_client') } }
      const opened = stream = new LiveStream(reply, deps.stream, report, () => {
        open.delete(opened)
        hub.remove(live)
        release()
        cancelExpiry()
        closed()
      })
      open.add(opened)
      lastReadAt = readAt
      opened.send(toEvents(updates, end))
      live.deliver(early)
      early = []
    } catch (error) {
      hub.remove(live)
      release()
      if (error instanceof DatabaseUnavailableError || isDatabaseUnavailable(error)) telemetry.refused(kind, 'unavailable')
      throw error
    }
  }

  const typed = fastify.withTypeProvider<TypeBoxTypeProvider>()

  typed.route({
    method: 'GET',
    url: AGENT_EVENTS_URL,
    sse: { kind: 'manual' }, // always a stream; the handler opens it after authorization
    schema: {
      summary: 'Active conversations of an agent, pushed as they change',
      tags: ['Live'],
      operationId: operationId(fastify.prefix, 'streamAgentActiveConversations'),
      security: securityRequirement,
      description:
        'The agent route\'s answer, kept fresh: first `event: view` with exactly the GET route\'s 200 body, then the whole body again ' +
        `whenever anything in it changed (no diffs to apply). ${STREAM_RULES}`,
      params: Params,
      querystring: Querystring,
      response: {
        200: eventStream('`event: view` (data: the GET route\'s 200 body), `event: error` (data: an error body).'),
        ...streamErrors,
        ...agentErrors
      }
    },
    onRequest: authenticate({ callers, verifyToken }),
    preValidation: splitAgentGroupIds,
    handler: async (request, reply) => {
      const { params, query } = request
      const scope = authorizeAgent(callers.get(request) as Caller, params, query)
      serializers.agent ??= reply.compileSerializationSchema(AgentViewHead, '200')
      const agent = { agentId: params.agentId, agentGroups: scope.agentGroups }
      let shown: string | null = null // the last view sent, durations aside
      await serve<Watch, ViewUpdate>('agent', request, reply as FastifyReply, { streamId: params.streamId, source: query.source, conversationGroups: scope.conversationGroups, agent },
        async () => {
          const readAt = Date.now()
          const view = await deps.readView({ streamId: params.streamId, agentId: params.agentId, source: query.source, scope })
          if (view === null) throw new AgentNotFoundError()
          if (view === 'forbidden') throw new ForbiddenError("The agent is outside the token's agentGroupIds")
          return { readAt, updates: [{ agentId: params.agentId, view, readAt }] }
        },
        (updates, end) => {
          const events: LiveEvent[] = []
          for (const { view, readAt, quiet } of updates) {
            if (view === null || view === 'forbidden') {
              end(view === null ? new AgentNotFoundError() : new ForbiddenError("The agent is outside the token's agentGroupIds"))
              return []
            }
            const body = agentBody(view)
            const changed = withoutDurations(body)
            if (quiet === true && changed === shown) continue
            shown = changed
            events.push({ event: 'view', data: body, readAt })
          }
          return events
        },
        () => { shown = null }) // after a 503 event the screen is told the view again, changed or not
    }
  })

  typed.route({
    method: 'GET',
    url: FLOOR_EVENTS_URL,
    sse: { kind: 'manual' },
    schema: {
      summary: 'Active conversations of every agent on a floor, pushed as they change',
      tags: ['Live'],
      operationId: operationId(fastify.prefix, 'streamFloorActiveConversations'),
      security: securityRequirement,
      description:
        `The floor route's agents, whole (at most ${MAX_FLOOR_LIMIT}; more is a 400), kept fresh: first one \`event: view\` per agent ` +
        'with exactly that agent\'s floor item (`{ agentId, ... }`), then an agent\'s item again whenever anything in it changed, and ' +
        '`event: remove` (data: `{"agentId": …}`) when an agent leaves the floor (deleted, or out of the floor\'s groups). An agent ' +
        `who joins it gets its first \`view\`. ${STREAM_RULES}`,
      params: FloorParams,
      querystring: FloorStreamQuerystring,
      response: {
        200: eventStream('`event: view` (data: a floor item), `event: remove` (data: `{"agentId": …}`), `event: error` (data: an error body).'),
        ...streamErrors,
        400: errorBody('Invalid input, or a floor of more agents than a stream carries; the message says which.',
          new InvalidRequestError(`The floor has more than ${MAX_FLOOR_LIMIT} agents: narrow it with agentGroupId`)),
        ...floorErrors
      }
    },
    onRequest: authenticate({ callers, verifyToken }),
    preValidation: splitAgentGroupIds,
    handler: async (request, reply) => {
      const { params, query } = request
      const { floorGroups, conversationGroups } = authorizeFloor(callers.get(request) as Caller, params, query)
      serializers.floor ??= reply.compileSerializationSchema(FloorAgentHead, '200')
      const agents = new Set<string>()
      const shown = new Map<string, string>() // each agent's last item sent, durations aside
      const watch = { streamId: params.streamId, source: query.source, conversationGroups, floor: { floorGroups, agents } }
      await serve<Watch, ViewUpdate>('floor', request, reply as FastifyReply, watch,
        async () => {
          const readAt = Date.now()
          const page = await deps.readFloor(floorRequest(watch as Watch))
          if (page.more) throw new InvalidRequestError(`The floor has more than ${MAX_FLOOR_LIMIT} agents: narrow it with agentGroupId`)
          return { readAt, updates: page.agents.map(({ agentId, ...view }) => ({ agentId, view, readAt })) }
        },
        (updates) => {
          const events: LiveEvent[] = []
          for (const { agentId, view, readAt, quiet } of updates) {
            if (view === null || view === 'forbidden') {
              shown.delete(agentId)
              if (agents.delete(agentId)) events.push({ event: 'remove', data: JSON.stringify({ agentId }), readAt })
              continue
            }
            agents.add(agentId)
            const item = floorItem(agentId, view)
            const changed = withoutDurations(item)
            if (quiet === true && shown.get(agentId) === changed) continue
            shown.set(agentId, changed)
            events.push({ event: 'view', data: item, readAt })
          }
          return events
        },
        () => { shown.clear() })
    }
  })

  // Each answer is serialized once, however many streams it goes to.
  const metricsBodies = new WeakMap<GroupMetrics, string>()
  typed.route({
    method: 'GET',
    url: METRICS_EVENTS_URL,
    sse: { kind: 'manual' },
    schema: {
      summary: 'Queue metrics of agent groups, pushed as they change',
      tags: ['Live'],
      operationId: operationId(fastify.prefix, 'streamAgentGroupsMetrics'),
      security: securityRequirement,
      description:
        'The queue metrics route\'s answer, kept fresh: first `event: metrics` with exactly the GET route\'s 200 body, then the whole ' +
        'body again whenever a change in the stream may have changed it (any conversation, agent, membership), at most once per ' +
        '`live.coalesceMillis`, and at least every `live.metricsIntervalMillis` (the metrics window moves with the clock); a body ' +
        `that did not change is not sent again. \`longestWaitTime\` is right at the event's \`readAt\`. ${STREAM_RULES}`,
      params: FloorParams,
      querystring: GroupMetricsQuerystring,
      response: {
        200: eventStream('`event: metrics` (data: the GET route\'s 200 body), `event: error` (data: an error body).'),
        ...streamErrors,
        ...groupMetricsErrors
      }
    },
    onRequest: authenticate({ callers, verifyToken }),
    preValidation: splitAgentGroupIds,
    handler: async (request, reply) => {
      const metrics = groupMetricsRequest(callers.get(request) as Caller, request.params, request.query)
      serializers.metrics ??= reply.compileSerializationSchema(GroupMetrics, '200') as Serialize
      let last = '' // the last body sent: an unchanged one is not sent again (but after an error event)
      await serve<MetricsWatch, MetricsUpdate>('metrics', request, reply as FastifyReply, { streamId: request.params.streamId, metrics },
        async () => {
          const readAt = Date.now()
          return { readAt, updates: [{ metrics: groupMetricsOrTooMany(await deps.readGroupMetrics(metrics)), readAt }] }
        },
        (updates, end) => {
          const events: LiveEvent[] = []
          for (const { metrics: result, readAt, quiet } of updates) {
            if (result === 'too-many') { // groups were added to the stream while it was open
              end(new InvalidRequestError(TOO_MANY_GROUPS))
              return []
            }
            const body = memo(metricsBodies, result, () => (serializers.metrics as Serialize)(result))
            if (body === last || (quiet === true && withoutDurations(body) === withoutDurations(last))) continue
            last = body
            events.push({ event: 'metrics', data: body, readAt })
          }
          return events
        },
        () => { last = '' }) // after a 503 event the screen is told the figures again, changed or not
    }
  })
}

/**
 * A body without the durations that clients tick from `readAt`: a view read
 * by a poll is sent only when this changed (a duration alone is no news).
 */
function withoutDurations (body: string): string {
  return body.replace(/"(engagementTime|waitTime|longestWaitTime)":[-\d.e+]+/g, '')
}

function memo<V extends object> (cache: WeakMap<V, string>, view: V, make: () => string): string {
  let text = cache.get(view)
  if (text === undefined) cache.set(view, text = make())
  return text
}
