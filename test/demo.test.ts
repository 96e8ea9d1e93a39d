// `npm start`: the demo gateway on its own embedded PostgreSQL answers the curl it prints,
// and SIGTERM shuts everything down, leaving no postgres process behind.
import { execFile } from 'node:child_process'
import { chmodSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import t from 'tap'
import { demoOptionsFromEnv, startDemo } from '../examples/demo.js'
import { spawnDemo } from '../examples/demo-process.js'
import { migrate } from '../lib/index.js'
import { freshDatabase } from './helpers/database.js'
import { SECRET } from './helpers/tokens.js'

const run = promisify(execFile)

t.test('npm start prints a token and a curl that returns the demo agent', async (t) => {
  // A temp dir of its own, so this test can tell its postgres from any other.
  const temp = mkdtempSync(join(tmpdir(), 'demo-test-'))
  chmodSync(temp, 0o755)
  const env: NodeJS.ProcessEnv = { ...process.env, PORT: '0', TMPDIR: temp }
  delete env.DATABASE_URL // the embedded default

  t.teardown(() => rmSync(temp, { recursive: true, force: true }))
  const demo = await spawnDemo(env)
  t.teardown(() => { if (demo.child.exitCode === null) demo.child.kill('SIGKILL') })
  const curl = /^curl .*$/m.exec(demo.output())?.[0] as string
  t.match(demo.output(), /Demo token \(role manager/)
  t.ok(postgresUnder(temp) > 0, 'its own postgres runs')

  const { stdout } = await run('sh', ['-c', curl])
  const body = JSON.parse(stdout)
  t.equal(body.name, 'Amanda Jones')
  t.equal(body.onlineStatus, 'available')
  t.same([body.resolutionTime, body.firstResponseTime, body.responseTime], [95, 33, 39], 'the demo data\'s metrics')
  t.same(body.active.map((c: { conversationId: string }) => c.conversationId), ['c-1233', 'c-1240'])
  t.same(body.queue.map((c: { conversationId: string }) => c.conversationId), ['c-1250', 'c-1251', 'c-1252'])

  const floorCurl = /^curl .*agents\/active-conversations'$/m.exec(demo.output())?.[0] as string
  const floor = JSON.parse((await run('sh', ['-c', floorCurl])).stdout)
  t.same(floor.agents.map((agent: { agentId: string }) => agent.agentId), ['a-1234', 'a-2345', 'a-3456'], 'and a floor curl: the demo stream\'s agents')
  t.equal(floor.nextCursor, null)

  demo.child.kill('SIGTERM')
  t.equal(await demo.exited, 0, 'SIGTERM: a clean exit')
  t.equal(postgresUnder(temp), 0, 'no stray postgres process')
  t.same(readdirSync(temp), [], 'and its data directory is gone')
})

/** How many processes have this temp dir on their command line (postgres -D <temp>/…/data). */
function postgresUnder (temp: string): number {
  return readdirSync('/proc').filter((pid) => {
    try {
      return /^\d+$/.test(pid) && readFileSync(join('/proc', pid, 'cmdline'), 'utf8').includes(temp)
    } catch {
      return false // the process ended while we looked
    }
  }).length
}

t.test('the demo on a database given by DATABASE_URL', async (t) => {
  const db = await freshDatabase(t, { migrated: false })
  const demo = await startDemo({ host: '127.0.0.1', port: 0, databaseUrl: db.connectionString, jwtSecret: SECRET, logger: false })
  t.teardown(() => demo.close())
  t.same(await migrate(db.pool), [], 'it migrated the database')
  const response = await fetch(demo.url, { headers: { auth: demo.token } })
  t.equal(response.status, 200)
  t.equal((await response.json()).name, 'Amanda Jones', 'and seeded the demo stream')
  t.match(demo.curl, /^curl -s -H 'auth: [\w.-]+' 'http:\/\/127\.0\.0\.1:\d+\/public\/st-606c43de5e00ca5f4e27e38a\/analytics\/manager\/agent\/a-1234\/active-conversations'$/)
})

t.test('npm start that cannot reach its database fails, saying why', async (t) => {
  await t.rejects(spawnDemo({ ...process.env, PORT: '0', DATABASE_URL: 'postgres://nobody:x@127.0.0.1:9/none' }), { message: /the demo did not start:[\s\S]*ECONNREFUSED/ })
})

t.test('a demo that cannot start cleans up and says why', async (t) => {
  await t.rejects(startDemo({ host: '127.0.0.1', port: 0, databaseUrl: 'postgres://nobody:x@127.0.0.1:9/none', jwtSecret: SECRET, logger: false }), { code: 'ECONNREFUSED' })
})

t.test('options from the environment', async (t) => {
  const defaults = demoOptionsFromEnv({})
  t.match(defaults, { host: '127.0.0.1', port: 3000, databaseUrl: undefined, logger: 'info', writerIntervalMillis: 3000 })
  t.equal(demoOptionsFromEnv({ DEMO_WRITER: 'off' }).writerIntervalMillis, 0, 'DEMO_WRITER=off: no writer')
  t.equal(demoOptionsFromEnv({ DEMO_WRITER: '500' }).writerIntervalMillis, 500)
  t.match(defaults.jwtSecret, /^[0-9a-f]{64}$/, 'a random secret')
  t.not(demoOptionsFromEnv({}).jwtSecret, defaults.jwtSecret, 'new at every start')
  t.match(demoOptionsFromEnv({ HOST: '0.0.0.0', PORT: '8080', DATABASE_URL: 'postgres://db', DEMO_JWT_SECRET: 's', LOG_LEVEL: 'warn' }),
    { host: '0.0.0.0', port: 8080, databaseUrl: 'postgres://db', jwtSecret: 's', logger: 'warn' })
})
