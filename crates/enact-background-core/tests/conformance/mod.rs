//! The store conformance suite (River's `riverdrivertest.Exercise`): every
//! case takes a fresh, empty driver and exercises one part of the
//! [`Driver`] contract through the trait alone. `store_conformance.rs` runs
//! every case against every driver with [`conformance!`]; a new driver
//! passes the same suite by adding one line there.
#![allow(dead_code)]

use std::sync::Arc;

use chrono::{Duration, Utc};
use enact_background_core::clock::millis;
use enact_background_core::model::*;
use enact_background_core::store::*;
use serde_json::json;

/// Runs each named case against a driver made by `$make` (a fresh one per
/// case), each case a `#[tokio::test]` in a module named after the driver.
#[macro_export]
macro_rules! conformance {
    ($driver:ident => $make:expr; $($case:ident),+ $(,)?) => {
        mod $driver {
            use super::*;
            $(
                #[tokio::test]
                async fn $case() {
                    let driver: std::sync::Arc<dyn enact_background_core::store::Driver> = $make;
                    conformance::$case(driver).await;
                }
            )+
        }
    };
}

pub fn exec(id: &str, tenant: &str, priority: u8) -> BackgroundExecution {
    exec_of(id, tenant, "work", priority)
}

pub fn exec_of(id: &str, tenant: &str, callable: &str, priority: u8) -> BackgroundExecution {
    BackgroundExecution {
        execution_id: id.into(),
        tenant_id: tenant.into(),
        callable_name: callable.into(),
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
        chain_root: None,
        progress: None,
        trace_context: None,
    }
}

fn new(record: BackgroundExecution, ready: Readiness) -> NewExecution {
    NewExecution::new(record, ready)
}

async fn insert(d: &Arc<dyn Driver>, record: BackgroundExecution, ready: Readiness) {
    assert_eq!(d.insert_many(vec![new(record, ready)]).await.unwrap(), vec![Inserted::Ok]);
}

/// Limits serving `callables` (no callable limit) and `tenant`.
pub fn limits(tenant: Option<usize>, callables: &[(&str, Option<usize>)]) -> Arc<Limits> {
    Arc::new(Limits { tenant, callables: callables.iter().map(|(c, l)| (c.to_string(), *l)).collect() })
}

fn params(max: usize, limits: Arc<Limits>) -> ClaimParams {
    let now = Utc::now();
    ClaimParams { worker: "engine_test".into(), max, now, lease_until: now + Duration::seconds(30), limits }
}

async fn claim_ids(d: &Arc<dyn Driver>, max: usize, limits: Arc<Limits>) -> Vec<String> {
    d.claim(params(max, limits)).await.unwrap().into_iter().map(|e| e.execution_id).collect()
}

/// Claims with only the callables `work`, `x`, `y`, `z` served, no limits.
async fn claim_all(d: &Arc<dyn Driver>, max: usize) -> Vec<String> {
    claim_ids(d, max, limits(None, &[("work", None), ("x", None), ("y", None), ("z", None)])).await
}

pub fn error(attempt: u32) -> ExecutionError {
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

fn finish(id: &str, attempt: u32, status: BackgroundExecutionStatus) -> Finish {
    let change = Change::Finish { status, output: Some(json!(1)), error: None, at: Utc::now() };
    Finish { id: id.into(), attempt, change, want_record: true }
}

fn done(f: &Finished) -> &BackgroundExecution {
    match f {
        Finished::Done(Some(rec)) => rec,
        other => panic!("expected a finished record, got {other:?}"),
    }
}

// ---------------------------------------------------------------------------
// Executions

pub async fn insert_get_and_duplicates(d: Arc<dyn Driver>) {
    insert(&d, exec("e1", "A", 50), Readiness::Now).await;
    let answers = d.insert_many(vec![new(exec("e1", "B", 10), Readiness::Now), new(exec("e2", "B", 10), Readiness::Now)]).await.unwrap();
    assert_eq!(answers, vec![Inserted::Duplicate, Inserted::Ok], "a duplicate does not hold up the rest of the batch");
    assert_eq!(d.get("e1").await.unwrap().unwrap().tenant_id, "A", "the duplicate wrote nothing");
    assert_eq!(d.get("nope").await.unwrap(), None);
    assert_eq!(d.counts().await.unwrap(), StatusCounts { queued: 2, ..Default::default() });
}

pub async fn insert_many_keeps_every_field(d: Arc<dyn Driver>) {
    let mut e = exec("full", "t", 7);
    e.input = Some("in".into());
    e.context = Some([("k".to_string(), "v".to_string())].into());
    e.metadata = Some(serde_json::from_value(json!({"a": [1, {"b": null}]})).unwrap());
    e.trigger_id = Some("trigger_x".into());
    e.trigger_source = Some(json!({"type": "t", "data": {"n": 1.5}}));
    e.chain_depth = 2;
    e.trace_context = Some([("traceparent".to_string(), "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01".to_string())].into());
    e.config.timeout_ms = 1234;
    e.config.retry = Some(RetryConfig { max_attempts: 4, backoff_ms: 10, backoff_multiplier: 1.5 });
    insert(&d, e.clone(), Readiness::Now).await;
    let back = d.get("full").await.unwrap().unwrap();
    assert_eq!(serde_json::to_value(&back).unwrap(), serde_json::to_value(&e).unwrap());
}

pub async fn claim_order_priority_class_tenant_fifo(d: Arc<dyn Driver>) {
    insert(&d, exec("idle-hi", "A", 255), Readiness::Idle).await;
    for id in ["a1", "a2", "a3"] {
        insert(&d, exec(id, "A", 50), Readiness::Now).await;
    }
    insert(&d, exec("b1", "B", 50), Readiness::Now).await;
    insert(&d, exec("low", "C", 1), Readiness::Now).await;
    insert(&d, exec("hi", "C", 99), Readiness::Now).await;
    assert_eq!(claim_all(&d, 3).await, ["hi", "a1", "b1"]);
    assert_eq!(claim_all(&d, 10).await, ["a2", "a3", "low", "idle-hi"]);
    assert!(claim_all(&d, 10).await.is_empty());
    let c = d.counts().await.unwrap();
    assert_eq!((c.queued, c.running), (0, 7));
}

pub async fn claim_marks_running_and_leases(d: Arc<dyn Driver>) {
    insert(&d, exec("e", "A", 50), Readiness::Now).await;
    let p = params(1, limits(None, &[("work", None)]));
    let now = p.now;
    let got = d.claim(p).await.unwrap();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].status, BackgroundExecutionStatus::Running);
    assert_eq!(got[0].attempt, 1);
    assert_eq!(got[0].started_at, Some(now));
    assert_eq!(d.get("e").await.unwrap().unwrap(), got[0]);
}

