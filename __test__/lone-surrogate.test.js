// Issue 10, item 10: a request holding a lone surrogate (a valid JS string,
// not valid Unicode) is refused alone, naming the field; what was batched
// with it in the same tick goes through.
const { engine, rejection } = require('./helpers')

const T = 'tenant_a'

describe('lone surrogates in submissions', () => {
  test('each request of a tick succeeds or fails on its own; the refused one names its field', async () => {
    const e = engine()
    e.registerCallable('echo', async (ctx) => ctx.input ?? null)
    const results = await Promise.allSettled([
      e.submit({ tenantId: T, callableName: 'echo', input: 'before' }),
      e.submit({ tenantId: T, callableName: 'echo', input: 'x\ud800y' }),
      e.submit({ tenantId: T, callableName: 'echo', input: 'fine 😀', config: { mode: 'silent' } }),
      e.submit({ tenantId: T, callableName: 'echo', context: { note: 'ok', bad: '\udc00' } }),
      e.submit({ tenantId: T, callableName: 'echo', input: 'after' }),
    ])
    expect(results.map((r) => r.status)).toEqual(['fulfilled', 'rejected', 'fulfilled', 'rejected', 'fulfilled'])
    expect(results[1].reason).toMatchObject({
      code: 'ENACT_INVALID_EXECUTION',
      message: expect.stringMatching(/^input: holds a lone UTF-16 surrogate \(U\+D800 at index 1\)/),
    })
    expect(results[3].reason).toMatchObject({
      code: 'ENACT_INVALID_EXECUTION',
      message: expect.stringMatching(/^context\.bad: holds a lone UTF-16 surrogate \(U\+DC00 at index 0\)/),
    })
    expect(results[2].value).toMatchObject({ status: 'completed', output: 'fine 😀' })
    await e.idle()
    const inputs = (await e.listExecutions()).map((x) => x.input)
    expect(inputs.sort()).toEqual(['after', 'before', 'fine 😀'])
  })

  test('an escaped backslash before "ud800" is plain text, not a surrogate', async () => {
    const e = engine()
    e.registerCallable('echo', async (ctx) => ctx.input ?? null)
    const r = await e.submit({ tenantId: T, callableName: 'echo', input: '\\ud800', config: { mode: 'silent' } })
    expect(r).toMatchObject({ status: 'completed', output: '\\ud800' })
  })

  test('an event holding one is refused naming the field, not fed to Rust', async () => {
    const e = engine()
    e.registerCallable('echo', async () => null)
    await e.registerTrigger({ tenantId: T, type: 'event', condition: { eventType: 'order.created' }, action: { callableName: 'echo' } })
    const err = await rejection(e.emit({ type: 'order.created', tenantId: T, data: { name: 'a\ud83d' } }))
    expect(err).toMatchObject({ code: 'ENACT_INVALID_TRIGGER', message: expect.stringMatching(/^event\.data\.name: holds a lone UTF-16 surrogate/) })
    expect(await e.emit({ type: 'order.created', tenantId: T, data: { name: 'ok' } })).toHaveLength(1)
  })
})
