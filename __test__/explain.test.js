// "Why didn't it fire?" (issue 14, part 5): `explain(event)` and
// `explainMetric(metric)` name, for every trigger of the tenant that could
// see the stimulus, whether it would fire now and the first reason it would
// not — in words and as data, in the engine's gate order — on a manual
// clock; say "would fire" exactly for the triggers the real call then
// fires; and change nothing. `nextFireAt` on schedule triggers. The same
// scenarios run over memory, SQLite (a temporary file) and PostgreSQL (a
// schema of its own on DATABASE_URL, dropped after; skipped loudly when
// unset).
const fs = require('fs')
const os = require('os')
const path = require('path')
const { Client } = require('pg')
const { BackgroundEngine } = require('..')
const { engine, rejection } = require('./helpers')

const T = 'tenant_a'
const T0 = '2026-01-15T10:00:00.000Z'
const URL = process.env.DATABASE_URL
if (!URL) {
  console.warn('!!! DATABASE_URL is not set: the PostgreSQL tests of explain.test.js did NOT run. Set it, e.g. postgres://root@127.0.0.1:5432/test')
}

/** Ids of the explanations that would fire, sorted. */
const wouldFire = (list) => list.filter((x) => x.wouldFire).map((x) => x.triggerId).sort()
const ids = (list) => list.map((x) => x.triggerId)
const byId = (list) => Object.fromEntries(list.map((x) => [x.triggerId, x]))

/** What explaining must not change: every trigger and the executions. */
async function snapshot(e) {
  const triggers = await e.listTriggers()
  const executions = await e.listExecutions()
  return { triggers, executions: executions.map((x) => x.executionId) }
}

/**
 * Every reason, over an engine `open(options, setup)` makes with a manual
 * clock at T0 and `maxChainDepth: 1`.
 */
