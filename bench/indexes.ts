// npm run bench:indexes: what migration 008's indexes (the queue metrics')
// cost the writers. On a fresh copy of the live bench's data set, the writers'
// mix (bench/writers.ts) with the two indexes against without them, in one run,
// on a server with fsync off and on one with durable commits (fsync on).
// BENCH_INDEXES_ROUNDS (5) rounds of 5 s each way; no gateway decodes, as
// on a database no gateway streams from.
import { readFileSync } from 'node:fs'
import pg from 'pg'
import { startEmbeddedPostgres } from '../scripts/embedded-postgres.js'
import { createDataSet } from './database.js'
import { log, writeReport } from './runner.js'
import { LIVE_SHAPE, writersMix } from './writers.js'

const ROUNDS = Number(process.env.BENCH_INDEXES_ROUNDS ?? 5)
// Migration 008, as released: dropped and made again between rounds.
const INDEXES = readFileSync(new URL('../../migrations/008_group_metrics_indexes.sql', import.meta.url), 'utf8')
const DROP = 'DROP INDEX conversations_active_by_group, conversations_by_group_queued'

const rows: string[] = []
for (const fsync of ['off', 'on']) {
  const server = await startEmbeddedPostgres({ shared_buffers: '2GB', fsync })
  try {
    log(`fsync ${fsync}`)
    const url = await createDataSet(server.connectionString, 'indexes', [LIVE_SHAPE])
    const admin = new pg.Pool({ connectionString: url, max: 1 })
    let present = true
    const mix = await writersMix(url, admin, ROUNDS, async (on) => {
      if (on === present) return
      await admin.query(on ? INDEXES : DROP)
      present = on
    })
    await admin.end()
    rows.push(`| ${fsync === 'on' ? 'durable commits (`fsync = on`)' : '`fsync = off`'} | **${mix.ratio.toFixed(2)}** (${mix.rounds.join(', ')}) |`)
    log(mix.ratio.toFixed(2))
  } finally {
    await server.stop()
  }
}

const report = [
  '<!-- indexes:start: written by `npm run bench:indexes` -->',
  `Run ${new Date().toISOString()} on ${(/model name\s*:\s*(.*)/.exec(readFileSync('/proc/cpuinfo', 'utf8'))?.[1] ?? 'unknown CPU')}: ` +
    `the writers' mix (4 connections, each conversation's life as 5 autocommit statements) with migration 008's two indexes over without them, median of ${ROUNDS} rounds (with / without in each).`,
  '',
  '| server | writers\' rate with / without the indexes |',
  '|---|---|',
  ...rows,
  '<!-- indexes:end -->'
].join('\n')
writeReport('indexes', 'What the queue metrics\' indexes cost writers (npm run bench:indexes)', report)
console.log(report)
