// The hub's timing, driven directly: changes fed to it as the change source would,
// the views read by the real statements on a real PostgreSQL, and the moments
// that streams meet only by chance (a change during a read, a stream closed
// before its window ends, a read that fails) made to happen on purpose.
import t from 'tap'
import pg from 'pg'
import { createHub, VIEWS_PER_STATEMENT, type HubSettings, type LiveReads, type MetricsUpdate, type MetricsWatch, type Watch, type ViewUpdate } from '../lib/live/hub.js'
import { readGroupMetrics, type GroupMetricsRequest } from '../lib/sql/group-metrics.js'
import { readAgentViews, readFloor, readGroupMembers, type AgentViewRequest } from '../lib/sql/views.js'
import { readInvisible } from '../lib/sql/visibility.js'
import { EVERY_STREAM, type Change } from '../lib/live/changes.js'
import { READ_EVERY_MILLIS } from '../lib/live/wal.js'
import { freshDatabase } from './helpers/database.js'
import { insertStream } from './helpers/rows.js'
import { seedWorld, STREAM, OTHER_STREAM } from './helpers/world.js'
import Fastify from 'fastify'
import { logLines } from './helpers/log.js'

const db = await freshDatabase(t)
const connectionString = db.connectionString
await seedWorld(db.pool)
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))
/** A committed transaction's xid (32 bits, as pgoutput gives it). */
const xidOf = async (client: { query: typeof db.pool.query }): Promise<number> =>
  Number(BigInt((await client.query('SELECT pg_current_xact_id()::text AS xid')).rows[0].xid) & 0xffffffffn)
const committedXid = await xidOf(db.pool)
/** A decoded change, as lib/live/changes.ts makes them, of a committed transaction. */
const change = (fields: Partial<Change> & { s: string }): Change => ({ a: [], g: [], u: false, xid: committedXid, committedAt: Date.now(), ...fields })

/** The real reads, counted, each held until `release` when `hold` is set. */
function readsOnTheDatabase () {
  const batches: AgentViewRequest[][] = []
  const floorReads: Array<Parameters<typeof readFloor>[1]> = []
  const metricsReads: GroupMetricsRequest[] = []
  const state = { hold: false, release: () => {}, fail: false, failMembers: false }
  const visibilityChecks: number[][] = []
  let reading: () => void = () => {}
  const started = () => new Promise<void>((resolve) => { reading = resolve })
  return {
    batches,
    floorReads,
    metricsReads,
    visibilityChecks,
    state,
    started,
    reads: {
      views: async (requests: AgentViewRequest[]) => {
        batches.push(requests)
        reading()
        if (state.hold) await new Promise<void>((resolve) => { state.release = resolve })
        if (state.fail) throw Object.assign(new Error('terminating connection due to administrator command'), { code: '57P01' })
        return await readAgentViews(db.pool, requests, 86_400)
      },
      floor: async (request: Parameters<typeof readFloor>[1]) => { floorReads.push(request); return await readFloor(db.pool, request, 86_400) },
      members: async (streamId: string, groups: string[]) => {
        if (state.failMembers) throw Object.assign(new Error('terminating connection due to administrator command'), { code: '57P01' })
        return await readGroupMembers(db.pool, streamId, groups)
      },
      groupMetrics: async (request: GroupMetricsRequest) => {
        metricsReads.push(request)
        if (state.fail) throw Object.assign(new Error('terminating connection due to administrator command'), { code: '57P01' })
        return await readGroupMetrics(db.pool, request, 86_400, 500)
      },
      invisible: async (xids: number[]) => {
        visibilityChecks.push(xids)
        return await readInvisible(db.pool, xids)
      }
    }
  }
}

function agentWatch (streamId: string, agentId: string): Watch & { received: ViewUpdate[], errors: number } {
  const watch = {
    streamId,
    source: undefined,
    conversationGroups: null,
    agent: { agentId, agentGroups: null },
    firstReadAt: 0, // (its stream's first read, long done)
    received: [] as ViewUpdate[],
    errors: 0,
    deliver (updates: ViewUpdate[]) { watch.received.push(...updates) },
    unavailable () { watch.errors++ }
  }
  return watch
}

