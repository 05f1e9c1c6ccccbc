// The ES module entry (`import { BackgroundEngine } from 'enact-background'`).
// It re-exports the CommonJS entry, so both share one instance of each class
// and of the native addon (no dual-package hazard). `export *` takes the names
// Node detects in index.js's `module.exports = { ... }`; a test checks that
// they are exactly the CommonJS exports.
export * from './index.js'
