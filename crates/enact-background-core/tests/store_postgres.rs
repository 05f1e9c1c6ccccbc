//! What the PostgreSQL driver does beyond the conformance suite: the
//! signals it turns notifications into (work, settled watched executions,
//! trigger changes, a lost listener), callables published per engine, two
//! stores (two engines) over one schema, and a store whose connections are
//! killed. Each test has a schema of its own on `DATABASE_URL`; without it
//! each says loudly that it did not run.

mod conformance;
#[path = "common/temp_pg.rs"]
mod temp_pg;

use std::time::Duration;

use chrono::Utc;
use enact_background_core::model::*;
use enact_background_core::postgres::PgOptions;
use enact_background_core::store::*;
use temp_pg::TempPg;

fn exec(id: &str, callable: &str) -> BackgroundExecution {
    conformance::exec_of(id, "t", callable, 50)
}

fn claim_params(worker: &str, callables: &[&str]) -> ClaimParams {
    let now = Utc::now();
    ClaimParams {
        worker: worker.into(),
        max: 10,
        now,
        lease_until: now + chrono::Duration::seconds(30),
        limits: std::sync::Arc::new(Limits { tenant: None, callables: callables.iter().map(|c| (c.to_string(), None)).collect() }),
    }
}

/// The next signal that is not `Work` unless `work` is asked for, within 5 s.
async fn next(rx: &mut tokio::sync::broadcast::Receiver<Signal>, want: impl Fn(&Signal) -> bool) -> Signal {
    tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            let s = rx.recv().await.expect("the store's signals");
            if want(&s) {
                return s;
            }
        }
    })
    .await
    .expect("the signal within 5 s")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn notifications_become_signals() {
    let Some(a) = TempPg::new(PgOptions::default()) else { return };
    let b = a.peer(PgOptions::default());
    b.open().await.unwrap();
    a.store.open().await.unwrap();
    let mut rx = b.signals().expect("a shared store signals");
    // Work queued by A wakes B.
    a.store.insert_many(vec![NewExecution::new(exec("e1", "work"), Readiness::Now)]).await.unwrap();
    assert_eq!(next(&mut rx, |s| *s == Signal::Work).await, Signal::Work);
    // A watched execution that ends is signalled to every engine; an
    // unwatched one is not.
    let mut watched = NewExecution::new(exec("e2", "work"), Readiness::Now);
    watched.watched = true;
    a.store.insert_many(vec![watched]).await.unwrap();
    let claimed = b.claim(claim_params("engine_b", &["work"])).await.unwrap();
    assert_eq!(claimed.len(), 2);
    let ends = ["e1", "e2"].map(|id| Finish {
        id: id.into(),
        attempt: 1,
        change: Change::Finish { status: BackgroundExecutionStatus::Completed, output: None, error: None, at: Utc::now() },
        want_record: false,
    });
    b.finish_many(ends.to_vec()).await.unwrap();
    assert_eq!(next(&mut rx, |s| matches!(s, Signal::Settled(_))).await, Signal::Settled("e2".into()));
    // A trigger registered on A.
    let t: Trigger = serde_json::from_value(serde_json::json!({
        "triggerId": "trg", "tenantId": "t", "name": "m", "type": "manual", "status": "active", "condition": {},
        "action": { "callableName": "work" }, "fireCount": 0, "createdAt": "2026-01-01T00:00:00Z", "updatedAt": "2026-01-01T00:00:00Z"
    }))
    .unwrap();
    a.store.insert_trigger(t).await.unwrap();
    assert_eq!(next(&mut rx, |s| *s == Signal::Triggers).await, Signal::Triggers);
    // Get-watched marks an execution that runs, so that its end is signalled.
    a.store.insert_many(vec![NewExecution::new(exec("e3", "work"), Readiness::Now)]).await.unwrap();
    assert_eq!(b.get_watched("e3").await.unwrap().unwrap().status, BackgroundExecutionStatus::Queued);
    b.claim(claim_params("engine_b", &["work"])).await.unwrap();
    let end = Finish {
        id: "e3".into(),
        attempt: 1,
        change: Change::Finish { status: BackgroundExecutionStatus::Failed, output: None, error: None, at: Utc::now() },
        want_record: false,
    };
    b.finish_many(vec![end]).await.unwrap();
    assert_eq!(next(&mut rx, |s| matches!(s, Signal::Settled(_))).await, Signal::Settled("e3".into()));
    b.close().await.unwrap();
    a.store.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn callables_are_served_while_published() {
    let Some(a) = TempPg::new(PgOptions::default()) else { return };
    let now = Utc::now();
    let later = now + chrono::Duration::seconds(30);
    a.store.publish("engine_1", vec!["mine".into(), "both".into()], later).await.unwrap();
    a.store.publish("engine_2", vec!["both".into()], now - chrono::Duration::seconds(1)).await.unwrap();
    let served = a.store.served(vec!["mine".into(), "both".into(), "nobody".into()], now).await.unwrap();
    assert_eq!(served, [true, true, false]);
    a.store.publish("engine_1", vec![], later).await.unwrap();
    assert_eq!(a.store.served(vec!["mine".into(), "both".into()], now).await.unwrap(), [false, false], "withdrawn; engine_2's expired");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_listener_reconnects_and_says_signals_may_be_lost_and_calls_go_on() {
    let Some(a) = TempPg::new(PgOptions::default()) else { return };
    a.store.open().await.unwrap();
    let mut rx = a.store.signals().unwrap();
    // The listener listens (it heard this insert) before it is killed.
    a.store.insert_many(vec![NewExecution::new(exec("before", "work"), Readiness::Now)]).await.unwrap();
    assert_eq!(next(&mut rx, |s| *s == Signal::Work).await, Signal::Work);
    // Every connection of the store, the listener's included.
    let (client, conn) = tokio_postgres::connect(&a.guard.base_url, tokio_postgres::NoTls).await.unwrap();
    tokio::spawn(conn);
    let killed = client
        .query_one("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name = $1", &[&a.guard.schema])
        .await
        .unwrap()
        .get::<_, i64>(0);
    assert!(killed >= 2, "the pool's connection and the listener: {killed}");
    assert_eq!(next(&mut rx, |s| *s == Signal::Lost).await, Signal::Lost);
    // Calls go on, on new connections, and the listener hears them.
    a.store.insert_many(vec![NewExecution::new(exec("after", "work"), Readiness::Now)]).await.unwrap();
    assert_eq!(next(&mut rx, |s| *s == Signal::Work).await, Signal::Work);
    assert_eq!(a.store.get("after").await.unwrap().unwrap().status, BackgroundExecutionStatus::Queued);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_stores_claiming_together_never_take_the_same_attempt() {
    let Some(a) = TempPg::new(PgOptions::default()) else { return };
    let b = a.peer(PgOptions::default());
    let rows: Vec<NewExecution> = (0..2000).map(|i| NewExecution::new(exec(&format!("e{i}"), "work"), Readiness::Now)).collect();
    a.store.insert_many(rows).await.unwrap();
    let (sa, sb) = (a.store.clone(), b.clone());
    let claimer = |s: enact_background_core::postgres::PgStore, worker: &'static str| {
        tokio::spawn(async move {
            let mut mine = Vec::new();
            loop {
                let got = s.claim(claim_params(worker, &["work"])).await.unwrap();
                if got.is_empty() {
                    return mine;
                }
                mine.extend(got.into_iter().map(|e| e.execution_id));
            }
        })
    };
    let (x, y) = (claimer(sa, "engine_a"), claimer(sb, "engine_b"));
    let (x, y) = (x.await.unwrap(), y.await.unwrap());
    let mut all: Vec<&String> = x.iter().chain(y.iter()).collect();
    let n = all.len();
    all.sort();
    all.dedup();
    assert_eq!((n, all.len()), (2000, 2000), "every execution claimed once");
    assert!(!x.is_empty() && !y.is_empty(), "both engines claimed ({} / {})", x.len(), y.len());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_database_is_refused_within_the_connect_timeout() {
    if temp_pg::database_url().is_none() {
        return;
    }
    let options = PgOptions { connect_timeout: Duration::from_millis(500), call_timeout: Duration::from_secs(2), ..PgOptions::default() };
    let s = enact_background_core::postgres::PgStore::new("postgres://root@127.0.0.1:1/test", options).unwrap();
    let t0 = std::time::Instant::now();
    let err = s.open().await.unwrap_err().to_string();
    assert!(err.contains("127.0.0.1:1/test") && err.contains("cannot connect"), "{err}");
    assert!(t0.elapsed() < Duration::from_secs(3));
    let err = s.get("x").await.unwrap_err().to_string();
    assert!(err.contains("cannot connect"), "{err}");
}
