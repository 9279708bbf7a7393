//! From a host's routes to its ordered route entries: one entry per
//! (rule, match), sorted by [`MatchSummary`] (this crate's precedence
//! order). A PREFIX match covers whole path segments: `/api` becomes the
//! prefix `/api/` plus an exact `/api` (the root prefix `/` gets one only
//! when a prefix rewrite needs it), and the pair becomes one separated
//! prefix where that means the same (see `separate_prefixes`).

use std::collections::HashMap;

use kuma_model::route::{HttpMatch, HttpRule, PathMatchKind, Redirect, Rewrite};

use crate::hosts::AttachedRoute;
use crate::precedence::{MatchOrigin, MatchSummary, PathSpecificity};

/// How an entry relates to the match it came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Variant {
    /// The match as written (exact, regex, root prefix, no path).
    AsWritten,
    /// The `/p/` entry of a PREFIX match.
    Prefix,
    /// The exact `/p` entry of a PREFIX match.
    ExactTwin,
    /// Both entries of a PREFIX match as one separated prefix (`/p` or
    /// `/p/...`), in the `/p/` entry's place.
    Separated,
}

/// One planned entry: which rule and match of which route, and where it
/// sorts.
#[derive(Debug, Clone)]
pub(crate) struct Planned<'h, 'a> {
    pub(crate) summary: MatchSummary,
    pub(crate) variant: Variant,
    pub(crate) route: &'h AttachedRoute<'a>,
    pub(crate) rule_index: usize,
    pub(crate) match_index: Option<usize>,
    pub(crate) rule: &'h HttpRule,
    pub(crate) conditions: &'h HttpMatch,
}

/// The match of a rule without matches: any request.
pub(crate) static ANY_REQUEST: std::sync::LazyLock<HttpMatch> = std::sync::LazyLock::new(HttpMatch::default);

/// The redirect, URL rewrite and path rewrite (the redirect's, else the
/// rewrite's) of a rule; the last filter of each kind wins.
pub fn path_rewrite(rule: &HttpRule) -> (Option<&Redirect>, Option<&Rewrite>, Option<&Rewrite>) {
    let redirect = rule.filters.iter().rev().find_map(|f| f.redirect.as_ref());
    let rewrite = rule.filters.iter().rev().find_map(|f| f.rewrite.as_ref());
    let path = match redirect {
        Some(r) => r.path.as_ref(),
        None => rewrite,
    };
    (redirect, rewrite, path)
}

/// The ordered entries of a host's HTTP routes.
pub(crate) fn plan<'h, 'a>(routes: &'h [AttachedRoute<'a>]) -> Vec<Planned<'h, 'a>> {
    // At most two entries a match (a PREFIX match and its exact twin):
    // reserved at once, rather than copied over as the vector doubles.
    let matches: usize = routes
        .iter()
        .filter_map(|r| r.spec.conf.as_ref().and_then(|c| c.http.as_ref()))
        .flat_map(|http| &http.rules)
        .map(|rule| rule.matches.len().max(1))
        .sum();
    let mut entries = Vec::with_capacity(2 * matches);
    for attached in routes {
        let resource = attached.resource;
        let Some(http) = attached.spec.conf.as_ref().and_then(|c| c.http.as_ref()) else { continue };
        for (rule_index, rule) in http.rules.iter().enumerate() {
            let written = rule.matches.iter().enumerate().map(|(i, m)| (Some(i), m));
            let any = rule.matches.is_empty().then_some((None, &*ANY_REQUEST));
            for (match_index, m) in written.chain(any) {
                let origin = MatchOrigin {
                    creation: (resource.meta.creation_time.is_none(), resource.meta.creation_time),
                    route: resource.meta.name.clone(),
                    rule: rule_index,
                    match_index: match_index.unwrap_or(0),
                };
                let planned = Planned {
                    summary: MatchSummary::new(PathSpecificity::Prefix(String::new())),
                    variant: Variant::AsWritten,
                    route: attached,
                    rule_index,
                    match_index,
                    rule,
                    conditions: m,
                };
                plan_entries(planned, origin, &mut entries);
            }
        }
    }
    dedup_lowered(&mut entries);
    drop_shadowed_twins(&mut entries);
    separate_prefixes(&mut entries);
    // Sorted by index: a stable sort of the entries themselves would move
    // each (about 200 bytes) several times.
    let mut order: Vec<usize> = (0..entries.len()).collect();
    order.sort_by(|&a, &b| entries[a].summary.cmp(&entries[b].summary));
    let mut slots: Vec<Option<Planned<'h, 'a>>> = entries.into_iter().map(Some).collect();
    let mut sorted = Vec::with_capacity(order.len());
    sorted.extend(order.into_iter().filter_map(|i| slots[i].take()));
    sorted
}

