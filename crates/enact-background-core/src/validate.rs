//! Validation of untrusted input (JSON from JavaScript) into typed requests.
//! Every error names the field at fault, e.g. `config.priority: expected an
//! integer from 0 to 255, got 300`.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use crate::error::{EngineError, EngineResult, ErrorCode};
use crate::model::{
    BackgroundExecutionConfig, ExecutionMode, JsonMap, MisfirePolicy, RetryConfig, TargetBindingConfig,
    TargetType, ThresholdOperator, Timestamp, TransformType, Trigger, TriggerAction, TriggerCondition,
    TriggerStatus, TriggerType,
};

/// A validated submission.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SubmitRequest {
    /// Caller-chosen id (kept when non-empty), else a new `exec_` id.
    pub execution_id: Option<String>,
    /// Owning tenant.
    pub tenant_id: String,
    /// Registered callable.
    pub callable_name: String,
    /// Input for the callable.
    pub input: Option<String>,
    /// String context.
    pub context: Option<BTreeMap<String, String>>,
    /// How it runs.
    pub config: BackgroundExecutionConfig,
    /// Caller's metadata.
    pub metadata: Option<JsonMap>,
    /// Trigger that spawned it.
    pub trigger_id: Option<String>,
    /// What fired the trigger.
    pub trigger_source: Option<Value>,
    /// Trigger chain depth (see [`crate::model::BackgroundExecution::chain_depth`]).
    pub chain_depth: u32,
    /// The chain's root (see [`crate::model::BackgroundExecution::chain_root`]).
    pub chain_root: Option<String>,
    /// The submitter's trace context (see
    /// [`crate::model::BackgroundExecution::trace_context`]).
    pub trace_context: Option<crate::model::TraceContext>,
}

/// Entries a `traceContext` may hold, and the bytes of each key and value:
/// W3C's `traceparent` is 55 bytes, `tracestate` at most 32 members of 256.
const TRACE_ENTRIES: usize = 8;
const TRACE_KEY_LEN: usize = 64;
const TRACE_VALUE_LEN: usize = 8192;

/// Validates a trace context carrier: a small map of short strings.
pub fn trace_context(f: &Fields<'_>, key: &str) -> EngineResult<Option<crate::model::TraceContext>> {
    let Some(map) = f.opt_string_map(key)? else { return Ok(None) };
    if map.len() > TRACE_ENTRIES {
        return Err(f.err(key, format!("expected at most {TRACE_ENTRIES} entries, got {}", map.len())));
    }
    for (k, v) in &map {
        if k.is_empty() || k.len() > TRACE_KEY_LEN || v.len() > TRACE_VALUE_LEN || k.contains('\0') || v.contains('\0') {
            return Err(f.err(
                key,
                format!("entry {k:?}: expected a key of 1 to {TRACE_KEY_LEN} bytes and a value of at most {TRACE_VALUE_LEN} bytes, without NUL"),
            ));
        }
    }
    Ok((!map.is_empty()).then_some(map))
}

/// A short description of a JSON value's type for error messages.
pub fn describe(v: &Value) -> String {
    match v {
        Value::Null => "null".into(),
        Value::Bool(b) => format!("boolean {b}"),
        Value::Number(n) => format!("{n}"),
        Value::String(s) if s.chars().count() > 40 => "a string".into(),
        Value::String(s) => format!("{s:?}"),
        Value::Array(_) => "an array".into(),
        Value::Object(_) => "an object".into(),
    }
}

/// The longest caller-chosen id (`executionId`, `triggerId`), in bytes:
/// ids are keys in every store and travel in every record and event.
pub const MAX_ID_LEN: usize = 255;

/// Whether a tenant or callable name needs no check of the validating
/// reader: non-empty, at most [`MAX_ID_LEN`] bytes, no NUL (see
/// `Fields::req_id`, which says what is wrong otherwise).
pub fn plain_name(s: &str) -> bool {
    !s.is_empty() && s.len() <= MAX_ID_LEN && !s.contains('\0')
}

/// How deep JSON values may nest (objects and arrays together, the
/// outermost counting as 1): the limit of serde_json's reader (its
/// recursion budget of 128 refuses the 128th level), which reads nesting
/// by recursion. JS refuses the same depth before a value crosses
/// (lib/args.js reads it from `protocol()`).
pub const MAX_JSON_DEPTH: usize = 127;

/// Why JSON text could not be read, in words.
pub fn json_fault(e: &serde_json::Error) -> String {
    let s = e.to_string();
    if s.starts_with("recursion limit exceeded") {
        format!("nested deeper than {MAX_JSON_DEPTH} levels")
    } else {
        format!("not valid JSON ({s})")
    }
}

/// JSON text from JavaScript as a value; what cannot be read is an error
/// of `code` naming `field`. Nesting is bounded ([`MAX_JSON_DEPTH`]), so
/// no input can exhaust the stack.
pub fn parse_json(text: &str, field: &str, code: ErrorCode) -> EngineResult<Value> {
    serde_json::from_str(text).map_err(|e| EngineError::new(code, format!("{field}: {}", json_fault(&e))))
}

/// The items of a JSON array, each still as text, so that one item nested
/// too deeply (or otherwise unreadable as its type) fails alone. The
/// reader skips over item text without recursion, whatever its depth.
pub fn json_items(text: &str, field: &str, code: ErrorCode) -> EngineResult<Vec<Box<serde_json::value::RawValue>>> {
    serde_json::from_str(text).map_err(|e| EngineError::new(code, format!("{field}: {}", json_fault(&e))))
}

fn join(prefix: &str, key: &str) -> String {
    if prefix.is_empty() { key.to_owned() } else { format!("{prefix}.{key}") }
}

/// Field readers over one JSON object, naming fields by their full path.
pub struct Fields<'a> {
    obj: &'a Map<String, Value>,
    prefix: String,
    code: ErrorCode,
}

impl<'a> Fields<'a> {
    /// Reads `v` as an object at `path` (empty for the top level); errors
    /// are `ENACT_INVALID_EXECUTION`.
    pub fn of(v: &'a Value, path: &str) -> EngineResult<Self> {
        Self::with_code(v, path, ErrorCode::InvalidExecution)
    }

    /// Like [`Fields::of`], with errors carrying `code` (nested readers
    /// inherit it).
    pub fn with_code(v: &'a Value, path: &str, code: ErrorCode) -> EngineResult<Self> {
        match v {
            Value::Object(obj) => Ok(Self { obj, prefix: path.to_owned(), code }),
            other => Err(EngineError::new(
                code,
                format!("{}: expected an object, got {}", if path.is_empty() { "request" } else { path }, describe(other)),
            )),
        }
    }

    /// Whether `key` is present (even as null).
    pub fn has(&self, key: &str) -> bool {
        self.obj.contains_key(key)
    }

    /// Full path of `key`.
    pub fn path(&self, key: &str) -> String {
        join(&self.prefix, key)
    }

