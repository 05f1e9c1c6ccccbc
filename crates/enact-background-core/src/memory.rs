//! The in-memory [`Store`]: the default, for one process.
//!
//! Executions are kept compact, because a queue of a million waiting
//! executions should cost tens of megabytes, not a gigabyte: tenant and
//! callable names are interned, configs are shared between executions that
//! have equal ones, and the fields most executions never set (context,
//! trigger, metadata) or only set once they run (times, output, error,
//! binding) live in optional boxes. Slots sit in a slab of fixed-size
//! chunks (no reallocation of the whole table as it grows) and the queues
//! refer to them by index. A full [`BackgroundExecution`] is built only
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

use crate::error::EngineError;
use crate::model::{
    BackgroundExecution, BackgroundExecutionConfig, BackgroundExecutionStatus as Status, ExecutionError, JsonMap,
    TargetBindingResult, Timestamp, Trigger,
};
use crate::store::{
    apply_gate, Admit, Blocked, Change, ExecutionFilter, Expect, Readiness, StatusCounts, Store, StoreError, StoreResult,
    TriggerFilter, TriggerStore,
};

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

/// Execution slots by index, in chunks that never move, with a free list,
/// and the id → index table.
#[derive(Default)]
struct Slab {
    chunks: Vec<Box<[Option<Slot>]>>,
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
                if self.len % CHUNK == 0 {
                    self.chunks.push(std::iter::repeat_with(|| None).take(CHUNK).collect());
                }
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
}

impl Inner {
    /// An execution reached its final record (bound, if it binds): keep at
    /// most `keep_finished` of those, dropping the oldest. Counts keep
    /// them, so `counts()` still adds up to every execution ever inserted.
    fn settled(&mut self, i: u32) {
        self.finished.push_back(i);
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
    }

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
        } = exec;
        let extra = (context.is_some() || trigger_id.is_some() || metadata.is_some() || trigger_source.is_some() || chain_depth != 0)
            .then(|| Box::new(Extra { context, trigger_id, metadata, trigger_source, chain_depth }));
        let run = (started_at.is_some() || completed_at.is_some() || output.is_some() || error.is_some() || binding_result.is_some() || target_binding_applied)
            .then(|| Box::new(Run { started_at, completed_at, output, error, binding_result, target_binding_applied }));
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

/// Triggers in registration order.
#[derive(Default)]
struct Triggers {
    /// Shared with the fires that read them: a fire borrows the trigger
    /// instead of copying it, and the next change copies only if a fire
    /// still holds the old version.
    by_id: HashMap<String, (u64, Arc<Trigger>)>,
    next_seq: u64,
}

/// Executions, the queue and triggers in process memory. Nothing survives
/// the process. Finished executions are kept up to a limit (default
/// [`DEFAULT_KEEP_FINISHED`]), oldest dropped first, so a long-running
/// process does not grow without bound.
#[derive(Clone)]
pub struct MemoryStore {
    inner: Arc<Mutex<Inner>>,
    triggers: Arc<Mutex<Triggers>>,
}

/// How many finished executions a [`MemoryStore`] keeps by default.
pub const DEFAULT_KEEP_FINISHED: usize = 100_000;

impl Default for MemoryStore {
    fn default() -> Self {
        Self::keeping(DEFAULT_KEEP_FINISHED)
    }
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// An empty store keeping at most `keep_finished` finished executions
    /// (completed, failed, cancelled, timed out) for `get` and `list`.
    pub fn keeping(keep_finished: usize) -> Self {
        let inner = Inner { keep_finished, ..Inner::default() };
        Self { inner: Arc::new(Mutex::new(inner)), triggers: Arc::default() }
    }
}

