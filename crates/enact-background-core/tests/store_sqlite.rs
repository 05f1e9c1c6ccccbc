//! What the SQLite driver does beyond the conformance suite: everything
//! survives a reopen, executions left running are recovered as stalls,
//! faulty files are refused with ENACT_STORE, concurrent calls share
//! commits, memory does not grow with the backlog, and the executor runs
//! work over it end to end.

mod common;
mod conformance;

use std::sync::Arc;

use chrono::{Duration, Utc};
use enact_background_core::clock::millis;
use enact_background_core::error::{EngineError, ErrorCode};
use enact_background_core::model::*;
use enact_background_core::sqlite::{SqliteOptions, SqliteStore, Synchronous, SCHEMA_VERSION};
use enact_background_core::store::*;
use serde_json::json;

fn exec(id: &str, tenant: &str) -> BackgroundExecution {
    serde_json::from_value(json!({
        "executionId": id, "tenantId": tenant, "callableName": "work", "status": "queued", "queuedAt": Utc::now(),
    }))
    .unwrap()
}

fn new(e: BackgroundExecution, ready: Readiness) -> NewExecution {
    NewExecution::new(e, ready)
}

fn limits() -> Arc<Limits> {
    Arc::new(Limits { tenant: None, callables: [("work".to_string(), None)].into_iter().collect() })
}

async fn claim(d: &SqliteStore, max: usize) -> Vec<BackgroundExecution> {
    let now = Utc::now();
    d.claim(ClaimParams { worker: "w".into(), max, now, lease_until: now + Duration::seconds(30), limits: limits() }).await.unwrap()
}

fn open(path: &std::path::Path) -> SqliteStore {
    SqliteStore::open(path, SqliteOptions::default()).expect("opens")
}

fn trigger(id: &str, kind: &str, condition: serde_json::Value) -> Trigger {
    let mut def = json!({"triggerId": id, "tenantId": "t", "type": kind, "condition": condition, "action": {"callableName": "work"}});
    if kind == "webhook" {
        def["allowUnsigned"] = json!(true);
    }
    enact_background_core::validate::trigger_definition(&def, Utc::now()).unwrap()
}

fn build(t: &Trigger) -> NewExecution {
    let mut e = exec(&enact_background_core::ids::new_id("exec_"), &t.tenant_id);
    e.trigger_id = Some(t.trigger_id.clone());
    new(e, Readiness::Now)
}

async fn fire(d: &SqliteStore, id: &str, gate: FireGate, webhook: Option<WebhookMessage<'_>>) -> Fire {
    d.fire(FireParams { trigger_id: id, now: Utc::now(), gate, build: &build, want_record: false, webhook }).await.unwrap()
}

