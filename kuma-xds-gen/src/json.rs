//! Canonical proto3 JSON of encoded bytes, read straight off the wire.
//!
//! Rendering went through `prost-reflect`: decode into a `DynamicMessage`
//! (a map of fields per message), serialise that into a JSON value, then
//! sort every object again. For a 10,000-rule gateway that was half of
//! `render`'s time. This reads each message's fields from its bytes with
//! the same descriptor pool and builds the sorted value once. The mapping is
//! proto3 JSON as `prost-reflect` writes it (its serialiser is the
//! reference): camelCase names, default values of fields without presence
//! left out, 64-bit integers as strings, enums by name, bytes in base64,
//! `Any` with `@type`, and the well-known types in their JSON forms. The
//! snapshot tests of every example and Kuma case hold the two equal.

use std::ops::Range;

use base64::prelude::{BASE64_STANDARD, Engine as _};
use prost::Message as _;
use prost_reflect::{DescriptorPool, FieldDescriptor, Kind, MessageDescriptor};
use serde_json::{Map, Number, Value};

use crate::canonical::{field as wire_field, varint};

/// The JSON value of the message `desc` encoded in `bytes`.
pub(crate) fn message(pool: &DescriptorPool, desc: &MessageDescriptor, bytes: &[u8]) -> Result<Value, String> {
    read_message(pool, desc, bytes, 0)
}

/// How deep messages may nest, as prost's own decoder allows: bytes nested
/// deeper are refused rather than exhausting the stack.
const MAX_DEPTH: usize = 100;

fn read_message(pool: &DescriptorPool, desc: &MessageDescriptor, bytes: &[u8], depth: usize) -> Result<Value, String> {
    if let Some(v) = well_known(pool, desc.full_name(), bytes, depth)? {
        return Ok(v);
    }
    let mut entries = Vec::new();
    fields(pool, desc, bytes, &mut entries, depth)?;
    Ok(object(entries))
}

/// An object of `entries`, sorted by key (the last of equal keys wins).
fn object(mut entries: Vec<(String, Value)>) -> Value {
    entries.sort_by(|a, b| a.0.cmp(&b.0));
    let mut map = Map::with_capacity(entries.len());
    for (k, v) in entries {
        map.insert(k, v);
    }
    Value::Object(map)
}

/// One occurrence of a field: its wire type and payload range.
type Occurrence = (u8, Range<usize>);

