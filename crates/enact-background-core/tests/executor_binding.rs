//! Target binding after completion: transform, handler hand-off, outcome.

mod common;

use common::*;
use enact_background_core::prelude::*;
use serde_json::{json, Value};

/// Submits `work` with `binding`, runs it to completion with `output`;
/// returns its id and the notices that followed.
fn run_bound(h: &Harness, binding: Value, output: Value, watch: Watch) -> (String, Vec<Notice>) {
    let e = h
        .exec
        .submit(req(json!({"tenantId": "t", "callableName": "work", "config": {"targetBinding": binding}})), watch)
        .unwrap();
    let d = h.take().pop().unwrap();
    assert_eq!(d.execution_id, e.execution_id);
    h.complete_ok(&d, output);
    (e.execution_id, h.drain())
}

#[tokio::test(start_paused = true)]
async fn binding_applied() {
    let h = Harness::new(config(2));
    h.interest(&[EventKind::BindingApplied, EventKind::BindingFailed, EventKind::Completed]);
    h.exec.register_target(TargetType::ThreadTitle);
    let (id, n) = run_bound(
        &h,
        json!({"targetType": "thread.title", "transform": "first_line", "maxLength": 100, "threadId": "thread_1"}),
        json!("Quarterly planning\nDetails follow"),
        Watch::Settled,
    );
    // First the handler is asked; nothing is settled until it answers.
    let b = binds(&n);
    assert_eq!(b.len(), 1, "{n:?}");
    assert_eq!(b[0].target_type, TargetType::ThreadTitle);
    assert_eq!(b[0].value, "Quarterly planning");
    assert_eq!(b[0].record.execution_id, id);
    assert_eq!(b[0].record.status, BackgroundExecutionStatus::Completed);
    assert_eq!(b[0].record.config.target_binding.as_ref().unwrap().thread_id.as_deref(), Some("thread_1"));
    assert!(settled(&n).is_empty(), "settled before binding finished");
    assert!(events_of(&n, EventKind::Completed, &id).is_empty(), "completed event waits for the binding");
    assert_eq!(h.exec.busy(), 1, "an outstanding binding keeps the engine busy");
    // A waiter arriving now waits for the binding too.
    assert_eq!(h.exec.watch(&id), Ok(None));

    h.exec.binding_done(&id, Ok(())).unwrap();
    let rec = h.get(&id);
    assert_eq!(rec.status, BackgroundExecutionStatus::Completed);
    assert!(rec.target_binding_applied);
    let r = rec.binding_result.clone().expect("binding result recorded");
    assert!(r.success);
    assert_eq!(r.target_type, TargetType::ThreadTitle);
    assert_eq!(r.applied_value.as_deref(), Some("Quarterly planning"));
    assert_eq!(r.error, None);
    let n = h.drain();
    assert_eq!(event_kinds(&n), vec![EventKind::BindingApplied, EventKind::Completed]);
    assert!(events_of(&n, EventKind::BindingApplied, &id)[0].target_binding_applied);
    let s = settled(&n);
    assert_eq!(s.len(), 1);
    assert_eq!(s[0], &rec);
    assert_eq!(h.exec.busy(), 0);

    // A second report for the same binding is ignored.
    h.exec.binding_done(&id, Err("again".into())).unwrap();
    assert_eq!(h.get(&id), rec);
    assert!(h.drain().is_empty());

    // The bound record still serializes in enact-core's shape plus extensions.
    let v = serde_json::to_value(&rec).unwrap();
    assert_eq!(v["targetBindingApplied"], json!(true));
    assert_eq!(v["bindingResult"]["appliedValue"], json!("Quarterly planning"));
}

#[tokio::test(start_paused = true)]
async fn binding_handler_failure_does_not_fail_the_execution() {
    let h = Harness::new(config(2));
    h.interest(&[EventKind::BindingApplied, EventKind::BindingFailed, EventKind::Completed, EventKind::Failed]);
    h.exec.register_target(TargetType::Custom);
    let (id, n) = run_bound(&h, json!({"targetType": "custom", "targetPath": "crm.note", "transform": "truncate", "maxLength": 8}), json!("héllo wörld"), Watch::Settled);
    let b = binds(&n);
    assert_eq!(b[0].value, "héllo...");
    h.exec.binding_done(&id, Err("Thread not found".into())).unwrap();
    let rec = h.get(&id);
    assert_eq!(rec.status, BackgroundExecutionStatus::Completed);
    assert_eq!(rec.output, Some(json!("héllo wörld")));
    assert!(!rec.target_binding_applied);
    let r = rec.binding_result.clone().unwrap();
    assert!(!r.success);
    assert_eq!(r.error.as_deref(), Some("Thread not found"));
    assert_eq!(r.target_path.as_deref(), Some("crm.note"));
    let n = h.drain();
    assert_eq!(event_kinds(&n), vec![EventKind::BindingFailed, EventKind::Completed]);
    assert_eq!(settled(&n).len(), 1);
    assert_eq!(h.stats().counts.completed, 1);
    assert_eq!(h.stats().counts.failed, 0);
}

