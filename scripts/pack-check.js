// @ts-check
'use strict'
// `npm run pack-check` (run by CI): proves the published shape installs and
// runs without Rust. Stages and packs the main package and the linux-x64-gnu
// platform package (scripts/release.js), checks the tarballs (contents,
// publint, @arethetypeswrong/cli), installs both into a fresh temporary
// project, dependency-free otherwise, with npm as a user would (install
// scripts enabled) and with no Rust toolchain on PATH, then runs a CommonJS
// program and an ES module program with node, examples/esm.mts with tsx, and
// type-checks TypeScript programs against the installed package under
// `module: nodenext`. Needs the addon built (`npm run build`); exits non-zero,
// saying what failed, on the first failure.

const fs = require('fs')
const os = require('os')
const path = require('path')
const { spawnSync } = require('child_process')
const { stageAndPack } = require('./release')

const root = path.join(__dirname, '..')
const started = Date.now()
const keep = process.argv.includes('--keep')

/** @param {string} msg */
function step(msg) {
  console.log(`[pack-check +${((Date.now() - started) / 1000).toFixed(1)}s] ${msg}`)
}

/** @param {string} msg @returns {never} */
function fail(msg) {
  console.error(`pack-check: FAILED: ${msg}`)
  process.exit(1)
}

/**
 * Runs a command; fails the check (with its output) unless it exits 0.
 * @param {string} cmd
 * @param {string[]} args
 * @param {{ cwd: string, env?: NodeJS.ProcessEnv }} opts
 * @returns {string} stdout
 */
function run(cmd, args, { cwd, env = process.env }) {
  const r = spawnSync(cmd, args, { cwd, env, encoding: 'utf8', timeout: 120_000 })
  if (r.error || r.status !== 0) {
    fail(`${cmd} ${args.join(' ')} (in ${cwd}) ${r.error ? r.error.message : `exited ${r.status}`}\n${r.stdout}\n${r.stderr}`)
  }
  return r.stdout
}

// ---------------------------------------------------------------------------
// An environment without Rust: PATH without any directory holding cargo or
// rustc (~/.cargo/bin, rustup's, a system toolchain), no cargo/rustup
// variables; and as a user's shell has it: without the node_modules/.bin
// directories `npm run` puts first (the repository's holds napi) and no npm_*
// variables inherited from `npm run` (such as npm_config_ignore_scripts).
const rustless = ['cargo', 'rustc', 'rustup']
const cargoHome = process.env.CARGO_HOME || path.join(os.homedir(), '.cargo')
const pathDirs = (process.env.PATH || '').split(path.delimiter).filter((dir) => {
  if (!dir || path.resolve(dir) === path.join(cargoHome, 'bin')) return false
  if (/node_modules[\\/]\.bin$|node-gyp-bin$/.test(dir)) return false
  return !rustless.some((tool) => fs.existsSync(path.join(dir, tool)))
})
/** @type {NodeJS.ProcessEnv} */
const env = {}
for (const [k, v] of Object.entries(process.env)) {
  if (/^(npm_|CARGO|RUSTUP|RUSTC|RUSTFLAGS)/i.test(k)) continue
  env[k] = v
}
env.PATH = pathDirs.join(path.delimiter)
env.npm_config_audit = 'false'
env.npm_config_fund = 'false'
env.npm_config_update_notifier = 'false'
const found = spawnSync('sh', ['-c', [...rustless, 'napi'].map((t) => `command -v ${t}`).join('; ')], { env, encoding: 'utf8' })
if (found.stdout.trim() !== '') fail(`a Rust tool (or napi) is still reachable on the install PATH: ${found.stdout.trim()}`)
for (const tool of ['node', 'npm']) {
  const r = spawnSync('sh', ['-c', `command -v ${tool}`], { env, encoding: 'utf8' })
  if (r.status !== 0) fail(`${tool} is not on the Rust-free PATH (${env.PATH}); it sits next to cargo or rustc`)
}
step(`install PATH has no cargo, rustc, rustup or napi: ${env.PATH}`)

