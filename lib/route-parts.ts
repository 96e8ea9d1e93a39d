import { STATUS_CODES } from 'node:http'
import type { FastifyError, FastifyRequest } from 'fastify'
import { Type } from '@sinclair/typebox'
import { ErrorResponse } from '../schemas/error.js'
import { callerFromClaims, extractToken, type Caller } from './auth.js'
import { DatabaseUnavailableError, InternalError, InvalidRequestError, RateLimitedError, UnauthorizedError } from './errors.js'

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
