'use strict'
// Benchmark 4, event matching: T event triggers (see matching-data.js), then
// E events emitted in chunks of 1,000. The figure is events per second over
// the time spent inside the emit calls only: events are generated before
// each chunk's clock starts, and the awaiting of the chunk's promises (during
// which the engine also runs the fired no-op executions) is outside the
// clock. `inclAwaitPerSec` adds that awaiting back, for reference.
//
//   ours-emit:      engine.emit(event) for each event of the chunk, then
//                   await Promise.all of the chunk's promises
//   ours-emitBatch: engine.emitBatch(chunk), then await it
//   js-matcher:     bench/baselines/js-matcher.js, match(event) per event
//
// Fairness: a fire in the engine is more than a match: it updates the
// trigger's fire count, writes an execution and returns a TriggerFiredEvent
// object to JS; the JS matcher only counts. Fires per event grow with the
// trigger count (same 1,000 × 200 tenant/type space), so at 100k triggers
// about ten times more of that work falls on each event.
//
// Validation: the engine child recomputes the expected fire count with the
// JS matcher on the same events (untimed); the engine's returned fires, its
// callable invocations and stats().completed must all equal it. run.js also
// checks that every implementation reports the same `fires`.

const { noopEngine, now, runChild, expectCount, log } = require('./lib')
const { JsMatcher } = require('./baselines/js-matcher')
const { triggers, eventChunks } = require('./matching-data')

const CHUNK = 1000

function registerJs(count) {
  const matcher = new JsMatcher()
  for (const t of triggers(count)) matcher.add(t)
  return matcher
}

async function runOurs({ triggers: count = 10_000, events = 1_000_000 }, batch) {
  const { engine, runs } = noopEngine({ concurrency: 256 })
  const r0 = now()
  for (const t of triggers(count)) {
    const condition = { eventType: t.eventType }
    if (t.eventPattern !== undefined) condition.eventPattern = t.eventPattern
    await engine.registerTrigger({ tenantId: t.tenantId, type: 'event', condition, action: { callableName: 'noop' } })
  }
  const registerMs = now() - r0
  const reference = registerJs(count)

  let emitMs = 0
  let totalMs = 0
  let fires = 0
  let expected = 0
  const promises = new Array(CHUNK)
  for (const chunk of eventChunks(events, CHUNK)) {
    let fired
    const t0 = now()
    if (batch) {
      const p = engine.emitBatch(chunk)
      emitMs += now() - t0
      fired = (await p).length
    } else {
      promises.length = chunk.length
      for (let i = 0; i < chunk.length; i++) promises[i] = engine.emit(chunk[i])
      emitMs += now() - t0
      fired = 0
      for (const list of await Promise.all(promises)) fired += list.length
    }
    totalMs += now() - t0
    fires += fired
    for (let i = 0; i < chunk.length; i++) expected += reference.match(chunk[i]) // untimed
  }
  await engine.idle()
  const stats = await engine.stats()
  await engine.shutdown()
  log(`fires ${fires}, expected ${expected}, ran ${runs()}, stats ${JSON.stringify(stats)}`)
  expectCount('fires returned by emit (vs the JS matcher on the same events)', fires, expected)
  expectCount('callable invocations', runs(), expected)
  expectCount('stats().completed', stats.completed, expected)
  return { eventsPerSec: events / (emitMs / 1000), inclAwaitPerSec: events / (totalMs / 1000), registerMs, fires, events, triggers: count }
}

runChild({
  'ours-emit': (args) => runOurs(args, false),
  'ours-emitBatch': (args) => runOurs(args, true),

  async 'js-matcher'({ triggers: count = 10_000, events = 1_000_000 }) {
    const r0 = now()
    const matcher = registerJs(count)
    const registerMs = now() - r0
    let ms = 0
    let fires = 0
    for (const chunk of eventChunks(events, CHUNK)) {
      const t0 = now()
      for (let i = 0; i < chunk.length; i++) fires += matcher.match(chunk[i])
      ms += now() - t0
    }
    return { eventsPerSec: events / (ms / 1000), inclAwaitPerSec: events / (ms / 1000), registerMs, fires, events, triggers: count }
  },
})
