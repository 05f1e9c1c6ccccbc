// The modules under lib/ alone, without an engine: the prefilter, submit
// batching against a fake native side, the webhook handler with fake
// req/res, notice dispatch and listeners.
const { EventEmitter } = require('events')
const { Interest, NOTHING_FIRED } = require('../lib/prefilter')
const { Submissions, CHUNK } = require('../lib/submissions')
const { createWebhookHandler } = require('../lib/webhook-handler')
const { dispatch, Listeners } = require('../lib/notices')
const { Code, enactError } = require('../lib/errors')

const trigger = (triggerId, type, eventType, tenantId = 't1') => ({ triggerId, tenantId, type, condition: eventType === undefined ? {} : { eventType } })

describe('prefilter', () => {
  test('rules out events no trigger listens to, per channel and tenant, exact and by prefix', () => {
    const i = new Interest()
    const ev = (type, tenantId = 't1') => ({ type, tenantId, data: { n: 1 } })
    expect(i.filterEvent('event', ev('a.b'))).toBe(NOTHING_FIRED)
    i.index(trigger('tr_1', 'event', 'a.b'))
    i.index(trigger('tr_2', 'event', 'order.*'))
    i.index(trigger('tr_3', 'lifecycle', 'user.signup'))
    i.index(trigger('tr_4', 'schedule'))
    expect(i.filterEvent('event', ev('a.b'))).toEqual(ev('a.b'))
    expect(i.filterEvent('event', ev('order.paid'))).toEqual(ev('order.paid'))
    expect(i.filterEvent('event', ev('a.b', 't2'))).toBe(NOTHING_FIRED)
    expect(i.filterEvent('event', ev('user.signup'))).toBe(NOTHING_FIRED)
    expect(i.filterEvent('lifecycle', ev('user.signup'))).toEqual(ev('user.signup'))
    expect(i.filterBatch([ev('x'), ev('order.new'), ev('y')])).toEqual([ev('order.new')])
    expect(i.filterBatch([ev('x'), ev('y')])).toBe(NOTHING_FIRED)
  })

  test('follows updates and removals, counting triggers that share a type', () => {
    const i = new Interest()
    i.index(trigger('tr_1', 'event', 'a'))
    i.index(trigger('tr_2', 'event', 'a'))
    i.forget('tr_1')
    expect(i.mayMatch('event', 't1', 'a')).toBe(true)
    i.index(trigger('tr_2', 'event', 'b')) // retargeted by an update
    expect(i.mayMatch('event', 't1', 'a')).toBe(false)
    expect(i.mayMatch('event', 't1', 'b')).toBe(true)
    i.index(trigger('tr_2', 'manual')) // no longer listens to events
    expect(i.mayMatch('event', 't1', 'b')).toBe(false)
    i.forget('tr_unknown')
  })

  test('sends anything not certainly well-formed to Rust, for its precise error', () => {
    const i = new Interest()
    for (const bad of [null, 'x', [], { type: 'a' }, { type: '', tenantId: 't1' }, { type: 'a', tenantId: 't1', extra: 1 }, { type: 'a', tenantId: 't1', data: { n: 1n } }]) {
      expect(i.filterEvent('event', bad)).toBe(bad)
    }
    const batch = [{ type: 'a', tenantId: 't1' }, { type: 'a' }]
    expect(i.filterBatch(batch)).toBe(batch)
    expect(i.filterBatch('not an array')).toBe('not an array')
  })
})

