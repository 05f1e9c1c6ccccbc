// Observability through the package (issue 14), the same on every store:
// `ctx.progress` stored and emitted, `retry(id)` of failed, timed-out and
// cancelled executions, `stats()` per callable and tenant over the recent
// window, `metrics()` and its HTTP handler in the Prometheus text format,
// pages of `listExecutions` newest first, and OpenTelemetry attempt spans
// linked to the span that submitted or fired their execution — across a
// restart (SQLite) and across engines (PostgreSQL).
//
// The PostgreSQL part runs only with DATABASE_URL (and says loudly when it
// did not).
const fs = require('fs')
const os = require('os')
const path = require('path')
const { Client } = require('pg')
const api = require('@opentelemetry/api')
const { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor } = require('@opentelemetry/sdk-trace-base')
const { AsyncLocalStorageContextManager } = require('@opentelemetry/context-async-hooks')
const { BackgroundEngine } = require('..')
const { deferred, rejection, until, listen, request, runNode } = require('./helpers')

const URL = process.env.DATABASE_URL
if (!URL) {
  console.warn('!!! DATABASE_URL is not set: the PostgreSQL part of observability.test.js did NOT run. Set it, e.g. postgres://root@127.0.0.1:5432/test')
}

// One tracer provider for the file: spans land in `exporter`.
const exporter = new InMemorySpanExporter()
const provider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] })
api.context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable())
api.trace.setGlobalTracerProvider(provider)
const appTracer = api.trace.getTracer('app')

let admin
let dir
let n = 0
const opened = []
const schemas = []

beforeAll(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'enact-obs-'))
  if (URL) {
    admin = new Client({ connectionString: URL })
    await admin.connect()
  }
})
afterAll(async () => {
  fs.rmSync(dir, { recursive: true, force: true })
  if (admin) await admin.end()
})
beforeEach(() => exporter.reset())
afterEach(async () => {
  await Promise.all(opened.splice(0).map((e) => e.shutdown({ timeoutMs: 100 }).catch(() => {})))
  if (admin) for (const s of schemas.splice(0)) await admin.query(`DROP SCHEMA IF EXISTS ${s} CASCADE`)
})

/** Store makers: each test gets a fresh store; `same` reopens the last one. */
const STORES = [
  ['memory', () => ({})],
  ['sqlite', () => ({ store: { sqlite: path.join(dir, `obs-${n++}.db`) } })],
]
if (URL) {
  STORES.push([
    'postgres',
    () => {
      const schema = `jt_obs_${process.pid}_${n++}`
      schemas.push(schema)
      return { store: { postgres: URL, schema } }
    },
  ])
}

/** Opens an engine and shuts it down after the test. */
async function open(options, setup) {
  const e = options.store === undefined ? new BackgroundEngine(options) : await BackgroundEngine.open(options, setup)
  if (options.store === undefined && setup) await setup(e)
  opened.push(e)
  return e
}

async function close(e) {
  opened.splice(opened.indexOf(e), 1)
  await e.shutdown()
}

/**
 * Every line of a Prometheus text exposition (format 0.0.4) is a comment,
 * a HELP or TYPE line, or a sample whose name has a TYPE above it; label
 * values are escaped. Returns the samples as `name{labels} -> value`.
 */
