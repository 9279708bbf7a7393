//! Short constructors for the Envoy messages the translator writes often.
//! The generated types are plain structs with many optional fields; these
//! keep the translation code about Kuma, not about prost.

use envoy_types::pb::envoy::config::core::v3::{
    Address, AggregatedConfigSource, ApiVersion, ConfigSource, HeaderValue, HeaderValueOption, SocketAddress,
    TransportSocket, address, config_source, header_value_option::HeaderAppendAction, socket_address, transport_socket,
};
use envoy_types::pb::google::protobuf::{Any, BoolValue, Duration, Struct, UInt32Value, Value, value};
use prost::{Message, Name};

/// Packs a message into an `Any` with its xDS type URL.
pub(crate) fn any<T: Message + Name>(message: &T) -> Any {
    Any { type_url: T::type_url(), value: message.encode_to_vec() }
}

/// A duration of whole milliseconds.
pub(crate) fn millis(ms: u64) -> Duration {
    Duration { seconds: (ms / 1000) as i64, nanos: ((ms % 1000) * 1_000_000) as i32 }
}

/// A duration of whole seconds.
pub(crate) fn secs(s: u64) -> Duration {
    Duration { seconds: s as i64, nanos: 0 }
}

/// A `kuma_model::Duration` as a proto duration.
pub(crate) fn duration(d: kuma_model::Duration) -> Duration {
    let (seconds, nanos) = d.seconds_and_nanos();
    Duration { seconds, nanos }
}

/// A `UInt32Value`.
pub(crate) fn u32v(value: u32) -> Option<UInt32Value> {
    Some(UInt32Value { value })
}

/// A `BoolValue`.
pub(crate) fn boolv(value: bool) -> Option<BoolValue> {
    Some(BoolValue { value })
}

/// The config source "over the ADS stream, v3".
pub(crate) fn ads() -> ConfigSource {
    ConfigSource {
        resource_api_version: ApiVersion::V3 as i32,
        config_source_specifier: Some(config_source::ConfigSourceSpecifier::Ads(AggregatedConfigSource {})),
        ..Default::default()
    }
}

/// A TCP socket address.
pub(crate) fn socket_address(address: &str, port: u32) -> Address {
    Address {
        address: Some(address::Address::SocketAddress(SocketAddress {
            address: address.to_string(),
            port_specifier: Some(socket_address::PortSpecifier::PortValue(port)),
            ..Default::default()
        })),
    }
}

/// A transport socket with a typed config.
pub(crate) fn transport_socket<T: Message + Name>(name: &str, config: &T) -> TransportSocket {
    TransportSocket {
        name: name.to_string(),
        config_type: Some(transport_socket::ConfigType::TypedConfig(any(config))),
    }
}

/// A header to add, replacing (`overwrite`) or appending.
pub(crate) fn header(key: &str, value: &str, overwrite: bool) -> HeaderValueOption {
    let action =
        if overwrite { HeaderAppendAction::OverwriteIfExistsOrAdd } else { HeaderAppendAction::AppendIfExistsOrAdd };
    HeaderValueOption {
        header: Some(HeaderValue { key: key.to_string(), value: value.to_string(), ..Default::default() }),
        append_action: action as i32,
        ..Default::default()
    }
}

/// A `Struct` of string fields.
pub(crate) fn string_struct<'a>(fields: impl IntoIterator<Item = (&'a str, &'a str)>) -> Struct {
    Struct {
        fields: fields
            .into_iter()
            .map(|(k, v)| (k.to_string(), Value { kind: Some(value::Kind::StringValue(v.to_string())) }))
            .collect(),
    }
}

/// A `Struct` of number fields.
pub(crate) fn number_struct<'a>(fields: impl IntoIterator<Item = (&'a str, f64)>) -> Struct {
    Struct {
        fields: fields
            .into_iter()
            .map(|(k, v)| (k.to_string(), Value { kind: Some(value::Kind::NumberValue(v)) }))
            .collect(),
    }
}
