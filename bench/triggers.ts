// npm run bench:triggers: what migration 006's triggers cost the writers, and
// what other forms of them would. Each row puts one form of the conversations'
// trigger in place on a fresh copy of the live bench's data set, with a bare
// listening connection in the state the row names, and runs the writers' mix
// (bench/writers.ts) with the trigger against without it, in one run.
// BENCH_TRIGGERS_ROUNDS (3) rounds of 5 s each way.
import { readFileSync } from 'node:fs'
import pg from 'pg'
import { CHANNEL, LISTENING_LOCK } from '../lib/live/listener.js'
import { startEmbeddedPostgres, type EmbeddedDatabase } from '../scripts/embedded-postgres.js'
import { createDataSet } from './database.js'
import { log, writeReport } from './runner.js'
import { LIVE_SHAPE, writersMix } from './writers.js'

const ROUNDS = Number(process.env.BENCH_TRIGGERS_ROUNDS ?? 3)

/** A replacement for conversations_notify(), the statement-level trigger function of migration 006. */
const replaceFunction = (body: string) => `CREATE OR REPLACE FUNCTION conversations_notify () RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN ${body} END $$`

interface Form {
  name: string
  /** Run on the data set before the mix (undefined: migration 006 as released). */
  setUp?: (admin: pg.Pool) => Promise<void>
  listener: 'none' | 'idle' | 'in batches'
  /** Whether its listener must receive notifications (a check that the row measured what it says). */
  notifies: boolean
  fsync?: boolean
}

const FORMS: Form[] = [
  { name: 'migration 006, nobody listening (its gate: nothing is sent)', listener: 'none', notifies: false },
  { name: 'migration 006, a listener', listener: 'idle', notifies: true },
  { name: 'migration 006, a listener busy in `pg_sleep(0.2)` loops, so that notifications reach it in batches', listener: 'in batches', notifies: true },
  {
    name: 'migration 006\'s query without its pg_notify (the payload built, not sent), a listener',
    listener: 'idle',
    notifies: false,
    setUp: async (admin) => {
      const { rows: [{ source }] } = await admin.query("SELECT pg_get_functiondef('conversations_notify'::regproc) AS source")
      await admin.query((source as string).replaceAll(`pg_notify('${CHANNEL}', `, 'octet_length('))
    }
  },
  { name: 'a statement-level trigger with transition tables that does nothing', listener: 'idle', notifies: false, setUp: async (admin) => { await admin.query(replaceFunction('RETURN NULL;')) } },
  { name: 'one pg_notify of a constant a statement, no query, a listener', listener: 'idle', notifies: true, setUp: async (admin) => { await admin.query(replaceFunction(`PERFORM pg_notify('${CHANNEL}', 'x'); RETURN NULL;`)) } },
  {
    name: 'row-level: a pg_notify of a string from the row, no coalescing, a listener',
    listener: 'idle',
    notifies: true,
    setUp: async (admin) => {
      for (const event of ['insert', 'update', 'delete']) await admin.query(`DROP TRIGGER conversations_notify_on_${event} ON conversations`)
      await admin.query(`CREATE FUNCTION conversations_notify_row () RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
          PERFORM pg_notify('${CHANNEL}', NEW.stream_id || ' ' || coalesce(NEW.agent_id, '') || ' ' || coalesce(NEW.agent_group_id, '') || ' ' || NEW.status);
          RETURN NULL;
        END $$`)
      await admin.query('CREATE TRIGGER conversations_notify_row AFTER INSERT OR UPDATE ON conversations FOR EACH ROW EXECUTE FUNCTION conversations_notify_row()')
    }
  },
  { name: 'migration 006, nobody listening, on a server with `fsync = on` (durable commits)', listener: 'none', notifies: false, fsync: true },
  { name: 'migration 006, a listener, on a server with `fsync = on`', listener: 'idle', notifies: true, fsync: true }
]

/** A bare listening connection as a gateway's (LISTEN, the lock held shared), or one that takes its notifications in batches. */
async function listen (url: string, mode: Form['listener']): Promise<() => Promise<number>> {
  if (mode === 'none') return async () => 0
  const client = new pg.Client({ connectionString: url })
  await client.connect()
  await client.query(`LISTEN ${CHANNEL}`)
  await client.query('SELECT pg_advisory_lock_shared($1)', [LISTENING_LOCK])
  let notices = 0
  client.on('notification', () => { notices++ })
  let sleeping = mode === 'in batches'
  const loop = (async () => { while (sleeping) await client.query('SELECT pg_sleep(0.2)') })()
  return async () => {
    sleeping = false
    await loop
    await client.end()
    return notices
  }
}

const servers: Record<string, EmbeddedDatabase> = {}
const rows: string[] = []
try {
  for (const [i, form] of FORMS.entries()) {
    const fsync = form.fsync === true ? 'on' : 'off'
    servers[fsync] ??= await startEmbeddedPostgres({ shared_buffers: '2GB', fsync })
    log(form.name)
    const url = await createDataSet((servers[fsync] as EmbeddedDatabase).connectionString, `triggers_${i}`, [LIVE_SHAPE])
    const admin = new pg.Pool({ connectionString: url, max: 1 })
    await form.setUp?.(admin)
    const stopListening = await listen(url, form.listener)
    const mix = await writersMix(url, admin, ROUNDS)
    const notices = await stopListening()
    if ((notices > 0) !== form.notifies) throw new Error(`${form.name}: its listener received ${notices} notifications`)
    await admin.end()
    rows.push(`| ${form.name} | **${mix.ratio.toFixed(2)}** (${mix.rounds.join(', ')}) |`)
    log(`${mix.ratio.toFixed(2)}`)
  }
} finally {
  for (const server of Object.values(servers)) await server.stop()
}

const report = [
  '<!-- triggers:start: written by `npm run bench:triggers` -->',
  `Run ${new Date().toISOString()} on ${(/model name\s*:\s*(.*)/.exec(readFileSync('/proc/cpuinfo', 'utf8'))?.[1] ?? 'unknown CPU')}: ` +
    `the writers' mix (4 connections, each conversation's life as 5 autocommit statements) with the trigger over without it, median of ${ROUNDS} rounds (with / without in each).`,
  '',
  '| the conversations\' trigger | writers\' rate with / without |',
  '|---|---|',
  ...rows,
  '<!-- triggers:end -->'
].join('\n')
writeReport('triggers', 'What the triggers cost writers (npm run bench:triggers)', report)
console.log(report)
