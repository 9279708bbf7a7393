//! `kuma-gateway`: the command line over the library crates: resource
//! files, the CLI and the Envoy supervisor. Serving is `kuma-xds-server`'s.

mod admin;
mod envoy;
mod logging;
mod serve;
mod status;
mod store;
mod store_commands;
mod table;
mod token;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand, ValueEnum};
use kuma_model::{ResourceSet, Spec};
use kuma_xds_gen::render;
use logging::LogFormat;

#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(name = "kuma-gateway", version, about = "Kuma gateway: Kuma resources in, Envoy config out")]
struct Cli {
    #[command(subcommand)]
    command: Command,
    /// Log lines for people (`text`, coloured only on a terminal) or for log
    /// shippers (`json`, one object a line). Applies to `serve` and `run`.
    #[arg(long, global = true, value_enum, default_value = "text")]
    log_format: LogFormat,
}

#[derive(Clone, Copy, ValueEnum)]
enum Format {
    Yaml,
    Json,
}

/// The resources and the gateway data plane a command works on.
#[derive(clap::Args)]
pub(crate) struct Target {
    #[command(flatten)]
    pub(crate) resources: store::Resources,
    /// The data plane (or a MeshGatewayInstance, `<name>.<namespace>`).
    #[arg(long)]
    pub(crate) dataplane: String,
    /// Its mesh.
    #[arg(long, default_value = "default")]
    pub(crate) mesh: String,
}

#[derive(Subcommand)]
enum Command {
    /// Check resources: files, folders searched for *.yaml, *.yml, *.json,
    /// or a store.
    Validate {
        #[command(flatten)]
        resources: store::Resources,
    },
    /// Print the Envoy config of a gateway data plane (BUILTIN or DELEGATED).
    Render {
        #[command(flatten)]
        target: Target,
        /// Output format.
        #[arg(long, value_enum, default_value = "yaml")]
        format: Format,
        /// Print a complete static bootstrap that `envoy -c FILE` runs as is.
        #[arg(long)]
        bootstrap: bool,
        /// Admin interface port on 127.0.0.1 (with --bootstrap).
        #[arg(long)]
        admin_port: Option<u16>,
        /// When a mesh identity certificate is issued: `ca-start` (the start
        /// of the mesh CA's validity: the output is the same whenever it is
        /// run, and that certificate lasts a day from then), `now`, or an
        /// RFC 3339 time.
        #[arg(long, default_value = "ca-start")]
        issued_at: String,
    },
    /// Serve the resources over ADS (State of the World), following changes
    /// to the files or the store.
    Serve {
        #[command(flatten)]
        resources: store::Resources,
        /// Address of the gRPC server.
        #[arg(long, default_value = "127.0.0.1:5678")]
        xds_address: SocketAddr,
        /// Address of the admin endpoint (/metrics, /ready, /healthy); port 0
        /// picks a free port.
        #[arg(long, default_value = DEFAULT_ADMIN_ADDRESS)]
        admin_address: SocketAddr,
        #[command(flatten)]
        security: serve::XdsSecurity,
    },
    /// Print the bootstrap an Envoy needs to connect to `serve`.
    Bootstrap {
        /// The data plane (Envoy's node id).
        #[arg(long)]
        dataplane: String,
        /// Its mesh (node metadata `mesh`).
        #[arg(long, default_value = "default")]
        mesh: String,
        /// Address of `serve`: `host:port` (with TLS, the certificate must
        /// name the host). Repeat it for each control-plane replica: Envoy
        /// connects to one and fails over to the others.
        #[arg(long, default_value = "127.0.0.1:5678")]
        xds_address: Vec<String>,
        /// Admin interface port on 127.0.0.1.
        #[arg(long)]
        admin_port: Option<u16>,
        /// A file holding the data plane's token (`kuma-gateway token generate`).
        #[arg(long)]
        token_file: Option<PathBuf>,
        /// CA certificates (PEM) to verify `serve`'s TLS certificate with;
        /// Envoy then connects over TLS.
        #[arg(long)]
        xds_ca: Option<PathBuf>,
        /// The ADS variant Envoy speaks: `delta` (incremental: only changed
        /// resources are sent) or `sotw` (State of the World).
        #[arg(long, value_enum, default_value = "delta")]
        xds_protocol: XdsProtocolArg,
        /// Output format.
        #[arg(long, value_enum, default_value = "yaml")]
        format: Format,
    },
    /// Serve the resources and run Envoy for one data plane (what kuma-dp does).
    Run(RunArgs),
    /// Create or replace resources in a store, all or nothing, after
    /// validating the whole resulting set (as `kumactl apply`).
    Apply(store_commands::ApplyArgs),
    /// List or print resources (as `kumactl get`).
    Get(store_commands::GetArgs),
    /// Remove a resource, unless what remains would be invalid.
    Delete(store_commands::DeleteArgs),
    /// Print every resource as YAML that `apply` takes back unchanged
    /// (Secrets included: keep the output safe).
    Export {
        #[command(flatten)]
        resources: store::Resources,
    },
    /// What each Envoy connected to a running control plane has: versions
    /// sent and accepted, rejections with Envoy's error. Exit 1 when one is
    /// behind or rejected its last update.
    Status {
        /// The control plane's admin endpoint (`serve --admin-address`).
        #[arg(long, default_value = DEFAULT_ADMIN_ADDRESS)]
        admin_address: String,
    },
    /// Dataplane tokens: signing keys and tokens, as Kuma makes them.
    Token {
        #[command(subcommand)]
        command: token::TokenCommand,
    },
    /// Explain offline what Envoy will do with one request: listener, virtual
    /// host, route rule, backends and policies, or why nothing matches.
    Explain {
        #[command(flatten)]
        target: Target,
        /// Listener port.
        #[arg(long)]
        port: u32,
        /// Host header (and SNI on TLS listeners).
        #[arg(long)]
        host: String,
        /// TLS server name, when it differs from --host (a connection
        /// reused for another name).
        #[arg(long)]
        sni: Option<String>,
        /// Path, with an optional query string.
        #[arg(long, default_value = "/")]
        path: String,
        /// Method.
        #[arg(long, default_value = "GET")]
        method: String,
        /// A request header, `name=value` (repeatable).
        #[arg(long = "header", value_name = "NAME=VALUE")]
        headers: Vec<String>,
    },
}

