// @ts-check
'use strict'
// The fetch-style `(request: Request) => Promise<Response>` handler of
// `webhookFetchHandler()`, for servers built on the Fetch API (Hono,
// Next.js route handlers, Bun, Deno). Same answers as the Node handler
// (lib/webhook-handler.js, whose status mapping it shares): POST
// …/<triggerId> answers 202 with the TriggerFiredEvent; 401, 404, 409,
// 429 (with Retry-After), 400 by error code; 413 over the body limit,
// 408 when the body is not received within the body deadline, 405 for
// other methods, 400 for a path that does not percent-decode.
//
// The body is read from its stream with a cap: reading stops (and the
// stream is cancelled) as soon as it holds more than `maxBodyBytes`, so
// nothing beyond the limit is buffered. The handler is total: whatever
// the request, its promise resolves with a Response, never rejects.

const { Code } = require('./errors')
const timers = require('./timers')
const { Refusal, failure, triggerIdOf } = require('./webhook-handler')

/**
 * @param {number} status
 * @param {unknown} payload
 * @param {Record<string, string>} [headers]
 * @returns {Response}
 */
function jsonResponse(status, payload, headers = {}) {
  return new Response(JSON.stringify(payload), { status, headers: { 'content-type': 'application/json', ...headers } })
}

/**
 * Reads a body stream whole, refusing it (413) once it holds more than
 * `max` bytes and (408) when it is not done within `timeoutMs`; either way
 * the stream is cancelled and what was read is dropped.
 * @param {ReadableStream<Uint8Array> | null} stream
 * @param {number} max
 * @param {number} timeoutMs
 * @returns {Promise<Buffer>}
 */
async function readCapped(stream, max, timeoutMs) {
  if (stream === null) return Buffer.alloc(0)
  const reader = stream.getReader()
  /** @type {NodeJS.Timeout | undefined} */
  let timer
  /** @type {Promise<never>} */
  const deadline = new Promise((_, reject) => {
    timer = timers.setTimeout(() => reject(new Refusal(408, Code.BAD_REQUEST, `body: not received within ${timeoutMs} ms`)), timeoutMs)
  })
  deadline.catch(() => {}) // raced below; never unhandled
  /** @type {Uint8Array[]} */
  let chunks = []
  let size = 0
  try {
    for (;;) {
      const { done, value } = await Promise.race([reader.read(), deadline])
      if (done) break
      if (!(value instanceof Uint8Array)) throw new Refusal(400, Code.BAD_REQUEST, 'body: the stream gave a chunk that is not bytes')
      size += value.byteLength
      if (size > max) throw new Refusal(413, Code.BODY_TOO_LARGE, `body is larger than ${max} bytes`)
      chunks.push(value)
    }
    return Buffer.concat(chunks, size)
  } catch (err) {
    chunks = []
    // Stop the sender: nothing more is read.
    reader.cancel(err).catch(() => {})
    throw err
  } finally {
    timers.clearTimeout(timer)
  }
}

/**
 * @param {(triggerId: string, headers: unknown, body: Buffer) => Promise<unknown>} deliver
 *   fires the trigger (answers the TriggerFiredEvent) or throws an error with a code
 * @param {number} maxBodyBytes larger bodies get 413
 * @param {number} bodyTimeoutMs a body not received within it gets 408
 * @returns {(request: Request) => Promise<Response>}
 */
function createFetchWebhookHandler(deliver, maxBodyBytes, bodyTimeoutMs) {
  return async function enactWebhookFetch(request) {
    try {
      return await handle(request)
    } catch (err) {
      try {
        const { status, body, retryAfter } = failure(err)
        return jsonResponse(status, body, retryAfter === undefined ? {} : { 'retry-after': retryAfter })
      } catch {
        return new Response(null, { status: 500 })
      }
    }
  }

  /** @param {Request} request */
  async function handle(request) {
    // Duck-typed (a Request of another realm or runtime passes), but all
    // of what is read below must be there, or it is a 400 naming it.
    if (request === null || typeof request !== 'object') {
      throw new Refusal(400, Code.BAD_REQUEST, 'request: expected a fetch Request')
    }
    for (const [field, ok] of /** @type {[string, (r: any) => boolean][]} */ ([
      ['method', (r) => typeof r.method === 'string'],
      ['url', (r) => typeof r.url === 'string'],
      ['headers', (r) => r.headers !== null && typeof r.headers === 'object' && typeof r.headers.get === 'function' && typeof r.headers.forEach === 'function'],
    ])) {
      if (!ok(request)) throw new Refusal(400, Code.BAD_REQUEST, `request.${field}: expected a fetch Request`)
    }
    if (request.method !== 'POST') return jsonResponse(405, { error: 'use POST', code: Code.METHOD }, { allow: 'POST' })
    let pathname
    try {
      pathname = new URL(request.url).pathname
    } catch {
      throw new Refusal(400, Code.BAD_REQUEST, 'request.url: not an absolute URL')
    }
    const triggerId = triggerIdOf(pathname)
    const declared = Number(request.headers.get('content-length'))
    if (declared > maxBodyBytes) {
      request.body?.cancel().catch(() => {})
      throw new Refusal(413, Code.BODY_TOO_LARGE, `body is larger than ${maxBodyBytes} bytes`)
    }
    const body = await readCapped(request.body, maxBodyBytes, bodyTimeoutMs)
    /** @type {Record<string, string>} */
    const headers = {}
    request.headers.forEach((value, name) => {
      headers[name] = value
    })
    return jsonResponse(202, await deliver(triggerId, headers, body))
  }
}

module.exports = { createFetchWebhookHandler, readCapped }
