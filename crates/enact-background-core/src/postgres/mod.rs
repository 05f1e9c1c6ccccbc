//! The shared durable store (DESIGN §5): executions, triggers with their
//! counts, schedule cursors, threshold arming, webhook replay ids, the
//! trigger change log and the callables each engine serves, in one
//! PostgreSQL schema that any number of engines, in any number of
//! processes and machines, use together as one engine.
//!
//! **Connections.** A pool (`deadpool-postgres` over `tokio-postgres`) of
//! [`PgOptions::pool_size`] connections for calls, and one more connection
//! that only `LISTEN`s. Each call runs on the tokio runtime (never on the
//! caller's thread), is bounded by [`PgOptions::call_timeout`] (an answer
//! after it says the outcome is unknown), and is tried again on a fresh
//! connection when its connection was lost before it answered (a killed
//! backend aborts what it had not committed). New connections are bounded
//! by [`PgOptions::connect_timeout`]. The schema is created or migrated by
//! the first call (see `schema.rs`), so [`PgStore::new`] does no I/O.
//!
//! **Claims.** Ready work is found with a skip scan over the
//! `(lvl, tenant, ticket)` index — one probe per tenant waiting at a level
//! — and a few heads of each tenant; the engine picks among them as the
//! other stores do (highest level first, tenants in turn by their oldest
//! head, oldest first within a tenant, callables at their limit passed
//! over), and takes what it picked with `FOR UPDATE SKIP LOCKED`, so
//! engines claiming together never wait for each other and never take the
//! same attempt. When the claim must respect tenant or callable limits it
//! runs under a transaction-level advisory lock and counts what runs on
//! every engine: the limits hold cluster-wide.
//!
//! **Signals.** Triggers in the schema `NOTIFY` the channel when work
//! becomes claimable, when a watched execution settles and when triggers
//! change; the listening connection turns them into [`Signal`]s. When it
//! is lost it reconnects, with backoff, and sends [`Signal::Lost`].
//!
//! **Fires and trigger edits** run caller code (building the execution,
//! editing the trigger) and so read first, run it, and write under a
//! version check on the definition, as the SQLite store does; the write is
//! one transaction holding the trigger's row lock, so gates, counts,
//! cursors (each schedule tick once, whatever the number of engines),
//! arming and webhook ids are atomic cluster-wide.

mod ops;
mod schema;

use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod};
use tokio::sync::{broadcast, Notify, OnceCell};
use tokio_postgres::NoTls;

use crate::error::EngineError;
use crate::model::{BackgroundExecution, TargetBindingResult, Timestamp, Trigger};
use crate::store::*;

pub use schema::SCHEMA_VERSION;

/// How a [`PgStore`] connects and behaves.
#[derive(Clone, Debug)]
pub struct PgOptions {
    /// The schema holding the tables (default `enact_background`): engines
    /// sharing a database and schema act as one engine.
    pub schema: String,
    /// Connections for calls (default 8).
    pub pool_size: usize,
    /// Longest wait for a new connection (default 5 s).
    pub connect_timeout: Duration,
    /// Longest wait for any call (default 30 s).
    pub call_timeout: Duration,
    /// Webhook message ids remembered per trigger (the replay budget).
    pub replay_capacity: usize,
}

impl Default for PgOptions {
    fn default() -> Self {
        Self {
            schema: "enact_background".into(),
            pool_size: 8,
            connect_timeout: Duration::from_secs(5),
            call_timeout: Duration::from_secs(30),
            replay_capacity: crate::memory::MemoryConfig::default().replay_capacity,
        }
    }
}

/// A failure inside a call: the store error, and whether the connection
/// was lost before the call answered (it is then tried again).
#[derive(Debug)]
pub(crate) struct Fault {
    pub err: StoreError,
    pub lost: bool,
}

impl Fault {
    pub(crate) fn fatal(message: String) -> Self {
        Self { err: StoreError::unavailable(message), lost: false }
    }
}

impl From<StoreError> for Fault {
    fn from(err: StoreError) -> Self {
        Self { err, lost: false }
    }
}

