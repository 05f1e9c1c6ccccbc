//! "Why didn't it fire?": `explain(event)` and `explainMetric(metric)`
//! judge every trigger of the tenant that could see the stimulus by the
//! engine's own gates, in the engine's own order, and say whether it would
//! fire now and, if not, the first reason — in words and as data. They
//! fire, count, arm and write nothing: the store is read once
//! ([`Driver::trigger_states`](crate::store::Driver::trigger_states)), the
//! gate is [`apply_gate`] applied to a copy, the chain's budget is read.
//!
//! The order is the engine's:
//!
//! - an event: the call (`emit` reaches event triggers, `lifecycle`
//!   lifecycle triggers), the event type (the index's candidates), the
//!   pattern, the chain's bounds (checked before the store is asked), then
//!   the store's fire step: status (an `active` trigger past its `endAt`
//!   counts as expired, one at `maxFires` as fired), `startAt`, cooldown;
//! - a metric: the metric name (the index's candidates), the chain's
//!   bounds, then the fire step: the crossing (the comparison must hold,
//!   and must not have held for the last report: the store's arming), then
//!   the same gate.
//!
//! ```
//! use std::sync::Arc;
//! use enact_background_core::prelude::*;
//! use enact_background_core::triggers::ExplainSource;
//! use serde_json::json;
//!
//! struct NoHost;
//! impl Host for NoHost { fn wake(&self) {} }
//!
//! let exec = Executor::new(Arc::new(MemoryStore::new()), Arc::new(SystemClock), Arc::new(NoHost), ExecutorConfig::default());
//! exec.register_callable("bill").unwrap();
//! let triggers = TriggerEngine::new(exec, TriggerConfig::default());
//! triggers.register(&json!({"tenantId": "t", "type": "event", "name": "big orders",
//!     "condition": {"eventType": "order.*", "eventPattern": {"total": {"$gte": 100}}},
//!     "action": {"callableName": "bill"}})).unwrap();
//! let why = triggers.explain(&json!({"type": "order.paid", "tenantId": "t", "data": {"total": 50}}), ExplainSource::Emit).unwrap();
//! assert!(!why[0].would_fire);
//! assert_eq!(why[0].reason.as_deref(), Some("pattern field \"total\" failed $gte 100 (got 50)"));
//! ```

use std::sync::Arc;

use serde::Serialize;
use serde_json::Value;

use super::firing::{compare, event_in, metric_in, ChainCheck};
use super::index::Compiled;
use super::schedule::rfc3339;
use super::TriggerEngine;
use crate::error::{EngineError, EngineResult, ErrorCode};
use crate::model::{Chain, ChainLimit, ThresholdOperator, Timestamp, Trigger, TriggerStatus, TriggerType};
use crate::pattern::PatternMiss;
use crate::store::{apply_gate, ready_now, refresh_status, Blocked, TriggerFilter, TriggerState};
use crate::validate::Fields;

/// Which call an explained event stands for: `options.source` of
/// `explain(event, options)`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ExplainSource {
    /// `emit(event)`: event triggers (the default).
    #[default]
    Emit,
    /// `lifecycle(event)`: lifecycle triggers.
    Lifecycle,
}

impl ExplainSource {
    /// Reads `options` of `explain(event, options)` (`null`: the
    /// defaults): `{ source?: 'emit' | 'lifecycle' }`.
    pub fn from_options(options: &Value) -> EngineResult<Self> {
        if options.is_null() {
            return Ok(Self::Emit);
        }
        let f = Fields::with_code(options, "options", ErrorCode::InvalidTrigger)?;
        f.only(&["source"])?;
        let source = f.opt_enum("source", &["emit", "lifecycle"], |s| match s {
            "emit" => Some(Self::Emit),
            "lifecycle" => Some(Self::Lifecycle),
            _ => None,
        })?;
        Ok(source.unwrap_or_default())
    }

