const { nextEvent, deferred, rejection, engine, gatedEngine, hangUntilAborted, runNode, isError } = require('./helpers')
const { BackgroundEngine } = require('..')

const T = 'tenant_a'

describe('submission modes', () => {
  test('fire_and_forget resolves at once with the queued record; wait() gives the final one', async () => {
    const e = engine()
    e.registerCallable('echo', async (ctx) => ({ echoed: ctx.input }))
    const queued = await e.submit({ tenantId: T, callableName: 'echo', input: 'hi' })
    expect(queued).toMatchObject({
      tenantId: T,
      callableName: 'echo',
      status: 'queued',
      targetBindingApplied: false,
      config: { mode: 'fire_and_forget', priority: 50, timeoutMs: 300000 },
    })
    expect(queued.executionId).toMatch(/^exec_[0-9A-Za-z]{27}$/)
    const done = await e.wait(queued.executionId)
    expect(done).toMatchObject({ status: 'completed', output: { echoed: 'hi' }, attempt: 1 })
    expect(Date.parse(done.completedAt)).toBeGreaterThanOrEqual(Date.parse(done.startedAt))
  })

  test('silent resolves with the finished record and suppresses stream chunks', async () => {
    const e = engine()
    const chunks = []
    e.on('execution.stream', (c) => chunks.push(c))
    e.registerCallable('talk', async (ctx) => {
      ctx.stream('partial')
      return 'full'
    })
    const done = await e.submit({ tenantId: T, callableName: 'talk', config: { mode: 'silent' } })
    expect(done.status).toBe('completed')
    expect(done.output).toBe('full')
    expect(chunks).toEqual([])
  })

  test('deferred runs after immediate work drains and delivers stream chunks', async () => {
    const { e, order, held, open } = await gatedEngine(
      (ctx) => ctx.input,
      (ctx) => ctx.stream(`chunk of ${ctx.input}`),
    )
    const chunk = nextEvent(e, 'execution.stream')
    const later = await e.submit({ tenantId: T, callableName: 'job', input: 'deferred', config: { mode: 'deferred', priority: 255 } })
    expect(later.status).toBe('queued')
    const now = await Promise.all(['a', 'b', 'c'].map((input) => e.submit({ tenantId: T, callableName: 'job', input, config: { priority: 0 } })))
    open()
    await Promise.all([held, ...now, later].map((r) => e.wait(r.executionId)))
    expect(order).toEqual(['a', 'b', 'c', 'deferred'])
    expect(await chunk).toMatchObject({ executionId: later.executionId, chunk: 'chunk of deferred', attempt: 1 })
  })

  test('deferred with delayMs does not start before the delay', async () => {
    const e = engine()
    let startedAt = 0
    e.registerCallable('later', async () => {
      startedAt = Date.now()
      return null
    })
    const submittedAt = Date.now()
    const rec = await e.submit({ tenantId: T, callableName: 'later', config: { mode: 'deferred', delayMs: 150 } })
    expect((await e.getExecution(rec.executionId)).status).toBe('queued')
    const done = await e.wait(rec.executionId)
    expect(done.status).toBe('completed')
    expect(startedAt - submittedAt).toBeGreaterThanOrEqual(140)
  })

  test('deferred with runAt keeps the time in its config', async () => {
    const e = engine()
    e.registerCallable('later', async () => 1)
    const runAt = new Date(Date.now() + 50).toISOString()
    const rec = await e.submit({ tenantId: T, callableName: 'later', config: { mode: 'deferred', runAt } })
    expect(Date.parse(rec.config.runAt)).toBe(Date.parse(runAt))
    expect((await e.wait(rec.executionId)).status).toBe('completed')
  })
})

