//! When a PREFIX match becomes one `path_separated_prefix` route, and when it
//! stays Kuma's exact + prefix pair.

use envoy_types::pb::envoy::config::route::v3::route_match::PathSpecifier;
use kuma_model::{ResourceSet, UnknownFields};

fn paths(rules: &str) -> Vec<String> {
    let yaml = format!(
        "type: Dataplane\nname: gw\nnetworking:\n  address: 127.0.0.1\n  gateway: {{type: BUILTIN, tags: {{kuma.io/service: gw}}}}\n---\n\
type: MeshGateway\nname: gw\nselectors: [{{match: {{kuma.io/service: gw}}}}]\nconf: {{listeners: [{{port: 8080, protocol: HTTP}}]}}\n---\n\
type: MeshGatewayRoute\nname: r\nselectors: [{{match: {{kuma.io/service: gw}}}}]\nconf:\n  http:\n    rules:\n{rules}"
    );
    let set = ResourceSet::load([("t.yaml", yaml.as_str())], UnknownFields::Reject).unwrap().0;
    let snapshot = kuma_xds_gen::translate(&set, "default", "gw").unwrap();
    let rc = snapshot.routes.values().next().unwrap();
    rc.virtual_hosts[0]
        .routes
        .iter()
        .map(|r| match r.r#match.as_ref().and_then(|m| m.path_specifier.as_ref()) {
            Some(PathSpecifier::Path(p)) => format!("exact {p}"),
            Some(PathSpecifier::Prefix(p)) => format!("prefix {p}"),
            Some(PathSpecifier::PathSeparatedPrefix(p)) => format!("separated {p}"),
            other => format!("{other:?}"),
        })
        .collect()
}

fn rule(path: &str, kind: &str, extra: &str) -> String {
    format!(
        "    - matches: [{{path: {{match: {kind}, value: {path}}}{extra}}}]\n      backends: [{{destination: {{kuma.io/service: web}}}}]\n"
    )
}

#[test]
fn a_lone_prefix_is_one_route() {
    assert_eq!(paths(&(rule("/a", "PREFIX", "") + &rule("/b/c", "EXACT", ""))), ["exact /b/c", "separated /a"]);
}

#[test]
fn another_exact_route_for_the_path_keeps_the_pair() {
    // Another exact `/a` (here one with a header condition) could take `/a`
    // between the twin's place and the prefix's: Kuma's pair stays.
    let rules = rule("/a", "PREFIX", "") + &rule("/a", "EXACT", ", headers: [{name: x, value: y}]");
    assert_eq!(paths(&rules), ["exact /a", "exact /a", "prefix /a/"]);
}

#[test]
fn a_path_rewrite_keeps_the_pair() {
    let rules = "    - matches: [{path: {match: PREFIX, value: /a}}]\n      filters: [{rewrite: {replacePrefixMatch: /z}}]\n      backends: [{destination: {kuma.io/service: web}}]\n";
    assert_eq!(paths(rules), ["exact /a", "prefix /a/"]);
}

#[test]
fn a_path_envoy_refuses_as_separated_prefix_keeps_the_pair() {
    assert_eq!(paths(&rule("/a?b", "PREFIX", "")), ["exact /a?b", "prefix /a?b/"]);
}
