const crypto = require('crypto')
const { nextEvent, rejection, engine, listen, request } = require('./helpers')

const T = 'tenant_a'
const KEY = Buffer.from('a shared webhook key of 32 bytes')
const SECRET = `whsec_${KEY.toString('base64')}`
const OTHER_SECRET = `whsec_${Buffer.from('some other key entirely').toString('base64')}`

const nowSecs = () => Math.floor(Date.now() / 1000)
let msgSeq = 0
const newMsgId = () => `msg_${process.pid}_${++msgSeq}`

/** `v1,<base64 HMAC-SHA256>` of `${id}.${timestamp}.${body}` under a `whsec_` secret. */
function sign(secret, id, timestamp, body) {
  const key = Buffer.from(secret.slice('whsec_'.length), 'base64')
  const mac = crypto.createHmac('sha256', key)
  mac.update(`${id}.${timestamp}.`)
  mac.update(body)
  return `v1,${mac.digest('base64')}`
}

/** Standard Webhooks headers for `body` (overrides replace or, when undefined, drop headers). */
function signedHeaders(body, { secret = SECRET, id = newMsgId(), timestamp = nowSecs(), ...overrides } = {}) {
  const headers = {
    'webhook-id': id,
    'webhook-timestamp': String(timestamp),
    'webhook-signature': sign(secret, id, timestamp, body),
    ...overrides,
  }
  for (const k of Object.keys(headers)) if (headers[k] === undefined) delete headers[k]
  return headers
}

/**
 * An engine with callable `hook` (records ctx, returns ctx.triggerSource)
 * and one webhook trigger: unsigned (`allowUnsigned: true`) unless
 * `triggerFields` give a `webhookSecret`.
 */
async function setup(triggerFields = {}, engineOptions = undefined) {
  const e = engine(engineOptions)
  const seen = []
  e.registerCallable('hook', async (ctx) => {
    seen.push(ctx)
    return ctx.triggerSource ?? null
  })
  const fields = 'webhookSecret' in triggerFields ? triggerFields : { allowUnsigned: true, ...triggerFields }
  const trigger = await e.registerTrigger({ tenantId: T, type: 'webhook', condition: {}, action: { callableName: 'hook' }, ...fields })
  return { e, seen, trigger, id: trigger.triggerId }
}

const executionsOf = async (e, triggerId) => (await e.listExecutions({})).filter((x) => x.triggerId === triggerId)

describe('engine.webhook() on an unsigned trigger', () => {
  test('fires with the parsed JSON body as triggerSource, which the callable gets', async () => {
    const { e, seen, trigger, id } = await setup()
    const firedEvent = nextEvent(e, 'trigger.fired')
    const fired = await e.webhook(id, { headers: { 'content-type': 'application/json' }, body: '{"order":{"id":7,"items":["a","b"]}}' })
    expect(fired).toMatchObject({
      triggerId: id,
      triggerName: trigger.name,
      triggerType: 'webhook',
      triggerSource: { order: { id: 7, items: ['a', 'b'] } },
    })
    expect(fired.executionId).toMatch(/^exec_[0-9A-Za-z]{27}$/)
    expect(Number.isNaN(Date.parse(fired.firedAt))).toBe(false)
    expect(await firedEvent).toEqual(fired)
    const done = await e.wait(fired.executionId)
    expect(done).toMatchObject({ status: 'completed', triggerId: id, output: { order: { id: 7, items: ['a', 'b'] } } })
    expect(done.config.mode).toBe('silent')
    expect(seen).toHaveLength(1)
    expect(seen[0].triggerId).toBe(id)
    expect(seen[0].triggerSource).toEqual({ order: { id: 7, items: ['a', 'b'] } })
    expect((await e.getTrigger(id)).fireCount).toBe(1)
  })

  test('a body that is not JSON arrives as a string', async () => {
    const { e, seen, id } = await setup()
    const fired = await e.webhook(id, { headers: {}, body: 'plain text, not json' })
    expect(fired.triggerSource).toBe('plain text, not json')
    await e.wait(fired.executionId)
    expect(seen[0].triggerSource).toBe('plain text, not json')
  })

  test('a Buffer body works like the same bytes as a string', async () => {
    const { e, seen, id } = await setup()
    const fired = await e.webhook(id, { headers: {}, body: Buffer.from('{"via":"buffer","n":[1,2]}') })
    expect(fired.triggerSource).toEqual({ via: 'buffer', n: [1, 2] })
    const done = await e.wait(fired.executionId)
    expect(done.output).toEqual({ via: 'buffer', n: [1, 2] })
    expect(seen[0].triggerSource).toEqual({ via: 'buffer', n: [1, 2] })
  })

  test('a request that is not { headers, body } is ENACT_INVALID_TRIGGER naming the field', async () => {
    const { e, id } = await setup()
    const bad = async (req, message) => {
      const err = await rejection(e.webhook(id, req))
      expect(err.code).toBe('ENACT_INVALID_TRIGGER')
      expect(err.message).toMatch(message)
    }
    await bad('raw body', /^request: expected an object/)
    await bad({ headers: 'x', body: '{}' }, /^request\.headers: expected an object/)
    await bad({ headers: { 'webhook-id': { nested: true } }, body: '{}' }, /^request\.headers\.webhook-id: expected a string/)
    expect(await e.listExecutions()).toHaveLength(0)
  })
})