describe('bad input gets a clear error', () => {
  const cases = [
    [{ tenantId: T, callableName: 'echo', config: { mode: 'sometime' } }, 'ENACT_INVALID_EXECUTION', /^config\.mode: expected one of fire_and_forget, silent, deferred/],
    [{ tenantId: T, callableName: 'echo', config: { priority: 300 } }, 'ENACT_INVALID_EXECUTION', /^config\.priority: expected an integer from 0 to 255, got 300/],
    [{ tenantId: T, callableName: 'echo', config: { timeoutMs: -1 } }, 'ENACT_INVALID_EXECUTION', /^config\.timeoutMs: /],
    [{ tenantId: T, callableName: 42 }, 'ENACT_INVALID_EXECUTION', /^callableName: expected a string, got 42/],
    [{ tenantId: T }, 'ENACT_INVALID_EXECUTION', /^callableName: is required/],
    [{ tenantId: '', callableName: 'echo' }, 'ENACT_INVALID_EXECUTION', /^tenantId: must not be empty/],
    [{ tenantId: T, callableName: 'echo', input: { a: 1 } }, 'ENACT_INVALID_EXECUTION', /^input: expected a string/],
    [{ tenantId: T, callableName: 'echo', config: { retry: { maxAttempts: 0 } } }, 'ENACT_INVALID_EXECUTION', /^config\.retry\.maxAttempts: /],
    [{ tenantId: T, callableName: 'echo', config: { targetBinding: { targetType: 'thread.colour' } } }, 'ENACT_INVALID_EXECUTION', /^config\.targetBinding\.targetType: /],
    [{ tenantId: T, callableName: 'echo', config: { delayMs: 10 } }, 'ENACT_INVALID_EXECUTION', /^config\.delayMs: only a deferred execution/],
    [{ tenantId: T, callableName: 'echo', confg: {} }, 'ENACT_INVALID_EXECUTION', /^confg: unknown field/],
    [{ tenantId: T, callableName: 'nobody' }, 'ENACT_UNKNOWN_CALLABLE', /^callableName: no callable registered as "nobody"/],
  ]

  test.each(cases.map(([req, code, msg]) => [JSON.stringify(req), req, code, msg]))('submit(%s) rejects', async (_name, req, code, msg) => {
    const e = engine()
    e.registerCallable('echo', async () => 1)
    const err = await rejection(e.submit(req))
    expect(isError(err)).toBe(true)
    expect(err.code).toBe(code)
    expect(err.message).toMatch(msg)
  })

  test('bad requests among plain ones in one batch each get their own answer', async () => {
    const e = engine()
    e.registerCallable('echo', async (ctx) => ctx.input ?? null)
    const results = await Promise.allSettled([
      e.submit({ tenantId: T, callableName: 'echo', input: 'a' }),
      e.submit({ tenantId: '', callableName: 'echo' }),
      e.submit({ tenantId: T, callableName: 'echo', input: 7 }),
      e.submit({ tenantId: T, callableName: 'echo', extra: true }),
      e.submit({ tenantId: T, callableName: 'echo', input: null }),
      e.submit({ tenantId: T, callableName: 'missing' }),
      e.submit({ tenantId: T, callableName: 'echo', input: 'b' }),
    ])
    expect(results.map((r) => r.status)).toEqual(['fulfilled', 'rejected', 'rejected', 'rejected', 'fulfilled', 'rejected', 'fulfilled'])
    expect(results.slice(1, 4).map((r) => r.reason.message)).toEqual([
      'tenantId: must not be empty',
      expect.stringMatching(/^input: expected a string/),
      expect.stringMatching(/^extra: /),
    ])
    expect(results[5].reason.code).toBe('ENACT_UNKNOWN_CALLABLE')
    const done = await Promise.all([0, 4, 6].map((i) => e.wait(results[i].value.executionId)))
    expect(done.map((r) => r.output)).toEqual(['a', null, 'b'])
    expect(results[4].value.input).toBeUndefined()
  })

  test('a request that is not JSON fails alone; its neighbours in the same batch are queued', async () => {
    const e = engine()
    e.registerCallable('echo', async (ctx) => ctx.input)
    const cyclic = { tenantId: T, callableName: 'echo' }
    cyclic.self = cyclic
    const results = await Promise.allSettled([
      e.submit({ tenantId: T, callableName: 'echo', input: 'before' }),
      e.submit({ tenantId: T, callableName: 'echo', input: 10n }),
      e.submit(cyclic),
      e.submit({ tenantId: T, callableName: 'echo', input: 'after' }),
    ])
    expect(results.map((r) => r.status)).toEqual(['fulfilled', 'rejected', 'rejected', 'fulfilled'])
    for (const r of [results[1], results[2]]) expect(r.reason.code).toBe('ENACT_INVALID_EXECUTION')
    expect(results[1].reason.message).toMatch(/^request: cannot be sent as JSON/)
    expect(results[2].reason.message).toBe('self.self: refers back to an object that holds it (a cycle)')
    const done = await Promise.all([results[0], results[3]].map((r) => e.wait(r.value.executionId)))
    expect(done.map((r) => r.output)).toEqual(['before', 'after'])
  })

  test('a submission is visible to every other method at once', async () => {
    const e = engine()
    e.registerCallable('echo', async () => 1)
    const pending = e.submit({ tenantId: T, callableName: 'echo', executionId: 'exec_mine', metadata: { k: 'v' } })
    // Not awaited: the engine must still know about it.
    expect(await e.getExecution('exec_mine')).toMatchObject({ executionId: 'exec_mine', metadata: { k: 'v' } })
    expect((await e.stats()).submitted).toBe(1)
    const rec = await pending
    expect(rec).toMatchObject({ executionId: 'exec_mine', metadata: { k: 'v' } })
    expect((await e.wait('exec_mine')).status).toBe('completed')
    // A second batch, after the first was handed over, is seen the same way
    // by every reading method.
    const more = [1, 2, 3].map((n) => e.submit({ tenantId: T, callableName: 'echo', executionId: `exec_more_${n}` }))
    expect((await e.stats()).submitted).toBe(4)
    const another = e.submit({ tenantId: T, callableName: 'echo', executionId: 'exec_last' })
    expect((await e.listExecutions()).map((r) => r.executionId)).toContain('exec_last')
    const late = e.submit({ tenantId: T, callableName: 'echo', executionId: 'exec_cancel_me' })
    expect(await e.cancel('exec_cancel_me')).toBe(true)
    await Promise.all([...more, another, late])
    await e.idle()
    expect(await e.stats()).toMatchObject({ submitted: 6, completed: 5, cancelled: 1 })
  })

  test('the package entry routes submit and the stimuli through the JS runtime, with the native contract', async () => {
    const e = engine()
    expect(e.submit.name).toBe('submit')
    const err = await rejection(e.submit({ tenantId: T, callableName: 'nope' }))
    expect(err.code).toBe('ENACT_UNKNOWN_CALLABLE')
    expect(await e.emit({ type: 'x', tenantId: T })).toEqual([])
    expect(await e.emitBatch([])).toEqual([])
    expect(await e.lifecycle({ type: 'x', tenantId: T })).toEqual([])
    // Unbound calls fail loudly, as the native methods do.
    const { submit } = e
    expect(() => submit({ tenantId: T, callableName: 'nope' })).toThrow(TypeError)
  })

  test('the record submit resolves with equals the stored one, with or without config', async () => {
    // The gate holds the only slot, so both stay queued while compared.
    const { e, open } = await gatedEngine((ctx) => ctx.input)
    e.registerTarget('thread.title', () => {})
    const plain = await e.submit({ tenantId: T, callableName: 'job', input: 'x', context: { a: 'b' } })
    const configured = await e.submit({ tenantId: T, callableName: 'job', config: { priority: 7, targetBinding: { targetType: 'thread.title' } }, metadata: { m: 1 } })
    expect(plain).toEqual(await e.getExecution(plain.executionId))
    expect(configured).toEqual(await e.getExecution(configured.executionId))
    expect(plain.status).toBe('queued')
    open()
  })

  test('a non-object request and bad options are rejected', async () => {
    const e = engine()
    expect((await rejection(e.submit('run it'))).code).toBe('ENACT_INVALID_EXECUTION')
    expect(() => engine({ concurrency: 0 })).toThrow(expect.objectContaining({ code: 'ENACT_INVALID_EXECUTION', message: expect.stringMatching(/^concurrency: /) }))
    expect(() => engine({ store: { sqlite: 'x.db' } })).toThrow(
      expect.objectContaining({ code: 'ENACT_INVALID_EXECUTION', message: expect.stringMatching(/^store: .*BackgroundEngine\.open/) }),
    )
    await expect(BackgroundEngine.open({ store: { postgres: 'postgres://x' } })).rejects.toMatchObject({ code: 'ENACT_STORE' })
    expect(() => e.registerCallable('', async () => 1)).toThrow(expect.objectContaining({ message: expect.stringMatching(/^name: /) }))
    expect(() => e.registerCallable('x', 'not a function')).toThrow(expect.objectContaining({ message: expect.stringMatching(/^fn: /) }))
    expect(() => e.registerTarget('thread.colour', () => {})).toThrow(expect.objectContaining({ message: expect.stringMatching(/^targetType: /) }))
    expect(() => e.on('execution.done', () => {})).toThrow(expect.objectContaining({ message: expect.stringMatching(/^event: unknown event/) }))
    await expect(e.listExecutions({ status: 'done' })).rejects.toMatchObject({ code: 'ENACT_INVALID_EXECUTION', message: expect.stringMatching(/^filter\.status: /) })
  })

  test('unknown ids', async () => {
    const e = engine()
    expect(await e.getExecution('exec_missing')).toBeNull()
    expect((await rejection(e.wait('exec_missing'))).code).toBe('ENACT_NOT_FOUND')
    expect((await rejection(e.cancel('exec_missing'))).code).toBe('ENACT_NOT_FOUND')
  })
})

