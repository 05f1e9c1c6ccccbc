//! The in-memory store driver ([`crate::store::Driver`]): the default, for one process.
//!
//! Executions are kept compact, because a queue of a million waiting
//! executions should cost tens of megabytes, not a gigabyte: tenant and
//! callable names are interned, configs are shared between executions that
//! have equal ones, and the fields most executions never set (context,
//! trigger, metadata) or only set once they run (times, output, error,
//! binding) live in optional boxes. Slots sit in a slab of fixed-size
//! chunks (no reallocation of the whole table as it grows; only the first
//! grows up to full size, so a store with few executions stays small) and
//! the queues refer to them by index. A full [`BackgroundExecution`] is built only
//! when one is asked for.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap, VecDeque};
use std::hash::BuildHasher;
use std::sync::Arc;

use chrono::DateTime;
use parking_lot::Mutex;
use serde_json::Value;

/// Hash maps keyed by ids: foldhash (fast, seeded per process, so ids a
/// caller chooses cannot be made to collide) instead of SipHash.
type HashMap<K, V> = std::collections::HashMap<K, V, foldhash::fast::RandomState>;

use crate::clock::millis;
use crate::error::EngineError;
use crate::model::{
    BackgroundExecution, BackgroundExecutionConfig, BackgroundExecutionStatus as Status, ExecutionError, JsonMap,
    TargetBindingResult, Timestamp, Trigger,
};
use crate::store::{
    apply_gate, pass_fire_gate, retryable_status, stalled_error, CancelOutcome, Change, ClaimParams, Driver, ExecutionFilter, Finish,
    Finished, Fire, FireParams, Inserted, NewExecution, Progress, Readiness, Rescued, RetryOutcome, Staged, StatusCounts, StoreError,
    StoreFuture, StoreResult, Tally, TriggerChanges, TriggerEdit, TriggerFilter, TriggerState,
};
use crate::webhook::{ReplayGuard, Sight};

/// Queue class: immediate work outranks idle-deferred work at any priority.
const CLASS_IDLE: u8 = 0;
const CLASS_NOW: u8 = 1;

/// Fields set at submission that most executions leave out.
#[derive(Default)]
struct Extra {
    context: Option<std::collections::BTreeMap<String, String>>,
    trigger_id: Option<String>,
    metadata: Option<JsonMap>,
    trigger_source: Option<Value>,
    chain_depth: u32,
    chain_root: Option<String>,
    trace_context: Option<crate::model::TraceContext>,
}

/// Fields an execution gets once it runs.
#[derive(Default)]
struct Run {
    started_at: Option<Timestamp>,
    completed_at: Option<Timestamp>,
    output: Option<Value>,
    error: Option<Box<ExecutionError>>,
    binding_result: Option<Box<TargetBindingResult>>,
    target_binding_applied: bool,
    /// Unix ms the running attempt is leased until.
    lease_until_ms: i64,
    /// Times a running attempt of it was rescued after its lease expired.
    stalls: u32,
    /// What its attempt reported with `ctx.progress`.
    progress: Option<Value>,
}

/// One execution, compact: 88 bytes in the slab, plus its id's bytes.
struct Slot {
    id: Box<str>,
    config: Arc<BackgroundExecutionConfig>,
    input: Option<Box<str>>,
    extra: Option<Box<Extra>>,
    run: Option<Box<Run>>,
    /// Unix nanoseconds.
    queued_at: i64,
    /// Tenant and callable, as [`Names`] numbers.
    tenant: u32,
    callable: u32,
    /// Ticket of the queue entry that is live for this execution; entries
    /// with another ticket are stale (lazy deletion on cancel).
    ticket: u64,
    attempt: u32,
    status: Status,
    /// Class it is queued in while waiting for `Readiness::At`.
    class_when_due: u8,
}

fn nanos(t: Timestamp) -> i64 {
    // Representable until the year 2262; clamp rather than panic after.
    t.timestamp_nanos_opt().unwrap_or(i64::MAX)
}

impl Slot {
    fn run(&mut self) -> &mut Run {
        self.run.get_or_insert_with(Box::default)
    }

    fn matches(&self, f: &ExecutionFilter, names: &Names) -> bool {
        f.tenant_id.as_deref().is_none_or(|t| t == names.get(self.tenant))
            && f.status.is_none_or(|s| s == self.status)
            && f.callable_name.as_deref().is_none_or(|c| c == names.get(self.callable))
            && f.trigger_id.as_deref().is_none_or(|t| self.extra.as_ref().and_then(|e| e.trigger_id.as_deref()) == Some(t))
    }

    /// The full record.
    fn record(&self, names: &Names) -> BackgroundExecution {
        let extra = self.extra.as_deref();
        let run = self.run.as_deref();
        BackgroundExecution {
            execution_id: self.id.to_string(),
            tenant_id: names.get(self.tenant).to_owned(),
            callable_name: names.get(self.callable).to_owned(),
            input: self.input.as_deref().map(str::to_owned),
            context: extra.and_then(|e| e.context.clone()),
            config: (*self.config).clone(),
            status: self.status,
            queued_at: DateTime::from_timestamp_nanos(self.queued_at),
            started_at: run.and_then(|r| r.started_at),
            completed_at: run.and_then(|r| r.completed_at),
            output: run.and_then(|r| r.output.clone()),
            error: run.and_then(|r| r.error.clone()),
            target_binding_applied: run.is_some_and(|r| r.target_binding_applied),
            trigger_id: extra.and_then(|e| e.trigger_id.clone()),
            metadata: extra.and_then(|e| e.metadata.clone()),
            trigger_source: extra.and_then(|e| e.trigger_source.clone()),
            attempt: self.attempt,
            binding_result: run.and_then(|r| r.binding_result.clone()),
            chain_depth: extra.map_or(0, |e| e.chain_depth),
            chain_root: extra.and_then(|e| e.chain_root.clone()),
            progress: run.and_then(|r| r.progress.clone()),
            trace_context: extra.and_then(|e| e.trace_context.clone()),
        }
    }
}

