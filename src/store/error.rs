//! The store's one error type: the database could not be reached (the caller keeps
//! its work and tries again), or a query failed.

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database unavailable: {0}")]
    Unavailable(String),
    #[error("database query failed: {0}")]
    Query(String),
}

impl From<tokio_postgres::Error> for StoreError {
    fn from(e: tokio_postgres::Error) -> Self {
        match e.as_db_error() {
            Some(db) => Self::Query(format!("{} ({})", db.message(), db.code().code())),
            None => Self::Unavailable(crate::redact::error(&e)),
        }
    }
}

impl From<deadpool_postgres::PoolError> for StoreError {
    fn from(e: deadpool_postgres::PoolError) -> Self {
        Self::Unavailable(crate::redact::error(&e))
    }
}
