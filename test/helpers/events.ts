import { EventSource } from 'eventsource'

/** One event as a client receives it. */
export interface ReceivedEvent { type: string, id: string, data: string }

export interface EventClient {
  events: ReceivedEvent[]
  /** Resolves with the first event (from `from` on) that matches, or rejects after `timeoutMillis`. */
  next: (match: (event: ReceivedEvent) => boolean, timeoutMillis?: number, from?: number) => Promise<ReceivedEvent>
  /** Resolves once the stream has answered (opened, or failed). */
  opened: Promise<void>
  /** The connection's state: 0 connecting, 1 open, 2 closed. */
  readonly readyState: number
  close: () => void
}

/**
 * A real EventSource (the `eventsource` package) that sends the token in the
 * `auth` header, as a browser's fetch-based reader does; it connects again
 * after `retry:` when the stream ends, as browsers do.
 */
export function listen (url: string, token: string, headerName = 'auth'): EventClient {
  const events: ReceivedEvent[] = []
  const waiters = new Set<() => void>()
  const source = new EventSource(url, {
    fetch: async (input, init) => await fetch(input, { ...init, headers: { ...init?.headers, [headerName]: headerName === 'authorization' ? `Bearer ${token}` : token } })
  })
  const record = (type: string) => (message: MessageEvent<string>) => {
    if (typeof message.data !== 'string') return // a connection's failure, not an `event: error`
    events.push({ type, id: message.lastEventId, data: message.data })
    for (const wake of waiters) wake()
  }
  for (const type of ['view', 'remove', 'metrics', 'error']) source.addEventListener(type, record(type) as EventListener)
  const opened = new Promise<void>((resolve) => {
    source.addEventListener('open', () => { resolve() })
    source.addEventListener('error', () => { resolve() })
  })
  return {
    events,
    opened,
    get readyState () { return source.readyState },
    close: () => { source.close() },
    next: async (match, timeoutMillis = 5000, from = 0) => await new Promise<ReceivedEvent>((resolve, reject) => {
      const check = (): boolean => {
        const found = events.slice(from).find(match)
        if (found === undefined) return false
        waiters.delete(check)
        clearTimeout(timer)
        resolve(found)
        return true
      }
      const timer = setTimeout(() => {
        waiters.delete(check)
        reject(new Error(`no matching event within ${timeoutMillis} ms; received: ${events.map((event) => event.type).join(', ')}`))
      }, timeoutMillis)
      if (!check()) waiters.add(check)
    })
  }
}
