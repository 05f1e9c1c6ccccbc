// The dashboard in a real browser (issue 14, part 7): headless Chromium
// (Debian's, driven by playwright-core; see scripts/chromium.js) opens the
// page of a running engine and is used as a person would: the lists show
// what the engine holds, a filter narrows them, a failed execution's error
// is shown, cancel and retry work through the page, a read-only dashboard
// refuses actions visibly, and hostile data stays text. Every wait is for
// a condition (a selector, a page state or the engine's state), never a
// fixed sleep. Without Chromium every test fails, saying how to install
// it (CI's .ci/run installs it).
const { launchChromium } = require('../scripts/chromium')
const { engine, listen, until, hangUntilAborted } = require('./helpers')

jest.setTimeout(30_000)

/** @type {Awaited<ReturnType<typeof launchChromium>>} */
let chromium
beforeAll(async () => {
  chromium = await launchChromium()
}, 60_000)
afterAll(async () => {
  await chromium?.close()
})

/** The page of the current test, and what its console said against the CSP or threw. */
let page
let problems
beforeEach(async () => {
  page = await chromium.context.newPage()
  problems = []
  page.on('console', (m) => {
    if (/Content.Security.Policy|Refused to/i.test(m.text())) problems.push(m.text())
  })
  page.on('pageerror', (err) => problems.push(`page error: ${err.message}`))
})
afterEach(async () => {
  await page?.close()
  expect(problems).toEqual([])
})

/**
 * An engine served under /enact; resolves with the engine and the URL of
 * the page (without the trailing slash: the page redirects to it).
 */
async function dashboard(options = {}) {
  const e = engine()
  e.registerCallable('echo', async (ctx) => ({ echoed: ctx.input }))
  e.registerCallable('boom', async (ctx) => {
    throw new Error(`kaput: ${ctx.input}`)
  })
  const { url } = await listen(e.dashboardHandler({ basePath: '/enact', ...options }))
  return { e, url: `${url}/enact` }
}

/** Opens the page and waits for its first answers. */
async function open(url) {
  await page.goto(url)
  await page.waitForURL(/\/enact\/$/)
  await page.waitForSelector('#live[data-state="ok"]')
}

/** The ids of the rows of a table body, in order. */
const rowIds = (table) => page.$$eval(`${table} tbody tr`, (rows) => rows.map((r) => r.dataset.id))

test('the lists show what the engine holds: executions newest first, triggers with their counts, the counters', async () => {
  const { e, url } = await dashboard()
  const digest = await e.registerTrigger({ tenantId: 'tenant_a', type: 'schedule', name: 'Morning digest', condition: { cronExpression: '0 30 8 * * *' }, action: { callableName: 'echo' } })
  const orders = await e.registerTrigger({ tenantId: 'tenant_b', type: 'event', name: 'Big orders', condition: { eventType: 'order.*' }, action: { callableName: 'echo' } })
  await e.emit({ tenantId: 'tenant_b', type: 'order.created', data: { total: 1 } })
  const ran = []
  for (const [tenantId, input] of [
    ['tenant_a', 'first'],
    ['tenant_b', 'second'],
    ['tenant_a', 'third'],
  ]) {
    ran.push(await e.submit({ tenantId, callableName: 'echo', input, config: { mode: 'silent' } }))
  }
  await e.idle()
  const held = await e.listExecutions()
  expect(held).toHaveLength(4)

  await open(url)
  await page.waitForFunction((n) => document.querySelectorAll('#exec-table tbody tr').length === n, held.length)
  const ids = await rowIds('#exec-table')
  expect(ids.slice(0, 3)).toEqual(ran.map((r) => r.executionId).reverse())
  expect(new Set(ids)).toEqual(new Set(held.map((x) => x.executionId)))
  const third = await page.textContent(`#exec-table tr[data-id="${ran[2].executionId}"]`)
  expect(third).toContain('completed')
  expect(third).toContain('echo')
  expect(third).toContain('tenant_a')
  expect(await page.textContent('#tiles [data-kind="completed"] .value')).toBe('4')

  await page.click('#tab-triggers')
  await page.waitForSelector(`#trigger-table tr[data-id="${orders.triggerId}"]`)
  expect(new Set(await rowIds('#trigger-table'))).toEqual(new Set([digest.triggerId, orders.triggerId]))
  const row = await page.$eval(`#trigger-table tr[data-id="${orders.triggerId}"]`, (r) => [...r.cells].map((c) => c.textContent))
  expect(row.slice(0, 6)).toEqual(['Big orders', 'event', 'order.*', 'tenant_b', 'active', '1'])
  expect(await page.textContent(`#trigger-table tr[data-id="${digest.triggerId}"]`)).toContain('cron 0 30 8 * * *')
})

