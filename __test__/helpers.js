const { spawn } = require('child_process')
const path = require('path')
const { BackgroundEngine } = require('..')

/** Resolves with the payload of the next `name` event matching `pred`. */
function nextEvent(engine, name, pred = () => true) {
  return new Promise((resolve) => {
    const fn = (payload) => {
      if (!pred(payload)) return
      engine.off(name, fn)
      resolve(payload)
    }
    engine.on(name, fn)
  })
}

/** A promise with its resolve function exposed. */
function deferred() {
  let resolve
  const promise = new Promise((r) => (resolve = r))
  return { promise, resolve }
}

/**
 * Resolves with `check()`'s first truthy value (checked every 10 ms), or
 * fails after `ms`: for state another process or the database holds,
 * which sends no event.
 */
async function until(check, ms = 10_000, what = 'the condition') {
  const end = Date.now() + ms
  for (;;) {
    const v = await check()
    if (v) return v
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`)
    await new Promise((r) => setTimeout(r, 10))
  }
}

/** A webhook secret (Standard Webhooks `whsec_` form) for the tests. */
const SECRET = `whsec_${Buffer.from('a shared webhook key of 32 bytes').toString('base64')}`

/** A delivery of `body` with message id `id`, signed with {@link SECRET} now. */
function signed(body, id) {
  const crypto = require('crypto')
  const ts = String(Math.floor(Date.now() / 1000))
  const mac = crypto.createHmac('sha256', Buffer.from(SECRET.slice(6), 'base64')).update(`${id}.${ts}.${body}`).digest('base64')
  return { headers: { 'webhook-id': id, 'webhook-timestamp': ts, 'webhook-signature': `v1,${mac}` }, body }
}

/** Rejection of `p`, failing the test if it resolves. */
async function rejection(p) {
  try {
    await p
  } catch (err) {
    return err
  }
  throw new Error('expected a rejection')
}

/** Engines made by `engine()` are shut down after each test. */
const engines = []
function engine(options) {
  const e = new BackgroundEngine(options)
  engines.push(e)
  return e
}
afterEach(async () => {
  await Promise.all(engines.splice(0).map((e) => e.shutdown({ timeoutMs: 100 })))
})

/**
 * A callable that never settles; `aborted` resolves with its signal's
 * reason once the engine aborts it (timeout, cancel or shutdown).
 */
function hangUntilAborted() {
  const aborted = deferred()
  const fn = (ctx) => {
    ctx.signal.addEventListener('abort', () => aborted.resolve(ctx.signal.reason))
    return new Promise(() => {})
  }
  return { fn, aborted: aborted.promise }
}

/**
 * An engine with its one slot held by a gate job until `open()`, so that
 * what is submitted meanwhile queues up and the order it runs in can be
 * observed. Callable `job` pushes `pick(ctx)` to `order`, then calls
 * `onRun(ctx)` and returns `ctx.input`.
 */
async function gatedEngine(pick, onRun = () => {}) {
  const e = engine({ concurrency: 1 })
  const gate = deferred()
  const order = []
  e.registerCallable('job', async (ctx) => {
    if (ctx.input === 'gate') return gate.promise
    order.push(pick(ctx))
    onRun(ctx)
    return ctx.input ?? null
  })
  const held = await e.submit({ tenantId: 'gatekeeper', callableName: 'job', input: 'gate' })
  return { e, order, held, open: () => gate.resolve(null) }
}

/** Runs `source` in a fresh Node process at the package root; resolves with its exit code and output. */
function runNode(source) {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['-e', source], { cwd: path.join(__dirname, '..') })
    let out = ''
    child.stdout.on('data', (d) => (out += d))
    child.stderr.on('data', (d) => (out += d))
    child.on('exit', (code) => resolve({ code, out }))
  })
}

/** Whether `v` is an Error from any realm (Jest runs tests in their own vm context). */
function isError(v) {
  return Object.prototype.toString.call(v) === '[object Error]'
}

module.exports = { SECRET, signed, until, nextEvent, deferred, rejection, engine, gatedEngine, hangUntilAborted, runNode, isError }

// --- HTTP helpers (webhook and callback tests) ---

const http = require('http')

/** node:http servers started by `listen()` are closed after each test. */
const servers = []
/** Starts `handler` on 127.0.0.1, a free port; resolves with `{server, url}` (url has no trailing slash). */
async function listen(handler) {
  const server = http.createServer(handler)
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve))
  servers.push(server)
  return { server, url: `http://127.0.0.1:${server.address().port}` }
}
afterEach(async () => {
  await Promise.all(
    servers.splice(0).map(
      (s) =>
        new Promise((resolve) => {
          s.close(() => resolve())
          s.closeAllConnections()
        }),
    ),
  )
})

/**
 * Sends one request; resolves with `{status, headers, text, json}`. `body`
 * (string or Buffer) is sent with a content-length; `chunks` instead are
 * written one by one without one (chunked transfer encoding).
 */
function request(url, { method = 'POST', headers = {}, body, chunks } = {}) {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method, headers }, (res) => {
      let text = ''
      res.setEncoding('utf8')
      res.on('data', (d) => (text += d))
      res.on('end', () => {
        let json
        try {
          json = JSON.parse(text)
        } catch {}
        resolve({ status: res.statusCode, headers: res.headers, text, json })
      })
    })
    // The server may close the connection after answering early (413).
    req.on('error', (err) => {
      if (!req.res) reject(err)
    })
    if (chunks) {
      for (const c of chunks) req.write(c)
      req.end()
    } else {
      req.end(body)
    }
  })
}

module.exports.listen = listen
module.exports.request = request