    fn name(self) -> &'static str {
        match self {
            Self::Emit => "emit",
            Self::Lifecycle => "lifecycle",
        }
    }

    /// The call a trigger of type `t` listens to, if it listens to events.
    fn of(t: TriggerType) -> Option<Self> {
        match t {
            TriggerType::Event => Some(Self::Emit),
            TriggerType::Lifecycle => Some(Self::Lifecycle),
            _ => None,
        }
    }
}

/// Whether one trigger would fire now, and if not the first reason.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TriggerExplanation {
    /// The trigger.
    pub trigger_id: String,
    /// Its name.
    pub trigger_name: String,
    /// Its type.
    pub trigger_type: TriggerType,
    /// Its status now (an `active` trigger past its `endAt` reads
    /// `expired`, one at `maxFires` reads `fired`, as `getTrigger` says).
    pub status: TriggerStatus,
    /// Whether the stimulus would fire it now.
    pub would_fire: bool,
    /// The first reason it would not fire, in words; `None` when it would.
    pub reason: Option<String>,
    /// The same reason as data; `None` when it would fire.
    pub detail: Option<ExplainDetail>,
}

/// Why a trigger would not fire, as data (`kind` names the gate).
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case", rename_all_fields = "camelCase")]
pub enum ExplainDetail {
    /// It listens to the other call: a lifecycle trigger and `emit`, or an
    /// event trigger and `lifecycle`. Listed only when its event type
    /// matches (otherwise it could not see the event either way).
    Source {
        /// The call it listens to.
        expected: ExplainSource,
        /// The call explained.
        got: ExplainSource,
    },
    /// The event type does not match `eventType`.
    Type {
        /// `eventType` as written (`order.*`).
        expected: String,
        /// The event's type.
        got: String,
    },
    /// A pattern key failed (see [`PatternMiss`]).
    Pattern(PatternMiss),
    /// The stored definition does not compile (the engine left it out of
    /// its indexes, with a diagnostic).
    Invalid {
        /// The compiler's message.
        message: String,
    },
    /// The call is made inside a chain of triggers at `maxChainDepth`.
    ChainDepth {
        /// The depth the fired execution would have.
        depth: u32,
        /// The engine's bound.
        max_chain_depth: u32,
    },
    /// The chain's root caused `maxChainFires` fires already.
    ChainFires {
        /// Fires the root's chain caused.
        fires: u32,
        /// The engine's bound.
        max_chain_fires: u32,
    },
    /// It is `paused` or `disabled` (or `fired` / `expired` without the
    /// limit that would say why).
    Status {
        /// Its status.
        status: TriggerStatus,
    },
    /// Its `startAt` is still ahead.
    NotStarted {
        /// Its `startAt`.
        start_at: Timestamp,
    },
    /// Its `endAt` has passed (it is, or now counts as, `expired`).
    Ended {
        /// Its `endAt`.
        end_at: Timestamp,
    },
    /// It reached `maxFires` (it is, or now counts as, `fired`).
    MaxFires {
        /// Its `maxFires`.
        max_fires: u64,
        /// Its `fireCount`.
        fire_count: u64,
    },
    /// It fired less than `cooldownMs` ago.
    Cooldown {
        /// How long the cooldown still runs, by the engine's clock.
        remaining_ms: u64,
        /// When it ends (`lastFiredAt + cooldownMs`).
        until: Timestamp,
    },
    /// The metric's name is not the trigger's `metricName`.
    Metric {
        /// Its `metricName`.
        expected: String,
        /// The metric's name.
        got: String,
    },
    /// The comparison `value <operator> thresholdValue` is false.
    Threshold {
        /// Its `thresholdOperator`.
        operator: ThresholdOperator,
        /// Its `thresholdValue`.
        threshold_value: f64,
        /// The reported value.
        value: f64,
    },
    /// The comparison holds, but held for the last report too: a threshold
    /// fires on a crossing, and re-arms only once a report makes the
    /// comparison false.
    Armed {
        /// Its `thresholdOperator`.
        operator: ThresholdOperator,
        /// Its `thresholdValue`.
        threshold_value: f64,
        /// The reported value.
        value: f64,
    },
}

