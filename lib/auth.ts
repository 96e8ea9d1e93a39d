import type { FastifyRequest } from 'fastify'
import { TypeCompiler } from '@sinclair/typebox/compiler'
import { TokenClaims } from '../schemas/claims.js'
import type { FloorParams, FloorQuerystring, Params, Querystring } from '../schemas/request.js'
import { ForbiddenError, UnauthorizedError } from './errors.js'

/** Who is calling, from a verified token. */
export interface Caller {
  role: string | undefined
  subject: string | undefined
  streamIds: string[]
  /** Manager tokens with `agentGroupIds`: the only groups the caller may see. null: no restriction. */
  agentGroupIds: string[] | null
  /** The token's `exp`, seconds since the epoch: a live stream ends then. */
  expiresAt: number
}

/** What the query may read, once the caller is authorized. */
export interface Scope {
  /** The agent must be a member of one of these groups (null: any agent of the stream). */
  agentGroups: string[] | null
  /** Conversations must belong to one of these groups (null: any, including none). */
  conversationGroups: string[] | null
}

const BEARER = /^Bearer +(\S+)$/i

/**
 * The token from the `auth` header (the vendor's; a `Bearer ` prefix is tolerated)
 * or else from `Authorization: Bearer`. undefined when neither holds one.
 */
export function extractToken (request: FastifyRequest): string | undefined {
  const { auth, authorization } = request.headers
  if (typeof auth === 'string' && auth.trim() !== '') {
    const value = auth.trim()
    return BEARER.exec(value)?.[1] ?? value
  }
  if (typeof authorization === 'string') return BEARER.exec(authorization.trim())?.[1]
  return undefined
}

/** Whom limits count against: the token's subject; a token without one counts with the others of its streams. */
export function callerKey (caller: Caller): string {
  return caller.subject === undefined ? `streams:${caller.streamIds.join(',')}` : `sub:${caller.subject}`
}

const claimsChecker = TypeCompiler.Compile(TokenClaims)

/** The caller a verified payload describes; a payload of the wrong shape is an invalid token (401). */
export function callerFromClaims (payload: unknown): Caller {
  if (!claimsChecker.Check(payload)) throw new UnauthorizedError()
  const claims: TokenClaims = payload
  const streamIds = claims.streamIds ?? (claims.streamId === undefined ? undefined : [claims.streamId])
  if (streamIds === undefined) throw new UnauthorizedError()
  return {
    role: claims.role,
    subject: claims.sub,
    streamIds,
    agentGroupIds: claims.role === 'manager' ? claims.agentGroupIds ?? null : null,
    expiresAt: claims.exp
  }
}

/**
 * Decides, from the token and the request alone (before any data is read),
 * whether the caller may make this request, and what it may see.
 */
export function authorize (caller: Caller, params: Params, query: Querystring): Scope {
  if (!caller.streamIds.includes(params.streamId)) throw new ForbiddenError('Not allowed to read this stream')
  const requested = query.agentGroupId ?? null

  switch (caller.role) {
    case 'agent':
      if (caller.subject !== params.agentId) throw new ForbiddenError('An agent may read only itself')
      return { agentGroups: null, conversationGroups: requested }
    case 'manager': {
      const allowed = caller.agentGroupIds
      if (allowed === null) return { agentGroups: null, conversationGroups: requested }
      if (requested !== null && !requested.every((group) => allowed.includes(group))) {
        throw new ForbiddenError('agentGroupId names a group outside the token\'s agentGroupIds')
      }
      return { agentGroups: allowed, conversationGroups: requested ?? allowed }
    }
    default:
      throw new ForbiddenError('The token\'s role may not read agents')
  }
}

/** Whose views a floor request may read, once the caller is authorized. */
export interface FloorScope {
  /** The floor: the members of these groups (null: every agent of the stream). */
  floorGroups: string[] | null
  /** As Scope.conversationGroups. */
  conversationGroups: string[] | null
}

/**
 * The floor's rules, from the token and the request alone: managers only;
 * `agentGroupId` within a group-scoped token's groups, whose floor is those
 * groups when none is asked. Each agent's view is then the one the agent route
 * gives the same token and filters. The groups' metrics follow the same rules
 * (`what` names them in the 403).
 */
export function authorizeFloor (caller: Caller, params: FloorParams, query: Pick<FloorQuerystring, 'agentGroupId'>, what = 'the floor'): FloorScope {
  if (!caller.streamIds.includes(params.streamId)) throw new ForbiddenError('Not allowed to read this stream')
  if (caller.role !== 'manager') throw new ForbiddenError(`Only a manager may read ${what}`)
  const requested = query.agentGroupId ?? null
  const allowed = caller.agentGroupIds
  if (allowed === null) return { floorGroups: requested, conversationGroups: requested }
  if (requested !== null && !requested.every((group) => allowed.includes(group))) {
    throw new ForbiddenError('agentGroupId names a group outside the token\'s agentGroupIds')
  }
  return { floorGroups: requested ?? allowed, conversationGroups: requested ?? allowed }
}
