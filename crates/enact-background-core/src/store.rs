//! The storage seam. All queue and execution state goes through [`Store`];
//! the engine keeps only in-flight bookkeeping (running attempts, deadlines)
//! in memory.
//!
//! The trait is shaped for durable stores to come: `claim` is the only way a
//! queued execution becomes running (SQL: `FOR UPDATE SKIP LOCKED`), every
//! later change is a compare-and-set [`Store::transition`] that names the
//! state it expects, so a late or duplicate result can never overwrite a
//! newer one, and delayed work (deferred runs, retry backoff) is kept with
//! its due time and promoted by [`Store::promote_due`].

use crate::model::{
    BackgroundExecution, BackgroundExecutionStatus, ExecutionError, Timestamp, TargetBindingResult,
    Trigger, TriggerStatus, TriggerType,
};
use serde_json::Value;

/// A store failure.
#[derive(Debug, Clone, thiserror::Error)]
#[error("store: {0}")]
pub struct StoreError(pub String);

/// Result with a [`StoreError`].
pub type StoreResult<T> = Result<T, StoreError>;

/// When a newly queued execution becomes claimable.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Readiness {
    /// At once.
    Now,
    /// When no immediate work is waiting (deferred without a time).
    Idle,
    /// At this Unix time in milliseconds.
    At(i64),
    /// Never: the record is already final (a trigger fire whose callable
    /// is not registered is written straight as `failed`).
    Final,
}

/// The executor's answer for a candidate of [`Store::claim`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Admit {
    /// Start it (the executor has counted it against its limits).
    Yes,
    /// The tenant is at its concurrency limit: none of its work now.
    TenantFull,
    /// The callable is at its concurrency limit: none of its work now.
    CallableFull,
}

/// Which state a [`Store::transition`] expects the execution to be in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Expect {
    /// Running this attempt.
    Running(u32),
    /// Queued or running.
    Active,
    /// Completed with its binding outstanding.
    Completed,
}

/// A change applied by [`Store::transition`].
#[derive(Clone, Debug)]
pub enum Change {
    /// Running → a final status.
    Finish {
        /// `completed`, `failed` or `timeout`.
        status: BackgroundExecutionStatus,
        /// Output of a completed run.
        output: Option<Value>,
        /// Error of a failed or timed-out run.
        error: Option<ExecutionError>,
        /// When.
        at: Timestamp,
    },
    /// Running → queued again, due at `due_ms`, keeping the error.
    Retry {
        /// Why the attempt failed.
        error: ExecutionError,
        /// When the next attempt may start (Unix ms).
        due_ms: i64,
    },
    /// Running → queued at once without using up the attempt (shutdown).
    Release,
    /// Queued or running → cancelled.
    Cancel {
        /// When.
        at: Timestamp,
    },
    /// Record the outcome of target binding.
    Bound(TargetBindingResult),
}

/// Filter of [`Store::list`].
#[derive(Clone, Debug, Default)]
pub struct ExecutionFilter {
    /// Only this tenant.
    pub tenant_id: Option<String>,
    /// Only this status.
    pub status: Option<BackgroundExecutionStatus>,
    /// Only this callable.
    pub callable_name: Option<String>,
    /// At most this many (oldest first).
    pub limit: Option<usize>,
}

impl ExecutionFilter {
    /// Whether `e` passes the filter (limit aside).
    pub fn matches(&self, e: &BackgroundExecution) -> bool {
        self.tenant_id.as_deref().is_none_or(|t| t == e.tenant_id)
            && self.status.is_none_or(|s| s == e.status)
            && self.callable_name.as_deref().is_none_or(|c| c == e.callable_name)
    }
}

/// Executions per status.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StatusCounts {
    /// Waiting (including delayed).
    pub queued: u64,
    /// In flight.
    pub running: u64,
    /// Completed.
    pub completed: u64,
    /// Failed.
    pub failed: u64,
    /// Cancelled.
    pub cancelled: u64,
    /// Timed out.
    pub timeout: u64,
}