/** A floor stream's watch: its groups (null: the whole stream), the agents it shows now. */
function floorWatch (streamId: string, floorGroups: string[] | null, agents: string[] = []): Watch & { received: ViewUpdate[] } {
  const watch = {
    streamId,
    source: undefined,
    conversationGroups: floorGroups,
    floor: { floorGroups, agents: new Set(agents) },
    firstReadAt: 0,
    received: [] as ViewUpdate[],
    deliver (updates: ViewUpdate[]) { watch.received.push(...updates) },
    unavailable () {}
  }
  return watch
}

const log = logLines()
// The hub's reports are checked through a real SDK in test/telemetry.test.ts.
const unmeasured = { changed () {}, refreshed () {} }
const logger = Fastify({ logger: { level: 'warn', stream: log.stream } }).log

/** A hub on these reads: no polling and nobody told of watches unless the test says. */
function hubOn (reads: LiveReads, settings: Pick<HubSettings, 'coalesceMillis' | 'retryMillis' | 'metricsIntervalMillis'> & Partial<HubSettings>) {
  return createHub({ pollMillis: 60_000, onWatching: () => {}, log: logger, telemetry: unmeasured, reads, ...settings })
}

t.test('a change during a read waits for it, then goes in the next read', async (t) => {
  const db = readsOnTheDatabase()
  const hub = hubOn(db.reads, { coalesceMillis: 10, retryMillis: 10, metricsIntervalMillis: 60_000 })
  t.teardown(() => { hub.close() })
  const a1 = agentWatch(STREAM, 'a1')
  const a2 = agentWatch(STREAM, 'a2')
  hub.add(a1)
  hub.add(a2)
  db.state.hold = true
  const first = db.started()
  hub.change(change({ s: STREAM, a: ['a1'] }))
  await first
  hub.change(change({ s: STREAM, a: ['a2'] })) // while the first read is held
  await sleep(50)
  t.equal(db.batches.length, 1, 'no second read while the first runs')
  db.state.hold = false
  db.state.release()
  await sleep(100)
  t.same(db.batches.map((batch) => batch.map((request) => request.agentId)), [['a1'], ['a2']], 'then the next, with the change that waited')
  t.same(a1.received.map((update) => update.agentId), ['a1'])
  t.same(a2.received.map((update) => update.agentId), ['a2'])
})

t.test('the window counts from the commit, for as long as the WAL client may have held the change', async (t) => {
  /** When a change with this commit time, told now, is read (ms after it is told). */
  const readAfter = async (committedAt: number): Promise<number> => {
    const db = readsOnTheDatabase()
    const hub = hubOn(db.reads, { coalesceMillis: 200, retryMillis: 10, metricsIntervalMillis: 60_000 })
    t.teardown(() => { hub.close() })
    hub.add(agentWatch(STREAM, 'a1'))
    const started = db.started()
    const told = performance.now()
    hub.change(change({ s: STREAM, a: ['a1'], committedAt }))
    await started
    return performance.now() - told
  }
  const now = Date.now()
  const [fresh, held, behind] = await Promise.all([readAfter(now), readAfter(now - 40), readAfter(now - 3_600_000)])
  t.ok(fresh >= 199, `committed as it was told: the whole window (${fresh.toFixed(0)} ms)`)
  t.ok(held >= 150 && held < fresh, `committed 40 ms before: read about 40 ms sooner (${held.toFixed(0)} ms)`)
  t.ok(behind >= 200 - READ_EVERY_MILLIS - 1 && behind < held, `the server's clock an hour behind: sooner by ${READ_EVERY_MILLIS} ms, no more (${behind.toFixed(0)} ms)`)
})

t.test('notices of one window merge: one read, each view once', async (t) => {
  const db = readsOnTheDatabase()
  const hub = hubOn(db.reads, { coalesceMillis: 30, retryMillis: 10, metricsIntervalMillis: 60_000 })
  t.teardown(() => { hub.close() })
  const a1 = agentWatch(STREAM, 'a1')
  const again = agentWatch(STREAM, 'a1') // a second screen on the same view
  hub.add(a1)
  hub.add(again)
  hub.change(change({ s: EVERY_STREAM })) // a truncation: every view (this stream's alone are watched)
  hub.change(change({ s: EVERY_STREAM })) // a truncation: every view (this stream's alone are watched)
  hub.change(change({ s: STREAM, a: [], g: ['g1'], u: true }))
  hub.change(change({ s: STREAM, a: [], g: [], u: true }))
  hub.change(change({ s: 'st-nobody-watches', a: ['x'] }))
  await sleep(100)
  t.same(db.batches.map((batch) => batch.map((request) => request.agentId)), [['a1']], 'one read, the view once for both screens')
  t.equal(a1.received[0]?.view, again.received[0]?.view, 'the same view object: serialized once for both')
})

