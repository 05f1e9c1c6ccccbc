// The public typings of enact-background, written by hand: the facade in
// index.js / lib/ implements them (a test checks that the class's methods
// and the ones declared here are the same set). The native binding's own
// typings are generated into binding.d.ts, which is internal.

/** ISO 8601 / RFC 3339 timestamp in UTC, e.g. `2026-11-27T17:40:19.543Z`. */
export type Timestamp = string

export type ExecutionMode = 'fire_and_forget' | 'silent' | 'deferred'
export type ExecutionStatus = 'queued' | 'running' | 'completed' | 'failed' | 'cancelled' | 'timeout'
export type TargetType =
  | 'thread.title'
  | 'thread.summary'
  | 'execution.summary'
  | 'message.metadata'
  | 'artifact.create'
  | 'memory.write'
  | 'custom'
export type TransformType = 'none' | 'first_line' | 'truncate' | 'json_extract'
export type ErrorCategory =
  | 'LlmError'
  | 'ToolError'
  | 'PolicyViolation'
  | 'Timeout'
  | 'QuotaExceeded'
  | 'KernelInternal'
  | 'ValidationError'
  | 'NetworkError'

/** Attempt `n` that fails waits `backoffMs * backoffMultiplier^(n-1)` (±20 % jitter). */
export interface RetryConfig {
  /** Total attempts, the first included (default 3). */
  maxAttempts?: number
  /** Delay before the second attempt (default 1000). */
  backoffMs?: number
  /** Growth of the delay (default 2.0). */
  backoffMultiplier?: number
}

/**
 * Where a result goes. enact-core has two of these: an execution's
 * (`config.targetBinding`) has every field; a trigger action's
 * (`action.targetBinding`) has no `transform`, `maxLength` or `jsonPath`,
 * so on a trigger action those three are extensions.
 */
export interface TargetBindingConfig {
  targetType: TargetType
  targetPath?: string
  /**
   * Default `none`. Extension on a trigger action's `targetBinding` (written
   * only when not `none`); enact-core's on an execution's.
   */
  transform?: TransformType
  /**
   * Characters (not bytes) kept by `truncate` / `first_line`. Extension on
   * a trigger action's `targetBinding`.
   */
  maxLength?: number
  /**
   * `$.a.b`, `$.a[0]`, `$.a[*].b` for `json_extract`. Extension on a
   * trigger action's `targetBinding`.
   */
  jsonPath?: string
  threadId?: string
  executionId?: string
}

export interface TargetBindingResult {
  targetType: TargetType
  targetPath?: string
  success: boolean
  appliedValue?: string
  error?: string
  appliedAt: Timestamp
}

export interface BackgroundExecutionConfig {
  /** Default `fire_and_forget`. */
  mode?: ExecutionMode
  /** 0–255, higher runs first (default 50). */
  priority?: number
  /** Time limit of one attempt (default 300000). */
  timeoutMs?: number
  targetBinding?: TargetBindingConfig
  /** Deferred mode: the final record is POSTed here as JSON. */
  callbackUrl?: string
  /** Without it an execution is attempted once. */
  retry?: RetryConfig
  /** Extension: deferred mode, run at this instant. */
  runAt?: Timestamp
  /** Extension: deferred mode, run after this many milliseconds. */
  delayMs?: number
}

/** enact-core's RetryPolicy of an error (snake_case keys). */
export interface ErrorRetryPolicy {
  /** `constant` or `exponential`. */
  backoff_strategy: string
  /** First delay, in milliseconds. */
  base_delay: number
  /** Largest delay, in milliseconds. */
  max_delay: number
  /** Retries after the first attempt (0: attempted once). */
  max_retries: number
  requires_idempotency_key: boolean
  /** False when the error stopped the retries (`retryable: false`, or no retry possible). */
  retryable: boolean
}

/** enact-core's ExecutionError (snake_case keys). */
export interface ExecutionError {
  category: ErrorCategory
  message: string
  /**
   * The retry policy that applied; work without `retry` has the policy of
   * a single attempt (`max_retries: 0`). Never null (enact-core requires it).
   */
  retry_policy: ErrorRetryPolicy
  /** The callable error's own `code`, if it had a string one; the engine's for its own failures. */
  code: string | null
  /** Attempt that failed, from 1 (a fire whose callable is not registered: 1). */
  attempt: number
  step_id: string | null
  provider: string | null
  http_status: number | null
  /** `{ name, stack }` of a thrown Error. */
  details: unknown
  /** Milliseconds since the Unix epoch. */
  occurred_at: number
}

/**
 * One unit of background work, as enact-core 0.0.2 writes it. `Output` is
 * the callable's stored output (see {@link Callables}); `unknown` unless known.
 */
export interface BackgroundExecution<Output = unknown> {
  executionId: string
  tenantId: string
  callableName: string
  input?: string
  context?: Record<string, string>
  config: Required<Pick<BackgroundExecutionConfig, 'mode' | 'priority' | 'timeoutMs'>> & BackgroundExecutionConfig
  status: ExecutionStatus
  queuedAt: Timestamp
  startedAt?: Timestamp
  completedAt?: Timestamp
  /**
   * The callable's return value as JSON (`null` when it returned nothing);
   * present once `completed`.
   */
  output?: Output
  error?: ExecutionError
  targetBindingApplied: boolean
  triggerId?: string
  metadata?: Record<string, unknown>
  /** Extension: what fired the trigger that spawned it. */
  triggerSource?: unknown
  /** Extension: attempts started so far (omitted before the first). */
  attempt?: number
  /** Extension: the outcome of target binding. */
  bindingResult?: TargetBindingResult
  /**
   * Extension: how many fires led here (1 = fired by an application event
   * or a schedule; one more for each execution in between). Work made
   * while a callable runs (`emit`, `submit`, `fire`, …) is one deeper than
   * that callable's execution. Absent: 0.
   */
  chainDepth?: number
  /**
   * Extension: the id of the execution at the root of the chain that
   * caused this one; absent when this execution is a root itself.
   */
  chainRoot?: string
  /**
   * Extension: what the running (or last) attempt reported with
   * `ctx.progress(value)` (BullMQ's `job.progress`).
   */
  progress?: unknown
  /**
   * Extension: the W3C trace context of the span that submitted or fired
   * it (set with `tracing: true`, or given to `submit`). Each attempt's
   * span is a child of it and links to it, on any engine, after restarts.
   */
  traceContext?: TraceContext
}

/** A W3C trace context carrier: `traceparent` (and `tracestate`). */
export interface TraceContext {
  traceparent: string
  tracestate?: string
  [key: string]: string | undefined
}

/**
 * A submission of callable `K`: `input` is checked against the
 * {@link Callables} registry (required when the entry's `input` is);
 * without a registry, any string or none.
 */
export type SubmitRequest<K extends CallableName = CallableName> = {
  tenantId: string
  callableName: K
  context?: Record<string, string>
  config?: BackgroundExecutionConfig
  metadata?: Record<string, unknown>
  /**
   * Keep this id (at most 255 bytes) instead of generating `exec_…`. Submitting an id that an
   * execution of the same tenant already has is idempotent (BullMQ's
   * `jobId`): nothing new is queued and `submit` answers that execution
   * (its current record, or for `silent` its final one), even if this
   * request names another input or registered callable (the request is
   * validated first: an unregistered callable is still
   * `ENACT_UNKNOWN_CALLABLE`; an empty id counts as absent). An id another tenant's
   * execution has is refused (`ENACT_INVALID_EXECUTION`, saying nothing
   * of that execution).
   */
  executionId?: string
  /**
   * The trace context to link this execution's attempts to (at most 8
   * entries). With `tracing: true` the active span's context is used when
   * this is absent.
   */
  traceContext?: TraceContext
} & InputField<CallableInput<K>>

/** `input` as a submission or trigger action takes it: required unless it may be absent (`null` counts as absent). */
export type InputField<I> = undefined extends I ? { input?: Exclude<I, undefined> | null } : { input: I }

/** Options of `wait`. */
export interface WaitOptions {
  /**
   * Stop waiting when it aborts: `wait` rejects with `signal.reason` when
   * that is an Error (`controller.abort()` gives a DOMException named
   * `AbortError`), else with an `ENACT_CANCELLED` error. The execution
   * goes on (use `cancel` to stop it).
   */
  signal?: AbortSignal
  /**
   * Stop waiting after this many milliseconds (0 to 2^31-1): `wait`
   * rejects with `ENACT_TIMEOUT`. The execution goes on.
   */
  timeoutMs?: number
}

