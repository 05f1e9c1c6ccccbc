//! What the memory driver does beyond the conformance suite (bounded
//! finished records, compact records, reuse of places), and the engine
//! over drivers that behave like durable ones: answers that come later,
//! work arriving mid-scan, engines sharing one store, rescued attempts.

mod common;
#[path = "common/wrapped.rs"]
mod wrapped;

use std::sync::{Arc, Mutex};

use chrono::Utc;
use common::*;
use enact_background_core::store::{
    poll_now, Change, ClaimParams, Driver, Finish, Finished, Inserted, Limits, NewExecution, Readiness, StatusCounts,
};
use enact_background_core::prelude::*;
use serde_json::json;
use wrapped::Wrapped;

fn exec(id: &str, tenant: &str) -> BackgroundExecution {
    let mut e: BackgroundExecution = serde_json::from_value(json!({
        "executionId": id, "tenantId": tenant, "callableName": "work", "status": "queued", "queuedAt": Utc::now(),
    }))
    .unwrap();
    e.config = BackgroundExecutionConfig::default();
    e
}

fn insert(s: &MemoryStore, e: BackgroundExecution, ready: Readiness) {
    assert_eq!(ready_of(s.insert_many(vec![NewExecution::new(e, ready)])), vec![Inserted::Ok]);
}

fn ready_of<T>(f: enact_background_core::store::StoreFuture<'_, T>) -> T {
    poll_now(f).ok().expect("the memory store answers at once").expect("store call")
}

fn get(s: &MemoryStore, id: &str) -> Option<BackgroundExecution> {
    ready_of(s.get(id))
}

fn claim_all(s: &MemoryStore, max: usize) -> Vec<String> {
    let now = Utc::now();
    let limits = Arc::new(Limits { tenant: None, callables: [("work".to_string(), None)].into_iter().collect() });
    let p = ClaimParams { worker: "w".into(), max, now, lease_until: now, limits };
    ready_of(s.claim(p)).into_iter().map(|e| e.execution_id).collect()
}

fn finish(s: &MemoryStore, id: &str) -> Option<BackgroundExecution> {
    let change = Change::Finish { status: BackgroundExecutionStatus::Completed, output: Some(json!(1)), error: None, at: Utc::now() };
    match ready_of(s.finish_many(vec![Finish { id: id.into(), attempt: 1, change, want_record: true }])).pop().unwrap() {
        Finished::Done(rec) => rec.map(|r| *r),
        Finished::Stale => None,
    }
}

#[test]
fn store_keeps_only_the_newest_finished_executions() {
    let s = MemoryStore::keeping(2);
    for id in ["a", "b", "c", "d"] {
        insert(&s, exec(id, "t"), Readiness::Now);
    }
    assert_eq!(claim_all(&s, 3), ["a", "b", "c"]);
    for id in ["a", "b", "c"] {
        assert_eq!(finish(&s, id).unwrap().status, BackgroundExecutionStatus::Completed, "the end still answers the record");
    }
    assert!(get(&s, "a").is_none(), "the oldest finished execution is dropped");
    assert!(get(&s, "b").is_some() && get(&s, "c").is_some());
    assert_eq!(get(&s, "d").unwrap().status, BackgroundExecutionStatus::Queued, "queued work is never dropped");
    // Counts still add up to every execution ever inserted.
    assert_eq!(ready_of(s.counts()), StatusCounts { queued: 1, completed: 3, ..Default::default() });
    assert_eq!(ready_of(s.list(&ExecutionFilter::default())).len(), 3);
}

