//! Parity with Kuma v2.14.3's golden files for Kuma 2.x gateway
//! configuration (`../shared/peer/kuma-policies/`, see the README there):
//! MeshHTTPRoute/MeshTCPRoute on a MeshGateway and the targetRef policies.
//!
//! Each scenario folder's `input.transcribed.yaml` is stored with upserts
//! (Kuma's tests create no initial policies, so the Mesh skips them all),
//! translated for the scenario's builtin gateway data plane, and each golden
//! file compared with the resources of ours that carry the same names, after
//! the normalisation the legacy parity test uses (`parity/mod.rs`). Kuma's
//! goldens hold only what one policy plugin generated, so resources of ours
//! that no golden names (a TCP listener in a MeshHTTPRoute test, say) are
//! listed, not compared.
//!
//! Prints one line per scenario, writes them to
//! `target/kuma-policies-parity.md` (and both sides of each scenario to
//! `target/kuma-policies-parity/<entry>/`), and fails when a scenario listed in
//! `tests/kuma-policies-parity-equal.txt` is no longer equal. It fails,
//! saying so, when the golden data is missing.

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use kuma_model::{Kind, Resource, ResourceSet, Spec, Timestamp, UnknownFields, parse_file};
use serde_json::{Map, Value};

mod parity;
use parity::{diff, normalise};

fn shared() -> PathBuf {
    let dir = std::env::var_os("KUMA_SHARED_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared"));
    let peer = dir.join("peer/kuma-policies");
    assert!(
        peer.join("meshhttproute").is_dir(),
        "Kuma's policy golden data is missing: expected {} (set KUMA_SHARED_DIR to the folder holding peer/kuma-policies)",
        peer.display()
    );
    peer
}

/// Every scenario folder: `<policy>/<entry>` holding `input.transcribed.yaml`.
fn scenarios(peer: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for policy in std::fs::read_dir(peer).unwrap().map(|e| e.unwrap().path()) {
        if !policy.is_dir() {
            continue;
        }
        for entry in std::fs::read_dir(&policy).unwrap().map(|e| e.unwrap().path()) {
            if entry.join("input.transcribed.yaml").is_file() {
                out.push(entry);
            }
        }
    }
    out.sort();
    out
}

/// The input stored as Kuma's test store would hold it: documents in order,
/// later ones replacing earlier ones of the same key, every Mesh without
/// initial policies.
fn store(dir: &Path) -> Result<ResourceSet, String> {
    let file = dir.join("input.transcribed.yaml");
    let text = std::fs::read_to_string(&file).unwrap();
    let mut resources: Vec<Resource> = Vec::new();
    for (seq, doc) in text.split("\n---").enumerate() {
        let parsed = parse_file(&file.display().to_string(), doc, UnknownFields::Reject);
        if let Some(d) = parsed.diagnostics().iter().find(|d| d.severity == kuma_model::Severity::Error) {
            return Err(format!("input not loadable: {}", d.to_string().replace(&file.display().to_string(), "input")));
        }
        for r in parsed.resources() {
            let mut r = (**r).clone();
            if let Spec::Mesh(m) = &mut r.spec {
                m.skip_creating_initial_policies = vec!["*".into()];
            }
            r.meta.creation_time = Timestamp::parse(&format!("2020-01-01T00:00:00.{seq:06}Z"));
            resources.retain(|old| old.key() != r.key());
            resources.push(r);
        }
    }
    let meshes: Vec<Resource> = resources.iter().filter(|r| matches!(r.spec, Spec::Mesh(_))).cloned().collect();
    resources.extend(parity::mesh_ca_secrets(&meshes));
    ResourceSet::from_resources(resources).map(|(set, _)| set).map_err(|e| format!("input invalid: {e}"))
}

/// The builtin gateway data plane the scenario generates for.
fn gateway_dataplane(set: &ResourceSet) -> Option<(String, String)> {
    set.of_kind(Kind::Dataplane).find_map(|r| match &r.spec {
        Spec::Dataplane(d) if d.is_builtin_gateway() => Some((r.meta.mesh.clone(), r.meta.name.clone())),
        _ => None,
    })
}

