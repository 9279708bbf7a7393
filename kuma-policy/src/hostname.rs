//! Hostnames: listener hostnames against route hostnames, and their order.
//!
//! Names compare case-insensitively. `*` matches everything; `*.example.com`
//! matches any name under `example.com` (not `example.com` itself), with a
//! dot boundary: `*.com` does not match `telecom`, which Kuma's route
//! redistribution gets wrong.

use std::cmp::{Ordering, Reverse};

/// True when `a` and `b` can name the same host: equal, or either one is a
/// wildcard that covers the other (Kuma's `match.Hostnames`, symmetric).
///
/// ```
/// use kuma_policy::hostname::matches;
/// assert!(matches("foo.example.com", "*.example.com"));
/// assert!(matches("*.example.com", "*.com"));
/// assert!(matches("*", "anything.io"));
/// assert!(!matches("telecom", "*.com"));
/// assert!(!matches("example.com", "*.example.com"));
/// ```
pub fn matches(a: &str, b: &str) -> bool {
    let (a, b) = (a.to_ascii_lowercase(), b.to_ascii_lowercase());
    a == "*" || b == "*" || a == b || wildcard_covers(&a, &b) || wildcard_covers(&b, &a)
}

/// True when route hostname `name` covers `host`: equal, or `name` is
/// `*.domain` and `host` lies below `domain` (across a dot). Case-insensitive.
///
/// ```
/// use kuma_policy::hostname::covers;
/// assert!(covers("*.example.com", "a.example.com"));
/// assert!(covers("*.com", "*.example.com"));
/// assert!(!covers("a.example.com", "*.example.com"));
/// assert!(!covers("*.com", "telecom"));
/// ```
pub fn covers(name: &str, host: &str) -> bool {
    let (name, host) = (name.to_ascii_lowercase(), host.to_ascii_lowercase());
    name == host || wildcard_covers(&name, &host)
}

/// `wildcard` is `*.domain` and `name` ends in `.domain`.
fn wildcard_covers(wildcard: &str, name: &str) -> bool {
    match wildcard.strip_prefix("*.") {
        Some(domain) => {
            name.len() > domain.len() + 1 && name.ends_with(domain) && name[..name.len() - domain.len()].ends_with('.')
        }
        None => false,
    }
}

/// True when `host` is `*` or a `*.domain` wildcard.
pub fn is_wildcard(host: &str) -> bool {
    host == "*" || host.starts_with("*.")
}

/// Kuma's `SortHostnamesByExactnessDec` as a total order: exact names
/// first (alphabetical), then wildcards with more labels first
/// (`*.a.b.com` before `*.b.com`), then `*` last.
///
/// ```
/// use kuma_policy::hostname::by_exactness;
/// let mut hosts = vec!["*", "*.com", "b.com", "*.x.com", "a.com"];
/// hosts.sort_by(|a, b| by_exactness(a, b));
/// assert_eq!(hosts, ["a.com", "b.com", "*.x.com", "*.com", "*"]);
/// ```
pub fn by_exactness(a: &str, b: &str) -> Ordering {
    key(a).cmp(&key(b))
}

fn key(host: &str) -> (u8, Reverse<usize>, &str) {
    let class = if host == "*" {
        2
    } else if host.starts_with("*.") {
        1
    } else {
        0
    };
    // Kuma compares label counts of wildcards only; exact names go
    // alphabetically whatever their length.
    let labels = if class == 1 { host.split('.').count() } else { 0 };
    (class, Reverse(labels), host)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcard_matching() {
        assert!(matches("a.b.example.com", "*.example.com"));
        assert!(matches("FOO.example.com", "foo.EXAMPLE.com"));
        assert!(!matches("foo.example.org", "*.example.com"));
        assert!(!matches("xexample.com", "*.example.com"));
        assert!(matches("*.example.com", "*.example.com"));
        assert!(!matches("*.example.com", "*.example.org"));
        assert!(!matches("foo.com", "bar.com"));
    }

    #[test]
    fn exactness_order_is_kumas() {
        // Golden 01's host order.
        let mut hosts = vec!["*", "*.example.com", "bar.example.com", "foo.example.com"];
        hosts.sort_by(|a, b| by_exactness(a, b));
        assert_eq!(hosts, ["bar.example.com", "foo.example.com", "*.example.com", "*"]);
    }
}
