// @ts-check
'use strict'
// The public engine: a plain JS class that owns the API. It holds the
// native engine (`NativeEngine` from binding.js) and the JS runtime parts
// as private fields and calls named native methods. Calls go one way: JS
// asks Rust, Rust answers. Rust reaches JS only through the wake function
// handed to the native constructor (a weak threadsafe function, ref'd
// while work is queued or running), when a timer produced work.

const { NativeEngine, bindingTimeoutMs } = require('./native')
const protocol = require('./protocol')
const { Code, enactError, toThrownError, warn } = require('./errors')
const { Runner, Slicer, currentChain, inChainOf } = require('./runner')
const { Listeners, dispatch } = require('./notices')
const { Submissions } = require('./submissions')
const { Interest, NOTHING_FIRED } = require('./prefilter')
const { postCallback } = require('./callbacks')
const { createWebhookHandler } = require('./webhook-handler')
const { dataText, optionsText, stringArg, typeName } = require('./args')

const { stimuli } = protocol
const STIMULUS_FIELD = { [stimuli.emit]: 'event', [stimuli.emitBatch]: 'events', [stimuli.lifecycle]: 'event', [stimuli.metric]: 'metric' }

/**
 * A webhook body as bytes: a string (UTF-8), a Buffer or typed array as
 * is, anything else as its JSON text; absent is empty.
 * @param {unknown} body
 * @returns {Buffer}
 */
function bodyBytes(body) {
  if (body === undefined || body === null) return Buffer.alloc(0)
  if (typeof body === 'string') return Buffer.from(body)
  if (Buffer.isBuffer(body)) return body
  if (ArrayBuffer.isView(body)) return Buffer.from(body.buffer, body.byteOffset, body.byteLength)
  return Buffer.from(dataText(body, 'request.body', Code.INVALID_TRIGGER))
}

/**
 * `fn()`'s value as a settled promise: a throw becomes a rejection.
 * @template T
 * @param {() => T} fn
 * @returns {Promise<T>}
 */
function settled(fn) {
  try {
    return Promise.resolve(fn())
  } catch (err) {
    return Promise.reject(err)
  }
}

class BackgroundEngine {
  /** @type {NativeEngine} */
  #native
  #listeners
  #runner
  #slicer
  #submissions
  #interest = new Interest()
  /** @type {Map<string, Function>} */
  #targets = new Map()
  /** @type {Map<string, { resolve: (record: any) => void, reject: (err: Error) => void }[]>} */
  #waiters = new Map()
  /** @type {(() => void)[]} */
  #idleWaiters = []
  /** @type {(() => void) | null} */
  #onIdle = null
  /** @type {Promise<void> | null} */
  #shutdown = null
  #pumpScheduled = false
  #closed = false
  /** How long a target handler may take (`bindingTimeoutMs`). */
  #bindingTimeoutMs

