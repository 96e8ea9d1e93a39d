// The live options: off, a replication connection of its own, unnamed
// statements, a role that may not replicate (polling); and a refresh that
// fails (a statement timeout) is told and tried again.
import t from 'tap'
import { freshDatabase } from './helpers/database.js'
import { listen } from './helpers/events.js'
import { gateway, viewUrl } from './helpers/gateway.js'
import { insertConversations } from './helpers/rows.js'
import { managerToken } from './helpers/tokens.js'
import { seedWorld, STREAM } from './helpers/world.js'
import { logLines } from './helpers/log.js'

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

const db = await freshDatabase(t)
await seedWorld(db.pool)
const token = managerToken([STREAM])
const events = (agentId: string) => `${viewUrl(STREAM, agentId)}/events`

t.test('live.enabled false: no /events routes, the GET routes as before', async (t) => {
  const app = await gateway(t, { pool: db.pool, live: { enabled: false } })
  t.equal((await app.inject({ url: events('a1'), headers: { auth: token } })).statusCode, 404)
  t.equal((await app.inject({ url: viewUrl(STREAM, 'a1'), headers: { auth: token } })).statusCode, 200)
})

/** A role of its own (the test server is shared), so that its sessions tell where they connected. */
async function roleUrl (t: { teardown: (fn: () => unknown) => void }, name: string, attributes: string): Promise<string> {
  const role = `fac_${name}_${db.name}`
  await db.pool.query(`CREATE ROLE ${role} LOGIN PASSWORD 'secret' ${attributes}`)
  t.teardown(async () => { await db.pool.query(`DROP ROLE ${role}`) })
  const url = new URL(db.connectionString)
  url.username = role
  url.password = 'secret'
  return url.toString()
}

/** The live views' warnings (not the pool's, which a shared test role gets). */
const liveWarnings = (lines: string[]): string[] => lines.filter((line) => /live views|replication|slot/.test(line))

const replicationSessions = async () => (await db.pool.query(
  "SELECT usename FROM pg_stat_activity WHERE datname = current_database() AND application_name = 'fastify-active-conversations changes'")).rows

t.test('live.connectionString: the replication connection connects there, not with the pool\'s settings; with preparedStatements false, changes arrive', async (t) => {
  const url = await roleUrl(t, 'replicator', 'REPLICATION')
  const log = logLines()
  const app = await gateway(t, { pool: db.pool, preparedStatements: false, live: { connectionString: url, coalesceMillis: 20, pollMillis: 60_000 } }, { logger: { level: 'warn', stream: log.stream } })
  t.same(await replicationSessions(), [], 'no stream open: no slot')
  const client = listen(`${await app.listen({ port: 0, host: '127.0.0.1' })}${events('a2')}`, token)
  t.teardown(() => { client.close() })
  await client.next((event) => event.type === 'view')
  for (let i = 0; i < 100 && (await replicationSessions()).length === 0; i++) await sleep(20)
  t.same(await replicationSessions(), [{ usename: `fac_replicator_${db.name}` }], 'the one replication session is live.connectionString\'s')
  await insertConversations(db.pool, STREAM, [{ id: 'unnamed', status: 'queued', group: 'g3' }])
  await client.next((event) => event.data.includes('"conversationId":"unnamed"'), 2000)
  t.pass('a change to g3\'s queue reached its member a2, decoded (polling is once a minute here)')
  t.same(liveWarnings(log.lines), [], 'no warning')
})

t.test('a role without REPLICATION: one warning at registration that says why and what to change; streams are polled', async (t) => {
  const url = await roleUrl(t, 'plain', '')
  const log = logLines()
  const app = await gateway(t, { pool: db.pool, live: { connectionString: url, coalesceMillis: 20, pollMillis: 200 } }, { logger: { level: 'warn', stream: log.stream } })
  t.equal(liveWarnings(log.lines).length, 1, 'one warning')
  t.match(liveWarnings(log.lines)[0], /every 200 ms \(live.pollMillis\) instead of decoding changes: the role may not replicate .*give live.connectionString a role with REPLICATION/)
  const client = listen(`${await app.listen({ port: 0, host: '127.0.0.1' })}${events('a2')}`, token)
  t.teardown(() => { client.close() })
  const first = await client.next((event) => event.type === 'view')
  await sleep(500)
  t.equal(client.events.filter((event) => event.type === 'view').length, 1, 'polled, but nothing changed apart from durations: nothing sent')
  const changedAt = Date.now()
  await insertConversations(db.pool, STREAM, [{ id: 'polled', status: 'queued', group: 'g3' }])
  await client.next((event) => event.data.includes('"conversationId":"polled"'), 2000)
  t.ok(Date.now() - changedAt < 600, `within a poll: ${Date.now() - changedAt} ms`)
  t.not(first.data, '')
  t.same(await replicationSessions(), [], 'no replication session')
  t.equal(liveWarnings(log.lines).length, 1, 'still one warning after the stream opened')
})

t.test('a refresh that fails: `event: error` 503, then the view once a retry succeeds', async (t) => {
  const app = await gateway(t, { connectionString: db.connectionString, statementTimeoutMillis: 300, live: { coalesceMillis: 20, retryMillis: 200 } })
  const client = listen(`${await app.listen({ port: 0, host: '127.0.0.1' })}${events('a1')}`, token)
  t.teardown(() => { client.close() })
  await client.next((event) => event.type === 'view')

  // The views statement reads agents: held, it runs into the statement timeout. A change to one of
  // a1's conversations (no key of agents changes: no foreign key check waits) wakes the refresh.
  const locker = await db.pool.connect()
  t.teardown(() => { locker.release() })
  await locker.query('BEGIN')
  await locker.query('LOCK TABLE agents IN ACCESS EXCLUSIVE MODE')
  await db.pool.query("UPDATE conversations SET customer_first_name = 'Retried' WHERE stream_id = $1 AND id = 'act-2'", [STREAM])
  const error = await client.next((event) => event.type === 'error', 3000)
  t.match(JSON.parse(error.data), { statusCode: 503, code: 'FAC_ERR_DATABASE_UNAVAILABLE' })
  await locker.query('COMMIT')
  await client.next((event) => event.type === 'view' && event.data.includes('"firstName":"Retried"'), 3000)
  await db.pool.query("UPDATE conversations SET customer_first_name = 'Cus' WHERE stream_id = $1 AND id = 'act-2'", [STREAM])
  t.pass('the change arrives once the retry reads it')
})
