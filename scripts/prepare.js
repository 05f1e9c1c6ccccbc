// @ts-check
'use strict'
// `prepare`: npm runs it on a repository `npm install`, before packing an
// install from git (with devDependencies installed), and in the directory of
// an `npm install <dir>` (which links the directory, without installing its
// devDependencies). It builds the addon from source with the `build` script's
// napi command, and when it cannot, says why instead of `napi: not found`:
// - no Rust toolchain (cargo) or no napi CLI (devDependencies not installed),
//   but this platform's binary is already built here: keep it, with a note;
// - no Rust toolchain and no binary: fail, naming what is missing;
// - no napi CLI and no binary: fail, saying to run `npm install` in the
//   directory first.
const fs = require('fs')
const path = require('path')
const { spawnSync } = require('child_process')

const root = path.join(__dirname, '..')
const pkg = JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8'))

/** @returns {string} this platform's binary name, as napi build writes it */
function binaryFile() {
  const { platform, arch } = process
  let suffix = `${platform}-${arch}`
  if (platform === 'win32') suffix = `win32-${arch}-msvc`
  if (platform === 'linux') {
    const glibc = Boolean(/** @type {any} */ (process.report?.getReport())?.header?.glibcVersionRuntime)
    suffix = arch === 'arm' ? `linux-arm-${glibc ? 'gnueabihf' : 'musleabihf'}` : `linux-${arch}-${glibc ? 'gnu' : 'musl'}`
  }
  return `${pkg.napi.binaryName}.${suffix}.node`
}

/** @returns {string | null} the napi CLI's entry, or null when the devDependencies are not installed */
function napiCli() {
  try {
    const manifest = require.resolve('@napi-rs/cli/package.json', { paths: [root] })
    const { bin } = JSON.parse(fs.readFileSync(manifest, 'utf8'))
    return path.join(path.dirname(manifest), typeof bin === 'string' ? bin : bin.napi)
  } catch {
    return null
  }
}

const built = fs.existsSync(path.join(root, binaryFile()))
const cargo = spawnSync('cargo', ['--version'], { encoding: 'utf8' })
const hasCargo = !cargo.error && cargo.status === 0
const cli = napiCli()

if (!hasCargo || !cli) {
  const missing = !hasCargo ? 'no Rust toolchain (`cargo` on PATH; see https://rustup.rs)' : `the devDependencies are not installed in ${root} (no @napi-rs/cli)`
  if (built) {
    console.warn(`enact-background: not rebuilding the native addon: ${missing}; keeping the built ${binaryFile()}.`)
    process.exit(0)
  }
  console.error(
    `enact-background: building from source needs a Rust toolchain and the devDependencies: ${missing}.\n` +
      (!hasCargo
        ? 'Install Rust, or install the published package, which ships prebuilt binaries (linux-x64-gnu) as optional dependencies.'
        : `Run \`npm install\` in ${root} first (it builds the addon), then install the directory.`),
  )
  process.exit(1)
}

// The build script's own napi command, so that `npm run build` stays the one
// place that says how the addon is built.
const [tool, ...args] = String(pkg.scripts.build).split(/\s+/)
if (tool !== 'napi') throw new Error(`package.json scripts.build: expected a napi command, got ${pkg.scripts.build}`)
const r = spawnSync(process.execPath, [cli, ...args], { cwd: root, stdio: 'inherit' })
process.exit(r.status ?? 1)
