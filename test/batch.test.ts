// createBatcher: the calls of one event-loop turn leave together after it while
// a slot is free, wait while all are busy, then leave together; answers come
// back to their own callers.
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

const nextTurn = async () => await new Promise((resolve) => setImmediate(resolve))

t.test("the calls of one turn leave together after it; calls arriving while all slots are busy wait for one", async (t) => {
  const { batches, run, finishNext } = controlledRun()
  const call = createBatcher(run, { concurrency: 2, maxSize: 3 })
  const answers = [1, 2, 3, 4, 5, 6, 7].map(call)
  t.same(batches, [], 'nothing leaves during the turn')
  await nextTurn()
  t.same(batches, [[1, 2, 3], [4, 5, 6]], 'after it, one batch of up to maxSize per free slot')
  const late = [8, 9].map(call)
  await nextTurn()
  t.same(batches, [[1, 2, 3], [4, 5, 6]], 'every slot busy: later calls wait')
  await finishNext()
  t.same(batches, [[1, 2, 3], [4, 5, 6], [7, 8, 9]], 'a freed slot takes up to maxSize of those waiting')
  await finishNext()
  await finishNext()
  t.same(await Promise.all([...answers, ...late]), [1, 2, 3, 4, 5, 6, 7, 8, 9].map((n) => `answer ${n}`), 'each caller gets its own answer')
  const tenth = call(10)
  await nextTurn()
  t.same(batches.at(-1), [10], 'idle again: a lone call leaves right after its turn, alone')
  await finishNext()
  t.same(await tenth, 'answer 10')
})

t.test('a failed run fails each call of its batch, and only those', async (t) => {
  const { run, finishNext } = controlledRun()
  const call = createBatcher(run, { concurrency: 1, maxSize: 10 })
  const first = call(1)
  await nextTurn()
  const second = [call(2), call(3)]
  const firstFails = t.rejects(first, /database down/)
  await finishNext(new Error('database down'))
  await firstFails
  await finishNext()
  t.same(await Promise.all(second), ['answer 2', 'answer 3'])
})
