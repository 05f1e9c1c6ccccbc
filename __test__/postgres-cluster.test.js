// Three engine processes and one producer over one PostgreSQL schema
// (issue 13): 20,000 executions submitted by the producer (this process,
// which serves no callable) are run by the three workers; one worker is
// killed with SIGKILL mid-run. Every execution ends completed; each ran
// exactly once, except those running on the killed worker, which the others
// take back once their lease expires (a stall) and run again.
//
// Without DATABASE_URL this test does not run, and says so loudly.
const fs = require('fs')
const os = require('os')
const path = require('path')
const { fork } = require('child_process')
const { Client } = require('pg')
const { BackgroundEngine } = require('..')
const { until } = require('./helpers')

const URL = process.env.DATABASE_URL
const pg = URL ? describe : describe.skip
if (!URL) console.warn('!!! DATABASE_URL is not set: the PostgreSQL cluster test (postgres-cluster.test.js) did NOT run.')

const N = 20_000
const LEASE_MS = 1_000
const schema = `jc_${process.pid}`
let dir
let admin

beforeAll(async () => {
  if (!URL) return
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'enact-pg-cluster-'))
  admin = new Client({ connectionString: URL })
  await admin.connect()
})
/** Every worker started, killed after the test whatever happened. */
const children = []
afterAll(async () => {
  if (!URL) return
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL')
  await admin.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`)
  await admin.end()
  fs.rmSync(dir, { recursive: true, force: true })
})

function worker(i, hangAfter) {
  const log = path.join(dir, `worker-${i}.log`)
  const args = [URL, schema, log, String(LEASE_MS), ...(hangAfter === undefined ? [] : [String(hangAfter)])]
  const child = fork(path.join(__dirname, 'fixtures', 'pg-worker.js'), args, { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] })
  children.push(child)
  const ready = new Promise((resolve, reject) => {
    child.once('message', (m) => (m === 'ready' ? resolve() : reject(new Error(String(m)))))
    child.once('exit', (code) => reject(new Error(`worker ${i} exited with ${code} before it was ready`)))
  })
  const holding = new Promise((resolve) => child.on('message', (m) => m === 'holding' && resolve()))
  const exited = new Promise((resolve) => child.once('exit', (code, signal) => resolve(signal || code)))
  return { child, log, ready, holding, exited }
}


pg('three engine processes, one database', () => {
  test('20,000 executions from one producer run by three workers, one killed with SIGKILL mid-run: none lost, each run once unless it was running at the kill', async () => {
    // The schema exists before the workers race to migrate it (they may: it is done once).
    const producer = await BackgroundEngine.open({ store: { postgres: URL, schema } })
    // The victim runs 500, then holds every run it starts (it is mid-run
    // for sure when it is killed).
    const workers = [worker(0, 500), worker(1), worker(2)]
    await Promise.all(workers.map((w) => w.ready))
    const ids = []
    for (let i = 0; i < N; i += 500) {
      const chunk = await Promise.all(Array.from({ length: Math.min(500, N - i) }, () => producer.submit({ tenantId: 't', callableName: 'work' })))
      for (const r of chunk) ids.push(r.executionId)
    }
    // Mid-run: the victim has completed 500 and holds what it started since.
    const victim = workers[0]
    await victim.holding
    victim.child.kill('SIGKILL')
    expect(await victim.exited).toBe('SIGKILL')
    const { rows: atKill } = await admin.query(`SELECT count(*)::int AS n FROM ${schema}.executions WHERE status = 1`)
    await until(async () => (await producer.stats()).completed === N, 120_000, `all ${N} to complete`)
    for (const w of workers.slice(1)) w.child.send('stop')
    await Promise.all(workers.slice(1).map((w) => w.exited))

    const { rows } = await admin.query(`SELECT id, status, attempt, stalls FROM ${schema}.executions`)
    expect(rows).toHaveLength(N)
    const byId = new Map(rows.map((r) => [r.id, r]))
    for (const id of ids) expect(byId.get(id)).toMatchObject({ status: 2 })
    // Runs per execution, from the workers' logs.
    const runs = new Map()
    workers.forEach((w, i) => {
      for (const line of fs.readFileSync(w.log, 'utf8').split('\n')) {
        if (line === '') continue
        const [id, attempt] = line.split(' ')
        if (!runs.has(id)) runs.set(id, [])
        runs.get(id).push({ worker: i, attempt: Number(attempt) })
      }
    })
    expect(runs.size).toBe(N)
    const stalled = rows.filter((r) => r.stalls > 0)
    expect(stalled.length).toBeGreaterThan(0) // the victim held work when it died
    for (const [id, list] of runs) {
      if (list.length === 1) continue
      // Run twice only if the victim was running it: its run (ended, but
      // not yet written when it died), then the rescue's.
      expect(list).toHaveLength(2)
      expect(list.some((r) => r.worker === 0)).toBe(true)
      expect(byId.get(id).stalls).toBe(1)
    }
    for (const r of stalled) expect(byId.get(r.id).attempt).toBe(2)
    const twice = [...runs.values()].filter((l) => l.length > 1).length
    console.log(`cluster: ${N} executions, ${atKill[0].n} running at the kill, ${stalled.length} stalled and re-run, ${twice} completed twice (each by the killed worker first)`)
    await producer.shutdown()
  }, 180_000)
})
