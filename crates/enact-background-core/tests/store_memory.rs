//! The in-memory Store through the `Store` trait, and the executor's timer
//! against work that arrives while the timer is scanning the store.

mod common;

use std::sync::{Arc, Mutex};

use chrono::Utc;
use common::*;
use enact_background_core::clock::millis;
use enact_background_core::prelude::*;
use enact_background_core::store::{Admit, Change, Expect, Readiness, StatusCounts, StoreResult};
use serde_json::json;

fn exec(id: &str, tenant: &str, priority: u8) -> BackgroundExecution {
    BackgroundExecution {
        execution_id: id.into(),
        tenant_id: tenant.into(),
        callable_name: "work".into(),
        input: None,
        context: None,
        config: BackgroundExecutionConfig { priority, ..Default::default() },
        status: BackgroundExecutionStatus::Queued,
        queued_at: Utc::now(),
        started_at: None,
        completed_at: None,
        output: None,
        error: None,
        target_binding_applied: false,
        trigger_id: None,
        metadata: None,
        trigger_source: None,
        attempt: 0,
        binding_result: None,
        chain_depth: 0,
    }
}

fn claim_all(s: &MemoryStore, max: usize) -> Vec<String> {
    s.claim(max, Utc::now(), &mut |_, _| Admit::Yes).unwrap().into_iter().map(|e| e.execution_id).collect()
}

fn error(attempt: u32) -> ExecutionError {
    ExecutionError {
        category: ErrorCategory::ToolError,
        message: "x".into(),
        retry_policy: None,
        code: None,
        attempt,
        step_id: None,
        provider: None,
        http_status: None,
        details: None,
        occurred_at: 0,
    }
}

#[test]
fn store_insert_get_and_duplicates() {
    let s = MemoryStore::new();
    s.insert(exec("e1", "A", 50), Readiness::Now).unwrap();
    assert!(s.insert(exec("e1", "B", 10), Readiness::Now).is_err());
    let got = s.get("e1").unwrap().unwrap();
    assert_eq!(got.tenant_id, "A");
    assert_eq!(s.get("nope").unwrap(), None);
    assert_eq!(s.counts().unwrap(), StatusCounts { queued: 1, ..Default::default() });
}

#[test]
fn store_claim_order_priority_class_tenant_fifo() {
    let s = MemoryStore::new();
    s.insert(exec("idle-hi", "A", 255), Readiness::Idle).unwrap();
    s.insert(exec("a1", "A", 50), Readiness::Now).unwrap();
    s.insert(exec("a2", "A", 50), Readiness::Now).unwrap();
    s.insert(exec("a3", "A", 50), Readiness::Now).unwrap();
    s.insert(exec("b1", "B", 50), Readiness::Now).unwrap();
    s.insert(exec("low", "C", 1), Readiness::Now).unwrap();
    s.insert(exec("hi", "C", 99), Readiness::Now).unwrap();
    assert_eq!(claim_all(&s, 3), ["hi", "a1", "b1"]);
    assert_eq!(claim_all(&s, 10), ["a2", "a3", "low", "idle-hi"]);
    assert!(claim_all(&s, 10).is_empty());
    let c = s.counts().unwrap();
    assert_eq!((c.queued, c.running), (0, 7));
}

#[test]
fn store_claim_marks_running() {
    let s = MemoryStore::new();
    s.insert(exec("e", "A", 50), Readiness::Now).unwrap();
    let now = Utc::now();
    let got = s.claim(1, now, &mut |_, _| Admit::Yes).unwrap();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].status, BackgroundExecutionStatus::Running);
    assert_eq!(got[0].attempt, 1);
    assert_eq!(got[0].started_at, Some(now));
    assert_eq!(s.get("e").unwrap().unwrap(), got[0]);
}

#[test]
fn store_claim_max_zero_claims_nothing() {
    let s = MemoryStore::new();
    s.insert(exec("e", "A", 50), Readiness::Now).unwrap();
    assert!(claim_all(&s, 0).is_empty());
    assert_eq!(s.get("e").unwrap().unwrap().status, BackgroundExecutionStatus::Queued);
}

