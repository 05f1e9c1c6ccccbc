//! The PostgreSQL schema, versioned: `{schema}.meta` holds the version,
//! migrations run at open inside one transaction under a transaction-level
//! advisory lock, so that engines starting together migrate once and
//! every other engine waits for it and then finds the schema current.
//! A schema whose version is newer than this build's is refused, naming
//! both; a schema that holds tables but no `meta` is someone else's and
//! is refused too.
//!
//! `{s}` in every statement is the schema name (checked as a plain
//! identifier at open), `{ch}` the notification channel.

use deadpool_postgres::Client;

use super::{fault, Fault};

/// The version this build writes and reads.
pub const SCHEMA_VERSION: i32 = 2;

/// Each migration, in order: migration `i` takes a schema at version `i`
/// to version `i + 1`.
const MIGRATIONS: &[&str] = &[r#"
    CREATE SEQUENCE {s}.tickets;
    CREATE SEQUENCE {s}.settles;

    CREATE TABLE {s}.executions (
        id text PRIMARY KEY,
        tenant text NOT NULL,
        callable text NOT NULL,
        -- 0 queued, 1 running, 2 completed, 3 failed, 4 cancelled, 5 timeout
        status smallint NOT NULL,
        priority smallint NOT NULL,
        -- claim order of ready work, ascending: -(class * 256 + priority),
        -- class 1 for immediate work, 0 for work deferred until idle
        lvl integer NOT NULL,
        -- enqueue order (FIFO within a tenant and level)
        ticket bigint NOT NULL DEFAULT 0,
        -- queued but delayed until this Unix ms (made ready by stage_due)
        due_ms bigint,
        queued_ns bigint NOT NULL,
        attempt integer NOT NULL,
        stalls integer NOT NULL DEFAULT 0,
        lease_until_ms bigint,
        worker text,
        started_at text,
        completed_at text,
        -- order in which it reached its final record (for prune), NULL before
        settle_seq bigint,
        -- its config binds a target: completed is final only once bound
        binds boolean NOT NULL,
        applied boolean NOT NULL DEFAULT false,
        -- an engine waits for its end: its end is notified
        watched boolean NOT NULL DEFAULT false,
        -- the record's fixed fields (input, context, config, ids, chain)
        body text NOT NULL,
        metadata text,
        trigger_source text,
        output text,
        error text,
        binding text
    );
    CREATE INDEX executions_ready ON {s}.executions (lvl, tenant, ticket) WHERE status = 0 AND due_ms IS NULL;
    CREATE INDEX executions_due ON {s}.executions (due_ms) WHERE status = 0 AND due_ms IS NOT NULL;
    CREATE INDEX executions_running ON {s}.executions (lease_until_ms) WHERE status = 1;
    CREATE INDEX executions_final ON {s}.executions (settle_seq) WHERE status >= 2;
    CREATE INDEX executions_queued ON {s}.executions (queued_ns, id);

    CREATE TABLE {s}.triggers (
        id text PRIMARY KEY,
        seq bigserial NOT NULL,
        tenant text NOT NULL,
        status text NOT NULL,
        fire_count bigint NOT NULL,
        -- the Trigger record, kept current (status, fireCount, lastFiredAt)
        def text NOT NULL,
        -- bumped by definition changes only
        def_version bigint NOT NULL,
        -- the last schedule tick taken (Unix ms)
        cursor_ms bigint,
        -- threshold: whether the last reported value satisfied the comparison
        armed boolean NOT NULL DEFAULT false
    );

    CREATE TABLE {s}.webhook_ids (
        trigger_id text NOT NULL,
        msg_id text NOT NULL,
        expires_secs bigint NOT NULL,
        PRIMARY KEY (trigger_id, msg_id)
    );

    -- written under an EXCLUSIVE table lock, so seq order is commit order
    CREATE TABLE {s}.trigger_changes (
        seq bigserial PRIMARY KEY,
        trigger_id text NOT NULL
    );
    -- changes up to this seq were dropped from the log
    CREATE TABLE {s}.trigger_changes_floor (floor bigint NOT NULL);
    INSERT INTO {s}.trigger_changes_floor VALUES (0);

    CREATE TABLE {s}.pruned (
        status smallint PRIMARY KEY,
        n bigint NOT NULL
    );

    -- the callables each live engine serves, renewed by its heartbeat
    CREATE TABLE {s}.engines (
        worker text PRIMARY KEY,
        callables text[] NOT NULL,
        expires_ms bigint NOT NULL
    );

    -- Wake-ups (LISTEN {ch}): 'w' claimable work committed, 't' trigger
    -- changes, 's' || id a watched execution settled.
    CREATE FUNCTION {s}.notify_inserted() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        IF EXISTS (SELECT 1 FROM inserted WHERE status = 0 AND due_ms IS NULL) THEN
            PERFORM pg_notify('{ch}', 'w');
        END IF;
        RETURN NULL;
    END $$;
    CREATE TRIGGER executions_inserted AFTER INSERT ON {s}.executions
        REFERENCING NEW TABLE AS inserted FOR EACH STATEMENT EXECUTE FUNCTION {s}.notify_inserted();

    CREATE FUNCTION {s}.notify_ready() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        PERFORM pg_notify('{ch}', 'w');
        RETURN NULL;
    END $$;
    CREATE TRIGGER executions_ready AFTER UPDATE ON {s}.executions FOR EACH ROW
        WHEN (NEW.status = 0 AND NEW.due_ms IS NULL AND (OLD.status <> 0 OR OLD.due_ms IS NOT NULL))
        EXECUTE FUNCTION {s}.notify_ready();

    CREATE FUNCTION {s}.notify_settled() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        PERFORM pg_notify('{ch}', 's' || NEW.id);
        RETURN NULL;
    END $$;
    CREATE TRIGGER executions_settled AFTER UPDATE ON {s}.executions FOR EACH ROW
        WHEN (NEW.watched AND NEW.status >= 2 AND (OLD.status < 2 OR NEW.binding IS DISTINCT FROM OLD.binding))
        EXECUTE FUNCTION {s}.notify_settled();

    CREATE FUNCTION {s}.notify_triggers() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        PERFORM pg_notify('{ch}', 't');
        RETURN NULL;
    END $$;
    CREATE TRIGGER trigger_changes_inserted AFTER INSERT ON {s}.trigger_changes
        FOR EACH STATEMENT EXECUTE FUNCTION {s}.notify_triggers();
"#,
    // 2: what a running attempt reported with `ctx.progress`, and the
    // trigger that spawned an execution as a column (listed by trigger;
    // the rows of version 1 read from their record, where an id that
    // needs JSON escapes is left out).
    r#"
    ALTER TABLE {s}.executions ADD COLUMN progress text;
    ALTER TABLE {s}.executions ADD COLUMN trigger_id text;
    UPDATE {s}.executions
        SET trigger_id = substring(body from '"targetBindingApplied":(?:true|false),"triggerId":"([^"\\]*)"')
        WHERE body LIKE '%"triggerId":%';
    CREATE INDEX executions_trigger ON {s}.executions (trigger_id, queued_ns) WHERE trigger_id IS NOT NULL;
"#,
];

