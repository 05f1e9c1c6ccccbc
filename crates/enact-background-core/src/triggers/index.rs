//! What makes matching fast, rebuilt from the stored definitions: compiled
//! triggers (event type, pattern, schedule, metric, webhook secret), the
//! per-tenant indexes of event and lifecycle triggers by event type (exact
//! types in a hash map, trailing wildcards in a short list), threshold
//! triggers by metric name, and the timer heap of schedule ticks.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap, HashMap};
use std::sync::Arc;

use chrono::DateTime;
use chrono_tz::Tz;
use serde_json::Value;

use crate::clock::millis;
use crate::cron::{parse_timezone, CronSchedule};
use crate::error::{EngineError, EngineResult, ErrorCode};
use crate::executor::EventKind;
use crate::model::{MisfirePolicy, ThresholdOperator, Trigger, TriggerType};
use crate::pattern::EventPattern;
use crate::webhook::WebhookSecret;

/// How a schedule trigger ticks.
#[derive(Clone, Debug)]
pub(super) enum Schedule {
    /// The parsed expression, its zone and its text (for tick sources).
    Cron(Box<CronSchedule>, Tz, Box<str>),
    /// Every `secs`, aligned to `anchor_ms` (startAt, else createdAt).
    Interval { secs: u64, anchor_ms: i64 },
}

impl Schedule {
    /// The first tick strictly after `after_ms`.
    pub(super) fn next_after(&self, after_ms: i64) -> Option<i64> {
        match self {
            Schedule::Cron(cron, tz, _) => {
                let after = DateTime::from_timestamp_millis(after_ms)?;
                cron.next_after(after, *tz).map(millis)
            }
            Schedule::Interval { secs, anchor_ms } => {
                let step = (*secs as i64).saturating_mul(1000);
                if after_ms < *anchor_ms {
                    return Some(*anchor_ms);
                }
                let k = (after_ms - anchor_ms) / step + 1;
                Some(anchor_ms.saturating_add(k.saturating_mul(step)))
            }
        }
    }

    /// The ticks due by `now_ms` from `first_ms` (a tick, due by then):
    /// the latest of them and how many there are (at least 1). A cron
    /// counts them one by one, up to [`MAX_COUNTED_TICKS`]; past that the
    /// count stops there and the latest is found by a backward search.
    pub(super) fn due_through(&self, first_ms: i64, now_ms: i64) -> (i64, u64) {
        match self {
            Schedule::Interval { secs, .. } => {
                let step = (*secs as i64).saturating_mul(1000).max(1);
                let k = (now_ms - first_ms).max(0) / step;
                (first_ms.saturating_add(k.saturating_mul(step)), k as u64 + 1)
            }
            Schedule::Cron(..) => {
                let (mut last, mut n) = (first_ms, 1u64);
                while let Some(next) = self.next_after(last).filter(|t| *t <= now_ms) {
                    (last, n) = (next, n + 1);
                    if n == MAX_COUNTED_TICKS {
                        return (self.latest_by(last, now_ms), n);
                    }
                }
                (last, n)
            }
        }
    }

    /// The latest tick by `now_ms`, given a tick `known_ms` by then: looks
    /// back from `now_ms` in windows that double until one holds a tick,
    /// then walks forward through that window.
    fn latest_by(&self, known_ms: i64, now_ms: i64) -> i64 {
        let mut window = 1_000i64;
        let mut from = known_ms;
        while window < now_ms - known_ms {
            if let Some(t) = self.next_after(now_ms - window).filter(|t| *t <= now_ms) {
                from = t;
                break;
            }
            window = window.saturating_mul(2);
        }
        while let Some(next) = self.next_after(from).filter(|t| *t <= now_ms) {
            from = next;
        }
        from
    }
}

/// Most due ticks of a cron counted one by one for a misfire's
/// `missedTicks` (about a day of a per-second schedule).
pub(super) const MAX_COUNTED_TICKS: u64 = 100_000;

/// How an event type is matched.
#[derive(Clone, Debug)]
pub(super) enum TypeMatch {
    Exact(Box<str>),
    /// A trailing `*`: everything starting with this prefix.
    Prefix(Box<str>),
}

