//! Universal and Kubernetes forms, key styles, and the bundled examples.

use std::fs;
use std::path::Path;

use kuma_model::{Kind, ResourceSet, Spec, UnknownFields, parse_file};

fn load(text: &str) -> ResourceSet {
    match ResourceSet::load([("test.yaml", text)], UnknownFields::Reject) {
        Ok((set, _)) => set,
        Err(e) => panic!("{e}"),
    }
}

#[test]
fn universal_and_kubernetes_forms_agree() {
    let universal = load(
        "type: MeshGatewayRoute\nmesh: demo\nname: r\nselectors:\n- match:\n    kuma.io/service: gw\nconf:\n  http:\n    rules:\n    - matches:\n      - path: {match: PREFIX, value: /api}\n        query_parameters: [{name: a, value: b}]\n      backends:\n      - destination: {kuma.io/service: api}\n",
    );
    let kubernetes = load(
        "apiVersion: kuma.io/v1alpha1\nkind: MeshGatewayRoute\nmesh: demo\nmetadata:\n  name: r\nspec:\n  selectors:\n  - match:\n      kuma.io/service: gw\n  conf:\n    http:\n      rules:\n      - matches:\n        - path: {match: PREFIX, value: /api}\n          queryParameters: [{name: a, value: b}]\n        backends:\n        - destination: {kuma.io/service: api}\n",
    );
    let a = universal.get(Kind::MeshGatewayRoute, "demo", "r").unwrap();
    let b = kubernetes.get(Kind::MeshGatewayRoute, "demo", "r").unwrap();
    assert_eq!(a.spec, b.spec);
}

#[test]
fn kubernetes_mesh_comes_from_label_and_namespaced_names_get_the_namespace() {
    let set = load(
        "apiVersion: kuma.io/v1alpha1\nkind: MeshGatewayInstance\nmetadata:\n  name: edge\n  namespace: gateways\n  labels: {kuma.io/mesh: other}\nspec:\n  replicas: 2\n",
    );
    let r = set.get(Kind::MeshGatewayInstance, "other", "edge.gateways").unwrap();
    let Spec::MeshGatewayInstance(spec) = &r.spec else { panic!() };
    assert_eq!(spec.replicas, 2);
}

#[test]
fn kubernetes_secrets_are_core_secrets() {
    let set = load(
        "apiVersion: v1\nkind: Secret\nmetadata:\n  name: cert\n  namespace: kuma-system\n  labels: {kuma.io/mesh: default}\ntype: system.kuma.io/secret\ndata:\n  value: aGVsbG8=\n",
    );
    let Spec::Secret(s) = &set.get(Kind::Secret, "default", "cert").unwrap().spec else { panic!() };
    assert_eq!(s.data, b"hello");
}

#[test]
fn json_documents_load() {
    let set = load(
        r#"{"type": "Mesh", "name": "default", "mtls": {"enabledBackend": "ca", "backends": [{"name": "ca", "type": "builtin"}]}}"#,
    );
    assert!(set.mesh("default").unwrap().mtls_enabled());
}

#[test]
fn creation_time_orders_resources() {
    let set = load(
        "type: Timeout\nname: b\nmesh: default\ncreationTime: '2024-01-01T00:00:00Z'\nsources: [{match: {kuma.io/service: '*'}}]\ndestinations: [{match: {kuma.io/service: '*'}}]\nconf: {connectTimeout: 1s}\n---\ntype: Timeout\nname: a\nmesh: default\ncreationTime: '2025-01-01T00:00:00Z'\nsources: [{match: {kuma.io/service: '*'}}]\ndestinations: [{match: {kuma.io/service: '*'}}]\nconf: {connectTimeout: 2s}\n",
    );
    let a = set.get(Kind::Timeout, "default", "a").unwrap();
    let b = set.get(Kind::Timeout, "default", "b").unwrap();
    assert!(b.meta.creation_order() < a.meta.creation_order());
}

#[test]
fn duplicates_and_missing_secrets_are_refused_and_nothing_is_applied() {
    let gw = "type: MeshGateway\nname: gw\nselectors: [{match: {kuma.io/service: gw}}]\nconf:\n  listeners:\n  - port: 443\n    protocol: HTTPS\n    tls: {mode: TERMINATE, certificates: [{secret: missing}]}\n";
    let err = ResourceSet::load([("a.yaml", gw), ("b.yaml", gw)], UnknownFields::Reject).unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains("b.yaml:1: MeshGateway default/gw: name: duplicate resource: also defined at a.yaml:1"),
        "{text}"
    );
    assert!(
        text.contains("a.yaml:1: MeshGateway default/gw: conf.listeners[0].tls.certificates[0].secret: Secret \"missing\" not found in mesh \"default\""),
        "{text}"
    );
}

#[test]
fn cross_mesh_listeners_need_mesh_mtls() {
    let gw = "type: MeshGateway\nname: gw\nselectors: [{match: {kuma.io/service: gw}}]\nconf:\n  listeners:\n  - port: 80\n    protocol: HTTP\n    crossMesh: true\n";
    let err = ResourceSet::load([("gw.yaml", gw)], UnknownFields::Reject).unwrap_err();
    assert!(
        err.to_string().contains(
            "gw.yaml:1: MeshGateway default/gw: conf.listeners[0].crossMesh: mTLS must be enabled for crossMesh-enabled MeshGateways"
        ),
        "{err}"
    );
    let mesh = "type: Mesh\nname: default\nmtls: {enabledBackend: ca-1, backends: [{name: ca-1, type: builtin}]}\n";
    assert!(ResourceSet::load([("gw.yaml", gw), ("mesh.yaml", mesh)], UnknownFields::Reject).is_ok());
}

#[test]
fn bundled_examples_validate() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples");
    let mut files = Vec::new();
    let mut stack = vec![root];
    while let Some(dir) = stack.pop() {
        for entry in fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "yaml") {
                files.push(path);
            }
        }
    }
    files.sort();
    assert!(files.len() >= 5, "{files:?}");
    for file in files {
        let text = fs::read_to_string(&file).unwrap();
        let parsed = parse_file(&file.display().to_string(), &text, UnknownFields::Reject);
        assert!(
            parsed.diagnostics().is_empty(),
            "{:?}",
            parsed.diagnostics().iter().map(ToString::to_string).collect::<Vec<_>>()
        );
        assert!(!parsed.resources().is_empty());
    }
}

#[test]
fn a_byte_order_mark_is_not_content() {
    let text = "\u{feff}type: Mesh\nname: default\n";
    let (set, _) = kuma_model::ResourceSet::load([("m.yaml", text)], UnknownFields::Reject).unwrap();
    assert_eq!(set.len(), 1);
}
