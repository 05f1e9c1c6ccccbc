// @ts-check
'use strict'
// The boundary between the native binding and the rest of the package.
// napi makes its errors and objects in the realm the addon was loaded in
// (Node's main context), which is not the caller's when the package runs in
// a vm context, as under Jest: there `err instanceof Error` is false and
// `toStrictEqual` refuses a `stats()` object that prints the same. So every
// native function the package calls goes through here, once: a thrown
// error is re-made as an EnactError of this module's realm, and an object
// or array answered is copied into it. Strings, numbers, booleans and null
// are the same in every realm and pass as they are. (Records cross as JSON
// text and are parsed by lib/, so they are made in lib/'s realm already.)

const binding = require('./native')
const { Code, EnactError, ErrorCodes, describe, safeGet } = require('./errors')

/**
 * An error a native call threw, as an EnactError of this realm: its code
 * when it is one of `ErrorCodes`, else `ENACT_INTERNAL` (napi's own
 * failures, which validation in JS is there to prevent).
 * @param {unknown} err
 * @returns {EnactError}
 */
function localError(err) {
  if (err instanceof EnactError) return err
  const code = safeGet(err, 'code')
  return new EnactError(typeof code === 'string' && ErrorCodes.includes(code) ? code : Code.INTERNAL, describe(err))
}

/**
 * A native answer as a value of this realm.
 * @param {unknown} value
 * @returns {any}
 */
function localValue(value) {
  if (value === null || typeof value !== 'object' || Buffer.isBuffer(value)) return value
  if (Array.isArray(value)) return Array.from(value, localValue)
  /** @type {Record<string, unknown>} */
  const out = {}
  for (const key of Object.keys(value)) out[key] = localValue(/** @type {Record<string, unknown>} */ (value)[key])
  return out
}

/**
 * `fn` with its throws and answers made local.
 * @template {(...args: any[]) => any} F
 * @param {F} fn
 * @returns {F}
 */
function local(fn) {
  return /** @type {F} */ (
    function (/** @type {any[]} */ ...args) {
      try {
        // @ts-ignore: `this` is the native instance for methods
        return localValue(fn.apply(this, args))
      } catch (err) {
        throw localError(err)
      }
    }
  )
}

/**
 * `NativeEngine` whose constructor and methods answer in this realm: a
 * subclass, so each method is wrapped once for all engines.
 */
class NativeEngine extends binding.NativeEngine {
  /** @param {ConstructorParameters<typeof binding.NativeEngine>} args */
  constructor(...args) {
    try {
      super(...args)
    } catch (err) {
      throw localError(err)
    }
  }
}
for (const name of Object.getOwnPropertyNames(binding.NativeEngine.prototype)) {
  const method = Object.getOwnPropertyDescriptor(binding.NativeEngine.prototype, name)?.value
  if (name === 'constructor' || typeof method !== 'function') continue
  Object.defineProperty(NativeEngine.prototype, name, { value: local(method), writable: true, configurable: true })
}

module.exports = {
  NativeEngine,
  bindingTimeoutMs: local(binding.bindingTimeoutMs),
  applyTransform: local(binding.applyTransform),
  localError,
  localValue,
}
