'use strict'
// Issue 14: what observability costs.
//
// Throughput parts — the executor throughput benchmark (200,000
// fire-and-forget no-op executions, concurrency 64, memory store) with:
//   metrics-off:       `metrics: false`
//   metrics-on:        the default (metrics counted)
//   metrics-tracing:   metrics, and `tracing: true` with OpenTelemetry's
//                      API and no SDK (its no-op tracer: what an
//                      application that installed the API but samples
//                      nothing pays)
//   metrics-tracing-sdk: metrics, and `tracing: true` with an SDK tracer
//                      provider registered that records every span and
//                      exports none (the cost of real spans)
//
// Cost part — `metrics-cost`: 100 callables × 100 tenants (10,000
// executions, one per pair, all run), then `metrics()` and `stats()` timed
// in the same process, each 21 times (median reported), with and without
// `metrics: { tenantLabels: true }` (10,000 labelled series).

const { loadEngine, engineThroughput, now, runChild, expectCount, quantile, sortNumbers } = require('./lib')

const CONCURRENCY = 64

/** The executor throughput run with these engine options (`setup` first). */
function throughput(options, n, setup) {
  if (setup) setup()
  return engineThroughput({ concurrency: CONCURRENCY, ...options }, n)
}

/** Registers an SDK tracer provider that records spans and exports none. */
function sdkTracer() {
  const api = require('@opentelemetry/api')
  const { BasicTracerProvider } = require('@opentelemetry/sdk-trace-base')
  const { AsyncLocalStorageContextManager } = require('@opentelemetry/context-async-hooks')
  api.context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable())
  api.trace.setGlobalTracerProvider(new BasicTracerProvider())
}

async function median(fn, times = 21) {
  const ms = []
  let last
  for (let i = 0; i < times; i++) {
    const t0 = now()
    last = await fn()
    ms.push(now() - t0)
  }
  return { ms: quantile(sortNumbers(ms), 0.5), last }
}

async function cost({ callables = 100, tenants = 100, labels = false }) {
  const BackgroundEngine = loadEngine()
  const engine = new BackgroundEngine({ concurrency: 256, metrics: { tenantLabels: labels === true || labels === 'true' } })
  for (let c = 0; c < callables; c++) engine.registerCallable(`callable_${c}`, async () => null)
  const pending = []
  for (let c = 0; c < callables; c++) {
    for (let t = 0; t < tenants; t++) pending.push(engine.submit({ tenantId: `tenant_${t}`, callableName: `callable_${c}` }))
  }
  await Promise.all(pending)
  await engine.idle()
  const metrics = await median(() => engine.metrics())
  const stats = await median(() => engine.stats())
  const s = stats.last
  expectCount('stats().completed', s.completed, callables * tenants)
  expectCount('callables in stats()', Object.keys(s.callables).length, callables)
  expectCount('tenants in stats()', Object.keys(s.tenants).length, tenants)
  await engine.shutdown()
  return {
    metricsMs: metrics.ms,
    metricsKiB: Buffer.byteLength(metrics.last) / 1024,
    metricsLines: metrics.last.split('\n').length - 1,
    statsMs: stats.ms,
    series: labels === true || labels === 'true' ? callables * tenants : callables,
  }
}

runChild({
  'metrics-off': ({ n = 200_000 }) => throughput({ metrics: false }, n),
  'metrics-on': ({ n = 200_000 }) => throughput({}, n),
  'metrics-tracing': ({ n = 200_000 }) => throughput({ tracing: true }, n),
  'metrics-tracing-sdk': ({ n = 200_000 }) => throughput({ tracing: true }, n, sdkTracer),
  'metrics-cost': (args) => cost(args),
  'metrics-cost-labels': (args) => cost({ ...args, labels: true }),
})