async function everyReason(open) {
  let e
  /** @type {any} */
  let inChain = null
  const e0 = await open({ clock: { manual: T0 }, maxChainDepth: 1 }, (x) => {
    x.registerCallable('noop', async () => null)
    // Explains from inside a callable, as an emit made there would be judged.
    x.registerCallable('probe', async () => {
      inChain = await e.explain({ tenantId: 'tenant_chain', type: 'chain.start' })
      return null
    })
  })
  e = e0
  const reg = (id, def) => e.registerTrigger({ triggerId: id, tenantId: T, name: id, action: { callableName: 'noop' }, ...def })
  const on = (eventType, extra = {}) => ({ type: 'event', ...extra, condition: { eventType, ...extra.condition } })
  await reg('trigger_type', on('user.*'))
  await reg('trigger_pattern', on('order.paid', { condition: { eventPattern: { total: { $gte: 100 } } } }))
  await reg('trigger_missing', on('order.paid', { condition: { eventPattern: { coupon: { $exists: true } } } }))
  await reg('trigger_paused', on('order.*'))
  await e.pauseTrigger('trigger_paused')
  await reg('trigger_disabled', on('order.*'))
  await e.disableTrigger('trigger_disabled')
  const later = await reg('trigger_later', on('order.*', { startAt: '2026-01-15T11:00:00Z' }))
  const ends = await reg('trigger_ends', on('order.*', { endAt: '2026-01-15T10:00:05Z' }))
  await reg('trigger_max', on('order.*', { maxFires: 1 }))
  await reg('trigger_cool', on('order.*', { cooldownMs: 12_000 }))
  await reg('trigger_ok', on('order.paid'))
  await reg('trigger_life', { type: 'lifecycle', condition: { eventType: 'order.paid' } })
  await reg('trigger_life_other', { type: 'lifecycle', condition: { eventType: 'user.signup' } })
  await reg('trigger_cpu', { type: 'threshold', condition: { metricName: 'cpu', thresholdOperator: 'gt', thresholdValue: 100 } })
  await reg('trigger_mem', { type: 'threshold', condition: { metricName: 'mem', thresholdOperator: 'gt', thresholdValue: 100 } })
  await e.registerTrigger({ triggerId: 'trigger_elsewhere', tenantId: 'tenant_b', type: 'event', condition: { eventType: 'order.paid' }, action: { callableName: 'noop' } })

  await e.fire('trigger_max')
  await e.fire('trigger_cool')
  await e.advanceTime(6_000)
  await e.idle()

  const event = { tenantId: T, type: 'order.paid', data: { total: 50 } }
  const before = await snapshot(e)
  const why = await e.explain(event)
  expect(await e.explain(event)).toEqual(why)
  expect(await snapshot(e)).toEqual(before)

  expect(ids(why)).toEqual([
    'trigger_type', 'trigger_pattern', 'trigger_missing', 'trigger_paused', 'trigger_disabled', 'trigger_later', 'trigger_ends',
    'trigger_max', 'trigger_cool', 'trigger_ok', 'trigger_life',
  ])
  const x = byId(why)
  const no = (id, status, reason, detail) => ({ triggerId: id, triggerName: id, triggerType: id === 'trigger_life' ? 'lifecycle' : 'event', status, wouldFire: false, reason, detail })
  expect(x.trigger_type).toEqual(no('trigger_type', 'active', 'event type "order.paid" does not match eventType "user.*"', { kind: 'type', expected: 'user.*', got: 'order.paid' }))
  expect(x.trigger_pattern).toEqual(
    no('trigger_pattern', 'active', 'pattern field "total" failed $gte 100 (got 50)', { kind: 'pattern', field: 'total', operator: '$gte', expected: 100, got: 50 }),
  )
  expect(x.trigger_missing).toEqual(
    no('trigger_missing', 'active', 'pattern field "coupon" failed $exists true (field missing)', { kind: 'pattern', field: 'coupon', operator: '$exists', expected: true, missing: true }),
  )
  expect(x.trigger_paused).toEqual(no('trigger_paused', 'paused', 'it is paused', { kind: 'status', status: 'paused' }))
  expect(x.trigger_disabled).toEqual(no('trigger_disabled', 'disabled', 'it is disabled', { kind: 'status', status: 'disabled' }))
  expect(x.trigger_later).toEqual(no('trigger_later', 'active', 'not started: startAt is 2026-01-15T11:00:00.000Z', { kind: 'not_started', startAt: later.startAt }))
  expect(x.trigger_ends).toEqual(no('trigger_ends', 'expired', 'ended: endAt 2026-01-15T10:00:05.000Z has passed', { kind: 'ended', endAt: ends.endAt }))
  expect(x.trigger_max).toEqual(no('trigger_max', 'fired', 'maxFires reached (1 of 1)', { kind: 'max_fires', maxFires: 1, fireCount: 1 }))
  expect(x.trigger_cool).toEqual(
    no('trigger_cool', 'active', 'cooling down for 6 s (until 2026-01-15T10:00:12.000Z)', { kind: 'cooldown', remainingMs: 6000, until: '2026-01-15T10:00:12Z' }),
  )
  expect(x.trigger_ok).toEqual({ triggerId: 'trigger_ok', triggerName: 'trigger_ok', triggerType: 'event', status: 'active', wouldFire: true, reason: null, detail: null })
  expect(x.trigger_life).toEqual(
    no('trigger_life', 'active', 'it is a lifecycle trigger: it listens to lifecycle() events, not emit()', { kind: 'source', expected: 'lifecycle', got: 'emit' }),
  )
  // What would fire is exactly what fires.
  expect((await e.emit(event)).map((f) => f.triggerId).sort()).toEqual(wouldFire(why))
  expect(wouldFire(why)).toEqual(['trigger_ok'])

  // The other call: lifecycle triggers, and the event triggers of a matching type.
  const life = await e.explain(event, { source: 'lifecycle' })
  expect(wouldFire(life)).toEqual(['trigger_life'])
  expect(byId(life).trigger_ok).toMatchObject({ wouldFire: false, detail: { kind: 'source', expected: 'emit', got: 'lifecycle' } })
  expect(ids(life)).not.toContain('trigger_type')
  expect((await e.lifecycle(event)).map((f) => f.triggerId)).toEqual(['trigger_life'])

  // The clock moves on: the cooldown has run out and startAt has come.
  await e.advanceTime(3_600_000)
  const big = { ...event, data: { total: 150, coupon: 'X' } }
  const laterWhy = await e.explain(big)
  expect(wouldFire(laterWhy)).toEqual(['trigger_cool', 'trigger_later', 'trigger_missing', 'trigger_ok', 'trigger_pattern'])
  expect((await e.emit(big)).map((f) => f.triggerId).sort()).toEqual(wouldFire(laterWhy))

  // Thresholds: the name, the comparison, the crossing rule.
  const metric = (value) => ({ tenantId: T, name: 'cpu', value })
  const low = byId(await e.explainMetric(metric(50)))
  expect(Object.keys(low)).toEqual(['trigger_cpu', 'trigger_mem'])
  expect(low.trigger_cpu).toEqual({
    triggerId: 'trigger_cpu', triggerName: 'trigger_cpu', triggerType: 'threshold', status: 'active', wouldFire: false,
    reason: 'value 50 is not > 100', detail: { kind: 'threshold', operator: 'gt', thresholdValue: 100, value: 50 },
  })
  expect(low.trigger_mem).toMatchObject({ reason: 'metric "cpu" does not match metricName "mem"', detail: { kind: 'metric', expected: 'mem', got: 'cpu' } })
  const unchanged = await snapshot(e)
  for (let i = 0; i < 3; i++) expect(wouldFire(await e.explainMetric(metric(150)))).toEqual(['trigger_cpu'])
  expect(await snapshot(e)).toEqual(unchanged)
  expect((await e.reportMetric(metric(150))).map((f) => f.triggerId)).toEqual(['trigger_cpu'])
  const above = byId(await e.explainMetric(metric(160)))
  expect(above.trigger_cpu).toMatchObject({
    wouldFire: false,
    reason: 'already above 100 at the last report: waiting for the value to drop to 100 or below before it can fire again',
    detail: { kind: 'armed', operator: 'gt', thresholdValue: 100, value: 160 },
  })
  expect(await e.reportMetric(metric(160))).toEqual([])
  expect(await e.reportMetric(metric(90))).toEqual([])
  expect(wouldFire(await e.explainMetric(metric(150)))).toEqual(['trigger_cpu'])
  expect((await e.reportMetric(metric(150))).map((f) => f.triggerId)).toEqual(['trigger_cpu'])

  // Chain depth: explained from a callable whose chain is at maxChainDepth.
  await e.registerTrigger({ triggerId: 'trigger_chain', tenantId: 'tenant_chain', type: 'event', condition: { eventType: 'chain.start' }, action: { callableName: 'probe' } })
  const outside = await e.explain({ tenantId: 'tenant_chain', type: 'chain.start' })
  expect(outside[0].wouldFire).toBe(true)
  const [started] = await e.emit({ tenantId: 'tenant_chain', type: 'chain.start' })
  expect((await e.wait(started.executionId)).status).toBe('completed')
  expect(inChain).toEqual([
    {
      triggerId: 'trigger_chain', triggerName: 'trigger_chain', triggerType: 'event', status: 'active', wouldFire: false,
      reason: 'chain depth 2 would exceed maxChainDepth 1 (the fire would be a trigger.loop_blocked)',
      detail: { kind: 'chain_depth', depth: 2, maxChainDepth: 1 },
    },
  ])
  await e.idle()
  return e
}

