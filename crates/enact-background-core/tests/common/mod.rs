//! Shared helpers of the integration tests: an executor over a store
//! driver (a [`MemoryStore`] unless a test passes another) on tokio's
//! (paused) clock, a host that counts wake-ups,
//! and small shorthands for submitting, taking and draining.
#![allow(dead_code)]

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use enact_background_core::prelude::*;
use enact_background_core::store::Driver;
use serde_json::{json, Value};

/// A host that only counts [`Host::wake`] calls.
#[derive(Default)]
pub struct CountingHost {
    wakes: AtomicUsize,
}

impl CountingHost {
    pub fn wakes(&self) -> usize {
        self.wakes.load(Ordering::SeqCst)
    }
}

impl Host for CountingHost {
    fn wake(&self) {
        self.wakes.fetch_add(1, Ordering::SeqCst);
    }
}

/// An executor and what it was built with.
pub struct Harness {
    pub exec: Arc<Executor>,
    pub host: Arc<CountingHost>,
    /// The store, through the driver seam only: the harness runs over any
    /// driver whose futures are ready at once.
    pub store: Arc<dyn Driver>,
}

impl Harness {
    /// Builds an executor over a fresh [`MemoryStore`] and a [`TokioClock`]
    /// (call inside a tokio runtime, paused or not) with callables `echo`
    /// and `work` registered. The timer task is not started.
    pub fn new(config: ExecutorConfig) -> Self {
        Self::with_store(Arc::new(MemoryStore::new()), config)
    }

    pub fn with_store(store: Arc<dyn Driver>, config: ExecutorConfig) -> Self {
        let host = Arc::new(CountingHost::default());
        let exec = Executor::new(store.clone(), Arc::new(TokioClock::new()), host.clone(), config);
        exec.register_callable("echo").unwrap();
        exec.register_callable("work").unwrap();
        Self { exec, host, store }
    }

    /// Same as [`Harness::new`], with the timer task running.
    pub fn started(config: ExecutorConfig) -> Self {
        let h = Self::new(config);
        h.exec.start();
        h
    }

    /// Submits a JSON request (validated as JavaScript's would be).
    pub fn submit(&self, v: Value) -> BackgroundExecution {
        self.exec.submit(req(v), Watch::No).expect("submit")
    }

    /// Submits `work` for `tenant` with `config`.
    pub fn submit_cfg(&self, tenant: &str, config: Value) -> BackgroundExecution {
        self.submit(json!({"tenantId": tenant, "callableName": "work", "config": config}))
    }

    pub fn take(&self) -> Vec<Dispatch> {
        self.exec.take().expect("take")
    }

    pub fn take_ids(&self) -> Vec<String> {
        self.take().into_iter().map(|d| d.execution_id).collect()
    }

    pub fn get(&self, id: &str) -> BackgroundExecution {
        self.exec.get(id).expect("get").expect("execution exists")
    }

    pub fn complete_ok(&self, d: &Dispatch, output: Value) {
        self.exec.complete(&d.execution_id, d.attempt, Outcome::Completed(output)).expect("complete");
    }

    pub fn complete_err(&self, d: &Dispatch, message: &str) {
        self.exec.complete(&d.execution_id, d.attempt, Outcome::Failed(CallError::new(message))).expect("complete");
    }

    pub fn drain(&self) -> Vec<Notice> {
        self.exec.drain()
    }

    pub fn interest(&self, kinds: &[EventKind]) {
        for k in kinds {
            self.exec.set_interest(*k, true);
        }
    }

    pub fn stats(&self) -> Stats {
        self.exec.stats().expect("stats")
    }

    /// Store-level counts, for cross-checking.
    pub fn counts(&self) -> enact_background_core::store::StatusCounts {
        ready(self.store.counts())
    }
}

/// A validated submit request.
pub fn req(v: Value) -> validate::SubmitRequest {
    validate::submit_request(&v).expect("valid submit request")
}

pub fn config(concurrency: usize) -> ExecutorConfig {
    ExecutorConfig { concurrency, ..ExecutorConfig::default() }
}

/// The output of a store future that is ready at once (the memory store's).
pub fn ready<T>(fut: enact_background_core::store::StoreFuture<'_, T>) -> T {
    enact_background_core::store::poll_now(fut).ok().expect("ready at once").expect("store call")
}

/// Lets paused time run forward by `ms`, running every timer due on the way
/// (the executor's timer task included).
pub async fn advance_ms(ms: u64) {
    tokio::time::sleep(Duration::from_millis(ms)).await;
    // Let tasks woken at the very end of the sleep run too.
    for _ in 0..4 {
        tokio::task::yield_now().await;
    }
}

/// Events of `kind` for `id` among `notices`.
pub fn events_of<'a>(notices: &'a [Notice], kind: EventKind, id: &str) -> Vec<&'a BackgroundExecution> {
    notices
        .iter()
        .filter_map(|n| match n {
            Notice::Event(k, rec) if *k == kind && rec.execution_id == id => Some(&**rec),
            _ => None,
        })
        .collect()
}

/// Kinds of the events among `notices`, in order.
pub fn event_kinds(notices: &[Notice]) -> Vec<EventKind> {
    notices
        .iter()
        .filter_map(|n| match n {
            Notice::Event(k, _) => Some(*k),
            _ => None,
        })
        .collect()
}

/// Abort notices among `notices`.
pub fn aborts(notices: &[Notice]) -> Vec<(String, u32)> {
    notices
        .iter()
        .filter_map(|n| match n {
            Notice::Abort { execution_id, attempt, .. } => Some((execution_id.clone(), *attempt)),
            _ => None,
        })
        .collect()
}

/// Abort notices among `notices`, with their reasons.
pub fn abort_reasons(notices: &[Notice]) -> Vec<(String, u32, AbortReason)> {
    notices
        .iter()
        .filter_map(|n| match n {
            Notice::Abort { execution_id, attempt, reason } => Some((execution_id.clone(), *attempt, *reason)),
            _ => None,
        })
        .collect()
}

/// Settled records among `notices`.
pub fn settled(notices: &[Notice]) -> Vec<&BackgroundExecution> {
    notices
        .iter()
        .filter_map(|n| match n {
            Notice::Settled(rec) => Some(&**rec),
            _ => None,
        })
        .collect()
}

/// Bind requests among `notices`.
pub fn binds(notices: &[Notice]) -> Vec<&enact_background_core::executor::BindRequest> {
    notices
        .iter()
        .filter_map(|n| match n {
            Notice::Bind(b) => Some(&**b),
            _ => None,
        })
        .collect()
}
