'use strict'
// The PostgreSQL benchmarks of issue 13, one child per implementation and
// run like every other benchmark; `--part` picks the benchmark:
//
//   node --expose-gc bench/postgres.js <impl> --part <part> --n N …
//
// The database is DATABASE_URL, else postgres://root@127.0.0.1:5432/test
// (the local PostgreSQL 15 here, trust auth). Every run works in a fresh
// schema of its own, `enact_bench_<pid>_<k>`, dropped at the end; schemas of
// earlier runs whose process is gone (a crash) are dropped first.
//
// Only the competitors are here yet. Our PostgreSQL store (issue 13, being
// written) is to be added as more entries of `throughput` and `pickup`
// below (pg-1, pg-2: one and two engine processes; pg), each returning the
// same figures.
//
// throughput (impls graphile-worker, pg-boss, bullmq)
//   N no-op jobs (default 200,000) at concurrency 64, submitted with each
//   library's bulk call in chunks of 1,000 (`--chunk`), each call awaited
//   (resolved = committed) before the next.
//   - jobsPerSec (end to end): the workers run from the start; from the first
//     enqueue to the last job completed *in the database* (not merely run:
//     both libraries acknowledge completions asynchronously, so after the
//     handler has run N times the child polls the database every 2 ms until
//     no job is left unfinished). Event-loop lag (the 1 ms setInterval probe
//     of lib.js) meanwhile.
//   - processJobsPerSec (processing only): then, in a second fresh schema,
//     all N jobs are enqueued first with no worker running (enqueueJobsPerSec
//     is that insert rate) and the clock runs from starting the workers to
//     the last completion. `--processing 0` skips this half.
//   - graphile-worker 0.17.3: `makeWorkerUtils().addJobs()` for the chunks;
//     `run({ concurrency: 64, maxPoolSize: 65, noHandleSignals: true,
//     taskList, preset: { worker: { localQueue: { size: 500 },
//     completeJobBatchDelay: 0, failJobBatchDelay: 0 } } })`, pollInterval at
//     its default (2 s; new jobs are announced by LISTEN/NOTIFY). These are
//     the settings of the "Quick stats" configuration on
//     https://worker.graphile.org/docs/performance (there concurrency 24 and
//     maxPoolSize 25), the option names as in dist/index.d.ts
//     (GraphileConfig.WorkerOptions). The schema is migrated
//     (`runMigrations`) before the clock starts. Finished jobs are deleted
//     by graphile-worker; "unfinished" = rows left in `_private_jobs`.
//   - pg-boss 10.4.2: `createQueue()` (needed in v10), `insert([...])` for
//     the chunks; one `work(queue, { batchSize: 64,
//     pollingIntervalSeconds: 0.5 })`, i.e. at most 64 jobs in handlers at
//     once; the handler runs its batch's jobs concurrently. (`--workers` ×
//     `--batch` change the split; at 20,000 jobs here 1×64 did 3.4k jobs/s,
//     2×32 2.7k, 4×16 1.9k, 8×8 0.9k: every worker's fetch is a query.)
//     pg-boss 10 has no localConcurrency (it came later), and its worker
//     loop sleeps out the rest of the polling interval after every fetch,
//     busy or not (0.5 s is the least it allows), which would cap it at 64
//     jobs per 0.5 s; so a
//     handler that got a full batch calls the documented
//     `boss.notifyWorker(workerId)` ("bypass the polling interval for this
//     iteration"), and the worker fetches again at once while jobs remain.
//     Completions are sent by pg-boss without awaiting them; "unfinished" =
//     `getQueueSize(queue, { before: 'completed' })` > 0. Constructor options
//     are pg-boss's defaults (pool max 10, maintenance and cron on).
//     Its rate falls with the depth of the backlog: each fetch reads and
//     top-N sorts every waiting job (`ORDER BY priority desc, created_on, id
//     LIMIT 64` over index job_i5; EXPLAIN ANALYZE: 22 ms with 44,000
//     waiting), so here 20,000 jobs ran at 3.4k jobs/s, 50,000 at 1.3k and
//     200,000 at 0.26k (a 20 min run). That is pg-boss as it is, not this
//     harness: the harness only polls the database once all handlers ran.
//   - bullmq: the durable benchmark's BullMQ run (bullmqThroughput of
//     durable.js, the same code) with chunks of 1,000, for a figure of the
//     same run beside; BullMQ has no processing-only figure here.
//
// pickup (impls graphile-worker, pg-boss)
//   Latency from enqueue to the start of the job on an idle worker in
//   another process: this child (process A) starts a worker child (process
//   B, `--part pickup-worker`, the same worker settings as throughput) over
//   the same schema, then N times in sequence (`--n`, 1,000; 10 warm-ups
//   first, not counted): waits a random gap, takes the time, enqueues one
//   job (graphile-worker: `addJob`; pg-boss: `send`), and waits until B
//   reports (over the IPC channel) the wall-clock time at which the job's
//   handler started; the sample is started − enqueued on the shared clock
//   `performance.timeOrigin + performance.now()`. The random gap (uniform in
//   [0, `--gapMs`)) keeps a polling worker's phase from lining up with the
//   enqueues: graphile-worker 20 ms (it is woken by NOTIFY), pg-boss 500 ms
//   (its polling interval). pg-boss polls, so a sample takes ~0.3 s: a run
//   stops early after `--seconds` (120) and reports how many it took.
//   enqueueP50Ms is the enqueue call's own duration.

