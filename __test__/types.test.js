// The typings carry what the user knows: a `Callables` registry types
// callables, submissions, triggers and records; `on()` is typed per event;
// TriggerDefinition is a union on `type`. The .ts files in __test__/types/
// hold what must compile and, marked `@ts-expect-error`, what must not: if
// the typings loosen, a directive goes unused and tsc fails. The registry
// is augmented in one program and absent in the other (an augmentation
// applies to the whole program).
const { execFileSync } = require('child_process')
const fs = require('fs')
const os = require('os')
const path = require('path')

const root = path.join(__dirname, '..')
const tsc = require.resolve('typescript/bin/tsc')

/** tsc's diagnostics for a project (empty when it type-checks). */
function typecheck(project) {
  try {
    execFileSync(process.execPath, [tsc, '-p', project, '--noEmit', '--strict'], { cwd: root, encoding: 'utf8', stdio: 'pipe' })
    return ''
  } catch (err) {
    return `${err.stdout}${err.stderr}` || String(err)
  }
}

test('with a Callables registry: inputs, outputs, events, trigger definitions and errors are checked', () => {
  expect(typecheck(path.join(__dirname, 'types/registry/tsconfig.json'))).toBe('')
})

test('without a registry: names are strings, inputs strings, outputs unknown', () => {
  expect(typecheck(path.join(__dirname, 'types/loose/tsconfig.json'))).toBe('')
})

test('the harness reports what does not compile (a wrong input, an unused @ts-expect-error)', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'enact-types-'))
  try {
    const config = JSON.parse(fs.readFileSync(path.join(__dirname, 'types/loose/tsconfig.json'), 'utf8'))
    config.compilerOptions.paths = { 'enact-background': [path.join(root, 'index.d.ts')] }
    config.compilerOptions.typeRoots = [path.join(root, 'node_modules/@types')]
    config.files = ['wrong.ts']
    fs.writeFileSync(path.join(dir, 'tsconfig.json'), JSON.stringify(config))
    fs.writeFileSync(
      path.join(dir, 'wrong.ts'),
      [
        "import { BackgroundEngine } from 'enact-background'",
        'declare const engine: BackgroundEngine',
        "engine.submit({ tenantId: 't', callableName: 'x', input: 1 })",
        '// @ts-expect-error: compiles, so the directive is unused',
        "engine.on('trigger.fired', (ev) => ev.executionId)",
      ].join('\n'),
    )
    const out = typecheck(path.join(dir, 'tsconfig.json'))
    expect(out).toMatch(/wrong\.ts\(3,\d+\): error TS2322/)
    expect(out).toMatch(/wrong\.ts\(4,1\): error TS2578: Unused '@ts-expect-error' directive/)
  } finally {
    fs.rmSync(dir, { recursive: true, force: true })
  }
})
