// Streams leave nothing behind: 1,000 opened and closed bring the heap and the
// handle count back where they were, and closing the gateway ends every stream
// at once and closes the listening connection.
import { request, type ClientRequest } from 'node:http'
import { setFlagsFromString } from 'node:v8'
import { runInNewContext } from 'node:vm'
import t from 'tap'
import Fastify from 'fastify'
import activeConversations from '../lib/index.js'
import { freshDatabase } from './helpers/database.js'
import { viewUrl } from './helpers/gateway.js'
import { SECRET, sign } from './helpers/tokens.js'
import { seedWorld, STREAM } from './helpers/world.js'

setFlagsFromString('--expose-gc')
const gc = runInNewContext('gc') as () => void
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))
const handles = (): number => (process as unknown as { _getActiveHandles: () => unknown[] })._getActiveHandles().length

const db = await freshDatabase(t)
await seedWorld(db.pool)

/** Opens `count` agent streams (20 per token subject, the default limit); resolves once each has its first view. */
async function openStreams (base: string, count: number): Promise<{ requests: ClientRequest[], ended: Promise<unknown> }> {
  const { hostname, port } = new URL(base)
  const requests: ClientRequest[] = []
  const endings: Array<Promise<void>> = []
  const firsts: Array<Promise<void>> = []
  for (let i = 0; i < count; i++) {
    const token = sign({ sub: `manager-${Math.floor(i / 20)}`, role: 'manager', streamIds: [STREAM] })
    firsts.push(new Promise((resolve, reject) => {
      const req = request({ host: hostname, port, path: `${viewUrl(STREAM, ['a1', 'a2', 'a3'][i % 3] as string)}/events`, headers: { auth: token }, agent: false }, (response) => {
        if (response.statusCode !== 200) reject(new Error(`status ${response.statusCode}`))
        let text = ''
        const onData = (chunk: Buffer): void => {
          text += String(chunk)
          if (text.includes('event: view')) { response.off('data', onData); response.resume(); resolve() }
        }
        response.on('data', onData)
        endings.push(new Promise((resolve) => { response.on('close', resolve) }))
      })
      req.on('error', () => {}) // destroyed on purpose
      req.end()
      requests.push(req)
    }))
  }
  await Promise.all(firsts)
  return { requests, ended: Promise.all(endings) }
}

t.test('1,000 streams opened and closed: heap and handles back where they were', async (t) => {
  const app = Fastify()
  await app.register(activeConversations, { pool: db.pool, jwt: { secret: SECRET } })
  t.teardown(() => app.close())
  const base = await app.listen({ port: 0, host: '127.0.0.1' })

  // A first round fills what is filled once (compiled code, the verified-token cache, lazy modules, pools).
  await (async () => {
    const warmUp = await openStreams(base, 1000)
    for (const req of warmUp.requests) req.destroy()
    await warmUp.ended
  })()
  await sleep(200)
  gc()
  const before = { heap: process.memoryUsage().heapUsed, handles: handles() }

  // In a function of its own, so that the client's side of the streams is garbage once it returns.
  const open = await (async () => {
    const { requests, ended } = await openStreams(base, 1000)
    const open = { heap: process.memoryUsage().heapUsed, handles: handles() }
    for (const req of requests) req.destroy()
    await ended
    return open
  })()
  t.ok(open.handles >= before.handles + 2000, `open: ${open.handles - before.handles} more handles (both ends of 1,000 sockets)`)
  for (let i = 0; i < 50 && handles() > before.handles; i++) await sleep(50)
  await sleep(100)
  gc()
  gc()
  const after = { heap: process.memoryUsage().heapUsed, handles: handles() }
  t.equal(after.handles, before.handles, 'every socket and timer is gone')
  const grown = (after.heap - before.heap) / 1024 / 1024
  t.ok(grown < 2, `heap back where it was: ${grown.toFixed(2)} MB after, against ${((open.heap - before.heap) / 1024 / 1024).toFixed(1)} MB while open`)
})

t.test('closing the gateway ends every stream at once and leaves no slot', async (t) => {
  const app = Fastify()
  await app.register(activeConversations, { connectionString: db.connectionString, jwt: { secret: SECRET }, live: { slotLingerMillis: 60_000 } })
  const base = await app.listen({ port: 0, host: '127.0.0.1' })
  const slots = async (): Promise<number> => Number((await db.pool.query(
    'SELECT count(*) FROM pg_replication_slots WHERE database = current_database()')).rows[0].count)
  t.equal(await slots(), 0, 'no stream: no slot')

  const { ended } = await openStreams(base, 100)
  for (let i = 0; i < 100 && await slots() === 0; i++) await sleep(20)
  t.equal(await slots(), 1, 'one slot for all the streams')
  const closing = Date.now()
  await app.close()
  await ended
  t.ok(Date.now() - closing < 1000, `closed, and every stream ended, in ${Date.now() - closing} ms`)
  for (let i = 0; i < 20 && await slots() > 0; i++) await sleep(50)
  t.equal(await slots(), 0, 'the slot is gone at close, its linger not waited for')
})