fn plan_entries<'h, 'a>(base: Planned<'h, 'a>, origin: MatchOrigin, out: &mut Vec<Planned<'h, 'a>>) {
    let (_, _, path_rewrite) = path_rewrite(base.rule);
    let prefix_rewrite = path_rewrite.and_then(|r| r.replace_prefix_match.as_deref());
    let m = base.conditions;
    // Each entry takes the origin: cloned for the first of two, moved into
    // the last.
    let mut push = |path: PathSpecificity, variant: Variant, origin: MatchOrigin| {
        let summary = MatchSummary {
            path,
            method: m.method.as_str().is_some(),
            headers: m.headers.len(),
            query_parameters: m.query_parameters.len(),
            origin,
        };
        out.push(Planned { summary, variant, ..base.clone() });
    };
    match &m.path {
        None => push(PathSpecificity::Prefix("/".into()), Variant::AsWritten, origin),
        Some(p) => match p.kind {
            PathMatchKind::Exact => push(PathSpecificity::Exact(p.value.clone()), Variant::AsWritten, origin),
            PathMatchKind::Regex => push(PathSpecificity::Regex(p.value.clone()), Variant::AsWritten, origin),
            PathMatchKind::Prefix => {
                let trimmed = p.value.trim_end_matches('/');
                if trimmed.is_empty() {
                    // The root needs an exact twin only to rewrite `/` itself.
                    if prefix_rewrite.is_some() {
                        push(PathSpecificity::Prefix("/".into()), Variant::Prefix, origin.clone());
                        push(PathSpecificity::Exact("/".into()), Variant::ExactTwin, origin);
                    } else {
                        push(PathSpecificity::Prefix("/".into()), Variant::Prefix, origin);
                    }
                } else {
                    push(PathSpecificity::Prefix(format!("{trimmed}/")), Variant::Prefix, origin.clone());
                    push(PathSpecificity::Exact(trimmed.to_string()), Variant::ExactTwin, origin);
                }
            }
            // A kind of path match newer than this crate: no entry, rather
            // than one wider than written.
            _ => {}
        },
    }
}

/// A host reached by several `hostnames` sets of MeshHTTPRoutes can get the
/// same rule from each (a rule without hostnames and an equal one naming
/// the host): Kuma keeps one of identical entries, and so does this.
fn dedup_lowered(entries: &mut Vec<Planned<'_, '_>>) {
    let mut seen: HashMap<(&str, Variant), Vec<(&HttpRule, &HttpMatch)>> = HashMap::new();
    let mut keep = Vec::with_capacity(entries.len());
    for e in entries.iter() {
        keep.push(match e.rule.name.as_deref() {
            None => true,
            Some(name) => {
                let bucket = seen.entry((name, e.variant)).or_default();
                let dup = bucket.iter().any(|(r, c)| *r == e.rule && *c == e.conditions);
                if !dup {
                    bucket.push((e.rule, e.conditions));
                }
                !dup
            }
        });
    }
    let mut keep = keep.into_iter();
    entries.retain(|_| keep.next().unwrap_or(true));
}

/// A PREFIX match's exact twin yields to a written exact match with the
/// same conditions (Kuma's golden `08-prefix-and-exact-match`: the written
/// one wins).
fn drop_shadowed_twins(entries: &mut Vec<Planned<'_, '_>>) {
    let same_conditions = |a: &HttpMatch, b: &HttpMatch| {
        a.method == b.method && a.headers == b.headers && a.query_parameters == b.query_parameters
    };
    let mut written: HashMap<&str, Vec<&HttpMatch>> = HashMap::new();
    for e in entries.iter() {
        if let (Variant::AsWritten, PathSpecificity::Exact(p)) = (e.variant, &e.summary.path) {
            written.entry(p.as_str()).or_default().push(e.conditions);
        }
    }
    let shadowed: Vec<bool> = entries
        .iter()
        .map(|e| match (&e.summary.path, e.variant) {
            (PathSpecificity::Exact(p), Variant::ExactTwin) => {
                written.get(p.as_str()).is_some_and(|ms| ms.iter().any(|m| same_conditions(m, e.conditions)))
            }
            _ => false,
        })
        .collect();
    let mut shadowed = shadowed.into_iter();
    entries.retain(|_| !shadowed.next().unwrap_or(false));
}

/// A PREFIX match `/p` is two Envoy routes in Kuma: exact `/p`, placed among
/// the exact paths, and prefix `/p/`. A separated prefix `/p` (Envoy's
/// `path_separated_prefix`) matches exactly those paths with one route,
/// placed where `/p/` is. That means the same whenever no other route takes
/// `/p` between the two places — only an exact `/p` could (longer prefixes
/// never match `/p`, and regex routes come after) — so the pair is merged
/// when no other entry has the exact path `/p` and the rule rewrites no
/// path (the two rewrite differently). Envoy refuses a separated prefix
/// holding `?` or `#`, so such a path keeps the pair. Half the routes for
/// Envoy to build on prefix-heavy hosts.
fn separate_prefixes(entries: &mut Vec<Planned<'_, '_>>) {
    let mut exact: HashMap<&str, u32> = HashMap::new();
    for e in entries.iter() {
        if let PathSpecificity::Exact(p) = &e.summary.path {
            *exact.entry(p.as_str()).or_default() += 1;
        }
    }
    // `plan_entries` pushes a PREFIX match's two entries one after the other.
    let pairs: Vec<usize> = entries
        .windows(2)
        .enumerate()
        .filter(|(_, w)| {
            let (prefix, twin) = (&w[0], &w[1]);
            prefix.variant == Variant::Prefix
                && twin.variant == Variant::ExactTwin
                && std::ptr::eq(prefix.conditions, twin.conditions)
                && path_rewrite(twin.rule).2.is_none()
                && matches!(&twin.summary.path, PathSpecificity::Exact(p)
                    if exact.get(p.as_str()) == Some(&1) && !p.contains(['?', '#']))
        })
        .map(|(i, _)| i)
        .collect();
    if pairs.is_empty() {
        return;
    }
    let mut drop = vec![false; entries.len()];
    for &i in &pairs {
        entries[i].variant = Variant::Separated;
        drop[i + 1] = true;
    }
    let mut drop = drop.into_iter();
    entries.retain(|_| !drop.next().unwrap_or(false));
}
