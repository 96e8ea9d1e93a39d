// Registration: options checked up front, pool ownership, encapsulation in a host gateway.
import { generateKeyPairSync, randomBytes } from 'node:crypto'
import { readFileSync } from 'node:fs'
import t from 'tap'
import Fastify from 'fastify'
import fastifyJwt from '@fastify/jwt'
import activeConversations, { activeConversations as named, migrate, ROUTE_URL, type ActiveConversationsOptions } from '../lib/index.js'
import { freshDatabase } from './helpers/database.js'
import { viewUrl } from './helpers/gateway.js'
import { ec, managerToken, rsa, SECRET, sign } from './helpers/tokens.js'
import { STREAM, seedWorld } from './helpers/world.js'

const db = await freshDatabase(t)
await seedWorld(db.pool)
const token = managerToken([STREAM])

t.test('exports', async (t) => {
  t.equal(named, activeConversations, 'default and named export are the plugin')
  t.type(migrate, 'function')
  t.equal(ROUTE_URL, '/public/:streamId/analytics/manager/agent/:agentId/active-conversations')
})

t.test('dependencies are past the 2026 fast-jwt and fastify advisories', async (t) => {
  const installed = (name: string) => JSON.parse(readFileSync(new URL(`../node_modules/${name}/package.json`, import.meta.url), 'utf8')).version as string
  const atLeast = (version: string, minimum: string) => {
    const [a, b] = [version, minimum].map((v) => v.split('-')[0]?.split('.').map(Number) as number[]) as [number[], number[]]
    return a[0]! > b[0]! || (a[0] === b[0] && (a[1]! > b[1]! || (a[1] === b[1] && a[2]! >= b[2]!)))
  }
  for (const [name, minimum] of [['fastify', '5.8.5'], ['@fastify/jwt', '10.2.8'], ['fast-jwt', '6.3.4']] as const) {
    t.ok(atLeast(installed(name), minimum), `${name} ${installed(name)} >= ${minimum}`)
  }
  const manifest = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8'))
  t.equal(manifest.dependencies['@fastify/jwt'], '^10.2.8', 'and a consumer cannot resolve to less (it requires fast-jwt ^6.3.4)')
  t.equal(manifest.peerDependencies.fastify, '^5.8.5')
})

