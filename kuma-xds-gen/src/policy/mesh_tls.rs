//! `MeshTLS`: the TLS versions and cipher suites of the gateway's mTLS
//! clusters to mesh services, as Kuma's MeshTLS plugin sets them (only
//! when a version or cipher is given).

use envoy_types::pb::envoy::extensions::transport_sockets::tls::v3::{TlsParameters, tls_parameters::TlsProtocol};
use kuma_model::mesh_tls::TlsConf;

fn protocol(version: &str) -> TlsProtocol {
    match version {
        "TLS13" => TlsProtocol::TlSv13,
        "TLS12" => TlsProtocol::TlSv12,
        "TLS11" => TlsProtocol::TlSv11,
        "TLS10" => TlsProtocol::TlSv10,
        _ => TlsProtocol::TlsAuto,
    }
}

/// The TLS parameters a conf gives, if it sets any.
pub(crate) fn tls_params(conf: &TlsConf) -> Option<TlsParameters> {
    let ciphers = conf.tls_ciphers.clone().unwrap_or_default();
    let version = conf.tls_version.clone().unwrap_or_default();
    if ciphers.is_empty() && version.min.is_none() && version.max.is_none() {
        return None;
    }
    Some(TlsParameters {
        cipher_suites: ciphers,
        tls_minimum_protocol_version: version.min.as_deref().map_or(TlsProtocol::TlsAuto, protocol) as i32,
        tls_maximum_protocol_version: version.max.as_deref().map_or(TlsProtocol::TlsAuto, protocol) as i32,
        ..Default::default()
    })
}
