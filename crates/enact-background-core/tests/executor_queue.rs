//! Queue order, concurrency limits, fairness and modes of the executor.

mod common;

use std::collections::HashMap;

use common::*;
use enact_background_core::prelude::*;
use serde_json::json;

#[tokio::test(start_paused = true)]
async fn queue_priority_then_fifo() {
    let h = Harness::new(config(1));
    let mut expect = Vec::new();
    let subs = [(50, "a"), (10, "b"), (200, "c"), (50, "d"), (10, "e"), (200, "f"), (0, "g"), (255, "h")];
    let mut ids = HashMap::new();
    for (p, name) in subs {
        let e = h.submit(json!({"tenantId": "t1", "callableName": "work", "input": name, "config": {"priority": p}}));
        ids.insert(e.execution_id.clone(), name);
    }
    for name in ["h", "c", "f", "a", "d", "b", "e", "g"] {
        expect.push(name);
    }
    let mut got = Vec::new();
    loop {
        let taken = h.take();
        assert!(taken.len() <= 1, "concurrency 1 but took {}", taken.len());
        let Some(d) = taken.into_iter().next() else { break };
        got.push(ids[&d.execution_id]);
        h.complete_ok(&d, json!("ok"));
    }
    assert_eq!(got, expect);
}

#[tokio::test(start_paused = true)]
async fn queue_fifo_within_one_priority_and_tenant() {
    let h = Harness::new(config(4));
    let ids: Vec<String> = (0..50).map(|_| h.submit_cfg("t1", json!({})).execution_id).collect();
    let mut order = Vec::new();
    loop {
        let taken = h.take();
        if taken.is_empty() {
            break;
        }
        for d in &taken {
            order.push(d.execution_id.clone());
            h.complete_ok(d, json!(null));
        }
    }
    assert_eq!(order, ids);
}

#[tokio::test(start_paused = true)]
async fn queue_engine_concurrency_is_never_exceeded() {
    let h = Harness::new(config(3));
    for _ in 0..20 {
        h.submit_cfg("t1", json!({}));
    }
    let first = h.take();
    assert_eq!(first.len(), 3);
    assert!(h.take().is_empty(), "no free slot");
    assert_eq!(h.exec.in_flight(), 3);
    assert_eq!(h.stats().in_flight, 3);
    assert_eq!(h.stats().concurrency, 3);

    // Freeing one slot lets exactly one more start.
    h.complete_ok(&first[0], json!(1));
    let next = h.take();
    assert_eq!(next.len(), 1);
    assert!(h.take().is_empty());
    // Freeing two (one failure) lets exactly two more start.
    h.complete_ok(&first[1], json!(1));
    h.complete_err(&first[2], "nope");
    let two = h.take();
    assert_eq!(two.len(), 2);
    assert!(h.take().is_empty());
    assert_eq!(h.exec.in_flight(), 3);

    // Interleaved take/complete: in-flight stays <= 3 all the way.
    let mut running: Vec<Dispatch> = next.into_iter().chain(two).collect();
    let mut done = 0;
    loop {
        let free = 3 - h.exec.in_flight();
        let t = h.take();
        assert!(t.len() <= free, "took {} with {free} free", t.len());
        running.extend(t);
        assert!(h.exec.in_flight() <= 3);
        if running.is_empty() {
            break;
        }
        // Complete the oldest, but only those we started in this loop.
        let d = running.remove(0);
        h.complete_ok(&d, json!(1));
        done += 1;
    }
    assert_eq!(done, 20 - 3);
    let c = h.counts();
    assert_eq!((c.queued, c.running, c.completed, c.failed), (0, 0, 19, 1));
}

#[tokio::test(start_paused = true)]
async fn queue_concurrency_zero_is_treated_as_one() {
    let h = Harness::new(config(0));
    h.submit_cfg("t", json!({}));
    h.submit_cfg("t", json!({}));
    assert_eq!(h.take().len(), 1);
    assert_eq!(h.stats().concurrency, 1);
}

