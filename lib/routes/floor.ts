import type { FastifyInstance, FastifyReply } from 'fastify'
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox'
import { FloorParams, FloorQuerystring } from '../../schemas/request.js'
import { Floor } from '../../schemas/response.js'
import { authorizeFloor, type Caller } from '../auth.js'
import { decodeCursor, encodeCursor } from './cursor.js'
import { securityRequirement } from '../openapi.js'
import { floorBody, FloorAgentHead } from './bodies.js'
import type { FloorPage, FloorRequest } from '../sql/views.js'
import { authenticate, commonErrors, floorErrors, operationId, splitAgentGroupIds, type Authentication } from './parts.js'

export const FLOOR_ROUTE_URL = '/public/:streamId/analytics/manager/agents/active-conversations'

export interface FloorRouteDependencies extends Authentication {
  /**
   * Runs the floor statement for one page (on the pool, or a replica with
   * fallback). A page's statement cannot share with another's, but pages take
   * turns as the agent route's batches do (lib/index.ts): a wallboard's burst
   * of pages neither crowds the database nor holds every answer in memory at
   * once (BENCHMARKS.md, step 17).
   */
  readPage: (request: FloorRequest) => Promise<FloorPage>
}

/** The floor: a page of agents, each exactly as the agent route answers it, from one statement. */
export function registerFloorRoute (fastify: FastifyInstance, { readPage, callers, verifyToken }: FloorRouteDependencies): void {
  fastify.withTypeProvider<TypeBoxTypeProvider>().route({
    method: 'GET',
    url: FLOOR_ROUTE_URL,
    schema: {
      summary: 'Active conversations of every agent on a floor',
      tags: ['Active conversations'],
      operationId: operationId(fastify.prefix, 'getFloorActiveConversations'),
      security: securityRequirement,
      description:
        "A manager's floor in one request: the agents of the given groups (or every agent the token may see), " +
        'in ascending `agentId`, a page at a time, each with exactly the body the agent route answers for it with ' +
        'the same token and filters. Pages are keyset-paged on `agentId`: an agent added while a client pages ' +
        'shows up once or not at all, never twice.',
      params: FloorParams,
      querystring: FloorQuerystring,
      response: {
        200: Floor,
        ...commonErrors,
        ...floorErrors
      }
    },
    onRequest: authenticate({ callers, verifyToken }),
    preValidation: splitAgentGroupIds,
    handler: async (request, reply) => {
      const { params, query } = request
      // Authorization from the token and the request alone: no data is read before it.
      const { floorGroups, conversationGroups } = authorizeFloor(callers.get(request) as Caller, params, query)
      const after = query.cursor === undefined ? '' : decodeCursor(query.cursor)
      const { agents, more } = await readPage({ streamId: params.streamId, floorGroups, conversationGroups, source: query.source, after, limit: query.limit as number }) // Ajv fills limit's default
      reply.header('cache-control', 'no-store').header('content-type', 'application/json; charset=utf-8')
      const nextCursor = more ? encodeCursor((agents.at(-1) as { agentId: string }).agentId) : null
      return await (reply as FastifyReply).send(floorBody(reply.compileSerializationSchema(FloorAgentHead, '200'), agents, nextCursor))
    }
  })
}
