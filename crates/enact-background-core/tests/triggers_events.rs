//! Event and lifecycle triggers: type matching, patterns, tenant isolation,
//! the fired execution, TriggerFired notices, executor feedback, the loop
//! guard and a 10,000-trigger index.

mod common;
#[path = "common/triggers.rs"]
mod trig;

use std::collections::BTreeMap;

use common::*;
use enact_background_core::prelude::*;
use serde_json::{json, Value};
use trig::*;

// ---------------------------------------------------------------------------
// Type matching

#[tokio::test(start_paused = true)]
async fn events_exact_event_type() {
    let h = Harness::new(config(16));
    let eng = engine(&h);
    let t = reg(&eng, event_def("t", "order.created"));
    assert_eq!(fired_ids(&emit(&eng, "t", "order.created", json!({}))), vec![t.trigger_id.clone()]);
    for other in ["order.created.v2", "order.create", "order", "Order.created", "x.order.created"] {
        assert!(emit(&eng, "t", other, json!({})).is_empty(), "{other} must not match");
    }
    assert_eq!(execs_of(&h, &t.trigger_id).len(), 1);
    assert_eq!(eng.get(&t.trigger_id).unwrap().fire_count, 1);
}

#[tokio::test(start_paused = true)]
async fn events_trailing_wildcards() {
    let h = Harness::new(config(16));
    let eng = engine(&h);
    let orders = reg(&eng, event_def("t", "order.*")).trigger_id;
    let all = reg(&eng, event_def("t", "*")).trigger_id;
    let mut fired = fired_ids(&emit(&eng, "t", "order.created", json!({})));
    fired.sort();
    let mut want = vec![orders.clone(), all.clone()];
    want.sort();
    assert_eq!(fired, want);
    let mut fired = fired_ids(&emit(&eng, "t", "order.shipped.late", json!({})));
    fired.sort();
    assert_eq!(fired, want);
    assert_eq!(fired_ids(&emit(&eng, "t", "orders.created", json!({}))), vec![all.clone()]);
    assert_eq!(fired_ids(&emit(&eng, "t", "order", json!({}))), vec![all.clone()]);
    assert_eq!(fired_ids(&emit(&eng, "t", "user.signup", json!({}))), vec![all.clone()]);
    assert_eq!(execs_of(&h, &orders).len(), 2);
    assert_eq!(execs_of(&h, &all).len(), 5);
}

// ---------------------------------------------------------------------------
// Patterns

#[tokio::test(start_paused = true)]
async fn events_pattern_operators() {
    let h = Harness::new(config(16));
    let eng = engine(&h);
    let cases: Vec<(Value, Vec<Value>, Vec<Value>)> = vec![
        // plain deep equality
        (json!({"status": "paid"}), vec![json!({"status": "paid", "x": 1})], vec![json!({"status": "open"}), json!({})]),
        // $gt
        (json!({"amount": {"$gt": 100}}), vec![json!({"amount": 101}), json!({"amount": 100.5})], vec![json!({"amount": 100}), json!({"amount": "200"}), json!({})]),
        // $gte + $lt range
        (json!({"amount": {"$gte": 10, "$lt": 20}}), vec![json!({"amount": 10}), json!({"amount": 19.9})], vec![json!({"amount": 20}), json!({"amount": 9})]),
        // $in
        (json!({"country": {"$in": ["DE", "FR"]}}), vec![json!({"country": "FR"})], vec![json!({"country": "US"}), json!({})]),
        // $prefix
        (json!({"sku": {"$prefix": "BK-"}}), vec![json!({"sku": "BK-7"})], vec![json!({"sku": "CD-7"}), json!({"sku": 7})]),
        // nested path
        (json!({"user.plan": "pro"}), vec![json!({"user": {"plan": "pro", "id": 1}})], vec![json!({"user": {"plan": "free"}}), json!({"plan": "pro"})]),
        // array-any: a plain value matches any element
        (json!({"tags": "vip"}), vec![json!({"tags": ["new", "vip"]}), json!({"tags": "vip"})], vec![json!({"tags": ["new"]})]),
        // fan out over an array in the middle of a path
        (json!({"order.items.sku": {"$prefix": "BK-"}}), vec![json!({"order": {"items": [{"sku": "CD-1"}, {"sku": "BK-2"}]}})], vec![json!({"order": {"items": [{"sku": "CD-1"}]}})]),
        // $exists false / $ne / $anythingBut
        (json!({"deleted": {"$exists": false}}), vec![json!({"a": 1})], vec![json!({"deleted": null})]),
        (json!({"env": {"$ne": "test"}}), vec![json!({"env": "prod"}), json!({})], vec![json!({"env": "test"})]),
        (json!({"env": {"$anythingBut": ["test", "dev"]}}), vec![json!({"env": "prod"})], vec![json!({"env": "dev"}), json!({})]),
        // every key must match
        (json!({"status": "paid", "amount": {"$gt": 5}}), vec![json!({"status": "paid", "amount": 6})], vec![json!({"status": "paid", "amount": 5}), json!({"status": "open", "amount": 6})]),
    ];
    for (i, (pattern, yes, no)) in cases.into_iter().enumerate() {
        let ty = format!("p{i}.evt");
        let id = reg(&eng, pattern_def("t", &ty, pattern.clone())).trigger_id;
        for d in &yes {
            assert_eq!(fired_ids(&emit(&eng, "t", &ty, d.clone())), vec![id.clone()], "{pattern} should match {d}");
        }
        for d in &no {
            assert!(emit(&eng, "t", &ty, d.clone()).is_empty(), "{pattern} should not match {d}");
        }
        assert_eq!(execs_of(&h, &id).len(), yes.len(), "{pattern}");
    }
}

