//! The executor: queue order, concurrency, timeouts, retries, cancellation
//! and target binding, independent of who runs the callables.
//!
//! The executor does not call callables itself. A *host* (the Node binding,
//! or a Rust runner in tests) pulls started attempts with
//! [`Executor::take`], runs them however it likes, and reports each outcome
//! with [`Executor::complete`]. Everything the host must act on — events,
//! settled records for waiters, attempts to abort, results to bind — is
//! queued as [`Notice`]s and pulled with [`Executor::drain`]. When
//! background work (a timer) produces something, the executor calls
//! [`Host::wake`] once; the host then calls `drain` and `take`.
//!
//! This pull design lets a host batch: one call can start many attempts
//! and one call can report many outcomes, which is what makes the Node
//! binding fast (see `NAPI-NOTES.md`: per-job promise round trips across
//! threads are the slow path).

use std::collections::BinaryHeap;

/// Id-keyed maps and sets: foldhash (fast, seeded per process).
type HashMap<K, V> = std::collections::HashMap<K, V, foldhash::fast::RandomState>;
type HashSet<K> = std::collections::HashSet<K, foldhash::fast::RandomState>;
use std::cmp::Reverse;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU32, Ordering};
use std::sync::Arc;

use parking_lot::Mutex;
use serde_json::Value;

use crate::clock::{millis, Clock};
use crate::error::{EngineError, EngineResult, ErrorCode};
use crate::ids;
use crate::model::{
    BackgroundExecution, BackgroundExecutionStatus as Status, ErrorCategory, ErrorRetryPolicy,
    ExecutionError, ExecutionMode, TargetBindingResult, TargetType,
};
use crate::store::{Admit, Change, ExecutionFilter, Expect, Readiness, StatusCounts, Store};
use crate::transform::apply_transform;
use crate::validate::SubmitRequest;

/// Engine-wide limits.
#[derive(Clone, Debug)]
pub struct ExecutorConfig {
    /// Attempts in flight at once, engine-wide (default 16).
    pub concurrency: usize,
    /// Attempts in flight at once per tenant (default: no limit).
    pub tenant_concurrency: Option<usize>,
}

impl Default for ExecutorConfig {
    fn default() -> Self {
        Self { concurrency: 16, tenant_concurrency: None }
    }
}

/// The host side of the executor.
pub trait Host: Send + Sync + 'static {
    /// Background work produced notices or ready attempts: call
    /// [`Executor::drain`] and [`Executor::take`] soon, on the host's own
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
    /// Attempt number, from 1; pass it back to [`Executor::complete`].
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
}

impl EventKind {
    /// Every event kind.
    pub const ALL: [EventKind; 12] = [
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
        }
    }

    /// Parses an event name.
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.name() == name)
    }

    /// Whether this is one of the executor's own lifecycle events
    /// (`execution.*`, `binding.*`), which flow back into the trigger engine.
    pub fn is_execution_event(self) -> bool {
        !matches!(self, Self::TriggerFired | Self::LoopBlocked)
    }

    /// This kind's bit in an interest mask.
    pub fn bit(self) -> u32 {
        1 << self as u8
    }

    fn of_final(status: Status) -> Option<Self> {
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
    /// Call the target handler, then report with [`Executor::binding_done`].
    Bind(Box<BindRequest>),
    /// The engine shut down: reject every remaining waiter.
    Closed,
    /// A trigger fired (`trigger.fired`).
    TriggerFired(Box<crate::model::TriggerFiredEvent>),
    /// A trigger chain was cut at `maxChainDepth` (`trigger.loop_blocked`).
    LoopBlocked(Box<crate::model::LoopBlockedEvent>),
    /// The final record of an execution with a `callbackUrl`: POST it there.
    Callback(Box<BackgroundExecution>),
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
    /// record, when asked for.
    pub record: Option<BackgroundExecution>,
}

/// Counters of [`Executor::stats`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
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
}

struct Running {
    attempt: u32,
    tenant: Arc<str>,
    callable: Arc<str>,
    /// It has a callback URL or a target binding: its final record is
    /// needed even when nobody listens or waits.
    heavy: bool,
}