describe('engine.webhook() with a webhookSecret', () => {
  test('a valid signature over a string body fires', async () => {
    const { e, id } = await setup({ webhookSecret: SECRET })
    const body = '{"event":"paid","amount":42}'
    const fired = await e.webhook(id, { headers: signedHeaders(body), body })
    expect(fired).toMatchObject({ triggerId: id, triggerType: 'webhook', triggerSource: { event: 'paid', amount: 42 } })
    expect((await e.wait(fired.executionId)).status).toBe('completed')
  })

  test('a valid signature over a Buffer body fires', async () => {
    const { e, id } = await setup({ webhookSecret: SECRET })
    const body = Buffer.from('{"event":"refund","note":"caf\u00e9 \u2615"}')
    const fired = await e.webhook(id, { headers: signedHeaders(body), body })
    expect(fired.triggerSource).toEqual({ event: 'refund', note: 'caf\u00e9 \u2615' })
    expect((await e.wait(fired.executionId)).status).toBe('completed')
  })

  const bad = [
    ['missing webhook-signature', (body) => ({ headers: signedHeaders(body, { 'webhook-signature': undefined }), body }), /webhook-signature/],
    ['missing webhook-id', (body) => ({ headers: signedHeaders(body, { 'webhook-id': undefined }), body }), /webhook-id/],
    ['missing webhook-timestamp', (body) => ({ headers: signedHeaders(body, { 'webhook-timestamp': undefined }), body }), /webhook-timestamp/],
    ['signed with the wrong secret', (body) => ({ headers: signedHeaders(body, { secret: OTHER_SECRET }), body }), /signature/],
    ['a tampered body', (body) => ({ headers: signedHeaders(body), body: body.replace('42', '4200') }), /signature/],
    ['a timestamp 10 minutes old', (body) => ({ headers: signedHeaders(body, { timestamp: nowSecs() - 600 }), body }), /too old/],
    ['a timestamp 10 minutes in the future', (body) => ({ headers: signedHeaders(body, { timestamp: nowSecs() + 600 }), body }), /future/],
    ['no headers at all', (body) => ({ body }), /missing/],
  ]
  test.each(bad)('%s: rejects ENACT_WEBHOOK_SIGNATURE and nothing fires', async (_name, make, why) => {
    const { e, seen, id } = await setup({ webhookSecret: SECRET })
    const fired = []
    e.on('trigger.fired', (f) => fired.push(f))
    const err = await rejection(e.webhook(id, make('{"event":"paid","amount":42}')))
    expect(err.code).toBe('ENACT_WEBHOOK_SIGNATURE')
    expect(err.message).toMatch(why)
    expect(await executionsOf(e, id)).toEqual([])
    expect((await e.getTrigger(id)).fireCount).toBe(0)
    expect(fired).toEqual([])
    expect(seen).toEqual([])
  })

  test('header names match in any case', async () => {
    const { e, id } = await setup({ webhookSecret: SECRET })
    const body = '{"case":"mixed"}'
    const h = signedHeaders(body)
    const headers = { 'Webhook-Id': h['webhook-id'], 'WEBHOOK-TIMESTAMP': h['webhook-timestamp'], 'wEbHoOk-SiGnAtUrE': h['webhook-signature'] }
    const fired = await e.webhook(id, { headers, body })
    expect(fired.triggerSource).toEqual({ case: 'mixed' })
  })

  test('several signatures in the header pass when one of them is valid', async () => {
    const { e, id } = await setup({ webhookSecret: SECRET })
    const body = '{"rotated":true}'
    const msgId = newMsgId()
    const ts = nowSecs()
    const good = sign(SECRET, msgId, ts, body)
    const wrong = sign(OTHER_SECRET, msgId, ts, body)
    const headers = signedHeaders(body, { id: msgId, timestamp: ts, 'webhook-signature': `${wrong} v2,${good.slice(3)} ${good}` })
    const fired = await e.webhook(id, { headers, body })
    expect(fired.triggerSource).toEqual({ rotated: true })

    // Only invalid entries (one with a valid tag but the wrong version) do not pass.
    const msgId2 = newMsgId()
    const good2 = sign(SECRET, msgId2, ts, body)
    const err = await rejection(
      e.webhook(id, { headers: signedHeaders(body, { id: msgId2, timestamp: ts, 'webhook-signature': `${sign(OTHER_SECRET, msgId2, ts, body)} v2,${good2.slice(3)}` }), body }),
    )
    expect(err.code).toBe('ENACT_WEBHOOK_SIGNATURE')
    expect(await executionsOf(e, id)).toHaveLength(1)
  })

  test('the same webhook-id twice: the replay is rejected and fires nothing', async () => {
    const { e, id } = await setup({ webhookSecret: SECRET })
    const body = '{"once":true}'
    const msgId = newMsgId()
    const first = await e.webhook(id, { headers: signedHeaders(body, { id: msgId }), body })
    await e.wait(first.executionId)
    // Freshly signed, but the message id was already accepted.
    const err = await rejection(e.webhook(id, { headers: signedHeaders(body, { id: msgId }), body }))
    expect(err.code).toBe('ENACT_WEBHOOK_SIGNATURE')
    expect(err.message).toMatch(/replay/i)
    expect((await executionsOf(e, id)).map((x) => x.executionId)).toEqual([first.executionId])
    expect((await e.getTrigger(id)).fireCount).toBe(1)
  })
})