fn main() -> ExitCode {
    match run(Cli::parse()) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}

pub(crate) fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread().enable_all().build().context("starting the async runtime")
}

/// Completes on SIGINT or SIGTERM.
async fn shutdown_signal() {
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = terminate => {}
    }
    tracing::info!("shutting down");
}

fn run(cli: Cli) -> Result<ExitCode> {
    let log_format = cli.log_format;
    match cli.command {
        Command::Validate { resources } => validate(&resources),
        Command::Render { target, format, bootstrap, admin_port, issued_at } => {
            render_cmd(target, format, (bootstrap, admin_port), &issued_at)
        }
        Command::Serve { resources, xds_address, admin_address, security } => {
            logging::init(log_format);
            runtime()?.block_on(serve::serve(
                resources,
                xds_address,
                admin_address,
                security,
                None,
                shutdown_signal(),
            ))?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Bootstrap { dataplane, mesh, xds_address, admin_port, token_file, xds_ca, xds_protocol, format } => {
            let read = |p: &PathBuf, flag: &str| {
                std::fs::read_to_string(p).with_context(|| format!("--{flag} {}", p.display()))
            };
            let token = token_file.as_ref().map(|p| read(p, "token-file")).transpose()?;
            let ca = xds_ca.as_ref().map(|p| read(p, "xds-ca")).transpose()?;
            let addresses = xds_address.iter().map(|a| split_host_port(a)).collect::<Result<Vec<_>>>()?;
            let b = render::ads_bootstrap(&render::AdsBootstrap {
                dataplane: &dataplane,
                mesh: &mesh,
                xds_addresses: &addresses,
                admin_port,
                token: token.as_deref().map(str::trim),
                xds_ca_pem: ca.as_deref(),
                protocol: xds_protocol.into(),
            });
            print!("{}", render::bootstrap_text(&b, format.into())?);
            Ok(ExitCode::SUCCESS)
        }
        Command::Apply(args) => store_commands::apply(args),
        Command::Get(args) => store_commands::get(args),
        Command::Delete(args) => store_commands::delete(args),
        Command::Export { resources } => store_commands::export(&resources),
        Command::Status { admin_address } => status::status(&admin_address),
        Command::Token { command } => {
            token::run(command)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Explain { target, port, host, sni, path, method, headers } => {
            let Target { resources, dataplane, mesh } = target;
            let Some((set, _)) = store::load(&resources)? else { return Ok(ExitCode::from(1)) };
            let headers = headers
                .iter()
                .map(|h| {
                    h.split_once('=')
                        .map(|(n, v)| (n.to_ascii_lowercase(), v.to_string()))
                        .with_context(|| format!("--header {h:?}: expected NAME=VALUE"))
                })
                .collect::<Result<Vec<_>>>()?;
            let request = kuma_xds_gen::explain::Request { port, host, sni, path, method, headers };
            match kuma_xds_gen::explain::explain(&set, &mesh, &dataplane, &request) {
                Ok(ex) => {
                    print!("{ex}");
                    Ok(if ex.matched { ExitCode::SUCCESS } else { ExitCode::from(3) })
                }
                Err(e) => {
                    eprintln!("{e}");
                    Ok(ExitCode::from(1))
                }
            }
        }
        Command::Run(args) => {
            logging::init(log_format);
            runtime()?.block_on(run_cmd(args))?;
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// The control plane's admin endpoint: loopback, Kuma's diagnostics port.
const DEFAULT_ADMIN_ADDRESS: &str = "127.0.0.1:5680";

/// `host:port` (`[v6]:port` for IPv6) as the host and the port.
fn split_host_port(address: &str) -> Result<(&str, u16)> {
    let (host, port) =
        address.rsplit_once(':').with_context(|| format!("--xds-address {address:?}: expected HOST:PORT"))?;
    let host = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')).unwrap_or(host);
    let port = port.parse().with_context(|| format!("--xds-address {address:?}: bad port"))?;
    Ok((host, port))
}

/// `kuma-gateway run`: the control plane and Envoy for one data plane.
#[derive(clap::Args)]
struct RunArgs {
    #[command(flatten)]
    target: Target,
    /// The Envoy binary (else ENVOY_BIN, PATH, .tools/envoy).
    #[arg(long)]
    envoy_bin: Option<PathBuf>,
    /// Address of the in-process ADS server.
    #[arg(long, default_value = "127.0.0.1:5678")]
    xds_address: SocketAddr,
    /// Envoy's admin port on 127.0.0.1.
    #[arg(long, default_value_t = 9901)]
    admin_port: u16,
    /// Another control-plane replica on the same --store (`host:port` of
    /// its xDS server), repeatable: Envoy may connect to any of them and
    /// fails over between them. Its token is then signed with the mesh's
    /// signing key from the store, which every replica accepts. With TLS,
    /// --xds-ca must verify every replica's certificate.
    #[arg(long, value_name = "HOST:PORT")]
    replica_address: Vec<String>,
    /// Address of the control plane's admin endpoint (/metrics, /ready,
    /// /healthy); port 0 picks a free port.
    #[arg(long, default_value = DEFAULT_ADMIN_ADDRESS)]
    admin_address: SocketAddr,
    /// Envoy's --base-id (distinct per Envoy on one machine).
    #[arg(long, default_value_t = 0)]
    base_id: u32,
    #[command(flatten)]
    security: serve::XdsSecurity,
    /// CA certificates (PEM) Envoy verifies the xDS server with (default:
    /// the --tls-cert chain itself).
    #[arg(long, requires = "tls_cert")]
    xds_ca: Option<PathBuf>,
    /// The ADS variant Envoy speaks: `delta` (incremental) or `sotw`
    /// (State of the World).
    #[arg(long, value_enum, default_value = "delta")]
    xds_protocol: XdsProtocolArg,
}

/// `--xds-protocol`.
#[derive(Clone, Copy, clap::ValueEnum)]
enum XdsProtocolArg {
    /// Incremental xDS.
    Delta,
    /// State of the World.
    Sotw,
}

impl From<XdsProtocolArg> for render::XdsProtocol {
    fn from(p: XdsProtocolArg) -> Self {
        match p {
            XdsProtocolArg::Delta => render::XdsProtocol::Delta,
            XdsProtocolArg::Sotw => render::XdsProtocol::StateOfTheWorld,
        }
    }
}

impl From<Format> for render::Text {
    fn from(f: Format) -> Self {
        match f {
            Format::Yaml => render::Text::Yaml,
            Format::Json => render::Text::Json,
        }
    }
}

fn validate(resources: &store::Resources) -> Result<ExitCode> {
    let Some((set, described)) = store::load(resources)? else { return Ok(ExitCode::from(1)) };
    let problems = gateway_problems(&set);
    let count = set.len();
    // The process ends here: freeing every resource one by one would only
    // delay that (by about a tenth of the run for 10,000 routes).
    std::mem::forget(set);
    if problems.is_empty() {
        println!("{count} resources in {described}: valid");
        return Ok(ExitCode::SUCCESS);
    }
    for p in &problems {
        eprintln!("{p}");
    }
    eprintln!("{} error{}", problems.len(), if problems.len() == 1 { "" } else { "s" });
    Ok(ExitCode::from(1))
}

/// What only generation finds, for every gateway: certificate and key
/// contents, CAs, ProxyTemplate patches. `validate` and `apply` report them
/// rather than `render` or `serve` later.
pub(crate) fn gateway_problems(set: &ResourceSet) -> Vec<String> {
    let mut problems = std::collections::BTreeSet::new();
    for (mesh, name) in gateway_dataplanes(set) {
        if let Err(e) = kuma_xds_gen::check(set, &mesh, &name) {
            let key = e.resource();
            let at = set.get(key.kind, &key.mesh, &key.name).map(|r| format!("{}: ", r.meta.location));
            problems.insert(format!("{}{e}", at.unwrap_or_default()));
        }
    }
    problems.into_iter().collect()
}

/// `(mesh, name)` of every gateway data plane: gateway Dataplanes, and
/// MeshGatewayInstances (whose Dataplane is made from them).
fn gateway_dataplanes(set: &ResourceSet) -> Vec<(String, String)> {
    set.iter()
        .filter(|r| match &r.spec {
            Spec::Dataplane(dp) => dp.gateway().is_some(),
            Spec::MeshGatewayInstance(_) => true,
            _ => false,
        })
        .map(|r| (r.meta.mesh.clone(), r.meta.name.clone()))
        .collect()
}

/// `--issued-at`: `ca-start` (`None`), `now` or an RFC 3339 time.
fn issuance_time(text: &str) -> Result<Option<std::time::SystemTime>> {
    match text {
        "ca-start" => return Ok(None),
        "now" => return Ok(Some(std::time::SystemTime::now())),
        _ => {}
    }
    let t = kuma_model::Timestamp::parse(text)
        .with_context(|| format!("--issued-at {text:?}: expected `ca-start`, `now` or an RFC 3339 time"))?;
    let nanos = u64::try_from(t.unix_nanos()).with_context(|| format!("--issued-at {text:?}: before 1970"))?;
    Ok(Some(std::time::UNIX_EPOCH + std::time::Duration::from_nanos(nanos)))
}

fn render_cmd(
    target: Target,
    format: Format,
    (bootstrap, admin_port): (bool, Option<u16>),
    issued_at: &str,
) -> Result<ExitCode> {
    let Target { resources, dataplane, mesh } = target;
    let at = issuance_time(issued_at)?;
    let Some((set, _)) = store::load(&resources)? else { return Ok(ExitCode::from(1)) };
    // Packed as it is translated: a large gateway's route configurations are
    // never all held as messages.
    let snapshot = match kuma_xds_gen::translate_packed(&set, &mesh, &dataplane, at) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("{e}");
            return Ok(ExitCode::from(1));
        }
    };
    // Each stage is freed once the next is made: a 10,000-rule gateway's
    // resources are tens of MiB.
    drop(set);
    let text = if bootstrap {
        let b = render::packed_static_bootstrap(&snapshot, admin_port)?;
        drop(snapshot);
        render::bootstrap_text(&b, format.into())?
    } else {
        render::packed_snapshot_text(&snapshot, format.into())?
    };
    print!("{text}");
    Ok(ExitCode::SUCCESS)
}

/// A token for `claims` signed with the newest signing key of `mesh` in the
/// store (`token signing-key` makes one).
async fn store_signed_token(
    resources: &store::Resources,
    mesh: &str,
    claims: &kuma_xds_server::tokens::DataplaneClaims,
) -> Result<String> {
    use kuma_store::ResourceStore;
    if resources.store_url()?.is_none() {
        anyhow::bail!("--replica-address needs the replicas' shared store: --store URL (or KUMA_GATEWAY_STORE)");
    }
    let store = resources.open().await?;
    let content = store.read().await?;
    let (set, _) = content.assemble().map_err(|e| anyhow::anyhow!("invalid resources:\n{e}"))?;
    let (keys, _) = kuma_xds_server::tokens::signing_keys(&set, mesh);
    let key = keys.first().with_context(|| {
        format!(
            "--replica-address: the other replicas accept only tokens signed with a key in the store, and mesh {mesh:?} has none; add one with: kuma-gateway token signing-key --mesh {mesh} | kuma-gateway apply -f -"
        )
    })?;
    Ok(key.issue(claims)?)
}

/// `admin`: Envoy's admin port and the control plane's admin address.
async fn run_cmd(args: RunArgs) -> Result<()> {
    let RunArgs {
        target,
        envoy_bin,
        xds_address: xds,
        admin_port,
        replica_address,
        admin_address,
        base_id,
        security,
        xds_ca,
        xds_protocol,
    } = args;
    let bin = envoy::find(envoy_bin.as_deref())?;
    let Target { resources, dataplane, mesh } = target;
    let claims = kuma_xds_server::tokens::DataplaneClaims::new(
        &dataplane,
        &mesh,
        Default::default(),
        std::time::SystemTime::now(),
        std::time::Duration::from_secs(10 * 365 * 24 * 3600),
    );
    let (token, key) = if replica_address.is_empty() {
        // Its own Envoy's token, signed with a key that lives only in this
        // process (its id is not a number, so no Secret's key can take it).
        let key = kuma_xds_server::tokens::SigningKey::generate("kuma-gateway-run")?;
        (key.issue(&claims)?, Some((mesh.clone(), key)))
    } else {
        // Other replicas know only the store's keys.
        (store_signed_token(&resources, &mesh, &claims).await?, None)
    };
    let ca = match xds_ca.as_ref().or(security.tls_cert.as_ref()) {
        Some(p) => Some(std::fs::read_to_string(p).with_context(|| format!("{}", p.display()))?),
        None => None,
    };
    let host = xds.ip().to_string();
    let mut addresses = vec![(host.as_str(), xds.port())];
    for replica in &replica_address {
        addresses.push(split_host_port(replica)?);
    }
    let bootstrap = render::ads_bootstrap(&render::AdsBootstrap {
        dataplane: &dataplane,
        mesh: &mesh,
        xds_addresses: &addresses,
        admin_port: Some(admin_port),
        token: Some(&token),
        xds_ca_pem: ca.as_deref(),
        protocol: xds_protocol.into(),
    });
    // A new folder only this user can read (mode 0700, a random name that
    // was not there before, so nothing planted in it is followed or reused),
    // removed when `run` ends.
    let dir = {
        use std::os::unix::fs::PermissionsExt;
        tempfile::Builder::new()
            .prefix("kuma-gateway-")
            .permissions(std::fs::Permissions::from_mode(0o700))
            .tempdir()
            .context("making a private temporary folder")?
    };
    let config = dir.path().join("bootstrap.json");
    std::fs::write(&config, render::to_pretty_json(&render::bootstrap_value(&bootstrap)?))?;
    tracing::info!(path = %config.display(), "Envoy bootstrap written");
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let mut stop_server = stop_rx.clone();
    let server = tokio::spawn(serve::serve(resources, xds, admin_address, security, key, async move {
        let _ = stop_server.wait_for(|s| *s).await;
    }));
    // Give the server a moment to report bad input before Envoy starts.
    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    if server.is_finished() {
        return server.await?;
    }
    tracing::info!(envoy = %bin.display(), admin = %format!("http://127.0.0.1:{admin_port}"), "starting Envoy");
    let result = envoy::supervise(&bin, &config, base_id, shutdown_signal()).await;
    let _ = stop_tx.send(true);
    let served = server.await?;
    drop(dir);
    result.and(served)
}
