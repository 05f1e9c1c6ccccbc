//! The store driver seam. Every piece of state that a durable store must
//! keep goes through one [`Driver`]: executions and the queue, leases,
//! triggers with their counts, schedule cursors, threshold arming, webhook
//! replay ids and trigger-change notices. The engine keeps in memory only
//! registries of JS functions, compiled matchers (rebuilt from the store)
//! and what it is running.
//!
//! The driver is async and batch-first, its operations named by intent
//! (River's `riverdriver`: `JobInsertFastMany`, `JobGetAvailable`,
//! `JobSetStateIfRunningMany`, `JobRescueMany`): `insert_many`, `claim`
//! with its limits passed as data, `finish_many` as compare-and-sets on the
//! running attempt, and `fire` as one transaction that gates, counts, arms
//! and inserts. `claim` is the only way a queued execution becomes running
//! (SQL: `FOR UPDATE SKIP LOCKED`), and every later change names the state
//! it expects, so a late or duplicate result can never overwrite a newer
//! one.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use crate::error::EngineError;
use crate::model::{
    BackgroundExecution, BackgroundExecutionStatus, ExecutionError, Timestamp, TargetBindingResult,
    Trigger, TriggerStatus, TriggerType,
};
use serde_json::Value;

pub use crate::error::{StoreError, StoreResult};

/// What every driver call answers: a boxed future, so that drivers are
/// objects (`Arc<dyn Driver>`). The memory driver's futures are ready on
/// their first poll; a durable driver's wait on its own threads or
/// connections, never on the caller's.
pub type StoreFuture<'a, T> = Pin<Box<dyn Future<Output = StoreResult<T>> + Send + 'a>>;

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

/// A new execution for [`Driver::insert_many`] or a fire.
#[derive(Clone, Debug)]
pub struct NewExecution {
    /// The record as queued (or final, with [`Readiness::Final`]); boxed,
    /// so that a batch of a thousand is a small vector, not half a
    /// megabyte to map and zero per batch.
    pub record: Box<BackgroundExecution>,
    /// When it may be claimed.
    pub ready: Readiness,
    /// Whether an engine waits for its end (`wait`, a `silent` submit): a
    /// store shared by engines tells the others when it ends
    /// ([`Signal::Settled`]).
    pub watched: bool,
}

impl NewExecution {
    /// An unwatched new execution.
    pub fn new(record: BackgroundExecution, ready: Readiness) -> Self {
        Self { record: Box::new(record), ready, watched: false }
    }
}

/// One row's answer of [`Driver::insert_many`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Inserted {
    /// Stored.
    Ok,
    /// An execution with that id exists: nothing was written.
    Duplicate,
}

/// The limits a claim must respect, passed as data (River's
/// `JobGetAvailable` parameters, Oban's `fetch_jobs` limits): the driver
/// counts what is running itself, so that on a shared store the limits
/// hold for every engine together.
#[derive(Clone, Debug, Default)]
pub struct Limits {
    /// Attempts running at once per tenant.
    pub tenant: Option<usize>,
    /// The callables this engine runs, with their own limits (`None`: only
    /// the engine and tenant limits). Work of other callables is left for
    /// engines that run them.
    pub callables: HashMap<String, Option<usize>, foldhash::fast::RandomState>,
}

/// Parameters of [`Driver::claim`].
#[derive(Clone, Debug)]
pub struct ClaimParams {
    /// Who claims (an engine id), recorded with the lease.
    pub worker: Arc<str>,
    /// At most this many (the engine's free slots).
    pub max: usize,
    /// The claim's time: `startedAt` of what it claims.
    pub now: Timestamp,
    /// Until when the claimed attempts are leased to `worker`: past it a
    /// rescuer may take them back ([`Driver::rescue_expired`]).
    pub lease_until: Timestamp,
    /// Tenant and callable limits.
    pub limits: Arc<Limits>,
}

/// How a running attempt ends, for [`Driver::finish_many`].
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
}

/// One row of [`Driver::finish_many`]: a compare-and-set on the running
/// attempt, so that a late or duplicate result never overwrites a newer
/// state.
#[derive(Clone, Debug)]
pub struct Finish {
    /// The execution.
    pub id: String,
    /// The attempt that must still be running.
    pub attempt: u32,
    /// What becomes of it.
    pub change: Change,
    /// Whether the caller needs the new record (a listener, waiter,
    /// callback or binding); a compact store may skip building it.
    pub want_record: bool,
}

