//! Kuma's `DataSource`: where a certificate, key or CA comes from.

use base64::Engine as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// One of `secret`, `file`, `inline` (base64 bytes) or `inlineString`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub enum DataSource {
    /// The name of a Kuma `Secret` in the same mesh.
    #[serde(rename = "secret")]
    Secret(String),
    /// A path on the proxy's file system.
    #[serde(rename = "file")]
    File(String),
    /// Raw bytes, written as base64 in YAML/JSON.
    #[serde(rename = "inline", with = "base64_bytes")]
    Inline(Vec<u8>),
    /// A literal string (for example a PEM bundle).
    #[serde(rename = "inlineString")]
    InlineString(String),
}

impl DataSource {
    /// The kind of source, as Kuma names it in secret names (`secret`,
    /// `file`, `inline`, `inlineString`).
    pub fn kind(&self) -> &'static str {
        match self {
            DataSource::Secret(_) => "secret",
            DataSource::File(_) => "file",
            DataSource::Inline(_) => "inline",
            DataSource::InlineString(_) => "inlineString",
        }
    }
}

/// serde helpers for proto `bytes` fields, which JSON carries as base64.
pub(crate) mod base64_bytes {
    use super::*;

    pub(crate) fn serialize<S: Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&base64::engine::general_purpose::STANDARD.encode(bytes))
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let text = String::deserialize(d)?;
        decode(&text).map_err(serde::de::Error::custom)
    }

    /// Accepts standard and URL-safe base64, padded or not, as protojson does.
    pub(crate) fn decode(text: &str) -> Result<Vec<u8>, String> {
        use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
        let text = text.trim();
        for engine in [&STANDARD, &STANDARD_NO_PAD, &URL_SAFE, &URL_SAFE_NO_PAD] {
            if let Ok(bytes) = engine.decode(text) {
                return Ok(bytes);
            }
        }
        Err("invalid base64 data".to_string())
    }
}
