// @ts-check
'use strict'
// The dashboard's routes, written once for both handlers (the Node one and
// the fetch-style one, lib/dashboard/server.js, which only translate
// requests and answers). Every route is backed by the engine's public
// methods; nothing here reaches into the engine.
//
//   GET  api/info                         what the page needs to know (read-only?)
//   GET  api/stats?since=<ms>             stats() and the sampler's samples newer than `since`
//   GET  api/triggers?tenantId&type&status       listTriggers (webhook secrets hidden)
//   GET  api/triggers/<id>                getTrigger
//   POST api/triggers/<id>/pause|resume|fire     body (fire): { payload? }
//   GET  api/executions?status&tenantId&callableName&limit   newest first, summaries
//   GET  api/executions/<id>              getExecution (the whole record)
//   POST api/executions/<id>/cancel|retry
//   POST api/explain                      body: { event, source? } or { metric }
//
// Answers are JSON; errors are `{ error: { code, message } }` with the
// HTTP status of their code (see `statusOf`). Actions (the POSTs that
// change something) need `options.authorize(req, { action, id })` to
// answer exactly `true`: without it, or when it throws, rejects or
// answers anything else, they are refused (403). Every POST (explain too)
// must also carry the page's `x-enact-dashboard: 1` header and must not
// come from another site (`Sec-Fetch-Site`), so a plain HTML form or a
// cross-site script cannot send one. Reads are open unless
// `options.authorizeRead(req, { action: 'read' | 'explain', id? })` is given.

const { Code, describe, safeGet } = require('../errors')
const { Refusal } = require('../webhook-handler')
const { INTERVAL_MS } = require('./sampler')

/**
 * Codes of the dashboard's own answers. They are not errors the engine
 * throws (those come from Rust, `ErrorCodes`), only HTTP answers.
 */
const DashboardCode = Object.freeze({
  /** An action refused by `authorize`, or a POST without the page's header. */
  FORBIDDEN: 'ENACT_FORBIDDEN',
})

/** The header the page sends with every POST (a form cannot set it). */
const ACTION_HEADER = 'x-enact-dashboard'

/** Default and largest `limit` of the executions list. */
const DEFAULT_LIMIT = 100
const MAX_LIMIT = 1000

/** What a POST body may hold by default. */
const DEFAULT_MAX_BODY_BYTES = 64 * 1024
/** Milliseconds a POST body may take to arrive. */
const BODY_TIMEOUT_MS = 10_000

/** What every code starts with (`ENACT_`), read from one of Rust's codes. */
const PREFIX = Code.NOT_FOUND.slice(0, -'NOT_FOUND'.length)

/**
 * The HTTP status of an error code: NOT_FOUND 404; INVALID_STATE 409 and
 * every other INVALID_* 400; the trigger not active and a callable that is
 * not registered 409; the engine shut down 503; the HTTP-level codes as
 * the webhook handlers answer them; anything else 500. Read from the
 * codes' names, so a code Rust adds later is placed by its name.
 * @param {unknown} code
 * @returns {number}
 */
function statusOf(code) {
  if (code === DashboardCode.FORBIDDEN) return 403
  if (typeof code !== 'string' || !code.startsWith(PREFIX)) return 500
  const name = code.slice(PREFIX.length)
  if (name === 'NOT_FOUND') return 404
  if (name === 'INVALID_STATE' || name === 'TRIGGER_INACTIVE' || name === 'UNKNOWN_CALLABLE') return 409
  if (name.startsWith('INVALID_') || name === 'BAD_REQUEST') return 400
  if (name === 'SHUTDOWN') return 503
  if (name === 'BODY_TOO_LARGE') return 413
  if (name === 'METHOD') return 405
  if (name === 'RATE_LIMITED') return 429
  return 500
}

/**
 * @typedef {object} DashRequest a request, whichever server it came from
 * @property {string} method
 * @property {string} path below the mount point, starting with `/api/`
 * @property {URLSearchParams} query
 * @property {(name: string) => string | undefined} header lower-case name
 * @property {() => Promise<unknown>} json the body as JSON (`{}` when empty); rejects with a Refusal
 * @property {unknown} raw what `authorize` receives: Node's `req` or the fetch `Request`
 */

/**
 * @typedef {object} DashAnswer
 * @property {number} status
 * @property {unknown} body sent as JSON
 * @property {Record<string, string>} [headers]
 */

/**
 * @typedef {object} DashboardConfig checked options
 * @property {string} basePath
 * @property {((req: any, action: { action: string, id?: string }) => unknown) | undefined} authorize
 * @property {((req: any, action: { action: string, id?: string }) => unknown) | undefined} authorizeRead
 * @property {number} maxBodyBytes
 */

const OPTION_NAMES = ['basePath', 'authorize', 'authorizeRead', 'maxBodyBytes']