/// One row's answer of [`Driver::finish_many`].
#[derive(Clone, Debug, PartialEq)]
pub enum Finished {
    /// That attempt was not running any more (timed out, cancelled,
    /// rescued): nothing changed.
    Stale,
    /// Applied; the new record when it was asked for.
    Done(Option<Box<BackgroundExecution>>),
}

/// What [`Driver::cancel`] did.
#[derive(Clone, Debug, PartialEq)]
pub enum CancelOutcome {
    /// It was queued or running and is now `cancelled`.
    Cancelled(Box<BackgroundExecution>),
    /// It had already finished.
    AlreadyFinal,
    /// No execution has that id.
    NotFound,
}

/// What [`Driver::retry`] did.
#[derive(Clone, Debug, PartialEq)]
pub enum RetryOutcome {
    /// It had ended `failed`, `timeout` or `cancelled` and is `queued`
    /// again: attempts and stalls start over, the last run's output,
    /// error, binding and progress are cleared and `queuedAt` is now.
    Requeued(Box<BackgroundExecution>),
    /// It is queued, running or completed: nothing changed.
    NotRetryable(BackgroundExecutionStatus),
    /// No execution has that id.
    NotFound,
}

/// Whether a status may be retried by [`Driver::retry`].
pub fn retryable_status(s: BackgroundExecutionStatus) -> bool {
    use BackgroundExecutionStatus::*;
    matches!(s, Failed | Timeout | Cancelled)
}

/// A running attempt's reported progress, for [`Driver::progress_many`].
#[derive(Clone, Debug, PartialEq)]
pub struct Progress {
    /// The execution.
    pub id: String,
    /// The attempt that reported it: written only while it runs.
    pub attempt: u32,
    /// What it reported.
    pub value: Value,
}

/// Waiting and running executions of one tenant and callable, for
/// [`Driver::breakdown`] (gauges and per-name stats).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Tally {
    /// The tenant.
    pub tenant: String,
    /// The callable.
    pub callable: String,
    /// Queued and ready now (or once work drains, for deferred work).
    pub queued: u64,
    /// Queued but delayed (a retry's backoff, `runAt`, `delayMs`).
    pub delayed: u64,
    /// Running (on any engine of a shared store).
    pub running: u64,
}

/// What [`Driver::stage_due`] did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Staged {
    /// Delayed executions that became claimable.
    pub promoted: usize,
    /// The next due time still pending (Unix ms).
    pub next_due_ms: Option<i64>,
}

/// An execution whose lease expired, as [`Driver::rescue_expired`] left it.
#[derive(Clone, Debug, PartialEq)]
pub struct Rescued {
    /// Its record after the rescue: `queued` again, or `failed` once it
    /// stalled more than `maxStalls` times.
    pub record: Box<BackgroundExecution>,
}

/// Which gate a fire passes besides the trigger's own (DESIGN §2).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum FireGate {
    /// A stimulus: `emit`, `lifecycle`, `fire`, a webhook.
    Plain,
    /// A schedule tick: fires only if this tick (Unix ms) is later than the
    /// trigger's schedule cursor, which it then becomes, so each tick
    /// fires once even with several schedulers.
    Tick(i64),
    /// A metric report: records whether the comparison `holds` now, and
    /// fires only on a crossing (it held not before, it holds now).
    Crossing {
        /// Whether `value <op> thresholdValue` holds for this report.
        holds: bool,
    },
}

/// Builds the execution of a fire from the trigger as the driver holds it
/// inside its fire step.
pub type BuildFired<'a> = &'a (dyn Fn(&Trigger) -> NewExecution + Send + Sync);

/// A verified webhook message a fire must accept once (Standard Webhooks
/// `webhook-id`), for [`Driver::fire`].
#[derive(Clone, Copy, Debug)]
pub struct WebhookMessage<'a> {
    /// The message id.
    pub id: &'a str,
    /// Now, in Unix seconds.
    pub now_secs: i64,
    /// Until when the id is remembered (Unix seconds).
    pub expires_secs: i64,
}

