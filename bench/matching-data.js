'use strict'
// The matching benchmark's workload, generated from fixed seeds so that every
// implementation and every run sees exactly the same triggers and events.
//
// 1,000 tenants × 200 event types (20 domains × 10 actions: 'd7.a3').
// Each trigger: a random tenant and type; 5 % listen to a whole domain
// ('d7.*'); half carry an eventPattern, one of
//   { amount: { $gt: 250..749 } }   { 'user.plan': 'pro' }
//   { region: { $in: ['eu', 'us'] } }
// each of which a random event's data meets about half the time.
// Each event: a random tenant and type, data { id, amount: 0..999,
// user: { id, plan: 'pro' | 'free' }, region: one of 4 }.

const { prng, randInt } = require('./lib')

const TENANTS = 1000
const DOMAINS = 20
const ACTIONS = 10
const REGIONS = ['eu', 'us', 'apac', 'latam']

function* triggers(count, seed = 42) {
  const rand = prng(seed)
  for (let i = 0; i < count; i++) {
    const tenantId = `tenant_${randInt(rand, TENANTS)}`
    const domain = randInt(rand, DOMAINS)
    const action = randInt(rand, ACTIONS)
    const eventType = rand() < 0.05 ? `d${domain}.*` : `d${domain}.a${action}`
    let eventPattern
    if (rand() < 0.5) {
      const kind = randInt(rand, 3)
      if (kind === 0) eventPattern = { amount: { $gt: 250 + randInt(rand, 500) } }
      else if (kind === 1) eventPattern = { 'user.plan': 'pro' }
      else eventPattern = { region: { $in: ['eu', 'us'] } }
    }
    yield { tenantId, eventType, eventPattern }
  }
}

/** A generator of event chunks (arrays of `size` events), `count` events in all. */
function* eventChunks(count, size, seed = 7) {
  const rand = prng(seed)
  for (let done = 0; done < count; done += size) {
    const chunk = []
    for (let i = done; i < Math.min(count, done + size); i++) {
      chunk.push({
        tenantId: `tenant_${randInt(rand, TENANTS)}`,
        type: `d${randInt(rand, DOMAINS)}.a${randInt(rand, ACTIONS)}`,
        data: {
          id: `evt_${i}`,
          amount: randInt(rand, 1000),
          user: { id: `user_${randInt(rand, 100_000)}`, plan: rand() < 0.5 ? 'pro' : 'free' },
          region: REGIONS[randInt(rand, REGIONS.length)],
        },
      })
    }
    yield chunk
  }
}

module.exports = { triggers, eventChunks, TENANTS, DOMAINS, ACTIONS }
