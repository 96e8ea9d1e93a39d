import { createPublicKey, type KeyObject } from 'node:crypto'
import type pg from 'pg'
import type { BatchLimits } from './batch.js'
import { DEFAULT_POOL_SETTINGS, type PoolSettings } from './database.js'
import { InvalidOptionError } from './errors.js'

export type Algorithm =
  | 'HS256' | 'HS384' | 'HS512'
  | 'RS256' | 'RS384' | 'RS512'
  | 'PS256' | 'PS384' | 'PS512'
  | 'ES256' | 'ES384' | 'ES512'
  | 'EdDSA'

export interface JwtOptions {
  /** Shared secret for HMAC tokens (at least 32 bytes). Give this or `publicKey`. */
  secret?: string | Buffer
  /** PEM public key (RSA, EC or Ed25519) for signed tokens. Give this or `secret`. */
  publicKey?: string | Buffer
  /** Accepted algorithms; default: the one that fits the key (HS256, RS256, ES256/384/512, EdDSA). */
  algorithms?: Algorithm[]
  /** Required `iss` claim, if set. */
  issuer?: string | string[]
  /** Required `aud` claim, if set. */
  audience?: string | string[]
  /** Leeway for `exp` and `nbf`, in seconds (default 0). */
  clockToleranceSeconds?: number
}

export interface ActiveConversationsOptions {
  /** A pg pool the plugin uses and leaves open. Give this or `connectionString`. */
  pool?: pg.Pool
  /** The plugin opens its own pool (read-only sessions) and ends it on close. */
  connectionString?: string
  /**
   * A pg pool on a read replica, used and left open: the statement goes there, and
   * only when the replica is unavailable, to `pool` or `connectionString`'s pool.
   */
  readPool?: pg.Pool
  /** Token verification. */
  jwt: JwtOptions
  /** The metrics average the conversations accepted in this many seconds up to now (default 86400). */
  metricsWindowSeconds?: number
  /** Own pool only: most connections (default 10). */
  poolMax?: number
  /** Own pool only: wait for a connection at most this long, then 503 (default 2000). */
  connectionTimeoutMillis?: number
  /** Own pool only: Postgres cancels the statement after this long, then 503 (default 2000). */
  statementTimeoutMillis?: number
  /** Own pool only: the client stops waiting for an answer after this long, then 503 (default statementTimeoutMillis + 1000). */
  queryTimeoutMillis?: number
  /** Own pool only: application_name of its sessions (default fastify-active-conversations). */
  applicationName?: string
  /** Requests per caller (the token's `sub`) and time window, with @fastify/rate-limit; off when absent. */
  rateLimit?: RateLimitOptions
  /**
   * Most statements of this registration running at once (default 2). Requests that
   * arrive while all run wait, and leave together in the next statement.
   */
  maxConcurrentStatements?: number
  /** Most requests answered by one statement (default 32); 1 sends one statement per request. */
  maxRequestsPerStatement?: number
}

export interface RateLimitOptions {
  /** Requests allowed per caller in a window. */
  max: number
  /** The window in milliseconds (default 60000). */
  timeWindowMillis?: number
}

export interface ResolvedJwt {
  key: string | Buffer | { public: string | Buffer }
  algorithms: Algorithm[]
  issuer?: string | string[]
  audience?: string | string[]
  clockToleranceSeconds: number
}

export type DatabaseTarget =
  | { pool: pg.Pool }
  | { connectionString: string, settings: PoolSettings }

export interface ResolvedOptions {
  database: DatabaseTarget
  readPool: pg.Pool | null
  jwt: ResolvedJwt
  metricsWindowSeconds: number
  rateLimit: Required<RateLimitOptions> | null
  batching: BatchLimits
}

export const DEFAULT_METRICS_WINDOW_SECONDS = 86_400
/** Verified tokens fast-jwt remembers (lib/index.ts; measured by bench/tokens.ts). */
export const VERIFIED_TOKENS_CACHED = 1000
const DEFAULT_BATCHING: BatchLimits = { concurrency: 2, maxSize: 32 }
const MAX_METRICS_WINDOW_SECONDS = 366 * 86_400
const MIN_SECRET_BYTES = 32

