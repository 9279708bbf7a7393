//! Where the server gets each data plane's configuration: the
//! [`SnapshotSource`] trait, and the identity of a connected Envoy.

use std::sync::Arc;

use kuma_xds_gen::EncodedSnapshot;
use kuma_xds_gen::envoy_types::pb::envoy::config::core::v3::Node;
use kuma_xds_gen::envoy_types::pb::google::protobuf::value::Kind as ValueKind;
use tokio::sync::watch;

/// The data plane an Envoy speaks for: `node.id` is its name and the string
/// `mesh` in `node.metadata` its mesh (`default` when absent), as the
/// bootstraps of `kuma-gateway bootstrap` and
/// [`kuma_xds_gen::render::ads_bootstrap`] set them.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NodeId {
    /// The mesh.
    pub mesh: String,
    /// The data plane name.
    pub name: String,
}

impl NodeId {
    /// The identity an Envoy `Node` claims.
    pub fn of(node: &Node) -> NodeId {
        let mesh = node
            .metadata
            .as_ref()
            .and_then(|m| m.fields.get("mesh"))
            .and_then(|v| match &v.kind {
                Some(ValueKind::StringValue(s)) if !s.is_empty() => Some(s.clone()),
                _ => None,
            })
            .unwrap_or_else(|| kuma_xds_gen::kuma_model::DEFAULT_MESH.to_string());
        NodeId { mesh, name: node.id.clone() }
    }
}

impl std::fmt::Display for NodeId {
    /// `mesh/name`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.mesh, self.name)
    }
}

/// Where snapshots come from.
///
/// The server asks for a node's snapshot when its Envoy connects, and again
/// each time [`SnapshotSource::changes`] moves. A source answers
/// `Ok(None)` when nothing that node reads changed since the generation the
/// stream last saw, so unaffected streams do no work. Give every stream of
/// a node the same `Arc` (encode once per change, not once per stream):
/// the server only ever reads it.
///
/// [`crate::ResourceSetSource`] is a ready-made source that translates a
/// validated [`kuma_xds_gen::kuma_model::ResourceSet`]; implement this trait
/// to serve snapshots you build or store yourself (see the
/// `serve_in_memory` example).
pub trait SnapshotSource: Send + Sync + 'static {
    /// Why a node's snapshot could not be made; the stream logs it and keeps
    /// serving the node's last snapshot.
    type Error: std::error::Error + Send + Sync + 'static;

    /// A generation number that moves whenever any snapshot may have changed.
    fn changes(&self) -> watch::Receiver<u64>;

    /// The current snapshot of `node`; `Ok(None)` when it has not changed
    /// since generation `since` (`None` on a stream's first request, which
    /// must get a snapshot).
    fn snapshot(&self, node: &NodeId, since: Option<u64>) -> Result<Option<Arc<EncodedSnapshot>>, Self::Error>;

    /// True when the access-log sink may write records of a data plane of
    /// `mesh` to `address` (`host:port`): a `tcp` logging backend that
    /// mesh names. The default allows none, so the sink cannot be used to
    /// reach anything else.
    fn allows_log_backend(&self, mesh: &str, address: &str) -> bool {
        let _ = (mesh, address);
        false
    }

    /// Whether a stream presenting `token` (the gRPC metadata
    /// `authorization`, a dataplane token) may get `node`'s config. The
    /// default refuses every stream: serve a source that checks nothing
    /// with [`crate::XdsServer::allow_unauthenticated`], on loopback only.
    fn authenticate(&self, node: &NodeId, token: Option<&str>) -> Result<(), AuthError> {
        let _ = (node, token);
        Err(AuthError::Unauthenticated("this snapshot source checks no tokens".into()))
    }
}

/// Why a stream was refused. Messages never contain the token.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AuthError {
    /// No token, or one that is malformed, badly signed, expired or revoked
    /// (gRPC `UNAUTHENTICATED`).
    #[error("unauthenticated: {0}")]
    Unauthenticated(String),
    /// A valid token for another data plane, mesh or set of tags (gRPC
    /// `PERMISSION_DENIED`).
    #[error("permission denied: {0}")]
    PermissionDenied(String),
}

impl From<AuthError> for tonic::Status {
    fn from(e: AuthError) -> Self {
        match e {
            AuthError::Unauthenticated(m) => tonic::Status::unauthenticated(m),
            AuthError::PermissionDenied(m) => tonic::Status::permission_denied(m),
        }
    }
}