#[tokio::test]
async fn a_reopened_file_keeps_triggers_their_state_and_executions() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.db");
    let due = millis(Utc::now()) + 60_000;
    let now_secs = Utc::now().timestamp();
    let hook = WebhookMessage { id: "msg_1", now_secs, expires_secs: now_secs + 600 };
    let (seq, retried_due) = {
        let d = open(&path);
        // Queued, delayed, finished with a result, retried with backoff.
        let mut deep = json!("leaf");
        for _ in 0..120 {
            deep = json!([deep]);
        }
        let rows = vec![
            new(exec("done", "a"), Readiness::Now),
            new(exec("retried", "a"), Readiness::Now),
            new(exec("queued", "a"), Readiness::Now),
            new(exec("delayed", "b"), Readiness::At(due)),
        ];
        assert_eq!(d.insert_many(rows).await.unwrap(), vec![Inserted::Ok; 4]);
        let ids: Vec<String> = claim(&d, 2).await.into_iter().map(|e| e.execution_id).collect();
        assert_eq!(ids, ["done", "retried"]);
        let at = Utc::now();
        let retried_due = millis(at) + 30_000;
        let out = d
            .finish_many(vec![
                Finish { id: "done".into(), attempt: 1, change: Change::Finish { status: BackgroundExecutionStatus::Completed, output: Some(deep.clone()), error: None, at }, want_record: false },
                Finish { id: "retried".into(), attempt: 1, change: Change::Retry { error: conformance::error(1), due_ms: retried_due }, want_record: false },
            ])
            .await
            .unwrap();
        assert!(out.iter().all(|f| matches!(f, Finished::Done(_))));
        let mut m = trigger("trigger_m", "manual", json!({}));
        m.max_fires = Some(3);
        d.insert_trigger(m).await.unwrap();
        d.insert_trigger(trigger("trigger_s", "schedule", json!({"intervalSeconds": 1}))).await.unwrap();
        d.insert_trigger(trigger("trigger_t", "threshold", json!({"metricName": "m", "thresholdValue": 10, "thresholdOperator": "gt"}))).await.unwrap();
        d.insert_trigger(trigger("trigger_w", "webhook", json!({}))).await.unwrap();
        assert!(matches!(fire(&d, "trigger_m", FireGate::Plain, None).await, Fire::Fired { .. }));
        assert!(matches!(fire(&d, "trigger_m", FireGate::Plain, None).await, Fire::Fired { .. }));
        assert!(matches!(fire(&d, "trigger_s", FireGate::Tick(5_000), None).await, Fire::Fired { .. }));
        assert!(matches!(fire(&d, "trigger_t", FireGate::Crossing { holds: true }, None).await, Fire::Fired { .. }));
        assert!(matches!(fire(&d, "trigger_w", FireGate::Plain, Some(hook)).await, Fire::Fired { .. }));
        (d.trigger_changes(0).await.unwrap().seq, retried_due)
    };
    let d = open(&path);
    assert_eq!(d.recovery().requeued + d.recovery().failed, 0, "nothing was running");
    // Triggers: counts, cursor, arming, webhook ids, change log.
    let m = d.get_trigger("trigger_m").await.unwrap().unwrap();
    assert_eq!((m.fire_count, m.status), (2, TriggerStatus::Active));
    assert!(m.last_fired_at.is_some());
    assert!(matches!(fire(&d, "trigger_m", FireGate::Plain, None).await, Fire::Fired { ref trigger, .. } if trigger.status == TriggerStatus::Fired));
    assert!(matches!(fire(&d, "trigger_s", FireGate::Tick(5_000), None).await, Fire::Skipped), "the tick cursor survived");
    assert!(matches!(fire(&d, "trigger_t", FireGate::Crossing { holds: true }, None).await, Fire::Skipped), "the arming survived");
    assert!(matches!(fire(&d, "trigger_w", FireGate::Plain, Some(hook)).await, Fire::Replay), "the webhook id survived");
    let all = d.list_triggers(&TriggerFilter::default()).await.unwrap();
    assert_eq!(all.iter().map(|t| t.trigger_id.as_str()).collect::<Vec<_>>(), ["trigger_m", "trigger_s", "trigger_t", "trigger_w"]);
    let changes = d.trigger_changes(0).await.unwrap();
    assert_eq!(changes.seq, seq, "the change sequence continues");
    // Executions: the result (nested deeper than one JSON document could
    // hold with the record around it), the retry's attempt and due time,
    // queued and delayed work.
    let done = d.get("done").await.unwrap().unwrap();
    assert_eq!(done.status, BackgroundExecutionStatus::Completed);
    let mut deep = json!("leaf");
    for _ in 0..120 {
        deep = json!([deep]);
    }
    assert_eq!(done.output, Some(deep));
    let retried = d.get("retried").await.unwrap().unwrap();
    assert_eq!((retried.status, retried.attempt, retried.error.as_ref().map(|e| e.attempt)), (BackgroundExecutionStatus::Queued, 1, Some(1)));
    let ids: Vec<String> = claim(&d, 10).await.into_iter().map(|e| e.execution_id).collect();
    assert_eq!(ids.len(), 7, "queued work and the executions of the six fires (five before reopening, one after): {ids:?}");
    assert!(ids.contains(&"queued".to_string()) && !ids.contains(&"delayed".to_string()) && !ids.contains(&"retried".to_string()));
    assert_eq!(d.stage_due(retried_due - 1).await.unwrap().next_due_ms, Some(retried_due), "the retry keeps its backoff");
    assert_eq!(d.stage_due(due).await.unwrap().promoted, 2, "delayed work keeps its due time");
    let again = claim(&d, 10).await;
    let retried = again.iter().find(|e| e.execution_id == "retried").unwrap();
    assert_eq!(retried.attempt, 2, "the retry keeps its attempt count");
    assert!(again.iter().any(|e| e.execution_id == "delayed"));
}

#[tokio::test]
async fn work_running_when_the_process_died_runs_again_then_fails_past_max_stalls() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.db");
    {
        let d = open(&path);
        d.insert_many(vec![new(exec("e", "a"), Readiness::Now), new(exec("f", "a"), Readiness::Now)]).await.unwrap();
        assert_eq!(claim(&d, 1).await[0].execution_id, "e");
        // The store closes with `e` running, as if its process died.
    }
    let d = open(&path);
    assert_eq!((d.recovery().requeued, d.recovery().failed), (1, 0));
    let e = d.get("e").await.unwrap().unwrap();
    assert_eq!((e.status, e.attempt), (BackgroundExecutionStatus::Queued, 1), "queued again, its attempt used");
    let again = claim(&d, 2).await;
    let ids: Vec<_> = again.iter().map(|e| (e.execution_id.as_str(), e.attempt)).collect();
    assert_eq!(ids, [("f", 1), ("e", 2)], "it runs again, queued last as a rescued attempt is, its attempt count kept");
    d.finish_many(vec![Finish { id: "f".into(), attempt: 1, change: Change::Release, want_record: false }]).await.unwrap();
    drop(d);
    let d = open(&path);
    assert_eq!((d.recovery().requeued, d.recovery().failed), (0, 1));
    let e = d.get("e").await.unwrap().unwrap();
    assert_eq!(e.status, BackgroundExecutionStatus::Failed);
    let error = e.error.unwrap();
    assert_eq!(error.code.as_deref(), Some("ENACT_STALLED"));
    assert!(error.message.contains("interrupted") && error.message.contains("stopped 2 times"), "{}", error.message);
    assert_eq!(d.get("f").await.unwrap().unwrap().status, BackgroundExecutionStatus::Queued, "queued work is untouched");
    drop(d);
    // With maxStalls 0 the first interruption fails it.
    {
        let d = open(&path);
        assert_eq!(claim(&d, 1).await[0].execution_id, "f");
    }
    let d = SqliteStore::open(&path, SqliteOptions { max_stalls: 0, ..SqliteOptions::default() }).unwrap();
    assert_eq!(d.recovery().failed, 1);
    assert!(d.get("f").await.unwrap().unwrap().error.unwrap().message.contains("stopped 1 time "));
}

