//! The generated config of every example and focused case, held as insta
//! YAML snapshots (the layout of Kuma's golden files).

mod common;

#[test]
fn generated_config_snapshots() {
    for case in common::cases() {
        let set = case.load();
        for (mesh, dataplane) in &case.gateways {
            let snapshot = kuma_xds_gen::translate(&set, mesh, dataplane)
                .unwrap_or_else(|e| panic!("{} {mesh}/{dataplane}: {e}", case.name));
            let yaml = kuma_xds_gen::render::snapshot_yaml(&snapshot).unwrap();
            insta::assert_snapshot!(format!("{}__{mesh}__{dataplane}", case.name), yaml);
        }
    }
}

/// The YAML rendering reads back (as YAML 1.2) to exactly the JSON rendering.
#[test]
fn yaml_reads_back_as_the_json() {
    for case in common::cases() {
        let set = case.load();
        for (mesh, dataplane) in &case.gateways {
            let snapshot = kuma_xds_gen::translate(&set, mesh, dataplane).unwrap();
            let value = kuma_xds_gen::render::snapshot_value(&snapshot).unwrap();
            let back: serde_json::Value = serde_yaml::from_str(&kuma_xds_gen::render::to_yaml(&value)).unwrap();
            assert_eq!(back, value, "{} {mesh}/{dataplane}", case.name);
        }
    }
}
