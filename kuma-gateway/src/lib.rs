//! The `kuma-gateway` control plane as a library: what the binary does,
//! for embedding and for tests. Translation and matching live in
//! `kuma-xds-gen` and `kuma-policy`; this crate adds files, the ADS server
//! and the Envoy process.

pub mod ads;
pub mod envoy;
pub mod files;
pub mod logsink;
pub mod server;
