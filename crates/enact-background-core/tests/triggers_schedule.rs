//! Schedule triggers on tokio's paused clock: cron (5, 6 fields, time
//! zones), intervals, missed ticks, maxFires, pause/resume, removal, and
//! the scheduler task running on its own.

mod common;
#[path = "common/triggers.rs"]
mod trig;

use std::time::Duration;

use common::*;
use enact_background_core::prelude::*;
use serde_json::json;
use trig::*;

/// Registration instant: a quarter second past a whole second, so ticks
/// are visibly aligned to the schedule, not to registration.
const T0: &str = "2026-01-15T10:00:00.250Z";

fn ms(s: &str) -> i64 {
    at(s).timestamp_millis()
}

async fn advance(d: Duration) {
    tokio::time::advance(d).await;
}

/// The tick sources of a trigger's executions, oldest first.
fn ticks(h: &Harness, id: &str) -> Vec<serde_json::Value> {
    execs_of(h, id).into_iter().map(|e| e.trigger_source.expect("tick source")).collect()
}

#[tokio::test(start_paused = true)]
async fn schedule_six_field_cron_fires_every_second() {
    let h = harness_at(at(T0));
    let eng = engine(&h);
    let t = reg(&eng, schedule_def("t", json!({"cronExpression": "* * * * * *"})));
    assert_eq!(eng.run_due(), Some(ms("2026-01-15T10:00:01Z")), "next tick is the next whole second");
    assert!(all_execs(&h).is_empty());
    for i in 1..=5 {
        advance(Duration::from_secs(1)).await;
        let next = eng.run_due();
        assert_eq!(next, Some(ms("2026-01-15T10:00:01Z") + i * 1000), "after tick {i}");
        assert_eq!(execs_of(&h, &t.trigger_id).len(), i as usize);
    }
    let srcs = ticks(&h, &t.trigger_id);
    assert_eq!(srcs.len(), 5);
    let mut last = String::new();
    for (i, s) in srcs.iter().enumerate() {
        let want = format!("2026-01-15T10:00:0{}.000Z", i + 1);
        assert_eq!(s, &json!({"type": "schedule", "scheduledAt": want, "cronExpression": "* * * * * *"}));
        let sa = s["scheduledAt"].as_str().unwrap().to_owned();
        assert!(sa > last, "strictly increasing");
        last = sa;
    }
    let execs = execs_of(&h, &t.trigger_id);
    assert!(execs.iter().all(|e| e.config.mode == ExecutionMode::Silent && e.callable_name == "work" && e.chain_depth == 1));
    let tr = eng.get(&t.trigger_id).unwrap();
    assert_eq!(tr.fire_count, 5);
    assert_eq!(tr.last_fired_at, Some(at("2026-01-15T10:00:05.250Z")));
}

#[tokio::test(start_paused = true)]
async fn schedule_run_due_before_the_tick_fires_nothing() {
    let h = harness_at(at(T0));
    let eng = engine(&h);
    let t = reg(&eng, schedule_def("t", json!({"cronExpression": "* * * * * *"})));
    advance(Duration::from_millis(749)).await; // 10:00:00.999
    assert_eq!(eng.run_due(), Some(ms("2026-01-15T10:00:01Z")));
    assert!(execs_of(&h, &t.trigger_id).is_empty());
    advance(Duration::from_millis(1)).await; // exactly the tick
    assert_eq!(eng.run_due(), Some(ms("2026-01-15T10:00:02Z")));
    assert_eq!(execs_of(&h, &t.trigger_id).len(), 1);
    // Calling again at the same instant does not fire the tick twice.
    assert_eq!(eng.run_due(), Some(ms("2026-01-15T10:00:02Z")));
    assert_eq!(execs_of(&h, &t.trigger_id).len(), 1);
}

#[tokio::test(start_paused = true)]
async fn schedule_five_field_cron_fires_at_minute_boundaries() {
    let h = harness_at(at(T0));
    let eng = engine(&h);
    let t = reg(&eng, schedule_def("t", json!({"cronExpression": "*/1 * * * *"})));
    assert_eq!(eng.run_due(), Some(ms("2026-01-15T10:01:00Z")));
    advance(Duration::from_secs(59)).await; // 10:00:59.250
    eng.run_due();
    assert!(execs_of(&h, &t.trigger_id).is_empty());
    advance(Duration::from_secs(1)).await; // 10:01:00.250
    assert_eq!(eng.run_due(), Some(ms("2026-01-15T10:02:00Z")));
    advance(Duration::from_secs(60)).await; // 10:02:00.250
    assert_eq!(eng.run_due(), Some(ms("2026-01-15T10:03:00Z")));
    let srcs = ticks(&h, &t.trigger_id);
    assert_eq!(srcs.len(), 2);
    assert_eq!(srcs[0], json!({"type": "schedule", "scheduledAt": "2026-01-15T10:01:00.000Z", "cronExpression": "*/1 * * * *"}));
    assert_eq!(srcs[1]["scheduledAt"], json!("2026-01-15T10:02:00.000Z"));
}

