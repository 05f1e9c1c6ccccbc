'use strict'
// Shared helpers of the benchmark children and the orchestrator: the child
// protocol (one JSON line on stdout), argument parsing, timing, percentiles,
// a seeded PRNG and GC/RSS helpers. Plain CommonJS, no dependencies.

const path = require('node:path')

const ROOT = path.join(__dirname, '..')

/** The package under test, loaded the way users load it. */
function loadEngine() {
  return require(ROOT).BackgroundEngine
}

/**
 * An engine with one no-op callable, `noop`, that counts its runs:
 * `{ engine, runs() }`.
 */
function noopEngine(options) {
  const BackgroundEngine = loadEngine()
  const engine = new BackgroundEngine(options)
  let ran = 0
  engine.registerCallable('noop', async () => {
    ran++
    return null
  })
  return { engine, runs: () => ran }
}

/**
 * The executor throughput run (bench/throughput.js's `ours`, and the
 * observability benchmark's variants of it): `n` fire-and-forget no-op
 * submits in a plain loop, then one `idle()`; checked to have run each
 * once. Resolves with jobs/s and the event-loop lag meanwhile.
 * @param {object} options engine options
 * @param {number} n
 */
async function engineThroughput(options, n) {
  const { engine, runs } = noopEngine(options)
  const probe = lagProbe()
  const t0 = now()
  for (let i = 0; i < n; i++) engine.submit({ tenantId: 'tenant_1', callableName: 'noop' })
  await engine.idle()
  const ms = now() - t0
  const lag = probe.stop()
  const stats = await engine.stats()
  await engine.shutdown()
  expectCount('callable invocations', runs(), n)
  expectCount('stats().completed', stats.completed, n)
  return { jobsPerSec: n / (ms / 1000), ms, n, ...lag }
}

/** p-queue is ESM-only; CommonJS reaches it through a dynamic import. */
async function loadPQueue() {
  return (await import('p-queue')).default
}

/** `node bench/x.js <impl> --key value --flag` → { impl, key: value, flag: true }. */
function parseArgs(argv = process.argv.slice(2)) {
  const out = { impl: argv[0] }
  for (let i = 1; i < argv.length; i++) {
    const a = argv[i]
    if (!a.startsWith('--')) throw new Error(`unexpected argument ${a}`)
    const key = a.slice(2)
    const next = argv[i + 1]
    if (next === undefined || next.startsWith('--')) out[key] = true
    else {
      out[key] = /^-?\d+(\.\d+)?$/.test(next) ? Number(next) : next
      i++
    }
  }
  return out
}

/** Milliseconds, sub-microsecond resolution. */
const now = () => performance.now()
/** Nanoseconds as a Number (fine below 2^53 ns ≈ 104 days). */
const nowNs = () => Number(process.hrtime.bigint())

/** q-quantile (0..1) of an ascending-sorted numeric array, nearest rank. */
function quantile(sorted, q) {
  if (sorted.length === 0) return NaN
  const rank = Math.ceil(q * sorted.length)
  return sorted[Math.min(sorted.length - 1, Math.max(0, rank - 1))]
}

function sortNumbers(values) {
  const a = Float64Array.from(values)
  a.sort()
  return a
}

function median(values) {
  return quantile(sortNumbers(values), 0.5)
}

/**
 * Event-loop lag probe: a 1 ms `setInterval` whose every tick records how
 * much later than 1 ms after the previous tick it ran (the time the loop
 * was kept from turning). `stop()` also counts the time since the last
 * tick, so a loop blocked to the end is seen, and answers the p99 and max
 * lateness in ms.
 */
function lagProbe(intervalMs = 1) {
  const late = []
  let last = now()
  const timer = setInterval(() => {
    const t = now()
    late.push(Math.max(0, t - last - intervalMs))
    last = t
  }, intervalMs)
  return {
    stop() {
      clearInterval(timer)
      late.push(Math.max(0, now() - last - intervalMs))
      const sorted = sortNumbers(late)
      return { lagP99Ms: quantile(sorted, 0.99), lagMaxMs: sorted[sorted.length - 1], lagTicks: late.length }
    },
  }
}

