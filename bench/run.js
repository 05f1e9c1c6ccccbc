'use strict'
// Orchestrates the benchmark suite (issue 4): runs every implementation of
// every benchmark as a fresh child process (`node --expose-gc bench/<file>
// <impl> --arg value …`), several times, interleaved (run 1 of each
// implementation, then run 2, …) so slow drifts of the machine hit all sides
// alike. Each child prints one JSON line. Prints a markdown report and
// writes it to BENCHMARKS.md (a full run) or bench/last-partial.md (--quick
// or --only). Exits non-zero if any run failed.
//
//   node bench/run.js [--runs 5] [--only <benchmark>] [--quick] [--out FILE]
//
// Before each child it waits while a Rust build runs on this machine (the
// addon is rebuilt now and then, and a build would steal one of the two
// cores), and it notes when the addon file changed during the suite.
//
// The durable benchmarks (issue 12) compare with BullMQ and plainjob, the
// PostgreSQL benchmarks (issue 13) with graphile-worker and pg-boss; these
// belong to the benchmark alone: bench/package.json (with its lockfile).
// Before the first benchmark that needs them, run.js checks bench/node_modules
// holds exactly those versions (every dependency listed there, so new ones
// are covered without touching this file) with a loadable better-sqlite3, and runs
// `npm ci` in bench/ when it does not (better-sqlite3 builds from source
// where its prebuilt binaries cannot be downloaded: npm_config_nodedir=/usr
// when Node's headers are there). The root `npm install` never installs them.

const { spawn, spawnSync, execFileSync } = require('node:child_process')
const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')
const { parseArgs, quantile, sortNumbers, sleep } = require('./lib')
const { BENCHES, TARGETS } = require('./suite')

const ROOT = path.join(__dirname, '..')
/** A child still running after this is killed as hung; a benchmark may allow more (`timeoutMin`). */
const CHILD_TIMEOUT_MS = 15 * 60_000
const opts = parseArgs(['-', ...process.argv.slice(2)])
/** Runs per implementation: --runs, else the benchmark's own `runs`, else 5. */
const runsOf = (bench) => (opts.runs !== undefined ? opts.runs : bench.runs || 5)
const QUICK = opts.quick === true
const notes = []

function say(...args) {
  console.error('[bench]', ...args)
}

// ---------------------------------------------------------------------------
// The machine: builds in progress, the addon under test

function buildRunning() {
  // cargo/rustc by exact process name (not by command line: other processes'
  // environments mention ~/.cargo), napi build by command line.
  const probes = [['-x', 'cargo'], ['-x', 'rustc'], ['-f', 'napi build']]
  return probes.some((args) => {
    try {
      execFileSync('pgrep', args, { stdio: 'ignore' })
      return true
    } catch {
      return false // pgrep exits 1 when nothing matches
    }
  })
}

async function waitForQuiet() {
  if (!buildRunning()) return 0
  const t0 = Date.now()
  say('a Rust build is running; waiting for it to finish before the next run')
  while (buildRunning() && Date.now() - t0 < 30 * 60_000) await sleep(5000)
  await sleep(2000) // let the new .node file settle
  return Date.now() - t0
}

function addonFiles() {
  return fs.readdirSync(ROOT).filter((f) => f.endsWith('.node'))
}

function addonFingerprint() {
  return addonFiles().map((f) => {
    const st = fs.statSync(path.join(ROOT, f))
    return `${f} ${(st.size / 2 ** 20).toFixed(1)} MiB, built ${st.mtime.toISOString()}`
  }).join('; ') || 'no .node file'
}

/**
 * True when most of a .node file is DWARF (.debug* ELF sections): a debug
 * build (`napi build` without --release), unoptimized and not what users
 * get. A release build here has none.
 */
function addonIsDebugBuild() {
  return addonFiles().some((f) => {
    try {
      const b = fs.readFileSync(path.join(ROOT, f))
      const shoff = Number(b.readBigUInt64LE(0x28))
      const entsize = b.readUInt16LE(0x3a)
      const count = b.readUInt16LE(0x3c)
      const strtab = Number(b.readBigUInt64LE(shoff + b.readUInt16LE(0x3e) * entsize + 0x18))
      let debug = 0
      for (let i = 0; i < count; i++) {
        const at = shoff + i * entsize
        const nameAt = strtab + b.readUInt32LE(at)
        if (b.toString('latin1', nameAt, nameAt + 6) === '.debug') debug += Number(b.readBigUInt64LE(at + 0x20))
      }
      return debug > 0.3 * b.length
    } catch {
      return false // not a 64-bit ELF file: no opinion
    }
  })
}

