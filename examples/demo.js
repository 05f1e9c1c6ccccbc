// @ts-check
// `npm start`: one trigger of each type, driven for a few seconds, on a
// SQLite file, so that it survives being killed.
//
//   node examples/demo.js [file]      (default ./enact-demo.db, or $ENACT_DEMO_DB)
//   node examples/demo.js --postgres [url]
//                                     (PostgreSQL: url, else $DATABASE_URL; schema enact_demo,
//                                      or $ENACT_DEMO_SCHEMA;
//                                      run it in two terminals at once: both engines share the work)
//
// Opens the file (registering callables, targets and listeners in open's
// setup, before stored work and schedules start), prints what crash
// recovery did, the triggers the file already holds (with their fire
// counts) and the work that was left unfinished. Registers an event, a
// lifecycle, a per-second schedule, a threshold, a signed webhook and a
// manual trigger (plus a chained trigger that watches the webhook's
// execution complete) unless the file has them, queues six slow reports
// (fixed execution ids: submitting them again answers the stored ones),
// drives the triggers (events, a metric crossing, signed and forged webhook
// requests over HTTP, a manual fire), prints every `trigger.fired`, bound
// result and report, and exits on its own once all is done.
//
// Interrupt it (Ctrl-C, or kill -9) while the reports run, and run it
// again: the triggers are still there with their counts, and the reports
// that were running are re-queued (a stall each) and complete.
'use strict'

const crypto = require('node:crypto')
const http = require('node:http')
const path = require('node:path')
const { BackgroundEngine } = require('..')

const TENANT = 'tenant_demo'
const POSTGRES = process.argv[2] === '--postgres' ? (process.argv[3] ?? process.env.DATABASE_URL ?? 'postgres://localhost:5432/postgres') : null
const FILE = POSTGRES === null ? path.resolve(process.argv[2] ?? process.env.ENACT_DEMO_DB ?? 'enact-demo.db') : null
const SCHEMA = process.env.ENACT_DEMO_SCHEMA ?? 'enact_demo'
const STORE = POSTGRES === null ? { sqlite: /** @type {string} */ (FILE) } : { postgres: POSTGRES, schema: SCHEMA }
const WHERE = POSTGRES === null ? path.basename(/** @type {string} */ (FILE)) : `schema ${SCHEMA}`

// The webhook trigger is stored with its secret, so a run signs with the
// secret the first run registered: a fixed demo key (use a real secret!).
const SECRET = 'whsec_' + Buffer.from('enact-background demo webhook key').toString('base64')
const REPORT_MS = Number(process.env.ENACT_DEMO_REPORT_MS ?? 400)
const REPORTS = ['q1', 'q2', 'q3', 'q4', 'q5', 'q6'].map((quarter) => ({ quarter, executionId: `exec_demo_report_${quarter}` }))
const started = Date.now()
const stamp = () => `[+${((Date.now() - started) / 1000).toFixed(2)}s]`
const log = (/** @type {string} */ what, /** @type {string} */ text) => console.log(`${stamp()} ${what.padEnd(8)} ${text}`)

/** Registers what must be there before stored work and schedules start. */
function setup(/** @type {BackgroundEngine} */ engine) {
  // -- callables: what runs when a trigger fires or work is submitted -------
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
  // Slow work: two at a time, REPORT_MS each.
  engine.registerCallable(
    'quarterly-report',
    async (ctx) => {
      await new Promise((resolve) => setTimeout(resolve, REPORT_MS))
      return `report ${ctx.input}: done on attempt ${ctx.attempt}`
    },
    { concurrency: 2 },
  )

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
  engine.on('execution.started', (rec) => {
    if (rec.callableName === 'quarterly-report') log('work', `${rec.executionId} started (attempt ${rec.attempt})`)
  })
  engine.on('execution.completed', (rec) => {
    if (rec.callableName === 'quarterly-report') log('work', `${rec.executionId} completed: ${JSON.stringify(rec.output)}`)
  })
}

