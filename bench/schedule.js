'use strict'
// Benchmark 5, schedule precision: T jobs that fire every second
// ('* * * * * *'), watched for D whole seconds. For every fire the no-op job
// records its lateness = Date.now() when the job function starts − the due
// instant (the whole second the tick was for), in ms. Only ticks due inside
// the window [W0, W0 + D s) count, and each job must have exactly D of them:
// a missing or doubled tick fails the run. CPU time is process.cpuUsage()
// (user + system, all threads) sampled 500 ms before W0 and 500 ms before
// the window's end, so it spans exactly D ticks (each tick's work starts at
// a whole second and finishes well within 500 ms).
//
//   ours:   T schedule triggers, each calling a no-op callable; the due
//           instant is ctx.triggerSource.scheduledAt (ISO, whole seconds).
//           concurrency: T, so the executor's limit adds no queueing delay.
//   croner: T `new Cron('* * * * * *', fn)` jobs. croner does not hand the
//           job the instant it was due for (currentRun() is when the run
//           started, i.e. late by the lateness itself), so each job's
//           private `_checkTrigger(target)` hook, which croner calls from
//           its setTimeout with the target Date it scheduled, is wrapped to
//           record that target before croner runs the job. Pure observation:
//           one property write per tick. It fails loudly if croner's
//           internals change.

const { loadEngine, now, runChild, log, quantile, sortNumbers, sleep } = require('./lib')

const LEAD_MS = 2000 // ticks before the window settle the schedulers
const GRACE_MS = 3000 // time after the window for late ticks to arrive

/** Plans the window and returns a recorder of (job index, due ms, now ms). */
function planWindow(triggers, seconds) {
  const w0 = Math.ceil(Date.now() / 1000) * 1000 + LEAD_MS
  const w1 = w0 + seconds * 1000
  const counts = new Int32Array(triggers)
  const lateness = new Float64Array(triggers * seconds)
  let recorded = 0
  let outside = 0
  let cpuStart = null
  let cpuEnd = null
  setTimeout(() => (cpuStart = process.cpuUsage()), w0 - 500 - Date.now())
  setTimeout(() => (cpuEnd = process.cpuUsage(cpuStart)), w1 - 500 - Date.now())
  return {
    w0,
    w1,
    record(index, due, at) {
      if (due < w0 || due >= w1) return void outside++
      counts[index]++
      if (recorded < lateness.length) lateness[recorded] = at - due
      recorded++
    },
    async finish() {
      await sleep(w1 + GRACE_MS - Date.now())
      let missing = 0
      let doubled = 0
      for (let i = 0; i < triggers; i++) {
        if (counts[i] < seconds) missing += seconds - counts[i]
        else if (counts[i] > seconds) doubled += counts[i] - seconds
      }
      if (missing > 0) throw new Error(`lost ${missing} executions: ${missing} of ${triggers * seconds} ticks due in the window never fired (${doubled} fired twice)`)
      if (doubled > 0) throw new Error(`${doubled} ticks fired more than once`)
      const sorted = sortNumbers(lateness)
      const cpuMs = (cpuEnd.user + cpuEnd.system) / 1000
      log(`window ${new Date(w0).toISOString()} +${seconds}s, ticks ${recorded}, outside the window ${outside}`)
      return {
        p50Ms: quantile(sorted, 0.5),
        p99Ms: quantile(sorted, 0.99),
        maxMs: sorted[sorted.length - 1],
        minMs: sorted[0], // negative: a job ran before its due instant
        cpuMs,
        ticks: recorded,
      }
    },
  }
}

runChild({
  async ours({ triggers = 10_000, seconds = 10 }) {
    const BackgroundEngine = loadEngine()
    const engine = new BackgroundEngine({ concurrency: triggers })
    let ran = 0
    let rec = null
    engine.registerCallable('tick', async (ctx) => {
      const at = Date.now()
      ran++
      if (rec !== null) rec.record(Number(ctx.input), Date.parse(ctx.triggerSource.scheduledAt), at)
      return null
    })
    const ids = []
    const r0 = now()
    for (let i = 0; i < triggers; i++) {
      const { triggerId } = await engine.registerTrigger({
        tenantId: `tenant_${i % 100}`,
        type: 'schedule',
        condition: { cronExpression: '* * * * * *' },
        action: { callableName: 'tick', input: String(i) },
      })
      ids.push(triggerId)
    }
    log(`registered ${triggers} schedule triggers in ${(now() - r0).toFixed(0)} ms`)
    rec = planWindow(triggers, seconds)
    const figures = await rec.finish()
    // Stop the schedules, let the last fires run, then check that every fire
    // became an execution that ran and completed.
    for (const id of ids) await engine.removeTrigger(id)
    await engine.idle()
    const stats = await engine.stats()
    await engine.shutdown({ timeoutMs: 5000 })
    if (stats.completed !== ran || stats.failed + stats.timeout + stats.cancelled + stats.queued + stats.running !== 0) {
      throw new Error(`executions do not add up: ${ran} callable runs, stats ${JSON.stringify(stats)}`)
    }
    return figures
  },

  async croner({ triggers = 10_000, seconds = 10 }) {
    const { Cron } = require('croner')
    if (typeof Cron.prototype._checkTrigger !== 'function') throw new Error('croner internals changed: no _checkTrigger to observe the due instant')
    let rec = null
    const jobs = []
    const r0 = now()
    for (let i = 0; i < triggers; i++) {
      let due = NaN
      const job = new Cron('* * * * * *', { paused: true }, () => {
        const at = Date.now()
        if (rec !== null) rec.record(i, due, at)
      })
      job._checkTrigger = function (target) {
        due = target.getTime()
        return Cron.prototype._checkTrigger.call(this, target)
      }
      jobs.push(job)
    }
    for (const job of jobs) job.resume()
    log(`created ${triggers} croner jobs in ${(now() - r0).toFixed(0)} ms`)
    rec = planWindow(triggers, seconds)
    const figures = await rec.finish()
    for (const job of jobs) job.stop()
    return figures
  },
})
