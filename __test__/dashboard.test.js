// The dashboard's HTTP side (issue 14, part 6): its JSON API over the
// memory and SQLite stores, the page's headers, authorization and CSRF
// guards, the Express and fetch-style handlers, and its modules alone
// (lib/dashboard/api.js over fake engines, for the routes whose engine
// methods are optional; lib/dashboard/sampler.js). The page itself runs
// in Chromium in dashboard.browser.test.js.
const fs = require('fs')
const os = require('os')
const path = require('path')
const express = require('express')
const { BackgroundEngine } = require('..')
const { engine, listen, until, runNode, hangUntilAborted, SECRET } = require('./helpers')
const { createApi, dashboardConfig, statusOf } = require('../lib/dashboard/api')
const { Sampler, sampleOf } = require('../lib/dashboard/sampler')

const CSP = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
const ACTION = { 'x-enact-dashboard': '1', 'content-type': 'application/json' }

/** GET (or another method) on the dashboard; resolves with status, headers and JSON. */
async function call(url, { method = 'GET', headers = {}, body } = {}) {
  const res = await fetch(url, { method, headers, body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body), redirect: 'manual' })
  const text = await res.text()
  let json
  try {
    json = JSON.parse(text)
  } catch {}
  return { status: res.status, headers: res.headers, text, json }
}
const post = (url, body, headers = ACTION) => call(url, { method: 'POST', headers, body })

// -- the stores ------------------------------------------------------------------

const dirs = []
const durable = []
afterEach(async () => {
  await Promise.all(durable.splice(0).map((e) => e.shutdown({ timeoutMs: 100 })))
  for (const dir of dirs.splice(0)) fs.rmSync(dir, { recursive: true, force: true })
})

const stores = {
  memory: async () => engine(),
  sqlite: async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'enact-dashboard-'))
    dirs.push(dir)
    const e = await BackgroundEngine.open({ store: { sqlite: path.join(dir, 'dash.db') } })
    durable.push(e)
    return e
  },
}

