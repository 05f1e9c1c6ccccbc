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
    /// at one priority served round-robin, FIFO within a tenant. `admit` is
    /// asked once per candidate's tenant and may refuse (tenant at its
    /// concurrency limit). Claimed executions become `running`, their
    /// `attempt` grows by one and `startedAt` is `now`.
    fn claim(
        &self,
        max: usize,
        now: Timestamp,
        admit: &mut dyn FnMut(&str) -> bool,
    ) -> StoreResult<Vec<BackgroundExecution>>;

    /// Makes delayed executions due by `now_ms` claimable; returns how many
    /// became claimable and the next due time still pending.
    fn promote_due(&self, now_ms: i64) -> StoreResult<(usize, Option<i64>)>;

    /// Applies `change` if the execution is in the `expect`ed state; returns
    /// the new record, or `None` when the id is unknown or the state differs.
    fn transition(&self, id: &str, expect: Expect, change: Change) -> StoreResult<Option<BackgroundExecution>>;

    /// Executions per status.
    fn counts(&self) -> StoreResult<StatusCounts>;
}
