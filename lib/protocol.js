// @ts-check
'use strict'
// The constants JS shares with Rust, read once from the native binding
// (`protocol()` in src/lib.rs), so that each is defined in one place: the
// error codes (crates/enact-background-core/src/error.rs, `ErrorCode::ALL`),
// the event names, the target types, the numbers of the stimulus entry
// points, the config of a submission that gives none and how deep values
// may nest.

const { protocol } = require('./native')

/**
 * @typedef {object} Protocol
 * @property {readonly string[]} errorCodes
 * @property {readonly string[]} eventNames
 * @property {readonly string[]} targetTypes
 * @property {Readonly<{ emit: number, emitBatch: number, lifecycle: number, metric: number }>} stimuli
 * @property {Readonly<Record<string, unknown>>} defaultConfig
 * @property {number} maxJsonDepth how deep a value may nest (the outermost level counts as 1)
 * @property {number} maxProgressBytes the most JSON one `ctx.progress(value)` stores
 */

/** @type {Protocol} */
const constants = JSON.parse(protocol())
for (const value of Object.values(constants)) Object.freeze(value)

module.exports = Object.freeze(constants)