impl Store for MemoryStore {
    fn insert(&self, exec: BackgroundExecution, ready: Readiness) -> StoreResult<()> {
        let mut g = self.inner.lock();
        if g.slab.find(&exec.execution_id).is_some() {
            return Err(StoreError(format!("execution {:?} already exists", exec.execution_id)));
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
        Ok(())
    }

    fn get(&self, id: &str) -> StoreResult<Option<BackgroundExecution>> {
        let g = self.inner.lock();
        Ok(g.slab.find(id).map(|i| g.slab.slot(i).record(&g.names)))
    }

    fn list(&self, filter: &ExecutionFilter) -> StoreResult<Vec<BackgroundExecution>> {
        let g = self.inner.lock();
        let mut out: Vec<&Slot> = g.slab.iter().filter(|s| s.matches(filter, &g.names)).collect();
        out.sort_by(|a, b| (a.queued_at, &a.id).cmp(&(b.queued_at, &b.id)));
        let limit = filter.limit.unwrap_or(usize::MAX);
        Ok(out.into_iter().take(limit).map(|s| s.record(&g.names)).collect())
    }

    fn claim(&self, max: usize, now: Timestamp, admit: &mut dyn FnMut(&str, &str) -> Admit) -> StoreResult<Vec<BackgroundExecution>> {
        let mut g = self.inner.lock();
        let g = &mut *g;
        let mut out = Vec::new();
        let keys: Vec<(u8, u8)> = g.levels.keys().rev().copied().collect();
        for key in keys {
            if out.len() >= max {
                break;
            }
            let level = g.levels.get_mut(&key).expect("level listed above");
            // Tenants refused in a row; a full turn of refusals ends the level.
            let mut refused = 0;
            while out.len() < max && refused < level.turn.len() {
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
                // The oldest head among the callables that admit it.
                let mut skipped = Skipped::new(tq.len());
                let mut chosen = None;
                while let Some(j) = (0..tq.len()).filter(|&j| !skipped.has(j)).min_by_key(|&j| tq[j].1.front().map(|e| e.0)) {
                    match admit(g.names.get(tenant), g.names.get(tq[j].0)) {
                        Admit::Yes => {
                            chosen = Some(j);
                            break;
                        }
                        Admit::TenantFull => break,
                        Admit::CallableFull => skipped.add(j),
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
                slot.run().started_at = Some(now);
                g.counts.queued -= 1;
                g.counts.running += 1;
                out.push(slot.record(&g.names));
            }
            if level.turn.is_empty() {
                g.levels.remove(&key);
            }
        }
        Ok(out)
    }

    fn promote_due(&self, now_ms: i64) -> StoreResult<(usize, Option<i64>)> {
        let mut g = self.inner.lock();
        let mut promoted = 0;
        while let Some(Reverse((due, _, _))) = g.delayed.peek() {
            if *due > now_ms {
                return Ok((promoted, Some(*due)));
            }
            let Reverse((_, ticket, i)) = g.delayed.pop().expect("peeked");
            let class = match g.slab.at(i) {
                Some(s) if s.ticket == ticket && s.status == Status::Queued => s.class_when_due,
                _ => continue,
            };
            g.enqueue(i, class);
            promoted += 1;
        }
        Ok((promoted, None))
    }

    fn transition(&self, id: &str, expect: Expect, change: Change) -> StoreResult<Option<BackgroundExecution>> {
        Ok(self.change(id, expect, change, true).flatten())
    }

    fn transition_quiet(&self, id: &str, expect: Expect, change: Change) -> StoreResult<bool> {
        Ok(self.change(id, expect, change, false).is_some())
    }

    fn counts(&self) -> StoreResult<StatusCounts> {
        Ok(self.inner.lock().counts)
    }
}

impl MemoryStore {
    /// [`Store::transition`]: `None` when the state differs, else the new
    /// record if `record` is asked for.
    fn change(&self, id: &str, expect: Expect, change: Change, record: bool) -> Option<Option<BackgroundExecution>> {
        let mut g = self.inner.lock();
        let g = &mut *g;
        let i = g.slab.find(id)?;
        let slot = g.slab.slot_mut(i);
        let ok = match expect {
            Expect::Running(attempt) => slot.status == Status::Running && slot.attempt == attempt,
            Expect::Active => matches!(slot.status, Status::Queued | Status::Running),
            Expect::Completed => slot.status == Status::Completed,
        };
        if !ok {
            return None;
        }
        let mut settle = false;
        match change {
            Change::Finish { status, output, error, at } => {
                // A completed execution that binds is final once bound.
                settle = !(status == Status::Completed && slot.config.target_binding.is_some());
                let run = slot.run();
                run.output = output;
                run.error = error.map(Box::new);
                run.completed_at = Some(at);
                g.set_status(i, status);
            }
            Change::Retry { error, due_ms } => {
                slot.run().error = Some(Box::new(error));
                g.set_status(i, Status::Queued);
                g.delay(i, due_ms, CLASS_NOW);
            }
            Change::Release => {
                slot.attempt = slot.attempt.saturating_sub(1);
                g.set_status(i, Status::Queued);
                g.enqueue(i, CLASS_NOW);
            }
            Change::Cancel { at } => {
                slot.ticket = 0;
                slot.run().completed_at = Some(at);
                g.set_status(i, Status::Cancelled);
                settle = true;
            }
            Change::Bound(result) => {
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
}

impl TriggerStore for MemoryStore {
    fn insert_trigger(&self, t: Trigger) -> StoreResult<()> {
        let mut g = self.triggers.lock();
        if g.by_id.contains_key(&t.trigger_id) {
            return Err(StoreError(format!("trigger {:?} already exists", t.trigger_id)));
        }
        g.next_seq += 1;
        let seq = g.next_seq;
        g.by_id.insert(t.trigger_id.clone(), (seq, Arc::new(t)));
        Ok(())
    }

    fn get_trigger(&self, id: &str) -> StoreResult<Option<Trigger>> {
        Ok(self.triggers.lock().by_id.get(id).map(|(_, t)| (**t).clone()))
    }

    fn list_triggers(&self, filter: &TriggerFilter) -> StoreResult<Vec<Trigger>> {
        let g = self.triggers.lock();
        let mut out: Vec<&(u64, Arc<Trigger>)> = g.by_id.values().filter(|(_, t)| filter.matches(t)).collect();
        out.sort_by_key(|(seq, _)| *seq);
        Ok(out.into_iter().map(|(_, t)| (**t).clone()).collect())
    }

    fn update_trigger(
        &self,
        id: &str,
        f: &mut dyn FnMut(&mut Trigger) -> Result<(), EngineError>,
    ) -> StoreResult<Option<Result<Trigger, EngineError>>> {
        let mut g = self.triggers.lock();
        let Some((_, t)) = g.by_id.get_mut(id) else { return Ok(None) };
        let mut next = (**t).clone();
        Ok(Some(match f(&mut next) {
            Ok(()) => {
                *t = Arc::new(next.clone());
                Ok(next)
            }
            Err(e) => Err(e),
        }))
    }

    fn remove_trigger(&self, id: &str) -> StoreResult<bool> {
        Ok(self.triggers.lock().by_id.remove(id).is_some())
    }

    fn fire_trigger(&self, id: &str, now: Timestamp) -> StoreResult<Option<(Arc<Trigger>, Result<(), Blocked>)>> {
        let mut g = self.triggers.lock();
        let Some((_, t)) = g.by_id.get_mut(id) else { return Ok(None) };
        let (gate, _changed) = apply_gate(Arc::make_mut(t), now);
        Ok(Some((t.clone(), gate)))
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
            store.insert(e, Readiness::Final).unwrap();
        }
        let g = store.inner.lock();
        assert_eq!(g.names.numbers.len(), 0);
        assert!(g.names.names.len() <= 2, "numbers are reused: {}", g.names.names.len());
    }
}
