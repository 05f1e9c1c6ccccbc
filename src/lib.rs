//! The Node.js binding of enact-background: converts and forwards to
//! `enact-background-core`. No engine logic lives here.
//!
//! The hot path never awaits a JS promise from Rust. `src/runtime.js` (the
//! JS half of the host) runs callables and reports their results in batches
//! through plain synchronous calls; Rust hands back the next attempts to
//! start in the same turn. A weak threadsafe function wakes JS only when a
//! timer (delayed work, retry backoff, timeout) produced something.

#![deny(clippy::all)]

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::ptr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use enact_background_core::prelude::*;
use enact_background_core::transform;
use napi::bindgen_prelude::*;
use napi::threadsafe_function::{ThreadsafeFunction, ThreadsafeFunctionCallMode};
use napi::{sys, Env};
use napi_derive::napi;
use serde_json::Value;

const RUNTIME_JS: &str = include_str!("runtime.js");

/// The engine allocates many small, short-lived objects (records, ids, JSON
/// values); mimalloc serves those much faster than glibc's malloc, which
/// showed up as a fifth of the profile of event matching.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

// -- errors -----------------------------------------------------------------

/// A JS `Error` whose `code` is the engine's stable code.
fn js_error(env: &Env, code: &str, message: &str) -> Error {
    let raw = env.raw();
    let mut code_v = ptr::null_mut();
    let mut msg_v = ptr::null_mut();
    let mut err = ptr::null_mut();
    unsafe {
        if sys::napi_create_string_utf8(raw, code.as_ptr().cast(), code.len() as isize, &mut code_v) != sys::Status::napi_ok
            || sys::napi_create_string_utf8(raw, message.as_ptr().cast(), message.len() as isize, &mut msg_v) != sys::Status::napi_ok
            || sys::napi_create_error(raw, code_v, msg_v, &mut err) != sys::Status::napi_ok
        {
            return Error::new(Status::GenericFailure, format!("{code}: {message}"));
        }
        Error::from(Unknown::from_raw_unchecked(raw, err))
    }
}

fn engine_error(env: &Env, e: EngineError) -> Error {
    js_error(env, e.code.as_str(), &e.message)
}

fn invalid(env: &Env, field: &str, why: impl std::fmt::Display) -> Error {
    engine_error(env, EngineError::invalid(field, why))
}

/// Runs `f`, turning a Rust panic into a JS error instead of a crash.
fn guarded<T>(env: &Env, f: impl FnOnce() -> Result<T>) -> Result<T> {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(r) => r,
        Err(panic) => {
            let what = panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown panic".into());
            Err(js_error(env, "ENACT_INTERNAL", &format!("internal error (a bug in enact-background): {what}")))
        }
    }
}

// -- promises ---------------------------------------------------------------

/// A promise already settled with `value` or `error`.
fn settled_promise<'e>(env: &'e Env, value: Result<Unknown<'e>>) -> Result<Unknown<'e>> {
    let raw = env.raw();
    let mut deferred = ptr::null_mut();
    let mut promise = ptr::null_mut();
    unsafe {
        check_status!(sys::napi_create_promise(raw, &mut deferred, &mut promise))?;
        match value {
            Ok(v) => check_status!(sys::napi_resolve_deferred(raw, deferred, v.raw()))?,
            Err(e) => {
                let js = JsError::from(e).into_value(raw);
                check_status!(sys::napi_reject_deferred(raw, deferred, js))?
            }
        }
        Ok(Unknown::from_raw_unchecked(raw, promise))
    }
}

// -- the host ---------------------------------------------------------------

type WakeFn = ThreadsafeFunction<u32, Unknown<'static>, u32, Status, false, true>;

/// Wakes the JS runtime from timer threads.
struct JsHost {
    wake: Mutex<Option<Arc<WakeFn>>>,
}

impl Host for JsHost {
    fn wake(&self) {
        let tsfn = self.wake.lock().ok().and_then(|g| g.clone());
        if let Some(tsfn) = tsfn {
            tsfn.call(0, ThreadsafeFunctionCallMode::NonBlocking);
        }
    }
}

fn timer_runtime() -> &'static tokio::runtime::Runtime {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("enact-background-timer")
            .enable_time()
            .build()
            .expect("tokio runtime for timers")
    })
}

/// State shared by the class and the runtime's native functions.
struct Shared {
    exec: Arc<Executor>,
    triggers: Arc<TriggerEngine>,
    host: Arc<JsHost>,
    pump_pending: AtomicBool,
    /// Whether the runtime holds submissions not yet handed to Rust.
    submits_pending: AtomicBool,
    /// Whether the wake function is ref'd (keeps Node alive while busy).
    alive: AtomicBool,
}

impl Shared {
    /// A fire queued work: start it and keep Node alive for it.
    fn after_fire(&self, env: &Env) {
        self.exec.wake();
        self.refresh_keepalive(env);
    }

    /// Keeps Node alive exactly while work is queued or running.
    fn refresh_keepalive(&self, env: &Env) {
        let busy = self.exec.busy() > 0 || self.exec.waiting() > 0 || self.triggers.has_schedules();
        if busy == self.alive.load(Ordering::Relaxed) {
            return;
        }
        let Some(tsfn) = self.host.wake.lock().ok().and_then(|g| g.clone()) else { return };
        let status = unsafe {
            if busy {
                sys::napi_ref_threadsafe_function(env.raw(), tsfn.raw())
            } else {
                sys::napi_unref_threadsafe_function(env.raw(), tsfn.raw())
            }
        };
        if status == sys::Status::napi_ok {
            self.alive.store(busy, Ordering::Relaxed);
        }
    }
}

// -- conversions ------------------------------------------------------------

/// A finished attempt, as the runtime reports it in a JSON batch.
#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct Completion {
    execution_id: String,
    attempt: u32,
    /// The output; absent or null means `null`.
    #[serde(default)]
    output: Value,
    #[serde(default)]
    error: Option<CompletionError>,
}

/// A callable's error as the runtime captured it.
#[derive(serde::Deserialize)]
struct CompletionError {
    message: String,
    retryable: bool,
    #[serde(default)]
    code: Option<String>,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    stack: Option<String>,
}

fn outcome(c: Completion) -> Outcome {
    match c.error {
        Some(e) => {
            let mut details = serde_json::Map::new();
            if let Some(n) = e.name {
                details.insert("name".into(), Value::String(n));
            }
            if let Some(s) = e.stack {
                details.insert("stack".into(), Value::String(s));
            }
            Outcome::Failed(CallError {
                message: e.message,
                retryable: e.retryable,
                code: e.code,
                details: (!details.is_empty()).then_some(Value::Object(details)),
            })
        }
        None => Outcome::Completed(c.output),
    }
}

/// One submission's result in a `submitBatch` answer: `[id, queuedAt]`
/// when the runtime can build the record itself (no config beyond the
/// defaults), the full record otherwise, or the error.
#[derive(serde::Serialize)]
#[serde(untagged)]
enum Submitted {
    Brief(String, Timestamp),
    Record { r: Box<BackgroundExecution> },
    Error { e: ErrorOut },
}

