//! The trigger engine: decides when triggers fire and turns each fire into
//! a background execution.
//!
//! Definitions and their mutable state (status, `fireCount`,
//! `lastFiredAt`) live in a [`TriggerStore`]; every fire goes through the
//! store's one atomic gate-and-count step ([`TriggerStore::fire_trigger`]),
//! so concurrent stimuli can never fire a trigger past `maxFires` or inside
//! its cooldown. The engine keeps only what makes matching fast, rebuilt
//! from definitions: per-tenant indexes of event and lifecycle triggers by
//! event type (exact types in a hash map, trailing wildcards in a short
//! list), threshold triggers by metric name, compiled event patterns and
//! cron schedules, and a timer heap for schedule ticks.
//!
//! Firing writes one `silent` execution through
//! [`Executor::submit_fired`] (an unregistered callable yields a `failed`
//! execution that says so, never a silent drop) and posts a
//! [`Notice::TriggerFired`]. The executor's own `execution.*` and
//! `binding.*` events flow back in through [`TriggerEngine::drain`] as
//! events that event triggers can match; each execution carries its
//! `chainDepth`, and a fire that would exceed `maxChainDepth` is refused
//! with a [`Notice::LoopBlocked`].

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use chrono::{DateTime, SecondsFormat};
use chrono_tz::Tz;
use parking_lot::Mutex;
use serde_json::{json, Value};

use crate::clock::{millis, Clock};
use crate::cron::{parse_timezone, CronSchedule};
use crate::error::{EngineError, EngineResult, ErrorCode};
use crate::executor::{EventKind, Executor, Notice};
use crate::model::{
    BackgroundExecution, BackgroundExecutionConfig, ExecutionMode, LoopBlockedEvent, ThresholdOperator, Timestamp,
    Trigger, TriggerFiredEvent, TriggerStatus, TriggerType,
};
use crate::pattern::EventPattern;
use crate::store::{refresh_status, Blocked, TriggerFilter, TriggerStore};
use crate::validate::{self, Fields, SubmitRequest};
use crate::webhook::{ReplayGuard, WebhookHeaders, WebhookSecret};

/// Standard Webhooks timestamp tolerance.
pub const WEBHOOK_TOLERANCE_SECS: i64 = 300;

/// Engine-wide trigger settings.
#[derive(Clone, Debug)]
pub struct TriggerConfig {
    /// Longest chain of triggers firing triggers (default 16).
    pub max_chain_depth: u32,
}

impl Default for TriggerConfig {
    fn default() -> Self {
        Self { max_chain_depth: 16 }
    }
}

/// How a schedule trigger ticks.
#[derive(Clone, Debug)]
enum Schedule {
    /// The parsed expression, its zone and its text (for tick sources).
    Cron(Box<CronSchedule>, Tz, Box<str>),
    /// Every `secs`, aligned to `anchor_ms` (startAt, else createdAt).
    Interval { secs: u64, anchor_ms: i64 },
}

impl Schedule {
    /// The first tick strictly after `after_ms`.
    fn next_after(&self, after_ms: i64) -> Option<i64> {
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
}

/// How an event type is matched.
#[derive(Clone, Debug)]
enum TypeMatch {
    Exact(Box<str>),
    /// A trailing `*`: everything starting with this prefix.
    Prefix(Box<str>),
}

impl TypeMatch {
    fn parse(s: &str) -> EngineResult<Self> {
        match s.find('*') {
            None => Ok(Self::Exact(s.into())),
            Some(i) if i == s.len() - 1 => Ok(Self::Prefix(s[..i].into())),
            Some(_) => Err(EngineError::invalid_trigger(
                "condition.eventType",
                format!("{s:?}: only a trailing * wildcard is supported (e.g. \"execution.*\" or \"*\")"),
            )),
        }
    }

    fn matches(&self, t: &str) -> bool {
        match self {
            Self::Exact(e) => **e == *t,
            Self::Prefix(p) => t.starts_with(&**p),
        }
    }
}

/// The immutable, matchable part of a trigger.
#[derive(Debug)]
struct Compiled {
    id: Arc<str>,
    tenant: Box<str>,
    trigger_type: TriggerType,
    event_type: Option<TypeMatch>,
    pattern: Option<EventPattern>,
    schedule: Option<Schedule>,
    metric: Option<(Box<str>, ThresholdOperator, f64)>,
    /// Threshold: whether the last reported value satisfied the comparison.
    was_true: AtomicBool,
    secret: Option<WebhookSecret>,
    /// Distinguishes this compilation from earlier ones of the same id
    /// (stale timer entries are skipped).
    generation: u64,
}

impl Compiled {
    fn new(t: &Trigger, generation: u64) -> EngineResult<Self> {
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
            metric,
            was_true: AtomicBool::new(false),
            secret,
            generation,
        })
    }

    fn matches_event(&self, event_type: &str, data: &Value) -> bool {
        self.event_type.as_ref().is_some_and(|m| m.matches(event_type))
            && self.pattern.as_ref().is_none_or(|p| p.matches(data))
    }
}

