//! The wire model against the records enact-core 0.0.2 itself wrote
//! (fixtures/enact-core-0.0.2 at the repository root, copied from the real crate): each deserializes, and serializing it
//! again yields exactly the same JSON value.

use std::path::PathBuf;

use enact_background_core::model::*;
use enact_background_core::validate;
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::{json, Value};

fn fixtures_dir() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../fixtures/enact-core-0.0.2/"))
}

fn fixture(name: &str) -> Value {
    let path = fixtures_dir().join(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("parse {}: {e}", path.display()))
}

fn fixture_names(prefix: &str) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(fixtures_dir())
        .expect("fixtures directory")
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.starts_with(prefix) && n.ends_with(".json"))
        .collect();
    names.sort();
    names
}

/// Deserializes `v` as `T`, serializes it back and asserts equality of the
/// JSON values (keys, nesting, numbers, timestamp strings to the ns).
fn round_trip<T: DeserializeOwned + Serialize>(what: &str, v: &Value) -> T {
    let typed: T = serde_json::from_value(v.clone()).unwrap_or_else(|e| panic!("{what}: does not deserialize: {e}"));
    let back = serde_json::to_value(&typed).unwrap_or_else(|e| panic!("{what}: does not serialize: {e}"));
    assert_eq!(&back, v, "{what}: re-serialized JSON differs from the fixture\n got: {back:#}\nwant: {v:#}");
    // And the text form parses back to the same typed value.
    let text = serde_json::to_string(&typed).unwrap();
    let again: T = serde_json::from_str(&text).unwrap();
    assert_eq!(serde_json::to_value(&again).unwrap(), *v, "{what}: text round trip differs");
    typed
}

#[test]
fn wire_every_fixture_file_is_covered() {
    // Guard against a fixture being added and silently skipped.
    let all = fixture_names("");
    let covered: Vec<&String> = all
        .iter()
        .filter(|n| {
            n.starts_with("execution_")
                || n.starts_with("trigger_")
                || n.as_str() == "bindings.json"
                || n.as_str() == "transforms.json"
        })
        .collect();
    assert_eq!(covered.len(), all.len(), "uncovered fixtures among {all:?}");
    assert!(all.len() >= 16, "expected the full fixture set, found {all:?}");
}

#[test]
fn wire_executions_round_trip() {
    let names = fixture_names("execution_");
    assert_eq!(names.len(), 6, "{names:?}");
    for name in names {
        let v = fixture(&name);
        let e: BackgroundExecution = round_trip(&name, &v);
        assert!(e.execution_id.starts_with("exec_"), "{name}");
        assert!(e.tenant_id.starts_with("tenant_"), "{name}");
        assert_eq!(e.attempt, 0, "{name}: extension field absent in enact-core JSON");
        assert!(e.binding_result.is_none() && e.trigger_source.is_none(), "{name}");
    }
}

