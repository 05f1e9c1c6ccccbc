// @ts-check
'use strict'
// Event listeners, and the dispatch of the notices Rust hands over (one
// JSON text per drain: an array of objects tagged by `t`).

const { Code, enactError, warn } = require('./errors')
const { scoped } = require('./runner')

/**
 * A notice as `NativeEngine.drain` answers it.
 * @typedef {{ t: 'event', name: string, payload: unknown }
 *   | { t: 'settled', record: any }
 *   | { t: 'abort', executionId: string, attempt: number, reason: string }
 *   | { t: 'bind', record: any, targetType: string, value: string }
 *   | { t: 'callback', record: any }
 *   | { t: 'closed' }
 *   | { t: 'diagnostic', source: string, code: string, message: string }
 *   | { t: 'answer', ticket: number, ok: unknown, error: { code: string, message: string } | null }} Notice
 */

/**
 * What to do with each kind of notice.
 * @typedef {object} NoticeHandlers
 * @property {(name: string, payload: unknown) => void} event
 * @property {(record: any) => void} settled
 * @property {(executionId: string, attempt: number, reason: string) => void} abort
 * @property {(record: any, targetType: string, value: string) => void} bind
 * @property {(record: any) => void} callback
 * @property {() => void} closed
 * @property {(source: string, code: string, message: string) => void} diagnostic
 * @property {(ticket: number, ok: unknown, error: { code: string, message: string } | null) => void} answer
 */

/**
 * Hands each notice of a drained batch to its handler, in order.
 * @param {string} text JSON text of a Notice[]
 * @param {NoticeHandlers} on
 */
function dispatch(text, on) {
  /** @type {Notice[]} */
  const notices = JSON.parse(text)
  for (let i = 0; i < notices.length; i++) {
    const n = notices[i]
    switch (n.t) {
      case 'event':
        on.event(n.name, n.payload)
        break
      case 'settled':
        on.settled(n.record)
        break
      case 'abort':
        on.abort(n.executionId, n.attempt, n.reason)
        break
      case 'bind':
        on.bind(n.record, n.targetType, n.value)
        break
      case 'callback':
        on.callback(n.record)
        break
      case 'closed':
        on.closed()
        break
      case 'diagnostic':
        on.diagnostic(n.source, n.code, n.message)
        break
      case 'answer':
        on.answer(n.ticket, n.ok, n.error)
        break
    }
  }
}

/** Listeners of engine events (`on` / `off`). */
class Listeners {
  /** @type {Map<string, Set<Function>>} */
  #byName = new Map()
  #names
  #setInterest

  /**
   * @param {readonly string[]} names the event names there are
   * @param {(name: string, on: boolean) => void} setInterest tells Rust
   *   whether anyone listens to `name` (events nobody listens to are not built)
   */
  constructor(names, setInterest) {
    this.#names = names
    this.#setInterest = setInterest
  }

  /**
   * Adds `listener` (once per event, whether with `on` or `once`: adding
   * it again changes nothing).
   * @param {unknown} name
   * @param {unknown} listener
   * @returns {() => void} removes it (again: nothing)
   */
  on(name, listener) {
    this.#check(name, listener)
    if (!this.#holds(/** @type {string} */ (name), /** @type {Function} */ (listener))) {
      this.#add(/** @type {string} */ (name), /** @type {Function} */ (listener))
    }
    return () => this.off(name, listener)
  }

  /**
   * Adds `listener` for the next event of `name` only. `off(name,
   * listener)` removes it too.
   * @param {unknown} name
   * @param {unknown} listener
   * @returns {() => void} removes it if it has not run yet
   */
  once(name, listener) {
    this.#check(name, listener)
    const fn = /** @type {Function} */ (listener)
    if (this.#holds(/** @type {string} */ (name), fn)) return () => this.off(name, listener)
    /** @param {unknown} payload */
    const wrapper = (payload) => {
      this.#remove(/** @type {string} */ (name), wrapper)
      return fn(payload)
    }
    this.#onceOf.set(wrapper, fn)
    this.#add(/** @type {string} */ (name), wrapper)
    return () => this.#remove(/** @type {string} */ (name), wrapper)
  }

  /**
   * Removes `listener`, whether added with `on` or `once`.
   * @param {unknown} name
   * @param {unknown} listener
   */
  off(name, listener) {
    const set = typeof name === 'string' ? this.#byName.get(name) : undefined
    if (set === undefined) return
    for (const fn of set) if (this.#onceOf.get(fn) === listener) this.#remove(/** @type {string} */ (name), fn)
    this.#remove(/** @type {string} */ (name), /** @type {Function} */ (listener))
  }

  /**
   * Whether `listener` is added for `name`, directly or by `once`.
   * @param {string} name
   * @param {Function} listener
   */
  #holds(name, listener) {
    const set = this.#byName.get(name)
    if (set === undefined) return false
    if (set.has(listener)) return true
    for (const fn of set) if (this.#onceOf.get(fn) === listener) return true
    return false
  }

  /** @type {WeakMap<Function, Function>} the listener each `once` wrapper calls */
  #onceOf = new WeakMap()

  /**
   * @param {unknown} name
   * @param {unknown} listener
   */
  #check(name, listener) {
    if (typeof name !== 'string' || !this.#names.includes(name)) {
      throw enactError(Code.INVALID_EXECUTION, `event: unknown event ${JSON.stringify(String(name))} (expected one of ${this.#names.join(', ')})`)
    }
    if (typeof listener !== 'function') throw enactError(Code.INVALID_EXECUTION, 'listener: expected a function')
  }

  /**
   * @param {string} name
   * @param {Function} listener
   */
  #add(name, listener) {
    let set = this.#byName.get(name)
    if (set === undefined) {
      this.#byName.set(name, (set = new Set()))
      this.#setInterest(name, true)
    }
    set.add(listener)
  }

  /**
   * @param {string} name
   * @param {Function} listener
   */
  #remove(name, listener) {
    const set = this.#byName.get(name)
    if (set === undefined) return
    set.delete(listener)
    if (set.size === 0) {
      this.#byName.delete(name)
      this.#setInterest(name, false)
    }
  }

  /**
   * Whether anyone listens to `name`.
   * @param {string} name
   */
  has(name) {
    return this.#byName.has(name)
  }

  /**
   * Calls each listener of `name`; one that throws, or returns a promise
   * that rejects, becomes a process warning (never an unhandled
   * rejection). With `chain`, each listener runs in the chain it makes
   * (null: outside any chain), which ends when the listener returns or
   * its promise settles; without, in the caller's.
   * @param {string} name
   * @param {unknown} payload
   * @param {() => import('./runner').Chain | null} [chain]
   */
  emit(name, payload, chain) {
    const set = this.#byName.get(name)
    if (set === undefined) return
    for (const fn of [...set]) {
      let out
      try {
        out = chain === undefined ? fn(payload) : scoped(chain(), /** @type {(p: unknown) => unknown} */ (fn), payload)
      } catch (err) {
        warn(`listener for ${name} threw`, err)
        continue
      }
      if (out !== null && (typeof out === 'object' || typeof out === 'function')) {
        // A rejection of an async listener is its own failure, reported
        // as the synchronous throw is.
        Promise.resolve(out).catch((/** @type {unknown} */ err) => warn(`listener for ${name} rejected`, err))
      }
    }
  }
}

module.exports = { dispatch, Listeners }