/// A `tokio-postgres` error as a [`Fault`]: its server message when the
/// server sent one.
pub(crate) fn fault(e: tokio_postgres::Error) -> Fault {
    let admin = e.code().is_some_and(|c| {
        *c == tokio_postgres::error::SqlState::ADMIN_SHUTDOWN || *c == tokio_postgres::error::SqlState::CRASH_SHUTDOWN
    });
    let lost = e.is_closed() || admin;
    let message = match e.as_db_error() {
        Some(db) => format!("{} ({})", db.message(), db.code().code()),
        None => {
            let mut m = e.to_string();
            if let Some(src) = std::error::Error::source(&e) {
                m = format!("{m}: {src}");
            }
            m
        }
    };
    Fault { err: StoreError::unavailable(message), lost }
}

/// A pool error (no connection could be had) as a [`Fault`].
fn pool_fault(e: deadpool_postgres::PoolError) -> Fault {
    use deadpool_postgres::PoolError;
    let message = match e {
        PoolError::Timeout(_) => "no connection could be made or freed in time".to_owned(),
        PoolError::Backend(e) => return fault(e),
        PoolError::Closed => "the store is closed".to_owned(),
        other => other.to_string(),
    };
    Fault { err: StoreError::unavailable(message), lost: false }
}

/// What the store holds, shared by its calls and its listener.
pub(crate) struct Inner {
    pool: Pool,
    pg: tokio_postgres::Config,
    pub(crate) schema: String,
    channel: String,
    /// `host:port/db` for messages (never the password).
    target: String,
    pub(crate) options: PgOptions,
    migrated: OnceCell<()>,
    signals: broadcast::Sender<Signal>,
    closed: AtomicBool,
    stop: Arc<Notify>,
    /// The runtime calls run on (the first one seen).
    runtime: std::sync::OnceLock<tokio::runtime::Handle>,
    /// Calls running; `close` waits for them.
    inflight: std::sync::atomic::AtomicUsize,
    idle: Notify,
    /// The listener has LISTENed once.
    listening: AtomicBool,
    listening_now: Notify,
}

/// The PostgreSQL driver. Cheap to clone.
#[derive(Clone)]
pub struct PgStore {
    inner: Arc<Inner>,
}

fn is_identifier(s: &str) -> bool {
    let mut chars = s.chars();
    chars.next().is_some_and(|c| c.is_ascii_lowercase() || c == '_')
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        && s.len() <= 50
        && !s.starts_with("pg_")
}

impl PgStore {
    /// A store over the database at `url` (`postgres://user@host:port/db`,
    /// or key=value form), connecting on first use: no I/O here. Refuses a
    /// URL that does not parse and a schema that is not a plain lowercase
    /// identifier.
    pub fn new(url: &str, options: PgOptions) -> StoreResult<Self> {
        let mut pg: tokio_postgres::Config =
            url.parse().map_err(|e| StoreError::unavailable(format!("store.postgres: not a PostgreSQL connection string ({e})")))?;
        if !is_identifier(&options.schema) {
            return Err(StoreError::unavailable(format!(
                "store.schema: {:?} is not a plain schema name (lowercase letters, digits and _, at most 50, not starting with a digit or pg_)",
                options.schema
            )));
        }
        pg.connect_timeout(options.connect_timeout);
        // The claim's estimates (a recursive skip scan, LATERAL heads) cross
        // jit_above_cost, and compiling it took ~40 ms of a 0.7 ms query:
        // JIT is off for the store's sessions.
        let session = match pg.get_options() {
            Some(o) if !o.is_empty() => format!("{o} -c jit=off"),
            _ => "-c jit=off".to_owned(),
        };
        pg.options(&session);
        pg.keepalives(true);
        pg.keepalives_idle(Duration::from_secs(30));
        if pg.get_application_name().is_none() {
            pg.application_name("enact-background");
        }
        let target = describe(&pg);
        let manager = Manager::from_config(pg.clone(), NoTls, ManagerConfig { recycling_method: RecyclingMethod::Fast });
        let pool = Pool::builder(manager)
            .max_size(options.pool_size.max(1))
            .runtime(deadpool_postgres::Runtime::Tokio1)
            .wait_timeout(Some(options.call_timeout))
            .create_timeout(Some(options.connect_timeout))
            .recycle_timeout(Some(options.connect_timeout))
            .build()
            .map_err(|e| StoreError::unavailable(format!("postgres store ({target}): {e}")))?;
        let channel = format!("enact_bg_{}", options.schema);
        let (signals, _) = broadcast::channel(4096);
        Ok(Self {
            inner: Arc::new(Inner {
                pool,
                pg,
                schema: options.schema.clone(),
                channel,
                target,
                options,
                migrated: OnceCell::new(),
                signals,
                closed: AtomicBool::new(false),
                stop: Arc::new(Notify::new()),
                runtime: tokio::runtime::Handle::try_current().map(std::sync::OnceLock::from).unwrap_or_default(),
                inflight: std::sync::atomic::AtomicUsize::new(0),
                idle: Notify::new(),
                listening: AtomicBool::new(false),
                listening_now: Notify::new(),
            }),
        })
    }

