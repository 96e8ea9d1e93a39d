// Every error status with its one documented body: 400, 404, 500, 503.
import t from 'tap'
import pg from 'pg'
import { AGENT_VIEWS_STATEMENT } from '../lib/sql/views.js'
import { freshDatabase } from './helpers/database.js'
import { gateway, viewUrl } from './helpers/gateway.js'
import { logLines } from './helpers/log.js'
import { managerToken } from './helpers/tokens.js'
import { OTHER_STREAM, STREAM, seedWorld } from './helpers/world.js'

const db = await freshDatabase(t)
await seedWorld(db.pool)
const app = await gateway(t, { pool: db.pool })
const auth = managerToken([STREAM, OTHER_STREAM])

t.test('400 names the field', async (t) => {
  const cases: Array<[string, string, RegExp]> = [
    ['a stream id with a forbidden character', viewUrl('st!main', 'a1'), /^params\/streamId must match pattern/],
    ['a stream id of 65 characters', viewUrl('s'.repeat(65), 'a1'), /^params\/streamId must/],
    ['an agent id with a space', viewUrl(STREAM, 'a%201'), /^params\/agentId must match pattern/],
    ['an agent id with a quote', viewUrl(STREAM, "a1'--"), /^params\/agentId must match pattern/],
    ['an encoded slash', viewUrl(STREAM, 'a%2F1'), /^params\/agentId must match pattern/],
    ['an unknown source', viewUrl(STREAM, 'a1', 'source=sms'), /^querystring\/source must be equal to one of the allowed values/],
    ['two sources', viewUrl(STREAM, 'a1', 'source=chat&source=call'), /^querystring\/source must be/],
    ['an empty source', viewUrl(STREAM, 'a1', 'source='), /^querystring\/source must be/],
    ['an empty agentGroupId', viewUrl(STREAM, 'a1', 'agentGroupId='), /^querystring\/agentGroupId\/0 must/],
    ['an empty id between commas', viewUrl(STREAM, 'a1', 'agentGroupId=g1,,g2'), /^querystring\/agentGroupId\/1 must/],
    ['a bad group id', viewUrl(STREAM, 'a1', 'agentGroupId=g1&agentGroupId=g%3B2'), /^querystring\/agentGroupId\/1 must match pattern/],
    ['51 group ids', viewUrl(STREAM, 'a1', `agentGroupId=${Array.from({ length: 51 }, (_, i) => `g${i}`).join(',')}`), /^querystring\/agentGroupId must NOT have more than 50 items/],
    ['a bad agentId in the query', viewUrl(STREAM, 'a1', 'agentId=a%201'), /^querystring\/agentId must match pattern/],
    ['an agentId that is not the path\'s', viewUrl(STREAM, 'a1', 'agentId=a2'), /^querystring\/agentId must equal the path's agentId$/]
  ]
  for (const [what, url, message] of cases) {
    const response = await app.inject({ url, headers: { auth } })
    t.equal(response.statusCode, 400, what)
    const body = response.json()
    t.same(Object.keys(body), ['statusCode', 'code', 'error', 'message'], `${what}: the documented body`)
    t.match(body, { statusCode: 400, code: 'FAC_ERR_INVALID_REQUEST', error: 'Bad Request', message }, what)
  }
  const fifty = await app.inject({ url: viewUrl(STREAM, 'a1', `agentGroupId=${Array.from({ length: 50 }, (_, i) => `g${i}`).join(',')}`), headers: { auth } })
  t.equal(fifty.statusCode, 200, '50 group ids are fine')
})

t.test('404: the same answer for an agent that does not exist and one of another stream', async (t) => {
  const expected = { statusCode: 404, code: 'FAC_ERR_AGENT_NOT_FOUND', error: 'Not Found', message: 'No such agent in this stream' }
  const missing = await app.inject({ url: viewUrl(STREAM, 'nobody'), headers: { auth } })
  const elsewhere = await app.inject({ url: viewUrl(STREAM, 'a-only-other'), headers: { auth } })
  t.equal(missing.statusCode, 404)
  t.equal(elsewhere.statusCode, 404)
  t.same(missing.json(), expected)
  t.same(elsewhere.json(), expected)
  t.equal((await app.inject({ url: viewUrl(OTHER_STREAM, 'a-only-other'), headers: { auth } })).statusCode, 200, 'it does exist in its own stream')
})

t.test('500: the body says only "Internal Server Error"; the details go to the log with the request id', async (t) => {
  const broken = await freshDatabase(t, { migrated: false }) // no tables: every query fails
  const { lines, stream } = logLines()
  const logged = await gateway(t, { pool: broken.pool }, { logger: { level: 'error', stream } })
  const response = await logged.inject({ url: viewUrl(STREAM, 'a1'), headers: { auth } })
  t.equal(response.statusCode, 500)
  t.same(response.json(), { statusCode: 500, code: 'FAC_ERR_INTERNAL', error: 'Internal Server Error', message: 'Internal Server Error' })
  t.notMatch(response.body, /relation|agents|SELECT|42P01|at /, 'no SQL, driver message or stack')
  const entry = lines.map((line) => JSON.parse(line)).find((line) => line.msg === 'unexpected error')
  t.ok(entry, 'logged')
  t.equal(entry.err.code, '42P01', 'with the driver error')
  t.match(entry.reqId, /\S/, 'and the request id')
})

t.test('503 with Retry-After when the database cannot be reached', async (t) => {
  const unreachable = await gateway(t, { connectionString: 'postgres://nobody:x@127.0.0.1:9/none', connectionTimeoutMillis: 500 })
  const response = await unreachable.inject({ url: viewUrl(STREAM, 'a1'), headers: { auth } })
  t.equal(response.statusCode, 503)
  t.equal(response.headers['retry-after'], '5')
  t.same(response.json(), { statusCode: 503, code: 'FAC_ERR_DATABASE_UNAVAILABLE', error: 'Service Unavailable', message: 'Database unavailable, retry later' })
})

t.test('503 for a statement slower than statement_timeout, and the pool is fine afterwards', async (t) => {
  const own = await gateway(t, { connectionString: db.connectionString, statementTimeoutMillis: 300 })
  const locker = await lockAgents(db.connectionString)
  const started = Date.now()
  const slow = await own.inject({ url: viewUrl(STREAM, 'a1'), headers: { auth } })
  t.equal(slow.statusCode, 503, 'cancelled by Postgres')
  t.ok(Date.now() - started < 3000, 'after the statement timeout, not a hang')
  t.equal(slow.headers['retry-after'], '5')
  await locker.end()
  const after = await own.inject({ url: viewUrl(STREAM, 'a1'), headers: { auth } })
  t.equal(after.statusCode, 200, 'the next request is answered')
})

t.test('503, not a hang, when every connection of the pool is busy', async (t) => {
  const own = await gateway(t, { connectionString: db.connectionString, poolMax: 1, connectionTimeoutMillis: 300, statementTimeoutMillis: 10_000 })
  const locker = await lockAgents(db.connectionString)
  const first = own.inject({ url: viewUrl(STREAM, 'a1'), headers: { auth } }) // holds the only connection, waiting on the lock
  await new Promise((resolve) => setTimeout(resolve, 100))
  const second = await own.inject({ url: viewUrl(STREAM, 'a1'), headers: { auth } })
  t.equal(second.statusCode, 503, 'no connection within connectionTimeoutMillis')
  await locker.end()
  t.equal((await first).statusCode, 200, 'the waiting request completes once the lock is gone')
})

t.test('an idle connection of its own pool killed by Postgres: logged, and the next request is answered', async (t) => {
  const { lines, stream } = logLines()
  const own = await gateway(t, { connectionString: db.connectionString }, { logger: { level: 'warn', stream } })
  t.equal((await own.inject({ url: viewUrl(STREAM, 'a1'), headers: { auth } })).statusCode, 200)
  const { rows } = await db.pool.query(
    "SELECT count(pg_terminate_backend(pid))::int AS n FROM pg_stat_activity WHERE datname = $1 AND application_name = 'fastify-active-conversations'", [db.name])
  t.equal(rows[0].n, 1, 'its one idle connection was terminated')
  for (let i = 0; i < 50 && lines.length === 0; i++) await new Promise((resolve) => setTimeout(resolve, 20))
  t.match(JSON.parse(lines[0] ?? '{}'), { level: 40, msg: 'fastify-active-conversations: idle database connection lost' })
  t.equal((await own.inject({ url: viewUrl(STREAM, 'a1'), headers: { auth } })).statusCode, 200, 'the process lives on and the pool reconnects')
})

/** A session that holds an exclusive lock on agents until it ends. */
async function lockAgents (connectionString: string): Promise<pg.Client> {
  const locker = new pg.Client({ connectionString })
  await locker.connect()
  await locker.query('BEGIN')
  await locker.query('LOCK TABLE agents IN ACCESS EXCLUSIVE MODE')
  return locker
}

t.test('a server connection that does not hold the statements pg made (a transaction-mode pooler): 500, and one warning that says what to do', async (t) => {
  // What PgBouncer in transaction mode does now and then (test/pooler.test.ts), here for certain: each
  // connection of the pool already holds a statement of the plugin's name, which pg does not know of.
  const pool = new pg.Pool({ connectionString: db.connectionString, max: 3 })
  t.teardown(() => pool.end())
  const clients = await Promise.all([1, 2, 3].map(async () => await pool.connect()))
  for (const client of clients) await client.query(`PREPARE "${AGENT_VIEWS_STATEMENT}" AS SELECT 1`)
  for (const client of clients) client.release()
  const { lines, stream } = logLines()
  const logged = await gateway(t, { pool }, { logger: { level: 'warn', stream } })
  const statuses = []
  for (let i = 0; i < 4; i++) statuses.push((await logged.inject({ url: viewUrl(STREAM, 'a1'), headers: { auth } })).statusCode)
  t.same(statuses, [500, 500, 500, 200], 'each such connection fails once and is replaced by the pool')
  const hints = lines.map((line) => JSON.parse(line) as { msg: string, err?: { code: string } }).filter((line) => /preparedStatements: false/.test(line.msg))
  t.equal(hints.length, 1, 'one warning, not one a request')
  t.equal(hints[0]?.err?.code, '42P05')
})