    /// The raw value, `None` when absent or null.
    pub fn raw(&self, key: &str) -> Option<&'a Value> {
        self.obj.get(key).filter(|v| !v.is_null())
    }

    /// An error about `key`, carrying this reader's code.
    pub fn err(&self, key: &str, why: impl std::fmt::Display) -> EngineError {
        EngineError::new(self.code, format!("{}: {why}", self.path(key)))
    }

    /// An optional string.
    pub fn opt_str(&self, key: &str) -> EngineResult<Option<String>> {
        match self.raw(key) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(v) => Err(self.err(key, format!("expected a string, got {}", describe(v)))),
        }
    }

    /// A caller-chosen id: a string of at most [`MAX_ID_LEN`] bytes; empty
    /// counts as absent (a new id is made).
    pub fn opt_id(&self, key: &str) -> EngineResult<Option<String>> {
        match self.opt_str(key)? {
            Some(s) if s.len() > MAX_ID_LEN => Err(self.err(key, format!("longer than {MAX_ID_LEN} bytes ({} bytes)", s.len()))),
            Some(s) if s.contains('\0') => Err(self.err(key, "must not contain a NUL character")),
            Some(s) if s.is_empty() => Ok(None),
            other => Ok(other),
        }
    }

    /// A required, non-empty string of at most [`MAX_ID_LEN`] bytes (a
    /// tenant or callable name: indexed by the durable stores).
    pub fn req_id(&self, key: &str) -> EngineResult<String> {
        let s = self.req_str(key)?;
        if s.len() > MAX_ID_LEN {
            return Err(self.err(key, format!("longer than {MAX_ID_LEN} bytes ({} bytes)", s.len())));
        }
        Ok(s)
    }

    /// A required, non-empty string.
    pub fn req_str(&self, key: &str) -> EngineResult<String> {
        match self.opt_str(key)? {
            // Names and ids are stored as text columns (PostgreSQL's text
            // cannot hold NUL).
            Some(s) if s.contains('\0') => Err(self.err(key, "must not contain a NUL character")),
            Some(s) if !s.is_empty() => Ok(s),
            Some(_) => Err(self.err(key, "must not be empty")),
            None => Err(self.err(key, "is required")),
        }
    }

    /// An optional integer within `min..=max`.
    pub fn opt_int(&self, key: &str, min: u64, max: u64) -> EngineResult<Option<u64>> {
        let Some(v) = self.raw(key) else { return Ok(None) };
        let n = v.as_f64().filter(|f| f.fract() == 0.0 && *f >= min as f64 && *f <= max as f64);
        match n {
            Some(f) => Ok(Some(f as u64)),
            None => Err(self.err(key, format!("expected an integer from {min} to {max}, got {}", describe(v)))),
        }
    }

    /// An optional finite number.
    pub fn opt_num(&self, key: &str) -> EngineResult<Option<f64>> {
        match self.raw(key) {
            None => Ok(None),
            Some(v) => v.as_f64().filter(|f| f.is_finite()).map(Some).ok_or_else(|| {
                self.err(key, format!("expected a number, got {}", describe(v)))
            }),
        }
    }

    /// An optional boolean.
    pub fn opt_bool(&self, key: &str) -> EngineResult<Option<bool>> {
        match self.raw(key) {
            None => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(*b)),
            Some(v) => Err(self.err(key, format!("expected a boolean, got {}", describe(v)))),
        }
    }

    /// An optional RFC 3339 timestamp.
    pub fn opt_time(&self, key: &str) -> EngineResult<Option<Timestamp>> {
        match self.opt_str(key)? {
            None => Ok(None),
            Some(s) => chrono::DateTime::parse_from_rfc3339(&s)
                .map(|t| Some(t.with_timezone(&chrono::Utc)))
                .map_err(|e| self.err(key, format!("expected an RFC 3339 time, got {s:?} ({e})"))),
        }
    }

    /// An optional object of strings.
    pub fn opt_string_map(&self, key: &str) -> EngineResult<Option<BTreeMap<String, String>>> {
        let Some(v) = self.raw(key) else { return Ok(None) };
        let obj = Fields::with_code(v, &self.path(key), self.code)?;
        let mut out = BTreeMap::new();
        for (k, v) in obj.obj {
            match v {
                Value::String(s) => {
                    out.insert(k.clone(), s.clone());
                }
                other => {
                    return Err(obj.err(k, format!("expected a string, got {}", describe(other))))
                }
            }
        }
        Ok(Some(out))
    }

    /// An optional JSON object.
    pub fn opt_object(&self, key: &str) -> EngineResult<Option<JsonMap>> {
        match self.raw(key) {
            None => Ok(None),
            Some(Value::Object(m)) => Ok(Some(m.clone())),
            Some(v) => Err(self.err(key, format!("expected an object, got {}", describe(v)))),
        }
    }

    /// An optional nested object.
    pub fn opt_fields(&self, key: &str) -> EngineResult<Option<Fields<'a>>> {
        self.raw(key).map(|v| Fields::with_code(v, &self.path(key), self.code)).transpose()
    }

    /// An optional value parsed by `parse`, listing `allowed` on failure.
    pub fn opt_enum<T>(&self, key: &str, allowed: &[&str], parse: impl Fn(&str) -> Option<T>) -> EngineResult<Option<T>> {
        match self.raw(key) {
            None => Ok(None),
            Some(Value::String(s)) => parse(s).map(Some).ok_or_else(|| {
                self.err(key, format!("expected one of {}, got {s:?}", allowed.join(", ")))
            }),
            Some(v) => Err(self.err(key, format!("expected one of {}, got {}", allowed.join(", "), describe(v)))),
        }
    }

    /// Rejects keys not in `known`, so a typo does not pass silently.
    pub fn only(&self, known: &[&str]) -> EngineResult<()> {
        match self.obj.keys().find(|k| !known.contains(&k.as_str())) {
            Some(k) => Err(self.err(k, format!("unknown field (expected one of {})", known.join(", ")))),
            None => Ok(()),
        }
    }
}

fn parse_serde<T: serde::de::DeserializeOwned>(s: &str) -> Option<T> {
    serde_json::from_value(Value::String(s.to_owned())).ok()
}

/// Validates a retry policy at `f`.
pub fn retry_config(f: &Fields<'_>) -> EngineResult<RetryConfig> {
    f.only(&["maxAttempts", "backoffMs", "backoffMultiplier"])?;
    let d = RetryConfig::default();
    let multiplier = f.opt_num("backoffMultiplier")?.unwrap_or(d.backoff_multiplier);
    if !(1.0..=100.0).contains(&multiplier) {
        return Err(f.err("backoffMultiplier", format!("expected a number from 1 to 100, got {multiplier}")));
    }
    Ok(RetryConfig {
        max_attempts: f.opt_int("maxAttempts", 1, 1000)?.map_or(d.max_attempts, |n| n as u32),
        backoff_ms: f.opt_int("backoffMs", 0, 86_400_000)?.unwrap_or(d.backoff_ms),
        backoff_multiplier: multiplier,
    })
}

/// Validates a target binding at `f`.
pub fn target_binding(f: &Fields<'_>) -> EngineResult<TargetBindingConfig> {
    f.only(&["targetType", "targetPath", "transform", "maxLength", "jsonPath", "threadId", "executionId"])?;
    let types: Vec<&str> = TargetType::ALL.iter().map(|t| t.as_str()).collect();
    let target_type = f
        .opt_enum("targetType", &types, TargetType::parse)?
        .ok_or_else(|| f.err("targetType", "is required"))?;
    let transform = f
        .opt_enum("transform", &["none", "first_line", "truncate", "json_extract"], parse_serde::<TransformType>)?
        .unwrap_or_default();
    let json_path = f.opt_str("jsonPath")?;
    if transform == TransformType::JsonExtract && json_path.as_deref().is_none_or(str::is_empty) {
        return Err(f.err("jsonPath", "is required by the json_extract transform"));
    }
    Ok(TargetBindingConfig {
        target_type,
        target_path: f.opt_str("targetPath")?,
        transform,
        max_length: f.opt_int("maxLength", 0, u32::MAX as u64)?.map(|n| n as usize),
        json_path,
        thread_id: f.opt_str("threadId")?,
        execution_id: f.opt_str("executionId")?,
    })
}

/// Validates an execution config at `f`.
pub fn execution_config(f: &Fields<'_>) -> EngineResult<BackgroundExecutionConfig> {
    f.only(&["mode", "priority", "timeoutMs", "targetBinding", "callbackUrl", "retry", "runAt", "delayMs"])?;
    let d = BackgroundExecutionConfig::default();
    let mode = f
        .opt_enum("mode", &["fire_and_forget", "silent", "deferred"], parse_serde::<ExecutionMode>)?
        .unwrap_or_default();
    let callback_url = f.opt_str("callbackUrl")?;
    if let Some(url) = &callback_url {
        if !(url.starts_with("http://") || url.starts_with("https://")) {
            return Err(EngineError::invalid(&f.path("callbackUrl"), format!("expected an http(s) URL, got {url:?}")));
        }
    }
    let run_at = f.opt_time("runAt")?;
    let delay_ms = f.opt_int("delayMs", 0, 10 * 365 * 86_400_000)?;
    if mode != ExecutionMode::Deferred {
        for (key, set) in [("runAt", run_at.is_some()), ("delayMs", delay_ms.is_some())] {
            if set {
                return Err(EngineError::invalid(&f.path(key), "only a deferred execution can be scheduled (set config.mode to \"deferred\")"));
            }
        }
    }
    if run_at.is_some() && delay_ms.is_some() {
        return Err(EngineError::invalid(&f.path("delayMs"), "give runAt or delayMs, not both"));
    }
    Ok(BackgroundExecutionConfig {
        mode,
        priority: f.opt_int("priority", 0, 255)?.map_or(d.priority, |n| n as u8),
        timeout_ms: f.opt_int("timeoutMs", 1, 365 * 86_400_000)?.unwrap_or(d.timeout_ms),
        target_binding: f.opt_fields("targetBinding")?.map(|t| target_binding(&t).map(Box::new)).transpose()?,
        callback_url,
        retry: f.opt_fields("retry")?.map(|r| retry_config(&r)).transpose()?,
        run_at,
        delay_ms,
    })
}

/// Validates a `submit` request.
pub fn submit_request(v: &Value) -> EngineResult<SubmitRequest> {
    let f = Fields::of(v, "")?;
    f.only(&["executionId", "tenantId", "callableName", "input", "context", "config", "metadata", "traceContext"])?;
    Ok(SubmitRequest {
        execution_id: f.opt_id("executionId")?,
        tenant_id: f.req_id("tenantId")?,
        callable_name: f.req_id("callableName")?,
        input: f.opt_str("input")?,
        context: f.opt_string_map("context")?,
        config: match f.opt_fields("config")? {
            Some(c) => execution_config(&c)?,
            None => BackgroundExecutionConfig::default(),
        },
        metadata: f.opt_object("metadata")?,
        trigger_id: None,
        trigger_source: None,
        chain_depth: 0,
        chain_root: None,
        trace_context: trace_context(&f, "traceContext")?,
    })
}

/// Fields of a trigger definition, in enact-core's spelling.
const TRIGGER_FIELDS: &[&str] = &[
    "triggerId", "tenantId", "name", "description", "type", "status", "condition", "action", "startAt", "endAt",
    "maxFires", "fireCount", "cooldownMs", "lastFiredAt", "createdAt", "updatedAt", "webhookSecret", "allowUnsigned",
];

/// Condition fields, with the trigger types each applies to.
const CONDITION_FIELDS: &[(&str, &[TriggerType])] = &[
    ("eventType", &[TriggerType::Event, TriggerType::Lifecycle]),
    ("eventPattern", &[TriggerType::Event, TriggerType::Lifecycle]),
    ("cronExpression", &[TriggerType::Schedule]),
    ("intervalSeconds", &[TriggerType::Schedule]),
    ("timezone", &[TriggerType::Schedule]),
    ("misfirePolicy", &[TriggerType::Schedule]),
    ("metricName", &[TriggerType::Threshold]),
    ("thresholdValue", &[TriggerType::Threshold]),
    ("thresholdOperator", &[TriggerType::Threshold]),
];


