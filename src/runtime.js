// The JavaScript half of the executor's host. The addon evaluates this file
// once per engine and calls the returned factory with a table of native
// functions. It runs callables, batches their results back to Rust, owns
// the promise waiters and the event listeners.
//
// Why it exists: awaiting a JS promise from Rust per job is the slow path
// (NAPI-NOTES.md). Here JS awaits each callable itself and reports results
// to Rust in one synchronous call per microtask batch; Rust answers with the
// next batch of attempts to start. No thread hop per job.
(function createRuntime(native) {
  'use strict'

  const callables = new Map()
  const targets = new Map()
  const listeners = new Map()
  const waiters = new Map()
  const inflight = new Map()
  let results = []
  let flushScheduled = false
  let pumpScheduled = false
  let bindingsPending = 0
  let callbacksPending = 0
  let onIdle = null
  let idleWaiters = []
  let shutdownPromise = null
  let closed = false

  function warn(message, err) {
    const detail = err && err.stack ? err.stack : String(err)
    process.emitWarning(`${message}: ${detail}`, { code: 'ENACT_LISTENER' })
  }

  function shutdownError(id) {
    const err = new Error(`engine shut down before execution ${JSON.stringify(id)} finished`)
    err.code = 'ENACT_SHUTDOWN'
    return err
  }

  function emit(name, payload) {
    const set = listeners.get(name)
    if (!set) return
    for (const fn of [...set]) {
      try {
        fn(payload)
      } catch (err) {
        warn(`listener for ${name} threw`, err)
      }
    }
  }

  class Context {
    constructor(job) {
      this.executionId = job.executionId
      this.tenantId = job.tenantId
      this.callableName = job.callableName
      this.input = job.input
      this.context = job.context || {}
      this.attempt = job.attempt
      this.triggerId = job.triggerId
      this.triggerSource = job.triggerSource
      this._stream = job.stream
      this._controller = null
      this._abortReason = undefined
      this._settled = false
    }

    /** Aborts on timeout, cancellation or shutdown. Created on first use. */
    get signal() {
      if (this._controller === null) {
        this._controller = new AbortController()
        if (this._abortReason !== undefined) this._controller.abort(this._abortReason)
      }
      return this._controller.signal
    }

    /** Delivers a chunk as an `execution.stream` event (deferred mode only). */
    stream(chunk) {
      if (!this._stream || this._abortReason !== undefined) return
      emit('execution.stream', {
        executionId: this.executionId,
        tenantId: this.tenantId,
        callableName: this.callableName,
        attempt: this.attempt,
        chunk,
      })
    }

    _abort(reason) {
      if (this._abortReason !== undefined) return
      this._abortReason = reason
      if (this._controller !== null) this._controller.abort(reason)
    }
  }

  function schedulePump() {
    if (pumpScheduled) return
    pumpScheduled = true
    queueMicrotask(pump)
  }

  function scheduleFlush() {
    if (flushScheduled) return
    flushScheduled = true
    queueMicrotask(flush)
  }

  function pump() {
    pumpScheduled = false
    sync()
  }

  // Batches chain through microtasks, which Node runs before any timer or
  // I/O callback. So that a stream of instant callables (or a chain of
  // triggers) cannot starve the event loop, work that has run for longer
  // than SLICE_MS without the loop turning continues in a macrotask.
  const SLICE_MS = 10
  let sliceStart = -1
  let yieldScheduled = false

  function endSlice() {
    sliceStart = -1
  }

  function resumeAfterYield() {
    yieldScheduled = false
    sliceStart = -1
    sync()
  }

  function overBudget() {
    const now = performance.now()
    if (sliceStart < 0) {
      sliceStart = now
      setImmediate(endSlice)
      return false
    }
    if (now - sliceStart <= SLICE_MS) return false
    if (!yieldScheduled) {
      yieldScheduled = true
      setImmediate(resumeAfterYield)
    }
    return true
  }

  function flush() {
    flushScheduled = false
    const batch = results
    results = []
    if (batch.length > 0) native.complete('[' + batch.join(',') + ']')
    sync()
  }

  // Delivers pending notices and starts whatever may start now.
  function sync() {
    if (overBudget()) return
    const notices = native.drain()
    if (notices !== null) deliver(notices)
    const jobs = native.take()
    if (jobs !== null) start(JSON.parse(jobs))
    if (onIdle !== null && native.busy() === 0) onIdle()
    if (idleWaiters.length > 0 && native.pending() === 0) resolveIdle()
  }

  function resolveIdle() {
    const list = idleWaiters
    idleWaiters = []
    for (const resolve of list) resolve()
  }

  function start(jobs) {
    for (let i = 0; i < jobs.length; i++) {
      const job = jobs[i]
      const ctx = new Context(job)
      inflight.set(job.executionId, ctx)
      const fn = callables.get(job.callableName)
      if (fn === undefined) {
        fail(ctx, { message: `no callable registered as ${JSON.stringify(job.callableName)}`, retryable: false }, '')
        continue
      }
      let out
      try {
        out = fn(ctx)
      } catch (err) {
        fail(ctx, err)
        continue
      }
      if (out !== null && (typeof out === 'object' || typeof out === 'function')) {
        let then
        try {
          then = out.then
        } catch (err) {
          fail(ctx, err)
          continue
        }
        if (typeof then === 'function') {
          try {
            then.call(out, (value) => succeed(ctx, value), (err) => fail(ctx, err))
          } catch (err) {
            fail(ctx, err)
          }
          continue
        }
      }
      succeed(ctx, out)
    }
  }

  function release(ctx) {
    if (ctx._settled) return false
    ctx._settled = true
    if (inflight.get(ctx.executionId) === ctx) inflight.delete(ctx.executionId)
    return true
  }

  function succeed(ctx, value) {
    if (!release(ctx)) return
    let output
    try {
      output = JSON.stringify(value)
    } catch (err) {
      return report(ctx, null, {
        message: `callable returned a value that is not JSON-serializable: ${describe(err)}`,
        retryable: false,
      })
    }
    if (output === undefined) {
      return report(ctx, null, {
        message: `callable returned ${value === undefined ? 'undefined' : typeof value}; return a JSON value (use null for "nothing")`,
        retryable: false,
      })
    }
    report(ctx, output, null)
  }

  function describe(err) {
    try {
      // Duck-typed: errors from other realms (vm contexts, Jest) are not `instanceof Error`.
      if (err !== null && typeof err === 'object' && typeof err.message === 'string') return err.message
      return String(err)
    } catch {
      return Object.prototype.toString.call(err)
    }
  }

  function fail(ctx, err, prefix = 'callable threw: ') {
    if (!release(ctx)) return
    const error = { message: prefix + describe(err), retryable: !(err !== null && typeof err === 'object' && err.retryable === false) }
    try {
      if (err !== null && typeof err === 'object') {
        if (typeof err.code === 'string') error.code = err.code
        if (typeof err.name === 'string') error.name = err.name
        if (typeof err.stack === 'string') error.stack = err.stack
      }
    } catch {
      // a hostile error object; its message is enough
    }
    report(ctx, null, error)
  }

  // Results cross to Rust as one JSON text per batch; `output` is already
  // JSON text, so it is spliced in rather than encoded twice.
  function report(ctx, output, error) {
    const head = '{"executionId":' + JSON.stringify(ctx.executionId) + ',"attempt":' + ctx.attempt
    results.push(error === null ? head + ',"output":' + output + '}' : head + ',"error":' + JSON.stringify(error) + '}')
    scheduleFlush()
  }

  function deliver(notices) {
    for (let i = 0; i < notices.length; i++) {
      const n = notices[i]
      switch (n[0]) {
        case 'event':
          emit(n[1], n[2])
          break
        case 'settled':
          settle(n[1])
          break
        case 'abort': {
          const ctx = inflight.get(n[1])
          if (ctx !== undefined && ctx.attempt === n[2]) {
            inflight.delete(n[1])
            ctx._abort(abortReason(n[3], n[1]))
          }
          break
        }
        case 'bind':
          bind(n[1], n[2], n[3])
          break
        case 'callback':
          postCallback(n[1])
          break
        case 'diagnostic':
          warn(`enact-background ${n[1]} failed (it goes on)`, `${n[2]}: ${n[3]}`)
          break
        case 'closed':
          closed = true
          for (const [id, list] of waiters) for (const w of list) w.reject(shutdownError(id))
          waiters.clear()
          for (const ctx of inflight.values()) ctx._abort(abortReason('shutdown'))
          inflight.clear()
          resolveIdle()
          break
      }
    }
  }

  function abortReason(why, id) {
    const err = new Error(why === 'timeout' ? `execution ${id} timed out` : why === 'cancel' ? `execution ${id} was cancelled` : 'engine is shutting down')
    err.name = why === 'timeout' ? 'TimeoutError' : 'AbortError'
    err.code = why === 'timeout' ? 'ENACT_TIMEOUT' : why === 'cancel' ? 'ENACT_CANCELLED' : 'ENACT_SHUTDOWN'
    return err
  }

  function waitFor(id) {
    return new Promise((resolve, reject) => {
      if (closed) return reject(shutdownError(id))
      let list = waiters.get(id)
      if (list === undefined) waiters.set(id, (list = []))
      list.push({ resolve, reject })
    })
  }

  function settle(record) {
    const list = waiters.get(record.executionId)
    if (list === undefined) return
    waiters.delete(record.executionId)
    for (const w of list) w.resolve(record)
  }

  function bind(record, targetType, value) {
    const handler = targets.get(targetType)
    bindingsPending++
    const binding = record.config.targetBinding
    const done = (error) => {
      bindingsPending--
      if (closed) return
      native.bindingDone(record.executionId, error)
      sync()
    }
    const failed = (err) => done(`target handler threw: ${describe(err)}`)
    try {
      const out = handler(value, { execution: record, targetType, targetPath: binding.targetPath, threadId: binding.threadId, executionId: binding.executionId })
      if (out !== null && typeof out === 'object' && typeof out.then === 'function') out.then(() => done(null), failed)
      else done(null)
    } catch (err) {
      failed(err)
    }
  }

  // -- submissions ----------------------------------------------------------
  // submit() only queues the request here; a microtask (or every
  // SUBMIT_CHUNK requests) hands the batch to Rust as one JSON text, and
  // Rust answers with one JSON text. For a submission with the default
  // config Rust sends back only [executionId, queuedAt] and the record is
  // built here, which costs a fraction of converting it field by field.
  const SUBMIT_CHUNK = 1024
  const defaultConfig = native.defaultConfig
  let submitRequests = []
  let submitSettlers = []
  let submitScheduled = false

  function submit(request) {
    return new Promise((resolve, reject) => {
      if (submitRequests.length === 0) native.markSubmits()
      submitRequests.push(request)
      submitSettlers.push(resolve, reject)
      if (submitRequests.length >= SUBMIT_CHUNK) flushSubmits()
      else if (!submitScheduled) {
        submitScheduled = true
        queueMicrotask(flushSubmitsAndSync)
      }
    })
  }

  function flushSubmitsAndSync() {
    flushSubmits()
    sync()
  }

  function invalidRequest(err) {
    const e = new Error(`request: cannot be sent as JSON (${describe(err)})`)
    e.code = 'ENACT_INVALID_EXECUTION'
    return e
  }

  function flushSubmits() {
    submitScheduled = false
    const requests = submitRequests
    const settlers = submitSettlers
    if (requests.length === 0) return
    submitRequests = []
    submitSettlers = []
    let text
    let refused = null
    try {
      text = JSON.stringify(requests)
    } catch {
      // Some request is not JSON (a BigInt, a cycle): refuse those alone.
      refused = new Map()
      const parts = []
      for (let i = 0; i < requests.length; i++) {
        try {
          parts.push(JSON.stringify(requests[i]) ?? 'null')
        } catch (err) {
          refused.set(i, invalidRequest(err))
          parts.push('null')
        }
      }
      text = '[' + parts.join(',') + ']'
    }
    let answers
    try {
      answers = JSON.parse(native.submitBatch(text))
    } catch (err) {
      for (let i = 1; i < settlers.length; i += 2) settlers[i](err)
      return
    }
    for (let i = 0; i < answers.length; i++) {
      const resolve = settlers[2 * i]
      const reject = settlers[2 * i + 1]
      const a = answers[i]
      if (refused !== null && refused.has(i)) reject(refused.get(i))
      else if (a.e !== undefined) {
        const err = new Error(a.e.message)
        err.code = a.e.code
        reject(err)
      } else if (a.r !== undefined) resolve(a.r)
      else if (requests[i].config !== undefined && requests[i].config !== null && requests[i].config.mode === 'silent') resolve(waitFor(a[0]))
      else resolve(briefRecord(requests[i], a[0], a[1]))
    }
  }

  // The record Rust stored for a request with the default config.
  function briefRecord(request, executionId, queuedAt) {
    const record = { executionId, tenantId: request.tenantId, callableName: request.callableName }
    if (typeof request.input === 'string') record.input = request.input
    if (request.context !== undefined && request.context !== null) record.context = { ...request.context }
    record.config = { ...defaultConfig }
    record.status = 'queued'
    record.queuedAt = queuedAt
    record.targetBindingApplied = false
    return record
  }

  // -- stimuli --------------------------------------------------------------
  // emit / emitBatch / lifecycle / reportMetric: the value crosses to Rust
  // as JSON text and the fires come back as JSON text (null: none fired).
  const EMIT = 0
  const EMIT_BATCH = 1
  const LIFECYCLE = 2
  const STIMULUS_FIELD = ['event', 'events', 'event', 'metric']

  // Which event types each tenant's event and lifecycle triggers listen to,
  // kept by Rust through indexTrigger: channel (EMIT or LIFECYCLE) →
  // tenantId → { exact: Map<type, count>, prefixes: Map<prefix, count> }.
  // It is a superset of Rust's index (status and patterns aside), so an
  // event it rules out would have matched nothing in Rust: such events are
  // answered here without crossing. Most events match no trigger.
  const interest = [new Map(), new Map(), new Map()]
  const interestOf = new Map() // triggerId → [channel, tenantId, eventType]

  function interestCount(channel, tenantId, eventType, delta) {
    const byTenant = interest[channel]
    let t = byTenant.get(tenantId)
    if (t === undefined) byTenant.set(tenantId, (t = { exact: new Map(), prefixes: new Map() }))
    const wild = eventType.endsWith('*')
    const map = wild ? t.prefixes : t.exact
    const key = wild ? eventType.slice(0, -1) : eventType
    const n = (map.get(key) || 0) + delta
    if (n > 0) map.set(key, n)
    else map.delete(key)
    if (t.exact.size === 0 && t.prefixes.size === 0) byTenant.delete(tenantId)
  }

  function indexTrigger(triggerId, channel, tenantId, eventType) {
    const old = interestOf.get(triggerId)
    if (old !== undefined) {
      if (old[0] === channel && old[1] === tenantId && old[2] === eventType) return
      interestCount(old[0], old[1], old[2], -1)
      interestOf.delete(triggerId)
    }
    if (channel < 0) return
    interestOf.set(triggerId, [channel, tenantId, eventType])
    interestCount(channel, tenantId, eventType, +1)
  }

  // Whether a trigger of `channel` could match an event of this tenant and type.
  function mayMatch(channel, tenantId, type) {
    const t = interest[channel].get(tenantId)
    if (t === undefined) return false
    if (t.exact.has(type)) return true
    for (const prefix of t.prefixes.keys()) if (type.startsWith(prefix)) return true
    return false
  }

  // Whether JSON.stringify would encode `v` without throwing (no BigInt,
  // no cycle) within a bounded depth: what Rust would then accept as data.
  function jsonSafe(v, depth) {
    if (typeof v === 'bigint') return false
    if (v === null || typeof v !== 'object') return true
    if (depth > 16 || typeof v.toJSON === 'function') return false
    if (Array.isArray(v)) {
      for (let i = 0; i < v.length; i++) if (!jsonSafe(v[i], depth + 1)) return false
      return true
    }
    for (const k in v) if (!jsonSafe(v[k], depth + 1)) return false
    return true
  }

  // An event Rust would certainly accept: { type, tenantId, data? } with
  // non-empty strings and JSON data. Anything else goes to Rust, which
  // answers the precise error.
  function wellFormed(e) {
    if (e === null || typeof e !== 'object' || Array.isArray(e) || typeof e.toJSON === 'function') return false
    for (const k in e) if (k !== 'type' && k !== 'tenantId' && k !== 'data') return false
    return typeof e.type === 'string' && e.type !== '' && typeof e.tenantId === 'string' && e.tenantId !== '' && jsonSafe(e.data, 0)
  }

  const NOTHING_FIRED = Object.freeze([])

  // The part of a stimulus that must reach Rust, or NOTHING_FIRED when no
  // trigger could fire from it.
  function prefilter(kind, value) {
    if (kind === EMIT || kind === LIFECYCLE) {
      return wellFormed(value) && !mayMatch(kind, value.tenantId, value.type) ? NOTHING_FIRED : value
    }
    if (kind !== EMIT_BATCH || !Array.isArray(value)) return value
    let keep = null
    for (let i = 0; i < value.length; i++) {
      const e = value[i]
      if (!wellFormed(e)) return value // Rust names the bad event by its index
      if (mayMatch(EMIT, e.tenantId, e.type)) (keep || (keep = [])).push(e)
    }
    return keep === null ? NOTHING_FIRED : keep
  }

  function stimulus(kind, value) {
    let send
    try {
      send = prefilter(kind, value)
    } catch {
      send = value // a throwing getter: JSON.stringify below reports it
    }
    if (send === NOTHING_FIRED) return Promise.resolve([])
    let text
    try {
      text = JSON.stringify(send)
    } catch (err) {
      const e = new Error(`${STIMULUS_FIELD[kind]}: cannot be sent as JSON (${describe(err)})`)
      e.code = 'ENACT_INVALID_TRIGGER'
      return Promise.reject(e)
    }
    let out
    try {
      out = native.stimulus(kind, text === undefined ? 'null' : text)
    } catch (err) {
      return Promise.reject(err)
    }
    if (out === null) return Promise.resolve([])
    schedulePump()
    return Promise.resolve(JSON.parse(out))
  }

  const CALLBACK_ATTEMPTS = 4
  const CALLBACK_BACKOFF_MS = 250
  const CALLBACK_TIMEOUT_MS = 10000

  // POSTs a final record to its callbackUrl; retries connection errors,
  // timeouts, 429 and 5xx with exponential backoff (250, 500, 1000 ms).
  async function postCallback(record) {
    const url = record.config.callbackUrl
    const body = JSON.stringify(record)
    callbacksPending++
    try {
      for (let attempt = 1; ; attempt++) {
        let why
        try {
          const res = await fetch(url, {
            method: 'POST',
            headers: { 'content-type': 'application/json', 'user-agent': 'enact-background', 'x-enact-execution-id': record.executionId },
            body,
            signal: AbortSignal.timeout(CALLBACK_TIMEOUT_MS),
          })
          await res.arrayBuffer().catch(() => {})
          if (res.ok) return
          if (res.status !== 429 && res.status < 500) {
            warn(`callback POST to ${url} for ${record.executionId} refused`, `HTTP ${res.status}`)
            return
          }
          why = `HTTP ${res.status}`
        } catch (err) {
          why = describe(err.cause || err)
        }
        if (attempt >= CALLBACK_ATTEMPTS) {
          warn(`callback POST to ${url} for ${record.executionId} failed after ${attempt} attempts`, why)
          return
        }
        await new Promise((resolve) => setTimeout(resolve, CALLBACK_BACKOFF_MS * 2 ** (attempt - 1)))
      }
    } finally {
      callbacksPending--
    }
  }

  function sendJson(res, status, payload) {
    const text = JSON.stringify(payload)
    res.statusCode = status
    res.setHeader('content-type', 'application/json')
    res.setHeader('content-length', Buffer.byteLength(text))
    res.end(text)
  }

  function tooLarge413(res, maxBodyBytes) {
    res.setHeader('connection', 'close')
    sendJson(res, 413, { error: `body is larger than ${maxBodyBytes} bytes`, code: 'ENACT_BODY_TOO_LARGE' })
  }

  const STATUS_OF = {
    ENACT_WEBHOOK_SIGNATURE: 401,
    ENACT_NOT_FOUND: 404,
    ENACT_TRIGGER_INACTIVE: 409,
    ENACT_INVALID_TRIGGER: 400,
    ENACT_SHUTDOWN: 503,
  }

  // The (req, res) handler of webhookHandler(): POST …/<triggerId>.
  function webhookHandler(maxBodyBytes) {
    return function enactWebhook(req, res) {
      if (req.method !== 'POST') {
        res.setHeader('allow', 'POST')
        return sendJson(res, 405, { error: 'use POST', code: 'ENACT_METHOD' })
      }
      const path = String(req.url || '').split('?')[0].replace(/\/+$/, '')
      const triggerId = decodeURIComponent(path.slice(path.lastIndexOf('/') + 1))
      const declared = Number(req.headers['content-length'])
      if (declared > maxBodyBytes) {
        return tooLarge413(res, maxBodyBytes)
      }
      const deliver = (body) => {
        let fired
        try {
          fired = native.webhook(triggerId, req.headers, body)
        } catch (err) {
          const status = STATUS_OF[err && err.code] || 500
          return sendJson(res, status, { error: describe(err), code: (err && err.code) || 'ENACT_INTERNAL' })
        }
        sendJson(res, 202, fired)
      }
      // A body parser ran before us: use what it kept (express.raw() keeps bytes).
      if (req.body !== undefined && (req.readableEnded || req.complete)) {
        const b = req.body
        return deliver(Buffer.isBuffer(b) ? b : Buffer.from(typeof b === 'string' ? b : JSON.stringify(b)))
      }
      const chunks = []
      let size = 0
      let tooLarge = false
      req.on('data', (chunk) => {
        if (tooLarge) return
        size += chunk.length
        if (size > maxBodyBytes) {
          tooLarge = true
          tooLarge413(res, maxBodyBytes)
          req.resume()
          return
        }
        chunks.push(chunk)
      })
      req.on('end', () => {
        if (!tooLarge) deliver(Buffer.concat(chunks, size))
      })
      req.on('error', () => {
        if (!res.headersSent) sendJson(res, 400, { error: 'request stream failed', code: 'ENACT_BAD_REQUEST' })
      })
    }
  }

  return {
    schedulePump,
    submit,
    flushSubmits,
    stimulus,
    emit: (event) => stimulus(EMIT, event),
    emitBatch: (events) => stimulus(EMIT_BATCH, events),
    lifecycle: (event) => stimulus(LIFECYCLE, event),
    indexTrigger,
    webhookHandler,
    setCallable(name, fn) {
      callables.set(name, fn)
    },
    setTarget(type, fn) {
      targets.set(type, fn)
    },
    on(name, fn) {
      let set = listeners.get(name)
      if (set === undefined) listeners.set(name, (set = new Set()))
      set.add(fn)
      native.setInterest(name, true)
    },
    off(name, fn) {
      const set = listeners.get(name)
      if (set === undefined) return
      set.delete(fn)
      if (set.size === 0) {
        listeners.delete(name)
        native.setInterest(name, false)
      }
    },
    waitFor,
    wake() {
      schedulePump()
    },
    idle() {
      return new Promise((resolve) => {
        if (closed || native.pending() === 0) return resolve()
        idleWaiters.push(resolve)
        schedulePump()
      })
    },
    shutdown(timeoutMs) {
      if (shutdownPromise !== null) return shutdownPromise
      native.beginShutdown()
      shutdownPromise = new Promise((resolve) => {
        let timer = null
        const finish = () => {
          if (onIdle === null) return
          onIdle = null
          if (timer !== null) clearTimeout(timer)
          native.finishShutdown()
          const notices = native.drain()
          if (notices !== null) deliver(notices)
          native.close()
          resolve()
        }
        onIdle = finish
        if (native.busy() === 0) return finish()
        timer = setTimeout(finish, timeoutMs)
      })
      return shutdownPromise
    },
    stats() {
      return { inflightCallables: inflight.size, bindingsPending, callbacksPending, waiters: waiters.size }
    },
  }
})
