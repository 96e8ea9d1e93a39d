// Huge pages for the bench's embedded PostgreSQL, as a production server with
// gigabytes of shared buffers usually has them (Amazon RDS, for one, turns them
// on by default), so the bench runs the database as it would be run. For this
// endpoint they made no measurable difference in four runs in turn with and
// without (BENCHMARKS.md, step 13); BENCH_HUGE_PAGES=off leaves them out.
import { readFileSync, writeFileSync } from 'node:fs'

export interface HugePages {
  /** PostgreSQL's `huge_pages` setting to start with ('try': it reports what it got in huge_pages_status). */
  setting: 'try' | 'off'
  /** What was done, for the report. */
  note: string
  /** Gives back what was reserved for the run (idempotent). */
  release: () => void
}

const NR_HUGEPAGES = '/proc/sys/vm/nr_hugepages'

/**
 * Makes `bytes` of huge pages available: they may be free already; else, as
 * root, vm.nr_hugepages is raised for the run and set back by release() (also
 * at exit). When neither works the bench runs on 4 kB pages and says so.
 * BENCH_HUGE_PAGES=off measures without them.
 */
export function reserveHugePages (bytes: number): HugePages {
  const none = (note: string): HugePages => ({ setting: 'off', note, release: () => {} })
  if (process.env.BENCH_HUGE_PAGES === 'off') return none('BENCH_HUGE_PAGES=off')
  if (process.platform !== 'linux' || meminfo('Hugepagesize') === 0) return none('none in this kernel')
  const pageBytes = meminfo('Hugepagesize') * 1024
  const needed = Math.ceil(bytes / pageBytes)
  const missing = needed - (meminfo('HugePages_Free') - meminfo('HugePages_Rsvd'))
  const pageMb = pageBytes / 2 ** 20
  if (missing <= 0) return { setting: 'try', note: `${needed} pages of ${pageMb} MB were free`, release: () => {} }

  const previous = Number(readFileSync(NR_HUGEPAGES, 'utf8'))
  try {
    writeFileSync(NR_HUGEPAGES, String(previous + missing))
  } catch {
    return none(`${needed} free pages of ${pageMb} MB needed; vm.nr_hugepages can only be raised by root`)
  }
  let released = false
  const release = () => {
    if (released) return
    released = true
    // Pages still mapped become surplus and return to the system when unmapped.
    writeFileSync(NR_HUGEPAGES, String(previous))
  }
  process.once('exit', release)
  if (meminfo('HugePages_Free') - meminfo('HugePages_Rsvd') < needed) {
    release() // memory too fragmented for the kernel to find them
    return none(`the kernel could not reserve ${needed} pages of ${pageMb} MB`)
  }
  return { setting: 'try', note: `vm.nr_hugepages raised from ${previous} to ${previous + missing} for the run`, release }
}

/** A figure of /proc/meminfo (kB or pages); 0 when absent. */
function meminfo (field: string): number {
  return Number(new RegExp(`^${field}:\\s+(\\d+)`, 'm').exec(readFileSync('/proc/meminfo', 'utf8'))?.[1] ?? 0)
}
