import { spawn } from 'node:child_process'
import { chownSync, existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { currentAccount, freePort, osAccount, stopProcess } from '../scripts/embedded-postgres.js'

/*
 * A real PgBouncer (Debian's package) in front of a PostgreSQL, for the tests
 * and the bench: transaction pooling, as fleets run it, with the settings given.
 */

export const PGBOUNCER = '/usr/sbin/pgbouncer'

/** Why PgBouncer cannot be started here, or false. */
/* c8 ignore next 3: CI has it; elsewhere it may be missing */
export const pgbouncerMissing: string | false = existsSync(PGBOUNCER)
  ? false
  : `${PGBOUNCER} is missing: apt-get install pgbouncer to run the tests behind a pooler`

export interface PgBouncer {
  /** Its process id (the bench counts its CPU time). */
  pid: number
  /** The URL of a database through PgBouncer (same user and password as the server's URL). */
  url: (database: string) => string
  /** Stops PgBouncer and removes its directory. */
  stop: () => Promise<void>
}

/**
 * Starts PgBouncer on a free port of 127.0.0.1 in front of the server of
 * `serverUrl` (every database; the URL's user and password, and `users`, name
 * to password), in transaction mode unless `settings` say otherwise. It refuses to run as root: as root it
 * runs as the `postgres` OS user, as the embedded database does.
 */
export async function startPgBouncer (serverUrl: string, settings: Record<string, string | number> = {}, users: Record<string, string> = {}): Promise<PgBouncer> {
  const server = new URL(serverUrl)
  const user = decodeURIComponent(server.username)
  const password = decodeURIComponent(server.password)
  const port = await freePort()
  /* c8 ignore next: CI runs as root */
  const account = process.getuid?.() === 0 ? osAccount('postgres') : currentAccount()
  const directory = mkdtempSync(join(tmpdir(), 'fac-pgbouncer-'))
  chownSync(directory, account.uid, account.gid)
  const config = {
    listen_addr: '127.0.0.1',
    listen_port: port,
    unix_socket_dir: '',
    auth_type: 'plain',
    auth_file: join(directory, 'users.txt'),
    pool_mode: 'transaction',
    max_client_conn: 500,
    default_pool_size: 10,
    ...settings
  }
  const logins = { [user]: password, ...users }
  writeFileSync(join(directory, 'users.txt'), Object.entries(logins).map(([name, secret]) => `"${name}" "${secret}"\n`).join(''), { mode: 0o600 })
  chownSync(join(directory, 'users.txt'), account.uid, account.gid)
  writeFileSync(join(directory, 'pgbouncer.ini'), [
    '[databases]',
    `* = host=${server.hostname} port=${server.port}`,
    '[pgbouncer]',
    ...Object.entries(config).map(([name, value]) => `${name} = ${value}`)
  ].join('\n') + '\n')

  const child = spawn(PGBOUNCER, [join(directory, 'pgbouncer.ini')], { uid: account.uid, gid: account.gid, stdio: ['ignore', 'pipe', 'pipe'] })
  let output = ''
  try {
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => { reject(new Error(`PgBouncer did not start within 10 s: ${output}`)) }, 10_000)
      for (const stream of [child.stdout, child.stderr]) {
        stream?.on('data', (chunk) => {
          output += String(chunk)
          if (/process up/.test(output)) { clearTimeout(timer); resolve() }
        })
      }
      child.once('exit', (code) => { clearTimeout(timer); reject(new Error(`PgBouncer exited (${String(code)}): ${output.trim()}`)) })
    })
  } catch (error) {
    await stopProcess(child)
    rmSync(directory, { recursive: true, force: true })
    throw error
  }

  return {
    pid: child.pid as number,
    url: (database) => {
      const url = new URL(serverUrl)
      url.port = String(port)
      url.pathname = `/${database}`
      return url.toString()
    },
    stop: async () => {
      await stopProcess(child)
      rmSync(directory, { recursive: true, force: true })
    }
  }
}