#[test]
fn wire_execution_fields_are_read_faithfully() {
    let e: BackgroundExecution = serde_json::from_value(fixture("execution_failed.json")).unwrap();
    assert_eq!(e.status, BackgroundExecutionStatus::Failed);
    assert_eq!(e.config.mode, ExecutionMode::Silent);
    assert_eq!(e.config.priority, 90);
    assert_eq!(e.config.timeout_ms, 1000);
    assert_eq!(e.config.retry, Some(RetryConfig { max_attempts: 3, backoff_ms: 1000, backoff_multiplier: 2.0 }));
    let err = e.error.expect("error");
    assert_eq!(err.category, ErrorCategory::ToolError);
    assert_eq!(err.attempt, 3);
    assert_eq!(err.message, "callable threw: boom");
    assert_eq!(err.occurred_at, 1_795_801_219_543);
    assert_eq!(err.code, None);
    assert_eq!(err.http_status, None);
    let policy = err.retry_policy.expect("retry_policy");
    assert_eq!(policy.backoff_strategy, "constant");
    assert_eq!((policy.base_delay, policy.max_delay, policy.max_retries), (500, 5000, 2));
    assert!(policy.requires_idempotency_key && policy.retryable);

    // Nanosecond precision survives.
    let q: BackgroundExecution = serde_json::from_value(fixture("execution_queued.json")).unwrap();
    assert_eq!(q.queued_at.timestamp_subsec_nanos(), 543_091_528);

    let t: BackgroundExecution = serde_json::from_value(fixture("execution_completed_from_trigger.json")).unwrap();
    assert_eq!(t.status, BackgroundExecutionStatus::Completed);
    assert!(t.target_binding_applied);
    assert_eq!(t.trigger_id.as_deref(), Some("trigger_3MhSHhK6fysNKkKQoRzL89688rG"));
    assert_eq!(t.output, Some(json!({"text": "Quarterly planning\nDetails follow"})));
    let b = t.config.target_binding.expect("binding");
    assert_eq!(b.target_type, TargetType::ThreadTitle);
    assert_eq!(b.transform, TransformType::FirstLine);
    assert_eq!(b.max_length, Some(100));

    let d: BackgroundExecution = serde_json::from_value(fixture("execution_deferred.json")).unwrap();
    assert_eq!(d.config.mode, ExecutionMode::Deferred);
    assert_eq!(d.config.callback_url.as_deref(), Some("http://127.0.0.1:9/callback"));
    assert_eq!(d.metadata.unwrap()["source"], json!("nightly"));
}

#[test]
fn wire_triggers_round_trip() {
    let names: Vec<String> = fixture_names("trigger_").into_iter().filter(|n| n != "trigger_fired_event.json").collect();
    assert_eq!(names.len(), 7, "{names:?}");
    for name in names {
        let v = fixture(&name);
        let t: Trigger = round_trip(&name, &v);
        assert!(t.trigger_id.starts_with("trigger_"), "{name}");
        assert!(t.action.background, "{name}");
    }
}

#[test]
fn wire_trigger_fields_are_read_faithfully() {
    let t: Trigger = serde_json::from_value(fixture("trigger_threshold.json")).unwrap();
    assert_eq!(t.trigger_type, TriggerType::Threshold);
    assert_eq!(t.condition.metric_name.as_deref(), Some("cost.usd"));
    assert_eq!(t.condition.threshold_operator, Some(ThresholdOperator::Gte));
    assert_eq!(t.condition.threshold_value, Some(10.5));
    assert_eq!(t.action.retry, Some(RetryConfig { max_attempts: 5, backoff_ms: 200, backoff_multiplier: 1.5 }));
    assert_eq!(t.action.target_binding.as_ref().unwrap().target_type, TargetType::Custom);

    let c: Trigger = serde_json::from_value(fixture("trigger_schedule_cron.json")).unwrap();
    assert_eq!(c.condition.cron_expression.as_deref(), Some("0 0 2 * * *"));
    assert_eq!(c.max_fires, Some(30));
    assert!(c.start_at.unwrap() < c.end_at.unwrap());

    let i: Trigger = serde_json::from_value(fixture("trigger_schedule_interval.json")).unwrap();
    assert_eq!(i.condition.interval_seconds, Some(60));

    let m: Trigger = serde_json::from_value(fixture("trigger_manual_fired.json")).unwrap();
    assert_eq!((m.status, m.fire_count, m.max_fires), (TriggerStatus::Fired, 1, Some(1)));
    assert!(m.last_fired_at.is_some());
    assert_eq!(m.condition, TriggerCondition::default());

    let w: Trigger = serde_json::from_value(fixture("trigger_webhook_paused.json")).unwrap();
    assert_eq!((w.trigger_type, w.status), (TriggerType::Webhook, TriggerStatus::Paused));

    let e: Trigger = serde_json::from_value(fixture("trigger_event.json")).unwrap();
    assert_eq!(e.condition.event_type.as_deref(), Some("execution.completed"));
    assert_eq!(e.condition.event_pattern, Some(json!({"status": "completed"})));
    assert_eq!(e.cooldown_ms, Some(5000));
    assert_eq!(e.action.context.as_ref().unwrap()["locale"], "en");

    let l: Trigger = serde_json::from_value(fixture("trigger_lifecycle.json")).unwrap();
    assert_eq!(l.trigger_type, TriggerType::Lifecycle);
}

