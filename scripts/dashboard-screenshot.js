// @ts-check
'use strict'
// Writes docs/dashboard.png, the README's picture of the dashboard: an
// engine with demo data (triggers of each type, three tenants, work that
// completes, fails, times out, runs and waits), driven for about a minute
// so the charts have something to show, opened in headless Chromium
// (Debian's, see scripts/chromium.js) at 1280×800.
//
//   node scripts/dashboard-screenshot.js [out.png]   (default docs/dashboard.png)
//   node scripts/dashboard-screenshot.js --serve      (keeps serving the demo; prints its URL)
//
// Takes ~75 s. Only loopback is used.

const fs = require('fs')
const http = require('http')
const path = require('path')
const { BackgroundEngine } = require('..')
const { launchChromium } = require('./chromium')

const SERVE = process.argv.includes('--serve')
const OUT = path.resolve(process.argv.slice(2).find((a) => !a.startsWith('--')) ?? path.join(__dirname, '..', 'docs', 'dashboard.png'))
const DRIVE_MS = Number(process.env.ENACT_SCREENSHOT_DRIVE_MS ?? 70_000)
const TENANTS = ['tenant_acme', 'tenant_globex', 'tenant_initech']
const SECRET = `whsec_${Buffer.from('enact-background screenshot key!').toString('base64')}`

/**
 * @param {number} ms
 * @param {AbortSignal} signal ends the wait early
 */
const sleep = (ms, signal) =>
  new Promise((resolve) => {
    const done = () => {
      clearTimeout(t)
      signal.removeEventListener('abort', done)
      resolve(undefined)
    }
    const t = setTimeout(done, ms)
    signal.addEventListener('abort', done, { once: true })
  })

/**
 * Waits `ms` unless the execution is cancelled; reports progress (when the
 * engine has `ctx.progress`) along the way.
 * @param {import('..').CallableContext} ctx
 * @param {number} ms
 */
async function work(ctx, ms) {
  const steps = 5
  for (let i = 1; i <= steps; i++) {
    await new Promise((resolve, reject) => {
      const t = setTimeout(resolve, ms / steps)
      ctx.signal.addEventListener('abort', () => (clearTimeout(t), reject(ctx.signal.reason)), { once: true })
    })
    await ctx.progress(Math.round((100 * i) / steps))
  }
}

/** @param {BackgroundEngine} engine */
function register(engine) {
  engine.registerCallable('summarize-thread', async (ctx) => {
    await work(ctx, 150 + Math.random() * 500)
    return { summary: `Thread ${String(ctx.input).slice(0, 24)} summarized`, tokens: Math.round(300 + Math.random() * 900) }
  })
  engine.registerCallable('sync-crm', async (ctx) => {
    await work(ctx, 200 + Math.random() * 300)
    if (Math.random() < 0.22) throw Object.assign(new Error('CRM API answered 503 Service Unavailable (POST /v2/contacts/batch)'), { code: 'CRM_UNAVAILABLE' })
    return { synced: Math.round(Math.random() * 40) }
  })
  engine.registerCallable('classify-ticket', async (ctx) => {
    if (Math.random() < 0.08) return new Promise(() => {}) // hangs: ends as timeout
    await work(ctx, 80 + Math.random() * 200)
    return { label: ['billing', 'bug', 'question', 'feature'][Math.floor(Math.random() * 4)], confidence: Number((0.7 + Math.random() * 0.3).toFixed(2)) }
  })
  engine.registerCallable(
    'generate-report',
    async (ctx) => {
      await work(ctx, 90_000)
      return { pages: 12 }
    },
    { concurrency: 3 },
  )
  engine.registerCallable('send-digest', async (ctx) => {
    await work(ctx, 300)
    return `digest sent to ${ctx.tenantId}`
  })
  engine.registerCallable('page-oncall', async () => 'paged')
}

/** @param {BackgroundEngine} engine */
async function triggers(engine) {
  const [acme, globex, initech] = TENANTS
  const defs = /** @type {import('..').TriggerDefinition[]} */ ([
    { tenantId: acme, type: 'event', name: 'Summarize big orders', condition: { eventType: 'order.*', eventPattern: { total: { $gte: 100 } } }, action: { callableName: 'summarize-thread' } },
    { tenantId: globex, type: 'event', name: 'Classify new tickets', condition: { eventType: 'ticket.created' }, action: { callableName: 'classify-ticket', retry: { maxAttempts: 2, backoffMs: 500 } } },
    { tenantId: acme, type: 'lifecycle', name: 'Welcome new users', condition: { eventType: 'user.signup' }, action: { callableName: 'send-digest' } },
    { tenantId: acme, type: 'schedule', name: 'Morning digest', condition: { cronExpression: '0 30 8 * * MON-FRI', timezone: 'Europe/Berlin' }, action: { callableName: 'send-digest' } },
    { tenantId: initech, type: 'schedule', name: 'CRM sync', condition: { intervalSeconds: 5 }, action: { callableName: 'sync-crm', retry: { maxAttempts: 2, backoffMs: 300 } } },
    { tenantId: globex, type: 'schedule', name: 'Nightly report', condition: { cronExpression: '0 0 2 * * *' }, action: { callableName: 'generate-report' } },
    { tenantId: initech, type: 'threshold', name: 'Queue backlog alert', condition: { metricName: 'support.backlog', thresholdOperator: 'gt', thresholdValue: 50 }, action: { callableName: 'page-oncall' }, cooldownMs: 60_000 },
    { tenantId: acme, type: 'webhook', name: 'Stripe payments', webhookSecret: SECRET, action: { callableName: 'sync-crm' } },
    { tenantId: globex, type: 'manual', name: 'Rebuild search index', action: { callableName: 'generate-report' } },
  ])
  const made = []
  for (const def of defs) made.push(await engine.registerTrigger(def))
  await engine.pauseTrigger(made[5].triggerId) // the nightly report, paused
  return made
}