#[tokio::test(start_paused = true)]
async fn events_missing_data_is_an_empty_object() {
    let h = Harness::new(config(16));
    let eng = engine(&h);
    let id = reg(&eng, pattern_def("t", "a.b", json!({"x": {"$exists": false}}))).trigger_id;
    let evs = eng.emit(&json!({"type": "a.b", "tenantId": "t"})).unwrap();
    assert_eq!(fired_ids(&evs), vec![id]);
    assert_eq!(evs[0].trigger_source, Some(json!({"type": "a.b", "data": {}})));
}

#[tokio::test(start_paused = true)]
async fn events_bad_event_shape_is_rejected() {
    let h = Harness::new(config(16));
    let eng = engine(&h);
    reg(&eng, event_def("t", "a"));
    let e = err_of(eng.emit(&json!({"type": "a"})));
    assert!(e.message.starts_with("event.tenantId:"), "{}", e.message);
    let e = err_of(eng.emit(&json!({"tenantId": "t", "type": "a", "extra": 1})));
    assert!(e.message.starts_with("event.extra:"), "{}", e.message);
    assert!(all_execs(&h).is_empty());
}

// ---------------------------------------------------------------------------
// Tenants and channels

#[tokio::test(start_paused = true)]
async fn events_never_cross_tenants() {
    let h = Harness::new(config(16));
    let eng = engine(&h);
    let a = reg(&eng, event_def("tenant_a", "order.created")).trigger_id;
    let a_all = reg(&eng, event_def("tenant_a", "*")).trigger_id;
    let b = reg(&eng, event_def("tenant_b", "order.created")).trigger_id;
    assert_eq!(fired_ids(&emit(&eng, "tenant_b", "order.created", json!({}))), vec![b.clone()]);
    assert!(emit(&eng, "tenant_c", "order.created", json!({})).is_empty());
    assert!(emit(&eng, "tenant_", "order.created", json!({})).is_empty());
    assert!(execs_of(&h, &a).is_empty());
    assert!(execs_of(&h, &a_all).is_empty());
    let b_execs = execs_of(&h, &b);
    assert_eq!(b_execs.len(), 1);
    assert_eq!(b_execs[0].tenant_id, "tenant_b");
}