t.test('two streams with the same agent id in one window: each gets its own stream\'s view, never the other\'s', async (t) => {
  const db = readsOnTheDatabase()
  const hub = hubOn(db.reads, { coalesceMillis: 20, retryMillis: 10, metricsIntervalMillis: 60_000 })
  t.teardown(() => { hub.close() })
  const main = agentWatch(STREAM, 'a1')
  const other = agentWatch(OTHER_STREAM, 'a1')
  hub.add(main)
  hub.add(other)
  hub.change(change({ s: STREAM, a: ['a1'] }))
  hub.change(change({ s: OTHER_STREAM, a: ['a1'] }))
  await sleep(100)
  t.same(db.batches.map((batch) => batch.map((request) => request.streamId)), [[STREAM, OTHER_STREAM]], 'one read, a request for each stream')
  t.match(main.received[0]?.view, { name: 'Ann Lee' })
  t.match(other.received[0]?.view, { name: 'Other Tenant' })
})

t.test('a floor read again whole is read once for every screen that shows it', async (t) => {
  const db = readsOnTheDatabase()
  const hub = hubOn(db.reads, { coalesceMillis: 20, retryMillis: 10, metricsIntervalMillis: 60_000 })
  t.teardown(() => { hub.close() })
  const floor = (agentGroups: string[] | null) => {
    const watch = floorWatch(STREAM, agentGroups)
    hub.add(watch)
    return watch
  }
  const screens = [floor(null), floor(null), floor(null), floor(['g3'])]
  hub.change(change({ s: EVERY_STREAM })) // a truncation: every view (this stream's alone are watched)
  await sleep(100)
  t.same(db.floorReads.map((request) => request.floorGroups), [null, ['g3']], 'two distinct floors, two reads')
  t.same(screens.map((screen) => screen.received.map((update) => update.agentId)), [['a1', 'a2', 'a3'], ['a1', 'a2', 'a3'], ['a1', 'a2', 'a3'], ['a2']])
  t.equal(screens[0]?.received[0]?.view, screens[1]?.received[0]?.view, 'the same view objects: serialized once')
})

t.test('a refresh of more views than one statement reads: one statement after another, every view delivered', async (t) => {
  await insertStream(db.pool, 'st-many', { agents: Array.from({ length: VIEWS_PER_STATEMENT + 1 }, (_, i) => ({ id: `m-${i}` })) })
  const reads = readsOnTheDatabase()
  const hub = hubOn(reads.reads, { coalesceMillis: 10, retryMillis: 10, metricsIntervalMillis: 60_000 })
  t.teardown(() => { hub.close() })
  const watches = Array.from({ length: VIEWS_PER_STATEMENT + 1 }, (_, i) => agentWatch('st-many', `m-${i}`))
  for (const watch of watches) hub.add(watch)
  hub.change(change({ s: EVERY_STREAM })) // a truncation: every view (st-many's alone are watched)
  for (let i = 0; i < 100 && watches.some((watch) => watch.received.length === 0); i++) await sleep(50)
  t.same(reads.batches.map((batch) => batch.length), [VIEWS_PER_STATEMENT, 1])
  t.ok(watches.every((watch, i) => watch.received.length === 1 && (watch.received[0]?.view as { name: string }).name === `Agent m-${i}`), 'each watch its own agent\'s view')
})

t.test('a stream closed before its window ends is not read for', async (t) => {
  const db = readsOnTheDatabase()
  const hub = hubOn(db.reads, { coalesceMillis: 30, retryMillis: 10, metricsIntervalMillis: 60_000 })
  t.teardown(() => { hub.close() })
  const a1 = agentWatch(STREAM, 'a1')
  hub.add(a1)
  hub.change(change({ s: STREAM, a: ['a1'] }))
  hub.remove(a1)
  hub.remove(a1) // twice (a stream's failure and its end): harmless
  await sleep(80)
  t.same(db.batches, [], 'nothing read')
})

