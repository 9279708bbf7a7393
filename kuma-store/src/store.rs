//! The trait every store implements, and the change it commits.

use std::future::Future;

use kuma_model::{Resource, ResourceKey};
use tokio::sync::watch;

use crate::{StoreContent, StoreError};

/// A place resources are kept.
///
/// Implement it to keep resources elsewhere (a Kubernetes API, etcd, your
/// own service): the gateway then follows your store as it follows files.
pub trait ResourceStore: Send + Sync + 'static {
    /// Reads everything the store holds now, as one consistent revision.
    fn read(&self) -> impl Future<Output = Result<StoreContent, StoreError>> + Send;

    /// Makes `change` if the store is still at `change.base`, all or
    /// nothing; returns the new revision. [`StoreError::Conflict`] when
    /// another change came first.
    fn commit(&self, change: ChangeSet) -> impl Future<Output = Result<u64, StoreError>> + Send;

    /// A counter that moves whenever the content may have changed (a file
    /// edited, a notification, a reconnection): read again then.
    fn changes(&self) -> watch::Receiver<u64>;
}

/// A resource to create or replace.
#[derive(Debug, Clone)]
pub struct Put {
    /// The resource; its creation time is kept when it replaces one, and
    /// set to now when it is new and names none.
    pub resource: Resource,
    /// The version of the row it replaces, as read; `None` for a new
    /// resource (a conflict if one was created in the meantime).
    pub version: Option<i64>,
}

/// Writes made together, based on one revision of the store.
#[derive(Debug, Clone, Default)]
pub struct ChangeSet {
    /// The revision the change was computed from.
    pub base: u64,
    /// Resources to create or replace.
    pub puts: Vec<Put>,
    /// Resources to remove, with the version read.
    pub deletes: Vec<(ResourceKey, i64)>,
}
