//! The manual clock: time moves only when the test moves it, the timed
//! services do not run, and `run_due_now` / `run_due` do at once what came
//! due — delayed work exactly at its time, retry backoff, timeouts,
//! interval and cron ticks (each tick when stepped, one when jumped),
//! cooldown and window gates. No real time and no tokio time is involved.

mod common;
#[path = "common/triggers.rs"]
mod trig;

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use common::*;
use enact_background_core::prelude::*;
use serde_json::json;
use trig::{at, execs_of, rfc};

const T0: &str = "2026-01-15T10:00:00.250Z";

/// An executor and trigger engine over a memory store and a manual clock
/// reading `T0`, with callables `echo` and `work`.
fn manual() -> (Harness, Arc<TriggerEngine>, Arc<ManualClock>) {
    trig::manual_at(T0, TriggerConfig::default())
}

fn ms(t: DateTime<Utc>) -> i64 {
    t.timestamp_millis()
}

fn plus(ms: i64) -> DateTime<Utc> {
    at(T0) + chrono::Duration::milliseconds(ms)
}

/// Moves the clock to `t` and runs what came due in the executor and the
/// scheduler.
fn move_to(h: &Harness, eng: &Arc<TriggerEngine>, clock: &ManualClock, t: DateTime<Utc>) {
    clock.advance_to(t);
    h.exec.run_due_now().expect("run_due_now");
    eng.run_due();
}

#[test]
fn manual_clock_moves_only_forward_and_only_when_told() {
    let clock = ManualClock::starting_at(at(T0));
    assert!(clock.is_manual());
    assert!(!SystemClock.is_manual());
    assert_eq!(clock.now(), at(T0));
    assert_eq!(clock.now(), at(T0), "reading does not move it");
    assert_eq!(clock.advance(Duration::from_millis(1500)), plus(1500));
    assert_eq!(clock.advance_to(plus(1000)), plus(1500), "never backwards");
    assert_eq!(clock.advance_to(plus(60_000)), plus(60_000));
    assert_eq!(clock.now(), plus(60_000));
    // JavaScript's times: fractional milliseconds, and far beyond 2262
    // (where nanoseconds since the epoch overflow an i64).
    assert_eq!(clock.advance_to_millis(ms(plus(60_000)) as f64 + 0.5), plus(60_000) + chrono::Duration::microseconds(500));
    let far = at("3000-01-01T00:00:00Z");
    assert_eq!(clock.advance_to_millis(ms(far) as f64), far);
    assert_eq!(clock.advance_to_millis(f64::NAN), far);
    assert_eq!(clock.advance_to_millis(1e300), DateTime::<Utc>::MAX_UTC);
    let now = ManualClock::new().now();
    assert_eq!(now.timestamp_subsec_nanos() % 1_000_000, 0, "the system start is a whole millisecond");
}

#[test]
fn delayed_job_runs_exactly_at_its_time() {
    let (h, eng, clock) = manual();
    let e = h.submit_cfg("t", json!({"mode": "deferred", "delayMs": 60_000}));
    assert!(h.take().is_empty(), "not before its time");
    assert_eq!(h.exec.next_due(), Some(ms(plus(60_000))));
    move_to(&h, &eng, &clock, plus(59_999));
    assert!(h.take().is_empty(), "1 ms early");
    assert_eq!(h.get(&e.execution_id).status, BackgroundExecutionStatus::Queued);
    assert_eq!(h.exec.next_due(), Some(ms(plus(60_000))));
    move_to(&h, &eng, &clock, plus(60_000));
    assert_eq!(h.take_ids(), vec![e.execution_id.clone()], "due exactly at queuedAt + delayMs");
    assert_eq!(h.get(&e.execution_id).started_at, Some(plus(60_000)));
}

