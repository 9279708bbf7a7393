//! Connection-policy matching (10,000 policies against 1,000 destinations)
//! and precedence-sorting 10,000 route matches.
#![allow(missing_docs)] // criterion_group! generates undocumented items

use std::fmt::Write as _;

use criterion::{Criterion, criterion_group, criterion_main};
use kuma_model::{Kind, ResourceSet, Tags, UnknownFields};
use kuma_policy::connection::{by_source, for_destination};
use kuma_policy::precedence::MatchOrigin;
use kuma_policy::{MatchSummary, PathSpecificity};

fn policies(n: usize) -> String {
    let mut out = String::new();
    for i in 0..n {
        let dest = if i % 10 == 0 { "*".to_string() } else { format!("svc-{}", i % 1000) };
        let _ = write!(
            out,
            "---\ntype: Timeout\nname: t-{i}\nsources: [{{match: {{kuma.io/service: gw}}}}]\ndestinations: [{{match: {{kuma.io/service: '{dest}'}}}}]\nconf: {{connectTimeout: 1s}}\n"
        );
    }
    out
}

fn summaries(n: usize) -> Vec<MatchSummary> {
    (0..n)
        .map(|i| {
            let path = match i % 4 {
                0 => PathSpecificity::Exact(format!("/p/{}", i % 97)),
                1 => PathSpecificity::Prefix(format!("/p/{}/", i % 89)),
                2 => PathSpecificity::Regex(format!("/r/{}.*", i % 83)),
                _ => PathSpecificity::None,
            };
            MatchSummary {
                path,
                method: i % 3 == 0,
                headers: i % 5,
                query_parameters: i % 2,
                origin: MatchOrigin {
                    creation: (true, None),
                    route: format!("r-{}", i % 100),
                    rule: i % 7,
                    match_index: 0,
                },
            }
        })
        .collect()
}

fn bench(c: &mut Criterion) {
    let text = policies(10_000);
    let (set, _) = ResourceSet::load([("p.yaml", text.as_str())], UnknownFields::Reject).unwrap();
    let listener: Tags = [("kuma.io/service".to_string(), "gw".to_string())].into();
    let destinations: Vec<Tags> =
        (0..1000).map(|i| [("kuma.io/service".to_string(), format!("svc-{i}"))].into()).collect();
    let mut group = c.benchmark_group("matching");
    group.sample_size(10);
    group.bench_function("10k policies x 1k destinations", |b| {
        b.iter(|| {
            let candidates = by_source(&set, "default", Kind::Timeout, &listener);
            destinations.iter().filter(|d| for_destination(&candidates, d).is_some()).count()
        })
    });
    let routes = summaries(10_000);
    group.bench_function("sort 10k route matches", |b| {
        b.iter(|| {
            let mut r = routes.clone();
            r.sort();
            r
        })
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