export interface ExecutionFilter {
  tenantId?: string
  status?: ExecutionStatus
  callableName?: CallableName
  /** Only executions spawned by this trigger. */
  triggerId?: string
  /** At most this many. */
  limit?: number
  /** By `queuedAt` (then id): `'oldest'` first (default) or `'newest'` first. */
  order?: 'oldest' | 'newest'
  /**
   * A cursor: only executions after this one in the listing's order (pass
   * the last id of the previous page). An id that no longer exists (pruned)
   * lists nothing.
   */
  after?: string
}

/** What callable `K` receives. */
export interface CallableContext<K extends CallableName = CallableName> {
  executionId: string
  tenantId: string
  callableName: K
  /** The submission's or trigger action's `input` (absent when none was given). */
  input: CallableInput<K>
  context: Record<string, string>
  /** From 1. */
  attempt: number
  triggerId?: string
  /** Extension: what fired the trigger (the event, metric, webhook body, payload or schedule tick). */
  triggerSource?: unknown
  /** Aborts on timeout, cancellation or shutdown. */
  readonly signal: AbortSignal
  /** Emits an `execution.stream` event (deferred mode; ignored otherwise). */
  stream(chunk: unknown): void
  /**
   * Stores how far the attempt got on the execution's record (`progress`,
   * readable with `getExecution`) and emits `execution.progress` (BullMQ's
   * `job.updateProgress`): a number, or a small JSON value (at most 16 KiB
   * as JSON; anything else throws `ENACT_INVALID_EXECUTION` naming
   * `progress`, at once). Resolves once stored, in call order, and never
   * rejects (a store failure is an `engine.diagnostic`), so it need not be
   * awaited; after the attempt ended (timed out, cancelled) it does
   * nothing. Each call is one store write: report steps, not every item of
   * a loop.
   */
  progress(value: unknown): Promise<void>
}

/**
 * An async function run for each attempt of callable `K`. Its resolved
 * value must be JSON-serializable; returning nothing (`undefined`) succeeds
 * with output `null`, the usual side-effect-only job. A BigInt, a symbol, a
 * function or a cycle fails the execution. Throw an error with
 * `retryable: false` to skip remaining retries. With a {@link Callables}
 * entry, the value must be its `output`.
 */
export type Callable<K extends CallableName = CallableName> = (ctx: CallableContext<K>) => CallableResult<CallableOutput<K>>

/** What a callable declared to output `O` may return: `O` (or nothing, when `O` admits `null`), or a promise of it. */
export type CallableResult<O> = unknown extends O ? unknown : Returnable<O> | PromiseLike<Returnable<O>>
type Returnable<O> = O | (null extends O ? void : never)

// ---------------------------------------------------------------------------
// The callable registry

/**
 * The registry of callables, empty until you declare yours by declaration
 * merging (as graphile-worker's `GraphileWorker.Tasks`):
 *
 * ```ts
 * declare module 'enact-background' {
 *   interface Callables {
 *     summarize: { input: string; output: { title: string } }
 *     cleanup: { output: void } // takes any input or none, returns nothing
 *   }
 * }
 * ```
 *
 * Then callable names are the registry's keys: `registerCallable`
 * checks the function's `ctx.input` and return value, `submit` and
 * `registerTrigger` check `input` (which the engine carries as a string:
 * an entry's `input` must be `string`, optional or not), and
 * `submit`, `wait<'summarize'>(id)` and `getExecution<'summarize'>(id)`
 * resolve with records whose `output` is typed (`void` outputs are stored
 * as `null`). An entry without `input` takes any string or none; one
 * without `output` returns `unknown`. Types only: nothing is checked at
 * run time beyond what the engine always checks.
 *
 * Without any entry, names are any string, `input` any string or none,
 * and outputs `unknown`.
 */
// eslint-disable-next-line @typescript-eslint/no-empty-interface
export interface Callables {}

/** The shape of a {@link Callables} entry. */
export interface CallableSpec {
  input?: string
  output?: unknown
}

/** The names of callables: the keys of {@link Callables}, or any string while it is empty. */
export type CallableName = [keyof Callables] extends [never] ? string : Extract<keyof Callables, string>

/** What callable `K` takes as `input` (`string | undefined` unless its entry says). */
export type CallableInput<K extends string> = K extends keyof Callables ? InputOf<Callables[K]> : string | undefined
type InputOf<S> = 'input' extends keyof S
  ? S extends { input?: infer I }
    ? Extract<I, string | undefined> | ({} extends Pick<S, Extract<'input', keyof S>> ? undefined : never)
    : never
  : string | undefined

/** What callable `K` returns, as declared (`unknown` unless its entry says). */
export type CallableReturn<K extends string> = K extends keyof Callables ? (Callables[K] extends { output?: infer O } ? ('output' extends keyof Callables[K] ? O : unknown) : unknown) : unknown

/** Callable `K`'s output as a record stores it: a declared `void` / `undefined` becomes `null`. */
export type CallableOutput<K extends string> = StoredOutput<CallableReturn<K>>
type StoredOutput<O> = unknown extends O ? unknown : Exclude<O, undefined | void> | (undefined extends O ? null : never)

/** Options of `registerCallable`. */
export interface CallableOptions {
  /**
   * Attempts of this callable in flight at once (default: only the engine
   * and tenant limits apply). Its waiting work does not hold up other
   * callables of the same tenant.
   */
  concurrency?: number
}

export interface BindingContext {
  execution: BackgroundExecution
  targetType: TargetType
  targetPath?: string
  threadId?: string
  executionId?: string
}

/** Receives the transformed value; throwing marks the binding failed, never the execution. */
export type TargetHandler = (value: string, binding: BindingContext) => void | Promise<void>

/** The names of engine events: the keys of {@link EngineEvents}. */
export type EngineEventName = keyof EngineEvents

/** The payload of each engine event (`on(name, listener)` gives the listener this). */
export interface EngineEvents {
  'execution.queued': BackgroundExecution
  'execution.started': BackgroundExecution
  'execution.stream': StreamChunk
  'execution.completed': BackgroundExecution
  'execution.failed': BackgroundExecution
  'execution.retrying': BackgroundExecution
  'execution.cancelled': BackgroundExecution
  'execution.timeout': BackgroundExecution
  'binding.applied': BackgroundExecution
  'binding.failed': BackgroundExecution
  'trigger.fired': TriggerFiredEvent
  'trigger.loop_blocked': LoopBlockedEvent
  'engine.diagnostic': EngineDiagnostic
  'execution.progress': ProgressEvent
}

/**
 * Payload of `execution.progress`, emitted by the engine running the
 * attempt once its `ctx.progress(value)` is stored. Not fed back to
 * triggers. Extension: enact-core has no such record.
 */
export interface ProgressEvent {
  executionId: string
  tenantId: string
  callableName: string
  attempt: number
  progress: unknown
}

/**
 * Payload of `engine.diagnostic` (extension: enact-core has no such
 * record): work the engine does on its own (a timer, a schedule tick, an
 * event fed back to triggers, a store service) failed and goes on. Without an
 * `engine.diagnostic` listener it is a process warning instead: never
 * swallowed.
 */
export interface EngineDiagnostic {
  /** Which part: `timer`, `schedule`, `feedback`, `completer`, `producer`, `listener`, `rescuer`, … */
  source: string
  code: ErrorCode
  message: string
}

/** Payload of `execution.stream`. Extension: enact-core has no such record. */
export interface StreamChunk {
  executionId: string
  tenantId: string
  callableName: string
  attempt: number
  chunk: unknown
}

