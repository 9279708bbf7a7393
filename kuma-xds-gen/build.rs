//! Writes the schema tables (`src/schema.rs` includes them) from the
//! descriptor set envoy-types was generated from.
//!
//! Rendering and canonical encoding need, per message type, its fields'
//! numbers, JSON names, kinds, presence and oneofs, and the names of enum
//! values. Loading the 640 KB descriptor set into a `prost_reflect`
//! `DescriptorPool` at run time costs every process about 30 ms and 18 MiB;
//! here it is loaded once, at build time, by the same library, so the tables
//! hold exactly what its accessors answer.

use std::collections::HashMap;
use std::fmt::Write as _;

use prost_reflect::{DescriptorPool, Kind};

fn main() {
    const SET: &str = "descriptors/envoy-types.bin";
    println!("cargo::rerun-if-changed={SET}");
    println!("cargo::rerun-if-changed=build.rs");
    let bytes = std::fs::read(SET).expect("the descriptor set is readable");
    let pool = DescriptorPool::decode(bytes.as_slice()).expect("the descriptor set decodes");

    let mut messages: Vec<_> = pool.all_messages().collect();
    messages.sort_by(|a, b| a.full_name().cmp(b.full_name()));
    let mut enums: Vec<_> = pool.all_enums().collect();
    enums.sort_by(|a, b| a.full_name().cmp(b.full_name()));
    let message_index: HashMap<&str, usize> = messages.iter().enumerate().map(|(i, m)| (m.full_name(), i)).collect();
    let enum_index: HashMap<&str, usize> = enums.iter().enumerate().map(|(i, e)| (e.full_name(), i)).collect();

    let mut out = String::new();
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
    let path = std::path::Path::new(&std::env::var("OUT_DIR").expect("cargo sets OUT_DIR")).join("schema.rs");
    std::fs::write(path, out).expect("OUT_DIR is writable");
}