describe('nothing a callable does crashes the engine', () => {
  const misbehaving = {
    throws: () => {
      throw new Error('boom')
    },
    rejects: async () => {
      throw new TypeError('bad type')
    },
    throwsString: () => {
      throw 'just a string'
    },
    returnsSymbol: async () => Symbol('s'),
    returnsBigInt: async () => 10n,
    returnsCircular: async () => {
      const o = { name: 'loop' }
      o.self = o
      return o
    },
    returnsFunction: async () => () => 1,
    hostileError: async () => {
      throw { get message() { throw new Error('nope') }, toString() { throw new Error('nope') } }
    },
  }

  test.each(Object.keys(misbehaving))('%s ends as a failed execution with a readable error', async (name) => {
    const e = engine()
    e.registerCallable(name, misbehaving[name])
    e.registerCallable('fine', async () => 'still serving')
    const rec = await e.submit({ tenantId: T, callableName: name, config: { mode: 'silent' } })
    expect(rec.status).toBe('failed')
    expect(rec.error).toMatchObject({ category: 'ToolError', attempt: 1 })
    expect(typeof rec.error.message).toBe('string')
    expect(rec.error.message.length).toBeGreaterThan(5)
    const ok = await e.submit({ tenantId: T, callableName: 'fine', config: { mode: 'silent' } })
    expect(ok.output).toBe('still serving')
  })

  test('error messages say what went wrong', async () => {
    const e = engine()
    for (const [name, fn] of Object.entries(misbehaving)) e.registerCallable(name, fn)
    const run = async (name) => (await e.submit({ tenantId: T, callableName: name, config: { mode: 'silent' } })).error
    expect((await run('throws')).message).toBe('callable threw: boom')
    expect((await run('throws')).details).toMatchObject({ name: 'Error' })
    expect((await run('throwsString')).message).toBe('callable threw: just a string')
    expect((await run('returnsSymbol')).message).toBe('callable returned symbol; return a JSON value (or nothing, or null)')
    expect((await run('returnsFunction')).message).toBe('callable returned function; return a JSON value (or nothing, or null)')
    expect((await run('returnsBigInt')).message).toMatch(/not JSON-serializable.*BigInt/)
    expect((await run('returnsCircular')).message).toMatch(/not JSON-serializable.*circular/i)
  })

  test('a callable that returns undefined or nothing succeeds with output null', async () => {
    const e = engine()
    e.registerCallable('asyncNothing', async () => {})
    e.registerCallable('syncNothing', () => {})
    e.registerCallable('asyncUndefined', async () => undefined)
    for (const name of ['asyncNothing', 'syncNothing', 'asyncUndefined']) {
      const rec = await e.submit({ tenantId: T, callableName: name, config: { mode: 'silent' } })
      expect(rec).toMatchObject({ status: 'completed', output: null })
      expect(rec.error).toBeUndefined()
      expect(await e.getExecution(rec.executionId)).toMatchObject({ status: 'completed', output: null })
    }
    expect((await e.stats()).failed).toBe(0)
  })

  test('a hanging callable times out and its signal aborts', async () => {
    const e = engine()
    const hang = hangUntilAborted()
    e.registerCallable('hang', hang.fn)
    const rec = await e.submit({ tenantId: T, callableName: 'hang', config: { mode: 'silent', timeoutMs: 30 } })
    expect(rec.status).toBe('timeout')
    expect(rec.error).toMatchObject({ category: 'Timeout', message: 'timed out after 30 ms' })
    const reason = await hang.aborted
    expect(reason).toMatchObject({ name: 'TimeoutError', code: 'ENACT_TIMEOUT' })
  })

  test('a result arriving after the timeout is ignored', async () => {
    const e = engine()
    const release = deferred()
    e.registerCallable('late', async () => {
      await release.promise
      return 'too late'
    })
    const rec = await e.submit({ tenantId: T, callableName: 'late', config: { mode: 'silent', timeoutMs: 20 } })
    expect(rec.status).toBe('timeout')
    release.resolve()
    await new Promise((r) => setImmediate(r))
    await new Promise((r) => setImmediate(r))
    expect(await e.getExecution(rec.executionId)).toMatchObject({ status: 'timeout' })
    expect((await e.getExecution(rec.executionId)).output).toBeUndefined()
    expect((await e.stats()).staleResults).toBe(1)
  })
})