/**
 * Stable `err.code` values, as Rust's `ErrorCode::ALL` lists them (a test
 * checks this union against `ErrorCodes`). `ENACT_TIMEOUT` / `ENACT_CANCELLED`
 * / `ENACT_SHUTDOWN` are also the codes of `ctx.signal.reason`, and the
 * first two those of `wait` giving up on its `timeoutMs` / `signal`;
 * `ENACT_LISTENER` is the code of process warnings; `ENACT_BODY_TOO_LARGE`,
 * `ENACT_METHOD` and `ENACT_BAD_REQUEST` appear in webhook handler answers;
 * `ENACT_STALLED` is the `error.code` of an execution that ended `failed`
 * because the engines running it stopped more than `maxStalls` times;
 * `ENACT_RATE_LIMITED` is a webhook delivery refused because its trigger's
 * replay budget (`webhookReplayCapacity`) is full (HTTP 429);
 * `ENACT_INVALID_STATE` is `retry` of an execution that is queued, running
 * or completed.
 */
export type ErrorCode =
  | 'ENACT_INVALID_TRIGGER'
  | 'ENACT_INVALID_EXECUTION'
  | 'ENACT_UNKNOWN_CALLABLE'
  | 'ENACT_NOT_FOUND'
  | 'ENACT_WEBHOOK_SIGNATURE'
  | 'ENACT_TRIGGER_INACTIVE'
  | 'ENACT_SHUTDOWN'
  | 'ENACT_STORE'
  | 'ENACT_TRANSFORM'
  | 'ENACT_INTERNAL'
  | 'ENACT_TIMEOUT'
  | 'ENACT_CANCELLED'
  | 'ENACT_LISTENER'
  | 'ENACT_BODY_TOO_LARGE'
  | 'ENACT_METHOD'
  | 'ENACT_BAD_REQUEST'
  | 'ENACT_STALLED'
  | 'ENACT_RATE_LIMITED'
  | 'ENACT_INVALID_STATE'

/** @deprecated the old name of {@link ErrorCode}. */
export type EnactErrorCode = ErrorCode

/**
 * The class of every error the package throws or rejects with (and of
 * `ctx.signal.reason`, named `TimeoutError` / `AbortError` there). It is
 * made in the caller's realm, so `err instanceof Error`, Jest's
 * `toThrow(Error)` and `toThrow(EnactError)` hold, also for errors the
 * native half raised. Across realms (another vm context, a second copy of
 * the package) use {@link isEnactError}.
 */
export declare class EnactError extends Error {
  /** Throws a `TypeError` when `code` is not one of {@link ErrorCodes}. */
  constructor(code: ErrorCode, message: string, options?: ErrorOptions)
  code: ErrorCode
}

/**
 * Whether `err` is an engine error, from any realm or copy of the package:
 * duck-typed, an object with a string `message` whose `code` is one of
 * {@link ErrorCodes}. Never throws.
 */
export declare function isEnactError(err: unknown): err is EnactError


// ---------------------------------------------------------------------------
// Triggers

export type TriggerType = 'event' | 'schedule' | 'webhook' | 'threshold' | 'manual' | 'lifecycle'
export type TriggerStatus = 'active' | 'paused' | 'disabled' | 'fired' | 'expired'
export type ThresholdOperator = 'gt' | 'gte' | 'lt' | 'lte' | 'eq' | 'neq'

/** Operators of an `eventPattern` entry; all given must hold. */
export interface PatternOperators {
  /** Equals one of these. */
  $in?: unknown[]
  /** Does not equal (a missing field matches). */
  $ne?: unknown
  /** Present (even as null) or absent. */
  $exists?: boolean
  $prefix?: string
  $suffix?: string
  $gt?: number
  $gte?: number
  $lt?: number
  $lte?: number
  /** Present and equal to none of these (a missing field does not match). */
  $anythingBut?: unknown
}

/**
 * When a trigger fires, as a stored Trigger holds it. Which fields apply
 * depends on the type: event/lifecycle: `eventType` (+ `eventPattern`);
 * schedule: `cronExpression` (+ `timezone`) or `intervalSeconds` (+ `misfirePolicy`);
 * threshold: `metricName`, `thresholdValue`, `thresholdOperator`;
 * webhook, manual: none. A {@link TriggerDefinition} checks this per type.
 */
export interface TriggerCondition {
  /** Exact type, or a trailing wildcard: `order.*`, `*`. */
  eventType?: string
  /**
   * Dotted paths in the event's `data` mapped to a value (deep equality; an
   * array in the data matches if any element does) or to operators.
   */
  eventPattern?: Record<string, unknown | PatternOperators>
  /** 5 fields (minute precision), 6 (with seconds first), 7 (with year), or `@hourly`, `@daily`, `@weekly`, `@monthly`, `@yearly`. */
  cronExpression?: string
  intervalSeconds?: number
  /** Extension: IANA zone of `cronExpression` (default UTC). */
  timezone?: string
  /** Extension: a schedule's misfire policy (default `fire_once`); see {@link ScheduleCondition}. */
  misfirePolicy?: MisfirePolicy
  metricName?: string
  thresholdValue?: number
  thresholdOperator?: ThresholdOperator
}

/**
 * What a fire runs, as a stored Trigger holds it (any name: a stored
 * trigger may come from untyped code; a definition's action is checked
 * against the registry, see {@link TriggerActionDefinition}).
 */
export interface TriggerAction {
  callableName: string
  input?: string
  context?: Record<string, string>
  /** Passed to the callable as `ctx.context.systemPrompt`. */
  systemPrompt?: string
  targetBinding?: TargetBindingConfig
  /** Always true in this engine. */
  background?: boolean
  /** Retry policy of the executions the trigger spawns. */
  retry?: RetryConfig
}

/** A trigger as enact-core 0.0.2 writes it. */
export interface Trigger {
  triggerId: string
  tenantId: string
  name: string
  description?: string
  type: TriggerType
  status: TriggerStatus
  condition: TriggerCondition
  action: TriggerAction
  startAt?: Timestamp
  endAt?: Timestamp
  maxFires?: number
  fireCount: number
  cooldownMs?: number
  lastFiredAt?: Timestamp
  createdAt: Timestamp
  updatedAt: Timestamp
  /**
   * Extension: Standard Webhooks secret (`whsec_…`) of a webhook trigger.
   * A webhook trigger needs either this or `allowUnsigned: true`.
   */
  webhookSecret?: string
  /**
   * Extension: the explicit opt-in of a webhook trigger without
   * `webhookSecret` to accept unsigned requests, from anyone who knows
   * its id. Only on webhook triggers, never together with a secret;
   * written only when true. An update that removes the secret
   * (`webhookSecret: null`) must set it in the same patch; one that sets
   * a secret ends it.
   */
  allowUnsigned?: boolean
  /**
   * Extension, answered (never stored): when an `active` schedule trigger
   * fires next, by the engine's clock (a manual clock included) — the tick
   * its scheduler has armed, in the schedule's `timezone`; when that tick
   * falls inside the cooldown after `lastFiredAt`, the first tick after
   * it. Omitted for other types, for triggers that are not active (or are
   * past `endAt` / at `maxFires` now), and when the next tick falls after
   * `endAt`. A tick already due and about to fire may read a moment in the
   * past.
   */
  nextFireAt?: Timestamp
}

/** A trigger action as a definition gives it: `input` checked against the {@link Callables} registry. */
export type TriggerActionDefinition<K extends CallableName = CallableName> = Omit<TriggerAction, 'callableName' | 'input'> & {
  callableName: K
} & InputField<CallableInput<K>>

/** Condition of an `event` or `lifecycle` trigger. */
export interface EventCondition {
  /** Exact type, or a trailing wildcard: `order.*`, `*`. */
  eventType: string
  /**
   * Dotted paths in the event's `data` mapped to a value (deep equality; an
   * array in the data matches if any element does) or to operators.
   */
  eventPattern?: Record<string, unknown | PatternOperators>
}

/**
 * Extension: what a schedule trigger does when more than one of its ticks is
 * due at once (a misfire: the process was down, or its scheduler stalled).
 */
export type MisfirePolicy = 'fire_once' | 'skip'

