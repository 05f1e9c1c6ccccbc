//! Retries with backoff, timeouts, and late results — all on paused time.

mod common;

use common::*;
use enact_background_core::executor::backoff_ms;
use enact_background_core::prelude::*;
use serde_json::json;

const RETRY3: &str = r#"{"maxAttempts": 3, "backoffMs": 1000, "backoffMultiplier": 2}"#;

fn retry3() -> serde_json::Value {
    serde_json::from_str(RETRY3).unwrap()
}

/// Polls `take` every millisecond of paused time until `id` is started or
/// `limit_ms` pass; returns the dispatch and the milliseconds waited.
async fn wait_takeable(h: &Harness, id: &str, limit_ms: u64) -> Option<(Dispatch, u64)> {
    for waited in 0..=limit_ms {
        let mut t = h.take();
        if let Some(pos) = t.iter().position(|d| d.execution_id == id) {
            return Some((t.swap_remove(pos), waited));
        }
        assert!(t.is_empty(), "something else was started: {t:?}");
        advance_ms(1).await;
    }
    None
}

#[tokio::test(start_paused = true)]
async fn retry_backoff_then_final_failure() {
    let h = Harness::started(config(4));
    h.interest(&[EventKind::Retrying, EventKind::Failed, EventKind::Completed]);
    let e = h.submit(json!({"tenantId": "t", "callableName": "work", "config": {"retry": retry3()}}));
    let id = e.execution_id.clone();

    // Attempt 1 fails.
    let d1 = h.take().pop().unwrap();
    assert_eq!(d1.attempt, 1);
    h.complete_err(&d1, "boom 1");
    let n = h.drain();
    let r = events_of(&n, EventKind::Retrying, &id);
    assert_eq!(r.len(), 1, "{n:?}");
    assert_eq!(r[0].status, BackgroundExecutionStatus::Queued);
    let err = r[0].error.as_ref().expect("retrying record carries the error");
    assert_eq!((err.attempt, err.category, err.message.as_str()), (1, ErrorCategory::ToolError, "boom 1"));
    assert!(events_of(&n, EventKind::Failed, &id).is_empty());
    let rec = h.get(&id);
    assert_eq!(rec.status, BackgroundExecutionStatus::Queued);
    assert!(rec.completed_at.is_none());
    assert_eq!(h.stats().retried, 1);
    assert_eq!(h.exec.in_flight(), 0, "the slot is free during backoff");

    // Not takeable before 800 ms (1000 - 20 %), takeable by 1200 ms.
    assert!(h.take().is_empty());
    advance_ms(799).await;
    assert!(h.take().is_empty(), "retried before 800 ms");
    let (d2, waited) = wait_takeable(&h, &id, 401).await.expect("retry 1 never became takeable");
    let first_delay = 799 + waited;
    assert!((800..=1201).contains(&first_delay), "first backoff {first_delay} ms");
    assert!(h.host.wakes() >= 1, "host woken when the retry became due");
    assert_eq!(d2.attempt, 2);

    // Attempt 2 fails: ~2000 ms (1600..2400).
    h.complete_err(&d2, "boom 2");
    h.drain();
    advance_ms(1599).await;
    assert!(h.take().is_empty(), "retried before 1600 ms");
    let (d3, waited) = wait_takeable(&h, &id, 801).await.expect("retry 2 never became takeable");
    let second_delay = 1599 + waited;
    assert!((1600..=2401).contains(&second_delay), "second backoff {second_delay} ms");
    assert_eq!(d3.attempt, 3);

    // Attempt 3 fails: final.
    h.complete_err(&d3, "boom 3");
    let n = h.drain();
    assert!(events_of(&n, EventKind::Retrying, &id).is_empty());
    let failed = events_of(&n, EventKind::Failed, &id);
    assert_eq!(failed.len(), 1);
    let rec = h.get(&id);
    assert_eq!(&rec, failed[0]);
    assert_eq!(rec.status, BackgroundExecutionStatus::Failed);
    assert_eq!(rec.attempt, 3);
    assert!(rec.completed_at.is_some());
    let err = rec.error.unwrap();
    assert_eq!(err.attempt, 3);
    assert_eq!(err.category, ErrorCategory::ToolError);
    assert_eq!(err.message, "boom 3");
    let policy = err.retry_policy.expect("retry policy recorded");
    assert_eq!((policy.base_delay, policy.max_retries, policy.retryable), (1000, 2, true));
    assert_eq!(policy.backoff_strategy, "exponential");
    assert_eq!(h.stats().retried, 2);
    assert_eq!(h.stats().counts.failed, 1);

    // Nothing more ever starts.
    advance_ms(60_000).await;
    assert!(h.take().is_empty());
}

