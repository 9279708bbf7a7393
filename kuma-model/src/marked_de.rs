//! Typed specs read straight from the marked tree ([`crate::source`]).
//!
//! A node is read exactly as the `serde_json::Value` it stands for
//! ([`Marked::to_value`]) would be read by serde_json's own deserialiser:
//! the same visitor calls, the same errors. Going through the value cost a
//! copy of every document (about a fifth of `validate` on a large gateway).
//! The `reads_as_its_json_value` property holds the two to the same result.

use serde::de::{self, DeserializeSeed, Deserializer, EnumAccess, IntoDeserializer, MapAccess, SeqAccess, Unexpected};
use serde::de::{VariantAccess, Visitor};
use serde_json::Error;

use crate::source::{Entry, Marked, Node};

/// A node as serde input. At the top of a Universal resource, `skip` names
/// the envelope's keys, which are not part of the spec beside them.
#[derive(Clone, Copy)]
pub(crate) struct MarkedDe<'de> {
    node: &'de Marked<'de>,
    skip: &'static [&'static str],
}

impl<'de> MarkedDe<'de> {
    /// `node`, whole.
    pub(crate) fn new(node: &'de Marked<'de>) -> Self {
        MarkedDe { node, skip: &[] }
    }

    /// Mapping `node` without its entries named in `skip`.
    pub(crate) fn without(node: &'de Marked<'de>, skip: &'static [&'static str]) -> Self {
        MarkedDe { node, skip }
    }

    /// The node as an owned tree, without the skipped keys: for edits.
    pub(crate) fn owned(&self) -> Marked<'de> {
        let mut node = self.node.clone();
        if let Node::Map(entries) = &mut node.node {
            entries.retain(|(k, _, _)| !self.skip.contains(&&**k));
        }
        node
    }

    /// True when the JSON value is `null`: a null node, or a float JSON
    /// cannot hold (NaN, infinities).
    fn is_null(&self) -> bool {
        match self.node.node {
            Node::Null => true,
            Node::Float(f) => !f.is_finite(),
            _ => false,
        }
    }

    /// The mapping's entries as the JSON object holds them: null values
    /// left out, as are skipped keys.
    fn entries(&self, entries: &'de [Entry<'de>]) -> impl Iterator<Item = (&'de str, MarkedDe<'de>)> + use<'de> {
        let skip = self.skip;
        entries
            .iter()
            .filter(move |(k, _, v)| v.node != Node::Null && !skip.contains(&&**k))
            .map(|(k, _, v)| (&**k, MarkedDe::new(v)))
    }

    fn unexpected(&self) -> Unexpected<'de> {
        match &self.node.node {
            Node::Null => Unexpected::Unit,
            Node::Bool(b) => Unexpected::Bool(*b),
            Node::Int(i) if *i >= 0 => Unexpected::Unsigned(*i as u64),
            Node::Int(i) => Unexpected::Signed(*i),
            Node::Float(f) if f.is_finite() => Unexpected::Float(*f),
            Node::Float(_) => Unexpected::Unit,
            Node::Str(s) => Unexpected::Str(s),
            Node::Seq(_) => Unexpected::Seq,
            Node::Map(_) => Unexpected::Map,
        }
    }

    fn invalid_type(&self, expected: &dyn de::Expected) -> Error {
        de::Error::invalid_type(self.unexpected(), expected)
    }

    fn visit_seq<V: Visitor<'de>>(items: &'de [Marked<'de>], visitor: V) -> Result<V::Value, Error> {
        let mut seq = Seq { items: items.iter() };
        let out = visitor.visit_seq(&mut seq)?;
        if seq.items.len() == 0 {
            Ok(out)
        } else {
            Err(de::Error::invalid_length(items.len(), &"fewer elements in array"))
        }
    }

    fn visit_map<V: Visitor<'de>>(self, entries: &'de [Entry<'de>], visitor: V) -> Result<V::Value, Error> {
        let len = self.entries(entries).count();
        let mut map = Map { entries: self.entries(entries), value: None, left: len };
        let out = visitor.visit_map(&mut map)?;
        if map.left == 0 { Ok(out) } else { Err(de::Error::invalid_length(len, &"fewer elements in map")) }
    }

    fn number<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match self.node.node {
            Node::Int(i) if i >= 0 => visitor.visit_u64(i as u64),
            Node::Int(i) => visitor.visit_i64(i),
            Node::Float(f) if f.is_finite() => visitor.visit_f64(f),
            _ => Err(self.invalid_type(&visitor)),
        }
    }
}