#[tokio::test(start_paused = true)]
async fn events_emit_and_lifecycle_are_separate_channels() {
    let h = Harness::new(config(16));
    let eng = engine(&h);
    let ev = reg(&eng, event_def("t", "user.signup")).trigger_id;
    let lc = reg(
        &eng,
        json!({"tenantId": "t", "type": "lifecycle", "condition": {"eventType": "user.signup", "eventPattern": {"plan": "pro"}}, "action": {"callableName": "echo"}}),
    )
    .trigger_id;
    let lc_all = reg(&eng, json!({"tenantId": "t", "type": "lifecycle", "condition": {"eventType": "*"}, "action": {"callableName": "echo"}})).trigger_id;

    assert_eq!(fired_ids(&emit(&eng, "t", "user.signup", json!({"plan": "pro"}))), vec![ev.clone()]);
    let fired = eng.lifecycle(&json!({"type": "user.signup", "tenantId": "t", "data": {"plan": "pro"}})).unwrap();
    let mut got = fired_ids(&fired);
    got.sort();
    let mut want = vec![lc.clone(), lc_all.clone()];
    want.sort();
    assert_eq!(got, want);
    let lc_ev = fired.iter().find(|e| e.trigger_id == lc).unwrap();
    assert_eq!(lc_ev.trigger_type, TriggerType::Lifecycle);
    assert_eq!(lc_ev.trigger_source, Some(json!({"type": "user.signup", "data": {"plan": "pro"}})));
    // lifecycle with a non-matching pattern, other tenant
    assert_eq!(fired_ids(&eng.lifecycle(&json!({"type": "user.signup", "tenantId": "t", "data": {"plan": "free"}})).unwrap()), vec![lc_all.clone()]);
    assert!(eng.lifecycle(&json!({"type": "user.signup", "tenantId": "other", "data": {"plan": "pro"}})).unwrap().is_empty());

    assert_eq!(execs_of(&h, &ev).len(), 1);
    assert_eq!(execs_of(&h, &lc).len(), 1);
    assert_eq!(execs_of(&h, &lc_all).len(), 2);
}

// ---------------------------------------------------------------------------
// The fired execution

#[tokio::test(start_paused = true)]
async fn events_fired_execution_carries_the_action() {
    let h = Harness::new(config(16));
    let eng = engine(&h);
    let t = reg(
        &eng,
        json!({
            "tenantId": "tenant_a", "type": "event", "name": "Title it",
            "condition": {"eventType": "order.created"},
            "action": {
                "callableName": "echo", "input": "hello", "context": {"locale": "en"},
                "systemPrompt": "Be brief.",
                "targetBinding": {"targetType": "thread.title", "transform": "first_line", "threadId": "thread_1"},
                "retry": {"maxAttempts": 5, "backoffMs": 200, "backoffMultiplier": 1.5}
            }
        }),
    );
    let fired_at = now(&h);
    let evs = emit(&eng, "tenant_a", "order.created", json!({"id": 7}));
    assert_eq!(evs.len(), 1);
    let ev = &evs[0];
    let source = json!({"type": "order.created", "data": {"id": 7}});
    assert_eq!(ev.trigger_id, t.trigger_id);
    assert_eq!(ev.trigger_name, "Title it");
    assert_eq!(ev.trigger_type, TriggerType::Event);
    assert_eq!(ev.fired_at, fired_at);
    assert_eq!(ev.trigger_source, Some(source.clone()));
    assert!(ev.execution_id.starts_with("exec_"), "{}", ev.execution_id);

    let rec = h.get(&ev.execution_id);
    assert_eq!(rec.tenant_id, "tenant_a");
    assert_eq!(rec.callable_name, "echo");
    assert_eq!(rec.input.as_deref(), Some("hello"));
    let want_ctx: BTreeMap<String, String> = [("locale", "en"), ("systemPrompt", "Be brief.")].into_iter().map(|(k, v)| (k.to_owned(), v.to_owned())).collect();
    assert_eq!(rec.context, Some(want_ctx));
    assert_eq!(rec.config.mode, ExecutionMode::Silent);
    assert_eq!(rec.config.target_binding, t.action.target_binding.map(Box::new));
    let tb = rec.config.target_binding.as_ref().unwrap();
    assert_eq!(tb.target_type, TargetType::parse("thread.title").unwrap());
    assert_eq!(tb.thread_id.as_deref(), Some("thread_1"));
    let retry = rec.config.retry.as_ref().unwrap();
    assert_eq!((retry.max_attempts, retry.backoff_ms, retry.backoff_multiplier), (5, 200, 1.5));
    assert_eq!(rec.trigger_id.as_deref(), Some(t.trigger_id.as_str()));
    assert_eq!(rec.trigger_source, Some(source.clone()));
    assert_eq!(rec.chain_depth, 1);
    assert_eq!(rec.status, BackgroundExecutionStatus::Queued);
    assert_eq!(rec.queued_at, fired_at);
    let v = serde_json::to_value(&rec).unwrap();
    assert_eq!(v["config"]["mode"], json!("silent"));
    assert_eq!(v["triggerId"], json!(t.trigger_id));

    // The host sees the trigger in the dispatch.
    let d = h.take();
    assert_eq!(d.len(), 1);
    assert_eq!(d[0].execution_id, ev.execution_id);
    assert_eq!(d[0].callable_name, "echo");
    assert_eq!(d[0].trigger_id.as_deref(), Some(t.trigger_id.as_str()));
    assert_eq!(d[0].trigger_source, Some(source));

    // The trigger's state was counted.
    let t2 = eng.get(&t.trigger_id).unwrap();
    assert_eq!(t2.fire_count, 1);
    assert_eq!(t2.last_fired_at, Some(fired_at));
}