async function main() {
  const engine = new BackgroundEngine({ concurrency: 12 })
  register(engine)
  const made = await triggers(engine)
  const server = http.createServer(engine.dashboardHandler({ basePath: '/enact', authorize: () => true }))
  await new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(undefined)))
  const url = `http://127.0.0.1:${/** @type {import('net').AddressInfo} */ (server.address()).port}/enact/`
  await fetch(`${url}api/stats`) // the charts' sampler starts with the first request
  console.log(`dashboard: ${url}`)

  // Long reports: three run, the rest wait (the callable's limit is 3).
  for (let i = 0; i < 7; i++) await engine.submit({ tenantId: TENANTS[i % 3], callableName: 'generate-report', input: `Q${(i % 4) + 1} revenue report` })
  // Later work: deferred by an hour.
  for (let i = 0; i < 4; i++) await engine.submit({ tenantId: TENANTS[i % 3], callableName: 'send-digest', config: { mode: 'deferred', delayMs: 3_600_000 } })
  await engine.fire(made[8].triggerId, { requestedBy: 'ops@acme.example' })

  const stop = new AbortController()
  const drive = (async () => {
    const start = Date.now()
    let n = 0
    while (!stop.signal.aborted) {
      const s = (Date.now() - start) / 1000
      const rate = Math.max(1, Math.round(7 + 5 * Math.sin(s / 9) + 2 * Math.sin(s / 2.3)))
      for (let i = 0; i < rate; i++) {
        const tenantId = TENANTS[(n + i) % 3]
        const pick = (n * 7 + i * 3) % 10
        if (pick < 5) void engine.submit({ tenantId, callableName: 'summarize-thread', input: `thread_${1000 + n * 10 + i}`, config: { timeoutMs: 5000 } }).catch(() => {})
        else if (pick < 8) void engine.submit({ tenantId, callableName: 'classify-ticket', input: `ticket #${4200 + n * 10 + i}`, config: { timeoutMs: 1500 } }).catch(() => {})
        else void engine.submit({ tenantId, callableName: 'sync-crm', input: `contacts batch ${n * 10 + i}` }).catch(() => {})
      }
      if (n % 12 === 0) void engine.submit({ tenantId: TENANTS[n % 3], callableName: 'generate-report', input: `weekly report ${n / 12 + 1}` }).catch(() => {})
      if (n % 4 === 0) void engine.emit({ tenantId: TENANTS[0], type: 'order.created', data: { id: `A-${n}`, total: 40 + ((n * 37) % 300) } }).catch(() => {})
      if (n % 5 === 0) void engine.emit({ tenantId: TENANTS[1], type: 'ticket.created', data: { id: n } }).catch(() => {})
      if (n % 6 === 0) void engine.reportMetric({ tenantId: TENANTS[2], name: 'support.backlog', value: 30 + ((n * 7) % 40) }).catch(() => {})
      if (n % 9 === 0) void engine.lifecycle({ tenantId: TENANTS[0], type: 'user.signup', data: { name: `user${n}` } }).catch(() => {})
      if (n % 7 === 0) {
        const body = JSON.stringify({ type: 'invoice.paid', id: `in_${n}` })
        void engine.webhook(made[7].triggerId, signedWebhook(body, `msg_${n}`)).catch(() => {})
      }
      n++
      await sleep(1000, stop.signal)
    }
  })()

  if (SERVE) {
    console.log('serving the demo until Ctrl-C')
    process.once('SIGINT', () => stop.abort())
    await drive
  } else {
    // Taken while the work still flows, so the charts end at the current rate.
    await sleep(DRIVE_MS, new AbortController().signal)
    const { page, close } = await launchChromium({ width: 1280, height: 800 })
    try {
      await page.goto(url)
      await page.click('[data-window="60"]')
      await page.waitForSelector('#exec-table tbody tr')
      await page.waitForFunction(() => document.querySelectorAll('#chart-throughput path.line').length > 0)
      // A moment for the next poll to fill every table the same way.
      await page.waitForFunction(() => /live/.test(document.getElementById('live-text')?.textContent ?? ''))
      fs.mkdirSync(path.dirname(OUT), { recursive: true })
      await page.screenshot({ path: OUT })
      console.log(`wrote ${OUT}`)
    } finally {
      await close()
    }
    stop.abort()
    await drive
  }
  server.close()
  await engine.shutdown({ timeoutMs: 0 })
}

/**
 * A Standard Webhooks signed delivery.
 * @param {string} body
 * @param {string} id
 */
function signedWebhook(body, id) {
  const crypto = require('crypto')
  const ts = String(Math.floor(Date.now() / 1000))
  const mac = crypto.createHmac('sha256', Buffer.from(SECRET.slice(6), 'base64')).update(`${id}.${ts}.${body}`).digest('base64')
  return { headers: { 'webhook-id': id, 'webhook-timestamp': ts, 'webhook-signature': `v1,${mac}` }, body }
}

main().catch((err) => {
  console.error(err)
  process.exit(1)
})
