//! The trigger engine: decides when triggers fire and turns each fire into
//! a background execution.
//!
//! Definitions and their state (status, `fireCount`, `lastFiredAt`,
//! schedule cursors, threshold arming, webhook replay ids) live in the
//! store ([`Driver`]); every fire goes through the store's one atomic fire
//! step, so concurrent stimuli can never fire a trigger past `maxFires` or
//! inside its cooldown, and a fire never exists without its execution. The
//! engine keeps only what makes matching fast, rebuilt from definitions
//! (`index.rs`): per-tenant indexes, compiled patterns and schedules, and a
//! timer heap for schedule ticks.
//!
//! - `index.rs`: compiled triggers and the indexes;
//! - `firing.rs`: stimuli, fires and the executor's events fed back;
//! - `schedule.rs`: the scheduler and the listener for trigger changes;
//! - `explain.rs`: "why didn't it fire?" — each trigger judged by the
//!   same gates, read-only;
//! - `record.rs`: trigger records as the API answers them (`nextFireAt`).
//!
//! Each executor event flows back in through [`TriggerEngine::drain`] as an
//! event that event triggers can match; each execution carries its
//! `chainDepth`, and a fire that would exceed `maxChainDepth` is refused
//! with a [`Notice::LoopBlocked`](crate::executor::Notice::LoopBlocked).
//!
//! Every operation that touches the store is an `async fn` (`*_async`),
//! ready at once on the memory store; the plain-named methods are their
//! synchronous forms, for a store that answers at once.

mod chains;
mod explain;
mod firing;
mod index;
mod record;
mod schedule;

pub use record::TriggerRecord;
pub use explain::{ExplainDetail, ExplainSource, TriggerExplanation};
pub use firing::Stimulus;

use std::cmp::Reverse;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use parking_lot::Mutex;
use serde_json::Value;

use crate::clock::{millis, Clock};
use crate::error::{EngineError, EngineResult, ErrorCode};
use crate::executor::{EventKind, Executor};
use crate::model::{Chain, Trigger, TriggerFiredEvent, TriggerStatus, TriggerType};
use crate::store::{ready_now, refresh_status, Driver, StoreError, TriggerFilter};
use crate::validate::{self, Fields};

use firing::is_final_kind;
use index::{unindex, Compiled, State};

/// Default of [`TriggerConfig::max_chain_fires`].
pub const DEFAULT_MAX_CHAIN_FIRES: u32 = 1_000;

/// Standard Webhooks timestamp tolerance.
pub const WEBHOOK_TOLERANCE_SECS: i64 = 300;

/// Engine-wide trigger settings.
#[derive(Clone, Debug)]
pub struct TriggerConfig {
    /// Longest chain of triggers firing triggers (default 16).
    pub max_chain_depth: u32,
    /// Most fires one root execution's chain may cause (default 1,000).
    pub max_chain_fires: u32,
    /// Poll the store for triggers changed by other engines this often
    /// (`None`, the default: this engine is the only one; the memory store).
    pub listen_ms: Option<u64>,
}

impl Default for TriggerConfig {
    fn default() -> Self {
        Self { max_chain_depth: 16, max_chain_fires: DEFAULT_MAX_CHAIN_FIRES, listen_ms: None }
    }
}

/// The trigger engine. Cheap to share behind an `Arc`.
pub struct TriggerEngine {
    exec: Arc<Executor>,
    driver: Arc<dyn Driver>,
    clock: Arc<dyn Clock>,
    config: TriggerConfig,
    state: Mutex<State>,
    /// Fires caused per chain root.
    chains: Mutex<chains::ChainBudget>,
    /// Triggers already fired by each unfinished execution's events.
    fed: Mutex<HashMap<Box<str>, Vec<Arc<str>>>>,
    generation: AtomicU64,
    /// The store's trigger-change sequence applied so far.
    changes_seen: AtomicU64,
    /// Whether the triggers in the store were loaded once (at start).
    loaded: AtomicBool,
    /// Wakes the scheduler (a new or earlier tick, or stop).
    kick: tokio::sync::Notify,
    /// Wakes the listener to stop (apart from `kick`, whose single permit
    /// must reach the scheduler).
    stop_listening: tokio::sync::Notify,
    stopped: AtomicBool,
}

