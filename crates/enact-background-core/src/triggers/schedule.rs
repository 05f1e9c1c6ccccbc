//! The scheduler: one loop that sleeps until the next schedule tick is due
//! and fires every tick due by then. Each tick goes through the store's
//! fire step with its `scheduledAt` as the cursor, so a tick fires once
//! however many schedulers see it.

use std::cmp::Reverse;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use chrono::{DateTime, SecondsFormat};
use serde_json::{json, Value};

use super::firing::Refused;
use super::index::Schedule;
use super::TriggerEngine;
use crate::clock::millis;
use crate::error::{EngineResult, ErrorCode};
use crate::model::{Chain, MisfirePolicy, Timestamp, TriggerStatus};
use crate::store::{ready_now, Blocked, FireGate, Signal};

/// Under [`MisfirePolicy::Skip`], how late the latest due tick may be and
/// still fire: it is due now (the scheduler's usual wake-up lag), not
/// missed.
pub const ON_TIME_MS: i64 = 1_000;

/// Over a shared store, schedule fires in flight at once per engine (the
/// store's pool has 8 connections).
const SHARED_FIRES: usize = 8;

impl TriggerEngine {
    /// Fires every schedule tick due by now (the store must answer at
    /// once); returns the next due time. When more than one tick of a
    /// trigger is due at once (a misfire: the process was down, its
    /// scheduler stalled, or a manual clock moved past several ticks in one
    /// jump), its misfire policy applies: `fire_once` (the default) fires
    /// once, for the latest due tick, with `missedTicks` (how many ticks
    /// were due, that one included), `firstMissedAt` and `lastMissedAt`
    /// (its `scheduledAt`) in the tick's source; `skip` fires nothing,
    /// unless the latest due tick is less than [`ON_TIME_MS`] old (then it
    /// fires as a plain tick). Either way the next tick is the first after
    /// now. Each fired tick is claimed per `(trigger, scheduledAt)` through
    /// the store's fire step, so it fires once. To fire each tick of a
    /// manual clock, move it in steps: to [`TriggerEngine::next_due`], call
    /// this, repeat (the Node facade's `advanceTime` does).
    pub fn run_due(self: &Arc<Self>) -> Option<i64> {
        let me = self.clone();
        ready_now(async move { Ok(me.run_due_async().await) }).unwrap_or(None)
    }

    /// [`TriggerEngine::run_due`] for any store.
    pub async fn run_due_async(&self) -> Option<i64> {
        let now_ms = millis(self.clock.now());
        let mut due = Vec::new();
        {
            let mut g = self.state.lock();
            while let Some(Reverse((at, _, _))) = g.timers.peek() {
                if *at > now_ms {
                    break;
                }
                let Reverse((at, generation, id)) = g.timers.pop().expect("peeked");
                match g.compiled.get(&id) {
                    Some(c) if c.generation == generation => due.push((at, c.clone())),
                    _ => {} // removed or recompiled: a stale timer
                }
            }
        }
        let fired_any = !due.is_empty();
        let mut stamp: Option<(i64, Value)> = None;
        let mut format = |at: i64| {
            // Ticks come due in bursts at one instant: format it once.
            if stamp.as_ref().is_none_or(|(t, _)| *t != at) {
                stamp = Some((at, Value::String(rfc3339(DateTime::from_timestamp_millis(at).unwrap_or_default()))));
            }
            stamp.as_ref().map(|(_, s)| s.clone()).expect("set above")
        };
        // What each due trigger fires (its tick and source), then the fires:
        // one after another over a store that answers at once, a few at a
        // time over a shared one (each is a transaction there, and every
        // engine fires every tick: one wins, the others find it taken).
        let mut planned = Vec::with_capacity(due.len());
        for (at, c) in due {
            let schedule = c.schedule.as_ref().expect("timers belong to schedule triggers");
            // Every tick from `at` to `last` is due: more than one is a
            // misfire (the process was down, or the scheduler stalled).
            let (last, count) = schedule.due_through(at, now_ms);
            let tick = match (count, c.misfire) {
                (1, _) => Some((at, None)),
                (_, MisfirePolicy::FireOnce) => Some((last, Some((at, count)))),
                // The latest tick is due now, not missed: it fires alone.
                (_, MisfirePolicy::Skip) if now_ms - last < ON_TIME_MS => Some((last, None)),
                (_, MisfirePolicy::Skip) => None,
            };
            let fire = tick.map(|(tick, missed)| {
                let mut source = json!({ "type": "schedule", "scheduledAt": format(tick) });
                match schedule {
                    Schedule::Cron(_, _, text) => source["cronExpression"] = json!(text),
                    Schedule::Interval { secs, .. } => source["intervalSeconds"] = json!(secs),
                }
                if let Some((first, count)) = missed {
                    source["missedTicks"] = json!(count);
                    source["firstMissedAt"] = format(first);
                    source["lastMissedAt"] = format(tick);
                }
                (tick, source)
            });
            planned.push((c, last, fire));
        }
        let parallel = if self.driver.shared() {
            // Every engine fires every tick; each in its own order, so that
            // they mostly take different triggers first and find the rest
            // taken (a cheap read) instead of queueing on the same row locks.
            fastrand::shuffle(&mut planned);
            SHARED_FIRES
        } else {
            1
        };
        let mut n = 0usize;
        for chunk in planned.chunks(parallel) {
            let fires = chunk.iter().map(|(c, _, fire)| async move {
                match fire {
                    Some((tick, source)) => Some(self.fire_with_status(c, source.clone(), &Chain::default(), FireGate::Tick(*tick), None).await),
                    None => None,
                }
            });
            let results = futures_util::future::join_all(fires).await;
            for ((c, last, _), result) in chunk.iter().zip(results) {
                // With thousands of ticks due at once, let the host start
                // the first executions while the rest are still being fired.
                n += 1;
                if n % 256 == 255 {
                    self.exec.wake();
                }
                // A trigger that is gone, fired out or expired ticks no
                // more; a paused or disabled one keeps its timer (ticks are
                // refused by the gate) so that resuming needs no re-arming.
                // A store failure skips this tick with a diagnostic; the
                // schedule goes on.
                let finished = |s: TriggerStatus| matches!(s, TriggerStatus::Fired | TriggerStatus::Expired);
                match result {
                    Some(Ok(Err(Refused::Gone))) => continue,
                    Some(Ok(Err(Refused::Blocked(Blocked::Inactive(s))))) | Some(Ok(Ok((_, s)))) if finished(s) => continue,
                    Some(Err(e)) if e.code != ErrorCode::Shutdown => self.exec.diagnose("schedule", e),
                    _ => {}
                }
                // The next tick is the first after now.
                let schedule = c.schedule.as_ref().expect("timers belong to schedule triggers");
                if let Some(next) = schedule.next_after((*last).max(now_ms)) {
                    self.state.lock().timers.push(Reverse((next, c.generation, c.id.clone())));
                }
            }
        }
        if fired_any {
            self.exec.wake();
        }
        self.state.lock().timers.peek().map(|Reverse((at, _, _))| *at)
    }

