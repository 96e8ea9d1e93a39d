import type { FastifyPluginAsync, FastifyRequest } from 'fastify'
import fastifyJwt, { type FastifyJWTOptions, type JWT } from '@fastify/jwt'
import fastifyRateLimit from '@fastify/rate-limit'
import { ErrorResponse } from '../schemas/error.js'
import { Skill } from '../schemas/response.js'
import { callerKey, type Caller } from './auth.js'
import { createPool, warnOfMissingSessionSettings } from './database.js'
import { errorHandler, RateLimitedError } from './errors.js'
import { resolveOptions, VERIFIED_TOKENS_CACHED, type ActiveConversationsOptions, type ResolvedJwt } from './options.js'
import { registerFloorRoute } from './routes/floor.js'
import { registerGroupMetricsRoute } from './routes/group-metrics.js'
import { registerRoute } from './routes/agent.js'
import { registerLive } from './live/index.js'
import { createTelemetry } from './telemetry/index.js'
import { createStatements } from './statements.js'

// Each registration verifies with its own @fastify/jwt under a namespace of its
// own, so it never collides with the gateway's @fastify/jwt or another registration.
let registrations = 0

/**
 * GET /public/:streamId/analytics/manager/agent/:agentId/active-conversations (one
 * agent), GET /public/:streamId/analytics/manager/agents/active-conversations
 * (a floor of agents) and GET /public/:streamId/analytics/manager/agent-groups/metrics
 * (the groups' queues), with their live streams, encapsulated: nothing it
 * registers (JWT, schemas, error handler) leaks into the gateway.
 */
const activeConversations: FastifyPluginAsync<ActiveConversationsOptions> = async (fastify, options) => {
  const { database, readPool, readPoolRetryMillis, preparedStatements, jwt, metricsWindowSeconds, rateLimit, batching, live } = resolveOptions(options)

  let pool
  if ('pool' in database) {
    pool = database.pool
    await warnOfMissingSessionSettings(pool, 'pool', fastify.log)
  } else {
    pool = createPool(database.connectionString, database.settings, (err) => {
      fastify.log.warn({ err }, 'fastify-active-conversations: idle database connection lost')
    })
    const ownPool = pool
    fastify.addHook('onClose', async () => { await ownPool.end() })
    if (!database.settings.startupParameters) await warnOfMissingSessionSettings(pool, 'connectionString', fastify.log)
  }

  const namespace = `activeConversations${++registrations}`
  await fastify.register(fastifyJwt, jwtPluginOptions(jwt, namespace))
  const verifier = (fastify.jwt as unknown as Record<string, JWT>)[namespace] as JWT

  fastify.addSchema(Skill)
  fastify.addSchema(ErrorResponse)
  fastify.setErrorHandler(errorHandler)

  // Each request's verified caller, from authentication (onRequest) to the rate limit and the handler.
  const callers = new WeakMap<FastifyRequest, Caller>()
  if (rateLimit !== null) {
    await fastify.register(fastifyRateLimit, {
      max: rateLimit.max,
      timeWindow: rateLimit.timeWindowMillis,
      hook: 'preHandler', // after authentication: the key is the verified token's, never a header a client can forge
      keyGenerator: (request) => callerKey(callers.get(request) as Caller),
      errorResponseBuilder: (_request, context) => new RateLimitedError(context.after)
    })
  }
  // Metrics and spans through @opentelemetry/api: no-ops unless the application installed an SDK first.
  const telemetry = createTelemetry({ prefix: fastify.prefix, primary: pool, replica: readPool })
  fastify.addHook('onClose', async () => { telemetry.close() })
  const statements = createStatements({ primary: pool, replica: readPool, readPoolRetryMillis, preparedStatements, metricsWindowSeconds, batching, telemetry, log: fastify.log })
  const authentication = { callers, verifyToken: (token: string) => verifier.verify(token) }
  registerRoute(fastify, { ...authentication, readAgentView: statements.agentView })
  registerFloorRoute(fastify, { ...authentication, readPage: statements.floorPage })
  registerGroupMetricsRoute(fastify, { ...authentication, readGroupMetrics: statements.groupMetrics })
  if (live !== null) {
    await registerLive(fastify, {
      ...authentication,
      settings: live,
      replicationConfig: live.connectionString !== undefined
        ? { connectionString: live.connectionString }
        : 'pool' in database ? database.pool.options : { connectionString: database.connectionString },
      reads: statements.live,
      firstViews: statements.firstLiveView,
      telemetry: telemetry.live
    })
  }
}

/** @fastify/jwt in verify-only use: pinned algorithms, `exp` (and `iss`/`aud` when configured) required. */
function jwtPluginOptions (jwt: ResolvedJwt, namespace: string): FastifyJWTOptions {
  const requiredClaims = ['exp']
  if (jwt.issuer !== undefined) requiredClaims.push('iss')
  if (jwt.audience !== undefined) requiredClaims.push('aud')
  return {
    secret: jwt.key,
    namespace,
    decoratorName: `${namespace}Claims`,
    jwtVerify: `${namespace}JwtVerify`,
    jwtDecode: `${namespace}JwtDecode`,
    jwtSign: `${namespace}JwtSign`,
    verify: {
      algorithms: jwt.algorithms,
      allowedIss: jwt.issuer,
      allowedAud: jwt.audience,
      requiredClaims,
      clockTolerance: jwt.clockToleranceSeconds * 1000, // fast-jwt counts milliseconds
      // A wallboard polls with the same token all day: fast-jwt remembers the outcome for the
      // last VERIFIED_TOKENS_CACHED tokens, never past a token's exp (`npm run bench:tokens`: a public-key check drops from 27-129 µs to 2.5-7, over runs).
      cache: VERIFIED_TOKENS_CACHED
    }
  }
}

export default activeConversations
export { activeConversations }
export { migrate, MIGRATIONS_DIRECTORY, type MigrateOptions } from './migrate.js'
export type { ActiveConversationsOptions, Algorithm, JwtOptions } from './options.js'
export { ROUTE_URL } from './routes/agent.js'
export { FLOOR_ROUTE_URL } from './routes/floor.js'
export { GROUP_METRICS_ROUTE_URL } from './routes/group-metrics.js'
export { RETRY_AFTER_SECONDS } from './errors.js'
export { securitySchemes } from './openapi.js'
