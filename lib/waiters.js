// @ts-check
'use strict'
// The callers of `wait(id)` (and of silent submissions) waiting for an
// execution's final record, with what `wait(id, { signal, timeoutMs })`
// adds: a waiter that gives up (its signal aborts, its time runs out) is
// rejected and removed at once, its timer cleared and its abort listener
// removed, so that waiting with a deadline on an execution that never
// ends leaks nothing. Giving up never touches the execution.

const { Code, enactError } = require('./errors')
const timers = require('./timers')
const { typeName } = require('./args')

/** Longest `timeoutMs` a timer can hold (setTimeout fires at once past it). */
const MAX_TIMEOUT_MS = 2 ** 31 - 1

/**
 * The options of `wait`, checked: `signal` (anything with a boolean
 * `aborted` and `addEventListener` / `removeEventListener`, as AbortSignal
 * has; an AbortSignal is not JSON, so it is duck-typed) and `timeoutMs`
 * (a finite number from 0 to 2^31-1); other keys are refused, as in every
 * options object.
 * @param {unknown} options
 * @returns {{ signal?: AbortSignal, timeoutMs?: number }}
 */
function waitOptions(options) {
  if (options === undefined || options === null) return {}
  if (typeof options !== 'object' || Array.isArray(options)) {
    throw enactError(Code.INVALID_EXECUTION, `options: expected an object { signal, timeoutMs }, got ${typeName(options)}`)
  }
  /** @type {{ signal?: AbortSignal, timeoutMs?: number }} */
  const out = {}
  let keys
  try {
    keys = Object.keys(options)
  } catch (err) {
    throw enactError(Code.INVALID_EXECUTION, 'options: cannot be read')
  }
  for (const key of keys) {
    const value = /** @type {any} */ (options)[key]
    if (value === undefined) continue // absent, as in JSON
    if (key === 'timeoutMs') {
      if (typeof value !== 'number' || !Number.isFinite(value) || value < 0) {
        throw enactError(Code.INVALID_EXECUTION, `options.timeoutMs: expected a finite non-negative number, got ${typeof value === 'number' ? value : typeName(value)}`)
      }
      if (value > MAX_TIMEOUT_MS) {
        throw enactError(Code.INVALID_EXECUTION, `options.timeoutMs: expected at most ${MAX_TIMEOUT_MS} (about 24.8 days), got ${value}`)
      }
      out.timeoutMs = value
    } else if (key === 'signal') {
      if (
        value === null ||
        typeof value !== 'object' ||
        typeof value.aborted !== 'boolean' ||
        typeof value.addEventListener !== 'function' ||
        typeof value.removeEventListener !== 'function'
      ) {
        throw enactError(Code.INVALID_EXECUTION, `options.signal: expected an AbortSignal, got ${typeName(value)}`)
      }
      out.signal = value
    } else {
      throw enactError(Code.INVALID_EXECUTION, `options.${key}: unknown option (expected one of signal, timeoutMs)`)
    }
  }
  return out
}

/**
 * What a waiter whose signal aborted is rejected with: the signal's
 * reason when it is an Error (duck-typed: errors of other realms count),
 * else an `ENACT_CANCELLED` AbortError.
 * @param {AbortSignal} signal
 * @param {string} id
 * @returns {unknown}
 */
function abortedWith(signal, id) {
  const reason = signal.reason
  if (reason instanceof Error || (reason !== null && typeof reason === 'object' && typeof reason.message === 'string' && typeof reason.name === 'string')) {
    return reason
  }
  const err = enactError(Code.CANCELLED, `options.signal: aborted while waiting for execution ${JSON.stringify(id)}, which goes on`)
  err.name = 'AbortError'
  return err
}

/**
 * @typedef {object} Waiter
 * @property {(record: any) => void} resolve
 * @property {(err: unknown) => void} reject
 */

class Waiters {
  /** @type {WeakMap<AbortSignal, { callbacks: Set<() => void>, listener: () => void }>} */
  #bySignal = new WeakMap()
  /** @type {Map<string, Set<Waiter>>} */
  #byId = new Map()

  /** How many executions have waiters. */
  get size() {
    return this.#byId.size
  }

