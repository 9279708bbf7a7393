//! Tags, tag selectors and Kuma's rules for them.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::violation::{FieldPath, Violations};

/// A set of Kuma tags (`kuma.io/service: backend`). Ordered, so every walk
/// over it is deterministic.
pub type Tags = BTreeMap<String, String>;

/// The tag that names a service.
pub const SERVICE_TAG: &str = "kuma.io/service";
/// The tag that names a service's protocol.
pub const PROTOCOL_TAG: &str = "kuma.io/protocol";
/// The tag that names the zone of a data plane.
pub const ZONE_TAG: &str = "kuma.io/zone";
/// The tag Kuma sets on external services.
pub const EXTERNAL_SERVICE_TAG: &str = "kuma.io/external-service";

/// Tags a gateway or listener may not set itself: Kuma owns them.
pub const RESERVED_GATEWAY_TAGS: [&str; 4] = [SERVICE_TAG, PROTOCOL_TAG, ZONE_TAG, EXTERNAL_SERVICE_TAG];

/// `{match: {tag: value}}`: matches a tag set when every key is present with
/// an equal value, or with any value when the selector says `"*"`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Selector {
    /// The tags to match.
    #[serde(rename = "match", skip_serializing_if = "BTreeMap::is_empty")]
    pub match_tags: Tags,
}

impl Selector {
    /// A selector from `(key, value)` pairs.
    ///
    /// ```
    /// use kuma_model::Selector;
    /// let s = Selector::from_pairs([("kuma.io/service", "edge")]);
    /// assert_eq!(s.match_tags["kuma.io/service"], "edge");
    /// ```
    pub fn from_pairs<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> Self {
        Self { match_tags: pairs.into_iter().map(|(k, v)| (k.to_string(), v.to_string())).collect() }
    }

    /// The `kuma.io/service` value this selector asks for, if any.
    pub fn service(&self) -> Option<&str> {
        self.match_tags.get(SERVICE_TAG).map(String::as_str)
    }
}

/// A tag set from `(key, value)` pairs.
///
/// ```
/// let t = kuma_model::tags::tags_of([("kuma.io/service", "web")]);
/// assert_eq!(t["kuma.io/service"], "web");
/// ```
pub fn tags_of<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> Tags {
    pairs.into_iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

/// Which characters a tag value may hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum TagValues {
    /// Selector values: the tag charset (with `/`) or exactly `"*"`.
    #[default]
    Selector,
    /// Data plane tag values: alphanumerics, dots, dashes, underscores and colons.
    Concrete,
}

/// Options of [`validate_selectors`] and [`validate_tags`], after Kuma's
/// `ValidateSelectorsOpts`/`ValidateTagsOpts`.
#[derive(Debug, Clone, Copy, Default)]
pub struct TagRules<'a> {
    /// The selector list must not be empty (`must have at least one element`).
    pub require_at_least_one_selector: bool,
    /// Only one selector is allowed (crossMesh gateways).
    pub require_at_most_one_selector: bool,
    /// Each tag set needs a tag (`must have at least one tag`).
    pub require_at_least_one_tag: bool,
    /// Each tag set must name `kuma.io/service`.
    pub require_service: bool,
    /// No tag set may name `kuma.io/service`.
    pub forbid_service: bool,
    /// Keys that may not be used at all (`tag name must not be "…"`).
    pub forbidden_keys: &'a [&'a str],
    /// The value charset.
    pub values: TagValues,
}

impl TagRules<'static> {
    /// No requirement beyond the charset of names and selector values.
    pub const NONE: TagRules<'static> = TagRules {
        require_at_least_one_selector: false,
        require_at_most_one_selector: false,
        require_at_least_one_tag: false,
        require_service: false,
        forbid_service: false,
        forbidden_keys: &[],
        values: TagValues::Selector,
    };

    /// What Kuma demands of gateway and route selectors, and of connection
    /// policy `sources`/`destinations`.
    pub const SELECTORS: TagRules<'static> = TagRules {
        require_at_least_one_selector: true,
        require_at_least_one_tag: true,
        require_service: true,
        ..TagRules::NONE
    };
}

/// Checks a list of selectors found at `path` (for example `selectors`).
pub fn validate_selectors(path: &FieldPath, selectors: &[Selector], rules: TagRules<'_>, out: &mut Violations) {
    if rules.require_at_least_one_selector && selectors.is_empty() {
        out.add(path, "must have at least one element");
    }
    for (i, selector) in selectors.iter().enumerate() {
        validate_tags(&path.index(i).field("match"), &selector.match_tags, rules, out);
        if i > 0 && rules.require_at_most_one_selector {
            out.add(path.index(i), "there can be at most one selector");
        }
    }
}

/// Checks one tag set found at `path` (for example `selectors[0].match` or
/// `conf.listeners[0].tags`), the way Kuma's `validateTagKeyValues` does.
pub fn validate_tags(path: &FieldPath, tags: &Tags, rules: TagRules<'_>, out: &mut Violations) {
    if rules.require_at_least_one_tag && tags.is_empty() {
        out.add(path, "must have at least one tag");
    }
    for (key, value) in tags {
        if key.is_empty() {
            out.add(path, "tag name must be non-empty");
        }
        if !key.chars().all(is_tag_name_char) {
            out.add(
                path.key(key),
                "tag name must consist of alphanumeric characters, dots, dashes, slashes and underscores",
            );
        }
        if rules.forbidden_keys.contains(&key.as_str()) {
            out.add(path.key(key), format!("tag name must not be {key:?}"));
        }
        if value.is_empty() {
            out.add(path.key(key), "tag value must be non-empty");
        }
        match rules.values {
            TagValues::Selector => {
                if !(value == "*" || value.chars().all(is_tag_name_char)) {
                    out.add(
                        path.key(key),
                        "tag value must consist of alphanumeric characters, dots, dashes, slashes and underscores or be \"*\"",
                    );
                }
            }
            TagValues::Concrete => {
                if !value.chars().all(|c| is_tag_name_char(c) && c != '/') {
                    out.add(
                        path.key(key),
                        "tag value must consist of alphanumeric characters, dots, dashes and underscores",
                    );
                }
            }
        }
    }
    let has_service = tags.contains_key(SERVICE_TAG);
    if rules.forbid_service && has_service {
        out.add(path, format!("{SERVICE_TAG:?} must not be defined"));
    }
    if rules.require_service && !has_service {
        out.add(path, format!("mandatory tag {SERVICE_TAG:?} is missing"));
    }
}

fn is_tag_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | ':' | '/')
}