describe('retries', () => {
  test('a failing attempt is retried with backoff and emits execution.retrying', async () => {
    const e = engine()
    const retrying = []
    e.on('execution.retrying', (r) => retrying.push(r))
    e.registerCallable('flaky', async (ctx) => {
      if (ctx.attempt < 3) throw new Error(`attempt ${ctx.attempt} failed`)
      return `ok on ${ctx.attempt}`
    })
    const rec = await e.submit({
      tenantId: T,
      callableName: 'flaky',
      config: { mode: 'silent', retry: { maxAttempts: 3, backoffMs: 5, backoffMultiplier: 2 } },
    })
    expect(rec).toMatchObject({ status: 'completed', output: 'ok on 3', attempt: 3 })
    expect(retrying.map((r) => [r.status, r.attempt, r.error.message])).toEqual([
      ['queued', 1, 'callable threw: attempt 1 failed'],
      ['queued', 2, 'callable threw: attempt 2 failed'],
    ])
    expect((await e.stats()).retried).toBe(2)
  })

  test('attempts run out: failed with the last error', async () => {
    const e = engine()
    e.registerCallable('broken', async (ctx) => {
      throw new Error(`no luck ${ctx.attempt}`)
    })
    const rec = await e.submit({ tenantId: T, callableName: 'broken', config: { mode: 'silent', retry: { maxAttempts: 2, backoffMs: 1 } } })
    expect(rec.status).toBe('failed')
    expect(rec.error).toMatchObject({ attempt: 2, message: 'callable threw: no luck 2', retry_policy: { max_retries: 1, retryable: true } })
  })

  test('an error with retryable: false is not retried', async () => {
    const e = engine()
    let calls = 0
    e.registerCallable('fatal', async () => {
      calls++
      throw Object.assign(new Error('invalid account'), { retryable: false, code: 'E_ACCOUNT' })
    })
    const rec = await e.submit({ tenantId: T, callableName: 'fatal', config: { mode: 'silent', retry: { maxAttempts: 5, backoffMs: 1 } } })
    expect(calls).toBe(1)
    expect(rec.error).toMatchObject({ code: 'E_ACCOUNT', retry_policy: { retryable: false } })
  })

  test('a timed-out attempt with attempts left is retried', async () => {
    const e = engine()
    e.registerCallable('slowOnce', (ctx) => (ctx.attempt === 1 ? new Promise(() => {}) : Promise.resolve('second time')))
    const rec = await e.submit({ tenantId: T, callableName: 'slowOnce', config: { mode: 'silent', timeoutMs: 20, retry: { maxAttempts: 2, backoffMs: 1 } } })
    expect(rec).toMatchObject({ status: 'completed', output: 'second time', attempt: 2 })
  })
})