test('a filter narrows the executions list', async () => {
  const { e, url } = await dashboard()
  const ok = await e.submit({ tenantId: 'tenant_a', callableName: 'echo', input: 'a', config: { mode: 'silent' } })
  const bad = await e.submit({ tenantId: 'tenant_b', callableName: 'boom', input: 'b', config: { mode: 'silent' } })
  const other = await e.submit({ tenantId: 'tenant_b', callableName: 'echo', input: 'c', config: { mode: 'silent' } })
  await open(url)
  await page.waitForFunction(() => document.querySelectorAll('#exec-table tbody tr').length === 3)

  await page.selectOption('#exec-filters select[name="status"]', 'failed')
  await page.waitForFunction(() => document.querySelectorAll('#exec-table tbody tr').length === 1)
  expect(await rowIds('#exec-table')).toEqual([bad.executionId])

  await page.selectOption('#exec-filters select[name="status"]', '')
  await page.fill('#exec-filters input[name="tenantId"]', 'tenant_b')
  await page.press('#exec-filters input[name="tenantId"]', 'Enter')
  await page.waitForFunction(() => document.querySelectorAll('#exec-table tbody tr').length === 2)
  expect(await rowIds('#exec-table')).toEqual([other.executionId, bad.executionId])

  await page.fill('#exec-filters input[name="callableName"]', 'echo')
  await page.press('#exec-filters input[name="callableName"]', 'Enter')
  await page.waitForFunction(() => document.querySelectorAll('#exec-table tbody tr').length === 1)
  expect(await rowIds('#exec-table')).toEqual([other.executionId])

  await page.click('#exec-filters button[type="reset"]')
  await page.waitForFunction(() => document.querySelectorAll('#exec-table tbody tr').length === 3)
  expect(await rowIds('#exec-table')).toContain(ok.executionId)
})

test('Show older pages through the executions with a cursor, newest first, each once', async () => {
  const { e, url } = await dashboard()
  const ids = []
  for (let i = 0; i < 120; i++) {
    ids.push((await e.submit({ tenantId: 'tenant_a', callableName: 'echo', input: `n${i}`, config: { mode: 'deferred', delayMs: 3_600_000 } })).executionId)
  }
  const newest = [...ids].reverse()
  await open(url)
  await page.selectOption('#exec-filters select[name="limit"]', '50')
  await page.waitForFunction(() => document.querySelectorAll('#exec-table tbody tr').length === 50)
  expect(await rowIds('#exec-table')).toEqual(newest.slice(0, 50))
  await page.click('#exec-more')
  await page.waitForFunction(() => document.querySelectorAll('#exec-table tbody tr').length === 100)
  await page.click('#exec-more')
  await page.waitForFunction(() => document.querySelectorAll('#exec-table tbody tr').length === 120)
  expect(await rowIds('#exec-table')).toEqual(newest)
  await page.waitForSelector('#exec-more', { state: 'hidden' })
  expect(await page.textContent('#exec-count')).toBe('120 shown')
})

test('the Explain form shows each trigger\'s verdict and first reason, on a read-only dashboard, and fires nothing', async () => {
  const { e, url } = await dashboard()
  const big = await e.registerTrigger({ tenantId: 'tenant_a', type: 'event', name: 'Big orders', condition: { eventType: 'order.*', eventPattern: { total: { $gte: 100 } } }, action: { callableName: 'echo' } })
  const any = await e.registerTrigger({ tenantId: 'tenant_a', type: 'event', name: 'Any order', condition: { eventType: 'order.created' }, action: { callableName: 'echo' } })
  const cpu = await e.registerTrigger({ tenantId: 'tenant_a', type: 'threshold', name: 'CPU high', condition: { metricName: 'cpu', thresholdOperator: 'gt', thresholdValue: 90 }, action: { callableName: 'echo' } })
  await open(url)
  await page.click('#tab-explain')
  await page.fill('#explain-form input[name="tenantId"]', 'tenant_a')
  await page.fill('#explain-form input[name="type"]', 'order.created')
  await page.fill('#explain-form textarea[name="data"]', '{"total": 50}')
  await page.click('#explain-form button[type="submit"]')
  await page.waitForSelector(`#explain-table tbody tr[data-id="${big.triggerId}"]`)
  expect(await page.getAttribute(`#explain-table tr[data-id="${big.triggerId}"]`, 'data-verdict')).toBe('no')
  expect(await page.textContent(`#explain-table tr[data-id="${big.triggerId}"] td.reason`)).toBe('pattern field "total" failed $gte 100 (got 50)')
  expect(await page.getAttribute(`#explain-table tr[data-id="${any.triggerId}"]`, 'data-verdict')).toBe('yes')

  await page.check('#explain-kind input[value="metric"]')
  await page.fill('#explain-form input[name="name"]', 'cpu')
  await page.fill('#explain-form input[name="value"]', '50')
  await page.click('#explain-form button[type="submit"]')
  await page.waitForSelector(`#explain-table tbody tr[data-id="${cpu.triggerId}"]`)
  expect(await page.textContent(`#explain-table tr[data-id="${cpu.triggerId}"] td.reason`)).toBe('value 50 is not > 90')
  // Explaining changed nothing.
  expect((await e.listExecutions()).length).toBe(0)
  expect((await e.getTrigger(any.triggerId)).fireCount).toBe(0)
})

