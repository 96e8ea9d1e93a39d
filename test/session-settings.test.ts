// A pool the plugin did not open may lack what its own pool sets on every
// session (a statement timeout, read-only): registration checks with one query
// and warns once, naming what is missing; it never fails or waits long on it.
import { createServer, type Socket } from 'node:net'
import t from 'tap'
import pg from 'pg'
import { freshDatabase } from './helpers/database.js'
import { gateway, viewUrl } from './helpers/gateway.js'
import { logLines } from './helpers/log.js'
import { managerToken } from './helpers/tokens.js'

const db = await freshDatabase(t)
const messages = (lines: string[]) => lines.map((line) => JSON.parse(line).msg as string)

t.test("a gateway's pool without them: one warning naming both", async (t) => {
  const log = logLines()
  const app = await gateway(t, { pool: db.pool }, { logger: { level: 'warn', stream: log.stream } })
  await app.inject({ url: viewUrl('s1', 'a1'), headers: { auth: managerToken(['s1']) } })
  t.same(messages(log.lines), ['fastify-active-conversations: the sessions of `pool` have no statement_timeout and no default_transaction_read_only; ' +
    'set them on the database role (ALTER ROLE … SET), see the README section Scaling'])
})

t.test("a gateway's pool that sets them: no warning", async (t) => {
  const pool = new pg.Pool({ connectionString: db.connectionString, statement_timeout: 2000, options: '-c default_transaction_read_only=on', max: 1 })
  t.teardown(() => pool.end())
  const log = logLines()
  await gateway(t, { pool }, { logger: { level: 'warn', stream: log.stream } })
  t.same(log.lines, [])
})

t.test('a pool with only a statement timeout: the warning names read-only', async (t) => {
  const pool = new pg.Pool({ connectionString: db.connectionString, statement_timeout: 2000, max: 1 })
  t.teardown(() => pool.end())
  const log = logLines()
  await gateway(t, { pool }, { logger: { level: 'warn', stream: log.stream } })
  t.match(messages(log.lines), [/have no default_transaction_read_only; set them/])
})

t.test('a database that accepts the connection and never answers: registration goes on after a second, with a warning', async (t) => {
  const sockets: Socket[] = []
  const silent = createServer((socket) => { sockets.push(socket) })
  await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve))
  const pool = new pg.Pool({ host: '127.0.0.1', port: (silent.address() as { port: number }).port, user: 'nobody', database: 'none' })
  pool.on('error', () => {})
  t.teardown(async () => {
    for (const socket of sockets) socket.destroy() // the check's connection fails, so the pool can end
    silent.close()
    await pool.end()
  })
  const log = logLines()
  const started = Date.now()
  await gateway(t, { pool }, { logger: { level: 'warn', stream: log.stream } })
  const waited = Date.now() - started
  t.ok(waited >= 1000 && waited < 3000, `registration waited ${waited} ms`)
  t.same(messages(log.lines), ['fastify-active-conversations: could not check the sessions of `pool` within 1000 ms'])
})

t.test('a database that is down: registration goes on, with a warning', async (t) => {
  const pool = new pg.Pool({ host: '127.0.0.1', port: 1, user: 'nobody', database: 'none' })
  pool.on('error', () => {})
  t.teardown(() => pool.end())
  const log = logLines()
  await gateway(t, { pool }, { logger: { level: 'warn', stream: log.stream } })
  t.same(messages(log.lines), ['fastify-active-conversations: could not check the sessions of `pool`'])
})