/** mulberry32: a tiny, fast, seeded PRNG giving floats in [0, 1). */
function prng(seed) {
  let s = seed >>> 0
  return function next() {
    s = (s + 0x6d2b79f5) >>> 0
    let t = s
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

/** Integer in [0, n). */
const randInt = (rand, n) => Math.floor(rand() * n)

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))

/** Full, repeated GC (needs --expose-gc) with turns of the event loop between. */
async function fullGc() {
  if (typeof global.gc !== 'function') throw new Error('run with node --expose-gc')
  for (let i = 0; i < 4; i++) {
    global.gc()
    await new Promise((resolve) => setImmediate(resolve))
  }
  await sleep(50)
  global.gc()
}

function log(...args) {
  console.error(`[${path.basename(process.argv[1], '.js')} ${process.argv[2] || ''}]`, ...args)
}

/**
 * Runs a benchmark child: `impls` maps an implementation name to an async
 * function (args) → figures. Prints exactly one JSON line on stdout:
 * `{ ok: true, ...figures }`, or `{ ok: false, error }` when it threw, when a
 * promise was rejected unhandled, or when the figures report lost work.
 * After printing, the process must exit on its own (nothing may keep Node
 * alive after shutdown); a watchdog reports it if it does not.
 */
function runChild(impls) {
  const args = parseArgs()
  const unhandled = []
  process.on('unhandledRejection', (err) => unhandled.push(err))
  let printed = false
  const print = (obj) => {
    if (printed) return
    printed = true
    process.stdout.write(JSON.stringify(obj) + '\n')
  }
  const fn = impls[args.impl]
  if (fn === undefined) {
    print({ ok: false, error: `unknown implementation ${args.impl}; known: ${Object.keys(impls).join(', ')}` })
    process.exitCode = 2
    return
  }
  Promise.resolve()
    .then(() => fn(args))
    .then(
      (figures) => {
        if (unhandled.length > 0) throw new Error(`${unhandled.length} unhandled rejection(s), first: ${describe(unhandled[0])}`)
        print({ ok: true, ...figures })
        // An unref'd timer: fires only if something else still keeps Node alive.
        setTimeout(() => {
          log('process still alive 10 s after the benchmark finished (something keeps Node alive)')
          process.exit(3)
        }, 10_000).unref()
      },
      (err) => {
        print({ ok: false, error: describe(err) })
        log(err && err.stack ? err.stack : err)
        process.exitCode = 1
        // A failed run may leave an engine behind; do not hang on it.
        setTimeout(() => process.exit(1), 2_000).unref()
      },
    )
}

function describe(err) {
  if (err && typeof err.message === 'string') return err.code ? `${err.code}: ${err.message}` : err.message
  return String(err)
}

/** Throws `lost N executions` unless `actual === expected`. */
function expectCount(what, actual, expected) {
  if (actual === expected) return
  const diff = expected - actual
  throw new Error(diff > 0 ? `lost ${diff} executions (${what}: ${actual} of ${expected})` : `${-diff} executions too many (${what}: ${actual}, expected ${expected})`)
}

/** Whether process `pid` still runs (leftovers of a run whose process is gone may be cleared). */
function processAlive(pid) {
  try {
    process.kill(pid, 0)
    return true
  } catch (err) {
    return err.code === 'EPERM'
  }
}

module.exports = {
  processAlive,
  noopEngine,
  engineThroughput,
  ROOT,
  loadEngine,
  loadPQueue,
  parseArgs,
  now,
  nowNs,
  quantile,
  sortNumbers,
  median,
  lagProbe,
  prng,
  randInt,
  sleep,
  fullGc,
  log,
  runChild,
  expectCount,
}
