// npm run bench:decoding: where the CPU goes while the writers' mix runs with
// a gateway decoding for 10 agent streams, and without one. Durable commits,
// the live bench's data set; 10 s of the mix each way (after 2 s of warm-up,
// and with a gateway after its first 6 s, whose CPU it prints second by second),
// CPU time from /proc: the writers' backends, the walsender, the gateway, the
// backends of its reads and this process (the writers' client). One reading
// each way, not a median: it shows where time goes, bench:live's `writes`
// says what it costs.
import { readdirSync, readFileSync } from 'node:fs'
import { request, type ClientRequest } from 'node:http'
import pg from 'pg'
import { processCpuMs } from './cpu.js'
import { createDataSet, startBenchPostgres } from './database.js'
import { log, managerToken, startServer, stopServer, type Server } from './runner.js'
import { connectWriters, LIVE_SHAPE, livesPerSecond, STREAM } from './writers.js'
import { CHANGE_COLUMNS, PUBLICATION } from '../lib/live/changes.js'

const SECONDS = 10
const SETTLING_SECONDS = 6

/**
 * BENCH_DECODING_OLD_ROWS=key: conversations log only their key for an update
 * or delete (REPLICA IDENTITY DEFAULT) instead of the whole old row, and with
 * BENCH_DECODING_COLUMNS=5 the publication sends the five columns a change
 * needs: what the walsender would save (the gateway then misses a moved
 * conversation's old agent, which is why migration 009 keeps FULL).
 */
const KEY_ONLY = process.env.BENCH_DECODING_OLD_ROWS === 'key'
const FIVE_COLUMNS = process.env.BENCH_DECODING_COLUMNS === '5'
// (A column list must cover the replica identity: with FULL, every column, or writers' updates fail.)
if (FIVE_COLUMNS && !KEY_ONLY) throw new Error('BENCH_DECODING_COLUMNS=5 needs BENCH_DECODING_OLD_ROWS=key')

/** Agent streams a-0 … a-<count - 1>, open once each has its first view; read and discarded. */
async function openStreams (server: Server, count: number): Promise<ClientRequest[]> {
  const { hostname, port } = new URL(server.url)
  return await Promise.all(Array.from({ length: count }, async (_, i) => await new Promise<ClientRequest>((resolve, reject) => {
    const path = `/public/${STREAM}/analytics/manager/agent/a-${i}/active-conversations/events`
    const req = request({ host: hostname, port, path, headers: { auth: managerToken(1) } }, (response) => {
      response.setEncoding('utf8')
      response.on('data', (chunk: string) => { if (chunk.includes('event: view')) resolve(req) })
    })
    req.on('error', reject)
    req.end()
  })))
}

/** CPU so far of the PostgreSQL processes, by kind: the walsender, the writers' backends, and the data set's other backends (the gateway's reads). */
function postgresByKind (database: string, writerPids: Set<number>): { walsender: number, writers: number, reads: number } {
  const cpu = { walsender: 0, writers: 0, reads: 0 }
  for (const pid of readdirSync('/proc').filter((name) => /^\d+$/.test(name))) {
    try {
      const command = readFileSync(`/proc/${pid}/cmdline`, 'utf8').replaceAll('\0', ' ')
      if (!command.startsWith('postgres:')) continue
      if (command.includes('walsender')) cpu.walsender += processCpuMs(pid)
      else if (writerPids.has(Number(pid))) cpu.writers += processCpuMs(pid)
      else if (command.includes(` ${database} `)) cpu.reads += processCpuMs(pid)
    } catch {} // the process ended meanwhile
  }
  return cpu
}

/**
 * A started gateway's first seconds under the mix: the CPU a life of the
 * gateway and the walsender, second by second, until they settle (V8
 * compiles the gateway's hot paths meanwhile). bench:live warms up for as long.
 */