pub async fn claim_max_zero_claims_nothing(d: Arc<dyn Driver>) {
    insert(&d, exec("e", "A", 50), Readiness::Now).await;
    assert!(claim_all(&d, 0).await.is_empty());
    assert_eq!(d.get("e").await.unwrap().unwrap().status, BackgroundExecutionStatus::Queued);
}

/// A tenant at its limit is passed over; its work waits, in order, and
/// the limit counts what is running in the store (not per claim).
pub async fn claim_tenant_limit_counts_running_work(d: Arc<dyn Driver>) {
    for i in 0..3 {
        insert(&d, exec(&format!("a{i}"), "A", 50), Readiness::Now).await;
        insert(&d, exec(&format!("b{i}"), "B", 50), Readiness::Now).await;
    }
    let one = limits(Some(1), &[("work", None)]);
    assert_eq!(claim_ids(&d, 10, one.clone()).await, ["a0", "b0"]);
    assert!(claim_ids(&d, 10, one.clone()).await.is_empty(), "both tenants are at their limit");
    assert!(matches!(d.finish_many(vec![finish("a0", 1, BackgroundExecutionStatus::Completed)]).await.unwrap()[0], Finished::Done(_)));
    assert_eq!(claim_ids(&d, 10, one).await, ["a1"], "a finished attempt frees its tenant's slot");
}

/// A callable at its limit is passed over, not the tenant: the tenant's
/// later work of other callables starts, oldest first, and the held
/// callable's work keeps its order for later.
pub async fn claim_callable_limit_skips_that_callable_only(d: Arc<dyn Driver>) {
    for (id, callable) in [("s0", "slow"), ("s1", "slow"), ("f0", "fast"), ("s2", "slow"), ("f1", "fast"), ("o0", "other")] {
        insert(&d, exec_of(id, "A", callable, 50), Readiness::Now).await;
    }
    let l = limits(None, &[("slow", Some(1)), ("fast", None), ("other", None)]);
    assert_eq!(claim_ids(&d, 10, l.clone()).await, ["s0", "f0", "f1", "o0"]);
    assert!(claim_ids(&d, 10, l.clone()).await.is_empty());
    d.finish_many(vec![finish("s0", 1, BackgroundExecutionStatus::Completed)]).await.unwrap();
    assert_eq!(claim_ids(&d, 10, l).await, ["s1"], "the held callable's work, in order");
}

/// Work of callables the claiming engine does not run is left for
/// engines that run them.
pub async fn claim_takes_only_served_callables(d: Arc<dyn Driver>) {
    insert(&d, exec_of("m", "A", "mine", 50), Readiness::Now).await;
    insert(&d, exec_of("t", "A", "theirs", 50), Readiness::Now).await;
    assert_eq!(claim_ids(&d, 10, limits(None, &[("mine", None)])).await, ["m"]);
    assert_eq!(claim_ids(&d, 10, limits(None, &[("theirs", None)])).await, ["t"]);
}

/// Across callables of one tenant, work starts in submission order.
pub async fn claim_merges_callables_oldest_first(d: Arc<dyn Driver>) {
    let order = ["x0", "y0", "x1", "z0", "y1", "x2"];
    for id in order {
        insert(&d, exec_of(id, "A", &id[..1], 50), Readiness::Now).await;
    }
    assert_eq!(claim_all(&d, 10).await, order);
}

pub async fn staging_makes_delayed_work_claimable_when_due(d: Arc<dyn Driver>) {
    insert(&d, exec("later", "A", 50), Readiness::At(2_000)).await;
    insert(&d, exec("soon", "A", 10), Readiness::At(1_000)).await;
    assert!(claim_all(&d, 10).await.is_empty());
    assert_eq!(d.stage_due(999).await.unwrap(), Staged { promoted: 0, next_due_ms: Some(1_000) });
    assert_eq!(d.stage_due(1_000).await.unwrap(), Staged { promoted: 1, next_due_ms: Some(2_000) });
    assert_eq!(claim_all(&d, 10).await, ["soon"]);
    assert_eq!(d.stage_due(5_000).await.unwrap(), Staged { promoted: 1, next_due_ms: None });
    assert_eq!(d.stage_due(6_000).await.unwrap(), Staged { promoted: 0, next_due_ms: None });
    assert_eq!(claim_all(&d, 10).await, ["later"]);
    assert_eq!(d.counts().await.unwrap().queued, 0, "delayed work counts as queued until claimed");
}

pub async fn finish_many_is_compare_and_set_per_row(d: Arc<dyn Driver>) {
    insert(&d, exec("e", "A", 50), Readiness::Now).await;
    insert(&d, exec("f", "A", 50), Readiness::Now).await;
    let r = d.finish_many(vec![finish("e", 1, BackgroundExecutionStatus::Completed)]).await.unwrap();
    assert_eq!(r, vec![Finished::Stale], "not running yet");
    assert_eq!(claim_all(&d, 2).await, ["e", "f"]);
    let r = d
        .finish_many(vec![
                finish("e", 2, BackgroundExecutionStatus::Completed),
                finish("nope", 1, BackgroundExecutionStatus::Completed),
                finish("e", 1, BackgroundExecutionStatus::Completed),
                finish("f", 1, BackgroundExecutionStatus::Failed),
                finish("e", 1, BackgroundExecutionStatus::Failed),
        ])
        .await
        .unwrap();
    assert_eq!(r.len(), 5, "one answer per row, in order");
    assert_eq!(r[0], Finished::Stale, "wrong attempt");
    assert_eq!(r[1], Finished::Stale, "unknown id");
    assert_eq!(done(&r[2]).status, BackgroundExecutionStatus::Completed);
    assert!(done(&r[2]).completed_at.is_some());
    assert_eq!(done(&r[3]).status, BackgroundExecutionStatus::Failed);
    assert_eq!(r[4], Finished::Stale, "a duplicate result is refused");
    assert_eq!(d.counts().await.unwrap(), StatusCounts { completed: 1, failed: 1, ..Default::default() });
    // A row that does not ask for its record may be answered without it.
    insert(&d, exec("q", "A", 50), Readiness::Now).await;
    claim_all(&d, 1).await;
    let quiet = Finish { want_record: false, ..finish("q", 1, BackgroundExecutionStatus::Completed) };
    assert!(matches!(d.finish_many(vec![quiet]).await.unwrap()[0], Finished::Done(_)));
    assert_eq!(d.get("q").await.unwrap().unwrap().status, BackgroundExecutionStatus::Completed);
}

