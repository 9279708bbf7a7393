//! Arbitrary selectors, tag sets and hostnames through the matchers: no
//! panics, and the properties that must hold for any input.
#![no_main]

use kuma_model::{Selector, Tags};
use kuma_policy::{hostname, rank};
use libfuzzer_sys::fuzz_target;

fn split_tags(text: &str) -> Tags {
    text.split(',').filter_map(|kv| kv.split_once('=')).map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let mut parts = text.splitn(4, '|');
    let (Some(sel), Some(tags), Some(a), b) = (parts.next(), parts.next(), parts.next(), parts.next()) else { return };
    let selector = Selector { match_tags: split_tags(sel) };
    let tags = split_tags(tags);
    if let Some(r) = rank(&selector, &tags) {
        assert!(r.exact <= r.total);
        assert_eq!(r.total as usize, selector.match_tags.len());
        // A selector ranks against the tags it matches, so it matches them with more tags too.
        // (An extra tag the input does not have; the fuzzer found that
        // overwriting one of its own tags is not "more tags".)
        let mut more = tags.clone();
        let extra = format!("{}~", more.keys().map(String::as_str).collect::<String>());
        more.insert(extra, "x".into());
        assert_eq!(rank(&selector, &more), Some(r));
    }
    let b = b.unwrap_or("*");
    // Hostname matching is symmetric and reflexive, and never panics.
    assert_eq!(hostname::matches(a, b), hostname::matches(b, a));
    assert!(hostname::matches(a, a));
    let _ = hostname::by_exactness(a, b);
    assert_eq!(hostname::by_exactness(a, b), hostname::by_exactness(b, a).reverse());
});
