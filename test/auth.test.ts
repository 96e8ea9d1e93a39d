// Authentication (401) and authorization (403) by stream, role and group.
import t from 'tap'
import pg from 'pg'
import { freshDatabase } from './helpers/database.js'
import { gateway, viewUrl } from './helpers/gateway.js'
import { ec, managerToken, rsa, SECRET, sign, signRaw } from './helpers/tokens.js'
import { OTHER_STREAM, STREAM, seedWorld } from './helpers/world.js'

const db = await freshDatabase(t)
await seedWorld(db.pool)
const app = await gateway(t, { pool: db.pool })

const UNAUTHORIZED = { statusCode: 401, code: 'FAC_ERR_UNAUTHORIZED', error: 'Unauthorized', message: 'Missing or invalid token' }
const base64url = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url')
const now = () => Math.floor(Date.now() / 1000)
const manager = { sub: 'm', role: 'manager', streamIds: [STREAM] }

async function get (headers: Record<string, string>, url = viewUrl(STREAM, 'a1')) {
  return app.inject({ url, headers })
}

t.test('the token is read from the auth header, or Authorization: Bearer', async (t) => {
  const token = managerToken([STREAM])
  const forms: Array<Record<string, string>> = [{ auth: token }, { auth: `Bearer ${token}` }, { authorization: `Bearer ${token}` }, { authorization: `bearer  ${token}` }]
  for (const headers of forms) {
    const response = await get(headers)
    t.equal(response.statusCode, 200, JSON.stringify(Object.keys(headers)))
    t.equal(response.json().name, 'Ann Lee')
  }
  const handMade = await get({ auth: signRaw({ alg: 'HS256', typ: 'JWT' }, { ...manager, exp: now() + 600 }) })
  t.equal(handMade.statusCode, 200, 'a hand-made token is good when its claims are (so the 401s below are about the claims)')
})

t.test('every failed authentication is the same 401', async (t) => {
  const cases: Record<string, Record<string, string>> = {
    'no token': {},
    'empty auth header': { auth: ' ' },
    'not a JWT': { auth: 'not-a-jwt' },
    'Authorization without Bearer': { authorization: managerToken([STREAM]) },
    'Basic credentials': { authorization: 'Basic dXNlcjpwYXNz' },
    'signed with another secret': { auth: sign(manager, { key: 'x'.repeat(40) }) },
    'a tampered payload': { auth: tamper(managerToken([STREAM])) },
    expired: { auth: sign({ ...manager, exp: now() - 60 }, { expiresIn: null }) },
    'no exp': { auth: sign(manager, { expiresIn: null }) },
    'exp not a number': { auth: signRaw({ alg: 'HS256', typ: 'JWT' }, { ...manager, exp: 'never' }) },
    'an array payload': { auth: signRaw({ alg: 'HS256', typ: 'JWT' }, [manager]) },
    'nbf in the future': { auth: sign(manager, { notBefore: 600 }) },
    'no stream claim': { auth: sign({ sub: 'm', role: 'manager' }) },
    'streamIds not an array': { auth: sign({ ...manager, streamIds: STREAM }) },
    'streamIds holding a number': { auth: sign({ ...manager, streamIds: [STREAM, 7] }) },
    'role not a string': { auth: sign({ ...manager, role: ['manager'] }) },
    'agentGroupIds not an array': { auth: sign({ ...manager, agentGroupIds: 'g1' }) },
    'alg none, unsigned': { auth: `${base64url({ alg: 'none', typ: 'JWT' })}.${base64url({ ...manager, exp: now() + 600 })}.` },
    'alg none, with a signature': { auth: `${base64url({ alg: 'none', typ: 'JWT' })}.${base64url({ ...manager, exp: now() + 600 })}.c2lnbmF0dXJl` },
    'HS384 where HS256 is pinned': { auth: sign(manager, { algorithm: 'HS384' }) },
    'RS256 where HS256 is pinned': { auth: sign(manager, { algorithm: 'RS256', key: rsa.privateKey }) },
    'an unknown crit header': { auth: signRaw({ alg: 'HS256', typ: 'JWT', crit: ['x-custom'], 'x-custom': 1 }, { ...manager, exp: now() + 600 }) },
    'three dots': { auth: 'a.b.c.d' },
    'a header that is not JSON': { auth: `${Buffer.from('{alg').toString('base64url')}.${base64url(manager)}.sig` },
    'a huge garbage token': { auth: 'x'.repeat(8000) }
  }
  for (const [what, headers] of Object.entries(cases)) {
    const response = await get(headers)
    t.equal(response.statusCode, 401, what)
    t.same(response.json(), UNAUTHORIZED, `${what}: the one generic body`)
  }
})

