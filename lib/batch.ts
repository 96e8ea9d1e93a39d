/** How a batcher groups work. */
export interface BatchLimits {
  /** Most inputs in one batch. */
  maxSize: number
  /** Most batches running at once; inputs arriving meanwhile wait and go together in the next one. */
  concurrency: number
}

/**
 * Groups calls into batches, each batch paying the fixed cost (a round trip, a
 * statement's start-up) once. The calls made during one turn of the event loop
 * (the requests parsed from one round of socket reads) leave together right
 * after it (setImmediate: no timer, so an idle server adds no wait), in batches
 * of up to `maxSize`, while fewer than `concurrency` batches run; calls arriving
 * while every slot is busy wait and leave together when one frees. Leaving
 * after the turn rather than at the first call doubled the requests a
 * statement answers under load (BENCHMARKS.md, step 18).
 * `run` answers a batch's inputs in order; its failure fails each call of the batch.
 */
export function createBatcher<In, Out> (run: (inputs: In[]) => Promise<Out[]>, limits: BatchLimits): (input: In) => Promise<Out> {
  const waiting: Array<{ input: In, resolve: (output: Out) => void, reject: (error: unknown) => void }> = []
  let running = 0

  function dispatch (): void {
    while (running < limits.concurrency && waiting.length > 0) {
      const batch = waiting.splice(0, limits.maxSize)
      running++
      run(batch.map((call) => call.input)).then(
        (outputs) => { batch.forEach((call, i) => { call.resolve(outputs[i] as Out) }) },
        (error: unknown) => { for (const call of batch) call.reject(error) }
      ).finally(() => {
        running--
        dispatch()
      })
    }
  }

  let scheduled = false
  return async (input) => await new Promise<Out>((resolve, reject) => {
    waiting.push({ input, resolve, reject })
    if (!scheduled) {
      scheduled = true
      setImmediate(() => { scheduled = false; dispatch() })
    }
  })
}
