import type { FastifyInstance, FastifyReply } from 'fastify'
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox'
import { Params, Querystring } from '../schemas/request.js'
import { AgentView } from '../schemas/response.js'
import { authorize, type Caller } from './auth.js'
import { AgentNotFoundError, DatabaseUnavailableError, ForbiddenError, InternalError, InvalidRequestError, RateLimitedError, UnauthorizedError } from './errors.js'
import { securityRequirement } from './openapi.js'
import { createBatcher, type BatchLimits } from './batch.js'
import { AgentViewHead, withLists } from './body.js'
import type { ReadAgentViews } from './query.js'
import { authenticate, errorBody, operationId, splitAgentGroupIds, type Authentication } from './route-parts.js'

export const ROUTE_URL = '/public/:streamId/analytics/manager/agent/:agentId/active-conversations'

export interface RouteDependencies extends Authentication {
  /** Runs the statement for a batch of requests (on the pool, or a replica with fallback). */
  read: ReadAgentViews
  batching: BatchLimits
}

/** The error statuses both routes answer, for the docs. */
export const commonErrors = {
  400: errorBody('Invalid input; the message names the field.', new InvalidRequestError('querystring/source must be equal to one of the allowed values')),
  401: errorBody('Missing, malformed, badly signed or expired token.', new UnauthorizedError()),
  429: errorBody('Too many requests from this caller (only when the gateway enables `rateLimit`); see `Retry-After`.', new RateLimitedError('1 minute')),
  500: errorBody('Unexpected error (details are in the server log, never in the body).', new InternalError()),
  503: errorBody('Database unavailable or too slow; retry after `Retry-After` seconds.', new DatabaseUnavailableError())
}

export function registerRoute (fastify: FastifyInstance, { read, callers, verifyToken, batching }: RouteDependencies): void {
  // Concurrent requests share statements: see createBatcher.
  const readAgentView = createBatcher(read, batching)
  fastify.withTypeProvider<TypeBoxTypeProvider>().route({
    method: 'GET',
    url: ROUTE_URL,
    schema: {
      summary: 'Active conversations of an agent',
      tags: ['Active conversations'],
      operationId: operationId(fastify.prefix, 'getAgentActiveConversations'),
      security: securityRequirement,
      description:
        "A manager's live view of one agent: headline metrics, the conversations the agent is handling now " +
        '(`active`) and the queued conversations the agent could take (`queue`).',
      params: Params,
      querystring: Querystring,
      response: {
        200: AgentView,
        ...commonErrors,
        403: errorBody('Valid token without the right to this stream, agent or group.', new ForbiddenError('Not allowed to read this stream')),
        404: errorBody('No such agent in this stream.', new AgentNotFoundError())
      }
    },
    onRequest: authenticate({ callers, verifyToken }),
    preValidation: splitAgentGroupIds,
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
      reply.header('cache-control', 'no-store').header('content-type', 'application/json; charset=utf-8')
      // A JSON string with a JSON content type is sent as it is: see lib/body.ts.
      return await (reply as FastifyReply).send(withLists(reply.compileSerializationSchema(AgentViewHead, '200'), view))
    }
  })
}
