// readPool: the statement reads the replica; when the replica cannot answer, the
// primary; a statement that fails on its own is not sent twice.
import t from 'tap'
import pg from 'pg'
import { countStatements } from '../support/count-statements.js'
import { freshDatabase } from './helpers/database.js'
import { gateway, viewUrl } from './helpers/gateway.js'
import { logLines } from './helpers/log.js'
import { insertStream } from './helpers/rows.js'
import { sign } from './helpers/tokens.js'

const primary = await freshDatabase(t)
const replica = await freshDatabase(t)
// The same agent in both, named after where it was read.
await insertStream(primary.pool, 's1', { agents: [{ id: 'a1', name: ['From', 'primary'] }] })
await insertStream(replica.pool, 's1', { agents: [{ id: 'a1', name: ['From', 'replica'] }] })
const auth = sign({ role: 'manager', streamIds: ['s1'] })

const primaryStatements = countStatements(primary.pool)

t.test('the replica answers when it can', async (t) => {
  const app = await gateway(t, { pool: primary.pool, readPool: replica.pool })
  const before = primaryStatements.count() // after registration, which checks the pool's session settings
  const response = await app.inject({ url: viewUrl('s1', 'a1'), headers: { auth } })
  t.equal(response.statusCode, 200)
  t.equal(response.json().lastName, 'replica')
  t.equal(primaryStatements.count(), before, 'the primary was not read')
})

t.test('an unreachable replica: the primary answers, with a warning in the log', async (t) => {
  const unreachable = new pg.Pool({ host: '127.0.0.1', port: 1, user: 'nobody', database: 'none', connectionTimeoutMillis: 500 })
  unreachable.on('error', () => {})
  t.teardown(() => unreachable.end())
  const log = logLines()
  const app = await gateway(t, { pool: primary.pool, readPool: unreachable }, { logger: { level: 'warn', stream: log.stream } })
  const response = await app.inject({ url: viewUrl('s1', 'a1'), headers: { auth } })
  t.equal(response.statusCode, 200)
  t.equal(response.json().lastName, 'primary')
  t.match(log.lines.join(''), /read replica unavailable, reading the primary/)
})

t.test('a replica where the statement itself fails: 500, and the primary is not tried', async (t) => {
  const empty = await freshDatabase(t, { migrated: false }) // no tables: the statement fails with 42P01
  const app = await gateway(t, { pool: primary.pool, readPool: empty.pool })
  const before = primaryStatements.count()
  const response = await app.inject({ url: viewUrl('s1', 'a1'), headers: { auth } })
  t.equal(response.statusCode, 500)
  t.equal(response.json().code, 'FAC_ERR_INTERNAL')
  t.equal(primaryStatements.count(), before)
})

t.test('readPool must be a pool', async (t) => {
  await t.rejects(gateway(t, { pool: primary.pool, readPool: {} as pg.Pool }), { code: 'FAC_ERR_INVALID_OPTION', message: /`readPool` must be a pg.Pool/ })
})
