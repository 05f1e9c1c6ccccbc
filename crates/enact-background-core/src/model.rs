//! The wire model: JSON shapes shared with enact-core 0.0.2.
//!
//! Every type here serializes to, and deserializes from, exactly the JSON
//! that enact-core's `background` module writes: camelCase keys, the
//! snake_case keys inside [`ExecutionError`], PascalCase error categories,
//! and optional fields omitted when unset. Extensions beyond enact-core are
//! optional fields, omitted when unset, so that enact-core still reads what
//! we write.

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// A timestamp; serialized as an RFC 3339 string in UTC.
pub type Timestamp = DateTime<Utc>;

/// A free-form JSON object (metadata, event data).
pub type JsonMap = serde_json::Map<String, Value>;

// ---------------------------------------------------------------------------
// Triggers

/// What kind of stimulus a trigger reacts to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TriggerType {
    /// An application event passed to `emit`.
    Event,
    /// A cron expression or a fixed interval.
    Schedule,
    /// An HTTP request to the trigger's webhook.
    Webhook,
    /// A metric crossing a threshold.
    Threshold,
    /// An explicit `fire` call.
    Manual,
    /// A lifecycle event passed to `lifecycle`.
    Lifecycle,
}

/// Whether a trigger may fire.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TriggerStatus {
    /// May fire.
    Active,
    /// Suspended by the user; `resume` makes it active again.
    Paused,
    /// Switched off by the user.
    Disabled,
    /// Reached `maxFires`.
    Fired,
    /// Passed `endAt`.
    Expired,
}

impl TriggerType {
    /// The wire spelling (`event`, `schedule`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Event => "event",
            Self::Schedule => "schedule",
            Self::Webhook => "webhook",
            Self::Threshold => "threshold",
            Self::Manual => "manual",
            Self::Lifecycle => "lifecycle",
        }
    }
}

impl TriggerStatus {
    /// The wire spelling (`active`, `paused`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::Paused => "paused",
            Self::Disabled => "disabled",
            Self::Fired => "fired",
            Self::Expired => "expired",
        }
    }
}

/// Comparison of a threshold trigger.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ThresholdOperator {
    /// `>`
    Gt,
    /// `>=`
    Gte,
    /// `<`
    Lt,
    /// `<=`
    Lte,
    /// `==`
    Eq,
    /// `!=`
    Neq,
}

/// When a trigger fires; which fields apply depends on the trigger type.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TriggerCondition {
    /// Event type to match (exact, or with a trailing `*` wildcard).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event_type: Option<String>,
    /// Dotted paths in the event data mapped to expected values or operators.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event_pattern: Option<Value>,
    /// Cron expression (5, 6 or 7 fields, or a macro such as `@daily`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cron_expression: Option<String>,
    /// Fixed interval between schedule ticks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interval_seconds: Option<u64>,
    /// Metric watched by a threshold trigger.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metric_name: Option<String>,
    /// Threshold the metric is compared with.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub threshold_value: Option<f64>,
    /// Comparison of a threshold trigger.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub threshold_operator: Option<ThresholdOperator>,
    /// Extension: IANA time zone of a cron schedule (default UTC).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timezone: Option<String>,
    /// Extension: what a schedule does with ticks missed while the process
    /// was down or stalled (default [`MisfirePolicy::FireOnce`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub misfire_policy: Option<MisfirePolicy>,
}

/// What a schedule trigger does when more than one of its ticks is due at
/// once (the process was down, or its scheduler stalled): a misfire.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MisfirePolicy {
    /// One fire, for the latest due tick, whose source says how many ticks
    /// it stands for (`missedTicks`) and the first and last of them.
    #[default]
    FireOnce,
    /// No fire for ticks due a second or more ago; a tick due less than a
    /// second ago (due now) still fires.
    Skip,
}

