// @ts-check
'use strict'
// Lone surrogates. A JS string may hold a UTF-16 surrogate without its
// pair ('\ud800'); JSON.stringify writes it as the escape `\ud800`, which
// is not Unicode, so Rust's JSON reader (and enact-core's) refuses the
// whole text. Values that cross to Rust as JSON are checked here, so that
// only the value holding one fails, with the path of the string.

// An escape `\ud800`-`\udfff` in JSON text, not preceded by an escaped
// backslash (`\\ud800` is the text "\ud800", six plain characters).
// JSON.stringify escapes a surrogate only when it is lone.
const LONE_ESCAPE = /(?:^|[^\\])(?:\\\\)*\\ud[89a-f][0-9a-f]{2}/

// A lone surrogate in a string (the regex works on UTF-16 code units).
const LONE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/

/**
 * `s` with each lone surrogate replaced by U+FFFD (for messages).
 * @param {string} s
 */
function wellFormed(s) {
  return LONE.test(s) ? s.replace(new RegExp(LONE.source, 'g'), '\ufffd') : s
}

/**
 * Whether JSON text written by JSON.stringify holds a lone surrogate.
 * @param {string} json
 */
function hasLoneSurrogate(json) {
  return json.includes('\\ud') && LONE_ESCAPE.test(json)
}

/**
 * Where in `value` (a JSON value) the first string holding a lone
 * surrogate is: its dotted path under `base` (`input`, `context.k`,
 * `output.items[2]`) and what and where the surrogate is; null if none.
 * @param {unknown} value
 * @param {string} base
 * @returns {{ path: string, detail: string } | null}
 */
function loneSurrogateAt(value, base) {
  /** @type {[unknown, string][]} */
  const stack = [[value, base]]
  const seen = new Set()
  while (stack.length > 0) {
    const [v, path] = /** @type {[unknown, string]} */ (stack.pop())
    if (typeof v === 'string') {
      const m = LONE.exec(v)
      if (m !== null) return { path, detail: `U+${v.charCodeAt(m.index).toString(16).toUpperCase()} at index ${m.index}` }
    } else if (v !== null && typeof v === 'object' && !seen.has(v)) {
      seen.add(v)
      if (Array.isArray(v)) for (let i = v.length - 1; i >= 0; i--) stack.push([v[i], `${path}[${i}]`])
      else {
        const keys = Object.keys(v)
        for (let i = keys.length - 1; i >= 0; i--) {
          const k = keys[i]
          if (LONE.test(k)) return { path, detail: `in the key ${JSON.stringify(k)}` }
          stack.push([/** @type {any} */ (v)[k], path === '' ? k : `${path}.${k}`])
        }
      }
    }
  }
  return null
}

/**
 * The message for a value that holds a lone surrogate at `where`.
 * @param {{ path: string, detail: string } | null} where
 * @param {string} fallback the field to name when the place is unknown
 */
function loneSurrogateMessage(where, fallback) {
  const at = where === null ? { path: fallback, detail: 'somewhere' } : where
  return `${at.path || fallback}: holds a lone UTF-16 surrogate (${at.detail}), which is not valid Unicode and cannot be stored as JSON; pass well-formed strings (String.prototype.toWellFormed())`
}

module.exports = { hasLoneSurrogate, loneSurrogateAt, loneSurrogateMessage, wellFormed }