#[test]
fn store_claim_admit_refusals_skip_a_tenant_only() {
    let s = MemoryStore::new();
    for i in 0..3 {
        s.insert(exec(&format!("a{i}"), "A", 50), Readiness::Now).unwrap();
        s.insert(exec(&format!("b{i}"), "B", 50), Readiness::Now).unwrap();
    }
    let mut asked = Vec::new();
    let got = s
        .claim(10, Utc::now(), &mut |t, _| {
            asked.push(t.to_owned());
            if t == "A" {
                Admit::TenantFull
            } else {
                Admit::Yes
            }
        })
        .unwrap();
    let ids: Vec<_> = got.into_iter().map(|e| e.execution_id).collect();
    assert_eq!(ids, ["b0", "b1", "b2"]);
    assert!(asked.iter().all(|t| t == "A" || t == "B"));
    // A's work is still there, in order.
    assert_eq!(claim_all(&s, 10), ["a0", "a1", "a2"]);
}

fn exec_of(id: &str, tenant: &str, callable: &str) -> BackgroundExecution {
    let mut e = exec(id, tenant, 50);
    e.callable_name = callable.to_owned();
    e
}

/// A callable at its limit is passed over, not the tenant: the tenant's
/// later work of other callables starts, oldest first, and the refused
/// callable's work keeps its order for later.
#[test]
fn store_claim_callable_refusals_skip_that_callable_only() {
    let s = MemoryStore::new();
    for (id, callable) in [("s0", "slow"), ("s1", "slow"), ("f0", "fast"), ("s2", "slow"), ("f1", "fast"), ("o0", "other")] {
        s.insert(exec_of(id, "A", callable), Readiness::Now).unwrap();
    }
    let mut asked = Vec::new();
    let got = s
        .claim(10, Utc::now(), &mut |_, c| {
            asked.push(c.to_owned());
            if c == "slow" {
                Admit::CallableFull
            } else {
                Admit::Yes
            }
        })
        .unwrap();
    let ids: Vec<_> = got.into_iter().map(|e| e.execution_id).collect();
    assert_eq!(ids, ["f0", "f1", "o0"], "oldest first among the admitted callables");
    assert!(asked.iter().filter(|c| *c == "slow").count() >= 1);
    assert_eq!(claim_all(&s, 10), ["s0", "s1", "s2"], "the refused callable's work, in order");
}

/// Across callables of one tenant, admitted work starts in submission
/// order (the per-callable queues merge by age).
#[test]
fn store_claim_merges_callables_oldest_first() {
    let s = MemoryStore::new();
    let order = ["x0", "y0", "x1", "z0", "y1", "x2"];
    for id in order {
        s.insert(exec_of(id, "A", &id[..1]), Readiness::Now).unwrap();
    }
    assert_eq!(claim_all(&s, 10), order);
    // A limit of one admission per callable per claim still takes the
    // oldest of each.
    for id in order {
        s.insert(exec_of(&format!("{id}b"), "A", &id[..1]), Readiness::Now).unwrap();
    }
    let mut seen = std::collections::HashSet::new();
    let got: Vec<_> = s
        .claim(10, Utc::now(), &mut |_, c| if seen.insert(c.to_owned()) { Admit::Yes } else { Admit::CallableFull })
        .unwrap()
        .into_iter()
        .map(|e| e.execution_id)
        .collect();
    assert_eq!(got, ["x0b", "y0b", "z0b"]);
    assert_eq!(claim_all(&s, 10), ["x1b", "y1b", "x2b"]);
}