#[tokio::test(start_paused = true)]
async fn binding_without_a_registered_handler_fails_with_a_message() {
    let h = Harness::new(config(2));
    h.interest(&[EventKind::BindingFailed, EventKind::Completed]);
    h.exec.register_target(TargetType::ThreadTitle); // another type
    let (id, n) = run_bound(&h, json!({"targetType": "memory.write", "targetPath": "user.preferences"}), json!("v"), Watch::Settled);
    assert!(binds(&n).is_empty(), "no handler to call");
    let rec = h.get(&id);
    assert_eq!(rec.status, BackgroundExecutionStatus::Completed);
    assert!(!rec.target_binding_applied);
    let r = rec.binding_result.clone().unwrap();
    assert!(!r.success);
    let msg = r.error.unwrap();
    assert!(msg.contains("memory.write"), "{msg}");
    assert_eq!(event_kinds(&n), vec![EventKind::BindingFailed, EventKind::Completed]);
    assert_eq!(settled(&n).len(), 1);
    assert_eq!(h.exec.busy(), 0);
}

#[tokio::test(start_paused = true)]
async fn binding_transform_error_fails_the_binding_only() {
    let h = Harness::new(config(2));
    h.interest(&[EventKind::BindingFailed, EventKind::BindingApplied]);
    h.exec.register_target(TargetType::ExecutionSummary);
    let (id, n) = run_bound(&h, json!({"targetType": "execution.summary", "transform": "json_extract", "jsonPath": "$.a"}), json!("not json at all"), Watch::No);
    assert!(binds(&n).is_empty(), "handler not called with no value");
    let rec = h.get(&id);
    assert_eq!(rec.status, BackgroundExecutionStatus::Completed);
    assert!(!rec.target_binding_applied);
    let r = rec.binding_result.unwrap();
    assert!(!r.success);
    assert!(r.error.as_deref().unwrap().contains("JSON"), "{:?}", r.error);
    assert_eq!(event_kinds(&n), vec![EventKind::BindingFailed]);

    // A path that matches nothing fails the same way.
    let (id, _) = run_bound(&h, json!({"targetType": "execution.summary", "transform": "json_extract", "jsonPath": "$.missing"}), json!({"a": 1}), Watch::No);
    let r = h.get(&id).binding_result.unwrap();
    assert!(!r.success);
    assert!(r.error.unwrap().contains("$.missing"));
}

#[tokio::test(start_paused = true)]
async fn binding_json_output_is_bound_as_json_text() {
    let h = Harness::new(config(2));
    h.exec.register_target(TargetType::ArtifactCreate);
    // Non-string output: bound as its JSON text, then transformed.
    let (id, n) = run_bound(&h, json!({"targetType": "artifact.create", "transform": "json_extract", "jsonPath": "$.items[*].id"}), json!({"items": [{"id": 1}, {"id": 2}]}), Watch::No);
    assert_eq!(binds(&n)[0].value, "[1,2]");
    h.exec.binding_done(&id, Ok(())).unwrap();
    assert_eq!(h.get(&id).binding_result.unwrap().applied_value.as_deref(), Some("[1,2]"));

    let (id, n) = run_bound(&h, json!({"targetType": "artifact.create"}), json!({"k": "v"}), Watch::No);
    assert_eq!(binds(&n)[0].value, r#"{"k":"v"}"#);
    h.exec.binding_done(&id, Ok(())).unwrap();

    // A string that is itself JSON text can be extracted from.
    let (_, n) = run_bound(&h, json!({"targetType": "artifact.create", "transform": "json_extract", "jsonPath": "$.name"}), json!(r#"{"name":"名前"}"#), Watch::No);
    assert_eq!(binds(&n)[0].value, "名前");
}

#[tokio::test(start_paused = true)]
async fn binding_not_attempted_for_failed_executions() {
    let h = Harness::new(config(2));
    h.interest(&[EventKind::BindingFailed, EventKind::BindingApplied, EventKind::Failed]);
    h.exec.register_target(TargetType::ThreadTitle);
    let e = h.submit(json!({"tenantId": "t", "callableName": "work", "config": {"targetBinding": {"targetType": "thread.title"}}}));
    let d = h.take().pop().unwrap();
    h.complete_err(&d, "no");
    let n = h.drain();
    assert!(binds(&n).is_empty());
    assert_eq!(event_kinds(&n), vec![EventKind::Failed]);
    let rec = h.get(&e.execution_id);
    assert!(rec.binding_result.is_none());
    assert!(!rec.target_binding_applied);
}

#[tokio::test(start_paused = true)]
async fn binding_outstanding_cannot_be_cancelled_and_settles_after() {
    let h = Harness::new(config(2));
    h.exec.register_target(TargetType::ThreadSummary);
    let (id, _) = run_bound(&h, json!({"targetType": "thread.summary"}), json!("s"), Watch::Settled);
    assert_eq!(h.exec.cancel(&id), Ok(false), "already completed");
    h.exec.binding_done(&id, Ok(())).unwrap();
    let n = h.drain();
    assert_eq!(settled(&n).len(), 1);
    assert_eq!(h.get(&id).status, BackgroundExecutionStatus::Completed);
}
