//! Cancellation, waiters (`watch` / `Notice::Settled`) and shutdown.

mod common;

use common::*;
use enact_background_core::prelude::*;
use serde_json::json;

#[tokio::test(start_paused = true)]
async fn cancel_queued_becomes_cancelled_at_once_and_is_never_taken() {
    let h = Harness::started(config(1));
    h.interest(&[EventKind::Cancelled]);
    let blocker = h.submit_cfg("t", json!({}));
    let e = h.submit_cfg("t", json!({}));
    let after = h.submit_cfg("t", json!({}));
    let running = h.take().pop().unwrap();
    assert_eq!(running.execution_id, blocker.execution_id);

    assert_eq!(h.exec.cancel(&e.execution_id), Ok(true));
    let rec = h.get(&e.execution_id);
    assert_eq!(rec.status, BackgroundExecutionStatus::Cancelled);
    assert!(rec.completed_at.is_some());
    assert_eq!(rec.attempt, 0);
    let n = h.drain();
    assert_eq!(events_of(&n, EventKind::Cancelled, &e.execution_id).len(), 1);
    assert!(aborts(&n).is_empty(), "nothing to abort for a queued execution");

    h.complete_ok(&running, json!(1));
    // The cancelled one is skipped: the next one taken is `after`.
    assert_eq!(h.take_ids(), vec![after.execution_id.clone()]);
    assert_eq!(h.exec.cancel(&e.execution_id), Ok(false), "already final");
    let c = h.counts();
    assert_eq!((c.cancelled, c.completed, c.running, c.queued), (1, 1, 1, 0));
}

#[tokio::test(start_paused = true)]
async fn cancel_delayed_and_backing_off_executions() {
    let h = Harness::started(config(4));
    let deferred = h.submit_cfg("t", json!({"mode": "deferred", "delayMs": 1000}));
    let retrying = h.submit_cfg("t", json!({"retry": {"maxAttempts": 3, "backoffMs": 1000}}));
    let retry_d = h.take().pop().unwrap();
    assert_eq!(retry_d.execution_id, retrying.execution_id);
    h.complete_err(&retry_d, "x");
    assert_eq!(h.get(&retrying.execution_id).status, BackgroundExecutionStatus::Queued);
    assert!(h.exec.cancel(&deferred.execution_id).unwrap());
    assert!(h.exec.cancel(&retrying.execution_id).unwrap());
    advance_ms(5000).await;
    let later = h.take();
    assert!(later.iter().all(|x| x.execution_id != deferred.execution_id && x.execution_id != retrying.execution_id), "{later:?}");
    assert_eq!(h.get(&deferred.execution_id).status, BackgroundExecutionStatus::Cancelled);
    assert_eq!(h.get(&retrying.execution_id).status, BackgroundExecutionStatus::Cancelled);
    assert!(later.is_empty());
}

#[tokio::test(start_paused = true)]
async fn cancel_running_aborts_and_ignores_the_late_result() {
    let h = Harness::started(config(1));
    h.interest(&[EventKind::Cancelled, EventKind::Completed]);
    let e = h.submit_cfg("t", json!({"timeoutMs": 1000}));
    let next = h.submit_cfg("t", json!({}));
    let d = h.take().pop().unwrap();
    assert_eq!(h.exec.cancel(&e.execution_id), Ok(true));
    let rec = h.get(&e.execution_id);
    assert_eq!(rec.status, BackgroundExecutionStatus::Cancelled);
    let n = h.drain();
    assert_eq!(abort_reasons(&n), vec![(e.execution_id.clone(), 1, AbortReason::Cancel)]);
    assert_eq!(events_of(&n, EventKind::Cancelled, &e.execution_id).len(), 1);
    assert_eq!(h.exec.in_flight(), 0, "cancel frees the slot");
    assert_eq!(h.take_ids(), vec![next.execution_id.clone()]);

    // The callable finishes anyway: ignored, counted.
    h.complete_ok(&d, json!("late"));
    assert_eq!(h.get(&e.execution_id), rec);
    assert_eq!(h.stats().stale_results, 1);
    assert!(events_of(&h.drain(), EventKind::Completed, &e.execution_id).is_empty());
    // Its old deadline passing does nothing either.
    advance_ms(2000).await;
    assert_eq!(h.get(&e.execution_id).status, BackgroundExecutionStatus::Cancelled);
    assert!(aborts(&h.drain()).iter().all(|(id, _)| id != &e.execution_id));
}

