//! The PostgreSQL driver's operations, each one statement or one
//! transaction over a pooled connection. Every statement names the schema
//! as `{s}` ([`Inner::q`]).

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Arc;

use tokio_postgres::types::ToSql;
use tokio_postgres::Row;

use super::{fault, Fault, Inner};
use crate::clock::millis;
use crate::model::{BackgroundExecution, BackgroundExecutionStatus as Status, Timestamp, Trigger};
use crate::columns::{self, nanos, ts};
use crate::store::*;

type R<T> = Result<T, Fault>;

const CLASS_IDLE: i32 = 0;
const CLASS_NOW: i32 = 1;
/// Trigger changes kept in the log (older ones make readers reload all).
const CHANGE_LOG: i64 = 10_000;
/// Tenants waiting at the top levels that one claim looks at.
const CLAIM_TENANTS: i64 = 1024;
/// Expired leases taken back per rescue pass.
const RESCUE_BATCH: i64 = 1000;

fn lvl(class: i32, priority: u8) -> i32 {
    -(class * 256 + i32::from(priority))
}









columns::store_codec!("postgres store", i16);

// ---------------------------------------------------------------------------
// Records

/// The columns a record is read from, in [`decode`]'s order.
const REC: &str = "body, status, attempt, started_at, completed_at, output, error, metadata, trigger_source, binding, applied, progress, queued_ns";
/// [`REC`] of table alias `e` (an update joined with `unnest` columns).
const REC_E: &str =
    "e.body, e.status, e.attempt, e.started_at, e.completed_at, e.output, e.error, e.metadata, e.trigger_source, e.binding, e.applied, e.progress, e.queued_ns";

/// The record in `row`'s columns from `at` on (the [`REC`] columns).
fn decode(row: &Row, at: usize) -> R<BackgroundExecution> {
    let body: &str = row.get(at);
    let mut e: BackgroundExecution = from_json("execution", body)?;
    e.status = status_of(row.get(at + 1))?;
    e.attempt = u32::try_from(row.get::<_, i32>(at + 2)).unwrap_or(0);
    e.started_at = row.get::<_, Option<&str>>(at + 3).map(parse_ts).transpose()?;
    e.completed_at = row.get::<_, Option<&str>>(at + 4).map(parse_ts).transpose()?;
    e.output = row.get::<_, Option<&str>>(at + 5).map(|s| from_json("output", s)).transpose()?;
    e.error = row.get::<_, Option<&str>>(at + 6).map(|s| from_json("error", s)).transpose()?;
    e.metadata = row.get::<_, Option<&str>>(at + 7).map(|s| from_json("metadata", s)).transpose()?;
    e.trigger_source = row.get::<_, Option<&str>>(at + 8).map(|s| from_json("trigger source", s)).transpose()?;
    e.binding_result = row.get::<_, Option<&str>>(at + 9).map(|s| from_json("binding result", s)).transpose()?;
    e.target_binding_applied = row.get(at + 10);
    e.progress = row.get::<_, Option<&str>>(at + 11).map(|s| from_json("progress", s)).transpose()?;
    // The column, not the body: a retry queues it again at a new time.
    e.queued_at = chrono::DateTime::from_timestamp_nanos(row.get::<_, i64>(at + 12));
    Ok(e)
}

pub(super) async fn get(i: Arc<Inner>, id: String) -> R<Option<BackgroundExecution>> {
    let c = i.client().await?;
    let stmt = c.prepare_cached(&i.q(&format!("SELECT {REC} FROM {{s}}.executions WHERE id = $1"))).await.map_err(fault)?;
    let row = c.query_opt(&stmt, &[&id]).await.map_err(fault)?;
    row.map(|r| decode(&r, 0)).transpose()
}

pub(super) async fn get_watched(i: Arc<Inner>, id: String) -> R<Option<BackgroundExecution>> {
    let c = i.client().await?;
    let sql = i.q(&format!("UPDATE {{s}}.executions SET watched = true WHERE id = $1 RETURNING {REC}"));
    let row = c.query_opt(&c.prepare_cached(&sql).await.map_err(fault)?, &[&id]).await.map_err(fault)?;
    row.map(|r| decode(&r, 0)).transpose()
}

pub(super) async fn list(i: Arc<Inner>, f: ExecutionFilter) -> R<Vec<BackgroundExecution>> {
    let mut sql = format!("SELECT {REC} FROM {{s}}.executions WHERE true");
    let status = f.status.map(code);
    let limit = f.limit.map(|l| i64::try_from(l).unwrap_or(i64::MAX));
    let mut args: Vec<&(dyn ToSql + Sync)> = Vec::new();
    if let Some(t) = &f.tenant_id {
        args.push(t);
        sql.push_str(&format!(" AND tenant = ${}", args.len()));
    }
    if let Some(s) = &status {
        args.push(s);
        sql.push_str(&format!(" AND status = ${}", args.len()));
    }
    if let Some(c) = &f.callable_name {
        args.push(c);
        sql.push_str(&format!(" AND callable = ${}", args.len()));
    }
    if let Some(t) = &f.trigger_id {
        args.push(t);
        sql.push_str(&format!(" AND trigger_id = ${}", args.len()));
    }
    let (cmp, order) = if f.newest_first { ("<", "DESC") } else { (">", "ASC") };
    if let Some(after) = &f.after {
        // A cursor that no longer exists compares NULL: nothing is listed.
        args.push(after);
        sql.push_str(&format!(" AND (queued_ns, id) {cmp} (SELECT queued_ns, id FROM {{s}}.executions WHERE id = ${})", args.len()));
    }
    sql.push_str(&format!(" ORDER BY queued_ns {order}, id {order}"));
    if let Some(l) = &limit {
        args.push(l);
        sql.push_str(&format!(" LIMIT ${}", args.len()));
    }
    let c = i.client().await?;
    let rows = c.query(&i.q(&sql), &args).await.map_err(fault)?;
    rows.iter().map(|r| decode(r, 0)).collect()
}

// ---------------------------------------------------------------------------
// Inserts

/// New executions as columns, for one `unnest` insert.
#[derive(Default)]
pub(super) struct InsertBatch {
    ids: Vec<String>,
    tenants: Vec<String>,
    callables: Vec<String>,
    statuses: Vec<i16>,
    priorities: Vec<i16>,
    lvls: Vec<i32>,
    due: Vec<Option<i64>>,
    queued: Vec<i64>,
    attempts: Vec<i32>,
    started: Vec<Option<String>>,
    completed: Vec<Option<String>>,
    binds: Vec<bool>,
    applied: Vec<bool>,
    watched: Vec<bool>,
    bodies: Vec<String>,
    metadata: Vec<Option<String>>,
    sources: Vec<Option<String>>,
    outputs: Vec<Option<String>>,
    errors: Vec<Option<String>>,
    bindings: Vec<Option<String>>,
    triggers: Vec<Option<String>>,
}