#[test]
fn store_keeps_a_completed_execution_until_it_is_bound() {
    let s = MemoryStore::keeping(0);
    let mut e = exec("a", "t");
    e.config.target_binding = Some(Box::new(TargetBindingConfig {
        target_type: TargetType::Custom,
        target_path: None,
        transform: TransformType::None,
        max_length: None,
        json_path: None,
        thread_id: None,
        execution_id: None,
    }));
    insert(&s, e, Readiness::Now);
    claim_all(&s, 1);
    finish(&s, "a").unwrap();
    assert!(get(&s, "a").is_some(), "kept while its binding is outstanding");
    let result = TargetBindingResult { target_type: TargetType::Custom, target_path: None, success: true, applied_value: Some("1".into()), error: None, applied_at: Utc::now() };
    let bound = ready_of(s.bind("a", result));
    assert!(bound.unwrap().target_binding_applied, "the bound record is answered");
    assert!(get(&s, "a").is_none(), "then dropped (keeping 0)");
}

/// The store keeps executions in a compact form and rebuilds records on
/// read: every field of every enact-core execution fixture (context,
/// metadata, trigger source, output, error, binding result, times to the
/// nanosecond) comes back exactly as it went in.
#[test]
fn store_gives_back_every_field_of_each_fixture() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../../fixtures/enact-core-0.0.2/");
    let mut seen = 0;
    for entry in std::fs::read_dir(dir).expect("fixtures") {
        let path = entry.expect("entry").path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if !name.starts_with("execution_") {
            continue;
        }
        let text = std::fs::read_to_string(&path).expect("read");
        let mut rec: BackgroundExecution = serde_json::from_str(&text).expect(&name);
        rec.chain_depth = 3; // an extension field, kept too
        rec.queued_at += chrono::Duration::nanoseconds(123_456_789);
        let s = MemoryStore::new();
        let ready = if rec.status.is_final() { Readiness::Final } else { Readiness::At(i64::MAX) };
        insert(&s, rec.clone(), ready);
        assert_eq!(get(&s, &rec.execution_id).expect(&name), rec, "{name}");
        assert_eq!(ready_of(s.list(&Default::default())), vec![rec.clone()], "{name}");
        seen += 1;
    }
    assert!(seen >= 6, "only {seen} execution fixtures found");
}

/// Like submissions share one config and one copy of each name; a
/// different config is still its own.
#[test]
fn store_keeps_distinct_configs_apart() {
    let s = MemoryStore::new();
    let mut a = exec("a", "t1");
    a.config.timeout_ms = 1000;
    let mut b = exec("b", "t1");
    b.config.timeout_ms = 2000;
    let mut c = exec("c", "t2");
    c.config.priority = 10;
    for e in [&a, &b, &c] {
        insert(&s, e.clone(), Readiness::Now);
    }
    assert_eq!(get(&s, "a").unwrap().config.timeout_ms, 1000);
    assert_eq!(get(&s, "b").unwrap().config.timeout_ms, 2000);
    assert_eq!(get(&s, "c").unwrap(), c);
}

/// A dropped execution's place is reused; a stale queue entry of the
/// dropped execution must not start the newcomer early, and lookups by id
/// see only the newcomer.
#[test]
fn store_reuses_dropped_places_without_waking_stale_entries() {
    let s = MemoryStore::keeping(0);
    insert(&s, exec("a", "t"), Readiness::Now);
    assert!(matches!(ready_of(s.cancel("a", Utc::now())), enact_background_core::store::CancelOutcome::Cancelled(_)));
    assert!(get(&s, "a").is_none(), "kept 0 finished: dropped at once");
    insert(&s, exec("b", "t"), Readiness::At(i64::MAX - 1));
    assert!(claim_all(&s, 10).is_empty(), "the cancelled entry of a does not start b");
    assert_eq!(ready_of(s.stage_due(i64::MAX)).promoted, 1);
    assert_eq!(claim_all(&s, 10), ["b"]);
    for n in 0..10_000 {
        let id = format!("x{n}");
        insert(&s, exec(&id, &format!("tenant{}", n % 7)), Readiness::Now);
        assert_eq!(claim_all(&s, 1), std::slice::from_ref(&id));
        assert_eq!(finish(&s, &id).unwrap().tenant_id, format!("tenant{}", n % 7));
        assert!(get(&s, &id).is_none());
    }
    assert_eq!(get(&s, "b").unwrap().status, BackgroundExecutionStatus::Running);
}

