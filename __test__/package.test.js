// Issue 11: how the package installs and what it exposes to CommonJS and ES
// module users. The packed packages themselves are installed and run without
// Rust by `npm run pack-check` (scripts/pack-check.js, run by CI).
const fs = require('fs')
const path = require('path')
const { execFileSync } = require('child_process')

const root = path.join(__dirname, '..')
const pkg = require('../package.json')

/** Runs an ES module snippet in a fresh node with cwd at the repository root. */
function esm(code) {
  return execFileSync(process.execPath, ['--input-type=module', '-e', code], { cwd: root, encoding: 'utf8' })
}

describe('ES modules and CommonJS', () => {
  test('index.mjs exports exactly what index.js exports, the same objects', () => {
    const cjs = require('..')
    const names = JSON.parse(esm("import * as m from './index.mjs'; console.log(JSON.stringify(Object.keys(m)))"))
    expect(names.sort()).toEqual(Object.keys(cjs).sort())
    expect(names.length).toBeGreaterThanOrEqual(3)
    // One instance for both: no dual-package hazard.
    const same = esm(
      "import { createRequire } from 'node:module'; import * as m from './index.mjs';" +
        "const cjs = createRequire(import.meta.url)('./index.js');" +
        'console.log(Object.keys(cjs).every((k) => m[k] === cjs[k]))',
    )
    expect(same.trim()).toBe('true')
  })

  test("import { BackgroundEngine } from 'enact-background' resolves through exports to the ES module entry and runs", () => {
    const out = esm(
      "import { BackgroundEngine, applyTransform } from 'enact-background';" +
        "const e = new BackgroundEngine(); e.registerCallable('f', async (ctx) => 'got ' + ctx.input);" +
        "const r = await e.submit({ tenantId: 't', callableName: 'f', input: 'x', config: { mode: 'silent' } });" +
        "console.log(r.status, r.output, applyTransform('a\\nb', 'first_line'), import.meta.resolve('enact-background').split('/').pop()); await e.shutdown()",
    )
    expect(out.trim()).toBe('completed got x a index.mjs')
  })

  test('exports: import and require conditions, each with its types first, every target shipped by files', () => {
    expect(pkg.type).toBe('commonjs')
    expect(pkg.exports['.']).toEqual({
      import: { types: './index.d.mts', default: './index.mjs' },
      require: { types: './index.d.ts', default: './index.js' },
    })
    expect(Object.keys(pkg.exports['.'].import)[0]).toBe('types')
    expect(Object.keys(pkg.exports['.'].require)[0]).toBe('types')
    for (const cond of Object.values(pkg.exports['.'])) {
      for (const target of Object.values(cond)) {
        const rel = target.replace(/^\.\//, '')
        expect(fs.existsSync(path.join(root, rel))).toBe(true)
        expect(pkg.files).toContain(rel)
      }
    }
    expect(pkg.main).toBe('index.js')
    expect(pkg.types).toBe('index.d.ts')
  })
})

describe('install', () => {
  test('no install-time script needs the devDependencies; prepare builds from source in the repository and from git', () => {
    for (const s of ['preinstall', 'install', 'postinstall']) expect(pkg.scripts[s]).toBeUndefined()
    expect(pkg.scripts.prepare).toBe('node scripts/prepare.js')
    expect(pkg.scripts.build).toMatch(/^napi build --platform --release /)
  })

  test('the repository lists no optionalDependencies (the platform packages are added when staged for publishing)', () => {
    expect(pkg.optionalDependencies).toBeUndefined()
  })

  test('npm/linux-x64-gnu is the platform package napi-rs names: same version, os/cpu/libc, the one .node', () => {
    const plat = require('../npm/linux-x64-gnu/package.json')
    expect(plat).toMatchObject({
      name: 'enact-background-linux-x64-gnu',
      version: pkg.version,
      os: ['linux'],
      cpu: ['x64'],
      libc: ['glibc'],
      main: 'enact-background.linux-x64-gnu.node',
      files: ['enact-background.linux-x64-gnu.node'],
    })
    expect(pkg.napi.targets).toEqual(['x86_64-unknown-linux-gnu'])
    expect(fs.readdirSync(path.join(root, 'npm'))).toEqual(['linux-x64-gnu'])
  })

  describe('scripts/prepare.js (prepare), run from a copy without devDependencies or a built binary', () => {
    const os = require('os')
    let dir
    beforeEach(() => {
      dir = fs.mkdtempSync(path.join(os.tmpdir(), 'enact-prepare-'))
      fs.mkdirSync(path.join(dir, 'scripts'))
      fs.mkdirSync(path.join(dir, 'bin'))
      fs.copyFileSync(path.join(root, 'scripts/prepare.js'), path.join(dir, 'scripts/prepare.js'))
      fs.copyFileSync(path.join(root, 'package.json'), path.join(dir, 'package.json'))
    })
    afterEach(() => fs.rmSync(dir, { recursive: true, force: true }))
    /** Runs the copy with PATH = only dir/bin (plus a fake cargo when asked). */
    function prepare({ cargo = false } = {}) {
      if (cargo) fs.writeFileSync(path.join(dir, 'bin/cargo'), '#!/bin/sh\necho cargo 1.0.0\n', { mode: 0o755 })
      return require('child_process').spawnSync(process.execPath, [path.join(dir, 'scripts/prepare.js')], { env: { ...process.env, PATH: path.join(dir, 'bin') }, encoding: 'utf8' })
    }
    const binary = () => {
      const { platform, arch } = process
      const glibc = platform === 'linux' && Boolean(process.report.getReport().header.glibcVersionRuntime)
      const suffix = platform === 'linux' ? `linux-${arch}-${glibc ? 'gnu' : 'musl'}` : platform === 'win32' ? `win32-${arch}-msvc` : `${platform}-${arch}`
      return `enact-background.${suffix}.node`
    }

    test('no cargo and no binary: fails, saying a Rust toolchain is needed and the published package needs none', () => {
      const r = prepare()
      expect(r.status).toBe(1)
      expect(r.stderr).toMatch(/^enact-background: building from source needs a Rust toolchain and the devDependencies: no Rust toolchain \(`cargo` on PATH/)
      expect(r.stderr).toMatch(/install the published package, which ships prebuilt binaries/)
    })

    test('cargo but no devDependencies (npm install <dir> of a fresh clone): fails, saying to run npm install there first', () => {
      const r = prepare({ cargo: true })
      expect(r.status).toBe(1)
      expect(r.stderr).toContain(`the devDependencies are not installed in ${dir} (no @napi-rs/cli)`)
      expect(r.stderr).toContain(`Run \`npm install\` in ${dir} first`)
    })

    test('a binary already built and nothing to rebuild it with: keeps it, with a note', () => {
      fs.writeFileSync(path.join(dir, binary()), '')
      const r = prepare()
      expect(r.status).toBe(0)
      expect(r.stderr).toBe(`enact-background: not rebuilding the native addon: no Rust toolchain (\`cargo\` on PATH; see https://rustup.rs); keeping the built ${binary()}.\n`)
    })
  })

  test('`npm publish` from the repository is refused (prepublishOnly); release.js stages the packages instead', () => {
    let err
    try {
      execFileSync(process.execPath, [path.join(root, 'scripts/release.js'), '--refuse-publish'], { encoding: 'utf8', stdio: 'pipe' })
    } catch (e) {
      err = e
    }
    expect(pkg.scripts.prepublishOnly).toBe('node scripts/release.js --refuse-publish')
    expect(err && err.status).toBe(1)
    expect(err.stderr).toMatch(/npm run release -- --publish/)
  })
})
