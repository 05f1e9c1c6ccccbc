//! The Node.js binding of enact-background: converts and forwards to
//! `enact-background-core`. No engine logic and no validation live here.
//!
//! The public API is the JS facade (`index.js`, `lib/`); it holds one
//! [`NativeEngine`] and calls its named methods. Calls go one way: JS asks,
//! Rust answers. Rust reaches JS only through one weak threadsafe function,
//! the wake-up a timer thread (delayed work, retry backoff, timeout) sends
//! when it produced something; it is ref'd only while work is queued or
//! running. It reaches the facade through a `WeakRef`, and the facade is
//! held (anchored) only while the engine has work or schedules, so an idle
//! engine nobody references is collected, and its native half shut down
//! by [`NativeEngine`]'s finalizer. Submissions, started jobs, results and notices cross as one
//! JSON text per batch: V8's JSON and serde are far cheaper than a napi call
//! per property.

#![deny(clippy::all)]

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::ptr;
use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use enact_background_core::prelude::*;
use enact_background_core::postgres::{PgOptions, PgStore};
use enact_background_core::sqlite::{Recovery, SqliteOptions, SqliteStore};
use enact_background_core::transform;
use enact_background_core::triggers::{ExplainSource, Stimulus as EventsIn};
use napi::bindgen_prelude::*;
use napi::threadsafe_function::{ThreadsafeFunction, ThreadsafeFunctionCallMode};
use napi::{sys, Env};
use napi_derive::napi;
use serde_json::Value;

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

/// Engine results as JS results: the error becomes a JS `Error` with its code.
trait OrThrow<T> {
    fn or_throw(self, env: &Env) -> Result<T>;
}

impl<T> OrThrow<T> for EngineResult<T> {
    fn or_throw(self, env: &Env) -> Result<T> {
        self.map_err(|e| js_error(env, e.code.as_str(), &e.message))
    }
}

/// Runs `f`, turning a Rust panic into an `ENACT_INTERNAL` error instead of
/// a crash.
fn guarded<T>(env: &Env, f: impl FnOnce() -> Result<T>) -> Result<T> {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(r) => r,
        Err(panic) => {
            let what = panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown panic".into());
            Err(js_error(env, ErrorCode::Internal.as_str(), &format!("internal error (a bug in enact-background): {what}")))
        }
    }
}

/// JSON text of `v`.
fn json<T: serde::Serialize + ?Sized>(env: &Env, v: &T) -> Result<String> {
    serde_json::to_string(v).map_err(|e| js_error(env, ErrorCode::Internal.as_str(), &e.to_string()))
}

/// An object argument, which the facade (lib/args.js) sends as JSON text:
/// never a JS object converted here, whose nesting would be read by
/// recursion. What cannot be read is an error of `code` naming `field`.
fn json_arg(env: &Env, code: ErrorCode, field: &str, text: &str) -> Result<Value> {
    validate::parse_json(text, field, code).or_throw(env)
}

/// The bytes of JSON `ctx.progress(value)` may store.
const MAX_PROGRESS_BYTES: usize = 16 * 1024;

/// A trace context carrier passed as JSON text (or null).
fn trace_arg(env: &Env, text: Option<String>) -> Result<Option<Arc<TraceContext>>> {
    let Some(text) = text else { return Ok(None) };
    let v = json_arg(env, ErrorCode::InvalidExecution, "traceContext", &text)?;
    let holder = serde_json::json!({ "traceContext": v });
    let f = validate::Fields::of(&holder, "").or_throw(env)?;
    Ok(validate::trace_context(&f, "traceContext").or_throw(env)?.map(Arc::new))
}

// -- the host ---------------------------------------------------------------

type WakeFn = ThreadsafeFunction<u32, (), u32, Status, false, true>;

/// Wakes the JS facade from timer threads: the only call from Rust to JS.
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
            // The PostgreSQL store's connections.
            .enable_io()
            .build()
            .expect("tokio runtime for timers")
    })
}

struct Shared {
    exec: Arc<Executor>,
    triggers: Arc<TriggerEngine>,
    /// The engine's clock when it is manual (`clock: 'manual'`): time
    /// moves only by [`NativeEngine::advance_to`].
    manual: Option<Arc<ManualClock>>,
    host: Arc<JsHost>,
    /// A reference to the JS facade, strong exactly while `alive`: the
    /// wake function reaches the facade through a `WeakRef`, so an engine
    /// nobody references is collected once idle (and then stopped, see
    /// [`NativeEngine::finalize`]), while one with work or schedules keeps
    /// running like a timer would.
    anchor: sys::napi_ref,
    /// Whether the wake function is ref'd (keeps Node alive while busy)
    /// and the facade anchored.
    alive: AtomicBool,
    /// Calls answered later (a durable store) whose `answer` notice the
    /// facade has not drained yet: Node stays alive for them.
    outstanding: AtomicUsize,
    /// What crash recovery did when a SQLite store was opened.
    recovery: Option<Recovery>,
    /// The store is durable (SQLite, PostgreSQL): it loads and starts in
    /// steps (`adopt`, `start`) and closes at shutdown.
    durable: bool,
}

impl Shared {
    /// Keeps Node alive, and the facade from being collected, exactly
    /// while work is queued or running (or a schedule is active).
    fn refresh_keepalive(&self, env: &Env) {
        // An engine that serves callables over a shared store is a worker:
        // other engines may send it work at any time, so it keeps Node
        // alive until it is shut down (as a server would).
        let worker = self.exec.is_shared() && !self.exec.is_stopped() && self.exec.serves_any();
        let busy = self.exec.busy() > 0
            || self.exec.waiting() > 0
            || worker
            // A durable store's calls still under way (an end being written:
            // leaving now would run it again at the next open), and waits
            // for executions not settled yet (over a shared store, running
            // elsewhere).
            || self.exec.store_calls() > 0
            || self.exec.watching() > 0
            || self.triggers.has_schedules()
            || self.outstanding.load(Ordering::Relaxed) > 0;
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
            self.anchor(env, busy);
            self.alive.store(busy, Ordering::Relaxed);
        }
    }

    /// Makes the reference to the facade strong (`on`) or weak again.
    fn anchor(&self, env: &Env, on: bool) {
        let mut count = 0;
        unsafe {
            if on {
                sys::napi_reference_ref(env.raw(), self.anchor, &mut count);
            } else {
                sys::napi_reference_unref(env.raw(), self.anchor, &mut count);
            }
        }
    }

    /// Releases the wake function and the anchor: nothing of the engine
    /// keeps Node alive or its facade from being collected.
    fn release_wake(&self, env: &Env) {
        if let Ok(mut g) = self.host.wake.lock() {
            g.take();
        }
        if self.alive.swap(false, Ordering::Relaxed) {
            self.anchor(env, false);
        }
    }
}

