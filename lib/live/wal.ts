import pg from 'pg'

/*
 * A logical replication client for pgoutput, on pg's own connection.
 *
 * Why not pg-logical-replication: its subscribe() opens a connection of its
 * own and sends only START_REPLICATION, while a TEMPORARY slot (the one kind
 * a killed gateway cannot leave behind) exists only on the session that
 * created it, so START_REPLICATION must run on that same session. pg has no
 * public API for the copy-both mode this needs: it emits `copyData` on
 * `client.connection`, and `sendCopyFromChunk` sends CopyData. Both have been
 * in pg since 7.x and are what pg-logical-replication itself uses.
 */

/** A decoded row: column name to its text value (null for NULL; undefined for an unchanged TOAST value). */
export type Row = Record<string, string | null | undefined>

export type WalChange =
  | { kind: 'insert', table: string, row: Row }
  | { kind: 'update', table: string, row: Row, old: Row | null }
  | { kind: 'delete', table: string, old: Row }
  | { kind: 'truncate', tables: string[] }

/** One committed transaction's changes, in order: its xid, commit time (ms since the epoch) and commit LSN. */
export interface WalCommit { xid: number, commitTime: number, lsn: bigint, changes: WalChange[] }

export interface WalStream {
  /** The slot's consistent point: every transaction committed after it is delivered, and every one before is visible to a new snapshot. */
  consistentPoint: string
  slotName: string
  /** WAL bytes the server has written past what this stream has decoded, as of its last keepalive. */
  backlogBytes: () => number
  /** Ends the session, and with it the temporary slot. */
  close: () => Promise<void>
}

export interface WalStreamSettings {
  publication: string
  /** The columns decoded (the others are skipped); all when unset. */
  columns?: ReadonlySet<string>
  /** How long creating the slot may wait for the transactions running when it began; then the attempt fails (SlotWaitError). */
  slotWaitMillis: number
  onCommit: (commit: WalCommit) => void
  /** The session ended by itself (not by close): once. */
  onLost: (error: Error) => void
}

/** Creating the slot waited longer than `slotWaitMillis` for transactions already running. */
export class SlotWaitError extends Error {
  constructor (millis: number) {
    super(`creating the replication slot waited ${millis} ms for the transactions already running`)
    this.name = 'SlotWaitError'
  }
}

/**
 * How often the slot is told how far this client has decoded (or sooner when
 * the server asks). Each such reply that moves the slot has the walsender
 * recompute the slots' xmin under ProcArrayLock held exclusively, which every
 * writer's commit takes too (with binary columns and five decoded columns,
 * this took bench:live's `writes` from 0.72 to 0.85: BENCHMARKS.md). The slot
 * holds at most this much more WAL.
 */
const ACKNOWLEDGE_MILLIS = 1000

/**
 * How often the replication socket is read. The walsender sends each message
 * as it decodes it (begin, each row, commit: a few a transaction), and a
 * socket read as data arrives wakes this process for each: under a writers'
 * mix, thousands of wake-ups a second. Read every 20 ms, the kernel holds what
 * arrives meanwhile (flow control paces the walsender, never a writer): the
 * gateway's CPU a conversation's life fell from 0.248 to 0.141 ms and the
 * walsender's from 0.296 to 0.225 (`npm run bench:decoding`); every 50 ms, to
 * about 0.08 and 0.19; 100 ms (one run, edited locally) saved no more. The hub counts its
 * coalescing window from the commit, up to this long before the change was
 * read (lib/live/hub.ts), so this wait adds nothing to the lag.
 */
export const READ_EVERY_MILLIS = 50

/** Microseconds between the Unix epoch and PostgreSQL's (2000-01-01). */
const PG_EPOCH_MICROS = 946_684_800_000_000n

/** A client of the replication protocol: `replication: 'database'` lets it run both replication commands and SQL. */
export function replicationClient (config: pg.ClientConfig, purpose: string): pg.Client {
  return new pg.Client({
    ...config,
    replication: 'database',
    keepAlive: true,
    connectionTimeoutMillis: config.connectionTimeoutMillis ?? 5000,
    application_name: `fastify-active-conversations ${purpose}`
  } as pg.ClientConfig)
}

/**
 * Opens a replication session, creates a temporary pgoutput slot on it (its
 * name carries the process id, for a DBA reading pg_replication_slots), and
 * streams the publication's committed transactions to `onCommit`.
 */
