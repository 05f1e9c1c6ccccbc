//! Gating (status, startAt, endAt, maxFires, cooldown, atomicity under
//! concurrency) and the threshold, webhook and manual stimuli.

mod common;
#[path = "common/triggers.rs"]
mod trig;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Barrier};
use std::time::Duration;

use base64::Engine as _;
use common::*;
use enact_background_core::prelude::*;
use enact_background_core::webhook::WebhookSecret;
use serde_json::{json, Value};
use trig::*;

const T0: &str = "2026-03-10T12:00:00Z";

async fn advance_secs(s: u64) {
    tokio::time::advance(Duration::from_secs(s)).await;
}

// ---------------------------------------------------------------------------
// Gating

#[tokio::test(start_paused = true)]
async fn gate_paused_trigger_does_not_fire() {
    let h = harness_at(at(T0));
    let eng = engine(&h);
    let t = reg(&eng, event_def("t", "a"));
    eng.pause(&t.trigger_id).unwrap();
    assert!(emit(&eng, "t", "a", json!({})).is_empty());
    let e = err_of(eng.fire(&t.trigger_id, None));
    assert_eq!(e.code, ErrorCode::TriggerInactive);
    assert!(e.message.contains("paused"), "{}", e.message);
    assert!(all_execs(&h).is_empty());
    assert_eq!(eng.get(&t.trigger_id).unwrap().fire_count, 0);
    eng.resume(&t.trigger_id).unwrap();
    assert_eq!(emit(&eng, "t", "a", json!({})).len(), 1);
}

#[tokio::test(start_paused = true)]
async fn gate_disabled_and_registered_paused_do_not_fire() {
    let h = harness_at(at(T0));
    let eng = engine(&h);
    let d = reg(&eng, event_def("t", "a"));
    eng.disable(&d.trigger_id).unwrap();
    let mut def = event_def("t", "a");
    def["status"] = json!("paused");
    let p = reg(&eng, def);
    assert_eq!(p.status, TriggerStatus::Paused);
    assert!(emit(&eng, "t", "a", json!({})).is_empty());
    assert_eq!(err_of(eng.fire(&d.trigger_id, None)).code, ErrorCode::TriggerInactive);
    assert!(all_execs(&h).is_empty());
}

#[tokio::test(start_paused = true)]
async fn gate_start_at_in_the_future() {
    let h = harness_at(at(T0));
    let eng = engine(&h);
    let mut def = event_def("t", "a");
    def["startAt"] = json!("2026-03-10T12:00:10Z");
    let t = reg(&eng, def);
    assert_eq!(t.status, TriggerStatus::Active);
    assert!(emit(&eng, "t", "a", json!({})).is_empty());
    assert_eq!(err_of(eng.fire(&t.trigger_id, None)).code, ErrorCode::TriggerInactive);
    advance_secs(9).await;
    assert!(emit(&eng, "t", "a", json!({})).is_empty(), "12:00:09 is still before startAt");
    advance_secs(1).await;
    assert_eq!(fired_ids(&emit(&eng, "t", "a", json!({}))), vec![t.trigger_id.clone()], "startAt <= now fires");
    assert_eq!(execs_of(&h, &t.trigger_id).len(), 1);
}

#[tokio::test(start_paused = true)]
async fn gate_end_at_passed_expires() {
    let h = harness_at(at(T0));
    let eng = engine(&h);
    let mut def = event_def("t", "a");
    def["endAt"] = json!("2026-03-10T12:00:05Z");
    let t = reg(&eng, def);
    advance_secs(1).await;
    assert_eq!(emit(&eng, "t", "a", json!({})).len(), 1);
    advance_secs(4).await; // exactly endAt: still fires
    assert_eq!(emit(&eng, "t", "a", json!({})).len(), 1, "now == endAt still fires");
    advance_secs(1).await; // past endAt
    let expired = eng.list(&TriggerFilter { status: Some(TriggerStatus::Expired), ..Default::default() }).unwrap();
    assert_eq!(expired.iter().map(|t| t.trigger_id.clone()).collect::<Vec<_>>(), vec![t.trigger_id.clone()], "list shows expired");
    assert!(eng.list(&TriggerFilter { status: Some(TriggerStatus::Active), ..Default::default() }).unwrap().is_empty());
    assert_eq!(eng.get(&t.trigger_id).unwrap().status, TriggerStatus::Expired);
    assert!(emit(&eng, "t", "a", json!({})).is_empty());
    let e = err_of(eng.fire(&t.trigger_id, None));
    assert_eq!(e.code, ErrorCode::TriggerInactive);
    assert_eq!(execs_of(&h, &t.trigger_id).len(), 2);
    assert_eq!(eng.get(&t.trigger_id).unwrap().fire_count, 2);
    // Moving endAt re-activates it.
    let u = eng.update(&t.trigger_id, &json!({"endAt": "2026-03-10T13:00:00Z"})).unwrap();
    assert_eq!(u.status, TriggerStatus::Active);
    assert_eq!(emit(&eng, "t", "a", json!({})).len(), 1);
}