#[test]
fn retry_backoff_elapses_only_on_the_manual_clock() {
    let (h, eng, clock) = manual();
    h.interest(&[EventKind::Retrying]);
    let e = h.submit(json!({"tenantId": "t", "callableName": "work", "config": {"retry": {"maxAttempts": 2, "backoffMs": 1000}}}));
    let d1 = h.take().pop().unwrap();
    h.complete_err(&d1, "boom");
    assert_eq!(events_of(&h.drain(), EventKind::Retrying, &e.execution_id).len(), 1);
    // The backoff is 1000 ms ±20 %: the retry is armed in that window.
    let due = h.exec.next_due().expect("the retry is armed");
    assert!((ms(plus(800))..=ms(plus(1200))).contains(&due), "due {} ms after T0", due - ms(plus(0)));
    move_to(&h, &eng, &clock, DateTime::from_timestamp_millis(due - 1).unwrap());
    assert!(h.take().is_empty(), "1 ms before the backoff elapsed");
    move_to(&h, &eng, &clock, DateTime::from_timestamp_millis(due).unwrap());
    let d2 = h.take().pop().expect("retried when the backoff elapsed");
    assert_eq!((d2.execution_id.as_str(), d2.attempt), (e.execution_id.as_str(), 2));
    h.complete_ok(&d2, json!("ok"));
    assert_eq!(h.get(&e.execution_id).status, BackgroundExecutionStatus::Completed);
}

#[test]
fn attempt_times_out_at_its_deadline() {
    let (h, eng, clock) = manual();
    h.interest(&[EventKind::Timeout]);
    let e = h.submit_cfg("t", json!({"timeoutMs": 5000, "retry": {"maxAttempts": 2, "backoffMs": 0}}));
    let d1 = h.take().pop().unwrap();
    assert_eq!(h.exec.next_due(), Some(ms(plus(5000))), "the deadline is armed");
    move_to(&h, &eng, &clock, plus(4999));
    assert!(aborts(&h.drain()).is_empty(), "not before the deadline");
    assert_eq!(h.exec.in_flight(), 1);
    move_to(&h, &eng, &clock, plus(5000));
    assert_eq!(aborts(&h.drain()), vec![(e.execution_id.clone(), 1)], "aborted at the deadline");
    // The timed-out attempt retries with no backoff: due now, and armed
    // by the same pass.
    assert_eq!(h.exec.next_due(), Some(ms(plus(5000))));
    h.exec.run_due_now().unwrap();
    let d2 = h.take().pop().expect("second attempt");
    assert_eq!(d2.attempt, 2);
    // Its late result is ignored; the second attempt also times out.
    h.complete_ok(&d1, json!("late"));
    assert_eq!(h.stats().stale_results, 1);
    move_to(&h, &eng, &clock, plus(10_000));
    let rec = h.get(&e.execution_id);
    assert_eq!(rec.status, BackgroundExecutionStatus::Timeout);
    assert_eq!(rec.error.as_ref().unwrap().message, "timed out after 5000 ms");
    assert_eq!(h.exec.next_due(), None, "nothing left to time");
}

#[test]
fn interval_ticks_fire_each_when_stepped_and_once_when_jumped() {
    let (h, eng, clock) = manual();
    let t = trig::reg(&eng, trig::schedule_def("t", json!({"intervalSeconds": 60})));
    assert_eq!(eng.next_due(), Some(ms(plus(60_000))), "aligned to the registration");
    // Step to each due tick: each fires, with its own scheduledAt.
    for i in 1..=3 {
        let next = eng.next_due().unwrap();
        move_to(&h, &eng, &clock, DateTime::from_timestamp_millis(next).unwrap());
        assert_eq!(execs_of(&h, &t.trigger_id).len(), i);
    }
    let sources: Vec<String> =
        execs_of(&h, &t.trigger_id).iter().map(|e| e.trigger_source.as_ref().unwrap()["scheduledAt"].as_str().unwrap().to_owned()).collect();
    assert_eq!(sources, vec![rfc(plus(60_000)), rfc(plus(120_000)), rfc(plus(180_000))]);
    // One jump over five ticks: a misfire (as after a stall); under the
    // default policy (fire_once) they coalesce into one fire for the
    // latest, and the schedule goes on from now.
    move_to(&h, &eng, &clock, plus(180_000 + 5 * 60_000));
    let execs = execs_of(&h, &t.trigger_id);
    assert_eq!(execs.len(), 4);
    let src = execs[3].trigger_source.as_ref().unwrap();
    assert_eq!((&src["scheduledAt"], &src["missedTicks"]), (&json!(rfc(plus(480_000))), &json!(5)));
    assert_eq!(eng.next_due(), Some(ms(plus(180_000 + 6 * 60_000))));
}

