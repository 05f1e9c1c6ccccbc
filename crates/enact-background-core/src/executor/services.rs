//! The executor's background services, each one loop on the tokio runtime
//! that ends once the executor is stopped (River's `internal/maintenance`,
//! Oban's Stager / Lifeline):
//!
//! - the **timer**: stages delayed work that came due (deferred runs, retry
//!   backoff) and times out attempts past their deadline;
//! - the **heartbeat** (with [`super::ExecutorConfig::maintenance`]): renews the
//!   leases of the attempts running here;
//! - the **rescuer** (likewise): takes back attempts whose lease expired —
//!   their engine died — queueing them again or failing them after
//!   `maxStalls` interruptions;
//! - the **pruner** (likewise, with a `keep_finished`): drops the oldest
//!   finished executions beyond it, every [`PRUNE_EVERY`].

use std::cmp::Reverse;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use chrono::DateTime;

use super::{now_ms, AbortReason, CallError, Executor, Notice};
use crate::metrics::End;
use crate::error::{EngineError, EngineResult};
use crate::model::{BackgroundExecutionStatus as Status, ErrorCategory};
use crate::store::Signal;

/// How often the pruner runs.
pub const PRUNE_EVERY: Duration = Duration::from_secs(30);

/// Over a shared store, how often the timer looks for work without being
/// told (a lost notification, delayed work another engine queued, a tenant
/// slot freed on another engine) and counts what waits.
pub const SHARED_POLL: Duration = Duration::from_secs(1);

/// Over a shared store, how often watched executions are read again in
/// case their end signal was lost.
const WATCH_RECHECK_MS: i64 = 5_000;

impl Executor {
    /// One pass of timed work: stage due delayed executions, time out
    /// overdue attempts. Returns (whether the host has something to do,
    /// next due time).
    async fn tick(self: &Arc<Self>) -> EngineResult<(bool, i64)> {
        let now = now_ms(&*self.clock);
        let staged = self.driver.stage_due(now).await?;
        if staged.promoted > 0 || self.shared {
            // Staged work, or (shared) the fallback of lost signals.
            self.kick_claims();
        }
        let mut rows = Vec::new();
        let mut ctx = Vec::new();
        let next_deadline = {
            let mut g = self.inner.lock();
            while let Some(Reverse((deadline, _, _))) = g.deadlines.peek() {
                if *deadline > now {
                    break;
                }
                let Reverse((_, id, attempt)) = g.deadlines.pop().expect("peeked");
                let Some(run) = self.release_slot(&mut g, &id, attempt) else { continue };
                g.outbox.push(Notice::Abort { execution_id: id.clone(), attempt, reason: AbortReason::Timeout });
                let err = CallError::new(format!("timed out after {} ms", run.timeout_ms));
                let (finish, mut row) = self.failed_row(&g, id, &run, ErrorCategory::Timeout, &err, Status::Timeout);
                row.meter = self.metered(run, Status::Timeout, &row);
                rows.push(finish);
                ctx.push(row);
            }
            g.deadlines.peek().map(|Reverse((d, _, _))| *d).unwrap_or(i64::MAX)
        };
        let timed_out = !rows.is_empty();
        if timed_out {
            let answers = self.driver.finish_many(rows).await?;
            let follow = self.finished(ctx, answers);
            self.follow_up(follow).await?;
        }
        let pending = self.has_notices() || staged.promoted > 0 || timed_out;
        Ok((pending, next_deadline.min(staged.next_due_ms.unwrap_or(i64::MAX))))
    }

    /// Does at once the timed work due by the clock's now (the store must
    /// answer at once): stages delayed executions (deferred runs, retry
    /// backoff) whose time came, times out attempts past their deadline.
    /// Returns the next time timed work is due (Unix ms), or `None`. Then
    /// [`Executor::drain`] and [`Executor::take`] hand over what it made.
    ///
    /// This is the timer service's one pass, for a manual clock
    /// ([`crate::clock::ManualClock`]), under which the service does not
    /// run: move the clock, call this, and what came due has happened,
    /// with no real time passing. Calling it with a real clock is
    /// harmless (the service would have done the same a moment later).
    pub fn run_due_now(self: &Arc<Self>) -> EngineResult<Option<i64>> {
        crate::store::ready_now(self.clone().run_due_async())
    }

