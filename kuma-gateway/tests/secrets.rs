//! No key material in any message: every error path that involves TLS
//! material (listener certificates, a mesh CA), through `validate` and
//! `render`; no message may contain any part of the private key.

mod support;

use std::process::Command;

use support::*;

/// Runs the binary: what it says about the input (stderr, and stdout for
/// `validate`; `render` prints the config itself, keys included, on stdout).
/// Also whether the command failed.
fn messages(args: &[&str]) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_kuma-gateway")).args(args).output().unwrap();
    let stdout = if args[0] == "validate" { String::from_utf8_lossy(&out.stdout).into_owned() } else { String::new() };
    (!out.status.success(), format!("{stdout}{}", String::from_utf8_lossy(&out.stderr)))
}

/// Every 12-character piece of the key's base64 body lines.
fn key_pieces(key: &str) -> Vec<String> {
    key.lines()
        .filter(|l| !l.starts_with("-----") && l.len() >= 12)
        .flat_map(|l| (0..=l.len() - 12).step_by(6).map(move |i| l[i..i + 12].to_string()))
        .collect()
}

fn gateway(secret_data: &str, mesh_extra: &str) -> String {
    format!(
        "type: Mesh\nname: default\n{mesh_extra}---\n\
type: Dataplane\nname: gw\nnetworking:\n  address: 127.0.0.1\n  gateway: {{type: BUILTIN, tags: {{kuma.io/service: gw}}}}\n---\n\
type: MeshGateway\nname: gw\nselectors: [{{match: {{kuma.io/service: gw}}}}]\n\
conf: {{listeners: [{{port: 8443, protocol: HTTPS, hostname: a.example.com, tls: {{mode: TERMINATE, certificates: [{{secret: tls-cert}}]}}}}]}}\n---\n\
type: Secret\nname: tls-cert\ndata: {secret_data}\n---\n\
type: MeshGatewayRoute\nname: r\nselectors: [{{match: {{kuma.io/service: gw}}}}]\n\
conf: {{http: {{rules: [{{matches: [{{path: {{match: PREFIX, value: /}}}}], backends: [{{destination: {{kuma.io/service: web}}}}]}}]}}}}\n---\n\
type: Dataplane\nname: web\nnetworking:\n  address: 127.0.0.1\n  inbound: [{{port: 9000, tags: {{kuma.io/service: web, kuma.io/protocol: http}}}}]\n"
    )
}

#[test]
fn no_error_shows_any_part_of_a_private_key() {
    let certs = root().join("testdata/certs");
    let key = std::fs::read_to_string(certs.join("rsa.key")).unwrap();
    let cert = std::fs::read_to_string(certs.join("rsa.crt")).unwrap();
    let pieces = key_pieces(&key);
    assert!(pieces.len() > 100);
    let header_broken = key.replacen("-----BEGIN PRIVATE KEY-----", "-----BEGIN PRIVATE KEY", 1);
    let end_broken = key.replacen("-----END PRIVATE KEY-----", "-----END PRIVATE KEY", 1);
    let truncated: String = key.lines().take(5).map(|l| format!("{l}\n")).collect();
    let bundles = [
        ("a key whose BEGIN line lacks its dashes", format!("{cert}{header_broken}")),
        ("a key whose END line lacks its dashes", format!("{cert}{end_broken}")),
        ("a key without a certificate", key.clone()),
        ("two keys", format!("{cert}{key}{key}")),
        ("an unknown block", format!("{cert}{}", key.replace("PRIVATE KEY", "SECRET THING"))),
        ("a truncated key", format!("{cert}{truncated}")),
        ("not PEM at all", key.lines().filter(|l| !l.starts_with("-----")).collect::<Vec<_>>().join("\n")),
    ];
    let dir = temp_dir("secrets");
    let (mut checked, mut failures) = (0, 0);
    for (what, bundle) in &bundles {
        let data = base64(bundle.as_bytes());
        // The same material as a listener certificate, and as a mesh CA key.
        let ca = format!(
            "mtls: {{enabledBackend: ca, backends: [{{name: ca, type: provided, conf: {{cert: {{secret: ca-cert}}, key: {{secret: ca-key}}}}}}]}}\n---\n\
type: Secret\nname: ca-cert\ndata: {}\n---\ntype: Secret\nname: ca-key\ndata: {data}\n",
            base64(cert.as_bytes())
        );
        for (case, text) in
            [("listener", gateway(&data, "")), ("mesh CA", gateway(&base64(format!("{cert}{key}").as_bytes()), &ca))]
        {
            let file = dir.join("resources.yaml");
            std::fs::write(&file, text).unwrap();
            let path = dir.to_str().unwrap();
            for args in [vec!["validate", path], vec!["render", path, "--dataplane", "gw"]] {
                let (failed, out) = messages(&args);
                failures += usize::from(failed);
                if let Some(piece) = pieces.iter().find(|p| out.contains(p.as_str())) {
                    panic!("{what} ({case}), `{}`: the output shows key material {piece:?}:\n{out}", args.join(" "));
                }
                checked += 1;
            }
        }
    }
    assert_eq!(checked, bundles.len() * 4);
    // The error paths ran: every bundle fails `validate` and `render` as a
    // listener certificate, and all but one as a mesh CA key (a key alone
    // is what a CA key Secret holds). `validate` reads PEM contents too.
    assert_eq!(failures, bundles.len() * 4 - 2, "runs that reported an error, of {checked}");
}
