// The manual clock (`clock: 'manual'`, `advanceTime`): delayed jobs, retry
// backoff, timeouts, cooldowns, interval and cron schedules, all without
// real waiting — and the same under jest.useFakeTimers().

const { engine, rejection, hangUntilAborted } = require('./helpers')
const { BackgroundEngine } = require('..')

/** Shuts `e` down after the test even if an expectation fails first. */
const tracked = []
const track = (e) => (tracked.push(e), e)
afterEach(() => Promise.all(tracked.splice(0).map((e) => e.shutdown({ timeoutMs: 100 }))))

const T = 'tenant_a'
const T0 = '2026-01-15T10:00:00.250Z'
const t0 = Date.parse(T0)
/** T0 shifted by `ms`, as the engine writes times. */
const iso = (ms) => new Date(t0 + ms).toISOString()

/** A manual-clock engine at T0 with a `work` callable echoing its input. */
function manualEngine(options = {}) {
  const e = engine({ clock: { manual: T0 }, ...options })
  e.registerCallable('work', async (ctx) => ctx.input ?? null)
  return e
}

describe('manual clock', () => {
  test('now() reads the manual clock, which moves only by advanceTime', async () => {
    const e = manualEngine()
    expect(e.now()).toEqual(new Date(T0))
    await e.advanceTime(1500)
    expect(e.now().toISOString()).toBe(iso(1500))
    await e.advanceTime(0)
    expect(e.now().toISOString()).toBe(iso(1500))
    // 'manual' starts at the system time.
    const before = Date.now()
    const m = engine({ clock: 'manual' })
    expect(m.now().getTime()).toBeGreaterThanOrEqual(before - 1)
    expect(m.now().getTime()).toBeLessThanOrEqual(Date.now())
  })

  test('a delayed job stays queued after 59 s and runs after 61 s', async () => {
    const e = manualEngine()
    const queued = await e.submit({ tenantId: T, callableName: 'work', input: 'later', config: { mode: 'deferred', delayMs: 60_000 } })
    await e.advanceTime(59_000)
    expect((await e.getExecution(queued.executionId)).status).toBe('queued')
    await e.advanceTime(2_000)
    const done = await e.getExecution(queued.executionId)
    expect(done).toMatchObject({ status: 'completed', output: 'later', queuedAt: T0 })
    // It started when it came due, not when the clock stopped.
    expect(done.startedAt).toBe(iso(60_000))
    await expect(e.idle()).resolves.toBeUndefined()
  })

  test('runAt is reached by the manual clock', async () => {
    const e = manualEngine()
    const queued = await e.submit({ tenantId: T, callableName: 'work', config: { mode: 'deferred', runAt: iso(3_600_000) } })
    const settled = e.wait(queued.executionId)
    await e.advanceTime(3_599_999)
    expect((await e.getExecution(queued.executionId)).status).toBe('queued')
    await e.advanceTime(1)
    expect((await settled).startedAt).toBe(iso(3_600_000))
  })

  test('a retry backoff elapses on the manual clock (±20 % jitter)', async () => {
    const e = manualEngine()
    const retrying = []
    e.on('execution.retrying', (r) => retrying.push(r.error.attempt))
    e.registerCallable('flaky', async (ctx) => {
      if (ctx.attempt === 1) throw new Error('first try fails')
      return `attempt ${ctx.attempt}`
    })
    const queued = await e.submit({ tenantId: T, callableName: 'flaky', config: { retry: { maxAttempts: 3, backoffMs: 1000 } } })
    // The backoff is 1000 ms ±20 %: not retried within 799 ms...
    await e.advanceTime(799)
    const waiting = await e.getExecution(queued.executionId)
    expect(waiting).toMatchObject({ status: 'queued', attempt: 1, error: { message: 'callable threw: first try fails' } })
    expect(retrying).toEqual([1])
    // ...retried by 1200 ms.
    await e.advanceTime(401)
    expect(await e.getExecution(queued.executionId)).toMatchObject({ status: 'completed', attempt: 2, output: 'attempt 2' })
  })

  test('one advanceTime runs a whole retry sequence, step by step', async () => {
    const e = manualEngine()
    const attempts = []
    e.registerCallable('broken', async (ctx) => {
      attempts.push([ctx.attempt, e.now().getTime() - t0])
      throw new Error(`broken ${ctx.attempt}`)
    })
    const queued = await e.submit({ tenantId: T, callableName: 'broken', config: { retry: { maxAttempts: 3, backoffMs: 1000, backoffMultiplier: 2 } } })
    // Backoffs of about 1 s and 2 s, at most 1.2 + 2.4 s in all.
    await e.advanceTime(3_600)
    const rec = await e.getExecution(queued.executionId)
    expect(rec).toMatchObject({ status: 'failed', attempt: 3, error: { message: 'callable threw: broken 3' } })
    expect(attempts.map(([a]) => a)).toEqual([1, 2, 3])
    const [, second, third] = attempts.map(([, at]) => at)
    expect(second).toBeGreaterThanOrEqual(800)
    expect(second).toBeLessThanOrEqual(1200)
    expect(third - second).toBeGreaterThanOrEqual(1600)
    expect(third - second).toBeLessThanOrEqual(2400)
    expect((await e.stats()).retried).toBe(2)
  })

  test('a callable that never resolves times out at timeoutMs', async () => {
    const e = manualEngine()
    const { fn, aborted } = hangUntilAborted()
    e.registerCallable('hang', fn)
    const result = e.submit({ tenantId: T, callableName: 'hang', config: { mode: 'silent', timeoutMs: 5_000 } })
    await e.advanceTime(4_999)
    const running = await e.listExecutions({ callableName: 'hang' })
    expect(running.map((r) => r.status)).toEqual(['running'])
    await e.advanceTime(1)
    const rec = await result
    expect(rec).toMatchObject({ status: 'timeout', completedAt: iso(5_000), error: { category: 'Timeout', message: 'timed out after 5000 ms' } })
    expect(await aborted).toMatchObject({ name: 'TimeoutError', code: 'ENACT_TIMEOUT' })
  })

  test('a cooldown passes on the manual clock', async () => {
    const e = manualEngine()
    const t = await e.registerTrigger({
      tenantId: T, type: 'event', condition: { eventType: 'ping' }, action: { callableName: 'work' }, cooldownMs: 60_000,
    })
    const ping = () => e.emit({ tenantId: T, type: 'ping', data: {} })
    expect(await ping()).toHaveLength(1)
    expect(await ping()).toEqual([])
    await e.advanceTime(59_999)
    expect(await ping()).toEqual([])
    const refused = await rejection(e.fire(t.triggerId))
    expect(refused.code).toBe('ENACT_TRIGGER_INACTIVE')
    await e.advanceTime(1)
    const fired = await ping()
    expect(fired).toHaveLength(1)
    expect(fired[0].firedAt).toBe(iso(60_000))
    expect((await e.getTrigger(t.triggerId)).fireCount).toBe(2)
  })

  test('an intervalSeconds trigger fires once per interval advanced', async () => {
    const e = manualEngine()
    const seen = []
    e.registerCallable('tick', async (ctx) => {
      seen.push(ctx.triggerSource.scheduledAt)
      return null
    })
    const t = await e.registerTrigger({ tenantId: T, type: 'schedule', condition: { intervalSeconds: 1 }, action: { callableName: 'tick' } })
    await e.advanceTime(999)
    expect(seen).toEqual([])
    await e.advanceTime(9_001)
    expect(seen).toEqual(Array.from({ length: 10 }, (_, i) => iso((i + 1) * 1000)))
    const trigger = await e.getTrigger(t.triggerId)
    expect(trigger).toMatchObject({ fireCount: 10, lastFiredAt: iso(10_000) })
    expect((await e.stats()).completed).toBe(10)
  })

  test('a per-minute cron fires each minute of a 10-minute advance, in order', async () => {
    const e = manualEngine()
    const fired = []
    e.on('trigger.fired', (ev) => fired.push(ev.triggerSource.scheduledAt))
    const runs = []
    e.registerCallable('digest', async (ctx) => {
      runs.push([ctx.triggerSource.scheduledAt, e.now().toISOString()])
      return 'ok'
    })
    await e.registerTrigger({ tenantId: T, type: 'schedule', condition: { cronExpression: '* * * * *' }, action: { callableName: 'digest' } })
    await e.advanceTime(10 * 60_000)
    const minutes = Array.from({ length: 10 }, (_, i) => `2026-01-15T10:${String(i + 1).padStart(2, '0')}:00.000Z`)
    expect(fired).toEqual(minutes)
    // Each tick's callable ran at its own minute, before the clock moved on.
    expect(runs).toEqual(minutes.map((m) => [m, m]))
    await e.idle()
    expect((await e.stats()).completed).toBe(10)
  })

  test('misfirePolicy: advanceTime steps through each tick, so neither policy misfires; the field is stored and checked', async () => {
    // A misfire is more than one tick due at once: after downtime over a
    // durable store, or a stalled scheduler. advanceTime stops at every
    // tick, so under it fire_once and skip both fire each tick (the Rust
    // tests in crates/enact-background-core/tests/triggers_misfire.rs show
    // the misfire itself).
    const e = manualEngine()
    const sources = { fire_once: [], skip: [] }
    e.registerCallable('tick', async (ctx) => {
      sources[ctx.input].push(ctx.triggerSource)
      return null
    })
    for (const policy of ['fire_once', 'skip']) {
      const t = await e.registerTrigger({ tenantId: T, type: 'schedule', condition: { cronExpression: '* * * * *', misfirePolicy: policy }, action: { callableName: 'tick', input: policy } })
      expect(t.condition).toEqual({ cronExpression: '* * * * *', misfirePolicy: policy })
      expect((await e.getTrigger(t.triggerId)).condition.misfirePolicy).toBe(policy)
    }
    await e.advanceTime(5 * 60_000)
    await e.idle()
    const minutes = Array.from({ length: 5 }, (_, i) => `2026-01-15T10:0${i + 1}:00.000Z`)
    for (const policy of ['fire_once', 'skip']) {
      expect(sources[policy]).toEqual(minutes.map((m) => ({ type: 'schedule', scheduledAt: m, cronExpression: '* * * * *' })))
    }
    const plain = await e.registerTrigger({ tenantId: T, type: 'schedule', condition: { intervalSeconds: 60 }, action: { callableName: 'tick' } })
    expect(plain.condition).toEqual({ intervalSeconds: 60 })
    await expect(
      e.registerTrigger({ tenantId: T, type: 'schedule', condition: { intervalSeconds: 60, misfirePolicy: 'catch_up' }, action: { callableName: 'tick' } }),
    ).rejects.toMatchObject({ code: 'ENACT_INVALID_TRIGGER', message: expect.stringMatching(/^condition\.misfirePolicy: expected one of fire_once, skip, got "catch_up"/) })
    await expect(
      e.registerTrigger({ tenantId: T, type: 'event', condition: { eventType: 'x', misfirePolicy: 'skip' }, action: { callableName: 'tick' } }),
    ).rejects.toMatchObject({ code: 'ENACT_INVALID_TRIGGER', message: expect.stringMatching(/^condition\.misfirePolicy: only applies to schedule triggers, not event/) })
  })

  test('a target handler that never settles fails its binding after bindingTimeoutMs of the manual clock', async () => {
    const e = manualEngine({ bindingTimeoutMs: 10_000 })
    e.registerTarget('memory.write', () => new Promise(() => {}))
    let answered = false
    const result = e.submit({ tenantId: T, callableName: 'work', input: 'fact', config: { mode: 'silent', targetBinding: { targetType: 'memory.write' } } })
    void result.then(() => (answered = true))
    await e.advanceTime(9_999)
    expect(answered).toBe(false)
    await e.advanceTime(1)
    expect(answered).toBe(true)
    expect(await result).toMatchObject({
      status: 'completed',
      targetBindingApplied: false,
      bindingResult: { success: false, appliedAt: iso(10_000), error: 'target handler did not settle within 10000 ms (bindingTimeoutMs)' },
    })
  })

  test('webhook timestamps are checked against the manual clock', async () => {
    const crypto = require('crypto')
    const secret = `whsec_${Buffer.from('a shared webhook key of 32 bytes').toString('base64')}`
    const signed = (id, secs, body) => {
      const mac = crypto.createHmac('sha256', Buffer.from(secret.slice('whsec_'.length), 'base64'))
      mac.update(`${id}.${secs}.${body}`)
      return { 'webhook-id': id, 'webhook-timestamp': String(secs), 'webhook-signature': `v1,${mac.digest('base64')}` }
    }
    const e = manualEngine()
    const t = await e.registerTrigger({ tenantId: T, type: 'webhook', webhookSecret: secret, action: { callableName: 'work' } })
    const engineSecs = Math.floor(e.now().getTime() / 1000)
    const body = '{"ok":true}'
    // Signed at the engine's time (2026), not the machine's: accepted.
    const fired = await e.webhook(t.triggerId, { headers: signed('msg_1', engineSecs, body), body })
    expect(fired.firedAt).toBe(T0)
    // Six minutes of engine time later, a request signed at T0 is stale.
    await e.advanceTime(6 * 60_000)
    const stale = await rejection(e.webhook(t.triggerId, { headers: signed('msg_2', engineSecs, body), body }))
    expect(stale.code).toBe('ENACT_WEBHOOK_SIGNATURE')
    expect(stale.message).toMatch(/timestamp/)
    const fresh = await e.webhook(t.triggerId, { headers: signed('msg_3', engineSecs + 360, body), body })
    expect(fresh.firedAt).toBe(iso(360_000))
  })

  test('advanceTime calls made together run one after another', async () => {
    const e = manualEngine()
    const queued = await e.submit({ tenantId: T, callableName: 'work', config: { mode: 'deferred', delayMs: 45_000 } })
    await Promise.all([e.advanceTime(30_000), e.advanceTime(30_000)])
    expect(e.now().toISOString()).toBe(iso(60_000))
    expect((await e.getExecution(queued.executionId)).status).toBe('completed')
  })

  test('bad arguments, a system clock and a shut-down engine are refused with codes', async () => {
    const e = manualEngine()
    for (const [bad, got] of [[-1, '-1'], [NaN, 'NaN'], [Infinity, 'Infinity'], ['5', 'a string'], [undefined, 'undefined'], [null, 'null'], [5n, 'a BigInt'], [8.64e15, '8640000000000000']]) {
      const err = await rejection(e.advanceTime(bad))
      expect(err).toBeInstanceOf(Error)
      expect(err.code).toBe('ENACT_INVALID_EXECUTION')
      expect(err.message).toMatch(/^ms: expected a non-negative number of milliseconds up to 3155760000000 \(100 years\), got /)
      expect(err.message).toContain(got)
    }
    expect(e.now().toISOString()).toBe(T0)

    const real = engine()
    const err = await rejection(real.advanceTime(1000))
    expect(err.code).toBe('ENACT_INVALID_EXECUTION')
    expect(err.message).toMatch(/^advanceTime: this engine runs on the system clock; create it with new BackgroundEngine\(\{ clock: 'manual' \}\)/)

    for (const [clock, message] of [
      ['fake', /^clock: expected 'system', 'manual' or \{ manual: '<RFC 3339 start time>' \}, got "fake"/],
      [{ manual: 'tomorrow' }, /^clock\.manual: expected an RFC 3339 time, got "tomorrow"/],
      [{ manual: T0, speed: 2 }, /^clock\.speed: unknown field/],
    ]) {
      let thrown
      try {
        engine({ clock })
      } catch (x) {
        thrown = x
      }
      expect(thrown).toMatchObject({ code: 'ENACT_INVALID_EXECUTION', message: expect.stringMatching(message) })
    }

    await e.shutdown()
    expect(await rejection(e.advanceTime(1))).toMatchObject({ code: 'ENACT_SHUTDOWN', message: 'advanceTime: engine is shut down' })
  })

  test('a day of engine time passes in one call, with no real waiting', async () => {
    // A day of a per-second schedule and a day-long delay: 86,400 steps
    // of engine time without any real sleep.
    const e = manualEngine()
    let ticks = 0
    e.registerCallable('count', async () => ++ticks)
    await e.registerTrigger({ tenantId: T, type: 'schedule', condition: { intervalSeconds: 3600 }, action: { callableName: 'count' } })
    const queued = await e.submit({ tenantId: T, callableName: 'work', config: { mode: 'deferred', delayMs: 86_400_000 } })
    await e.advanceTime(86_400_000)
    expect(ticks).toBe(24)
    expect((await e.getExecution(queued.executionId)).status).toBe('completed')
  })
})