#[derive(Default)]
struct Inner {
    /// Registered callables and their concurrency limits.
    callables: HashMap<String, Option<usize>>,
    targets: HashSet<TargetType>,
    running: HashMap<String, Running>,
    /// Attempts in flight per tenant and per callable.
    per_tenant: Counts,
    per_callable: Counts,
    deadlines: BinaryHeap<Reverse<(i64, String, u32)>>,
    watched: HashSet<String>,
    binding: HashSet<String>,
    outbox: Vec<Notice>,
    accepting: bool,
    claiming: bool,
    submitted: u64,
    retried: u64,
    stale: u64,
}

/// The background executor. Cheap to share behind an `Arc`.
pub struct Executor {
    inner: Mutex<Inner>,
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    host: Arc<dyn Host>,
    config: ExecutorConfig,
    /// Events JS listens to.
    interest: AtomicU32,
    /// Events the trigger engine watches (fed back as trigger events).
    feedback: AtomicU32,
    woken: AtomicBool,
    /// Unix ms the timer task sleeps until (`i64::MAX`: no timer due).
    timer_due: AtomicI64,
    timer_kick: tokio::sync::Notify,
    stopped: AtomicBool,
}

fn now_ms(clock: &dyn Clock) -> i64 {
    millis(clock.now())
}

impl Executor {
    /// A new executor over `store`. Call [`Executor::start`] inside a tokio
    /// runtime to run its timers.
    pub fn new(store: Arc<dyn Store>, clock: Arc<dyn Clock>, host: Arc<dyn Host>, config: ExecutorConfig) -> Arc<Self> {
        let config = ExecutorConfig { concurrency: config.concurrency.max(1), ..config };
        Arc::new(Self {
            inner: Mutex::new(Inner { accepting: true, claiming: true, ..Inner::default() }),
            store,
            clock,
            host,
            config,
            interest: AtomicU32::new(0),
            feedback: AtomicU32::new(0),
            woken: AtomicBool::new(false),
            timer_due: AtomicI64::new(i64::MAX),
            timer_kick: tokio::sync::Notify::new(),
            stopped: AtomicBool::new(false),
        })
    }

    /// Spawns the timer task (delayed work, retry backoff, timeouts) on the
    /// current tokio runtime. It ends after [`Executor::finish_shutdown`].
    pub fn start(self: &Arc<Self>) -> tokio::task::JoinHandle<()> {
        let me = self.clone();
        tokio::spawn(async move { me.timer_loop().await })
    }

    /// The clock the executor reads.
    pub fn clock(&self) -> &Arc<dyn Clock> {
        &self.clock
    }

    // -- registry ----------------------------------------------------------

    /// Declares a callable name; submissions naming others are refused.
    pub fn register_callable(&self, name: &str) -> EngineResult<()> {
        self.register_callable_limited(name, None)
    }

    /// Declares a callable name with at most `concurrency` attempts of it
    /// in flight at once (`None`: only the engine and tenant limits apply).
    /// Declaring a name again replaces its limit; attempts already running
    /// count against the new one.
    pub fn register_callable_limited(&self, name: &str, concurrency: Option<usize>) -> EngineResult<()> {
        if name.is_empty() {
            return Err(EngineError::invalid("name", "must not be empty"));
        }
        if concurrency == Some(0) {
            return Err(EngineError::invalid("concurrency", "must be at least 1"));
        }
        self.inner.lock().callables.insert(name.to_owned(), concurrency);
        Ok(())
    }

    /// Whether a callable is registered.
    pub fn has_callable(&self, name: &str) -> bool {
        self.inner.lock().callables.contains_key(name)
    }

    /// Declares that a handler exists for `target`.
    pub fn register_target(&self, target: TargetType) {
        self.inner.lock().targets.insert(target);
    }

    /// Sets which events are delivered as [`Notice::Event`].
    pub fn set_interest(&self, kind: EventKind, on: bool) {
        if on {
            self.interest.fetch_or(kind.bit(), Ordering::Relaxed);
        } else {
            self.interest.fetch_and(!kind.bit(), Ordering::Relaxed);
        }
    }

    /// Sets which execution events the trigger engine wants to see (a mask
    /// of [`EventKind::bit`]s); they are delivered as [`Notice::Event`] too.
    pub fn set_feedback(&self, mask: u32) {
        self.feedback.store(mask, Ordering::Relaxed);
    }

    /// Whether JS listens to `kind`.
    pub fn listens(&self, kind: EventKind) -> bool {
        self.interest.load(Ordering::Relaxed) & kind.bit() != 0
    }

