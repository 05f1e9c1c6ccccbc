const fs = require('fs')
const path = require('path')
const { nextEvent, rejection, engine, isError } = require('./helpers')
const { BackgroundEngine } = require('..')

const T = 'tenant_a'
const OTHER = 'tenant_b'
const FIXTURES = path.join(__dirname, '../fixtures/enact-core-0.0.2')
const TRIGGER_ID = /^trigger_[0-9A-Za-z]{27}$/
const ISO = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$/
const WHOLE_SECOND = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.0+)?Z$/

const triggerFixtures = fs
  .readdirSync(FIXTURES)
  .filter((f) => /^trigger_.*\.json$/.test(f) && f !== 'trigger_fired_event.json')
  .sort()

/** An engine with a `noop` callable (returns null). */
function noopEngine(options) {
  const e = engine(options)
  e.registerCallable('noop', async () => null)
  return e
}

/** Registers an event trigger for tenant T with a `noop` action. */
async function eventTrigger(e, condition, extra = {}) {
  return await e.registerTrigger({ tenantId: T, type: 'event', condition, action: { callableName: 'noop' }, ...extra })
}

/** Waits for every execution the fired events spawned to finish. */
function settle(e, fired) {
  return Promise.all(fired.map((f) => e.wait(f.executionId)))
}

/** Asserts `fn` throws synchronously with `code` and a message matching `msg`. */
function expectThrow(fn, code, msg) {
  let err
  try {
    fn()
  } catch (e) {
    err = e
  }
  expect(err).toBeDefined()
  expect(isError(err)).toBe(true)
  expect(err.code).toBe(code)
  expect(err.message).toMatch(msg)
}

async function expectReject(p, code, msg) {
  const err = await rejection(p)
  expect(isError(err)).toBe(true)
  expect(err.code).toBe(code)
  expect(err.message).toMatch(msg)
}