impl TriggerEngine {
    /// A trigger engine over `exec` and its store. Call
    /// [`TriggerEngine::start`] inside a tokio runtime to run schedules.
    pub fn new(exec: Arc<Executor>, config: TriggerConfig) -> Arc<Self> {
        let clock = exec.clock().clone();
        let driver = exec.driver().clone();
        Arc::new(Self {
            exec,
            driver,
            clock,
            config,
            state: Mutex::new(State::default()),
            chains: Mutex::new(chains::ChainBudget::default()),
            fed: Mutex::new(HashMap::new()),
            generation: AtomicU64::new(0),
            changes_seen: AtomicU64::new(0),
            loaded: AtomicBool::new(false),
            kick: tokio::sync::Notify::new(),
            stop_listening: tokio::sync::Notify::new(),
            stopped: AtomicBool::new(false),
        })
    }

    /// Loads the triggers already in the store (a durable store after a
    /// restart) and spawns the scheduler (and, with
    /// [`TriggerConfig::listen_ms`], the listener) on the current tokio
    /// runtime. The scheduler sleeps until the next due tick and ends after
    /// [`TriggerEngine::stop`].
    pub fn start(self: &Arc<Self>) -> EngineResult<tokio::task::JoinHandle<()>> {
        self.sync_changes()?;
        Ok(self.spawn_services())
    }

    /// [`TriggerEngine::start`] for any store: a durable store answers the
    /// load later, which the synchronous form refuses.
    pub async fn start_async(self: &Arc<Self>) -> EngineResult<tokio::task::JoinHandle<()>> {
        self.sync_changes_async().await?;
        Ok(self.spawn_services())
    }

    /// Spawns the listener (with [`TriggerConfig::listen_ms`]) and the
    /// scheduler, once the triggers are loaded.
    fn spawn_services(self: &Arc<Self>) -> tokio::task::JoinHandle<()> {
        // A shared store signals changes; polling (every second unless
        // configured) is only the fallback.
        let signals = self.driver.signals();
        let listen_ms = self.config.listen_ms.or(signals.as_ref().map(|_| 1000));
        if let Some(ms) = listen_ms {
            tokio::spawn(self.clone().listen_loop(std::time::Duration::from_millis(ms.max(1)), signals));
        }
        if self.clock.is_manual() {
            // Ticks come due only when the host moves the clock and calls
            // `run_due`: no scheduler sleeps on real time.
            return tokio::spawn(async {});
        }
        tokio::spawn(self.clone().schedule_loop())
    }

    /// Stops the scheduler and the listener; later stimuli still fire (and
    /// the executor refuses their work once it is shut down).
    pub fn stop(&self) {
        self.stopped.store(true, Ordering::SeqCst);
        self.kick.notify_one();
        self.stop_listening.notify_waiters();
    }

    /// Whether schedule timers are armed (the scheduler has future work):
    /// a host keeps its process alive for them, as for a `setInterval`.
    /// Never with a manual clock: its ticks come only when the host moves
    /// the clock, so waiting for them would wait forever.
    pub fn has_schedules(&self) -> bool {
        !self.clock.is_manual() && !self.stopped.load(Ordering::Relaxed) && !self.state.lock().timers.is_empty()
    }

    /// The next schedule tick (Unix ms), as far as armed (possibly a tick
    /// of a trigger since removed, never later than the real next one), or
    /// `None`. See [`crate::executor::Executor::next_due`].
    pub fn next_due(&self) -> Option<i64> {
        if self.stopped.load(Ordering::Relaxed) {
            return None;
        }
        self.state.lock().timers.peek().map(|Reverse((at, _, _))| *at)
    }

    fn next_generation(&self) -> u64 {
        self.generation.fetch_add(1, Ordering::Relaxed) + 1
    }

    // -- registry ----------------------------------------------------------

    /// Registers a trigger from its JSON definition (see
    /// [`validate::trigger_definition`]) and returns the stored trigger.
    pub async fn register_async(&self, def: &Value) -> EngineResult<Trigger> {
        let now = self.clock.now();
        let mut t = validate::trigger_definition(def, now)?;
        let compiled = Arc::new(Compiled::new(&t, self.next_generation())?);
        refresh_status(&mut t, now);
        self.driver.insert_trigger(t.clone()).await.map_err(|e| match e {
            StoreError::Conflict(_) => EngineError::invalid_trigger("triggerId", format!("{:?} already exists", t.trigger_id)),
            other => other.into(),
        })?;
        self.index(compiled, &t, false);
        Ok(t)
    }

