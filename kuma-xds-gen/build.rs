//! Embeds the protobuf descriptor set that `envoy-types` was generated from,
//! stripped of comments, so rendering can turn any emitted message (and the
//! `Any`s nested in it) into canonical proto3 JSON.
//!
//! The file (`src/generated/types.bin`) is not public API of envoy-types;
//! that is why the workspace pins `envoy-types = "=0.7.7"`, and a test checks
//! every emitted type URL resolves in the pool.

use std::path::PathBuf;
use std::process::Command;

use prost::Message;

fn main() {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let manifest = std::env::var("CARGO_MANIFEST_DIR").unwrap();
    // Filtering on the target keeps `--offline` from asking for crates of
    // other platforms that were never downloaded.
    let target = std::env::var("TARGET").unwrap();
    let out = Command::new(cargo)
        .args(["metadata", "--format-version", "1", "--offline", "--filter-platform", &target, "--manifest-path"])
        .arg(PathBuf::from(&manifest).join("Cargo.toml"))
        .output()
        .expect("run cargo metadata");
    assert!(out.status.success(), "cargo metadata failed: {}", String::from_utf8_lossy(&out.stderr));
    let meta: serde_json::Value = serde_json::from_slice(&out.stdout).expect("cargo metadata JSON");
    let envoy_types = meta["packages"]
        .as_array()
        .and_then(|ps| ps.iter().find(|p| p["name"] == "envoy-types"))
        .and_then(|p| p["manifest_path"].as_str())
        .map(|m| PathBuf::from(m).parent().unwrap().to_path_buf())
        .expect("envoy-types in cargo metadata");
    let types_bin = envoy_types.join("src/generated/types.bin");
    println!("cargo:rerun-if-changed={}", types_bin.display());
    println!("cargo:rerun-if-changed=build.rs");
    let bytes = std::fs::read(&types_bin).unwrap_or_else(|e| panic!("read {}: {e}", types_bin.display()));
    let mut set = prost_types::FileDescriptorSet::decode(bytes.as_slice()).expect("decode types.bin");
    for file in &mut set.file {
        file.source_code_info = None;
    }
    let out_dir = PathBuf::from(std::env::var("OUT_DIR").unwrap());
    std::fs::write(out_dir.join("envoy_descriptors.bin"), set.encode_to_vec()).expect("write descriptors");
}
