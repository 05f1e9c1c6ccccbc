//! What this engine did, counted as it happens: executions by final
//! status, attempts, retries, run and queue-wait times per callable, fires
//! per trigger type and webhook answers; encoded in the Prometheus text
//! exposition format (version 0.0.4), and summed over a recent window per
//! callable and per tenant for `stats()`.
//!
//! Counters and histograms are this engine's own, as every Prometheus
//! client counts its own process (a cluster's totals are a `sum()` in
//! PromQL); the gauges of waiting and running work are read from the store
//! by the caller, so over PostgreSQL they show the cluster.
//!
//! The hot path is an attempt's start and end: the callable's [`Series`]
//! is looked up once when the attempt starts and kept with it, so its end
//! touches atomics and one short lock for the windows.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;

use parking_lot::{Mutex, RwLock};

use crate::model::{TriggerStatus, TriggerType};
use crate::store::Tally;

/// How metrics are kept.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MetricsConfig {
    /// Count at all (default true).
    pub enabled: bool,
    /// Label the execution metrics with the tenant as well (default false:
    /// a Prometheus series per tenant is unbounded cardinality). The
    /// per-tenant window of `stats()` is kept either way.
    pub tenant_labels: bool,
}

impl Default for MetricsConfig {
    fn default() -> Self {
        Self { enabled: true, tenant_labels: false }
    }
}

/// Upper bounds (seconds) of the run-time and queue-wait histograms: from
/// a no-op job to an LLM call of minutes.
pub const BUCKETS: [f64; 14] = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0];

/// The window `stats()` sums over: [`WINDOW_SLOTS`] slots of this many ms.
pub const SLOT_MS: i64 = 60_000;
/// Slots in the window: the last 5 minutes (the current slot included).
pub const WINDOW_SLOTS: usize = 5;
/// The window `stats()` reports over, in ms.
pub const WINDOW_MS: i64 = SLOT_MS * WINDOW_SLOTS as i64;

/// A histogram with [`BUCKETS`], lock-free.
#[derive(Default)]
pub struct Histogram {
    /// Per bucket, not cumulative; the last one is `+Inf`.
    counts: [AtomicU64; BUCKETS.len() + 1],
    sum_us: AtomicU64,
}

impl Histogram {
    fn observe(&self, ms: f64) {
        let secs = ms / 1000.0;
        let i = BUCKETS.iter().position(|b| secs <= *b).unwrap_or(BUCKETS.len());
        self.counts[i].fetch_add(1, Relaxed);
        self.sum_us.fetch_add((ms * 1000.0).max(0.0) as u64, Relaxed);
    }

    fn add_to(&self, into: &mut ([u64; BUCKETS.len() + 1], f64)) {
        for (o, n) in into.0.iter_mut().zip(&self.counts) {
            *o += n.load(Relaxed);
        }
        into.1 += self.sum_us.load(Relaxed) as f64 / 1e6;
    }
}

/// Milliseconds from `from` to `to` (to the microsecond, never negative):
/// an attempt's run time, an execution's wait.
pub fn elapsed_ms(from: crate::model::Timestamp, to: crate::model::Timestamp) -> f64 {
    (to - from).num_microseconds().unwrap_or(i64::MAX).max(0) as f64 / 1000.0
}

/// How an attempt or an execution ended, for the counters.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum End {
    /// Completed.
    Completed,
    /// Failed for good.
    Failed,
    /// Timed out for good.
    Timeout,
    /// Cancelled.
    Cancelled,
    /// Failed or timed out with attempts left: queued again.
    Retry,
}

const FINAL: [(&str, End); 4] = [("completed", End::Completed), ("failed", End::Failed), ("timeout", End::Timeout), ("cancelled", End::Cancelled)];

fn final_index(end: End) -> Option<usize> {
    FINAL.iter().position(|(_, e)| *e == end)
}

/// The counters of one callable (and tenant, with tenant labels).
pub struct Series {
    callable: Arc<str>,
    tenant: Option<Arc<str>>,
    /// The callable's window (shared by its series of every tenant).
    window: SharedWindow,
    ended: [AtomicU64; 4],
    attempts: AtomicU64,
    retries: AtomicU64,
    run: Histogram,
    wait: Histogram,
}

