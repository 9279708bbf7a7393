//! `MeshGatewayInstance`: Kubernetes serving capacity for a builtin gateway.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::tags::{TagRules, TagValues, Tags, validate_tags};
use crate::violation::{FieldPath, Violations};

/// The spec of a `MeshGatewayInstance` (a Kubernetes-only kind).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "camelCase")]
pub struct MeshGatewayInstanceSpec {
    /// Number of gateway pods (at least 1).
    pub replicas: i32,
    /// Kind of the Service in front of the pods.
    pub service_type: ServiceType,
    /// Resource requirements of the proxy container.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resources: Option<ResourceRequirements>,
    /// Extra metadata and settings of the generated Service.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub service_template: Option<ServiceTemplate>,
    /// Extra metadata and settings of the generated pods.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pod_template: Option<PodTemplate>,
    /// Tags given to the gateway data planes (without `kuma.io/service`,
    /// which the controller derives as `<name>_<namespace>_svc`).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub tags: Tags,
}

impl MeshGatewayInstanceSpec {
    /// The gateway `Dataplane` Kuma's controller makes for the pods of the
    /// instance named `name` (`<name>.<namespace>` in a resource set): a
    /// BUILTIN gateway tagged with the instance tags plus
    /// `kuma.io/service: <name>_<namespace>_svc`. Its address is `0.0.0.0`,
    /// since the pod IP is known only in the cluster (Envoy then listens on
    /// every interface of the pod).
    ///
    /// ```
    /// let dp = kuma_model::instance::MeshGatewayInstanceSpec::default().dataplane("edge-gateway.default");
    /// assert_eq!(dp.gateway().unwrap().tags["kuma.io/service"], "edge-gateway_default_svc");
    /// ```
    pub fn dataplane(&self, name: &str) -> crate::dataplane::DataplaneSpec {
        use crate::dataplane::{DataplaneSpec, GatewayMode, GatewayType, Networking};
        let (base, namespace) = name.split_once('.').unwrap_or((name, "default"));
        let mut tags = self.tags.clone();
        tags.insert(crate::SERVICE_TAG.to_string(), format!("{base}_{namespace}_svc"));
        DataplaneSpec {
            networking: Some(Networking {
                address: "0.0.0.0".into(),
                gateway: Some(GatewayMode { kind: GatewayType::Builtin, tags }),
                ..Default::default()
            }),
            ..Default::default()
        }
    }
}

impl Default for MeshGatewayInstanceSpec {
    fn default() -> Self {
        Self {
            replicas: 1,
            service_type: ServiceType::default(),
            resources: None,
            service_template: None,
            pod_template: None,
            tags: Tags::new(),
        }
    }
}

/// The Kubernetes Service type.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[allow(missing_docs)]
#[non_exhaustive]
pub enum ServiceType {
    #[default]
    LoadBalancer,
    ClusterIP,
    NodePort,
}

/// `corev1.ResourceRequirements`: quantities kept as written.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ResourceRequirements {
    /// Upper bounds (`cpu: 500m`, `memory: 128Mi`).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub limits: BTreeMap<String, serde_json::Value>,
    /// Requests.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub requests: BTreeMap<String, serde_json::Value>,
    /// Dynamic resource claims.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub claims: Vec<ResourceClaim>,
}

/// A dynamic resource claim.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ResourceClaim {
    /// Claim name.
    pub name: String,
    /// Request within the claim.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub request: String,
}

/// Labels and annotations to add to a generated object.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ObjectMetadata {
    /// Annotations.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
    /// Labels.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
}

/// `serviceTemplate`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServiceTemplate {
    /// Metadata merged into the Service.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metadata: Option<ObjectMetadata>,
    /// Service settings.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub spec: Option<ServiceTemplateSpec>,
}

/// `serviceTemplate.spec`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "camelCase")]
pub struct ServiceTemplateSpec {
    /// Requested load balancer IP.
    #[serde(rename = "loadBalancerIP", skip_serializing_if = "String::is_empty")]
    pub load_balancer_ip: String,
}

/// `podTemplate`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PodTemplate {
    /// Metadata merged into the pods.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metadata: Option<ObjectMetadata>,
    /// Pod settings.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub spec: Option<PodTemplateSpec>,
}

/// `podTemplate.spec`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "camelCase")]
pub struct PodTemplateSpec {
    /// Service account of the pods.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub service_account_name: String,
    /// Pod security context.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub security_context: Option<PodSecurityContext>,
    /// Settings of the gateway container.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub container: Option<ContainerTemplate>,
}

/// `podTemplate.spec.securityContext`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "camelCase")]
pub struct PodSecurityContext {
    /// Group that owns mounted volumes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fs_group: Option<i64>,
}

/// `podTemplate.spec.container`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "camelCase")]
pub struct ContainerTemplate {
    /// Container security context.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub security_context: Option<ContainerSecurityContext>,
}

/// `podTemplate.spec.container.securityContext`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "camelCase")]
pub struct ContainerSecurityContext {
    /// Mount the root file system read-only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub read_only_root_filesystem: Option<bool>,
}

impl MeshGatewayInstanceSpec {
    /// The CRD's bounds and Kuma's webhook rules.
    pub fn validate(&self) -> Violations {
        let mut out = Violations::new();
        if self.replicas < 1 {
            out.add(FieldPath::root().field("replicas"), "must be greater than or equal to 1");
        }
        validate_tags(
            &FieldPath::root().field("tags"),
            &self.tags,
            TagRules { forbid_service: true, values: TagValues::Concrete, ..TagRules::default() },
            &mut out,
        );
        out
    }
}
