// Everyday ergonomics (issue 11): `await using` (Symbol.asyncDispose),
// on() returning an unsubscribe function and once(), wait() with a signal
// and a timeout, idempotent submit by executionId, tenantId on
// trigger.fired, a ctx without internals, and the fetch-style webhook
// handler.
const crypto = require('crypto')
const path = require('path')
const ts = require('typescript')
const { BackgroundEngine } = require('..')
const { Waiters, waitOptions } = require('../lib/waiters')
const { deferred, engine, hangUntilAborted, isError, nextEvent, rejection, runNode } = require('./helpers')

/**
 * Jest runs tests in their own realm, whose Symbol lacks the
 * `asyncDispose` Node adds to its main realm's; the symbol itself is the
 * registered `nodejs.asyncDispose`, the same in every realm.
 */
const asyncDispose = Symbol.for('nodejs.asyncDispose')
/** Node's own `process`, where the addon's warnings are emitted. */
const hostProcess = require('vm').runInThisContext('process')

const T = 'tenant_a'

/** An engine with `echo` (returns its input) and `hang` (never settles). */
function setup(options) {
  const e = engine(options)
  e.registerCallable('echo', async (ctx) => ctx.input ?? null)
  const hang = hangUntilAborted()
  e.registerCallable('hang', hang.fn)
  return { e, aborted: hang.aborted }
}

// ---------------------------------------------------------------------------

describe('Symbol.asyncDispose', () => {
  test('in plain Node, engine[Symbol.asyncDispose] is the engine’s shutdown, and no global is changed', async () => {
    const { code, out } = await runNode(`
      const before = Object.getOwnPropertyDescriptor(Symbol, 'asyncDispose')
      const { BackgroundEngine } = require('.')
      const e = new BackgroundEngine()
      e.registerCallable('x', async () => 1)
      ;(async () => {
        const after = Object.getOwnPropertyDescriptor(Symbol, 'asyncDispose')
        console.log(JSON.stringify({
          symbol: typeof Symbol.asyncDispose,
          registered: Symbol.asyncDispose === Symbol.for('nodejs.asyncDispose'),
          unchanged: before.value === after.value && before.writable === after.writable,
          method: typeof e[Symbol.asyncDispose],
        }))
        await e[Symbol.asyncDispose]()
        const err = await e.submit({ tenantId: 't', callableName: 'x' }).catch((x) => x)
        console.log(err.code)
      })()
    `)
    expect({ code, out }).toEqual({ code: 0, out: '{"symbol":"symbol","registered":true,"unchanged":true,"method":"function"}\nENACT_SHUTDOWN\n' })
  })

  test('calling it shuts the engine down after running work finished', async () => {
    const e = new BackgroundEngine()
    const gate = deferred()
    e.registerCallable('gated', () => gate.promise)
    const started = nextEvent(e, 'execution.started')
    const running = await e.submit({ tenantId: T, callableName: 'gated' })
    await started
    const disposed = e[asyncDispose]()
    expect(disposed).toBeInstanceOf(Promise)
    // Shutting down: new work is refused while the running one goes on.
    expect(await rejection(e.submit({ tenantId: T, callableName: 'gated' }))).toMatchObject({ code: 'ENACT_SHUTDOWN' })
    gate.resolve('finished')
    await disposed
    expect(await e.getExecution(running.executionId)).toMatchObject({ status: 'completed', output: 'finished' })
  })

  test('index.d.ts types `await using`, with lib esnext.disposable or without it (@types/node declares the symbol)', () => {
    const file = path.join(__dirname, 'types', 'await-using.ts')
    const plain = path.join(__dirname, 'types', 'no-disposable-lib.ts')
    const base = { strict: true, noEmit: true, target: ts.ScriptTarget.ES2022, module: ts.ModuleKind.CommonJS, moduleResolution: ts.ModuleResolutionKind.Node10, types: ['node'] }
    const diagnostics = (files, lib) => {
      const program = ts.createProgram(files, { ...base, lib })
      return ts.getPreEmitDiagnostics(program).map((d) => ts.flattenDiagnosticMessageText(d.messageText, '\n'))
    }
    expect(diagnostics([file], ['lib.es2022.d.ts', 'lib.esnext.disposable.d.ts'])).toEqual([])
    expect(diagnostics([file], ['lib.es2022.d.ts'])).toEqual([])
    expect(diagnostics([plain], ['lib.es2022.d.ts'])).toEqual([])
    // And the fixtures do check something: a wrong payload type fails.
    const wrong = path.join(__dirname, 'types', 'wrong-payload.ts')
    expect(diagnostics([wrong], ['lib.es2022.d.ts']).join('\n')).toMatch(/Property 'status' does not exist on type 'TriggerFiredEvent'/)
  })
})

