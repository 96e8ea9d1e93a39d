import { spawn, type ChildProcess } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { existsSync, readFileSync, writeFileSync } from 'node:fs'
import autocannon from 'autocannon'
import { createSigner } from 'fast-jwt'
import { postgresCpuMs, processCpuMs } from './cpu.js'

// What the bench scripts share: the bench server in a process of its own, a
// manager's token for it, and a load run with the CPU it cost.

const CONNECTIONS = Number(process.env.BENCH_CONNECTIONS ?? 20)
const secret = randomBytes(32).toString('hex')
const sleep = async (ms: number) => await new Promise((resolve) => setTimeout(resolve, ms))
export const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)] as number
export const log = (message: string) => { console.error(`[bench] ${message}`) }

/** A manager's token for streams st-1 to st-<streams>. */
export function managerToken (streams: number, sub = 'bench-manager'): string {
  return createSigner({ key: secret, expiresIn: 3600_000 })({
    sub, role: 'manager', streamIds: Array.from({ length: streams }, (_, s) => `st-${s + 1}`)
  })
}

export interface Server { url: string, process: ChildProcess, database: string }

/** bench/server.js on this database (`env`: more of its settings, BENCH_* as server.ts reads them). */
export async function startServer (databaseUrl: string, env: Record<string, string> = {}): Promise<Server> {
  const child = spawn(process.execPath, [new URL('./server.js', import.meta.url).pathname], {
    env: { ...process.env, ...env, DATABASE_URL: databaseUrl, BENCH_JWT_SECRET: secret },
    stdio: ['ignore', 'pipe', 'inherit']
  })
  let output = ''
  child.stdout?.on('data', (chunk) => { output += String(chunk) })
  for (let i = 0; i < 100 && !/^listening /m.test(output); i++) await sleep(100)
  const url = /^listening (\S+)/m.exec(output)?.[1]
  if (url === undefined) throw new Error('the bench server did not start')
  return { url, process: child, database: new URL(databaseUrl).pathname.slice(1) }
}

/** Stops the server; its peak RSS in MB. */
export async function stopServer (server: Server): Promise<number> {
  const peakKb = Number(/VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${server.process.pid}/status`, 'utf8'))?.[1])
  server.process.kill('SIGTERM')
  await new Promise((resolve) => server.process.once('exit', resolve))
  return peakKb / 1024
}

/** What a load run asks for: a path per request. */
export type Target = () => string
export const BASELINE: Target = () => '/baseline'

/** CPU time of a server process and of the PostgreSQL backends serving its database (its pool keeps them). */
function cpuMs (server: Server): { server: number, postgres: number } {
  return { server: processCpuMs(server.process.pid as number), postgres: postgresCpuMs(server.database) }
}

export interface Figures { rps: number, p50: number, p975: number, p99: number, mean: number, non2xx: number, errors: number, serverCpu: number, postgresCpu: number }

/** autocannon against the server for this long, BENCH_CONNECTIONS (20) at once; the baseline without a token. */
export async function load (server: Server, target: Target, seconds: number, token: string): Promise<Figures> {
  const before = cpuMs(server)
  const result = await autocannon({
    url: server.url,
    connections: CONNECTIONS,
    duration: seconds,
    headers: target === BASELINE ? {} : { auth: token },
    requests: [{ method: 'GET', setupRequest: (request) => ({ ...request, path: target() }) }]
  })
  const after = cpuMs(server)
  return {
    serverCpu: (after.server - before.server) / result.requests.total,
    postgresCpu: (after.postgres - before.postgres) / result.requests.total,
    rps: result.requests.average,
    p50: result.latency.p50,
    p975: result.latency.p97_5,
    p99: result.latency.p99,
    mean: result.latency.average,
    non2xx: result.non2xx,
    errors: result.errors
  }
}

/**
 * Puts a run's report into BENCHMARKS.md between `<!-- name:start` and
 * `<!-- name:end -->` (the report carries both markers), or appends it under
 * `heading` when the file has no such section yet.
 */
export function writeReport (name: string, heading: string, report: string): void {
  const target = new URL('../../BENCHMARKS.md', import.meta.url)
  const previous = existsSync(target) ? readFileSync(target, 'utf8') : '# Benchmarks\n'
  const section = new RegExp(`<!-- ${name}:start[\\s\\S]*?<!-- ${name}:end -->`)
  writeFileSync(target, section.test(previous) ? previous.replace(section, report) : `${previous.trimEnd()}\n\n## ${heading}\n\n${report}\n`)
}
