//! The embedded durable store (DESIGN §5): one SQLite file keeps
//! executions with their results, triggers with their counts, schedule
//! cursors, threshold arming, webhook replay ids and the trigger change
//! log, so that one process keeps everything across crashes and restarts.
//!
//! **Threads and transactions.** One dedicated writer thread owns the only
//! connection (WAL journal, `synchronous` NORMAL or FULL, a busy timeout).
//! Every [`Driver`] call — reads included, so that every answer is
//! consistent with every acknowledged write — is a request on its channel;
//! the thread takes all requests queued (up to 1,024), runs them in ONE
//! transaction, each in its own savepoint (a request that fails is rolled
//! back alone and answered with its error; the others still commit),
//! commits once, and only then answers each through a
//! `tokio::sync::oneshot` channel. So a call's future is pending until its
//! commit, no SQLite I/O happens on the caller's thread, and many
//! concurrent calls share one fsync (group commit): throughput is bounded
//! by what a commit carries, not by one fsync per call. A commit that
//! fails (disk full, I/O error) answers every request of its batch with
//! `ENACT_STORE`; nothing of it was written. So does an error after which
//! SQLite rolls the whole transaction back on its own — it does when the
//! disk is full: the request that hit it fails its whole batch, the
//! requests after it are not run, and the writer's counters go back to
//! what they were (a request whose savepoint is rolled back puts them
//! back too). The next batch starts afresh, so the store takes calls
//! again as soon as there is space, without a reopen.
//!
//! **Bounded calls.** No call waits longer than
//! [`SqliteOptions::call_timeout`] (default 30 s), even if the writer is
//! stuck in a statement or in the commit's I/O: a watchdog thread answers
//! each call at its deadline unless the writer answered it first, and
//! which of the two answers is decided under the call's lock. A call the
//! writer has not started by its deadline is answered `ENACT_STORE`,
//! "not run", and the writer skips it when it gets there (it also checks
//! the deadline itself before running a call). A call the writer started
//! whose transaction has not committed by its deadline is answered
//! `ENACT_STORE` saying its outcome is unknown: it may still commit once
//! the writer goes on — the one answer that cannot say what happened, and
//! it only comes from a writer blocked for the whole timeout. A call
//! whose future was dropped before the writer reached it (its caller
//! stopped waiting, or was told it failed, as `ready_now` does) is not
//! run either.
//!
//! **Calls that run caller code.** [`Driver::fire`] builds its execution
//! and [`Driver::update_trigger`] edits its trigger with closures the
//! caller lends for the life of the call's future; the writer thread
//! cannot hold such borrows (a future may be dropped while its request is
//! queued), so both read the trigger first, run the closure on the
//! caller's side (CPU only) and send the result to be written under a
//! version check on the trigger's *definition*: a fire re-checks every
//! gate on the stored trigger in its transaction and writes only if no
//! edit changed the definition meanwhile (concurrent fires do not
//! conflict: builds read only the definition); an edit writes only if no
//! other edit came first, keeping the count, time and status of fires
//! made meanwhile. Either reads again and retries otherwise.
//!
//! **Schema** (see `schema.rs`; versioned by `user_version`, migrated at
//! open; a newer version is refused naming both): `executions` (the
//! queue's columns — status, class, priority, tenant, callable, ticket,
//! due time, attempt, stalls, lease — and the record: its fixed fields as
//! one JSON body, output, error, metadata, trigger source and binding
//! result each in its own column, so that each may nest as deep as JSON
//! decoding allows); `turns` (the tenants waiting at each class and
//! priority, in round-robin order); `triggers` (the trigger JSON kept
//! current, status, fire count, schedule cursor, arming, versions);
//! `webhook_ids`; `trigger_changes`; `pruned` (tallies, so that counts add
//! up to every execution ever inserted, as in the memory driver). Claims
//! read only the head of each tenant's line through a partial index on
//! ready work: the driver keeps nothing per execution in memory, so a
//! backlog of a million rows stays on disk.
//!
//! **Crash recovery.** At open, executions left `running` (their process
//! died: the lock below says no other process has the file open) count a
//! stall each and are queued again at once, keeping their attempt count;
//! past `max_stalls` (default 1) they end `failed` with
//! [`crate::store::stalled_error`]. Delayed executions keep their due time
//! and retries their attempt count and error.
//!
//! **One process at a time.** `open` takes an exclusive advisory lock
//! (`flock`) on a sidecar file `<path>-lock` and holds it while the store
//! lives; a second open of the same file — by another process, or by this
//! one — is refused with `ENACT_STORE` naming the file. (Sharing a file
//! between processes would need leases and claims across processes: that
//! is what the PostgreSQL driver is for.)
//!
//! **Faults** are [`StoreError::Unavailable`] (`ENACT_STORE`), never a
//! panic: an unwritable directory, a file that is not SQLite, a SQLite
//! file of something else, a newer schema, a file already open, a full
//! disk (the message says so), a call not answered within its timeout. A
//! corrupt page is reported when a statement reads it.