#[derive(serde::Serialize)]
struct ErrorOut {
    code: &'static str,
    message: String,
}

/// A submission in its commonest shape (default config, no id, context or
/// metadata), read straight from JSON without a map per request.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct PlainSubmit {
    tenant_id: String,
    callable_name: String,
    #[serde(default)]
    input: Option<String>,
}

/// Validates and queues a batch of submissions (JSON text of an array of
/// requests); answers JSON text of one [`Submitted`] per request.
fn submit_batch(exec: &Arc<Executor>, text: &str) -> std::result::Result<String, EngineError> {
    let defaults = BackgroundExecutionConfig::default();
    // A batch of plain, well-formed submissions skips the validating
    // reader; anything else (or any empty name) takes it, for its errors.
    let plain = serde_json::from_str::<Vec<PlainSubmit>>(text)
        .ok()
        .filter(|list| list.iter().all(|p| !p.tenant_id.is_empty() && !p.callable_name.is_empty()));
    let requests: Vec<EngineResult<validate::SubmitRequest>> = match plain {
        Some(list) => list
            .into_iter()
            .map(|p| {
                Ok(validate::SubmitRequest {
                    execution_id: None,
                    tenant_id: p.tenant_id,
                    callable_name: p.callable_name,
                    input: p.input,
                    context: None,
                    config: BackgroundExecutionConfig::default(),
                    metadata: None,
                    trigger_id: None,
                    trigger_source: None,
                    chain_depth: 0,
                })
            })
            .collect(),
        None => {
            let requests: Vec<Value> = serde_json::from_str(text).map_err(|e| EngineError::invalid("request", e))?;
            requests.iter().map(validate::submit_request).collect()
        }
    };
    // Valid requests go to the store as one batch; invalid ones keep their place.
    let mut batch = Vec::with_capacity(requests.len());
    let mut briefs = Vec::with_capacity(requests.len());
    let mut out: Vec<Option<Submitted>> = Vec::with_capacity(requests.len());
    for r in requests {
        match r {
            Ok(request) => {
                let silent = request.config.mode == ExecutionMode::Silent;
                let brief = request.config == defaults && request.metadata.is_none();
                briefs.push(brief || silent);
                batch.push(Submission { request, watch: silent, keep_record: !(brief || silent) });
                out.push(None);
            }
            Err(e) => out.push(Some(Submitted::Error { e: ErrorOut { code: e.code.as_str(), message: e.message } })),
        }
    }
    let receipts = Executor::now({
        let fut = exec.clone().submit_many(batch);
        async move { Ok(fut.await) }
    })?;
    let mut receipts = receipts.into_iter();
    for slot in out.iter_mut().filter(|s| s.is_none()) {
        let answer = match receipts.next().expect("one receipt per valid request") {
            Ok(receipt) => match receipt.record {
                Some(rec) => Submitted::Record { r: Box::new(rec) },
                None => Submitted::Brief(receipt.execution_id, receipt.queued_at),
            },
            Err(e) => Submitted::Error { e: ErrorOut { code: e.code.as_str(), message: e.message } },
        };
        *slot = Some(answer);
    }
    drop(briefs);
    let out: Vec<Submitted> = out.into_iter().map(|s| s.expect("every request answered")).collect();
    serde_json::to_string(&out).map_err(|e| EngineError::new(ErrorCode::Internal, e.to_string()))
}

fn to_js<'e, T: serde::Serialize>(env: &'e Env, v: &T) -> Result<Unknown<'e>> {
    env.to_js_value(v)
}

/// `['event', name, payload]` for the runtime's listeners.
fn event_notice<'e>(env: &'e Env, kind: EventKind, payload: Unknown<'e>) -> Result<Unknown<'e>> {
    let mut a = env.create_array(3)?;
    a.set(0, "event")?;
    a.set(1, kind.name())?;
    a.set(2, payload)?;
    Ok(a.to_unknown())
}

fn notices_to_js<'e>(env: &'e Env, notices: Vec<Notice>) -> Result<Array<'e>> {
    let mut arr = env.create_array(notices.len() as u32)?;
    for (i, n) in notices.into_iter().enumerate() {
        let item: Unknown = match n {
            Notice::Event(kind, rec) => event_notice(env, kind, to_js(env, &*rec)?)?,
            Notice::Settled(rec) => {
                let mut a = env.create_array(2)?;
                a.set(0, "settled")?;
                a.set(1, to_js(env, &*rec)?)?;
                a.to_unknown()
            }
            Notice::Abort { execution_id, attempt, reason } => {
                let mut a = env.create_array(4)?;
                a.set(0, "abort")?;
                a.set(1, execution_id)?;
                a.set(2, attempt)?;
                a.set(3, reason.as_str())?;
                a.to_unknown()
            }
            Notice::Bind(req) => {
                let mut a = env.create_array(4)?;
                a.set(0, "bind")?;
                a.set(1, to_js(env, &req.record)?)?;
                a.set(2, req.target_type.as_str())?;
                a.set(3, req.value)?;
                a.to_unknown()
            }
            Notice::Closed => {
                let mut a = env.create_array(1)?;
                a.set(0, "closed")?;
                a.to_unknown()
            }
            Notice::TriggerFired(ev) => event_notice(env, EventKind::TriggerFired, to_js(env, &*ev)?)?,
            Notice::LoopBlocked(ev) => event_notice(env, EventKind::LoopBlocked, to_js(env, &*ev)?)?,
            Notice::Diagnostic(d) => {
                let mut a = env.create_array(4)?;
                a.set(0, "diagnostic")?;
                a.set(1, d.source)?;
                a.set(2, d.error.code.as_str())?;
                a.set(3, d.error.message)?;
                a.to_unknown()
            }
            Notice::Answer { ticket, .. } => {
                let mut a = env.create_array(2)?;
                a.set(0, "answer")?;
                a.set(1, ticket as f64)?;
                a.to_unknown()
            }
            Notice::Callback(rec) => {
                let mut a = env.create_array(2)?;
                a.set(0, "callback")?;
                a.set(1, to_js(env, &*rec)?)?;
                a.to_unknown()
            }
        };
        arr.set(i as u32, item)?;
    }
    Ok(arr)
}

/// The stimulus entry points, as numbered for the runtime (`stimulus(kind, json)`).
#[derive(Clone, Copy)]
enum Stimulus {
    Emit = 0,
    EmitBatch = 1,
    Lifecycle = 2,
    Metric = 3,
}

