// A real hot standby as `readPool`: streaming replication between two servers
// of Debian's PostgreSQL 15 (the embedded binaries have no pg_basebackup).
// Reads land on the standby; a write on the primary shows there once
// replayed; a recovery conflict is answered by the primary; a stopped standby
// is skipped, with one warning, until it is back; two gateway processes on the
// primary (through PgBouncer) and the standby answer alike.
import { spawn } from 'node:child_process'
import { existsSync } from 'node:fs'
import { join } from 'node:path'
import t, { type Test } from 'tap'
import pg from 'pg'
import { migrate } from '../lib/index.js'
import { startEmbeddedPostgres } from '../scripts/embedded-postgres.js'
import { countStatements } from '../support/count-statements.js'
import { pgbouncerMissing, startPgBouncer } from '../support/pgbouncer.js'
import { withoutDurations } from './helpers/bodies.js'
import { gateway, viewUrl } from './helpers/gateway.js'
import { logLines } from './helpers/log.js'
import { insertConversations, insertStream } from './helpers/rows.js'
import { managerToken, SECRET } from './helpers/tokens.js'

const DEBIAN_POSTGRES = '/usr/lib/postgresql/15'
// CI installs Debian's postgresql-15 (.ci/run) and fails without it; elsewhere the test says plainly why it is skipped.
const missing = existsSync(join(DEBIAN_POSTGRES, 'bin', 'pg_basebackup'))
  ? false
  : `${DEBIAN_POSTGRES} is missing: apt-get install postgresql-15 to run the tests on a real hot standby`
if (missing && process.env.CI) t.fail(`${missing} (CI must have it)`)

const auth = managerToken(['s1'])
const url = viewUrl('s1', 'a1')
const sleep = async (ms: number) => await new Promise((resolve) => setTimeout(resolve, ms))

/** test/fixtures/gateway-process.ts in a process of its own, with this test's loaders; its URL. Stopped at teardown. */
async function gatewayProcess (t: Test, env: Record<string, string>): Promise<string> {
  const child = spawn(process.execPath, [...process.execArgv, new URL('./fixtures/gateway-process.ts', import.meta.url).pathname],
    { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'inherit'] })
  t.teardown(async () => { const exited = new Promise((resolve) => child.once('exit', resolve)); child.kill('SIGTERM'); await exited })
  let output = ''
  return await new Promise((resolve, reject) => {
    child.stdout?.on('data', (chunk) => {
      output += String(chunk)
      const listening = /^listening (\S+)/m.exec(output)
      if (listening) resolve(listening[1] as string)
    })
    child.once('exit', (code) => { reject(new Error(`the gateway process exited (${String(code)})`)) })
  })
}

/** The conversation ids of a view's queue. */
const queueIds = (body: string) => (JSON.parse(body) as { queue: Array<{ conversationId: string }> }).queue.map((item) => item.conversationId)