/** Condition of a `schedule` trigger: a cron expression or an interval, not both. */
export type ScheduleCondition =
  | {
      /** 5 fields (minute precision), 6 (with seconds first), 7 (with year), or `@hourly`, `@daily`, `@weekly`, `@monthly`, `@yearly`. */
      cronExpression: string
      /** Extension: IANA zone of `cronExpression` (default UTC). */
      timezone?: string
      intervalSeconds?: undefined
      /**
       * Extension: what the schedule does with ticks missed while the process
       * was down or stalled (more than one tick due at once). `fire_once`
       * (default): one fire, for the latest due tick, whose `triggerSource`
       * adds `missedTicks` (how many ticks were due, that one included),
       * `firstMissedAt` and `lastMissedAt`. `skip`: no fire, unless the latest
       * due tick is less than a second old (due now). `advanceTime` steps
       * through each tick, so it never misfires.
       */
      misfirePolicy?: MisfirePolicy
    }
  | {
      /** Seconds between ticks, aligned to `startAt` (else the registration time). */
      intervalSeconds: number
      cronExpression?: undefined
      timezone?: undefined
      /**
       * Extension: what the schedule does with ticks missed while the process
       * was down or stalled (more than one tick due at once). `fire_once`
       * (default): one fire, for the latest due tick, whose `triggerSource`
       * adds `missedTicks` (how many ticks were due, that one included),
       * `firstMissedAt` and `lastMissedAt`. `skip`: no fire, unless the latest
       * due tick is less than a second old (due now). `advanceTime` steps
       * through each tick, so it never misfires.
       */
      misfirePolicy?: MisfirePolicy
    }

/** Condition of a `threshold` trigger: fires when `value <thresholdOperator> thresholdValue` turns true. */
export interface ThresholdCondition {
  metricName: string
  thresholdValue: number
  thresholdOperator: ThresholdOperator
}

/** Condition of a `webhook` or `manual` trigger: none (`{}` or absent). */
export type EmptyCondition = { [key: string]: never }

/** The fields every trigger definition may give; the engine fills in the rest. */
export interface TriggerDefinitionBase<K extends CallableName = CallableName> {
  tenantId: string
  /** Kept when given; else `trigger_…`. */
  triggerId?: string
  /** Default: the trigger id. */
  name?: string
  description?: string
  /** Default `active`. */
  status?: TriggerStatus
  action: TriggerActionDefinition<K>
  startAt?: Timestamp
  endAt?: Timestamp
  maxFires?: number
  fireCount?: number
  cooldownMs?: number
  lastFiredAt?: Timestamp
  createdAt?: Timestamp
  updatedAt?: Timestamp
}

/**
 * What `registerTrigger` accepts: enact-core's Trigger JSON, or only the
 * parts the engine cannot fill in itself. A union on `type`, each with its
 * own `condition` (a schedule trigger cannot carry an `eventType`), and a
 * webhook trigger with either `webhookSecret` or `allowUnsigned: true`.
 */
export type TriggerDefinition<K extends CallableName = CallableName> =
  | (TriggerDefinitionBase<K> & { type: 'event' | 'lifecycle'; condition: EventCondition })
  | (TriggerDefinitionBase<K> & { type: 'schedule'; condition: ScheduleCondition })
  | (TriggerDefinitionBase<K> & { type: 'threshold'; condition: ThresholdCondition })
  | (TriggerDefinitionBase<K> & { type: 'manual'; condition?: EmptyCondition })
  | (TriggerDefinitionBase<K> & { type: 'webhook'; condition?: EmptyCondition } & WebhookSigning)

/** A webhook trigger is signed (`webhookSecret`) or explicitly unsigned (`allowUnsigned: true`), never both. */
export type WebhookSigning =
  | {
      /** Extension: Standard Webhooks secret (`whsec_…`). */
      webhookSecret: string
      allowUnsigned?: false
    }
  | {
      webhookSecret?: undefined
      /** Extension: accept unsigned requests from anyone who knows the trigger id. */
      allowUnsigned: true
    }

/** A JSON merge patch of a trigger's definition (`null` deletes a field). */
export type TriggerPatch = {
  [K in 'name' | 'description' | 'condition' | 'action' | 'startAt' | 'endAt' | 'maxFires' | 'cooldownMs' | 'webhookSecret' | 'allowUnsigned']?: Trigger[K] | null
}

export interface TriggerFilter {
  tenantId?: string
  type?: TriggerType
  status?: TriggerStatus
}

/** An event for `emit` / `lifecycle`. */
export interface TriggerEvent {
  type: string
  tenantId: string
  data?: unknown
}

export interface MetricReport {
  tenantId: string
  name: string
  value: number
}

/** Options of {@link BackgroundEngine.explain}. */
export interface ExplainOptions {
  /**
   * Which call the event stands for: `'emit'` (default; event triggers)
   * or `'lifecycle'` (lifecycle triggers).
   */
  source?: ExplainCall
}

/** The calls an event can be made with. */
export type ExplainCall = 'emit' | 'lifecycle'

/**
 * Whether a stimulus would fire one trigger now, and if not, the first
 * reason, in the order the engine gates: what `explain` and
 * `explainMetric` answer, one per trigger, in registration order.
 */
export interface TriggerExplanation {
  triggerId: string
  triggerName: string
  triggerType: TriggerType
  /**
   * Its status now, as `getTrigger` would answer it (an `active` trigger
   * past its `endAt` reads `expired`, one at `maxFires` reads `fired`).
   */
  status: TriggerStatus
  /** Whether the stimulus would fire it now. */
  wouldFire: boolean
  /**
   * The first reason it would not fire, in words; null when it would fire.
   * E.g. `pattern field "total" failed $gte 100 (got 50)`,
   * `cooling down for 12 s (until 2026-01-15T10:00:12.000Z)`,
   * `maxFires reached (3 of 3)`.
   */
  reason: string | null
  /** The same reason as data; null when it would fire. */
  detail: ExplainDetail | null
}

/**
 * Why a trigger would not fire, as data; `kind` names the gate. The gates
 * of an event, in order: `source`, `type`, `pattern`, `chain_depth` /
 * `chain_fires`, then `status` / `ended` / `max_fires`, `not_started`,
 * `cooldown`. Of a metric: `metric`, `chain_depth` / `chain_fires`,
 * `threshold`, `armed`, then the same status and time gates. `invalid`
 * is a stored trigger that no longer compiles.
 */
export type ExplainDetail =
  /**
   * It listens to the other call: a lifecycle trigger and `emit`, or an
   * event trigger and `lifecycle`. Listed only when its `eventType`
   * matches the event's type.
   */
  | { kind: 'source'; expected: ExplainCall; got: ExplainCall }
  /** The event's type does not match `eventType` (`order.*` vs `user.created`). */
  | { kind: 'type'; expected: string; got: string }
  /**
   * A pattern key failed: the first key (in the pattern's key order) whose
   * test fails. `operator` is `$eq` for a plain value (deep equality), else
   * as written (`$gte`, `$in`, `$exists`, …); positive operators that each
   * hold for some value but not together on one are joined (`$gte & $lt`,
   * `expected` then an object of them). `got` is the field's value (an
   * array of its values when the path fanned out over arrays); absent,
   * and `missing: true`, when the field is missing.
   */
  | { kind: 'pattern'; field: string; operator: string; expected: unknown; got?: unknown; missing?: true }
  /**
   * The call is made inside a callable whose chain of triggers is at
   * `maxChainDepth`: the fire would be a `trigger.loop_blocked`. `depth`
   * is the depth its execution would have.
   */
  | { kind: 'chain_depth'; depth: number; maxChainDepth: number }
  /** The chain's root already caused `maxChainFires` fires. */
  | { kind: 'chain_fires'; fires: number; maxChainFires: number }
  /** It is `paused` or `disabled` (or `fired` / `expired` without the limit that made it so). */
  | { kind: 'status'; status: TriggerStatus }
  /** Its `startAt` is still ahead. */
  | { kind: 'not_started'; startAt: Timestamp }
  /** Its `endAt` has passed (it is, or now reads, `expired`). */
  | { kind: 'ended'; endAt: Timestamp }
  /** It reached `maxFires` (it is, or now reads, `fired`). */
  | { kind: 'max_fires'; maxFires: number; fireCount: number }
  /** It fired less than `cooldownMs` ago, by the engine's clock: `until` is `lastFiredAt + cooldownMs`. */
  | { kind: 'cooldown'; remainingMs: number; until: Timestamp }
  /** The metric's name is not the trigger's `metricName`. */
  | { kind: 'metric'; expected: string; got: string }
  /** `value <operator> thresholdValue` is false (`value 50 is not > 100`). */
  | { kind: 'threshold'; operator: ThresholdOperator; thresholdValue: number; value: number }
  /**
   * The comparison holds, but held for the last report too: a threshold
   * fires on a crossing and re-arms only once a report makes it false
   * ("already above 100 …: waiting for the value to drop to 100 or below").
   */
  | { kind: 'armed'; operator: ThresholdOperator; thresholdValue: number; value: number }
  /** Its stored definition no longer compiles (the engine skips it). */
  | { kind: 'invalid'; message: string }

