//! Every "which one applies?" question of the Kuma gateway, as pure data:
//! tag selectors and their ranks, which `MeshGateway` serves a data plane,
//! which routes attach to a listener, hostname matching and order, and the
//! precedence of route matches.
//!
//! No I/O and no Envoy types: inputs are `kuma-model` resources, outputs are
//! plain values that the translator (`kuma-xds-gen`) turns into Envoy config.

pub mod cluster_choice;
pub mod connection;
pub mod delegated;
pub mod endpoints;
pub mod gateway;
pub mod host_policies;
pub mod hostname;
pub mod hosts;
pub mod initial;
pub mod mesh_policies;
pub mod mesh_routes;
pub mod mesh_services;
pub mod permission;
pub mod precedence;
pub mod route_entries;
pub mod route_table;
pub mod selector;
pub mod targeting;

pub use precedence::{MatchSummary, PathSpecificity};
pub use selector::{Rank, best_rank, rank};
