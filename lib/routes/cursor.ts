import { ID_PATTERN } from '../../schemas/common.js'
import { InvalidRequestError } from '../errors.js'

/*
 * The floor's cursor: the last agent id of a page, base64url-encoded. It is a
 * position and nothing more: the stream, the scope and the filters come from
 * the URL and the token of each request, so a forged cursor can only move
 * where a page starts within what the caller may read anyway.
 */

const AGENT_ID = new RegExp(ID_PATTERN)

export function encodeCursor (agentId: string): string {
  return Buffer.from(agentId, 'utf8').toString('base64url')
}

/** The agent id a cursor names; 400 for anything this API did not give out. */
export function decodeCursor (cursor: string): string {
  const agentId = Buffer.from(cursor, 'base64url').toString('utf8')
  if (!AGENT_ID.test(agentId) || encodeCursor(agentId) !== cursor) {
    throw new InvalidRequestError('querystring/cursor is not a cursor this API gave out')
  }
  return agentId
}
