//! The driver's operations as SQL, run on the writer thread inside its
//! batch transaction. Each behaves as the memory driver's does.

use std::collections::{HashMap, HashSet, VecDeque};

use rusqlite::{params, Connection, OptionalExtension};

use crate::clock::millis;
use crate::model::{BackgroundExecution, BackgroundExecutionStatus as Status, TargetBindingResult, Timestamp, Trigger};
use crate::columns::{self, nanos, ts};
use crate::store::{
    apply_gate, pass_fire_gate, retryable_status, stalled_error, CancelOutcome, Change, ClaimParams, ExecutionFilter, Finish, Finished, Fire,
    Inserted, NewExecution, Progress, Readiness, Rescued, RetryOutcome, Staged, StatusCounts, StoreError, StoreResult, Tally, TriggerChanges,
    TriggerState,
};

/// Queue classes, as in the memory driver: immediate work outranks
/// idle-deferred work at any priority.
const CLASS_IDLE: i64 = 0;
const CLASS_NOW: i64 = 1;

/// Trigger changes remembered for `trigger_changes` (as the memory driver).
const CHANGE_LOG: i64 = 10_000;

/// The writer's counters: the next ticket, turn position and sequence
/// numbers, read from the file at open (each is the largest in use), so
/// nothing per execution is kept in memory. Cloned before each request
/// and batch, and put back when what used them was rolled back.
#[derive(Clone, Debug, Default)]
pub struct State {
    ticket: i64,
    turn_pos: i64,
    settle_seq: i64,
    trigger_seq: i64,
    change_seq: i64,
    /// Unexpired webhook ids a trigger remembers at most.
    pub replay_capacity: usize,
    /// Set by [`super::SqliteStore`]'s close: the writer ends after the
    /// batch that set it.
    pub closing: bool,
}

impl State {
    pub(super) fn load(conn: &Connection, replay_capacity: usize) -> rusqlite::Result<Self> {
        let max = |sql: &str| conn.query_row(sql, [], |r| r.get::<_, Option<i64>>(0)).map(Option::unwrap_or_default);
        Ok(Self {
            ticket: max("SELECT max(ticket) FROM executions")?,
            turn_pos: max("SELECT max(pos) FROM turns")?,
            settle_seq: max("SELECT max(settle_seq) FROM executions WHERE status >= 2")?,
            trigger_seq: max("SELECT max(seq) FROM triggers")?,
            change_seq: max("SELECT max(seq) FROM trigger_changes")?,
            replay_capacity: replay_capacity.max(1),
            closing: false,
        })
    }

    fn next_ticket(&mut self) -> i64 {
        self.ticket += 1;
        self.ticket
    }

    fn next_settle(&mut self) -> i64 {
        self.settle_seq += 1;
        self.settle_seq
    }

    fn next_pos(&mut self) -> i64 {
        self.turn_pos += 1;
        self.turn_pos
    }
}

fn db(e: rusqlite::Error) -> StoreError {
    super::unavailable("sqlite store", e)
}









columns::store_codec!("sqlite store", i64);

// ---------------------------------------------------------------------------
// Records

/// The columns a record is read from, in [`Raw`]'s order.
const REC: &str = "body, status, attempt, started_at, completed_at, output, error, metadata, trigger_source, binding, target_binding_applied, progress";

struct Raw {
    body: String,
    status: i64,
    attempt: i64,
    started: Option<String>,
    completed: Option<String>,
    output: Option<String>,
    error: Option<String>,
    metadata: Option<String>,
    source: Option<String>,
    binding: Option<String>,
    applied: bool,
    progress: Option<String>,
}

fn raw(r: &rusqlite::Row<'_>) -> rusqlite::Result<Raw> {
    Ok(Raw {
        body: r.get(0)?,
        status: r.get(1)?,
        attempt: r.get(2)?,
        started: r.get(3)?,
        completed: r.get(4)?,
        output: r.get(5)?,
        error: r.get(6)?,
        metadata: r.get(7)?,
        source: r.get(8)?,
        binding: r.get(9)?,
        applied: r.get(10)?,
        progress: r.get(11)?,
    })
}

impl Raw {
    fn decode(self) -> StoreResult<BackgroundExecution> {
        let mut e: BackgroundExecution = from_json("execution", &self.body)?;
        e.status = status_of(self.status)?;
        e.attempt = u32::try_from(self.attempt).unwrap_or(u32::MAX);
        e.started_at = self.started.as_deref().map(parse_ts).transpose()?;
        e.completed_at = self.completed.as_deref().map(parse_ts).transpose()?;
        e.output = self.output.as_deref().map(|s| from_json("output", s)).transpose()?;
        e.error = self.error.as_deref().map(|s| from_json("error", s)).transpose()?;
        e.metadata = self.metadata.as_deref().map(|s| from_json("metadata", s)).transpose()?;
        e.trigger_source = self.source.as_deref().map(|s| from_json("trigger source", s)).transpose()?;
        e.binding_result = self.binding.as_deref().map(|s| from_json("binding result", s)).transpose()?;
        e.target_binding_applied = self.applied;
        e.progress = self.progress.as_deref().map(|s| from_json("progress", s)).transpose()?;
        Ok(e)
    }
}

