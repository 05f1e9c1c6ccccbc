//! The executor: queue order, concurrency, timeouts, retries, cancellation
//! and target binding, independent of who runs the callables and of which
//! store holds the queue.
//!
//! The executor does not call callables itself. A *host* (the Node binding,
//! or a Rust runner in tests) pulls started attempts with
//! [`Executor::take`], runs them however it likes, and reports outcomes in
//! batches with [`Executor::complete_many`]. Everything the host must act
//! on — events, settled records for waiters, attempts to abort, results to
//! bind, answers that came later — is queued as [`Notice`]s and pulled with
//! [`Executor::drain`]. When background work produced something, the
//! executor calls [`Host::wake`] once; the host then calls `drain` and
//! `take`.
//!
//! Every store operation goes through the [`Driver`] seam as a future. The
//! executor polls it once in place: the memory driver's futures are ready
//! then, so the memory engine runs with no task and no thread hop. A
//! durable driver's future is pending then (its I/O runs on its own
//! threads), and the executor finishes the work on its tokio runtime and
//! wakes the host: no store I/O ever waits on the host's thread. Claims
//! land in a buffer that `take` empties; completions go to the store as one
//! `finish_many` per batch.
//!
//! Background services (see `services.rs`): the timer (stager and
//! timeouts), and with [`ExecutorConfig::maintenance`] the heartbeat that
//! renews leases, the rescuer that takes back attempts whose engine died
//! and the pruner that bounds the finished executions a store keeps.

mod protocol;
mod services;

pub use protocol::*;
pub use services::PRUNE_EVERY;

use std::collections::{BTreeMap, BinaryHeap};
use std::future::Future;

/// Id-keyed maps and sets: foldhash (fast, seeded per process).
type HashMap<K, V> = std::collections::HashMap<K, V, foldhash::fast::RandomState>;
type HashSet<K> = std::collections::HashSet<K, foldhash::fast::RandomState>;
use std::cmp::Reverse;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};

use parking_lot::Mutex;
use serde_json::Value;

use crate::clock::{millis, Clock};
use crate::error::{EngineError, EngineResult, ErrorCode};
use crate::ids;
use crate::model::{
    BackgroundExecution, BackgroundExecutionStatus as Status, ErrorCategory, ErrorRetryPolicy, ExecutionError, ExecutionMode,
    RetryConfig, TargetBindingConfig, TargetBindingResult, TargetType,
};
use crate::store::{
    poll_now, ready_now, CancelOutcome, Change, ClaimParams, Driver, ExecutionFilter, Finish, Finished, Inserted, Limits, NewExecution,
    Progress, Readiness, RetryOutcome,
};
use crate::metrics::{elapsed_ms, End, Gauges, Meter, Metrics, MetricsConfig};
use crate::transform::apply_transform;
use crate::validate::SubmitRequest;

/// Engine-wide limits and services.
#[derive(Clone, Debug)]
pub struct ExecutorConfig {
    /// Attempts in flight at once, engine-wide (default 16).
    pub concurrency: usize,
    /// Attempts in flight at once per tenant (default: no limit).
    pub tenant_concurrency: Option<usize>,
    /// How long a claimed attempt is leased to this engine (default
    /// 30000 ms); the heartbeat renews what runs here.
    pub lease_ms: u64,
    /// Interruptions an execution survives; past them it ends `failed`
    /// (default 1).
    pub max_stalls: u32,
    /// Run the heartbeat and rescuer services: for a store that outlives
    /// the process or is shared with other engines. The memory store needs
    /// neither.
    pub maintenance: bool,
    /// With [`ExecutorConfig::maintenance`]: the pruner keeps at most this
    /// many finished executions in the store (`None`: it does not run; the
    /// memory store bounds itself as it goes).
    pub keep_finished: Option<usize>,
    /// What the metrics count.
    pub metrics: MetricsConfig,
}

impl Default for ExecutorConfig {
    fn default() -> Self {
        Self {
            concurrency: 16,
            tenant_concurrency: None,
            lease_ms: 30_000,
            max_stalls: 1,
            maintenance: false,
            keep_finished: None,
            metrics: MetricsConfig::default(),
        }
    }
}

/// Whether a submitter waits for an execution's final record.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Watch {
    /// A [`Notice::Settled`] follows when it reaches its final record.
    Settled,
    /// Nothing follows.
    No,
}

/// A submission and what its caller wants back.
#[derive(Clone, Debug)]
pub struct Submission {
    /// The validated request.
    pub request: SubmitRequest,
    /// Deliver a [`Notice::Settled`] when it reaches its final record.
    pub watch: bool,
    /// Answer the queued record in the [`Receipt`].
    pub keep_record: bool,
}

/// An attempt in flight here, with what its end needs to know (so that no
/// end re-reads the record).
struct Running {
    attempt: u32,
    /// It has a callback URL or a target binding: its final record is
    /// needed even when nobody listens or waits.
    heavy: bool,
    retry: Option<RetryConfig>,
    timeout_ms: u64,
    /// Where its end is counted, and when it started, with metrics on.
    meter: Option<(Meter, crate::model::Timestamp)>,
}

/// A result handed to a target handler, until it reports.
struct PendingBind {
    config: TargetBindingConfig,
    value: String,
}

/// What becomes of a running attempt that ended.
#[derive(Clone, Copy)]
enum RowKind {
    Completed,
    Retry(i64),
    Final,
}

/// The executor-side context of one `finish_many` row.
struct Row {
    id: String,
    kind: RowKind,
    /// The attempt's metrics, counted once the store applied the end (a
    /// stale end — cancelled or taken back meanwhile — counts nothing).
    meter: Option<Box<Metered>>,
}

/// An attempt's end to count: where, how long it ran, how it ended.
struct Metered {
    meter: Meter,
    run_ms: f64,
    end: End,
}

impl Row {
    /// How the attempt ended, for the metrics; `failed` is the final
    /// status of a failure that is not retried.
    fn end(&self, failed: Status) -> End {
        match (self.kind, failed) {
            (RowKind::Completed, _) => End::Completed,
            (RowKind::Retry(_), _) => End::Retry,
            (RowKind::Final, Status::Timeout) => End::Timeout,
            (RowKind::Final, Status::Cancelled) => End::Cancelled,
            (RowKind::Final, _) => End::Failed,
        }
    }
}

/// A submission whose id the store found taken, for [`Executor::existing`].
struct Taken {
    /// Its place in the batch's answers.
    index: usize,
    execution_id: String,
    /// The submitter's tenant.
    tenant_id: String,
    watch: bool,
}

/// Store work a batch of ends left to do: bindings to record, and records
/// to fetch for waiters that came while the batch was in flight.
#[derive(Default)]
struct FollowUp {
    binds: Vec<(String, TargetBindingResult)>,
    refetch: Vec<String>,
    /// Watched executions whose attempt here was stale (cancelled or taken
    /// back on another engine): their waiters settle from the store.
    stale: Vec<String>,
}