#[tokio::test(start_paused = true)]
async fn schedule_macro_hourly() {
    let h = harness_at(at(T0));
    let eng = engine(&h);
    let t = reg(&eng, schedule_def("t", json!({"cronExpression": "@hourly"})));
    assert_eq!(eng.run_due(), Some(ms("2026-01-15T11:00:00Z")));
    advance(Duration::from_secs(3600)).await;
    eng.run_due();
    assert_eq!(ticks(&h, &t.trigger_id), vec![json!({"type": "schedule", "scheduledAt": "2026-01-15T11:00:00.000Z", "cronExpression": "@hourly"})]);
}

#[tokio::test(start_paused = true)]
async fn schedule_seven_field_cron_with_year() {
    let h = harness_at(at(T0));
    let eng = engine(&h);
    let t = reg(&eng, schedule_def("t", json!({"cronExpression": "30 0 12 * * * 2027"})));
    assert_eq!(eng.run_due(), Some(ms("2027-01-01T12:00:30Z")), "no tick in 2026");
    advance(Duration::from_secs(3600)).await;
    eng.run_due();
    assert!(execs_of(&h, &t.trigger_id).is_empty());
}

#[tokio::test(start_paused = true)]
async fn schedule_interval_first_tick_after_one_interval() {
    let h = harness_at(at(T0));
    let eng = engine(&h);
    let t = reg(&eng, schedule_def("t", json!({"intervalSeconds": 60})));
    assert_eq!(eng.run_due(), Some(ms("2026-01-15T10:01:00.250Z")));
    advance(Duration::from_secs(59)).await;
    eng.run_due();
    assert!(execs_of(&h, &t.trigger_id).is_empty(), "not before 60 s");
    advance(Duration::from_secs(1)).await;
    assert_eq!(eng.run_due(), Some(ms("2026-01-15T10:02:00.250Z")));
    assert_eq!(ticks(&h, &t.trigger_id), vec![json!({"type": "schedule", "scheduledAt": "2026-01-15T10:01:00.250Z", "intervalSeconds": 60})]);
    advance(Duration::from_secs(60)).await;
    eng.run_due();
    assert_eq!(execs_of(&h, &t.trigger_id).len(), 2);
}

#[tokio::test(start_paused = true)]
async fn schedule_interval_is_anchored_at_start_at() {
    let h = harness_at(at(T0));
    let eng = engine(&h);
    let mut def = schedule_def("t", json!({"intervalSeconds": 10}));
    def["startAt"] = json!("2026-01-15T10:05:00Z");
    let t = reg(&eng, def);
    // Nothing until startAt.
    assert_eq!(eng.run_due(), Some(ms("2026-01-15T10:05:00Z")), "first tick at startAt");
    advance(Duration::from_secs(290)).await; // 10:04:50.250
    eng.run_due();
    assert!(execs_of(&h, &t.trigger_id).is_empty());
    advance(Duration::from_secs(20)).await; // 10:05:10.250
    eng.run_due();
    let srcs = ticks(&h, &t.trigger_id);
    assert_eq!(srcs.len(), 1, "one fire for the ticks due by now: {srcs:?}");
    // 10:05:00 and 10:05:10 were both due: a misfire, fired once (fire_once).
    assert_eq!(
        srcs[0],
        json!({"type": "schedule", "scheduledAt": "2026-01-15T10:05:10.000Z", "intervalSeconds": 10, "missedTicks": 2,
               "firstMissedAt": "2026-01-15T10:05:00.000Z", "lastMissedAt": "2026-01-15T10:05:10.000Z"})
    );
    assert_eq!(eng.run_due(), Some(ms("2026-01-15T10:05:20Z")));
}