describe('the README recipe', () => {
  test('a delayed job, a retry and a per-minute cron', async () => {
    const engine = track(new BackgroundEngine({ clock: { manual: '2026-01-15T10:00:00Z' } }))
    engine.registerCallable('work', async (ctx) => {
      if (ctx.input === 'flaky' && ctx.attempt === 1) throw new Error('try again')
      return ctx.input ?? null
    })
    const later = await engine.submit({ tenantId: 't', callableName: 'work', input: 'later', config: { mode: 'deferred', delayMs: 60_000 } })
    const flaky = await engine.submit({ tenantId: 't', callableName: 'work', input: 'flaky', config: { retry: { maxAttempts: 3, backoffMs: 1000 } } })
    await engine.registerTrigger({ tenantId: 't', type: 'schedule', condition: { cronExpression: '* * * * *' }, action: { callableName: 'work' } })

    await engine.advanceTime(59_000)
    expect((await engine.getExecution(later.executionId)).status).toBe('queued')
    expect((await engine.getExecution(flaky.executionId)).attempt).toBe(2) // backoff: 1000 ms ±20 %
    await engine.advanceTime(2_000)
    expect((await engine.getExecution(later.executionId)).status).toBe('completed')
    await engine.advanceTime(9 * 60_000) // 10:01 … 10:10: ten ticks, each fired and run
    expect((await engine.listExecutions({ callableName: 'work' })).filter((e) => e.triggerId).length).toBe(10)
    await engine.shutdown()
  })
})

