// What bounds the live streams, alone: the stream counter and the expiry timer.
import t from 'tap'
import { expireAt, streamCounter } from '../lib/live/limits.js'
import type { Caller } from '../lib/auth.js'

const caller = (subject: string): Caller => ({ subject, role: 'manager', streamIds: ['st'], agentGroupIds: null, expiresAt: 0 })

t.test('the counter: per caller (429), in all (503), and a stream released twice is counted once', async (t) => {
  const counter = streamCounter(3, 2)
  const first = counter.take(caller('a'))
  counter.take(caller('a'))
  t.throws(() => counter.take(caller('a')), { code: 'FAC_ERR_TOO_MANY_STREAMS', statusCode: 429 })
  counter.take(caller('b'))
  t.throws(() => counter.take(caller('c')), { code: 'FAC_ERR_STREAMS_FULL', statusCode: 503 })
  first()
  first() // a stream's failure and its end both release it
  counter.take(caller('c'))
  t.throws(() => counter.take(caller('d')), { code: 'FAC_ERR_STREAMS_FULL' }, 'the second release freed nothing more')
})

t.test('the expiry: at once for a time past, later for one to come, never once cancelled', async (t) => {
  const fired: string[] = []
  expireAt(Date.now() - 1000, () => { fired.push('past') })
  expireAt(Date.now() + 50, () => { fired.push('soon') })
  const cancel = expireAt(Date.now() + 50, () => { fired.push('cancelled') })
  cancel()
  await new Promise((resolve) => setTimeout(resolve, 20))
  t.same(fired, ['past'])
  await new Promise((resolve) => setTimeout(resolve, 80))
  t.same(fired, ['past', 'soon'])
})