t.test('a failed read: every watch of its streams is told, and the changes are read again', async (t) => {
  const db = readsOnTheDatabase()
  const hub = hubOn(db.reads, { coalesceMillis: 10, retryMillis: 40, metricsIntervalMillis: 60_000 })
  t.teardown(() => { hub.close() })
  const main = agentWatch(STREAM, 'a1')
  const other = agentWatch(OTHER_STREAM, 'a1')
  hub.add(main)
  hub.add(other)
  db.state.fail = true
  db.state.hold = true
  const first = db.started()
  hub.change(change({ s: STREAM, a: ['a1'], u: true }))
  hub.change(change({ s: EVERY_STREAM })) // a truncation: every view of both streams
  hub.remove(other) // its stream closes before the window ends
  await first
  hub.change(change({ s: STREAM, u: true })) // and more arrives while the read runs
  db.state.release()
  await sleep(20)
  t.equal(main.errors, 1, 'told once')
  t.equal(other.errors, 0, 'a closed stream is told nothing')
  db.state.fail = false
  db.state.hold = false
  await sleep(120)
  t.same(main.received.map((update) => update.agentId), ['a1'], 'read again after retryMillis')
  t.match(log.lines.join(''), /live views could not be read; retrying/)
})

t.test('a failed members read: the streams after it in the window are kept for the retry too', async (t) => {
  const db = readsOnTheDatabase()
  const hub = hubOn(db.reads, { coalesceMillis: 10, retryMillis: 30, metricsIntervalMillis: 60_000 })
  t.teardown(() => { hub.close() })
  const main = agentWatch(STREAM, 'a1')
  const other = agentWatch(OTHER_STREAM, 'a1')
  hub.add(main)
  hub.add(other)
  db.state.failMembers = true
  hub.change(change({ s: STREAM, g: ['g1'] })) // its members are looked up first, and that fails
  hub.change(change({ s: OTHER_STREAM, a: ['a1'] }))
  await sleep(20)
  t.equal(main.errors, 1, 'the stream whose read failed is told')
  t.equal(other.errors, 0, 'the one not reached yet is not')
  db.state.failMembers = false
  await sleep(100)
  t.same([main.received.map((update) => update.agentId), other.received.map((update) => update.agentId)], [['a1'], ['a1']], 'both read on the retry')
})

t.test('removing a metrics watch that was never added (a stream refused before it was) is harmless', async (t) => {
  const db = readsOnTheDatabase()
  const hub = hubOn(db.reads, { coalesceMillis: 10, retryMillis: 10, metricsIntervalMillis: 50 })
  t.teardown(() => { hub.close() })
  hub.remove(metricsWatch(STREAM, null))
  const watch = metricsWatch(STREAM, null)
  hub.add(watch)
  await sleep(120)
  t.ok(watch.received.length >= 1, 'the clock still runs for the ones added after')
})

t.test('closed: changes are dropped, nothing more is read', async (t) => {
  const db = readsOnTheDatabase()
  const hub = hubOn(db.reads, { coalesceMillis: 10, retryMillis: 10, metricsIntervalMillis: 60_000 })
  hub.add(agentWatch(STREAM, 'a1'))
  hub.change(change({ s: STREAM, a: ['a1'] }))
  hub.close()
  hub.change(change({ s: STREAM, a: ['a1'] }))
  await sleep(50)
  t.same(db.batches, [])
})

function metricsWatch (streamId: string, groups: string[] | null): MetricsWatch & { received: MetricsUpdate[], errors: number } {
  const watch = {
    streamId,
    metrics: { streamId, groups, ungrouped: groups === null, source: undefined, serviceLevelSeconds: 20 },
    firstReadAt: 0,
    received: [] as MetricsUpdate[],
    errors: 0,
    deliver (updates: MetricsUpdate[]) { watch.received.push(...updates) },
    unavailable () { watch.errors++ }
  }
  return watch
}