#[test]
fn a_schema_from_a_newer_version_is_refused_naming_both_versions() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.db");
    drop(open(&path));
    let c = rusqlite::Connection::open(&path).unwrap();
    c.execute_batch(&format!("PRAGMA user_version = {}", SCHEMA_VERSION + 7)).unwrap();
    drop(c);
    let msg = store_message(SqliteStore::open(&path, SqliteOptions::default()));
    assert!(msg.contains(&format!("version {}", SCHEMA_VERSION + 7)) && msg.contains(&format!("up to {SCHEMA_VERSION}")), "{msg}");
    assert!(msg.contains("s.db"), "names the file: {msg}");
}

#[test]
fn a_file_that_is_not_a_store_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let garbage = dir.path().join("garbage.db");
    std::fs::write(&garbage, "this is not a SQLite database, only some text long enough to look like a header ".repeat(100)).unwrap();
    let msg = store_message(SqliteStore::open(&garbage, SqliteOptions::default()));
    assert!(msg.contains("not a SQLite database") && msg.contains("garbage.db"), "{msg}");

    let foreign = dir.path().join("foreign.db");
    rusqlite::Connection::open(&foreign).unwrap().execute_batch("CREATE TABLE users (id INTEGER)").unwrap();
    let msg = store_message(SqliteStore::open(&foreign, SqliteOptions::default()));
    assert!(msg.contains("something else"), "{msg}");
}

#[test]
fn a_file_open_elsewhere_is_refused_until_it_is_closed() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.db");
    let first = open(&path);
    let msg = store_message(SqliteStore::open(&path, SqliteOptions::default()));
    assert!(msg.contains("already open") && msg.contains("s.db"), "{msg}");
    drop(first);
    open(&path);
}

#[tokio::test]
async fn close_commits_what_was_asked_then_releases_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.db");
    let first = open(&path);
    // Asked before the close, not awaited: still committed.
    let insert = first.insert_many(vec![new(exec("e1", "t"), Readiness::Now)]);
    first.close().await.unwrap();
    assert_eq!(insert.await.unwrap(), vec![Inserted::Ok]);
    let after = first.get("e1").await.err().map(EngineError::from).expect("a closed store refuses calls");
    assert_eq!(after.code, ErrorCode::Store);
    assert!(after.message.contains("closed"), "{}", after.message);
    first.close().await.unwrap(); // twice: nothing left to do
    // A call queued behind a close is answered at once, not at its deadline.
    let slow = SqliteStore::open(dir.path().join("slow.db"), SqliteOptions { call_timeout: std::time::Duration::from_secs(3600), ..SqliteOptions::default() }).unwrap();
    let closing = slow.close();
    let behind = slow.get("e1");
    let answered = tokio::time::timeout(std::time::Duration::from_secs(60), behind).await.expect("answered before its deadline");
    if let Err(e) = answered {
        assert!(EngineError::from(e).message.contains("closed"));
    }
    closing.await.unwrap();
    // The lock is released while `first` still exists.
    let second = open(&path);
    assert_eq!(second.get("e1").await.unwrap().map(|e| e.execution_id), Some("e1".into()));
}

#[test]
fn an_unwritable_place_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let msg = store_message(SqliteStore::open(dir.path().join("missing/dir/s.db"), SqliteOptions::default()));
    assert!(msg.contains("cannot create its lock file"), "{msg}");

    // The lock file can be made, the database file cannot (a directory
    // stands where it would be).
    let taken = dir.path().join("taken.db");
    std::fs::create_dir(&taken).unwrap();
    let msg = store_message(SqliteStore::open(&taken, SqliteOptions::default()));
    assert!(msg.contains("cannot be written") && msg.contains("taken.db"), "{msg}");

    // A read-only directory — when this process is refused writing there
    // (a root process is not, and then nothing is refused to check).
    use std::os::unix::fs::PermissionsExt;
    let ro = dir.path().join("ro");
    std::fs::create_dir(&ro).unwrap();
    std::fs::set_permissions(&ro, std::fs::Permissions::from_mode(0o555)).unwrap();
    if std::fs::write(ro.join("probe"), "").is_err() {
        let msg = store_message(SqliteStore::open(ro.join("s.db"), SqliteOptions::default()));
        assert!(msg.contains("s.db") && msg.contains("is the directory writable?"), "{msg}");
    }
    std::fs::set_permissions(&ro, std::fs::Permissions::from_mode(0o755)).unwrap();
}

/// The message of an `ENACT_STORE` answer (or refusal to open).
fn store_message<T>(r: Result<T, StoreError>) -> String {
    let engine: EngineError = r.err().expect("answered ENACT_STORE").into();
    assert_eq!(engine.code, ErrorCode::Store);
    engine.message
}

/// Another connection holds the file's write lock longer than a call may
/// wait (the store's busy timeout is longer still): the call is answered
/// at its deadline and never runs, even once the lock is released; the
/// store then serves calls again.
#[tokio::test]
async fn a_call_behind_a_locked_file_is_answered_at_its_deadline_and_never_runs() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.db");
    let options = SqliteOptions { call_timeout: std::time::Duration::from_millis(200), busy_timeout: std::time::Duration::from_secs(600), ..SqliteOptions::default() };
    let d = SqliteStore::open(&path, options).unwrap();
    let other = rusqlite::Connection::open(&path).unwrap();
    other.execute_batch("BEGIN IMMEDIATE").unwrap();
    let msg = store_message(d.insert_many(vec![new(exec("late", "t"), Readiness::Now)]).await);
    assert!(msg.contains("did not answer within 200 ms") && msg.contains("was not run") && msg.contains("s.db"), "{msg}");
    other.execute_batch("ROLLBACK").unwrap();
    assert!(d.get("late").await.unwrap().is_none(), "a call answered 'not run' did not run once the writer could");
    assert_eq!(d.insert_many(vec![new(exec("next", "t"), Readiness::Now)]).await.unwrap(), vec![Inserted::Ok]);
    assert_eq!(d.counts().await.unwrap().queued, 1);
}

