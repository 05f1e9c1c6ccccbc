'use strict'
// What run.js runs: the benchmarks, their implementations, the figures each
// child reports, and the targets of issues 4 and 12 (the PostgreSQL
// benchmarks of issue 13 have no targets yet). Sizes are the issue's; `quick`
// sizes (about 1/20) are for smoke tests only.

const higher = 'higher'
const lower = 'lower'

const BENCHES = [
  {
    name: 'throughput',
    file: 'throughput.js',
    title: 'Executor throughput',
    what: '200,000 fire-and-forget no-op async executions, concurrency 64, submitted in a loop, then awaited until idle; jobs/s from the first submit to all done. Event-loop lag: p99 and max lateness of a 1 ms setInterval probe running meanwhile (how long timers and I/O of the rest of the application waited).',
    args: { n: 200_000 },
    quick: { n: 10_000 },
    ours: ['ours'],
    theirs: ['p-queue', 'heap-queue'],
    figures: [
      { key: 'jobsPerSec', label: 'jobs/s', better: higher, digits: 0, ratio: true },
      { key: 'lagP99Ms', label: 'event-loop lag p99 ms', better: lower, digits: 1, ratio: true },
      { key: 'lagMaxMs', label: 'event-loop lag max ms', better: lower, digits: 1 },
    ],
  },
  {
    name: 'roundtrip',
    file: 'roundtrip.js',
    title: 'Round trip',
    what: "`await submit({ config: { mode: 'silent' } })` of a no-op, 10,000 times in sequence after 1,000 warm-ups (p-queue: `await queue.add(noop)`, for reference); latency per call.",
    args: { n: 10_000, warmup: 1_000 },
    quick: { n: 500, warmup: 50 },
    ours: ['ours'],
    theirs: ['p-queue'],
    figures: [
      { key: 'p50Us', label: 'p50 µs', better: lower, digits: 1, ratio: true },
      { key: 'p99Us', label: 'p99 µs', better: lower, digits: 1, ratio: true },
      { key: 'maxUs', label: 'max µs', better: lower, digits: 0 },
    ],
  },
  {
    name: 'memory',
    file: 'memory.js',
    title: 'Queue memory',
    what: 'RSS growth per waiting execution, after a full GC, with 1,000,000 deferred executions due in an hour (p-queue: 1,000,000 tasks in a paused queue). heapUsed growth alongside: the engine keeps its queue in Rust memory, outside the V8 heap.',
    args: { n: 1_000_000 },
    quick: { n: 50_000 },
    ours: ['ours'],
    theirs: ['p-queue'],
    figures: [
      { key: 'bytesPerExec', label: 'RSS bytes/execution', better: lower, digits: 0, ratio: true },
      { key: 'heapBytesPerExec', label: 'V8 heap bytes/execution', better: lower, digits: 0 },
    ],
  },
  ...[10_000, 100_000].map((triggers) => ({
    name: `matching-${triggers / 1000}k`,
    file: 'matching.js',
    title: `Event matching, ${triggers.toLocaleString('en-US')} triggers`,
    what: `${triggers.toLocaleString('en-US')} event triggers over 1,000 tenants × 200 event types, half with an eventPattern, 5 % domain wildcards; 1,000,000 events in chunks of 1,000. events/s counts only the time inside the emit calls; "incl. await" adds awaiting each chunk's promises (during which the engine also runs the fired no-op executions).`,
    args: { triggers, events: 1_000_000 },
    quick: { triggers: triggers / 20, events: 50_000 },
    ours: ['ours-emit', 'ours-emitBatch'],
    theirs: ['js-matcher'],
    same: ['fires'], // every run of every implementation must report the same value
    figures: [
      { key: 'eventsPerSec', label: 'events/s', better: higher, digits: 0, ratio: true },
      { key: 'inclAwaitPerSec', label: 'events/s incl. await', better: higher, digits: 0 },
      { key: 'fires', label: 'fires', better: null, digits: 0 },
      { key: 'registerMs', label: 'register ms', better: lower, digits: 0 },
    ],
  })),
  {
    name: 'schedule',
    file: 'schedule.js',
    title: 'Schedule precision',
    what: "10,000 jobs firing every second (`* * * * * *`) for 10 s; lateness = `Date.now()` when the no-op job starts − the whole second it was due for; process CPU time (user + system) over the 10 ticks. The engine runs with concurrency 10,000 so its executor limit adds no queueing delay.",
    args: { triggers: 10_000, seconds: 10 },
    quick: { triggers: 1_000, seconds: 2 },
    ours: ['ours'],
    theirs: ['croner'],
    figures: [
      { key: 'p50Ms', label: 'p50 ms', better: lower, digits: 1, ratio: true },
      { key: 'p99Ms', label: 'p99 ms', better: lower, digits: 1, ratio: true },
      { key: 'maxMs', label: 'max ms', better: lower, digits: 0 },
      { key: 'cpuMs', label: 'CPU ms', better: lower, digits: 0, ratio: true },
    ],
  },
  // Issue 12's durable section: bench/durable.js, `part` picks the benchmark.
  // Their competitors live in bench/package.json, installed by run.js
  // (`needs: 'bench-deps'`), not by the root `npm install`.
  {
    name: 'durable-throughput',
    file: 'durable.js',
    part: 'throughput',
    needs: 'bench-deps',
    title: 'Durable throughput',
    what: "200,000 no-op executions at concurrency 64, each acknowledged only when committed, submitted in chunks of 256 with a turn of the event loop after each (as an application taking requests would), then awaited until all have run; jobs/s from the first submit to the last completion, event-loop lag (1 ms probe) meanwhile. **sqlite**: our engine over a SQLite file (`BackgroundEngine.open({ store: { sqlite, synchronous: 'normal' } })`), every submit's promise (resolved when committed) counted, then `idle()`. memory: the same on our memory store. bullmq: BullMQ 6 on the local Redis (no persistence configured there: not durable in this run), `addBulk` per chunk, one Worker of concurrency 64. plainjob: plainjob on better-sqlite3 (WAL, synchronous=NORMAL), `addMany` per chunk, then 64 workers in this process.",
    args: { n: 200_000 },
    quick: { n: 10_000 },
    ours: ['sqlite'],
    theirs: ['memory', 'bullmq', 'plainjob'],
    figures: [
      { key: 'jobsPerSec', label: 'jobs/s', better: higher, digits: 0, ratio: true },
      { key: 'lagP99Ms', label: 'event-loop lag p99 ms', better: lower, digits: 1 },
      { key: 'lagMaxMs', label: 'event-loop lag max ms', better: lower, digits: 1 },
    ],
  },
  {
    name: 'durable-roundtrip',
    file: 'durable.js',
    part: 'roundtrip',
    title: 'Durable round trip',
    what: "`await engine.submit({ config: { mode: 'silent' } })` of a no-op on a SQLite file, 10,000 times in sequence after 1,000 warm-ups; beside it, in the same child, one fsync on this disk (4 KiB written at offset 0 of a file in the database's directory, then `fs.fsyncSync`, 1,000 times: half before, half after). sqlite: `synchronous: 'normal'` (WAL commits not fsynced); sqlite-full: `synchronous: 'full'` (every commit fsynced). The child holds its event loop open with a 1 s interval, as a server's listening socket would.",
    args: { n: 10_000, warmup: 1_000, fsyncs: 1_000 },
    quick: { n: 500, warmup: 50, fsyncs: 100 },
    ours: ['sqlite', 'sqlite-full'],
    theirs: [],
    figures: [
      { key: 'p50Us', label: 'p50 µs', better: lower, digits: 1 },
      { key: 'p99Us', label: 'p99 µs', better: lower, digits: 1 },
      { key: 'maxUs', label: 'max µs', better: lower, digits: 0 },
      { key: 'fsyncP50Us', label: 'fsync p50 µs', better: null, digits: 1 },
      { key: 'p50OverFsync', label: 'p50 ÷ fsync p50', better: lower, digits: 2 },
    ],
  },
  {
    name: 'durable-backlog',
    file: 'durable.js',
    part: 'backlog',
    title: 'Backlog memory',
    what: 'RSS growth per queued execution, after a full GC, with 1,000,000 executions queued ready to run (engine concurrency 1, its one started attempt held until the measurement is over; submitted in chunks of 10,000, promises dropped). sqlite: our engine over a SQLite file; memory: our memory store, for contrast. heapUsed growth alongside.',
    args: { n: 1_000_000 },
    quick: { n: 50_000 },
    runs: 3,
    ours: ['sqlite'],
    theirs: ['memory'],
    figures: [
      { key: 'bytesPerExec', label: 'RSS bytes/execution', better: lower, digits: 0, ratio: true },
      { key: 'heapBytesPerExec', label: 'V8 heap bytes/execution', better: lower, digits: 0 },
      { key: 'rssMiB', label: 'RSS MiB', better: lower, digits: 0 },
    ],
  },
  {
    name: 'durable-recovery',
    file: 'durable.js',
    part: 'recovery',
    title: 'Recovery time',
    what: 'A SQLite file holding 1,000,000 queued executions (made by a setup child, not timed; fresh in every run, in the page cache) is opened by a fresh process: time from just before `BackgroundEngine.open()` to the first call of the callable; open() alone alongside.',
    args: { n: 1_000_000 },
    quick: { n: 50_000 },
    runs: 3,
    ours: ['sqlite'],
    theirs: [],
    figures: [
      { key: 'firstStartMs', label: 'open → first start ms', better: lower, digits: 1 },
      { key: 'openMs', label: 'open() ms', better: lower, digits: 1 },
      { key: 'queuedAtOpen', label: 'executions found', better: null, digits: 0 },
    ],
  },
  {
    name: 'pg-throughput',
    file: 'postgres.js',
    part: 'throughput',
    needs: 'bench-deps',
    title: 'PostgreSQL throughput',
    what: "200,000 no-op jobs at concurrency 64 on the local PostgreSQL (DATABASE_URL, else postgres://root@127.0.0.1:5432/test), each run in a fresh schema, enqueued with each library's bulk call in chunks of 1,000 (each awaited). jobs/s: workers running from the start, from the first enqueue to the last job completed in the database, event-loop lag (1 ms probe) meanwhile. processing jobs/s: in a second fresh schema all jobs are enqueued first, then the clock runs from starting the workers to the last completion. graphile-worker 0.17: `addJobs`; `run({ concurrency: 64, maxPoolSize: 65 })` with `localQueue: { size: 500 }`, `completeJobBatchDelay: 0`, `failJobBatchDelay: 0` (its documented performance settings). pg-boss 10: `insert`; one `work()` with `batchSize: 64`, `pollingIntervalSeconds: 0.5`, calling `notifyWorker` after a full batch (pg-boss 10 otherwise sleeps the polling interval after every fetch). bullmq: the durable benchmark's BullMQ run (Redis, not PostgreSQL) with chunks of 1,000, for a figure of the same run beside.",
    args: { n: 200_000 },
    quick: { n: 10_000 },
    // pg-boss 10 slows down with the depth of its backlog (every fetch
    // sorts all waiting jobs): at 200,000 one run took 20 min here (both
    // halves), more than run.js's 15 min default for a child.
    // pg-boss runs 50,000 (its rate at 200,000 is a fifth of that: see
    // bench/postgres.js), which only flatters it.
    implArgs: { 'pg-boss': { n: 50_000 } },
    runs: 1,
    timeoutMin: 45,
    ours: ['pg-1', 'pg-2'],
    theirs: ['graphile-worker', 'pg-boss', 'bullmq'],
    figures: [
      { key: 'jobsPerSec', label: 'jobs/s', better: higher, digits: 0, ratio: true },
      { key: 'processJobsPerSec', label: 'processing jobs/s', better: higher, digits: 0, ratio: true },
      { key: 'lagP99Ms', label: 'event-loop lag p99 ms', better: lower, digits: 1 },
      { key: 'lagMaxMs', label: 'event-loop lag max ms', better: lower, digits: 1 },
    ],
  },
  {
    name: 'pg-pickup',
    file: 'postgres.js',
    part: 'pickup',
    needs: 'bench-deps',
    title: 'PostgreSQL pickup latency',
    what: "One job enqueued by this process, started by an idle worker in a second process over the same fresh schema (the throughput settings), 1,000 times in sequence after 10 warm-ups, each after a random gap (graphile-worker: up to 20 ms; pg-boss: up to its 500 ms polling interval, so that the enqueues do not line up with its polls); latency from just before the enqueue call to the start of the handler, on the shared wall clock (`performance.timeOrigin + performance.now()`). graphile-worker is woken by LISTEN/NOTIFY; pg-boss 10 polls (0.5 s at the least), so its runs stop after 120 s and report how many samples they took.",
    args: { n: 1_000, seconds: 120 },
    quick: { n: 50, seconds: 15 },
    runs: 1,
    ours: ['pg'],
    theirs: ['graphile-worker', 'pg-boss'],
    figures: [
      { key: 'p50Ms', label: 'p50 ms', better: lower, digits: 2, ratio: true },
      { key: 'p99Ms', label: 'p99 ms', better: lower, digits: 2, ratio: true },
      { key: 'maxMs', label: 'max ms', better: lower, digits: 1 },
      { key: 'samples', label: 'samples', better: null, digits: 0 },
    ],
  },
  {
    name: 'pg-cron',
    file: 'postgres.js',
    part: 'cron',
    needs: 'bench-deps',
    title: 'PostgreSQL cron at scale',
    what: "1,000 per-second schedule triggers (`* * * * * *`) in a fresh schema, scheduled by 3 engines, each in a process of its own (every engine schedules every trigger; each tick is claimed per (trigger, scheduledAt) in its fire's transaction), for 10 s of whole ticks (the first 2 s after the engines are up left out). From the database: ticks fired more than once (duplicates), ticks never fired (missed: under the default misfire policy `fire_once`, ticks that came due while an earlier one of the same trigger was still waiting to fire are folded into one fire), and lateness: the fire's commit and the job's start, each minus the tick's due time.",
    args: { triggers: 1_000, engines: 3, seconds: 10 },
    quick: { triggers: 100, engines: 3, seconds: 3 },
    runs: 1,
    ours: ['pg'],
    theirs: [],
    figures: [
      { key: 'expected', label: 'ticks due', better: null, digits: 0 },
      { key: 'duplicates', label: 'duplicates', better: lower, digits: 0 },
      { key: 'missed', label: 'missed', better: lower, digits: 0 },
      { key: 'fireP99Ms', label: 'fire lateness p99 ms', better: lower, digits: 0 },
      { key: 'startP50Ms', label: 'start lateness p50 ms', better: lower, digits: 0 },
      { key: 'startP99Ms', label: 'start lateness p99 ms', better: lower, digits: 0 },
    ],
  },
]

