import { Writable } from 'node:stream'

/** A logger stream that keeps the lines it is given, to read what was logged. */
export function logLines (): { stream: Writable, lines: string[] } {
  const lines: string[] = []
  return { lines, stream: new Writable({ write (chunk, _encoding, done) { lines.push(String(chunk)); done() } }) }
}
