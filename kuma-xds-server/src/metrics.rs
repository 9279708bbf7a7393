//! [`XdsMetrics`]: what the ADS server did, counted for Prometheus. The
//! server counts; the pure crates only return what happened.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

use crate::source::NodeId;

/// A resource type (`Cluster`, `Listener`, ...).
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TypeLabels {
    resource_type: String,
}

/// A resource type of one data plane. Data planes are few and known (each
/// needs a resource), so the cardinality stays bounded.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct NodeTypeLabels {
    mesh: String,
    dataplane: String,
    resource_type: String,
}

/// Counters of the ADS streams. Cloning shares them; register them once with
/// [`XdsMetrics::register`] (unregistered, they still count but nobody
/// reads them).
#[derive(Debug, Clone)]
pub struct XdsMetrics {
    streams: Gauge,
    responses: Family<TypeLabels, Counter>,
    acks: Family<NodeTypeLabels, Counter>,
    nacks: Family<NodeTypeLabels, Counter>,
    log_queue_bytes: Gauge,
    log_dropped: Counter,
    change_to_ack: Histogram,
    translation: Histogram,
}

impl Default for XdsMetrics {
    fn default() -> Self {
        // 1 ms to about 16 s, doubling: a change reaches Envoy in
        // milliseconds, a large route configuration takes seconds.
        let buckets = || Histogram::new(prometheus_client::metrics::histogram::exponential_buckets(0.001, 2.0, 15));
        XdsMetrics {
            streams: Gauge::default(),
            responses: Family::default(),
            acks: Family::default(),
            nacks: Family::default(),
            log_queue_bytes: Gauge::default(),
            log_dropped: Counter::default(),
            change_to_ack: buckets(),
            translation: buckets(),
        }
    }
}

impl XdsMetrics {
    /// New counters, registered in `registry` as `xds_streams`,
    /// `xds_responses_total`, `xds_acks_total` and `xds_nacks_total`
    /// (under the registry's prefix).
    pub fn register(registry: &mut Registry) -> Self {
        let m = XdsMetrics::default();
        registry.register("xds_streams", "ADS streams open now", m.streams.clone());
        registry.register("xds_responses", "Discovery responses sent, by resource type", m.responses.clone());
        registry.register(
            "xds_acks",
            "Responses Envoy accepted (ACK), by data plane and resource type",
            m.acks.clone(),
        );
        registry.register(
            "xds_nacks",
            "Responses Envoy rejected (NACK), by data plane and resource type; the rejected version is never sent again",
            m.nacks.clone(),
        );
        registry.register(
            "access_log_queue_bytes",
            "Bytes of access-log lines queued for tcp backends (at most 16 MiB)",
            m.log_queue_bytes.clone(),
        );
        registry.register(
            "access_log_dropped_lines",
            "Access-log lines dropped: backends behind, unreachable or too slow",
            m.log_dropped.clone(),
        );
        registry.register_with_unit(
            "xds_change_to_ack",
            "From the moment a stream sees a change to its Envoy's ACK of the responses it caused",
            prometheus_client::registry::Unit::Seconds,
            m.change_to_ack.clone(),
        );
        registry.register_with_unit(
            "xds_translation",
            "Translating a data plane's resources into its Envoy config, per stream and change",
            prometheus_client::registry::Unit::Seconds,
            m.translation.clone(),
        );
        m
    }

    pub(crate) fn change_acked(&self, seconds: f64) {
        self.change_to_ack.observe(seconds);
    }

    pub(crate) fn translated(&self, seconds: f64) {
        self.translation.observe(seconds);
    }

    pub(crate) fn log_queue_bytes(&self, bytes: usize) {
        self.log_queue_bytes.set(i64::try_from(bytes).unwrap_or(i64::MAX));
    }

    pub(crate) fn log_line_dropped(&self) {
        self.log_dropped.inc();
    }

    pub(crate) fn stream_opened(&self) {
        self.streams.inc();
    }

    pub(crate) fn stream_closed(&self) {
        self.streams.dec();
    }

    pub(crate) fn response(&self, type_url: &str) {
        self.responses.get_or_create(&TypeLabels { resource_type: short(type_url) }).inc();
    }

    /// An ACK from `node`'s Envoy; `None` for a node the source does not
    /// know (counted under an empty mesh and data plane).
    pub(crate) fn ack(&self, node: Option<&NodeId>, type_url: &str) {
        let (mesh, dataplane) = node.map(|n| (n.mesh.clone(), n.name.clone())).unwrap_or_default();
        self.acks.get_or_create(&NodeTypeLabels { mesh, dataplane, resource_type: short(type_url) }).inc();
    }

    /// A NACK from `node`'s Envoy; `None` for a node the source does not
    /// know (counted under an empty mesh and data plane).
    pub(crate) fn nack(&self, node: Option<&NodeId>, type_url: &str) {
        let (mesh, dataplane) = node.map(|n| (n.mesh.clone(), n.name.clone())).unwrap_or_default();
        self.nacks.get_or_create(&NodeTypeLabels { mesh, dataplane, resource_type: short(type_url) }).inc();
    }
}

/// `type.googleapis.com/envoy.config.cluster.v3.Cluster` → `Cluster`.
pub(crate) fn short(type_url: &str) -> String {
    type_url.rsplit(['/', '.']).next().unwrap_or_default().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_are_written_in_the_text_format() {
        let mut registry = Registry::with_prefix("kuma_gateway");
        let m = XdsMetrics::register(&mut registry);
        let node = NodeId { mesh: "default".into(), name: "gw".into() };
        m.stream_opened();
        m.response("type.googleapis.com/envoy.config.cluster.v3.Cluster");
        m.nack(Some(&node), "type.googleapis.com/envoy.config.route.v3.RouteConfiguration");
        m.nack(None, "type.googleapis.com/envoy.config.route.v3.RouteConfiguration");
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &registry).unwrap();
        assert!(text.contains("kuma_gateway_xds_streams 1\n"), "{text}");
        assert!(text.contains("kuma_gateway_xds_responses_total{resource_type=\"Cluster\"} 1\n"), "{text}");
        assert!(
            text.contains(
                "kuma_gateway_xds_nacks_total{mesh=\"default\",dataplane=\"gw\",resource_type=\"RouteConfiguration\"} 1\n"
            ),
            "{text}"
        );
        assert!(text.contains(
            "kuma_gateway_xds_nacks_total{mesh=\"\",dataplane=\"\",resource_type=\"RouteConfiguration\"} 1\n"
        ));
    }
}
