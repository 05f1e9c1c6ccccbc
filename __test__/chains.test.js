// Issue 10 item 12: work a callable causes stays in its chain. Before, a
// callable that called emit() started its events at depth 0 again (113k
// fires in 3 s, endless), and two triggers on execution.completed doubled
// the work at each level (70k executions, 3.6 GB in 20 s). Now emit /
// emitBatch / lifecycle / reportMetric / fire / submit made while a
// callable runs (in any await or callback of it), and from listeners and
// target handlers of its execution, continue its chain; a chain stops at
// maxChainDepth levels and at maxChainFires fires per root.
const { BackgroundEngine } = require('..')

const T = 't'

/** The `trigger.loop_blocked` events of `e` from now on, as they come. */
function loopBlocked(e) {
  const blocked = []
  e.on('trigger.loop_blocked', (b) => blocked.push(b))
  return blocked
}

function withEngine(options, body) {
  return async () => {
    const e = new BackgroundEngine(options)
    try {
      await body(e)
    } finally {
      await e.shutdown()
    }
  }
}

test(
  'a callable that emits the event that runs it stops at maxChainDepth',
  withEngine({ maxChainDepth: 5 }, async (e) => {
    const blocked = loopBlocked(e)
    let runs = 0
    e.registerCallable('again', async (ctx) => {
      runs++
      await new Promise((r) => setImmediate(r)) // the chain survives awaits
      await e.emit({ tenantId: ctx.tenantId, type: 'again' })
      return ctx.attempt
    })
    await e.registerTrigger({ tenantId: T, name: 'again', type: 'event', condition: { eventType: 'again' }, action: { callableName: 'again' } })
    await e.emit({ tenantId: T, type: 'again' })
    await e.idle()
    expect(runs).toBe(5)
    expect(blocked).toHaveLength(1)
    expect(blocked[0]).toMatchObject({ limit: 'maxChainDepth', chainDepth: 6, maxChainDepth: 5, triggerName: 'again' })
    const runsByDepth = (await e.listExecutions({ tenantId: T })).map((x) => x.chainDepth).sort()
    expect(runsByDepth).toEqual([1, 2, 3, 4, 5])
  }),
)

test(
  'two triggers on execution.completed double each level, and stop at maxChainFires',
  withEngine({ maxChainFires: 30 }, async (e) => {
    const blocked = loopBlocked(e)
    e.registerCallable('work', async () => null)
    for (const name of ['left', 'right']) {
      await e.registerTrigger({ tenantId: T, name, type: 'event', condition: { eventType: 'execution.completed' }, action: { callableName: 'work' } })
    }
    const root = await e.submit({ tenantId: T, callableName: 'work' })
    await e.idle()
    const all = await e.listExecutions({ tenantId: T })
    expect(all).toHaveLength(1 + 30)
    expect(all.filter((x) => x.executionId !== root.executionId).every((x) => x.chainRoot === root.executionId)).toBe(true)
    expect(blocked.length).toBeGreaterThan(0)
    for (const b of blocked) expect(b).toMatchObject({ limit: 'maxChainFires', chainRoot: root.executionId, chainFires: 30, maxChainFires: 30 })
  }),
)

test(
  'submit and fire from a callable continue its chain',
  withEngine({}, async (e) => {
    const manual = await e.registerTrigger({ tenantId: T, name: 'm', type: 'manual', action: { callableName: 'leaf' } })
    e.registerCallable('leaf', async () => 'leaf')
    e.registerCallable('parent', async () => {
      const child = await e.submit({ tenantId: T, callableName: 'leaf', config: { mode: 'silent' } })
      const fired = await e.fire(manual.triggerId, { from: 'parent' })
      return { child: child.executionId, fired: fired.executionId }
    })
    const parent = await e.submit({ tenantId: T, callableName: 'parent', config: { mode: 'silent' } })
    expect(parent.status).toBe('completed')
    const child = await e.getExecution(parent.output.child)
    expect(child).toMatchObject({ status: 'completed', chainDepth: 1, chainRoot: parent.executionId })
    const fired = await e.wait(parent.output.fired)
    expect(fired).toMatchObject({ status: 'completed', chainDepth: 1, chainRoot: parent.executionId })
    // Outside any callable, the same calls start new chains.
    const outside = await e.submit({ tenantId: T, callableName: 'leaf' })
    expect(outside.chainDepth).toBeUndefined()
    expect(outside.chainRoot).toBeUndefined()
    const outsideFire = await e.wait((await e.fire(manual.triggerId)).executionId)
    expect(outsideFire.chainDepth).toBe(1)
    expect(outsideFire.chainRoot).toBeUndefined()
  }),
)

test(
  'a listener of execution.completed that emits continues the execution’s chain',
  withEngine({ maxChainDepth: 4 }, async (e) => {
    const blocked = loopBlocked(e)
    e.registerCallable('work', async () => null)
    await e.registerTrigger({ tenantId: T, name: 'echo', type: 'event', condition: { eventType: 'done' }, action: { callableName: 'work' } })
    e.on('execution.completed', (record) => {
      e.emit({ tenantId: record.tenantId, type: 'done' }).catch(() => {})
    })
    await e.submit({ tenantId: T, callableName: 'work' })
    await e.idle()
    // The submit (depth 0) and one fire per level up to maxChainDepth.
    expect(await e.listExecutions({ tenantId: T })).toHaveLength(1 + 4)
    expect(blocked).toHaveLength(1)
    expect(blocked[0]).toMatchObject({ limit: 'maxChainDepth', chainDepth: 5 })
  }),
)

