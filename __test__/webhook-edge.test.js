// Issue 10, items 1, 2 and 9: webhookHandler() answers every request over
// HTTP and never throws, whatever its path, headers or body (or what a body
// parser made of it), and a body that trickles in gets 408.
const net = require('net')
const { engine, listen, request, runNode } = require('./helpers')

const T = 'tenant_a'
const SECRET = `whsec_${Buffer.from('a shared webhook key of 32 bytes').toString('base64')}`

/**
 * Runs `body` in a child process holding a real HTTP server on 127.0.0.1
 * around `webhookHandler()` (wrapped by `wrap(handler)`, for a body
 * parser), a webhook trigger `id` and a signed one `signedId`. `send(path,
 * options)` makes a raw request and resolves with `{status, json}`.
 * Resolves with the exit code and the JSON lines logged.
 */
async function serverChild(body, wrap = 'handler') {
  const { code, out } = await runNode(`
    const http = require('http')
        const { BackgroundEngine } = require('.')
    const log = (v) => console.log('@@' + JSON.stringify(v))
    const e = new BackgroundEngine()
    e.registerCallable('hook', async (ctx) => ctx.triggerSource ?? null)
    const handler = e.webhookHandler()
    const server = http.createServer(${wrap})
    const sign = (id, ts, body) => 'v1,' + crypto.createHmac('sha256', Buffer.from(${JSON.stringify(SECRET)}.slice(6), 'base64')).update(id + '.' + ts + '.').update(body).digest('base64')
    function send(path, { method = 'POST', headers = {}, body = '' } = {}) {
      return new Promise((resolve, reject) => {
        const req = http.request({ host: '127.0.0.1', port: server.address().port, path, method, headers }, (res) => {
          let text = ''
          res.on('data', (d) => (text += d))
          res.on('end', () => { let json; try { json = JSON.parse(text) } catch {} ; resolve({ status: res.statusCode, json }) })
        })
        req.on('error', reject)
        req.end(body)
      })
    }
    server.listen(0, '127.0.0.1', async () => {
      try {
        const id = (await e.registerTrigger({ tenantId: 't', type: 'webhook', condition: {}, action: { callableName: 'hook' }, allowUnsigned: true })).triggerId
        const signedId = (await e.registerTrigger({ tenantId: 't', type: 'webhook', condition: {}, action: { callableName: 'hook' }, webhookSecret: ${JSON.stringify(SECRET)} })).triggerId
        ${body}
      } catch (err) {
        log({ outer: String(err && err.stack) })
      }
      server.close()
      await e.shutdown()
      log({ done: true })
    })
  `)
  const lines = out
    .split('\n')
    .filter((l) => l.startsWith('@@'))
    .map((l) => JSON.parse(l.slice(2)))
  return { code, out, lines }
}

