//! A server's bounds: streams at once, and the time a stream may stay
//! silent before its first request.

use std::sync::Arc;
use std::time::{Duration, Instant};

use kuma_xds_gen::ResourceType;
use kuma_xds_gen::envoy_types::pb::envoy::config::core::v3::Node;
use kuma_xds_gen::envoy_types::pb::envoy::service::discovery::v3::aggregated_discovery_service_client::AggregatedDiscoveryServiceClient;
use kuma_xds_gen::envoy_types::pb::envoy::service::discovery::v3::{DiscoveryRequest, DiscoveryResponse};
use kuma_xds_gen::kuma_model::{ResourceSet, UnknownFields};
use kuma_xds_server::{Limits, ResourceSetSource, XdsServer};
use tonic::Code;

const GATEWAY: &str = "type: Dataplane\nname: gw-1\nnetworking:\n  address: 127.0.0.1\n  gateway: {type: BUILTIN, tags: {kuma.io/service: edge}}\n---\ntype: MeshGateway\nname: edge\nselectors: [{match: {kuma.io/service: edge}}]\nconf: {listeners: [{port: 8080, protocol: HTTP}]}\n";

/// A stream that sends `first` (if any) and is kept open.
async fn open(
    address: std::net::SocketAddr,
    first: bool,
) -> Result<tonic::Streaming<DiscoveryResponse>, tonic::Status> {
    let mut client = AggregatedDiscoveryServiceClient::connect(format!("http://{address}")).await.unwrap();
    let (requests, rx) = tokio::sync::mpsc::channel(4);
    if first {
        requests
            .send(DiscoveryRequest {
                node: Some(Node { id: "gw-1".into(), ..Default::default() }),
                type_url: ResourceType::Listener.type_url(),
                ..Default::default()
            })
            .await
            .unwrap();
    }
    std::mem::forget(requests);
    client.stream_aggregated_resources(tokio_stream::wrappers::ReceiverStream::new(rx)).await.map(|r| r.into_inner())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streams_are_bounded_and_silent_ones_are_dropped() {
    let (set, _) = ResourceSet::load([("gw.yaml", GATEWAY)], UnknownFields::Reject).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let mut limits = Limits::default();
    limits.max_streams = 2;
    limits.first_request_timeout = Duration::from_millis(300);
    tokio::spawn(
        XdsServer::new(Arc::new(ResourceSetSource::new(set)))
            .allow_unauthenticated()
            .with_limits(limits)
            .serve(listener, std::future::pending()),
    );
    let mut talking = open(address, true).await.unwrap();
    assert!(talking.message().await.unwrap().is_some(), "the listeners");
    let started = Instant::now();
    let mut silent = open(address, false).await.unwrap();
    let refused = open(address, true).await.expect_err("a third stream");
    assert_eq!(refused.code(), Code::ResourceExhausted, "{refused}");
    // The silent stream is closed after the timeout, which frees its place.
    let status = silent.message().await.expect_err("closed");
    assert_eq!(status.code(), Code::DeadlineExceeded, "{status}");
    assert!(started.elapsed() >= Duration::from_millis(300) && started.elapsed() < Duration::from_secs(5));
    // (The place is given back as the stream's task ends, just after the
    // status is sent: allow it a moment.)
    let freed = Instant::now();
    let mut again = loop {
        match open(address, true).await {
            Ok(s) => break s,
            Err(e) if freed.elapsed() < Duration::from_secs(2) => {
                assert_eq!(e.code(), Code::ResourceExhausted);
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            Err(e) => panic!("no place freed: {e}"),
        }
    };
    assert!(again.message().await.unwrap().is_some());
}
