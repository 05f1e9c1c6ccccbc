const http = require('http')
const { deferred, engine, listen } = require('./helpers')

const T = 'tenant_a'

/**
 * A callback receiver. `statusFor(path, n)` picks the answer to the n-th
 * (1-based) request on `path` (default 200). `received(path, n)` resolves
 * once `path` got `n` requests, with all of them so far.
 */
async function receiver(statusFor = () => 200) {
  const requests = []
  const waiting = []
  const onPath = (path) => requests.filter((r) => r.path === path)
  const check = () => {
    for (const w of [...waiting]) {
      if (onPath(w.path).length >= w.n) {
        waiting.splice(waiting.indexOf(w), 1)
        w.resolve(onPath(w.path))
      }
    }
  }
  const { url } = await listen((req, res) => {
    const chunks = []
    req.on('data', (c) => chunks.push(c))
    req.on('end', () => {
      const text = Buffer.concat(chunks).toString('utf8')
      const path = req.url
      const r = { path, method: req.method, headers: req.headers, text, at: Date.now() }
      try {
        r.body = JSON.parse(text)
      } catch {}
      requests.push(r)
      res.statusCode = statusFor(path, onPath(path).length)
      res.end()
      check()
    })
  })
  const received = (path, n = 1) => {
    const d = deferred()
    waiting.push({ path, n, resolve: d.resolve })
    check()
    return d.promise
  }
  return { url, requests, onPath, received }
}

/**
 * The real `process`: Jest gives each test file a copy, whose listeners never
 * see the warnings that the addon's runtime (in Node's main realm) emits.
 */
const hostProcess = require('vm').runInThisContext('process')

/** Resolves with the next process warning whose message contains `text`. */
function nextWarning(text) {
  return new Promise((resolve) => {
    const fn = (w) => {
      if (!String(w.message).includes(text)) return
      hostProcess.off('warning', fn)
      resolve(w)
    }
    hostProcess.on('warning', fn)
  })
}

/** An engine with callables `ok` (returns {doubled: input*2} for a numeric input) and `boom` (throws). */
function setup() {
  const e = engine()
  e.registerCallable('ok', async (ctx) => ({ doubled: Number(ctx.input) * 2 }))
  e.registerCallable('boom', async () => {
    throw new Error('kaboom')
  })
  return e
}

const deferredTo = (callbackUrl, extra = {}) => ({ mode: 'deferred', delayMs: 0, callbackUrl, ...extra })

/**
 * Submits a deferred execution calling back to `/barrier` and waits for its
 * POST: callbacks of records that finished earlier have been sent by then.
 */
async function barrier(e, rx) {
  const before = rx.onPath('/barrier').length
  const rec = await e.submit({ tenantId: 'tenant_barrier', callableName: 'ok', input: '0', config: deferredTo(`${rx.url}/barrier`) })
  const got = await rx.received('/barrier', before + 1)
  expect(got[got.length - 1].body.executionId).toBe(rec.executionId)
}