#[test]
fn cron_ticks_fire_at_minute_boundaries_on_the_manual_clock() {
    let (h, eng, clock) = manual();
    let t = trig::reg(&eng, trig::schedule_def("t", json!({"cronExpression": "* * * * *"})));
    let first = at("2026-01-15T10:01:00Z");
    assert_eq!(eng.next_due(), Some(ms(first)));
    move_to(&h, &eng, &clock, first - chrono::Duration::milliseconds(1));
    assert!(execs_of(&h, &t.trigger_id).is_empty(), "not before the minute");
    for i in 0..10 {
        let next = eng.next_due().unwrap();
        assert_eq!(next, ms(first) + i * 60_000);
        move_to(&h, &eng, &clock, DateTime::from_timestamp_millis(next).unwrap());
    }
    let execs = execs_of(&h, &t.trigger_id);
    assert_eq!(execs.len(), 10);
    assert_eq!(execs[9].trigger_source.as_ref().unwrap()["scheduledAt"], json!("2026-01-15T10:10:00.000Z"));
    assert_eq!(eng.get(&t.trigger_id).unwrap().fire_count, 10);
}

#[test]
fn cooldown_and_window_gates_read_the_manual_clock() {
    let (h, eng, clock) = manual();
    let cool = trig::reg(
        &eng,
        json!({"tenantId": "t", "type": "event", "condition": {"eventType": "ping"}, "action": {"callableName": "echo"}, "cooldownMs": 60_000}),
    );
    assert_eq!(trig::emit(&eng, "t", "ping", json!({})).len(), 1);
    move_to(&h, &eng, &clock, plus(59_999));
    assert!(trig::emit(&eng, "t", "ping", json!({})).is_empty(), "still cooling down");
    let refused = trig::err_of(eng.fire(&cool.trigger_id, None));
    assert_eq!(refused.code, ErrorCode::TriggerInactive);
    move_to(&h, &eng, &clock, plus(60_000));
    assert_eq!(trig::emit(&eng, "t", "ping", json!({})).len(), 1, "cooldown over");

    // startAt / endAt: not yet, then open, then expired.
    let window = trig::reg(
        &eng,
        json!({"tenantId": "t", "type": "manual", "action": {"callableName": "echo"},
               "startAt": rfc(plus(120_000)), "endAt": rfc(plus(180_000))}),
    );
    assert_eq!(trig::err_of(eng.fire(&window.trigger_id, None)).code, ErrorCode::TriggerInactive);
    move_to(&h, &eng, &clock, plus(120_000));
    assert!(eng.fire(&window.trigger_id, None).is_ok());
    move_to(&h, &eng, &clock, plus(180_001));
    assert_eq!(eng.get(&window.trigger_id).unwrap().status, TriggerStatus::Expired);
}

/// With a manual clock the timer and the scheduler do not run: however far
/// tokio's (paused) time goes, nothing comes due until the clock moves.
#[tokio::test(start_paused = true)]
async fn services_do_not_run_on_a_manual_clock() {
    let (h, eng, clock) = manual();
    h.exec.start();
    eng.start().unwrap();
    let e = h.submit_cfg("t", json!({"mode": "deferred", "delayMs": 1000}));
    let t = trig::reg(&eng, trig::schedule_def("t", json!({"intervalSeconds": 1})));
    assert!(!eng.has_schedules(), "manual ticks keep no host alive");
    advance_ms(10_000).await;
    assert!(h.take().is_empty());
    assert!(execs_of(&h, &t.trigger_id).is_empty());
    assert_eq!(h.host.wakes(), 0, "nothing woke the host");
    move_to(&h, &eng, &clock, plus(1000));
    let started = h.take_ids();
    assert!(started.contains(&e.execution_id), "{started:?}");
    assert_eq!(execs_of(&h, &t.trigger_id).len(), 1);
}
