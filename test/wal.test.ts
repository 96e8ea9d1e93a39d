// The pgoutput client alone (lib/live/wal.ts), on tables of its own.
import t from 'tap'
import { openWalStream, SlotWaitError, type WalCommit } from '../lib/live/wal.js'
import { freshDatabase } from './helpers/database.js'

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))
const db = await freshDatabase(t, { migrated: false })
const admin = db.pool
const server = { connectionString: db.connectionString }
/** A stream that decodes the columns the tests read (items.at, a timestamp in binary form, is skipped). */
const open = async (onCommit: (commit: WalCommit) => void, onLost: (error: Error) => void = () => {}, slotWaitMillis = 10_000) =>
  await openWalStream({ connectionString: server.connectionString }, { publication: 'spike', columns: new Set(['id', 'agent', 'note']), slotWaitMillis, onCommit, onLost })
await admin.query('CREATE TABLE items (id text PRIMARY KEY, agent text, note text, at timestamptz DEFAULT now(), blob text)')
await admin.query('CREATE TABLE moved (id text PRIMARY KEY, agent text)')
await admin.query('ALTER TABLE moved REPLICA IDENTITY FULL')
await admin.query('CREATE PUBLICATION spike FOR TABLE items, moved')

t.test('committed changes arrive in commit order, with commit times, old values as the replica identity gives them, and the columns asked for', async (t) => {
  const commits: WalCommit[] = []
  const errors: Error[] = []
  const source = await open((commit) => { commits.push(commit) }, (error) => { errors.push(error) })
  t.teardown(() => source.close())
  const { rows: [slot] } = await admin.query('SELECT temporary, active FROM pg_replication_slots WHERE slot_name = $1', [source.slotName])
  t.same(slot, { temporary: true, active: true })

  const before = Date.now()
  await admin.query("INSERT INTO items VALUES (1, 'a', 'x'), (2, 'b', NULL)")
  await admin.query("UPDATE items SET agent = 'c' WHERE id = '1'")
  await admin.query("BEGIN; INSERT INTO items VALUES (3, 'z', 'never'); ROLLBACK")
  await admin.query("INSERT INTO moved VALUES (1, 'a')")
  await admin.query("UPDATE moved SET agent = 'b' WHERE id = '1'")
  await admin.query("DELETE FROM items WHERE id = '2'")
  await admin.query('TRUNCATE items')
  for (let i = 0; i < 50 && commits.length < 6; i++) await sleep(20)

  t.same(errors, [])
  t.same(commits.map((commit) => commit.changes), [
    [{ kind: 'insert', table: 'items', row: { id: '1', agent: 'a', note: 'x' } }, { kind: 'insert', table: 'items', row: { id: '2', agent: 'b', note: null } }],
    [{ kind: 'update', table: 'items', row: { id: '1', agent: 'c', note: 'x' }, old: null }],
    [{ kind: 'insert', table: 'moved', row: { id: '1', agent: 'a' } }],
    [{ kind: 'update', table: 'moved', row: { id: '1', agent: 'b' }, old: { id: '1', agent: 'a' } }],
    [{ kind: 'delete', table: 'items', old: { id: '2', agent: null, note: null } }],
    [{ kind: 'truncate', tables: ['items'] }]
  ], 'the rolled-back insert never shows; the default identity gives no old row on update and the key alone on delete; FULL gives the old row')
  t.ok(commits.every((commit) => commit.commitTime >= before - 1000 && commit.commitTime <= Date.now()), 'commit times on the server\'s clock')
  t.ok(commits.every((commit, i) => i === 0 || commit.lsn > (commits[i - 1] as WalCommit).lsn), 'in commit order')

  await source.close()
  await sleep(100)
  const { rows } = await admin.query('SELECT 1 FROM pg_replication_slots WHERE slot_name = $1', [source.slotName])
  t.same(rows, [], 'closed: the temporary slot is gone')
})