/// Event or lifecycle triggers of one tenant.
#[derive(Default)]
struct TypeIndex {
    exact: HashMap<Box<str>, Vec<Arc<Compiled>>>,
    wildcard: Vec<Arc<Compiled>>,
}

impl TypeIndex {
    fn add(&mut self, c: &Arc<Compiled>) {
        match c.event_type.as_ref().expect("indexed triggers have an event type") {
            TypeMatch::Exact(t) => self.exact.entry(t.clone()).or_default().push(c.clone()),
            TypeMatch::Prefix(_) => self.wildcard.push(c.clone()),
        }
    }

    fn remove(&mut self, c: &Compiled) {
        match c.event_type.as_ref().expect("indexed triggers have an event type") {
            TypeMatch::Exact(t) => {
                if let Some(list) = self.exact.get_mut(t) {
                    list.retain(|x| x.id != c.id);
                    if list.is_empty() {
                        self.exact.remove(t);
                    }
                }
            }
            TypeMatch::Prefix(_) => self.wildcard.retain(|x| x.id != c.id),
        }
    }

    fn is_empty(&self) -> bool {
        self.exact.is_empty() && self.wildcard.is_empty()
    }

    fn candidates(&self, event_type: &str, out: &mut Vec<Arc<Compiled>>) {
        if let Some(list) = self.exact.get(event_type) {
            out.extend(list.iter().cloned());
        }
        out.extend(self.wildcard.iter().filter(|c| c.event_type.as_ref().is_some_and(|m| m.matches(event_type))).cloned());
    }
}

/// Threshold triggers of one tenant by metric name.
type MetricIndex = HashMap<Box<str>, Vec<Arc<Compiled>>>;

#[derive(Default)]
struct State {
    compiled: HashMap<Arc<str>, Arc<Compiled>>,
    events: HashMap<Box<str>, TypeIndex>,
    lifecycles: HashMap<Box<str>, TypeIndex>,
    /// tenant → metric → threshold triggers.
    metrics: HashMap<Box<str>, MetricIndex>,
    /// (due ms, generation, id) of the next tick of each schedule trigger.
    timers: BinaryHeap<Reverse<(i64, u64, Arc<str>)>>,
    /// Event triggers watching each executor event kind.
    feedback: [u32; EventKind::ALL.len()],
}

/// Which entry point an event came through.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Channel {
    Event,
    Lifecycle,
}

/// The trigger engine. Cheap to share behind an `Arc`.
pub struct TriggerEngine {
    exec: Arc<Executor>,
    store: Arc<dyn TriggerStore>,
    clock: Arc<dyn Clock>,
    config: TriggerConfig,
    state: Mutex<State>,
    replay: Mutex<ReplayGuard>,
    /// Triggers already fired by each unfinished execution's events.
    fed: Mutex<HashMap<Box<str>, Vec<Arc<str>>>>,
    generation: AtomicU64,
    kick: tokio::sync::Notify,
    stopped: AtomicBool,
}

/// A well-formed event read straight from JSON text.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct FastEvent {
    #[serde(rename = "type")]
    event_type: String,
    tenant_id: String,
    #[serde(default)]
    data: Option<Value>,
}

/// An event, as passed to `emit` / `lifecycle`.
struct EventIn {
    event_type: String,
    tenant_id: String,
    data: Value,
}

impl TriggerEngine {
    /// A trigger engine over `exec` and `store`. Call
    /// [`TriggerEngine::start`] inside a tokio runtime to run schedules.
    pub fn new(exec: Arc<Executor>, store: Arc<dyn TriggerStore>, config: TriggerConfig) -> Arc<Self> {
        let clock = exec.clock().clone();
        Arc::new(Self {
            exec,
            store,
            clock,
            config,
            state: Mutex::new(State::default()),
            replay: Mutex::new(ReplayGuard::new(2 * WEBHOOK_TOLERANCE_SECS, 100_000)),
            fed: Mutex::new(HashMap::new()),
            generation: AtomicU64::new(0),
            kick: tokio::sync::Notify::new(),
            stopped: AtomicBool::new(false),
        })
    }

    /// Loads the triggers already in the store (a durable store after a
    /// restart) and spawns the scheduler on the current tokio runtime. It
    /// sleeps until the next due tick and ends after [`TriggerEngine::stop`].
    pub fn start(self: &Arc<Self>) -> EngineResult<tokio::task::JoinHandle<()>> {
        for t in self.store.list_triggers(&TriggerFilter::default())? {
            let compiled = Arc::new(Compiled::new(&t, self.next_generation())?);
            self.index(compiled, &t);
        }
        let me = self.clone();
        Ok(tokio::spawn(async move { me.schedule_loop().await }))
    }

