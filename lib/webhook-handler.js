// @ts-check
'use strict'
// The Node `(req, res)` handler of `webhookHandler()`: POST …/<triggerId>
// answers 202 with the TriggerFiredEvent, 401 on a bad signature, 404 for
// an unknown trigger, 409 when the trigger is not active, 429 (with
// Retry-After) when its webhook replay budget is full, 413 over the
// body limit, 408 when the body is not received within the body deadline,
// 405 for other methods, 400 for a request that cannot be read.
//
// The handler is total: whatever the request's path, headers or body (or
// what a body parser made of it), it answers over HTTP and never throws.
// Everything it does, synchronously and when its body has been read, runs
// inside a guard that turns an unexpected throw into a 500 answer.

const { Code, describe } = require('./errors')
const { dataText } = require('./args')
const timers = require('./timers')

/** HTTP status of each error code a delivery may fail with. */
const STATUS_OF = Object.freeze({
  [Code.WEBHOOK_SIGNATURE]: 401,
  [Code.NOT_FOUND]: 404,
  [Code.TRIGGER_INACTIVE]: 409,
  [Code.RATE_LIMITED]: 429,
  [Code.INVALID_TRIGGER]: 400,
  [Code.BAD_REQUEST]: 400,
  [Code.SHUTDOWN]: 503,
})

/** A failure the handler answers with `status` (not a bug). */
class Refusal extends Error {
  /**
   * @param {number} status
   * @param {string} code
   * @param {string} message
   */
  constructor(status, code, message) {
    super(message)
    this.status = status
    this.code = code
  }
}

/**
 * Answers once; does nothing when an answer was already sent.
 * @param {import('node:http').ServerResponse} res
 * @param {number} status
 * @param {unknown} payload
 * @param {boolean} [close] ask the client to close the connection
 */
function sendJson(res, status, payload, close = false) {
  if (res.headersSent || res.writableEnded) return
  const text = JSON.stringify(payload)
  res.statusCode = status
  res.setHeader('content-type', 'application/json')
  res.setHeader('content-length', Buffer.byteLength(text))
  if (close) res.setHeader('connection', 'close')
  res.end(text)
}

/**
 * The HTTP answer to anything thrown while handling a request, for both
 * handlers (Node's and the fetch-style one): the status of its code when
 * it has one, else 500; `retryAfter` (seconds) for a 429. Never throws.
 * @param {unknown} err
 * @returns {{ status: number, body: { error: string, code: string }, retryAfter?: string }}
 */
function failure(err) {
  if (err instanceof Refusal) return { status: err.status, body: { error: err.message, code: err.code } }
  let code
  try {
    code = err !== null && typeof err === 'object' ? /** @type {any} */ (err).code : undefined
  } catch {}
  const status = (typeof code === 'string' && STATUS_OF[code]) || 500
  const message = describe(err)
  /** @type {{ status: number, body: { error: string, code: string }, retryAfter?: string }} */
  const out = { status, body: { error: message, code: typeof code === 'string' ? code : Code.INTERNAL } }
  if (status === 429) {
    // ENACT_RATE_LIMITED messages end "retry after N s" (firing.rs).
    const after = /retry after (\d+) s$/.exec(message)
    if (after) out.retryAfter = after[1]
  }
  return out
}

/**
 * Answers anything thrown while handling a request (see `failure`).
 * Never throws.
 * @param {import('node:http').ServerResponse} res
 * @param {unknown} err
 */
function answerError(res, err) {
  try {
    const { status, body, retryAfter } = failure(err)
    if (retryAfter !== undefined && !res.headersSent) res.setHeader('retry-after', retryAfter)
    sendJson(res, status, body, err instanceof Refusal && (status === 408 || status === 413))
  } catch {
    // The response itself cannot be written (a destroyed socket): drop it.
    try {
      res.destroy()
    } catch {}
  }
}

/**
 * The trigger id: the last segment of the path, percent-decoded.
 * @param {unknown} url
 */
function triggerIdOf(url) {
  const path = String(url || '').split('?')[0].replace(/\/+$/, '')
  const segment = path.slice(path.lastIndexOf('/') + 1)
  try {
    return decodeURIComponent(segment)
  } catch {
    throw new Refusal(400, Code.BAD_REQUEST, `path: the last segment ${JSON.stringify(segment.slice(0, 200))} is not a valid percent-encoded trigger id`)
  }
}

/**
 * What a body parser that ran before us left, as the bytes to verify: the
 * raw bytes when the parser kept them (`req.rawBody`, `express.raw()`),
 * else the body's JSON text. A body that cannot be written as JSON (a
 * BigInt, a cycle, nesting too deep) is a 400.
 * @param {any} req
 * @returns {Buffer}
 */
function parsedBodyBytes(req) {
  const raw = req.rawBody
  if (Buffer.isBuffer(raw)) return raw
  if (typeof raw === 'string') return Buffer.from(raw)
  try {
    return bodyBytes(req.body)
  } catch (err) {
    throw new Refusal(400, Code.BAD_REQUEST, `request.body: the parsed body cannot be written back as JSON (${describe(err)}); mount the handler before body parsers or keep the raw bytes`)
  }
}

