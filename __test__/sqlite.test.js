// The SQLite store through the package (issue 12): what a durable engine
// keeps across a shutdown and a reopen, crash recovery of a process killed
// mid-run, schedules and delays on a manual clock across a reopen, and the
// faults `open` refuses with ENACT_STORE. The kill -9 stress test with many
// rounds is sqlite-kill.test.js.
const fs = require('fs')
const os = require('os')
const path = require('path')
const { fork } = require('child_process')
const { BackgroundEngine } = require('..')
const { deferred, rejection, nextEvent, runNode, SECRET, signed } = require('./helpers')

const T = 'tenant_a'

/** A fresh directory per test, removed after it. */
let dir
beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'enact-sqlite-'))
})
afterEach(async () => {
  await Promise.all(opened.splice(0).map((e) => e.shutdown({ timeoutMs: 100 })))
  fs.rmSync(dir, { recursive: true, force: true })
})

/** Engines opened by `open()`: shut down after each test. */
const opened = []
async function open(options = {}, file = path.join(dir, 'enact.db'), setup = undefined) {
  const e = await BackgroundEngine.open({ ...options, store: { sqlite: file, ...options.store } }, setup)
  opened.push(e)
  return e
}

/** Shuts `e` down (closing its file) and forgets it. */
async function close(e, options) {
  opened.splice(opened.indexOf(e), 1)
  await e.shutdown(options)
}