/// Tenant and callable names, each kept once and referred to by number;
/// a name no execution uses any more is forgotten and its number reused.
#[derive(Default)]
struct Names {
    numbers: HashMap<Arc<str>, u32>,
    /// Name and how many executions use it, by number.
    names: Vec<(Arc<str>, u32)>,
    free: Vec<u32>,
}

impl Names {
    /// The number of `name`, counting one more user.
    fn hold(&mut self, name: String) -> u32 {
        if let Some(&n) = self.numbers.get(name.as_str()) {
            self.names[n as usize].1 += 1;
            return n;
        }
        let name: Arc<str> = Arc::from(name);
        let n = match self.free.pop() {
            Some(n) => {
                self.names[n as usize] = (name.clone(), 1);
                n
            }
            None => {
                self.names.push((name.clone(), 1));
                u32::try_from(self.names.len() - 1).expect("fewer than 2^32 names")
            }
        };
        self.numbers.insert(name, n);
        n
    }

    /// One user fewer of name `n`.
    fn release(&mut self, n: u32) {
        let entry = &mut self.names[n as usize];
        entry.1 -= 1;
        if entry.1 == 0 {
            let name = std::mem::replace(&mut entry.0, Arc::from(""));
            self.numbers.remove(&name);
            self.free.push(n);
        }
    }

    fn get(&self, n: u32) -> &str {
        &self.names[n as usize].0
    }
}

/// Configs many executions repeat, shared.
#[derive(Default)]
struct Configs {
    default_config: Arc<BackgroundExecutionConfig>,
    last_config: Option<Arc<BackgroundExecutionConfig>>,
}

impl Configs {
    /// The default config, the previous one when equal (a loop of like
    /// submissions), else a new one.
    fn share(&mut self, c: BackgroundExecutionConfig) -> Arc<BackgroundExecutionConfig> {
        if c == *self.default_config {
            return self.default_config.clone();
        }
        match &self.last_config {
            Some(last) if **last == c => last.clone(),
            _ => {
                let a = Arc::new(c);
                self.last_config = Some(a.clone());
                a
            }
        }
    }
}

/// Slots per slab chunk.
const CHUNK: usize = 4096;

/// Slots the first chunk starts with. A chunk of [`CHUNK`] slots is some
/// 360 KB, so the first one grows (doubling) up to [`CHUNK`] instead of
/// being allocated whole: an engine that runs a few executions costs a few
/// kilobytes, not 360 KB held until its JS object is collected.
const FIRST_CHUNK: usize = 64;

/// Execution slots by index, in chunks of [`CHUNK`] slots (the first grows
/// up to it; the others are allocated whole and never move), with a free
/// list, and the id → index table.
#[derive(Default)]
struct Slab {
    chunks: Vec<Vec<Option<Slot>>>,
    len: usize,
    free: Vec<u32>,
    ids: hashbrown::HashTable<u32>,
    hasher: foldhash::fast::RandomState,
}

impl Slab {
    fn at(&self, i: u32) -> Option<&Slot> {
        let i = i as usize;
        self.chunks[i / CHUNK][i % CHUNK].as_ref()
    }

    fn at_mut(&mut self, i: u32) -> Option<&mut Slot> {
        let i = i as usize;
        self.chunks[i / CHUNK][i % CHUNK].as_mut()
    }

    /// The slot at a live index.
    fn slot(&self, i: u32) -> &Slot {
        self.at(i).expect("a live slot index")
    }

    fn slot_mut(&mut self, i: u32) -> &mut Slot {
        self.at_mut(i).expect("a live slot index")
    }

    fn find(&self, id: &str) -> Option<u32> {
        let hash = self.hasher.hash_one(id);
        self.ids.find(hash, |&i| &*self.slot(i).id == id).copied()
    }

    fn add(&mut self, slot: Slot) -> u32 {
        let hash = self.hasher.hash_one(&*slot.id);
        let i = match self.free.pop() {
            Some(i) => i,
            None => {
                if self.len.is_multiple_of(CHUNK) {
                    let size = if self.chunks.is_empty() { FIRST_CHUNK } else { CHUNK };
                    self.chunks.push(Vec::with_capacity(size));
                }
                self.chunks.last_mut().expect("a chunk with room").push(None);
                self.len += 1;
                u32::try_from(self.len - 1).expect("fewer than 2^32 executions in memory")
            }
        };
        let (chunks, hasher) = (&self.chunks, &self.hasher);
        let slot_id = |i: u32| -> &str {
            let i = i as usize;
            chunks[i / CHUNK][i % CHUNK].as_ref().map_or("", |s| &*s.id)
        };
        self.ids.insert_unique(hash, i, |&j| hasher.hash_one(slot_id(j)));
        let cell = &mut self.chunks[i as usize / CHUNK][i as usize % CHUNK];
        *cell = Some(slot);
        i
    }

    fn remove(&mut self, i: u32) {
        let hash = self.hasher.hash_one(&*self.slot(i).id);
        if let Ok(entry) = self.ids.find_entry(hash, |&j| j == i) {
            entry.remove();
        }
        self.chunks[i as usize / CHUNK][i as usize % CHUNK] = None;
        self.free.push(i);
    }

    fn iter(&self) -> impl Iterator<Item = &Slot> {
        self.chunks.iter().flat_map(|c| c.iter()).filter_map(Option::as_ref)
    }
}

/// One tenant's waiting work at one level: a FIFO of (ticket, slot index)
/// per callable, so that a callable at its concurrency limit does not hold
/// up the tenant's other callables. Tickets grow with every enqueue, so the
/// lowest head ticket is the oldest work: among the callables that admit
/// it, that goes first.
type TenantQueues = Vec<(u32, VecDeque<(u64, u32)>)>;

