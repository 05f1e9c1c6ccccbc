//! What the executor and its host say to each other: the attempts the host
//! runs ([`Dispatch`]), how they ended ([`Outcome`]), and the notices the
//! host acts on ([`Notice`]).

use serde_json::Value;

use crate::error::EngineError;
use crate::model::{BackgroundExecution, BackgroundExecutionStatus as Status, TargetType};
use crate::store::StatusCounts;

/// The host side of the executor.
pub trait Host: Send + Sync + 'static {
    /// Background work produced notices or ready attempts: call
    /// [`Executor::drain`](super::Executor::drain) and [`Executor::take`](super::Executor::take) soon, on the host's own
    /// thread. Called at most once until the next `drain`.
    fn wake(&self);
}

/// An attempt the host must run. Serializes (camelCase, unset fields
/// omitted) as the job the Node host receives.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Dispatch {
    /// The execution.
    pub execution_id: String,
    /// Attempt number, from 1; pass it back to [`Executor::complete`](super::Executor::complete).
    pub attempt: u32,
    /// Owning tenant.
    pub tenant_id: String,
    /// Callable to run.
    pub callable_name: String,
    /// Its input.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub input: Option<String>,
    /// Its context.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub context: Option<std::collections::BTreeMap<String, String>>,
    /// Trigger that spawned it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub trigger_id: Option<String>,
    /// What fired the trigger.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub trigger_source: Option<Value>,
    /// Whether stream chunks are delivered (deferred mode only).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub stream: bool,
    /// The execution's chain depth: work its callable causes is one deeper.
    #[serde(skip_serializing_if = "is_zero")]
    pub chain_depth: u32,
    /// Its chain's root, if it is not the root itself.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub chain_root: Option<String>,
    /// The trace context it was submitted or fired in.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub trace_context: Option<crate::model::TraceContext>,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

/// How an attempt ended, as the host saw it.
#[derive(Clone, Debug, PartialEq)]
pub enum Outcome {
    /// The callable returned this output.
    Completed(Value),
    /// The callable failed.
    Failed(CallError),
}

/// A callable's failure.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct CallError {
    /// Readable message.
    pub message: String,
    /// `false` when the error says it must not be retried.
    pub retryable: bool,
    /// The error's own code, if any.
    pub code: Option<String>,
    /// Anything else worth keeping.
    pub details: Option<Value>,
}

impl CallError {
    /// A retryable failure with `message`.
    pub fn new(message: impl Into<String>) -> Self {
        Self { message: message.into(), retryable: true, code: None, details: None }
    }
}

/// Events the engine emits.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum EventKind {
    /// `execution.queued`
    Queued = 0,
    /// `execution.started`
    Started,
    /// `execution.stream`
    Stream,
    /// `execution.completed`
    Completed,
    /// `execution.failed`
    Failed,
    /// `execution.retrying`
    Retrying,
    /// `execution.cancelled`
    Cancelled,
    /// `execution.timeout`
    Timeout,
    /// `binding.applied`
    BindingApplied,
    /// `binding.failed`
    BindingFailed,
    /// `trigger.fired`
    TriggerFired,
    /// `trigger.loop_blocked`
    LoopBlocked,
    /// `engine.diagnostic`: background work failed and goes on.
    Diagnostic,
    /// `execution.progress`: a callable reported progress (emitted by the
    /// host once stored; not fed back to triggers).
    Progress,
}

impl EventKind {
    /// Every event kind.
    pub const ALL: [EventKind; 14] = [
        Self::Queued,
        Self::Started,
        Self::Stream,
        Self::Completed,
        Self::Failed,
        Self::Retrying,
        Self::Cancelled,
        Self::Timeout,
        Self::BindingApplied,
        Self::BindingFailed,
        Self::TriggerFired,
        Self::LoopBlocked,
        Self::Diagnostic,
        Self::Progress,
    ];

    /// The event name, e.g. `execution.completed`.
    pub fn name(self) -> &'static str {
        match self {
            Self::Queued => "execution.queued",
            Self::Started => "execution.started",
            Self::Stream => "execution.stream",
            Self::Completed => "execution.completed",
            Self::Failed => "execution.failed",
            Self::Retrying => "execution.retrying",
            Self::Cancelled => "execution.cancelled",
            Self::Timeout => "execution.timeout",
            Self::BindingApplied => "binding.applied",
            Self::BindingFailed => "binding.failed",
            Self::TriggerFired => "trigger.fired",
            Self::LoopBlocked => "trigger.loop_blocked",
            Self::Diagnostic => "engine.diagnostic",
            Self::Progress => "execution.progress",
        }
    }

    /// Parses an event name.
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.name() == name)
    }

    /// Whether this is one of the executor's own lifecycle events
    /// (`execution.*`, `binding.*`), which flow back into the trigger engine.
    pub fn is_execution_event(self) -> bool {
        !matches!(self, Self::TriggerFired | Self::LoopBlocked | Self::Diagnostic | Self::Progress)
    }

    /// This kind's bit in an interest mask.
    pub fn bit(self) -> u32 {
        1 << self as u8
    }

    pub(crate) fn of_final(status: Status) -> Option<Self> {
        match status {
            Status::Completed => Some(Self::Completed),
            Status::Failed => Some(Self::Failed),
            Status::Cancelled => Some(Self::Cancelled),
            Status::Timeout => Some(Self::Timeout),
            Status::Queued | Status::Running => None,
        }
    }
}

/// A result to hand to a target handler.
#[derive(Clone, Debug, PartialEq)]
pub struct BindRequest {
    /// The completed execution.
    pub record: BackgroundExecution,
    /// The handler to call.
    pub target_type: TargetType,
    /// The transformed value.
    pub value: String,
}