export interface WebhookRequest {
  /** Header names are matched case-insensitively; Node's `req.headers` works as is. */
  headers?: Record<string, string | string[] | undefined>
  /** The raw body as received (string or Buffer); other values are sent as their JSON text. */
  body?: string | Uint8Array | unknown
}

export interface WebhookHandlerOptions {
  /** Larger bodies get 413 (default 1 MiB). */
  maxBodyBytes?: number
  /**
   * Milliseconds the handler waits for the whole body; a client that sends
   * it slower gets 408 and the connection is closed (default 10000).
   */
  bodyTimeoutMs?: number
}

/** A Node `(req, res)` handler (http.createServer, Express, Fastify's raw req/res). */
export type WebhookHandler = (req: import('node:http').IncomingMessage, res: import('node:http').ServerResponse) => void

/**
 * A fetch-style handler (Hono, Next.js route handlers, Bun, Deno): its
 * promise always resolves with a Response, never rejects.
 */
export type WebhookFetchHandler = (request: Request) => Promise<Response>

/** What `authorize` is asked about: one action of the dashboard on one trigger or execution. */
export interface DashboardAction {
  /** `pause`, `resume`, `fire`: a trigger; `cancel`, `retry`: an execution. */
  action: 'cancel' | 'retry' | 'pause' | 'resume' | 'fire'
  /** The trigger's or execution's id. */
  id: string
}

/** What `authorizeRead` is asked about: a read of the page or its API, or an explain (which changes nothing). */
export interface DashboardRead {
  action: 'read' | 'explain'
  /** The trigger's or execution's id, when one is read. */
  id?: string
}

/**
 * Options of `dashboardHandler()` (`Req` is Node's IncomingMessage) and
 * `dashboardFetchHandler()` (`Req` is the fetch Request).
 */
export interface DashboardOptions<Req = import('node:http').IncomingMessage> {
  /**
   * The path the browser sees the dashboard under, e.g. `'/enact'` (default
   * `''`, the root). With Express (`app.use('/enact', handler)`) the mount
   * path is taken from the request and this may be left out; with
   * `http.createServer` and the fetch handler, give it.
   */
  basePath?: string
  /**
   * Decides each action (pause, resume, fire, cancel, retry): it runs only
   * when this answers (or resolves with) exactly `true`. Without it the
   * dashboard is read-only: every action is refused with 403
   * (`ENACT_FORBIDDEN`). A throw or a rejection refuses too.
   */
  authorize?: (req: Req, action: DashboardAction) => boolean | Promise<boolean>
  /**
   * Decides every read (the page, its data, explain). Without it reads are
   * open: mount the handler behind your application's own authentication.
   */
  authorizeRead?: (req: Req, read: DashboardRead) => boolean | Promise<boolean>
  /** Larger action bodies get 413 (default 64 KiB). */
  maxBodyBytes?: number
}

/**
 * The dashboard as a Node `(req, res, next?)` handler (http.createServer,
 * Express, Connect). Under Express, requests outside its path go to `next`.
 */
export type DashboardHandler = (req: import('node:http').IncomingMessage, res: import('node:http').ServerResponse, next?: (err?: unknown) => void) => void

/** The dashboard as a fetch-style handler: its promise always resolves with a Response. */
export type DashboardFetchHandler = (request: Request) => Promise<Response>

/**
 * `error.code` of a dashboard API answer: an engine error's code, or one
 * of the dashboard's own: `ENACT_FORBIDDEN` (403: an action `authorize`
 * refused, or a POST without the page's `x-enact-dashboard: 1` header or
 * from another site). It is an answer only, never thrown, so it is not in
 * {@link ErrorCodes}.
 */
export type DashboardErrorCode = ErrorCode | 'ENACT_FORBIDDEN'

/** Payload of `trigger.fired`; also what the stimulus methods resolve with. */
export interface TriggerFiredEvent {
  triggerId: string
  triggerName: string
  triggerType: TriggerType
  executionId: string
  firedAt: Timestamp
  /** The event (`{type, data}`), metric, webhook body, payload or schedule tick. */
  triggerSource?: unknown
  /**
   * Extension: the trigger's tenant (and its execution's). Set on every
   * fire of this engine; absent in records written by enact-core.
   */
  tenantId?: string
  /** Extension: the chain depth of the execution it spawned (listeners of `trigger.fired` continue that chain). */
  chainDepth?: number
  /** Extension: the root of that execution's chain, when it is not the root itself. */
  chainRoot?: string
}

/** Payload of `trigger.loop_blocked`. Extension: enact-core has no such record. */
export interface LoopBlockedEvent {
  triggerId: string
  triggerName: string
  tenantId: string
  /** Which bound refused the fire: the chain's length or its root's fire budget. */
  limit: 'maxChainDepth' | 'maxChainFires'
  /** Depth the refused execution would have had. */
  chainDepth: number
  maxChainDepth: number
  /** The execution at the root of the chain (absent for a stimulus made outside any execution). */
  chainRoot?: string
  /** Fires the root's chain had caused when this one was refused. */
  chainFires: number
  maxChainFires: number
  triggerSource: unknown
  blockedAt: Timestamp
}

// ---------------------------------------------------------------------------
// The engine

/**
 * The trigger engine and background executor. Methods that read or change
 * stored state (triggers, executions, stats) return Promises, so that code
 * written against the memory store runs unchanged on durable stores; their
 * errors are rejections with the same `code` and message.
 */