// -- conversions ------------------------------------------------------------

/// A finished attempt, as lib/runner.js reports it in a JSON batch.
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

/// A callable's error as lib/runner.js captured it.
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

/// A completion read with its output still as text (the slow path).
#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawCompletion {
    execution_id: String,
    attempt: u32,
    #[serde(default)]
    output: Option<Box<serde_json::value::RawValue>>,
    #[serde(default)]
    error: Option<CompletionError>,
}

/// A JSON batch of completions as (id, attempt, outcome). When the batch
/// cannot be read at once (an output nests as deep as a value may, and the
/// batch around it adds two levels), each output is read on its own; one
/// that still cannot be read (deeper than [`validate::MAX_JSON_DEPTH`])
/// fails its own execution, not the batch: a callable's result must never
/// throw out of the runner.
fn completions(text: &str) -> EngineResult<Vec<(String, u32, Outcome)>> {
    if let Ok(batch) = serde_json::from_str::<Vec<Completion>>(text) {
        return Ok(batch.into_iter().map(|c| (c.execution_id.clone(), c.attempt, outcome(c))).collect());
    }
    let mut out = Vec::new();
    for raw in validate::json_items(text, "completions", ErrorCode::Internal)? {
        let c: RawCompletion =
            serde_json::from_str(raw.get()).map_err(|e| EngineError::new(ErrorCode::Internal, format!("completion batch: {e}")))?;
        let output = match &c.output {
            None => Ok(Value::Null),
            Some(o) => serde_json::from_str(o.get()),
        };
        let (id, attempt) = (c.execution_id.clone(), c.attempt);
        let result = match output {
            Ok(output) => outcome(Completion { execution_id: c.execution_id, attempt: c.attempt, output, error: c.error }),
            Err(e) => Outcome::Failed(CallError {
                message: format!("callable returned a value that cannot be stored: output: {}", validate::json_fault(&e)),
                retryable: false,
                code: Some(ErrorCode::InvalidExecution.as_str().into()),
                details: None,
            }),
        };
        out.push((id, attempt, result));
    }
    Ok(out)
}

/// One submission's result in a `submitBatch` answer: `[id, queuedAt]`
/// when lib/submissions.js can build the record itself (no config beyond the
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
/// `chains`: JSON text of an array aligned with the requests, each `null`
/// or the `[chainRoot, chainDepth]` of the callable the submit was made in
/// (absent: none was).
fn submit_batch(
    exec: &Arc<Executor>,
    text: &str,
    chains: Option<&str>,
) -> EngineResult<impl Future<Output = EngineResult<Vec<Submitted>>> + Send + 'static> {
    let defaults = BackgroundExecutionConfig::default();
    // A batch of plain, well-formed submissions skips the validating
    // reader; anything else (or any empty name) takes it, for its errors.
    let plain = serde_json::from_str::<Vec<PlainSubmit>>(text)
        .ok()
        .filter(|list| list.iter().all(|p| validate::plain_name(&p.tenant_id) && validate::plain_name(&p.callable_name)));
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
                    chain_root: None,
                    trace_context: None,
                })
            })
            .collect(),
        // Each request is read on its own, so that one nested too deeply
        // fails alone rather than every request batched with it.
        None => validate::json_items(text, "requests", ErrorCode::InvalidExecution)?
            .iter()
            .map(|raw| validate::parse_json(raw.get(), "request", ErrorCode::InvalidExecution).and_then(|v| validate::submit_request(&v)))
            .collect(),
    };
    let mut requests = requests;
    if let Some(chains) = chains {
        let chains: Vec<Option<(String, u32)>> =
            serde_json::from_str(chains).map_err(|e| EngineError::new(ErrorCode::Internal, format!("chains: {e}")))?;
        for (r, chain) in requests.iter_mut().zip(chains) {
            if let (Ok(request), Some((root, depth))) = (r, chain) {
                request.chain_root = Some(root);
                request.chain_depth = depth.saturating_add(1);
            }
        }
    }
    // The valid requests go to the store as one batch (one commit on a
    // durable store); an invalid one keeps its place in the answer.
    let mut batch = Vec::with_capacity(requests.len());
    let mut out: Vec<Option<Submitted>> = Vec::with_capacity(requests.len());
    for r in requests {
        match r {
            Ok(request) => {
                let silent = request.config.mode == ExecutionMode::Silent;
                let brief = request.config == defaults && request.metadata.is_none() && request.chain_root.is_none() && request.trace_context.is_none();
                batch.push(Submission { request, watch: silent, keep_record: !(brief || silent) });
                out.push(None);
            }
            Err(e) => out.push(Some(Submitted::Error { e: ErrorOut { code: e.code.as_str(), message: e.message } })),
        }
    }
    let fut = exec.clone().submit_many(batch);
    Ok(async move {
    let mut receipts = fut.await.into_iter();
    let out: Vec<Submitted> = out
        .into_iter()
        .map(|slot| {
            slot.unwrap_or_else(|| match receipts.next().expect("one receipt per valid request") {
                // A silent submission of an existing execution that has not
                // settled: the facade waits for it, as for a new one.
                Ok(receipt) if receipt.existing == Some(Existing::Watched) => Submitted::Brief(receipt.execution_id, receipt.queued_at),
                Ok(receipt) => match receipt.record {
                    Some(rec) => Submitted::Record { r: rec },
                    None => Submitted::Brief(receipt.execution_id, receipt.queued_at),
                },
                Err(e) => Submitted::Error { e: ErrorOut { code: e.code.as_str(), message: e.message } },
            })
        })
        .collect();
    Ok(out)
    })
}

// -- notices ------------------------------------------------------------------

