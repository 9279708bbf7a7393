//! Generated gateways for the benchmarks: the "mixed" rule set of issue 17
//! (rules spread over 20 host names, one third regular expressions, some
//! header matches), and a probe route on a host of its own that a
//! benchmark changes.

use std::fmt::Write as _;
use std::path::Path;

/// Host names the rules are spread over.
pub const HOSTS: usize = 20;

/// Writes gateway `name` (a Dataplane and a MeshGateway listening on
/// `port`) and `rules` route rules to backend service `web` into `dir`,
/// 100 rules per file.
pub fn write_gateway(dir: &Path, name: &str, port: u16, rules: usize) {
    let gateway = format!(
        "type: Dataplane\nname: {name}\nnetworking:\n  address: 127.0.0.1\n  gateway: {{type: BUILTIN, tags: {{kuma.io/service: {name}}}}}\n---\n\
type: MeshGateway\nname: {name}\nselectors: [{{match: {{kuma.io/service: {name}}}}}]\nconf: {{listeners: [{{port: {port}, protocol: HTTP}}]}}\n"
    );
    std::fs::write(dir.join(format!("{name}.yaml")), gateway).unwrap();
    for f in 0..rules.div_ceil(100) {
        let host = f % HOSTS;
        let mut y = format!(
            "type: MeshGatewayRoute\nname: {name}-routes-{f}\nselectors: [{{match: {{kuma.io/service: {name}}}}}]\nconf:\n  http:\n    hostnames: [h{host}.example.com]\n    rules:\n"
        );
        for i in 0..100.min(rules - f * 100) {
            let n = f * 100 + i;
            let path = match n % 3 {
                0 => format!("{{match: REGEX, value: '/r{n}/[a-z]+/[0-9]+'}}"),
                1 => format!("{{match: PREFIX, value: /r{n}}}"),
                _ => format!("{{match: EXACT, value: /r{n}}}"),
            };
            let headers = if n % 5 == 0 { ", headers: [{match: EXACT, name: x-tenant, value: t1}]" } else { "" };
            let _ = writeln!(
                y,
                "    - matches: [{{path: {path}{headers}}}]\n      backends: [{{destination: {{kuma.io/service: web}}}}]"
            );
        }
        std::fs::write(dir.join(format!("{name}-routes-{f:04}.yaml")), y).unwrap();
    }
}

/// The backend data plane `web` on `port`.
pub fn write_backend(dir: &Path, port: u16) {
    std::fs::write(
        dir.join("web.yaml"),
        format!(
            "type: Dataplane\nname: web-1\nnetworking:\n  address: 127.0.0.1\n  inbound: [{{port: {port}, tags: {{kuma.io/service: web, kuma.io/protocol: http}}}}]\n"
        ),
    )
    .unwrap();
}

/// A route on host `probe.example.com` sending exactly `path` to `web`,
/// on every gateway of `gateways`.
pub fn probe_route(gateways: &[String], path: &str) -> String {
    let selectors: Vec<String> = gateways.iter().map(|g| format!("{{match: {{kuma.io/service: {g}}}}}")).collect();
    format!(
        "type: MeshGatewayRoute\nname: probe\nselectors: [{}]\nconf: {{http: {{hostnames: [probe.example.com], rules: [{{matches: [{{path: {{match: EXACT, value: {path}}}}}], backends: [{{destination: {{kuma.io/service: web}}}}]}}]}}}}\n",
        selectors.join(", ")
    )
}
