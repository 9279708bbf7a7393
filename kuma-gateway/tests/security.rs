//! The xDS port beyond loopback: `serve` over TLS with dataplane tokens,
//! and real Envoys with and without a token; the refusals that keep the
//! port from being exposed by mistake.

mod support;

use std::io::{Read, Write};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use support::*;

fn kuma_gateway(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_kuma-gateway")).current_dir(root()).args(args).output().unwrap()
}

/// An Envoy started from `kuma-gateway bootstrap` with `extra` flags.
fn envoy(dir: &Path, name: &str, xds: &str, admin: u16, base_id: u32, extra: &[&str]) -> Child {
    let out = kuma_gateway(
        &[&["bootstrap", "--dataplane", "gw", "--xds-address", xds, "--admin-port", &admin.to_string()][..], extra]
            .concat(),
    );
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let file = dir.join(format!("{name}.yaml"));
    std::fs::write(&file, out.stdout).unwrap();
    Command::new(envoy_bin())
        .arg("-c")
        .arg(&file)
        .args(["--base-id", &base_id.to_string(), "-l", "warning"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

#[test]
fn envoys_need_a_valid_token_over_tls() {
    let dir = temp_dir("security");
    let web = backend("web");
    let http = free_port();
    std::fs::write(
        dir.join("gateway.yaml"),
        format!(
            "type: Dataplane\nname: gw\nnetworking:\n  address: 127.0.0.1\n  gateway: {{type: BUILTIN, tags: {{kuma.io/service: gw}}}}\n---\n\
type: MeshGateway\nname: gw\nselectors: [{{match: {{kuma.io/service: gw}}}}]\nconf: {{listeners: [{{port: {http}, protocol: HTTP}}]}}\n---\n\
type: MeshGatewayRoute\nname: r\nselectors: [{{match: {{kuma.io/service: gw}}}}]\nconf: {{http: {{rules: [{{matches: [{{path: {{value: /}}}}], backends: [{{destination: {{kuma.io/service: web}}}}]}}]}}}}\n---\n\
type: Dataplane\nname: web\nnetworking:\n  address: 127.0.0.1\n  inbound: [{{port: {web}, tags: {{kuma.io/service: web, kuma.io/protocol: http}}}}]\n"
        ),
    )
    .unwrap();
    // A signing key, added to the resources as a user would.
    let key = kuma_gateway(&["token", "signing-key", "--mesh", "default"]);
    assert!(key.status.success());
    let key_yaml = String::from_utf8(key.stdout).unwrap();
    assert!(key_yaml.starts_with("type: Secret\nmesh: default\nname: dataplane-token-signing-key-default-1\ndata: "));
    std::fs::write(dir.join("signing-key.yaml"), &key_yaml).unwrap();
    let dir_arg = dir.to_str().unwrap();
    let token = kuma_gateway(&["token", "generate", dir_arg, "--dataplane", "gw", "--valid-for", "1h"]);
    assert!(token.status.success(), "{}", String::from_utf8_lossy(&token.stderr));
    std::fs::write(dir.join("token"), &token.stdout).unwrap();

    let xds = format!("127.0.0.1:{}", free_port());
    let (cert, tls_key) = (root().join("testdata/certs/xds.crt"), root().join("testdata/certs/xds.key"));
    let mut serve = Command::new(env!("CARGO_BIN_EXE_kuma-gateway"))
        .args(["serve", dir_arg, "--xds-address", &xds, "--admin-address", "127.0.0.1:0"])
        .arg("--tls-cert")
        .arg(&cert)
        .arg("--tls-key")
        .arg(&tls_key)
        .env("RUST_LOG", "info")
        .env("NO_COLOR", "1")
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let log = capture_stderr(&mut serve);
    /// Stops `serve` however the test ends.
    struct Stop(std::process::Child);
    impl Drop for Stop {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let _serve = Stop(serve);
    let wait_log = |what: &str, check: &dyn Fn(&str) -> bool| {
        let start = Instant::now();
        while !check(&log.lock().unwrap()) {
            assert!(start.elapsed() < Duration::from_secs(30), "{what}: not in 30 s; log:\n{}", log.lock().unwrap());
            std::thread::sleep(Duration::from_millis(50));
        }
    };
    wait_log("the server listening", &|l| l.contains("ADS server listening"));

    // A plain-text client gets no HTTP/2 from the TLS port.
    let mut plain = std::net::TcpStream::connect(&xds).unwrap();
    plain.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    plain.write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\0\0\0\x04\0\0\0\0\0").unwrap();
    let mut reply = [0u8; 16];
    let n = plain.read(&mut reply).unwrap_or(0);
    assert!(n == 0 || reply[0] == 0x15, "a TLS alert or nothing, not an HTTP/2 frame: {:?}", &reply[..n]);

    let ca = cert.to_str().unwrap();
    let token_file = dir.join("token");
    // Bootstraps and bad tokens go elsewhere: the served folder holds resources only.
    let scratch = temp_dir("security-envoys");
    // Without a token: refused, and the log says why (never the token).
    let mut without = envoy(&scratch, "without", &xds, free_port(), 61, &["--xds-ca", ca]);
    wait_log("the refusal", &|l| l.contains("stream refused") && l.contains("no dataplane token"));
    assert!(http_get(http, "x", "/").is_none(), "no listener for an Envoy without a token");
    let _ = without.kill();
    let _ = without.wait();
    // With the token, over TLS: traffic flows.
    let mut with =
        envoy(&scratch, "with", &xds, free_port(), 62, &["--xds-ca", ca, "--token-file", token_file.to_str().unwrap()]);
    let start = Instant::now();
    while !http_get(http, "x", "/").is_some_and(|r| r.status == 200 && r.body.contains("web")) {
        assert!(start.elapsed() < Duration::from_secs(30), "no traffic in 30 s; log:\n{}", log.lock().unwrap());
        std::thread::sleep(Duration::from_millis(100));
    }
    let token_text = std::fs::read_to_string(&token_file).unwrap();
    assert!(!log.lock().unwrap().contains(token_text.trim()), "the log shows the token");

    // Revoked while connected: the stream ends and the log says why.
    let claims = token_text.trim().split('.').nth(1).unwrap();
    let claims = base64::Engine::decode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, claims).unwrap();
    let jti = serde_json::from_slice::<serde_json::Value>(&claims).unwrap()["jti"].as_str().unwrap().to_string();
    std::fs::write(
        dir.join("revocations.yaml"),
        format!("type: Secret\nname: dataplane-token-revocations-default\ndata: {}\n", base64(jti.as_bytes())),
    )
    .unwrap();
    wait_log("the revocation", &|l| l.contains("stream closed") && l.contains("revoked"));
    let _ = with.kill();
    let _ = with.wait();

    // Bad tokens, each with a real Envoy over TLS: no listener, and the log
    // says why (never the token).
    let key_pem = {
        let data = key_yaml.lines().find_map(|l| l.strip_prefix("data: ")).unwrap();
        String::from_utf8(base64::Engine::decode(&base64::engine::general_purpose::STANDARD, data).unwrap()).unwrap()
    };
    let key = kuma_xds_server::tokens::SigningKey::from_pem("1", &key_pem).unwrap();
    let claims = |name: &str, mesh: &str, at: std::time::SystemTime| {
        kuma_xds_server::tokens::DataplaneClaims::new(name, mesh, Default::default(), at, Duration::from_secs(600))
    };
    let now = std::time::SystemTime::now();
    let other_key = kuma_xds_server::tokens::SigningKey::generate("1").unwrap();
    let bad = [
        ("unknown key", other_key.issue(&claims("gw", "default", now)).unwrap(), "bad signature"),
        ("expired", key.issue(&claims("gw", "default", now - Duration::from_secs(3600))).unwrap(), "expired"),
        ("revoked", token_text.trim().to_string(), "revoked"),
        ("another data plane", key.issue(&claims("other", "default", now)).unwrap(), "not \"gw\""),
        ("another mesh", key.issue(&claims("gw", "other", now)).unwrap(), "mesh \"other\""),
    ];
    for (i, (what, token, why)) in bad.iter().enumerate() {
        let file = scratch.join(format!("bad-{i}.token"));
        std::fs::write(&file, token).unwrap();
        let refused = |l: &str| l.lines().filter(|l| l.contains("stream refused") && l.contains(why)).count();
        let before = refused(&log.lock().unwrap());
        let mut envoy = envoy(
            &scratch,
            &format!("bad-{i}"),
            &xds,
            free_port(),
            63 + i as u32,
            &["--xds-ca", ca, "--token-file", file.to_str().unwrap()],
        );
        wait_log(what, &|l| refused(l) > before);
        assert!(http_get(http, "x", "/").is_none(), "{what}: a listener was served");
        assert!(!log.lock().unwrap().contains(token.as_str()), "{what}: the log shows the token");
        let _ = envoy.kill();
        let _ = envoy.wait();
    }
}

#[test]
fn exposing_the_port_without_protection_is_refused() {
    let out = kuma_gateway(&[
        "serve",
        "examples/edge-gateway",
        "--xds-address",
        "0.0.0.0:0",
        "--admin-address",
        "127.0.0.1:0",
    ]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("not a loopback address, needs TLS: pass --tls-cert FILE --tls-key FILE"), "{err}");
    let out = Command::new(env!("CARGO_BIN_EXE_kuma-gateway"))
        .current_dir(root())
        .args(["serve", "examples/edge-gateway", "--xds-address", "0.0.0.0:0", "--admin-address", "127.0.0.1:0"])
        .args([
            "--tls-cert",
            "testdata/certs/xds.crt",
            "--tls-key",
            "testdata/certs/xds.key",
            "--allow-unauthenticated",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--allow-unauthenticated is for loopback addresses only"), "{err}");
}