/// Validates a trigger definition: enact-core's JSON as it is, or a
/// minimal definition (`tenantId`, `type`, `condition`, `action`) whose id,
/// name, status, counts and times are filled in from `now`. Checks shape
/// and the rules between fields; the engine compiles cron expressions,
/// time zones, event patterns and webhook secrets on top. Errors are
/// `ENACT_INVALID_TRIGGER` naming the field path.
pub fn trigger_definition(v: &Value, now: Timestamp) -> EngineResult<Trigger> {
    if !v.is_object() {
        return Err(EngineError::new(ErrorCode::InvalidTrigger, format!("definition: expected an object, got {}", describe(v))));
    }
    let f = Fields::with_code(v, "", ErrorCode::InvalidTrigger)?;
    f.only(TRIGGER_FIELDS)?;
    let types = ["event", "schedule", "webhook", "threshold", "manual", "lifecycle"];
    let trigger_type = f
        .opt_enum("type", &types, parse_serde::<TriggerType>)?
        .ok_or_else(|| f.err("type", format!("is required (one of {})", types.join(", "))))?;
    let statuses = ["active", "paused", "disabled", "fired", "expired"];
    let status = f.opt_enum("status", &statuses, parse_serde::<TriggerStatus>)?.unwrap_or(TriggerStatus::Active);

    let condition = trigger_condition(&f, trigger_type)?;
    let action = trigger_action(&f)?;

    let start_at = f.opt_time("startAt")?;
    let end_at = f.opt_time("endAt")?;
    if let (Some(s), Some(e)) = (start_at, end_at) {
        if e < s {
            return Err(f.err("endAt", format!("{} is before startAt {}", e.to_rfc3339(), s.to_rfc3339())));
        }
    }
    let webhook_secret = f.opt_str("webhookSecret")?;
    let allow_unsigned = f.opt_bool("allowUnsigned")?;
    if trigger_type != TriggerType::Webhook {
        for (key, set) in [("webhookSecret", webhook_secret.is_some()), ("allowUnsigned", allow_unsigned.is_some())] {
            if set {
                return Err(f.err(key, format!("only applies to webhook triggers, not {}", trigger_type.as_str())));
            }
        }
    }
    let allow_unsigned = allow_unsigned.unwrap_or(false);
    if trigger_type == TriggerType::Webhook {
        match (&webhook_secret, allow_unsigned) {
            (Some(_), true) => {
                return Err(f.err("allowUnsigned", "cannot be true with a webhookSecret: a trigger with a secret accepts signed requests only (remove one of the two)"))
            }
            (None, false) => return Err(f.err("webhookSecret", UNSIGNED_OPT_IN)),
            _ => {}
        }
    }
    let trigger_id = f.opt_id("triggerId")?.unwrap_or_else(|| crate::ids::new_id("trigger_"));
    let created_at = f.opt_time("createdAt")?.unwrap_or(now);
    Ok(Trigger {
        name: f.opt_str("name")?.filter(|s| !s.is_empty()).unwrap_or_else(|| trigger_id.clone()),
        trigger_id,
        tenant_id: f.req_str("tenantId")?,
        description: f.opt_str("description")?,
        trigger_type,
        status,
        condition,
        action,
        start_at,
        end_at,
        max_fires: f.opt_int("maxFires", 1, u64::MAX >> 11)?,
        fire_count: f.opt_int("fireCount", 0, u64::MAX >> 11)?.unwrap_or(0),
        cooldown_ms: f.opt_int("cooldownMs", 0, 10 * 365 * 86_400_000)?,
        last_fired_at: f.opt_time("lastFiredAt")?,
        created_at,
        updated_at: f.opt_time("updatedAt")?.unwrap_or(created_at),
        webhook_secret,
        allow_unsigned,
    })
}

/// Why a webhook trigger without a secret is refused.
const UNSIGNED_OPT_IN: &str = "is required for a webhook trigger (a \"whsec_…\" Standard Webhooks secret); \
     to accept unsigned requests from anyone who knows the trigger id, opt in with allowUnsigned: true";

/// The webhook rules of an update patch (a JSON merge patch) of trigger
/// `current`, applied to `doc`, the trigger's document with the patch
/// merged in, before it is validated again as a definition:
///
/// - removing the secret (`webhookSecret: null`) of a signed trigger is
///   refused unless the same patch sets `allowUnsigned: true`, so a patch
///   cannot silently open a signed webhook to anyone;
/// - setting a secret on an unsigned trigger ends its opt-in: the patch
///   need not also say `allowUnsigned: null` (setting `allowUnsigned: true`
///   next to a secret is refused, as at registration).
pub fn webhook_patch(current: &Trigger, patch: &Value, doc: &mut Value) -> EngineResult<()> {
    let Some(p) = patch.as_object() else { return Ok(()) };
    let opts_in = p.get("allowUnsigned") == Some(&Value::Bool(true));
    if current.webhook_secret.is_some() && p.get("webhookSecret") == Some(&Value::Null) && !opts_in {
        return Err(EngineError::invalid_trigger(
            "patch.webhookSecret",
            "removing the secret would let anyone who knows the trigger id fire it with an unsigned request; \
             to accept unsigned requests, set allowUnsigned: true in the same patch",
        ));
    }
    if p.get("webhookSecret").is_some_and(Value::is_string) && !p.contains_key("allowUnsigned") {
        if let Some(d) = doc.as_object_mut() {
            d.remove("allowUnsigned");
        }
    }
    Ok(())
}

fn trigger_condition(f: &Fields<'_>, t: TriggerType) -> EngineResult<TriggerCondition> {
    let Some(c) = f.opt_fields("condition")? else {
        return match t {
            TriggerType::Event | TriggerType::Lifecycle => Err(f.err("condition.eventType", format!("is required for a {} trigger", t.as_str()))),
            TriggerType::Schedule => Err(f.err("condition.cronExpression", "is required for a schedule trigger (or give condition.intervalSeconds)")),
            TriggerType::Threshold => Err(f.err("condition.metricName", "is required for a threshold trigger")),
            TriggerType::Webhook | TriggerType::Manual => Ok(TriggerCondition::default()),
        };
    };
    c.only(&CONDITION_FIELDS.iter().map(|(k, _)| *k).collect::<Vec<_>>())?;
    for (key, applies) in CONDITION_FIELDS {
        if c.raw(key).is_some() && !applies.contains(&t) {
            let to: Vec<&str> = applies.iter().map(|a| a.as_str()).collect();
            return Err(c.err(key, format!("only applies to {} triggers, not {}", to.join(" and "), t.as_str())));
        }
    }
    let ops = ["gt", "gte", "lt", "lte", "eq", "neq"];
    let cond = TriggerCondition {
        event_type: c.opt_str("eventType")?,
        event_pattern: c.raw("eventPattern").cloned(),
        cron_expression: c.opt_str("cronExpression")?,
        interval_seconds: c.opt_int("intervalSeconds", 1, 10 * 365 * 86_400)?,
        metric_name: c.opt_str("metricName")?,
        threshold_value: c.opt_num("thresholdValue")?,
        threshold_operator: c.opt_enum("thresholdOperator", &ops, parse_serde::<ThresholdOperator>)?,
        timezone: c.opt_str("timezone")?,
        misfire_policy: c.opt_enum("misfirePolicy", &["fire_once", "skip"], parse_serde::<MisfirePolicy>)?,
    };
    let required = |key: &str, present: bool, why: &str| if present { Ok(()) } else { Err(c.err(key, why.to_owned())) };
    match t {
        TriggerType::Event | TriggerType::Lifecycle => {
            c.req_str("eventType")?;
        }
        TriggerType::Schedule => match (&cond.cron_expression, cond.interval_seconds) {
            (Some(_), Some(_)) => return Err(c.err("intervalSeconds", "give cronExpression or intervalSeconds, not both")),
            (None, None) => return Err(c.err("cronExpression", "is required for a schedule trigger (or give condition.intervalSeconds)")),
            (None, Some(_)) if cond.timezone.is_some() => return Err(c.err("timezone", "only applies to a cronExpression")),
            _ => {}
        },
        TriggerType::Threshold => {
            c.req_str("metricName")?;
            required("thresholdValue", cond.threshold_value.is_some(), "is required for a threshold trigger")?;
            required("thresholdOperator", cond.threshold_operator.is_some(), &format!("is required for a threshold trigger (one of {})", ops.join(", ")))?;
        }
        TriggerType::Webhook | TriggerType::Manual => {}
    }
    Ok(cond)
}

fn trigger_action(f: &Fields<'_>) -> EngineResult<TriggerAction> {
    let a = f.opt_fields("action")?.ok_or_else(|| f.err("action", "is required (at least {\"callableName\": ...})"))?;
    a.only(&["callableName", "input", "context", "systemPrompt", "targetBinding", "background", "retry"])?;
    Ok(TriggerAction {
        callable_name: a.req_str("callableName")?,
        input: a.opt_str("input")?,
        context: a.opt_string_map("context")?,
        system_prompt: a.opt_str("systemPrompt")?,
        target_binding: a.opt_fields("targetBinding")?.map(|t| target_binding(&t)).transpose()?,
        background: a.opt_bool("background")?.unwrap_or(true),
        retry: a.opt_fields("retry")?.map(|r| retry_config(&r)).transpose()?,
    })
}

