//! Stimuli and fires: `emit`, `emitBatch`, `lifecycle`, `reportMetric`,
//! `fire`, webhooks, the executor's own events fed back, and the one fire
//! step they all end in.
//!
//! A fire is one store transaction ([`Driver::fire`](crate::store::Driver::fire)):
//! the trigger's gate, its count, the schedule cursor or threshold arming,
//! and the execution's insert commit together or not at all. The execution
//! is `silent`, runs the action's callable, and an unregistered callable
//! yields a `failed` execution that says so, never a silent drop.

use std::sync::Arc;

use serde_json::{json, Value};

use super::{TriggerEngine, WEBHOOK_TOLERANCE_SECS};
use crate::error::{EngineError, EngineResult, ErrorCode};
use crate::executor::{EventKind, Notice};
use crate::model::{
    BackgroundExecution, BackgroundExecutionConfig, Chain, ChainLimit, ExecutionMode, LoopBlockedEvent, ThresholdOperator,
    Trigger, TriggerFiredEvent, TriggerStatus, TriggerType,
};
use crate::store::{Blocked, Fire, FireGate, FireParams, NewExecution, WebhookMessage};
use crate::validate::{self, Fields, SubmitRequest};
use crate::webhook::WebhookHeaders;

use super::index::Compiled;

/// Which entry point events come through, for [`TriggerEngine::emit_text`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stimulus {
    /// `emit(event)`: one application event.
    Emit,
    /// `emitBatch(events)`: an array of application events.
    EmitBatch,
    /// `lifecycle(event)`: one lifecycle event.
    Lifecycle,
}

/// Which triggers an event is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Channel {
    Event,
    Lifecycle,
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

/// An event, as passed to `emit` / `lifecycle` (and `explain`).
pub(super) struct EventIn {
    pub(super) event_type: String,
    pub(super) tenant_id: String,
    pub(super) data: Value,
}

/// A metric report, as passed to `reportMetric` (and `explainMetric`).
pub(super) struct MetricIn {
    pub(super) tenant_id: String,
    pub(super) name: String,
    pub(super) value: f64,
}

/// A fire's place in its chain: the depth its execution would have, the
/// fires its root caused so far, and the bound it would break.
pub(super) struct ChainCheck {
    pub(super) depth: u32,
    pub(super) fires: u32,
    pub(super) limit: Option<ChainLimit>,
}

/// Why a trigger did not fire.
#[derive(Clone, Debug, PartialEq)]
pub(super) enum Refused {
    Blocked(Blocked),
    Loop(ChainLimit),
    Gone,
    /// The tick was fired already, or the metric did not cross.
    Skipped,
    /// The webhook message with this id was accepted before.
    Replay(String),
    /// The trigger's webhook replay budget is full of unexpired ids; room
    /// again in this many seconds.
    ReplayFull(i64),
}

impl TriggerEngine {
    /// `emit({type, tenantId, data})`: fires the tenant's matching event
    /// triggers; one TriggerFiredEvent per fire.
    pub async fn emit_async(&self, event: &Value) -> EngineResult<Vec<TriggerFiredEvent>> {
        self.events_in(event, Stimulus::Emit, &Chain::default()).await
    }

    /// One event or a batch, from a stimulus made in `chain`.
    async fn events_in(&self, v: &Value, stimulus: Stimulus, chain: &Chain) -> EngineResult<Vec<TriggerFiredEvent>> {
        let (channel, events) = match stimulus {
            Stimulus::Emit => (Channel::Event, vec![event_in(v, "event")?]),
            Stimulus::Lifecycle => (Channel::Lifecycle, vec![event_in(v, "event")?]),
            Stimulus::EmitBatch => {
                let Value::Array(list) = v else {
                    return Err(EngineError::invalid_trigger("events", format!("expected an array, got {}", validate::describe(v))));
                };
                let parsed = list
                    .iter()
                    .enumerate()
                    .map(|(i, e)| event_in(e, "").map_err(|err| EngineError::new(err.code, format!("events[{i}]{}", at_path(&err.message)))))
                    .collect::<EngineResult<Vec<_>>>()?;
                (Channel::Event, parsed)
            }
        };
        let mut fired = Vec::new();
        for e in events {
            fired.extend(self.dispatch(channel, &e.tenant_id, &e.event_type, e.data, chain, None).await?);
        }
        Ok(fired)
    }

