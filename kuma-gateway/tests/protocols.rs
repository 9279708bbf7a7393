//! Both ADS variants with a real Envoy: incremental (delta, the bootstrap's
//! default) and State of the World (`--xds-protocol sotw`). Each serves a
//! change, and an Envoy that reconnects to a restarted control plane after
//! a route changed meanwhile is sent that route configuration and nothing
//! else: it names what it has (delta: each resource's version; State of
//! the World: each type's version).

mod support;

use std::time::Duration;

use support::replicas::{Envoy, Replica, gateway_yaml, marker_yaml, serves, wait};
use support::{backend, free_port, temp_dir};

fn reconnect_gets_only_what_changed(protocol: &str, base_id: u32) {
    let dir = temp_dir(&format!("protocol-{protocol}"));
    let resources = dir.join("resources");
    std::fs::create_dir_all(&resources).unwrap();
    let (one, two) = (backend("one"), backend("two"));
    let http = free_port();
    std::fs::write(resources.join("gateway.yaml"), gateway_yaml(http, one, two)).unwrap();
    std::fs::write(resources.join("marker.yaml"), marker_yaml("/m-1")).unwrap();
    let source = [resources.to_str().unwrap()];
    let xds = free_port();
    let mut serve = Replica::serve(&source, xds, &["--allow-unauthenticated"]);
    let envoy = Envoy::start_with(&dir, "gw", &[xds], base_id, &["--xds-protocol", protocol]);
    wait("the first route", Duration::from_secs(30), || serves(http, "/m-1"));
    let planes = serve.admin_get("/dataplanes").body;
    assert!(planes.contains(&format!("\"protocol\": \"{protocol}\"")), "{planes}");
    std::fs::write(resources.join("marker.yaml"), marker_yaml("/m-2")).unwrap();
    wait("a change", Duration::from_secs(10), || serves(http, "/m-2"));

    // The control plane goes away; the route changes meanwhile.
    serve.kill();
    std::fs::write(resources.join("marker.yaml"), marker_yaml("/m-3")).unwrap();
    assert!(serves(http, "/m-2"), "Envoy keeps serving what it has");
    let serve = Replica::serve(&source, xds, &["--allow-unauthenticated"]);
    wait("the route changed while it was away", Duration::from_secs(30), || serves(http, "/m-3"));
    assert!(!serves(http, "/m-2"));
    wait("Envoy's requests for every type", Duration::from_secs(10), || {
        serve.log().matches("Envoy already has the current version").count() >= 2
    });
    assert_eq!(serve.responses_of("RouteConfiguration"), 1.0, "the changed route configuration, once");
    for unchanged in ["Cluster", "ClusterLoadAssignment", "Listener"] {
        assert_eq!(serve.responses_of(unchanged), 0.0, "{unchanged}: Envoy has it; log:\n{}", serve.log());
    }
    drop(envoy);
}

#[test]
fn delta_reconnects_get_only_what_changed() {
    reconnect_gets_only_what_changed("delta", 95);
}

#[test]
fn state_of_the_world_reconnects_get_only_what_changed() {
    reconnect_gets_only_what_changed("sotw", 96);
}
