//! Kuma's initial policies as real resources: a mesh that holds the four
//! policies Kuma creates with it (as an export from Kuma does) generates
//! the same config as one that only implies them, in either naming; a
//! changed one changes the config; a skipped one is gone.

use kuma_model::{ResourceSet, UnknownFields};

fn example() -> Vec<(String, String)> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/edge-gateway");
    let mut files: Vec<(String, String)> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .map(|p| (p.display().to_string(), std::fs::read_to_string(&p).unwrap()))
        .collect();
    files.sort();
    files
}

/// Kuma v2.14's initial policies of mesh `default`, as `kumactl export`
/// writes them (Universal), with `suffix` after each name (`.kuma-system`
/// on Kubernetes).
fn initial_policies(suffix: &str, gateway_request_headers_timeout: &str) -> String {
    format!(
        r#"type: MeshTimeout
mesh: default
name: mesh-gateways-timeout-all-default{suffix}
spec:
  targetRef: {{kind: Mesh, proxyTypes: [Gateway]}}
  from:
  - targetRef: {{kind: Mesh}}
    default: {{idleTimeout: 5m, http: {{streamIdleTimeout: 5s, requestHeadersTimeout: {gateway_request_headers_timeout}}}}}
  to:
  - targetRef: {{kind: Mesh}}
    default: {{idleTimeout: 1h, http: {{streamIdleTimeout: 5s}}}}
---
type: MeshTimeout
mesh: default
name: mesh-timeout-all-default{suffix}
spec:
  targetRef: {{kind: Mesh, proxyTypes: [Sidecar]}}
  from:
  - targetRef: {{kind: Mesh}}
    default: {{connectionTimeout: 10s, idleTimeout: 2h, http: {{requestTimeout: 0s, streamIdleTimeout: 1h, maxStreamDuration: 0s}}}}
  to:
  - targetRef: {{kind: Mesh}}
    default: {{connectionTimeout: 5s, idleTimeout: 1h, http: {{requestTimeout: 15s, streamIdleTimeout: 30m}}}}
---
type: MeshCircuitBreaker
mesh: default
name: mesh-circuit-breaker-all-default{suffix}
spec:
  targetRef: {{kind: Mesh}}
  to:
  - targetRef: {{kind: Mesh}}
    default:
      connectionLimits: {{maxConnections: 1024, maxPendingRequests: 1024, maxRequests: 1024, maxRetries: 3}}
---
type: MeshRetry
mesh: default
name: mesh-retry-all-default{suffix}
spec:
  targetRef: {{kind: Mesh}}
  to:
  - targetRef: {{kind: Mesh}}
    default:
      tcp: {{maxConnectAttempt: 5}}
      http: {{numRetries: 5, perTryTimeout: 16s, backOff: {{baseInterval: 25ms, maxInterval: 250ms}}}}
      grpc: {{numRetries: 5, perTryTimeout: 16s, backOff: {{baseInterval: 25ms, maxInterval: 250ms}}}}
"#
    )
}

fn render(extra: &[(&str, String)]) -> String {
    let mut files = example();
    files.extend(extra.iter().map(|(n, t)| (n.to_string(), t.clone())));
    let (set, _) = ResourceSet::load(files.iter().map(|(n, t)| (n.as_str(), t.as_str())), UnknownFields::Reject)
        .unwrap_or_else(|e| panic!("{e}"));
    let snapshot = kuma_xds_gen::translate(&set, "default", "gateway-instance-1").unwrap();
    kuma_xds_gen::render::snapshot_yaml(&snapshot).unwrap()
}

#[test]
fn explicit_initial_policies_equal_implied_ones() {
    let implied = render(&[]);
    assert_eq!(render(&[("initial.yaml", initial_policies("", "500ms"))]), implied);
    assert_eq!(render(&[("initial.yaml", initial_policies(".kuma-system", "500ms"))]), implied);
    let skipped_then_written = [
        ("mesh.yaml", "type: Mesh\nname: default\nskipCreatingInitialPolicies: ['*']\n".to_string()),
        ("initial.yaml", initial_policies("", "500ms")),
    ];
    assert_eq!(render(&skipped_then_written), implied);
}

#[test]
fn a_changed_initial_policy_replaces_the_implied_one() {
    let implied = render(&[]);
    let changed = render(&[("initial.yaml", initial_policies("", "2s"))]);
    assert_ne!(changed, implied);
    assert!(changed.contains("requestHeadersTimeout: '2s'"), "{changed}");
    assert!(!changed.contains("requestHeadersTimeout: '0.500s'"));
}

#[test]
fn skipped_initial_policies_are_gone() {
    let skipped = render(&[("mesh.yaml", "type: Mesh\nname: default\nskipCreatingInitialPolicies: ['*']\n".into())]);
    assert!(!skipped.contains("retryPolicy"), "{skipped}");
    assert!(!skipped.contains("maxConnections"), "{skipped}");
    let implied = render(&[]);
    assert!(implied.contains("retryPolicy") && implied.contains("maxConnections: 1024"));
}