    fn wants(&self, kind: EventKind) -> bool {
        (self.interest.load(Ordering::Relaxed) | self.feedback.load(Ordering::Relaxed)) & kind.bit() != 0
    }

    /// Queues a notice for the host (trigger events) without waking it;
    /// see [`Executor::wake`].
    pub fn post(&self, notice: Notice) {
        self.inner.lock().outbox.push(notice);
    }

    /// Asks the host to drain and take soon (work was queued from a thread
    /// other than the host's, e.g. by the scheduler).
    pub fn wake(&self) {
        self.wake_host();
    }

    // -- submission --------------------------------------------------------

    /// Queues an execution. With `watch`, a [`Notice::Settled`] follows when
    /// it reaches its final record.
    pub fn submit(&self, req: SubmitRequest, watch: bool) -> EngineResult<BackgroundExecution> {
        let receipt = self.submit_inner(req, watch, false, true)?;
        Ok(receipt.record.expect("kept on request"))
    }

    /// Like [`Executor::submit`], answering only the id and queue time
    /// (the record goes to the store without a copy), plus the record when
    /// `keep_record` is set.
    pub fn submit_receipt(&self, req: SubmitRequest, watch: bool, keep_record: bool) -> EngineResult<Receipt> {
        self.submit_inner(req, watch, false, keep_record)
    }

    /// Queues an execution spawned by a trigger. Unlike [`Executor::submit`],
    /// an unregistered callable does not refuse the work: the execution is
    /// written straight as `failed`, saying so, so a fire is never dropped
    /// silently.
    pub fn submit_fired(&self, req: SubmitRequest) -> EngineResult<Receipt> {
        self.submit_inner(req, false, true, false)
    }

    fn submit_inner(&self, req: SubmitRequest, watch: bool, record_unknown: bool, keep_record: bool) -> EngineResult<Receipt> {
        let now = self.clock.now();
        let ready = match req.config.mode {
            ExecutionMode::Deferred => match (req.config.run_at, req.config.delay_ms) {
                (Some(at), _) if at <= now => Readiness::Now,
                (Some(at), _) => Readiness::At(millis(at)),
                (None, Some(0)) => Readiness::Now,
                (None, Some(d)) => Readiness::At(millis(now) + d as i64),
                (None, None) => Readiness::Idle,
            },
            _ => Readiness::Now,
        };
        let mut record = BackgroundExecution {
            execution_id: req.execution_id.unwrap_or_else(|| ids::new_id("exec_")),
            tenant_id: req.tenant_id,
            callable_name: req.callable_name,
            input: req.input,
            context: req.context,
            config: req.config,
            status: Status::Queued,
            queued_at: now,
            started_at: None,
            completed_at: None,
            output: None,
            error: None,
            target_binding_applied: false,
            trigger_id: req.trigger_id,
            metadata: req.metadata,
            trigger_source: req.trigger_source,
            attempt: 0,
            binding_result: None,
            chain_depth: req.chain_depth,
        };
        let mut g = self.inner.lock();
        if !g.accepting {
            return Err(EngineError::new(ErrorCode::Shutdown, "engine is shut down: no new work is accepted"));
        }
        let mut ready = ready;
        if !g.callables.contains_key(&record.callable_name) {
            let message = format!("callableName: no callable registered as {:?}", record.callable_name);
            if !record_unknown {
                return Err(EngineError::new(ErrorCode::UnknownCallable, message));
            }
            let err = CallError { message, retryable: false, code: Some(ErrorCode::UnknownCallable.as_str().into()), details: None };
            let mut error = self.execution_error_with(ErrorCategory::ValidationError, &err, 0, record.config.retry.as_ref());
            error.retry_policy = None;
            record.status = Status::Failed;
            record.completed_at = Some(now);
            record.error = Some(Box::new(error));
            ready = Readiness::Final;
        }
        // Copies only for whoever needs the record besides the store.
        let settled = ready == Readiness::Final;
        let notice = (settled || self.wants(EventKind::Queued)).then(|| record.clone());
        let kept = keep_record.then(|| record.clone());
        let execution_id = record.execution_id.clone();
        self.store.insert(record, ready).map_err(|e| {
            if self.store.get(&execution_id).ok().flatten().is_some() {
                EngineError::invalid("executionId", format!("{execution_id:?} already exists"))
            } else {
                e.into()
            }
        })?;
        g.submitted += 1;
        if watch {
            g.watched.insert(execution_id.clone());
        }
        match notice {
            Some(rec) if settled => self.settle(&mut g, rec),
            Some(rec) => g.outbox.push(Notice::Event(EventKind::Queued, Box::new(rec))),
            None => {}
        }
        drop(g);
        if let Readiness::At(due) = ready {
            self.arm_timer(due);
        }
        Ok(Receipt { execution_id, queued_at: now, record: kept })
    }