describe('what a reopened file holds', () => {
  test('triggers with their status and counts, executions with their results, fire gates and webhook replay ids', async () => {
    let e = await open()
    expect(e.recovery).toEqual({ requeued: 0, failed: 0 })
    e.registerCallable('echo', async ({ input }) => `got ${input}`)
    const onEvent = await e.registerTrigger({ tenantId: T, name: 'on-order', type: 'event', condition: { eventType: 'order.created' }, action: { callableName: 'echo', input: 'order' } })
    const once = await e.registerTrigger({ tenantId: T, name: 'once', type: 'manual', maxFires: 1, action: { callableName: 'echo' } })
    const paused = await e.registerTrigger({ tenantId: T, name: 'paused', type: 'manual', action: { callableName: 'echo' } })
    await e.pauseTrigger(paused.triggerId)
    const hook = await e.registerTrigger({ tenantId: T, name: 'hook', type: 'webhook', webhookSecret: SECRET, action: { callableName: 'echo' } })

    const submitted = await e.submit({ tenantId: T, callableName: 'echo', input: 'hi', executionId: 'exec_mine' })
    const [fired] = await e.emit({ tenantId: T, type: 'order.created', data: { total: 5 } })
    const onceFired = await e.fire(once.triggerId)
    const hooked = await e.webhook(hook.triggerId, signed('{"a":1}', 'msg_1'))
    await e.idle()
    await close(e)

    e = await open()
    e.registerCallable('echo', async ({ input }) => `got ${input}`)
    const triggers = Object.fromEntries((await e.listTriggers()).map((t) => [t.name, t]))
    expect(triggers['on-order']).toMatchObject({ triggerId: onEvent.triggerId, status: 'active', fireCount: 1 })
    expect(triggers.once).toMatchObject({ fireCount: 1, status: 'fired' })
    expect(triggers.paused.status).toBe('paused')
    expect(triggers.hook.fireCount).toBe(1)
    expect(await e.getExecution('exec_mine')).toMatchObject({ status: 'completed', output: 'got hi', input: 'hi' })
    expect(await e.getExecution(fired.executionId)).toMatchObject({ status: 'completed', triggerId: onEvent.triggerId })
    expect((await e.getExecution(onceFired.executionId)).status).toBe('completed')
    expect((await e.getExecution(hooked.executionId)).status).toBe('completed')
    expect((await e.wait(submitted.executionId)).output).toBe('got hi')
    expect(await e.stats()).toMatchObject({ completed: 4, queued: 0, running: 0, submitted: 0 })

    // The gates and the replay ids survived: nothing fires again.
    expect((await rejection(e.fire(once.triggerId))).code).toBe('ENACT_TRIGGER_INACTIVE')
    const replay = await rejection(e.webhook(hook.triggerId, signed('{"a":1}', 'msg_1')))
    expect([replay.code, replay.message]).toEqual(['ENACT_WEBHOOK_SIGNATURE', expect.stringMatching(/replay/i)])
    // The compiled matchers were rebuilt from the file: the event still fires.
    expect(await e.emit({ tenantId: T, type: 'order.created', data: {} })).toHaveLength(1)
    await e.idle()
    expect((await e.getTrigger(onEvent.triggerId)).fireCount).toBe(2)
  })

  test('queued and delayed work left at shutdown runs after the reopen; idle() and the process wait for it', async () => {
    let e = await open({ concurrency: 1 })
    const release = deferred()
    e.registerCallable('slow', async ({ input }) => (await release.promise, input))
    const started = nextEvent(e, 'execution.started')
    const ids = []
    for (let i = 0; i < 5; i++) ids.push((await e.submit({ tenantId: T, callableName: 'slow', input: `n${i}` })).executionId)
    await started
    // The running one is aborted by the shutdown; the four queued stay queued in the file.
    await close(e, { timeoutMs: 0 })

    e = await open({ concurrency: 1 })
    const seen = []
    e.registerCallable('slow', async ({ input }) => (seen.push(input), input))
    await e.idle()
    // The one running at shutdown was aborted and handed back to the queue.
    expect(seen.sort()).toEqual(['n0', 'n1', 'n2', 'n3', 'n4'])
    for (const id of ids) expect((await e.getExecution(id)).status).toBe('completed')
    release.resolve()
  })

  test('a silent submit resolves with the final record; every mode resolves only once committed', async () => {
    const e = await open({ store: { synchronous: 'full' } })
    e.registerCallable('double', async ({ input }) => String(Number(input) * 2))
    const done = await e.submit({ tenantId: T, callableName: 'double', input: '21', config: { mode: 'silent' } })
    expect(done).toMatchObject({ status: 'completed', output: '42' })
    const many = await Promise.all(Array.from({ length: 300 }, (_, i) => e.submit({ tenantId: T, callableName: 'double', input: String(i) })))
    expect(new Set(many.map((r) => r.executionId)).size).toBe(300)
    await e.idle()
    expect((await e.stats()).completed).toBe(301)
    const listed = await e.listExecutions({ status: 'completed' })
    expect(listed).toHaveLength(301)
  })

  test('work waiting in a reopened file starts as soon as its callable is registered, with nothing else to wake the engine', async () => {
    let e = await open()
    const started = nextEvent(e, 'execution.started')
    e.registerCallable('later', () => new Promise(() => {})) // runs until shutdown aborts it
    await e.submit({ tenantId: T, callableName: 'later', executionId: 'exec_plain' })
    await started
    await close(e, { timeoutMs: 0 }) // handed back: queued in the file
    e = await open()
    const again = nextEvent(e, 'execution.started')
    e.registerCallable('later', async () => 'ran')
    expect((await again).executionId).toBe('exec_plain')
    expect((await e.wait('exec_plain')).output).toBe('ran')
  })

  test('work done in setup and the reopened backlog (ready and delayed) are each counted once: idle() waits for all of it, then resolves', async () => {
    let e = await open()
    const started = []
    e.on('execution.started', (r) => started.push(r.executionId))
    e.registerCallable('job', () => new Promise(() => {})) // runs until shutdown hands it back
    for (let i = 0; i < 3; i++) await e.submit({ tenantId: T, callableName: 'job' })
    for (let i = 0; i < 2; i++) await e.submit({ tenantId: T, callableName: 'job', config: { mode: 'deferred', delayMs: 300 } })
    while (started.length < 3) await nextEvent(e, 'execution.started')
    await close(e, { timeoutMs: 0 })

    let ran = 0
    e = await open({}, undefined, async (engine) => {
      engine.registerCallable('job', async () => ++ran)
      // Awaiting lets claims run while setup goes on; its own work is counted by its submit.
      await engine.registerTrigger({ tenantId: T, type: 'manual', action: { callableName: 'job' } })
      await engine.submit({ tenantId: T, callableName: 'job' })
    })
    await e.idle()
    expect(ran).toBe(6)
    expect(await e.stats()).toMatchObject({ completed: 6, queued: 0, running: 0 })
  })

  test('the same executionId twice answers the stored execution, across a reopen too', async () => {
    let e = await open()
    e.registerCallable('job', async () => 'done')
    const first = await e.submit({ tenantId: T, callableName: 'job', executionId: 'exec_once' })
    await e.idle()
    await close(e)
    e = await open()
    e.registerCallable('job', async () => 'again')
    const again = await e.submit({ tenantId: T, callableName: 'job', executionId: 'exec_once' })
    expect(again).toMatchObject({ executionId: first.executionId, status: 'completed', output: 'done' })
    expect((await rejection(e.submit({ tenantId: 'tenant_b', callableName: 'job', executionId: 'exec_once' }))).code).toBe('ENACT_INVALID_EXECUTION')
  })

  test('cancel, listExecutions filters and events work over the file', async () => {
    const e = await open()
    const gate = deferred()
    e.registerCallable('wait', () => gate.promise)
    const queued = await e.submit({ tenantId: T, callableName: 'wait', config: { mode: 'deferred', delayMs: 60_000 } })
    expect(await e.cancel(queued.executionId)).toBe(true)
    expect(await e.cancel(queued.executionId)).toBe(false)
    expect((await e.getExecution(queued.executionId)).status).toBe('cancelled')
    expect(await e.listExecutions({ status: 'cancelled', tenantId: T })).toHaveLength(1)
    const completed = nextEvent(e, 'execution.completed')
    const run = await e.submit({ tenantId: T, callableName: 'wait' })
    gate.resolve('ok')
    expect((await completed).executionId).toBe(run.executionId)
    expect(await e.getExecution('exec_missing')).toBeNull()
    expect((await rejection(e.wait('exec_missing'))).code).toBe('ENACT_NOT_FOUND')
  })
})

