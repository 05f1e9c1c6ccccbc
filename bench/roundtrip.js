'use strict'
// Benchmark 2, round trip: one execution submitted and awaited to its final
// result, N times in sequence (after a warm-up whose timings are dropped).
// Each sample is the hrtime from just before submit() to just after the
// awaited promise resolved, so it includes the hand-off to the callable,
// running it, reporting the result and resolving the caller's promise.
//
//   ours:    await engine.submit({ ..., config: { mode: 'silent' } })
//   p-queue: await queue.add(noop)   (reference only; no target against it)

const { noopEngine, loadPQueue, nowNs, runChild, expectCount, quantile, sortNumbers } = require('./lib')

function figures(samplesNs) {
  const us = sortNumbers(Array.from(samplesNs, (ns) => ns / 1000))
  return { p50Us: quantile(us, 0.5), p99Us: quantile(us, 0.99), maxUs: us[us.length - 1], n: us.length }
}

runChild({
  async ours({ n = 10_000, warmup = 1_000 }) {
    const { engine, runs } = noopEngine({ concurrency: 64 })
    const samples = new Float64Array(n)
    for (let i = -warmup; i < n; i++) {
      const t0 = nowNs()
      const record = await engine.submit({ tenantId: 'tenant_1', callableName: 'noop', config: { mode: 'silent' } })
      const t1 = nowNs()
      if (record.status !== 'completed') throw new Error(`execution ${record.executionId} ended ${record.status}`)
      if (i >= 0) samples[i] = t1 - t0
    }
    const stats = await engine.stats()
    await engine.shutdown()
    expectCount('callable invocations', runs(), n + warmup)
    expectCount('stats().completed', stats.completed, n + warmup)
    return figures(samples)
  },

  async 'p-queue'({ n = 10_000, warmup = 1_000 }) {
    const PQueue = await loadPQueue()
    const queue = new PQueue({ concurrency: 64 })
    let ran = 0
    const noop = async () => {
      ran++
    }
    const samples = new Float64Array(n)
    for (let i = -warmup; i < n; i++) {
      const t0 = nowNs()
      await queue.add(noop)
      const t1 = nowNs()
      if (i >= 0) samples[i] = t1 - t0
    }
    expectCount('task invocations', ran, n + warmup)
    return figures(samples)
  },
})
