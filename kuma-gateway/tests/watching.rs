//! What operators and tools do to served files, with a real Envoy and a
//! client loop: editors' atomic saves, in-place rewrites, a file deleted and
//! created again, the served folder deleted and created again, Kubernetes
//! ConfigMap `..data` swaps, a symbolic link loop and an alias bomb. The
//! route to `/` exists in every version, so every request must succeed;
//! each phase ends with a marker route that must be served soon after the
//! last edit.

mod support;

use std::path::Path;
use std::time::{Duration, Instant};

use support::*;

fn gateway_yaml(http: u16, one: u16, two: u16) -> String {
    format!(
        "type: Dataplane\nname: gw\nnetworking:\n  address: 127.0.0.1\n  gateway: {{type: BUILTIN, tags: {{kuma.io/service: gw}}}}\n---\n\
type: MeshGateway\nname: gw\nselectors: [{{match: {{kuma.io/service: gw}}}}]\nconf: {{listeners: [{{port: {http}, protocol: HTTP}}]}}\n---\n\
type: Dataplane\nname: backends\nnetworking:\n  address: 127.0.0.1\n  inbound:\n  - {{port: {one}, tags: {{kuma.io/service: one, kuma.io/protocol: http}}}}\n  - {{port: {two}, tags: {{kuma.io/service: two, kuma.io/protocol: http}}}}\n---\n\
type: MeshGatewayRoute\nname: root\nselectors: [{{match: {{kuma.io/service: gw}}}}]\nconf: {{http: {{rules: [{{matches: [{{path: {{match: PREFIX, value: /}}}}], backends: [{{destination: {{kuma.io/service: one}}}}]}}]}}}}\n"
    )
}

/// A route sending exactly `marker` to backend two.
fn marker_yaml(marker: &str) -> String {
    format!(
        "type: MeshGatewayRoute\nname: marker\nselectors: [{{match: {{kuma.io/service: gw}}}}]\nconf: {{http: {{rules: [{{matches: [{{path: {{match: EXACT, value: {marker}}}}}], backends: [{{destination: {{kuma.io/service: two}}}}]}}]}}}}\n"
    )
}

/// Waits until `marker` reaches backend two: how long after the last edit.
fn served(gateway: &Gateway, http: u16, marker: &str, edited: Instant) -> Duration {
    gateway.wait_for(marker, Duration::from_secs(10), || {
        http_get(http, "x", marker).is_some_and(|r| r.status == 200 && r.body.starts_with("two"))
    });
    edited.elapsed()
}

/// Kubernetes' ConfigMap volume layout: files in a timestamped folder,
/// `..data` linking to it, and visible names linking through `..data`.
fn configmap_swap(dir: &Path, generation: usize, files: &[(&str, String)]) {
    let folder = format!("..2026_11_29_{generation:04}");
    std::fs::create_dir(dir.join(&folder)).unwrap();
    for (name, text) in files {
        std::fs::write(dir.join(&folder).join(name), text).unwrap();
    }
    let tmp = dir.join("..data_tmp");
    std::os::unix::fs::symlink(&folder, &tmp).unwrap();
    let old = std::fs::read_link(dir.join("..data")).ok();
    std::fs::rename(&tmp, dir.join("..data")).unwrap();
    for (name, _) in files {
        let link = dir.join(name);
        if std::fs::symlink_metadata(&link).is_err() {
            std::os::unix::fs::symlink(Path::new("..data").join(name), &link).unwrap();
        }
    }
    if let Some(old) = old {
        std::fs::remove_dir_all(dir.join(old)).unwrap();
    }
}

fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

