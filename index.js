'use strict'
// The package entry: the native binding (binding.js, the loader napi-rs
// generates) with the calls made most often bound straight to each
// engine's JS runtime (src/runtime.js). `submit`, `emit`, `emitBatch` and
// `lifecycle` are implemented by the runtime anyway; called through the
// native class they would cross into Rust only to call back into JS, which
// costs about 0.8 µs a call. Behaviour and types are the native methods'
// (index.d.ts); only the route is shorter.
const binding = require('./binding.js')

const { BackgroundEngine } = binding
const RUNTIME = Symbol('enact-background runtime')

function runtimeOf(engine) {
  return engine[RUNTIME] || (engine[RUNTIME] = engine.__runtime())
}

Object.defineProperties(BackgroundEngine.prototype, {
  submit: {
    value: function submit(request) {
      return runtimeOf(this).submit(request)
    },
  },
  emit: {
    value: function emit(event) {
      return runtimeOf(this).emit(event)
    },
  },
  emitBatch: {
    value: function emitBatch(events) {
      return runtimeOf(this).emitBatch(events)
    },
  },
  lifecycle: {
    value: function lifecycle(event) {
      return runtimeOf(this).lifecycle(event)
    },
  },
})

module.exports = binding
