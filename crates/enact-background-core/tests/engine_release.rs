//! After shutdown an engine's background services end and drop what they
//! hold, so that the executor, the trigger engine, the store and the host
//! are freed once their owner lets go: nothing of a closed engine stays
//! behind (issue 10, item 14). The Node binding builds its engines the same
//! way: an executor over a memory store, a trigger engine over it, their
//! services on a shared runtime.

use std::sync::{Arc, Weak};
use std::time::Duration;

use enact_background_core::prelude::*;
use serde_json::json;

struct NoHost;
impl Host for NoHost {
    fn wake(&self) {}
}

/// How long a service may take to end after close before the test fails:
/// far longer than a slow machine needs (the services end as soon as they
/// are woken), far shorter than any of their periods here (leases of a
/// day, listener every hour, pruner every 30 s), so a service that ends
/// only when its sleep runs out fails the test.
const CAP: Duration = Duration::from_secs(20);

/// Resolves once nothing holds `weak`'s value any more, yielding to the
/// services meanwhile.
async fn released<T>(what: &str, weak: &Weak<T>) {
    let gone = async {
        while weak.strong_count() > 0 {
            tokio::task::yield_now().await;
        }
    };
    if tokio::time::timeout(CAP, gone).await.is_err() {
        panic!("{what} is still held ({} strong references) after close", weak.strong_count());
    }
}

async fn ended(what: &str, task: tokio::task::JoinHandle<()>) {
    match tokio::time::timeout(CAP, task).await {
        Ok(r) => r.unwrap_or_else(|e| panic!("{what} failed: {e}")),
        Err(_) => panic!("{what} did not end after close"),
    }
}

/// Every service running (timer, scheduler with an armed tick, and the
/// store services: heartbeat, rescuer, pruner, trigger-change listener),
/// used, then closed as the binding closes an engine.
#[tokio::test(flavor = "multi_thread", worker_threads = 1)]
async fn after_close_the_services_end_and_the_engine_is_dropped() {
    let store = Arc::new(MemoryStore::keeping(100));
    let host = Arc::new(NoHost);
    let (weak_store, weak_host) = (Arc::downgrade(&store), Arc::downgrade(&host));
    let config = ExecutorConfig { maintenance: true, keep_finished: Some(100), lease_ms: 86_400_000, ..ExecutorConfig::default() };
    let exec = Executor::new(store, Arc::new(SystemClock), host, config);
    let triggers = TriggerEngine::new(exec.clone(), TriggerConfig { listen_ms: Some(3_600_000), ..TriggerConfig::default() });
    let timer = exec.start();
    let scheduler = triggers.start().expect("start");
    exec.register_callable("work").unwrap();
    triggers
        .register(&json!({"tenantId": "t", "type": "schedule", "condition": {"intervalSeconds": 3600}, "action": {"callableName": "work"}}))
        .unwrap();
    triggers
        .register(&json!({"tenantId": "t", "type": "event", "condition": {"eventType": "order.*"}, "action": {"callableName": "work"}}))
        .unwrap();
    let req = validate::submit_request(&json!({"tenantId": "t", "callableName": "work"})).unwrap();
    exec.submit(req, Watch::Settled).unwrap();
    let later = validate::submit_request(&json!({"tenantId": "t", "callableName": "work", "config": {"mode": "deferred", "delayMs": 3_600_000}})).unwrap();
    exec.submit(later, Watch::Settled).unwrap();
    triggers.emit(&json!({"tenantId": "t", "type": "order.created", "data": {}})).unwrap();
    for d in exec.take().unwrap() {
        exec.complete(&d.execution_id, d.attempt, Outcome::Completed(json!(1))).unwrap();
    }
    triggers.drain();

    // Running, the services hold the executor (timer, heartbeat, rescuer,
    // pruner) and the trigger engine (scheduler, listener).
    assert!(Arc::strong_count(&exec) >= 6, "executor held {} times", Arc::strong_count(&exec));
    assert!(Arc::strong_count(&triggers) >= 3, "trigger engine held {} times", Arc::strong_count(&triggers));

    // Closed as `NativeEngine` closes: shutdown, scheduler stopped.
    exec.begin_shutdown();
    triggers.stop();
    exec.finish_shutdown().unwrap();
    assert!(triggers.drain().iter().any(|n| matches!(n, Notice::Closed)));
    ended("the timer", timer).await;
    ended("the scheduler", scheduler).await;

    let (weak_exec, weak_triggers) = (Arc::downgrade(&exec), Arc::downgrade(&triggers));
    drop(triggers);
    drop(exec);
    released("the trigger engine", &weak_triggers).await;
    released("the executor", &weak_exec).await;
    released("the store", &weak_store).await;
    released("the host", &weak_host).await;
}
