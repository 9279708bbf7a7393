//! Apply → served through two control-plane replicas on one PostgreSQL
//! store: 100 times, `kuma-gateway apply` a new route (a whole process:
//! connect, read, validate every gateway, commit) and time until both
//! Envoys, one on each replica, serve it (polled every millisecond).
//! Prints p50/p99/max.
//!
//! `cargo bench -p kuma-gateway --bench store_propagation` (needs Envoy and
//! PostgreSQL's initdb/pg_ctl, as the tests do).

#![allow(missing_docs)]

#[path = "../../kuma-store/tests/support/postgres.rs"]
#[allow(unreachable_pub)]
mod postgres;
#[path = "../tests/support/mod.rs"]
#[allow(unreachable_pub)]
mod support;

use std::time::{Duration, Instant};

use support::replicas::{Envoy, Replica, apply_text, gateway_yaml, marker_yaml, ok, serves, wait};

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let pg = postgres::Postgres::start();
    let store = pg.url();
    let dir = support::temp_dir("store-propagation");
    let (one, two) = (support::backend("one"), support::backend("two"));
    let http = support::free_port();
    ok(apply_text(&dir, &store, "gateway.yaml", &gateway_yaml(http, one, two)));
    let (r1, r2) = (Replica::start(&store), Replica::start(&store));
    // Two Envoys of the same gateway would share its listener port; the
    // second one listens on its own copy of the gateway.
    let http_b = support::free_port();
    let second = gateway_yaml(http_b, one, two)
        .replace("name: gw\n", "name: gw-b\n")
        .replace("kuma.io/service: gw}", "kuma.io/service: gw-b}")
        .replace("name: root\n", "name: root-b\n")
        .replace("name: backends\n", "name: backends-b\n");
    ok(apply_text(&dir, &store, "gateway-b.yaml", &second));
    let _a = Envoy::start(&dir, "gw", &[r1.xds], 71);
    let _b = Envoy::start(&dir, "gw-b", &[r2.xds], 72);
    wait("Envoy A", Duration::from_secs(30), || support::http_get(http, "x", "/").is_some_and(|r| r.status == 200));
    wait("Envoy B", Duration::from_secs(30), || support::http_get(http_b, "x", "/").is_some_and(|r| r.status == 200));
    let mut times = Vec::new();
    for i in 0..100 {
        let marker = format!("/m-{i}");
        let text = format!(
            "{}---\n{}",
            marker_yaml(&marker),
            marker_yaml(&marker)
                .replace("name: marker\n", "name: marker-b\n")
                .replace("kuma.io/service: gw}", "kuma.io/service: gw-b}")
        );
        let start = Instant::now();
        ok(apply_text(&dir, &store, "marker.yaml", &text));
        let mut served = (false, false);
        while !(served.0 && served.1) {
            served.0 |= serves(http, &marker);
            served.1 |= serves(http_b, &marker);
            assert!(start.elapsed() < Duration::from_secs(10), "{marker} not served in 10 s");
            std::thread::sleep(Duration::from_millis(1));
        }
        times.push(start.elapsed());
    }
    times.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    println!(
        "apply -> served on both Envoys (2 replicas, PostgreSQL), 100 applies: p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        ms(times[49]),
        ms(times[98]),
        ms(times[99])
    );
}