    /// One trigger; `ENACT_NOT_FOUND` for an unknown id.
    pub async fn get_async(&self, id: &str) -> EngineResult<Trigger> {
        let t = self.driver.get_trigger(id).await?.ok_or_else(|| EngineError::not_found("trigger", id))?;
        self.refreshed(t).await
    }

    /// Triggers passing `filter`, in registration order.
    pub async fn list_async(&self, filter: &TriggerFilter) -> EngineResult<Vec<Trigger>> {
        // Status is filtered after the expiry refresh, so an `active`
        // trigger past its endAt lists as `expired`.
        let wide = TriggerFilter { status: None, ..filter.clone() };
        let mut out = Vec::new();
        for t in self.driver.list_triggers(&wide).await? {
            let t = self.refreshed(t).await?;
            if filter.status.is_none_or(|s| s == t.status) {
                out.push(t);
            }
        }
        Ok(out)
    }

    /// An `active` trigger whose endAt passed is written back as `expired`.
    async fn refreshed(&self, t: Trigger) -> EngineResult<Trigger> {
        let now = self.clock.now();
        if !refresh_status(&mut t.clone(), now) {
            return Ok(t);
        }
        let id = t.trigger_id.clone();
        let mut edit = |t: &mut Trigger| {
            refresh_status(t, now);
            Ok(())
        };
        match self.driver.update_trigger(&id, &mut edit).await? {
            Some(r) => r,
            None => Err(EngineError::not_found("trigger", &id)),
        }
    }

    /// Applies a JSON merge patch (RFC 7386: objects merge, `null` deletes)
    /// to a trigger's definition and re-validates it. `triggerId`,
    /// `tenantId`, `type` and the counters cannot be patched. A trigger
    /// that is `fired` or `expired` becomes `active` again when the patch
    /// lifts the limit it hit.
    pub async fn update_async(&self, id: &str, patch: &Value) -> EngineResult<Trigger> {
        let p = Fields::with_code(patch, "patch", ErrorCode::InvalidTrigger)?;
        p.only(&["name", "description", "condition", "action", "startAt", "endAt", "maxFires", "cooldownMs", "webhookSecret", "allowUnsigned"])?;
        let now = self.clock.now();
        let generation = self.next_generation();
        let mut compiled = None;
        let mut edit = |t: &mut Trigger| {
            let mut doc = serde_json::to_value(&*t).map_err(|e| EngineError::new(ErrorCode::Internal, e.to_string()))?;
            merge_patch(&mut doc, patch);
            validate::webhook_patch(t, patch, &mut doc)?;
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
        };
        let result = self.driver.update_trigger(id, &mut edit).await?;
        let t = result.ok_or_else(|| EngineError::not_found("trigger", id))??;
        if let Some(c) = compiled {
            self.index(c, &t, false);
        }
        Ok(t)
    }

    /// `active` → `paused`.
    pub async fn pause_async(&self, id: &str) -> EngineResult<Trigger> {
        self.set_status(id, TriggerStatus::Paused, &[TriggerStatus::Active, TriggerStatus::Paused]).await
    }

    /// `paused` or `disabled` → `active`.
    pub async fn resume_async(&self, id: &str) -> EngineResult<Trigger> {
        self.set_status(id, TriggerStatus::Active, &[TriggerStatus::Paused, TriggerStatus::Disabled, TriggerStatus::Active]).await
    }

    /// Any status → `disabled`.
    pub async fn disable_async(&self, id: &str) -> EngineResult<Trigger> {
        use TriggerStatus::*;
        self.set_status(id, Disabled, &[Active, Paused, Disabled, Fired, Expired]).await
    }

