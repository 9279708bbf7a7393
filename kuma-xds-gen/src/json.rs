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

use crate::canonical::{field as wire_field, varint};
use serde_json::{Map, Number, Value};

/// The JSON value of the message `desc` encoded in `bytes`.
pub(crate) fn message(pool: &DescriptorPool, desc: &MessageDescriptor, bytes: &[u8]) -> Result<Value, String> {
    if let Some(v) = well_known(pool, desc.full_name(), bytes)? {
        return Ok(v);
    }
    let mut entries = Vec::new();
    fields(pool, desc, bytes, &mut entries)?;
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
) -> Result<(), String> {
    // Occurrences per field, in the order fields first appear.
    let mut seen: Vec<(FieldDescriptor, Vec<Occurrence>)> = Vec::new();
    let mut pos = 0;
    while pos < bytes.len() {
        let (number, wire, range) = wire_field(bytes, pos).ok_or("malformed message bytes")?;
        pos = range.end;
        let Some(field) = desc.get_field(number) else { continue };
        match seen.iter_mut().find(|(f, _)| f.number() == number) {
            Some((_, ranges)) => ranges.push((wire, range)),
            None => seen.push((field, vec![(wire, range)])),
        }
    }
    for (field, ranges) in seen {
        let value = if field.is_map() {
            let Kind::Message(entry) = field.kind() else { return Err("a map without an entry type".into()) };
            let mut map = Vec::with_capacity(ranges.len());
            for (_, r) in &ranges {
                map.push(map_entry(pool, &entry, &bytes[r.clone()])?);
            }
            if map.is_empty() {
                continue;
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
                    items.push(value(pool, &field.kind(), *wire, payload)?);
                }
            }
            Value::Array(items)
        } else {
            let v = match field.kind() {
                // Repeated occurrences of a message merge: their bytes concatenated.
                Kind::Message(m) if ranges.len() > 1 => {
                    let joined: Vec<u8> = ranges.iter().flat_map(|(_, r)| bytes[r.clone()].iter().copied()).collect();
                    message(pool, &m, &joined)?
                }
                kind => {
                    let (wire, r) = ranges.last().expect("a field seen once at least");
                    value(pool, &kind, *wire, &bytes[r.clone()])?
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

/// One map entry: its key (as a string) and its value.
fn map_entry(pool: &DescriptorPool, entry: &MessageDescriptor, bytes: &[u8]) -> Result<(String, Value), String> {
    let key_field = entry.map_entry_key_field();
    let value_field = entry.map_entry_value_field();
    let (mut key, mut val) = (None, None);
    let mut pos = 0;
    while pos < bytes.len() {
        let (number, wire, range) = wire_field(bytes, pos).ok_or("malformed map entry")?;
        pos = range.end;
        if number == key_field.number() {
            key = Some(value(pool, &key_field.kind(), wire, &bytes[range])?);
        } else if number == value_field.number() {
            val = Some(value(pool, &value_field.kind(), wire, &bytes[range])?);
        }
    }
    let key = match key {
        Some(Value::String(s)) => s,
        Some(other) => other.to_string(),
        None => default_scalar(&key_field.kind()).map_or_else(String::new, |v| match v {
            Value::String(s) => s,
            other => other.to_string(),
        }),
    };
    let val = match val {
        Some(v) => v,
        None => match value_field.kind() {
            Kind::Message(m) => message(pool, &m, &[])?,
            kind => default_scalar(&kind).unwrap_or(Value::Null),
        },
    };
    Ok((key, val))
}

/// The JSON of a scalar field's default value.
fn default_scalar(kind: &Kind) -> Option<Value> {
    scalar(kind, WireValue::Varint(0)).ok()
}

/// A field's value from its payload (the whole field's bytes for
/// length-delimited ones, the value's bytes otherwise).
fn value(pool: &DescriptorPool, kind: &Kind, wire: u8, payload: &[u8]) -> Result<Value, String> {
    match kind {
        Kind::Message(m) => message(pool, m, payload),
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
fn well_known(pool: &DescriptorPool, name: &str, bytes: &[u8]) -> Result<Option<Value>, String> {
    use prost_types as t;
    let decode_err = |e: prost::DecodeError| e.to_string();
    Ok(Some(match name {
        "google.protobuf.Any" => {
            let any = t::Any::decode(bytes).map_err(decode_err)?;
            let type_name = any.type_url.rsplit_once('/').map_or(any.type_url.as_str(), |(_, n)| n);
            let desc = pool.get_message_by_name(type_name).ok_or_else(|| format!("message '{type_name}' not found"))?;
            let mut entries = vec![("@type".to_string(), Value::String(any.type_url.clone()))];
            match well_known(pool, type_name, &any.value)? {
                Some(v) => entries.push(("value".into(), v)),
                None => fields(pool, &desc, &any.value, &mut entries)?,
            }
            object(entries)
        }
        "google.protobuf.Duration" => Value::String(t::Duration::decode(bytes).map_err(decode_err)?.to_string()),
        "google.protobuf.Timestamp" => Value::String(t::Timestamp::decode(bytes).map_err(decode_err)?.to_string()),
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
        | "google.protobuf.BytesValue" => wrapped(pool, name, bytes)?,
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
fn wrapped(pool: &DescriptorPool, name: &str, bytes: &[u8]) -> Result<Value, String> {
    let desc = pool.get_message_by_name(name).ok_or_else(|| format!("message '{name}' not found"))?;
    let field = desc.get_field(1).ok_or("a wrapper without a value")?;
    let mut last = None;
    let mut pos = 0;
    while pos < bytes.len() {
        let (number, wire, range) = wire_field(bytes, pos).ok_or("malformed wrapper")?;
        pos = range.end;
        if number == 1 {
            last = Some(value(pool, &field.kind(), wire, &bytes[range])?);
        }
    }
    match last {
        Some(v) => Ok(v),
        None => match field.kind() {
            Kind::String | Kind::Bytes => Ok(Value::String(String::new())),
            kind => default_scalar(&kind).ok_or_else(|| "no default".into()),
        },
    }
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
}
