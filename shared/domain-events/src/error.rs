/// Why a drain (or a sink) failed. Nothing is lost either way: rows stay in the outbox until a
/// sink has put them, so every drain may be retried; [`Error::is_retryable`] says whether
/// retrying *soon* may help, or whether something must be fixed first.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Postgres failed (reading the outbox or marking rows published).
    #[error("the domain event outbox is unavailable: {0}; retrying is safe (the events stay in the outbox)")]
    Database(#[from] sqlx::Error),
    /// The sink could not be reached, timed out or throttled.
    #[error("the event sink is unavailable: {0}; retrying is safe (the events stay in the outbox)")]
    Unavailable(String),
    /// The sink refused the events (a missing bus, no permission, a malformed entry): retrying
    /// will not help until that is fixed; the events stay in the outbox meanwhile.
    #[error("the event sink refused the events: {0}; fix the sink's configuration, the events stay in the outbox")]
    Rejected(String),
}

impl Error {
    /// Whether retrying soon may succeed without changing anything.
    pub fn is_retryable(&self) -> bool {
        match self {
            Error::Database(e) => !matches!(e, sqlx::Error::Configuration(_) | sqlx::Error::ColumnNotFound(_)),
            Error::Unavailable(_) => true,
            Error::Rejected(_) => false,
        }
    }
}