    async fn set_status(&self, id: &str, to: TriggerStatus, from: &[TriggerStatus]) -> EngineResult<Trigger> {
        let now = self.clock.now();
        let mut edit = |t: &mut Trigger| {
            refresh_status(t, now);
            if !from.contains(&t.status) {
                let why = match t.status {
                    TriggerStatus::Fired => "it reached maxFires; raise maxFires with updateTrigger to re-activate it",
                    TriggerStatus::Expired => "its endAt has passed; move endAt with updateTrigger to re-activate it",
                    _ => "that change is not allowed from its status",
                };
                return Err(EngineError::invalid_trigger("status", format!("trigger {id:?} is {}: {why}", t.status.as_str())));
            }
            if t.status != to {
                t.status = to;
                t.updated_at = now;
                // Resuming a trigger whose budget or window was used up
                // while it was disabled reports where it really stands.
                refresh_status(t, now);
            }
            Ok(())
        };
        let result = self.driver.update_trigger(id, &mut edit).await?;
        result.ok_or_else(|| EngineError::not_found("trigger", id))?
    }

    /// Removes a trigger; `ENACT_NOT_FOUND` for an unknown id.
    pub async fn remove_async(&self, id: &str) -> EngineResult<()> {
        if !self.driver.remove_trigger(id).await? {
            return Err(EngineError::not_found("trigger", id));
        }
        self.unindex_id(id);
        Ok(())
    }

    fn unindex_id(&self, id: &str) {
        let mut g = self.state.lock();
        if let Some(old) = g.compiled.remove(id) {
            unindex(&mut g, &old);
        }
        self.publish_feedback(&g);
    }

    /// Applies the store's trigger changes since the last call to the
    /// indexes (all triggers, the first time or when the store no longer
    /// holds every change); returns how many triggers were re-read. A
    /// stored trigger that no longer compiles is left out, with a
    /// diagnostic.
    pub async fn sync_changes_async(&self) -> EngineResult<usize> {
        let since = self.changes_seen.load(Ordering::SeqCst);
        let changes = self.driver.trigger_changes(since).await?;
        let reload = since == 0 || !changes.complete;
        // The first load (at start: a durable store after a restart) arms
        // schedules from where they stopped, so ticks missed while the
        // process was down come due (and meet the misfire policy).
        let first_load = !self.loaded.load(Ordering::SeqCst);
        let known = |id: &str| self.state.lock().compiled.contains_key(id);
        let triggers: Vec<(String, Option<Trigger>)> = if reload {
            let all = self.driver.list_triggers(&TriggerFilter::default()).await?;
            let known: Vec<String> = self.state.lock().compiled.keys().map(|k| k.to_string()).collect();
            let stored: std::collections::HashSet<&str> = all.iter().map(|t| t.trigger_id.as_str()).collect();
            let mut out: Vec<(String, Option<Trigger>)> =
                known.into_iter().filter(|id| !stored.contains(id.as_str())).map(|id| (id, None)).collect();
            out.extend(all.into_iter().map(|t| (t.trigger_id.clone(), Some(t))));
            out
        } else {
            let mut out = Vec::with_capacity(changes.ids.len());
            for id in changes.ids {
                let t = self.driver.get_trigger(&id).await?;
                out.push((id, t));
            }
            out
        };
        let n = triggers.len();
        for (id, t) in triggers {
            match t {
                Some(t) => match Compiled::new(&t, self.next_generation()) {
                    Ok(c) => {
                        let resume = first_load && !known(&id);
                        self.index(Arc::new(c), &t, resume)
                    }
                    Err(e) => self.exec.diagnose("listener", EngineError::new(e.code, format!("trigger {id:?}: {}", e.message))),
                },
                None => self.unindex_id(&id),
            }
        }
        self.changes_seen.fetch_max(changes.seq, Ordering::SeqCst);
        self.loaded.store(true, Ordering::SeqCst);
        Ok(n)
    }