t.test('metrics watches: read on any change of their stream, once per distinct request, and by the clock', async (t) => {
  const db = readsOnTheDatabase()
  const hub = hubOn(db.reads, { coalesceMillis: 10, retryMillis: 10, metricsIntervalMillis: 150 })
  t.teardown(() => { hub.close() })
  const [whole, again, g1, other] = [metricsWatch(STREAM, null), metricsWatch(STREAM, null), metricsWatch(STREAM, ['g1']), metricsWatch(OTHER_STREAM, null)]
  for (const watch of [whole, again, g1, other]) hub.add(watch)
  hub.change(change({ s: STREAM, a: ['a1'] })) // an active conversation of a1's: which group it is in is not said
  await sleep(60)
  t.equal(db.metricsReads.length, 2, 'two distinct requests of the changed stream, two reads; none of the other stream')
  t.same([whole, again, g1, other].map((watch) => watch.received.length), [1, 1, 1, 0])
  t.equal(whole.received[0]?.metrics, again.received[0]?.metrics, 'one read for both screens')
  t.same(g1.received[0]?.metrics !== 'too-many' && g1.received[0]?.metrics.groups.map((group) => group.agentGroupId), ['g1'])
  t.equal(db.batches.length, 0, 'no agent view was read')

  await sleep(200) // one tick of the clock: every metrics watch again, of every stream
  t.same([whole, again, g1, other].map((watch) => watch.received.length), [2, 2, 2, 1])

  hub.remove(other)
  for (const watch of [whole, again, g1]) hub.remove(watch)
  const reads = db.metricsReads.length
  await sleep(200)
  t.equal(db.metricsReads.length, reads, 'no metrics watch: the clock stops')
})

t.test('a metrics read that fails: its watches are told, then read again', async (t) => {
  const db = readsOnTheDatabase()
  const hub = hubOn(db.reads, { coalesceMillis: 10, retryMillis: 30, metricsIntervalMillis: 60_000 })
  t.teardown(() => { hub.close() })
  const watch = metricsWatch(STREAM, null)
  hub.add(watch)
  db.state.fail = true
  hub.change(change({ s: STREAM, a: ['a1'] }))
  await sleep(25)
  t.equal(watch.errors, 1, 'told the database is unavailable')
  db.state.fail = false
  await sleep(60)
  t.equal(watch.received.length, 1, 'then the figures, at the retry')
  hub.refreshAll()
  await sleep(30)
  t.equal(watch.received.length, 2, 'read again, quietly, when a slot is up')
  t.equal(watch.received[1]?.quiet, true)
})

t.test('a change whose transaction a new snapshot does not see yet: read now, and again once it is seen', async (t) => {
  const db = readsOnTheDatabase()
  const hub = hubOn(db.reads, { coalesceMillis: 10, retryMillis: 10, metricsIntervalMillis: 60_000 })
  t.teardown(() => { hub.close() })
  const a1 = agentWatch(STREAM, 'a1')
  hub.add(a1)
  // A transaction that changed a1 and has not committed: as a decoded commit looks while its transaction leaves the proc array.
  const writer = new pg.Client({ connectionString })
  await writer.connect()
  t.teardown(() => writer.end())
  await writer.query('BEGIN')
  await writer.query("UPDATE agents SET first_name = 'Annie' WHERE stream_id = $1 AND id = 'a1'", [STREAM])
  const xid = await xidOf(writer)
  hub.change(change({ s: STREAM, a: ['a1'], xid }))
  await sleep(80)
  t.ok(a1.received.length >= 1 && a1.received.every((update) => (update.view as { name: string }).name === 'Ann Lee'), 'read as it is now')
  t.ok(db.visibilityChecks.length >= 2 && db.visibilityChecks.every((xids) => xids.length === 1 && xids[0] === xid), 'asked again while unseen')
  await writer.query('COMMIT')
  await sleep(80)
  t.match(a1.received.at(-1)?.view, { name: 'Annie Lee' }, 'seen: read again')
  const checks = db.visibilityChecks.length
  await sleep(50)
  t.equal(db.visibilityChecks.length, checks, 'then no more asking')
  await writer.query("UPDATE agents SET first_name = 'Ann' WHERE stream_id = $1 AND id = 'a1'", [STREAM])
})