export async function openWalStream (config: pg.ClientConfig, { publication, columns, slotWaitMillis, onCommit, onLost }: WalStreamSettings): Promise<WalStream> {
  const client = replicationClient(config, 'changes')
  let closing = false
  let lost = false
  const lose = (error: Error): void => {
    if (closing || lost) return
    lost = true
    client.end().catch(() => {})
    onLost(error)
  }
  client.on('error', lose)
  client.on('end', () => { lose(new Error('replication connection ended')) })
  await client.connect()

  const slotName = `fastify_active_conversations_${process.pid}_${Math.random().toString(36).slice(2, 8)}`
  let waited = false
  // A walsender waiting for transactions reads no message from its client, so ending the session from here
  // would leave it (and its half-made slot) waiting: it is terminated from a session of the same role instead.
  const timer = setTimeout(() => { waited = true; void terminate(config, (client as unknown as { processID: number }).processID) }, slotWaitMillis)
  let consistentPoint: string
  try {
    closing = true // an end during the wait is this function's to report, not onLost's
    const { rows: [slot] } = await client.query<{ consistent_point: string }>(`CREATE_REPLICATION_SLOT ${slotName} TEMPORARY LOGICAL pgoutput NOEXPORT_SNAPSHOT`)
    consistentPoint = (slot as { consistent_point: string }).consistent_point
  } catch (error) {
    await client.end().catch(() => {})
    throw waited ? new SlotWaitError(slotWaitMillis) : error
  } finally {
    clearTimeout(timer)
    closing = false
  }

  const decoder = new PgOutputDecoder(onCommit, columns)
  let received = 0n // the end of the last commit decoded (or of the WAL, between transactions)
  let serverEnd = 0n
  const connection = (client as unknown as { connection: CopyBothConnection }).connection
  let acknowledged = 0 // when the last reply was sent (ms since the epoch)
  const acknowledge = (now: boolean): void => {
    if (!now && Date.now() - acknowledged < ACKNOWLEDGE_MILLIS) return
    acknowledged = Date.now()
    const message = Buffer.alloc(34)
    message.write('r', 0)
    message.writeBigUInt64BE(received, 1) // written
    message.writeBigUInt64BE(received, 9) // flushed: the slot may let go of the WAL before it
    message.writeBigUInt64BE(received, 17) // applied
    message.writeBigInt64BE(BigInt(Date.now()) * 1000n - PG_EPOCH_MICROS, 25)
    message.writeUInt8(0, 33)
    connection.sendCopyFromChunk(message)
  }
  connection.on('copyData', ({ chunk }) => {
    try {
      if (chunk[0] === 0x6b) { // 'k': primary keepalive: WAL end, server time, reply requested
        serverEnd = chunk.readBigUInt64BE(1)
        if (!decoder.inTransaction && serverEnd > received) received = serverEnd // nothing of ours before it
        acknowledge(chunk[17] === 1)
        return
      }
      // Else 'w', XLogData (start, end, time: 25 bytes), then a pgoutput message: the server sends no other.
      const end = decoder.message(chunk.subarray(25))
      if (end !== null) {
        received = end
        acknowledge(false)
      }
    /* c8 ignore start: a message this decoder does not understand (a server speaking a newer protocol): start again from a fresh slot */
    } catch (error) {
      lose(error as Error)
    }
    /* c8 ignore stop */
  })
  const socket = (connection as unknown as { stream: import('node:net').Socket }).stream
  const reader = setInterval(() => {
    socket.resume()
    setImmediate(() => { if (!closing && !lost) socket.pause() }) // after this turn's reads
  }, READ_EVERY_MILLIS)
  client.once('end', () => { clearInterval(reader) })
  // Runs until the session ends: the server answers with CopyBoth and streams. Binary: the walsender sends each
  // column's binary form, not its text (a timestamp's text output costs it far more); a text column's binary
  // form is its UTF-8 bytes, which is all that is read here.
  client.query(`START_REPLICATION SLOT ${slotName} LOGICAL 0/0 (proto_version '1', publication_names '${publication}', binary 'true')`)
    .catch((error: Error) => { lose(error) })
  return {
    consistentPoint,
    slotName,
    backlogBytes: () => Math.max(0, Number(serverEnd - received)),
    close: async () => {
      closing = true
      clearInterval(reader)
      socket.resume() // (the end's own reads)
      await client.end().catch(() => {})
    }
  }
}

/**
 * Ends this gateway's waiting walsender (a role may end its own sessions)
 * from an ordinary session: only while that process id is still a walsender,
 * so that a session which took the id meanwhile is never ended.
 */
async function terminate (config: pg.ClientConfig, pid: number): Promise<void> {
  const client = new pg.Client({ ...config, application_name: 'fastify-active-conversations slot wait' })
  client.on('error', () => {})
  try {
    await client.connect()
    await client.query("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE pid = $1 AND backend_type = 'walsender'", [pid])
  /* c8 ignore start: the server went away meanwhile; the slot went with it */
  } catch {}
  /* c8 ignore stop */
  await client.end().catch(() => {})
}

interface CopyBothConnection {
  on: (event: 'copyData', listener: (message: { chunk: Buffer }) => void) => void
  sendCopyFromChunk: (chunk: Buffer) => void
}

interface Relation { name: string, columns: Array<string | null> }

/** pgoutput's messages (protocol version 1) into committed transactions. */
class PgOutputDecoder {
  #relations = new Map<number, Relation>()
  #transaction: WalCommit | null = null
  #onCommit: (commit: WalCommit) => void
  #columns: ReadonlySet<string> | undefined

