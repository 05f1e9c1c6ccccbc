//! Validation of untrusted input (JSON from JavaScript) into typed requests.
//! Every error names the field at fault, e.g. `config.priority: expected an
//! integer from 0 to 255, got 300`.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use crate::error::{EngineError, EngineResult};
use crate::model::{
    BackgroundExecutionConfig, ExecutionMode, JsonMap, RetryConfig, TargetBindingConfig,
    TargetType, Timestamp, TransformType,
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

fn join(prefix: &str, key: &str) -> String {
    if prefix.is_empty() { key.to_owned() } else { format!("{prefix}.{key}") }
}

/// Field readers over one JSON object, naming fields by their full path.
pub struct Fields<'a> {
    obj: &'a Map<String, Value>,
    prefix: String,
}

impl<'a> Fields<'a> {
    /// Reads `v` as an object at `path` (empty for the top level).
    pub fn of(v: &'a Value, path: &str) -> EngineResult<Self> {
        match v {
            Value::Object(obj) => Ok(Self { obj, prefix: path.to_owned() }),
            other => Err(EngineError::invalid(
                if path.is_empty() { "request" } else { path },
                format!("expected an object, got {}", describe(other)),
            )),
        }
    }

    /// Full path of `key`.
    pub fn path(&self, key: &str) -> String {
        join(&self.prefix, key)
    }

    /// The raw value, `None` when absent or null.
    pub fn raw(&self, key: &str) -> Option<&'a Value> {
        self.obj.get(key).filter(|v| !v.is_null())
    }

    fn err(&self, key: &str, why: impl std::fmt::Display) -> EngineError {
        EngineError::invalid(&self.path(key), why)
    }

    /// An optional string.
    pub fn opt_str(&self, key: &str) -> EngineResult<Option<String>> {
        match self.raw(key) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(v) => Err(self.err(key, format!("expected a string, got {}", describe(v)))),
        }
    }

    /// A required, non-empty string.
    pub fn req_str(&self, key: &str) -> EngineResult<String> {
        match self.opt_str(key)? {
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
        let obj = Fields::of(v, &self.path(key))?;
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
        self.raw(key).map(|v| Fields::of(v, &self.path(key))).transpose()
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
        return Err(EngineError::invalid(&f.path("backoffMultiplier"), format!("expected a number from 1 to 100, got {multiplier}")));
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
        .ok_or_else(|| EngineError::invalid(&f.path("targetType"), "is required"))?;
    let transform = f
        .opt_enum("transform", &["none", "first_line", "truncate", "json_extract"], parse_serde::<TransformType>)?
        .unwrap_or_default();
    let json_path = f.opt_str("jsonPath")?;
    if transform == TransformType::JsonExtract && json_path.as_deref().is_none_or(str::is_empty) {
        return Err(EngineError::invalid(&f.path("jsonPath"), "is required by the json_extract transform"));
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
        target_binding: f.opt_fields("targetBinding")?.map(|t| target_binding(&t)).transpose()?,
        callback_url,
        retry: f.opt_fields("retry")?.map(|r| retry_config(&r)).transpose()?,
        run_at,
        delay_ms,
    })
}

/// Validates a `submit` request.
pub fn submit_request(v: &Value) -> EngineResult<SubmitRequest> {
    let f = Fields::of(v, "")?;
    f.only(&["executionId", "tenantId", "callableName", "input", "context", "config", "metadata"])?;
    Ok(SubmitRequest {
        execution_id: f.opt_str("executionId")?.filter(|s| !s.is_empty()),
        tenant_id: f.req_str("tenantId")?,
        callable_name: f.req_str("callableName")?,
        input: f.opt_str("input")?,
        context: f.opt_string_map("context")?,
        config: match f.opt_fields("config")? {
            Some(c) => execution_config(&c)?,
            None => BackgroundExecutionConfig::default(),
        },
        metadata: f.opt_object("metadata")?,
        trigger_id: None,
        trigger_source: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn msg(v: Value) -> String {
        submit_request(&v).unwrap_err().message
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
}
