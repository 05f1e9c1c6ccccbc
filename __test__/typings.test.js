const { execFileSync } = require('child_process')
const path = require('path')

test('the README example type-checks against the generated index.d.ts', () => {
  const root = path.join(__dirname, '..')
  const tsc = require.resolve('typescript/bin/tsc')
  // Throws (failing the test) with tsc's diagnostics when a type does not fit.
  execFileSync(process.execPath, [tsc, '-p', path.join(root, 'tsconfig.json')], { cwd: root, stdio: 'pipe' })
})