macro_rules! numbers {
    ($($method:ident)*) => {
        $(fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
            self.number(visitor)
        })*
    };
}

impl<'de> Deserializer<'de> for MarkedDe<'de> {
    type Error = Error;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        if self.is_null() {
            return visitor.visit_unit();
        }
        match &self.node.node {
            Node::Bool(b) => visitor.visit_bool(*b),
            Node::Int(_) | Node::Float(_) => self.number(visitor),
            Node::Str(s) => visitor.visit_borrowed_str(s),
            Node::Seq(items) => Self::visit_seq(items, visitor),
            Node::Map(entries) => self.visit_map(entries, visitor),
            Node::Null => visitor.visit_unit(),
        }
    }

    numbers!(deserialize_i8 deserialize_i16 deserialize_i32 deserialize_i64 deserialize_i128
        deserialize_u8 deserialize_u16 deserialize_u32 deserialize_u64 deserialize_u128
        deserialize_f32 deserialize_f64);

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        if self.is_null() { visitor.visit_none() } else { visitor.visit_some(self) }
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Error> {
        match &self.node.node {
            Node::Map(entries) => {
                let mut iter = self.entries(entries);
                let single = |u| de::Error::invalid_value(u, &"map with a single key");
                let (variant, value) = iter.next().ok_or_else(|| single(Unexpected::Map))?;
                if iter.next().is_some() {
                    return Err(single(Unexpected::Map));
                }
                visitor.visit_enum(Enum { variant, value: Some(value) })
            }
            Node::Str(variant) => visitor.visit_enum(Enum { variant, value: None }),
            _ => Err(self.invalid_type(&"string or map")),
        }
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(self, _name: &'static str, visitor: V) -> Result<V::Value, Error> {
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_bool<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match self.node.node {
            Node::Bool(b) => visitor.visit_bool(b),
            _ => Err(self.invalid_type(&visitor)),
        }
    }

    fn deserialize_char<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        self.deserialize_str(visitor)
    }

    fn deserialize_str<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match &self.node.node {
            Node::Str(s) => visitor.visit_borrowed_str(s),
            _ => Err(self.invalid_type(&visitor)),
        }
    }

    fn deserialize_string<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        self.deserialize_str(visitor)
    }

    fn deserialize_bytes<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match &self.node.node {
            Node::Str(s) => visitor.visit_borrowed_str(s),
            Node::Seq(items) => Self::visit_seq(items, visitor),
            _ => Err(self.invalid_type(&visitor)),
        }
    }

    fn deserialize_byte_buf<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        self.deserialize_bytes(visitor)
    }

    fn deserialize_unit<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        if self.is_null() { visitor.visit_unit() } else { Err(self.invalid_type(&visitor)) }
    }

    fn deserialize_unit_struct<V: Visitor<'de>>(self, _name: &'static str, visitor: V) -> Result<V::Value, Error> {
        self.deserialize_unit(visitor)
    }

    fn deserialize_seq<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match &self.node.node {
            Node::Seq(items) => Self::visit_seq(items, visitor),
            _ => Err(self.invalid_type(&visitor)),
        }
    }

    fn deserialize_tuple<V: Visitor<'de>>(self, _len: usize, visitor: V) -> Result<V::Value, Error> {
        self.deserialize_seq(visitor)
    }

    fn deserialize_tuple_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _len: usize,
        visitor: V,
    ) -> Result<V::Value, Error> {
        self.deserialize_seq(visitor)
    }

    fn deserialize_map<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match &self.node.node {
            Node::Map(entries) => self.visit_map(entries, visitor),
            _ => Err(self.invalid_type(&visitor)),
        }
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Error> {
        match &self.node.node {
            Node::Seq(items) => Self::visit_seq(items, visitor),
            Node::Map(entries) => self.visit_map(entries, visitor),
            _ => Err(self.invalid_type(&visitor)),
        }
    }

    fn deserialize_identifier<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        self.deserialize_str(visitor)
    }

    fn deserialize_ignored_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        visitor.visit_unit()
    }
}

