// Postgres stopped under load and started again: 503 with Retry-After meanwhile,
// never a crash or a 500, and 200 again by itself afterwards.
import t from 'tap'
import Fastify from 'fastify'
import activeConversations from '../lib/index.js'
import { serverOfItsOwn } from './helpers/database.js'
import { viewUrl } from './helpers/gateway.js'
import { managerToken, SECRET } from './helpers/tokens.js'
import { STREAM, seedWorld } from './helpers/world.js'

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

t.test('a database outage in the middle of the load', async (t) => {
  const { database, pool } = await serverOfItsOwn(t) // this test stops it
  await seedWorld(pool)

  const warnings: string[] = []
  const app = Fastify({ logger: { level: 'warn', stream: { write: (line: string) => { warnings.push(line) } } } })
  await app.register(activeConversations, { connectionString: database.connectionString, connectionTimeoutMillis: 1000, jwt: { secret: SECRET } })
  t.teardown(() => app.close())
  const auth = managerToken([STREAM])

  const answers: Array<{ phase: string, status: number, ms: number, retryAfter: unknown }> = []
  let phase = 'before'
  let running = true
  const worker = async () => {
    while (running) {
      const started = Date.now()
      const response = await app.inject({ url: viewUrl(STREAM, 'a1'), headers: { auth } })
      answers.push({ phase, status: response.statusCode, ms: Date.now() - started, retryAfter: response.headers['retry-after'] })
      if (response.statusCode !== 200) await sleep(50)
    }
  }
  const workers = Array.from({ length: 4 }, worker)

  await sleep(500)
  phase = 'outage'
  await database.pause()
  await sleep(2500)
  phase = 'restarting'
  await database.resume()
  for (let i = 0; i < 100 && answers.at(-1)?.status !== 200; i++) await sleep(100)
  phase = 'after'
  await sleep(500)
  running = false
  await Promise.all(workers)

  const during = answers.filter((a) => a.phase === 'outage')
  t.ok(answers.filter((a) => a.phase === 'before').every((a) => a.status === 200), 'all 200 before')
  t.ok(during.length > 4, `requests during the outage: ${during.length}`)
  t.same([...new Set(answers.map((a) => a.status))].sort(), [200, 503], 'only 200 and 503, never a 500')
  t.ok(during.filter((a) => a.status !== 200).every((a) => a.status === 503 && a.retryAfter === '5'), '503 with Retry-After')
  t.ok(Math.max(...during.map((a) => a.ms)) < 2500, `within the connect timeout: slowest ${Math.max(...during.map((a) => a.ms))} ms`)
  const after = answers.filter((a) => a.phase === 'after')
  t.ok(after.length > 4 && after.every((a) => a.status === 200), `200 again by itself after the restart (${after.length} requests)`)
  t.ok(warnings.some((line) => /idle database connection lost|database unavailable/.test(line)), 'the outage is in the log')
})