#[test]
fn store_delayed_work_is_promoted_when_due() {
    let s = MemoryStore::new();
    s.insert(exec("later", "A", 50), Readiness::At(2_000)).unwrap();
    s.insert(exec("soon", "A", 10), Readiness::At(1_000)).unwrap();
    assert!(claim_all(&s, 10).is_empty());
    assert_eq!(s.promote_due(999).unwrap(), (0, Some(1_000)));
    assert_eq!(s.promote_due(1_000).unwrap(), (1, Some(2_000)));
    assert_eq!(claim_all(&s, 10), ["soon"]);
    assert_eq!(s.promote_due(5_000).unwrap(), (1, None));
    assert_eq!(s.promote_due(6_000).unwrap(), (0, None));
    assert_eq!(claim_all(&s, 10), ["later"]);
    assert_eq!(s.counts().unwrap().queued, 0, "delayed work counts as queued until claimed");
}

#[test]
fn store_transitions_are_compare_and_set() {
    let s = MemoryStore::new();
    s.insert(exec("e", "A", 50), Readiness::Now).unwrap();
    let at = Utc::now();
    let finish = || Change::Finish { status: BackgroundExecutionStatus::Completed, output: Some(json!(1)), error: None, at };
    // Not running yet.
    assert_eq!(s.transition("e", Expect::Running(1), finish()).unwrap(), None);
    claim_all(&s, 1);
    // Wrong attempt.
    assert_eq!(s.transition("e", Expect::Running(2), finish()).unwrap(), None);
    assert_eq!(s.transition("e", Expect::Completed, Change::Cancel { at }).unwrap(), None);
    // Unknown id.
    assert_eq!(s.transition("nope", Expect::Active, Change::Cancel { at }).unwrap(), None);
    let done = s.transition("e", Expect::Running(1), finish()).unwrap().unwrap();
    assert_eq!(done.status, BackgroundExecutionStatus::Completed);
    assert_eq!(done.completed_at, Some(at));
    // A duplicate result is refused.
    assert_eq!(s.transition("e", Expect::Running(1), finish()).unwrap(), None);
    assert_eq!(s.transition("e", Expect::Active, Change::Cancel { at }).unwrap(), None);
    assert_eq!(s.counts().unwrap(), StatusCounts { completed: 1, ..Default::default() });
}

#[test]
fn store_retry_release_cancel_and_bound() {
    let s = MemoryStore::new();
    let at = Utc::now();
    let now_ms = millis(at);
    s.insert(exec("r", "A", 50), Readiness::Now).unwrap();
    s.insert(exec("q", "A", 50), Readiness::Now).unwrap();
    assert_eq!(claim_all(&s, 1), ["r"]);

    // Retry: back to queued, not claimable until due.
    let rec = s.transition("r", Expect::Running(1), Change::Retry { error: error(1), due_ms: now_ms + 500 }).unwrap().unwrap();
    assert_eq!(rec.status, BackgroundExecutionStatus::Queued);
    assert_eq!(rec.error.unwrap().attempt, 1);
    assert_eq!(claim_all(&s, 10), ["q"]);
    assert_eq!(s.promote_due(now_ms + 499).unwrap().0, 0);
    assert_eq!(s.promote_due(now_ms + 500).unwrap().0, 1);
    let again = s.claim(10, at, &mut |_, _| Admit::Yes).unwrap();
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].attempt, 2);

    // Release: queued at once, the attempt not used up.
    let rel = s.transition("r", Expect::Running(2), Change::Release).unwrap().unwrap();
    assert_eq!((rel.status, rel.attempt), (BackgroundExecutionStatus::Queued, 1));
    let again = s.claim(10, at, &mut |_, _| Admit::Yes).unwrap();
    assert_eq!(again[0].attempt, 2);

    // Cancel of a queued execution drops it from the queue.
    s.insert(exec("c", "A", 50), Readiness::Now).unwrap();
    s.insert(exec("d", "A", 50), Readiness::At(now_ms + 10)).unwrap();
    assert!(s.transition("c", Expect::Active, Change::Cancel { at }).unwrap().is_some());
    assert!(s.transition("d", Expect::Active, Change::Cancel { at }).unwrap().is_some());
    s.promote_due(now_ms + 100).unwrap();
    assert!(claim_all(&s, 10).is_empty());

    // Bound only applies to completed executions.
    let result = TargetBindingResult { target_type: TargetType::Custom, target_path: None, success: true, applied_value: Some("v".into()), error: None, applied_at: at };
    assert_eq!(s.transition("c", Expect::Completed, Change::Bound(result.clone())).unwrap(), None);
    s.transition("r", Expect::Running(2), Change::Finish { status: BackgroundExecutionStatus::Completed, output: None, error: None, at }).unwrap().unwrap();
    let b = s.transition("r", Expect::Completed, Change::Bound(result.clone())).unwrap().unwrap();
    assert!(b.target_binding_applied);
    assert_eq!(b.binding_result, Some(Box::new(result)));

    let c = s.counts().unwrap();
    assert_eq!(c, StatusCounts { running: 1, completed: 1, cancelled: 2, ..Default::default() });
    // Counts agree with the records.
    let all = s.list(&ExecutionFilter::default()).unwrap();
    let mut recount = StatusCounts::default();
    for e in &all {
        *recount.slot(e.status) += 1;
    }
    assert_eq!(recount, c);
}