impl Series {
    fn new(callable: Arc<str>, tenant: Option<Arc<str>>, window: SharedWindow) -> Self {
        Self {
            callable,
            tenant,
            window,
            ended: Default::default(),
            attempts: AtomicU64::new(0),
            retries: AtomicU64::new(0),
            run: Histogram::default(),
            wait: Histogram::default(),
        }
    }
}

/// Log-scale buckets for window percentiles: 4 per doubling of
/// microseconds (each within 19 % of the next), from 1 µs to hours.
const LOG_BUCKETS: usize = 4 * 40;

fn log_bucket(ms: f64) -> u8 {
    let us = (ms * 1000.0).max(1.0);
    ((us.log2() * 4.0).floor() as usize).min(LOG_BUCKETS - 1) as u8
}

/// The geometric middle of a log bucket, in ms.
fn log_value(b: u8) -> f64 {
    2f64.powf((f64::from(b) + 0.5) / 4.0) / 1000.0
}

/// A sparse log-scale histogram: (bucket, count), few entries in practice.
#[derive(Clone, Default)]
struct Sparse(Vec<(u8, u32)>);

impl Sparse {
    fn add(&mut self, ms: f64) {
        let b = log_bucket(ms);
        match self.0.iter_mut().find(|(k, _)| *k == b) {
            Some((_, n)) => *n += 1,
            None => self.0.push((b, 1)),
        }
    }
}

/// One slot of a window.
#[derive(Clone, Default)]
struct Slot {
    /// `now_ms / SLOT_MS` of the slot's minute; stale when older than the window.
    epoch: i64,
    ended: [u32; 4],
    retried: u32,
    run: Sparse,
    wait: Sparse,
}

/// What one callable or tenant did over the last [`WINDOW_MS`].
#[derive(Clone, Default)]
struct Window {
    slots: [Slot; WINDOW_SLOTS],
    /// The newest epoch written, to forget windows gone quiet.
    last: i64,
}

impl Window {
    fn slot(&mut self, now_ms: i64) -> &mut Slot {
        let epoch = now_ms.div_euclid(SLOT_MS);
        self.last = self.last.max(epoch);
        let s = &mut self.slots[epoch.rem_euclid(WINDOW_SLOTS as i64) as usize];
        if s.epoch != epoch {
            *s = Slot { epoch, ..Slot::default() };
        }
        s
    }

    fn live(&self, now_ms: i64) -> impl Iterator<Item = &Slot> {
        let epoch = now_ms.div_euclid(SLOT_MS);
        self.slots.iter().filter(move |s| s.epoch <= epoch && s.epoch > epoch - WINDOW_SLOTS as i64)
    }

    fn summary(&self, now_ms: i64) -> WindowStats {
        let mut out = WindowStats::default();
        let (mut run, mut wait) = (BTreeMap::<u8, u64>::new(), BTreeMap::<u8, u64>::new());
        for s in self.live(now_ms) {
            for (o, n) in out.ended.iter_mut().zip(s.ended) {
                *o += u64::from(n);
            }
            out.retried += u64::from(s.retried);
            for (b, n) in &s.run.0 {
                *run.entry(*b).or_default() += u64::from(*n);
            }
            for (b, n) in &s.wait.0 {
                *wait.entry(*b).or_default() += u64::from(*n);
            }
        }
        out.run = Percentiles::of(&run);
        out.wait = Percentiles::of(&wait);
        out
    }
}

/// p50 and p99 of a window, in ms (within 10 % of the exact values).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Percentiles {
    /// Attempts the window saw.
    pub count: u64,
    /// Median.
    pub p50: f64,
    /// 99th percentile.
    pub p99: f64,
}

impl Percentiles {
    fn of(h: &BTreeMap<u8, u64>) -> Option<Self> {
        let count: u64 = h.values().sum();
        if count == 0 {
            return None;
        }
        let at = |q: f64| {
            let rank = ((q * count as f64).ceil() as u64).max(1);
            let mut seen = 0;
            for (b, n) in h {
                seen += n;
                if seen >= rank {
                    return log_value(*b);
                }
            }
            0.0
        };
        Some(Self { count, p50: at(0.50), p99: at(0.99) })
    }
}

