//! A SQLite store in a temporary directory that lives as long as the
//! store: the directory is removed after the store is closed.
//! Include with `#[path = "common/temp_sqlite.rs"] mod temp_sqlite;`.
#![allow(dead_code)]

#[path = "guarded.rs"]
mod guarded;

use enact_background_core::sqlite::{SqliteOptions, SqliteStore};
pub use guarded::Guarded;

/// The store, and its directory as the guard.
pub type TempSqlite = Guarded<SqliteStore, tempfile::TempDir>;

impl TempSqlite {
    pub fn new(options: SqliteOptions) -> Self {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let store = SqliteStore::open(dir.path().join("store.db"), options).expect("the store opens");
        Guarded { store, guard: dir }
    }
}