describe('registering and managing triggers', () => {
  test.each(triggerFixtures)('%s registers as is and reads back deep-equal', async (file) => {
    let fixture = JSON.parse(fs.readFileSync(path.join(FIXTURES, file), 'utf8'))
    // enact-core's webhook trigger has no secret: it registers with the
    // explicit opt-in to unsigned requests, and reads back with it.
    if (fixture.type === 'webhook' && fixture.webhookSecret === undefined) fixture = { ...fixture, allowUnsigned: true }
    // trigger_schedule_cron.json has endAt 2026-12-27: from then on an active
    // copy is (correctly) registered as expired, which changes updatedAt too.
    const lapsed = fixture.status === 'active' && fixture.endAt !== undefined && Date.parse(fixture.endAt) < Date.now()
    const expected = lapsed ? { ...fixture, status: 'expired', updatedAt: expect.stringMatching(ISO) } : fixture
    const e = engine()
    // The records answered add the extension `nextFireAt` to an active
    // schedule trigger (its next tick; absent once that falls after endAt).
    const schedule = fixture.type === 'schedule' && !lapsed
    const lastDay = fixture.endAt !== undefined && Date.parse(fixture.endAt) - Date.now() < 86_400_000
    const answered = schedule && !lastDay ? { ...expected, nextFireAt: expect.stringMatching(ISO) } : expected
    const loose = (t) => (schedule && lastDay ? { ...t, nextFireAt: undefined } : t)
    const stored = await e.registerTrigger(fixture)
    expect(loose(stored)).toEqual(answered)
    expect(loose(await e.getTrigger(fixture.triggerId))).toEqual(answered)
    if (stored.nextFireAt !== undefined) expect(Date.parse(stored.nextFireAt)).toBeGreaterThan(Date.now() - 1000)
    expect((await e.listTriggers()).map((t) => t.triggerId)).toEqual([fixture.triggerId])
  })

  test('a minimal definition gets an id, status, counts and times', async () => {
    const e = engine()
    const t = await e.registerTrigger({ tenantId: T, type: 'manual', action: { callableName: 'task' } })
    expect(t.triggerId).toMatch(TRIGGER_ID)
    expect(t).toMatchObject({ tenantId: T, type: 'manual', status: 'active', fireCount: 0, action: { callableName: 'task', background: true } })
    expect(typeof t.name).toBe('string')
    expect(t.name.length).toBeGreaterThan(0)
    expect(t.createdAt).toMatch(ISO)
    expect(t.updatedAt).toMatch(ISO)
    expect(t.lastFiredAt).toBeUndefined()
    expect(await e.getTrigger(t.triggerId)).toEqual(t)
  })

  test('a caller-supplied trigger id and name are kept', async () => {
    const e = engine()
    const t = await e.registerTrigger({ triggerId: 'trigger_mine', name: 'Mine', tenantId: T, type: 'manual', action: { callableName: 'task' } })
    expect(t.triggerId).toBe('trigger_mine')
    expect(t.name).toBe('Mine')
    expect((await e.getTrigger('trigger_mine')).name).toBe('Mine')
  })

  test('listTriggers keeps registration order and filters by tenantId, type and status', async () => {
    const e = engine()
    const action = { callableName: 'task' }
    const a = await e.registerTrigger({ tenantId: T, type: 'manual', action })
    const b = await e.registerTrigger({ tenantId: OTHER, type: 'event', condition: { eventType: 'x' }, action })
    const c = await e.registerTrigger({ tenantId: T, type: 'event', condition: { eventType: 'y' }, action })
    const d = await e.registerTrigger({ tenantId: T, type: 'threshold', condition: { metricName: 'm', thresholdValue: 1, thresholdOperator: 'gt' }, action })
    await e.pauseTrigger(c.triggerId)
    const ids = async (filter) => (await e.listTriggers(filter)).map((t) => t.triggerId)
    expect(await ids()).toEqual([a, b, c, d].map((t) => t.triggerId))
    expect(await ids({})).toEqual([a, b, c, d].map((t) => t.triggerId))
    expect(await ids({ tenantId: T })).toEqual([a.triggerId, c.triggerId, d.triggerId])
    expect(await ids({ tenantId: OTHER })).toEqual([b.triggerId])
    expect(await ids({ type: 'event' })).toEqual([b.triggerId, c.triggerId])
    expect(await ids({ status: 'paused' })).toEqual([c.triggerId])
    expect(await ids({ status: 'active' })).toEqual([a.triggerId, b.triggerId, d.triggerId])
    expect(await ids({ tenantId: T, type: 'event', status: 'active' })).toEqual([])
    expect(await ids({ tenantId: 'tenant_nobody' })).toEqual([])
  })

  test('updateTrigger merges a patch; null deletes a field', async () => {
    const e = engine()
    const t = await e.registerTrigger({
      tenantId: T,
      type: 'event',
      name: 'Original',
      description: 'to be deleted',
      condition: { eventType: 'order.created' },
      action: { callableName: 'notify', input: 'old input', context: { locale: 'en' } },
    })
    const updated = await e.updateTrigger(t.triggerId, { action: { input: 'new input' }, description: null, cooldownMs: 500 })
    expect(updated.action).toEqual({ callableName: 'notify', input: 'new input', context: { locale: 'en' }, background: true })
    expect('description' in updated).toBe(false)
    expect(updated).toMatchObject({ triggerId: t.triggerId, tenantId: T, type: 'event', name: 'Original', cooldownMs: 500, fireCount: 0, createdAt: t.createdAt })
    expect(updated.condition).toEqual({ eventType: 'order.created' })
    expect(Date.parse(updated.updatedAt)).toBeGreaterThanOrEqual(Date.parse(t.updatedAt))
    expect(await e.getTrigger(t.triggerId)).toEqual(updated)
  })

  test('updateTrigger cannot change fixed fields', async () => {
    const e = engine()
    const t = await e.registerTrigger({ tenantId: T, type: 'manual', action: { callableName: 'task' } })
    await expectReject(e.updateTrigger(t.triggerId, { tenantId: OTHER }), 'ENACT_INVALID_TRIGGER', /^patch\.tenantId: /)
    await expectReject(e.updateTrigger(t.triggerId, { fireCount: 9 }), 'ENACT_INVALID_TRIGGER', /^patch\.fireCount: /)
    expect(await e.getTrigger(t.triggerId)).toEqual(t)
  })

  test('a fired trigger whose maxFires the patch lifts is active again', async () => {
    const e = noopEngine()
    const t = await e.registerTrigger({ tenantId: T, type: 'manual', maxFires: 1, action: { callableName: 'noop' } })
    await e.wait((await e.fire(t.triggerId)).executionId)
    expect(await e.getTrigger(t.triggerId)).toMatchObject({ status: 'fired', fireCount: 1 })
    expect(await e.updateTrigger(t.triggerId, { maxFires: 2 })).toMatchObject({ status: 'active', fireCount: 1, maxFires: 2 })
    await e.wait((await e.fire(t.triggerId)).executionId)
    expect(await e.getTrigger(t.triggerId)).toMatchObject({ status: 'fired', fireCount: 2 })
  })

  test('pause, resume and disable set the status', async () => {
    const e = engine()
    const { triggerId } = await e.registerTrigger({ tenantId: T, type: 'manual', action: { callableName: 'task' } })
    expect((await e.pauseTrigger(triggerId)).status).toBe('paused')
    expect((await e.getTrigger(triggerId)).status).toBe('paused')
    expect((await e.resumeTrigger(triggerId)).status).toBe('active')
    expect((await e.getTrigger(triggerId)).status).toBe('active')
    expect((await e.disableTrigger(triggerId)).status).toBe('disabled')
    expect((await e.getTrigger(triggerId)).status).toBe('disabled')
    expect((await e.resumeTrigger(triggerId)).status).toBe('active')
    expect((await e.getTrigger(triggerId)).status).toBe('active')
  })

  test('removeTrigger deletes it', async () => {
    const e = engine()
    const keep = await e.registerTrigger({ tenantId: T, type: 'manual', action: { callableName: 'task' } })
    const gone = await e.registerTrigger({ tenantId: T, type: 'manual', action: { callableName: 'task' } })
    expect(await e.removeTrigger(gone.triggerId)).toBeUndefined()
    await expectReject(e.getTrigger(gone.triggerId), 'ENACT_NOT_FOUND', gone.triggerId)
    expect((await e.listTriggers()).map((t) => t.triggerId)).toEqual([keep.triggerId])
    await expectReject(e.removeTrigger(gone.triggerId), 'ENACT_NOT_FOUND', gone.triggerId)
  })

  test('every trigger method on an unknown id is ENACT_NOT_FOUND', async () => {
    const e = engine()
    const id = 'trigger_missing'
    await expectReject(e.getTrigger(id), 'ENACT_NOT_FOUND', id)
    await expectReject(e.updateTrigger(id, { name: 'x' }), 'ENACT_NOT_FOUND', id)
    await expectReject(e.pauseTrigger(id), 'ENACT_NOT_FOUND', id)
    await expectReject(e.resumeTrigger(id), 'ENACT_NOT_FOUND', id)
    await expectReject(e.disableTrigger(id), 'ENACT_NOT_FOUND', id)
    await expectReject(e.removeTrigger(id), 'ENACT_NOT_FOUND', id)
    await expectReject(e.fire(id), 'ENACT_NOT_FOUND', id)
    await expectReject(e.fire(id, { some: 'payload' }), 'ENACT_NOT_FOUND', id)
    await expectReject(e.webhook(id, { body: '{}' }), 'ENACT_NOT_FOUND', id)
  })
})

