//! Serving snapshots from your own source: every gateway data plane in some
//! YAML files is translated once, kept in memory, and served over ADS to
//! whichever Envoy connects as that data plane.
//!
//! ```sh
//! cargo run -p kuma-xds-server --example serve_in_memory -- 127.0.0.1:5678 /tmp/bootstraps examples/edge-gateway/*.yaml
//! envoy -c /tmp/bootstraps/default.gateway-instance-1.yaml
//! ```
//!
//! For each gateway data plane it writes the bootstrap its Envoy needs into
//! the folder given. A real control plane would call [`InMemory::put`] as its
//! snapshots change; connected Envoys get the difference at once.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use kuma_xds_gen::kuma_model::{Kind, ResourceSet, Spec, UnknownFields};
use kuma_xds_gen::{EncodedSnapshot, GatewaySnapshot, render};
use kuma_xds_server::{NodeId, SnapshotSource, XdsServer};
use tokio::sync::watch;

/// Snapshots kept in memory, one per data plane, encoded once and shared
/// by all its streams.
#[derive(Debug)]
struct InMemory {
    snapshots: Mutex<HashMap<NodeId, Arc<EncodedSnapshot>>>,
    changes: watch::Sender<u64>,
}

impl InMemory {
    fn new() -> Self {
        InMemory { snapshots: Mutex::default(), changes: watch::Sender::new(0) }
    }

    /// Stores `node`'s snapshot and tells the connected streams.
    fn put(&self, node: NodeId, snapshot: GatewaySnapshot) {
        self.snapshots.lock().expect("lock").insert(node, Arc::new(EncodedSnapshot::encode(&snapshot)));
        self.changes.send_modify(|generation| *generation += 1);
    }
}

/// A data plane this source has no snapshot for.
#[derive(Debug)]
struct Unknown(NodeId);

impl std::fmt::Display for Unknown {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "no snapshot for data plane {}", self.0)
    }
}

impl std::error::Error for Unknown {}

impl SnapshotSource for InMemory {
    type Error = Unknown;

    fn changes(&self) -> watch::Receiver<u64> {
        self.changes.subscribe()
    }

    fn snapshot(&self, node: &NodeId, _since: Option<u64>) -> Result<Option<Arc<EncodedSnapshot>>, Unknown> {
        // Always the current one: the server sends only what differs from
        // what the Envoy has, so an unchanged snapshot costs no traffic.
        let snapshots = self.snapshots.lock().expect("lock");
        snapshots.get(node).cloned().map(Some).ok_or_else(|| Unknown(node.clone()))
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let (Some(address), Some(dir)) = (args.next(), args.next()) else {
        return Err("usage: serve_in_memory XDS_ADDRESS BOOTSTRAP_DIR FILE.yaml...".into());
    };
    let dir = PathBuf::from(dir);
    let mut texts = Vec::new();
    for file in args {
        let text = std::fs::read_to_string(&file).map_err(|e| format!("{file}: {e}"))?;
        texts.push((file, text));
    }
    let (set, _warnings) =
        ResourceSet::load(texts.iter().map(|(f, t)| (f.as_str(), t.as_str())), UnknownFields::Reject)?;

    let listener = tokio::net::TcpListener::bind(&address).await?;
    let bound = listener.local_addr()?;
    let source = Arc::new(InMemory::new());
    std::fs::create_dir_all(&dir)?;
    for dataplane in gateways(&set) {
        let snapshot = kuma_xds_gen::translate(&set, &dataplane.mesh, &dataplane.name)?;
        let host = bound.ip().to_string();
        let bootstrap = render::ads_bootstrap(&render::AdsBootstrap {
            dataplane: &dataplane.name,
            mesh: &dataplane.mesh,
            xds_addresses: &[(&host, bound.port())],
            admin_port: None,
            token: None,
            xds_ca_pem: None,
            protocol: render::XdsProtocol::Delta,
        });
        let path = dir.join(format!("{}.{}.yaml", dataplane.mesh, dataplane.name));
        std::fs::write(&path, render::to_yaml(&render::bootstrap_value(&bootstrap)?))?;
        println!("serving {dataplane}: envoy -c {}", path.display());
        source.put(dataplane, snapshot);
    }
    // This source checks no dataplane tokens, and the server listens on
    // loopback only: no other host can reach it.
    XdsServer::new(source)
        .allow_unauthenticated()
        .serve(listener, async { tokio::signal::ctrl_c().await.unwrap_or_default() })
        .await?;
    Ok(())
}

/// Every BUILTIN or DELEGATED gateway data plane of the set.
fn gateways(set: &ResourceSet) -> Vec<NodeId> {
    set.of_kind(Kind::Dataplane)
        .filter(|r| matches!(&r.spec, Spec::Dataplane(d) if d.gateway().is_some()))
        .map(|r| NodeId { mesh: r.meta.mesh.clone(), name: r.meta.name.clone() })
        .collect()
}
