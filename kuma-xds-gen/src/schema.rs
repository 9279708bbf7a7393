//! What rendering and canonical encoding know of each Envoy message type:
//! static tables (`schema_tables.rs`) written from the descriptor set
//! envoy-types was generated from (`descriptors/envoy-types.bin`) by
//! `UPDATE_DESCRIPTORS=1 cargo test -p kuma-xds-gen --test descriptors`,
//! which otherwise fails when they are out of date.
//!
//! A `prost_reflect` pool of that set costs each process about 30 ms and
//! 18 MiB to build, more than rendering a small gateway; these tables cost
//! nothing at run time. They are written with `prost_reflect` itself, so
//! they hold what its pool answers (a test below checks every message,
//! field and enum value). The pool is still built, lazily, where a whole
//! descriptor is needed: reading a ProxyTemplate's JSON into a message.

use std::sync::LazyLock;

use prost_reflect::DescriptorPool;

include!("schema_tables.rs");

/// The protobuf descriptors envoy-types was generated from, without
/// comments; `tests/descriptors.rs` keeps them equal to envoy-types' own.
static DESCRIPTORS: &[u8] = include_bytes!("../descriptors/envoy-types.bin");

static POOL: LazyLock<DescriptorPool> =
    LazyLock::new(|| DescriptorPool::decode(DESCRIPTORS).expect("envoy-types descriptor set decodes"));

/// The descriptor pool of every Envoy message envoy-types knows, built on
/// first use.
pub(crate) fn pool() -> &'static DescriptorPool {
    &POOL
}

/// A message type.
#[derive(Debug)]
pub(crate) struct Message {
    /// The full name, `envoy.config.route.v3.Route`.
    pub(crate) name: &'static str,
    /// Sorted by number.
    pub(crate) fields: &'static [Field],
}

/// A field of a message type.
#[derive(Debug)]
pub(crate) struct Field {
    pub(crate) number: u32,
    /// The name in proto3 JSON (camelCase).
    pub(crate) json_name: &'static str,
    /// The field's place in its message's fields sorted by JSON name.
    pub(crate) json_rank: usize,
    pub(crate) kind: Kind,
    /// Repeated (maps included).
    pub(crate) list: bool,
    pub(crate) map: bool,
    /// Set and unset are told apart: JSON writes its default values.
    pub(crate) presence: bool,
    /// The oneof it belongs to, by its place in the message.
    pub(crate) oneof: Option<usize>,
}

/// A field's type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Double,
    Float,
    Int32,
    Int64,
    Uint32,
    Uint64,
    Sint32,
    Sint64,
    Fixed32,
    Fixed64,
    Sfixed32,
    Sfixed64,
    Bool,
    String,
    Bytes,
    /// An index into [`MESSAGES`].
    Message(usize),
    /// An index into [`ENUMS`].
    Enum(usize),
}

impl Kind {
    /// The message type of a message field.
    pub(crate) fn message(self) -> Option<&'static Message> {
        match self {
            Kind::Message(i) => Some(&MESSAGES[i]),
            _ => None,
        }
    }
}

/// An enum type.
#[derive(Debug)]
pub(crate) struct Enum {
    pub(crate) name: &'static str,
    /// (number, name), sorted by number, one name per number.
    pub(crate) values: &'static [(i32, &'static str)],
}

impl Enum {
    /// The name of value `number`.
    pub(crate) fn value(&self, number: i32) -> Option<&'static str> {
        let i = self.values.binary_search_by_key(&number, |(n, _)| *n).ok()?;
        Some(self.values[i].1)
    }
}

/// The message type named `name` (its full name).
pub(crate) fn message(name: &str) -> Option<&'static Message> {
    message_index(name).map(|i| &MESSAGES[i])
}

/// The index in [`MESSAGES`] of the message type named `name`.
pub(crate) fn message_index(name: &str) -> Option<usize> {
    MESSAGES.binary_search_by(|m| m.name.cmp(name)).ok()
}

impl Message {
    /// Field `number`.
    pub(crate) fn field(&self, number: u32) -> Option<&'static Field> {
        let i = self.fields.binary_search_by_key(&number, |f| f.number).ok()?;
        Some(&self.fields[i])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The tables answer what `prost_reflect`'s pool of the same set does.
    #[test]
    fn tables_equal_the_descriptor_pool() {
        let pool = pool();
        assert_eq!(pool.all_messages().count(), MESSAGES.len());
        assert_eq!(pool.all_enums().count(), ENUMS.len());
        for desc in pool.all_messages() {
            let m = message(desc.full_name()).expect("every message is in the table");
            assert_eq!(m.fields.len(), desc.fields().len(), "{}", m.name);
            for f in desc.fields() {
                let ours = m.field(f.number()).expect("every field is in the table");
                assert_eq!(ours.json_name, f.json_name());
                assert_eq!((ours.list, ours.map, ours.presence), (f.is_list(), f.is_map(), f.supports_presence()));
                assert_eq!(ours.oneof.is_some(), f.containing_oneof().is_some());
                match (ours.kind, f.kind()) {
                    (Kind::Message(i), prost_reflect::Kind::Message(k)) => assert_eq!(MESSAGES[i].name, k.full_name()),
                    (Kind::Enum(i), prost_reflect::Kind::Enum(e)) => {
                        assert_eq!(ENUMS[i].name, e.full_name());
                        for v in e.values() {
                            let theirs = e.get_value(v.number()).expect("a value of the enum");
                            assert_eq!(ENUMS[i].value(v.number()), Some(theirs.name()));
                        }
                    }
                    (ours, theirs) => assert_eq!(format!("{ours:?}").to_lowercase(), format!("{theirs:?}")),
                }
            }
        }
    }
}