// Issue 14: what observability costs.
BENCHES.push(
  {
    name: 'obs-throughput',
    file: 'observability.js',
    title: 'Executor throughput with metrics and tracing',
    what: "The executor throughput benchmark (200,000 fire-and-forget no-op executions, concurrency 64, memory store) with `metrics: false` (the baseline), metrics on (the default), metrics and `tracing: true` with OpenTelemetry's API alone (its no-op tracer), and metrics and `tracing: true` with an SDK tracer provider registered that records every attempt's span and exports none.",
    args: { n: 200_000 },
    quick: { n: 10_000 },
    ours: ['metrics-on', 'metrics-tracing', 'metrics-tracing-sdk'],
    theirs: ['metrics-off'],
    figures: [
      { key: 'jobsPerSec', label: 'jobs/s', better: higher, digits: 0, ratio: true },
      { key: 'lagP99Ms', label: 'event-loop lag p99 ms', better: lower, digits: 1 },
    ],
  },
  {
    name: 'obs-cost',
    file: 'observability.js',
    title: 'Cost of metrics() and stats()',
    what: '100 callables × 100 tenants: 10,000 executions, one per pair, all run; then `metrics()` and `stats()` each called 21 times in the same process (median). `metrics-cost-labels` keeps a series per tenant (`metrics: { tenantLabels: true }`: 10,000 series).',
    args: { callables: 100, tenants: 100 },
    quick: { callables: 20, tenants: 20 },
    runs: 3,
    ours: ['metrics-cost', 'metrics-cost-labels'],
    theirs: [],
    figures: [
      { key: 'metricsMs', label: 'metrics() ms', better: lower, digits: 2 },
      { key: 'statsMs', label: 'stats() ms', better: lower, digits: 2 },
      { key: 'metricsKiB', label: 'exposition KiB', better: null, digits: 0 },
      { key: 'metricsLines', label: 'exposition lines', better: null, digits: 0 },
      { key: 'series', label: 'series', better: null, digits: 0 },
    ],
  },
)