pub async fn retry_release_cancel_and_bind(d: Arc<dyn Driver>) {
    let at = Utc::now();
    let now_ms = millis(at);
    insert(&d, exec("r", "A", 50), Readiness::Now).await;
    insert(&d, exec("q", "A", 50), Readiness::Now).await;
    assert_eq!(claim_all(&d, 1).await, ["r"]);

    // Retry: back to queued, not claimable until due.
    let retry = Finish { id: "r".into(), attempt: 1, change: Change::Retry { error: error(1), due_ms: now_ms + 500 }, want_record: true };
    let rows = d.finish_many(vec![retry]).await.unwrap();
    let rec = done(&rows[0]);
    assert_eq!(rec.status, BackgroundExecutionStatus::Queued);
    assert_eq!(rec.error.as_ref().unwrap().attempt, 1);
    assert_eq!(claim_all(&d, 10).await, ["q"]);
    assert_eq!(d.stage_due(now_ms + 499).await.unwrap().promoted, 0);
    assert_eq!(d.stage_due(now_ms + 500).await.unwrap().promoted, 1);
    let again = d.claim(params(10, limits(None, &[("work", None)]))).await.unwrap();
    assert_eq!((again.len(), again[0].attempt), (1, 2));

    // Release: queued at once, the attempt not used up.
    let release = Finish { id: "r".into(), attempt: 2, change: Change::Release, want_record: true };
    let rows = d.finish_many(vec![release]).await.unwrap();
    assert_eq!((done(&rows[0]).status, done(&rows[0]).attempt), (BackgroundExecutionStatus::Queued, 1));
    let again = d.claim(params(10, limits(None, &[("work", None)]))).await.unwrap();
    assert_eq!(again[0].attempt, 2);

    // Cancel of queued (and delayed) work drops it from the queue.
    insert(&d, exec("c", "A", 50), Readiness::Now).await;
    insert(&d, exec("dl", "A", 50), Readiness::At(now_ms + 10)).await;
    assert!(matches!(d.cancel("c", at).await.unwrap(), CancelOutcome::Cancelled(r) if r.status == BackgroundExecutionStatus::Cancelled));
    assert!(matches!(d.cancel("dl", at).await.unwrap(), CancelOutcome::Cancelled(_)));
    assert_eq!(d.cancel("c", at).await.unwrap(), CancelOutcome::AlreadyFinal);
    assert_eq!(d.cancel("nope", at).await.unwrap(), CancelOutcome::NotFound);
    d.stage_due(now_ms + 100).await.unwrap();
    assert!(claim_all(&d, 10).await.is_empty());

    // A binding is recorded on a completed execution only, once.
    let result = TargetBindingResult { target_type: TargetType::Custom, target_path: None, success: true, applied_value: Some("v".into()), error: None, applied_at: at };
    assert_eq!(d.bind("c", result.clone()).await.unwrap(), None, "cancelled, not completed");
    d.finish_many(vec![finish("r", 2, BackgroundExecutionStatus::Completed)]).await.unwrap();
    let b = d.bind("r", result.clone()).await.unwrap().unwrap();
    assert!(b.target_binding_applied);
    assert_eq!(b.binding_result, Some(Box::new(result.clone())));
    assert_eq!(d.bind("r", result).await.unwrap(), None, "bound once");

    // Counts agree with the records.
    let c = d.counts().await.unwrap();
    assert_eq!(c, StatusCounts { running: 1, completed: 1, cancelled: 2, ..Default::default() });
    let all = d.list(&ExecutionFilter::default()).await.unwrap();
    let mut recount = StatusCounts::default();
    for e in &all {
        *recount.slot(e.status) += 1;
    }
    assert_eq!(recount, c);
}

pub async fn list_filters_and_orders(d: Arc<dyn Driver>) {
    let t0 = Utc::now();
    for (i, t) in ["A", "B", "A", "C", "A"].into_iter().enumerate() {
        let mut e = exec(&format!("e{i}"), t, 50);
        e.queued_at = t0 + Duration::milliseconds(10 - i as i64);
        insert(&d, e, Readiness::Now).await;
    }
    let ids = |v: Vec<BackgroundExecution>| v.into_iter().map(|e| e.execution_id).collect::<Vec<_>>();
    let a = d.list(&ExecutionFilter { tenant_id: Some("A".into()), ..Default::default() }).await.unwrap();
    assert_eq!(ids(a), ["e4", "e2", "e0"], "oldest first");
    let lim = d.list(&ExecutionFilter { limit: Some(2), ..Default::default() }).await.unwrap();
    assert_eq!(ids(lim), ["e4", "e3"]);
    let none = d.list(&ExecutionFilter { status: Some(BackgroundExecutionStatus::Running), ..Default::default() }).await.unwrap();
    assert!(none.is_empty());
    let by_callable = d.list(&ExecutionFilter { callable_name: Some("work".into()), ..Default::default() }).await.unwrap();
    assert_eq!(by_callable.len(), 5);
}