t.test('a hot standby as readPool', { skip: missing }, async (t) => {
  const primaryServer = await startEmbeddedPostgres({}, { binaries: DEBIAN_POSTGRES })
  t.teardown(primaryServer.stop) // should what follows fail; stopping twice is harmless
  await migrate(primaryServer.connectionString)
  // The gateway's pool on the primary, and one for the test's own writes (not counted with the gateway's reads).
  const primary = new pg.Pool({ connectionString: primaryServer.connectionString, max: 4 })
  const writer = new pg.Pool({ connectionString: primaryServer.connectionString, max: 1 })
  await insertStream(writer, 's1', { groups: ['g1'], agents: [{ id: 'a1', groups: ['g1'] }] })
  await insertConversations(writer, 's1', [{ id: 'q-first', status: 'queued', group: 'g1' }, { id: 'q-doomed', status: 'queued', group: 'g1', queued: 5 }])
  // No delay before the standby cancels a query that holds up replay: conflicts come at once.
  const standbyServer = await primaryServer.standby({ max_standby_streaming_delay: '0', hot_standby_feedback: 'off' })
  const replica = new pg.Pool({ connectionString: standbyServer.connectionString, max: 4 })
  for (const pool of [primary, writer, replica]) pool.on('error', () => {}) // the standby is stopped on purpose below
  // One teardown, in this order: the pools, then the servers they are connected to.
  t.teardown(async () => {
    for (const pool of [primary, writer, replica]) await pool.end()
    await primaryServer.stop() // and its standby
  })
  const primaryStatements = countStatements(primary)
  const replicaStatements = countStatements(replica)

  t.test('reads land on the standby, and a write on the primary shows there once replayed', async (t) => {
    const app = await gateway(t, { pool: primary, readPool: replica })
    const before = { primary: primaryStatements.count(), replica: replicaStatements.count() }
    const response = await app.inject({ url, headers: { auth } })
    t.equal(response.statusCode, 200)
    t.same(queueIds(response.body), ['q-first', 'q-doomed'])
    t.same({ primary: primaryStatements.count(), replica: replicaStatements.count() }, { primary: before.primary, replica: before.replica + 1 })

    const written = performance.now()
    await insertConversations(writer, 's1', [{ id: 'q-new', status: 'queued', group: 'g1', queued: 1 }])
    let lagMillis = Infinity
    for (let tries = 0; tries < 1000; tries++) {
      if (queueIds((await app.inject({ url, headers: { auth } })).body).includes('q-new')) {
        lagMillis = performance.now() - written
        break
      }
      await sleep(2)
    }
    t.ok(lagMillis < 5000, 'the new conversation is in the view read on the standby')
    t.comment(`replication lag seen through the route: ${lagMillis.toFixed(1)} ms`)
    t.equal(primaryStatements.count(), before.primary, 'the primary was never read')
  })

  t.test('a recovery conflict: the standby cancels the read, the primary answers it, 200', async (t) => {
    // The statement takes a millisecond; a replica this slow holds its snapshot for as long
    // as the conflict takes to arrive: a read-only transaction that waits before the statement.
    const errors: string[] = []
    let snapshotTaken: () => void = () => {}
    const holding = new Promise<void>((resolve) => { snapshotTaken = resolve })
    const slowReplica = {
      connect: replica.connect.bind(replica),
      query: async (config: pg.QueryConfig) => {
        const client = await replica.connect()
        try {
          await client.query('BEGIN ISOLATION LEVEL REPEATABLE READ')
          await client.query('SELECT count(*) FROM conversations')
          snapshotTaken()
          await client.query('SELECT pg_sleep(5)')
          return await client.query(config)
        } catch (err) {
          errors.push((err as { code: string }).code)
          throw err
        } finally {
          await client.query('ROLLBACK').catch(() => {})
          client.release()
        }
      }
    } as unknown as pg.Pool
    const app = await gateway(t, { pool: primary, readPool: slowReplica })
    const before = primaryStatements.count()
    const answer = app.inject({ url, headers: { auth } })
    await holding
    // Rows the standby's snapshot may still need, removed on the primary: replaying the removal conflicts with it.
    await writer.query("DELETE FROM conversations WHERE id = 'q-doomed'")
    await writer.query('VACUUM conversations')
    const response = await answer
    t.same(errors, ['40001'], 'the standby cancelled the read: conflict with recovery')
    t.equal(response.statusCode, 200)
    t.notOk(queueIds(response.body).includes('q-doomed'), 'answered by the primary, after the removal')
    t.equal(primaryStatements.count(), before + 1)
  })

  t.test('two gateway processes on the primary (through PgBouncer) and the standby: the same answers, and both see a write', { skip: pgbouncerMissing }, async (t) => {
    const bouncer = await startPgBouncer(primaryServer.connectionString, { server_lifetime: 1 })
    t.teardown(bouncer.stop)
    const env = { POOL_URL: bouncer.url('postgres'), READ_POOL_URL: standbyServer.connectionString, JWT_SECRET: SECRET }
    const gateways = await Promise.all([1, 2].map(async () => await gatewayProcess(t, env)))
    const paths = [url, viewUrl('s1', 'a1', 'source=chat'), '/public/s1/analytics/manager/agents/active-conversations?limit=10']
    const answers = await Promise.all(gateways.map(async (base) => await Promise.all(paths.map(async (path) => {
      const response = await fetch(base + path, { headers: { auth } })
      return `${response.status} ${withoutDurations(await response.text())}`
    }))))
    t.match(answers[0], [/^200 /, /^200 /, /^200 /])
    t.same(answers[1], answers[0], 'the second gateway answers as the first')

    await insertConversations(writer, 's1', [{ id: 'q-both', status: 'queued', group: 'g1', queued: 1 }])
    for (const base of gateways) {
      let seen = false
      for (let tries = 0; tries < 500 && !seen; tries++) {
        seen = queueIds(await (await fetch(base + url, { headers: { auth } })).text()).includes('q-both')
        if (!seen) await sleep(10)
      }
      t.ok(seen, `${base} shows the new conversation`)
    }
  })

  // Long enough that ten reads against a stopped standby fit in one interval on a loaded machine.
  const RETRY_MILLIS = 1500
  t.test('the standby stopped: the primary answers, the standby is tried once per interval, and read again once back', async (t) => {
    const log = logLines()
    const app = await gateway(t, { pool: primary, readPool: replica, readPoolRetryMillis: RETRY_MILLIS }, { logger: { level: 'info', stream: log.stream } })
    const messages = () => log.lines.map((line) => JSON.parse(line).msg as string).filter((msg) => /read replica/.test(msg))
    await standbyServer.pause()
    const before = { primary: primaryStatements.count(), replica: replicaStatements.count() }
    for (let i = 0; i < 10; i++) t.equal((await app.inject({ url, headers: { auth } })).statusCode, 200)
    t.same({ primary: primaryStatements.count() - before.primary, replica: replicaStatements.count() - before.replica }, { primary: 10, replica: 1 },
      'the first read found the standby down; the next nine went straight to the primary')
    await sleep(RETRY_MILLIS + 100)
    t.equal((await app.inject({ url, headers: { auth } })).statusCode, 200)
    t.equal(replicaStatements.count() - before.replica, 2, 'after the interval, one read tried the standby again')
    t.same(messages(), [`fastify-active-conversations: read replica unavailable, reading the primary; trying the replica again every ${RETRY_MILLIS} ms`], 'one warning')

    await standbyServer.resume()
    await sleep(RETRY_MILLIS + 100)
    const back = { primary: primaryStatements.count(), replica: replicaStatements.count() }
    for (let i = 0; i < 3; i++) t.equal((await app.inject({ url, headers: { auth } })).statusCode, 200)
    t.same({ primary: primaryStatements.count() - back.primary, replica: replicaStatements.count() - back.replica }, { primary: 0, replica: 3 }, 'reads are back on the standby')
    t.equal(messages().at(-1), 'fastify-active-conversations: read replica answering again, reading it')
    t.equal(messages().length, 2)
  })
})