#[test]
fn wire_trigger_fired_event_round_trips() {
    let v = fixture("trigger_fired_event.json");
    let ev: TriggerFiredEvent = round_trip("trigger_fired_event.json", &v);
    assert_eq!(ev.trigger_type, TriggerType::Event);
    assert_eq!(ev.trigger_source, Some(json!({"data": {"status": "completed"}, "type": "execution.completed"})));
    assert_eq!(ev.fired_at.timestamp_subsec_nanos(), 543_497_360);
    assert_eq!(ev.tenant_id, None, "enact-core's record has no tenantId");
}

#[test]
fn wire_trigger_fired_event_tenant_id_is_an_extension() {
    // Our fires write `tenantId`; without it, what remains is exactly
    // enact-core's record, and a record with it reads back unchanged.
    let v = fixture("trigger_fired_event.json");
    let mut ev: TriggerFiredEvent = serde_json::from_value(v.clone()).unwrap();
    ev.tenant_id = Some("tenant_1".into());
    let out = serde_json::to_value(&ev).unwrap();
    assert_eq!(out["tenantId"], json!("tenant_1"));
    let back: TriggerFiredEvent = serde_json::from_value(out.clone()).unwrap();
    assert_eq!(back, ev);
    let mut stripped = out;
    stripped.as_object_mut().unwrap().remove("tenantId");
    assert_eq!(stripped, v);
}

#[test]
fn wire_bindings_round_trip() {
    let v = fixture("bindings.json");
    let map = v.as_object().expect("bindings.json is an object");
    let (mut configs, mut results) = (0, 0);
    for (name, entry) in map {
        if entry.get("success").is_some() {
            let r: TargetBindingResult = round_trip(&format!("bindings.json#{name}"), entry);
            assert_eq!(r.success, name == "result_success", "{name}");
            results += 1;
        } else {
            let c: TargetBindingConfig = round_trip(&format!("bindings.json#{name}"), entry);
            assert_eq!(TargetType::parse(entry["targetType"].as_str().unwrap()), Some(c.target_type));
            configs += 1;
        }
    }
    assert_eq!((configs, results), (6, 2));

    let ok: TargetBindingResult = serde_json::from_value(map["result_success"].clone()).unwrap();
    assert_eq!(ok.applied_value.as_deref(), Some("New Title"));
    assert_eq!(ok.target_path.as_deref(), Some("crm.note"));
    let bad: TargetBindingResult = serde_json::from_value(map["result_failure"].clone()).unwrap();
    assert_eq!(bad.error.as_deref(), Some("Thread not found"));
    assert_eq!(bad.target_type, TargetType::ThreadTitle);
}

#[test]
fn wire_execution_config_defaults() {
    let c: BackgroundExecutionConfig = serde_json::from_value(json!({})).unwrap();
    assert_eq!(c.mode, ExecutionMode::FireAndForget);
    assert_eq!(c.priority, 50);
    assert_eq!(c.timeout_ms, 300_000);
    assert!(c.retry.is_none() && c.target_binding.is_none() && c.callback_url.is_none());
    assert_eq!(c, BackgroundExecutionConfig::default());
    // Serialized, the defaults are written out as enact-core writes them.
    assert_eq!(serde_json::to_value(&c).unwrap(), json!({"mode": "fire_and_forget", "priority": 50, "timeoutMs": 300000}));

    // The same defaults through validation of untrusted input.
    let r = validate::submit_request(&json!({"tenantId": "t", "callableName": "c"})).unwrap();
    assert_eq!(r.config, BackgroundExecutionConfig::default());
    let r = validate::submit_request(&json!({"tenantId": "t", "callableName": "c", "config": {}})).unwrap();
    assert_eq!(r.config, BackgroundExecutionConfig::default());
}

