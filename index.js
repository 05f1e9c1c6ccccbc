// @ts-check
'use strict'
// The package entry. The public API is plain JS (lib/engine.js) over the
// named natives of the generated loader (binding.js); index.d.ts declares it.
const { BackgroundEngine } = require('./lib/engine')
const { ErrorCodes } = require('./lib/errors')
const { applyTransform } = require('./binding.js')

module.exports = { BackgroundEngine, applyTransform, ErrorCodes }