t.test('polling: every watch read again each pollMillis, quietly, while any is open; the source told of the first and the last', async (t) => {
  const db = readsOnTheDatabase()
  const told: boolean[] = []
  const hub = hubOn(db.reads, { coalesceMillis: 10, retryMillis: 10, metricsIntervalMillis: 60_000, pollMillis: 40, onWatching: (active) => { told.push(active) } })
  t.teardown(() => { hub.close() })
  hub.poll(true)
  const [a1, a2, metrics] = [agentWatch(STREAM, 'a1'), agentWatch(OTHER_STREAM, 'a1'), metricsWatch(STREAM, null)]
  for (const watch of [a1, a2, metrics]) hub.add(watch)
  await sleep(150)
  t.ok(a1.received.length >= 2 && a2.received.length >= 2 && metrics.received.length >= 2, `read again: ${a1.received.length}, ${a2.received.length}, ${metrics.received.length}`)
  t.ok([...a1.received, ...a2.received, ...metrics.received].every((update) => update.quiet === true), 'quietly')
  hub.poll(false)
  const reads = db.batches.length
  await sleep(100)
  t.equal(db.batches.length, reads, 'a slot is up: no more polling')
  hub.poll(true)
  for (const watch of [a1, a2, metrics]) hub.remove(watch)
  await sleep(100)
  t.equal(db.batches.length, reads, 'no watch: nothing to poll')
  t.same(told, [true, false])
})

t.test('a quiet read skips the watches whose first read began after it was asked for, or has not begun', async (t) => {
  const db = readsOnTheDatabase()
  const hub = hubOn(db.reads, { coalesceMillis: 10, retryMillis: 10, metricsIntervalMillis: 60_000 })
  t.teardown(() => { hub.close() })
  const [before, opening, after] = [agentWatch(STREAM, 'a1'), agentWatch(STREAM, 'a2'), agentWatch(STREAM, 'a3')]
  delete opening.firstReadAt
  for (const watch of [before, opening, after]) hub.add(watch)
  hub.refreshAll()
  after.firstReadAt = performance.now()
  await sleep(50)
  t.same([before, opening, after].map((watch) => watch.received.length), [1, 0, 0])
})

t.test('a poll and a change in one window: the views the change names are sent, the others quietly', async (t) => {
  const db = readsOnTheDatabase()
  const hub = hubOn(db.reads, { coalesceMillis: 30, retryMillis: 10, metricsIntervalMillis: 60_000 })
  t.teardown(() => { hub.close() })
  const [a1, a2, ungroupedOnly] = [agentWatch(STREAM, 'a1'), agentWatch(STREAM, 'a2'), agentWatch(OTHER_STREAM, 'a1')]
  const floor = floorWatch(STREAM, null, ['a1', 'a2', 'a3'])
  for (const watch of [a1, a2, ungroupedOnly, floor]) hub.add(watch)
  hub.refreshAll()
  hub.change(change({ s: STREAM, g: ['g3'] })) // g3's queue: its member a2's view
  hub.change(change({ s: OTHER_STREAM, u: true })) // the ungrouped queue: every agent's view
  await sleep(100)
  const quietly = (updates: ViewUpdate[]) => updates.map((update) => [update.agentId, update.quiet === true])
  t.same([a1, a2, ungroupedOnly].map((watch) => quietly(watch.received)), [[['a1', true]], [['a2', false]], [['a1', false]]])
  t.same(quietly(floor.received), [['a1', true], ['a2', false], ['a3', true]], 'the floor read whole, a2 alone sent')
})

t.test('a truncation: every view of every watched stream, not quietly', async (t) => {
  const db = readsOnTheDatabase()
  const hub = hubOn(db.reads, { coalesceMillis: 10, retryMillis: 10, metricsIntervalMillis: 60_000 })
  t.teardown(() => { hub.close() })
  const [a1, other] = [agentWatch(STREAM, 'a1'), agentWatch(OTHER_STREAM, 'a1')]
  hub.add(a1)
  hub.add(other)
  const floor = floorWatch(STREAM, null, ['a1', 'truncated-away'])
  hub.add(floor)
  hub.change(change({ s: EVERY_STREAM }))
  await sleep(60)
  t.same([a1.received.length, other.received.length], [1, 1])
  t.same([a1.received[0]?.quiet, other.received[0]?.quiet], [false, false])
  t.same(floor.received.filter((update) => update.view === null).map((update) => update.agentId), ['truncated-away'], 'the floor read whole: an agent no longer on it, gone')
})
