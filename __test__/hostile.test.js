// Issue 10, item 4: whatever a callable, target handler or listener throws
// (or a callable returns), the engine reads it under a guard. Each case runs
// in a child process, since the failure mode is a crash of the process.
const { runNode } = require('./helpers')

/**
 * Runs `body` (which may use `e`, `hostile` and `log(...)`) in a fresh
 * Node process; resolves with its exit code and the JSON lines it logged.
 */
async function child(body) {
  const { code, out } = await runNode(`
    const { BackgroundEngine } = require('.')
    const log = (v) => console.log('@@' + JSON.stringify(v))
    process.on('warning', (w) => log({ warning: w.code, message: w.message }))
    // An object whose every property read throws, and a Proxy that throws on every trap.
    const hostile = {
      getters: () => Object.defineProperties({}, Object.fromEntries(
        ['message', 'name', 'stack', 'code', 'retryable', 'then', 'toJSON', 'toString', Symbol.toPrimitive, Symbol.toStringTag]
          .map((k) => [k, { get() { throw new Error('getter ' + String(k) + ' throws') }, enumerable: true }]))),
      proxy: () => {
        const boom = () => { throw new Error('trap throws') }
        return new Proxy({}, { get: boom, has: boom, ownKeys: boom, getOwnPropertyDescriptor: boom, getPrototypeOf: boom, set: boom, defineProperty: boom, deleteProperty: boom, isExtensible: boom, preventExtensions: boom, setPrototypeOf: boom })
      },
      // A Proxy whose traps throw a Proxy of the same kind.
      deepProxy: () => {
        const make = () => new Proxy({}, { get() { throw make() }, getPrototypeOf() { throw make() }, ownKeys() { throw make() }, getOwnPropertyDescriptor() { throw make() }, has() { throw make() } })
        return make()
      },
      revoked: () => { const r = Proxy.revocable({}, {}); r.revoke(); return r.proxy },
    }
    const e = new BackgroundEngine()
    ;(async () => {
      ${body}
    })().then(() => e.shutdown()).then(() => log({ done: true }), (err) => log({ outer: String(err && err.stack) }))
  `)
  const lines = out
    .split('\n')
    .filter((l) => l.startsWith('@@'))
    .map((l) => JSON.parse(l.slice(2)))
  return { code, out, lines }
}

const KINDS = ['getters', 'proxy', 'deepProxy', 'revoked']

describe('a callable that throws or rejects with a hostile value', () => {
  test('each ends as a failed execution and the process lives on', async () => {
    const { code, out, lines } = await child(`
      for (const kind of ${JSON.stringify(KINDS)}) {
        e.registerCallable('throw_' + kind, () => { throw hostile[kind]() })
        e.registerCallable('reject_' + kind, async () => { throw hostile[kind]() })
        for (const name of ['throw_' + kind, 'reject_' + kind]) {
          const r = await e.submit({ tenantId: 't', callableName: name, config: { mode: 'silent', retry: { maxAttempts: 1 } } })
          log({ name, status: r.status, message: r.error && r.error.message })
        }
      }
    `)
    expect({ code, out }).toEqual({ code: 0, out: expect.stringContaining('"done":true') })
    const results = lines.filter((l) => l.name)
    expect(results).toHaveLength(KINDS.length * 2)
    for (const r of results) {
      expect(r.status).toBe('failed')
      expect(r.message).toMatch(/^callable threw: /)
    }
  })

  test('a thrown object whose retryable getter throws is read as retryable; retryable: false still stops retries', async () => {
    const { code, out, lines } = await child(`
      let calls = 0
      e.registerCallable('flaky', () => {
        calls++
        const err = new Error('flaky')
        Object.defineProperty(err, 'retryable', { get() { throw new Error('no') } })
        throw err
      })
      e.registerCallable('fatal', () => { throw Object.assign(new Error('fatal'), { retryable: false, code: 'E_FATAL' }) })
      const a = await e.submit({ tenantId: 't', callableName: 'flaky', config: { mode: 'silent', retry: { maxAttempts: 2, backoffMs: 1 } } })
      log({ flaky: a.status, calls })
      const b = await e.submit({ tenantId: 't', callableName: 'fatal', config: { mode: 'silent', retry: { maxAttempts: 3, backoffMs: 1 } } })
      log({ fatal: b.status, attempts: b.error && b.error.attempt, message: b.error && b.error.message })
    `)
    expect({ code, out }).toEqual({ code: 0, out: expect.stringContaining('"done":true') })
    expect(lines).toContainEqual({ flaky: 'failed', calls: 2 })
    expect(lines).toContainEqual(expect.objectContaining({ fatal: 'failed', message: 'callable threw: fatal' }))
  })
})

