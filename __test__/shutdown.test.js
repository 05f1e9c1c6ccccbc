const { deferred, rejection, engine, hangUntilAborted, runNode } = require('./helpers')

const T = 'tenant_a'

describe('shutdown', () => {
  test('stops taking work and lets running work finish', async () => {
    const e = engine()
    const gate = deferred()
    e.registerCallable('job', async () => {
      await gate.promise
      return 'finished'
    })
    const rec = await e.submit({ tenantId: T, callableName: 'job' })
    await new Promise((r) => setImmediate(r))
    const waiting = e.wait(rec.executionId)
    const closing = e.shutdown({ timeoutMs: 10_000 })
    expect((await rejection(e.submit({ tenantId: T, callableName: 'job' }))).code).toBe('ENACT_SHUTDOWN')
    gate.resolve()
    await closing
    expect((await waiting).status).toBe('completed')
  })

  test('at the deadline running work is aborted and waiters are rejected', async () => {
    const e = engine()
    const stuck = hangUntilAborted()
    e.registerCallable('stuck', stuck.fn)
    const rec = await e.submit({ tenantId: T, callableName: 'stuck' })
    await new Promise((r) => setImmediate(r))
    const waiting = e.wait(rec.executionId)
    await e.shutdown({ timeoutMs: 20 })
    expect((await stuck.aborted).code).toBe('ENACT_SHUTDOWN')
    expect((await rejection(waiting)).code).toBe('ENACT_SHUTDOWN')
    // It did not finish, so it is queued again: a durable store runs it after restart.
    expect((await e.getExecution(rec.executionId)).status).toBe('queued')
    // shutdown is idempotent
    await e.shutdown()
  })

  test('after shutdown nothing keeps Node alive', async () => {
    const { code, out } = await runNode(`
      const { BackgroundEngine } = require('.')
      const e = new BackgroundEngine()
      e.registerCallable('later', async () => 1)
      e.submit({ tenantId: 't', callableName: 'later', config: { mode: 'deferred', delayMs: 3600000 } })
        .then(() => e.shutdown({ timeoutMs: 10 }))
        .then(() => console.log('shut down'))
    `)
    expect(out).toContain('shut down')
    expect(code).toBe(0)
  })

  test('an idle engine does not keep Node alive, and queued work does until it is done', async () => {
    const { code, out } = await runNode(`
      const { BackgroundEngine } = require('.')
      const e = new BackgroundEngine()
      e.registerCallable('soon', async () => { console.log('ran'); return 1 })
      e.submit({ tenantId: 't', callableName: 'soon', config: { mode: 'deferred', delayMs: 50 } })
    `)
    expect(out).toContain('ran')
    expect(code).toBe(0)
  })
})
