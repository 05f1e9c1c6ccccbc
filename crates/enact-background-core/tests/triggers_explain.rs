//! "Why didn't it fire?": `explain` / `explainMetric` name the first gate
//! that refuses each trigger, in the engine's order, on a manual clock; say
//! "would fire" exactly when the real stimulus then fires; and change
//! nothing (counts, arming, status, the change log). `nextFireAt` of
//! schedule triggers follows the scheduler's timers, the time zone, the
//! clock, cooldown and the trigger's window.

mod common;
#[path = "common/triggers.rs"]
mod trig;

use std::sync::Arc;

use chrono::{DateTime, Utc};
use common::*;
use enact_background_core::prelude::*;
use enact_background_core::store::TriggerFilter;
use enact_background_core::triggers::{ExplainDetail, ExplainSource, TriggerExplanation};
use serde_json::{json, Value};
use trig::{at, fired_ids, reg};

const T0: &str = "2026-01-15T10:00:00.000Z";

fn manual_with(cfg: TriggerConfig) -> (Harness, Arc<TriggerEngine>, Arc<ManualClock>) {
    trig::manual_at(T0, cfg)
}

fn manual() -> (Harness, Arc<TriggerEngine>, Arc<ManualClock>) {
    manual_with(TriggerConfig::default())
}

fn plus(ms: i64) -> DateTime<Utc> {
    at(T0) + chrono::Duration::milliseconds(ms)
}

fn ev(event_type: &str, data: Value) -> Value {
    json!({"type": event_type, "tenantId": "t", "data": data})
}

fn event_trigger(id: &str, event_type: &str, extra: Value) -> Value {
    let mut def = json!({"triggerId": id, "tenantId": "t", "type": "event", "condition": {"eventType": event_type}, "action": {"callableName": "echo"}});
    merge(&mut def, extra);
    def
}

fn threshold(id: &str, metric: &str, op: &str, value: f64, extra: Value) -> Value {
    let mut def = json!({"triggerId": id, "tenantId": "t", "type": "threshold",
        "condition": {"metricName": metric, "thresholdOperator": op, "thresholdValue": value}, "action": {"callableName": "echo"}});
    merge(&mut def, extra);
    def
}

fn merge(def: &mut Value, extra: Value) {
    if let Value::Object(m) = extra {
        for (k, v) in m {
            if k == "condition" {
                for (ck, cv) in v.as_object().unwrap() {
                    def["condition"][ck] = cv.clone();
                }
            } else {
                def[k] = v;
            }
        }
    }
}

/// The explanation of `id` among `all`.
fn of<'a>(all: &'a [TriggerExplanation], id: &str) -> &'a TriggerExplanation {
    all.iter().find(|e| e.trigger_id == id).unwrap_or_else(|| panic!("{id} not explained: {all:?}"))
}

fn would_fire(all: &[TriggerExplanation]) -> Vec<String> {
    let mut ids: Vec<String> = all.iter().filter(|e| e.would_fire).map(|e| e.trigger_id.clone()).collect();
    ids.sort();
    ids
}

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}

/// Everything a fire step reads or writes, for "nothing changed".
fn snapshot(h: &Harness) -> Vec<(Trigger, Option<i64>, bool)> {
    let states = enact_background_core::store::ready_now(async { Ok(h.store.trigger_states(&TriggerFilter::default()).await?) }).unwrap();
    states.into_iter().map(|s| (s.trigger, s.cursor_ms, s.armed)).collect()
}