function parseExposition(text) {
  const typed = new Map()
  const samples = new Map()
  const SAMPLE = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{((?:[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\[\\"n])*",?)*)\})? (-?[0-9.e+-]+|\+Inf|NaN)$/
  expect(text.endsWith('\n')).toBe(true)
  for (const line of text.slice(0, -1).split('\n')) {
    if (line.startsWith('# HELP ')) continue
    const type = /^# TYPE ([a-zA-Z_:][a-zA-Z0-9_:]*) (counter|gauge|histogram|summary|untyped)$/.exec(line)
    if (type) {
      expect(typed.has(type[1])).toBe(false)
      typed.set(type[1], type[2])
      continue
    }
    const m = SAMPLE.exec(line)
    if (m === null) throw new Error(`not a sample line: ${JSON.stringify(line)}`)
    const family = m[1].replace(/_(bucket|sum|count)$/, '')
    if (!typed.has(m[1]) && !typed.has(family)) throw new Error(`sample before its TYPE: ${line}`)
    samples.set(`${m[1]}{${m[3] ?? ''}}`, Number(m[4]))
  }
  return { typed, samples }
}

describe.each(STORES)('%s store', (kind, storeOptions) => {
  test('ctx.progress is stored on the record, emitted as execution.progress, and refused when not JSON', async () => {
    const hold = deferred()
    const reported = deferred()
    const e = await open({ ...storeOptions() }, (e) =>
      e.registerCallable('upload', async (ctx) => {
        await ctx.progress(10)
        await ctx.progress({ step: 'upload', pct: 60 })
        // A value that is not JSON throws at once (never an unhandled rejection).
        const thrown = (fn) => {
          try {
            fn()
          } catch (err) {
            return err
          }
        }
        const bad = [thrown(() => ctx.progress(10n)), thrown(() => ctx.progress(() => 1)), thrown(() => ctx.progress('x'.repeat(20_000)))]
        reported.resolve(bad)
        await hold.promise
        return 'done'
      }),
    )
    const events = []
    e.on('execution.progress', (p) => events.push(p))
    const { executionId } = await e.submit({ tenantId: 't', callableName: 'upload' })
    const [big, fn, long] = await reported.promise
    for (const err of [big, fn, long]) {
      expect(err.code).toBe('ENACT_INVALID_EXECUTION')
      expect(err.message).toMatch(/^progress: /)
    }
    expect(long.message).toMatch(/at most 16384 bytes/)
    expect((await e.getExecution(executionId)).progress).toEqual({ step: 'upload', pct: 60 })
    expect(events).toEqual([
      { executionId, tenantId: 't', callableName: 'upload', attempt: 1, progress: 10 },
      { executionId, tenantId: 't', callableName: 'upload', attempt: 1, progress: { step: 'upload', pct: 60 } },
    ])
    hold.resolve()
    const done = await e.wait(executionId)
    expect(done.status).toBe('completed')
    expect(done.progress).toEqual({ step: 'upload', pct: 60 })
  })

  test('retry re-queues failed, timed-out and cancelled executions; others are refused', async () => {
    const runs = new Map()
    const e = await open({ ...storeOptions() }, (e) => {
      e.registerCallable('flaky', async (ctx) => {
        const n = (runs.get(ctx.executionId) ?? 0) + 1
        runs.set(ctx.executionId, n)
        if (n === 1) throw new Error('first run fails')
        return `run ${n}`
      })
      e.registerCallable('fine', async () => 'fine')
      e.registerCallable('slow', async (ctx) => {
        const n = (runs.get(ctx.executionId) ?? 0) + 1
        runs.set(ctx.executionId, n)
        if (n === 1) await new Promise((resolve) => ctx.signal.addEventListener('abort', resolve))
        return 'fast now'
      })
    })
    const failed = await e.submit({ tenantId: 't', callableName: 'flaky', config: { mode: 'silent' } })
    expect(failed.status).toBe('failed')
    const timedOut = await e.submit({ tenantId: 't', callableName: 'slow', config: { mode: 'silent', timeoutMs: 50 } })
    expect(timedOut.status).toBe('timeout')
    const queued = await e.submit({ tenantId: 't', callableName: 'fine', config: { mode: 'deferred', delayMs: 3_600_000 } })
    expect(await e.cancel(queued.executionId)).toBe(true)

    for (const [rec, output, attempt] of [[failed, 'run 2', 2], [timedOut, 'fast now', 2], [queued, 'fine', 1]]) {
      const again = await e.retry(rec.executionId)
      expect(again).toMatchObject({ executionId: rec.executionId, status: 'queued' })
      expect(again.error).toBeUndefined()
      expect(again.completedAt).toBeUndefined()
      const done = await e.wait(rec.executionId)
      // The cancelled one was deferred for an hour: its retry waits for
      // idle, not for the hour.
      // Attempt numbers go on: the retried run is the next attempt.
      expect(done).toMatchObject({ status: 'completed', output, attempt })
    }
    const completed = await rejection(e.retry(failed.executionId))
    expect(completed.code).toBe('ENACT_INVALID_STATE')
    expect(completed.message).toBe(`executionId: "${failed.executionId}" is completed; only failed, timeout or cancelled executions can be retried`)
    expect((await rejection(e.retry('exec_missing'))).code).toBe('ENACT_NOT_FOUND')
    if (kind !== 'postgres') {
      // A fire of a callable nobody registered is written failed; retrying
      // it before registering the callable is refused, not queued forever.
      const ghost = await e.registerTrigger({ tenantId: 't', type: 'manual', action: { callableName: 'ghost' } })
      const fired = await e.fire(ghost.triggerId)
      expect((await e.getExecution(fired.executionId)).status).toBe('failed')
      const unknown = await rejection(e.retry(fired.executionId))
      expect(unknown.code).toBe('ENACT_UNKNOWN_CALLABLE')
      expect(unknown.message).toMatch(/^callableName: no callable registered as "ghost"/)
      expect((await e.getExecution(fired.executionId)).status).toBe('failed')
    }
    expect((await rejection(e.retry(42))).code).toBe('ENACT_INVALID_EXECUTION')
  })

  test('stats() gives each callable and tenant its waiting work and what the last minutes saw', async () => {
    const hold = deferred()
    const e = await open({ ...storeOptions(), concurrency: 2 }, (e) => {
      e.registerCallable('fast', async () => 'ok')
      e.registerCallable('boom', async () => {
        throw new Error('no')
      })
      e.registerCallable('hold', () => hold.promise)
    })
    for (let i = 0; i < 5; i++) await e.submit({ tenantId: 'acme', callableName: 'fast', config: { mode: 'silent' } })
    await e.submit({ tenantId: 'globex', callableName: 'boom', config: { mode: 'silent' } })
    const held = await Promise.all([1, 2, 3].map(() => e.submit({ tenantId: 'globex', callableName: 'hold' })))
    await e.submit({ tenantId: 'acme', callableName: 'fast', config: { mode: 'deferred', delayMs: 3_600_000 } })
    await until(async () => (await e.stats()).callables.hold?.running === 2)
    const s = await e.stats()
    expect(s.windowMs).toBe(300_000)
    expect(s.delayed).toBe(1)
    expect(s.ended).toEqual({ completed: 5, failed: 1, timeout: 0, cancelled: 0 })
    expect(s.callables.fast).toMatchObject({ queued: 0, delayed: 1, running: 0, completed: 5, failed: 0 })
    expect(s.callables.fast.durationMs.count).toBe(5)
    expect(s.callables.fast.durationMs.p50).toBeGreaterThanOrEqual(0)
    expect(s.callables.fast.durationMs.p99).toBeGreaterThanOrEqual(s.callables.fast.durationMs.p50)
    expect(s.callables.boom).toMatchObject({ failed: 1, completed: 0 })
    expect(s.callables.hold).toMatchObject({ queued: 1, running: 2, completed: 0, durationMs: null })
    expect(s.callables.hold.waitMs.count).toBe(2)
    expect(s.tenants.acme).toMatchObject({ completed: 5, delayed: 1 })
    expect(s.tenants.globex).toMatchObject({ failed: 1, queued: 1, running: 2 })
    hold.resolve('done')
    await Promise.all(held.map((h) => e.wait(h.executionId)))
  })

  test('metrics() is a well-formed Prometheus exposition of what the engine did and the store holds', async () => {
    const e = await open({ ...storeOptions() }, (e) => {
      e.registerCallable('say "hi"\\', async () => 'ok')
      e.registerCallable('boom', async () => {
        throw new Error('no')
      })
    })
    await e.registerTrigger({ tenantId: 't', name: 'manual', type: 'manual', condition: {}, action: { callableName: 'boom' } })
    const paused = await e.registerTrigger({ tenantId: 't', name: 'ev', type: 'event', condition: { eventType: 'x' }, action: { callableName: 'boom' } })
    await e.pauseTrigger(paused.triggerId)
    for (let i = 0; i < 3; i++) await e.submit({ tenantId: 't', callableName: 'say "hi"\\', config: { mode: 'silent' } })
    const fired = await e.fire((await e.listTriggers({ type: 'manual' }))[0].triggerId)
    await e.wait(fired.executionId)
    await e.submit({ tenantId: 't', callableName: 'boom', config: { mode: 'deferred', delayMs: 3_600_000 } })

    const text = await e.metrics()
    const { typed, samples } = parseExposition(text)
    expect(typed.get('enact_executions_total')).toBe('counter')
    expect(typed.get('enact_execution_duration_seconds')).toBe('histogram')
    expect(typed.get('enact_executions')).toBe('gauge')
    const say = 'callable="say \\"hi\\"\\\\"'
    expect(samples.get(`enact_executions_total{${say},status="completed"}`)).toBe(3)
    expect(samples.get('enact_executions_total{callable="boom",status="failed"}')).toBe(1)
    expect(samples.get(`enact_attempts_total{${say}}`)).toBe(3)
    expect(samples.get(`enact_execution_duration_seconds_count{${say}}`)).toBe(3)
    expect(samples.get(`enact_execution_duration_seconds_bucket{${say},le="+Inf"}`)).toBe(3)
    expect(samples.get('enact_trigger_fires_total{type="manual"}')).toBe(1)
    expect(samples.get('enact_executions{callable="boom",state="delayed"}')).toBe(1)
    expect(samples.get('enact_triggers{type="event",status="paused"}')).toBe(1)
    expect(samples.get('enact_triggers{type="manual",status="active"}')).toBe(1)
    expect(samples.has('enact_executions_total{callable="boom",tenant="t",status="failed"}')).toBe(false)

    // The HTTP handler answers a scrape.
    const { url } = await listen(e.metricsHandler())
    const res = await request(`${url}/metrics`, { method: 'GET' })
    expect(res.status).toBe(200)
    expect(res.headers['content-type']).toBe('text/plain; version=0.0.4; charset=utf-8')
    expect(parseExposition(res.text).samples.get('enact_executions_total{callable="boom",status="failed"}')).toBe(1)

    // Webhook answers are counted by status.
    const hooks = await listen(e.webhookHandler())
    expect((await request(`${hooks.url}/webhooks/trigger_unknown`, { body: '{}' })).status).toBe(404)
    expect((await request(`${hooks.url}/webhooks/trigger_unknown`, { method: 'GET' })).status).toBe(405)
    await until(async () => /enact_webhook_requests_total\{code="405"\} 1\n/.test(await e.metrics()))
    expect(await e.metrics()).toMatch(/enact_webhook_requests_total\{code="404"\} 1\n/)
  })

  test('listExecutions pages newest first with a cursor', async () => {
    const e = await open({ ...storeOptions() }, (e) => e.registerCallable('later', async () => null))
    const ids = []
    for (let i = 0; i < 5; i++) ids.push((await e.submit({ tenantId: 't', callableName: 'later', config: { mode: 'deferred', delayMs: 3_600_000 } })).executionId)
    const first = await e.listExecutions({ order: 'newest', limit: 2 })
    expect(first.map((r) => r.executionId)).toEqual([ids[4], ids[3]])
    const second = await e.listExecutions({ order: 'newest', limit: 2, after: ids[3] })
    expect(second.map((r) => r.executionId)).toEqual([ids[2], ids[1]])
    const oldest = await e.listExecutions({ after: ids[2] })
    expect(oldest.map((r) => r.executionId)).toEqual([ids[3], ids[4]])
    expect((await rejection(e.listExecutions({ order: 'sideways' }))).message).toBe('filter.order: expected one of oldest, newest, got "sideways"')
  }, 20_000)

  test('each attempt runs in a span that is a child of, and linked to, the span that submitted or fired it', async () => {
    const e = await open({ ...storeOptions(), tracing: true }, (e) => {
      // Throws before returning a promise: its span still ends, as ERROR.
      e.registerCallable('sync-throw', () => {
        throw new Error('at once')
      })
      e.registerCallable('traced', async (ctx) => {
        // The callable's own spans are children of the attempt's.
        await appTracer.startActiveSpan('inside', async (span) => {
          await new Promise((r) => setTimeout(r, 1))
          span.end()
        })
        if (ctx.input === 'fail') throw new Error('traced failure')
        return 'ok'
      })
    })
    await e.registerTrigger({ tenantId: 't', name: 'on order', type: 'event', condition: { eventType: 'order.created' }, action: { callableName: 'traced' } })
    let submitSpan
    let emitSpan
    const [ok, failed] = await appTracer.startActiveSpan('checkout', async (span) => {
      submitSpan = span.spanContext()
      const out = await Promise.all([
        e.submit({ tenantId: 't', callableName: 'traced', config: { mode: 'silent' } }),
        e.submit({ tenantId: 't', callableName: 'traced', input: 'fail', config: { mode: 'silent' } }),
      ])
      span.end()
      return out
    })
    expect(ok.traceContext.traceparent).toBe(`00-${submitSpan.traceId}-${submitSpan.spanId}-01`)
    const [fired] = await appTracer.startActiveSpan('emit', async (span) => {
      emitSpan = span.spanContext()
      const out = await e.emit({ type: 'order.created', tenantId: 't', data: {} })
      span.end()
      return out
    })
    await e.wait(fired.executionId)
    await until(() => exporter.getFinishedSpans().filter((s) => s.name === 'inside').length === 3)

    const spans = exporter.getFinishedSpans()
    const attempts = spans.filter((s) => s.name === 'enact.execute traced')
    const parentOf = (s) => (s.parentSpanContext ?? { spanId: s.parentSpanId }).spanId
    const of = (id) => attempts.find((s) => s.attributes['enact.execution_id'] === id)
    // Status: unset (0) on success, ERROR (2) on failure.
    for (const [id, parent, status] of [[ok.executionId, submitSpan, 0], [failed.executionId, submitSpan, 2], [fired.executionId, emitSpan, 0]]) {
      const span = of(id)
      expect(span).toBeDefined()
      expect(span.spanContext().traceId).toBe(parent.traceId)
      expect(parentOf(span)).toBe(parent.spanId)
      expect(span.links.map((l) => l.context.spanId)).toEqual([parent.spanId])
      expect(span.kind).toBe(api.SpanKind.CONSUMER)
      expect(span.status.code).toBe(status)
      expect(span.attributes).toMatchObject({ 'enact.tenant_id': 't', 'enact.callable': 'traced', 'enact.attempt': 1 })
    }
    expect(of(failed.executionId).status.message).toBe('callable threw: traced failure')
    const sync = await e.submit({ tenantId: 't', callableName: 'sync-throw', config: { mode: 'silent' } })
    expect(sync.status).toBe('failed')
    await until(() => exporter.getFinishedSpans().some((s) => s.name === 'enact.execute sync-throw'))
    expect(exporter.getFinishedSpans().find((s) => s.name === 'enact.execute sync-throw').status).toEqual({ code: 2, message: 'callable threw: at once' })
    expect(of(fired.executionId).attributes['enact.trigger_id']).toBe(fired.triggerId)
    for (const inside of spans.filter((s) => s.name === 'inside')) {
      expect(attempts.map((a) => a.spanContext().spanId)).toContain(parentOf(inside))
    }
  })
})

test('tracing: true without @opentelemetry/api installed is refused with the install command; bad options name the field', async () => {
  // A process where the API cannot be resolved (the application did not install it).
  const { code, out } = await runNode(`
    const Module = require('module')
    const resolve = Module._resolveFilename
    Module._resolveFilename = function (request, ...rest) {
      if (request === '@opentelemetry/api') throw Object.assign(new Error('Cannot find module'), { code: 'MODULE_NOT_FOUND' })
      return resolve.call(this, request, ...rest)
    }
    const { BackgroundEngine } = require('.')
    try { new BackgroundEngine({ tracing: true }); console.log('opened') } catch (err) { console.log(err.code + ' ' + err.message) }
    new BackgroundEngine({ tracing: false }).shutdown().then(() => console.log('untraced ok'))
  `)
  expect(code).toBe(0)
  expect(out).toMatch(/^ENACT_INVALID_EXECUTION tracing: `@opentelemetry\/api` is not installed; install it \(`npm install @opentelemetry\/api`\)/)
  expect(out).toMatch(/untraced ok/)
  expect(() => new BackgroundEngine({ tracing: 'yes' })).toThrow('tracing: expected a boolean, got "yes"')
  expect(() => new BackgroundEngine({ metrics: { tenant: true } })).toThrow('metrics.tenant: unknown field (expected tenantLabels)')
})

test('a trace context survives a restart (SQLite) and the attempt on the reopened engine is its child', async () => {
  const file = path.join(dir, `restart-${n++}.db`)
  const started = deferred()
  // The first engine starts it and is shut down while it runs: it goes
  // back to the queue, and the next engine to open the file runs it.
  const first = await open({ store: { sqlite: file }, tracing: true }, (e) =>
    e.registerCallable('later', (ctx) => {
      started.resolve()
      return new Promise((resolve) => ctx.signal.addEventListener('abort', resolve))
    }),
  )
  let parent
  const rec = await appTracer.startActiveSpan('producer', async (span) => {
    parent = span.spanContext()
    const r = await first.submit({ tenantId: 't', callableName: 'later' })
    span.end()
    return r
  })
  await started.promise
  opened.splice(opened.indexOf(first), 1)
  await first.shutdown({ timeoutMs: 10 })
  const second = await open({ store: { sqlite: file }, tracing: true }, (e) => e.registerCallable('later', async () => 'ran'))
  expect((await second.wait(rec.executionId)).status).toBe('completed')
  const ran = () => exporter.getFinishedSpans().filter((s) => s.name === 'enact.execute later')
  await until(() => ran().length === 2)
  expect(ran().map((s) => [s.status.code, s.status.message])).toEqual([[2, 'attempt aborted: shutdown'], [0, undefined]])
  const span = ran()[1]
  expect(span.spanContext().traceId).toBe(parent.traceId)
  expect((span.parentSpanContext ?? { spanId: span.parentSpanId }).spanId).toBe(parent.spanId)
})

const pg = URL ? test : test.skip
pg('over PostgreSQL the span crosses engines: A submits, B runs, and metrics gauges show the cluster', async () => {
  const schema = `jt_obs_${process.pid}_${n++}`
  schemas.push(schema)
  const store = { postgres: URL, schema }
  const producer = await open({ store, tracing: true })
  const hold = deferred()
  const worker = await open({ store, tracing: true, concurrency: 1 }, (e) => e.registerCallable('remote', () => hold.promise))
  let parent
  const recs = await appTracer.startActiveSpan('producer', async (span) => {
    parent = span.spanContext()
    const out = await Promise.all([1, 2, 3].map(() => producer.submit({ tenantId: 't', callableName: 'remote' })))
    span.end()
    return out
  })
  // The producer's gauges show the worker's running and queued work.
  await until(async () => /enact_executions\{callable="remote",state="running"\} 1\n/.test(await producer.metrics()))
  expect(await producer.metrics()).toMatch(/enact_executions\{callable="remote",state="queued"\} 2\n/)
  expect((await producer.stats()).callables.remote).toMatchObject({ queued: 2, running: 1 })
  hold.resolve('done')
  await Promise.all(recs.map((r) => producer.wait(r.executionId)))
  await until(() => exporter.getFinishedSpans().filter((s) => s.name === 'enact.execute remote').length === 3)
  for (const span of exporter.getFinishedSpans().filter((s) => s.name === 'enact.execute remote')) {
    expect(span.spanContext().traceId).toBe(parent.traceId)
    expect((span.parentSpanContext ?? { spanId: span.parentSpanId }).spanId).toBe(parent.spanId)
  }
  // The worker counted the runs; the producer counted none.
  expect(await worker.metrics()).toMatch(/enact_executions_total\{callable="remote",status="completed"\} 3\n/)
  expect(await producer.metrics()).not.toMatch(/enact_executions_total\{callable="remote"/)
}, 30_000)
