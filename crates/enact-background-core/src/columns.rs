//! How the durable stores write an execution's fields in columns and read
//! them back (the SQLite and PostgreSQL drivers alike): status codes, times
//! as RFC 3339 text, enqueue order in nanoseconds, JSON text. `store` names
//! the store in errors ("sqlite store", "postgres store").

use chrono::{DateTime, SecondsFormat};

use crate::model::{BackgroundExecutionStatus as Status, Timestamp, Trigger};
use crate::store::{StoreError, StoreResult, Tally};

/// Waiting and running work per tenant and callable in `table`, each part
/// from its partial index: rows of (tenant, callable, part, count), part 0
/// ready, 1 delayed, 2 running; [`tallies`] sums them.
pub(crate) fn breakdown_sql(table: &str) -> String {
    format!(
        "SELECT tenant, callable, 0, count(*) FROM {table} WHERE status = 0 AND due_ms IS NULL GROUP BY tenant, callable
        UNION ALL SELECT tenant, callable, 1, count(*) FROM {table} WHERE status = 0 AND due_ms IS NOT NULL GROUP BY tenant, callable
        UNION ALL SELECT tenant, callable, 2, count(*) FROM {table} WHERE status = 1 GROUP BY tenant, callable"
    )
}

/// The rows of [`breakdown_sql`] as one [`Tally`] per tenant and callable.
pub(crate) fn tallies(rows: impl IntoIterator<Item = (String, String, i64, i64)>) -> Vec<Tally> {
    let mut out: std::collections::HashMap<(String, String), Tally> = std::collections::HashMap::new();
    for (tenant, callable, part, n) in rows {
        let t = out.entry((tenant.clone(), callable.clone())).or_insert_with(|| Tally { tenant, callable, ..Tally::default() });
        *match part {
            0 => &mut t.queued,
            1 => &mut t.delayed,
            _ => &mut t.running,
        } += n.max(0) as u64;
    }
    out.into_values().collect()
}

/// The stored code of a status (0 queued … 5 timeout).
pub(crate) fn status_code(s: Status) -> i16 {
    match s {
        Status::Queued => 0,
        Status::Running => 1,
        Status::Completed => 2,
        Status::Failed => 3,
        Status::Cancelled => 4,
        Status::Timeout => 5,
    }
}

/// The status of a stored code.
pub(crate) fn status_of(store: &str, n: i64) -> StoreResult<Status> {
    Ok(match n {
        0 => Status::Queued,
        1 => Status::Running,
        2 => Status::Completed,
        3 => Status::Failed,
        4 => Status::Cancelled,
        5 => Status::Timeout,
        other => return Err(StoreError::unavailable(format!("{store}: unknown execution status {other}"))),
    })
}

/// A stored value that does not read back.
pub(crate) fn corrupt(store: &str, what: &str, e: impl std::fmt::Display) -> StoreError {
    StoreError::unavailable(format!("{store}: a stored {what} does not decode: {e}"))
}

/// A time as stored: RFC 3339, as precise as it is.
pub(crate) fn ts(t: Timestamp) -> String {
    t.to_rfc3339_opts(SecondsFormat::AutoSi, true)
}

pub(crate) fn parse_ts(store: &str, s: &str) -> StoreResult<Timestamp> {
    DateTime::parse_from_rfc3339(s).map(|t| t.to_utc()).map_err(|e| corrupt(store, "time", e))
}

pub(crate) fn to_json<T: serde::Serialize + ?Sized>(store: &str, v: &T) -> StoreResult<String> {
    serde_json::to_string(v).map_err(|e| StoreError::unavailable(format!("{store}: cannot encode a record: {e}")))
}

pub(crate) fn from_json<T: serde::de::DeserializeOwned>(store: &str, what: &str, s: &str) -> StoreResult<T> {
    serde_json::from_str(s).map_err(|e| corrupt(store, what, e))
}

/// A time in Unix nanoseconds (enqueue order), saturating.
pub(crate) fn nanos(t: Timestamp) -> i64 {
    t.timestamp_nanos_opt().unwrap_or(if t.timestamp() < 0 { i64::MIN } else { i64::MAX })
}

/// A stored trigger and the state kept with it.
pub(crate) struct TriggerRow {
    pub trigger: Trigger,
    /// Bumped by definition changes only (fires and edits check it).
    pub def_version: i64,
    /// The last schedule tick taken (Unix ms).
    pub cursor_ms: Option<i64>,
    /// Threshold: whether the last reported value satisfied the comparison.
    pub armed: bool,
}

/// What a durable store's trigger edit did.
pub(crate) enum Edited {
    /// Written; the trigger as stored.
    Written(Box<Trigger>),
    /// No trigger has that id (any more).
    Gone,
    /// Its definition changed since it was read: edit it again.
    Retry,
}

/// A fire, owned, as the caller prepared it: the execution is built from
/// the definition at `def_version` (caller code cannot run inside a
/// durable store's write, so the fire reads, builds, then writes under a
/// version check).
pub(crate) struct FireCommit {
    pub trigger_id: String,
    pub now: Timestamp,
    pub gate: crate::store::FireGate,
    /// Webhook message id, now and expiry (Unix seconds).
    pub webhook: Option<(String, i64, i64)>,
    pub new: crate::store::NewExecution,
    pub want_record: bool,
    pub def_version: i64,
}

/// What a durable store's fire step did, or that the definition changed
/// since the caller built the execution (build again).
pub(crate) enum FireStep {
    Done(crate::store::Fire),
    Rebuild,
}

/// A trigger's status as stored (`"active"`, `"paused"`, …).
pub(crate) fn status_text(t: &Trigger) -> String {
    serde_json::to_value(t.status).ok().and_then(|v| v.as_str().map(str::to_owned)).unwrap_or_default()
}

/// The codec functions a driver's operations use, naming the store in
/// their errors: `code`, `status_of`, `parse_ts`, `json`, `from_json`
/// (`$code`: the integer type of its status column).
macro_rules! store_codec {
    ($store:literal, $code:ty) => {
        /// Names this store in the errors of [`crate::columns`].
        const STORE: &str = $store;

        fn code(s: Status) -> $code {
            <$code>::from(crate::columns::status_code(s))
        }

        fn status_of(n: $code) -> StoreResult<Status> {
            crate::columns::status_of(STORE, i64::from(n))
        }

        fn parse_ts(s: &str) -> StoreResult<Timestamp> {
            crate::columns::parse_ts(STORE, s)
        }

        fn json<T: serde::Serialize + ?Sized>(v: &T) -> StoreResult<String> {
            crate::columns::to_json(STORE, v)
        }

        fn from_json<T: serde::de::DeserializeOwned>(what: &str, s: &str) -> StoreResult<T> {
            crate::columns::from_json(STORE, what, s)
        }
    };
}
pub(crate) use store_codec;
