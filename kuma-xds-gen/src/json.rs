//! Canonical proto3 JSON of encoded bytes, read straight off the wire.
//!
//! Rendering went through `prost-reflect`: decode into a `DynamicMessage`
//! (a map of fields per message), serialise that into a JSON value, then
//! sort every object again. For a 10,000-rule gateway that was half of
//! `render`'s time. [`Wire`] instead reads each message's fields from its
//! bytes with the schema tables (`crate::schema`), one message at a time, and hands
//! them, sorted, to any serde serializer: `serde_json`'s value, its pretty
//! text, or the YAML writer (`crate::yaml`). Text is therefore written with
//! no tree in between. The mapping is proto3 JSON as `prost-reflect` writes
//! it (its serialiser is the reference): camelCase names, default values of
//! fields without presence left out, 64-bit integers as strings, enums by
//! name, bytes in base64, `Any` with `@type`, and the well-known types in
//! their JSON forms. The tests below and the snapshot tests of every example
//! and Kuma case hold the two equal.

use std::borrow::Cow;
use std::ops::Range;

use base64::prelude::{BASE64_STANDARD, Engine as _};
use prost::Message as _;
use serde::ser::{Error as _, Serialize, SerializeMap as _, SerializeSeq as _, Serializer};
use serde_json::{Map, Number, Value};

use crate::canonical::{field as wire_field, varint};
use crate::schema::{self, Kind};

/// The JSON value of the message `desc` encoded in `bytes`.
pub(crate) fn message(desc: &'static schema::Message, bytes: &[u8]) -> Result<Value, String> {
    serde_json::to_value(Wire::new(desc, bytes)).map_err(|e| e.to_string())
}

/// How deep messages may nest, as prost's own decoder allows: bytes nested
/// deeper are refused rather than exhausting the stack.
const MAX_DEPTH: usize = 100;

/// The message `desc` encoded in bytes, serialised as canonical proto3 JSON.
/// Nested messages are read only as the serializer reaches them.
pub(crate) struct Wire<'a> {
    desc: &'static schema::Message,
    /// Owned when the occurrences of a message field were merged.
    bytes: Cow<'a, [u8]>,
    depth: usize,
}

impl<'a> Wire<'a> {
    /// The message `desc` encoded in `bytes`, at the top.
    pub(crate) fn new(desc: &'static schema::Message, bytes: &'a [u8]) -> Self {
        Wire { desc, bytes: Cow::Borrowed(bytes), depth: 0 }
    }

    /// The full name of the message type.
    pub(crate) fn type_name(&self) -> &'static str {
        self.desc.name
    }
}

impl Serialize for Wire<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        // Every nested message passes here first (an `Any`'s payload too).
        if self.depth > MAX_DEPTH {
            return Err(S::Error::custom(format!("messages nested more than {MAX_DEPTH} deep")));
        }
        let (bytes, depth) = (&*self.bytes, self.depth);
        match self.desc.name {
            "google.protobuf.Any" => any(bytes, depth, s),
            name => match well_known(name, bytes, depth).map_err(S::Error::custom)? {
                Some(v) => v.serialize(s),
                None => {
                    let entries = fields(self.desc, bytes, depth).map_err(S::Error::custom)?;
                    let mut map = s.serialize_map(Some(entries.len()))?;
                    for (field, value) in &entries {
                        map.serialize_entry(field.json_name, value)?;
                    }
                    map.end()
                }
            },
        }
    }
}

/// An `Any`: `@type`, then its payload's fields, or `value` when the payload
/// is a well-known type with a JSON form of its own.
fn any<S: Serializer>(bytes: &[u8], depth: usize, s: S) -> Result<S::Ok, S::Error> {
    let length_delimited = |number| match last_field(bytes, number).map_err(S::Error::custom)? {
        None => Ok(&bytes[..0]),
        Some((2, r)) => Ok(&bytes[r]),
        Some(_) => Err(S::Error::custom("invalid wire type for a field of google.protobuf.Any")),
    };
    let type_url = std::str::from_utf8(length_delimited(1)?).map_err(S::Error::custom)?;
    let payload = length_delimited(2)?;
    let type_name = type_url.rsplit_once('/').map_or(type_url, |(_, n)| n);
    let desc =
        schema::message(type_name).ok_or_else(|| S::Error::custom(format!("message '{type_name}' not found")))?;
    let inner = Wire { desc, bytes: Cow::Borrowed(payload), depth: depth + 1 };
    if is_well_known(type_name) {
        let mut map = s.serialize_map(Some(2))?;
        map.serialize_entry("@type", type_url)?;
        map.serialize_entry("value", &inner)?;
        return map.end();
    }
    if inner.depth > MAX_DEPTH {
        return Err(S::Error::custom(format!("messages nested more than {MAX_DEPTH} deep")));
    }
    let entries = fields(inner.desc, payload, inner.depth).map_err(S::Error::custom)?;
    let mut map = s.serialize_map(Some(1 + entries.len()))?;
    // `@` sorts before every field name.
    map.serialize_entry("@type", type_url)?;
    for (field, value) in &entries {
        map.serialize_entry(field.json_name, value)?;
    }
    map.end()
}

