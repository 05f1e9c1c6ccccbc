// emit / emitBatch / lifecycle answer events that no trigger could match in
// JS, without crossing to Rust (lib/prefilter.js). These tests
// pin that this shortcut never changes an answer: fires and errors are the
// same as if every event had gone to Rust, through registration, update,
// removal, wildcards, channels and malformed input.
const { rejection, engine } = require('./helpers')

const T = 'tenant_a'
const OTHER = 'tenant_b'

function noopEngine() {
  const e = engine()
  e.registerCallable('noop', async () => null)
  return e
}

async function trigger(e, eventType, { tenantId = T, type = 'event', eventPattern } = {}) {
  const condition = { eventType }
  if (eventPattern !== undefined) condition.eventPattern = eventPattern
  return await e.registerTrigger({ tenantId, type, condition, action: { callableName: 'noop' } })
}

const ids = (fired) => fired.map((f) => f.triggerId)

describe('events no trigger could match', () => {
  test('fire only once a matching trigger exists, and stop after it is removed or retargeted', async () => {
    const e = noopEngine()
    const event = { type: 'order.created', tenantId: T, data: { n: 1 } }
    expect(await e.emit(event)).toEqual([])
    const t = await trigger(e, 'order.created')
    expect(ids(await e.emit(event))).toEqual([t.triggerId])
    await e.updateTrigger(t.triggerId, { condition: { eventType: 'order.paid' } })
    expect(await e.emit(event)).toEqual([])
    expect(ids(await e.emit({ ...event, type: 'order.paid' }))).toEqual([t.triggerId])
    await e.removeTrigger(t.triggerId)
    expect(await e.emit({ ...event, type: 'order.paid' })).toEqual([])
    await e.idle()
    expect((await e.stats()).completed).toBe(2)
  })

  test('two triggers on one type: removing one keeps the other listening', async () => {
    const e = noopEngine()
    const a = await trigger(e, 'x.y')
    const b = await trigger(e, 'x.y')
    await e.removeTrigger(a.triggerId)
    expect(ids(await e.emit({ type: 'x.y', tenantId: T }))).toEqual([b.triggerId])
  })

  test('wildcards match by prefix, per tenant', async () => {
    const e = noopEngine()
    const all = await trigger(e, '*', { tenantId: OTHER })
    const orders = await trigger(e, 'order.*')
    const fired = await e.emitBatch([
      { type: 'order.created', tenantId: T },
      { type: 'orders', tenantId: T },
      { type: 'user.signup', tenantId: T },
      { type: 'anything', tenantId: OTHER },
      { type: 'order.paid', tenantId: 'tenant_c' },
    ])
    expect(ids(fired)).toEqual([orders.triggerId, all.triggerId])
  })

  test('a pattern that filters the event out is still decided in Rust', async () => {
    const e = noopEngine()
    const t = await trigger(e, 'order.created', { eventPattern: { amount: { $gt: 100 } } })
    expect(await e.emit({ type: 'order.created', tenantId: T, data: { amount: 5 } })).toEqual([])
    expect(ids(await e.emit({ type: 'order.created', tenantId: T, data: { amount: 500 } }))).toEqual([t.triggerId])
  })

  test('event and lifecycle triggers are separate channels', async () => {
    const e = noopEngine()
    const ev = await trigger(e, 'thread.created')
    const lc = await trigger(e, 'thread.created', { type: 'lifecycle' })
    const event = { type: 'thread.created', tenantId: T }
    expect(ids(await e.emit(event))).toEqual([ev.triggerId])
    expect(ids(await e.lifecycle(event))).toEqual([lc.triggerId])
    await e.removeTrigger(lc.triggerId)
    expect(await e.lifecycle(event)).toEqual([])
    expect(ids(await e.emit(event))).toEqual([ev.triggerId])
  })

  test('a paused trigger still answers from Rust (the gate decides), then fires once resumed', async () => {
    const e = noopEngine()
    const t = await trigger(e, 'a.b')
    await e.pauseTrigger(t.triggerId)
    expect(await e.emit({ type: 'a.b', tenantId: T })).toEqual([])
    await e.resumeTrigger(t.triggerId)
    expect(ids(await e.emit({ type: 'a.b', tenantId: T }))).toEqual([t.triggerId])
  })

  test('a batch keeps the order of the fires of the events that could match', async () => {
    const e = noopEngine()
    const a = await trigger(e, 'a')
    const b = await trigger(e, 'b', { tenantId: OTHER })
    const events = []
    for (let i = 0; i < 300; i++) events.push({ type: ['a', 'b', 'c'][i % 3], tenantId: [T, OTHER][i % 2], data: { i } })
    const fired = await e.emitBatch(events)
    const expected = events.filter((ev) => (ev.type === 'a' && ev.tenantId === T) || (ev.type === 'b' && ev.tenantId === OTHER))
    expect(fired.map((f) => f.triggerSource.data.i)).toEqual(expected.map((ev) => ev.data.i))
    expect(new Set(ids(fired))).toEqual(new Set([a.triggerId, b.triggerId]))
  })
})

