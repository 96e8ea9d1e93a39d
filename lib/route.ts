import type { FastifyInstance, FastifyRequest } from 'fastify'
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox'
import { Type } from '@sinclair/typebox'
import type pg from 'pg'
import { ErrorResponse } from '../schemas/error.js'
import { Params, Querystring } from '../schemas/request.js'
import { AgentView } from '../schemas/response.js'
import { authorize, callerFromClaims, extractToken, type Caller } from './auth.js'
import { AgentNotFoundError, ForbiddenError, InvalidRequestError, UnauthorizedError } from './errors.js'
import { readAgentView } from './query.js'

export const ROUTE_URL = '/public/:streamId/analytics/manager/agent/:agentId/active-conversations'

export interface RouteDependencies {
  pool: pg.Pool
  /** Verifies a token's signature and registered claims; throws when it fails. */
  verifyToken: (token: string) => unknown
  metricsWindowSeconds: number
}

const errorBody = (description: string) => Type.Ref(ErrorResponse, { description })

export function registerRoute (fastify: FastifyInstance, { pool, verifyToken, metricsWindowSeconds }: RouteDependencies): void {
  // The caller of each request, from onRequest (authentication) to preHandler (authorization).
  const callers = new WeakMap<FastifyRequest, Caller>()

  fastify.withTypeProvider<TypeBoxTypeProvider>().route({
    method: 'GET',
    url: ROUTE_URL,
    schema: {
      summary: 'Active conversations of an agent',
      description:
        "A manager's live view of one agent: headline metrics, the conversations the agent is handling now " +
        '(`active`) and the queued conversations the agent could take (`queue`).',
      params: Params,
      querystring: Querystring,
      response: {
        200: AgentView,
        400: errorBody('Invalid input; the message names the field.'),
        401: errorBody('Missing, malformed, badly signed or expired token.'),
        403: errorBody('Valid token without the right to this stream, agent or group.'),
        404: errorBody('No such agent in this stream.'),
        500: errorBody('Unexpected error (details are in the server log, never in the body).'),
        503: errorBody('Database unavailable or too slow; retry after `Retry-After` seconds.')
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
      const view = await readAgentView(pool, {
        streamId: params.streamId,
        agentId: params.agentId,
        source: query.source,
        scope,
        metricsWindowSeconds
      })
      if (view === null) throw new AgentNotFoundError()
      if (view === 'forbidden') throw new ForbiddenError("The agent is outside the token's agentGroupIds")
      reply.header('cache-control', 'no-store')
      return view
    }
  })
}