#[tokio::test(start_paused = true)]
async fn queue_tenant_concurrency() {
    let h = Harness::new(ExecutorConfig { concurrency: 10, tenant_concurrency: Some(2), ..ExecutorConfig::default() });
    for _ in 0..5 {
        h.submit_cfg("A", json!({}));
    }
    for _ in 0..5 {
        h.submit_cfg("B", json!({}));
    }
    h.submit_cfg("C", json!({}));
    let taken = h.take();
    let per = |ds: &[Dispatch]| {
        let mut m: HashMap<String, usize> = HashMap::new();
        for d in ds {
            *m.entry(d.tenant_id.clone()).or_default() += 1;
        }
        m
    };
    let counts = per(&taken);
    assert_eq!(counts.get("A"), Some(&2), "{counts:?}");
    assert_eq!(counts.get("B"), Some(&2), "{counts:?}");
    assert_eq!(counts.get("C"), Some(&1), "{counts:?}");
    assert_eq!(taken.len(), 5);
    assert!(h.take().is_empty(), "A and B at their limit, C drained");

    // One of A finishes: exactly one more of A may start.
    let a = taken.iter().find(|d| d.tenant_id == "A").unwrap();
    h.complete_ok(a, json!(1));
    let more_a = h.take();
    assert_eq!(more_a.len(), 1);
    assert_eq!(more_a[0].tenant_id, "A");
    assert!(h.take().is_empty());

    // A failure also frees the tenant's slot.
    let b = taken.iter().find(|d| d.tenant_id == "B").unwrap();
    h.complete_err(b, "x");
    let more = h.take();
    assert_eq!(more.len(), 1);
    assert_eq!(more[0].tenant_id, "B");

    // Run everything to the end, checking the limit all the way.
    let (a_id, b_id) = (a.execution_id.clone(), b.execution_id.clone());
    let mut running: Vec<Dispatch> = taken.into_iter().filter(|d| d.execution_id != a_id && d.execution_id != b_id).collect();
    running.extend(more_a);
    running.extend(more);
    assert!(h.take().is_empty());
    let mut in_flight: HashMap<String, usize> = per(&running);
    assert_eq!(in_flight.get("A"), Some(&2));
    assert_eq!(in_flight.get("B"), Some(&2));
    while !running.is_empty() {
        for (t, n) in &in_flight {
            assert!(*n <= 2, "tenant {t} has {n} in flight");
        }
        let d = running.remove(0);
        h.complete_ok(&d, json!(1));
        *in_flight.get_mut(&d.tenant_id).unwrap() -= 1;
        for nd in h.take() {
            *in_flight.entry(nd.tenant_id.clone()).or_default() += 1;
            running.push(nd);
        }
    }
    let c = h.counts();
    assert_eq!((c.queued, c.running), (0, 0), "{c:?}");
}

/// A callable's concurrency limit holds through a whole run, across
/// tenants, while the tenant's other callables and other tenants go on.
#[tokio::test(start_paused = true)]
async fn queue_callable_concurrency() {
    let h = Harness::new(ExecutorConfig { concurrency: 8, tenant_concurrency: None, ..ExecutorConfig::default() });
    h.exec.register_callable_limited("slow", Some(2)).unwrap();
    let submit = |tenant: &str, callable: &str| h.submit(json!({"tenantId": tenant, "callableName": callable})).execution_id;
    for _ in 0..6 {
        submit("A", "slow");
        submit("B", "slow");
    }
    for _ in 0..3 {
        submit("A", "work");
    }
    let taken = h.take();
    let slow = taken.iter().filter(|d| d.callable_name == "slow").count();
    let work = taken.iter().filter(|d| d.callable_name == "work").count();
    assert_eq!((slow, work), (2, 3), "slow capped at 2; A's later `work` is not held up behind it");
    assert!(h.take().is_empty());

    // Run everything to the end, checking the limit all the way.
    let mut running = taken;
    let mut in_flight = slow;
    let mut done = 0;
    while !running.is_empty() {
        assert!(in_flight <= 2, "{in_flight} slow attempts in flight");
        let d = running.remove(0);
        if d.callable_name == "slow" {
            in_flight -= 1;
        }
        if done % 3 == 0 {
            h.complete_err(&d, "x");
        } else {
            h.complete_ok(&d, json!(1));
        }
        done += 1;
        for nd in h.take() {
            if nd.callable_name == "slow" {
                in_flight += 1;
            }
            running.push(nd);
        }
    }
    assert_eq!(done, 15);
    let c = h.counts();
    assert_eq!((c.queued, c.running), (0, 0), "{c:?}");
}