// -- arguments of the JavaScript API ------------------------------------------
// What the binding receives besides submissions and trigger definitions:
// engine and handler options, query filters, webhook headers. Plain
// functions over JSON, so the binding only converts and forwards.

/// Validated options of `new BackgroundEngine(options)`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EngineOptions {
    /// Attempts in flight at once, engine-wide.
    pub concurrency: usize,
    /// Attempts in flight at once per tenant.
    pub tenant_concurrency: Option<usize>,
    /// Longest chain of triggers firing triggers.
    pub max_chain_depth: u32,
    /// Most fires one root execution's chain may cause.
    pub max_chain_fires: u32,
    /// Finished executions the memory store keeps.
    pub keep_finished: usize,
    /// Unexpired webhook message ids the memory store keeps per trigger.
    pub webhook_replay_capacity: usize,
    /// The engine's clock.
    pub clock: ClockOption,
    /// Where executions and triggers are kept.
    pub store: StoreOption,
    /// Interruptions an execution survives before it ends `failed`
    /// (durable stores; default 1).
    pub max_stalls: u32,
    /// How long a claimed attempt is leased to its engine before others
    /// may take it back (the PostgreSQL store; default 30000 ms).
    pub lease_ms: u64,
    /// What the metrics count.
    pub metrics: crate::metrics::MetricsConfig,
    /// Whether attempts are traced with OpenTelemetry (done in JS; the
    /// core only carries trace contexts).
    pub tracing: bool,
}

/// The `store` engine option.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub enum StoreOption {
    /// `'memory'` (the default): nothing survives the process.
    #[default]
    Memory,
    /// `{ sqlite: path, synchronous? }`: one file, nothing acknowledged
    /// lost when the process dies.
    Sqlite {
        /// The database file.
        path: String,
        /// Durability of commits.
        synchronous: crate::sqlite::Synchronous,
    },
    /// `{ postgres: url, schema? }`: one schema of a PostgreSQL database,
    /// shared by every engine pointed at it.
    Postgres {
        /// The connection string.
        url: String,
        /// The schema (default `enact_background`).
        schema: String,
    },
}

/// `options.store`: absent, `'memory'`, `{ sqlite: '<path>', synchronous?:
/// 'normal' | 'full' }` or `{ postgres: '<url>', schema?: '<name>' }`.
pub fn store_option(v: Option<&Value>) -> EngineResult<StoreOption> {
    const EXPECTED: &str =
        "expected 'memory', { sqlite: '<file path>', synchronous?: 'normal' | 'full' } or { postgres: '<connection string>', schema?: '<schema>' }";
    let map = match v {
        None | Some(Value::Null) => return Ok(StoreOption::Memory),
        Some(Value::String(s)) if s == "memory" => return Ok(StoreOption::Memory),
        Some(Value::Object(m)) => m,
        Some(other) => return Err(EngineError::invalid("store", format!("{EXPECTED}, got {}", describe(other)))),
    };
    if map.contains_key("postgres") {
        if let Some(key) = map.keys().find(|k| !["postgres", "schema"].contains(&k.as_str())) {
            return Err(EngineError::invalid(&format!("store.{key}"), "unknown option (expected postgres, schema)"));
        }
        let url = match map.get("postgres") {
            Some(Value::String(s)) if s.trim().is_empty() => {
                return Err(EngineError::invalid("store.postgres", "expected a connection string (postgres://user@host:5432/db), got an empty string"))
            }
            Some(Value::String(s)) => s.clone(),
            Some(other) => {
                return Err(EngineError::invalid("store.postgres", format!("expected a connection string (postgres://user@host:5432/db), got {}", describe(other))))
            }
            None => unreachable!("checked above"),
        };
        let schema = match map.get("schema") {
            None | Some(Value::Null) => "enact_background".to_owned(),
            Some(Value::String(s)) => s.clone(),
            Some(other) => return Err(EngineError::invalid("store.schema", format!("expected a schema name, got {}", describe(other)))),
        };
        let plain = schema.len() <= 50
            && !schema.starts_with("pg_")
            && schema.chars().next().is_some_and(|c| c.is_ascii_lowercase() || c == '_')
            && schema.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
        if !plain {
            return Err(EngineError::invalid(
                "store.schema",
                format!("expected a plain schema name (lowercase letters, digits and _, at most 50, not starting with a digit or pg_), got {schema:?}"),
            ));
        }
        return Ok(StoreOption::Postgres { url, schema });
    }
    if let Some(key) = map.keys().find(|k| !["sqlite", "synchronous"].contains(&k.as_str())) {
        return Err(EngineError::invalid(&format!("store.{key}"), "unknown option (expected sqlite, synchronous; or postgres, schema)"));
    }
    let path = match map.get("sqlite") {
        Some(Value::String(s)) if s.is_empty() => return Err(EngineError::invalid("store.sqlite", "expected a file path, got an empty string")),
        Some(Value::String(s)) if s == ":memory:" || s.starts_with("file:") => {
            return Err(EngineError::invalid("store.sqlite", format!("expected a file path, got {s:?} (for a store that keeps nothing, use the memory store)")))
        }
        Some(Value::String(s)) if s.contains('\0') => return Err(EngineError::invalid("store.sqlite", "expected a file path, got a string holding a NUL character")),
        Some(Value::String(s)) => s.clone(),
        None => return Err(EngineError::invalid("store.sqlite", format!("is required ({EXPECTED})"))),
        Some(other) => return Err(EngineError::invalid("store.sqlite", format!("expected a file path, got {}", describe(other)))),
    };
    let synchronous = match map.get("synchronous") {
        None | Some(Value::Null) => crate::sqlite::Synchronous::Normal,
        Some(Value::String(s)) if s == "normal" => crate::sqlite::Synchronous::Normal,
        Some(Value::String(s)) if s == "full" => crate::sqlite::Synchronous::Full,
        Some(other) => return Err(EngineError::invalid("store.synchronous", format!("expected 'normal' or 'full', got {}", describe(other)))),
    };
    Ok(StoreOption::Sqlite { path, synchronous })
}

/// The `clock` engine option.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum ClockOption {
    /// `'system'` (the default): real time.
    #[default]
    System,
    /// `'manual'` (starts at the system time) or `{ manual: <RFC 3339> }`:
    /// time moves only when the host moves it (`advanceTime`).
    Manual(Option<Timestamp>),
}

/// `options.clock`: `'system'`, `'manual'` or `{ manual: '<RFC 3339 start>' }`.
pub fn clock_option(v: Option<&Value>) -> EngineResult<ClockOption> {
    const EXPECTED: &str = "expected 'system', 'manual' or { manual: '<RFC 3339 start time>' }";
    match v {
        None | Some(Value::Null) => Ok(ClockOption::System),
        Some(Value::String(s)) if s == "system" => Ok(ClockOption::System),
        Some(Value::String(s)) if s == "manual" => Ok(ClockOption::Manual(None)),
        Some(Value::Object(m)) => {
            if let Some(key) = m.keys().find(|k| k.as_str() != "manual") {
                return Err(EngineError::invalid(&format!("clock.{key}"), format!("unknown field ({EXPECTED})")));
            }
            match m.get("manual") {
                Some(Value::String(s)) => chrono::DateTime::parse_from_rfc3339(s)
                    .map(|t| ClockOption::Manual(Some(t.with_timezone(&chrono::Utc))))
                    .map_err(|e| EngineError::invalid("clock.manual", format!("expected an RFC 3339 time, got {s:?} ({e})"))),
                other => Err(EngineError::invalid(
                    "clock.manual",
                    format!("expected an RFC 3339 time string, got {}", other.map_or("nothing".into(), describe)),
                )),
            }
        }
        Some(other) => Err(EngineError::invalid("clock", format!("{EXPECTED}, got {}", describe(other)))),
    }
}

/// Default engine-wide concurrency.
pub const DEFAULT_CONCURRENCY: usize = 16;
/// Default `maxChainDepth`.
pub const DEFAULT_MAX_CHAIN_DEPTH: u32 = 16;
/// Default `maxBodyBytes` of the webhook handler (1 MiB).
pub const DEFAULT_MAX_BODY_BYTES: f64 = 1024.0 * 1024.0;
/// Default `bodyTimeoutMs` of the webhook handler (10 s).
pub const DEFAULT_BODY_TIMEOUT_MS: f64 = 10_000.0;
/// Longest `bodyTimeoutMs` or `bindingTimeoutMs`: the longest delay a Node
/// timer keeps (a longer one would fire at once).
pub const MAX_TIMER_MS: f64 = 2_147_483_647.0;
/// Default `bindingTimeoutMs` of the engine (30 s).
pub const DEFAULT_BINDING_TIMEOUT_MS: f64 = 30_000.0;
/// Default `timeoutMs` of `shutdown`.
pub const DEFAULT_SHUTDOWN_TIMEOUT_MS: f64 = 30_000.0;

/// An optional count of at least 1 at `key` of `map`.
fn opt_positive(map: &Map<String, Value>, key: &str) -> EngineResult<Option<usize>> {
    match map.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => match v.as_f64() {
            Some(0.0) => Err(EngineError::invalid(key, "must be at least 1")),
            Some(n) if n >= 1.0 && n.fract() == 0.0 && n <= u32::MAX as f64 => Ok(Some(n as usize)),
            _ => Err(EngineError::invalid(key, format!("expected a positive integer, got {}", describe(v)))),
        },
    }
}