function gitDescribe() {
  try {
    const head = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: ROOT, encoding: 'utf8' }).trim()
    const dirty = execFileSync('git', ['status', '--porcelain', '--', 'src', 'crates', 'Cargo.toml'], { cwd: ROOT, encoding: 'utf8' }).trim()
    return dirty ? `${head} + uncommitted changes in src/crates` : head
  } catch {
    return 'unknown'
  }
}

// ---------------------------------------------------------------------------
// The durable benchmarks' competitors (bench/package.json)

const BENCH_DIR = __dirname

/** What bench/node_modules lacks for bench/package.json: [] when all is there. */
function benchDepsMissing() {
  const wanted = JSON.parse(fs.readFileSync(path.join(BENCH_DIR, 'package.json'), 'utf8')).dependencies
  const missing = []
  for (const [name, version] of Object.entries(wanted)) {
    const have = pkgVersion(name, BENCH_DIR)
    if (have !== version) missing.push(`${name}@${version} (${have})`)
  }
  if (missing.length === 0) {
    // Installed but never built (or built for another Node): not usable.
    const probe = spawnSync(process.execPath, ['-e', "new (require('better-sqlite3'))(':memory:').close()"], { cwd: BENCH_DIR, stdio: 'ignore' })
    if (probe.status !== 0) missing.push('a loadable better-sqlite3 native addon')
  }
  return missing
}

let benchDepsChecked = false

/** Installs bench/package.json's dependencies (npm ci in bench/) unless already there. */
function ensureBenchDeps() {
  if (benchDepsChecked) return
  benchDepsChecked = true
  const missing = benchDepsMissing()
  if (missing.length === 0) return
  say(`bench/node_modules lacks ${missing.join(', ')}: running npm ci in bench/ (better-sqlite3 may build from source: minutes)`)
  // Not the npm config of an enclosing `npm run bench` (its local prefix is
  // the root package), but the user's npmrc as usual.
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !/^npm_(config|package|lifecycle)_/i.test(k)))
  if (process.env.npm_config_nodedir !== undefined) env.npm_config_nodedir = process.env.npm_config_nodedir
  else if (fs.existsSync('/usr/include/node/node.h')) env.npm_config_nodedir = '/usr'
  const t0 = Date.now()
  const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm'
  const res = spawnSync(npm, ['ci', '--prefix', BENCH_DIR, '--no-audit', '--no-fund'], { cwd: BENCH_DIR, env, stdio: ['ignore', 2, 2] })
  const still = res.status === 0 ? benchDepsMissing() : []
  if (res.status !== 0 || still.length > 0) {
    const why = res.status !== 0 ? `npm ci exited ${res.error ? res.error.message : res.status}` : `still missing ${still.join(', ')}`
    notes.push(`Installing the benchmarks' competitors (bench/package.json) failed: ${why}; their runs fail below.`)
    say(`installing bench/package.json failed: ${why}`)
  } else {
    notes.push(`The benchmarks' competitors (bench/package.json) were installed first (\`npm ci\` in bench/, ${((Date.now() - t0) / 1000).toFixed(0)} s).`)
    say(`bench/node_modules installed in ${((Date.now() - t0) / 1000).toFixed(0)} s`)
  }
}

// ---------------------------------------------------------------------------
// Running a child

function runChild(bench, impl) {
  // An implementation may run at other sizes (`implArgs`, full runs only).
  const args = QUICK ? bench.quick : { ...bench.args, ...(bench.implArgs && bench.implArgs[impl]) }
  const argv = ['--expose-gc', path.join(__dirname, bench.file), impl]
  if (bench.part !== undefined) argv.push('--part', bench.part)
  for (const [k, v] of Object.entries(args)) argv.push(`--${k}`, String(v))
  return new Promise((resolve) => {
    const t0 = Date.now()
    const child = spawn(process.execPath, argv, { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] })
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', (d) => (stdout += d))
    child.stderr.on('data', (d) => (stderr += d))
    const timeoutMs = bench.timeoutMin !== undefined ? bench.timeoutMin * 60_000 : CHILD_TIMEOUT_MS
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs)
    child.on('close', (code, signal) => {
      clearTimeout(timer)
      const ms = Date.now() - t0
      const line = stdout.trim().split('\n').filter((l) => l.startsWith('{')).pop()
      let result
      try {
        result = line ? JSON.parse(line) : null
      } catch {
        result = null
      }
      if (signal === 'SIGKILL' && ms >= timeoutMs) result = { ok: false, error: `hung: killed after ${timeoutMs / 60_000} min` }
      else if (result === null) result = { ok: false, error: `crashed (${signal ? `signal ${signal}` : `exit code ${code}`}) without a result: ${lastLines(stderr)}` }
      else if (result.ok && code !== 0) result = { ok: false, error: `exit code ${code} after printing a result: ${lastLines(stderr)}` }
      if (!result.ok) say(`${bench.name}/${impl} failed: ${result.error}\n${lastLines(stderr, 12)}`)
      resolve({ ...result, wallMs: ms })
    })
  })
}