    /// Stops the scheduler; later stimuli still fire (and the executor
    /// refuses their work once it is shut down).
    pub fn stop(&self) {
        self.stopped.store(true, Ordering::SeqCst);
        self.kick.notify_one();
    }

    /// Whether schedule timers are armed (the scheduler has future work):
    /// a host keeps its process alive for them, as for a `setInterval`.
    pub fn has_schedules(&self) -> bool {
        !self.stopped.load(Ordering::Relaxed) && !self.state.lock().timers.is_empty()
    }

    fn next_generation(&self) -> u64 {
        self.generation.fetch_add(1, Ordering::Relaxed) + 1
    }

    // -- registry ----------------------------------------------------------

    /// Registers a trigger from its JSON definition (see
    /// [`validate::trigger_definition`]) and returns the stored trigger.
    pub fn register(&self, def: &Value) -> EngineResult<Trigger> {
        let now = self.clock.now();
        let mut t = validate::trigger_definition(def, now)?;
        let compiled = Arc::new(Compiled::new(&t, self.next_generation())?);
        refresh_status(&mut t, now);
        self.store.insert_trigger(t.clone()).map_err(|e| {
            if self.store.get_trigger(&t.trigger_id).ok().flatten().is_some() {
                EngineError::invalid_trigger("triggerId", format!("{:?} already exists", t.trigger_id))
            } else {
                e.into()
            }
        })?;
        self.index(compiled, &t);
        Ok(t)
    }

    /// One trigger; `ENACT_NOT_FOUND` for an unknown id.
    pub fn get(&self, id: &str) -> EngineResult<Trigger> {
        let t = self.store.get_trigger(id)?.ok_or_else(|| EngineError::not_found("trigger", id))?;
        self.refreshed(t)
    }

    /// Triggers passing `filter`, in registration order.
    pub fn list(&self, filter: &TriggerFilter) -> EngineResult<Vec<Trigger>> {
        // Status is filtered after the expiry refresh, so an `active`
        // trigger past its endAt lists as `expired`.
        let wide = TriggerFilter { status: None, ..filter.clone() };
        let mut out = Vec::new();
        for t in self.store.list_triggers(&wide)? {
            let t = self.refreshed(t)?;
            if filter.status.is_none_or(|s| s == t.status) {
                out.push(t);
            }
        }
        Ok(out)
    }

    /// An `active` trigger whose endAt passed is written back as `expired`.
    fn refreshed(&self, t: Trigger) -> EngineResult<Trigger> {
        let now = self.clock.now();
        if !refresh_status(&mut t.clone(), now) {
            return Ok(t);
        }
        let id = t.trigger_id.clone();
        let updated = self.store.update_trigger(&id, &mut |t| {
            refresh_status(t, now);
            Ok(())
        })?;
        match updated {
            Some(r) => r,
            None => Err(EngineError::not_found("trigger", &id)),
        }
    }

    /// Applies a JSON merge patch (RFC 7386: objects merge, `null` deletes)
    /// to a trigger's definition and re-validates it. `triggerId`,
    /// `tenantId`, `type` and the counters cannot be patched. A trigger
    /// that is `fired` or `expired` becomes `active` again when the patch
    /// lifts the limit it hit.
    pub fn update(&self, id: &str, patch: &Value) -> EngineResult<Trigger> {
        let p = Fields::with_code(patch, "patch", ErrorCode::InvalidTrigger)?;
        p.only(&["name", "description", "condition", "action", "startAt", "endAt", "maxFires", "cooldownMs", "webhookSecret"])?;
        let now = self.clock.now();
        let generation = self.next_generation();
        let mut compiled = None;
        let result = self.store.update_trigger(id, &mut |t| {
            let mut doc = serde_json::to_value(&*t).map_err(|e| EngineError::new(ErrorCode::Internal, e.to_string()))?;
            merge_patch(&mut doc, patch);
            let mut next = validate::trigger_definition(&doc, now)?;
            next.updated_at = now;
            if matches!(next.status, TriggerStatus::Fired | TriggerStatus::Expired) {
                let mut probe = Trigger { status: TriggerStatus::Active, ..next.clone() };
                if !refresh_status(&mut probe, now) {
                    next.status = TriggerStatus::Active;
                }
            }
            compiled = Some(Arc::new(Compiled::new(&next, generation)?));
            *t = next;
            Ok(())
        })?;
        let t = result.ok_or_else(|| EngineError::not_found("trigger", id))??;
        if let Some(c) = compiled {
            self.index(c, &t);
        }
        Ok(t)
    }