    /// Connects and creates or migrates the schema now (the first call does
    /// it otherwise), answering `ENACT_STORE` when the database cannot be
    /// reached within the connect timeout or the schema is refused.
    pub fn open(&self) -> StoreFuture<'static, ()> {
        self.call("open", |_| async { Ok(()) })
    }

    /// The schema.
    pub fn schema(&self) -> &str {
        &self.inner.schema
    }

    /// Runs `f` on the runtime with a ready schema, bounded by the call
    /// timeout; tried again (at most twice) on a fresh connection when its
    /// connection was lost before it answered.
    fn call<T, F, Fut>(&self, what: &'static str, f: F) -> StoreFuture<'static, T>
    where
        T: Send + 'static,
        F: Fn(Arc<Inner>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<T, Fault>> + Send + 'static,
    {
        let inner = self.inner.clone();
        Box::pin(async move {
            if inner.closed.load(Ordering::SeqCst) {
                return Err(inner.closed_error());
            }
            // The call runs on the runtime, wherever it was first polled
            // (the executor polls store futures once in place).
            let Some(runtime) = tokio::runtime::Handle::try_current().ok().or_else(|| inner.runtime.get().cloned()) else {
                return Err(StoreError::unavailable("postgres store: called outside a tokio runtime"));
            };
            let _ = inner.runtime.set(runtime.clone());
            let timeout = inner.options.call_timeout;
            let target = inner.target.clone();
            inner.inflight.fetch_add(1, Ordering::SeqCst);
            let task = runtime.spawn(async move {
                let _done = Inflight(inner.clone());
                let work = async {
                    let mut tries = 0;
                    loop {
                        let r = match inner.ready().await {
                            Ok(()) => f(inner.clone()).await,
                            Err(e) => Err(e),
                        };
                        match r {
                            Err(e) if e.lost && tries < 2 && !inner.closed.load(Ordering::SeqCst) => {
                                tries += 1;
                                tokio::time::sleep(Duration::from_millis(20 * tries)).await;
                            }
                            other => return other,
                        }
                    }
                };
                tokio::time::timeout(timeout, work).await
            });
            let t0 = std::time::Instant::now();
            let r = task.await;
            if std::env::var("ENACT_PG_TRACE").is_ok() && t0.elapsed() > Duration::from_millis(100) {
                eprintln!("slow call {what}: {:?}", t0.elapsed());
            }
            match r {
                Ok(Ok(Ok(v))) => Ok(v),
                Ok(Ok(Err(fault))) => Err(match fault.err {
                    StoreError::Unavailable { message, source } => {
                        StoreError::Unavailable { message: format!("postgres store ({target}): {what}: {message}"), source }
                    }
                    other => other,
                }),
                Ok(Err(_)) => Err(StoreError::unavailable(format!(
                    "postgres store ({target}): {what} did not answer within {} ms; its outcome is unknown",
                    timeout.as_millis()
                ))),
                Err(join) => Err(StoreError::unavailable(format!("postgres store ({target}): {what} failed inside: {join}"))),
            }
        })
    }

    /// A stored trigger with its definition version, cursor and arming.
    fn trigger_row(&self, id: &str) -> StoreFuture<'static, Option<crate::columns::TriggerRow>> {
        let id = id.to_owned();
        self.call("reading a trigger", move |i| {
            let id = id.clone();
            async move { ops::get_trigger(&i, &id).await }
        })
    }

    /// Waits (at most the call timeout) for the calls made before, then
    /// ends the listener and the pool.
    async fn close_after_calls(&self) {
        let inner = &self.inner;
        inner.closed.store(true, Ordering::SeqCst);
        let deadline = tokio::time::Instant::now() + inner.options.call_timeout;
        loop {
            let idle = inner.idle.notified();
            tokio::pin!(idle);
            idle.as_mut().enable();
            if inner.inflight.load(Ordering::SeqCst) == 0 {
                break;
            }
            if tokio::time::timeout_at(deadline, idle).await.is_err() {
                break;
            }
        }
        self.stop();
    }

    /// Ends the listener, on drop of the last handle too.
    fn stop(&self) {
        self.inner.closed.store(true, Ordering::SeqCst);
        self.inner.stop.notify_waiters();
        self.inner.pool.close();
    }
}

