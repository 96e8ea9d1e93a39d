// SIGTERM under load: the request in flight finishes, what comes after it gets 503,
// the pools end and the process exits 0.
import { connect } from 'node:net'
import t from 'tap'
import pg from 'pg'
import { spawnDemo } from '../examples/demo-process.js'
import { freshDatabase } from './helpers/database.js'

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

t.test('SIGTERM with a request in flight and another behind it', async (t) => {
  const db = await freshDatabase(t, { migrated: false })
  const demo = await spawnDemo({ ...process.env, PORT: '0', DATABASE_URL: db.connectionString })
  t.teardown(() => { if (demo.child.exitCode === null) demo.child.kill('SIGKILL') })
  const { token, url } = demo
  const { hostname, port, pathname } = new URL(url)

  // Hold the agents table so the first request stays in flight (within the 2 s statement timeout).
  const locker = new pg.Client({ connectionString: db.connectionString })
  await locker.connect()
  await locker.query('BEGIN')
  await locker.query('LOCK TABLE agents IN ACCESS EXCLUSIVE MODE')

  // One keep-alive connection: a request in flight, then SIGTERM, then another request on it.
  const socket = connect(Number(port), hostname)
  let answers = ''
  socket.on('data', (chunk) => { answers += String(chunk) })
  const closed = new Promise((resolve) => socket.on('close', resolve))
  const request = `GET ${pathname} HTTP/1.1\r\nHost: demo\r\nauth: ${token}\r\n\r\n`
  socket.write(request)
  // A second connection with a request in flight and nothing after it: once answered it is an
  // idle keep-alive connection that must not hold the process until its keep-alive timeout.
  const second = connect(Number(port), hostname)
  let secondAnswer = ''
  second.on('data', (chunk) => { secondAnswer += String(chunk) })
  const secondClosed = new Promise((resolve) => second.on('close', resolve))
  second.write(request)
  await sleep(300)

  const signalled = Date.now()
  demo.child.kill('SIGTERM')
  await sleep(300)
  socket.write(request)
  await sleep(100)
  const refused = await new Promise((resolve) => {
    const late = connect(Number(port), hostname)
    late.on('connect', () => { late.destroy(); resolve(false) })
    late.on('error', () => resolve(true))
  })
  t.ok(refused, 'a new connection is refused once shutdown began')
  await locker.query('ROLLBACK')
  await locker.end()

  await closed
  await secondClosed // answered, then closed by the shutdown: idle connections are not kept
  const statuses = [...answers.matchAll(/HTTP\/1\.1 (\d{3}) /g)].map((match) => Number(match[1]))
  t.same(statuses, [200, 503], 'the request in flight finished with 200; the one sent after SIGTERM got 503')
  t.match(answers, /"name":"Amanda Jones"/, 'with its full body')
  t.match(secondAnswer, /^HTTP\/1\.1 200 /, 'the other request in flight finished too')
  t.match(answers, /Service Unavailable/, 'and the 503 says so')
  t.equal(await demo.exited, 0, 'exit code 0')
  t.ok(Date.now() - signalled < 5000, `promptly: ${Date.now() - signalled} ms after SIGTERM, not after a keep-alive timeout`)
  const { rows } = await db.pool.query("SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()", [db.name])
  t.equal(rows[0].n, 0, 'no connection of the gateway left open')
})