const INSERT: &str = "INSERT INTO {s}.executions (id, tenant, callable, status, priority, lvl, ticket, due_ms, queued_ns, attempt,
        started_at, completed_at, settle_seq, binds, applied, watched, body, metadata, trigger_source, output, error, binding, trigger_id)
    SELECT u.id, u.tenant, u.callable, u.status, u.priority, u.lvl,
        CASE WHEN u.status = 0 THEN nextval('{s}.tickets') ELSE 0 END,
        u.due_ms, u.queued_ns, u.attempt, u.started_at, u.completed_at,
        CASE WHEN u.status >= 2 THEN nextval('{s}.settles') END,
        u.binds, u.applied, u.watched, u.body, u.metadata, u.trigger_source, u.output, u.error, u.binding, u.trigger_id
    FROM unnest($1::text[], $2::text[], $3::text[], $4::int2[], $5::int2[], $6::int4[], $7::int8[], $8::int8[], $9::int4[],
        $10::text[], $11::text[], $12::bool[], $13::bool[], $14::bool[], $15::text[], $16::text[], $17::text[], $18::text[],
        $19::text[], $20::text[], $21::text[])
      AS u(id, tenant, callable, status, priority, lvl, due_ms, queued_ns, attempt, started_at, completed_at, binds, applied,
        watched, body, metadata, trigger_source, output, error, binding, trigger_id)
    ON CONFLICT (id) DO NOTHING RETURNING id";

impl InsertBatch {
    pub(super) fn encode(rows: Vec<NewExecution>) -> StoreResult<Self> {
        let mut b = InsertBatch::default();
        for new in rows {
            let mut rec = *new.record;
            let priority = rec.config.priority;
            let (class, due) = match new.ready {
                Readiness::Now | Readiness::Final => (CLASS_NOW, None),
                Readiness::Idle => (CLASS_IDLE, None),
                Readiness::At(ms) => (CLASS_NOW, Some(ms)),
            };
            b.outputs.push(rec.output.take().map(|v| json(&v)).transpose()?);
            b.errors.push(rec.error.take().map(|v| json(&v)).transpose()?);
            b.metadata.push(rec.metadata.take().map(|v| json(&v)).transpose()?);
            b.sources.push(rec.trigger_source.take().map(|v| json(&v)).transpose()?);
            b.bindings.push(rec.binding_result.take().map(|v| json(&v)).transpose()?);
            b.bodies.push(json(&rec)?);
            b.triggers.push(rec.trigger_id.take());
            b.ids.push(rec.execution_id);
            b.tenants.push(rec.tenant_id);
            b.callables.push(rec.callable_name);
            b.statuses.push(code(rec.status));
            b.priorities.push(i16::from(priority));
            b.lvls.push(lvl(class, priority));
            b.due.push(due);
            b.queued.push(nanos(rec.queued_at));
            b.attempts.push(i32::try_from(rec.attempt).unwrap_or(i32::MAX));
            b.started.push(rec.started_at.map(ts));
            b.completed.push(rec.completed_at.map(ts));
            b.binds.push(rec.config.target_binding.is_some());
            b.applied.push(rec.target_binding_applied);
            b.watched.push(new.watched);
        }
        Ok(b)
    }

    fn params(&self) -> [&(dyn ToSql + Sync); 21] {
        [
            &self.ids,
            &self.tenants,
            &self.callables,
            &self.statuses,
            &self.priorities,
            &self.lvls,
            &self.due,
            &self.queued,
            &self.attempts,
            &self.started,
            &self.completed,
            &self.binds,
            &self.applied,
            &self.watched,
            &self.bodies,
            &self.metadata,
            &self.sources,
            &self.outputs,
            &self.errors,
            &self.bindings,
            &self.triggers,
        ]
    }

    /// One answer per row from the ids the insert returned: a row whose id
    /// was not inserted, or came earlier in the batch, is a duplicate.
    fn answers(&self, rows: &[Row]) -> Vec<Inserted> {
        let mut fresh: HashSet<&str> = rows.iter().map(|r| r.get::<_, &str>(0)).collect();
        self.ids.iter().map(|id| if fresh.remove(id.as_str()) { Inserted::Ok } else { Inserted::Duplicate }).collect()
    }
}

pub(super) async fn insert_many(i: Arc<Inner>, b: Arc<InsertBatch>) -> R<Vec<Inserted>> {
    if b.ids.is_empty() {
        return Ok(Vec::new());
    }
    let c = i.client().await?;
    let stmt = c.prepare_cached(&i.q(INSERT)).await.map_err(fault)?;
    let rows = c.query(&stmt, &b.params()).await.map_err(fault)?;
    Ok(b.answers(&rows))
}

// ---------------------------------------------------------------------------
// Claims

/// Ready heads per tenant at the top levels: a skip scan finds each
/// `(lvl, tenant)` with ready work of the served callables, then a few of
/// its oldest heads (about `$2` in all, at least one per tenant).
const CANDIDATES: &str = "WITH RECURSIVE lt AS (
        (SELECT lvl, tenant FROM {s}.executions WHERE status = 0 AND due_ms IS NULL AND callable = ANY($1)
          ORDER BY lvl, tenant LIMIT 1)
        UNION ALL
        SELECT n.lvl, n.tenant FROM lt, LATERAL (
            SELECT e.lvl, e.tenant FROM {s}.executions e
            WHERE e.status = 0 AND e.due_ms IS NULL AND e.callable = ANY($1) AND (e.lvl, e.tenant) > (lt.lvl, lt.tenant)
            ORDER BY e.lvl, e.tenant LIMIT 1) n
    ),
    pairs AS MATERIALIZED (SELECT lvl, tenant FROM lt LIMIT $3),
    per AS (SELECT GREATEST(1, CEIL($2::int8::float8 / GREATEST(1, count(*))))::int8 + 1 AS n FROM pairs)
    SELECT p.lvl, p.tenant, h.id, h.callable, h.ticket FROM pairs p, per, LATERAL (
        SELECT e.id, e.callable, e.ticket FROM {s}.executions e
        WHERE e.status = 0 AND e.due_ms IS NULL AND e.lvl = p.lvl AND e.tenant = p.tenant AND e.callable = ANY($1)
        ORDER BY e.ticket LIMIT LEAST(per.n, $2) FOR UPDATE SKIP LOCKED) h";

/// Takes the picked heads, which the claim's transaction holds locked
/// (`FOR UPDATE` in [`CANDIDATES`]): they are still queued. Only the
/// primary key is named, so that the plan is a key lookup per id (with the
/// queue's predicate in the WHERE, the planner chose the partial ready
/// index and read the whole queue: a claim took 40 ms at 50,000 queued).
const TAKE: &str = "UPDATE {s}.executions e SET status = 1, attempt = e.attempt + 1, started_at = $2, lease_until_ms = $3, worker = $4,
        ticket = 0
    WHERE e.id = ANY($1)
    RETURNING e.id, ";

struct Head {
    ticket: i64,
    id: String,
    callable: String,
}

