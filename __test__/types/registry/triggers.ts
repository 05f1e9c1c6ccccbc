// Type tests of TriggerDefinition: a union on `type`, each with its condition.
import { BackgroundEngine, type TriggerDefinition } from 'enact-background'

declare const engine: BackgroundEngine

export async function triggers() {
  await engine.registerTrigger({ tenantId: 't', type: 'event', condition: { eventType: 'order.*', eventPattern: { total: { $gte: 100 } } }, action: { callableName: 'summarize', input: 'x' } })
  await engine.registerTrigger({ tenantId: 't', type: 'lifecycle', condition: { eventType: 'user.signup' }, action: { callableName: 'sideEffect' } })
  await engine.registerTrigger({ tenantId: 't', type: 'schedule', condition: { cronExpression: '0 8 * * *', timezone: 'Europe/Berlin' }, action: { callableName: 'sideEffect' } })
  await engine.registerTrigger({ tenantId: 't', type: 'schedule', condition: { intervalSeconds: 60 }, action: { callableName: 'sideEffect' } })
  await engine.registerTrigger({ tenantId: 't', type: 'schedule', condition: { cronExpression: '* * * * *', misfirePolicy: 'skip' }, action: { callableName: 'sideEffect' } })
  await engine.registerTrigger({ tenantId: 't', type: 'schedule', condition: { intervalSeconds: 60, misfirePolicy: 'fire_once' }, action: { callableName: 'sideEffect' } })
  await engine.registerTrigger({ tenantId: 't', type: 'threshold', condition: { metricName: 'cpu', thresholdValue: 0.9, thresholdOperator: 'gt' }, action: { callableName: 'sideEffect' } })
  await engine.registerTrigger({ tenantId: 't', type: 'webhook', webhookSecret: 'whsec_abc', action: { callableName: 'sideEffect' } })
  await engine.registerTrigger({ tenantId: 't', type: 'webhook', allowUnsigned: true, condition: {}, action: { callableName: 'sideEffect' } })
  await engine.registerTrigger({ tenantId: 't', type: 'manual', action: { callableName: 'maybeInput' } })

  // @ts-expect-error: a schedule trigger has no eventType
  await engine.registerTrigger({ tenantId: 't', type: 'schedule', condition: { cronExpression: '* * * * *', eventType: 'x' }, action: { callableName: 'sideEffect' } })
  // @ts-expect-error: cronExpression or intervalSeconds, not both
  await engine.registerTrigger({ tenantId: 't', type: 'schedule', condition: { cronExpression: '* * * * *', intervalSeconds: 5 }, action: { callableName: 'sideEffect' } })
  // @ts-expect-error: timezone applies to a cronExpression only
  await engine.registerTrigger({ tenantId: 't', type: 'schedule', condition: { intervalSeconds: 5, timezone: 'UTC' }, action: { callableName: 'sideEffect' } })
  // @ts-expect-error: misfirePolicy is fire_once or skip
  await engine.registerTrigger({ tenantId: 't', type: 'schedule', condition: { cronExpression: '* * * * *', misfirePolicy: 'catch_up' }, action: { callableName: 'sideEffect' } })
  // @ts-expect-error: misfirePolicy applies to schedule triggers only
  await engine.registerTrigger({ tenantId: 't', type: 'event', condition: { eventType: 'x', misfirePolicy: 'skip' }, action: { callableName: 'sideEffect' } })
  // @ts-expect-error: an event trigger needs an eventType
  await engine.registerTrigger({ tenantId: 't', type: 'event', condition: {}, action: { callableName: 'sideEffect' } })
  // @ts-expect-error: a threshold trigger needs its operator
  await engine.registerTrigger({ tenantId: 't', type: 'threshold', condition: { metricName: 'cpu', thresholdValue: 1 }, action: { callableName: 'sideEffect' } })
  // @ts-expect-error: a manual trigger has no condition fields
  await engine.registerTrigger({ tenantId: 't', type: 'manual', condition: { metricName: 'cpu' }, action: { callableName: 'sideEffect' } })
  // @ts-expect-error: a webhook trigger needs webhookSecret or allowUnsigned: true
  await engine.registerTrigger({ tenantId: 't', type: 'webhook', action: { callableName: 'sideEffect' } })
  // @ts-expect-error: not both
  await engine.registerTrigger({ tenantId: 't', type: 'webhook', webhookSecret: 'whsec_abc', allowUnsigned: true, action: { callableName: 'sideEffect' } })
  // @ts-expect-error: webhookSecret only applies to webhook triggers
  await engine.registerTrigger({ tenantId: 't', type: 'manual', webhookSecret: 'whsec_abc', action: { callableName: 'sideEffect' } })
  // @ts-expect-error: not a trigger type
  await engine.registerTrigger({ tenantId: 't', type: 'cron', condition: { cronExpression: '* * * * *' }, action: { callableName: 'sideEffect' } })
  // @ts-expect-error: the action's input is checked against the registry (summarize needs one)
  await engine.registerTrigger({ tenantId: 't', type: 'manual', action: { callableName: 'summarize' } })
  // @ts-expect-error: not a registered callable
  await engine.registerTrigger({ tenantId: 't', type: 'manual', action: { callableName: 'summarise', input: 'x' } })

  const def: TriggerDefinition = { tenantId: 't', type: 'schedule', condition: { intervalSeconds: 1 }, action: { callableName: 'sideEffect' } }
  const trigger = await engine.registerTrigger(def)
  const fired = await engine.fire(trigger.triggerId, { any: 'payload' })
  const source: unknown = fired.triggerSource
  return source
}
