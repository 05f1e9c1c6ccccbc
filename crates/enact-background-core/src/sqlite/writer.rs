//! The writer thread: it owns the one connection, takes every request
//! queued on its channel, runs them in ONE transaction (each request in
//! its own savepoint, so one that fails does not fail the others), commits
//! once, and only then answers each request through its slot (see
//! `deadline.rs`). That is the group commit: throughput is bounded by how
//! many requests one commit carries, not by one fsync per call.
//!
//! A batch whose transaction is lost — its COMMIT fails (disk full, I/O
//! error), SQLite rolls it back on its own after an error, or a savepoint
//! cannot be ended — answers every request it ran with `ENACT_STORE` and
//! runs none after; nothing of it was written, the writer's counters go
//! back to what they were before it, and the next batch starts afresh.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex};
use rusqlite::Connection;

use super::deadline::{Key, Pending, Watch};
use super::ops::State;
use crate::store::{StoreError, StoreResult};

/// Requests one transaction carries at most: a bound on how long the
/// first of them waits for its commit.
const MAX_BATCH: usize = 1024;

/// How often a store with `keep_finished` prunes at most.
const PRUNE_EVERY: Duration = Duration::from_secs(1);

/// What a request answers once its transaction ended: given the batch's
/// failure, if any.
pub(super) type Reply = Box<dyn FnOnce(Option<&StoreError>) + Send>;

/// What a request runs: against the connection, inside the batch's
/// transaction and its own savepoint. Answers its error, if it failed
/// (its savepoint is then rolled back), and how to deliver its answer
/// once the transaction ended.
pub(super) type Run = Box<dyn FnOnce(&Connection, &mut State) -> (Option<StoreError>, Reply) + Send>;

/// One request.
pub(super) struct Job {
    /// Its place in the watchdog, forgotten once it is answered.
    pub key: Key,
    /// Its answer, shared with the watchdog.
    pub call: Arc<dyn Pending>,
    pub run: Run,
}

/// Counters of the writer, for tests and diagnostics.
#[derive(Debug, Default)]
pub struct WriterStats {
    /// Transactions committed.
    pub commits: AtomicU64,
    /// Requests answered.
    pub requests: AtomicU64,
}

/// A test hook: while armed, the writer stops before each COMMIT, as a
/// writer blocked in the commit's I/O would.
#[derive(Default)]
pub(super) struct Hold {
    armed: AtomicBool,
    /// (armed, the writer is stopped at it)
    state: Mutex<(bool, bool)>,
    changed: Condvar,
}

impl Hold {
    pub(super) fn arm(&self) {
        self.state.lock().0 = true;
        self.armed.store(true, Ordering::SeqCst);
    }

    pub(super) fn release(&self) {
        self.armed.store(false, Ordering::SeqCst);
        self.state.lock().0 = false;
        self.changed.notify_all();
    }

    pub(super) fn wait_until_held(&self) {
        let mut s = self.state.lock();
        while s.0 && !s.1 {
            self.changed.wait(&mut s);
        }
    }

    fn stop_here(&self) {
        if !self.armed.load(Ordering::SeqCst) {
            return;
        }
        let mut s = self.state.lock();
        if s.0 {
            s.1 = true;
            self.changed.notify_all();
            while s.0 {
                self.changed.wait(&mut s);
            }
            s.1 = false;
        }
    }
}

/// The writer's handle: a channel; dropping every handle stops the thread
/// after it answered what was queued.
pub(super) struct Writer {
    tx: mpsc::Sender<Job>,
    pub(super) stats: Arc<WriterStats>,
    pub(super) hold: Arc<Hold>,
    thread: Option<std::thread::JoinHandle<()>>,
    /// Answered when the thread ended, after it closed the connection and
    /// released the file's lock.
    pub(super) ended: std::sync::Mutex<Option<tokio::sync::oneshot::Receiver<()>>>,
}