describe('manual clock under jest.useFakeTimers()', () => {
  afterEach(() => jest.useRealTimers())

  test('the engine takes its timers from node:timers, even when loaded under fake timers', async () => {
    jest.useFakeTimers()
    let timers
    jest.isolateModules(() => {
      timers = require('../lib/timers')
    })
    expect(timers.setImmediate).not.toBe(setImmediate)
    expect(timers.setTimeout).not.toBe(setTimeout)
    // Both resolve with no fake time advanced.
    await timers.nextTurn()
    await new Promise((resolve) => timers.microtask(resolve))
    expect(jest.getTimerCount()).toBe(0)
  })

  test('the documented recipe: fake timers and the engine clock move together', async () => {
    jest.useFakeTimers({ now: new Date(T0) })
    const e = manualEngine()
    // Moves Jest's fake time and the engine's clock by the same amount.
    const advance = async (ms) => {
      jest.advanceTimersByTime(ms)
      await e.advanceTime(ms)
    }
    const appTimer = jest.fn()
    setTimeout(appTimer, 30_000) // the application's own (faked) timer
    const seen = []
    e.registerCallable('tick', async (ctx) => {
      seen.push([ctx.triggerSource.scheduledAt, e.now().toISOString()])
      return null
    })
    await e.registerTrigger({ tenantId: T, type: 'schedule', condition: { cronExpression: '* * * * *' }, action: { callableName: 'tick' } })
    const later = await e.submit({ tenantId: T, callableName: 'work', input: 'x', config: { mode: 'deferred', delayMs: 60_000 } })
    const silent = e.submit({ tenantId: T, callableName: 'work', input: 'now', config: { mode: 'silent' } })
    // Silent submits, waits and idle() resolve without advancing anything.
    expect(await silent).toMatchObject({ status: 'completed', output: 'now' })

    await advance(59_000)
    expect(appTimer).toHaveBeenCalledTimes(1)
    expect((await e.getExecution(later.executionId)).status).toBe('queued')
    await advance(2_000)
    expect(await e.wait(later.executionId)).toMatchObject({ status: 'completed', output: 'x' })
    await advance(120_000)
    // Each tick ran at its own minute of the engine's clock...
    const minutes = ['2026-01-15T10:01:00.000Z', '2026-01-15T10:02:00.000Z', '2026-01-15T10:03:00.000Z']
    expect(seen).toEqual(minutes.map((m) => [m, m]))
    // ...and after each advance, Jest's fake Date and the engine agree.
    expect(new Date().toISOString()).toBe(iso(181_000))
    expect(e.now().toISOString()).toBe(iso(181_000))
    await e.idle()
    // Shutdown needs no fake time either.
    await e.shutdown()
  })
})