/// What a trigger runs when it fires.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TriggerAction {
    /// Registered callable to run.
    pub callable_name: String,
    /// Input passed to the callable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input: Option<String>,
    /// String context passed to the callable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context: Option<BTreeMap<String, String>>,
    /// System prompt for LLM callables.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub system_prompt: Option<String>,
    /// Where the result is bound. enact-core's trigger-side binding has no
    /// `transform`, so it is written only when set (an extension).
    #[serde(default, skip_serializing_if = "Option::is_none", serialize_with = "serialize_trigger_binding")]
    pub target_binding: Option<TargetBindingConfig>,
    /// Run in the background (always true in this engine).
    #[serde(default = "default_true")]
    pub background: bool,
    /// Retry policy of the executions the trigger spawns.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry: Option<RetryConfig>,
}

fn default_true() -> bool {
    true
}

/// A trigger action's binding as enact-core writes it: `transform` omitted
/// when it is the default (`none`).
fn serialize_trigger_binding<S: serde::Serializer>(b: &Option<TargetBindingConfig>, s: S) -> Result<S::Ok, S::Error> {
    let mut v = serde_json::to_value(b).map_err(serde::ser::Error::custom)?;
    if let Some(o) = v.as_object_mut() {
        if o.get("transform").and_then(Value::as_str) == Some("none") {
            o.remove("transform");
        }
    }
    v.serialize(s)
}

/// A trigger definition and its state.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Trigger {
    /// `trigger_` + KSUID.
    pub trigger_id: String,
    /// Owning tenant; the trigger only sees this tenant's events.
    pub tenant_id: String,
    /// Human-readable name.
    pub name: String,
    /// Free-form description.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Kind of trigger.
    #[serde(rename = "type")]
    pub trigger_type: TriggerType,
    /// Current status.
    pub status: TriggerStatus,
    /// When it fires.
    #[serde(default)]
    pub condition: TriggerCondition,
    /// What it runs.
    pub action: TriggerAction,
    /// Not before this instant.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_at: Option<Timestamp>,
    /// Not after this instant (then `expired`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end_at: Option<Timestamp>,
    /// At most this many fires (then `fired`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_fires: Option<u64>,
    /// Fires so far.
    #[serde(default)]
    pub fire_count: u64,
    /// Minimum time between fires.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cooldown_ms: Option<u64>,
    /// Last fire.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_fired_at: Option<Timestamp>,
    /// Creation time.
    pub created_at: Timestamp,
    /// Last change.
    pub updated_at: Timestamp,
    /// Extension: Standard Webhooks secret (`whsec_…`) of a webhook trigger.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub webhook_secret: Option<String>,
    /// Extension: a webhook trigger without `webhookSecret` accepts
    /// unsigned requests, from anyone who knows its id, only when this is
    /// set: unsigned webhooks are an explicit opt-in. Written only when
    /// true.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub allow_unsigned: bool,
}

/// Emitted each time a trigger fires.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TriggerFiredEvent {
    /// The trigger that fired.
    pub trigger_id: String,
    /// Its name.
    pub trigger_name: String,
    /// Its type.
    pub trigger_type: TriggerType,
    /// The execution it spawned.
    pub execution_id: String,
    /// When it fired.
    pub fired_at: Timestamp,
    /// The event, metric, webhook body or schedule tick that fired it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trigger_source: Option<Value>,
    /// Extension: the tenant of the trigger (and of the execution it
    /// spawned). Every fire of this engine sets it; enact-core's records
    /// lack it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant_id: Option<String>,
    /// Extension: the chain depth of the execution it spawned (see
    /// [`BackgroundExecution::chain_depth`]), so that listeners of
    /// `trigger.fired` continue that chain.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub chain_depth: u32,
    /// Extension: the root of that execution's chain, when it is not the
    /// root itself.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chain_root: Option<String>,
}

/// Which bound of a chain a refused fire would have passed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum ChainLimit {
    /// The chain would be longer than `maxChainDepth`.
    MaxChainDepth,
    /// Its root already caused `maxChainFires` fires.
    MaxChainFires,
}

