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

test('`npm start` demo fires one trigger of each type, binds every result and exits on its own', () => {
  // execFileSync throws on a non-zero exit or when the demo outlives the timeout.
  const out = execFileSync(process.execPath, [path.join(root, 'examples/demo.js')], { cwd: root, encoding: 'utf8', timeout: 15_000 })
  for (const type of ['event', 'lifecycle', 'schedule', 'threshold', 'webhook', 'manual']) {
    expect(out).toMatch(new RegExp(`fired +${type} `))
  }
  expect(out).toMatch(/signed POST +-> 202 /)
  expect(out).toMatch(/forged POST +-> 401 /)
  expect(out).toMatch(/schedule +Heartbeat +status fired +fired 3x/)
  expect(out).toMatch(/threshold +Queue too deep +status active +fired 2x/)
  expect(out).toMatch(/Executions: 10 completed, 0 failed/)
  expect((out.match(/ bound /g) || []).length).toBe(10)
})