t.test('kid is never used to find a key: a path or SQL in it changes nothing', async (t) => {
  for (const kid of ['../../../../etc/passwd', "x' OR '1'='1' --", 'file:///proc/self/environ']) {
    const good = await get({ auth: signRaw({ alg: 'HS256', typ: 'JWT', kid }, { ...manager, exp: now() + 600 }) })
    t.equal(good.statusCode, 200, `${kid}: verified with the configured secret, as any token`)
    const forged = await get({ auth: signRaw({ alg: 'HS256', typ: 'JWT', kid }, { ...manager, exp: now() + 600 }, 'y'.repeat(40)) })
    t.equal(forged.statusCode, 401, `${kid}: and refused when signed with anything else`)
  }
})

t.test('authentication comes before validation: an anonymous caller learns nothing', async (t) => {
  const response = await get({}, viewUrl('bad stream!', 'a1'))
  t.equal(response.statusCode, 401)
})

t.test('a single streamId claim is accepted for streamIds', async (t) => {
  const response = await get({ auth: sign({ sub: 'm', role: 'manager', streamId: STREAM }) })
  t.equal(response.statusCode, 200)
})

t.test('403: a stream the token does not name', async (t) => {
  const response = await get({ auth: managerToken([OTHER_STREAM]) })
  t.equal(response.statusCode, 403)
  t.same(response.json(), { statusCode: 403, code: 'FAC_ERR_FORBIDDEN', error: 'Forbidden', message: 'Not allowed to read this stream' })
})

t.test('403 for a foreign stream runs no SQL at all (it holds with no database)', async (t) => {
  const deadPool = new pg.Pool({ connectionString: 'postgres://nobody@127.0.0.1:9/none', connectionTimeoutMillis: 500 })
  t.teardown(() => deadPool.end())
  const offline = await gateway(t, { pool: deadPool })
  const forbidden = await offline.inject({ url: viewUrl(STREAM, 'a1'), headers: { auth: managerToken([OTHER_STREAM]) } })
  t.equal(forbidden.statusCode, 403)
  const agentOther = await offline.inject({ url: viewUrl(STREAM, 'a1'), headers: { auth: sign({ sub: 'a2', role: 'agent', streamIds: [STREAM] }) } })
  t.equal(agentOther.statusCode, 403)
  const reached = await offline.inject({ url: viewUrl(STREAM, 'a1'), headers: { auth: managerToken([STREAM]) } })
  t.equal(reached.statusCode, 503, 'while an allowed request does reach for the database')
})

t.test('role agent reads only itself', async (t) => {
  const own = await get({ auth: sign({ sub: 'a1', role: 'agent', streamIds: [STREAM] }) })
  t.equal(own.statusCode, 200)
  t.equal(own.json().name, 'Ann Lee')
  const other = await get({ auth: sign({ sub: 'a2', role: 'agent', streamIds: [STREAM] }) })
  t.equal(other.statusCode, 403)
  t.equal(other.json().message, 'An agent may read only itself')
  const noSubject = await get({ auth: sign({ role: 'agent', streamIds: [STREAM] }) })
  t.equal(noSubject.statusCode, 403)
})

t.test('any other role, or none, is refused', async (t) => {
  for (const claims of [{ role: 'supervisor' }, { role: 'admin' }, {}]) {
    const response = await get({ auth: sign({ sub: 'm', streamIds: [STREAM], ...claims }) })
    t.equal(response.statusCode, 403, JSON.stringify(claims))
    t.equal(response.json().code, 'FAC_ERR_FORBIDDEN')
  }
})

t.test('a manager restricted to groups', async (t) => {
  const g1 = managerToken([STREAM], ['g1'])
  const own = await get({ auth: g1 })
  t.equal(own.statusCode, 200, 'reads an agent of its group')
  const body = own.json()
  t.same(body.active.map((c: { conversationId: string }) => c.conversationId), ['act-1'], 'sees only conversations of its groups')
  t.same(body.queue.map((c: { conversationId: string }) => c.conversationId), ['q-1'], 'not even ungrouped ones')
  t.equal(body.resolutionTime, 633, 'the agent\'s own metrics are the agent\'s, whatever the group')

  const outside = await get({ auth: g1 }, viewUrl(STREAM, 'a2'))
  t.equal(outside.statusCode, 403, 'an agent outside its groups')
  t.equal(outside.json().message, "The agent is outside the token's agentGroupIds")
  const missing = await get({ auth: g1 }, viewUrl(STREAM, 'nobody'))
  t.equal(missing.statusCode, 403, 'the same 403 for an agent that does not exist: no probing')

  const filterOutside = await get({ auth: g1 }, viewUrl(STREAM, 'a1', 'agentGroupId=g1,g2'))
  t.equal(filterOutside.statusCode, 403, 'an agentGroupId filter outside its groups')
  const filterInside = await get({ auth: managerToken([STREAM], ['g1', 'g2']) }, viewUrl(STREAM, 'a1', 'agentGroupId=g2'))
  t.same(filterInside.json().active.map((c: { conversationId: string }) => c.conversationId), ['act-2'], 'a filter inside its groups narrows further')

  const none = await get({ auth: managerToken([STREAM], []) })
  t.equal(none.statusCode, 403, 'an empty agentGroupIds allows no agent')
})