/// Tenants waiting at one (class, priority), served round-robin.
#[derive(Default)]
struct Level {
    turn: VecDeque<u32>,
    queues: HashMap<u32, TenantQueues>,
}

/// Callables of one tenant passed over (at their limit) in this turn.
struct Skipped {
    small: u64,
    large: Vec<bool>,
}

impl Skipped {
    fn new(n: usize) -> Self {
        Self { small: 0, large: if n > 64 { vec![false; n] } else { Vec::new() } }
    }

    fn has(&self, j: usize) -> bool {
        if self.large.is_empty() {
            self.small >> j & 1 == 1
        } else {
            self.large[j]
        }
    }

    fn add(&mut self, j: usize) {
        if self.large.is_empty() {
            self.small |= 1 << j;
        } else {
            self.large[j] = true;
        }
    }
}

#[derive(Default)]
struct Inner {
    slab: Slab,
    levels: BTreeMap<(u8, u8), Level>,
    /// (due ms, ticket, slot index), earliest first; ticket order keeps
    /// executions due at the same instant first in, first out.
    delayed: BinaryHeap<Reverse<(i64, u64, u32)>>,
    next_ticket: u64,
    counts: StatusCounts,
    names: Names,
    configs: Configs,
    /// Settled executions, oldest first, for [`MemoryStore::keeping`].
    finished: VecDeque<u32>,
    keep_finished: usize,
    /// Attempts running per tenant and per callable, by [`Names`] number.
    running_tenant: Vec<u32>,
    running_callable: Vec<u32>,
}

impl Inner {
    /// An execution reached its final record (bound, if it binds): keep at
    /// most `keep_finished` of those, dropping the oldest. Counts keep
    /// them, so `counts()` still adds up to every execution ever inserted.
    fn settled(&mut self, i: u32) {
        self.finished.push_back(i);
        self.evict();
    }

    /// Drops the oldest finished executions beyond `keep_finished`.
    fn evict(&mut self) {
        while self.finished.len() > self.keep_finished {
            let old = self.finished.pop_front().expect("longer than the limit");
            if let Some(s) = self.slab.at(old).filter(|s| s.status.is_final()) {
                let (tenant, callable) = (s.tenant, s.callable);
                self.slab.remove(old);
                self.names.release(tenant);
                self.names.release(callable);
            }
        }
    }

    fn enqueue(&mut self, i: u32, class: u8) {
        self.next_ticket += 1;
        let ticket = self.next_ticket;
        let slot = self.slab.slot_mut(i);
        slot.ticket = ticket;
        let level = self.levels.entry((class, slot.config.priority)).or_default();
        let tq = level.queues.entry(slot.tenant).or_default();
        if tq.is_empty() {
            level.turn.push_back(slot.tenant);
        }
        match tq.iter_mut().find(|(c, _)| *c == slot.callable) {
            Some((_, q)) => q.push_back((ticket, i)),
            None => tq.push((slot.callable, VecDeque::from([(ticket, i)]))),
        }
    }

    fn delay(&mut self, i: u32, due_ms: i64, class: u8) {
        self.next_ticket += 1;
        let ticket = self.next_ticket;
        let slot = self.slab.slot_mut(i);
        slot.ticket = ticket;
        slot.class_when_due = class;
        self.delayed.push(Reverse((due_ms, ticket, i)));
    }

    fn set_status(&mut self, i: u32, status: Status) {
        let slot = self.slab.slot_mut(i);
        let old = slot.status;
        slot.status = status;
        *self.counts.slot(old) -= 1;
        *self.counts.slot(status) += 1;
        if old == Status::Running && status != Status::Running {
            let (tenant, callable) = (slot.tenant as usize, slot.callable as usize);
            self.running_tenant[tenant] -= 1;
            self.running_callable[callable] -= 1;
        }
    }

}

/// Attempts running of name number `n`.
fn running_of(counts: &[u32], n: u32) -> usize {
    counts.get(n as usize).copied().unwrap_or(0) as usize
}

/// One more attempt running of name number `n`.
fn count_running(counts: &mut Vec<u32>, n: u32) {
    let n = n as usize;
    if counts.len() <= n {
        counts.resize(n + 1, 0);
    }
    counts[n] += 1;
}

impl Inner {

    /// The compact slot of a full record.
    fn compact(&mut self, exec: BackgroundExecution) -> Slot {
        let BackgroundExecution {
            execution_id,
            tenant_id,
            callable_name,
            input,
            context,
            config,
            status,
            queued_at,
            started_at,
            completed_at,
            output,
            error,
            target_binding_applied,
            trigger_id,
            metadata,
            trigger_source,
            attempt,
            binding_result,
            chain_depth,
            chain_root,
            progress,
            trace_context,
        } = exec;
        let extra = (context.is_some()
            || trigger_id.is_some()
            || metadata.is_some()
            || trigger_source.is_some()
            || chain_depth != 0
            || chain_root.is_some()
            || trace_context.is_some())
        .then(|| Box::new(Extra { context, trigger_id, metadata, trigger_source, chain_depth, chain_root, trace_context }));
        let run = (started_at.is_some()
            || completed_at.is_some()
            || output.is_some()
            || error.is_some()
            || binding_result.is_some()
            || target_binding_applied
            || progress.is_some())
        .then(|| Box::new(Run { started_at, completed_at, output, error, binding_result, target_binding_applied, progress, ..Run::default() }));
        Slot {
            id: execution_id.into_boxed_str(),
            tenant: self.names.hold(tenant_id),
            callable: self.names.hold(callable_name),
            config: self.configs.share(config),
            input: input.map(String::into_boxed_str),
            extra,
            run,
            queued_at: nanos(queued_at),
            ticket: 0,
            attempt,
            status,
            class_when_due: CLASS_NOW,
        }
    }
}