#[tokio::test(start_paused = true)]
async fn schedule_missed_ticks_fire_once() {
    let h = harness_at(at(T0));
    let eng = engine(&h);
    let t = reg(&eng, schedule_def("t", json!({"cronExpression": "* * * * * *"})));
    advance(Duration::from_secs(10)).await; // 10:00:10.250, ten ticks missed
    let next = eng.run_due();
    assert_eq!(execs_of(&h, &t.trigger_id).len(), 1, "missed ticks fire once, not 10 times");
    let src = &ticks(&h, &t.trigger_id)[0];
    assert_eq!((&src["scheduledAt"], &src["missedTicks"]), (&json!("2026-01-15T10:00:10.000Z"), &json!(10)));
    assert_eq!((&src["firstMissedAt"], &src["lastMissedAt"]), (&json!("2026-01-15T10:00:01.000Z"), &json!("2026-01-15T10:00:10.000Z")));
    assert_eq!(next, Some(ms("2026-01-15T10:00:11Z")), "then the schedule resumes after now");
    assert_eq!(eng.run_due(), Some(ms("2026-01-15T10:00:11Z")));
    assert_eq!(execs_of(&h, &t.trigger_id).len(), 1);
    advance(Duration::from_secs(1)).await;
    eng.run_due();
    let srcs = ticks(&h, &t.trigger_id);
    assert_eq!(srcs.len(), 2);
    assert_eq!(srcs[1]["scheduledAt"], json!("2026-01-15T10:00:11.000Z"));
}

#[tokio::test(start_paused = true)]
async fn schedule_timezone_cron_in_winter_and_summer() {
    // Winter: Berlin is UTC+1, 09:00 local = 08:00Z.
    let h = harness_at(at("2026-01-15T06:00:00Z"));
    let eng = engine(&h);
    let t = reg(&eng, schedule_def("t", json!({"cronExpression": "0 0 9 * * *", "timezone": "Europe/Berlin"})));
    assert_eq!(t.condition.timezone.as_deref(), Some("Europe/Berlin"));
    assert_eq!(eng.run_due(), Some(ms("2026-01-15T08:00:00Z")));
    advance(Duration::from_secs(2 * 3600)).await;
    assert_eq!(eng.run_due(), Some(ms("2026-01-16T08:00:00Z")));
    assert_eq!(
        ticks(&h, &t.trigger_id),
        vec![json!({"type": "schedule", "scheduledAt": "2026-01-15T08:00:00.000Z", "cronExpression": "0 0 9 * * *"})]
    );

    // Summer: UTC+2, 09:00 local = 07:00Z.
    let h = harness_at(at("2026-07-15T06:00:00Z"));
    let eng = engine(&h);
    reg(&eng, schedule_def("t", json!({"cronExpression": "0 0 9 * * *", "timezone": "Europe/Berlin"})));
    assert_eq!(eng.run_due(), Some(ms("2026-07-15T07:00:00Z")));

    // Without a time zone: UTC.
    let h = harness_at(at("2026-01-15T06:00:00Z"));
    let eng = engine(&h);
    reg(&eng, schedule_def("t", json!({"cronExpression": "0 0 9 * * *"})));
    assert_eq!(eng.run_due(), Some(ms("2026-01-15T09:00:00Z")));
}

#[tokio::test(start_paused = true)]
async fn schedule_max_fires_stops_it() {
    let h = harness_at(at(T0));
    let eng = engine(&h);
    let mut def = schedule_def("t", json!({"cronExpression": "* * * * * *"}));
    def["maxFires"] = json!(2);
    let t = reg(&eng, def);
    for _ in 0..2 {
        advance(Duration::from_secs(1)).await;
        eng.run_due();
    }
    assert_eq!(execs_of(&h, &t.trigger_id).len(), 2);
    let tr = eng.get(&t.trigger_id).unwrap();
    assert_eq!((tr.status, tr.fire_count), (TriggerStatus::Fired, 2));
    assert_eq!(eng.run_due(), None, "a fired schedule is not re-armed");
    for _ in 0..3 {
        advance(Duration::from_secs(1)).await;
        eng.run_due();
    }
    assert_eq!(execs_of(&h, &t.trigger_id).len(), 2);
    assert_eq!(eng.get(&t.trigger_id).unwrap().fire_count, 2);
}

#[tokio::test(start_paused = true)]
async fn schedule_end_at_expires_it() {
    let h = harness_at(at(T0));
    let eng = engine(&h);
    let mut def = schedule_def("t", json!({"cronExpression": "* * * * * *"}));
    def["endAt"] = json!("2026-01-15T10:00:02.500Z");
    let t = reg(&eng, def);
    for _ in 0..5 {
        advance(Duration::from_secs(1)).await;
        eng.run_due();
    }
    let srcs = ticks(&h, &t.trigger_id);
    assert_eq!(srcs.iter().map(|s| s["scheduledAt"].clone()).collect::<Vec<_>>(), vec![json!("2026-01-15T10:00:01.000Z"), json!("2026-01-15T10:00:02.000Z")]);
    assert_eq!(eng.get(&t.trigger_id).unwrap().status, TriggerStatus::Expired);
}