mod deadline;
mod ops;
mod schema;
mod writer;

use std::fs::OpenOptions;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rusqlite::{Connection, OpenFlags};

use crate::error::EngineError;
use crate::model::{BackgroundExecution, TargetBindingResult, Timestamp, Trigger};
use crate::store::{
    apply_gate, CancelOutcome, ClaimParams, Driver, ExecutionFilter, Finish, Finished, Fire, FireParams, Inserted, NewExecution, Rescued, Staged,
    Progress, RetryOutcome, StatusCounts, StoreError, StoreFuture, StoreResult, Tally, TriggerChanges, TriggerEdit, TriggerFilter,
};

pub use schema::SCHEMA_VERSION;
pub use writer::WriterStats;

use deadline::{Slot, Watchdog};
use ops::State;
use writer::{Hold, Job, Reply, Run, Writer};

/// SQLite's `synchronous` setting (the journal is always WAL).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Synchronous {
    /// Nothing acknowledged is lost when the process is killed; the last
    /// commits may be lost on power loss. The default.
    #[default]
    Normal,
    /// Also survives power loss: every commit waits for its fsync.
    Full,
}

/// How a [`SqliteStore`] is opened.
#[derive(Clone, Debug)]
pub struct SqliteOptions {
    /// Durability of commits (default [`Synchronous::Normal`]).
    pub synchronous: Synchronous,
    /// Unexpired webhook message ids each trigger remembers at most
    /// (default [`crate::memory::REPLAY_CAPACITY`]; 0 counts as 1).
    pub replay_capacity: usize,
    /// Keep at most this many finished executions, pruning the oldest
    /// about once a second (default `None`: keep them; the executor's
    /// pruner may prune instead).
    pub keep_finished: Option<usize>,
    /// Interruptions an execution survives at open before it ends
    /// `failed` (default 1).
    pub max_stalls: u32,
    /// How long a statement waits for a lock held by a reader (default
    /// 5 s).
    pub busy_timeout: Duration,
    /// How long a call waits for its answer at most (default 30 s; at
    /// least 1 ms, at most a year). A call still queued behind a busy or blocked writer at
    /// its deadline is answered `ENACT_STORE` ("did not answer within …
    /// the call was not run") and is never run. A call already running
    /// whose transaction has not committed by its deadline (the writer is
    /// blocked in a statement or in the commit's I/O) is answered
    /// `ENACT_STORE` too, saying that its outcome is unknown: it may still
    /// commit once the writer is unblocked. That is the one answer that
    /// does not say what happened; it comes only from a writer stuck for
    /// the whole timeout. [`Driver::fire`] and [`Driver::update_trigger`]
    /// are bounded as a whole, not per step.
    pub call_timeout: Duration,
}

impl Default for SqliteOptions {
    fn default() -> Self {
        Self {
            synchronous: Synchronous::Normal,
            replay_capacity: crate::memory::REPLAY_CAPACITY,
            keep_finished: None,
            max_stalls: 1,
            busy_timeout: Duration::from_secs(5),
            call_timeout: Duration::from_secs(30),
        }
    }
}

/// The longest [`SqliteOptions::call_timeout`] (a longer one counts as
/// this): deadlines stay representable.
const MAX_CALL_TIMEOUT: Duration = Duration::from_secs(365 * 24 * 3600);

