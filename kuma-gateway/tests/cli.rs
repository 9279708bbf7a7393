//! The command-line interface: exit codes, where output goes, warnings.

use std::process::Command;

fn kuma_gateway(args: &[&str]) -> (i32, String, String) {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_kuma-gateway")).current_dir(root).args(args).output().unwrap();
    (out.status.code().unwrap_or(-1), String::from_utf8(out.stdout).unwrap(), String::from_utf8(out.stderr).unwrap())
}

fn temp_file(name: &str, text: &str) -> String {
    let dir = std::env::temp_dir().join(format!("kuma-gateway-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path.display().to_string()
}

#[test]
fn validate_and_render_the_examples() {
    let (code, out, _) = kuma_gateway(&["validate", "examples/"]);
    assert_eq!(code, 0);
    assert!(out.contains("valid"));
    let (code, out, _) = kuma_gateway(&["render", "examples/", "--dataplane", "gateway-instance-1"]);
    assert_eq!(code, 0);
    assert!(out.contains("edge-gateway:HTTP:8080"));
    let (code, out, _) = kuma_gateway(&[
        "render",
        "examples/",
        "--dataplane",
        "kong-01",
        "--format",
        "json",
        "--bootstrap",
        "--admin-port",
        "9901",
    ]);
    assert_eq!(code, 0);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["admin"]["address"]["socketAddress"]["portValue"], 9901);
}

#[test]
fn invalid_input_prints_the_report_and_nothing_on_stdout() {
    let bad = temp_file(
        "bad.yaml",
        "type: MeshGateway\nname: gw\nselectors: [{match: {kuma.io/service: x}}]\nconf:\n  listeners:\n  - port: 70000\n    protocol: HTTP\n",
    );
    let (code, out, err) = kuma_gateway(&["render", &bad, "--dataplane", "x"]);
    assert_eq!(code, 1);
    assert!(out.is_empty());
    assert!(err.contains("bad.yaml:6: MeshGateway default/gw: conf.listeners[0].port:"), "{err}");
    let (code, _, _) = kuma_gateway(&["validate", &bad]);
    assert_eq!(code, 1);
}

#[test]
fn ignored_policies_are_named_in_a_warning() {
    let tr = temp_file(
        "tr.yaml",
        "type: TrafficRoute\nname: route-all\nsources: [{match: {kuma.io/service: '*'}}]\ndestinations: [{match: {kuma.io/service: '*'}}]\nconf: {destination: {kuma.io/service: '*'}}\n",
    );
    let (code, _, err) = kuma_gateway(&["validate", "examples/edge-gateway", &tr]);
    assert_eq!(code, 0);
    assert!(
        err.contains("tr.yaml:1: warning: TrafficRoute default/route-all: TrafficRoute is ignored by gateways"),
        "{err}"
    );
    let (code, out, err) = kuma_gateway(&["render", "examples/edge-gateway", &tr, "--dataplane", "gateway-instance-1"]);
    assert_eq!(code, 0);
    assert!(!out.is_empty() && err.contains("TrafficRoute is ignored"));
}

#[test]
fn bootstrap_points_envoy_at_serve() {
    let (code, out, _) = kuma_gateway(&[
        "bootstrap",
        "--dataplane",
        "gw-1",
        "--mesh",
        "m",
        "--xds-address",
        "127.0.0.1:5678",
        "--format",
        "json",
    ]);
    assert_eq!(code, 0);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["node"]["id"], "gw-1");
    assert_eq!(v["node"]["metadata"]["mesh"], "m");
    assert_eq!(v["dynamicResources"]["adsConfig"]["apiType"], "DELTA_GRPC", "incremental xDS by default");
    let (code, out, _) =
        kuma_gateway(&["bootstrap", "--dataplane", "gw-1", "--xds-protocol", "sotw", "--format", "json"]);
    assert_eq!(code, 0);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["dynamicResources"]["adsConfig"]["apiType"], "GRPC");
}

#[test]
fn explain_exit_codes() {
    let args = ["explain", "examples/", "--dataplane", "gateway-instance-1", "--port", "8080", "--host"];
    let (code, out, _) = kuma_gateway(&[&args[..], &["foo.example.com", "--path", "/api/x"]].concat());
    assert_eq!(code, 0, "{out}");
    let (code, out, _) = kuma_gateway(&[&args[..], &["nope.example.com"]].concat());
    assert_eq!(code, 3, "{out}");
}

#[test]
fn run_fails_clearly_when_envoy_cannot_start() {
    let port = || std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port().to_string();
    let xds = format!("127.0.0.1:{}", port());
    let admin = port();
    let base = [
        "run",
        "examples/edge-gateway",
        "--dataplane",
        "gateway-instance-1",
        "--xds-address",
        &xds,
        "--admin-port",
        &admin,
        "--admin-address",
        "127.0.0.1:0",
    ];
    let (code, _, err) = kuma_gateway(&[&base[..], &["--envoy-bin", "/bin/false"]].concat());
    assert_eq!(code, 2);
    assert!(err.contains("Envoy could not start"), "{err}");
    let (code, _, err) = kuma_gateway(&[&base[..], &["--envoy-bin", "/no/such/envoy"]].concat());
    assert_eq!(code, 2);
    assert!(err.contains("--envoy-bin /no/such/envoy: no such file"), "{err}");
}

/// The log lines `serve` writes before it is ready, with stderr a pipe and
/// `NO_COLOR` unset (the check must come from the terminal test itself).
fn serve_log(extra: &[&str]) -> Vec<String> {
    use std::io::BufRead;
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let mut child = Command::new(env!("CARGO_BIN_EXE_kuma-gateway"))
        .current_dir(root)
        .args(["serve", "examples/edge-gateway", "--xds-address", &format!("127.0.0.1:{port}")])
        .args(["--admin-address", "127.0.0.1:0"])
        .args(extra)
        .env_remove("NO_COLOR")
        .env("RUST_LOG", "info")
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = Vec::new();
    for line in std::io::BufReader::new(child.stderr.take().unwrap()).lines() {
        let line = line.unwrap();
        let ready = line.contains("ADS server listening");
        lines.push(line);
        if ready {
            break;
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    assert!(lines.iter().any(|l| l.contains("ADS server listening")), "{lines:?}");
    lines
}

#[test]
fn logs_to_a_pipe_have_no_colour_codes() {
    let lines = serve_log(&[]);
    assert!(lines.iter().all(|l| !l.contains('\u{1b}')), "{lines:?}");
}

#[test]
fn json_logs_are_one_object_a_line() {
    let lines = serve_log(&["--log-format", "json"]);
    for line in &lines {
        let v: serde_json::Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("{line}: {e}"));
        assert!(v["level"].is_string() && v["fields"]["message"].is_string(), "{line}");
    }
    assert!(lines.iter().any(|l| l.contains(r#""resources":"#)), "structured fields stay fields: {lines:?}");
}