impl TypeMatch {
    pub(super) fn parse(s: &str) -> EngineResult<Self> {
        match s.find('*') {
            None => Ok(Self::Exact(s.into())),
            Some(i) if i == s.len() - 1 => Ok(Self::Prefix(s[..i].into())),
            Some(_) => Err(EngineError::invalid_trigger(
                "condition.eventType",
                format!("{s:?}: only a trailing * wildcard is supported (e.g. \"execution.*\" or \"*\")"),
            )),
        }
    }

    pub(super) fn matches(&self, t: &str) -> bool {
        match self {
            Self::Exact(e) => **e == *t,
            Self::Prefix(p) => t.starts_with(&**p),
        }
    }
}

/// The immutable, matchable part of a trigger.
#[derive(Debug)]
pub(super) struct Compiled {
    pub(super) id: Arc<str>,
    pub(super) tenant: Box<str>,
    pub(super) trigger_type: TriggerType,
    pub(super) event_type: Option<TypeMatch>,
    pub(super) pattern: Option<EventPattern>,
    pub(super) schedule: Option<Schedule>,
    /// What the schedule does with ticks missed while down or stalled.
    pub(super) misfire: MisfirePolicy,
    pub(super) metric: Option<(Box<str>, ThresholdOperator, f64)>,
    pub(super) secret: Option<WebhookSecret>,
    /// Without a secret: whether unsigned requests were opted in to.
    pub(super) allow_unsigned: bool,
    /// Distinguishes this compilation from earlier ones of the same id
    /// (stale timer entries are skipped).
    pub(super) generation: u64,
}

impl Compiled {
    pub(super) fn new(t: &Trigger, generation: u64) -> EngineResult<Self> {
        let c = &t.condition;
        let event_type = match t.trigger_type {
            TriggerType::Event | TriggerType::Lifecycle => c.event_type.as_deref().map(TypeMatch::parse).transpose()?,
            _ => None,
        };
        let pattern = c
            .event_pattern
            .as_ref()
            .map(|p| EventPattern::compile(p, "condition.eventPattern"))
            .transpose()
            .map_err(|e| EngineError::new(ErrorCode::InvalidTrigger, e))?;
        let schedule = match (t.trigger_type, &c.cron_expression, c.interval_seconds) {
            (TriggerType::Schedule, Some(expr), _) => {
                let cron = CronSchedule::parse(expr).map_err(|e| EngineError::invalid_trigger("condition.cronExpression", e))?;
                let tz = match &c.timezone {
                    Some(name) => parse_timezone(name).map_err(|e| EngineError::invalid_trigger("condition.timezone", e))?,
                    None => Tz::UTC,
                };
                Some(Schedule::Cron(Box::new(cron), tz, expr.as_str().into()))
            }
            (TriggerType::Schedule, None, Some(secs)) => {
                Some(Schedule::Interval { secs, anchor_ms: millis(t.start_at.unwrap_or(t.created_at)) })
            }
            _ => None,
        };
        let misfire = c.misfire_policy.unwrap_or_default();
        let metric = match (t.trigger_type, &c.metric_name, c.threshold_operator, c.threshold_value) {
            (TriggerType::Threshold, Some(name), Some(op), Some(value)) => Some((name.as_str().into(), op, value)),
            _ => None,
        };
        let secret = t
            .webhook_secret
            .as_deref()
            .map(WebhookSecret::parse)
            .transpose()
            .map_err(|e| EngineError::invalid_trigger("webhookSecret", e))?;
        Ok(Self {
            id: t.trigger_id.as_str().into(),
            tenant: t.tenant_id.as_str().into(),
            trigger_type: t.trigger_type,
            event_type,
            pattern,
            schedule,
            misfire,
            metric,
            allow_unsigned: t.allow_unsigned,
            secret,
            generation,
        })
    }

    pub(super) fn matches_event(&self, event_type: &str, data: &Value) -> bool {
        self.event_type.as_ref().is_some_and(|m| m.matches(event_type))
            && self.pattern.as_ref().is_none_or(|p| p.matches(data))
    }
}