describe('bad definitions are ENACT_INVALID_TRIGGER naming the field', () => {
  const action = { callableName: 'task' }
  const cases = [
    ['unknown type', { tenantId: T, type: 'sometimes', action }, /^type: expected one of event, schedule, webhook, threshold, manual, lifecycle/],
    ['invalid cron', { tenantId: T, type: 'schedule', condition: { cronExpression: '* *' }, action }, /^condition\.cronExpression: expected 5 to 7 fields, got 2/],
    ['cron with a bad field', { tenantId: T, type: 'schedule', condition: { cronExpression: '61 * * * *' }, action }, /^condition\.cronExpression: /],
    ['bad timezone', { tenantId: T, type: 'schedule', condition: { cronExpression: '0 9 * * *', timezone: 'Mars/Olympus' }, action }, /^condition\.timezone: .*Mars\/Olympus/],
    ['schedule with neither cron nor interval', { tenantId: T, type: 'schedule', condition: {}, action }, /^condition\.cronExpression: is required/],
    ['threshold without operator', { tenantId: T, type: 'threshold', condition: { metricName: 'cpu', thresholdValue: 90 }, action }, /^condition\.thresholdOperator: /],
    ['unknown pattern operator', { tenantId: T, type: 'event', condition: { eventType: 'x', eventPattern: { amount: { $near: 5 } } }, action }, /^condition\.eventPattern\.amount: unknown operator "\$near"/],
    ['empty callableName', { tenantId: T, type: 'manual', action: { callableName: '' } }, /^action\.callableName: /],
    ['endAt before startAt', { tenantId: T, type: 'manual', action, startAt: '2030-01-02T00:00:00Z', endAt: '2030-01-01T00:00:00Z' }, /^endAt: /],
    ['not an object', 'register me', /^definition: expected an object/],
    ['null', null, /^definition: expected an object/],
  ]

  test.each(cases)('%s', async (_name, def, msg) => {
    const e = engine()
    await expectReject(e.registerTrigger(def), 'ENACT_INVALID_TRIGGER', msg)
    expect(await e.listTriggers()).toEqual([])
  })

  test('bad emit and reportMetric input', async () => {
    const e = engine()
    await expectReject(e.emit({ tenantId: T }), 'ENACT_INVALID_TRIGGER', /^event\.type: is required/)
    await expectReject(e.lifecycle({ tenantId: T }), 'ENACT_INVALID_TRIGGER', /^event\.type: is required/)
    await expectReject(e.reportMetric({ tenantId: T, name: 'cpu', value: 'high' }), 'ENACT_INVALID_TRIGGER', /^metric\.value: /)
    await expectReject(e.reportMetric({ tenantId: T, name: 'cpu' }), 'ENACT_INVALID_TRIGGER', /^metric\.value: is required/)
  })

  test('maxChainDepth: 0 is a bad option', () => {
    expectThrow(() => new BackgroundEngine({ maxChainDepth: 0 }), 'ENACT_INVALID_EXECUTION', /^maxChainDepth: /)
  })
})