/// Newest first, a cursor continuing either order, and the trigger filter.
pub async fn list_pages_newest_first_with_a_cursor(d: Arc<dyn Driver>) {
    let t0 = Utc::now();
    for i in 0..5 {
        let mut e = exec(&format!("p{i}"), "A", 50);
        e.queued_at = t0 + Duration::milliseconds(i);
        e.trigger_id = (i % 2 == 0).then(|| "trigger_even".to_string());
        // A NUL in a record (JSON `\u0000`) must not break a listing.
        e.input = Some(format!("in\0put {i}"));
        insert(&d, e, Readiness::Now).await;
    }
    let ids = |v: Vec<BackgroundExecution>| v.into_iter().map(|e| e.execution_id).collect::<Vec<_>>();
    let newest = |after: Option<&str>| ExecutionFilter { newest_first: true, limit: Some(2), after: after.map(str::to_owned), ..Default::default() };
    assert_eq!(ids(d.list(&newest(None)).await.unwrap()), ["p4", "p3"]);
    assert_eq!(ids(d.list(&newest(Some("p3"))).await.unwrap()), ["p2", "p1"]);
    assert_eq!(ids(d.list(&newest(Some("p1"))).await.unwrap()), ["p0"]);
    assert!(d.list(&newest(Some("p0"))).await.unwrap().is_empty());
    let oldest = ExecutionFilter { after: Some("p2".into()), ..Default::default() };
    assert_eq!(ids(d.list(&oldest).await.unwrap()), ["p3", "p4"]);
    assert!(d.list(&ExecutionFilter { after: Some("gone".into()), ..Default::default() }).await.unwrap().is_empty(), "an unknown cursor lists nothing");
    let even = ExecutionFilter { trigger_id: Some("trigger_even".into()), ..Default::default() };
    assert_eq!(ids(d.list(&even).await.unwrap()), ["p0", "p2", "p4"]);
}

/// Progress is written for the running attempt only, and kept on its end.
pub async fn progress_is_written_for_the_running_attempt_only(d: Arc<dyn Driver>) {
    insert(&d, exec("pr", "A", 50), Readiness::Now).await;
    insert(&d, exec("waiting", "A", 50), Readiness::Idle).await;
    let p = |id: &str, attempt: u32, value: serde_json::Value| Progress { id: id.into(), attempt, value };
    assert_eq!(d.progress_many(vec![p("pr", 1, json!(10))]).await.unwrap(), [false], "not running yet");
    assert_eq!(claim_all(&d, 1).await, ["pr"]);
    let answers = d.progress_many(vec![p("pr", 1, json!(40)), p("pr", 2, json!(99)), p("waiting", 1, json!(1)), p("nope", 1, json!(1))]).await.unwrap();
    assert_eq!(answers, [true, false, false, false]);
    d.progress_many(vec![p("pr", 1, json!({"step": "upload", "pct": 75.5}))]).await.unwrap();
    assert_eq!(d.get("pr").await.unwrap().unwrap().progress, Some(json!({"step": "upload", "pct": 75.5})));
    d.finish_many(vec![finish("pr", 1, BackgroundExecutionStatus::Completed)]).await.unwrap();
    assert_eq!(d.get("pr").await.unwrap().unwrap().progress, Some(json!({"step": "upload", "pct": 75.5})), "kept after the end");
    assert_eq!(d.progress_many(vec![p("pr", 1, json!(100))]).await.unwrap(), [false], "ended: not written");
    assert_eq!(d.get("waiting").await.unwrap().unwrap().progress, None);
}

/// A failed, timed-out or cancelled execution is queued again with its
/// attempts, stalls and last results cleared; other statuses are refused.
pub async fn retry_requeues_failed_timeout_and_cancelled(d: Arc<dyn Driver>) {
    let at = Utc::now();
    for id in ["f", "t", "ok", "run"] {
        let mut e = exec(id, "A", 50);
        e.input = Some("a\0b".into()); // a retry must not choke on it
        insert(&d, e, Readiness::Now).await;
    }
    assert_eq!(claim_all(&d, 4).await.len(), 4);
    d.progress_many(vec![Progress { id: "f".into(), attempt: 1, value: json!(50) }]).await.unwrap();
    d.finish_many(vec![
        Finish { id: "f".into(), attempt: 1, change: Change::Finish { status: BackgroundExecutionStatus::Failed, output: None, error: Some(error(1)), at }, want_record: false },
        Finish { id: "t".into(), attempt: 1, change: Change::Finish { status: BackgroundExecutionStatus::Timeout, output: None, error: Some(error(1)), at }, want_record: false },
        finish("ok", 1, BackgroundExecutionStatus::Completed),
    ])
    .await
    .unwrap();
    insert(&d, exec("c", "B", 50), Readiness::Now).await;
    d.cancel("c", at).await.unwrap();
    assert_eq!(d.counts().await.unwrap(), StatusCounts { running: 1, completed: 1, failed: 1, cancelled: 1, timeout: 1, ..Default::default() });

    let later = at + Duration::seconds(5);
    for id in ["f", "t", "c"] {
        let RetryOutcome::Requeued(rec) = d.retry(id, later).await.unwrap() else { panic!("{id} not requeued") };
        assert_eq!(rec.status, BackgroundExecutionStatus::Queued, "{id}");
        assert_eq!((rec.started_at, rec.completed_at), (None, None), "{id}");
        assert_eq!((rec.error.is_none(), rec.output.is_none(), rec.progress.is_none()), (true, true, true), "{id}");
        assert_eq!(millis(rec.queued_at), millis(later), "{id}: queued at the retry");
    }
    assert_eq!(d.retry("ok", later).await.unwrap(), RetryOutcome::NotRetryable(BackgroundExecutionStatus::Completed));
    assert_eq!(d.retry("run", later).await.unwrap(), RetryOutcome::NotRetryable(BackgroundExecutionStatus::Running));
    assert_eq!(d.retry("f", later).await.unwrap(), RetryOutcome::NotRetryable(BackgroundExecutionStatus::Queued));
    assert_eq!(d.retry("nope", later).await.unwrap(), RetryOutcome::NotFound);
    assert_eq!(d.counts().await.unwrap(), StatusCounts { queued: 3, running: 1, completed: 1, ..Default::default() });

    // Claimable again; the attempt number goes on (never reused, so a late
    // result of the earlier attempt cannot finish the new one).
    let mut again = d.claim(params(10, limits(None, &[("work", None)]))).await.unwrap();
    again.sort_by(|a, b| a.execution_id.cmp(&b.execution_id));
    let got: Vec<(String, u32)> = again.into_iter().map(|e| (e.execution_id, e.attempt)).collect();
    assert_eq!(got, [("c".to_string(), 1), ("f".to_string(), 2), ("t".to_string(), 2)]);
    let stale = Finish { id: "f".into(), attempt: 1, change: Change::Finish { status: BackgroundExecutionStatus::Completed, output: None, error: None, at }, want_record: false };
    assert_eq!(d.finish_many(vec![stale]).await.unwrap(), [Finished::Stale], "the first attempt's late result");
    // And it can end again.
    d.finish_many(vec![finish("f", 2, BackgroundExecutionStatus::Completed)]).await.unwrap();
    assert_eq!(d.get("f").await.unwrap().unwrap().status, BackgroundExecutionStatus::Completed);
}

