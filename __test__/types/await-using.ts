// Type-checked by __test__/ergonomics.test.js with `lib: es2022,
// esnext.disposable`: `await using` on an engine, and the typed event API.
import { BackgroundEngine, type TriggerFiredEvent, type WebhookFetchHandler } from '../..'

export async function main(): Promise<void> {
  await using engine = new BackgroundEngine()
  const off: () => void = engine.on('trigger.fired', (ev: TriggerFiredEvent) => void ev.tenantId?.toUpperCase())
  engine.once('execution.completed', (rec) => void rec.status)
  off()
  const handler: WebhookFetchHandler = engine.webhookFetchHandler({ maxBodyBytes: 1024 })
  const res: Response = await handler(new Request('http://localhost/webhooks/trigger_x', { method: 'POST', body: '{}' }))
  void res.status
  await engine.wait('exec_x', { signal: AbortSignal.timeout(1000), timeoutMs: 500 })
}