describe('callbackUrl of deferred executions', () => {
  test('a completed execution POSTs its final record as JSON, once', async () => {
    const e = setup()
    const rx = await receiver()
    const queued = await e.submit({ tenantId: T, callableName: 'ok', input: '21', config: deferredTo(`${rx.url}/cb`) })
    expect(queued.status).toBe('queued')
    expect(queued.config.callbackUrl).toBe(`${rx.url}/cb`)
    const [req] = await rx.received('/cb')
    expect(req.method).toBe('POST')
    expect(req.headers['content-type']).toMatch(/^application\/json/)
    expect(req.body).toMatchObject({
      executionId: queued.executionId,
      tenantId: T,
      callableName: 'ok',
      status: 'completed',
      output: { doubled: 42 },
      config: { mode: 'deferred', callbackUrl: `${rx.url}/cb` },
    })
    expect(req.body).toEqual(await e.wait(queued.executionId))
    await barrier(e, rx)
    expect(rx.onPath('/cb')).toHaveLength(1)
  })

  test('a failed execution POSTs too, with status failed and its error', async () => {
    const e = setup()
    const rx = await receiver()
    const queued = await e.submit({ tenantId: T, callableName: 'boom', config: deferredTo(`${rx.url}/cb`, { retry: { maxAttempts: 1 } }) })
    const [req] = await rx.received('/cb')
    expect(req.headers['content-type']).toMatch(/^application\/json/)
    expect(req.body).toMatchObject({ executionId: queued.executionId, status: 'failed', error: { message: expect.stringContaining('kaboom') } })
    expect(req.body).toEqual(await e.wait(queued.executionId))
    await barrier(e, rx)
    expect(rx.onPath('/cb')).toHaveLength(1)
  })

  test('an execution that is retried POSTs once, with the final outcome', async () => {
    const e = setup()
    let calls = 0
    e.registerCallable('flaky', async () => {
      if (++calls === 1) throw new Error('first attempt fails')
      return 'second time lucky'
    })
    const rx = await receiver()
    const queued = await e.submit({ tenantId: T, callableName: 'flaky', config: deferredTo(`${rx.url}/cb`, { retry: { maxAttempts: 2, backoffMs: 1 } }) })
    const [req] = await rx.received('/cb')
    expect(req.body).toMatchObject({ executionId: queued.executionId, status: 'completed', output: 'second time lucky', attempt: 2 })
    await barrier(e, rx)
    expect(rx.onPath('/cb')).toHaveLength(1)
  })

  test('503 twice then 200: three POSTs of the same record, with growing backoff', async () => {
    const e = setup()
    const rx = await receiver((path, n) => (path === '/cb' && n <= 2 ? 503 : 200))
    const warnings = []
    const onWarning = (w) => warnings.push(w)
    hostProcess.on('warning', onWarning)
    try {
      const queued = await e.submit({ tenantId: T, callableName: 'ok', input: '5', config: deferredTo(`${rx.url}/cb`) })
      const reqs = await rx.received('/cb', 3)
      expect(reqs).toHaveLength(3)
      expect(reqs[0].body).toMatchObject({ executionId: queued.executionId, status: 'completed', output: { doubled: 10 } })
      expect(reqs[1].text).toBe(reqs[0].text)
      expect(reqs[2].text).toBe(reqs[0].text)
      // Backoff waits at least 250 ms, then 500 ms (timers never fire early by more than a tick).
      expect(reqs[1].at - reqs[0].at).toBeGreaterThanOrEqual(240)
      expect(reqs[2].at - reqs[1].at).toBeGreaterThanOrEqual(490)
      await barrier(e, rx)
      expect(rx.onPath('/cb')).toHaveLength(3)
      expect(warnings.filter((w) => String(w.message).includes(rx.url))).toEqual([])
    } finally {
      hostProcess.off('warning', onWarning)
    }
  })

  test('429 is retried like a 5xx', async () => {
    const e = setup()
    const rx = await receiver((path, n) => (path === '/cb' && n === 1 ? 429 : 200))
    const queued = await e.submit({ tenantId: T, callableName: 'ok', input: '1', config: deferredTo(`${rx.url}/cb`) })
    const reqs = await rx.received('/cb', 2)
    expect(reqs.map((r) => r.body.executionId)).toEqual([queued.executionId, queued.executionId])
    await barrier(e, rx)
    expect(rx.onPath('/cb')).toHaveLength(2)
  })

  test('400 is not retried: one POST and a process warning naming the URL', async () => {
    const e = setup()
    const rx = await receiver((path) => (path === '/cb' ? 400 : 200))
    const url = `${rx.url}/cb`
    const warning = nextWarning(url)
    const queued = await e.submit({ tenantId: T, callableName: 'ok', input: '3', config: deferredTo(url) })
    const w = await warning
    expect(w.code).toBe('ENACT_LISTENER')
    expect(w.message).toContain(url)
    expect(w.message).toContain(queued.executionId)
    expect(w.message).toMatch(/400/)
    // The warning means it gave up.
    expect(rx.onPath('/cb')).toHaveLength(1)
    expect(rx.onPath('/cb')[0].body).toMatchObject({ executionId: queued.executionId, status: 'completed' })
  })

  test('connection refused: gives up after 4 attempts with a process warning naming the URL', async () => {
    const e = setup()
    // A port that was just open and is now closed.
    const closed = http.createServer()
    await new Promise((resolve) => closed.listen(0, '127.0.0.1', resolve))
    const port = closed.address().port
    await new Promise((resolve) => closed.close(resolve))
    const url = `http://127.0.0.1:${port}/cb`
    const warning = nextWarning(url)
    const queued = await e.submit({ tenantId: T, callableName: 'ok', input: '4', config: deferredTo(url) })
    expect((await e.wait(queued.executionId)).status).toBe('completed')
    const w = await warning
    expect(w.code).toBe('ENACT_LISTENER')
    expect(w.message).toContain(url)
    expect(w.message).toContain(queued.executionId)
    expect(w.message).toMatch(/4 attempts/)
  })

  test('an execution without callbackUrl makes no request', async () => {
    const e = setup()
    const rx = await receiver()
    const plain = await e.submit({ tenantId: T, callableName: 'ok', input: '7', config: { mode: 'deferred', delayMs: 0 } })
    expect(plain.config.callbackUrl).toBeUndefined()
    expect((await e.wait(plain.executionId)).status).toBe('completed')
    await barrier(e, rx)
    expect(rx.requests.map((r) => r.path)).toEqual(['/barrier'])
    expect(rx.requests.some((r) => r.body && r.body.executionId === plain.executionId)).toBe(false)
  })
})