/// Event or lifecycle triggers of one tenant.
#[derive(Default)]
pub(super) struct TypeIndex {
    pub(super) exact: HashMap<Box<str>, Bucket>,
    pub(super) wildcard: Bucket,
}

impl TypeIndex {
    pub(super) fn add(&mut self, c: &Arc<Compiled>) {
        match c.event_type.as_ref().expect("indexed triggers have an event type") {
            TypeMatch::Exact(t) => {
                self.exact.entry(t.clone()).or_default().insert(c.generation, c.clone());
            }
            TypeMatch::Prefix(_) => {
                self.wildcard.insert(c.generation, c.clone());
            }
        }
    }

    pub(super) fn remove(&mut self, c: &Compiled) {
        match c.event_type.as_ref().expect("indexed triggers have an event type") {
            TypeMatch::Exact(t) => {
                if let Some(list) = self.exact.get_mut(t) {
                    list.remove(&c.generation);
                    if list.is_empty() {
                        self.exact.remove(t);
                    }
                }
            }
            TypeMatch::Prefix(_) => {
                self.wildcard.remove(&c.generation);
            }
        }
    }

    pub(super) fn is_empty(&self) -> bool {
        self.exact.is_empty() && self.wildcard.is_empty()
    }

    pub(super) fn candidates(&self, event_type: &str, out: &mut Vec<Arc<Compiled>>) {
        if let Some(list) = self.exact.get(event_type) {
            out.extend(list.values().cloned());
        }
        out.extend(self.wildcard.values().filter(|c| c.event_type.as_ref().is_some_and(|m| m.matches(event_type))).cloned());
    }
}

/// Threshold triggers of one tenant by metric name.
pub(super) type MetricIndex = HashMap<Box<str>, Bucket>;

/// Triggers sharing one key (an event type, the wildcards, a metric name)
/// by compilation generation: registration order (a re-compiled trigger
/// moves to the end, as it always did), with O(log n) removal, so removing
/// every one of many triggers on one key is not quadratic.
pub(super) type Bucket = BTreeMap<u64, Arc<Compiled>>;

#[derive(Default)]
pub(super) struct State {
    pub(super) compiled: HashMap<Arc<str>, Arc<Compiled>>,
    pub(super) events: HashMap<Box<str>, TypeIndex>,
    pub(super) lifecycles: HashMap<Box<str>, TypeIndex>,
    /// tenant → metric → threshold triggers.
    pub(super) metrics: HashMap<Box<str>, MetricIndex>,
    /// (due ms, generation, id) of the next tick of each schedule trigger.
    pub(super) timers: BinaryHeap<Reverse<(i64, u64, Arc<str>)>>,
    /// Event triggers watching each executor event kind.
    pub(super) feedback: [u32; EventKind::ALL.len()],
}

pub(super) fn unindex(g: &mut State, old: &Compiled) {
    let tenant = &old.tenant;
    match old.trigger_type {
        TriggerType::Event => {
            if let Some(ti) = g.events.get_mut(tenant) {
                ti.remove(old);
                if ti.is_empty() {
                    g.events.remove(tenant);
                }
            }
            for kind in EventKind::ALL {
                if kind.is_execution_event() && old.event_type.as_ref().is_some_and(|m| m.matches(kind.name())) {
                    g.feedback[kind as usize] -= 1;
                }
            }
        }
        TriggerType::Lifecycle => {
            if let Some(ti) = g.lifecycles.get_mut(tenant) {
                ti.remove(old);
                if ti.is_empty() {
                    g.lifecycles.remove(tenant);
                }
            }
        }
        TriggerType::Threshold => {
            if let (Some(by_name), Some((name, _, _))) = (g.metrics.get_mut(tenant), old.metric.as_ref()) {
                if let Some(list) = by_name.get_mut(name) {
                    list.remove(&old.generation);
                    if list.is_empty() {
                        by_name.remove(name);
                    }
                }
                if by_name.is_empty() {
                    g.metrics.remove(tenant);
                }
            }
        }
        // Timers of the old generation are skipped when they come due.
        TriggerType::Schedule | TriggerType::Webhook | TriggerType::Manual => {}
    }
}