pub(super) fn get(conn: &Connection, id: &str) -> StoreResult<Option<BackgroundExecution>> {
    let mut stmt = conn.prepare_cached(&format!("SELECT {REC} FROM executions WHERE id = ?1")).map_err(db)?;
    stmt.query_row([id], raw).optional().map_err(db)?.map(Raw::decode).transpose()
}

fn must_get(conn: &Connection, id: &str) -> StoreResult<BackgroundExecution> {
    get(conn, id)?.ok_or_else(|| StoreError::NotFound(format!("execution {id:?}")))
}

pub(super) fn list(conn: &Connection, f: &ExecutionFilter) -> StoreResult<Vec<BackgroundExecution>> {
    let mut sql = format!("SELECT {REC} FROM executions WHERE 1");
    let mut args: Vec<rusqlite::types::Value> = Vec::new();
    if let Some(t) = &f.tenant_id {
        sql.push_str(" AND tenant = ?");
        args.push(t.clone().into());
    }
    if let Some(s) = f.status {
        sql.push_str(" AND status = ?");
        args.push(code(s).into());
    }
    if let Some(c) = &f.callable_name {
        sql.push_str(" AND callable = ?");
        args.push(c.clone().into());
    }
    if let Some(t) = &f.trigger_id {
        sql.push_str(" AND json_extract(body, '$.triggerId') = ?");
        args.push(t.clone().into());
    }
    let (cmp, order) = if f.newest_first { ("<", "DESC") } else { (">", "ASC") };
    if let Some(after) = &f.after {
        // A cursor that no longer exists compares NULL: nothing is listed.
        sql.push_str(&format!(" AND (queued_ns, id) {cmp} (SELECT queued_ns, id FROM executions WHERE id = ?)"));
        args.push(after.clone().into());
    }
    sql.push_str(&format!(" ORDER BY queued_ns {order}, id {order}"));
    if let Some(limit) = f.limit {
        sql.push_str(" LIMIT ?");
        args.push(i64::try_from(limit).unwrap_or(i64::MAX).into());
    }
    let mut stmt = conn.prepare_cached(&sql).map_err(db)?;
    let rows = stmt.query_map(rusqlite::params_from_iter(args), raw).map_err(db)?;
    rows.map(|r| r.map_err(db).and_then(Raw::decode)).collect()
}

/// Puts a queued execution in the ready queue of `(class, priority)`, last
/// in its tenant's line; the tenant joins that level's turns if it is not
/// in them.
fn enqueue(conn: &Connection, st: &mut State, id: &str, tenant: &str, class: i64, priority: i64) -> StoreResult<()> {
    let ticket = st.next_ticket();
    conn.prepare_cached("UPDATE executions SET ticket = ?1, class = ?2, due_ms = NULL WHERE id = ?3")
        .and_then(|mut s| s.execute(params![ticket, class, id]))
        .map_err(db)?;
    join_turns(conn, st, class, priority, tenant)
}

fn join_turns(conn: &Connection, st: &mut State, class: i64, priority: i64, tenant: &str) -> StoreResult<()> {
    let pos = st.next_pos();
    conn.prepare_cached("INSERT OR IGNORE INTO turns (class, priority, tenant, pos) VALUES (?1, ?2, ?3, ?4)")
        .and_then(|mut s| s.execute(params![class, priority, tenant, pos]))
        .map_err(db)?;
    Ok(())
}

pub(super) fn insert(conn: &Connection, st: &mut State, new: NewExecution) -> StoreResult<Inserted> {
    let mut rec = *new.record;
    let output = rec.output.take().map(|v| json(&v)).transpose()?;
    let error = rec.error.take().map(|v| json(&v)).transpose()?;
    let metadata = rec.metadata.take().map(|v| json(&v)).transpose()?;
    let source = rec.trigger_source.take().map(|v| json(&v)).transpose()?;
    let binding = rec.binding_result.take().map(|v| json(&v)).transpose()?;
    let body = json(&rec)?;
    let priority = i64::from(rec.config.priority);
    let (class, due_ms, ticket, settle) = match new.ready {
        Readiness::Now => (CLASS_NOW, None, st.next_ticket(), None),
        Readiness::Idle => (CLASS_IDLE, None, st.next_ticket(), None),
        Readiness::At(ms) => (CLASS_NOW, Some(ms), st.next_ticket(), None),
        Readiness::Final => (CLASS_NOW, None, 0, Some(st.next_settle())),
    };
    let n = conn
        .prepare_cached(
            "INSERT OR IGNORE INTO executions (id, tenant, callable, status, priority, class, ticket, due_ms, queued_ns, attempt,
                started_at, completed_at, settle_seq, binds, target_binding_applied, body, metadata, trigger_source, output, error, binding)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20, ?21)",
        )
        .and_then(|mut s| {
            s.execute(params![
                rec.execution_id,
                rec.tenant_id,
                rec.callable_name,
                code(rec.status),
                priority,
                class,
                ticket,
                due_ms,
                nanos(rec.queued_at),
                rec.attempt,
                rec.started_at.map(ts),
                rec.completed_at.map(ts),
                settle,
                rec.config.target_binding.is_some(),
                rec.target_binding_applied,
                body,
                metadata,
                source,
                output,
                error,
                binding,
            ])
        })
        .map_err(db)?;
    if n == 0 {
        return Ok(Inserted::Duplicate);
    }
    if matches!(new.ready, Readiness::Now | Readiness::Idle) {
        join_turns(conn, st, class, priority, &rec.tenant_id)?;
    }
    Ok(Inserted::Ok)
}

