//! Kuma gateway resources: the typed model, parsing of Kuma's Universal and
//! Kubernetes YAML/JSON forms, and Kuma's validation rules.
//!
//! This crate does no I/O: callers hand it file names and text.
//!
//! ```
//! use kuma_model::{ResourceSet, UnknownFields, Kind, Spec};
//! let yaml = r#"
//! type: MeshGateway
//! mesh: default
//! name: edge-gateway
//! selectors:
//! - match:
//!     kuma.io/service: edge-gateway
//! conf:
//!   listeners:
//!   - port: 8080
//!     protocol: HTTP
//!     hostname: foo.example.com
//! "#;
//! let (set, _) = ResourceSet::load([("gw.yaml", yaml)], UnknownFields::Reject).unwrap();
//! let gw = set.get(Kind::MeshGateway, "default", "edge-gateway").unwrap();
//! let Spec::MeshGateway(spec) = &gw.spec else { unreachable!() };
//! assert_eq!(spec.conf.as_ref().unwrap().listeners[0].port, 8080);
//! ```

pub mod dataplane;
pub mod datasource;
pub mod diagnostic;
mod document;
pub mod duration;
pub mod external_service;
#[cfg(feature = "arbitrary")]
pub mod fuzzing;
pub mod gateway;
pub mod instance;
pub mod load;
mod marked_de;
pub mod mesh;
pub mod mesh_access_log;
pub mod mesh_circuit_breaker;
pub mod mesh_external_service;
pub mod mesh_fault_injection;
pub mod mesh_health_check;
pub mod mesh_http_route;
pub mod mesh_load_balancing_strategy;
pub mod mesh_rate_limit;
pub mod mesh_retry;
pub mod mesh_service;
pub mod mesh_tcp_route;
pub mod mesh_timeout;
pub mod mesh_tls;
pub mod mesh_trace;
pub mod mesh_traffic_permission;
pub mod meta;
pub mod policy;
pub mod policy_role;
mod quick_yaml;
pub mod re2;
pub mod reads;
pub mod resource;
pub mod route;
pub mod secret;
pub mod set;
mod source;
pub mod tags;
pub mod target_ref;
pub mod violation;
pub mod zone_egress;

pub use datasource::DataSource;
pub use diagnostic::{Diagnostic, LoadError, Severity};
pub use document::DocumentParts;
pub use duration::Duration;
pub use load::{DEFAULT_MESH, ParsedFile, UnknownFields, parse_bytes, parse_file, read_file};
pub use meta::{Location, Meta, Timestamp};
pub use resource::{Kind, Resource, ResourceKey, Spec, SpecError};
pub use set::ResourceSet;
pub use source::MAX_TEXT_BYTES as MAX_FILE_BYTES;
pub use tags::{SERVICE_TAG, Selector, Tags};
pub use violation::{FieldPath, Origin, Violation, Violations};
