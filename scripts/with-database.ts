// Runs a command (the test runner) with DATABASE_URL set: the given one, or a
// throw-away embedded PostgreSQL started for this run and stopped after it.
//   node dist/scripts/with-database.js tap [args…]
import { spawn } from 'node:child_process'
import { startEmbeddedPostgres } from './embedded-postgres.js'

const [command, ...args] = process.argv.slice(2)
if (command === undefined) {
  console.error('usage: with-database <command> [args…]')
  process.exit(2)
}

// As an ordinary user the tests that need root (creating OS users, mounting, the postgres
// user's view of a clone only root may enter) are skipped, each saying so, and the launcher's
// root-only lines cannot run: tap reports coverage then but does not fail on it. CI runs as
// root, where full coverage is enforced.
if (command === 'tap' && process.getuid?.() !== 0) args.push('--allow-incomplete-coverage')

let embedded
try {
  embedded = process.env.DATABASE_URL ? undefined : await startEmbeddedPostgres()
} catch (error) {
  console.error(`npm test: ${(error as Error).message}`)
  process.exit(1)
}
const env = { ...process.env, DATABASE_URL: process.env.DATABASE_URL ?? embedded?.connectionString }

const child = spawn(command, args, { stdio: 'inherit', env, shell: process.platform === 'win32' })
for (const signal of ['SIGINT', 'SIGTERM'] as const) process.on(signal, () => child.kill(signal))
const code = await new Promise<number>((resolve) => {
  child.once('exit', (status, signal) => { resolve(status ?? (signal ? 1 : 0)) })
  child.once('error', (error) => { console.error(error.message); resolve(127) })
})
await embedded?.stop()
process.exit(code)
