//! Deterministic protobuf bytes.
//!
//! prost encodes a map field in the iteration order of its `HashMap`, which
//! is random per map, so the same message can encode to different bytes
//! (Envoy metadata has two filter keys, `Struct`s several fields). The snapshot
//! packs every resource with [`any`], which rewrites each run of map entries
//! sorted by key — in place, since reordering keeps every length — including
//! inside nested `Any` payloads. Equal messages then give equal bytes, so
//! versions are true content hashes and an unchanged resource is never resent.

use std::ops::Range;
use std::sync::LazyLock;

use envoy_types::pb::google::protobuf::Any;
use prost::{Message, Name};

use crate::schema::{self, Kind};

/// How to walk one message type: its fields that may hold a map or an `Any`.
#[derive(Debug, Default)]
struct Plan {
    fields: Vec<(u32, Step)>,
}

#[derive(Debug, Clone, Copy)]
enum Step {
    /// A map field; entries are walked with the entry plan (if any), then sorted.
    Map(Option<usize>),
    /// A message field with its plan.
    Message(usize),
    /// A `google.protobuf.Any`.
    Any,
}

/// Plans of every message type that may contain a map or an `Any`, directly
/// or through its message fields (message graphs have cycles: a fixpoint),
/// by index in [`schema::MESSAGES`]; `None` for the other types.
struct Plans {
    plans: Vec<Option<Plan>>,
}

impl Plans {
    /// The plan of the message type named `name`, if it needs one.
    fn of(&self, name: &str) -> Option<usize> {
        schema::message_index(name).filter(|&i| self.plans[i].is_some())
    }
}

static PLANS: LazyLock<Plans> = LazyLock::new(|| {
    let messages = &schema::MESSAGES;
    let any = schema::message_index("google.protobuf.Any");
    let is_any = |k: Kind| matches!(k, Kind::Message(i) if Some(i) == any);
    let mut interesting: Vec<bool> =
        messages.iter().map(|m| m.fields.iter().any(|f| f.map || is_any(f.kind))).collect();
    loop {
        let mut changed = false;
        for (i, m) in messages.iter().enumerate() {
            if !interesting[i] && m.fields.iter().any(|f| matches!(f.kind, Kind::Message(k) if interesting[k])) {
                interesting[i] = true;
                changed = true;
            }
        }
        if !changed {
            break;
        }
    }
    let plan = |m: &schema::Message| Plan {
        fields: m
            .fields
            .iter()
            .filter_map(|f| {
                let Kind::Message(k) = f.kind else { return None };
                let step = if f.map {
                    Step::Map(interesting[k].then_some(k))
                } else if Some(k) == any {
                    Step::Any
                } else {
                    Step::Message(interesting[k].then_some(k)?)
                };
                Some((f.number, step))
            })
            .collect(),
    };
    let plans = messages.iter().zip(&interesting).map(|(m, &needed)| needed.then(|| plan(m))).collect();
    Plans { plans }
});

/// `message` packed as an `Any` with its map entries in key order.
pub(crate) fn any<T: Message + Name>(message: &T) -> Any {
    Any { type_url: T::type_url(), value: bytes(message) }
}

/// `message` encoded with its map entries in key order.
pub(crate) fn bytes<T: Message + Name>(message: &T) -> Vec<u8> {
    let mut value = message.encode_to_vec();
    if let Some(plan) = PLANS.of(&T::full_name()) {
        walk(plan, &mut value);
    }
    value
}

/// The number of the field `buf` starts with, and where that field ends.
pub(crate) fn first_field(buf: &[u8]) -> Option<(u32, usize)> {
    field(buf, 0).map(|(number, _, range)| (number, range.end))
}

/// A varint at the start of `buf`, and its length.
pub(crate) fn varint(buf: &[u8]) -> Option<(u64, usize)> {
    let mut value = 0u64;
    for (i, b) in buf.iter().enumerate().take(10) {
        value |= u64::from(b & 0x7f) << (7 * i);
        if b & 0x80 == 0 {
            return Some((value, i + 1));
        }
    }
    None
}

/// The field at `pos`: its number, its wire type, and its payload range
/// (the contents of a length-delimited field, the value's bytes otherwise).
pub(crate) fn field(buf: &[u8], pos: usize) -> Option<(u32, u8, Range<usize>)> {
    let (key, n) = varint(buf.get(pos..)?)?;
    let start = pos + n;
    let wire = (key & 7) as u8;
    let range = match wire {
        0 => start..start + varint(buf.get(start..)?)?.1,
        1 => start..start + 8,
        5 => start..start + 4,
        2 => {
            let (len, n) = varint(buf.get(start..)?)?;
            let payload = start + n;
            payload..payload.checked_add(usize::try_from(len).ok()?)?
        }
        _ => return None,
    };
    (range.end <= buf.len()).then_some(((key >> 3) as u32, wire, range))
}

