//! [`Limits`]: what one server gives its clients at most, so that no client
//! (or many) can grow it without bound.

use std::time::Duration;

/// Bounds on what clients may hold. Each refusal is logged.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Limits {
    /// ADS streams open at once; more are refused with `RESOURCE_EXHAUSTED`.
    pub max_streams: usize,
    /// Largest message accepted from a client (a NACK carries Envoy's
    /// error text, a request the resource names it wants).
    pub max_message_bytes: usize,
    /// A stream that sends no first request within this time is closed.
    pub first_request_timeout: Duration,
    /// HTTP/2 pings on idle connections, so that dead peers are noticed.
    pub keepalive_interval: Duration,
    /// How long a ping may go unanswered before the connection is closed.
    pub keepalive_timeout: Duration,
}

impl Default for Limits {
    /// 1,024 streams, 8 MiB messages, 10 s for a first request, a ping
    /// every 30 s answered within 10 s.
    fn default() -> Self {
        Limits {
            max_streams: 1024,
            max_message_bytes: 8 << 20,
            first_request_timeout: Duration::from_secs(10),
            keepalive_interval: Duration::from_secs(30),
            keepalive_timeout: Duration::from_secs(10),
        }
    }
}