const HMAC: Algorithm[] = ['HS256', 'HS384', 'HS512']
const RSA: Algorithm[] = ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512']
const EC_BY_CURVE: Record<string, Algorithm> = { prime256v1: 'ES256', secp384r1: 'ES384', secp521r1: 'ES512' }

/** Checks the options at registration and fills in the defaults; throws FAC_ERR_INVALID_OPTION. */
export function resolveOptions (options: ActiveConversationsOptions): ResolvedOptions {
  return {
    database: resolveDatabase(options),
    readPool: resolveReadPool(options.readPool),
    jwt: resolveJwt(options.jwt),
    metricsWindowSeconds: integer(options.metricsWindowSeconds, 'metricsWindowSeconds', DEFAULT_METRICS_WINDOW_SECONDS, 1, MAX_METRICS_WINDOW_SECONDS),
    rateLimit: resolveRateLimit(options.rateLimit),
    batching: {
      concurrency: integer(options.maxConcurrentStatements, 'maxConcurrentStatements', DEFAULT_BATCHING.concurrency, 1, 1000),
      maxSize: integer(options.maxRequestsPerStatement, 'maxRequestsPerStatement', DEFAULT_BATCHING.maxSize, 1, 1000)
    }
  }
}

function resolveRateLimit (rateLimit: RateLimitOptions | undefined): Required<RateLimitOptions> | null {
  if (rateLimit === undefined) return null
  if (rateLimit === null || typeof rateLimit !== 'object') fail('`rateLimit` must be { max, timeWindowMillis? }')
  return {
    max: integer(rateLimit.max ?? null, 'rateLimit.max', 0, 1, 1_000_000), // required: null fails
    timeWindowMillis: integer(rateLimit.timeWindowMillis, 'rateLimit.timeWindowMillis', 60_000, 1, 86_400_000)
  }
}

function resolveReadPool (readPool: unknown): pg.Pool | null {
  if (readPool === undefined) return null
  if (!isPool(readPool)) fail('`readPool` must be a pg.Pool')
  return readPool
}

function isPool (value: unknown): value is pg.Pool {
  return typeof (value as pg.Pool | null)?.query === 'function' && typeof (value as pg.Pool).connect === 'function'
}

function resolveDatabase (options: ActiveConversationsOptions): DatabaseTarget {
  const { pool, connectionString } = options
  if ((pool === undefined) === (connectionString === undefined)) fail('give exactly one of `pool` and `connectionString`')
  if (pool !== undefined) {
    if (!isPool(pool)) fail('`pool` must be a pg.Pool')
    for (const own of ['poolMax', 'connectionTimeoutMillis', 'statementTimeoutMillis', 'queryTimeoutMillis', 'applicationName'] as const) {
      if (options[own] !== undefined) fail(`\`${own}\` applies only to the plugin's own pool (with \`connectionString\`); set it on your pool`)
    }
    return { pool }
  }
  if (typeof connectionString !== 'string' || connectionString === '') fail('`connectionString` must be a non-empty string')
  const { applicationName = DEFAULT_POOL_SETTINGS.applicationName } = options
  if (typeof applicationName !== 'string' || !/^[\x20-\x7e]{1,63}$/.test(applicationName)) fail('`applicationName` must be 1 to 63 printable ASCII characters')
  const statementTimeoutMillis = integer(options.statementTimeoutMillis, 'statementTimeoutMillis', DEFAULT_POOL_SETTINGS.statementTimeoutMillis, 1, 600_000)
  return {
    connectionString,
    settings: {
      max: integer(options.poolMax, 'poolMax', DEFAULT_POOL_SETTINGS.max, 1, 1000),
      connectionTimeoutMillis: integer(options.connectionTimeoutMillis, 'connectionTimeoutMillis', DEFAULT_POOL_SETTINGS.connectionTimeoutMillis, 1, 600_000),
      statementTimeoutMillis,
      queryTimeoutMillis: integer(options.queryTimeoutMillis, 'queryTimeoutMillis', statementTimeoutMillis + 1000, 1, 601_000),
      applicationName
    }
  }
}