/** `nextFireAt` over an engine `open` makes (manual clock at T0). */
async function nextFire(open) {
  const e = await open({ clock: { manual: T0 } }, (x) => x.registerCallable('noop', async () => null))
  const schedule = (id, condition, extra = {}) =>
    e.registerTrigger({ triggerId: id, tenantId: T, type: 'schedule', condition, action: { callableName: 'noop' }, ...extra })
  // 09:00 in New York is 14:00 UTC in January.
  expect((await schedule('trigger_ny', { cronExpression: '0 9 * * *', timezone: 'America/New_York' })).nextFireAt).toBe('2026-01-15T14:00:00Z')
  expect((await schedule('trigger_every', { intervalSeconds: 60 })).nextFireAt).toBe('2026-01-15T10:01:00Z')
  expect((await schedule('trigger_cool', { cronExpression: '* * * * *' }, { cooldownMs: 150_000 })).nextFireAt).toBe('2026-01-15T10:01:00Z')
  const ended = await schedule('trigger_end', { cronExpression: '0 * * * *' }, { endAt: '2026-01-15T10:30:00Z' })
  expect('nextFireAt' in ended).toBe(false)
  const event = await e.registerTrigger({ tenantId: T, type: 'event', condition: { eventType: 'x' }, action: { callableName: 'noop' } })
  expect('nextFireAt' in event).toBe(false)

  await e.advanceTime(60_000)
  await e.idle()
  expect(await e.getTrigger('trigger_every')).toMatchObject({ fireCount: 1, nextFireAt: '2026-01-15T10:02:00Z' })
  // Fired at 10:01 with a 150 s cooldown: the ticks at 10:02 and 10:03 would be refused.
  expect(await e.getTrigger('trigger_cool')).toMatchObject({ fireCount: 1, nextFireAt: '2026-01-15T10:04:00Z' })
  const paused = await e.pauseTrigger('trigger_every')
  expect(paused.status).toBe('paused')
  expect('nextFireAt' in paused).toBe(false)
  expect((await e.resumeTrigger('trigger_every')).nextFireAt).toBe('2026-01-15T10:02:00Z')
  expect((await e.updateTrigger('trigger_ny', { condition: { cronExpression: '30 11 * * *', timezone: 'Asia/Kolkata' } })).nextFireAt).toBe('2026-01-16T06:00:00Z')
  const listed = Object.fromEntries((await e.listTriggers({ tenantId: T })).map((t) => [t.triggerId, t.nextFireAt]))
  expect(listed).toEqual({
    trigger_ny: '2026-01-16T06:00:00Z',
    trigger_every: '2026-01-15T10:02:00Z',
    trigger_cool: '2026-01-15T10:04:00Z',
    trigger_end: undefined,
    [event.triggerId]: undefined,
  })
  expect('nextFireAt' in (await e.disableTrigger('trigger_cool'))).toBe(false)
  return e
}

