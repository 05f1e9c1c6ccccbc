// Issue 10, item 8: a key "__proto__" in a webhook body, event data or a
// payload stays an own property everywhere a record reaches JS, and no
// object's prototype changes.
const { engine, listen, request, nextEvent } = require('./helpers')

const T = 'tenant_a'
const EVIL = '{"__proto__":{"isAdmin":true},"plain":1}'

/** `v` holds "__proto__" as an own key with the injected value, and no prototype was touched. */
function expectOwnProto(v) {
  expect(v).not.toBeNull()
  expect(typeof v).toBe('object')
  expect(Object.getPrototypeOf(v)).toBe(Object.prototype)
  expect(Object.prototype.hasOwnProperty.call(v, '__proto__')).toBe(true)
  expect(Object.getOwnPropertyDescriptor(v, '__proto__').value).toEqual(JSON.parse('{"isAdmin":true}'))
  expect(v.isAdmin).toBeUndefined()
  expect(v.plain).toBe(1)
  expect({}.isAdmin).toBeUndefined()
}

async function setup() {
  const e = engine()
  const seen = []
  e.registerCallable('hook', async (ctx) => {
    seen.push(ctx.triggerSource)
    return ctx.triggerSource
  })
  e.registerCallable('ctx', async (ctx) => {
    seen.push(ctx.context)
    return null
  })
  return { e, seen }
}

describe('"__proto__" stays an own key', () => {
  test('webhook(): the result, trigger.fired, the callable ctx, wait(), getExecution() and listExecutions()', async () => {
    const { e, seen } = await setup()
    const { triggerId } = await e.registerTrigger({ tenantId: T, type: 'webhook', condition: {}, action: { callableName: 'hook' }, allowUnsigned: true })
    const firedEvent = nextEvent(e, 'trigger.fired')
    const completed = nextEvent(e, 'execution.completed')
    const fired = await e.webhook(triggerId, { headers: {}, body: EVIL })
    expectOwnProto(fired.triggerSource)
    expectOwnProto((await firedEvent).triggerSource)
    const done = await e.wait(fired.executionId)
    expectOwnProto(seen[0])
    expectOwnProto(done.output)
    expectOwnProto((await completed).output)
    const rec = await e.getExecution(fired.executionId)
    expectOwnProto(rec.triggerSource)
    expectOwnProto(rec.output)
    expectOwnProto((await e.listExecutions({})).find((x) => x.executionId === fired.executionId).triggerSource)
  })

  test('webhookHandler() over real HTTP', async () => {
    const { e, seen } = await setup()
    const { triggerId } = await e.registerTrigger({ tenantId: T, type: 'webhook', condition: {}, action: { callableName: 'hook' }, allowUnsigned: true })
    const { url } = await listen(e.webhookHandler())
    const r = await request(`${url}/webhooks/${triggerId}`, { body: EVIL })
    expect(r.status).toBe(202)
    expect(r.text).toContain('"__proto__":{"isAdmin":true}')
    await e.wait(r.json.executionId)
    expectOwnProto(seen[0])
    expectOwnProto((await e.getExecution(r.json.executionId)).triggerSource)
  })

  test('fire() and emit(), and the callable they run', async () => {
    const { e, seen } = await setup()
    const manual = await e.registerTrigger({ tenantId: T, type: 'manual', condition: {}, action: { callableName: 'hook' } })
    const fired = await e.fire(manual.triggerId, JSON.parse(EVIL))
    expectOwnProto(fired.triggerSource)
    expectOwnProto((await e.wait(fired.executionId)).output)
    await e.registerTrigger({ tenantId: T, type: 'event', condition: { eventType: 'x.y' }, action: { callableName: 'hook' } })
    const [emitted] = await e.emit({ type: 'x.y', tenantId: T, data: JSON.parse(EVIL) })
    expectOwnProto(emitted.triggerSource.data)
    await e.wait(emitted.executionId)
    expectOwnProto(seen[1].data)
    expect(seen).toHaveLength(2)
  })

  test('a submission: context, metadata and the brief record built in JS', async () => {
    const { e, seen } = await setup()
    const context = JSON.parse('{"__proto__":"x","k":"v"}')
    const queued = await e.submit({ tenantId: T, callableName: 'ctx', context })
    expect(Object.prototype.hasOwnProperty.call(queued.context, '__proto__')).toBe(true)
    expect(Object.getPrototypeOf(queued.context)).toBe(Object.prototype)
    await e.wait(queued.executionId)
    expect(Object.prototype.hasOwnProperty.call(seen[0], '__proto__')).toBe(true)
    expect(seen[0].k).toBe('v')
    const withMeta = await e.submit({ tenantId: T, callableName: 'ctx', metadata: JSON.parse(EVIL) })
    expectOwnProto(withMeta.metadata)
    expectOwnProto((await e.getExecution(withMeta.executionId)).metadata)
  })
})
