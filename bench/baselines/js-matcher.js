'use strict'
// The hand-written baseline for the matching benchmark: the natural JS event
// matcher. Triggers are indexed Map tenant → { exact: Map eventType →
// trigger[], prefix: Map 'domain.' → trigger[] (for 'domain.*'), any: [] }.
// Patterns are compiled once at registration into a flat list of conditions
// (dotted path split into keys, operator, operand), so matching an event
// costs two Map lookups per candidate list plus the conditions of the
// candidates. It implements the subset of the engine's eventPattern
// semantics the generated patterns use: equality with a primitive, $in of
// primitives, $gt/$gte/$lt/$lte on numbers, $prefix on strings. A missing
// field fails every one of these.

const OPS = new Set(['$eq', '$in', '$gt', '$gte', '$lt', '$lte', '$prefix'])

function compilePattern(pattern) {
  const conditions = []
  for (const [path, spec] of Object.entries(pattern || {})) {
    const keys = path.split('.')
    if (spec !== null && typeof spec === 'object' && !Array.isArray(spec)) {
      for (const [op, operand] of Object.entries(spec)) {
        if (!OPS.has(op)) throw new Error(`js-matcher: unsupported operator ${op}`)
        conditions.push({ keys, op, operand })
      }
    } else conditions.push({ keys, op: '$eq', operand: spec })
  }
  return conditions
}

function lookup(data, keys) {
  let v = data
  for (let i = 0; i < keys.length; i++) {
    if (v === null || typeof v !== 'object') return undefined
    v = v[keys[i]]
  }
  return v
}

function holds(c, v) {
  switch (c.op) {
    case '$eq': return v === c.operand
    case '$in': return v !== undefined && c.operand.includes(v)
    case '$gt': return typeof v === 'number' && v > c.operand
    case '$gte': return typeof v === 'number' && v >= c.operand
    case '$lt': return typeof v === 'number' && v < c.operand
    case '$lte': return typeof v === 'number' && v <= c.operand
    case '$prefix': return typeof v === 'string' && v.startsWith(c.operand)
  }
  return false
}

class JsMatcher {
  constructor() {
    this.tenants = new Map()
  }

  /** eventType: exact, 'domain.*' or '*'. */
  add(trigger) {
    const { tenantId, eventType, eventPattern } = trigger
    let t = this.tenants.get(tenantId)
    if (t === undefined) this.tenants.set(tenantId, (t = { exact: new Map(), prefix: new Map(), any: [] }))
    const entry = { trigger, conditions: compilePattern(eventPattern) }
    if (eventType === '*') return void t.any.push(entry)
    const wildcard = eventType.endsWith('.*')
    const map = wildcard ? t.prefix : t.exact
    const key = wildcard ? eventType.slice(0, -1) : eventType
    const list = map.get(key)
    if (list === undefined) map.set(key, [entry])
    else list.push(entry)
  }

  /** Number of triggers the event fires. */
  match(event) {
    const t = this.tenants.get(event.tenantId)
    if (t === undefined) return 0
    const data = event.data
    let n = countList(t.exact.get(event.type), data) + countList(t.any, data)
    if (t.prefix.size > 0) {
      const type = event.type
      for (let dot = type.indexOf('.'); dot !== -1; dot = type.indexOf('.', dot + 1)) {
        n += countList(t.prefix.get(type.slice(0, dot + 1)), data)
      }
    }
    return n
  }
}

function countList(list, data) {
  if (list === undefined) return 0
  let n = 0
  outer: for (let i = 0; i < list.length; i++) {
    const conditions = list[i].conditions
    for (let j = 0; j < conditions.length; j++) {
      const c = conditions[j]
      if (!holds(c, lookup(data, c.keys))) continue outer
    }
    n++
  }
  return n
}

module.exports = { JsMatcher }
