// @ts-check
// `npm start`: one trigger of each type, driven for a few seconds.
//
// Registers callables and target handlers, then an event, a lifecycle, a
// per-second schedule, a threshold, a signed webhook and a manual trigger,
// plus a chained trigger that watches the webhook's execution complete.
// Drives them (events, a metric crossing, signed and forged webhook
// requests over HTTP, a manual fire), prints every `trigger.fired` and
// every bound result, and exits on its own.
'use strict'

const crypto = require('node:crypto')
const http = require('node:http')
const { BackgroundEngine } = require('..')

const TENANT = 'tenant_demo'
const started = Date.now()
const stamp = () => `[+${((Date.now() - started) / 1000).toFixed(2)}s]`
const log = (/** @type {string} */ what, /** @type {string} */ text) => console.log(`${stamp()} ${what.padEnd(8)} ${text}`)

async function main() {
  const engine = new BackgroundEngine({ concurrency: 8 })

  // -- callables: what runs when a trigger fires ----------------------------
  // `ctx.triggerSource` is `unknown` (an event, a metric, a tick or any
  // webhook body or payload); each callable here knows which it gets.
  const sourceOf = (/** @type {import('..').CallableContext} */ ctx) => /** @type {any} */ (ctx.triggerSource)
  engine.registerCallable('summarize-order', async (ctx) => {
    const order = sourceOf(ctx).data
    return `Big order ${order.id}: ${order.items.length} items, $${order.total}\n(${order.items.join(', ')})`
  })
  engine.registerCallable('welcome', async (ctx) => ({ greeting: `Welcome aboard, ${sourceOf(ctx).data.name}!` }))
  engine.registerCallable('heartbeat', async (ctx) => `alive at ${sourceOf(ctx).scheduledAt}`)
  engine.registerCallable('scale-up', async (ctx) => `queue.depth ${sourceOf(ctx).value} > ${sourceOf(ctx).thresholdValue}: add 2 workers`)
  engine.registerCallable('ingest-payment', async (ctx) => JSON.stringify({ payment: sourceOf(ctx).payment, ok: true }))
  engine.registerCallable('notify', async (ctx) => `notified finance about ${sourceOf(ctx).data.executionId}`)
  engine.registerCallable('report', async (ctx) => `Nightly report for ${sourceOf(ctx).day}: all systems nominal, 0 incidents, 42 runs`)

  // -- target handlers: where results are bound -----------------------------
  for (const target of /** @type {const} */ (['thread.title', 'message.metadata', 'memory.write', 'custom', 'artifact.create', 'execution.summary'])) {
    engine.registerTarget(target, (value, binding) => {
      const where = binding.targetPath ? `${target}:${binding.targetPath}` : target
      log('bound', `${where.padEnd(22)} <- ${JSON.stringify(value)}`)
    })
  }

  engine.on('trigger.fired', (ev) => {
    const source = JSON.stringify(ev.triggerSource)
    log('fired', `${ev.triggerType.padEnd(9)} ${JSON.stringify(ev.triggerName).padEnd(18)} -> ${ev.executionId}  source ${source.length > 70 ? source.slice(0, 67) + '...' : source}`)
  })
  engine.on('execution.failed', (rec) => log('failed', `${rec.executionId} ${rec.error?.message}`))

  // -- one trigger of each type --------------------------------------------
  const action = (/** @type {string} */ callableName, /** @type {import('..').TargetBindingConfig} */ targetBinding) => ({ callableName, targetBinding })
  await engine.registerTrigger({
    tenantId: TENANT, type: 'event', name: 'Big orders',
    condition: { eventType: 'order.*', eventPattern: { total: { $gte: 100 }, 'customer.tier': { $in: ['gold', 'platinum'] } } },
    action: action('summarize-order', { targetType: 'thread.title', transform: 'first_line' }),
  })
  await engine.registerTrigger({
    tenantId: TENANT, type: 'lifecycle', name: 'Welcome',
    condition: { eventType: 'user.signup' },
    action: action('welcome', { targetType: 'message.metadata', transform: 'json_extract', jsonPath: '$.greeting' }),
  })
  const heartbeat = await engine.registerTrigger({
    tenantId: TENANT, type: 'schedule', name: 'Heartbeat', maxFires: 3,
    condition: { cronExpression: '* * * * * *', timezone: 'Europe/Berlin' },
    action: action('heartbeat', { targetType: 'memory.write' }),
  })
  await engine.registerTrigger({
    tenantId: TENANT, type: 'threshold', name: 'Queue too deep',
    condition: { metricName: 'queue.depth', thresholdOperator: 'gt', thresholdValue: 100 },
    action: action('scale-up', { targetType: 'custom', targetPath: 'ops.alerts' }),
  })
  const secret = 'whsec_' + crypto.randomBytes(24).toString('base64')
  const payments = await engine.registerTrigger({
    tenantId: TENANT, type: 'webhook', name: 'Payments', webhookSecret: secret,
    action: action('ingest-payment', { targetType: 'artifact.create', transform: 'json_extract', jsonPath: '$.payment.amount' }),
  })
  await engine.registerTrigger({
    tenantId: TENANT, type: 'event', name: 'After payments',
    condition: { eventType: 'execution.completed', eventPattern: { triggerId: payments.triggerId } },
    action: action('notify', { targetType: 'custom', targetPath: 'finance.inbox' }),
  })
  const nightly = await engine.registerTrigger({
    tenantId: TENANT, type: 'manual', name: 'Nightly report',
    action: action('report', { targetType: 'execution.summary', transform: 'truncate', maxLength: 40 }),
  })

  // -- a webhook endpoint over real HTTP -----------------------------------
  const server = http.createServer(engine.webhookHandler())
  await new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(undefined)))
  const address = /** @type {import('node:net').AddressInfo} */ (server.address())
  const post = async (/** @type {string} */ body, /** @type {string} */ key) => {
    const id = `msg_${crypto.randomUUID()}`
    const ts = Math.floor(Date.now() / 1000)
    const mac = crypto.createHmac('sha256', Buffer.from(key.slice('whsec_'.length), 'base64')).update(`${id}.${ts}.${body}`).digest('base64')
    const res = await fetch(`http://127.0.0.1:${address.port}/webhooks/${payments.triggerId}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'webhook-id': id, 'webhook-timestamp': String(ts), 'webhook-signature': `v1,${mac}` },
      body,
    })
    return `${res.status} ${await res.text()}`
  }

  // -- drive them -----------------------------------------------------------
  /** @type {Promise<import('..').BackgroundExecution>[]} */
  const waits = []
  const track = (/** @type {import('..').TriggerFiredEvent[]} */ fired) => {
    for (const f of fired) waits.push(engine.wait(f.executionId))
    return fired.length
  }
  log('emit', `order.created $40 (too small): ${track(await engine.emit({ tenantId: TENANT, type: 'order.created', data: { id: 'A-1000', total: 40, items: ['pen'], customer: { tier: 'gold' } } }))} fired`)
  log('emit', `order.created $250 gold: ${track(await engine.emit({ tenantId: TENANT, type: 'order.created', data: { id: 'A-1001', total: 250, items: ['desk', 'lamp', 'chair'], customer: { tier: 'gold' } } }))} fired`)
  log('emit', `same order for another tenant: ${track(await engine.emit({ tenantId: 'tenant_other', type: 'order.created', data: { id: 'B-1', total: 999, items: [], customer: { tier: 'gold' } } }))} fired`)
  log('event', `user.signup: ${track(await engine.lifecycle({ tenantId: TENANT, type: 'user.signup', data: { name: 'Ada' } }))} fired`)
  for (const value of [40, 150, 180, 70, 130]) {
    log('metric', `queue.depth = ${value}: ${track(await engine.reportMetric({ tenantId: TENANT, name: 'queue.depth', value }))} fired`)
  }
  const payment = JSON.stringify({ payment: { id: 'pay_1', amount: '129.00 EUR' } })
  log('http', `signed POST    -> ${await post(payment, secret)}`)
  log('http', `forged POST    -> ${await post(payment, 'whsec_' + crypto.randomBytes(24).toString('base64'))}`)
  track([await engine.fire(nightly.triggerId, { day: new Date().toISOString().slice(0, 10) })])

  // -- wait for the per-second schedule to use up its maxFires --------------
  while ((await engine.getTrigger(heartbeat.triggerId)).status !== 'fired') await new Promise((resolve) => setTimeout(resolve, 100))
  await Promise.all(waits)
  await Promise.all((await engine.listExecutions({ tenantId: TENANT })).map((e) => engine.wait(e.executionId)))

  console.log('\nTriggers:')
  for (const t of await engine.listTriggers({ tenantId: TENANT })) {
    console.log(`  ${t.type.padEnd(10)} ${t.name.padEnd(16)} status ${t.status.padEnd(7)} fired ${t.fireCount}x`)
  }
  const s = await engine.stats()
  console.log(`Executions: ${s.completed} completed, ${s.failed} failed`)

  server.close()
  await engine.shutdown({ timeoutMs: 2_000 })
}

main().catch((err) => {
  console.error(err)
  process.exitCode = 1
})