// Each target reads medians through `m(bench, impl, key)`, which returns a
// number or throws a reason (a failed run, a benchmark not run).
const fmt = (x, d = 2) => x.toLocaleString('en-US', { maximumFractionDigits: d })

const TARGETS = [
  {
    text: 'Throughput ≥ 3× p-queue',
    check(m) {
      const r = m('throughput', 'ours', 'jobsPerSec') / m('throughput', 'p-queue', 'jobsPerSec')
      return { met: r >= 3, detail: `ours/p-queue = ${fmt(r)}×` }
    },
  },
  {
    text: 'Throughput ≥ 1× hand-written heap queue',
    check(m) {
      const r = m('throughput', 'ours', 'jobsPerSec') / m('throughput', 'heap-queue', 'jobsPerSec')
      return { met: r >= 1, detail: `ours/heap-queue = ${fmt(r)}×` }
    },
  },
  {
    text: 'Round trip p50 < 50 µs',
    check(m) {
      const v = m('roundtrip', 'ours', 'p50Us')
      return { met: v < 50, detail: `p50 = ${fmt(v, 1)} µs` }
    },
  },
  {
    text: 'Queue memory ≤ 250 bytes per waiting execution',
    check(m) {
      const v = m('memory', 'ours', 'bytesPerExec')
      let pq
      try {
        pq = `${fmt(m('memory', 'p-queue', 'bytesPerExec'), 0)} B`
      } catch (err) {
        pq = err.message
      }
      return { met: v <= 250, detail: `${fmt(v, 0)} B (p-queue: ${pq})` }
    },
  },
  {
    text: 'Matching ≥ 1× JS matcher at 10,000 triggers (emit, or emitBatch if emit falls short)',
    check(m) {
      const js = m('matching-10k', 'js-matcher', 'eventsPerSec')
      const e = m('matching-10k', 'ours-emit', 'eventsPerSec') / js
      const b = m('matching-10k', 'ours-emitBatch', 'eventsPerSec') / js
      return { met: Math.max(e, b) >= 1, detail: `emit ${fmt(e, 3)}×, emitBatch ${fmt(b, 3)}× the JS matcher` }
    },
  },
  {
    text: 'Matching at 100,000 triggers within 20 % of 10,000 triggers (same path)',
    check(m) {
      const e = m('matching-100k', 'ours-emit', 'eventsPerSec') / m('matching-10k', 'ours-emit', 'eventsPerSec')
      const b = m('matching-100k', 'ours-emitBatch', 'eventsPerSec') / m('matching-10k', 'ours-emitBatch', 'eventsPerSec')
      const js = m('matching-100k', 'js-matcher', 'eventsPerSec') / m('matching-10k', 'js-matcher', 'eventsPerSec')
      return { met: Math.max(e, b) >= 0.8, detail: `100k/10k: emit ${fmt(e)}, emitBatch ${fmt(b)} (JS matcher ${fmt(js)})` }
    },
  },
  {
    text: 'Schedule p99 lateness < 5 ms',
    check(m) {
      const v = m('schedule', 'ours', 'p99Ms')
      return { met: v < 5, detail: `p99 = ${fmt(v, 1)} ms` }
    },
  },
  {
    text: 'Schedule p99 ≥ 40× better than croner',
    check(m) {
      const ours = m('schedule', 'ours', 'p99Ms')
      const croner = m('schedule', 'croner', 'p99Ms')
      const r = croner / Math.max(ours, 1e-9)
      return { met: r >= 40, detail: `croner p99 ${fmt(croner, 1)} ms / ours ${fmt(ours, 1)} ms = ${fmt(r, 1)}×` }
    },
  },
  {
    text: 'Schedule CPU time < croner',
    check(m) {
      const ours = m('schedule', 'ours', 'cpuMs')
      const croner = m('schedule', 'croner', 'cpuMs')
      return { met: ours < croner, detail: `ours ${fmt(ours, 0)} ms vs croner ${fmt(croner, 0)} ms` }
    },
  },
  {
    text: 'Durable throughput ≥ 10× BullMQ',
    check(m) {
      const r = m('durable-throughput', 'sqlite', 'jobsPerSec') / m('durable-throughput', 'bullmq', 'jobsPerSec')
      return { met: r >= 10, detail: `sqlite/bullmq = ${fmt(r)}×` }
    },
  },
  {
    text: 'Durable throughput ≥ 10× plainjob',
    check(m) {
      const r = m('durable-throughput', 'sqlite', 'jobsPerSec') / m('durable-throughput', 'plainjob', 'jobsPerSec')
      return { met: r >= 10, detail: `sqlite/plainjob = ${fmt(r)}×` }
    },
  },
  {
    text: 'Durable throughput ≥ 0.5× our memory store',
    check(m) {
      const r = m('durable-throughput', 'sqlite', 'jobsPerSec') / m('durable-throughput', 'memory', 'jobsPerSec')
      return { met: r >= 0.5, detail: `sqlite/memory = ${fmt(r)}×` }
    },
  },
  {
    text: 'Event-loop lag p99 < 5 ms during the durable throughput run',
    check(m) {
      const v = m('durable-throughput', 'sqlite', 'lagP99Ms')
      return { met: v < 5, detail: `p99 = ${fmt(v, 1)} ms` }
    },
  },
  {
    text: "Durable round trip p50 ≤ 2× one fsync (synchronous: 'full')",
    check(m) {
      const full = m('durable-roundtrip', 'sqlite-full', 'p50Us')
      const fsync = m('durable-roundtrip', 'sqlite-full', 'fsyncP50Us')
      const r = m('durable-roundtrip', 'sqlite-full', 'p50OverFsync')
      let normal
      try {
        normal = `; 'normal': p50 ${fmt(m('durable-roundtrip', 'sqlite', 'p50Us'), 1)} µs`
      } catch (err) {
        normal = `; 'normal': ${err.message}`
      }
      return { met: r <= 2, detail: `p50 ${fmt(full, 1)} µs, fsync p50 ${fmt(fsync, 1)} µs: ${fmt(r)}× (median of the runs' ratios)${normal}` }
    },
  },
  {
    text: 'Backlog memory ≤ 64 bytes per queued durable execution',
    check(m) {
      const v = m('durable-backlog', 'sqlite', 'bytesPerExec')
      let mem
      try {
        mem = `${fmt(m('durable-backlog', 'memory', 'bytesPerExec'), 0)} B`
      } catch (err) {
        mem = err.message
      }
      return { met: v <= 64, detail: `${fmt(v, 0)} B (memory store: ${mem})` }
    },
  },
  {
    text: 'Recovery: open a file of 1,000,000 queued executions and start the first < 1 s',
    check(m) {
      const v = m('durable-recovery', 'sqlite', 'firstStartMs')
      return { met: v < 1000, detail: `${fmt(v, 0)} ms (open() ${fmt(m('durable-recovery', 'sqlite', 'openMs'), 0)} ms)` }
    },
  },
  // Issue 13: the PostgreSQL store.
  ...['pg-1', 'pg-2'].map((impl) => ({
    text: `PostgreSQL throughput (${impl === 'pg-1' ? '1 engine process' : '2 engine processes'}) ≥ 3× the best of graphile-worker, pg-boss and BullMQ`,
    check(m) {
      const theirs = ['graphile-worker', 'pg-boss', 'bullmq'].map((t) => [t, m('pg-throughput', t, 'jobsPerSec')])
      const [best, bestV] = theirs.reduce((a, b) => (b[1] > a[1] ? b : a))
      const r = m('pg-throughput', impl, 'jobsPerSec') / bestV
      return { met: r >= 3, detail: `${fmt(m('pg-throughput', impl, 'jobsPerSec'), 0)} jobs/s = ${fmt(r)}× ${best} (${fmt(bestV, 0)})` }
    },
  })),
  {
    text: 'PostgreSQL pickup latency (submitted on A, started on idle B): p50 < 5 ms, p99 < 20 ms',
    check(m) {
      const p50 = m('pg-pickup', 'pg', 'p50Ms')
      const p99 = m('pg-pickup', 'pg', 'p99Ms')
      return { met: p50 < 5 && p99 < 20, detail: `p50 ${fmt(p50)} ms, p99 ${fmt(p99)} ms (graphile-worker p50 ${fmt(m('pg-pickup', 'graphile-worker', 'p50Ms'))} ms)` }
    },
  },
  {
    text: 'PostgreSQL cron at scale (1,000 per-second triggers, 3 engines, 10 s): zero duplicate and zero missed ticks',
    check(m) {
      const d = m('pg-cron', 'pg', 'duplicates')
      const x = m('pg-cron', 'pg', 'missed')
      return { met: d === 0 && x === 0, detail: `${fmt(d, 0)} duplicates, ${fmt(x, 0)} missed of ${fmt(m('pg-cron', 'pg', 'expected'), 0)}; start lateness p99 ${fmt(m('pg-cron', 'pg', 'startP99Ms'), 0)} ms` }
    },
  },
]

// Issue 14: observability must not cost the executor.
TARGETS.push(
  ...[
    ['metrics-on', 'metrics on'],
    ['metrics-tracing', 'metrics and tracing (OpenTelemetry no-op tracer)'],
  ].map(([impl, label]) => ({
    text: `Throughput with ${label} within 10 % of metrics off`,
    check(m) {
      const r = m('obs-throughput', impl, 'jobsPerSec') / m('obs-throughput', 'metrics-off', 'jobsPerSec')
      return { met: r >= 0.9, detail: `${fmt(m('obs-throughput', impl, 'jobsPerSec'), 0)} vs ${fmt(m('obs-throughput', 'metrics-off', 'jobsPerSec'), 0)} jobs/s = ${fmt(r * 100, 1)} %` }
    },
  })),
)

module.exports = { BENCHES, TARGETS }
