//! `arbitrary` support (feature `arbitrary`): tags, selectors, hostnames and
//! the route match types, for fuzzing code that uses them.
//!
//! Tag keys and values, and hostname labels, are drawn from small alphabets
//! so that generated selectors, tags and hostnames often match each other:
//! uniformly random strings almost never would, and a fuzzer would then
//! spend its time on the "no match" path only.
//!
//! ```
//! use arbitrary::{Arbitrary, Unstructured};
//! use kuma_model::fuzzing::{Hostname, TagSet};
//! use kuma_model::Selector;
//! let bytes = [7u8; 64];
//! let mut u = Unstructured::new(&bytes);
//! let (selector, tags, host) = <(Selector, TagSet, Hostname)>::arbitrary(&mut u).unwrap();
//! # let _ = (selector, tags.0, host.0);
//! ```

use arbitrary::{Arbitrary, Result, Unstructured};

use crate::tags::{SERVICE_TAG, Selector, Tags};

const KEYS: [&str; 5] = [SERVICE_TAG, "kuma.io/zone", "version", "port", "team"];
const VALUES: [&str; 6] = ["edge", "web", "api", "1", "http/8080", "x.y"];
const LABELS: [&str; 6] = ["foo", "bar", "example", "com", "a-b", "x1"];

/// A tag set drawn from a few keys and values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TagSet(pub Tags);

fn tags(u: &mut Unstructured<'_>, wildcard: bool) -> Result<Tags> {
    let mut out = Tags::new();
    for _ in 0..u.int_in_range(0..=KEYS.len())? {
        let key = *u.choose(&KEYS)?;
        let value = if wildcard && u.ratio(1, 4)? { "*" } else { *u.choose(&VALUES)? };
        out.insert(key.to_string(), value.to_string());
    }
    Ok(out)
}

impl<'a> Arbitrary<'a> for TagSet {
    fn arbitrary(u: &mut Unstructured<'a>) -> Result<Self> {
        tags(u, false).map(TagSet)
    }
}

impl<'a> Arbitrary<'a> for Selector {
    /// Keys and values from the same few as [`TagSet`], a quarter of the
    /// values `*`.
    fn arbitrary(u: &mut Unstructured<'a>) -> Result<Self> {
        Ok(Selector { match_tags: tags(u, true)? })
    }
}

/// A hostname as a listener or route names it: `*`, `*.` and labels, or
/// labels; sometimes in upper case, since hostnames compare without case.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hostname(pub String);

impl<'a> Arbitrary<'a> for Hostname {
    fn arbitrary(u: &mut Unstructured<'a>) -> Result<Self> {
        if u.ratio(1, 8)? {
            return Ok(Hostname("*".into()));
        }
        let mut labels: Vec<String> = Vec::new();
        if u.ratio(1, 3)? {
            labels.push("*".into());
        }
        for _ in 0..u.int_in_range(1..=4)? {
            let label = *u.choose(&LABELS)?;
            labels.push(if u.ratio(1, 6)? { label.to_ascii_uppercase() } else { label.to_string() });
        }
        Ok(Hostname(labels.join(".")))
    }
}
