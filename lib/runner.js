// @ts-check
'use strict'
// The callable runner: starts the attempts Rust hands over, awaits each
// callable's result and reports the results back to Rust as one JSON text
// per microtask batch. No thread hop and no promise awaited from Rust per
// job (NAPI-NOTES.md: that is the slow path). Also the event-loop slicing
// that keeps a stream of instant work from starving timers and I/O.

const { AsyncLocalStorage } = require('node:async_hooks')
const { Code, describe, enactError, toThrownError } = require('./errors')
const { hasLoneSurrogate, loneSurrogateAt, loneSurrogateMessage, wellFormed } = require('./wellformed')
const timers = require('./timers')

/**
 * An attempt as Rust hands it over (`NativeEngine.take`).
 * @typedef {object} Job
 * @property {string} executionId
 * @property {string} tenantId
 * @property {string} callableName
 * @property {string} [input]
 * @property {Record<string, string>} [context]
 * @property {number} attempt
 * @property {string} [triggerId]
 * @property {unknown} [triggerSource]
 * @property {boolean} [stream] whether stream chunks are delivered
 * @property {number} [chainDepth] how many fires led to it (absent: 0)
 * @property {string} [chainRoot] its chain's root (absent: itself)
 * @property {Record<string, string>} [traceContext] the W3C trace context it was submitted or fired in
 */

/**
 * Where work being caused sits in its chain: the root execution's id and
 * the causing execution's depth. `live` while the code it scopes runs (a
 * callable until its attempt settles, a listener or target handler until
 * its promise settles): work made afterwards by something that code left
 * behind (a timer, a client created on first use) is outside any chain,
 * so that it neither counts against the chain's budget nor is refused by it.
 * @typedef {{ root: string, depth: number, live: boolean }} Chain
 */

/**
 * The chain of the callable (or of the listener or target handler of an
 * execution) whose code is running. Everything a callable starts while it
 * runs, in any await or callback, sees its chain here, so that `emit`,
 * `submit` and `fire` made from it continue its chain instead of starting
 * a new one (which escaped the loop guard: a callable that emits the event
 * that runs it again looped forever).
 * @type {AsyncLocalStorage<Chain>}
 */
const chains = new AsyncLocalStorage()

/**
 * The chain of the code running now, or undefined outside any execution.
 * @returns {Chain | undefined}
 */
function currentChain() {
  const chain = chains.getStore()
  return chain !== undefined && chain.live ? chain : undefined
}

/**
 * The chain work caused by `record` (a Job or a BackgroundExecution)
 * belongs to; `depth` overrides the record's own.
 * @param {{ executionId: string, chainDepth?: number, chainRoot?: string }} record
 * @returns {Chain}
 */
function chainOf(record) {
  return { root: record.chainRoot ?? record.executionId, depth: record.chainDepth ?? 0, live: true }
}

/**
 * Runs `fn(arg)` in `chain` (null: outside any chain, whatever chain the
 * caller runs in). The chain ends when `fn` returns, or when the promise
 * it returns settles.
 * @template A, R
 * @param {Chain | null} chain
 * @param {(arg: A) => R} fn
 * @param {A} arg
 * @returns {R}
 */
function scoped(chain, fn, arg) {
  if (chain === null) return chains.exit(fn, arg)
  let out
  try {
    out = chains.run(chain, fn, arg)
  } catch (err) {
    chain.live = false
    throw err
  }
  if (isThenable(out)) {
    const end = () => {
      chain.live = false
    }
    Promise.resolve(out).then(end, end)
  } else chain.live = false
  return out
}

/**
 * Whether `v` has a callable `then`, reading it once under a guard.
 * @param {unknown} v
 */
function isThenable(v) {
  if (v === null || (typeof v !== 'object' && typeof v !== 'function')) return false
  try {
    return typeof (/** @type {any} */ (v).then) === 'function'
  } catch {
    return false
  }
}

/**
 * Runs `fn(arg)` in the chain of `record`, ending it as `scoped` does.
 * @template A, R
 * @param {{ executionId: string, chainDepth?: number, chainRoot?: string }} record
 * @param {(arg: A) => R} fn
 * @param {A} arg
 * @returns {R}
 */
function inChainOf(record, fn, arg) {
  return scoped(chainOf(record), fn, arg)
}

