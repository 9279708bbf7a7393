//! `ProxyTemplate`: raw resources and modifications applied to the generated
//! gateway resources, after everything else.
//!
//! The template whose `selectors` best match the data plane's gateway tags
//! applies (newest on a tie). Values are Envoy YAML; a `patch` merges like
//! protobuf's merge (scalars replaced, messages merged, lists appended).
//! Resources count as origin `gateway` (BUILTIN) or `outbound` (DELEGATED);
//! a match on another origin matches nothing.

use envoy_types::pb::envoy::config::cluster::v3::Cluster;
use envoy_types::pb::envoy::config::listener::v3::{Filter, Listener, filter};
use envoy_types::pb::envoy::config::route::v3::{RouteConfiguration, VirtualHost};
use envoy_types::pb::envoy::extensions::filters::network::http_connection_manager::v3::{
    HttpConnectionManager, HttpFilter,
};
use kuma_model::policy::{ModificationMatch, ModificationOp, ProxyTemplateSpec};
use kuma_model::{Kind, Resource, ResourceSet, Spec, Tags};
use prost::{Message, Name};
use prost_reflect::DynamicMessage;
use serde_json::Value;
use std::collections::BTreeMap;

use crate::GatewaySnapshot;
use crate::render;

/// Why a template could not be applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TemplateError {
    /// The template (`ProxyTemplate mesh/name`).
    pub template: kuma_model::ResourceKey,
    /// The field (`conf.modifications[2].cluster.value`).
    pub field: String,
    /// What is wrong.
    pub message: String,
}

/// The ProxyTemplate for a data plane with `tags`.
pub(crate) fn select<'a>(
    set: &'a ResourceSet,
    mesh: &str,
    tags: &Tags,
) -> Option<(&'a Resource, &'a ProxyTemplateSpec)> {
    let templates = set.in_mesh(Kind::ProxyTemplate, mesh).filter_map(|r| match &r.spec {
        Spec::ProxyTemplate(t) => Some((r, &t.selectors[..], t)),
        _ => None,
    });
    kuma_policy::selector::best_match(templates, tags)
}

fn yaml_value(text: &str) -> Result<Value, String> {
    let v: serde_yaml::Value = serde_yaml::from_str(text).map_err(|e| format!("invalid YAML: {e}"))?;
    serde_json::to_value(v).map_err(|e| e.to_string())
}

/// A message from canonical (or snake_case) JSON.
pub(crate) fn from_json<M: Message + Name + Default>(value: Value) -> Result<M, String> {
    let desc = crate::schema::pool()
        .get_message_by_name(&M::full_name())
        .ok_or_else(|| format!("unknown type {}", M::full_name()))?;
    let dynamic = DynamicMessage::deserialize(desc, value).map_err(|e| e.to_string())?;
    M::decode(dynamic.encode_to_vec().as_slice()).map_err(|e| e.to_string())
}

/// protobuf merge on JSON: objects merge, lists append, the rest is replaced.
fn merge(into: &mut Value, from: Value) {
    match (into, from) {
        (Value::Object(a), Value::Object(b)) => {
            for (k, v) in b {
                match a.get_mut(&k) {
                    Some(existing) => merge(existing, v),
                    None => {
                        a.insert(k, v);
                    }
                }
            }
        }
        (Value::Array(a), Value::Array(b)) => a.extend(b),
        (slot, v) => *slot = v,
    }
}

fn patched<M: Message + Name + Default>(message: &M, patch: &Value) -> Result<M, String> {
    let mut v = render::to_json(message).map_err(|e| e.to_string())?;
    merge(&mut v, patch.clone());
    from_json(v)
}

fn origin_ok(m: &ModificationMatch, origin: &str) -> bool {
    m.origin.is_empty() || m.origin == origin
}

struct Context<'t> {
    template: kuma_model::ResourceKey,
    origin: &'static str,
    listener_tags: &'t dyn Fn(&str) -> Option<Tags>,
}

impl Context<'_> {
    fn err(&self, field: String, message: impl Into<String>) -> TemplateError {
        TemplateError { template: self.template.clone(), field, message: message.into() }
    }

    /// True when the listener named `listener` carries every tag of `want`.
    fn tags_match(&self, want: &Tags, listener: &str) -> bool {
        want.is_empty() || (self.listener_tags)(listener).is_some_and(|t| want.iter().all(|(k, v)| t.get(k) == Some(v)))
    }

    fn listener_matches(&self, m: &ModificationMatch, name: &str) -> bool {
        (m.listener_name.is_empty() || m.listener_name == name) && self.tags_match(&m.listener_tags, name)
    }
}