// ---------------------------------------------------------------------------
// Work arriving while the timer task scans the store.

fn hooked() -> (Arc<Executor>, Arc<CountingHost>, Arc<Mutex<Option<wrapped::Hook>>>) {
    let store = Wrapped::hooked(MemoryStore::new());
    let hook = store.after_stage.clone();
    let host = Arc::new(CountingHost::default());
    let exec = Executor::new(Arc::new(store), Arc::new(TokioClock::new()), host.clone(), config(4));
    exec.register_callable("work").unwrap();
    (exec, host, hook)
}

#[tokio::test(start_paused = true)]
async fn timer_sees_delayed_work_submitted_during_its_scan() {
    let (exec, host, hook) = hooked();
    let id = Arc::new(Mutex::new(String::new()));
    {
        let (exec, id) = (exec.clone(), id.clone());
        *hook.lock().unwrap() = Some(Box::new(move || {
            let e = exec.submit(req(json!({"tenantId": "t", "callableName": "work", "config": {"mode": "deferred", "delayMs": 100}})), Watch::No).unwrap();
            *id.lock().unwrap() = e.execution_id;
        }));
    }
    exec.start();
    advance_ms(1).await;
    assert!(!id.lock().unwrap().is_empty(), "hook ran in the first tick");
    assert!(exec.take().unwrap().is_empty());
    advance_ms(150).await;
    let t = exec.take().unwrap();
    assert_eq!(t.len(), 1, "delayed work submitted during a timer scan was lost");
    assert_eq!(t[0].execution_id, *id.lock().unwrap());
    assert_eq!(host.wakes(), 1);
}

#[tokio::test(start_paused = true)]
async fn timer_sees_deadlines_armed_during_its_scan() {
    let (exec, _host, hook) = hooked();
    let e = exec.submit(req(json!({"tenantId": "t", "callableName": "work", "config": {"timeoutMs": 100}})), Watch::No).unwrap();
    {
        let exec = exec.clone();
        *hook.lock().unwrap() = Some(Box::new(move || {
            assert_eq!(exec.take().unwrap().len(), 1);
        }));
    }
    exec.start();
    advance_ms(1).await;
    assert_eq!(exec.get(&e.execution_id).unwrap().unwrap().status, BackgroundExecutionStatus::Running);
    advance_ms(150).await;
    assert_eq!(exec.get(&e.execution_id).unwrap().unwrap().status, BackgroundExecutionStatus::Timeout, "a deadline armed during a timer scan was missed");
}

// ---------------------------------------------------------------------------
// A store that answers later: nothing waits on the host's thread.

fn later() -> (Arc<Executor>, Arc<CountingHost>, MemoryStore) {
    let store = MemoryStore::new();
    let host = Arc::new(CountingHost::default());
    let exec = Executor::new(Arc::new(Wrapped::later(store.clone())), Arc::new(TokioClock::new()), host.clone(), config(4));
    exec.register_callable("work").unwrap();
    (exec, host, store)
}

/// Waits (in paused time) until `f` holds.
async fn until(mut f: impl FnMut() -> bool) {
    for _ in 0..100 {
        if f() {
            return;
        }
        advance_ms(1).await;
    }
    panic!("condition never held");
}

