//! Schedules after downtime (issue 12): the misfire policy of a schedule
//! trigger (`condition.misfirePolicy`, `fire_once` by default, or `skip`).
//!
//! A restart is two engines over one memory store and one manual clock:
//! the first registers the trigger and fires its ticks, then stops (the
//! process dies); the clock moves on; the second starts over the same
//! store, as a process does over a durable one, loads the trigger and arms
//! it from where it stopped, so the ticks missed meanwhile come due at its
//! first `run_due`. A stall (a manual clock jumping over several ticks in
//! one engine) is the same misfire without the restart.

mod common;
#[path = "common/triggers.rs"]
mod trig;

use std::sync::Arc;

use common::*;
use enact_background_core::prelude::*;
use serde_json::{json, Value};
use trig::{assert_invalid, at, schedule_def};

/// One process: an executor and a trigger engine over the shared store
/// and clock.
struct Process {
    exec: Arc<Executor>,
    eng: Arc<TriggerEngine>,
}

fn start(store: &MemoryStore, clock: &Arc<ManualClock>) -> Process {
    let exec = Executor::new(Arc::new(store.clone()), clock.clone(), Arc::new(CountingHost::default()), config(4));
    exec.register_callable("work").unwrap();
    let eng = TriggerEngine::new(exec.clone(), TriggerConfig::default());
    eng.start().unwrap();
    Process { exec, eng }
}

impl Process {
    fn move_to(&self, clock: &ManualClock, t: &str) {
        clock.advance_to(at(t));
        self.exec.run_due_now().unwrap();
        self.eng.run_due();
    }

    /// The tick sources of the executions of trigger `id`, oldest first.
    fn ticks(&self, id: &str) -> Vec<Value> {
        self.exec
            .list(&ExecutionFilter::default())
            .unwrap()
            .into_iter()
            .filter(|e| e.trigger_id.as_deref() == Some(id))
            .map(|e| e.trigger_source.expect("a tick source"))
            .collect()
    }

    fn stop(self) {
        self.eng.stop();
    }
}

fn ms(t: &str) -> i64 {
    at(t).timestamp_millis()
}

fn tick(at: &str) -> Value {
    json!({"type": "schedule", "scheduledAt": at, "cronExpression": "* * * * *"})
}

fn per_minute(policy: Option<&str>) -> Value {
    let mut cond = json!({"cronExpression": "* * * * *"});
    if let Some(p) = policy {
        cond["misfirePolicy"] = json!(p);
    }
    schedule_def("t", cond)
}

/// Registers a per-minute cron at 10:00:30, fires its 10:01 tick, and
/// stops at 10:01:10 (the process dies); the clock then reads `back_at`.
fn down_after_ten_past_one(policy: Option<&str>, back_at: &str) -> (MemoryStore, Arc<ManualClock>, String) {
    let store = MemoryStore::new();
    let clock = Arc::new(ManualClock::starting_at(at("2026-01-15T10:00:30Z")));
    let first = start(&store, &clock);
    let id = first.eng.register(&per_minute(policy)).unwrap().trigger_id;
    first.move_to(&clock, "2026-01-15T10:01:00Z");
    assert_eq!(first.ticks(&id), vec![tick("2026-01-15T10:01:00.000Z")]);
    first.move_to(&clock, "2026-01-15T10:01:10Z");
    first.stop();
    clock.advance_to(at(back_at));
    (store, clock, id)
}

