// Jest runs each test file in its own vm context: its `Error` and `Object`
// are not Node's main ones. What the engine hands to a test (records,
// events, stats, errors) must be made in the caller's realm, or
// `toThrow(Error)` and `toStrictEqual` fail on objects that look right.
const { BackgroundEngine, EnactError, isEnactError, ErrorCodes } = require('..')
const { engine, nextEvent, rejection } = require('./helpers')

async function rejectsInRealm(promise, code) {
  const err = await rejection(promise)
  expect(err).toBeInstanceOf(Error)
  expect(err).toBeInstanceOf(EnactError)
  expect(err.code).toBe(code)
  expect(err.name).toBe('EnactError')
  expect(isEnactError(err)).toBe(true)
  return err
}

test('a rejection from Rust passes toThrow(Error) and toThrow(EnactError)', async () => {
  const e = engine()
  await expect(e.getTrigger('nope')).rejects.toThrow(Error)
  await expect(e.getTrigger('nope')).rejects.toThrow(EnactError)
  await expect(e.getTrigger('nope')).rejects.toThrow(/nope/)
  await rejectsInRealm(e.getTrigger('nope'), 'ENACT_NOT_FOUND')
})

test('errors of submit, registerTrigger, fire, webhook, wait and cancel are EnactErrors of this realm', async () => {
  const e = engine()
  await rejectsInRealm(e.submit({ tenantId: 't', callableName: 'missing' }), 'ENACT_UNKNOWN_CALLABLE')
  await rejectsInRealm(e.submit({ tenantId: 't', callableName: 'x', config: { priority: 300 } }), 'ENACT_INVALID_EXECUTION')
  await rejectsInRealm(e.registerTrigger({ tenantId: 't', type: 'schedule', condition: { cronExpression: '61 * * * *' }, action: { callableName: 'x' } }), 'ENACT_INVALID_TRIGGER')
  await rejectsInRealm(e.fire('trigger_missing'), 'ENACT_NOT_FOUND')
  await rejectsInRealm(e.webhook('trigger_missing', { headers: {}, body: '{}' }), 'ENACT_NOT_FOUND')
  await rejectsInRealm(e.wait('exec_missing'), 'ENACT_NOT_FOUND')
  await rejectsInRealm(e.cancel('exec_missing'), 'ENACT_NOT_FOUND')
  await rejectsInRealm(e.emit({ tenantId: 't', type: 'x', data: 1n }), 'ENACT_INVALID_TRIGGER')
  await rejectsInRealm(e.shutdown({ timeoutMs: -1 }), 'ENACT_INVALID_EXECUTION')
  await expect(e.submit({ tenantId: 't', callableName: 'missing' })).rejects.toThrow(Error)
})

test('synchronous throws (constructor, registerCallable, on, applyTransform) are EnactErrors of this realm', () => {
  const { applyTransform } = require('..')
  expect(() => new BackgroundEngine({ concurrency: -1 })).toThrow(Error)
  expect(() => new BackgroundEngine({ store: { sqlite: 'x.db' } })).toThrow(EnactError)
  expect(() => new BackgroundEngine({ concurency: 1 })).toThrow(EnactError)
  const e = engine()
  expect(() => e.registerCallable('x', 42)).toThrow(EnactError)
  expect(() => e.registerCallable('x', () => null, { concurrency: 0 })).toThrow(EnactError)
  expect(() => e.on('nope', () => {})).toThrow(EnactError)
  expect(() => e.webhookHandler({ maxBodyBytes: -1 })).toThrow(EnactError)
  expect(() => applyTransform('{}', 'json_extract', null, '$.a')).toThrow(EnactError)
  expect(() => applyTransform('x', 'nope')).toThrow(Error)
})