// ---------------------------------------------------------------------------
// Claims

/// Ready work read per tenant and callable at a time: a claim over many
/// tenants reads a few heads of each, not `max` of each.
const CHUNK: i64 = 32;

/// The head of one tenant's line of one callable at one level, read
/// `CHUNK` at a time: (ticket, id) in ticket order, and whether the file
/// holds more after them.
struct Line {
    callable: String,
    heads: VecDeque<(i64, String)>,
    more: bool,
    /// The ticket of the last head taken (read on after it).
    last: i64,
}

type TenantQueues = Vec<Line>;

fn read_line(conn: &Connection, class: i64, priority: i64, tenant: &str, callable: &str, after: i64) -> StoreResult<(VecDeque<(i64, String)>, bool)> {
    let mut s = conn
        .prepare_cached(
            "SELECT ticket, id FROM executions WHERE status = 0 AND due_ms IS NULL AND class = ?1 AND priority = ?2 AND tenant = ?3 AND callable = ?4
               AND ticket > ?5 ORDER BY ticket LIMIT ?6",
        )
        .map_err(db)?;
    let rows = s.query_map(params![class, priority, tenant, callable, after, CHUNK], |r| Ok((r.get(0)?, r.get(1)?))).map_err(db)?;
    let heads: VecDeque<(i64, String)> = rows.collect::<rusqlite::Result<_>>().map_err(db)?;
    let more = heads.len() as i64 == CHUNK;
    Ok((heads, more))
}