#[tokio::test]
async fn misfire_fire_once_fires_once_after_five_minutes_down_then_keeps_its_schedule() {
    // Down from 10:01:10 to 10:06:30: the ticks 10:02 … 10:06 were missed.
    let (store, clock, id) = down_after_ten_past_one(Some("fire_once"), "2026-01-15T10:06:30Z");
    let back = start(&store, &clock);
    assert_eq!(back.eng.next_due(), Some(ms("2026-01-15T10:02:00Z")), "armed from where it stopped");
    assert_eq!(back.eng.run_due(), Some(ms("2026-01-15T10:07:00Z")), "then the first tick after now");
    let ticks = back.ticks(&id);
    assert_eq!(ticks.len(), 2, "one fire for the five missed ticks: {ticks:?}");
    assert_eq!(
        ticks[1],
        json!({"type": "schedule", "scheduledAt": "2026-01-15T10:06:00.000Z", "cronExpression": "* * * * *",
               "missedTicks": 5, "firstMissedAt": "2026-01-15T10:02:00.000Z", "lastMissedAt": "2026-01-15T10:06:00.000Z"})
    );
    // The schedule goes on: the next tick fires as a plain one.
    back.move_to(&clock, "2026-01-15T10:07:00Z");
    assert_eq!(back.ticks(&id)[2], tick("2026-01-15T10:07:00.000Z"));
    assert_eq!(back.eng.get(&id).unwrap().fire_count, 3);
}

#[tokio::test]
async fn misfire_default_policy_is_fire_once() {
    let (store, clock, id) = down_after_ten_past_one(None, "2026-01-15T10:06:30Z");
    let back = start(&store, &clock);
    back.eng.run_due();
    let ticks = back.ticks(&id);
    assert_eq!(ticks.len(), 2);
    assert_eq!((&ticks[1]["scheduledAt"], &ticks[1]["missedTicks"]), (&json!("2026-01-15T10:06:00.000Z"), &json!(5)));
    assert!(back.eng.get(&id).unwrap().condition.misfire_policy.is_none(), "the default is not written into the trigger");
}

#[tokio::test]
async fn misfire_skip_fires_nothing_after_five_minutes_down_then_keeps_its_schedule() {
    let (store, clock, id) = down_after_ten_past_one(Some("skip"), "2026-01-15T10:06:30Z");
    let back = start(&store, &clock);
    assert_eq!(back.eng.run_due(), Some(ms("2026-01-15T10:07:00Z")));
    assert_eq!(back.ticks(&id).len(), 1, "nothing for 10:02 … 10:06");
    back.move_to(&clock, "2026-01-15T10:07:00Z");
    assert_eq!(back.ticks(&id), vec![tick("2026-01-15T10:01:00.000Z"), tick("2026-01-15T10:07:00.000Z")]);
    assert_eq!(back.eng.get(&id).unwrap().fire_count, 2);
}

#[tokio::test]
async fn misfire_skip_still_fires_the_tick_due_now() {
    // Back less than a second after 10:06: that tick is due now, not
    // missed; 10:02 … 10:05 are skipped.
    let (store, clock, id) = down_after_ten_past_one(Some("skip"), "2026-01-15T10:06:00.400Z");
    let back = start(&store, &clock);
    assert_eq!(back.eng.run_due(), Some(ms("2026-01-15T10:07:00Z")));
    assert_eq!(back.ticks(&id), vec![tick("2026-01-15T10:01:00.000Z"), tick("2026-01-15T10:06:00.000Z")]);
    // A second after it, it is missed too.
    let (store, clock, id) = down_after_ten_past_one(Some("skip"), "2026-01-15T10:06:01Z");
    let back = start(&store, &clock);
    back.eng.run_due();
    assert_eq!(back.ticks(&id).len(), 1);
}

#[tokio::test]
async fn misfire_one_missed_tick_fires_as_a_plain_tick_under_both_policies() {
    // Down from 10:01:10 to 10:02:30: only 10:02 was due.
    for policy in ["fire_once", "skip"] {
        let (store, clock, id) = down_after_ten_past_one(Some(policy), "2026-01-15T10:02:30Z");
        let back = start(&store, &clock);
        assert_eq!(back.eng.run_due(), Some(ms("2026-01-15T10:03:00Z")), "{policy}");
        assert_eq!(back.ticks(&id), vec![tick("2026-01-15T10:01:00.000Z"), tick("2026-01-15T10:02:00.000Z")], "{policy}");
    }
}

