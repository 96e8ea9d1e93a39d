// Property test: whatever the path, query and headers hold, the status is one of
// 200/400/401/403/404/414/431 with the documented error body, never a 500.
import { connect } from 'node:net'
import t from 'tap'
import fc from 'fast-check'
import Ajv from 'ajv'
import { ErrorResponse } from '../schemas/index.js'
import { freshDatabase } from './helpers/database.js'
import { gateway, viewUrl } from './helpers/gateway.js'
import { managerToken, sign } from './helpers/tokens.js'
import { STREAM, seedWorld } from './helpers/world.js'

const db = await freshDatabase(t)
await seedWorld(db.pool)
const app = await gateway(t, { pool: db.pool })
const isErrorBody = new Ajv.default().compile(ErrorResponse)
const token = managerToken([STREAM])
const ALLOWED = [200, 400, 401, 403, 404, 414]

const nasty = ['%2F', '%2e%2e', "'", '"', '%00', '%27%20OR%201%3D1--', '%E0%A4%A', '%', 'a1', STREAM, '..', '%20', '😀', 'a'.repeat(64), 'a'.repeat(65), 'a'.repeat(101)]
// A path segment: raw nasties, or any string percent-encoded.
const segment = fc.oneof(fc.constantFrom(...nasty), fc.string({ unit: 'binary', maxLength: 120 }).map(encodeURIComponent))
// Valid values often enough that 200 is among the answers too.
const streamSegment = fc.oneof({ arbitrary: fc.constant(STREAM), weight: 2 }, { arbitrary: segment, weight: 3 })
const agentSegment = fc.oneof({ arbitrary: fc.constant('a1'), weight: 2 }, { arbitrary: segment, weight: 3 })
const queryValue = fc.oneof(fc.constantFrom(...nasty, '', ',', 'g1,,g2', 'chat', 'call'), fc.string({ unit: 'binary', maxLength: 80 }).map(encodeURIComponent))
const queryPart = fc.array(fc.tuple(fc.constantFrom('agentGroupId', 'source', 'agentId', 'agentGroupId[]', 'x', '__proto__', 'constructor'), queryValue), { maxLength: 60 })
  .map((pairs) => pairs.map(([key, value]) => `${key}=${value}`).join('&'))
const query = fc.oneof({ arbitrary: fc.constant(''), weight: 1 }, { arbitrary: queryPart, weight: 2 })
const authHeader = fc.oneof(
  { arbitrary: fc.constant(token), weight: 3 },
  fc.constant(`Bearer ${token}`),
  fc.string({ unit: fc.integer({ min: 0x20, max: 0x7e }).map((c) => String.fromCharCode(c)), maxLength: 300 }),
  fc.constant(sign({ role: 'manager', streamIds: [STREAM, 7] })),
  fc.constant(`${token}x`)
)

t.test('any path, query and auth header: an allowed status with the documented body', async (t) => {
  const seen = new Set<number>()
  await fc.assert(fc.asyncProperty(streamSegment, agentSegment, query, authHeader, async (stream, agent, query, auth) => {
    const response = await app.inject({ url: viewUrl(stream, agent, query), headers: { auth } })
    seen.add(response.statusCode)
    if (!ALLOWED.includes(response.statusCode)) return false
    // A dot segment (`..`, `%2e%2e`) normalizes the URL off this route: the gateway's own 404 answers it.
    if (response.statusCode === 404 && /^Route GET:/.test(response.json().message)) return [stream, agent].some((s) => /^(\.|%2e){1,2}$/i.test(s))
    return response.statusCode === 200 || isErrorBody(response.json())
  }), { numRuns: 1500, seed: 20261125 })
  t.ok(seen.has(200) && seen.has(400) && seen.has(401) && seen.has(414), `answers seen: ${[...seen].sort().join(', ')}`)
})

t.test('arrays and objects where strings are expected, repeated and empty values', async (t) => {
  const cases = [
    'source=chat&source=chat', 'source[]=chat', 'source[a]=chat', 'agentId=a1&agentId=a1', 'agentGroupId=', 'agentGroupId=g1&agentGroupId=',
    `agentGroupId=${'g1,'.repeat(60)}`, 'source=%00', '__proto__[x]=1', 'constructor=1&hasOwnProperty=1'
  ]
  for (const query of cases) {
    const response = await app.inject({ url: viewUrl(STREAM, 'a1', query), headers: { auth: token } })
    t.ok([200, 400].includes(response.statusCode), `${query}: ${response.statusCode}`)
    if (response.statusCode !== 200) t.ok(isErrorBody(response.json()), `${query}: the documented body`)
  }
})

t.test('an empty path segment is an invalid id; a dot segment leaves the route (the gateway\'s 404)', async (t) => {
  const empty = await app.inject({ url: '/public//analytics/manager/agent/a1/active-conversations', headers: { auth: token } })
  t.equal(empty.statusCode, 400)
  t.match(empty.json().message, /^params\/streamId/)
  const dots = await app.inject({ url: '/public/%2e%2e/analytics/manager/agent/a1/active-conversations', headers: { auth: token } })
  t.equal(dots.statusCode, 404)
  t.match(dots.json().message, /^Route GET:\/analytics\//, 'normalized to /analytics/…, which is not this route')
})

t.test('over a real socket: a 16 KB header gets 431, an overlong path parameter 414', async (t) => {
  const address = await app.listen({ host: '127.0.0.1', port: 0 })
  const { port } = new URL(address)
  const raw = (request: string) => new Promise<string>((resolve, reject) => {
    const socket = connect(Number(port), '127.0.0.1', () => socket.end(request))
    let answer = ''
    socket.on('data', (chunk) => { answer += String(chunk) })
    socket.on('end', () => resolve(answer))
    socket.on('error', reject)
  })
  const big = await raw(`GET ${viewUrl(STREAM, 'a1')} HTTP/1.1\r\nHost: x\r\nauth: ${'x'.repeat(17 * 1024)}\r\nConnection: close\r\n\r\n`)
  t.match(big, /^HTTP\/1\.1 431 /)
  const long = await raw(`GET ${viewUrl('s'.repeat(101), 'a1')} HTTP/1.1\r\nHost: x\r\nauth: ${token}\r\nConnection: close\r\n\r\n`)
  t.match(long, /^HTTP\/1\.1 414 /)
  t.ok(isErrorBody(JSON.parse(long.slice(long.indexOf('\r\n\r\n') + 4))), 'with the four-field error body')
})
