//! Parse and validate a generated 10,000-resource file.
#![allow(missing_docs)] // criterion_group! generates undocumented items

use std::fmt::Write as _;

use criterion::{Criterion, criterion_group, criterion_main};
use kuma_model::{ResourceSet, UnknownFields};

/// 10,000 resources: per group of ten, a gateway, two routes, five service
/// data planes and two policies.
fn generate(resources: usize) -> String {
    let mut out = String::new();
    for g in 0..resources / 10 {
        let _ = write!(
            out,
            "---\ntype: MeshGateway\nmesh: default\nname: gw-{g}\nselectors:\n- match:\n    kuma.io/service: gw-{g}\nconf:\n  listeners:\n  - port: 8080\n    protocol: HTTP\n    hostname: '*.example.com'\n    tags: {{port: http/8080}}\n  - port: 8443\n    protocol: HTTPS\n    hostname: foo.example.com\n    tls: {{mode: TERMINATE, certificates: [{{inlineString: cert}}]}}\n"
        );
        for r in 0..2 {
            let _ = write!(
                out,
                "---\ntype: MeshGatewayRoute\nmesh: default\nname: route-{g}-{r}\nselectors:\n- match: {{kuma.io/service: gw-{g}}}\nconf:\n  http:\n    hostnames: [foo.example.com]\n    rules:\n    - matches:\n      - path: {{match: PREFIX, value: /api/{r}}}\n        method: GET\n        headers: [{{name: x-version, value: 'v[0-9]+', match: REGEX}}]\n      filters:\n      - request_header: {{set: [{{name: x-route, value: r{r}}}]}}\n      backends:\n      - weight: 90\n        destination: {{kuma.io/service: svc-{g}-{r}}}\n      - weight: 10\n        destination: {{kuma.io/service: svc-{g}-{r}, version: v2}}\n"
            );
        }
        for d in 0..5 {
            let _ = write!(
                out,
                "---\ntype: Dataplane\nmesh: default\nname: dp-{g}-{d}\nnetworking:\n  address: 10.0.{}.{}\n  inbound:\n  - port: 8080\n    tags: {{kuma.io/service: svc-{g}-{}, kuma.io/protocol: http}}\n",
                g % 250,
                d + 1,
                d % 2
            );
        }
        let _ = write!(
            out,
            "---\ntype: Timeout\nmesh: default\nname: timeout-{g}\nsources: [{{match: {{kuma.io/service: gw-{g}}}}}]\ndestinations: [{{match: {{kuma.io/service: '*'}}}}]\nconf: {{connectTimeout: 5s, http: {{requestTimeout: 15s}}}}\n---\ntype: Retry\nmesh: default\nname: retry-{g}\nsources: [{{match: {{kuma.io/service: gw-{g}}}}}]\ndestinations: [{{match: {{kuma.io/service: '*'}}}}]\nconf: {{http: {{numRetries: 3, perTryTimeout: 1s}}}}\n"
        );
    }
    out
}

fn bench(c: &mut Criterion) {
    let text = generate(10_000);
    let (set, _) = ResourceSet::load([("bench.yaml", text.as_str())], UnknownFields::Reject).unwrap();
    assert_eq!(set.len(), 10_000);
    let mut group = c.benchmark_group("load");
    group.sample_size(10);
    group.bench_function("parse+validate 10k resources", |b| {
        b.iter(|| ResourceSet::load([("bench.yaml", text.as_str())], UnknownFields::Reject).unwrap())
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
