//! Selectors, tag sets and hostnames from `kuma_model::fuzzing` (the
//! `arbitrary` feature) through the matchers: no panics, and the properties
//! that must hold for any input.
#![no_main]

use kuma_model::Selector;
use kuma_model::fuzzing::{Hostname, TagSet};
use kuma_policy::{hostname, rank};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|input: (Selector, TagSet, Hostname, Hostname)| {
    let (selector, TagSet(tags), Hostname(a), Hostname(b)) = input;
    if let Some(r) = rank(&selector, &tags) {
        assert!(r.exact <= r.total);
        assert_eq!(r.total as usize, selector.match_tags.len());
        // A selector ranks against the tags it matches, so it matches them
        // with more tags too (a key the input does not have: overwriting one
        // of its own tags is not "more tags").
        let mut more = tags.clone();
        let extra = format!("{}~", more.keys().map(String::as_str).collect::<String>());
        more.insert(extra, "x".into());
        assert_eq!(rank(&selector, &more), Some(r));
    } else {
        // No match means some selector key is missing or has another value.
        assert!(selector.match_tags.iter().any(|(k, v)| tags.get(k).is_none_or(|t| v != "*" && t != v)));
    }
    // Hostname matching is symmetric and reflexive, and never panics.
    assert_eq!(hostname::matches(&a, &b), hostname::matches(&b, &a));
    assert!(hostname::matches(&a, &a));
    assert!(hostname::matches(&a, &a.to_ascii_uppercase()), "hostnames compare without case");
    assert_eq!(hostname::by_exactness(&a, &b), hostname::by_exactness(&b, &a).reverse());
});