#[test]
fn wire_retry_defaults() {
    let r: RetryConfig = serde_json::from_value(json!({})).unwrap();
    assert_eq!((r.max_attempts, r.backoff_ms, r.backoff_multiplier), (3, 1000, 2.0));
    assert_eq!(r, RetryConfig::default());
    let r = validate::submit_request(&json!({"tenantId": "t", "callableName": "c", "config": {"retry": {}}})).unwrap();
    assert_eq!(r.config.retry, Some(RetryConfig { max_attempts: 3, backoff_ms: 1000, backoff_multiplier: 2.0 }));
}

#[test]
fn wire_action_background_defaults_true() {
    let a: TriggerAction = serde_json::from_value(json!({"callableName": "x"})).unwrap();
    assert!(a.background);
    let a: TriggerAction = serde_json::from_value(json!({"callableName": "x", "background": false})).unwrap();
    assert!(!a.background);
    // A binding without transform reads as transform none.
    let b: TargetBindingConfig = serde_json::from_value(json!({"targetType": "custom"})).unwrap();
    assert_eq!(b.transform, TransformType::None);
}

#[test]
fn wire_enum_spellings() {
    for (s, st) in [
        ("queued", BackgroundExecutionStatus::Queued),
        ("running", BackgroundExecutionStatus::Running),
        ("completed", BackgroundExecutionStatus::Completed),
        ("failed", BackgroundExecutionStatus::Failed),
        ("cancelled", BackgroundExecutionStatus::Cancelled),
        ("timeout", BackgroundExecutionStatus::Timeout),
    ] {
        assert_eq!(serde_json::to_value(st).unwrap(), json!(s));
        assert_eq!(st.as_str(), s);
        assert_eq!(st.is_final(), !matches!(s, "queued" | "running"));
    }
    for t in TargetType::ALL {
        assert_eq!(serde_json::to_value(t).unwrap(), json!(t.as_str()));
        assert_eq!(serde_json::from_value::<TargetType>(json!(t.as_str())).unwrap(), t);
        assert_eq!(TargetType::parse(t.as_str()), Some(t));
    }
    for (s, c) in [
        ("LlmError", ErrorCategory::LlmError),
        ("ToolError", ErrorCategory::ToolError),
        ("PolicyViolation", ErrorCategory::PolicyViolation),
        ("Timeout", ErrorCategory::Timeout),
        ("QuotaExceeded", ErrorCategory::QuotaExceeded),
        ("KernelInternal", ErrorCategory::KernelInternal),
        ("ValidationError", ErrorCategory::ValidationError),
        ("NetworkError", ErrorCategory::NetworkError),
    ] {
        assert_eq!(serde_json::to_value(c).unwrap(), json!(s));
    }
    for (s, t) in [
        ("event", TriggerType::Event),
        ("schedule", TriggerType::Schedule),
        ("webhook", TriggerType::Webhook),
        ("threshold", TriggerType::Threshold),
        ("manual", TriggerType::Manual),
        ("lifecycle", TriggerType::Lifecycle),
    ] {
        assert_eq!(serde_json::to_value(t).unwrap(), json!(s));
    }
    for (s, m) in [("fire_and_forget", ExecutionMode::FireAndForget), ("silent", ExecutionMode::Silent), ("deferred", ExecutionMode::Deferred)] {
        assert_eq!(serde_json::to_value(m).unwrap(), json!(s));
    }
    for (s, t) in [("none", TransformType::None), ("first_line", TransformType::FirstLine), ("truncate", TransformType::Truncate), ("json_extract", TransformType::JsonExtract)] {
        assert_eq!(serde_json::to_value(t).unwrap(), json!(s));
    }
    for s in ["gt", "gte", "lt", "lte", "eq", "neq"] {
        let op: ThresholdOperator = serde_json::from_value(json!(s)).unwrap();
        assert_eq!(serde_json::to_value(op).unwrap(), json!(s));
    }
    assert!(serde_json::from_value::<BackgroundExecutionStatus>(json!("done")).is_err());
    assert!(serde_json::from_value::<TargetType>(json!("thread_title")).is_err());
}