#[test]
fn store_list_filters_and_orders() {
    let s = MemoryStore::new();
    let t0 = Utc::now();
    for (i, t) in ["A", "B", "A", "C", "A"].into_iter().enumerate() {
        let mut e = exec(&format!("e{i}"), t, 50);
        e.queued_at = t0 + chrono::Duration::milliseconds(10 - i as i64);
        s.insert(e, Readiness::Now).unwrap();
    }
    let a = s.list(&ExecutionFilter { tenant_id: Some("A".into()), ..Default::default() }).unwrap();
    assert_eq!(a.iter().map(|e| e.execution_id.as_str()).collect::<Vec<_>>(), ["e4", "e2", "e0"], "oldest first");
    let lim = s.list(&ExecutionFilter { limit: Some(2), ..Default::default() }).unwrap();
    assert_eq!(lim.iter().map(|e| e.execution_id.as_str()).collect::<Vec<_>>(), ["e4", "e3"]);
    let none = s.list(&ExecutionFilter { status: Some(BackgroundExecutionStatus::Running), ..Default::default() }).unwrap();
    assert!(none.is_empty());
}

// ---------------------------------------------------------------------------
// Work arriving while the timer task scans the store.

/// A MemoryStore that runs a hook once, right after a `promote_due` scan —
/// standing in for another thread that submits or starts work while the
/// executor's timer task is in the middle of a tick.
type Hook = Box<dyn FnOnce() + Send>;

#[derive(Clone)]
struct HookStore {
    inner: MemoryStore,
    hook: Arc<Mutex<Option<Hook>>>,
}

impl Store for HookStore {
    fn insert(&self, exec: BackgroundExecution, ready: Readiness) -> StoreResult<()> {
        self.inner.insert(exec, ready)
    }
    fn get(&self, id: &str) -> StoreResult<Option<BackgroundExecution>> {
        self.inner.get(id)
    }
    fn list(&self, filter: &ExecutionFilter) -> StoreResult<Vec<BackgroundExecution>> {
        self.inner.list(filter)
    }
    fn claim(&self, max: usize, now: enact_background_core::model::Timestamp, admit: &mut dyn FnMut(&str, &str) -> Admit) -> StoreResult<Vec<BackgroundExecution>> {
        self.inner.claim(max, now, admit)
    }
    fn promote_due(&self, now_ms: i64) -> StoreResult<(usize, Option<i64>)> {
        let r = self.inner.promote_due(now_ms);
        let hook = self.hook.lock().unwrap().take();
        if let Some(f) = hook {
            f();
        }
        r
    }
    fn transition(&self, id: &str, expect: Expect, change: Change) -> StoreResult<Option<BackgroundExecution>> {
        self.inner.transition(id, expect, change)
    }
    fn counts(&self) -> StoreResult<StatusCounts> {
        self.inner.counts()
    }
}

fn hooked() -> (Arc<Executor>, Arc<CountingHost>, HookStore) {
    let store = HookStore { inner: MemoryStore::new(), hook: Arc::new(Mutex::new(None)) };
    let host = Arc::new(CountingHost::default());
    let exec = Executor::new(Arc::new(store.clone()), Arc::new(TokioClock::new()), host.clone(), config(4));
    exec.register_callable("work").unwrap();
    (exec, host, store)
}