// ---------------------------------------------------------------------------

describe('on() / once()', () => {
  test('on() returns a function that removes the listener; calling it again does nothing', async () => {
    const { e } = setup()
    const seen = []
    const off = e.on('execution.completed', (x) => seen.push(x.input))
    expect(typeof off).toBe('function')
    await e.submit({ tenantId: T, callableName: 'echo', input: 'one', config: { mode: 'silent' } })
    off()
    off()
    await e.submit({ tenantId: T, callableName: 'echo', input: 'two', config: { mode: 'silent' } })
    expect(seen).toEqual(['one'])
  })

  test('once() runs for the next event only, and returns a function that removes it before it ran', async () => {
    const { e } = setup()
    const seen = []
    const offOnce = e.once('execution.completed', (x) => seen.push(`once:${x.input}`))
    const offNever = e.once('execution.completed', (x) => seen.push(`never:${x.input}`))
    expect(typeof offOnce).toBe('function')
    offNever()
    e.on('execution.completed', (x) => seen.push(`on:${x.input}`))
    await e.submit({ tenantId: T, callableName: 'echo', input: 'a', config: { mode: 'silent' } })
    await e.submit({ tenantId: T, callableName: 'echo', input: 'b', config: { mode: 'silent' } })
    offOnce() // already ran: nothing to do
    expect(seen).toEqual(['once:a', 'on:a', 'on:b'])
  })

  test('off(name, fn) removes a listener added with once(); once() checks its arguments like on()', async () => {
    const { e } = setup()
    const fn = jest.fn()
    e.once('execution.completed', fn)
    e.off('execution.completed', fn)
    await e.submit({ tenantId: T, callableName: 'echo', config: { mode: 'silent' } })
    expect(fn).not.toHaveBeenCalled()
    expect(() => e.once('execution.done', fn)).toThrow(expect.objectContaining({ code: 'ENACT_INVALID_EXECUTION', message: expect.stringMatching(/^event: unknown event "execution.done"/) }))
    expect(() => e.once('execution.completed', 'fn')).toThrow(expect.objectContaining({ code: 'ENACT_INVALID_EXECUTION', message: 'listener: expected a function' }))
  })

  test('a once() listener that throws is removed all the same (and becomes a warning)', async () => {
    const { e } = setup()
    const warned = new Promise((resolve) => hostProcess.once('warning', resolve))
    let calls = 0
    e.once('execution.completed', () => {
      calls++
      throw new Error('listener bug')
    })
    await e.submit({ tenantId: T, callableName: 'echo', config: { mode: 'silent' } })
    expect((await warned).code).toBe('ENACT_LISTENER')
    await e.submit({ tenantId: T, callableName: 'echo', config: { mode: 'silent' } })
    expect(calls).toBe(1)
  })
})

// ---------------------------------------------------------------------------