    /// Watches an execution: returns its record if it is settled (final and
    /// bound), else arranges a [`Notice::Settled`] for it.
    pub fn watch(&self, id: &str) -> EngineResult<Option<BackgroundExecution>> {
        let mut g = self.inner.lock();
        let rec = self.store.get(id)?.ok_or_else(|| EngineError::not_found("execution", id))?;
        if rec.status.is_final() && !g.binding.contains(id) {
            return Ok(Some(rec));
        }
        if self.stopped.load(Ordering::Relaxed) {
            return Err(EngineError::new(ErrorCode::Shutdown, format!("engine shut down before execution {id:?} finished")));
        }
        g.watched.insert(id.to_owned());
        Ok(None)
    }

    /// One execution.
    pub fn get(&self, id: &str) -> EngineResult<Option<BackgroundExecution>> {
        Ok(self.store.get(id)?)
    }

    /// Executions passing `filter`.
    pub fn list(&self, filter: &ExecutionFilter) -> EngineResult<Vec<BackgroundExecution>> {
        Ok(self.store.list(filter)?)
    }

    /// Counters.
    pub fn stats(&self) -> EngineResult<Stats> {
        let g = self.inner.lock();
        Ok(Stats {
            counts: self.store.counts()?,
            in_flight: g.running.len(),
            concurrency: self.config.concurrency,
            submitted: g.submitted,
            retried: g.retried,
            stale_results: g.stale,
        })
    }

    // -- the host's pull API -----------------------------------------------

    /// Starts as many ready attempts as the concurrency limits allow.
    pub fn take(&self) -> EngineResult<Vec<Dispatch>> {
        let mut g = self.inner.lock();
        let g = &mut *g;
        if !g.claiming {
            return Ok(Vec::new());
        }
        let free = self.config.concurrency.saturating_sub(g.running.len());
        if free == 0 {
            return Ok(Vec::new());
        }
        let now = self.clock.now();
        let tenant_limit = self.config.tenant_concurrency;
        let (per_tenant, per_callable, callables) = (&mut g.per_tenant, &mut g.per_callable, &g.callables);
        // The counters' keys of each admitted attempt, in claim order.
        let mut admitted: Vec<(Arc<str>, Arc<str>)> = Vec::new();
        let mut admit = |tenant: &str, callable: &str| {
            if tenant_limit.is_some_and(|limit| in_flight(per_tenant, tenant) >= limit) {
                return Admit::TenantFull;
            }
            let callable_limit = callables.get(callable).copied().flatten();
            if callable_limit.is_some_and(|limit| in_flight(per_callable, callable) >= limit) {
                return Admit::CallableFull;
            }
            // Count it now, so that later candidates of this claim see it.
            admitted.push((count_in(per_tenant, tenant), count_in(per_callable, callable)));
            Admit::Yes
        };
        let claimed = self.store.claim(free, now, &mut admit)?;
        debug_assert_eq!(claimed.len(), admitted.len(), "a store claims exactly what was admitted");
        let mut out = Vec::with_capacity(claimed.len());
        let mut earliest = i64::MAX;
        let want_started = self.wants(EventKind::Started);
        for (rec, (tenant, callable)) in claimed.into_iter().zip(admitted) {
            let deadline = millis(now).saturating_add(rec.config.timeout_ms as i64);
            earliest = earliest.min(deadline);
            g.deadlines.push(Reverse((deadline, rec.execution_id.clone(), rec.attempt)));
            let heavy = rec.config.callback_url.is_some() || rec.config.target_binding.is_some();
            g.running.insert(rec.execution_id.clone(), Running { attempt: rec.attempt, tenant, callable, heavy });
            if want_started {
                g.outbox.push(Notice::Event(EventKind::Started, Box::new(rec.clone())));
            }
            out.push(Dispatch {
                stream: rec.config.mode == ExecutionMode::Deferred,
                execution_id: rec.execution_id,
                attempt: rec.attempt,
                tenant_id: rec.tenant_id,
                callable_name: rec.callable_name,
                input: rec.input,
                context: rec.context,
                trigger_id: rec.trigger_id,
                trigger_source: rec.trigger_source,
            });
        }
        if earliest != i64::MAX {
            self.arm_timer(earliest);
        }
        Ok(out)
    }