/// Waiting and running work per tenant and callable.
pub async fn breakdown_counts_waiting_and_running_by_name(d: Arc<dyn Driver>) {
    let now_ms = millis(Utc::now());
    insert(&d, exec_of("a1", "A", "work", 50), Readiness::Now).await;
    insert(&d, exec_of("a2", "A", "work", 50), Readiness::Now).await;
    insert(&d, exec_of("a3", "A", "other", 50), Readiness::Idle).await;
    insert(&d, exec_of("b1", "B", "work", 50), Readiness::At(now_ms + 60_000)).await;
    insert(&d, exec_of("b2", "B", "work", 50), Readiness::Now).await;
    let mut done = exec_of("b3", "B", "work", 50);
    done.status = BackgroundExecutionStatus::Completed;
    insert(&d, done, Readiness::Final).await;
    let claimed = d.claim(params(1, limits(None, &[("work", None)]))).await.unwrap();
    assert_eq!(claimed.len(), 1);
    let mut b = d.breakdown().await.unwrap();
    b.sort_by(|x, y| (&x.tenant, &x.callable).cmp(&(&y.tenant, &y.callable)));
    let t = |tenant: &str, callable: &str, queued, delayed, running| Tally { tenant: tenant.into(), callable: callable.into(), queued, delayed, running };
    let running_a = u64::from(claimed[0].tenant_id == "A");
    let mut want = vec![t("A", "other", 1, 0, 0), t("A", "work", 2 - running_a, 0, running_a), t("B", "work", running_a, 1, 1 - running_a)];
    want.sort_by(|x, y| (&x.tenant, &x.callable).cmp(&(&y.tenant, &y.callable)));
    assert_eq!(b, want);
}

/// An attempt whose lease ran out (its engine died) is queued again and
/// counts a stall; past `max_stalls` it ends failed, saying so. A renewed
/// lease is not rescued.
pub async fn rescue_requeues_expired_leases_then_fails_them(d: Arc<dyn Driver>) {
    insert(&d, exec("dead", "A", 50), Readiness::Now).await;
    insert(&d, exec("alive", "A", 50), Readiness::Now).await;
    let now = Utc::now();
    let short = ClaimParams { worker: "engine_a".into(), max: 2, now, lease_until: now + Duration::milliseconds(100), limits: limits(None, &[("work", None)]) };
    assert_eq!(d.claim(short).await.unwrap().len(), 2);
    let renewed = d.heartbeat("engine_a", &["alive".to_string(), "unknown".to_string()], now + Duration::seconds(60)).await.unwrap();
    assert_eq!(renewed, 1);
    assert!(d.rescue_expired(now, 1).await.unwrap().is_empty(), "nothing expired yet");

    let later = now + Duration::seconds(1);
    let rescued = d.rescue_expired(later, 1).await.unwrap();
    assert_eq!(rescued.len(), 1);
    assert_eq!(rescued[0].record.execution_id, "dead");
    assert_eq!(rescued[0].record.status, BackgroundExecutionStatus::Queued, "first stall: runs again");
    assert_eq!(d.get("alive").await.unwrap().unwrap().status, BackgroundExecutionStatus::Running);

    // Runs again, and its engine dies again: past maxStalls (1), it fails.
    let p = ClaimParams { worker: "engine_b".into(), max: 1, now: later, lease_until: later + Duration::milliseconds(100), limits: limits(None, &[("work", None)]) };
    let again = d.claim(p).await.unwrap();
    assert_eq!((again[0].execution_id.as_str(), again[0].attempt), ("dead", 2), "the lost attempt's number stays used");
    let late = d.finish_many(vec![finish("dead", 1, BackgroundExecutionStatus::Completed)]).await.unwrap();
    assert_eq!(late, vec![Finished::Stale], "the lost attempt's late result finishes nothing");
    let rescued = d.rescue_expired(later + Duration::seconds(1), 1).await.unwrap();
    let rec = &rescued[0].record;
    assert_eq!(rec.status, BackgroundExecutionStatus::Failed);
    let error = rec.error.as_ref().unwrap();
    assert_eq!(error.code.as_deref(), Some("ENACT_STALLED"));
    assert!(error.message.contains("stopped 2 times"), "{}", error.message);
    assert_eq!(d.counts().await.unwrap(), StatusCounts { running: 1, failed: 1, ..Default::default() });
}

pub async fn prune_drops_the_oldest_finished(d: Arc<dyn Driver>) {
    for id in ["a", "b", "c", "q"] {
        insert(&d, exec(id, "t", 50), Readiness::Now).await;
    }
    assert_eq!(claim_all(&d, 3).await, ["a", "b", "c"]);
    for id in ["a", "b", "c"] {
        d.finish_many(vec![finish(id, 1, BackgroundExecutionStatus::Completed)]).await.unwrap();
    }
    assert_eq!(d.prune(1).await.unwrap(), 2);
    assert!(d.get("a").await.unwrap().is_none() && d.get("b").await.unwrap().is_none());
    assert!(d.get("c").await.unwrap().is_some(), "the newest finished one is kept");
    assert_eq!(d.get("q").await.unwrap().unwrap().status, BackgroundExecutionStatus::Queued, "queued work is never pruned");
    assert_eq!(d.prune(1).await.unwrap(), 0);
}

// ---------------------------------------------------------------------------
// Triggers

pub fn trigger(id: &str, tenant: &str, kind: &str, condition: serde_json::Value) -> Trigger {
    let mut def = json!({"triggerId": id, "tenantId": tenant, "type": kind, "condition": condition, "action": {"callableName": "work"}});
    if kind == "webhook" {
        def["allowUnsigned"] = json!(true);
    }
    enact_background_core::validate::trigger_definition(&def, Utc::now()).unwrap()
}

fn manual(id: &str) -> Trigger {
    trigger(id, "t", "manual", json!({}))
}

/// The execution a fire inserts, as the engine builds it.
fn build(t: &Trigger) -> NewExecution {
    let mut e = exec(&enact_background_core::ids::new_id("exec_"), &t.tenant_id, 50);
    e.trigger_id = Some(t.trigger_id.clone());
    NewExecution::new(e, Readiness::Now)
}

async fn fire(d: &Arc<dyn Driver>, id: &str, gate: FireGate, now: Timestamp) -> Fire {
    d.fire(FireParams { trigger_id: id, now, gate, build: &build, want_record: true, webhook: None }).await.unwrap()
}

