//! The PostgreSQL store: resources shared by several control-plane
//! replicas, as Kuma keeps them in Universal mode.
//!
//! - **Reads** are one repeatable-read transaction: the revision and every
//!   row's version and `xmin` (which moves on any update, by hand too);
//!   only rows new or changed since the last read are fetched and parsed.
//! - **Writes** ([`ResourceStore::commit`]) lock the revision row, check it
//!   is still the one the change was computed from, and write each row on
//!   the condition that its version is still the one read: a change
//!   computed from an older state is a [`StoreError::Conflict`], never a
//!   silent overwrite.
//! - **Changes** are announced by a trigger (`NOTIFY`) and heard on a
//!   connection of their own, which reconnects with back-off when
//!   PostgreSQL goes away; [`ResourceStore::changes`] also moves on every
//!   reconnection and every [`PgStoreOptions::resync`], so a notification
//!   lost while disconnected costs at most one period.

mod connect;
mod listen;
mod rows;
mod schema;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use kuma_model::{ParsedFile, ResourceKey, UnknownFields, parse_file};
use tokio::sync::watch;
use tokio_postgres::{Client, Config, IsolationLevel};
use tracing::{debug, info};

use self::connect::Transport;
use self::rows::Row;
use crate::{ChangeSet, Entry, ResourceStore, StoreContent, StoreError};

/// How a [`PgStore`] connects and follows.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct PgStoreOptions {
    /// How long to wait for a connection.
    pub connect_timeout: Duration,
    /// How often [`ResourceStore::changes`] moves with no notification, so
    /// that followers read everything again.
    pub resync: Duration,
    /// Whether to create and upgrade the tables (one replica is enough,
    /// and any number may: they wait for each other).
    pub migrate: bool,
    /// CA certificates (PEM) to verify the server with when the URL says
    /// `sslmode=require`; the system's when `None`.
    pub ca_pem: Option<Vec<u8>>,
}

impl Default for PgStoreOptions {
    fn default() -> Self {
        PgStoreOptions {
            connect_timeout: Duration::from_secs(5),
            resync: Duration::from_secs(30),
            migrate: true,
            ca_pem: None,
        }
    }
}

/// Resources in a PostgreSQL database.
#[derive(Debug)]
pub struct PgStore {
    config: Config,
    transport: Transport,
    described: Arc<str>,
    client: tokio::sync::Mutex<Option<Client>>,
    cache: Mutex<BTreeMap<(String, String, String), Cached>>,
    changes: watch::Sender<u64>,
    connected: watch::Receiver<bool>,
    listener: tokio::task::JoinHandle<()>,
}

#[derive(Debug)]
struct Cached {
    xmin: String,
    version: i64,
    key: Option<ResourceKey>,
    parsed: Arc<ParsedFile>,
}

impl Drop for PgStore {
    fn drop(&mut self) {
        self.listener.abort();
    }
}

