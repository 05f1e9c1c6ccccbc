// @ts-check
'use strict'
// The dashboard's two handlers: `dashboardHandler()`, a Node `(req, res,
// next?)` handler for http.createServer and Express, and
// `dashboardFetchHandler()`, a `(request) => Promise<Response>` one for
// Fetch-API servers. Both serve the page (index.html, app.js, app.css, the
// files beside this one, read once) and hand `api/…` to the routes of
// lib/dashboard/api.js; they only translate requests and answers.
//
// Where the dashboard is mounted: `options.basePath` (the path the browser
// sees, e.g. '/enact'); with Express and no basePath, the mount path
// (`app.use('/enact', handler)`: `req.baseUrl`). The page uses relative
// URLs only, so `<base>` is redirected to `<base>/` and any mount works.
//
// Every answer carries a strict Content-Security-Policy (scripts and
// styles from the page's own files only, no inline code, no frames),
// `X-Content-Type-Options: nosniff` and `Referrer-Policy: no-referrer`;
// API answers are `Cache-Control: no-store`. Like the webhook handlers,
// both are total: whatever the request, they answer, and never throw.

const crypto = require('crypto')
const fs = require('fs')
const path = require('path')
const { Code, enactError, describe } = require('../errors')
const { Refusal, readNodeBody } = require('../webhook-handler')
const { readCapped } = require('../webhook-fetch')
const { createApi, dashboardConfig, failed, BODY_TIMEOUT_MS } = require('./api')

const CSP = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data:",
  "connect-src 'self'",
  "base-uri 'none'",
  "form-action 'self'",
  "frame-ancestors 'none'",
].join('; ')

/** Headers of every answer. */
const SECURITY_HEADERS = Object.freeze({
  'content-security-policy': CSP,
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  'x-frame-options': 'DENY',
  'cross-origin-opener-policy': 'same-origin',
  'cross-origin-resource-policy': 'same-origin',
})

/** @typedef {{ body: string, type: string, etag: string }} Asset */

/** The page's files by path, read on first use. @type {Map<string, Asset> | null} */
let assets = null

/** @returns {Map<string, Asset>} */
function pageAssets() {
  if (assets !== null) return assets
  /** @type {Map<string, Asset>} */
  const map = new Map()
  for (const [file, type] of [
    ['index.html', 'text/html; charset=utf-8'],
    ['app.js', 'text/javascript; charset=utf-8'],
    ['app.css', 'text/css; charset=utf-8'],
  ]) {
    const body = fs.readFileSync(path.join(__dirname, file), 'utf8')
    const etag = `"${crypto.createHash('sha256').update(body).digest('base64url').slice(0, 22)}"`
    map.set(`/${file}`, { body, type, etag })
  }
  map.set('/', /** @type {Asset} */ (map.get('/index.html')))
  assets = map
  return map
}

/**
 * @typedef {object} Answer an answer for either handler
 * @property {number} status
 * @property {Record<string, string>} headers
 * @property {string | null} body
 */

/**
 * A JSON answer from the API's (never cached).
 * @param {import('./api').DashAnswer} answer
 * @returns {Answer}
 */
function jsonAnswer(answer) {
  let text
  try {
    text = JSON.stringify(answer.body)
  } catch (err) {
    text = JSON.stringify({ error: { code: Code.INTERNAL, message: `the answer cannot be written as JSON: ${describe(err)}` } })
    answer = { status: 500, body: null }
  }
  return {
    status: answer.status,
    headers: { ...SECURITY_HEADERS, 'content-type': 'application/json; charset=utf-8', 'cache-control': 'no-store', ...answer.headers },
    body: text,
  }
}

/**
 * The answer to a request for `rel` (the path below the mount point).
 * @param {string} method
 * @param {string} rel '' or starting with '/'
 * @param {string} mount the mount path ('' at the root)
 * @param {string} search the query, with its '?' ('' when none)
 * @param {(name: string) => string | undefined} header
 * @param {(rel: string) => Promise<import('./api').DashAnswer>} api
 * @returns {Promise<Answer>}
 */