impl StatusCounts {
    /// The counter of `status`.
    pub fn slot(&mut self, status: BackgroundExecutionStatus) -> &mut u64 {
        use BackgroundExecutionStatus::*;
        match status {
            Queued => &mut self.queued,
            Running => &mut self.running,
            Completed => &mut self.completed,
            Failed => &mut self.failed,
            Cancelled => &mut self.cancelled,
            Timeout => &mut self.timeout,
        }
    }
}

/// Execution storage and the queue.
pub trait Store: Send + Sync + 'static {
    /// Adds a queued execution. Fails if the id exists.
    fn insert(&self, exec: BackgroundExecution, ready: Readiness) -> StoreResult<()>;

    /// One execution.
    fn get(&self, id: &str) -> StoreResult<Option<BackgroundExecution>>;

    /// Executions passing `filter`, oldest first.
    fn list(&self, filter: &ExecutionFilter) -> StoreResult<Vec<BackgroundExecution>>;

    /// Claims up to `max` ready executions: highest priority first, tenants
    /// at one priority served round-robin, FIFO within a tenant among the
    /// work that may start. `admit(tenant, callable)` is asked for each
    /// candidate and may refuse: [`Admit::TenantFull`] passes over the
    /// tenant for now, [`Admit::CallableFull`] passes over that callable's
    /// work (the tenant's older work of a full callable must not hold up its
    /// other callables). Claimed executions become `running`, their
    /// `attempt` grows by one and `startedAt` is `now`.
    fn claim(
        &self,
        max: usize,
        now: Timestamp,
        admit: &mut dyn FnMut(&str, &str) -> Admit,
    ) -> StoreResult<Vec<BackgroundExecution>>;

    /// Makes delayed executions due by `now_ms` claimable; returns how many
    /// became claimable and the next due time still pending.
    fn promote_due(&self, now_ms: i64) -> StoreResult<(usize, Option<i64>)>;

    /// Applies `change` if the execution is in the `expect`ed state; returns
    /// the new record, or `None` when the id is unknown or the state differs.
    fn transition(&self, id: &str, expect: Expect, change: Change) -> StoreResult<Option<BackgroundExecution>>;

    /// [`Store::transition`] when the caller does not need the new record
    /// (nobody listens, waits or binds): `true` when the change applied. A
    /// store that keeps records compact can skip building one.
    fn transition_quiet(&self, id: &str, expect: Expect, change: Change) -> StoreResult<bool> {
        Ok(self.transition(id, expect, change)?.is_some())
    }

    /// Executions per status.
    fn counts(&self) -> StoreResult<StatusCounts>;
}

// ---------------------------------------------------------------------------
// Triggers

/// Filter of [`TriggerStore::list_triggers`].
#[derive(Clone, Debug, Default)]
pub struct TriggerFilter {
    /// Only this tenant.
    pub tenant_id: Option<String>,
    /// Only this type.
    pub trigger_type: Option<TriggerType>,
    /// Only this status.
    pub status: Option<TriggerStatus>,
}

impl TriggerFilter {
    /// Whether `t` passes the filter.
    pub fn matches(&self, t: &Trigger) -> bool {
        self.tenant_id.as_deref().is_none_or(|x| x == t.tenant_id)
            && self.trigger_type.is_none_or(|x| x == t.trigger_type)
            && self.status.is_none_or(|x| x == t.status)
    }
}

/// Why a trigger did not fire.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Blocked {
    /// Its status is not `active` (paused, disabled, fired or expired).
    Inactive(TriggerStatus),
    /// `startAt` is still ahead.
    NotStarted(Timestamp),
    /// Fired less than `cooldownMs` ago; this much remains.
    Cooldown(u64),
}