    /// `active` → `paused`.
    pub fn pause(&self, id: &str) -> EngineResult<Trigger> {
        self.set_status(id, TriggerStatus::Paused, &[TriggerStatus::Active, TriggerStatus::Paused])
    }

    /// `paused` or `disabled` → `active`.
    pub fn resume(&self, id: &str) -> EngineResult<Trigger> {
        self.set_status(id, TriggerStatus::Active, &[TriggerStatus::Paused, TriggerStatus::Disabled, TriggerStatus::Active])
    }

    /// Any status → `disabled`.
    pub fn disable(&self, id: &str) -> EngineResult<Trigger> {
        use TriggerStatus::*;
        self.set_status(id, Disabled, &[Active, Paused, Disabled, Fired, Expired])
    }

    fn set_status(&self, id: &str, to: TriggerStatus, from: &[TriggerStatus]) -> EngineResult<Trigger> {
        let now = self.clock.now();
        let result = self.store.update_trigger(id, &mut |t| {
            refresh_status(t, now);
            if !from.contains(&t.status) {
                let why = match t.status {
                    TriggerStatus::Fired => "it reached maxFires; raise maxFires with updateTrigger to re-activate it",
                    TriggerStatus::Expired => "its endAt has passed; move endAt with updateTrigger to re-activate it",
                    _ => "that change is not allowed from its status",
                };
                return Err(EngineError::invalid_trigger("status", format!("trigger {id:?} is {}: {why}", status_name(t.status))));
            }
            if t.status != to {
                t.status = to;
                t.updated_at = now;
                // Resuming a trigger whose budget or window was used up
                // while it was disabled reports where it really stands.
                refresh_status(t, now);
            }
            Ok(())
        })?;
        result.ok_or_else(|| EngineError::not_found("trigger", id))?
    }

    /// Removes a trigger; `ENACT_NOT_FOUND` for an unknown id.
    pub fn remove(&self, id: &str) -> EngineResult<()> {
        if !self.store.remove_trigger(id)? {
            return Err(EngineError::not_found("trigger", id));
        }
        let mut g = self.state.lock();
        if let Some(old) = g.compiled.remove(id) {
            unindex(&mut g, &old);
        }
        self.publish_feedback(&g);
        Ok(())
    }

    /// Puts a compiled trigger in the indexes (replacing an older
    /// compilation of the same id) and arms its schedule.
    fn index(&self, c: Arc<Compiled>, t: &Trigger) {
        let mut g = self.state.lock();
        if let Some(old) = g.compiled.insert(c.id.clone(), c.clone()) {
            // An edit that keeps the threshold keeps its arming: a value
            // already above it is not a new crossing.
            let same_threshold = match (&old.metric, &c.metric) {
                (Some((n1, o1, v1)), Some((n2, o2, v2))) => n1 == n2 && o1 == o2 && v1 == v2,
                _ => false,
            };
            if same_threshold {
                c.was_true.store(old.was_true.load(Ordering::SeqCst), Ordering::SeqCst);
            }
            unindex(&mut g, &old);
        }
        let tenant = c.tenant.clone();
        match c.trigger_type {
            TriggerType::Event => {
                g.events.entry(tenant).or_default().add(&c);
                for kind in EventKind::ALL {
                    if kind.is_execution_event() && c.event_type.as_ref().is_some_and(|m| m.matches(kind.name())) {
                        g.feedback[kind as usize] += 1;
                    }
                }
            }
            TriggerType::Lifecycle => g.lifecycles.entry(tenant).or_default().add(&c),
            TriggerType::Threshold => {
                let (name, _, _) = c.metric.as_ref().expect("threshold triggers have a metric");
                g.metrics.entry(tenant).or_default().entry(name.clone()).or_default().push(c.clone());
            }
            TriggerType::Schedule => {
                let from = millis(self.clock.now()).max(t.start_at.map(millis).unwrap_or(i64::MIN).saturating_sub(1));
                if let Some(due) = c.schedule.as_ref().and_then(|s| s.next_after(from)) {
                    g.timers.push(Reverse((due, c.generation, c.id.clone())));
                    self.kick.notify_one();
                }
            }
            TriggerType::Webhook | TriggerType::Manual => {}
        }
        self.publish_feedback(&g);
    }

    fn publish_feedback(&self, g: &State) {
        let mut mask = EventKind::ALL.iter().filter(|k| g.feedback[**k as usize] > 0).fold(0, |m, k| m | k.bit());
        if mask != 0 {
            // Final events end each execution's entry in `fed`.
            mask |= EventKind::ALL.iter().filter(|k| is_final_kind(**k)).fold(0, |m, k| m | k.bit());
        }
        self.exec.set_feedback(mask);
    }

    // -- stimuli -----------------------------------------------------------