/// Applies `template` to `snapshot`. `listener_tags` gives the tags of a
/// listener by name (for `listenerTags` matches).
pub(crate) fn apply(
    resource: &Resource,
    template: &ProxyTemplateSpec,
    snapshot: &mut GatewaySnapshot,
    delegated: bool,
    listener_tags: &dyn Fn(&str) -> Option<Tags>,
) -> Result<(), TemplateError> {
    let cx =
        Context { template: resource.key(), origin: if delegated { "outbound" } else { "gateway" }, listener_tags };
    let Some(conf) = &template.conf else { return Ok(()) };
    for (i, raw) in conf.resources.iter().enumerate() {
        let field = format!("conf.resources[{i}].resource");
        let v = yaml_value(&raw.resource).map_err(|e| cx.err(field.clone(), e))?;
        let type_url = v.get("@type").and_then(Value::as_str).unwrap_or_default().to_string();
        let mut body = v.clone();
        if let Some(o) = body.as_object_mut() {
            o.remove("@type");
        }
        let bad = |e: String| cx.err(field.clone(), e);
        match type_url.rsplit('/').next().unwrap_or_default() {
            "envoy.config.cluster.v3.Cluster" => {
                snapshot.clusters.insert(raw.name.clone(), from_json(body).map_err(bad)?);
            }
            "envoy.config.listener.v3.Listener" => {
                snapshot.listeners.insert(raw.name.clone(), from_json(body).map_err(bad)?);
            }
            "envoy.config.route.v3.RouteConfiguration" => {
                snapshot.routes.insert(raw.name.clone(), from_json(body).map_err(bad)?);
            }
            other => return Err(cx.err(field, format!("unsupported resource type {other:?}"))),
        }
    }
    for (i, m) in conf.modifications.iter().enumerate() {
        let base = format!("conf.modifications[{i}]");
        if let Some(op) = &m.cluster {
            cluster(&cx, &format!("{base}.cluster"), op, snapshot)?;
        }
        if let Some(op) = &m.listener {
            listener(&cx, &format!("{base}.listener"), op, snapshot)?;
        }
        if let Some(op) = &m.network_filter {
            network_filter(&cx, &format!("{base}.networkFilter"), op, snapshot)?;
        }
        if let Some(op) = &m.http_filter {
            http_filter(&cx, &format!("{base}.httpFilter"), op, snapshot)?;
        }
        if let Some(op) = &m.virtual_host {
            virtual_host(&cx, &format!("{base}.virtualHost"), op, snapshot)?;
        }
    }
    Ok(())
}

fn value(cx: &Context<'_>, path: &str, op: &ModificationOp) -> Result<Value, TemplateError> {
    yaml_value(&op.value).map_err(|e| cx.err(format!("{path}.value"), e))
}

/// Adds, patches or removes resources of one type (clusters, listeners).
fn edit_map<T: Message + Name + Default>(
    cx: &Context<'_>,
    path: &str,
    op: &ModificationOp,
    map: &mut BTreeMap<String, T>,
    hit: impl Fn(&T) -> bool,
    name_of: impl Fn(&T) -> String,
) -> Result<(), TemplateError> {
    match op.operation.as_str() {
        "add" => {
            let r: T = from_json(value(cx, path, op)?).map_err(|e| cx.err(format!("{path}.value"), e))?;
            map.insert(name_of(&r), r);
        }
        "patch" => {
            let v = value(cx, path, op)?;
            for r in map.values_mut().filter(|r| hit(r)) {
                *r = patched(r, &v).map_err(|e| cx.err(format!("{path}.value"), e))?;
            }
        }
        "remove" => map.retain(|_, r| !hit(r)),
        other => return Err(cx.err(format!("{path}.operation"), format!("unsupported operation {other:?}"))),
    }
    Ok(())
}

fn cluster(cx: &Context<'_>, path: &str, op: &ModificationOp, s: &mut GatewaySnapshot) -> Result<(), TemplateError> {
    let m = op.match_.clone().unwrap_or_default();
    let hit = |c: &Cluster| origin_ok(&m, cx.origin) && (m.name.is_empty() || m.name == c.name);
    edit_map(cx, path, op, &mut s.clusters, hit, |c| c.name.clone())
}

