// Behind a real PgBouncer in transaction mode (Debian's 1.18: no support for
// prepared statements), its server connections retired every second as a
// long-running pooler retires them: with `preparedStatements: false` every
// request of waves of concurrent agent and floor requests is answered, through
// the plugin's own pool and through a gateway's, the same as straight from PostgreSQL.
import { readdirSync } from 'node:fs'
import { tmpdir } from 'node:os'
import t from 'tap'
import pg from 'pg'
import { FLOOR_ROUTE_URL } from '../lib/index.js'
import { pgbouncerMissing, startPgBouncer } from '../support/pgbouncer.js'
import { withoutDurations } from './helpers/bodies.js'
import { adminUrl, freshDatabase } from './helpers/database.js'
import { listen } from './helpers/events.js'
import { gateway, viewUrl } from './helpers/gateway.js'
import { logLines } from './helpers/log.js'
import { insertConversations, insertStream } from './helpers/rows.js'
import { managerToken } from './helpers/tokens.js'

// CI installs Debian's pgbouncer (.ci/run) and fails without it; elsewhere the tests say plainly why they are skipped.
if (pgbouncerMissing && process.env.CI) t.fail(`${pgbouncerMissing} (CI must have it)`)
const skip = pgbouncerMissing

const STREAM = 'st-pooled'
const AGENTS = Array.from({ length: 30 }, (_, i) => `a-${i}`)
const auth = managerToken([STREAM])
const WAVES = 4
const REQUESTS_PER_WAVE = 250

/** Half agent views, half floor pages, of every agent and group. */
const urls = Array.from({ length: REQUESTS_PER_WAVE }, (_, i) => i % 2 === 0
  ? viewUrl(STREAM, AGENTS[i % AGENTS.length] as string)
  : `${FLOOR_ROUTE_URL.replace(':streamId', STREAM)}?limit=${1 + i % 12}&agentGroupId=g${i % 3}`)