#[tokio::test(start_paused = true)]
async fn events_system_prompt_without_context_becomes_context() {
    let h = Harness::new(config(16));
    let eng = engine(&h);
    let t = reg(&eng, json!({"tenantId": "t", "type": "manual", "action": {"callableName": "echo", "systemPrompt": "You are terse."}}));
    let ev = eng.fire(&t.trigger_id, None).unwrap();
    let rec = h.get(&ev.execution_id);
    let want: BTreeMap<String, String> = [("systemPrompt".to_owned(), "You are terse.".to_owned())].into_iter().collect();
    assert_eq!(rec.context, Some(want));
    assert_eq!(rec.input, None);
    assert_eq!(rec.config.target_binding, None);
    assert_eq!(rec.config.retry, None);
}

#[tokio::test(start_paused = true)]
async fn events_trigger_fired_notice_only_with_interest() {
    let h = Harness::new(config(16));
    let eng = engine(&h);
    let t = reg(&eng, event_def("t", "a.b"));
    let first = emit(&eng, "t", "a.b", json!({"n": 1}));
    assert_eq!(first.len(), 1);
    assert!(fired_notices(&eng.drain()).is_empty(), "no interest, no notice");

    h.exec.set_interest(EventKind::TriggerFired, true);
    let second = emit(&eng, "t", "a.b", json!({"n": 2}));
    let notices = eng.drain();
    let fired = fired_notices(&notices);
    assert_eq!(fired.len(), 1);
    assert_eq!(*fired[0], second[0]);
    assert_eq!(fired[0].trigger_id, t.trigger_id);
    assert_eq!(fired[0].trigger_source, Some(json!({"type": "a.b", "data": {"n": 2}})));
    assert!(eng.drain().is_empty(), "drained once");

    h.exec.set_interest(EventKind::TriggerFired, false);
    emit(&eng, "t", "a.b", json!({"n": 3}));
    assert!(fired_notices(&eng.drain()).is_empty());
}

#[tokio::test(start_paused = true)]
async fn events_unregistered_callable_yields_failed_execution() {
    let h = Harness::new(config(16));
    let eng = engine(&h);
    let t = reg(&eng, json!({"tenantId": "t", "type": "event", "condition": {"eventType": "a"}, "action": {"callableName": "ghost"}}));
    let evs = emit(&eng, "t", "a", json!({}));
    assert_eq!(evs.len(), 1, "the fire is made, not dropped");
    let rec = h.get(&evs[0].execution_id);
    assert_eq!(rec.status, BackgroundExecutionStatus::Failed);
    assert_eq!(rec.callable_name, "ghost");
    assert_eq!(rec.trigger_id.as_deref(), Some(t.trigger_id.as_str()));
    let err = rec.error.as_ref().expect("an error");
    assert!(err.message.contains("no callable registered"), "{}", err.message);
    assert!(rec.completed_at.is_some());
    assert!(h.take().is_empty(), "nothing to run");
    assert_eq!(eng.get(&t.trigger_id).unwrap().fire_count, 1);
}

// ---------------------------------------------------------------------------
// Feedback from the executor and the loop guard