/// Parameters of [`Driver::fire`].
pub struct FireParams<'a> {
    /// The trigger.
    pub trigger_id: &'a str,
    /// The fire's time (gates, `lastFiredAt`).
    pub now: Timestamp,
    /// Tick or crossing gate.
    pub gate: FireGate,
    /// The execution to insert when it fires.
    pub build: BuildFired<'a>,
    /// Whether to answer the inserted record.
    pub want_record: bool,
    /// A webhook message: refused as a replay if the trigger remembers its
    /// id, refused as [`Fire::ReplayFull`] if the trigger's replay budget
    /// is full of unexpired ids (ids are forgotten only when they expire),
    /// and remembered only when the fire goes through (a refused delivery
    /// may be sent again).
    pub webhook: Option<WebhookMessage<'a>>,
}

/// What [`Driver::fire`] did.
#[derive(Clone, Debug)]
pub enum Fire {
    /// No trigger has that id.
    Gone,
    /// The trigger's gate refused; nothing was counted.
    Blocked {
        /// The trigger as it stands (status refreshed).
        trigger: Arc<Trigger>,
        /// Why.
        why: Blocked,
    },
    /// The tick was fired already, or the metric did not cross.
    Skipped,
    /// The webhook message's id was accepted before (a replay).
    Replay,
    /// The trigger already remembers as many unexpired webhook message ids
    /// as its replay budget holds: the delivery is refused (nothing
    /// counted, its id not remembered) rather than an unexpired id
    /// forgotten early, which would let that message be replayed.
    ReplayFull {
        /// When the oldest remembered id expires (Unix seconds), making
        /// room again.
        until_secs: i64,
    },
    /// Fired: the count, arming, cursor and the execution were written
    /// together.
    Fired {
        /// The trigger after the fire.
        trigger: Arc<Trigger>,
        /// The new execution's id.
        execution_id: String,
        /// Its record, when asked for (or when it was written final).
        record: Option<Box<BackgroundExecution>>,
    },
}

/// Triggers that changed since a sequence number, for engines that keep
/// compiled indexes ([`Driver::trigger_changes`]).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TriggerChanges {
    /// The sequence number to ask from next time.
    pub seq: u64,
    /// Ids of triggers registered, changed or removed since (each once).
    pub ids: Vec<String>,
    /// False when the store no longer holds every change since the asked
    /// sequence: reload all triggers.
    pub complete: bool,
}

/// What other engines sharing a store did, as the store tells it
/// ([`Driver::signals`]; PostgreSQL: `LISTEN/NOTIFY`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Signal {
    /// Claimable work was committed: claim.
    Work,
    /// Triggers were registered, changed or removed: read the changes.
    Triggers,
    /// A watched execution reached its final record (or was bound).
    Settled(String),
    /// Signals may have been lost (the listening connection was lost and
    /// is back): claim, read trigger changes and look at every watched
    /// execution again.
    Lost,
}

/// Filter of [`Driver::list`].
#[derive(Clone, Debug, Default)]
pub struct ExecutionFilter {
    /// Only this tenant.
    pub tenant_id: Option<String>,
    /// Only this status.
    pub status: Option<BackgroundExecutionStatus>,
    /// Only this callable.
    pub callable_name: Option<String>,
    /// Only executions spawned by this trigger.
    pub trigger_id: Option<String>,
    /// At most this many.
    pub limit: Option<usize>,
    /// Newest first (by `queuedAt`, then id); oldest first by default.
    pub newest_first: bool,
    /// Only those after this execution in the listing's order (a cursor:
    /// the last id of the previous page). An id that no longer exists
    /// lists nothing.
    pub after: Option<String>,
}

