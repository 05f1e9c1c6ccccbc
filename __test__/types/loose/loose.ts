// Without a Callables registry, everything falls back to the loose types:
// names are any string, input any string or none, outputs unknown.
import { BackgroundEngine, type CallableContext, type TriggerDefinition } from 'enact-background'

declare const engine: BackgroundEngine
type Equal<A, B> = (<T>() => T extends A ? 1 : 2) extends <T>() => T extends B ? 1 : 2 ? true : false
function assertType<T extends true>(_: T) {}

export async function loose(name: string) {
  engine.registerCallable(name, async (ctx: CallableContext) => {
    assertType<Equal<typeof ctx.input, string | undefined>>(true)
    assertType<Equal<typeof ctx.triggerSource, unknown>>(true)
  })
  engine.registerCallable('sync', () => 1)
  const rec = await engine.submit({ tenantId: 't', callableName: name })
  await engine.submit({ tenantId: 't', callableName: 'x', input: 'text', metadata: { k: 1 } })
  // @ts-expect-error: input is a string, even without a registry
  await engine.submit({ tenantId: 't', callableName: 'x', input: 1 })
  assertType<Equal<typeof rec.output, unknown>>(true)
  assertType<Equal<typeof rec.metadata, Record<string, unknown> | undefined>>(true)
  const waited = await engine.wait(rec.executionId)
  assertType<Equal<typeof waited.output, unknown>>(true)
  assertType<Equal<NonNullable<typeof waited.error>['details'], unknown>>(true)
  const def: TriggerDefinition = { tenantId: 't', type: 'manual', action: { callableName: name } }
  // @ts-expect-error: a schedule trigger with an event condition
  const bad: TriggerDefinition = { tenantId: 't', type: 'schedule', condition: { eventType: 'x' }, action: { callableName: name } }
  return [def, bad]
}