    /// Takes every pending notice and re-arms [`Host::wake`].
    pub fn drain(&self) -> Vec<Notice> {
        self.woken.store(false, Ordering::SeqCst);
        std::mem::take(&mut self.inner.lock().outbox)
    }

    /// Whether notices are waiting.
    pub fn has_notices(&self) -> bool {
        !self.inner.lock().outbox.is_empty()
    }

    /// Attempts in flight.
    pub fn in_flight(&self) -> usize {
        self.inner.lock().running.len()
    }

    /// Deadlines tracked for timeouts (live and not yet pruned); for tests
    /// and diagnostics.
    pub fn pending_deadlines(&self) -> usize {
        self.inner.lock().deadlines.len()
    }

    /// Attempts in flight plus bindings awaiting their handler: what
    /// shutdown waits for.
    pub fn busy(&self) -> usize {
        let g = self.inner.lock();
        g.running.len() + g.binding.len()
    }

    /// Reports how an attempt ended. A result for an attempt that is no
    /// longer running (timed out, cancelled) is ignored and counted.
    pub fn complete(&self, execution_id: &str, attempt: u32, outcome: Outcome) -> EngineResult<()> {
        let mut g = self.inner.lock();
        let heavy = g.running.get(execution_id).is_none_or(|r| r.heavy);
        if !self.release_slot(&mut g, execution_id, attempt) {
            g.stale += 1;
            return Ok(());
        }
        match outcome {
            Outcome::Completed(output) => self.finish_completed(&mut g, execution_id, attempt, output, heavy),
            Outcome::Failed(err) => {
                let error = self.execution_error(ErrorCategory::ToolError, &err, attempt, execution_id)?;
                self.fail_attempt(&mut g, execution_id, attempt, error, err.retryable, Status::Failed)
            }
        }
    }

    /// Reports the outcome of a [`Notice::Bind`]: `Ok` when the handler
    /// accepted the value, `Err(message)` when it threw.
    pub fn binding_done(&self, execution_id: &str, result: Result<(), String>) -> EngineResult<()> {
        let mut g = self.inner.lock();
        if !g.binding.remove(execution_id) {
            return Ok(());
        }
        let Some(rec) = self.store.get(execution_id)? else { return Ok(()) };
        let binding = rec.config.target_binding.clone().expect("binding requested for a bound execution");
        let value = match &result {
            Ok(()) => transformed(&rec).ok(),
            Err(_) => None,
        };
        self.record_binding(&mut g, execution_id, &binding, value, result.err())
    }

    /// Cancels a queued or running execution. `Ok(false)` when it had
    /// already finished.
    pub fn cancel(&self, execution_id: &str) -> EngineResult<bool> {
        let mut g = self.inner.lock();
        let at = self.clock.now();
        match self.store.transition(execution_id, Expect::Active, Change::Cancel { at })? {
            Some(rec) => {
                if let Some(run) = g.running.get(execution_id) {
                    let attempt = run.attempt;
                    self.release_slot(&mut g, execution_id, attempt);
                    g.outbox.push(Notice::Abort { execution_id: execution_id.to_owned(), attempt, reason: AbortReason::Cancel });
                }
                self.settle(&mut g, rec);
                Ok(true)
            }
            None if self.store.get(execution_id)?.is_some() => Ok(false),
            None => Err(EngineError::not_found("execution", execution_id)),
        }
    }

    // -- shutdown ----------------------------------------------------------

    /// Stops accepting and starting work. Running attempts go on.
    pub fn begin_shutdown(&self) {
        let mut g = self.inner.lock();
        g.accepting = false;
        g.claiming = false;
    }