#[tokio::test(start_paused = true)]
async fn events_execution_completed_feeds_back() {
    let h = Harness::new(config(16));
    let eng = engine(&h);
    let t = reg(
        &eng,
        json!({"tenantId": "t", "type": "event", "condition": {"eventType": "execution.completed", "eventPattern": {"callableName": "echo"}},
               "action": {"callableName": "work", "input": "follow-up"}}),
    );
    let first = h.submit(json!({"tenantId": "t", "callableName": "echo", "input": "x"}));
    let d = h.take();
    assert_eq!(d.len(), 1);
    h.complete_ok(&d[0], json!("done"));
    assert!(execs_of(&h, &t.trigger_id).is_empty(), "feedback happens in drain");
    let _ = eng.drain();

    let chained = execs_of(&h, &t.trigger_id);
    assert_eq!(chained.len(), 1);
    let c = &chained[0];
    assert_eq!(c.callable_name, "work");
    assert_eq!(c.input.as_deref(), Some("follow-up"));
    assert_eq!(c.chain_depth, 1);
    assert_eq!(c.config.mode, ExecutionMode::Silent);
    let src = c.trigger_source.as_ref().unwrap();
    assert_eq!(src["type"], json!("execution.completed"));
    assert_eq!(src["data"]["executionId"], json!(first.execution_id));
    assert_eq!(src["data"]["callableName"], json!("echo"));
    assert_eq!(src["data"]["status"], json!("completed"));
    assert_eq!(src["data"]["output"], json!("done"));

    // The chained `work` execution completing does not match the pattern.
    let d = h.take();
    assert_eq!(d.len(), 1);
    assert_eq!(d[0].execution_id, c.execution_id);
    h.complete_ok(&d[0], json!("ok"));
    let _ = eng.drain();
    assert_eq!(execs_of(&h, &t.trigger_id).len(), 1);
    assert!(h.take().is_empty());
}

#[tokio::test(start_paused = true)]
async fn events_feedback_stays_in_tenant_and_kind() {
    let h = Harness::new(config(16));
    let eng = engine(&h);
    let t = reg(&eng, json!({"tenantId": "t", "type": "event", "condition": {"eventType": "execution.completed"}, "action": {"callableName": "echo"}}));
    // Another tenant's completion, and a failure, do not fire it.
    h.submit(json!({"tenantId": "other", "callableName": "work"}));
    h.submit(json!({"tenantId": "t", "callableName": "work", "config": {"retry": {"maxAttempts": 1}}}));
    let d = h.take();
    assert_eq!(d.len(), 2);
    for x in &d {
        if x.tenant_id == "other" {
            h.complete_ok(x, json!(1));
        } else {
            h.complete_err(x, "boom");
            assert_eq!(h.get(&x.execution_id).status, BackgroundExecutionStatus::Failed);
        }
    }
    let _ = eng.drain();
    assert!(execs_of(&h, &t.trigger_id).is_empty());
}

#[tokio::test(start_paused = true)]
async fn events_self_loop_is_cut_at_max_chain_depth() {
    let h = Harness::new(config(16));
    let eng = engine_with(&h, TriggerConfig { max_chain_depth: 3, ..TriggerConfig::default() });
    h.exec.set_interest(EventKind::LoopBlocked, true);
    let t = reg(
        &eng,
        json!({"tenantId": "t", "type": "event", "name": "loop",
               "condition": {"eventType": "execution.completed", "eventPattern": {"callableName": "work"}},
               "action": {"callableName": "work"}}),
    );
    h.submit(json!({"tenantId": "t", "callableName": "work"}));
    let mut notices = Vec::new();
    let mut rounds = 0;
    loop {
        let d = h.take();
        if d.is_empty() {
            break;
        }
        rounds += 1;
        assert!(rounds <= 10, "the loop must end");
        for x in &d {
            h.complete_ok(x, json!("again"));
        }
        notices.extend(eng.drain());
    }
    assert_eq!(rounds, 4, "the seed and three chained executions ran");
    // (All were queued at the same paused instant: order by depth.)
    let mut chained = execs_of(&h, &t.trigger_id);
    chained.sort_by_key(|e| e.chain_depth);
    assert_eq!(chained.len(), 3);
    assert_eq!(chained.iter().map(|e| e.chain_depth).collect::<Vec<_>>(), vec![1, 2, 3]);
    assert!(chained.iter().all(|e| e.status == BackgroundExecutionStatus::Completed));

    let blocked = loop_blocked(&notices);
    assert_eq!(blocked.len(), 1, "one loop_blocked notice");
    let b = blocked[0];
    assert_eq!(b.trigger_id, t.trigger_id);
    assert_eq!(b.trigger_name, "loop");
    assert_eq!(b.tenant_id, "t");
    assert_eq!(b.chain_depth, 4);
    assert_eq!(b.max_chain_depth, 3);
    assert_eq!(b.trigger_source["type"], json!("execution.completed"));
    assert_eq!(b.trigger_source["data"]["executionId"], json!(chained[2].execution_id));

    // Nothing more is queued; the trigger counted exactly 3 fires.
    assert!(h.take().is_empty());
    assert_eq!(h.counts().queued, 0);
    assert_eq!(all_execs(&h).len(), 4);
    assert_eq!(eng.get(&t.trigger_id).unwrap().fire_count, 3);
    assert!(eng.drain().is_empty());
}