describe('cancellation', () => {
  test('a queued execution is cancelled at once and never runs', async () => {
    const e = engine({ concurrency: 1 })
    const gate = deferred()
    const ran = []
    e.registerCallable('job', async (ctx) => {
      ran.push(ctx.input)
      if (ctx.input === 'blocker') await gate.promise
      return ctx.input
    })
    const blocker = await e.submit({ tenantId: T, callableName: 'job', input: 'blocker' })
    const victim = await e.submit({ tenantId: T, callableName: 'job', input: 'victim' })
    const cancelled = nextEvent(e, 'execution.cancelled')
    expect(await e.cancel(victim.executionId)).toBe(true)
    expect((await cancelled).executionId).toBe(victim.executionId)
    expect((await e.getExecution(victim.executionId)).status).toBe('cancelled')
    gate.resolve()
    await e.wait(blocker.executionId)
    expect(ran).toEqual(['blocker'])
    expect(await e.cancel(victim.executionId)).toBe(false)
  })

  test('a running execution is aborted and its late result ignored', async () => {
    const e = engine()
    const started = deferred()
    const aborted = deferred()
    e.registerCallable('long', async (ctx) => {
      ctx.signal.addEventListener('abort', () => aborted.resolve(ctx.signal.reason))
      started.resolve()
      await new Promise((r) => setTimeout(r, 30))
      return 'finished anyway'
    })
    const rec = await e.submit({ tenantId: T, callableName: 'long' })
    const waiting = e.wait(rec.executionId)
    await started.promise
    expect(await e.cancel(rec.executionId)).toBe(true)
    expect((await aborted.promise).code).toBe('ENACT_CANCELLED')
    const final = await waiting
    expect(final.status).toBe('cancelled')
    expect(final.output).toBeUndefined()
    expect(await e.cancel(rec.executionId)).toBe(false)
  })
})

