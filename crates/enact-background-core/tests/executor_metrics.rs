//! What the executor counts: ends by status, attempts, retries, run and
//! queue-wait times, and the recent window of `stats()` — on paused time,
//! so every duration is exact.

mod common;

use common::*;
use enact_background_core::prelude::*;
use enact_background_core::store::ready_now;
use serde_json::json;

fn line<'a>(text: &'a str, prefix: &str) -> &'a str {
    text.lines().find(|l| l.starts_with(prefix)).unwrap_or_else(|| panic!("no line {prefix:?} in\n{text}"))
}

#[tokio::test(start_paused = true)]
async fn ends_attempts_retries_and_durations_are_counted() {
    let h = Harness::started(config(8));
    let ok = h.submit(json!({"tenantId": "a", "callableName": "work"}));
    let flaky = h.submit(json!({"tenantId": "b", "callableName": "work", "config": {"retry": {"maxAttempts": 2, "backoffMs": 10, "backoffMultiplier": 1}}}));
    let slow = h.submit(json!({"tenantId": "b", "callableName": "echo", "config": {"timeoutMs": 2000}}));
    advance_ms(40).await; // every one waited 40 ms
    let started = h.take();
    assert_eq!(started.len(), 3);
    advance_ms(250).await;
    for d in &started {
        if d.execution_id == ok.execution_id {
            h.complete_ok(d, json!("done"));
        } else if d.execution_id == flaky.execution_id {
            h.complete_err(d, "flaky");
        }
    }
    // The retry comes due, runs and fails for good; `slow` times out.
    advance_ms(2000).await;
    let again: Vec<Dispatch> = h.take();
    let retry = again.iter().find(|d| d.execution_id == flaky.execution_id).expect("retried");
    assert_eq!(retry.attempt, 2);
    h.complete_err(retry, "flaky again");
    assert_eq!(h.get(&slow.execution_id).status, BackgroundExecutionStatus::Timeout);
    // A queued execution cancelled never ran: it counts as cancelled, with no run time.
    let queued = h.submit(json!({"tenantId": "c", "callableName": "work", "config": {"mode": "deferred", "delayMs": 60000}}));
    assert!(h.exec.cancel(&queued.execution_id).unwrap());

    let text = ready_now(h.exec.clone().metrics_text(Vec::new())).unwrap();
    assert_eq!(line(&text, r#"enact_executions_total{callable="work",status="completed"}"#), r#"enact_executions_total{callable="work",status="completed"} 1"#);
    assert!(text.contains("enact_executions_total{callable=\"work\",status=\"failed\"} 1\n"), "{text}");
    assert!(text.contains("enact_executions_total{callable=\"work\",status=\"cancelled\"} 1\n"));
    assert!(text.contains("enact_executions_total{callable=\"echo\",status=\"timeout\"} 1\n"));
    assert!(text.contains("enact_attempts_total{callable=\"work\"} 3\n"));
    assert!(text.contains("enact_retries_total{callable=\"work\"} 1\n"));
    // Run times: `ok` and flaky's first attempt 250 ms, its retry 0 ms;
    // the timeout 2000 ms.
    assert!(text.contains("enact_execution_duration_seconds_bucket{callable=\"work\",le=\"0.1\"} 1\n"), "{text}");
    assert!(text.contains("enact_execution_duration_seconds_bucket{callable=\"work\",le=\"0.25\"} 3\n"), "{text}");
    assert!(text.contains("enact_execution_duration_seconds_bucket{callable=\"echo\",le=\"1\"} 0\n"));
    assert!(text.contains("enact_execution_duration_seconds_bucket{callable=\"echo\",le=\"2.5\"} 1\n"));
    // Queue wait of first attempts only: 40 ms each.
    assert!(text.contains("enact_queue_wait_seconds_count{callable=\"work\"} 2\n"), "{text}");
    assert!(text.contains("enact_queue_wait_seconds_bucket{callable=\"work\",le=\"0.025\"} 0\n"));
    assert!(text.contains("enact_queue_wait_seconds_bucket{callable=\"work\",le=\"0.05\"} 2\n"));
    assert!(text.contains("enact_queue_wait_seconds_sum{callable=\"work\"} 0.08\n"), "{text}");

    let s = h.stats();
    assert_eq!(s.ended, [1, 1, 1, 1], "completed, failed, timeout, cancelled");
    let work = &s.callables["work"];
    assert_eq!((work.window.ended, work.window.retried), ([1, 1, 0, 1], 1));
    let run = work.window.run.unwrap();
    assert_eq!(run.count, 3);
    assert!((run.p99 - 250.0).abs() / 250.0 < 0.1, "{run:?}");
    let b = &s.tenants["b"];
    assert_eq!(b.window.ended, [0, 1, 1, 0]);
    assert!((b.window.run.unwrap().p99 - 2000.0).abs() / 2000.0 < 0.1);
    assert_eq!(s.tenants["c"].window.ended, [0, 0, 0, 1]);
}

#[tokio::test(start_paused = true)]
async fn metrics_off_counts_nothing_and_tenant_labels_split_series() {
    let off = Harness::started(ExecutorConfig { metrics: enact_background_core::metrics::MetricsConfig { enabled: false, tenant_labels: false }, ..config(4) });
    off.submit(json!({"tenantId": "a", "callableName": "work"}));
    let d = off.take().pop().unwrap();
    off.complete_ok(&d, json!(1));
    let text = ready_now(off.exec.clone().metrics_text(Vec::new())).unwrap();
    assert!(!text.contains("enact_executions_total{"), "{text}");
    assert!(off.stats().callables.is_empty(), "nothing waits or runs, and no window is kept");

    let labelled = Harness::started(ExecutorConfig { metrics: enact_background_core::metrics::MetricsConfig { enabled: true, tenant_labels: true }, ..config(4) });
    for t in ["a", "b"] {
        labelled.submit(json!({"tenantId": t, "callableName": "work"}));
    }
    for d in labelled.take() {
        labelled.complete_ok(&d, json!(1));
    }
    let text = ready_now(labelled.exec.clone().metrics_text(Vec::new())).unwrap();
    assert!(text.contains("enact_executions_total{callable=\"work\",tenant=\"a\",status=\"completed\"} 1\n"), "{text}");
    assert!(text.contains("enact_executions_total{callable=\"work\",tenant=\"b\",status=\"completed\"} 1\n"));
}

#[tokio::test(start_paused = true)]
async fn retry_requeues_and_progress_is_stored_for_the_running_attempt() {
    let h = Harness::started(config(4));
    h.interest(&[EventKind::Queued]);
    let e = h.submit(json!({"tenantId": "a", "callableName": "work"}));
    let d = h.take().pop().unwrap();
    let stored = ready_now(h.exec.clone().progress_async(e.execution_id.clone(), 1, json!({"pct": 30}))).unwrap();
    assert!(stored);
    assert!(!ready_now(h.exec.clone().progress_async(e.execution_id.clone(), 2, json!(1))).unwrap(), "not that attempt");
    assert_eq!(h.get(&e.execution_id).progress, Some(json!({"pct": 30})));
    let err = ready_now(h.exec.clone().retry_async(e.execution_id.clone())).unwrap_err();
    assert_eq!(err.code, ErrorCode::InvalidState);
    h.complete_err(&d, "boom");
    h.drain();
    let again = ready_now(h.exec.clone().retry_async(e.execution_id.clone())).unwrap();
    assert_eq!((again.status, again.attempt), (BackgroundExecutionStatus::Queued, 1));
    assert_eq!(events_of(&h.drain(), EventKind::Queued, &e.execution_id).len(), 1, "execution.queued for the retry");
    let d2 = h.take().pop().expect("claimable again");
    assert_eq!(d2.attempt, 2, "attempt numbers are never reused");
    // A late result of the first attempt is ignored.
    h.complete_ok(&d, json!("late"));
    assert_eq!(h.get(&e.execution_id).status, BackgroundExecutionStatus::Running);
    let d = d2;
    h.complete_ok(&d, json!("fine"));
    assert_eq!(h.get(&e.execution_id).status, BackgroundExecutionStatus::Completed);
    let missing = ready_now(h.exec.clone().retry_async("exec_nope".into())).unwrap_err();
    assert_eq!(missing.code, ErrorCode::NotFound);
}
