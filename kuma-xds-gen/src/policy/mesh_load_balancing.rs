//! `MeshLoadBalancingStrategy` on a gateway: the cluster's load balancer
//! and the route hash policies that feed ring hash and Maglev.

use envoy_types::pb::envoy::config::cluster::v3::Cluster;
use envoy_types::pb::envoy::config::cluster::v3::cluster::{
    LbConfig, LbPolicy, LeastRequestLbConfig, MaglevLbConfig, RingHashLbConfig, ring_hash_lb_config,
};
use envoy_types::pb::envoy::config::core::v3::RuntimeDouble;
use envoy_types::pb::envoy::config::route::v3::route_action::{HashPolicy, hash_policy};
use envoy_types::pb::google::protobuf::UInt64Value;
use kuma_model::mesh_load_balancing_strategy::{HashFunction, HashPolicyType, LoadBalancerType, LoadBalancingConf};

use crate::pb::{duration, u32v};

/// Sets the cluster's load balancer from `conf`.
pub(crate) fn cluster(conf: Option<&LoadBalancingConf>, cluster: &mut Cluster) {
    let Some(lb) = conf.and_then(|c| c.load_balancer.as_ref()) else { return };
    let u64v = |v: Option<u64>| v.map(|value| UInt64Value { value });
    let (policy, config) = match lb.kind {
        LoadBalancerType::RoundRobin => (LbPolicy::RoundRobin, None),
        LoadBalancerType::Random => (LbPolicy::Random, None),
        LoadBalancerType::LeastRequest => {
            let l = lb.least_request.clone().unwrap_or_default();
            let bias = l.active_request_bias.as_ref().and_then(kuma_model::mesh_fault_injection::percentage);
            (
                LbPolicy::LeastRequest,
                Some(LbConfig::LeastRequestLbConfig(LeastRequestLbConfig {
                    choice_count: l.choice_count.and_then(u32v),
                    active_request_bias: bias
                        .map(|default_value| RuntimeDouble { default_value, runtime_key: String::new() }),
                    ..Default::default()
                })),
            )
        }
        LoadBalancerType::RingHash => {
            let r = lb.ring_hash.clone().unwrap_or_default();
            let function = match r.hash_function {
                Some(HashFunction::MurmurHash2) => ring_hash_lb_config::HashFunction::MurmurHash2,
                _ => ring_hash_lb_config::HashFunction::XxHash,
            };
            (
                LbPolicy::RingHash,
                Some(LbConfig::RingHashLbConfig(RingHashLbConfig {
                    minimum_ring_size: u64v(r.min_ring_size),
                    maximum_ring_size: u64v(r.max_ring_size),
                    hash_function: function as i32,
                })),
            )
        }
        LoadBalancerType::Maglev => {
            let m = lb.maglev.clone().unwrap_or_default();
            (LbPolicy::Maglev, Some(LbConfig::MaglevLbConfig(MaglevLbConfig { table_size: u64v(m.table_size) })))
        }
    };
    cluster.lb_policy = policy as i32;
    cluster.lb_config = config;
}

/// The route hash policies of `conf`.
pub(crate) fn hash_policies(conf: Option<&LoadBalancingConf>) -> Vec<HashPolicy> {
    let Some(conf) = conf else { return Vec::new() };
    conf.route_hash_policies()
        .iter()
        .filter_map(|h| {
            let specifier = match h.kind {
                HashPolicyType::Header => hash_policy::PolicySpecifier::Header(hash_policy::Header {
                    header_name: h.header.as_ref()?.name.clone(),
                    ..Default::default()
                }),
                HashPolicyType::Cookie => {
                    let c = h.cookie.as_ref()?;
                    hash_policy::PolicySpecifier::Cookie(hash_policy::Cookie {
                        name: c.name.clone(),
                        ttl: c.ttl.map(duration),
                        path: c.path.clone().unwrap_or_default(),
                        ..Default::default()
                    })
                }
                HashPolicyType::Connection => {
                    hash_policy::PolicySpecifier::ConnectionProperties(hash_policy::ConnectionProperties {
                        source_ip: h.connection.as_ref().and_then(|c| c.source_ip).unwrap_or(false),
                    })
                }
                HashPolicyType::SourceIp => {
                    hash_policy::PolicySpecifier::ConnectionProperties(hash_policy::ConnectionProperties {
                        source_ip: true,
                    })
                }
                HashPolicyType::QueryParameter => {
                    hash_policy::PolicySpecifier::QueryParameter(hash_policy::QueryParameter {
                        name: h.query_parameter.as_ref()?.name.clone(),
                    })
                }
                HashPolicyType::FilterState => hash_policy::PolicySpecifier::FilterState(hash_policy::FilterState {
                    key: h.filter_state.as_ref()?.key.clone(),
                }),
            };
            Some(HashPolicy { policy_specifier: Some(specifier), terminal: h.terminal.unwrap_or(false) })
        })
        .collect()
}
