//! What a user sees for broken input: one line per problem, naming file,
//! line, resource and field.

use kuma_model::{ResourceSet, UnknownFields};

fn report(file: &str, text: &str) -> String {
    match ResourceSet::load([(file, text)], UnknownFields::Reject) {
        Ok(_) => panic!("{file} should not load"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn wrong_indentation() {
    // The seed's own Kubernetes example: `kuma.io/service` sits beside
    // `match` instead of under it.
    insta::assert_snapshot!(report(
        "gateway.yaml",
        "apiVersion: kuma.io/v1alpha1
kind: MeshGateway
mesh: default
metadata:
  name: edge-gateway
spec:
  selectors:
  - match:
    kuma.io/service: edge-gateway
  conf:
    listeners:
      - port: 8080
        protocol: HTTP
        hostname: foo.example.com
"
    ));
}

#[test]
fn broken_yaml() {
    insta::assert_snapshot!(report(
        "route.yaml",
        "type: MeshGatewayRoute
name: r
selectors:
- match:
    kuma.io/service: gw
 conf: {}
"
    ));
}

#[test]
fn unknown_field() {
    insta::assert_snapshot!(report(
        "gateway.yaml",
        "type: MeshGateway
name: gw
selectors:
- match:
    kuma.io/service: gw
conf:
  listeners:
  - port: 8080
    protocol: HTTP
    hostnames: [foo.example.com]
"
    ));
}

#[test]
fn bad_enum() {
    insta::assert_snapshot!(report(
        "gateway.yaml",
        "type: MeshGateway
name: gw
selectors:
- match:
    kuma.io/service: gw
conf:
  listeners:
  - port: 8080
    protocol: HTTP2
"
    ));
}

#[test]
fn bad_port_and_missing_selector_across_documents() {
    insta::assert_snapshot!(report(
        "edge.yaml",
        "type: MeshGateway
name: gw
mesh: edge
selectors:
- match:
    kuma.io/service: gw
conf:
  listeners:
  - port: 80800
    protocol: HTTP
  - port: 8443
    protocol: HTTPS
---
type: MeshGatewayRoute
name: r
mesh: edge
conf:
  http:
    rules:
    - matches:
      - path: {match: PREFIX, value: api}
      filters:
      - redirect: {status_code: 304}
"
    ));
}