impl PgStore {
    /// Connects to the database at `url` (`postgres://user:password@host:port/db`
    /// or `host=... dbname=...`), runs the migrations, and starts listening
    /// for changes. Fails, naming the server, when PostgreSQL cannot be
    /// reached now.
    pub async fn connect(url: &str, options: PgStoreOptions) -> Result<PgStore, StoreError> {
        let mut config: Config = url.parse().map_err(|e: tokio_postgres::Error| {
            // The parser's message never repeats the URL (it may hold a password).
            StoreError::Database(format!("--store: not a PostgreSQL connection string: {e}"))
        })?;
        config
            .connect_timeout(options.connect_timeout)
            .keepalives(true)
            .keepalives_idle(Duration::from_secs(10))
            .application_name("kuma-gateway");
        // A statement waiting on a lock someone holds by hand, or a server
        // that stopped answering, fails instead of hanging a replica.
        let limits = "-c statement_timeout=30s -c lock_timeout=10s -c idle_in_transaction_session_timeout=60s";
        let session = match config.get_options() {
            Some(own) if !own.is_empty() => format!("{limits} {own}"),
            _ => limits.to_string(),
        };
        config.options(session);
        let described: Arc<str> = describe(&config).into();
        let transport = Transport::for_config(&config, options.ca_pem.as_deref())?;
        let mut client = transport.client(&config, described.clone()).await.map_err(|e| unreachable(&described, &e))?;
        if options.migrate {
            let ran = schema::migrate(&mut client).await.map_err(|e| database(&described, &e))?;
            if ran > 0 {
                info!(store = %described, migrations = ran, "store schema migrated");
            }
        }
        let (changes, _) = watch::channel(0);
        let (connected_tx, connected) = watch::channel(false);
        let listener = tokio::spawn(listen::listen(
            config.clone(),
            transport.clone(),
            described.clone(),
            changes.clone(),
            connected_tx,
            options.resync,
        ));
        Ok(PgStore {
            config,
            transport,
            described,
            client: tokio::sync::Mutex::new(Some(client)),
            cache: Mutex::default(),
            changes,
            connected,
            listener,
        })
    }

    /// The server and database, for messages: `PostgreSQL at host:port/db`.
    pub fn description(&self) -> &str {
        &self.described
    }

    /// True while the notification connection is up; it moves as
    /// PostgreSQL comes and goes.
    pub fn connected(&self) -> watch::Receiver<bool> {
        self.connected.clone()
    }