// Over PostgreSQL too when there is one (CI's .ci/run sets DATABASE_URL):
// each engine in a schema of its own, dropped after the test.
const PG = process.env.DATABASE_URL
const schemas = []
if (PG) {
  let n = 0
  stores.postgres = async () => {
    const schema = `jdash_${process.pid}_${n++}`
    schemas.push(schema)
    const e = await BackgroundEngine.open({ store: { postgres: `${PG}${PG.includes('?') ? '&' : '?'}application_name=${schema}`, schema } })
    durable.push(e)
    return e
  }
  afterEach(async () => {
    if (schemas.length === 0) return
    const { Client } = require('pg')
    const admin = new Client({ connectionString: PG })
    await admin.connect()
    try {
      for (const schema of schemas.splice(0)) await admin.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`)
    } finally {
      await admin.end()
    }
  })
} else {
  console.warn('!!! DATABASE_URL is not set: the dashboard API tests over PostgreSQL (dashboard.test.js) did NOT run.')
}

/**
 * An engine with triggers of three kinds and four finished executions
 * (three completed across tenants a and b, one failed), served by a
 * dashboard handler with `options` under /enact.
 */
async function served(store, options = {}) {
  const e = await stores[store]()
  e.registerCallable('echo', async (ctx) => ({ echoed: ctx.input }))
  e.registerCallable('boom', async () => {
    throw new Error('kaput: the upstream answered 502')
  })
  const hang = hangUntilAborted()
  e.registerCallable('hang', hang.fn)
  const button = await e.registerTrigger({ tenantId: 'tenant_a', type: 'manual', name: 'Button', action: { callableName: 'echo', input: 'pressed' } })
  const hook = await e.registerTrigger({ tenantId: 'tenant_a', type: 'webhook', name: 'Hook', webhookSecret: SECRET, action: { callableName: 'echo' } })
  const nightly = await e.registerTrigger({ tenantId: 'tenant_b', type: 'schedule', name: 'Nightly', condition: { cronExpression: '0 0 3 * * *' }, action: { callableName: 'echo' } })
  const done = []
  for (const [tenantId, callableName, input] of [
    ['tenant_a', 'echo', 'one'],
    ['tenant_b', 'echo', 'two'],
    ['tenant_a', 'echo', 'three'],
    ['tenant_b', 'boom', 'four'],
  ]) {
    done.push(await e.submit({ tenantId, callableName, input, config: { mode: 'silent' } }))
  }
  const { url } = await listen(e.dashboardHandler({ basePath: '/enact', ...options }))
  return { e, url: `${url}/enact`, button, hook, nightly, done, hang }
}

describe.each(Object.keys(stores))('the API over the %s store', (store) => {
  test('triggers: listed with their counts and the webhook secret hidden; filtered; one by id; 404 for an unknown id', async () => {
    const { url, button, hook, nightly } = await served(store)
    const { status, json, headers } = await call(`${url}/api/triggers`)
    expect(status).toBe(200)
    expect(headers.get('cache-control')).toBe('no-store')
    expect(headers.get('content-type')).toBe('application/json; charset=utf-8')
    expect(json.triggers.map((t) => t.triggerId).sort()).toEqual([button.triggerId, hook.triggerId, nightly.triggerId].sort())
    const shown = json.triggers.find((t) => t.triggerId === hook.triggerId)
    expect(shown).toMatchObject({ name: 'Hook', type: 'webhook', status: 'active', fireCount: 0, webhookSecret: '(hidden)' })
    expect(JSON.stringify(json)).not.toContain(SECRET.slice(6))
    const b = (await call(`${url}/api/triggers?tenantId=tenant_b`)).json
    expect(b.triggers.map((t) => t.name)).toEqual(['Nightly'])
    expect((await call(`${url}/api/triggers?type=manual&status=active`)).json.triggers.map((t) => t.name)).toEqual(['Button'])
    const one = await call(`${url}/api/triggers/${encodeURIComponent(hook.triggerId)}`)
    expect(one.json.trigger).toMatchObject({ triggerId: hook.triggerId, webhookSecret: '(hidden)' })
    expect(await call(`${url}/api/triggers/trigger_missing`)).toMatchObject({ status: 404, json: { error: { code: 'ENACT_NOT_FOUND' } } })
  })

  test('executions: newest first, as summaries with the error message; filtered by status, tenant and callable; limited', async () => {
    const { url, done } = await served(store)
    const { json } = await call(`${url}/api/executions`)
    expect(json.order).toBe('newest')
    expect(json.executions.map((x) => x.executionId)).toEqual(done.map((x) => x.executionId).reverse())
    const failed = json.executions[0]
    expect(failed).toMatchObject({ status: 'failed', callableName: 'boom', tenantId: 'tenant_b', attempt: 1, error: 'callable threw: kaput: the upstream answered 502', mode: 'silent' })
    expect(failed.input).toBeUndefined() // summaries: the detail has the rest
    const ids = async (query) => (await call(`${url}/api/executions?${query}`)).json.executions.map((x) => x.executionId)
    expect(await ids('status=failed')).toEqual([done[3].executionId])
    expect(await ids('tenantId=tenant_a')).toEqual([done[2].executionId, done[0].executionId])
    expect(await ids('callableName=echo&tenantId=tenant_b')).toEqual([done[1].executionId])
    expect(await ids('status=completed&limit=2')).toEqual([done[2].executionId, done[1].executionId])
    expect(await ids('status=&tenantId=')).toHaveLength(4) // empty fields are absent
    expect(await call(`${url}/api/executions?status=nope`)).toMatchObject({ status: 400, json: { error: { code: 'ENACT_INVALID_EXECUTION' } } })
    expect(await call(`${url}/api/executions?limit=0`)).toMatchObject({ status: 400, json: { error: { code: 'ENACT_BAD_REQUEST' } } })
  })

  test('an execution: its whole record; 404 for an unknown id', async () => {
    const { e, url, done } = await served(store)
    const { json } = await call(`${url}/api/executions/${done[3].executionId}`)
    expect(json.execution).toEqual(await e.getExecution(done[3].executionId))
    expect(json.execution.error.message).toBe('callable threw: kaput: the upstream answered 502')
    expect(await call(`${url}/api/executions/exec_missing`)).toMatchObject({ status: 404, json: { error: { code: 'ENACT_NOT_FOUND', message: 'execution "exec_missing" not found' } } })
  })

  test('read-only by default: every action is refused with 403 and changes nothing', async () => {
    const { e, url, button, hang } = await served(store)
    const running = await e.submit({ tenantId: 'tenant_a', callableName: 'hang' })
    await until(async () => (await e.getExecution(running.executionId)).status === 'running')
    for (const path of [`triggers/${button.triggerId}/pause`, `triggers/${button.triggerId}/resume`, `triggers/${button.triggerId}/fire`, `executions/${running.executionId}/cancel`, `executions/${running.executionId}/retry`]) {
      const res = await post(`${url}/api/${path}`, {})
      expect({ path, status: res.status, code: res.json.error.code }).toEqual({ path, status: 403, code: 'ENACT_FORBIDDEN' })
      expect(res.json.error.message).toMatch(/read-only \(no authorize option was given\)/)
    }
    expect(await e.getTrigger(button.triggerId)).toMatchObject({ status: 'active', fireCount: 0 })
    expect((await e.getExecution(running.executionId)).status).toBe('running')
    await e.cancel(running.executionId)
    await hang.aborted
  })

  test('with authorize: pause, resume, fire (with a payload) and cancel act on the engine; authorize gets the request and { action, id }', async () => {
    const asked = []
    const { e, url, button, hang } = await served(store, {
      authorize: (req, action) => {
        asked.push({ url: req.url, user: req.headers['x-user'], ...action })
        return req.headers['x-user'] === 'ops'
      },
    })
    const as = { ...ACTION, 'x-user': 'ops' }
    const paused = await post(`${url}/api/triggers/${button.triggerId}/pause`, {}, as)
    expect(paused).toMatchObject({ status: 200, json: { trigger: { triggerId: button.triggerId, status: 'paused' } } })
    expect((await e.getTrigger(button.triggerId)).status).toBe('paused')
    expect(await post(`${url}/api/triggers/${button.triggerId}/fire`, {}, as)).toMatchObject({ status: 409, json: { error: { code: 'ENACT_TRIGGER_INACTIVE' } } })
    expect((await post(`${url}/api/triggers/${button.triggerId}/resume`, {}, as)).json.trigger.status).toBe('active')
    const fired = await post(`${url}/api/triggers/${button.triggerId}/fire`, { payload: { by: 'dashboard' } }, as)
    expect(fired.status).toBe(200)
    expect(fired.json.fired).toMatchObject({ triggerId: button.triggerId, triggerName: 'Button' })
    const rec = await e.wait(fired.json.fired.executionId)
    expect(rec).toMatchObject({ status: 'completed', triggerSource: { by: 'dashboard' }, output: { echoed: 'pressed' } })

    const running = await e.submit({ tenantId: 'tenant_a', callableName: 'hang' })
    await until(async () => (await e.getExecution(running.executionId)).status === 'running')
    expect(await post(`${url}/api/executions/${running.executionId}/cancel`, {}, { ...ACTION, 'x-user': 'guest' })).toMatchObject({ status: 403, json: { error: { code: 'ENACT_FORBIDDEN', message: 'cancel: not authorized' } } })
    const cancelled = await post(`${url}/api/executions/${running.executionId}/cancel`, {}, as)
    expect(cancelled).toMatchObject({ status: 200, json: { cancelled: true } })
    expect(await hang.aborted).toMatchObject({ code: 'ENACT_CANCELLED' })
    expect((await e.getExecution(running.executionId)).status).toBe('cancelled')
    expect(await post(`${url}/api/executions/exec_missing/cancel`, {}, as)).toMatchObject({ status: 404, json: { error: { code: 'ENACT_NOT_FOUND' } } })

    expect(asked.slice(0, 4)).toEqual([
      { url: `/enact/api/triggers/${button.triggerId}/pause`, user: 'ops', action: 'pause', id: button.triggerId },
      { url: `/enact/api/triggers/${button.triggerId}/fire`, user: 'ops', action: 'fire', id: button.triggerId },
      { url: `/enact/api/triggers/${button.triggerId}/resume`, user: 'ops', action: 'resume', id: button.triggerId },
      { url: `/enact/api/triggers/${button.triggerId}/fire`, user: 'ops', action: 'fire', id: button.triggerId },
    ])
    expect(asked.at(-2)).toMatchObject({ action: 'cancel', id: running.executionId, user: 'ops' })
  })

  test('stats: the counters, and samples of the last minutes taken once a second while the dashboard is in use', async () => {
    const { url } = await served(store)
    const first = await call(`${url}/api/stats`)
    expect(first.json.stats).toMatchObject({ completed: 3, failed: 1, queued: 0 })
    const { json } = await until(async () => {
      const res = await call(`${url}/api/stats`)
      return res.json.samples.length >= 2 && res
    })
    const [a, b] = json.samples
    expect(a).toMatchObject({ completed: 3, failed: 1, timeout: 0, cancelled: 0, queued: 0, running: 0 })
    expect(b.t - a.t).toBeGreaterThanOrEqual(900)
    const newer = await call(`${url}/api/stats?since=${a.t}`)
    expect(newer.json.samples[0].t).toBeGreaterThan(a.t)
  })
})

// -- the handlers -------------------------------------------------------------------

describe('the page', () => {
  test('served with a strict CSP and security headers; no inline script or style; relative URLs; <base> redirects to <base>/', async () => {
    const { url } = await served('memory')
    const page = await call(`${url}/`)
    expect(page.status).toBe(200)
    expect(page.headers.get('content-type')).toBe('text/html; charset=utf-8')
    expect(page.headers.get('content-security-policy')).toBe(CSP)
    expect(page.headers.get('x-content-type-options')).toBe('nosniff')
    expect(page.headers.get('referrer-policy')).toBe('no-referrer')
    expect(page.headers.get('x-frame-options')).toBe('DENY')
    expect(page.text).not.toMatch(/<script(?![^>]*\bsrc=)/i) // every script has a src
    expect(page.text).not.toMatch(/<style|\sstyle=|\son[a-z]+=/i)
    expect(page.text).not.toMatch(/(src|href)="(\/|https?:)/) // relative URLs only
    for (const [file, type] of [
      ['app.js', 'text/javascript; charset=utf-8'],
      ['app.css', 'text/css; charset=utf-8'],
    ]) {
      const res = await call(`${url}/${file}`)
      expect({ file, status: res.status, type: res.headers.get('content-type'), csp: res.headers.get('content-security-policy') }).toEqual({ file, status: 200, type, csp: CSP })
      const again = await fetch(`${url}/${file}`, { headers: { 'if-none-match': res.headers.get('etag') } })
      expect(again.status).toBe(304)
    }
    const js = (await call(`${url}/app.js`)).text
    expect(js).not.toMatch(/innerHTML|outerHTML|insertAdjacentHTML|document\.write|eval\(|new Function/)
    expect(js.replaceAll('http://www.w3.org/2000/svg', '')).not.toMatch(/https?:\/\//) // no URL but the SVG namespace
    const redirect = await call(url)
    expect(redirect.status).toBe(308)
    expect(redirect.headers.get('location')).toBe('./enact/')
    expect((await call(`${url}?tab=x`)).headers.get('location')).toBe('./enact/?tab=x')
    expect(await call(`${url}/nope.js`)).toMatchObject({ status: 404, json: { error: { code: 'ENACT_NOT_FOUND' } } })
    expect(await call(`${url}/app.js`, { method: 'POST' })).toMatchObject({ status: 405 })
    expect((await call(`${url}/api/info`)).json).toMatchObject({ readOnly: true, sampleIntervalMs: 1000 })
    // Outside the base path (plain http, no next): 404.
    expect((await call(url.replace('/enact', '/other'))).status).toBe(404)
  })
})

describe('guards', () => {
  test('a POST without the x-enact-dashboard header, or from another site, is refused before authorize runs; GET on an action is 405', async () => {
    let asked = 0
    const { e, url, button } = await served('memory', { authorize: () => ++asked > 0 })
    const path = `${url}/api/triggers/${button.triggerId}/pause`
    expect(await post(path, {}, { 'content-type': 'application/json' })).toMatchObject({ status: 403, json: { error: { code: 'ENACT_FORBIDDEN', message: expect.stringMatching(/x-enact-dashboard: 1/) } } })
    // What a plain HTML form posts.
    expect((await call(path, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: 'a=1' })).status).toBe(403)
    expect(await post(path, {}, { ...ACTION, 'sec-fetch-site': 'cross-site' })).toMatchObject({ status: 403, json: { error: { message: expect.stringMatching(/own origin/) } } })
    expect(await post(path, {}, { ...ACTION, 'sec-fetch-site': 'same-site' })).toMatchObject({ status: 403 })
    expect(asked).toBe(0)
    const get = await call(path)
    expect(get.status).toBe(405)
    expect(get.headers.get('allow')).toBe('POST')
    expect(get.json.error.code).toBe('ENACT_METHOD')
    expect((await e.getTrigger(button.triggerId)).status).toBe('active')
    expect((await post(path, {}, { ...ACTION, 'sec-fetch-site': 'same-origin' })).status).toBe(200)
    expect(asked).toBe(1)
  })

  test('authorize that throws, rejects or answers anything but true refuses; it never crashes the handler', async () => {
    for (const authorize of [
      () => {
        throw new Error('auth service down')
      },
      async () => {
        throw new Error('rejected')
      },
      () => 'yes',
      () => 1,
      async () => ({}),
      () => undefined,
    ]) {
      const { e, url, button } = await served('memory', { authorize })
      const res = await post(`${url}/api/triggers/${button.triggerId}/fire`, {})
      expect(res).toMatchObject({ status: 403, json: { error: { code: 'ENACT_FORBIDDEN', message: 'fire: not authorized' } } })
      expect((await e.getTrigger(button.triggerId)).fireCount).toBe(0)
    }
  })

  test('authorizeRead guards every read of data and explain (the page\'s own files hold none)', async () => {
    const asked = []
    const { url, done } = await served('memory', {
      authorizeRead: (req, what) => {
        asked.push(what)
        return req.headers['x-user'] === 'viewer'
      },
    })
    for (const path of ['/api/info', '/api/triggers', '/api/executions', `/api/executions/${done[0].executionId}`, '/api/stats']) {
      expect({ path, status: (await call(`${url}${path}`)).status }).toEqual({ path, status: 403 })
      expect({ path, status: (await call(`${url}${path}`, { headers: { 'x-user': 'viewer' } })).status }).toEqual({ path, status: 200 })
    }
    expect((await post(`${url}/api/explain`, { event: { tenantId: 't', type: 'x' } })).status).toBe(403)
    expect(asked).toContainEqual({ action: 'read', id: done[0].executionId })
    expect(asked).toContainEqual({ action: 'explain' })
  })

  test('bodies: over maxBodyBytes is 413, not JSON 400, not an object 400', async () => {
    const { url, button } = await served('memory', { authorize: () => true, maxBodyBytes: 1024 })
    const path = `${url}/api/triggers/${button.triggerId}/fire`
    expect(await post(path, JSON.stringify({ payload: 'x'.repeat(2000) }))).toMatchObject({ status: 413, json: { error: { code: 'ENACT_BODY_TOO_LARGE' } } })
    expect(await post(path, '{nope')).toMatchObject({ status: 400, json: { error: { code: 'ENACT_BAD_REQUEST', message: expect.stringMatching(/^body: not valid JSON/) } } })
    expect(await post(path, '[1]')).toMatchObject({ status: 400, json: { error: { message: 'body: expected a JSON object' } } })
    expect((await post(path, '')).status).toBe(200) // empty: no payload
    // The default limit is 64 KiB.
    const { url: url2, button: b2 } = await served('memory', { authorize: () => true })
    expect((await post(`${url2}/api/triggers/${b2.triggerId}/fire`, JSON.stringify({ payload: 'x'.repeat(60_000) }))).status).toBe(200)
    expect((await post(`${url2}/api/triggers/${b2.triggerId}/fire`, JSON.stringify({ payload: 'x'.repeat(70_000) }))).status).toBe(413)
  })

  test('options are checked: unknown keys, a bad basePath, authorize that is not a function', () => {
    const e = engine()
    const bad = [
      [{ basepath: '/x' }, /^options\.basepath: unknown option/],
      [{ basePath: 'enact' }, /^options\.basePath: expected a path/],
      [{ basePath: '/a?b' }, /^options\.basePath/],
      [{ authorize: true }, /^options\.authorize: expected a function, got boolean/],
      [{ authorizeRead: 'x' }, /^options\.authorizeRead/],
      [{ maxBodyBytes: 0 }, /^options\.maxBodyBytes/],
      [[], /^options: expected an object/],
    ]
    for (const [options, message] of bad) {
      for (const make of [() => e.dashboardHandler(options), () => e.dashboardFetchHandler(options)]) {
        let err
        try {
          make()
        } catch (x) {
          err = x
        }
        expect({ options, code: err?.code }).toEqual({ options, code: 'ENACT_INVALID_EXECUTION' })
        expect(err.message).toMatch(message)
      }
    }
    expect(typeof e.dashboardHandler()).toBe('function')
    expect(typeof e.dashboardHandler({ basePath: '/enact/' })).toBe('function') // a trailing slash is dropped
  })
})

describe('Express and fetch', () => {
  test("Express: app.use('/enact', handler) takes the mount path; other paths go to next(); a JSON body parser's object is used", async () => {
    const e = engine()
    e.registerCallable('echo', async (ctx) => ctx.triggerSource)
    const button = await e.registerTrigger({ tenantId: 't', type: 'manual', name: 'B', action: { callableName: 'echo' } })
    const app = express()
    app.use(express.json())
    app.use('/admin/enact', e.dashboardHandler({ authorize: (req) => req.headers['x-user'] === 'ops' }))
    app.get('/other', (req, res) => res.send('other route'))
    const { url } = await listen(app)
    const base = `${url}/admin/enact`
    const redirect = await call(base)
    expect([redirect.status, redirect.headers.get('location')]).toEqual([308, './enact/'])
    expect((await call(`${base}/`)).headers.get('content-security-policy')).toBe(CSP)
    expect((await call(`${base}/api/triggers`)).json.triggers.map((t) => t.name)).toEqual(['B'])
    expect((await call(`${url}/other`)).text).toBe('other route')
    const fired = await post(`${base}/api/triggers/${button.triggerId}/fire`, { payload: { via: 'express' } }, { ...ACTION, 'x-user': 'ops' })
    expect(fired.status).toBe(200)
    expect((await e.wait(fired.json.fired.executionId)).output).toEqual({ via: 'express' })
    expect((await post(`${base}/api/triggers/${button.triggerId}/fire`, {})).status).toBe(403)
  })

  test('dashboardFetchHandler: the same page and API; authorize receives the fetch Request', async () => {
    const e = engine()
    e.registerCallable('echo', async (ctx) => ctx.triggerSource)
    const button = await e.registerTrigger({ tenantId: 't', type: 'manual', name: 'B', action: { callableName: 'echo' } })
    const seen = []
    const handler = e.dashboardFetchHandler({
      basePath: '/enact',
      maxBodyBytes: 100,
      authorize: (req, action) => {
        seen.push([req instanceof Request, action])
        return req.headers.get('x-user') === 'ops'
      },
    })
    const page = await handler(new Request('http://x.test/enact/'))
    expect(page.status).toBe(200)
    expect(page.headers.get('content-security-policy')).toBe(CSP)
    expect(await page.text()).toMatch(/^<!doctype html>/)
    const redirect = await handler(new Request('http://x.test/enact'))
    expect([redirect.status, redirect.headers.get('location')]).toEqual([308, './enact/'])
    const list = await handler(new Request('http://x.test/enact/api/triggers?type=manual'))
    expect(list.headers.get('cache-control')).toBe('no-store')
    expect((await list.json()).triggers.map((t) => t.name)).toEqual(['B'])
    const fire = (headers, body = '{"payload":{"via":"fetch"}}') => handler(new Request(`http://x.test/enact/api/triggers/${button.triggerId}/fire`, { method: 'POST', headers, body }))
    expect((await fire({ 'x-user': 'ops' })).status).toBe(403) // no x-enact-dashboard header
    expect((await fire({ ...ACTION, 'x-user': 'guest' })).status).toBe(403)
    const tooBig = await fire({ ...ACTION, 'x-user': 'ops' }, JSON.stringify({ payload: 'x'.repeat(200) }))
    expect([tooBig.status, (await tooBig.json()).error.code]).toEqual([413, 'ENACT_BODY_TOO_LARGE'])
    const ok = await fire({ ...ACTION, 'x-user': 'ops' })
    expect(ok.status).toBe(200)
    expect((await e.wait((await ok.json()).fired.executionId)).output).toEqual({ via: 'fetch' })
    expect(seen[0]).toEqual([true, { action: 'fire', id: button.triggerId }])
    expect((await handler(new Request('http://x.test/other'))).status).toBe(404)
    expect((await handler(/** @type {any} */ ({}))).status).toBe(400)
    const head = await handler(new Request('http://x.test/enact/app.css', { method: 'HEAD' }))
    expect([head.status, await head.text()]).toEqual([200, ''])
  })
})

