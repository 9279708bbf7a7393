//! A stopping server ends its streams and returns promptly, even while a
//! client holds its stream open (as a connected Envoy does).

use std::sync::Arc;
use std::time::{Duration, Instant};

use kuma_xds_gen::ResourceType;
use kuma_xds_gen::envoy_types::pb::envoy::config::core::v3::Node;
use kuma_xds_gen::envoy_types::pb::envoy::service::discovery::v3::DiscoveryRequest;
use kuma_xds_gen::envoy_types::pb::envoy::service::discovery::v3::aggregated_discovery_service_client::AggregatedDiscoveryServiceClient;
use kuma_xds_gen::kuma_model::{ResourceSet, UnknownFields};
use kuma_xds_server::{ResourceSetSource, XdsServer};

const GATEWAY: &str = "type: Dataplane\nname: gw-1\nnetworking:\n  address: 127.0.0.1\n  gateway: {type: BUILTIN, tags: {kuma.io/service: edge}}\n---\ntype: MeshGateway\nname: edge\nselectors: [{match: {kuma.io/service: edge}}]\nconf: {listeners: [{port: 8080, protocol: HTTP}]}\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_ends_open_streams_and_returns() {
    let (set, _) = ResourceSet::load([("gw.yaml", GATEWAY)], UnknownFields::Reject).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(
        XdsServer::new(Arc::new(ResourceSetSource::new(set)))
            .allow_unauthenticated()
            .serve(listener, async { stop_rx.await.unwrap_or_default() }),
    );

    let mut client = AggregatedDiscoveryServiceClient::connect(format!("http://{address}")).await.unwrap();
    let (requests, rx) = tokio::sync::mpsc::channel(4);
    requests
        .send(DiscoveryRequest {
            node: Some(Node { id: "gw-1".into(), ..Default::default() }),
            type_url: ResourceType::Listener.type_url(),
            ..Default::default()
        })
        .await
        .unwrap();
    let mut responses =
        client.stream_aggregated_resources(tokio_stream::wrappers::ReceiverStream::new(rx)).await.unwrap().into_inner();
    let first = responses.message().await.unwrap().expect("the listeners");
    assert_eq!(first.resources.len(), 1);

    // The client keeps its request stream (and connection) open.
    let started = Instant::now();
    stop_tx.send(()).unwrap();
    let ended = tokio::time::timeout(Duration::from_secs(10), responses.message()).await.expect("the stream ends");
    assert!(matches!(ended, Ok(None) | Err(_)), "no more responses: {ended:?}");
    tokio::time::timeout(Duration::from_secs(10), server).await.expect("serve returns").unwrap().unwrap();
    assert!(started.elapsed() < Duration::from_secs(5), "stopped in {:?}", started.elapsed());
    drop(requests);
}
