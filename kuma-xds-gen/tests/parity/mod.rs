//! Comparison of this gateway's output with Kuma's goldens, shared by the
//! parity tests: one normalisation for both sides (what Envoy does the same
//! is written the same) and a short list of the first differences.

#![allow(dead_code)]

use std::collections::BTreeSet;

use serde_json::Value;

/// Kuma's harnesses give every mesh test CA material (`xds.TestSecrets`);
/// here each builtin CA backend of `meshes` gets the repository's test CA,
/// as the Secrets Kuma stores a builtin CA in, so that the gateway can issue
/// its identity.
pub(crate) fn mesh_ca_secrets(meshes: &[kuma_model::Resource]) -> Vec<kuma_model::Resource> {
    use base64::Engine as _;
    let certs = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../testdata/certs");
    let data = |file: &str| {
        base64::engine::general_purpose::STANDARD.encode(std::fs::read(certs.join(file)).expect("test CA"))
    };
    let mut docs = String::new();
    for mesh in meshes {
        let kuma_model::Spec::Mesh(spec) = &mesh.spec else { continue };
        for backend in spec.mtls.iter().flat_map(|m| &m.backends).filter(|b| b.kind == "builtin") {
            for (part, file) in [("cert", "mesh-ca-rsa.crt"), ("key", "mesh-ca-rsa.key")] {
                let name = format!("{}.ca-builtin-{part}-{}", mesh.meta.name, backend.name);
                docs.push_str(&format!(
                    "---\ntype: Secret\nmesh: {}\nname: {name}\ndata: {}\n",
                    mesh.meta.name,
                    data(file)
                ));
            }
        }
    }
    kuma_model::parse_file("test-ca.yaml", &docs, kuma_model::UnknownFields::Ignore)
        .resources()
        .iter()
        .map(|r| (**r).clone())
        .collect()
}

/// Settings written explicitly on one side that equal Envoy's behaviour when
/// they are absent: `0s` maximum connection/stream durations (no limit) and
/// circuit-breaker thresholds equal to Envoy's defaults (1024/1024/1024, 3 retries).
fn drop_envoy_defaults(v: &mut Value) {
    match v {
        Value::Object(map) => {
            for key in ["maxConnectionDuration", "maxStreamDuration"] {
                if map.get(key).and_then(Value::as_str) == Some("0s") {
                    map.remove(key);
                }
            }
            if map.contains_key("trackRemaining") {
                for (key, default) in [
                    ("maxConnections", 1024.0),
                    ("maxPendingRequests", 1024.0),
                    ("maxRequests", 1024.0),
                    ("maxRetries", 3.0),
                ] {
                    if map.get(key).and_then(Value::as_f64) == Some(default) {
                        map.remove(key);
                    }
                }
            }
            map.values_mut().for_each(drop_envoy_defaults);
        }
        Value::Array(items) => items.iter_mut().for_each(drop_envoy_defaults),
        _ => {}
    }
}

/// One normalisation for both sides: what Envoy does the same is written the same.
pub(crate) fn normalise(v: &mut Value) {
    drop_envoy_defaults(v);
    // A cluster without endpoints holds no connections, so their idle
    // timeout means nothing (Kuma writes 0s for an ExternalService behind a
    // zone egress that has no instance, 3600s elsewhere).
    let endpointless: Vec<String> = v
        .pointer("/Endpoints/Resources")
        .and_then(Value::as_object)
        .map(|e| {
            e.iter()
                .filter(|(_, cla)| cla.get("endpoints").and_then(Value::as_array).is_none_or(Vec::is_empty))
                .map(|(name, _)| name.clone())
                .collect()
        })
        .unwrap_or_default();
    for name in endpointless {
        let path = format!(
            "/Clusters/Resources/{name}/typedExtensionProtocolOptions/envoy.extensions.upstreams.http.v3.HttpProtocolOptions/commonHttpProtocolOptions"
        );
        if let Some(common) = v.pointer_mut(&path).and_then(Value::as_object_mut) {
            common.remove("idleTimeout");
        }
    }
    // Mesh identity and CA bytes: Kuma's harness injects placeholders
    // (`CERT`), ours are issued from a test CA; only their presence compares.
    if let Some(secrets) = v.pointer_mut("/Secrets/Resources").and_then(Value::as_object_mut) {
        for (name, secret) in secrets.iter_mut() {
            if name.starts_with("identity_cert:") || name.starts_with("mesh_ca:") {
                *secret = Value::String("mesh PKI".into());
            }
        }
    }
    if let Some(routes) = v.pointer_mut("/Routes/Resources").and_then(Value::as_object_mut) {
        for rc in routes.values_mut() {
            // Beyond Kuma: HTTPS route configurations answer 421 for the
            // port's other listener hostnames (`routes::misdirected`).
            if let Some(vhs) = rc.get_mut("virtualHosts").and_then(Value::as_array_mut) {
                vhs.retain(|vh| vh["name"] != "misdirected:other-listener-hostnames");
            }
            for vh in rc["virtualHosts"].as_array_mut().into_iter().flatten() {
                // A virtual host's retry policy applies to routes without their own.
                let retry = vh.as_object_mut().and_then(|o| o.remove("retryPolicy"));
                for r in vh["routes"].as_array_mut().into_iter().flatten() {
                    if let Some(o) = r.as_object_mut() {
                        o.remove("name"); // Kuma leaves routes unnamed.
                    }
                    if let Some(action) = r.get_mut("route").and_then(Value::as_object_mut) {
                        one_cluster(action);
                    }
                    if let (Some(retry), Some(action)) = (&retry, r.get_mut("route").and_then(Value::as_object_mut)) {
                        action.entry("retryPolicy").or_insert_with(|| retry.clone());
                    }
                }
                if let Some(routes) = vh.get_mut("routes").and_then(Value::as_array_mut) {
                    separate_prefixes(routes);
                }
            }
        }
    }
}

