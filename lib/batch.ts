/** How a batcher groups work. */
export interface BatchLimits {
  /** Most inputs in one batch. */
  maxSize: number
  /** Most batches running at once; inputs arriving meanwhile wait and go together in the next one. */
  concurrency: number
}

/**
 * Groups calls into batches: a call goes out at once while fewer than
 * `concurrency` batches run, so an idle server adds no wait; under load the
 * calls that arrive while every slot is busy leave together in the next batch,
 * each batch paying the fixed cost (a round trip, a statement's start-up) once.
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

  return async (input) => await new Promise<Out>((resolve, reject) => {
    waiting.push({ input, resolve, reject })
    dispatch()
  })
}