describe('queue order and concurrency', () => {
  test('higher priority first, then FIFO', async () => {
    const { e, order, held, open } = await gatedEngine((ctx) => ctx.input)
    const recs = []
    for (const [input, priority] of [['low-1', 10], ['mid-1', 50], ['high-1', 200], ['mid-2', 50], ['low-2', 10], ['high-2', 200]]) {
      recs.push(await e.submit({ tenantId: T, callableName: 'job', input, config: { priority } }))
    }
    open()
    await Promise.all([held, ...recs].map((r) => e.wait(r.executionId)))
    expect(order).toEqual(['high-1', 'high-2', 'mid-1', 'mid-2', 'low-1', 'low-2'])
  })

  test('engine-wide concurrency is never exceeded', async () => {
    const e = engine({ concurrency: 3 })
    let running = 0
    let peak = 0
    e.registerCallable('job', async () => {
      running++
      peak = Math.max(peak, running)
      await new Promise((r) => setImmediate(r))
      running--
      return null
    })
    const recs = await Promise.all(Array.from({ length: 50 }, () => e.submit({ tenantId: T, callableName: 'job' })))
    await Promise.all(recs.map((r) => e.wait(r.executionId)))
    expect(peak).toBe(3)
  })

  test('tenantConcurrency caps each tenant and a noisy tenant cannot starve a quiet one', async () => {
    const e = engine({ concurrency: 4, tenantConcurrency: 2 })
    const running = new Map()
    let peakPerTenant = 0
    const order = []
    e.registerCallable('job', async (ctx) => {
      order.push(ctx.tenantId)
      running.set(ctx.tenantId, (running.get(ctx.tenantId) || 0) + 1)
      peakPerTenant = Math.max(peakPerTenant, running.get(ctx.tenantId))
      await new Promise((r) => setImmediate(r))
      running.set(ctx.tenantId, running.get(ctx.tenantId) - 1)
      return null
    })
    const noisy = Array.from({ length: 100 }, () => e.submit({ tenantId: 'noisy', callableName: 'job' }))
    const quiet = Array.from({ length: 5 }, () => e.submit({ tenantId: 'quiet', callableName: 'job' }))
    const recs = await Promise.all([...noisy, ...quiet])
    await Promise.all(recs.map((r) => e.wait(r.executionId)))
    expect(peakPerTenant).toBe(2)
    // All five quiet jobs ran among the first 20 starts, not after the 100 noisy ones.
    const lastQuiet = order.lastIndexOf('quiet')
    expect(lastQuiet).toBeLessThan(20)
  })

  test('registerCallable concurrency caps one callable; its backlog does not hold up the others', async () => {
    const e = engine({ concurrency: 8 })
    let slowRunning = 0
    let slowPeak = 0
    const fastDone = []
    const release = deferred()
    e.registerCallable(
      'slow',
      async () => {
        slowRunning++
        slowPeak = Math.max(slowPeak, slowRunning)
        await release.promise
        slowRunning--
        return null
      },
      { concurrency: 2 },
    )
    e.registerCallable('fast', async (ctx) => {
      fastDone.push(ctx.input)
      return null
    })
    const slow = Array.from({ length: 20 }, () => e.submit({ tenantId: T, callableName: 'slow' }))
    const fast = Array.from({ length: 5 }, (_, i) => e.submit({ tenantId: T, callableName: 'fast', input: `f${i}` }))
    const fastRecs = await Promise.all(fast)
    // The fast work finishes while 18 slow executions still wait behind the limit.
    await Promise.all(fastRecs.map((r) => e.wait(r.executionId)))
    expect(fastDone).toEqual(['f0', 'f1', 'f2', 'f3', 'f4'])
    expect(slowRunning).toBe(2)
    expect(await e.stats()).toMatchObject({ running: 2, queued: 18 })
    release.resolve()
    const slowRecs = await Promise.all(slow)
    await Promise.all(slowRecs.map((r) => e.wait(r.executionId)))
    expect(slowPeak).toBe(2)
    expect(await e.stats()).toMatchObject({ completed: 25, running: 0, queued: 0 })
  })

  test.each([
    [{ concurrency: 0 }, /^options\.concurrency: expected a positive integer, got 0/],
    [{ concurrency: 1.5 }, /^options\.concurrency: expected a positive integer/],
    [{ concurrency: '2' }, /^options\.concurrency: expected a positive integer, got "2"/],
    [{ limit: 2 }, /^options\.limit: unknown field/],
    ['fast', /^options: expected an object/],
  ])('registerCallable options %p are refused', (options, message) => {
    const e = engine()
    let err
    try {
      e.registerCallable('x', async () => null, options)
    } catch (caught) {
      err = caught
    }
    expect(err && err.code).toBe('ENACT_INVALID_EXECUTION')
    expect(err.message).toMatch(message)
  })

  test('tenants at equal priority take turns', async () => {
    const { e, order, held, open } = await gatedEngine((ctx) => ctx.tenantId)
    const recs = []
    for (let i = 0; i < 4; i++) recs.push(await e.submit({ tenantId: 'a', callableName: 'job' }))
    for (let i = 0; i < 2; i++) recs.push(await e.submit({ tenantId: 'b', callableName: 'job' }))
    open()
    await Promise.all([held, ...recs].map((r) => e.wait(r.executionId)))
    expect(order).toEqual(['a', 'b', 'a', 'b', 'a', 'a'])
  })
})