// ---------------------------------------------------------------------------
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'enact-pack-check-'))
try {
  const dist = path.join(tmp, 'dist')
  fs.mkdirSync(dist)
  const { main, platforms, manifest } = stageAndPack(dist)
  const platform = platforms.find((t) => path.basename(t).startsWith('enact-background-linux-x64-gnu-'))
  if (!platform) fail(`no linux-x64-gnu platform tarball among ${platforms.join(', ')}`)
  step(`packed ${path.basename(main)} and ${platforms.map((t) => path.basename(t)).join(', ')}`)

  // What ships where.
  for (const s of ['preinstall', 'install', 'postinstall', 'prepare']) {
    if (manifest.scripts?.[s]) fail(`the published package.json has a "${s}" script`)
  }
  const listing = (/** @type {string} */ t) => run('tar', ['-tzf', t], { cwd: tmp }).split('\n').filter(Boolean).map((f) => f.replace(/^package\//, ''))
  const mainFiles = listing(main)
  for (const need of ['index.js', 'index.mjs', 'index.d.ts', 'index.d.mts', 'binding.js', 'binding.d.ts', 'lib/native.js', 'lib/engine.js', 'lib/dashboard/index.html', 'lib/dashboard/app.js', 'lib/dashboard/app.css', 'package.json', 'README.md']) {
    if (!mainFiles.includes(need)) fail(`the main package does not ship ${need}`)
  }
  const stray = mainFiles.filter((f) => /\.node$|\.rs$|^Cargo\.|^src\/|^crates\/|^__test__\/|^npm\/|^scripts\/|^bench\/|^docs\//.test(f))
  if (stray.length) fail(`the main package ships ${stray.join(', ')}`)
  const platformFiles = listing(platform).sort()
  const wantPlatform = ['README.md', 'enact-background.linux-x64-gnu.node', 'package.json']
  if (JSON.stringify(platformFiles) !== JSON.stringify(wantPlatform)) fail(`the platform package ships ${platformFiles.join(', ')}, expected ${wantPlatform.join(', ')}`)
  if (manifest.optionalDependencies?.['enact-background-linux-x64-gnu'] !== manifest.version) {
    fail(`the main package's optionalDependencies do not name enact-background-linux-x64-gnu@${manifest.version}: ${JSON.stringify(manifest.optionalDependencies)}`)
  }
  step(`contents: main ${mainFiles.length} files, no binary, no install script; platform ${platformFiles.join(', ')}`)

  const bin = (/** @type {string} */ pkg, /** @type {string} */ file) => path.join(root, 'node_modules', pkg, file)
  for (const t of [main, platform]) run(process.execPath, [bin('publint', 'src/cli.js'), 'run', t, '--strict'], { cwd: tmp })
  step('publint --strict: no errors or warnings (main and platform package)')
  run(process.execPath, [bin('@arethetypeswrong/cli', 'dist/index.js'), main, '--format', 'ascii'], { cwd: tmp })
  step('@arethetypeswrong/cli: no problems under node10, node16 (CJS and ESM) and bundler')

  // ---------------------------------------------------------------------------
  const app = path.join(tmp, 'app')
  fs.mkdirSync(app)
  fs.writeFileSync(path.join(app, 'package.json'), JSON.stringify({ name: 'enact-pack-check-app', version: '1.0.0', private: true }, null, 2))
  run('npm', ['install', main, platform], { cwd: app, env })
  const installed = fs.readdirSync(path.join(app, 'node_modules')).filter((d) => !d.startsWith('.')).sort()
  if (JSON.stringify(installed) !== JSON.stringify(['enact-background', 'enact-background-linux-x64-gnu'])) fail(`the app's node_modules holds ${installed.join(', ')}`)
  step('npm install of both tarballs (scripts enabled, no Rust on PATH) succeeded')

  const program = `
    const engine = new BackgroundEngine({ concurrency: 2 })
    engine.registerCallable('greet', async (ctx) => 'hello ' + ctx.input)
    const done = await engine.submit({ tenantId: 't', callableName: 'greet', input: KIND, config: { mode: 'silent' } })
    const binary = Object.keys(req.cache).find((k) => k.endsWith('.node'))
    console.log(KIND + ': ' + done.status + ' ' + applyTransform(done.output, 'truncate', 9) + ' ' + ErrorCodes.includes('ENACT_NOT_FOUND') + ' ' + path.relative(process.cwd(), binary))
    await engine.shutdown({ timeoutMs: 5000 })`
  fs.writeFileSync(
    path.join(app, 'cjs.cjs'),
    `'use strict'\nconst path = require('path')\nconst req = require\nconst KIND = 'cjs'\nconst { BackgroundEngine, applyTransform, ErrorCodes } = require('enact-background')\n;(async () => {${program}\n})().catch((e) => { console.error(e); process.exit(1) })\n`,
  )
  fs.writeFileSync(
    path.join(app, 'esm.mjs'),
    `import path from 'node:path'\nimport { createRequire } from 'node:module'\nimport { BackgroundEngine, applyTransform, ErrorCodes } from 'enact-background'\nconst req = createRequire(import.meta.url)\nconst KIND = 'esm'\n${program}\n`,
  )
  const binaryAt = path.join('node_modules', 'enact-background-linux-x64-gnu', 'enact-background.linux-x64-gnu.node')
  for (const [file, kind] of [['cjs.cjs', 'cjs'], ['esm.mjs', 'esm']]) {
    const out = run('node', [file], { cwd: app, env }).trim()
    const want = `${kind}: completed hello ${kind} true ${binaryAt}`
    if (out !== want) fail(`node ${file} printed ${JSON.stringify(out)}, expected ${JSON.stringify(want)}`)
  }
  step(`node ran a CommonJS and an ES module program; both loaded ${binaryAt}`)

  // The dashboard's page is read from the installed package's files.
  const page = run(
    'node',
    [
      '-e',
      "const { BackgroundEngine } = require('enact-background'); const e = new BackgroundEngine(); const h = e.dashboardFetchHandler();" +
        "Promise.all(['/', '/app.js', '/app.css'].map((p) => h(new Request('http://x' + p)).then((r) => r.status + ' ' + r.headers.get('content-type').split(';')[0])))" +
        ".then(async (s) => { console.log(s.join(', ')); await e.shutdown() })",
    ],
    { cwd: app, env },
  ).trim()
  if (page !== '200 text/html, 200 text/javascript, 200 text/css') fail(`the installed package's dashboard answered ${JSON.stringify(page)}`)
  step(`the installed package serves its dashboard page: ${page}`)

  fs.copyFileSync(path.join(root, 'examples', 'esm.mts'), path.join(app, 'esm.mts'))
  const tsxOut = run('node', [bin('tsx', 'dist/cli.mjs'), 'esm.mts'], { cwd: app, env }).trim()
  if (!/^esm: completed "hello esm" \(\d+ error codes\)$/.test(tsxOut)) fail(`tsx esm.mts printed ${JSON.stringify(tsxOut)}`)
  step(`tsx ran examples/esm.mts: ${tsxOut}`)

  // TypeScript against the installed package, as a user's project sees it:
  // an ES module (esm.mts: import condition, index.d.mts) and a CommonJS one
  // (cjs.cts: require condition, index.d.ts), under module nodenext.
  fs.writeFileSync(
    path.join(app, 'cjs.cts'),
    `import { BackgroundEngine, applyTransform, ErrorCodes, type ErrorCode } from 'enact-background'\nimport enact = require('enact-background')\nconst engine: enact.BackgroundEngine = new BackgroundEngine()\nconst code: ErrorCode | undefined = ErrorCodes[0]\nconsole.log(applyTransform('a', 'none'), code, engine instanceof enact.BackgroundEngine)\n`,
  )
  fs.writeFileSync(
    path.join(app, 'tsconfig.json'),
    JSON.stringify({
      compilerOptions: { target: 'ES2022', module: 'nodenext', moduleResolution: 'nodenext', strict: true, noEmit: true, skipLibCheck: false, types: ['node'], typeRoots: [path.join(root, 'node_modules', '@types')] },
      files: ['esm.mts', 'cjs.cts'],
    }),
  )
  run('node', [require.resolve('typescript/bin/tsc'), '-p', 'tsconfig.json'], { cwd: app, env })
  step('tsc (module nodenext) type-checks an ES module and a CommonJS TypeScript program against the installed package')
  step('ok')
} finally {
  if (keep) console.log(`kept ${tmp}`)
  else fs.rmSync(tmp, { recursive: true, force: true })
}
