//! The incremental path held to the full one. For random sequences of
//! edits, published one by one to a `ResourceSetSource`, three data planes
//! (two of one gateway, one in another mesh) follow along the way a
//! connected Envoy does: the source re-translates only those whose reads
//! changed (unchanged resources are shared between sets, as the file store
//! shares them), shares unchanged lists, and each protocol sends only what
//! differs. After every edit, what each simulated Envoy holds must equal a
//! full translation of the current resources, byte for byte:
//! - delta: every resource, by name, with its bytes;
//! - State of the World: every type's content version (a hash of names and
//!   bytes).

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use kuma_xds_gen::envoy_types::pb::envoy::service::discovery::v3::{
    DeltaDiscoveryRequest, DeltaDiscoveryResponse, DiscoveryRequest, DiscoveryResponse,
};
use kuma_xds_gen::kuma_model::{ParsedFile, ResourceSet, UnknownFields, parse_file};
use kuma_xds_gen::{EncodedSnapshot, ResourceType};
use kuma_xds_server::{AdsStream, DeltaStream, NodeHistory, NodeId, ResourceSetSource, SnapshotSource};
use proptest::prelude::*;

/// The resources, as a few knobs that edits turn.
#[derive(Debug, Clone)]
struct World {
    /// Route rules of mesh a's gateway: (path, backend service index,
    /// host name index).
    routes: Vec<(String, u8, u8)>,
    /// Mesh b's one route path.
    b_route: String,
    /// Port of backend `web` (its endpoint).
    web_port: u16,
    /// A second backend data plane of `api`.
    api_twice: bool,
    /// A Secret nothing uses.
    unused_secret: u8,
    /// Mesh a logs to a file.
    logging: bool,
    /// Mesh a's gateway listener port.
    port: u16,
    /// A timeout policy for mesh a (seconds).
    timeout: Option<u8>,
    /// A MeshTimeout for mesh a (seconds): its request timeout is on every
    /// route, so on every virtual host.
    mesh_timeout: Option<u8>,
}

const SERVICES: [&str; 3] = ["web", "api", "missing"];
/// A route's `hostnames`: none (every host), one, a wildcard.
const HOSTNAMES: [&str; 3] = ["", "hostnames: [a.example.com], ", "hostnames: ['*.example.com'], "];

impl World {
    /// One document per resource.
    fn documents(&self) -> Vec<String> {
        self.yaml().split("---\n").filter(|d| !d.trim().is_empty()).map(str::to_string).collect()
    }