impl Writer {
    /// Starts the thread; it owns the connection and the file's `lock`,
    /// and releases both when it ends.
    pub(super) fn start(
        conn: Connection,
        state: State,
        keep_finished: Option<usize>,
        name: Arc<str>,
        watch: Watch,
        lock: std::fs::File,
    ) -> StoreResult<Self> {
        let (tx, rx) = mpsc::channel::<Job>();
        let (ended_tx, ended_rx) = tokio::sync::oneshot::channel();
        let stats = Arc::new(WriterStats::default());
        let hold = Arc::new(Hold::default());
        let ctx = Ctx { stats: stats.clone(), hold: hold.clone(), watch, keep: keep_finished, name };
        let thread = std::thread::Builder::new()
            .name("enact-sqlite".into())
            .spawn(move || {
                run(conn, state, rx, ctx);
                // The connection closed when `run` returned; only then the lock.
                drop(lock);
                let _ = ended_tx.send(());
            })
            .map_err(|e| StoreError::unavailable(format!("sqlite store: cannot start its writer thread: {e}")))?;
        Ok(Self { tx, stats, hold, thread: Some(thread), ended: std::sync::Mutex::new(Some(ended_rx)) })
    }

    /// Queues `job`; gives it back when the writer is gone.
    pub(super) fn send(&self, job: Job) -> Result<(), Job> {
        self.tx.send(job).map_err(|e| e.0)
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        // Closing the channel ends the loop once the queue is answered.
        let (dead, _) = mpsc::channel();
        self.tx = dead;
        if let Some(t) = self.thread.take() {
            if t.thread().id() != std::thread::current().id() {
                let _ = t.join();
            }
        }
    }
}

struct Ctx {
    stats: Arc<WriterStats>,
    hold: Arc<Hold>,
    watch: Watch,
    keep: Option<usize>,
    name: Arc<str>,
}

fn sql_error(what: &str, e: rusqlite::Error) -> StoreError {
    super::unavailable(what, e)
}

/// The text of `e` without its variant's prefix.
fn cause(e: &StoreError) -> String {
    match e {
        StoreError::Unavailable { message, .. } => message.clone(),
        other => other.to_string(),
    }
}

fn run(conn: Connection, mut state: State, rx: mpsc::Receiver<Job>, ctx: Ctx) {
    let name = &*ctx.name;
    let mut last_prune = Instant::now();
    let mut batch: Vec<Job> = Vec::with_capacity(64);
    let mut replies: Vec<Reply> = Vec::with_capacity(64);
    let mut keys: Vec<Key> = Vec::with_capacity(64);
    while let Ok(first) = rx.recv() {
        batch.push(first);
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        keys.extend(batch.iter().map(|j| j.key));
        // A transaction a failure left open is ended before the next.
        if !conn.is_autocommit() {
            let _ = conn.execute_batch("ROLLBACK");
        }
        let before = state.clone();
        let failure = match run_sql(&conn, "BEGIN IMMEDIATE") {
            Err(e) => {
                let err = sql_error(&format!("{name}: cannot begin a transaction"), e);
                for job in batch.drain(..) {
                    job.call.fail(&err);
                }
                Some(err)
            }
            Ok(()) => {
                // Set once the transaction cannot commit: the requests
                // after are not run, those before are answered with it.
                let mut lost: Option<StoreError> = None;
                for job in batch.drain(..) {
                    if let Some(err) = &lost {
                        job.call.fail(err);
                        continue;
                    }
                    if !job.call.start() {
                        continue;
                    }
                    let (err, doubt, reply) = run_one(&conn, &mut state, job, name);
                    replies.push(reply);
                    lost = lost_after(&conn, name, err.as_ref(), doubt);
                }
                if lost.is_none() {
                    if let Some(keep) = ctx.keep.filter(|_| last_prune.elapsed() >= PRUNE_EVERY) {
                        last_prune = Instant::now();
                        let snapshot = state.clone();
                        let mut failed = None;
                        let ended = conn.execute_batch("SAVEPOINT prune").and_then(|_| match super::ops::prune(&conn, &mut state, keep) {
                            Ok(_) => conn.execute_batch("RELEASE prune"),
                            Err(e) => {
                                state = snapshot;
                                failed = Some(e);
                                conn.execute_batch("ROLLBACK TO prune; RELEASE prune")
                            }
                        });
                        lost = lost_after(&conn, name, failed.as_ref(), ended.is_err());
                    }
                }
                match lost {
                    Some(err) => {
                        if !conn.is_autocommit() {
                            let _ = conn.execute_batch("ROLLBACK");
                        }
                        Some(err)
                    }
                    None => {
                        ctx.hold.stop_here();
                        match run_sql(&conn, "COMMIT") {
                            Ok(()) => {
                                ctx.stats.commits.fetch_add(1, Ordering::Relaxed);
                                None
                            }
                            Err(e) => {
                                let _ = conn.execute_batch("ROLLBACK");
                                Some(sql_error(&format!("{name}: commit failed, nothing of this batch was written"), e))
                            }
                        }
                    }
                }
            }
        };
        if failure.is_some() {
            // Nothing of the batch was written: nor are its counters used.
            // A close asked in it still ends the writer (its caller was told
            // the close failed, and the file is released once it ends).
            let closing = state.closing;
            state = before;
            state.closing |= closing;
        }
        ctx.stats.requests.fetch_add(keys.len() as u64, Ordering::Relaxed);
        for reply in replies.drain(..) {
            reply(failure.as_ref());
        }
        ctx.watch.forget(keys.drain(..));
        if state.closing {
            // Requests queued behind the close are answered now (one sent
            // after this drain finds the channel closed when it sends).
            let closed = super::closed();
            for job in rx.try_iter() {
                job.call.fail(&closed);
                ctx.watch.forget([job.key]);
            }
            return;
        }
    }
}