fn listener(cx: &Context<'_>, path: &str, op: &ModificationOp, s: &mut GatewaySnapshot) -> Result<(), TemplateError> {
    let m = op.match_.clone().unwrap_or_default();
    let hit = |l: &Listener| {
        origin_ok(&m, cx.origin) && (m.name.is_empty() || m.name == l.name) && cx.tags_match(&m.tags, &l.name)
    };
    edit_map(cx, path, op, &mut s.listeners, hit, |l| l.name.clone())
}

/// Adds, patches or removes entries of a named list (filters).
fn edit_list<T: Message + Name + Default + Clone>(
    cx: &Context<'_>,
    path: &str,
    op: &ModificationOp,
    list: &mut Vec<T>,
    name_of: impl Fn(&T) -> &str,
) -> Result<(), TemplateError> {
    let m = op.match_.clone().unwrap_or_default();
    let new = || -> Result<T, TemplateError> {
        from_json(value(cx, path, op)?).map_err(|e| cx.err(format!("{path}.value"), e))
    };
    let position = list.iter().position(|f| !m.name.is_empty() && name_of(f) == m.name);
    match op.operation.as_str() {
        "addFirst" => list.insert(0, new()?),
        "addLast" | "add" => list.push(new()?),
        "addBefore" => {
            if let Some(i) = position {
                list.insert(i, new()?);
            }
        }
        "addAfter" => {
            if let Some(i) = position {
                list.insert(i + 1, new()?);
            }
        }
        "patch" => {
            let v = value(cx, path, op)?;
            for f in list.iter_mut().filter(|f| m.name.is_empty() || name_of(f) == m.name) {
                *f = patched(f, &v).map_err(|e| cx.err(format!("{path}.value"), e))?;
            }
        }
        "remove" => list.retain(|f| !(m.name.is_empty() || name_of(f) == m.name)),
        other => return Err(cx.err(format!("{path}.operation"), format!("unsupported operation {other:?}"))),
    }
    Ok(())
}

fn network_filter(
    cx: &Context<'_>,
    path: &str,
    op: &ModificationOp,
    s: &mut GatewaySnapshot,
) -> Result<(), TemplateError> {
    let m = op.match_.clone().unwrap_or_default();
    if !origin_ok(&m, cx.origin) {
        return Ok(());
    }
    for l in s.listeners.values_mut().filter(|l| cx.listener_matches(&m, &l.name)) {
        for chain in &mut l.filter_chains {
            edit_list(cx, path, op, &mut chain.filters, |f: &Filter| f.name.as_str())?;
        }
    }
    Ok(())
}

fn http_filter(
    cx: &Context<'_>,
    path: &str,
    op: &ModificationOp,
    s: &mut GatewaySnapshot,
) -> Result<(), TemplateError> {
    let m = op.match_.clone().unwrap_or_default();
    if !origin_ok(&m, cx.origin) {
        return Ok(());
    }
    for l in s.listeners.values_mut().filter(|l| cx.listener_matches(&m, &l.name)) {
        for f in l.filter_chains.iter_mut().flat_map(|c| c.filters.iter_mut()) {
            let Some(filter::ConfigType::TypedConfig(any)) = &mut f.config_type else { continue };
            if any.type_url != HttpConnectionManager::type_url() {
                continue;
            }
            let Ok(mut hcm) = HttpConnectionManager::decode(any.value.as_slice()) else { continue };
            edit_list(cx, path, op, &mut hcm.http_filters, |f: &HttpFilter| f.name.as_str())?;
            *any = crate::pb::any(&hcm);
        }
    }
    Ok(())
}

fn virtual_host(
    cx: &Context<'_>,
    path: &str,
    op: &ModificationOp,
    s: &mut GatewaySnapshot,
) -> Result<(), TemplateError> {
    let m = op.match_.clone().unwrap_or_default();
    if !origin_ok(&m, cx.origin) {
        return Ok(());
    }
    let configs = s.routes.values_mut().filter(|rc: &&mut RouteConfiguration| {
        m.route_configuration_name.is_empty() || rc.name == m.route_configuration_name
    });
    for rc in configs {
        edit_list(cx, path, op, &mut rc.virtual_hosts, |v: &VirtualHost| v.name.as_str())?;
    }
    Ok(())
}
