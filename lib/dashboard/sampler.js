// @ts-check
'use strict'
// The dashboard's memory of the last minutes: one sample of `stats()` per
// second in a ring of 600 (10 minutes), from which the page draws its
// throughput, failure and queue-depth charts. The engine keeps none of
// this itself; the sampler runs only while a dashboard is in use:
//
// - it starts on the first request a dashboard handler serves (`touch`),
//   and stops by itself once no request came for as long as the ring
//   spans, so an engine whose dashboard nobody opens pays nothing;
// - its timer is `unref()`ed (it never keeps Node alive) and taken from
//   `node:timers` (fake timers neither stall nor drive it);
// - it reaches the engine through a WeakRef (its timer never keeps an
//   engine alive), takes one sample at a time (a slow store skips ticks,
//   never piles calls up) and a failing `stats()` only leaves a gap;
// - the engine closes it when it shuts down (`close`): for good.

const timers = require('../timers')

/** Samples kept: 10 minutes at one per second. */
const CAPACITY = 600
/** Milliseconds between samples. */
const INTERVAL_MS = 1000

/**
 * One sample: the time (ms since the epoch) and the counters the charts
 * need. `completed`, `failed`, `timeout`, `cancelled` are cumulative
 * (the engine's monotone `ended` counters when it has them, else its
 * per-status counts); `queued`, `running`, `delayed` are levels.
 * @typedef {{ t: number, completed: number, failed: number, timeout: number, cancelled: number, queued: number, running: number, delayed: number | null }} Sample
 */

/**
 * A sample from a `stats()` answer.
 * @param {any} stats
 * @param {number} t
 * @returns {Sample}
 */
function sampleOf(stats, t) {
  const ended = stats !== null && typeof stats.ended === 'object' && stats.ended !== null ? stats.ended : stats
  const n = (/** @type {unknown} */ v) => (typeof v === 'number' && Number.isFinite(v) ? v : 0)
  return {
    t,
    completed: n(ended.completed),
    failed: n(ended.failed),
    timeout: n(ended.timeout),
    cancelled: n(ended.cancelled),
    queued: n(stats.queued),
    running: n(stats.running),
    delayed: typeof stats.delayed === 'number' ? stats.delayed : null,
  }
}

class Sampler {
  /** @type {WeakRef<{ stats(): Promise<any> }>} */
  #engine
  /** @type {(Sample | undefined)[]} */
  #ring = new Array(CAPACITY)
  /** Index the next sample goes to. */
  #next = 0
  #size = 0
  /** @type {NodeJS.Timeout | null} */
  #timer = null
  #busy = false
  #closed = false
  /** When a handler last served a request (ms, monotonic). */
  #lastUse = 0
  #capacity
  #intervalMs
  #now

  /**
   * @param {{ stats(): Promise<any> }} engine
   * @param {{ capacity?: number, intervalMs?: number, now?: () => number }} [options] for tests
   */
  constructor(engine, options = {}) {
    this.#engine = new WeakRef(engine)
    this.#capacity = options.capacity ?? CAPACITY
    this.#intervalMs = options.intervalMs ?? INTERVAL_MS
    this.#now = options.now ?? Date.now
    this.#ring = new Array(this.#capacity)
  }

  /** Whether the timer runs. */
  get running() {
    return this.#timer !== null
  }

  /** A dashboard served a request: sample (from now on, if not already). */
  touch() {
    this.#lastUse = timers.monotonicNow()
    if (this.#closed || this.#timer !== null) return
    this.#tick()
  }

  /** Stops for good (the engine shut down). */
  close() {
    this.#closed = true
    this.#stop()
  }

  #stop() {
    if (this.#timer !== null) timers.clearTimeout(this.#timer)
    this.#timer = null
  }

  #schedule() {
    this.#timer = timers.setTimeout(() => this.#tick(), this.#intervalMs)
    this.#timer.unref()
  }

  #tick() {
    this.#timer = null
    if (this.#closed) return
    const engine = this.#engine.deref()
    // Nobody looked for as long as the ring spans (or the engine is gone): rest.
    if (engine === undefined || timers.monotonicNow() - this.#lastUse > this.#capacity * this.#intervalMs) return
    this.#schedule()
    if (this.#busy) return
    this.#busy = true
    let pending
    try {
      pending = Promise.resolve(engine.stats())
    } catch {
      pending = Promise.reject(new Error('stats() threw'))
    }
    pending
      .then(
        (stats) => {
          if (!this.#closed) this.#push(sampleOf(stats, this.#now()))
        },
        () => {}, // a gap in the charts, nothing more
      )
      .finally(() => {
        this.#busy = false
      })
  }

  /** @param {Sample} sample */
  #push(sample) {
    this.#ring[this.#next] = sample
    this.#next = (this.#next + 1) % this.#capacity
    if (this.#size < this.#capacity) this.#size++
  }

  /**
   * The samples taken after `since` (ms since the epoch), oldest first.
   * @param {number} [since]
   * @returns {Sample[]}
   */
  samples(since = -Infinity) {
    /** @type {Sample[]} */
    const out = []
    const start = (this.#next - this.#size + this.#capacity) % this.#capacity
    for (let i = 0; i < this.#size; i++) {
      const s = /** @type {Sample} */ (this.#ring[(start + i) % this.#capacity])
      if (s.t > since) out.push(s)
    }
    return out
  }
}

module.exports = { Sampler, sampleOf, CAPACITY, INTERVAL_MS }