/// Registering a callable again replaces its limit; a limit of 0 is refused.
#[tokio::test(start_paused = true)]
async fn queue_callable_concurrency_changes_with_registration() {
    let h = Harness::new(config(10));
    h.exec.register_callable_limited("work", Some(1)).unwrap();
    for _ in 0..4 {
        h.submit_cfg("A", json!({}));
    }
    assert_eq!(h.take().len(), 1);
    h.exec.register_callable_limited("work", Some(3)).unwrap();
    assert_eq!(h.take().len(), 2, "the one running counts against the new limit");
    h.exec.register_callable("work").unwrap();
    assert_eq!(h.take().len(), 1, "no limit: the rest");
    let err = h.exec.register_callable_limited("work", Some(0)).unwrap_err();
    assert_eq!(err.message, "concurrency: must be at least 1");
}

#[tokio::test(start_paused = true)]
async fn queue_tenant_concurrency_does_not_block_other_tenants_or_priorities() {
    let h = Harness::new(ExecutorConfig { concurrency: 4, tenant_concurrency: Some(1), ..ExecutorConfig::default() });
    // A has high-priority work; B only low. A's limit must not stop B.
    for _ in 0..3 {
        h.submit_cfg("A", json!({"priority": 200}));
    }
    h.submit_cfg("B", json!({"priority": 1}));
    let taken = h.take();
    let tenants: Vec<&str> = taken.iter().map(|d| d.tenant_id.as_str()).collect();
    assert_eq!(tenants, ["A", "B"]);
}

#[tokio::test(start_paused = true)]
async fn queue_fairness_between_tenants_at_equal_priority() {
    let h = Harness::new(config(1));
    for _ in 0..100 {
        h.submit_cfg("A", json!({}));
    }
    let b_ids: Vec<String> = (0..5).map(|_| h.submit_cfg("B", json!({})).execution_id).collect();
    let mut b_started_at = Vec::new();
    for take_no in 1..=105 {
        let t = h.take();
        assert_eq!(t.len(), 1, "take #{take_no}");
        if t[0].tenant_id == "B" {
            b_started_at.push(take_no);
        }
        h.complete_ok(&t[0], json!(1));
    }
    assert!(h.take().is_empty());
    assert_eq!(b_started_at.len(), 5);
    assert!(*b_started_at.last().unwrap() <= 10, "B's jobs started at takes {b_started_at:?}: starved by A");
    // And B's own jobs kept their FIFO order.
    let b_recs: Vec<_> = b_ids.iter().map(|id| h.get(id)).collect();
    for w in b_recs.windows(2) {
        assert!(w[0].started_at <= w[1].started_at);
    }
}

#[tokio::test(start_paused = true)]
async fn queue_fairness_many_tenants_round_robin_in_one_take() {
    let h = Harness::new(config(6));
    for t in ["A", "B", "C"] {
        for _ in 0..10 {
            h.submit_cfg(t, json!({}));
        }
    }
    let taken = h.take();
    let mut m: HashMap<String, usize> = HashMap::new();
    for d in &taken {
        *m.entry(d.tenant_id.clone()).or_default() += 1;
    }
    assert_eq!(m.len(), 3, "{m:?}");
    assert!(m.values().all(|n| *n == 2), "{m:?}");
}