    /// Ends shutdown: running attempts are aborted and released back to the
    /// queue (they did not finish, so a durable store runs them again),
    /// remaining waiters are rejected ([`Notice::Closed`]) and the timer
    /// task ends. Idempotent.
    pub fn finish_shutdown(&self) -> EngineResult<()> {
        let mut g = self.inner.lock();
        g.accepting = false;
        g.claiming = false;
        let running: Vec<(String, u32)> = g.running.iter().map(|(id, r)| (id.clone(), r.attempt)).collect();
        for (id, attempt) in running {
            self.release_slot(&mut g, &id, attempt);
            self.store.transition(&id, Expect::Running(attempt), Change::Release)?;
            g.outbox.push(Notice::Abort { execution_id: id, attempt, reason: AbortReason::Shutdown });
        }
        g.deadlines.clear();
        g.watched.clear();
        if !self.stopped.swap(true, Ordering::SeqCst) {
            g.outbox.push(Notice::Closed);
        }
        drop(g);
        self.timer_kick.notify_one();
        Ok(())
    }

    /// Whether [`Executor::finish_shutdown`] ran.
    pub fn is_stopped(&self) -> bool {
        self.stopped.load(Ordering::SeqCst)
    }

    // -- internals ---------------------------------------------------------

    /// Frees the concurrency slot of a running attempt; false if that
    /// attempt is not running.
    fn release_slot(&self, g: &mut Inner, id: &str, attempt: u32) -> bool {
        if !is_live(&g.running, id, attempt) {
            return false;
        }
        let r = g.running.remove(id).expect("present");
        uncount_in(&mut g.per_tenant, &r.tenant);
        uncount_in(&mut g.per_callable, &r.callable);
        // Finished attempts leave their deadline behind (a heap has no
        // cheap removal); drop the dead ones once they dominate, so a
        // long timeout under sustained load cannot grow the heap
        // without bound. Amortized O(1) per attempt.
        if g.deadlines.len() > 4 * g.running.len() + 1024 {
            let running = &g.running;
            g.deadlines.retain(|Reverse((_, id, attempt))| is_live(running, id, *attempt));
        }
        true
    }

    fn execution_error(&self, category: ErrorCategory, err: &CallError, attempt: u32, id: &str) -> EngineResult<ExecutionError> {
        let retry = self.store.get(id)?.and_then(|r| r.config.retry);
        Ok(self.execution_error_with(category, err, attempt, retry.as_ref()))
    }

    fn execution_error_with(&self, category: ErrorCategory, err: &CallError, attempt: u32, retry: Option<&crate::model::RetryConfig>) -> ExecutionError {
        ExecutionError {
            category,
            message: err.message.clone(),
            retry_policy: Some(match retry {
                Some(r) => ErrorRetryPolicy {
                    backoff_strategy: if r.backoff_multiplier == 1.0 { "constant" } else { "exponential" }.into(),
                    base_delay: r.backoff_ms,
                    max_delay: backoff_ms(r, r.max_attempts.saturating_sub(1).max(1)),
                    max_retries: r.max_attempts.saturating_sub(1),
                    requires_idempotency_key: false,
                    retryable: err.retryable,
                },
                None => ErrorRetryPolicy {
                    backoff_strategy: "constant".into(),
                    base_delay: 0,
                    max_delay: 0,
                    max_retries: 0,
                    requires_idempotency_key: false,
                    retryable: err.retryable,
                },
            }),
            code: err.code.clone(),
            attempt,
            step_id: None,
            provider: None,
            http_status: None,
            details: err.details.clone(),
            occurred_at: now_ms(&*self.clock),
        }
    }

    fn finish_completed(&self, g: &mut Inner, id: &str, attempt: u32, output: Value, heavy: bool) -> EngineResult<()> {
        let at = self.clock.now();
        let change = Change::Finish { status: Status::Completed, output: Some(output), error: None, at };
        if !heavy && !g.watched.contains(id) && !self.wants(EventKind::Completed) {
            // Nobody needs the record: no listener, waiter, callback or binding.
            self.store.transition_quiet(id, Expect::Running(attempt), change)?;
            return Ok(());
        }
        let Some(rec) = self.store.transition(id, Expect::Running(attempt), change)? else { return Ok(()) };
        let Some(binding) = rec.config.target_binding.clone() else {
            self.settle(g, rec);
            return Ok(());
        };
        match transformed(&rec) {
            Err(e) => self.record_binding(g, id, &binding, None, Some(e)),
            Ok(_) if !g.targets.contains(&binding.target_type) => {
                let why = format!("no target handler registered for {:?}", binding.target_type.as_str());
                self.record_binding(g, id, &binding, None, Some(why))
            }
            Ok(value) => {
                g.binding.insert(id.to_owned());
                g.outbox.push(Notice::Bind(Box::new(BindRequest { target_type: binding.target_type, value, record: rec })));
                Ok(())
            }
        }
    }

