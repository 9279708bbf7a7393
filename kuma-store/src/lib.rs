//! Where the Kuma gateway's resources live: a [`ResourceStore`] trait with
//! two implementations.
//!
//! - [`FileStore`]: YAML/JSON files and folders, followed as they are
//!   edited. The default, and read-only: people edit the files.
//! - [`PgStore`]: a PostgreSQL database shared by several control-plane
//!   replicas, as Kuma keeps its resources in Universal mode. Writes are
//!   transactions with optimistic concurrency; every replica learns of them
//!   through `LISTEN/NOTIFY` and a periodic full read. `sslmode=require`
//!   speaks TLS and verifies the server.
//!
//! A store hands out [`StoreContent`]: what it holds, parsed with
//! `kuma-model`'s rules and cached per file or row, so a re-read parses only
//! what changed. [`apply`] and [`delete`] change a writable store only into
//! a valid set, whatever other writers do at the same time.
//!
//! ```no_run
//! # async fn demo() -> Result<(), kuma_store::StoreError> {
//! use kuma_store::{FileStore, ResourceStore};
//! let store = FileStore::new(vec!["examples/edge-gateway".into()]);
//! let content = store.read().await?;
//! let (set, _warnings) = content.assemble().expect("valid resources");
//! println!("{} resources at revision {}", set.len(), content.revision);
//! # Ok(()) }
//! ```

mod apply;
mod content;
mod error;
mod files;
mod parallel;
mod postgres;
mod store;
mod watch;

pub use apply::{Applied, ApplyError, Outcome, apply, delete};
pub use content::{Entry, StoreContent};
pub use error::StoreError;
pub use files::{FileStore, collect_files};
pub use postgres::{PgStore, PgStoreOptions};
pub use store::{ChangeSet, Put, ResourceStore};