/// What a callable or tenant did over the window, for `stats()`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct WindowStats {
    /// Ended completed, failed, timeout, cancelled (in [`FINAL`] order).
    pub ended: [u64; 4],
    /// Attempts that failed with attempts left.
    pub retried: u64,
    /// Run time of the attempts that ended.
    pub run: Option<Percentiles>,
    /// Queue wait of the first attempts that started.
    pub wait: Option<Percentiles>,
}

type SharedWindow = Arc<Mutex<Window>>;

/// The per-tenant windows, and when quiet ones were last forgotten.
#[derive(Default)]
struct Tenants {
    windows: HashMap<Arc<str>, SharedWindow>,
    swept: i64,
}

/// Where one attempt counts: its callable's series (and window) and its
/// tenant's window, looked up once when it starts.
pub struct Meter {
    series: Arc<Series>,
    tenant: SharedWindow,
}

#[derive(Default)]
struct PerCallable {
    plain: Option<Arc<Series>>,
    tenants: HashMap<Arc<str>, Arc<Series>>,
    window: SharedWindow,
}

impl PerCallable {
    fn get(&self, tenant: Option<&str>) -> Option<&Arc<Series>> {
        match tenant {
            None => self.plain.as_ref(),
            Some(t) => self.tenants.get(t),
        }
    }

    fn all(&self) -> impl Iterator<Item = &Arc<Series>> {
        self.plain.iter().chain(self.tenants.values())
    }
}

/// The metrics of one engine.
pub struct Metrics {
    config: MetricsConfig,
    /// By callable: its series, or with tenant labels, its series by tenant.
    series: RwLock<HashMap<Arc<str>, PerCallable>>,
    tenants: Mutex<Tenants>,
    fires: [AtomicU64; 6],
    webhooks: Mutex<BTreeMap<u16, u64>>,
}

const TRIGGER_TYPES: [TriggerType; 6] =
    [TriggerType::Event, TriggerType::Schedule, TriggerType::Webhook, TriggerType::Threshold, TriggerType::Manual, TriggerType::Lifecycle];

/// A snapshot of what the store holds, for the gauges.
#[derive(Clone, Debug, Default)]
pub struct Gauges {
    /// Waiting and running work per tenant and callable.
    pub tallies: Vec<Tally>,
    /// Triggers per type and status.
    pub triggers: Vec<(TriggerType, TriggerStatus, u64)>,
    /// Attempts in flight on this engine.
    pub in_flight: usize,
    /// This engine's concurrency limit.
    pub concurrency: usize,
}

impl Metrics {
    /// Metrics kept as `config` says.
    pub fn new(config: MetricsConfig) -> Self {
        Self {
            config,
            series: RwLock::default(),
            tenants: Mutex::default(),
            fires: Default::default(),
            webhooks: Mutex::default(),
        }
    }

    /// Whether anything is counted.
    pub fn enabled(&self) -> bool {
        self.config.enabled
    }

    /// Where an attempt of `callable` for `tenant` counts (looked up once
    /// per attempt, kept with it); `None` with metrics off.
    pub fn meter(&self, callable: &str, tenant: &str, now_ms: i64) -> Option<Meter> {
        let series = self.series(callable, tenant)?;
        let tenant = self.tenant_window(tenant, now_ms);
        Some(Meter { series, tenant })
    }

    fn series(&self, callable: &str, tenant: &str) -> Option<Arc<Series>> {
        if !self.config.enabled {
            return None;
        }
        let tenant_label = self.config.tenant_labels.then_some(tenant);
        if let Some(s) = self.series.read().get(callable).and_then(|p| p.get(tenant_label)) {
            return Some(s.clone());
        }
        let mut g = self.series.write();
        let name: Arc<str> = match g.get_key_value(callable) {
            Some((k, _)) => k.clone(),
            None => Arc::from(callable),
        };
        let per = g.entry(name.clone()).or_default();
        let window = per.window.clone();
        Some(match tenant_label {
            None => per.plain.get_or_insert_with(|| Arc::new(Series::new(name, None, window))).clone(),
            Some(t) => per.tenants.entry(Arc::from(t)).or_insert_with(|| Arc::new(Series::new(name, Some(Arc::from(t)), window))).clone(),
        })
    }