t.test('bad options fail registration with a clear error', async (t) => {
  const pool = db.pool
  const jwt = { secret: SECRET }
  const x25519 = generateKeyPairSync('x25519', { publicKeyEncoding: { type: 'spki', format: 'pem' }, privateKeyEncoding: { type: 'pkcs8', format: 'pem' } })
  const pss = generateKeyPairSync('rsa-pss', { modulusLength: 2048, publicKeyEncoding: { type: 'spki', format: 'pem' }, privateKeyEncoding: { type: 'pkcs8', format: 'pem' } })
  const k256 = generateKeyPairSync('ec', { namedCurve: 'secp256k1', publicKeyEncoding: { type: 'spki', format: 'pem' }, privateKeyEncoding: { type: 'pkcs8', format: 'pem' } })
  const cases: Array<[unknown, RegExp]> = [
    [{ jwt }, /exactly one of `pool` and `connectionString`/],
    [{ pool, connectionString: db.connectionString, jwt }, /exactly one of `pool` and `connectionString`/],
    [{ connectionString: '', jwt }, /`connectionString` must be a non-empty string/],
    [{ pool: {}, jwt }, /`pool` must be a pg.Pool/],
    [{ pool, jwt, poolMax: 5 }, /`poolMax` applies only to the plugin's own pool/],
    [{ pool }, /`jwt` is required/],
    [{ pool, jwt: {} }, /exactly one of `jwt.secret` and `jwt.publicKey`/],
    [{ pool, jwt: { secret: SECRET, publicKey: rsa.publicKey } }, /exactly one of `jwt.secret` and `jwt.publicKey`/],
    [{ pool, jwt: { secret: 'short' } }, /at least 32 bytes/],
    [{ pool, jwt: { secret: 42 } }, /at least 32 bytes/],
    [{ pool, jwt: { secret: rsa.publicKey } }, /looks like a PEM key: pass it as `jwt.publicKey`/],
    [{ pool, jwt: { publicKey: 'not a key' } }, /not a readable PEM public key/],
    [{ pool, jwt: { publicKey: 42 } }, /must be a PEM string or Buffer/],
    [{ pool, jwt: { publicKey: x25519.publicKey } }, /unsupported key type x25519/],
    [{ pool, jwt: { publicKey: pss.publicKey } }, /unsupported key type rsa-pss/],
    [{ pool, jwt: { publicKey: k256.publicKey } }, /EC keys must be on P-256, P-384 or P-521/],
    [{ pool, jwt: { secret: SECRET, algorithms: ['none'] } }, /`jwt.algorithms` must list only HS256, HS384, HS512, RS256, .*, EdDSA$/],
    [{ pool, jwt: { secret: SECRET, algorithms: ['RS256'] } }, /RS256 does not fit the secret \(allowed: HS256, HS384, HS512\)/],
    [{ pool, jwt: { publicKey: rsa.publicKey, algorithms: ['HS256'] } }, /HS256 does not fit the public key/],
    [{ pool, jwt: { publicKey: ec.publicKey, algorithms: ['ES384'] } }, /ES384 does not fit the public key \(allowed: ES256\)/],
    [{ pool, jwt: { secret: SECRET, algorithms: [] } }, /`jwt.algorithms` must be a non-empty array/],
    [{ pool, jwt: { secret: SECRET, issuer: '' } }, /`jwt.issuer` must be a non-empty string or array of strings/],
    [{ pool, jwt: { secret: SECRET, audience: [1] } }, /`jwt.audience` must be/],
    [{ pool, jwt: { secret: SECRET, clockToleranceSeconds: 1.5 } }, /`jwt.clockToleranceSeconds` must be an integer from 0 to 300/],
    [{ pool, jwt, metricsWindowSeconds: 0 }, /`metricsWindowSeconds` must be an integer from 1/],
    [{ pool, jwt, metricsWindowSeconds: '3600' }, /`metricsWindowSeconds` must be an integer/],
    [{ connectionString: db.connectionString, jwt, poolMax: 0 }, /`poolMax` must be an integer from 1 to 1000/],
    [{ pool, jwt, maxConcurrentStatements: 0 }, /`maxConcurrentStatements` must be an integer from 1 to 1000/],
    [{ pool, jwt, maxRequestsPerStatement: 2.5 }, /`maxRequestsPerStatement` must be an integer from 1 to 1000/],
    [{ pool, jwt, queryTimeoutMillis: 100 }, /`queryTimeoutMillis` applies only to the plugin's own pool/],
    [{ pool, jwt, applicationName: 'x' }, /`applicationName` applies only to the plugin's own pool/],
    [{ connectionString: db.connectionString, jwt, applicationName: 'tab\there' }, /`applicationName` must be 1 to 63 printable ASCII characters/],
    [{ connectionString: db.connectionString, jwt, queryTimeoutMillis: 0 }, /`queryTimeoutMillis` must be an integer/],
    [{ pool, jwt, rateLimit: 100 }, /`rateLimit` must be \{ max, timeWindowMillis\? \}/],
    [{ pool, jwt, rateLimit: {} }, /`rateLimit.max` must be an integer from 1/],
    [{ pool, jwt, rateLimit: { max: 10, timeWindowMillis: 0 } }, /`rateLimit.timeWindowMillis` must be an integer from 1/]
  ]
  for (const [options, message] of cases) {
    const app = Fastify()
    app.register(activeConversations, options as ActiveConversationsOptions)
    await t.rejects(async () => { await app.ready() }, { code: 'FAC_ERR_INVALID_OPTION', message }, String(message))
    await app.close().catch(() => {})
  }
})

t.test('more keys and algorithms that do fit', async (t) => {
  const ed = generateKeyPairSync('ed25519', { publicKeyEncoding: { type: 'spki', format: 'pem' }, privateKeyEncoding: { type: 'pkcs8', format: 'pem' } })
  const options: Array<ActiveConversationsOptions['jwt']> = [
    { publicKey: ed.publicKey },
    { publicKey: Buffer.from(rsa.publicKey), algorithms: ['RS256', 'PS256'] },
    { secret: Buffer.from(SECRET), algorithms: ['HS512'], issuer: ['a', 'b'], audience: 'c' }
  ]
  for (const jwt of options) {
    const app = Fastify()
    await app.register(activeConversations, { pool: db.pool, jwt })
    await t.resolves(async () => { await app.ready() })
    await app.close()
  }
  const ed25519 = Fastify()
  await ed25519.register(activeConversations, { pool: db.pool, jwt: { publicKey: ed.publicKey } })
  const response = await ed25519.inject({ url: viewUrl(STREAM, 'a1'), headers: { auth: sign({ role: 'manager', streamIds: [STREAM] }, { key: ed.privateKey, algorithm: 'EdDSA' as 'ES256' }) } })
  t.equal(response.statusCode, 200, 'EdDSA tokens verify with an Ed25519 key')
  await ed25519.close()
})

t.test('a secret given as a plain Uint8Array verifies the tokens of the same bytes', async (t) => {
  const app = Fastify()
  t.teardown(() => app.close())
  const options = { pool: db.pool, jwt: { secret: new TextEncoder().encode(SECRET) } }
  await app.register(activeConversations, options)
  t.equal((await app.inject({ url: viewUrl(STREAM, 'a1'), headers: { auth: token } })).statusCode, 200)
  t.notOk(Buffer.isBuffer(options.jwt.secret), "the gateway's options are left as they were")
  t.same(Object.keys(options.jwt), ['secret'], 'no defaults written into them')
})

t.test('its own pool takes an application_name', async (t) => {
  const app = Fastify()
  await app.register(activeConversations, { connectionString: db.connectionString, applicationName: 'wallboard-gateway', jwt: { secret: SECRET } })
  t.equal((await app.inject({ url: viewUrl(STREAM, 'a1'), headers: { auth: token } })).statusCode, 200)
  const { rows } = await db.pool.query("SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = $1 AND application_name = 'wallboard-gateway'", [db.name])
  t.equal(rows[0].n, 1)
  await app.close()
})

t.test('rate limit, per token subject', async (t) => {
  const app = Fastify()
  t.teardown(() => app.close())
  await app.register(activeConversations, { pool: db.pool, jwt: { secret: SECRET }, rateLimit: { max: 2, timeWindowMillis: 60_000 } })
  const request = (claims: Record<string, unknown>, headers: Record<string, string> = {}) =>
    app.inject({ url: viewUrl(STREAM, 'a1'), headers: { auth: sign({ role: 'manager', streamIds: [STREAM], ...claims }), ...headers } })
  t.equal((await request({ sub: 'alice' })).statusCode, 200)
  const second = await request({ sub: 'alice' })
  t.equal(second.statusCode, 200)
  t.equal(second.headers['x-ratelimit-remaining'], '0')
  const limited = await request({ sub: 'alice' })
  t.equal(limited.statusCode, 429, 'the third in the window')
  t.match(limited.json(), { statusCode: 429, code: 'FAC_ERR_RATE_LIMITED', error: 'Too Many Requests', message: /^Too many requests, retry in / })
  t.same(Object.keys(limited.json()), ['statusCode', 'code', 'error', 'message'])
  t.match(limited.headers['retry-after'], /^\d+$/)
  t.equal((await request({ sub: 'alice' }, { 'x-forwarded-for': '10.1.2.3', 'x-real-ip': '10.9.9.9' })).statusCode, 429, 'forged client headers change nothing')
  t.equal((await request({ sub: 'bob' })).statusCode, 200, 'another subject has its own budget')
  t.equal((await request({})).statusCode, 200, 'tokens without sub share one budget per stream list')
  t.equal((await request({})).statusCode, 200)
  t.equal((await request({})).statusCode, 429)
  t.equal((await app.inject({ url: viewUrl(STREAM, 'a1') })).statusCode, 401, 'an anonymous request is refused before it counts')
})

t.test('a pool given is used and left open', async (t) => {
  const app = Fastify()
  await app.register(activeConversations, { pool: db.pool, jwt: { secret: SECRET } })
  t.equal((await app.inject({ url: viewUrl(STREAM, 'a1'), headers: { auth: token } })).statusCode, 200)
  await app.close()
  t.equal((await db.pool.query('SELECT 1 AS one')).rows[0].one, 1, 'still usable after the gateway closed')
})

t.test('a pool of its own is ended on close', async (t) => {
  const app = Fastify()
  await app.register(activeConversations, { connectionString: db.connectionString, jwt: { secret: SECRET } })
  t.equal((await app.inject({ url: viewUrl(STREAM, 'a1'), headers: { auth: token } })).statusCode, 200)
  t.equal(await ownConnections(), 1, 'one connection while open')
  await app.close()
  for (let i = 0; i < 50 && await ownConnections() > 0; i++) await new Promise((resolve) => setTimeout(resolve, 20))
  t.equal(await ownConnections(), 0, 'none after close')
})

t.test('inside a host gateway with its own @fastify/jwt, under two prefixes', async (t) => {
  const hostSecret = randomBytes(32).toString('hex')
  const secondSecret = randomBytes(32).toString('hex')
  const host = Fastify()
  t.teardown(() => host.close())
  await host.register(fastifyJwt, { secret: hostSecret })
  host.get('/me', { onRequest: async (request) => { await request.jwtVerify() } }, async (request) => request.user)
  host.get('/boom', async () => { throw new Error('host error text') })
  await host.register(activeConversations, { prefix: '/v1', pool: db.pool, jwt: { secret: SECRET } })
  await host.register(activeConversations, { prefix: '/v2', pool: db.pool, jwt: { secret: secondSecret, issuer: 'second' } })
  await host.ready()

  const hostToken = host.jwt.sign({ sub: 'host-user', role: 'manager', streamIds: [STREAM] })
  const secondToken = sign({ role: 'manager', streamIds: [STREAM] }, { key: secondSecret, iss: 'second' })

  const v1 = await host.inject({ url: `/v1${viewUrl(STREAM, 'a1')}`, headers: { auth: token } })
  t.equal(v1.statusCode, 200, 'the plugin under /v1 verifies with its own key')
  t.equal(v1.json().name, 'Ann Lee')
  t.equal((await host.inject({ url: `/v1${viewUrl(STREAM, 'a1')}`, headers: { auth: hostToken } })).statusCode, 401, 'not with the host\'s')
  t.equal((await host.inject({ url: `/v2${viewUrl(STREAM, 'a1')}`, headers: { auth: secondToken } })).statusCode, 200, 'the second registration with its key')
  t.equal((await host.inject({ url: `/v2${viewUrl(STREAM, 'a1')}`, headers: { auth: token } })).statusCode, 401, 'and only its key')
  t.equal((await host.inject({ url: viewUrl(STREAM, 'a1'), headers: { auth: token } })).statusCode, 404, 'no route outside the prefixes')

  const me = await host.inject({ url: '/me', headers: { authorization: `Bearer ${hostToken}` } })
  t.equal(me.statusCode, 200, 'the host\'s own JWT still works')
  t.equal(me.json().sub, 'host-user')
  t.equal((await host.inject({ url: '/me', headers: { authorization: `Bearer ${token}` } })).statusCode, 401, 'with the host\'s key only')

  const boom = await host.inject({ url: '/boom' })
  t.equal(boom.json().message, 'host error text', 'the plugin\'s error handler stays inside the plugin')
  t.notOk(host.hasRequestDecorator('activeConversations1Claims'), 'no request decorator of the plugin on the host')
})

t.test('next to a host that already decorates request.user (no @fastify/jwt)', async (t) => {
  const host = Fastify()
  t.teardown(() => host.close())
  host.decorateRequest('user', null as unknown as string) // as @fastify/passport does
  await host.register(activeConversations, { pool: db.pool, jwt: { secret: SECRET } })
  t.equal((await host.inject({ url: viewUrl(STREAM, 'a1'), headers: { auth: token } })).statusCode, 200)
})

async function ownConnections (): Promise<number> {
  const { rows } = await db.pool.query<{ n: number }>(
    "SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = $1 AND application_name = 'fastify-active-conversations'", [db.name])
  return rows[0]?.n ?? 0
}