#[tokio::test(start_paused = true)]
async fn a_later_store_answers_through_tickets_and_the_ready_buffer() {
    let (exec, host, store) = later();
    exec.start();
    exec.set_interest(EventKind::Completed, true);
    // A submission's answer comes as a notice with its ticket.
    let batch = vec![Submission { request: req(json!({"tenantId": "t", "callableName": "work", "input": "x"})), watch: true, keep_record: false }];
    let fut = exec.clone().submit_many(batch);
    let ticket = match exec.answer(async move { Ok(fut.await.into_iter().map(|r| r.map(|r| r.execution_id).map_err(|e| e.message)).collect::<Vec<_>>()) }) {
        Answer::Later(t) => t,
        Answer::Now(_) => panic!("a later store cannot answer at once"),
    };
    until(|| host.wakes() > 0).await;
    let notices = exec.drain();
    let id = match &notices[..] {
        [Notice::Answer { ticket: t, result: Ok(v) }] if *t == ticket => v[0]["Ok"].as_str().expect("an id").to_owned(),
        other => panic!("expected the answer, got {other:?}"),
    };
    assert_eq!(ready_of(store.get(&id)).unwrap().status, BackgroundExecutionStatus::Queued, "inserted before answering");

    // take() starts nothing at once; the claim lands in the buffer and wakes.
    assert!(exec.take().unwrap().is_empty());
    assert_eq!(exec.busy(), 4, "a claim in flight holds the free slots it asked for");
    until(|| exec.busy() == 1 && host.wakes() > 1).await;
    let jobs = exec.take().unwrap();
    assert_eq!(jobs.len(), 1);
    assert_eq!(jobs[0].execution_id, id);

    // Completion: the store's answer settles the waiter later.
    exec.complete(&id, 1, Outcome::Completed(json!("done"))).unwrap();
    assert!(exec.drain().is_empty(), "nothing settles before the store answered");
    until(|| exec.has_notices()).await;
    let notices = exec.drain();
    assert_eq!(settled(&notices).len(), 1);
    assert_eq!(events_of(&notices, EventKind::Completed, &id).len(), 1);
    assert_eq!(ready_of(store.get(&id)).unwrap().output, Some(json!("done")));
}

/// An idempotent submission over a store that answers later: the
/// existing execution is looked up (and watched) off the host's thread.
#[tokio::test(start_paused = true)]
async fn a_later_store_answers_an_existing_id_with_that_execution() {
    let (exec, _host, store) = later();
    exec.start();
    let sub = |input: &str, watch: bool| Submission {
        request: req(json!({"tenantId": "t", "callableName": "work", "executionId": "exec_l", "input": input})),
        watch,
        keep_record: false,
    };
    let first = exec.clone().submit_many(vec![sub("one", false)]).await.pop().unwrap().unwrap();
    assert_eq!(first.existing, None);
    let again = exec.clone().submit_many(vec![sub("two", true)]).await.pop().unwrap().unwrap();
    assert_eq!(again.existing, Some(Existing::Watched));
    assert_eq!(again.record.unwrap().input.as_deref(), Some("one"));
    assert_eq!(ready_of(store.counts()).queued, 1);
    let jobs = loop {
        let jobs = exec.take().unwrap();
        if !jobs.is_empty() {
            break jobs;
        }
        advance_ms(1).await;
    };
    exec.complete(&jobs[0].execution_id, jobs[0].attempt, Outcome::Completed(json!(1))).unwrap();
    until(|| exec.has_notices()).await;
    assert_eq!(settled(&exec.drain()).len(), 1, "the watched duplicate settles");
}

/// Background work that fails after the store answered later is not
/// swallowed: it comes to the host as a diagnostic of its source.
#[tokio::test(start_paused = true)]
async fn a_later_failure_of_background_work_becomes_a_diagnostic() {
    let (exec, host, _store) = later();
    exec.start();
    let fut = exec.clone().cancel_async("exec_missing".into());
    exec.run("test", async move { fut.await.map(drop) }).unwrap();
    until(|| host.wakes() > 0).await;
    match &exec.drain()[..] {
        [Notice::Diagnostic(d)] => {
            assert_eq!(d.source, "test");
            assert_eq!(d.error.code, ErrorCode::NotFound);
        }
        other => panic!("expected a diagnostic, got {other:?}"),
    }
}

// ---------------------------------------------------------------------------
// Engines sharing one store.