/// Picks up to `max` of the candidates as the other stores do: levels
/// from the highest, tenants at a level in turn (the oldest head first),
/// within a tenant the oldest head among callables under their limits; a
/// tenant at its limit is passed over.
fn pick(rows: &[Row], p: &ClaimParams, running: &mut (HashMap<String, usize>, HashMap<String, usize>)) -> Vec<String> {
    let mut levels: Vec<(i32, Vec<(String, VecDeque<Head>)>)> = Vec::new();
    for r in rows {
        let (lv, tenant): (i32, String) = (r.get(0), r.get(1));
        let head = Head { id: r.get(2), callable: r.get(3), ticket: r.get(4) };
        if levels.last().is_none_or(|(l, _)| *l != lv) {
            levels.push((lv, Vec::new()));
        }
        let tenants = &mut levels.last_mut().expect("pushed").1;
        match tenants.iter_mut().find(|(t, _)| *t == tenant) {
            Some((_, q)) => q.push_back(head),
            None => tenants.push((tenant, VecDeque::from([head]))),
        }
    }
    levels.sort_by_key(|(l, _)| *l);
    let (run_tenant, run_callable) = running;
    let mut chosen = Vec::new();
    for (_, mut tenants) in levels {
        if chosen.len() >= p.max {
            break;
        }
        for (_, q) in tenants.iter_mut() {
            q.make_contiguous().sort_by_key(|h| h.ticket);
        }
        tenants.sort_by_key(|(_, q)| q.front().map_or(i64::MAX, |h| h.ticket));
        let mut turn: VecDeque<(String, VecDeque<Head>)> = tenants.into();
        let mut refused = 0;
        while chosen.len() < p.max && refused < turn.len() {
            let (tenant, mut q) = turn.pop_front().expect("non-empty");
            let mut pick = None;
            if p.limits.tenant.is_none_or(|l| run_tenant.get(&tenant).copied().unwrap_or(0) < l) {
                pick = q.iter().position(|h| {
                    let lim = p.limits.callables.get(&h.callable).copied().flatten();
                    lim.is_none_or(|l| run_callable.get(&h.callable).copied().unwrap_or(0) < l)
                });
            }
            let Some(j) = pick else {
                refused += 1;
                turn.push_back((tenant, q));
                continue;
            };
            refused = 0;
            let h = q.remove(j).expect("found");
            *run_tenant.entry(tenant.clone()).or_default() += 1;
            *run_callable.entry(h.callable).or_default() += 1;
            chosen.push(h.id);
            if !q.is_empty() {
                turn.push_back((tenant, q));
            }
        }
    }
    chosen
}

pub(super) async fn claim(i: Arc<Inner>, p: Arc<ClaimParams>) -> R<Vec<BackgroundExecution>> {
    if p.max == 0 || p.limits.callables.is_empty() {
        return Ok(Vec::new());
    }
    let served: Vec<&str> = p.limits.callables.keys().map(String::as_str).collect();
    let max = i64::try_from(p.max).unwrap_or(i64::MAX);
    let limited = p.limits.tenant.is_some() || p.limits.callables.values().any(Option::is_some);
    let started = ts(p.now);
    let lease = millis(p.lease_until);
    let take_sql = i.q(&format!("{TAKE}{REC}"));
    let mut c = i.client().await?;
    let order = |rows: Vec<Row>, chosen: &[String]| -> R<Vec<BackgroundExecution>> {
        let mut by_id: HashMap<String, BackgroundExecution> = HashMap::with_capacity(rows.len());
        for r in &rows {
            by_id.insert(r.get(0), decode(r, 1)?);
        }
        Ok(chosen.iter().filter_map(|id| by_id.remove(id)).collect())
    };
    // One transaction: the heads are read and locked with SKIP LOCKED, so
    // engines claiming together read disjoint heads and never wait for
    // each other; what is picked is taken, the rest unlocked at commit.
    let txn = c.transaction().await.map_err(fault)?;
    let mut running = (HashMap::new(), HashMap::new());
    if limited {
        // Counting what runs everywhere and taking under the limits must not
        // interleave with another engine's claim: one claim at a time.
        let key = format!("enact_background:{}:claim", i.schema);
        txn.execute("SELECT pg_advisory_xact_lock(hashtextextended($1, 7340))", &[&key]).await.map_err(fault)?;
        let counted = txn
            .query(&txn.prepare_cached(&i.q("SELECT tenant, callable, count(*) FROM {s}.executions WHERE status = 1 GROUP BY tenant, callable")).await.map_err(fault)?, &[])
            .await
            .map_err(fault)?;
        for r in counted {
            let n = r.get::<_, i64>(2) as usize;
            *running.0.entry(r.get::<_, String>(0)).or_default() += n;
            *running.1.entry(r.get::<_, String>(1)).or_default() += n;
        }
    }
    // Heads are read per tenant, whatever their callable: a callable at its
    // limit is left out of the read, or its heads would crowd out the
    // tenant's other work.
    let served: Vec<&str> = served
        .into_iter()
        .filter(|c| p.limits.callables.get(*c).copied().flatten().is_none_or(|l| running.1.get(*c).copied().unwrap_or(0) < l))
        .collect();
    if served.is_empty() {
        txn.commit().await.map_err(fault)?;
        return Ok(Vec::new());
    }
    let stmt = txn.prepare_cached(&i.q(CANDIDATES)).await.map_err(fault)?;
    let rows = txn.query(&stmt, &[&served, &max, &CLAIM_TENANTS]).await.map_err(fault)?;
    let chosen = pick(&rows, &p, &mut running);
    if chosen.is_empty() {
        txn.commit().await.map_err(fault)?;
        return Ok(Vec::new());
    }
    let take = txn.prepare_cached(&take_sql).await.map_err(fault)?;
    let taken = txn.query(&take, &[&chosen, &started, &lease, &&*p.worker]).await.map_err(fault)?;
    txn.commit().await.map_err(fault)?;
    order(taken, &chosen)
}

// ---------------------------------------------------------------------------
// Changes of executions

/// Ends of running attempts as columns, one `unnest` update per kind.
#[derive(Default)]
pub(super) struct FinishBatch {
    /// For each row: (kind 0 finish / 1 retry / 2 release, id, want).
    order: Vec<(u8, String, bool)>,
    f_ids: Vec<String>,
    f_attempts: Vec<i32>,
    f_status: Vec<i16>,
    f_output: Vec<Option<String>>,
    f_error: Vec<Option<String>>,
    f_at: Vec<String>,
    r_ids: Vec<String>,
    r_attempts: Vec<i32>,
    r_error: Vec<String>,
    r_due: Vec<i64>,
    l_ids: Vec<String>,
    l_attempts: Vec<i32>,
}