describe('event triggers', () => {
  test('emit runs the action end to end', async () => {
    const e = engine()
    const seen = []
    const titles = []
    e.registerCallable('summarize', async (ctx) => {
      seen.push({ triggerId: ctx.triggerId, triggerSource: ctx.triggerSource, input: ctx.input, context: ctx.context })
      return 'Order 42 shipped\nmore details'
    })
    e.registerTarget('thread.title', (value, binding) => titles.push([value, binding.threadId]))
    const t = await e.registerTrigger({
      tenantId: T,
      type: 'event',
      name: 'Title on ship',
      condition: { eventType: 'order.shipped' },
      action: {
        callableName: 'summarize',
        input: 'summarize the order',
        context: { locale: 'en' },
        targetBinding: { targetType: 'thread.title', transform: 'first_line', threadId: 'thread_1' },
      },
    })
    const firedEvent = nextEvent(e, 'trigger.fired')
    const fired = await e.emit({ type: 'order.shipped', tenantId: T, data: { orderId: 42 } })
    expect(fired).toHaveLength(1)
    expect(fired[0]).toMatchObject({ triggerId: t.triggerId, triggerName: 'Title on ship', triggerType: 'event' })
    expect(fired[0].executionId).toMatch(/^exec_[0-9A-Za-z]{27}$/)
    expect(fired[0].firedAt).toMatch(ISO)
    expect(fired[0].triggerSource).toEqual({ type: 'order.shipped', data: { orderId: 42 } })
    expect(await firedEvent).toEqual(fired[0])

    const rec = await e.wait(fired[0].executionId)
    expect(rec).toMatchObject({
      status: 'completed',
      tenantId: T,
      callableName: 'summarize',
      input: 'summarize the order',
      triggerId: t.triggerId,
      chainDepth: 1,
      targetBindingApplied: true,
      config: { mode: 'silent' },
      bindingResult: { targetType: 'thread.title', success: true, appliedValue: 'Order 42 shipped' },
    })
    expect(seen).toEqual([
      { triggerId: t.triggerId, triggerSource: { type: 'order.shipped', data: { orderId: 42 } }, input: 'summarize the order', context: { locale: 'en' } },
    ])
    expect(titles).toEqual([['Order 42 shipped', 'thread_1']])
    expect(await e.getTrigger(t.triggerId)).toMatchObject({ fireCount: 1, status: 'active' })
    expect((await e.getTrigger(t.triggerId)).lastFiredAt).toMatch(ISO)
  })

  test('events of other types do not fire; trailing wildcards match', async () => {
    // `*` also matches the execution.* events of its own executions, so each
    // of its executions fires it once more, up to maxChainDepth; depth 1
    // keeps that chain out of this test.
    const e = noopEngine({ maxChainDepth: 1 })
    const exact = await eventTrigger(e, { eventType: 'order.created' })
    const prefix = await eventTrigger(e, { eventType: 'order.*' })
    const all = await eventTrigger(e, { eventType: '*' })
    const firedBy = async (type) => {
      const fired = await e.emit({ type, tenantId: T, data: {} })
      await settle(e, fired)
      return fired.map((f) => f.triggerId).sort()
    }
    expect(await firedBy('order.created')).toEqual([exact.triggerId, prefix.triggerId, all.triggerId].sort())
    expect(await firedBy('order.deleted')).toEqual([prefix.triggerId, all.triggerId].sort())
    expect(await firedBy('orders.created')).toEqual([all.triggerId])
    expect(await firedBy('user.signup')).toEqual([all.triggerId])
  })

  const patterns = [
    ['$gt', { amount: { $gt: 100 } }, { amount: 150 }, { amount: 100 }],
    ['$gte/$lt range', { amount: { $gte: 10, $lt: 20 } }, { amount: 10 }, { amount: 20 }],
    ['$in', { plan: { $in: ['pro', 'team'] } }, { plan: 'team' }, { plan: 'free' }],
    ['$prefix', { sku: { $prefix: 'sku_' } }, { sku: 'sku_123' }, { sku: 'item_123' }],
    ['$suffix', { file: { $suffix: '.pdf' } }, { file: 'report.pdf' }, { file: 'report.pdf.exe' }],
    ['$exists: false', { deletedAt: { $exists: false } }, { id: 1 }, { id: 1, deletedAt: null }],
    ['$exists: true', { deletedAt: { $exists: true } }, { deletedAt: null }, { id: 1 }],
    ['$ne (missing field matches)', { status: { $ne: 'failed' } }, { id: 1 }, { status: 'failed' }],
    ['$anythingBut', { status: { $anythingBut: ['failed', 'cancelled'] } }, { status: 'completed' }, { status: 'cancelled' }],
    ['$anythingBut (missing field does not match)', { status: { $anythingBut: 'failed' } }, { status: 'queued' }, { id: 1 }],
    ['nested path', { 'user.address.country': 'DE' }, { user: { address: { country: 'DE' } } }, { user: { address: { country: 'FR' } } }],
    ['array-any', { tags: 'urgent' }, { tags: ['low', 'urgent'] }, { tags: ['low', 'later'] }],
    ['deep equality of an object', { meta: { a: 1, b: [2] } }, { meta: { b: [2], a: 1 } }, { meta: { a: 1, b: [2], c: 3 } }],
    ['all keys must match', { kind: 'invoice', amount: { $gt: 0 } }, { kind: 'invoice', amount: 5 }, { kind: 'invoice', amount: 0 }],
  ]

  test.each(patterns)('eventPattern %s', async (_name, eventPattern, matching, nonMatching) => {
    const e = noopEngine()
    const t = await eventTrigger(e, { eventType: 'thing.happened', eventPattern })
    expect(await e.emit({ type: 'thing.happened', tenantId: T, data: nonMatching })).toEqual([])
    const fired = await e.emit({ type: 'thing.happened', tenantId: T, data: matching })
    expect(fired.map((f) => f.triggerId)).toEqual([t.triggerId])
    expect(fired[0].triggerSource).toEqual({ type: 'thing.happened', data: matching })
    await settle(e, fired)
    expect((await e.getTrigger(t.triggerId)).fireCount).toBe(1)
  })

  test("another tenant's event does not fire", async () => {
    const e = noopEngine()
    const t = await eventTrigger(e, { eventType: 'order.created' })
    expect(await e.emit({ type: 'order.created', tenantId: OTHER, data: {} })).toEqual([])
    expect((await e.getTrigger(t.triggerId)).fireCount).toBe(0)
    const fired = await e.emit({ type: 'order.created', tenantId: T, data: {} })
    expect(fired.map((f) => f.triggerId)).toEqual([t.triggerId])
    await settle(e, fired)
    expect(await e.listExecutions({ tenantId: OTHER })).toEqual([])
    expect((await e.listExecutions({ tenantId: T })).map((x) => x.triggerId)).toEqual([t.triggerId])
  })

  test('lifecycle() fires lifecycle triggers only, emit() event triggers only', async () => {
    const e = noopEngine()
    const life = await e.registerTrigger({ tenantId: T, type: 'lifecycle', condition: { eventType: 'user.signup' }, action: { callableName: 'noop' } })
    const evt = await eventTrigger(e, { eventType: 'user.signup' })
    const viaLifecycle = await e.lifecycle({ type: 'user.signup', tenantId: T, data: { userId: 'u1' } })
    expect(viaLifecycle.map((f) => [f.triggerId, f.triggerType])).toEqual([[life.triggerId, 'lifecycle']])
    expect(viaLifecycle[0].triggerSource).toEqual({ type: 'user.signup', data: { userId: 'u1' } })
    const viaEmit = await e.emit({ type: 'user.signup', tenantId: T, data: { userId: 'u2' } })
    expect(viaEmit.map((f) => [f.triggerId, f.triggerType])).toEqual([[evt.triggerId, 'event']])
    await settle(e, [...viaLifecycle, ...viaEmit])
    expect((await e.getTrigger(life.triggerId)).fireCount).toBe(1)
    expect((await e.getTrigger(evt.triggerId)).fireCount).toBe(1)
  })
})

