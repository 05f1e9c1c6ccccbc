import { BackgroundEngine, type CallableContext } from 'enact-background'

async function main() {
  const engine = new BackgroundEngine({ concurrency: 8 })

  engine.registerCallable('summarize', async (ctx: CallableContext) => {
    ctx.stream(`working on ${ctx.input}`) // delivered for deferred runs only
    return { summary: ctx.input?.slice(0, 20), attempt: ctx.attempt }
  })
  engine.on('execution.stream', (chunk) => console.log('stream:', chunk.chunk))

  // fire_and_forget: resolves at once with the queued record
  const queued = await engine.submit({ tenantId: 'tenant_1', callableName: 'summarize', input: 'a long thread' })
  // silent: resolves with the finished record
  const done = await engine.submit({ tenantId: 'tenant_1', callableName: 'summarize', input: 'another', config: { mode: 'silent' } })
  // deferred: runs after 100 ms (or at config.runAt, or when the queue is idle)
  const later = await engine.submit({ tenantId: 'tenant_1', callableName: 'summarize', input: 'tonight', config: { mode: 'deferred', delayMs: 100 } })

  console.log(done.status, done.output) // completed { summary: 'another', attempt: 1 }
  console.log((await engine.wait(queued.executionId)).status, (await engine.wait(later.executionId)).output)

  // Triggers and queries answer Promises, on every store (memory today).
  const button = await engine.registerTrigger({ tenantId: 'tenant_1', type: 'manual', action: { callableName: 'summarize', input: 'on demand' } })
  const fired = await engine.fire(button.triggerId)
  console.log((await engine.wait(fired.executionId)).output, (await engine.stats()).completed) // { summary: 'on demand', attempt: 1 } 4
  await engine.shutdown({ timeoutMs: 5_000 })
}

main()