    /// `emit({type, tenantId, data})`: fires the tenant's matching event
    /// triggers; returns one TriggerFiredEvent per fire.
    pub fn emit(&self, event: &Value) -> EngineResult<Vec<TriggerFiredEvent>> {
        let e = event_in(event, "event")?;
        self.dispatch(Channel::Event, &e.tenant_id, &e.event_type, e.data, 0, None)
    }

    /// `emitBatch(events)`: [`TriggerEngine::emit`] for each event, in
    /// order; the fires of all of them. A malformed event rejects the whole
    /// batch before any fires (its index is in the field path).
    pub fn emit_batch(&self, events: &Value) -> EngineResult<Vec<TriggerFiredEvent>> {
        let Value::Array(list) = events else {
            return Err(EngineError::invalid_trigger("events", format!("expected an array, got {}", validate::describe(events))));
        };
        let parsed = list
            .iter()
            .enumerate()
            .map(|(i, e)| event_in(e, "").map_err(|err| EngineError::new(err.code, format!("events[{i}]{}", at_path(&err.message)))))
            .collect::<EngineResult<Vec<_>>>()?;
        let mut fired = Vec::new();
        for e in parsed {
            fired.extend(self.dispatch(Channel::Event, &e.tenant_id, &e.event_type, e.data, 0, None)?);
        }
        Ok(fired)
    }

    /// `emit` / `emitBatch` / `lifecycle` of events given as JSON text (one
    /// event, or an array with `batch`). Well-formed events are read
    /// straight into place, without an intermediate map per event; anything
    /// else takes the validating path, for its precise error message.
    pub fn emit_text(&self, text: &str, batch: bool, lifecycle: bool) -> EngineResult<Vec<TriggerFiredEvent>> {
        let channel = if lifecycle { Channel::Lifecycle } else { Channel::Event };
        let fast: Option<Vec<FastEvent>> = if batch {
            serde_json::from_str(text).ok()
        } else {
            serde_json::from_str::<FastEvent>(text).ok().map(|e| vec![e])
        };
        let events = match fast.filter(|list| list.iter().all(|e| !e.event_type.is_empty() && !e.tenant_id.is_empty())) {
            Some(list) => list,
            None => {
                let v: Value = serde_json::from_str(text)
                    .map_err(|e| EngineError::invalid_trigger(if batch { "events" } else { "event" }, e))?;
                return match (batch, lifecycle) {
                    (true, _) => self.emit_batch(&v),
                    (false, true) => self.lifecycle(&v),
                    (false, false) => self.emit(&v),
                };
            }
        };
        let mut fired = Vec::new();
        for e in events {
            let data = e.data.unwrap_or_else(|| Value::Object(Default::default()));
            fired.extend(self.dispatch(channel, &e.tenant_id, &e.event_type, data, 0, None)?);
        }
        Ok(fired)
    }

    /// `lifecycle({type, tenantId, data})`: the same for lifecycle triggers.
    pub fn lifecycle(&self, event: &Value) -> EngineResult<Vec<TriggerFiredEvent>> {
        let e = event_in(event, "event")?;
        self.dispatch(Channel::Lifecycle, &e.tenant_id, &e.event_type, e.data, 0, None)
    }

    /// Fires the matching triggers of `tenant`. With `once`, triggers
    /// listed there are skipped and those that fire (or hit the loop
    /// guard) are added: one execution's events fire a trigger once.
    fn dispatch(
        &self,
        channel: Channel,
        tenant: &str,
        event_type: &str,
        data: Value,
        depth: u32,
        mut once: Option<&mut Vec<Arc<str>>>,
    ) -> EngineResult<Vec<TriggerFiredEvent>> {
        let mut candidates = Vec::new();
        {
            let g = self.state.lock();
            let index = match channel {
                Channel::Event => &g.events,
                Channel::Lifecycle => &g.lifecycles,
            };
            if let Some(ti) = index.get(tenant) {
                ti.candidates(event_type, &mut candidates);
            }
        }
        let mut fired = Vec::new();
        if candidates.is_empty() {
            return Ok(fired);
        }
        let mut source = None;
        for c in candidates {
            if once.as_ref().is_some_and(|seen| seen.contains(&c.id)) || !c.matches_event(event_type, &data) {
                continue;
            }
            let src = source.get_or_insert_with(|| json!({ "type": event_type, "data": data })).clone();
            let outcome = self.fire_compiled(&c, src, depth)?;
            if let (Some(seen), Ok(_) | Err(Refused::Loop)) = (once.as_mut(), &outcome) {
                seen.push(c.id.clone());
            }
            if let Ok(ev) = outcome {
                fired.push(ev);
            }
        }
        Ok(fired)
    }