describe('target binding', () => {
  test('the transformed result goes to the target handler', async () => {
    const e = engine()
    const titles = []
    e.registerTarget('thread.title', (value, binding) => {
      titles.push([value, binding.threadId, binding.execution.executionId])
    })
    e.registerCallable('summarize', async () => 'Quarterly planning\nDetails follow')
    const applied = nextEvent(e, 'binding.applied')
    const rec = await e.submit({
      tenantId: T,
      callableName: 'summarize',
      config: { mode: 'silent', targetBinding: { targetType: 'thread.title', transform: 'first_line', maxLength: 100, threadId: 'thread_1' } },
    })
    expect(rec.targetBindingApplied).toBe(true)
    expect(rec.bindingResult).toMatchObject({ targetType: 'thread.title', success: true, appliedValue: 'Quarterly planning' })
    expect(titles).toEqual([['Quarterly planning', 'thread_1', rec.executionId]])
    expect((await applied).executionId).toBe(rec.executionId)
  })

  test('json_extract of an object output, awaited async handler', async () => {
    const e = engine()
    const seen = []
    e.registerTarget('custom', async (value, b) => {
      await new Promise((r) => setImmediate(r))
      seen.push([b.targetPath, value])
    })
    e.registerCallable('report', async () => ({ items: [{ id: 1 }, { id: 2 }] }))
    const rec = await e.submit({
      tenantId: T,
      callableName: 'report',
      config: { mode: 'silent', targetBinding: { targetType: 'custom', targetPath: 'crm.note', transform: 'json_extract', jsonPath: '$.items[*].id' } },
    })
    expect(rec.targetBindingApplied).toBe(true)
    expect(seen).toEqual([['crm.note', '[1,2]']])
  })

  test('a throwing handler fails the binding, never the execution', async () => {
    const e = engine()
    e.registerTarget('memory.write', () => {
      throw new Error('memory is full')
    })
    e.registerCallable('fact', async () => 'the sky is blue')
    const failed = nextEvent(e, 'binding.failed')
    const rec = await e.submit({ tenantId: T, callableName: 'fact', config: { mode: 'silent', targetBinding: { targetType: 'memory.write' } } })
    expect(rec.status).toBe('completed')
    expect(rec.targetBindingApplied).toBe(false)
    expect(rec.bindingResult).toMatchObject({ success: false, error: 'target handler threw: memory is full' })
    expect((await failed).bindingResult.success).toBe(false)
  })

  test('no handler for the target type fails the binding with a message', async () => {
    const e = engine()
    e.registerCallable('fact', async () => 'x')
    const rec = await e.submit({ tenantId: T, callableName: 'fact', config: { mode: 'silent', targetBinding: { targetType: 'artifact.create' } } })
    expect(rec.status).toBe('completed')
    expect(rec.bindingResult.error).toBe('no target handler registered for "artifact.create"')
  })
})

describe('events, queries and stats', () => {
  test('each lifecycle event carries the record; off() stops delivery', async () => {
    const e = engine()
    const seen = []
    const names = ['execution.queued', 'execution.started', 'execution.completed', 'execution.failed']
    const listeners = names.map((name) => {
      const fn = (rec) => seen.push([name, rec.status, rec.callableName])
      e.on(name, fn)
      return [name, fn]
    })
    e.registerCallable('ok', async () => 1)
    e.registerCallable('bad', async () => {
      throw new Error('no')
    })
    await e.submit({ tenantId: T, callableName: 'ok', config: { mode: 'silent' } })
    await e.submit({ tenantId: T, callableName: 'bad', config: { mode: 'silent' } })
    expect(seen).toEqual([
      ['execution.queued', 'queued', 'ok'],
      ['execution.started', 'running', 'ok'],
      ['execution.completed', 'completed', 'ok'],
      ['execution.queued', 'queued', 'bad'],
      ['execution.started', 'running', 'bad'],
      ['execution.failed', 'failed', 'bad'],
    ])
    for (const [name, fn] of listeners) e.off(name, fn)
    await e.submit({ tenantId: T, callableName: 'ok', config: { mode: 'silent' } })
    expect(seen).toHaveLength(6)
  })

  test('a throwing listener does not disturb the engine; it surfaces as a process warning', async () => {
    const { code, out } = await runNode(`
      const { BackgroundEngine } = require('.')
      process.on('warning', (w) => console.log('warning:', w.code, w.message.split('\\n')[0]))
      const e = new BackgroundEngine()
      e.on('execution.completed', () => { throw new Error('listener bug') })
      e.on('execution.completed', (r) => console.log('second listener saw', r.status))
      e.registerCallable('ok', async () => 1)
      e.submit({ tenantId: 't', callableName: 'ok', config: { mode: 'silent' } })
        .then((r) => console.log('submit resolved', r.status))
    `)
    expect(code).toBe(0)
    expect(out).toContain('second listener saw completed')
    expect(out).toContain('submit resolved completed')
    expect(out).toMatch(/warning: ENACT_LISTENER listener for execution.completed threw: Error: listener bug/)
  })

  test('listExecutions filters by tenant, status and callable; stats counts', async () => {
    const e = engine()
    e.registerCallable('a', async () => 1)
    e.registerCallable('b', async () => {
      throw new Error('x')
    })
    for (const [tenantId, callableName] of [['t1', 'a'], ['t1', 'b'], ['t2', 'a'], ['t2', 'a']]) {
      await e.submit({ tenantId, callableName, config: { mode: 'silent' } })
    }
    expect(await e.listExecutions()).toHaveLength(4)
    expect((await e.listExecutions({ tenantId: 't2' })).map((r) => r.tenantId)).toEqual(['t2', 't2'])
    expect((await e.listExecutions({ status: 'failed' })).map((r) => r.callableName)).toEqual(['b'])
    expect(await e.listExecutions({ callableName: 'a', tenantId: 't1' })).toHaveLength(1)
    expect(await e.listExecutions({ limit: 3 })).toHaveLength(3)
    expect(await e.stats()).toMatchObject({ completed: 3, failed: 1, queued: 0, running: 0, inFlight: 0, submitted: 4, concurrency: 16 })
  })
})

