//! An Envoy ADS (xDS) server for Kuma gateway snapshots.
//!
//! - [`SnapshotSource`] is where snapshots come from: implement it over your
//!   own store, or use [`ResourceSetSource`], which translates a validated
//!   [`kuma_xds_gen::kuma_model::ResourceSet`] that you replace as it changes.
//! - [`XdsServer`] serves a source to Envoys over gRPC: incremental (delta)
//!   and State of the World ADS ([`AdsService`]) and the OpenTelemetry
//!   access-log sink ([`LogsServiceServer`]) that writes `tcp` logging
//!   backends' lines.
//! - [`XdsMetrics`] counts streams, responses, ACKs and NACKs in a
//!   [`prometheus_client`] registry of yours.
//! - [`DeltaStream`] and [`AdsStream`] are the protocols themselves as pure
//!   state machines (requests and snapshots in, responses out), for tests
//!   and other transports.
//!
//! Snapshots are [`kuma_xds_gen::EncodedSnapshot`]s: each resource packed
//! once, each type's list behind an `Arc`, so every stream of a data plane
//! shares one, and a stream's own state is only subscriptions, versions and
//! nonces.
//!
//! An Envoy names its data plane with `node.id` and its mesh with the
//! `mesh` string of `node.metadata` ([`NodeId`]);
//! [`kuma_xds_gen::render::ads_bootstrap`] writes such a bootstrap.
//!
//! ```no_run
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! use std::sync::Arc;
//! use kuma_xds_gen::kuma_model::{ResourceSet, UnknownFields};
//! use kuma_xds_server::{ResourceSetSource, XdsServer};
//!
//! let yaml = std::fs::read_to_string("gateway.yaml")?;
//! let (set, _warnings) = ResourceSet::load([("gateway.yaml", yaml.as_str())], UnknownFields::Reject)?;
//! let source = Arc::new(ResourceSetSource::new(set));
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:5678").await?;
//! tokio::spawn(XdsServer::new(source.clone()).serve(listener, std::future::pending()));
//! // Later, with new resources: every Envoy whose mesh changed gets the difference.
//! // source.publish(new_set);
//! # Ok(()) }
//! ```

mod ads;
mod connections;
mod delta;
mod grpc;
mod history;
mod limits;
mod logsink;
mod metrics;
mod protocol;
mod resources;
mod server;
mod service;
mod source;
pub mod tokens;

pub use ads::{AdsStream, Outcome, RequestKind};
pub use connections::{Connections, DataplaneStatus, Nack, TypeStatus};
pub use delta::DeltaStream;
pub use history::NodeHistory;
pub use limits::Limits;
pub use logsink::LogsServiceServer;
pub use metrics::XdsMetrics;
pub use prometheus_client;
pub use resources::ResourceSetSource;
pub use server::{ServeError, XdsServer};
pub use service::AdsService;
pub use source::{AuthError, NodeId, SnapshotSource};
