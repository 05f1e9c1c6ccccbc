// @ts-check
'use strict'
// The public engine: a plain JS class that owns the API. It holds the
// native engine (`NativeEngine`, through lib/realm.js) and the JS runtime parts
// as private fields and calls named native methods. Calls go one way: JS
// asks Rust, Rust answers. Rust reaches JS only through the wake function
// handed to the native constructor (a weak threadsafe function, ref'd
// while work is queued or running), when a timer produced work.

const { NativeEngine, bindingTimeoutMs } = require('./realm')
const protocol = require('./protocol')
const { Code, enactError, toThrownError, warn } = require('./errors')
const { Runner, Slicer, chainOf, currentChain, inChainOf } = require('./runner')
const { Listeners, dispatch } = require('./notices')
const { Submissions } = require('./submissions')
const { Interest, NOTHING_FIRED } = require('./prefilter')
const { postCallback } = require('./callbacks')
const { bodyBytes, createWebhookHandler } = require('./webhook-handler')
const { createFetchWebhookHandler } = require('./webhook-fetch')
const { createDashboardHandler, createDashboardFetchHandler } = require('./dashboard/server')
const { Sampler } = require('./dashboard/sampler')
const { Waiters, waitOptions } = require('./waiters')
const { Tickets } = require('./tickets')
const { dataText, optionsText, stringArg, typeName } = require('./args')
const { Tracing } = require('./tracing')
const timers = require('./timers')

const { stimuli, maxProgressBytes } = protocol

/**
 * `Symbol.asyncDispose` (what `await using` calls): Node 20 has it; where
 * it does not, the symbol Node itself registers for it. No global is
 * changed.
 * @type {typeof Symbol.asyncDispose}
 */
const asyncDispose = typeof Symbol.asyncDispose === 'symbol' ? Symbol.asyncDispose : /** @type {any} */ (Symbol.for('nodejs.asyncDispose'))

const STIMULUS_FIELD = { [stimuli.emit]: 'event', [stimuli.emitBatch]: 'events', [stimuli.lifecycle]: 'event', [stimuli.metric]: 'metric' }

/**
 * `fn()`'s value (or the value of the promise it returns) as a promise: a
 * throw becomes a rejection.
 * @template T
 * @param {() => T | PromiseLike<T>} fn
 * @returns {Promise<T>}
 */
function settled(fn) {
  try {
    return Promise.resolve(fn())
  } catch (err) {
    return Promise.reject(err)
  }
}

/** Set while `BackgroundEngine.open` constructs its engine: only it may
 * open a durable store (whose start is asynchronous). */
let opening = false

/**
 * Whether options (as JSON text) ask for a durable store: `store` is an
 * object (`{ sqlite }`, `{ postgres }`); Rust checks the rest.
 * @param {string} text
 */
function asksDurable(text) {
  if (!text.includes('"store"')) return false
  const store = JSON.parse(text).store
  return store !== null && typeof store === 'object'
}

/** The most one `advanceTime` call moves the clock: 100 years (engine
 * times stay far inside what records can hold, up to the year 2262). */
const MAX_ADVANCE_MS = 100 * 365.25 * 24 * 3600 * 1000

/**
 * The chain the listeners of an engine event run in: an execution's events
 * (and binding events) in the execution's; `trigger.fired` in the chain of
 * the execution it spawned; `trigger.loop_blocked` in the refused chain
 * (so that whatever its listeners emit is refused too); others in none.
 * @param {string} name
 * @param {any} payload
 * @returns {import('./runner').Chain | null}
 */
function listenerChain(name, payload) {
  if (payload === null || typeof payload !== 'object') return null
  if (typeof payload.executionId === 'string' && typeof payload.status === 'string') return chainOf(payload)
  if (name === 'trigger.fired' && typeof payload.executionId === 'string') return chainOf(payload)
  if (name === 'trigger.loop_blocked') return { root: payload.chainRoot ?? `trigger:${payload.triggerId}`, depth: payload.chainDepth, live: true }
  return null
}

class BackgroundEngine {
  /** @type {import('../binding.js').NativeEngine} */
  #native
  #listeners
  #runner
  #slicer
  #submissions
  #interest = new Interest()
  /** @type {Map<string, Function>} */
  #targets = new Map()
  #waiters = new Waiters()
  #tickets = new Tickets()
  /** Whether the store is durable (opened by `BackgroundEngine.open`). */
  #durable = false
  /**
   * Whether other engines share the store (PostgreSQL): their triggers
   * see this engine's events, so no event is ruled out here.
   */
  #shared = false
  /** @type {{ requeued: number, failed: number } | null} */
  #recovery = null
  /** Attempt spans and trace contexts, with `tracing: true`. @type {Tracing | null} */
  #tracing = null
  /** @type {(() => void)[]} */
  #idleWaiters = []
  /** @type {(() => void) | null} */
  #onIdle = null
  /** @type {Promise<void> | null} */
  #shutdown = null
  #pumpScheduled = false
  /** Resolved at the next pump (`#sync`). @type {(() => void)[]} */
  #pumpWaiters = []
  #closed = false
  /** How long a target handler may take (`bindingTimeoutMs`). */
  #bindingTimeoutMs
  /** Whether the engine's clock is manual (`clock: 'manual'`). */
  #manualClock
  /** The last `advanceTime` in progress: calls run one after another. */
  #advancing = Promise.resolve()
  /**
   * Under a manual clock, the bindings waiting on their handler, with the
   * engine time their `bindingTimeoutMs` runs out at.
   * @type {Set<{ at: number, expire: () => void }>}
   */
  #bindingDeadlines = new Set()
  /**
   * The dashboards' samples of `stats()`, made by the first dashboard
   * handler, closed at shutdown (lib/dashboard/sampler.js).
   * @type {Sampler | null}
   */
  #sampler = null

