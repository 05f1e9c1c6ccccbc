//! Engine errors, typed by outcome, each with a stable code that reaches
//! JavaScript as `err.code`.

/// Stable error codes (DESIGN §4).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ErrorCode {
    /// A trigger definition is invalid.
    InvalidTrigger,
    /// A submission or argument is invalid.
    InvalidExecution,
    /// No callable is registered under that name.
    UnknownCallable,
    /// No trigger or execution has that id.
    NotFound,
    /// A webhook signature did not verify.
    WebhookSignature,
    /// A trigger asked to fire now cannot (paused, disabled, fired,
    /// expired, not started or cooling down).
    TriggerInactive,
    /// The engine is shutting down or shut down.
    Shutdown,
    /// The store failed.
    Store,
    /// A transform could not produce a value.
    Transform,
    /// A bug in the engine (a caught panic).
    Internal,
    /// An attempt ran past its `timeoutMs` (the reason of `ctx.signal`).
    Timeout,
    /// An execution was cancelled (the reason of `ctx.signal`).
    Cancelled,
    /// A listener, target handler or callback threw or failed (a process
    /// warning, never an exception).
    Listener,
    /// A webhook request body is over `maxBodyBytes` (HTTP 413).
    BodyTooLarge,
    /// A webhook request used a method other than POST (HTTP 405).
    Method,
    /// A webhook request could not be read (HTTP 400).
    BadRequest,
    /// The `code` of an execution that ended `failed` because its engine
    /// stopped while it ran more than `maxStalls` times.
    Stalled,
    /// A webhook delivery refused because its trigger already remembers as
    /// many unexpired message ids as its replay budget holds (HTTP 429);
    /// nothing fired. Sent again once the oldest id expires, it is accepted.
    RateLimited,
    /// The execution is not in a state the call applies to (`retry` of an
    /// execution that is queued, running or completed).
    InvalidState,
}

impl ErrorCode {
    /// The code string, e.g. `ENACT_INVALID_EXECUTION`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::InvalidTrigger => "ENACT_INVALID_TRIGGER",
            Self::InvalidExecution => "ENACT_INVALID_EXECUTION",
            Self::UnknownCallable => "ENACT_UNKNOWN_CALLABLE",
            Self::NotFound => "ENACT_NOT_FOUND",
            Self::WebhookSignature => "ENACT_WEBHOOK_SIGNATURE",
            Self::TriggerInactive => "ENACT_TRIGGER_INACTIVE",
            Self::Shutdown => "ENACT_SHUTDOWN",
            Self::Store => "ENACT_STORE",
            Self::Transform => "ENACT_TRANSFORM",
            Self::Internal => "ENACT_INTERNAL",
            Self::Timeout => "ENACT_TIMEOUT",
            Self::Cancelled => "ENACT_CANCELLED",
            Self::Listener => "ENACT_LISTENER",
            Self::BodyTooLarge => "ENACT_BODY_TOO_LARGE",
            Self::Method => "ENACT_METHOD",
            Self::BadRequest => "ENACT_BAD_REQUEST",
            Self::Stalled => "ENACT_STALLED",
            Self::RateLimited => "ENACT_RATE_LIMITED",
            Self::InvalidState => "ENACT_INVALID_STATE",
        }
    }

    /// Every code, in declaration order: the list JavaScript exports as
    /// `ErrorCodes` and the typings list as `ErrorCode`.
    pub const ALL: [ErrorCode; 19] = [
        Self::InvalidTrigger,
        Self::InvalidExecution,
        Self::UnknownCallable,
        Self::NotFound,
        Self::WebhookSignature,
        Self::TriggerInactive,
        Self::Shutdown,
        Self::Store,
        Self::Transform,
        Self::Internal,
        Self::Timeout,
        Self::Cancelled,
        Self::Listener,
        Self::BodyTooLarge,
        Self::Method,
        Self::BadRequest,
        Self::Stalled,
        Self::RateLimited,
        Self::InvalidState,
    ];
}

/// An error with a stable code and a message naming the field at fault.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct EngineError {
    /// Stable code.
    pub code: ErrorCode,
    /// Readable message, starting with the field path where one applies.
    pub message: String,
}

impl EngineError {
    /// A new error.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self { code, message: message.into() }
    }

    /// `ENACT_INVALID_EXECUTION` for `field`.
    pub fn invalid(field: &str, why: impl std::fmt::Display) -> Self {
        Self::new(ErrorCode::InvalidExecution, format!("{field}: {why}"))
    }

    /// `ENACT_INVALID_TRIGGER` for `field`.
    pub fn invalid_trigger(field: &str, why: impl std::fmt::Display) -> Self {
        Self::new(ErrorCode::InvalidTrigger, format!("{field}: {why}"))
    }

    /// `ENACT_NOT_FOUND` for an id.
    pub fn not_found(what: &str, id: &str) -> Self {
        Self::new(ErrorCode::NotFound, format!("{what} {id:?} not found"))
    }
}

/// A store driver's failure, typed by what the caller can do about it.
#[derive(Clone, Debug, thiserror::Error)]
pub enum StoreError {
    /// A row with that key exists (a duplicate id).
    #[error("store: {0}")]
    Conflict(String),
    /// The row the operation needs does not exist.
    #[error("store: {0} not found")]
    NotFound(String),
    /// The store cannot answer now (unreachable, locked, disk full,
    /// corrupt); the engine retries its own work later.
    #[error("store unavailable: {message}")]
    Unavailable {
        /// What failed.
        message: String,
        /// The driver's own error, if any.
        #[source]
        source: Option<std::sync::Arc<dyn std::error::Error + Send + Sync>>,
    },
}

impl StoreError {
    /// [`StoreError::Unavailable`] without a source.
    pub fn unavailable(message: impl Into<String>) -> Self {
        Self::Unavailable { message: message.into(), source: None }
    }
}

/// Result with a [`StoreError`].
pub type StoreResult<T> = Result<T, StoreError>;

impl From<StoreError> for EngineError {
    fn from(e: StoreError) -> Self {
        Self::new(ErrorCode::Store, e.to_string())
    }
}

impl From<crate::transform::TransformError> for EngineError {
    fn from(e: crate::transform::TransformError) -> Self {
        Self::new(ErrorCode::Transform, e.0)
    }
}

/// Result with an [`EngineError`].
pub type EngineResult<T> = Result<T, EngineError>;
