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
    expect(pkg.scripts.prepare).toBe('node scripts/check-rust.js && npm run build')
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

  test('scripts/check-rust.js fails, saying what is missing, when cargo is not on PATH', () => {
    let err
    try {
      execFileSync(process.execPath, [path.join(root, 'scripts/check-rust.js')], { env: { ...process.env, PATH: '/nonexistent' }, encoding: 'utf8', stdio: 'pipe' })
    } catch (e) {
      err = e
    }
    expect(err && err.status).toBe(1)
    expect(err.stderr).toMatch(/^enact-background: building from source needs a Rust toolchain \(`cargo` on PATH/)
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
