import type pg from 'pg'
import type { FastifyBaseLogger } from 'fastify'
import { CHANGE_COLUMNS, changesOf, PUBLICATION, type Change } from './changes.js'
import { openWalStream, replicationClient, SlotWaitError, type WalStream } from './wal.js'

/*
 * Where the live views learn what changed: the write-ahead log, decoded
 * (lib/live/wal.ts), on a temporary slot that exists only while this gateway
 * has streams open, plus `slotLingerMillis` so that screens reconnecting do
 * not create and drop slots in a loop. With no stream open it decodes nothing.
 *
 * While there is no slot (being created, lost and reconnecting, or logical
 * decoding not available here) the hub polls: every watched view is read
 * again every `live.pollMillis`. Once a slot is up the hub reads every view
 * once more: what was committed before the slot's consistent point is in
 * that read, what after it is decoded.
 */

export interface SourceEvents {
  /** Changes of a committed transaction. */
  onChanges: (changes: Change[]) => void
  /** A slot is up: read every view once more, and stop polling. */
  onStreaming: () => void
  /** No slot (lost, or none can be made): poll. */
  onPolling: () => void
}

export interface SourceSettings {
  /** The replication connection's settings (a role with REPLICATION, straight to the primary). */
  config: pg.ClientConfig
  slotLingerMillis: number
  slotWaitMillis: number
  pollMillis: number
  log: FastifyBaseLogger
  events: SourceEvents
}

export interface ChangeSource {
  /** Resolves once registration's check of logical decoding has answered (or failed to: it is tried again with the first stream). */
  checked: Promise<void>
  /** Whether any stream is open: a slot is made for the first, and dropped `slotLingerMillis` after the last. */
  watching: (active: boolean) => void
  /** Whether a slot is up and decoding. */
  readonly streaming: boolean
  /**
   * Resolves once a slot is up, or none can be made here, or after
   * `waitMillis`: a new stream's first view, read after it, is read after the
   * slot's consistent point (nothing it shows comes again as a change).
   */
  settled: (waitMillis: number) => Promise<void>
  /** WAL bytes written past what the slot decoded (0 without a slot). */
  backlogBytes: () => number
  close: () => Promise<void>
}

/** First and longest waits between attempts to make a slot again. */
const BACKOFF_MILLIS = { first: 100, max: 5000 }

export function createChangeSource ({ config, slotLingerMillis, slotWaitMillis, pollMillis, log, events }: SourceSettings): ChangeSource {
  let unavailable: string | null = null // why logical decoding cannot work here: then the hub polls for good
  let wanted = false
  let closed = false
  let stream: WalStream | null = null
  let opening = false
  let linger: NodeJS.Timeout | null = null
  let retry: NodeJS.Timeout | null = null
  let wait = BACKOFF_MILLIS.first
  let failing = false // an attempt failed since the last slot: told once, not at every attempt
  const waiters = new Set<() => void>()
  const wake = (): void => {
    for (const resolve of waiters) resolve()
    waiters.clear()
  }

  const giveUp = (reason: string): void => {
    if (unavailable !== null) return // (registration's check and a first stream's attempt may both find it)
    unavailable = reason
    wake()
    log.warn(`fastify-active-conversations: live views read every watched view every ${pollMillis} ms (live.pollMillis) instead of decoding changes: ${reason}`)
  }

  function open (): void {
    if (closed || !wanted || unavailable !== null || stream !== null || opening || retry !== null) return
    opening = true
    openWalStream(config, {
      publication: PUBLICATION,
      columns: CHANGE_COLUMNS,
      slotWaitMillis,
      onCommit: (commit) => { events.onChanges(changesOf(commit)) },
      onLost: (error) => {
        stream = null
        events.onPolling()
        log.warn({ err: error }, 'fastify-active-conversations: the replication connection was lost; polling until a new slot is up')
        failing = true
        again()
      }
    }).then((opened) => {
      opening = false
      /* c8 ignore next: the gateway closed, or its last stream's linger ended, while the slot was being made (a race) */
      if (closed || !wanted) { void opened.close(); return }
      stream = opened
      wait = BACKOFF_MILLIS.first
      if (failing) log.info('fastify-active-conversations: decoding changes again')
      failing = false
      events.onStreaming()
      wake()
    }, (error: Error) => {
      opening = false
      const reason = whyNoDecoding(error)
      if (reason !== null) { giveUp(reason); return }
      if (!failing) {
        log.warn({ err: error }, error instanceof SlotWaitError
          ? 'fastify-active-conversations: a long transaction holds up the replication slot; polling meanwhile'
          : 'fastify-active-conversations: no replication slot yet; polling meanwhile')
      }
      failing = true
      again()
    })
  }

  function again (): void {
    if (closed || !wanted) return
    retry = setTimeout(() => { retry = null; open() }, wait)
    wait = Math.min(wait * 2, BACKOFF_MILLIS.max)
  }

  function drop (): void {
    linger = null
    if (retry !== null) clearTimeout(retry)
    retry = null
    const current = stream
    stream = null
    void current?.close()
  }

  const checked = checkLogicalDecoding(config).then(({ unavailable, caution }) => {
    if (unavailable !== null) giveUp(unavailable)
    else if (caution !== null) log.warn(`fastify-active-conversations: ${caution}`)
  }, () => {})

  return {
    checked,
    watching (active) {
      wanted = active
      if (active) {
        if (linger !== null) clearTimeout(linger)
        linger = null
        open()
      } else if (linger === null) {
        linger = setTimeout(drop, slotLingerMillis)
      }
    },
    get streaming () { return stream !== null },
    async settled (waitMillis) {
      if (stream !== null || unavailable !== null || closed) return
      let timer: NodeJS.Timeout | undefined
      await new Promise<void>((resolve) => {
        waiters.add(resolve)
        timer = setTimeout(() => { waiters.delete(resolve); resolve() }, waitMillis)
      })
      clearTimeout(timer)
    },
    backlogBytes: () => stream?.backlogBytes() ?? 0,
    async close () {
      closed = true
      wake()
      if (linger !== null) clearTimeout(linger)
      if (retry !== null) clearTimeout(retry)
      const current = stream
      stream = null
      await current?.close()
    }
  }
}