/// The (channel, tenant, event type) an event or lifecycle trigger listens
/// to, as the runtime's `indexTrigger` takes it; channel -1 for a trigger
/// that is gone or listens to no events. With this the runtime answers
/// `emit`/`emitBatch`/`lifecycle` of events that no trigger could match at
/// once, without crossing to Rust. It keeps a superset (status and
/// patterns are not considered), so it only skips events that Rust would
/// have matched to nothing.
fn interest(t: Option<&Trigger>) -> (i32, Option<String>, Option<String>) {
    const NONE: (i32, Option<String>, Option<String>) = (-1, None, None);
    let Some(t) = t else { return NONE };
    let channel = match t.trigger_type {
        TriggerType::Event => Stimulus::Emit,
        TriggerType::Lifecycle => Stimulus::Lifecycle,
        _ => return NONE,
    };
    match &t.condition.event_type {
        Some(event_type) => (channel as i32, Some(t.tenant_id.clone()), Some(event_type.clone())),
        None => NONE,
    }
}

/// Runs a stimulus given as JSON text; answers the fires as JSON text, or
/// `None` when nothing fired.
fn run_stimulus(triggers: &TriggerEngine, kind: u32, text: &str) -> EngineResult<Option<String>> {
    const EMIT: u32 = Stimulus::Emit as u32;
    const EMIT_BATCH: u32 = Stimulus::EmitBatch as u32;
    const LIFECYCLE: u32 = Stimulus::Lifecycle as u32;
    let fired = match kind {
        EMIT => triggers.emit_text(text, enact_background_core::triggers::Stimulus::Emit)?,
        EMIT_BATCH => triggers.emit_text(text, enact_background_core::triggers::Stimulus::EmitBatch)?,
        LIFECYCLE => triggers.emit_text(text, enact_background_core::triggers::Stimulus::Lifecycle)?,
        _ => {
            let v: Value = serde_json::from_str(text).map_err(|e| EngineError::invalid_trigger("metric", e))?;
            triggers.report_metric(&v)?
        }
    };
    if fired.is_empty() {
        return Ok(None);
    }
    serde_json::to_string(&fired).map(Some).map_err(|e| EngineError::new(ErrorCode::Internal, e.to_string()))
}

// -- the runtime's native table ---------------------------------------------

fn native_fn<'e, R, F>(env: &'e Env, name: &str, f: F) -> Result<Function<'e, Unknown<'static>, R>>
where
    R: ToNapiValue,
    F: 'static + Fn(FunctionCallContext) -> Result<R>,
{
    env.create_function_from_closure::<Unknown<'static>, R, F>(name, f)
}

fn native_table(env: &Env, shared: &Arc<Shared>) -> Result<Object<'static>> {
    let mut table = Object::new(env)?;
    let s = shared.clone();
    table.set(
        "take",
        native_fn(env, "take", move |ctx| {
            let env = &*ctx.env;
            guarded(env, || {
                let list = s.exec.take().map_err(|e| engine_error(env, e))?;
                s.refresh_keepalive(env);
                if list.is_empty() {
                    return Ok(None);
                }
                // One JSON string for the batch: V8's JSON.parse builds the
                // job objects far faster than a napi call per property.
                serde_json::to_string(&list).map(Some).map_err(|e| Error::from_reason(e.to_string()))
            })
        })?,
    )?;
    let s = shared.clone();
    table.set(
        "drain",
        native_fn(env, "drain", move |ctx| {
            let env = &*ctx.env;
            guarded(env, || {
                s.pump_pending.store(false, Ordering::SeqCst);
                let notices = s.triggers.drain();
                if notices.is_empty() {
                    return Ok(None);
                }
                let arr = notices_to_js(env, notices)?.to_unknown();
                // SAFETY: returned to JS by this very call.
                Ok(Some(unsafe { std::mem::transmute::<Unknown<'_>, Unknown<'static>>(arr) }))
            })
        })?,
    )?;
    let s = shared.clone();
    table.set(
        "complete",
        native_fn(env, "complete", move |ctx| {
            let env = &*ctx.env;
            let text: String = ctx.get(0)?;
            guarded(env, || {
                let batch: Vec<Completion> = serde_json::from_str(&text)
                    .map_err(|e| js_error(env, "ENACT_INTERNAL", &format!("completion batch is not valid JSON: {e}")))?;
                for c in batch {
                    let id = c.execution_id.clone();
                    let attempt = c.attempt;
                    s.exec.complete(&id, attempt, outcome(c)).map_err(|e| engine_error(env, e))?;
                }
                Ok(())
            })
        })?,
    )?;
    let s = shared.clone();
    table.set(
        "bindingDone",
        native_fn(env, "bindingDone", move |ctx| {
            let env = &*ctx.env;
            let id: String = ctx.get(0)?;
            let error: Option<String> = ctx.get(1)?;
            guarded(env, || {
                s.exec.binding_done(&id, error.map_or(Ok(()), Err)).map_err(|e| engine_error(env, e))
            })
        })?,
    )?;
    let s = shared.clone();
    table.set(
        "busy",
        native_fn(env, "busy", move |ctx| {
            let env = &*ctx.env;
            guarded(env, || {
                s.refresh_keepalive(env);
                Ok(s.exec.busy() as u32)
            })
        })?,
    )?;
    let s = shared.clone();
    table.set(
        "stimulus",
        native_fn(env, "stimulus", move |ctx| {
            let env = &*ctx.env;
            let kind: u32 = ctx.get(0)?;
            let text: String = ctx.get(1)?;
            guarded(env, || {
                let out = run_stimulus(&s.triggers, kind, &text).map_err(|e| engine_error(env, e))?;
                if out.is_some() {
                    s.refresh_keepalive(env);
                }
                Ok(out)
            })
        })?,
    )?;
    let s = shared.clone();
    table.set(
        "submitBatch",
        native_fn(env, "submitBatch", move |ctx| {
            let env = &*ctx.env;
            let text: String = ctx.get(0)?;
            guarded(env, || {
                s.submits_pending.store(false, Ordering::SeqCst);
                let out = submit_batch(&s.exec, &text).map_err(|e| engine_error(env, e))?;
                s.refresh_keepalive(env);
                Ok(out)
            })
        })?,
    )?;
    let s = shared.clone();
    table.set(
        "markSubmits",
        native_fn(env, "markSubmits", move |_ctx| {
            // The runtime holds submissions again: methods that read state
            // must flush them first.
            s.submits_pending.store(true, Ordering::SeqCst);
            Ok(())
        })?,
    )?;
    table.set("defaultConfig", to_js(env, &BackgroundExecutionConfig::default())?)?;
    let s = shared.clone();
    table.set(
        "pending",
        native_fn(env, "pending", move |ctx| {
            let env = &*ctx.env;
            guarded(env, || {
                Ok((s.exec.busy() as u64 + s.exec.waiting()) as f64)
            })
        })?,
    )?;
    let s = shared.clone();
    table.set(
        "setInterest",
        native_fn(env, "setInterest", move |ctx| {
            let name: String = ctx.get(0)?;
            let on: bool = ctx.get(1)?;
            if let Some(kind) = EventKind::parse(&name) {
                s.exec.set_interest(kind, on);
            }
            Ok(())
        })?,
    )?;
    let s = shared.clone();
    table.set(
        "beginShutdown",
        native_fn(env, "beginShutdown", move |_ctx| {
            s.exec.begin_shutdown();
            Ok(())
        })?,
    )?;
    let s = shared.clone();
    table.set(
        "finishShutdown",
        native_fn(env, "finishShutdown", move |ctx| {
            let env = &*ctx.env;
            s.triggers.stop();
            guarded(env, || s.exec.finish_shutdown().map_err(|e| engine_error(env, e)))
        })?,
    )?;
    let s = shared.clone();
    table.set(
        "webhook",
        native_fn(env, "webhook", move |ctx| {
            let env = &*ctx.env;
            let id: String = ctx.get(0)?;
            let headers: Value = ctx.get(1)?;
            let body: Buffer = ctx.get(2)?;
            guarded(env, || {
                let pairs = header_pairs(&headers).map_err(|e| engine_error(env, e))?;
                let fired = s.triggers.webhook(&id, &pairs, &body).map_err(|e| engine_error(env, e))?;
                s.after_fire(env);
                let v = to_js(env, &fired)?;
                // SAFETY: returned to JS by this very call.
                Ok(unsafe { std::mem::transmute::<Unknown<'_>, Unknown<'static>>(v) })
            })
        })?,
    )?;
    let s = shared.clone();
    table.set(
        "close",
        native_fn(env, "close", move |_ctx| {
            // Dropping the last handle releases the threadsafe function, so
            // nothing of ours keeps the event loop alive.
            if let Ok(mut g) = s.host.wake.lock() {
                g.take();
            }
            s.alive.store(false, Ordering::Relaxed);
            Ok(())
        })?,
    )?;
    // SAFETY: the table is handed straight to the runtime factory below,
    // within this same call.
    Ok(unsafe { std::mem::transmute::<Object<'_>, Object<'static>>(table) })
}

