//! A burst of 100,000 submissions through a concurrency of 64, with
//! failures and retries: nothing lost, nothing finished twice, nothing
//! started more often than its retries allow.

mod common;

use std::time::Instant;

use common::*;
use enact_background_core::prelude::*;
use serde_json::json;

const N: usize = 100_000;
const CONCURRENCY: usize = 64;

/// What happens to execution `i`: how many attempts it gets, and whether
/// the last one succeeds.
fn plan(i: usize) -> (u32, bool) {
    match (i.is_multiple_of(7), i.is_multiple_of(11)) {
        (true, true) => (3, false), // retried, fails every time
        (true, false) => (3, true), // fails twice, then succeeds
        (false, true) => (1, false), // no retry policy: fails once
        (false, false) => (1, true),
    }
}

fn index(id: &str) -> usize {
    id.strip_prefix("exec_burst_").unwrap().parse().unwrap()
}

#[tokio::test(start_paused = true)]
async fn burst_100k_every_execution_final_exactly_once() {
    let wall = Instant::now();
    let h = Harness::started(ExecutorConfig { concurrency: CONCURRENCY, tenant_concurrency: None, ..ExecutorConfig::default() });
    h.interest(&[EventKind::Completed, EventKind::Failed, EventKind::Timeout, EventKind::Cancelled, EventKind::Retrying]);

    for i in 0..N {
        let mut config = json!({"priority": (i % 3) as u8 * 10});
        if i % 7 == 0 {
            config["retry"] = json!({"maxAttempts": 3, "backoffMs": 10, "backoffMultiplier": 1});
        }
        let tenant = format!("tenant_{}", i % 13);
        h.exec
            .submit(req(json!({"executionId": format!("exec_burst_{i}"), "tenantId": tenant, "callableName": "work", "config": config})), Watch::No)
            .unwrap();
    }
    assert_eq!(h.stats().submitted, N as u64);

    let mut starts = vec![0u32; N];
    let mut finals = vec![0u32; N];
    let mut retrying_events = 0u64;
    let mut running: Vec<Dispatch> = Vec::new();
    let mut done = 0usize;
    let mut idle_ms = 0u64;
    let mut round = 0u64;

    while done < N {
        round += 1;
        assert!(round < 10_000_000, "no progress");
        let free = CONCURRENCY - h.exec.in_flight();
        let taken = h.take();
        assert!(taken.len() <= free, "take returned {} with {free} free slots", taken.len());
        for d in &taken {
            let i = index(&d.execution_id);
            starts[i] += 1;
            assert_eq!(d.attempt, starts[i], "exec {i}: attempts out of order");
            assert!(d.attempt <= plan(i).0, "exec {i}: started {} times", d.attempt);
        }
        running.extend(taken);
        assert!(h.exec.in_flight() <= CONCURRENCY);
        assert_eq!(h.exec.in_flight(), running.len());

        // Complete about half of what runs, oldest and newest alternately,
        // so completions interleave with starts.
        let k = running.len().div_ceil(2);
        for j in 0..k {
            let d = if j % 2 == 0 { running.remove(0) } else { running.pop().unwrap() };
            let i = index(&d.execution_id);
            let (attempts, succeeds) = plan(i);
            if d.attempt == attempts && succeeds {
                h.complete_ok(&d, json!(i));
            } else {
                h.complete_err(&d, "planned failure");
            }
        }

        for n in h.drain() {
            match n {
                Notice::Event(EventKind::Retrying, rec) => {
                    retrying_events += 1;
                    assert_eq!(rec.status, BackgroundExecutionStatus::Queued);
                }
                Notice::Event(kind, rec) => {
                    let i = index(&rec.execution_id);
                    finals[i] += 1;
                    assert_eq!(finals[i], 1, "exec {i}: final status reported twice ({kind:?})");
                    let (attempts, succeeds) = plan(i);
                    let want = if succeeds { EventKind::Completed } else { EventKind::Failed };
                    assert_eq!(kind, want, "exec {i}");
                    assert_eq!(rec.attempt, attempts, "exec {i}");
                    done += 1;
                }
                other => panic!("unexpected notice {other:?}"),
            }
        }

        if running.is_empty() && done < N {
            // Only retries in backoff are left: let paused time run.
            advance_ms(1).await;
            idle_ms += 1;
            assert!(idle_ms < 100_000, "stuck: {done} of {N} final");
        }
    }

    // Nothing left anywhere.
    assert!(running.is_empty());
    assert!(h.take().is_empty());
    advance_ms(1000).await;
    assert!(h.take().is_empty());
    assert!(h.drain().is_empty(), "a late notice appeared");

    let expect_retries: u64 = (0..N).map(|i| plan(i).0 as u64 - 1).sum();
    let expect_failed = (0..N).filter(|&i| !plan(i).1).count() as u64;
    for i in 0..N {
        assert_eq!(finals[i], 1, "exec {i} final {} times", finals[i]);
        assert_eq!(starts[i], plan(i).0, "exec {i}");
    }
    let s = h.stats();
    assert_eq!(s.counts.queued + s.counts.running + s.counts.cancelled + s.counts.timeout, 0, "{s:?}");
    assert_eq!(s.counts.failed, expect_failed);
    assert_eq!(s.counts.completed, N as u64 - expect_failed);
    assert_eq!(s.retried, expect_retries);
    assert_eq!(retrying_events, expect_retries);
    assert_eq!(s.stale_results, 0);
    assert_eq!(s.in_flight, 0);

    // Spot-check records against the plan.
    for i in (0..N).step_by(997).chain([0, 7, 11, 77, N - 1]) {
        let rec = h.get(&format!("exec_burst_{i}"));
        let (attempts, succeeds) = plan(i);
        assert_eq!(rec.attempt, attempts);
        if succeeds {
            assert_eq!(rec.status, BackgroundExecutionStatus::Completed);
            assert_eq!(rec.output, Some(json!(i)));
        } else {
            assert_eq!(rec.status, BackgroundExecutionStatus::Failed);
            assert_eq!(rec.error.unwrap().attempt, attempts);
        }
    }
    eprintln!("burst: {N} executions in {:?} (wall), {idle_ms} ms of paused time idled", wall.elapsed());
}