describe('emitBatch', () => {
  test('fires for each matching event in order, across tenants', async () => {
    const e = noopEngine()
    const a = await eventTrigger(e, { eventType: 'order.created' })
    const b = await e.registerTrigger({ tenantId: OTHER, type: 'event', condition: { eventType: 'order.*' }, action: { callableName: 'noop' } })
    const fired = await e.emitBatch([
      { type: 'order.created', tenantId: T, data: { n: 1 } },
      { type: 'user.signup', tenantId: T },
      { type: 'order.paid', tenantId: OTHER, data: { n: 2 } },
      { type: 'order.created', tenantId: T, data: { n: 3 } },
    ])
    expect(fired.map((f) => [f.triggerId, f.triggerSource.data.n])).toEqual([[a.triggerId, 1], [b.triggerId, 2], [a.triggerId, 3]])
    await settle(e, fired)
  })

  test('a malformed event rejects the whole batch, naming its index, before anything fires', async () => {
    const e = noopEngine()
    const a = await eventTrigger(e, { eventType: 'order.created' })
    const err = await rejection(e.emitBatch([{ type: 'order.created', tenantId: T }, { type: 'order.created' }]))
    expect(err.code).toBe('ENACT_INVALID_TRIGGER')
    expect(err.message).toMatch(/^events\[1\]\.tenantId: is required/)
    expect((await e.getTrigger(a.triggerId)).fireCount).toBe(0)
    const notArray = await rejection(e.emitBatch({ type: 'x' }))
    expect(notArray.message).toMatch(/^events: expected an array/)
  })
})