/// The fields of message `desc` in `bytes`, as (JSON name, value), unsorted.
fn fields(
    pool: &DescriptorPool,
    desc: &MessageDescriptor,
    bytes: &[u8],
    out: &mut Vec<(String, Value)>,
    depth: usize,
) -> Result<(), String> {
    // Occurrences per field, in the order fields first appear, with the
    // position of the field's last occurrence.
    let mut seen: Vec<(FieldDescriptor, Vec<Occurrence>, usize)> = Vec::new();
    let mut pos = 0;
    while pos < bytes.len() {
        let (number, wire, range) = wire_field(bytes, pos).ok_or("malformed message bytes")?;
        pos = range.end;
        let Some(field) = desc.get_field(number) else { continue };
        match seen.iter_mut().find(|(f, _, _)| f.number() == number) {
            Some((_, ranges, last)) => {
                ranges.push((wire, range));
                *last = pos;
            }
            None => seen.push((field, vec![(wire, range)], pos)),
        }
    }
    // Of the members of a oneof, the last one written is the one set.
    let oneofs: Vec<Option<prost_reflect::OneofDescriptor>> =
        seen.iter().map(|(f, _, _)| f.containing_oneof()).collect();
    let later_member = |oneof: &prost_reflect::OneofDescriptor, last: usize| {
        oneofs.iter().zip(&seen).any(|(other, (_, _, l))| other.as_ref() == Some(oneof) && *l > last)
    };
    let superseded: Vec<bool> = oneofs
        .iter()
        .zip(&seen)
        .map(|(oneof, (_, _, last))| oneof.as_ref().is_some_and(|o| later_member(o, *last)))
        .collect();
    for ((field, ranges, _), superseded) in seen.into_iter().zip(superseded) {
        if superseded {
            continue;
        }
        let value = if field.is_map() {
            let Kind::Message(entry) = field.kind() else { return Err("a map without an entry type".into()) };
            // A later entry of the same key replaces an earlier one, whose
            // value is then never read.
            let mut latest: Vec<(String, &[u8])> = Vec::with_capacity(ranges.len());
            for (_, r) in &ranges {
                let entry_bytes = &bytes[r.clone()];
                let key = map_key(pool, &entry, entry_bytes, depth)?;
                latest.retain(|(k, _)| *k != key);
                latest.push((key, entry_bytes));
            }
            if latest.is_empty() {
                continue;
            }
            let mut map = Vec::with_capacity(latest.len());
            for (key, entry_bytes) in latest {
                map.push((key, map_value(pool, &entry, entry_bytes, depth)?));
            }
            object(map)
        } else if field.is_list() {
            let mut items = Vec::new();
            for (wire, r) in &ranges {
                let payload = &bytes[r.clone()];
                if *wire == 2 && !matches!(field.kind(), Kind::Message(_) | Kind::String | Kind::Bytes) {
                    // Packed numbers.
                    let mut p = 0;
                    while p < payload.len() {
                        let (item, end) = packed_item(&field.kind(), payload, p).ok_or("malformed packed field")?;
                        items.push(scalar(&field.kind(), item)?);
                        p = end;
                    }
                } else {
                    items.push(value(pool, &field.kind(), *wire, payload, depth)?);
                }
            }
            Value::Array(items)
        } else {
            let v = match field.kind() {
                // Repeated occurrences of a message merge: their bytes concatenated.
                Kind::Message(m) if ranges.len() > 1 => {
                    let joined: Vec<u8> = ranges.iter().flat_map(|(_, r)| bytes[r.clone()].iter().copied()).collect();
                    read_message(pool, &m, &joined, depth + 1)?
                }
                kind => {
                    let (wire, r) = ranges.last().expect("a field seen once at least");
                    value(pool, &kind, *wire, &bytes[r.clone()], depth)?
                }
            };
            if !field.supports_presence() && is_default(&v, &field.kind()) {
                continue;
            }
            v
        };
        out.push((field.json_name().to_string(), value));
    }
    Ok(())
}