#[tokio::test(start_paused = true)]
async fn schedule_paused_produces_nothing_until_resumed() {
    let h = harness_at(at(T0));
    let eng = engine(&h);
    let t = reg(&eng, schedule_def("t", json!({"cronExpression": "* * * * * *"})));
    eng.pause(&t.trigger_id).unwrap();
    for _ in 0..3 {
        advance(Duration::from_secs(1)).await;
        eng.run_due();
    }
    assert!(execs_of(&h, &t.trigger_id).is_empty(), "paused: no executions");
    assert_eq!(eng.get(&t.trigger_id).unwrap().fire_count, 0);
    eng.resume(&t.trigger_id).unwrap();
    advance(Duration::from_secs(1)).await; // 10:00:04.250
    eng.run_due();
    let srcs = ticks(&h, &t.trigger_id);
    assert_eq!(srcs.len(), 1, "ticks again after resume");
    assert_eq!(srcs[0]["scheduledAt"], json!("2026-01-15T10:00:04.000Z"));
    advance(Duration::from_secs(1)).await;
    eng.run_due();
    assert_eq!(execs_of(&h, &t.trigger_id).len(), 2);
}

#[tokio::test(start_paused = true)]
async fn schedule_removed_stops() {
    let h = harness_at(at(T0));
    let eng = engine(&h);
    let t = reg(&eng, schedule_def("t", json!({"cronExpression": "* * * * * *"})));
    advance(Duration::from_secs(1)).await;
    eng.run_due();
    assert_eq!(execs_of(&h, &t.trigger_id).len(), 1);
    eng.remove(&t.trigger_id).unwrap();
    for _ in 0..3 {
        advance(Duration::from_secs(1)).await;
        eng.run_due();
    }
    assert_eq!(execs_of(&h, &t.trigger_id).len(), 1, "no ticks after removal");
    assert_eq!(eng.run_due(), None, "no timer left");
}

#[tokio::test(start_paused = true)]
async fn schedule_update_recompiles_the_schedule() {
    let h = harness_at(at(T0));
    let eng = engine(&h);
    let t = reg(&eng, schedule_def("t", json!({"cronExpression": "* * * * * *"})));
    eng.update(&t.trigger_id, &json!({"condition": {"cronExpression": "*/10 * * * * *"}})).unwrap();
    for _ in 0..12 {
        advance(Duration::from_secs(1)).await;
        eng.run_due();
    }
    // Only the new expression ticks (10:00:10), the old every-second timer is gone.
    let srcs = ticks(&h, &t.trigger_id);
    assert_eq!(srcs, vec![json!({"type": "schedule", "scheduledAt": "2026-01-15T10:00:10.000Z", "cronExpression": "*/10 * * * * *"})]);
}

#[tokio::test(start_paused = true)]
async fn schedule_scheduler_task_ticks_on_its_own() {
    let h = harness_at(at(T0));
    let eng = engine(&h);
    // One trigger already in the store (as after a restart), one
    // registered through the engine before start.
    let stored = enact_background_core::validate::trigger_definition(
        &json!({"triggerId": "trigger_stored", "tenantId": "t", "type": "schedule", "condition": {"cronExpression": "* * * * * *"}, "action": {"callableName": "work"}}),
        now(&h),
    )
    .unwrap();
    common::ready(h.store.insert_trigger(stored));
    let t = reg(&eng, schedule_def("t", json!({"cronExpression": "* * * * * *"})));
    let task = eng.start().expect("start");
    // Paused time: the runtime jumps from timer to timer, no real waiting.
    tokio::time::sleep(Duration::from_millis(2500)).await; // 10:00:02.750
    let a = ticks(&h, &t.trigger_id);
    let b = ticks(&h, "trigger_stored");
    let want = vec![json!("2026-01-15T10:00:01.000Z"), json!("2026-01-15T10:00:02.000Z")];
    assert_eq!(a.iter().map(|s| s["scheduledAt"].clone()).collect::<Vec<_>>(), want, "registered trigger");
    assert_eq!(b.iter().map(|s| s["scheduledAt"].clone()).collect::<Vec<_>>(), want, "stored trigger");
    // A trigger registered while the task sleeps is picked up.
    let late = reg(&eng, schedule_def("t", json!({"cronExpression": "* * * * * *"})));
    tokio::time::sleep(Duration::from_secs(1)).await; // 10:00:03.750
    assert_eq!(ticks(&h, &late.trigger_id).len(), 1);
    assert_eq!(ticks(&h, &t.trigger_id).len(), 3);
    assert!(h.host.wakes() >= 1, "the host was woken for scheduled work");
    eng.stop();
    tokio::time::timeout(Duration::from_secs(5), task).await.expect("the scheduler ends after stop").unwrap();
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(ticks(&h, &t.trigger_id).len(), 3, "no ticks after stop");
}
