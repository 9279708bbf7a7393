//! Opening connections: plain TCP, or TLS when the URL says
//! `sslmode=require`. With TLS the server's certificate is always verified
//! (chain and host name, as libpq's `verify-full`), against the CA
//! certificates given ([`crate::PgStoreOptions::ca_pem`]) or the system's.

use std::sync::Arc;

use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_postgres::config::SslMode;
use tokio_postgres::{AsyncMessage, Client, Config, Connection, NoTls, Socket};
use tokio_postgres_rustls::MakeRustlsConnect;
use tracing::debug;

use crate::StoreError;

/// Where the system keeps its CA certificates (Debian, Ubuntu, Alpine).
const SYSTEM_CAS: &str = "/etc/ssl/certs/ca-certificates.crt";

/// How to reach the server.
#[derive(Clone)]
pub(crate) enum Transport {
    Plain,
    Tls(MakeRustlsConnect),
}

/// Why a connection was not made.
#[derive(Debug)]
pub(crate) enum ConnectError {
    Postgres(tokio_postgres::Error),
    /// The server accepted the connection but did not finish the start-up
    /// (a wrong service, a stuck server) within the connect timeout.
    TimedOut(std::time::Duration),
}

impl From<tokio_postgres::Error> for ConnectError {
    fn from(e: tokio_postgres::Error) -> Self {
        ConnectError::Postgres(e)
    }
}

impl std::fmt::Display for ConnectError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ConnectError::Postgres(e) => f.write_str(&super::detail(e)),
            ConnectError::TimedOut(limit) => write!(f, "no answer within {limit:?}"),
        }
    }
}

/// `connect` as a whole, hand-shake included, bounded by the connect
/// timeout (tokio-postgres bounds only the TCP connect).
async fn bounded<T>(
    config: &Config,
    connect: impl std::future::Future<Output = Result<T, tokio_postgres::Error>>,
) -> Result<T, ConnectError> {
    let limit = config.get_connect_timeout().copied().unwrap_or(std::time::Duration::from_secs(5));
    match tokio::time::timeout(limit, connect).await {
        Ok(result) => Ok(result?),
        Err(_) => Err(ConnectError::TimedOut(limit)),
    }
}

impl std::fmt::Debug for Transport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Transport::Plain => "Plain",
            Transport::Tls(_) => "Tls",
        })
    }
}

impl Transport {
    /// TLS for `sslmode=require`, else plain.
    pub(crate) fn for_config(config: &Config, ca_pem: Option<&[u8]>) -> Result<Transport, StoreError> {
        if config.get_ssl_mode() != SslMode::Require {
            return Ok(Transport::Plain);
        }
        let pem = match ca_pem {
            Some(pem) => pem.to_vec(),
            None => std::fs::read(SYSTEM_CAS).map_err(|e| {
                StoreError::Database(format!(
                    "sslmode=require: no CA certificates to verify the server with (PGSSLROOTCERT, or {SYSTEM_CAS}: {e})"
                ))
            })?,
        };
        use rustls_pki_types::pem::PemObject as _;
        let mut roots = rustls::RootCertStore::empty();
        for cert in rustls_pki_types::CertificateDer::pem_slice_iter(&pem) {
            let cert = cert.map_err(|e| StoreError::Database(format!("sslmode=require: CA certificates: {e}")))?;
            roots.add(cert).map_err(|e| StoreError::Database(format!("sslmode=require: CA certificate: {e}")))?;
        }
        if roots.is_empty() {
            return Err(StoreError::Database("sslmode=require: no CA certificate in the PEM given".into()));
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let tls = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| StoreError::Database(format!("TLS: {e}")))?
            .with_root_certificates(roots)
            .with_no_client_auth();
        Ok(Transport::Tls(MakeRustlsConnect::new(tls)))
    }

    /// A client whose connection is driven by a task of its own.
    pub(crate) async fn client(&self, config: &Config, described: Arc<str>) -> Result<Client, ConnectError> {
        match self {
            Transport::Plain => Ok(spawn_driver(bounded(config, config.connect(NoTls)).await?, described)),
            Transport::Tls(tls) => Ok(spawn_driver(bounded(config, config.connect(tls.clone())).await?, described)),
        }
    }

    /// A client whose notifications arrive on the receiver, and the task
    /// driving its connection (which ends when the connection does).
    pub(crate) async fn listening(
        &self,
        config: &Config,
    ) -> Result<(Client, mpsc::UnboundedReceiver<()>, JoinHandle<()>), ConnectError> {
        match self {
            Transport::Plain => Ok(spawn_listener(bounded(config, config.connect(NoTls)).await?)),
            Transport::Tls(tls) => Ok(spawn_listener(bounded(config, config.connect(tls.clone())).await?)),
        }
    }
}

fn spawn_driver<T>((client, connection): (Client, Connection<Socket, T>), described: Arc<str>) -> Client
where
    T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    tokio::spawn(async move {
        if let Err(e) = connection.await {
            debug!(store = %described, "connection closed: {e}");
        }
    });
    client
}

fn spawn_listener<T>(
    (client, mut connection): (Client, Connection<Socket, T>),
) -> (Client, mpsc::UnboundedReceiver<()>, JoinHandle<()>)
where
    T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let (tx, rx) = mpsc::unbounded_channel();
    let driver = tokio::spawn(async move {
        while let Some(message) = std::future::poll_fn(|cx| connection.poll_message(cx)).await {
            match message {
                Ok(AsyncMessage::Notification(_)) => {
                    if tx.send(()).is_err() {
                        return;
                    }
                }
                Ok(_) => {}
                Err(_) => return,
            }
        }
    });
    (client, rx, driver)
}
