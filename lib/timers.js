// @ts-check
'use strict'
// The timers the engine's own machinery runs on: the pump and result
// batching (microtasks), event-loop slicing (setImmediate,
// performance.now), shutdown and binding deadlines and callback backoff
// (setTimeout). Taken from `node:timers` and `node:perf_hooks`, never from
// the globals, so that fake timers, which replace the globals
// (`jest.useFakeTimers()`, `@sinonjs/fake-timers` installed on a test's
// global), neither stall the engine nor drive it. Microtasks go through a
// resolved promise: fake timers fake `queueMicrotask` but never promises.
// The engine's own time (delays, backoff, timeouts, schedules) is its
// clock's: real, or moved by `advanceTime` (clock: 'manual').

const timers = require('node:timers')
const { performance } = require('node:perf_hooks')

const resolved = Promise.resolve()

/**
 * Runs `fn` in a microtask, like `queueMicrotask` (an error it throws is
 * an unhandled rejection, which Node treats as uncaught).
 * @param {() => void} fn
 */
function microtask(fn) {
  void resolved.then(fn)
}

/** Milliseconds of real, monotonic time. */
function monotonicNow() {
  return performance.now()
}

/**
 * Resolves after the event loop has turned once (a real `setImmediate`):
 * every microtask queued before has run by then.
 * @returns {Promise<void>}
 */
function nextTurn() {
  return new Promise((resolve) => timers.setImmediate(resolve))
}

module.exports = {
  setTimeout: timers.setTimeout,
  clearTimeout: timers.clearTimeout,
  setImmediate: timers.setImmediate,
  microtask,
  monotonicNow,
  nextTurn,
}
