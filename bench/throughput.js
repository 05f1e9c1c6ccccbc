'use strict'
// Benchmark 1, executor throughput: N fire-and-forget executions of a no-op
// async callable at concurrency 64, submitted in a plain loop (nothing is
// awaited per item), then one wait until everything has run. The figure is
// jobs per second from the first submit to "all done". Every implementation
// runs the same no-op async function body and is checked to have run it
// exactly N times.
//
//   ours:       engine.submit({ tenantId, callableName }) … await engine.idle()
//   p-queue:    queue.add(async () => {}) … await queue.onIdle()
//   heap-queue: bench/baselines/heap-queue.js, add(fn) … await onIdle()
//
// Fairness notes: submit() and queue.add() each return a promise per item
// (dropped here); the hand-written heap queue returns none, so it does the
// least work of the three. p-queue's add() promise resolves with the task's
// result; ours resolves with the queued record.
//
// Event-loop lag: a 1 ms setInterval probe runs during each run (all three
// sides alike, so its small cost is in every figure); lagP99Ms / lagMaxMs
// are the p99 and max of how late its ticks came, i.e. how long the
// dispatcher kept timers and I/O of the rest of the application waiting.

const { engineThroughput, loadPQueue, now, lagProbe, runChild, expectCount } = require('./lib')
const { HeapQueue } = require('./baselines/heap-queue')

const CONCURRENCY = 64

/** The JS queues' side: `add` n no-op async tasks in a loop, await `onIdle()`. */
async function driveQueue(queue, n) {
  let ran = 0
  const probe = lagProbe()
  const t0 = now()
  for (let i = 0; i < n; i++) {
    queue.add(async () => {
      ran++
    })
  }
  await queue.onIdle()
  const ms = now() - t0
  const lag = probe.stop()
  expectCount('task invocations', ran, n)
  return { jobsPerSec: n / (ms / 1000), ms, n, ...lag }
}

runChild({
  ours: ({ n = 200_000 }) => engineThroughput({ concurrency: CONCURRENCY }, n),

  async 'p-queue'({ n = 200_000 }) {
    const PQueue = await loadPQueue()
    return driveQueue(new PQueue({ concurrency: CONCURRENCY }), n)
  },

  async 'heap-queue'({ n = 200_000 }) {
    return driveQueue(new HeapQueue(CONCURRENCY), n)
  },
})
