//! Inputs shared by the snapshot, Envoy and property tests: every example in
//! `examples/` and every focused case in `tests/cases/`, with the gateway
//! data planes to render.

#![allow(dead_code)]

use std::path::{Path, PathBuf};

use kuma_model::{ResourceSet, Spec, UnknownFields};

/// One input set and the gateway data planes in it.
pub(crate) struct Case {
    /// `example-<dir>` or `case-<file stem>`.
    pub name: String,
    /// The files, as (path, text).
    pub files: Vec<(String, String)>,
    /// `(mesh, dataplane)` of every gateway data plane.
    pub gateways: Vec<(String, String)>,
}

impl Case {
    /// The resource set.
    pub(crate) fn load(&self) -> ResourceSet {
        ResourceSet::load(self.files.iter().map(|(p, t)| (p.as_str(), t.as_str())), UnknownFields::Reject)
            .unwrap_or_else(|e| panic!("{}: {e}", self.name))
            .0
    }
}

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf()
}

fn yaml_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(yaml_files(&path));
        } else if path.extension().is_some_and(|e| e == "yaml" || e == "yml") {
            out.push(path);
        }
    }
    out.sort();
    out
}

fn case(name: String, paths: Vec<PathBuf>) -> Case {
    let files: Vec<(String, String)> = paths
        .iter()
        .map(|p| (p.strip_prefix(root()).unwrap().display().to_string(), std::fs::read_to_string(p).unwrap()))
        .collect();
    let mut c = Case { name, files, gateways: Vec::new() };
    let set = c.load();
    // Gateway Dataplanes, and MeshGatewayInstances (their Dataplane is made from them).
    c.gateways = set
        .iter()
        .filter(|r| match &r.spec {
            Spec::Dataplane(dp) => dp.gateway().is_some(),
            Spec::MeshGatewayInstance(_) => true,
            _ => false,
        })
        .map(|r| (r.meta.mesh.clone(), r.meta.name.clone()))
        .collect();
    c
}

/// Every example directory and every focused case.
pub(crate) fn cases() -> Vec<Case> {
    let mut out = Vec::new();
    let mut dirs: Vec<PathBuf> =
        std::fs::read_dir(root().join("examples")).unwrap().map(|e| e.unwrap().path()).filter(|p| p.is_dir()).collect();
    dirs.sort();
    for dir in dirs {
        let name = format!("example-{}", dir.file_name().unwrap().to_string_lossy());
        out.push(case(name, yaml_files(&dir)));
    }
    for file in yaml_files(&root().join("kuma-xds-gen/tests/cases")) {
        let name = format!("case-{}", file.file_stem().unwrap().to_string_lossy());
        let c = case(name, vec![file]);
        assert!(!c.gateways.is_empty(), "{}: no gateway data plane", c.name);
        out.push(c);
    }
    out
}

/// The Envoy binary: `ENVOY_BIN`, then `envoy` on `PATH`, then the project's
/// own `.tools/envoy` (where `scripts/install-envoy` puts it). Panics with
/// the install command when there is none: tests that need Envoy must not
/// pass without it.
pub(crate) fn envoy_bin() -> PathBuf {
    if let Some(bin) = std::env::var_os("ENVOY_BIN") {
        return PathBuf::from(bin);
    }
    if let Some(path) = std::env::var_os("PATH") {
        for dir in std::env::split_paths(&path) {
            let candidate = dir.join("envoy");
            if candidate.is_file() {
                return candidate;
            }
        }
    }
    let local = root().join(".tools/envoy/bin/envoy");
    assert!(
        local.is_file(),
        "Envoy not found (ENVOY_BIN, PATH, {}); install it with: scripts/install-envoy",
        local.display()
    );
    local
}

/// `envoy --mode validate` of `file`: Envoy's output when it refuses it.
#[allow(dead_code)]
pub(crate) fn envoy_validate(envoy: &Path, file: &Path) -> Result<(), String> {
    let out = std::process::Command::new(envoy)
        .args(["--mode", "validate", "--log-level", "error", "--disable-hot-restart", "-c"])
        .arg(file)
        .output()
        .unwrap_or_else(|e| panic!("run {}: {e}", envoy.display()));
    if out.status.success() {
        Ok(())
    } else {
        Err(format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)))
    }
}

/// The items Envoy rejects alone, found by bisecting: `accepts` judges a
/// slice (one `envoy --mode validate` run), and at most `limit` items are
/// reported, each with the last lines of Envoy's error.
#[allow(dead_code)]
pub(crate) fn bisect_rejected<T: Clone>(
    items: &[T],
    accepts: &dyn Fn(&[T]) -> Result<(), String>,
    limit: usize,
    out: &mut Vec<(T, String)>,
) {
    if out.len() >= limit || items.is_empty() {
        return;
    }
    let Err(e) = accepts(items) else { return };
    if items.len() == 1 {
        let last: Vec<&str> = e.lines().filter(|l| !l.trim().is_empty()).collect();
        out.push((items[0].clone(), last.last().copied().unwrap_or_default().to_string()));
        return;
    }
    let (a, b) = items.split_at(items.len() / 2);
    bisect_rejected(a, accepts, limit, out);
    bisect_rejected(b, accepts, limit, out);
}