test(
  'concurrent callables keep their own chains',
  withEngine({ maxChainDepth: 3 }, async (e) => {
    const seen = []
    e.registerCallable('a', async (ctx) => {
      await new Promise((r) => setTimeout(r, 5))
      const child = await e.submit({ tenantId: T, callableName: 'leaf', config: { mode: 'silent' } })
      seen.push([ctx.executionId, child.chainRoot])
      return null
    })
    e.registerCallable('leaf', async () => null)
    const roots = await Promise.all([1, 2, 3].map(() => e.submit({ tenantId: T, callableName: 'a' })))
    await e.idle()
    expect(seen).toHaveLength(3)
    for (const [id, childRoot] of seen) expect(childRoot).toBe(id)
    expect(new Set(seen.map(([id]) => id))).toEqual(new Set(roots.map((r) => r.executionId)))
  }),
)

test('maxChainFires is validated like every option', () => {
  expect(() => new BackgroundEngine({ maxChainFires: 0 })).toThrow('maxChainFires: must be at least 1')
  expect(() => new BackgroundEngine({ maxChainFires: Infinity })).toThrow('maxChainFires: expected a finite number, got Infinity')
})

test(
  'a trigger.fired listener that emits the event that fired it stops at maxChainDepth',
  withEngine({ maxChainDepth: 4 }, async (e) => {
    const blocked = loopBlocked(e)
    e.registerCallable('work', async () => null)
    const t = await e.registerTrigger({ tenantId: T, name: 'ping', type: 'event', condition: { eventType: 'ping' }, action: { callableName: 'work' } })
    let fired = 0
    e.on('trigger.fired', (ev) => {
      fired++
      e.emit({ tenantId: ev.tenantId, type: 'ping' }).catch(() => {})
    })
    await e.emit({ tenantId: T, type: 'ping' })
    await e.idle()
    expect(fired).toBe(4)
    expect(blocked).toHaveLength(1)
    expect(blocked[0]).toMatchObject({ triggerId: t.triggerId, limit: 'maxChainDepth', chainDepth: 5 })
  }),
)

test(
  'a trigger.loop_blocked listener that emits again is refused without another report',
  withEngine({ maxChainDepth: 2 }, async (e) => {
    const blocked = []
    e.registerCallable('again', async (ctx) => {
      await e.emit({ tenantId: ctx.tenantId, type: 'again' })
      return null
    })
    await e.registerTrigger({ tenantId: T, name: 'again', type: 'event', condition: { eventType: 'again' }, action: { callableName: 'again' } })
    e.on('trigger.loop_blocked', (b) => {
      blocked.push(b)
      e.emit({ tenantId: T, type: 'again' }).catch(() => {})
    })
    await e.emit({ tenantId: T, type: 'again' })
    await e.idle()
    expect(blocked).toHaveLength(1)
    expect(await e.listExecutions({ tenantId: T })).toHaveLength(2)
  }),
)

test(
  'what a callable leaves behind (a client it created) is outside its chain once it returned',
  withEngine({ maxChainFires: 3 }, async (e) => {
    const blocked = loopBlocked(e)
    e.registerCallable('work', async () => null)
    await e.registerTrigger({ tenantId: T, name: 'tick', type: 'event', condition: { eventType: 'tick' }, action: { callableName: 'work' } })
    let client = null
    e.registerCallable('setup', async () => {
      // A client created on first use, inside a callable; it emits later,
      // from its own callbacks (which inherit the callable's async context).
      client = { send: () => new Promise((resolve) => setImmediate(() => resolve(e.emit({ tenantId: T, type: 'tick' })))) }
      return null
    })
    await e.submit({ tenantId: T, callableName: 'setup', config: { mode: 'silent' } })
    let fires = 0
    for (let i = 0; i < 10; i++) fires += (await client.send()).length
    await e.idle()
    expect(fires).toBe(10)
    expect(blocked).toHaveLength(0)
  }),
)

test('an async listener that rejects becomes an ENACT_LISTENER warning, not an unhandled rejection', async () => {
  // Warnings go to the host's process object (Jest's sandbox has its own).
  const hostProcess = require('vm').runInThisContext('process')
  const warned = new Promise((resolve) => {
    const onWarning = (w) => {
      if (w.code === 'ENACT_LISTENER' && /rejected/.test(w.message)) {
        hostProcess.off('warning', onWarning)
        resolve(w)
      }
    }
    hostProcess.on('warning', onWarning)
  })
  const e = new BackgroundEngine()
  try {
    e.registerCallable('work', async () => null)
    e.on('execution.completed', async () => {
      throw new Error('listener failed')
    })
    await e.submit({ tenantId: T, callableName: 'work', config: { mode: 'silent' } })
    const w = await warned
    expect(w.message).toContain('listener failed')
  } finally {
    await e.shutdown()
  }
})