/**
 * The dashboard options, checked (functions cannot cross to Rust as JSON,
 * so they are checked here, as strictly: unknown keys are refused).
 * @param {unknown} options
 * @param {(message: string) => Error} fail makes the error to throw
 * @returns {DashboardConfig}
 */
function dashboardConfig(options, fail) {
  /** @type {DashboardConfig} */
  const config = { basePath: '', authorize: undefined, authorizeRead: undefined, maxBodyBytes: DEFAULT_MAX_BODY_BYTES }
  if (options === undefined || options === null) return config
  if (typeof options !== 'object' || Array.isArray(options)) throw fail(`options: expected an object, got ${Array.isArray(options) ? 'an array' : typeof options}`)
  const o = /** @type {Record<string, unknown>} */ (options)
  for (const key of Object.keys(o)) {
    if (!OPTION_NAMES.includes(key)) throw fail(`options.${key}: unknown option (expected one of ${OPTION_NAMES.join(', ')})`)
  }
  if (o.basePath !== undefined) {
    const base = o.basePath
    if (typeof base !== 'string' || (base !== '' && !base.startsWith('/')) || /[?#\s]/.test(base) || base.includes('//')) {
      throw fail(`options.basePath: expected a path such as '/enact' (or '' for the root), got ${JSON.stringify(base)}`)
    }
    config.basePath = base.replace(/\/+$/, '')
  }
  for (const name of /** @type {const} */ (['authorize', 'authorizeRead'])) {
    const fn = o[name]
    if (fn !== undefined && typeof fn !== 'function') throw fail(`options.${name}: expected a function, got ${fn === null ? 'null' : typeof fn}`)
    config[name] = /** @type {any} */ (fn)
  }
  if (o.maxBodyBytes !== undefined) {
    const n = o.maxBodyBytes
    if (typeof n !== 'number' || !Number.isInteger(n) || n < 1 || n > 16 * 1024 * 1024) {
      throw fail(`options.maxBodyBytes: expected an integer from 1 to ${16 * 1024 * 1024}, got ${typeof n === 'number' ? n : typeof n}`)
    }
    config.maxBodyBytes = n
  }
  return config
}

/**
 * Whether `fn(req, action)` answers exactly `true`; a throw, a rejection
 * or anything else is a refusal.
 * @param {Function} fn
 * @param {unknown} req
 * @param {{ action: string, id?: string }} action
 */
async function granted(fn, req, action) {
  /** @type {ReturnType<typeof setTimeout> | undefined} */
  let timer
  try {
    // An answer that never comes is a refusal, not a request held forever.
    const late = new Promise((resolve) => {
      timer = setTimeout(() => resolve(false), AUTHORIZE_TIMEOUT_MS)
      timer.unref?.()
    })
    return (await Promise.race([Promise.resolve().then(() => fn(req, action)), late])) === true
  } catch {
    return false
  } finally {
    clearTimeout(timer)
  }
}

/** How long `authorize` / `authorizeRead` may take before the request is refused. */
const AUTHORIZE_TIMEOUT_MS = 10_000

/**
 * A copy of a trigger for the page: the webhook secret is never sent.
 * @param {any} trigger
 */
function shownTrigger(trigger) {
  if (trigger === null || typeof trigger !== 'object' || trigger.webhookSecret === undefined) return trigger
  return { ...trigger, webhookSecret: '(hidden)' }
}

/**
 * One line of the executions list: what the table shows, without the
 * (possibly large) input, output and context.
 * @param {any} rec
 */
function summary(rec) {
  const error = rec.error
  const message = error !== null && typeof error === 'object' && typeof error.message === 'string' ? error.message : undefined
  return {
    executionId: rec.executionId,
    tenantId: rec.tenantId,
    callableName: rec.callableName,
    status: rec.status,
    mode: rec.config?.mode,
    priority: rec.config?.priority,
    queuedAt: rec.queuedAt,
    startedAt: rec.startedAt,
    completedAt: rec.completedAt,
    attempt: rec.attempt,
    triggerId: rec.triggerId,
    progress: rec.progress,
    error: message === undefined ? undefined : message.length > 300 ? `${message.slice(0, 300)}…` : message,
  }
}

/**
 * The routes over `engine`.
 * @param {any} engine the BackgroundEngine (its public methods only)
 * @param {DashboardConfig} config
 * @param {import('./sampler').Sampler} sampler
 * @returns {(req: DashRequest) => Promise<DashAnswer>} never rejects
 */
function createApi(engine, config, sampler) {
  /**
   * @param {URLSearchParams} query
   * @param {string[]} names
   */
  function filterOf(query, names) {
    /** @type {Record<string, string>} */
    const filter = {}
    for (const name of names) {
      const value = query.get(name)
      if (value !== null && value !== '') filter[name] = value
    }
    return filter
  }

  /** @param {URLSearchParams} query */
  function limitOf(query) {
    const text = query.get('limit')
    if (text === null || text === '') return DEFAULT_LIMIT
    const n = Number(text)
    if (!Number.isInteger(n) || n < 1 || n > MAX_LIMIT) throw new Refusal(400, Code.BAD_REQUEST, `limit: expected an integer from 1 to ${MAX_LIMIT}, got ${JSON.stringify(text)}`)
    return n
  }

  /**
   * The body of a POST as an object.
   * @param {DashRequest} req
   * @returns {Promise<Record<string, unknown>>}
   */
  async function bodyObject(req) {
    const body = await req.json()
    if (body === null || typeof body !== 'object' || Array.isArray(body)) throw new Refusal(400, Code.BAD_REQUEST, 'body: expected a JSON object')
    return /** @type {Record<string, unknown>} */ (body)
  }

  /**
   * Refuses a POST that a plain form or another site could have sent.
   * @param {DashRequest} req
   */
  function checkOrigin(req) {
    if (req.header(ACTION_HEADER) !== '1') {
      throw new Refusal(403, DashboardCode.FORBIDDEN, `actions need the header ${ACTION_HEADER}: 1 (sent by the dashboard page)`)
    }
    const site = req.header('sec-fetch-site')
    if (site !== undefined && site !== 'same-origin' && site !== 'none') {
      throw new Refusal(403, DashboardCode.FORBIDDEN, `actions are accepted from the dashboard's own origin only (Sec-Fetch-Site: ${site})`)
    }
  }

  /**
   * @param {DashRequest} req
   * @param {'cancel' | 'retry' | 'pause' | 'resume' | 'fire'} action
   * @param {string} id
   */
  async function authorizeAction(req, action, id) {
    checkOrigin(req)
    if (config.authorize === undefined) {
      throw new Refusal(403, DashboardCode.FORBIDDEN, `${action}: this dashboard is read-only (no authorize option was given)`)
    }
    if (!(await granted(config.authorize, req.raw, { action, id }))) {
      throw new Refusal(403, DashboardCode.FORBIDDEN, `${action}: not authorized`)
    }
  }

  /**
   * @param {DashRequest} req
   * @param {{ action: 'read' | 'explain', id?: string }} what
   */
  async function authorizeRead(req, what) {
    if (config.authorizeRead === undefined) return
    if (!(await granted(config.authorizeRead, req.raw, what))) throw new Refusal(403, DashboardCode.FORBIDDEN, 'not authorized to read this dashboard')
  }

  /**
   * @param {string} method
   * @param {string[]} allowed
   */
  function onlyMethods(method, allowed) {
    if (!allowed.includes(method)) {
      throw Object.assign(new Refusal(405, Code.METHOD, `use ${allowed.filter((m) => m !== 'HEAD').join(' or ')}`), { allow: allowed.join(', ') })
    }
  }

  /**
   * @param {string} segment
   * @returns {string}
   */
  function decoded(segment) {
    try {
      return decodeURIComponent(segment)
    } catch {
      throw new Refusal(400, Code.BAD_REQUEST, `path: ${JSON.stringify(segment.slice(0, 200))} is not valid percent-encoding`)
    }
  }

  /**
   * @param {DashRequest} req
   * @returns {Promise<DashAnswer>}
   */
  async function route(req) {
    const parts = req.path.split('/').slice(2) // ['', 'api', ...]
    const [resource, rawId, verb, ...rest] = parts
    const method = req.method === 'HEAD' ? 'GET' : req.method
    const read = ['GET', 'HEAD']
    if (rest.length > 0) throw notFound(req.path)

    if (resource === 'info' && rawId === undefined) {
      onlyMethods(req.method, read)
      await authorizeRead(req, { action: 'read' })
      return ok({
        readOnly: config.authorize === undefined,
        sampleIntervalMs: INTERVAL_MS,
        now: engine.now().toISOString(),
      })
    }

    if (resource === 'stats' && rawId === undefined) {
      onlyMethods(req.method, read)
      await authorizeRead(req, { action: 'read' })
      const sinceText = req.query.get('since')
      const since = sinceText === null || sinceText === '' ? -Infinity : Number(sinceText)
      if (Number.isNaN(since)) throw new Refusal(400, Code.BAD_REQUEST, `since: expected a time in ms, got ${JSON.stringify(sinceText)}`)
      const stats = await engine.stats()
      return ok({ stats, samples: sampler.samples(since), now: Date.now() })
    }

    if (resource === 'triggers') {
      if (rawId === undefined || rawId === '') {
        onlyMethods(req.method, read)
        await authorizeRead(req, { action: 'read' })
        const triggers = await engine.listTriggers(filterOf(req.query, ['tenantId', 'type', 'status']))
        return ok({ triggers: triggers.map(shownTrigger) })
      }
      const id = decoded(rawId)
      if (verb === undefined) {
        onlyMethods(req.method, read)
        await authorizeRead(req, { action: 'read', id })
        return ok({ trigger: shownTrigger(await engine.getTrigger(id)) })
      }
      if (verb === 'pause' || verb === 'resume' || verb === 'fire') {
        onlyMethods(method, ['POST'])
        await authorizeAction(req, verb, id)
        if (verb === 'fire') {
          const body = await bodyObject(req)
          const fired = body.payload === undefined ? await engine.fire(id) : await engine.fire(id, body.payload)
          return ok({ fired })
        }
        const trigger = verb === 'pause' ? await engine.pauseTrigger(id) : await engine.resumeTrigger(id)
        return ok({ trigger: shownTrigger(trigger) })
      }
      throw notFound(req.path)
    }

    if (resource === 'executions') {
      if (rawId === undefined || rawId === '') {
        onlyMethods(req.method, read)
        await authorizeRead(req, { action: 'read' })
        const limit = limitOf(req.query)
        // Newest first, a page at a time: `next` is the cursor of the next
        // (older) page, `after=<next>`.
        const filter = filterOf(req.query, ['status', 'tenantId', 'callableName', 'triggerId', 'after'])
        const list = await engine.listExecutions({ ...filter, limit, order: 'newest' })
        const next = list.length === limit && list.length > 0 ? list[list.length - 1].executionId : null
        return ok({ executions: list.map(summary), order: 'newest', limit, next })
      }
      const id = decoded(rawId)
      if (verb === undefined) {
        onlyMethods(req.method, read)
        await authorizeRead(req, { action: 'read', id })
        const execution = await engine.getExecution(id)
        if (execution === null) throw new Refusal(404, Code.NOT_FOUND, `execution ${JSON.stringify(id)} not found`)
        return ok({ execution })
      }
      if (verb === 'cancel') {
        onlyMethods(method, ['POST'])
        await authorizeAction(req, 'cancel', id)
        const cancelled = await engine.cancel(id)
        return ok({ cancelled, execution: await engine.getExecution(id) })
      }
      if (verb === 'retry') {
        onlyMethods(method, ['POST'])
        await authorizeAction(req, 'retry', id)
        return ok({ execution: await engine.retry(id) })
      }
      throw notFound(req.path)
    }

    if (resource === 'explain' && rawId === undefined) {
      onlyMethods(method, ['POST'])
      checkOrigin(req)
      await authorizeRead(req, { action: 'explain' })
      const body = await bodyObject(req)
      if (body.metric !== undefined) {
        return ok({ explanations: await engine.explainMetric(body.metric) })
      }
      if (body.event === undefined) throw new Refusal(400, Code.BAD_REQUEST, 'body: expected { event: { tenantId, type, data }, source? } or { metric: { tenantId, name, value } }')
      const source = body.source
      if (source !== undefined && typeof source !== 'string') throw new Refusal(400, Code.BAD_REQUEST, 'source: expected a string')
      const explanations = source === undefined ? await engine.explain(body.event) : await engine.explain(body.event, { source })
      return ok({ explanations })
    }

    throw notFound(req.path)
  }

  return async function serve(req) {
    try {
      const answer = await route(req)
      // Only requests that were answered keep the sampler going (a
      // refused or unknown one does not make the engine sample).
      sampler.touch()
      return answer
    } catch (err) {
      return failed(err)
    }
  }
}

/** @param {string} path */
function notFound(path) {
  return new Refusal(404, Code.NOT_FOUND, `no dashboard route ${JSON.stringify(path.slice(0, 200))}`)
}

/**
 * @param {unknown} body
 * @returns {DashAnswer}
 */
function ok(body) {
  return { status: 200, body }
}

/**
 * The answer to anything thrown while serving: its code's status and
 * `{ error: { code, message } }`. Never throws.
 * @param {unknown} err
 * @returns {DashAnswer}
 */
function failed(err) {
  const code = safeGet(err, 'code')
  const status = err instanceof Refusal ? err.status : statusOf(code)
  /** @type {DashAnswer} */
  const answer = { status, body: { error: { code: typeof code === 'string' ? code : Code.INTERNAL, message: describe(err) } } }
  const allow = safeGet(err, 'allow')
  if (typeof allow === 'string') answer.headers = { allow }
  return answer
}

module.exports = {
  createApi,
  dashboardConfig,
  statusOf,
  failed,
  DashboardCode,
  ACTION_HEADER,
  BODY_TIMEOUT_MS,
  DEFAULT_MAX_BODY_BYTES,
}
