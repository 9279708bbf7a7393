//! Streams must present a valid dataplane token for the data plane they
//! name: a tonic ADS client tries each way to get someone else's config.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use base64::Engine as _;
use kuma_xds_gen::ResourceType;
use kuma_xds_gen::envoy_types::pb::envoy::config::core::v3::Node;
use kuma_xds_gen::envoy_types::pb::envoy::service::discovery::v3::aggregated_discovery_service_client::AggregatedDiscoveryServiceClient;
use kuma_xds_gen::envoy_types::pb::envoy::service::discovery::v3::{DiscoveryRequest, DiscoveryResponse};
use kuma_xds_gen::envoy_types::pb::google::protobuf::{Struct, Value, value::Kind};
use kuma_xds_gen::kuma_model::{ResourceSet, UnknownFields};
use kuma_xds_server::tokens::{DataplaneClaims, SigningKey};
use kuma_xds_server::{ResourceSetSource, XdsServer};
use tonic::Code;

/// Two gateways in mesh `default` (`gw`, tagged `zone: a`, and `other`)
/// and one in mesh `second`, each mesh with its own signing key.
fn resources(default_key: &SigningKey, second_key: &SigningKey, revoked: &[&str]) -> ResourceSet {
    let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
    let gateway = |mesh: &str, name: &str, tags: &str| {
        format!(
            "type: Dataplane\nmesh: {mesh}\nname: {name}\nnetworking:\n  address: 127.0.0.1\n  gateway: {{type: BUILTIN, tags: {{kuma.io/service: {name}{tags}}}}}\n---\n\
type: MeshGateway\nmesh: {mesh}\nname: {name}\nselectors: [{{match: {{kuma.io/service: {name}}}}}]\nconf: {{listeners: [{{port: 8080, protocol: HTTP}}]}}\n---\n"
        )
    };
    let mut yaml = String::from("type: Mesh\nname: default\n---\ntype: Mesh\nname: second\n---\n");
    yaml += &gateway("default", "gw", ", zone: a");
    yaml += &gateway("default", "other", "");
    yaml += &gateway("second", "gw", "");
    for (mesh, key) in [("default", default_key), ("second", second_key)] {
        yaml += &format!(
            "type: Secret\nmesh: {mesh}\nname: dataplane-token-signing-key-{mesh}-{}\ndata: {}\n---\n",
            key.key_id(),
            b64(&key.to_pem().unwrap())
        );
    }
    if !revoked.is_empty() {
        yaml += &format!(
            "type: Secret\nmesh: default\nname: dataplane-token-revocations-default\ndata: {}\n",
            b64(&revoked.join(","))
        );
    }
    ResourceSet::load([("auth.yaml", yaml.as_str())], UnknownFields::Reject).unwrap().0
}

fn token(key: &SigningKey, name: &str, mesh: &str, tags: &[(&str, &str)]) -> (String, String) {
    let tags: BTreeMap<String, Vec<String>> = tags.iter().map(|(k, v)| (k.to_string(), vec![v.to_string()])).collect();
    let claims = DataplaneClaims::new(name, mesh, tags, SystemTime::now(), Duration::from_secs(3600));
    (key.issue(&claims).unwrap(), claims.jti)
}

