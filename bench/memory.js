'use strict'
// Benchmark 3, queue memory: resident memory (RSS) added per waiting
// execution. RSS is read after a full GC before and after N executions are
// queued; the figure is (after − before) / N bytes. RSS is the honest
// measure for the native engine, whose queue lives in Rust memory that the
// V8 heap figures do not see. heapUsed growth is reported alongside.
//
//   ours:    N deferred executions due in one hour, submitted in chunks of
//            10,000 (each chunk's promises awaited, then dropped, so the
//            caller holds nothing: the engine alone keeps the work).
//   p-queue: N tasks queued in a paused queue (autoStart: false) through
//            queue.add(task) with one shared task function; add()'s promises
//            are dropped. p-queue keeps each promise's resolve/reject
//            closures while the task waits: that is part of its cost.
//            (Nothing ever rejects; runChild fails the run on any unhandled
//            rejection instead of attaching a .catch per task, which would
//            inflate p-queue's figure.)

const { noopEngine, loadPQueue, runChild, fullGc, expectCount, log } = require('./lib')

const CHUNK = 10_000

function measure(before, after, n) {
  return {
    bytesPerExec: (after.rss - before.rss) / n,
    heapBytesPerExec: (after.heapUsed - before.heapUsed) / n,
    rssMiB: after.rss / 2 ** 20,
    n,
  }
}

runChild({
  async ours({ n = 1_000_000 }) {
    const { engine, runs } = noopEngine({ concurrency: 64 })
    const runAt = new Date(Date.now() + 3600_000).toISOString()
    await fullGc()
    const before = process.memoryUsage()
    for (let done = 0; done < n; done += CHUNK) {
      const chunk = []
      for (let i = 0; i < CHUNK && done + i < n; i++) chunk.push(engine.submit({ tenantId: 'tenant_1', callableName: 'noop', config: { mode: 'deferred', runAt } }))
      await Promise.all(chunk)
    }
    await fullGc()
    const after = process.memoryUsage()
    const stats = await engine.stats()
    log('stats after queuing', JSON.stringify(stats))
    await engine.shutdown({ timeoutMs: 1000 })
    expectCount('stats().submitted', stats.submitted, n)
    expectCount('stats().queued (deferred executions waiting)', stats.queued, n)
    if (runs() !== 0) throw new Error(`${runs()} deferred executions ran an hour early`)
    return measure(before, after, n)
  },

  async 'p-queue'({ n = 1_000_000 }) {
    const PQueue = await loadPQueue()
    const queue = new PQueue({ autoStart: false })
    let ran = 0
    const task = () => {
      ran++
    }
    await fullGc()
    const before = process.memoryUsage()
    for (let i = 0; i < n; i++) queue.add(task)
    await fullGc()
    const after = process.memoryUsage()
    expectCount('queue.size', queue.size, n)
    if (ran !== 0) throw new Error(`${ran} tasks ran in a paused queue`)
    queue.clear()
    return measure(before, after, n)
  },
})