    fn tenant_window(&self, tenant: &str, now_ms: i64) -> SharedWindow {
        let mut g = self.tenants.lock();
        // Tenants quiet for a whole window, with no attempt running, are
        // forgotten (a minute at most after): a stream of one-off tenants
        // does not grow the map.
        let epoch = now_ms.div_euclid(SLOT_MS);
        if epoch > g.swept {
            g.swept = epoch;
            g.windows.retain(|_, w| Arc::strong_count(w) > 1 || w.lock().last > epoch - WINDOW_SLOTS as i64);
        }
        match g.windows.get(tenant) {
            Some(w) => w.clone(),
            None => g.windows.entry(Arc::from(tenant)).or_default().clone(),
        }
    }

    /// An attempt started; `wait_ms`: how long its execution waited, for a
    /// first attempt.
    pub fn started(&self, m: &Meter, wait_ms: Option<f64>, now_ms: i64) {
        m.series.attempts.fetch_add(1, Relaxed);
        if let Some(w) = wait_ms {
            m.series.wait.observe(w);
            for window in [&m.series.window, &m.tenant] {
                window.lock().slot(now_ms).wait.add(w);
            }
        }
    }

    /// An attempt ended after `run_ms`, as `end`.
    pub fn ended(&self, m: &Meter, run_ms: f64, end: End, now_ms: i64) {
        m.series.run.observe(run_ms);
        self.count_end(m, end, Some(run_ms), now_ms);
    }

    /// An execution ended with no attempt ending here (cancelled while
    /// queued, failed by a rescue, a fire of an unknown callable).
    pub fn ended_idle(&self, callable: &str, tenant: &str, end: End, now_ms: i64) {
        if let Some(m) = self.meter(callable, tenant, now_ms) {
            self.count_end(&m, end, None, now_ms);
        }
    }

    fn count_end(&self, m: &Meter, end: End, run_ms: Option<f64>, now_ms: i64) {
        let s = &m.series;
        let i = final_index(end);
        match i {
            Some(i) => s.ended[i].fetch_add(1, Relaxed),
            None => s.retries.fetch_add(1, Relaxed),
        };
        for window in [&s.window, &m.tenant] {
            let mut w = window.lock();
            let slot = w.slot(now_ms);
            if let Some(i) = i {
                slot.ended[i] += 1;
            }
            if end == End::Retry {
                slot.retried += 1;
            }
            if let Some(ms) = run_ms {
                slot.run.add(ms);
            }
        }
    }

    /// A trigger fired.
    pub fn fired(&self, t: TriggerType) {
        if self.config.enabled {
            let i = TRIGGER_TYPES.iter().position(|x| *x == t).unwrap_or(0);
            self.fires[i].fetch_add(1, Relaxed);
        }
    }

    /// A webhook handler answered `status`.
    pub fn webhook(&self, status: u16) {
        if self.config.enabled {
            *self.webhooks.lock().entry(status).or_default() += 1;
        }
    }

    /// Per callable and per tenant, what the window saw.
    pub fn windows(&self, now_ms: i64) -> (BTreeMap<String, WindowStats>, BTreeMap<String, WindowStats>) {
        let sum = |(k, w): (&Arc<str>, &SharedWindow)| (k.to_string(), w.lock().summary(now_ms));
        let callables = self.series.read().iter().map(|(k, p)| sum((k, &p.window))).filter(|(_, s)| *s != WindowStats::default()).collect();
        let tenants = self.tenants.lock().windows.iter().map(sum).filter(|(_, s)| *s != WindowStats::default()).collect();
        (callables, tenants)
    }

    /// Every execution this engine ended, per final status (completed,
    /// failed, timeout, cancelled), since it started.
    pub fn ended_totals(&self) -> [u64; 4] {
        let mut out = [0; 4];
        for s in self.series.read().values().flat_map(PerCallable::all) {
            for (o, a) in out.iter_mut().zip(&s.ended) {
                *o += a.load(Relaxed);
            }
        }
        out
    }