test("a failed execution's error message is visible in its detail, with its input and attempts", async () => {
  const { e, url } = await dashboard()
  const failed = await e.submit({ tenantId: 'tenant_a', callableName: 'boom', input: 'the upstream answered 502', config: { mode: 'silent', retry: { maxAttempts: 2, backoffMs: 1 } } })
  expect(failed.status).toBe('failed')
  await open(url)
  await page.click(`#exec-table tr[data-id="${failed.executionId}"]`)
  const message = await page.waitForSelector('#drawer [data-field="error"] .error-message')
  expect(await message.textContent()).toBe('callable threw: kaput: the upstream answered 502')
  expect(await message.isVisible()).toBe(true)
  expect(await page.textContent('#drawer-id')).toBe(failed.executionId)
  expect(await page.textContent('#drawer [data-field="input"] pre')).toBe('the upstream answered 502')
  expect(await page.textContent('#drawer .kv')).toContain('Attempt2')
  expect(await page.textContent('#drawer [data-field="error"] .error-meta')).toContain('attempt 2')
})

test('cancel through the page: a hanging execution ends cancelled in the engine', async () => {
  const { e, url } = await dashboard({ authorize: () => true })
  const hang = hangUntilAborted()
  e.registerCallable('hang', hang.fn)
  const running = await e.submit({ tenantId: 'tenant_a', callableName: 'hang', input: 'forever' })
  await until(async () => (await e.getExecution(running.executionId)).status === 'running')
  await open(url)
  await page.click(`#exec-table tr[data-id="${running.executionId}"]`)
  await page.waitForSelector('#drawer .drawer-actions .badge[data-status="running"]')
  await page.click('#drawer button[data-action="cancel"]')
  expect(await hang.aborted).toMatchObject({ code: 'ENACT_CANCELLED' })
  await until(async () => (await e.getExecution(running.executionId)).status === 'cancelled', 10_000, 'the execution to be cancelled')
  await page.waitForSelector('#drawer .drawer-actions .badge[data-status="cancelled"]')
  await page.waitForSelector(`#exec-table tr[data-id="${running.executionId}"][data-status="cancelled"]`)
  expect(await page.textContent('#toast[data-kind="ok"]')).toContain('done')
})

test('retry through the page: a failed execution runs again and completes', async () => {
  const { e, url } = await dashboard({ authorize: () => true })
  let calls = 0
  e.registerCallable('flaky', async () => {
    if (++calls === 1) throw new Error('first attempt fails')
    return 'second time lucky'
  })
  const failed = await e.submit({ tenantId: 'tenant_a', callableName: 'flaky', config: { mode: 'silent' } })
  expect(failed.status).toBe('failed')
  await open(url)
  await page.click(`#exec-table tr[data-id="${failed.executionId}"]`)
  await page.waitForSelector('#drawer .drawer-actions .badge[data-status="failed"]')
  await page.click('#drawer button[data-action="retry"]')
  // The page says how it went (a refusal would read `… refused: 501 …`).
  await page.waitForSelector('#toast:not([hidden])')
  expect(await page.textContent('#toast-text')).toMatch(/^Retry exec_…\w+: done/)
  const done = await until(async () => {
    const rec = await e.getExecution(failed.executionId)
    return rec.status === 'completed' && rec
  }, 10_000, 'the retried execution to complete')
  expect(done.output).toBe('second time lucky')
  expect(calls).toBe(2)
  await page.waitForSelector('#drawer .drawer-actions .badge[data-status="completed"]')
  expect(await page.textContent('#drawer [data-field="output"] pre')).toBe('second time lucky')
})

