// @ts-check
'use strict'
// The package entry. The public API is plain JS (lib/engine.js) over the
// named natives of the generated loader (binding.js, loaded by
// lib/native.js), called through lib/realm.js; index.d.ts declares it.
const { BackgroundEngine } = require('./lib/engine')
const { Code, ErrorCodes, EnactError, isEnactError, enactError } = require('./lib/errors')
const { stringArg, typeName } = require('./lib/args')
const native = require('./lib/realm')

/**
 * Applies a result transform exactly as target binding does; arguments
 * are checked here so that a wrong type is a coded error, not napi's.
 * @param {string} value
 * @param {import('.').TransformType} transform
 * @param {number | null} [maxLength]
 * @param {string | null} [jsonPath]
 * @returns {string}
 */
function applyTransform(value, transform, maxLength, jsonPath) {
  stringArg(value, 'value', Code.INVALID_EXECUTION)
  stringArg(transform, 'transform', Code.INVALID_EXECUTION)
  if (maxLength !== undefined && maxLength !== null && typeof maxLength !== 'number') {
    throw enactError(Code.INVALID_EXECUTION, `maxLength: expected a non-negative integer, got ${typeName(maxLength)}`)
  }
  if (jsonPath !== undefined && jsonPath !== null) stringArg(jsonPath, 'jsonPath', Code.INVALID_EXECUTION)
  return native.applyTransform(value, transform, maxLength ?? undefined, jsonPath ?? undefined)
}

module.exports = { BackgroundEngine, applyTransform, ErrorCodes, EnactError, isEnactError }