describe('wait(id, { signal, timeoutMs })', () => {
  test('timeoutMs rejects with ENACT_TIMEOUT; the execution goes on and can still be waited for', async () => {
    const { e, aborted } = setup()
    const started = nextEvent(e, 'execution.started')
    const { executionId } = await e.submit({ tenantId: T, callableName: 'hang' })
    await started
    const err = await rejection(e.wait(executionId, { timeoutMs: 5 }))
    expect(isError(err)).toBe(true)
    expect(err).toMatchObject({ code: 'ENACT_TIMEOUT', message: expect.stringMatching(/^options\.timeoutMs: execution "exec_\w+" had not finished after 5 ms/) })
    expect((await e.getExecution(executionId)).status).toBe('running')
    const later = e.wait(executionId)
    await e.cancel(executionId)
    expect((await later).status).toBe('cancelled')
    expect(await aborted).toMatchObject({ code: 'ENACT_CANCELLED' })
  })

  test('a finished execution resolves whatever the deadline, even timeoutMs: 0', async () => {
    const { e } = setup()
    const done = await e.submit({ tenantId: T, callableName: 'echo', input: 'x', config: { mode: 'silent' } })
    expect(await e.wait(done.executionId, { timeoutMs: 0 })).toEqual(done)
  })

  test('a signal that aborts rejects with its reason when it is an Error, else ENACT_CANCELLED; the execution goes on', async () => {
    const { e } = setup()
    const { executionId } = await e.submit({ tenantId: T, callableName: 'hang' })

    const withError = new AbortController()
    const mine = new Error('user navigated away')
    const p1 = e.wait(executionId, { signal: withError.signal })
    withError.abort(mine)
    expect(await rejection(p1)).toBe(mine)

    const plain = new AbortController()
    const p2 = e.wait(executionId, { signal: plain.signal })
    plain.abort()
    const domAbort = await rejection(p2)
    expect(domAbort.name).toBe('AbortError') // the DOMException abort() makes, as fetch rejects

    const withString = new AbortController()
    const p3 = e.wait(executionId, { signal: withString.signal })
    withString.abort('stop')
    expect(await rejection(p3)).toMatchObject({
      code: 'ENACT_CANCELLED',
      name: 'AbortError',
      message: `options.signal: aborted while waiting for execution "${executionId}", which goes on`,
    })

    // Already aborted: rejects at once.
    expect(await rejection(e.wait(executionId, { signal: AbortSignal.abort('late') }))).toMatchObject({ code: 'ENACT_CANCELLED' })
    expect((await e.getExecution(executionId)).status).toMatch(/^(queued|running)$/)
    await e.cancel(executionId)
  })

  test('a waiter that gives up leaves the others waiting, and settled waiters take their abort listener with them', async () => {
    const { e } = setup()
    const gate = deferred()
    e.registerCallable('gated', () => gate.promise)
    const { executionId } = await e.submit({ tenantId: T, callableName: 'gated' })
    // A duck-typed signal that records its listeners.
    const listeners = new Set()
    const signal = {
      aborted: false,
      reason: undefined,
      addEventListener: (_name, fn) => listeners.add(fn),
      removeEventListener: (_name, fn) => listeners.delete(fn),
    }
    const patient = e.wait(executionId, { signal })
    expect(listeners.size).toBe(1)
    const impatient = e.wait(executionId, { timeoutMs: 1 })
    expect(await rejection(impatient)).toMatchObject({ code: 'ENACT_TIMEOUT' })
    gate.resolve('done')
    expect((await patient).output).toBe('done')
    expect(listeners.size).toBe(0)
  })

  test('options are checked like every option: unknown keys, bad numbers and non-signals are refused (rejections)', async () => {
    const { e } = setup()
    const { executionId } = await e.submit({ tenantId: T, callableName: 'echo', config: { mode: 'silent' } })
    const cases = [
      [{ timeout: 5 }, 'options.timeout: unknown option (expected one of signal, timeoutMs)'],
      [{ timeoutMs: -1 }, 'options.timeoutMs: expected a finite non-negative number, got -1'],
      [{ timeoutMs: NaN }, 'options.timeoutMs: expected a finite non-negative number, got NaN'],
      [{ timeoutMs: Infinity }, 'options.timeoutMs: expected a finite non-negative number, got Infinity'],
      [{ timeoutMs: '5' }, 'options.timeoutMs: expected a finite non-negative number, got a string'],
      [{ timeoutMs: 2 ** 31 }, `options.timeoutMs: expected at most ${2 ** 31 - 1} (about 24.8 days), got ${2 ** 31}`],
      [{ signal: {} }, 'options.signal: expected an AbortSignal, got an object'],
      [{ signal: 'abort' }, 'options.signal: expected an AbortSignal, got a string'],
      [5, 'options: expected an object { signal, timeoutMs }, got a number'],
    ]
    for (const [options, message] of cases) {
      let p
      expect(() => (p = e.wait(executionId, options))).not.toThrow()
      expect(await rejection(p)).toMatchObject({ code: 'ENACT_INVALID_EXECUTION', message })
    }
    // Absent values count as absent, as in JSON.
    expect((await e.wait(executionId, { signal: undefined, timeoutMs: undefined })).status).toBe('completed')
    expect((await e.wait(executionId, null)).status).toBe('completed')
  })

  test('Waiters frees each waiter that settles, times out or is aborted (no entry left behind)', async () => {
    const w = new Waiters()
    const ac = new AbortController()
    const settledOne = w.add('a')
    const timedOut = w.add('a', waitOptions({ timeoutMs: 1 }))
    const abortedOne = w.add('b', waitOptions({ signal: ac.signal }))
    expect([w.size, w.count()]).toEqual([2, 3])
    expect(await rejection(timedOut)).toMatchObject({ code: 'ENACT_TIMEOUT' })
    expect([w.size, w.count()]).toEqual([2, 2])
    ac.abort(new Error('gone'))
    expect((await rejection(abortedOne)).message).toBe('gone')
    expect([w.size, w.count()]).toEqual([1, 1])
    w.settle({ executionId: 'a', status: 'completed' })
    expect(await settledOne).toEqual({ executionId: 'a', status: 'completed' })
    expect([w.size, w.count()]).toEqual([0, 0])
    // Many waiters that time out leave nothing behind.
    const many = Array.from({ length: 100 }, (_, i) => w.add(`x${i % 7}`, { timeoutMs: 0 }))
    await Promise.allSettled(many)
    expect([w.size, w.count()]).toEqual([0, 0])
  })

  test('waiters pending at shutdown are rejected with ENACT_SHUTDOWN, deadlines or not', async () => {
    const e = new BackgroundEngine()
    e.registerCallable('hang', hangUntilAborted().fn)
    const { executionId } = await e.submit({ tenantId: T, callableName: 'hang' })
    const waits = [e.wait(executionId, { timeoutMs: 60_000 }), e.wait(executionId, { signal: new AbortController().signal })]
    await e.shutdown({ timeoutMs: 0 })
    for (const p of waits) expect(await rejection(p)).toMatchObject({ code: 'ENACT_SHUTDOWN' })
  })
})

