//! The descriptor set shipped in `descriptors/` must be exactly what
//! envoy-types (the pinned version) was generated from, without comments,
//! and the schema tables in `src/schema_tables.rs` what that set gives.
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

use std::collections::HashMap;
use std::fmt::Write as _;

use prost::Message;
use prost_reflect::{DescriptorPool, Kind};

const SHIPPED: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/descriptors/envoy-types.bin");
const TABLES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/src/schema_tables.rs");

/// The first lines of the schema tables.
const TABLES_HEADER: &str = "// The Envoy message and enum types, as `src/schema.rs` reads them.\n\
// Written by `UPDATE_DESCRIPTORS=1 cargo test -p kuma-xds-gen --test descriptors`\n\
// from descriptors/envoy-types.bin; do not edit.\n\n";

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

/// The schema tables (`src/schema_tables.rs`) of the descriptors in
/// `bytes`: what `prost_reflect`'s pool of them answers, as static data.
fn schema_tables(bytes: &[u8]) -> String {
    let pool = DescriptorPool::decode(bytes).expect("the descriptor set decodes");
    let mut messages: Vec<_> = pool.all_messages().collect();
    messages.sort_by(|a, b| a.full_name().cmp(b.full_name()));
    let mut enums: Vec<_> = pool.all_enums().collect();
    enums.sort_by(|a, b| a.full_name().cmp(b.full_name()));
    let message_index: HashMap<&str, usize> = messages.iter().enumerate().map(|(i, m)| (m.full_name(), i)).collect();
    let enum_index: HashMap<&str, usize> = enums.iter().enumerate().map(|(i, e)| (e.full_name(), i)).collect();

    let mut out = String::from(TABLES_HEADER);
    out.push_str("/// Every message type, sorted by full name.\n");
    writeln!(out, "pub(crate) static MESSAGES: [Message; {}] = [", messages.len()).unwrap();
    for m in &messages {
        let mut fields: Vec<_> = m.fields().collect();
        fields.sort_by_key(|f| f.number());
        // Each field's place among the message's fields sorted by JSON name.
        let mut by_json: Vec<&str> = fields.iter().map(|f| f.json_name()).collect();
        by_json.sort_unstable();
        let oneofs: Vec<String> = m.oneofs().map(|o| o.full_name().to_string()).collect();
        writeln!(out, "    Message {{ name: {:?}, fields: &[", m.full_name()).unwrap();
        for f in &fields {
            let kind = match f.kind() {
                Kind::Double => "Double".to_string(),
                Kind::Float => "Float".to_string(),
                Kind::Int32 => "Int32".to_string(),
                Kind::Int64 => "Int64".to_string(),
                Kind::Uint32 => "Uint32".to_string(),
                Kind::Uint64 => "Uint64".to_string(),
                Kind::Sint32 => "Sint32".to_string(),
                Kind::Sint64 => "Sint64".to_string(),
                Kind::Fixed32 => "Fixed32".to_string(),
                Kind::Fixed64 => "Fixed64".to_string(),
                Kind::Sfixed32 => "Sfixed32".to_string(),
                Kind::Sfixed64 => "Sfixed64".to_string(),
                Kind::Bool => "Bool".to_string(),
                Kind::String => "String".to_string(),
                Kind::Bytes => "Bytes".to_string(),
                Kind::Message(k) => format!("Message({})", message_index[k.full_name()]),
                Kind::Enum(e) => format!("Enum({})", enum_index[e.full_name()]),
            };
            let oneof = match f.containing_oneof() {
                Some(o) => {
                    format!("Some({})", oneofs.iter().position(|n| n == o.full_name()).expect("a oneof of the message"))
                }
                None => "None".to_string(),
            };
            let json_rank = by_json.iter().position(|n| *n == f.json_name()).expect("a field's own name");
            writeln!(
                out,
                "        Field {{ number: {}, json_name: {:?}, json_rank: {json_rank}, kind: Kind::{kind}, list: {}, map: {}, presence: {}, oneof: {oneof} }},",
                f.number(),
                f.json_name(),
                f.is_list(),
                f.is_map(),
                f.supports_presence(),
            )
            .unwrap();
        }
        out.push_str("    ] },\n");
    }
    out.push_str("];\n\n/// Every enum type, sorted by full name.\n");
    writeln!(out, "pub(crate) static ENUMS: [Enum; {}] = [", enums.len()).unwrap();
    for e in &enums {
        // One name per number: the one `get_value` answers, aliases or not.
        let mut numbers: Vec<i32> = e.values().map(|v| v.number()).collect();
        numbers.sort_unstable();
        numbers.dedup();
        write!(out, "    Enum {{ name: {:?}, values: &[", e.full_name()).unwrap();
        for n in numbers {
            let v = e.get_value(n).expect("a number of the enum");
            write!(out, "({n}, {:?}), ", v.name()).unwrap();
        }
        out.push_str("] },\n");
    }
    out.push_str("];\n");
    out
}

#[test]
fn shipped_schema_tables_equal_the_descriptors() {
    let expected = schema_tables(&std::fs::read(SHIPPED).expect("read the shipped descriptors"));
    if std::env::var_os("UPDATE_DESCRIPTORS").is_some() {
        std::fs::write(TABLES, &expected).expect("write the schema tables");
    }
    let shipped = std::fs::read_to_string(TABLES).expect("read the shipped schema tables");
    assert!(
        shipped == expected,
        "{TABLES} differs from what {SHIPPED} gives; regenerate it with \
         UPDATE_DESCRIPTORS=1 cargo test -p kuma-xds-gen --test descriptors"
    );
}