    pub(super) async fn schedule_loop(self: Arc<Self>) {
        loop {
            if self.stopped.load(Ordering::SeqCst) {
                return;
            }
            let next = self.run_due_async().await;
            let sleep = match next {
                None => std::time::Duration::from_secs(3600),
                Some(at) => crate::clock::until(self.clock.now(), DateTime::from_timestamp_millis(at).unwrap_or_default()),
            };
            tokio::select! {
                _ = tokio::time::sleep(sleep) => {}
                _ = self.kick.notified() => {}
            }
        }
    }

    /// Applies the store's trigger changes to the compiled indexes —
    /// triggers registered, changed or removed by other engines sharing
    /// the store — when the store signals them ([`Signal::Triggers`], or
    /// [`Signal::Lost`]) and every `period` in any case.
    pub(super) async fn listen_loop(self: Arc<Self>, period: std::time::Duration, mut signals: Option<tokio::sync::broadcast::Receiver<Signal>>) {
        use tokio::sync::broadcast::error::RecvError;
        let mut next_poll = tokio::time::Instant::now() + period;
        loop {
            // Registered before the flag is read, so that a stop made
            // while the listener was busy is not lost (see `pause` in the
            // executor's services).
            let stop = self.stop_listening.notified();
            tokio::pin!(stop);
            stop.as_mut().enable();
            if self.stopped.load(Ordering::SeqCst) {
                return;
            }
            let signal = async {
                match signals.as_mut() {
                    Some(rx) => rx.recv().await,
                    None => std::future::pending().await,
                }
            };
            let sync = tokio::select! {
                _ = tokio::time::sleep_until(next_poll) => {
                    next_poll = tokio::time::Instant::now() + period;
                    true
                }
                s = signal => match s {
                    Ok(Signal::Triggers | Signal::Lost) | Err(RecvError::Lagged(_)) => true,
                    Ok(_) => false,
                    Err(RecvError::Closed) => {
                        signals = None;
                        false
                    }
                },
                _ = stop => false,
            };
            if self.stopped.load(Ordering::SeqCst) {
                return;
            }
            if !sync {
                continue;
            }
            if let Err(e) = self.sync_changes_async().await {
                self.exec.diagnose("listener", e);
                self.exec.wake();
            }
        }
    }

    /// Applies the store's trigger changes since the last call (the store
    /// must answer at once); returns how many triggers were re-read.
    pub fn sync_changes(self: &Arc<Self>) -> EngineResult<usize> {
        let me = self.clone();
        ready_now(async move { me.sync_changes_async().await })
    }
}

pub(super) fn rfc3339(t: Timestamp) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}
