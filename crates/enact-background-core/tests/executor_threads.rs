//! The executor shared by several OS threads at once (as the Node binding's
//! main thread and tokio's workers share it): submit, take, complete and
//! cancel race each other, and the timer promotes retries meanwhile. Checks
//! invariants only, never timing.

mod common;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::*;
use enact_background_core::prelude::*;
use serde_json::json;

const PER_SUBMITTER: usize = 4_000;
const SUBMITTERS: usize = 2;
const WORKERS: usize = 3;
const CONCURRENCY: usize = 24;

#[test]
fn threads_submit_take_complete_cancel_race_safely() {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
    let host = Arc::new(CountingHost::default());
    let store = MemoryStore::new();
    let exec = rt.block_on(async {
        let exec = Executor::new(Arc::new(store.clone()), Arc::new(SystemClock), host.clone(), ExecutorConfig { concurrency: CONCURRENCY, tenant_concurrency: Some(6), ..ExecutorConfig::default() });
        exec.start();
        exec
    });
    exec.register_callable("work").unwrap();
    for k in [EventKind::Completed, EventKind::Failed, EventKind::Cancelled, EventKind::Timeout] {
        exec.set_interest(k, true);
    }

    let total = PER_SUBMITTER * SUBMITTERS;
    let submitted_ids: Arc<Mutex<Vec<String>>> = Arc::default();
    let starts: Arc<Mutex<HashMap<String, Vec<u32>>>> = Arc::default();
    let finals: Arc<Mutex<HashMap<String, (u32, EventKind)>>> = Arc::default();
    let final_count = Arc::new(AtomicUsize::new(0));
    let submitting_done = Arc::new(AtomicBool::new(false));
    let max_seen_in_flight = Arc::new(AtomicUsize::new(0));
    let deadline = Instant::now() + Duration::from_secs(50);

    std::thread::scope(|s| {
        for sub in 0..SUBMITTERS {
            let (exec, ids) = (exec.clone(), submitted_ids.clone());
            s.spawn(move || {
                for i in 0..PER_SUBMITTER {
                    let mut config = json!({"priority": (i % 4) as u8});
                    if i % 5 == 0 {
                        config["retry"] = json!({"maxAttempts": 2, "backoffMs": 0});
                    }
                    let e = exec
                        .submit(req(json!({"tenantId": format!("t{}", i % 9), "callableName": "work", "input": format!("{sub}:{i}"), "config": config})), Watch::No)
                        .unwrap();
                    ids.lock().unwrap().push(e.execution_id);
                }
            });
        }
        // A canceller that cancels every 10th submission, queued or running.
        {
            let (exec, ids) = (exec.clone(), submitted_ids.clone());
            s.spawn(move || {
                let mut next = 0;
                while next < total {
                    let id = ids.lock().unwrap().get(next).cloned();
                    match id {
                        Some(id) => {
                            if next % 10 == 3 {
                                exec.cancel(&id).unwrap();
                            }
                            next += 1;
                        }
                        None => std::thread::yield_now(),
                    }
                    assert!(Instant::now() < deadline, "canceller stuck");
                }
            });
        }
        for w in 0..WORKERS {
            let (exec, starts, finals, final_count, max_seen) = (exec.clone(), starts.clone(), finals.clone(), final_count.clone(), max_seen_in_flight.clone());
            let submitting_done = submitting_done.clone();
            s.spawn(move || {
                let mut mine: Vec<Dispatch> = Vec::new();
                loop {
                    let t = exec.take().unwrap();
                    let inf = exec.in_flight();
                    max_seen.fetch_max(inf, Ordering::Relaxed);
                    assert!(inf <= CONCURRENCY, "{inf} in flight");
                    {
                        let mut st = starts.lock().unwrap();
                        for d in &t {
                            st.entry(d.execution_id.clone()).or_default().push(d.attempt);
                        }
                    }
                    mine.extend(t);
                    // Finish what this worker holds: first attempts of every
                    // 5th input fail (they have a retry), every 7th fails for good.
                    for d in mine.drain(..) {
                        let n: usize = d.input.as_deref().unwrap().split(':').nth(1).unwrap().parse().unwrap();
                        let outcome = if (n.is_multiple_of(5) && d.attempt == 1) || n.is_multiple_of(7) {
                            Outcome::Failed(CallError::new("planned"))
                        } else {
                            Outcome::Completed(json!(n))
                        };
                        exec.complete(&d.execution_id, d.attempt, outcome).unwrap();
                    }
                    for notice in exec.drain() {
                        if let Notice::Event(kind, rec) = notice {
                            let mut f = finals.lock().unwrap();
                            let prev = f.insert(rec.execution_id.clone(), (rec.attempt, kind));
                            assert!(prev.is_none(), "{} final twice: {prev:?} then {kind:?}", rec.execution_id);
                            final_count.fetch_add(1, Ordering::SeqCst);
                        }
                    }
                    if submitting_done.load(Ordering::SeqCst) && final_count.load(Ordering::SeqCst) == total {
                        break;
                    }
                    if Instant::now() > deadline {
                        panic!("worker {w}: only {} of {total} final", final_count.load(Ordering::SeqCst));
                    }
                    std::thread::yield_now();
                }
            });
        }
        // Flag the end of submissions once all ids are in.
        let ids = submitted_ids.clone();
        let flag = submitting_done.clone();
        s.spawn(move || {
            while ids.lock().unwrap().len() < total {
                std::thread::yield_now();
                assert!(Instant::now() < deadline, "submitters stuck");
            }
            flag.store(true, Ordering::SeqCst);
        });
    });

    let finals = finals.lock().unwrap();
    let starts = starts.lock().unwrap();
    let ids = submitted_ids.lock().unwrap();
    assert_eq!(ids.len(), total);
    assert_eq!(finals.len(), total, "every execution final exactly once");
    let mut by_kind: HashMap<EventKind, u64> = HashMap::new();
    for id in ids.iter() {
        let (attempt, kind) = finals[id];
        *by_kind.entry(kind).or_default() += 1;
        let st = starts.get(id).cloned().unwrap_or_default();
        // Attempts start as 1, 2, ... with no repeats.
        assert_eq!(st, (1..=st.len() as u32).collect::<Vec<_>>(), "{id}: starts {st:?}");
        assert!(st.len() <= 2, "{id}: started {} times", st.len());
        let rec = exec.get(id).unwrap().unwrap();
        assert!(rec.status.is_final());
        assert_eq!(rec.attempt, attempt);
        if kind != EventKind::Cancelled {
            assert_eq!(st.len() as u32, attempt, "{id}");
        }
    }
    assert_eq!(by_kind.get(&EventKind::Timeout), None);
    let c = common::ready(store.counts());
    assert_eq!(c.queued + c.running, 0, "{c:?}");
    assert_eq!(c.completed, by_kind.get(&EventKind::Completed).copied().unwrap_or(0));
    assert_eq!(c.failed, by_kind.get(&EventKind::Failed).copied().unwrap_or(0));
    assert_eq!(c.cancelled, by_kind.get(&EventKind::Cancelled).copied().unwrap_or(0));
    assert!(c.cancelled > 0 && c.failed > 0 && c.completed > 0, "{c:?}");
    assert_eq!(exec.in_flight(), 0);
    assert!(max_seen_in_flight.load(Ordering::Relaxed) <= CONCURRENCY);

    exec.begin_shutdown();
    exec.finish_shutdown().unwrap();
    drop(rt);
}
