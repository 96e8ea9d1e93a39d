import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process'
import { PROJECT_ROOT } from './root.js'

export interface DemoProcess {
  child: ChildProcessWithoutNullStreams
  /** The demo token and URL, read from the curl line it prints. */
  token: string
  url: string
  /** Everything it printed so far. */
  output: () => string
  /** Its exit code, once it exits. */
  exited: Promise<number | null>
}

/**
 * Runs `npm start` (the built dist/examples/start.js) as a process of its own
 * with this environment, and waits for the curl line it prints when ready.
 * Rejects with its output when it exits or stays silent for 30 s first.
 */
export async function spawnDemo (env: NodeJS.ProcessEnv): Promise<DemoProcess> {
  const child = spawn(process.execPath, [startScript()], { env, stdio: 'pipe' })
  let output = ''
  child.stdout.on('data', (chunk) => { output += String(chunk) })
  child.stderr.on('data', (chunk) => { output += String(chunk) })
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)))
  const CURL = /^curl -s -H 'auth: ([^']+)' '([^']+)'$/m
  for (let i = 0; i < 300 && !CURL.test(output) && child.exitCode === null; i++) await new Promise((resolve) => setTimeout(resolve, 100))
  const [, token, url] = CURL.exec(output) ?? []
  if (token === undefined || url === undefined) {
    child.kill('SIGKILL')
    throw new Error(`the demo did not start:\n${output}`)
  }
  return { child, token, url, output: () => output, exited }
}

/** dist/examples/start.js, whether this file runs from examples/ (tests) or dist/examples/ (bench). */
function startScript (): string {
  return `${PROJECT_ROOT}dist/examples/start.js`
}
