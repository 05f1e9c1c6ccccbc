// @ts-check
'use strict'
// Stages and packs what is published, the way napi-rs packages ship
// (`napi prepublish`): one package per platform under npm/<platform>/ holding
// that platform's `.node`, and the main package without any binary, listing
// the platform packages as `optionalDependencies` at its own version. npm,
// pnpm, Yarn and Bun install the one matching the machine (by `os`, `cpu`,
// `libc`) and run no install script: the main package has none.
//
// Unlike `napi prepublish`, nothing in the repository is edited: the
// repository's package.json keeps no `optionalDependencies` (the platform
// packages are not on the registry before a release, and a repository
// `npm install` must not look for them) and keeps `prepare`, which builds from
// source on a repository install and on an install from git. The staged copy
// drops `scripts` (so `prepare` too) and `devDependencies`, and adds the
// optional dependencies.
//
//   node scripts/release.js [--out DIR]           stage and pack (default target/npm-release)
//   node scripts/release.js --publish [--dry-run] ... then `npm publish` the platform packages, then the main one
//   node scripts/release.js --refuse-publish      (prepublishOnly) refuse `npm publish` from the repository
//
// The `.node` files must be built first (`npm run build`); only the platforms
// whose binary is present here can be staged, and a platform directory whose
// binary is missing fails the release rather than publish a main package that
// names a platform package without a binary.

const fs = require('fs')
const path = require('path')
const { execFileSync } = require('child_process')

const root = path.join(__dirname, '..')
const npmCli = process.env.npm_execpath && /npm-cli\.js$/.test(process.env.npm_execpath) ? process.env.npm_execpath : null

/**
 * Runs npm with `args` in `cwd`; returns its stdout.
 * @param {string[]} args
 * @param {string} cwd
 * @param {NodeJS.ProcessEnv} [env]
 * @returns {string}
 */
function npm(args, cwd, env = process.env) {
  const [cmd, pre] = npmCli ? [process.execPath, [npmCli]] : ['npm', []]
  return execFileSync(cmd, [...pre, ...args], { cwd, env, encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] })
}

/**
 * @param {string} file
 * @returns {any}
 */
function readJson(file) {
  return JSON.parse(fs.readFileSync(file, 'utf8'))
}

/**
 * The files npm would pack from the repository (its `files`, plus
 * package.json and README), without running `prepare`.
 * @returns {string[]}
 */
function repoPackFiles() {
  const [report] = JSON.parse(npm(['pack', '--dry-run', '--json', '--ignore-scripts'], root))
  return report.files.map((/** @type {{ path: string }} */ f) => f.path)
}

/**
 * Stages the main package and each platform package under `outDir`.
 * @param {string} outDir emptied first
 * @returns {{ main: string, platforms: { dir: string, name: string }[], manifest: any }}
 */
function stage(outDir) {
  const pkg = readJson(path.join(root, 'package.json'))
  const binaryName = pkg.napi.binaryName
  fs.rmSync(outDir, { recursive: true, force: true })
  fs.mkdirSync(outDir, { recursive: true })

  /** @type {{ dir: string, name: string }[]} */
  const platforms = []
  /** @type {Record<string, string>} */
  const optionalDependencies = {}
  const npmDir = path.join(root, 'npm')
  for (const suffix of fs.readdirSync(npmDir).sort()) {
    const src = path.join(npmDir, suffix)
    const manifest = readJson(path.join(src, 'package.json'))
    const binary = `${binaryName}.${suffix}.node`
    const expect = { name: `${pkg.name}-${suffix}`, version: pkg.version, main: binary }
    for (const [field, value] of Object.entries(expect)) {
      if (manifest[field] !== value) {
        throw new Error(`npm/${suffix}/package.json: ${field} is ${JSON.stringify(manifest[field])}, expected ${JSON.stringify(value)}`)
      }
    }
    if (!Array.isArray(manifest.files) || !manifest.files.includes(binary)) throw new Error(`npm/${suffix}/package.json: files must list ${binary}`)
    for (const field of ['os', 'cpu']) {
      if (!Array.isArray(manifest[field]) || manifest[field].length === 0) throw new Error(`npm/${suffix}/package.json: ${field} must be set`)
    }
    const built = path.join(root, binary)
    if (!fs.existsSync(built)) throw new Error(`${binary}: not built; build it first (npm run build on that platform)`)
    const dir = path.join(outDir, suffix)
    fs.mkdirSync(dir)
    for (const f of fs.readdirSync(src)) fs.copyFileSync(path.join(src, f), path.join(dir, f))
    fs.copyFileSync(built, path.join(dir, binary))
    platforms.push({ dir, name: manifest.name })
    optionalDependencies[manifest.name] = pkg.version
  }

  const main = path.join(outDir, 'main')
  for (const rel of repoPackFiles()) {
    if (rel.endsWith('.node')) continue // the binaries ship in the platform packages
    fs.mkdirSync(path.dirname(path.join(main, rel)), { recursive: true })
    fs.copyFileSync(path.join(root, rel), path.join(main, rel))
  }
  const manifest = { ...pkg }
  delete manifest.scripts // `prepare` builds from source: only for the repository and git installs
  delete manifest.devDependencies
  delete manifest.jest
  manifest.files = pkg.files.filter((/** @type {string} */ f) => !f.endsWith('.node'))
  manifest.optionalDependencies = optionalDependencies
  fs.writeFileSync(path.join(main, 'package.json'), JSON.stringify(manifest, null, 2) + '\n')
  return { main, platforms, manifest }
}

/**
 * `npm pack` of a staged directory into `dest`; returns the tarball's path.
 * @param {string} dir
 * @param {string} dest
 * @returns {string}
 */
function pack(dir, dest) {
  const [report] = JSON.parse(npm(['pack', '--json', '--ignore-scripts', '--pack-destination', dest], dir))
  return path.join(dest, report.filename)
}

/**
 * Stages and packs everything into `outDir`.
 * @param {string} outDir
 * @returns {{ main: string, platforms: string[], manifest: any }} the tarballs and the staged main manifest
 */
function stageAndPack(outDir) {
  const staged = stage(path.join(outDir, 'staged'))
  return {
    platforms: staged.platforms.map((p) => pack(p.dir, outDir)),
    main: pack(staged.main, outDir),
    manifest: staged.manifest,
  }
}

module.exports = { stage, pack, stageAndPack }

if (require.main === module) {
  const args = process.argv.slice(2)
  if (args.includes('--refuse-publish')) {
    console.error(
      'enact-background: do not `npm publish` the repository (it would ship the binary inside the main package and no ' +
        'optional platform packages). Run `npm run release -- --publish`: it publishes npm/<platform>/ packages with ' +
        'their binaries, then the main package.',
    )
    process.exit(1)
  }
  const outAt = args.indexOf('--out')
  const outDir = path.resolve(outAt >= 0 ? args[outAt + 1] : path.join(root, 'target', 'npm-release'))
  const { main, platforms } = stageAndPack(outDir)
  for (const t of [...platforms, main]) console.log(t)
  if (args.includes('--publish')) {
    const dry = args.includes('--dry-run') ? ['--dry-run'] : []
    // Platform packages first, so the main package never names one that is
    // not yet on the registry.
    for (const t of [...platforms, main]) npm(['publish', t, '--access', 'public', ...dry], outDir)
  }
}