/// What crash recovery did at open.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Recovery {
    /// Executions found running and queued again (one stall each).
    pub requeued: usize,
    /// Executions found running that stalled more than `max_stalls`
    /// times and ended `failed`.
    pub failed: usize,
}

/// The SQLite store driver. See the module docs.
pub struct SqliteStore {
    /// Dropped first: answers what was queued and closes the connection.
    writer: Writer,
    /// Dropped after the writer: calls are answered at their deadline
    /// while the writer finishes.
    watchdog: Watchdog,
    name: Arc<str>,
    call_timeout: Duration,
    path: PathBuf,
    recovery: Recovery,
}

pub(crate) fn unavailable(what: &str, e: rusqlite::Error) -> StoreError {
    let message = match e.sqlite_error_code() {
        Some(rusqlite::ErrorCode::DiskFull) => format!("{what}: the disk is full ({e})"),
        Some(rusqlite::ErrorCode::DatabaseCorrupt) => format!("{what}: the file is corrupt ({e})"),
        Some(rusqlite::ErrorCode::NotADatabase) => format!("{what}: the file is not a SQLite database ({e})"),
        Some(rusqlite::ErrorCode::ReadOnly) | Some(rusqlite::ErrorCode::CannotOpen) | Some(rusqlite::ErrorCode::PermissionDenied) => {
            format!("{what}: the file cannot be written ({e})")
        }
        _ => format!("{what}: {e}"),
    };
    StoreError::Unavailable { message, source: Some(Arc::new(e)) }
}

fn open_error(path: &str, e: rusqlite::Error) -> StoreError {
    unavailable(&format!("sqlite store {path:?}"), e)
}

fn closed() -> StoreError {
    StoreError::unavailable("sqlite store: it is closed (its writer thread stopped)")
}