    /// The Prometheus text exposition (format 0.0.4) of the counters and
    /// histograms, and of `gauges`.
    pub fn encode(&self, gauges: &Gauges) -> String {
        let mut out = String::with_capacity(4096);
        let labels = self.config.tenant_labels;
        let series: Vec<Arc<Series>> = {
            let mut v: Vec<Arc<Series>> = self.series.read().values().flat_map(PerCallable::all).cloned().collect();
            v.sort_by(|a, b| (&a.callable, &a.tenant).cmp(&(&b.callable, &b.tenant)));
            v
        };

        family(&mut out, "enact_executions_total", "counter", "Executions that reached a final status on this engine.");
        for s in &series {
            for (i, (status, _)) in FINAL.iter().enumerate() {
                let mut l = key(s);
                l.push(("status", status));
                sample(&mut out, "enact_executions_total", &l, s.ended[i].load(Relaxed) as f64);
            }
        }
        family(&mut out, "enact_attempts_total", "counter", "Attempts started on this engine.");
        for s in &series {
            sample(&mut out, "enact_attempts_total", &key(s), s.attempts.load(Relaxed) as f64);
        }
        family(&mut out, "enact_retries_total", "counter", "Attempts that failed or timed out with attempts left, queued again.");
        for s in &series {
            sample(&mut out, "enact_retries_total", &key(s), s.retries.load(Relaxed) as f64);
        }
        for (name, help, pick) in [
            ("enact_execution_duration_seconds", "Run time of attempts that ended on this engine.", (|s: &Series| &s.run) as fn(&Series) -> &Histogram),
            ("enact_queue_wait_seconds", "Time from queued to the first attempt's start, on this engine.", |s: &Series| &s.wait),
        ] {
            family(&mut out, name, "histogram", help);
            // Per callable, also with tenant labels: a histogram per tenant
            // would be 17 series each.
            let mut by: BTreeMap<&str, ([u64; BUCKETS.len() + 1], f64)> = BTreeMap::new();
            for s in &series {
                pick(s).add_to(by.entry(&*s.callable).or_insert(([0; BUCKETS.len() + 1], 0.0)));
            }
            for (callable, h) in &by {
                histogram(&mut out, name, &[("callable", callable)], h);
            }
        }

        family(&mut out, "enact_trigger_fires_total", "counter", "Trigger fires made by this engine, by trigger type.");
        for (t, n) in TRIGGER_TYPES.iter().zip(&self.fires) {
            sample(&mut out, "enact_trigger_fires_total", &[("type", t.as_str())], n.load(Relaxed) as f64);
        }
        family(&mut out, "enact_webhook_requests_total", "counter", "Webhook requests answered by this engine's handlers, by HTTP status.");
        for (code, n) in self.webhooks.lock().iter() {
            sample(&mut out, "enact_webhook_requests_total", &[("code", &code.to_string())], *n as f64);
        }

        // Gauges: what the store holds now.
        family(&mut out, "enact_executions", "gauge", "Executions waiting or running in the store (every engine's, on a shared store), by state.");
        let mut by: BTreeMap<(&str, Option<&str>), [u64; 3]> = BTreeMap::new();
        for t in &gauges.tallies {
            let e = by.entry((&t.callable, labels.then_some(&*t.tenant))).or_default();
            e[0] += t.queued;
            e[1] += t.delayed;
            e[2] += t.running;
        }
        for ((callable, tenant), n) in &by {
            for (state, v) in ["queued", "delayed", "running"].iter().zip(n) {
                let mut l = vec![("callable", *callable)];
                if let Some(t) = tenant {
                    l.push(("tenant", t));
                }
                l.push(("state", state));
                sample(&mut out, "enact_executions", &l, *v as f64);
            }
        }
        family(&mut out, "enact_triggers", "gauge", "Triggers in the store, by type and status.");
        for (t, s, n) in &gauges.triggers {
            sample(&mut out, "enact_triggers", &[("type", t.as_str()), ("status", s.as_str())], *n as f64);
        }
        family(&mut out, "enact_in_flight", "gauge", "Attempts running on this engine.");
        sample(&mut out, "enact_in_flight", &[], gauges.in_flight as f64);
        family(&mut out, "enact_concurrency", "gauge", "This engine's concurrency limit.");
        sample(&mut out, "enact_concurrency", &[], gauges.concurrency as f64);
        out
    }
}



