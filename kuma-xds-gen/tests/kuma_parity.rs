//! Parity with Kuma v2.14.3's own gateway golden files
//! (`../shared/peer/kuma/`, see the README there): each scenario's inputs
//! are stored as Kuma's test harness stored them (fixtures, then inputs with
//! an upsert, then deletions), translated for Dataplane `default`, and
//! compared with Kuma's golden output after one normalisation (below).
//!
//! Prints one line per scenario and a summary, writes the same to
//! `target/kuma-parity.md`, and fails when a scenario listed in
//! `tests/kuma-parity-equal.txt` is no longer equal. It fails, saying so,
//! when the golden data is missing.

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use kuma_model::{Kind, Resource, ResourceKey, ResourceSet, Timestamp, UnknownFields, parse_file};
use serde_json::Value;

fn shared() -> PathBuf {
    let dir = std::env::var_os("KUMA_SHARED_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared"));
    let peer = dir.join("peer/kuma");
    assert!(
        peer.join("gateway-route").is_dir(),
        "Kuma's golden data is missing: expected {} (set KUMA_SHARED_DIR to the folder holding peer/kuma)",
        peer.display()
    );
    peer
}

struct Scenario {
    name: String,
    mesh: String,
    files: Vec<PathBuf>,
    deletions: Option<PathBuf>,
    golden: PathBuf,
}

fn inputs(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.file_name().unwrap().to_string_lossy().starts_with("input-"))
        .collect();
    v.sort();
    v
}

fn scenarios(peer: &Path) -> Vec<Scenario> {
    let f = |n: &str| peer.join("fixtures").join(n);
    let base = vec![
        f("mesh-default.yaml"),
        f("default-mesh-policies.transcribed.yaml"),
        f("dataplane-default.yaml"),
        f("generated-dataplanes.transcribed.yaml"),
    ];
    let mut out = Vec::new();
    let dirs = |group: &str| {
        let mut d: Vec<PathBuf> =
            std::fs::read_dir(peer.join(group)).unwrap().map(|e| e.unwrap().path()).filter(|p| p.is_dir()).collect();
        d.sort();
        d
    };
    for dir in dirs("gateway-route") {
        for (context, extra) in [
            ("http", vec![f("gateway-http-multihost.yaml"), f("gateway-http-default.yaml")]),
            (
                "https",
                vec![
                    f("gateway-https-multihost.yaml"),
                    f("gateway-https-default.yaml"),
                    f("secret-https-default.yaml"),
                ],
            ),
        ] {
            let mut files = base.clone();
            files.extend(extra);
            files.extend(inputs(&dir));
            out.push(Scenario {
                name: format!("gateway-route/{}/{context}", dir.file_name().unwrap().to_string_lossy()),
                mesh: "default".into(),
                files,
                deletions: Some(dir.join("delete-before-generate.yaml")).filter(|p| p.is_file()),
                golden: dir.join(format!("golden-{context}.yaml")),
            });
        }
    }
    for (group, context, extra) in
        [("gateway-route-tcp", "tcp", vec![]), ("gateway-route-tls", "tls", vec![f("secret-https-default.yaml")])]
    {
        for dir in dirs(group) {
            let mut files = base.clone();
            files.extend(extra.clone());
            files.extend(inputs(&dir));
            out.push(Scenario {
                name: format!("{group}/{}", dir.file_name().unwrap().to_string_lossy()),
                mesh: "default".into(),
                files,
                deletions: Some(dir.join("delete-before-generate.yaml")).filter(|p| p.is_file()),
                golden: dir.join(format!("golden-{context}.yaml")),
            });
        }
    }
    for dir in dirs("gateway-listener") {
        let mut files = vec![
            f("mesh-default.yaml"),
            f("default-mesh-policies.transcribed.yaml"),
            f("dataplane-default.yaml"),
            f("mesh-tracing.yaml"),
            f("dataplane-tracing.yaml"),
            f("traffictrace.yaml"),
            f("mesh-logging.yaml"),
            f("dataplane-logging.yaml"),
            f("trafficlog.yaml"),
            f("listener-test-secret-server-certificate.yaml"),
        ];
        files.extend(inputs(&dir));
        // Generated for Dataplane `default` of the MeshGateway's mesh.
        let gateway: serde_yaml::Value =
            serde_yaml::from_str(&std::fs::read_to_string(&inputs(&dir)[0]).unwrap()).unwrap();
        out.push(Scenario {
            mesh: gateway["mesh"].as_str().unwrap_or("default").to_string(),
            name: format!("gateway-listener/{}", dir.file_name().unwrap().to_string_lossy()),
            files,
            deletions: None,
            golden: dir.join("golden.yaml"),
        });
    }
    out
}

