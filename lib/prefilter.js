// @ts-check
'use strict'
// Answers events that no trigger could match without crossing to Rust.
//
// Most events match no trigger. The facade keeps, from the Trigger records
// Rust answers when a trigger is registered, updated or removed, which
// (channel, tenant, event type) pairs any event or lifecycle trigger
// listens to. It is a superset of Rust's index (status and patterns are not
// considered), so an event it rules out would have matched nothing in Rust.
// Anything not certainly well-formed still goes to Rust for its precise
// error.

/** @typedef {'event' | 'lifecycle'} Channel */
/** @typedef {{ triggerId: string, tenantId: string, type: string, condition?: { eventType?: string | null } | null }} TriggerLike */

/**
 * What `filterEvent` / `filterBatch` answer when nothing could fire.
 * @type {readonly unknown[]}
 */
const NOTHING_FIRED = Object.freeze([])

/**
 * The channel, tenant and event type a trigger listens to, or null for a
 * trigger that listens to no events.
 * @param {TriggerLike} t
 * @returns {[Channel, string, string] | null}
 */
function interestOf(t) {
  if (t.type !== 'event' && t.type !== 'lifecycle') return null
  const eventType = t.condition && t.condition.eventType
  return typeof eventType === 'string' ? [t.type, t.tenantId, eventType] : null
}

/**
 * Whether JSON.stringify would encode `v` without throwing (no BigInt, no
 * cycle) within a bounded depth: what Rust would then accept as data.
 * @param {unknown} v
 * @param {number} depth
 * @returns {boolean}
 */
function jsonSafe(v, depth) {
  if (typeof v === 'bigint') return false
  if (v === null || typeof v !== 'object') return true
  if (depth > 16 || typeof (/** @type {any} */ (v).toJSON) === 'function') return false
  if (Array.isArray(v)) {
    for (let i = 0; i < v.length; i++) if (!jsonSafe(v[i], depth + 1)) return false
    return true
  }
  for (const k in v) if (!jsonSafe(/** @type {any} */ (v)[k], depth + 1)) return false
  return true
}

/**
 * An event Rust would certainly accept: `{ type, tenantId, data? }` with
 * non-empty strings and JSON data.
 * @param {any} e
 * @returns {boolean}
 */
function wellFormed(e) {
  if (e === null || typeof e !== 'object' || Array.isArray(e) || typeof e.toJSON === 'function') return false
  for (const k in e) if (k !== 'type' && k !== 'tenantId' && k !== 'data') return false
  return typeof e.type === 'string' && e.type !== '' && typeof e.tenantId === 'string' && e.tenantId !== '' && jsonSafe(e.data, 0)
}

class Interest {
  /** @type {Record<Channel, Map<string, { exact: Map<string, number>, prefixes: Map<string, number> }>>} */
  #byChannel = { event: new Map(), lifecycle: new Map() }
  /** @type {Map<string, [Channel, string, string]>} triggerId → what it listens to */
  #ofTrigger = new Map()

  /**
   * Records what a trigger (as Rust answered it) listens to now.
   * @param {TriggerLike} trigger
   */
  index(trigger) {
    const now = interestOf(trigger)
    const old = this.#ofTrigger.get(trigger.triggerId)
    if (old !== undefined) {
      if (now !== null && old[0] === now[0] && old[1] === now[1] && old[2] === now[2]) return
      this.forget(trigger.triggerId)
    }
    if (now === null) return
    this.#ofTrigger.set(trigger.triggerId, now)
    this.#count(now, +1)
  }

  /** @param {string} triggerId a trigger that is gone */
  forget(triggerId) {
    const old = this.#ofTrigger.get(triggerId)
    if (old === undefined) return
    this.#ofTrigger.delete(triggerId)
    this.#count(old, -1)
  }

  /**
   * @param {[Channel, string, string]} interest
   * @param {number} delta
   */
  #count([channel, tenantId, eventType], delta) {
    const byTenant = this.#byChannel[channel]
    let t = byTenant.get(tenantId)
    if (t === undefined) byTenant.set(tenantId, (t = { exact: new Map(), prefixes: new Map() }))
    const wild = eventType.endsWith('*')
    const map = wild ? t.prefixes : t.exact
    const key = wild ? eventType.slice(0, -1) : eventType
    const n = (map.get(key) || 0) + delta
    if (n > 0) map.set(key, n)
    else map.delete(key)
    if (t.exact.size === 0 && t.prefixes.size === 0) byTenant.delete(tenantId)
  }

  /**
   * Whether a trigger of `channel` could match an event of this tenant and type.
   * @param {Channel} channel
   * @param {string} tenantId
   * @param {string} type
   */
  mayMatch(channel, tenantId, type) {
    const t = this.#byChannel[channel].get(tenantId)
    if (t === undefined) return false
    if (t.exact.has(type)) return true
    for (const prefix of t.prefixes.keys()) if (type.startsWith(prefix)) return true
    return false
  }

  /**
   * The event itself if it must go to Rust, or NOTHING_FIRED.
   * @param {Channel} channel
   * @param {unknown} event
   * @returns {unknown}
   */
  filterEvent(channel, event) {
    const e = /** @type {any} */ (event)
    return wellFormed(e) && !this.mayMatch(channel, e.tenantId, e.type) ? NOTHING_FIRED : event
  }

  /**
   * The events of a batch that must go to Rust (all of them when one is
   * malformed: Rust names it by its index), or NOTHING_FIRED.
   * @param {unknown} events
   * @returns {unknown}
   */
  filterBatch(events) {
    if (!Array.isArray(events)) return events
    /** @type {unknown[] | null} */
    let keep = null
    for (let i = 0; i < events.length; i++) {
      const e = events[i]
      if (!wellFormed(e)) return events
      if (this.mayMatch('event', e.tenantId, e.type)) (keep || (keep = [])).push(e)
    }
    return keep === null ? NOTHING_FIRED : keep
  }
}

module.exports = { Interest, NOTHING_FIRED, interestOf, wellFormed }
