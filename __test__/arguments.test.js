// Issue 10 item 11: every public method validates its arguments like
// `submit` does. A value JSON cannot carry (NaN, Infinity, a function, a
// symbol, a BigInt) is refused with the path of the field instead of
// being taken as "absent" (its default); unknown option keys are refused;
// a wrong type is an ENACT_* error naming the argument, never a napi
// error (`StringExpected`, `InvalidArg`).
const { BackgroundEngine, ErrorCodes, applyTransform } = require('..')

const EXEC = 'ENACT_INVALID_EXECUTION'
const TRIG = 'ENACT_INVALID_TRIGGER'
const fn = () => 1
const sym = Symbol('s')

let e
let manual
beforeAll(async () => {
  e = new BackgroundEngine()
  e.registerCallable('work', async () => null)
  manual = await e.registerTrigger({ tenantId: 't', name: 'm', type: 'manual', action: { callableName: 'work' } })
})
afterAll(() => e.shutdown())

const submit = (config) => () => e.submit({ tenantId: 't', callableName: 'work', config })
const trigger = (extra) => () => e.registerTrigger({ tenantId: 't', name: 'x', type: 'manual', action: { callableName: 'work' }, ...extra })

// [what, call, code, message (exact string or pattern)]
const CASES = [
  // engine options
  ['options: a misspelt key', () => new BackgroundEngine({ concurency: 2 }), EXEC, /^concurency: unknown option \(expected one of store, concurrency, /],
  ['options: not an object', () => new BackgroundEngine(5), EXEC, 'options: expected an object, got 5'],
  ['options.concurrency: -1', () => new BackgroundEngine({ concurrency: -1 }), EXEC, 'concurrency: expected a positive integer, got -1'],
  ['options.concurrency: 1.5', () => new BackgroundEngine({ concurrency: 1.5 }), EXEC, 'concurrency: expected a positive integer, got 1.5'],
  ['options.concurrency: 1e12', () => new BackgroundEngine({ concurrency: 1e12 }), EXEC, 'concurrency: expected a positive integer, got 1000000000000'],
  ['options.concurrency: NaN', () => new BackgroundEngine({ concurrency: NaN }), EXEC, 'concurrency: expected a finite number, got NaN'],
  ['options.tenantConcurrency: Infinity', () => new BackgroundEngine({ tenantConcurrency: Infinity }), EXEC, 'tenantConcurrency: expected a finite number, got Infinity'],
  ['options.keepFinished: a function', () => new BackgroundEngine({ keepFinished: fn }), EXEC, 'keepFinished: a function is not a JSON value'],
  ['options.maxChainDepth: a symbol', () => new BackgroundEngine({ maxChainDepth: sym }), EXEC, 'maxChainDepth: a symbol is not a JSON value'],
  ['options.bindingTimeoutMs: a BigInt', () => new BackgroundEngine({ bindingTimeoutMs: 5n }), EXEC, 'bindingTimeoutMs: a BigInt is not a JSON value'],
  // callables and targets
  ['registerCallable: name', () => e.registerCallable(5, fn), EXEC, 'name: expected a string, got a number'],
  ['registerCallable: fn', () => e.registerCallable('c', 'f'), EXEC, 'fn: expected a function, got a string'],
  ['registerCallable: options key', () => e.registerCallable('c', fn, { limit: 1 }), EXEC, 'options.limit: unknown field (expected concurrency)'],
  ['registerCallable: options.concurrency NaN', () => e.registerCallable('c', fn, { concurrency: NaN }), EXEC, 'options.concurrency: expected a finite number, got NaN'],
  ['registerTarget: type', () => e.registerTarget(7, fn), EXEC, /^targetType: expected one of /],
  // submit
  ['submit: config.delayMs Infinity', submit({ delayMs: Infinity }), EXEC, 'config.delayMs: expected a finite number, got Infinity'],
  ['submit: config.timeoutMs NaN', submit({ timeoutMs: NaN }), EXEC, 'config.timeoutMs: expected a finite number, got NaN'],
  ['submit: config.priority a function', submit({ priority: fn }), EXEC, 'config.priority: a function is not a JSON value'],
  ['submit: config.retry.maxAttempts -Infinity', submit({ retry: { maxAttempts: -Infinity } }), EXEC, 'config.retry.maxAttempts: expected a finite number, got -Infinity'],
  ['submit: context value a symbol', () => e.submit({ tenantId: 't', callableName: 'work', context: { k: sym } }), EXEC, 'context.k: a symbol is not a JSON value'],
  ['submit: tenantId a function', () => e.submit({ tenantId: fn, callableName: 'work' }), EXEC, 'tenantId: a function is not a JSON value'],
  ['submit: unknown key', () => e.submit({ tenantId: 't', callableName: 'work', priority: 5 }), EXEC, /^priority: unknown field/],
  // executions by id
  ['wait: id', () => e.wait(5), EXEC, 'executionId: expected a string, got a number'],
  ['cancel: id', () => e.cancel({}), EXEC, 'executionId: expected a string, got an object'],
  ['getExecution: id', () => e.getExecution(null), EXEC, 'executionId: expected a string, got null'],
  ['listExecutions: filter key', () => e.listExecutions({ tenant: 't' }), EXEC, /^filter\.tenant: unknown field/],
  ['listExecutions: filter.limit NaN', () => e.listExecutions({ limit: NaN }), EXEC, 'filter.limit: expected a finite number, got NaN'],
  ['listExecutions: filter not an object', () => e.listExecutions('t'), EXEC, 'filter: expected an object, got "t"'],
  // triggers
  ['registerTrigger: not an object', () => e.registerTrigger('x'), TRIG, /^expected an object|definition: expected an object/],
  ['registerTrigger: unknown key', trigger({ bogus: 1 }), TRIG, /^bogus: unknown field/],
  ['registerTrigger: maxFires NaN', trigger({ maxFires: NaN }), TRIG, 'maxFires: expected a finite number, got NaN'],
  ['registerTrigger: maxFires a function', trigger({ maxFires: fn }), TRIG, 'maxFires: a function is not a JSON value'],
  ['registerTrigger: cooldownMs Infinity', trigger({ cooldownMs: Infinity }), TRIG, 'cooldownMs: expected a finite number, got Infinity'],
  ['registerTrigger: action.input a BigInt', trigger({ action: { callableName: 'work', input: 1n } }), TRIG, 'action.input: a BigInt is not a JSON value'],
  ['getTrigger: id', () => e.getTrigger(5), TRIG, 'triggerId: expected a string, got a number'],
  ['listTriggers: filter key', () => e.listTriggers({ kind: 'event' }), TRIG, /^filter\.kind: unknown field/],
  ['updateTrigger: id', () => e.updateTrigger(1, {}), TRIG, 'triggerId: expected a string, got a number'],
  ['updateTrigger: patch NaN', () => e.updateTrigger(manual.triggerId, { maxFires: NaN }), TRIG, 'patch.maxFires: expected a finite number, got NaN'],
  ['pauseTrigger: id', () => e.pauseTrigger(undefined), TRIG, 'triggerId: expected a string, got undefined'],
  ['resumeTrigger: id', () => e.resumeTrigger([]), TRIG, 'triggerId: expected a string, got an array'],
  ['disableTrigger: id', () => e.disableTrigger(true), TRIG, 'triggerId: expected a string, got a boolean'],
  ['removeTrigger: id', () => e.removeTrigger(5n), TRIG, 'triggerId: expected a string, got a BigInt'],
  ['fire: id', () => e.fire(5), TRIG, 'triggerId: expected a string, got a number'],
  ['fire: payload a BigInt', () => e.fire(manual.triggerId, { n: 1n }), TRIG, /^payload: cannot be sent as JSON/],
  ['webhook: id', () => e.webhook(5, { headers: {}, body: '' }), TRIG, 'triggerId: expected a string, got a number'],
  ['webhook: request', () => e.webhook(manual.triggerId, 'body'), TRIG, 'request: expected an object { headers, body }, got a string'],
  ['webhook: a header a function', () => e.webhook(manual.triggerId, { headers: { a: fn }, body: '' }), TRIG, 'request.headers.a: a function is not a JSON value'],
  ['webhookHandler: options key', () => e.webhookHandler({ maxBody: 1 }), TRIG, /^options\.maxBody: unknown field/],
  ['webhookHandler: options.bodyTimeoutMs Infinity', () => e.webhookHandler({ bodyTimeoutMs: Infinity }), TRIG, 'options.bodyTimeoutMs: expected a finite number, got Infinity'],
  // stimuli
  ['emit: not an object', () => e.emit(5), TRIG, 'event: expected an object, got 5'],
  ['reportMetric: value a string', () => e.reportMetric({ tenantId: 't', name: 'm', value: 'high' }), TRIG, 'metric.value: expected a number, got "high"'],
  // applyTransform
  ['applyTransform: value', () => applyTransform(5, 'none'), EXEC, 'value: expected a string, got a number'],
  ['applyTransform: transform', () => applyTransform('a', 3), EXEC, 'transform: expected a string, got a number'],
  ['applyTransform: maxLength', () => applyTransform('a', 'truncate', '5'), EXEC, 'maxLength: expected a non-negative integer, got a string'],
  ['applyTransform: maxLength NaN', () => applyTransform('a', 'truncate', NaN), EXEC, 'maxLength: expected a non-negative integer, got NaN'],
  ['applyTransform: jsonPath', () => applyTransform('{}', 'json_extract', null, 4), EXEC, 'jsonPath: expected a string, got a number'],
  // events and shutdown
  ['on: unknown event', () => e.on('execution.done', fn), EXEC, /^event: unknown event "execution\.done"/],
  ['on: listener', () => e.on('execution.completed', 5), EXEC, 'listener: expected a function'],
  ['shutdown: options key', () => e.shutdown({ timeout: 5 }), EXEC, 'timeout: unknown option (expected timeoutMs)'],
  ['shutdown: timeoutMs NaN', () => e.shutdown({ timeoutMs: NaN }), EXEC, 'timeoutMs: expected a finite number, got NaN'],
]

test.each(CASES)('%s', async (_what, call, code, message) => {
  let err
  try {
    await call()
  } catch (thrown) {
    err = thrown
  }
  expect(err).toBeDefined()
  expect(ErrorCodes).toContain(err.code)
  expect(err.code).toBe(code)
  if (typeof message === 'string') expect(err.message).toBe(message)
  else expect(err.message).toMatch(message)
})

test('the engine is unharmed by every refused call', async () => {
  const r = await e.submit({ tenantId: 't', callableName: 'work', config: { mode: 'silent' } })
  expect(r.status).toBe('completed')
  expect((await e.getTrigger(manual.triggerId)).maxFires).toBeUndefined()
})