/// A writer stuck in a commit (here held before it by a test hook, as
/// blocked disk I/O would hold it): the call it is committing is answered
/// at its deadline, saying its outcome is unknown — and it does commit
/// once the writer goes on, which is why the answer says so; calls queued
/// behind it, a fire included (bounded as a whole), are answered "not
/// run" and never run.
#[tokio::test]
async fn a_writer_stuck_mid_commit_answers_at_the_deadline_and_says_what_is_unknown() {
    let dir = tempfile::tempdir().unwrap();
    let options = SqliteOptions { call_timeout: std::time::Duration::from_millis(200), ..SqliteOptions::default() };
    let d = SqliteStore::open(dir.path().join("s.db"), options).unwrap();
    d.insert_trigger(trigger("trigger_m", "manual", json!({}))).await.unwrap();
    let hold = d.hold_writer_before_commit();
    let running = d.insert_many(vec![new(exec("ran", "t"), Readiness::Now)]);
    hold.wait_until_held();
    let msg = store_message(running.await);
    assert!(msg.contains("did not answer within 200 ms") && msg.contains("outcome is unknown") && msg.contains("may still commit"), "{msg}");
    let msg = store_message(d.insert_many(vec![new(exec("queued", "t"), Readiness::Now)]).await);
    assert!(msg.contains("was not run"), "{msg}");
    let fired = d.fire(FireParams { trigger_id: "trigger_m", now: Utc::now(), gate: FireGate::Plain, build: &build, want_record: false, webhook: None }).await;
    assert!(store_message(fired).contains("was not run"));
    drop(hold);
    assert!(d.get("ran").await.unwrap().is_some(), "the call whose outcome was unknown committed when the writer went on");
    assert!(d.get("queued").await.unwrap().is_none(), "the call answered 'not run' never ran");
    assert_eq!(d.get_trigger("trigger_m").await.unwrap().unwrap().fire_count, 0, "nor did the fire");
    assert_eq!(d.counts().await.unwrap().queued, 1);
}

/// A future dropped before the writer reached its call (its caller was
/// told nothing, or was told it failed, as `ready_now` does): the call is
/// not run.
#[tokio::test]
async fn a_call_dropped_before_the_writer_reached_it_is_not_run() {
    let dir = tempfile::tempdir().unwrap();
    let d = open(&dir.path().join("s.db"));
    let hold = d.hold_writer_before_commit();
    let first = d.insert_many(vec![new(exec("first", "t"), Readiness::Now)]);
    hold.wait_until_held();
    drop(d.insert_many(vec![new(exec("dropped", "t"), Readiness::Now)]));
    drop(hold);
    assert_eq!(first.await.unwrap(), vec![Inserted::Ok]);
    assert!(d.get("dropped").await.unwrap().is_none());
}

fn big(id: &str) -> NewExecution {
    let mut e = exec(id, "t");
    e.input = Some("x".repeat(64 * 1024));
    new(e, Readiness::Now)
}