// -- the public class -------------------------------------------------------

/// Options of `new BackgroundEngine(options)`.
#[napi(object)]
pub struct EngineOptions {
    /// `'memory'` (default). SQLite and PostgreSQL stores are not available yet.
    #[napi(ts_type = "'memory' | { sqlite: string } | { postgres: string }")]
    pub store: Option<Value>,
    /// Attempts in flight at once, engine-wide (default 16).
    pub concurrency: Option<u32>,
    /// Attempts in flight at once per tenant (default: no limit).
    pub tenant_concurrency: Option<u32>,
    /// Longest chain of triggers firing triggers (default 16).
    pub max_chain_depth: Option<u32>,
    /// Finished executions kept for `getExecution` / `wait` /
    /// `listExecutions`, oldest dropped first (default 100000; counts in
    /// `stats()` include dropped ones).
    pub keep_finished: Option<f64>,
}

/// Options of `shutdown`.
#[napi(object)]
pub struct ShutdownOptions {
    /// How long running work may go on before it is aborted (default 30000).
    pub timeout_ms: Option<f64>,
}

/// The trigger engine and background executor.
#[napi(custom_finalize)]
pub struct BackgroundEngine {
    shared: Arc<Shared>,
    /// `None` once finalized.
    runtime: Option<ObjectRef<false>>,
}

impl ObjectFinalize for BackgroundEngine {
    fn finalize(mut self, env: Env) -> Result<()> {
        // Work already queued goes on without the engine object: the
        // runtime stays reachable through the wake function while busy.
        match self.runtime.take() {
            Some(r) => r.unref(&env),
            None => Ok(()),
        }
    }
}

fn positive(env: &Env, field: &str, v: Option<u32>) -> Result<Option<usize>> {
    match v {
        Some(0) => Err(invalid(env, field, "must be at least 1")),
        other => Ok(other.map(|n| n as usize)),
    }
}

/// `options.concurrency` of `registerCallable`: a positive integer, if any.
fn callable_concurrency(env: &Env, options: Option<Unknown>) -> Result<Option<usize>> {
    let Some(options) = options else { return Ok(None) };
    let v: Value = env.from_js_value(options).map_err(|e| invalid(env, "options", e.reason.clone()))?;
    let map = match &v {
        Value::Null => return Ok(None),
        Value::Object(m) => m,
        other => return Err(invalid(env, "options", format!("expected an object, got {}", validate::describe(other)))),
    };
    if let Some(key) = map.keys().find(|k| k.as_str() != "concurrency") {
        return Err(invalid(env, &format!("options.{key}"), "unknown field (expected concurrency)"));
    }
    match map.get("concurrency") {
        None | Some(Value::Null) => Ok(None),
        Some(n) => match n.as_f64().filter(|f| *f >= 1.0 && f.fract() == 0.0 && *f <= u32::MAX as f64) {
            Some(f) => Ok(Some(f as usize)),
            None => Err(invalid(env, "options.concurrency", format!("expected a positive integer, got {}", validate::describe(n)))),
        },
    }
}

fn event_name_list() -> String {
    EventKind::ALL.iter().map(|k| k.name()).collect::<Vec<_>>().join(", ")
}

#[napi]
impl BackgroundEngine {
    /// Creates an engine. Throws `ENACT_INVALID_EXECUTION` for bad options and
    /// `ENACT_STORE` for a store that is not available.
    #[napi(constructor, catch_unwind)]
    pub fn new(env: Env, options: Option<EngineOptions>) -> Result<Self> {
        let options = options.unwrap_or(EngineOptions { store: None, concurrency: None, tenant_concurrency: None, max_chain_depth: None, keep_finished: None });
        match &options.store {
            None => {}
            Some(Value::String(s)) if s == "memory" => {}
            Some(other) => {
                return Err(js_error(
                    &env,
                    "ENACT_STORE",
                    &format!("store: {} is not available in this build; use 'memory'", enact_background_core::validate::describe(other)),
                ))
            }
        }
        let config = ExecutorConfig {
            concurrency: positive(&env, "concurrency", options.concurrency)?.unwrap_or(16),
            tenant_concurrency: positive(&env, "tenantConcurrency", options.tenant_concurrency)?,
            ..ExecutorConfig::default()
        };
        let max_chain_depth = positive(&env, "maxChainDepth", options.max_chain_depth)?.unwrap_or(16) as u32;
        let host = Arc::new(JsHost { wake: Mutex::new(None) });
        let keep_finished = match options.keep_finished {
            None => enact_background_core::memory::DEFAULT_KEEP_FINISHED,
            Some(n) if n >= 0.0 && n.fract() == 0.0 => n.min(usize::MAX as f64) as usize,
            Some(n) => return Err(invalid(&env, "keepFinished", format!("expected a non-negative integer, got {n}"))),
        };
        let store = MemoryStore::keeping(keep_finished);
        let exec = Executor::new(Arc::new(store.clone()), Arc::new(SystemClock), host.clone(), config);
        let triggers = TriggerEngine::new(exec.clone(), TriggerConfig { max_chain_depth, ..TriggerConfig::default() });
        let shared = Arc::new(Shared { exec, triggers, host, pump_pending: AtomicBool::new(false), submits_pending: AtomicBool::new(false), alive: AtomicBool::new(false) });

        let factory: Function<Object, Object> = env.run_script(RUNTIME_JS)?;
        let runtime = factory.call(native_table(&env, &shared)?)?;
        let wake: Function<u32, Unknown> = runtime.get_named_property("wake")?;
        // Triggers a store already holds (none in a new memory store).
        let index: Function<FnArgs<(String, i32, Option<String>, Option<String>)>, Unknown> = runtime.get_named_property("indexTrigger")?;
        for t in shared.triggers.list(&TriggerFilter::default()).map_err(|e| engine_error(&env, e))? {
            let (channel, tenant, event_type) = interest(Some(&t));
            index.call(FnArgs::from((t.trigger_id.clone(), channel, tenant, event_type)))?;
        }
        let tsfn: WakeFn = wake
            .build_threadsafe_function::<u32>()
            .weak::<true>()
            .callee_handled::<false>()
            .build_callback(|ctx| Ok(ctx.value))?;
        *shared.host.wake.lock().map_err(|_| Error::from_reason("poisoned"))? = Some(Arc::new(tsfn));
        {
            let _guard = timer_runtime().enter();
            shared.exec.start();
            shared.triggers.start().map_err(|e| engine_error(&env, e))?;
        }
        Ok(Self { shared, runtime: Some(runtime.create_ref()?) })
    }