    fn record_binding(
        &self,
        g: &mut Inner,
        id: &str,
        binding: &crate::model::TargetBindingConfig,
        value: Option<String>,
        error: Option<String>,
    ) -> EngineResult<()> {
        let result = TargetBindingResult {
            target_type: binding.target_type,
            target_path: binding.target_path.clone(),
            success: error.is_none(),
            applied_value: value,
            error,
            applied_at: self.clock.now(),
        };
        let kind = if result.success { EventKind::BindingApplied } else { EventKind::BindingFailed };
        let Some(rec) = self.store.transition(id, Expect::Completed, Change::Bound(result))? else { return Ok(()) };
        if self.wants(kind) {
            g.outbox.push(Notice::Event(kind, Box::new(rec.clone())));
        }
        self.settle(g, rec);
        Ok(())
    }

    fn fail_attempt(&self, g: &mut Inner, id: &str, attempt: u32, error: ExecutionError, retryable: bool, final_status: Status) -> EngineResult<()> {
        let retry = self.store.get(id)?.and_then(|r| r.config.retry);
        if let Some(r) = retry.filter(|r| retryable && attempt < r.max_attempts) {
            let delay = jittered(backoff_ms(&r, attempt));
            let due_ms = now_ms(&*self.clock).saturating_add(delay as i64);
            if let Some(rec) = self.store.transition(id, Expect::Running(attempt), Change::Retry { error, due_ms })? {
                g.retried += 1;
                if self.wants(EventKind::Retrying) {
                    g.outbox.push(Notice::Event(EventKind::Retrying, Box::new(rec)));
                }
                self.arm_timer(due_ms);
            }
            return Ok(());
        }
        let change = Change::Finish { status: final_status, output: None, error: Some(error), at: self.clock.now() };
        if let Some(rec) = self.store.transition(id, Expect::Running(attempt), change)? {
            self.settle(g, rec);
        }
        Ok(())
    }

    /// The record is final (and bound): tell listeners and waiters.
    fn settle(&self, g: &mut Inner, rec: BackgroundExecution) {
        let kind = EventKind::of_final(rec.status).expect("settle of a final record");
        if rec.config.callback_url.is_some() {
            g.outbox.push(Notice::Callback(Box::new(rec.clone())));
        }
        let watched = g.watched.remove(&rec.execution_id);
        match (self.wants(kind), watched) {
            (true, true) => {
                g.outbox.push(Notice::Event(kind, Box::new(rec.clone())));
                g.outbox.push(Notice::Settled(Box::new(rec)));
            }
            (true, false) => g.outbox.push(Notice::Event(kind, Box::new(rec))),
            (false, true) => g.outbox.push(Notice::Settled(Box::new(rec))),
            (false, false) => {}
        }
    }

    /// Makes sure the timer task wakes by `due_ms`. While the task is
    /// scanning (`timer_due == i64::MIN`) the scan may already have read
    /// past this work (a retry scheduled by a timeout in that very scan, or
    /// a submit racing it from another thread), so it is kicked to scan
    /// again rather than trusted to have seen it.
    fn arm_timer(&self, due_ms: i64) {
        let prev = self.timer_due.fetch_min(due_ms, Ordering::SeqCst);
        if due_ms < prev || prev == i64::MIN {
            self.timer_kick.notify_one();
        }
    }

    /// One pass of timed work: promote due delayed executions, time out
    /// overdue attempts. Returns (whether the host has something to do,
    /// next due time).
    fn tick(&self) -> EngineResult<(bool, i64)> {
        let now = now_ms(&*self.clock);
        let (promoted, next_delayed) = self.store.promote_due(now)?;
        let mut g = self.inner.lock();
        let mut expired = Vec::new();
        while let Some(Reverse((deadline, _, _))) = g.deadlines.peek() {
            if *deadline > now {
                break;
            }
            let Reverse((_, id, attempt)) = g.deadlines.pop().expect("peeked");
            if is_live(&g.running, &id, attempt) {
                expired.push((id, attempt));
            }
        }
        let timed_out = !expired.is_empty();
        for (id, attempt) in expired {
            self.release_slot(&mut g, &id, attempt);
            g.outbox.push(Notice::Abort { execution_id: id.clone(), attempt, reason: AbortReason::Timeout });
            let timeout_ms = self.store.get(&id)?.map(|r| r.config.timeout_ms).unwrap_or(0);
            let err = CallError::new(format!("timed out after {timeout_ms} ms"));
            let error = self.execution_error(ErrorCategory::Timeout, &err, attempt, &id)?;
            self.fail_attempt(&mut g, &id, attempt, error, true, Status::Timeout)?;
        }
        let next_deadline = g.deadlines.peek().map(|Reverse((d, _, _))| *d).unwrap_or(i64::MAX);
        let pending = !g.outbox.is_empty() || promoted > 0 || timed_out;
        Ok((pending, next_deadline.min(next_delayed.unwrap_or(i64::MAX))))
    }