/// The memory driver's claim, over the file: levels `(class, priority)`
/// from the highest, tenants at a level round-robin in their stored turn
/// order, within a tenant the oldest ticket among the callables that may
/// start. Only the heads it may take are read (at most `max` per tenant
/// and callable), and the turn order is written back.
pub(super) fn claim(conn: &Connection, st: &mut State, p: &ClaimParams) -> StoreResult<Vec<BackgroundExecution>> {
    if p.max == 0 || p.limits.callables.is_empty() {
        return Ok(Vec::new());
    }
    let mut served: Vec<&str> = p.limits.callables.keys().map(String::as_str).collect();
    served.sort_unstable();
    let mut run_tenant: HashMap<String, usize> = HashMap::new();
    let mut run_callable: HashMap<String, usize> = HashMap::new();
    if p.limits.tenant.is_some() || p.limits.callables.values().any(Option::is_some) {
        let mut s = conn.prepare_cached("SELECT tenant, callable, count(*) FROM executions WHERE status = 1 GROUP BY tenant, callable").map_err(db)?;
        let rows = s.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?, r.get::<_, i64>(2)?))).map_err(db)?;
        for row in rows {
            let (t, c, n) = row.map_err(db)?;
            *run_tenant.entry(t).or_default() += n as usize;
            *run_callable.entry(c).or_default() += n as usize;
        }
    }
    let levels: Vec<(i64, i64)> = {
        let mut s = conn.prepare_cached("SELECT DISTINCT class, priority FROM turns ORDER BY class DESC, priority DESC").map_err(db)?;
        let rows = s.query_map([], |r| Ok((r.get(0)?, r.get(1)?))).map_err(db)?;
        rows.collect::<rusqlite::Result<_>>().map_err(db)?
    };
    let lease_ms = millis(p.lease_until);
    let started = ts(p.now);
    let mut chosen: Vec<String> = Vec::new();
    for (class, priority) in levels {
        if chosen.len() >= p.max {
            break;
        }
        let mut turn: VecDeque<String> = {
            let mut s = conn.prepare_cached("SELECT tenant FROM turns WHERE class = ?1 AND priority = ?2 ORDER BY pos").map_err(db)?;
            let rows = s.query_map(params![class, priority], |r| r.get(0)).map_err(db)?;
            rows.collect::<rusqlite::Result<_>>().map_err(db)?
        };
        let mut queues: HashMap<String, TenantQueues> = HashMap::new();
        let mut touched: HashSet<String> = HashSet::new();
        let mut refused = 0;
        while chosen.len() < p.max && refused < turn.len() {
            let tenant = turn.pop_front().expect("turn is non-empty");
            if !queues.contains_key(&tenant) {
                let mut tq = TenantQueues::new();
                for c in &served {
                    let (heads, more) = read_line(conn, class, priority, &tenant, c, i64::MIN)?;
                    if !heads.is_empty() {
                        tq.push(Line { callable: c.to_string(), heads, more, last: i64::MIN });
                    }
                }
                queues.insert(tenant.clone(), tq);
            }
            let tq = queues.get_mut(&tenant).expect("loaded above");
            for line in tq.iter_mut().filter(|l| l.heads.is_empty() && l.more) {
                let last = line.last;
                (line.heads, line.more) = read_line(conn, class, priority, &tenant, &line.callable, last)?;
            }
            tq.retain(|l| !l.heads.is_empty());
            if tq.is_empty() {
                let any: bool = conn
                    .prepare_cached("SELECT EXISTS (SELECT 1 FROM executions WHERE status = 0 AND due_ms IS NULL AND class = ?1 AND priority = ?2 AND tenant = ?3)")
                    .and_then(|mut s| s.query_row(params![class, priority, tenant], |r| r.get(0)))
                    .map_err(db)?;
                if any {
                    // Only work of callables this engine does not run.
                    touched.insert(tenant.clone());
                    turn.push_back(tenant);
                    refused += 1;
                } else {
                    conn.prepare_cached("DELETE FROM turns WHERE class = ?1 AND priority = ?2 AND tenant = ?3")
                        .and_then(|mut s| s.execute(params![class, priority, tenant]))
                        .map_err(db)?;
                    touched.remove(&tenant);
                }
                continue;
            }
            touched.insert(tenant.clone());
            let mut pick = None;
            if p.limits.tenant.is_none_or(|l| run_tenant.get(&tenant).copied().unwrap_or(0) < l) {
                // The oldest head among the callables under their limits.
                let mut heads: Vec<(i64, usize)> = tq.iter().enumerate().map(|(j, l)| (l.heads.front().expect("non-empty").0, j)).collect();
                heads.sort_unstable();
                for (_, j) in heads {
                    let c = &tq[j].callable;
                    let lim = p.limits.callables.get(c).copied().flatten();
                    if lim.is_none_or(|l| run_callable.get(c).copied().unwrap_or(0) < l) {
                        pick = Some(j);
                        break;
                    }
                }
            }
            let Some(j) = pick else {
                turn.push_back(tenant);
                refused += 1;
                continue;
            };
            refused = 0;
            let (ticket, id) = tq[j].heads.pop_front().expect("heads are live");
            tq[j].last = ticket;
            let callable = tq[j].callable.clone();
            conn.prepare_cached(
                "UPDATE executions SET status = 1, attempt = attempt + 1, started_at = ?1, lease_until_ms = ?2, worker = ?3, ticket = 0 WHERE id = ?4",
            )
            .and_then(|mut s| s.execute(params![started, lease_ms, &*p.worker, id]))
            .map_err(db)?;
            *run_tenant.entry(tenant.clone()).or_default() += 1;
            *run_callable.entry(callable).or_default() += 1;
            chosen.push(id);
            turn.push_back(tenant);
        }
        // The tenants served or passed over go last, in the order they
        // were put back; the others keep their places ahead of them.
        let mut s = conn.prepare_cached("UPDATE turns SET pos = ?1 WHERE class = ?2 AND priority = ?3 AND tenant = ?4").map_err(db)?;
        for tenant in turn.iter().filter(|t| touched.contains(*t)) {
            let pos = st.next_pos();
            s.execute(params![pos, class, priority, tenant]).map_err(db)?;
        }
    }
    chosen.iter().map(|id| must_get(conn, id)).collect()
}

// ---------------------------------------------------------------------------
// Changes of executions

struct Head {
    tenant: String,
    status: Status,
    attempt: i64,
    priority: i64,
    binds: bool,
    bound: bool,
}

fn head(conn: &Connection, id: &str) -> StoreResult<Option<Head>> {
    let mut s = conn.prepare_cached("SELECT tenant, status, attempt, priority, binds, binding IS NOT NULL FROM executions WHERE id = ?1").map_err(db)?;
    let row = s
        .query_row([id], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?)))
        .optional()
        .map_err(db)?;
    row.map(|(tenant, status, attempt, priority, binds, bound)| Ok(Head { tenant, status: status_of(status)?, attempt, priority, binds, bound }))
        .transpose()
}

fn exec(conn: &Connection, sql: &str, p: impl rusqlite::Params) -> StoreResult<usize> {
    conn.prepare_cached(sql).and_then(|mut s| s.execute(p)).map_err(db)
}

pub(super) fn finish(conn: &Connection, st: &mut State, f: Finish) -> StoreResult<Finished> {
    let Some(h) = head(conn, &f.id)? else { return Ok(Finished::Stale) };
    if h.status != Status::Running || h.attempt != i64::from(f.attempt) {
        return Ok(Finished::Stale);
    }
    match f.change {
        Change::Finish { status, output, error, at } => {
            // A completed execution that binds is final once bound.
            let settle = (!(status == Status::Completed && h.binds)).then(|| st.next_settle());
            let output = output.map(|v| json(&v)).transpose()?;
            let error = error.map(|v| json(&v)).transpose()?;
            exec(
                conn,
                "UPDATE executions SET status = ?1, output = ?2, error = ?3, completed_at = ?4, settle_seq = ?5, lease_until_ms = NULL WHERE id = ?6",
                params![code(status), output, error, ts(at), settle, f.id],
            )?;
        }
        Change::Retry { error, due_ms } => {
            let ticket = st.next_ticket();
            exec(
                conn,
                "UPDATE executions SET status = 0, error = ?1, due_ms = ?2, ticket = ?3, class = ?4, lease_until_ms = NULL WHERE id = ?5",
                params![json(&error)?, due_ms, ticket, CLASS_NOW, f.id],
            )?;
        }
        Change::Release => {
            exec(conn, "UPDATE executions SET status = 0, attempt = max(attempt - 1, 0), lease_until_ms = NULL WHERE id = ?1", [&f.id])?;
            enqueue(conn, st, &f.id, &h.tenant, CLASS_NOW, h.priority)?;
        }
    }
    Ok(Finished::Done(if f.want_record { Some(Box::new(must_get(conn, &f.id)?)) } else { None }))
}