/// The disk fills (SQLite's `max_page_count` on the writer's connection
/// stands in for it): inserts, trigger registrations and fires answer
/// ENACT_STORE saying the disk is full, reads still answer, calls that
/// fit still commit; once space returns the same store takes every call
/// again, and a reopen finds exactly what was acknowledged.
#[tokio::test]
async fn a_full_disk_refuses_writes_keeps_what_was_acknowledged_and_recovers_when_space_returns() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.db");
    let d = open(&path);
    d.insert_many((0..10).map(|i| new(exec(&format!("kept{i}"), "t"), Readiness::Now)).collect()).await.unwrap();
    d.insert_trigger(trigger("trigger_m", "manual", json!({}))).await.unwrap();
    assert!(matches!(fire(&d, "trigger_m", FireGate::Plain, None).await, Fire::Fired { .. }));

    let in_use = d.set_max_page_count(1).await.unwrap();
    assert!(in_use > 1, "the limit is the pages in use: {in_use}");
    let msg = store_message(d.insert_many((0..20).map(|i| big(&format!("lost{i}"))).collect()).await);
    assert!(msg.contains("the disk is full") && msg.contains("sqlite store"), "{msg}");
    let mut t = trigger("trigger_big", "manual", json!({}));
    t.description = Some("d".repeat(64 * 1024));
    let msg = store_message(d.insert_trigger(t.clone()).await);
    assert!(msg.contains("the disk is full"), "{msg}");
    let build_big = |t: &Trigger| {
        let mut n = build(t);
        n.record.input = Some("x".repeat(64 * 1024));
        n
    };
    let fired = d.fire(FireParams { trigger_id: "trigger_m", now: Utc::now(), gate: FireGate::Plain, build: &build_big, want_record: false, webhook: None }).await;
    let msg = store_message(fired);
    assert!(msg.contains("the disk is full"), "{msg}");
    // Calls of one batch, some too large for what is left: each answer
    // says what happened (checked after the reopen below).
    let calls: Vec<_> = (0..16).map(|i| (i, d.insert_many(vec![if i % 2 == 0 { big(&format!("mixed{i}")) } else { new(exec(&format!("mixed{i}"), "t"), Readiness::Now) }]))).collect();
    let mut acknowledged = Vec::new();
    for (i, call) in calls {
        match call.await {
            Ok(v) => {
                assert_eq!(v, vec![Inserted::Ok]);
                acknowledged.push(format!("mixed{i}"));
            }
            Err(e) => {
                let msg = store_message::<()>(Err(e));
                assert!(msg.contains("the disk is full"), "{msg}");
            }
        }
    }
    assert!(acknowledged.iter().all(|id| !id.ends_with(&['0', '2', '4', '6', '8'][..])), "no large insert fit: {acknowledged:?}");
    // Reads still answer; the refused fire counted nothing.
    assert_eq!(d.get_trigger("trigger_m").await.unwrap().unwrap().fire_count, 1);
    assert_eq!(d.counts().await.unwrap().queued, 11 + acknowledged.len() as u64);

    // Space returns: the same store takes every call again.
    d.set_max_page_count(1 << 30).await.unwrap();
    assert_eq!(d.insert_many((0..20).map(|i| big(&format!("after{i}"))).collect()).await.unwrap(), vec![Inserted::Ok; 20]);
    d.insert_trigger(t).await.unwrap();
    assert!(matches!(fire(&d, "trigger_m", FireGate::Plain, None).await, Fire::Fired { .. }));
    let order: Vec<String> = claim(&d, 1000).await.into_iter().map(|e| e.execution_id).collect();
    assert_eq!(order.len(), 11 + acknowledged.len() + 21, "{order:?}");
    assert_eq!(order[..10], (0..10).map(|i| format!("kept{i}")).collect::<Vec<_>>()[..], "claims keep insertion order across the refusals");
    drop(d);

    let d = open(&path);
    for i in 0..10 {
        assert!(d.get(&format!("kept{i}")).await.unwrap().is_some(), "acknowledged before the disk filled");
    }
    for i in 0..20 {
        assert!(d.get(&format!("lost{i}")).await.unwrap().is_none(), "refused, so not written");
        assert!(d.get(&format!("after{i}")).await.unwrap().is_some(), "acknowledged after space returned");
    }
    for i in 0..16 {
        let id = format!("mixed{i}");
        assert_eq!(d.get(&id).await.unwrap().is_some(), acknowledged.contains(&id), "{id}: stored if and only if acknowledged");
    }
    assert_eq!(d.get_trigger("trigger_m").await.unwrap().unwrap().fire_count, 2, "the refused fire left no count");
    assert!(d.get_trigger("trigger_big").await.unwrap().is_some());
    let claimed = 11 + acknowledged.len() + 21;
    assert_eq!(d.recovery().requeued, claimed, "every claim was stored");
    assert_eq!(d.counts().await.unwrap().queued, claimed as u64);
}

/// Many concurrent calls share few transactions: one commit per batch of
/// queued requests, not one per call.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_calls_share_commits() {
    let dir = tempfile::tempdir().unwrap();
    let d = Arc::new(SqliteStore::open(dir.path().join("s.db"), SqliteOptions { synchronous: Synchronous::Full, ..SqliteOptions::default() }).unwrap());
    let before = d.stats().commits.load(std::sync::atomic::Ordering::Relaxed);
    const N: usize = 2_000;
    let calls: Vec<_> = (0..N)
        .map(|i| {
            let d = d.clone();
            tokio::spawn(async move { d.insert_many(vec![new(exec(&format!("e{i}"), "t"), Readiness::Now)]).await.unwrap() })
        })
        .collect();
    for c in calls {
        assert_eq!(c.await.unwrap(), vec![Inserted::Ok]);
    }
    let commits = d.stats().commits.load(std::sync::atomic::Ordering::Relaxed) - before;
    assert_eq!(d.counts().await.unwrap().queued, N as u64, "every acknowledged insert is there");
    assert!(commits * 10 <= N as u64, "{N} concurrent inserts took {commits} commits");
}

/// A request that fails (here: a fire whose execution id exists) is rolled
/// back alone; the others of its transaction commit.
#[tokio::test]
async fn a_failing_request_does_not_fail_its_batch() {
    let dir = tempfile::tempdir().unwrap();
    let d = open(&dir.path().join("s.db"));
    d.insert_trigger(trigger("trigger_m", "manual", json!({}))).await.unwrap();
    d.insert_many(vec![new(exec("taken", "t"), Readiness::Now)]).await.unwrap();
    let dup = |_: &Trigger| new(exec("taken", "t"), Readiness::Now);
    let fire = d.fire(FireParams { trigger_id: "trigger_m", now: Utc::now(), gate: FireGate::Plain, build: &dup, want_record: false, webhook: None });
    let insert = d.insert_many(vec![new(exec("other", "t"), Readiness::Now)]);
    let (fire, insert) = tokio::join!(fire, insert);
    assert!(matches!(fire, Err(StoreError::Conflict(_))), "{fire:?}");
    assert_eq!(insert.unwrap(), vec![Inserted::Ok]);
    assert_eq!(d.get_trigger("trigger_m").await.unwrap().unwrap().fire_count, 0, "the refused fire counted nothing");
    assert!(d.get("other").await.unwrap().is_some());
}

/// Resident memory of the process, in bytes (Linux).
fn rss() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    statm.split_whitespace().nth(1).and_then(|p| p.parse::<u64>().ok()).unwrap_or(0) * 4096
}