/// Runs whatever may start, completing each attempt with `null`, until no
/// work is left (at most 40 rounds); the notices drained meanwhile.
fn run_until_quiet(h: &Harness, eng: &std::sync::Arc<TriggerEngine>) -> Vec<Notice> {
    let mut notices = Vec::new();
    for _ in 0..40 {
        let d = h.take();
        if d.is_empty() {
            break;
        }
        for x in &d {
            h.complete_ok(x, json!(null));
        }
        notices.extend(eng.drain());
    }
    notices
}

#[tokio::test(start_paused = true)]
async fn events_default_max_chain_depth_is_16() {
    let h = Harness::new(config(16));
    let eng = engine(&h);
    h.exec.set_interest(EventKind::LoopBlocked, true);
    let t = reg(
        &eng,
        json!({"tenantId": "t", "type": "event", "condition": {"eventType": "execution.completed"}, "action": {"callableName": "work"}}),
    );
    h.submit(json!({"tenantId": "t", "callableName": "work"}));
    let notices = run_until_quiet(&h, &eng);
    assert!(h.take().is_empty(), "the loop ended");
    assert_eq!(execs_of(&h, &t.trigger_id).len(), 16);
    let blocked = loop_blocked(&notices);
    assert_eq!(blocked.len(), 1);
    assert_eq!((blocked[0].chain_depth, blocked[0].max_chain_depth), (17, 16));
}

/// Two triggers on `execution.completed` double the work at each level:
/// depth alone would allow 2 + 4 + … + 2^16 executions from one submit.
/// The root's fire budget stops the tree at `maxChainFires` fires in all.
#[tokio::test(start_paused = true)]
async fn events_a_chain_that_grows_wide_stops_at_max_chain_fires() {
    let h = Harness::new(config(64));
    let eng = engine_with(&h, TriggerConfig { max_chain_fires: 40, ..TriggerConfig::default() });
    h.exec.set_interest(EventKind::LoopBlocked, true);
    for name in ["left", "right"] {
        reg(
            &eng,
            json!({"tenantId": "t", "type": "event", "name": name, "condition": {"eventType": "execution.completed"}, "action": {"callableName": "work"}}),
        );
    }
    let root = h.submit(json!({"tenantId": "t", "callableName": "work"}));
    let notices = run_until_quiet(&h, &eng);
    assert!(h.take().is_empty(), "the tree stopped growing");
    let all = all_execs(&h);
    assert_eq!(all.len(), 1 + 40, "the root and exactly maxChainFires fired executions");
    assert!(all.iter().filter(|e| e.execution_id != root.execution_id).all(|e| e.chain_root.as_deref() == Some(root.execution_id.as_str())));
    assert!(all.iter().all(|e| e.chain_depth <= 6), "40 fires doubling per level stay within 6 levels");
    let blocked = loop_blocked(&notices);
    assert!(!blocked.is_empty());
    assert!(blocked.iter().all(|b| b.limit == ChainLimit::MaxChainFires && b.chain_fires == 40 && b.max_chain_fires == 40));
    assert!(blocked.iter().all(|b| b.chain_root.as_deref() == Some(root.execution_id.as_str())));

    // Another root has its own budget.
    let other = h.submit(json!({"tenantId": "t", "callableName": "work"}));
    let d = h.take();
    assert_eq!(d.len(), 1);
    h.complete_ok(&d[0], json!(null));
    eng.drain();
    let children: Vec<_> = all_execs(&h).into_iter().filter(|e| e.chain_root.as_deref() == Some(other.execution_id.as_str())).collect();
    assert_eq!(children.len(), 2, "both triggers fired for the new root");
}