describe('under load', () => {
  test('100,000 submissions at concurrency 64: every one finishes exactly once', async () => {
    const e = engine({ concurrency: 64 })
    const runs = new Map()
    e.registerCallable('work', async (ctx) => {
      runs.set(ctx.executionId, (runs.get(ctx.executionId) || 0) + 1)
      if (ctx.input === 'fail') throw new Error('planned')
      return ctx.input.length
    })
    const N = 100_000
    const submitted = []
    for (let i = 0; i < N; i++) {
      submitted.push(e.submit({ tenantId: `t${i % 7}`, callableName: 'work', input: i % 10 === 0 ? 'fail' : 'ok', config: { priority: i % 3 } }))
    }
    const recs = await Promise.all(submitted)
    const finals = await Promise.all(recs.map((r) => e.wait(r.executionId)))
    expect(new Set(recs.map((r) => r.executionId)).size).toBe(N)
    expect(finals.filter((r) => r.status === 'completed')).toHaveLength(N * 0.9)
    expect(finals.filter((r) => r.status === 'failed')).toHaveLength(N * 0.1)
    expect(runs.size).toBe(N)
    expect([...runs.values()].every((n) => n === 1)).toBe(true)
    expect(await e.stats()).toMatchObject({ queued: 0, running: 0, completed: N * 0.9, failed: N * 0.1 })
  }, 120_000)

  test('a long run of instant callables lets timers and I/O run in between', async () => {
    const e = engine({ concurrency: 64 })
    let done = 0
    e.registerCallable('noop', async () => {
      done++
      return null
    })
    const N = 100_000
    const last = []
    for (let i = 0; i < N; i++) last.push(e.submit({ tenantId: 't', callableName: 'noop' }))
    // Work chains through microtasks; the engine hands the loop back every
    // few milliseconds, so this timer fires while work is still pending.
    const atTimer = await new Promise((resolve) => setTimeout(() => resolve(done), 0))
    expect(atTimer).toBeLessThan(N)
    await Promise.all((await Promise.all(last)).map((r) => e.wait(r.executionId)))
    expect(done).toBe(N)
  }, 120_000)

  test('idle() resolves once queued, delayed and running work is done', async () => {
    const e = engine({ concurrency: 8 })
    await e.idle() // nothing to do: at once
    let done = 0
    e.registerCallable('noop', async () => {
      done++
      return null
    })
    for (let i = 0; i < 1000; i++) e.submit({ tenantId: `t${i % 3}`, callableName: 'noop' })
    e.submit({ tenantId: 't', callableName: 'noop', config: { mode: 'deferred', delayMs: 50 } })
    await e.idle()
    expect(done).toBe(1001)
    expect(await e.stats()).toMatchObject({ queued: 0, running: 0, completed: 1001 })
  })

  test('keepFinished bounds the finished executions kept; counts still add up', async () => {
    const e = engine({ keepFinished: 2 })
    e.registerCallable('echo', async (ctx) => ctx.input)
    const done = []
    for (const input of ['a', 'b', 'c']) done.push(await e.submit({ tenantId: T, callableName: 'echo', input, config: { mode: 'silent' } }))
    expect(done.map((r) => r.output)).toEqual(['a', 'b', 'c'])
    expect(await e.getExecution(done[0].executionId)).toBeNull()
    expect((await e.listExecutions()).map((r) => r.output)).toEqual(['b', 'c'])
    expect(await e.stats()).toMatchObject({ completed: 3, submitted: 3 })
    expect((await rejection(e.wait(done[0].executionId))).code).toBe('ENACT_NOT_FOUND')
    expect(() => engine({ keepFinished: -1 })).toThrow(expect.objectContaining({ code: 'ENACT_INVALID_EXECUTION', message: expect.stringMatching(/^keepFinished: /) }))
  })
})