    /// [`Executor::run_due_now`] for any store: a durable store answers
    /// the pass later.
    pub async fn run_due_async(self: Arc<Self>) -> EngineResult<Option<i64>> {
        // Forget the armed time before the pass: the pass computes the next
        // one, and work it arms itself (a timeout's retry) lowers it again.
        self.timer_due.store(i64::MAX, Ordering::SeqCst);
        let (_, next) = self.tick().await?;
        self.timer_due.fetch_min(next, Ordering::SeqCst);
        Ok(self.next_due())
    }

    /// Counts what a reopened store already holds as waiting, so that the
    /// host keeps its process alive for that work and `idle` waits for it
    /// (this engine did not queue it, so nothing else counted it). Call
    /// once, after opening, before any submission.
    pub async fn adopt_backlog(self: Arc<Self>) -> EngineResult<u64> {
        let counts = self.driver.counts().await?;
        self.kick_claims();
        let backlog = counts.queued;
        if backlog > 0 {
            self.inner.lock().waiting += backlog as i64;
            self.wake_host();
        }
        Ok(backlog)
    }

    /// The earliest time (Unix ms) timed work may be due, as far as it was
    /// armed: never later than the real next due time, possibly earlier
    /// (work that since finished). `None` when nothing is armed. With a
    /// manual clock, the host moves the clock to this time, calls
    /// [`Executor::run_due_now`], and repeats, to run each due time in
    /// order.
    pub fn next_due(&self) -> Option<i64> {
        match self.timer_due.load(Ordering::SeqCst) {
            i64::MAX => None,
            // The timer service is scanning: due now.
            i64::MIN => Some(now_ms(&*self.clock)),
            at => Some(at),
        }
    }

    pub(super) async fn timer_loop(self: Arc<Self>) {
        loop {
            if self.stopped.load(Ordering::SeqCst) {
                return;
            }
            if !self.opened.load(Ordering::SeqCst) {
                // A shared store not opened yet (or refused): nothing to do.
                tokio::select! {
                    _ = tokio::time::sleep(SHARED_POLL) => {}
                    _ = self.timer_kick.notified() => {}
                }
                continue;
            }
            // Publish "awake" before scanning so that work armed during the
            // scan is not missed.
            self.timer_due.store(i64::MIN, Ordering::SeqCst);
            let next = match self.tick().await {
                Ok((pending, next)) => {
                    if pending {
                        self.wake_host();
                    }
                    next
                }
                Err(e) => {
                    // Store trouble: say so, and try again in a second.
                    self.diagnose("timer", e);
                    self.wake_host();
                    now_ms(&*self.clock) + 1000
                }
            };
            self.timer_due.store(next, Ordering::SeqCst);
            let mut sleep = if next == i64::MAX {
                Duration::from_secs(3600)
            } else {
                crate::clock::until(self.clock.now(), DateTime::from_timestamp_millis(next).unwrap_or_default())
            };
            if self.shared {
                self.count_waiting().await;
                // The fallback of lost end signals: every few seconds, the
                // watched executions that do not run here are read again.
                let now = now_ms(&*self.clock);
                if now - self.last_recheck.load(Ordering::SeqCst) >= WATCH_RECHECK_MS {
                    self.last_recheck.store(now, Ordering::SeqCst);
                    let ids: Vec<String> = self.inner.lock().watched.iter().cloned().collect();
                    if !ids.is_empty() {
                        self.settle_elsewhere(ids).await;
                    }
                }
                // The fallback of the store's signals: claim now and then.
                self.wake_host();
                sleep = sleep.min(SHARED_POLL);
            }
            tokio::select! {
                _ = tokio::time::sleep(sleep) => {}
                _ = self.timer_kick.notified() => {}
            }
        }
    }

    /// Sleeps `period`, or less when the executor stops; false once stopped.
    /// The stop wake-up is registered before the flag is read: a stop that
    /// came while the service was busy (no waiter for `notify_waiters`)
    /// is seen by the flag, and one that comes later wakes the sleep, so
    /// no stop waits out a whole period.
    async fn pause(&self, period: Duration) -> bool {
        let stop = self.stop.notified();
        tokio::pin!(stop);
        stop.as_mut().enable();
        if self.stopped.load(Ordering::SeqCst) {
            return false;
        }
        tokio::select! {
            _ = tokio::time::sleep(period) => {}
            _ = stop => {}
        }
        !self.stopped.load(Ordering::SeqCst)
    }

