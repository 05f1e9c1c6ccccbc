// Type tests of TriggerDefinition: a union on `type`, each with its condition.
import { BackgroundEngine, type ExplainDetail, type TriggerDefinition, type TriggerExplanation } from 'enact-background'

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
  const next: string | undefined = trigger.nextFireAt
  return [source, next]
}

/** What a reason's data says, narrowed on `kind`. */
function describeDetail(d: ExplainDetail): string {
  switch (d.kind) {
    case 'pattern':
      return d.missing ? `${d.field} missing` : `${d.field} ${d.operator} ${String(d.expected)} got ${String(d.got)}`
    case 'cooldown':
      return `${d.remainingMs} ms, until ${d.until}`
    case 'max_fires':
      return `${d.fireCount}/${d.maxFires}`
    case 'armed':
    case 'threshold':
      return `${d.value} ${d.operator} ${d.thresholdValue}`
    case 'source':
      return `${d.got} vs ${d.expected}`
    default:
      return d.kind
  }
}

export async function explanations() {
  const why: TriggerExplanation[] = await engine.explain({ tenantId: 't', type: 'order.paid', data: { total: 50 } })
  await engine.explain({ tenantId: 't', type: 'user.signup' }, { source: 'lifecycle' })
  const metric = await engine.explainMetric({ tenantId: 't', name: 'cpu', value: 0.5 })
  const first = why[0]
  const words: string | null = first.reason
  const wouldFire: boolean = first.wouldFire
  // @ts-expect-error: source is emit or lifecycle
  await engine.explain({ tenantId: 't', type: 'x' }, { source: 'webhook' })
  // @ts-expect-error: a metric report needs its value
  await engine.explainMetric({ tenantId: 't', name: 'cpu' })
  return [words, wouldFire, metric.map((e) => (e.detail === null ? 'fires' : describeDetail(e.detail)))]
}
