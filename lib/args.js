// @ts-check
'use strict'
// How arguments cross to Rust. Every object argument of every public
// method crosses as JSON text made here, never as a JS object converted
// field by field by napi (a deeply nested object overflowed Rust's stack
// there, and NaN, Infinity and functions became "absent"). Two kinds:
//
// - options: options, definitions, patches, filters, configs, headers.
//   Checked strictly first: a value JSON cannot carry (NaN, Infinity, a
//   function, a symbol, a BigInt, undefined in an array, a cycle) or a
//   nesting deeper than MAX_DEPTH is refused with the path of the value,
//   instead of silently becoming null or absent.
// - data: inputs, payloads, event data, outputs. JSON.stringify's rules
//   apply, as for every JSON API (NaN → null, functions dropped, toJSON
//   honoured); only what JSON.stringify cannot write (a BigInt, a cycle,
//   a throwing getter) or what Rust cannot read (a lone surrogate, more
//   than MAX_DEPTH levels, refused by Rust's reader) fails.
//
// Either way the error is an `Error` with the method's `ENACT_INVALID_*`
// code and a message that starts with the path of the field at fault.

const { enactError, describe } = require('./errors')
const { maxJsonDepth } = require('./protocol')
const { hasLoneSurrogate, loneSurrogateAt, loneSurrogateMessage, wellFormed } = require('./wellformed')

/**
 * How deep values may nest, in objects and arrays together (the outermost
 * counts as 1): as deep as Rust's JSON reader reads (`MAX_JSON_DEPTH` in
 * validate.rs), so that JS refuses the same before anything crosses.
 */
const MAX_DEPTH = maxJsonDepth

/**
 * The type of a value, for messages.
 * @param {unknown} v
 */
function typeName(v) {
  if (v === null) return 'null'
  if (Array.isArray(v)) return 'an array'
  switch (typeof v) {
    case 'undefined':
      return 'undefined'
    case 'boolean':
      return 'a boolean'
    case 'number':
      return Number.isNaN(v) ? 'NaN' : Number.isFinite(v) ? 'a number' : String(v)
    case 'bigint':
      return 'a BigInt'
    case 'string':
      return 'a string'
    case 'symbol':
      return 'a symbol'
    case 'function':
      return 'a function'
    default:
      return 'an object'
  }
}

/**
 * Where `value` holds something JSON cannot carry, or nests deeper than
 * MAX_DEPTH: the path and why; null if it is all JSON. Iterative, so no
 * nesting overflows the JS stack either. Objects with a `toJSON` method
 * (Date) are taken as JSON.stringify takes them, as their result.
 * @param {unknown} value
 * @param {string} base the path of `value`
 * @returns {{ path: string, why: string } | null}
 */
function strictFault(value, base) {
  // [value, its path, its depth (0: leaving an object), the path of its
  // outermost field under `base`, named when nesting is too deep]
  /** @type {[unknown, string, number, string][]} */
  const stack = [[value, base, 1, base]]
  // The objects on the path from `value` to the one being read: a cycle
  // is an object inside itself, not one reached twice.
  /** @type {Set<object>} */
  const open = new Set()
  while (stack.length > 0) {
    const [v, path, depth, top] = /** @type {[unknown, string, number, string]} */ (stack.pop())
    if (depth === 0) {
      open.delete(/** @type {object} */ (v))
      continue
    }
    switch (typeof v) {
      case 'string':
      case 'boolean':
        continue
      case 'number':
        if (Number.isFinite(v)) continue
        return { path, why: `expected a finite number, got ${typeName(v)}` }
      case 'undefined':
        // Absent in an object (dropped by JSON.stringify), not in an array.
        return { path, why: 'undefined is not a JSON value (use null)' }
      case 'object':
        break
      default:
        return { path, why: `${typeName(v)} is not a JSON value` }
    }
    if (v === null) continue
    if (typeof (/** @type {any} */ (v).toJSON) === 'function') continue
    if (depth > MAX_DEPTH) return { path: top, why: `nested deeper than ${MAX_DEPTH} levels` }
    if (open.has(v)) return { path, why: 'refers back to an object that holds it (a cycle)' }
    open.add(v)
    stack.push([v, path, 0, top]) // leaves the path once its items are read
    if (Array.isArray(v)) {
      for (let i = v.length - 1; i >= 0; i--) {
        const itemPath = `${path}[${i}]`
        stack.push([v[i], itemPath, depth + 1, depth === 1 ? itemPath : top])
      }
    } else {
      const keys = Object.keys(v)
      for (let i = keys.length - 1; i >= 0; i--) {
        const item = /** @type {any} */ (v)[keys[i]]
        if (item === undefined) continue
        const itemPath = path === '' ? keys[i] : `${path}.${keys[i]}`
        stack.push([item, itemPath, depth + 1, depth === 1 ? itemPath : top])
      }
    }
  }
  return null
}

/**
 * `value` as JSON text with JSON.stringify's rules (absent → `null`).
 * @param {unknown} value
 * @param {string} field the path named in errors
 * @param {string} code the error code (`Code.INVALID_*`)
 * @returns {string}
 */
function dataText(value, field, code) {
  if (value === undefined) return 'null'
  let text
  try {
    text = JSON.stringify(value)
  } catch (err) {
    throw enactError(code, wellFormed(`${field}: cannot be sent as JSON (${describe(err)})`))
  }
  if (text === undefined) return 'null'
  if (hasLoneSurrogate(text)) throw enactError(code, loneSurrogateMessage(loneSurrogateAt(JSON.parse(text), field), field))
  return text
}

/**
 * `value` (an option bag, definition, patch, filter) as JSON text, after
 * the strict check; absent (`undefined` or `null`) → `null`.
 * @param {unknown} value
 * @param {string} field the argument, named in errors about it as a whole
 * @param {string} code the error code (`Code.INVALID_*`)
 * @param {string} [base] the path its fields are named under, as Rust
 *   names them: `''` where Rust names them bare (engine options, trigger
 *   definitions and patches, shutdown options), else `field`
 * @returns {string}
 */
function optionsText(value, field, code, base = field) {
  if (value === undefined || value === null) return 'null'
  let fault
  try {
    fault = strictFault(value, base)
  } catch (err) {
    // a getter or Proxy trap threw while the value was read
    throw enactError(code, wellFormed(`${field}: cannot be read (${describe(err)})`))
  }
  if (fault !== null) throw enactError(code, wellFormed(`${fault.path || field}: ${fault.why}`))
  return dataText(value, field, code)
}

/**
 * `value` checked to be a string (an id or a name).
 * @param {unknown} value
 * @param {string} field
 * @param {string} code
 * @returns {string}
 */
function stringArg(value, field, code) {
  if (typeof value !== 'string') throw enactError(code, `${field}: expected a string, got ${typeName(value)}`)
  return value
}

module.exports = { MAX_DEPTH, dataText, optionsText, strictFault, stringArg, typeName }