async function settling (writers: pg.Client[], database: string, gatewayPid: number): Promise<string> {
  const seconds: string[] = []
  for (let second = 1; second <= SETTLING_SECONDS; second++) {
    const before = { walsender: postgresByKind(database, new Set()).walsender, gateway: processCpuMs(gatewayPid) }
    const lives = await livesPerSecond(writers, 1, 'settling')
    const after = { walsender: postgresByKind(database, new Set()).walsender, gateway: processCpuMs(gatewayPid) }
    seconds.push(`${second}: ${((after.gateway - before.gateway) / lives).toFixed(2)} / ${((after.walsender - before.walsender) / lives).toFixed(2)}`)
  }
  return `a started gateway's CPU a life (gateway / walsender, ms), second by second: ${seconds.join(', ')}`
}

/** The mix for SECONDS: its rate, and the CPU each part used meanwhile. */
async function measure (writers: pg.Client[], database: string, gatewayPid: number | null): Promise<{ lives: number, cpu: Record<string, number> }> {
  await livesPerSecond(writers, 2, 'warm')
  const self = (): number => { const usage = process.cpuUsage(); return (usage.user + usage.system) / 1000 }
  const writerPids = new Set(writers.map((client) => (client as unknown as { processID: number }).processID))
  const before = { ...postgresByKind(database, writerPids), gateway: gatewayPid === null ? 0 : processCpuMs(gatewayPid), client: self() }
  const lives = await livesPerSecond(writers, SECONDS, 'cpu')
  const after = { ...postgresByKind(database, writerPids), gateway: gatewayPid === null ? 0 : processCpuMs(gatewayPid), client: self() }
  const cpu: Record<string, number> = {}
  for (const key of Object.keys(after) as Array<keyof typeof after>) cpu[key] = Math.round(after[key] - before[key])
  return { lives, cpu }
}

const server = await startBenchPostgres({ fsync: 'on', synchronous_commit: 'on' })
try {
  const url = await createDataSet(server.connectionString, 'decoding', [LIVE_SHAPE])
  const database = new URL(url).pathname.slice(1)
  const admin = new pg.Client({ connectionString: url })
  await admin.connect()
  if (KEY_ONLY) await admin.query('ALTER TABLE conversations REPLICA IDENTITY DEFAULT')
  if (FIVE_COLUMNS) {
    await admin.query(`ALTER PUBLICATION ${PUBLICATION} SET TABLE agents, agent_groups, agent_group_members, agent_skills,
                       conversations (${[...CHANGE_COLUMNS].join(', ')})`)
  }
  await admin.end()
  const writers = await connectWriters(url)
  const gateway = await startServer(url)
  const streams = await openStreams(gateway, 10)
  const curve = await settling(writers, database, gateway.process.pid as number)
  const on = await measure(writers, database, gateway.process.pid as number)
  for (const stream of streams) stream.destroy()
  await stopServer(gateway)
  const off = await measure(writers, database, null)
  for (const client of writers) await client.end()
  const line = (name: string, { lives, cpu }: typeof on) => `${name}: ${lives.toFixed(0)} lives/s; CPU ms over ${SECONDS} s: ` +
    Object.entries(cpu).map(([key, ms]) => `${key} ${ms}`).join(', ')
  log(line('a gateway decoding for 10 agent streams', on))
  log(line('no gateway', off))
  log(curve)
  // Per conversation's life (5 commits): the rates of the two readings differ, the work per life compares.
  const perLife = (ms: number | undefined) => ((ms ?? 0) / (on.lives * SECONDS)).toFixed(3)
  const setting = `${KEY_ONLY ? 'old rows: key' : 'old rows: full'}${FIVE_COLUMNS ? ', five columns published' : ''}`
  console.log(`decoding (${setting}): rate=${(on.lives / off.lives).toFixed(2)} walsender_ms_a_life=${perLife(on.cpu.walsender)} gateway_ms_a_life=${perLife(on.cpu.gateway)} reads_ms_a_life=${perLife(on.cpu.reads)}`)
} finally {
  await server.stop()
}
