import { readdirSync, readFileSync } from 'node:fs'

// CPU time (user + system, ms) from /proc, at Linux's 100 ticks a second: where the time goes.

/** A process's CPU time so far; 0 once it has ended. */
export function processCpuMs (pid: number | string): number {
  try {
    const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.split(' ') ?? []
    return (Number(fields[11]) + Number(fields[12])) * 10
  } catch {
    return 0 // the process ended meanwhile
  }
}

/**
 * The CPU time so far of the PostgreSQL backends connected to this database
 * (their command line names it). Keep the connections open between two
 * readings: a backend that ends takes its time with it.
 */
export function postgresCpuMs (database: string): number {
  let total = 0
  for (const pid of readdirSync('/proc').filter((name) => /^\d+$/.test(name))) {
    try {
      if (readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes(` ${database} `)) total += processCpuMs(pid)
    } catch {}
  }
  return total
}