fn fired(f: &Fire) -> (&Trigger, &str) {
    match f {
        Fire::Fired { trigger, execution_id, .. } => (trigger, execution_id),
        other => panic!("expected a fire, got {other:?}"),
    }
}

pub async fn triggers_insert_get_list_update_remove(d: Arc<dyn Driver>) {
    d.insert_trigger(manual("trigger_1")).await.unwrap();
    d.insert_trigger(trigger("trigger_2", "u", "event", json!({"eventType": "x"}))).await.unwrap();
    assert!(matches!(d.insert_trigger(manual("trigger_1")).await, Err(StoreError::Conflict(_))));
    assert_eq!(d.get_trigger("trigger_1").await.unwrap().unwrap().trigger_id, "trigger_1");
    assert_eq!(d.get_trigger("nope").await.unwrap(), None);
    let all = d.list_triggers(&TriggerFilter::default()).await.unwrap();
    assert_eq!(all.iter().map(|t| t.trigger_id.as_str()).collect::<Vec<_>>(), ["trigger_1", "trigger_2"], "registration order");
    let u = d.list_triggers(&TriggerFilter { tenant_id: Some("u".into()), ..Default::default() }).await.unwrap();
    assert_eq!(u.len(), 1);

    let mut rename = |t: &mut Trigger| {
        t.name = "renamed".into();
        Ok(())
    };
    let t = d.update_trigger("trigger_1", &mut rename).await.unwrap().unwrap().unwrap();
    assert_eq!(t.name, "renamed");
    assert_eq!(d.get_trigger("trigger_1").await.unwrap().unwrap().name, "renamed");
    let mut refuse = |t: &mut Trigger| {
        t.name = "half-done".into();
        Err(enact_background_core::error::EngineError::invalid_trigger("name", "no"))
    };
    assert!(d.update_trigger("trigger_1", &mut refuse).await.unwrap().unwrap().is_err());
    assert_eq!(d.get_trigger("trigger_1").await.unwrap().unwrap().name, "renamed", "a refused edit writes nothing");
    let mut noop = |_: &mut Trigger| Ok(());
    assert!(d.update_trigger("nope", &mut noop).await.unwrap().is_none());

    assert!(d.remove_trigger("trigger_1").await.unwrap());
    assert!(!d.remove_trigger("trigger_1").await.unwrap());
    assert_eq!(d.get_trigger("trigger_1").await.unwrap(), None);
}

/// The fire step gates, counts and inserts the execution together.
pub async fn fire_counts_and_inserts_together(d: Arc<dyn Driver>) {
    let mut t = manual("trigger_m");
    t.max_fires = Some(2);
    d.insert_trigger(t).await.unwrap();
    let now = Utc::now();
    let first = fire(&d, "trigger_m", FireGate::Plain, now).await;
    let (t1, exec_id) = fired(&first);
    assert_eq!((t1.fire_count, t1.status, t1.last_fired_at), (1, TriggerStatus::Active, Some(now)));
    let rec = d.get(exec_id).await.unwrap().expect("the fire's execution is stored");
    assert_eq!(rec.trigger_id.as_deref(), Some("trigger_m"));
    let second = fire(&d, "trigger_m", FireGate::Plain, now).await;
    assert_eq!(fired(&second).0.status, TriggerStatus::Fired, "maxFires reached");
    match fire(&d, "trigger_m", FireGate::Plain, now).await {
        Fire::Blocked { why: Blocked::Inactive(TriggerStatus::Fired), trigger } => assert_eq!(trigger.fire_count, 2),
        other => panic!("expected a refusal, got {other:?}"),
    }
    assert_eq!(d.counts().await.unwrap().queued, 2, "exactly one execution per counted fire");
    assert_eq!(d.get_trigger("trigger_m").await.unwrap().unwrap().fire_count, 2);
    assert!(matches!(fire(&d, "nope", FireGate::Plain, now).await, Fire::Gone));
}

pub async fn fire_respects_cooldown(d: Arc<dyn Driver>) {
    let mut t = manual("trigger_c");
    t.cooldown_ms = Some(1000);
    d.insert_trigger(t).await.unwrap();
    let now = Utc::now();
    fired(&fire(&d, "trigger_c", FireGate::Plain, now).await);
    assert!(matches!(fire(&d, "trigger_c", FireGate::Plain, now + Duration::milliseconds(999)).await, Fire::Blocked { why: Blocked::Cooldown(1), .. }));
    fired(&fire(&d, "trigger_c", FireGate::Plain, now + Duration::milliseconds(1000)).await);
}

/// Each schedule tick fires once, whoever fires it, and a refused tick is
/// still taken.
pub async fn fire_tick_fires_each_tick_once(d: Arc<dyn Driver>) {
    d.insert_trigger(trigger("trigger_s", "t", "schedule", json!({"intervalSeconds": 1}))).await.unwrap();
    let now = Utc::now();
    fired(&fire(&d, "trigger_s", FireGate::Tick(1_000), now).await);
    assert!(matches!(fire(&d, "trigger_s", FireGate::Tick(1_000), now).await, Fire::Skipped), "the same tick again");
    assert!(matches!(fire(&d, "trigger_s", FireGate::Tick(500), now).await, Fire::Skipped), "an older tick");
    let mut pause = |t: &mut Trigger| {
        t.status = TriggerStatus::Paused;
        Ok(())
    };
    d.update_trigger("trigger_s", &mut pause).await.unwrap().unwrap().unwrap();
    assert!(matches!(fire(&d, "trigger_s", FireGate::Tick(2_000), now).await, Fire::Blocked { .. }));
    let mut resume = |t: &mut Trigger| {
        t.status = TriggerStatus::Active;
        Ok(())
    };
    d.update_trigger("trigger_s", &mut resume).await.unwrap().unwrap().unwrap();
    assert!(matches!(fire(&d, "trigger_s", FireGate::Tick(2_000), now).await, Fire::Skipped), "a refused tick is taken");
    fired(&fire(&d, "trigger_s", FireGate::Tick(3_000), now).await);
    assert_eq!(d.get_trigger("trigger_s").await.unwrap().unwrap().fire_count, 2);
}