/// One field's JSON value, its nested messages still bytes.
enum Field<'a> {
    Scalar(Scalar),
    Str(&'a str),
    /// Written in base64.
    Bytes(&'a [u8]),
    Message(Wire<'a>),
    List(Vec<Field<'a>>),
    /// Sorted by key.
    Map(Vec<(String, Field<'a>)>),
}

impl Serialize for Field<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Field::Scalar(v) => v.serialize(s),
            Field::Str(v) => s.serialize_str(v),
            Field::Bytes(v) => s.serialize_str(&BASE64_STANDARD.encode(v)),
            Field::Message(m) => m.serialize(s),
            Field::List(items) => {
                let mut seq = s.serialize_seq(Some(items.len()))?;
                for item in items {
                    seq.serialize_element(item)?;
                }
                seq.end()
            }
            Field::Map(entries) => {
                let mut map = s.serialize_map(Some(entries.len()))?;
                for (k, v) in entries {
                    map.serialize_entry(k, v)?;
                }
                map.end()
            }
        }
    }
}

/// A number, bool, enum value or null.
enum Scalar {
    Null,
    Bool(bool),
    Int(i64),
    Uint(u64),
    /// Finite.
    Float(f64),
    /// 64-bit integers and non-finite numbers.
    Text(String),
    /// Its number and name.
    Enum(i32, &'static str),
}

impl Serialize for Scalar {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Scalar::Null => s.serialize_unit(),
            Scalar::Bool(b) => s.serialize_bool(*b),
            Scalar::Int(i) => s.serialize_i64(*i),
            Scalar::Uint(u) => s.serialize_u64(*u),
            Scalar::Float(f) => s.serialize_f64(*f),
            Scalar::Text(t) => s.serialize_str(t),
            Scalar::Enum(_, name) => s.serialize_str(name),
        }
    }
}

/// One occurrence of a field: its wire type and payload range.
type Occurrence = (u8, Range<usize>);

/// The fields of message `desc` in `bytes` that JSON shows, sorted by JSON
/// name.
fn fields<'a>(
    desc: &'static schema::Message,
    bytes: &'a [u8],
    depth: usize,
) -> Result<Vec<(&'static schema::Field, Field<'a>)>, String> {
    // Occurrences per field, in the order fields first appear, with the
    // position of the field's last occurrence.
    let mut seen: Vec<(&'static schema::Field, Vec<Occurrence>, usize)> = Vec::new();
    let mut pos = 0;
    while pos < bytes.len() {
        let (number, wire, range) = wire_field(bytes, pos).ok_or("malformed message bytes")?;
        pos = range.end;
        let Some(field) = desc.field(number) else { continue };
        match seen.iter_mut().find(|(f, _, _)| f.number == number) {
            Some((_, ranges, last)) => {
                ranges.push((wire, range));
                *last = pos;
            }
            None => seen.push((field, vec![(wire, range)], pos)),
        }
    }
    // Of the members of a oneof, the last one written is the one set.
    let later_member =
        |oneof: usize, last: usize| seen.iter().any(|(other, _, l)| other.oneof == Some(oneof) && *l > last);
    let superseded: Vec<bool> =
        seen.iter().map(|(field, _, last)| field.oneof.is_some_and(|o| later_member(o, *last))).collect();
    let mut out = Vec::with_capacity(seen.len());
    for ((field, ranges, _), superseded) in seen.into_iter().zip(superseded) {
        if superseded {
            continue;
        }
        let value = if field.map {
            let Some(entry) = field.kind.message() else { return Err("a map without an entry type".into()) };
            // A later entry of the same key replaces an earlier one, whose
            // value is then never read.
            let mut latest: Vec<(String, &[u8])> = Vec::with_capacity(ranges.len());
            for (_, r) in &ranges {
                let entry_bytes = &bytes[r.clone()];
                let key = map_key(entry, entry_bytes, depth)?;
                latest.retain(|(k, _)| *k != key);
                latest.push((key, entry_bytes));
            }
            if latest.is_empty() {
                continue;
            }
            let mut map = Vec::with_capacity(latest.len());
            for (key, entry_bytes) in latest {
                map.push((key, last_value(entry.field(2), entry_bytes, depth)?));
            }
            map.sort_by(|a, b| a.0.cmp(&b.0));
            Field::Map(map)
        } else if field.list {
            let mut items = Vec::new();
            for (wire, r) in &ranges {
                let payload = &bytes[r.clone()];
                if *wire == 2 && !matches!(field.kind, Kind::Message(_) | Kind::String | Kind::Bytes) {
                    // Packed numbers.
                    let mut p = 0;
                    while p < payload.len() {
                        let (item, end) = packed_item(field.kind, payload, p).ok_or("malformed packed field")?;
                        items.push(Field::Scalar(scalar(field.kind, item)?));
                        p = end;
                    }
                } else {
                    items.push(value(field.kind, *wire, payload, depth)?);
                }
            }
            Field::List(items)
        } else {
            let v = match field.kind.message() {
                // Repeated occurrences of a message merge: their bytes concatenated.
                Some(desc) if ranges.len() > 1 => {
                    let joined: Vec<u8> = ranges.iter().flat_map(|(_, r)| bytes[r.clone()].iter().copied()).collect();
                    Field::Message(Wire { desc, bytes: Cow::Owned(joined), depth: depth + 1 })
                }
                _ => {
                    let (wire, r) = ranges.last().expect("a field seen once at least");
                    value(field.kind, *wire, &bytes[r.clone()], depth)?
                }
            };
            if !field.presence && is_default(&v, field.kind) {
                continue;
            }
            v
        };
        out.push((field, value));
    }
    out.sort_by_key(|(field, _)| field.json_rank);
    Ok(out)
}

/// True for the default value of a field without presence (left out).
fn is_default(v: &Field<'_>, kind: Kind) -> bool {
    let wide = matches!(kind, Kind::Int64 | Kind::Sint64 | Kind::Sfixed64 | Kind::Uint64 | Kind::Fixed64);
    match v {
        Field::Str(s) => s.is_empty(),
        Field::Bytes(b) => b.is_empty(),
        Field::Scalar(Scalar::Null) => true,
        Field::Scalar(Scalar::Bool(b)) => !b,
        Field::Scalar(Scalar::Int(i)) => *i == 0,
        Field::Scalar(Scalar::Uint(u)) => *u == 0,
        Field::Scalar(Scalar::Float(f)) => *f == 0.0,
        Field::Scalar(Scalar::Text(s)) => s.is_empty() || (wide && s == "0"),
        // An enum's default is number 0.
        Field::Scalar(Scalar::Enum(number, _)) => *number == 0,
        Field::Message(_) | Field::List(_) | Field::Map(_) => false,
    }
}

/// The last occurrence of field `number` in message `bytes`, with its wire type.
fn last_field(bytes: &[u8], number: u32) -> Result<Option<(u8, Range<usize>)>, String> {
    let mut last = None;
    let mut pos = 0;
    while pos < bytes.len() {
        let (n, wire, range) = wire_field(bytes, pos).ok_or("malformed message bytes")?;
        pos = range.end;
        if n == number {
            last = Some((wire, range));
        }
    }
    Ok(last)
}

/// A map entry's key, as a string.
fn map_key(entry: &schema::Message, bytes: &[u8], depth: usize) -> Result<String, String> {
    let field = entry.field(1).ok_or("a map entry without a key")?;
    let key = match last_field(bytes, field.number)? {
        Some((wire, r)) => value(field.kind, wire, &bytes[r], depth)?,
        // An entry without its key has the key type's default.
        None if matches!(field.kind, Kind::String | Kind::Bytes) => Field::Str(""),
        None => Field::Scalar(scalar(field.kind, WireValue::Varint(0))?),
    };
    Ok(match key {
        Field::Str(s) => s.to_string(),
        Field::Scalar(Scalar::Bool(b)) => b.to_string(),
        Field::Scalar(Scalar::Int(i)) => i.to_string(),
        Field::Scalar(Scalar::Uint(u)) => u.to_string(),
        Field::Scalar(Scalar::Text(t)) => t,
        _ => return Err("a map key that is not a string, number or bool".into()),
    })
}

/// The value of `field` in message `bytes` (its last occurrence), or its
/// default when absent: what a map entry or a wrapper without it holds.
fn last_value<'a>(field: Option<&schema::Field>, bytes: &'a [u8], depth: usize) -> Result<Field<'a>, String> {
    let field = field.ok_or("a map entry or wrapper without a value")?;
    match (last_field(bytes, field.number)?, field.kind) {
        (Some((wire, r)), kind) => value(kind, wire, &bytes[r], depth),
        (None, Kind::Message(i)) => {
            Ok(Field::Message(Wire { desc: &schema::MESSAGES[i], bytes: Cow::Borrowed(&[]), depth: depth + 1 }))
        }
        (None, Kind::String | Kind::Bytes) => Ok(Field::Str("")),
        (None, kind) => Ok(Field::Scalar(scalar(kind, WireValue::Varint(0)).unwrap_or(Scalar::Null))),
    }
}