#[derive(Default)]
struct Inner {
    /// Callables this engine runs (with their limits) and the tenant limit.
    limits: Arc<Limits>,
    targets: HashSet<TargetType>,
    running: HashMap<String, Running>,
    /// Slots promised to claims still in flight.
    reserved: usize,
    /// Claimed attempts not yet taken by the host.
    ready: Vec<Dispatch>,
    deadlines: BinaryHeap<Reverse<(i64, String, u32)>>,
    watched: HashSet<String>,
    binding: HashMap<String, PendingBind>,
    outbox: Vec<Notice>,
    accepting: bool,
    claiming: bool,
    submitted: u64,
    retried: u64,
    stale: u64,
    /// No claim before this Unix ms: the last one failed.
    claim_paused_until: i64,
    /// The last claim found less than it asked for, and nothing that may
    /// have made work claimable happened since (see [`Executor::kick`]):
    /// no claim until something does, so an idle engine does not claim in
    /// a loop.
    drained: bool,
    /// Counts [`Executor::kick`]s: a claim that was under way across one
    /// does not mark the queue drained.
    kicks: u64,
    /// Over a shared store: a batch of ends is in flight, and the ends
    /// that came since, sent when it lands.
    finishing: bool,
    finish_queue: Vec<(Finish, Row)>,
    /// Executions waiting (queued or delayed), as far as this engine has
    /// seen them go in and out: what keeps the host alive, without asking
    /// the store. Signed and never clamped: a claim on the host's thread
    /// may book an execution before the fire that inserted it on a timer
    /// thread books it, so the count may dip below zero for a moment and
    /// must still add up afterwards.
    waiting: i64,
}

/// The background executor. Cheap to share behind an `Arc`.
pub struct Executor {
    inner: Mutex<Inner>,
    driver: Arc<dyn Driver>,
    clock: Arc<dyn Clock>,
    host: Arc<dyn Host>,
    config: ExecutorConfig,
    /// This engine's id: the worker its claims are leased to.
    worker: Arc<str>,
    /// Events JS listens to.
    interest: AtomicU32,
    /// Events the trigger engine watches (fed back as trigger events).
    feedback: AtomicU32,
    woken: AtomicBool,
    /// Unix ms the timer task sleeps until (`i64::MAX`: no timer due).
    timer_due: AtomicI64,
    timer_kick: tokio::sync::Notify,
    /// Wakes the services to stop.
    stop: tokio::sync::Notify,
    stopped: AtomicBool,
    next_ticket: AtomicU64,
    /// Store calls that did not finish in place and still run.
    store_calls: std::sync::atomic::AtomicUsize,
    /// Where store work that did not finish in place goes on.
    runtime: OnceLock<tokio::runtime::Handle>,
    /// The store is shared with other engines ([`Driver::shared`]).
    shared: bool,
    /// Over a shared store: executions of the callables this engine runs
    /// that wait in the store, as last counted (refreshed by the timer).
    cluster_waiting: AtomicI64,
    /// Over a shared store: the store was opened ([`Executor::open_store`]);
    /// the timer touches it only then.
    opened: AtomicBool,
    /// Over a shared store: this engine published its callables.
    published: AtomicBool,
    /// One publication at a time, each of the list as it then stands, so
    /// that an older list never lands after a newer one.
    publishing: tokio::sync::Mutex<()>,
    /// When the timer last read the watched executions again (Unix ms).
    last_recheck: AtomicI64,
    /// What this engine did, counted.
    metrics: Metrics,
}

/// How long claims pause after the store failed one.
const CLAIM_BACKOFF: std::time::Duration = std::time::Duration::from_secs(1);

fn now_ms(clock: &dyn Clock) -> i64 {
    millis(clock.now())
}

/// Polls a future once: its output, or the future back.
fn poll_boxed<T>(fut: impl Future<Output = T> + Send + 'static) -> Result<T, std::pin::Pin<Box<dyn Future<Output = T> + Send>>> {
    poll_now(Box::pin(fut) as std::pin::Pin<Box<dyn Future<Output = T> + Send>>)
}

impl Executor {
    /// A new executor over `driver`. Call [`Executor::start`] inside a
    /// tokio runtime to run its services.
    pub fn new(driver: Arc<dyn Driver>, clock: Arc<dyn Clock>, host: Arc<dyn Host>, config: ExecutorConfig) -> Arc<Self> {
        let config = ExecutorConfig { concurrency: config.concurrency.max(1), lease_ms: config.lease_ms.max(1), ..config };
        let limits = Limits { tenant: config.tenant_concurrency, callables: Default::default() };
        let driver_shared = driver.shared();
        Arc::new(Self {
            inner: Mutex::new(Inner { accepting: true, claiming: true, limits: Arc::new(limits), ..Inner::default() }),
            driver,
            clock,
            host,
            worker: ids::new_id("engine_").into(),
            interest: AtomicU32::new(0),
            feedback: AtomicU32::new(0),
            woken: AtomicBool::new(false),
            timer_due: AtomicI64::new(i64::MAX),
            timer_kick: tokio::sync::Notify::new(),
            stop: tokio::sync::Notify::new(),
            stopped: AtomicBool::new(false),
            next_ticket: AtomicU64::new(0),
            store_calls: std::sync::atomic::AtomicUsize::new(0),
            runtime: OnceLock::new(),
            shared: driver_shared,
            cluster_waiting: AtomicI64::new(0),
            opened: AtomicBool::new(!driver_shared),
            published: AtomicBool::new(false),
            publishing: tokio::sync::Mutex::new(()),
            last_recheck: AtomicI64::new(0),
            metrics: Metrics::new(config.metrics),
            config,
        })
    }

    /// Spawns the services on the current tokio runtime (which also
    /// finishes store work that a driver answers later): the timer
    /// (delayed work, retry backoff, timeouts), and with
    /// [`ExecutorConfig::maintenance`] the heartbeat and the rescuer. They
    /// end after [`Executor::finish_shutdown`]; the handle is the timer's.
    ///
    /// With a manual clock ([`Clock::is_manual`]) the timer does not run:
    /// nothing comes due on its own, and the host calls
    /// [`Executor::run_due_now`] after each move of the clock (the handle
    /// is then of a task that ends at once).
    pub fn start(self: &Arc<Self>) -> tokio::task::JoinHandle<()> {
        let _ = self.runtime.set(tokio::runtime::Handle::current());
        if let Some(rx) = self.driver.signals() {
            tokio::spawn(self.clone().signal_loop(rx));
        }
        if self.config.maintenance {
            tokio::spawn(self.clone().heartbeat_loop());
            tokio::spawn(self.clone().rescuer_loop());
            if let Some(keep) = self.config.keep_finished {
                tokio::spawn(self.clone().pruner_loop(keep));
            }
        }
        if self.clock.is_manual() {
            return tokio::spawn(async {});
        }
        tokio::spawn(self.clone().timer_loop())
    }

    /// The clock the executor reads.
    pub fn clock(&self) -> &Arc<dyn Clock> {
        &self.clock
    }

    /// The store driver.
    pub fn driver(&self) -> &Arc<dyn Driver> {
        &self.driver
    }

    /// This engine's worker id (what its leases name).
    pub fn worker(&self) -> &str {
        &self.worker
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
        let mut g = self.inner.lock();
        let mut limits = (*g.limits).clone();
        limits.callables.insert(name.to_owned(), concurrency);
        g.limits = Arc::new(limits);
        Self::kick(&mut g);
        Ok(())
    }