impl ExecutionFilter {
    /// Whether `e` passes the filter (limit aside).
    pub fn matches(&self, e: &BackgroundExecution) -> bool {
        self.tenant_id.as_deref().is_none_or(|t| t == e.tenant_id)
            && self.status.is_none_or(|s| s == e.status)
            && self.callable_name.as_deref().is_none_or(|c| c == e.callable_name)
            && self.trigger_id.as_deref().is_none_or(|t| e.trigger_id.as_deref() == Some(t))
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

// ---------------------------------------------------------------------------
// Triggers

/// Filter of [`Driver::list_triggers`].
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

/// A stored trigger with the state its store keeps beside it, as
/// [`Driver::trigger_states`] reads it (without changing anything): what
/// the fire step would gate on, for "why didn't it fire?".
#[derive(Clone, Debug, PartialEq)]
pub struct TriggerState {
    /// The trigger as stored (its status not refreshed).
    pub trigger: Trigger,
    /// The last schedule tick taken (Unix ms), if any.
    pub cursor_ms: Option<i64>,
    /// Threshold: whether the last reported value satisfied the comparison.
    /// While it did, a report that satisfies it again is no crossing (see
    /// [`FireGate::Crossing`]); a report that does not re-arms it.
    pub armed: bool,
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

/// The [`FireGate`] of a fire step, on the trigger's schedule cursor and
/// threshold arming as the store holds them (every store applies it
/// first, inside its fire step). A tick takes the cursor if it is later
/// (whether or not the trigger's own gate then lets it fire); a metric
/// report records whether the comparison holds. Answers (whether the
/// fire goes on, whether the cursor or arming changed and must be
/// written).
pub fn pass_fire_gate(gate: FireGate, cursor_ms: &mut Option<i64>, armed: &mut bool) -> (bool, bool) {
    match gate {
        FireGate::Plain => (true, false),
        FireGate::Tick(at) => {
            if cursor_ms.is_some_and(|cur| cur >= at) {
                return (false, false);
            }
            *cursor_ms = Some(at);
            (true, true)
        }
        FireGate::Crossing { holds } => {
            let was = std::mem::replace(armed, holds);
            (holds && !was, was != holds)
        }
    }
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

/// A trigger change for [`Driver::update_trigger`]: may refuse with an
/// error, which is answered unchanged.
pub type TriggerEdit<'a> = &'a mut (dyn FnMut(&mut Trigger) -> Result<(), EngineError> + Send);

/// The store driver: every piece of state a durable store must keep goes
/// through it, named by intent and batch-first (River's `riverdriver`,
/// Oban's engines). Each operation is atomic; the engine keeps only what
/// it is running and what makes matching fast.
///
/// One conformance suite (`tests/store_conformance.rs`) runs against every
/// driver.
pub trait Driver: Send + Sync + 'static {
    /// `memory`, `sqlite` or `postgres`.
    fn name(&self) -> &'static str;

    /// Ends the store: answers what was asked before, then releases what
    /// it holds (a file and its lock, connections); calls made after it
    /// fail with `ENACT_STORE`. The memory store holds nothing to release.
    fn close(&self) -> StoreFuture<'_, ()> {
        Box::pin(std::future::ready(Ok(())))
    }

    /// Whether other engines may use the store at the same time (the
    /// PostgreSQL store): work may be queued, finished and triggers changed
    /// elsewhere, so the engine listens to [`Driver::signals`], publishes
    /// the callables it serves and polls as a fallback.
    fn shared(&self) -> bool {
        false
    }

    /// What other engines did ([`Signal`]), for a shared store; `None`
    /// for a store one engine owns. Each call is a new receiver.
    fn signals(&self) -> Option<tokio::sync::broadcast::Receiver<Signal>> {
        None
    }

    /// Publishes the callables `worker` serves, until `until` (renewed by
    /// the heartbeat); an empty list withdraws them. Only a shared store
    /// keeps them.
    fn publish<'a>(&'a self, _worker: &'a str, _callables: Vec<String>, _until: Timestamp) -> StoreFuture<'a, ()> {
        Box::pin(std::future::ready(Ok(())))
    }

    /// For each of `names`, whether a live engine serves it (published
    /// and not expired at `now`). A store one engine owns knows none.
    fn served(&self, names: Vec<String>, _now: Timestamp) -> StoreFuture<'_, Vec<bool>> {
        Box::pin(std::future::ready(Ok(vec![false; names.len()])))
    }

    /// Executions of `callables` waiting (queued, delayed included).
    fn queued_of(&self, _callables: Vec<String>) -> StoreFuture<'_, u64> {
        Box::pin(async move { Ok(self.counts().await?.queued) })
    }

    /// [`Driver::get`] for an engine that waits for the execution's end:
    /// a shared store remembers that someone waits, so that the engine
    /// finishing it signals [`Signal::Settled`].
    fn get_watched<'a>(&'a self, id: &'a str) -> StoreFuture<'a, Option<BackgroundExecution>> {
        self.get(id)
    }