  /** How many waiters there are, over all executions. */
  count() {
    let n = 0
    for (const set of this.#byId.values()) n += set.size
    return n
  }

  /**
   * Waits for `id`'s final record (`settle`), until `options.signal`
   * aborts or `options.timeoutMs` passes. A signal already aborted
   * rejects at once.
   * @param {string} id
   * @param {{ signal?: AbortSignal, timeoutMs?: number }} [options] checked by `waitOptions`
   * @returns {Promise<any>}
   */
  add(id, options) {
    return new Promise((resolve, reject) => {
      let set = this.#byId.get(id)
      const signal = options?.signal
      const timeoutMs = options?.timeoutMs
      if (signal === undefined && timeoutMs === undefined) {
        // The common case (silent submits, plain waits): nothing to undo.
        if (set === undefined) this.#byId.set(id, (set = new Set()))
        set.add({ resolve, reject })
        return
      }
      if (signal !== undefined && signal.aborted) return reject(abortedWith(signal, id))
      /** @type {NodeJS.Timeout | undefined} */
      let timer
      /** @type {(() => void) | undefined} */
      let onAbort
      const release = () => {
        if (timer !== undefined) timers.clearTimeout(timer)
        if (onAbort !== undefined) this.#offAbort(/** @type {AbortSignal} */ (signal), onAbort)
      }
      /** @type {Waiter} */
      const waiter = {
        resolve: (record) => (release(), resolve(record)),
        reject: (err) => (release(), reject(err)),
      }
      /** Gives up: leaves the set (and the map, if it was the last). */
      const giveUp = (/** @type {unknown} */ err) => {
        const mine = this.#byId.get(id)
        if (mine !== undefined && mine.delete(waiter) && mine.size === 0) this.#byId.delete(id)
        waiter.reject(err)
      }
      if (set === undefined) this.#byId.set(id, (set = new Set()))
      set.add(waiter)
      if (signal !== undefined) {
        onAbort = () => giveUp(abortedWith(signal, id))
        this.#onAbort(signal, onAbort)
      }
      if (timeoutMs !== undefined) {
        // Unref'd: a deadline alone does not keep Node alive (the engine
        // does while the execution is queued or running).
        timer = timers.setTimeout(() => {
          giveUp(enactError(Code.TIMEOUT, `options.timeoutMs: execution ${JSON.stringify(id)} had not finished after ${timeoutMs} ms; it goes on`))
        }, timeoutMs).unref()
      }
    })
  }

  /**
   * The waiters' abort callbacks of `signal`. One listener per signal,
   * however many waits share it: an AbortSignal's listeners are a list,
   * so one each made adding and removing them linear (quadratic in all)
   * and warned past 10 listeners.
   * @param {AbortSignal} signal
   * @param {() => void} callback
   */
  #onAbort(signal, callback) {
    let entry = this.#bySignal.get(signal)
    if (entry === undefined) {
      /** @type {Set<() => void>} */
      const callbacks = new Set()
      const listener = () => {
        this.#bySignal.delete(signal)
        for (const fn of [...callbacks]) fn()
      }
      this.#bySignal.set(signal, (entry = { callbacks, listener }))
      signal.addEventListener('abort', listener, { once: true })
    }
    entry.callbacks.add(callback)
  }

  /**
   * Forgets `callback`; the signal's listener goes with its last one.
   * @param {AbortSignal} signal
   * @param {() => void} callback
   */
  #offAbort(signal, callback) {
    const entry = this.#bySignal.get(signal)
    if (entry === undefined || !entry.callbacks.delete(callback) || entry.callbacks.size > 0) return
    this.#bySignal.delete(signal)
    signal.removeEventListener('abort', entry.listener)
  }

  /**
   * Resolves every waiter of the record's execution.
   * @param {{ executionId: string }} record
   */
  settle(record) {
    const set = this.#byId.get(record.executionId)
    if (set === undefined) return
    this.#byId.delete(record.executionId)
    for (const w of set) w.resolve(record)
  }

  /**
   * Rejects every waiter of `id` (it does not exist, or its store failed).
   * @param {string} id
   * @param {Error} err
   */
  reject(id, err) {
    const set = this.#byId.get(id)
    if (set === undefined) return
    this.#byId.delete(id)
    for (const w of set) w.reject(err)
  }

  /**
   * Rejects every waiter (shutdown).
   * @param {(id: string) => Error} errorOf
   */
  rejectAll(errorOf) {
    const all = [...this.#byId]
    this.#byId.clear()
    for (const [id, set] of all) for (const w of set) w.reject(errorOf(id))
  }
}

module.exports = { Waiters, waitOptions, MAX_TIMEOUT_MS }
