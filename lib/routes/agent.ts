import type { FastifyInstance, FastifyReply } from 'fastify'
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox'
import { Params, Querystring } from '../../schemas/request.js'
import { AgentView } from '../../schemas/response.js'
import type { Caller } from '../auth.js'
import { AgentNotFoundError, ForbiddenError } from '../errors.js'
import { securityRequirement } from '../openapi.js'
import { AgentViewHead, withLists } from './bodies.js'
import type { AgentViewRequest, AgentViewResult } from '../sql/views.js'
import { agentErrors, authenticate, authorizeAgent, commonErrors, operationId, splitAgentGroupIds, type Authentication } from './parts.js'

export const ROUTE_URL = '/public/:streamId/analytics/manager/agent/:agentId/active-conversations'

export interface RouteDependencies extends Authentication {
  /**
   * One request's view. Concurrent requests share statements (lib/index.ts
   * batches them: see createBatcher), on the pool or a replica with fallback.
   */
  readAgentView: (request: AgentViewRequest) => Promise<AgentViewResult>
}

export function registerRoute (fastify: FastifyInstance, { readAgentView, callers, verifyToken }: RouteDependencies): void {
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
        ...agentErrors
      }
    },
    onRequest: authenticate({ callers, verifyToken }),
    preValidation: splitAgentGroupIds,
    handler: async (request, reply) => {
      const { params, query } = request
      const scope = authorizeAgent(callers.get(request) as Caller, params, query)
      const view = await readAgentView({ streamId: params.streamId, agentId: params.agentId, source: query.source, scope })
      if (view === null) throw new AgentNotFoundError()
      if (view === 'forbidden') throw new ForbiddenError("The agent is outside the token's agentGroupIds")
      reply.header('cache-control', 'no-store').header('content-type', 'application/json; charset=utf-8')
      // A JSON string with a JSON content type is sent as it is: see lib/routes/bodies.ts.
      return await (reply as FastifyReply).send(withLists(reply.compileSerializationSchema(AgentViewHead, '200'), view))
    }
  })
}