// ---------------------------------------------------------------------------

describe('idempotent submit by executionId', () => {
  test('fire_and_forget: the same id answers the stored execution, even for another callable or input; nothing new is queued', async () => {
    const { e } = setup()
    const queued = []
    e.on('execution.queued', (x) => queued.push(x.executionId))
    const first = await e.submit({ tenantId: T, callableName: 'hang', input: 'one', executionId: 'exec_job_1' })
    const again = await e.submit({ tenantId: T, callableName: 'hang', input: 'one', executionId: 'exec_job_1' })
    const other = await e.submit({ tenantId: T, callableName: 'echo', input: 'two', executionId: 'exec_job_1', config: { priority: 9 } })
    expect(again.executionId).toBe('exec_job_1')
    expect(again.queuedAt).toBe(first.queuedAt)
    expect(again).toMatchObject({ callableName: 'hang', input: 'one', tenantId: T })
    expect(other).toMatchObject({ callableName: 'hang', input: 'one', config: { priority: 50 } })
    expect(queued).toEqual(['exec_job_1'])
    expect((await e.listExecutions({ tenantId: T })).length).toBe(1)
    expect((await e.stats()).submitted).toBe(1)
    await e.cancel('exec_job_1')
  })

  test('the answer is the execution as it stands now: running, then final', async () => {
    const { e } = setup()
    const gate = deferred()
    e.registerCallable('gated', () => gate.promise)
    const started = nextEvent(e, 'execution.started')
    await e.submit({ tenantId: T, callableName: 'gated', executionId: 'exec_now' })
    await started
    expect(await e.submit({ tenantId: T, callableName: 'gated', executionId: 'exec_now' })).toMatchObject({ status: 'running', attempt: 1 })
    gate.resolve('ok')
    await e.wait('exec_now')
    expect(await e.submit({ tenantId: T, callableName: 'gated', executionId: 'exec_now', config: { mode: 'deferred', delayMs: 5 } })).toMatchObject({
      status: 'completed',
      output: 'ok',
      config: { mode: 'fire_and_forget' },
    })
  })

  test('silent: resolves when the existing execution finishes, or at once with its final record', async () => {
    const { e } = setup()
    const gate = deferred()
    e.registerCallable('gated', () => gate.promise)
    await e.submit({ tenantId: T, callableName: 'gated', executionId: 'exec_s' })
    const waiting = e.submit({ tenantId: T, callableName: 'gated', executionId: 'exec_s', config: { mode: 'silent' } })
    gate.resolve('result')
    expect(await waiting).toMatchObject({ executionId: 'exec_s', status: 'completed', output: 'result' })
    expect(await e.submit({ tenantId: T, callableName: 'gated', executionId: 'exec_s', config: { mode: 'silent' } })).toMatchObject({ status: 'completed', output: 'result' })
  })

  test('the same id twice in one tick: one execution, both answered with it', async () => {
    const { e } = setup()
    const [a, b] = await Promise.all([
      e.submit({ tenantId: T, callableName: 'echo', input: 'first', executionId: 'exec_tick' }),
      e.submit({ tenantId: T, callableName: 'echo', input: 'second', executionId: 'exec_tick' }),
    ])
    expect([a.executionId, b.executionId]).toEqual(['exec_tick', 'exec_tick'])
    expect(b.input).toBe('first')
    expect((await e.wait('exec_tick')).output).toBe('first')
    expect((await e.stats()).submitted).toBe(1)
  })

  test('an id another tenant used is refused, and the refusal says nothing of that execution', async () => {
    const { e } = setup()
    await e.submit({ tenantId: 'tenant_secret', callableName: 'hang', input: 'classified', executionId: 'exec_shared' })
    const err = await rejection(e.submit({ tenantId: 'tenant_other', callableName: 'echo', executionId: 'exec_shared' }))
    expect(err).toMatchObject({ code: 'ENACT_INVALID_EXECUTION', message: expect.stringMatching(/^executionId: "exec_shared" /) })
    for (const secret of ['tenant_secret', 'hang', 'classified', 'queued']) expect(err.message).not.toContain(secret)
    expect((await e.getExecution('exec_shared')).tenantId).toBe('tenant_secret')
    await e.cancel('exec_shared')
  })
})