describe('submission batching against a fake native side', () => {
  function fake(answer = (reqs) => reqs.map((r, i) => [`exec_${i}`, '2026-01-01T00:00:00Z'])) {
    const calls = []
    let flushed = 0
    const s = new Submissions({
      submitBatch: (text) => {
        const reqs = JSON.parse(text)
        calls.push(reqs)
        return JSON.stringify(answer(reqs))
      },
      waitFor: (id) => Promise.resolve({ executionId: id, status: 'completed' }),
      defaultConfig: { mode: 'fire_and_forget', priority: 50, timeoutMs: 300000 },
      afterFlush: () => flushed++,
    })
    return { s, calls, flushes: () => flushed }
  }

  test('one native call per microtask batch; brief answers become full records', async () => {
    const { s, calls, flushes } = fake()
    const a = s.submit({ tenantId: 't', callableName: 'c', input: 'x' })
    const b = s.submit({ tenantId: 't', callableName: 'c', context: { k: 'v' } })
    expect(s.pending).toBe(true)
    expect(calls).toHaveLength(0)
    expect(await a).toEqual({
      executionId: 'exec_0', tenantId: 't', callableName: 'c', input: 'x', status: 'queued', queuedAt: '2026-01-01T00:00:00Z',
      config: { mode: 'fire_and_forget', priority: 50, timeoutMs: 300000 }, targetBindingApplied: false,
    })
    expect((await b).context).toEqual({ k: 'v' })
    expect(calls).toHaveLength(1)
    expect(calls[0]).toHaveLength(2)
    expect(flushes()).toBe(1)
    expect(s.pending).toBe(false)
  })

  test('flush() hands held requests over at once (what the facade does before reading state)', () => {
    const { s, calls } = fake()
    s.submit({ tenantId: 't', callableName: 'c' })
    s.flush()
    expect(calls).toHaveLength(1)
    s.flush()
    expect(calls).toHaveLength(1)
  })

  test('a full chunk goes at once; the rest waits for the microtask', async () => {
    const { s, calls } = fake()
    const all = []
    for (let i = 0; i < CHUNK + 1; i++) all.push(s.submit({ tenantId: 't', callableName: 'c' }))
    expect(calls.map((c) => c.length)).toEqual([CHUNK])
    await Promise.all(all)
    expect(calls.map((c) => c.length)).toEqual([CHUNK, 1])
  })

  test('errors, full records and silent waits; a request that is not JSON is refused alone', async () => {
    const { s } = fake((reqs) => reqs.map((r, i) => (r === null ? ['exec_x', 't'] : r.callableName === 'bad' ? { e: { code: Code.UNKNOWN_CALLABLE, message: 'nope' } } : r.config && r.config.mode !== 'silent' ? { r: { executionId: `exec_${i}`, full: true } } : [`exec_${i}`, 't'])))
    const bad = s.submit({ tenantId: 't', callableName: 'bad' })
    const full = s.submit({ tenantId: 't', callableName: 'c', config: { priority: 1 } })
    const silent = s.submit({ tenantId: 't', callableName: 'c', config: { mode: 'silent' } })
    const big = s.submit({ tenantId: 't', callableName: 'c', input: 1n })
    const [b, f, sl, bg] = await Promise.allSettled([bad, full, silent, big])
    expect(b.reason).toMatchObject({ code: 'ENACT_UNKNOWN_CALLABLE', message: 'nope' })
    expect(f.value).toEqual({ executionId: 'exec_1', full: true })
    expect(sl.value).toEqual({ executionId: 'exec_2', status: 'completed' })
    expect(bg.reason).toMatchObject({ code: 'ENACT_INVALID_EXECUTION', message: expect.stringMatching(/^request: cannot be sent as JSON/) })
  })

  test('a native failure rejects the whole batch', async () => {
    const s = new Submissions({
      submitBatch: () => {
        throw enactError(Code.SHUTDOWN, 'engine is shut down')
      },
      waitFor: () => Promise.reject(new Error('unused')),
      defaultConfig: {},
      afterFlush: () => {},
    })
    await expect(s.submit({ tenantId: 't', callableName: 'c' })).rejects.toMatchObject({ code: 'ENACT_SHUTDOWN' })
  })
})