describe('a manual clock over the file', () => {
  test('a delayed execution keeps its due time across a reopen; a per-minute cron fires each minute', async () => {
    const start = '2026-01-15T10:00:00Z'
    let e = await open({ clock: { manual: start } })
    const delayed = await e.submit({ tenantId: T, callableName: 'job', config: { mode: 'deferred', delayMs: 90_000 } }).catch((err) => err)
    // No callable yet: an unknown callable is refused at submit.
    expect(delayed.code).toBe('ENACT_UNKNOWN_CALLABLE')
    const ran = []
    e.registerCallable('job', async ({ input }) => (ran.push([input, e.now().toISOString()]), null))
    const d = await e.submit({ tenantId: T, callableName: 'job', input: 'late', config: { mode: 'deferred', delayMs: 90_000 } })
    const cron = await e.registerTrigger({ tenantId: T, type: 'schedule', condition: { cronExpression: '* * * * *' }, action: { callableName: 'job', input: 'tick' } })
    await e.advanceTime(60_000)
    expect(ran).toEqual([['tick', '2026-01-15T10:01:00.000Z']])
    await close(e)

    // Reopened at the same instant: the delayed one is still due at 10:01:30.
    e = await open({ clock: { manual: '2026-01-15T10:01:00Z' } })
    e.registerCallable('job', async ({ input }) => (ran.push([input, e.now().toISOString()]), null))
    await e.advanceTime(60_000)
    expect(ran.slice(1)).toEqual([
      ['late', '2026-01-15T10:01:30.000Z'],
      ['tick', '2026-01-15T10:02:00.000Z'],
    ])
    expect((await e.getExecution(d.executionId)).status).toBe('completed')
    expect((await e.getTrigger(cron.triggerId)).fireCount).toBe(2)
  })
})

describe('crash recovery', () => {
  /**
   * Runs __test__/fixtures/sqlite-hang.js on `file`: it submits one
   * execution whose callable never ends and reports when it started; the
   * process is then killed with SIGKILL.
   */
  async function killMidRun(file) {
    const child = fork(path.join(__dirname, 'fixtures', 'sqlite-hang.js'), [file], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] })
    const exited = new Promise((resolve) => child.once('exit', (code, signal) => resolve(signal ?? code)))
    const id = await new Promise((resolve, reject) => {
      child.once('message', (m) => resolve(m.started))
      child.once('exit', (code) => reject(new Error(`child exited (${code}) before its execution started`)))
    })
    child.kill('SIGKILL')
    expect(await exited).toBe('SIGKILL')
    return id
  }

  test('work running when the process was killed runs again (a stall); past maxStalls it ends failed, ENACT_STALLED', async () => {
    const file = path.join(dir, 'crash.db')
    const id = await killMidRun(file)
    let e = await open({}, file)
    expect(e.recovery).toEqual({ requeued: 1, failed: 0 })
    const gate = deferred()
    const started = nextEvent(e, 'execution.started')
    e.registerCallable('hang', () => gate.promise)
    expect((await started).executionId).toBe(id)
    // It is killed again, mid-run: two interruptions, maxStalls 1.
    await close(e, { timeoutMs: 0 }).catch(() => {})
    gate.resolve('late')
    const again = await killMidRunAgain(file, id)
    e = await open({ maxStalls: 1 }, file)
    expect(e.recovery).toEqual({ requeued: 0, failed: 1 })
    const rec = await e.getExecution(again)
    expect(rec.status).toBe('failed')
    expect(rec.error).toMatchObject({ code: 'ENACT_STALLED', message: expect.stringMatching(/interrupted/) })
  })

  /** The child reopens the file and runs the re-queued execution until killed. */
  async function killMidRunAgain(file, id) {
    const child = fork(path.join(__dirname, 'fixtures', 'sqlite-hang.js'), [file, '--resume'], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] })
    const exited = new Promise((resolve) => child.once('exit', (code, signal) => resolve(signal ?? code)))
    const started = await new Promise((resolve, reject) => {
      child.once('message', (m) => resolve(m.started))
      child.once('exit', (code) => reject(new Error(`child exited (${code}) before the execution started again`)))
    })
    expect(started).toBe(id)
    child.kill('SIGKILL')
    await exited
    return started
  }
})