/// Why a running attempt is aborted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AbortReason {
    /// It ran past `timeoutMs`.
    Timeout,
    /// `cancel` was called.
    Cancel,
    /// The engine shut down.
    Shutdown,
}

impl AbortReason {
    /// `timeout`, `cancel` or `shutdown`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Timeout => "timeout",
            Self::Cancel => "cancel",
            Self::Shutdown => "shutdown",
        }
    }
}

/// Something the host must act on.
#[derive(Clone, Debug, PartialEq)]
pub enum Notice {
    /// An event for listeners (only kinds someone listens to).
    Event(EventKind, Box<BackgroundExecution>),
    /// A watched execution reached its final record: resolve its waiters.
    Settled(Box<BackgroundExecution>),
    /// Abort this running attempt's signal; its result will be ignored.
    Abort {
        /// The execution.
        execution_id: String,
        /// The attempt to abort.
        attempt: u32,
        /// Why.
        reason: AbortReason,
    },
    /// Call the target handler, then report with [`Executor::binding_done`](super::Executor::binding_done).
    Bind(Box<BindRequest>),
    /// The engine shut down: reject every remaining waiter.
    Closed,
    /// A trigger fired (`trigger.fired`).
    TriggerFired(Box<crate::model::TriggerFiredEvent>),
    /// A trigger chain was cut at `maxChainDepth` (`trigger.loop_blocked`).
    LoopBlocked(Box<crate::model::LoopBlockedEvent>),
    /// The final record of an execution with a `callbackUrl`: POST it there.
    Callback(Box<BackgroundExecution>),
    /// The answer to a call that was [`Answer::Later`].
    Answer {
        /// The ticket the call returned.
        ticket: u64,
        /// Its result, as JSON.
        result: Result<Value, EngineError>,
    },
    /// Work the engine does on its own (a timer, a fed-back event, a
    /// rescue) failed; it goes on, and says so here instead of swallowing it.
    Diagnostic(Box<Diagnostic>),
}

/// A failure of the engine's own background work.
#[derive(Clone, Debug, PartialEq)]
pub struct Diagnostic {
    /// Which service: `timer`, `feedback`, `schedule`, `rescuer`, …
    pub source: &'static str,
    /// What failed.
    pub error: EngineError,
}

/// The answer of a call that may need the store: at once (the memory
/// driver), or later as a [`Notice::Answer`] with this ticket (a durable
/// driver answering from its own thread).
#[derive(Debug, PartialEq)]
pub enum Answer<T> {
    /// Here it is.
    Now(T),
    /// It comes as [`Notice::Answer`] with this ticket.
    Later(u64),
}

impl<T> Answer<T> {
    /// The answer, when it came at once.
    pub fn now(self) -> Option<T> {
        match self {
            Self::Now(v) => Some(v),
            Self::Later(_) => None,
        }
    }
}

/// What a submission answers: the new execution's id and queue time, and
/// its record when asked for.
#[derive(Clone, Debug, PartialEq)]
pub struct Receipt {
    /// The execution's id.
    pub execution_id: String,
    /// When it was queued.
    pub queued_at: crate::model::Timestamp,
    /// The queued (or, for an unknown callable fired by a trigger, failed)
    /// record, when asked for; always set for an [`Existing`] execution.
    pub record: Option<Box<BackgroundExecution>>,
    /// Set when the submission named the id of an execution of the same
    /// tenant that already exists (an idempotent retry, as BullMQ's
    /// `jobId`): nothing was inserted and `record` is that execution's
    /// record, whatever the submission asked for (another callable or
    /// input included).
    pub existing: Option<Existing>,
}

/// How a submission naming an existing execution's id was answered
/// ([`Receipt::existing`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Existing {
    /// Asked to watch, and it has settled (final and bound): `record` is
    /// its final record and no [`Notice::Settled`] follows.
    Settled,
    /// Asked to watch, and it has not settled: `record` is its current
    /// record and a [`Notice::Settled`] follows when it settles.
    Watched,
    /// Not asked to watch: `record` is its current record.
    Current,
}

/// Counters of [`Executor::stats`](super::Executor::stats).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Stats {
    /// Executions per status in the store.
    pub counts: StatusCounts,
    /// Attempts in flight.
    pub in_flight: usize,
    /// Engine-wide concurrency limit.
    pub concurrency: usize,
    /// Submissions accepted since start.
    pub submitted: u64,
    /// Retries scheduled since start.
    pub retried: u64,
    /// Attempts whose late result was ignored (after timeout or cancel).
    pub stale_results: u64,
    /// Of the queued executions, those delayed (not ready before a time).
    pub delayed: u64,
    /// Executions this engine ended since it started: completed, failed,
    /// timeout, cancelled.
    pub ended: [u64; 4],
    /// Per callable: waiting and running work in the store, and what this
    /// engine did with it over the recent window.
    pub callables: std::collections::BTreeMap<String, NameStats>,
    /// The same per tenant.
    pub tenants: std::collections::BTreeMap<String, NameStats>,
}

/// One callable's or tenant's part of [`Stats`].
#[derive(Clone, Debug, Default, PartialEq)]
pub struct NameStats {
    /// Queued and ready, in the store.
    pub queued: u64,
    /// Queued but delayed, in the store.
    pub delayed: u64,
    /// Running, in the store (on any engine of a shared store).
    pub running: u64,
    /// What this engine did over [`crate::metrics::WINDOW_MS`].
    pub window: crate::metrics::WindowStats,
}