/// True for the default value of a field without presence (left out).
fn is_default(v: &Value, kind: &Kind) -> bool {
    let wide = matches!(kind, Kind::Int64 | Kind::Sint64 | Kind::Sfixed64 | Kind::Uint64 | Kind::Fixed64);
    // An enum's default (number 0) renders as its first value's name.
    let enum_zero = matches!(kind, Kind::Enum(e) if e.get_value(0).is_some_and(|z| v.as_str() == Some(z.name())));
    enum_zero
        || match v {
            Value::Bool(b) => !b,
            Value::String(s) => s.is_empty() || (wide && s == "0"),
            Value::Number(n) => n.as_f64() == Some(0.0),
            Value::Null => true,
            _ => false,
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
fn map_key(pool: &DescriptorPool, entry: &MessageDescriptor, bytes: &[u8], depth: usize) -> Result<String, String> {
    let field = entry.map_entry_key_field();
    let key = match last_field(bytes, field.number())? {
        Some((wire, r)) => value(pool, &field.kind(), wire, &bytes[r], depth)?,
        None => default_scalar(&field.kind()).unwrap_or_else(|| Value::String(String::new())),
    };
    Ok(match key {
        Value::String(s) => s,
        other => other.to_string(),
    })
}

/// A map entry's value.
fn map_value(pool: &DescriptorPool, entry: &MessageDescriptor, bytes: &[u8], depth: usize) -> Result<Value, String> {
    last_value(pool, &entry.map_entry_value_field(), bytes, depth)
}

/// The value of `field` in message `bytes` (its last occurrence), or its
/// default when absent: what a map entry or a wrapper without it holds.
fn last_value(pool: &DescriptorPool, field: &FieldDescriptor, bytes: &[u8], depth: usize) -> Result<Value, String> {
    match (last_field(bytes, field.number())?, field.kind()) {
        (Some((wire, r)), kind) => value(pool, &kind, wire, &bytes[r], depth),
        (None, Kind::Message(m)) => read_message(pool, &m, &[], depth + 1),
        (None, Kind::String | Kind::Bytes) => Ok(Value::String(String::new())),
        (None, kind) => Ok(default_scalar(&kind).unwrap_or(Value::Null)),
    }
}

/// The JSON of a scalar field's default value.
fn default_scalar(kind: &Kind) -> Option<Value> {
    scalar(kind, WireValue::Varint(0)).ok()
}

/// A field's value from its payload (the whole field's bytes for
/// length-delimited ones, the value's bytes otherwise).
fn value(pool: &DescriptorPool, kind: &Kind, wire: u8, payload: &[u8], depth: usize) -> Result<Value, String> {
    match kind {
        Kind::Message(m) => read_message(pool, m, payload, depth + 1),
        Kind::String => std::str::from_utf8(payload).map(|s| Value::String(s.to_string())).map_err(|e| e.to_string()),
        Kind::Bytes => Ok(Value::String(BASE64_STANDARD.encode(payload))),
        _ => {
            let item = match wire {
                0 => WireValue::Varint(varint(payload).ok_or("malformed varint")?.0),
                1 => WireValue::Fixed64(u64::from_le_bytes(payload.try_into().map_err(|_| "malformed fixed64")?)),
                5 => WireValue::Fixed32(u32::from_le_bytes(payload.try_into().map_err(|_| "malformed fixed32")?)),
                _ => return Err(format!("wire type {wire} for a number")),
            };
            scalar(kind, item)
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
fn scalar(kind: &Kind, item: WireValue) -> Result<Value, String> {
    let bits64 = match item {
        WireValue::Varint(v) | WireValue::Fixed64(v) => v,
        WireValue::Fixed32(v) => u64::from(v),
    };
    let float = |f: f64| {
        if f.is_finite() {
            Value::from(f)
        } else if f == f64::INFINITY {
            Value::String("Infinity".into())
        } else if f == f64::NEG_INFINITY {
            Value::String("-Infinity".into())
        } else {
            Value::String("NaN".into())
        }
    };
    Ok(match kind {
        Kind::Double => float(f64::from_bits(bits64)),
        Kind::Float => {
            let f = f32::from_bits(bits64 as u32);
            if f.is_finite() { Value::from(f) } else { float(f64::from(f)) }
        }
        Kind::Int32 | Kind::Sfixed32 => Value::from(bits64 as u32 as i32),
        Kind::Sint32 => {
            let v = bits64 as u32;
            Value::from(((v >> 1) as i32) ^ -((v & 1) as i32))
        }
        Kind::Uint32 | Kind::Fixed32 => Value::from(bits64 as u32),
        Kind::Int64 | Kind::Sfixed64 => Value::String((bits64 as i64).to_string()),
        Kind::Sint64 => Value::String((((bits64 >> 1) as i64) ^ -((bits64 & 1) as i64)).to_string()),
        Kind::Uint64 | Kind::Fixed64 => Value::String(bits64.to_string()),
        Kind::Bool => Value::Bool(bits64 != 0),
        Kind::Enum(e) => {
            let number = bits64 as i32;
            if e.full_name() == "google.protobuf.NullValue" {
                Value::Null
            } else {
                e.get_value(number).map_or_else(|| Value::from(number), |v| Value::String(v.name().to_string()))
            }
        }
        Kind::String | Kind::Bytes | Kind::Message(_) => return Err("a length-delimited field as a number".into()),
    })
}

/// The packed item at `pos` and where it ends.
fn packed_item(kind: &Kind, buf: &[u8], pos: usize) -> Option<(WireValue, usize)> {
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

/// The well-known types with a JSON form of their own.
fn well_known(pool: &DescriptorPool, name: &str, bytes: &[u8], depth: usize) -> Result<Option<Value>, String> {
    // Every nested message passes here first (an `Any`'s payload too).
    if depth > MAX_DEPTH {
        return Err(format!("messages nested more than {MAX_DEPTH} deep"));
    }
    use prost_types as t;
    let decode_err = |e: prost::DecodeError| e.to_string();
    Ok(Some(match name {
        "google.protobuf.Any" => {
            let any = t::Any::decode(bytes).map_err(decode_err)?;
            let type_name = any.type_url.rsplit_once('/').map_or(any.type_url.as_str(), |(_, n)| n);
            let desc = pool.get_message_by_name(type_name).ok_or_else(|| format!("message '{type_name}' not found"))?;
            let mut entries = vec![("@type".to_string(), Value::String(any.type_url.clone()))];
            match well_known(pool, type_name, &any.value, depth + 1)? {
                Some(v) => entries.push(("value".into(), v)),
                None => fields(pool, &desc, &any.value, &mut entries, depth + 1)?,
            }
            object(entries)
        }
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
        "google.protobuf.DoubleValue"
        | "google.protobuf.FloatValue"
        | "google.protobuf.Int32Value"
        | "google.protobuf.Int64Value"
        | "google.protobuf.UInt32Value"
        | "google.protobuf.UInt64Value"
        | "google.protobuf.BoolValue"
        | "google.protobuf.StringValue"
        | "google.protobuf.BytesValue" => wrapped(pool, name, bytes, depth)?,
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
fn wrapped(pool: &DescriptorPool, name: &str, bytes: &[u8], depth: usize) -> Result<Value, String> {
    let desc = pool.get_message_by_name(name).ok_or_else(|| format!("message '{name}' not found"))?;
    let field = desc.get_field(1).ok_or("a wrapper without a value")?;
    let v = last_value(pool, &field, bytes, depth)?;
    // prost-reflect writes a wrapped non-finite number as JSON's `null`
    // (unlike a plain double field, which gets "NaN" or "Infinity").
    if v.is_string() && matches!(field.kind(), Kind::Double | Kind::Float) {
        return Ok(Value::Null);
    }
    Ok(v)
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
    use prost_reflect::{DynamicMessage, SerializeOptions};

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
        let desc = crate::render::pool().get_message_by_name(type_name).unwrap();
        let dynamic = DynamicMessage::decode(desc, bytes).unwrap();
        sorted(dynamic.serialize_with_options(serde_json::value::Serializer, &SerializeOptions::new()).unwrap())
    }

    fn ours<M: prost::Message + Name>(m: &M) -> (Value, Value) {
        let bytes = m.encode_to_vec();
        let desc = crate::render::pool().get_message_by_name(&M::full_name()).unwrap();
        (message(crate::render::pool(), &desc, &bytes).unwrap(), reference(&M::full_name(), &bytes))
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
                    let desc = crate::render::pool().get_message_by_name(name).unwrap();
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
        let pool = crate::render::pool();
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
        let any = pool.get_message_by_name("google.protobuf.Any").unwrap();
        assert!(message(pool, &any, &anys).unwrap_err().contains("nested more than 100 deep"));
        // ListValue { values: [Value { list_value: ... }] }: prost decodes
        // those, with a limit of its own.
        let lists = nest(10_000, &|inner| {
            let mut list = Vec::new();
            let mut value = Vec::new();
            field(&mut value, 6, inner);
            field(&mut list, 1, &value);
            list
        });
        let list = pool.get_message_by_name("google.protobuf.ListValue").unwrap();
        assert!(message(pool, &list, &lists).is_err());
        // 50 levels, around an Empty, are read.
        let mut empty = Vec::new();
        field(&mut empty, 1, b"type.googleapis.com/google.protobuf.Empty");
        let fifty = (0..49).fold(empty, |inner, _| {
            let mut a = Vec::new();
            field(&mut a, 1, b"type.googleapis.com/google.protobuf.Any");
            field(&mut a, 2, &inner);
            a
        });
        assert!(message(pool, &any, &fifty).is_ok());
    }

    #[test]
    fn equals_prost_reflect_on_random_messages() {
        let pool = crate::render::pool();
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
            match (message(pool, &desc, &bytes), theirs) {
                (Ok(a), Ok(_)) => {
                    assert_eq!(a, reference(name, &bytes), "seed {seed}");
                    compared += 1;
                }
                (Err(_), Err(_)) => both_refused += 1,
                (a, b) => panic!("seed {seed} ({name}): ours {a:?}, prost-reflect {b:?}"),
            }
        }
        assert!(compared > 1000, "most random messages are valid: {compared} compared, {both_refused} refused");
    }
}
