import pg from 'pg'
import type { FastifyBaseLogger } from 'fastify'

/** The channel and the lock of migration 006. */
export const CHANNEL = 'fastify_active_conversations'
export const LISTENING_LOCK = '7264387126'

/** One notification of migration 006: what a statement changed in one stream. */
export interface Change {
  s: string
  a?: string[]
  g?: string[]
  u?: boolean
  m?: boolean
  all?: boolean
}

export interface ListenerEvents {
  /** The listener holds the lock and listens: every view read from now on will be kept fresh. */
  onReady: () => void
  /** The connection is gone (once, until onReady again): changes may be missed meanwhile. */
  onDown: (error: Error) => void
  onChange: (change: Change) => void
}

export interface ChangeListener {
  /** Resolves once listening for the first time, or once the first attempt failed (it keeps trying). */
  started: Promise<void>
  readonly ready: boolean
  /** pg_notification_queue_usage() read on the listening connection; null while it is not listening or does not answer within a second. */
  queueUsage: () => Promise<number | null>
  close: () => Promise<void>
}

const CONNECT_TIMEOUT_MILLIS = 5000
/** How long a metrics collection waits for the notification queue's usage. */
const QUEUE_USAGE_WAIT_MILLIS = 1000
/** First and longest waits between attempts to connect again. */
const BACKOFF_MILLIS = { first: 100, max: 5000 }

/**
 * One connection outside the request pool, for as long as the gateway runs:
 * LISTEN, then the advisory lock that tells writers someone listens (migration
 * 006). Lost, it connects again with a doubling wait; each time it is back,
 * onReady tells the streams to read fresh views, since changes may have been
 * missed meanwhile.
 */
export function listenForChanges (config: pg.ClientConfig, log: FastifyBaseLogger, events: ListenerEvents): ChangeListener {
  let client: pg.Client | null = null
  let ready = false
  let closed = false
  let wait = BACKOFF_MILLIS.first
  let retry: NodeJS.Timeout | null = null
  let markStarted!: () => void
  const started = new Promise<void>((resolve) => { markStarted = resolve })

  function lost (connection: pg.Client, error: Error): void {
    if (client !== connection) return // already handled
    client = null
    connection.removeAllListeners('notification')
    connection.end().catch(() => {})
    const wasReady = ready
    ready = false
    if (wasReady) { // once when it goes, not at each failed attempt to come back
      log.warn({ err: error }, 'fastify-active-conversations: change listener lost its connection; reconnecting')
      events.onDown(error)
    }
    retry = setTimeout(connect, wait)
    wait = Math.min(wait * 2, BACKOFF_MILLIS.max)
  }

  function connect (): void {
    retry = null
    const connection = new pg.Client({
      ...config,
      keepAlive: true,
      connectionTimeoutMillis: config.connectionTimeoutMillis ?? CONNECT_TIMEOUT_MILLIS, // a silent server is tried again, not waited on forever
      application_name: 'fastify-active-conversations listener'
    })
    client = connection
    connection.on('error', (error) => { lost(connection, error) })
    connection.on('end', () => { lost(connection, new Error('connection ended')) })
    connection.on('notification', (message) => { // this connection listens on CHANNEL alone
      let change: Change
      try {
        change = JSON.parse(message.payload as string) as Change
      } catch {
        return // not ours: someone else's NOTIFY on the channel
      }
      if (typeof change?.s === 'string') events.onChange(change)
    })
    ;(async () => {
      await connection.connect()
      await connection.query(`LISTEN ${CHANNEL}`)
      // Waits for writers' transactions that found nobody listening: their changes are in what we read next.
      await connection.query('SELECT pg_advisory_lock_shared($1)', [LISTENING_LOCK])
    })().then(() => { // (closed meanwhile, the connection's end fails these queries instead)
      if (wait > BACKOFF_MILLIS.first) log.info('fastify-active-conversations: change listener connected again')
      wait = BACKOFF_MILLIS.first
      ready = true
      events.onReady()
      markStarted()
    }, (error: Error) => {
      lost(connection, error)
      markStarted()
    })
  }

  connect()
  return {
    started,
    get ready () { return ready },
    async queueUsage () {
      if (!ready || client === null) return null
      let timer: NodeJS.Timeout | undefined
      const late = new Promise<null>((resolve) => { timer = setTimeout(resolve, QUEUE_USAGE_WAIT_MILLIS, null) })
      const usage = client.query<{ usage: number }>('SELECT pg_notification_queue_usage() AS usage').then(({ rows }) => (rows[0] as { usage: number }).usage,
        /* c8 ignore next: the connection lost during the query; the listener reconnects */
        () => null)
      return await Promise.race([usage, late]).finally(() => { clearTimeout(timer) })
    },
    async close () {
      closed = true
      ready = false
      if (retry !== null) clearTimeout(retry)
      const connection = client
      client = null
      if (connection !== null) {
        connection.removeAllListeners('notification')
        await connection.end().catch(() => {})
      }
    }
  }
}