impl std::fmt::Display for ExplainDetail {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Source { expected, got } => write!(
                f,
                "it is {} trigger: it listens to {}() events, not {}()",
                if *expected == ExplainSource::Lifecycle { "a lifecycle" } else { "an event" },
                expected.name(),
                got.name()
            ),
            Self::Type { expected, got } => write!(f, "event type {got:?} does not match eventType {expected:?}"),
            Self::Pattern(miss) => miss.fmt(f),
            Self::Invalid { message } => write!(f, "its stored definition does not compile: {message}"),
            Self::ChainDepth { depth, max_chain_depth } => {
                write!(f, "chain depth {depth} would exceed maxChainDepth {max_chain_depth} (the fire would be a trigger.loop_blocked)")
            }
            Self::ChainFires { fires, max_chain_fires } => {
                write!(f, "its chain used up maxChainFires ({fires} of {max_chain_fires}; the fire would be a trigger.loop_blocked)")
            }
            Self::Status { status } => write!(f, "it is {}", status.as_str()),
            Self::NotStarted { start_at } => write!(f, "not started: startAt is {}", rfc3339(*start_at)),
            Self::Ended { end_at } => write!(f, "ended: endAt {} has passed", rfc3339(*end_at)),
            Self::MaxFires { max_fires, fire_count } => write!(f, "maxFires reached ({fire_count} of {max_fires})"),
            Self::Cooldown { remaining_ms, until } => write!(f, "cooling down for {} (until {})", seconds(*remaining_ms), rfc3339(*until)),
            Self::Metric { expected, got } => write!(f, "metric {got:?} does not match metricName {expected:?}"),
            Self::Threshold { operator, threshold_value, value } => write!(f, "value {value} is not {} {threshold_value}", symbol(*operator)),
            Self::Armed { operator, threshold_value: t, .. } => {
                let (already, waiting) = match operator {
                    ThresholdOperator::Gt => (format!("above {t}"), format!("drop to {t} or below")),
                    ThresholdOperator::Gte => (format!("at or above {t}"), format!("drop below {t}")),
                    ThresholdOperator::Lt => (format!("below {t}"), format!("rise to {t} or above")),
                    ThresholdOperator::Lte => (format!("at or below {t}"), format!("rise above {t}")),
                    ThresholdOperator::Eq => (format!("equal to {t}"), format!("differ from {t}")),
                    ThresholdOperator::Neq => (format!("different from {t}"), format!("equal {t}")),
                };
                write!(f, "already {already} at the last report: waiting for the value to {waiting} before it can fire again")
            }
        }
    }
}

/// `12 s`, `0.5 s`, `11.25 s`: milliseconds as seconds, without trailing
/// zeros.
fn seconds(ms: u64) -> String {
    let whole = ms / 1000;
    let frac = ms % 1000;
    if frac == 0 {
        return format!("{whole} s");
    }
    let digits = format!("{frac:03}");
    format!("{whole}.{} s", digits.trim_end_matches('0'))
}

fn symbol(op: ThresholdOperator) -> &'static str {
    match op {
        ThresholdOperator::Gt => ">",
        ThresholdOperator::Gte => ">=",
        ThresholdOperator::Lt => "<",
        ThresholdOperator::Lte => "<=",
        ThresholdOperator::Eq => "==",
        ThresholdOperator::Neq => "!=",
    }
}

impl TriggerExplanation {
    fn new(t: &Trigger, status: TriggerStatus, detail: Option<ExplainDetail>) -> Self {
        Self {
            trigger_id: t.trigger_id.clone(),
            trigger_name: t.name.clone(),
            trigger_type: t.trigger_type,
            status,
            would_fire: detail.is_none(),
            reason: detail.as_ref().map(ToString::to_string),
            detail,
        }
    }
}

