//! A driver with something to clean up after it (a temporary directory, a
//! schema), delegating every call: the store is dropped first, then the
//! guard. Included by `temp_sqlite.rs` and `temp_pg.rs`.
#![allow(dead_code)]

use enact_background_core::error::EngineError;
use enact_background_core::model::*;
use enact_background_core::store::*;

pub struct Guarded<D, G> {
    /// Dropped first: connections close before the guard cleans up.
    pub store: D,
    pub guard: G,
}

impl<D: Driver, G: Send + Sync + 'static> Driver for Guarded<D, G> {
    fn name(&self) -> &'static str {
        self.store.name()
    }
    fn ready(&self) -> StoreFuture<'_, ()> {
        self.store.ready()
    }
    fn close(&self) -> StoreFuture<'_, ()> {
        self.store.close()
    }
    fn shared(&self) -> bool {
        self.store.shared()
    }
    fn signals(&self) -> Option<tokio::sync::broadcast::Receiver<Signal>> {
        self.store.signals()
    }
    fn publish<'a>(&'a self, worker: &'a str, callables: Vec<String>, until: Timestamp) -> StoreFuture<'a, ()> {
        self.store.publish(worker, callables, until)
    }
    fn served(&self, names: Vec<String>, now: Timestamp) -> StoreFuture<'_, Vec<bool>> {
        self.store.served(names, now)
    }
    fn get_watched<'a>(&'a self, id: &'a str) -> StoreFuture<'a, Option<BackgroundExecution>> {
        self.store.get_watched(id)
    }
    fn insert_many(&self, rows: Vec<NewExecution>) -> StoreFuture<'_, Vec<Inserted>> {
        self.store.insert_many(rows)
    }
    fn get<'a>(&'a self, id: &'a str) -> StoreFuture<'a, Option<BackgroundExecution>> {
        self.store.get(id)
    }
    fn list<'a>(&'a self, filter: &'a ExecutionFilter) -> StoreFuture<'a, Vec<BackgroundExecution>> {
        self.store.list(filter)
    }
    fn claim(&self, params: ClaimParams) -> StoreFuture<'_, Vec<BackgroundExecution>> {
        self.store.claim(params)
    }
    fn finish_many(&self, rows: Vec<Finish>) -> StoreFuture<'_, Vec<Finished>> {
        self.store.finish_many(rows)
    }
    fn cancel<'a>(&'a self, id: &'a str, at: Timestamp) -> StoreFuture<'a, CancelOutcome> {
        self.store.cancel(id, at)
    }
    fn bind<'a>(&'a self, id: &'a str, result: TargetBindingResult) -> StoreFuture<'a, Option<BackgroundExecution>> {
        self.store.bind(id, result)
    }
    fn stage_due(&self, now_ms: i64) -> StoreFuture<'_, Staged> {
        self.store.stage_due(now_ms)
    }
    fn heartbeat<'a>(&'a self, worker: &'a str, ids: &'a [String], lease_until: Timestamp) -> StoreFuture<'a, usize> {
        self.store.heartbeat(worker, ids, lease_until)
    }
    fn rescue_expired(&self, now: Timestamp, max_stalls: u32) -> StoreFuture<'_, Vec<Rescued>> {
        self.store.rescue_expired(now, max_stalls)
    }
    fn prune(&self, keep: usize) -> StoreFuture<'_, usize> {
        self.store.prune(keep)
    }
    fn breakdown(&self) -> StoreFuture<'_, Vec<Tally>> {
        self.store.breakdown()
    }
    fn progress_many(&self, rows: Vec<Progress>) -> StoreFuture<'_, Vec<bool>> {
        self.store.progress_many(rows)
    }
    fn retry<'a>(&'a self, id: &'a str, at: Timestamp) -> StoreFuture<'a, RetryOutcome> {
        self.store.retry(id, at)
    }
    fn counts(&self) -> StoreFuture<'_, StatusCounts> {
        self.store.counts()
    }
    fn insert_trigger(&self, t: Trigger) -> StoreFuture<'_, ()> {
        self.store.insert_trigger(t)
    }
    fn get_trigger<'a>(&'a self, id: &'a str) -> StoreFuture<'a, Option<Trigger>> {
        self.store.get_trigger(id)
    }
    fn list_triggers<'a>(&'a self, filter: &'a TriggerFilter) -> StoreFuture<'a, Vec<Trigger>> {
        self.store.list_triggers(filter)
    }
    fn trigger_states<'a>(&'a self, filter: &'a TriggerFilter) -> StoreFuture<'a, Vec<TriggerState>> {
        self.store.trigger_states(filter)
    }
    fn update_trigger<'a>(&'a self, id: &'a str, edit: TriggerEdit<'a>) -> StoreFuture<'a, Option<Result<Trigger, EngineError>>> {
        self.store.update_trigger(id, edit)
    }
    fn remove_trigger<'a>(&'a self, id: &'a str) -> StoreFuture<'a, bool> {
        self.store.remove_trigger(id)
    }
    fn fire<'a>(&'a self, params: FireParams<'a>) -> StoreFuture<'a, Fire> {
        self.store.fire(params)
    }
    fn trigger_changes(&self, since: u64) -> StoreFuture<'_, TriggerChanges> {
        self.store.trigger_changes(since)
    }
}