/// Emitted (as `trigger.loop_blocked`) instead of a fire that would make a
/// chain of caused work longer than `maxChainDepth`, or make its root cause
/// more than `maxChainFires` fires.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LoopBlockedEvent {
    /// The trigger that did not fire.
    pub trigger_id: String,
    /// Its name.
    pub trigger_name: String,
    /// Its tenant.
    pub tenant_id: String,
    /// Depth the execution would have had.
    pub chain_depth: u32,
    /// The engine's limit.
    pub max_chain_depth: u32,
    /// Which limit refused the fire.
    pub limit: ChainLimit,
    /// The execution at the root of the chain (absent for a stimulus from
    /// outside any execution).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chain_root: Option<String>,
    /// Fires the root's chain caused so far.
    pub chain_fires: u32,
    /// The engine's limit of fires per chain.
    pub max_chain_fires: u32,
    /// The event that would have fired it.
    pub trigger_source: Value,
    /// When the fire was refused.
    pub blocked_at: Timestamp,
}

// ---------------------------------------------------------------------------
// Executions

/// How `submit` behaves and when the execution runs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ExecutionMode {
    /// `submit` resolves at once with the queued record; no streaming.
    #[default]
    FireAndForget,
    /// `submit` resolves with the finished record; stream chunks suppressed.
    Silent,
    /// Runs at `runAt` / after `delayMs`, else after immediate work drains.
    Deferred,
}

/// Lifecycle status of an execution.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BackgroundExecutionStatus {
    /// Waiting to run (or waiting for a retry).
    Queued,
    /// A callable attempt is in flight.
    Running,
    /// Finished with an output.
    Completed,
    /// Finished with an error.
    Failed,
    /// Cancelled before finishing.
    Cancelled,
    /// The last attempt ran out of time.
    Timeout,
}

impl BackgroundExecutionStatus {
    /// Whether the status is final.
    pub fn is_final(self) -> bool {
        !matches!(self, Self::Queued | Self::Running)
    }

    /// The wire spelling (`queued`, `running`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Queued => "queued",
            Self::Running => "running",
            Self::Completed => "completed",
            Self::Failed => "failed",
            Self::Cancelled => "cancelled",
            Self::Timeout => "timeout",
        }
    }
}

/// Retry policy: attempt `n` (from 1) that fails waits
/// `backoffMs * backoffMultiplier^(n-1)` (with jitter) before attempt `n+1`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RetryConfig {
    /// Total attempts, the first included.
    #[serde(default = "default_max_attempts")]
    pub max_attempts: u32,
    /// Delay before the second attempt.
    #[serde(default = "default_backoff_ms")]
    pub backoff_ms: u64,
    /// Growth factor of the delay.
    #[serde(default = "default_backoff_multiplier")]
    pub backoff_multiplier: f64,
}

fn default_max_attempts() -> u32 {
    3
}
fn default_backoff_ms() -> u64 {
    1000
}
fn default_backoff_multiplier() -> f64 {
    2.0
}

impl Default for RetryConfig {
    fn default() -> Self {
        Self {
            max_attempts: default_max_attempts(),
            backoff_ms: default_backoff_ms(),
            backoff_multiplier: default_backoff_multiplier(),
        }
    }
}

/// Where a result is written.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum TargetType {
    /// A thread's title.
    #[serde(rename = "thread.title")]
    ThreadTitle,
    /// A thread's summary.
    #[serde(rename = "thread.summary")]
    ThreadSummary,
    /// An execution's summary.
    #[serde(rename = "execution.summary")]
    ExecutionSummary,
    /// A message's metadata.
    #[serde(rename = "message.metadata")]
    MessageMetadata,
    /// A new artifact.
    #[serde(rename = "artifact.create")]
    ArtifactCreate,
    /// A memory entry.
    #[serde(rename = "memory.write")]
    MemoryWrite,
    /// Anything else, addressed by `targetPath`.
    #[serde(rename = "custom")]
    Custom,
}

impl TargetType {
    /// Every target type, in declaration order.
    pub const ALL: [TargetType; 7] = [
        Self::ThreadTitle,
        Self::ThreadSummary,
        Self::ExecutionSummary,
        Self::MessageMetadata,
        Self::ArtifactCreate,
        Self::MemoryWrite,
        Self::Custom,
    ];

    /// The wire spelling (`thread.title`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ThreadTitle => "thread.title",
            Self::ThreadSummary => "thread.summary",
            Self::ExecutionSummary => "execution.summary",
            Self::MessageMetadata => "message.metadata",
            Self::ArtifactCreate => "artifact.create",
            Self::MemoryWrite => "memory.write",
            Self::Custom => "custom",
        }
    }

    /// Parses the wire spelling.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.as_str() == s)
    }
}