impl std::fmt::Display for Blocked {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Inactive(TriggerStatus::Fired) => f.write_str("it reached maxFires (status \"fired\")"),
            Self::Inactive(TriggerStatus::Expired) => f.write_str("its endAt has passed (status \"expired\")"),
            Self::Inactive(s) => write!(f, "it is {}", serde_json::to_value(s).ok().and_then(|v| v.as_str().map(str::to_owned)).unwrap_or_default()),
            Self::NotStarted(at) => write!(f, "it starts at {}", at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)),
            Self::Cooldown(ms) => write!(f, "it is cooling down for another {ms} ms"),
        }
    }
}

/// The gating rule of DESIGN §2, applied by every store inside its one
/// atomic fire step: fires only when `status` is `active`, `startAt <= now
/// <= endAt`, `fireCount < maxFires` and `cooldownMs` has passed since
/// `lastFiredAt`. On success counts the fire (and turns the trigger
/// `fired` when it reaches `maxFires`); passing `endAt` turns it `expired`.
/// Returns whether `t` changed (so the store must write it back).
pub fn apply_gate(t: &mut Trigger, now: Timestamp) -> (Result<(), Blocked>, bool) {
    let mut changed = refresh_status(t, now);
    if t.status != TriggerStatus::Active {
        return (Err(Blocked::Inactive(t.status)), changed);
    }
    if let Some(start) = t.start_at.filter(|s| now < *s) {
        return (Err(Blocked::NotStarted(start)), changed);
    }
    if let (Some(cooldown), Some(last)) = (t.cooldown_ms, t.last_fired_at) {
        let since = (now - last).num_milliseconds().max(0) as u64;
        if since < cooldown {
            return (Err(Blocked::Cooldown(cooldown - since)), changed);
        }
    }
    t.fire_count += 1;
    t.last_fired_at = Some(now);
    t.updated_at = now;
    if t.max_fires.is_some_and(|m| t.fire_count >= m) {
        t.status = TriggerStatus::Fired;
    }
    changed = true;
    (Ok(()), changed)
}

/// Moves an `active` trigger whose window or budget is used up to
/// `expired` or `fired`. Returns whether it changed.
pub fn refresh_status(t: &mut Trigger, now: Timestamp) -> bool {
    if t.status != TriggerStatus::Active {
        return false;
    }
    let next = if t.end_at.is_some_and(|e| now > e) {
        TriggerStatus::Expired
    } else if t.max_fires.is_some_and(|m| t.fire_count >= m) {
        TriggerStatus::Fired
    } else {
        return false;
    };
    t.status = next;
    t.updated_at = now;
    true
}

/// Trigger storage. Definitions and their mutable state (status,
/// `fireCount`, `lastFiredAt`) live here; the engine keeps only compiled
/// matchers and schedule timers, rebuilt from the store.
pub trait TriggerStore: Send + Sync + 'static {
    /// Adds a trigger. Fails if the id exists.
    fn insert_trigger(&self, t: Trigger) -> StoreResult<()>;

    /// One trigger.
    fn get_trigger(&self, id: &str) -> StoreResult<Option<Trigger>>;

    /// Triggers passing `filter`, oldest first.
    fn list_triggers(&self, filter: &TriggerFilter) -> StoreResult<Vec<Trigger>>;

    /// Replaces a trigger through `f` atomically; `None` when the id is
    /// unknown. `f` may refuse with an error, which is returned unchanged.
    fn update_trigger(
        &self,
        id: &str,
        f: &mut dyn FnMut(&mut Trigger) -> Result<(), crate::error::EngineError>,
    ) -> StoreResult<Option<Result<Trigger, crate::error::EngineError>>>;

    /// Removes a trigger; false when the id is unknown.
    fn remove_trigger(&self, id: &str) -> StoreResult<bool>;

    /// The atomic fire step: applies [`apply_gate`] at `now` and persists
    /// the result in one step, so concurrent fires of one trigger can never
    /// both pass a `maxFires` or cooldown gate. `None` when the id is unknown.
    /// The trigger comes back shared: a fire reads it, it does not own it.
    fn fire_trigger(&self, id: &str, now: Timestamp) -> StoreResult<Option<(std::sync::Arc<Trigger>, Result<(), Blocked>)>>;
}
