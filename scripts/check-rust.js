// @ts-check
'use strict'
// Run by `prepare` (a repository `npm install`, an install from git) before
// the release build: says plainly what is missing when there is no Rust
// toolchain, instead of a failure deep inside `napi build`.
const { spawnSync } = require('child_process')

const cargo = spawnSync('cargo', ['--version'], { encoding: 'utf8' })
if (cargo.error || cargo.status !== 0) {
  console.error(
    'enact-background: building from source needs a Rust toolchain (`cargo` on PATH; see https://rustup.rs).\n' +
      'The published package needs none: it ships prebuilt binaries (linux-x64-gnu) as optional dependencies.',
  )
  process.exit(1)
}