/// A stored trigger and the state kept with it.
struct TriggerRow {
    /// Registration order.
    seq: u64,
    /// Shared with the fires that read it: a fire borrows the trigger
    /// instead of copying it, and the next change copies only if a fire
    /// still holds the old version.
    trigger: Arc<Trigger>,
    /// The last schedule tick fired (Unix ms).
    cursor_ms: Option<i64>,
    /// Threshold: whether the last reported value satisfied the comparison.
    armed_true: bool,
    /// Verified webhook message ids, kept apart per trigger so that one
    /// trigger's traffic cannot touch another's.
    replay: Option<Box<ReplayGuard>>,
}

/// Webhook ids a trigger remembers at most by default
/// ([`MemoryConfig::replay_capacity`]). Ids are forgotten only when they
/// expire: a trigger whose budget is full of unexpired ids refuses new ones
/// ([`Fire::ReplayFull`]); other triggers are not affected.
pub const REPLAY_CAPACITY: usize = 100_000;

/// Trigger changes remembered for [`Driver::trigger_changes`].
const CHANGE_LOG: usize = 10_000;

/// Triggers in registration order.
#[derive(Default)]
struct Triggers {
    by_id: HashMap<String, TriggerRow>,
    next_seq: u64,
    /// (change sequence, trigger id), oldest first, at most [`CHANGE_LOG`].
    changes: VecDeque<(u64, Arc<str>)>,
    change_seq: u64,
}

impl Triggers {
    fn changed(&mut self, id: &str) {
        self.change_seq += 1;
        self.changes.push_back((self.change_seq, Arc::from(id)));
        if self.changes.len() > CHANGE_LOG {
            self.changes.pop_front();
        }
    }
}

/// Executions, the queue and triggers in process memory. Nothing survives
/// the process. Finished executions are kept up to a limit (default
/// [`DEFAULT_KEEP_FINISHED`]), oldest dropped first, so a long-running
/// process does not grow without bound.
///
/// Every operation runs when it is called, under one lock, and its future
/// is ready at once: the engine polls it in place, with no task and no
/// thread hop.
#[derive(Clone)]
pub struct MemoryStore {
    inner: Arc<Mutex<Inner>>,
    triggers: Arc<Mutex<Triggers>>,
    replay_capacity: usize,
}

/// How many finished executions a [`MemoryStore`] keeps by default.
pub const DEFAULT_KEEP_FINISHED: usize = 100_000;

/// What a [`MemoryStore`] keeps at most.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MemoryConfig {
    /// Finished executions kept for `get` and `list` (default
    /// [`DEFAULT_KEEP_FINISHED`]).
    pub keep_finished: usize,
    /// Unexpired webhook message ids each trigger remembers at most
    /// (default [`REPLAY_CAPACITY`]; 0 counts as 1).
    pub replay_capacity: usize,
}

impl Default for MemoryConfig {
    fn default() -> Self {
        Self { keep_finished: DEFAULT_KEEP_FINISHED, replay_capacity: REPLAY_CAPACITY }
    }
}

impl Default for MemoryStore {
    fn default() -> Self {
        Self::with_config(MemoryConfig::default())
    }
}

fn ready<'a, T: Send + 'a>(r: StoreResult<T>) -> StoreFuture<'a, T> {
    Box::pin(std::future::ready(r))
}

/// What a memory operation expects of an execution's state.
#[derive(Clone, Copy)]
enum Expect {
    Running(u32),
    Active,
    Completed,
}

/// A change of one execution.
enum Op {
    Change(Change),
    Cancel(Timestamp),
    Bound(TargetBindingResult),
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// An empty store keeping at most `keep_finished` finished executions
    /// (completed, failed, cancelled, timed out) for `get` and `list`.
    pub fn keeping(keep_finished: usize) -> Self {
        Self::with_config(MemoryConfig { keep_finished, ..MemoryConfig::default() })
    }

    /// An empty store with these limits.
    pub fn with_config(config: MemoryConfig) -> Self {
        let inner = Inner { keep_finished: config.keep_finished, ..Inner::default() };
        Self { inner: Arc::new(Mutex::new(inner)), triggers: Arc::default(), replay_capacity: config.replay_capacity.max(1) }
    }

    fn insert_one(g: &mut Inner, exec: BackgroundExecution, ready: Readiness) -> Inserted {
        if g.slab.find(&exec.execution_id).is_some() {
            return Inserted::Duplicate;
        }
        *g.counts.slot(exec.status) += 1;
        let slot = g.compact(exec);
        let i = g.slab.add(slot);
        match ready {
            Readiness::Now => g.enqueue(i, CLASS_NOW),
            Readiness::Idle => g.enqueue(i, CLASS_IDLE),
            Readiness::At(ms) => g.delay(i, ms, CLASS_NOW),
            Readiness::Final => g.settled(i),
        }
        Inserted::Ok
    }