/// Every option of `new BackgroundEngine(options)`; `bindingTimeoutMs` is
/// read by [`binding_timeout_ms`].
pub const ENGINE_OPTIONS: &[&str] =
    &["store", "concurrency", "tenantConcurrency", "maxChainDepth", "maxChainFires", "keepFinished", "bindingTimeoutMs", "webhookReplayCapacity", "clock", "maxStalls", "leaseMs", "metrics", "tracing"];

/// Options of the engine (absent or null: all defaults).
/// Unknown fields are refused (a misspelt option is a bug, not a default).
pub fn engine_options(v: &Value) -> EngineResult<EngineOptions> {
    let empty = Map::new();
    let map = match v {
        Value::Null => &empty,
        Value::Object(m) => m,
        other => return Err(EngineError::invalid("options", format!("expected an object, got {}", describe(other)))),
    };
    if let Some(key) = map.keys().find(|k| !ENGINE_OPTIONS.contains(&k.as_str())) {
        return Err(EngineError::invalid(key, format!("unknown option (expected one of {})", ENGINE_OPTIONS.join(", "))));
    }
    let store = store_option(map.get("store"))?;
    let keep_finished = match map.get("keepFinished") {
        None | Some(Value::Null) => crate::memory::DEFAULT_KEEP_FINISHED,
        Some(v) => match v.as_f64() {
            Some(n) if n >= 0.0 && n.fract() == 0.0 => n.min(usize::MAX as f64) as usize,
            _ => return Err(EngineError::invalid("keepFinished", format!("expected a non-negative integer, got {}", describe(v)))),
        },
    };
    Ok(EngineOptions {
        concurrency: opt_positive(map, "concurrency")?.unwrap_or(DEFAULT_CONCURRENCY),
        tenant_concurrency: opt_positive(map, "tenantConcurrency")?,
        max_chain_depth: opt_positive(map, "maxChainDepth")?.map_or(DEFAULT_MAX_CHAIN_DEPTH, |n| n as u32),
        max_chain_fires: opt_positive(map, "maxChainFires")?.map_or(crate::triggers::DEFAULT_MAX_CHAIN_FIRES, |n| n as u32),
        keep_finished,
        webhook_replay_capacity: opt_positive(map, "webhookReplayCapacity")?.unwrap_or(crate::memory::REPLAY_CAPACITY),
        clock: clock_option(map.get("clock"))?,
        store,
        max_stalls: match map.get("maxStalls") {
            None | Some(Value::Null) => 1,
            Some(v) => match v.as_f64() {
                Some(n) if (0.0..=1_000_000.0).contains(&n) && n.fract() == 0.0 => n as u32,
                _ => return Err(EngineError::invalid("maxStalls", format!("expected an integer from 0 to 1000000, got {}", describe(v)))),
            },
        },
        lease_ms: match map.get("leaseMs") {
            None | Some(Value::Null) => 30_000,
            Some(v) => match v.as_f64() {
                Some(n) if (100.0..=86_400_000.0).contains(&n) && n.fract() == 0.0 => n as u64,
                _ => return Err(EngineError::invalid("leaseMs", format!("expected an integer from 100 to 86400000 (ms), got {}", describe(v)))),
            },
        },
        metrics: metrics_option(map.get("metrics"))?,
        tracing: match map.get("tracing") {
            None | Some(Value::Null) => false,
            Some(Value::Bool(b)) => *b,
            Some(v) => return Err(EngineError::invalid("tracing", format!("expected a boolean, got {}", describe(v)))),
        },
    })
}

/// The `metrics` engine option: `true` (the default), `false`, or
/// `{ tenantLabels?: boolean }`.
fn metrics_option(v: Option<&Value>) -> EngineResult<crate::metrics::MetricsConfig> {
    use crate::metrics::MetricsConfig;
    match v {
        None | Some(Value::Null) | Some(Value::Bool(true)) => Ok(MetricsConfig::default()),
        Some(Value::Bool(false)) => Ok(MetricsConfig { enabled: false, tenant_labels: false }),
        Some(Value::Object(m)) => {
            if let Some(k) = m.keys().find(|k| k.as_str() != "tenantLabels") {
                return Err(EngineError::invalid(&format!("metrics.{k}"), "unknown field (expected tenantLabels)"));
            }
            let tenant_labels = match m.get("tenantLabels") {
                None | Some(Value::Null) => false,
                Some(Value::Bool(b)) => *b,
                Some(v) => return Err(EngineError::invalid("metrics.tenantLabels", format!("expected a boolean, got {}", describe(v)))),
            };
            Ok(MetricsConfig { enabled: true, tenant_labels })
        }
        Some(v) => Err(EngineError::invalid("metrics", format!("expected a boolean or {{ tenantLabels }}, got {}", describe(v)))),
    }
}

/// `options` of `registerCallable(name, fn, options)`: its `concurrency`,
/// a positive integer, if any.
pub fn callable_options(v: &Value) -> EngineResult<Option<usize>> {
    let map = match v {
        Value::Null => return Ok(None),
        Value::Object(m) => m,
        other => return Err(EngineError::invalid("options", format!("expected an object, got {}", describe(other)))),
    };
    if let Some(key) = map.keys().find(|k| k.as_str() != "concurrency") {
        return Err(EngineError::invalid(&format!("options.{key}"), "unknown field (expected concurrency)"));
    }
    match map.get("concurrency") {
        None | Some(Value::Null) => Ok(None),
        Some(n) => match n.as_f64().filter(|f| *f >= 1.0 && f.fract() == 0.0 && *f <= u32::MAX as f64) {
            Some(f) => Ok(Some(f as usize)),
            None => Err(EngineError::invalid("options.concurrency", format!("expected a positive integer, got {}", describe(n)))),
        },
    }
}

/// The filter of `listExecutions`.
pub fn execution_filter(v: &Value) -> EngineResult<crate::store::ExecutionFilter> {
    let f = Fields::of(v, "filter")?;
    f.only(&["tenantId", "status", "callableName", "triggerId", "limit", "order", "after"])?;
    let statuses = ["queued", "running", "completed", "failed", "cancelled", "timeout"];
    Ok(crate::store::ExecutionFilter {
        tenant_id: f.opt_str("tenantId")?,
        status: f.opt_enum("status", &statuses, parse_serde)?,
        callable_name: f.opt_str("callableName")?,
        trigger_id: f.opt_str("triggerId")?,
        limit: f.opt_int("limit", 0, u32::MAX as u64)?.map(|n| n as usize),
        newest_first: f.opt_enum("order", &["oldest", "newest"], |s| match s {
            "oldest" => Some(false),
            "newest" => Some(true),
            _ => None,
        })?.unwrap_or(false),
        after: f.opt_str("after")?,
    })
}

/// The filter of `listTriggers`.
pub fn trigger_filter(v: &Value) -> EngineResult<crate::store::TriggerFilter> {
    let f = Fields::with_code(v, "filter", ErrorCode::InvalidTrigger)?;
    f.only(&["tenantId", "type", "status"])?;
    let types = ["event", "schedule", "webhook", "threshold", "manual", "lifecycle"];
    let statuses = ["active", "paused", "disabled", "fired", "expired"];
    Ok(crate::store::TriggerFilter {
        tenant_id: f.opt_str("tenantId")?,
        trigger_type: f.opt_enum("type", &types, parse_serde)?,
        status: f.opt_enum("status", &statuses, parse_serde)?,
    })
}

/// A target type of `registerTarget`.
pub fn target_type(name: &str) -> EngineResult<TargetType> {
    TargetType::parse(name).ok_or_else(|| {
        let allowed: Vec<&str> = TargetType::ALL.iter().map(|t| t.as_str()).collect();
        EngineError::invalid("targetType", format!("expected one of {}", allowed.join(", ")))
    })
}

/// Webhook request headers as (name, value) pairs: values may be strings,
/// numbers or, as Node gives repeated headers, arrays of strings (joined
/// with ", "); null values are skipped.
pub fn header_pairs(v: &Value) -> EngineResult<Vec<(String, String)>> {
    let Value::Object(map) = v else {
        return Err(EngineError::invalid_trigger("request.headers", format!("expected an object, got {}", describe(v))));
    };
    let mut out = Vec::with_capacity(map.len());
    for (k, v) in map {
        let value = match v {
            Value::String(s) => s.clone(),
            Value::Number(n) => n.to_string(),
            Value::Array(items) if items.iter().all(Value::is_string) => {
                items.iter().filter_map(Value::as_str).collect::<Vec<_>>().join(", ")
            }
            Value::Null => continue,
            other => {
                return Err(EngineError::invalid_trigger(
                    &format!("request.headers.{k}"),
                    format!("expected a string or an array of strings, got {}", describe(other)),
                ))
            }
        };
        out.push((k.clone(), value));
    }
    Ok(out)
}