#[tokio::test(start_paused = true)]
async fn queue_deferred_without_time_runs_after_immediate_work_drains() {
    let h = Harness::new(config(1));
    // Deferred first, even at top priority; immediate work at the lowest.
    let d = h.submit_cfg("t", json!({"mode": "deferred", "priority": 255}));
    let i1 = h.submit_cfg("t", json!({"priority": 0}));
    let i2 = h.submit_cfg("t2", json!({"mode": "silent", "priority": 0}));
    let mut order = Vec::new();
    loop {
        let t = h.take();
        let Some(x) = t.into_iter().next() else { break };
        order.push(x.execution_id.clone());
        if x.execution_id == i1.execution_id {
            // More immediate work arriving while the queue is busy still
            // goes before the deferred execution.
            let i3 = h.submit_cfg("t", json!({"priority": 0}));
            order.push(format!("submitted {}", i3.execution_id));
        }
        h.complete_ok(&x, json!(1));
    }
    assert_eq!(order.len(), 5, "{order:?}");
    assert_eq!(order.last().unwrap(), &d.execution_id, "deferred ran last: {order:?}");
    assert_eq!(order[0], i1.execution_id);
    assert!(order.contains(&i2.execution_id));
    assert_eq!(h.get(&d.execution_id).status, BackgroundExecutionStatus::Completed);
}

#[tokio::test(start_paused = true)]
async fn queue_deferred_with_delay_is_not_taken_before_the_delay() {
    let h = Harness::started(config(4));
    let d = h.submit_cfg("t", json!({"mode": "deferred", "delayMs": 5000}));
    assert_eq!(d.status, BackgroundExecutionStatus::Queued);
    assert!(h.take().is_empty(), "taken at once");
    advance_ms(4000).await;
    assert!(h.take().is_empty(), "taken after 4s of 5s");
    assert_eq!(h.host.wakes(), 0, "no wake before it is due");
    advance_ms(990).await;
    assert!(h.take().is_empty(), "taken after 4.99s of 5s");
    advance_ms(20).await;
    assert_eq!(h.host.wakes(), 1, "host woken when it became due");
    let t = h.take();
    assert_eq!(t.len(), 1);
    assert_eq!(t[0].execution_id, d.execution_id);
    assert!(t[0].stream, "deferred mode delivers stream chunks");
    let rec = h.get(&d.execution_id);
    let waited = rec.started_at.unwrap() - rec.queued_at;
    assert!(waited >= chrono::Duration::milliseconds(5000), "{waited:?}");
    assert!(waited <= chrono::Duration::milliseconds(5100), "{waited:?}");
}

#[tokio::test(start_paused = true)]
async fn queue_deferred_with_run_at() {
    let h = Harness::started(config(4));
    let now = h.exec.clock().now();
    let at = now + chrono::Duration::milliseconds(2500);
    let d = h.submit_cfg("t", json!({"mode": "deferred", "runAt": at.to_rfc3339()}));
    // One in the past runs at once.
    let past = h.submit_cfg("t", json!({"mode": "deferred", "runAt": (now - chrono::Duration::seconds(60)).to_rfc3339()}));
    advance_ms(1).await;
    let t = h.take_ids();
    assert_eq!(t, vec![past.execution_id.clone()]);
    advance_ms(2000).await;
    assert!(h.take().is_empty());
    h.drain();
    advance_ms(600).await;
    assert!(h.host.wakes() >= 1);
    assert_eq!(h.take_ids(), vec![d.execution_id]);
}

#[tokio::test(start_paused = true)]
async fn queue_delayed_work_keeps_priority_once_due() {
    let h = Harness::started(config(1));
    let low = h.submit_cfg("t", json!({"priority": 1}));
    let late = h.submit_cfg("t", json!({"mode": "deferred", "delayMs": 100, "priority": 100}));
    let blocker = h.take();
    assert_eq!(blocker[0].execution_id, low.execution_id);
    let low2 = h.submit_cfg("t", json!({"priority": 1}));
    advance_ms(200).await;
    h.complete_ok(&blocker[0], json!(1));
    // Now due, the high-priority deferred one goes before low2.
    assert_eq!(h.take_ids(), vec![late.execution_id]);
    let _ = low2;
}