impl SqliteStore {
    /// Opens (creating if needed) the store file at `path`: takes the
    /// lock, migrates the schema, recovers executions left running, and
    /// starts the writer thread. Fails with [`StoreError::Unavailable`]
    /// (`ENACT_STORE`) on any fault, naming the file.
    pub fn open(path: impl AsRef<Path>, options: SqliteOptions) -> StoreResult<Self> {
        let path = path.as_ref().to_path_buf();
        let shown = path.display().to_string();
        let lock_path = PathBuf::from(format!("{shown}-lock"));
        let lock = OpenOptions::new().create(true).truncate(false).write(true).open(&lock_path).map_err(|e| {
            StoreError::unavailable(format!("sqlite store {shown:?}: cannot create its lock file {:?} (is the directory writable?): {e}", lock_path.display()))
        })?;
        match lock.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                return Err(StoreError::unavailable(format!(
                    "sqlite store {shown:?} is already open in another process (or another store of this one): its lock file {:?} is held",
                    lock_path.display()
                )))
            }
            Err(std::fs::TryLockError::Error(e)) => {
                return Err(StoreError::unavailable(format!("sqlite store {shown:?}: cannot lock {:?}: {e}", lock_path.display())))
            }
        }
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_CREATE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let conn = Connection::open_with_flags(&path, flags).map_err(|e| open_error(&shown, e))?;
        let sync = match options.synchronous {
            Synchronous::Normal => "NORMAL",
            Synchronous::Full => "FULL",
        };
        conn.busy_timeout(options.busy_timeout).map_err(|e| open_error(&shown, e))?;
        // Every statement of the driver stays prepared (rusqlite keeps 16).
        conn.set_prepared_statement_cache_capacity(256);
        let mode: String = conn.query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0)).map_err(|e| open_error(&shown, e))?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(StoreError::unavailable(format!("sqlite store {shown:?}: cannot use the WAL journal (journal_mode is {mode})")));
        }
        conn.execute_batch(&format!("PRAGMA synchronous = {sync}; PRAGMA foreign_keys = OFF; PRAGMA temp_store = MEMORY; PRAGMA wal_autocheckpoint = 10000"))
            .map_err(|e| open_error(&shown, e))?;
        schema::migrate(&conn, &shown)?;
        let mut state = State::load(&conn, options.replay_capacity).map_err(|e| open_error(&shown, e))?;
        let recovery = Self::recover(&conn, &mut state, options.max_stalls).map_err(|e| match e {
            StoreError::Unavailable { message, source } => StoreError::Unavailable { message: format!("{message} (recovering {shown:?})"), source },
            other => other,
        })?;
        let name: Arc<str> = format!("sqlite store {shown:?}").into();
        let watchdog = Watchdog::start()?;
        let writer = Writer::start(conn, state, options.keep_finished, name.clone(), watchdog.watch().clone(), lock)?;
        let call_timeout = options.call_timeout.clamp(Duration::from_millis(1), MAX_CALL_TIMEOUT);
        Ok(Self { writer, watchdog, name, call_timeout, path, recovery })
    }

    fn recover(conn: &Connection, state: &mut State, max_stalls: u32) -> StoreResult<Recovery> {
        conn.execute_batch("BEGIN IMMEDIATE").map_err(|e| unavailable("sqlite store", e))?;
        match ops::recover(conn, state, max_stalls, chrono::Utc::now()) {
            Ok((requeued, failed)) => {
                conn.execute_batch("COMMIT").map_err(|e| unavailable("sqlite store", e))?;
                Ok(Recovery { requeued, failed })
            }
            Err(e) => {
                let _ = conn.execute_batch("ROLLBACK");
                Err(e)
            }
        }
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// What crash recovery did at open.
    pub fn recovery(&self) -> Recovery {
        self.recovery
    }

    /// The writer's counters: transactions committed and requests
    /// answered (group commit carries many requests per transaction).
    pub fn stats(&self) -> &WriterStats {
        &self.writer.stats
    }

    /// The deadline of a call made now.
    fn deadline(&self) -> Instant {
        Instant::now() + self.call_timeout
    }

    /// Runs `f` on the writer thread inside its batch transaction and
    /// answers its result once the transaction committed, or an error by
    /// [`SqliteOptions::call_timeout`].
    fn call<T: Send + 'static>(&self, f: impl FnOnce(&Connection, &mut State) -> StoreResult<T> + Send + 'static) -> StoreFuture<'static, T> {
        self.call_until(self.deadline(), f)
    }

    /// [`SqliteStore::call`] answered by `deadline`.
    fn call_until<T: Send + 'static>(
        &self,
        deadline: Instant,
        f: impl FnOnce(&Connection, &mut State) -> StoreResult<T> + Send + 'static,
    ) -> StoreFuture<'static, T> {
        let (slot, rx) = Slot::<T>::new(self.name.clone(), deadline, self.call_timeout);
        let answer = slot.clone();
        let run: Run = Box::new(move |conn, st| {
            let r = f(conn, st);
            let err = r.as_ref().err().cloned();
            let reply: Reply = Box::new(move |failure| answer.answer(failure.map_or(r, |e| Err(e.clone()))));
            (err, reply)
        });
        let key = self.watchdog.watch().watch(deadline, slot.clone());
        if let Err(job) = self.writer.send(Job { key, call: slot, run }) {
            job.call.fail(&closed());
            self.watchdog.watch().forget([key]);
        }
        Box::pin(async move { rx.await.map_err(|_| closed())? })
    }

    /// Test hook: sets SQLite's `max_page_count` on the writer's
    /// connection (not below the pages in use), answering the limit now
    /// in force. A small limit makes the file behave as a full disk.
    #[doc(hidden)]
    pub fn set_max_page_count(&self, pages: u64) -> StoreFuture<'static, u64> {
        let pages = i64::try_from(pages).unwrap_or(i64::MAX);
        self.call(move |c, _| {
            c.query_row(&format!("PRAGMA max_page_count = {pages}"), [], |r| r.get::<_, i64>(0))
                .map(|n| n.max(0) as u64)
                .map_err(|e| unavailable("sqlite store: cannot set max_page_count", e))
        })
    }

    /// Test hook: the writer stops before each COMMIT, as one blocked in
    /// the commit's I/O would, until the returned guard is dropped.
    #[doc(hidden)]
    pub fn hold_writer_before_commit(&self) -> WriterHold {
        self.writer.hold.arm();
        WriterHold { hold: self.writer.hold.clone() }
    }
}

/// See [`SqliteStore::hold_writer_before_commit`]; releases the writer
/// when dropped.
#[doc(hidden)]
pub struct WriterHold {
    hold: Arc<Hold>,
}

