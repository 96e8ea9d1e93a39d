import { STATUS_CODES } from 'node:http'
import createError, { type FastifyError } from '@fastify/error'
import type { FastifyReply, FastifyRequest } from 'fastify'
import type { ErrorResponse } from '../schemas/error.js'
import { isDatabaseUnavailable } from './database.js'

// Every error the plugin answers, declared once with a stable code.
export const InvalidOptionError = createError('FAC_ERR_INVALID_OPTION', 'fastify-active-conversations: %s', 500, TypeError)
export const InvalidRequestError = createError('FAC_ERR_INVALID_REQUEST', '%s', 400)
export const UnauthorizedError = createError('FAC_ERR_UNAUTHORIZED', 'Missing or invalid token', 401)
export const ForbiddenError = createError('FAC_ERR_FORBIDDEN', '%s', 403)
export const RateLimitedError = createError('FAC_ERR_RATE_LIMITED', 'Too many requests, retry in %s', 429)
export const AgentNotFoundError = createError('FAC_ERR_AGENT_NOT_FOUND', 'No such agent in this stream', 404)
export const DatabaseUnavailableError = createError('FAC_ERR_DATABASE_UNAVAILABLE', 'Database unavailable, retry later', 503)
export const InternalError = createError('FAC_ERR_INTERNAL', 'Internal Server Error', 500)
export const TooManyStreamsError = createError('FAC_ERR_TOO_MANY_STREAMS', 'Too many open streams for this caller (at most %s)', 429)
export const StreamsFullError = createError('FAC_ERR_STREAMS_FULL', 'This gateway has as many open streams as it may serve, retry later', 503)

/** Seconds a client is told to wait (`Retry-After`) when the database is unavailable. */
export const RETRY_AFTER_SECONDS = 5

const OWN_CODE = /^FAC_ERR_/

/**
 * Maps anything thrown on the route to one documented body. Validation errors
 * keep Ajv's message (it names the field); our errors keep theirs; a database
 * outage is a 503; everything else is logged in full and answered with a bare 500,
 * so no stack, SQL text or driver message ever reaches a client.
 */
export function errorHandler (error: FastifyError, request: FastifyRequest, reply: FastifyReply): void {
  let answer: FastifyError
  if (error.validation) {
    answer = new InvalidRequestError(error.message)
  } else if (OWN_CODE.test(error.code ?? '')) {
    answer = error
  } else if (isDatabaseUnavailable(error)) {
    request.log.warn({ err: error }, 'database unavailable')
    answer = new DatabaseUnavailableError()
  } else {
    request.log.error({ err: error }, 'unexpected error')
    answer = new InternalError()
  }
  if (answer.statusCode === 503) reply.header('retry-after', String(RETRY_AFTER_SECONDS))
  const body = errorResponse(answer)
  reply.code(body.statusCode).send(body)
}

/** The documented error body of one of the errors above (also the data of a live stream's `error` event). */
export function errorResponse (error: FastifyError): ErrorResponse {
  const statusCode = error.statusCode as number // every error above declares its status
  return { statusCode, code: error.code, error: STATUS_CODES[statusCode] as string, message: error.message }
}
