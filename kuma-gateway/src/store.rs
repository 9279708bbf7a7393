//! Where a command's resources come from: PATHs (files and folders), or a
//! PostgreSQL store named by `--store URL` (or `KUMA_GATEWAY_STORE`, which
//! keeps a password out of the process list).

use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use kuma_model::{ResourceSet, Severity};
use kuma_store::{ChangeSet, FileStore, PgStore, PgStoreOptions, ResourceStore, StoreContent, StoreError};
use tokio::sync::watch;

/// The environment variable `--store` falls back to.
pub(crate) const STORE_ENV: &str = "KUMA_GATEWAY_STORE";

/// PATHs or `--store`.
#[derive(clap::Args, Clone, Debug)]
pub(crate) struct Resources {
    /// Files or folders (searched for *.yaml, *.yml, *.json).
    pub(crate) paths: Vec<PathBuf>,
    /// A PostgreSQL store instead of PATHs:
    /// `postgres://user:password@host:port/database`. Without PATHs, the
    /// KUMA_GATEWAY_STORE environment variable is read when this is absent.
    #[arg(long, value_name = "URL")]
    pub(crate) store: Option<String>,
}

impl Resources {
    /// The store URL given or in the environment (only when no PATHs are).
    pub(crate) fn store_url(&self) -> Result<Option<String>> {
        match (&self.store, self.paths.is_empty()) {
            (Some(_), false) => bail!("give PATHs or --store, not both"),
            (Some(url), true) => Ok(Some(url.clone())),
            (None, true) => match std::env::var(STORE_ENV) {
                Ok(url) if !url.is_empty() => Ok(Some(url)),
                _ => bail!("no resources: give files or folders, or --store URL (or set {STORE_ENV})"),
            },
            (None, false) => Ok(None),
        }
    }

    /// Opens the store (connecting to PostgreSQL, which fails clearly when
    /// it is down).
    pub(crate) async fn open(&self) -> Result<AnyStore> {
        Ok(match self.store_url()? {
            Some(url) => {
                let mut options = PgStoreOptions::default();
                // libpq's variable: the CA certificates for sslmode=require.
                if let Some(path) = std::env::var_os("PGSSLROOTCERT") {
                    let pem = std::fs::read(&path)
                        .with_context(|| format!("PGSSLROOTCERT {}", std::path::Path::new(&path).display()))?;
                    options.ca_pem = Some(pem);
                }
                AnyStore::Postgres(Box::new(PgStore::connect(&url, options).await?))
            }
            None => AnyStore::Files(FileStore::new(self.paths.clone())),
        })
    }
}

/// The file store or the PostgreSQL store.
#[derive(Debug)]
pub(crate) enum AnyStore {
    /// PATHs.
    Files(FileStore),
    /// `--store`.
    Postgres(Box<PgStore>),
}

impl AnyStore {
    /// What the store is, for messages: `3 files` or `PostgreSQL at ...`.
    pub(crate) fn describe(&self, content: &StoreContent) -> String {
        match self {
            AnyStore::Files(_) => {
                let n = content.entries.len();
                format!("{n} file{}", if n == 1 { "" } else { "s" })
            }
            AnyStore::Postgres(pg) => pg.description().to_string(),
        }
    }
}

impl ResourceStore for AnyStore {
    async fn read(&self) -> Result<StoreContent, StoreError> {
        match self {
            AnyStore::Files(s) => s.read().await,
            AnyStore::Postgres(s) => s.read().await,
        }
    }

    async fn commit(&self, change: ChangeSet) -> Result<u64, StoreError> {
        match self {
            AnyStore::Files(s) => s.commit(change).await,
            AnyStore::Postgres(s) => s.commit(change).await,
        }
    }

    fn changes(&self) -> watch::Receiver<u64> {
        match self {
            AnyStore::Files(s) => s.changes(),
            AnyStore::Postgres(s) => s.changes(),
        }
    }
}

/// Reads and validates the resources; on failure prints the report on
/// stderr and returns `None`.
pub(crate) fn load(resources: &Resources) -> Result<Option<(ResourceSet, String)>> {
    // One thread is enough to read a store (files are parsed on threads of
    // their own); a multi-thread runtime would start, and stop, a worker
    // per core around the read.
    let runtime =
        tokio::runtime::Builder::new_current_thread().enable_all().build().context("starting the async runtime")?;
    runtime.block_on(async {
        let store = resources.open().await?;
        let content = store.read().await?;
        let described = store.describe(&content);
        Ok(match content.assemble() {
            Ok((set, warnings)) => {
                for w in warnings.iter().chain(&kuma_xds_gen::ignored_resources(&set)) {
                    eprintln!("{w}");
                }
                Some((set, described))
            }
            Err(e) => {
                report(&e);
                None
            }
        })
    })
}

/// Prints a validation report as `validate` does.
pub(crate) fn report(e: &kuma_model::LoadError) {
    for d in &e.diagnostics {
        eprintln!("{d}");
    }
    let errors = e.diagnostics.iter().filter(|d| d.severity == Severity::Error).count();
    eprintln!("{errors} errors");
}
