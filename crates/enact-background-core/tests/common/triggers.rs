//! Helpers of the trigger-engine integration tests (`triggers_*.rs`).
//! Include after `mod common;` with
//! `#[path = "common/triggers.rs"] mod trig;`.
#![allow(dead_code)]

use std::sync::Arc;

use chrono::{DateTime, Utc};
use enact_background_core::prelude::*;
use serde_json::{json, Value};

use crate::common::{config, CountingHost, Harness};

/// Directory of the enact-core 0.0.2 fixtures.
pub const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../fixtures/enact-core-0.0.2/");

/// A fixture file parsed as JSON.
pub fn fixture(name: &str) -> Value {
    let path = format!("{FIXTURES}{name}");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {path}: {e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("parse {path}: {e}"))
}

/// Names of the fixture files `trigger_*.json`, sorted.
pub fn trigger_fixture_names() -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(FIXTURES)
        .expect("fixtures directory")
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("trigger_") && n.ends_with(".json"))
        .collect();
    names.sort();
    names
}

/// A parsed RFC 3339 instant.
pub fn at(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).expect("RFC 3339").with_timezone(&Utc)
}

/// A [`Harness`] whose clock reads `wall` now (and follows tokio's paused
/// time from there). Callables `echo` and `work` are registered.
pub fn harness_at(wall: DateTime<Utc>) -> Harness {
    harness_on(Arc::new(TokioClock::starting_at(wall)))
}

/// A [`Harness`] over a memory store and `clock`, with callables `echo`
/// and `work` registered.
pub fn harness_on(clock: Arc<dyn Clock>) -> Harness {
    let store: Arc<dyn Driver> = Arc::new(MemoryStore::new());
    let host = Arc::new(CountingHost::default());
    let exec = Executor::new(store.clone(), clock, host.clone(), config(16));
    exec.register_callable("echo").unwrap();
    exec.register_callable("work").unwrap();
    Harness { exec, host, store }
}

/// A harness and trigger engine (with `cfg`) on a manual clock reading
/// `t0`, and the clock.
pub fn manual_at(t0: &str, cfg: TriggerConfig) -> (Harness, Arc<TriggerEngine>, Arc<ManualClock>) {
    let clock = Arc::new(ManualClock::starting_at(at(t0)));
    let h = harness_on(clock.clone());
    let eng = engine_with(&h, cfg);
    (h, eng, clock)
}

/// A trigger engine over the harness's executor and store.
pub fn engine(h: &Harness) -> Arc<TriggerEngine> {
    engine_with(h, TriggerConfig::default())
}

/// A trigger engine with `cfg`.
pub fn engine_with(h: &Harness, cfg: TriggerConfig) -> Arc<TriggerEngine> {
    TriggerEngine::new(h.exec.clone(), cfg)
}

/// The harness clock's now.
pub fn now(h: &Harness) -> DateTime<Utc> {
    h.exec.clock().now()
}

/// `now` as an RFC 3339 string (ms precision) shifted by `ms`.
pub fn rfc(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// Registers, panicking with the engine's message on error.
pub fn reg(eng: &TriggerEngine, def: Value) -> Trigger {
    eng.register(&def).unwrap_or_else(|e| panic!("register {def}: {} ({:?})", e.message, e.code))
}

/// The error of a result that must fail.
pub fn err_of<T: std::fmt::Debug>(r: EngineResult<T>) -> EngineError {
    match r {
        Ok(v) => panic!("expected an error, got Ok({v:?})"),
        Err(e) => e,
    }
}

/// Asserts an `ENACT_INVALID_TRIGGER` whose message starts with `prefix`.
pub fn assert_invalid<T: std::fmt::Debug>(r: EngineResult<T>, prefix: &str) -> EngineError {
    let e = err_of(r);
    assert_eq!(e.code, ErrorCode::InvalidTrigger, "code of {:?}", e.message);
    assert!(e.message.starts_with(prefix), "message {:?} should start with {prefix:?}", e.message);
    e
}

/// A manual trigger definition running `echo`.
pub fn manual_def(tenant: &str) -> Value {
    json!({"tenantId": tenant, "type": "manual", "action": {"callableName": "echo"}})
}

/// An event trigger definition on `event_type`, running `echo`.
pub fn event_def(tenant: &str, event_type: &str) -> Value {
    json!({"tenantId": tenant, "type": "event", "condition": {"eventType": event_type}, "action": {"callableName": "echo"}})
}

/// An event trigger with a pattern.
pub fn pattern_def(tenant: &str, event_type: &str, pattern: Value) -> Value {
    json!({"tenantId": tenant, "type": "event", "condition": {"eventType": event_type, "eventPattern": pattern}, "action": {"callableName": "echo"}})
}

/// A schedule trigger definition with `condition`.
pub fn schedule_def(tenant: &str, condition: Value) -> Value {
    json!({"tenantId": tenant, "type": "schedule", "condition": condition, "action": {"callableName": "work"}})
}

/// Emits an event.
pub fn emit(eng: &TriggerEngine, tenant: &str, event_type: &str, data: Value) -> Vec<TriggerFiredEvent> {
    eng.emit(&json!({"type": event_type, "tenantId": tenant, "data": data})).expect("emit")
}

/// Every execution, oldest first.
pub fn all_execs(h: &Harness) -> Vec<BackgroundExecution> {
    h.exec.list(&ExecutionFilter::default()).expect("list")
}

/// Executions spawned by trigger `id`, oldest first.
pub fn execs_of(h: &Harness, id: &str) -> Vec<BackgroundExecution> {
    all_execs(h).into_iter().filter(|e| e.trigger_id.as_deref() == Some(id)).collect()
}

/// Ids of the triggers that fired.
pub fn fired_ids(evs: &[TriggerFiredEvent]) -> Vec<String> {
    evs.iter().map(|e| e.trigger_id.clone()).collect()
}

/// TriggerFired notices among `notices`.
pub fn fired_notices(notices: &[Notice]) -> Vec<&TriggerFiredEvent> {
    notices
        .iter()
        .filter_map(|n| match n {
            Notice::TriggerFired(ev) => Some(&**ev),
            _ => None,
        })
        .collect()
}

/// LoopBlocked notices among `notices`.
pub fn loop_blocked(notices: &[Notice]) -> Vec<&LoopBlockedEvent> {
    notices
        .iter()
        .filter_map(|n| match n {
            Notice::LoopBlocked(ev) => Some(&**ev),
            _ => None,
        })
        .collect()
}

/// Owned header pairs.
pub fn headers(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}