#[test]
fn wire_extensions_are_omitted_when_unset_and_kept_when_set() {
    // An enact-core record: no extension keys appear when we write it.
    let v = fixture("execution_queued.json");
    let mut e: BackgroundExecution = serde_json::from_value(v.clone()).unwrap();
    let keys = |v: &Value| v.as_object().unwrap().keys().cloned().collect::<Vec<_>>();
    for ext in ["attempt", "bindingResult", "triggerSource"] {
        assert!(!keys(&serde_json::to_value(&e).unwrap()).contains(&ext.to_string()), "{ext}");
    }
    for ext in ["runAt", "delayMs"] {
        assert!(serde_json::to_value(&e.config).unwrap().get(ext).is_none(), "{ext}");
    }

    // Set, they are written and read back.
    e.attempt = 2;
    e.trigger_source = Some(json!({"type": "user.signup"}));
    e.config.mode = ExecutionMode::Deferred;
    e.config.delay_ms = Some(1500);
    e.binding_result = Some(Box::new(TargetBindingResult {
        target_type: TargetType::Custom,
        target_path: Some("a.b".into()),
        success: true,
        applied_value: Some("v".into()),
        error: None,
        applied_at: e.queued_at,
    }));
    let out = serde_json::to_value(&e).unwrap();
    assert_eq!(out["attempt"], json!(2));
    assert_eq!(out["config"]["delayMs"], json!(1500));
    assert_eq!(out["bindingResult"]["appliedValue"], json!("v"));
    assert_eq!(out["triggerSource"]["type"], json!("user.signup"));
    let back: BackgroundExecution = serde_json::from_value(out.clone()).unwrap();
    assert_eq!(back, e);

    // Without the extension keys, what remains is exactly enact-core's shape.
    let mut stripped = out;
    let o = stripped.as_object_mut().unwrap();
    o.remove("attempt");
    o.remove("triggerSource");
    o.remove("bindingResult");
    o.get_mut("config").unwrap().as_object_mut().unwrap().remove("delayMs");
    o.get_mut("config").unwrap().as_object_mut().unwrap().insert("mode".into(), json!("fire_and_forget"));
    assert_eq!(stripped, v);

    // Trigger extensions.
    let mut t: Trigger = serde_json::from_value(fixture("trigger_webhook_paused.json")).unwrap();
    assert!(serde_json::to_value(&t).unwrap().get("webhookSecret").is_none());
    t.webhook_secret = Some("whsec_abc".into());
    t.condition.timezone = Some("Europe/Paris".into());
    let tv = serde_json::to_value(&t).unwrap();
    assert_eq!(tv["webhookSecret"], json!("whsec_abc"));
    assert_eq!(tv["condition"]["timezone"], json!("Europe/Paris"));
    assert_eq!(serde_json::from_value::<Trigger>(tv).unwrap(), t);

    // The misfire policy: an extension of the condition, omitted unless
    // set; without it, a schedule trigger is exactly enact-core's record.
    let v = fixture("trigger_schedule_cron.json");
    let mut t: Trigger = serde_json::from_value(v.clone()).unwrap();
    assert!(t.condition.misfire_policy.is_none());
    t.condition.misfire_policy = Some(MisfirePolicy::Skip);
    let mut tv = serde_json::to_value(&t).unwrap();
    assert_eq!(tv["condition"]["misfirePolicy"], json!("skip"));
    assert_eq!(serde_json::from_value::<Trigger>(tv.clone()).unwrap(), t);
    tv["condition"].as_object_mut().unwrap().remove("misfirePolicy");
    assert_eq!(tv, v);
}