/**
 * A webhook body as bytes: a string (UTF-8), a Buffer or typed array as
 * is, anything else as its JSON text (JSON's rules, bounded depth);
 * absent is empty. `webhook()` and the Node handler's parsed bodies.
 * @param {unknown} body
 * @returns {Buffer}
 */
function bodyBytes(body) {
  if (body === undefined || body === null) return Buffer.alloc(0)
  if (typeof body === 'string') return Buffer.from(body)
  if (Buffer.isBuffer(body)) return body
  if (ArrayBuffer.isView(body)) return Buffer.from(body.buffer, body.byteOffset, body.byteLength)
  return Buffer.from(dataText(body, 'request.body', Code.INVALID_TRIGGER))
}

/**
 * @param {(triggerId: string, headers: unknown, body: Buffer) => Promise<unknown>} deliver
 *   fires the trigger (resolves with the TriggerFiredEvent once a durable
 *   store committed the fire) or throws or rejects with an error with a code
 * @param {number} maxBodyBytes larger bodies get 413
 * @param {number} [bodyTimeoutMs] a body not received within it gets 408
 *   (`webhookHandler()` always gives one; none: no deadline)
 * @returns {(req: import('node:http').IncomingMessage, res: import('node:http').ServerResponse) => void}
 */
function createWebhookHandler(deliver, maxBodyBytes, bodyTimeoutMs) {
  return function enactWebhook(req, res) {
    try {
      handle(req, res)
    } catch (err) {
      answerError(res, err)
    }
  }

  /**
   * @param {import('node:http').IncomingMessage} req
   * @param {import('node:http').ServerResponse} res
   */
  function handle(req, res) {
    if (req.method !== 'POST') {
      res.setHeader('allow', 'POST')
      return sendJson(res, 405, { error: 'use POST', code: Code.METHOD })
    }
    const triggerId = triggerIdOf(req.url)
    const declared = Number(req.headers['content-length'])
    if (declared > maxBodyBytes) throw new Refusal(413, Code.BODY_TOO_LARGE, `body is larger than ${maxBodyBytes} bytes`)
    /** @param {Buffer} body */
    const answer = (body) =>
      Promise.resolve(deliver(triggerId, req.headers, body))
        .then(
          (fired) => sendJson(res, 202, fired),
          (err) => answerError(res, err),
        )
        // Answering itself failed (the connection is gone): nothing is left to tell.
        .catch(() => res.destroy?.())
    // A body parser ran before us: use what it kept.
    if (/** @type {any} */ (req).body !== undefined && (req.readableEnded || req.complete)) {
      return answer(parsedBodyBytes(req))
    }
    readNodeBody(req, res, maxBodyBytes, bodyTimeoutMs, (err, body) => {
      try {
        if (err !== null) throw err
        answer(/** @type {Buffer} */ (body))
      } catch (e) {
        answerError(res, e)
      }
    })
  }
}

/**
 * Reads a Node request's body within `maxBytes` and `timeoutMs` (absent:
 * no time limit), then calls `done` once, from the stream's own event:
 * `done(null, bytes)`, or `done(refusal)` — 413 over the limit (the rest is
 * drained and ignored), 408 too slow (the connection is closed once that
 * answer is sent), 400 a failed stream. `done` must not throw. The webhook
 * handler and the dashboard read bodies with it.
 * @param {import('node:http').IncomingMessage} req
 * @param {import('node:http').ServerResponse} res
 * @param {number} maxBytes
 * @param {number | undefined} timeoutMs
 * @param {(err: unknown, body?: Buffer) => void} done
 */
function readNodeBody(req, res, maxBytes, timeoutMs, done) {
  /** @type {Buffer[]} */
  let chunks = []
  let size = 0
  let over = false
  /** Refuses the request: drops what was buffered, ignores the rest. */
  const stop = (/** @type {unknown} */ err) => {
    over = true
    chunks = []
    timers.clearTimeout(timer)
    done(err)
  }
  const timer =
    timeoutMs === undefined
      ? undefined
      : timers.setTimeout(() => {
          if (over) return
          stop(new Refusal(408, Code.BAD_REQUEST, `body: not received within ${timeoutMs} ms`))
          // The client is still sending: close the connection once answered.
          res.once('finish', () => req.destroy())
        }, timeoutMs).unref()
  req.on('data', (/** @type {Buffer} */ chunk) => {
    if (over) return
    size += chunk.length
    if (size > maxBytes) {
      stop(new Refusal(413, Code.BODY_TOO_LARGE, `body is larger than ${maxBytes} bytes`))
      req.resume()
      return
    }
    chunks.push(chunk)
  })
  req.on('end', () => {
    timers.clearTimeout(timer)
    if (over) return
    over = true
    let body
    try {
      body = Buffer.concat(chunks, size)
    } catch (err) {
      return done(err)
    }
    done(null, body)
  })
  req.on('error', () => {
    if (!over) stop(new Refusal(400, Code.BAD_REQUEST, 'request stream failed'))
  })
  req.on('close', () => timers.clearTimeout(timer))
}

module.exports = { bodyBytes, createWebhookHandler, readNodeBody, STATUS_OF, Refusal, failure, triggerIdOf }
