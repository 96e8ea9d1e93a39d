import { Type, type Static } from '@sinclair/typebox'

/**
 * The claims this plugin reads from a verified token. Signature, `exp`, `nbf`,
 * `iss` and `aud` are checked by @fastify/jwt first; a token whose claims do not
 * have these types is rejected as invalid (401).
 */
export const TokenClaims = Type.Object(
  {
    sub: Type.Optional(Type.String({ description: 'Subject: for role `agent`, the agent id it may read.' })),
    exp: Type.Number({ description: 'Expiry (seconds since the epoch); required.' }),
    role: Type.Optional(Type.String({ description: '`manager` or `agent`; anything else is refused (403).' })),
    streamIds: Type.Optional(Type.Array(Type.String(), { description: 'The streams the caller may read.' })),
    streamId: Type.Optional(Type.String({ description: 'A single stream, instead of `streamIds`.' })),
    agentGroupIds: Type.Optional(
      Type.Array(Type.String(), { description: 'Manager only: restricts the caller to the agents and conversations of these groups.' })
    )
  },
  { additionalProperties: true }
)
export type TokenClaims = Static<typeof TokenClaims>
