//! The policies Kuma creates with every new mesh, as real resources.
//!
//! Kuma 2.x stores four policies when a mesh is created
//! (`mesh-gateways-timeout-all-<mesh>`, `mesh-timeout-all-<mesh>`,
//! `mesh-circuit-breaker-all-<mesh>`, `mesh-retry-all-<mesh>`) unless the
//! Mesh lists their types (or `*`) in `skipCreatingInitialPolicies`. Read
//! from files, a mesh has them unless it skips them: an export that holds
//! them and one that does not give the same config. A resource of that kind
//! and name (on Kubernetes `<name>.<namespace>`) replaces the implied one.

use kuma_model::duration::Duration;
use kuma_model::mesh_circuit_breaker::{
    CircuitBreakerConf, CircuitBreakerEntry, ConnectionLimits, MeshCircuitBreakerSpec,
};
use kuma_model::mesh_retry::{BackOff, MeshRetrySpec, RetryConf, RetryEntry, RetryGrpc, RetryHttp, RetryTcp};
use kuma_model::mesh_timeout::{MeshTimeoutSpec, TimeoutConf, TimeoutEntry, TimeoutHttp};
use kuma_model::target_ref::{ProxyType, TargetRef};
use kuma_model::{Kind, Meta, Resource, ResourceSet, Spec};

/// The initial policies `mesh` implies: those its Mesh does not skip and no
/// resource of the same kind and name replaces.
///
/// ```
/// use kuma_model::{ResourceSet, UnknownFields};
/// let (set, _) = ResourceSet::load([("m.yaml", "type: Mesh\nname: default\nskipCreatingInitialPolicies: [MeshRetry]\n")], UnknownFields::Reject).unwrap();
/// let names: Vec<_> = kuma_policy::initial::implied(&set, "default").into_iter().map(|r| r.meta.name).collect();
/// assert_eq!(names, ["mesh-gateways-timeout-all-default", "mesh-timeout-all-default", "mesh-circuit-breaker-all-default"]);
/// ```
pub fn implied(set: &ResourceSet, mesh: &str) -> Vec<Resource> {
    let skipped = set.mesh(mesh).map_or(&[][..], |m| m.skip_creating_initial_policies.as_slice());
    let all = [
        ("mesh-gateways-timeout-all", Spec::MeshTimeout(gateways_timeout())),
        ("mesh-timeout-all", Spec::MeshTimeout(sidecars_timeout())),
        ("mesh-circuit-breaker-all", Spec::MeshCircuitBreaker(circuit_breaker())),
        ("mesh-retry-all", Spec::MeshRetry(retry())),
    ];
    let mut out = Vec::new();
    for (prefix, spec) in all {
        let kind = spec.kind();
        if skipped.iter().any(|s| s == "*" || s == kind.as_str()) {
            continue;
        }
        let name = format!("{prefix}-{mesh}");
        let kubernetes = format!("{name}.");
        let present = set.in_mesh(kind, mesh).any(|r| r.meta.name == name || r.meta.name.starts_with(&kubernetes));
        if !present {
            out.push(Resource { meta: Meta { name, mesh: mesh.to_string(), ..Meta::default() }, spec });
        }
    }
    out
}

/// The resources of `kind` in `mesh`: those in `set` and the implied ones.
pub fn with_implied<'a>(set: &'a ResourceSet, implied: &'a [Resource], mesh: &str, kind: Kind) -> Vec<&'a Resource> {
    set.in_mesh(kind, mesh).chain(implied.iter().filter(move |r| r.spec.kind() == kind)).collect()
}

fn secs(s: i64) -> Option<Duration> {
    Some(Duration::from_secs(s))
}

fn proxies(t: ProxyType) -> TargetRef {
    TargetRef { proxy_types: Some(vec![t]), ..TargetRef::mesh() }
}

fn timeout(connect: Option<Duration>, idle: Option<Duration>, http: TimeoutHttp) -> TimeoutConf {
    TimeoutConf { connection_timeout: connect, idle_timeout: idle, http: Some(http) }
}

fn gateways_timeout() -> MeshTimeoutSpec {
    MeshTimeoutSpec {
        target_ref: Some(proxies(ProxyType::Gateway)),
        from: Some(vec![TimeoutEntry {
            target_ref: TargetRef::mesh(),
            default: timeout(
                None,
                secs(300),
                TimeoutHttp {
                    stream_idle_timeout: secs(5),
                    request_headers_timeout: Some(Duration::from_millis(500)),
                    ..TimeoutHttp::default()
                },
            ),
        }]),
        to: Some(vec![TimeoutEntry {
            target_ref: TargetRef::mesh(),
            default: timeout(None, secs(3600), TimeoutHttp { stream_idle_timeout: secs(5), ..TimeoutHttp::default() }),
        }]),
        rules: None,
    }
}

fn sidecars_timeout() -> MeshTimeoutSpec {
    MeshTimeoutSpec {
        target_ref: Some(proxies(ProxyType::Sidecar)),
        from: Some(vec![TimeoutEntry {
            target_ref: TargetRef::mesh(),
            default: timeout(
                secs(10),
                secs(7200),
                TimeoutHttp {
                    request_timeout: secs(0),
                    stream_idle_timeout: secs(3600),
                    max_stream_duration: secs(0),
                    ..TimeoutHttp::default()
                },
            ),
        }]),
        to: Some(vec![TimeoutEntry {
            target_ref: TargetRef::mesh(),
            default: timeout(
                secs(5),
                secs(3600),
                TimeoutHttp { request_timeout: secs(15), stream_idle_timeout: secs(1800), ..TimeoutHttp::default() },
            ),
        }]),
        rules: None,
    }
}

fn circuit_breaker() -> MeshCircuitBreakerSpec {
    MeshCircuitBreakerSpec {
        target_ref: Some(TargetRef::mesh()),
        to: Some(vec![CircuitBreakerEntry {
            target_ref: TargetRef::mesh(),
            default: CircuitBreakerConf {
                connection_limits: Some(ConnectionLimits {
                    max_connections: Some(1024),
                    max_pending_requests: Some(1024),
                    max_requests: Some(1024),
                    max_retries: Some(3),
                    max_connection_pools: None,
                }),
                outlier_detection: None,
            },
        }]),
        from: None,
        rules: None,
    }
}

fn retry() -> MeshRetrySpec {
    let back_off = || {
        Some(BackOff { base_interval: Some(Duration::from_millis(25)), max_interval: Some(Duration::from_millis(250)) })
    };
    MeshRetrySpec {
        target_ref: Some(TargetRef::mesh()),
        to: vec![RetryEntry {
            target_ref: TargetRef::mesh(),
            default: RetryConf {
                tcp: Some(RetryTcp { max_connect_attempt: Some(5) }),
                http: Some(RetryHttp {
                    num_retries: Some(5),
                    per_try_timeout: secs(16),
                    back_off: back_off(),
                    ..RetryHttp::default()
                }),
                grpc: Some(RetryGrpc {
                    num_retries: Some(5),
                    per_try_timeout: secs(16),
                    back_off: back_off(),
                    ..RetryGrpc::default()
                }),
            },
        }],
    }
}