pub(super) fn cancel(conn: &Connection, st: &mut State, id: &str, at: Timestamp) -> StoreResult<CancelOutcome> {
    let Some(h) = head(conn, id)? else { return Ok(CancelOutcome::NotFound) };
    if !matches!(h.status, Status::Queued | Status::Running) {
        return Ok(CancelOutcome::AlreadyFinal);
    }
    let settle = st.next_settle();
    exec(
        conn,
        "UPDATE executions SET status = ?1, completed_at = ?2, settle_seq = ?3, ticket = 0, due_ms = NULL, lease_until_ms = NULL WHERE id = ?4",
        params![code(Status::Cancelled), ts(at), settle, id],
    )?;
    Ok(CancelOutcome::Cancelled(Box::new(must_get(conn, id)?)))
}

pub(super) fn progress(conn: &Connection, p: &Progress) -> StoreResult<bool> {
    let value = json(&p.value)?;
    Ok(exec(conn, "UPDATE executions SET progress = ?1 WHERE id = ?2 AND status = 1 AND attempt = ?3", params![value, p.id, p.attempt])? == 1)
}

pub(super) fn retry(conn: &Connection, st: &mut State, id: &str, at: Timestamp) -> StoreResult<RetryOutcome> {
    let Some(h) = head(conn, id)? else { return Ok(RetryOutcome::NotFound) };
    if !retryable_status(h.status) {
        return Ok(RetryOutcome::NotRetryable(h.status));
    }
    let deferred = must_get(conn, id)?.config.mode == crate::model::ExecutionMode::Deferred;
    exec(
        conn,
        "UPDATE executions SET status = 0, stalls = 0, queued_ns = ?1, body = json_set(body, '$.queuedAt', ?3),
            started_at = NULL, completed_at = NULL,
            output = NULL, error = NULL, binding = NULL, target_binding_applied = 0, settle_seq = NULL, progress = NULL,
            worker = NULL, lease_until_ms = NULL, due_ms = NULL
         WHERE id = ?2",
        params![nanos(at), id, ts(at)],
    )?;
    enqueue(conn, st, id, &h.tenant, if deferred { CLASS_IDLE } else { CLASS_NOW }, h.priority)?;
    Ok(RetryOutcome::Requeued(Box::new(must_get(conn, id)?)))
}

pub(super) fn breakdown(conn: &Connection) -> StoreResult<Vec<Tally>> {
    let mut s = conn.prepare_cached(&columns::breakdown_sql("executions")).map_err(db)?;
    let rows = s.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))).map_err(db)?;
    Ok(columns::tallies(rows.collect::<rusqlite::Result<Vec<_>>>().map_err(db)?))
}

pub(super) fn bind(conn: &Connection, st: &mut State, id: &str, result: TargetBindingResult) -> StoreResult<Option<BackgroundExecution>> {
    let Some(h) = head(conn, id)? else { return Ok(None) };
    if h.status != Status::Completed || h.bound {
        return Ok(None);
    }
    let settle = st.next_settle();
    exec(
        conn,
        "UPDATE executions SET binding = ?1, target_binding_applied = ?2, settle_seq = ?3 WHERE id = ?4",
        params![json(&result)?, result.success, settle, id],
    )?;
    get(conn, id)
}

pub(super) fn stage_due(conn: &Connection, st: &mut State, now_ms: i64) -> StoreResult<Staged> {
    let due: Vec<(String, String, i64)> = {
        let mut s = conn
            .prepare_cached("SELECT id, tenant, priority FROM executions WHERE status = 0 AND due_ms IS NOT NULL AND due_ms <= ?1 ORDER BY due_ms, ticket")
            .map_err(db)?;
        let rows = s.query_map([now_ms], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?))).map_err(db)?;
        rows.collect::<rusqlite::Result<_>>().map_err(db)?
    };
    for (id, tenant, priority) in &due {
        enqueue(conn, st, id, tenant, CLASS_NOW, *priority)?;
    }
    let next_due_ms: Option<i64> = conn
        .prepare_cached("SELECT min(due_ms) FROM executions WHERE status = 0 AND due_ms IS NOT NULL")
        .and_then(|mut s| s.query_row([], |r| r.get(0)))
        .map_err(db)?;
    Ok(Staged { promoted: due.len(), next_due_ms })
}