    fn claim_now(&self, p: &ClaimParams) -> Vec<BackgroundExecution> {
        let mut g = self.inner.lock();
        let g = &mut *g;
        let lease_ms = millis(p.lease_until);
        let mut out = Vec::new();
        let keys: Vec<(u8, u8)> = g.levels.keys().rev().copied().collect();
        for key in keys {
            if out.len() >= p.max {
                break;
            }
            let level = g.levels.get_mut(&key).expect("level listed above");
            // Tenants refused in a row; a full turn of refusals ends the level.
            let mut refused = 0;
            while out.len() < p.max && refused < level.turn.len() {
                let tenant = level.turn.pop_front().expect("turn is non-empty");
                let tq = level.queues.get_mut(&tenant).expect("every tenant in turn has queues");
                for (_, q) in tq.iter_mut() {
                    while let Some(&(ticket, i)) = q.front() {
                        if g.slab.at(i).is_some_and(|s| s.ticket == ticket && s.status == Status::Queued) {
                            break;
                        }
                        q.pop_front();
                    }
                }
                tq.retain(|(_, q)| !q.is_empty());
                if tq.is_empty() {
                    level.queues.remove(&tenant);
                    continue;
                }
                // The oldest head among the callables that may start: this
                // engine runs them and they are under their limits.
                let mut chosen = None;
                if p.limits.tenant.is_none_or(|limit| running_of(&g.running_tenant, tenant) < limit) {
                    let mut skipped = Skipped::new(tq.len());
                    while let Some(j) = (0..tq.len()).filter(|&j| !skipped.has(j)).min_by_key(|&j| tq[j].1.front().map(|e| e.0)) {
                        let callable = tq[j].0;
                        match p.limits.callables.get(g.names.get(callable)) {
                            Some(limit) if limit.is_none_or(|l| running_of(&g.running_callable, callable) < l) => {
                                chosen = Some(j);
                                break;
                            }
                            _ => skipped.add(j),
                        }
                    }
                }
                let Some(j) = chosen else {
                    level.turn.push_back(tenant);
                    refused += 1;
                    continue;
                };
                refused = 0;
                let (_, i) = tq[j].1.pop_front().expect("heads are live");
                if tq[j].1.is_empty() {
                    tq.swap_remove(j);
                }
                if tq.is_empty() {
                    level.queues.remove(&tenant);
                } else {
                    level.turn.push_back(tenant);
                }
                let slot = g.slab.slot_mut(i);
                slot.ticket = 0;
                slot.status = Status::Running;
                slot.attempt += 1;
                let run = slot.run();
                run.started_at = Some(p.now);
                run.lease_until_ms = lease_ms;
                let callable = slot.callable;
                count_running(&mut g.running_tenant, tenant);
                count_running(&mut g.running_callable, callable);
                g.counts.queued -= 1;
                g.counts.running += 1;
                out.push(g.slab.slot(i).record(&g.names));
            }
            if level.turn.is_empty() {
                g.levels.remove(&key);
            }
        }
        out
    }

    /// Applies `op` if the execution is in the `expect`ed state: `None`
    /// when it is not (or unknown), else the new record if `record` is
    /// asked for.
    fn change(g: &mut Inner, id: &str, expect: Expect, op: Op, record: bool) -> Option<Option<BackgroundExecution>> {
        let i = g.slab.find(id)?;
        let slot = g.slab.slot_mut(i);
        let ok = match expect {
            Expect::Running(attempt) => slot.status == Status::Running && slot.attempt == attempt,
            Expect::Active => matches!(slot.status, Status::Queued | Status::Running),
            Expect::Completed => slot.status == Status::Completed && slot.run.as_ref().is_none_or(|r| r.binding_result.is_none()),
        };
        if !ok {
            return None;
        }
        let mut settle = false;
        match op {
            Op::Change(Change::Finish { status, output, error, at }) => {
                // A completed execution that binds is final once bound.
                settle = !(status == Status::Completed && slot.config.target_binding.is_some());
                let run = slot.run();
                run.output = output;
                run.error = error.map(Box::new);
                run.completed_at = Some(at);
                g.set_status(i, status);
            }
            Op::Change(Change::Retry { error, due_ms }) => {
                slot.run().error = Some(Box::new(error));
                g.set_status(i, Status::Queued);
                g.delay(i, due_ms, CLASS_NOW);
            }
            Op::Change(Change::Release) => {
                slot.attempt = slot.attempt.saturating_sub(1);
                g.set_status(i, Status::Queued);
                g.enqueue(i, CLASS_NOW);
            }
            Op::Cancel(at) => {
                slot.ticket = 0;
                slot.run().completed_at = Some(at);
                g.set_status(i, Status::Cancelled);
                settle = true;
            }
            Op::Bound(result) => {
                let run = slot.run();
                run.target_binding_applied = result.success;
                run.binding_result = Some(Box::new(result));
                settle = true;
            }
        }
        let out = record.then(|| g.slab.slot(i).record(&g.names));
        if settle {
            g.settled(i);
        }
        Some(out)
    }

    fn fire_now(&self, p: &FireParams<'_>) -> StoreResult<Fire> {
        let mut t = self.triggers.lock();
        let Some(row) = t.by_id.get_mut(p.trigger_id) else { return Ok(Fire::Gone) };
        if !pass_fire_gate(p.gate, &mut row.cursor_ms, &mut row.armed_true).0 {
            return Ok(Fire::Skipped);
        }
        if let Some(m) = &p.webhook {
            // Expired ids are dropped here; unexpired ones are never
            // dropped to make room.
            match row.replay.as_mut().map_or(Sight::First, |g| g.check("", m.id, m.now_secs)) {
                Sight::First => {}
                Sight::Replay => return Ok(Fire::Replay),
                Sight::Full { until_secs } => return Ok(Fire::ReplayFull { until_secs }),
            }
        }
        let trigger = Arc::make_mut(&mut row.trigger);
        let before = (trigger.status, trigger.fire_count, trigger.last_fired_at, trigger.updated_at);
        let (gate, _) = apply_gate(trigger, p.now);
        if let Err(why) = gate {
            return Ok(Fire::Blocked { trigger: row.trigger.clone(), why });
        }
        let new = (p.build)(&row.trigger);
        let final_record = new.ready == Readiness::Final;
        let record = (p.want_record || final_record).then(|| new.record.clone());
        let execution_id = new.record.execution_id.clone();
        let mut g = self.inner.lock();
        if Self::insert_one(&mut g, *new.record, new.ready) == Inserted::Duplicate {
            // Undo the count: the fire and its execution go together.
            let trigger = Arc::make_mut(&mut row.trigger);
            (trigger.status, trigger.fire_count, trigger.last_fired_at, trigger.updated_at) = before;
            return Err(StoreError::Conflict(format!("execution {execution_id:?} already exists")));
        }
        if let Some(m) = &p.webhook {
            let window = (m.expires_secs - m.now_secs).max(1);
            let capacity = self.replay_capacity;
            let sight = row.replay.get_or_insert_with(|| Box::new(ReplayGuard::new(window, capacity))).first_sight("", m.id, m.now_secs);
            debug_assert_eq!(sight, Sight::First, "checked above, under the same lock");
        }
        Ok(Fire::Fired { trigger: row.trigger.clone(), execution_id, record })
    }
}

