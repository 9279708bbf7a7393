//! Tag selectors: does a selector match a tag set, and how well.

use kuma_model::{Resource, Selector, Tags};

/// How specific a match is, after Kuma's `TagSelectorRank`: more matched
/// tags first, then more exact (non-`*`) values. Greater is better.
///
/// ```
/// use kuma_policy::{rank, Rank};
/// use kuma_model::{Selector, Tags};
/// let tags: Tags = [("kuma.io/service".into(), "web".into()), ("version".into(), "v1".into())].into();
/// let exact = rank(&Selector::from_pairs([("kuma.io/service", "web")]), &tags).unwrap();
/// let wild = rank(&Selector::from_pairs([("kuma.io/service", "*")]), &tags).unwrap();
/// assert!(exact > wild);
/// assert!(rank(&Selector::from_pairs([("kuma.io/service", "api")]), &tags).is_none());
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Rank {
    /// Tags the selector names (all of them matched).
    pub total: usize,
    /// Of those, the ones with an exact value.
    pub exact: usize,
}

impl Rank {
    /// The sum of two ranks (a policy's source rank plus destination rank).
    pub fn combine(self, other: Rank) -> Rank {
        Rank { total: self.total + other.total, exact: self.exact + other.exact }
    }
}

/// The rank of `selector` against `tags`, or `None` when it does not match:
/// every selector tag must be present with an equal value, or any value
/// when the selector says `"*"`.
pub fn rank(selector: &Selector, tags: &Tags) -> Option<Rank> {
    let mut r = Rank::default();
    for (key, want) in &selector.match_tags {
        let have = tags.get(key)?;
        if want == "*" {
            r.total += 1;
        } else if want == have {
            r.total += 1;
            r.exact += 1;
        } else {
            return None;
        }
    }
    Some(r)
}

/// The best rank of any selector in `selectors` against `tags`. An empty
/// list matches everything with the lowest rank.
pub fn best_rank(selectors: &[Selector], tags: &Tags) -> Option<Rank> {
    if selectors.is_empty() {
        return Some(Rank::default());
    }
    selectors.iter().filter_map(|s| rank(s, tags)).max()
}

/// Of `candidates` (a resource, its selectors, and anything to carry along),
/// the one whose selectors best match `tags`, the newest on a tie: Kuma's
/// rule for which MeshGateway, ProxyTemplate or TrafficTrace applies.
pub fn best_match<'a, T>(
    candidates: impl IntoIterator<Item = (&'a Resource, &'a [Selector], T)>,
    tags: &Tags,
) -> Option<(&'a Resource, T)> {
    candidates
        .into_iter()
        .filter_map(|(r, selectors, t)| best_rank(selectors, tags).map(|rank| (rank, r, t)))
        .max_by(|(ra, a, _), (rb, b, _)| ra.cmp(rb).then_with(|| a.meta.creation_order().cmp(&b.meta.creation_order())))
        .map(|(_, r, t)| (r, t))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tags(pairs: &[(&str, &str)]) -> Tags {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn matching() {
        let t = tags(&[("kuma.io/service", "gw"), ("port", "http/8080")]);
        assert_eq!(
            rank(&Selector::from_pairs([("kuma.io/service", "gw"), ("port", "*")]), &t),
            Some(Rank { total: 2, exact: 1 })
        );
        assert_eq!(rank(&Selector::from_pairs([("zone", "*")]), &t), None, "a wildcard still needs the key");
        assert_eq!(rank(&Selector::default(), &t), Some(Rank::default()));
    }

    #[test]
    fn ranking_order() {
        // More tags beat more exact tags.
        assert!(Rank { total: 2, exact: 0 } > Rank { total: 1, exact: 1 });
        assert!(Rank { total: 2, exact: 2 } > Rank { total: 2, exact: 1 });
    }

    #[test]
    fn best_of_a_list() {
        let t = tags(&[("kuma.io/service", "gw"), ("version", "2")]);
        let list = [
            Selector::from_pairs([("kuma.io/service", "*")]),
            Selector::from_pairs([("kuma.io/service", "gw"), ("version", "2")]),
            Selector::from_pairs([("kuma.io/service", "other")]),
        ];
        assert_eq!(best_rank(&list, &t), Some(Rank { total: 2, exact: 2 }));
        assert_eq!(best_rank(&[], &t), Some(Rank::default()));
        assert_eq!(best_rank(&list[2..], &t), None);
    }
}
