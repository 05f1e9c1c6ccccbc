// Typings of the ES module entry (index.mjs): the same declarations as the
// CommonJS entry's, which it re-exports.
export * from './index.js'
