// Type-checked by __test__/ergonomics.test.js with `lib: es2022` only (no
// esnext.disposable): index.d.ts must not need that lib, and disposing by
// hand works.
import { BackgroundEngine } from '../..'

export async function main(): Promise<void> {
  const engine = new BackgroundEngine()
  try {
    engine.once('trigger.fired', (ev) => void ev.triggerId)
  } finally {
    await engine[Symbol.asyncDispose]()
  }
}
