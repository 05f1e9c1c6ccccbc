const { execFileSync } = require('child_process')
const path = require('path')

const root = path.join(__dirname, '..')

test('npm run typecheck: the examples, index.js and lib/ type-check against index.d.ts (module commonjs)', () => {
  const tsc = require.resolve('typescript/bin/tsc')
  // Throws (failing the test) with tsc's diagnostics when a type does not fit.
  execFileSync(process.execPath, [tsc, '-p', path.join(root, 'tsconfig.json')], { cwd: root, stdio: 'pipe' })
})

test('npm run typecheck: the examples type-check under module nodenext, importing through package.json exports (index.d.ts, index.d.mts)', () => {
  const tsc = require.resolve('typescript/bin/tsc')
  execFileSync(process.execPath, [tsc, '-p', path.join(root, 'tsconfig.nodenext.json')], { cwd: root, stdio: 'pipe' })
  expect(require('../package.json').scripts.typecheck).toBe('tsc -p tsconfig.json && tsc -p tsconfig.nodenext.json')
})

test('examples/esm.mts runs as an ES module with tsx', () => {
  // --tsconfig: the default tsconfig.json maps 'enact-background' to index.d.ts
  // for the commonjs type-check; tsx would follow that path at run time.
  const out = execFileSync(process.execPath, [require.resolve('tsx/cli'), '--tsconfig', 'tsconfig.nodenext.json', 'examples/esm.mts'], { cwd: root, encoding: 'utf8', timeout: 15_000 })
  expect(out.trim()).toBe(`esm: completed "hello esm" (${require('..').ErrorCodes.length} error codes)`)
})

const fs = require('fs')
const os = require('os')
const { spawn } = require('child_process')

const demoDirs = []
afterAll(() => {
  for (const d of demoDirs) fs.rmSync(d, { recursive: true, force: true })
})
/** A path for the demo's SQLite file in a fresh temporary directory. */
function demoFile() {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'enact-demo-'))
  demoDirs.push(dir)
  return path.join(dir, 'demo.db')
}
function runDemo(file, env = {}) {
  // execFileSync throws on a non-zero exit or when the demo outlives the timeout.
  return execFileSync(process.execPath, [path.join(root, 'examples/demo.js'), file], { cwd: root, encoding: 'utf8', timeout: 15_000, env: { ...process.env, ...env } })
}

test('`npm start` demo fires one trigger of each type, binds every result, runs its reports and exits on its own', () => {
  const out = runDemo(demoFile())
  expect(out).toMatch(/store +\S+demo\.db: new; recovery: requeued 0, failed 0/)
  for (const type of ['event', 'lifecycle', 'schedule', 'threshold', 'webhook', 'manual']) {
    expect(out).toMatch(new RegExp(`fired +${type} `))
  }
  expect(out).toMatch(/signed POST +-> 202 /)
  expect(out).toMatch(/forged POST +-> 401 /)
  expect(out).toMatch(/schedule +Heartbeat +status fired +fired 3x/)
  expect(out).toMatch(/threshold +Queue too deep +status active +fired 2x/)
  expect(out).toMatch(/work +6 reports: 0 already completed, 6 to run/)
  expect(out).toMatch(/work +reports: 6\/6 completed/)
  expect(out).toMatch(/Executions in demo\.db: 16 completed, 0 failed/)
  expect((out.match(/ bound /g) || []).length).toBe(10)
})