/// Brings `schema` to [`SCHEMA_VERSION`], or refuses it.
pub(super) async fn migrate(client: &mut Client, schema: &str, channel: &str, target: &str) -> Result<(), Fault> {
    let refuse = |why: String| Fault::fatal(format!("postgres store ({target}), schema {schema:?}: {why}"));
    let txn = client.transaction().await.map_err(fault)?;
    // One key per schema: engines of other schemas migrate in parallel.
    txn.execute("SELECT pg_advisory_xact_lock(hashtextextended($1, 7340))", &[&format!("enact_background:{schema}")]).await.map_err(fault)?;
    let exists: bool = txn.query_one("SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1)", &[&schema]).await.map_err(fault)?.get(0);
    let version: i32 = if exists {
        let has_meta: bool = txn
            .query_one("SELECT EXISTS (SELECT 1 FROM pg_tables WHERE schemaname = $1 AND tablename = 'meta')", &[&schema])
            .await
            .map_err(fault)?
            .get(0);
        if has_meta {
            txn.query_opt(&format!("SELECT version FROM {schema}.meta WHERE key = 'schema'"), &[]).await.map_err(fault)?.map_or(0, |r| r.get(0))
        } else {
            let tables: i64 = txn.query_one("SELECT count(*) FROM pg_tables WHERE schemaname = $1", &[&schema]).await.map_err(fault)?.get(0);
            if tables > 0 {
                return Err(refuse("it holds tables that are not enact-background's (no meta table); choose another schema".into()));
            }
            txn.batch_execute(&format!("CREATE TABLE {schema}.meta (key text PRIMARY KEY, version integer NOT NULL)")).await.map_err(fault)?;
            0
        }
    } else {
        txn.batch_execute(&format!("CREATE SCHEMA {schema}; CREATE TABLE {schema}.meta (key text PRIMARY KEY, version integer NOT NULL)"))
            .await
            .map_err(fault)?;
        0
    };
    if version > SCHEMA_VERSION {
        return Err(refuse(format!(
            "its schema is version {version}, written by a newer enact-background; this version ({}) reads schema versions up to {SCHEMA_VERSION}",
            env!("CARGO_PKG_VERSION")
        )));
    }
    for (i, m) in MIGRATIONS.iter().enumerate().skip(version.max(0) as usize) {
        txn.batch_execute(&m.replace("{s}", schema).replace("{ch}", channel)).await.map_err(fault)?;
        let to = i as i32 + 1;
        txn.execute(
            &format!("INSERT INTO {schema}.meta (key, version) VALUES ('schema', $1) ON CONFLICT (key) DO UPDATE SET version = excluded.version"),
            &[&to],
        )
        .await
        .map_err(fault)?;
    }
    txn.commit().await.map_err(fault)?;
    Ok(())
}
