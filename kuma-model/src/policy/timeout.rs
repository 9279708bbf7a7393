//! `Timeout`: connect, idle and request timeouts towards a destination.

use super::*;

/// `Timeout` spec.
pub type TimeoutSpec = ConnectionPolicy<TimeoutConf>;

/// `Timeout.conf`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "camelCase")]
pub struct TimeoutConf {
    /// Upstream connect timeout (Kuma's default: 5 s).
    #[serde(alias = "connect_timeout", skip_serializing_if = "Option::is_none")]
    pub connect_timeout: Option<Duration>,
    /// TCP timeouts.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tcp: Option<TimeoutTcp>,
    /// HTTP timeouts.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub http: Option<TimeoutHttp>,
    /// gRPC timeouts (deprecated by Kuma in favour of `http`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub grpc: Option<TimeoutGrpc>,
}

/// TCP timeouts.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "camelCase")]
pub struct TimeoutTcp {
    /// Idle connection timeout.
    #[serde(alias = "idle_timeout", skip_serializing_if = "Option::is_none")]
    pub idle_timeout: Option<Duration>,
}

/// HTTP timeouts.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "camelCase")]
#[allow(missing_docs)]
pub struct TimeoutHttp {
    #[serde(alias = "request_timeout", skip_serializing_if = "Option::is_none")]
    pub request_timeout: Option<Duration>,
    #[serde(alias = "idle_timeout", skip_serializing_if = "Option::is_none")]
    pub idle_timeout: Option<Duration>,
    #[serde(alias = "stream_idle_timeout", skip_serializing_if = "Option::is_none")]
    pub stream_idle_timeout: Option<Duration>,
    #[serde(alias = "max_stream_duration", skip_serializing_if = "Option::is_none")]
    pub max_stream_duration: Option<Duration>,
}

/// gRPC timeouts.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "camelCase")]
#[allow(missing_docs)]
pub struct TimeoutGrpc {
    #[serde(alias = "stream_idle_timeout", skip_serializing_if = "Option::is_none")]
    pub stream_idle_timeout: Option<Duration>,
    #[serde(alias = "max_stream_duration", skip_serializing_if = "Option::is_none")]
    pub max_stream_duration: Option<Duration>,
}

impl TimeoutSpec {
    /// Kuma's `Timeout` validation.
    pub fn validate(&self) -> Violations {
        let mut out = Violations::new();
        self.validate_selectors(&SERVICE_SOURCES, &mut out);
        let path = FieldPath::root().field("conf");
        let Some(conf) = &self.conf else {
            out.add(&path, "has to be defined");
            return out;
        };
        const NONE_SET: &str = "at least one timeout in section has to be defined";
        // Envoy refuses negative durations everywhere, and a zero connect
        // timeout; Kuma lets both through to Envoy's NACK.
        let durations = [
            (path.field("connectTimeout"), conf.connect_timeout),
            (path.field("tcp").field("idleTimeout"), conf.tcp.as_ref().and_then(|t| t.idle_timeout)),
            (path.field("http").field("streamIdleTimeout"), conf.http.as_ref().and_then(|h| h.stream_idle_timeout)),
            (path.field("http").field("maxStreamDuration"), conf.http.as_ref().and_then(|h| h.max_stream_duration)),
            // http.requestTimeout/idleTimeout and the grpc ones: below.
        ];
        for (field, d) in durations {
            if d.is_some_and(|d| d.as_nanos() < 0) {
                out.add_extra(field, "must not be negative");
            }
        }
        if conf.connect_timeout.is_some_and(Duration::is_zero) {
            out.add_extra(path.field("connectTimeout"), "has to be greater than 0");
        }
        if let Some(tcp) = &conf.tcp {
            match tcp.idle_timeout {
                None => out.add(path.field("tcp"), NONE_SET),
                Some(d) if d.is_zero() => out.add(path.field("tcp").field("idleTimeout"), "has to be greater than 0"),
                Some(_) => {}
            }
        }
        if let Some(http) = &conf.http {
            let p = path.field("http");
            if http.request_timeout.is_none() && http.idle_timeout.is_none() {
                out.add(&p, NONE_SET);
            } else {
                positive_when_defined(&p.field("requestTimeout"), http.request_timeout, &mut out);
                positive_when_defined(&p.field("idleTimeout"), http.idle_timeout, &mut out);
            }
        }
        if let Some(grpc) = &conf.grpc {
            let p = path.field("grpc");
            if grpc.stream_idle_timeout.is_none() && grpc.max_stream_duration.is_none() {
                out.add(&p, NONE_SET);
            } else {
                positive_when_defined(&p.field("streamIdleTimeout"), grpc.stream_idle_timeout, &mut out);
                positive_when_defined(&p.field("maxStreamDuration"), grpc.max_stream_duration, &mut out);
            }
        }
        out
    }
}
