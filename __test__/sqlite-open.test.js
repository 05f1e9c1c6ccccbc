// BackgroundEngine.open over a SQLite file, in one process: what a
// reopened engine does before and right after its callables are
// registered. (Crashes for real: sqlite-kill.test.js.)
const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')
const { BackgroundEngine } = require('..')

const dirs = []
const engines = []
function tempDb() {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'enact-open-'))
  dirs.push(dir)
  return path.join(dir, 'open.db')
}
async function open(options, setup) {
  const e = await BackgroundEngine.open(options, setup)
  engines.push(e)
  return e
}
afterEach(async () => {
  await Promise.all(engines.splice(0).map((e) => e.shutdown({ timeoutMs: 100 })))
})
afterAll(() => {
  for (const d of dirs) fs.rmSync(d, { recursive: true, force: true })
})

/** A file holding one queued execution of callable `job` (it was running when its engine shut down). */
async function fileWithBacklog() {
  const file = tempDb()
  const first = await BackgroundEngine.open({ store: { sqlite: file } })
  let started
  const running = new Promise((resolve) => (started = resolve))
  first.registerCallable('job', () => {
    started()
    return new Promise(() => {})
  })
  const rec = await first.submit({ tenantId: 't', callableName: 'job', executionId: 'exec_backlog', input: 'x' })
  await running
  await first.shutdown({ timeoutMs: 0 }) // aborted: back to queued
  return { file, id: rec.executionId }
}

test('a reopened backlog starts once its callable is registered after open() resolved', async () => {
  const { file, id } = await fileWithBacklog()
  const e = await open({ store: { sqlite: file } })
  // open() claimed for no registered callable; once its claims settled
  // (the pause only lets them: were it too short, the test would pass
  // without showing anything, never fail), this registration alone must
  // start the work.
  await new Promise((resolve) => setTimeout(resolve, 200))
  // Nothing else is called until it ran (another call would wake the
  // engine and hide a missing wake-up); 5 s means it never will.
  let ran
  const running = new Promise((resolve) => (ran = resolve))
  e.registerCallable('job', async (ctx) => {
    ran(ctx.executionId)
    return `ran ${ctx.input}`
  })
  let guard
  const stuck = new Promise((resolve) => (guard = setTimeout(resolve, 5_000, 'never started')))
  expect(await Promise.race([running, stuck])).toBe(id)
  clearTimeout(guard)
  expect(await e.wait(id)).toMatchObject({ status: 'completed', output: 'ran x' })
})

test('open(options, setup): callables registered in setup run the tick a schedule missed while down, fired as the store starts', async () => {
  const file = tempDb()
  const first = await BackgroundEngine.open({ store: { sqlite: file } }, (e) => e.registerCallable('tick', async () => 'ticked'))
  await first.registerTrigger({ triggerId: 'trg_tick', tenantId: 't', type: 'schedule', condition: { cronExpression: '* * * * * *' }, action: { callableName: 'tick' } })
  await first.shutdown()
  // Down for more than a tick, so one is due when the file opens again.
  await new Promise((resolve) => setTimeout(resolve, 1_200))
  const fired = []
  const e = await open({ store: { sqlite: file } }, (engine) => {
    engine.registerCallable('tick', async () => 'ticked')
    engine.on('trigger.fired', (ev) => fired.push(ev))
  })
  await e.pauseTrigger('trg_tick')
  await e.idle()
  const runs = (await e.listExecutions({})).filter((x) => x.triggerId === 'trg_tick')
  expect(runs.length).toBeGreaterThanOrEqual(1)
  for (const run of runs) expect(run).toMatchObject({ status: 'completed', output: 'ticked' })
  expect(fired.length).toBeGreaterThanOrEqual(1) // the fire at start reached a listener added in setup
})

test('open(options, setup): a setup that throws rejects open and releases the file; a setup that is not a function is refused', async () => {
  const file = tempDb()
  const boom = new Error('setup failed')
  await expect(BackgroundEngine.open({ store: { sqlite: file } }, () => { throw boom })).rejects.toBe(boom)
  await expect(BackgroundEngine.open({ store: { sqlite: file } }, async () => Promise.reject(boom))).rejects.toBe(boom)
  await expect(BackgroundEngine.open({ store: { sqlite: file } }, /** @type {any} */ ('no'))).rejects.toMatchObject({ code: 'ENACT_INVALID_EXECUTION', message: 'setup: expected a function, got a string' })
  const e = await open({ store: { sqlite: file } }) // not held by the engines that failed
  expect(e.recovery).toEqual({ requeued: 0, failed: 0 })
})