/// How the output is turned into the bound value.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TransformType {
    /// The output as is.
    #[default]
    None,
    /// The first line, trimmed (and truncated to `maxLength` if set).
    FirstLine,
    /// At most `maxLength` characters, ending in `...` when cut.
    Truncate,
    /// The value at `jsonPath` of the output parsed as JSON.
    JsonExtract,
}

/// Where and how an execution's result is bound.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TargetBindingConfig {
    /// Kind of target.
    pub target_type: TargetType,
    /// Path within the target (required meaning for `custom`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_path: Option<String>,
    /// Transform applied before binding.
    #[serde(default)]
    pub transform: TransformType,
    /// Length limit of `truncate` / `first_line`, in characters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_length: Option<usize>,
    /// Path of `json_extract`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub json_path: Option<String>,
    /// Thread the target belongs to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub thread_id: Option<String>,
    /// Execution the target belongs to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub execution_id: Option<String>,
}

/// Outcome of binding a result to its target.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TargetBindingResult {
    /// Kind of target.
    pub target_type: TargetType,
    /// Path within the target.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_path: Option<String>,
    /// Whether the handler accepted the value.
    pub success: bool,
    /// The value handed to the handler.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub applied_value: Option<String>,
    /// Why binding failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// When binding finished.
    pub applied_at: Timestamp,
}

/// How an execution is run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BackgroundExecutionConfig {
    /// Submission mode.
    #[serde(default)]
    pub mode: ExecutionMode,
    /// 0–255, higher runs first.
    #[serde(default = "default_priority")]
    pub priority: u8,
    /// Time limit of one attempt.
    #[serde(default = "default_timeout_ms")]
    pub timeout_ms: u64,
    /// Where the result is bound.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_binding: Option<Box<TargetBindingConfig>>,
    /// Deferred mode: the final record is POSTed here.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub callback_url: Option<String>,
    /// Retry policy; without one an execution is attempted once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry: Option<RetryConfig>,
    /// Extension: deferred mode, run at this instant.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_at: Option<Timestamp>,
    /// Extension: deferred mode, run after this delay.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delay_ms: Option<u64>,
}

fn default_priority() -> u8 {
    50
}
fn default_timeout_ms() -> u64 {
    300_000
}

impl Default for BackgroundExecutionConfig {
    fn default() -> Self {
        Self {
            mode: ExecutionMode::default(),
            priority: default_priority(),
            timeout_ms: default_timeout_ms(),
            target_binding: None,
            callback_url: None,
            retry: None,
            run_at: None,
            delay_ms: None,
        }
    }
}

/// enact-core's error category.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ErrorCategory {
    /// A model provider failed.
    LlmError,
    /// A tool (here: a callable) failed.
    ToolError,
    /// A policy refused the work.
    PolicyViolation,
    /// Out of time.
    Timeout,
    /// A quota was exhausted.
    QuotaExceeded,
    /// The engine itself failed.
    KernelInternal,
    /// Input was invalid.
    ValidationError,
    /// The network failed.
    NetworkError,
}

/// enact-core's retry policy attached to an error (snake_case keys).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ErrorRetryPolicy {
    /// `constant`, `linear` or `exponential`.
    pub backoff_strategy: String,
    /// First delay, in milliseconds.
    pub base_delay: u64,
    /// Largest delay, in milliseconds.
    pub max_delay: u64,
    /// Retries after the first attempt.
    pub max_retries: u32,
    /// Whether retries need an idempotency key.
    pub requires_idempotency_key: bool,
    /// Whether the error may be retried at all.
    pub retryable: bool,
}

impl ErrorRetryPolicy {
    /// The policy of work attempted once (no `retry` config): no retries,
    /// no delays. enact-core requires a policy on every error (it refuses
    /// `"retry_policy": null`), so errors without one carry this.
    pub fn no_retry(retryable: bool) -> Self {
        ErrorRetryPolicy {
            backoff_strategy: "constant".into(),
            base_delay: 0,
            max_delay: 0,
            max_retries: 0,
            requires_idempotency_key: false,
            retryable,
        }
    }
}

