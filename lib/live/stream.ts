import type { FastifyReply } from 'fastify'
import type { ErrorResponse } from '../../schemas/error.js'
import type { LiveEventName } from '../telemetry/index.js'

/** One event of a live stream: `data` is JSON text, `readAt` when the data was read (ms since the epoch). */
export interface LiveEvent {
  event: LiveEventName
  data: string
  readAt: number
}

export interface StreamSettings {
  /** `retry:`, told to the client first: how long an EventSource waits before it connects again. */
  retryMillis: number
  /** A client whose unsent bytes pass this is dropped. */
  maxUnsentBytes: number
}

/** What a stream reports (lib/telemetry): the events it wrote, and its client dropped for not reading. */
export interface StreamReport {
  sent: (events: LiveEvent[]) => void
  slowClient: () => void
}

/**
 * One client's `text/event-stream`, opened by @fastify/sse (headers, heartbeat
 * comments, the close of the connection). Each event's id is
 * `<readAt>-<n>`: the instant its durations were right at, and its number on
 * this stream. A refresh's events leave in one write (reply.sse.send writes,
 * and waits for 'drain', one message at a time); a client that does not read
 * is dropped once what it has not taken passes maxUnsentBytes, so a stalled
 * screen never holds more than that in memory.
 */
export class LiveStream {
  #reply: FastifyReply
  #settings: StreamSettings
  #sent = 0
  #ended = false
  #onEnd: () => void
  #report: StreamReport

  /** onEnd: what to do once, when the stream ends for any reason. */
  constructor (reply: FastifyReply, settings: StreamSettings, report: StreamReport, onEnd: () => void) {
    this.#reply = reply
    this.#settings = settings
    this.#report = report
    this.#onEnd = onEnd
    reply.sse.keepAlive()
    reply.sse.onClose(() => { this.#finish() })
    reply.sse.sendHeaders()
    reply.raw.write(`retry: ${settings.retryMillis}\n\n`) // a block without data: no event, only the retry
  }

  /** Writes events, unless the stream has ended; drops a client that does not read. */
  send (events: LiveEvent[]): void {
    if (this.#ended || events.length === 0) return
    const raw = this.#reply.raw
    if (raw.writableLength > this.#settings.maxUnsentBytes) {
      this.#reply.log.info({ unsentBytes: raw.writableLength }, 'live stream dropped: the client does not read')
      raw.destroy()
      this.#report.slowClient()
      this.#finish()
      return
    }
    let text = ''
    for (const { event, data, readAt } of events) {
      text += `id: ${readAt}-${++this.#sent}\nevent: ${event}\ndata: ${data}\n\n`
    }
    raw.write(text)
    this.#report.sent(events)
  }

  /** Ends the stream, after a last `event: error` when given. */
  end (error?: ErrorResponse): void {
    if (error !== undefined) this.send([{ event: 'error', data: JSON.stringify(error), readAt: Date.now() }])
    this.#reply.sse.close()
    this.#finish()
  }

  #finish (): void {
    if (this.#ended) return
    this.#ended = true
    this.#onEnd()
  }
}