/// Work made while an execution's callable runs (`emit`, `fire`,
/// `reportMetric` given the execution's chain) continues that chain: a
/// callable that emits the event that runs it again is cut at
/// `maxChainDepth` instead of starting over at depth 0 each time.
#[tokio::test(start_paused = true)]
async fn events_emitted_in_a_callables_chain_continue_it() {
    let h = Harness::new(config(16));
    let eng = engine_with(&h, TriggerConfig { max_chain_depth: 5, ..TriggerConfig::default() });
    h.exec.set_interest(EventKind::LoopBlocked, true);
    let t = reg(
        &eng,
        json!({"tenantId": "t", "type": "event", "name": "again", "condition": {"eventType": "tick"}, "action": {"callableName": "work"}}),
    );
    let manual = reg(&eng, json!({"tenantId": "t", "type": "manual", "name": "m", "action": {"callableName": "work"}}));
    // The application's own emit starts a chain at depth 0.
    eng.emit(&json!({"tenantId": "t", "type": "tick"})).unwrap();
    let mut notices = Vec::new();
    let mut ran = 0;
    for _ in 0..20 {
        let d = h.take();
        if d.is_empty() {
            break;
        }
        for x in &d {
            ran += 1;
            let rec = h.exec.get(&x.execution_id).unwrap().unwrap();
            // The callable emits `tick` again, in its own chain.
            let text = r#"{"tenantId":"t","type":"tick"}"#;
            eng.emit_text_in(text, Stimulus::Emit, &rec.chain()).unwrap();
            h.complete_ok(x, json!(null));
        }
        notices.extend(eng.drain());
    }
    assert_eq!(ran, 5, "depths 1 to 5 ran; the sixth fire was refused");
    let chained = execs_of(&h, &t.trigger_id);
    let first = chained.iter().find(|e| e.chain_depth == 1).unwrap();
    assert_eq!(first.chain_root, None, "the first fire's execution is its chain's root");
    assert!(chained.iter().filter(|e| e.chain_depth > 1).all(|e| e.chain_root.as_deref() == Some(first.execution_id.as_str())));
    let blocked = loop_blocked(&notices);
    assert_eq!(blocked.len(), 1);
    assert_eq!((blocked[0].limit, blocked[0].chain_depth), (ChainLimit::MaxChainDepth, 6));

    // fire() and reportMetric() in a chain continue it too.
    let deepest = chained.iter().max_by_key(|e| e.chain_depth).unwrap();
    let err = eng.fire_in(&manual.trigger_id, None, &deepest.chain()).unwrap_err();
    assert_eq!(err.code, ErrorCode::TriggerInactive);
    assert!(err.message.ends_with("maxChainDepth reached"), "{}", err.message);
    let shallow = eng.fire_in(&manual.trigger_id, None, &first.chain()).unwrap();
    let rec = h.exec.get(&shallow.execution_id).unwrap().unwrap();
    assert_eq!((rec.chain_depth, rec.chain_root.as_deref()), (2, Some(first.execution_id.as_str())));
    // Outside any chain, the same fire is a new root.
    let fresh = eng.fire(&manual.trigger_id, None).unwrap();
    let rec = h.exec.get(&fresh.execution_id).unwrap().unwrap();
    assert_eq!((rec.chain_depth, rec.chain_root), (1, None));
}

/// A catch-all trigger sees the queued, started, completed (and binding)
/// events of every execution it spawns; each execution fires it once, so
/// the chain stays one long per level instead of growing three-wide.
#[tokio::test(start_paused = true)]
async fn events_catch_all_trigger_chain_stays_linear() {
    for event_type in ["*", "execution.*"] {
        let h = Harness::new(config(16));
        let eng = engine(&h);
        h.exec.set_interest(EventKind::LoopBlocked, true);
        h.exec.register_target(TargetType::MemoryWrite);
        let t = reg(
            &eng,
            json!({"tenantId": "t", "type": "event", "condition": {"eventType": event_type},
                   "action": {"callableName": "work", "targetBinding": {"targetType": "memory.write"}}}),
        );
        h.submit(json!({"tenantId": "t", "callableName": "work"}));
        let mut rounds = 0;
        let mut blocked = 0;
        for _ in 0..100 {
            let d = h.take();
            if d.is_empty() {
                break;
            }
            for x in &d {
                h.complete_ok(x, json!("ok"));
            }
            for n in eng.drain() {
                match n {
                    Notice::Bind(b) => h.exec.binding_done(&b.record.execution_id, Ok(())).unwrap(),
                    Notice::LoopBlocked(_) => blocked += 1,
                    _ => {}
                }
            }
            rounds += 1;
        }
        for n in eng.drain() {
            if let Notice::LoopBlocked(_) = n {
                blocked += 1;
            }
        }
        assert!(h.take().is_empty(), "{event_type}: the chain ended after {rounds} rounds");
        let execs = execs_of(&h, &t.trigger_id);
        assert_eq!(execs.len(), 16, "{event_type}: one execution per level");
        let mut depths: Vec<u32> = execs.iter().map(|e| e.chain_depth).collect();
        depths.sort();
        assert_eq!(depths, (1..=16).collect::<Vec<_>>(), "{event_type}");
        assert_eq!(blocked, 1, "{event_type}: the 16th execution's first event is refused once");
    }
}

