//! The in-memory [`Store`]: the default, for one process.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::Arc;

use parking_lot::Mutex;

/// Hash maps keyed by ids: foldhash (fast, seeded per process, so ids a
/// caller chooses cannot be made to collide) instead of SipHash.
type HashMap<K, V> = std::collections::HashMap<K, V, foldhash::fast::RandomState>;

use crate::error::EngineError;
use crate::model::{BackgroundExecution, BackgroundExecutionStatus as Status, Timestamp, Trigger};
use crate::store::{
    apply_gate, Blocked, Change, ExecutionFilter, Expect, Readiness, StatusCounts, Store, StoreError, StoreResult,
    TriggerFilter, TriggerStore,
};

/// Queue class: immediate work outranks idle-deferred work at any priority.
const CLASS_IDLE: u8 = 0;
const CLASS_NOW: u8 = 1;

struct Slot {
    rec: BackgroundExecution,
    /// Ticket of the queue entry that is live for this execution; entries
    /// with another ticket are stale (lazy deletion on cancel).
    ticket: u64,
    /// Class it is queued in while waiting for `Readiness::At`.
    class_when_due: u8,
}

/// Tenants waiting at one (class, priority), served round-robin.
#[derive(Default)]
struct Level {
    turn: VecDeque<Arc<str>>,
    queues: HashMap<Arc<str>, VecDeque<(u64, Arc<str>)>>,
}

#[derive(Default)]
struct Inner {
    /// Boxed: a slot is ~430 bytes, and a table of them would move and
    /// over-allocate all of that on every growth.
    execs: HashMap<Arc<str>, Box<Slot>>,
    levels: BTreeMap<(u8, u8), Level>,
    delayed: BTreeSet<(i64, u64, Arc<str>)>,
    next_ticket: u64,
    counts: StatusCounts,
    /// Settled executions, oldest first, for [`MemoryStore::keep_finished`].
    finished: VecDeque<Arc<str>>,
    keep_finished: usize,
}

impl Inner {
    /// An execution reached its final record (bound, if it binds): keep at
    /// most `keep_finished` of those, dropping the oldest. Counts keep
    /// them, so `counts()` still adds up to every execution ever inserted.
    fn settled(&mut self, id: Arc<str>) {
        self.finished.push_back(id);
        while self.finished.len() > self.keep_finished {
            let old = self.finished.pop_front().expect("longer than the limit");
            if self.execs.get(&old).is_some_and(|s| s.rec.status.is_final()) {
                self.execs.remove(&old);
            }
        }
    }

    fn enqueue(&mut self, id: Arc<str>, class: u8) {
        self.next_ticket += 1;
        let ticket = self.next_ticket;
        let slot = self.execs.get_mut(&id).expect("enqueue of a known execution");
        slot.ticket = ticket;
        let tenant: Arc<str> = Arc::from(slot.rec.tenant_id.as_str());
        let level = self.levels.entry((class, slot.rec.config.priority)).or_default();
        let q = level.queues.entry(tenant.clone()).or_default();
        if q.is_empty() {
            level.turn.push_back(tenant);
        }
        q.push_back((ticket, id));
    }

    fn delay(&mut self, id: Arc<str>, due_ms: i64, class: u8) {
        self.next_ticket += 1;
        let ticket = self.next_ticket;
        let slot = self.execs.get_mut(&id).expect("delay of a known execution");
        slot.ticket = ticket;
        slot.class_when_due = class;
        self.delayed.insert((due_ms, ticket, id));
    }

    fn set_status(&mut self, id: &str, status: Status) {
        let slot = self.execs.get_mut(id).expect("known execution");
        let old = slot.rec.status;
        slot.rec.status = status;
        *self.counts.slot(old) -= 1;
        *self.counts.slot(status) += 1;
    }
}