/// The message of a store error without its "store unavailable: " prefix.
fn strip(e: &StoreError) -> String {
    match e {
        StoreError::Unavailable { message, .. } => message.clone(),
        other => other.to_string(),
    }
}

fn describe(pg: &tokio_postgres::Config) -> String {
    let host = pg
        .get_hosts()
        .first()
        .map(|h| match h {
            tokio_postgres::config::Host::Tcp(h) => h.clone(),
            tokio_postgres::config::Host::Unix(p) => p.display().to_string(),
        })
        .unwrap_or_else(|| "localhost".into());
    let port = pg.get_ports().first().copied().unwrap_or(5432);
    format!("{host}:{port}/{}", pg.get_dbname().unwrap_or("?"))
}

impl Inner {
    fn closed_error(&self) -> StoreError {
        StoreError::unavailable(format!("postgres store ({}): the store is closed", self.target))
    }

    /// Migrates once (the first call), then starts the listener.
    async fn ready(self: &Arc<Self>) -> Result<(), Fault> {
        self.migrated
            .get_or_try_init(|| async {
                let mut client = self.pool.get().await.map_err(|e| {
                    let Fault { err, lost } = pool_fault(e);
                    Fault { err: StoreError::unavailable(format!("cannot connect: {}", strip(&err))), lost }
                })?;
                schema::migrate(&mut client, &self.schema, &self.channel, &self.target).await?;
                // The first call (`open`) answers once notifications are
                // heard (or after the connect timeout: polling covers).
                let heard = self.listening_now.notified();
                tokio::pin!(heard);
                heard.as_mut().enable();
                tokio::spawn(listen(Arc::downgrade(self)));
                if !self.listening.load(Ordering::SeqCst) {
                    let _ = tokio::time::timeout(self.options.connect_timeout, heard).await;
                }
                Ok::<(), Fault>(())
            })
            .await
            .map(drop)
    }

    pub(crate) async fn client(&self) -> Result<deadpool_postgres::Client, Fault> {
        self.pool.get().await.map_err(pool_fault)
    }

    /// `template` with `{s}` replaced by the schema.
    pub(crate) fn q(&self, template: &str) -> String {
        template.replace("{s}", &self.schema)
    }
}