#[tokio::test]
async fn misfire_fire_is_claimed_once_when_two_engines_come_back_together() {
    let (store, clock, id) = down_after_ten_past_one(Some("fire_once"), "2026-01-15T10:06:30Z");
    let a = start(&store, &clock);
    let b = start(&store, &clock);
    a.eng.run_due();
    b.eng.run_due();
    a.eng.run_due();
    let ticks = a.ticks(&id);
    assert_eq!(ticks.len(), 2, "the 10:06 tick is claimed once: {ticks:?}");
    assert_eq!(a.eng.get(&id).unwrap().fire_count, 2);
    // And each goes on to claim the next tick once between them.
    clock.advance_to(at("2026-01-15T10:07:00Z"));
    b.eng.run_due();
    a.eng.run_due();
    assert_eq!(a.ticks(&id).len(), 3);
}

#[tokio::test]
async fn misfire_a_restart_with_nothing_missed_fires_nothing() {
    // Back at 10:01:40, before the 10:02 tick.
    let (store, clock, id) = down_after_ten_past_one(None, "2026-01-15T10:01:40Z");
    let back = start(&store, &clock);
    assert_eq!(back.eng.run_due(), Some(ms("2026-01-15T10:02:00Z")));
    assert_eq!(back.ticks(&id).len(), 1);
}

#[tokio::test]
async fn misfire_a_paused_trigger_stays_quiet_after_downtime() {
    let (store, clock, id) = down_after_ten_past_one(None, "2026-01-15T10:01:20Z");
    let p = start(&store, &clock);
    p.eng.pause(&id).unwrap();
    p.stop();
    clock.advance_to(at("2026-01-15T10:06:30Z"));
    let back = start(&store, &clock);
    back.eng.run_due();
    assert_eq!(back.ticks(&id).len(), 1, "the gate refuses the misfire of a paused trigger");
    back.eng.resume(&id).unwrap();
    assert_eq!(back.eng.next_due(), Some(ms("2026-01-15T10:07:00Z")), "resuming arms the next tick, not the paused ones");
}

#[test]
fn misfire_stall_on_one_engine_follows_the_policy() {
    // No restart: the clock jumps over five interval ticks at once.
    let store = MemoryStore::new();
    let clock = Arc::new(ManualClock::starting_at(at("2026-01-15T10:00:00Z")));
    let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
    let _guard = rt.enter();
    let p = start(&store, &clock);
    let once = p.eng.register(&schedule_def("t", json!({"intervalSeconds": 60}))).unwrap().trigger_id;
    let skip = p.eng.register(&schedule_def("t", json!({"intervalSeconds": 60, "misfirePolicy": "skip"}))).unwrap().trigger_id;
    p.move_to(&clock, "2026-01-15T10:05:30Z");
    assert_eq!(
        p.ticks(&once),
        vec![json!({"type": "schedule", "scheduledAt": "2026-01-15T10:05:00.000Z", "intervalSeconds": 60, "missedTicks": 5,
                    "firstMissedAt": "2026-01-15T10:01:00.000Z", "lastMissedAt": "2026-01-15T10:05:00.000Z"})]
    );
    assert!(p.ticks(&skip).is_empty());
    p.move_to(&clock, "2026-01-15T10:06:00Z");
    assert_eq!(p.ticks(&once).len(), 2);
    assert_eq!(p.ticks(&skip), vec![json!({"type": "schedule", "scheduledAt": "2026-01-15T10:06:00.000Z", "intervalSeconds": 60})]);
}