    /// Whether a callable is registered.
    pub fn has_callable(&self, name: &str) -> bool {
        self.inner.lock().limits.callables.contains_key(name)
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

    /// Reports a failure of background work as a [`Notice::Diagnostic`].
    pub fn diagnose(&self, source: &'static str, error: EngineError) {
        self.post(Notice::Diagnostic(Box::new(Diagnostic { source, error })));
    }

    /// Asks the host to drain and take soon (work was queued from a thread
    /// other than the host's, e.g. by the scheduler).
    pub fn wake(&self) {
        self.wake_host();
    }

    // -- running store work ------------------------------------------------

    /// Goes on with `fut` on the runtime: it was pending when polled in
    /// place (a durable driver). The host is woken when it is done.
    fn spawn_rest(self: &Arc<Self>, fut: std::pin::Pin<Box<dyn Future<Output = ()> + Send>>) {
        let handle = tokio::runtime::Handle::try_current().ok().or_else(|| self.runtime.get().cloned());
        match handle {
            Some(h) => {
                let me = self.clone();
                self.store_calls.fetch_add(1, Ordering::SeqCst);
                h.spawn(async move {
                    fut.await;
                    // Counted down before the wake: a host that saw the
                    // count above zero is woken after it dropped.
                    me.store_calls.fetch_sub(1, Ordering::SeqCst);
                    me.wake_host();
                });
            }
            None => self.diagnose(
                "store",
                EngineError::new(ErrorCode::Internal, "a store answered later, but the executor was never started on a runtime"),
            ),
        }
    }

    /// Store calls still running off the host's thread (a durable store's
    /// claims, inserts, completions, answers to come): the host wakes
    /// when each ends. Always 0 over the memory store. A host stepping a
    /// manual clock waits for it to reach 0 so that each step's work has
    /// landed before the next.
    pub fn store_calls(&self) -> usize {
        self.store_calls.load(Ordering::SeqCst)
    }

    /// Runs store work in place when the store answers at once, else on the
    /// runtime; an error that comes later becomes a diagnostic of `source`.
    pub fn run(self: &Arc<Self>, source: &'static str, fut: impl Future<Output = EngineResult<()>> + Send + 'static) -> EngineResult<()> {
        match poll_boxed(fut) {
            Ok(r) => r,
            Err(rest) => {
                let me = self.clone();
                self.spawn_rest(Box::pin(async move {
                    if let Err(e) = rest.await {
                        me.diagnose(source, e);
                    }
                }));
                Ok(())
            }
        }
    }

    /// The answer of `fut` now if the store answers at once, else a ticket
    /// whose [`Notice::Answer`] carries the answer as JSON later.
    pub fn answer<T>(self: &Arc<Self>, fut: impl Future<Output = EngineResult<T>> + Send + 'static) -> Answer<EngineResult<T>>
    where
        T: serde::Serialize + Send + 'static,
    {
        match poll_boxed(fut) {
            Ok(r) => Answer::Now(r),
            Err(rest) => {
                let ticket = self.next_ticket.fetch_add(1, Ordering::Relaxed) + 1;
                let me = self.clone();
                self.spawn_rest(Box::pin(async move {
                    let result = rest.await.and_then(|v| serde_json::to_value(v).map_err(|e| EngineError::new(ErrorCode::Internal, e.to_string())));
                    me.post(Notice::Answer { ticket, result });
                }));
                Answer::Later(ticket)
            }
        }
    }

    // -- submission --------------------------------------------------------

    /// Queues an execution (the store must answer at once) and answers its
    /// queued record; with [`Watch::Settled`] a [`Notice::Settled`] follows
    /// when it reaches its final record. A request naming the id of an
    /// existing execution of its tenant answers that execution's current
    /// record instead (see [`Executor::submit_many`]); watched, a
    /// [`Notice::Settled`] follows unless that record is already settled.
    pub fn submit(self: &Arc<Self>, request: SubmitRequest, watch: Watch) -> EngineResult<BackgroundExecution> {
        let submission = Submission { request, watch: watch == Watch::Settled, keep_record: true };
        let fut = self.clone().submit_many(vec![submission]);
        let receipt = ready_now(async move { fut.await.pop().expect("one answer per submission") })?;
        Ok(*receipt.record.expect("kept on request"))
    }

    /// Queues a batch of executions with one store call (group commit on a
    /// durable store); one answer per submission, in order. A refused
    /// submission (unknown callable, shutdown) does not hold up the others.
    ///
    /// Idempotent ids: a submission whose `executionId` is taken by an
    /// execution of the same tenant inserts nothing and answers that
    /// execution ([`Receipt::existing`]), even when it asked for another
    /// callable or input (BullMQ's `jobId`); with `watch`, it is watched
    /// like [`Executor::watch`]. One taken by another tenant's execution is
    /// refused (`ENACT_INVALID_EXECUTION`) with a message that says nothing
    /// of that execution. Only a taken id costs a lookup: the store reports
    /// it from the insert itself.
    pub fn submit_many(self: Arc<Self>, batch: Vec<Submission>) -> impl Future<Output = Vec<EngineResult<Receipt>>> + Send + 'static {
        // Over a shared store, a callable this engine does not run may be
        // run by another engine: the store says which are served.
        let remote: Vec<String> = if self.shared {
            let g = self.inner.lock();
            let mut names: Vec<String> =
                batch.iter().map(|s| &s.request.callable_name).filter(|c| !g.limits.callables.contains_key(*c)).cloned().collect();
            names.sort_unstable();
            names.dedup();
            names
        } else {
            Vec::new()
        };
        let me = self.clone();
        let lookup = (!remote.is_empty()).then(|| me.driver.clone());
        let now = self.clock.now();
        async move {
            let served: HashSet<String> = match lookup {
                Some(driver) => match driver.served(remote.clone(), now).await {
                    Ok(flags) => remote.into_iter().zip(flags).filter(|(_, ok)| *ok).map(|(n, _)| n).collect(),
                    Err(e) => {
                        let e = EngineError::from(e);
                        return batch.iter().map(|_| Err(e.clone())).collect();
                    }
                },
                None => HashSet::default(),
            };
            me.submit_served(batch, served).await
        }
    }

    /// [`Executor::submit_many`] once the callables other engines serve
    /// (`served`) are known.
    fn submit_served(self: Arc<Self>, batch: Vec<Submission>, served: HashSet<String>) -> impl Future<Output = Vec<EngineResult<Receipt>>> + Send + 'static {
        let now = self.clock.now();
        let mut answers: Vec<Option<EngineResult<Receipt>>> = Vec::with_capacity(batch.len());
        let mut rows = Vec::with_capacity(batch.len());
        // (answer index, watch, record kept for a notice, record kept for
        // the caller, id, readiness, tenant, whether this watch is new)
        let mut pending = Vec::with_capacity(batch.len());
        {
            let mut g = self.inner.lock();
            let want_queued = self.wants(EventKind::Queued);
            for Submission { request, watch, keep_record } in batch {
                if !g.accepting {
                    answers.push(Some(Err(EngineError::new(ErrorCode::Shutdown, "engine is shut down: no new work is accepted"))));
                    continue;
                }
                let local = g.limits.callables.contains_key(&request.callable_name);
                if !local && !served.contains(&request.callable_name) {
                    let message = if self.shared {
                        format!("callableName: no live engine serves a callable registered as {:?}", request.callable_name)
                    } else {
                        format!("callableName: no callable registered as {:?}", request.callable_name)
                    };
                    answers.push(Some(Err(EngineError::new(ErrorCode::UnknownCallable, message))));
                    continue;
                }
                let mut new = self.new_execution(request, now);
                new.watched = watch;
                let notice = want_queued.then(|| new.record.clone());
                let kept = keep_record.then(|| new.record.clone());
                // Counted and watched before the insert is sent: over a
                // durable store the execution may be claimed, run and
                // finished before this call's own continuation runs, and a
                // watch made then would miss its end. Undone below for a
                // row that was not inserted.
                g.waiting += 1;
                let fresh = watch && g.watched.insert(new.record.execution_id.clone());
                pending.push((answers.len(), watch, notice, kept, new.record.execution_id.clone(), new.ready, new.record.tenant_id.clone(), fresh));
                answers.push(None);
                rows.push(new);
            }
        }
        let driver = self.driver.clone();
        async move {
            if !rows.is_empty() {
                match driver.insert_many(rows).await {
                    Ok(inserted) => {
                        for taken in self.inserted(now, &mut answers, pending, inserted) {
                            let index = taken.index;
                            answers[index] = Some(self.existing(taken).await);
                        }
                    }
                    Err(e) => {
                        let e = EngineError::from(e);
                        let mut g = self.inner.lock();
                        for (index, _, _, _, execution_id, _, _, fresh) in pending {
                            g.waiting -= 1;
                            if fresh {
                                g.watched.remove(&execution_id);
                            }
                            answers[index] = Some(Err(e.clone()));
                        }
                    }
                }
            }
            answers.into_iter().map(|a| a.expect("every submission answered")).collect()
        }
    }