// ---------------------------------------------------------------------------

describe('trigger.fired carries tenantId', () => {
  test('in the event and in what fire / emit resolve with', async () => {
    const { e } = setup()
    const manual = await e.registerTrigger({ tenantId: T, type: 'manual', action: { callableName: 'echo' } })
    await e.registerTrigger({ tenantId: 'tenant_b', type: 'event', condition: { eventType: 'order.created' }, action: { callableName: 'echo' } })
    const event = nextEvent(e, 'trigger.fired')
    const fired = await e.fire(manual.triggerId, { n: 1 })
    expect(fired.tenantId).toBe(T)
    expect(await event).toMatchObject({ triggerId: manual.triggerId, tenantId: T })
    const [emitted] = await e.emit({ tenantId: 'tenant_b', type: 'order.created', data: {} })
    expect(emitted.tenantId).toBe('tenant_b')
    expect((await e.getExecution(emitted.executionId)).tenantId).toBe('tenant_b')
  })
})

// ---------------------------------------------------------------------------

describe('ctx exposes the CallableContext surface only', () => {
  test('Object.keys, for…in and JSON.stringify show the documented fields, no internals', async () => {
    const { e } = setup()
    let seen
    e.registerCallable('inspect', async (ctx) => {
      const forIn = []
      for (const k in ctx) forIn.push(k)
      seen = {
        keys: Object.keys(ctx),
        forIn,
        json: Object.keys(JSON.parse(JSON.stringify(ctx))),
        symbols: Object.getOwnPropertySymbols(ctx),
        ctor: Object.getOwnPropertyNames(ctx.constructor).sort(),
        proto: Object.getOwnPropertyNames(Object.getPrototypeOf(ctx)).sort(),
        signal: ctx.signal instanceof AbortSignal,
        stream: typeof ctx.stream,
      }
      return null
    })
    await e.submit({ tenantId: T, callableName: 'inspect', input: 'x', context: { k: 'v' }, config: { mode: 'silent' } })
    const documented = ['executionId', 'tenantId', 'callableName', 'input', 'context', 'attempt', 'triggerId', 'triggerSource']
    for (const list of [seen.keys, seen.forIn, seen.json]) {
      for (const k of list) expect(documented).toContain(k)
      expect(list.filter((k) => k.startsWith('_'))).toEqual([])
    }
    expect(seen.json.sort()).toEqual(['attempt', 'callableName', 'context', 'executionId', 'input', 'tenantId'])
    expect(seen.symbols).toEqual([])
    expect(seen.ctor).toEqual(['length', 'name', 'prototype']) // no runner handles via ctx.constructor
    expect(seen.proto).toEqual(['constructor', 'progress', 'signal', 'stream'])
    expect([seen.signal, seen.stream]).toEqual([true, 'function'])
  })
})