/// Triggers in registration order.
#[derive(Default)]
struct Triggers {
    by_id: HashMap<String, (u64, Trigger)>,
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
        let id: Arc<str> = Arc::from(exec.execution_id.as_str());
        if g.execs.contains_key(&id) {
            return Err(StoreError(format!("execution {id:?} already exists")));
        }
        *g.counts.slot(exec.status) += 1;
        g.execs.insert(id.clone(), Box::new(Slot { rec: exec, ticket: 0, class_when_due: CLASS_NOW }));
        match ready {
            Readiness::Now => g.enqueue(id, CLASS_NOW),
            Readiness::Idle => g.enqueue(id, CLASS_IDLE),
            Readiness::At(ms) => g.delay(id, ms, CLASS_NOW),
            Readiness::Final => g.settled(id),
        }
        Ok(())
    }

    fn get(&self, id: &str) -> StoreResult<Option<BackgroundExecution>> {
        Ok(self.inner.lock().execs.get(id).map(|s| s.rec.clone()))
    }

    fn list(&self, filter: &ExecutionFilter) -> StoreResult<Vec<BackgroundExecution>> {
        let g = self.inner.lock();
        let mut out: Vec<&BackgroundExecution> =
            g.execs.values().map(|s| &s.rec).filter(|e| filter.matches(e)).collect();
        out.sort_by(|a, b| (a.queued_at, &a.execution_id).cmp(&(b.queued_at, &b.execution_id)));
        let limit = filter.limit.unwrap_or(usize::MAX);
        Ok(out.into_iter().take(limit).cloned().collect())
    }

    fn claim(&self, max: usize, now: Timestamp, admit: &mut dyn FnMut(&str) -> bool) -> StoreResult<Vec<BackgroundExecution>> {
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
                let q = level.queues.get_mut(&tenant).expect("every tenant in turn has a queue");
                while let Some((ticket, id)) = q.front() {
                    let live = g.execs.get(id).is_some_and(|s| s.ticket == *ticket && s.rec.status == Status::Queued);
                    if live {
                        break;
                    }
                    q.pop_front();
                }
                if q.is_empty() {
                    level.queues.remove(&tenant);
                    continue;
                }
                if !admit(&tenant) {
                    level.turn.push_back(tenant);
                    refused += 1;
                    continue;
                }
                refused = 0;
                let (_, id) = q.pop_front().expect("checked non-empty");
                if q.is_empty() {
                    level.queues.remove(&tenant);
                } else {
                    level.turn.push_back(tenant);
                }
                let slot = g.execs.get_mut(&id).expect("live entry");
                slot.ticket = 0;
                slot.rec.status = Status::Running;
                slot.rec.attempt += 1;
                slot.rec.started_at = Some(now);
                g.counts.queued -= 1;
                g.counts.running += 1;
                out.push(slot.rec.clone());
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
        while let Some((due, ticket, id)) = g.delayed.first().cloned() {
            if due > now_ms {
                return Ok((promoted, Some(due)));
            }
            g.delayed.pop_first();
            let class = match g.execs.get(&id) {
                Some(s) if s.ticket == ticket && s.rec.status == Status::Queued => s.class_when_due,
                _ => continue,
            };
            g.enqueue(id, class);
            promoted += 1;
        }
        Ok((promoted, None))
    }

    fn transition(&self, id: &str, expect: Expect, change: Change) -> StoreResult<Option<BackgroundExecution>> {
        let mut g = self.inner.lock();
        let Some(slot) = g.execs.get_mut(id) else { return Ok(None) };
        let ok = match expect {
            Expect::Running(attempt) => slot.rec.status == Status::Running && slot.rec.attempt == attempt,
            Expect::Active => matches!(slot.rec.status, Status::Queued | Status::Running),
            Expect::Completed => slot.rec.status == Status::Completed,
        };
        if !ok {
            return Ok(None);
        }
        let key: Arc<str> = g.execs.get_key_value(id).map(|(k, _)| k.clone()).expect("present");
        let mut settle = None;
        match change {
            Change::Finish { status, output, error, at } => {
                let rec = &mut g.execs.get_mut(id).expect("present").rec;
                rec.output = output;
                rec.error = error.map(Box::new);
                rec.completed_at = Some(at);
                // A completed execution that binds is final once bound.
                let binds = status == Status::Completed && rec.config.target_binding.is_some();
                g.set_status(id, status);
                if !binds {
                    settle = Some(key);
                }
            }
            Change::Retry { error, due_ms } => {
                g.execs.get_mut(id).expect("present").rec.error = Some(Box::new(error));
                g.set_status(id, Status::Queued);
                g.delay(key, due_ms, CLASS_NOW);
            }
            Change::Release => {
                let rec = &mut g.execs.get_mut(id).expect("present").rec;
                rec.attempt = rec.attempt.saturating_sub(1);
                g.set_status(id, Status::Queued);
                g.enqueue(key, CLASS_NOW);
            }
            Change::Cancel { at } => {
                let slot = g.execs.get_mut(id).expect("present");
                slot.ticket = 0;
                slot.rec.completed_at = Some(at);
                g.set_status(id, Status::Cancelled);
                settle = Some(key);
            }
            Change::Bound(result) => {
                let rec = &mut g.execs.get_mut(id).expect("present").rec;
                rec.target_binding_applied = result.success;
                rec.binding_result = Some(Box::new(result));
                settle = Some(key);
            }
        }
        let out = g.execs.get(id).map(|s| s.rec.clone());
        if let Some(key) = settle {
            g.settled(key);
        }
        Ok(out)
    }

    fn counts(&self) -> StoreResult<StatusCounts> {
        Ok(self.inner.lock().counts)
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
        g.by_id.insert(t.trigger_id.clone(), (seq, t));
        Ok(())
    }

    fn get_trigger(&self, id: &str) -> StoreResult<Option<Trigger>> {
        Ok(self.triggers.lock().by_id.get(id).map(|(_, t)| t.clone()))
    }

    fn list_triggers(&self, filter: &TriggerFilter) -> StoreResult<Vec<Trigger>> {
        let g = self.triggers.lock();
        let mut out: Vec<&(u64, Trigger)> = g.by_id.values().filter(|(_, t)| filter.matches(t)).collect();
        out.sort_by_key(|(seq, _)| *seq);
        Ok(out.into_iter().map(|(_, t)| t.clone()).collect())
    }

    fn update_trigger(
        &self,
        id: &str,
        f: &mut dyn FnMut(&mut Trigger) -> Result<(), EngineError>,
    ) -> StoreResult<Option<Result<Trigger, EngineError>>> {
        let mut g = self.triggers.lock();
        let Some((_, t)) = g.by_id.get_mut(id) else { return Ok(None) };
        let mut next = t.clone();
        Ok(Some(match f(&mut next) {
            Ok(()) => {
                *t = next.clone();
                Ok(next)
            }
            Err(e) => Err(e),
        }))
    }

    fn remove_trigger(&self, id: &str) -> StoreResult<bool> {
        Ok(self.triggers.lock().by_id.remove(id).is_some())
    }

    fn fire_trigger(&self, id: &str, now: Timestamp) -> StoreResult<Option<(Trigger, Result<(), Blocked>)>> {
        let mut g = self.triggers.lock();
        let Some((_, t)) = g.by_id.get_mut(id) else { return Ok(None) };
        let (gate, _changed) = apply_gate(t, now);
        Ok(Some((t.clone(), gate)))
    }
}
