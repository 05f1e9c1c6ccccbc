// Issue 11, item 1: when no native binary loads, the error says which one is
// missing and how to get it (lib/native.js), instead of binding.js's blame of
// an npm optional-dependency bug. Each case requires a copy of the loader
// from a temporary directory, so the repository's built binary and the
// installed packages are out of reach.
const fs = require('fs')
const os = require('os')
const path = require('path')
const { execFileSync } = require('child_process')

const root = path.join(__dirname, '..')

/** The suffix napi-rs names this machine's binary and platform package by. */
function suffix() {
  const { platform, arch } = process
  if (platform === 'win32') return `win32-${arch}-msvc`
  if (platform !== 'linux') return `${platform}-${arch}`
  const glibc = Boolean(process.report.getReport().header.glibcVersionRuntime)
  return arch === 'arm' ? `linux-arm-${glibc ? 'gnueabihf' : 'musleabihf'}` : `linux-${arch}-${glibc ? 'gnu' : 'musl'}`
}

/**
 * Copies binding.js and lib/native.js into a fresh directory, with `extra`
 * files, and requires the copy of lib/native.js there.
 * @param {Record<string, string>} extra
 */
function loadCopy(extra = {}) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'enact-native-load-'))
  try {
    fs.mkdirSync(path.join(dir, 'lib'))
    fs.copyFileSync(path.join(root, 'binding.js'), path.join(dir, 'binding.js'))
    fs.copyFileSync(path.join(root, 'lib/native.js'), path.join(dir, 'lib/native.js'))
    for (const [name, text] of Object.entries(extra)) fs.writeFileSync(path.join(dir, name), text)
    try {
      require(path.join(dir, 'lib/native.js'))
    } catch (err) {
      return { err, dir }
    }
    throw new Error('the copied loader loaded a binary')
  } finally {
    fs.rmSync(dir, { recursive: true, force: true })
  }
}

describe('lib/native.js: a binary that does not load', () => {
  test('none anywhere: ENACT_NATIVE_LOAD naming the platform, the optional dependency and the build command', () => {
    const { err, dir } = loadCopy()
    const s = suffix()
    expect(err).toBeInstanceOf(Error)
    expect(err.code).toBe('ENACT_NATIVE_LOAD')
    expect(err.message).toBe(
      `enact-background: no prebuilt binary for ${s}; install the optional dependency enact-background-${s} ` +
        '(prebuilt binaries are published for linux-x64-gnu only; reinstall without --omit=optional / --no-optional), ' +
        'or build from source with a Rust toolchain: `npm run build` in a clone of the repository, or install enact-background from git (npm builds it then)',
    )
    expect(err.message).not.toMatch(/npm has a bug/)
    // binding.js's own error, with every place it looked, stays reachable.
    expect(err.cause).toBeInstanceOf(Error)
    expect(err.cause.message).toMatch(/^Cannot find native binding/)
  })

  test('one found that fails to load: says so and why, not that nothing is there', () => {
    const s = suffix()
    const { err } = loadCopy({ [`enact-background.${s}.node`]: 'not a shared object' })
    expect(err.code).toBe('ENACT_NATIVE_LOAD')
    expect(err.message).toMatch(
      new RegExp(`^enact-background: the native binary for ${s} \\(enact-background\\.${s}\\.node or enact-background-${s}\\) was found but could not be loaded: .+\\. Reinstall, or install the optional dependency`),
    )
    expect(err.message).toMatch(/npm run build/)
  })

  test('in a source checkout (Cargo.toml present), the build command names the checkout', () => {
    const { err, dir } = loadCopy({ 'Cargo.toml': '' })
    expect(err.code).toBe('ENACT_NATIVE_LOAD')
    expect(err.message).toMatch(new RegExp(`or build from source with a Rust toolchain: \`npm run build\` in ${dir.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}$`))
  })

  test('the package loads its natives only through lib/native.js', () => {
    const sources = ['index.js', ...fs.readdirSync(path.join(root, 'lib'), { recursive: true }).map((f) => `lib/${f}`)].filter((f) => f.endsWith('.js'))
    const direct = sources.filter((f) => f !== 'lib/native.js' && /require\(\s*['"][./]*binding(\.js)?['"]\s*\)/.test(fs.readFileSync(path.join(root, f), 'utf8')))
    expect(direct).toEqual([])
  })

  test('with the binary present, the natives load (in a fresh process)', () => {
    const out = execFileSync(process.execPath, ['-e', "const n = require('./lib/native'); console.log(typeof n.NativeEngine, typeof n.applyTransform)"], { cwd: root, encoding: 'utf8' })
    expect(out.trim()).toBe('function function')
  })
})