    /// `reportMetric({tenantId, name, value})`: fires threshold triggers
    /// whose comparison turned true with this value (a crossing); each
    /// re-arms once the comparison is false again.
    pub fn report_metric(&self, metric: &Value) -> EngineResult<Vec<TriggerFiredEvent>> {
        let f = Fields::with_code(metric, "metric", ErrorCode::InvalidTrigger)?;
        f.only(&["tenantId", "name", "value"])?;
        let tenant = f.req_str("tenantId")?;
        let name = f.req_str("name")?;
        let value = f.opt_num("value")?.ok_or_else(|| f.err("value", "is required"))?;
        let candidates: Vec<Arc<Compiled>> = {
            let g = self.state.lock();
            g.metrics.get(tenant.as_str()).and_then(|m| m.get(name.as_str())).cloned().unwrap_or_default()
        };
        let mut fired = Vec::new();
        for c in candidates {
            let (_, op, threshold) = c.metric.as_ref().expect("threshold triggers have a metric");
            let holds = compare(value, *op, *threshold);
            let was = c.was_true.swap(holds, Ordering::SeqCst);
            if holds && !was {
                let source = json!({
                    "name": name,
                    "value": value,
                    "thresholdValue": threshold,
                    "thresholdOperator": op,
                });
                if let Ok(ev) = self.fire_compiled(&c, source, 0)? {
                    fired.push(ev);
                }
            }
        }
        Ok(fired)
    }

    /// `fire(id, payload?)`: fires a trigger now (manual triggers, or any
    /// trigger on demand). `ENACT_TRIGGER_INACTIVE` when its gate refuses.
    pub fn fire(&self, id: &str, payload: Option<Value>) -> EngineResult<TriggerFiredEvent> {
        let c = self.compiled(id)?;
        let source = payload.unwrap_or(Value::Null);
        self.fire_compiled(&c, source, 0)?.map_err(|why| inactive(id, &why))
    }

    /// `webhook(id, {headers, body})`: verifies the Standard Webhooks
    /// signature when the trigger has a `webhookSecret` (a replayed
    /// `webhook-id` is refused), then fires with the body (parsed as JSON
    /// when it is JSON) as the trigger source.
    pub fn webhook(&self, id: &str, headers: &[(String, String)], body: &[u8]) -> EngineResult<TriggerFiredEvent> {
        let c = self.compiled(id)?;
        if c.trigger_type != TriggerType::Webhook {
            return Err(EngineError::new(ErrorCode::NotFound, format!("trigger {id:?} is not a webhook trigger")));
        }
        if let Some(secret) = &c.secret {
            let h = WebhookHeaders::from_pairs(headers.iter().map(|(k, v)| (k.as_str(), v.as_str())));
            let now_secs = self.clock.now().timestamp();
            secret
                .verify(&h, body, now_secs, WEBHOOK_TOLERANCE_SECS)
                .map_err(|why| EngineError::new(ErrorCode::WebhookSignature, format!("webhook: {why}")))?;
            // Refuse before remembering the id, so a sender may retry the
            // same message once the trigger is active again.
            let t = self.store.get_trigger(id)?.ok_or_else(|| EngineError::not_found("trigger", id))?;
            if t.status != TriggerStatus::Active {
                return Err(inactive(id, &Refused::Blocked(Blocked::Inactive(t.status))));
            }
            let msg_id = h.id.unwrap_or_default();
            if !self.replay.lock().first_sight(id, msg_id, now_secs) {
                return Err(EngineError::new(
                    ErrorCode::WebhookSignature,
                    format!("webhook: webhook-id {msg_id:?} was already accepted (a replay)"),
                ));
            }
        }
        let source = serde_json::from_slice(body).unwrap_or_else(|_| Value::String(String::from_utf8_lossy(body).into_owned()));
        self.fire_compiled(&c, source, 0)?.map_err(|why| inactive(id, &why))
    }

    fn compiled(&self, id: &str) -> EngineResult<Arc<Compiled>> {
        self.state.lock().compiled.get(id).cloned().ok_or_else(|| EngineError::not_found("trigger", id))
    }

    // -- firing ------------------------------------------------------------

    /// Gates, counts and fires one trigger. `Ok(Err(_))` when it did not
    /// fire (gate, loop guard, removed meanwhile).
    fn fire_compiled(&self, c: &Compiled, source: Value, depth: u32) -> EngineResult<Result<TriggerFiredEvent, Refused>> {
        Ok(self.fire_with_status(c, source, depth)?.map(|(event, _)| event))
    }