export declare class BackgroundEngine {
  /**
   * Creates an engine over the memory store (nothing survives the
   * process). Throws `ENACT_INVALID_EXECUTION` for bad options, and for a
   * durable `store`: that opens with {@link BackgroundEngine.open}.
   */
  constructor(options?: EngineOptions | undefined | null)
  /**
   * Opens an engine over the store `options.store` names — `{ sqlite:
   * path }`: one file, nothing acknowledged lost when the process dies;
   * `{ postgres: url, schema? }`: a database schema shared by any number
   * of engines ({@link PostgresStoreOptions}) — or over the memory store
   * when there is none. Creates and migrates the
   * file, queues again what was running when its last process died (each
   * such interruption is a stall; past `maxStalls` the execution ends
   * `failed` with code `ENACT_STALLED`; see {@link recovery}), loads the
   * stored triggers and starts their schedules (a schedule that missed
   * ticks while down follows its `misfirePolicy`).
   *
   * Over a durable store every call that changes state (`submit` in
   * every mode, trigger registration and changes, `emit`, `fire`,
   * webhooks) resolves only once its transaction committed; concurrent
   * calls share commits.
   *
   * Rejects with `ENACT_STORE` naming the file when it is open in another
   * process, is not a store, is corrupt, has a schema from a newer
   * version of this package, or cannot be created or written; naming the
   * database (never the password) when PostgreSQL cannot be reached
   * within 5 s, the schema is newer or belongs to something else; with
   * `ENACT_INVALID_EXECUTION` for bad options.
   *
   * Over PostgreSQL an engine that serves callables keeps Node alive
   * until {@link shutdown} (it is a worker: other engines may send it
   * work at any time); shutdown hands what it aborted back at once, and
   * withdraws its callables.
   *
   * `setup(engine)`, when given, runs (and is awaited) after the store
   * opened and before its backlog and schedules start: register callables,
   * targets and listeners there. A schedule that missed ticks fires as the
   * store starts, and a fire whose callable is not registered yet is
   * written `failed` (`ENACT_UNKNOWN_CALLABLE`), so callables registered
   * only after `open` resolved can miss it. If `setup` throws or rejects,
   * the engine shuts down (the file is released) and `open` rejects with
   * that error. Extension.
   */
  static open(options?: OpenOptions | undefined | null, setup?: (engine: BackgroundEngine) => void | Promise<void>): Promise<BackgroundEngine>
  /**
   * Extension. What crash recovery did when {@link BackgroundEngine.open}
   * opened a SQLite store: executions found running (their process
   * died) and queued again, and those that ended `failed` past
   * `maxStalls`. `null` for the memory store, and for PostgreSQL, where
   * every engine takes back expired leases all the time.
   */
  readonly recovery: { requeued: number; failed: number } | null
  /**
   * Registers the async function that runs executions naming `name`.
   * Registering a name again replaces the function and its options.
   * `options.concurrency` caps the attempts of this callable in flight at
   * once (its other waiting work does not hold up other callables).
   */
  registerCallable<K extends CallableName>(name: K, fn: Callable<K>, options?: CallableOptions): void
  /** Registers the handler that receives bound results for `targetType`. */
  registerTarget(targetType: TargetType, fn: TargetHandler): void
  /**
   * Queues an execution. `fire_and_forget` and `deferred` resolve at once
   * with the queued record; `silent` resolves with the final record.
   * Rejects with `ENACT_INVALID_EXECUTION`, `ENACT_UNKNOWN_CALLABLE` or
   * `ENACT_SHUTDOWN`. Each request succeeds or fails on its own; one whose
   * strings hold a lone UTF-16 surrogate is refused, naming the field.
   * An `executionId` the tenant already used answers that execution
   * instead of queuing another (see {@link SubmitRequest.executionId}).
   */
  submit<K extends CallableName>(request: SubmitRequest<K>): Promise<BackgroundExecution<CallableOutput<K>>>
  /**
   * Resolves with the execution's final record (after binding).
   * Rejects with `ENACT_NOT_FOUND` for an unknown id; with
   * `options.timeoutMs`, `ENACT_TIMEOUT` once that time passed; with
   * `options.signal`, its reason (or `ENACT_CANCELLED`) once it aborts.
   * Giving up never affects the execution. Name the callable
   * (`wait<'summarize'>(id)`) to type the record's `output`.
   */
  wait<K extends CallableName = CallableName>(executionId: string, options?: WaitOptions): Promise<BackgroundExecution<CallableOutput<K>>>
  /**
   * Resolves once nothing is queued (delayed work included), running or
   * being bound, like p-queue's `onIdle()`; at once if that is already so.
   * Under a manual clock delayed work comes due only by `advanceTime`.
   * Over PostgreSQL "queued" is what waits in the store for the callables
   * this engine serves (counted about every second), whoever queued it.
   */
  idle(): Promise<void>
  /**
   * Cancels a queued or running execution: resolves `true` if it was
   * cancelled, `false` if it had already finished. A running callable's
   * `ctx.signal` aborts and its late result is ignored.
   */
  cancel(executionId: string): Promise<boolean>
  /**
   * Queues a `failed`, `timeout` or `cancelled` execution again (BullMQ's
   * `job.retry()`): its last output, error, binding result and progress
   * are cleared, its stalls start over and `queuedAt` becomes now. The
   * attempt number goes on (the next run is the next attempt, so a late
   * result of an earlier one can never pass for it), and as in BullMQ the
   * retry policy is not renewed: if that run fails it is retried only while
   * `maxAttempts` allows. Resolves with the queued record and emits
   * `execution.queued`. Rejects with `ENACT_NOT_FOUND` for an unknown id,
   * `ENACT_INVALID_STATE` for an execution that is queued, running or
   * completed, and `ENACT_UNKNOWN_CALLABLE` when no callable of its name is
   * registered (over PostgreSQL: served by a live engine).
   */
  retry<K extends CallableName = CallableName>(executionId: string): Promise<BackgroundExecution<CallableOutput<K>>>
  /** The execution's current record, or `null`. */
  getExecution<K extends CallableName = CallableName>(executionId: string): Promise<BackgroundExecution<CallableOutput<K>> | null>
  /** Executions, oldest first (or `order: 'newest'`), optionally filtered and paged (`limit`, `after`). */
  listExecutions(filter?: ExecutionFilter): Promise<BackgroundExecution[]>
  /**
   * Registers a trigger: enact-core's JSON as it is, or a minimal
   * definition (`tenantId`, `type`, `condition`, `action`); fills in id,
   * name, status, counts and times and resolves with the stored Trigger.
   * Rejects with `ENACT_INVALID_TRIGGER` naming the field at fault. A
   * webhook trigger needs a `webhookSecret`, or `allowUnsigned: true` to
   * accept unsigned requests.
   */
  registerTrigger<K extends CallableName>(definition: TriggerDefinition<K>): Promise<Trigger>
  /** One trigger. Rejects with `ENACT_NOT_FOUND` for an unknown id. */
  getTrigger(triggerId: string): Promise<Trigger>
  /** Triggers in registration order, optionally filtered. */
  listTriggers(filter?: TriggerFilter): Promise<Trigger[]>
  /**
   * Changes a trigger with a JSON merge patch (objects merge, `null`
   * deletes). `triggerId`, `tenantId`, `type` and counters are fixed.
   * A `fired`/`expired` trigger whose limit the patch lifts is active again.
   * Removing a webhook's secret (`webhookSecret: null`) is refused unless
   * the same patch sets `allowUnsigned: true`; setting a secret ends
   * `allowUnsigned`.
   */
  updateTrigger(triggerId: string, patch: TriggerPatch): Promise<Trigger>
  /** `active` → `paused`: stimuli and ticks are ignored until resumed. */
  pauseTrigger(triggerId: string): Promise<Trigger>
  /** `paused` or `disabled` → `active`. */
  resumeTrigger(triggerId: string): Promise<Trigger>
  /** Switches a trigger off (`disabled`); `resumeTrigger` switches it on. */
  disableTrigger(triggerId: string): Promise<Trigger>
  /** Deletes a trigger; its schedule stops. Executions it spawned stay. */
  removeTrigger(triggerId: string): Promise<void>
  /**
   * Emits an application event to the tenant's event triggers; resolves
   * with one TriggerFiredEvent per trigger that fired.
   */
  emit(event: TriggerEvent): Promise<TriggerFiredEvent[]>
  /**
   * Emits many application events in one call (faster than a loop of
   * `emit`); resolves with the fires of all of them, in order. A
   * malformed event rejects the whole batch before anything fires.
   */
  emitBatch(events: TriggerEvent[]): Promise<TriggerFiredEvent[]>
  /**
   * Emits a lifecycle event (`thread.created`, `user.signup`, …) to the
   * tenant's lifecycle triggers.
   */
  lifecycle(event: TriggerEvent): Promise<TriggerFiredEvent[]>
  /**
   * Reports a metric value; threshold triggers fire when their
   * comparison turns true (a crossing) and re-arm when it turns false.
   */
  reportMetric(metric: MetricReport): Promise<TriggerFiredEvent[]>
  /**
   * "Why didn't it fire?": for every trigger of the event's tenant that
   * could see the event — its event triggers (or, with
   * `options.source: 'lifecycle'`, its lifecycle triggers), and the other
   * kind's triggers of a matching type, which listen to the other call —
   * whether the event would fire it right now and, if not, the first
   * reason in the order the engine gates ({@link ExplainDetail}), by the
   * engine's clock (a manual one included). Made inside a callable, it is
   * judged in that callable's chain, as an `emit` made there would be.
   * Fires, counts, arms and changes nothing. Over PostgreSQL, triggers
   * registered on other engines are read first. Rejects like `emit` for
   * a bad event (`ENACT_INVALID_TRIGGER`, `event.tenantId: …`), and for
   * bad options (`options.source: …`).
   */
  explain(event: TriggerEvent, options?: ExplainOptions): Promise<TriggerExplanation[]>
  /**
   * {@link explain} for a metric report and the tenant's threshold
   * triggers: the metric name, the comparison, the crossing rule (a
   * comparison that held for the last report too is no crossing:
   * `armed`, read from the store and never changed), then the same
   * gates. Rejects like `reportMetric` for a bad report.
   */
  explainMetric(metric: MetricReport): Promise<TriggerExplanation[]>
  /**
   * Fires a trigger now with `payload` as its source. Rejects with
   * `ENACT_NOT_FOUND` or `ENACT_TRIGGER_INACTIVE` (paused, disabled,
   * fired, expired, not started or cooling down).
   */
  fire(triggerId: string, payload?: unknown): Promise<TriggerFiredEvent>
  /**
   * Delivers a webhook request to a webhook trigger. With a
   * `webhookSecret` the Standard Webhooks headers must verify against
   * the raw body (pass the body as received: a string or Buffer);
   * otherwise rejects with `ENACT_WEBHOOK_SIGNATURE` and nothing fires.
   * Only a trigger registered with `allowUnsigned: true` fires without a
   * signature.
   * Rejects with `ENACT_RATE_LIMITED` (nothing fires) while the trigger
   * remembers `webhookReplayCapacity` unexpired message ids; the message
   * ends `retry after N s`.
   */
  webhook(triggerId: string, request: WebhookRequest): Promise<TriggerFiredEvent>
  /**
   * A Node `(req, res)` handler for `http.createServer` or Express:
   * `POST …/<triggerId>` answers 202 with the TriggerFiredEvent, 401 on a
   * bad signature, 404 for an unknown trigger, 409 when the trigger is
   * not active, 429 with `Retry-After` (seconds) when its webhook replay
   * budget is full, 413 over `maxBodyBytes` (default 1 MiB), 408 when the body
   * takes longer than `bodyTimeoutMs` (default 10 s), 400 for a path that
   * does not decode or a body that cannot be read. It never throws. Mount
   * it before any body parser (or use `express.raw()`, or keep the raw
   * bytes as `req.rawBody`), so signatures are checked against the raw body.
   */
  webhookHandler(options?: WebhookHandlerOptions): WebhookHandler
  /**
   * The `webhookHandler()` answers as a fetch-style handler,
   * `(request: Request) => Promise<Response>`, for Hono
   * (`app.post('/webhooks/:id', (c) => handler(c.req.raw))`), Next.js
   * route handlers (`export const POST = handler`), Bun and Deno. The
   * body is read from its stream up to `maxBodyBytes` (never buffered
   * past it) within `bodyTimeoutMs`.
   */
  webhookFetchHandler(options?: WebhookHandlerOptions): WebhookFetchHandler
  /**
   * A dashboard for people: a self-contained page (no CDN, no build step)
   * and its JSON API under `<basePath>/api/`. It shows the counters and
   * live charts of throughput, failures and queue depth (one `stats()`
   * sample a second, kept 10 minutes, taken only while a dashboard is in
   * use), the triggers (with pause, resume and fire), the executions
   * (filtered by status, tenant and callable, newest first, each with its
   * whole record, and cancel and retry), and an explain form. Actions are
   * refused (403) unless `authorize(req, { action, id })` answers `true`;
   * reads are open unless `authorizeRead` is given, so mount it behind your
   * application's authentication. Every answer carries a strict
   * Content-Security-Policy, and the page shows engine data as text only.
   * `http.createServer(engine.dashboardHandler({ basePath: '/enact' }))`, or
   * `app.use('/enact', engine.dashboardHandler({ authorize }))` with Express.
   * Throws `ENACT_INVALID_EXECUTION` for bad options.
   */
  dashboardHandler(options?: DashboardOptions<import('node:http').IncomingMessage>): DashboardHandler
  /**
   * The `dashboardHandler()` answers as a fetch-style handler, for Hono
   * (`app.all('/enact/*', (c) => handler(c.req.raw))`), Next.js route
   * handlers, Bun and Deno; give `basePath` (the request's whole URL is read).
   * `authorize` and `authorizeRead` receive the fetch `Request`.
   */
  dashboardFetchHandler(options?: DashboardOptions<Request>): DashboardFetchHandler
  /**
   * Adds a listener for an event (`execution.*`, `binding.applied`,
   * `binding.failed`, `trigger.fired`, `trigger.loop_blocked`,
   * `engine.diagnostic`); returns a function that removes it. A listener
   * is added once per event: adding it again changes nothing.
   */
  on<E extends EngineEventName>(event: E, listener: (payload: EngineEvents[E]) => void): () => void
  /**
   * Adds a listener for the next event of that name only; returns a
   * function that removes it before it ran (so does `off`).
   */
  once<E extends EngineEventName>(event: E, listener: (payload: EngineEvents[E]) => void): () => void
  /** Removes a listener added with `on` or `once`. */
  off<E extends EngineEventName>(event: E, listener: (payload: EngineEvents[E]) => void): void
  /**
   * Counters: executions per status, attempts in flight, limits, and per
   * callable and per tenant what waits and runs in the store and what this
   * engine did over the last 5 minutes (ends, retries, p50/p99 run and
   * queue-wait times).
   */
  stats(): Promise<EngineStats>
  /**
   * The Prometheus text exposition (format 0.0.4, encoded in Rust): what
   * this engine did since it started, and what the store holds now.
   *
   * - `enact_executions_total{callable, status}` counter: executions that
   *   ended here, `status` one of completed, failed, timeout, cancelled;
   * - `enact_attempts_total{callable}`, `enact_retries_total{callable}`;
   * - `enact_execution_duration_seconds{callable}` histogram: run time of
   *   each attempt; `enact_queue_wait_seconds{callable}`: queued to first
   *   start;
   * - `enact_trigger_fires_total{type}`, `enact_webhook_requests_total{code}`
   *   (answers of this engine's webhook handlers);
   * - gauges `enact_executions{callable, state}` (queued, delayed, running:
   *   over PostgreSQL every engine's), `enact_triggers{type, status}`,
   *   `enact_in_flight`, `enact_concurrency`.
   *
   * With `metrics: { tenantLabels: true }` the execution counters and
   * the `enact_executions` gauge carry a `tenant` label too (the
   * histograms stay per callable). Counters are per process, as with any Prometheus
   * client: sum them across engines in PromQL.
   */
  metrics(): Promise<string>
  /**
   * A Node `(req, res)` handler for `http.createServer` or Express
   * (`app.get('/metrics', engine.metricsHandler())`) answering a scrape with
   * {@link metrics}; 500 when the store cannot be read.
   */
  metricsHandler(): (req: import('node:http').IncomingMessage, res: import('node:http').ServerResponse) => void
  /**
   * The engine's current time: the system time, or where a manual clock
   * (`clock: 'manual'`) stands. Records' times (`queuedAt`,
   * `scheduledAt`, `lastFiredAt`, …) are read from this clock.
   */
  now(): Date
  /**
   * Moves a manual clock (`clock: 'manual'`) forward by `ms` and runs
   * what comes due on the way, in time order: deferred and retry-backoff
   * executions start, attempts past `timeoutMs` time out, target
   * handlers past `bindingTimeoutMs` fail their binding, schedule ticks
   * fire, cooldowns and `startAt` / `endAt` windows pass. Each due
   * instant is its own step (a per-minute cron advanced 10 minutes fires
   * 10 times), and the work a step starts gets an event-loop turn to
   * settle before the next step. Resolves once the clock reads start +
   * `ms` and all that was run: callables that settle without waiting on
   * I/O or timers have ended, their records are stored and their events
   * and waiters delivered. Work still running (waiting on I/O) goes on;
   * `await engine.idle()` for it. Calls made together run one after
   * another. Works under `jest.useFakeTimers()` (the engine's own
   * machinery does not use the faked globals).
   *
   * Rejects with `ENACT_INVALID_EXECUTION` when `ms` is not a finite
   * non-negative number (`ms: …`) or the engine runs on the system clock
   * (`advanceTime: …`), and `ENACT_SHUTDOWN` after `shutdown()`.
   */
  advanceTime(ms: number): Promise<void>
  /**
   * Stops taking work, lets running work finish for up to `timeoutMs`
   * (default 30000), then aborts what is left (it goes back to queued)
   * and rejects pending waiters with `ENACT_SHUTDOWN`. Afterwards nothing
   * of the engine keeps Node alive.
   */
  shutdown(options?: ShutdownOptions | undefined | null): Promise<void>
  /**
   * `shutdown()` with its defaults, so that
   * `await using engine = new BackgroundEngine()` shuts the engine down
   * when the scope ends (TypeScript 5.2+ with `lib: ["esnext.disposable"]`
   * or later; the symbol's type comes from `@types/node`, so users
   * without that lib can still call it).
   */
  [Symbol.asyncDispose](): Promise<void>
}

