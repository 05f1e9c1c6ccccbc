//! The file's schema and its versioned migrations, run at open.
//!
//! The version is SQLite's `user_version`; `application_id` marks the file
//! as an enact-background store. A file written by a newer version of the
//! package (a higher `user_version`) is refused, naming both versions; a
//! SQLite file holding tables of something else is refused too.

use rusqlite::Connection;

use crate::store::{StoreError, StoreResult};

/// `PRAGMA application_id` of an enact-background store ("enBG").
pub const APPLICATION_ID: i32 = 0x656e_4247;

/// The schema version this package writes and reads.
pub const SCHEMA_VERSION: i32 = 3;

/// Migrations by the version they lead to: `MIGRATIONS[i]` takes a file
/// from version `i` to `i + 1`.
const MIGRATIONS: &[&str] = &[
    // 1: executions, the ready queue's tenant turns, triggers with their
    // cursors and arming, webhook replay ids, the trigger change log and
    // tallies of pruned executions.
    r#"
    CREATE TABLE executions (
        id TEXT PRIMARY KEY NOT NULL,
        tenant TEXT NOT NULL,
        callable TEXT NOT NULL,
        -- 0 queued, 1 running, 2 completed, 3 failed, 4 cancelled, 5 timeout
        status INTEGER NOT NULL,
        priority INTEGER NOT NULL,
        -- 1: immediate work, 0: deferred until idle
        class INTEGER NOT NULL,
        -- enqueue order of ready work (FIFO within a tenant and level)
        ticket INTEGER NOT NULL DEFAULT 0,
        -- queued but delayed until this Unix ms (made ready by stage_due)
        due_ms INTEGER,
        queued_ns INTEGER NOT NULL,
        attempt INTEGER NOT NULL,
        stalls INTEGER NOT NULL DEFAULT 0,
        lease_until_ms INTEGER,
        worker TEXT,
        started_at TEXT,
        completed_at TEXT,
        -- order in which it reached its final record (for prune), NULL before
        settle_seq INTEGER,
        -- its config binds a target: completed is final only once bound
        binds INTEGER NOT NULL,
        target_binding_applied INTEGER NOT NULL DEFAULT 0,
        -- the record's fixed fields (input, context, config, ids, chain)
        body TEXT NOT NULL,
        -- each in its own column, so that each may nest as deep as JSON allows
        metadata TEXT,
        trigger_source TEXT,
        output TEXT,
        error TEXT,
        binding TEXT
    );
    CREATE INDEX executions_ready ON executions (class, priority, tenant, callable, ticket)
        WHERE status = 0 AND due_ms IS NULL;
    CREATE INDEX executions_due ON executions (due_ms, ticket) WHERE status = 0 AND due_ms IS NOT NULL;
    CREATE INDEX executions_running ON executions (lease_until_ms) WHERE status = 1;
    CREATE INDEX executions_status ON executions (status, settle_seq);
    CREATE INDEX executions_queued ON executions (queued_ns, id);

    -- tenants waiting at one (class, priority), served round-robin by pos
    CREATE TABLE turns (
        class INTEGER NOT NULL,
        priority INTEGER NOT NULL,
        tenant TEXT NOT NULL,
        pos INTEGER NOT NULL,
        PRIMARY KEY (class, priority, tenant)
    ) WITHOUT ROWID;

    CREATE TABLE triggers (
        id TEXT PRIMARY KEY NOT NULL,
        seq INTEGER NOT NULL,
        tenant TEXT NOT NULL,
        status TEXT NOT NULL,
        fire_count INTEGER NOT NULL,
        -- the Trigger record, kept current (status, fireCount, lastFiredAt)
        def TEXT NOT NULL,
        -- bumped by every write / by definition changes only
        version INTEGER NOT NULL,
        def_version INTEGER NOT NULL,
        -- the last schedule tick taken (Unix ms)
        cursor_ms INTEGER,
        -- threshold: whether the last reported value satisfied the comparison
        armed INTEGER NOT NULL DEFAULT 0
    );

    CREATE TABLE webhook_ids (
        trigger_id TEXT NOT NULL,
        msg_id TEXT NOT NULL,
        expires_secs INTEGER NOT NULL,
        PRIMARY KEY (trigger_id, msg_id)
    ) WITHOUT ROWID;
    CREATE INDEX webhook_ids_expiry ON webhook_ids (trigger_id, expires_secs);

    CREATE TABLE trigger_changes (
        seq INTEGER PRIMARY KEY NOT NULL,
        trigger_id TEXT NOT NULL
    );

    CREATE TABLE pruned (
        status INTEGER PRIMARY KEY NOT NULL,
        n INTEGER NOT NULL
    );
    "#,
    // 2: final executions only in the status index (queued and running
    // ones have their partial indexes): a claim no longer moves an entry
    // of it, and the settle order it holds first makes prune's and the
    // open's reads of it a range, not a scan.
    r#"
    DROP INDEX executions_status;
    CREATE INDEX executions_final ON executions (settle_seq, status) WHERE status >= 2;
    "#,
    // 3: what a running attempt reported with `ctx.progress`.
    r#"
    ALTER TABLE executions ADD COLUMN progress TEXT;
    "#,
];