    /// Makes the store ready to answer: a store that connects on first use
    /// (PostgreSQL) connects and creates or migrates its schema now, and
    /// answers `ENACT_STORE` if it cannot. The others are ready once made.
    fn ready(&self) -> StoreFuture<'_, ()> {
        Box::pin(std::future::ready(Ok(())))
    }

    // -- executions --------------------------------------------------------

    /// Inserts executions, in order; a row whose id exists is answered
    /// [`Inserted::Duplicate`] and the others are still inserted.
    fn insert_many(&self, rows: Vec<NewExecution>) -> StoreFuture<'_, Vec<Inserted>>;

    /// One execution.
    fn get<'a>(&'a self, id: &'a str) -> StoreFuture<'a, Option<BackgroundExecution>>;

    /// Executions passing `filter`, oldest first.
    fn list<'a>(&'a self, filter: &'a ExecutionFilter) -> StoreFuture<'a, Vec<BackgroundExecution>>;

    /// Claims up to `max` ready executions of the callables in
    /// `limits.callables`: highest priority first, immediate work before
    /// idle-deferred work, tenants at one priority served round-robin,
    /// FIFO within a tenant among the work that may start. A tenant at its
    /// limit is passed over; a callable at its limit passes over only that
    /// callable's work. Claimed executions become `running`, their
    /// `attempt` grows by one, `startedAt` is `now` and they are leased to
    /// `worker` until `lease_until`.
    fn claim(&self, params: ClaimParams) -> StoreFuture<'_, Vec<BackgroundExecution>>;

    /// Ends or re-queues running attempts, each a compare-and-set on its
    /// attempt; one answer per row, in order.
    fn finish_many(&self, rows: Vec<Finish>) -> StoreFuture<'_, Vec<Finished>>;

    /// Queued or running → `cancelled`.
    fn cancel<'a>(&'a self, id: &'a str, at: Timestamp) -> StoreFuture<'a, CancelOutcome>;

    /// Records the outcome of target binding of a `completed` execution;
    /// `None` when it is not (or no longer) completed and unbound.
    fn bind<'a>(&'a self, id: &'a str, result: TargetBindingResult) -> StoreFuture<'a, Option<BackgroundExecution>>;

    /// Makes delayed executions due by `now_ms` claimable (the stager).
    fn stage_due(&self, now_ms: i64) -> StoreFuture<'_, Staged>;

    /// Extends the leases of running attempts `ids` of `worker`; answers
    /// how many it extended.
    fn heartbeat<'a>(&'a self, worker: &'a str, ids: &'a [String], lease_until: Timestamp) -> StoreFuture<'a, usize>;

    /// [`Driver::heartbeat`], answering which of `ids` it extended: an
    /// attempt missing from the answer is no longer this worker's (another
    /// engine cancelled it or took it back), and the engine stops it. A
    /// store one engine owns extends them all.
    fn renew<'a>(&'a self, worker: &'a str, ids: &'a [String], lease_until: Timestamp) -> StoreFuture<'a, Vec<String>> {
        Box::pin(async move {
            self.heartbeat(worker, ids, lease_until).await?;
            Ok(ids.to_vec())
        })
    }

    /// Takes back running attempts whose lease expired before `now` (their
    /// engine died): each counts a stall and is queued again, or ends
    /// `failed` once it stalled more than `max_stalls` times. The attempt
    /// number stays used, so a late result of the lost attempt (an engine
    /// that was only cut off) can never finish the next one.
    fn rescue_expired(&self, now: Timestamp, max_stalls: u32) -> StoreFuture<'_, Vec<Rescued>>;

    /// Drops the oldest finished executions beyond `keep`; answers how many.
    fn prune(&self, keep: usize) -> StoreFuture<'_, usize>;

    /// Executions per status.
    fn counts(&self) -> StoreFuture<'_, StatusCounts>;

    /// Waiting and running executions per tenant and callable (an entry
    /// only where one of the counts is not zero). Reads what waits and
    /// runs, never the finished records.
    fn breakdown(&self) -> StoreFuture<'_, Vec<Tally>>;

    /// Stores the progress of running attempts; answers, per row, whether
    /// that attempt was still running (else nothing was written).
    fn progress_many(&self, rows: Vec<Progress>) -> StoreFuture<'_, Vec<bool>>;

    /// Queues a `failed`, `timeout` or `cancelled` execution again, as
    /// [`RetryOutcome::Requeued`] describes (BullMQ's `job.retry()`).
    fn retry<'a>(&'a self, id: &'a str, at: Timestamp) -> StoreFuture<'a, RetryOutcome>;

    // -- triggers ----------------------------------------------------------

    /// Adds a trigger; [`StoreError::Conflict`] if the id exists.
    fn insert_trigger(&self, t: Trigger) -> StoreFuture<'_, ()>;

    /// One trigger.
    fn get_trigger<'a>(&'a self, id: &'a str) -> StoreFuture<'a, Option<Trigger>>;

    /// Triggers passing `filter`, in registration order.
    fn list_triggers<'a>(&'a self, filter: &'a TriggerFilter) -> StoreFuture<'a, Vec<Trigger>>;

    /// [`Driver::list_triggers`] with each trigger's schedule cursor and
    /// threshold arming, read in one go and changing nothing (not even an
    /// `active` trigger past its `endAt`): what `explain` and
    /// `explainMetric` judge a fire by.
    fn trigger_states<'a>(&'a self, filter: &'a TriggerFilter) -> StoreFuture<'a, Vec<TriggerState>>;

    /// Replaces a trigger through `edit`, atomically; `None` when the id is
    /// unknown, `Some(Err)` when `edit` refused (nothing is written).
    fn update_trigger<'a>(&'a self, id: &'a str, edit: TriggerEdit<'a>) -> StoreFuture<'a, Option<Result<Trigger, EngineError>>>;

    /// Removes a trigger (and its schedule cursor, arming and replay ids);
    /// false when the id is unknown.
    fn remove_trigger<'a>(&'a self, id: &'a str) -> StoreFuture<'a, bool>;

    /// The fire step, one transaction: applies [`apply_gate`] and the
    /// [`FireGate`], counts the fire, records arming or cursor, remembers a
    /// webhook message's id (within the driver's per-trigger replay
    /// budget: a full budget refuses, [`Fire::ReplayFull`], and never
    /// forgets an unexpired id), and inserts the execution `build` makes — all
    /// or nothing, so concurrent fires can never both pass a `maxFires` or
    /// cooldown gate, a crash never leaves a counted fire without its
    /// execution, and a refused delivery does not burn its webhook id.
    fn fire<'a>(&'a self, params: FireParams<'a>) -> StoreFuture<'a, Fire>;

    /// Triggers changed since `since` (0: from the start).
    fn trigger_changes(&self, since: u64) -> StoreFuture<'_, TriggerChanges>;
}

