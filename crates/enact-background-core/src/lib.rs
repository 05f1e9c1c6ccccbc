//! The pure-Rust core of enact-background: the wire model shared with
//! enact-core, the executor (queue order, concurrency, retries, timeouts,
//! cancellation, target binding) and the storage seam. It knows nothing of
//! Node.js; the addon at the repository root only converts and forwards.
//!
//! ```
//! use std::sync::Arc;
//! use enact_background_core::prelude::*;
//!
//! struct NoHost;
//! impl Host for NoHost { fn wake(&self) {} }
//!
//! let exec = Executor::new(Arc::new(MemoryStore::new()), Arc::new(SystemClock), Arc::new(NoHost), ExecutorConfig::default());
//! exec.register_callable("echo").unwrap();
//! let req = validate::submit_request(&serde_json::json!({"tenantId": "t1", "callableName": "echo", "input": "hi"})).unwrap();
//! let queued = exec.submit(req, Watch::No).unwrap();
//! let started = exec.take().unwrap();
//! assert_eq!(started[0].execution_id, queued.execution_id);
//! exec.complete(&queued.execution_id, 1, Outcome::Completed(serde_json::json!("hi"))).unwrap();
//! assert_eq!(exec.get(&queued.execution_id).unwrap().unwrap().status, BackgroundExecutionStatus::Completed);
//! ```

#![warn(missing_docs)]

pub mod clock;
mod columns;
pub mod cron;
pub mod error;
pub mod executor;
pub mod ids;
pub mod memory;
pub mod metrics;
pub mod model;
pub mod pattern;
pub mod sqlite;
pub mod postgres;
pub mod store;
pub mod transform;
pub mod triggers;
pub mod validate;
pub mod webhook;

/// The names most users need.
pub mod prelude {
    pub use crate::clock::{Clock, ManualClock, SystemClock, TokioClock};
    pub use crate::error::{EngineError, EngineResult, ErrorCode};
    pub use crate::executor::{AbortReason, Answer, CallError, Diagnostic, Dispatch, EventKind, Executor, ExecutorConfig, Existing, Host, Notice, Outcome, Receipt, Stats, Submission, Watch};
    pub use crate::memory::{MemoryConfig, MemoryStore};
    pub use crate::model::*;
    pub use crate::store::{Driver, ExecutionFilter, TriggerFilter};
    pub use crate::triggers::{Stimulus, TriggerConfig, TriggerEngine};
    pub use crate::validate;
}