// -- the routes alone, over fake engines (the optional engine methods) ---------------------

describe('lib/dashboard/api.js', () => {
  /** The routes over `fake` (an object with the engine methods a test needs). */
  function routes(fake, options = { authorize: () => true }) {
    const sampler = new Sampler({ stats: async () => ({}) })
    const serve = createApi({ now: () => new Date(0), ...fake }, dashboardConfig(options, (m) => new Error(m)), sampler)
    return (method, url, body) =>
      serve({
        method,
        path: url.split('?')[0],
        query: new URLSearchParams(url.split('?')[1] ?? ''),
        header: (name) => ({ 'x-enact-dashboard': '1' })[name],
        json: async () => body ?? {},
        raw: {},
      })
  }

  test('an authorize that never answers is a refusal after 10 s, not a request held forever', async () => {
    jest.useFakeTimers({ doNotFake: ['nextTick', 'setImmediate', 'queueMicrotask'] })
    try {
      const never = routes({ fire: async () => ({ fired: true }) }, { authorize: () => new Promise(() => {}) })
      const answer = never('POST', '/api/triggers/trigger_1/fire', {})
      let settled = false
      answer.then(() => (settled = true))
      await jest.advanceTimersByTimeAsync(9_999)
      expect(settled).toBe(false)
      await jest.advanceTimersByTimeAsync(1)
      expect(await answer).toMatchObject({ status: 403, body: { error: { code: 'ENACT_FORBIDDEN' } } })
    } finally {
      jest.useRealTimers()
    }
  })

  test('retry: the re-queued record, 404 and 409 as the engine answers', async () => {
    const record = { executionId: 'exec_1', status: 'queued', attempt: 2 }
    const code = (c) => Object.assign(new Error(`nope ${c}`), { code: c })
    const retry = async (id) => {
      if (id === 'exec_1') return record
      throw id === 'exec_done' ? code('ENACT_INVALID_STATE') : code('ENACT_NOT_FOUND')
    }
    const withRetry = routes({ retry })
    expect(await withRetry('POST', '/api/executions/exec_1/retry')).toEqual({ status: 200, body: { execution: record } })
    expect(await withRetry('POST', '/api/executions/exec_done/retry')).toMatchObject({ status: 409, body: { error: { code: 'ENACT_INVALID_STATE' } } })
    expect(await withRetry('POST', '/api/executions/exec_x/retry')).toMatchObject({ status: 404, body: { error: { code: 'ENACT_NOT_FOUND' } } })
    // Refused before the engine is asked.
    expect(await routes({ retry }, {})('POST', '/api/executions/exec_1/retry')).toMatchObject({ status: 403 })
  })

  test('explain: the event (with its source) or the metric passed through, the verdicts answered; no authorize needed', async () => {
    const calls = []
    const verdict = { triggerId: 'trigger_1', triggerName: 'T', triggerType: 'event', status: 'active', wouldFire: false, reason: 'pattern field total failed $gte 100 (got 50)', detail: { field: 'total' } }
    const fake = {
      explain: async (...args) => (calls.push(['explain', ...args]), [verdict]),
      explainMetric: async (...args) => (calls.push(['metric', ...args]), []),
    }
    const explain = routes(fake, {}) // read-only: explain changes nothing
    expect(await explain('POST', '/api/explain', { event: { tenantId: 't', type: 'order.created', data: { total: 50 } } })).toEqual({ status: 200, body: { explanations: [verdict] } })
    await explain('POST', '/api/explain', { event: { tenantId: 't', type: 'user.signup' }, source: 'lifecycle' })
    await explain('POST', '/api/explain', { metric: { tenantId: 't', name: 'depth', value: 3 } })
    expect(calls).toEqual([
      ['explain', { tenantId: 't', type: 'order.created', data: { total: 50 } }],
      ['explain', { tenantId: 't', type: 'user.signup' }, { source: 'lifecycle' }],
      ['metric', { tenantId: 't', name: 'depth', value: 3 }],
    ])
    expect(await explain('POST', '/api/explain', {})).toMatchObject({ status: 400, body: { error: { code: 'ENACT_BAD_REQUEST' } } })
    expect(await explain('GET', '/api/explain')).toMatchObject({ status: 405 })
    const failing = routes({ explain: async () => Promise.reject(Object.assign(new Error('type: expected a string'), { code: 'ENACT_INVALID_TRIGGER' })) })
    expect(await failing('POST', '/api/explain', { event: {} })).toMatchObject({ status: 400, body: { error: { code: 'ENACT_INVALID_TRIGGER' } } })
  })

  test('executions newest first, a page at a time: the engine is asked with order and the cursor, next is the last id of a full page', async () => {
    const records = [1, 2, 3, 4, 5].map((i) => ({ executionId: `exec_${i}`, status: 'completed', queuedAt: `2030-01-01T00:00:0${i}.000Z`, config: {} }))
    const asked = []
    const engine = routes({
      listExecutions: async (filter) => {
        asked.push(filter)
        const newest = [...records].reverse()
        const from = filter.after === undefined ? 0 : newest.findIndex((r) => r.executionId === filter.after) + 1
        return newest.slice(from, from + filter.limit)
      },
    })
    const first = (await engine('GET', '/api/executions?status=completed&limit=2')).body
    expect(first.executions.map((x) => x.executionId)).toEqual(['exec_5', 'exec_4'])
    expect(first.next).toBe('exec_4')
    const second = (await engine('GET', `/api/executions?status=completed&limit=2&after=${first.next}`)).body
    expect(second.executions.map((x) => x.executionId)).toEqual(['exec_3', 'exec_2'])
    const last = (await engine('GET', '/api/executions?status=completed&limit=2&after=exec_2')).body
    expect(last).toMatchObject({ next: null })
    expect(last.executions.map((x) => x.executionId)).toEqual(['exec_1'])
    expect(asked[0]).toEqual({ status: 'completed', limit: 2, order: 'newest' })
    expect(asked[1]).toEqual({ status: 'completed', limit: 2, order: 'newest', after: 'exec_4' })
    // A refusal is answered with its status.
    const bad = routes({ listExecutions: async () => Promise.reject(Object.assign(new Error('filter.status: unknown'), { code: 'ENACT_INVALID_EXECUTION' })) })
    expect(await bad('GET', '/api/executions?status=x')).toMatchObject({ status: 400 })
  })

  test('error codes map to HTTP statuses by their names', () => {
    expect(
      Object.fromEntries(
        ['ENACT_NOT_FOUND', 'ENACT_INVALID_TRIGGER', 'ENACT_INVALID_EXECUTION', 'ENACT_INVALID_STATE', 'ENACT_TRIGGER_INACTIVE', 'ENACT_SHUTDOWN', 'ENACT_STORE', 'ENACT_INTERNAL', 'ENACT_FORBIDDEN', 'SOMETHING', undefined].map((c) => [String(c), statusOf(c)]),
      ),
    ).toEqual({
      ENACT_NOT_FOUND: 404,
      ENACT_INVALID_TRIGGER: 400,
      ENACT_INVALID_EXECUTION: 400,
      ENACT_INVALID_STATE: 409,
      ENACT_TRIGGER_INACTIVE: 409,
      ENACT_SHUTDOWN: 503,
      ENACT_STORE: 500,
      ENACT_INTERNAL: 500,
      ENACT_FORBIDDEN: 403,
      SOMETHING: 500,
      undefined: 500,
    })
  })

  test('an unknown route is 404; a thrown non-error is a 500 answer, never a rejection', async () => {
    const serve = routes({ listTriggers: () => Promise.reject('a string') })
    expect(await serve('GET', '/api/nope')).toMatchObject({ status: 404, body: { error: { code: 'ENACT_NOT_FOUND' } } })
    expect(await serve('GET', '/api/triggers/a/b/c')).toMatchObject({ status: 404 })
    expect(await serve('GET', '/api/triggers')).toEqual({ status: 500, body: { error: { code: 'ENACT_INTERNAL', message: 'a string' } } })
  })
})