t.test('agentGroupIds on an agent token does not restrict it', async (t) => {
  const response = await get({ auth: sign({ sub: 'a1', role: 'agent', streamIds: [STREAM], agentGroupIds: ['g3'] }) })
  t.equal(response.statusCode, 200)
  t.equal(response.json().active.length, 3)
})

t.test('public keys: RS256 and ES256, pinned to the key given', async (t) => {
  for (const [name, keys, algorithm] of [['RSA', rsa, 'RS256'], ['EC P-256', ec, 'ES256']] as const) {
    const keyed = await gateway(t, { pool: db.pool, jwt: { publicKey: keys.publicKey } })
    const ok = await keyed.inject({ url: viewUrl(STREAM, 'a1'), headers: { auth: sign(manager, { algorithm, key: keys.privateKey }) } })
    t.equal(ok.statusCode, 200, `${name}: a token signed with the private key`)
    for (const [how, key] of [['as is', keys.publicKey], ['after leading whitespace', `\n  ${keys.publicKey}`], ['trimmed', keys.publicKey.trim()]]) {
      const confused = await keyed.inject({ url: viewUrl(STREAM, 'a1'), headers: { auth: signRaw({ alg: 'HS256', typ: 'JWT' }, { ...manager, exp: now() + 600 }, key) } })
      t.equal(confused.statusCode, 401, `${name}: an HS256 token "signed" with the public key ${how} is refused`)
    }
    const hmac = await keyed.inject({ url: viewUrl(STREAM, 'a1'), headers: { auth: sign(manager) } })
    t.equal(hmac.statusCode, 401, `${name}: an HS256 token is refused`)
  }
})

t.test('issuer and audience, when configured, are required and checked', async (t) => {
  const strict = await gateway(t, { pool: db.pool, jwt: { secret: SECRET, issuer: 'https://idp.example', audience: 'wallboard' } })
  const request = (auth: string) => strict.inject({ url: viewUrl(STREAM, 'a1'), headers: { auth } })
  t.equal((await request(sign(manager, { iss: 'https://idp.example', aud: 'wallboard' }))).statusCode, 200)
  t.equal((await request(sign(manager, { iss: 'https://evil.example', aud: 'wallboard' }))).statusCode, 401, 'wrong iss')
  t.equal((await request(sign(manager, { iss: 'https://idp.example', aud: 'other' }))).statusCode, 401, 'wrong aud')
  t.equal((await request(sign(manager, { aud: 'wallboard' }))).statusCode, 401, 'missing iss')
  t.equal((await request(sign(manager, { iss: 'https://idp.example' }))).statusCode, 401, 'missing aud')
})

t.test('clock tolerance, in seconds', async (t) => {
  const tolerant = await gateway(t, { pool: db.pool, jwt: { secret: SECRET, clockToleranceSeconds: 60 } })
  const justExpired = sign({ ...manager, exp: now() - 10 }, { expiresIn: null })
  t.equal((await tolerant.inject({ url: viewUrl(STREAM, 'a1'), headers: { auth: justExpired } })).statusCode, 200, 'expired 10 s ago, within 60 s')
  const longExpired = sign({ ...manager, exp: now() - 120 }, { expiresIn: null })
  t.equal((await tolerant.inject({ url: viewUrl(STREAM, 'a1'), headers: { auth: longExpired } })).statusCode, 401, 'expired 120 s ago')
  t.equal((await get({ auth: justExpired })).statusCode, 401, 'no tolerance by default')
})

t.test('verified tokens are remembered, never past their exp; a tampered copy is still refused', async (t) => {
  const exp = now() + 2
  const soon = sign({ ...manager, exp }, { expiresIn: null })
  t.equal((await get({ auth: soon })).statusCode, 200, 'verified, and now remembered')
  t.equal((await get({ auth: soon })).statusCode, 200, 'again')
  t.same((await get({ auth: tamper(soon) })).json(), UNAUTHORIZED, 'another text is verified on its own')
  await new Promise((resolve) => setTimeout(resolve, (exp + 0.2) * 1000 - Date.now())) // until past exp
  t.same((await get({ auth: soon })).json(), UNAUTHORIZED, 'expired: refused although remembered')
})

function tamper (token: string): string {
  const [header, payload, signature] = token.split('.') as [string, string, string]
  const claims = JSON.parse(Buffer.from(payload, 'base64url').toString())
  return `${header}.${base64url({ ...claims, streamIds: [STREAM, OTHER_STREAM] })}.${signature}`
}