/// The snapshot section a golden file is for, from its name
/// (`gateway.listeners.golden.yaml`, `basic.gateway_cluster.golden.yaml`).
fn section(file: &str) -> Option<&'static str> {
    let stem = file.strip_suffix(".golden.yaml")?;
    let last = stem.rsplit(['.', '_']).next()?;
    Some(match last.trim_end_matches('s') {
        "listener" => "Listeners",
        "cluster" => "Clusters",
        "route" => "Routes",
        "endpoint" => "Endpoints",
        "secret" => "Secrets",
        _ => return None,
    })
}

/// A golden file as `{name: resource}`: either `resources: [{name, resource}]`
/// (every resource of the type, `{}` when none) or one bare resource.
fn golden_resources(text: &str) -> Map<String, Value> {
    let v: Value = serde_yaml::from_str(text).unwrap_or(Value::Null);
    let mut out = Map::new();
    match v.get("resources").and_then(Value::as_array) {
        Some(list) => {
            for item in list {
                if let (Some(name), Some(res)) = (item["name"].as_str(), item.get("resource")) {
                    let mut res = res.clone();
                    if let Some(o) = res.as_object_mut() {
                        o.remove("@type");
                    }
                    out.insert(name.to_string(), res);
                }
            }
        }
        None if v.as_object().is_some_and(|o| !o.is_empty()) => {
            let name = v["name"].as_str().or_else(|| v["clusterName"].as_str()).unwrap_or_default().to_string();
            let mut res = v.clone();
            if let Some(o) = res.as_object_mut() {
                o.remove("@type");
            }
            out.insert(name, res);
        }
        None => {}
    }
    out
}

fn compare(dir: &Path, name: &str) -> Result<(bool, String), String> {
    let set = store(dir)?;
    let (mesh, dataplane) = gateway_dataplane(&set).ok_or("no builtin gateway data plane in the input")?;
    let snapshot = kuma_xds_gen::translate(&set, &mesh, &dataplane).map_err(|e| format!("translation failed: {e}"))?;
    let ours_all = kuma_xds_gen::render::snapshot_value(&snapshot).unwrap();
    let mut golden_root = Map::new();
    let mut ours_root = Map::new();
    let mut extra = Vec::new();
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_string_lossy().ends_with(".golden.yaml"))
        .collect();
    files.sort();
    for file in files {
        let name = file.file_name().unwrap().to_string_lossy().to_string();
        let Some(section) = section(&name) else { continue };
        let golden = golden_resources(&std::fs::read_to_string(&file).unwrap());
        let ours = ours_all.pointer(&format!("/{section}/Resources")).and_then(Value::as_object).cloned();
        let ours = ours.unwrap_or_default();
        let mut picked = Map::new();
        for (n, res) in &ours {
            let mut res = res.clone();
            if let Some(o) = res.as_object_mut() {
                o.remove("@type");
            }
            if golden.contains_key(n) {
                picked.insert(n.clone(), res);
            } else if name.contains("golden") && !golden.is_empty() {
                extra.push(format!("{section}/{n}"));
            }
        }
        let g = golden_root.entry(section).or_insert_with(|| Value::Object(Map::new()));
        g.as_object_mut().unwrap().entry("Resources").or_insert_with(|| Value::Object(Map::new()));
        g["Resources"].as_object_mut().unwrap().extend(golden);
        let o = ours_root.entry(section).or_insert_with(|| Value::Object(Map::new()));
        o.as_object_mut().unwrap().entry("Resources").or_insert_with(|| Value::Object(Map::new()));
        o["Resources"].as_object_mut().unwrap().extend(picked);
    }
    let (mut golden, mut ours) = (Value::Object(golden_root), Value::Object(ours_root));
    without_ipv6_loopback(&mut ours);
    without_bare_track_remaining(&mut ours);
    without_bare_track_remaining(&mut golden);
    normalise(&mut golden);
    normalise(&mut ours);
    // Both sides, normalised, for a closer look at a difference.
    let out = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/kuma-policies-parity").join(name);
    if std::fs::create_dir_all(&out).is_ok() {
        let _ = std::fs::write(out.join("ours.yaml"), serde_yaml::to_string(&sorted(&ours)).unwrap_or_default());
        let _ = std::fs::write(out.join("kuma.yaml"), serde_yaml::to_string(&sorted(&golden)).unwrap_or_default());
    }
    let mut d = Vec::new();
    diff("", &ours, &golden, &mut d);
    extra.sort();
    extra.dedup();
    let note = if extra.is_empty() {
        String::new()
    } else {
        format!(" (also ours, named by no golden: {})", extra.join(", "))
    };
    if d.is_empty() { Ok((true, format!("equal{note}"))) } else { Ok((false, format!("{}{note}", d.join("; ")))) }
}