describe('malformed events are rejected whether or not a trigger could match', () => {
  const bad = [
    ['a missing tenantId', { type: 'x' }, /^event\.tenantId: is required/],
    ['an empty type', { type: '', tenantId: T }, /^event\.type/],
    ['an unknown field', { type: 'x', tenantId: T, extra: 1 }, /^event\.extra/],
    ['a number as type', { type: 7, tenantId: T }, /^event\.type/],
    ['BigInt data', { type: 'x', tenantId: T, data: { n: 1n } }, /^event: cannot be sent as JSON/],
    ['not an object', 'x', /^event/],
  ]

  test.each(bad)('emit with %s', async (_, event, message) => {
    const e = noopEngine()
    const err = await rejection(e.emit(event))
    expect(err.code).toBe('ENACT_INVALID_TRIGGER')
    expect(err.message).toMatch(message)
  })

  test.each(bad)('lifecycle with %s', async (_, event, message) => {
    const e = noopEngine()
    const err = await rejection(e.lifecycle(event))
    expect(err.code).toBe('ENACT_INVALID_TRIGGER')
    expect(err.message).toMatch(message)
  })

  test('a cyclic data object is rejected, not looped over', async () => {
    const e = noopEngine()
    const data = {}
    data.self = data
    const err = await rejection(e.emit({ type: 'x', tenantId: T, data }))
    expect(err.code).toBe('ENACT_INVALID_TRIGGER')
    expect(err.message).toMatch(/^event: cannot be sent as JSON/)
  })

  test('emitBatch names the bad event even when none of the good ones could match', async () => {
    const e = noopEngine()
    const err = await rejection(e.emitBatch([{ type: 'x', tenantId: T }, { type: 'x', tenantId: T, oops: true }]))
    expect(err.code).toBe('ENACT_INVALID_TRIGGER')
    expect(err.message).toMatch(/^events\[1\]\.oops/)
  })

  test('a getter that throws rejects instead of throwing', async () => {
    const e = noopEngine()
    const event = { type: 'x', tenantId: T }
    Object.defineProperty(event, 'data', { enumerable: true, get: () => { throw new Error('boom') } })
    const err = await rejection(e.emit(event))
    expect(err.code).toBe('ENACT_INVALID_TRIGGER')
    expect(err.message).toMatch(/boom/)
  })
})

test('random triggers and events: the fires equal a plain reference matcher', async () => {
  const e = noopEngine()
  const types = ['a.x', 'a.y', 'b.x', 'b.y', 'c']
  const tenants = ['t1', 't2', 't3']
  let seed = 42
  const rand = (n) => {
    seed = (seed * 1103515245 + 12345) % 2 ** 31
    return seed % n
  }
  const live = new Map() // triggerId → [tenant, eventType]
  const matches = (tenant, type) => {
    let n = 0
    for (const [t, et] of live.values()) if (t === tenant && (et.endsWith('*') ? type.startsWith(et.slice(0, -1)) : et === type)) n++
    return n
  }
  const pool = [...types, 'a.*', 'b.*', '*']
  for (let round = 0; round < 40; round++) {
    const op = rand(4)
    const ids = [...live.keys()]
    if (op === 0 && ids.length > 0) {
      const id = ids[rand(ids.length)]
      await e.removeTrigger(id)
      live.delete(id)
    } else if (op === 1 && ids.length > 0) {
      const id = ids[rand(ids.length)]
      const eventType = pool[rand(pool.length)]
      await e.updateTrigger(id, { condition: { eventType } })
      live.set(id, [live.get(id)[0], eventType])
    } else {
      const tenant = tenants[rand(tenants.length)]
      const eventType = pool[rand(pool.length)]
      live.set((await trigger(e, eventType, { tenantId: tenant })).triggerId, [tenant, eventType])
    }
    const events = []
    for (let i = 0; i < 20; i++) events.push({ type: types[rand(types.length)], tenantId: tenants[rand(tenants.length)] })
    const expected = events.reduce((n, ev) => n + matches(ev.tenantId, ev.type), 0)
    expect((await e.emitBatch(events)).length).toBe(expected)
    const one = events[0]
    expect((await e.emit(one)).length).toBe(matches(one.tenantId, one.type))
  }
  await e.idle()
})