    /// Books the rows the store inserted and answers them; answers the
    /// submissions whose id was taken (left unanswered) for
    /// [`Executor::existing`].
    #[allow(clippy::type_complexity)]
    fn inserted(
        &self,
        now: crate::model::Timestamp,
        answers: &mut [Option<EngineResult<Receipt>>],
        pending: Vec<(usize, bool, Option<Box<BackgroundExecution>>, Option<Box<BackgroundExecution>>, String, Readiness, String, bool)>,
        inserted: Vec<Inserted>,
    ) -> Vec<Taken> {
        let mut g = self.inner.lock();
        Self::kick(&mut g);
        let mut earliest = i64::MAX;
        let mut taken = Vec::new();
        for ((index, watch, notice, kept, execution_id, ready, tenant_id, fresh), outcome) in pending.into_iter().zip(inserted) {
            if outcome == Inserted::Duplicate {
                // Nothing was queued: undo the count and this call's watch
                // (the existing execution is watched on its own below).
                g.waiting -= 1;
                if fresh {
                    g.watched.remove(&execution_id);
                }
                taken.push(Taken { index, execution_id, tenant_id, watch });
                continue;
            }
            g.submitted += 1;
            if let Some(rec) = notice {
                g.outbox.push(Notice::Event(EventKind::Queued, rec));
            }
            if let Readiness::At(due) = ready {
                earliest = earliest.min(due);
            }
            answers[index] = Some(Ok(Receipt { execution_id, queued_at: now, record: kept, existing: None }));
        }
        drop(g);
        if earliest != i64::MAX {
            self.arm_timer(earliest);
        }
        taken
    }

    /// The answer to a submission whose id the store found taken: the
    /// existing execution when it is the same tenant's (watched if asked),
    /// else a refusal that says nothing of it (not its tenant, status or
    /// callable).
    async fn existing(self: &Arc<Self>, taken: Taken) -> EngineResult<Receipt> {
        let Taken { execution_id: id, tenant_id, watch, .. } = taken;
        let Some(rec) = self.driver.get(&id).await? else {
            // Dropped since the insert saw it (retention): nothing to answer.
            return Err(EngineError::invalid("executionId", format!("{id:?} was taken and then dropped while this submission was made; submit again")));
        };
        if rec.tenant_id != tenant_id {
            return Err(EngineError::invalid("executionId", format!("{id:?} is used by an execution of another tenant; choose another id")));
        }
        let queued_at = rec.queued_at;
        if !watch {
            return Ok(Receipt { execution_id: id, queued_at, record: Some(Box::new(rec)), existing: Some(Existing::Current) });
        }
        match self.clone().watch_async(id.clone()).await? {
            Some(done) => Ok(Receipt { execution_id: id, queued_at, record: Some(Box::new(done)), existing: Some(Existing::Settled) }),
            None => Ok(Receipt { execution_id: id, queued_at, record: Some(Box::new(rec)), existing: Some(Existing::Watched) }),
        }
    }

    /// The record and readiness of a submission.
    fn new_execution(&self, req: SubmitRequest, now: crate::model::Timestamp) -> NewExecution {
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
        let record = BackgroundExecution {
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
            chain_root: req.chain_root,
            progress: None,
            trace_context: req.trace_context,
        };
        NewExecution::new(record, ready)
    }

    /// The execution of a trigger fire, for the store's fire step. Unlike a
    /// submission, an unregistered callable does not refuse the work: the
    /// execution is written straight as `failed`, saying so, so a fire is
    /// never dropped silently.
    pub fn fired_execution(&self, req: SubmitRequest, now: crate::model::Timestamp) -> NewExecution {
        // Over a shared store the engines that run it may be others (or
        // back soon): the execution is queued for them.
        let known = self.shared || self.has_callable(&req.callable_name);
        let mut new = self.new_execution(req, now);
        if !known {
            let message = format!("callableName: no callable registered as {:?}", new.record.callable_name);
            let err = CallError { message, retryable: false, code: Some(ErrorCode::UnknownCallable.as_str().into()), details: None };
            // Its first attempt is the one that failed (none started, so the
            // record's own `attempt` stays absent); the policy is the one
            // the execution had, retryable false: enact-core refuses an
            // error without a retry policy or with attempt 0.
            let error = self.execution_error_with(ErrorCategory::ValidationError, &err, 1, new.record.config.retry.as_ref());
            new.record.status = Status::Failed;
            new.record.completed_at = Some(now);
            new.record.error = Some(Box::new(error));
            new.ready = Readiness::Final;
        }
        new
    }

    /// Whether a fire must hand back its execution's record (someone
    /// listens to `execution.queued`).
    pub fn wants_queued_record(&self) -> bool {
        self.wants(EventKind::Queued)
    }

    /// Whether new work is accepted (not shutting down).
    pub fn accepting(&self) -> bool {
        self.inner.lock().accepting
    }

    /// Books an execution a fire inserted: `record` is its record when it
    /// was asked for or written final.
    pub fn accept_fired(&self, record: Option<Box<BackgroundExecution>>) {
        let mut g = self.inner.lock();
        Self::kick(&mut g);
        g.submitted += 1;
        match record {
            Some(rec) if rec.status.is_final() => {
                // A fire of a callable nobody runs, written failed.
                self.metrics.ended_idle(&rec.callable_name, &rec.tenant_id, End::Failed, now_ms(&*self.clock));
                self.settle(&mut g, *rec)
            }
            Some(rec) => {
                g.waiting += 1;
                g.outbox.push(Notice::Event(EventKind::Queued, rec));
            }
            None => g.waiting += 1,
        }
    }

    /// Watches an execution (the store must answer at once): its record if
    /// it is settled (final and bound), else a [`Notice::Settled`] follows.
    pub fn watch(self: &Arc<Self>, id: &str) -> EngineResult<Option<BackgroundExecution>> {
        ready_now(self.clone().watch_async(id.to_owned()))
    }