    /// Puts a compiled trigger in the indexes (replacing an older
    /// compilation of the same id) and arms its schedule: at its first tick
    /// after now, or with `resume` (a trigger this engine finds in the
    /// store at start) after its last change, which every fire makes
    /// (`updatedAt`), so that ticks missed while no engine ran are due.
    fn index(&self, c: Arc<Compiled>, t: &Trigger, resume: bool) {
        let mut g = self.state.lock();
        if let Some(old) = g.compiled.insert(c.id.clone(), c.clone()) {
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
                g.metrics.entry(tenant).or_default().entry(name.clone()).or_default().insert(c.generation, c.clone());
            }
            TriggerType::Schedule => {
                let since = if resume { millis(t.updated_at) } else { millis(self.clock.now()) };
                let from = since.max(t.start_at.map(millis).unwrap_or(i64::MIN).saturating_sub(1));
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
}

/// The synchronous forms, for a store that answers at once (the memory
/// store): tests, and hosts that hold no runtime of their own.
impl TriggerEngine {
    /// [`TriggerEngine::register_async`] at once.
    pub fn register(&self, def: &Value) -> EngineResult<Trigger> {
        ready_now(self.register_async(def))
    }

    /// [`TriggerEngine::get_async`] at once.
    pub fn get(&self, id: &str) -> EngineResult<Trigger> {
        ready_now(self.get_async(id))
    }

    /// [`TriggerEngine::list_async`] at once.
    pub fn list(&self, filter: &TriggerFilter) -> EngineResult<Vec<Trigger>> {
        ready_now(self.list_async(filter))
    }

    /// [`TriggerEngine::update_async`] at once.
    pub fn update(&self, id: &str, patch: &Value) -> EngineResult<Trigger> {
        ready_now(self.update_async(id, patch))
    }

    /// [`TriggerEngine::pause_async`] at once.
    pub fn pause(&self, id: &str) -> EngineResult<Trigger> {
        ready_now(self.pause_async(id))
    }

    /// [`TriggerEngine::resume_async`] at once.
    pub fn resume(&self, id: &str) -> EngineResult<Trigger> {
        ready_now(self.resume_async(id))
    }

    /// [`TriggerEngine::disable_async`] at once.
    pub fn disable(&self, id: &str) -> EngineResult<Trigger> {
        ready_now(self.disable_async(id))
    }

    /// [`TriggerEngine::remove_async`] at once.
    pub fn remove(&self, id: &str) -> EngineResult<()> {
        ready_now(self.remove_async(id))
    }

    /// [`TriggerEngine::emit_async`] at once.
    pub fn emit(&self, event: &Value) -> EngineResult<Vec<TriggerFiredEvent>> {
        ready_now(self.emit_async(event))
    }

    /// [`TriggerEngine::emit_batch_async`] at once.
    pub fn emit_batch(&self, events: &Value) -> EngineResult<Vec<TriggerFiredEvent>> {
        ready_now(self.emit_batch_async(events))
    }

    /// [`TriggerEngine::lifecycle_async`] at once.
    pub fn lifecycle(&self, event: &Value) -> EngineResult<Vec<TriggerFiredEvent>> {
        ready_now(self.lifecycle_async(event))
    }

    /// [`TriggerEngine::emit_text_async`] at once, outside any execution.
    pub fn emit_text(&self, text: &str, stimulus: Stimulus) -> EngineResult<Vec<TriggerFiredEvent>> {
        ready_now(self.emit_text_async(text, stimulus, &Chain::default()))
    }

    /// [`TriggerEngine::emit_text_async`] at once, made in `chain`.
    pub fn emit_text_in(&self, text: &str, stimulus: Stimulus, chain: &Chain) -> EngineResult<Vec<TriggerFiredEvent>> {
        ready_now(self.emit_text_async(text, stimulus, chain))
    }

    /// [`TriggerEngine::report_metric_async`] at once, outside any execution.
    pub fn report_metric(&self, metric: &Value) -> EngineResult<Vec<TriggerFiredEvent>> {
        ready_now(self.report_metric_async(metric, &Chain::default()))
    }

    /// [`TriggerEngine::report_metric_async`] at once, made in `chain`.
    pub fn report_metric_in(&self, metric: &Value, chain: &Chain) -> EngineResult<Vec<TriggerFiredEvent>> {
        ready_now(self.report_metric_async(metric, chain))
    }

    /// [`TriggerEngine::fire_async`] at once, outside any execution.
    pub fn fire(&self, id: &str, payload: Option<Value>) -> EngineResult<TriggerFiredEvent> {
        ready_now(self.fire_async(id, payload, &Chain::default()))
    }

    /// [`TriggerEngine::fire_async`] at once, made in `chain`.
    pub fn fire_in(&self, id: &str, payload: Option<Value>, chain: &Chain) -> EngineResult<TriggerFiredEvent> {
        ready_now(self.fire_async(id, payload, chain))
    }

    /// [`TriggerEngine::webhook_async`] at once.
    pub fn webhook(&self, id: &str, headers: &[(String, String)], body: &[u8]) -> EngineResult<TriggerFiredEvent> {
        ready_now(self.webhook_async(id, headers, body))
    }
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