/// `options` of `webhookHandler(options)`: `maxBodyBytes`, a positive
/// integer (default [`DEFAULT_MAX_BODY_BYTES`]), and `bodyTimeoutMs`, how
/// long the handler waits for the whole body before it answers 408, a
/// positive integer of milliseconds up to [`MAX_TIMER_MS`] (default
/// [`DEFAULT_BODY_TIMEOUT_MS`]).
pub fn webhook_handler_options(options: &Value) -> EngineResult<(f64, f64)> {
    if !options.is_null() {
        Fields::with_code(options, "options", ErrorCode::InvalidTrigger)?.only(&["maxBodyBytes", "bodyTimeoutMs"])?;
    }
    let max_body_bytes = match options.get("maxBodyBytes") {
        None | Some(Value::Null) => DEFAULT_MAX_BODY_BYTES,
        Some(v) => v.as_f64().filter(|n| *n >= 1.0 && n.fract() == 0.0).ok_or_else(|| {
            EngineError::invalid_trigger("options.maxBodyBytes", format!("expected a positive integer, got {}", describe(v)))
        })?,
    };
    let body_timeout_ms = timer_ms(options, "bodyTimeoutMs", DEFAULT_BODY_TIMEOUT_MS)
        .map_err(|why| EngineError::invalid_trigger("options.bodyTimeoutMs", why))?;
    Ok((max_body_bytes, body_timeout_ms))
}

/// `options.bindingTimeoutMs` of the engine: how long a target handler may
/// take before its binding fails (never the execution); a positive integer
/// of milliseconds up to [`MAX_TIMER_MS`], the longest delay a Node
/// timer keeps (default [`DEFAULT_BINDING_TIMEOUT_MS`]).
pub fn binding_timeout_ms(options: &Value) -> EngineResult<f64> {
    timer_ms(options, "bindingTimeoutMs", DEFAULT_BINDING_TIMEOUT_MS).map_err(|why| EngineError::invalid("bindingTimeoutMs", why))
}

/// A timer option `key` of `options`: a positive integer of milliseconds up
/// to [`MAX_TIMER_MS`], `default` when absent; else why not.
fn timer_ms(options: &Value, key: &str, default: f64) -> Result<f64, String> {
    match options.get(key) {
        None | Some(Value::Null) => Ok(default),
        Some(v) => v
            .as_f64()
            .filter(|n| *n >= 1.0 && n.fract() == 0.0 && *n <= MAX_TIMER_MS)
            .ok_or_else(|| format!("expected a positive integer of milliseconds up to {MAX_TIMER_MS}, got {}", describe(v))),
    }
}

/// `options.timeoutMs` of `shutdown(options)`: a non-negative number
/// (default [`DEFAULT_SHUTDOWN_TIMEOUT_MS`]).
pub fn shutdown_timeout(options: &Value) -> EngineResult<f64> {
    let v = match options {
        Value::Null => return Ok(DEFAULT_SHUTDOWN_TIMEOUT_MS),
        Value::Object(m) => {
            if let Some(key) = m.keys().find(|k| k.as_str() != "timeoutMs") {
                return Err(EngineError::invalid(key, "unknown option (expected timeoutMs)"));
            }
            m.get("timeoutMs")
        }
        other => return Err(EngineError::invalid("options", format!("expected an object, got {}", describe(other)))),
    };
    match v {
        None | Some(Value::Null) => Ok(DEFAULT_SHUTDOWN_TIMEOUT_MS),
        Some(v) => v.as_f64().filter(|n| n.is_finite() && *n >= 0.0).ok_or_else(|| {
            EngineError::invalid("timeoutMs", format!("expected a non-negative number, got {}", describe(v)))
        }),
    }
}

/// The `transform` and `maxLength` arguments of `applyTransform`.
pub fn transform_args(transform: &str, max_length: Option<f64>) -> EngineResult<(TransformType, Option<usize>)> {
    let kind: TransformType = parse_serde(transform).ok_or_else(|| {
        EngineError::invalid("transform", format!("expected one of none, first_line, truncate, json_extract, got {transform:?}"))
    })?;
    let max = match max_length {
        None => None,
        Some(n) if n >= 0.0 && n.fract() == 0.0 => Some(n as usize),
        Some(n) => return Err(EngineError::invalid("maxLength", format!("expected a non-negative integer, got {n}"))),
    };
    Ok((kind, max))
}

#[cfg(test)]
mod argument_tests {
    use super::*;
    use serde_json::json;

    fn err(r: EngineResult<impl std::fmt::Debug>) -> (ErrorCode, String) {
        let e = r.unwrap_err();
        (e.code, e.message)
    }

    #[test]
    fn engine_options_defaults_limits_and_store() {
        let d = engine_options(&Value::Null).unwrap();
        assert_eq!(
            d,
            EngineOptions {
                concurrency: 16,
                tenant_concurrency: None,
                max_chain_depth: 16,
                max_chain_fires: 1_000,
                keep_finished: crate::memory::DEFAULT_KEEP_FINISHED,
                webhook_replay_capacity: crate::memory::REPLAY_CAPACITY,
                clock: ClockOption::System,
                store: StoreOption::Memory,
                max_stalls: 1,
                lease_ms: 30_000,
                metrics: crate::metrics::MetricsConfig { enabled: true, tenant_labels: false },
                tracing: false,
            }
        );
        assert_eq!(engine_options(&json!({"leaseMs": 5000})).unwrap().lease_ms, 5000);
        let m = engine_options(&json!({"metrics": {"tenantLabels": true}, "tracing": true})).unwrap();
        assert_eq!((m.metrics.enabled, m.metrics.tenant_labels, m.tracing), (true, true, true));
        assert!(!engine_options(&json!({"metrics": false})).unwrap().metrics.enabled);
        assert_eq!(err(engine_options(&json!({"metrics": {"tenants": true}}))).1, "metrics.tenants: unknown field (expected tenantLabels)");
        assert_eq!(err(engine_options(&json!({"metrics": "yes"}))).1, "metrics: expected a boolean or { tenantLabels }, got \"yes\"");
        assert_eq!(err(engine_options(&json!({"tracing": 1}))).1, "tracing: expected a boolean, got 1");
        assert_eq!(err(engine_options(&json!({"leaseMs": 5}))).1, "leaseMs: expected an integer from 100 to 86400000 (ms), got 5");
        assert_eq!(engine_options(&json!({"webhookReplayCapacity": 3})).unwrap().webhook_replay_capacity, 3);
        assert_eq!(err(engine_options(&json!({"webhookReplayCapacity": 0}))).1, "webhookReplayCapacity: must be at least 1");
        let o = engine_options(&json!({"concurrency": 4, "tenantConcurrency": 2, "maxChainDepth": 3, "maxChainFires": 50, "keepFinished": 0})).unwrap();
        assert_eq!((o.concurrency, o.tenant_concurrency, o.max_chain_depth, o.max_chain_fires, o.keep_finished), (4, Some(2), 3, 50, 0));
        assert_eq!(err(engine_options(&json!({"maxChainFires": 0}))).1, "maxChainFires: must be at least 1");
        assert_eq!(err(engine_options(&json!({"concurrency": 0}))), (ErrorCode::InvalidExecution, "concurrency: must be at least 1".into()));
        assert_eq!(err(engine_options(&json!({"maxChainDepth": 0}))).1, "maxChainDepth: must be at least 1");
        assert_eq!(err(engine_options(&json!({"tenantConcurrency": 1.5}))).1, "tenantConcurrency: expected a positive integer, got 1.5");
        assert_eq!(err(engine_options(&json!({"keepFinished": -1}))).1, "keepFinished: expected a non-negative integer, got -1");
        assert!(engine_options(&json!({"store": "memory"})).is_ok());
        assert_eq!(engine_options(&json!({"maxStalls": 0})).unwrap().max_stalls, 0);
        assert_eq!(err(engine_options(&json!({"maxStalls": -1}))).1, "maxStalls: expected an integer from 0 to 1000000, got -1");
        assert_eq!(err(engine_options(&json!(5))).1, "options: expected an object, got 5");
        let (code, message) = err(engine_options(&json!({"concurency": 4})));
        assert_eq!(code, ErrorCode::InvalidExecution);
        assert!(message.starts_with("concurency: unknown option (expected one of store, concurrency,"), "{message}");
    }

    #[test]
    fn engine_options_store() {
        let store = |v: Value| engine_options(&json!({ "store": v })).map(|o| o.store);
        assert_eq!(store(json!("memory")).unwrap(), StoreOption::Memory);
        assert_eq!(
            store(json!({"sqlite": "a.db"})).unwrap(),
            StoreOption::Sqlite { path: "a.db".into(), synchronous: crate::sqlite::Synchronous::Normal }
        );
        assert_eq!(
            store(json!({"sqlite": "a.db", "synchronous": "full"})).unwrap(),
            StoreOption::Sqlite { path: "a.db".into(), synchronous: crate::sqlite::Synchronous::Full }
        );
        assert_eq!(err(store(json!({"sqlite": "a.db", "synchronous": "off"}))).1, "store.synchronous: expected 'normal' or 'full', got \"off\"");
        assert_eq!(err(store(json!({"sqlite": ""}))).1, "store.sqlite: expected a file path, got an empty string");
        assert!(err(store(json!({"sqlite": ":memory:"}))).1.starts_with("store.sqlite: expected a file path, got \":memory:\""));
        assert_eq!(err(store(json!({"sqlite": 5}))).1, "store.sqlite: expected a file path, got 5");
        assert!(err(store(json!({}))).1.starts_with("store.sqlite: is required"));
        assert_eq!(err(store(json!({"sqlite": "a.db", "wal": true}))).1, "store.wal: unknown option (expected sqlite, synchronous; or postgres, schema)");
        assert!(err(store(json!("redis"))).1.starts_with("store: expected 'memory', { sqlite"));
        assert_eq!(
            store(json!({"postgres": "postgres://x@h/db"})).unwrap(),
            StoreOption::Postgres { url: "postgres://x@h/db".into(), schema: "enact_background".into() }
        );
        assert_eq!(
            store(json!({"postgres": "postgres://x@h/db", "schema": "jobs_2"})).unwrap(),
            StoreOption::Postgres { url: "postgres://x@h/db".into(), schema: "jobs_2".into() }
        );
        assert_eq!(err(store(json!({"postgres": ""}))).1, "store.postgres: expected a connection string (postgres://user@host:5432/db), got an empty string");
        assert_eq!(err(store(json!({"postgres": 5}))).1, "store.postgres: expected a connection string (postgres://user@host:5432/db), got 5");
        assert!(err(store(json!({"postgres": "p://x", "schema": "Drop Table"}))).1.starts_with("store.schema: expected a plain schema name"));
        assert_eq!(err(store(json!({"postgres": "p://x", "pool": 3}))).1, "store.pool: unknown option (expected postgres, schema)");
    }