describe('gating', () => {
  test('maxFires: 1 under 1,000 concurrent emits fires exactly once', async () => {
    const e = noopEngine()
    const t = await eventTrigger(e, { eventType: 'burst' }, { maxFires: 1 })
    let events = 0
    e.on('trigger.fired', (f) => {
      if (f.triggerId === t.triggerId) events++
    })
    const results = await Promise.all(Array.from({ length: 1000 }, (_, i) => e.emit({ type: 'burst', tenantId: T, data: { i } })))
    const fired = results.flat()
    expect(fired).toHaveLength(1)
    await settle(e, fired)
    expect(events).toBe(1)
    expect(await e.getTrigger(t.triggerId)).toMatchObject({ status: 'fired', fireCount: 1 })
    expect(await e.listExecutions({ callableName: 'noop' })).toHaveLength(1)
    await expectReject(e.fire(t.triggerId), 'ENACT_TRIGGER_INACTIVE', t.triggerId)
  })

  test('cooldownMs: a second event inside the cooldown fires nothing', async () => {
    const e = noopEngine()
    const t = await eventTrigger(e, { eventType: 'ping' }, { cooldownMs: 60000 })
    const first = await e.emit({ type: 'ping', tenantId: T })
    expect(first).toHaveLength(1)
    expect(await e.emit({ type: 'ping', tenantId: T })).toEqual([])
    await settle(e, first)
    expect(await e.getTrigger(t.triggerId)).toMatchObject({ status: 'active', fireCount: 1 })
    await expectReject(e.fire(t.triggerId), 'ENACT_TRIGGER_INACTIVE', /cooling down/)
  })

  test('a paused trigger fires nothing until resumed', async () => {
    const e = noopEngine()
    const t = await eventTrigger(e, { eventType: 'ping' })
    await e.pauseTrigger(t.triggerId)
    expect(await e.emit({ type: 'ping', tenantId: T })).toEqual([])
    await expectReject(e.fire(t.triggerId), 'ENACT_TRIGGER_INACTIVE', /paused/)
    expect(await e.getTrigger(t.triggerId)).toMatchObject({ status: 'paused', fireCount: 0 })
    await e.resumeTrigger(t.triggerId)
    const fired = await e.emit({ type: 'ping', tenantId: T })
    expect(fired.map((f) => f.triggerId)).toEqual([t.triggerId])
    await settle(e, fired)
    expect((await e.getTrigger(t.triggerId)).fireCount).toBe(1)
  })

  test('a disabled trigger fires nothing', async () => {
    const e = noopEngine()
    const t = await eventTrigger(e, { eventType: 'ping' })
    await e.disableTrigger(t.triggerId)
    expect(await e.emit({ type: 'ping', tenantId: T })).toEqual([])
    await expectReject(e.fire(t.triggerId), 'ENACT_TRIGGER_INACTIVE', /disabled/)
  })

  test('startAt in the future: nothing fires yet', async () => {
    const e = noopEngine()
    const startAt = new Date(Date.now() + 3600000).toISOString()
    const t = await eventTrigger(e, { eventType: 'ping' }, { startAt })
    expect(await e.emit({ type: 'ping', tenantId: T })).toEqual([])
    await expectReject(e.fire(t.triggerId), 'ENACT_TRIGGER_INACTIVE', /starts at/)
    expect(await e.getTrigger(t.triggerId)).toMatchObject({ status: 'active', fireCount: 0 })
  })

  test('endAt in the past at registration: expired', async () => {
    const e = noopEngine()
    const endAt = new Date(Date.now() - 3600000).toISOString()
    const t = await eventTrigger(e, { eventType: 'ping' }, { endAt })
    expect(t.status).toBe('expired')
    expect((await e.getTrigger(t.triggerId)).status).toBe('expired')
    expect(await e.emit({ type: 'ping', tenantId: T })).toEqual([])
    await expectReject(e.fire(t.triggerId), 'ENACT_TRIGGER_INACTIVE', /expired/)
  })
})

describe('threshold triggers', () => {
  test('fire on each crossing, not while the comparison stays true', async () => {
    const e = noopEngine()
    const t = await e.registerTrigger({
      tenantId: T,
      type: 'threshold',
      condition: { metricName: 'queue.depth', thresholdValue: 100, thresholdOperator: 'gt' },
      action: { callableName: 'noop' },
    })
    const perReport = []
    for (const value of [50, 150, 160, 90, 120]) {
      perReport.push(await e.reportMetric({ tenantId: T, name: 'queue.depth', value }))
    }
    expect(perReport.map((r) => r.length)).toEqual([0, 1, 0, 0, 1])
    const fired = perReport.flat()
    expect(fired).toHaveLength(2)
    expect(fired.map((f) => [f.triggerId, f.triggerType])).toEqual([
      [t.triggerId, 'threshold'],
      [t.triggerId, 'threshold'],
    ])
    expect(fired[0].triggerSource).toEqual({ name: 'queue.depth', value: 150, thresholdValue: 100, thresholdOperator: 'gt' })
    expect(fired[1].triggerSource).toEqual({ name: 'queue.depth', value: 120, thresholdValue: 100, thresholdOperator: 'gt' })
    await settle(e, fired)
    expect((await e.getTrigger(t.triggerId)).fireCount).toBe(2)
  })

  test('other metric names and tenants are ignored', async () => {
    const e = noopEngine()
    const t = await e.registerTrigger({
      tenantId: T,
      type: 'threshold',
      condition: { metricName: 'cost.usd', thresholdValue: 10, thresholdOperator: 'gte' },
      action: { callableName: 'noop' },
    })
    expect(await e.reportMetric({ tenantId: T, name: 'cost.eur', value: 50 })).toEqual([])
    expect(await e.reportMetric({ tenantId: OTHER, name: 'cost.usd', value: 50 })).toEqual([])
    const fired = await e.reportMetric({ tenantId: T, name: 'cost.usd', value: 10 })
    expect(fired.map((f) => f.triggerId)).toEqual([t.triggerId])
    await settle(e, fired)
  })
})