describe('webhook handler with fake req/res', () => {
  function res() {
    const r = { statusCode: 0, headers: {}, body: undefined, headersSent: false }
    r.setHeader = (k, v) => (r.headers[k] = v)
    // Resolves once the handler answered (a fire answers once its store committed).
    r.ended = new Promise((resolve) => {
      r.end = (text) => {
        r.body = JSON.parse(text)
        r.headersSent = true
        resolve()
      }
    })
    return r
  }
  function req(method, url, headers = {}) {
    const r = new EventEmitter()
    Object.assign(r, { method, url, headers, resume() {} })
    return r
  }

  test('POST …/<id>: the body is collected and delivered; 202 with the fire', async () => {
    const seen = []
    const handler = createWebhookHandler((id, headers, body) => {
      seen.push([id, headers['x-a'], body.toString()])
      return { triggerId: id }
    }, 1024)
    const q = req('POST', '/hooks/trigger_1?x=1', { 'x-a': 'b' })
    const s = res()
    handler(q, s)
    q.emit('data', Buffer.from('{"a":'))
    q.emit('data', Buffer.from('1}'))
    q.emit('end')
    expect(seen).toEqual([['trigger_1', 'b', '{"a":1}']])
    await s.ended
    expect(s.statusCode).toBe(202)
    expect(s.body).toEqual({ triggerId: 'trigger_1' })
  })

  test('error codes map to statuses; other methods get 405; big bodies 413; a broken stream 400', () => {
    const fail = (code) => () => {
      throw enactError(code, `failed with ${code}`)
    }
    for (const [code, status] of [[Code.WEBHOOK_SIGNATURE, 401], [Code.NOT_FOUND, 404], [Code.TRIGGER_INACTIVE, 409], [Code.INVALID_TRIGGER, 400], [Code.SHUTDOWN, 503], [Code.INTERNAL, 500]]) {
      const q = req('POST', '/t')
      const s = res()
      createWebhookHandler(fail(code), 10)(q, s)
      q.emit('end')
      expect([s.statusCode, s.body]).toEqual([status, { error: `failed with ${code}`, code }])
    }
    const deliver = jest.fn()
    const get = res()
    createWebhookHandler(deliver, 10)(req('GET', '/t'), get)
    expect([get.statusCode, get.headers.allow, get.body.code]).toEqual([405, 'POST', 'ENACT_METHOD'])
    const declared = res()
    createWebhookHandler(deliver, 10)(req('POST', '/t', { 'content-length': '11' }), declared)
    expect([declared.statusCode, declared.body.code]).toEqual([413, 'ENACT_BODY_TOO_LARGE'])
    const q = req('POST', '/t')
    const streamed = res()
    createWebhookHandler(deliver, 10)(q, streamed)
    q.emit('data', Buffer.alloc(11))
    q.emit('end')
    expect(streamed.statusCode).toBe(413)
    const broken = req('POST', '/t')
    const b = res()
    createWebhookHandler(deliver, 10)(broken, b)
    broken.emit('error', new Error('reset'))
    expect([b.statusCode, b.body.code]).toEqual([400, 'ENACT_BAD_REQUEST'])
    expect(deliver).not.toHaveBeenCalled()
  })

  test('ENACT_RATE_LIMITED answers 429 with Retry-After taken from the message, and without it when the message has none', () => {
    const answer = (message) => {
      const q = req('POST', '/t')
      const s = res()
      createWebhookHandler(() => {
        throw enactError(Code.RATE_LIMITED, message)
      }, 10)(q, s)
      q.emit('end')
      return s
    }
    const limited = answer('webhook: trigger "t" remembers as many unexpired webhook ids as its replay budget holds; nothing fired; retry after 42 s')
    expect([limited.statusCode, limited.headers['retry-after'], limited.body.code]).toEqual([429, '42', 'ENACT_RATE_LIMITED'])
    const bare = answer('rate limited')
    expect([bare.statusCode, bare.headers['retry-after']]).toEqual([429, undefined])
  })

  test('a body a parser already read is used as is', async () => {
    const seen = []
    const q = req('POST', '/t/trigger_9')
    Object.assign(q, { body: Buffer.from('raw'), readableEnded: true })
    const s = res()
    createWebhookHandler((id, h, body) => (seen.push(body.toString()), Promise.resolve({ ok: true })), 10)(q, s)
    await s.ended
    expect([s.statusCode, seen]).toEqual([202, ['raw']])
  })
})