/// enact-core's ExecutionError: snake_case keys, nulls written out.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ExecutionError {
    /// What went wrong, broadly.
    pub category: ErrorCategory,
    /// Readable description.
    pub message: String,
    /// Retry policy that applied.
    #[serde(default)]
    pub retry_policy: Option<ErrorRetryPolicy>,
    /// Application error code (a callable's `err.code`).
    #[serde(default)]
    pub code: Option<String>,
    /// Attempt that produced the error (from 1).
    #[serde(default)]
    pub attempt: u32,
    /// Step of a multi-step run.
    #[serde(default)]
    pub step_id: Option<String>,
    /// Provider that failed.
    #[serde(default)]
    pub provider: Option<String>,
    /// HTTP status of a failed call.
    #[serde(default)]
    pub http_status: Option<u16>,
    /// Anything else.
    #[serde(default)]
    pub details: Option<Value>,
    /// Milliseconds since the Unix epoch.
    pub occurred_at: i64,
}

/// One unit of background work and its state.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BackgroundExecution {
    /// `exec_` + KSUID.
    pub execution_id: String,
    /// Owning tenant.
    pub tenant_id: String,
    /// Registered callable that runs it.
    pub callable_name: String,
    /// Input for the callable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input: Option<String>,
    /// String context for the callable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context: Option<BTreeMap<String, String>>,
    /// How it runs.
    #[serde(default)]
    pub config: BackgroundExecutionConfig,
    /// Lifecycle status.
    pub status: BackgroundExecutionStatus,
    /// When it was submitted.
    pub queued_at: Timestamp,
    /// When the latest attempt started.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at: Option<Timestamp>,
    /// When it reached a final status.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub completed_at: Option<Timestamp>,
    /// The callable's result.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output: Option<Value>,
    /// Why it failed or timed out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<Box<ExecutionError>>,
    /// Whether the result was bound to its target.
    #[serde(default)]
    pub target_binding_applied: bool,
    /// Trigger that spawned it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trigger_id: Option<String>,
    /// Caller's metadata.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<JsonMap>,
    /// Extension: the event, metric, webhook body or tick that fired the trigger.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trigger_source: Option<Value>,
    /// Extension: attempts started so far.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub attempt: u32,
    /// Extension: the outcome of target binding.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub binding_result: Option<Box<TargetBindingResult>>,
    /// Extension: how many trigger fires led to this execution (1 for a
    /// fire caused by an application event, 2 when that fire's own
    /// execution events fired another trigger, …; 0 for a direct submit).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub chain_depth: u32,
    /// Extension: the execution at the root of the chain that caused this
    /// one (through triggers, or `emit` / `submit` / `fire` made while a
    /// callable ran); absent when this execution is a root itself.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chain_root: Option<String>,
    /// Extension: what the running (or last) attempt reported with
    /// `ctx.progress(value)`: a number or a small JSON value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub progress: Option<Value>,
    /// Extension: the W3C trace context (`traceparent`, `tracestate`) of
    /// the span that submitted or fired it, so that each attempt's span is
    /// linked to it, on any engine, after any restart.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trace_context: Option<TraceContext>,
}

/// A W3C trace context carrier (`traceparent`, `tracestate`), opaque to
/// the engine.
pub type TraceContext = BTreeMap<String, String>;

impl BackgroundExecution {
    /// The chain that work this execution causes belongs to.
    pub fn chain(&self) -> Chain {
        Chain {
            depth: self.chain_depth,
            root: Some(self.chain_root.clone().unwrap_or_else(|| self.execution_id.clone())),
            trace: self.trace_context.clone().map(Arc::new),
        }
    }
}

/// Where caused work sits: how many fires led to it and which execution
/// the chain started from. `Chain::default()` is a stimulus from outside
/// any execution (an application's `emit`, a schedule tick, a webhook).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Chain {
    /// The causing execution's `chainDepth`.
    pub depth: u32,
    /// The root execution's id; `None` outside any execution.
    pub root: Option<String>,
    /// The trace context of the call that caused the work (the span that
    /// emitted, fired or reported), carried onto the executions it fires.
    pub trace: Option<Arc<TraceContext>>,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}