test('a read-only dashboard refuses every action: the page shows the 403 and the engine is unchanged', async () => {
  const { e, url } = await dashboard() // no authorize
  const hang = hangUntilAborted()
  e.registerCallable('hang', hang.fn)
  const trigger = await e.registerTrigger({ tenantId: 'tenant_a', type: 'manual', name: 'Rebuild index', action: { callableName: 'echo' } })
  const running = await e.submit({ tenantId: 'tenant_a', callableName: 'hang' })
  await until(async () => (await e.getExecution(running.executionId)).status === 'running')
  await open(url)
  expect(await page.textContent('#mode')).toBe('read-only')

  await page.click(`#exec-table tr[data-id="${running.executionId}"]`)
  await page.waitForSelector('#drawer button[data-action="cancel"]:not([disabled])')
  await page.click('#drawer button[data-action="cancel"]')
  const toast = await page.waitForSelector('#toast[data-kind="error"]')
  expect(await page.textContent('#toast-text')).toMatch(/^Cancel exec_…\w+ refused: 403 ENACT_FORBIDDEN: cancel: this dashboard is read-only/)
  expect(await toast.isVisible()).toBe(true)
  expect((await e.getExecution(running.executionId)).status).toBe('running')
  await page.click('#drawer-close')
  await page.click('#toast-close')

  await page.click('#tab-triggers')
  for (const action of ['pause', 'fire']) {
    await page.click(`#trigger-table button[data-action="${action}"][data-id="${trigger.triggerId}"]`)
    await page.waitForSelector('#toast[data-kind="error"]:not([hidden])')
    expect(await page.textContent('#toast-text')).toContain(`403 ENACT_FORBIDDEN: ${action}: this dashboard is read-only`)
    await page.click('#toast-close')
  }
  expect(await e.getTrigger(trigger.triggerId)).toMatchObject({ status: 'active', fireCount: 0 })
  expect(await e.listExecutions()).toHaveLength(1)
  await e.cancel(running.executionId)
  await hang.aborted
})

test('script-bearing data (trigger name, input, output, error) renders as literal text and runs nothing', async () => {
  const IMG = '<img src=x onerror="window.__xss=1">'
  const SCRIPT = '<script>window.__xss=1</script>'
  const { e, url } = await dashboard()
  e.registerCallable('hostile', async (ctx) => `${IMG} ${ctx.input}`)
  e.registerCallable('hostile-error', async () => {
    throw new Error(`${IMG}${SCRIPT}`)
  })
  const trigger = await e.registerTrigger({ tenantId: 'tenant_a', type: 'manual', name: IMG, description: SCRIPT, action: { callableName: 'hostile', input: SCRIPT } })
  const fired = await e.fire(trigger.triggerId, { html: IMG })
  const out = await e.wait(fired.executionId)
  expect(out.output).toBe(`${IMG} ${SCRIPT}`)
  const failed = await e.submit({ tenantId: 'tenant_a', callableName: 'hostile-error', input: IMG, config: { mode: 'silent' } })

  await open(url)
  await page.click(`#exec-table tr[data-id="${out.executionId}"]`)
  await page.waitForSelector('#drawer [data-field="output"]')
  expect(await page.textContent('#drawer [data-field="input"] pre')).toBe(SCRIPT)
  expect(await page.textContent('#drawer [data-field="output"] pre')).toBe(`${IMG} ${SCRIPT}`)
  expect(await page.textContent('#drawer [data-field="triggerSource"] pre')).toContain(IMG.replaceAll('"', '\\"'))
  expect(await page.getByText(`${IMG} ${SCRIPT}`).isVisible()).toBe(true)

  await page.click(`#exec-table tr[data-id="${failed.executionId}"]`)
  const message = await page.waitForSelector('#drawer [data-field="error"] .error-message')
  expect(await message.textContent()).toBe(`callable threw: ${IMG}${SCRIPT}`)
  expect(await message.isVisible()).toBe(true)
  expect(await page.textContent(`#exec-table tr[data-id="${failed.executionId}"] .error-cell`)).toBe(`callable threw: ${IMG}${SCRIPT}`)
  await page.click('#drawer-close')

  await page.click('#tab-triggers')
  const name = await page.waitForSelector(`#trigger-table tr[data-id="${trigger.triggerId}"] strong`)
  expect(await name.textContent()).toBe(IMG)
  expect(await name.isVisible()).toBe(true)
  await name.click()
  await page.waitForSelector('#drawer [data-field="action"]')
  expect(await page.textContent('#drawer .kv')).toContain(SCRIPT)

  expect(await page.evaluate(() => /** @type {any} */ (window).__xss)).toBeUndefined()
  expect(await page.evaluate(() => document.querySelectorAll('img').length)).toBe(0)
  expect(await page.evaluate(() => [...document.scripts].map((s) => s.getAttribute('src')))).toEqual(['app.js'])
})