    /// The command connection, connected again if it was lost.
    async fn client(&self) -> Result<tokio::sync::MutexGuard<'_, Option<Client>>, StoreError> {
        let mut guard = self.client.lock().await;
        if guard.as_ref().is_none_or(Client::is_closed) {
            *guard = None;
            let client = self
                .transport
                .client(&self.config, self.described.clone())
                .await
                .map_err(|e| unreachable(&self.described, &e))?;
            *guard = Some(client);
        }
        Ok(guard)
    }

    /// Forgets the command connection.
    async fn reset(&self) {
        *self.client.lock().await = None;
    }

    fn error(&self, e: &tokio_postgres::Error) -> StoreError {
        // SQLSTATE classes 08 (connection exception) and 57 (operator
        // intervention: a shutdown, a terminated backend) mean the server
        // went away, not that it refused the statement.
        let code = e.as_db_error().map(|db| db.code().code()).unwrap_or_default();
        // Serialization failure, deadlock, lock not granted in time.
        if matches!(code, "40001" | "40P01" | "55P03") {
            return StoreError::Contended(database(&self.described, e).to_string());
        }
        let gone = code.len() == 5 && matches!(&code[..2], "08" | "57") && code != "57014";
        if gone || e.is_closed() || e.as_db_error().is_none() {
            unavailable(&self.described, e)
        } else {
            database(&self.described, e)
        }
    }

    async fn read_rows(&self) -> Result<StoreContent, StoreError> {
        let mut guard = self.client().await?;
        let client = guard.as_mut().expect("connected above");
        let tx = client
            .build_transaction()
            .isolation_level(IsolationLevel::RepeatableRead)
            .read_only(true)
            .start()
            .await
            .map_err(|e| self.error(&e))?;
        let revision: i64 = tx
            .query_one("SELECT revision FROM kuma_gateway_revision WHERE id = 1", &[])
            .await
            .map_err(|e| self.error(&e))?
            .get(0);
        let heads = tx
            .query(
                "SELECT type, mesh, name, version, xmin::text FROM kuma_gateway_resources ORDER BY type, mesh, name",
                &[],
            )
            .await
            .map_err(|e| self.error(&e))?;
        let heads: Vec<((String, String, String), i64, String)> =
            heads.iter().map(|r| ((r.get(0), r.get(1), r.get(2)), r.get(3), r.get(4))).collect();
        let stale: Vec<&(String, String, String)> = {
            let cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
            heads
                .iter()
                .filter(|(key, _, xmin)| cache.get(key).is_none_or(|c| &c.xmin != xmin))
                .map(|(key, _, _)| key)
                .collect()
        };
        let mut fetched = BTreeMap::new();
        if !stale.is_empty() {
            let types: Vec<&str> = stale.iter().map(|k| k.0.as_str()).collect();
            let meshes: Vec<&str> = stale.iter().map(|k| k.1.as_str()).collect();
            let names: Vec<&str> = stale.iter().map(|k| k.2.as_str()).collect();
            let rows = tx
                .query(
                    "SELECT type, mesh, name, version, xmin::text, spec, labels::text, namespace, creation_time
                     FROM kuma_gateway_resources
                     WHERE (type, mesh, name) IN (SELECT * FROM unnest($1::text[], $2::text[], $3::text[]))",
                    &[&types, &meshes, &names],
                )
                .await
                .map_err(|e| self.error(&e))?;
            let rows: Vec<(Row, i64, String)> = rows
                .iter()
                .map(|r| {
                    let row = Row {
                        kind: r.get(0),
                        mesh: r.get(1),
                        name: r.get(2),
                        spec: r.get(5),
                        labels: r.get(6),
                        namespace: r.get(7),
                        creation_time: r.get(8),
                    };
                    (row, r.get(3), r.get(4))
                })
                .collect();
            let parsed = crate::parallel::map(&rows, |(row, _, _)| {
                Arc::new(parse_file(&row.location(), &row.document(), UnknownFields::Reject))
            });
            for ((row, version, xmin), parsed) in rows.into_iter().zip(parsed) {
                let cached = Cached { xmin, version, key: row.key(), parsed };
                fetched.insert((row.kind, row.mesh, row.name), cached);
            }
        }
        tx.commit().await.map_err(|e| self.error(&e))?;
        // The command connection stays held until the cache is updated, so
        // reads update it in the order they read: an older read finishing
        // last cannot mix its rows into a newer one's content.
        let mut cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        let parsed = fetched.len();
        cache.extend(fetched);
        let present: BTreeSet<&(String, String, String)> = heads.iter().map(|(k, _, _)| k).collect();
        cache.retain(|k, _| present.contains(k));
        debug!(store = %self.described, revision, rows = cache.len(), parsed, "read");
        let entries = cache
            .values()
            .map(|c| Entry { key: c.key.clone(), version: Some(c.version), parsed: c.parsed.clone() })
            .collect();
        drop(cache);
        drop(guard);
        Ok(StoreContent { revision: revision as u64, entries, notes: Vec::new() })
    }

    async fn commit_change(&self, change: ChangeSet) -> Result<u64, StoreError> {
        let mut guard = self.client().await?;
        let client = guard.as_mut().expect("connected above");
        let tx = client.transaction().await.map_err(|e| self.error(&e))?;
        let now: i64 = tx
            .query_one("SELECT revision FROM kuma_gateway_revision WHERE id = 1 FOR UPDATE", &[])
            .await
            .map_err(|e| self.error(&e))?
            .get(0);
        let conflict = |now: i64| StoreError::Conflict { read: change.base, now: now as u64 };
        if now as u64 != change.base {
            return Err(conflict(now));
        }
        for put in &change.puts {
            let r = &put.resource;
            let kind = r.spec.kind().as_str();
            let spec = r.spec.to_json().to_string();
            let labels = serde_json::to_string(&r.meta.labels).unwrap_or_else(|_| "{}".into());
            let created: Option<SystemTime> = r.meta.creation_time.map(kuma_model::Timestamp::to_system_time);
            let written = match put.version {
                Some(version) => {
                    tx.execute(
                        "UPDATE kuma_gateway_resources
                         SET version = version + 1, spec = $4, labels = $5::text::jsonb, namespace = $6,
                             creation_time = COALESCE($7, creation_time), modification_time = now()
                         WHERE type = $1 AND mesh = $2 AND name = $3 AND version = $8",
                        &[&kind, &r.meta.mesh, &r.meta.name, &spec, &labels, &r.meta.namespace, &created, &version],
                    )
                    .await
                }
                None => {
                    tx.execute(
                        "INSERT INTO kuma_gateway_resources
                         (type, mesh, name, version, spec, labels, namespace, creation_time, modification_time)
                         VALUES ($1, $2, $3, 1, $4, $5::text::jsonb, $6, COALESCE($7, now()), now())
                         ON CONFLICT DO NOTHING",
                        &[&kind, &r.meta.mesh, &r.meta.name, &spec, &labels, &r.meta.namespace, &created],
                    )
                    .await
                }
            };
            if written.map_err(|e| self.error(&e))? != 1 {
                return Err(conflict(now));
            }
        }
        for (key, version) in &change.deletes {
            let deleted = tx
                .execute(
                    "DELETE FROM kuma_gateway_resources WHERE type = $1 AND mesh = $2 AND name = $3 AND version = $4",
                    &[&key.kind.as_str(), &key.mesh, &key.name, version],
                )
                .await
                .map_err(|e| self.error(&e))?;
            if deleted != 1 {
                return Err(conflict(now));
            }
        }
        let revision: i64 = tx
            .query_one("SELECT revision FROM kuma_gateway_revision WHERE id = 1", &[])
            .await
            .map_err(|e| self.error(&e))?
            .get(0);
        tx.commit().await.map_err(|e| self.error(&e))?;
        Ok(revision as u64)
    }
}