    fn rt<'e>(&self, env: &'e Env) -> Result<Object<'e>> {
        match &self.runtime {
            Some(r) => r.get_value(env),
            None => Err(Error::from_reason("engine was finalized")),
        }
    }

    fn call_rt<'e, A: JsValuesTupleIntoVec>(&self, env: &'e Env, name: &str, args: A) -> Result<Unknown<'e>> {
        let f: Function<A, Unknown> = self.rt(env)?.get_named_property(name)?;
        f.call(args)
    }

    /// The engine's JS runtime, for the package entry (`index.js`), which
    /// binds `submit` and the stimuli straight to it: a call then stays in
    /// JS instead of crossing to Rust and back (about 0.8 µs a submit).
    #[napi(js_name = "__runtime", skip_typescript)]
    pub fn runtime_object<'e>(&self, env: &'e Env) -> Result<Object<'e>> {
        self.rt(env)
    }

    fn schedule_pump(&self, env: &Env) -> Result<()> {
        if !self.shared.pump_pending.swap(true, Ordering::SeqCst) {
            self.call_rt(env, "schedulePump", ())?;
        }
        Ok(())
    }

    /// Registers the async function that runs executions naming `name`.
    /// Registering a name again replaces the function and its options.
    /// `options.concurrency` caps the attempts of this callable in flight at
    /// once (its other waiting work does not hold up other callables).
    #[napi(catch_unwind, ts_args_type = "name: string, fn: Callable, options?: CallableOptions")]
    pub fn register_callable(&self, env: Env, name: Unknown, callable: Unknown, options: Option<Unknown>) -> Result<()> {
        let Ok(ValueType::String) = name.get_type() else { return Err(invalid(&env, "name", "expected a string")) };
        let Ok(ValueType::Function) = callable.get_type() else { return Err(invalid(&env, "fn", "expected a function")) };
        let concurrency = callable_concurrency(&env, options)?;
        let name: String = unsafe { name.cast()? };
        self.shared.exec.register_callable_limited(&name, concurrency).map_err(|e| engine_error(&env, e))?;
        self.call_rt(&env, "setCallable", FnArgs::from((name, callable)))?;
        Ok(())
    }

    /// Registers the handler that receives bound results for `targetType`.
    #[napi(catch_unwind, ts_args_type = "targetType: TargetType, fn: TargetHandler")]
    pub fn register_target(&self, env: Env, target_type: Unknown, handler: Unknown) -> Result<()> {
        let allowed = TargetType::ALL.iter().map(|t| t.as_str()).collect::<Vec<_>>().join(", ");
        let name: Option<String> = match target_type.get_type()? {
            ValueType::String => Some(unsafe { target_type.cast()? }),
            _ => None,
        };
        let Some(target) = name.as_deref().and_then(TargetType::parse) else {
            return Err(invalid(&env, "targetType", format!("expected one of {allowed}")));
        };
        let Ok(ValueType::Function) = handler.get_type() else { return Err(invalid(&env, "fn", "expected a function")) };
        self.shared.exec.register_target(target);
        self.call_rt(&env, "setTarget", FnArgs::from((target.as_str(), handler)))?;
        Ok(())
    }

    /// Queues an execution. `fire_and_forget` and `deferred` resolve at once
    /// with the queued record; `silent` resolves with the final record.
    /// Rejects with `ENACT_INVALID_EXECUTION`, `ENACT_UNKNOWN_CALLABLE` or
    /// `ENACT_SHUTDOWN`.
    #[napi(catch_unwind, ts_args_type = "request: SubmitRequest", ts_return_type = "Promise<BackgroundExecution>")]
    pub fn submit<'e>(&self, env: &'e Env, request: Unknown<'e>) -> Result<Unknown<'e>> {
        // The runtime collects submissions and hands them to Rust as one
        // JSON batch per microtask (or per 1024): a napi call per field of
        // each request and record was most of the cost of a submit.
        self.call_rt(env, "submit", request)
    }

    /// Hands submissions the runtime still holds to Rust, so that a method
    /// called right after `submit` sees them.
    fn flush_submits(&self, env: &Env) -> Result<()> {
        if self.shared.submits_pending.load(Ordering::SeqCst) {
            self.call_rt(env, "flushSubmits", ())?;
        }
        Ok(())
    }

    /// Resolves with the execution's final record (after binding).
    /// Rejects with `ENACT_NOT_FOUND` for an unknown id.
    #[napi(catch_unwind, ts_return_type = "Promise<BackgroundExecution>")]
    pub fn wait<'e>(&self, env: &'e Env, execution_id: String) -> Result<Unknown<'e>> {
        self.flush_submits(env)?;
        match self.shared.exec.watch(&execution_id) {
            Ok(Some(rec)) => settled_promise(env, to_js(env, &rec)),
            Ok(None) => self.call_rt(env, "waitFor", execution_id),
            Err(e) => settled_promise(env, Err(engine_error(env, e))),
        }
    }

    /// Resolves once nothing is queued (delayed work included), running or
    /// being bound, like p-queue's `onIdle()`; at once if that is already so.
    #[napi(catch_unwind, ts_return_type = "Promise<void>")]
    pub fn idle<'e>(&self, env: &'e Env) -> Result<Unknown<'e>> {
        self.flush_submits(env)?;
        self.call_rt(env, "idle", ())
    }

    /// Cancels a queued or running execution: resolves `true` if it was
    /// cancelled, `false` if it had already finished. A running callable's
    /// `ctx.signal` aborts and its late result is ignored.
    #[napi(catch_unwind, ts_return_type = "Promise<boolean>")]
    pub fn cancel<'e>(&self, env: &'e Env, execution_id: String) -> Result<Unknown<'e>> {
        self.flush_submits(env)?;
        let result = self.shared.exec.cancel(&execution_id).map_err(|e| engine_error(env, e));
        if result.is_ok() {
            self.schedule_pump(env)?;
            self.shared.refresh_keepalive(env);
        }
        let value = result.and_then(|b| unsafe { Unknown::from_napi_value(env.raw(), bool::to_napi_value(env.raw(), b)?) });
        settled_promise(env, value)
    }

    /// The execution's current record, or `null`.
    #[napi(catch_unwind, ts_return_type = "BackgroundExecution | null")]
    pub fn get_execution<'e>(&self, env: &'e Env, execution_id: String) -> Result<Unknown<'e>> {
        self.flush_submits(env)?;
        match self.shared.exec.get(&execution_id).map_err(|e| engine_error(env, e))? {
            Some(rec) => to_js(env, &rec),
            None => to_js(env, &Value::Null),
        }
    }

    /// Executions, oldest first, optionally filtered.
    #[napi(catch_unwind, ts_args_type = "filter?: ExecutionFilter", ts_return_type = "BackgroundExecution[]")]
    pub fn list_executions<'e>(&self, env: &'e Env, filter: Option<Unknown<'e>>) -> Result<Unknown<'e>> {
        self.flush_submits(env)?;
        let filter = match filter {
            None => ExecutionFilter::default(),
            Some(f) => {
                let v: Value = env.from_js_value(f).map_err(|e| invalid(env, "filter", e.reason.clone()))?;
                execution_filter(&v).map_err(|e| engine_error(env, e))?
            }
        };
        let list = self.shared.exec.list(&filter).map_err(|e| engine_error(env, e))?;
        to_js(env, &list)
    }

    // -- triggers ----------------------------------------------------------

    /// A JS value for a value or an error, as a settled promise.
    fn settle_with<'e, T: serde::Serialize>(&self, env: &'e Env, r: EngineResult<T>) -> Result<Unknown<'e>> {
        match r {
            Ok(v) => {
                self.schedule_pump(env)?;
                self.shared.refresh_keepalive(env);
                settled_promise(env, to_js(env, &v))
            }
            Err(e) => settled_promise(env, Err(engine_error(env, e))),
        }
    }

    /// Converts a stimulus (event, metric) and hands it to `f`.
    /// Hands a stimulus (event, events, metric) to the runtime, which sends
    /// it to Rust as JSON text: far cheaper than reading it through napi
    /// property by property.
    fn stimulus<'e>(&self, env: &'e Env, kind: Stimulus, v: Unknown<'e>) -> Result<Unknown<'e>> {
        self.call_rt(env, "stimulus", FnArgs::from((kind as u32, v)))
    }

    /// Tells the runtime which (tenant, event type) a trigger listens to;
    /// see [`interest`].
    fn index_trigger(&self, env: &Env, trigger_id: &str, t: Option<&Trigger>) -> Result<()> {
        let (channel, tenant, event_type) = interest(t);
        self.call_rt(env, "indexTrigger", FnArgs::from((trigger_id.to_owned(), channel, tenant, event_type)))?;
        Ok(())
    }

    fn json_arg(env: &Env, field: &str, v: Unknown) -> Result<Value> {
        env.from_js_value(v).map_err(|e| js_error(env, "ENACT_INVALID_TRIGGER", &format!("{field}: {}", e.reason)))
    }

    /// Registers a trigger: enact-core's JSON as it is, or a minimal
    /// definition (`tenantId`, `type`, `condition`, `action`); fills in id,
    /// name, status, counts and times and returns the stored Trigger.
    /// Throws `ENACT_INVALID_TRIGGER` naming the field at fault.
    #[napi(catch_unwind, ts_args_type = "definition: TriggerDefinition", ts_return_type = "Trigger")]
    pub fn register_trigger<'e>(&self, env: &'e Env, definition: Unknown<'e>) -> Result<Unknown<'e>> {
        let def = Self::json_arg(env, "definition", definition)?;
        let t = self.shared.triggers.register(&def).map_err(|e| engine_error(env, e))?;
        self.index_trigger(env, &t.trigger_id, Some(&t))?;
        self.shared.refresh_keepalive(env);
        to_js(env, &t)
    }

    /// One trigger. Throws `ENACT_NOT_FOUND` for an unknown id.
    #[napi(catch_unwind, ts_return_type = "Trigger")]
    pub fn get_trigger<'e>(&self, env: &'e Env, trigger_id: String) -> Result<Unknown<'e>> {
        let t = self.shared.triggers.get(&trigger_id).map_err(|e| engine_error(env, e))?;
        to_js(env, &t)
    }

    /// Triggers in registration order, optionally filtered.
    #[napi(catch_unwind, ts_args_type = "filter?: TriggerFilter", ts_return_type = "Trigger[]")]
    pub fn list_triggers<'e>(&self, env: &'e Env, filter: Option<Unknown<'e>>) -> Result<Unknown<'e>> {
        let filter = match filter {
            None => TriggerFilter::default(),
            Some(f) => trigger_filter(&Self::json_arg(env, "filter", f)?).map_err(|e| engine_error(env, e))?,
        };
        let list = self.shared.triggers.list(&filter).map_err(|e| engine_error(env, e))?;
        to_js(env, &list)
    }

    /// Changes a trigger with a JSON merge patch (objects merge, `null`
    /// deletes). `triggerId`, `tenantId`, `type` and counters are fixed.
    /// A `fired`/`expired` trigger whose limit the patch lifts is active again.
    #[napi(catch_unwind, ts_args_type = "triggerId: string, patch: TriggerPatch", ts_return_type = "Trigger")]
    pub fn update_trigger<'e>(&self, env: &'e Env, trigger_id: String, patch: Unknown<'e>) -> Result<Unknown<'e>> {
        let patch = Self::json_arg(env, "patch", patch)?;
        let t = self.shared.triggers.update(&trigger_id, &patch).map_err(|e| engine_error(env, e))?;
        self.index_trigger(env, &t.trigger_id, Some(&t))?;
        self.shared.refresh_keepalive(env);
        to_js(env, &t)
    }

    /// `active` → `paused`: stimuli and ticks are ignored until resumed.
    #[napi(catch_unwind, ts_return_type = "Trigger")]
    pub fn pause_trigger<'e>(&self, env: &'e Env, trigger_id: String) -> Result<Unknown<'e>> {
        let t = self.shared.triggers.pause(&trigger_id).map_err(|e| engine_error(env, e))?;
        to_js(env, &t)
    }

    /// `paused` or `disabled` → `active`.
    #[napi(catch_unwind, ts_return_type = "Trigger")]
    pub fn resume_trigger<'e>(&self, env: &'e Env, trigger_id: String) -> Result<Unknown<'e>> {
        let t = self.shared.triggers.resume(&trigger_id).map_err(|e| engine_error(env, e))?;
        to_js(env, &t)
    }

    /// Switches a trigger off (`disabled`); `resumeTrigger` switches it on.
    #[napi(catch_unwind, ts_return_type = "Trigger")]
    pub fn disable_trigger<'e>(&self, env: &'e Env, trigger_id: String) -> Result<Unknown<'e>> {
        let t = self.shared.triggers.disable(&trigger_id).map_err(|e| engine_error(env, e))?;
        to_js(env, &t)
    }

    /// Deletes a trigger; its schedule stops. Executions it spawned stay.
    #[napi(catch_unwind)]
    pub fn remove_trigger(&self, env: Env, trigger_id: String) -> Result<()> {
        self.shared.triggers.remove(&trigger_id).map_err(|e| engine_error(&env, e))?;
        self.index_trigger(&env, &trigger_id, None)?;
        self.shared.refresh_keepalive(&env);
        Ok(())
    }

    /// Emits an application event to the tenant's event triggers; resolves
    /// with one TriggerFiredEvent per trigger that fired.
    #[napi(catch_unwind, ts_args_type = "event: TriggerEvent", ts_return_type = "Promise<TriggerFiredEvent[]>")]
    pub fn emit<'e>(&self, env: &'e Env, event: Unknown<'e>) -> Result<Unknown<'e>> {
        self.stimulus(env, Stimulus::Emit, event)
    }

    /// Emits many application events in one call (faster than a loop of
    /// `emit`); resolves with the fires of all of them, in order. A
    /// malformed event rejects the whole batch before anything fires.
    #[napi(catch_unwind, ts_args_type = "events: TriggerEvent[]", ts_return_type = "Promise<TriggerFiredEvent[]>")]
    pub fn emit_batch<'e>(&self, env: &'e Env, events: Unknown<'e>) -> Result<Unknown<'e>> {
        self.stimulus(env, Stimulus::EmitBatch, events)
    }

    /// Emits a lifecycle event (`thread.created`, `user.signup`, …) to the
    /// tenant's lifecycle triggers.
    #[napi(catch_unwind, ts_args_type = "event: TriggerEvent", ts_return_type = "Promise<TriggerFiredEvent[]>")]
    pub fn lifecycle<'e>(&self, env: &'e Env, event: Unknown<'e>) -> Result<Unknown<'e>> {
        self.stimulus(env, Stimulus::Lifecycle, event)
    }

    /// Reports a metric value; threshold triggers fire when their
    /// comparison turns true (a crossing) and re-arm when it turns false.
    #[napi(catch_unwind, ts_args_type = "metric: MetricReport", ts_return_type = "Promise<TriggerFiredEvent[]>")]
    pub fn report_metric<'e>(&self, env: &'e Env, metric: Unknown<'e>) -> Result<Unknown<'e>> {
        self.stimulus(env, Stimulus::Metric, metric)
    }

    /// Fires a trigger now with `payload` as its source. Rejects with
    /// `ENACT_NOT_FOUND` or `ENACT_TRIGGER_INACTIVE` (paused, disabled,
    /// fired, expired, not started or cooling down).
    #[napi(catch_unwind, ts_args_type = "triggerId: string, payload?: unknown", ts_return_type = "Promise<TriggerFiredEvent>")]
    pub fn fire<'e>(&self, env: &'e Env, trigger_id: String, payload: Option<Unknown<'e>>) -> Result<Unknown<'e>> {
        let payload = match payload {
            Some(p) if !matches!(p.get_type()?, ValueType::Undefined) => match Self::json_arg(env, "payload", p) {
                Ok(v) => Some(v),
                Err(e) => return settled_promise(env, Err(e)),
            },
            _ => None,
        };
        let r = self.shared.triggers.fire(&trigger_id, payload);
        self.settle_with(env, r)
    }

    /// Delivers a webhook request to a webhook trigger. With a
    /// `webhookSecret` the Standard Webhooks headers must verify against
    /// the raw body (pass the body as received: a string or Buffer);
    /// otherwise rejects with `ENACT_WEBHOOK_SIGNATURE` and nothing fires.
    #[napi(catch_unwind, ts_args_type = "triggerId: string, request: WebhookRequest", ts_return_type = "Promise<TriggerFiredEvent>")]
    pub fn webhook<'e>(&self, env: &'e Env, trigger_id: String, request: Unknown<'e>) -> Result<Unknown<'e>> {
        let r = (|| {
            if request.get_type()? != ValueType::Object {
                return Err(js_error(env, "ENACT_INVALID_TRIGGER", &format!("request: expected an object {{ headers, body }}, got {}", js_type_name(&request)?)));
            }
            let request: Object = unsafe { request.cast()? };
            let headers: Value = match request.get::<Unknown>("headers")? {
                Some(h) if !matches!(h.get_type()?, ValueType::Undefined | ValueType::Null) => Self::json_arg(env, "request.headers", h)?,
                _ => Value::Object(Default::default()),
            };
            let pairs = header_pairs(&headers).map_err(|e| engine_error(env, e))?;
            let body = body_bytes(env, request.get::<Unknown>("body")?)?;
            Ok((pairs, body))
        })();
        match r {
            Ok((pairs, body)) => {
                let r = self.shared.triggers.webhook(&trigger_id, &pairs, &body);
                self.settle_with(env, r)
            }
            Err(e) => settled_promise(env, Err(e)),
        }
    }

    /// A Node `(req, res)` handler for `http.createServer` or Express:
    /// `POST …/<triggerId>` answers 202 with the TriggerFiredEvent, 401 on a
    /// bad signature, 404 for an unknown trigger, 409 when the trigger is
    /// not active, 413 over `maxBodyBytes` (default 1 MiB). Mount it before
    /// any body parser (or use `express.raw()`), so signatures are checked
    /// against the raw body.
    #[napi(catch_unwind, ts_args_type = "options?: WebhookHandlerOptions", ts_return_type = "WebhookHandler")]
    pub fn webhook_handler<'e>(&self, env: &'e Env, options: Option<Value>) -> Result<Unknown<'e>> {
        let max = match options.as_ref().and_then(|o| o.get("maxBodyBytes")) {
            None | Some(Value::Null) => 1024.0 * 1024.0,
            Some(v) => match v.as_f64().filter(|n| *n >= 1.0 && n.fract() == 0.0) {
                Some(n) => n,
                None => return Err(js_error(env, "ENACT_INVALID_TRIGGER", &format!("options.maxBodyBytes: expected a positive integer, got {}", validate::describe(v)))),
            },
        };
        self.call_rt(env, "webhookHandler", max)
    }

    /// Adds a listener for an event (`execution.*`, `binding.applied`,
    /// `binding.failed`, `trigger.fired`, `trigger.loop_blocked`).
    #[napi(catch_unwind, ts_args_type = "event: EngineEventName, listener: (payload: any) => void")]
    pub fn on(&self, env: Env, event: String, listener: Unknown) -> Result<()> {
        if EventKind::parse(&event).is_none() {
            return Err(invalid(&env, "event", format!("unknown event {event:?} (expected one of {})", event_name_list())));
        }
        let Ok(ValueType::Function) = listener.get_type() else { return Err(invalid(&env, "listener", "expected a function")) };
        self.call_rt(&env, "on", FnArgs::from((event, listener)))?;
        Ok(())
    }

    /// Removes a listener added with `on`.
    #[napi(catch_unwind, ts_args_type = "event: EngineEventName, listener: (payload: any) => void")]
    pub fn off(&self, env: Env, event: String, listener: Unknown) -> Result<()> {
        self.call_rt(&env, "off", FnArgs::from((event, listener)))?;
        Ok(())
    }

    /// Counters: executions per status, attempts in flight, limits.
    #[napi(catch_unwind)]
    pub fn stats(&self, env: Env) -> Result<EngineStats> {
        self.flush_submits(&env)?;
        let s = self.shared.exec.stats().map_err(|e| engine_error(&env, e))?;
        Ok(EngineStats {
            queued: s.counts.queued as f64,
            running: s.counts.running as f64,
            completed: s.counts.completed as f64,
            failed: s.counts.failed as f64,
            cancelled: s.counts.cancelled as f64,
            timeout: s.counts.timeout as f64,
            in_flight: s.in_flight as u32,
            concurrency: s.concurrency as u32,
            submitted: s.submitted as f64,
            retried: s.retried as f64,
            stale_results: s.stale_results as f64,
        })
    }

    /// Stops taking work, lets running work finish for up to `timeoutMs`
    /// (default 30000), then aborts what is left (it goes back to queued)
    /// and rejects pending waiters with `ENACT_SHUTDOWN`. Afterwards nothing
    /// of the engine keeps Node alive.
    #[napi(catch_unwind, ts_return_type = "Promise<void>")]
    pub fn shutdown<'e>(&self, env: &'e Env, options: Option<ShutdownOptions>) -> Result<Unknown<'e>> {
        self.flush_submits(env)?;
        let timeout = options.and_then(|o| o.timeout_ms).unwrap_or(30_000.0);
        if !timeout.is_finite() || timeout < 0.0 {
            return settled_promise(env, Err(invalid(env, "timeoutMs", format!("expected a non-negative number, got {timeout}"))));
        }
        self.call_rt(env, "shutdown", timeout)
    }
}

