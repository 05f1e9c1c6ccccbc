// @ts-check
'use strict'
// POSTs the final record of an execution with `config.callbackUrl` there,
// retrying connection errors, timeouts, 429 and 5xx with exponential
// backoff (250, 500, 1000 ms). A final failure is a process warning.

const { describe, safeGet, warn } = require('./errors')
const timers = require('./timers')

const ATTEMPTS = 4
const BACKOFF_MS = 250
const TIMEOUT_MS = 10000

/**
 * @param {{ executionId: string, config: { callbackUrl?: string } }} record
 * @returns {Promise<void>} settles when done (never rejects)
 */
async function postCallback(record) {
  const url = /** @type {string} */ (record.config.callbackUrl)
  const body = JSON.stringify(record)
  for (let attempt = 1; ; attempt++) {
    let why
    try {
      const res = await fetch(url, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'user-agent': 'enact-background', 'x-enact-execution-id': record.executionId },
        body,
        signal: AbortSignal.timeout(TIMEOUT_MS),
      })
      await res.arrayBuffer().catch(() => {})
      if (res.ok) return
      if (res.status !== 429 && res.status < 500) {
        warn(`callback POST to ${url} for ${record.executionId} refused`, `HTTP ${res.status}`)
        return
      }
      why = `HTTP ${res.status}`
    } catch (err) {
      why = describe(safeGet(err, 'cause') || err)
    }
    if (attempt >= ATTEMPTS) {
      warn(`callback POST to ${url} for ${record.executionId} failed after ${attempt} attempts`, why)
      return
    }
    await new Promise((resolve) => timers.setTimeout(resolve, BACKOFF_MS * 2 ** (attempt - 1)))
  }
}

module.exports = { postCallback }