describe('webhookHandler() in http.createServer', () => {
  async function mount(e, options) {
    const { url } = await listen(e.webhookHandler(options))
    return url
  }

  test('a valid signed POST answers 202 with triggerId and executionId; the execution completes', async () => {
    const { e, seen, id } = await setup({ webhookSecret: SECRET })
    const url = await mount(e)
    const body = '{"hello":"world"}'
    const res = await request(`${url}/webhooks/${id}`, { headers: { 'content-type': 'application/json', ...signedHeaders(body) }, body })
    expect(res.status).toBe(202)
    expect(res.headers['content-type']).toMatch(/application\/json/)
    expect(res.json).toMatchObject({ triggerId: id, triggerType: 'webhook', triggerSource: { hello: 'world' } })
    expect(res.json.executionId).toMatch(/^exec_/)
    const done = await e.wait(res.json.executionId)
    expect(done).toMatchObject({ status: 'completed', triggerId: id, output: { hello: 'world' } })
    expect(seen[0].triggerSource).toEqual({ hello: 'world' })
  })

  test('an unsigned trigger accepts a plain POST', async () => {
    const { e, id } = await setup()
    const url = await mount(e)
    const res = await request(`${url}/webhooks/${id}`, { body: 'just text' })
    expect(res.status).toBe(202)
    expect(res.json).toMatchObject({ triggerId: id, triggerSource: 'just text' })
    expect((await e.wait(res.json.executionId)).output).toBe('just text')
  })

  test('a bad signature answers 401 with {error, code} and nothing fires', async () => {
    const { e, id } = await setup({ webhookSecret: SECRET })
    const url = await mount(e)
    const body = '{"hello":"world"}'
    const res = await request(`${url}/webhooks/${id}`, { headers: signedHeaders(body, { secret: OTHER_SECRET }), body })
    expect(res.status).toBe(401)
    expect(res.json).toEqual({ error: expect.stringMatching(/signature/), code: 'ENACT_WEBHOOK_SIGNATURE' })
    const unsigned = await request(`${url}/webhooks/${id}`, { body })
    expect(unsigned.status).toBe(401)
    expect(unsigned.json.code).toBe('ENACT_WEBHOOK_SIGNATURE')
    expect(await executionsOf(e, id)).toEqual([])
    expect((await e.getTrigger(id)).fireCount).toBe(0)
  })

  test('an unknown trigger id answers 404', async () => {
    const { e } = await setup()
    const url = await mount(e)
    const res = await request(`${url}/webhooks/trigger_doesNotExist000000000000000`, { body: '{}' })
    expect(res.status).toBe(404)
    expect(res.json).toMatchObject({ code: 'ENACT_NOT_FOUND', error: expect.any(String) })
    expect(await e.listExecutions({})).toEqual([])
  })

  test('a paused trigger answers 409 ENACT_TRIGGER_INACTIVE', async () => {
    const { e, id } = await setup()
    await e.pauseTrigger(id)
    const url = await mount(e)
    const res = await request(`${url}/webhooks/${id}`, { body: '{}' })
    expect(res.status).toBe(409)
    expect(res.json).toMatchObject({ code: 'ENACT_TRIGGER_INACTIVE', error: expect.any(String) })
    expect(await executionsOf(e, id)).toEqual([])
  })

  test('a paused signed trigger answers 409, and the same message is accepted once resumed', async () => {
    const { e, id } = await setup({ webhookSecret: SECRET })
    await e.pauseTrigger(id)
    const url = await mount(e)
    const body = '{"retry":"me"}'
    const headers = signedHeaders(body)
    const paused = await request(`${url}/webhooks/${id}`, { headers, body })
    expect(paused.status).toBe(409)
    expect(paused.json.code).toBe('ENACT_TRIGGER_INACTIVE')
    await e.resumeTrigger(id)
    const again = await request(`${url}/webhooks/${id}`, { headers, body })
    expect(again.status).toBe(202)
    expect(await executionsOf(e, id)).toHaveLength(1)
  })

  test('GET answers 405', async () => {
    const { e, id } = await setup()
    const url = await mount(e)
    const res = await request(`${url}/webhooks/${id}`, { method: 'GET' })
    expect(res.status).toBe(405)
    expect(res.headers.allow).toBe('POST')
    expect(await executionsOf(e, id)).toEqual([])
  })

  test('a body over maxBodyBytes answers 413 (with content-length)', async () => {
    const { e, id } = await setup()
    const url = await mount(e, { maxBodyBytes: 1024 })
    const res = await request(`${url}/webhooks/${id}`, { body: JSON.stringify({ pad: 'x'.repeat(2000) }) })
    expect(res.status).toBe(413)
    expect(res.json).toMatchObject({ error: expect.stringMatching(/1024/) })
    expect(await executionsOf(e, id)).toEqual([])
  })

  test('a body over maxBodyBytes answers 413 (chunked, no content-length)', async () => {
    const { e, id } = await setup()
    const url = await mount(e, { maxBodyBytes: 1024 })
    const chunks = ['{"pad":"', 'x'.repeat(600), 'x'.repeat(600), '"}']
    const res = await request(`${url}/webhooks/${id}`, { chunks })
    expect(res.status).toBe(413)
    expect(await executionsOf(e, id)).toEqual([])
  })

  test('a body of exactly maxBodyBytes is accepted, one byte more is not', async () => {
    const { e, id } = await setup()
    const url = await mount(e, { maxBodyBytes: 1024 })
    const exact = JSON.stringify({ pad: 'y'.repeat(1024 - 10) })
    expect(Buffer.byteLength(exact)).toBe(1024)
    expect((await request(`${url}/webhooks/${id}`, { body: exact })).status).toBe(202)
    expect((await request(`${url}/webhooks/${id}`, { body: exact + ' ' })).status).toBe(413)
    expect((await request(`${url}/webhooks/${id}`, { chunks: [exact.slice(0, 500), exact.slice(500), ' '] })).status).toBe(413)
    expect(await executionsOf(e, id)).toHaveLength(1)
  })

  test('a chunked body within maxBodyBytes is accepted', async () => {
    const { e, id } = await setup({ webhookSecret: SECRET })
    const url = await mount(e, { maxBodyBytes: 1024 })
    const chunks = ['{"part":', '"one', ' and two"}']
    const body = chunks.join('')
    const res = await request(`${url}/webhooks/${id}`, { headers: signedHeaders(body), chunks })
    expect(res.status).toBe(202)
    expect(res.json.triggerSource).toEqual({ part: 'one and two' })
  })

  test('a query string after the id and a trailing slash still find the trigger', async () => {
    const { e, id } = await setup({ webhookSecret: SECRET })
    const url = await mount(e)
    for (const path of [`/webhooks/${id}?x=1`, `/webhooks/${id}/`, `/webhooks/${id}/?x=1&y=2`]) {
      const body = JSON.stringify({ path })
      const res = await request(url + path, { headers: signedHeaders(body), body })
      expect(res.status).toBe(202)
      expect(res.json).toMatchObject({ triggerId: id, triggerSource: { path } })
    }
    expect(await executionsOf(e, id)).toHaveLength(3)
  })

  test.each([0, 'x', -5, 1.5])('webhookHandler({maxBodyBytes: %p}) throws ENACT_INVALID_TRIGGER', (maxBodyBytes) => {
    const e = engine()
    let err
    try {
      e.webhookHandler({ maxBodyBytes })
    } catch (caught) {
      err = caught
    }
    expect(err).toBeDefined()
    expect(err.code).toBe('ENACT_INVALID_TRIGGER')
    expect(err.message).toMatch(/options\.maxBodyBytes/)
  })

  test('behind a raw body parser (req.body is a Buffer, like express.raw()) signatures still verify', async () => {
    const { e, id } = await setup({ webhookSecret: SECRET })
    const handler = e.webhookHandler()
    let parsed = false
    // What express.raw() does: read the whole body into req.body as bytes, then call next.
    const rawParser = (req, res) => {
      const chunks = []
      req.on('data', (c) => chunks.push(c))
      req.on('end', () => {
        req.body = Buffer.concat(chunks)
        parsed = true
        handler(req, res)
      })
    }
    const { url } = await listen(rawParser)
    const body = '{"through":"a parser","spaces":  [1,  2]}'
    const res = await request(`${url}/hooks/${id}`, { headers: { 'content-type': 'application/json', ...signedHeaders(body) }, body })
    expect(parsed).toBe(true)
    expect(res.status).toBe(202)
    expect(res.json).toMatchObject({ triggerId: id, triggerSource: { through: 'a parser', spaces: [1, 2] } })
    expect((await e.wait(res.json.executionId)).status).toBe('completed')

    // A tampered body that a parser kept is still checked.
    const bad = await request(`${url}/hooks/${id}`, { headers: signedHeaders(body), body: body.replace('a parser', 'someone') })
    expect(bad.status).toBe(401)
    expect(bad.json.code).toBe('ENACT_WEBHOOK_SIGNATURE')
    expect(await executionsOf(e, id)).toHaveLength(1)
  })
})