function lastLines(text, n = 3) {
  const lines = text.trim().split('\n')
  // The thrown error's own line says more than the stack's tail.
  const error = lines.find((l) => /^(\w*Error|Error \[\w+\]|thread '.*' panicked)/.test(l.trim()))
  const tail = lines.slice(-n)
  return (error && !tail.includes(error) ? [error, '…', ...tail] : tail).join(' | ').slice(0, 2000)
}

// ---------------------------------------------------------------------------
// Aggregation and the report

function aggregate(bench, runs) {
  // runs: { impl: [result, …] }. Cross-implementation consistency first.
  for (const key of bench.same || []) {
    const values = new Set()
    for (const list of Object.values(runs)) for (const r of list) if (r.ok) values.add(r[key])
    if (values.size > 1) {
      const ref = bench.theirs.map((i) => runs[i]).flat().find((r) => r.ok)
      for (const list of Object.values(runs)) {
        for (const r of list) {
          if (r.ok && ref && r[key] !== ref[key]) Object.assign(r, { ok: false, error: `${key} ${r[key]} differs from the reference implementation's ${ref[key]}` })
        }
      }
    }
  }
  const out = {}
  for (const [impl, list] of Object.entries(runs)) {
    const ok = list.filter((r) => r.ok)
    const failed = list.filter((r) => !r.ok)
    const stats = {}
    for (const f of bench.figures) {
      // A figure an implementation does not report (BullMQ has no
      // processing-only rate in pg-throughput) is a dash, not NaN.
      const sorted = sortNumbers(ok.map((r) => r[f.key]).filter((v) => typeof v === 'number'))
      stats[f.key] = sorted.length ? { median: quantile(sorted, 0.5), min: sorted[0], max: sorted[sorted.length - 1] } : null
    }
    out[impl] = { runs: list.length, ok: ok.length, failed, errors: [...new Set(failed.map((r) => r.error))], stats }
  }
  return out
}

function num(x, digits) {
  if (x === null || x === undefined || Number.isNaN(x)) return '—'
  return x.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits })
}

const arrow = (f) => (f.better === 'higher' ? ' ↑' : f.better === 'lower' ? ' ↓' : '')

function benchTable(bench, agg) {
  const lines = []
  lines.push(`### ${bench.title}`, '', bench.what, '')
  const sizes = Object.entries(QUICK ? bench.quick : bench.args).map(([k, v]) => `${k}=${v}`).join(', ')
  lines.push(`Sizes: ${sizes}. Cells: median (min – max) of the successful runs; ↑ higher is better, ↓ lower is better.`, '')
  lines.push(`| implementation | runs ok | ${bench.figures.map((f) => f.label + arrow(f)).join(' | ')} |`)
  lines.push(`|---|---|${bench.figures.map(() => '---').join('|')}|`)
  for (const impl of [...bench.ours, ...bench.theirs]) {
    const a = agg[impl]
    const cells = bench.figures.map((f) => {
      const s = a.stats[f.key]
      if (s === null) return '—'
      return s.min === s.max ? num(s.median, f.digits) : `${num(s.median, f.digits)} (${num(s.min, f.digits)} – ${num(s.max, f.digits)})`
    })
    lines.push(`| ${bench.ours.includes(impl) ? `**${impl}**` : impl} | ${a.ok}/${a.runs} | ${cells.join(' | ')} |`)
  }
  const failures = Object.entries(agg).filter(([, a]) => a.errors.length)
  if (failures.length) {
    lines.push('')
    for (const [impl, a] of failures) lines.push(`- **${impl}: ${a.failed.length} of ${a.runs} runs failed**: ${a.errors.join('; ')}`)
  }
  const ratios = []
  for (const ours of bench.ours) {
    for (const theirs of bench.theirs) {
      for (const f of bench.figures.filter((x) => x.ratio)) {
        ratios.push(`| ${ours} / ${theirs} | ${f.label} | ${ratioCell(agg, ours, theirs, f)} |`)
      }
    }
  }
  if (ratios.length > 0) lines.push('', '| ratio (median ÷ median) | figure | ratio | reads as |', '|---|---|---|---|', ...ratios)
  return lines.join('\n')
}

