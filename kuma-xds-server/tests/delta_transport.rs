//! The incremental ADS endpoint through `XdsServer` (responses framed by
//! the server itself), spoken to by a tonic client: tokens, the stream
//! limit shared with State of the World, oversized requests.

use std::sync::Arc;
use std::time::Duration;

use kuma_xds_gen::ResourceType;
use kuma_xds_gen::envoy_types::pb::envoy::config::core::v3::Node;
use kuma_xds_gen::envoy_types::pb::envoy::config::listener::v3::Listener;
use kuma_xds_gen::envoy_types::pb::envoy::service::discovery::v3::aggregated_discovery_service_client::AggregatedDiscoveryServiceClient;
use kuma_xds_gen::envoy_types::pb::envoy::service::discovery::v3::{
    DeltaDiscoveryRequest, DeltaDiscoveryResponse, DiscoveryRequest,
};
use kuma_xds_gen::kuma_model::{ResourceSet, UnknownFields};
use kuma_xds_server::{Limits, ResourceSetSource, XdsServer};
use prost::Message;
use tonic::Code;
use tonic::transport::Channel;

const GATEWAY: &str = "type: Dataplane\nname: gw-1\nnetworking:\n  address: 127.0.0.1\n  gateway: {type: BUILTIN, tags: {kuma.io/service: edge}}\n---\ntype: MeshGateway\nname: edge\nselectors: [{match: {kuma.io/service: edge}}]\nconf: {listeners: [{port: 8080, protocol: HTTP}]}\n";

async fn server(authenticate: bool, limits: Limits) -> std::net::SocketAddr {
    let (set, _) = ResourceSet::load([("gw.yaml", GATEWAY)], UnknownFields::Reject).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let mut server = XdsServer::new(Arc::new(ResourceSetSource::new(set))).with_limits(limits);
    if !authenticate {
        server = server.allow_unauthenticated();
    }
    tokio::spawn(server.serve(listener, std::future::pending()));
    address
}

async fn client(address: std::net::SocketAddr) -> AggregatedDiscoveryServiceClient<Channel> {
    AggregatedDiscoveryServiceClient::connect(format!("http://{address}")).await.unwrap()
}

/// Opens a delta stream that sends `first` (and keeps it open): its first
/// answer, or the status that ended it.
async fn delta(
    client: &mut AggregatedDiscoveryServiceClient<Channel>,
    first: DeltaDiscoveryRequest,
) -> Result<DeltaDiscoveryResponse, tonic::Status> {
    let (requests, rx) = tokio::sync::mpsc::channel(4);
    requests.send(first).await.unwrap();
    std::mem::forget(requests);
    let mut stream =
        client.delta_aggregated_resources(tokio_stream::wrappers::ReceiverStream::new(rx)).await?.into_inner();
    match tokio::time::timeout(Duration::from_secs(5), stream.message()).await.expect("an answer")? {
        Some(first) => Ok(first),
        None => panic!("the stream ended without a status"),
    }
}

fn listeners_request() -> DeltaDiscoveryRequest {
    DeltaDiscoveryRequest {
        node: Some(Node { id: "gw-1".into(), ..Default::default() }),
        type_url: ResourceType::Listener.type_url(),
        ..Default::default()
    }
}

#[tokio::test]
async fn delta_streams_are_answered_framed_and_bounded() {
    // Served: the listener, decoded from the server's own framing.
    let address = server(false, Limits::default()).await;
    let mut c = client(address).await;
    let (requests, rx) = tokio::sync::mpsc::channel(4);
    requests.send(listeners_request()).await.unwrap();
    let mut stream =
        c.delta_aggregated_resources(tokio_stream::wrappers::ReceiverStream::new(rx)).await.unwrap().into_inner();
    let response = stream.message().await.unwrap().expect("the listeners");
    assert_eq!(response.type_url, ResourceType::Listener.type_url());
    let listener = Listener::decode(response.resources[0].resource.as_ref().unwrap().value.as_slice()).unwrap();
    assert_eq!(listener.name, "edge:HTTP:8080");
    assert_eq!(response.resources[0].name, "edge:HTTP:8080");
    // Its ACK gets nothing more; the stream stays open.
    requests
        .send(DeltaDiscoveryRequest {
            type_url: response.type_url.clone(),
            response_nonce: response.nonce.clone(),
            ..Default::default()
        })
        .await
        .unwrap();
    assert!(tokio::time::timeout(Duration::from_millis(300), stream.message()).await.is_err(), "nothing more");

    // A request over the size limit ends the stream with a status.
    let mut limits = Limits::default();
    limits.max_message_bytes = 1024;
    let small = server(false, limits).await;
    let mut big = listeners_request();
    big.resource_names_subscribe = (0..200).map(|i| format!("name-{i}")).collect();
    let refused = delta(&mut client(small).await, big).await.expect_err("too large");
    assert_eq!(refused.code(), Code::OutOfRange, "{refused}");
}

#[tokio::test]
async fn delta_streams_need_a_token_and_share_the_stream_limit() {
    let address = server(true, Limits::default()).await;
    let refused = delta(&mut client(address).await, listeners_request()).await.expect_err("no token");
    assert_eq!(refused.code(), Code::Unauthenticated, "{refused}");

    let mut limits = Limits::default();
    limits.max_streams = 1;
    let address = server(false, limits).await;
    let mut c = client(address).await;
    // One State of the World stream holds the only place ...
    let (requests, rx) = tokio::sync::mpsc::channel(4);
    requests
        .send(DiscoveryRequest {
            node: Some(Node { id: "gw-1".into(), ..Default::default() }),
            type_url: ResourceType::Listener.type_url(),
            ..Default::default()
        })
        .await
        .unwrap();
    let mut sotw =
        c.stream_aggregated_resources(tokio_stream::wrappers::ReceiverStream::new(rx)).await.unwrap().into_inner();
    assert!(sotw.message().await.unwrap().is_some());
    // ... so a delta stream is refused.
    let refused = delta(&mut c, listeners_request()).await.expect_err("no place");
    assert_eq!(refused.code(), Code::ResourceExhausted, "{refused}");
    drop(requests);
}