describe('a callable that returns a hostile value', () => {
  test('a Proxy, a throwing toJSON, a BigInt and a cycle each end as failed with a clear message', async () => {
    const { code, out, lines } = await child(`
      const cycle = { a: 1 }
      cycle.self = cycle
      const returns = {
        proxy: () => hostile.proxy(),
        deepProxy: () => hostile.deepProxy(),
        revoked: () => hostile.revoked(),
        toJSON: () => ({ toJSON() { throw hostile.proxy() } }),
        bigint: () => 10n,
        cycle: () => cycle,
        nested: () => ({ ok: [1, { n: 2n }] }),
      }
      for (const [name, value] of Object.entries(returns)) {
        // Returned as is (an async function would read a Proxy's then itself).
        e.registerCallable(name, () => value())
        const r = await e.submit({ tenantId: 't', callableName: name, config: { mode: 'silent' } })
        log({ name, status: r.status, message: r.error && r.error.message })
      }
    `)
    expect({ code, out }).toEqual({ code: 0, out: expect.stringContaining('"done":true') })
    const results = lines.filter((l) => l.name)
    expect(results.map((r) => r.name)).toEqual(['proxy', 'deepProxy', 'revoked', 'toJSON', 'bigint', 'cycle', 'nested'])
    for (const r of results) {
      expect(r.status).toBe('failed')
      expect(r.message).toMatch(/^callable returned a value that (is not JSON-serializable|cannot be read): ./)
    }
    expect(results.find((r) => r.name === 'bigint').message).toMatch(/BigInt/)
    expect(results.find((r) => r.name === 'cycle').message).toMatch(/circular/i)
  })
})

describe('lone surrogates (valid JS strings that JSON cannot carry to Rust)', () => {
  test('a callable that returns one fails alone, naming where it is; one that throws one fails with U+FFFD in the message', async () => {
    const { code, out, lines } = await child(`
      e.registerCallable('returns', async () => ({ items: ['fine', 'x\\ud800y'] }))
      e.registerCallable('throws', async () => { throw new Error('bad \\udc00 message') })
      e.registerCallable('ok', async () => 'fine 😀')
      const rs = await Promise.all(['returns', 'throws', 'ok'].map((callableName) => e.submit({ tenantId: 't', callableName, config: { mode: 'silent', retry: { maxAttempts: 1 } } })))
      for (const r of rs) log({ name: r.callableName, status: r.status, output: r.output, message: r.error && r.error.message })
    `)
    expect({ code, out }).toEqual({ code: 0, out: expect.stringContaining('"done":true') })
    expect(lines.filter((l) => l.name)).toEqual([
      { name: 'returns', status: 'failed', message: expect.stringMatching(/^callable returned a value that is not valid Unicode: output\.items\[1\]: holds a lone UTF-16 surrogate \(U\+D800 at index 1\)/) },
      { name: 'throws', status: 'failed', message: 'callable threw: bad \ufffd message' },
      { name: 'ok', status: 'completed', output: 'fine 😀' },
    ])
  })
})

describe('a target handler or listener that throws a hostile value', () => {
  test('the binding fails, the execution completes, and listeners warn with ENACT_LISTENER', async () => {
    const { code, out, lines } = await child(`
      let kind = 'getters'
      e.registerTarget('memory.write', () => { throw hostile[kind]() })
      e.registerTarget('thread.title', async () => { throw hostile[kind]() })
      e.registerTarget('thread.summary', () => hostile[kind]()) // returns it: a hostile thenable
      e.registerCallable('fact', async () => 'x')
      e.on('execution.completed', () => { throw hostile[kind]() })
      for (kind of ${JSON.stringify(KINDS)}) {
        for (const targetType of ['memory.write', 'thread.title', 'thread.summary']) {
          const r = await e.submit({ tenantId: 't', callableName: 'fact', config: { mode: 'silent', targetBinding: { targetType } } })
          log({ kind, targetType, status: r.status, applied: r.targetBindingApplied, error: r.bindingResult && r.bindingResult.error })
        }
      }
    `)
    expect({ code, out }).toEqual({ code: 0, out: expect.stringContaining('"done":true') })
    const results = lines.filter((l) => l.targetType)
    expect(results).toHaveLength(KINDS.length * 3)
    for (const r of results) {
      expect(r.status).toBe('completed')
      if (r.targetType === 'thread.summary' && r.applied) continue // a value with no readable `then` is not a promise
      expect(r.applied).toBe(false)
      expect(r.error).toMatch(/^target handler threw: /)
    }
    const warnings = lines.filter((l) => l.warning)
    expect(warnings.length).toBeGreaterThanOrEqual(KINDS.length * 3)
    for (const w of warnings) expect(w).toEqual({ warning: 'ENACT_LISTENER', message: expect.stringMatching(/^listener for execution.completed threw: /) })
  })
})