describe('manual triggers', () => {
  test('fire with a payload passes it as the trigger source', async () => {
    const e = engine()
    const seen = []
    e.registerCallable('task', async (ctx) => {
      seen.push([ctx.triggerId, ctx.triggerSource])
      return 'done'
    })
    const t = await e.registerTrigger({ tenantId: T, type: 'manual', name: 'Button', action: { callableName: 'task' } })
    const fired = await e.fire(t.triggerId, { clickedBy: 'ada', count: 2 })
    expect(fired).toMatchObject({ triggerId: t.triggerId, triggerName: 'Button', triggerType: 'manual', triggerSource: { clickedBy: 'ada', count: 2 } })
    const rec = await e.wait(fired.executionId)
    expect(rec).toMatchObject({ status: 'completed', output: 'done', triggerId: t.triggerId, chainDepth: 1, config: { mode: 'silent' } })
    expect(seen).toEqual([[t.triggerId, { clickedBy: 'ada', count: 2 }]])
  })

  test('fire without a payload: triggerSource is null', async () => {
    const e = engine()
    const seen = []
    e.registerCallable('task', async (ctx) => {
      seen.push(ctx.triggerSource)
      return null
    })
    const t = await e.registerTrigger({ tenantId: T, type: 'manual', action: { callableName: 'task' } })
    const fired = await e.fire(t.triggerId)
    expect(fired.triggerSource).toBeNull()
    const rec = await e.wait(fired.executionId)
    expect(rec.status).toBe('completed')
    expect(seen).toEqual([null])
  })

  test('a trigger whose callable is not registered yields a failed execution', async () => {
    const e = engine()
    const t = await e.registerTrigger({ tenantId: T, type: 'manual', action: { callableName: 'ghost' } })
    const fired = await e.fire(t.triggerId)
    const rec = await e.wait(fired.executionId)
    expect(rec).toMatchObject({ status: 'failed', callableName: 'ghost', triggerId: t.triggerId })
    expect(rec.error.message).toContain('no callable registered')
    // enact-core 0.0.2 refuses "retry_policy": null; the first attempt is the one that failed.
    expect(rec.error).toMatchObject({
      code: 'ENACT_UNKNOWN_CALLABLE',
      attempt: 1,
      retry_policy: { backoff_strategy: 'constant', base_delay: 0, max_delay: 0, max_retries: 0, requires_idempotency_key: false, retryable: false },
    })
  })
})

describe('schedule triggers', () => {
  test('a per-second cron with maxFires: 2 fires on two consecutive ticks, then is fired', async () => {
    const e = noopEngine()
    const ticks = []
    let done
    const twoTicks = new Promise((resolve) => (done = resolve))
    e.on('trigger.fired', (f) => {
      ticks.push(f)
      if (ticks.length === 2) done()
    })
    const t = await e.registerTrigger({ tenantId: T, type: 'schedule', maxFires: 2, condition: { cronExpression: '* * * * * *' }, action: { callableName: 'noop' } })
    await twoTicks
    expect(ticks.map((f) => [f.triggerId, f.triggerType])).toEqual([
      [t.triggerId, 'schedule'],
      [t.triggerId, 'schedule'],
    ])
    const at = ticks.map((f) => f.triggerSource.scheduledAt)
    for (const s of at) expect(s).toMatch(WHOLE_SECOND)
    expect(Date.parse(at[1]) - Date.parse(at[0])).toBe(1000)
    await settle(e, ticks)
    expect(await e.getTrigger(t.triggerId)).toMatchObject({ status: 'fired', fireCount: 2 })
    const recs = await e.listExecutions({ callableName: 'noop' })
    expect(recs.map((r) => [r.triggerId, r.status, r.config.mode])).toEqual([
      [t.triggerId, 'completed', 'silent'],
      [t.triggerId, 'completed', 'silent'],
    ])
  })

  test('intervalSeconds: 1 fires', async () => {
    const e = noopEngine()
    const t = await e.registerTrigger({ tenantId: T, type: 'schedule', condition: { intervalSeconds: 1 }, action: { callableName: 'noop' } })
    const fired = await nextEvent(e, 'trigger.fired', (f) => f.triggerId === t.triggerId)
    expect(fired.triggerType).toBe('schedule')
    expect(fired.triggerSource.scheduledAt).toMatch(ISO)
    const rec = await e.wait(fired.executionId)
    expect(rec).toMatchObject({ status: 'completed', triggerId: t.triggerId })
    expect((await e.getTrigger(t.triggerId)).fireCount).toBeGreaterThanOrEqual(1)
  })

  test('removing a schedule trigger stops it', async () => {
    const e = noopEngine()
    const action = { callableName: 'noop' }
    const doomed = await e.registerTrigger({ tenantId: T, type: 'schedule', condition: { cronExpression: '* * * * * *' }, action })
    const witness = await e.registerTrigger({ tenantId: T, type: 'schedule', condition: { cronExpression: '* * * * * *' }, action })
    const doomedFires = []
    e.on('trigger.fired', (f) => {
      if (f.triggerId === doomed.triggerId) doomedFires.push(f)
    })
    await nextEvent(e, 'trigger.fired', (f) => f.triggerId === doomed.triggerId)
    await e.removeTrigger(doomed.triggerId)
    const removedAt = Date.now()
    const firesAtRemoval = doomedFires.length
    // The witness ticks on the same schedule: once it has fired for a tick
    // a full second after the removal, the doomed trigger had its chances.
    await nextEvent(e, 'trigger.fired', (f) => f.triggerId === witness.triggerId && Date.parse(f.triggerSource.scheduledAt) >= removedAt + 1000)
    await e.removeTrigger(witness.triggerId)
    // More work through the engine, so any pending fired events are delivered.
    const other = await e.registerTrigger({ tenantId: T, type: 'manual', action })
    await e.wait((await e.fire(other.triggerId)).executionId)
    expect(doomedFires.length).toBe(firesAtRemoval)
    await expectReject(e.getTrigger(doomed.triggerId), 'ENACT_NOT_FOUND', doomed.triggerId)
    const doomedExecs = (await e.listExecutions()).filter((r) => r.triggerId === doomed.triggerId)
    expect(doomedExecs).toHaveLength(firesAtRemoval)
  })
})