impl ResourceStore for PgStore {
    async fn read(&self) -> Result<StoreContent, StoreError> {
        match self.read_rows().await {
            // A connection cut since its last use (a PostgreSQL restart, a
            // proxy's idle timeout) is replaced once before giving up.
            Err(StoreError::Unavailable(_)) => {
                self.reset().await;
                self.read_rows().await
            }
            other => other,
        }
    }

    async fn commit(&self, change: ChangeSet) -> Result<u64, StoreError> {
        match self.commit_change(change.clone()).await {
            // Trying again is safe: had the lost commit been made, the
            // revision moved and this one is a conflict.
            Err(StoreError::Unavailable(_)) => {
                self.reset().await;
                self.commit_change(change).await
            }
            other => other,
        }
    }

    fn changes(&self) -> watch::Receiver<u64> {
        self.changes.subscribe()
    }
}

/// `PostgreSQL at host:port/db as user`: the server, never the password.
fn describe(config: &Config) -> String {
    use tokio_postgres::config::Host;
    let hosts: Vec<String> = config
        .get_hosts()
        .iter()
        .enumerate()
        .map(|(i, h)| {
            let port = config.get_ports().get(i).or(config.get_ports().first()).copied().unwrap_or(5432);
            match h {
                Host::Tcp(name) => format!("{name}:{port}"),
                Host::Unix(path) => format!("{}:{port}", path.display()),
            }
        })
        .collect();
    let hosts = if hosts.is_empty() { "localhost:5432".to_string() } else { hosts.join(",") };
    let db = config.get_dbname().or(config.get_user()).unwrap_or("postgres");
    format!("PostgreSQL at {hosts}/{db}")
}

/// The database's own words, else the client's.
fn detail(e: &tokio_postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => format!("{}: {}", db.code().code(), db.message()),
        None => {
            let mut text = e.to_string();
            let mut source = std::error::Error::source(e);
            while let Some(s) = source {
                text = format!("{text}: {s}");
                source = s.source();
            }
            text
        }
    }
}

fn unreachable(described: &str, e: &connect::ConnectError) -> StoreError {
    StoreError::Unavailable(format!("cannot reach {described}: {e}"))
}

fn unavailable(described: &str, e: &tokio_postgres::Error) -> StoreError {
    StoreError::Unavailable(format!("cannot reach {described}: {}", detail(e)))
}

fn database(described: &str, e: &tokio_postgres::Error) -> StoreError {
    StoreError::Database(format!("{described}: {}", detail(e)))
}
