// Issue 10, item 15: a target handler that never settles fails its binding
// after bindingTimeoutMs, so silent waiters and idle() are answered; the
// execution keeps its own outcome.
const { engine, nextEvent } = require('./helpers')

const T = 'tenant_a'

describe('bindingTimeoutMs', () => {
  test('a handler that never settles fails the binding, not the execution; the silent waiter and idle() resolve', async () => {
    const e = engine({ bindingTimeoutMs: 50 })
    e.registerTarget('memory.write', () => new Promise(() => {}))
    e.registerCallable('fact', async () => 'the sky is blue')
    const failed = nextEvent(e, 'binding.failed')
    const rec = await e.submit({ tenantId: T, callableName: 'fact', config: { mode: 'silent', targetBinding: { targetType: 'memory.write' } } })
    expect(rec.status).toBe('completed')
    expect(rec.output).toBe('the sky is blue')
    expect(rec.targetBindingApplied).toBe(false)
    expect(rec.bindingResult).toMatchObject({ success: false, error: 'target handler did not settle within 50 ms (bindingTimeoutMs)' })
    expect((await failed).executionId).toBe(rec.executionId)
    await e.idle()
    expect((await e.getExecution(rec.executionId)).status).toBe('completed')
  })

  test('a handler that settles in time is applied', async () => {
    const e = engine({ bindingTimeoutMs: 60000 })
    const seen = []
    e.registerTarget('thread.title', async (value) => {
      seen.push(value)
    })
    e.registerCallable('fact', async () => 'title')
    const rec = await e.submit({ tenantId: T, callableName: 'fact', config: { mode: 'silent', targetBinding: { targetType: 'thread.title' } } })
    expect(rec.targetBindingApplied).toBe(true)
    expect(seen).toEqual(['title'])
  })

  test('a bindingTimeoutMs that is not a positive integer is ENACT_INVALID_EXECUTION naming the option', () => {
    for (const bad of [0, -1, 2.5, 'soon', 2 ** 31]) {
      expect(() => engine({ bindingTimeoutMs: bad })).toThrow(
        expect.objectContaining({ code: 'ENACT_INVALID_EXECUTION', message: expect.stringMatching(/^bindingTimeoutMs: expected a positive integer/) }),
      )
    }
  })
})