#[tokio::test(start_paused = true)]
async fn a_trigger_registered_by_one_engine_fires_in_another_after_its_changes_sync() {
    let store = MemoryStore::new();
    let make = || {
        let exec = Executor::new(Arc::new(store.clone()), Arc::new(TokioClock::new()), Arc::new(CountingHost::default()), config(4));
        exec.register_callable("work").unwrap();
        let eng = TriggerEngine::new(exec.clone(), TriggerConfig::default());
        eng.start().unwrap();
        (exec, eng)
    };
    let (_exec_a, a) = make();
    let (_exec_b, b) = make();
    let t = a.register(&json!({"tenantId": "t", "type": "event", "condition": {"eventType": "order.paid"}, "action": {"callableName": "work"}})).unwrap();
    let event = json!({"type": "order.paid", "tenantId": "t"});
    assert!(b.emit(&event).unwrap().is_empty(), "b has not seen the change yet");
    assert_eq!(b.sync_changes().unwrap(), 1);
    let fired = b.emit(&event).unwrap();
    assert_eq!(fired.len(), 1);
    assert_eq!(fired[0].trigger_id, t.trigger_id);
    // The count is the store's, shared.
    assert_eq!(a.get(&t.trigger_id).unwrap().fire_count, 1);
    a.remove(&t.trigger_id).unwrap();
    b.sync_changes().unwrap();
    assert!(b.emit(&event).unwrap().is_empty(), "a removal reaches b too");
}

// ---------------------------------------------------------------------------
// The rescuer.

#[tokio::test(start_paused = true)]
async fn the_rescuer_requeues_work_of_a_dead_engine_then_fails_it() {
    let store = MemoryStore::new();
    let maintained = ExecutorConfig { lease_ms: 300, max_stalls: 1, maintenance: true, ..config(4) };
    let make = |cfg: ExecutorConfig| {
        let exec = Executor::new(Arc::new(store.clone()), Arc::new(TokioClock::new()), Arc::new(CountingHost::default()), cfg);
        exec.register_callable("work").unwrap();
        exec
    };
    // Engine A claims and "dies": no heartbeat, its lease runs out.
    let dead = make(ExecutorConfig { lease_ms: 300, ..config(4) });
    let e = dead.submit(req(json!({"tenantId": "t", "callableName": "work"})), Watch::No).unwrap();
    assert_eq!(dead.take().unwrap().len(), 1);
    // Engine B runs the heartbeat and the rescuer.
    let live = make(maintained);
    live.start();
    live.set_interest(EventKind::Failed, true);
    advance_ms(500).await;
    assert_eq!(live.get(&e.execution_id).unwrap().unwrap().status, BackgroundExecutionStatus::Queued, "first stall: queued again");
    let jobs = live.take().unwrap();
    assert_eq!(jobs.len(), 1, "the rescued work runs on the live engine");
    // B's heartbeat keeps its own attempt leased well past one lease.
    advance_ms(1000).await;
    assert_eq!(live.get(&e.execution_id).unwrap().unwrap().status, BackgroundExecutionStatus::Running);
    live.complete(&jobs[0].execution_id, jobs[0].attempt, Outcome::Completed(json!(1))).unwrap();
    assert_eq!(live.get(&e.execution_id).unwrap().unwrap().status, BackgroundExecutionStatus::Completed);

    // A job that kills every engine that runs it ends failed after maxStalls.
    let e2 = dead.submit(req(json!({"tenantId": "t", "callableName": "work"})), Watch::No).unwrap();
    let killer = make(ExecutorConfig { lease_ms: 300, ..config(4) });
    // Only the doomed engines claim it (the live one is never asked to).
    assert_eq!(killer.take().unwrap().len(), 1);
    advance_ms(500).await;
    assert_eq!(dead.take().unwrap().len(), 1, "requeued once, claimed by another doomed engine");
    advance_ms(500).await;
    let rec = live.get(&e2.execution_id).unwrap().unwrap();
    assert_eq!(rec.status, BackgroundExecutionStatus::Failed);
    assert_eq!(rec.error.unwrap().code.as_deref(), Some("ENACT_STALLED"));
    assert_eq!(events_of(&live.drain(), EventKind::Failed, &e2.execution_id).len(), 1, "the rescuer settles what it fails");
}