#[test]
fn every_way_of_changing_files_keeps_every_route() {
    let (one, two, http) = (backend("one"), backend("two"), free_port());
    let dir = temp_dir("watching");
    let gateway_text = gateway_yaml(http, one, two);
    std::fs::write(dir.join("gateway.yaml"), &gateway_text).unwrap();
    std::fs::write(dir.join("marker.yaml"), marker_yaml("/start")).unwrap();
    let gateway = Gateway::start(&dir, "gw", 23);
    served(&gateway, http, "/start", Instant::now());
    let mut report = Vec::new();

    // 1. Atomic saves: write a temporary file, rename it over the old one.
    let client = ClientLoop::start(http);
    for i in 0..20 {
        let tmp = dir.join(".marker.yaml.tmp");
        std::fs::write(&tmp, marker_yaml(&format!("/atomic{i}"))).unwrap();
        std::fs::rename(&tmp, dir.join("marker.yaml")).unwrap();
        std::thread::sleep(Duration::from_millis(30));
    }
    report.push(("atomic saves x20", served(&gateway, http, "/atomic19", Instant::now())));
    client.finish("atomic saves", 200);

    // 2. In-place rewrites: truncate, then write in two parts.
    let client = ClientLoop::start(http);
    for i in 0..50 {
        use std::io::Write;
        let text = marker_yaml(&format!("/inplace{i}"));
        let mut f = std::fs::File::create(dir.join("marker.yaml")).unwrap();
        f.write_all(&text.as_bytes()[..40]).unwrap();
        f.flush().unwrap();
        std::thread::sleep(Duration::from_millis(5));
        f.write_all(&text.as_bytes()[40..]).unwrap();
        drop(f);
        std::thread::sleep(Duration::from_millis(10));
    }
    let edited = Instant::now();
    report.push(("in-place rewrites x50", served(&gateway, http, "/inplace49", edited)));
    client.finish("in-place rewrites", 200);

    // 3. A file deleted, then created again.
    let client = ClientLoop::start(http);
    std::fs::remove_file(dir.join("marker.yaml")).unwrap();
    std::thread::sleep(Duration::from_millis(300));
    std::fs::write(dir.join("marker.yaml"), marker_yaml("/recreated")).unwrap();
    report.push(("file deleted and recreated", served(&gateway, http, "/recreated", Instant::now())));
    client.finish("file deleted and recreated", 200);

    // 4. The served folder deleted, then created again (as a ConfigMap volume).
    let client = ClientLoop::start(http);
    std::fs::remove_dir_all(&dir).unwrap();
    gateway.wait_for("the missing folder reported", Duration::from_secs(5), || {
        gateway.log().contains("reload failed, still serving the last good config")
    });
    std::fs::create_dir(&dir).unwrap();
    configmap_swap(&dir, 0, &[("gateway.yaml", gateway_text.clone()), ("marker.yaml", marker_yaml("/folder"))]);
    report.push(("folder deleted and recreated", served(&gateway, http, "/folder", Instant::now())));
    client.finish("folder deleted and recreated", 200);

    // 5. ConfigMap updates: `..data` swapped atomically.
    let client = ClientLoop::start(http);
    for i in 1..=20 {
        configmap_swap(
            &dir,
            i,
            &[("gateway.yaml", gateway_text.clone()), ("marker.yaml", marker_yaml(&format!("/cm{i}")))],
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    report.push(("ConfigMap swaps x20", served(&gateway, http, "/cm20", Instant::now())));
    client.finish("ConfigMap swaps", 200);
    assert!(!gateway.log().contains("duplicate resource"), "a ConfigMap's files are read once");

    // 6. A symbolic link loop.
    let client = ClientLoop::start(http);
    std::os::unix::fs::symlink(".", dir.join("loop")).unwrap();
    configmap_swap(&dir, 21, &[("gateway.yaml", gateway_text.clone()), ("marker.yaml", marker_yaml("/after-loop"))]);
    report.push(("symlink loop added", served(&gateway, http, "/after-loop", Instant::now())));
    client.finish("symlink loop", 200);
    assert!(gateway.log().contains("a symbolic link leads back to"), "the loop is reported");

    // 7. An alias bomb ("billion laughs", a few hundred bytes).
    let client = ClientLoop::start(http);
    let mut bomb = String::from("a: &a [\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\"]\n");
    for (prev, name) in ["a", "b", "c", "d", "e", "f", "g", "h"].iter().zip(["b", "c", "d", "e", "f", "g", "h", "i"]) {
        bomb.push_str(&format!("{name}: &{name} [{}]\n", vec![format!("*{prev}"); 9].join(",")));
    }
    let dropped = Instant::now();
    std::fs::write(dir.join("bomb.yaml"), &bomb).unwrap();
    gateway.wait_for("the alias bomb reported", Duration::from_secs(5), || {
        gateway.log().contains("document contains excessive aliasing")
    });
    report.push(("alias bomb reported", dropped.elapsed()));
    let rss = rss_kib(gateway.pid());
    client.finish("alias bomb", 200);
    assert!(rss < 100 * 1024, "control plane RSS {rss} KiB after the bomb");
    eprintln!("control plane RSS after the bomb: {} MiB", rss / 1024);
    for (phase, took) in &report {
        eprintln!("{phase}: final state served {} ms after the last edit", took.as_millis());
        assert!(*took < Duration::from_secs(3), "{phase}: {took:?}");
    }
}