#[test]
fn misfire_a_long_outage_of_a_per_second_cron_is_counted() {
    // A day of a per-second cron: 86,400 ticks, counted one by one.
    let store = MemoryStore::new();
    let clock = Arc::new(ManualClock::starting_at(at("2026-01-15T10:00:00.500Z")));
    let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
    let _guard = rt.enter();
    let p = start(&store, &clock);
    let id = p.eng.register(&schedule_def("t", json!({"cronExpression": "* * * * * *"}))).unwrap().trigger_id;
    p.move_to(&clock, "2026-01-16T10:00:00.500Z");
    let ticks = p.ticks(&id);
    assert_eq!(ticks.len(), 1);
    assert_eq!(ticks[0]["missedTicks"], json!(86_400));
    assert_eq!(ticks[0]["firstMissedAt"], json!("2026-01-15T10:00:01.000Z"));
    assert_eq!(ticks[0]["lastMissedAt"], json!("2026-01-16T10:00:00.000Z"));
    assert_eq!(p.eng.next_due(), Some(ms("2026-01-16T10:00:01Z")));
    // Over two days the count stops at its cap; the latest tick is still exact.
    p.move_to(&clock, "2026-01-18T10:00:00.500Z");
    let last = p.ticks(&id).pop().unwrap();
    assert_eq!(last["missedTicks"], json!(100_000));
    assert_eq!(last["lastMissedAt"], json!("2026-01-18T10:00:00.000Z"));
    assert_eq!(p.eng.next_due(), Some(ms("2026-01-18T10:00:01Z")));
}

#[test]
fn misfire_policy_is_validated_stored_and_returned() {
    let store = MemoryStore::new();
    let clock = Arc::new(ManualClock::starting_at(at("2026-01-15T10:00:00Z")));
    let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
    let _guard = rt.enter();
    let p = start(&store, &clock);
    let t = p.eng.register(&per_minute(Some("skip"))).unwrap();
    assert_eq!(t.condition.misfire_policy, Some(MisfirePolicy::Skip));
    let v = serde_json::to_value(p.eng.get(&t.trigger_id).unwrap()).unwrap();
    assert_eq!(v["condition"], json!({"cronExpression": "* * * * *", "misfirePolicy": "skip"}));
    let once = p.eng.register(&per_minute(Some("fire_once"))).unwrap();
    assert_eq!(once.condition.misfire_policy, Some(MisfirePolicy::FireOnce));
    let plain = p.eng.register(&per_minute(None)).unwrap();
    assert!(serde_json::to_value(&plain).unwrap()["condition"].get("misfirePolicy").is_none(), "omitted when unset");
    // Changed and removed with a merge patch.
    let t = p.eng.update(&t.trigger_id, &json!({"condition": {"misfirePolicy": "fire_once"}})).unwrap();
    assert_eq!(t.condition.misfire_policy, Some(MisfirePolicy::FireOnce));
    let t = p.eng.update(&t.trigger_id, &json!({"condition": {"misfirePolicy": null}})).unwrap();
    assert_eq!(t.condition.misfire_policy, None);
    assert_invalid(
        p.eng.update(&t.trigger_id, &json!({"condition": {"misfirePolicy": "catch_up"}})),
        "condition.misfirePolicy: expected one of fire_once, skip, got \"catch_up\"",
    );

    // Other values, and other trigger types.
    assert_invalid(p.eng.register(&per_minute(Some("later"))), "condition.misfirePolicy: expected one of fire_once, skip, got \"later\"");
    let mut bad = per_minute(None);
    bad["condition"]["misfirePolicy"] = json!(true);
    assert_invalid(p.eng.register(&bad), "condition.misfirePolicy: expected one of fire_once, skip, got");
    let event = json!({"tenantId": "t", "type": "event", "condition": {"eventType": "x", "misfirePolicy": "skip"}, "action": {"callableName": "work"}});
    assert_invalid(p.eng.register(&event), "condition.misfirePolicy: only applies to schedule triggers, not event");
    let manual = json!({"tenantId": "t", "type": "manual", "condition": {"misfirePolicy": "fire_once"}, "action": {"callableName": "work"}});
    assert_invalid(p.eng.register(&manual), "condition.misfirePolicy: only applies to schedule triggers, not manual");
}