/// The driver keeps nothing per execution in memory: a backlog of 40,000
/// executions of 2 KB input each (some 80 MB on disk) grows the process by
/// far less than the data, and claims still take the head.
#[tokio::test]
async fn memory_does_not_grow_with_the_backlog() {
    let dir = tempfile::tempdir().unwrap();
    let d = open(&dir.path().join("s.db"));
    let input = "x".repeat(2048);
    let batch = |from: usize| -> Vec<NewExecution> {
        (from..from + 1000)
            .map(|i| {
                let mut e = exec(&format!("e{i:06}"), &format!("t{}", i % 7));
                e.input = Some(input.clone());
                new(e, Readiness::Now)
            })
            .collect()
    };
    d.insert_many(batch(0)).await.unwrap();
    let before = rss();
    for k in 1..40 {
        d.insert_many(batch(k * 1000)).await.unwrap();
    }
    let grown = rss().saturating_sub(before);
    assert_eq!(d.counts().await.unwrap().queued, 40_000);
    assert!(grown < 24 << 20, "40,000 queued executions (80 MB of input) grew RSS by {} MB", grown >> 20);
    let first = claim(&d, 7).await;
    assert_eq!(first.len(), 7);
    assert_eq!(first[0].execution_id, "e000000");
}

/// The executor over the SQLite store: a submission runs and completes,
/// every store call answered later from the writer thread.
#[tokio::test]
async fn the_executor_runs_work_over_it() {
    use enact_background_core::prelude::*;
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn Driver> = Arc::new(open(&dir.path().join("s.db")));
    let host = Arc::new(common::CountingHost::default());
    let exec = Executor::new(store.clone(), Arc::new(TokioClock::new()), host.clone(), common::config(4));
    exec.register_callable("work").unwrap();
    exec.start();
    let batch = vec![Submission { request: common::req(json!({"tenantId": "t", "callableName": "work", "input": "x"})), watch: false, keep_record: false }];
    let fut = exec.clone().submit_many(batch);
    let Answer::Later(_) = exec.answer(async move { Ok(fut.await.len()) }) else { panic!("the sqlite store answers later") };
    let mut jobs = Vec::new();
    for _ in 0..500 {
        exec.drain();
        jobs = exec.take().unwrap();
        if !jobs.is_empty() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    assert_eq!(jobs.len(), 1, "the submission was claimed");
    let id = jobs[0].execution_id.clone();
    exec.complete(&id, 1, Outcome::Completed(json!("done"))).unwrap();
    for _ in 0..500 {
        if store.get(&id).await.unwrap().unwrap().status == BackgroundExecutionStatus::Completed {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    let rec = store.get(&id).await.unwrap().unwrap();
    assert_eq!((rec.status, rec.output), (BackgroundExecutionStatus::Completed, Some(json!("done"))));
}

/// Claims read each tenant's line a few heads at a time: a claim larger
/// than that still takes every tenant's work in order, round-robin.
#[tokio::test]
async fn large_claims_read_past_the_first_heads_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let d = open(&dir.path().join("s.db"));
    let rows = (0..100).flat_map(|i| [new(exec(&format!("a{i:03}"), "A"), Readiness::Now), new(exec(&format!("b{i:03}"), "B"), Readiness::Now)]).collect();
    d.insert_many(rows).await.unwrap();
    let ids: Vec<String> = claim(&d, 150).await.into_iter().map(|e| e.execution_id).collect();
    let expected: Vec<String> = (0..75).flat_map(|i| [format!("a{i:03}"), format!("b{i:03}")]).collect();
    assert_eq!(ids, expected);
    let rest: Vec<String> = claim(&d, 100).await.into_iter().map(|e| e.execution_id).collect();
    let expected: Vec<String> = (75..100).flat_map(|i| [format!("a{i:03}"), format!("b{i:03}")]).collect();
    assert_eq!(rest, expected);
}

/// With `keep_finished`, the writer prunes the oldest finished executions
/// itself (about once a second); counts still count them.
#[tokio::test]
async fn keep_finished_prunes_the_oldest_finished() {
    let dir = tempfile::tempdir().unwrap();
    let d = SqliteStore::open(dir.path().join("s.db"), SqliteOptions { keep_finished: Some(2), ..SqliteOptions::default() }).unwrap();
    let rows = (0..5)
        .map(|i| {
            let mut e = exec(&format!("e{i}"), "t");
            e.status = BackgroundExecutionStatus::Completed;
            e.completed_at = Some(Utc::now());
            new(e, Readiness::Final)
        })
        .collect();
    d.insert_many(rows).await.unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    d.insert_many(vec![new(exec("q", "t"), Readiness::Now)]).await.unwrap();
    let left: Vec<String> = d.list(&ExecutionFilter::default()).await.unwrap().into_iter().map(|e| e.execution_id).collect();
    assert_eq!(left, ["e3", "e4", "q"]);
    assert_eq!(d.counts().await.unwrap(), StatusCounts { queued: 1, completed: 5, ..Default::default() });
}

/// Throughput figures, for a release build on a quiet machine:
/// `cargo test --release -p enact-background-core --test store_sqlite -- --ignored --nocapture`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a measurement, not a check"]
async fn throughput() {
    for sync in [Synchronous::Normal, Synchronous::Full] {
        let dir = tempfile::tempdir().unwrap();
        let d = Arc::new(SqliteStore::open(dir.path().join("s.db"), SqliteOptions { synchronous: sync, ..SqliteOptions::default() }).unwrap());
        // 64 callers each inserting one execution per call.
        const TASKS: usize = 64;
        const PER: usize = 500;
        let commits0 = d.stats().commits.load(std::sync::atomic::Ordering::Relaxed);
        let t = std::time::Instant::now();
        let tasks: Vec<_> = (0..TASKS)
            .map(|k| {
                let d = d.clone();
                tokio::spawn(async move {
                    for i in 0..PER {
                        d.insert_many(vec![new(exec(&format!("s{k}_{i}"), &format!("t{}", k % 8)), Readiness::Now)]).await.unwrap();
                    }
                })
            })
            .collect();
        for task in tasks {
            task.await.unwrap();
        }
        let secs = t.elapsed().as_secs_f64();
        let commits = d.stats().commits.load(std::sync::atomic::Ordering::Relaxed) - commits0;
        println!("{sync:?}: {} single-row inserts from {TASKS} callers: {:.0}/s, {commits} commits", TASKS * PER, (TASKS * PER) as f64 / secs);
        // Batches of 256 rows, one caller.
        let t = std::time::Instant::now();
        for b in 0..100 {
            let rows = (0..256).map(|i| new(exec(&format!("b{b}_{i}"), &format!("t{}", i % 8)), Readiness::Now)).collect();
            d.insert_many(rows).await.unwrap();
        }
        println!("{sync:?}: 25,600 rows in batches of 256: {:.0} rows/s", 25_600.0 / t.elapsed().as_secs_f64());
        // Claim 256 and finish them, alternating.
        let t = std::time::Instant::now();
        let mut n = 0;
        loop {
            let got = claim(&d, 256).await;
            if got.is_empty() {
                break;
            }
            n += got.len();
            let rows = got
                .into_iter()
                .map(|e| Finish {
                    id: e.execution_id,
                    attempt: e.attempt,
                    change: Change::Finish { status: BackgroundExecutionStatus::Completed, output: Some(json!(1)), error: None, at: Utc::now() },
                    want_record: false,
                })
                .collect();
            d.finish_many(rows).await.unwrap();
        }
        println!("{sync:?}: {n} executions claimed and finished by 256: {:.0}/s", n as f64 / t.elapsed().as_secs_f64());
    }
}

/// A store file damaged after its header: refused at open, or every call
/// that reads a damaged page answers ENACT_STORE — never a panic.
#[tokio::test]
async fn a_corrupt_file_gives_store_errors_not_a_crash() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.db");
    {
        let d = open(&path);
        let rows = (0..2000).map(|i| new(exec(&format!("e{i:05}"), "t"), Readiness::Now)).collect();
        d.insert_many(rows).await.unwrap();
    }
    // Checkpointed into the main file at close; now overwrite its pages.
    let mut bytes = std::fs::read(&path).unwrap();
    assert!(bytes.len() > 16 * 4096, "{} bytes", bytes.len());
    for b in &mut bytes[4096..] {
        *b = 0x5a;
    }
    std::fs::write(&path, bytes).unwrap();
    let d = match SqliteStore::open(&path, SqliteOptions::default()) {
        Err(e) => {
            let e: EngineError = e.into();
            assert_eq!(e.code, ErrorCode::Store);
            return;
        }
        Ok(d) => d,
    };
    let r = d.get("e00001").await;
    assert!(matches!(r, Err(StoreError::Unavailable { .. })), "{r:?}");
}

/// An edit and fires of one trigger at the same time: the edit is
/// written once, and no fire's count is lost to it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn edits_keep_the_counts_of_concurrent_fires() {
    let dir = tempfile::tempdir().unwrap();
    let d = Arc::new(open(&dir.path().join("s.db")));
    d.insert_trigger(trigger("trigger_m", "manual", json!({}))).await.unwrap();
    let fires: Vec<_> = (0..50)
        .map(|_| {
            let d = d.clone();
            tokio::spawn(async move { matches!(fire(&d, "trigger_m", FireGate::Plain, None).await, Fire::Fired { .. }) })
        })
        .collect();
    let edits: Vec<_> = (0..5)
        .map(|i| {
            let d = d.clone();
            tokio::spawn(async move {
                let mut rename = move |t: &mut Trigger| {
                    t.description = Some(format!("{}+{i}", t.description.clone().unwrap_or_default()));
                    Ok(())
                };
                d.update_trigger("trigger_m", &mut rename).await.unwrap().unwrap().unwrap();
            })
        })
        .collect();
    for e in edits {
        e.await.unwrap();
    }
    let mut fired = 0;
    for f in fires {
        fired += u64::from(f.await.unwrap());
    }
    let t = d.get_trigger("trigger_m").await.unwrap().unwrap();
    assert_eq!(fired, 50);
    assert_eq!(t.fire_count, 50, "every fire counted");
    assert_eq!(t.description.unwrap().matches('+').count(), 5, "every edit applied once, none lost");
    assert_eq!(d.counts().await.unwrap().queued, 50);
}

