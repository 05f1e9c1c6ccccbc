//! The writer thread: it owns the one connection, takes every request
//! queued on its channel, runs them in ONE transaction (each request in
//! its own savepoint, so one that fails does not fail the others), commits
//! once, and only then answers each request through its oneshot channel.
//! That is the group commit: throughput is bounded by how many requests
//! one commit carries, not by one fsync per call.

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
/// transaction; answers whether it succeeded (else its savepoint is rolled
/// back) and how to deliver its answer after the commit. Given `None`, it
/// does not run and only makes its reply (its batch could not begin).
pub(super) type Job = Box<dyn FnOnce(Option<(&Connection, &mut State)>) -> (bool, Reply) + Send>;

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
    /// Answered when the thread ended, after it closed the connection and
    /// released the file's lock.
    pub(super) ended: std::sync::Mutex<Option<tokio::sync::oneshot::Receiver<()>>>,
}

impl Writer {
    /// Starts the thread; it owns the connection and the file's `lock`,
    /// and releases both when it ends.
    pub(super) fn start(conn: Connection, state: State, keep_finished: Option<usize>, name: String, lock: std::fs::File) -> StoreResult<Self> {
        let (tx, rx) = mpsc::channel::<Job>();
        let (ended_tx, ended_rx) = tokio::sync::oneshot::channel();
        let stats = Arc::new(WriterStats::default());
        let s = stats.clone();
        let thread = std::thread::Builder::new()
            .name("enact-sqlite".into())
            .spawn(move || {
                run(conn, state, rx, s, keep_finished, name);
                // The connection closed when `run` returned; only then the lock.
                drop(lock);
                let _ = ended_tx.send(());
            })
            .map_err(|e| StoreError::unavailable(format!("sqlite store: cannot start its writer thread: {e}")))?;
        Ok(Self { tx, stats, thread: Some(thread), ended: std::sync::Mutex::new(Some(ended_rx)) })
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
        let failure = match conn.execute_batch("BEGIN IMMEDIATE") {
            Err(e) => Some(sql_error(&format!("{name}: cannot begin a transaction"), e)),
            Ok(()) => {
                for job in batch.drain(..) {
                    replies.push(run_one(&conn, &mut state, job));
                }
                if let Some(keep) = keep.filter(|_| last_prune.elapsed() >= PRUNE_EVERY) {
                    last_prune = Instant::now();
                    let _ = conn.execute_batch("SAVEPOINT prune").and_then(|_| match super::ops::prune(&conn, &mut state, keep) {
                        Ok(_) => conn.execute_batch("RELEASE prune"),
                        Err(_) => conn.execute_batch("ROLLBACK TO prune; RELEASE prune"),
                    });
                }
                match conn.execute_batch("COMMIT") {
                    Ok(()) => {
                        stats.commits.fetch_add(1, Ordering::Relaxed);
                        None
                    }
                    Err(e) => {
                        let _ = conn.execute_batch("ROLLBACK");
                        Some(sql_error(&format!("{name}: commit failed, nothing of this batch was written"), e))
                    }
                }
            }
        };
        // A batch that was never begun still answers every request.
        for job in batch.drain(..) {
            let (_, reply) = job(None);
            replies.push(reply);
        }
        stats.requests.fetch_add(replies.len() as u64, Ordering::Relaxed);
        for reply in replies.drain(..) {
            reply(failure.as_ref());
        }
        if state.closing {
            // Requests queued behind the close are answered "closed" when
            // the channel drops with this function's return.
            return;
        }
    }
}

/// Runs one request in its own savepoint: rolled back alone if it fails.
fn run_one(conn: &Connection, state: &mut State, job: Job) -> Reply {
    if let Err(e) = conn.execute_batch("SAVEPOINT req") {
        let err = sql_error("sqlite store: cannot open a savepoint", e);
        let (_, reply) = job(None);
        return Box::new(move |_| reply(Some(&err)));
    }
    // A request that panics is rolled back alone; its caller's channel
    // was dropped in the unwinding, so it is answered ENACT_STORE, and the
    // writer goes on serving the others.
    let ran = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| job(Some((conn, state)))));
    let (ok, reply) = ran.unwrap_or_else(|_| (false, Box::new(|_: Option<&StoreError>| {}) as Reply));
    let end = if ok { conn.execute_batch("RELEASE req") } else { conn.execute_batch("ROLLBACK TO req; RELEASE req") };
    match end {
        Ok(()) => reply,
        // The transaction is in doubt: this request fails, and so will the
        // commit if the connection is broken.
        Err(e) => {
            let err = sql_error("sqlite store: cannot end a savepoint", e);
            Box::new(move |_| reply(Some(&err)))
        }
    }
}
