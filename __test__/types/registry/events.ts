// Type tests of the event map: each listener gets its event's payload.
import { BackgroundEngine, type BackgroundExecution, type EngineEventName, type TriggerFiredEvent } from 'enact-background'

declare const engine: BackgroundEngine
type Equal<A, B> = (<T>() => T extends A ? 1 : 2) extends <T>() => T extends B ? 1 : 2 ? true : false
function assertType<T extends true>(_: T) {}

export function events() {
  engine.on('trigger.fired', (ev) => {
    assertType<Equal<typeof ev, TriggerFiredEvent>>(true)
    const id: string = ev.executionId
    const name: string = ev.triggerName
    // @ts-expect-error: a TriggerFiredEvent has no status
    ev.status
    return [id, name]
  })
  engine.on('execution.completed', (rec) => {
    assertType<Equal<typeof rec, BackgroundExecution>>(true)
    // @ts-expect-error: an execution has no triggerName
    rec.triggerName
    // @ts-expect-error: output is unknown, not any
    rec.output.title
  })
  engine.on('execution.stream', (chunk) => {
    const attempt: number = chunk.attempt
    // @ts-expect-error: chunk is unknown, not any
    chunk.chunk.text
    return attempt
  })
  engine.on('trigger.loop_blocked', (ev) => {
    const limit: 'maxChainDepth' | 'maxChainFires' = ev.limit
    return limit
  })
  engine.on('engine.diagnostic', (d) => {
    assertType<Equal<typeof d.code, import('enact-background').ErrorCode>>(true)
  })
  // @ts-expect-error: not an event name
  engine.on('execution.done', () => {})
  // @ts-expect-error: the payload of trigger.fired is not an execution
  engine.on('trigger.fired', (rec: BackgroundExecution) => rec)
  const listener = (ev: TriggerFiredEvent) => ev
  engine.on('trigger.fired', listener)
  engine.off('trigger.fired', listener)
  // @ts-expect-error: off checks the listener against the event too
  engine.off('execution.failed', listener)
  assertType<Equal<EngineEventName, keyof import('enact-background').EngineEvents>>(true)
  const names: EngineEventName[] = ['execution.queued', 'binding.applied', 'trigger.loop_blocked']
  return names
}