/// The child of [`a_killed_process_loses_nothing_acknowledged_and_holds_the_file_while_alive`]:
/// opens the store named by `ENACT_TEST_STORE`, writes, says `ready`, and
/// waits to be killed.
#[tokio::test]
#[ignore = "run as a child process by another test"]
async fn child_holding_the_store() {
    let Ok(path) = std::env::var("ENACT_TEST_STORE") else { return };
    let d = open(std::path::Path::new(&path));
    let rows = (0..100).map(|i| new(exec(&format!("e{i:03}"), "t"), Readiness::Now)).collect();
    assert_eq!(d.insert_many(rows).await.unwrap().len(), 100);
    assert_eq!(claim(&d, 1).await.len(), 1);
    println!("ready");
    use std::io::Write;
    std::io::stdout().flush().unwrap();
    loop {
        tokio::time::sleep(std::time::Duration::from_secs(1)).await;
    }
}

/// Another process holding the file: a second open is refused naming it.
/// Killed with SIGKILL, it loses nothing it had acknowledged, and the
/// execution it was running is queued again as a stall.
#[test]
fn a_killed_process_loses_nothing_acknowledged_and_holds_the_file_while_alive() {
    use std::io::BufRead;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.db");
    let mut child = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["child_holding_the_store", "--exact", "--ignored", "--nocapture", "--test-threads=1"])
        .env("ENACT_TEST_STORE", &path)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = std::io::BufReader::new(child.stdout.take().unwrap()).lines();
    assert!(lines.any(|l| l.is_ok_and(|l| l.trim_end().ends_with("ready"))), "the child wrote and said so");
    let msg = store_message(SqliteStore::open(&path, SqliteOptions::default()));
    assert!(msg.contains("already open in another process") && msg.contains("s.db"), "{msg}");
    child.kill().unwrap();
    child.wait().unwrap();
    let d = open(&path);
    assert_eq!((d.recovery().requeued, d.recovery().failed), (1, 0));
    let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
    let counts = rt.block_on(d.counts()).unwrap();
    assert_eq!(counts, StatusCounts { queued: 100, ..Default::default() }, "every acknowledged insert survived the kill");
    assert_eq!(rt.block_on(d.get("e000")).unwrap().unwrap().attempt, 1, "the interrupted attempt stays counted");
}