    #[test]
    fn engine_options_clock() {
        let clock = |v: Value| engine_options(&json!({ "clock": v })).map(|o| o.clock);
        assert_eq!(clock(json!("system")).unwrap(), ClockOption::System);
        assert_eq!(clock(Value::Null).unwrap(), ClockOption::System);
        assert_eq!(clock(json!("manual")).unwrap(), ClockOption::Manual(None));
        let start = chrono::DateTime::parse_from_rfc3339("2026-01-15T10:00:00Z").unwrap().with_timezone(&chrono::Utc);
        assert_eq!(clock(json!({"manual": "2026-01-15T11:00:00+01:00"})).unwrap(), ClockOption::Manual(Some(start)));
        assert_eq!(err(clock(json!("fake"))), (ErrorCode::InvalidExecution, "clock: expected 'system', 'manual' or { manual: '<RFC 3339 start time>' }, got \"fake\"".into()));
        assert!(err(clock(json!({"manual": "yesterday"}))).1.starts_with("clock.manual: expected an RFC 3339 time, got \"yesterday\""));
        assert_eq!(err(clock(json!({"manual": 5}))).1, "clock.manual: expected an RFC 3339 time string, got 5");
        assert_eq!(err(clock(json!({}))).1, "clock.manual: expected an RFC 3339 time string, got nothing");
        assert!(err(clock(json!({"manual": "2026-01-15T10:00:00Z", "x": 1}))).1.starts_with("clock.x: unknown field"));
    }

    fn nested(depth: usize) -> String {
        "[".repeat(depth) + &"]".repeat(depth)
    }

    #[test]
    fn json_nesting_is_bounded_and_named() {
        assert!(parse_json(&nested(MAX_JSON_DEPTH), "payload", ErrorCode::InvalidTrigger).is_ok());
        let e = parse_json(&nested(MAX_JSON_DEPTH + 1), "payload", ErrorCode::InvalidTrigger).unwrap_err();
        assert_eq!((e.code, e.message.as_str()), (ErrorCode::InvalidTrigger, "payload: nested deeper than 127 levels"));
        // Far deeper than any stack: refused, not a stack overflow.
        let e = parse_json(&nested(1_000_000), "definition", ErrorCode::InvalidTrigger).unwrap_err();
        assert_eq!(e.message, "definition: nested deeper than 127 levels");
        assert!(parse_json("{", "patch", ErrorCode::InvalidTrigger).unwrap_err().message.starts_with("patch: not valid JSON ("));
    }

    #[test]
    fn json_items_read_each_item_apart_whatever_its_depth() {
        let text = format!("[1,{},\"x\"]", nested(1_000_000));
        let items = json_items(&text, "requests", ErrorCode::InvalidExecution).unwrap();
        assert_eq!(items.len(), 3);
        assert!(parse_json(items[0].get(), "request", ErrorCode::InvalidExecution).is_ok());
        assert_eq!(parse_json(items[1].get(), "request", ErrorCode::InvalidExecution).unwrap_err().message, "request: nested deeper than 127 levels");
        assert_eq!(json_items("{}", "requests", ErrorCode::InvalidExecution).unwrap_err().message, "requests: not valid JSON (invalid type: map, expected a sequence at line 1 column 0)");
    }

    #[test]
    fn callable_options_name_the_field() {
        assert_eq!(callable_options(&Value::Null).unwrap(), None);
        assert_eq!(callable_options(&json!({})).unwrap(), None);
        assert_eq!(callable_options(&json!({"concurrency": 3})).unwrap(), Some(3));
        assert_eq!(err(callable_options(&json!({"concurrency": 0}))).1, "options.concurrency: expected a positive integer, got 0");
        assert_eq!(err(callable_options(&json!({"concurrency": "2"}))).1, "options.concurrency: expected a positive integer, got \"2\"");
        assert_eq!(err(callable_options(&json!({"limit": 2}))).1, "options.limit: unknown field (expected concurrency)");
        assert_eq!(err(callable_options(&json!("fast"))).1, "options: expected an object, got \"fast\"");
    }

    #[test]
    fn filters() {
        let f = execution_filter(&json!({"tenantId": "t", "status": "failed", "limit": 3})).unwrap();
        assert_eq!((f.tenant_id.as_deref(), f.limit), (Some("t"), Some(3)));
        assert!(err(execution_filter(&json!({"status": "done"}))).1.starts_with("filter.status: expected one of queued"));
        assert!(err(execution_filter(&json!({"tenant": "t"}))).1.starts_with("filter.tenant: unknown field"));
        let t = trigger_filter(&json!({"type": "event", "status": "paused"})).unwrap();
        assert_eq!((t.trigger_type, t.status), (Some(TriggerType::Event), Some(TriggerStatus::Paused)));
        assert_eq!(err(trigger_filter(&json!({"type": "cron"}))).0, ErrorCode::InvalidTrigger);
        assert_eq!(err(trigger_filter(&json!([]))).1, "filter: expected an object, got an array");
    }

    #[test]
    fn target_types() {
        assert_eq!(target_type("thread.title").unwrap(), TargetType::ThreadTitle);
        assert!(err(target_type("thread.colour")).1.starts_with("targetType: expected one of thread.title, "));
    }

    #[test]
    fn webhook_headers_and_body_limit() {
        let pairs = header_pairs(&json!({"a": "1", "b": ["x", "y"], "c": 5, "d": null})).unwrap();
        assert_eq!(pairs, vec![("a".into(), "1".into()), ("b".into(), "x, y".into()), ("c".into(), "5".into())]);
        assert_eq!(err(header_pairs(&json!({"a": {"b": 1}}))), (ErrorCode::InvalidTrigger, "request.headers.a: expected a string or an array of strings, got an object".into()));
        assert_eq!(err(header_pairs(&json!("x"))).1, "request.headers: expected an object, got \"x\"");
        assert_eq!(webhook_handler_options(&Value::Null).unwrap(), (DEFAULT_MAX_BODY_BYTES, DEFAULT_BODY_TIMEOUT_MS));
        assert_eq!(webhook_handler_options(&json!({"maxBodyBytes": 10})).unwrap().0, 10.0);
        assert_eq!(err(webhook_handler_options(&json!({"maxBodyBytes": 0}))), (ErrorCode::InvalidTrigger, "options.maxBodyBytes: expected a positive integer, got 0".into()));
        assert!(err(webhook_handler_options(&json!({"maxBody": 10}))).1.starts_with("options.maxBody: unknown field"));
        assert_eq!(err(webhook_handler_options(&json!(10))).1, "options: expected an object, got 10");
        assert_eq!(binding_timeout_ms(&Value::Null).unwrap(), DEFAULT_BINDING_TIMEOUT_MS);
        assert_eq!(binding_timeout_ms(&json!({"bindingTimeoutMs": 5})).unwrap(), 5.0);
        let (code, message) = err(binding_timeout_ms(&json!({"bindingTimeoutMs": 0})));
        assert_eq!(code, ErrorCode::InvalidExecution);
        assert!(message.starts_with("bindingTimeoutMs: expected a positive integer"), "{message}");
        assert_eq!(webhook_handler_options(&json!({"bodyTimeoutMs": 250})).unwrap().1, 250.0);
        for bad in [json!(0), json!(1.5), json!(-1), json!("10"), json!(2_147_483_648.0)] {
            let (code, message) = err(webhook_handler_options(&json!({ "bodyTimeoutMs": bad })));
            assert_eq!(code, ErrorCode::InvalidTrigger);
            assert!(message.starts_with("options.bodyTimeoutMs: expected a positive integer"), "{message}");
        }
    }

