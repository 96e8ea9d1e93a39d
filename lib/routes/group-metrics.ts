import type { FastifyInstance } from 'fastify'
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox'
import { FloorParams, GroupMetricsQuerystring, MAX_METRICS_GROUPS } from '../../schemas/request.js'
import { GroupMetrics } from '../../schemas/response.js'
import { authorizeFloor, type Caller } from '../auth.js'
import { InvalidRequestError } from '../errors.js'
import { securityRequirement } from '../openapi.js'
import type { GroupMetricsRequest, GroupMetricsResult } from '../sql/group-metrics.js'
import { authenticate, commonErrors, groupMetricsErrors, operationId, splitAgentGroupIds, TOO_MANY_GROUPS, type Authentication } from './parts.js'

export const GROUP_METRICS_ROUTE_URL = '/public/:streamId/analytics/manager/agent-groups/metrics'

/** What a request asks of the groups' metrics statement, once authorized from the token and the request alone. */
export function groupMetricsRequest (caller: Caller, params: FloorParams, query: GroupMetricsQuerystring): GroupMetricsRequest {
  // The floor's rules: managers; agentGroupId within a group-scoped token's groups, which are the default.
  const { floorGroups } = authorizeFloor(caller, params, query, 'the groups\' metrics')
  return {
    streamId: params.streamId,
    groups: floorGroups,
    ungrouped: floorGroups === null, // a manager of the whole stream who named no group
    source: query.source,
    serviceLevelSeconds: query.serviceLevelSeconds as number // Ajv fills the default
  }
}

/** The answer, or the 400 of a stream with more groups than one answer reports. */
export function groupMetricsOrTooMany (result: GroupMetricsResult): GroupMetrics {
  if (result === 'too-many') throw new InvalidRequestError(TOO_MANY_GROUPS)
  return result
}

export interface GroupMetricsRouteDependencies extends Authentication {
  /** Runs the groups' metrics statement (on the pool, or a replica with fallback), taking turns as the floor's pages do. */
  readGroupMetrics: (request: GroupMetricsRequest) => Promise<GroupMetricsResult>
}

/** A wallboard's queue figures: per group, for the ungrouped queue and in total, from one statement. */
export function registerGroupMetricsRoute (fastify: FastifyInstance, { readGroupMetrics, callers, verifyToken }: GroupMetricsRouteDependencies): void {
  fastify.withTypeProvider<TypeBoxTypeProvider>().route({
    method: 'GET',
    url: GROUP_METRICS_ROUTE_URL,
    schema: {
      summary: 'Queue metrics of agent groups',
      tags: ['Queue metrics'],
      operationId: operationId(fastify.prefix, 'getAgentGroupsMetrics'),
      security: securityRequirement,
      description:
        'What a wallboard\'s top row shows: for each group, how many conversations wait and for how long, how many are handled, ' +
        'its agents by presence, and over the metrics window (`metricsWindowSeconds`, by default 24 hours, up to now) how many ' +
        'were offered, answered and abandoned, the speed of answer, the service level and the handle time; the same for the ' +
        `ungrouped queue, and in total. At most ${MAX_METRICS_GROUPS} groups: a stream with more must name them with \`agentGroupId\`.`,
      params: FloorParams,
      querystring: GroupMetricsQuerystring,
      response: {
        200: GroupMetrics,
        ...commonErrors,
        ...groupMetricsErrors
      }
    },
    onRequest: authenticate({ callers, verifyToken }),
    preValidation: splitAgentGroupIds,
    handler: async (request, reply) => {
      // Authorization from the token and the request alone: no data is read before it.
      const metrics = groupMetricsOrTooMany(await readGroupMetrics(groupMetricsRequest(callers.get(request) as Caller, request.params, request.query)))
      reply.header('cache-control', 'no-store')
      return metrics
    }
  })
}
