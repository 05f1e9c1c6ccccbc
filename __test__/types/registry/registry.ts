// Type tests of the callable registry (checked by `tsc --noEmit --strict`
// from __test__/types.test.js). Each `@ts-expect-error` line must not
// compile: if the typings loosen, the directive is unused and tsc fails.
import { BackgroundEngine, type BackgroundExecution, type CallableContext, type SubmitRequest } from 'enact-background'

declare module 'enact-background' {
  interface Callables {
    summarize: { input: string; output: { title: string } }
    maybeInput: { input?: string; output: number }
    sideEffect: { output: void }
    nullable: { input: string; output: string | null }
    anything: {}
  }
}

declare const engine: BackgroundEngine
type Equal<A, B> = (<T>() => T extends A ? 1 : 2) extends <T>() => T extends B ? 1 : 2 ? true : false
function assertType<T extends true>(_: T) {}

export async function registry() {
  // registerCallable: ctx.input and the return value follow the entry.
  engine.registerCallable('summarize', async (ctx) => {
    assertType<Equal<typeof ctx.input, string>>(true)
    assertType<Equal<typeof ctx.callableName, 'summarize'>>(true)
    return { title: ctx.input.slice(0, 10) }
  })
  // @ts-expect-error: the output must be { title: string }
  engine.registerCallable('summarize', async () => ({ name: 'x' }))
  // @ts-expect-error: returning nothing is not a { title: string }
  engine.registerCallable('summarize', async () => {})
  engine.registerCallable('maybeInput', (ctx) => {
    assertType<Equal<typeof ctx.input, string | undefined>>(true)
    return 1
  })
  // A side-effect-only callable returns nothing, sync or async.
  engine.registerCallable('sideEffect', async () => {})
  engine.registerCallable('sideEffect', () => undefined)
  // An output that admits null may also be returned as nothing.
  engine.registerCallable('nullable', async (ctx) => (ctx.input === '' ? undefined : ctx.input))
  engine.registerCallable('anything', async (ctx) => {
    assertType<Equal<typeof ctx.input, string | undefined>>(true)
    return new Map()
  })
  // @ts-expect-error: not a registered name
  engine.registerCallable('summarise', async () => ({ title: '' }))

  // submit: input is checked, the record's output is typed.
  const done = await engine.submit({ tenantId: 't', callableName: 'summarize', input: 'text', config: { mode: 'silent' } })
  assertType<Equal<typeof done, BackgroundExecution<{ title: string }>>>(true)
  const title: string | undefined = done.output?.title
  // @ts-expect-error: input must be a string
  await engine.submit({ tenantId: 't', callableName: 'summarize', input: 42 })
  // @ts-expect-error: input is required for summarize
  await engine.submit({ tenantId: 't', callableName: 'summarize' })
  // @ts-expect-error: not a registered name
  await engine.submit({ tenantId: 't', callableName: 'summarise', input: 'x' })
  await engine.submit({ tenantId: 't', callableName: 'maybeInput' })
  await engine.submit({ tenantId: 't', callableName: 'maybeInput', input: null })
  // @ts-expect-error: the engine carries input as a string
  await engine.submit({ tenantId: 't', callableName: 'maybeInput', input: { text: 'x' } })
  const side = await engine.submit({ tenantId: 't', callableName: 'sideEffect', input: 'any' })
  assertType<Equal<typeof side.output, null | undefined>>(true)
  const anything = await engine.submit({ tenantId: 't', callableName: 'anything' })
  assertType<Equal<typeof anything.output, unknown>>(true)

  // wait / getExecution: typed by naming the callable; else the union of outputs.
  const waited = await engine.wait<'summarize'>(done.executionId)
  assertType<Equal<typeof waited.output, { title: string } | undefined>>(true)
  // @ts-expect-error: the output is { title: string }, not a number
  const wrong: number | undefined = waited.output
  const got = await engine.getExecution<'maybeInput'>(done.executionId)
  assertType<Equal<NonNullable<typeof got>['output'], number | undefined>>(true)
  // @ts-expect-error: not a registered name
  await engine.wait<'summarise'>(done.executionId)

  // SubmitRequest as an annotation.
  const req: SubmitRequest<'summarize'> = { tenantId: 't', callableName: 'summarize', input: 'x' }
  // @ts-expect-error: missing input
  const bad: SubmitRequest<'summarize'> = { tenantId: 't', callableName: 'summarize' }
  const ctxType: CallableContext<'summarize'>['input'] = 'a string'
  return [title, wrong, req, bad, ctxType]
}
