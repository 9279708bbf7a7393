//! What can go wrong talking to a store.

/// A store operation that failed. Messages name the store (a PostgreSQL
/// store by host, port and database: never its password).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The store cannot be reached (PostgreSQL down, connection lost).
    #[error("{0}")]
    Unavailable(String),
    /// Someone else changed the store since it was read: the change was not
    /// made. Read again and retry.
    #[error("the store changed since it was read (revision {read} → {now}): nothing was written")]
    Conflict {
        /// The revision the change was based on.
        read: u64,
        /// The store's revision now.
        now: u64,
    },
    /// The database gave up on the change because of other writers (a
    /// deadlock, a lock not granted in time): nothing was written; retry.
    #[error("{0}")]
    Contended(String),
    /// A row or file the store holds cannot be used as it is.
    #[error("{0}")]
    Corrupt(String),
    /// This store is not written through the gateway (files: edit them).
    #[error("{0}")]
    ReadOnly(String),
    /// Reading a file or folder failed.
    #[error("{path}: {source}")]
    Io {
        /// The file or folder.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// Anything else the database refused.
    #[error("{0}")]
    Database(String),
}