function ratioCell(agg, ours, theirs, f) {
  const bad = [ours, theirs].filter((i) => agg[i].failed.length > 0)
  if (bad.length) return `— | not computed: ${bad.map((i) => `${i} had ${agg[i].failed.length} failed run(s)`).join(', ')}`
  const r = agg[ours].stats[f.key].median / agg[theirs].stats[f.key].median
  const meaning = f.better === 'higher' ? `higher is better: ours does ${num(r, 2)}× as much` : `lower is better: < 1 means ours is lower (better)`
  return `${num(r, r < 0.1 ? 4 : 2)}× | ${meaning}`
}

function medianOf(results) {
  return (bench, impl, key) => {
    const agg = results[bench]
    if (!agg) throw new Error(`${bench} not run`)
    const a = agg[impl]
    if (a.failed.length) throw new Error(`${bench}/${impl}: ${a.failed.length} failed run(s)`)
    return a.stats[key].median
  }
}

function targetsTable(results) {
  const m = medianOf(results)
  const lines = ['## Targets (issues 4 and 12)', '', '| target | status | measured (medians) |', '|---|---|---|']
  let met = 0
  for (const t of TARGETS) {
    let status
    let detail
    try {
      const r = t.check(m)
      status = r.met ? '**met**' : '**not met**'
      detail = r.detail
      if (r.met) met++
    } catch (err) {
      status = 'not measured'
      detail = err.message
    }
    lines.push(`| ${t.text} | ${status} | ${detail} |`)
  }
  lines.push('', `${met} of ${TARGETS.length} targets met.`)
  return lines.join('\n')
}

// ---------------------------------------------------------------------------

async function main() {
  const benches = opts.only ? BENCHES.filter((b) => b.name === opts.only || b.file === `${opts.only}.js`) : BENCHES
  if (benches.length === 0) throw new Error(`--only ${opts.only}: no such benchmark; known: ${BENCHES.map((b) => b.name).join(', ')}`)
  const command = `node bench/run.js ${process.argv.slice(2).join(' ')}`.trim()
  const started = new Date()
  const addonAtStart = addonFingerprint()
  if (addonIsDebugBuild()) notes.push('**The addon under test is a debug build (mostly DWARF, e.g. `napi build` without `--release`): its figures are not representative.** Build with `npm run build` first.')
  const commit = gitDescribe()
  say(`${command}: ${benches.map((b) => `${b.name} ×${runsOf(b)}`).join(', ')}${QUICK ? ' (quick sizes)' : ''}`)
  const fingerprints = new Set([addonAtStart])
  let waitedMs = 0
  const results = {}
  let anyFailed = false
  for (const bench of benches) {
    if (bench.needs === 'bench-deps') ensureBenchDeps()
    const impls = [...bench.ours, ...bench.theirs]
    const runs = Object.fromEntries(impls.map((i) => [i, []]))
    const RUNS = runsOf(bench)
    for (let r = 0; r < RUNS; r++) {
      for (const impl of impls) {
        waitedMs += await waitForQuiet()
        const before = addonFingerprint()
        fingerprints.add(before)
        let res = await runChild(bench, impl)
        if (!res.ok && (addonFingerprint() !== before || buildRunning())) {
          // Crashed while the addon was being rebuilt under it: run again.
          notes.push(`${bench.name}/${impl} run ${r + 1} failed while the addon was being rebuilt (${res.error}); it was run again.`)
          waitedMs += await waitForQuiet()
          fingerprints.add(addonFingerprint())
          res = await runChild(bench, impl)
        }
        runs[impl].push(res)
        say(`${bench.name} run ${r + 1}/${RUNS} ${impl}: ${res.ok ? bench.figures.map((f) => `${f.label} ${num(res[f.key], f.digits)}`).join(', ') : `FAILED ${res.error}`} (${(res.wallMs / 1000).toFixed(1)} s)`)
      }
    }
    results[bench.name] = aggregate(bench, runs)
    if (Object.values(results[bench.name]).some((a) => a.failed.length)) anyFailed = true
  }
  fingerprints.add(addonFingerprint())
  const minutes = (Date.now() - started.getTime()) / 60_000
  if (fingerprints.size > 1) notes.push(`The addon file changed during the suite (rebuilt by someone), so figures may mix builds: ${[...fingerprints].join(' → ')}.`)
  if (waitedMs > 0) notes.push(`Waited ${(waitedMs / 1000).toFixed(0)} s in all for Rust builds on this machine to finish before runs.`)

  const cpus = os.cpus()
  const report = [
    '# Benchmarks',
    '',
    'enact-background side by side with p-queue, croner, BullMQ, plainjob, graphile-worker, pg-boss and hand-written JS baselines, in the same run on the same machine (issues 4, 12 and 13). Each implementation runs as a fresh `node --expose-gc` child process; runs of the implementations are interleaved.',
    '',
    `- Date: ${started.toISOString()} (suite took ${minutes.toFixed(1)} min)`,
    `- Machine: ${cpus[0].model}, ${cpus.length} cores, ${(os.totalmem() / 2 ** 30).toFixed(1)} GiB RAM, ${os.type()} ${os.release()}`,
    `- Node ${process.version}; p-queue ${pkgVersion('p-queue')}; croner ${pkgVersion('croner')}${benches.some((b) => b.needs === 'bench-deps') ? `; bench/package.json: bullmq ${pkgVersion('bullmq', BENCH_DIR)}, ioredis ${pkgVersion('ioredis', BENCH_DIR)}, plainjob ${pkgVersion('plainjob', BENCH_DIR)}, better-sqlite3 ${pkgVersion('better-sqlite3', BENCH_DIR)}, graphile-worker ${pkgVersion('graphile-worker', BENCH_DIR)}, pg-boss ${pkgVersion('pg-boss', BENCH_DIR)}, pg ${pkgVersion('pg', BENCH_DIR)}${redisVersion()}${benches.some((b) => b.file === 'postgres.js') ? postgresVersion() : ''}` : ''}`,
    `- Addon: ${addonAtStart}; commit ${commit}`,
    `- Command: \`${command}\` (\`npm run bench\`), ${opts.runs !== undefined ? opts.runs : 5} runs per implementation${opts.runs === undefined && benches.some((b) => b.runs) ? ` (${benches.filter((b) => b.runs).map((b) => `${b.name}: ${b.runs}`).join(', ')})` : ''}${QUICK ? ', **quick sizes (smoke test, not comparable with the issue\'s figures)**' : ''}`,
    ...notes.map((n) => `- Note: ${n}`),
    '',
    '## Results',
    '',
    ...benches.map((b) => benchTable(b, results[b.name]) + '\n'),
    targetsTable(results),
    '',
    'How each figure is measured, and why it is fair, is written at the top of each `bench/<benchmark>.js`.',
    '',
  ].join('\n')

  process.stdout.write(report)
  const out = opts.out || (QUICK || opts.only ? path.join('bench', 'last-partial.md') : 'BENCHMARKS.md')
  fs.writeFileSync(path.join(ROOT, out), report)
  say(`wrote ${out} (${minutes.toFixed(1)} min)`)
  if (anyFailed) {
    say('some runs failed: see the tables')
    process.exitCode = 1
  }
}