impl FinishBatch {
    pub(super) fn encode(rows: Vec<Finish>) -> StoreResult<Self> {
        let mut b = FinishBatch::default();
        for f in rows {
            let attempt = i32::try_from(f.attempt).unwrap_or(i32::MAX);
            let kind = match f.change {
                Change::Finish { status, output, error, at } => {
                    b.f_ids.push(f.id.clone());
                    b.f_attempts.push(attempt);
                    b.f_status.push(code(status));
                    b.f_output.push(output.map(|v| json(&v)).transpose()?);
                    b.f_error.push(error.map(|v| json(&v)).transpose()?);
                    b.f_at.push(ts(at));
                    0
                }
                Change::Retry { error, due_ms } => {
                    b.r_ids.push(f.id.clone());
                    b.r_attempts.push(attempt);
                    b.r_error.push(json(&error)?);
                    b.r_due.push(due_ms);
                    1
                }
                Change::Release => {
                    b.l_ids.push(f.id.clone());
                    b.l_attempts.push(attempt);
                    2
                }
            };
            b.order.push((kind, f.id, f.want_record));
        }
        Ok(b)
    }
}

/// The rows of one kind that may apply: per execution, the first row (in
/// batch order) naming its running attempt — a duplicate result for the
/// same attempt is stale, as in the other stores.
fn applicable(columns: &str, names: &str) -> String {
    format!(
        "(SELECT DISTINCT ON (u.id) u.* FROM unnest({columns}) WITH ORDINALITY AS u({names}, ord)
           JOIN {{s}}.executions x ON x.id = u.id AND x.status = 1 AND x.attempt = u.attempt
           ORDER BY u.id, u.ord) AS u"
    )
}

fn finish_sql() -> String {
    format!(
        "UPDATE {{s}}.executions e SET status = u.status, output = u.output, error = u.error, completed_at = u.at,
            settle_seq = CASE WHEN u.status = 2 AND e.binds THEN NULL ELSE nextval('{{s}}.settles') END, lease_until_ms = NULL
        FROM {}
        WHERE e.id = u.id AND e.status = 1 AND e.attempt = u.attempt
        RETURNING u.ord",
        applicable("$1::text[], $2::int4[], $3::int2[], $4::text[], $5::text[], $6::text[]", "id, attempt, status, output, error, at")
    )
}

fn retry_sql() -> String {
    format!(
        "UPDATE {{s}}.executions e SET status = 0, error = u.error, due_ms = u.due_ms, ticket = nextval('{{s}}.tickets'),
            lvl = -(256 + e.priority), lease_until_ms = NULL
        FROM {}
        WHERE e.id = u.id AND e.status = 1 AND e.attempt = u.attempt
        RETURNING u.ord",
        applicable("$1::text[], $2::int4[], $3::text[], $4::int8[]", "id, attempt, error, due_ms")
    )
}

fn release_sql() -> String {
    format!(
        "UPDATE {{s}}.executions e SET status = 0, attempt = GREATEST(e.attempt - 1, 0), lease_until_ms = NULL,
            ticket = nextval('{{s}}.tickets'), lvl = -(256 + e.priority), due_ms = NULL
        FROM {}
        WHERE e.id = u.id AND e.status = 1 AND e.attempt = u.attempt
        RETURNING u.ord",
        applicable("$1::text[], $2::int4[]", "id, attempt")
    )
}

pub(super) async fn finish_many(i: Arc<Inner>, b: Arc<FinishBatch>) -> R<Vec<Finished>> {
    let want = |kind: u8| b.order.iter().any(|(k, _, w)| *k == kind && *w);
    let sql = |template: String, kind: u8| if want(kind) { i.q(&format!("{template}, {REC_E}")) } else { i.q(&template) };
    let mut c = i.client().await?;
    let kinds = [!b.f_ids.is_empty(), !b.r_ids.is_empty(), !b.l_ids.is_empty()];
    // (kind, ordinal within its kind) -> the record, if asked for
    let mut done: HashMap<(u8, i64), Option<BackgroundExecution>> = HashMap::new();
    let mut collect = |rows: Vec<Row>, kind: u8| -> R<()> {
        for r in rows {
            let rec = if want(kind) { Some(decode(&r, 1)?) } else { None };
            done.insert((kind, r.get(0)), rec);
        }
        Ok(())
    };
    let several = kinds.iter().filter(|k| **k).count() > 1;
    let statements: [(u8, String, Vec<&(dyn ToSql + Sync)>); 3] = [
        (0, sql(finish_sql(), 0), vec![&b.f_ids, &b.f_attempts, &b.f_status, &b.f_output, &b.f_error, &b.f_at]),
        (1, sql(retry_sql(), 1), vec![&b.r_ids, &b.r_attempts, &b.r_error, &b.r_due]),
        (2, sql(release_sql(), 2), vec![&b.l_ids, &b.l_attempts]),
    ];
    if several {
        let txn = c.transaction().await.map_err(fault)?;
        for (kind, sql, params) in statements.iter().filter(|(k, _, _)| kinds[*k as usize]) {
            collect(txn.query(sql, params).await.map_err(fault)?, *kind)?;
        }
        txn.commit().await.map_err(fault)?;
    } else if let Some((kind, sql, params)) = statements.iter().find(|(k, _, _)| kinds[*k as usize]) {
        let stmt = c.prepare_cached(sql).await.map_err(fault)?;
        collect(c.query(&stmt, params).await.map_err(fault)?, *kind)?;
    }
    let mut ord = [0i64; 3];
    Ok(b
        .order
        .iter()
        .map(|(kind, _, _)| {
            ord[*kind as usize] += 1;
            match done.remove(&(*kind, ord[*kind as usize])) {
                Some(rec) => Finished::Done(rec.map(Box::new)),
                None => Finished::Stale,
            }
        })
        .collect())
}

pub(super) async fn cancel(i: Arc<Inner>, id: String, at: Timestamp) -> R<CancelOutcome> {
    let c = i.client().await?;
    let sql = i.q(&format!(
        "UPDATE {{s}}.executions SET status = 4, completed_at = $2, settle_seq = nextval('{{s}}.settles'), ticket = 0, due_ms = NULL,
            lease_until_ms = NULL
         WHERE id = $1 AND status IN (0, 1) RETURNING {REC}"
    ));
    if let Some(r) = c.query_opt(&c.prepare_cached(&sql).await.map_err(fault)?, &[&id, &ts(at)]).await.map_err(fault)? {
        return Ok(CancelOutcome::Cancelled(Box::new(decode(&r, 0)?)));
    }
    let exists = c.query_opt(&c.prepare_cached(&i.q("SELECT 1 FROM {s}.executions WHERE id = $1")).await.map_err(fault)?, &[&id]).await.map_err(fault)?.is_some();
    Ok(if exists { CancelOutcome::AlreadyFinal } else { CancelOutcome::NotFound })
}