/// A field's value from its payload (the whole field's bytes for
/// length-delimited ones, the value's bytes otherwise).
fn value(kind: Kind, wire: u8, payload: &[u8], depth: usize) -> Result<Field<'_>, String> {
    match kind {
        Kind::Message(i) => {
            Ok(Field::Message(Wire { desc: &schema::MESSAGES[i], bytes: Cow::Borrowed(payload), depth: depth + 1 }))
        }
        Kind::String => std::str::from_utf8(payload).map(Field::Str).map_err(|e| e.to_string()),
        Kind::Bytes => Ok(Field::Bytes(payload)),
        _ => {
            let item = match wire {
                0 => WireValue::Varint(varint(payload).ok_or("malformed varint")?.0),
                1 => WireValue::Fixed64(u64::from_le_bytes(payload.try_into().map_err(|_| "malformed fixed64")?)),
                5 => WireValue::Fixed32(u32::from_le_bytes(payload.try_into().map_err(|_| "malformed fixed32")?)),
                _ => return Err(format!("wire type {wire} for a number")),
            };
            scalar(kind, item).map(Field::Scalar)
        }
    }
}

#[derive(Clone, Copy)]
enum WireValue {
    Varint(u64),
    Fixed64(u64),
    Fixed32(u32),
}

/// A number, bool or enum value.
fn scalar(kind: Kind, item: WireValue) -> Result<Scalar, String> {
    let bits64 = match item {
        WireValue::Varint(v) | WireValue::Fixed64(v) => v,
        WireValue::Fixed32(v) => u64::from(v),
    };
    let float = |f: f64| {
        if f.is_finite() {
            Scalar::Float(f)
        } else if f == f64::INFINITY {
            Scalar::Text("Infinity".into())
        } else if f == f64::NEG_INFINITY {
            Scalar::Text("-Infinity".into())
        } else {
            Scalar::Text("NaN".into())
        }
    };
    Ok(match kind {
        Kind::Double => float(f64::from_bits(bits64)),
        // As serde_json holds an f32: widened, not printed as the shortest f32.
        Kind::Float => float(f64::from(f32::from_bits(bits64 as u32))),
        Kind::Int32 | Kind::Sfixed32 => Scalar::Int(i64::from(bits64 as u32 as i32)),
        Kind::Sint32 => {
            let v = bits64 as u32;
            Scalar::Int(i64::from(((v >> 1) as i32) ^ -((v & 1) as i32)))
        }
        Kind::Uint32 | Kind::Fixed32 => Scalar::Uint(u64::from(bits64 as u32)),
        Kind::Int64 | Kind::Sfixed64 => Scalar::Text((bits64 as i64).to_string()),
        Kind::Sint64 => Scalar::Text((((bits64 >> 1) as i64) ^ -((bits64 & 1) as i64)).to_string()),
        Kind::Uint64 | Kind::Fixed64 => Scalar::Text(bits64.to_string()),
        Kind::Bool => Scalar::Bool(bits64 != 0),
        Kind::Enum(i) => {
            let number = bits64 as i32;
            let e = &schema::ENUMS[i];
            if e.name == "google.protobuf.NullValue" {
                Scalar::Null
            } else {
                e.value(number).map_or(Scalar::Int(i64::from(number)), |name| Scalar::Enum(number, name))
            }
        }
        Kind::String | Kind::Bytes | Kind::Message(_) => return Err("a length-delimited field as a number".into()),
    })
}