    /// Renews the leases of the attempts running here, every third of a
    /// lease.
    pub(super) async fn heartbeat_loop(self: Arc<Self>) {
        let lease = Duration::from_millis(self.config.lease_ms);
        while self.pause(lease / 3).await {
            if self.shared {
                if let Err(e) = self.publish_async().await {
                    self.diagnose("heartbeat", e);
                    self.wake_host();
                }
            }
            let running: Vec<(String, u32)> = self.inner.lock().running.iter().map(|(id, r)| (id.clone(), r.attempt)).collect();
            if running.is_empty() {
                continue;
            }
            let ids: Vec<String> = running.iter().map(|(id, _)| id.clone()).collect();
            let until = self.clock.now() + chrono::Duration::milliseconds(self.config.lease_ms as i64);
            match self.driver.renew(&self.worker, &ids, until).await {
                Ok(renewed) if renewed.len() < ids.len() => self.lost(running, renewed).await,
                Ok(_) => {}
                Err(e) => {
                    self.diagnose("heartbeat", EngineError::from(e));
                    self.wake_host();
                }
            }
        }
    }

    /// Takes back attempts whose engine died, every half lease.
    pub(super) async fn rescuer_loop(self: Arc<Self>) {
        let lease = Duration::from_millis(self.config.lease_ms);
        while self.pause(lease / 2).await {
            if let Err(e) = self.rescue().await {
                self.diagnose("rescuer", e);
                self.wake_host();
            }
        }
    }

    /// Drops the oldest finished executions beyond `keep`, every
    /// [`PRUNE_EVERY`].
    pub(super) async fn pruner_loop(self: Arc<Self>, keep: usize) {
        while self.pause(PRUNE_EVERY).await {
            if let Err(e) = self.driver.prune(keep).await {
                self.diagnose("pruner", EngineError::from(e));
                self.wake_host();
            }
        }
    }

    /// One rescue pass: attempts whose lease expired are queued again, or
    /// end `failed` after more than [`super::ExecutorConfig::max_stalls`]
    /// interruptions (and are settled like any end). Returns how many.
    pub async fn rescue(self: &Arc<Self>) -> EngineResult<usize> {
        let rescued = self.driver.rescue_expired(self.clock.now(), self.config.max_stalls).await?;
        if rescued.is_empty() {
            return Ok(0);
        }
        let n = rescued.len();
        {
            let mut g = self.inner.lock();
            Self::kick(&mut g);
            let now = now_ms(&*self.clock);
            for r in rescued {
                if r.record.status.is_final() {
                    self.metrics.ended_idle(&r.record.callable_name, &r.record.tenant_id, End::Failed, now);
                    self.settle(&mut g, *r.record);
                } else {
                    g.waiting += 1;
                }
            }
        }
        self.wake_host();
        Ok(n)
    }

    /// Attempts running here whose lease the store did not renew: another
    /// engine cancelled them or took them back (this engine was cut off
    /// longer than a lease). Each is aborted here (its callable sees a
    /// cancellation and its late result is ignored), and its waiters
    /// settle from the store.
    async fn lost(self: &Arc<Self>, running: Vec<(String, u32)>, renewed: Vec<String>) {
        let renewed: std::collections::HashSet<String> = renewed.into_iter().collect();
        let mut watched = Vec::new();
        {
            let mut g = self.inner.lock();
            for (id, attempt) in running.into_iter().filter(|(id, _)| !renewed.contains(id)) {
                if self.release_slot(&mut g, &id, attempt).is_some() {
                    g.outbox.push(Notice::Abort { execution_id: id.clone(), attempt, reason: AbortReason::Cancel });
                    if g.watched.contains(&id) {
                        watched.push(id);
                    }
                }
            }
            Self::kick(&mut g);
        }
        self.wake_host();
        if !watched.is_empty() {
            self.settle_elsewhere(watched).await;
        }
    }

    /// Counts, over a shared store, what waits for the callables this
    /// engine runs ([`Executor::waiting`]).
    pub(super) async fn count_waiting(&self) {
        let names: Vec<String> = self.inner.lock().limits.callables.keys().cloned().collect();
        if names.is_empty() {
            self.cluster_waiting.store(0, Ordering::SeqCst);
            return;
        }
        match self.driver.queued_of(names).await {
            Ok(n) => self.cluster_waiting.store(n as i64, Ordering::SeqCst),
            Err(e) => self.diagnose("timer", EngineError::from(e)),
        }
    }