struct Seq<'de> {
    items: std::slice::Iter<'de, Marked<'de>>,
}

impl<'de> SeqAccess<'de> for Seq<'de> {
    type Error = Error;

    fn next_element_seed<T: DeserializeSeed<'de>>(&mut self, seed: T) -> Result<Option<T::Value>, Error> {
        self.items.next().map(|item| seed.deserialize(MarkedDe::new(item))).transpose()
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.items.len())
    }
}

struct Map<'de, I> {
    entries: I,
    value: Option<MarkedDe<'de>>,
    left: usize,
}

impl<'de, I: Iterator<Item = (&'de str, MarkedDe<'de>)>> MapAccess<'de> for Map<'de, I> {
    type Error = Error;

    fn next_key_seed<K: DeserializeSeed<'de>>(&mut self, seed: K) -> Result<Option<K::Value>, Error> {
        let Some((key, value)) = self.entries.next() else { return Ok(None) };
        self.left -= 1;
        self.value = Some(value);
        seed.deserialize(de::value::BorrowedStrDeserializer::new(key)).map(Some)
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, Error> {
        match self.value.take() {
            Some(value) => seed.deserialize(value),
            None => Err(de::Error::custom("value is missing")),
        }
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.left)
    }
}

struct Enum<'de> {
    variant: &'de str,
    value: Option<MarkedDe<'de>>,
}

impl<'de> EnumAccess<'de> for Enum<'de> {
    type Error = Error;
    type Variant = Variant<'de>;

    fn variant_seed<V: DeserializeSeed<'de>>(self, seed: V) -> Result<(V::Value, Variant<'de>), Error> {
        let variant: de::value::StrDeserializer<'_, Error> = self.variant.into_deserializer();
        seed.deserialize(variant).map(|v| (v, Variant { value: self.value }))
    }
}

struct Variant<'de> {
    value: Option<MarkedDe<'de>>,
}

