import { Kind, Type, TypeRegistry, type Static, type TSchema } from '@sinclair/typebox'
import type pg from 'pg'

/*
 * The plugin's options, declared once: the TypeScript types (Static), the
 * checks at registration (lib/options.ts reads `errorMessage` or derives one
 * from the limits), the defaults (`default`) and the README's options table
 * (test/readme.test.ts compares it with this schema, `readmeDefault` where the
 * default is not a constant). `ownPoolOnly` options apply to the pool the
 * plugin opens from `connectionString`.
 */

export const ALGORITHMS = ['HS256', 'HS384', 'HS512', 'RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512', 'EdDSA'] as const
export type Algorithm = (typeof ALGORITHMS)[number]

/** Anything shaped like a pg.Pool (query and connect): pg's, or a wrapper of it. */
export function isPool (value: unknown): value is pg.Pool {
  return typeof (value as pg.Pool | null)?.query === 'function' && typeof (value as pg.Pool).connect === 'function'
}
TypeRegistry.Set('PgPool', (_schema, value) => isPool(value))
const PgPool = (description: string) => Type.Unsafe<pg.Pool>({ [Kind]: 'PgPool', description, errorMessage: 'must be a pg.Pool' })

/** The own pool's query timeout, when not given: the statement timeout and this margin. */
export const QUERY_TIMEOUT_MARGIN_MILLIS = 1000

const integer = (minimum: number, maximum: number, description: string, extra: Record<string, unknown> = {}) =>
  Type.Integer({ minimum, maximum, description, ...extra })
const ownPoolInteger = (minimum: number, maximum: number, description: string, extra: Record<string, unknown> = {}) =>
  Type.Optional(integer(minimum, maximum, `Own pool only: ${description}`, { ownPoolOnly: true, ...extra }))
const nonEmptyStrings = (description: string) => Type.Optional(Type.Union(
  [Type.String({ minLength: 1 }), Type.Array(Type.String({ minLength: 1 }), { minItems: 1 })],
  { description, errorMessage: 'must be a non-empty string or array of strings' }
))
const key = (description: string, errorMessage: string) =>
  Type.Optional(Type.Union([Type.String(), Type.Uint8Array()], { description, errorMessage }))

export const JwtOptions = Type.Object({
  secret: key('HMAC secret, at least 32 bytes. Give this or `jwt.publicKey`.', 'must be a string or Buffer of at least 32 bytes'),
  publicKey: key('RSA, EC (P-256/384/521) or Ed25519 public key, PEM.', 'must be a PEM string or Buffer'),
  algorithms: Type.Optional(Type.Array(Type.Union(ALGORITHMS.map((name) => Type.Literal(name)), { errorMessage: `must list only ${ALGORITHMS.join(', ')}` }), {
    minItems: 1,
    description: 'Accepted algorithms, pinned; each must fit the key (never `none`, never an HMAC algorithm with a public key).',
    readmeDefault: "the key's: `HS256`, `RS256`, `ES256`/`ES384`/`ES512`, `EdDSA`",
    errorMessage: `must be a non-empty array of ${ALGORITHMS.join(', ')}`
  })),
  issuer: nonEmptyStrings('When set, `iss` is required and must match.'),
  audience: nonEmptyStrings('When set, `aud` is required and must match.'),
  clockToleranceSeconds: Type.Optional(integer(0, 300, 'Leeway for `exp` and `nbf`.', { default: 0 }))
}, { description: 'Token verification.', errorMessage: 'is required: { secret } or { publicKey }' })
export type JwtOptions = Static<typeof JwtOptions>

export const RateLimitOptions = Type.Object({
  max: integer(1, 1_000_000, 'Requests allowed per caller in a window.'),
  timeWindowMillis: Type.Optional(integer(1, 86_400_000, 'The window in milliseconds.', { default: 60_000 }))
}, {
  description: "At most `max` requests per caller per window, with @fastify/rate-limit, keyed by the verified token's `sub` " +
    '(tokens without `sub` share one budget per stream list), never by a client-supplied header; 429 beyond. In-memory, per gateway instance.',
  readmeDefault: 'off',
  errorMessage: 'must be { max, timeWindowMillis? }'
})
export type RateLimitOptions = Static<typeof RateLimitOptions>