/// Stores resources as Kuma's test store did: in order, an upsert per
/// resource, creation times increasing. Documents of kinds this gateway does
/// not model (ServiceInsight, the Mesh* policies, TrafficTrace) are skipped:
/// their effect is this gateway's built-in defaults.
fn store(files: &[PathBuf], deletions: Option<&Path>) -> ResourceSet {
    let mut store = Store::default();
    let mut seq = 0i64;
    for file in files {
        let text = std::fs::read_to_string(file).unwrap();
        for doc in text.split("\n---") {
            let parsed = parse_file(&file.display().to_string(), doc, UnknownFields::Ignore);
            for r in parsed.resources() {
                let mut r = r.clone();
                seq += 1;
                let created = store.get(&r.key()).and_then(|old| old.meta.creation_time);
                r.meta.creation_time = created.or_else(|| Timestamp::parse(&format!("2020-01-01T00:00:00.{seq:06}Z")));
                store.upsert(r);
            }
        }
    }
    add_mesh_cas(&mut store);
    if let Some(path) = deletions {
        let text = std::fs::read_to_string(path).unwrap();
        let docs: Vec<serde_yaml::Value> = serde_yaml::from_str(&text).unwrap_or_default();
        for d in docs {
            let (Some(t), Some(m), Some(n)) = (d["type"].as_str(), d["mesh"].as_str(), d["name"].as_str()) else {
                continue;
            };
            if let Some(kind) = Kind::ALL.iter().find(|k| k.to_string() == t) {
                store.remove(&ResourceKey { kind: *kind, mesh: m.into(), name: n.into() });
            } else if n.ends_with("-all-default") {
                // One of the initial Mesh* policies (not modelled here): a mesh
                // without it is one created with its type in
                // `skipCreatingInitialPolicies`, which the translation honours.
                skip_initial_policy(&mut store, m, t);
            }
        }
    }
    match ResourceSet::from_resources(store.0) {
        Ok((set, _)) => set,
        Err(e) => panic!("the scenario's resources are invalid:\n{e}"),
    }
}

/// Kuma's test store: resources in the order they were last written.
#[derive(Default)]
struct Store(Vec<Resource>);

impl Store {
    fn get(&self, key: &ResourceKey) -> Option<&Resource> {
        self.0.iter().find(|r| r.key() == *key)
    }

    /// Adds or replaces; a replacement counts as newly written.
    fn upsert(&mut self, resource: Resource) {
        self.remove(&resource.key());
        self.0.push(resource);
    }

    fn remove(&mut self, key: &ResourceKey) {
        self.0.retain(|r| r.key() != *key);
    }
}

/// Kuma's harness gives every mesh test CA material (`xds.TestSecrets`); here
/// each builtin CA backend gets the repository's test CA, stored as Kuma
/// stores a builtin CA, so that the gateway can issue its identity.
fn add_mesh_cas(store: &mut Store) {
    use base64::Engine as _;
    let certs = Path::new(env!("CARGO_MANIFEST_DIR")).join("../testdata/certs");
    let data = |file: &str| {
        base64::engine::general_purpose::STANDARD.encode(std::fs::read(certs.join(file)).expect("test CA"))
    };
    let mut docs = String::new();
    for mesh in store.0.iter().filter(|r| r.spec.kind() == Kind::Mesh) {
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
    for r in parse_file("test-ca.yaml", &docs, UnknownFields::Ignore).resources() {
        store.upsert(r.clone());
    }
}

fn skip_initial_policy(store: &mut Store, mesh: &str, kind: &str) {
    let key = ResourceKey { kind: Kind::Mesh, mesh: String::new(), name: mesh.into() };
    let mut resource = store.get(&key).expect("the scenario's Mesh").clone();
    if let kuma_model::Spec::Mesh(spec) = &mut resource.spec
        && !spec.skip_creating_initial_policies.iter().any(|k| k == kind)
    {
        spec.skip_creating_initial_policies.push(kind.to_string());
    }
    store.upsert(resource);
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
fn normalise(v: &mut Value) {
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

fn diff(path: &str, a: &Value, b: &Value, out: &mut Vec<String>) {
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

#[test]
fn kuma_golden_parity() {
    let peer = shared();
    let expected: BTreeSet<String> = include_str!("kuma-parity-equal.txt")
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(String::from)
        .collect();
    let mut report = String::from("# Parity with Kuma v2.14.3's gateway goldens\n\n");
    let mut equal = BTreeSet::new();
    let all = scenarios(&peer);
    for s in &all {
        let set = store(&s.files, s.deletions.as_deref());
        let mut golden: Value = serde_yaml::from_str(&std::fs::read_to_string(&s.golden).unwrap()).unwrap();
        let line = match kuma_xds_gen::translate(&set, &s.mesh, "default") {
            Ok(snapshot) => {
                let mut ours = kuma_xds_gen::render::snapshot_value(&snapshot).unwrap();
                normalise(&mut ours);
                normalise(&mut golden);
                let mut d = Vec::new();
                diff("", &ours, &golden, &mut d);
                if d.is_empty() {
                    equal.insert(s.name.clone());
                    format!("- `{}`: equal", s.name)
                } else {
                    format!("- `{}`: {}", s.name, d.join("; "))
                }
            }
            Err(e) => format!("- `{}`: translation failed: {e}", s.name),
        };
        let _ = writeln!(report, "{line}");
    }
    let _ = writeln!(report, "\n{} of {} scenarios equal.", equal.len(), all.len());
    println!("{report}");
    let target = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target");
    let _ = std::fs::create_dir_all(&target);
    std::fs::write(target.join("kuma-parity.md"), &report).unwrap();
    let regressed: Vec<&String> = expected.difference(&equal).collect();
    assert!(regressed.is_empty(), "scenarios no longer equal to Kuma's golden: {regressed:?}");
}
