//! Connection policies on a gateway: `sources` match the listener tags,
//! `destinations` the backend's destination tags.

use std::collections::BTreeMap;

use kuma_model::{Kind, Resource, ResourceSet, SERVICE_TAG, Tags};

use crate::selector::{Rank, best_rank};

/// A policy whose sources matched a listener, with that rank.
#[derive(Debug, Clone, Copy)]
pub struct SourceMatch<'a> {
    /// The policy.
    pub policy: &'a Resource,
    /// How well its sources matched the listener tags.
    pub rank: Rank,
}

/// The policies of `kind` in `mesh` whose `sources` match `listener_tags`
/// (Kuma's `ConnectionPoliciesBySource`), in name order.
pub fn by_source<'a>(set: &'a ResourceSet, mesh: &str, kind: Kind, listener_tags: &Tags) -> Vec<SourceMatch<'a>> {
    set.in_mesh(kind, mesh)
        .filter_map(|policy| {
            let (sources, _) = policy.spec.sources_destinations()?;
            best_rank(sources, listener_tags).map(|rank| SourceMatch { policy, rank })
        })
        .collect()
}

/// The policy for one destination: destinations must match its tags; the
/// best combined source+destination rank wins, the newest on a tie.
pub fn for_destination<'a>(candidates: &[SourceMatch<'a>], destination: &Tags) -> Option<&'a Resource> {
    candidates
        .iter()
        .filter_map(|m| {
            let (_, destinations) = m.policy.spec.sources_destinations()?;
            best_rank(destinations, destination).map(|d| (m.rank.combine(d), m.policy))
        })
        .max_by(|(ra, a), (rb, b)| ra.cmp(rb).then_with(|| a.meta.creation_order().cmp(&b.meta.creation_order())))
        .map(|(_, p)| p)
}

/// The one policy for a route that forwards to several destinations (the
/// seed's heuristic, as Kuma's `BestConnectionPolicyForDestination` does it):
/// take the policy each destination chose ([`for_destination`]); keep those
/// whose destinations name one of the route's services or `*`; if any names
/// `*`, keep only those; the oldest of what is left wins. So backends of one
/// service get the oldest of their policies, and a route over different
/// services prefers a wildcard policy.
pub fn for_destinations<'a>(candidates: &[SourceMatch<'a>], destinations: &[Tags]) -> Option<&'a Resource> {
    let mut chosen: BTreeMap<&str, &'a Resource> = BTreeMap::new();
    for destination in destinations {
        if let Some(p) = for_destination(candidates, destination) {
            chosen.insert(&p.meta.name, p);
        }
    }
    let services: Vec<&str> = destinations.iter().filter_map(|d| d.get(SERVICE_TAG).map(String::as_str)).collect();
    let mut wildcard = Vec::new();
    let mut indexed = Vec::new();
    for p in chosen.values() {
        let Some((_, dest_selectors)) = p.spec.sources_destinations() else { continue };
        let named: Vec<&str> = dest_selectors.iter().filter_map(|s| s.service()).collect();
        if named.contains(&"*") {
            wildcard.push(*p);
        }
        if named.iter().any(|n| *n == "*" || services.contains(n)) {
            indexed.push(*p);
        }
    }
    let pool = if wildcard.is_empty() { indexed } else { wildcard };
    pool.into_iter().min_by(|a, b| a.meta.creation_order().cmp(&b.meta.creation_order()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use kuma_model::UnknownFields;

    fn timeout(name: &str, source: &str, dest: &str, created: u32) -> String {
        format!(
            "---\ntype: Timeout\nname: {name}\ncreationTime: '2024-01-01T00:00:{created:02}Z'\nsources: [{{match: {source}}}]\ndestinations: [{{match: {{kuma.io/service: '{dest}'}}}}]\nconf: {{connectTimeout: {created}s}}\n"
        )
    }

    fn tags(pairs: &[(&str, &str)]) -> Tags {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    fn set(docs: &[String]) -> ResourceSet {
        ResourceSet::load([("p.yaml", docs.concat().as_str())], UnknownFields::Reject).unwrap().0
    }

    #[test]
    fn sources_match_listener_tags() {
        let s = set(&[
            timeout("http", "{kuma.io/service: gw, port: http}", "*", 1),
            timeout("any", "{kuma.io/service: '*'}", "*", 2),
            timeout("other", "{kuma.io/service: other}", "*", 3),
        ]);
        let listener = tags(&[("kuma.io/service", "gw"), ("port", "http")]);
        let names: Vec<_> =
            by_source(&s, "default", Kind::Timeout, &listener).iter().map(|m| m.policy.meta.name.clone()).collect();
        assert_eq!(names, ["any", "http"]);
    }

    #[test]
    fn best_rank_per_destination_newest_on_tie() {
        let s = set(&[
            timeout("wild", "{kuma.io/service: gw}", "*", 1),
            timeout("exact-old", "{kuma.io/service: gw}", "web", 2),
            timeout("exact-new", "{kuma.io/service: gw}", "web", 3),
        ]);
        let c = by_source(&s, "default", Kind::Timeout, &tags(&[("kuma.io/service", "gw")]));
        assert_eq!(for_destination(&c, &tags(&[("kuma.io/service", "web")])).unwrap().meta.name, "exact-new");
        assert_eq!(for_destination(&c, &tags(&[("kuma.io/service", "api")])).unwrap().meta.name, "wild");
    }

    #[test]
    fn several_backends_same_service_take_the_oldest() {
        let s = set(&[
            timeout("web-v1", "{kuma.io/service: gw}", "web", 5),
            timeout("web-old", "{kuma.io/service: gw}", "web", 1),
        ]);
        let c = by_source(&s, "default", Kind::Timeout, &tags(&[("kuma.io/service", "gw")]));
        let dests = [tags(&[("kuma.io/service", "web"), ("version", "1")]), tags(&[("kuma.io/service", "web")])];
        // Each destination picks the newest (web-v1); across them, the oldest of those chosen.
        assert_eq!(for_destinations(&c, &dests).unwrap().meta.name, "web-v1");
    }

    #[test]
    fn different_services_prefer_a_wildcard_policy() {
        let s = set(&[
            timeout("web", "{kuma.io/service: gw}", "web", 1),
            timeout("api", "{kuma.io/service: gw}", "api", 2),
            timeout("all", "{kuma.io/service: gw}", "*", 3),
        ]);
        let c = by_source(&s, "default", Kind::Timeout, &tags(&[("kuma.io/service", "gw")]));
        let dests = [tags(&[("kuma.io/service", "web")]), tags(&[("kuma.io/service", "other")])];
        // "web" gets policy web, "other" gets all (wildcard): the wildcard one wins.
        assert_eq!(for_destinations(&c, &dests).unwrap().meta.name, "all");
        let no_wild = [tags(&[("kuma.io/service", "web")]), tags(&[("kuma.io/service", "api")])];
        assert_eq!(for_destinations(&c, &no_wild).unwrap().meta.name, "web", "no wildcard chosen: the oldest");
    }
}