  constructor (onCommit: (commit: WalCommit) => void, columns?: ReadonlySet<string>) {
    this.#onCommit = onCommit
    this.#columns = columns
  }

  get inTransaction (): boolean { return this.#transaction !== null }

  /** Decodes one message; a commit's end LSN once a transaction is complete, else null. */
  message (message: Buffer): bigint | null {
    const reader = new Reader(message)
    const changes = this.#transaction?.changes
    switch (String.fromCharCode(reader.byte())) {
      case 'R': { // relation: sent before a table's first change in a session, and after it is altered
        const id = reader.int32()
        reader.cstring() // namespace
        const name = reader.cstring()
        reader.byte() // replica identity setting
        const columns: Array<string | null> = [] // null: a column not decoded
        for (let count = reader.int16(), i = 0; i < count; i++) {
          reader.byte() // flags
          const column = reader.cstring()
          columns.push(this.#columns === undefined || this.#columns.has(column) ? column : null)
          reader.int32() // type
          reader.int32() // type modifier
        }
        this.#relations.set(id, { name, columns })
        return null
      }
      case 'B': {
        reader.int64() // the commit's LSN (again in 'C')
        const commitTime = Number((reader.int64() + PG_EPOCH_MICROS) / 1000n)
        this.#transaction = { xid: reader.int32() >>> 0, commitTime, lsn: 0n, changes: [] }
        return null
      }
      case 'C': {
        reader.byte() // flags
        const commit = this.#transaction as WalCommit
        commit.lsn = reader.int64()
        const end = reader.int64()
        this.#transaction = null
        this.#onCommit(commit)
        return end
      }
      case 'I': {
        const relation = this.#relation(reader.int32())
        reader.byte() // 'N'
        changes?.push({ kind: 'insert', table: relation.name, row: reader.tuple(relation.columns) })
        return null
      }
      case 'U': {
        const relation = this.#relation(reader.int32())
        let old: Row | null = null
        let tag = String.fromCharCode(reader.byte())
        if (tag === 'K' || tag === 'O') { // the old key or the old row (REPLICA IDENTITY FULL); neither when the key did not change
          old = reader.tuple(relation.columns)
          tag = String.fromCharCode(reader.byte())
        }
        changes?.push({ kind: 'update', table: relation.name, row: reader.tuple(relation.columns), old })
        return null
      }
      case 'D': {
        const relation = this.#relation(reader.int32())
        reader.byte() // 'K' or 'O'
        changes?.push({ kind: 'delete', table: relation.name, old: reader.tuple(relation.columns) })
        return null
      }
      case 'T': {
        const count = reader.int32()
        reader.byte() // options (CASCADE, RESTART IDENTITY)
        const tables: string[] = []
        for (let i = 0; i < count; i++) tables.push(this.#relation(reader.int32()).name)
        changes?.push({ kind: 'truncate', tables })
        return null
      }
      /* c8 ignore next 2: origin ('O') and type ('Y') messages, which this publication's tables do not cause */
      default:
        return null
    }
  }

  #relation (id: number): Relation {
    const relation = this.#relations.get(id)
    /* c8 ignore next: the server always sends a relation before its first change */
    if (relation === undefined) throw new Error(`pgoutput: a change of relation ${id} before its description`)
    return relation
  }
}

/** Reads the pgoutput message format: big-endian integers, NUL-terminated strings, tuple data. */
class Reader {
  #buffer: Buffer
  #offset = 0
  constructor (buffer: Buffer) { this.#buffer = buffer }
  byte (): number { return this.#buffer.readUInt8(this.#offset++) }
  int16 (): number { const value = this.#buffer.readInt16BE(this.#offset); this.#offset += 2; return value }
  int32 (): number { const value = this.#buffer.readInt32BE(this.#offset); this.#offset += 4; return value }
  int64 (): bigint { const value = this.#buffer.readBigInt64BE(this.#offset); this.#offset += 8; return value }
  cstring (): string {
    const end = this.#buffer.indexOf(0, this.#offset)
    const text = this.#buffer.toString('utf8', this.#offset, end)
    this.#offset = end + 1
    return text
  }

  /** A tuple's columns by name; the columns named null are skipped. */
  tuple (columns: Array<string | null>): Row {
    const row: Row = {}
    for (let count = this.int16(), i = 0; i < count; i++) {
      const kind = this.byte()
      const name = columns[i] as string | null
      if (kind === 0x6e) { if (name !== null) row[name] = null } // 'n'
      else if (kind === 0x75) { if (name !== null) row[name] = undefined } // 'u': an unchanged TOAST value
      else { // 't' (text) or 'b' (binary): a length, then the bytes
        const length = this.int32()
        if (name !== null) row[name] = this.#buffer.toString('utf8', this.#offset, this.#offset + length)
        this.#offset += length
      }
    }
    return row
  }
}
