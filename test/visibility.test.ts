// A decoded commit can reach the gateway before its transaction is visible to
// new snapshots: the commit record is flushed (and decoded) before the
// transaction leaves the proc array, and with a synchronous standby it waits
// there for the standby's answer. Here a synchronous standby that never
// answers holds a committed write invisible: the refresh it wakes must not be
// the last word, and the view must follow once the write is seen.
import t from 'tap'
import pg from 'pg'
import { serverOfItsOwn } from './helpers/database.js'
import { listen } from './helpers/events.js'
import { gateway, viewUrl } from './helpers/gateway.js'
import { managerToken } from './helpers/tokens.js'
import { seedWorld, STREAM } from './helpers/world.js'

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

t.test('a write decoded before it is visible: its view follows once it is seen, never stale for good', async (t) => {
  const { database, pool: admin } = await serverOfItsOwn(t) // it gets a synchronous standby that never answers
  await seedWorld(admin)

  const app = await gateway(t, { connectionString: database.connectionString, live: { coalesceMillis: 20 } })
  const client = listen(`${await app.listen({ port: 0, host: '127.0.0.1' })}${viewUrl(STREAM, 'a1')}/events`, managerToken([STREAM]))
  t.teardown(() => { client.close() })
  await client.next((event) => event.type === 'view') // (after the slot is up: the first view waits for it)

  await admin.query("ALTER SYSTEM SET synchronous_standby_names = 'nobody'")
  await admin.query('SELECT pg_reload_conf()')
  t.teardown(async () => { await admin.query('ALTER SYSTEM RESET synchronous_standby_names'); await admin.query('SELECT pg_reload_conf()') })
  await sleep(200)

  const writer = new pg.Client({ connectionString: database.connectionString })
  writer.on('error', () => {})
  await writer.connect()
  t.teardown(() => writer.end())
  writer.on('notice', () => {}) // the cancelled wait's warning: the transaction has already committed locally
  const { rows: [{ pid }] } = await writer.query('SELECT pg_backend_pid() AS pid')
  const from = client.events.length
  const written = writer.query("UPDATE agents SET first_name = 'Held' WHERE stream_id = $1 AND id = 'a1'", [STREAM])
  let waiting = false
  for (let i = 0; i < 100 && !waiting; i++) {
    await sleep(20)
    waiting = (await admin.query("SELECT 1 FROM pg_stat_activity WHERE pid = $1 AND wait_event = 'SyncRep'", [pid])).rowCount === 1
  }
  t.ok(waiting, 'the write committed locally and waits for the standby')
  await sleep(500) // decoded, and refreshed more than once meanwhile
  t.notOk(client.events.slice(from).some((event) => event.data.includes('"firstName":"Held"')), 'not visible yet, so never shown')

  await admin.query('SELECT pg_cancel_backend($1)', [pid]) // the wait ends: the transaction leaves the proc array
  await written
  const seenAt = Date.now()
  const held = await client.next((event) => event.data.includes('"firstName":"Held"'), 2000, from)
  t.equal(held.type, 'view', `the view, once the write is visible (${Date.now() - seenAt} ms later)`)
})
