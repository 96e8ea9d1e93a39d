// The slot's life: made for the first stream and dropped a linger after the
// last; held up by a long transaction (the first view comes anyway, changes
// are polled, and decoding takes over once it ends); a server with
// wal_level = replica (polling, one warning that says what to change); a
// gateway killed with SIGKILL leaves no slot; synchronous_standby_names = '*'
// (PostgreSQL may pick the gateway as the synchronous standby: a warning).
import { spawn } from 'node:child_process'
import t from 'tap'
import pg from 'pg'
import { checkLogicalDecoding, wildcardStandbys } from '../lib/live/source.js'
import { openWalStream } from '../lib/live/wal.js'
import { freshDatabase, serverOfItsOwn } from './helpers/database.js'
import { listen } from './helpers/events.js'
import { gateway, viewUrl } from './helpers/gateway.js'
import { logLines } from './helpers/log.js'
import { managerToken, SECRET } from './helpers/tokens.js'
import { seedWorld, STREAM } from './helpers/world.js'

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))
const db = await freshDatabase(t)
await seedWorld(db.pool)
const token = managerToken([STREAM])
const events = (agentId: string) => `${viewUrl(STREAM, agentId)}/events`
const slotNames = async (pool: pg.Pool = db.pool): Promise<string[]> =>
  (await pool.query<{ name: string }>('SELECT slot_name AS name FROM pg_replication_slots WHERE database = current_database()')).rows.map((row) => row.name)
const until = async (check: () => Promise<boolean>, millis = 3000): Promise<boolean> => {
  for (const end = Date.now() + millis; Date.now() < end;) { if (await check()) return true; await sleep(20) }
  return false
}

t.test('a slot while streams are open, kept for slotLingerMillis after the last, then dropped', async (t) => {
  const app = await gateway(t, { pool: db.pool, live: { slotLingerMillis: 300, coalesceMillis: 20 } })
  const base = await app.listen({ port: 0, host: '127.0.0.1' })
  t.same(await slotNames(), [], 'no stream: no slot')
  const first = listen(`${base}${events('a1')}`, token)
  await first.next((event) => event.type === 'view')
  const [slot] = await slotNames()
  t.match(slot, /^fastify_active_conversations_\d+_/, 'made for the first stream, named for its process')
  first.close()
  await sleep(100)
  const again = listen(`${base}${events('a2')}`, token) // a screen reconnecting within the linger
  t.teardown(() => { again.close() })
  await again.next((event) => event.type === 'view')
  t.same(await slotNames(), [slot], 'the same slot, not a new one')
  again.close()
  await sleep(100)
  t.same(await slotNames(), [slot], 'kept while the linger lasts')
  t.ok(await until(async () => (await slotNames()).length === 0), 'dropped after it')
})

t.test('a long transaction holds the slot up: the first view comes, changes are polled, then decoded once it ends', async (t) => {
  const log = logLines()
  const app = await gateway(t, { pool: db.pool, live: { slotWaitMillis: 300, pollMillis: 200, coalesceMillis: 20 } }, { logger: { level: 'warn', stream: log.stream } })
  const base = await app.listen({ port: 0, host: '127.0.0.1' })
  const long = await db.pool.connect()
  t.teardown(() => { long.release() })
  await long.query('BEGIN')
  await long.query("UPDATE agent_groups SET name = name WHERE stream_id = 'nowhere'") // holds no row
  await long.query('SELECT pg_current_xact_id()') // but has an xid: a slot waits for it to end

  const opened = Date.now()
  const client = listen(`${base}${events('a1')}`, token)
  t.teardown(() => { client.close() })
  await client.next((event) => event.type === 'view', 3000)
  t.ok(Date.now() - opened < 2500, `the first view after about a second's wait for the slot: ${Date.now() - opened} ms`)
  // Each attempt's half-made slot waits for the transaction; past slotWaitMillis its session is ended, and the next
  // attempt comes after a doubling wait: never more than the one being made.
  t.ok((await slotNames()).length <= 1, 'at most the one slot being made, no pile of attempts')
  await db.pool.query("UPDATE agents SET online_status = 'away' WHERE stream_id = $1 AND id = 'a1'", [STREAM])
  await client.next((event) => event.data.includes('"onlineStatus":"away"'), 2000)
  t.pass('a change, polled')
  t.match(log.lines.join(''), /a long transaction holds up the replication slot; polling meanwhile/)
  t.ok((await slotNames()).length <= 1, 'still at most one')

  await long.query('ROLLBACK')
  t.ok(await until(async () => (await slotNames()).length === 1, 10_000), 'once it ends, a slot')
  await sleep(100)
  const from = client.events.length
  const changedAt = Date.now()
  await db.pool.query("UPDATE agents SET online_status = 'busy' WHERE stream_id = $1 AND id = 'a1'", [STREAM])
  await client.next((event) => event.data.includes('"onlineStatus":"busy"'), 2000, from)
  t.ok(Date.now() - changedAt < 150, `decoded, not polled: ${Date.now() - changedAt} ms`)
})