impl WriterHold {
    /// Blocks until the writer stopped before a COMMIT.
    pub fn wait_until_held(&self) {
        self.hold.wait_until_held();
    }
}

impl Drop for WriterHold {
    fn drop(&mut self) {
        self.hold.release();
    }
}

impl Driver for SqliteStore {
    fn name(&self) -> &'static str {
        "sqlite"
    }

    /// Commits what was asked before it, closes the connection and
    /// releases the file's lock (another store may open the file then).
    fn close(&self) -> StoreFuture<'_, ()> {
        let asked = self.call(|_, st| {
            st.closing = true;
            Ok(())
        });
        let ended = self.writer.ended.lock().ok().and_then(|mut g| g.take());
        Box::pin(async move {
            let asked = asked.await;
            // Closed before: nothing left to release.
            let Some(ended) = ended else { return Ok(()) };
            // Refused or stuck past its deadline: the writer ends (and the
            // file is released) when it can; the caller hears why now.
            asked?;
            let _ = ended.await;
            Ok(())
        })
    }

    fn insert_many(&self, rows: Vec<NewExecution>) -> StoreFuture<'_, Vec<Inserted>> {
        self.call(move |c, st| rows.into_iter().map(|r| ops::insert(c, st, r)).collect())
    }

    fn get<'a>(&'a self, id: &'a str) -> StoreFuture<'a, Option<BackgroundExecution>> {
        let id = id.to_owned();
        self.call(move |c, _| ops::get(c, &id))
    }

    fn list<'a>(&'a self, filter: &'a ExecutionFilter) -> StoreFuture<'a, Vec<BackgroundExecution>> {
        let filter = filter.clone();
        self.call(move |c, _| ops::list(c, &filter))
    }

    fn claim(&self, params: ClaimParams) -> StoreFuture<'_, Vec<BackgroundExecution>> {
        self.call(move |c, st| ops::claim(c, st, &params))
    }

    fn finish_many(&self, rows: Vec<Finish>) -> StoreFuture<'_, Vec<Finished>> {
        self.call(move |c, st| rows.into_iter().map(|r| ops::finish(c, st, r)).collect())
    }

    fn cancel<'a>(&'a self, id: &'a str, at: Timestamp) -> StoreFuture<'a, CancelOutcome> {
        let id = id.to_owned();
        self.call(move |c, st| ops::cancel(c, st, &id, at))
    }

    fn bind<'a>(&'a self, id: &'a str, result: TargetBindingResult) -> StoreFuture<'a, Option<BackgroundExecution>> {
        let id = id.to_owned();
        self.call(move |c, st| ops::bind(c, st, &id, result))
    }

    fn stage_due(&self, now_ms: i64) -> StoreFuture<'_, Staged> {
        self.call(move |c, st| ops::stage_due(c, st, now_ms))
    }

    fn heartbeat<'a>(&'a self, _worker: &'a str, ids: &'a [String], lease_until: Timestamp) -> StoreFuture<'a, usize> {
        let ids = ids.to_vec();
        self.call(move |c, _| ops::heartbeat(c, &ids, lease_until))
    }

    fn rescue_expired(&self, now: Timestamp, max_stalls: u32) -> StoreFuture<'_, Vec<Rescued>> {
        self.call(move |c, st| ops::rescue_expired(c, st, now, max_stalls))
    }

    fn prune(&self, keep: usize) -> StoreFuture<'_, usize> {
        self.call(move |c, st| ops::prune(c, st, keep))
    }

    fn counts(&self) -> StoreFuture<'_, StatusCounts> {
        self.call(|c, _| ops::counts(c))
    }

    fn breakdown(&self) -> StoreFuture<'_, Vec<Tally>> {
        self.call(|c, _| ops::breakdown(c))
    }

    fn progress_many(&self, rows: Vec<Progress>) -> StoreFuture<'_, Vec<bool>> {
        self.call(move |c, _| rows.iter().map(|p| ops::progress(c, p)).collect())
    }

    fn retry<'a>(&'a self, id: &'a str, at: Timestamp) -> StoreFuture<'a, RetryOutcome> {
        let id = id.to_owned();
        self.call(move |c, st| ops::retry(c, st, &id, at))
    }

    fn insert_trigger(&self, t: Trigger) -> StoreFuture<'_, ()> {
        self.call(move |c, st| ops::insert_trigger(c, st, &t))
    }

    fn get_trigger<'a>(&'a self, id: &'a str) -> StoreFuture<'a, Option<Trigger>> {
        let id = id.to_owned();
        self.call(move |c, _| Ok(ops::get_trigger(c, &id)?.map(|r| r.trigger)))
    }

    fn list_triggers<'a>(&'a self, filter: &'a TriggerFilter) -> StoreFuture<'a, Vec<Trigger>> {
        let filter = filter.clone();
        self.call(move |c, _| Ok(ops::list_triggers(c)?.into_iter().filter(|t| filter.matches(t)).collect()))
    }

    fn trigger_states<'a>(&'a self, filter: &'a TriggerFilter) -> StoreFuture<'a, Vec<crate::store::TriggerState>> {
        let filter = filter.clone();
        self.call(move |c, _| Ok(ops::trigger_states(c, filter.tenant_id.as_deref())?.into_iter().filter(|s| filter.matches(&s.trigger)).collect()))
    }

    fn update_trigger<'a>(&'a self, id: &'a str, edit: TriggerEdit<'a>) -> StoreFuture<'a, Option<Result<Trigger, EngineError>>> {
        let deadline = self.deadline();
        Box::pin(async move {
            loop {
                let key = id.to_owned();
                let Some(row) = self.call_until(deadline, move |c, _| ops::get_trigger(c, &key)).await? else { return Ok(None) };
                let mut next = row.trigger.clone();
                if let Err(e) = edit(&mut next) {
                    return Ok(Some(Err(e)));
                }
                // An edit that keeps the threshold keeps its arming: a value
                // already past it is not a new crossing. Another threshold
                // starts unarmed.
                let (a, b) = (&row.trigger.condition, &next.condition);
                let disarm = (&a.metric_name, a.threshold_operator, a.threshold_value) != (&b.metric_name, b.threshold_operator, b.threshold_value);
                let (key, read, t, def_version) = (id.to_owned(), row.trigger, next, row.def_version);
                match self.call_until(deadline, move |c, st| ops::update_trigger(c, st, &key, &read, t, def_version, disarm)).await? {
                    crate::columns::Edited::Written(t) => return Ok(Some(Ok(*t))),
                    crate::columns::Edited::Gone => return Ok(None),
                    // Another edit came first: edit its result.
                    crate::columns::Edited::Retry => continue,
                }
            }
        })
    }

    fn remove_trigger<'a>(&'a self, id: &'a str) -> StoreFuture<'a, bool> {
        let id = id.to_owned();
        self.call(move |c, st| ops::remove_trigger(c, st, &id))
    }

    fn fire<'a>(&'a self, p: FireParams<'a>) -> StoreFuture<'a, Fire> {
        let deadline = self.deadline();
        Box::pin(async move {
            loop {
                let key = p.trigger_id.to_owned();
                let Some(row) = self.call_until(deadline, move |c, _| ops::get_trigger(c, &key)).await? else { return Ok(Fire::Gone) };
                // Built from the definition as stored; the transaction
                // re-applies every gate to the trigger as it then stands.
                let mut preview = row.trigger;
                let _ = apply_gate(&mut preview, p.now);
                let commit = crate::columns::FireCommit {
                    trigger_id: p.trigger_id.to_owned(),
                    now: p.now,
                    gate: p.gate,
                    webhook: p.webhook.map(|m| (m.id.to_owned(), m.now_secs, m.expires_secs)),
                    new: (p.build)(&preview),
                    want_record: p.want_record,
                    def_version: row.def_version,
                };
                match self.call_until(deadline, move |c, st| ops::fire(c, st, commit)).await? {
                    crate::columns::FireStep::Done(fire) => return Ok(fire),
                    crate::columns::FireStep::Rebuild => continue,
                }
            }
        })
    }

    fn trigger_changes(&self, since: u64) -> StoreFuture<'_, TriggerChanges> {
        self.call(move |c, st| ops::trigger_changes(c, st, since))
    }
}
