//! [`Connections`]: what each connected Envoy has, for people and
//! monitoring (`/dataplanes`, `kuma-gateway status`), as Kuma's data plane
//! insights and `kumactl inspect dataplanes` show it.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use kuma_xds_gen::ResourceType;
use serde::Serialize;

use crate::ads::RequestKind;
use crate::protocol::Protocol;
use crate::source::NodeId;

/// The streams open now. Cloning shares them.
#[derive(Debug, Clone, Default)]
pub struct Connections {
    inner: Arc<Mutex<Inner>>,
}

#[derive(Debug, Default)]
struct Inner {
    next: u64,
    streams: BTreeMap<u64, DataplaneStatus>,
}

/// One connected Envoy.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct DataplaneStatus {
    /// Its mesh (empty until its first request names it).
    pub mesh: String,
    /// Its data plane name (Envoy's node id).
    pub dataplane: String,
    /// The peer address of its stream.
    pub address: String,
    /// `delta` (incremental ADS) or `sotw` (State of the World ADS).
    pub protocol: &'static str,
    /// When the stream opened (RFC 3339).
    pub connected_since: String,
    /// True when every type's last response was accepted.
    pub up_to_date: bool,
    /// Per resource type (`Cluster`, `Listener`, ...).
    pub types: BTreeMap<String, TypeStatus>,
}

/// What one Envoy has of one resource type.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct TypeStatus {
    /// The version last sent.
    pub sent: Option<String>,
    /// The version it last accepted.
    pub acked: Option<String>,
    /// Its last rejection: the version it kept and Envoy's error.
    pub last_nack: Option<Nack>,
    /// True when the last response sent was rejected.
    pub rejected: bool,
}

/// A rejection.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Nack {
    /// The version Envoy kept.
    pub version: String,
    /// Envoy's error detail.
    pub error: String,
}

impl Connections {
    /// Every connected Envoy, by mesh, name and connection time.
    pub fn list(&self) -> Vec<DataplaneStatus> {
        let inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let mut out: Vec<DataplaneStatus> = inner.streams.values().cloned().collect();
        out.sort_by(|a, b| {
            (&a.mesh, &a.dataplane, &a.connected_since).cmp(&(&b.mesh, &b.dataplane, &b.connected_since))
        });
        out
    }

    /// Records a new stream; it is forgotten when the handle drops.
    pub(crate) fn open(&self, address: String, protocol: &'static str) -> StreamEntry {
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        inner.next += 1;
        let id = inner.next;
        let since = kuma_model::Timestamp::from_system_time(SystemTime::now());
        inner.streams.insert(
            id,
            DataplaneStatus {
                mesh: String::new(),
                dataplane: String::new(),
                address,
                protocol,
                connected_since: since.to_string(),
                up_to_date: true,
                types: BTreeMap::new(),
            },
        );
        StreamEntry { connections: self.clone(), id }
    }
}

/// A stream's entry in [`Connections`].
#[derive(Debug)]
pub(crate) struct StreamEntry {
    connections: Connections,
    id: u64,
}

impl StreamEntry {
    /// Refreshes the entry from the stream's state; `last` is what the
    /// latest request of `t` was, if one just came.
    pub(crate) fn update<P: Protocol>(&self, node: &NodeId, ads: &P, last: Option<(ResourceType, &RequestKind)>) {
        let mut inner = self.connections.inner.lock().unwrap_or_else(|e| e.into_inner());
        let Some(entry) = inner.streams.get_mut(&self.id) else { return };
        entry.mesh.clone_from(&node.mesh);
        entry.dataplane.clone_from(&node.name);
        for t in ResourceType::ALL {
            let Some(sent) = ads.sent_version(t) else { continue };
            let status = entry.types.entry(crate::metrics::short(&t.type_url())).or_insert(TypeStatus {
                sent: None,
                acked: None,
                last_nack: None,
                rejected: false,
            });
            status.sent = Some(sent.to_string());
            status.acked = ads.acked(t).map(str::to_string);
            status.last_nack =
                ads.nacked(t).map(|(version, error)| Nack { version: version.to_string(), error: error.to_string() });
            match last {
                Some((lt, RequestKind::Nack { .. })) if lt == t => status.rejected = true,
                Some((lt, RequestKind::Ack { .. } | RequestKind::Resume { .. })) if lt == t => status.rejected = false,
                _ => {}
            }
            // A newer version sent since the rejection is pending, not rejected.
            if status.acked.as_deref() == Some(sent) {
                status.rejected = false;
            }
        }
        entry.up_to_date = entry.types.values().all(|s| s.sent.is_some() && s.sent == s.acked);
    }
}

impl Drop for StreamEntry {
    fn drop(&mut self) {
        let mut inner = self.connections.inner.lock().unwrap_or_else(|e| e.into_inner());
        inner.streams.remove(&self.id);
    }
}