#[tokio::test(start_paused = true)]
async fn queue_dispatch_carries_the_request() {
    let h = Harness::new(config(4));
    let e = h.submit(json!({
        "tenantId": "tenant_x", "callableName": "echo", "input": "hi",
        "context": {"k": "v"}, "metadata": {"m": 1}, "executionId": "exec_custom"
    }));
    assert_eq!(e.execution_id, "exec_custom", "a caller's id is kept");
    assert_eq!(e.status, BackgroundExecutionStatus::Queued);
    assert_eq!(e.attempt, 0);
    let d = h.take().pop().unwrap();
    assert_eq!(d.execution_id, "exec_custom");
    assert_eq!(d.attempt, 1);
    assert_eq!(d.tenant_id, "tenant_x");
    assert_eq!(d.callable_name, "echo");
    assert_eq!(d.input.as_deref(), Some("hi"));
    assert_eq!(d.context.as_ref().unwrap()["k"], "v");
    assert!(!d.stream, "fire_and_forget does not stream");
    let rec = h.get("exec_custom");
    assert_eq!(rec.status, BackgroundExecutionStatus::Running);
    assert_eq!(rec.attempt, 1);
    assert!(rec.started_at.is_some());
    h.complete_ok(&d, json!({"answer": 42}));
    let rec = h.get("exec_custom");
    assert_eq!(rec.status, BackgroundExecutionStatus::Completed);
    assert_eq!(rec.output, Some(json!({"answer": 42})));
    assert!(rec.completed_at.unwrap() >= rec.started_at.unwrap());
    assert_eq!(rec.metadata.unwrap()["m"], json!(1));
}

#[tokio::test(start_paused = true)]
async fn queue_generated_ids_are_exec_ksuids() {
    let h = Harness::new(config(1));
    let e = h.submit_cfg("t", json!({}));
    assert!(e.execution_id.starts_with("exec_"));
    assert_eq!(e.execution_id.len(), 5 + 27);
    assert!(e.execution_id[5..].bytes().all(|c| c.is_ascii_alphanumeric()));
}

#[tokio::test(start_paused = true)]
async fn queue_submit_errors() {
    let h = Harness::new(config(1));
    let err = h.exec.submit(req(json!({"tenantId": "t", "callableName": "nope"})), Watch::No).unwrap_err();
    assert_eq!(err.code, ErrorCode::UnknownCallable);
    assert!(err.message.contains("nope"), "{}", err.message);
    assert!(!h.exec.has_callable("nope"));
    assert!(h.exec.has_callable("work"));
    assert!(h.exec.register_callable("").is_err());

    // An id taken by another tenant's execution: refused, the first record untouched.
    let first = h.submit(json!({"tenantId": "t", "callableName": "work", "executionId": "exec_dup", "input": "one"}));
    let err = h.exec.submit(req(json!({"tenantId": "u", "callableName": "echo", "executionId": "exec_dup"})), Watch::No).unwrap_err();
    assert_eq!(err.code, ErrorCode::InvalidExecution);
    assert!(err.message.starts_with("executionId:"), "{}", err.message);
    assert_eq!(h.get("exec_dup"), first);
    assert_eq!(h.stats().submitted, 1);
    assert_eq!(h.stats().counts.queued, 1);
}

/// One submission through `submit_many`, answered at once (memory store).
fn submit_one(h: &Harness, v: serde_json::Value, watch: bool) -> EngineResult<Receipt> {
    let fut = h.exec.clone().submit_many(vec![Submission { request: req(v), watch, keep_record: false }]);
    enact_background_core::store::ready_now(async move { Ok(fut.await) }).unwrap().pop().unwrap()
}

