// @ts-check
'use strict'
// Submit batching. `submit()` only queues the request; a microtask (or
// every CHUNK requests) hands the batch to Rust as one JSON text, and Rust
// answers with one JSON text. For a submission with the default config
// Rust sends back only `[executionId, queuedAt]` and the record is built
// here, which costs a fraction of converting it field by field.

const { Code, enactError, describe } = require('./errors')
const { hasLoneSurrogate, loneSurrogateAt, loneSurrogateMessage, wellFormed } = require('./wellformed')
const { strictFault } = require('./args')
const { currentChain } = require('./runner')
const timers = require('./timers')

/** Most requests per JSON batch. */
const CHUNK = 1024

/**
 * Why `request` cannot be sent, or null. Its fields other than the data
 * (`input`, `metadata`: JSON.stringify's rules) are checked strictly, so
 * that `config.delayMs: Infinity` or `config.timeoutMs: NaN` is refused
 * with the path of the field instead of becoming "absent" (the default).
 * @param {unknown} request
 * @returns {Error | null}
 */
function requestFault(request) {
  if (request === null || typeof request !== 'object') return null // Rust names it
  try {
    const keys = Object.keys(request)
    for (let i = 0; i < keys.length; i++) {
      const key = keys[i]
      if (key === 'input' || key === 'metadata') continue
      const value = /** @type {any} */ (request)[key]
      if (value === undefined || value === null || typeof value === 'string') continue
      const fault = strictFault(value, key)
      if (fault !== null) return enactError(Code.INVALID_EXECUTION, wellFormed(`${fault.path}: ${fault.why}`))
    }
  } catch (err) {
    return enactError(Code.INVALID_EXECUTION, wellFormed(`request: cannot be read (${describe(err)})`))
  }
  return null
}

/**
 * One answer of `NativeEngine.submitBatch`: `[id, queuedAt]`, `{ r: record }`
 * or `{ e: { code, message } }`.
 * @typedef {{ 0: string, 1: string, r?: any, e?: { code: string, message: string } }} Answer
 */

class Submissions {
  /** @type {any[]} */
  #requests = []
  /** @type {Function[]} resolve, reject, resolve, reject, … */
  #settlers = []
  /** @type {(import('./runner').Chain | null)[]} the chain each request was made in */
  #chains = []
  /** Whether any request held was made in a callable's chain. */
  #chained = false
  #scheduled = false
  #submitBatch
  #later
  #waitFor
  #defaultConfig
  #afterFlush

  /**
   * @param {object} host
   * @param {(requests: string, chains: string | null) => string | number} host.submitBatch Rust's side: JSON in (and the chain of each request, if any was made in a callable), JSON out, or a ticket when a durable store answers once it committed
   * @param {(ticket: number) => Promise<Answer[]>} host.later the answers of a ticket
   * @param {(executionId: string) => Promise<unknown>} host.waitFor the final record (silent mode)
   * @param {Readonly<Record<string, unknown>>} host.defaultConfig the config of a request without one
   * @param {() => void} host.afterFlush runs after the microtask's batch went to Rust
   */
  constructor({ submitBatch, later, waitFor, defaultConfig, afterFlush }) {
    this.#submitBatch = submitBatch
    this.#later = later
    this.#waitFor = waitFor
    // An unfrozen copy: V8 copies a plain object with spread several times
    // faster than a frozen one, and each brief record spreads it.
    this.#defaultConfig = { ...defaultConfig }
    this.#afterFlush = afterFlush
  }

  /** Whether requests wait to be handed to Rust. */
  get pending() {
    return this.#requests.length > 0
  }