/// A notice as the facade reads it: one tagged JSON object (`t`).
#[derive(serde::Serialize)]
#[serde(tag = "t", rename_all = "camelCase")]
enum NoticeOut<'a> {
    /// An event for listeners.
    Event { name: &'static str, payload: Payload<'a> },
    /// A watched execution's final record: resolve its waiters.
    Settled { record: &'a BackgroundExecution },
    /// Abort this attempt's signal.
    #[serde(rename_all = "camelCase")]
    Abort { execution_id: &'a str, attempt: u32, reason: &'static str },
    /// Call the target handler, then `bindingDone`.
    #[serde(rename_all = "camelCase")]
    Bind { record: &'a BackgroundExecution, target_type: &'static str, value: &'a str },
    /// POST the record to its callbackUrl.
    Callback { record: &'a BackgroundExecution },
    /// The engine shut down.
    Closed,
    /// Background work failed and goes on: listeners of
    /// `engine.diagnostic` hear it, else it is a process warning.
    Diagnostic { source: &'static str, code: &'static str, message: &'a str },
    /// The answer of a call that was answered later (a durable store).
    Answer { ticket: u64, ok: Option<&'a Value>, error: Option<ErrorOut> },
}

#[derive(serde::Serialize)]
#[serde(untagged)]
enum Payload<'a> {
    Execution(&'a BackgroundExecution),
    Fired(&'a TriggerFiredEvent),
    Blocked(&'a LoopBlockedEvent),
}

fn notice_out(n: &Notice) -> NoticeOut<'_> {
    match n {
        Notice::Event(kind, rec) => NoticeOut::Event { name: kind.name(), payload: Payload::Execution(rec) },
        Notice::TriggerFired(ev) => NoticeOut::Event { name: EventKind::TriggerFired.name(), payload: Payload::Fired(ev) },
        Notice::LoopBlocked(ev) => NoticeOut::Event { name: EventKind::LoopBlocked.name(), payload: Payload::Blocked(ev) },
        Notice::Settled(rec) => NoticeOut::Settled { record: rec },
        Notice::Abort { execution_id, attempt, reason } => NoticeOut::Abort { execution_id, attempt: *attempt, reason: reason.as_str() },
        Notice::Bind(req) => NoticeOut::Bind { record: &req.record, target_type: req.target_type.as_str(), value: &req.value },
        Notice::Callback(rec) => NoticeOut::Callback { record: rec },
        Notice::Closed => NoticeOut::Closed,
        Notice::Diagnostic(d) => NoticeOut::Diagnostic { source: d.source, code: d.error.code.as_str(), message: &d.error.message },
        Notice::Answer { ticket, result } => match result {
            Ok(v) => NoticeOut::Answer { ticket: *ticket, ok: Some(v), error: None },
            Err(e) => NoticeOut::Answer { ticket: *ticket, ok: None, error: Some(ErrorOut { code: e.code.as_str(), message: e.message.clone() }) },
        },
    }
}

// -- stimuli ------------------------------------------------------------------

/// The stimulus entry points, numbered for `NativeEngine.stimulus(kind, json)`
/// (the facade reads the numbers from [`protocol`]).
#[derive(Clone, Copy)]
enum Stimulus {
    Emit = 0,
    EmitBatch = 1,
    Lifecycle = 2,
    Metric = 3,
}

/// Runs a stimulus given as JSON text; answers the fires, or `None` when
/// nothing fired.
fn run_stimulus(
    triggers: Arc<TriggerEngine>,
    kind: u32,
    text: String,
    chain: Chain,
) -> impl Future<Output = EngineResult<Option<Vec<TriggerFiredEvent>>>> + Send + 'static {
    const EMIT: u32 = Stimulus::Emit as u32;
    const EMIT_BATCH: u32 = Stimulus::EmitBatch as u32;
    const LIFECYCLE: u32 = Stimulus::Lifecycle as u32;
    async move {
        let fired = match kind {
            EMIT => triggers.emit_text_async(&text, EventsIn::Emit, &chain).await?,
            EMIT_BATCH => triggers.emit_text_async(&text, EventsIn::EmitBatch, &chain).await?,
            LIFECYCLE => triggers.emit_text_async(&text, EventsIn::Lifecycle, &chain).await?,
            _ => {
                let v = validate::parse_json(&text, "metric", ErrorCode::InvalidTrigger)?;
                triggers.report_metric_async(&v, &chain).await?
            }
        };
        Ok(if fired.is_empty() { None } else { Some(fired) })
    }
}

// -- shared constants -----------------------------------------------------------

/// The constants the facade shares with Rust, as JSON text: `errorCodes`
/// (every `err.code`), `eventNames`, `targetTypes`, `stimuli` (the numbers
/// of `NativeEngine.stimulus`) and `defaultConfig` (the config of a
/// submission that gives none). Read once when the package loads.
#[napi]
pub fn protocol(env: Env) -> Result<String> {
    let v = serde_json::json!({
        "errorCodes": ErrorCode::ALL.iter().map(|c| c.as_str()).collect::<Vec<_>>(),
        "eventNames": EventKind::ALL.iter().map(|k| k.name()).collect::<Vec<_>>(),
        "targetTypes": TargetType::ALL.iter().map(|t| t.as_str()).collect::<Vec<_>>(),
        "stimuli": {
            "emit": Stimulus::Emit as u32,
            "emitBatch": Stimulus::EmitBatch as u32,
            "lifecycle": Stimulus::Lifecycle as u32,
            "metric": Stimulus::Metric as u32,
        },
        "defaultConfig": BackgroundExecutionConfig::default(),
        "maxJsonDepth": validate::MAX_JSON_DEPTH,
        "maxProgressBytes": MAX_PROGRESS_BYTES,
    });
    json(&env, &v)
}

/// Applies a result transform exactly as target binding does (see
/// `applyTransform` in index.d.ts).
#[napi(catch_unwind)]
pub fn apply_transform(env: Env, value: String, transform: String, max_length: Option<f64>, json_path: Option<String>) -> Result<String> {
    let (kind, max) = validate::transform_args(&transform, max_length).or_throw(&env)?;
    transform::apply_transform(&value, kind, max, json_path.as_deref()).map_err(EngineError::from).or_throw(&env)
}

/// `options.bindingTimeoutMs` of `new BackgroundEngine(options)`, checked:
/// how long the facade waits for a target handler before it fails the
/// binding.
#[napi]
pub fn binding_timeout_ms(env: Env, options: String) -> Result<f64> {
    let options = json_arg(&env, ErrorCode::InvalidExecution, "options", &options)?;
    validate::binding_timeout_ms(&options).or_throw(&env)
}

// -- the native engine ----------------------------------------------------------

/// Counters returned by `stats()`.
#[derive(serde::Serialize)]
#[serde(rename_all = "camelCase")]
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
    /// Of `queued`, those delayed (retry backoff, `runAt`, `delayMs`).
    pub delayed: f64,
    /// The window `callables` and `tenants` report over (ms).
    pub window_ms: f64,
    /// Executions this engine ended since it started (null with metrics off).
    pub ended: Option<EndedStats>,
    /// Per callable.
    pub callables: std::collections::BTreeMap<String, NameStatsJs>,
    /// Per tenant.
    pub tenants: std::collections::BTreeMap<String, NameStatsJs>,
}

/// Executions ended per final status.
#[derive(serde::Serialize)]
pub struct EndedStats {
    pub completed: f64,
    pub failed: f64,
    pub timeout: f64,
    pub cancelled: f64,
}

impl EndedStats {
    fn of(n: [u64; 4]) -> Self {
        Self { completed: n[0] as f64, failed: n[1] as f64, timeout: n[2] as f64, cancelled: n[3] as f64 }
    }
}

/// p50 / p99 in ms over the window.
#[derive(serde::Serialize)]
pub struct PercentilesJs {
    pub count: f64,
    pub p50: f64,
    pub p99: f64,
}

/// One callable's or tenant's stats.
#[derive(serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct NameStatsJs {
    pub queued: f64,
    pub delayed: f64,
    pub running: f64,
    pub completed: f64,
    pub failed: f64,
    pub timeout: f64,
    pub cancelled: f64,
    pub retried: f64,
    pub duration_ms: Option<PercentilesJs>,
    pub wait_ms: Option<PercentilesJs>,
}

impl NameStatsJs {
    fn of(n: enact_background_core::executor::NameStats) -> Self {
        let w = n.window;
        let p = |p: Option<enact_background_core::metrics::Percentiles>| {
            p.map(|p| PercentilesJs { count: p.count as f64, p50: round3(p.p50), p99: round3(p.p99) })
        };
        Self {
            queued: n.queued as f64,
            delayed: n.delayed as f64,
            running: n.running as f64,
            completed: w.ended[0] as f64,
            failed: w.ended[1] as f64,
            timeout: w.ended[2] as f64,
            cancelled: w.ended[3] as f64,
            retried: w.retried as f64,
            duration_ms: p(w.run),
            wait_ms: p(w.wait),
        }
    }
}

/// Milliseconds to the microsecond.
fn round3(ms: f64) -> f64 {
    (ms * 1000.0).round() / 1000.0
}

/// The Rust half of one engine, held by the facade (`lib/engine.js`).
/// Each method forwards to the core; records cross as JSON text.
#[napi(custom_finalize)]
pub struct NativeEngine {
    shared: Shared,
}

impl ObjectFinalize for NativeEngine {
    /// The facade was collected. After `shutdown()` there is nothing left
    /// to do but free the anchor; an engine dropped without it (it was
    /// idle: an engine with work or schedules is anchored) is shut down
    /// here, so that its services end and drop the executor, the trigger
    /// engine and the store with them.
    fn finalize(self, env: Env) -> Result<()> {
        let shared = &self.shared;
        if !shared.exec.is_stopped() {
            shared.triggers.stop();
            shared.exec.begin_shutdown();
            let _ = catch_unwind(AssertUnwindSafe(|| shared.exec.finish_shutdown()));
        }
        shared.release_wake(&env);
        unsafe { sys::napi_delete_reference(env.raw(), shared.anchor) };
        Ok(())
    }
}

#[napi]
impl NativeEngine {
    /// `options` as `new BackgroundEngine(options)` takes them; `wake` is
    /// called (through a weak threadsafe function) when a timer produced
    /// work or notices; `facade` is the JS engine, held (strongly) only
    /// while the engine has work or schedules.
    #[napi(constructor, catch_unwind, ts_args_type = "options: string, wake: () => void, facade: object")]
    pub fn new(env: Env, options: String, wake: Function<u32, ()>, facade: Unknown) -> Result<Self> {
        guarded(&env, || {
            let options = json_arg(&env, ErrorCode::InvalidExecution, "options", &options)?;
            let o = validate::engine_options(&options).or_throw(&env)?;
            let host = Arc::new(JsHost { wake: Mutex::new(None) });
            let (store, recovery): (Arc<dyn Driver>, Option<Recovery>) = match &o.store {
                validate::StoreOption::Memory => (
                    Arc::new(MemoryStore::with_config(MemoryConfig { keep_finished: o.keep_finished, replay_capacity: o.webhook_replay_capacity })),
                    None,
                ),
                validate::StoreOption::Postgres { url, schema } => {
                    let options = PgOptions { schema: schema.clone(), replay_capacity: o.webhook_replay_capacity, ..PgOptions::default() };
                    // No I/O here: `adopt` connects and migrates.
                    let _guard = timer_runtime().enter();
                    let store = PgStore::new(url, options).map_err(EngineError::from).or_throw(&env)?;
                    (Arc::new(store), None)
                }
                validate::StoreOption::Sqlite { path, synchronous } => {
                    let options = SqliteOptions {
                        synchronous: *synchronous,
                        replay_capacity: o.webhook_replay_capacity,
                        keep_finished: Some(o.keep_finished),
                        max_stalls: o.max_stalls,
                        ..SqliteOptions::default()
                    };
                    let store = SqliteStore::open(path, options).map_err(EngineError::from).or_throw(&env)?;
                    let recovery = store.recovery();
                    (Arc::new(store), Some(recovery))
                }
            };
            let durable = !matches!(o.store, validate::StoreOption::Memory);
            let shared = store.shared();
            let config = ExecutorConfig {
                concurrency: o.concurrency,
                tenant_concurrency: o.tenant_concurrency,
                lease_ms: o.lease_ms,
                max_stalls: o.max_stalls,
                // Over a shared store engines die while others go on: leases
                // are renewed, and expired ones taken back, all the time.
                maintenance: shared,
                keep_finished: shared.then_some(o.keep_finished),
                metrics: o.metrics,
            };
            let manual = match o.clock {
                validate::ClockOption::System => None,
                validate::ClockOption::Manual(None) => Some(Arc::new(ManualClock::new())),
                validate::ClockOption::Manual(Some(start)) => Some(Arc::new(ManualClock::starting_at(start))),
            };
            let clock: Arc<dyn Clock> = match &manual {
                Some(m) => m.clone(),
                None => Arc::new(SystemClock),
            };
            let exec = Executor::new(store, clock, host.clone(), config);
            let triggers = TriggerEngine::new(
                exec.clone(),
                TriggerConfig { max_chain_depth: o.max_chain_depth, max_chain_fires: o.max_chain_fires, ..TriggerConfig::default() },
            );
            let tsfn: WakeFn = wake
                .build_threadsafe_function::<u32>()
                .weak::<true>()
                .callee_handled::<false>()
                .build_callback(|ctx| Ok(ctx.value))?;
            *host.wake.lock().map_err(|_| Error::from_reason("poisoned"))? = Some(Arc::new(tsfn));
            let mut anchor = ptr::null_mut();
            let status = unsafe { sys::napi_create_reference(env.raw(), facade.raw(), 0, &mut anchor) };
            if status != sys::Status::napi_ok {
                return Err(Error::new(Status::from(status), "facade: expected an object"));
            }
            let shared = Shared { exec, triggers, manual, host, anchor, alive: AtomicBool::new(false), outstanding: AtomicUsize::new(0), recovery, durable };
            let started = {
                let _guard = timer_runtime().enter();
                shared.exec.start();
                // A durable store loads its triggers later: `start` does.
                if durable { Ok(()) } else { shared.triggers.start().map(drop) }
            };
            if let Err(e) = started {
                shared.triggers.stop();
                let _ = shared.exec.finish_shutdown();
                shared.release_wake(&env);
                unsafe { sys::napi_delete_reference(env.raw(), anchor) };
                return Err(e).or_throw(&env);
            }
            Ok(Self { shared })
        })
    }

    /// The answer of `fut` as JSON text when the store answered at once,
    /// else the ticket (a number) of the `answer` notice that will carry it.
    fn answered<T>(&self, env: &Env, fut: impl Future<Output = EngineResult<T>> + Send + 'static) -> Result<Either<String, f64>>
    where
        T: serde::Serialize + Send + 'static,
    {
        let answer = {
            let _guard = timer_runtime().enter();
            self.shared.exec.answer(fut)
        };
        if let Answer::Later(_) = answer {
            self.shared.outstanding.fetch_add(1, Ordering::Relaxed);
        }
        // The call may have queued work or armed a schedule, or (answered
        // later) waits for its ticket: whether Node stays alive follows.
        self.shared.refresh_keepalive(env);
        match answer {
            Answer::Now(r) => json(env, &r.or_throw(env)?).map(Either::A),
            Answer::Later(ticket) => Ok(Either::B(ticket as f64)),
        }
    }

    /// First step of starting an engine over a durable store, before any
    /// callable is registered (so no claim can take work yet): counts the
    /// work the file holds as waiting and arms the timer for its delayed
    /// work. Answers `null` (now or as a ticket); at once for a memory
    /// engine, which started in its constructor.
    #[napi(ts_return_type = "string | number")]
    pub fn adopt(&self, env: Env) -> Result<Either<String, f64>> {
        guarded(&env, || {
            if !self.shared.durable {
                return Ok(Either::A("null".into()));
            }
            let exec = self.shared.exec.clone();
            self.answered(&env, async move {
                if exec.is_shared() {
                    // Connects and creates or migrates the schema, or
                    // refuses; work is claimed once callables are registered.
                    exec.open_store().await?;
                    exec.clone().run_due_async().await?;
                    return Ok(());
                }
                exec.clone().adopt_backlog().await?;
                // A manual clock has no timer loop that would find it.
                exec.run_due_async().await?;
                Ok(())
            })
        })
    }

    /// Last step of starting an engine over a durable store, once its
    /// callables are registered: loads the triggers and runs the
    /// scheduler (ticks missed while down fire now). Answers `null` (now
    /// or as a ticket); at once for a memory engine.
    #[napi(ts_return_type = "string | number")]
    pub fn start(&self, env: Env) -> Result<Either<String, f64>> {
        guarded(&env, || {
            if !self.shared.durable {
                return Ok(Either::A("null".into()));
            }
            let triggers = self.shared.triggers.clone();
            let exec = self.shared.exec.clone();
            self.answered(&env, async move {
                // Other engines may send work for these callables from now.
                exec.publish_async().await?;
                triggers.start_async().await?;
                Ok(())
            })
        })
    }

    /// Whether the store is durable (opened in steps, closed at shutdown).
    #[napi]
    pub fn durable(&self) -> bool {
        self.shared.durable
    }

    /// Whether other engines share the store (PostgreSQL).
    #[napi]
    pub fn shared(&self) -> bool {
        self.shared.exec.is_shared()
    }

    /// What crash recovery did when the durable store was opened:
    /// `[requeued, failed]`; null for the memory store.
    #[napi]
    pub fn recovery(&self) -> Option<Vec<f64>> {
        self.shared.recovery.map(|r| vec![r.requeued as f64, r.failed as f64])
    }

    // -- the executor's loop ----------------------------------------------

    /// Attempts that may start now, as JSON text, or null.
    #[napi]
    pub fn take(&self, env: Env) -> Result<Option<String>> {
        guarded(&env, || {
            let list = self.shared.exec.take().or_throw(&env)?;
            self.shared.refresh_keepalive(&env);
            if list.is_empty() { Ok(None) } else { json(&env, &list).map(Some) }
        })
    }

    /// Pending notices as JSON text of tagged objects (`{"t":"event",...}`), or null.
    #[napi]
    pub fn drain(&self, env: Env) -> Result<Option<String>> {
        guarded(&env, || {
            let notices = self.shared.triggers.drain();
            if notices.is_empty() {
                return Ok(None);
            }
            let answers = notices.iter().filter(|n| matches!(n, Notice::Answer { .. })).count();
            let out = json(&env, &notices.iter().map(notice_out).collect::<Vec<_>>()).map(Some);
            if answers > 0 {
                let _ = self.shared.outstanding.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| Some(n.saturating_sub(answers)));
                self.shared.refresh_keepalive(&env);
            }
            out
        })
    }

    /// Finished attempts: JSON text of `[{executionId, attempt, output?, error?}]`.
    #[napi]
    pub fn complete(&self, env: Env, batch: String) -> Result<()> {
        guarded(&env, || {
            // One store call for the batch (one savepoint of a group commit).
            self.shared.exec.complete_many(completions(&batch).or_throw(&env)?).or_throw(&env)
        })
    }

    /// A target handler finished (`error`: why it failed).
    #[napi]
    pub fn binding_done(&self, env: Env, execution_id: String, error: Option<String>) -> Result<()> {
        guarded(&env, || self.shared.exec.binding_done(&execution_id, error.map_or(Ok(()), Err)).or_throw(&env))
    }

    /// Attempts running or being bound.
    #[napi]
    pub fn busy(&self, env: Env) -> u32 {
        self.shared.refresh_keepalive(&env);
        self.shared.exec.busy() as u32
    }

    /// Store calls still running off the JS thread (a durable store); the
    /// facade is woken as each ends.
    #[napi]
    pub fn store_calls(&self) -> u32 {
        self.shared.exec.store_calls() as u32
    }

    /// Work not finished yet: busy plus queued (delayed included).
    #[napi]
    pub fn pending(&self) -> f64 {
        (self.shared.exec.busy() as u64 + self.shared.exec.waiting()) as f64
    }

    /// Whether anyone listens to the event `name` (events nobody listens
    /// to are not built).
    #[napi]
    pub fn set_interest(&self, name: String, on: bool) {
        if let Some(kind) = EventKind::parse(&name) {
            self.shared.exec.set_interest(kind, on);
        }
    }

    // -- time -----------------------------------------------------------------

    /// The engine's clock, in ms since the Unix epoch.
    #[napi]
    pub fn now(&self) -> f64 {
        self.shared.exec.clock().now().timestamp_millis() as f64
    }

    /// Whether the engine runs on a manual clock (`clock: 'manual'`).
    #[napi]
    pub fn manual_clock(&self) -> bool {
        self.shared.manual.is_some()
    }

    /// The earliest time (ms since the Unix epoch) timed work may be due:
    /// a delayed or backoff execution, an attempt's deadline, a schedule
    /// tick; null when none is armed. Never later than the real next due
    /// time, possibly earlier (work that since finished).
    #[napi]
    pub fn next_due(&self) -> Option<f64> {
        let exec = self.shared.exec.next_due();
        let ticks = self.shared.triggers.next_due();
        match (exec, ticks) {
            (Some(a), Some(b)) => Some(a.min(b) as f64),
            (a, b) => a.or(b).map(|t| t as f64),
        }
    }

    /// Moves a manual clock to `at` (ms since the Unix epoch; never
    /// backwards) and does at once what came due by then: stages delayed
    /// and backoff executions, times out attempts past their deadline,
    /// fires schedule ticks (a trigger that missed several ticks fires
    /// once: the facade steps through `nextDue` to fire each). Then
    /// `drain` and `take` hand over what it made. Answers `null`, or a
    /// ticket over a durable store.
    #[napi(ts_return_type = "string | number")]
    pub fn advance_to(&self, env: Env, at: f64) -> Result<Either<String, f64>> {
        guarded(&env, || {
            let Some(clock) = &self.shared.manual else {
                return Err(EngineError::invalid(
                    "advanceTime",
                    "this engine runs on the system clock; create it with new BackgroundEngine({ clock: 'manual' }) to move its time",
                ))
                .or_throw(&env);
            };
            if !at.is_finite() {
                return Err(EngineError::invalid("ms", format!("expected a finite time, got {at}"))).or_throw(&env);
            }
            clock.advance_to_millis(at);
            let (exec, triggers) = (self.shared.exec.clone(), self.shared.triggers.clone());
            self.answered(&env, async move {
                exec.run_due_async().await?;
                triggers.run_due_async().await;
                Ok(())
            })
        })
    }

    // -- executions ---------------------------------------------------------

    /// Validates and queues a batch of submissions (JSON text of an array of
    /// requests); answers JSON text of one result per request (or a
    /// ticket: over a durable store, once the batch committed).
    #[napi(ts_return_type = "string | number")]
    pub fn submit_batch(&self, env: Env, requests: String, chains: Option<String>) -> Result<Either<String, f64>> {
        guarded(&env, || {
            let fut = submit_batch(&self.shared.exec, &requests, chains.as_deref()).or_throw(&env)?;
            self.answered(&env, fut)
        })
    }

    // Every call below may need the store: each answers JSON text when the
    // store answered at once (memory), else a ticket whose `answer` notice
    // carries the answer (a durable store, from its own thread).

    /// The final record if the execution has finished; else null, and its
    /// record comes as a `settled` notice when it does.
    #[napi(ts_return_type = "string | number")]
    pub fn watch(&self, env: Env, execution_id: String) -> Result<Either<String, f64>> {
        guarded(&env, || self.answered(&env, self.shared.exec.clone().watch_async(execution_id)))
    }

    /// Cancels a queued or running execution; false if it had finished.
    #[napi(ts_return_type = "string | number")]
    pub fn cancel(&self, env: Env, execution_id: String) -> Result<Either<String, f64>> {
        guarded(&env, || {
            self.answered(&env, self.shared.exec.clone().cancel_async(execution_id))
        })
    }

    /// Queues a failed, timed-out or cancelled execution again; answers the
    /// queued record.
    #[napi(ts_return_type = "string | number")]
    pub fn retry(&self, env: Env, execution_id: String) -> Result<Either<String, f64>> {
        guarded(&env, || self.answered(&env, self.shared.exec.clone().retry_async(execution_id)))
    }

    /// Stores what a running attempt reported (`value`: JSON text); answers
    /// whether that attempt still ran (else nothing was written).
    #[napi(ts_return_type = "string | number")]
    pub fn progress(&self, env: Env, execution_id: String, attempt: u32, value: String) -> Result<Either<String, f64>> {
        guarded(&env, || {
            if value.len() > MAX_PROGRESS_BYTES {
                return Err(EngineError::invalid("progress", format!("expected at most {MAX_PROGRESS_BYTES} bytes of JSON, got {}", value.len())))
                    .or_throw(&env);
            }
            let value = json_arg(&env, ErrorCode::InvalidExecution, "progress", &value)?;
            self.answered(&env, self.shared.exec.clone().progress_async(execution_id, attempt, value))
        })
    }

    /// This engine's metrics in the Prometheus text format (0.0.4), with
    /// gauges of the store's waiting and running work and its triggers.
    #[napi(ts_return_type = "string | number")]
    pub fn metrics(&self, env: Env) -> Result<Either<String, f64>> {
        guarded(&env, || {
            let exec = self.shared.exec.clone();
            let t = self.shared.triggers.clone();
            self.answered(&env, async move {
                let mut by: std::collections::BTreeMap<(u8, u8), (TriggerType, TriggerStatus, u64)> = Default::default();
                for tr in t.list_async(&TriggerFilter::default()).await? {
                    by.entry((tr.trigger_type as u8, tr.status as u8)).or_insert((tr.trigger_type, tr.status, 0)).2 += 1;
                }
                exec.metrics_text(by.into_values().collect()).await
            })
        })
    }

    /// Counts a webhook handler's answer (its HTTP status) in the metrics.
    #[napi]
    pub fn record_webhook(&self, status: u32) {
        self.shared.exec.metrics().webhook(u16::try_from(status).unwrap_or(u16::MAX));
    }

    /// The record, or null.
    #[napi(ts_return_type = "string | number")]
    pub fn get_execution(&self, env: Env, execution_id: String) -> Result<Either<String, f64>> {
        guarded(&env, || self.answered(&env, self.shared.exec.get_async(execution_id)))
    }

    /// Records, oldest first.
    #[napi(ts_return_type = "string | number")]
    pub fn list_executions(&self, env: Env, filter: String) -> Result<Either<String, f64>> {
        guarded(&env, || {
            let filter = match json_arg(&env, ErrorCode::InvalidExecution, "filter", &filter)? {
                Value::Null => ExecutionFilter::default(),
                f => validate::execution_filter(&f).or_throw(&env)?,
            };
            self.answered(&env, self.shared.exec.list_async(filter))
        })
    }

    /// Counters, as [`EngineStats`].
    #[napi(ts_return_type = "string | number")]
    pub fn stats(&self, env: Env) -> Result<Either<String, f64>> {
        guarded(&env, || {
            let exec = self.shared.exec.clone();
            self.answered(&env, async move {
                let counting = exec.metrics().enabled();
                let s = exec.stats_async().await?;
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
                    delayed: s.delayed as f64,
                    window_ms: enact_background_core::metrics::WINDOW_MS as f64,
                    ended: counting.then(|| EndedStats::of(s.ended)),
                    callables: s.callables.into_iter().map(|(k, v)| (k, NameStatsJs::of(v))).collect(),
                    tenants: s.tenants.into_iter().map(|(k, v)| (k, NameStatsJs::of(v))).collect(),
                })
            })
        })
    }

    /// Registers (or re-registers) a callable name and its options.
    #[napi]
    pub fn register_callable(&self, env: Env, name: String, options: String) -> Result<()> {
        guarded(&env, || {
            let options = json_arg(&env, ErrorCode::InvalidExecution, "options", &options)?;
            let concurrency = validate::callable_options(&options).or_throw(&env)?;
            self.shared.exec.register_callable_limited(&name, concurrency).or_throw(&env)?;
            if self.shared.exec.is_shared() {
                let _guard = timer_runtime().enter();
                self.shared.exec.publish();
                self.shared.refresh_keepalive(&env);
            }
            Ok(())
        })
    }

    /// Registers a target type that has a handler.
    #[napi]
    pub fn register_target(&self, env: Env, target_type: String) -> Result<()> {
        let target = validate::target_type(&target_type).or_throw(&env)?;
        self.shared.exec.register_target(target);
        Ok(())
    }

    // -- triggers -----------------------------------------------------------

    // Every Trigger answered below carries the engine's `nextFireAt`
    // (active schedule triggers): `TriggerEngine::record`.

    /// Registers a trigger; answers the stored Trigger.
    #[napi(ts_return_type = "string | number")]
    pub fn register_trigger(&self, env: Env, definition: String) -> Result<Either<String, f64>> {
        guarded(&env, || {
            let def = json_arg(&env, ErrorCode::InvalidTrigger, "definition", &definition)?;
            let t = self.shared.triggers.clone();
            self.answered(&env, async move { Ok(t.record(t.register_async(&def).await?)) })
        })
    }

    /// One trigger.
    #[napi(ts_return_type = "string | number")]
    pub fn get_trigger(&self, env: Env, trigger_id: String) -> Result<Either<String, f64>> {
        let t = self.shared.triggers.clone();
        guarded(&env, || self.answered(&env, async move { Ok(t.record(t.get_async(&trigger_id).await?)) }))
    }

    /// Triggers, in registration order.
    #[napi(ts_return_type = "string | number")]
    pub fn list_triggers(&self, env: Env, filter: String) -> Result<Either<String, f64>> {
        guarded(&env, || {
            let filter = match json_arg(&env, ErrorCode::InvalidTrigger, "filter", &filter)? {
                Value::Null => TriggerFilter::default(),
                f => validate::trigger_filter(&f).or_throw(&env)?,
            };
            let t = self.shared.triggers.clone();
            self.answered(&env, async move { Ok(t.records(t.list_async(&filter).await?)) })
        })
    }

    /// Applies a JSON merge patch; answers the Trigger.
    #[napi(ts_return_type = "string | number")]
    pub fn update_trigger(&self, env: Env, trigger_id: String, patch: String) -> Result<Either<String, f64>> {
        guarded(&env, || {
            let patch = json_arg(&env, ErrorCode::InvalidTrigger, "patch", &patch)?;
            let t = self.shared.triggers.clone();
            self.answered(&env, async move { Ok(t.record(t.update_async(&trigger_id, &patch).await?)) })
        })
    }

    /// `active` → `paused`.
    #[napi(ts_return_type = "string | number")]
    pub fn pause_trigger(&self, env: Env, trigger_id: String) -> Result<Either<String, f64>> {
        let t = self.shared.triggers.clone();
        guarded(&env, || self.answered(&env, async move { Ok(t.record(t.pause_async(&trigger_id).await?)) }))
    }

    /// `paused` or `disabled` → `active`.
    #[napi(ts_return_type = "string | number")]
    pub fn resume_trigger(&self, env: Env, trigger_id: String) -> Result<Either<String, f64>> {
        let t = self.shared.triggers.clone();
        guarded(&env, || self.answered(&env, async move { Ok(t.record(t.resume_async(&trigger_id).await?)) }))
    }

    /// → `disabled`.
    #[napi(ts_return_type = "string | number")]
    pub fn disable_trigger(&self, env: Env, trigger_id: String) -> Result<Either<String, f64>> {
        let t = self.shared.triggers.clone();
        guarded(&env, || self.answered(&env, async move { Ok(t.record(t.disable_async(&trigger_id).await?)) }))
    }

    /// Deletes a trigger; answers null.
    #[napi(ts_return_type = "string | number")]
    pub fn remove_trigger(&self, env: Env, trigger_id: String) -> Result<Either<String, f64>> {
        guarded(&env, || {
            let t = self.shared.triggers.clone();
            self.answered(&env, async move { t.remove_async(&trigger_id).await })
        })
    }

    /// An event, a batch of events, a lifecycle event or a metric (`kind`,
    /// numbered as in [`protocol`]) as JSON text; answers the fires, or
    /// null when nothing fired. `chainRoot` and `chainDepth`: the chain of
    /// the callable it was made in (null and 0 outside one). `trace`: the
    /// caller's W3C trace context as JSON text (`{ traceparent,
    /// tracestate? }`), carried onto the executions it fires, or null.
    #[napi(ts_return_type = "string | number")]
    pub fn stimulus(
        &self,
        env: Env,
        kind: u32,
        value: String,
        chain_root: Option<String>,
        chain_depth: u32,
        trace: Option<String>,
    ) -> Result<Either<String, f64>> {
        guarded(&env, || {
            let trace = trace_arg(&env, trace)?;
            let chain = Chain { depth: chain_depth, root: chain_root, trace };
            self.answered(&env, run_stimulus(self.shared.triggers.clone(), kind, value, chain))
        })
    }

    /// Why an event would or would not fire each trigger of its tenant
    /// (JSON text of the event, and of `options` `{source?}` or null);
    /// answers the TriggerExplanations. Fires and writes nothing.
    /// `chainRoot` / `chainDepth` as for [`NativeEngine::stimulus`].
    #[napi(ts_return_type = "string | number")]
    pub fn explain(&self, env: Env, event: String, options: String, chain_root: Option<String>, chain_depth: u32) -> Result<Either<String, f64>> {
        guarded(&env, || {
            let event = json_arg(&env, ErrorCode::InvalidTrigger, "event", &event)?;
            let options = json_arg(&env, ErrorCode::InvalidTrigger, "options", &options)?;
            let source = ExplainSource::from_options(&options).or_throw(&env)?;
            let chain = Chain { depth: chain_depth, root: chain_root, trace: None };
            let t = self.shared.triggers.clone();
            self.answered(&env, async move { t.explain_async(&event, source, &chain).await })
        })
    }

    /// [`NativeEngine::explain`] for a metric report and the threshold
    /// triggers of its tenant (the arming is read, never changed).
    #[napi(ts_return_type = "string | number")]
    pub fn explain_metric(&self, env: Env, metric: String, chain_root: Option<String>, chain_depth: u32) -> Result<Either<String, f64>> {
        guarded(&env, || {
            let metric = json_arg(&env, ErrorCode::InvalidTrigger, "metric", &metric)?;
            let chain = Chain { depth: chain_depth, root: chain_root, trace: None };
            let t = self.shared.triggers.clone();
            self.answered(&env, async move { t.explain_metric_async(&metric, &chain).await })
        })
    }

    /// Fires a trigger now; answers the TriggerFiredEvent. `chainRoot` /
    /// `chainDepth` / `trace` as for [`NativeEngine::stimulus`].
    #[napi(ts_return_type = "string | number")]
    pub fn fire(
        &self,
        env: Env,
        trigger_id: String,
        payload: String,
        chain_root: Option<String>,
        chain_depth: u32,
        trace: Option<String>,
    ) -> Result<Either<String, f64>> {
        guarded(&env, || {
            let payload = match json_arg(&env, ErrorCode::InvalidTrigger, "payload", &payload)? {
                Value::Null => None,
                p => Some(p),
            };
            let trace = trace_arg(&env, trace)?;
            let chain = Chain { depth: chain_depth, root: chain_root, trace };
            let t = self.shared.triggers.clone();
            self.answered(&env, async move { t.fire_async(&trigger_id, payload, &chain).await })
        })
    }

    /// Delivers a webhook request (headers as Node gives them, the raw
    /// body); answers the TriggerFiredEvent.
    #[napi(ts_return_type = "string | number")]
    pub fn webhook(&self, env: Env, trigger_id: String, headers: String, body: Buffer) -> Result<Either<String, f64>> {
        guarded(&env, || {
            let headers = match json_arg(&env, ErrorCode::InvalidTrigger, "request.headers", &headers)? {
                Value::Null => Value::Object(Default::default()),
                h => h,
            };
            let pairs = validate::header_pairs(&headers).or_throw(&env)?;
            let body = body.to_vec();
            let t = self.shared.triggers.clone();
            self.answered(&env, async move { t.webhook_async(&trigger_id, &pairs, &body).await })
        })
    }

    /// `options` of `webhookHandler(options)`, checked: `[maxBodyBytes,
    /// bodyTimeoutMs]`.
    #[napi]
    pub fn webhook_handler_options(&self, env: Env, options: String) -> Result<Vec<f64>> {
        let options = json_arg(&env, ErrorCode::InvalidTrigger, "options", &options)?;
        let (max_body_bytes, body_timeout_ms) = validate::webhook_handler_options(&options).or_throw(&env)?;
        Ok(vec![max_body_bytes, body_timeout_ms])
    }

    // -- shutdown -----------------------------------------------------------

    /// `options.timeoutMs` of `shutdown(options)`, checked.
    #[napi]
    pub fn shutdown_timeout(&self, env: Env, options: String) -> Result<f64> {
        let options = json_arg(&env, ErrorCode::InvalidExecution, "options", &options)?;
        validate::shutdown_timeout(&options).or_throw(&env)
    }

    /// Stops accepting and starting work; running attempts go on.
    #[napi]
    pub fn begin_shutdown(&self) {
        self.shared.exec.begin_shutdown();
    }

    /// Stops the scheduler, aborts what still runs and queues the `closed`
    /// notice.
    #[napi]
    pub fn finish_shutdown(&self, env: Env) -> Result<()> {
        self.shared.triggers.stop();
        guarded(&env, || self.shared.exec.finish_shutdown().or_throw(&env))
    }

    /// Closes the store once shutdown finished: what was asked before is
    /// committed, then a durable store's file and lock are released.
    /// Answers null (now, or as a ticket).
    #[napi(ts_return_type = "string | number")]
    pub fn close_store(&self, env: Env) -> Result<Either<String, f64>> {
        let driver = self.shared.exec.driver().clone();
        guarded(&env, || self.answered(&env, async move { Ok(driver.close().await?) }))
    }

    /// Releases the wake function and the anchor, so nothing of the engine
    /// keeps Node alive or its facade from being collected.
    #[napi]
    pub fn close(&self, env: Env) {
        self.shared.release_wake(&env);
    }
}