/// The listening connection: `LISTEN`s the channel and turns its
/// notifications into signals; reconnects after a loss (1 s, then up to
/// 5 s between tries) and signals [`Signal::Lost`] once back.
async fn listen(weak: std::sync::Weak<Inner>) {
    let mut backoff = Duration::from_millis(200);
    loop {
        let Some(inner) = weak.upgrade() else { return };
        if inner.closed.load(Ordering::SeqCst) {
            return;
        }
        let stopper = inner.stop.clone();
        let stop = stopper.notified();
        tokio::pin!(stop);
        stop.as_mut().enable();
        let connected = inner.pg.connect(NoTls).await;
        match connected {
            Ok((client, mut connection)) => {
                let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
                let pump = tokio::spawn(async move {
                    let mut stream = futures_util::stream::poll_fn(move |cx| connection.poll_message(cx));
                    use futures_util::StreamExt;
                    while let Some(m) = stream.next().await {
                        match m {
                            Ok(tokio_postgres::AsyncMessage::Notification(n)) => {
                                if tx.send(n.payload().to_owned()).is_err() {
                                    return;
                                }
                            }
                            Ok(_) => {}
                            Err(_) => return,
                        }
                    }
                });
                if client.batch_execute(&format!("LISTEN {}", inner.channel)).await.is_ok() {
                    backoff = Duration::from_millis(200);
                    // After every LISTEN, the first included: what was
                    // notified before it (while connecting) is looked at again.
                    let _ = inner.signals.send(Signal::Lost);
                    inner.listening.store(true, Ordering::SeqCst);
                    inner.listening_now.notify_waiters();
                    let signals = inner.signals.clone();
                    drop(inner);
                    loop {
                        tokio::select! {
                            m = rx.recv() => match m {
                                Some(p) => {
                                    let s = match p.as_bytes().first() {
                                        Some(b'w') => Signal::Work,
                                        Some(b't') => Signal::Triggers,
                                        Some(b's') => Signal::Settled(p[1..].to_owned()),
                                        _ => continue,
                                    };
                                    let _ = signals.send(s);
                                }
                                None => break,
                            },
                            _ = &mut stop => { pump.abort(); return; }
                        }
                    }
                }
                pump.abort();
            }
            Err(_) => {}
        }
        let Some(inner) = weak.upgrade() else { return };
        if inner.closed.load(Ordering::SeqCst) {
            return;
        }
        drop(inner);
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(Duration::from_secs(5));
    }
}

/// Counts a running call down when it ends.
struct Inflight(Arc<Inner>);

impl Drop for Inflight {
    fn drop(&mut self) {
        if self.0.inflight.fetch_sub(1, Ordering::SeqCst) == 1 {
            self.0.idle.notify_waiters();
        }
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.closed.store(true, Ordering::SeqCst);
        self.stop.notify_waiters();
    }
}