/** @typedef {import('./errors').ThrownError} CallError */

/**
 * The reason a running attempt's signal aborts with.
 * @param {string} why `timeout`, `cancel` or `shutdown`
 * @param {string} [executionId]
 * @returns {import('./errors').EnactError}
 */
function abortReason(why, executionId) {
  const err = enactError(
    why === 'timeout' ? Code.TIMEOUT : why === 'cancel' ? Code.CANCELLED : Code.SHUTDOWN,
    why === 'timeout' ? `execution ${executionId} timed out` : why === 'cancel' ? `execution ${executionId} was cancelled` : 'engine is shutting down',
  )
  err.name = why === 'timeout' ? 'TimeoutError' : 'AbortError'
  return err
}

/**
 * The runner's handles on an attempt: mark it settled (false if it already
 * was), abort its signal. Set by Context's static block, so that they
 * reach its private fields without being reachable from `ctx` (not even as
 * `ctx.constructor.settle`).
 * @type {(ctx: Context) => boolean}
 */
let settleContext
/** @type {(ctx: Context, reason: unknown) => void} */
let abortContext

/**
 * What a callable receives (`CallableContext` in index.d.ts), and nothing
 * else: its own enumerable properties are the documented data fields;
 * `signal` and `stream` live on the prototype; the runner's state is in
 * private fields.
 */
class Context {
  /** @type {(name: string, payload: unknown) => void} */
  #emit
  /** @type {(ctx: Context, value: unknown) => Promise<void>} */
  #progress
  #streams
  /** @type {AbortController | null} */
  #controller = null
  /** @type {unknown} */
  #abortReason = undefined
  #settled = false

  /**
   * @param {Job} job
   * @param {(name: string, payload: unknown) => void} emit
   * @param {(ctx: Context, value: unknown) => Promise<void>} progress
   */
  constructor(job, emit, progress) {
    this.executionId = job.executionId
    this.tenantId = job.tenantId
    this.callableName = job.callableName
    this.input = job.input
    this.context = job.context || {}
    this.attempt = job.attempt
    this.triggerId = job.triggerId
    this.triggerSource = job.triggerSource
    this.#streams = job.stream === true
    this.#emit = emit
    this.#progress = progress
  }

  /** Aborts on timeout, cancellation or shutdown. Created on first use. */
  get signal() {
    if (this.#controller === null) {
      this.#controller = new AbortController()
      if (this.#abortReason !== undefined) this.#controller.abort(this.#abortReason)
    }
    return this.#controller.signal
  }

  /**
   * Delivers a chunk as an `execution.stream` event (deferred mode only).
   * @param {unknown} chunk
   */
  stream(chunk) {
    if (!this.#streams || this.#abortReason !== undefined) return
    this.#emit('execution.stream', {
      executionId: this.executionId,
      tenantId: this.tenantId,
      callableName: this.callableName,
      attempt: this.attempt,
      chunk,
    })
  }