/// `v` with every object's keys in order, so that the two sides diff line by line.
fn sorted(v: &Value) -> Value {
    match v {
        Value::Object(m) => {
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort();
            Value::Object(keys.into_iter().map(|k| (k.clone(), sorted(&m[k]))).collect())
        }
        Value::Array(items) => Value::Array(items.iter().map(sorted).collect()),
        other => other.clone(),
    }
}

/// Kuma's MeshCircuitBreaker plugin sets `trackRemaining` on every cluster
/// (the legacy goldens, from the full pipeline, all have it); these plugin
/// tests run other plugins only. Remaining-capacity gauges change no
/// routing, so a threshold holding nothing else is dropped on both sides.
fn without_bare_track_remaining(v: &mut Value) {
    match v {
        Value::Object(map) => {
            let bare = map.get("circuitBreakers").is_some_and(|c| {
                c.as_object().is_some_and(|o| o.len() == 1)
                    && c["thresholds"].as_array().is_some_and(|t| {
                        t.len() == 1
                            && t[0].as_object().is_some_and(|o| o.len() == 1 && o.contains_key("trackRemaining"))
                    })
            });
            if bare {
                map.remove("circuitBreakers");
            }
            map.values_mut().for_each(without_bare_track_remaining);
        }
        Value::Array(items) => items.iter_mut().for_each(without_bare_track_remaining),
        _ => {}
    }
}

/// Kuma's full pipeline (the legacy goldens) lists `::1` among the internal
/// addresses beside `127.0.0.1`, as this gateway does; these plugin tests
/// build their context without IPv6, so the goldens lack it.
fn without_ipv6_loopback(v: &mut Value) {
    match v {
        Value::Object(map) => {
            if let Some(Value::Array(ranges)) = map.get_mut("cidrRanges") {
                ranges.retain(|r| r["addressPrefix"] != "::1");
            }
            map.values_mut().for_each(without_ipv6_loopback);
        }
        Value::Array(items) => items.iter_mut().for_each(without_ipv6_loopback),
        _ => {}
    }
}

#[test]
fn kuma_policies_golden_parity() {
    let peer = shared();
    let expected: BTreeSet<String> = include_str!("kuma-policies-parity-equal.txt")
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(String::from)
        .collect();
    let mut report = String::from("# Parity with Kuma v2.14.3's goldens for Kuma 2.x gateway configuration\n\n");
    let mut equal = BTreeSet::new();
    let all = scenarios(&peer);
    for dir in &all {
        let name = dir.strip_prefix(&peer).unwrap().display().to_string();
        let line = match compare(dir, &name) {
            Ok((true, text)) => {
                equal.insert(name.clone());
                text
            }
            Ok((false, text)) | Err(text) => text,
        };
        let _ = writeln!(report, "- `{name}`: {line}");
    }
    let _ = writeln!(report, "\n{} of {} scenarios equal.", equal.len(), all.len());
    println!("{report}");
    let target = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target");
    let _ = std::fs::create_dir_all(&target);
    std::fs::write(target.join("kuma-policies-parity.md"), &report).unwrap();
    let regressed: Vec<&String> = expected.difference(&equal).collect();
    assert!(regressed.is_empty(), "scenarios no longer equal to Kuma's golden: {regressed:?}");
}