function pkgVersion(name, dir = ROOT) {
  // Read the file directly: p-queue's exports map does not expose package.json.
  try {
    return JSON.parse(fs.readFileSync(path.join(dir, 'node_modules', name, 'package.json'), 'utf8')).version
  } catch {
    return 'not installed'
  }
}

/** `; Redis 7.0.15 on 127.0.0.1:6379 (AOF off, RDB snapshots off)` as the local server answers, or ''. */
function redisVersion() {
  const cli = (...args) => execFileSync('redis-cli', ['-h', '127.0.0.1', '-p', '6379', ...args], { encoding: 'utf8', timeout: 5000 })
  try {
    const version = (/redis_version:(\S+)/.exec(cli('info', 'server')) || [])[1]
    const aof = /aof_enabled:1/.test(cli('info', 'persistence'))
    const save = cli('config', 'get', 'save').trim().split('\n')[1] || ''
    return version ? `; Redis ${version} on 127.0.0.1:6379 (AOF ${aof ? 'on' : 'off'}, RDB snapshots ${save.trim() ? `"${save.trim()}"` : 'off'})` : ''
  } catch {
    return ''
  }
}

/** `; PostgreSQL 15.20 (synchronous_commit on)` as the server of DATABASE_URL (as bench/postgres.js uses it) answers, or ''. */
function postgresVersion() {
  const url = process.env.DATABASE_URL || 'postgres://root@127.0.0.1:5432/test'
  try {
    const out = execFileSync('psql', [url, '-Atc', 'show server_version; show synchronous_commit'], { encoding: 'utf8', timeout: 5000, stdio: ['ignore', 'pipe', 'ignore'] })
    const [version, sync] = out.trim().split('\n')
    return version ? `; PostgreSQL ${version.split(' ')[0]} (synchronous_commit ${sync})` : ''
  } catch {
    return ''
  }
}

main().catch((err) => {
  console.error(err)
  process.exit(2)
})
