// createBatcher: calls go out at once while a slot is free, wait while all are
// busy, then leave together; answers come back to their own callers.
import t from 'tap'
import { createBatcher } from '../lib/batch.js'

/** A run that records its batches and finishes when the test says so. */
function controlledRun () {
  const batches: number[][] = []
  const pending: Array<{ inputs: number[], finish: (error?: Error) => void }> = []
  const run = async (inputs: number[]) => {
    batches.push(inputs)
    return await new Promise<string[]>((resolve, reject) => {
      pending.push({ inputs, finish: (error) => { error ? reject(error) : resolve(inputs.map((n) => `answer ${n}`)) } })
    })
  }
  const finishNext = async (error?: Error) => {
    pending.shift()?.finish(error)
    await new Promise((resolve) => setImmediate(resolve))
  }
  return { batches, pending, run, finishNext }
}

t.test('an idle batcher sends a call at once; calls arriving while all slots are busy go together', async (t) => {
  const { batches, run, finishNext } = controlledRun()
  const call = createBatcher(run, { concurrency: 2, maxSize: 3 })
  const answers = [1, 2, 3, 4, 5, 6, 7].map(call)
  t.same(batches, [[1], [2]], 'two slots: the first two leave alone, at once')
  await finishNext()
  t.same(batches, [[1], [2], [3, 4, 5]], 'a freed slot takes up to maxSize of those waiting')
  await finishNext()
  t.same(batches, [[1], [2], [3, 4, 5], [6, 7]])
  await finishNext()
  await finishNext()
  t.same(await Promise.all(answers), [1, 2, 3, 4, 5, 6, 7].map((n) => `answer ${n}`), 'each caller gets its own answer')
  const eighth = call(8)
  t.same(batches.at(-1), [8], 'idle again: the next call leaves at once, alone')
  await finishNext()
  t.same(await eighth, 'answer 8')
})

t.test('a failed run fails each call of its batch, and only those', async (t) => {
  const { run, finishNext } = controlledRun()
  const call = createBatcher(run, { concurrency: 1, maxSize: 10 })
  const first = call(1)
  const second = [call(2), call(3)]
  const firstFails = t.rejects(first, /database down/)
  await finishNext(new Error('database down'))
  await firstFails
  await finishNext()
  t.same(await Promise.all(second), ['answer 2', 'answer 3'])
})
