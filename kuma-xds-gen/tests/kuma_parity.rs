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

mod parity;
use parity::{diff, normalise};

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
                let mut r = (**r).clone();
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
            }
            if n.ends_with("-all-default") {
                // One of the initial Mesh* policies: with files, a mesh
                // without it is one created with its type in
                // `skipCreatingInitialPolicies` (otherwise it is implied).
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

fn add_mesh_cas(store: &mut Store) {
    let meshes: Vec<Resource> = store.0.iter().filter(|r| r.spec.kind() == Kind::Mesh).cloned().collect();
    for r in parity::mesh_ca_secrets(&meshes) {
        store.upsert(r);
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
