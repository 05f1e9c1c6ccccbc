//! Trigger records as the API answers them: the stored [`Trigger`] and what
//! only the engine knows about it — for an active schedule trigger, when it
//! fires next (`nextFireAt`), from the scheduler's own timers.

use std::collections::HashMap;
use std::sync::Arc;

use chrono::DateTime;
use serde::Serialize;

use super::index::Compiled;
use super::TriggerEngine;
use crate::clock::millis;
use crate::model::{Timestamp, Trigger, TriggerStatus, TriggerType};
use crate::store::refresh_status;

/// A trigger as `getTrigger`, `listTriggers`, `registerTrigger` and the
/// update calls answer it: the stored trigger's fields, and the extension
/// `nextFireAt` (omitted when unset, so enact-core still reads it).
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TriggerRecord {
    /// The stored trigger.
    #[serde(flatten)]
    pub trigger: Trigger,
    /// Extension: when an active schedule trigger fires next (see
    /// [`TriggerEngine::next_fire_at`]); `None` for other types and for
    /// triggers that will not fire again.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_fire_at: Option<Timestamp>,
}

impl TriggerEngine {
    /// When schedule trigger `t` fires next, by the engine's clock: the tick
    /// its scheduler has armed (its first tick after now, or a tick due and
    /// about to fire), in the schedule's time zone; a tick inside the
    /// cooldown after `lastFiredAt` would be refused, so the first tick
    /// after the cooldown is answered instead. `None` for other types, for
    /// a trigger that is not `active` (paused, disabled, fired, expired,
    /// or past `endAt` / at `maxFires` now) and when the next tick falls
    /// after `endAt` or there is none.
    pub fn next_fire_at(&self, t: &Trigger) -> Option<Timestamp> {
        if t.trigger_type != TriggerType::Schedule {
            return None;
        }
        let armed = self.armed_ticks(std::iter::once(t.trigger_id.as_str()));
        self.next_fire_with(t, &armed)
    }

    /// `t` with its [`TriggerEngine::next_fire_at`].
    pub fn record(&self, t: Trigger) -> TriggerRecord {
        let next_fire_at = self.next_fire_at(&t);
        TriggerRecord { trigger: t, next_fire_at }
    }

    /// [`TriggerEngine::record`] of each, reading the scheduler's timers
    /// once for all of them.
    pub fn records(&self, list: Vec<Trigger>) -> Vec<TriggerRecord> {
        let schedules = list.iter().filter(|t| t.trigger_type == TriggerType::Schedule).map(|t| t.trigger_id.as_str());
        let armed = self.armed_ticks(schedules);
        list.into_iter()
            .map(|t| {
                let next_fire_at = self.next_fire_with(&t, &armed);
                TriggerRecord { trigger: t, next_fire_at }
            })
            .collect()
    }

    /// The tick armed in the scheduler's timer heap for each of `ids` (of
    /// its current compilation: stale entries of older ones are skipped).
    fn armed_ticks<'a>(&self, ids: impl Iterator<Item = &'a str>) -> HashMap<Arc<str>, i64> {
        let g = self.state.lock();
        let wanted: HashMap<Arc<str>, u64> = ids.filter_map(|id| g.compiled.get(id).map(|c| (c.id.clone(), c.generation))).collect();
        let mut out: HashMap<Arc<str>, i64> = HashMap::new();
        if wanted.is_empty() {
            return out;
        }
        for std::cmp::Reverse((at, generation, id)) in g.timers.iter() {
            if wanted.get(id) == Some(generation) {
                let due = out.entry(id.clone()).or_insert(*at);
                *due = (*due).min(*at);
            }
        }
        out
    }

    fn next_fire_with(&self, t: &Trigger, armed: &HashMap<Arc<str>, i64>) -> Option<Timestamp> {
        if t.trigger_type != TriggerType::Schedule {
            return None;
        }
        let now = self.clock.now();
        let mut probe = t.clone();
        refresh_status(&mut probe, now);
        if probe.status != TriggerStatus::Active {
            return None;
        }
        let c = match self.state.lock().compiled.get(t.trigger_id.as_str()) {
            Some(c) => c.clone(),
            // Not indexed here (yet): another engine registered it.
            None => Arc::new(Compiled::new(t, 0).ok()?),
        };
        let schedule = c.schedule.as_ref()?;
        let from = millis(now).max(t.start_at.map(millis).unwrap_or(i64::MIN).saturating_sub(1));
        let mut tick = match armed.get(t.trigger_id.as_str()) {
            Some(at) => *at,
            None => schedule.next_after(from)?,
        };
        if let (Some(cooldown), Some(last)) = (t.cooldown_ms, t.last_fired_at) {
            let until = millis(last).saturating_add(i64::try_from(cooldown).unwrap_or(i64::MAX));
            if tick < until {
                tick = schedule.next_after(until - 1)?;
            }
        }
        if t.end_at.is_some_and(|end| tick > millis(end)) {
            return None;
        }
        DateTime::from_timestamp_millis(tick)
    }
}
