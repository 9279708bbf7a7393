//! Properties of the translation over every example and focused case:
//! input order never changes a byte of the output, and every type URL the
//! output carries resolves in the descriptor pool.

mod common;

use kuma_model::{ResourceSet, UnknownFields};
use proptest::prelude::*;

/// Every YAML document of a case, each as its own text.
fn documents(case: &common::Case) -> Vec<String> {
    case.files
        .iter()
        .flat_map(|(_, text)| text.split("\n---\n").map(str::to_string).collect::<Vec<_>>())
        .filter(|d| d.lines().any(|l| !l.trim().is_empty() && !l.trim_start().starts_with('#')))
        .collect()
}

fn render_all(set: &ResourceSet, gateways: &[(String, String)]) -> Vec<String> {
    gateways
        .iter()
        .map(|(mesh, dp)| {
            let snapshot = kuma_xds_gen::translate(set, mesh, dp).unwrap();
            // The bytes served over xDS too, with their versions (map
            // fields are encoded in key order, not HashMap order).
            let served: Vec<String> = kuma_xds_gen::ResourceType::ALL
                .iter()
                .map(|t| format!("{t:?} {} {:?}", snapshot.version(*t), snapshot.resources(*t)))
                .collect();
            format!("{}\n{}", kuma_xds_gen::render::snapshot_json(&snapshot).unwrap(), served.join("\n"))
        })
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    #[test]
    fn shuffled_input_gives_identical_bytes(seed in any::<u64>()) {
        for case in common::cases() {
            let expected = render_all(&case.load(), &case.gateways);
            let mut docs = documents(&case);
            // A seeded Fisher-Yates shuffle, one document per file, files in that order.
            let mut state = seed | 1;
            for i in (1..docs.len()).rev() {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                docs.swap(i, (state % (i as u64 + 1)) as usize);
            }
            let names: Vec<String> = (0..docs.len()).map(|i| format!("doc-{i}.yaml")).collect();
            let (set, _) = ResourceSet::load(
                names.iter().map(String::as_str).zip(docs.iter().map(String::as_str)),
                UnknownFields::Reject,
            )
            .unwrap();
            prop_assert_eq!(render_all(&set, &case.gateways), expected, "{}", case.name);
        }
    }
}

fn type_urls(value: &serde_json::Value, out: &mut Vec<String>) {
    match value {
        serde_json::Value::Object(map) => {
            if let Some(serde_json::Value::String(url)) = map.get("@type") {
                out.push(url.clone());
            }
            map.values().for_each(|v| type_urls(v, out));
        }
        serde_json::Value::Array(items) => items.iter().for_each(|v| type_urls(v, out)),
        _ => {}
    }
}

#[test]
fn every_type_url_resolves() {
    let mut seen = std::collections::BTreeSet::new();
    for case in common::cases() {
        let set = case.load();
        for (mesh, dp) in &case.gateways {
            let snapshot = kuma_xds_gen::translate(&set, mesh, dp).unwrap();
            for t in kuma_xds_gen::ResourceType::ALL {
                assert!(kuma_xds_gen::render::type_url_resolves(&t.type_url()), "{}", t.type_url());
                seen.insert(t.type_url());
            }
            let mut urls = Vec::new();
            type_urls(&kuma_xds_gen::render::snapshot_value(&snapshot).unwrap(), &mut urls);
            let bootstrap = kuma_xds_gen::render::static_bootstrap(&snapshot, None);
            type_urls(&kuma_xds_gen::render::bootstrap_value(&bootstrap).unwrap(), &mut urls);
            for url in urls {
                assert!(kuma_xds_gen::render::type_url_resolves(&url), "{}: {url}", case.name);
                seen.insert(url);
            }
        }
    }
    assert!(!kuma_xds_gen::render::type_url_resolves("type.googleapis.com/not.a.Type"));
    // Nested types (HCM, TLS, tcp_proxy, ...) are covered, not just the six resource types.
    assert!(seen.len() > 12, "{seen:?}");
}