// ---------------------------------------------------------------------------

const KEY = Buffer.from('a shared webhook key of 32 bytes')
const SECRET = `whsec_${KEY.toString('base64')}`
let msgSeq = 0

/** Standard Webhooks headers for `body` (as __test__/webhook.test.js signs). */
function signedHeaders(body, { secret = SECRET, id = `msg_fetch_${process.pid}_${++msgSeq}`, timestamp = Math.floor(Date.now() / 1000) } = {}) {
  const mac = crypto.createHmac('sha256', Buffer.from(secret.slice('whsec_'.length), 'base64'))
  mac.update(`${id}.${timestamp}.`)
  mac.update(body)
  return { 'webhook-id': id, 'webhook-timestamp': String(timestamp), 'webhook-signature': `v1,${mac.digest('base64')}` }
}

/** A POST Request to …/webhooks/<id>. */
const post = (id, body, headers = {}) => new Request(`http://localhost/webhooks/${id}`, { method: 'POST', headers, body })

/**
 * A body stream of 1 KiB chunks, `limit` of them (endless without one);
 * `pulled` counts the bytes it handed out, `cancelled` resolves with the
 * reason it was cancelled with.
 */
function chunkStream(limit = Infinity) {
  const state = { pulled: 0 }
  const cancelled = deferred()
  state.cancelled = cancelled.promise
  let n = 0
  state.stream = new ReadableStream({
    pull(c) {
      if (n++ >= limit) return c.close()
      state.pulled += 1024
      c.enqueue(new Uint8Array(1024).fill(0x20))
    },
    cancel: (reason) => cancelled.resolve(reason),
  })
  return state
}

async function fetchSetup(triggerFields = { webhookSecret: SECRET }, engineOptions, handlerOptions) {
  const e = engine(engineOptions)
  e.registerCallable('hook', async (ctx) => ctx.triggerSource ?? null)
  const trigger = await e.registerTrigger({ tenantId: T, type: 'webhook', condition: {}, action: { callableName: 'hook' }, ...triggerFields })
  return { e, id: trigger.triggerId, handler: e.webhookFetchHandler(handlerOptions) }
}