/// Brings the file at `conn` to [`SCHEMA_VERSION`], or refuses it.
pub fn migrate(conn: &Connection, path: &str) -> StoreResult<()> {
    let refuse = |why: String| StoreError::unavailable(format!("sqlite store {path:?}: {why}"));
    let version: i32 = conn.query_row("PRAGMA user_version", [], |r| r.get(0)).map_err(|e| super::open_error(path, e))?;
    let app: i32 = conn.query_row("PRAGMA application_id", [], |r| r.get(0)).map_err(|e| super::open_error(path, e))?;
    if version > SCHEMA_VERSION {
        return Err(refuse(format!(
            "its schema is version {version}, written by a newer enact-background; this version ({}) reads schema versions up to {SCHEMA_VERSION}",
            env!("CARGO_PKG_VERSION")
        )));
    }
    if version == 0 {
        let tables: i64 = conn
            .query_row("SELECT count(*) FROM sqlite_master WHERE name NOT LIKE 'sqlite_%'", [], |r| r.get(0))
            .map_err(|e| super::open_error(path, e))?;
        if tables > 0 {
            return Err(refuse("it is a SQLite database of something else (it has tables but no enact-background schema)".into()));
        }
    } else if app != APPLICATION_ID {
        return Err(refuse(format!("it is a SQLite database of something else (application_id {app:#x}, not enact-background's)")));
    }
    for (from, sql) in MIGRATIONS.iter().enumerate().skip(version as usize) {
        let to = from + 1;
        let run = || -> rusqlite::Result<()> {
            conn.execute_batch("BEGIN IMMEDIATE")?;
            conn.execute_batch(sql)?;
            conn.execute_batch(&format!("PRAGMA application_id = {APPLICATION_ID}; PRAGMA user_version = {to}; COMMIT"))
        };
        if let Err(e) = run() {
            let _ = conn.execute_batch("ROLLBACK");
            return Err(refuse(format!("migration to schema version {to} failed: {e}")));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(conn: &Connection, sql: &str) -> String {
        let mut s = conn.prepare(&format!("EXPLAIN QUERY PLAN {sql}")).unwrap();
        let rows = s.query_map([], |r| r.get::<_, String>(3)).unwrap();
        rows.collect::<rusqlite::Result<Vec<_>>>().unwrap().join("; ")
    }

    #[test]
    fn a_version_1_file_migrates_to_the_current_schema_keeping_its_rows() {
        let conn = Connection::open_in_memory().unwrap();
        conn.execute_batch(MIGRATIONS[0]).unwrap();
        conn.execute_batch(&format!("PRAGMA application_id = {APPLICATION_ID}; PRAGMA user_version = 1")).unwrap();
        conn.execute_batch(
            "INSERT INTO executions (id, tenant, callable, status, priority, class, queued_ns, attempt, binds, body, settle_seq)
             VALUES ('e1', 't', 'c', 2, 50, 1, 1, 1, 0, '{}', 7)",
        )
        .unwrap();
        migrate(&conn, "test.db").unwrap();
        let version: i32 = conn.query_row("PRAGMA user_version", [], |r| r.get(0)).unwrap();
        assert_eq!(version, SCHEMA_VERSION);
        let n: i64 = conn.query_row("SELECT count(*) FROM executions WHERE status >= 2", [], |r| r.get(0)).unwrap();
        assert_eq!(n, 1);
        // Migrating again changes nothing.
        migrate(&conn, "test.db").unwrap();
    }

    #[test]
    fn counts_prune_and_open_read_indexes_not_the_table() {
        let conn = Connection::open_in_memory().unwrap();
        migrate(&conn, "test.db").unwrap();
        for sql in [
            "SELECT count(*) FROM executions WHERE status = 0 AND due_ms IS NULL",
            "SELECT count(*) FROM executions WHERE status = 0 AND due_ms IS NOT NULL",
            "SELECT count(*) FROM executions WHERE status = 1",
            "SELECT status, count(*) FROM executions WHERE status >= 2 GROUP BY status",
            "SELECT max(settle_seq) FROM executions WHERE status >= 2",
            "SELECT id FROM executions WHERE status >= 2 AND settle_seq IS NOT NULL ORDER BY settle_seq LIMIT 5",
        ] {
            let p = plan(&conn, sql);
            assert!(p.contains("INDEX"), "{sql}: {p}");
        }
    }
}