#[tokio::test(start_paused = true)]
async fn queue_existing_id_of_the_same_tenant_answers_that_execution() {
    let h = Harness::new(config(1));
    h.interest(&[EventKind::Queued]);
    let first = h.submit(json!({"tenantId": "t", "callableName": "work", "executionId": "exec_same", "input": "one", "metadata": {"n": 1}}));
    assert_eq!(events_of(&h.drain(), EventKind::Queued, "exec_same").len(), 1);

    // Asked again, with another callable and input: the stored execution,
    // as it stands (BullMQ's jobId), and nothing new is queued or counted.
    let again = submit_one(&h, json!({"tenantId": "t", "callableName": "echo", "executionId": "exec_same", "input": "two"}), false).unwrap();
    assert_eq!(again.existing, Some(Existing::Current));
    assert_eq!(again.queued_at, first.queued_at);
    assert_eq!(again.record.as_deref(), Some(&first), "the record is answered even when the caller did not ask to keep it");
    assert!(h.drain().is_empty(), "no execution.queued for an execution that already existed");
    assert_eq!((h.stats().submitted, h.stats().counts.queued), (1, 1));

    // Running: the answer shows it running.
    let d = h.take().pop().unwrap();
    let running = h.exec.submit(req(json!({"tenantId": "t", "callableName": "work", "executionId": "exec_same"})), Watch::No).unwrap();
    assert_eq!((running.status, running.attempt), (BackgroundExecutionStatus::Running, 1));

    // Watched while running: its current record now, Settled when it ends.
    let watched = submit_one(&h, json!({"tenantId": "t", "callableName": "work", "executionId": "exec_same", "config": {"mode": "silent"}}), true).unwrap();
    assert_eq!(watched.existing, Some(Existing::Watched));
    assert_eq!(watched.record.unwrap().status, BackgroundExecutionStatus::Running);
    h.complete_ok(&d, json!("out"));
    let notices = h.drain();
    let done = settled(&notices);
    assert_eq!(done.len(), 1, "the watched duplicate settles like a new silent submission: {notices:?}");
    assert_eq!((done[0].execution_id.as_str(), done[0].output.clone()), ("exec_same", Some(json!("out"))));

    // Watched once settled: the final record at once, and no Settled follows.
    let after = submit_one(&h, json!({"tenantId": "t", "callableName": "work", "executionId": "exec_same", "config": {"mode": "silent"}}), true).unwrap();
    assert_eq!(after.existing, Some(Existing::Settled));
    assert_eq!(after.record.unwrap().status, BackgroundExecutionStatus::Completed);
    assert!(settled(&h.drain()).is_empty());
    assert_eq!(h.stats().submitted, 1);
    assert_eq!(h.counts().completed, 1);
}

#[tokio::test(start_paused = true)]
async fn queue_existing_id_in_one_batch_and_of_another_tenant() {
    let h = Harness::new(config(4));
    let sub = |tenant: &str, input: &str| Submission {
        request: req(json!({"tenantId": tenant, "callableName": "work", "executionId": "exec_b", "input": input})),
        watch: false,
        keep_record: false,
    };
    // The same id twice in one batch (a client retrying at once), and a
    // third from another tenant: one execution, the same answer twice, one
    // refusal that says nothing of the execution it collided with.
    let fut = h.exec.clone().submit_many(vec![sub("t", "a"), sub("t", "b"), sub("other", "c")]);
    let answers = enact_background_core::store::ready_now(async move { Ok(fut.await) }).unwrap();
    let first = answers[0].as_ref().unwrap();
    assert_eq!(first.existing, None);
    let second = answers[1].as_ref().unwrap();
    assert_eq!(second.existing, Some(Existing::Current));
    assert_eq!(second.record.as_ref().unwrap().input.as_deref(), Some("a"));
    let err = answers[2].as_ref().unwrap_err();
    assert_eq!(err.code, ErrorCode::InvalidExecution);
    assert!(err.message.starts_with("executionId: \"exec_b\""), "{}", err.message);
    for secret in ["\"t\"", "work", "queued", "\"a\""] {
        assert!(!err.message.contains(secret), "the refusal leaks {secret}: {}", err.message);
    }
    assert_eq!(h.stats().submitted, 1);
    assert_eq!(h.counts().queued, 1);
    assert_eq!(h.get("exec_b").tenant_id, "t");
}