fn family(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

/// The labels of a series: callable, and tenant with tenant labels.
fn key(s: &Series) -> Vec<(&'static str, &str)> {
    let mut l = vec![("callable", &*s.callable)];
    if let Some(t) = &s.tenant {
        l.push(("tenant", &**t));
    }
    l
}

/// Escapes a label value: backslash, double quote and line feed.
pub fn escape_label(v: &str, out: &mut String) {
    for c in v.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

fn sample(out: &mut String, name: &str, labels: &[(&str, &str)], v: f64) {
    out.push_str(name);
    if !labels.is_empty() {
        out.push('{');
        for (i, (k, val)) in labels.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            out.push_str(k);
            out.push_str("=\"");
            escape_label(val, out);
            out.push('"');
        }
        out.push('}');
    }
    out.push(' ');
    if v.is_finite() && v.fract() == 0.0 && v.abs() < 1e15 {
        let _ = write!(out, "{}", v as i64);
    } else {
        let _ = write!(out, "{v}");
    }
    out.push('\n');
}

fn histogram(out: &mut String, name: &str, labels: &[(&str, &str)], h: &([u64; BUCKETS.len() + 1], f64)) {
    let mut cumulative = 0;
    let bucket = format!("{name}_bucket");
    for (i, n) in h.0.iter().enumerate() {
        cumulative += n;
        let le = if i < BUCKETS.len() { format!("{}", BUCKETS[i]) } else { "+Inf".to_string() };
        let mut l = labels.to_vec();
        l.push(("le", &le));
        sample(out, &bucket, &l, cumulative as f64);
    }
    sample(out, &format!("{name}_sum"), labels, h.1);
    sample(out, &format!("{name}_count"), labels, cumulative as f64);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_buckets_are_within_ten_percent() {
        for ms in [0.01, 0.3, 1.0, 7.0, 42.0, 1234.5, 99_000.0] {
            let v = log_value(log_bucket(ms));
            assert!((v - ms).abs() / ms <= 0.10, "{ms} -> {v}");
        }
    }

    #[test]
    fn window_percentiles_and_expiry() {
        let m = Metrics::new(MetricsConfig::default());
        let t0 = 10 * SLOT_MS;
        let t1 = m.meter("work", "t1", t0).unwrap();
        for i in 1..=100 {
            m.ended(&t1, f64::from(i), End::Completed, t0);
        }
        drop(t1);
        m.ended(&m.meter("work", "t2", t0).unwrap(), 5000.0, End::Failed, t0 + 1000);
        let (callables, tenants) = m.windows(t0 + 2000);
        let w = &callables["work"];
        assert_eq!(w.ended, [100, 1, 0, 0]);
        let run = w.run.unwrap();
        assert_eq!(run.count, 101);
        assert!((run.p50 - 51.0).abs() / 51.0 < 0.1, "{run:?}");
        assert!((run.p99 - 100.0).abs() / 100.0 < 0.1, "{run:?}");
        assert_eq!(tenants["t2"].ended, [0, 1, 0, 0]);
        // Five minutes on, the window is empty, and quiet tenants go.
        let (callables, tenants) = m.windows(t0 + WINDOW_MS);
        assert!(callables.is_empty() && tenants.is_empty());
        let t3 = m.meter("work", "t3", t0 + WINDOW_MS + SLOT_MS).unwrap();
        m.ended(&t3, 1.0, End::Retry, t0 + WINDOW_MS + SLOT_MS);
        assert_eq!(m.tenants.lock().windows.len(), 1, "t1 and t2 forgotten");
        assert_eq!(m.ended_totals(), [100, 1, 0, 0]);
    }

    #[test]
    fn tenant_labels_only_when_asked() {
        let plain = Metrics::new(MetricsConfig::default());
        assert!(Arc::ptr_eq(&plain.series("c", "a").unwrap(), &plain.series("c", "b").unwrap()));
        let labelled = Metrics::new(MetricsConfig { tenant_labels: true, ..MetricsConfig::default() });
        assert!(!Arc::ptr_eq(&labelled.series("c", "a").unwrap(), &labelled.series("c", "b").unwrap()));
        let off = Metrics::new(MetricsConfig { enabled: false, ..MetricsConfig::default() });
        assert!(off.series("c", "a").is_none());
    }

    /// The whole exposition parses with an independent parser (the
    /// `prometheus-parse` crate), every sample where it was written. That
    /// parser does not unescape label values (nor allow commas in them):
    /// escaping is checked byte for byte in the next test.
    #[test]
    fn the_exposition_parses_back() {
        let m = Metrics::new(MetricsConfig { tenant_labels: true, ..MetricsConfig::default() });
        for (c, t) in [("summarize", "tenant_a"), ("summarize", "tenant_b"), ("summarize.v2", "org:acme/eu")] {
            let meter = m.meter(c, t, 0).unwrap();
            m.started(&meter, Some(12.0), 0);
            m.ended(&meter, 250.0, End::Failed, 0);
        }
        m.fired(TriggerType::Schedule);
        let gauges = Gauges {
            tallies: vec![Tally { tenant: "tenant_a".into(), callable: "summarize".into(), queued: 3, delayed: 1, running: 2 }],
            triggers: vec![(TriggerType::Event, TriggerStatus::Paused, 4)],
            in_flight: 2,
            concurrency: 16,
        };
        let text = m.encode(&gauges);
        let scrape = prometheus_parse::Scrape::parse(text.lines().map(|l| Ok(l.to_owned()))).expect("parses");
        let find = |name: &str, labels: &[(&str, &str)]| {
            scrape
                .samples
                .iter()
                .find(|s| s.metric == name && labels.iter().all(|(k, v)| s.labels.get(k) == Some(*v)))
                .unwrap_or_else(|| panic!("{name} {labels:?} missing in\n{text}"))
                .value
                .clone()
        };
        use prometheus_parse::Value as V;
        assert!(matches!(find("enact_executions_total", &[("callable", "summarize.v2"), ("tenant", "org:acme/eu"), ("status", "failed")]), V::Counter(n) if n == 1.0));
        assert!(matches!(find("enact_executions", &[("callable", "summarize"), ("tenant", "tenant_a"), ("state", "delayed")]), V::Gauge(n) if n == 1.0));
        assert!(matches!(find("enact_triggers", &[("type", "event"), ("status", "paused")]), V::Gauge(n) if n == 4.0));
        assert!(matches!(find("enact_trigger_fires_total", &[("type", "schedule")]), V::Counter(n) if n == 1.0));
        match find("enact_execution_duration_seconds", &[("callable", "summarize")]) {
            V::Histogram(h) => {
                let le_half = h.iter().find(|b| b.less_than == 0.25).expect("0.25 bucket");
                assert_eq!(le_half.count, 2.0, "tenant_a's and tenant_b's attempts");
                assert_eq!(h.iter().find(|b| b.less_than == 0.1).unwrap().count, 0.0);
            }
            other => panic!("not a histogram: {other:?}"),
        }
        assert_eq!(scrape.docs.get("enact_attempts_total").map(String::as_str), Some("Attempts started on this engine."));
    }

    #[test]
    fn encoding_escapes_labels_and_accumulates_buckets() {
        let m = Metrics::new(MetricsConfig { tenant_labels: true, ..MetricsConfig::default() });
        let meter = m.meter("say \"hi\"\\\n", "t", 0).unwrap();
        m.started(&meter, Some(3.0), 0);
        m.ended(&meter, 20.0, End::Completed, 0);
        m.ended(&meter, 700.0, End::Retry, 0);
        m.fired(TriggerType::Webhook);
        m.webhook(401);
        let text = m.encode(&Gauges { concurrency: 16, ..Gauges::default() });
        assert!(text.contains(r#"enact_executions_total{callable="say \"hi\"\\\n",tenant="t",status="completed"} 1"#), "{text}");
        // Histograms are per callable, also with tenant labels.
        assert!(text.contains(r#"enact_execution_duration_seconds_bucket{callable="say \"hi\"\\\n",le="0.025"} 1"#), "{text}");
        assert!(text.contains(r#"enact_execution_duration_seconds_bucket{callable="say \"hi\"\\\n",le="1"} 2"#));
        assert!(text.contains(r#"enact_execution_duration_seconds_count{callable="say \"hi\"\\\n"} 2"#));
        assert!(text.contains(r#"enact_retries_total{callable="say \"hi\"\\\n",tenant="t"} 1"#));
        assert!(text.contains(r#"enact_trigger_fires_total{type="webhook"} 1"#));
        assert!(text.contains(r#"enact_webhook_requests_total{code="401"} 1"#));
        assert!(text.contains("enact_concurrency 16\n"));
    }
}