    /// `emitBatch(events)`: [`TriggerEngine::emit_async`] for each event, in
    /// order; the fires of all of them. A malformed event rejects the whole
    /// batch before any fires (its index is in the field path).
    pub async fn emit_batch_async(&self, events: &Value) -> EngineResult<Vec<TriggerFiredEvent>> {
        self.events_in(events, Stimulus::EmitBatch, &Chain::default()).await
    }

    /// `lifecycle({type, tenantId, data})`: the same for lifecycle triggers.
    pub async fn lifecycle_async(&self, event: &Value) -> EngineResult<Vec<TriggerFiredEvent>> {
        self.events_in(event, Stimulus::Lifecycle, &Chain::default()).await
    }

    /// `emit` / `emitBatch` / `lifecycle` of events given as JSON text.
    /// Well-formed events are read straight into place, without an
    /// intermediate map per event; anything else takes the validating path,
    /// for its precise error message.
    /// `chain`: where the call was made (`Chain::default()` outside any
    /// execution; a callable's own chain while it runs).
    pub async fn emit_text_async(&self, text: &str, stimulus: Stimulus, chain: &Chain) -> EngineResult<Vec<TriggerFiredEvent>> {
        let batch = stimulus == Stimulus::EmitBatch;
        let channel = if stimulus == Stimulus::Lifecycle { Channel::Lifecycle } else { Channel::Event };
        let fast: Option<Vec<FastEvent>> = if batch {
            serde_json::from_str(text).ok()
        } else {
            serde_json::from_str::<FastEvent>(text).ok().map(|e| vec![e])
        };
        let events = match fast.filter(|list| list.iter().all(|e| !e.event_type.is_empty() && !e.tenant_id.is_empty())) {
            Some(list) => list,
            None => {
                let v = crate::validate::parse_json(text, if batch { "events" } else { "event" }, ErrorCode::InvalidTrigger)?;
                return self.events_in(&v, stimulus, chain).await;
            }
        };
        let mut fired = Vec::new();
        for e in events {
            let data = e.data.unwrap_or_else(|| Value::Object(Default::default()));
            fired.extend(self.dispatch(channel, &e.tenant_id, &e.event_type, data, chain, None).await?);
        }
        Ok(fired)
    }