/// A threshold fires on a crossing only, and re-arms when the comparison
/// turns false; an edit of the threshold starts unarmed.
pub async fn fire_crossing_keeps_arming(d: Arc<dyn Driver>) {
    let cond = json!({"metricName": "m", "thresholdValue": 10, "thresholdOperator": "gt"});
    d.insert_trigger(trigger("trigger_t", "t", "threshold", cond)).await.unwrap();
    let now = Utc::now();
    let cross = |holds| FireGate::Crossing { holds };
    assert!(matches!(fire(&d, "trigger_t", cross(false), now).await, Fire::Skipped));
    fired(&fire(&d, "trigger_t", cross(true), now).await);
    assert!(matches!(fire(&d, "trigger_t", cross(true), now).await, Fire::Skipped), "still above: not a crossing");
    assert!(matches!(fire(&d, "trigger_t", cross(false), now).await, Fire::Skipped));
    fired(&fire(&d, "trigger_t", cross(true), now).await);
    // An edit that keeps the threshold keeps the arming.
    let mut rename = |t: &mut Trigger| {
        t.name = "n".into();
        Ok(())
    };
    d.update_trigger("trigger_t", &mut rename).await.unwrap().unwrap().unwrap();
    assert!(matches!(fire(&d, "trigger_t", cross(true), now).await, Fire::Skipped));
    let mut lower = |t: &mut Trigger| {
        t.condition.threshold_value = Some(5.0);
        Ok(())
    };
    d.update_trigger("trigger_t", &mut lower).await.unwrap().unwrap().unwrap();
    fired(&fire(&d, "trigger_t", cross(true), now).await);
}

/// `trigger_states` reads each trigger with its schedule cursor and
/// threshold arming, in registration order, filtered like `list_triggers`,
/// and changes nothing: not the arming (a crossing still is one, or still
/// is not, after any number of reads), not an `active` trigger past its
/// `endAt`, not the change log.
pub async fn trigger_states_read_cursor_and_arming_without_changing_them(d: Arc<dyn Driver>) {
    let threshold = json!({"metricName": "m", "thresholdValue": 10, "thresholdOperator": "gt"});
    d.insert_trigger(trigger("trigger_t", "a", "threshold", threshold)).await.unwrap();
    d.insert_trigger(trigger("trigger_s", "a", "schedule", json!({"intervalSeconds": 60}))).await.unwrap();
    let mut ended = trigger("trigger_e", "b", "manual", json!({}));
    ended.end_at = Some(Utc::now() - Duration::hours(1));
    d.insert_trigger(ended).await.unwrap();
    let all = TriggerFilter::default();
    let states = d.trigger_states(&all).await.unwrap();
    let ids: Vec<&str> = states.iter().map(|s| s.trigger.trigger_id.as_str()).collect();
    assert_eq!(ids, ["trigger_t", "trigger_s", "trigger_e"], "registration order");
    assert!(states.iter().all(|s| !s.armed && s.cursor_ms.is_none()), "fresh: unarmed, no cursor");
    assert_eq!(states[2].trigger.status, TriggerStatus::Active, "read as stored: past endAt, still active");
    let now = Utc::now();
    fired(&fire(&d, "trigger_t", FireGate::Crossing { holds: true }, now).await);
    fired(&fire(&d, "trigger_s", FireGate::Tick(5_000), now).await);
    let seq = d.trigger_changes(0).await.unwrap().seq;
    for _ in 0..3 {
        let states = d.trigger_states(&all).await.unwrap();
        assert!(states[0].armed, "the last report held");
        assert_eq!(states[0].trigger.fire_count, 1);
        assert_eq!(states[1].cursor_ms, Some(5_000));
        assert!(!states[1].armed);
        assert_eq!(states[2].trigger.status, TriggerStatus::Active);
    }
    let by_tenant = d.trigger_states(&TriggerFilter { tenant_id: Some("b".into()), ..TriggerFilter::default() }).await.unwrap();
    assert_eq!(by_tenant.iter().map(|s| s.trigger.trigger_id.as_str()).collect::<Vec<_>>(), ["trigger_e"]);
    let thresholds = TriggerFilter { tenant_id: Some("a".into()), trigger_type: Some(TriggerType::Threshold), ..TriggerFilter::default() };
    assert_eq!(d.trigger_states(&thresholds).await.unwrap().len(), 1);
    assert_eq!(d.trigger_changes(0).await.unwrap().seq, seq, "reading logs no change");
    assert_eq!(d.get_trigger("trigger_e").await.unwrap().unwrap().status, TriggerStatus::Active, "nothing written back");
    // The arming read is the arming the fire step uses: still above, no crossing.
    assert!(matches!(fire(&d, "trigger_t", FireGate::Crossing { holds: true }, now).await, Fire::Skipped));
    assert!(matches!(fire(&d, "trigger_t", FireGate::Crossing { holds: false }, now).await, Fire::Skipped));
    assert!(!d.trigger_states(&thresholds).await.unwrap()[0].armed, "re-armed by a report below");
}

/// A webhook message id is accepted once per trigger while remembered,
/// and remembered only when its delivery fired: a delivery the gate
/// refused (cooling down) may be sent again. Other triggers keep their own
/// ids, whatever traffic they get.
pub async fn webhook_ids_are_remembered_per_trigger_only_when_fired(d: Arc<dyn Driver>) {
    let mut w1 = trigger("trigger_w1", "a", "webhook", json!({}));
    w1.cooldown_ms = Some(60_000);
    d.insert_trigger(w1).await.unwrap();
    d.insert_trigger(trigger("trigger_w2", "b", "webhook", json!({}))).await.unwrap();
    let t0 = Utc::now();
    let deliver = |trigger_id: &'static str, id: String, at: Timestamp| {
        let d = d.clone();
        async move {
            let webhook = Some(WebhookMessage { id: &id, now_secs: at.timestamp(), expires_secs: at.timestamp() + 600 });
            d.fire(FireParams { trigger_id, now: at, gate: FireGate::Plain, build: &build, want_record: false, webhook }).await.unwrap()
        }
    };
    fired(&deliver("trigger_w1", "msg_1".into(), t0).await);
    assert!(matches!(deliver("trigger_w1", "msg_1".into(), t0).await, Fire::Replay), "a replay");
    let cooling = deliver("trigger_w1", "msg_2".into(), t0 + Duration::seconds(1)).await;
    assert!(matches!(cooling, Fire::Blocked { why: Blocked::Cooldown(_), .. }), "refused while cooling down: {cooling:?}");
    fired(&deliver("trigger_w1", "msg_2".into(), t0 + Duration::seconds(61)).await);
    fired(&deliver("trigger_w2", "msg_1".into(), t0).await);
    for n in 0..1000 {
        fired(&deliver("trigger_w2", format!("flood_{n}"), t0).await);
    }
    assert!(matches!(deliver("trigger_w1", "msg_1".into(), t0 + Duration::seconds(100)).await, Fire::Replay), "another trigger's traffic evicts nothing");
    fired(&deliver("trigger_w1", "msg_1".into(), t0 + Duration::seconds(600)).await);
}