describe('webhookHandler() never throws (a real server in a child process)', () => {
  test('a path that does not percent-decode answers 400 ENACT_BAD_REQUEST, and the server serves on', async () => {
    const { code, out, lines } = await serverChild(`
      for (const path of ['/webhooks/%E0%A4%A', '/webhooks/%', '/webhooks/%ZZ', '/webhooks/' + id + '%']) {
        const r = await send(path, { body: '{}' })
        log({ path, status: r.status, code: r.json && r.json.code, error: r.json && r.json.error })
      }
      const ok = await send('/webhooks/' + id, { body: '{"ok":true}' })
      log({ after: ok.status })
    `)
    expect({ code, out }).toEqual({ code: 0, out: expect.stringContaining('"done":true') })
    const bad = lines.filter((l) => l.path)
    expect(bad).toHaveLength(4)
    for (const r of bad) expect(r).toMatchObject({ status: 400, code: 'ENACT_BAD_REQUEST', error: expect.stringMatching(/^path: /) })
    expect(lines).toContainEqual({ after: 202 })
  })

  test('behind a JSON body parser, a very deep body or one holding a BigInt answers 400; the raw bytes, when kept, are verified', async () => {
    // Like express.json(): read the body, then set req.body to what the
    // parser made of it (here, values JSON.parse cannot make but parsers
    // with revivers or other formats can), and pass the request on.
    const { code, out, lines } = await serverChild(
      `
      for (const kind of ['deep', 'bigint', 'cycle']) {
        const r = await send('/webhooks/' + id, { headers: { 'x-make': kind }, body: '{}' })
        log({ kind, status: r.status, code: r.json && r.json.code, error: r.json && r.json.error })
      }
      // A parser that also kept the raw bytes (req.rawBody): the signature is checked on them.
      const body = '{"n":12345678901234567890}'
      const ts = Math.floor(Date.now() / 1000)
      const headers = { 'x-make': 'bigint', 'x-raw': '1', 'webhook-id': 'msg_1', 'webhook-timestamp': String(ts), 'webhook-signature': sign('msg_1', ts, body) }
      const signed = await send('/webhooks/' + signedId, { headers, body })
      log({ signed: signed.status })
    `,
      `(req, res) => {
        const chunks = []
        req.on('data', (c) => chunks.push(c))
        req.on('end', () => {
          const make = req.headers['x-make']
          if (make === 'deep') { let o = {}; for (let i = 0; i < 200000; i++) o = { a: o }; req.body = o }
          if (make === 'bigint') req.body = { n: 12345678901234567890n }
          if (make === 'cycle') { const o = {}; o.o = o; req.body = o }
          if (req.headers['x-raw']) req.rawBody = Buffer.concat(chunks)
          handler(req, res)
        })
      }`,
    )
    expect({ code, out }).toEqual({ code: 0, out: expect.stringContaining('"done":true') })
    const parsed = lines.filter((l) => l.kind)
    expect(parsed).toHaveLength(3)
    for (const r of parsed) expect(r).toMatchObject({ status: 400, code: 'ENACT_BAD_REQUEST', error: expect.stringMatching(/^request\.body: /) })
    expect(lines).toContainEqual({ signed: 202 })
  })

  test('headers Node would never make and a response already sent do not throw either', async () => {
    const { code, out, lines } = await serverChild(
      `
      const r1 = await send('/webhooks/' + id, { headers: { 'x-mode': 'odd-headers' }, body: '{}' })
      const r2 = await send('/webhooks/' + id, { headers: { 'x-mode': 'answered' }, body: '{}' })
      log({ odd: r1.status, answered: r2.status })
    `,
      `(req, res) => {
        if (req.headers['x-mode'] === 'odd-headers') {
          // A framework that replaced req.headers with something hostile.
          Object.defineProperty(req, 'headers', { get() { throw new Error('headers getter throws') } })
        } else {
          res.statusCode = 299
          res.end('answered by someone else')
        }
        handler(req, res)
      }`,
    )
    expect({ code, out }).toEqual({ code: 0, out: expect.stringContaining('"done":true') })
    expect(lines).toContainEqual({ odd: 500, answered: 299 })
  })
})

describe('webhookHandler({ bodyTimeoutMs })', () => {
  test('a body that trickles in past the deadline answers 408 and the connection is closed', async () => {
    const e = engine()
    e.registerCallable('hook', async () => null)
    const { triggerId } = await e.registerTrigger({ tenantId: T, type: 'webhook', condition: {}, action: { callableName: 'hook' }, allowUnsigned: true })
    const { server } = await listen(e.webhookHandler({ bodyTimeoutMs: 150 }))
    // A raw socket: the request line, headers and a first piece of a
    // 100-byte body, then nothing more.
    const socket = net.connect(server.address().port, '127.0.0.1')
    let text = ''
    socket.setEncoding('utf8')
    socket.on('data', (d) => (text += d))
    const closed = new Promise((resolve) => socket.on('close', resolve))
    socket.on('error', () => {})
    socket.write(`POST /webhooks/${triggerId} HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: 100\r\n\r\n{"a":`)
    await closed
    expect(text).toMatch(/^HTTP\/1\.1 408 /)
    const json = JSON.parse(text.slice(text.indexOf('\r\n\r\n') + 4))
    expect(json).toEqual({ code: 'ENACT_BAD_REQUEST', error: 'body: not received within 150 ms' })
    expect(await e.listExecutions()).toEqual([])
  })

  test('a body that arrives in time is accepted; the deadline does not outlive the request', async () => {
    const e = engine()
    e.registerCallable('hook', async (ctx) => ctx.triggerSource)
    const { triggerId } = await e.registerTrigger({ tenantId: T, type: 'webhook', condition: {}, action: { callableName: 'hook' }, allowUnsigned: true })
    const { url } = await listen(e.webhookHandler({ bodyTimeoutMs: 60000 }))
    const r = await request(`${url}/webhooks/${triggerId}`, { chunks: ['{"a":', '1}'] })
    expect(r.status).toBe(202)
    expect((await e.wait(r.json.executionId)).output).toEqual({ a: 1 })
  })

  test('a bodyTimeoutMs that is not a positive integer of milliseconds is ENACT_INVALID_TRIGGER naming the option', () => {
    const e = engine()
    for (const bad of [0, -5, 1.5, '100', 2 ** 31]) {
      expect(() => e.webhookHandler({ bodyTimeoutMs: bad })).toThrow(
        expect.objectContaining({ code: 'ENACT_INVALID_TRIGGER', message: expect.stringMatching(/^options\.bodyTimeoutMs: expected a positive integer/) }),
      )
    }
    expect(typeof e.webhookHandler({ bodyTimeoutMs: 1 })).toBe('function')
  })
})
