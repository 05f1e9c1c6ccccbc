// The PostgreSQL store through the package (issue 13): several engines in
// this process over one database and schema act as one engine — routing to
// whichever engine serves a callable, waiters settled wherever the work
// ran, triggers and gates shared, each schedule tick once, cluster-wide
// tenant limits, shutdown handing work back at once, killed connections
// survived — and the faults `open` refuses. Each test has a schema of its
// own on DATABASE_URL, dropped after it. The three-process SIGKILL test is
// postgres-cluster.test.js.
//
// Without DATABASE_URL these tests do not run, and say so loudly; with it
// set but unreachable they fail.
const { Client } = require('pg')
const { BackgroundEngine } = require('..')
const { deferred, rejection, until, runNode, SECRET, signed } = require('./helpers')

const URL = process.env.DATABASE_URL
const T = 'tenant_a'
const pg = URL ? describe : describe.skip
if (!URL) {
  console.warn('!!! DATABASE_URL is not set: the PostgreSQL tests (postgres.test.js) did NOT run. Set it, e.g. postgres://root@127.0.0.1:5432/test')
}

/** A connection of the test's own, to look at and drop schemas. */
let admin
let schema
let n = 0
const opened = []

beforeAll(async () => {
  if (!URL) return
  admin = new Client({ connectionString: URL })
  await admin.connect()
})
afterAll(async () => {
  if (admin) await admin.end()
})
beforeEach(() => {
  schema = `jt_${process.pid}_${n++}`
})
afterEach(async () => {
  await Promise.all(opened.splice(0).map((e) => e.shutdown({ timeoutMs: 100 }).catch(() => {})))
  if (admin) await admin.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`)
})

/** An engine over this test's schema, shut down after the test. */
async function open(options = {}, setup = undefined) {
  // Connections named after the test's schema: a test kills only its own.
  const url = `${URL}${URL.includes('?') ? '&' : '?'}application_name=${schema}`
  const e = await BackgroundEngine.open({ ...options, store: { postgres: url, schema, ...options.store } }, setup)
  opened.push(e)
  return e
}

/** Shuts `e` down and forgets it. */
async function close(e, options) {
  opened.splice(opened.indexOf(e), 1)
  await e.shutdown(options)
}



pg('opening', () => {
  test('engines opened together migrate once; a schema newer than the package is refused, naming both versions', async () => {
    const engines = await Promise.all([1, 2, 3, 4, 5].map(() => open()))
    const { rows } = await admin.query(`SELECT key, version FROM ${schema}.meta`)
    expect(rows).toEqual([{ key: 'schema', version: 2 }])
    await Promise.all(engines.map((e) => close(e)))
    await admin.query(`UPDATE ${schema}.meta SET version = 99`)
    const err = await rejection(open())
    expect(err.code).toBe('ENACT_STORE')
    expect(err.message).toMatch(/version 99.*up to 2/)
  })

  test('a schema at version 1 migrates to version 2 and keeps its rows (progress and the trigger filter need the new columns)', async () => {
    const e = await open({}, (e) => e.registerCallable('work', async (ctx) => {
      await ctx.progress(42)
      return 'ok'
    }))
    const before = await e.submit({ tenantId: T, callableName: 'work', config: { mode: 'deferred', delayMs: 3_600_000 } })
    // What version 1 had: no progress column.
    const trigger = await e.registerTrigger({ tenantId: T, type: 'manual', action: { callableName: 'work' } })
    const fired = await e.fire(trigger.triggerId)
    await e.wait(fired.executionId)
    await close(e)
    await admin.query(`ALTER TABLE ${schema}.executions DROP COLUMN progress, DROP COLUMN trigger_id; UPDATE ${schema}.meta SET version = 1`)
    const again = await open({}, (e) => e.registerCallable('work', async (ctx) => {
      await ctx.progress(42)
      return 'ok'
    }))
    const { rows } = await admin.query(`SELECT version FROM ${schema}.meta`)
    expect(rows).toEqual([{ version: 2 }])
    expect((await again.getExecution(before.executionId)).status).toBe('queued')
    // The trigger of a version-1 row is read from its record.
    expect((await again.listExecutions({ triggerId: trigger.triggerId })).map((r) => r.executionId)).toEqual([fired.executionId])
    const done = await again.submit({ tenantId: T, callableName: 'work', config: { mode: 'silent' } })
    expect(done).toMatchObject({ status: 'completed', progress: 42 })
  })

  test('a schema holding tables of something else is refused', async () => {
    await admin.query(`CREATE SCHEMA ${schema}; CREATE TABLE ${schema}.jobs (id int)`)
    const err = await rejection(open())
    expect(err.code).toBe('ENACT_STORE')
    expect(err.message).toMatch(/not enact-background's/)
  })

  test('an unreachable database is ENACT_STORE, within the bounded connect timeout', async () => {
    const t0 = Date.now()
    const err = await rejection(BackgroundEngine.open({ store: { postgres: 'postgres://root@127.0.0.1:1/test', schema } }))
    expect(err.code).toBe('ENACT_STORE')
    expect(err.message).toMatch(/127\.0\.0\.1:1\/test/)
    expect(err.message).not.toMatch(/password/)
    expect(Date.now() - t0).toBeLessThan(40_000)
  }, 45_000)

  test('bad store options name the field', async () => {
    const bad = async (store) => rejection(BackgroundEngine.open({ store }))
    expect(await bad({ postgres: '' })).toMatchObject({ code: 'ENACT_INVALID_EXECUTION', message: expect.stringMatching(/^store\.postgres: /) })
    expect(await bad({ postgres: URL, schema: 'Robert"; DROP' })).toMatchObject({ code: 'ENACT_INVALID_EXECUTION', message: expect.stringMatching(/^store\.schema: /) })
    expect(await bad({ postgres: URL, pool: 3 })).toMatchObject({ code: 'ENACT_INVALID_EXECUTION', message: expect.stringMatching(/^store\.pool: unknown/) })
    expect(await bad({ postgres: 'not a url at all ===' })).toMatchObject({ code: 'ENACT_STORE', message: expect.stringMatching(/store\.postgres/) })
    expect(() => new BackgroundEngine({ store: { postgres: URL } })).toThrow(/BackgroundEngine\.open/)
    expect(await rejection(BackgroundEngine.open({ store: { postgres: URL, schema }, leaseMs: 5 }))).toMatchObject({ message: expect.stringMatching(/^leaseMs: /) })
  })
})

pg('one engine of many', () => {
  test('a producer submits for a callable another engine serves; silent submits, wait, get and stats answer for the cluster', async () => {
    const worker = await open({}, (e) => e.registerCallable('double', async (ctx) => String(Number(ctx.input) * 2)))
    const producer = await open()
    const done = await producer.submit({ tenantId: T, callableName: 'double', input: '21', config: { mode: 'silent' } })
    expect(done).toMatchObject({ status: 'completed', output: '42' })
    const queued = await producer.submit({ tenantId: T, callableName: 'double', input: '5' })
    const waited = await producer.wait(queued.executionId)
    expect(waited).toMatchObject({ status: 'completed', output: '10' })
    expect(await producer.getExecution(queued.executionId)).toMatchObject({ status: 'completed', output: '10' })
    // A third engine that never saw it waits for it too.
    const third = await open()
    expect(await third.wait(queued.executionId)).toMatchObject({ output: '10' })
    expect(await third.stats()).toMatchObject({ completed: 2, queued: 0, running: 0 })
    expect((await worker.listExecutions({ callableName: 'double' })).map((r) => r.output).sort()).toEqual(['10', '42'])
    const unknown = await rejection(producer.submit({ tenantId: T, callableName: 'nobody' }))
    expect(unknown.code).toBe('ENACT_UNKNOWN_CALLABLE')
    expect(unknown.message).toMatch(/no live engine serves/)
  })

  test('a trigger fired on an engine that does not serve its callable queues the work for one that does', async () => {
    await open({}, (e) => e.registerCallable('job', async (ctx) => `ran ${ctx.input}`))
    const producer = await open()
    const t = await producer.registerTrigger({ tenantId: T, name: 'm', type: 'manual', action: { callableName: 'job', input: 'fired' } })
    const fired = await producer.fire(t.triggerId)
    expect(await producer.wait(fired.executionId)).toMatchObject({ status: 'completed', output: 'ran fired' })
  })

  test('names the database cannot store are refused alone, naming the field', async () => {
    await open({}, (e) => e.registerCallable('job', async () => 'ok'))
    const producer = await open()
    const [bad, good] = await Promise.allSettled([
      producer.submit({ tenantId: 'a\u0000b', callableName: 'job' }),
      producer.submit({ tenantId: T, callableName: 'job', config: { mode: 'silent' } }),
    ])
    expect(bad.reason).toMatchObject({ code: 'ENACT_INVALID_EXECUTION', message: expect.stringMatching(/^tenantId: must not contain a NUL/) })
    expect(good.value).toMatchObject({ status: 'completed' })
    expect((await rejection(producer.submit({ tenantId: 'x'.repeat(300), callableName: 'job' }))).message).toMatch(/^tenantId: longer than 255 bytes/)
  })

  test('cancel on another engine aborts the running callable (at its next heartbeat) and settles its waiters', async () => {
    const started = deferred()
    const aborted = deferred()
    const a = await open({ leaseMs: 900 }, (e) =>
      e.registerCallable('slow', (ctx) => {
        started.resolve()
        ctx.signal.addEventListener('abort', () => aborted.resolve(ctx.signal.reason))
        return new Promise(() => {})
      }),
    )
    const b = await open()
    const { executionId } = await b.submit({ tenantId: T, callableName: 'slow' })
    const waiting = a.wait(executionId)
    await started.promise
    expect(await b.cancel(executionId)).toBe(true)
    expect((await aborted.promise).code).toBe('ENACT_CANCELLED')
    expect(await waiting).toMatchObject({ status: 'cancelled' })
    expect((await a.stats()).inFlight).toBe(0)
  })

  test('a producer-only script that awaits work run by another engine stays alive until the answer, then exits after shutdown', async () => {
    await open({}, (e) => e.registerCallable('double', async (ctx) => String(Number(ctx.input) * 2)))
    const url = `${URL}${URL.includes('?') ? '&' : '?'}application_name=${schema}`
    const { code, out } = await runNode(`
      const { BackgroundEngine } = require('.')
      BackgroundEngine.open({ store: { postgres: ${JSON.stringify(url)}, schema: ${JSON.stringify(schema)} } }).then(async (p) => {
        const done = await p.submit({ tenantId: 't', callableName: 'double', input: '21', config: { mode: 'silent' } })
        console.log(done.output)
        await p.shutdown()
      })
    `)
    expect([out, code]).toEqual(['42\n', 0])
  })

  test('a callable is no longer served once its engine shut down', async () => {
    const worker = await open({}, (e) => e.registerCallable('job', async () => 'ok'))
    const producer = await open()
    await producer.submit({ tenantId: T, callableName: 'job', config: { mode: 'silent' } })
    await close(worker)
    expect((await rejection(producer.submit({ tenantId: T, callableName: 'job' }))).code).toBe('ENACT_UNKNOWN_CALLABLE')
  })

  test('shutdown hands running work back at once: another engine runs it without waiting for the lease', async () => {
    const started = deferred()
    const a = await open({ leaseMs: 600_000 }, (e) =>
      e.registerCallable('slow', (ctx) => {
        started.resolve()
        return new Promise((resolve) => ctx.signal.addEventListener('abort', () => resolve('aborted')))
      }),
    )
    const { executionId } = await a.submit({ tenantId: T, callableName: 'slow' })
    await started.promise
    const ranOnB = deferred()
    const b = await open({ leaseMs: 600_000 }, (e) => e.registerCallable('slow', async (ctx) => (ranOnB.resolve(ctx.attempt), 'done on b')))
    // Running work waits for the shutdown's timeoutMs, then is aborted and
    // handed back, and B runs it at once (the lease is ten minutes).
    await close(a, { timeoutMs: 50 })
    expect(await ranOnB.promise).toBe(1) // the handed-back attempt did not count
    expect(await b.wait(executionId)).toMatchObject({ status: 'completed', output: 'done on b' })
  })
})

pg('triggers are cluster state', () => {
  test('a trigger registered on A fires for events emitted on B; pausing it on A stops it on B', async () => {
    const ran = []
    const a = await open({}, (e) => e.registerCallable('job', async (ctx) => void ran.push(ctx.input)))
    const b = await open()
    const t = await a.registerTrigger({ tenantId: T, name: 'on-order', type: 'event', condition: { eventType: 'order.created' }, action: { callableName: 'job', input: 'from-b' } })
    // B learns of it by notification (polling each second is the fallback).
    const fired = await until(async () => (await b.emit({ tenantId: T, type: 'order.created', data: {} }))[0], 5_000, 'B to see the trigger')
    expect(fired.triggerId).toBe(t.triggerId)
    await a.pauseTrigger(t.triggerId)
    await until(async () => (await b.emit({ tenantId: T, type: 'order.created', data: {} })).length === 0, 5_000, 'B to see the pause')
    expect((await b.getTrigger(t.triggerId)).status).toBe('paused')
  })

  test('a webhook message accepted by A is refused as a replay by B', async () => {
    const a = await open({}, (e) => e.registerCallable('job', async () => 'ok'))
    const b = await open()
    // B has not seen the trigger yet when the replay comes: it reads the
    // store's changes for an id it does not know.
    const hook = await a.registerTrigger({ tenantId: T, name: 'hook', type: 'webhook', webhookSecret: SECRET, action: { callableName: 'job' } })
    const delivery = signed('{"n":1}', 'msg_shared_1')
    expect(await a.webhook(hook.triggerId, delivery)).toMatchObject({ triggerId: hook.triggerId })
    const replay = await rejection(b.webhook(hook.triggerId, delivery))
    expect([replay.code, replay.message]).toEqual(['ENACT_WEBHOOK_SIGNATURE', expect.stringMatching(/replay/i)])
    expect((await b.getTrigger(hook.triggerId)).fireCount).toBe(1)
  })

  test('maxFires: 1 under 1,000 concurrent emits spread over three engines fires once', async () => {
    let runs = 0
    const setup = (e) => e.registerCallable('job', async () => void runs++)
    const first = await open({}, setup)
    const t = await first.registerTrigger({ tenantId: T, name: 'once', type: 'event', maxFires: 1, condition: { eventType: 'hit' }, action: { callableName: 'job' } })
    // The others open after it: each loads it as it starts.
    const engines = [first, ...(await Promise.all([1, 2].map(() => open({}, setup))))]
    const answers = await Promise.all(Array.from({ length: 1000 }, (_, i) => engines[i % 3].emit({ tenantId: T, type: 'hit', data: { i } })))
    expect(answers.flat()).toHaveLength(1)
    expect(await engines[1].getTrigger(t.triggerId)).toMatchObject({ fireCount: 1, status: 'fired' })
    await until(async () => (await engines[2].stats()).completed === 1)
    expect(runs).toBe(1)
  })

  test('a per-second schedule over three engines fires each tick once: 10 ticks, 10 fires, distinct scheduledAt', async () => {
    const start = '2026-01-15T10:00:00.000Z'
    const ticks = []
    const setup = (e) => e.registerCallable('tick', async (ctx) => void ticks.push(ctx.triggerSource.scheduledAt))
    const a = await open({ clock: { manual: start } }, setup)
    await a.registerTrigger({ tenantId: T, name: 'every-second', type: 'schedule', condition: { cronExpression: '* * * * * *' }, action: { callableName: 'tick' } })
    const b = await open({ clock: { manual: start } }, setup)
    const c = await open({ clock: { manual: start } }, setup)
    for (let s = 0; s < 10; s++) {
      await Promise.all([a, b, c].map((e) => e.advanceTime(1000)))
    }
    await until(async () => (await a.stats()).completed === 10 && ticks.length === 10, 10_000, '10 ticks to run')
    expect(new Set(ticks).size).toBe(10)
    expect(ticks.sort()).toEqual(Array.from({ length: 10 }, (_, i) => new Date(Date.parse(start) + (i + 1) * 1000).toISOString()))
    const fires = await a.listExecutions({ callableName: 'tick' })
    expect(fires).toHaveLength(10)
  })
})

pg('limits hold cluster-wide', () => {
  test('tenantConcurrency: 2 across three engines never has 3 running, by the callables and by the database', async () => {
    let running = 0
    let most = 0
    const release = []
    const job = () =>
      new Promise((resolve) => {
        running++
        most = Math.max(most, running)
        release.push(() => {
          running--
          resolve('ok')
        })
      })
    const engines = await Promise.all([0, 1, 2].map(() => open({ tenantConcurrency: 2, concurrency: 8 }, (e) => e.registerCallable('job', job))))
    const producer = await open()
    await Promise.all(Array.from({ length: 24 }, () => producer.submit({ tenantId: T, callableName: 'job' })))
    let dbMost = 0
    let finished = 0
    while (finished < 24) {
      await until(() => release.length > 0, 10_000, 'a job to start')
      const { rows } = await admin.query(`SELECT count(*)::int AS n FROM ${schema}.executions WHERE status = 1 AND tenant = $1`, [T])
      dbMost = Math.max(dbMost, rows[0].n)
      release.shift()()
      finished++
    }
    await until(async () => (await producer.stats()).completed === 24)
    expect(most).toBe(2)
    expect(dbMost).toBeLessThanOrEqual(2)
    expect(engines).toHaveLength(3)
  })
})

pg('faults', () => {
  test('connections killed mid-run (pg_terminate_backend): the engines reconnect, nothing acknowledged is lost', async () => {
    const ran = new Map()
    const w = await open({ concurrency: 8 }, (e) =>
      e.registerCallable('job', async (ctx) => {
        ran.set(ctx.input, (ran.get(ctx.input) || 0) + 1)
        return ctx.input
      }),
    )
    const producer = await open()
    const first = await Promise.all(Array.from({ length: 100 }, (_, i) => producer.submit({ tenantId: T, callableName: 'job', input: `a${i}` })))
    const kill = await admin.query('SELECT count(pg_terminate_backend(pid))::int AS n FROM pg_stat_activity WHERE application_name = $1', [schema])
    expect(kill.rows[0].n).toBeGreaterThan(0)
    // Calls after the kill go through on new connections.
    const second = await Promise.all(Array.from({ length: 100 }, (_, i) => producer.submit({ tenantId: T, callableName: 'job', input: `b${i}` })))
    const all = [...first, ...second]
    await until(async () => (await producer.stats()).completed === 200, 20_000, 'all 200 to complete')
    for (const { executionId } of all) expect((await producer.getExecution(executionId)).status).toBe('completed')
    // A silent submit after the kill is answered by the re-established listener.
    expect(await producer.submit({ tenantId: T, callableName: 'job', input: 'last', config: { mode: 'silent' } })).toMatchObject({ output: 'last' })
    expect(w).toBeDefined()
  }, 40_000)
})
