//! Route matches from `kuma_model::fuzzing` (the `arbitrary` feature) in
//! precedence order: `MatchSummary`'s `Ord` must be a total order that
//! agrees with `Eq` and puts exact paths before prefixes before regexes
//! before no path, whatever the input.
#![no_main]

use std::cmp::Ordering;

use kuma_model::route::{HttpMatch, PathMatchKind};
use kuma_policy::precedence::MatchOrigin;
use kuma_policy::{MatchSummary, PathSpecificity};
use libfuzzer_sys::fuzz_target;

fn summary(m: &HttpMatch, index: usize) -> MatchSummary {
    let path = match &m.path {
        None => PathSpecificity::None,
        Some(p) => match p.kind {
            PathMatchKind::Exact => PathSpecificity::Exact(p.value.clone()),
            PathMatchKind::Prefix => PathSpecificity::Prefix(p.value.clone()),
            _ => PathSpecificity::Regex(p.value.clone()),
        },
    };
    let mut s = MatchSummary::new(path);
    s.method = m.method.as_str().is_some();
    s.headers = m.headers.len();
    s.query_parameters = m.query_parameters.len();
    s.origin = MatchOrigin { match_index: index % 3, ..MatchOrigin::default() };
    s
}

fn class(p: &PathSpecificity) -> u8 {
    match p {
        PathSpecificity::Exact(_) => 0,
        PathSpecificity::Prefix(_) => 1,
        PathSpecificity::Regex(_) => 2,
        _ => 3,
    }
}

fuzz_target!(|matches: Vec<HttpMatch>| {
    let summaries: Vec<MatchSummary> = matches.iter().take(24).enumerate().map(|(i, m)| summary(m, i)).collect();
    for a in &summaries {
        for b in &summaries {
            let ab = a.cmp(b);
            assert_eq!(ab, b.cmp(a).reverse(), "antisymmetric");
            assert_eq!(ab == Ordering::Equal, a == b, "agrees with Eq");
            if class(&a.path) < class(&b.path) {
                assert_eq!(ab, Ordering::Less, "{a:?} before {b:?}");
            }
            for c in &summaries {
                if ab != Ordering::Greater && b.cmp(c) != Ordering::Greater {
                    assert_ne!(a.cmp(c), Ordering::Greater, "transitive");
                }
            }
        }
    }
    let mut sorted = summaries.clone();
    sorted.sort();
    assert!(sorted.windows(2).all(|w| w[0] <= w[1]));
});