/** What registration's check found: why decoding cannot work here (null: it can), and a setting that works against it. */
export interface DecodingCheck { unavailable: string | null, caution: string | null }

/**
 * Why logical decoding cannot work through these settings, and what to
 * change (unavailable: null when it can, or the check could not tell: the
 * server is down). On a replication session: it proves the role may
 * replicate, pg_hba lets it, and the address is PostgreSQL itself, not a
 * pooler.
 */
export async function checkLogicalDecoding (config: pg.ClientConfig): Promise<DecodingCheck> {
  const client = replicationClient(config, 'check')
  client.on('error', () => {})
  let settings: { walLevel: string, standby: boolean, version: number, published: boolean, synchronousStandbys: string }
  try {
    await client.connect()
    const { rows } = await client.query<typeof settings>(
      `SELECT current_setting('wal_level') AS "walLevel", pg_is_in_recovery() AS standby,
              current_setting('server_version_num')::int AS version,
              EXISTS (SELECT FROM pg_publication WHERE pubname = '${PUBLICATION}') AS published,
              current_setting('synchronous_standby_names') AS "synchronousStandbys"`)
    settings = rows[0] as typeof settings
  } catch (error) {
    await client.end().catch(() => {})
    const reason = whyNoDecoding(error as Error)
    if (reason === null) throw error
    return { unavailable: reason, caution: null }
  }
  await client.end()
  const { walLevel, standby, version, published, synchronousStandbys } = settings
  const unavailable = (reason: string): DecodingCheck => ({ unavailable: reason, caution: null })
  if (walLevel !== 'logical') return unavailable(`wal_level is ${walLevel}: set wal_level = logical and restart PostgreSQL (README, "Where changes come from")`)
  /* c8 ignore next: no PostgreSQL before 16 on these machines (the embedded one is 18, Debian's 15 has no standby here) */
  if (standby && version < 160000) return unavailable('live.connectionString reaches a standby of PostgreSQL before 16, which cannot decode: point it at the primary')
  if (!published) return unavailable(`the publication ${PUBLICATION} is missing: run the migrations (npm run migrate)`)
  return { unavailable: null, caution: wildcardStandbys(synchronousStandbys) }
}

/**
 * `*` in synchronous_standby_names matches every walsender, a gateway's too:
 * PostgreSQL may pick the gateway as the synchronous standby, and commits
 * then wait for its reply, sent once a second (lib/live/wal.ts).
 */
export function wildcardStandbys (names: string): string | null {
  if (!/(^|[\s,("])\*($|[\s,)"])/.test(names)) return null // * alone or quoted, as a list's entry
  return `synchronous_standby_names is '${names}': its * matches this gateway's replication connection, which PostgreSQL may pick as the synchronous standby, and commits would wait up to a second for it: name the standbys instead (README, "Where changes come from")`
}

/** A failure that trying again will not mend, said with its fix; null for one that may pass (the server down, a slot's wait). */
function whyNoDecoding (error: Error): string | null {
  const code = (error as { code?: string }).code
  // Not a server's SQLSTATE (ECONNREFUSED, a timeout), a connection failure, resources, a restart: try again.
  if (code === undefined || code.length !== 5 || (/^(08|53|57)/.test(code) && code !== '08P01')) return null
  if (code === '42501') return `the role may not replicate (${error.message}): give live.connectionString a role with REPLICATION (SECURITY.md)`
  /* c8 ignore next: initdb's pg_hba.conf admits replication from 127.0.0.1, so no test server refuses it this way */
  if (code === '28000') return `PostgreSQL refuses the replication connection (${error.message}): add a \`host replication\` line for this role to pg_hba.conf`
  return `the replication connection failed (${error.message}): point live.connectionString straight at PostgreSQL's primary, with a role with REPLICATION`
}