/// The webhook replay budget the driver of
/// [`webhook_replay_budget_refuses_new_ids_and_forgets_none`] is built
/// with (the default budget, 100,000, would make the case slow).
pub const SMALL_REPLAY_BUDGET: usize = 5;

/// A trigger whose replay budget is full of unexpired ids refuses new ids
/// ([`Fire::ReplayFull`], nothing counted, nothing inserted) rather than
/// forget one before it expires: its old ids are still refused as replays
/// for the whole window, another trigger is unaffected, and as ids expire
/// new ones are accepted again, one for each expired one. Run against a
/// driver built with a replay budget of [`SMALL_REPLAY_BUDGET`].
pub async fn webhook_replay_budget_refuses_new_ids_and_forgets_none(d: Arc<dyn Driver>) {
    const WINDOW: i64 = 600;
    let budget = SMALL_REPLAY_BUDGET as i64;
    d.insert_trigger(trigger("trigger_full", "a", "webhook", json!({}))).await.unwrap();
    d.insert_trigger(trigger("trigger_other", "a", "webhook", json!({}))).await.unwrap();
    let t0 = Utc::now();
    let s0 = t0.timestamp();
    let at = |secs: i64| t0 + Duration::seconds(secs);
    let deliver = |trigger_id: &'static str, id: String, now: Timestamp| {
        let d = d.clone();
        async move {
            let webhook = Some(WebhookMessage { id: &id, now_secs: now.timestamp(), expires_secs: now.timestamp() + WINDOW });
            d.fire(FireParams { trigger_id, now, gate: FireGate::Plain, build: &build, want_record: false, webhook }).await.unwrap()
        }
    };
    // msg_i arrives at t0 + i s, so it expires at t0 + i + WINDOW.
    for i in 0..budget {
        fired(&deliver("trigger_full", format!("msg_{i}"), at(i)).await);
    }
    let full = |f: &Fire| match f {
        Fire::ReplayFull { until_secs } => *until_secs,
        other => panic!("expected a full replay budget, got {other:?}"),
    };
    assert_eq!(full(&deliver("trigger_full", "new".into(), at(budget)).await), s0 + WINDOW, "refused until msg_0 expires");
    assert!(matches!(deliver("trigger_full", "msg_0".into(), at(budget)).await, Fire::Replay), "the oldest id is not forgotten");
    let t = d.get_trigger("trigger_full").await.unwrap().unwrap();
    assert_eq!(t.fire_count, SMALL_REPLAY_BUDGET as u64, "a refused delivery counts nothing");
    assert_eq!(d.counts().await.unwrap().queued, SMALL_REPLAY_BUDGET as u64, "and inserts nothing");

    // Another trigger keeps its own budget.
    fired(&deliver("trigger_other", "new".into(), at(budget)).await);
    fired(&deliver("trigger_other", "msg_0".into(), at(budget)).await);

    // Through the whole window every id is still refused as a replay, and
    // new ids as over budget.
    for i in 0..budget {
        assert!(matches!(deliver("trigger_full", format!("msg_{i}"), at(WINDOW - 1)).await, Fire::Replay), "msg_{i} at the window's end");
    }
    assert_eq!(full(&deliver("trigger_full", "new".into(), at(WINDOW - 1)).await), s0 + WINDOW);

    // msg_0 expires: room for exactly one new id.
    fired(&deliver("trigger_full", "new".into(), at(WINDOW)).await);
    assert_eq!(full(&deliver("trigger_full", "newer".into(), at(WINDOW)).await), s0 + 1 + WINDOW, "msg_1 expires next");
    assert!(matches!(deliver("trigger_full", "msg_1".into(), at(WINDOW)).await, Fire::Replay));
    fired(&deliver("trigger_full", "msg_0".into(), at(WINDOW + 1)).await);

    // Once the window has passed for all of them, a full budget of new ids
    // is accepted again.
    let later = WINDOW * 2 + budget;
    for i in 0..budget {
        fired(&deliver("trigger_full", format!("later_{i}"), at(later)).await);
    }
    full(&deliver("trigger_full", "one_more".into(), at(later)).await);
    assert_eq!(d.get_trigger("trigger_full").await.unwrap().unwrap().fire_count, 2 * SMALL_REPLAY_BUDGET as u64 + 2);
}

/// Registrations, changes and removals are reported once each, in a way
/// another engine can follow.
pub async fn trigger_changes_are_reported(d: Arc<dyn Driver>) {
    let start = d.trigger_changes(0).await.unwrap();
    assert!(start.ids.is_empty() && start.complete);
    d.insert_trigger(manual("trigger_a")).await.unwrap();
    d.insert_trigger(manual("trigger_b")).await.unwrap();
    let c1 = d.trigger_changes(start.seq).await.unwrap();
    assert_eq!(c1.ids, ["trigger_a", "trigger_b"]);
    let mut rename = |t: &mut Trigger| {
        t.name = "x".into();
        Ok(())
    };
    d.update_trigger("trigger_a", &mut rename).await.unwrap().unwrap().unwrap();
    d.update_trigger("trigger_a", &mut rename).await.unwrap().unwrap().unwrap();
    d.remove_trigger("trigger_b").await.unwrap();
    let c2 = d.trigger_changes(c1.seq).await.unwrap();
    assert_eq!(c2.ids, ["trigger_a", "trigger_b"], "each changed trigger once");
    assert!(c2.complete);
    assert!(d.trigger_changes(c2.seq).await.unwrap().ids.is_empty());
    // A fire is not a change of definition.
    d.insert_trigger(manual("trigger_c")).await.unwrap();
    let c3 = d.trigger_changes(c2.seq).await.unwrap();
    fired(&fire(&d, "trigger_c", FireGate::Plain, Utc::now()).await);
    assert!(d.trigger_changes(c3.seq).await.unwrap().ids.is_empty());
}