export const LiveOptions = Type.Object({
  enabled: Type.Optional(Type.Boolean({ default: true, description: 'The three `/events` routes and their replication connection.', errorMessage: 'must be true or false' })),
  connectionString: Type.Optional(Type.String({
    minLength: 1,
    description: 'Where the replication connection (one, outside the pools, while streams are open) connects: straight to the ' +
      'primary, never through a pooler, as a role with `REPLICATION` of its own (see [Where changes come from](#where-changes-come-from)).',
    readmeDefault: '`connectionString`, or the settings `pool` was made with (`pool.options`)',
    errorMessage: 'must be a non-empty string'
  })),
  coalesceMillis: Type.Optional(integer(1, 10_000, 'Changes gather this long, counted from their commit, before the views they touch are read, all in one statement.', { default: 200 })),
  heartbeatMillis: Type.Optional(integer(1000, 300_000, 'A comment line this often keeps proxies from closing an idle stream.', { default: 15_000 })),
  retryMillis: Type.Optional(integer(100, 600_000, '`retry:` told to clients: how long an EventSource waits before it connects again.', { default: 3000 })),
  maxStreams: Type.Optional(integer(1, 1_000_000, 'Most streams open on this registration; beyond, 503.', { default: 10_000 })),
  maxStreamsPerCaller: Type.Optional(integer(1, 100_000, "Most streams open per token subject (tokens without `sub`: per stream list); beyond, 429.", { default: 20 })),
  maxUnsentBytes: Type.Optional(integer(1024, 1_073_741_824, 'A client that does not read is dropped once this much waits to be sent to it.', { default: 1_048_576 })),
  metricsIntervalMillis: Type.Optional(integer(100, 600_000, 'The queue metrics streams are read again at least this often, changes or not: the metrics window moves with the clock.', { default: 10_000 })),
  slotLingerMillis: Type.Optional(integer(0, 3_600_000, 'The replication slot stays this long after the last stream closes, so that screens reconnecting do not create and drop slots in a loop.', { default: 30_000 })),
  slotWaitMillis: Type.Optional(integer(100, 600_000, 'Creating a slot waits for the transactions already running; past this it gives up and tries again later (streams are polled meanwhile).', { default: 5000 })),
  pollMillis: Type.Optional(integer(100, 600_000, 'Without a slot (being made, lost, or logical decoding unavailable), every watched view is read again this often and sent when it changed apart from its durations.', { default: 1000 }))
}, {
  description: 'Live views over server-sent events (see [Live views](#live-views)).',
  readmeDefault: 'on',
  readmeMembers: true,
  errorMessage: 'must be an object of the live options'
})
export type LiveOptions = Static<typeof LiveOptions>

export const ActiveConversationsOptions = Type.Object({
  pool: Type.Optional(PgPool('A pool the plugin uses and leaves open. Give this or `connectionString`.')),
  connectionString: Type.Optional(Type.String({
    minLength: 1,
    description: 'The plugin opens its own pool (read-only sessions, `statement_timeout`, `application_name`, keep-alive, an `error` listener) and ends it on close.',
    errorMessage: 'must be a non-empty string'
  })),
  readPool: Type.Optional(PgPool(
    'A pool on a read replica (a hot standby), used and left open: the statement reads there, and reads `pool` (or the own pool) when ' +
    'the standby cancels it in a conflict with recovery, and while the replica is unavailable (see `readPoolRetryMillis`).'
  )),
  readPoolRetryMillis: Type.Optional(integer(100, 3_600_000,
    'After the read replica fails to answer (down, overloaded, too slow), reads go to the primary for this long, then the replica is tried ' +
    'again: one warning when it goes, one message when it is back, never one per request.', { default: 5000 })),
  preparedStatements: Type.Optional(Type.Boolean({
    default: true,
    description: '`false` behind a transaction-mode pooler without prepared-statement support (PgBouncer before 1.21): unnamed ' +
      'statements, and an own pool that sends PgBouncer no startup parameter it refuses. Statement timeout and read-only sessions then ' +
      'come from the database role (see [Scaling](#scaling)).',
    errorMessage: 'must be true or false'
  })),
  jwt: JwtOptions,
  metricsWindowSeconds: Type.Optional(integer(1, 366 * 86_400, 'The agent metrics average the conversations accepted, and the queue metrics count the conversations queued, in this many seconds up to now.', { default: 86_400 })),
  poolMax: ownPoolInteger(1, 1000, 'most connections.', { default: 10 }),
  connectionTimeoutMillis: ownPoolInteger(1, 600_000, 'a request waits this long for a connection, then gets 503.', { default: 2000 }),
  statementTimeoutMillis: ownPoolInteger(1, 600_000, 'Postgres cancels the statement after this long; the request gets 503.', { default: 2000 }),
  queryTimeoutMillis: ownPoolInteger(1, 601_000, 'the client stops waiting for an answer (the server may be gone, so its own timeout cannot fire); 503.', {
    readmeDefault: `statement timeout + ${QUERY_TIMEOUT_MARGIN_MILLIS}`
  }),
  applicationName: Type.Optional(Type.String({
    pattern: '^[\\x20-\\x7e]{1,63}$',
    default: 'fastify-active-conversations',
    description: 'Own pool only: `application_name` of its sessions.',
    ownPoolOnly: true,
    errorMessage: 'must be 1 to 63 printable ASCII characters'
  })),
  maxConcurrentStatements: Type.Optional(integer(1, 1000,
    'Most statements of this registration running at once. The requests of one event-loop turn leave together right after it while fewer ' +
    'run; requests arriving while all run wait and leave together in the next one (see [How a request is answered](#how-a-request-is-answered)). ' +
    'Raise it when the database has cores to spare for this route.', { default: 2 })),
  maxRequestsPerStatement: Type.Optional(integer(1, 1000, 'Most requests one statement answers; `1` sends a statement per request.', { default: 32 })),
  rateLimit: Type.Optional(RateLimitOptions),
  live: Type.Optional(LiveOptions)
})
export type ActiveConversationsOptions = Static<typeof ActiveConversationsOptions>

/** The options applying only to the plugin's own pool, from the schema. */
export const OWN_POOL_OPTIONS = Object.entries(ActiveConversationsOptions.properties)
  .filter(([, schema]) => (schema as TSchema).ownPoolOnly === true)
  .map(([name]) => name)

/** An option's default, as declared above. */
export function defaultOf (name: keyof typeof ActiveConversationsOptions.properties): unknown {
  return (ActiveConversationsOptions.properties[name] as TSchema).default
}