/// The packed item at `pos` and where it ends.
fn packed_item(kind: Kind, buf: &[u8], pos: usize) -> Option<(WireValue, usize)> {
    match kind {
        Kind::Double | Kind::Fixed64 | Kind::Sfixed64 => {
            let b = buf.get(pos..pos + 8)?;
            Some((WireValue::Fixed64(u64::from_le_bytes(b.try_into().ok()?)), pos + 8))
        }
        Kind::Float | Kind::Fixed32 | Kind::Sfixed32 => {
            let b = buf.get(pos..pos + 4)?;
            Some((WireValue::Fixed32(u32::from_le_bytes(b.try_into().ok()?)), pos + 4))
        }
        _ => {
            let (v, n) = varint(buf.get(pos..)?)?;
            Some((WireValue::Varint(v), pos + n))
        }
    }
}

/// The wrapper types: a message of one `value` field, written as its value.
const WRAPPERS: [&str; 9] = [
    "google.protobuf.DoubleValue",
    "google.protobuf.FloatValue",
    "google.protobuf.Int32Value",
    "google.protobuf.Int64Value",
    "google.protobuf.UInt32Value",
    "google.protobuf.UInt64Value",
    "google.protobuf.BoolValue",
    "google.protobuf.StringValue",
    "google.protobuf.BytesValue",
];