#[tokio::test(start_paused = true)]
async fn cancel_finished_and_unknown() {
    let h = Harness::new(config(1));
    let e = h.submit_cfg("t", json!({}));
    let d = h.take().pop().unwrap();
    h.complete_ok(&d, json!(1));
    assert_eq!(h.exec.cancel(&e.execution_id), Ok(false));
    assert_eq!(h.get(&e.execution_id).status, BackgroundExecutionStatus::Completed);
    let f = h.submit_cfg("t", json!({}));
    let d = h.take().pop().unwrap();
    h.complete_err(&d, "x");
    assert_eq!(h.exec.cancel(&f.execution_id), Ok(false));
    assert_eq!(h.get(&f.execution_id).status, BackgroundExecutionStatus::Failed);
    let err = h.exec.cancel("exec_doesnotexist").unwrap_err();
    assert_eq!(err.code, ErrorCode::NotFound);
    assert!(err.message.contains("exec_doesnotexist"));
    assert_eq!(h.stats().counts.cancelled, 0);
}

#[tokio::test(start_paused = true)]
async fn watch_settles_waiters() {
    let h = Harness::new(config(4));
    // Watched at submit.
    let a = h.exec.submit(req(json!({"tenantId": "t", "callableName": "work"})), Watch::Settled).unwrap();
    // Watched later.
    let b = h.submit_cfg("t", json!({}));
    assert_eq!(h.exec.watch(&b.execution_id), Ok(None));
    // Not watched: no Settled.
    let c = h.submit_cfg("t", json!({}));
    // Watched, then cancelled.
    let d = h.submit_cfg("t", json!({"priority": 0}));
    assert_eq!(h.exec.watch(&d.execution_id), Ok(None));

    let t = h.take();
    assert_eq!(t.len(), 4);
    let by_id = |id: &str| t.iter().find(|x| x.execution_id == id).unwrap().clone();
    h.complete_ok(&by_id(&a.execution_id), json!("A"));
    h.complete_err(&by_id(&b.execution_id), "B failed");
    h.complete_ok(&by_id(&c.execution_id), json!("C"));
    h.exec.cancel(&d.execution_id).unwrap();
    let n = h.drain();
    let s = settled(&n);
    let ids: Vec<&str> = s.iter().map(|r| r.execution_id.as_str()).collect();
    assert_eq!(ids, vec![a.execution_id.as_str(), b.execution_id.as_str(), d.execution_id.as_str()]);
    assert_eq!(s[0].status, BackgroundExecutionStatus::Completed);
    assert_eq!(s[0].output, Some(json!("A")));
    assert_eq!(s[1].status, BackgroundExecutionStatus::Failed);
    assert_eq!(s[2].status, BackgroundExecutionStatus::Cancelled);

    // Watching a settled execution answers at once, with no notice.
    assert_eq!(h.exec.watch(&c.execution_id).unwrap().unwrap().output, Some(json!("C")));
    assert!(h.drain().is_empty());
    // Settled is sent once only.
    assert_eq!(h.exec.watch(&a.execution_id).unwrap().unwrap().status, BackgroundExecutionStatus::Completed);
    let err = h.exec.watch("exec_nope").unwrap_err();
    assert_eq!(err.code, ErrorCode::NotFound);
}

#[tokio::test(start_paused = true)]
async fn watch_waits_through_retries_and_timeouts() {
    let h = Harness::started(config(1));
    let e = h.exec.submit(req(json!({"tenantId": "t", "callableName": "work", "config": {"timeoutMs": 100, "retry": {"maxAttempts": 2, "backoffMs": 10}}})), Watch::Settled).unwrap();
    h.take().pop().unwrap();
    advance_ms(101).await;
    assert!(settled(&h.drain()).is_empty(), "not settled while a retry is pending");
    advance_ms(20).await;
    let d = h.take().pop().expect("retry");
    h.complete_ok(&d, json!("second time"));
    let n = h.drain();
    let s = settled(&n);
    assert_eq!(s.len(), 1);
    assert_eq!(s[0].execution_id, e.execution_id);
    assert_eq!(s[0].status, BackgroundExecutionStatus::Completed);
    assert_eq!(s[0].attempt, 2);
}

