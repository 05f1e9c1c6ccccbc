// @ts-check
'use strict'
// OpenTelemetry tracing, optional: loaded only for an engine opened with
// `tracing: true`, from the application's own `@opentelemetry/api` (an
// optional peer dependency, so that the application's SDK and ours share
// one global tracer provider).
//
// The trace context crosses the store as W3C `traceparent` / `tracestate`
// strings, written here from the active span's context and read back
// here, so it needs no propagator to be registered: the executions a call
// makes (a submit, or the fires of an emit, fire or reportMetric) carry
// the caller's span context in their record (`traceContext`), and every
// attempt of them, on any engine and after any restart, runs in a span
// that is a child of it and links to it.

const { Code, enactError } = require('./errors')

/** @type {any} */
let api = null

/** @returns {any} the application's `@opentelemetry/api` */
function load() {
  if (api !== null) return api
  try {
    api = require('@opentelemetry/api')
  } catch {
    throw enactError(
      Code.INVALID_EXECUTION,
      'tracing: `@opentelemetry/api` is not installed; install it (`npm install @opentelemetry/api`) with an OpenTelemetry SDK to trace attempts, or leave tracing off',
    )
  }
  return api
}

const TRACEPARENT = /^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$/

/**
 * The attempt spans of one engine.
 */
class Tracing {
  #api
  #tracer
  /** The API's own no-op provider: what the global one delegates to until an SDK registers. */
  #noop

  constructor() {
    this.#api = load()
    this.#tracer = this.#api.trace.getTracer('enact-background')
    this.#noop = typeof this.#api.ProxyTracerProvider === 'function' ? new this.#api.ProxyTracerProvider().getDelegate() : undefined
  }

  /**
   * Whether spans can be recorded: false while no SDK registered a tracer
   * provider (the API alone is a no-op), so that an engine with
   * `tracing: true` pays nothing per attempt until one is. Checked once per
   * batch of attempts: an SDK registered later is picked up.
   */
  get live() {
    const provider = this.#api.trace.getTracerProvider()
    return this.#noop === undefined || typeof provider.getDelegate !== 'function' || provider.getDelegate() !== this.#noop
  }

  /**
   * The active span's context as a W3C carrier, or undefined when no valid
   * span is active.
   * @returns {{ traceparent: string, tracestate?: string } | undefined}
   */
  carrier() {
    if (!this.live) return undefined
    const sc = this.#api.trace.getSpanContext(this.#api.context.active())
    if (sc === undefined || !this.#api.isSpanContextValid(sc)) return undefined
    /** @type {{ traceparent: string, tracestate?: string }} */
    const out = { traceparent: `00-${sc.traceId}-${sc.spanId}-${(sc.traceFlags & 0xff).toString(16).padStart(2, '0')}` }
    const state = sc.traceState?.serialize?.()
    if (typeof state === 'string' && state !== '') out.tracestate = state
    return out
  }

  /** @returns {string | null} {@link carrier} as JSON text, or null */
  carrierText() {
    const c = this.carrier()
    return c === undefined ? null : JSON.stringify(c)
  }

  /**
   * The span context a carrier holds, or undefined.
   * @param {Record<string, string> | undefined} carrier
   */
  #remote(carrier) {
    const m = carrier === undefined ? null : TRACEPARENT.exec(carrier.traceparent ?? '')
    if (m === null || m[1] === 'ff') return undefined
    /** @type {any} */
    const sc = { traceId: m[2], spanId: m[3], traceFlags: parseInt(m[4], 16), isRemote: true }
    if (typeof carrier?.tracestate === 'string' && typeof this.#api.createTraceState === 'function') {
      sc.traceState = this.#api.createTraceState(carrier.tracestate)
    }
    return this.#api.isSpanContextValid(sc) ? sc : undefined
  }

  /**
   * Starts the span of one attempt, a child of (and linked to) the span
   * that submitted or fired its execution; `run` runs in its context.
   * A callable that throws at once is reported (`threw`, `error`) with
   * its span, so that the span is ended like any other; a tracer that
   * throws runs the attempt without a span.
   * @template T
   * @param {import('./runner').Job} job
   * @param {() => T} run
   * @returns {{ span: any, out?: T, threw: boolean, error?: unknown }}
   */
  attempt(job, run) {
    const a = this.#api
    let span = null
    let ctx
    try {
      const remote = this.#remote(job.traceContext)
      const parent = remote === undefined ? a.ROOT_CONTEXT : a.trace.setSpanContext(a.ROOT_CONTEXT, remote)
      span = this.#tracer.startSpan(
        `enact.execute ${job.callableName}`,
        { kind: a.SpanKind.CONSUMER, links: remote === undefined ? [] : [{ context: remote }] },
        parent,
      )
      // Attributes only on spans that record (a sampled-out span drops them anyway).
      if (span.isRecording()) {
        span.setAttribute('enact.execution_id', job.executionId)
        span.setAttribute('enact.tenant_id', job.tenantId)
        span.setAttribute('enact.callable', job.callableName)
        span.setAttribute('enact.attempt', job.attempt)
        if (job.triggerId !== undefined) span.setAttribute('enact.trigger_id', job.triggerId)
      }
      ctx = a.trace.setSpan(parent, span)
    } catch {
      span = null // a broken tracer: run untraced
    }
    try {
      return { span, out: span === null ? run() : a.context.with(ctx, run), threw: false }
    } catch (error) {
      return { span, threw: true, error }
    }
  }

  /**
   * Ends an attempt's span: OK, or ERROR with the failure's message.
   * @param {any} span
   * @param {{ message: string, code?: string } | null} error
   */
  end(span, error) {
    try {
      // Success leaves the status unset, as OpenTelemetry asks of
      // instrumentation libraries.
      if (error !== null) {
        span.setStatus({ code: this.#api.SpanStatusCode.ERROR, message: error.message })
        if (error.code !== undefined) span.setAttribute('enact.error_code', error.code)
      }
      span.end()
    } catch {
      // A broken tracer must not break the engine.
    }
  }
}

module.exports = { Tracing }