const { spawn } = require('node:child_process')
const { setTimeout: sleepMs } = require('node:timers/promises')
const { now, lagProbe, runChild, expectCount, quantile, sortNumbers, log, parseArgs, processAlive } = require('./lib')

const DATABASE_URL = process.env.DATABASE_URL || 'postgres://root@127.0.0.1:5432/test'
const CONCURRENCY = 64
/** Jobs per bulk enqueue call. */
const CHUNK = 1_000
const QUEUE = 'noop'
const SCHEMA_PREFIX = 'enact_bench_'
/** How often the end of a run is looked for in the database. */
const DONE_POLL_MS = 2

/** Wall clock in ms with sub-ms resolution, comparable across processes. */
const wall = () => performance.timeOrigin + performance.now()

// ---------------------------------------------------------------------------
// The database: an admin client, fresh schemas

async function adminQuery(text, params) {
  const { Client } = require('pg')
  const client = new Client({ connectionString: DATABASE_URL })
  await client.connect()
  try {
    return await client.query(text, params)
  } finally {
    await client.end()
  }
}

let schemaCount = 0
function freshSchemaName() {
  return `${SCHEMA_PREFIX}${process.pid}_${++schemaCount}`
}

async function dropSchema(schema) {
  await adminQuery(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`)
}

/** Drops the schemas of earlier runs whose process is gone (crashed runs). */
async function dropStaleSchemas() {
  const { rows } = await adminQuery('SELECT nspname FROM pg_namespace WHERE nspname LIKE $1', [`${SCHEMA_PREFIX}%`])
  for (const { nspname } of rows) {
    const pid = Number(nspname.slice(SCHEMA_PREFIX.length).split('_')[0])
    if (!processAlive(pid)) {
      await dropSchema(nspname)
      log(`dropped schema ${nspname} of an earlier crashed run`)
    }
  }
}

async function untilNoneLeft(remaining) {
  while ((await remaining()) > 0) await sleepMs(DONE_POLL_MS)
}

/** A promise with its resolve function outside. */
function gate() {
  let open
  const promise = new Promise((resolve) => (open = resolve))
  return { promise, open }
}

// ---------------------------------------------------------------------------
// The competitors behind one interface:
//   prepare(schema)                 schema installed (not timed)
//   producer(schema) → { add(k), addOne(payload), close() }
//   startWorkers(schema, onJob, onError) → { stop() }   onJob(payload) per job start
//   remaining(schema) → jobs not finished in the database

function graphileLogger() {
  const { Logger } = require('graphile-worker')
  return new Logger(() => (level, message) => {
    if (level === 'error' || level === 'warning') log(`graphile-worker ${level}: ${message}`)
  })
}

const graphileWorker = {
  pollingMs: 0,
  defaultGapMs: 20,
  async prepare(schema) {
    const { runMigrations } = require('graphile-worker')
    await runMigrations({ connectionString: DATABASE_URL, schema, logger: graphileLogger() })
  },
  async producer(schema) {
    const { makeWorkerUtils } = require('graphile-worker')
    const utils = await makeWorkerUtils({ connectionString: DATABASE_URL, schema, logger: graphileLogger() })
    return {
      async add(k) {
        const specs = new Array(k)
        for (let i = 0; i < k; i++) specs[i] = { identifier: QUEUE, payload: {} }
        return (await utils.addJobs(specs)).length
      },
      addOne: (payload) => utils.addJob(QUEUE, payload),
      close: () => utils.release(),
    }
  },
  async startWorkers(schema, onJob, onError) {
    const { run } = require('graphile-worker')
    const runner = await run({
      connectionString: DATABASE_URL,
      schema,
      concurrency: CONCURRENCY,
      maxPoolSize: CONCURRENCY + 1,
      noHandleSignals: true,
      logger: graphileLogger(),
      taskList: {
        [QUEUE]: async (payload) => {
          onJob(payload)
        },
      },
      preset: { worker: { localQueue: { size: 500 }, completeJobBatchDelay: 0, failJobBatchDelay: 0 } },
    })
    runner.events.on('job:error', ({ error }) => onError(error))
    runner.events.on('pool:fatalError', ({ error }) => onError(error))
    return { stop: () => runner.stop() }
  },
  async remaining(schema) {
    const { rows } = await adminQuery(`SELECT count(*)::int AS n FROM "${schema}"._private_jobs`)
    return rows[0].n
  },
}

/** pg-boss instances of this process by schema (the producer and the workers share one, as an application would). */
const bosses = new Map()

async function pgBossFor(schema, { workers = true } = {}) {
  if (bosses.has(schema)) return bosses.get(schema)
  const PgBoss = require('pg-boss')
  // A producer-only process (pickup's process A) leaves maintenance and cron
  // to the worker process.
  const boss = new PgBoss({ connectionString: DATABASE_URL, schema, ...(workers ? {} : { supervise: false, schedule: false }) })
  boss.on('error', (err) => log('pg-boss error:', err && err.message))
  await boss.start()
  bosses.set(schema, boss)
  return boss
}

async function stopPgBoss(schema) {
  const boss = bosses.get(schema)
  if (!boss) return
  bosses.delete(schema)
  await boss.stop({ graceful: true, wait: true, timeout: 5_000 })
}

function pgBossImpl({ workers = 1, batch = CONCURRENCY } = {}) {
  return {
    pollingMs: 500,
    defaultGapMs: 500,
    async prepare(schema) {
      const boss = await pgBossFor(schema)
      await boss.createQueue(QUEUE)
    },
    async producer(schema, { workers: hasWorkers = true } = {}) {
      const boss = await pgBossFor(schema, { workers: hasWorkers })
      return {
        async add(k) {
          const jobs = new Array(k)
          for (let i = 0; i < k; i++) jobs[i] = { name: QUEUE, data: {} }
          await boss.insert(jobs) // resolves with nothing: counted below
          return k
        },
        addOne: (payload) => boss.send(QUEUE, payload),
        close: () => stopPgBoss(schema),
      }
    },
    async startWorkers(schema, onJob, onError) {
      const boss = await pgBossFor(schema)
      boss.on('error', onError)
      const ids = []
      for (let w = 0; w < workers; w++) {
        let id = null
        id = await boss.work(QUEUE, { batchSize: batch, pollingIntervalSeconds: 0.5 }, async (jobs) => {
          await Promise.all(jobs.map(async (job) => onJob(job.data)))
          if (jobs.length === batch && id !== null) boss.notifyWorker(id)
        })
        ids.push(id)
      }
      return {
        async stop() {
          for (const id of ids) await boss.offWork({ id })
        },
      }
    },
    async remaining(schema) {
      return (await pgBossFor(schema)).getQueueSize(QUEUE, { before: 'completed' })
    },
  }
}

// Ours: BackgroundEngine.open({ store: { postgres } }). The producer is an
// engine with no callables (it only submits); the workers are engines that
// register the callable `noop`. No processing-only half: a submit for a
// callable no live engine serves is refused (ENACT_UNKNOWN_CALLABLE), so a
// backlog cannot be queued before the workers start. `processes` 1: one worker engine in this
// process (concurrency 64); 2: that one and one in a child process
// (concurrency 32 each, 64 in all), which counts its job starts back over
// IPC every 10 ms.
function oursImpl({ processes = 1 } = {}) {
  const { BackgroundEngine } = require('..')
  const store = (schema) => ({ postgres: DATABASE_URL, schema })
  const perEngine = processes === 1 ? CONCURRENCY : CONCURRENCY / processes
  return {
    pollingMs: 0,
    defaultGapMs: 20,
    async prepare(schema) {
      const e = await BackgroundEngine.open({ store: store(schema) })
      await e.shutdown()
    },
    async producer(schema) {
      const e = await BackgroundEngine.open({ store: store(schema) })
      const req = { tenantId: 'bench', callableName: QUEUE }
      return {
        async add(k) {
          const submits = new Array(k)
          for (let i = 0; i < k; i++) submits[i] = e.submit(req)
          return (await Promise.all(submits)).length
        },
        addOne: (payload) => e.submit({ ...req, input: JSON.stringify(payload) }),
        close: () => e.shutdown(),
      }
    },
    async startWorkers(schema, onJob, onError) {
      const e = await BackgroundEngine.open({ store: store(schema), concurrency: perEngine }, (engine) =>
        engine.registerCallable(QUEUE, async (ctx) => {
          onJob(ctx.input === undefined ? {} : JSON.parse(ctx.input))
        }),
      )
      e.on('engine.diagnostic', (d) => log(`diagnostic: ${d.source} ${d.code} ${d.message}`))
      const children = []
      for (let p = 1; p < processes; p++) {
        const child = spawn(process.execPath, [__filename, 'ours', '--part', 'ours-worker', '--schema', schema, '--concurrency', String(perEngine)], {
          stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
        })
        const ready = gate()
        child.on('message', (m) => {
          if (m.ready) ready.open()
          else if (m.ran) for (let i = 0; i < m.ran; i++) onJob({})
          else if (m.error) onError(new Error(m.error))
        })
        child.on('exit', (code) => (code ? onError(new Error(`worker process exited ${code}`)) : ready.open()))
        await ready.promise
        children.push(child)
      }
      return {
        async stop() {
          await Promise.all(
            children.map(
              (c) =>
                new Promise((resolve) => {
                  if (c.exitCode !== null) return resolve()
                  c.once('exit', resolve)
                  c.send('stop')
                }),
            ),
          )
          await e.shutdown()
        },
      }
    },
    async remaining(schema) {
      const { rows } = await adminQuery(`SELECT count(*)::int AS n FROM "${schema}".executions WHERE status < 2`)
      return rows[0].n
    },
  }
}

/** A worker engine in a child process of `oursImpl({ processes: 2 })`. */
async function oursWorker(args) {
  const { BackgroundEngine } = require('..')
  let ran = 0
  const e = await BackgroundEngine.open({ store: { postgres: DATABASE_URL, schema: args.schema }, concurrency: args.concurrency }, (engine) =>
    engine.registerCallable(QUEUE, async () => {
      ran++
    }),
  )
  const report = setInterval(() => {
    if (ran > 0) {
      process.send({ ran })
      ran = 0
    }
  }, 10)
  process.on('message', async (m) => {
    if (m !== 'stop') return
    clearInterval(report)
    await e.shutdown()
    if (ran > 0) process.send({ ran })
    process.disconnect()
  })
  process.send({ ready: true })
}

function competitor(impl, args) {
  if (impl === 'graphile-worker') return graphileWorker
  if (impl === 'pg-boss') return pgBossImpl({ workers: args.workers, batch: args.batch })
  if (impl === 'pg-1' || impl === 'pg') return oursImpl({ processes: 1 })
  if (impl === 'pg-2') return oursImpl({ processes: 2 })
  throw new Error(`no competitor ${impl}`)
}

// ---------------------------------------------------------------------------
// throughput

async function enqueueAll(producer, n, chunk) {
  let added = 0
  for (let at = 0; at < n; at += chunk) added += await producer.add(Math.min(chunk, n - at))
  return added
}

/** One half of a throughput run in a fresh schema: 'e2e' (workers from the start) or 'processing' (all enqueued first). */
async function throughputHalf(lib, mode, n, chunk) {
  const schema = freshSchemaName()
  try {
    await lib.prepare(schema)
    const producer = await lib.producer(schema)
    let ran = 0
    let failed = null
    const allRan = gate()
    const onJob = () => {
      if (++ran === n) allRan.open()
    }
    const onError = (err) => {
      failed = failed || err
      allRan.open()
    }
    let out
    if (mode === 'e2e') {
      const workers = await lib.startWorkers(schema, onJob, onError)
      const probe = lagProbe()
      const t0 = now()
      const added = await enqueueAll(producer, n, chunk)
      await allRan.promise
      if (!failed) await untilNoneLeft(() => lib.remaining(schema))
      const ms = now() - t0
      const lag = probe.stop()
      await workers.stop()
      expectCount('jobs enqueued', added, n)
      out = { jobsPerSec: n / (ms / 1000), ms, ...lag }
    } else {
      const e0 = now()
      const added = await enqueueAll(producer, n, chunk)
      const enqueueMs = now() - e0
      expectCount('jobs enqueued', added, n)
      expectCount('jobs waiting before the workers start', await lib.remaining(schema), n)
      const t0 = now()
      const workers = await lib.startWorkers(schema, onJob, onError)
      await allRan.promise
      if (!failed) await untilNoneLeft(() => lib.remaining(schema))
      const ms = now() - t0
      await workers.stop()
      out = { processJobsPerSec: n / (ms / 1000), processMs: ms, enqueueJobsPerSec: n / (enqueueMs / 1000) }
    }
    await producer.close()
    if (failed) throw failed
    expectCount('handler invocations', ran, n)
    return out
  } finally {
    await stopPgBoss(schema)
    await dropSchema(schema)
  }
}

async function competitorThroughput(impl, { n = 200_000, chunk = CHUNK, processing = impl === 'pg-1' || impl === 'pg-2' ? 0 : 1, ...rest }) {
  await dropStaleSchemas()
  const lib = competitor(impl, rest)
  const e2e = await throughputHalf(lib, 'e2e', n, chunk)
  log(`end to end: ${Math.round(e2e.jobsPerSec)} jobs/s`)
  const proc = processing ? await throughputHalf(lib, 'processing', n, chunk) : {}
  return { ...e2e, ...proc, n }
}

const throughput = {
  'pg-1': (args) => competitorThroughput('pg-1', args),
  'pg-2': (args) => competitorThroughput('pg-2', args),
  'graphile-worker': (args) => competitorThroughput('graphile-worker', args),
  'pg-boss': (args) => competitorThroughput('pg-boss', args),
  bullmq: (args) => require('./durable').bullmqThroughput({ n: 200_000, chunk: CHUNK, ...args }),
}

// ---------------------------------------------------------------------------
// pickup

/** Process B: the worker, reporting each job's start over IPC until told to stop. */
async function pickupWorker(args) {
  const lib = competitor(args.impl, args)
  const workers = await lib.startWorkers(
    args.schema,
    (payload) => process.send({ i: payload.i, startedAt: wall() }),
    (err) => process.send({ error: String(err && err.message ? err.message : err) }),
  )
  process.on('message', async (msg) => {
    if (msg !== 'stop') return
    await workers.stop()
    await stopPgBoss(args.schema)
    process.send({ stopped: true })
    process.disconnect()
  })
  process.send({ ready: true })
}

function startWorkerProcess(impl, schema, args) {
  const argv = [__filename, impl, '--part', 'pickup-worker', '--schema', schema]
  for (const key of ['workers', 'batch']) if (args[key] !== undefined) argv.push(`--${key}`, String(args[key]))
  const child = spawn(process.execPath, argv, { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] })
  const waiting = new Map() // i → resolve
  const ready = gate()
  const stopped = gate()
  let failure = null
  const fail = (err) => {
    failure = failure || err
    ready.open()
    for (const resolve of waiting.values()) resolve(null)
    waiting.clear()
  }
  child.on('message', (msg) => {
    if (msg.ready) ready.open()
    else if (msg.stopped) stopped.open()
    else if (msg.error) fail(new Error(`worker process: ${msg.error}`))
    else {
      const resolve = waiting.get(msg.i)
      if (resolve) {
        waiting.delete(msg.i)
        resolve(msg.startedAt)
      }
    }
  })
  child.on('exit', (code, signal) => {
    stopped.open()
    if (code !== 0 && code !== null) fail(new Error(`worker process exited ${code}`))
    if (signal) fail(new Error(`worker process killed by ${signal}`))
  })
  return {
    ready: ready.promise,
    failure: () => failure,
    /** Resolves with the wall-clock start of job i (null on failure). */
    started: (i) => new Promise((resolve) => (failure ? resolve(null) : waiting.set(i, resolve))),
    async stop() {
      if (child.exitCode === null && child.connected) child.send('stop')
      const timer = setTimeout(() => child.kill('SIGKILL'), 10_000)
      await stopped.promise
      await new Promise((resolve) => (child.exitCode !== null || child.signalCode !== null ? resolve() : child.once('exit', resolve)))
      clearTimeout(timer)
    },
  }
}

async function competitorPickup(impl, { n = 1_000, warmup = 10, gapMs, seconds = 120, ...rest }) {
  await dropStaleSchemas()
  const lib = competitor(impl, rest)
  const gap = gapMs !== undefined ? gapMs : lib.defaultGapMs
  const schema = freshSchemaName()
  let worker = null
  try {
    await lib.prepare(schema)
    await stopPgBoss(schema) // process A keeps a producer-only instance below
    worker = startWorkerProcess(impl, schema, rest)
    await worker.ready
    if (worker.failure()) throw worker.failure()
    const producer = await lib.producer(schema, { workers: false })
    const samples = []
    const enqueueMs = []
    let t0 = now() // the --seconds budget starts after the warm-ups
    for (let i = 0; i < warmup + n; i++) {
      if (i === warmup) t0 = now()
      if (i > warmup && now() - t0 > seconds * 1000) break
      await sleepMs(Math.random() * gap)
      const started = worker.started(i)
      const enqueuedAt = wall()
      await producer.addOne({ i })
      const enqueued = wall()
      const startedAt = await started
      if (startedAt === null) throw worker.failure()
      if (i >= warmup) {
        samples.push(startedAt - enqueuedAt)
        enqueueMs.push(enqueued - enqueuedAt)
      }
    }
    await producer.close()
    await worker.stop()
    worker = null
    const ms = sortNumbers(samples)
    if (samples.length < n) log(`stopped after ${samples.length} of ${n} samples (--seconds ${seconds})`)
    return {
      p50Ms: quantile(ms, 0.5),
      p99Ms: quantile(ms, 0.99),
      maxMs: ms[ms.length - 1],
      minMs: ms[0],
      enqueueP50Ms: quantile(sortNumbers(enqueueMs), 0.5),
      samples: samples.length,
      gapMs: gap,
    }
  } finally {
    if (worker) await worker.stop()
    await stopPgBoss(schema)
    await dropSchema(schema)
  }
}

const pickup = {
  pg: (args) => competitorPickup('pg', args),
  'graphile-worker': (args) => competitorPickup('graphile-worker', args),
  'pg-boss': (args) => competitorPickup('pg-boss', args),
}

// ---------------------------------------------------------------------------
// cron at scale (ours only)
//   `--triggers` (1,000) per-second schedule triggers (`* * * * * *`) in a
//   fresh schema, run by `--engines` (3) worker engines, each in a process
//   of its own and each scheduling every trigger (a trigger's tick fires
//   once whichever engine gets there first: it is claimed per (trigger,
//   scheduledAt) in the fire's transaction). After `--seconds` (10) of
//   whole ticks (the first 2 s after the engines are up are left out) the
//   executions are read from the database: fires per (trigger, tick) —
//   duplicates (a tick fired more than once) and missed ticks — and
//   lateness: the fire's commit (queuedAt) and the job's start, each minus
//   the tick it was due for.

async function cronWorker(args) {
  const { BackgroundEngine } = require('..')
  const e = await BackgroundEngine.open({ store: { postgres: DATABASE_URL, schema: args.schema }, concurrency: 2_000 }, (engine) =>
    engine.registerCallable('tick', async () => {}),
  )
  e.on('engine.diagnostic', (d) => log(`diagnostic: ${d.source} ${d.code} ${d.message}`))
  process.on('message', async (m) => {
    if (m !== 'stop') return
    await e.shutdown({ timeoutMs: 5_000 })
    process.disconnect()
  })
  process.send({ ready: true })
}

async function oursCron({ triggers = 1_000, engines = 3, seconds = 10 }) {
  await dropStaleSchemas()
  const { BackgroundEngine } = require('..')
  const schema = freshSchemaName()
  const children = []
  try {
    // Registered by an engine that then leaves: only the workers schedule.
    const admin = await BackgroundEngine.open({ store: { postgres: DATABASE_URL, schema } }, (e) => e.registerCallable('tick', async () => {}))
    for (let i = 0; i < triggers; i += 100) {
      const batch = []
      for (let k = i; k < Math.min(triggers, i + 100); k++) {
        batch.push(
          admin.registerTrigger({ tenantId: 'bench', name: `every-second-${k}`, type: 'schedule', condition: { cronExpression: '* * * * * *' }, action: { callableName: 'tick' } }),
        )
      }
      await Promise.all(batch)
    }
    await admin.shutdown()
    for (let w = 0; w < engines; w++) {
      const child = spawn(process.execPath, [__filename, 'pg', '--part', 'cron-worker', '--schema', schema], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] })
      const ready = gate()
      child.on('message', (m) => m.ready && ready.open())
      child.on('exit', () => ready.open())
      children.push({ child, ready })
    }
    await Promise.all(children.map((c) => c.ready.promise))
    const from = Math.ceil(Date.now() / 1000) * 1000 + 2_000
    const to = from + seconds * 1000
    await sleepMs(to - Date.now() + 1_500)
    await Promise.all(
      children.map(
        ({ child }) =>
          new Promise((resolve) => {
            if (child.exitCode !== null) return resolve()
            child.once('exit', resolve)
            child.send('stop')
          }),
      ),
    )
    const { rows } = await adminQuery(
      `SELECT trigger_source::json->>'scheduledAt' AS due, queued_ns, started_at, body::json->>'triggerId' AS trigger FROM "${schema}".executions`,
    )
    const perTick = new Map()
    const fireLate = []
    const startLate = []
    for (const r of rows) {
      const due = Date.parse(r.due)
      if (!(due >= from && due < to)) continue
      const key = `${r.trigger}@${due}`
      perTick.set(key, (perTick.get(key) || 0) + 1)
      fireLate.push(Number(BigInt(r.queued_ns) / 1000n) / 1000 - due)
      if (r.started_at) startLate.push(Date.parse(r.started_at) - due)
    }
    const expected = triggers * seconds
    let duplicates = 0
    for (const c of perTick.values()) duplicates += c - 1
    const fl = sortNumbers(fireLate)
    const sl = sortNumbers(startLate)
    return {
      expected,
      fired: perTick.size,
      missed: expected - perTick.size,
      duplicates,
      fireP50Ms: quantile(fl, 0.5),
      fireP99Ms: quantile(fl, 0.99),
      startP50Ms: quantile(sl, 0.5),
      startP99Ms: quantile(sl, 0.99),
      startMaxMs: sl[sl.length - 1],
    }
  } finally {
    for (const { child } of children) if (child.exitCode === null) child.kill('SIGKILL')
    await dropSchema(schema)
  }
}

const cron = { pg: (args) => oursCron(args) }

// ---------------------------------------------------------------------------

const PARTS = { throughput, pickup, cron }
const args = parseArgs()
if (args.part === 'cron-worker') {
  cronWorker(args).catch((err) => {
    log(err && err.stack ? err.stack : err)
    process.exit(1)
  })
} else if (args.part === 'ours-worker') {
  oursWorker(args).catch((err) => {
    log(err && err.stack ? err.stack : err)
    process.exit(1)
  })
} else if (args.part === 'pickup-worker') {
  pickupWorker(args).catch((err) => {
    log(err && err.stack ? err.stack : err)
    if (process.connected) process.send({ error: String(err && err.message ? err.message : err) })
    process.exitCode = 1
    setTimeout(() => process.exit(1), 1_000).unref()
  })
} else {
  const part = PARTS[args.part]
  if (part === undefined) {
    console.log(JSON.stringify({ ok: false, error: `--part: expected one of ${Object.keys(PARTS).join(', ')}, got ${args.part}` }))
    process.exitCode = 2
  } else runChild(part)
}
