//! Starting and stopping: SIGTERM with an Envoy connected, a port already
//! in use, and the private folder `run` keeps Envoy's bootstrap in.

mod support;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use support::*;

fn gateway_yaml(port: u16) -> String {
    format!(
        "type: Dataplane\nmesh: default\nname: gw-1\nnetworking:\n  address: 127.0.0.1\n  gateway:\n    type: BUILTIN\n    tags: {{kuma.io/service: edge}}\n\
         ---\ntype: MeshGateway\nmesh: default\nname: edge\nselectors: [{{match: {{kuma.io/service: edge}}}}]\n\
         conf: {{listeners: [{{port: {port}, protocol: HTTP}}]}}\n"
    )
}

#[test]
fn serve_stops_within_seconds_of_sigterm_with_envoy_connected() {
    let dir = temp_dir("sigterm-serve");
    std::fs::write(dir.join("gw.yaml"), gateway_yaml(free_port())).unwrap();
    let xds = format!("127.0.0.1:{}", free_port());
    let mut serve = Command::new(env!("CARGO_BIN_EXE_kuma-gateway"))
        .arg("serve")
        .arg(&dir)
        .args(["--xds-address", &xds, "--admin-address", "127.0.0.1:0", "--allow-unauthenticated"])
        .env("RUST_LOG", "info")
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let log = capture_stderr(&mut serve);
    let admin = free_port();
    let bootstrap = Command::new(env!("CARGO_BIN_EXE_kuma-gateway"))
        .args(["bootstrap", "--dataplane", "gw-1", "--xds-address", &xds, "--admin-port", &admin.to_string()])
        .output()
        .unwrap();
    // Outside the folder serve reads: there the bootstrap would be read as a
    // resource file (and refused), at start if serve reads the folder after
    // this is written, which `bootstrap`'s 10 ms made likely.
    let envoy_dir = temp_dir("sigterm-envoy");
    std::fs::write(envoy_dir.join("bootstrap.yaml"), bootstrap.stdout).unwrap();
    let mut envoy = Command::new(envoy_bin())
        .arg("-c")
        .arg(envoy_dir.join("bootstrap.yaml"))
        .args(["--base-id", "41", "-l", "warning"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let start = Instant::now();
    while !log.lock().unwrap().contains("v3.Listener\" version=") {
        assert!(start.elapsed() < Duration::from_secs(30), "Envoy never ACKed; log:\n{}", log.lock().unwrap());
        std::thread::sleep(Duration::from_millis(50));
    }
    // Envoy holds its ADS stream open; SIGTERM must still stop serve.
    let stopped = Instant::now();
    Command::new("kill").args(["-TERM", &serve.id().to_string()]).status().unwrap();
    while serve.try_wait().unwrap().is_none() {
        assert!(stopped.elapsed() < Duration::from_secs(10), "serve still running 10 s after SIGTERM");
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = envoy.kill();
    let _ = envoy.wait();
    assert!(log.lock().unwrap().contains("ADS server stopped"), "{}", log.lock().unwrap());
}

#[test]
fn a_port_in_use_is_refused_clearly() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = taken.local_addr().unwrap().to_string();
    let out = Command::new(env!("CARGO_BIN_EXE_kuma-gateway"))
        .current_dir(root())
        .args(["serve", "examples/edge-gateway", "--xds-address", &address, "--admin-address", "127.0.0.1:0"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains(&format!("cannot listen on {address}: the port is in use")), "{stderr}");
    // The admin endpoint's port, the same way.
    let out = Command::new(env!("CARGO_BIN_EXE_kuma-gateway"))
        .current_dir(root())
        .args(["serve", "examples/edge-gateway", "--xds-address", "127.0.0.1:0", "--admin-address", &address])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains(&format!("cannot listen on {address} (admin): the port is in use")), "{stderr}");
}

#[test]
fn run_keeps_the_bootstrap_in_a_private_folder_and_stops_on_sigterm() {
    use std::os::unix::fs::PermissionsExt;
    let dir = temp_dir("run-private");
    std::fs::write(dir.join("gw.yaml"), gateway_yaml(free_port())).unwrap();
    let mut gw = Gateway::start(&dir, "gw-1", 42);
    let log = gw.log();
    let path = log
        .lines()
        .find_map(|l| l.split("Envoy bootstrap written path=").nth(1))
        .unwrap_or_else(|| panic!("no bootstrap path in the log:\n{log}"))
        .trim()
        .to_string();
    let folder = std::path::Path::new(&path).parent().unwrap().to_path_buf();
    let mode = std::fs::metadata(&folder).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o700, "{}", folder.display());
    assert!(!folder.ends_with(format!("kuma-gateway-{}", std::process::id())), "a random name, not the pid");
    let took = gw.terminate();
    assert!(took < Duration::from_secs(10), "run stopped {took:?} after SIGTERM");
    assert!(!folder.exists(), "the folder is removed when run ends");
}
