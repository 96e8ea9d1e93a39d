import { callerKey, type Caller } from '../auth.js'
import { StreamsFullError, TooManyStreamsError } from '../errors.js'

// What bounds the live streams: how many are open, and until when.

/** Counts open streams, per caller and in all; taking one beyond a limit throws 429 or 503. */
export function streamCounter (maxStreams: number, maxPerCaller: number) {
  const byCaller = new Map<string, number>()
  let open = 0
  return {
    take (caller: Caller): () => void {
      const key = callerKey(caller)
      const mine = byCaller.get(key) ?? 0
      if (mine >= maxPerCaller) throw new TooManyStreamsError(String(maxPerCaller))
      if (open >= maxStreams) throw new StreamsFullError()
      byCaller.set(key, mine + 1)
      open++
      let released = false
      return () => {
        if (released) return
        released = true
        open--
        const left = (byCaller.get(key) as number) - 1
        if (left === 0) byCaller.delete(key)
        else byCaller.set(key, left)
      }
    }
  }
}

// setTimeout holds at most 2^31 - 1 ms (24.8 days): a later expiry waits in steps.
const MAX_TIMER_MILLIS = 2 ** 31 - 1

/** Calls onExpiry at `at` (ms since the epoch), never before this turn of the event loop ends; returns what cancels it. */
export function expireAt (at: number, onExpiry: () => void): () => void {
  let timer: NodeJS.Timeout
  const step = (): void => {
    const left = at - Date.now()
    if (left <= 0) onExpiry()
    else timer = setTimeout(step, Math.min(MAX_TIMER_MILLIS, left))
  }
  timer = setTimeout(step, 0)
  return () => { clearTimeout(timer) }
}