#[tokio::test(start_paused = true)]
async fn gate_expired_when_end_at_already_passed_at_registration() {
    let h = harness_at(at(T0));
    let eng = engine(&h);
    let mut def = event_def("t", "a");
    def["endAt"] = json!("2026-03-10T11:00:00Z");
    let t = reg(&eng, def);
    assert_eq!(t.status, TriggerStatus::Expired);
    assert!(emit(&eng, "t", "a", json!({})).is_empty());
}

#[tokio::test(start_paused = true)]
async fn gate_max_fires() {
    let h = harness_at(at(T0));
    let eng = engine(&h);
    let mut def = event_def("t", "a");
    def["maxFires"] = json!(2);
    let t = reg(&eng, def);
    assert_eq!(emit(&eng, "t", "a", json!({})).len(), 1);
    assert_eq!(eng.get(&t.trigger_id).unwrap().status, TriggerStatus::Active);
    assert_eq!(emit(&eng, "t", "a", json!({})).len(), 1);
    assert!(emit(&eng, "t", "a", json!({})).is_empty(), "third emit fires nothing");
    let tr = eng.get(&t.trigger_id).unwrap();
    assert_eq!((tr.status, tr.fire_count), (TriggerStatus::Fired, 2));
    assert_eq!(execs_of(&h, &t.trigger_id).len(), 2);
    let e = err_of(eng.fire(&t.trigger_id, None));
    assert_eq!(e.code, ErrorCode::TriggerInactive);
    assert!(e.message.contains("maxFires"), "{}", e.message);
}