    fn wake_host(&self) {
        if !self.woken.swap(true, Ordering::SeqCst) {
            self.host.wake();
        }
    }

    async fn timer_loop(self: Arc<Self>) {
        loop {
            if self.stopped.load(Ordering::SeqCst) {
                return;
            }
            // Publish "awake" before scanning so that work armed during the
            // scan is not missed.
            self.timer_due.store(i64::MIN, Ordering::SeqCst);
            let next = match self.tick() {
                Ok((pending, next)) => {
                    if pending {
                        self.wake_host();
                    }
                    next
                }
                Err(_) => now_ms(&*self.clock) + 1000, // store trouble: retry in a second
            };
            self.timer_due.store(next, Ordering::SeqCst);
            let sleep = if next == i64::MAX {
                std::time::Duration::from_secs(3600)
            } else {
                crate::clock::until(self.clock.now(), chrono::DateTime::from_timestamp_millis(next).unwrap_or_default())
            };
            tokio::select! {
                _ = tokio::time::sleep(sleep) => {}
                _ = self.timer_kick.notified() => {}
            }
        }
    }
}

/// Attempts in flight per tenant or per callable (a `Cell`, so that one
/// lookup both counts and hands back the shared key).
type Counts = HashMap<Arc<str>, std::cell::Cell<usize>>;

fn in_flight(counts: &Counts, key: &str) -> usize {
    counts.get(key).map_or(0, |n| n.get())
}

/// One more attempt in flight for `key`; its shared key.
fn count_in(counts: &mut Counts, key: &str) -> Arc<str> {
    if let Some((k, n)) = counts.get_key_value(key) {
        n.set(n.get() + 1);
        return k.clone();
    }
    let k: Arc<str> = Arc::from(key);
    counts.insert(k.clone(), std::cell::Cell::new(1));
    k
}

/// One attempt fewer in flight for `key`; the entry goes at zero.
fn uncount_in(counts: &mut Counts, key: &str) {
    if let Some(n) = counts.get(key) {
        n.set(n.get() - 1);
        if n.get() == 0 {
            counts.remove(key);
        }
    }
}

/// Whether `attempt` of `id` is the one in flight: anything else (a late
/// result, a stale deadline) belongs to an attempt that already ended.
fn is_live(running: &HashMap<String, Running>, id: &str, attempt: u32) -> bool {
    running.get(id).is_some_and(|r| r.attempt == attempt)
}

/// `backoffMs * backoffMultiplier^(attempt-1)`, capped at one day.
pub fn backoff_ms(r: &crate::model::RetryConfig, attempt: u32) -> u64 {
    let exp = attempt.saturating_sub(1).min(64) as i32;
    let ms = r.backoff_ms as f64 * r.backoff_multiplier.powi(exp);
    ms.min(86_400_000.0) as u64
}

/// ±20 % jitter so that retries of a burst do not stampede.
fn jittered(ms: u64) -> u64 {
    if ms == 0 {
        return 0;
    }
    let f = 0.8 + fastrand::f64() * 0.4;
    (ms as f64 * f).round() as u64
}

/// The value a completed execution binds: its output as text, transformed.
fn transformed(rec: &BackgroundExecution) -> Result<String, String> {
    let b = rec.config.target_binding.as_ref().ok_or("no target binding")?;
    let text = match &rec.output {
        Some(Value::String(s)) => s.clone(),
        Some(v) => v.to_string(),
        None => String::new(),
    };
    apply_transform(&text, b.transform, b.max_length, b.json_path.as_deref()).map_err(|e| e.0)
}