describe('unsigned webhooks are an explicit opt-in (allowUnsigned)', () => {
  const def = (fields) => ({ tenantId: T, type: 'webhook', action: { callableName: 'hook' }, ...fields })

  test('a webhook trigger with neither webhookSecret nor allowUnsigned: true is refused, saying how to opt in', async () => {
    const e = engine()
    for (const fields of [{}, { allowUnsigned: false }, { webhookSecret: null }]) {
      const err = await rejection(e.registerTrigger(def(fields)))
      expect(err.code).toBe('ENACT_INVALID_TRIGGER')
      expect(err.message).toMatch(/^webhookSecret: is required for a webhook trigger/)
      expect(err.message).toContain('allowUnsigned: true')
    }
    expect(await e.listTriggers()).toEqual([])
  })

  test('webhookSecret and allowUnsigned: true together are refused', async () => {
    const err = await rejection(engine().registerTrigger(def({ webhookSecret: SECRET, allowUnsigned: true })))
    expect(err.code).toBe('ENACT_INVALID_TRIGGER')
    expect(err.message).toMatch(/^allowUnsigned: cannot be true with a webhookSecret/)
  })

  test('allowUnsigned on a trigger that is not a webhook, or not a boolean, is refused', async () => {
    const e = engine()
    const manual = await rejection(e.registerTrigger({ tenantId: T, type: 'manual', action: { callableName: 'hook' }, allowUnsigned: true }))
    expect([manual.code, manual.message]).toEqual(['ENACT_INVALID_TRIGGER', 'allowUnsigned: only applies to webhook triggers, not manual'])
    const notBool = await rejection(e.registerTrigger(def({ allowUnsigned: 'yes' })))
    expect([notBool.code, notBool.message]).toEqual(['ENACT_INVALID_TRIGGER', 'allowUnsigned: expected a boolean, got "yes"'])
  })

  test('allowUnsigned round-trips in the stored trigger; a signed trigger has none', async () => {
    const e = engine()
    const open = await e.registerTrigger(def({ allowUnsigned: true }))
    expect(open.allowUnsigned).toBe(true)
    expect(open).not.toHaveProperty('webhookSecret')
    expect(await e.getTrigger(open.triggerId)).toEqual(open)
    expect(await e.listTriggers()).toEqual([open])
    const again = engine()
    expect(await again.registerTrigger(open)).toEqual(open)
    const signed = await e.registerTrigger(def({ webhookSecret: SECRET, allowUnsigned: false }))
    expect(signed).not.toHaveProperty('allowUnsigned')
  })

  test('updateTrigger({ webhookSecret: null }) is refused unless the same patch sets allowUnsigned: true', async () => {
    const { e, id } = await setup({ webhookSecret: SECRET })
    for (const patch of [{ webhookSecret: null }, { webhookSecret: null, allowUnsigned: false }]) {
      const err = await rejection(e.updateTrigger(id, patch))
      expect(err.code).toBe('ENACT_INVALID_TRIGGER')
      expect(err.message).toMatch(/^patch\.webhookSecret: removing the secret/)
      expect(err.message).toContain('allowUnsigned: true in the same patch')
    }
    expect((await e.getTrigger(id)).webhookSecret).toBe(SECRET)
    const unsigned = await rejection(e.webhook(id, { headers: {}, body: '{}' }))
    expect(unsigned.code).toBe('ENACT_WEBHOOK_SIGNATURE')

    const opened = await e.updateTrigger(id, { webhookSecret: null, allowUnsigned: true })
    expect(opened.allowUnsigned).toBe(true)
    expect(opened).not.toHaveProperty('webhookSecret')
    const fired = await e.webhook(id, { headers: {}, body: '{"open":true}' })
    expect(fired.triggerSource).toEqual({ open: true })
  })

  test('setting a secret on an unsigned trigger ends allowUnsigned: unsigned requests are refused from then on', async () => {
    const { e, id } = await setup()
    await e.webhook(id, { headers: {}, body: '{}' })
    const signed = await e.updateTrigger(id, { webhookSecret: SECRET })
    expect(signed.webhookSecret).toBe(SECRET)
    expect(signed).not.toHaveProperty('allowUnsigned')
    const err = await rejection(e.webhook(id, { headers: {}, body: '{}' }))
    expect(err.code).toBe('ENACT_WEBHOOK_SIGNATURE')
    const body = '{"signed":true}'
    expect((await e.webhook(id, { headers: signedHeaders(body), body })).triggerSource).toEqual({ signed: true })
    // A secret with allowUnsigned: true in the same patch is refused.
    const both = await rejection(e.updateTrigger(id, { webhookSecret: OTHER_SECRET, allowUnsigned: true }))
    expect(both.message).toMatch(/^allowUnsigned: cannot be true with a webhookSecret/)
    expect((await e.getTrigger(id)).webhookSecret).toBe(SECRET)
  })

  test('withdrawing allowUnsigned without giving a secret is refused', async () => {
    const { e, id } = await setup()
    for (const patch of [{ allowUnsigned: false }, { allowUnsigned: null }]) {
      const err = await rejection(e.updateTrigger(id, patch))
      expect(err.code).toBe('ENACT_INVALID_TRIGGER')
      expect(err.message).toMatch(/^webhookSecret: is required for a webhook trigger/)
    }
    expect((await e.getTrigger(id)).allowUnsigned).toBe(true)
  })
})

