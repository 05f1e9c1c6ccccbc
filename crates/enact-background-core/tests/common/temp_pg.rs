//! A PostgreSQL store in a schema of its own on `DATABASE_URL`, dropped
//! when the store is dropped. Without `DATABASE_URL` it says loudly that
//! the test did not run; with it set but unreachable the test fails.
//! Include with `#[path = "common/temp_pg.rs"] mod temp_pg;`.
#![allow(dead_code)]

use std::sync::atomic::{AtomicU32, Ordering};

#[path = "guarded.rs"]
mod guarded;

use enact_background_core::postgres::{PgOptions, PgStore};
pub use guarded::Guarded;

/// The schema of a [`TempPg`], dropped with it.
pub struct PgSchema {
    /// The store's connection string (its connections named after the schema).
    pub url: String,
    /// `DATABASE_URL` itself, for the test's own connections.
    pub base_url: String,
    pub schema: String,
}

/// The store, and its schema as the guard.
pub type TempPg = Guarded<PgStore, PgSchema>;

/// `DATABASE_URL`, or `None` after saying loudly that the test does not run.
pub fn database_url() -> Option<String> {
    match std::env::var("DATABASE_URL") {
        Ok(url) if !url.is_empty() => Some(url),
        _ => {
            eprintln!("!!! DATABASE_URL is not set: this PostgreSQL test did NOT run (set it, e.g. postgres://root@127.0.0.1:5432/test)");
            None
        }
    }
}

/// A schema name no other test uses.
pub fn fresh_schema(prefix: &str) -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    format!("{prefix}_{}_{}_{}", std::process::id(), N.fetch_add(1, Ordering::Relaxed), fastrand::u32(..))
}

impl TempPg {
    pub fn new(options: PgOptions) -> Option<Self> {
        let url = database_url()?;
        let schema = fresh_schema("t");
        // Its connections are named after the schema, so that a test can
        // kill its own and no other test's.
        let sep = if url.contains('?') { '&' } else { '?' };
        let base_url = url.clone();
        let url = format!("{url}{sep}application_name={schema}");
        let store = PgStore::new(&url, PgOptions { schema: schema.clone(), ..options }).expect("the store is made");
        Some(Guarded { store, guard: PgSchema { url, base_url, schema } })
    }

    /// Another store over the same schema (another engine).
    pub fn peer(&self, options: PgOptions) -> PgStore {
        PgStore::new(&self.guard.url, PgOptions { schema: self.guard.schema.clone(), ..options }).expect("the store is made")
    }
}

/// Drops `schema` on `url`, from a thread of its own (works inside and
/// outside a runtime).
pub fn drop_schema(url: &str, schema: &str) {
    let (url, schema) = (url.to_owned(), schema.to_owned());
    let _ = std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a runtime");
        rt.block_on(async {
            if let Ok((client, conn)) = tokio_postgres::connect(&url, tokio_postgres::NoTls).await {
                tokio::spawn(conn);
                let _ = client.batch_execute(&format!("DROP SCHEMA IF EXISTS {schema} CASCADE")).await;
            }
        });
    })
    .join();
}

impl Drop for PgSchema {
    fn drop(&mut self) {
        drop_schema(&self.base_url, &self.schema);
    }
}