    /// Publishes, over a shared store, the callables this engine runs, for
    /// a lease: other engines may then submit work for them. Renewed by
    /// the heartbeat; withdrawn at shutdown.
    pub async fn publish_async(self: &Arc<Self>) -> EngineResult<()> {
        if !self.shared {
            return Ok(());
        }
        let _one = self.publishing.lock().await;
        let names: Vec<String> = if self.stopped.load(Ordering::SeqCst) {
            if !self.published.load(Ordering::SeqCst) {
                return Ok(()); // nothing to withdraw
            }
            Vec::new()
        } else {
            self.inner.lock().limits.callables.keys().cloned().collect()
        };
        self.published.store(true, Ordering::SeqCst);
        let until = self.clock.now() + chrono::Duration::milliseconds(self.config.lease_ms as i64);
        self.driver.publish(&self.worker, names, until).await?;
        Ok(())
    }

    /// [`Executor::publish_async`] in the background (a callable was
    /// registered).
    pub fn publish(self: &Arc<Self>) {
        if self.shared {
            let me = self.clone();
            let _ = self.run("publisher", async move { me.publish_async().await });
        }
    }

    /// Listens to what other engines sharing the store did: claimable work
    /// wakes the host (which claims); a watched execution that ended
    /// elsewhere settles its waiters here; after lost signals, both.
    pub(super) async fn signal_loop(self: Arc<Self>, mut rx: tokio::sync::broadcast::Receiver<Signal>) {
        use tokio::sync::broadcast::error::{RecvError, TryRecvError};
        loop {
            let stop = self.stop.notified();
            tokio::pin!(stop);
            stop.as_mut().enable();
            if self.stopped.load(Ordering::SeqCst) {
                return;
            }
            let first = tokio::select! {
                r = rx.recv() => r,
                _ = stop => return,
            };
            let mut settled: Vec<String> = Vec::new();
            let mut everything = false;
            let mut take = |r: Result<Signal, bool>| match r {
                Ok(Signal::Work) => {
                    self.kick_claims();
                    self.wake_host();
                }
                Ok(Signal::Settled(id)) => settled.push(id),
                Ok(Signal::Triggers) => {}
                Ok(Signal::Lost) | Err(true) => everything = true,
                Err(false) => {}
            };
            match first {
                Ok(s) => take(Ok(s)),
                Err(RecvError::Lagged(_)) => take(Err(true)),
                Err(RecvError::Closed) => return,
            }
            // What else came meanwhile, in one pass.
            loop {
                match rx.try_recv() {
                    Ok(s) => take(Ok(s)),
                    Err(TryRecvError::Lagged(_)) => take(Err(true)),
                    Err(TryRecvError::Empty) => break,
                    Err(TryRecvError::Closed) => return,
                }
            }
            if everything {
                self.kick_claims();
                self.wake_host();
                settled = self.inner.lock().watched.iter().cloned().collect();
            }
            if !settled.is_empty() {
                self.settle_elsewhere(settled).await;
            }
        }
    }

    /// Settles the waiters of watched executions that ended on another
    /// engine: each is read, and settled if its record is final (and bound,
    /// if it binds). Those this engine runs or binds settle here anyway.
    pub(super) async fn settle_elsewhere(self: &Arc<Self>, ids: Vec<String>) {
        let ids: Vec<String> = {
            let g = self.inner.lock();
            ids.into_iter().filter(|id| g.watched.contains(id) && !g.running.contains_key(id) && !g.binding.contains_key(id)).collect()
        };
        for chunk in ids.chunks(64) {
            let reads = chunk.iter().map(|id| self.driver.get(id));
            let records = futures_util::future::join_all(reads).await;
            let mut g = self.inner.lock();
            for (id, rec) in chunk.iter().zip(records) {
                match rec {
                    Ok(Some(rec)) => {
                        let bound = rec.status != Status::Completed || rec.config.target_binding.is_none() || rec.binding_result.is_some();
                        if rec.status.is_final() && bound && !g.running.contains_key(id) && !g.binding.contains_key(id) && g.watched.remove(id) {
                            g.outbox.push(Notice::Settled(Box::new(rec)));
                        }
                    }
                    Ok(None) => {}
                    Err(e) => self.post_locked(&mut g, "waiter", EngineError::from(e)),
                }
            }
            drop(g);
            self.wake_host();
        }
    }

    fn post_locked(&self, g: &mut super::Inner, source: &'static str, error: EngineError) {
        g.outbox.push(Notice::Diagnostic(Box::new(super::Diagnostic { source, error })));
    }
}