// ---------------------------------------------------------------------------
// The pruner.

#[tokio::test(start_paused = true)]
async fn the_pruner_bounds_finished_executions_of_a_maintained_store() {
    let store = MemoryStore::new();
    let cfg = ExecutorConfig { maintenance: true, keep_finished: Some(2), ..config(8) };
    let h = Harness::with_store(Arc::new(store.clone()), cfg);
    h.exec.start();
    let ids: Vec<String> = (0..5).map(|_| h.submit(json!({"tenantId": "t", "callableName": "work"})).execution_id).collect();
    for d in h.take() {
        h.complete_ok(&d, json!(1));
    }
    assert_eq!(ready_of(store.list(&ExecutionFilter::default())).len(), 5);
    advance_ms(enact_background_core::executor::PRUNE_EVERY.as_millis() as u64 + 10).await;
    let mut left: Vec<String> = ready_of(store.list(&ExecutionFilter::default())).into_iter().map(|e| e.execution_id).collect();
    let mut newest = ids[3..].to_vec();
    left.sort();
    newest.sort();
    assert_eq!(left, newest, "the two newest finished executions are kept");
}

/// An attempt claimed by a later-answering store but not yet taken by the
/// host is not started once it was cancelled meanwhile.
#[tokio::test(start_paused = true)]
async fn a_cancelled_attempt_waiting_in_the_ready_buffer_never_starts() {
    let (exec, host, store) = later();
    exec.start();
    let fut = exec.clone().submit_many(vec![Submission { request: req(json!({"tenantId": "t", "callableName": "work"})), watch: false, keep_record: false }]);
    let Answer::Later(_) = exec.answer(async move { Ok(fut.await.len()) }) else { panic!("answers later") };
    until(|| host.wakes() > 0).await;
    exec.drain();
    assert!(exec.take().unwrap().is_empty());
    until(|| host.wakes() > 1).await;
    let id = store_ids(&store).pop().expect("one execution");
    assert_eq!(exec.in_flight(), 1, "claimed, waiting in the ready buffer");
    let fut = exec.clone().cancel_async(id);
    exec.run("test", async move { fut.await.map(drop) }).unwrap();
    until(|| exec.in_flight() == 0).await;
    assert!(exec.take().unwrap().is_empty(), "the cancelled attempt is not handed out");
}

fn store_ids(s: &MemoryStore) -> Vec<String> {
    ready_of(s.list(&ExecutionFilter::default())).into_iter().map(|e| e.execution_id).collect()
}

// ---------------------------------------------------------------------------
// What keeps the host alive adds up, whatever the order of threads.

/// A schedule tick fires on the timer thread while the host's thread claims:
/// the claim may book the execution before the fire does. The engine's
/// count of waiting work must still come back to zero, or `idle()` and the
/// process's keep-alive would wait forever (a hang the schedule benchmark
/// hit once in 5 runs of 10,000 triggers).
#[tokio::test(start_paused = true)]
async fn waiting_work_adds_up_when_a_claim_beats_the_fire_that_inserted_it() {
    let store = Wrapped::hooked(MemoryStore::new());
    let hook = store.after_fire.clone();
    let exec = Executor::new(Arc::new(store), Arc::new(TokioClock::new()), Arc::new(CountingHost::default()), config(4));
    exec.register_callable("work").unwrap();
    let eng = TriggerEngine::new(exec.clone(), TriggerConfig::default());
    let t = eng.register(&json!({"tenantId": "t", "type": "manual", "condition": {}, "action": {"callableName": "work"}})).unwrap();
    let claimed = Arc::new(Mutex::new(Vec::new()));
    {
        let (exec, claimed) = (exec.clone(), claimed.clone());
        *hook.lock().unwrap() = Some(Box::new(move || *claimed.lock().unwrap() = exec.take().unwrap()));
    }
    eng.fire(&t.trigger_id, None).unwrap();
    let jobs = claimed.lock().unwrap().clone();
    assert_eq!(jobs.len(), 1, "the hook claimed the fired execution before the fire returned");
    exec.complete(&jobs[0].execution_id, jobs[0].attempt, Outcome::Completed(json!(1))).unwrap();
    assert_eq!((exec.busy(), exec.waiting()), (0, 0), "nothing is left waiting");
}