    fn yaml(&self) -> String {
        let mut y = String::new();
        let logging = if self.logging {
            "logging: {backends: [{name: f, type: file, conf: {path: /tmp/access.log}}], defaultBackend: f}\n"
        } else {
            ""
        };
        y += &format!("type: Mesh\nname: a\n{logging}---\ntype: Mesh\nname: b\n---\n");
        for (mesh, name) in [("a", "gw"), ("a", "gw2"), ("b", "gw")] {
            y += &format!(
                "type: Dataplane\nmesh: {mesh}\nname: {name}\nnetworking: {{address: 127.0.0.1, gateway: {{type: BUILTIN, tags: {{kuma.io/service: edge}}}}}}\n---\n"
            );
        }
        let port_b = 9090;
        for (mesh, port) in [("a", self.port), ("b", port_b)] {
            y += &format!(
                "type: MeshGateway\nmesh: {mesh}\nname: edge\nselectors: [{{match: {{kuma.io/service: edge}}}}]\nconf: {{listeners: [{{port: {port}, protocol: HTTP}}]}}\n---\n"
            );
        }
        y += &format!(
            "type: Dataplane\nmesh: a\nname: web\nnetworking: {{address: 127.0.0.1, inbound: [{{port: {}, tags: {{kuma.io/service: web, kuma.io/protocol: http}}}}]}}\n---\n",
            self.web_port
        );
        y += "type: Dataplane\nmesh: a\nname: api\nnetworking: {address: 127.0.0.2, inbound: [{port: 7000, tags: {kuma.io/service: api}}]}\n---\n";
        if self.api_twice {
            y += "type: Dataplane\nmesh: a\nname: api-2\nnetworking: {address: 127.0.0.3, inbound: [{port: 7000, tags: {kuma.io/service: api}}]}\n---\n";
        }
        y += "type: Dataplane\nmesh: b\nname: web\nnetworking: {address: 127.0.0.4, inbound: [{port: 8000, tags: {kuma.io/service: web}}]}\n---\n";
        y += &format!(
            "type: Secret\nmesh: a\nname: unused\ndata: {}\n---\n",
            ["aGk=", "aG8=", "eW8="][self.unused_secret as usize % 3]
        );
        for (i, (path, service, host)) in self.routes.iter().enumerate() {
            y += &format!(
                "type: MeshGatewayRoute\nmesh: a\nname: r{i}\nselectors: [{{match: {{kuma.io/service: edge}}}}]\nconf: {{http: {{{}rules: [{{matches: [{{path: {{match: PREFIX, value: {path}}}}}], backends: [{{destination: {{kuma.io/service: {}}}}}]}}]}}}}\n---\n",
                HOSTNAMES[*host as usize % HOSTNAMES.len()],
                SERVICES[*service as usize % SERVICES.len()]
            );
        }
        y += &format!(
            "type: MeshGatewayRoute\nmesh: b\nname: r\nselectors: [{{match: {{kuma.io/service: edge}}}}]\nconf: {{http: {{rules: [{{matches: [{{path: {{match: PREFIX, value: {}}}}}], backends: [{{destination: {{kuma.io/service: web}}}}]}}]}}}}\n---\n",
            self.b_route
        );
        if let Some(seconds) = self.timeout {
            y += &format!(
                "type: Timeout\nmesh: a\nname: t\nsources: [{{match: {{kuma.io/service: '*'}}}}]\ndestinations: [{{match: {{kuma.io/service: '*'}}}}]\nconf: {{connectTimeout: {seconds}s, http: {{requestTimeout: {seconds}s}}}}\n"
            );
        }
        if let Some(seconds) = self.mesh_timeout {
            y += &format!(
                "---\ntype: MeshTimeout\nmesh: a\nname: mt\nspec: {{targetRef: {{kind: Mesh}}, to: [{{targetRef: {{kind: Mesh}}, default: {{http: {{requestTimeout: {seconds}s}}}}}}]}}\n"
            );
        }
        y
    }

    /// The set, made as the file store makes it: one parsed file per
    /// document, kept while its text is the same, so that an unchanged
    /// resource is the same allocation in every set.
    fn set(&self, parsed: &mut HashMap<String, ParsedFile>) -> ResourceSet {
        let documents = self.documents();
        for d in &documents {
            parsed.entry(d.clone()).or_insert_with(|| parse_file("world.yaml", d, UnknownFields::Reject));
        }
        parsed.retain(|d, _| documents.contains(d));
        ResourceSet::assemble(documents.iter().map(|d| &parsed[d])).expect("a valid world").0
    }
}

#[derive(Debug, Clone)]
enum Edit {
    SetPath(usize, u8),
    SetBackend(usize, u8),
    SetHost(usize, u8),
    AddRoute(u8, u8),
    RemoveRoute(usize),
    BRoute(u8),
    WebPort(u16),
    ApiTwice,
    UnusedSecret,
    Logging,
    Port(u16),
    Timeout(Option<u8>),
    MeshTimeout(Option<u8>),
    Nothing,
}

