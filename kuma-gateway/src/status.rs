//! `status`: what each connected Envoy has, as a table for people (the
//! control plane's `/dataplanes`, like `kumactl inspect dataplanes`).

use std::io::{Read, Write};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use serde_json::Value;

/// GETs `path` from the admin endpoint at `address` (`host:port`).
fn admin_get(address: &str, path: &str) -> Result<String> {
    let mut stream = std::net::TcpStream::connect(address)
        .with_context(|| format!("cannot reach the control plane's admin endpoint at {address} (--admin-address)"))?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    write!(stream, "GET {path} HTTP/1.1\r\nhost: {address}\r\nconnection: close\r\n\r\n")?;
    let mut reply = String::new();
    stream.take(64 << 20).read_to_string(&mut reply)?;
    let (head, body) = reply.split_once("\r\n\r\n").context("not an HTTP reply")?;
    if !head.starts_with("HTTP/1.1 200") {
        bail!("{address}{path}: {}", head.lines().next().unwrap_or_default());
    }
    Ok(body.to_string())
}

/// Prints the table; exit 1 when an Envoy rejected its last response or has
/// not accepted the latest one yet.
pub(crate) fn status(address: &str) -> Result<ExitCode> {
    let body = admin_get(address, "/dataplanes")?;
    let planes: Vec<Value> = serde_json::from_str(&body).context("/dataplanes: not the expected JSON")?;
    if planes.is_empty() {
        println!("no data plane connected");
        return Ok(ExitCode::SUCCESS);
    }
    let text = |v: &Value, k: &str| v[k].as_str().unwrap_or_default().to_string();
    let mut rows = Vec::new();
    let mut problems = Vec::new();
    for p in &planes {
        let name = format!("{}/{}", text(p, "mesh"), text(p, "dataplane"));
        let mut rejected = Vec::new();
        let mut pending = Vec::new();
        if let Some(types) = p["types"].as_object() {
            for (t, s) in types {
                if s["rejected"].as_bool() == Some(true) {
                    rejected.push(t.clone());
                    let error = s["last_nack"]["error"].as_str().unwrap_or_default();
                    problems.push(format!(
                        "{name} {t} rejected (NACK), keeps {}: {error}",
                        text(&s["last_nack"], "version")
                    ));
                } else if s["sent"] != s["acked"] {
                    pending.push(t.clone());
                }
            }
        }
        let state = if !rejected.is_empty() {
            format!("NACK {}", rejected.join(","))
        } else if !pending.is_empty() {
            format!("updating {}", pending.join(","))
        } else {
            "up to date".to_string()
        };
        rows.push([name, text(p, "address"), text(p, "protocol"), text(p, "connected_since"), state]);
    }
    crate::table::print(["DATAPLANE", "ADDRESS", "PROTOCOL", "CONNECTED SINCE", "STATUS"], &rows);
    for p in &problems {
        println!("{p}");
    }
    let behind = rows.iter().any(|r| r[4] != "up to date");
    Ok(if behind { ExitCode::from(1) } else { ExitCode::SUCCESS })
}