pub(super) fn heartbeat(conn: &Connection, ids: &[String], lease_until: Timestamp) -> StoreResult<usize> {
    let until = millis(lease_until);
    let mut s = conn.prepare_cached("UPDATE executions SET lease_until_ms = ?1 WHERE id = ?2 AND status = 1").map_err(db)?;
    let mut n = 0;
    for id in ids {
        n += s.execute(params![until, id]).map_err(db)?;
    }
    Ok(n)
}

/// One interruption of running execution `id`: queued again, or failed
/// once it stalled more than `max_stalls` times. The attempt stays used.
fn stall(conn: &Connection, st: &mut State, id: &str, max_stalls: u32, now: Timestamp) -> StoreResult<BackgroundExecution> {
    let (tenant, priority, attempt, stalls): (String, i64, i64, i64) = conn
        .prepare_cached("SELECT tenant, priority, attempt, stalls + 1 FROM executions WHERE id = ?1")
        .and_then(|mut s| s.query_row([id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))))
        .map_err(db)?;
    let stalls_u = u32::try_from(stalls).unwrap_or(u32::MAX);
    if stalls_u > max_stalls {
        let error = stalled_error(u32::try_from(attempt).unwrap_or(u32::MAX), stalls_u, max_stalls, millis(now));
        let settle = st.next_settle();
        exec(
            conn,
            "UPDATE executions SET status = ?1, stalls = ?2, error = ?3, completed_at = ?4, settle_seq = ?5, lease_until_ms = NULL WHERE id = ?6",
            params![code(Status::Failed), stalls, json(&error)?, ts(now), settle, id],
        )?;
    } else {
        exec(conn, "UPDATE executions SET status = 0, stalls = ?1, lease_until_ms = NULL WHERE id = ?2", params![stalls, id])?;
        enqueue(conn, st, id, &tenant, CLASS_NOW, priority)?;
    }
    must_get(conn, id)
}

pub(super) fn rescue_expired(conn: &Connection, st: &mut State, now: Timestamp, max_stalls: u32) -> StoreResult<Vec<Rescued>> {
    let ids: Vec<String> = {
        let mut s = conn.prepare_cached("SELECT id FROM executions WHERE status = 1 AND lease_until_ms < ?1 ORDER BY lease_until_ms, id").map_err(db)?;
        let rows = s.query_map([millis(now)], |r| r.get(0)).map_err(db)?;
        rows.collect::<rusqlite::Result<_>>().map_err(db)?
    };
    ids.iter().map(|id| Ok(Rescued { record: Box::new(stall(conn, st, id, max_stalls, now)?) })).collect()
}

/// Crash recovery at open: every execution left running by a process that
/// is gone (the lock file says no other process has the file open) counts
/// a stall and is queued again, or fails past `max_stalls`. Answers
/// (requeued, failed).
pub(super) fn recover(conn: &Connection, st: &mut State, max_stalls: u32, now: Timestamp) -> StoreResult<(usize, usize)> {
    let ids: Vec<String> = {
        let mut s = conn.prepare("SELECT id FROM executions WHERE status = 1 ORDER BY started_at, id").map_err(db)?;
        let rows = s.query_map([], |r| r.get(0)).map_err(db)?;
        rows.collect::<rusqlite::Result<_>>().map_err(db)?
    };
    let (mut requeued, mut failed) = (0, 0);
    for id in &ids {
        if stall(conn, st, id, max_stalls, now)?.status == Status::Failed {
            failed += 1;
        } else {
            requeued += 1;
        }
    }
    Ok((requeued, failed))
}

pub(super) fn prune(conn: &Connection, _st: &mut State, keep: usize) -> StoreResult<usize> {
    let settled: i64 = conn
        .prepare_cached("SELECT count(*) FROM executions WHERE status >= 2 AND settle_seq IS NOT NULL")
        .and_then(|mut s| s.query_row([], |r| r.get(0)))
        .map_err(db)?;
    let excess = settled - i64::try_from(keep).unwrap_or(i64::MAX);
    if excess <= 0 {
        return Ok(0);
    }
    // Pruned executions still count in `counts`, as in the memory driver.
    exec(
        conn,
        "INSERT INTO pruned (status, n)
           SELECT status, count(*) FROM (SELECT status FROM executions WHERE status >= 2 AND settle_seq IS NOT NULL ORDER BY settle_seq LIMIT ?1) WHERE true GROUP BY status
           ON CONFLICT (status) DO UPDATE SET n = n + excluded.n",
        [excess],
    )?;
    let n = exec(
        conn,
        "DELETE FROM executions WHERE id IN (SELECT id FROM executions WHERE status >= 2 AND settle_seq IS NOT NULL ORDER BY settle_seq LIMIT ?1)",
        [excess],
    )?;
    Ok(n)
}