describe('the replay budget (webhookReplayCapacity) refuses, never forgets', () => {
  test('a full budget answers 429 ENACT_RATE_LIMITED with Retry-After over HTTP; nothing fires; old ids stay replays; other triggers are unaffected', async () => {
    const { e, id } = await setup({ webhookSecret: SECRET }, { webhookReplayCapacity: 2 })
    const other = (await e.registerTrigger({ tenantId: T, type: 'webhook', action: { callableName: 'hook' }, webhookSecret: SECRET })).triggerId
    const { url } = await listen(e.webhookHandler())
    const body = '{"n":1}'
    const post = (trigger, headers) => request(`${url}/webhooks/${trigger}`, { headers, body })
    const first = signedHeaders(body)
    expect((await post(id, first)).status).toBe(202)
    expect((await post(id, signedHeaders(body))).status).toBe(202)

    const full = await post(id, signedHeaders(body))
    expect(full.status).toBe(429)
    expect(full.json.code).toBe('ENACT_RATE_LIMITED')
    expect(full.json.error).toMatch(/replay budget/)
    const retryAfter = Number(full.headers['retry-after'])
    expect(Number.isInteger(retryAfter) && retryAfter >= 1 && retryAfter <= 600).toBe(true)

    // The first message is not forgotten to make room: still a replay.
    const replay = await post(id, first)
    expect([replay.status, replay.json.code]).toEqual([401, 'ENACT_WEBHOOK_SIGNATURE'])
    expect(replay.json.error).toMatch(/replay/)

    // engine.webhook() rejects with the same code.
    const err = await rejection(e.webhook(id, { headers: signedHeaders(body), body }))
    expect(err.code).toBe('ENACT_RATE_LIMITED')
    expect(err.message).toMatch(/retry after \d+ s$/)

    expect(await executionsOf(e, id)).toHaveLength(2)
    expect((await e.getTrigger(id)).fireCount).toBe(2)
    expect((await post(other, signedHeaders(body))).status).toBe(202)
  })

  test('webhookReplayCapacity must be a positive integer', () => {
    for (const bad of [0, -1, 1.5, 'many']) {
      let err
      try {
        engine({ webhookReplayCapacity: bad })
      } catch (e) {
        err = e
      }
      expect(err).toMatchObject({ code: 'ENACT_INVALID_EXECUTION', message: expect.stringMatching(/^webhookReplayCapacity: /) })
    }
  })
})