  /**
   * Creates an engine over the memory store. Throws
   * `ENACT_INVALID_EXECUTION` for bad options; a durable store opens with
   * `await BackgroundEngine.open(options)`.
   * @param {import('..').EngineOptions} [options]
   */
  constructor(options) {
    const text = optionsText(options, 'options', Code.INVALID_EXECUTION, '')
    if (!opening && asksDurable(text)) {
      throw enactError(Code.INVALID_EXECUTION, 'store: a durable store opens asynchronously: use `await BackgroundEngine.open(options)`')
    }
    this.#bindingTimeoutMs = bindingTimeoutMs(text)
    // Before the store opens: a missing @opentelemetry/api leaves nothing open.
    const tracing = text.includes('"tracing":true') ? new Tracing() : null
    this.#native = new NativeEngine(text, BackgroundEngine.#waker(this), this)
    const native = this.#native
    const recovery = native.recovery()
    if (recovery !== null) this.#recovery = { requeued: recovery[0], failed: recovery[1] }
    this.#durable = native.durable()
    this.#shared = native.shared()
    this.#manualClock = native.manualClock()
    this.#tracing = tracing
    this.#listeners = new Listeners(protocol.eventNames, (name, on) => native.setInterest(name, on))
    this.#runner = new Runner({
      complete: (batch) => native.complete(batch),
      emit: (name, payload) => this.#listeners.emit(name, payload),
      afterFlush: () => this.#sync(),
      progress: this.#progress,
      tracing: this.#tracing,
    })
    this.#slicer = new Slicer(() => this.#sync())
    this.#submissions = new Submissions({
      submitBatch: (text, chains) => native.submitBatch(text, chains),
      later: (ticket) => this.#tickets.answer(ticket),
      waitFor: (id) => this.#waitFor(id),
      defaultConfig: protocol.defaultConfig,
      afterFlush: () => this.#sync(),
    })
    // A memory store holds no trigger yet; a durable one's are read by `open`.
  }

  /**
   * Opens an engine over the store `options.store` names: `{ sqlite:
   * path, synchronous? }` (one file; nothing acknowledged is lost when the
   * process dies), or the memory store when absent. Creates and migrates
   * the file, re-queues what was running when its last process died (see
   * `recovery`), loads its triggers and starts their schedules. Rejects
   * with `ENACT_STORE` when the store cannot be used (the file is open in
   * another process, not a store, corrupt, from a newer version, or its
   * directory is not writable) and `ENACT_INVALID_EXECUTION` for bad
   * options.
   *
   * `setup(engine)`, when given, runs (and is awaited) after the store
   * opened and before its backlog and schedules start: register callables,
   * targets and listeners there. A schedule that missed ticks fires as the
   * store starts, and a fire whose callable is not registered yet is
   * written `failed` (`ENACT_UNKNOWN_CALLABLE`), so callables registered
   * only after `open` resolved can miss it. If `setup` throws or rejects,
   * the engine shuts down (the file is released) and `open` rejects with
   * that error.
   * @param {import('..').OpenOptions} [options]
   * @param {(engine: BackgroundEngine) => void | Promise<void>} [setup]
   * @returns {Promise<BackgroundEngine>}
   */
  static async open(options, setup) {
    if (setup !== undefined && typeof setup !== 'function') {
      throw enactError(Code.INVALID_EXECUTION, `setup: expected a function, got ${typeName(setup)}`)
    }
    opening = true
    let engine
    try {
      engine = new BackgroundEngine(/** @type {import('..').EngineOptions} */ (options))
    } finally {
      opening = false
    }
    try {
      // The backlog is counted before setup: no callable is registered
      // yet, so nothing of it can be claimed while it is counted, and
      // what setup submits is counted by its own submit.
      if (engine.#durable) await engine.#tickets.answer(engine.#native.adopt())
      if (setup !== undefined) await setup(engine)
      if (engine.#durable) {
        await engine.#tickets.answer(engine.#native.start())
        for (const t of await engine.listTriggers()) engine.#interest.index(t)
      }
    } catch (err) {
      await engine.shutdown({ timeoutMs: 0 }).catch(() => {})
      throw err
    }
    engine.#schedulePump()
    return engine
  }

  /**
   * What crash recovery did when a durable store was opened: executions
   * found running (their process died) and queued again, and those that
   * ended `failed` past `maxStalls`. `null` for the memory store.
   * Extension.
   * @returns {{ requeued: number, failed: number } | null}
   */
  get recovery() {
    return this.#recovery === null ? null : { ...this.#recovery }
  }

  // -- the loop --------------------------------------------------------------

  /**
   * The wake function Rust calls. Rust holds it for as long as the engine
   * lives, so it reaches the engine through a WeakRef (made here, not in
   * the constructor, whose closures share a context that holds `this`): a
   * strong reference would keep every engine ever made alive. Rust anchors
   * the engine itself while it has work or schedules; an idle one nobody
   * references is collected (and its native half stopped and freed), like
   * any object.
   * @param {BackgroundEngine} engine
   */
  static #waker(engine) {
    const ref = new WeakRef(engine)
    return () => {
      const live = ref.deref()
      if (live !== undefined) live.#schedulePump()
    }
  }

  #schedulePump() {
    if (this.#pumpScheduled) return
    this.#pumpScheduled = true
    timers.microtask(() => {
      this.#pumpScheduled = false
      this.#sync()
    })
  }

  /** Delivers pending notices and starts whatever may start now. */
  #sync() {
    if (this.#pumpWaiters.length > 0) {
      const list = this.#pumpWaiters
      this.#pumpWaiters = []
      for (const resolve of list) resolve()
    }
    if (this.#slicer.overBudget()) return
    const native = this.#native
    const notices = native.drain()
    if (notices !== null) this.#deliver(notices)
    const jobs = native.take()
    if (jobs !== null) this.#runner.start(JSON.parse(jobs))
    if (this.#onIdle !== null && native.busy() === 0) this.#onIdle()
    if (this.#idleWaiters.length > 0 && native.pending() === 0) this.#resolveIdle()
  }

  /**
   * What each kind of notice does (lib/notices.js).
   * @type {import('./notices').NoticeHandlers}
   */
  #onNotice = {
    // Listeners run in the chain their event belongs to, like a callable:
    // an `emit` made from `on('execution.completed')` or
    // `on('trigger.fired')` continues that chain rather than starting a
    // new one; events of no chain run outside any (not in whichever chain
    // scheduled the pump).
    event: (name, payload) => this.#listeners.emit(name, payload, () => listenerChain(name, payload)),
    settled: (record) => this.#settle(record),
    abort: (id, attempt, reason) => this.#runner.abort(id, attempt, reason),
    bind: (record, targetType, value) => this.#bind(record, targetType, value),
    callback: (record) => void postCallback(record),
    answer: (ticket, ok, error) => this.#tickets.settle(ticket, ok, error),
    closed: () => {
      this.#closed = true
      this.#waiters.rejectAll((id) => this.#shutdownError(id))
      this.#runner.abortAll()
      this.#resolveIdle()
    },
    diagnostic: (source, code, message) => {
      if (this.#listeners.has('engine.diagnostic')) this.#listeners.emit('engine.diagnostic', { source, code, message }, () => null)
      else warn(`enact-background: ${source} failed and goes on`, `${code}: ${message}`)
    },
  }

  /** @param {string} notices JSON text from `NativeEngine.drain` */
  #deliver(notices) {
    dispatch(notices, this.#onNotice)
  }

  #resolveIdle() {
    const list = this.#idleWaiters
    this.#idleWaiters = []
    for (const resolve of list) resolve()
  }

  /** @param {string} id */
  #shutdownError(id) {
    return enactError(Code.SHUTDOWN, `engine shut down before execution ${JSON.stringify(id)} finished`)
  }

  /**
   * @param {string} id
   * @param {{ signal?: AbortSignal, timeoutMs?: number }} [options]
   * @returns {Promise<any>}
   */
  #waitFor(id, options) {
    if (this.#closed) return Promise.reject(this.#shutdownError(id))
    return this.#waiters.add(id, options)
  }

  /** @param {any} record */
  #settle(record) {
    this.#waiters.settle(record)
  }

  /**
   * @param {any} record
   * @param {string} targetType
   * @param {string} value
   */
  #bind(record, targetType, value) {
    const handler = /** @type {Function} */ (this.#targets.get(targetType))
    const binding = record.config.targetBinding
    let finished = false
    /** @param {string | null} error */
    const done = (error) => {
      if (finished || this.#closed) return
      finished = true
      try {
        this.#native.bindingDone(record.executionId, error)
        this.#sync()
      } catch (err) {
        warn(`enact-background: ending the binding of ${record.executionId} failed`, err)
      }
    }
    /** @param {unknown} err */
    const failed = (err) => done(toThrownError(err, 'target handler threw: ').message)
    try {
      // In the execution's chain, as its callable ran.
      const target = { execution: record, targetType, targetPath: binding.targetPath, threadId: binding.threadId, executionId: binding.executionId }
      const out = inChainOf(record, (/** @type {typeof target} */ t) => handler(value, t), target)
      const then = out !== null && (typeof out === 'object' || typeof out === 'function') ? out.then : undefined
      if (typeof then === 'function') {
        // A handler that never settles fails its binding (never the
        // execution), so that silent waiters and idle() are answered:
        // after bindingTimeoutMs of the engine's clock (a manual one runs
        // it out in advanceTime).
        const ms = this.#bindingTimeoutMs
        const expire = () => done(`target handler did not settle within ${ms} ms (bindingTimeoutMs)`)
        let stop
        if (this.#manualClock) {
          const deadline = { at: this.#native.now() + ms, expire }
          this.#bindingDeadlines.add(deadline)
          stop = () => this.#bindingDeadlines.delete(deadline)
        } else {
          const timer = timers.setTimeout(expire, ms).unref()
          stop = () => timers.clearTimeout(timer)
        }
        then.call(
          out,
          () => (stop(), done(null)),
          (/** @type {unknown} */ err) => (stop(), failed(err)),
        )
      } else done(null)
    } catch (err) {
      failed(err)
    }
  }

  // -- callables and targets ---------------------------------------------------

  /**
   * Registers the async function that runs executions naming `name`.
   * @param {string} name
   * @param {import('..').Callable} fn
   * @param {import('..').CallableOptions} [options]
   */
  registerCallable(name, fn, options) {
    stringArg(name, 'name', Code.INVALID_EXECUTION)
    if (typeof fn !== 'function') throw enactError(Code.INVALID_EXECUTION, `fn: expected a function, got ${typeName(fn)}`)
    this.#native.registerCallable(name, optionsText(options, 'options', Code.INVALID_EXECUTION))
    this.#runner.setCallable(name, fn)
    // Claims take only work whose callable is registered: work already
    // waiting for this one (a durable store's backlog, claimed for nothing
    // while `open` started it) starts now, not at the next unrelated wake.
    this.#schedulePump()
  }

  /**
   * Registers the handler that receives bound results for `targetType`.
   * @param {import('..').TargetType} targetType
   * @param {import('..').TargetHandler} fn
   */
  registerTarget(targetType, fn) {
    if (typeof targetType !== 'string' || !protocol.targetTypes.includes(targetType)) {
      throw enactError(Code.INVALID_EXECUTION, `targetType: expected one of ${protocol.targetTypes.join(', ')}`)
    }
    if (typeof fn !== 'function') throw enactError(Code.INVALID_EXECUTION, `fn: expected a function, got ${typeName(fn)}`)
    this.#native.registerTarget(targetType)
    this.#targets.set(targetType, fn)
  }

  // -- executions --------------------------------------------------------------

  /**
   * Queues an execution.
   * @param {import('..').SubmitRequest} request
   * @returns {Promise<import('..').BackgroundExecution>}
   */
  submit(request) {
    if (this.#tracing !== null && request !== null && typeof request === 'object' && request.traceContext === undefined) {
      const traceContext = this.#tracing.carrier()
      if (traceContext !== undefined) request = { ...request, traceContext }
    }
    return this.#submissions.submit(request)
  }

  /**
   * Queues a failed, timed-out or cancelled execution again, its attempts
   * starting over (BullMQ's `job.retry()`); resolves with the queued
   * record. Rejects with `ENACT_NOT_FOUND` for an unknown id and
   * `ENACT_INVALID_STATE` for an execution that is queued, running or
   * completed.
   * @param {string} executionId
   * @returns {Promise<import('..').BackgroundExecution>}
   */
  retry(executionId) {
    return settled(() => {
      stringArg(executionId, 'executionId', Code.INVALID_EXECUTION)
      this.#flushSubmissions()
      return this.#tickets.answer(this.#native.retry(executionId)).then((rec) => {
        this.#schedulePump()
        return rec
      })
    })
  }

  /**
   * Stores a running attempt's `ctx.progress(value)` and, once stored,
   * emits `execution.progress`. A value that is not JSON (or over 16 KiB
   * of it) throws at once, in the callable; the writes of one attempt go
   * to the store one after another, in call order; a store failure is an
   * `engine.diagnostic` (the promise still resolves), so a callable that
   * does not await its progress can never bring the process down with an
   * unhandled rejection.
   * @type {(ctx: import('./runner').Context, value: unknown) => Promise<void>}
   */
  #progress = (ctx, value) => {
    let text
    try {
      text = JSON.stringify(value)
    } catch (err) {
      throw enactError(Code.INVALID_EXECUTION, `progress: expected a number or a JSON value, got one that cannot be serialized (${toThrownError(err, '').message})`)
    }
    if (text === undefined) throw enactError(Code.INVALID_EXECUTION, `progress: expected a number or a JSON value, got ${typeName(value)}`)
    const bytes = Buffer.byteLength(text)
    // Checked here too (Rust checks it again), so that it throws at once.
    if (bytes > maxProgressBytes) throw enactError(Code.INVALID_EXECUTION, `progress: expected at most ${maxProgressBytes} bytes of JSON, got ${bytes}`)
    const { executionId, tenantId, callableName, attempt } = ctx
    const write = () =>
      settled(() => this.#tickets.answer(this.#native.progress(executionId, attempt, text))).then(
        (stored) => {
          if (stored === true && this.#listeners.has('execution.progress')) {
            this.#listeners.emit('execution.progress', { executionId, tenantId, callableName, attempt, progress: JSON.parse(text) })
          }
        },
        (err) => this.#onNotice.diagnostic('progress', err?.code ?? Code.INTERNAL, `${executionId}: ${err?.message ?? err}`),
      )
    const next = (this.#progressChains.get(ctx) ?? Promise.resolve()).then(write)
    this.#progressChains.set(ctx, next)
    return next
  }

  /** The last progress write of each running attempt (they go in order). @type {WeakMap<object, Promise<void>>} */
  #progressChains = new WeakMap()

  /**
   * This engine's metrics in the Prometheus text format (version 0.0.4):
   * counters and histograms of what this engine ran, and gauges of what
   * the store holds (every engine's work, over PostgreSQL).
   * @returns {Promise<string>}
   */
  metrics() {
    return settled(() => {
      this.#flushSubmissions()
      return this.#tickets.answer(this.#native.metrics())
    })
  }

  /**
   * A Node `(req, res)` handler for `http.createServer` or Express that
   * answers a Prometheus scrape with {@link metrics} (500 with the error's
   * message if the store cannot be read).
   * @returns {(req: import('node:http').IncomingMessage, res: import('node:http').ServerResponse) => void}
   */
  metricsHandler() {
    return (_req, res) => {
      this.metrics().then(
        (text) => {
          res.statusCode = 200
          res.setHeader('content-type', 'text/plain; version=0.0.4; charset=utf-8')
          res.setHeader('cache-control', 'no-store')
          res.end(text)
        },
        (err) => {
          res.statusCode = 500
          res.setHeader('content-type', 'text/plain; charset=utf-8')
          res.end(`# metrics unavailable: ${err && err.message}\n`)
        },
      )
    }
  }

  /**
   * Resolves with the execution's final record (after binding). With
   * `signal` or `timeoutMs`, rejects when the signal aborts (with its
   * reason when that is an Error, else `ENACT_CANCELLED`) or the time
   * passes (`ENACT_TIMEOUT`); the execution goes on either way.
   * @param {string} executionId
   * @param {import('..').WaitOptions} [options]
   * @returns {Promise<import('..').BackgroundExecution>}
   */
  wait(executionId, options) {
    let record
    let opts
    try {
      stringArg(executionId, 'executionId', Code.INVALID_EXECUTION)
      opts = waitOptions(options)
      // An aborted signal rejects before anything is watched.
      if (opts.signal !== undefined && opts.signal.aborted) return this.#waiters.add(executionId, opts)
      this.#flushSubmissions()
      record = this.#native.watch(executionId)
    } catch (err) {
      return Promise.reject(err)
    }
    if (typeof record === 'number') {
      // The store answers later: wait first, so that the record settling
      // before the answer comes is not missed.
      const waiting = this.#waitFor(executionId, opts)
      this.#tickets.answer(record).then(
        (rec) => rec !== null && this.#settle(rec),
        (err) => this.#waiters.reject(executionId, err),
      )
      return waiting
    }
    const rec = JSON.parse(record)
    return rec === null ? this.#waitFor(executionId, opts) : Promise.resolve(rec)
  }

  /**
   * Resolves once nothing is queued, running or being bound.
   * @returns {Promise<void>}
   */
  idle() {
    this.#flushSubmissions()
    return new Promise((resolve) => {
      if (this.#closed || this.#native.pending() === 0) return resolve()
      this.#idleWaiters.push(resolve)
      this.#schedulePump()
    })
  }

  /**
   * Cancels a queued or running execution.
   * @param {string} executionId
   * @returns {Promise<boolean>}
   */
  cancel(executionId) {
    return settled(() => {
      stringArg(executionId, 'executionId', Code.INVALID_EXECUTION)
      this.#flushSubmissions()
      const cancelled = this.#tickets.answer(this.#native.cancel(executionId))
      this.#schedulePump()
      return cancelled
    })
  }

  /**
   * The execution's current record, or `null`.
   * @param {string} executionId
   * @returns {Promise<import('..').BackgroundExecution | null>}
   */
  getExecution(executionId) {
    return settled(() => {
      stringArg(executionId, 'executionId', Code.INVALID_EXECUTION)
      this.#flushSubmissions()
      return this.#tickets.answer(this.#native.getExecution(executionId))
    })
  }

  /**
   * Executions, oldest first, optionally filtered.
   * @param {import('..').ExecutionFilter} [filter]
   * @returns {Promise<import('..').BackgroundExecution[]>}
   */
  listExecutions(filter) {
    return settled(() => {
      const text = optionsText(filter, 'filter', Code.INVALID_EXECUTION)
      this.#flushSubmissions()
      return this.#tickets.answer(this.#native.listExecutions(text))
    })
  }

  /**
   * Counters: executions per status, attempts in flight, limits.
   * @returns {Promise<import('..').EngineStats>}
   */
  stats() {
    return settled(() => {
      this.#flushSubmissions()
      return this.#tickets.answer(this.#native.stats())
    })
  }

  /** Hands submissions still held in JS to Rust, so that what follows sees them. */
  #flushSubmissions() {
    if (this.#submissions.pending) this.#submissions.flush()
  }

  // -- triggers -----------------------------------------------------------------
  // Each answers a Promise (a store may be remote), rejected with the
  // error's code and message; the memory store answers at once.

  /**
   * Registers a trigger; returns the stored Trigger.
   * @param {import('..').TriggerDefinition} definition
   * @returns {Promise<import('..').Trigger>}
   */
  registerTrigger(definition) {
    return settled(() => this.#indexed(this.#native.registerTrigger(optionsText(definition, 'definition', Code.INVALID_TRIGGER, ''))))
  }

  /**
   * @param {string} triggerId
   * @returns {Promise<import('..').Trigger>}
   */
  getTrigger(triggerId) {
    return settled(() => this.#tickets.answer(this.#native.getTrigger(stringArg(triggerId, 'triggerId', Code.INVALID_TRIGGER))))
  }

  /**
   * @param {import('..').TriggerFilter} [filter]
   * @returns {Promise<import('..').Trigger[]>}
   */
  listTriggers(filter) {
    return settled(() => this.#tickets.answer(this.#native.listTriggers(optionsText(filter, 'filter', Code.INVALID_TRIGGER))))
  }

  /**
   * @param {string} triggerId
   * @param {import('..').TriggerPatch} patch
   * @returns {Promise<import('..').Trigger>}
   */
  updateTrigger(triggerId, patch) {
    return settled(() => {
      stringArg(triggerId, 'triggerId', Code.INVALID_TRIGGER)
      return this.#indexed(this.#native.updateTrigger(triggerId, optionsText(patch, 'patch', Code.INVALID_TRIGGER)))
    })
  }

  /**
   * @param {string} triggerId
   * @returns {Promise<import('..').Trigger>}
   */
  pauseTrigger(triggerId) {
    return settled(() => this.#tickets.answer(this.#native.pauseTrigger(stringArg(triggerId, 'triggerId', Code.INVALID_TRIGGER))))
  }

  /**
   * @param {string} triggerId
   * @returns {Promise<import('..').Trigger>}
   */
  resumeTrigger(triggerId) {
    return settled(() => this.#tickets.answer(this.#native.resumeTrigger(stringArg(triggerId, 'triggerId', Code.INVALID_TRIGGER))))
  }

  /**
   * @param {string} triggerId
   * @returns {Promise<import('..').Trigger>}
   */
  disableTrigger(triggerId) {
    return settled(() => this.#tickets.answer(this.#native.disableTrigger(stringArg(triggerId, 'triggerId', Code.INVALID_TRIGGER))))
  }

  /**
   * @param {string} triggerId
   * @returns {Promise<void>}
   */
  removeTrigger(triggerId) {
    return settled(() =>
      this.#tickets.answer(this.#native.removeTrigger(stringArg(triggerId, 'triggerId', Code.INVALID_TRIGGER))).then(() => {
        this.#interest.forget(triggerId)
      }),
    )
  }

  /**
   * A trigger Rust answered (now or later), recorded for the prefilter.
   * @param {string | number} out
   * @returns {Promise<import('..').Trigger>}
   */
  #indexed(out) {
    return this.#tickets.answer(out).then((trigger) => {
      this.#interest.index(trigger)
      return trigger
    })
  }

  /**
   * @param {import('..').TriggerEvent} event
   * @returns {Promise<import('..').TriggerFiredEvent[]>}
   */
  emit(event) {
    return this.#stimulus(stimuli.emit, event)
  }

  /**
   * @param {import('..').TriggerEvent[]} events
   * @returns {Promise<import('..').TriggerFiredEvent[]>}
   */
  emitBatch(events) {
    return this.#stimulus(stimuli.emitBatch, events)
  }

  /**
   * @param {import('..').TriggerEvent} event
   * @returns {Promise<import('..').TriggerFiredEvent[]>}
   */
  lifecycle(event) {
    return this.#stimulus(stimuli.lifecycle, event)
  }

  /**
   * @param {import('..').MetricReport} metric
   * @returns {Promise<import('..').TriggerFiredEvent[]>}
   */
  reportMetric(metric) {
    return this.#stimulus(stimuli.metric, metric)
  }

  /**
   * The value crosses to Rust as JSON text and the fires come back as
   * JSON text (null: none fired); events no trigger could match do not
   * cross at all.
   * @param {number} kind
   * @param {unknown} value
   * @returns {Promise<any[]>}
   */
  #stimulus(kind, value) {
    let send
    try {
      send =
        this.#shared ? value
        : kind === stimuli.emit ? this.#interest.filterEvent('event', value)
        : kind === stimuli.lifecycle ? this.#interest.filterEvent('lifecycle', value)
        : kind === stimuli.emitBatch ? this.#interest.filterBatch(value)
        : value
    } catch {
      send = value // a throwing getter: JSON.stringify below reports it
    }
    if (send === NOTHING_FIRED) return Promise.resolve([])
    let out
    try {
      const chain = currentChain()
      const trace = this.#tracing === null ? null : this.#tracing.carrierText()
      out = this.#native.stimulus(kind, dataText(send, STIMULUS_FIELD[kind], Code.INVALID_TRIGGER), chain?.root ?? null, chain?.depth ?? 0, trace)
    } catch (err) {
      return Promise.reject(err)
    }
    return this.#tickets.answer(out).then((fired) => {
      if (fired === null) {
        // Nothing fired, but a fire refused by the loop guard left a notice.
        if (this.#listeners.has('trigger.loop_blocked')) this.#schedulePump()
        return []
      }
      this.#schedulePump()
      return fired
    })
  }

  /**
   * Why `event` would or would not fire each trigger of its tenant: for
   * `emit` (default) or, with `options.source: 'lifecycle'`, `lifecycle`.
   * Fires, counts and changes nothing. Made inside a callable, it is
   * judged in that callable's chain, as an `emit` made there would be.
   * @param {import('..').TriggerEvent} event
   * @param {import('..').ExplainOptions} [options]
   * @returns {Promise<import('..').TriggerExplanation[]>}
   */
  explain(event, options) {
    return settled(() => {
      const text = dataText(event, 'event', Code.INVALID_TRIGGER)
      const opts = optionsText(options, 'options', Code.INVALID_TRIGGER)
      const chain = currentChain()
      return this.#tickets.answer(this.#native.explain(text, opts, chain?.root ?? null, chain?.depth ?? 0))
    })
  }

  /**
   * `explain` for a metric report and the tenant's threshold triggers:
   * the arming is read, never changed.
   * @param {import('..').MetricReport} metric
   * @returns {Promise<import('..').TriggerExplanation[]>}
   */
  explainMetric(metric) {
    return settled(() => {
      const text = dataText(metric, 'metric', Code.INVALID_TRIGGER)
      const chain = currentChain()
      return this.#tickets.answer(this.#native.explainMetric(text, chain?.root ?? null, chain?.depth ?? 0))
    })
  }

  /**
   * Fires a trigger now with `payload` as its source.
   * @param {string} triggerId
   * @param {unknown} [payload]
   * @returns {Promise<import('..').TriggerFiredEvent>}
   */
  fire(triggerId, payload) {
    return settled(() => {
      stringArg(triggerId, 'triggerId', Code.INVALID_TRIGGER)
      const chain = currentChain()
      const trace = this.#tracing === null ? null : this.#tracing.carrierText()
      return this.#fired(this.#native.fire(triggerId, dataText(payload, 'payload', Code.INVALID_TRIGGER), chain?.root ?? null, chain?.depth ?? 0, trace))
    })
  }

  /**
   * Delivers a webhook request to a webhook trigger.
   * @param {string} triggerId
   * @param {import('..').WebhookRequest} request
   * @returns {Promise<import('..').TriggerFiredEvent>}
   */
  webhook(triggerId, request) {
    return settled(() => {
      stringArg(triggerId, 'triggerId', Code.INVALID_TRIGGER)
      if (request === null || typeof request !== 'object') {
        throw enactError(Code.INVALID_TRIGGER, `request: expected an object { headers, body }, got ${typeName(request)}`)
      }
      return /** @type {Promise<import('..').TriggerFiredEvent>} */ (this.#deliverWebhook(triggerId, request.headers, bodyBytes(request.body)))
    })
  }

  /**
   * A fire Rust answered (now or later): its execution is queued, so start it.
   * @param {string | number} out
   * @returns {Promise<any>}
   */
  #fired(out) {
    return this.#tickets.answer(out).then((fired) => {
      this.#schedulePump()
      return fired
    })
  }

  /**
   * A Node `(req, res)` handler for `http.createServer` or Express.
   * @param {import('..').WebhookHandlerOptions} [options]
   * @returns {import('..').WebhookHandler}
   */
  webhookHandler(options) {
    const [maxBodyBytes, bodyTimeoutMs] = this.#native.webhookHandlerOptions(optionsText(options, 'options', Code.INVALID_TRIGGER))
    const handle = createWebhookHandler(this.#deliverWebhook, maxBodyBytes, bodyTimeoutMs)
    const native = this.#native
    /** @type {import('..').WebhookHandler} */
    const counted = (req, res) => {
      // Each answer counts in `enact_webhook_requests_total{code}`.
      // 'close' also when the socket was destroyed after an early answer.
      res.once('close', () => native.recordWebhook(res.statusCode))
      return handle(req, res)
    }
    return counted
  }

  /**
   * What both webhook handlers call with a request they read: fires the
   * trigger (resolves with the TriggerFiredEvent) or throws (or rejects
   * with) an error with a code.
   * @type {(triggerId: string, headers: unknown, body: Buffer) => Promise<unknown>}
   */
  #deliverWebhook = (triggerId, headers, body) =>
    this.#fired(this.#native.webhook(triggerId, optionsText(headers, 'request.headers', Code.INVALID_TRIGGER), body))

  /**
   * A fetch-style `(request: Request) => Promise<Response>` handler (Hono,
   * Next.js route handlers, Bun, Deno, Cloudflare-style servers), with the
   * answers of `webhookHandler()`.
   * @param {import('..').WebhookHandlerOptions} [options]
   * @returns {import('..').WebhookFetchHandler}
   */
  webhookFetchHandler(options) {
    const [maxBodyBytes, bodyTimeoutMs] = this.#native.webhookHandlerOptions(optionsText(options, 'options', Code.INVALID_TRIGGER))
    const handle = createFetchWebhookHandler(this.#deliverWebhook, maxBodyBytes, bodyTimeoutMs)
    const native = this.#native
    return async (request) => {
      const response = await handle(request)
      native.recordWebhook(response.status)
      return response
    }
  }

  // -- dashboard ------------------------------------------------------------------

  /**
   * A Node `(req, res, next?)` handler serving the dashboard page and its
   * JSON API (lib/dashboard/).
   * @param {import('..').DashboardOptions} [options]
   * @returns {import('..').DashboardHandler}
   */
  dashboardHandler(options) {
    return createDashboardHandler(this, options, this.#dashboardSampler())
  }

  /**
   * The dashboard as a fetch-style `(request: Request) => Promise<Response>` handler.
   * @param {import('..').DashboardOptions<Request>} [options]
   * @returns {import('..').DashboardFetchHandler}
   */
  dashboardFetchHandler(options) {
    return createDashboardFetchHandler(this, options, this.#dashboardSampler())
  }

  /** The one sampler of this engine's dashboards (closed once it shut down). */
  #dashboardSampler() {
    if (this.#sampler === null) {
      this.#sampler = new Sampler(this)
      if (this.#shutdown !== null) this.#sampler.close()
    }
    return this.#sampler
  }

  // -- time -----------------------------------------------------------------------

  /**
   * The engine's current time: the system time, or where a manual clock
   * stands.
   * @returns {Date}
   */
  now() {
    return new Date(this.#native.now())
  }

  /**
   * Moves a manual clock (`clock: 'manual'`) forward by `ms` and runs what
   * comes due on the way, in time order: delayed and backoff executions
   * start, attempts past their deadline time out, target handlers past
   * `bindingTimeoutMs` fail their binding, schedule ticks fire —
   * each due instant in its own step (so a per-minute cron advanced 10
   * minutes fires 10 times), with the work each step starts given an
   * event-loop turn to settle before the next. Resolves once the clock
   * reads start + `ms` and everything due by then was run: the attempts
   * that could start were started, those of callables that settle without
   * waiting on I/O or timers have ended, and their notices (events,
   * waiters) were delivered. Calls made together run one after another.
   * @param {number} ms
   * @returns {Promise<void>}
   */
  advanceTime(ms) {
    if (typeof ms !== 'number' || !Number.isFinite(ms) || ms < 0 || ms > MAX_ADVANCE_MS) {
      const got = typeof ms === 'number' ? String(ms) : typeName(ms)
      return Promise.reject(enactError(Code.INVALID_EXECUTION, `ms: expected a non-negative number of milliseconds up to ${MAX_ADVANCE_MS} (100 years), got ${got}`))
    }
    if (!this.#manualClock) {
      return Promise.reject(
        enactError(
          Code.INVALID_EXECUTION,
          "advanceTime: this engine runs on the system clock; create it with new BackgroundEngine({ clock: 'manual' }) to move its time",
        ),
      )
    }
    if (this.#shutdown !== null) return Promise.reject(enactError(Code.SHUTDOWN, 'advanceTime: engine is shut down'))
    const run = this.#advancing.then(() => this.#advance(ms))
    this.#advancing = run.catch(() => {})
    return run
  }

  /**
   * One `advanceTime`: steps the clock to each due time up to the target.
   * @param {number} ms
   */
  async #advance(ms) {
    const native = this.#native
    // First let work already started settle, so that what it arms (a
    // retry's backoff) counts from the time it ended, not later.
    this.#flushSubmissions()
    await this.#quiesce()
    const target = native.now() + ms
    // Work that keeps coming due at one instant (zero backoff) is bounded
    // by its attempts, so the clock always moves on; `stuck` only guards
    // against a bug that would make one instant due forever.
    for (let last = NaN, stuck = 0; ; ) {
      if (this.#shutdown !== null) throw enactError(Code.SHUTDOWN, 'advanceTime: the engine shut down before its clock reached the target')
      const due = this.#nextDue()
      let to = due !== null && due < target ? due : target
      stuck = to === last ? stuck + 1 : 0
      if (stuck > 100_000) to = target
      last = to
      await this.#tickets.answer(native.advanceTo(to))
      for (const deadline of this.#bindingDeadlines) {
        if (deadline.at <= to) {
          this.#bindingDeadlines.delete(deadline)
          deadline.expire()
        }
      }
      this.#sync()
      await this.#quiesce()
      if (to >= target) {
        const again = this.#nextDue()
        if (again === null || again > target || stuck > 100_000) return
      }
    }
  }

  /** The earliest time timed work may be due (engine ms), or null. */
  #nextDue() {
    let due = this.#native.nextDue()
    for (const { at } of this.#bindingDeadlines) if (due === null || at < due) due = at
    return due
  }

  /**
   * Lets the work just started run as far as it goes without I/O or
   * timers: event-loop turns (real ones, whatever fake timers a test
   * installed) until no slice of engine work is put off, and no call of a
   * durable store is in flight (its claims, fires and completions land
   * before the clock moves on, as the memory store's do at once).
   */
  async #quiesce() {
    for (;;) {
      await timers.nextTurn()
      if (this.#slicer.yielding) continue
      if (this.#native.storeCalls() === 0) return
      await new Promise((resolve) => this.#pumpWaiters.push(() => resolve(undefined)))
    }
  }

  // -- events ---------------------------------------------------------------------

  /**
   * Adds a listener; returns the function that removes it.
   * @param {import('..').EngineEventName} event
   * @param {(payload: any) => void} listener
   * @returns {() => void}
   */
  on(event, listener) {
    return this.#listeners.on(event, listener)
  }

  /**
   * Adds a listener for the next event of that name only; returns the
   * function that removes it before it ran.
   * @param {import('..').EngineEventName} event
   * @param {(payload: any) => void} listener
   * @returns {() => void}
   */
  once(event, listener) {
    return this.#listeners.once(event, listener)
  }

  /**
   * @param {import('..').EngineEventName} event
   * @param {(payload: any) => void} listener
   */
  off(event, listener) {
    this.#listeners.off(event, listener)
  }

  // -- shutdown -------------------------------------------------------------------

  /**
   * Stops taking work, lets running work finish for up to `timeoutMs`,
   * then aborts what is left and rejects pending waiters. A durable store
   * first answers the calls in flight, and is closed last (its file and
   * lock released: another engine may open it).
   * @param {import('..').ShutdownOptions} [options]
   * @returns {Promise<void>}
   */
  shutdown(options) {
    let timeoutMs
    try {
      this.#flushSubmissions()
      timeoutMs = this.#native.shutdownTimeout(optionsText(options, 'options', Code.INVALID_EXECUTION, ''))
    } catch (err) {
      return Promise.reject(err)
    }
    if (this.#shutdown !== null) return this.#shutdown
    this.#sampler?.close()
    const native = this.#native
    native.beginShutdown()
    this.#shutdown = new Promise((resolve) => {
      /** @type {NodeJS.Timeout | null} */
      let timer = null
      const finish = () => {
        if (this.#onIdle === null) return
        this.#onIdle = null
        if (timer !== null) timers.clearTimeout(timer)
        native.finishShutdown()
        const notices = native.drain()
        if (notices !== null) this.#deliver(notices)
        if (!this.#durable) {
          native.close()
          return resolve()
        }
        // The store answers what was asked before the close, then closes;
        // their answers may come after the close's (each comes on its own),
        // so they are awaited before anything left is refused.
        const earlier = this.#tickets.answered()
        const closed = () => {
          void earlier.then(() => {
            const last = native.drain()
            if (last !== null) this.#deliver(last)
            this.#tickets.rejectAll(() => enactError(Code.SHUTDOWN, 'engine shut down before its store answered'))
            native.close()
            resolve()
          })
        }
        this.#tickets.answer(native.closeStore()).then(closed, (err) => {
          warn('enact-background: closing the store failed', err)
          closed()
        })
      }
      const begin = () => {
        this.#onIdle = finish
        if (native.busy() === 0) return finish()
        timer = timers.setTimeout(finish, timeoutMs)
      }
      // Calls the store has not answered yet (a submit, a fire) end first,
      // for at most timeoutMs (each is bounded by the store's own timeout).
      if (this.#tickets.size > 0) {
        let started = false
        const once = () => {
          if (started) return
          started = true
          begin()
        }
        void this.#tickets.answered().then(once)
        timers.setTimeout(once, timeoutMs).unref()
      } else begin()
    })
    return this.#shutdown
  }

  /**
   * `await using engine = new BackgroundEngine()`: `shutdown()` with its
   * defaults when the scope ends.
   * @returns {Promise<void>}
   */
  [asyncDispose]() {
    return this.shutdown()
  }
}

module.exports = { BackgroundEngine }