#[tokio::test(start_paused = true)]
async fn shutdown_refuses_work_and_releases_running_attempts() {
    let h = Harness::started(config(2));
    let watched = h.exec.submit(req(json!({"tenantId": "t", "callableName": "work"})), Watch::Settled).unwrap();
    let other = h.submit_cfg("t", json!({}));
    let queued = h.submit_cfg("t", json!({}));
    let t = h.take();
    assert_eq!(t.len(), 2);
    h.drain();

    h.exec.begin_shutdown();
    let err = h.exec.submit(req(json!({"tenantId": "t", "callableName": "work"})), Watch::No).unwrap_err();
    assert_eq!(err.code, ErrorCode::Shutdown);
    assert!(h.take().is_empty(), "no new attempt starts during shutdown");
    assert!(!h.exec.is_stopped());

    // A running attempt may still finish during the grace period.
    let o = t.iter().find(|d| d.execution_id == other.execution_id).unwrap();
    h.complete_ok(o, json!("made it"));
    assert_eq!(h.get(&other.execution_id).status, BackgroundExecutionStatus::Completed);
    assert!(h.take().is_empty(), "its slot is not reused during shutdown");

    h.exec.finish_shutdown().unwrap();
    assert!(h.exec.is_stopped());
    let n = h.drain();
    assert_eq!(abort_reasons(&n), vec![(watched.execution_id.clone(), 1, AbortReason::Shutdown)]);
    assert_eq!(n.last(), Some(&Notice::Closed));
    assert!(settled(&n).is_empty());
    let rec = h.get(&watched.execution_id);
    assert_eq!(rec.status, BackgroundExecutionStatus::Queued, "released back to the queue");
    assert_eq!(rec.attempt, 0, "the interrupted attempt is not used up");
    assert_eq!(h.get(&queued.execution_id).status, BackgroundExecutionStatus::Queued);
    assert_eq!(h.exec.in_flight(), 0);

    // The interrupted attempt's late result is ignored.
    let w = t.iter().find(|d| d.execution_id == watched.execution_id).unwrap();
    h.complete_ok(w, json!("too late"));
    assert_eq!(h.get(&watched.execution_id).status, BackgroundExecutionStatus::Queued);
    assert_eq!(h.stats().stale_results, 1);

    assert!(h.take().is_empty());
    assert_eq!(h.exec.submit(req(json!({"tenantId": "t", "callableName": "work"})), Watch::No).unwrap_err().code, ErrorCode::Shutdown);
    // Watching an unfinished execution after shutdown fails.
    assert_eq!(h.exec.watch(&queued.execution_id).unwrap_err().code, ErrorCode::Shutdown);
    // Finished executions can still be read and watched.
    assert_eq!(h.exec.watch(&other.execution_id).unwrap().unwrap().status, BackgroundExecutionStatus::Completed);

    // Idempotent: no second Closed.
    h.exec.finish_shutdown().unwrap();
    assert!(h.drain().is_empty());
    let s = h.stats();
    assert_eq!((s.counts.queued, s.counts.running, s.counts.completed), (2, 0, 1));
}

#[tokio::test(start_paused = true)]
async fn shutdown_ends_the_timer_task() {
    let h = Harness::new(config(2));
    let task = h.exec.start();
    h.submit_cfg("t", json!({"mode": "deferred", "delayMs": 60_000}));
    h.exec.begin_shutdown();
    h.exec.finish_shutdown().unwrap();
    tokio::time::timeout(std::time::Duration::from_secs(1), task).await.expect("timer task ended").unwrap();
    // Timers no longer fire: the delayed execution is not promoted.
    advance_ms(120_000).await;
    assert_eq!(h.host.wakes(), 0);
    assert!(h.take().is_empty());
}

#[tokio::test(start_paused = true)]
async fn shutdown_timeouts_do_not_fire_after_finish() {
    let h = Harness::started(config(2));
    let e = h.submit_cfg("t", json!({"timeoutMs": 100}));
    h.take();
    h.exec.begin_shutdown();
    h.exec.finish_shutdown().unwrap();
    h.drain();
    advance_ms(1000).await;
    assert_eq!(h.get(&e.execution_id).status, BackgroundExecutionStatus::Queued);
    assert!(h.drain().is_empty());
}
