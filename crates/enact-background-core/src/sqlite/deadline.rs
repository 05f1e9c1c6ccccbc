//! Bounded time for every call: each call is a [`Slot`] that exactly one
//! of two parties answers — the writer thread (with what the call did) or
//! the watchdog thread (at the call's deadline, with `ENACT_STORE`) —
//! decided under the slot's lock, so that an answer never contradicts
//! what happened:
//!
//! - a call still queued at its deadline is answered "not run" and the
//!   writer skips it when it reaches it: nothing of it is ever written;
//! - a call the writer started is answered at its deadline "outcome
//!   unknown" if its transaction has not committed by then (the writer is
//!   stuck in a statement or in the commit's I/O): that is the one
//!   ambiguity left, and the answer says so;
//! - the writer also checks the deadline itself when it reaches a call,
//!   so a call that waited too long in the queue is not run even if the
//!   watchdog has not woken yet.
//!
//! The watchdog is a plain thread with a condition variable, not a tokio
//! timer: store futures are also polled outside any runtime (polled once
//! in place, or awaited on a runtime without a time driver), and an
//! answer sent on the call's oneshot channel wakes whoever awaits it.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex};
use tokio::sync::oneshot;

use crate::store::{StoreError, StoreResult};

/// A call as the writer and the watchdog see it.
pub(super) trait Pending: Send + Sync {
    /// The writer reached the call: true if it is to run now. False if it
    /// was answered already, if its caller is gone (its future was
    /// dropped: nobody is told it ran, so it does not), or if its
    /// deadline passed (it is then answered "not run").
    fn start(&self) -> bool;
    /// Answers `e` unless the call was answered already.
    fn fail(&self, e: &StoreError);
    /// Its deadline passed: answers "not run" if it has not started,
    /// "outcome unknown" if it has, nothing if it was answered.
    fn expire(&self);
}

enum SlotState<T> {
    Queued(oneshot::Sender<StoreResult<T>>),
    Running(oneshot::Sender<StoreResult<T>>),
    Answered,
}

/// One call's answer, owned by whoever answers first.
pub(super) struct Slot<T> {
    state: Mutex<SlotState<T>>,
    deadline: Instant,
    timeout: Duration,
    name: Arc<str>,
}

impl<T: Send> Slot<T> {
    pub(super) fn new(name: Arc<str>, deadline: Instant, timeout: Duration) -> (Arc<Self>, oneshot::Receiver<StoreResult<T>>) {
        let (tx, rx) = oneshot::channel();
        (Arc::new(Self { state: Mutex::new(SlotState::Queued(tx)), deadline, timeout, name }), rx)
    }

    /// The writer's answer for a call it ran, once its transaction ended;
    /// dropped if the deadline answered first.
    pub(super) fn answer(&self, r: StoreResult<T>) {
        if let SlotState::Queued(tx) | SlotState::Running(tx) = std::mem::replace(&mut *self.state.lock(), SlotState::Answered) {
            let _ = tx.send(r);
        }
    }

    fn not_run(&self) -> StoreError {
        StoreError::unavailable(format!(
            "{}: did not answer within {} ms (its writer was busy or blocked); the call was not run and nothing of it was written",
            self.name,
            self.timeout.as_millis()
        ))
    }

    fn unknown(&self) -> StoreError {
        StoreError::unavailable(format!(
            "{}: did not answer within {} ms: the call ran but its transaction had not committed yet (its writer is blocked, e.g. on disk I/O); \
             its outcome is unknown: it may still commit",
            self.name,
            self.timeout.as_millis()
        ))
    }
}

impl<T: Send> Pending for Slot<T> {
    fn start(&self) -> bool {
        let mut state = self.state.lock();
        match std::mem::replace(&mut *state, SlotState::Answered) {
            SlotState::Queued(tx) if tx.is_closed() => false,
            SlotState::Queued(tx) if Instant::now() >= self.deadline => {
                let _ = tx.send(Err(self.not_run()));
                false
            }
            SlotState::Queued(tx) => {
                *state = SlotState::Running(tx);
                true
            }
            other => {
                *state = other;
                false
            }
        }
    }