// The same demo over PostgreSQL (`--postgres`), in a schema of its own.
const pgTest = process.env.DATABASE_URL ? test : test.skip
if (!process.env.DATABASE_URL) console.warn('!!! DATABASE_URL is not set: the demo over PostgreSQL (examples.test.js) did NOT run.')
pgTest('`npm start -- --postgres` runs the same demo over PostgreSQL and exits on its own', async () => {
  const schema = `jd_${process.pid}`
  const { Client } = require('pg')
  const admin = new Client({ connectionString: process.env.DATABASE_URL })
  await admin.connect()
  try {
    const out = execFileSync(process.execPath, [path.join(root, 'examples/demo.js'), '--postgres', process.env.DATABASE_URL], {
      cwd: root,
      encoding: 'utf8',
      timeout: 15_000,
      env: { ...process.env, ENACT_DEMO_SCHEMA: schema },
    })
    expect(out).toMatch(new RegExp(`store +schema ${schema}: new; work of dead engines is taken back when its lease expires`))
    expect(out).toMatch(/work +reports: 6\/6 completed/)
    expect(out).toMatch(/schedule +Heartbeat +status fired +fired 3x/)
    expect(out).toMatch(new RegExp(`Executions in schema ${schema}: 16 completed, 0 failed`))
    expect((out.match(/ bound /g) || []).length).toBe(10)
  } finally {
    await admin.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`)
    await admin.end()
  }
})

test('`npm start` demo killed mid-work (SIGKILL) and run again on its file: same triggers and counts, the interrupted reports re-queued and completed', async () => {
  const file = demoFile()
  // First run: reports that take a minute, so two are running when the
  // demo is killed, once every trigger it drives has fired and bound.
  const first = spawn(process.execPath, [path.join(root, 'examples/demo.js'), file], { cwd: root, env: { ...process.env, ENACT_DEMO_REPORT_MS: '60000' } })
  let out = ''
  const exited = new Promise((resolve) => first.on('exit', (code, signal) => resolve({ code, signal })))
  await new Promise((resolve, reject) => {
    const ready = () =>
      /exec_demo_report_q1 started/.test(out) &&
      /exec_demo_report_q2 started/.test(out) &&
      /bound +custom:finance\.inbox/.test(out) &&
      /bound +execution\.summary/.test(out)
    first.stdout.on('data', (d) => {
      out += d
      if (ready()) resolve(undefined)
    })
    first.stderr.on('data', (d) => (out += d))
    exited.then(() => reject(new Error(`the demo exited before it was killed:\n${out}`)))
  })
  first.kill('SIGKILL')
  expect(await exited).toEqual({ code: null, signal: 'SIGKILL' })
  expect(out).not.toMatch(/exec_demo_report_q\d completed/)

  // Second run, fast reports: it reopens the file, shows what it kept and
  // finishes the work.
  const again = runDemo(file, { ENACT_DEMO_REPORT_MS: '20' })
  const recovered = again.match(/store +\S+demo\.db: reopened; recovery: requeued (\d+), failed 0/)
  expect(recovered).not.toBeNull()
  expect(Number(recovered[1])).toBeGreaterThanOrEqual(2) // q1 and q2, maybe a trigger's execution too
  const kept = again.slice(again.indexOf('Triggers kept from the last run:'), again.indexOf('Work the last run left unfinished'))
  expect(kept).toMatch(/event +Big orders +status active +fired 1x/)
  expect(kept).toMatch(/lifecycle +Welcome +status active +fired 1x/)
  expect(kept).toMatch(/schedule +Heartbeat +status \w+ +fired [0-3]x/)
  expect(kept).toMatch(/threshold +Queue too deep +status active +fired 2x/)
  expect(kept).toMatch(/webhook +Payments +status active +fired 1x/)
  expect(kept).toMatch(/event +After payments +status active +fired 1x/)
  expect(kept).toMatch(/manual +Nightly report +status active +fired 1x/)
  // How many are still unfinished when listed depends on how fast the
  // re-queued ones (started as the store opened) run: not asserted.
  expect(again).toMatch(/Work the last run left unfinished, queued or running again: \d+/)
  // The two that were running ran again (their second attempt), the others once.
  for (const q of ['q1', 'q2']) expect(again).toMatch(new RegExp(`exec_demo_report_${q} completed: "report ${q}: done on attempt 2"`))
  for (const q of ['q3', 'q4', 'q5', 'q6']) expect(again).toMatch(new RegExp(`exec_demo_report_${q} completed: "report ${q}: done on attempt 1"`))
  expect(again).toMatch(/work +reports: 6\/6 completed/)
  // The same triggers, counting on from the first run's counts.
  expect(again).toMatch(/threshold +Queue too deep +status active +fired 4x/)
  expect(again).toMatch(/manual +Nightly report +status active +fired 2x/)
  expect(again).toMatch(/schedule +Heartbeat +status fired +fired 3x/)
  expect(again).toMatch(/Executions in demo\.db: \d+ completed, 0 failed/)
}, 30_000)
