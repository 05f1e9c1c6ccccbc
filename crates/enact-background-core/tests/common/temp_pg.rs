//! A PostgreSQL store in a schema of its own on `DATABASE_URL`, dropped
//! when the store is dropped. Without `DATABASE_URL` it says loudly that
//! the test did not run; with it set but unreachable the test fails.
//! Include with `#[path = "common/temp_pg.rs"] mod temp_pg;`.
#![allow(dead_code)]

use std::sync::atomic::{AtomicU32, Ordering};

use enact_background_core::error::EngineError;
use enact_background_core::model::*;
use enact_background_core::postgres::{PgOptions, PgStore};
use enact_background_core::store::*;

pub struct TempPg {
    pub store: PgStore,
    /// The store's connection string (its connections named after the schema).
    pub url: String,
    /// `DATABASE_URL` itself, for the test's own connections.
    pub base_url: String,
    pub schema: String,
}

/// `DATABASE_URL`, or `None` after saying loudly that the test does not run.
pub fn database_url() -> Option<String> {
    match std::env::var("DATABASE_URL") {
        Ok(url) if !url.is_empty() => Some(url),
        _ => {
            eprintln!("!!! DATABASE_URL is not set: this PostgreSQL test did NOT run (set it, e.g. postgres://root@127.0.0.1:5432/test)");
            None
        }
    }
}

/// A schema name no other test uses.
pub fn fresh_schema(prefix: &str) -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    format!("{prefix}_{}_{}_{}", std::process::id(), N.fetch_add(1, Ordering::Relaxed), fastrand::u32(..))
}

impl TempPg {
    pub fn new(options: PgOptions) -> Option<Self> {
        let url = database_url()?;
        let schema = fresh_schema("t");
        // Its connections are named after the schema, so that a test can
        // kill its own and no other test's.
        let sep = if url.contains('?') { '&' } else { '?' };
        let base_url = url.clone();
        let url = format!("{url}{sep}application_name={schema}");
        let store = PgStore::new(&url, PgOptions { schema: schema.clone(), ..options }).expect("the store is made");
        Some(Self { store, url, base_url, schema })
    }

    /// Another store over the same schema (another engine).
    pub fn peer(&self, options: PgOptions) -> PgStore {
        PgStore::new(&self.url, PgOptions { schema: self.schema.clone(), ..options }).expect("the store is made")
    }
}

/// Drops `schema` on `url`, from a thread of its own (works inside and
/// outside a runtime).
pub fn drop_schema(url: &str, schema: &str) {
    let (url, schema) = (url.to_owned(), schema.to_owned());
    let _ = std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a runtime");
        rt.block_on(async {
            if let Ok((client, conn)) = tokio_postgres::connect(&url, tokio_postgres::NoTls).await {
                tokio::spawn(conn);
                let _ = client.batch_execute(&format!("DROP SCHEMA IF EXISTS {schema} CASCADE")).await;
            }
        });
    })
    .join();
}

impl Drop for TempPg {
    fn drop(&mut self) {
        drop_schema(&self.base_url, &self.schema);
    }
}

impl Driver for TempPg {
    fn name(&self) -> &'static str {
        self.store.name()
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
