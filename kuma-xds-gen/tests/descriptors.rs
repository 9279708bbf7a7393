//! The descriptor set shipped in `descriptors/` must be exactly what
//! envoy-types (the pinned version) was generated from, without comments.
//!
//! The renderer needs it to turn any emitted message into proto3 JSON, and
//! it is shipped in the crate so that building needs no cargo call, no cargo
//! cache and no network. After an envoy-types upgrade, regenerate it with
//!
//! ```sh
//! UPDATE_DESCRIPTORS=1 cargo test -p kuma-xds-gen --test descriptors
//! ```

use std::path::PathBuf;
use std::process::Command;

use prost::Message;

const SHIPPED: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/descriptors/envoy-types.bin");

/// envoy-types' own `types.bin`, found through `cargo metadata` (tests may
/// ask cargo; the build never does).
fn envoy_types_descriptors() -> Vec<u8> {
    let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("Cargo.toml");
    let out = Command::new(env!("CARGO"))
        .args(["metadata", "--format-version", "1", "--manifest-path"])
        .arg(&manifest)
        .output()
        .expect("run cargo metadata");
    assert!(out.status.success(), "cargo metadata failed: {}", String::from_utf8_lossy(&out.stderr));
    let meta: serde_json::Value = serde_json::from_slice(&out.stdout).expect("cargo metadata JSON");
    let package = meta["packages"]
        .as_array()
        .and_then(|ps| ps.iter().find(|p| p["name"] == "envoy-types"))
        .expect("envoy-types in cargo metadata");
    let dir = PathBuf::from(package["manifest_path"].as_str().expect("manifest_path"));
    let types_bin = dir.parent().expect("package folder").join("src/generated/types.bin");
    std::fs::read(&types_bin).unwrap_or_else(|e| panic!("read {}: {e}", types_bin.display()))
}

#[test]
fn shipped_descriptors_equal_envoy_types_without_comments() {
    let mut set = prost_types::FileDescriptorSet::decode(envoy_types_descriptors().as_slice()).expect("decode");
    for file in &mut set.file {
        file.source_code_info = None;
    }
    let expected = set.encode_to_vec();
    if std::env::var_os("UPDATE_DESCRIPTORS").is_some() {
        std::fs::write(SHIPPED, &expected).expect("write descriptors");
    }
    let shipped = std::fs::read(SHIPPED).expect("read the shipped descriptors");
    assert!(
        shipped == expected,
        "{SHIPPED} differs from envoy-types' descriptors; regenerate it with \
         UPDATE_DESCRIPTORS=1 cargo test -p kuma-xds-gen --test descriptors"
    );
}