describe('feedback from the executor', () => {
  test('an execution.completed trigger fires when the watched callable completes', async () => {
    const e = engine()
    e.registerCallable('first', async () => 'first result')
    e.registerCallable('second', async (ctx) => ctx.triggerSource.data.executionId)
    e.registerCallable('unrelated', async () => null)
    const t = await e.registerTrigger({
      tenantId: T,
      type: 'event',
      condition: { eventType: 'execution.completed', eventPattern: { callableName: 'first' } },
      action: { callableName: 'second' },
    })
    const firedEvent = nextEvent(e, 'trigger.fired', (f) => f.triggerId === t.triggerId)
    await e.submit({ tenantId: T, callableName: 'unrelated', config: { mode: 'silent' } })
    const first = await e.submit({ tenantId: T, callableName: 'first' })
    const fired = await firedEvent
    expect(fired.triggerSource).toMatchObject({ type: 'execution.completed', data: { executionId: first.executionId, callableName: 'first' } })
    const rec = await e.wait(fired.executionId)
    expect(rec).toMatchObject({ status: 'completed', callableName: 'second', triggerId: t.triggerId, chainDepth: 1, output: first.executionId })
    expect(rec.triggerSource.data.executionId).toBe(first.executionId)
    expect((await e.getTrigger(t.triggerId)).fireCount).toBe(1)
  })

  test('a trigger chain stops at maxChainDepth with trigger.loop_blocked', async () => {
    const e = engine({ maxChainDepth: 3 })
    e.registerCallable('loop', async (ctx) => ctx.attempt)
    const t = await e.registerTrigger({
      tenantId: T,
      type: 'event',
      name: 'Loop',
      condition: { eventType: 'execution.completed', eventPattern: { callableName: 'loop' } },
      action: { callableName: 'loop' },
    })
    const blocked = nextEvent(e, 'trigger.loop_blocked')
    const start = await e.submit({ tenantId: T, callableName: 'loop' })
    const ev = await blocked
    expect(ev).toMatchObject({ triggerId: t.triggerId, triggerName: 'Loop', tenantId: T, chainDepth: 4, maxChainDepth: 3 })
    expect(ev.blockedAt).toMatch(ISO)
    expect(ev.triggerSource).toMatchObject({ type: 'execution.completed', data: { callableName: 'loop' } })
    const spawned = (await e.listExecutions({ callableName: 'loop' })).filter((r) => r.triggerId === t.triggerId)
    expect(spawned).toHaveLength(3)
    const finals = await Promise.all(spawned.map((r) => e.wait(r.executionId)))
    expect(finals.map((r) => r.chainDepth).sort()).toEqual([1, 2, 3])
    expect(finals.every((r) => r.status === 'completed')).toBe(true)
    expect((await e.wait(start.executionId)).status).toBe('completed')
    expect(await e.listExecutions({ callableName: 'loop' })).toHaveLength(4)
    expect((await e.getTrigger(t.triggerId)).fireCount).toBe(3)
  })
})

describe('trigger events', () => {
  test('trigger.fired and trigger.loop_blocked are accepted names; off() removes a listener', async () => {
    const e = noopEngine()
    const removed = []
    const kept = []
    const onFired = (f) => removed.push(f)
    const onBlocked = (b) => removed.push(b)
    e.on('trigger.fired', onFired)
    e.on('trigger.loop_blocked', onBlocked)
    e.on('trigger.fired', (f) => kept.push(f.triggerId))
    e.off('trigger.fired', onFired)
    e.off('trigger.loop_blocked', onBlocked)
    const t = await e.registerTrigger({ tenantId: T, type: 'manual', action: { callableName: 'noop' } })
    const delivered = nextEvent(e, 'trigger.fired')
    const fired = await e.fire(t.triggerId)
    expect((await delivered).executionId).toBe(fired.executionId)
    await e.wait(fired.executionId)
    expect(kept).toEqual([t.triggerId])
    expect(removed).toEqual([])
  })

  test('a removed loop_blocked listener is not called', async () => {
    const e = engine({ maxChainDepth: 1 })
    e.registerCallable('again', async () => null)
    const removed = []
    const onBlocked = (b) => removed.push(b)
    e.on('trigger.loop_blocked', onBlocked)
    e.off('trigger.loop_blocked', onBlocked)
    const t = await e.registerTrigger({
      tenantId: T,
      type: 'event',
      condition: { eventType: 'execution.completed', eventPattern: { callableName: 'again' } },
      action: { callableName: 'again' },
    })
    const blocked = nextEvent(e, 'trigger.loop_blocked')
    await e.submit({ tenantId: T, callableName: 'again' })
    expect(await blocked).toMatchObject({ triggerId: t.triggerId, chainDepth: 2, maxChainDepth: 1 })
    expect(removed).toEqual([])
  })
})