/// The error of an execution that stalled (its engine stopped while it
/// ran) more than `max_stalls` times: it ends `failed` with this, so a job
/// that kills its process cannot crash-loop the service. Every driver
/// writes the same.
pub fn stalled_error(attempt: u32, stalls: u32, max_stalls: u32, now_ms: i64) -> ExecutionError {
    ExecutionError {
        category: crate::model::ErrorCategory::KernelInternal,
        message: format!(
            "interrupted: the engine running it stopped {stalls} time{} (maxStalls is {max_stalls})",
            if stalls == 1 { "" } else { "s" }
        ),
        retry_policy: Some(crate::model::ErrorRetryPolicy::no_retry(false)),
        code: Some(crate::error::ErrorCode::Stalled.as_str().into()),
        attempt,
        step_id: None,
        provider: None,
        http_status: None,
        details: Some(serde_json::json!({ "stalls": stalls, "maxStalls": max_stalls })),
        occurred_at: now_ms,
    }
}

/// The output of `fut`, which must be ready on its first poll (the memory
/// driver's always are): for callers that cannot wait, such as tests and
/// the synchronous conveniences of the engine. A pending future is dropped
/// and answered with `ENACT_STORE`.
pub fn ready_now<T>(fut: impl Future<Output = crate::error::EngineResult<T>>) -> crate::error::EngineResult<T> {
    let mut fut = std::pin::pin!(fut);
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    match fut.as_mut().poll(&mut cx) {
        std::task::Poll::Ready(v) => v,
        std::task::Poll::Pending => Err(EngineError::new(
            crate::error::ErrorCode::Store,
            "the store answers asynchronously: use the call's asynchronous form",
        )),
    }
}

/// Polls `fut` once, in place: its output if it is ready (always, for the
/// memory driver), else the future back, to be awaited elsewhere (a
/// durable driver waiting on its own thread or connection).
pub fn poll_now<F: Future + Unpin>(mut fut: F) -> Result<F::Output, F> {
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    match Pin::new(&mut fut).poll(&mut cx) {
        std::task::Poll::Ready(v) => Ok(v),
        std::task::Poll::Pending => Err(fut),
    }
}