describe('memory', () => {
  const open = async (options, setup) => {
    const e = engine(options)
    if (setup) await setup(e)
    return e
  }

  test('every reason, in the engine order, in words and as data; what would fire is what fires; nothing changes', async () => {
    await everyReason(open)
  })

  test('nextFireAt: the armed tick in the trigger time zone, after the cooldown, before endAt, only while active', async () => {
    await nextFire(open)
  })

  test('bad input is refused as emit and reportMetric refuse it', async () => {
    const e = engine()
    e.registerCallable('noop', async () => null)
    await e.registerTrigger({ tenantId: T, type: 'event', condition: { eventType: 'x' }, action: { callableName: 'noop' } })
    const same = async (explained, called) => {
      const [a, b] = [await rejection(explained), await rejection(called)]
      expect({ code: a.code, message: a.message }).toEqual({ code: b.code, message: b.message })
      expect(a.code).toBe('ENACT_INVALID_TRIGGER')
      return a.message
    }
    expect(await same(e.explain(null), e.emit(null))).toBe('event: expected an object, got null')
    expect(await same(e.explain('x'), e.emit('x'))).toBe('event: expected an object, got "x"')
    expect(await same(e.explain({ type: 'x' }), e.emit({ type: 'x' }))).toMatch(/^event\.tenantId: /)
    expect(await same(e.explain({ tenantId: T }), e.emit({ tenantId: T }))).toMatch(/^event\.type: /)
    expect(await same(e.explain({ tenantId: T, type: 'x', extra: 1 }), e.emit({ tenantId: T, type: 'x', extra: 1 }))).toMatch(/^event\.extra: unknown field/)
    expect(await same(e.explain({ tenantId: T, type: 'x', data: { n: 1n } }), e.emit({ tenantId: T, type: 'x', data: { n: 1n } }))).toMatch(/^event: cannot be sent as JSON/)
    expect(await same(e.explainMetric({ tenantId: T, name: 'cpu' }), e.reportMetric({ tenantId: T, name: 'cpu' }))).toBe('metric.value: is required')
    expect(await same(e.explainMetric({ tenantId: T, name: 'cpu', value: '5' }), e.reportMetric({ tenantId: T, name: 'cpu', value: '5' }))).toMatch(/^metric\.value: /)
    expect(await same(e.explainMetric({ name: 'cpu', value: 5 }), e.reportMetric({ name: 'cpu', value: 5 }))).toMatch(/^metric\.tenantId: /)
    expect(await same(e.explainMetric([]), e.reportMetric([]))).toBe('metric: expected an object, got an array')
    const source = await rejection(e.explain({ tenantId: T, type: 'x' }, { source: 'webhook' }))
    expect([source.code, source.message]).toEqual(['ENACT_INVALID_TRIGGER', 'options.source: expected one of emit, lifecycle, got "webhook"'])
    const unknown = await rejection(e.explain({ tenantId: T, type: 'x' }, { sorce: 'emit' }))
    expect(unknown.message).toMatch(/^options\.sorce: unknown field/)
    // A call that is refused never throws synchronously.
    const refused = e.explain(undefined)
    expect(refused).toBeInstanceOf(Promise)
    expect((await rejection(refused)).message).toBe('event: expected an object, got null')
    // A tenant without triggers has nothing to explain.
    expect(await e.explain({ tenantId: 'nobody', type: 'x' })).toEqual([])
    expect(await e.explainMetric({ tenantId: 'nobody', name: 'cpu', value: 1 })).toEqual([])
  })
})