/// Whether the batch's transaction is lost after a request (or the
/// prune) ended with `err`, or could not end its savepoint (`doubt`):
/// SQLite rolls a transaction back on its own after some errors (a full
/// disk, an I/O error), and the requests after would then run, and
/// commit, outside it.
fn lost_after(conn: &Connection, name: &str, err: Option<&StoreError>, doubt: bool) -> Option<StoreError> {
    let why = match err {
        Some(e) => format!(": {}", cause(e)),
        None => String::new(),
    };
    if conn.is_autocommit() {
        Some(StoreError::unavailable(format!("{name}: the transaction was rolled back after an error, nothing of this batch was written{why}")))
    } else if doubt {
        Some(StoreError::unavailable(format!("{name}: a savepoint could not be ended, nothing of this batch was written{why}")))
    } else {
        None
    }
}

/// Runs one statement of the writer's own (begin, commit, savepoints)
/// from the statement cache: parsing it anew each time showed in profiles.
fn run_sql(conn: &Connection, sql: &str) -> rusqlite::Result<()> {
    conn.prepare_cached(sql)?.execute([]).map(drop)
}

/// Runs one request in its own savepoint: rolled back alone if it fails,
/// with the writer's counters as they were before it. Answers its error,
/// whether its savepoint could not be ended (the transaction is then in
/// doubt), and its reply.
fn run_one(conn: &Connection, state: &mut State, job: Job, name: &str) -> (Option<StoreError>, bool, Reply) {
    let Job { call, run, .. } = job;
    if let Err(e) = run_sql(conn, "SAVEPOINT req") {
        let err = sql_error(&format!("{name}: cannot open a savepoint"), e);
        call.fail(&err);
        return (Some(err), false, Box::new(|_| {}));
    }
    let snapshot = state.clone();
    // A request that panics is rolled back alone and answered ENACT_STORE;
    // the writer goes on serving the others.
    let ran = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| run(conn, state)));
    let (err, reply) = ran.unwrap_or_else(|_| {
        let err = StoreError::unavailable(format!("{name}: the request panicked; it was rolled back"));
        call.fail(&err);
        (Some(err), Box::new(|_| {}))
    });
    if err.is_some() {
        *state = snapshot;
    }
    let end = if err.is_none() { run_sql(conn, "RELEASE req") } else { conn.execute_batch("ROLLBACK TO req; RELEASE req") };
    match end {
        Ok(()) => (err, false, reply),
        // The transaction is in doubt: the batch is rolled back.
        Err(e) => (Some(err.unwrap_or_else(|| sql_error(&format!("{name}: cannot end a savepoint"), e))), true, reply),
    }
}