// -- the sampler -------------------------------------------------------------------------

describe('lib/dashboard/sampler.js', () => {
  test("a sample takes the engine's monotone ended counters and delayed when it has them", () => {
    expect(sampleOf({ queued: 1, running: 2, completed: 3, failed: 4, cancelled: 5, timeout: 6 }, 7)).toEqual({ t: 7, queued: 1, running: 2, completed: 3, failed: 4, cancelled: 5, timeout: 6, delayed: null })
    expect(sampleOf({ queued: 1, running: 2, delayed: 9, completed: 0, failed: 0, ended: { completed: 30, failed: 40, cancelled: 50, timeout: 60 } }, 8)).toEqual({ t: 8, queued: 1, running: 2, delayed: 9, completed: 30, failed: 40, cancelled: 50, timeout: 60 })
  })

  test('starts on first use, keeps the newest samples in its ring, skips a failing stats(), stops when closed', async () => {
    let n = 0
    let calls = 0
    const fake = {
      stats: async () => {
        calls++
        if (++n === 3) throw new Error('store down')
        return { completed: n, queued: 0, running: 0 }
      },
    }
    let t = 0
    const sampler = new Sampler(fake, { capacity: 4, intervalMs: 5, now: () => ++t })
    expect(sampler.running).toBe(false)
    expect(calls).toBe(0)
    sampler.touch()
    expect(sampler.running).toBe(true)
    await until(() => (sampler.touch(), calls >= 8)) // in use all along
    const samples = sampler.samples()
    expect(samples).toHaveLength(4)
    expect(samples.map((s) => s.completed)).toEqual([...samples.map((s) => s.completed)].sort((a, b) => a - b))
    expect(samples.map((s) => s.completed)).not.toContain(3)
    expect(sampler.samples(samples[2].t)).toEqual(samples.slice(3))
    sampler.close()
    expect(sampler.running).toBe(false)
    sampler.touch() // closed for good
    expect(sampler.running).toBe(false)
  })

  test('rests once nobody looked for as long as its ring spans, and starts again on the next use', async () => {
    let calls = 0
    const sampler = new Sampler({ stats: async () => (calls++, {}) }, { capacity: 3, intervalMs: 5 })
    sampler.touch()
    await until(() => !sampler.running)
    const rested = calls
    sampler.touch()
    expect(sampler.running).toBe(true)
    await until(() => calls > rested)
    sampler.close()
  })

  test("the engine's shutdown closes its dashboards' sampler", async () => {
    const e = engine()
    let calls = 0
    const stats = e.stats.bind(e)
    e.stats = () => (calls++, stats())
    const { url } = await listen(e.dashboardHandler())
    await call(`${url}/api/info`)
    await until(() => calls >= 2)
    await e.shutdown()
    const after = calls
    // No event marks a timer that no longer runs: give it two intervals.
    await new Promise((resolve) => setTimeout(resolve, 2200))
    expect(calls).toBe(after)
    expect((await call(`${url}/api/info`)).status).toBe(200) // still answers, and samples no more
  })

  test('a dashboard in use never keeps Node alive: the process exits on its own, with and without shutdown()', async () => {
    for (const shutdown of [true, false]) {
      const { code, out } = await runNode(`
        const http = require('http')
        const { BackgroundEngine } = require('.')
        const e = new BackgroundEngine()
        const server = http.createServer(e.dashboardHandler()).listen(0, '127.0.0.1', async () => {
          const res = await fetch('http://127.0.0.1:' + server.address().port + '/api/stats', { headers: { connection: 'close' } })
          await res.json()
          server.close()
          ${shutdown ? 'await e.shutdown()' : ''}
          console.log('served')
        })`)
      expect({ shutdown, code, out: out.trim() }).toEqual({ shutdown, code: 0, out: 'served' })
    }
  })
})

test('a handler made after shutdown answers, and starts no sampler', async () => {
  const e = engine()
  await e.shutdown()
  const handler = e.dashboardFetchHandler()
  const res = await handler(new Request('http://x.test/api/stats'))
  expect(res.status).toBe(200)
  expect((await res.json()).samples).toEqual([])
})