  /**
   * @param {unknown} request
   * @returns {Promise<any>}
   */
  submit(request) {
    const fault = requestFault(request)
    if (fault !== null) return Promise.reject(fault)
    return new Promise((resolve, reject) => {
      const chain = currentChain()
      this.#requests.push(request)
      this.#settlers.push(resolve, reject)
      this.#chains.push(chain ?? null)
      if (chain !== undefined) this.#chained = true
      if (this.#requests.length >= CHUNK) this.flush()
      else if (!this.#scheduled) {
        this.#scheduled = true
        timers.microtask(() => {
          this.flush()
          this.#afterFlush()
        })
      }
    })
  }

  /** Hands the requests held to Rust now (before anything reads state). */
  flush() {
    this.#scheduled = false
    const requests = this.#requests
    const settlers = this.#settlers
    if (requests.length === 0) return
    const chains = this.#chained ? JSON.stringify(this.#chains.map((c) => (c === null ? null : [c.root, c.depth]))) : null
    this.#requests = []
    this.#settlers = []
    this.#chains = []
    this.#chained = false
    let text
    /** @type {Map<number, Error> | null} */
    let refused = null
    try {
      text = JSON.stringify(requests)
    } catch {}
    if (text === undefined || hasLoneSurrogate(text)) {
      // Some request is not JSON (a BigInt, a cycle) or holds a lone
      // surrogate, which Rust cannot read: refuse those alone.
      refused = new Map()
      const parts = []
      for (let i = 0; i < requests.length; i++) {
        let part
        try {
          part = JSON.stringify(requests[i]) ?? 'null'
        } catch (err) {
          refused.set(i, enactError(Code.INVALID_EXECUTION, wellFormed(`request: cannot be sent as JSON (${describe(err)})`)))
          part = 'null'
        }
        if (hasLoneSurrogate(part)) {
          refused.set(i, enactError(Code.INVALID_EXECUTION, loneSurrogateMessage(loneSurrogateAt(JSON.parse(part), ''), 'request')))
          part = 'null'
        }
        parts.push(part)
      }
      text = '[' + parts.join(',') + ']'
    }
    let out
    try {
      out = this.#submitBatch(text, chains)
    } catch (err) {
      for (let i = 1; i < settlers.length; i += 2) settlers[i](err)
      return
    }
    if (typeof out === 'number') {
      // A durable store: the answers come once the batch committed.
      this.#later(out).then(
        (answers) => this.#answer(answers, requests, settlers, refused),
        (err) => {
          for (let i = 1; i < settlers.length; i += 2) settlers[i](err)
        },
      )
    } else this.#answer(JSON.parse(out), requests, settlers, refused)
  }

  /**
   * Settles each request of a batch with its answer.
   * @param {Answer[]} answers
   * @param {any[]} requests
   * @param {Function[]} settlers
   * @param {Map<number, Error> | null} refused
   */
  #answer(answers, requests, settlers, refused) {
    for (let i = 0; i < answers.length; i++) {
      const resolve = settlers[2 * i]
      const reject = settlers[2 * i + 1]
      const a = answers[i]
      const request = requests[i]
      if (refused !== null && refused.has(i)) reject(refused.get(i))
      else if (a.e !== undefined) reject(enactError(a.e.code, a.e.message))
      else if (a.r !== undefined) resolve(a.r)
      else if (request.config !== undefined && request.config !== null && request.config.mode === 'silent') resolve(this.#waitFor(a[0]))
      else resolve(this.#briefRecord(request, a[0], a[1]))
    }
  }

  /**
   * The record Rust stored for a request with the default config.
   * @param {any} request
   * @param {string} executionId
   * @param {string} queuedAt
   */
  #briefRecord(request, executionId, queuedAt) {
    /** @type {Record<string, unknown>} */
    const record = { executionId, tenantId: request.tenantId, callableName: request.callableName }
    if (typeof request.input === 'string') record.input = request.input
    if (request.context !== undefined && request.context !== null) record.context = { ...request.context }
    record.config = { ...this.#defaultConfig }
    record.status = 'queued'
    record.queuedAt = queuedAt
    record.targetBindingApplied = false
    return record
  }
}

module.exports = { Submissions, CHUNK }