/// Kuma's per-cluster `x-kuma-tags` request header never reaches a backend:
/// the route configuration removes `x-kuma-tags` after it (Envoy applies the
/// least specific level last; `kuma-gateway/tests/e2e.rs` shows it). Without
/// it, a one-entry weighted set routes as a plain `cluster`, which is what
/// this gateway writes.
fn one_cluster(action: &mut serde_json::Map<String, Value>) {
    let Some(clusters) = action.get_mut("weightedClusters").and_then(|w| w.get_mut("clusters")) else { return };
    for c in clusters.as_array_mut().into_iter().flatten() {
        if let Some(c) = c.as_object_mut()
            && let Some(headers) = c.get_mut("requestHeadersToAdd").and_then(Value::as_array_mut)
        {
            headers.retain(|h| h.pointer("/header/key").and_then(Value::as_str) != Some("x-kuma-tags"));
            if headers.is_empty() {
                c.remove("requestHeadersToAdd");
            }
        }
    }
    let single = match clusters.as_array().map(Vec::as_slice) {
        Some([only]) if only.as_object().is_some_and(|o| o.keys().all(|k| k == "name" || k == "weight")) => {
            only.get("name").cloned()
        }
        _ => None,
    };
    if let Some(name) = single {
        action.remove("weightedClusters");
        action.insert("cluster".into(), name);
    }
}

/// Kuma's two routes for a PREFIX match `/p` — exact `/p` among the exact
/// paths, prefix `/p/` later — mean the same as one `path_separated_prefix:
/// /p` in the prefix's place when everything else is equal and no route in
/// between has the exact path `/p` (nothing else there can match `/p`). This
/// gateway writes the one route (`routes::separate_prefixes`).
fn separate_prefixes(routes: &mut Vec<Value>) {
    let mut i = 0;
    while i < routes.len() {
        let Some(path) = routes[i].pointer("/match/path").and_then(Value::as_str).map(String::from) else {
            i += 1;
            continue;
        };
        let without = |r: &Value, key: &str| {
            let mut r = r.clone();
            if let Some(m) = r.get_mut("match").and_then(Value::as_object_mut) {
                m.remove(key);
            }
            r
        };
        let twin = without(&routes[i], "path");
        let prefix = format!("{path}/");
        let partner = (i + 1..routes.len())
            .take_while(|&k| routes[k].pointer("/match/path").and_then(Value::as_str) != Some(path.as_str()))
            .find(|&k| {
                routes[k].pointer("/match/prefix").and_then(Value::as_str) == Some(prefix.as_str())
                    && without(&routes[k], "prefix") == twin
            });
        match partner {
            Some(k) => {
                if let Some(m) = routes[k].get_mut("match").and_then(Value::as_object_mut) {
                    m.remove("prefix");
                    m.insert("pathSeparatedPrefix".into(), Value::String(path));
                }
                routes.remove(i);
            }
            None => i += 1,
        }
    }
}

pub(crate) fn diff(path: &str, a: &Value, b: &Value, out: &mut Vec<String>) {
    if out.len() >= 4 {
        return;
    }
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            let keys: BTreeSet<&String> = x.keys().chain(y.keys()).collect();
            for k in keys {
                match (x.get(k), y.get(k)) {
                    (Some(p), Some(q)) => diff(&format!("{path}/{k}"), p, q, out),
                    (Some(_), None) => out.push(format!("{path}/{k}: only ours")),
                    (None, Some(_)) => out.push(format!("{path}/{k}: only Kuma's")),
                    (None, None) => {}
                }
            }
        }
        (Value::Array(x), Value::Array(y)) if x.len() == y.len() => {
            for (i, (p, q)) in x.iter().zip(y).enumerate() {
                diff(&format!("{path}[{i}]"), p, q, out);
            }
        }
        (Value::Number(x), Value::Number(y)) if x.as_f64() == y.as_f64() => {}
        _ if a != b => out.push(format!("{path}: ours {} vs Kuma's {}", short(a), short(b))),
        _ => {}
    }
}

fn short(v: &Value) -> String {
    let s = v.to_string();
    if s.len() > 80 { format!("{}…", &s[..s.char_indices().nth(80).map_or(s.len(), |(i, _)| i)]) } else { s }
}