#[tokio::test(start_paused = true)]
async fn retry_then_success() {
    let h = Harness::started(config(1));
    h.interest(&[EventKind::Completed]);
    let e = h.submit(json!({"tenantId": "t", "callableName": "work", "config": {"retry": {"maxAttempts": 5, "backoffMs": 100, "backoffMultiplier": 1}}}));
    let d = h.take().pop().unwrap();
    h.complete_err(&d, "transient");
    advance_ms(121).await;
    let d = h.take().pop().expect("retried after ~100 ms (constant)");
    assert_eq!(d.attempt, 2);
    h.complete_ok(&d, json!("fine"));
    let rec = h.get(&e.execution_id);
    assert_eq!(rec.status, BackgroundExecutionStatus::Completed);
    assert_eq!(rec.output, Some(json!("fine")));
    assert_eq!(rec.attempt, 2);
    let n = h.drain();
    assert_eq!(events_of(&n, EventKind::Completed, &e.execution_id).len(), 1);
}

#[tokio::test(start_paused = true)]
async fn retry_not_for_non_retryable_errors() {
    let h = Harness::started(config(1));
    let e = h.submit(json!({"tenantId": "t", "callableName": "work", "config": {"retry": retry3()}}));
    let d = h.take().pop().unwrap();
    let err = CallError { message: "bad input".into(), retryable: false, code: Some("E_BAD".into()), details: Some(json!({"field": "x"})) };
    h.exec.complete(&d.execution_id, d.attempt, Outcome::Failed(err)).unwrap();
    let rec = h.get(&e.execution_id);
    assert_eq!(rec.status, BackgroundExecutionStatus::Failed);
    let err = rec.error.unwrap();
    assert_eq!(err.attempt, 1);
    assert_eq!(err.code.as_deref(), Some("E_BAD"));
    assert_eq!(err.details, Some(json!({"field": "x"})));
    assert!(!err.retry_policy.unwrap().retryable);
    assert_eq!(h.stats().retried, 0);
    advance_ms(10_000).await;
    assert!(h.take().is_empty());
}

#[tokio::test(start_paused = true)]
async fn retry_none_without_a_retry_policy() {
    let h = Harness::started(config(1));
    let e = h.submit_cfg("t", json!({}));
    let d = h.take().pop().unwrap();
    h.complete_err(&d, "once");
    assert_eq!(h.get(&e.execution_id).status, BackgroundExecutionStatus::Failed);
    advance_ms(10_000).await;
    assert!(h.take().is_empty());
}

#[test]
fn retry_backoff_formula() {
    let r = RetryConfig { max_attempts: 10, backoff_ms: 1000, backoff_multiplier: 2.0 };
    assert_eq!((1..=5).map(|a| backoff_ms(&r, a)).collect::<Vec<_>>(), vec![1000, 2000, 4000, 8000, 16000]);
    let c = RetryConfig { max_attempts: 10, backoff_ms: 250, backoff_multiplier: 1.0 };
    assert_eq!(backoff_ms(&c, 7), 250);
    let huge = RetryConfig { max_attempts: 1000, backoff_ms: 86_400_000, backoff_multiplier: 100.0 };
    assert_eq!(backoff_ms(&huge, 999), 86_400_000, "capped at one day");
}

#[tokio::test(start_paused = true)]
async fn timeout_final_when_no_attempts_left() {
    let h = Harness::started(config(2));
    h.interest(&[EventKind::Timeout]);
    let e = h.submit_cfg("t", json!({"timeoutMs": 1000}));
    let d = h.take().pop().unwrap();
    advance_ms(999).await;
    assert_eq!(h.get(&e.execution_id).status, BackgroundExecutionStatus::Running);
    assert_eq!(h.host.wakes(), 0);
    advance_ms(2).await;
    assert_eq!(h.host.wakes(), 1, "host woken by the timeout");
    let rec = h.get(&e.execution_id);
    assert_eq!(rec.status, BackgroundExecutionStatus::Timeout);
    let err = rec.error.clone().unwrap();
    assert_eq!((err.category, err.attempt), (ErrorCategory::Timeout, 1));
    assert!(err.message.contains("1000"), "{}", err.message);
    assert_eq!(h.exec.in_flight(), 0);
    let n = h.drain();
    assert_eq!(abort_reasons(&n), vec![(e.execution_id.clone(), 1, AbortReason::Timeout)]);
    assert_eq!(events_of(&n, EventKind::Timeout, &e.execution_id).len(), 1);

    // A late result for the timed-out attempt is ignored and counted.
    h.complete_ok(&d, json!("too late"));
    let after = h.get(&e.execution_id);
    assert_eq!(after, rec, "late result changed the record");
    assert_eq!(h.stats().stale_results, 1);
    assert_eq!(h.stats().counts.timeout, 1);
    assert!(h.drain().is_empty());
}