/// Counters returned by `stats()`.
#[napi(object)]
pub struct EngineStats {
    pub queued: f64,
    pub running: f64,
    pub completed: f64,
    pub failed: f64,
    pub cancelled: f64,
    pub timeout: f64,
    /// Attempts in flight.
    pub in_flight: u32,
    /// Engine-wide concurrency limit.
    pub concurrency: u32,
    /// Submissions accepted since start.
    pub submitted: f64,
    /// Retries scheduled since start.
    pub retried: f64,
    /// Late results ignored (after a timeout or cancel).
    pub stale_results: f64,
}

fn execution_filter(v: &Value) -> EngineResult<ExecutionFilter> {
    let f = validate::Fields::of(v, "filter")?;
    f.only(&["tenantId", "status", "callableName", "limit"])?;
    let statuses = ["queued", "running", "completed", "failed", "cancelled", "timeout"];
    Ok(ExecutionFilter {
        tenant_id: f.opt_str("tenantId")?,
        status: f.opt_enum("status", &statuses, |s| serde_json::from_value(Value::String(s.into())).ok())?,
        callable_name: f.opt_str("callableName")?,
        limit: f.opt_int("limit", 0, u32::MAX as u64)?.map(|n| n as usize),
    })
}

/// Applies a result transform exactly as target binding does:
/// `none`, `first_line`, `truncate` (counting characters) or
/// `json_extract` (`$.a.b`, `$.a[0]`, `$.a[*].b`). Throws `ENACT_TRANSFORM`
/// when the value cannot be transformed.
#[napi(catch_unwind, ts_args_type = "value: string, transform: TransformType, maxLength?: number | null, jsonPath?: string | null")]
pub fn apply_transform(env: Env, value: String, transform: String, max_length: Option<f64>, json_path: Option<String>) -> Result<String> {
    let kind: TransformType = serde_json::from_value(Value::String(transform.clone()))
        .map_err(|_| invalid(&env, "transform", format!("expected one of none, first_line, truncate, json_extract, got {transform:?}")))?;
    let max = match max_length {
        None => None,
        Some(n) if n >= 0.0 && n.fract() == 0.0 => Some(n as usize),
        Some(n) => return Err(invalid(&env, "maxLength", format!("expected a non-negative integer, got {n}"))),
    };
    transform::apply_transform(&value, kind, max, json_path.as_deref()).map_err(|e| engine_error(&env, e.into()))
}

