// @ts-check
'use strict'
// Errors the JS half raises. Every code comes from Rust's `ErrorCode::ALL`
// (lib/protocol.js): `Code.INVALID_TRIGGER` is the code ENACT_INVALID_TRIGGER,
// and so on. No code is spelled out here.

const { errorCodes } = require('./protocol')
const { wellFormed } = require('./wellformed')

/** Every `err.code` the engine uses, as exported to users. */
const ErrorCodes = Object.freeze([...errorCodes])

/**
 * The codes by short name: `Code.NOT_FOUND` is ENACT_NOT_FOUND.
 * @type {Readonly<Record<string, string>>}
 */
const Code = Object.freeze(Object.fromEntries(ErrorCodes.map((c) => [c.replace(/^ENACT_/, ''), c])))

/**
 * The class of every error the package throws or rejects with: an `Error`
 * with a stable `code`, made in the realm this module was loaded in (the
 * caller's, under Jest too), so that `instanceof Error`, `toThrow(Error)`
 * and `toThrow(EnactError)` hold. Errors Rust raises are re-made as
 * EnactErrors at the boundary (lib/realm.js).
 */
class EnactError extends Error {
  /**
   * @param {string} code one of `ErrorCodes`
   * @param {string} message starts with the field at fault where one applies
   * @param {ErrorOptions} [options] e.g. `{ cause }`
   */
  constructor(code, message, options) {
    if (typeof code !== 'string' || !ErrorCodes.includes(code)) throw new TypeError(`enact-background: unknown error code ${String(code)}`)
    super(message, options)
    /** @type {string} */
    this.code = code
  }
}
// On the prototype (so set before the stack is captured, whose first line
// then reads `EnactError: …`), writable like Error.prototype.name.
Object.defineProperty(EnactError.prototype, 'name', { value: 'EnactError', writable: true, enumerable: false, configurable: true })

/**
 * Whether `err` is an engine error, from any realm: duck-typed (an object
 * with a string `message` and a `code` that is one of `ErrorCodes`), since
 * an error made in another vm context is not `instanceof` this one's
 * classes. Never throws, whatever `err` does when read.
 * @param {unknown} err
 * @returns {err is EnactError}
 */
function isEnactError(err) {
  if (err === null || typeof err !== 'object') return false
  const code = safeGet(err, 'code')
  return typeof code === 'string' && ErrorCodes.includes(code) && typeof safeGet(err, 'message') === 'string'
}

/**
 * An `Error` with a stable `code`: an EnactError.
 * @param {string | undefined} code one of `ErrorCodes` (use `Code.X`)
 * @param {string} message starts with the field at fault where one applies
 * @returns {EnactError}
 */
function enactError(code, message) {
  if (code === undefined || !ErrorCodes.includes(code)) throw new Error(`enact-background: unknown error code ${code}`)
  return new EnactError(code, message)
}

/**
 * `obj[key]`, or undefined when reading it throws (a throwing getter, a
 * Proxy trap, a revoked Proxy).
 * @param {unknown} obj
 * @param {string} key
 * @returns {unknown}
 */
function safeGet(obj, key) {
  if (obj === null || (typeof obj !== 'object' && typeof obj !== 'function')) return undefined
  try {
    return /** @type {any} */ (obj)[key]
  } catch {
    return undefined
  }
}

/**
 * The message of anything thrown, without throwing itself, whatever the
 * value does when read (getters that throw, a Proxy that throws on every
 * trap). Duck-typed: errors from other realms (vm contexts, Jest) are not
 * `instanceof Error`.
 * @param {unknown} err
 * @returns {string}
 */
function describe(err) {
  const message = safeGet(err, 'message')
  if (typeof message === 'string') return message
  try {
    return String(err)
  } catch {}
  try {
    return Object.prototype.toString.call(err)
  } catch {}
  return `a thrown ${typeof err} that cannot be read`
}

/** @typedef {{ message: string, retryable: boolean, code?: string, name?: string, stack?: string }} ThrownError */

/**
 * Anything thrown (or rejected with) as a plain error object, reading each
 * field once inside its own guard; never throws. The one conversion the
 * runner, target handlers, listeners and callbacks use. Lone surrogates
 * in its strings become U+FFFD, so that the error can cross as JSON.
 * @param {unknown} err
 * @param {string} [prefix] put before the message
 * @returns {ThrownError}
 */
function toThrownError(err, prefix = '') {
  /** @type {ThrownError} */
  const out = { message: wellFormed(prefix + describe(err)), retryable: safeGet(err, 'retryable') !== false }
  const code = safeGet(err, 'code')
  if (typeof code === 'string') out.code = wellFormed(code)
  const name = safeGet(err, 'name')
  if (typeof name === 'string') out.name = wellFormed(name)
  const stack = safeGet(err, 'stack')
  if (typeof stack === 'string') out.stack = wellFormed(stack)
  return out
}

/**
 * Reports a failure nobody awaits (a listener, a target handler, a
 * callback POST) as a process warning with code `ENACT_LISTENER`. Never
 * throws, whatever `err` is.
 * @param {string} message
 * @param {unknown} err
 */
function warn(message, err) {
  const stack = safeGet(err, 'stack')
  const detail = typeof stack === 'string' ? stack : describe(err)
  try {
    process.emitWarning(`${message}: ${detail}`, { code: Code.LISTENER })
  } catch {
    // a 'warning' listener that throws is its own problem, not the engine's
  }
}

module.exports = { ErrorCodes, Code, EnactError, isEnactError, enactError, describe, toThrownError, safeGet, warn }