    fn fail(&self, e: &StoreError) {
        if let SlotState::Queued(tx) | SlotState::Running(tx) = std::mem::replace(&mut *self.state.lock(), SlotState::Answered) {
            let _ = tx.send(Err(e.clone()));
        }
    }

    fn expire(&self) {
        match std::mem::replace(&mut *self.state.lock(), SlotState::Answered) {
            SlotState::Queued(tx) => {
                let _ = tx.send(Err(self.not_run()));
            }
            SlotState::Running(tx) => {
                let _ = tx.send(Err(self.unknown()));
            }
            SlotState::Answered => {}
        }
    }
}

/// A watched call: its deadline, then a sequence number (deadlines may
/// be equal).
pub(super) type Key = (Instant, u64);

#[derive(Default)]
struct Due {
    calls: BTreeMap<Key, Arc<dyn Pending>>,
    next: u64,
    /// When the watchdog looks at `calls` next; `None` while it waits to
    /// be woken (nothing to watch).
    wake_at: Option<Instant>,
    stop: bool,
}

#[derive(Default)]
struct Shared {
    due: Mutex<Due>,
    wake: Condvar,
}

/// The calls in flight by deadline; cheap to clone.
#[derive(Clone)]
pub(super) struct Watch(Arc<Shared>);

impl Watch {
    /// Watches `call` until [`Watch::forget`]; it expires at `deadline`.
    pub(super) fn watch(&self, deadline: Instant, call: Arc<dyn Pending>) -> Key {
        let mut due = self.0.due.lock();
        let key = (deadline, due.next);
        due.next += 1;
        due.calls.insert(key, call);
        // Deadlines come mostly in call order: the thread is woken only
        // when it would otherwise look too late.
        if due.wake_at.is_none_or(|at| deadline < at) {
            due.wake_at = Some(deadline);
            self.0.wake.notify_one();
        }
        key
    }

    /// Stops watching calls that were answered.
    pub(super) fn forget(&self, keys: impl IntoIterator<Item = Key>) {
        let mut due = self.0.due.lock();
        for key in keys {
            due.calls.remove(&key);
        }
    }
}

/// The watchdog thread; stops when dropped.
pub(super) struct Watchdog {
    watch: Watch,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Watchdog {
    pub(super) fn start() -> StoreResult<Self> {
        let watch = Watch(Arc::new(Shared::default()));
        let shared = watch.0.clone();
        let thread = std::thread::Builder::new()
            .name("enact-sqlite-watchdog".into())
            .spawn(move || run(&shared))
            .map_err(|e| StoreError::unavailable(format!("sqlite store: cannot start its watchdog thread: {e}")))?;
        Ok(Self { watch, thread: Some(thread) })
    }

    pub(super) fn watch(&self) -> &Watch {
        &self.watch
    }
}

impl Drop for Watchdog {
    fn drop(&mut self) {
        self.watch.0.due.lock().stop = true;
        self.watch.0.wake.notify_one();
        if let Some(t) = self.thread.take() {
            if t.thread().id() != std::thread::current().id() {
                let _ = t.join();
            }
        }
    }
}

fn run(shared: &Shared) {
    let mut due = shared.due.lock();
    while !due.stop {
        let Some((&(at, _), _)) = due.calls.first_key_value() else {
            due.wake_at = None;
            shared.wake.wait(&mut due);
            continue;
        };
        let now = Instant::now();
        if now < at {
            due.wake_at = Some(at);
            shared.wake.wait_until(&mut due, at);
            continue;
        }
        let (_, call) = due.calls.pop_first().expect("the first entry exists");
        // Awake: calls registered meanwhile need not wake it.
        due.wake_at = Some(now);
        // Answered outside the lock: callers registering calls go on.
        drop(due);
        call.expire();
        due = shared.due.lock();
    }
}