describe('sqlite', () => {
  let dir
  const opened = []
  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'enact-explain-'))
  })
  afterEach(async () => {
    await Promise.all(opened.splice(0).map((e) => e.shutdown({ timeoutMs: 100 })))
    fs.rmSync(dir, { recursive: true, force: true })
  })
  const open = async (options = {}, setup = undefined) => {
    const e = await BackgroundEngine.open({ ...options, store: { sqlite: path.join(dir, 'enact.db') } }, setup)
    opened.push(e)
    return e
  }

  test('every reason, as over memory', async () => {
    await everyReason(open)
  })

  test('nextFireAt, as over memory', async () => {
    await nextFire(open)
  })

  test('the arming is read from the file: after a reopen a value still above explains as armed, and is no crossing', async () => {
    const setup = (e) => e.registerCallable('noop', async () => null)
    let e = await open({}, setup)
    await e.registerTrigger({ triggerId: 'trigger_cpu', tenantId: T, type: 'threshold', condition: { metricName: 'cpu', thresholdOperator: 'gte', thresholdValue: 0.9 }, action: { callableName: 'noop' } })
    expect(await e.reportMetric({ tenantId: T, name: 'cpu', value: 0.95 })).toHaveLength(1)
    await e.idle()
    opened.splice(opened.indexOf(e), 1)
    await e.shutdown()
    e = await open({}, setup)
    const [why] = await e.explainMetric({ tenantId: T, name: 'cpu', value: 0.97 })
    expect(why).toMatchObject({
      wouldFire: false,
      reason: 'already at or above 0.9 at the last report: waiting for the value to drop below 0.9 before it can fire again',
      detail: { kind: 'armed', operator: 'gte', thresholdValue: 0.9, value: 0.97 },
    })
    expect(await e.reportMetric({ tenantId: T, name: 'cpu', value: 0.97 })).toEqual([])
    expect((await e.getTrigger('trigger_cpu')).fireCount).toBe(1)
  })
})