describe('webhookFetchHandler(): (Request) => Promise<Response>', () => {
  test('a signed request answers 202 with the TriggerFiredEvent; the body is the trigger source', async () => {
    const { e, id, handler } = await fetchSetup()
    const body = JSON.stringify({ order: 7 })
    const res = await handler(post(id, body, { 'content-type': 'application/json', ...signedHeaders(body) }))
    expect(res).toBeInstanceOf(Response)
    expect(res.status).toBe(202)
    expect(res.headers.get('content-type')).toBe('application/json')
    const fired = await res.json()
    expect(fired).toMatchObject({ triggerId: id, triggerType: 'webhook', tenantId: T, executionId: expect.stringMatching(/^exec_/), triggerSource: { order: 7 } })
    expect((await e.wait(fired.executionId)).output).toEqual({ order: 7 })
  })

  test('every error status of the Node handler, with the same codes', async () => {
    const { e, id, handler } = await fetchSetup()
    const body = '{"x":1}'
    const answer = async (request) => {
      const res = await handler(request)
      return { status: res.status, json: await res.json(), headers: res.headers }
    }

    const forged = await answer(post(id, body, signedHeaders(body, { secret: `whsec_${Buffer.from('another key').toString('base64')}` })))
    expect(forged).toMatchObject({ status: 401, json: { code: 'ENACT_WEBHOOK_SIGNATURE', error: expect.stringMatching(/signature/) } })

    expect(await answer(post('trigger_missing', body, signedHeaders(body)))).toMatchObject({ status: 404, json: { code: 'ENACT_NOT_FOUND' } })

    const get = await answer(new Request(`http://localhost/webhooks/${id}`))
    expect(get).toMatchObject({ status: 405, json: { code: 'ENACT_METHOD' } })
    expect(get.headers.get('allow')).toBe('POST')

    expect(await answer(new Request('http://localhost/webhooks/%E0%A4%A', { method: 'POST', body }))).toMatchObject({
      status: 400,
      json: { code: 'ENACT_BAD_REQUEST', error: expect.stringMatching(/^path: /) },
    })

    await e.pauseTrigger(id)
    expect(await answer(post(id, body, signedHeaders(body)))).toMatchObject({ status: 409, json: { code: 'ENACT_TRIGGER_INACTIVE' } })
    await e.resumeTrigger(id)

    await e.shutdown({ timeoutMs: 100 })
    expect(await answer(post(id, body, signedHeaders(body)))).toMatchObject({ status: 503, json: { code: 'ENACT_SHUTDOWN' } })
  })

  test('429 with Retry-After when the trigger’s replay budget is full; nothing fires', async () => {
    const { e, id, handler } = await fetchSetup({ webhookSecret: SECRET }, { webhookReplayCapacity: 1 })
    const body = '{}'
    expect((await handler(post(id, body, signedHeaders(body)))).status).toBe(202)
    const full = await handler(post(id, body, signedHeaders(body)))
    expect(full.status).toBe(429)
    expect(full.headers.get('retry-after')).toMatch(/^[1-9]\d*$/)
    expect(await full.json()).toMatchObject({ code: 'ENACT_RATE_LIMITED' })
    expect((await e.getTrigger(id)).fireCount).toBe(1)
  })

  test('413: a declared content-length over the limit is refused unread; a stream over it is cancelled, never buffered past the limit', async () => {
    const { e, id, handler } = await fetchSetup({ allowUnsigned: true }, undefined, { maxBodyBytes: 4096 })
    const declared = await handler(post(id, 'x', { 'content-length': '999999' }))
    expect(declared.status).toBe(413)
    expect(await declared.json()).toMatchObject({ code: 'ENACT_BODY_TOO_LARGE', error: 'body is larger than 4096 bytes' })

    const endless = chunkStream()
    const res = await handler(new Request(`http://localhost/webhooks/${id}`, { method: 'POST', body: endless.stream, duplex: 'half' }))
    expect(res.status).toBe(413)
    expect(await res.json()).toMatchObject({ code: 'ENACT_BODY_TOO_LARGE' })
    expect((await endless.cancelled).code).toBe('ENACT_BODY_TOO_LARGE')
    // Read: the chunk that crossed the limit; pulled: one more, which the
    // stream queued (its high-water mark) before it was cancelled.
    expect(endless.pulled).toBeLessThanOrEqual(4096 + 2 * 1024)

    // Exactly at the limit is accepted.
    const full = chunkStream(4)
    const ok = await handler(new Request(`http://localhost/webhooks/${id}`, { method: 'POST', body: full.stream, duplex: 'half' }))
    expect(ok.status).toBe(202)
    expect((await e.getTrigger(id)).fireCount).toBe(1)
  })

  test('408 when the body does not arrive within bodyTimeoutMs; the stream is cancelled and nothing fires', async () => {
    const { e, id, handler } = await fetchSetup({ allowUnsigned: true }, undefined, { bodyTimeoutMs: 20 })
    const cancelled = deferred()
    const stalled = new ReadableStream({ start: (c) => c.enqueue(new Uint8Array([0x7b])), cancel: (r) => cancelled.resolve(r) })
    const res = await handler(new Request(`http://localhost/webhooks/${id}`, { method: 'POST', body: stalled, duplex: 'half' }))
    expect(res.status).toBe(408)
    expect(await res.json()).toMatchObject({ code: 'ENACT_BAD_REQUEST', error: 'body: not received within 20 ms' })
    expect((await cancelled.promise).status).toBe(408)
    expect((await e.getTrigger(id)).fireCount).toBe(0)
  })

  test('it never rejects, whatever it is given; its options are checked like webhookHandler()’s', async () => {
    const { e, handler } = await fetchSetup({ allowUnsigned: true })
    for (const bad of [null, undefined, 42, {}, { method: 'POST', url: 'not a url', headers: new Headers(), body: null }]) {
      const res = await handler(bad)
      expect(res).toBeInstanceOf(Response)
      expect([400, 405]).toContain(res.status)
    }
    expect(() => e.webhookFetchHandler({ maxBody: 1 })).toThrow(expect.objectContaining({ code: 'ENACT_INVALID_TRIGGER', message: 'options.maxBody: unknown field (expected one of maxBodyBytes, bodyTimeoutMs)' }))
    expect(() => e.webhookFetchHandler({ maxBodyBytes: -1 })).toThrow(expect.objectContaining({ code: 'ENACT_INVALID_TRIGGER' }))
  })
})