describe('faults are ENACT_STORE errors naming the file', () => {
  test('a file another engine holds is refused until that engine shut down', async () => {
    const file = path.join(dir, 'held.db')
    const first = await open({}, file)
    const err = await rejection(BackgroundEngine.open({ store: { sqlite: file } }))
    expect(err.code).toBe('ENACT_STORE')
    expect(err.message).toMatch(/already open/)
    expect(err.message).toContain('held.db')
    await close(first)
    await open({}, file)
  })

  test('a file that is not a store, a place that cannot be written, a schema from a newer version', async () => {
    const junk = path.join(dir, 'junk.db')
    fs.writeFileSync(junk, 'this is not a database, just some text that is long enough to have a header '.repeat(20))
    const notDb = await rejection(BackgroundEngine.open({ store: { sqlite: junk } }))
    expect([notDb.code, notDb.message]).toEqual(['ENACT_STORE', expect.stringMatching(/junk\.db.*not a SQLite database/)])

    const aFile = path.join(dir, 'plain')
    fs.writeFileSync(aFile, '')
    const unwritable = await rejection(BackgroundEngine.open({ store: { sqlite: path.join(aFile, 'x.db') } }))
    expect([unwritable.code, unwritable.message]).toEqual(['ENACT_STORE', expect.stringContaining('x.db')])

    // A file from a newer version: its schema version (SQLite's
    // user_version, bytes 60-63 of the header) says 999.
    const newer = path.join(dir, 'newer.db')
    await close(await open({}, newer))
    const bytes = fs.readFileSync(newer)
    bytes.writeUInt32BE(999, 60)
    fs.writeFileSync(newer, bytes)
    const refused = await rejection(BackgroundEngine.open({ store: { sqlite: newer } }))
    expect(refused.code).toBe('ENACT_STORE')
    expect(refused.message).toMatch(/newer\.db/)
    expect(refused.message).toMatch(/999/)
  })

  test('bad store options are ENACT_INVALID_EXECUTION naming the field; new BackgroundEngine refuses a durable store', async () => {
    const bad = async (store, pattern) => {
      const err = await rejection(BackgroundEngine.open({ store }))
      expect([err.code, err.message]).toEqual(['ENACT_INVALID_EXECUTION', expect.stringMatching(pattern)])
    }
    await bad({ sqlite: '' }, /^store\.sqlite: expected a file path/)
    await bad({ sqlite: ':memory:' }, /^store\.sqlite: .*memory store/)
    await bad({ sqlite: 'x.db', synchronous: 'off' }, /^store\.synchronous: expected 'normal' or 'full'/)
    await bad({ sqlite: 'x.db', journal: 'wal' }, /^store\.journal: unknown option/)
    const maxStalls = await rejection(BackgroundEngine.open({ store: { sqlite: path.join(dir, 'm.db') }, maxStalls: -1 }))
    expect(maxStalls.message).toMatch(/^maxStalls: /)
    expect(() => new BackgroundEngine({ store: { sqlite: path.join(dir, 'n.db') } })).toThrow(/BackgroundEngine\.open/)
    // open() without a durable store is the memory store.
    const memory = await BackgroundEngine.open()
    expect(memory.recovery).toBeNull()
    await memory.shutdown()
  })
})

test('a script that awaits its work over SQLite stays alive until it is done, then exits on its own', async () => {
  // Nothing else holds the event loop: the engine's own calls in flight
  // (the end being written) and the wait keep it alive, and nothing after.
  const file = path.join(dir, 'script.db')
  const { code, out } = await runNode(`
    const { BackgroundEngine } = require('.')
    BackgroundEngine.open({ store: { sqlite: ${JSON.stringify(file)} } }, (e) => e.registerCallable('job', async (ctx) => 'done ' + ctx.input)).then(async (e) => {
      const queued = await e.submit({ tenantId: 't', callableName: 'job', input: 'a' })
      console.log((await e.wait(queued.executionId)).output)
      console.log((await e.submit({ tenantId: 't', callableName: 'job', input: 'b', config: { mode: 'silent' } })).output)
    })
  `)
  expect(out).toBe('done a\ndone b\n')
  expect(code).toBe(0)
})