/**
 * Applies a result transform exactly as target binding does:
 * `none`, `first_line`, `truncate` (counting characters) or
 * `json_extract` (`$.a.b`, `$.a[0]`, `$.a[*].b`). Throws `ENACT_TRANSFORM`
 * when the value cannot be transformed.
 */
export declare function applyTransform(value: string, transform: TransformType, maxLength?: number | null, jsonPath?: string | null): string

/**
 * The SQLite store: one file, its WAL and a `-lock` file beside it, held
 * by one engine (one process) at a time.
 */
export interface SqliteStoreOptions {
  /** The database file's path (created with its directory's permissions). */
  sqlite: string
  /**
   * `'normal'` (default): nothing acknowledged is lost when the process
   * dies (kill -9 included); the last commits before a power loss or OS
   * crash may be. `'full'`: every commit waits for its fsync, so
   * acknowledged work also survives power loss (commits are shared, so
   * throughput stays high; each call's latency includes one fsync).
   */
  synchronous?: 'normal' | 'full'
}

/**
 * The PostgreSQL store: one schema of a database, shared by every engine
 * (process, machine) pointed at it. Engines sharing a schema act as one
 * engine: work submitted anywhere runs on whichever engine serves its
 * callable, triggers and their gates are shared, each schedule tick fires
 * once, `tenantConcurrency` and per-callable `concurrency` hold across all
 * of them, and `wait` / `silent` submits resolve wherever the work ran.
 * `concurrency` stays per engine; `on('execution.*')` reports what this
 * engine runs and `trigger.fired` what it fired.
 */
