//! Translation time of generated gateways (100 / 1,000 / 10,000 route rules
//! over 10 / 100 / 1,000 services), beside the time to merely prost-encode
//! the resources it produces (the floor any translator pays).
//! Target: 10,000 routes in at most 3x the encode time and under 50 ms.
//! `retranslate`: one route changed on a 20-host gateway, translated and
//! encoded whole, and rebuilding only its host (`translate_encoded`).

#![allow(missing_docs)] // criterion_group! generates undocumented items

use std::fmt::Write as _;

// The allocator the `kuma-gateway` binary uses; translation allocates many
// small strings and vectors, where glibc's malloc spends more time than the
// translation itself.
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use kuma_model::{ResourceSet, UnknownFields};
use kuma_xds_gen::ResourceType;

/// One gateway, `routes` rules spread over resources of 100 rules each, every
/// rule a PREFIX match to one of `services` services with one endpoint each.
fn gateway(routes: usize, services: usize) -> ResourceSet {
    let mut y = String::from(
        "type: Dataplane\nname: gw\nnetworking:\n  address: 127.0.0.1\n  gateway: {type: BUILTIN, tags: {kuma.io/service: edge}}\n---\ntype: MeshGateway\nname: edge\nselectors: [{match: {kuma.io/service: edge}}]\nconf: {listeners: [{port: 8080, protocol: HTTP}]}\n",
    );
    for s in 0..services {
        let _ = write!(
            y,
            "---\ntype: Dataplane\nname: svc-{s}-1\nnetworking:\n  address: 10.0.{}.{}\n  inbound: [{{port: 8080, tags: {{kuma.io/service: svc-{s}, kuma.io/protocol: http}}}}]\n",
            s / 250,
            s % 250 + 1
        );
    }
    for r in 0..routes.div_ceil(100) {
        let _ = write!(
            y,
            "---\ntype: MeshGatewayRoute\nname: route-{r}\nselectors: [{{match: {{kuma.io/service: edge}}}}]\nconf:\n  http:\n    rules:\n"
        );
        for i in 0..100.min(routes - r * 100) {
            let n = r * 100 + i;
            let _ = write!(
                y,
                "    - matches: [{{path: {{match: PREFIX, value: /r{n}/items}}, headers: [{{name: x-tenant, value: t{}}}]}}]\n      backends: [{{destination: {{kuma.io/service: svc-{}}}}}]\n",
                n % 7,
                n % services
            );
        }
    }
    ResourceSet::load([("bench.yaml", y.as_str())], UnknownFields::Reject).unwrap().0
}

fn encode_all(snapshot: &kuma_xds_gen::GatewaySnapshot) -> usize {
    ResourceType::ALL.iter().map(|t| snapshot.resources(*t).iter().map(|(_, a)| a.value.len()).sum::<usize>()).sum()
}

fn bench(c: &mut Criterion) {
    let mut group = c.benchmark_group("translate");
    group.sample_size(20);
    for (routes, services) in [(100, 10), (1_000, 100), (10_000, 1_000)] {
        let set = gateway(routes, services);
        let snapshot = kuma_xds_gen::translate(&set, "default", "gw").unwrap();
        let label = format!("{routes}r-{services}s");
        group.bench_with_input(BenchmarkId::new("translate", &label), &set, |b, set| {
            b.iter(|| kuma_xds_gen::translate(set, "default", "gw").unwrap())
        });
        // What `kuma-xds-server` runs: translation recording what it read.
        group.bench_with_input(BenchmarkId::new("translate-with-reads", &label), &set, |b, set| {
            b.iter(|| kuma_xds_gen::translate_with_reads(set, "default", "gw", std::time::SystemTime::now()).0.unwrap())
        });
        group.bench_with_input(BenchmarkId::new("encode-only", &label), &snapshot, |b, s| b.iter(|| encode_all(s)));
    }
    group.finish();
}

/// 10,000 PREFIX rules in 100 MeshGatewayRoutes over 20 hosts (one file
/// each, parsed once, as the file store keeps them); `changed` gives route
/// 0 another path, leaving every other resource shared with the first set.
fn hosts_gateway(files: &mut Vec<kuma_model::ParsedFile>, changed: bool) -> ResourceSet {
    let parse = |name: &str, text: &str| kuma_model::parse_file(name, text, UnknownFields::Reject);
    if files.is_empty() {
        files.push(parse(
            "gw.yaml",
            "type: Dataplane\nname: gw\nnetworking:\n  address: 127.0.0.1\n  gateway: {type: BUILTIN, tags: {kuma.io/service: edge}}\n---\ntype: MeshGateway\nname: edge\nselectors: [{match: {kuma.io/service: edge}}]\nconf: {listeners: [{port: 8080, protocol: HTTP}]}\n---\ntype: Dataplane\nname: web\nnetworking:\n  address: 10.0.0.1\n  inbound: [{port: 80, tags: {kuma.io/service: web, kuma.io/protocol: http}}]\n",
        ));
        for r in 0..100 {
            files.push(parse("r.yaml", &hosts_route(r, "")));
        }
    }
    files[1] = parse("r.yaml", &hosts_route(0, if changed { "-changed" } else { "" }));
    ResourceSet::assemble(files.iter()).unwrap().0
}

fn hosts_route(r: usize, suffix: &str) -> String {
    let mut y = format!(
        "type: MeshGatewayRoute\nname: route-{r}\nselectors: [{{match: {{kuma.io/service: edge}}}}]\nconf:\n  http:\n    hostnames: [h{}.example.com]\n    rules:\n",
        r % 20
    );
    for i in 0..100 {
        let _ = write!(
            y,
            "    - matches: [{{path: {{match: PREFIX, value: /r{r}-{i}{suffix}}}}}]\n      backends: [{{destination: {{kuma.io/service: web}}}}]\n"
        );
    }
    y
}

/// A change to one route of a 20-host gateway: a whole translation and
/// encoding, against [`kuma_xds_gen::translate_encoded`] rebuilding only
/// the host the route is on.
fn retranslate(c: &mut Criterion) {
    let mut files = Vec::new();
    let sets = [hosts_gateway(&mut files, false), hosts_gateway(&mut files, true)];
    let at = std::time::SystemTime::now();
    let mut group = c.benchmark_group("retranslate");
    group.sample_size(20);
    let mut i = 0usize;
    group.bench_function("whole/10000r-20h", |b| {
        b.iter(|| {
            i += 1;
            let snapshot = kuma_xds_gen::translate_at(&sets[i % 2], "default", "gw", at).unwrap();
            kuma_xds_gen::EncodedSnapshot::encode(&snapshot)
        })
    });
    let mut reuse = kuma_xds_gen::HostReuse::default();
    // The first translation builds every host; each one after it, of the
    // other set, one.
    let _ = kuma_xds_gen::translate_encoded(&sets[0], "default", "gw", at, &mut reuse);
    let mut j = 0;
    group.bench_function("reusing-hosts/10000r-20h", |b| {
        b.iter(|| {
            j += 1;
            let (encoded, _) = kuma_xds_gen::translate_encoded(&sets[j % 2], "default", "gw", at, &mut reuse);
            assert_eq!(reuse.last_counts().1, 1, "one host built");
            encoded.unwrap()
        })
    });
    group.finish();
}

criterion_group!(benches, bench, retranslate);
criterion_main!(benches);
