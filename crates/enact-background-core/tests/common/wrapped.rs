//! A driver that wraps another to stand in for what a durable store does
//! to the engine: answer later (each future is pending once before it
//! answers, as one waiting on its own thread would be), or run a hook
//! right after a staging scan (another thread acting mid-tick).
//! Include with `#[path = "common/wrapped.rs"] mod wrapped;`.
#![allow(dead_code)]

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use enact_background_core::error::EngineError;
use enact_background_core::model::*;
use enact_background_core::store::*;

pub type Hook = Box<dyn FnOnce() + Send>;

pub struct Wrapped<D> {
    pub inner: D,
    /// Answer every call only on its second poll.
    pub later: bool,
    /// Run once, right after the next `stage_due`.
    pub after_stage: Arc<Mutex<Option<Hook>>>,
    /// Run once, right after the next `fire` wrote its execution (another
    /// thread claiming it before the fire returns).
    pub after_fire: Arc<Mutex<Option<Hook>>>,
    /// Run once, right after the next `insert_many` wrote its rows and
    /// before it answers (the rows claimed, run and finished before the
    /// submitter hears they were inserted).
    pub after_insert: Arc<Mutex<Option<Hook>>>,
}

impl<D> Wrapped<D> {
    pub fn later(inner: D) -> Self {
        Self { inner, later: true, after_stage: Arc::default(), after_fire: Arc::default(), after_insert: Arc::default() }
    }

    pub fn hooked(inner: D) -> Self {
        Self { inner, later: false, after_stage: Arc::default(), after_fire: Arc::default(), after_insert: Arc::default() }
    }
}

/// Pending once (waking itself), then ready.
struct YieldOnce(bool);

impl Future for YieldOnce {
    type Output = ();
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.0 {
            return Poll::Ready(());
        }
        self.0 = true;
        cx.waker().wake_by_ref();
        Poll::Pending
    }
}

impl<D: Driver> Wrapped<D> {
    fn wrap<'a, T: Send + 'a>(&self, f: StoreFuture<'a, T>) -> StoreFuture<'a, T> {
        if !self.later {
            return f;
        }
        Box::pin(async move {
            YieldOnce(false).await;
            f.await
        })
    }
}

impl<D: Driver> Driver for Wrapped<D> {
    fn name(&self) -> &'static str {
        self.inner.name()
    }
    fn insert_many(&self, rows: Vec<NewExecution>) -> StoreFuture<'_, Vec<Inserted>> {
        let f = self.inner.insert_many(rows);
        let hook = self.after_insert.lock().unwrap().take();
        if let Some(h) = hook {
            h();
        }
        self.wrap(f)
    }
    fn get<'a>(&'a self, id: &'a str) -> StoreFuture<'a, Option<BackgroundExecution>> {
        self.wrap(self.inner.get(id))
    }
    fn list<'a>(&'a self, filter: &'a ExecutionFilter) -> StoreFuture<'a, Vec<BackgroundExecution>> {
        self.wrap(self.inner.list(filter))
    }
    fn claim(&self, params: ClaimParams) -> StoreFuture<'_, Vec<BackgroundExecution>> {
        self.wrap(self.inner.claim(params))
    }
    fn finish_many(&self, rows: Vec<Finish>) -> StoreFuture<'_, Vec<Finished>> {
        self.wrap(self.inner.finish_many(rows))
    }
    fn cancel<'a>(&'a self, id: &'a str, at: Timestamp) -> StoreFuture<'a, CancelOutcome> {
        self.wrap(self.inner.cancel(id, at))
    }
    fn bind<'a>(&'a self, id: &'a str, result: TargetBindingResult) -> StoreFuture<'a, Option<BackgroundExecution>> {
        self.wrap(self.inner.bind(id, result))
    }
    fn stage_due(&self, now_ms: i64) -> StoreFuture<'_, Staged> {
        let f = self.inner.stage_due(now_ms);
        let hook = self.after_stage.lock().unwrap().take();
        if let Some(h) = hook {
            h();
        }
        self.wrap(f)
    }
    fn heartbeat<'a>(&'a self, worker: &'a str, ids: &'a [String], lease_until: Timestamp) -> StoreFuture<'a, usize> {
        self.wrap(self.inner.heartbeat(worker, ids, lease_until))
    }
    fn rescue_expired(&self, now: Timestamp, max_stalls: u32) -> StoreFuture<'_, Vec<Rescued>> {
        self.wrap(self.inner.rescue_expired(now, max_stalls))
    }
    fn prune(&self, keep: usize) -> StoreFuture<'_, usize> {
        self.wrap(self.inner.prune(keep))
    }
    fn breakdown(&self) -> StoreFuture<'_, Vec<Tally>> {
        self.wrap(self.inner.breakdown())
    }
    fn progress_many(&self, rows: Vec<Progress>) -> StoreFuture<'_, Vec<bool>> {
        self.wrap(self.inner.progress_many(rows))
    }
    fn retry<'a>(&'a self, id: &'a str, at: Timestamp) -> StoreFuture<'a, RetryOutcome> {
        self.wrap(self.inner.retry(id, at))
    }
    fn counts(&self) -> StoreFuture<'_, StatusCounts> {
        self.wrap(self.inner.counts())
    }
    fn insert_trigger(&self, t: Trigger) -> StoreFuture<'_, ()> {
        self.wrap(self.inner.insert_trigger(t))
    }
    fn get_trigger<'a>(&'a self, id: &'a str) -> StoreFuture<'a, Option<Trigger>> {
        self.wrap(self.inner.get_trigger(id))
    }
    fn list_triggers<'a>(&'a self, filter: &'a TriggerFilter) -> StoreFuture<'a, Vec<Trigger>> {
        self.wrap(self.inner.list_triggers(filter))
    }
    fn trigger_states<'a>(&'a self, filter: &'a TriggerFilter) -> StoreFuture<'a, Vec<TriggerState>> {
        self.wrap(self.inner.trigger_states(filter))
    }
    fn update_trigger<'a>(&'a self, id: &'a str, edit: TriggerEdit<'a>) -> StoreFuture<'a, Option<Result<Trigger, EngineError>>> {
        self.wrap(self.inner.update_trigger(id, edit))
    }
    fn remove_trigger<'a>(&'a self, id: &'a str) -> StoreFuture<'a, bool> {
        self.wrap(self.inner.remove_trigger(id))
    }
    fn fire<'a>(&'a self, params: FireParams<'a>) -> StoreFuture<'a, Fire> {
        let f = self.inner.fire(params);
        let hook = self.after_fire.lock().unwrap().take();
        if let Some(h) = hook {
            h();
        }
        self.wrap(f)
    }
    fn trigger_changes(&self, since: u64) -> StoreFuture<'_, TriggerChanges> {
        self.wrap(self.inner.trigger_changes(since))
    }
}