t.test('behind PgBouncer in transaction mode', { skip }, async (t) => {
  const db = await freshDatabase(t)
  await insertStream(db.pool, STREAM, {
    groups: ['g0', 'g1', 'g2'],
    skills: ['sk0', 'sk1'],
    agents: AGENTS.map((id, i) => ({ id, groups: [`g${i % 3}`, `g${(i + 1) % 3}`], skills: i % 2 === 0 ? ['sk0', 'sk1'] : ['sk0'] }))
  })
  await insertConversations(db.pool, STREAM, [
    ...AGENTS.slice(0, 20).map((agent, i) => ({ id: `act-${i}`, status: 'active' as const, group: `g${i % 3}`, agent, started: 300, queued: 290, accepted: 200, skills: ['sk0'] })),
    ...Array.from({ length: 24 }, (_, i) => ({ id: `q-${i}`, status: 'queued' as const, group: i % 4 === 3 ? null : `g${i % 3}`, started: 200, queued: 100 - i, skills: i % 2 === 0 ? ['sk0'] : ['sk1'] }))
  ])
  const bouncer = await startPgBouncer(adminUrl(), { server_lifetime: 1, server_idle_timeout: 1 })
  t.teardown(bouncer.stop)
  const direct = await gateway(t, { pool: db.pool })
  const expected = await Promise.all(urls.map(async (url) => withoutDurations((await direct.inject({ url, headers: { auth } })).body)))
  t.equal(new Set(expected.map((body) => JSON.parse(body).agents?.length)).size > 2, true, 'the floor pages differ in size')

  /** Waves of concurrent requests a second apart, so that PgBouncer retires its server connections between them. */
  async function waves (app: Awaited<ReturnType<typeof gateway>>): Promise<{ statuses: Record<number, number>, differing: number }> {
    const statuses: Record<number, number> = {}
    let differing = 0
    for (let wave = 0; wave < WAVES; wave++) {
      if (wave > 0) await new Promise((resolve) => setTimeout(resolve, 1100))
      const responses = await Promise.all(urls.map(async (url) => await app.inject({ url, headers: { auth } })))
      responses.forEach((response, i) => {
        statuses[response.statusCode] = (statuses[response.statusCode] ?? 0) + 1
        if (response.statusCode === 200 && withoutDurations(response.body) !== expected[i]) differing++
      })
    }
    return { statuses, differing }
  }

  t.test('with connectionString and preparedStatements: false, a pool of 20', async (t) => {
    const app = await gateway(t, { connectionString: bouncer.url(db.name), preparedStatements: false, poolMax: 20 })
    t.same(await waves(app), { statuses: { 200: WAVES * REQUESTS_PER_WAVE }, differing: 0 }, 'every answer 200, as straight from PostgreSQL')
  })

  t.test("with the gateway's pool of 20 and preparedStatements: false", async (t) => {
    const pool = new pg.Pool({ connectionString: bouncer.url(db.name), max: 20 })
    t.teardown(() => pool.end())
    const app = await gateway(t, { pool, preparedStatements: false })
    t.same(await waves(app), { statuses: { 200: WAVES * REQUESTS_PER_WAVE }, differing: 0 }, 'every answer 200, as straight from PostgreSQL')
  })

  t.test('without the option, PgBouncer refuses the own pool its startup parameters: 503, never a 500', async (t) => {
    const app = await gateway(t, { connectionString: bouncer.url(db.name), connectionTimeoutMillis: 2000 })
    const response = await app.inject({ url: urls[0] as string, headers: { auth } })
    t.equal(response.statusCode, 503)
    t.equal(response.json().code, 'FAC_ERR_DATABASE_UNAVAILABLE')
  })

  t.test('live views: reads through PgBouncer, the listener straight to PostgreSQL; two gateways each deliver a change', async (t) => {
    const clients = []
    for (let i = 0; i < 2; i++) {
      const app = await gateway(t, { connectionString: bouncer.url(db.name), preparedStatements: false, live: { connectionString: db.connectionString, coalesceMillis: 20 } })
      const client = listen(`${await app.listen({ port: 0, host: '127.0.0.1' })}${viewUrl(STREAM, 'a-0')}/events`, auth)
      t.teardown(() => { client.close() })
      await client.next((event) => event.type === 'view')
      clients.push(client)
    }
    await insertConversations(db.pool, STREAM, [{ id: 'through-pgbouncer', status: 'queued', group: 'g1', skills: ['sk0'] }])
    for (const [i, client] of clients.entries()) {
      await client.next((event) => event.data.includes('"conversationId":"through-pgbouncer"'), 3000)
      t.pass(`gateway ${i + 1} delivered it`)
    }
    await db.pool.query("DELETE FROM conversations WHERE stream_id = $1 AND id = 'through-pgbouncer'", [STREAM])
  })

  t.test('without live.connectionString, one warning says that PgBouncer takes no replication connection, and what to set', async (t) => {
    const log = logLines()
    await gateway(t, { connectionString: bouncer.url(db.name), preparedStatements: false }, { logger: { level: 'warn', stream: log.stream } })
    const warnings = log.lines.filter((line) => line.includes('instead of decoding changes'))
    t.equal(warnings.length, 1)
    t.match(warnings[0], /the replication connection failed \(.*\): point live.connectionString straight at PostgreSQL's primary/)
  })

  t.test('the sessions get their timeout and read-only from the database role; a warning at registration when they do not', async (t) => {
    const bare = logLines()
    await gateway(t, { connectionString: bouncer.url(db.name), preparedStatements: false }, { logger: { level: 'warn', stream: bare.stream } })
    t.match(bare.lines.join(''), /the sessions of `connectionString` have no statement_timeout and no default_transaction_read_only; set them on the database role/)

    // A role of its own for this database (the test server is shared): what README's Scaling section tells a gateway to do.
    const role = `fac_reader_${db.name}`
    await db.pool.query(`CREATE ROLE ${role} LOGIN PASSWORD 'reader'`)
    t.teardown(async () => { await db.pool.query(`DROP OWNED BY ${role}`); await db.pool.query(`DROP ROLE ${role}`) })
    await db.pool.query(`GRANT SELECT ON ALL TABLES IN SCHEMA public TO ${role}`)
    await db.pool.query(`ALTER ROLE ${role} SET statement_timeout = '2s'`)
    await db.pool.query(`ALTER ROLE ${role} SET default_transaction_read_only = on`)
    const reader = await startPgBouncer(adminUrl(), { server_lifetime: 1 }, { [role]: 'reader' })
    t.teardown(reader.stop)
    const url = new URL(reader.url(db.name))
    url.username = role
    url.password = 'reader'
    const configured = logLines()
    const app = await gateway(t, { connectionString: url.toString(), preparedStatements: false, live: { enabled: false } }, { logger: { level: 'warn', stream: configured.stream } })
    t.same(configured.lines, [], 'no warning')
    t.equal((await app.inject({ url: urls[1] as string, headers: { auth } })).statusCode, 200)
  })
})

t.test('a PgBouncer that cannot start says why and leaves nothing behind', { skip }, async (t) => {
  const before = readdirSync(tmpdir()).filter((name) => name.startsWith('fac-pgbouncer-')).length
  await t.rejects(startPgBouncer(adminUrl(), { pool_mode: 'nonsense' }), { message: /^PgBouncer exited \(\d+\): .*pool_mode/s })
  t.equal(readdirSync(tmpdir()).filter((name) => name.startsWith('fac-pgbouncer-')).length, before, 'its directory is gone')
})