pub(super) async fn progress_many(i: Arc<Inner>, ids: Arc<Vec<String>>, attempts: Arc<Vec<i32>>, values: Arc<Vec<String>>) -> R<Vec<bool>> {
    let c = i.client().await?;
    let sql = i.q("UPDATE {s}.executions e SET progress = u.value
         FROM unnest($1::text[], $2::int4[], $3::text[]) WITH ORDINALITY AS u(id, attempt, value, n)
         WHERE e.id = u.id AND e.status = 1 AND e.attempt = u.attempt RETURNING u.n");
    let rows = c.query(&c.prepare_cached(&sql).await.map_err(fault)?, &[&*ids, &*attempts, &*values]).await.map_err(fault)?;
    let mut out = vec![false; ids.len()];
    for r in rows {
        if let Some(slot) = usize::try_from(r.get::<_, i64>(0) - 1).ok().and_then(|n| out.get_mut(n)) {
            *slot = true;
        }
    }
    Ok(out)
}

pub(super) async fn retry(i: Arc<Inner>, id: String, at: Timestamp) -> R<RetryOutcome> {
    let c = i.client().await?;
    let read = i.q(&format!("SELECT {REC} FROM {{s}}.executions WHERE id = $1"));
    let Some(row) = c.query_opt(&c.prepare_cached(&read).await.map_err(fault)?, &[&id]).await.map_err(fault)? else {
        return Ok(RetryOutcome::NotFound);
    };
    let rec = decode(&row, 0)?;
    if !retryable_status(rec.status) {
        return Ok(RetryOutcome::NotRetryable(rec.status));
    }
    // Deferred work goes back to the idle class, the rest to the immediate
    // one. The attempt number goes on; stalls start over. The status guard
    // makes a concurrent retry (or anything else) win once.
    let class = if rec.config.mode == crate::model::ExecutionMode::Deferred { CLASS_IDLE } else { CLASS_NOW };
    let sql = i.q(&format!(
        "UPDATE {{s}}.executions SET status = 0, stalls = 0, queued_ns = $2, started_at = NULL, completed_at = NULL,
            output = NULL, error = NULL, binding = NULL, applied = false, settle_seq = NULL, progress = NULL, worker = NULL,
            lease_until_ms = NULL, due_ms = NULL, ticket = nextval('{{s}}.tickets'), lvl = -($3 * 256 + priority)
         WHERE id = $1 AND status IN (3, 4, 5) RETURNING {REC}"
    ));
    match c.query_opt(&c.prepare_cached(&sql).await.map_err(fault)?, &[&id, &nanos(at), &class]).await.map_err(fault)? {
        Some(r) => Ok(RetryOutcome::Requeued(Box::new(decode(&r, 0)?))),
        None => {
            let now = c.query_opt(&c.prepare_cached(&read).await.map_err(fault)?, &[&id]).await.map_err(fault)?;
            match now {
                Some(r) => Ok(RetryOutcome::NotRetryable(decode(&r, 0)?.status)),
                None => Ok(RetryOutcome::NotFound),
            }
        }
    }
}

pub(super) async fn breakdown(i: Arc<Inner>) -> R<Vec<Tally>> {
    let c = i.client().await?;
    let sql = i.q(&columns::breakdown_sql("{s}.executions"));
    let rows = c.query(&c.prepare_cached(&sql).await.map_err(fault)?, &[]).await.map_err(fault)?;
    Ok(columns::tallies(rows.iter().map(|r| (r.get(0), r.get(1), i64::from(r.get::<_, i32>(2)), r.get(3)))))
}

pub(super) async fn bind(i: Arc<Inner>, id: String, result: String, success: bool) -> R<Option<BackgroundExecution>> {
    let c = i.client().await?;
    let sql = i.q(&format!(
        "UPDATE {{s}}.executions SET binding = $2, applied = $3, settle_seq = nextval('{{s}}.settles')
         WHERE id = $1 AND status = 2 AND binding IS NULL RETURNING {REC}"
    ));
    let row = c.query_opt(&c.prepare_cached(&sql).await.map_err(fault)?, &[&id, &result, &success]).await.map_err(fault)?;
    row.map(|r| decode(&r, 0)).transpose()
}

pub(super) async fn stage_due(i: Arc<Inner>, now_ms: i64) -> R<Staged> {
    let c = i.client().await?;
    let sql = i.q("WITH staged AS (
            UPDATE {s}.executions SET due_ms = NULL, ticket = nextval('{s}.tickets'), lvl = -(256 + priority)
            WHERE status = 0 AND due_ms IS NOT NULL AND due_ms <= $1 RETURNING 1)
        SELECT (SELECT count(*) FROM staged),
               (SELECT min(due_ms) FROM {s}.executions WHERE status = 0 AND due_ms IS NOT NULL AND due_ms > $1)");
    let s = c.prepare_cached(&sql).await.map_err(fault)?;
    let r = c.query_one(&s, &[&now_ms]).await.map_err(fault)?;
    Ok(Staged { promoted: r.get::<_, i64>(0) as usize, next_due_ms: r.get(1) })
}

pub(super) async fn heartbeat(i: Arc<Inner>, worker: String, ids: Vec<String>, until: i64) -> R<usize> {
    let c = i.client().await?;
    let n = c
        .execute(&c.prepare_cached(&i.q("UPDATE {s}.executions SET lease_until_ms = $1 WHERE id = ANY($2) AND status = 1 AND worker = $3")).await.map_err(fault)?, &[&until, &ids, &worker])
        .await
        .map_err(fault)?;
    Ok(n as usize)
}

pub(super) async fn renew(i: Arc<Inner>, worker: String, ids: Vec<String>, until: i64) -> R<Vec<String>> {
    let c = i.client().await?;
    let stmt = c
        .prepare_cached(&i.q("UPDATE {s}.executions SET lease_until_ms = $1 WHERE id = ANY($2) AND status = 1 AND worker = $3 RETURNING id"))
        .await
        .map_err(fault)?;
    let rows = c.query(&stmt, &[&until, &ids, &worker]).await.map_err(fault)?;
    Ok(rows.iter().map(|r| r.get(0)).collect())
}

pub(super) async fn rescue_expired(i: Arc<Inner>, now: Timestamp, max_stalls: u32) -> R<Vec<Rescued>> {
    let mut c = i.client().await?;
    let txn = c.transaction().await.map_err(fault)?;
    let expired = txn
        .query(&txn.prepare_cached(&i.q("SELECT id, attempt, stalls + 1 FROM {s}.executions WHERE status = 1 AND lease_until_ms < $1
                  ORDER BY lease_until_ms, id LIMIT $2 FOR UPDATE SKIP LOCKED")).await.map_err(fault)?,
            &[&millis(now), &RESCUE_BATCH],
        )
        .await
        .map_err(fault)?;
    if expired.is_empty() {
        txn.commit().await.map_err(fault)?;
        return Ok(Vec::new());
    }
    let order: Vec<String> = expired.iter().map(|r| r.get(0)).collect();
    let (mut again, mut fail_ids, mut fail_errors) = (Vec::new(), Vec::new(), Vec::new());
    for r in &expired {
        let (id, attempt, stalls): (String, i32, i32) = (r.get(0), r.get(1), r.get(2));
        let stalls_u = u32::try_from(stalls).unwrap_or(u32::MAX);
        if stalls_u > max_stalls {
            let error = stalled_error(u32::try_from(attempt).unwrap_or(0), stalls_u, max_stalls, millis(now));
            fail_ids.push(id);
            fail_errors.push(json(&error)?);
        } else {
            again.push(id);
        }
    }
    let mut by_id: HashMap<String, BackgroundExecution> = HashMap::new();
    if !again.is_empty() {
        let sql = i.q(&format!(
            "UPDATE {{s}}.executions SET status = 0, stalls = stalls + 1, lease_until_ms = NULL, ticket = nextval('{{s}}.tickets'),
                lvl = -(256 + priority), due_ms = NULL
             WHERE id = ANY($1) RETURNING id, {REC}"
        ));
        for r in txn.query(&txn.prepare_cached(&sql).await.map_err(fault)?, &[&again]).await.map_err(fault)? {
            by_id.insert(r.get(0), decode(&r, 1)?);
        }
    }
    if !fail_ids.is_empty() {
        let sql = i.q(&format!(
            "UPDATE {{s}}.executions e SET status = 3, stalls = e.stalls + 1, error = u.error, completed_at = $3,
                settle_seq = nextval('{{s}}.settles'), lease_until_ms = NULL
             FROM unnest($1::text[], $2::text[]) AS u(id, error) WHERE e.id = u.id RETURNING e.id, {REC_E}"
        ));
        for r in txn.query(&txn.prepare_cached(&sql).await.map_err(fault)?, &[&fail_ids, &fail_errors, &ts(now)]).await.map_err(fault)? {
            by_id.insert(r.get(0), decode(&r, 1)?);
        }
    }
    txn.commit().await.map_err(fault)?;
    Ok(order.into_iter().filter_map(|id| by_id.remove(&id)).map(|rec| Rescued { record: Box::new(rec) }).collect())
}

pub(super) async fn prune(i: Arc<Inner>, keep: usize) -> R<usize> {
    let mut c = i.client().await?;
    let txn = c.transaction().await.map_err(fault)?;
    let key = format!("enact_background:{}:prune", i.schema);
    // One pruner at a time: two would both drop the excess.
    let got: bool = txn.query_one("SELECT pg_try_advisory_xact_lock(hashtextextended($1, 7340))", &[&key]).await.map_err(fault)?.get(0);
    if !got {
        return Ok(0);
    }
    let settled: i64 = txn
        .query_one(&txn.prepare_cached(&i.q("SELECT count(*) FROM {s}.executions WHERE status >= 2 AND settle_seq IS NOT NULL")).await.map_err(fault)?, &[])
        .await
        .map_err(fault)?
        .get(0);
    let excess = settled - i64::try_from(keep).unwrap_or(i64::MAX);
    if excess <= 0 {
        txn.commit().await.map_err(fault)?;
        return Ok(0);
    }
    // Pruned executions still count in `counts`, as in the other stores.
    let sql = i.q("WITH victims AS (SELECT id FROM {s}.executions WHERE status >= 2 AND settle_seq IS NOT NULL ORDER BY settle_seq LIMIT $1),
            gone AS (DELETE FROM {s}.executions e USING victims v WHERE e.id = v.id RETURNING e.status),
            agg AS (SELECT status, count(*) AS n FROM gone GROUP BY status),
            kept AS (INSERT INTO {s}.pruned (status, n) SELECT status, n FROM agg
                     ON CONFLICT (status) DO UPDATE SET n = {s}.pruned.n + excluded.n)
        SELECT coalesce(sum(n), 0)::int8 FROM agg");
    let n: i64 = txn.query_one(&txn.prepare_cached(&sql).await.map_err(fault)?, &[&excess]).await.map_err(fault)?.get(0);
    txn.commit().await.map_err(fault)?;
    Ok(n as usize)
}

pub(super) async fn counts(i: Arc<Inner>) -> R<StatusCounts> {
    let c = i.client().await?;
    // Each status from its partial index.
    let sql = i.q("SELECT 0::int2, count(*) FROM {s}.executions WHERE status = 0 AND due_ms IS NULL
        UNION ALL SELECT 0::int2, count(*) FROM {s}.executions WHERE status = 0 AND due_ms IS NOT NULL
        UNION ALL SELECT 1::int2, count(*) FROM {s}.executions WHERE status = 1
        UNION ALL SELECT status, count(*) FROM {s}.executions WHERE status >= 2 GROUP BY status
        UNION ALL SELECT status, n FROM {s}.pruned");
    let mut out = StatusCounts::default();
    for r in c.query(&c.prepare_cached(&sql).await.map_err(fault)?, &[]).await.map_err(fault)? {
        *out.slot(status_of(r.get(0))?) += r.get::<_, i64>(1) as u64;
    }
    Ok(out)
}

// ---------------------------------------------------------------------------
// Engines and the callables they serve

pub(super) async fn publish(i: Arc<Inner>, worker: String, callables: Vec<String>, until: i64) -> R<()> {
    let c = i.client().await?;
    if callables.is_empty() {
        c.execute(&c.prepare_cached(&i.q("DELETE FROM {s}.engines WHERE worker = $1")).await.map_err(fault)?, &[&worker]).await.map_err(fault)?;
        return Ok(());
    }
    c.execute(&c.prepare_cached(&i.q("INSERT INTO {s}.engines (worker, callables, expires_ms) VALUES ($1, $2, $3)
              ON CONFLICT (worker) DO UPDATE SET callables = excluded.callables, expires_ms = excluded.expires_ms")).await.map_err(fault)?,
        &[&worker, &callables, &until],
    )
    .await
    .map_err(fault)?;
    // Engines that died long ago leave no rows behind.
    c.execute(&c.prepare_cached(&i.q("DELETE FROM {s}.engines WHERE expires_ms < $1")).await.map_err(fault)?, &[&(until - 3_600_000)]).await.map_err(fault)?;
    Ok(())
}

pub(super) async fn queued_of(i: Arc<Inner>, callables: Vec<String>) -> R<u64> {
    let c = i.client().await?;
    let sql = i.q("SELECT (SELECT count(*) FROM {s}.executions WHERE status = 0 AND due_ms IS NULL AND callable = ANY($1))
                        + (SELECT count(*) FROM {s}.executions WHERE status = 0 AND due_ms IS NOT NULL AND callable = ANY($1))");
    let n: i64 = c.query_one(&c.prepare_cached(&sql).await.map_err(fault)?, &[&callables]).await.map_err(fault)?.get(0);
    Ok(n as u64)
}

pub(super) async fn served(i: Arc<Inner>, names: Vec<String>, now: i64) -> R<Vec<bool>> {
    let c = i.client().await?;
    let rows = c
        .query(&c.prepare_cached(&i.q("SELECT DISTINCT n FROM {s}.engines, unnest(callables) AS n WHERE expires_ms > $1 AND n = ANY($2)")).await.map_err(fault)?, &[&now, &names])
        .await
        .map_err(fault)?;
    let live: HashSet<String> = rows.iter().map(|r| r.get(0)).collect();
    Ok(names.iter().map(|n| live.contains(n)).collect())
}

// ---------------------------------------------------------------------------
// Triggers

use crate::columns::{status_text, Edited, FireCommit, FireStep, TriggerRow};

fn trigger_row(r: &Row) -> R<TriggerRow> {
    Ok(TriggerRow { trigger: from_json("trigger", r.get::<_, &str>(0))?, def_version: r.get(1), cursor_ms: r.get(2), armed: r.get(3) })
}

pub(super) async fn get_trigger(i: &Inner, id: &str) -> R<Option<TriggerRow>> {
    let c = i.client().await?;
    let row = c.query_opt(&c.prepare_cached(&i.q("SELECT def, def_version, cursor_ms, armed FROM {s}.triggers WHERE id = $1")).await.map_err(fault)?, &[&id]).await.map_err(fault)?;
    row.as_ref().map(trigger_row).transpose()
}

pub(super) async fn list_triggers(i: &Inner) -> R<Vec<Trigger>> {
    let c = i.client().await?;
    let rows = c.query(&c.prepare_cached(&i.q("SELECT def FROM {s}.triggers ORDER BY seq")).await.map_err(fault)?, &[]).await.map_err(fault)?;
    rows.iter().map(|r| from_json("trigger", r.get::<_, &str>(0)).map_err(Fault::from)).collect()
}

/// Triggers of `tenant` (all without one) with their cursor and arming, in
/// registration order; the rest of a filter is the caller's.
pub(super) async fn trigger_states(i: &Inner, tenant: Option<String>) -> R<Vec<TriggerState>> {
    let c = i.client().await?;
    let stmt = c
        .prepare_cached(&i.q("SELECT def, cursor_ms, armed FROM {s}.triggers WHERE $1::text IS NULL OR tenant = $1 ORDER BY seq"))
        .await
        .map_err(fault)?;
    let rows = c.query(&stmt, &[&tenant]).await.map_err(fault)?;
    rows.iter()
        .map(|r| Ok(TriggerState { trigger: from_json("trigger", r.get::<_, &str>(0))?, cursor_ms: r.get(1), armed: r.get(2) }))
        .collect()
}

/// Locks the change log (so that its order is commit order: a reader that
/// saw change `n` has seen every change before it) and logs `id`.
async fn changed(i: &Inner, txn: &deadpool_postgres::Transaction<'_>, id: &str) -> R<()> {
    txn.batch_execute(&i.q("LOCK TABLE {s}.trigger_changes IN EXCLUSIVE MODE")).await.map_err(fault)?;
    let seq: i64 = txn
        .query_one(&txn.prepare_cached(&i.q("INSERT INTO {s}.trigger_changes (trigger_id) VALUES ($1) RETURNING seq")).await.map_err(fault)?, &[&id])
        .await
        .map_err(fault)?
        .get(0);
    if seq % 1000 == 0 {
        let floor = seq - CHANGE_LOG;
        txn.execute(&txn.prepare_cached(&i.q("DELETE FROM {s}.trigger_changes WHERE seq <= $1")).await.map_err(fault)?, &[&floor]).await.map_err(fault)?;
        txn.execute(&txn.prepare_cached(&i.q("UPDATE {s}.trigger_changes_floor SET floor = GREATEST(floor, $1)")).await.map_err(fault)?, &[&floor]).await.map_err(fault)?;
    }
    Ok(())
}

pub(super) async fn insert_trigger(i: Arc<Inner>, t: Arc<Trigger>) -> R<()> {
    let mut c = i.client().await?;
    let txn = c.transaction().await.map_err(fault)?;
    let n = txn
        .execute(&txn.prepare_cached(&i.q("INSERT INTO {s}.triggers (id, tenant, status, fire_count, def, def_version) VALUES ($1, $2, $3, $4, $5, 1)
                  ON CONFLICT (id) DO NOTHING")).await.map_err(fault)?,
            &[&t.trigger_id, &t.tenant_id, &status_text(&t), &(t.fire_count as i64), &json(&*t)?],
        )
        .await
        .map_err(fault)?;
    if n == 0 {
        return Err(StoreError::Conflict(format!("trigger {:?} already exists", t.trigger_id)).into());
    }
    changed(&i, &txn, &t.trigger_id).await?;
    txn.commit().await.map_err(fault)?;
    Ok(())
}


/// An edit to write: `next`, made from `read` at `def_version`.
pub(super) struct TriggerWrite {
    pub id: String,
    pub read: Trigger,
    pub next: Trigger,
    pub def_version: i64,
    pub disarm: bool,
}

pub(super) async fn update_trigger(i: Arc<Inner>, w: Arc<TriggerWrite>) -> R<Edited> {
    let mut c = i.client().await?;
    let txn = c.transaction().await.map_err(fault)?;
    let row = txn
        .query_opt(&txn.prepare_cached(&i.q("SELECT def, def_version, cursor_ms, armed FROM {s}.triggers WHERE id = $1 FOR UPDATE")).await.map_err(fault)?, &[&w.id])
        .await
        .map_err(fault)?;
    let Some(row) = row.as_ref().map(trigger_row).transpose()? else { return Ok(Edited::Gone) };
    if row.def_version != w.def_version {
        return Ok(Edited::Retry);
    }
    // What the edit left as it read it takes what fires made of it since.
    let now = &row.trigger;
    let mut next = w.next.clone();
    if next.fire_count == w.read.fire_count {
        next.fire_count = now.fire_count;
    }
    if next.last_fired_at == w.read.last_fired_at {
        next.last_fired_at = now.last_fired_at;
    }
    if next.status == w.read.status {
        next.status = now.status;
    }
    txn.execute(&txn.prepare_cached(&i.q("UPDATE {s}.triggers SET def = $1, tenant = $2, status = $3, fire_count = $4, def_version = def_version + 1,
                armed = CASE WHEN $5 THEN false ELSE armed END
              WHERE id = $6")).await.map_err(fault)?,
        &[&json(&next)?, &next.tenant_id, &status_text(&next), &(next.fire_count as i64), &w.disarm, &w.id],
    )
    .await
    .map_err(fault)?;
    changed(&i, &txn, &w.id).await?;
    txn.commit().await.map_err(fault)?;
    Ok(Edited::Written(Box::new(next)))
}

pub(super) async fn remove_trigger(i: Arc<Inner>, id: String) -> R<bool> {
    let mut c = i.client().await?;
    let txn = c.transaction().await.map_err(fault)?;
    let n = txn.execute(&txn.prepare_cached(&i.q("DELETE FROM {s}.triggers WHERE id = $1")).await.map_err(fault)?, &[&id]).await.map_err(fault)?;
    if n == 0 {
        return Ok(false);
    }
    txn.execute(&txn.prepare_cached(&i.q("DELETE FROM {s}.webhook_ids WHERE trigger_id = $1")).await.map_err(fault)?, &[&id]).await.map_err(fault)?;
    changed(&i, &txn, &id).await?;
    txn.commit().await.map_err(fault)?;
    Ok(true)
}

pub(super) async fn trigger_changes(i: Arc<Inner>, since: u64) -> R<TriggerChanges> {
    let c = i.client().await?;
    let since_i = i64::try_from(since).unwrap_or(i64::MAX);
    // One statement, one snapshot: the floor and the changes after `since`.
    let rows = c
        .query(&c.prepare_cached(&i.q("SELECT f.floor, c.seq, c.trigger_id FROM {s}.trigger_changes_floor f
                  LEFT JOIN {s}.trigger_changes c ON c.seq > $1 ORDER BY c.seq")).await.map_err(fault)?,
            &[&since_i],
        )
        .await
        .map_err(fault)?;
    let floor: i64 = rows.first().map_or(0, |r| r.get(0));
    let mut seq = since;
    let mut seen = HashSet::new();
    let mut ids = Vec::new();
    for r in &rows {
        if let (Some(s), Some(id)) = (r.get::<_, Option<i64>>(1), r.get::<_, Option<String>>(2)) {
            seq = seq.max(s as u64);
            if seen.insert(id.clone()) {
                ids.push(id);
            }
        }
    }
    Ok(TriggerChanges { seq, ids, complete: since_i >= floor })
}



/// The fire step, one transaction holding the trigger's row lock: the
/// other stores' gates in the same order, then the count, cursor, arming,
/// webhook id and the execution written together.
pub(super) async fn fire(i: Arc<Inner>, f: Arc<FireCommit>) -> R<FireStep> {
    let mut c = i.client().await?;
    let txn = c.transaction().await.map_err(fault)?;
    let row = txn
        .query_opt(&txn.prepare_cached(&i.q("SELECT def, def_version, cursor_ms, armed FROM {s}.triggers WHERE id = $1 FOR UPDATE")).await.map_err(fault)?, &[&f.trigger_id])
        .await
        .map_err(fault)?;
    let Some(mut row) = row.as_ref().map(trigger_row).transpose()? else { return Ok(FireStep::Done(Fire::Gone)) };
    if row.def_version != f.def_version {
        return Ok(FireStep::Rebuild);
    }
    // The cursor and arming are written with the trigger, once, below.
    let write_state = i.q("UPDATE {s}.triggers SET cursor_ms = $1, armed = $2 WHERE id = $3");
    let (passes, state_changed) = pass_fire_gate(f.gate, &mut row.cursor_ms, &mut row.armed);
    if !passes {
        // A tick already taken changed nothing; a report that did not
        // cross still records whether it held.
        if state_changed {
            let stmt = txn.prepare_cached(&write_state).await.map_err(fault)?;
            txn.execute(&stmt, &[&row.cursor_ms, &row.armed, &f.trigger_id]).await.map_err(fault)?;
            txn.commit().await.map_err(fault)?;
        }
        return Ok(FireStep::Done(Fire::Skipped));
    }
    if let Some((msg, now_secs, _)) = &f.webhook {
        txn.execute(&txn.prepare_cached(&i.q("DELETE FROM {s}.webhook_ids WHERE trigger_id = $1 AND expires_secs <= $2")).await.map_err(fault)?, &[&f.trigger_id, now_secs])
            .await
            .map_err(fault)?;
        let r = txn
            .query_one(&txn.prepare_cached(&i.q("SELECT EXISTS (SELECT 1 FROM {s}.webhook_ids WHERE trigger_id = $1 AND msg_id = $2),
                             (SELECT count(*) FROM {s}.webhook_ids WHERE trigger_id = $1),
                             (SELECT min(expires_secs) FROM {s}.webhook_ids WHERE trigger_id = $1)")).await.map_err(fault)?,
                &[&f.trigger_id, msg],
            )
            .await
            .map_err(fault)?;
        let (seen, held, oldest): (bool, i64, Option<i64>) = (r.get(0), r.get(1), r.get(2));
        if seen {
            txn.commit().await.map_err(fault)?;
            return Ok(FireStep::Done(Fire::Replay));
        }
        if held as usize >= i.options.replay_capacity {
            txn.commit().await.map_err(fault)?;
            return Ok(FireStep::Done(Fire::ReplayFull { until_secs: oldest.unwrap_or(*now_secs) }));
        }
    }
    let (gate, changed_status) = apply_gate(&mut row.trigger, f.now);
    let write_trigger = txn
        .prepare_cached(&i.q("UPDATE {s}.triggers SET def = $1, status = $2, fire_count = $3, cursor_ms = $4, armed = $5 WHERE id = $6"))
        .await
        .map_err(fault)?;
    let def = json(&row.trigger)?;
    let status = status_text(&row.trigger);
    let count = row.trigger.fire_count as i64;
    let trigger_params: [&(dyn ToSql + Sync); 6] = [&def, &status, &count, &row.cursor_ms, &row.armed, &f.trigger_id];
    if let Err(why) = gate {
        if changed_status || state_changed {
            txn.execute(&write_trigger, &trigger_params).await.map_err(fault)?;
        }
        txn.commit().await.map_err(fault)?;
        return Ok(FireStep::Done(Fire::Blocked { trigger: Arc::new(row.trigger), why }));
    }
    let final_record = f.new.ready == Readiness::Final;
    let record = (f.want_record || final_record).then(|| f.new.record.clone());
    let execution_id = f.new.record.execution_id.clone();
    let insert = txn.prepare_cached(&i.q(INSERT)).await.map_err(fault)?;
    // Sent together (one round trip): the execution and the trigger's count.
    let batch = InsertBatch::encode(vec![f.new.clone()])?;
    let (inserted, _) =
        futures_util::future::try_join(txn.query(&insert, &batch.params()), txn.execute(&write_trigger, &trigger_params)).await.map_err(fault)?;
    if inserted.is_empty() {
        // Rolled back: the fire and its execution go together.
        return Err(StoreError::Conflict(format!("execution {execution_id:?} already exists")).into());
    }
    if let Some((msg, now_secs, expires_secs)) = &f.webhook {
        let expires = now_secs + (expires_secs - now_secs).max(1);
        txn.execute(&txn.prepare_cached(&i.q("INSERT INTO {s}.webhook_ids (trigger_id, msg_id, expires_secs) VALUES ($1, $2, $3)
                  ON CONFLICT (trigger_id, msg_id) DO UPDATE SET expires_secs = excluded.expires_secs")).await.map_err(fault)?,
            &[&f.trigger_id, msg, &expires],
        )
        .await
        .map_err(fault)?;
    }
    txn.commit().await.map_err(fault)?;
    Ok(FireStep::Done(Fire::Fired { trigger: Arc::new(row.trigger), execution_id, record }))
}
