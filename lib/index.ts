import type { FastifyPluginAsync } from 'fastify'
import fastifyJwt, { type FastifyJWTOptions, type JWT } from '@fastify/jwt'
import { ErrorResponse } from '../schemas/error.js'
import { Skill } from '../schemas/response.js'
import { createPool } from './database.js'
import { errorHandler } from './errors.js'
import { resolveOptions, type ActiveConversationsOptions, type ResolvedJwt } from './options.js'
import { registerRoute } from './route.js'

// Each registration verifies with its own @fastify/jwt under a namespace of its
// own, so it never collides with the gateway's @fastify/jwt or another registration.
let registrations = 0

/**
 * GET /public/:streamId/analytics/manager/agent/:agentId/active-conversations,
 * encapsulated: nothing it registers (JWT, schemas, error handler) leaks into the gateway.
 */
const activeConversations: FastifyPluginAsync<ActiveConversationsOptions> = async (fastify, options) => {
  const { database, jwt, metricsWindowSeconds } = resolveOptions(options)

  let pool
  if ('pool' in database) {
    pool = database.pool
  } else {
    pool = createPool(database.connectionString, database.settings, (err) => {
      fastify.log.warn({ err }, 'fastify-active-conversations: idle database connection lost')
    })
    const ownPool = pool
    fastify.addHook('onClose', async () => { await ownPool.end() })
  }

  const namespace = `activeConversations${++registrations}`
  await fastify.register(fastifyJwt, jwtPluginOptions(jwt, namespace))
  const verifier = (fastify.jwt as unknown as Record<string, JWT>)[namespace] as JWT

  fastify.addSchema(Skill)
  fastify.addSchema(ErrorResponse)
  fastify.setErrorHandler(errorHandler)
  registerRoute(fastify, {
    pool,
    verifyToken: (token) => verifier.verify(token),
    metricsWindowSeconds
  })
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
      clockTolerance: jwt.clockToleranceSeconds * 1000 // fast-jwt counts milliseconds
    }
  }
}

export default activeConversations
export { activeConversations }
export { migrate, MIGRATIONS_DIRECTORY, type MigrateOptions } from './migrate.js'
export type { ActiveConversationsOptions, Algorithm, JwtOptions } from './options.js'
export { ROUTE_URL } from './route.js'
export { RETRY_AFTER_SECONDS } from './errors.js'
export { securitySchemes } from './openapi.js'
