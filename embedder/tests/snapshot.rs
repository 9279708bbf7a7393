//! The use this project exists for: snapshot-test the Envoy config your
//! resources generate, and serve it from your own process.

use std::sync::Arc;

use kuma_xds_gen::kuma_model::{ResourceSet, UnknownFields};
use kuma_xds_server::{NodeId, ResourceSetSource, SnapshotSource};

const GATEWAY: &str = include_str!("gateway.yaml");

#[test]
fn generated_envoy_config_is_snapshotted() {
    let json = kuma_gateway_embedder_check::envoy_json(GATEWAY, "gw-1").unwrap();
    insta::assert_snapshot!(json);
}

#[test]
fn documents_in_any_order_give_the_same_bytes() {
    let mut docs: Vec<&str> = GATEWAY.split("\n---\n").collect();
    docs.reverse();
    let reversed = docs.join("\n---\n");
    assert_eq!(
        kuma_gateway_embedder_check::envoy_json(&reversed, "gw-1").unwrap(),
        kuma_gateway_embedder_check::envoy_json(GATEWAY, "gw-1").unwrap()
    );
}

#[test]
fn a_resource_set_source_serves_the_same_snapshot() {
    let (set, _) = ResourceSet::load([("gateway.yaml", GATEWAY)], UnknownFields::Reject).unwrap();
    let expected = kuma_xds_gen::translate(&set, "default", "gw-1").unwrap();
    let source = Arc::new(ResourceSetSource::new(set));
    let node = NodeId { mesh: "default".into(), name: "gw-1".into() };
    let served = source.snapshot(&node, None).unwrap().expect("a first request gets a snapshot");
    // Served as translated, packed once for every stream.
    assert_eq!(*served, kuma_xds_gen::EncodedSnapshot::encode(&expected));
    // Republishing equal resources changes nothing this node reads.
    let generation = source.generation();
    source.publish(source.set().as_ref().clone());
    assert!(source.snapshot(&node, Some(generation)).unwrap().is_none());
}