fn edit() -> impl Strategy<Value = Edit> {
    prop_oneof![
        (any::<usize>(), 0u8..6).prop_map(|(i, p)| Edit::SetPath(i, p)),
        (any::<usize>(), any::<u8>()).prop_map(|(i, s)| Edit::SetBackend(i, s)),
        (any::<usize>(), any::<u8>()).prop_map(|(i, h)| Edit::SetHost(i, h)),
        (0u8..6, any::<u8>()).prop_map(|(p, s)| Edit::AddRoute(p, s)),
        any::<usize>().prop_map(Edit::RemoveRoute),
        (0u8..4).prop_map(Edit::BRoute),
        (9000u16..9003).prop_map(Edit::WebPort),
        Just(Edit::ApiTwice),
        Just(Edit::UnusedSecret),
        Just(Edit::Logging),
        (8080u16..8082).prop_map(Edit::Port),
        proptest::option::of(1u8..4).prop_map(Edit::Timeout),
        proptest::option::of(1u8..4).prop_map(Edit::MeshTimeout),
        Just(Edit::Nothing),
    ]
}

impl World {
    fn apply(&mut self, e: &Edit) {
        let n = self.routes.len();
        match *e {
            Edit::SetPath(i, p) if n > 0 => self.routes[i % n].0 = format!("/p{p}"),
            Edit::SetBackend(i, s) if n > 0 => self.routes[i % n].1 = s,
            Edit::SetHost(i, h) if n > 0 => self.routes[i % n].2 = h,
            Edit::AddRoute(p, s) => self.routes.push((format!("/p{p}"), s, p)),
            Edit::RemoveRoute(i) if n > 0 => {
                self.routes.remove(i % n);
            }
            Edit::BRoute(p) => self.b_route = format!("/b{p}"),
            Edit::WebPort(port) => self.web_port = port,
            Edit::ApiTwice => self.api_twice = !self.api_twice,
            Edit::UnusedSecret => self.unused_secret = self.unused_secret.wrapping_add(1),
            Edit::Logging => self.logging = !self.logging,
            Edit::Port(port) => self.port = port,
            Edit::Timeout(t) => self.timeout = t,
            Edit::MeshTimeout(t) => self.mesh_timeout = t,
            _ => {}
        }
    }
}

/// An Envoy on the incremental protocol: what it holds, by type and name.
struct DeltaEnvoy {
    stream: DeltaStream,
    held: BTreeMap<String, BTreeMap<String, Vec<u8>>>,
}

impl DeltaEnvoy {
    fn apply(&mut self, responses: Vec<DeltaDiscoveryResponse>, snapshot: &EncodedSnapshot) {
        for r in responses {
            let held = self.held.entry(r.type_url.clone()).or_default();
            for resource in &r.resources {
                held.insert(resource.name.clone(), resource.resource.as_ref().unwrap().value.clone());
            }
            for name in &r.removed_resources {
                held.remove(name);
            }
            let ack = DeltaDiscoveryRequest { type_url: r.type_url, response_nonce: r.nonce, ..Default::default() };
            let out = self.stream.handle_request(&ack, snapshot);
            assert!(out.responses.is_empty());
        }
    }
}

/// An Envoy on State of the World: the version it holds, by type.
struct SotwEnvoy {
    stream: AdsStream,
    versions: BTreeMap<String, String>,
}

impl SotwEnvoy {
    fn apply(&mut self, responses: Vec<DiscoveryResponse>, snapshot: &EncodedSnapshot) {
        for r in responses {
            self.versions.insert(r.type_url.clone(), r.version_info.clone());
            let ack = DiscoveryRequest {
                type_url: r.type_url,
                version_info: r.version_info,
                response_nonce: r.nonce,
                ..Default::default()
            };
            let out = self.stream.handle_request(&ack, snapshot);
            assert!(out.responses.is_empty());
        }
    }
}

/// A data plane followed by one Envoy of each protocol.
struct Follower {
    node: NodeId,
    held: Arc<EncodedSnapshot>,
    generation: u64,
    delta: DeltaEnvoy,
    sotw: SotwEnvoy,
}