impl<'de> VariantAccess<'de> for Variant<'de> {
    type Error = Error;

    fn unit_variant(self) -> Result<(), Error> {
        match self.value {
            Some(value) => serde::Deserialize::deserialize(value),
            None => Ok(()),
        }
    }

    fn newtype_variant_seed<T: DeserializeSeed<'de>>(self, seed: T) -> Result<T::Value, Error> {
        match self.value {
            Some(value) => seed.deserialize(value),
            None => Err(de::Error::invalid_type(Unexpected::UnitVariant, &"newtype variant")),
        }
    }

    fn tuple_variant<V: Visitor<'de>>(self, _len: usize, visitor: V) -> Result<V::Value, Error> {
        match self.value {
            Some(MarkedDe { node: Marked { node: Node::Seq(items), .. }, .. }) if items.is_empty() => {
                visitor.visit_unit()
            }
            Some(MarkedDe { node: Marked { node: Node::Seq(items), .. }, .. }) => MarkedDe::visit_seq(items, visitor),
            Some(other) => Err(other.invalid_type(&"tuple variant")),
            None => Err(de::Error::invalid_type(Unexpected::UnitVariant, &"tuple variant")),
        }
    }

    fn struct_variant<V: Visitor<'de>>(self, _fields: &'static [&'static str], visitor: V) -> Result<V::Value, Error> {
        match self.value {
            Some(value @ MarkedDe { node: Marked { node: Node::Map(entries), .. }, .. }) => {
                value.visit_map(entries, visitor)
            }
            Some(other) => Err(other.invalid_type(&"struct variant")),
            None => Err(de::Error::invalid_type(Unexpected::UnitVariant, &"struct variant")),
        }
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::resource::{Kind, Spec};

    /// Field names of real specs, so that random trees reach deep into them.
    const KEYS: &[&str] = &[
        "conf",
        "http",
        "tcp",
        "rules",
        "matches",
        "path",
        "match",
        "value",
        "backends",
        "destination",
        "weight",
        "listeners",
        "port",
        "protocol",
        "hostname",
        "hostnames",
        "tags",
        "selectors",
        "sources",
        "destinations",
        "kuma.io/service",
        "networking",
        "address",
        "gateway",
        "type",
        "inbound",
        "filters",
        "requestHeader",
        "set",
        "name",
        "headers",
        "mirror",
        "percentage",
        "backend",
        "redirect",
        "statusCode",
        "targetRef",
        "kind",
        "to",
        "default",
        "from",
        "spec",
        "data",
        "tls",
        "mode",
        "certificates",
        "secret",
        "inline",
        "timeout",
        "connectTimeout",
        "http1",
        "enabled",
        "mtls",
        "enabledBackend",
        "unknownField",
    ];

    fn leaf() -> impl Strategy<Value = Node<'static>> {
        prop_oneof![
            Just(Node::Null),
            any::<bool>().prop_map(Node::Bool),
            prop_oneof![-3i64..300, Just(i64::MIN), Just(i64::MAX), Just(65536)].prop_map(Node::Int),
            prop_oneof![Just(0.5), Just(-1.25), Just(1e300), Just(f64::NAN), Just(f64::INFINITY), Just(2.0)]
                .prop_map(Node::Float),
            prop_oneof![
                Just("".to_string()),
                Just("HTTP".to_string()),
                Just("PREFIX".to_string()),
                Just("/a".to_string()),
                Just("10s".to_string()),
                Just("web".to_string()),
                Just("MeshGateway".to_string()),
                Just("YWJj".to_string()),
                "[a-z]{1,4}",
            ]
            .prop_map(|s| Node::Str(s.into())),
        ]
    }

    fn tree() -> impl Strategy<Value = Marked<'static>> {
        leaf().prop_map(|node| Marked { line: 1, node }).prop_recursive(5, 48, 5, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..4)
                    .prop_map(|items| Marked { line: 1, node: Node::Seq(items) }),
                proptest::collection::vec((proptest::sample::select(KEYS), inner), 0..5).prop_map(|entries| {
                    // Keys are unique in a parsed mapping.
                    let mut seen = std::collections::BTreeSet::new();
                    let entries = entries
                        .into_iter()
                        .filter(|(k, _)| seen.insert(*k))
                        .map(|(k, v)| (std::borrow::Cow::Borrowed(k), 1, v))
                        .collect();
                    Marked { line: 1, node: Node::Map(entries) }
                }),
            ]
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 3_000, ..ProptestConfig::default() })]

        /// Every kind's spec reads from the tree as from its JSON value:
        /// the same spec, or the same error at the same field.
        #[test]
        fn reads_as_its_json_value(tree in tree()) {
            let value = tree.to_value();
            for kind in Kind::ALL {
                prop_assert_eq!(Spec::deserialize(*kind, MarkedDe::new(&tree)), Spec::from_json(*kind, &value), "{:?}", kind);
            }
        }

        /// The same without the envelope's keys, as a Universal resource's
        /// spec is read.
        #[test]
        fn reads_without_skipped_keys_as_without_them(tree in tree()) {
            let skip: &[&str] = &["type", "name", "conf"];
            let de = MarkedDe::without(&tree, skip);
            let value = de.owned().to_value();
            for kind in Kind::ALL {
                prop_assert_eq!(Spec::deserialize(*kind, de), Spec::from_json(*kind, &value), "{:?}", kind);
            }
        }
    }
}