describe('notices and listeners', () => {
  test('dispatch hands each tagged notice to its handler, in order', () => {
    const log = []
    const on = {
      event: (name, payload) => log.push(['event', name, payload]),
      settled: (r) => log.push(['settled', r.executionId]),
      abort: (id, attempt, reason) => log.push(['abort', id, attempt, reason]),
      bind: (r, t, v) => log.push(['bind', r.executionId, t, v]),
      callback: (r) => log.push(['callback', r.executionId]),
      closed: () => log.push(['closed']),
      diagnostic: (source, code, message) => log.push(['diagnostic', source, code, message]),
      answer: (ticket, ok, error) => log.push(['answer', ticket, ok, error]),
    }
    dispatch(
      JSON.stringify([
        { t: 'event', name: 'execution.completed', payload: { executionId: 'e1' } },
        { t: 'settled', record: { executionId: 'e1' } },
        { t: 'abort', executionId: 'e2', attempt: 2, reason: 'timeout' },
        { t: 'bind', record: { executionId: 'e3' }, targetType: 'custom', value: 'v' },
        { t: 'callback', record: { executionId: 'e4' } },
        { t: 'closed' },
        { t: 'diagnostic', source: 'timer', code: 'ENACT_STORE', message: 'store unavailable: disk full' },
        { t: 'answer', ticket: 7, ok: null, error: null },
        { t: 'answer', ticket: 8, ok: null, error: { code: 'ENACT_STORE', message: 'disk full' } },
      ]),
      on,
    )
    expect(log).toEqual([
      ['event', 'execution.completed', { executionId: 'e1' }],
      ['settled', 'e1'],
      ['abort', 'e2', 2, 'timeout'],
      ['bind', 'e3', 'custom', 'v'],
      ['callback', 'e4'],
      ['closed'],
      ['diagnostic', 'timer', 'ENACT_STORE', 'store unavailable: disk full'],
      ['answer', 7, null, null],
      ['answer', 8, null, { code: 'ENACT_STORE', message: 'disk full' }],
    ])
  })

  test('listeners tell the native side when a name gains its first or loses its last listener', () => {
    const interest = []
    const l = new Listeners(['a.b', 'c.d'], (name, on) => interest.push([name, on]))
    const f = jest.fn()
    const g = jest.fn()
    l.on('a.b', f)
    l.on('a.b', g)
    l.emit('a.b', 1)
    l.off('a.b', f)
    l.off('a.b', g)
    l.emit('a.b', 2)
    expect(interest).toEqual([['a.b', true], ['a.b', false]])
    expect(f.mock.calls).toEqual([[1]])
    expect(() => l.on('x.y', f)).toThrow(expect.objectContaining({ code: 'ENACT_INVALID_EXECUTION', message: 'event: unknown event "x.y" (expected one of a.b, c.d)' }))
    expect(() => l.on('a.b', 'f')).toThrow(expect.objectContaining({ message: 'listener: expected a function' }))
  })
})

describe('callable context', () => {
  const { Context, abortContext, settleContext } = require('../lib/runner')

  test('a callable sees the CallableContext surface only; the runner aborts and settles through module handles', () => {
    const ctx = new Context({ executionId: 'exec_1', tenantId: 't', callableName: 'c', attempt: 1 }, () => {})
    expect(Object.keys(ctx).sort()).toEqual(['attempt', 'callableName', 'context', 'executionId', 'input', 'tenantId', 'triggerId', 'triggerSource'])
    expect(Object.getOwnPropertyNames(Object.getPrototypeOf(ctx)).sort()).toEqual(['constructor', 'progress', 'signal', 'stream'])
    const signal = ctx.signal
    expect(Object.getOwnPropertyNames(ctx.constructor).sort()).toEqual(['length', 'name', 'prototype'])
    expect(settleContext(ctx)).toBe(true)
    expect(settleContext(ctx)).toBe(false)
    abortContext(ctx, 'why')
    expect([signal.aborted, signal.reason]).toEqual([true, 'why'])
  })

  test('stream chunks are delivered only for deferred runs and not after an abort', () => {
    const seen = []
    const emit = (name, payload) => seen.push([name, payload.chunk])
    new Context({ executionId: 'e', tenantId: 't', callableName: 'c', attempt: 1 }, emit).stream('no')
    const ctx = new Context({ executionId: 'e', tenantId: 't', callableName: 'c', attempt: 1, stream: true }, emit)
    ctx.stream('yes')
    abortContext(ctx, 'stop')
    ctx.stream('late')
    expect(seen).toEqual([['execution.stream', 'yes']])
  })
})

describe('engine diagnostics', () => {
  const { BackgroundEngine } = require('..')

  test('engine.diagnostic is an event name listeners may use', async () => {
    const engine = new BackgroundEngine()
    const seen = []
    expect(() => engine.on('engine.diagnostic', (d) => seen.push(d))).not.toThrow()
    await engine.shutdown()
  })
})