async function answerFor(method, rel, mount, search, header, api) {
  if (rel.startsWith('/api/')) return jsonAnswer(await api(rel))
  const read = method === 'GET' || method === 'HEAD'
  if (rel === '') {
    // `<base>` → `<base>/`, relative to where the browser is, so that a
    // proxy in front that strips or adds a prefix is followed too.
    if (!read) return jsonAnswer(failed(Object.assign(new Refusal(405, Code.METHOD, 'use GET'), { allow: 'GET, HEAD' })))
    const last = mount.slice(mount.lastIndexOf('/') + 1)
    return { status: 308, headers: { ...SECURITY_HEADERS, location: `./${last}/${search}`, 'cache-control': 'no-store' }, body: null }
  }
  const asset = pageAssets().get(rel)
  if (asset === undefined) return jsonAnswer(failed(new Refusal(404, Code.NOT_FOUND, `no dashboard file ${JSON.stringify(rel.slice(0, 200))}`)))
  if (!read) return jsonAnswer(failed(Object.assign(new Refusal(405, Code.METHOD, 'use GET'), { allow: 'GET, HEAD' })))
  const headers = { ...SECURITY_HEADERS, 'content-type': asset.type, 'cache-control': 'no-cache', etag: asset.etag }
  if (header('if-none-match') === asset.etag) return { status: 304, headers, body: null }
  return { status: 200, headers, body: asset.body }
}

/**
 * @param {string} message
 */
const invalidOption = (message) => enactError(Code.INVALID_EXECUTION, message)

/**
 * The body of a Node request as JSON: what a body parser that ran before
 * us left (`express.json()` objects as they are; strings and Buffers
 * parsed), else the stream read up to `max` bytes within the body
 * deadline. Empty is `{}`.
 * @param {import('node:http').IncomingMessage} req
 * @param {import('node:http').ServerResponse} res
 * @param {number} max
 * @returns {Promise<unknown>}
 */
function readNodeJson(req, res, max) {
  const parsed = /** @type {any} */ (req).body
  if (parsed !== undefined && (req.readableEnded || req.complete)) {
    if (typeof parsed === 'string' || Buffer.isBuffer(parsed)) return Promise.resolve(parseJson(Buffer.from(parsed)))
    return Promise.resolve(parsed)
  }
  if (Number(req.headers['content-length']) > max) return Promise.reject(new Refusal(413, Code.BODY_TOO_LARGE, `body is larger than ${max} bytes`))
  return new Promise((resolve, reject) => {
    readNodeBody(req, res, max, BODY_TIMEOUT_MS, (err, body) => (err === null ? resolve(/** @type {Buffer} */ (body)) : reject(err)))
  }).then(parseJson)
}

/**
 * @param {Buffer} bytes
 * @returns {unknown}
 */
function parseJson(bytes) {
  const text = bytes.toString('utf8')
  if (text.trim() === '') return {}
  try {
    return JSON.parse(text)
  } catch (err) {
    throw new Refusal(400, Code.BAD_REQUEST, `body: not valid JSON (${describe(err)})`)
  }
}

/**
 * Writes an answer; does nothing when one was sent already.
 * @param {import('node:http').ServerResponse} res
 * @param {Answer} answer
 * @param {boolean} head
 */
function writeAnswer(res, answer, head) {
  if (res.headersSent || res.writableEnded) return
  res.statusCode = answer.status
  for (const [name, value] of Object.entries(answer.headers)) res.setHeader(name, value)
  if (answer.body === null) return res.end()
  res.setHeader('content-length', Buffer.byteLength(answer.body))
  res.end(head ? undefined : answer.body)
}

/**
 * The Node handler of `dashboardHandler(options)`.
 * @param {any} engine
 * @param {unknown} options
 * @param {import('./sampler').Sampler} sampler
 * @returns {(req: import('node:http').IncomingMessage, res: import('node:http').ServerResponse, next?: (err?: unknown) => void) => void}
 */