#[tokio::test(start_paused = true)]
async fn queue_stats_and_list() {
    let h = Harness::new(config(2));
    h.exec.register_callable("other").unwrap();
    let a = h.submit_cfg("A", json!({}));
    let b = h.submit_cfg("B", json!({}));
    let c = h.submit(json!({"tenantId": "A", "callableName": "other"}));
    let d = h.submit_cfg("A", json!({}));
    let t = h.take();
    assert_eq!(t.len(), 2);
    h.complete_ok(&t[0], json!(1));
    h.complete_err(&t[1], "bad");
    assert!(h.exec.cancel(&c.execution_id).unwrap());
    let s = h.stats();
    assert_eq!(s.submitted, 4);
    assert_eq!(s.counts.completed, 1);
    assert_eq!(s.counts.failed, 1);
    assert_eq!(s.counts.cancelled, 1);
    assert_eq!(s.counts.queued, 1);
    assert_eq!(s.counts.running, 0);
    assert_eq!(s.in_flight, 0);
    assert_eq!(s.retried, 0);
    assert_eq!(s.stale_results, 0);

    let all = h.exec.list(&ExecutionFilter::default()).unwrap();
    assert_eq!(all.len(), 4);
    let of_a = h.exec.list(&ExecutionFilter { tenant_id: Some("A".into()), ..Default::default() }).unwrap();
    assert_eq!(of_a.len(), 3);
    let ids: Vec<_> = of_a.iter().map(|e| e.execution_id.clone()).collect();
    // Oldest first.
    let mut by_time = of_a.clone();
    by_time.sort_by_key(|e| e.queued_at);
    assert_eq!(ids, by_time.iter().map(|e| e.execution_id.clone()).collect::<Vec<_>>());
    let other = h.exec.list(&ExecutionFilter { callable_name: Some("other".into()), ..Default::default() }).unwrap();
    assert_eq!(other.len(), 1);
    assert_eq!(other[0].execution_id, c.execution_id);
    let queued = h.exec.list(&ExecutionFilter { status: Some(BackgroundExecutionStatus::Queued), ..Default::default() }).unwrap();
    assert_eq!(queued.iter().map(|e| &e.execution_id).collect::<Vec<_>>(), vec![&d.execution_id]);
    let limited = h.exec.list(&ExecutionFilter { limit: Some(2), ..Default::default() }).unwrap();
    assert_eq!(limited.len(), 2);
    let _ = (a, b);
}

#[tokio::test(start_paused = true)]
async fn queue_events_queued_and_started_only_when_interested() {
    let h = Harness::new(config(2));
    let e = h.submit_cfg("t", json!({}));
    h.take();
    assert!(h.drain().is_empty(), "no interest, no events");
    h.interest(&[EventKind::Queued, EventKind::Started]);
    let e2 = h.submit_cfg("t", json!({}));
    let t = h.take();
    let n = h.drain();
    assert_eq!(event_kinds(&n), vec![EventKind::Queued, EventKind::Started]);
    assert_eq!(events_of(&n, EventKind::Queued, &e2.execution_id)[0].status, BackgroundExecutionStatus::Queued);
    assert_eq!(events_of(&n, EventKind::Started, &e2.execution_id)[0].status, BackgroundExecutionStatus::Running);
    assert!(!h.exec.has_notices());
    h.exec.set_interest(EventKind::Queued, false);
    h.submit_cfg("t", json!({}));
    assert!(h.drain().is_empty());
    let _ = (e, t);
    assert_eq!(EventKind::parse("execution.retrying"), Some(EventKind::Retrying));
    assert_eq!(EventKind::BindingFailed.name(), "binding.failed");
    assert_eq!(EventKind::parse("nope"), None);
}

#[tokio::test(start_paused = true)]
async fn deferred_run_at_in_the_past_is_takeable_at_once() {
    let h = Harness::new(config(4));
    let past = (h.exec.clock().now() - chrono::Duration::seconds(5)).to_rfc3339();
    let rec = h.submit_cfg("t", json!({"mode": "deferred", "runAt": past}));
    assert_eq!(h.take_ids(), vec![rec.execution_id]);
}

#[tokio::test(start_paused = true)]
async fn finished_attempts_do_not_pile_up_deadlines() {
    // 20,000 attempts with a one-year timeout each, run one at a time: the
    // deadline of every finished attempt must not be kept until it expires.
    let h = Harness::new(config(1));
    for _ in 0..20_000 {
        h.submit_cfg("t", json!({"timeoutMs": 365u64 * 86_400_000}));
        let d = h.take().pop().expect("one ready");
        h.complete_ok(&d, json!(null));
    }
    assert_eq!(h.counts().completed, 20_000);
    assert!(h.exec.pending_deadlines() <= 1024 + 4, "deadlines kept: {}", h.exec.pending_deadlines());
}
