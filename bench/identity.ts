// npm run bench:identity: what REPLICA IDENTITY FULL on conversations would cost
// the writers (issue 19). Logical decoding sends an updated or deleted row's old
// values only for its replica identity; FULL logs the whole old row in the WAL
// of every UPDATE and DELETE, which only wal_level = logical does. On servers
// with wal_level = logical, fsync off and on (durable commits), the writers' mix
// (bench/writers.ts) with FULL against the default (the primary key), in
// alternating rounds, and the WAL each conversation's life writes either way.
// Then what wal_level = logical itself costs the mix against replica: two
// servers with durable commits, one of each, loaded in turns.
// BENCH_IDENTITY_ROUNDS (5) rounds of 5 s each way.
import { readFileSync } from 'node:fs'
import pg from 'pg'
import { startEmbeddedPostgres } from '../scripts/embedded-postgres.js'
import { createDataSet } from './database.js'
import { log, median, writeReport } from './runner.js'
import { life, livesPerSecond, LIVE_SHAPE, writersMix } from './writers.js'

const ROUNDS = Number(process.env.BENCH_IDENTITY_ROUNDS ?? 5)
const LIVES = 500 // a life: inserted, accepted, two replies, closed (5 statements)

/** WAL bytes a life writes, with the identity given: LIVES lives on one connection, the median of 3 runs. */
async function walPerLife (url: string, admin: pg.Pool, full: boolean): Promise<number> {
  await admin.query(`ALTER TABLE conversations REPLICA IDENTITY ${full ? 'FULL' : 'DEFAULT'}`)
  const client = new pg.Client({ connectionString: url })
  await client.connect()
  const runs: number[] = []
  for (let run = 0; run < 3; run++) {
    const { rows: [before] } = await client.query<{ lsn: string }>('SELECT pg_current_wal_insert_lsn() AS lsn')
    for (let n = 0; n < LIVES; n++) await life(client, `wal-${full ? 'f' : 'd'}-${run}-${n}`, n)
    const { rows: [bytes] } = await client.query<{ bytes: string }>('SELECT pg_wal_lsn_diff(pg_current_wal_insert_lsn(), $1) AS bytes', [before?.lsn])
    runs.push(Number(bytes?.bytes) / LIVES)
  }
  await client.end()
  await admin.query("DELETE FROM conversations WHERE id LIKE 'wal-%'")
  return median(runs)
}

const rows: string[] = []
for (const fsync of ['off', 'on']) {
  const server = await startEmbeddedPostgres({ shared_buffers: '2GB', fsync, wal_level: 'logical' })
  try {
    log(`fsync ${fsync}`)
    const url = await createDataSet(server.connectionString, 'identity', [LIVE_SHAPE])
    const admin = new pg.Pool({ connectionString: url, max: 1 })
    const wal = { full: await walPerLife(url, admin, true), key: await walPerLife(url, admin, false) }
    const mix = await writersMix(url, admin, ROUNDS, async (full) => {
      await admin.query(`ALTER TABLE conversations REPLICA IDENTITY ${full ? 'FULL' : 'DEFAULT'}`)
    })
    await admin.query('ALTER TABLE conversations REPLICA IDENTITY DEFAULT')
    await admin.end()
    rows.push(`| ${fsync === 'on' ? 'durable commits (`fsync = on`)' : '`fsync = off`'} | **${mix.ratio.toFixed(2)}** (${mix.rounds.join(', ')}) | ${wal.full.toFixed(0)} / ${wal.key.toFixed(0)} bytes (${(wal.full / wal.key).toFixed(2)}) |`)
    log(`${mix.ratio.toFixed(2)}; WAL ${wal.full.toFixed(0)} / ${wal.key.toFixed(0)} bytes a life`)
  } finally {
    await server.stop()
  }
}

/** The mix's rate on a server (4 connections, lives of 5 statements) for this long. */
async function mixRate (url: string, seconds: number, tag: string): Promise<number> {
  const writers = await Promise.all(Array.from({ length: 4 }, async () => { const client = new pg.Client({ connectionString: url }); await client.connect(); return client }))
  const rate = await livesPerSecond(writers, seconds, `lvl-${tag}`)
  for (const client of writers) await client.end()
  return rate
}

// wal_level = logical against replica, durable commits: the same data set on two servers, loaded in turns.
const levels = await Promise.all(['replica', 'logical'].map(async (level) => await startEmbeddedPostgres({ shared_buffers: '2GB', fsync: 'on', wal_level: level })))
let levelRow: string
try {
  const urls = await Promise.all(levels.map(async (server) => await createDataSet(server.connectionString, 'levels', [LIVE_SHAPE])))
  for (const url of urls) {
    const admin = new pg.Pool({ connectionString: url, max: 1 })
    await admin.end()
    await mixRate(url, 2, 'warm')
  }
  const ratios: number[] = []
  const figures: string[] = []
  for (let round = 0; round < ROUNDS; round++) {
    const rate: number[] = [0, 0]
    for (const i of round % 2 === 0 ? [1, 0] : [0, 1]) rate[i] = await mixRate(urls[i] as string, 5, `${round}`)
    ratios.push((rate[1] as number) / (rate[0] as number))
    figures.push(`${(rate[1] as number).toFixed(0)} / ${(rate[0] as number).toFixed(0)} lives/s`)
  }
  levelRow = `| durable commits (\`fsync = on\`), two servers loaded in turns | **${median(ratios).toFixed(2)}** (${figures.join(', ')}) |`
  log(`wal_level logical / replica: ${median(ratios).toFixed(2)}`)
} finally {
  for (const server of levels) await server.stop()
}

const report = [
  '<!-- identity:start: written by `npm run bench:identity` -->',
  `Run ${new Date().toISOString()} on ${(/model name\s*:\s*(.*)/.exec(readFileSync('/proc/cpuinfo', 'utf8'))?.[1] ?? 'unknown CPU')}, wal_level = logical: ` +
    `the writers' mix (4 connections, each conversation's life as 5 autocommit statements) with \`REPLICA IDENTITY FULL\` on conversations over the default (its primary key), median of ${ROUNDS} rounds (FULL / default in each), and the WAL a life writes (${LIVES} lives on one connection, median of 3 runs).`,
  '',
  '| server | writers\' rate, FULL / default | WAL a life, FULL / default |',
  '|---|---|---|',
  ...rows,
  '',
  `The writers' mix on a server with \`wal_level = logical\` over one with \`replica\` (the default), no slot, median of ${ROUNDS} rounds:`,
  '',
  '| servers | writers\' rate, logical / replica |',
  '|---|---|',
  levelRow,
  '<!-- identity:end -->'
].join('\n')
writeReport('identity', 'What REPLICA IDENTITY FULL would cost writers (npm run bench:identity)', report)
console.log(report)