#[tokio::test(start_paused = true)]
async fn timer_sees_delayed_work_submitted_during_its_scan() {
    let (exec, host, store) = hooked();
    let id = Arc::new(Mutex::new(String::new()));
    {
        let (exec, id) = (exec.clone(), id.clone());
        *store.hook.lock().unwrap() = Some(Box::new(move || {
            let e = exec.submit(req(json!({"tenantId": "t", "callableName": "work", "config": {"mode": "deferred", "delayMs": 100}})), false).unwrap();
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
    let (exec, _host, store) = hooked();
    let e = exec.submit(req(json!({"tenantId": "t", "callableName": "work", "config": {"timeoutMs": 100}})), false).unwrap();
    {
        let exec = exec.clone();
        *store.hook.lock().unwrap() = Some(Box::new(move || {
            assert_eq!(exec.take().unwrap().len(), 1);
        }));
    }
    exec.start();
    advance_ms(1).await;
    assert_eq!(exec.get(&e.execution_id).unwrap().unwrap().status, BackgroundExecutionStatus::Running);
    advance_ms(150).await;
    assert_eq!(
        exec.get(&e.execution_id).unwrap().unwrap().status,
        BackgroundExecutionStatus::Timeout,
        "a deadline armed during a timer scan was missed"
    );
}

fn finish(s: &MemoryStore, id: &str) -> Option<BackgroundExecution> {
    let change = Change::Finish { status: BackgroundExecutionStatus::Completed, output: Some(json!(1)), error: None, at: Utc::now() };
    s.transition(id, Expect::Running(1), change).unwrap()
}

#[test]
fn store_keeps_only_the_newest_finished_executions() {
    let s = MemoryStore::keeping(2);
    for id in ["a", "b", "c", "d"] {
        s.insert(exec(id, "t", 50), Readiness::Now).unwrap();
    }
    assert_eq!(claim_all(&s, 3), ["a", "b", "c"]);
    for id in ["a", "b", "c"] {
        assert_eq!(finish(&s, id).unwrap().status, BackgroundExecutionStatus::Completed, "the transition still answers the record");
    }
    assert!(s.get("a").unwrap().is_none(), "the oldest finished execution is dropped");
    assert!(s.get("b").unwrap().is_some() && s.get("c").unwrap().is_some());
    assert_eq!(s.get("d").unwrap().unwrap().status, BackgroundExecutionStatus::Queued, "queued work is never dropped");
    // Counts still add up to every execution ever inserted.
    assert_eq!(s.counts().unwrap(), StatusCounts { queued: 1, completed: 3, ..Default::default() });
    assert_eq!(s.list(&ExecutionFilter::default()).unwrap().len(), 3);
}

#[test]
fn store_keeps_a_completed_execution_until_it_is_bound() {
    let s = MemoryStore::keeping(0);
    let mut e = exec("a", "t", 50);
    e.config.target_binding = Some(Box::new(TargetBindingConfig {
        target_type: TargetType::Custom,
        target_path: None,
        transform: TransformType::None,
        max_length: None,
        json_path: None,
        thread_id: None,
        execution_id: None,
    }));
    s.insert(e, Readiness::Now).unwrap();
    claim_all(&s, 1);
    finish(&s, "a").unwrap();
    assert!(s.get("a").unwrap().is_some(), "kept while its binding is outstanding");
    let result = TargetBindingResult {
        target_type: TargetType::Custom,
        target_path: None,
        success: true,
        applied_value: Some("1".into()),
        error: None,
        applied_at: Utc::now(),
    };
    let bound = s.transition("a", Expect::Completed, Change::Bound(result)).unwrap();
    assert!(bound.unwrap().target_binding_applied, "the bound record is answered");
    assert!(s.get("a").unwrap().is_none(), "then dropped (keeping 0)");
}

/// The store keeps executions in a compact form and rebuilds records on
/// read: every field of every enact-core execution fixture (context,
/// metadata, trigger source, output, error, binding result, times to the
/// nanosecond) comes back exactly as it went in, and reads as the same JSON.
#[test]
fn store_gives_back_every_field_of_each_fixture() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared/fixtures/enact-core-0.0.2/");
    let mut seen = 0;
    for entry in std::fs::read_dir(dir).expect("fixtures") {
        let path = entry.expect("entry").path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if !name.starts_with("execution_") {
            continue;
        }
        let text = std::fs::read_to_string(&path).expect("read");
        let json: serde_json::Value = serde_json::from_str(&text).expect("json");
        let mut rec: BackgroundExecution = serde_json::from_value(json.clone()).expect(&name);
        rec.chain_depth = 3; // an extension field, kept too
        rec.queued_at = rec.queued_at + chrono::Duration::nanoseconds(123_456_789);
        let s = MemoryStore::new();
        let ready = if rec.status.is_final() { Readiness::Final } else { Readiness::At(i64::MAX) };
        s.insert(rec.clone(), ready).unwrap();
        let back = s.get(&rec.execution_id).unwrap().expect(&name);
        assert_eq!(back, rec, "{name}");
        let listed = s.list(&Default::default()).unwrap();
        assert_eq!(listed, vec![rec.clone()], "{name}");
        seen += 1;
    }
    assert!(seen >= 6, "only {seen} execution fixtures found");
}

/// Like submissions share one config and one copy of each tenant and
/// callable name, so many waiting executions stay small; a different
/// config is still its own.
#[test]
fn store_keeps_distinct_configs_apart() {
    let s = MemoryStore::new();
    let mut a = exec("a", "t1", 50);
    a.config.timeout_ms = 1000;
    let mut b = exec("b", "t1", 50);
    b.config.timeout_ms = 2000;
    let c = exec("c", "t2", 10);
    for e in [&a, &b, &c] {
        s.insert(e.clone(), Readiness::Now).unwrap();
    }
    assert_eq!(s.get("a").unwrap().unwrap().config.timeout_ms, 1000);
    assert_eq!(s.get("b").unwrap().unwrap().config.timeout_ms, 2000);
    assert_eq!(s.get("c").unwrap().unwrap(), c);
    assert_eq!(s.get("c").unwrap().unwrap().tenant_id, "t2");
}

/// A dropped execution's place in the store is reused by the next one; a
/// stale queue entry of the dropped execution must not start the newcomer
/// early, and lookups by id must see only the newcomer.
#[test]
fn store_reuses_dropped_places_without_waking_stale_entries() {
    let s = MemoryStore::keeping(0);
    s.insert(exec("a", "t", 50), Readiness::Now).unwrap();
    assert!(s.transition("a", Expect::Active, Change::Cancel { at: Utc::now() }).unwrap().is_some());
    assert!(s.get("a").unwrap().is_none(), "kept 0 finished: dropped at once");
    s.insert(exec("b", "t", 50), Readiness::At(i64::MAX - 1)).unwrap();
    assert!(claim_all(&s, 10).is_empty(), "the cancelled entry of a does not start b");
    assert_eq!(s.get("b").unwrap().unwrap().status, BackgroundExecutionStatus::Queued);
    assert_eq!(s.promote_due(i64::MAX).unwrap().0, 1);
    assert_eq!(claim_all(&s, 10), ["b"]);
    // Many rounds of drop and reuse keep ids and records paired.
    for n in 0..10_000 {
        let id = format!("x{n}");
        s.insert(exec(&id, &format!("tenant{}", n % 7), 50), Readiness::Now).unwrap();
        assert_eq!(claim_all(&s, 1), [id.clone()]);
        assert_eq!(finish(&s, &id).unwrap().tenant_id, format!("tenant{}", n % 7));
        assert!(s.get(&id).unwrap().is_none());
    }
    assert_eq!(s.get("b").unwrap().unwrap().status, BackgroundExecutionStatus::Running);
}