#[test]
fn explain_names_each_event_gate_in_the_engines_order() {
    let (h, eng, clock) = manual();
    reg(&eng, event_trigger("trigger_type", "user.*", json!({})));
    reg(&eng, event_trigger("trigger_pattern", "order.paid", json!({"condition": {"eventPattern": {"total": {"$gte": 100}}}})));
    reg(&eng, event_trigger("trigger_missing", "order.paid", json!({"condition": {"eventPattern": {"coupon": {"$exists": true}}}})));
    reg(&eng, event_trigger("trigger_paused", "order.*", json!({})));
    eng.pause("trigger_paused").unwrap();
    reg(&eng, event_trigger("trigger_disabled", "order.*", json!({})));
    eng.disable("trigger_disabled").unwrap();
    reg(&eng, event_trigger("trigger_later", "order.*", json!({"startAt": "2026-01-15T11:00:00Z"})));
    reg(&eng, event_trigger("trigger_ends", "order.*", json!({"endAt": "2026-01-15T10:00:05Z"})));
    reg(&eng, event_trigger("trigger_max", "order.*", json!({"maxFires": 1})));
    reg(&eng, event_trigger("trigger_cool", "order.*", json!({"cooldownMs": 12_000})));
    reg(&eng, event_trigger("trigger_ok", "order.paid", json!({})));
    reg(&eng, json!({"triggerId": "trigger_life", "tenantId": "t", "type": "lifecycle", "condition": {"eventType": "order.paid"}, "action": {"callableName": "echo"}}));
    reg(&eng, json!({"triggerId": "trigger_life_other", "tenantId": "t", "type": "lifecycle", "condition": {"eventType": "user.signup"}, "action": {"callableName": "echo"}}));
    reg(&eng, json!({"triggerId": "trigger_other_tenant", "tenantId": "u", "type": "event", "condition": {"eventType": "order.paid"}, "action": {"callableName": "echo"}}));
    reg(&eng, json!({"triggerId": "trigger_manual", "tenantId": "t", "type": "manual", "action": {"callableName": "echo"}}));

    // One fire each for the cooldown and maxFires triggers, at T0.
    eng.fire("trigger_max", None).unwrap();
    eng.fire("trigger_cool", None).unwrap();
    clock.advance_to(plus(6_000));
    let event = ev("order.paid", json!({"total": 50}));
    let before = snapshot(&h);
    let all = eng.explain(&event, ExplainSource::Emit).unwrap();
    assert_eq!(snapshot(&h), before, "explaining changes nothing");
    let ids: Vec<&str> = all.iter().map(|e| e.trigger_id.as_str()).collect();
    assert_eq!(
        ids,
        [
            "trigger_type", "trigger_pattern", "trigger_missing", "trigger_paused", "trigger_disabled", "trigger_later", "trigger_ends",
            "trigger_max", "trigger_cool", "trigger_ok", "trigger_life"
        ],
        "the tenant's event triggers in registration order, and the lifecycle trigger of this type; no other tenant, type or kind"
    );
    let reason = |id: &str| of(&all, id).reason.clone().unwrap_or_default();
    let detail = |id: &str| serde_json::to_value(&of(&all, id).detail).unwrap();
    assert_eq!(reason("trigger_type"), r#"event type "order.paid" does not match eventType "user.*""#);
    assert_eq!(detail("trigger_type"), json!({"kind": "type", "expected": "user.*", "got": "order.paid"}));
    assert_eq!(reason("trigger_pattern"), r#"pattern field "total" failed $gte 100 (got 50)"#);
    assert_eq!(detail("trigger_pattern"), json!({"kind": "pattern", "field": "total", "operator": "$gte", "expected": 100, "got": 50}));
    assert_eq!(reason("trigger_missing"), r#"pattern field "coupon" failed $exists true (field missing)"#);
    assert_eq!(detail("trigger_missing"), json!({"kind": "pattern", "field": "coupon", "operator": "$exists", "expected": true, "missing": true}));
    assert_eq!(reason("trigger_paused"), "it is paused");
    assert_eq!(detail("trigger_paused"), json!({"kind": "status", "status": "paused"}));
    assert_eq!(detail("trigger_disabled"), json!({"kind": "status", "status": "disabled"}));
    assert_eq!(reason("trigger_later"), "not started: startAt is 2026-01-15T11:00:00.000Z");
    assert_eq!(detail("trigger_later"), json!({"kind": "not_started", "startAt": "2026-01-15T11:00:00Z"}));
    assert_eq!(reason("trigger_ends"), "ended: endAt 2026-01-15T10:00:05.000Z has passed");
    assert_eq!(detail("trigger_ends"), json!({"kind": "ended", "endAt": "2026-01-15T10:00:05Z"}));
    assert_eq!(of(&all, "trigger_ends").status, TriggerStatus::Expired, "reads as getTrigger would");
    assert_eq!(reason("trigger_max"), "maxFires reached (1 of 1)");
    assert_eq!(detail("trigger_max"), json!({"kind": "max_fires", "maxFires": 1, "fireCount": 1}));
    assert_eq!(of(&all, "trigger_max").status, TriggerStatus::Fired);
    assert_eq!(reason("trigger_cool"), "cooling down for 6 s (until 2026-01-15T10:00:12.000Z)");
    assert_eq!(detail("trigger_cool"), json!({"kind": "cooldown", "remainingMs": 6000, "until": "2026-01-15T10:00:12Z"}));
    assert!(of(&all, "trigger_ok").would_fire);
    assert_eq!((of(&all, "trigger_ok").reason.clone(), of(&all, "trigger_ok").detail.clone()), (None, None));
    assert_eq!(reason("trigger_life"), "it is a lifecycle trigger: it listens to lifecycle() events, not emit()");
    assert_eq!(detail("trigger_life"), json!({"kind": "source", "expected": "lifecycle", "got": "emit"}));
    // Whole records, as JS sees them.
    assert_eq!(
        serde_json::to_value(of(&all, "trigger_ok")).unwrap(),
        json!({"triggerId": "trigger_ok", "triggerName": "trigger_ok", "triggerType": "event", "status": "active", "wouldFire": true, "reason": null, "detail": null})
    );

    // What explain said would fire is exactly what fires.
    assert_eq!(sorted(fired_ids(&eng.emit(&event).unwrap())), would_fire(&all));

    // The clock moves: the cooldown runs out, startAt arrives.
    clock.advance_to(plus(3_600_000));
    let later = eng.explain(&event, ExplainSource::Emit).unwrap();
    assert!(of(&later, "trigger_cool").would_fire);
    assert!(of(&later, "trigger_later").would_fire);
    assert_eq!(sorted(fired_ids(&eng.emit(&event).unwrap())), would_fire(&later));
}

#[test]
fn explain_lifecycle_source_and_pattern_order() {
    let (_h, eng, _clock) = manual();
    reg(&eng, json!({"triggerId": "trigger_l", "tenantId": "t", "type": "lifecycle", "condition": {"eventType": "user.signup", "eventPattern": {"plan": "pro"}}, "action": {"callableName": "echo"}}));
    reg(&eng, event_trigger("trigger_e", "user.signup", json!({})));
    reg(&eng, event_trigger("trigger_e2", "thread.*", json!({})));
    let event = ev("user.signup", json!({"plan": "free"}));
    let all = eng.explain(&event, ExplainSource::Lifecycle).unwrap();
    assert_eq!(all.iter().map(|e| e.trigger_id.as_str()).collect::<Vec<_>>(), ["trigger_l", "trigger_e"]);
    assert_eq!(all[0].reason.as_deref(), Some(r#"pattern field "plan" failed $eq "pro" (got "free")"#));
    assert_eq!(all[1].reason.as_deref(), Some("it is an event trigger: it listens to emit() events, not lifecycle()"));
    let pro = ev("user.signup", json!({"plan": "pro"}));
    assert_eq!(would_fire(&eng.explain(&pro, ExplainSource::Lifecycle).unwrap()), ["trigger_l"]);
    assert_eq!(fired_ids(&eng.lifecycle(&pro).unwrap()), ["trigger_l"]);
}

#[test]
fn explain_chain_bounds_apply_to_calls_made_in_a_chain() {
    let (_h, eng, _clock) = manual_with(TriggerConfig { max_chain_depth: 3, max_chain_fires: 5, ..TriggerConfig::default() });
    reg(&eng, event_trigger("trigger_a", "x", json!({})));
    let event = ev("x", json!({}));
    let deep = Chain { depth: 3, root: Some("exec_root".into()), trace: None };
    let all = eng.explain_in(&event, ExplainSource::Emit, &deep).unwrap();
    assert_eq!(all[0].reason.as_deref(), Some("chain depth 4 would exceed maxChainDepth 3 (the fire would be a trigger.loop_blocked)"));
    assert_eq!(serde_json::to_value(&all[0].detail).unwrap(), json!({"kind": "chain_depth", "depth": 4, "maxChainDepth": 3}));
    assert!(eng.emit_text_in(&event.to_string(), Stimulus::Emit, &deep).unwrap().is_empty(), "refused for real too");
    // One level up it would fire; the type and pattern gates come first.
    let ok = Chain { depth: 2, root: Some("exec_root2".into()), trace: None };
    assert!(eng.explain_in(&event, ExplainSource::Emit, &ok).unwrap()[0].would_fire);
    assert_eq!(eng.explain_in(&ev("y", json!({})), ExplainSource::Emit, &deep).unwrap()[0].detail.as_ref().map(kind), Some("type".into()));
    // The root's fire budget: five fires spent in one chain, the sixth refused.
    let wide = Chain { depth: 0, root: Some("exec_wide".into()), trace: None };
    for _ in 0..5 {
        assert!(eng.explain_in(&event, ExplainSource::Emit, &wide).unwrap()[0].would_fire);
        assert_eq!(eng.emit_text_in(&event.to_string(), Stimulus::Emit, &wide).unwrap().len(), 1);
    }
    let spent = eng.explain_in(&event, ExplainSource::Emit, &wide).unwrap();
    assert_eq!(serde_json::to_value(&spent[0].detail).unwrap(), json!({"kind": "chain_fires", "fires": 5, "maxChainFires": 5}));
    assert!(eng.emit_text_in(&event.to_string(), Stimulus::Emit, &wide).unwrap().is_empty());
}

fn kind(d: &ExplainDetail) -> String {
    serde_json::to_value(d).unwrap()["kind"].as_str().unwrap().to_owned()
}

#[test]
fn explain_metric_names_name_comparison_arming_and_gates_and_changes_no_arming() {
    let (h, eng, clock) = manual();
    reg(&eng, threshold("trigger_gt", "cpu", "gt", 100.0, json!({})));
    reg(&eng, threshold("trigger_mem", "mem", "gt", 100.0, json!({})));
    reg(&eng, threshold("trigger_cool", "cpu", "gte", 10.0, json!({"cooldownMs": 60_000})));
    reg(&eng, threshold("trigger_paused", "cpu", "lt", 10.0, json!({})));
    eng.pause("trigger_paused").unwrap();
    reg(&eng, event_trigger("trigger_event", "cpu", json!({})));
    let report = |v: f64| json!({"tenantId": "t", "name": "cpu", "value": v});

    let all = eng.explain_metric(&report(50.0)).unwrap();
    assert_eq!(all.iter().map(|e| e.trigger_id.as_str()).collect::<Vec<_>>(), ["trigger_gt", "trigger_mem", "trigger_cool", "trigger_paused"]);
    assert_eq!(of(&all, "trigger_gt").reason.as_deref(), Some("value 50 is not > 100"));
    assert_eq!(
        serde_json::to_value(&of(&all, "trigger_gt").detail).unwrap(),
        json!({"kind": "threshold", "operator": "gt", "thresholdValue": 100.0, "value": 50.0})
    );
    assert_eq!(of(&all, "trigger_mem").reason.as_deref(), Some(r#"metric "cpu" does not match metricName "mem""#));
    assert_eq!(serde_json::to_value(&of(&all, "trigger_mem").detail).unwrap(), json!({"kind": "metric", "expected": "mem", "got": "cpu"}));
    assert!(of(&all, "trigger_cool").would_fire);
    // The crossing is judged before the trigger's own gate, as the fire step does.
    assert_eq!(of(&all, "trigger_paused").reason.as_deref(), Some("value 50 is not < 10"));
    assert_eq!(of(&eng.explain_metric(&report(5.0)).unwrap(), "trigger_paused").reason.as_deref(), Some("it is paused"));

    // Explained many times, the arming stays as it was: the report still crosses.
    let before = snapshot(&h);
    for _ in 0..3 {
        assert!(of(&eng.explain_metric(&report(150.0)).unwrap(), "trigger_gt").would_fire);
    }
    assert_eq!(snapshot(&h), before);
    assert_eq!(sorted(fired_ids(&eng.report_metric(&report(150.0)).unwrap())), ["trigger_cool", "trigger_gt"]);

    // Still above: no crossing, so armed-off; the cooldown trigger is armed-off too (the arming comes first).
    let above = eng.explain_metric(&report(160.0)).unwrap();
    assert_eq!(
        of(&above, "trigger_gt").reason.as_deref(),
        Some("already above 100 at the last report: waiting for the value to drop to 100 or below before it can fire again")
    );
    assert_eq!(
        serde_json::to_value(&of(&above, "trigger_gt").detail).unwrap(),
        json!({"kind": "armed", "operator": "gt", "thresholdValue": 100.0, "value": 160.0})
    );
    assert_eq!(
        of(&above, "trigger_cool").reason.as_deref(),
        Some("already at or above 10 at the last report: waiting for the value to drop below 10 before it can fire again")
    );
    let snap = snapshot(&h);
    assert!(eng.report_metric(&report(160.0)).unwrap().is_empty(), "as explained");
    assert_eq!(snapshot(&h), snap, "a report that keeps the comparison changes no state either");

    // Down (re-arms), then up: the threshold fires again; the other cools down.
    clock.advance_to(plus(30_000));
    assert!(eng.report_metric(&report(5.0)).unwrap().is_empty());
    let again = eng.explain_metric(&report(150.0)).unwrap();
    assert!(of(&again, "trigger_gt").would_fire);
    assert_eq!(of(&again, "trigger_cool").reason.as_deref(), Some("cooling down for 30 s (until 2026-01-15T10:01:00.000Z)"));
    assert_eq!(sorted(fired_ids(&eng.report_metric(&report(150.0)).unwrap())), would_fire(&again));
}

#[test]
fn explain_refuses_bad_input_like_emit_and_report_metric() {
    let (_h, eng, _clock) = manual();
    for (input, prefix) in [
        (json!(null), "event: expected an object, got null"),
        (json!("x"), "event: expected an object"),
        (json!({"type": "x"}), "event.tenantId: "),
        (json!({"tenantId": "t"}), "event.type: "),
        (json!({"type": "x", "tenantId": "t", "extra": 1}), "event.extra: unknown field"),
    ] {
        let e = eng.explain(&input, ExplainSource::Emit).unwrap_err();
        let emitted = eng.emit(&input).unwrap_err();
        assert_eq!(e.code, ErrorCode::InvalidTrigger);
        assert_eq!(e.message, emitted.message, "explain and emit refuse {input} alike");
        assert!(e.message.starts_with(prefix), "{}", e.message);
    }
    for input in [json!(null), json!({"tenantId": "t", "name": "m"}), json!({"tenantId": "t", "name": "m", "value": "5"}), json!({"name": "m", "value": 1})] {
        let e = eng.explain_metric(&input).unwrap_err();
        let reported = eng.report_metric(&input).unwrap_err();
        assert_eq!((e.code, e.message.clone()), (reported.code, reported.message), "{input}");
    }
    let e = ExplainSource::from_options(&json!({"source": "webhook"})).unwrap_err();
    assert_eq!((e.code, e.message.as_str()), (ErrorCode::InvalidTrigger, r#"options.source: expected one of emit, lifecycle, got "webhook""#));
    let e = ExplainSource::from_options(&json!({"sauce": "emit"})).unwrap_err();
    assert!(e.message.starts_with("options.sauce: unknown field"), "{}", e.message);
    assert_eq!(ExplainSource::from_options(&json!(null)).unwrap(), ExplainSource::Emit);
    assert_eq!(ExplainSource::from_options(&json!({"source": "lifecycle"})).unwrap(), ExplainSource::Lifecycle);
}

// ---- nextFireAt ----------------------------------------------------------

fn schedule(id: &str, condition: Value, extra: Value) -> Value {
    let mut def = json!({"triggerId": id, "tenantId": "t", "type": "schedule", "condition": condition, "action": {"callableName": "work"}});
    merge(&mut def, extra);
    def
}

fn next_of(eng: &TriggerEngine, id: &str) -> Option<String> {
    let rec = eng.record(eng.get(id).unwrap());
    let v = serde_json::to_value(&rec).unwrap();
    assert_eq!(v.get("nextFireAt").is_some(), rec.next_fire_at.is_some(), "omitted exactly when unset");
    assert_eq!(v["triggerId"], json!(id), "the trigger's own fields are kept");
    rec.next_fire_at.map(trig::rfc)
}

#[test]
fn next_fire_at_follows_timers_time_zone_clock_cooldown_and_window() {
    let (h, eng, clock) = manual();
    // 09:00 in New York is 14:00 UTC in January.
    reg(&eng, schedule("trigger_ny", json!({"cronExpression": "0 9 * * *", "timezone": "America/New_York"}), json!({})));
    reg(&eng, schedule("trigger_every", json!({"intervalSeconds": 60}), json!({})));
    reg(&eng, schedule("trigger_late", json!({"intervalSeconds": 60}), json!({"startAt": "2026-01-15T12:00:00Z"})));
    reg(&eng, schedule("trigger_cool", json!({"cronExpression": "* * * * *"}), json!({"cooldownMs": 150_000})));
    reg(&eng, schedule("trigger_end", json!({"cronExpression": "0 * * * *"}), json!({"endAt": "2026-01-15T10:30:00Z"})));
    reg(&eng, schedule("trigger_paused", json!({"intervalSeconds": 60}), json!({})));
    eng.pause("trigger_paused").unwrap();
    reg(&eng, event_trigger("trigger_event", "x", json!({})));

    assert_eq!(next_of(&eng, "trigger_ny").as_deref(), Some("2026-01-15T14:00:00.000Z"));
    assert_eq!(next_of(&eng, "trigger_every").as_deref(), Some("2026-01-15T10:01:00.000Z"));
    assert_eq!(next_of(&eng, "trigger_late").as_deref(), Some("2026-01-15T12:00:00.000Z"), "not before startAt");
    assert_eq!(next_of(&eng, "trigger_cool").as_deref(), Some("2026-01-15T10:01:00.000Z"));
    assert_eq!(next_of(&eng, "trigger_end"), None, "its next tick (11:00) falls after endAt");
    assert_eq!(next_of(&eng, "trigger_paused"), None);
    assert_eq!(next_of(&eng, "trigger_event"), None);

    // The clock moves a minute: the ticks fire, the next ones are armed.
    clock.advance_to(plus(60_000));
    h.exec.run_due_now().unwrap();
    eng.run_due();
    assert_eq!(eng.get("trigger_every").unwrap().fire_count, 1);
    assert_eq!(next_of(&eng, "trigger_every").as_deref(), Some("2026-01-15T10:02:00.000Z"));
    // Fired at 10:01 with a 150 s cooldown: 10:02 and 10:03 would be refused.
    assert_eq!(eng.get("trigger_cool").unwrap().fire_count, 1);
    assert_eq!(next_of(&eng, "trigger_cool").as_deref(), Some("2026-01-15T10:04:00.000Z"));
    eng.resume("trigger_paused").unwrap();
    assert_eq!(next_of(&eng, "trigger_paused").as_deref(), Some("2026-01-15T10:02:00.000Z"));

    // records() answers the same for a list, reading the timers once.
    let list = eng.records(eng.list(&TriggerFilter::default()).unwrap());
    let by_id = |id: &str| list.iter().find(|r| r.trigger.trigger_id == id).unwrap().next_fire_at.map(trig::rfc);
    for id in ["trigger_ny", "trigger_every", "trigger_late", "trigger_cool", "trigger_end", "trigger_paused", "trigger_event"] {
        assert_eq!(by_id(id), next_of(&eng, id), "{id}");
    }
}
