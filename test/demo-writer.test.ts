// The demo's writer: small changes to the demo stream that a wallboard shows,
// each a real write the triggers tell; and the demo gateway started with it.
import t from 'tap'
import { DEMO_STREAM_ID, seedDemo } from '../examples/demo-data.js'
import { startDemoWriter } from '../examples/demo-writer.js'
import { startDemo } from '../examples/demo.js'
import { freshDatabase } from './helpers/database.js'
import { listen } from './helpers/events.js'
import { SECRET } from './helpers/tokens.js'

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

t.test('conversations arrive, are accepted and close; agents change status', async (t) => {
  const db = await freshDatabase(t)
  await seedDemo(db.pool)
  const { rows: [{ started }] } = await db.pool.query('SELECT now() AS started')
  const errors: unknown[] = []
  const stop = startDemoWriter(db.pool, 10, (error) => { errors.push(error) })
  await sleep(800)
  await stop()
  const { rows: [counts] } = await db.pool.query(`
    SELECT count(*) FILTER (WHERE id LIKE 'c-live-%')::int AS arrived,
           count(*) FILTER (WHERE accepted_at >= $2)::int AS accepted,
           count(*) FILTER (WHERE closed_at >= $2)::int AS closed,
           count(*) FILTER (WHERE status = 'queued')::int AS queued
    FROM conversations WHERE stream_id = $1`, [DEMO_STREAM_ID, started])
  t.same(errors, [], 'every write succeeded')
  t.ok(counts.arrived > 0, `${counts.arrived} arrived`)
  t.ok(counts.accepted > 0, `${counts.accepted} accepted`)
  t.ok(counts.closed > 0, `${counts.closed} closed`)
  t.ok(counts.queued >= 1 && counts.queued <= 9, `the queue stays short: ${counts.queued}`)
  const statuses = await db.pool.query("SELECT DISTINCT online_status FROM agents WHERE stream_id = $1 AND id IN ('a-2345', 'a-3456')", [DEMO_STREAM_ID])
  t.ok(statuses.rows.every((row) => ['available', 'busy', 'away'].includes(row.online_status as string)))
})

t.test('the demo with its writer: the floor stream moves by itself', async (t) => {
  const db = await freshDatabase(t, { migrated: false })
  const demo = await startDemo({ host: '127.0.0.1', port: 0, databaseUrl: db.connectionString, jwtSecret: SECRET, logger: false, writerIntervalMillis: 100 })
  t.teardown(() => demo.close())
  const client = listen(demo.floorCurl.split("'").at(-2) + '/events', demo.token)
  t.teardown(() => { client.close() })
  await client.next(() => client.events.length >= 3)
  await client.next(() => true, 3000, 3)
  t.pass('an event beyond the first views, with nobody writing but the demo')
})