    #[test]
    fn shutdown_and_transform_arguments() {
        assert_eq!(shutdown_timeout(&Value::Null).unwrap(), 30_000.0);
        assert_eq!(shutdown_timeout(&json!({"timeoutMs": 5})).unwrap(), 5.0);
        assert_eq!(err(shutdown_timeout(&json!({"timeoutMs": -1}))), (ErrorCode::InvalidExecution, "timeoutMs: expected a non-negative number, got -1".into()));
        assert_eq!(err(shutdown_timeout(&json!({"timeout": 5}))).1, "timeout: unknown option (expected timeoutMs)");
        assert_eq!(transform_args("truncate", Some(3.0)).unwrap(), (TransformType::Truncate, Some(3)));
        assert_eq!(err(transform_args("upper", None)).1, "transform: expected one of none, first_line, truncate, json_extract, got \"upper\"");
        assert_eq!(err(transform_args("none", Some(1.5))).1, "maxLength: expected a non-negative integer, got 1.5");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn msg(v: Value) -> String {
        submit_request(&v).unwrap_err().message
    }

    #[test]
    fn caller_chosen_ids_are_bounded() {
        let long = "x".repeat(MAX_ID_LEN + 1);
        assert_eq!(msg(json!({"tenantId": "t", "callableName": "c", "executionId": long})), "executionId: longer than 255 bytes (256 bytes)");
        let ok = submit_request(&json!({"tenantId": "t", "callableName": "c", "executionId": "x".repeat(MAX_ID_LEN)})).unwrap();
        assert_eq!(ok.execution_id.map(|s| s.len()), Some(MAX_ID_LEN));
        assert_eq!(submit_request(&json!({"tenantId": "t", "callableName": "c", "executionId": ""})).unwrap().execution_id, None);
        let def = json!({"triggerId": "y".repeat(MAX_ID_LEN + 1), "tenantId": "t", "type": "manual", "action": {"callableName": "c"}});
        let e = trigger_definition(&def, chrono::Utc::now()).unwrap_err();
        assert_eq!((e.code, e.message.as_str()), (ErrorCode::InvalidTrigger, "triggerId: longer than 255 bytes (256 bytes)"));
    }

    #[test]
    fn errors_name_the_field() {
        let base = json!({"tenantId": "t", "callableName": "c"});
        assert!(submit_request(&base).is_ok());
        assert_eq!(msg(json!({"tenantId": "t", "callableName": 5})), "callableName: expected a string, got 5");
        assert_eq!(msg(json!({"tenantId": "t"})), "callableName: is required");
        assert_eq!(
            msg(json!({"tenantId": "t", "callableName": "c", "config": {"priority": 300}})),
            "config.priority: expected an integer from 0 to 255, got 300"
        );
        assert!(msg(json!({"tenantId": "t", "callableName": "c", "config": {"mode": "later"}})).starts_with("config.mode: expected one of"));
        assert!(msg(json!({"tenantId": "t", "callableName": "c", "config": {"timeoutMs": -5}})).starts_with("config.timeoutMs:"));
        assert!(msg(json!({"tenantId": "t", "callableName": "c", "config": {"retry": {"maxAttempts": 0}}})).starts_with("config.retry.maxAttempts:"));
        assert!(msg(json!({"tenantId": "t", "callableName": "c", "context": {"a": 1}})).starts_with("context.a:"));
        assert!(msg(json!({"tenantId": "t", "callableName": "c", "config": {"targetBinding": {"targetType": "x"}}})).starts_with("config.targetBinding.targetType:"));
        assert!(msg(json!({"tenantId": "t", "callableName": "c", "config": {"delayMs": 5}})).starts_with("config.delayMs: only a deferred"));
        assert!(msg(json!({"tenantId": "t", "callableName": "c", "priority": 5})).starts_with("priority: unknown field"));
    }

    // -- unsigned webhooks are an explicit opt-in (issue 10 item 7) ---------

    const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

    fn hook(extra: Value) -> Value {
        let mut d = json!({"tenantId": "t", "type": "webhook", "action": {"callableName": "c"}});
        d.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
        d
    }

    fn trigger_err(v: Value) -> EngineError {
        trigger_definition(&v, chrono::Utc::now()).unwrap_err()
    }

    #[test]
    fn a_webhook_trigger_needs_a_secret_or_the_unsigned_opt_in() {
        for extra in [json!({}), json!({"allowUnsigned": false}), json!({"webhookSecret": null}), json!({"allowUnsigned": null})] {
            let e = trigger_err(hook(extra.clone()));
            assert_eq!(e.code, ErrorCode::InvalidTrigger, "{extra}");
            assert!(e.message.starts_with("webhookSecret: is required for a webhook trigger"), "{extra}: {}", e.message);
            assert!(e.message.contains("allowUnsigned: true"), "says how to opt in: {}", e.message);
        }
        let signed = trigger_definition(&hook(json!({"webhookSecret": SECRET})), chrono::Utc::now()).unwrap();
        assert_eq!((signed.webhook_secret.as_deref(), signed.allow_unsigned), (Some(SECRET), false));
        let also_false = trigger_definition(&hook(json!({"webhookSecret": SECRET, "allowUnsigned": false})), chrono::Utc::now()).unwrap();
        assert!(!also_false.allow_unsigned);
        let open = trigger_definition(&hook(json!({"allowUnsigned": true})), chrono::Utc::now()).unwrap();
        assert_eq!((open.webhook_secret.as_deref(), open.allow_unsigned), (None, true));
    }

    #[test]
    fn a_secret_and_the_unsigned_opt_in_together_are_refused() {
        let e = trigger_err(hook(json!({"webhookSecret": SECRET, "allowUnsigned": true})));
        assert_eq!(e.code, ErrorCode::InvalidTrigger);
        assert!(e.message.starts_with("allowUnsigned: cannot be true with a webhookSecret"), "{}", e.message);
    }

    #[test]
    fn allow_unsigned_only_applies_to_webhook_triggers_and_is_a_boolean() {
        for value in [json!(true), json!(false)] {
            let e = trigger_err(json!({"tenantId": "t", "type": "manual", "action": {"callableName": "c"}, "allowUnsigned": value}));
            assert_eq!(e.message, "allowUnsigned: only applies to webhook triggers, not manual");
        }
        let e = trigger_err(hook(json!({"allowUnsigned": "yes"})));
        assert_eq!(e.message, "allowUnsigned: expected a boolean, got \"yes\"");
    }

    #[test]
    fn allow_unsigned_round_trips_and_is_written_only_when_true() {
        let open = trigger_definition(&hook(json!({"allowUnsigned": true})), chrono::Utc::now()).unwrap();
        let v = serde_json::to_value(&open).unwrap();
        assert_eq!(v["allowUnsigned"], json!(true));
        assert_eq!(serde_json::from_value::<Trigger>(v.clone()).unwrap(), open);
        assert_eq!(trigger_definition(&v, chrono::Utc::now()).unwrap(), open, "a stored trigger registers again as it is");
        let signed = trigger_definition(&hook(json!({"webhookSecret": SECRET})), chrono::Utc::now()).unwrap();
        assert!(serde_json::to_value(&signed).unwrap().get("allowUnsigned").is_none(), "enact-core's shape when unset");
    }

    /// The merged document of `current` under `patch`, through
    /// [`webhook_patch`] and [`trigger_definition`], as `updateTrigger` does.
    fn patched(current: &Trigger, patch: Value) -> EngineResult<Trigger> {
        let mut doc = serde_json::to_value(current).unwrap();
        for (k, v) in patch.as_object().unwrap() {
            if v.is_null() {
                doc.as_object_mut().unwrap().remove(k);
            } else {
                doc[k] = v.clone();
            }
        }
        webhook_patch(current, &patch, &mut doc)?;
        trigger_definition(&doc, chrono::Utc::now())
    }

    #[test]
    fn a_patch_removes_a_secret_only_with_the_unsigned_opt_in() {
        let signed = trigger_definition(&hook(json!({"webhookSecret": SECRET})), chrono::Utc::now()).unwrap();
        for patch in [json!({"webhookSecret": null}), json!({"webhookSecret": null, "allowUnsigned": false})] {
            let e = patched(&signed, patch.clone()).unwrap_err();
            assert_eq!(e.code, ErrorCode::InvalidTrigger);
            assert!(e.message.starts_with("patch.webhookSecret: removing the secret"), "{patch}: {}", e.message);
            assert!(e.message.contains("allowUnsigned: true in the same patch"), "{}", e.message);
        }
        let open = patched(&signed, json!({"webhookSecret": null, "allowUnsigned": true})).unwrap();
        assert_eq!((open.webhook_secret, open.allow_unsigned), (None, true));
        // The opt-in alone, keeping the secret, is the both-at-once error.
        let e = patched(&signed, json!({"allowUnsigned": true})).unwrap_err();
        assert!(e.message.starts_with("allowUnsigned: cannot be true with a webhookSecret"), "{}", e.message);
        // Other patches leave a signed trigger signed.
        assert_eq!(patched(&signed, json!({"name": "n"})).unwrap().webhook_secret.as_deref(), Some(SECRET));
    }

    #[test]
    fn a_patch_setting_a_secret_ends_the_unsigned_opt_in() {
        let open = trigger_definition(&hook(json!({"allowUnsigned": true})), chrono::Utc::now()).unwrap();
        let signed = patched(&open, json!({"webhookSecret": SECRET})).unwrap();
        assert_eq!((signed.webhook_secret.as_deref(), signed.allow_unsigned), (Some(SECRET), false));
        assert!(!patched(&open, json!({"webhookSecret": SECRET, "allowUnsigned": null})).unwrap().allow_unsigned);
        let e = patched(&open, json!({"webhookSecret": SECRET, "allowUnsigned": true})).unwrap_err();
        assert!(e.message.starts_with("allowUnsigned: cannot be true"), "{}", e.message);
        // Withdrawing the opt-in without a secret leaves the trigger with neither.
        for patch in [json!({"allowUnsigned": false}), json!({"allowUnsigned": null})] {
            let e = patched(&open, patch).unwrap_err();
            assert!(e.message.starts_with("webhookSecret: is required"), "{}", e.message);
        }
        // An unsigned trigger removing a secret it does not have is no change.
        assert!(patched(&open, json!({"webhookSecret": null})).unwrap().allow_unsigned);
    }
}