function resolveJwt (jwt: JwtOptions | undefined): ResolvedJwt {
  if (jwt === null || typeof jwt !== 'object') fail('`jwt` is required: { secret } or { publicKey }')
  const { secret, publicKey } = jwt
  if ((secret === undefined) === (publicKey === undefined)) fail('give exactly one of `jwt.secret` and `jwt.publicKey`')

  let key: ResolvedJwt['key']
  let fitting: Algorithm[]
  if (secret !== undefined) {
    if (!(typeof secret === 'string' || Buffer.isBuffer(secret)) || Buffer.byteLength(secret) < MIN_SECRET_BYTES) {
      fail(`\`jwt.secret\` must be a string or Buffer of at least ${MIN_SECRET_BYTES} bytes`)
    }
    if (typeof secret === 'string' && secret.includes('-----BEGIN')) fail('`jwt.secret` looks like a PEM key: pass it as `jwt.publicKey`')
    key = secret
    fitting = HMAC
  } else {
    key = { public: publicKey as string | Buffer }
    fitting = algorithmsForKey(parsePublicKey(publicKey))
  }

  const algorithms = jwt.algorithms ?? [fitting[0] as Algorithm]
  if (!Array.isArray(algorithms) || algorithms.length === 0) fail('`jwt.algorithms` must be a non-empty array')
  for (const algorithm of algorithms) {
    if (!fitting.includes(algorithm)) {
      fail(`\`jwt.algorithms\`: ${String(algorithm)} does not fit the ${secret !== undefined ? 'secret' : 'public key'} (allowed: ${fitting.join(', ')})`)
    }
  }

  for (const claim of ['issuer', 'audience'] as const) {
    const value = jwt[claim]
    if (value !== undefined && !isNonEmptyStringOrList(value)) fail(`\`jwt.${claim}\` must be a non-empty string or array of strings`)
  }

  return {
    key,
    algorithms,
    issuer: jwt.issuer,
    audience: jwt.audience,
    clockToleranceSeconds: integer(jwt.clockToleranceSeconds, 'jwt.clockToleranceSeconds', 0, 0, 300)
  }
}

function parsePublicKey (publicKey: unknown): KeyObject {
  if (!(typeof publicKey === 'string' || Buffer.isBuffer(publicKey))) fail('`jwt.publicKey` must be a PEM string or Buffer')
  try {
    return createPublicKey(publicKey)
  } catch {
    return fail('`jwt.publicKey` is not a readable PEM public key')
  }
}

/** The algorithms a public key can verify (RSA-PSS keys: fast-jwt cannot read them); the first is the default. */
function algorithmsForKey (key: KeyObject): Algorithm[] {
  switch (key.asymmetricKeyType) {
    case 'rsa':
      return RSA
    case 'ec': {
      const { namedCurve } = key.asymmetricKeyDetails as { namedCurve: string }
      const algorithm = EC_BY_CURVE[namedCurve]
      return algorithm === undefined ? fail('`jwt.publicKey`: EC keys must be on P-256, P-384 or P-521') : [algorithm]
    }
    case 'ed25519':
    case 'ed448':
      return ['EdDSA']
    default:
      return fail(`\`jwt.publicKey\`: unsupported key type ${String(key.asymmetricKeyType)}`)
  }
}

function integer (value: unknown, name: string, fallback: number, min: number, max: number): number {
  if (value === undefined) return fallback
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    fail(`\`${name}\` must be an integer from ${min} to ${max}`)
  }
  return value
}

function isNonEmptyStringOrList (value: unknown): boolean {
  const list = Array.isArray(value) ? value : [value]
  return list.length > 0 && list.every((item) => typeof item === 'string' && item !== '')
}

function fail (message: string): never {
  throw new InvalidOptionError(message)
}
