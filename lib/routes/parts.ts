import { STATUS_CODES } from 'node:http'
import type { FastifyError, FastifyRequest } from 'fastify'
import { Type } from '@sinclair/typebox'
import { ErrorResponse } from '../../schemas/error.js'
import { MAX_METRICS_GROUPS, type Params, type Querystring } from '../../schemas/request.js'
import { authorize, callerFromClaims, extractToken, type Caller, type Scope } from '../auth.js'
import { AgentNotFoundError, DatabaseUnavailableError, ForbiddenError, InternalError, InvalidRequestError, RateLimitedError, UnauthorizedError } from '../errors.js'

/** What both routes share: where callers are kept, and how a token is verified. */
export interface Authentication {
  /** Where onRequest leaves each request's verified caller for the rest of the request. */
  callers: WeakMap<FastifyRequest, Caller>
  /** Verifies a token's signature and registered claims; throws when it fails. */
  verifyToken: (token: string) => unknown
}

/**
 * The onRequest hook: 401 before anything else, so an unauthenticated caller
 * learns nothing, not even what is invalid.
 */
export function authenticate ({ callers, verifyToken }: Authentication) {
  return async (request: FastifyRequest): Promise<void> => {
    const token = extractToken(request)
    if (token === undefined) throw new UnauthorizedError()
    let payload: unknown
    try {
      payload = verifyToken(token)
    } catch {
      throw new UnauthorizedError()
    }
    callers.set(request, callerFromClaims(payload))
  }
}

/** The preValidation hook: `?agentGroupId=a,b` means the same as `?agentGroupId=a&agentGroupId=b`. */
export async function splitAgentGroupIds (request: FastifyRequest): Promise<void> {
  const query = request.query as Record<string, unknown>
  if (query.agentGroupId !== undefined) {
    query.agentGroupId = [query.agentGroupId].flat().flatMap((value) => String(value).split(','))
  }
}

/** Unique per registration, as OpenAPI wants: '/v1' and getAgentActiveConversations give v1GetAgentActiveConversations. */
export function operationId (prefix: string, name: string): string {
  const words = prefix.split(/[^A-Za-z0-9]+/).filter((word) => word !== '')
  return [...words, name].map((word, i) => (i === 0 ? word : word[0]?.toUpperCase() + word.slice(1))).join('')
}

/** An error response: the shared schema, and for the docs an example of this status (a media-type example: a $ref takes none). */
export const errorBody = (description: string, example: FastifyError) => ({
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

/** The error statuses both routes answer, for the docs. */
export const commonErrors = {
  400: errorBody('Invalid input; the message names the field.', new InvalidRequestError('querystring/source must be equal to one of the allowed values')),
  401: errorBody('Missing, malformed, badly signed or expired token.', new UnauthorizedError()),
  429: errorBody('Too many requests from this caller (only when the gateway enables `rateLimit`); see `Retry-After`.', new RateLimitedError('1 minute')),
  500: errorBody('Unexpected error (details are in the server log, never in the body).', new InternalError()),
  503: errorBody('Database unavailable or too slow; retry after `Retry-After` seconds.', new DatabaseUnavailableError())
}

/** The agent routes' own error statuses (GET and its stream), for the docs. */
export const agentErrors = {
  403: errorBody('Valid token without the right to this stream, agent or group.', new ForbiddenError('Not allowed to read this stream')),
  404: errorBody('No such agent in this stream.', new AgentNotFoundError())
}

/** The floor routes' own error status (GET and its stream), for the docs. */
export const floorErrors = {
  403: errorBody('Valid token without the right to this stream or group, or not a manager.', new ForbiddenError('Only a manager may read the floor'))
}

/** The 400 of a stream with more groups than one queue metrics answer reports. */
export const TOO_MANY_GROUPS = `The stream has more than ${MAX_METRICS_GROUPS} agent groups: name the ones to report with agentGroupId`

/** The queue metrics routes' own error statuses (GET and its stream), for the docs. */
export const groupMetricsErrors = {
  400: errorBody('Invalid input, or a stream of more groups than one answer reports; the message says which.', new InvalidRequestError(TOO_MANY_GROUPS)),
  403: errorBody('Valid token without the right to this stream or group, or not a manager.', new ForbiddenError('Only a manager may read the groups\' metrics'))
}

/**
 * The agent routes' authorization, from the token and the request alone (no
 * data is read before it): `?agentId`, accepted as on the vendor page, must be
 * the path's; then the token's rights to the stream, agent and groups.
 */
export function authorizeAgent (caller: Caller, params: Params, query: Querystring): Scope {
  if (query.agentId !== undefined && query.agentId !== params.agentId) {
    throw new InvalidRequestError("querystring/agentId must equal the path's agentId")
  }
  return authorize(caller, params, query)
}