t.test('a server with wal_level = replica: one warning that says what to change; streams are polled', async (t) => {
  const { database, pool } = await serverOfItsOwn(t, { wal_level: 'replica' })
  await seedWorld(pool)
  const log = logLines()
  const app = await gateway(t, { pool, live: { pollMillis: 200 } }, { logger: { level: 'warn', stream: log.stream } })
  const warnings = log.lines.filter((line) => line.includes('instead of decoding changes'))
  t.equal(warnings.length, 1)
  t.match(warnings[0], /wal_level is replica: set wal_level = logical and restart PostgreSQL/)
  const client = listen(`${await app.listen({ port: 0, host: '127.0.0.1' })}${events('a1')}`, token)
  t.teardown(() => { client.close() })
  await client.next((event) => event.type === 'view')
  await pool.query("UPDATE agents SET online_status = 'away' WHERE stream_id = $1 AND id = 'a1'", [STREAM])
  await client.next((event) => event.data.includes('"onlineStatus":"away"'), 2000)
  t.same(await slotNames(pool), [], 'no slot')
  await t.rejects(openWalStream({ connectionString: database.connectionString }, { publication: 'fastify_active_conversations', slotWaitMillis: 1000, onCommit: () => {}, onLost: () => {} }),
    /logical decoding requires/, 'a slot cannot be made there: the server says why')
  t.equal(log.lines.filter((line) => line.includes('instead of decoding changes')).length, 1, 'still one warning')
})

t.test('a gateway killed with SIGKILL leaves no slot', async (t) => {
  const script = `
    const { default: Fastify } = await import('fastify')
    const { default: plugin } = await import('${new URL('../dist/lib/index.js', import.meta.url).pathname}')
    const app = Fastify()
    await app.register(plugin, { connectionString: process.env.URL, jwt: { secret: process.env.SECRET } })
    console.log(await app.listen({ port: 0, host: '127.0.0.1' }))`
  const child = spawn(process.execPath, ['--input-type=module', '-e', script], { cwd: new URL('..', import.meta.url).pathname, env: { ...process.env, URL: db.connectionString, SECRET }, stdio: ['ignore', 'pipe', 'inherit'] })
  t.teardown(() => { child.kill('SIGKILL') })
  const base = await new Promise<string>((resolve) => { child.stdout.once('data', (chunk) => { resolve(String(chunk).trim()) }) })
  const client = listen(`${base}${events('a1')}`, token)
  t.teardown(() => { client.close() })
  await client.next((event) => event.type === 'view')
  t.equal((await slotNames()).length, 1, 'its slot while it runs')
  const killed = Date.now()
  child.kill('SIGKILL')
  t.ok(await until(async () => (await slotNames()).length === 0, 2000), `no slot ${Date.now() - killed} ms after SIGKILL (within 2 s)`)
})

t.test('a database without migration 009: the check says to run the migrations', async (t) => {
  const bare = await freshDatabase(t, { migrated: false })
  t.match((await checkLogicalDecoding({ connectionString: bare.connectionString })).unavailable, /the publication fastify_active_conversations is missing: run the migrations/)
})

t.test("synchronous_standby_names with *: a warning, for PostgreSQL may pick the gateway as the synchronous standby", async (t) => {
  const { pool } = await serverOfItsOwn(t) // (no standby of its own: only the gateway can answer)
  await seedWorld(pool)
  await pool.query("ALTER SYSTEM SET synchronous_standby_names = '*'")
  await pool.query('SELECT pg_reload_conf()')
  // A backend sees the new setting once the postmaster has reloaded it, and new sessions (the gateway's check) then do too.
  t.ok(await until(async () => (await pool.query<{ names: string }>("SELECT current_setting('synchronous_standby_names') AS names")).rows[0]?.names === '*'), 'the setting is in force')
  const log = logLines()
  const app = await gateway(t, { pool }, { logger: { level: 'warn', stream: log.stream } })
  const warnings = log.lines.filter((line) => line.includes('synchronous_standby_names'))
  t.equal(warnings.length, 1)
  t.match(warnings[0], /synchronous_standby_names is '\*': its \* matches this gateway's replication connection, which PostgreSQL may pick as the synchronous standby, and commits would wait up to a second for it: name the standbys instead/)
  const client = listen(`${await app.listen({ port: 0, host: '127.0.0.1' })}${events('a1')}`, token)
  t.teardown(() => { client.close() })
  await client.next((event) => event.type === 'view')
  const syncState = async (): Promise<string | undefined> => (await pool.query<{ state: string }>(
    "SELECT sync_state AS state FROM pg_stat_replication WHERE application_name = 'fastify-active-conversations changes'")).rows[0]?.state
  t.ok(await until(async () => await syncState() === 'sync'), 'PostgreSQL picks the gateway as the synchronous standby: what the warning is about')
})

t.test('which synchronous_standby_names match every walsender', async (t) => {
  for (const names of ['*', 'FIRST 1 (standby_a, *)', 'ANY 2 (*)', '2 (*, standby_a)', '"*"']) t.match(wildcardStandbys(names), /matches this gateway's replication connection/, names)
  for (const names of ['', 'standby_a', 'FIRST 1 (standby_a, standby_b)', 'ANY 1 ("standby*")']) t.equal(wildcardStandbys(names), null, names === '' ? '(empty)' : names)
})