#[tokio::test(start_paused = true)]
async fn timeout_retried_when_attempts_remain() {
    let h = Harness::started(config(2));
    h.interest(&[EventKind::Retrying, EventKind::Timeout]);
    let e = h.submit_cfg("t", json!({"timeoutMs": 500, "retry": {"maxAttempts": 2, "backoffMs": 1000, "backoffMultiplier": 2}}));
    let id = e.execution_id.clone();
    let d1 = h.take().pop().unwrap();
    advance_ms(501).await;
    let n = h.drain();
    assert_eq!(aborts(&n), vec![(id.clone(), 1)]);
    let r = events_of(&n, EventKind::Retrying, &id);
    assert_eq!(r.len(), 1);
    assert_eq!(r[0].error.as_ref().unwrap().category, ErrorCategory::Timeout);
    assert_eq!(h.get(&id).status, BackgroundExecutionStatus::Queued);

    // The late result of attempt 1 must not complete the execution.
    h.complete_ok(&d1, json!("late"));
    assert_eq!(h.get(&id).status, BackgroundExecutionStatus::Queued);
    assert_eq!(h.stats().stale_results, 1);

    let (d2, _) = wait_takeable(&h, &id, 1300).await.expect("retried");
    assert_eq!(d2.attempt, 2);
    // A late result of attempt 1 while attempt 2 runs is ignored as well.
    h.complete_err(&d1, "late failure");
    assert_eq!(h.get(&id).status, BackgroundExecutionStatus::Running);
    assert_eq!(h.stats().stale_results, 2);

    // Attempt 2 times out too: final.
    advance_ms(501).await;
    let rec = h.get(&id);
    assert_eq!(rec.status, BackgroundExecutionStatus::Timeout);
    assert_eq!(rec.error.as_ref().unwrap().attempt, 2);
    let n = h.drain();
    assert_eq!(aborts(&n), vec![(id.clone(), 2)]);
    assert_eq!(events_of(&n, EventKind::Timeout, &id).len(), 1);
}

#[tokio::test(start_paused = true)]
async fn timeout_does_not_fire_for_completed_attempts() {
    let h = Harness::started(config(2));
    let e = h.submit_cfg("t", json!({"timeoutMs": 1000}));
    let d = h.take().pop().unwrap();
    advance_ms(500).await;
    h.complete_ok(&d, json!(1));
    advance_ms(2000).await;
    assert_eq!(h.get(&e.execution_id).status, BackgroundExecutionStatus::Completed);
    assert!(aborts(&h.drain()).is_empty());
    assert_eq!(h.stats().stale_results, 0);
}

#[tokio::test(start_paused = true)]
async fn timeout_each_attempt_gets_its_own_deadline() {
    // Attempts with different limits, started 10 ms apart: each times out at
    // its own start + timeoutMs, not before.
    let h = Harness::started(config(16));
    let mut due = Vec::new();
    for (i, ms) in [300u64, 100, 700, 200, 500].into_iter().enumerate() {
        let e = h.submit_cfg("t", json!({"timeoutMs": ms}));
        assert_eq!(h.take().len(), 1);
        due.push((i as u64 * 10 + ms, e.execution_id));
        advance_ms(10).await;
    }
    due.sort();
    let mut now = 50; // ms elapsed so far
    for (at, id) in &due {
        advance_ms(at - 1 - now).await;
        now = at - 1;
        assert_eq!(h.get(id).status, BackgroundExecutionStatus::Running, "{id} timed out before {at} ms");
        advance_ms(2).await;
        now += 2;
        assert_eq!(h.get(id).status, BackgroundExecutionStatus::Timeout, "{id} not timed out at {at} ms");
    }
    assert_eq!(h.stats().counts.timeout, 5);
}

#[tokio::test(start_paused = true)]
async fn timeout_frees_the_slot_for_queued_work() {
    let h = Harness::started(config(1));
    let slow = h.submit_cfg("t", json!({"timeoutMs": 100}));
    let next = h.submit_cfg("t", json!({}));
    assert_eq!(h.take_ids(), vec![slow.execution_id.clone()]);
    assert!(h.take().is_empty());
    advance_ms(101).await;
    assert_eq!(h.take_ids(), vec![next.execution_id]);
}

#[tokio::test(start_paused = true)]
async fn retry_timer_wakes_only_once_until_drained() {
    let h = Harness::started(config(8));
    for _ in 0..5 {
        h.submit_cfg("t", json!({"retry": {"maxAttempts": 2, "backoffMs": 100, "backoffMultiplier": 1}}));
    }
    for d in h.take() {
        h.complete_err(&d, "x");
    }
    h.drain();
    advance_ms(50).await;
    assert_eq!(h.host.wakes(), 0);
    advance_ms(200).await;
    let w = h.host.wakes();
    assert_eq!(w, 1, "one wake until the host drains");
    assert_eq!(h.take().len(), 5);
    h.drain();
}