#[tokio::test(start_paused = true)]
async fn gate_cooldown() {
    let h = harness_at(at(T0));
    let eng = engine(&h);
    let mut def = event_def("t", "a");
    def["cooldownMs"] = json!(5000);
    let t = reg(&eng, def);
    assert_eq!(emit(&eng, "t", "a", json!({})).len(), 1);
    advance_secs(1).await;
    assert!(emit(&eng, "t", "a", json!({})).is_empty(), "+1 s: cooling down");
    let e = err_of(eng.fire(&t.trigger_id, None));
    assert_eq!(e.code, ErrorCode::TriggerInactive);
    assert!(e.message.contains("cooling down"), "{}", e.message);
    tokio::time::advance(Duration::from_millis(3999)).await;
    assert!(emit(&eng, "t", "a", json!({})).is_empty(), "+4.999 s: cooling down");
    tokio::time::advance(Duration::from_millis(1)).await;
    assert_eq!(emit(&eng, "t", "a", json!({})).len(), 1, "+5 s fires");
    let tr = eng.get(&t.trigger_id).unwrap();
    assert_eq!(tr.fire_count, 2);
    assert_eq!(tr.last_fired_at, Some(at("2026-03-10T12:00:05Z")));
    assert!(emit(&eng, "t", "a", json!({})).is_empty(), "the cooldown restarts");
    assert_eq!(execs_of(&h, &t.trigger_id).len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn gate_concurrent_emits_fire_max_fires_once() {
    let h = Harness::new(config(16));
    let eng = engine(&h);
    let mut def = event_def("t", "burst");
    def["maxFires"] = json!(1);
    let t = reg(&eng, def);
    let fired = AtomicUsize::new(0);
    let barrier = Barrier::new(8);
    std::thread::scope(|s| {
        for _ in 0..8 {
            s.spawn(|| {
                barrier.wait();
                for _ in 0..125 {
                    let evs = eng.emit(&json!({"type": "burst", "tenantId": "t", "data": {}})).unwrap();
                    fired.fetch_add(evs.len(), Ordering::SeqCst);
                }
            });
        }
    });
    assert_eq!(fired.load(Ordering::SeqCst), 1, "1,000 concurrent emits fire once");
    let tr = eng.get(&t.trigger_id).unwrap();
    assert_eq!((tr.fire_count, tr.status), (1, TriggerStatus::Fired));
    assert_eq!(execs_of(&h, &t.trigger_id).len(), 1);
    assert_eq!(all_execs(&h).len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn gate_concurrent_mixed_stimuli_respect_max_fires() {
    let h = Harness::new(config(16));
    let eng = engine(&h);
    let mut def = event_def("t", "burst");
    def["maxFires"] = json!(10);
    let t = reg(&eng, def);
    let fired = AtomicUsize::new(0);
    let barrier = Barrier::new(8);
    std::thread::scope(|s| {
        for i in 0..8 {
            let (eng, fired, barrier, id) = (&eng, &fired, &barrier, t.trigger_id.as_str());
            s.spawn(move || {
                barrier.wait();
                for _ in 0..125 {
                    let n = if i % 2 == 0 {
                        eng.emit(&json!({"type": "burst", "tenantId": "t", "data": {}})).unwrap().len()
                    } else {
                        usize::from(eng.fire(id, None).is_ok())
                    };
                    fired.fetch_add(n, Ordering::SeqCst);
                }
            });
        }
    });
    assert_eq!(fired.load(Ordering::SeqCst), 10);
    let tr = eng.get(&t.trigger_id).unwrap();
    assert_eq!((tr.fire_count, tr.status), (10, TriggerStatus::Fired));
    assert_eq!(execs_of(&h, &t.trigger_id).len(), 10);
}

// ---------------------------------------------------------------------------
// Threshold

fn threshold_def(tenant: &str, metric: &str, op: &str, value: f64) -> Value {
    json!({"tenantId": tenant, "type": "threshold",
           "condition": {"metricName": metric, "thresholdOperator": op, "thresholdValue": value},
           "action": {"callableName": "echo"}})
}

fn report(eng: &TriggerEngine, tenant: &str, name: &str, value: f64) -> Vec<TriggerFiredEvent> {
    eng.report_metric(&json!({"tenantId": tenant, "name": name, "value": value})).expect("reportMetric")
}

#[tokio::test(start_paused = true)]
async fn threshold_fires_on_crossings_only() {
    let h = harness_at(at(T0));
    let eng = engine(&h);
    let t = reg(&eng, threshold_def("t", "cpu", "gt", 100.0));
    let fires: Vec<usize> = [50.0, 150.0, 160.0, 90.0, 120.0].iter().map(|v| report(&eng, "t", "cpu", *v).len()).collect();
    assert_eq!(fires, vec![0, 1, 0, 0, 1]);
    let execs = execs_of(&h, &t.trigger_id);
    assert_eq!(execs.len(), 2);
    let mut values: Vec<f64> = execs.iter().map(|e| e.trigger_source.as_ref().unwrap()["value"].as_f64().unwrap()).collect();
    values.sort_by(f64::total_cmp);
    assert_eq!(values, vec![120.0, 150.0]);
    assert_eq!(eng.get(&t.trigger_id).unwrap().fire_count, 2);
}

#[tokio::test(start_paused = true)]
async fn threshold_source_and_event() {
    let h = harness_at(at(T0));
    let eng = engine(&h);
    let t = reg(&eng, threshold_def("t", "cost.usd", "gte", 10.5));
    let evs = report(&eng, "t", "cost.usd", 12.25);
    assert_eq!(evs.len(), 1);
    let ev = &evs[0];
    assert_eq!(ev.trigger_id, t.trigger_id);
    assert_eq!(ev.trigger_type, TriggerType::Threshold);
    assert_eq!(ev.tenant_id.as_deref(), Some("t"));
    let src = ev.trigger_source.clone().unwrap();
    assert_eq!(src["name"], json!("cost.usd"));
    assert_eq!(src["value"].as_f64(), Some(12.25));
    assert_eq!(src["thresholdValue"].as_f64(), Some(10.5));
    assert_eq!(src["thresholdOperator"], json!("gte"));
    assert_eq!(src.as_object().unwrap().len(), 4, "{src}");
    let rec = h.get(&ev.execution_id);
    assert_eq!(rec.trigger_source, Some(src));
    assert_eq!(rec.config.mode, ExecutionMode::Silent);
}

#[tokio::test(start_paused = true)]
async fn threshold_other_metric_or_tenant_does_not_fire() {
    let h = harness_at(at(T0));
    let eng = engine(&h);
    let t = reg(&eng, threshold_def("t", "cpu", "gt", 100.0));
    assert!(report(&eng, "t", "mem", 500.0).is_empty());
    assert!(report(&eng, "other", "cpu", 500.0).is_empty());
    assert!(execs_of(&h, &t.trigger_id).is_empty());
    // And those reports did not disturb its own crossing.
    assert_eq!(report(&eng, "t", "cpu", 101.0).len(), 1);
}

#[tokio::test(start_paused = true)]
async fn threshold_eq_and_lte() {
    let h = harness_at(at(T0));
    let eng = engine(&h);
    let eq = reg(&eng, threshold_def("t", "queue", "eq", 5.0)).trigger_id;
    let lte = reg(&eng, threshold_def("t", "disk", "lte", 10.0)).trigger_id;
    let eqs: Vec<usize> = [4.0, 5.0, 5.0, 6.0, 5.0].iter().map(|v| report(&eng, "t", "queue", *v).len()).collect();
    assert_eq!(eqs, vec![0, 1, 0, 0, 1]);
    let ltes: Vec<usize> = [20.0, 10.0, 3.0, 11.0, 9.0].iter().map(|v| report(&eng, "t", "disk", *v).len()).collect();
    assert_eq!(ltes, vec![0, 1, 0, 0, 1]);
    assert_eq!(execs_of(&h, &eq).len(), 2);
    assert_eq!(execs_of(&h, &lte).len(), 2);
}

#[tokio::test(start_paused = true)]
async fn threshold_bad_metric_rejected() {
    let h = harness_at(at(T0));
    let eng = engine(&h);
    reg(&eng, threshold_def("t", "cpu", "gt", 1.0));
    let e = err_of(eng.report_metric(&json!({"tenantId": "t", "name": "cpu"})));
    assert!(e.message.starts_with("metric.value:"), "{}", e.message);
    let e = err_of(eng.report_metric(&json!({"tenantId": "t", "name": "cpu", "value": "high"})));
    assert!(e.message.starts_with("metric.value:"), "{}", e.message);
    assert!(all_execs(&h).is_empty());
}

// ---------------------------------------------------------------------------
// Webhook

const KEY: &[u8] = b"test-webhook-key-0123456789abcdef";

fn secret_str() -> String {
    format!("whsec_{}", base64::engine::general_purpose::STANDARD.encode(KEY))
}

fn webhook_def(tenant: &str, secret: Option<&str>) -> Value {
    let mut d = json!({"tenantId": tenant, "type": "webhook", "action": {"callableName": "echo"}});
    match secret {
        Some(s) => d["webhookSecret"] = json!(s),
        None => d["allowUnsigned"] = json!(true),
    }
    d
}

/// Signed Standard Webhooks headers.
fn signed(secret: &str, id: &str, ts: i64, body: &[u8]) -> Vec<(String, String)> {
    let sig = WebhookSecret::parse(secret).unwrap().sign(id, ts, body);
    headers(&[("webhook-id", id), ("webhook-timestamp", &ts.to_string()), ("webhook-signature", &sig)])
}

#[tokio::test(start_paused = true)]
async fn webhook_unsigned_fires_with_body() {
    let h = harness_at(at(T0));
    let eng = engine(&h);
    let t = reg(&eng, webhook_def("t", None));
    let ev = eng.webhook(&t.trigger_id, &headers(&[("content-type", "application/json")]), br#"{"ref":"main","commits":[1,2]}"#).unwrap();
    assert_eq!(ev.trigger_type, TriggerType::Webhook);
    assert_eq!(ev.trigger_source, Some(json!({"ref": "main", "commits": [1, 2]})));
    assert_eq!(h.get(&ev.execution_id).trigger_source, Some(json!({"ref": "main", "commits": [1, 2]})));
    let ev2 = eng.webhook(&t.trigger_id, &[], b"plain text, not json").unwrap();
    assert_eq!(ev2.trigger_source, Some(json!("plain text, not json")));
    assert_eq!(h.get(&ev2.execution_id).trigger_source, Some(json!("plain text, not json")));
    assert_eq!(execs_of(&h, &t.trigger_id).len(), 2);
}

#[tokio::test(start_paused = true)]
async fn webhook_signed_request_fires() {
    let h = harness_at(at(T0));
    let eng = engine(&h);
    let secret = secret_str();
    let t = reg(&eng, webhook_def("t", Some(&secret)));
    assert_eq!(t.webhook_secret.as_deref(), Some(secret.as_str()));
    let body = br#"{"event":"push"}"#;
    let ts = now(&h).timestamp();
    let ev = eng.webhook(&t.trigger_id, &signed(&secret, "msg_1", ts, body), body).unwrap();
    assert_eq!(ev.trigger_source, Some(json!({"event": "push"})));
    let execs = execs_of(&h, &t.trigger_id);
    assert_eq!(execs.len(), 1);
    assert_eq!(execs[0].execution_id, ev.execution_id);
    // Within the 5-minute tolerance either way.
    let ev = eng.webhook(&t.trigger_id, &signed(&secret, "msg_2", ts - 299, body), body);
    assert!(ev.is_ok(), "{:?}", ev.err());
    let ev = eng.webhook(&t.trigger_id, &signed(&secret, "msg_3", ts + 299, body), body);
    assert!(ev.is_ok(), "{:?}", ev.err());
    assert_eq!(execs_of(&h, &t.trigger_id).len(), 3);
}

#[tokio::test(start_paused = true)]
async fn webhook_bad_requests_are_refused_without_executions() {
    let h = harness_at(at(T0));
    let eng = engine(&h);
    let secret = secret_str();
    let t = reg(&eng, webhook_def("t", Some(&secret)));
    let body: &[u8] = br#"{"event":"push"}"#;
    let ts = now(&h).timestamp();
    let good = signed(&secret, "msg_1", ts, body);

    // (what is wrong, headers, body)
    type Case<'a> = (&'a str, Vec<(String, String)>, &'a [u8]);
    let mut cases: Vec<Case> = Vec::new();
    cases.push(("no headers", vec![], body));
    for missing in ["webhook-id", "webhook-timestamp", "webhook-signature"] {
        cases.push((missing, good.iter().filter(|(k, _)| k != missing).cloned().collect(), body));
    }
    let other_key = format!("whsec_{}", base64::engine::general_purpose::STANDARD.encode(b"some-other-key"));
    cases.push(("wrong key", signed(&other_key, "msg_1", ts, body), body));
    let mut garbled = good.clone();
    garbled[2].1 = "v1,AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=".into();
    cases.push(("bad signature", garbled, body));
    cases.push(("tampered body", good.clone(), br#"{"event":"push!"}"#));
    cases.push(("10 minutes old", signed(&secret, "msg_1", ts - 600, body), body));
    cases.push(("10 minutes ahead", signed(&secret, "msg_1", ts + 600, body), body));
    let mut bad_ts = good.clone();
    bad_ts[1].1 = "yesterday".into();
    cases.push(("non-numeric timestamp", bad_ts, body));

    for (what, hdrs, b) in cases {
        let e = err_of(eng.webhook(&t.trigger_id, &hdrs, b));
        assert_eq!(e.code, ErrorCode::WebhookSignature, "{what}: {}", e.message);
    }
    assert!(execs_of(&h, &t.trigger_id).is_empty(), "no execution for a refused request");
    assert_eq!(eng.get(&t.trigger_id).unwrap().fire_count, 0);
    // A refused request does not burn its message id: the genuine one is accepted.
    assert!(eng.webhook(&t.trigger_id, &good, body).is_ok());
    assert_eq!(execs_of(&h, &t.trigger_id).len(), 1);
}

#[tokio::test(start_paused = true)]
async fn webhook_replay_is_refused() {
    let h = harness_at(at(T0));
    let eng = engine(&h);
    let secret = secret_str();
    let t = reg(&eng, webhook_def("t", Some(&secret)));
    let body = br#"{"n":1}"#;
    let ts = now(&h).timestamp();
    let req = signed(&secret, "msg_replayed", ts, body);
    eng.webhook(&t.trigger_id, &req, body).unwrap();
    advance_secs(30).await;
    let e = err_of(eng.webhook(&t.trigger_id, &req, body));
    assert_eq!(e.code, ErrorCode::WebhookSignature, "{}", e.message);
    // Re-signed with a fresh timestamp, the same id is still a replay.
    let again = signed(&secret, "msg_replayed", now(&h).timestamp(), body);
    assert_eq!(err_of(eng.webhook(&t.trigger_id, &again, body)).code, ErrorCode::WebhookSignature);
    assert_eq!(execs_of(&h, &t.trigger_id).len(), 1);
    assert_eq!(eng.get(&t.trigger_id).unwrap().fire_count, 1);
}

/// A delivery the trigger refuses (cooling down) does not burn its
/// `webhook-id`: the sender's retry of the same message after the cooldown
/// fires (issue 10, item 6).
#[tokio::test(start_paused = true)]
async fn webhook_refused_delivery_does_not_burn_its_id() {
    let h = harness_at(at(T0));
    let eng = engine(&h);
    let secret = secret_str();
    let mut def = webhook_def("t", Some(&secret));
    def["cooldownMs"] = json!(10_000);
    let t = reg(&eng, def);
    let body = br#"{"n":1}"#;
    eng.webhook(&t.trigger_id, &signed(&secret, "msg_first", now(&h).timestamp(), body), body).unwrap();
    advance_secs(1).await;
    let retry = signed(&secret, "msg_second", now(&h).timestamp(), body);
    assert_eq!(err_of(eng.webhook(&t.trigger_id, &retry, body)).code, ErrorCode::TriggerInactive, "cooling down");
    advance_secs(10).await;
    let retry = signed(&secret, "msg_second", now(&h).timestamp(), body);
    eng.webhook(&t.trigger_id, &retry, body).expect("the refused message is accepted once the cooldown is over");
    assert_eq!(err_of(eng.webhook(&t.trigger_id, &retry, body)).code, ErrorCode::WebhookSignature, "and only once");
    assert_eq!(execs_of(&h, &t.trigger_id).len(), 2);
}

#[tokio::test(start_paused = true)]
async fn webhook_header_names_are_case_insensitive() {
    let h = harness_at(at(T0));
    let eng = engine(&h);
    let secret = secret_str();
    let t = reg(&eng, webhook_def("t", Some(&secret)));
    let body = b"hello";
    let ts = now(&h).timestamp();
    let sig = WebhookSecret::parse(&secret).unwrap().sign("msg_ci", ts, body);
    let hdrs = headers(&[("WEBHOOK-ID", "msg_ci"), ("Webhook-Timestamp", &ts.to_string()), ("webhook-SIGNATURE", &sig)]);
    let ev = eng.webhook(&t.trigger_id, &hdrs, body).unwrap();
    assert_eq!(ev.trigger_source, Some(json!("hello")));
    assert_eq!(execs_of(&h, &t.trigger_id).len(), 1);
}

#[tokio::test(start_paused = true)]
async fn webhook_on_non_webhook_trigger_is_not_found() {
    let h = harness_at(at(T0));
    let eng = engine(&h);
    let m = reg(&eng, manual_def("t"));
    let e = err_of(eng.webhook(&m.trigger_id, &[], b"{}"));
    assert_eq!(e.code, ErrorCode::NotFound, "{}", e.message);
    let ev = reg(&eng, event_def("t", "a"));
    assert_eq!(err_of(eng.webhook(&ev.trigger_id, &[], b"{}")).code, ErrorCode::NotFound);
    assert!(all_execs(&h).is_empty());
}

#[tokio::test(start_paused = true)]
async fn webhook_paused_trigger_is_inactive() {
    let h = harness_at(at(T0));
    let eng = engine(&h);
    let secret = secret_str();
    let t = reg(&eng, webhook_def("t", Some(&secret)));
    eng.pause(&t.trigger_id).unwrap();
    let body = b"{}";
    let req = signed(&secret, "msg_p", now(&h).timestamp(), body);
    assert_eq!(err_of(eng.webhook(&t.trigger_id, &req, body)).code, ErrorCode::TriggerInactive);
    let u = reg(&eng, webhook_def("t", None));
    eng.pause(&u.trigger_id).unwrap();
    assert_eq!(err_of(eng.webhook(&u.trigger_id, &[], body)).code, ErrorCode::TriggerInactive);
    assert!(all_execs(&h).is_empty());
    // Once resumed, the sender's retry of the same message is accepted.
    eng.resume(&t.trigger_id).unwrap();
    assert!(eng.webhook(&t.trigger_id, &req, body).is_ok());
    assert_eq!(execs_of(&h, &t.trigger_id).len(), 1);
}

/// A signed trigger whose replay budget is full of unexpired ids refuses
/// a new delivery with `ENACT_RATE_LIMITED`, saying when to retry, and
/// fires nothing; its ids are still refused as replays; once the oldest
/// expires a new delivery is accepted (issue 10 item 5).
#[tokio::test(start_paused = true)]
async fn webhook_over_its_replay_budget_is_rate_limited() {
    let store: Arc<dyn Driver> = Arc::new(MemoryStore::with_config(MemoryConfig { replay_capacity: 2, ..MemoryConfig::default() }));
    let host = Arc::new(CountingHost::default());
    let exec = Executor::new(store.clone(), Arc::new(TokioClock::starting_at(at(T0))), host.clone(), config(16));
    exec.register_callable("echo").unwrap();
    let h = Harness { exec, host, store };
    let eng = engine(&h);
    let secret = secret_str();
    let t = reg(&eng, webhook_def("t", Some(&secret)));
    let body = b"{}";
    let ts = now(&h).timestamp();
    eng.webhook(&t.trigger_id, &signed(&secret, "msg_1", ts, body), body).unwrap();
    advance_secs(10).await;
    eng.webhook(&t.trigger_id, &signed(&secret, "msg_2", ts + 10, body), body).unwrap();
    let e = err_of(eng.webhook(&t.trigger_id, &signed(&secret, "msg_3", ts + 10, body), body));
    assert_eq!(e.code, ErrorCode::RateLimited);
    assert!(e.message.ends_with("retry after 590 s"), "{}", e.message);
    assert_eq!(err_of(eng.webhook(&t.trigger_id, &signed(&secret, "msg_1", ts + 10, body), body)).code, ErrorCode::WebhookSignature, "still a replay");
    assert_eq!(execs_of(&h, &t.trigger_id).len(), 2, "the refused delivery fired nothing");
    assert_eq!(eng.get(&t.trigger_id).unwrap().fire_count, 2);
    advance_secs(590).await;
    eng.webhook(&t.trigger_id, &signed(&secret, "msg_3", ts + 600, body), body).expect("msg_1 expired: room for one");
}

/// A webhook trigger with neither a secret nor `allowUnsigned`, as an
/// older version may have stored it, fails closed: it fires on no request.
#[tokio::test(start_paused = true)]
async fn webhook_stored_without_secret_or_opt_in_fires_nothing() {
    let h = harness_at(at(T0));
    let eng = engine(&h);
    let mut t: Trigger = serde_json::from_value(fixture("trigger_webhook_paused.json")).unwrap();
    t.status = TriggerStatus::Active;
    assert!(t.webhook_secret.is_none() && !t.allow_unsigned);
    h.store.insert_trigger(t.clone()).await.unwrap();
    eng.sync_changes().unwrap();
    let e = err_of(eng.webhook(&t.trigger_id, &[], b"{}"));
    assert_eq!(e.code, ErrorCode::WebhookSignature);
    assert!(e.message.contains("does not allow unsigned requests"), "{}", e.message);
    assert!(all_execs(&h).is_empty());
}

#[tokio::test(start_paused = true)]
async fn webhook_fixture_paused_trigger() {
    let h = harness_at(at("2026-11-27T18:00:00Z"));
    let eng = engine(&h);
    let mut fx = fixture("trigger_webhook_paused.json");
    fx["allowUnsigned"] = json!(true);
    let t = reg(&eng, fx);
    assert_eq!(err_of(eng.webhook(&t.trigger_id, &[], b"{}")).code, ErrorCode::TriggerInactive);
    eng.resume(&t.trigger_id).unwrap();
    let ev = eng.webhook(&t.trigger_id, &[], br#"{"ref":"main"}"#).unwrap();
    assert_eq!(ev.trigger_name, "GitHub push");
    // Its callable `ingest` is not registered: the execution says so.
    let rec = h.get(&ev.execution_id);
    assert_eq!(rec.status, BackgroundExecutionStatus::Failed);
    assert!(rec.error.unwrap().message.contains("no callable registered"));
}

// ---------------------------------------------------------------------------
// Manual

#[tokio::test(start_paused = true)]
async fn manual_fire_with_and_without_payload() {
    let h = harness_at(at(T0));
    let eng = engine(&h);
    let t = reg(&eng, json!({"tenantId": "t", "type": "manual", "name": "Kick", "action": {"callableName": "echo", "input": "go"}}));
    let payload = json!({"reason": "user clicked", "n": [1, 2]});
    let ev = eng.fire(&t.trigger_id, Some(payload.clone())).unwrap();
    assert_eq!(ev.trigger_id, t.trigger_id);
    assert_eq!(ev.trigger_name, "Kick");
    assert_eq!(ev.trigger_type, TriggerType::Manual);
    assert_eq!(ev.fired_at, at(T0));
    assert_eq!(ev.trigger_source, Some(payload.clone()));
    assert_eq!(ev.tenant_id.as_deref(), Some("t"), "a fire names its tenant (extension)");
    assert_eq!(serde_json::to_value(&ev).unwrap()["tenantId"], json!("t"));
    let rec = h.get(&ev.execution_id);
    assert_eq!(rec.trigger_source, Some(payload));
    assert_eq!(rec.input.as_deref(), Some("go"));
    assert_eq!(rec.chain_depth, 1);

    let ev = eng.fire(&t.trigger_id, None).unwrap();
    let v = serde_json::to_value(&ev).unwrap();
    assert_eq!(v.get("triggerSource").cloned().unwrap_or(Value::Null), Value::Null);
    let rec = h.get(&ev.execution_id);
    assert_eq!(rec.trigger_source.clone().unwrap_or(Value::Null), Value::Null);
    assert_eq!(eng.get(&t.trigger_id).unwrap().fire_count, 2);
    assert_eq!(execs_of(&h, &t.trigger_id).len(), 2);
}

/// The shape enact-core 0.0.2 reads an ExecutionError with: every key of
/// the error its own fixture holds, each non-null one of the same JSON
/// type, and `retry_policy` a full RetryPolicy (enact-core refuses
/// `"retry_policy": null`: "invalid type: null, expected struct
/// RetryPolicy").
fn assert_enact_core_error(err: &Value) {
    let want = fixture("execution_failed.json")["error"].clone();
    let kind = |v: &Value| match v {
        Value::Null => "null",
        Value::Bool(_) => "bool",
        Value::Number(n) if n.is_u64() => "unsigned",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    };
    let keys = |v: &Value| v.as_object().unwrap().keys().cloned().collect::<Vec<_>>();
    assert_eq!(keys(err), keys(&want), "error keys: {err:#}");
    for key in ["category", "message", "attempt", "occurred_at", "retry_policy"] {
        assert_eq!(kind(&err[key]), kind(&want[key]), "error.{key}: {err:#}");
    }
    let (policy, want_policy) = (&err["retry_policy"], &want["retry_policy"]);
    assert_eq!(keys(policy), keys(want_policy), "retry_policy keys: {policy:#}");
    for key in keys(want_policy) {
        assert_eq!(kind(&policy[&key]), kind(&want_policy[&key]), "retry_policy.{key}: {policy:#}");
    }
    assert!(err["attempt"].as_u64().unwrap() >= 1, "error.attempt counts from 1: {err:#}");
    // And our own reader takes it back unchanged.
    let back: ExecutionError = serde_json::from_value(err.clone()).unwrap();
    assert_eq!(serde_json::to_value(&back).unwrap(), *err);
}

#[tokio::test(start_paused = true)]
async fn fire_of_an_unregistered_callable_writes_an_enact_core_readable_failure() {
    let h = harness_at(at(T0));
    let eng = engine(&h);
    // Without a retry config: the policy of a single attempt.
    let t = reg(&eng, json!({"tenantId": "t", "type": "manual", "action": {"callableName": "nobody"}}));
    let rec = h.get(&eng.fire(&t.trigger_id, None).unwrap().execution_id);
    assert_eq!(rec.status, BackgroundExecutionStatus::Failed);
    let v = serde_json::to_value(&rec).unwrap();
    assert_enact_core_error(&v["error"]);
    assert_eq!(v["error"]["attempt"], json!(1));
    assert_eq!(v["error"]["code"], json!("ENACT_UNKNOWN_CALLABLE"));
    assert_eq!(
        v["error"]["retry_policy"],
        json!({"backoff_strategy": "constant", "base_delay": 0, "max_delay": 0, "max_retries": 0, "requires_idempotency_key": false, "retryable": false})
    );
    // No attempt started: the record's own `attempt` extension stays absent.
    assert!(v.get("attempt").is_none(), "{v:#}");

    // With one: its policy, and not retryable.
    let t = reg(&eng, json!({"tenantId": "t", "type": "manual", "action": {"callableName": "nobody", "retry": {"maxAttempts": 3, "backoffMs": 500}}}));
    let rec = h.get(&eng.fire(&t.trigger_id, None).unwrap().execution_id);
    let v = serde_json::to_value(&rec).unwrap();
    assert_enact_core_error(&v["error"]);
    assert_eq!(v["error"]["retry_policy"]["max_retries"], json!(2));
    assert_eq!(v["error"]["retry_policy"]["base_delay"], json!(500));
    assert_eq!(v["error"]["retry_policy"]["retryable"], json!(false));
}

#[tokio::test(start_paused = true)]
async fn manual_triggers_ignore_events() {
    let h = harness_at(at(T0));
    let eng = engine(&h);
    let t = reg(&eng, manual_def("t"));
    assert!(emit(&eng, "t", "anything", json!({})).is_empty());
    assert!(eng.lifecycle(&json!({"type": "x", "tenantId": "t"})).unwrap().is_empty());
    assert!(report(&eng, "t", "cpu", 1.0).is_empty());
    assert!(execs_of(&h, &t.trigger_id).is_empty());
}

#[tokio::test(start_paused = true)]
async fn webhook_signature_header_with_several_entries() {
    let h = harness_at(at(T0));
    let eng = engine(&h);
    let secret = secret_str();
    let t = reg(&eng, webhook_def("t", Some(&secret)));
    let body = br#"{"k":1}"#;
    let ts = now(&h).timestamp();
    let good = WebhookSecret::parse(&secret).unwrap().sign("msg_multi", ts, body);
    // A rotated-out signature and an unknown version come first.
    let stale = WebhookSecret::parse("whsec_b2xkLWtleQ==").unwrap().sign("msg_multi", ts, body);
    let sig = format!("{stale} v2,Zm9v {good}");
    let hdrs = headers(&[("webhook-id", "msg_multi"), ("webhook-timestamp", &ts.to_string()), ("webhook-signature", &sig)]);
    let ev = eng.webhook(&t.trigger_id, &hdrs, body).unwrap();
    assert_eq!(ev.trigger_source, Some(json!({"k": 1})));
    assert_eq!(execs_of(&h, &t.trigger_id).len(), 1);
}

#[tokio::test(start_paused = true)]
async fn threshold_crossing_state_survives_an_unrelated_update() {
    // Renaming a trigger is not a crossing: a value that stays above the
    // threshold must not fire again.
    let h = harness_at(at(T0));
    let eng = engine(&h);
    let t = reg(&eng, threshold_def("t", "cpu", "gt", 100.0));
    assert_eq!(report(&eng, "t", "cpu", 150.0).len(), 1);
    eng.update(&t.trigger_id, &json!({"name": "CPU alarm"})).unwrap();
    assert!(report(&eng, "t", "cpu", 160.0).is_empty(), "still above 100: no new crossing");
    assert_eq!(execs_of(&h, &t.trigger_id).len(), 1);
    assert_eq!(report(&eng, "t", "cpu", 90.0).len(), 0);
    assert_eq!(report(&eng, "t", "cpu", 101.0).len(), 1);
}

#[tokio::test(start_paused = true)]
async fn threshold_pause_keeps_crossing_semantics() {
    let h = harness_at(at(T0));
    let eng = engine(&h);
    let t = reg(&eng, threshold_def("t", "cpu", "gt", 100.0));
    eng.pause(&t.trigger_id).unwrap();
    assert!(report(&eng, "t", "cpu", 150.0).is_empty(), "paused: no fire");
    eng.resume(&t.trigger_id).unwrap();
    assert!(report(&eng, "t", "cpu", 90.0).is_empty());
    assert_eq!(report(&eng, "t", "cpu", 150.0).len(), 1);
    assert_eq!(execs_of(&h, &t.trigger_id).len(), 1);
}

#[tokio::test(start_paused = true)]
async fn gate_resume_after_disable_does_not_report_a_used_up_trigger_active() {
    // A trigger that reached maxFires and was then disabled cannot become
    // active again by resume: resume must refuse (as for a fired trigger)
    // or report its real status, never "active".
    let h = harness_at(at(T0));
    let eng = engine(&h);
    let mut def = manual_def("t");
    def["maxFires"] = json!(1);
    let t = reg(&eng, def);
    eng.fire(&t.trigger_id, None).unwrap();
    eng.disable(&t.trigger_id).unwrap();
    match eng.resume(&t.trigger_id) {
        Err(e) => {
            assert_eq!(e.code, ErrorCode::InvalidTrigger);
            assert!(e.message.contains("maxFires"), "{}", e.message);
        }
        Ok(r) => assert_ne!(r.status, TriggerStatus::Active, "resume returned {:?} for a trigger at maxFires", r.status),
    }
    assert_ne!(eng.get(&t.trigger_id).unwrap().status, TriggerStatus::Active);
    assert_eq!(err_of(eng.fire(&t.trigger_id, None)).code, ErrorCode::TriggerInactive);
    assert_eq!(execs_of(&h, &t.trigger_id).len(), 1);
}