    /// [`Executor::watch`] for any store.
    pub async fn watch_async(self: Arc<Self>, id: String) -> EngineResult<Option<BackgroundExecution>> {
        // Watch first, then read: an end racing the read then either
        // settles the watch or is seen by the read.
        if self.stopped.load(Ordering::Relaxed) {
            let rec = self.driver.get(&id).await?.ok_or_else(|| EngineError::not_found("execution", &id))?;
            if rec.status.is_final() {
                return Ok(Some(rec));
            }
            return Err(EngineError::new(ErrorCode::Shutdown, format!("engine shut down before execution {id:?} finished")));
        }
        let fresh = self.inner.lock().watched.insert(id.clone());
        // A shared store remembers the watch, so that whichever engine ends
        // the execution signals its end.
        let rec = match self.driver.get_watched(&id).await {
            Ok(Some(rec)) => rec,
            other => {
                if fresh {
                    self.inner.lock().watched.remove(&id);
                }
                return Err(other.err().map(EngineError::from).unwrap_or_else(|| EngineError::not_found("execution", &id)));
            }
        };
        let mut g = self.inner.lock();
        if rec.status.is_final() && !g.binding.contains_key(&id) {
            if fresh {
                g.watched.remove(&id);
            }
            return Ok(Some(rec));
        }
        g.watched.insert(id);
        Ok(None)
    }

    /// One execution (the store must answer at once).
    pub fn get(&self, id: &str) -> EngineResult<Option<BackgroundExecution>> {
        ready_now(self.get_async(id.to_owned()))
    }

