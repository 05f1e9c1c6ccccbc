// The package as an ES module, with top-level await. `npm run typecheck`
// checks this file under `module: nodenext` (tsconfig.nodenext.json), where
// the import resolves through package.json `exports` to index.d.mts;
// `npm run pack-check` runs it with tsx against the packed package installed
// into a fresh project.
import { BackgroundEngine, ErrorCodes, applyTransform, type BackgroundExecution } from 'enact-background'

const engine = new BackgroundEngine({ concurrency: 2 })
engine.registerCallable('greet', async (ctx) => `hello ${ctx.input}\nfrom ${ctx.callableName}`)

const done: BackgroundExecution = await engine.submit({ tenantId: 'tenant_1', callableName: 'greet', input: 'esm', config: { mode: 'silent' } })
const firstLine = applyTransform(String(done.output), 'first_line')
console.log(`esm: ${done.status} ${JSON.stringify(firstLine)} (${ErrorCodes.length} error codes)`) // esm: completed "hello esm" (… error codes)
await engine.shutdown({ timeoutMs: 5_000 })