  /**
   * Stores how far the attempt got (a number, or a small JSON value: at
   * most 16 KiB as JSON) on the execution's record and emits
   * `execution.progress`; resolves once stored (never rejects: a store
   * failure is an `engine.diagnostic`). A value that is not JSON throws
   * here. After the attempt ended (settled, timed out, cancelled) it does
   * nothing.
   * @param {unknown} value
   * @returns {Promise<void>}
   */
  progress(value) {
    if (this.#settled || this.#abortReason !== undefined) return Promise.resolve()
    return this.#progress(this, value)
  }

  static {
    settleContext = (ctx) => {
      if (ctx.#settled) return false
      ctx.#settled = true
      return true
    }
    abortContext = (ctx, reason) => {
      if (ctx.#abortReason !== undefined) return
      ctx.#abortReason = reason
      if (ctx.#controller !== null) ctx.#controller.abort(reason)
    }
  }
}

class Runner {
  /** @type {WeakMap<Context, Chain>} the chain of each attempt */
  #chains = new WeakMap()
  /** @type {Map<string, Function>} */
  #callables = new Map()
  /** @type {Map<string, Context>} */
  #inflight = new Map()
  /** @type {string[]} */
  #results = []
  #flushScheduled = false
  #complete
  #emit
  #afterFlush
  #progress
  /** @type {import('./tracing').Tracing | null} */
  #tracing
  /** @type {WeakMap<Context, any>} each traced attempt's span */
  #spans = new WeakMap()

  /**
   * @param {object} host
   * @param {(batch: string) => void} host.complete hands a JSON batch of results to Rust
   * @param {(name: string, payload: unknown) => void} host.emit delivers a stream chunk to listeners
   * @param {() => void} host.afterFlush runs after each batch (start what may start now)
   * @param {(ctx: Context, value: unknown) => Promise<void>} host.progress stores a `ctx.progress(value)`
   * @param {import('./tracing').Tracing | null} [host.tracing] traces each attempt
   */
  constructor({ complete, emit, afterFlush, progress, tracing = null }) {
    this.#complete = complete
    this.#emit = emit
    this.#afterFlush = afterFlush
    this.#progress = progress
    this.#tracing = tracing
  }

  /**
   * @param {string} name
   * @param {Function} fn
   */
  setCallable(name, fn) {
    this.#callables.set(name, fn)
  }

  /** @param {Job[]} jobs */
  start(jobs) {
    // Spans only while an SDK records them (checked per batch).
    const tracing = this.#tracing !== null && this.#tracing.live ? this.#tracing : null
    for (let i = 0; i < jobs.length; i++) {
      const job = jobs[i]
      const ctx = new Context(job, this.#emit, this.#progress)
      this.#inflight.set(job.executionId, ctx)
      const fn = this.#callables.get(job.callableName)
      if (fn === undefined) {
        this.#fail(ctx, { message: `no callable registered as ${JSON.stringify(job.callableName)}`, retryable: false }, '')
        continue
      }
      // The callable's chain is live until its attempt settles or is
      // aborted (#end), not for as long as what it left behind lives.
      const chain = chainOf(job)
      this.#chains.set(ctx, chain)
      /** @type {any} */
      let out
      try {
        if (tracing === null) out = chains.run(chain, /** @type {(ctx: Context) => unknown} */ (fn), ctx)
        else {
          const traced = tracing.attempt(job, () => chains.run(chain, /** @type {(ctx: Context) => unknown} */ (fn), ctx))
          if (traced.span !== null) this.#spans.set(ctx, traced.span)
          if (traced.threw) throw traced.error
          out = traced.out
        }
      } catch (err) {
        this.#fail(ctx, err)
        continue
      }
      if (out !== null && (typeof out === 'object' || typeof out === 'function')) {
        let then
        try {
          then = out.then
        } catch (err) {
          this.#fail(ctx, err, 'callable returned a value that cannot be read: ')
          continue
        }
        if (typeof then === 'function') {
          try {
            then.call(out, (/** @type {unknown} */ value) => this.#succeed(ctx, value), (/** @type {unknown} */ err) => this.#fail(ctx, err))
          } catch (err) {
            this.#fail(ctx, err)
          }
          continue
        }
      }
      this.#succeed(ctx, out)
    }
  }

  /**
   * Aborts one attempt (its late result is ignored by Rust).
   * @param {string} executionId
   * @param {number} attempt
   * @param {string} why `timeout`, `cancel` or `shutdown`
   */
  abort(executionId, attempt, why) {
    const ctx = this.#inflight.get(executionId)
    if (ctx !== undefined && ctx.attempt === attempt) {
      this.#inflight.delete(executionId)
      this.#end(ctx)
      this.#endSpan(ctx, { message: `attempt aborted: ${why}` })
      abortContext(ctx, abortReason(why, executionId))
    }
  }

  /** Aborts every attempt in flight (shutdown). */
  abortAll() {
    for (const ctx of this.#inflight.values()) {
      this.#end(ctx)
      this.#endSpan(ctx, { message: 'attempt aborted: shutdown' })
      abortContext(ctx, abortReason('shutdown'))
    }
    this.#inflight.clear()
  }

  /**
   * Ends the chain of an attempt: what its code does from now on is
   * outside any chain.
   * @param {Context} ctx
   */
  #end(ctx) {
    const chain = this.#chains.get(ctx)
    if (chain !== undefined) chain.live = false
  }

  /**
   * Ends the span of a traced attempt (once).
   * @param {Context} ctx
   * @param {{ message: string, code?: string } | null} error
   */
  #endSpan(ctx, error) {
    const span = this.#spans.get(ctx)
    if (span === undefined) return
    this.#spans.delete(ctx)
    const tracing = /** @type {import('./tracing').Tracing} */ (this.#tracing)
    tracing.end(span, error)
  }

  /** @param {Context} ctx */
  #release(ctx) {
    this.#end(ctx)
    if (!settleContext(ctx)) return false
    if (this.#inflight.get(ctx.executionId) === ctx) this.#inflight.delete(ctx.executionId)
    return true
  }

  /**
   * @param {Context} ctx
   * @param {unknown} value
   */
  #succeed(ctx, value) {
    if (!this.#release(ctx)) return
    // A callable that returns nothing (the common side-effect-only job)
    // succeeded: its output is null, as for `return null`.
    if (value === undefined) return this.#report(ctx, 'null', null)
    let output
    try {
      output = JSON.stringify(value)
    } catch (err) {
      return this.#report(ctx, null, { message: wellFormed(`callable returned a value that is not JSON-serializable: ${describe(err)}`), retryable: false })
    }
    if (output === undefined) {
      return this.#report(ctx, null, {
        message: `callable returned ${typeof value}; return a JSON value (or nothing, or null)`,
        retryable: false,
      })
    }
    if (hasLoneSurrogate(output)) {
      return this.#report(ctx, null, {
        message: `callable returned a value that is not valid Unicode: ${loneSurrogateMessage(loneSurrogateAt(JSON.parse(output), 'output'), 'output')}`,
        retryable: false,
      })
    }
    this.#report(ctx, output, null)
  }

  /**
   * @param {Context} ctx
   * @param {unknown} err
   * @param {string} [prefix]
   */
  #fail(ctx, err, prefix = 'callable threw: ') {
    if (!this.#release(ctx)) return
    const error = toThrownError(err, prefix)
    this.#report(ctx, null, error)
  }

  /**
   * Results cross to Rust as one JSON text per batch; `output` is already
   * JSON text, so it is spliced in rather than encoded twice.
   * @param {Context} ctx
   * @param {string | null} output
   * @param {CallError | null} error
   */
  #report(ctx, output, error) {
    if (this.#tracing !== null) this.#endSpan(ctx, error)
    const head = '{"executionId":' + JSON.stringify(ctx.executionId) + ',"attempt":' + ctx.attempt
    this.#results.push(error === null ? head + ',"output":' + output + '}' : head + ',"error":' + JSON.stringify(error) + '}')
    if (!this.#flushScheduled) {
      this.#flushScheduled = true
      timers.microtask(() => this.#flush())
    }
  }

  #flush() {
    this.#flushScheduled = false
    const batch = this.#results
    this.#results = []
    if (batch.length > 0) this.#complete('[' + batch.join(',') + ']')
    this.#afterFlush()
  }
}

/**
 * Event-loop slicing. Batches chain through microtasks, which Node runs
 * before any timer or I/O callback. So that a stream of instant callables
 * (or a chain of triggers) cannot starve the event loop, work that has run
 * for longer than `sliceMs` without the loop turning continues in a
 * macrotask (`resume`, via setImmediate).
 */
class Slicer {
  #sliceStart = -1
  #yieldScheduled = false
  #sliceMs
  #endSlice = () => {
    this.#sliceStart = -1
  }
  #resumeAfterYield = () => {
    this.#yieldScheduled = false
    this.#sliceStart = -1
    this.#resume()
  }
  #resume

  /**
   * @param {() => void} resume
   * @param {number} [sliceMs]
   */
  constructor(resume, sliceMs = 10) {
    this.#resume = resume
    this.#sliceMs = sliceMs
  }

  /** Whether work was put off to a macrotask (and has not resumed yet). */
  get yielding() {
    return this.#yieldScheduled
  }

  /** Whether the current slice is spent (then `resume` runs in a macrotask). */
  overBudget() {
    const now = timers.monotonicNow()
    if (this.#sliceStart < 0) {
      this.#sliceStart = now
      timers.setImmediate(this.#endSlice)
      return false
    }
    if (now - this.#sliceStart <= this.#sliceMs) return false
    if (!this.#yieldScheduled) {
      this.#yieldScheduled = true
      timers.setImmediate(this.#resumeAfterYield)
    }
    return true
  }
}

module.exports = { Runner, Context, Slicer, abortReason, abortContext, chainOf, currentChain, inChainOf, scoped, settleContext }