async function main() {
  const engine = await BackgroundEngine.open({ store: STORE, concurrency: 8 }, setup)
  const kept = await engine.listTriggers({ tenantId: TENANT })
  // PostgreSQL has no recovery at open: engines take back expired leases all the time.
  const recovery = engine.recovery
  const recovered = recovery === null ? 'work of dead engines is taken back when its lease expires' : `recovery: requeued ${recovery.requeued}, failed ${recovery.failed}`
  log('store', `${FILE ?? WHERE}: ${kept.length > 0 ? 'reopened' : 'new'}; ${recovered}`)
  if (kept.length > 0) {
    console.log('Triggers kept from the last run:')
    for (const t of kept) console.log(`  ${t.type.padEnd(10)} ${t.name.padEnd(16)} status ${t.status.padEnd(7)} fired ${t.fireCount}x`)
    // Recovered work may have started already (its callables were
    // registered in setup), so this lists what is queued or running now.
    const unfinished = [...(await engine.listExecutions({ tenantId: TENANT, status: 'running' })), ...(await engine.listExecutions({ tenantId: TENANT, status: 'queued' }))]
    console.log(`Work the last run left unfinished, queued or running again: ${unfinished.length}`)
    for (const x of unfinished) console.log(`  ${x.executionId} ${x.callableName.padEnd(16)} ${x.status.padEnd(7)} attempts so far ${x.attempt ?? 0}`)
  }
  // Interrupted, the work in flight stays `running` in the file: the next
  // run re-queues it (no shutdown here, as when the process is killed).
  process.once('SIGINT', () => {
    const again = FILE === null ? `--postgres ${JSON.stringify(POSTGRES)}` : JSON.stringify(FILE)
    console.log(`\ninterrupted: run \`node examples/demo.js ${again}\` again to see the unfinished work complete`)
    process.exit(130)
  })

  // -- one trigger of each type, unless the file has it ---------------------
  const have = new Map(kept.map((t) => [t.triggerId, t]))
  const ensure = async (/** @type {any} */ def) => have.get(def.triggerId) ?? engine.registerTrigger(def)
  // -- one trigger of each type --------------------------------------------
  const action = (/** @type {string} */ callableName, /** @type {import('..').TargetBindingConfig} */ targetBinding) => ({ callableName, targetBinding })
  await ensure({
    triggerId: 'trg_demo_orders', tenantId: TENANT, type: 'event', name: 'Big orders',
    condition: { eventType: 'order.*', eventPattern: { total: { $gte: 100 }, 'customer.tier': { $in: ['gold', 'platinum'] } } },
    action: action('summarize-order', { targetType: 'thread.title', transform: 'first_line' }),
  })
  await ensure({
    triggerId: 'trg_demo_welcome', tenantId: TENANT, type: 'lifecycle', name: 'Welcome',
    condition: { eventType: 'user.signup' },
    action: action('welcome', { targetType: 'message.metadata', transform: 'json_extract', jsonPath: '$.greeting' }),
  })
  const heartbeat = await ensure({
    triggerId: 'trg_demo_heartbeat', tenantId: TENANT, type: 'schedule', name: 'Heartbeat', maxFires: 3,
    condition: { cronExpression: '* * * * * *', timezone: 'Europe/Berlin' },
    action: action('heartbeat', { targetType: 'memory.write' }),
  })
  await ensure({
    triggerId: 'trg_demo_queue', tenantId: TENANT, type: 'threshold', name: 'Queue too deep',
    condition: { metricName: 'queue.depth', thresholdOperator: 'gt', thresholdValue: 100 },
    action: action('scale-up', { targetType: 'custom', targetPath: 'ops.alerts' }),
  })
  const payments = await ensure({
    triggerId: 'trg_demo_payments', tenantId: TENANT, type: 'webhook', name: 'Payments', webhookSecret: SECRET,
    action: action('ingest-payment', { targetType: 'artifact.create', transform: 'json_extract', jsonPath: '$.payment.amount' }),
  })
  await ensure({
    triggerId: 'trg_demo_after_payments', tenantId: TENANT, type: 'event', name: 'After payments',
    condition: { eventType: 'execution.completed', eventPattern: { triggerId: payments.triggerId } },
    action: action('notify', { targetType: 'custom', targetPath: 'finance.inbox' }),
  })
  const nightly = await ensure({
    triggerId: 'trg_demo_nightly', tenantId: TENANT, type: 'manual', name: 'Nightly report',
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

  // -- slow work: six reports, two at a time --------------------------------
  // Fixed ids: in a run after an interrupted one, these answer the stored
  // executions (finished, or re-queued by recovery) instead of adding more.
  const reports = await Promise.all(REPORTS.map((r) => engine.submit({ tenantId: TENANT, callableName: 'quarterly-report', executionId: r.executionId, input: r.quarter })))
  log('work', `${reports.length} reports: ${reports.filter((r) => r.status === 'completed').length} already completed, ${reports.filter((r) => r.status !== 'completed').length} to run`)

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
  log('http', `signed POST    -> ${await post(payment, SECRET)}`)
  log('http', `forged POST    -> ${await post(payment, 'whsec_' + crypto.randomBytes(24).toString('base64'))}`)
  track([await engine.fire(nightly.triggerId, { day: new Date().toISOString().slice(0, 10) })])

  // -- wait for the per-second schedule to use up its maxFires --------------
  while ((await engine.getTrigger(heartbeat.triggerId)).status !== 'fired') await new Promise((resolve) => setTimeout(resolve, 100))
  await Promise.all(waits)
  const done = await Promise.all(reports.map((r) => engine.wait(r.executionId)))
  log('work', `reports: ${done.filter((r) => r.status === 'completed').length}/${done.length} completed`)
  await Promise.all((await engine.listExecutions({ tenantId: TENANT })).map((e) => engine.wait(e.executionId)))

  console.log('\nTriggers:')
  for (const t of await engine.listTriggers({ tenantId: TENANT })) {
    console.log(`  ${t.type.padEnd(10)} ${t.name.padEnd(16)} status ${t.status.padEnd(7)} fired ${t.fireCount}x`)
  }
  const s = await engine.stats()
  console.log(`Executions in ${WHERE}: ${s.completed} completed, ${s.failed} failed`)

  server.close()
  await engine.shutdown({ timeoutMs: 2_000 })
}

main().catch((err) => {
  console.error(err)
  process.exitCode = 1
})