#[test]
fn wire_timestamps_are_rfc3339_utc_with_nanoseconds() {
    let v = fixture("execution_completed_from_trigger.json");
    let e: BackgroundExecution = serde_json::from_value(v).unwrap();
    let out = serde_json::to_value(&e).unwrap();
    assert_eq!(out["queuedAt"], json!("2026-11-27T17:40:19.543135867Z"));
    assert_eq!(out["completedAt"], json!("2026-11-27T17:40:19.543137250Z"));
    // Offsets other than Z are accepted and normalised to UTC.
    let mut v2 = fixture("execution_queued.json");
    v2["queuedAt"] = json!("2026-11-27T19:40:19.543091528+02:00");
    let e2: BackgroundExecution = serde_json::from_value(v2).unwrap();
    assert_eq!(serde_json::to_value(&e2).unwrap()["queuedAt"], json!("2026-11-27T17:40:19.543091528Z"));
}

#[test]
fn wire_error_keeps_snake_case_keys_and_nulls() {
    let e: BackgroundExecution = serde_json::from_value(fixture("execution_failed.json")).unwrap();
    let err = serde_json::to_value(e.error.unwrap()).unwrap();
    let mut keys: Vec<&String> = err.as_object().unwrap().keys().collect();
    keys.sort();
    assert_eq!(
        keys,
        ["attempt", "category", "code", "details", "http_status", "message", "occurred_at", "provider", "retry_policy", "step_id"]
    );
    assert_eq!(err["code"], Value::Null);
}

#[test]
fn wire_binding_transform_is_written_as_each_enact_core_type_writes_it() {
    // enact-core's execution-side TargetBindingConfig always writes
    // `transform` (bindings.json has "transform": "none")...
    let cfg: TargetBindingConfig = serde_json::from_value(json!({"targetType": "custom", "targetPath": "p"})).unwrap();
    assert_eq!(serde_json::to_value(&cfg).unwrap(), json!({"targetType": "custom", "targetPath": "p", "transform": "none"}));
    let mut e: BackgroundExecution = serde_json::from_value(fixture("execution_queued.json")).unwrap();
    e.config.target_binding = Some(Box::new(cfg.clone()));
    assert_eq!(serde_json::to_value(&e).unwrap()["config"]["targetBinding"]["transform"], json!("none"));

    // ...while its trigger-side binding has no transform: a trigger action
    // omits the default and keeps a set one (our extension).
    let mut a: TriggerAction = serde_json::from_value(json!({"callableName": "x", "targetBinding": {"targetType": "custom"}})).unwrap();
    assert_eq!(serde_json::to_value(&a).unwrap()["targetBinding"], json!({"targetType": "custom"}));
    a.target_binding = Some(TargetBindingConfig { transform: TransformType::Truncate, max_length: Some(10), ..cfg });
    let v = serde_json::to_value(&a).unwrap();
    assert_eq!(v["targetBinding"], json!({"targetType": "custom", "targetPath": "p", "transform": "truncate", "maxLength": 10}));
    assert_eq!(serde_json::from_value::<TriggerAction>(v).unwrap(), a);
    a.target_binding = None;
    assert!(serde_json::to_value(&a).unwrap().get("targetBinding").is_none());
}

#[test]
fn wire_every_error_the_engine_writes_has_a_retry_policy() {
    // enact-core 0.0.2 refuses "retry_policy": null ("invalid type: null,
    // expected struct RetryPolicy"). The stalled error is written by every
    // driver; the unregistered-callable one is tested in triggers_stimuli.rs.
    let err = serde_json::to_value(enact_background_core::store::stalled_error(2, 2, 1, 1_795_801_219_543)).unwrap();
    let want = fixture("execution_failed.json")["error"]["retry_policy"].clone();
    let keys = |v: &Value| v.as_object().unwrap_or_else(|| panic!("not an object: {v}")).keys().cloned().collect::<Vec<_>>();
    assert_eq!(keys(&err["retry_policy"]), keys(&want));
    assert_eq!(err["retry_policy"]["max_retries"], json!(0));
    assert_eq!(err["retry_policy"]["retryable"], json!(false));
    assert_eq!(err["attempt"], json!(2));
}