    /// Fires the matching triggers of `tenant`. With `once`, triggers
    /// listed there are skipped and those that fire (or hit the loop
    /// guard) are added: one execution's events fire a trigger once.
    pub(super) async fn dispatch(
        &self,
        channel: Channel,
        tenant: &str,
        event_type: &str,
        data: Value,
        chain: &Chain,
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
            let outcome = self.fire_compiled(&c, src, chain, FireGate::Plain).await?;
            if let (Some(seen), Ok(_) | Err(Refused::Loop(_))) = (once.as_mut(), &outcome) {
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
    /// re-arms once the comparison is false again. The arming is kept by
    /// the store, in the same step as the fire.
    pub async fn report_metric_async(&self, metric: &Value, chain: &Chain) -> EngineResult<Vec<TriggerFiredEvent>> {
        let MetricIn { tenant_id: tenant, name, value } = metric_in(metric)?;
        let candidates: Vec<Arc<Compiled>> = {
            let g = self.state.lock();
            g.metrics.get(tenant.as_str()).and_then(|m| m.get(name.as_str())).map(|b| b.values().cloned().collect()).unwrap_or_default()
        };
        let mut fired = Vec::new();
        for c in candidates {
            let (_, op, threshold) = c.metric.as_ref().expect("threshold triggers have a metric");
            let holds = compare(value, *op, *threshold);
            let source = json!({
                "name": name,
                "value": value,
                "thresholdValue": threshold,
                "thresholdOperator": op,
            });
            if let Ok(ev) = self.fire_compiled(&c, source, chain, FireGate::Crossing { holds }).await? {
                fired.push(ev);
            }
        }
        Ok(fired)
    }

    /// `fire(id, payload?)`: fires a trigger now (manual triggers, or any
    /// trigger on demand). `ENACT_TRIGGER_INACTIVE` when its gate refuses.
    pub async fn fire_async(&self, id: &str, payload: Option<Value>, chain: &Chain) -> EngineResult<TriggerFiredEvent> {
        let c = self.compiled_or_synced(id).await?;
        let source = payload.unwrap_or(Value::Null);
        self.fire_compiled(&c, source, chain, FireGate::Plain).await?.map_err(|why| inactive(id, &why))
    }

    /// `webhook(id, {headers, body})`: verifies the Standard Webhooks
    /// signature when the trigger has a `webhookSecret`, else fires only if
    /// it has `allowUnsigned` (a replayed
    /// `webhook-id` is refused: the store remembers each trigger's ids for
    /// the tolerance window), then fires with the body (parsed as JSON when
    /// it is JSON) as the trigger source.
    pub async fn webhook_async(&self, id: &str, headers: &[(String, String)], body: &[u8]) -> EngineResult<TriggerFiredEvent> {
        let c = self.compiled_or_synced(id).await?;
        if c.trigger_type != TriggerType::Webhook {
            return Err(EngineError::new(ErrorCode::NotFound, format!("trigger {id:?} is not a webhook trigger")));
        }
        let h = WebhookHeaders::from_pairs(headers.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        let mut message = None;
        if let Some(secret) = &c.secret {
            let now_secs = self.clock.now().timestamp();
            secret
                .verify(&h, body, now_secs, WEBHOOK_TOLERANCE_SECS)
                .map_err(|why| EngineError::new(ErrorCode::WebhookSignature, format!("webhook: {why}")))?;
            // The id is remembered by the fire step itself, only if the
            // trigger fires: a delivery refused (paused, cooling down, out
            // of fires) may be sent again. Ids are kept for twice the
            // tolerance: a message is accepted while its timestamp is
            // within ±tolerance of now.
            message = Some(WebhookMessage { id: h.id.unwrap_or_default(), now_secs, expires_secs: now_secs + 2 * WEBHOOK_TOLERANCE_SECS });
        } else if !c.allow_unsigned {
            // Registration and updates refuse such a trigger; one stored by
            // an older version fails closed.
            return Err(EngineError::new(
                ErrorCode::WebhookSignature,
                format!("webhook: trigger {id:?} has no webhookSecret and does not allow unsigned requests (allowUnsigned)"),
            ));
        }
        let chain = Chain { trace: trace_of_headers(headers), ..Chain::default() };
        let fired = self.fire_with_status(&c, webhook_source(body), &chain, FireGate::Plain, message).await?;
        fired.map(|(event, _)| event).map_err(|why| inactive(id, &why))
    }

    /// [`TriggerEngine::compiled`], and over a shared store, for an id this
    /// engine has not indexed, the trigger changes read first: another
    /// engine may have registered it a moment ago.
    async fn compiled_or_synced(&self, id: &str) -> EngineResult<Arc<Compiled>> {
        match self.compiled(id) {
            Err(e) if self.driver.shared() => {
                self.sync_changes_async().await?;
                self.compiled(id).map_err(|_| e)
            }
            other => other,
        }
    }

    pub(super) fn compiled(&self, id: &str) -> EngineResult<Arc<Compiled>> {
        self.state.lock().compiled.get(id).cloned().ok_or_else(|| EngineError::not_found("trigger", id))
    }

    // -- firing ------------------------------------------------------------

    /// Where a fire made in `chain` would stand against the chain's bounds
    /// (a read: nothing is counted).
    pub(super) fn chain_check(&self, chain: &Chain) -> ChainCheck {
        let depth = chain.depth + 1;
        let fires = chain.root.as_deref().map_or(0, |root| self.chains.lock().fires(root));
        let limit = if depth > self.config.max_chain_depth {
            Some(ChainLimit::MaxChainDepth)
        } else if fires >= self.config.max_chain_fires {
            Some(ChainLimit::MaxChainFires)
        } else {
            None
        };
        ChainCheck { depth, fires, limit }
    }

    /// Fires one trigger through the store's fire step. `Ok(Err(_))` when
    /// it did not fire (gate, loop guard, removed meanwhile, tick taken).
    async fn fire_compiled(&self, c: &Compiled, source: Value, chain: &Chain, gate: FireGate) -> EngineResult<Result<TriggerFiredEvent, Refused>> {
        Ok(self.fire_with_status(c, source, chain, gate, None).await?.map(|(event, _)| event))
    }

    /// [`TriggerEngine::fire_compiled`], also answering the trigger's
    /// status after the fire (`fired` when it used up `maxFires`).
    pub(super) async fn fire_with_status(
        &self,
        c: &Compiled,
        source: Value,
        chain: &Chain,
        gate: FireGate,
        webhook: Option<WebhookMessage<'_>>,
    ) -> EngineResult<Result<(TriggerFiredEvent, TriggerStatus), Refused>> {
        let now = self.clock.now();
        let ChainCheck { depth: chain_depth, fires: chain_fires, limit } = self.chain_check(chain);
        if let Some(limit) = limit {
            let first = chain.root.as_deref().is_none_or(|root| self.chains.lock().first_refusal(root, &c.id, crate::clock::millis(now)));
            if first && self.exec.listens(EventKind::LoopBlocked) {
                let name = self.driver.get_trigger(&c.id).await?.map(|t| t.name).unwrap_or_default();
                self.exec.post(Notice::LoopBlocked(Box::new(LoopBlockedEvent {
                    trigger_id: c.id.to_string(),
                    trigger_name: name,
                    tenant_id: c.tenant.to_string(),
                    chain_depth,
                    max_chain_depth: self.config.max_chain_depth,
                    limit,
                    chain_root: chain.root.clone(),
                    chain_fires,
                    max_chain_fires: self.config.max_chain_fires,
                    trigger_source: source,
                    blocked_at: now,
                })));
            }
            return Ok(Err(Refused::Loop(limit)));
        }
        if !self.exec.accepting() {
            return Err(EngineError::new(ErrorCode::Shutdown, "engine is shut down: no new work is accepted"));
        }
        let exec = &self.exec;
        let build = |t: &Trigger| -> NewExecution { exec.fired_execution(fired_request(t, &source, chain_depth, chain), now) };
        let params = FireParams { trigger_id: &c.id, now, gate, build: &build, want_record: exec.wants_queued_record(), webhook };
        let (t, execution_id, record) = match self.driver.fire(params).await? {
            Fire::Gone => return Ok(Err(Refused::Gone)),
            Fire::Blocked { why, .. } => return Ok(Err(Refused::Blocked(why))),
            Fire::Skipped => return Ok(Err(Refused::Skipped)),
            Fire::Replay => return Ok(Err(Refused::Replay(webhook.map(|m| m.id.to_owned()).unwrap_or_default()))),
            Fire::ReplayFull { until_secs } => {
                let retry_secs = until_secs.saturating_sub(webhook.map_or(until_secs, |m| m.now_secs)).max(1);
                return Ok(Err(Refused::ReplayFull(retry_secs)));
            }
            Fire::Fired { trigger, execution_id, record } => (trigger, execution_id, record),
        };
        if let Some(root) = &chain.root {
            self.chains.lock().spend(root, crate::clock::millis(now));
        }
        self.exec.accept_fired(record);
        self.exec.metrics().fired(t.trigger_type);
        let event = TriggerFiredEvent {
            trigger_id: t.trigger_id.clone(),
            trigger_name: t.name.clone(),
            trigger_type: t.trigger_type,
            execution_id,
            fired_at: now,
            trigger_source: Some(source),
            tenant_id: Some(t.tenant_id.clone()),
            chain_depth,
            chain_root: chain.root.clone(),
        };
        if self.exec.listens(EventKind::TriggerFired) {
            self.exec.post(Notice::TriggerFired(Box::new(event.clone())));
        }
        Ok(Ok((event, t.status)))
    }

    // -- the host's pull API -----------------------------------------------

    /// The executor's notices, after feeding its execution events back to
    /// event triggers; only events JS listens to are passed on. Loops until
    /// the fires it caused have posted their own notices.
    pub fn drain(self: &Arc<Self>) -> Vec<Notice> {
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
    /// one long. A failure (store trouble) does not lose the notices
    /// already drained: the fire is not made, and a diagnostic says so.
    fn feed_back(self: &Arc<Self>, kind: EventKind, rec: &BackgroundExecution) {
        let data = serde_json::to_value(rec).unwrap_or(Value::Null);
        let seen = self.fed.lock().remove(rec.execution_id.as_str()).unwrap_or_default();
        let (me, tenant, id, chain) = (self.clone(), rec.tenant_id.clone(), rec.execution_id.clone(), rec.chain());
        let work = async move {
            let mut seen = seen;
            let result = me.dispatch(Channel::Event, &tenant, kind.name(), data, &chain, Some(&mut seen)).await;
            if !seen.is_empty() && !is_final_kind(kind) {
                me.fed.lock().insert(id.into(), seen);
            }
            match result {
                // Shutting down: the fire is refused, as any new work is.
                Err(e) if e.code == ErrorCode::Shutdown => Ok(()),
                other => other.map(drop),
            }
        };
        if let Err(e) = self.exec.run("feedback", work) {
            self.exec.diagnose("feedback", e);
        }
    }
}

/// The submission a fire makes from its trigger's action.
fn fired_request(t: &Trigger, source: &Value, chain_depth: u32, chain: &Chain) -> SubmitRequest {
    let mut context = t.action.context.clone();
    if let Some(prompt) = &t.action.system_prompt {
        context.get_or_insert_with(Default::default).entry("systemPrompt".into()).or_insert_with(|| prompt.clone());
    }
    SubmitRequest {
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
        chain_root: chain.root.clone(),
        trace_context: chain.trace.as_deref().cloned(),
    }
}

/// The W3C trace context a webhook's sender put in its headers, if any:
/// the fired execution's attempts are linked to the sender's span.
fn trace_of_headers(headers: &[(String, String)]) -> Option<std::sync::Arc<crate::model::TraceContext>> {
    let mut out = crate::model::TraceContext::new();
    for (k, v) in headers {
        let k = k.to_ascii_lowercase();
        if (k == "traceparent" && v.len() <= 128) || (k == "tracestate" && v.len() <= 8192) {
            out.insert(k, v.clone());
        }
    }
    out.contains_key("traceparent").then(|| std::sync::Arc::new(out))
}

pub(super) fn inactive(id: &str, why: &Refused) -> EngineError {
    match why {
        Refused::Blocked(b) => EngineError::new(ErrorCode::TriggerInactive, format!("trigger {id:?} did not fire: {b}")),
        Refused::Loop(ChainLimit::MaxChainDepth) => {
            EngineError::new(ErrorCode::TriggerInactive, format!("trigger {id:?} did not fire: maxChainDepth reached"))
        }
        Refused::Loop(ChainLimit::MaxChainFires) => EngineError::new(
            ErrorCode::TriggerInactive,
            format!("trigger {id:?} did not fire: its chain used up maxChainFires"),
        ),
        Refused::Gone => EngineError::not_found("trigger", id),
        Refused::Skipped => EngineError::new(ErrorCode::TriggerInactive, format!("trigger {id:?} did not fire: its condition did not change")),
        Refused::Replay(msg_id) => {
            EngineError::new(ErrorCode::WebhookSignature, format!("webhook: webhook-id {msg_id:?} was already accepted (a replay)"))
        }
        // The message ends "retry after N s": the webhook handler reads N
        // for its Retry-After header.
        Refused::ReplayFull(secs) => EngineError::new(
            ErrorCode::RateLimited,
            format!("webhook: trigger {id:?} remembers as many unexpired webhook ids as its replay budget holds; nothing fired; retry after {secs} s"),
        ),
    }
}

/// A webhook body as a trigger source: its JSON, or its text.
fn webhook_source(body: &[u8]) -> Value {
    serde_json::from_slice(body).unwrap_or_else(|_| Value::String(String::from_utf8_lossy(body).into_owned()))
}

/// `.field: why` for a message `field: why` from a top-level reader (or
/// `: why` for one about the value itself, `request: why`).
fn at_path(message: &str) -> String {
    match message.strip_prefix("request:") {
        Some(rest) => format!(":{rest}"),
        None => format!(".{message}"),
    }
}

/// Reads a metric report `{tenantId, name, value}`.
pub(super) fn metric_in(metric: &Value) -> EngineResult<MetricIn> {
    let f = Fields::with_code(metric, "metric", ErrorCode::InvalidTrigger)?;
    f.only(&["tenantId", "name", "value"])?;
    let tenant_id = f.req_str("tenantId")?;
    let name = f.req_str("name")?;
    let value = f.opt_num("value")?.ok_or_else(|| f.err("value", "is required"))?;
    Ok(MetricIn { tenant_id, name, value })
}

/// Reads an event `{type, tenantId, data?}` at `path`.
pub(super) fn event_in(v: &Value, path: &str) -> EngineResult<EventIn> {
    let f = Fields::with_code(v, path, ErrorCode::InvalidTrigger)?;
    f.only(&["type", "tenantId", "data"])?;
    Ok(EventIn {
        event_type: f.req_str("type")?,
        tenant_id: f.req_str("tenantId")?,
        data: f.raw("data").cloned().unwrap_or(Value::Object(Default::default())),
    })
}

/// The event that ends an execution (after its binding events).
pub(super) fn is_final_kind(kind: EventKind) -> bool {
    matches!(kind, EventKind::Completed | EventKind::Failed | EventKind::Cancelled | EventKind::Timeout)
}

/// Whether `value <op> threshold` holds.
pub(super) fn compare(value: f64, op: ThresholdOperator, threshold: f64) -> bool {
    match op {
        ThresholdOperator::Gt => value > threshold,
        ThresholdOperator::Gte => value >= threshold,
        ThresholdOperator::Lt => value < threshold,
        ThresholdOperator::Lte => value <= threshold,
        ThresholdOperator::Eq => value == threshold,
        ThresholdOperator::Neq => value != threshold,
    }
}
