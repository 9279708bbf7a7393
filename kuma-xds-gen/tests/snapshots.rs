//! The generated config of every example and focused case, held as insta
//! YAML snapshots (the layout of Kuma's golden files), and the route table
//! it is rendered from, as text.

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

/// The route table of every example and case (`RouteTable`'s text form):
/// what each entry matches, where it comes from, where it goes and which
/// policies were chosen for it.
#[test]
fn route_table_snapshots() {
    for case in common::cases() {
        let set = case.load();
        for (mesh, dataplane) in &case.gateways {
            let Some(table) = kuma_xds_gen::route_table(&set, mesh, dataplane)
                .unwrap_or_else(|e| panic!("{} {mesh}/{dataplane}: {e}", case.name))
            else {
                continue;
            };
            insta::assert_snapshot!(format!("table-{}__{mesh}__{dataplane}", case.name), table.to_string());
        }
    }
}

/// The rendered config has one Envoy route per table entry, in the table's
/// order: the table is what is generated.
#[test]
fn every_table_entry_is_one_envoy_route_in_order() {
    use kuma_xds_gen::envoy_types::pb::envoy::config::listener::v3::filter::ConfigType;
    use kuma_xds_gen::envoy_types::pb::envoy::extensions::filters::network::http_connection_manager::v3::{
        HttpConnectionManager, http_connection_manager::RouteSpecifier,
    };
    use prost::Message;
    let mut checked = 0;
    for case in common::cases() {
        let set = case.load();
        for (mesh, dataplane) in &case.gateways {
            let Some(table) = kuma_xds_gen::route_table(&set, mesh, dataplane).unwrap() else { continue };
            let snapshot = kuma_xds_gen::translate(&set, mesh, dataplane).unwrap();
            for port in &table.ports {
                let listener = snapshot
                    .listeners
                    .values()
                    .find(|l| l.name.ends_with(&format!(":{}", port.port)))
                    .unwrap_or_else(|| panic!("{}: no listener for port {}", case.name, port.port));
                assert_eq!(listener.filter_chains.len(), port.chains.len(), "{} port {}", case.name, port.port);
                for (chain, envoy_chain) in port.chains.iter().zip(&listener.filter_chains) {
                    let Some(ConfigType::TypedConfig(any)) =
                        envoy_chain.filters.first().and_then(|f| f.config_type.as_ref())
                    else {
                        continue;
                    };
                    let Ok(hcm) = HttpConnectionManager::decode(any.value.as_slice()) else { continue };
                    let Some(RouteSpecifier::Rds(rds)) = hcm.route_specifier else { continue };
                    if !any.type_url.ends_with("HttpConnectionManager") {
                        continue;
                    }
                    let rc = &snapshot.routes[&rds.route_config_name];
                    for host in &chain.hosts {
                        let vh = rc.virtual_hosts.iter().find(|v| v.name == host.hostname).unwrap();
                        let expected = host.entries.len().max(1);
                        assert_eq!(vh.routes.len(), expected, "{} {}: {}", case.name, rc.name, host.hostname);
                        for (entry, route) in host.entries.iter().zip(&vh.routes) {
                            let o = &entry.summary.origin;
                            let name = entry.hash().map_or_else(
                                || format!("{}/rules[{}]/matches[{}]", o.route, o.rule, o.match_index),
                                str::to_string,
                            );
                            assert_eq!(route.name, name, "{} {}: {}", case.name, rc.name, host.hostname);
                            checked += 1;
                        }
                    }
                }
            }
        }
    }
    assert!(checked > 50, "only {checked} entries checked");
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

/// `render`'s path (translated packed, route configurations spliced into the
/// bootstrap as bytes) gives the JSON of a whole translation, for every
/// example and case.
#[test]
fn packed_rendering_is_whole_rendering() {
    use kuma_xds_gen::render;
    for case in common::cases() {
        let set = case.load();
        for (mesh, dataplane) in &case.gateways {
            let whole = kuma_xds_gen::translate(&set, mesh, dataplane).unwrap();
            let packed = kuma_xds_gen::translate_packed(&set, mesh, dataplane, None).unwrap();
            let at = format!("{} {mesh}/{dataplane}", case.name);
            assert_eq!(
                render::packed_snapshot_value(&packed).unwrap(),
                render::snapshot_value(&whole).unwrap(),
                "{at}"
            );
            assert_eq!(
                render::bootstrap_value(&render::packed_static_bootstrap(&packed, Some(9901)).unwrap()).unwrap(),
                render::bootstrap_value(&render::static_bootstrap(&whole, Some(9901))).unwrap(),
                "{at}"
            );
        }
    }
}