  /**
   * Creates an engine. Throws `ENACT_INVALID_EXECUTION` for bad options and
   * `ENACT_STORE` for a store that is not available.
   * @param {import('..').EngineOptions} [options]
   */
  constructor(options) {
    const text = optionsText(options, 'options', Code.INVALID_EXECUTION, '')
    this.#bindingTimeoutMs = bindingTimeoutMs(text)
    this.#native = new NativeEngine(text, BackgroundEngine.#waker(this), this)
    const native = this.#native
    this.#listeners = new Listeners(protocol.eventNames, (name, on) => native.setInterest(name, on))
    this.#runner = new Runner({
      complete: (batch) => native.complete(batch),
      emit: (name, payload) => this.#listeners.emit(name, payload),
      afterFlush: () => this.#sync(),
    })
    this.#slicer = new Slicer(() => this.#sync())
    this.#submissions = new Submissions({
      submitBatch: (text, chains) => native.submitBatch(text, chains),
      waitFor: (id) => this.#waitFor(id),
      defaultConfig: protocol.defaultConfig,
      afterFlush: () => this.#sync(),
    })
    // Triggers the store already holds (none in a new memory store).
    for (const t of JSON.parse(native.listTriggers('null'))) this.#interest.index(t)
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
    queueMicrotask(() => {
      this.#pumpScheduled = false
      this.#sync()
    })
  }

  /** Delivers pending notices and starts whatever may start now. */
  #sync() {
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
    // Listeners of an execution's events run in its chain, like its
    // callable: an `emit` made from `on('execution.completed')` continues
    // the chain rather than starting a new one.
    event: (name, /** @type {any} */ payload) =>
      typeof payload.executionId === 'string' && typeof payload.status === 'string'
        ? inChainOf(payload, () => this.#listeners.emit(name, payload), undefined)
        : this.#listeners.emit(name, payload),
    settled: (record) => this.#settle(record),
    abort: (id, attempt, reason) => this.#runner.abort(id, attempt, reason),
    bind: (record, targetType, value) => this.#bind(record, targetType, value),
    callback: (record) => void postCallback(record),
    closed: () => {
      this.#closed = true
      for (const [id, list] of this.#waiters) for (const w of list) w.reject(this.#shutdownError(id))
      this.#waiters.clear()
      this.#runner.abortAll()
      this.#resolveIdle()
    },
    diagnostic: (source, code, message) => {
      if (this.#listeners.has('engine.diagnostic')) this.#listeners.emit('engine.diagnostic', { source, code, message })
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
   * @returns {Promise<any>}
   */
  #waitFor(id) {
    return new Promise((resolve, reject) => {
      if (this.#closed) return reject(this.#shutdownError(id))
      let list = this.#waiters.get(id)
      if (list === undefined) this.#waiters.set(id, (list = []))
      list.push({ resolve, reject })
    })
  }

  /** @param {any} record */
  #settle(record) {
    const list = this.#waiters.get(record.executionId)
    if (list === undefined) return
    this.#waiters.delete(record.executionId)
    for (const w of list) w.resolve(record)
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
        // execution), so that silent waiters and idle() are answered.
        const ms = this.#bindingTimeoutMs
        const timer = setTimeout(() => done(`target handler did not settle within ${ms} ms (bindingTimeoutMs)`), ms).unref()
        then.call(
          out,
          () => (clearTimeout(timer), done(null)),
          (/** @type {unknown} */ err) => (clearTimeout(timer), failed(err)),
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
    return this.#submissions.submit(request)
  }

  /**
   * Resolves with the execution's final record (after binding).
   * @param {string} executionId
   * @returns {Promise<import('..').BackgroundExecution>}
   */
  wait(executionId) {
    let record
    try {
      stringArg(executionId, 'executionId', Code.INVALID_EXECUTION)
      this.#flushSubmissions()
      record = this.#native.watch(executionId)
    } catch (err) {
      return Promise.reject(err)
    }
    return record === null ? this.#waitFor(executionId) : Promise.resolve(JSON.parse(record))
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
      const cancelled = this.#native.cancel(executionId)
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
      const record = this.#native.getExecution(executionId)
      return record === null ? null : JSON.parse(record)
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
      return JSON.parse(this.#native.listExecutions(text))
    })
  }

  /**
   * Counters: executions per status, attempts in flight, limits.
   * @returns {Promise<import('..').EngineStats>}
   */
  stats() {
    return settled(() => {
      this.#flushSubmissions()
      return this.#native.stats()
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
    return settled(() => JSON.parse(this.#native.getTrigger(stringArg(triggerId, 'triggerId', Code.INVALID_TRIGGER))))
  }

  /**
   * @param {import('..').TriggerFilter} [filter]
   * @returns {Promise<import('..').Trigger[]>}
   */
  listTriggers(filter) {
    return settled(() => JSON.parse(this.#native.listTriggers(optionsText(filter, 'filter', Code.INVALID_TRIGGER))))
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
    return settled(() => JSON.parse(this.#native.pauseTrigger(stringArg(triggerId, 'triggerId', Code.INVALID_TRIGGER))))
  }

  /**
   * @param {string} triggerId
   * @returns {Promise<import('..').Trigger>}
   */
  resumeTrigger(triggerId) {
    return settled(() => JSON.parse(this.#native.resumeTrigger(stringArg(triggerId, 'triggerId', Code.INVALID_TRIGGER))))
  }

  /**
   * @param {string} triggerId
   * @returns {Promise<import('..').Trigger>}
   */
  disableTrigger(triggerId) {
    return settled(() => JSON.parse(this.#native.disableTrigger(stringArg(triggerId, 'triggerId', Code.INVALID_TRIGGER))))
  }

  /**
   * @param {string} triggerId
   * @returns {Promise<void>}
   */
  removeTrigger(triggerId) {
    return settled(() => {
      this.#native.removeTrigger(stringArg(triggerId, 'triggerId', Code.INVALID_TRIGGER))
      this.#interest.forget(triggerId)
    })
  }

  /**
   * A trigger Rust answered, recorded for the prefilter.
   * @param {string} text
   * @returns {import('..').Trigger}
   */
  #indexed(text) {
    const trigger = JSON.parse(text)
    this.#interest.index(trigger)
    return trigger
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
        kind === stimuli.emit ? this.#interest.filterEvent('event', value)
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
      out = this.#native.stimulus(kind, dataText(send, STIMULUS_FIELD[kind], Code.INVALID_TRIGGER), chain?.root ?? null, chain?.depth ?? 0)
    } catch (err) {
      return Promise.reject(err)
    }
    if (out === null) {
      // Nothing fired, but a fire refused by the loop guard left a notice.
      if (this.#listeners.has('trigger.loop_blocked')) this.#schedulePump()
      return Promise.resolve([])
    }
    this.#schedulePump()
    return Promise.resolve(JSON.parse(out))
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
      return this.#fired(this.#native.fire(triggerId, dataText(payload, 'payload', Code.INVALID_TRIGGER), chain?.root ?? null, chain?.depth ?? 0))
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
      const headers = optionsText(request.headers, 'request.headers', Code.INVALID_TRIGGER)
      return this.#fired(this.#native.webhook(triggerId, headers, bodyBytes(request.body)))
    })
  }

  /**
   * A fire Rust answered: its execution is queued, so start it.
   * @param {string} text
   */
  #fired(text) {
    this.#schedulePump()
    return JSON.parse(text)
  }

  /**
   * A Node `(req, res)` handler for `http.createServer` or Express.
   * @param {import('..').WebhookHandlerOptions} [options]
   * @returns {import('..').WebhookHandler}
   */
  webhookHandler(options) {
    const [maxBodyBytes, bodyTimeoutMs] = this.#native.webhookHandlerOptions(optionsText(options, 'options', Code.INVALID_TRIGGER))
    /** @type {(triggerId: string, headers: unknown, body: Buffer) => unknown} */
    const deliver = (triggerId, headers, body) =>
      this.#fired(this.#native.webhook(triggerId, optionsText(headers, 'request.headers', Code.INVALID_TRIGGER), body))
    return createWebhookHandler(deliver, maxBodyBytes, bodyTimeoutMs)
  }

  // -- events ---------------------------------------------------------------------

  /**
   * @param {import('..').EngineEventName} event
   * @param {(payload: any) => void} listener
   */
  on(event, listener) {
    this.#listeners.on(event, listener)
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
   * then aborts what is left and rejects pending waiters.
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
    const native = this.#native
    native.beginShutdown()
    this.#shutdown = new Promise((resolve) => {
      /** @type {NodeJS.Timeout | null} */
      let timer = null
      const finish = () => {
        if (this.#onIdle === null) return
        this.#onIdle = null
        if (timer !== null) clearTimeout(timer)
        native.finishShutdown()
        const notices = native.drain()
        if (notices !== null) this.#deliver(notices)
        native.close()
        resolve()
      }
      this.#onIdle = finish
      if (native.busy() === 0) return finish()
      timer = setTimeout(finish, timeoutMs)
    })
    return this.#shutdown
  }
}

module.exports = { BackgroundEngine }
