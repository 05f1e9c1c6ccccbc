// Issue 10 item 3: values nested far deeper than any stack, through every
// entry point that takes an object. Before, such a value crossed napi as a
// JS object that Rust read by recursion, and ~9,000 levels overflowed the
// Rust stack: SIGSEGV, which no catch_unwind catches. Now every object
// crosses as JSON text whose depth is bounded (lib/args.js, validate.rs):
// each call answers a coded error naming the argument. The calls run in a
// child process (fixtures/deep-arguments.js), so that a crash shows as its
// exit signal instead of killing Jest.
const { spawnSync } = require('node:child_process')
const path = require('node:path')

const SCRIPT = path.join(__dirname, 'fixtures', 'deep-arguments.js')

/** The entries the script reports, by name, for values `depth` levels deep. */
function run(depth) {
  const child = spawnSync(process.execPath, [SCRIPT, String(depth)], { encoding: 'utf8', timeout: 120_000 })
  expect({ signal: child.signal, status: child.status, stderr: child.stderr }).toEqual({ signal: null, status: 0, stderr: '' })
  return JSON.parse(child.stdout)
}

const REFUSED = {
  engineOptions: ['ENACT_INVALID_EXECUTION', 'store'],
  callableOptions: ['ENACT_INVALID_EXECUTION', 'options.concurrency'],
  definitionCondition: ['ENACT_INVALID_TRIGGER', 'condition'],
  definitionInput: ['ENACT_INVALID_TRIGGER', 'action'],
  definitionMetadata: ['ENACT_INVALID_TRIGGER', 'description'],
  patch: ['ENACT_INVALID_TRIGGER', 'patch.action'],
  firePayload: ['ENACT_INVALID_TRIGGER', 'payload'],
  fireArrayPayload: ['ENACT_INVALID_TRIGGER', 'payload'],
  webhookHeaders: ['ENACT_INVALID_TRIGGER', 'request.headers.x-deep'],
  listTriggersFilter: ['ENACT_INVALID_TRIGGER', 'filter.tenantId'],
  listExecutionsFilter: ['ENACT_INVALID_EXECUTION', 'filter.tenantId'],
  webhookHandlerOptions: ['ENACT_INVALID_TRIGGER', 'options.maxBodyBytes'],
  emitData: ['ENACT_INVALID_TRIGGER', 'event'],
  emitBatch: ['ENACT_INVALID_TRIGGER', 'events'],
  reportMetric: ['ENACT_INVALID_TRIGGER', 'metric'],
  submitConfig: ['ENACT_INVALID_EXECUTION', 'config.retry'],
  submitInput: ['ENACT_INVALID_EXECUTION', 'request'],
  shutdownOptions: ['ENACT_INVALID_EXECUTION', 'timeoutMs'],
}

// 9,000 levels crashed the process before; 100,000 is past what
// JSON.stringify itself can write (it reports a RangeError, coded here);
// 200 is written by JS and refused by Rust's bounded reader.
describe.each([9_000, 100_000, 200])('values %i levels deep', (depth) => {
  let out
  beforeAll(() => {
    out = run(depth)
  })

  test.each(Object.keys(REFUSED))('%s is refused with a coded error naming the field', (name) => {
    const [code, field] = REFUSED[name]
    expect(out[name].ok).toBe(false)
    expect(out[name].code).toBe(code)
    expect(out[name].message).toMatch(new RegExp(`^${field.replace(/\./g, '\\.')}: (nested deeper than 127 levels|cannot be sent as JSON \\(Maximum call stack size exceeded\\))$`))
  })

  test('a deep request fails alone: the request batched with it is queued', () => {
    expect(out.submitNeighbour).toEqual({ ok: true, value: 'object' })
  })

  test('a webhook body is bytes: deep JSON is delivered as the request, not read as nesting', () => {
    expect(out.webhookBodyText).toEqual({ ok: true, value: 'object' })
    if (depth === 200) expect(out.webhookBodyObject).toEqual({ ok: true, value: 'object' })
    else expect(out.webhookBodyObject).toMatchObject({ ok: false, code: 'ENACT_INVALID_TRIGGER', message: expect.stringMatching(/^request\.body: cannot be sent as JSON/) })
  })

  test('a callable whose result nests too deeply fails its own execution', () => {
    for (const name of ['deepOutput', 'deepArrayOutput']) {
      expect(out[name].status).toBe('failed')
      expect(out[name].message).toMatch(/^callable returned a value that (cannot be stored: output: nested deeper than 127 levels|is not JSON-serializable: Maximum call stack size exceeded)$/)
    }
  })
})

test('127 levels is the limit, in JS and in Rust alike', async () => {
  const { BackgroundEngine } = require('..')
  const deep = (n) => {
    let v = {}
    for (let i = 1; i < n; i++) v = { a: v }
    return v
  }
  const e = new BackgroundEngine()
  try {
    e.registerCallable('echo', async (ctx) => ctx.triggerSource)
    const base = { tenantId: 't', name: 'm', type: 'manual', action: { callableName: 'echo' } }
    // `action.input` sits 2 levels down: 125 more is 127 in all.
    await expect(e.registerTrigger({ ...base, action: { callableName: 'echo', input: deep(125) } })).rejects.toThrow(/input: expected a string/)
    await expect(e.registerTrigger({ ...base, action: { callableName: 'echo', input: deep(126) } })).rejects.toThrow('action: nested deeper than 127 levels')
    const t = await e.registerTrigger(base)
    const fired = await e.fire(t.triggerId, deep(127))
    const done = await e.wait(fired.executionId)
    expect(done.status).toBe('completed')
    await expect(e.fire(t.triggerId, deep(128))).rejects.toThrow('payload: nested deeper than 127 levels')
  } finally {
    await e.shutdown()
  }
})