impl Follower {
    fn connect(source: &ResourceSetSource, mesh: &str, name: &str) -> Follower {
        let node = NodeId { mesh: mesh.into(), name: name.into() };
        let generation = source.generation();
        let held = source.snapshot(&node, None).unwrap().expect("a first snapshot");
        let mut delta = DeltaEnvoy { stream: DeltaStream::with_history(NodeHistory::new()), held: BTreeMap::new() };
        let mut sotw = SotwEnvoy { stream: AdsStream::with_history(NodeHistory::new()), versions: BTreeMap::new() };
        for t in ResourceType::ALL {
            let request = DeltaDiscoveryRequest { type_url: t.type_url(), ..Default::default() };
            let out = delta.stream.handle_request(&request, &held);
            delta.apply(out.responses, &held);
            let request = DiscoveryRequest { type_url: t.type_url(), ..Default::default() };
            let out = sotw.stream.handle_request(&request, &held);
            sotw.apply(out.responses, &held);
        }
        Follower { node, held, generation, delta, sotw }
    }

    /// What a connected stream does when the source's generation moves.
    fn follow(&mut self, source: &ResourceSetSource) {
        let since = std::mem::replace(&mut self.generation, source.generation());
        if let Some(new) = source.snapshot(&self.node, Some(since)).unwrap() {
            let responses = self.delta.stream.handle_snapshot(&new);
            self.delta.apply(responses, &new);
            let responses = self.sotw.stream.handle_snapshot(&self.held, &new);
            self.sotw.apply(responses, &new);
            self.held = new;
        }
    }

    /// Both Envoys hold exactly a full translation of `set`.
    fn check(&self, set: &ResourceSet) -> Result<(), TestCaseError> {
        let full = EncodedSnapshot::encode(&kuma_xds_gen::translate(set, &self.node.mesh, &self.node.name).unwrap());
        for t in ResourceType::ALL {
            let expected = full.resources(t);
            prop_assert_eq!(self.held.resources(t).version(), expected.version(), "{}: held {:?}", self.node, t);
            // Resources by name, each with a hash of its bytes (short in a
            // failure's message).
            let digest = |name: &str, bytes: &[u8]| {
                let any = kuma_xds_gen::envoy_types::pb::google::protobuf::Any {
                    type_url: t.type_url(),
                    value: bytes.to_vec(),
                };
                kuma_xds_gen::EncodedResource::new(name.to_string(), any).version
            };
            let want: BTreeMap<&str, String> =
                expected.items().iter().map(|r| (r.name.as_str(), digest(&r.name, &r.any.value))).collect();
            let empty = BTreeMap::new();
            let held: BTreeMap<&str, String> = self
                .delta
                .held
                .get(&t.type_url())
                .unwrap_or(&empty)
                .iter()
                .map(|(n, b)| (n.as_str(), digest(n, b)))
                .collect();
            prop_assert_eq!(held, want, "{}: delta {:?}", self.node, t);
            let version = self.sotw.versions.get(&t.type_url()).map(String::as_str);
            prop_assert_eq!(version, Some(expected.version()), "{}: sotw {:?}", self.node, t);
        }
        Ok(())
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn incremental_output_equals_a_full_translation(edits in proptest::collection::vec(edit(), 1..12)) {
        let mut world = World {
            routes: vec![("/".into(), 0, 0), ("/api".into(), 1, 1), ("/x".into(), 0, 2)],
            b_route: "/b0".into(),
            web_port: 9000,
            api_twice: false,
            unused_secret: 0,
            logging: false,
            port: 8080,
            timeout: None,
            mesh_timeout: None,
        };
        let mut parsed = HashMap::new();
        let source = ResourceSetSource::new(world.set(&mut parsed));
        let mut followers =
            [("a", "gw"), ("a", "gw2"), ("b", "gw")].map(|(m, n)| Follower::connect(&source, m, n));
        for e in &edits {
            world.apply(e);
            let set = world.set(&mut parsed);
            source.publish(set.clone());
            for f in &mut followers {
                f.follow(&source);
                f.check(&set)?;
            }
        }
    }
}