/// True for the well-known types with a JSON form of their own.
fn is_well_known(name: &str) -> bool {
    WRAPPERS.contains(&name)
        || matches!(
            name,
            "google.protobuf.Any"
                | "google.protobuf.Duration"
                | "google.protobuf.Timestamp"
                | "google.protobuf.Struct"
                | "google.protobuf.ListValue"
                | "google.protobuf.Value"
                | "google.protobuf.FieldMask"
                | "google.protobuf.Empty"
        )
}

/// The JSON of the well-known types other than `Any` with a JSON form of
/// their own; they are small.
fn well_known(name: &str, bytes: &[u8], depth: usize) -> Result<Option<Value>, String> {
    use prost_types as t;
    let decode_err = |e: prost::DecodeError| e.to_string();
    Ok(Some(match name {
        "google.protobuf.Duration" => {
            let d = t::Duration::decode(bytes).map_err(decode_err)?;
            // The ranges proto3 JSON allows (as prost-reflect checks them).
            if d.seconds.unsigned_abs() > 315_576_000_000 || d.nanos.unsigned_abs() > 999_999_999 {
                return Err("duration out of range".into());
            }
            Value::String(d.to_string())
        }
        "google.protobuf.Timestamp" => {
            let ts = t::Timestamp::decode(bytes).map_err(decode_err)?;
            if !(-62_135_596_800..=253_402_300_799).contains(&ts.seconds) {
                return Err("timestamp out of range".into());
            }
            Value::String(ts.to_string())
        }
        "google.protobuf.Struct" => struct_value(&t::Struct::decode(bytes).map_err(decode_err)?)?,
        "google.protobuf.ListValue" => list_value(&t::ListValue::decode(bytes).map_err(decode_err)?)?,
        "google.protobuf.Value" => json_value(&t::Value::decode(bytes).map_err(decode_err)?)?,
        name if WRAPPERS.contains(&name) => wrapped(name, bytes, depth)?,
        "google.protobuf.FieldMask" => {
            let mask = t::FieldMask::decode(bytes).map_err(decode_err)?;
            let paths: Vec<String> =
                mask.paths.iter().map(|p| p.split('.').map(camel_case).collect::<Vec<_>>().join(".")).collect();
            Value::String(paths.join(","))
        }
        "google.protobuf.Empty" => Value::Object(Map::new()),
        _ => return Ok(None),
    }))
}

/// A wrapper's `value` field, or its default when absent.
fn wrapped(name: &str, bytes: &[u8], depth: usize) -> Result<Value, String> {
    let desc = schema::message(name).ok_or_else(|| format!("message '{name}' not found"))?;
    let field = desc.field(1).ok_or("a wrapper without a value")?;
    let v = last_value(Some(field), bytes, depth)?;
    // prost-reflect writes a wrapped non-finite number as JSON's `null`
    // (unlike a plain double field, which gets "NaN" or "Infinity").
    if matches!(v, Field::Scalar(Scalar::Text(_))) && matches!(field.kind, Kind::Double | Kind::Float) {
        return Ok(Value::Null);
    }
    serde_json::to_value(v).map_err(|e| e.to_string())
}

/// An object of `entries`, sorted by key (the last of equal keys wins).
fn object(mut entries: Vec<(String, Value)>) -> Value {
    entries.sort_by(|a, b| a.0.cmp(&b.0));
    Value::Object(entries.into_iter().collect())
}

fn struct_value(s: &prost_types::Struct) -> Result<Value, String> {
    let mut entries = Vec::with_capacity(s.fields.len());
    for (k, v) in &s.fields {
        entries.push((k.clone(), json_value(v)?));
    }
    Ok(object(entries))
}

fn list_value(l: &prost_types::ListValue) -> Result<Value, String> {
    l.values.iter().map(json_value).collect::<Result<Vec<_>, _>>().map(Value::Array)
}

fn json_value(v: &prost_types::Value) -> Result<Value, String> {
    use prost_types::value::Kind as K;
    Ok(match &v.kind {
        None | Some(K::NullValue(_)) => Value::Null,
        Some(K::BoolValue(b)) => Value::Bool(*b),
        Some(K::NumberValue(n)) => {
            Value::Number(Number::from_f64(*n).ok_or("cannot serialize non-finite double in google.protobuf.Value")?)
        }
        Some(K::StringValue(s)) => Value::String(s.clone()),
        Some(K::ListValue(l)) => list_value(l)?,
        Some(K::StructValue(s)) => struct_value(s)?,
    })
}