fn js_type_name(v: &Unknown) -> Result<&'static str> {
    Ok(match v.get_type()? {
        ValueType::Undefined => "undefined",
        ValueType::Null => "null",
        ValueType::Boolean => "a boolean",
        ValueType::Number => "a number",
        ValueType::String => "a string",
        ValueType::Function => "a function",
        _ => "a value of another type",
    })
}

fn trigger_filter(v: &Value) -> EngineResult<TriggerFilter> {
    let f = validate::Fields::with_code(v, "filter", ErrorCode::InvalidTrigger)?;
    f.only(&["tenantId", "type", "status"])?;
    let types = ["event", "schedule", "webhook", "threshold", "manual", "lifecycle"];
    let statuses = ["active", "paused", "disabled", "fired", "expired"];
    Ok(TriggerFilter {
        tenant_id: f.opt_str("tenantId")?,
        trigger_type: f.opt_enum("type", &types, |s| serde_json::from_value(Value::String(s.into())).ok())?,
        status: f.opt_enum("status", &statuses, |s| serde_json::from_value(Value::String(s.into())).ok())?,
    })
}

/// Request headers as (name, value) pairs: values may be strings or, as
/// Node gives repeated headers, arrays of strings (joined with ", ").
fn header_pairs(v: &Value) -> EngineResult<Vec<(String, String)>> {
    let Value::Object(map) = v else {
        return Err(EngineError::invalid_trigger("request.headers", format!("expected an object, got {}", validate::describe(v))));
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
                    format!("expected a string or an array of strings, got {}", validate::describe(other)),
                ))
            }
        };
        out.push((k.clone(), value));
    }
    Ok(out)
}

/// A webhook body as bytes: a string (UTF-8), a Buffer or Uint8Array as
/// is, anything else as its JSON text; absent is empty.
fn body_bytes(env: &Env, body: Option<Unknown>) -> Result<Vec<u8>> {
    let Some(body) = body else { return Ok(Vec::new()) };
    match body.get_type()? {
        ValueType::Undefined | ValueType::Null => Ok(Vec::new()),
        ValueType::String => Ok(unsafe { body.cast::<String>()? }.into_bytes()),
        _ if body.is_buffer()? => Ok(unsafe { Buffer::from_napi_value(env.raw(), body.raw())? }.to_vec()),
        _ if body.is_typedarray()? => Ok(unsafe { Uint8Array::from_napi_value(env.raw(), body.raw())? }.to_vec()),
        _ => {
            let v: Value = env.from_js_value(body).map_err(|e| js_error(env, "ENACT_INVALID_TRIGGER", &format!("request.body: {}", e.reason)))?;
            Ok(v.to_string().into_bytes())
        }
    }
}
