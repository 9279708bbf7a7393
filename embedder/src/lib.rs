//! What an embedder writes: resources in, canonical Envoy JSON out.

use kuma_xds_gen::kuma_model::{ResourceSet, UnknownFields};

/// The Envoy config of gateway `dataplane` (mesh `default`) from the
/// resources in `yaml`, as canonical JSON.
pub fn envoy_json(yaml: &str, dataplane: &str) -> Result<String, Box<dyn std::error::Error>> {
    let (set, _warnings) = ResourceSet::load([("gateway.yaml", yaml)], UnknownFields::Reject)?;
    let snapshot = kuma_xds_gen::translate(&set, "default", dataplane)?;
    Ok(kuma_xds_gen::render::snapshot_json(&snapshot)?)
}