    /// [`TriggerEngine::fire_compiled`], also answering the trigger's
    /// status after the fire (`fired` when it used up `maxFires`).
    fn fire_with_status(&self, c: &Compiled, source: Value, depth: u32) -> EngineResult<Result<(TriggerFiredEvent, TriggerStatus), Refused>> {
        let now = self.clock.now();
        let chain_depth = depth + 1;
        if chain_depth > self.config.max_chain_depth {
            if self.exec.listens(EventKind::LoopBlocked) {
                let name = self.store.get_trigger(&c.id)?.map(|t| t.name).unwrap_or_default();
                self.exec.post(Notice::LoopBlocked(Box::new(LoopBlockedEvent {
                    trigger_id: c.id.to_string(),
                    trigger_name: name,
                    tenant_id: c.tenant.to_string(),
                    chain_depth,
                    max_chain_depth: self.config.max_chain_depth,
                    trigger_source: source,
                    blocked_at: now,
                })));
            }
            return Ok(Err(Refused::Loop));
        }
        let Some((t, gate)) = self.store.fire_trigger(&c.id, now)? else { return Ok(Err(Refused::Gone)) };
        if let Err(b) = gate {
            return Ok(Err(Refused::Blocked(b)));
        }
        let mut context = t.action.context.clone();
        if let Some(prompt) = &t.action.system_prompt {
            context.get_or_insert_with(Default::default).entry("systemPrompt".into()).or_insert_with(|| prompt.clone());
        }
        let req = SubmitRequest {
            execution_id: None,
            tenant_id: t.tenant_id.clone(),
            callable_name: t.action.callable_name.clone(),
            input: t.action.input.clone(),
            context,
            config: BackgroundExecutionConfig {
                mode: ExecutionMode::Silent,
                target_binding: t.action.target_binding.clone().map(Box::new),
                retry: t.action.retry.clone(),
                ..BackgroundExecutionConfig::default()
            },
            metadata: None,
            trigger_id: Some(t.trigger_id.clone()),
            trigger_source: Some(source.clone()),
            chain_depth,
        };
        let record = self.exec.submit_fired(req)?;
        let status = t.status;
        let event = TriggerFiredEvent {
            trigger_id: t.trigger_id.clone(),
            trigger_name: t.name.clone(),
            trigger_type: t.trigger_type,
            execution_id: record.execution_id,
            fired_at: now,
            trigger_source: Some(source),
        };
        if self.exec.listens(EventKind::TriggerFired) {
            self.exec.post(Notice::TriggerFired(Box::new(event.clone())));
        }
        Ok(Ok((event, status)))
    }

    // -- the host's pull API -----------------------------------------------

    /// The executor's notices, after feeding its execution events back to
    /// event triggers; only events JS listens to are passed on. Loops until
    /// the fires it caused have posted their own notices.
    pub fn drain(&self) -> Vec<Notice> {
        let mut out = Vec::new();
        loop {
            let batch = self.exec.drain();
            if batch.is_empty() {
                return out;
            }
            for n in batch {
                if let Notice::Event(kind, rec) = &n {
                    if kind.is_execution_event() && self.watches(*kind) {
                        self.feed_back(*kind, rec);
                    } else if is_final_kind(*kind) {
                        self.fed.lock().remove(rec.execution_id.as_str());
                    }
                    if !self.exec.listens(*kind) {
                        continue;
                    }
                }
                out.push(n);
            }
        }
    }

    fn watches(&self, kind: EventKind) -> bool {
        self.state.lock().feedback[kind as usize] > 0
    }

    /// Feeds one execution event back to event triggers. Each execution
    /// fires a given trigger at most once, on the first of its events that
    /// matches: otherwise a trigger watching `execution.*` (or `*`) would
    /// fire for the queued, started and completed events of each execution
    /// it spawned, and a chain would grow three-wide per level instead of
    /// one long.
    fn feed_back(&self, kind: EventKind, rec: &BackgroundExecution) {
        let data = serde_json::to_value(rec).unwrap_or(Value::Null);
        let mut seen = self.fed.lock().remove(rec.execution_id.as_str()).unwrap_or_default();
        // A failure here (store trouble, shutdown) must not lose the
        // notices already drained; the fire is simply not made.
        let _ = self.dispatch(Channel::Event, &rec.tenant_id, kind.name(), data, rec.chain_depth, Some(&mut seen));
        if !seen.is_empty() && !is_final_kind(kind) {
            self.fed.lock().insert(rec.execution_id.as_str().into(), seen);
        }
    }

    // -- schedules ---------------------------------------------------------