function createDashboardHandler(engine, options, sampler) {
  const config = dashboardConfig(options, invalidOption)
  const serve = createApi(engine, config, sampler)
  pageAssets()

  return function enactDashboard(req, res, next) {
    /** @param {unknown} err */
    const fail = (err) => {
      try {
        writeAnswer(res, jsonAnswer(failed(err)), false)
      } catch {
        try {
          res.destroy()
        } catch {}
      }
    }
    try {
      const r = /** @type {any} */ (req)
      // Express: the whole path is originalUrl, the mount path baseUrl.
      const url = String(typeof r.originalUrl === 'string' ? r.originalUrl : req.url || '')
      const mount = config.basePath !== '' ? config.basePath : typeof r.baseUrl === 'string' ? r.baseUrl : ''
      const q = url.indexOf('?')
      const pathname = q < 0 ? url : url.slice(0, q)
      const search = q < 0 ? '' : url.slice(q)
      if (!(pathname === mount || pathname.startsWith(`${mount}/`))) {
        if (typeof next === 'function') return next()
        return fail(new Refusal(404, Code.NOT_FOUND, `not under the dashboard's path ${JSON.stringify(mount)}`))
      }
      const rel = pathname.slice(mount.length)
      const method = String(req.method || 'GET').toUpperCase()
      /** @param {string} name */
      const header = (name) => {
        const v = req.headers[name]
        return Array.isArray(v) ? v.join(', ') : v
      }
      /** @param {string} apiPath */
      const api = (apiPath) =>
        serve({
          method,
          path: apiPath,
          query: new URLSearchParams(search),
          header,
          json: () => readNodeJson(req, res, config.maxBodyBytes),
          raw: req,
        })
      answerFor(method, rel, mount, search, header, api)
        .then((answer) => writeAnswer(res, answer, method === 'HEAD'))
        .catch(fail)
    } catch (err) {
      fail(err)
    }
  }
}

/**
 * The fetch-style handler of `dashboardFetchHandler(options)`.
 * @param {any} engine
 * @param {unknown} options
 * @param {import('./sampler').Sampler} sampler
 * @returns {(request: Request) => Promise<Response>}
 */
function createDashboardFetchHandler(engine, options, sampler) {
  const config = dashboardConfig(options, invalidOption)
  const serve = createApi(engine, config, sampler)
  pageAssets()
  /** @param {Answer} answer */
  const response = (answer, head = false) => new Response(head ? null : answer.body, { status: answer.status, headers: answer.headers })

  return async function enactDashboardFetch(request) {
    try {
      if (request === null || typeof request !== 'object' || typeof request.url !== 'string' || typeof request.method !== 'string' || typeof request.headers?.get !== 'function') {
        throw new Refusal(400, Code.BAD_REQUEST, 'request: expected a fetch Request')
      }
      let url
      try {
        url = new URL(request.url)
      } catch {
        throw new Refusal(400, Code.BAD_REQUEST, 'request.url: not an absolute URL')
      }
      const mount = config.basePath
      if (!(url.pathname === mount || url.pathname.startsWith(`${mount}/`))) {
        throw new Refusal(404, Code.NOT_FOUND, `not under the dashboard's path ${JSON.stringify(mount)}`)
      }
      const method = request.method.toUpperCase()
      /** @param {string} name */
      const header = (name) => request.headers.get(name) ?? undefined
      /** @param {string} apiPath */
      const api = (apiPath) =>
        serve({
          method,
          path: apiPath,
          query: url.searchParams,
          header,
          json: async () => parseJson(await readCapped(request.body, config.maxBodyBytes, BODY_TIMEOUT_MS)),
          raw: request,
        })
      const answer = await answerFor(method, url.pathname.slice(mount.length), mount, url.search, header, api)
      return response(answer, method === 'HEAD')
    } catch (err) {
      try {
        return response(jsonAnswer(failed(err)))
      } catch {
        return new Response(null, { status: 500 })
      }
    }
  }
}

module.exports = { createDashboardHandler, createDashboardFetchHandler, CSP, SECURITY_HEADERS }