export interface PostgresStoreOptions {
  /**
   * The connection string: `postgres://user:password@host:5432/db` (or
   * the `key=value` form). Each engine holds a pool of 8 connections and
   * one that listens for notifications. Never shown in errors beyond
   * host, port and database.
   */
  postgres: string
  /**
   * The schema holding the tables (default `'enact_background'`): lowercase
   * letters, digits and `_`. Created and migrated at open, under an
   * advisory lock; a schema written by a newer version of this package is
   * refused (`ENACT_STORE`, naming both versions).
   */
  schema?: string
}

/** Options of {@link BackgroundEngine.open}. */
export interface OpenOptions extends Omit<EngineOptions, 'store'> {
  /** Where triggers and executions are kept (default: memory). */
  store?: 'memory' | SqliteStoreOptions | PostgresStoreOptions
  /**
   * How many times an execution may be interrupted by its engine dying
   * and still run again (default 1): at the next open (SQLite), or once
   * its lease expired, on any engine (PostgreSQL). Past it, it ends
   * `failed` with code `ENACT_STALLED`, so a job that crashes its process
   * cannot crash-loop the service (BullMQ's `maxStalledCount`). 0: never
   * run again. Extension.
   */
  maxStalls?: number
  /**
   * PostgreSQL: how long a claimed attempt is leased to its engine
   * (default 30000 ms, from 100). The engine renews the leases of what it
   * runs every third of it, so a slow callable never loses its lease while
   * its engine is alive; when an engine dies, the others take its work
   * back once the lease expires (a stall). Shorter: faster recovery from a
   * dead engine, more heartbeat writes; keep it well above a database
   * failover or a long GC pause. Extension.
   */
  leaseMs?: number
}

/** Options of `new BackgroundEngine(options)`. */
export interface EngineOptions {
  /** `'memory'` (default). Durable stores open with {@link BackgroundEngine.open}. */
  store?: 'memory'
  /**
   * Metrics (`metrics()`, `stats()` windows): on by default; `false` counts
   * nothing; `{ tenantLabels: true }` adds a `tenant` label to the
   * execution counters and gauges (series per tenant: mind the
   * cardinality; histograms stay per callable).
   */
  metrics?: boolean | { tenantLabels?: boolean }
  /**
   * Trace each attempt with OpenTelemetry (default false): needs the
   * optional peer dependency `@opentelemetry/api` and an SDK registered by
   * the application. Each attempt runs in a span `enact.execute
   * <callable>` (kind CONSUMER) that is a child of, and linked to, the span
   * that submitted the execution or made the call that fired it (`emit`,
   * `fire`, `reportMetric`; a webhook's `traceparent` header), carried in
   * the record as `traceContext`.
   */
  tracing?: boolean
  /** Attempts in flight at once, engine-wide (default 16). */
  concurrency?: number
  /** Attempts in flight at once per tenant (default: no limit). */
  tenantConcurrency?: number
  /** Longest chain of triggers firing triggers (default 16). */
  maxChainDepth?: number
  /**
   * Most fires one root execution's chain may cause in all, however wide
   * it grows (default 1000): two triggers on `execution.completed` double
   * the work at each level, which depth alone bounds only at 2^16.
   */
  maxChainFires?: number
  /**
   * Finished executions kept for `getExecution` / `wait` /
   * `listExecutions`, oldest dropped first (default 100000; counts in
   * `stats()` include dropped ones).
   */
  keepFinished?: number
  /**
   * Webhook message ids each webhook trigger remembers at most within
   * the 10-minute replay window (default 100000). Ids are forgotten only
   * when they expire: a trigger holding this many refuses new
   * deliveries (`ENACT_RATE_LIMITED`, HTTP 429) until the oldest
   * expires, so a flood cannot make it forget an id and accept a replay.
   */
  webhookReplayCapacity?: number
  /**
   * How long a target handler's promise may stay pending before its
   * binding fails with `binding.failed` (the execution stays as it ended;
   * default 30000).
   */
  bindingTimeoutMs?: number
  /**
   * The engine's clock. `'system'` (default): real time. `'manual'`:
   * time starts at the system time and moves only by `advanceTime(ms)`,
   * for tests of delays, retry backoff, timeouts, cooldowns and schedules
   * that must not wait; `{ manual: '2026-01-15T10:00:00Z' }` starts it at
   * that instant (RFC 3339). Under a manual clock no real time drives the
   * engine: nothing comes due until `advanceTime` (`bindingTimeoutMs`
   * and webhook timestamps included), and active schedules do not keep
   * Node alive. `shutdown({ timeoutMs })`, `wait(id, { timeoutMs })`,
   * `callbackUrl` retries and the webhook handlers' `bodyTimeoutMs` still
   * run on real time (never on Jest's fake timers).
   */
  clock?: 'system' | 'manual' | { manual: string }
}

/**
 * Counters returned by `stats()`. Executions per status are the store's
 * (over a durable store: all the file holds, whichever process queued
 * them); the others count what this engine did since it started.
 */
export interface EngineStats {
  queued: number
  running: number
  completed: number
  failed: number
  cancelled: number
  timeout: number
  /** Attempts in flight. */
  inFlight: number
  /** Engine-wide concurrency limit. */
  concurrency: number
  /** Submissions accepted since start. */
  submitted: number
  /** Retries scheduled since start. */
  retried: number
  /** Late results ignored (after a timeout or cancel). */
  staleResults: number
  /** Of `queued`, those delayed (retry backoff, `runAt`, `delayMs`). */
  delayed: number
  /** Executions this engine ended since it started, per final status (null with `metrics: false`). */
  ended: { completed: number; failed: number; timeout: number; cancelled: number } | null
  /** The window `callables` and `tenants` report over (300000: the last 5 minutes). */
  windowMs: number
  /** Per callable (every callable with work in the store or ends in the window). */
  callables: Record<string, NameStats>
  /** Per tenant, likewise. */
  tenants: Record<string, NameStats>
}

/**
 * One callable's or tenant's part of `stats()`: what waits and runs in the
 * store now (over PostgreSQL: on every engine), and what this engine did
 * over the last `windowMs`.
 */
export interface NameStats {
  queued: number
  delayed: number
  running: number
  /** Ended in the window, per final status. */
  completed: number
  failed: number
  timeout: number
  cancelled: number
  /** Attempts that failed with attempts left, in the window. */
  retried: number
  /** Run time of attempts that ended in the window (ms, within 10 %), or null. */
  durationMs: Percentiles | null
  /** Queue wait of first attempts that started in the window (ms, within 10 %), or null. */
  waitMs: Percentiles | null
}

/** p50 and p99 of `count` samples, in ms. */
export interface Percentiles {
  count: number
  p50: number
  p99: number
}

/** Options of `shutdown`. */
export interface ShutdownOptions {
  /** How long running work may go on before it is aborted (default 30000). */
  timeoutMs?: number
}

/** Every `err.code` the engine uses, exported from Rust's `ErrorCode::ALL`. */
export declare const ErrorCodes: readonly ErrorCode[]