/// Sorts the map entries of `buf` (a message with plan `plan`) by key,
/// recursively. Malformed bytes are left as they are (prost does not make them).
fn walk(plan: usize, buf: &mut [u8]) -> Option<()> {
    let fields = &PLANS.plans[plan].as_ref()?.fields;
    let mut pos = 0;
    while pos < buf.len() {
        let (number, wire, range) = field(buf, pos)?;
        let step = fields.iter().find(|(n, _)| *n == number).map(|(_, s)| *s).filter(|_| wire == 2);
        match step {
            None => pos = range.end,
            Some(Step::Message(inner)) => {
                walk(inner, &mut buf[range.clone()]);
                pos = range.end;
            }
            Some(Step::Any) => {
                walk_any(&mut buf[range.clone()]);
                pos = range.end;
            }
            Some(Step::Map(entry)) => pos = sort_map_run(buf, pos, number, entry)?,
        }
    }
    Some(())
}

/// Sorts the run of entries of map field `number` that starts at `start`;
/// returns where the run ends.
fn sort_map_run(buf: &mut [u8], start: usize, number: u32, entry: Option<usize>) -> Option<usize> {
    let mut entries: Vec<(Range<usize>, Range<usize>)> = Vec::new();
    let mut pos = start;
    while let Some((_, 2, payload)) = field(buf, pos).filter(|(n, _, _)| *n == number) {
        if let Some(plan) = entry {
            walk(plan, &mut buf[payload.clone()]);
        }
        let key = match field(&buf[payload.clone()], 0) {
            Some((1, _, k)) => payload.start + k.start..payload.start + k.end,
            _ => payload.start..payload.start,
        };
        entries.push((key, pos..payload.end));
        pos = payload.end;
    }
    if entries.len() > 1 {
        let mut sorted = entries.clone();
        sorted.sort_by(|a, b| buf[a.0.clone()].cmp(&buf[b.0.clone()]));
        if sorted != entries {
            let copy = buf[start..pos].to_vec();
            let mut at = start;
            for (_, whole) in sorted {
                let len = whole.len();
                buf[at..at + len].copy_from_slice(&copy[whole.start - start..whole.end - start]);
                at += len;
            }
        }
    }
    Some(pos)
}

/// An `Any`'s payload, by its type URL.
fn walk_any(buf: &mut [u8]) -> Option<()> {
    let (mut type_url, mut value) = (None, None);
    let mut pos = 0;
    while pos < buf.len() {
        let (number, _, range) = field(buf, pos)?;
        match number {
            1 => type_url = Some(range.clone()),
            2 => value = Some(range.clone()),
            _ => {}
        }
        pos = range.end;
    }
    let url = std::str::from_utf8(&buf[type_url?]).ok()?;
    let plan = PLANS.of(url.rsplit('/').next()?)?;
    walk(plan, &mut buf[value?])
}

#[cfg(test)]
mod tests {
    use super::*;
    use envoy_types::pb::envoy::config::core::v3::Metadata;
    use envoy_types::pb::envoy::config::endpoint::v3::{ClusterLoadAssignment, LbEndpoint, LocalityLbEndpoints};
    use envoy_types::pb::envoy::config::route::v3::{Route, RouteConfiguration, VirtualHost};
    use std::collections::HashSet;

    fn metadata() -> Metadata {
        let pairs: Vec<(String, String)> = (0..8).map(|i| (format!("k{i}"), format!("v{i}"))).collect();
        let labels = crate::pb::string_struct(pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        Metadata {
            filter_metadata: (0..6).map(|i| (format!("filter{i}"), labels.clone())).collect(),
            ..Default::default()
        }
    }

    #[test]
    fn equal_messages_give_equal_bytes_whatever_the_map_order() {
        let cla = || ClusterLoadAssignment {
            cluster_name: "c".into(),
            endpoints: vec![LocalityLbEndpoints {
                lb_endpoints: vec![LbEndpoint { metadata: Some(metadata()), ..Default::default() }],
                ..Default::default()
            }],
            ..Default::default()
        };
        let first = any(&cla());
        // Fresh HashMaps get fresh random orders.
        let plain: HashSet<Vec<u8>> = (0..20).map(|_| cla().encode_to_vec()).collect();
        assert!(plain.len() > 1, "prost's map order is random, or this test shows nothing");
        for _ in 0..20 {
            assert!(any(&cla()) == first, "the same bytes");
        }
        assert!(ClusterLoadAssignment::decode(first.value.as_slice()).unwrap() == cla(), "the same message");
    }

    #[test]
    fn maps_inside_nested_any_payloads_are_sorted_too() {
        let config = || RouteConfiguration {
            virtual_hosts: vec![VirtualHost {
                routes: vec![Route {
                    typed_per_filter_config: (0..6)
                        .map(|i| (format!("filter{i}"), crate::pb::any(&metadata())))
                        .collect(),
                    ..Default::default()
                }],
                ..Default::default()
            }],
            ..Default::default()
        };
        let first = any(&config());
        for _ in 0..20 {
            assert!(any(&config()) == first, "the same bytes");
        }
        // Still the same message: decoding and packing again changes nothing.
        let decoded = RouteConfiguration::decode(first.value.as_slice()).unwrap();
        assert!(any(&decoded) == first);
        assert_eq!(decoded.virtual_hosts[0].routes[0].typed_per_filter_config.len(), 6);
    }
}