/// One process over the file at `path`: an executor and a trigger engine
/// on the manual clock, started as a host starts them over a store that
/// answers later.
async fn process(
    path: &std::path::Path,
    clock: &Arc<enact_background_core::clock::ManualClock>,
) -> (Arc<enact_background_core::executor::Executor>, Arc<enact_background_core::triggers::TriggerEngine>) {
    use enact_background_core::prelude::*;
    // The previous process's store closes as its last reference goes;
    // wait for its lock to be released rather than for a fixed time.
    let mut store = None;
    for _ in 0..1000 {
        match SqliteStore::open(path, SqliteOptions::default()) {
            Ok(s) => {
                store = Some(s);
                break;
            }
            Err(_) => tokio::time::sleep(std::time::Duration::from_millis(5)).await,
        }
    }
    let store: Arc<dyn Driver> = Arc::new(store.expect("the file opens once the previous process let go of it"));
    let exec = Executor::new(store, clock.clone(), Arc::new(common::CountingHost::default()), common::config(4));
    exec.register_callable("work").unwrap();
    let eng = TriggerEngine::new(exec.clone(), TriggerConfig::default());
    eng.start_async().await.expect("the engine starts over a store that answers later");
    (exec, eng)
}

/// Issue 12's misfire test over a real file: a per-minute cron fires its
/// 10:01 tick, the process stops, nothing runs for five minutes, and the
/// process that opens the file again fires once for the missed ticks
/// under `fire_once` (saying how many), and not at all under `skip`;
/// both then keep their schedule.
#[tokio::test]
async fn a_schedule_after_five_minutes_down_follows_its_misfire_policy_across_a_reopen() {
    use enact_background_core::clock::ManualClock;
    let at = |s: &str| chrono::DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc);
    for policy in ["fire_once", "skip"] {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.db");
        let clock = Arc::new(ManualClock::starting_at(at("2026-01-15T10:00:30Z")));
        let (exec, eng) = process(&path, &clock).await;
        let def = json!({"tenantId": "t", "type": "schedule", "condition": {"cronExpression": "* * * * *", "misfirePolicy": policy},
                         "action": {"callableName": "work"}});
        let id = eng.register_async(&def).await.unwrap().trigger_id;
        clock.advance_to(at("2026-01-15T10:01:10Z"));
        eng.run_due_async().await;
        eng.stop();
        drop((exec, eng));

        // Down from 10:01:10 to 10:06:30: the ticks 10:02 … 10:06 were missed.
        clock.advance_to(at("2026-01-15T10:06:30Z"));
        let (exec, eng) = process(&path, &clock).await;
        eng.run_due_async().await;
        clock.advance_to(at("2026-01-15T10:07:00Z"));
        eng.run_due_async().await;
        let mut sources: Vec<serde_json::Value> = exec
            .driver()
            .list(&ExecutionFilter::default())
            .await
            .unwrap()
            .into_iter()
            .filter(|e| e.trigger_id.as_deref() == Some(id.as_str()))
            .map(|e| e.trigger_source.unwrap())
            .collect();
        sources.sort_by_key(|s| s["scheduledAt"].as_str().unwrap().to_owned());
        let scheduled: Vec<&str> = sources.iter().map(|s| s["scheduledAt"].as_str().unwrap()).collect();
        if policy == "fire_once" {
            assert_eq!(scheduled, ["2026-01-15T10:01:00.000Z", "2026-01-15T10:06:00.000Z", "2026-01-15T10:07:00.000Z"], "{policy}");
            assert_eq!(
                (&sources[1]["missedTicks"], &sources[1]["firstMissedAt"], &sources[1]["lastMissedAt"]),
                (&json!(5), &json!("2026-01-15T10:02:00.000Z"), &json!("2026-01-15T10:06:00.000Z"))
            );
            assert!(sources[2].get("missedTicks").is_none(), "the next tick is a plain one");
        } else {
            assert_eq!(scheduled, ["2026-01-15T10:01:00.000Z", "2026-01-15T10:07:00.000Z"], "{policy}");
        }
        let stored = eng.get_async(&id).await.unwrap();
        assert_eq!(stored.fire_count as usize, scheduled.len(), "{policy}: the count is the fires recorded");
        eng.stop();
    }
}
