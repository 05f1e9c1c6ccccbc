// @ts-check
'use strict'
// The Node `(req, res)` handler of `webhookHandler()`: POST …/<triggerId>
// answers 202 with the TriggerFiredEvent, 401 on a bad signature, 404 for
// an unknown trigger, 409 when the trigger is not active, 413 over the
// body limit, 405 for other methods, 400 for a request that cannot be read.

const { Code, describe } = require('./errors')

/** HTTP status of each error code a delivery may fail with. */
const STATUS_OF = Object.freeze({
  [Code.WEBHOOK_SIGNATURE]: 401,
  [Code.NOT_FOUND]: 404,
  [Code.TRIGGER_INACTIVE]: 409,
  [Code.INVALID_TRIGGER]: 400,
  [Code.SHUTDOWN]: 503,
})

/**
 * @param {import('node:http').ServerResponse} res
 * @param {number} status
 * @param {unknown} payload
 */
function sendJson(res, status, payload) {
  const text = JSON.stringify(payload)
  res.statusCode = status
  res.setHeader('content-type', 'application/json')
  res.setHeader('content-length', Buffer.byteLength(text))
  res.end(text)
}

/**
 * @param {import('node:http').ServerResponse} res
 * @param {number} maxBodyBytes
 */
function tooLarge413(res, maxBodyBytes) {
  res.setHeader('connection', 'close')
  sendJson(res, 413, { error: `body is larger than ${maxBodyBytes} bytes`, code: Code.BODY_TOO_LARGE })
}

/**
 * @param {(triggerId: string, headers: unknown, body: Buffer) => unknown} deliver
 *   fires the trigger (answers the TriggerFiredEvent) or throws an error with a code
 * @param {number} maxBodyBytes
 * @returns {(req: import('node:http').IncomingMessage, res: import('node:http').ServerResponse) => void}
 */
function createWebhookHandler(deliver, maxBodyBytes) {
  return function enactWebhook(req, res) {
    if (req.method !== 'POST') {
      res.setHeader('allow', 'POST')
      return sendJson(res, 405, { error: 'use POST', code: Code.METHOD })
    }
    const path = String(req.url || '').split('?')[0].replace(/\/+$/, '')
    const triggerId = decodeURIComponent(path.slice(path.lastIndexOf('/') + 1))
    const declared = Number(req.headers['content-length'])
    if (declared > maxBodyBytes) {
      return tooLarge413(res, maxBodyBytes)
    }
    /** @param {Buffer} body */
    const answer = (body) => {
      let fired
      try {
        fired = deliver(triggerId, req.headers, body)
      } catch (err) {
        const code = err !== null && typeof err === 'object' ? /** @type {any} */ (err).code : undefined
        return sendJson(res, (typeof code === 'string' && STATUS_OF[code]) || 500, { error: describe(err), code: code || Code.INTERNAL })
      }
      sendJson(res, 202, fired)
    }
    // A body parser ran before us: use what it kept (express.raw() keeps bytes).
    const parsed = /** @type {{ body?: unknown }} */ (req).body
    if (parsed !== undefined && (req.readableEnded || req.complete)) {
      return answer(Buffer.isBuffer(parsed) ? parsed : Buffer.from(typeof parsed === 'string' ? parsed : JSON.stringify(parsed)))
    }
    /** @type {Buffer[]} */
    const chunks = []
    let size = 0
    let tooLarge = false
    req.on('data', (chunk) => {
      if (tooLarge) return
      size += chunk.length
      if (size > maxBodyBytes) {
        tooLarge = true
        tooLarge413(res, maxBodyBytes)
        req.resume()
        return
      }
      chunks.push(chunk)
    })
    req.on('end', () => {
      if (!tooLarge) answer(Buffer.concat(chunks, size))
    })
    req.on('error', () => {
      if (!res.headersSent) sendJson(res, 400, { error: 'request stream failed', code: Code.BAD_REQUEST })
    })
  }
}

module.exports = { createWebhookHandler, STATUS_OF }