    /// [`Executor::get`] for any store.
    pub fn get_async(&self, id: String) -> impl Future<Output = EngineResult<Option<BackgroundExecution>>> + Send + 'static {
        let d = self.driver.clone();
        async move { Ok(d.get(&id).await?) }
    }

    /// Executions passing `filter` (the store must answer at once).
    pub fn list(&self, filter: &ExecutionFilter) -> EngineResult<Vec<BackgroundExecution>> {
        ready_now(self.list_async(filter.clone()))
    }

    /// [`Executor::list`] for any store.
    pub fn list_async(&self, filter: ExecutionFilter) -> impl Future<Output = EngineResult<Vec<BackgroundExecution>>> + Send + 'static {
        let d = self.driver.clone();
        async move { Ok(d.list(&filter).await?) }
    }

    /// Counters (the store must answer at once).
    pub fn stats(self: &Arc<Self>) -> EngineResult<Stats> {
        ready_now(self.clone().stats_async())
    }

    /// [`Executor::stats`] for any store.
    pub async fn stats_async(self: Arc<Self>) -> EngineResult<Stats> {
        let (counts, tallies) = futures_util::future::try_join(self.driver.counts(), self.driver.breakdown()).await?;
        let (windows_c, windows_t) = self.metrics.windows(now_ms(&*self.clock));
        let mut callables: BTreeMap<String, NameStats> = BTreeMap::new();
        let mut tenants: BTreeMap<String, NameStats> = BTreeMap::new();
        let mut delayed = 0;
        for t in tallies {
            delayed += t.delayed;
            for (map, key) in [(&mut callables, &t.callable), (&mut tenants, &t.tenant)] {
                let e = map.entry(key.clone()).or_default();
                e.queued += t.queued;
                e.delayed += t.delayed;
                e.running += t.running;
            }
        }
        for (map, windows) in [(&mut callables, windows_c), (&mut tenants, windows_t)] {
            for (k, w) in windows {
                map.entry(k).or_default().window = w;
            }
        }
        let g = self.inner.lock();
        Ok(Stats {
            counts,
            delayed,
            in_flight: g.running.len(),
            concurrency: self.config.concurrency,
            submitted: g.submitted,
            retried: g.retried,
            stale_results: g.stale,
            ended: self.metrics.ended_totals(),
            callables,
            tenants,
        })
    }

    // -- the host's pull API -----------------------------------------------

    /// Starts as many ready attempts as the concurrency limits allow: what
    /// an earlier claim left in the buffer, and what a new claim for the
    /// free slots brings at once (a durable store's claim lands in the
    /// buffer later, and wakes the host).
    pub fn take(self: &Arc<Self>) -> EngineResult<Vec<Dispatch>> {
        let params = {
            let mut g = self.inner.lock();
            if !g.claiming {
                return Ok(Vec::new());
            }
            let busy = g.running.len() + g.reserved;
            let free = self.config.concurrency.saturating_sub(busy);
            // Nothing to claim for (a producer-only engine), or the store
            // failed the last claim a moment ago (it is tried again after
            // CLAIM_BACKOFF, not on every wake-up).
            let paused = g.claim_paused_until > now_ms(&*self.clock) || g.limits.callables.is_empty() || g.drained;
            // Over a shared store, one claim in flight at a time: slots
            // freed meanwhile are claimed together when it lands (each claim
            // is a transaction; one per freed slot would cost one each).
            // SQLite's writer already puts concurrent claims in one commit.
            if free == 0 || paused || (self.shared && g.reserved > 0) {
                None
            } else {
                let now = self.clock.now();
                // Saturating: a clock near the end of representable time
                // must not panic here, with slots reserved for a claim that
                // never runs.
                let lease_until = now.checked_add_signed(chrono::Duration::milliseconds(self.config.lease_ms as i64)).unwrap_or(now);
                g.reserved += free;
                Some((g.kicks, ClaimParams { worker: self.worker.clone(), max: free, now, lease_until, limits: g.limits.clone() }))
            }
        };
        if let Some((epoch, params)) = params {
            let (me, driver) = (self.clone(), self.driver.clone());
            // A failed claim is a diagnostic, never an error of the host's
            // loop: the work stays queued and is claimed later.
            let ran = self.run("producer", async move {
                let max = params.max;
                let now = params.now;
                let claimed = driver.claim(params).await;
                me.claimed(max, now, epoch, claimed.map_err(EngineError::from))
            });
            if let Err(e) = ran {
                self.diagnose("producer", e);
            }
        }
        Ok(std::mem::take(&mut self.inner.lock().ready))
    }

    /// Books a claim's attempts and puts them in the ready buffer.
    fn claimed(self: &Arc<Self>, max: usize, now: crate::model::Timestamp, epoch: u64, claimed: EngineResult<Vec<BackgroundExecution>>) -> EngineResult<()> {
        let mut g = self.inner.lock();
        g.reserved -= max;
        let claimed = match claimed {
            Ok(c) => {
                if c.len() < max && g.kicks == epoch {
                    g.drained = true;
                }
                c
            }
            Err(e) => {
                g.claim_paused_until = now_ms(&*self.clock).saturating_add(CLAIM_BACKOFF.as_millis() as i64);
                drop(g);
                self.wake_after(CLAIM_BACKOFF);
                return Err(e);
            }
        };
        let mut earliest = i64::MAX;
        let want_started = self.wants(EventKind::Started);
        g.waiting -= claimed.len() as i64;
        let now_ms = millis(now);
        for rec in claimed {
            let deadline = now_ms.saturating_add(rec.config.timeout_ms as i64);
            earliest = earliest.min(deadline);
            g.deadlines.push(Reverse((deadline, rec.execution_id.clone(), rec.attempt)));
            let heavy = rec.config.callback_url.is_some() || rec.config.target_binding.is_some();
            let meter = self.metrics.meter(&rec.callable_name, &rec.tenant_id, now_ms).map(|meter| {
                let wait = (rec.attempt == 1).then(|| elapsed_ms(rec.queued_at, now));
                self.metrics.started(&meter, wait, now_ms);
                (meter, now)
            });
            let running = Running { attempt: rec.attempt, heavy, retry: rec.config.retry.clone(), timeout_ms: rec.config.timeout_ms, meter };
            g.running.insert(rec.execution_id.clone(), running);
            if want_started {
                g.outbox.push(Notice::Event(EventKind::Started, Box::new(rec.clone())));
            }
            g.ready.push(Dispatch {
                stream: rec.config.mode == ExecutionMode::Deferred,
                execution_id: rec.execution_id,
                attempt: rec.attempt,
                tenant_id: rec.tenant_id,
                callable_name: rec.callable_name,
                input: rec.input,
                context: rec.context,
                trigger_id: rec.trigger_id,
                trigger_source: rec.trigger_source,
                chain_depth: rec.chain_depth,
                chain_root: rec.chain_root,
                trace_context: rec.trace_context,
            });
        }
        drop(g);
        if earliest != i64::MAX {
            self.arm_timer(earliest);
        }
        Ok(())
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

    /// Attempts in flight (claimed, taken or not) and slots held by claims
    /// in flight, plus bindings awaiting their handler: what shutdown waits
    /// for.
    pub fn busy(&self) -> usize {
        let g = self.inner.lock();
        // Ends not yet written (a shared store's batch in flight) count:
        // shutdown waits for them, or they would run again elsewhere.
        g.running.len() + g.reserved + g.binding.len() + g.finish_queue.len() + usize::from(g.finishing)
    }

    /// Executions waiting as far as this engine knows (queued by it, not
    /// yet claimed): with [`Executor::busy`], what keeps a host alive.
    pub fn waiting(&self) -> u64 {
        if self.shared {
            // Other engines queue and claim this engine's work too: the
            // store's count, refreshed by the timer, is what waits.
            return self.cluster_waiting.load(Ordering::SeqCst).max(0) as u64;
        }
        self.inner.lock().waiting.max(0) as u64
    }

    /// Whether the store is shared with other engines.
    pub fn is_shared(&self) -> bool {
        self.shared
    }

    /// Executions someone here waits for (`wait`, silent submits).
    pub fn watching(&self) -> usize {
        self.inner.lock().watched.len()
    }

    /// Whether any callable is registered.
    pub fn serves_any(&self) -> bool {
        !self.inner.lock().limits.callables.is_empty()
    }

    /// Makes the store ready (a shared store connects and migrates on its
    /// first call): answers `ENACT_STORE` if it cannot.
    pub async fn open_store(&self) -> EngineResult<()> {
        self.driver.ready().await?;
        self.opened.store(true, Ordering::SeqCst);
        Ok(())
    }

    /// Reports how an attempt ended; see [`Executor::complete_many`].
    pub fn complete(self: &Arc<Self>, execution_id: &str, attempt: u32, outcome: Outcome) -> EngineResult<()> {
        self.complete_many(vec![(execution_id.to_owned(), attempt, outcome)])
    }

    /// Reports how attempts ended, with one store call for the batch. A
    /// result for an attempt that is no longer running (timed out,
    /// cancelled) is ignored and counted.
    pub fn complete_many(self: &Arc<Self>, batch: Vec<(String, u32, Outcome)>) -> EngineResult<()> {
        let mut rows = Vec::with_capacity(batch.len());
        let mut ctx = Vec::with_capacity(batch.len());
        {
            let mut g = self.inner.lock();
            for (id, attempt, outcome) in batch {
                let Some(run) = self.release_slot(&mut g, &id, attempt) else {
                    g.stale += 1;
                    continue;
                };
                let (finish, mut row) = match outcome {
                    Outcome::Completed(output) => self.completed_row(&g, id, attempt, output, run.heavy),
                    Outcome::Failed(err) => self.failed_row(&g, id, &run, ErrorCategory::ToolError, &err, Status::Failed),
                };
                row.meter = self.metered(run, Status::Failed, &row);
                rows.push(finish);
                ctx.push(row);
            }
        }
        self.finish_rows("completer", rows, ctx)
    }

    /// Sends ends to the store and acts on its answers.
    fn finish_rows(self: &Arc<Self>, source: &'static str, rows: Vec<Finish>, ctx: Vec<Row>) -> EngineResult<()> {
        if rows.is_empty() {
            return Ok(());
        }
        let me = self.clone();
        if self.shared {
            // Group commit: one batch of ends in flight at a time; ends that
            // come meanwhile go out together when it lands (a callable that
            // yields to the event loop ends alone, one store call each).
            {
                let mut g = self.inner.lock();
                g.finish_queue.extend(rows.into_iter().zip(ctx));
                if g.finishing {
                    return Ok(());
                }
                g.finishing = true;
            }
            return self.run(source, async move {
                loop {
                    let batch = {
                        let mut g = me.inner.lock();
                        if g.finish_queue.is_empty() {
                            g.finishing = false;
                            return Ok(());
                        }
                        std::mem::take(&mut g.finish_queue)
                    };
                    let (rows, ctx): (Vec<Finish>, Vec<Row>) = batch.into_iter().unzip();
                    if let Err(e) = me.write_ends(rows, ctx).await {
                        // Those ends stay running in the store; their lease
                        // expires and they run again (a stall).
                        me.diagnose(source, e);
                    }
                    me.wake_host();
                }
            });
        }
        self.run(source, async move { me.write_ends(rows, ctx).await })
    }

    /// Writes a batch of ends and acts on the store's answers.
    async fn write_ends(self: &Arc<Self>, rows: Vec<Finish>, ctx: Vec<Row>) -> EngineResult<()> {
        let answers = self.driver.finish_many(rows).await?;
        let follow = self.finished(ctx, answers);
        self.follow_up(follow).await
    }

    fn completed_row(&self, g: &Inner, id: String, attempt: u32, output: Value, heavy: bool) -> (Finish, Row) {
        let at = self.clock.now();
        // Nobody needs the record without a listener, waiter, callback or binding.
        let want_record = heavy || g.watched.contains(&id) || self.wants(EventKind::Completed);
        let change = Change::Finish { status: Status::Completed, output: Some(output), error: None, at };
        (Finish { id: id.clone(), attempt, change, want_record }, Row { id, kind: RowKind::Completed, meter: None })
    }

    fn failed_row(&self, g: &Inner, id: String, run: &Running, category: ErrorCategory, err: &CallError, final_status: Status) -> (Finish, Row) {
        let attempt = run.attempt;
        let error = self.execution_error_with(category, err, attempt, run.retry.as_ref());
        if let Some(r) = run.retry.as_ref().filter(|r| err.retryable && attempt < r.max_attempts) {
            let delay = jittered(backoff_ms(r, attempt));
            let due_ms = now_ms(&*self.clock).saturating_add(delay as i64);
            let want_record = self.wants(EventKind::Retrying);
            let finish = Finish { id: id.clone(), attempt, change: Change::Retry { error, due_ms }, want_record };
            return (finish, Row { id, kind: RowKind::Retry(due_ms), meter: None });
        }
        let want_record = run.heavy || g.watched.contains(&id) || EventKind::of_final(final_status).is_some_and(|k| self.wants(k));
        let change = Change::Finish { status: final_status, output: None, error: Some(error), at: self.clock.now() };
        (Finish { id: id.clone(), attempt, change, want_record }, Row { id, kind: RowKind::Final, meter: None })
    }

    /// Acts on the store's answers to a batch of ends.
    fn finished(&self, ctx: Vec<Row>, answers: Vec<Finished>) -> FollowUp {
        let mut g = self.inner.lock();
        // Slots and limits freed, retries queued.
        Self::kick(&mut g);
        let mut follow = FollowUp::default();
        let mut earliest = i64::MAX;
        let now = now_ms(&*self.clock);
        for (row, answer) in ctx.into_iter().zip(answers) {
            if let (Some(m), Finished::Done(_)) = (&row.meter, &answer) {
                self.metrics.ended(&m.meter, m.run_ms, m.end, now);
            }
            let Finished::Done(rec) = answer else {
                // Over a shared store another engine cancelled or took back
                // the attempt: its end may already have been signalled
                // while it ran here (and so was passed over).
                if self.shared && g.watched.contains(&row.id) {
                    follow.stale.push(row.id);
                }
                continue;
            };
            match row.kind {
                RowKind::Retry(due_ms) => {
                    g.retried += 1;
                    g.waiting += 1;
                    earliest = earliest.min(due_ms);
                    if let Some(rec) = rec.filter(|_| self.wants(EventKind::Retrying)) {
                        g.outbox.push(Notice::Event(EventKind::Retrying, rec));
                    }
                }
                RowKind::Completed => match rec {
                    Some(rec) => self.after_completed(&mut g, *rec, &mut follow),
                    None if g.watched.contains(&row.id) => follow.refetch.push(row.id),
                    None => {}
                },
                RowKind::Final => match rec {
                    Some(rec) => self.settle(&mut g, *rec),
                    None if g.watched.contains(&row.id) => follow.refetch.push(row.id),
                    None => {}
                },
            }
        }
        drop(g);
        if earliest != i64::MAX {
            self.arm_timer(earliest);
        }
        follow
    }

    /// Records bindings that need no handler and settles late watchers.
    async fn follow_up(self: &Arc<Self>, follow: FollowUp) -> EngineResult<()> {
        for (id, result) in follow.binds {
            let kind = if result.success { EventKind::BindingApplied } else { EventKind::BindingFailed };
            if let Some(rec) = self.driver.bind(&id, result).await? {
                self.bound(kind, rec);
            }
        }
        if !follow.stale.is_empty() {
            self.settle_elsewhere(follow.stale).await;
        }
        for id in follow.refetch {
            if let Some(rec) = self.driver.get(&id).await?.filter(|r| r.status.is_final()) {
                let mut g = self.inner.lock();
                if !g.binding.contains_key(&id) {
                    self.settle(&mut g, rec);
                }
            }
        }
        Ok(())
    }

    /// A completed record: bind its result, or settle it.
    fn after_completed(&self, g: &mut Inner, rec: BackgroundExecution, follow: &mut FollowUp) {
        let Some(binding) = rec.config.target_binding.clone() else {
            self.settle(g, rec);
            return;
        };
        let id = rec.execution_id.clone();
        match transformed(&rec) {
            Err(e) => follow.binds.push((id, self.binding_result(&binding, None, Some(e)))),
            Ok(_) if !g.targets.contains(&binding.target_type) => {
                let why = format!("no target handler registered for {:?}", binding.target_type.as_str());
                follow.binds.push((id, self.binding_result(&binding, None, Some(why))));
            }
            Ok(value) => {
                g.binding.insert(id, PendingBind { config: (*binding).clone(), value: value.clone() });
                g.outbox.push(Notice::Bind(Box::new(BindRequest { target_type: binding.target_type, value, record: rec })));
            }
        }
    }

    fn binding_result(&self, binding: &TargetBindingConfig, value: Option<String>, error: Option<String>) -> TargetBindingResult {
        TargetBindingResult {
            target_type: binding.target_type,
            target_path: binding.target_path.clone(),
            success: error.is_none(),
            applied_value: value,
            error,
            applied_at: self.clock.now(),
        }
    }

    /// A binding was recorded: tell listeners, settle.
    fn bound(&self, kind: EventKind, rec: BackgroundExecution) {
        let mut g = self.inner.lock();
        if self.wants(kind) {
            g.outbox.push(Notice::Event(kind, Box::new(rec.clone())));
        }
        self.settle(&mut g, rec);
    }

    /// Reports the outcome of a [`Notice::Bind`]: `Ok` when the handler
    /// accepted the value, `Err(message)` when it threw.
    pub fn binding_done(self: &Arc<Self>, execution_id: &str, result: Result<(), String>) -> EngineResult<()> {
        let Some(pending) = self.inner.lock().binding.remove(execution_id) else { return Ok(()) };
        let (value, error) = match result {
            Ok(()) => (Some(pending.value), None),
            Err(e) => (None, Some(e)),
        };
        let result = self.binding_result(&pending.config, value, error);
        let follow = FollowUp { binds: vec![(execution_id.to_owned(), result)], ..FollowUp::default() };
        let me = self.clone();
        self.run("binding", async move { me.follow_up(follow).await })
    }

    /// Cancels a queued or running execution (the store must answer at
    /// once). `Ok(false)` when it had already finished.
    pub fn cancel(self: &Arc<Self>, execution_id: &str) -> EngineResult<bool> {
        ready_now(self.clone().cancel_async(execution_id.to_owned()))
    }

    /// [`Executor::cancel`] for any store.
    pub async fn cancel_async(self: Arc<Self>, execution_id: String) -> EngineResult<bool> {
        let at = self.clock.now();
        match self.driver.cancel(&execution_id, at).await? {
            CancelOutcome::Cancelled(rec) => {
                let mut g = self.inner.lock();
                Self::kick(&mut g);
                match self.release_slot(&mut g, &execution_id, rec.attempt) {
                    Some(run) => {
                        self.meter_end(&run, End::Cancelled);
                        g.outbox.push(Notice::Abort { execution_id, attempt: run.attempt, reason: AbortReason::Cancel });
                    }
                    None => {
                        g.waiting -= 1;
                        self.metrics.ended_idle(&rec.callable_name, &rec.tenant_id, End::Cancelled, millis(at));
                    }
                }
                self.settle(&mut g, *rec);
                Ok(true)
            }
            CancelOutcome::AlreadyFinal => Ok(false),
            CancelOutcome::NotFound => Err(EngineError::not_found("execution", &execution_id)),
        }
    }

    /// The end of a running attempt to count once the store applied it:
    /// its run time until now, and how it ended (`failed`: the final
    /// status of a failure that is not retried).
    fn metered(&self, run: Running, failed: Status, row: &Row) -> Option<Box<Metered>> {
        let (meter, started) = run.meter?;
        Some(Box::new(Metered { meter, run_ms: elapsed_ms(started, self.clock.now()), end: row.end(failed) }))
    }

    /// Counts the end of a running attempt now (an end the store already
    /// applied: a cancel).
    fn meter_end(&self, run: &Running, end: End) {
        if let Some((meter, started)) = &run.meter {
            let now = self.clock.now();
            self.metrics.ended(meter, elapsed_ms(*started, now), end, millis(now));
        }
    }

    /// What this engine counted.
    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// The Prometheus exposition of this engine's metrics, with gauges of
    /// what the store holds (every engine's work, on a shared store).
    pub async fn metrics_text(self: Arc<Self>, triggers: Vec<(crate::model::TriggerType, crate::model::TriggerStatus, u64)>) -> EngineResult<String> {
        let tallies = self.driver.breakdown().await?;
        let in_flight = self.inner.lock().running.len();
        Ok(self.metrics.encode(&Gauges { tallies, triggers, in_flight, concurrency: self.config.concurrency }))
    }

    /// Stores what attempt `attempt` of `execution_id` reported with
    /// `ctx.progress`; `Ok(false)` when that attempt no longer runs here
    /// (it timed out, was cancelled or handed back): nothing is written.
    pub async fn progress_async(self: Arc<Self>, execution_id: String, attempt: u32, value: Value) -> EngineResult<bool> {
        if !is_live(&self.inner.lock().running, &execution_id, attempt) {
            return Ok(false);
        }
        let written = self.driver.progress_many(vec![Progress { id: execution_id, attempt, value }]).await?;
        Ok(written.first().copied().unwrap_or(false))
    }

    /// Queues a `failed`, `timeout` or `cancelled` execution again (BullMQ's
    /// `job.retry()`: the attempt number goes on, the retry policy is not
    /// renewed); answers the queued record. `ENACT_INVALID_STATE` for any
    /// other status, `ENACT_UNKNOWN_CALLABLE` when nobody runs its callable.
    pub async fn retry_async(self: Arc<Self>, execution_id: String) -> EngineResult<BackgroundExecution> {
        if !self.accepting() {
            return Err(EngineError::new(ErrorCode::Shutdown, "retry: the engine is shutting down"));
        }
        // Only work someone can run: this engine, or (shared) a live one.
        if let Some(rec) = self.driver.get(&execution_id).await? {
            let name = rec.callable_name;
            let served = self.has_callable(&name) || (self.shared && self.driver.served(vec![name.clone()], self.clock.now()).await?.first() == Some(&true));
            if !served && crate::store::retryable_status(rec.status) {
                return Err(EngineError::new(
                    ErrorCode::UnknownCallable,
                    format!("callableName: no callable registered as {name:?}; register it before retrying {execution_id:?}"),
                ));
            }
        }
        match self.driver.retry(&execution_id, self.clock.now()).await? {
            RetryOutcome::Requeued(rec) => {
                {
                    let mut g = self.inner.lock();
                    Self::kick(&mut g);
                    g.waiting += 1;
                    if self.wants(EventKind::Queued) {
                        g.outbox.push(Notice::Event(EventKind::Queued, rec.clone()));
                    }
                }
                self.wake_host();
                Ok(*rec)
            }
            RetryOutcome::NotRetryable(status) => Err(EngineError::new(
                ErrorCode::InvalidState,
                format!("executionId: {execution_id:?} is {}; only failed, timeout or cancelled executions can be retried", status.as_str()),
            )),
            RetryOutcome::NotFound => Err(EngineError::not_found("execution", &execution_id)),
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
    /// remaining waiters are rejected ([`Notice::Closed`]) and the services
    /// end. Idempotent.
    pub fn finish_shutdown(self: &Arc<Self>) -> EngineResult<()> {
        let mut rows = Vec::new();
        {
            let mut g = self.inner.lock();
            g.accepting = false;
            g.claiming = false;
            let running: Vec<(String, u32)> = g.running.iter().map(|(id, r)| (id.clone(), r.attempt)).collect();
            for (id, attempt) in running {
                self.release_slot(&mut g, &id, attempt);
                g.waiting += 1;
                rows.push(Finish { id: id.clone(), attempt, change: Change::Release, want_record: false });
                g.outbox.push(Notice::Abort { execution_id: id, attempt, reason: AbortReason::Shutdown });
            }
            // Claimed but never taken: released above with the rest.
            g.ready.clear();
            g.deadlines.clear();
            g.watched.clear();
            if !self.stopped.swap(true, Ordering::SeqCst) {
                g.outbox.push(Notice::Closed);
            }
        }
        self.timer_kick.notify_one();
        self.stop.notify_waiters();
        let driver = self.driver.clone();
        let me = self.clone();
        self.run("shutdown", async move {
            // Both sent now (the first poll runs in place), before the store
            // is closed: the hand-back, and the withdrawal of this engine's
            // callables (other engines no longer send it work).
            let release = async {
                if !rows.is_empty() {
                    driver.finish_many(rows).await?;
                }
                Ok::<(), EngineError>(())
            };
            let (released, withdrawn) = futures_util::future::join(release, me.publish_async()).await;
            released.and(withdrawn)
        })
    }

    /// Whether [`Executor::finish_shutdown`] ran.
    pub fn is_stopped(&self) -> bool {
        self.stopped.load(Ordering::SeqCst)
    }

    // -- internals ---------------------------------------------------------

    /// Frees the concurrency slot of a running attempt: its bookkeeping, or
    /// `None` if that attempt is not running here.
    fn release_slot(&self, g: &mut Inner, id: &str, attempt: u32) -> Option<Running> {
        if !is_live(&g.running, id, attempt) {
            return None;
        }
        let r = g.running.remove(id).expect("present");
        // Claimed but not yet taken (a store that answered later): it must
        // not start now.
        if !g.ready.is_empty() {
            g.ready.retain(|d| d.execution_id != id);
        }
        // Finished attempts leave their deadline behind (a heap has no
        // cheap removal); drop the dead ones once they dominate, so a
        // long timeout under sustained load cannot grow the heap
        // without bound. Amortized O(1) per attempt.
        if g.deadlines.len() > 4 * g.running.len() + 1024 {
            let running = &g.running;
            g.deadlines.retain(|Reverse((_, id, attempt))| is_live(running, id, *attempt));
        }
        Some(r)
    }

    fn execution_error_with(&self, category: ErrorCategory, err: &CallError, attempt: u32, retry: Option<&RetryConfig>) -> ExecutionError {
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
                None => ErrorRetryPolicy::no_retry(err.retryable),
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

    /// Something may have made work claimable (work inserted, staged,
    /// re-queued or rescued, a slot or limit freed, a callable registered,
    /// another engine's signal): the next [`Executor::take`] claims again.
    fn kick(g: &mut Inner) {
        g.drained = false;
        g.kicks += 1;
    }

    /// [`Executor::kick`], taking the lock.
    pub(super) fn kick_claims(&self) {
        Self::kick(&mut self.inner.lock());
    }

    /// Wakes the host after `delay` (on the runtime; a manual clock's host
    /// is woken at once).
    fn wake_after(self: &Arc<Self>, delay: std::time::Duration) {
        let handle = tokio::runtime::Handle::try_current().ok().or_else(|| self.runtime.get().cloned());
        match handle {
            Some(h) if !self.clock.is_manual() => {
                let me = self.clone();
                h.spawn(async move {
                    tokio::time::sleep(delay).await;
                    me.wake_host();
                });
            }
            _ => self.wake_host(),
        }
    }

    fn wake_host(&self) {
        if !self.woken.swap(true, Ordering::SeqCst) {
            self.host.wake();
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