const pg = URL ? describe : describe.skip
pg('postgres', () => {
  let admin
  let schema
  let n = 0
  const opened = []
  beforeAll(async () => {
    admin = new Client({ connectionString: URL })
    await admin.connect()
  })
  afterAll(async () => {
    if (admin) await admin.end()
  })
  beforeEach(() => {
    schema = `jx_${process.pid}_${n++}`
  })
  afterEach(async () => {
    await Promise.all(opened.splice(0).map((e) => e.shutdown({ timeoutMs: 100 }).catch(() => {})))
    await admin.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`)
  })
  const open = async (options = {}, setup = undefined) => {
    const url = `${URL}${URL.includes('?') ? '&' : '?'}application_name=${schema}`
    const e = await BackgroundEngine.open({ ...options, store: { postgres: url, schema } }, setup)
    opened.push(e)
    return e
  }

  test('every reason, as over memory', async () => {
    await everyReason(open)
  })

  test('nextFireAt, as over memory', async () => {
    await nextFire(open)
  })

  test('a trigger registered on another engine is explained at once, and its arming is the cluster arming', async () => {
    const setup = (e) => e.registerCallable('noop', async () => null)
    const a = await open({}, setup)
    const b = await open({}, setup)
    // Registered on A; B explains it right away (it reads trigger changes first).
    await a.registerTrigger({ triggerId: 'trigger_big', tenantId: T, type: 'event', condition: { eventType: 'order.paid', eventPattern: { total: { $gte: 100 } } }, action: { callableName: 'noop' } })
    await a.registerTrigger({ triggerId: 'trigger_cpu', tenantId: T, type: 'threshold', condition: { metricName: 'cpu', thresholdOperator: 'lt', thresholdValue: 10 }, action: { callableName: 'noop' } })
    expect(await b.explain({ tenantId: T, type: 'order.paid', data: { total: 50 } })).toEqual([
      {
        triggerId: 'trigger_big', triggerName: 'trigger_big', triggerType: 'event', status: 'active', wouldFire: false,
        reason: 'pattern field "total" failed $gte 100 (got 50)', detail: { kind: 'pattern', field: 'total', operator: '$gte', expected: 100, got: 50 },
      },
    ])
    // A report on A crosses; B sees the arming the store keeps.
    expect(await a.reportMetric({ tenantId: T, name: 'cpu', value: 3 })).toHaveLength(1)
    const [armed] = await b.explainMetric({ tenantId: T, name: 'cpu', value: 2 })
    expect(armed).toMatchObject({
      wouldFire: false,
      reason: 'already below 10 at the last report: waiting for the value to rise to 10 or above before it can fire again',
      detail: { kind: 'armed', operator: 'lt', thresholdValue: 10, value: 2 },
    })
    expect(await b.reportMetric({ tenantId: T, name: 'cpu', value: 2 })).toEqual([])
    const { rows } = await admin.query(`SELECT armed, fire_count FROM ${schema}.triggers WHERE id = 'trigger_cpu'`)
    expect(rows).toEqual([{ armed: true, fire_count: '1' }])
    expect(await b.reportMetric({ tenantId: T, name: 'cpu', value: 20 })).toEqual([])
    expect(wouldFire(await a.explainMetric({ tenantId: T, name: 'cpu', value: 2 }))).toEqual(['trigger_cpu'])
  })
})
