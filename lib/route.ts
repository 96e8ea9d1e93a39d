import { STATUS_CODES } from 'node:http'
import type { FastifyError, FastifyInstance, FastifyRequest } from 'fastify'
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox'
import { Type } from '@sinclair/typebox'
import { ErrorResponse } from '../schemas/error.js'
import { Params, Querystring } from '../schemas/request.js'
import { AgentView } from '../schemas/response.js'
import { authorize, callerFromClaims, extractToken, type Caller } from './auth.js'
import { AgentNotFoundError, DatabaseUnavailableError, ForbiddenError, InternalError, InvalidRequestError, RateLimitedError, UnauthorizedError } from './errors.js'
import { securityRequirement } from './openapi.js'
import { createBatcher, type BatchLimits } from './batch.js'
import type { ReadAgentViews } from './query.js'

export const ROUTE_URL = '/public/:streamId/analytics/manager/agent/:agentId/active-conversations'

export interface RouteDependencies {
  /** Runs the statement for a batch of requests (on the pool, or a replica with fallback). */
  read: ReadAgentViews
  /** Where onRequest leaves each request's verified caller for the rest of the request. */
  callers: WeakMap<FastifyRequest, Caller>
  /** Verifies a token's signature and registered claims; throws when it fails. */
  verifyToken: (token: string) => unknown
  batching: BatchLimits
}

/** Unique per registration, as OpenAPI wants: '/v1' gives v1GetAgentActiveConversations. */
export function operationId (prefix: string): string {
  const words = prefix.split(/[^A-Za-z0-9]+/).filter((word) => word !== '')
  return [...words, 'get', 'agent', 'active', 'conversations']
    .map((word, i) => (i === 0 ? word : word[0]?.toUpperCase() + word.slice(1)))
    .join('')
}

/** An error response: the shared schema, and for the docs an example of this status (a media-type example: a $ref takes none). */
const errorBody = (description: string, example: FastifyError) => ({
  description,
  content: {
    'application/json': {
      schema: Type.Ref(ErrorResponse),
      examples: {
        [example.code]: {
          value: { statusCode: example.statusCode, code: example.code, error: STATUS_CODES[example.statusCode as number], message: example.message }
        }
      }
    }
  }
})

export function registerRoute (fastify: FastifyInstance, { read, callers, verifyToken, batching }: RouteDependencies): void {
  // Concurrent requests share statements: see createBatcher.
  const readAgentView = createBatcher(read, batching)
  fastify.withTypeProvider<TypeBoxTypeProvider>().route({
    method: 'GET',
    url: ROUTE_URL,
    schema: {
      summary: 'Active conversations of an agent',
      tags: ['Active conversations'],
      operationId: operationId(fastify.prefix),
      security: securityRequirement,
      description:
        "A manager's live view of one agent: headline metrics, the conversations the agent is handling now " +
        '(`active`) and the queued conversations the agent could take (`queue`).',
      params: Params,
      querystring: Querystring,
      response: {
        200: AgentView,
        400: errorBody('Invalid input; the message names the field.', new InvalidRequestError('querystring/source must be equal to one of the allowed values')),
        401: errorBody('Missing, malformed, badly signed or expired token.', new UnauthorizedError()),
        403: errorBody('Valid token without the right to this stream, agent or group.', new ForbiddenError('Not allowed to read this stream')),
        404: errorBody('No such agent in this stream.', new AgentNotFoundError()),
        429: errorBody('Too many requests from this caller (only when the gateway enables `rateLimit`); see `Retry-After`.', new RateLimitedError('1 minute')),
        500: errorBody('Unexpected error (details are in the server log, never in the body).', new InternalError()),
        503: errorBody('Database unavailable or too slow; retry after `Retry-After` seconds.', new DatabaseUnavailableError())
      }
    },

    // 401 before anything else: an unauthenticated caller learns nothing, not even what is invalid.
    onRequest: async (request) => {
      const token = extractToken(request)
      if (token === undefined) throw new UnauthorizedError()
      let payload: unknown
      try {
        payload = verifyToken(token)
      } catch {
        throw new UnauthorizedError()
      }
      callers.set(request, callerFromClaims(payload))
    },

    // `?agentGroupId=a,b` means the same as `?agentGroupId=a&agentGroupId=b`.
    preValidation: async (request) => {
      const query = request.query as Record<string, unknown>
      if (query.agentGroupId !== undefined) {
        query.agentGroupId = [query.agentGroupId].flat().flatMap((value) => String(value).split(','))
      }
    },

    handler: async (request, reply) => {
      const { params, query } = request
      if (query.agentId !== undefined && query.agentId !== params.agentId) {
        throw new InvalidRequestError("querystring/agentId must equal the path's agentId")
      }
      // Authorization from the token and the request alone: no data is read before it.
      const scope = authorize(callers.get(request) as Caller, params, query)
      const view = await readAgentView({ streamId: params.streamId, agentId: params.agentId, source: query.source, scope })
      if (view === null) throw new AgentNotFoundError()
      if (view === 'forbidden') throw new ForbiddenError("The agent is outside the token's agentGroupIds")
      reply.header('cache-control', 'no-store')
      return view
    }
  })
}