/// `snake_case` → `snakeCase`, as a FieldMask path part is written.
fn camel_case(part: &str) -> String {
    let mut out = String::with_capacity(part.len());
    let mut upper = false;
    for c in part.chars() {
        if c == '_' {
            upper = true;
        } else if upper {
            out.extend(c.to_uppercase());
            upper = false;
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use envoy_types::pb::envoy::config::cluster::v3::{Cluster, cluster};
    use envoy_types::pb::envoy::config::core::v3::{Metadata, RuntimeDouble};
    use envoy_types::pb::envoy::config::route::v3::{RetryPolicy, Route, RouteConfiguration, VirtualHost};
    use envoy_types::pb::google::protobuf::{
        BoolValue, Duration, Empty, ListValue, NullValue, Struct, UInt32Value, Value as PbValue, value,
    };
    use prost::Name;
    use prost_reflect::{DynamicMessage, Kind, MessageDescriptor, SerializeOptions};

    /// What `prost-reflect` writes for the same bytes, every object sorted:
    /// the reference this module must equal.
    fn reference(type_name: &str, bytes: &[u8]) -> Value {
        fn sorted(v: Value) -> Value {
            match v {
                Value::Object(m) => {
                    let mut e: Vec<_> = m.into_iter().collect();
                    e.sort_by(|a, b| a.0.cmp(&b.0));
                    Value::Object(e.into_iter().map(|(k, v)| (k, sorted(v))).collect())
                }
                Value::Array(a) => Value::Array(a.into_iter().map(sorted).collect()),
                other => other,
            }
        }
        let desc = crate::schema::pool().get_message_by_name(type_name).unwrap();
        let dynamic = DynamicMessage::decode(desc, bytes).unwrap();
        sorted(dynamic.serialize_with_options(serde_json::value::Serializer, &SerializeOptions::new()).unwrap())
    }

    fn ours<M: prost::Message + Name>(m: &M) -> (Value, Value) {
        let bytes = m.encode_to_vec();
        (message(schema::message(&M::full_name()).unwrap(), &bytes).unwrap(), reference(&M::full_name(), &bytes))
    }

    fn pb_struct(fields: Vec<(&str, PbValue)>) -> Struct {
        Struct { fields: fields.into_iter().map(|(k, v)| (k.to_string(), v)).collect() }
    }

    #[test]
    fn equals_prost_reflect_on_every_kind_of_field() {
        let nested = pb_struct(vec![
            ("n", PbValue { kind: Some(value::Kind::NumberValue(1.5)) }),
            ("z", PbValue { kind: Some(value::Kind::NullValue(NullValue::NullValue as i32)) }),
            ("b", PbValue { kind: Some(value::Kind::BoolValue(true)) }),
            (
                "l",
                PbValue {
                    kind: Some(value::Kind::ListValue(ListValue {
                        values: vec![PbValue { kind: Some(value::Kind::StringValue("s".into())) }, PbValue::default()],
                    })),
                },
            ),
        ]);
        let cluster = Cluster {
            name: "c".into(),
            // An enum, a Duration, wrappers, a map of Any (Empty is a
            // well-known type inside an Any), a nested Struct.
            lb_policy: cluster::LbPolicy::Maglev as i32,
            connect_timeout: Some(Duration { seconds: 1, nanos: 500_000_000 }),
            per_connection_buffer_limit_bytes: Some(UInt32Value { value: 0 }),
            ignore_health_on_host_removal: true,
            typed_extension_protocol_options: [
                ("e".to_string(), crate::pb::any(&Empty {})),
                ("w".to_string(), crate::pb::any(&BoolValue { value: true })),
                ("s".to_string(), crate::pb::any(&nested)),
            ]
            .into_iter()
            .collect(),
            metadata: Some(Metadata {
                filter_metadata: [("m".to_string(), nested.clone())].into_iter().collect(),
                ..Default::default()
            }),
            ..Default::default()
        };
        let (a, b) = ours(&cluster);
        assert_eq!(a, b);
        let config = RouteConfiguration {
            name: "r".into(),
            virtual_hosts: vec![VirtualHost {
                name: "v".into(),
                domains: vec!["a".into(), "b".into()],
                // Packed numbers, 64-bit integers, a double, an enum value
                // the descriptor does not know.
                retry_policy: Some(RetryPolicy {
                    retriable_status_codes: vec![503, 504, 0],
                    host_selection_retry_max_attempts: -7,
                    ..Default::default()
                }),
                require_tls: 9,
                routes: vec![Route { name: "x".into(), ..Default::default() }, Route::default()],
                ..Default::default()
            }],
            ..Default::default()
        };
        let (a, b) = ours(&config);
        assert_eq!(a, b);
        let (a, b) = ours(&RuntimeDouble { default_value: 0.25, runtime_key: "k".into() });
        assert_eq!(a, b);
        let (a, b) = ours(&nested);
        assert_eq!(a, b);
    }

    /// proptest's seeded generator, so that a failure repeats.
    struct Rng(proptest::test_runner::TestRng);

    impl Rng {
        fn new(seed: u64) -> Self {
            let mut bytes = [0u8; 32];
            bytes[..8].copy_from_slice(&seed.to_le_bytes());
            Rng(proptest::test_runner::TestRng::from_seed(proptest::test_runner::RngAlgorithm::ChaCha, &bytes))
        }
        fn next(&mut self) -> u64 {
            proptest::prelude::Rng::next_u64(&mut self.0)
        }
        fn below(&mut self, n: u64) -> u64 {
            self.next() % n
        }
    }

    fn key(out: &mut Vec<u8>, number: u32, wire: u8) {
        prost::encoding::encode_varint((u64::from(number) << 3) | u64::from(wire), out);
    }

    /// Random bytes of message `desc`: a random subset of its fields, of
    /// every kind (packed and not, unknown enum numbers, nested messages,
    /// maps, `Any`s of known types, out-of-range well-known values).
    fn random_message(desc: &MessageDescriptor, rng: &mut Rng, depth: usize, out: &mut Vec<u8>) {
        for field in desc.fields() {
            if rng.below(3) != 0 {
                continue;
            }
            let count = if field.is_list() || field.is_map() { rng.below(3) + 1 } else { 1 };
            let kind = field.kind();
            let packable = !matches!(kind, Kind::Message(_) | Kind::String | Kind::Bytes);
            if field.is_list() && packable && rng.below(2) == 0 {
                let mut packed = Vec::new();
                for _ in 0..count {
                    random_value(&kind, rng, depth, &mut packed);
                }
                key(out, field.number(), 2);
                prost::encoding::encode_varint(packed.len() as u64, out);
                out.extend(packed);
                continue;
            }
            for _ in 0..count {
                let wire = match kind {
                    Kind::Message(_) | Kind::String | Kind::Bytes => 2,
                    Kind::Double | Kind::Fixed64 | Kind::Sfixed64 => 1,
                    Kind::Float | Kind::Fixed32 | Kind::Sfixed32 => 5,
                    _ => 0,
                };
                if wire == 0 || wire == 1 || wire == 5 {
                    key(out, field.number(), wire);
                    random_value(&kind, rng, depth, out);
                } else {
                    let mut payload = Vec::new();
                    random_value(&kind, rng, depth, &mut payload);
                    key(out, field.number(), 2);
                    prost::encoding::encode_varint(payload.len() as u64, out);
                    out.extend(payload);
                }
            }
        }
    }

    fn random_value(kind: &Kind, rng: &mut Rng, depth: usize, out: &mut Vec<u8>) {
        match kind {
            Kind::Message(m) if m.full_name() == "google.protobuf.Any" => {
                let names = [
                    "envoy.config.route.v3.Route",
                    "google.protobuf.Duration",
                    "google.protobuf.Struct",
                    "google.protobuf.UInt32Value",
                    "google.protobuf.Empty",
                ];
                let name = names[rng.below(names.len() as u64) as usize];
                let url = format!("type.googleapis.com/{name}");
                key(out, 1, 2);
                prost::encoding::encode_varint(url.len() as u64, out);
                out.extend(url.as_bytes());
                let mut payload = Vec::new();
                if depth < 3 {
                    let desc = crate::schema::pool().get_message_by_name(name).unwrap();
                    random_message(&desc, rng, depth + 1, &mut payload);
                }
                key(out, 2, 2);
                prost::encoding::encode_varint(payload.len() as u64, out);
                out.extend(payload);
            }
            Kind::Message(m) => {
                if depth < 3 {
                    random_message(m, rng, depth + 1, out);
                }
            }
            Kind::String => {
                let len = rng.below(6);
                out.extend((0..len).map(|_| b"ab_Z:/'0 -"[rng.below(10) as usize]));
            }
            Kind::Bytes => out.extend((0..rng.below(6)).map(|_| rng.next() as u8)),
            Kind::Double => out.extend_from_slice(
                &[0.0, 1.5, -2.0, 1e21, f64::NAN, f64::INFINITY][rng.below(6) as usize].to_bits().to_le_bytes(),
            ),
            Kind::Float => out.extend_from_slice(
                &[0.0f32, 0.1, -3.0, f32::NEG_INFINITY][rng.below(4) as usize].to_bits().to_le_bytes(),
            ),
            Kind::Fixed64 | Kind::Sfixed64 => out.extend_from_slice(&rng.next().to_le_bytes()),
            Kind::Fixed32 | Kind::Sfixed32 => out.extend_from_slice(&(rng.next() as u32).to_le_bytes()),
            Kind::Bool => out.push(rng.below(2) as u8),
            // Small numbers (enum values, known and not) and huge ones.
            _ => {
                let v = if rng.below(2) == 0 { rng.below(8) } else { rng.next() };
                prost::encoding::encode_varint(v, out);
            }
        }
    }

    #[test]
    fn bytes_nested_too_deep_are_refused_not_a_stack_overflow() {
        let nest =
            |levels: usize, wrap: &dyn Fn(&[u8]) -> Vec<u8>| (0..levels).fold(Vec::new(), |inner, _| wrap(&inner));
        let field = |out: &mut Vec<u8>, number: u32, payload: &[u8]| {
            key(out, number, 2);
            prost::encoding::encode_varint(payload.len() as u64, out);
            out.extend_from_slice(payload);
        };
        // Any { type_url: Any, value: Any { ... } }, 10,000 deep: read by
        // this module alone.
        let anys = nest(10_000, &|inner| {
            let mut any = Vec::new();
            field(&mut any, 1, b"type.googleapis.com/google.protobuf.Any");
            field(&mut any, 2, inner);
            any
        });
        assert!(
            message(schema::message("google.protobuf.Any").unwrap(), &anys)
                .unwrap_err()
                .contains("nested more than 100 deep")
        );
        // ListValue { values: [Value { list_value: ... }] }: prost decodes
        // those, with a limit of its own.
        let lists = nest(10_000, &|inner| {
            let mut list = Vec::new();
            let mut value = Vec::new();
            field(&mut value, 6, inner);
            field(&mut list, 1, &value);
            list
        });
        assert!(message(schema::message("google.protobuf.ListValue").unwrap(), &lists).is_err());
        // 50 levels, around an Empty, are read.
        let mut empty = Vec::new();
        field(&mut empty, 1, b"type.googleapis.com/google.protobuf.Empty");
        let fifty = (0..49).fold(empty, |inner, _| {
            let mut a = Vec::new();
            field(&mut a, 1, b"type.googleapis.com/google.protobuf.Any");
            field(&mut a, 2, &inner);
            a
        });
        assert!(message(schema::message("google.protobuf.Any").unwrap(), &fifty).is_ok());
    }

    #[test]
    fn equals_prost_reflect_on_random_messages() {
        let pool = crate::schema::pool();
        let types = [
            "envoy.config.route.v3.RouteConfiguration",
            "envoy.config.cluster.v3.Cluster",
            "envoy.config.listener.v3.Listener",
            "google.protobuf.Struct",
        ];
        let (mut compared, mut both_refused) = (0, 0);
        for seed in 1..=3000u64 {
            let mut rng = Rng::new(seed);
            let name = types[(seed % types.len() as u64) as usize];
            let desc = pool.get_message_by_name(name).unwrap();
            let mut bytes = Vec::new();
            random_message(&desc, &mut rng, 0, &mut bytes);
            let theirs =
                DynamicMessage::decode(desc.clone(), bytes.as_slice()).map_err(|e| e.to_string()).and_then(|d| {
                    d.serialize_with_options(serde_json::value::Serializer, &SerializeOptions::new())
                        .map_err(|e| e.to_string())
                });
            let ours = schema::message(name).unwrap();
            match (message(ours, &bytes), theirs) {
                (Ok(a), Ok(_)) => {
                    assert_eq!(a, reference(name, &bytes), "seed {seed}");
                    // Text written from the bytes is the value's text.
                    let wire = Wire::new(ours, &bytes);
                    let yaml = crate::yaml::to_string(&wire).unwrap();
                    assert_eq!(yaml, crate::yaml::to_string(&a).unwrap(), "seed {seed}");
                    let json = serde_json::to_string_pretty(&wire).unwrap();
                    assert_eq!(json, serde_json::to_string_pretty(&a).unwrap(), "seed {seed}");
                    compared += 1;
                }
                (Err(_), Err(_)) => both_refused += 1,
                (a, b) => panic!("seed {seed} ({name}): ours {a:?}, prost-reflect {b:?}"),
            }
        }
        assert!(compared > 1000, "most random messages are valid: {compared} compared, {both_refused} refused");
    }
}