/// What the store's fire step would refuse `t` for at `now`: [`apply_gate`]
/// itself, on a copy, its refusal named as data.
fn gate(t: &Trigger, now: Timestamp) -> Option<ExplainDetail> {
    let (gate, _) = apply_gate(&mut t.clone(), now);
    let why = gate.err()?;
    Some(match why {
        Blocked::Inactive(TriggerStatus::Fired) if t.max_fires.is_some_and(|m| t.fire_count >= m) => {
            ExplainDetail::MaxFires { max_fires: t.max_fires.unwrap_or_default(), fire_count: t.fire_count }
        }
        Blocked::Inactive(TriggerStatus::Expired) if t.end_at.is_some_and(|e| now > e) => {
            ExplainDetail::Ended { end_at: t.end_at.unwrap_or(now) }
        }
        Blocked::Inactive(status) => ExplainDetail::Status { status },
        Blocked::NotStarted(start_at) => ExplainDetail::NotStarted { start_at },
        Blocked::Cooldown(remaining_ms) => {
            let until = t.last_fired_at.unwrap_or(now) + chrono::Duration::milliseconds(t.cooldown_ms.unwrap_or_default() as i64);
            ExplainDetail::Cooldown { remaining_ms, until }
        }
    })
}

/// The status `t` reads now (`getTrigger`'s), without writing it back.
fn status_now(t: &Trigger, now: Timestamp) -> TriggerStatus {
    let mut probe = t.clone();
    refresh_status(&mut probe, now);
    probe.status
}

impl TriggerEngine {
    /// `explain(event, { source })`: for every event trigger of the event's
    /// tenant (`source` emit) or lifecycle trigger (`source` lifecycle), in
    /// registration order, whether the event would fire it now and if not
    /// the first reason, in the engine's order (see the module docs); also
    /// the other call's triggers whose event type matches, with the reason
    /// that they listen to the other call. `chain`: where the call is made
    /// (a callable's chain while it runs). Fires, counts and writes
    /// nothing; over a shared store, trigger changes made elsewhere are
    /// read first, as a fire of an unknown id does.
    pub async fn explain_async(&self, event: &Value, source: ExplainSource, chain: &Chain) -> EngineResult<Vec<TriggerExplanation>> {
        let e = event_in(event, "event")?;
        let states = self.tenant_states(&e.tenant_id).await?;
        let now = self.clock.now();
        let chained = self.chain_refusal(chain);
        let mut out = Vec::new();
        for s in states {
            let t = &s.trigger;
            let Some(listens) = ExplainSource::of(t.trigger_type) else { continue };
            let status = status_now(t, now);
            let c = match self.compiled_for(t) {
                Ok(c) => c,
                Err(e) if listens == source => {
                    out.push(TriggerExplanation::new(t, status, Some(ExplainDetail::Invalid { message: e.message })));
                    continue;
                }
                Err(_) => continue,
            };
            let type_matches = c.event_type.as_ref().is_some_and(|m| m.matches(&e.event_type));
            let detail = if listens != source {
                if !type_matches {
                    continue;
                }
                Some(ExplainDetail::Source { expected: listens, got: source })
            } else if !type_matches {
                Some(ExplainDetail::Type { expected: t.condition.event_type.clone().unwrap_or_default(), got: e.event_type.clone() })
            } else if let Some(miss) = c.pattern.as_ref().and_then(|p| p.explain(&e.data)) {
                Some(ExplainDetail::Pattern(miss))
            } else {
                chained.clone().or_else(|| gate(t, now))
            };
            out.push(TriggerExplanation::new(t, status, detail));
        }
        Ok(out)
    }