/// Opens a stream for data plane `mesh/name` with `token`, sends the first
/// request, and returns the stream's first answer.
async fn first_answer(
    address: std::net::SocketAddr,
    mesh: &str,
    name: &str,
    token: Option<&str>,
) -> (Result<DiscoveryResponse, tonic::Status>, tonic::Streaming<DiscoveryResponse>) {
    let mut client = AggregatedDiscoveryServiceClient::connect(format!("http://{address}")).await.unwrap();
    let (requests, rx) = tokio::sync::mpsc::channel(4);
    let metadata = Struct {
        fields: [("mesh".to_string(), Value { kind: Some(Kind::StringValue(mesh.into())) })].into_iter().collect(),
    };
    requests
        .send(DiscoveryRequest {
            node: Some(Node { id: name.into(), metadata: Some(metadata), ..Default::default() }),
            type_url: ResourceType::Listener.type_url(),
            ..Default::default()
        })
        .await
        .unwrap();
    // Keep the sender alive with the stream (dropping it would end the stream).
    std::mem::forget(requests);
    let mut request = tonic::Request::new(tokio_stream::wrappers::ReceiverStream::new(rx));
    if let Some(t) = token {
        request.metadata_mut().insert("authorization", t.parse().unwrap());
    }
    let mut responses = match client.stream_aggregated_resources(request).await {
        Ok(r) => r.into_inner(),
        Err(status) => panic!("the stream was not opened: {status}"),
    };
    let first = tokio::time::timeout(Duration::from_secs(5), responses.message())
        .await
        .expect("an answer within 5 s")
        .and_then(|m| m.ok_or_else(|| tonic::Status::aborted("the stream ended")));
    (first, responses)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_a_valid_token_for_the_named_data_plane_gets_its_config() {
    let (default_key, second_key) = (SigningKey::generate("1").unwrap(), SigningKey::generate("1").unwrap());
    let source = Arc::new(ResourceSetSource::new(resources(&default_key, &second_key, &[])));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(XdsServer::new(source.clone()).serve(listener, std::future::pending()));

    let (valid, valid_jti) = token(&default_key, "gw", "default", &[("zone", "a")]);
    let (answer, mut open) = first_answer(address, "default", "gw", Some(&valid)).await;
    assert_eq!(answer.expect("a valid token gets the listeners").resources.len(), 1);

    let unknown_key = SigningKey::generate("1").unwrap();
    let expired = {
        let claims = DataplaneClaims::new(
            "gw",
            "default",
            BTreeMap::new(),
            SystemTime::now() - Duration::from_secs(7200),
            Duration::from_secs(3600),
        );
        default_key.issue(&claims).unwrap()
    };
    let cases: Vec<(&str, &str, Option<String>, Code, &str)> = vec![
        ("no token", "gw", None, Code::Unauthenticated, "no dataplane token"),
        ("garbage", "gw", Some("not-a-jwt".into()), Code::Unauthenticated, "not a JWT"),
        (
            "another key",
            "gw",
            Some(token(&unknown_key, "gw", "default", &[]).0),
            Code::Unauthenticated,
            "bad signature",
        ),
        ("expired", "gw", Some(expired), Code::Unauthenticated, "expired"),
        (
            "another data plane's token",
            "gw",
            Some(token(&default_key, "other", "default", &[]).0),
            Code::PermissionDenied,
            "not \"gw\"",
        ),
        (
            "another mesh's token",
            "gw",
            Some(token(&second_key, "gw", "second", &[]).0),
            Code::Unauthenticated,
            "bad signature",
        ),
        (
            "a token naming another mesh",
            "gw",
            Some(token(&default_key, "gw", "second", &[]).0),
            Code::PermissionDenied,
            "mesh",
        ),
        (
            "a tag the data plane lacks",
            "gw",
            Some(token(&default_key, "gw", "default", &[("zone", "b")]).0),
            Code::PermissionDenied,
            "zone=a",
        ),
        ("a valid token, another node id", "other", Some(valid.clone()), Code::PermissionDenied, "not \"other\""),
    ];
    for (what, name, token, code, message) in cases {
        let (answer, _) = first_answer(address, "default", name, token.as_deref()).await;
        let status = answer.expect_err(what);
        assert_eq!(status.code(), code, "{what}: {status}");
        assert!(status.message().contains(message), "{what}: {status}");
        if let Some(t) = &token {
            assert!(!status.message().contains(t.as_str()), "{what}: the message shows the token");
        }
    }

    // A stream cannot switch to another node.
    let (answer, _) = first_answer(address, "default", "gw", Some(&valid)).await;
    answer.expect("the listeners");
    // (first_answer's stream sent one request; a second stream is needed
    // to send a later request naming another node.)
    {
        let mut client = AggregatedDiscoveryServiceClient::connect(format!("http://{address}")).await.unwrap();
        let (requests, rx) = tokio::sync::mpsc::channel(4);
        let node = |name: &str| {
            let metadata = Struct {
                fields: [("mesh".to_string(), Value { kind: Some(Kind::StringValue("default".into())) })]
                    .into_iter()
                    .collect(),
            };
            Some(Node { id: name.into(), metadata: Some(metadata), ..Default::default() })
        };
        let request = |name: &str| DiscoveryRequest {
            node: node(name),
            type_url: ResourceType::Listener.type_url(),
            ..Default::default()
        };
        requests.send(request("gw")).await.unwrap();
        let mut call = tonic::Request::new(tokio_stream::wrappers::ReceiverStream::new(rx));
        call.metadata_mut().insert("authorization", valid.parse().unwrap());
        let mut responses = client.stream_aggregated_resources(call).await.unwrap().into_inner();
        let first = responses.message().await.unwrap().expect("the listeners");
        requests
            .send(DiscoveryRequest {
                response_nonce: first.nonce.clone(),
                version_info: first.version_info,
                ..request("other")
            })
            .await
            .unwrap();
        let status = responses.message().await.expect_err("the stream ends");
        assert_eq!(status.code(), Code::PermissionDenied, "{status}");
    }

    // Revoking the open stream's token ends it.
    source.publish(resources(&default_key, &second_key, &[&valid_jti]));
    let ended = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            match open.message().await {
                Ok(Some(_)) => continue,
                other => return other,
            }
        }
    })
    .await
    .expect("the stream ends within 5 s");
    let status = ended.expect_err("an error status");
    assert_eq!(status.code(), Code::Unauthenticated, "{status}");
    assert!(status.message().contains("revoked"), "{status}");
    let (answer, _) = first_answer(address, "default", "gw", Some(&valid)).await;
    assert_eq!(answer.expect_err("a revoked token").code(), Code::Unauthenticated);
}