describe('after review', () => {
  test('a listener is added once per event, whether with on() or once()', async () => {
    const { e } = setup()
    let calls = 0
    const fn = () => calls++
    e.once('execution.completed', fn)
    e.once('execution.completed', fn)
    e.on('execution.completed', fn)
    e.on('execution.completed', fn)
    await e.submit({ tenantId: T, callableName: 'echo', config: { mode: 'silent' } })
    expect(calls).toBe(1) // the once() added first; the rest changed nothing
    await e.submit({ tenantId: T, callableName: 'echo', config: { mode: 'silent' } })
    expect(calls).toBe(1)
    e.on('execution.completed', fn)
    e.off('execution.completed', fn)
    await e.submit({ tenantId: T, callableName: 'echo', config: { mode: 'silent' } })
    expect(calls).toBe(1)
  })

  test('waits sharing one AbortSignal add one listener to it, and remove it with the last', async () => {
    const { getEventListeners } = require('node:events')
    const { e } = setup()
    const gate = deferred()
    e.registerCallable('gated', () => gate.promise)
    const { executionId } = await e.submit({ tenantId: T, callableName: 'gated' })
    const ac = new AbortController()
    const waits = Array.from({ length: 50 }, () => e.wait(executionId, { signal: ac.signal }))
    expect(getEventListeners(ac.signal, 'abort')).toHaveLength(1)
    gate.resolve('done')
    for (const r of await Promise.all(waits)) expect(r.output).toBe('done')
    expect(getEventListeners(ac.signal, 'abort')).toHaveLength(0)
  })

  test('the fetch handler answers 400 naming the field for what is not a fetch Request', async () => {
    const { e } = setup()
    const handler = e.webhookFetchHandler()
    for (const [request, message] of [
      [5, 'request: expected a fetch Request'],
      [{}, 'request.method: expected a fetch Request'],
      [{ method: 'POST' }, 'request.url: expected a fetch Request'],
      [{ method: 'POST', url: 'http://x/webhooks/t' }, 'request.headers: expected a fetch Request'],
    ]) {
      const res = await handler(request)
      expect(res.status).toBe(400)
      expect(await res.json()).toEqual({ error: message, code: 'ENACT_BAD_REQUEST' })
    }
  })
})
