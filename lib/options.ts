import { createPublicKey, type KeyObject } from 'node:crypto'
import type { TSchema } from '@sinclair/typebox'
import { Value } from '@sinclair/typebox/value'
import type pg from 'pg'
import { ActiveConversationsOptions, OWN_POOL_OPTIONS, QUERY_TIMEOUT_MARGIN_MILLIS, type Algorithm, type JwtOptions, type LiveOptions, type RateLimitOptions } from '../schemas/options.js'
import type { BatchLimits } from './batch.js'
import type { PoolSettings } from './database.js'
import { InvalidOptionError } from './errors.js'

export type { ActiveConversationsOptions, Algorithm, JwtOptions, LiveOptions, RateLimitOptions }

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
  readPoolRetryMillis: number
  /** false: unnamed statements, for a transaction-mode pooler. */
  preparedStatements: boolean
  jwt: ResolvedJwt
  metricsWindowSeconds: number
  rateLimit: Required<RateLimitOptions> | null
  batching: BatchLimits
  /** null: no live routes. */
  live: (Required<Omit<LiveOptions, 'connectionString'>> & { connectionString?: string }) | null
}

/** Verified tokens fast-jwt remembers (lib/index.ts; measured by bench/tokens.ts). */
export const VERIFIED_TOKENS_CACHED = 1000
const MIN_SECRET_BYTES = 32

const HMAC: Algorithm[] = ['HS256', 'HS384', 'HS512']
const RSA: Algorithm[] = ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512']
const EC_BY_CURVE: Record<string, Algorithm> = { prime256v1: 'ES256', secp384r1: 'ES384', secp521r1: 'ES512' }

/**
 * Checks the options at registration against the schema (schemas/options.ts),
 * then the rules between options, and fills in the defaults; throws
 * FAC_ERR_INVALID_OPTION with a message naming the option.
 */
export function resolveOptions (given: ActiveConversationsOptions): ResolvedOptions {
  checkSchema(given)
  // Defaults fill a copy: the gateway's objects stay as they were.
  const options = Value.Default(ActiveConversationsOptions, {
    ...given,
    jwt: { ...given.jwt },
    ...(given.rateLimit && { rateLimit: { ...given.rateLimit } }),
    live: { ...given.live }
  }) as Required<ActiveConversationsOptions>
  const live = options.live as NonNullable<ResolvedOptions['live']>
  return {
    database: resolveDatabase(given, options),
    readPool: options.readPool ?? null,
    readPoolRetryMillis: options.readPoolRetryMillis,
    preparedStatements: options.preparedStatements,
    jwt: resolveJwt(options.jwt as Required<JwtOptions>),
    metricsWindowSeconds: options.metricsWindowSeconds,
    rateLimit: (options.rateLimit as Required<RateLimitOptions> | undefined) ?? null,
    batching: { concurrency: options.maxConcurrentStatements, maxSize: options.maxRequestsPerStatement },
    live: live.enabled ? live : null
  }
}

/** The first value the schema refuses, as "`path` must …". */
function checkSchema (options: unknown): void {
  const error = Value.Errors(ActiveConversationsOptions, options).First()
  if (error === undefined) return
  const schema = error.schema as TSchema
  const name = error.path.slice(1).replaceAll('/', '.').replace(/\.\d+$/, '') // an array's item names the array
  const limits = schema.type === 'integer' ? `must be an integer from ${schema.minimum as number} to ${schema.maximum as number}` : undefined
  fail(`\`${name}\` ${(schema.errorMessage as string | undefined) ?? limits}`)
}

function resolveDatabase (given: ActiveConversationsOptions, options: Required<ActiveConversationsOptions>): DatabaseTarget {
  const { pool, connectionString } = given
  if ((pool === undefined) === (connectionString === undefined)) fail('give exactly one of `pool` and `connectionString`')
  if (pool !== undefined) {
    const own = OWN_POOL_OPTIONS.find((name) => given[name as keyof ActiveConversationsOptions] !== undefined)
    if (own !== undefined) fail(`\`${own}\` applies only to the plugin's own pool (with \`connectionString\`); set it on your pool`)
    return { pool }
  }
  return {
    connectionString: connectionString as string,
    settings: {
      max: options.poolMax,
      connectionTimeoutMillis: options.connectionTimeoutMillis,
      statementTimeoutMillis: options.statementTimeoutMillis,
      queryTimeoutMillis: given.queryTimeoutMillis ?? options.statementTimeoutMillis + QUERY_TIMEOUT_MARGIN_MILLIS,
      applicationName: options.applicationName,
      startupParameters: options.preparedStatements
    }
  }
}

function resolveJwt (jwt: Required<JwtOptions>): ResolvedJwt {
  const { secret, publicKey } = jwt
  if ((secret === undefined) === (publicKey === undefined)) fail('give exactly one of `jwt.secret` and `jwt.publicKey`')

  let key: ResolvedJwt['key']
  let fitting: Algorithm[]
  if (secret !== undefined) {
    if (Buffer.byteLength(secret) < MIN_SECRET_BYTES) fail(`\`jwt.secret\` must be a string or Buffer of at least ${MIN_SECRET_BYTES} bytes`)
    if (typeof secret === 'string' && secret.includes('-----BEGIN')) fail('`jwt.secret` looks like a PEM key: pass it as `jwt.publicKey`')
    key = asKey(secret)
    fitting = HMAC
  } else {
    key = { public: asKey(publicKey) }
    fitting = algorithmsForKey(parsePublicKey(key.public))
  }

  const algorithms = jwt.algorithms ?? [fitting[0] as Algorithm]
  for (const algorithm of algorithms) {
    if (!fitting.includes(algorithm)) {
      fail(`\`jwt.algorithms\`: ${algorithm} does not fit the ${secret !== undefined ? 'secret' : 'public key'} (allowed: ${fitting.join(', ')})`)
    }
  }
  return { key, algorithms, issuer: jwt.issuer, audience: jwt.audience, clockToleranceSeconds: jwt.clockToleranceSeconds }
}

/** fast-jwt takes strings and Buffers: a plain Uint8Array becomes a Buffer over the same bytes. */
function asKey (key: string | Uint8Array): string | Buffer {
  return typeof key === 'string' || Buffer.isBuffer(key) ? key : Buffer.from(key.buffer, key.byteOffset, key.byteLength)
}

function parsePublicKey (publicKey: string | Buffer): KeyObject {
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

function fail (message: string): never {
  throw new InvalidOptionError(message)
}