// ---------------------------------------------------------------------------
// Scale

#[tokio::test(start_paused = true)]
async fn events_ten_thousand_triggers_fire_exactly_the_right_ones() {
    let h = Harness::new(config(16));
    let eng = engine(&h);
    let mut ids = vec![vec![String::new(); 10]; 1000];
    for (tenant, row) in ids.iter_mut().enumerate() {
        for (ty, slot) in row.iter_mut().enumerate() {
            let def = if ty == 9 {
                // every tenant's 10th trigger also carries a pattern
                pattern_def(&format!("tenant_{tenant}"), &format!("kind.{ty}"), json!({"n": {"$gte": 5}}))
            } else {
                event_def(&format!("tenant_{tenant}"), &format!("kind.{ty}"))
            };
            *slot = reg(&eng, def).trigger_id;
        }
    }
    assert_eq!(eng.list(&TriggerFilter::default()).unwrap().len(), 10_000);
    let mut expected_execs = 0;
    for (tenant, ty) in [(0, 0), (999, 9), (500, 3), (123, 7), (777, 1), (42, 9)] {
        let evs = emit(&eng, &format!("tenant_{tenant}"), &format!("kind.{ty}"), json!({"n": 5}));
        assert_eq!(fired_ids(&evs), vec![ids[tenant][ty].clone()], "tenant {tenant} kind {ty}");
        expected_execs += 1;
    }
    // The pattern still filters at scale.
    assert!(emit(&eng, "tenant_42", "kind.9", json!({"n": 4})).is_empty());
    // Unknown type / tenant fire nothing.
    assert!(emit(&eng, "tenant_5", "kind.10", json!({})).is_empty());
    assert!(emit(&eng, "tenant_1000", "kind.1", json!({})).is_empty());
    assert_eq!(all_execs(&h).len(), expected_execs);
    // A wildcard for one tenant joins only that tenant's events.
    let w = reg(&eng, event_def("tenant_10", "kind.*")).trigger_id;
    let mut got = fired_ids(&emit(&eng, "tenant_10", "kind.2", json!({})));
    got.sort();
    let mut want = vec![ids[10][2].clone(), w];
    want.sort();
    assert_eq!(got, want);
    assert_eq!(fired_ids(&emit(&eng, "tenant_11", "kind.2", json!({}))), vec![ids[11][2].clone()]);
}

#[tokio::test(start_paused = true)]
async fn events_binding_events_feed_back() {
    let h = Harness::new(config(16));
    let eng = engine(&h);
    let t = reg(&eng, json!({"tenantId": "t", "type": "event", "condition": {"eventType": "binding.*"}, "action": {"callableName": "echo"}}));
    // No handler is registered for thread.title: the binding fails.
    let e = h.submit(json!({"tenantId": "t", "callableName": "work", "config": {"targetBinding": {"targetType": "thread.title"}}}));
    let d = h.take();
    h.complete_ok(&d[0], json!("Title"));
    let _ = eng.drain();
    let chained = execs_of(&h, &t.trigger_id);
    assert_eq!(chained.len(), 1);
    let src = chained[0].trigger_source.as_ref().unwrap();
    assert_eq!(src["type"], json!("binding.failed"));
    assert_eq!(src["data"]["executionId"], json!(e.execution_id));
    assert_eq!(chained[0].chain_depth, 1);
}

#[tokio::test(start_paused = true)]
async fn events_removed_feedback_trigger_stops_watching() {
    let h = Harness::new(config(16));
    let eng = engine(&h);
    let t = reg(&eng, json!({"tenantId": "t", "type": "event", "condition": {"eventType": "execution.*"}, "action": {"callableName": "echo"}}));
    eng.remove(&t.trigger_id).unwrap();
    h.submit(json!({"tenantId": "t", "callableName": "work"}));
    let d = h.take();
    h.complete_ok(&d[0], json!(1));
    assert!(eng.drain().is_empty(), "nobody listens or watches");
    assert_eq!(all_execs(&h).len(), 1);
}