pub(super) fn counts(conn: &Connection) -> StoreResult<StatusCounts> {
    let mut out = StatusCounts::default();
    // Each status from its partial index (a count reads an index, never
    // the rows): ready and delayed work, running work, final records.
    const BY_STATUS: &str = "SELECT 0, count(*) FROM executions WHERE status = 0 AND due_ms IS NULL
        UNION ALL SELECT 0, count(*) FROM executions WHERE status = 0 AND due_ms IS NOT NULL
        UNION ALL SELECT 1, count(*) FROM executions WHERE status = 1
        UNION ALL SELECT status, count(*) FROM executions WHERE status >= 2 GROUP BY status";
    for sql in [BY_STATUS, "SELECT status, n FROM pruned"] {
        let mut s = conn.prepare_cached(sql).map_err(db)?;
        let rows = s.query_map([], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?))).map_err(db)?;
        for row in rows {
            let (status, n) = row.map_err(db)?;
            *out.slot(status_of(status)?) += n as u64;
        }
    }
    Ok(out)
}

// ---------------------------------------------------------------------------
// Triggers

use crate::columns::{status_text, Edited, FireCommit, FireStep, TriggerRow};

pub(super) fn get_trigger(conn: &Connection, id: &str) -> StoreResult<Option<TriggerRow>> {
    let mut s = conn.prepare_cached("SELECT def, def_version, cursor_ms, armed FROM triggers WHERE id = ?1").map_err(db)?;
    let row = s
        .query_row([id], |r| Ok((r.get::<_, String>(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
        .optional()
        .map_err(db)?;
    row.map(|(def, def_version, cursor_ms, armed)| Ok(TriggerRow { trigger: from_json("trigger", &def)?, def_version, cursor_ms, armed }))
        .transpose()
}

pub(super) fn list_triggers(conn: &Connection) -> StoreResult<Vec<Trigger>> {
    let mut s = conn.prepare_cached("SELECT def FROM triggers ORDER BY seq").map_err(db)?;
    let rows = s.query_map([], |r| r.get::<_, String>(0)).map_err(db)?;
    rows.map(|r| r.map_err(db).and_then(|def| from_json("trigger", &def))).collect()
}

/// Triggers of `tenant` (all without one) with their cursor and arming, in
/// registration order; the rest of a filter is the caller's.
pub(super) fn trigger_states(conn: &Connection, tenant: Option<&str>) -> StoreResult<Vec<TriggerState>> {
    let mut s = conn
        .prepare_cached("SELECT def, cursor_ms, armed FROM triggers WHERE ?1 IS NULL OR tenant = ?1 ORDER BY seq")
        .map_err(db)?;
    let rows = s.query_map([tenant], |r| Ok((r.get::<_, String>(0)?, r.get(1)?, r.get(2)?))).map_err(db)?;
    rows.map(|r| {
        let (def, cursor_ms, armed) = r.map_err(db)?;
        Ok(TriggerState { trigger: from_json("trigger", &def)?, cursor_ms, armed })
    })
    .collect()
}

fn changed(conn: &Connection, st: &mut State, id: &str) -> StoreResult<()> {
    st.change_seq += 1;
    exec(conn, "INSERT INTO trigger_changes (seq, trigger_id) VALUES (?1, ?2)", params![st.change_seq, id])?;
    exec(conn, "DELETE FROM trigger_changes WHERE seq <= ?1", [st.change_seq - CHANGE_LOG])?;
    Ok(())
}

pub(super) fn insert_trigger(conn: &Connection, st: &mut State, t: &Trigger) -> StoreResult<()> {
    st.trigger_seq += 1;
    let n = exec(
        conn,
        "INSERT OR IGNORE INTO triggers (id, seq, tenant, status, fire_count, def, version, def_version) VALUES (?1, ?2, ?3, ?4, ?5, ?6, 1, 1)",
        params![t.trigger_id, st.trigger_seq, t.tenant_id, status_text(t), t.fire_count as i64, json(t)?],
    )?;
    if n == 0 {
        return Err(StoreError::Conflict(format!("trigger {:?} already exists", t.trigger_id)));
    }
    changed(conn, st, &t.trigger_id)
}


/// Writes `next`, an edit of `read` (the trigger as read at
/// `def_version`), if no other edit changed the definition meanwhile.
/// Fires that happened meanwhile are kept: the count, last fire time and
/// status they left win over the values the edit did not change. `disarm`
/// resets threshold arming.
pub(super) fn update_trigger(conn: &Connection, st: &mut State, id: &str, read: &Trigger, mut next: Trigger, def_version: i64, disarm: bool) -> StoreResult<Edited> {
    let Some(row) = get_trigger(conn, id)? else { return Ok(Edited::Gone) };
    if row.def_version != def_version {
        return Ok(Edited::Retry);
    }
    // What the edit left as it read it takes what fires made of it since.
    let now = &row.trigger;
    if next.fire_count == read.fire_count {
        next.fire_count = now.fire_count;
    }
    if next.last_fired_at == read.last_fired_at {
        next.last_fired_at = now.last_fired_at;
    }
    if next.status == read.status {
        next.status = now.status;
    }
    exec(
        conn,
        "UPDATE triggers SET def = ?1, tenant = ?2, status = ?3, fire_count = ?4, version = version + 1, def_version = def_version + 1,
            armed = CASE WHEN ?5 THEN 0 ELSE armed END
         WHERE id = ?6",
        params![json(&next)?, next.tenant_id, status_text(&next), next.fire_count as i64, disarm, id],
    )?;
    changed(conn, st, id)?;
    Ok(Edited::Written(Box::new(next)))
}

pub(super) fn remove_trigger(conn: &Connection, st: &mut State, id: &str) -> StoreResult<bool> {
    let n = exec(conn, "DELETE FROM triggers WHERE id = ?1", [id])?;
    if n == 0 {
        return Ok(false);
    }
    exec(conn, "DELETE FROM webhook_ids WHERE trigger_id = ?1", [id])?;
    changed(conn, st, id)?;
    Ok(true)
}

pub(super) fn trigger_changes(conn: &Connection, st: &State, since: u64) -> StoreResult<TriggerChanges> {
    let change_seq = st.change_seq.max(0) as u64;
    let oldest: Option<i64> = conn.query_row("SELECT min(seq) FROM trigger_changes", [], |r| r.get(0)).map_err(db)?;
    let oldest = oldest.map_or(change_seq + 1, |o| o as u64);
    let complete = since + 1 >= oldest || since >= change_seq;
    let mut s = conn
        .prepare_cached("SELECT trigger_id FROM trigger_changes WHERE seq > ?1 GROUP BY trigger_id ORDER BY min(seq)")
        .map_err(db)?;
    let rows = s.query_map([i64::try_from(since).unwrap_or(i64::MAX)], |r| r.get(0)).map_err(db)?;
    let ids = rows.collect::<rusqlite::Result<_>>().map_err(db)?;
    Ok(TriggerChanges { seq: change_seq, ids, complete })
}



/// The fire step, inside one savepoint: the memory driver's gates in the
/// same order, then the count, cursor, arming, webhook id and the
/// execution written together.
pub(super) fn fire(conn: &Connection, st: &mut State, c: FireCommit) -> StoreResult<FireStep> {
    let Some(mut row) = get_trigger(conn, &c.trigger_id)? else { return Ok(FireStep::Done(Fire::Gone)) };
    if row.def_version != c.def_version {
        return Ok(FireStep::Rebuild);
    }
    let write_state = |row: &TriggerRow| exec(conn, "UPDATE triggers SET cursor_ms = ?1, armed = ?2 WHERE id = ?3", params![row.cursor_ms, row.armed, c.trigger_id]);
    let (passes, state_changed) = pass_fire_gate(c.gate, &mut row.cursor_ms, &mut row.armed);
    if state_changed {
        write_state(&row)?;
    }
    if !passes {
        return Ok(FireStep::Done(Fire::Skipped));
    }
    if let Some((msg, now_secs, _)) = &c.webhook {
        exec(conn, "DELETE FROM webhook_ids WHERE trigger_id = ?1 AND expires_secs <= ?2", params![c.trigger_id, now_secs])?;
        let seen: bool = conn
            .prepare_cached("SELECT EXISTS (SELECT 1 FROM webhook_ids WHERE trigger_id = ?1 AND msg_id = ?2)")
            .and_then(|mut s| s.query_row(params![c.trigger_id, msg], |r| r.get(0)))
            .map_err(db)?;
        if seen {
            return Ok(FireStep::Done(Fire::Replay));
        }
        let (held, oldest): (i64, Option<i64>) = conn
            .prepare_cached("SELECT count(*), min(expires_secs) FROM webhook_ids WHERE trigger_id = ?1")
            .and_then(|mut s| s.query_row([&c.trigger_id], |r| Ok((r.get(0)?, r.get(1)?))))
            .map_err(db)?;
        if held as usize >= st.replay_capacity {
            return Ok(FireStep::Done(Fire::ReplayFull { until_secs: oldest.unwrap_or(*now_secs) }));
        }
    }
    let (gate, changed_status) = apply_gate(&mut row.trigger, c.now);
    let write_trigger = |t: &Trigger| {
        exec(
            conn,
            "UPDATE triggers SET def = ?1, status = ?2, fire_count = ?3, version = version + 1 WHERE id = ?4",
            params![json(t)?, status_text(t), t.fire_count as i64, c.trigger_id],
        )
    };
    if let Err(why) = gate {
        if changed_status {
            write_trigger(&row.trigger)?;
        }
        return Ok(FireStep::Done(Fire::Blocked { trigger: std::sync::Arc::new(row.trigger), why }));
    }
    let final_record = c.new.ready == Readiness::Final;
    let record = (c.want_record || final_record).then(|| c.new.record.clone());
    let execution_id = c.new.record.execution_id.clone();
    if insert(conn, st, c.new)? == Inserted::Duplicate {
        // The savepoint is rolled back: the fire and its execution go together.
        return Err(StoreError::Conflict(format!("execution {execution_id:?} already exists")));
    }
    write_trigger(&row.trigger)?;
    if let Some((msg, now_secs, expires_secs)) = &c.webhook {
        let expires = now_secs + (expires_secs - now_secs).max(1);
        exec(conn, "INSERT OR REPLACE INTO webhook_ids (trigger_id, msg_id, expires_secs) VALUES (?1, ?2, ?3)", params![c.trigger_id, msg, expires])?;
    }
    Ok(FireStep::Done(Fire::Fired { trigger: std::sync::Arc::new(row.trigger), execution_id, record }))
}
