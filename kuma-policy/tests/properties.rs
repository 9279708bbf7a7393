//! Properties: precedence is a total order, hostname matching agrees with a
//! label-by-label reference, and gateway selection ignores input order.

use std::cmp::Ordering;

use kuma_model::{ResourceSet, Tags, UnknownFields};
use kuma_policy::hostname;
use kuma_policy::precedence::MatchOrigin;
use kuma_policy::{MatchSummary, PathSpecificity};
use proptest::prelude::*;

fn summary() -> impl Strategy<Value = MatchSummary> {
    (
        prop_oneof![
            "/[ab/]{0,4}".prop_map(PathSpecificity::Exact),
            "/[ab/]{0,4}".prop_map(PathSpecificity::Prefix),
            "[ab.*/]{0,4}".prop_map(PathSpecificity::Regex),
            Just(PathSpecificity::None),
        ],
        any::<bool>(),
        0usize..3,
        0usize..3,
        (proptest::option::of(0i64..3), "[ab]{0,2}", 0usize..2, 0usize..2),
    )
        .prop_map(|(path, method, headers, query_parameters, (seq, route, rule, match_index))| MatchSummary {
            path,
            method,
            headers,
            query_parameters,
            origin: MatchOrigin {
                creation: (
                    seq.is_none(),
                    seq.map(|s| kuma_model::Timestamp::parse(&format!("2024-01-01T00:00:0{s}Z")).unwrap()),
                ),
                route,
                rule,
                match_index,
            },
        })
}

/// Reference: compare label lists; a leading `*` label stands for one or
/// more labels.
fn reference_matches(a: &str, b: &str) -> bool {
    let (a, b) = (a.to_ascii_lowercase(), b.to_ascii_lowercase());
    if a == "*" || b == "*" || a == b {
        return true;
    }
    let covers = |w: &str, n: &str| {
        let w: Vec<&str> = w.split('.').collect();
        let n: Vec<&str> = n.split('.').collect();
        w.first() == Some(&"*") && n.len() > w.len() - 1 && n[n.len() - (w.len() - 1)..] == w[1..]
    };
    covers(&a, &b) || covers(&b, &a)
}

fn host() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("*".to_string()),
        prop::collection::vec(
            prop_oneof![Just("a"), Just("b"), Just("com"), Just("tele"), Just("telecom"), Just("B")],
            1..4
        )
        .prop_map(|l| l.join(".")),
        prop::collection::vec(prop_oneof![Just("a"), Just("b"), Just("com"), Just("telecom")], 1..3)
            .prop_map(|l| format!("*.{}", l.join("."))),
    ]
}

proptest! {
    #[test]
    fn precedence_is_a_total_order(a in summary(), b in summary(), c in summary()) {
        prop_assert_eq!(a.cmp(&b), b.cmp(&a).reverse());
        prop_assert_eq!(a.cmp(&b) == Ordering::Equal, a == b);
        if a <= b && b <= c {
            prop_assert!(a <= c);
        }
    }

    #[test]
    fn hostname_matching_agrees_with_reference(a in host(), b in host()) {
        prop_assert_eq!(hostname::matches(&a, &b), reference_matches(&a, &b), "{} vs {}", a, b);
    }

    #[test]
    fn exactness_order_is_total(a in host(), b in host()) {
        prop_assert_eq!(hostname::by_exactness(&a, &b), hostname::by_exactness(&b, &a).reverse());
    }

    #[test]
    fn gateway_selection_ignores_load_order(
        gateways in prop::collection::vec(
            (prop_oneof![Just("edge"), Just("*")], prop::option::of(prop_oneof![Just("a"), Just("*")])),
            1..6,
        ),
        seed in any::<u64>(),
    ) {
        let docs: Vec<String> = gateways
            .iter()
            .enumerate()
            .map(|(i, (service, zone))| {
                let zone = zone.map(|z| format!(", zone: '{z}'")).unwrap_or_default();
                format!(
                    "type: MeshGateway\nname: gw-{i}\ncreationTime: '2024-01-01T00:00:{i:02}Z'\nselectors: [{{match: {{kuma.io/service: '{service}'{zone}}}}}]\nconf: {{listeners: [{{port: 80, protocol: HTTP}}]}}\n"
                )
            })
            .collect();
        let mut shuffled = docs.clone();
        // A deterministic shuffle driven by the seed.
        let mut state = seed;
        for i in (1..shuffled.len()).rev() {
            state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            shuffled.swap(i, (state >> 33) as usize % (i + 1));
        }
        let tags: Tags = [("kuma.io/service".to_string(), "edge".to_string()), ("zone".to_string(), "a".to_string())].into();
        let pick = |docs: &[String]| {
            let files: Vec<(String, &str)> = docs.iter().enumerate().map(|(i, d)| (format!("{i}.yaml"), d.as_str())).collect();
            let (set, _) = ResourceSet::load(files.iter().map(|(n, t)| (n.as_str(), *t)), UnknownFields::Reject).unwrap();
            kuma_policy::gateway::select_gateway(&set, "default", &tags).map(|(r, _)| r.meta.name.clone())
        };
        prop_assert_eq!(pick(&docs), pick(&shuffled));
    }
}
