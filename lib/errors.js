// @ts-check
'use strict'
// Errors the JS half raises. Every code comes from Rust's `ErrorCode::ALL`
// (lib/protocol.js): `Code.INVALID_TRIGGER` is the code ENACT_INVALID_TRIGGER,
// and so on. No code is spelled out here.

const { errorCodes } = require('./protocol')

/** Every `err.code` the engine uses, as exported to users. */
const ErrorCodes = Object.freeze([...errorCodes])

/**
 * The codes by short name: `Code.NOT_FOUND` is ENACT_NOT_FOUND.
 * @type {Readonly<Record<string, string>>}
 */
const Code = Object.freeze(Object.fromEntries(ErrorCodes.map((c) => [c.replace(/^ENACT_/, ''), c])))

/**
 * An `Error` with a stable `code`.
 * @param {string | undefined} code one of `ErrorCodes` (use `Code.X`)
 * @param {string} message starts with the field at fault where one applies
 * @returns {Error & { code: string }}
 */
function enactError(code, message) {
  if (code === undefined || !ErrorCodes.includes(code)) throw new Error(`enact-background: unknown error code ${code}`)
  const err = /** @type {Error & { code: string }} */ (new Error(message))
  err.code = code
  return err
}

/**
 * The message of anything thrown, without throwing itself. Duck-typed:
 * errors from other realms (vm contexts, Jest) are not `instanceof Error`.
 * @param {unknown} err
 * @returns {string}
 */
function describe(err) {
  try {
    if (err !== null && typeof err === 'object' && typeof (/** @type {any} */ (err).message) === 'string') return /** @type {any} */ (err).message
    return String(err)
  } catch {
    return Object.prototype.toString.call(err)
  }
}

/**
 * Reports a failure nobody awaits (a listener, a target handler, a
 * callback POST) as a process warning with code `ENACT_LISTENER`.
 * @param {string} message
 * @param {unknown} err
 */
function warn(message, err) {
  const detail = err !== null && typeof err === 'object' && typeof (/** @type {any} */ (err).stack) === 'string' ? /** @type {any} */ (err).stack : String(err)
  process.emitWarning(`${message}: ${detail}`, { code: Code.LISTENER })
}

module.exports = { ErrorCodes, Code, enactError, describe, warn }
