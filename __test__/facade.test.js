// The package's surface: the facade class is the public API, index.d.ts
// declares exactly its methods, error codes come from Rust once, and no
// hidden accessor reaches the native engine.
const fs = require('fs')
const path = require('path')
const ts = require('typescript')
const pkg = require('..')
const { engine } = require('./helpers')

const root = path.join(__dirname, '..')

/** Member names of a declaration in index.d.ts: `class` methods or `type` union members. */
function declared() {
  const source = ts.createSourceFile('index.d.ts', fs.readFileSync(path.join(root, 'index.d.ts'), 'utf8'), ts.ScriptTarget.Latest, true)
  const out = { methods: new Set(), statics: new Set(), symbols: new Set(), errorCodes: [], exports: new Set() }
  for (const node of source.statements) {
    if (ts.isClassDeclaration(node)) out.exports.add(node.name.text)
    if (ts.isClassDeclaration(node) && node.name.text === 'BackgroundEngine') {
      for (const m of node.members) {
        if (!ts.isMethodDeclaration(m)) continue
        // `[Symbol.asyncDispose]()`: a well-known symbol, checked apart.
        if (ts.isComputedPropertyName(m.name)) {
          out.symbols.add(m.name.expression.getText())
          continue
        }
        const isStatic = (m.modifiers || []).some((x) => x.kind === ts.SyntaxKind.StaticKeyword)
        ;(isStatic ? out.statics : out.methods).add(m.name.text)
      }
    }
    if (ts.isTypeAliasDeclaration(node) && node.name.text === 'ErrorCode') {
      out.errorCodes = node.type.types.map((t) => t.literal.text)
    }
    if (ts.isFunctionDeclaration(node)) out.exports.add(node.name.text)
    if (ts.isVariableStatement(node)) for (const d of node.declarationList.declarations) out.exports.add(d.name.text)
  }
  return out
}

test('index.d.ts declares exactly the public methods of the facade class', () => {
  const proto = pkg.BackgroundEngine.prototype
  const actual = Object.getOwnPropertyNames(proto).filter((n) => n !== 'constructor' && typeof Object.getOwnPropertyDescriptor(proto, n)?.value === 'function')
  const d = declared()
  expect([...d.methods].sort()).toEqual(actual.sort())
  const statics = Object.getOwnPropertyNames(pkg.BackgroundEngine).filter((n) => typeof pkg.BackgroundEngine[n] === 'function')
  expect([...d.statics].sort()).toEqual(statics.sort())
  const symbols = Object.getOwnPropertySymbols(proto).map((s) => (s === Symbol.for('nodejs.asyncDispose') ? 'Symbol.asyncDispose' : String(s)))
  expect([...d.symbols].sort()).toEqual(symbols.sort())
})

test('index.d.ts declares exactly what the package exports', () => {
  expect([...declared().exports].sort()).toEqual(Object.keys(pkg).sort())
})

test('ErrorCodes is the frozen list from Rust, and the ErrorCode union in index.d.ts matches it', () => {
  expect(Object.isFrozen(pkg.ErrorCodes)).toBe(true)
  expect(pkg.ErrorCodes).toContain('ENACT_INVALID_TRIGGER')
  expect(pkg.ErrorCodes).toContain('ENACT_BAD_REQUEST')
  expect(new Set(pkg.ErrorCodes).size).toBe(pkg.ErrorCodes.length)
  expect(declared().errorCodes).toEqual([...pkg.ErrorCodes])
})

test('no hidden accessor: the engine exposes its public methods and nothing else', () => {
  const e = engine()
  expect(Object.keys(e)).toEqual([])
  expect(e.__runtime).toBeUndefined()
  expect(Object.getOwnPropertySymbols(e)).toEqual([])
  expect(Object.getOwnPropertyNames(e)).toEqual([])
})

test('no JS source under lib/ spells out an error code: they come from Rust', () => {
  const files = fs.readdirSync(path.join(root, 'lib'), { recursive: true }).filter((f) => f.endsWith('.js'))
  expect(files).toContain(path.join('dashboard', 'api.js'))
  for (const file of files) {
    const text = fs.readFileSync(path.join(root, 'lib', file), 'utf8')
    // lib/native.js loads the binary, so the one code it throws when that
    // fails cannot come from Rust; the dashboard's API has two answers of
    // its own (403 and 501), never thrown. None may be one of Rust's.
    const own = {
      'native.js': ["'ENACT_NATIVE_LOAD'"],
      [path.join('dashboard', 'api.js')]: ["'ENACT_FORBIDDEN'"],
    }[file] ?? null
    expect({ file, codes: text.match(/['"]ENACT_[A-Z_]+['"]/g) }).toEqual({ file, codes: own })
  }
  for (const code of ['ENACT_NATIVE_LOAD', 'ENACT_FORBIDDEN']) expect(pkg.ErrorCodes).not.toContain(code)
})

test('methods a remote store must answer return Promises; their errors are rejections, never throws', async () => {
  const e = engine()
  const calls = {
    registerTrigger: () => e.registerTrigger({ tenantId: 't', type: 'nope', action: { callableName: 'x' } }),
    getTrigger: () => e.getTrigger('trigger_missing'),
    listTriggers: () => e.listTriggers({ type: 'nope' }),
    updateTrigger: () => e.updateTrigger('trigger_missing', {}),
    pauseTrigger: () => e.pauseTrigger('trigger_missing'),
    resumeTrigger: () => e.resumeTrigger('trigger_missing'),
    disableTrigger: () => e.disableTrigger('trigger_missing'),
    removeTrigger: () => e.removeTrigger('trigger_missing'),
    listExecutions: () => e.listExecutions({ status: 'nope' }),
  }
  for (const [name, call] of Object.entries(calls)) {
    let p
    expect(() => (p = call())).not.toThrow()
    expect({ name, isPromise: p instanceof Promise }).toEqual({ name, isPromise: true })
    const err = await p.then(() => null, (x) => x)
    expect({ name, code: err && typeof err.code }).toEqual({ name, code: 'string' })
  }
  expect(e.getExecution('exec_missing')).toBeInstanceOf(Promise)
  expect(await e.getExecution('exec_missing')).toBeNull()
  expect(e.stats()).toBeInstanceOf(Promise)
  expect(await e.stats()).toMatchObject({ queued: 0, concurrency: 16 })
})

test('wait() right after submit() sees the submission without a round trip through JS', async () => {
  const e = engine()
  e.registerCallable('echo', async (ctx) => ctx.input)
  const submitted = e.submit({ tenantId: 't', callableName: 'echo', input: 'x', executionId: 'exec_now' })
  // The submission is still held in JS (it goes to Rust at the microtask):
  // wait() hands it over itself before asking Rust.
  const done = e.wait('exec_now')
  expect((await done).output).toBe('x')
  expect((await submitted).executionId).toBe('exec_now')
})
