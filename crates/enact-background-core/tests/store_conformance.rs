//! The store conformance suite against every driver: one module per
//! driver, one test per case of `conformance/mod.rs`.

mod conformance;
#[path = "common/temp_pg.rs"]
mod temp_pg;
#[path = "common/temp_sqlite.rs"]
mod temp_sqlite;

use std::sync::Arc;

use enact_background_core::memory::{MemoryConfig, MemoryStore};
use enact_background_core::postgres::PgOptions;
use enact_background_core::sqlite::SqliteOptions;
use temp_sqlite::TempSqlite;

/// Runs every generic case against one driver. The list is written once,
/// so that a new case runs on every driver and a new driver runs every case.
macro_rules! every_case {
    ($driver:ident => $make:expr) => {
        conformance! {
            $driver => $make;
            insert_get_and_duplicates,
            insert_many_keeps_every_field,
            claim_order_priority_class_tenant_fifo,
            claim_marks_running_and_leases,
            claim_max_zero_claims_nothing,
            claim_tenant_limit_counts_running_work,
            claim_callable_limit_skips_that_callable_only,
            claim_takes_only_served_callables,
            claim_merges_callables_oldest_first,
            staging_makes_delayed_work_claimable_when_due,
            finish_many_is_compare_and_set_per_row,
            retry_release_cancel_and_bind,
            list_filters_and_orders,
            list_pages_newest_first_with_a_cursor,
            progress_is_written_for_the_running_attempt_only,
            retry_requeues_failed_timeout_and_cancelled,
            breakdown_counts_waiting_and_running_by_name,
            rescue_requeues_expired_leases_then_fails_them,
            prune_drops_the_oldest_finished,
            triggers_insert_get_list_update_remove,
            fire_counts_and_inserts_together,
            fire_respects_cooldown,
            fire_tick_fires_each_tick_once,
            fire_crossing_keeps_arming,
            trigger_states_read_cursor_and_arming_without_changing_them,
            webhook_ids_are_remembered_per_trigger_only_when_fired,
            trigger_changes_are_reported,
        }
    };
}

every_case!(memory => Arc::new(MemoryStore::new()));

// The SQLite driver, a temporary file per case.
every_case!(sqlite => Arc::new(TempSqlite::new(SqliteOptions::default())));

// The PostgreSQL driver, a schema per case on DATABASE_URL (without it each
// case says loudly that it did not run).
every_case!(postgres => match temp_pg::TempPg::new(PgOptions::default()) { Some(d) => Arc::new(d), None => return });

// Cases that need a driver configured otherwise than by default.
conformance! {
    memory_small_replay_budget => Arc::new(MemoryStore::with_config(MemoryConfig { replay_capacity: conformance::SMALL_REPLAY_BUDGET, ..MemoryConfig::default() }));
        webhook_replay_budget_refuses_new_ids_and_forgets_none,
}

conformance! {
    sqlite_small_replay_budget => Arc::new(TempSqlite::new(SqliteOptions { replay_capacity: conformance::SMALL_REPLAY_BUDGET, ..SqliteOptions::default() }));
        webhook_replay_budget_refuses_new_ids_and_forgets_none,
}

conformance! {
    postgres_small_replay_budget => match temp_pg::TempPg::new(PgOptions { replay_capacity: conformance::SMALL_REPLAY_BUDGET, ..PgOptions::default() }) { Some(d) => Arc::new(d), None => return };
        webhook_replay_budget_refuses_new_ids_and_forgets_none,
}