    /// Fires every schedule tick due by now; returns the next due time.
    pub fn run_due(&self) -> Option<i64> {
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
        for (n, (at, c)) in due.into_iter().enumerate() {
            // With thousands of ticks due at once, let the host start the
            // first executions while the rest are still being fired.
            if n % 256 == 255 {
                self.exec.wake();
            }
            let schedule = c.schedule.as_ref().expect("timers belong to schedule triggers");
            // Ticks come due in bursts at one instant: format it once.
            if stamp.as_ref().is_none_or(|(t, _)| *t != at) {
                stamp = Some((at, Value::String(rfc3339(DateTime::from_timestamp_millis(at).unwrap_or_default()))));
            }
            let scheduled_at = stamp.as_ref().map(|(_, s)| s.clone()).expect("set above");
            let mut source = json!({ "type": "schedule", "scheduledAt": scheduled_at });
            match schedule {
                Schedule::Cron(_, _, text) => source["cronExpression"] = json!(text),
                Schedule::Interval { secs, .. } => source["intervalSeconds"] = json!(secs),
            }
            // A trigger that is gone, fired out or expired ticks no more; a
            // paused or disabled one keeps its timer (ticks are refused by
            // the gate) so that resuming needs no re-arming. A store
            // failure or shutdown skips this tick; the schedule goes on.
            let finished = |s: TriggerStatus| matches!(s, TriggerStatus::Fired | TriggerStatus::Expired);
            match self.fire_with_status(&c, source, 0) {
                Ok(Err(Refused::Gone)) => continue,
                Ok(Err(Refused::Blocked(Blocked::Inactive(s)))) | Ok(Ok((_, s))) if finished(s) => continue,
                _ => {}
            }
            // Each tick fires once: a tick missed while the process was
            // busy or asleep is not replayed; the next one after now is.
            let next = schedule.next_after(at).and_then(|n| if n > now_ms { Some(n) } else { schedule.next_after(now_ms) });
            if let Some(next) = next {
                self.state.lock().timers.push(Reverse((next, c.generation, c.id.clone())));
            }
        }
        if fired_any {
            self.exec.wake();
        }
        self.state.lock().timers.peek().map(|Reverse((at, _, _))| *at)
    }

    async fn schedule_loop(self: Arc<Self>) {
        loop {
            if self.stopped.load(Ordering::SeqCst) {
                return;
            }
            let next = self.run_due();
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
}

/// Why a trigger did not fire.
#[derive(Clone, Debug, PartialEq)]
enum Refused {
    Blocked(Blocked),
    Loop,
    Gone,
}

fn inactive(id: &str, why: &Refused) -> EngineError {
    match why {
        Refused::Blocked(b) => EngineError::new(ErrorCode::TriggerInactive, format!("trigger {id:?} did not fire: {b}")),
        Refused::Loop => EngineError::new(ErrorCode::TriggerInactive, format!("trigger {id:?} did not fire: maxChainDepth reached")),
        Refused::Gone => EngineError::not_found("trigger", id),
    }
}

fn unindex(g: &mut State, old: &Compiled) {
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
                    list.retain(|x| x.id != old.id);
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

/// `.field: why` for a message `field: why` from a top-level reader (or
/// `: why` for one about the value itself, `request: why`).
fn at_path(message: &str) -> String {
    match message.strip_prefix("request:") {
        Some(rest) => format!(":{rest}"),
        None => format!(".{message}"),
    }
}

fn event_in(v: &Value, path: &str) -> EngineResult<EventIn> {
    let f = Fields::with_code(v, path, ErrorCode::InvalidTrigger)?;
    f.only(&["type", "tenantId", "data"])?;
    Ok(EventIn {
        event_type: f.req_str("type")?,
        tenant_id: f.req_str("tenantId")?,
        data: f.raw("data").cloned().unwrap_or(Value::Object(Default::default())),
    })
}

/// The event that ends an execution (after its binding events).
fn is_final_kind(kind: EventKind) -> bool {
    matches!(kind, EventKind::Completed | EventKind::Failed | EventKind::Cancelled | EventKind::Timeout)
}

fn compare(value: f64, op: ThresholdOperator, threshold: f64) -> bool {
    match op {
        ThresholdOperator::Gt => value > threshold,
        ThresholdOperator::Gte => value >= threshold,
        ThresholdOperator::Lt => value < threshold,
        ThresholdOperator::Lte => value <= threshold,
        ThresholdOperator::Eq => value == threshold,
        ThresholdOperator::Neq => value != threshold,
    }
}

fn status_name(s: TriggerStatus) -> &'static str {
    match s {
        TriggerStatus::Active => "active",
        TriggerStatus::Paused => "paused",
        TriggerStatus::Disabled => "disabled",
        TriggerStatus::Fired => "fired",
        TriggerStatus::Expired => "expired",
    }
}

fn rfc3339(t: Timestamp) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// RFC 7386 JSON merge patch.
fn merge_patch(target: &mut Value, patch: &Value) {
    let Value::Object(p) = patch else {
        *target = patch.clone();
        return;
    };
    if !target.is_object() {
        *target = Value::Object(Default::default());
    }
    let t = target.as_object_mut().expect("made an object above");
    for (k, v) in p {
        if v.is_null() {
            t.remove(k);
        } else {
            merge_patch(t.entry(k.clone()).or_insert(Value::Null), v);
        }
    }
}
