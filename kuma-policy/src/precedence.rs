//! Route precedence as a total order on a summary of each route match, the
//! way linkerd2-proxy's `http/route` expresses it: sorting the summaries
//! ascending puts the most specific match first.
//!
//! Kuma's order (`gw/route/sorter.go`), then tie-breaks Kuma lacks (its
//! `sort.Sort` is unstable): exact path (longer first) > prefix (longer
//! first) > regex (longer first) > no path; then a method; then more header
//! matches; then more query matches; then the path text; then the route's
//! creation order, name, rule index and match index.

use std::cmp::{Ordering, Reverse};

/// The path part of a match, by specificity.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum PathSpecificity {
    /// An exact path.
    Exact(String),
    /// A path prefix.
    Prefix(String),
    /// A regular expression.
    Regex(String),
    /// No path condition.
    None,
}

impl PathSpecificity {
    fn class(&self) -> u8 {
        match self {
            PathSpecificity::Exact(_) => 0,
            PathSpecificity::Prefix(_) => 1,
            PathSpecificity::Regex(_) => 2,
            PathSpecificity::None => 3,
        }
    }

    fn text(&self) -> &str {
        match self {
            PathSpecificity::Exact(p) | PathSpecificity::Prefix(p) | PathSpecificity::Regex(p) => p,
            PathSpecificity::None => "",
        }
    }
}

/// What decides a match's place among the routes of a virtual host.
///
/// ```
/// use kuma_policy::{MatchSummary, PathSpecificity};
/// let api = MatchSummary::new(PathSpecificity::Prefix("/api/".into()));
/// let root = MatchSummary::new(PathSpecificity::Prefix("/".into()));
/// let exact = MatchSummary::new(PathSpecificity::Exact("/".into()));
/// let mut routes = vec![root.clone(), api.clone(), exact.clone()];
/// routes.sort();
/// assert_eq!(routes, [exact, api, root]);
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct MatchSummary {
    /// The path condition.
    pub path: PathSpecificity,
    /// A method condition is present.
    pub method: bool,
    /// Number of header conditions (the method's pseudo-header excluded).
    pub headers: usize,
    /// Number of query parameter conditions.
    pub query_parameters: usize,
    /// Where the match comes from, for deterministic ties.
    pub origin: MatchOrigin,
}

/// The route, rule and match a summary was made from. Orders older routes
/// first, then by name, rule and match index.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MatchOrigin {
    /// The route's creation time (`(true, None)` when unknown, after every
    /// dated route).
    pub creation: (bool, Option<kuma_model::Timestamp>),
    /// The route's name.
    pub route: String,
    /// Index of the rule in the route.
    pub rule: usize,
    /// Index of the match in the rule.
    pub match_index: usize,
}

impl MatchSummary {
    /// A summary with only a path condition.
    pub fn new(path: PathSpecificity) -> Self {
        MatchSummary { path, method: false, headers: 0, query_parameters: 0, origin: MatchOrigin::default() }
    }

    fn key(&self) -> impl Ord + '_ {
        (
            self.path.class(),
            Reverse(self.path.text().len()),
            Reverse(self.method),
            Reverse(self.headers),
            Reverse(self.query_parameters),
            self.path.text(),
            &self.origin,
        )
    }
}

impl Ord for MatchSummary {
    /// `Less` means more specific: it is tried first.
    fn cmp(&self, other: &Self) -> Ordering {
        self.key().cmp(&other.key())
    }
}

impl PartialOrd for MatchSummary {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

#[cfg(test)]
mod tests {
    use super::PathSpecificity::*;
    use super::*;

    fn s(path: PathSpecificity) -> MatchSummary {
        MatchSummary::new(path)
    }

    #[test]
    fn kuma_precedence_table() {
        let mut with_method = s(Prefix("/a/".into()));
        with_method.method = true;
        let mut with_headers = s(Prefix("/a/".into()));
        with_headers.headers = 2;
        let mut with_query = s(Prefix("/a/".into()));
        with_query.query_parameters = 1;
        let ordered = [
            s(Exact("/longer".into())),
            s(Exact("/abc".into())),
            s(Prefix("/longer/".into())),
            with_method.clone(),
            with_headers.clone(),
            with_query.clone(),
            s(Prefix("/a/".into())),
            s(Regex("/.*/x".into())),
            s(Regex(".*".into())),
            s(None),
        ];
        for (i, a) in ordered.iter().enumerate() {
            for b in &ordered[i + 1..] {
                assert!(a < b, "{a:?} should precede {b:?}");
            }
        }
    }

    #[test]
    fn golden_13_order() {
        // Kuma's golden 13: exact /match/bar, exact /match/baz (from a
        // prefix), prefix /match/baz/, regex /match/foo.
        let mut routes = [
            s(Regex("/match/foo".into())),
            s(Prefix("/match/baz/".into())),
            s(Exact("/match/baz".into())),
            s(Exact("/match/bar".into())),
        ];
        routes.sort();
        assert_eq!(
            routes.iter().map(|r| r.path.clone()).collect::<Vec<_>>(),
            [
                Exact("/match/bar".into()),
                Exact("/match/baz".into()),
                Prefix("/match/baz/".into()),
                Regex("/match/foo".into())
            ]
        );
    }

    #[test]
    fn equal_regexes_are_still_ordered() {
        // Kuma never orders equal-length regexes; here the method and the
        // header count still decide, then the origin.
        let plain = s(Regex("/a.*".into()));
        let mut method = plain.clone();
        method.method = true;
        assert!(method < plain);
        let mut older = plain.clone();
        older.origin.creation = (false, kuma_model::Timestamp::parse("2024-01-01T00:00:00Z"));
        let mut newer = plain.clone();
        newer.origin.creation = (true, Option::None);
        assert!(older < newer);
    }
}