impl Driver for MemoryStore {
    fn name(&self) -> &'static str {
        "memory"
    }

    fn insert_many(&self, rows: Vec<NewExecution>) -> StoreFuture<'_, Vec<Inserted>> {
        let mut g = self.inner.lock();
        let out = rows.into_iter().map(|r| Self::insert_one(&mut g, *r.record, r.ready)).collect();
        ready(Ok(out))
    }

    fn get<'a>(&'a self, id: &'a str) -> StoreFuture<'a, Option<BackgroundExecution>> {
        let g = self.inner.lock();
        ready(Ok(g.slab.find(id).map(|i| g.slab.slot(i).record(&g.names))))
    }

    fn list<'a>(&'a self, filter: &'a ExecutionFilter) -> StoreFuture<'a, Vec<BackgroundExecution>> {
        let g = self.inner.lock();
        let key = |s: &Slot| (s.queued_at, s.id.clone());
        let after = match filter.after.as_deref() {
            Some(id) => match g.slab.find(id) {
                Some(i) => Some(key(g.slab.slot(i))),
                None => return ready(Ok(Vec::new())),
            },
            None => None,
        };
        let newest = filter.newest_first;
        let mut out: Vec<&Slot> = g
            .slab
            .iter()
            .filter(|s| s.matches(filter, &g.names))
            .filter(|s| after.as_ref().is_none_or(|a| if newest { key(s) < *a } else { key(s) > *a }))
            .collect();
        out.sort_by(|a, b| (a.queued_at, &a.id).cmp(&(b.queued_at, &b.id)));
        if newest {
            out.reverse();
        }
        let limit = filter.limit.unwrap_or(usize::MAX);
        ready(Ok(out.into_iter().take(limit).map(|s| s.record(&g.names)).collect()))
    }

    fn claim(&self, params: ClaimParams) -> StoreFuture<'_, Vec<BackgroundExecution>> {
        ready(Ok(self.claim_now(&params)))
    }

    fn finish_many(&self, rows: Vec<Finish>) -> StoreFuture<'_, Vec<Finished>> {
        let mut g = self.inner.lock();
        let out = rows
            .into_iter()
            .map(|r| match Self::change(&mut g, &r.id, Expect::Running(r.attempt), Op::Change(r.change), r.want_record) {
                None => Finished::Stale,
                Some(rec) => Finished::Done(rec.map(Box::new)),
            })
            .collect();
        ready(Ok(out))
    }

    fn cancel<'a>(&'a self, id: &'a str, at: Timestamp) -> StoreFuture<'a, CancelOutcome> {
        let mut g = self.inner.lock();
        let out = match Self::change(&mut g, id, Expect::Active, Op::Cancel(at), true) {
            Some(rec) => CancelOutcome::Cancelled(Box::new(rec.expect("asked for"))),
            None if g.slab.find(id).is_some() => CancelOutcome::AlreadyFinal,
            None => CancelOutcome::NotFound,
        };
        ready(Ok(out))
    }

    fn bind<'a>(&'a self, id: &'a str, result: TargetBindingResult) -> StoreFuture<'a, Option<BackgroundExecution>> {
        let mut g = self.inner.lock();
        ready(Ok(Self::change(&mut g, id, Expect::Completed, Op::Bound(result), true).flatten()))
    }

    fn stage_due(&self, now_ms: i64) -> StoreFuture<'_, Staged> {
        let mut g = self.inner.lock();
        let mut promoted = 0;
        while let Some(Reverse((due, _, _))) = g.delayed.peek() {
            if *due > now_ms {
                let next_due_ms = Some(*due);
                return ready(Ok(Staged { promoted, next_due_ms }));
            }
            let Reverse((_, ticket, i)) = g.delayed.pop().expect("peeked");
            let class = match g.slab.at(i) {
                Some(s) if s.ticket == ticket && s.status == Status::Queued => s.class_when_due,
                _ => continue,
            };
            g.enqueue(i, class);
            promoted += 1;
        }
        ready(Ok(Staged { promoted, next_due_ms: None }))
    }

    fn heartbeat<'a>(&'a self, _worker: &'a str, ids: &'a [String], lease_until: Timestamp) -> StoreFuture<'a, usize> {
        let mut g = self.inner.lock();
        let until = millis(lease_until);
        let mut n = 0;
        for id in ids {
            let Some(i) = g.slab.find(id) else { continue };
            let slot = g.slab.slot_mut(i);
            if slot.status == Status::Running {
                slot.run().lease_until_ms = until;
                n += 1;
            }
        }
        ready(Ok(n))
    }

    /// Scans every execution: in one process nothing outlives its engine,
    /// so only tests and a durable store's rescuer call this.
    fn rescue_expired(&self, now: Timestamp, max_stalls: u32) -> StoreFuture<'_, Vec<Rescued>> {
        let mut g = self.inner.lock();
        let g = &mut *g;
        let now_ms = millis(now);
        let expired: Vec<u32> = (0..g.slab.len as u32)
            .filter(|&i| g.slab.at(i).is_some_and(|s| s.status == Status::Running && s.run.as_ref().is_some_and(|r| r.lease_until_ms < now_ms)))
            .collect();
        let mut out = Vec::with_capacity(expired.len());
        for i in expired {
            let slot = g.slab.slot_mut(i);
            let attempt = slot.attempt;
            let run = slot.run();
            run.stalls += 1;
            let stalls = run.stalls;
            if stalls > max_stalls {
                let error = stalled_error(attempt, stalls, max_stalls, now_ms);
                let run = slot.run();
                run.error = Some(Box::new(error));
                run.completed_at = Some(now);
                g.set_status(i, Status::Failed);
                out.push(Rescued { record: Box::new(g.slab.slot(i).record(&g.names)) });
                g.settled(i);
            } else {
                // The attempt number stays used: the engine that lost it may
                // still report it, and must then find it no longer running.
                g.set_status(i, Status::Queued);
                g.enqueue(i, CLASS_NOW);
                out.push(Rescued { record: Box::new(g.slab.slot(i).record(&g.names)) });
            }
        }
        ready(Ok(out))
    }

    fn prune(&self, keep: usize) -> StoreFuture<'_, usize> {
        let mut g = self.inner.lock();
        let before = g.finished.len();
        let configured = std::mem::replace(&mut g.keep_finished, keep);
        g.evict();
        g.keep_finished = configured;
        ready(Ok(before - g.finished.len()))
    }

    fn counts(&self) -> StoreFuture<'_, StatusCounts> {
        ready(Ok(self.inner.lock().counts))
    }

    fn breakdown(&self) -> StoreFuture<'_, Vec<Tally>> {
        let g = self.inner.lock();
        // (queued, delayed, running) per (tenant, callable) number.
        let mut by: HashMap<(u32, u32), [u64; 3]> = HashMap::default();
        for s in g.slab.iter() {
            match s.status {
                Status::Queued => by.entry((s.tenant, s.callable)).or_default()[0] += 1,
                Status::Running => by.entry((s.tenant, s.callable)).or_default()[2] += 1,
                _ => {}
            }
        }
        // Delayed entries whose ticket is live: waiting, but not ready.
        for Reverse((_, ticket, i)) in g.delayed.iter() {
            if let Some(s) = g.slab.at(*i).filter(|s| s.ticket == *ticket && s.status == Status::Queued) {
                let t = by.entry((s.tenant, s.callable)).or_default();
                t[0] -= 1;
                t[1] += 1;
            }
        }
        let out = by.into_iter().map(|((tenant, callable), [queued, delayed, running])| Tally {
            tenant: g.names.get(tenant).to_owned(),
            callable: g.names.get(callable).to_owned(),
            queued,
            delayed,
            running,
        });
        ready(Ok(out.collect()))
    }

    fn progress_many(&self, rows: Vec<Progress>) -> StoreFuture<'_, Vec<bool>> {
        let mut g = self.inner.lock();
        let out = rows
            .into_iter()
            .map(|p| match g.slab.find(&p.id) {
                Some(i) => {
                    let slot = g.slab.slot_mut(i);
                    let live = slot.status == Status::Running && slot.attempt == p.attempt;
                    if live {
                        slot.run().progress = Some(p.value);
                    }
                    live
                }
                None => false,
            })
            .collect();
        ready(Ok(out))
    }

    fn retry<'a>(&'a self, id: &'a str, at: Timestamp) -> StoreFuture<'a, RetryOutcome> {
        let mut g = self.inner.lock();
        let Some(i) = g.slab.find(id) else { return ready(Ok(RetryOutcome::NotFound)) };
        let status = g.slab.slot(i).status;
        if !retryable_status(status) {
            return ready(Ok(RetryOutcome::NotRetryable(status)));
        }
        // Out of the finished list: it is not final any more.
        g.finished.retain(|&x| x != i);
        let slot = g.slab.slot_mut(i);
        // The attempt number goes on (a late result of an earlier attempt
        // can never pass for the next one); stalls start over.
        slot.queued_at = nanos(at);
        slot.run = None;
        let class = if slot.config.mode == crate::model::ExecutionMode::Deferred { CLASS_IDLE } else { CLASS_NOW };
        g.set_status(i, Status::Queued);
        g.enqueue(i, class);
        ready(Ok(RetryOutcome::Requeued(Box::new(g.slab.slot(i).record(&g.names)))))
    }

    fn insert_trigger(&self, t: Trigger) -> StoreFuture<'_, ()> {
        let mut g = self.triggers.lock();
        if g.by_id.contains_key(&t.trigger_id) {
            return ready(Err(StoreError::Conflict(format!("trigger {:?} already exists", t.trigger_id))));
        }
        g.next_seq += 1;
        let seq = g.next_seq;
        g.changed(&t.trigger_id);
        let row = TriggerRow { seq, trigger: Arc::new(t), cursor_ms: None, armed_true: false, replay: None };
        g.by_id.insert(row.trigger.trigger_id.clone(), row);
        ready(Ok(()))
    }

    fn get_trigger<'a>(&'a self, id: &'a str) -> StoreFuture<'a, Option<Trigger>> {
        ready(Ok(self.triggers.lock().by_id.get(id).map(|r| (*r.trigger).clone())))
    }

    fn list_triggers<'a>(&'a self, filter: &'a TriggerFilter) -> StoreFuture<'a, Vec<Trigger>> {
        let g = self.triggers.lock();
        let mut out: Vec<&TriggerRow> = g.by_id.values().filter(|r| filter.matches(&r.trigger)).collect();
        out.sort_by_key(|r| r.seq);
        ready(Ok(out.into_iter().map(|r| (*r.trigger).clone()).collect()))
    }

    fn trigger_states<'a>(&'a self, filter: &'a TriggerFilter) -> StoreFuture<'a, Vec<TriggerState>> {
        let g = self.triggers.lock();
        let mut out: Vec<&TriggerRow> = g.by_id.values().filter(|r| filter.matches(&r.trigger)).collect();
        out.sort_by_key(|r| r.seq);
        let state = |r: &TriggerRow| TriggerState { trigger: (*r.trigger).clone(), cursor_ms: r.cursor_ms, armed: r.armed_true };
        ready(Ok(out.into_iter().map(state).collect()))
    }

    fn update_trigger<'a>(&'a self, id: &'a str, edit: TriggerEdit<'a>) -> StoreFuture<'a, Option<Result<Trigger, EngineError>>> {
        let mut g = self.triggers.lock();
        let Some(row) = g.by_id.get_mut(id) else { return ready(Ok(None)) };
        let mut next = (*row.trigger).clone();
        let out = match edit(&mut next) {
            Ok(()) => {
                // An edit that keeps the threshold keeps its arming: a value
                // already past it is not a new crossing. Another threshold
                // starts unarmed.
                let (a, b) = (&row.trigger.condition, &next.condition);
                if (&a.metric_name, a.threshold_operator, a.threshold_value) != (&b.metric_name, b.threshold_operator, b.threshold_value) {
                    row.armed_true = false;
                }
                row.trigger = Arc::new(next.clone());
                g.changed(id);
                Ok(next)
            }
            Err(e) => Err(e),
        };
        ready(Ok(Some(out)))
    }

    fn remove_trigger<'a>(&'a self, id: &'a str) -> StoreFuture<'a, bool> {
        let mut g = self.triggers.lock();
        let removed = g.by_id.remove(id).is_some();
        if removed {
            g.changed(id);
        }
        ready(Ok(removed))
    }

    fn fire<'a>(&'a self, params: FireParams<'a>) -> StoreFuture<'a, Fire> {
        ready(self.fire_now(&params))
    }

    fn trigger_changes(&self, since: u64) -> StoreFuture<'_, TriggerChanges> {
        let g = self.triggers.lock();
        let oldest = g.changes.front().map_or(g.change_seq + 1, |(seq, _)| *seq);
        let complete = since + 1 >= oldest || since >= g.change_seq;
        let mut ids: Vec<String> = Vec::new();
        let mut seen = std::collections::HashSet::new();
        for (seq, id) in &g.changes {
            if *seq > since && seen.insert(id.clone()) {
                ids.push(id.to_string());
            }
        }
        ready(Ok(TriggerChanges { seq: g.change_seq, ids, complete }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The queue-memory budget (about 250 bytes per waiting execution, all
    /// in) leaves a slot 88 bytes, id pointer included.
    #[test]
    fn a_slot_fits_in_88_bytes() {
        assert!(std::mem::size_of::<Option<Slot>>() <= 88, "Slot is {} bytes", std::mem::size_of::<Slot>());
    }

    #[test]
    fn names_are_shared_counted_and_forgotten_when_unused() {
        let mut names = Names::default();
        let a = names.hold("tenant_a".into());
        assert_eq!(names.hold("tenant_a".into()), a);
        let b = names.hold("tenant_b".into());
        assert_ne!(a, b);
        names.release(a);
        assert_eq!(names.get(a), "tenant_a", "still used once");
        names.release(a);
        assert!(!names.numbers.contains_key("tenant_a"), "forgotten once unused");
        let c = names.hold("tenant_c".into());
        assert_eq!(c, a, "its number is reused");
        assert_eq!((names.get(b), names.get(c)), ("tenant_b", "tenant_c"));
    }

    fn completed(n: usize) -> NewExecution {
        let mut e: BackgroundExecution = serde_json::from_value(serde_json::json!({
            "executionId": format!("e{n}"), "tenantId": "t", "callableName": "c",
            "status": "completed", "queuedAt": "2026-01-01T00:00:00Z",
        }))
        .unwrap();
        e.completed_at = Some(e.queued_at);
        NewExecution::new(e, Readiness::Final)
    }

    /// A store that holds a few executions holds a few slots, not a whole
    /// chunk (some 360 KB, per engine, until its JS object is collected);
    /// past the first chunk the slab still finds every slot.
    #[test]
    fn the_slab_grows_with_its_executions() {
        let store = MemoryStore::keeping(100_000);
        let insert = |from: usize, to: usize| {
            let batch = (from..to).map(completed).collect();
            crate::store::poll_now(store.insert_many(batch)).ok().unwrap().unwrap();
        };
        insert(0, 3);
        {
            let g = store.inner.lock();
            let slots: usize = g.slab.chunks.iter().map(Vec::capacity).sum();
            assert!(slots <= FIRST_CHUNK, "3 executions hold {slots} slots");
        }
        insert(3, 2 * CHUNK + 5);
        let g = store.inner.lock();
        assert_eq!(g.slab.chunks.iter().map(Vec::len).collect::<Vec<_>>(), vec![CHUNK, CHUNK, 5]);
        assert!(g.slab.chunks.iter().all(|c| c.capacity() == CHUNK), "full-size chunks from the second on");
        for n in [0, 63, 64, CHUNK - 1, CHUNK, 2 * CHUNK + 4] {
            let i = g.slab.find(&format!("e{n}")).unwrap_or_else(|| panic!("e{n} is found"));
            assert_eq!(&*g.slab.slot(i).id, format!("e{n}"));
        }
        assert_eq!(g.slab.iter().count(), 2 * CHUNK + 5);
    }

    /// Executions dropped from a store release their names: a stream of
    /// one-off tenants does not grow the name table.
    #[test]
    fn dropped_executions_release_their_names() {
        let store = MemoryStore::keeping(0);
        for n in 0..1000 {
            let mut e: BackgroundExecution = serde_json::from_value(serde_json::json!({
                "executionId": format!("e{n}"), "tenantId": format!("t{n}"), "callableName": "c",
                "status": "completed", "queuedAt": "2026-01-01T00:00:00Z",
            }))
            .unwrap();
            e.completed_at = Some(e.queued_at);
            let inserted = crate::store::poll_now(store.insert_many(vec![NewExecution::new(e, Readiness::Final)]));
            assert_eq!(inserted.ok().unwrap().unwrap(), vec![Inserted::Ok]);
        }
        let g = store.inner.lock();
        assert_eq!(g.names.numbers.len(), 0);
        assert!(g.names.names.len() <= 2, "numbers are reused: {}", g.names.names.len());
    }
}