t.test('a process killed with SIGKILL leaves no slot: the walsender sees its socket close', async (t) => {
  const { spawn } = await import('node:child_process')
  const script = `import('${new URL('../dist/lib/live/wal.js', import.meta.url).pathname}').then(async ({ openWalStream }) => {
    const source = await openWalStream({ connectionString: process.env.URL }, { publication: 'spike', slotWaitMillis: 10000, onCommit: () => {}, onLost: () => {} })
    console.log(source.slotName)
  })`
  const child = spawn(process.execPath, ['-e', script], { env: { ...process.env, URL: server.connectionString }, stdio: ['ignore', 'pipe', 'inherit'] })
  const slotName = await new Promise<string>((resolve) => { child.stdout.once('data', (chunk) => { resolve(String(chunk).trim()) }) })
  const present = await admin.query('SELECT 1 FROM pg_replication_slots WHERE slot_name = $1', [slotName])
  t.equal(present.rowCount, 1, 'its slot while it runs')
  const killed = Date.now()
  child.kill('SIGKILL')
  let gone = -1
  for (let i = 0; i < 100 && gone < 0; i++) {
    await sleep(20)
    if ((await admin.query('SELECT 1 FROM pg_replication_slots WHERE slot_name = $1', [slotName])).rowCount === 0) gone = Date.now() - killed
  }
  t.ok(gone >= 0 && gone < 2000, `gone ${gone} ms after SIGKILL`)
})

t.test('an unchanged TOASTed value is told as such, whether its column is decoded or skipped', async (t) => {
  const commits: WalCommit[] = []
  const source = await open((commit) => { commits.push(commit) })
  t.teardown(() => source.close())
  // Random text does not compress: stored out of line (TOAST), and not logged again when unchanged.
  await admin.query("INSERT INTO items (id, agent, note, blob) SELECT 'big', 'a', string_agg(md5(random()::text), ''), string_agg(md5(random()::text), '') FROM generate_series(1, 300)")
  await admin.query("UPDATE items SET agent = 'b' WHERE id = 'big'")
  for (let i = 0; i < 50 && commits.length < 2; i++) await sleep(20)
  const update = commits[1]?.changes[0] as { kind: string, row: Record<string, unknown> }
  t.equal(update.kind, 'update')
  t.same(Object.keys(update.row).sort(), ['agent', 'id', 'note'], 'the decoded columns only')
  t.equal(update.row.note, undefined, 'unchanged, out of line: undefined')
  t.equal(update.row.agent, 'b')
})

t.test('creating a slot waits for the transactions already running: past slotWaitMillis it gives up, leaving no slot', async (t) => {
  const running = await admin.connect()
  t.teardown(() => running.release())
  await running.query('BEGIN')
  await running.query("INSERT INTO items VALUES ('100', 'held', NULL)") // a transaction with an xid, open
  const started = Date.now()
  const error = await open(() => {}, () => {}, 300).then(() => null, (error: Error) => error)
  t.ok(error instanceof SlotWaitError, `gave up: ${String(error)}`)
  t.ok(Date.now() - started < 2000, `after about 300 ms: ${Date.now() - started}`)
  await running.query('ROLLBACK')
  await sleep(100)
  const { rows } = await admin.query("SELECT slot_name FROM pg_replication_slots WHERE database = current_database()")
  t.same(rows, [], 'its half-made slot went with its session')
})

t.test('the session ended from the server: onLost, once', async (t) => {
  const lost: Error[] = []
  const source = await open(() => {}, (error) => { lost.push(error) })
  t.teardown(() => source.close())
  await admin.query('SELECT pg_terminate_backend(active_pid) FROM pg_replication_slots WHERE slot_name = $1', [source.slotName])
  for (let i = 0; i < 100 && lost.length === 0; i++) await sleep(20)
  await sleep(50)
  t.equal(lost.length, 1)
  t.equal(source.backlogBytes(), 0)
})