test('records, fires, events and stats pass toStrictEqual against literals', async () => {
  const e = engine()
  e.registerCallable('echo', async (ctx) => ({ got: ctx.input }))
  const done = await e.submit({ tenantId: 't', callableName: 'echo', input: 'hi', config: { mode: 'silent' } })
  expect(done.output).toStrictEqual({ got: 'hi' })
  expect(done.config).toStrictEqual({ mode: 'silent', priority: 50, timeoutMs: 300000 })
  expect(await e.wait(done.executionId)).toStrictEqual(done)
  expect(await e.getExecution(done.executionId)).toStrictEqual(done)
  expect(await e.listExecutions()).toStrictEqual([done])

  const trigger = await e.registerTrigger({ tenantId: 't', type: 'manual', action: { callableName: 'echo', input: 'm' } })
  expect(trigger.action).toStrictEqual({ callableName: 'echo', input: 'm', background: true })
  expect(await e.getTrigger(trigger.triggerId)).toStrictEqual(trigger)
  expect(await e.listTriggers()).toStrictEqual([trigger])

  const firedEvent = nextEvent(e, 'trigger.fired')
  const fired = await e.fire(trigger.triggerId, { a: [1] })
  expect(fired).toStrictEqual({
    triggerId: trigger.triggerId,
    triggerName: trigger.name,
    triggerType: 'manual',
    executionId: fired.executionId,
    firedAt: fired.firedAt,
    triggerSource: { a: [1] },
    tenantId: 't',
    chainDepth: 1,
  })
  expect(await firedEvent).toStrictEqual(fired)
  const completed = await e.wait(fired.executionId)
  expect(completed.triggerSource).toStrictEqual({ a: [1] })

  const stats = await e.stats()
  expect(stats.completed).toBe(2)
  expect(stats).toStrictEqual({ ...stats })
  expect(Object.getPrototypeOf(stats)).toBe(Object.prototype)
})

test('an event listener and a callable see objects of this realm', async () => {
  const e = engine()
  let seen
  e.registerCallable('look', async (ctx) => {
    seen = { context: ctx.context, source: ctx.triggerSource }
    return null
  })
  const completed = nextEvent(e, 'execution.completed')
  const t = await e.registerTrigger({ tenantId: 't', type: 'manual', action: { callableName: 'look', context: { k: 'v' } } })
  await e.fire(t.triggerId, { p: 1 })
  const record = await completed
  expect(record.context).toStrictEqual({ k: 'v' })
  expect(seen).toStrictEqual({ context: { k: 'v' }, source: { p: 1 } })
})

test('isEnactError is duck-typed: it accepts a coded error of another realm and refuses the rest', () => {
  const vm = require('vm')
  const foreign = vm.runInNewContext('const e = new Error("x"); e.code = "ENACT_NOT_FOUND"; e')
  expect(foreign instanceof Error).toBe(false)
  expect(isEnactError(foreign)).toBe(true)
  expect(isEnactError(Object.assign(new Error('x'), { code: 'ENOENT' }))).toBe(false)
  expect(isEnactError({ code: 'ENACT_NOT_FOUND' })).toBe(false) // no message: not an error
  expect(isEnactError({ code: 'ENACT_NOT_FOUND', message: 'm' })).toBe(true)
  expect(isEnactError(null)).toBe(false)
  expect(isEnactError('ENACT_NOT_FOUND')).toBe(false)
  expect(isEnactError(new Proxy({}, { get() { throw new Error('trap') }, getPrototypeOf() { throw new Error('trap') } }))).toBe(false)
  for (const code of ErrorCodes) expect(isEnactError(new EnactError(code, 'm'))).toBe(true)
})

test('EnactError is an Error subclass with a code and a readable stack', () => {
  const err = new EnactError('ENACT_NOT_FOUND', 'triggerId: no trigger "x"')
  expect(err).toBeInstanceOf(Error)
  expect(err.name).toBe('EnactError')
  expect(err.message).toBe('triggerId: no trigger "x"')
  expect(String(err)).toBe('EnactError: triggerId: no trigger "x"')
  expect(err.stack).toMatch(/realm\.test\.js/)
  expect(() => new EnactError('NOPE', 'm')).toThrow(/unknown error code/)
})