    /// `explainMetric({tenantId, name, value})`: for every threshold
    /// trigger of the tenant, in registration order, whether the report
    /// would fire it now and if not the first reason: the metric's name,
    /// the chain's bounds, the comparison, the arming (the comparison held
    /// for the last report too: no crossing), then the trigger's gate.
    /// Reads the arming from the store and changes nothing.
    pub async fn explain_metric_async(&self, metric: &Value, chain: &Chain) -> EngineResult<Vec<TriggerExplanation>> {
        let m = metric_in(metric)?;
        let states = self.tenant_states(&m.tenant_id).await?;
        let now = self.clock.now();
        let chained = self.chain_refusal(chain);
        let mut out = Vec::new();
        for s in states {
            let t = &s.trigger;
            if t.trigger_type != TriggerType::Threshold {
                continue;
            }
            let status = status_now(t, now);
            let metric = self.compiled_for(t).and_then(|c| {
                c.metric.clone().ok_or_else(|| EngineError::invalid_trigger("condition", "a threshold trigger needs metricName, thresholdValue and thresholdOperator"))
            });
            let (name, operator, threshold_value) = match metric {
                Ok(metric) => metric,
                Err(e) => {
                    out.push(TriggerExplanation::new(t, status, Some(ExplainDetail::Invalid { message: e.message })));
                    continue;
                }
            };
            let value = m.value;
            let detail = if *name != *m.name {
                Some(ExplainDetail::Metric { expected: name.to_string(), got: m.name.clone() })
            } else if let Some(refused) = chained.clone() {
                Some(refused)
            } else if !compare(value, operator, threshold_value) {
                Some(ExplainDetail::Threshold { operator, threshold_value, value })
            } else if s.armed {
                Some(ExplainDetail::Armed { operator, threshold_value, value })
            } else {
                gate(t, now)
            };
            out.push(TriggerExplanation::new(t, status, detail));
        }
        Ok(out)
    }

    /// The tenant's triggers with their store state, after reading the
    /// trigger changes of other engines sharing the store.
    async fn tenant_states(&self, tenant: &str) -> EngineResult<Vec<TriggerState>> {
        if self.driver.shared() {
            self.sync_changes_async().await?;
        }
        let filter = TriggerFilter { tenant_id: Some(tenant.to_owned()), ..TriggerFilter::default() };
        Ok(self.driver.trigger_states(&filter).await?)
    }

    /// The compiled trigger the engine matches with (its index's), or a
    /// compilation of the stored definition when the index has none.
    fn compiled_for(&self, t: &Trigger) -> EngineResult<Arc<Compiled>> {
        if let Some(c) = self.state.lock().compiled.get(t.trigger_id.as_str()) {
            return Ok(c.clone());
        }
        Compiled::new(t, 0).map(Arc::new)
    }

    /// What the chain's bounds would refuse a fire made in `chain` for.
    fn chain_refusal(&self, chain: &Chain) -> Option<ExplainDetail> {
        let ChainCheck { depth, fires, limit } = self.chain_check(chain);
        match limit? {
            ChainLimit::MaxChainDepth => Some(ExplainDetail::ChainDepth { depth, max_chain_depth: self.config.max_chain_depth }),
            ChainLimit::MaxChainFires => Some(ExplainDetail::ChainFires { fires, max_chain_fires: self.config.max_chain_fires }),
        }
    }

    /// [`TriggerEngine::explain_async`] at once, outside any execution.
    pub fn explain(&self, event: &Value, source: ExplainSource) -> EngineResult<Vec<TriggerExplanation>> {
        ready_now(self.explain_async(event, source, &Chain::default()))
    }

    /// [`TriggerEngine::explain_async`] at once, made in `chain`.
    pub fn explain_in(&self, event: &Value, source: ExplainSource, chain: &Chain) -> EngineResult<Vec<TriggerExplanation>> {
        ready_now(self.explain_async(event, source, chain))
    }

    /// [`TriggerEngine::explain_metric_async`] at once, outside any execution.
    pub fn explain_metric(&self, metric: &Value) -> EngineResult<Vec<TriggerExplanation>> {
        ready_now(self.explain_metric_async(metric, &Chain::default()))
    }

    /// [`TriggerEngine::explain_metric_async`] at once, made in `chain`.
    pub fn explain_metric_in(&self, metric: &Value, chain: &Chain) -> EngineResult<Vec<TriggerExplanation>> {
        ready_now(self.explain_metric_async(metric, chain))
    }
}