impl Driver for PgStore {
    fn name(&self) -> &'static str {
        "postgres"
    }

    fn close(&self) -> StoreFuture<'_, ()> {
        let me = self.clone();
        let Some(runtime) = tokio::runtime::Handle::try_current().ok().or_else(|| self.inner.runtime.get().cloned()) else {
            self.stop();
            return Box::pin(std::future::ready(Ok(())));
        };
        Box::pin(async move {
            let _ = runtime.spawn(async move { me.close_after_calls().await }).await;
            Ok(())
        })
    }

    fn shared(&self) -> bool {
        true
    }

    fn ready(&self) -> StoreFuture<'_, ()> {
        self.open()
    }

    fn signals(&self) -> Option<broadcast::Receiver<Signal>> {
        Some(self.inner.signals.subscribe())
    }

    fn publish<'a>(&'a self, worker: &'a str, callables: Vec<String>, until: Timestamp) -> StoreFuture<'a, ()> {
        let worker = worker.to_owned();
        self.call("publishing callables", move |i| ops::publish(i, worker.clone(), callables.clone(), crate::clock::millis(until)))
    }

    fn served(&self, names: Vec<String>, now: Timestamp) -> StoreFuture<'_, Vec<bool>> {
        self.call("looking up callables", move |i| ops::served(i, names.clone(), crate::clock::millis(now)))
    }

    fn queued_of(&self, callables: Vec<String>) -> StoreFuture<'_, u64> {
        self.call("counting waiting work", move |i| ops::queued_of(i, callables.clone()))
    }

    fn get_watched<'a>(&'a self, id: &'a str) -> StoreFuture<'a, Option<BackgroundExecution>> {
        let id = id.to_owned();
        self.call("watching an execution", move |i| ops::get_watched(i, id.clone()))
    }

    fn insert_many(&self, rows: Vec<NewExecution>) -> StoreFuture<'_, Vec<Inserted>> {
        let batch = match ops::InsertBatch::encode(rows) {
            Ok(b) => Arc::new(b),
            Err(e) => return Box::pin(std::future::ready(Err(e))),
        };
        self.call("inserting executions", move |i| ops::insert_many(i, batch.clone()))
    }

    fn get<'a>(&'a self, id: &'a str) -> StoreFuture<'a, Option<BackgroundExecution>> {
        let id = id.to_owned();
        self.call("reading an execution", move |i| ops::get(i, id.clone()))
    }

    fn list<'a>(&'a self, filter: &'a ExecutionFilter) -> StoreFuture<'a, Vec<BackgroundExecution>> {
        let filter = filter.clone();
        self.call("listing executions", move |i| ops::list(i, filter.clone()))
    }

    fn claim(&self, params: ClaimParams) -> StoreFuture<'_, Vec<BackgroundExecution>> {
        let params = Arc::new(params);
        self.call("claiming work", move |i| ops::claim(i, params.clone()))
    }

    fn finish_many(&self, rows: Vec<Finish>) -> StoreFuture<'_, Vec<Finished>> {
        let rows = match ops::FinishBatch::encode(rows) {
            Ok(b) => Arc::new(b),
            Err(e) => return Box::pin(std::future::ready(Err(e))),
        };
        self.call("finishing executions", move |i| ops::finish_many(i, rows.clone()))
    }

    fn cancel<'a>(&'a self, id: &'a str, at: Timestamp) -> StoreFuture<'a, CancelOutcome> {
        let id = id.to_owned();
        self.call("cancelling an execution", move |i| ops::cancel(i, id.clone(), at))
    }

    fn bind<'a>(&'a self, id: &'a str, result: TargetBindingResult) -> StoreFuture<'a, Option<BackgroundExecution>> {
        let id = id.to_owned();
        let text = match serde_json::to_string(&result) {
            Ok(t) => t,
            Err(e) => return Box::pin(std::future::ready(Err(StoreError::unavailable(e.to_string())))),
        };
        let success = result.success;
        self.call("binding an execution", move |i| ops::bind(i, id.clone(), text.clone(), success))
    }

    fn stage_due(&self, now_ms: i64) -> StoreFuture<'_, Staged> {
        self.call("staging delayed work", move |i| ops::stage_due(i, now_ms))
    }

    fn heartbeat<'a>(&'a self, worker: &'a str, ids: &'a [String], lease_until: Timestamp) -> StoreFuture<'a, usize> {
        let (worker, ids) = (worker.to_owned(), ids.to_vec());
        self.call("renewing leases", move |i| ops::heartbeat(i, worker.clone(), ids.clone(), crate::clock::millis(lease_until)))
    }

    fn renew<'a>(&'a self, worker: &'a str, ids: &'a [String], lease_until: Timestamp) -> StoreFuture<'a, Vec<String>> {
        let (worker, ids) = (worker.to_owned(), ids.to_vec());
        self.call("renewing leases", move |i| ops::renew(i, worker.clone(), ids.clone(), crate::clock::millis(lease_until)))
    }

    fn rescue_expired(&self, now: Timestamp, max_stalls: u32) -> StoreFuture<'_, Vec<Rescued>> {
        self.call("rescuing expired leases", move |i| ops::rescue_expired(i, now, max_stalls))
    }

    fn prune(&self, keep: usize) -> StoreFuture<'_, usize> {
        self.call("pruning", move |i| ops::prune(i, keep))
    }

    fn counts(&self) -> StoreFuture<'_, StatusCounts> {
        self.call("counting executions", ops::counts)
    }

    fn breakdown(&self) -> StoreFuture<'_, Vec<Tally>> {
        self.call("counting executions by name", ops::breakdown)
    }

    fn progress_many(&self, rows: Vec<Progress>) -> StoreFuture<'_, Vec<bool>> {
        let mut values = Vec::with_capacity(rows.len());
        for p in &rows {
            match serde_json::to_string(&p.value) {
                Ok(t) => values.push(t),
                Err(e) => return Box::pin(std::future::ready(Err(StoreError::unavailable(e.to_string())))),
            }
        }
        let ids = Arc::new(rows.iter().map(|p| p.id.clone()).collect::<Vec<_>>());
        let attempts = Arc::new(rows.iter().map(|p| i32::try_from(p.attempt).unwrap_or(i32::MAX)).collect::<Vec<_>>());
        let values = Arc::new(values);
        self.call("storing progress", move |i| ops::progress_many(i, ids.clone(), attempts.clone(), values.clone()))
    }

    fn retry<'a>(&'a self, id: &'a str, at: Timestamp) -> StoreFuture<'a, RetryOutcome> {
        let id = id.to_owned();
        self.call("retrying an execution", move |i| ops::retry(i, id.clone(), at))
    }

    fn insert_trigger(&self, t: Trigger) -> StoreFuture<'_, ()> {
        let t = Arc::new(t);
        self.call("registering a trigger", move |i| ops::insert_trigger(i, t.clone()))
    }

    fn get_trigger<'a>(&'a self, id: &'a str) -> StoreFuture<'a, Option<Trigger>> {
        let row = self.trigger_row(id);
        Box::pin(async move { Ok(row.await?.map(|r| r.trigger)) })
    }

    fn list_triggers<'a>(&'a self, filter: &'a TriggerFilter) -> StoreFuture<'a, Vec<Trigger>> {
        let filter = filter.clone();
        self.call("listing triggers", move |i| {
            let filter = filter.clone();
            async move { Ok(ops::list_triggers(&i).await?.into_iter().filter(|t| filter.matches(t)).collect()) }
        })
    }

    fn trigger_states<'a>(&'a self, filter: &'a TriggerFilter) -> StoreFuture<'a, Vec<crate::store::TriggerState>> {
        let filter = filter.clone();
        self.call("reading trigger states", move |i| {
            let filter = filter.clone();
            async move { Ok(ops::trigger_states(&i, filter.tenant_id.clone()).await?.into_iter().filter(|s| filter.matches(&s.trigger)).collect()) }
        })
    }

    fn update_trigger<'a>(&'a self, id: &'a str, edit: TriggerEdit<'a>) -> StoreFuture<'a, Option<Result<Trigger, EngineError>>> {
        Box::pin(async move {
            loop {
                let Some(row) = self.trigger_row(id).await? else { return Ok(None) };
                let mut next = row.trigger.clone();
                if let Err(e) = edit(&mut next) {
                    return Ok(Some(Err(e)));
                }
                // An edit that keeps the threshold keeps its arming.
                let (a, b) = (&row.trigger.condition, &next.condition);
                let disarm = (&a.metric_name, a.threshold_operator, a.threshold_value) != (&b.metric_name, b.threshold_operator, b.threshold_value);
                let write = Arc::new(ops::TriggerWrite { id: id.to_owned(), read: row.trigger, next, def_version: row.def_version, disarm });
                match self.call("changing a trigger", move |i| ops::update_trigger(i, write.clone())).await? {
                    crate::columns::Edited::Written(t) => return Ok(Some(Ok(*t))),
                    crate::columns::Edited::Gone => return Ok(None),
                    crate::columns::Edited::Retry => continue,
                }
            }
        })
    }

    fn remove_trigger<'a>(&'a self, id: &'a str) -> StoreFuture<'a, bool> {
        let id = id.to_owned();
        self.call("removing a trigger", move |i| ops::remove_trigger(i, id.clone()))
    }

    fn fire<'a>(&'a self, p: FireParams<'a>) -> StoreFuture<'a, Fire> {
        Box::pin(async move {
            loop {
                let Some(row) = self.trigger_row(p.trigger_id).await? else { return Ok(Fire::Gone) };
                // A tick another engine already took: no transaction (and
                // no wait for the trigger's row lock). One not yet taken
                // is checked again under the lock.
                if let FireGate::Tick(at) = p.gate {
                    if row.cursor_ms.is_some_and(|cur| cur >= at) {
                        return Ok(Fire::Skipped);
                    }
                }
                // Built from the definition as stored; the transaction
                // re-applies every gate to the trigger as it then stands.
                let mut preview = row.trigger;
                let _ = apply_gate(&mut preview, p.now);
                let new = (p.build)(&preview);
                let commit = Arc::new(crate::columns::FireCommit {
                    trigger_id: p.trigger_id.to_owned(),
                    now: p.now,
                    gate: p.gate,
                    webhook: p.webhook.map(|m| (m.id.to_owned(), m.now_secs, m.expires_secs)),
                    new,
                    want_record: p.want_record,
                    def_version: row.def_version,
                });
                match self.call("firing a trigger", move |i| ops::fire(i, commit.clone())).await? {
                    crate::columns::FireStep::Done(fire) => return Ok(fire),
                    crate::columns::FireStep::Rebuild => continue,
                }
            }
        })
    }

    fn trigger_changes(&self, since: u64) -> StoreFuture<'_, TriggerChanges> {
        self.call("reading trigger changes", move |i| ops::trigger_changes(i, since))
    }
}