/// A watched submission (a `silent` submit) whose execution is claimed,
/// run and finished before the submitter's insert answer is processed
/// (a durable store answers the insert and the claim of one group commit
/// in either order): its end must still settle the watch.
#[tokio::test(start_paused = true)]
async fn a_watched_submission_that_ends_before_its_insert_is_answered_still_settles() {
    let store = Wrapped::hooked(MemoryStore::new());
    let hook = store.after_insert.clone();
    let exec = Executor::new(Arc::new(store), Arc::new(TokioClock::new()), Arc::new(CountingHost::default()), config(4));
    exec.register_callable("work").unwrap();
    {
        let exec = exec.clone();
        *hook.lock().unwrap() = Some(Box::new(move || {
            let jobs = exec.take().unwrap();
            assert_eq!(jobs.len(), 1, "the hook claims the execution before the insert answers");
            exec.complete(&jobs[0].execution_id, jobs[0].attempt, Outcome::Completed(json!("early"))).unwrap();
        }));
    }
    let batch = vec![Submission { request: req(json!({"tenantId": "t", "callableName": "work"})), watch: true, keep_record: false }];
    let receipt = exec.clone().submit_many(batch).await.pop().unwrap().unwrap();
    let notices = exec.drain();
    let done = settled(&notices);
    assert_eq!(done.len(), 1, "the end of a watched execution settles its watch: {notices:?}");
    assert_eq!(done[0].execution_id, receipt.execution_id);
    assert_eq!((exec.busy(), exec.waiting()), (0, 0), "nothing is left waiting");
}

/// With `listen_ms`, an engine picks up other engines' trigger changes on
/// its own, and its scheduler keeps ticking beside the listener.
#[tokio::test(start_paused = true)]
async fn the_listener_follows_other_engines_while_the_scheduler_keeps_ticking() {
    let store = MemoryStore::new();
    let make = |listen_ms| {
        let exec = Executor::new(Arc::new(store.clone()), Arc::new(TokioClock::new()), Arc::new(CountingHost::default()), config(4));
        exec.register_callable("work").unwrap();
        let eng = TriggerEngine::new(exec.clone(), TriggerConfig { listen_ms, ..TriggerConfig::default() });
        eng.start().unwrap();
        (exec, eng)
    };
    let (_ea, a) = make(None);
    let (eb, b) = make(Some(50));
    let event = json!({"type": "order.paid", "tenantId": "t"});
    a.register(&json!({"tenantId": "t", "type": "event", "condition": {"eventType": "order.paid"}, "action": {"callableName": "work"}})).unwrap();
    advance_ms(60).await;
    assert_eq!(b.emit(&event).unwrap().len(), 1, "b's listener applied a's registration");
    // A schedule registered on b itself ticks on time although the listener
    // waits beside the scheduler.
    b.register(&json!({"tenantId": "t", "type": "schedule", "condition": {"intervalSeconds": 1}, "action": {"callableName": "work"}})).unwrap();
    advance_ms(1010).await;
    assert!(eb.list(&ExecutionFilter::default()).unwrap().iter().any(|e| e.trigger_source.as_ref().is_some_and(|s| s["type"] == "schedule")), "the schedule ticked");
    b.stop();
    a.stop();
}
