// The live options: off, a listening connection of its own, unnamed statements;
// and a refresh that fails (a statement timeout) is told and tried again.
import t from 'tap'
import { freshDatabase } from './helpers/database.js'
import { listen } from './helpers/events.js'
import { gateway, viewUrl } from './helpers/gateway.js'
import { insertConversations } from './helpers/rows.js'
import { CHANNEL } from '../lib/live/listener.js'
import { managerToken } from './helpers/tokens.js'
import { seedWorld, STREAM } from './helpers/world.js'

const db = await freshDatabase(t)
await seedWorld(db.pool)
const token = managerToken([STREAM])
const events = (agentId: string) => `${viewUrl(STREAM, agentId)}/events`

t.test('live.enabled false: no /events routes, the GET routes as before', async (t) => {
  const app = await gateway(t, { pool: db.pool, live: { enabled: false } })
  t.equal((await app.inject({ url: events('a1'), headers: { auth: token } })).statusCode, 404)
  t.equal((await app.inject({ url: viewUrl(STREAM, 'a1'), headers: { auth: token } })).statusCode, 200)
})

t.test('live.connectionString: the listener connects there, not with the pool\'s settings; with preparedStatements false, changes arrive', async (t) => {
  // A role of its own for the listener (the test server is shared), so that its session tells where it connected.
  const role = `fac_listener_${db.name}`
  await db.pool.query(`CREATE ROLE ${role} LOGIN PASSWORD 'listener'`)
  t.teardown(async () => { await db.pool.query(`DROP ROLE ${role}`) })
  const url = new URL(db.connectionString)
  url.username = role
  url.password = 'listener'
  const app = await gateway(t, { pool: db.pool, preparedStatements: false, live: { connectionString: url.toString(), coalesceMillis: 20 } })
  const { rows } = await db.pool.query("SELECT usename FROM pg_stat_activity WHERE datname = current_database() AND application_name = 'fastify-active-conversations listener'")
  t.same(rows, [{ usename: role }], 'the one listening session is live.connectionString\'s')
  const client = listen(`${await app.listen({ port: 0, host: '127.0.0.1' })}${events('a2')}`, token)
  t.teardown(() => { client.close() })
  await client.next((event) => event.type === 'view')
  await insertConversations(db.pool, STREAM, [{ id: 'unnamed', status: 'queued', group: 'g3' }])
  await client.next((event) => event.data.includes('"conversationId":"unnamed"'), 2000)
  t.pass('a change to g3\'s queue reached its member a2')
})

t.test('a refresh that fails: `event: error` 503, then the view once a retry succeeds', async (t) => {
  const app = await gateway(t, { connectionString: db.connectionString, statementTimeoutMillis: 300, live: { coalesceMillis: 20, retryMillis: 200 } })
  const client = listen(`${await app.listen({ port: 0, host: '127.0.0.1' })}${events('a1')}`, token)
  t.teardown(() => { client.close() })
  await client.next((event) => event.type === 'view')

  // The views statement reads agents: held, it runs into the statement timeout. A notice names a1;
  // the locker renames a1 without telling anyone (no triggers), so only the retry can bring the new name.
  const locker = await db.pool.connect()
  t.teardown(() => { locker.release() })
  await locker.query('BEGIN')
  await locker.query('LOCK TABLE agents IN ACCESS EXCLUSIVE MODE')
  await locker.query('SET LOCAL session_replication_role = replica')
  await locker.query("UPDATE agents SET first_name = 'Retried' WHERE stream_id = $1 AND id = 'a1'", [STREAM])
  await db.pool.query('SELECT pg_notify($1, $2)', [CHANNEL, JSON.stringify({ s: STREAM, a: ['a1'], g: [], u: false, m: false })])
  const error = await client.next((event) => event.type === 'error', 3000)
  t.match(JSON.parse(error.data), { statusCode: 503, code: 'FAC_ERR_DATABASE_UNAVAILABLE' })
  await locker.query('COMMIT')
  await client.next((event) => event.type === 'view' && JSON.parse(event.data).firstName === 'Retried', 3000)
  t.pass('the change arrives once the retry reads it')
})
