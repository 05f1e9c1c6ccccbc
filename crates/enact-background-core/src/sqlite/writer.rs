//! The writer thread: it owns the one connection, takes every request
//! queued on its channel, runs them in ONE transaction (each request in
//! its own savepoint, so one that fails does not fail the others), commits
//! once, and only then answers each request through its oneshot channel.
//! That is the group commit: throughput is bounded by how many requests
//! one commit carries, not by one fsync per call.
//!
//! A batch whose transaction is lost — its COMMIT fails (disk full, I/O
//! error), SQLite rolls it back on its own after an error, or a savepoint
//! cannot be ended — answers every request it ran with `ENACT_STORE` and
//! runs none after; nothing of it was written, the writer's counters go
//! back to what they were before it, and the next batch starts afresh.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rusqlite::Connection;

use super::ops::State;
use crate::store::{StoreError, StoreResult};

/// Requests one transaction carries at most: a bound on how long the
/// first of them waits for its commit.
const MAX_BATCH: usize = 1024;

/// How often a store with `keep_finished` prunes at most.
const PRUNE_EVERY: Duration = Duration::from_secs(1);

/// What a request answers once its transaction committed (or failed to).
pub(super) type Reply = Box<dyn FnOnce(Option<&StoreError>) + Send>;

/// One request: runs against the connection inside the batch's
/// transaction; answers its error if it failed (its savepoint is then
/// rolled back) and how to deliver its answer after the commit. Given
/// `None`, it does not run and only makes its reply (its batch could not
/// begin, or was lost before it).
pub(super) type Job = Box<dyn FnOnce(Option<(&Connection, &mut State)>) -> (Option<StoreError>, Reply) + Send>;

/// Counters of the writer, for tests and diagnostics.
#[derive(Debug, Default)]
pub struct WriterStats {
    /// Transactions committed.
    pub commits: AtomicU64,
    /// Requests answered.
    pub requests: AtomicU64,
}

/// The writer's handle: a channel; dropping every handle stops the thread
/// after it answered what was queued.
pub(super) struct Writer {
    tx: mpsc::Sender<Job>,
    pub(super) stats: Arc<WriterStats>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Writer {
    pub(super) fn start(conn: Connection, state: State, keep_finished: Option<usize>, name: String) -> StoreResult<Self> {
        let (tx, rx) = mpsc::channel::<Job>();
        let stats = Arc::new(WriterStats::default());
        let s = stats.clone();
        let thread = std::thread::Builder::new()
            .name("enact-sqlite".into())
            .spawn(move || run(conn, state, rx, s, keep_finished, name))
            .map_err(|e| StoreError::unavailable(format!("sqlite store: cannot start its writer thread: {e}")))?;
        Ok(Self { tx, stats, thread: Some(thread) })
    }

    /// Queues `job`; false when the writer is gone.
    pub(super) fn send(&self, job: Job) -> bool {
        self.tx.send(job).is_ok()
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

fn run(conn: Connection, mut state: State, rx: mpsc::Receiver<Job>, stats: Arc<WriterStats>, keep: Option<usize>, name: String) {
    let mut last_prune = Instant::now();
    let mut batch: Vec<Job> = Vec::with_capacity(64);
    let mut replies: Vec<Reply> = Vec::with_capacity(64);
    while let Ok(first) = rx.recv() {
        batch.push(first);
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        // A transaction a failure left open is ended before the next.
        if !conn.is_autocommit() {
            let _ = conn.execute_batch("ROLLBACK");
        }
        let before = state.clone();
        let failure = match conn.execute_batch("BEGIN IMMEDIATE") {
            Err(e) => Some(sql_error(&format!("{name}: cannot begin a transaction"), e)),
            Ok(()) => {
                // Set once the transaction cannot commit: the requests
                // after are not run, those before are answered with it.
                let mut lost: Option<StoreError> = None;
                let mut jobs = std::mem::take(&mut batch).into_iter();
                for job in jobs.by_ref() {
                    let (err, doubt, reply) = run_one(&conn, &mut state, job, &name);
                    replies.push(reply);
                    lost = lost_after(&conn, &name, err.as_ref(), doubt);
                    if lost.is_some() {
                        break;
                    }
                }
                batch.extend(jobs);
                if lost.is_none() {
                    if let Some(keep) = keep.filter(|_| last_prune.elapsed() >= PRUNE_EVERY) {
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
                        lost = lost_after(&conn, &name, failed.as_ref(), ended.is_err());
                    }
                }
                match lost {
                    Some(err) => {
                        if !conn.is_autocommit() {
                            let _ = conn.execute_batch("ROLLBACK");
                        }
                        Some(err)
                    }
                    None => match conn.execute_batch("COMMIT") {
                        Ok(()) => {
                            stats.commits.fetch_add(1, Ordering::Relaxed);
                            None
                        }
                        Err(e) => {
                            let _ = conn.execute_batch("ROLLBACK");
                            Some(sql_error(&format!("{name}: commit failed, nothing of this batch was written"), e))
                        }
                    },
                }
            }
        };
        if failure.is_some() {
            // Nothing of the batch was written: nor are its counters used.
            state = before;
        }
        // Requests not run (the batch never began, or was lost) are
        // answered with its failure too.
        for job in batch.drain(..) {
            let (_, reply) = job(None);
            replies.push(reply);
        }
        stats.requests.fetch_add(replies.len() as u64, Ordering::Relaxed);
        for reply in replies.drain(..) {
            reply(failure.as_ref());
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

/// Runs one request in its own savepoint: rolled back alone if it fails,
/// with the writer's counters as they were before it. Answers its error,
/// whether its savepoint could not be ended (the transaction is then in
/// doubt), and its reply.
fn run_one(conn: &Connection, state: &mut State, job: Job, name: &str) -> (Option<StoreError>, bool, Reply) {
    if let Err(e) = conn.execute_batch("SAVEPOINT req") {
        let err = sql_error(&format!("{name}: cannot open a savepoint"), e);
        let (_, reply) = job(None);
        let e2 = err.clone();
        return (Some(err), false, Box::new(move |_| reply(Some(&e2))));
    }
    let snapshot = state.clone();
    // A request that panics is rolled back alone; its caller's channel
    // was dropped in the unwinding, so it is answered ENACT_STORE, and the
    // writer goes on serving the others.
    let ran = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| job(Some((conn, state)))));
    let (err, reply) = ran.unwrap_or_else(|_| {
        (Some(StoreError::unavailable(format!("{name}: the request panicked; it was rolled back"))), Box::new(|_: Option<&StoreError>| {}) as Reply)
    });
    if err.is_some() {
        *state = snapshot;
    }
    let end = if err.is_none() { conn.execute_batch("RELEASE req") } else { conn.execute_batch("ROLLBACK TO req; RELEASE req") };
    match end {
        Ok(()) => (err, false, reply),
        // The transaction is in doubt: the batch is rolled back.
        Err(e) => (Some(err.unwrap_or_else(|| sql_error(&format!("{name}: cannot end a savepoint"), e))), true, reply),
    }
}
