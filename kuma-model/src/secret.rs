//! `Secret`: bytes (certificates, keys) referred to by name.

use serde::{Deserialize, Serialize};

use crate::datasource::base64_bytes;
use crate::violation::{FieldPath, Violations};

/// The spec of a `Secret`: `data`, base64 in YAML/JSON.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SecretSpec {
    /// The secret bytes.
    #[serde(with = "base64_bytes", skip_serializing_if = "Vec::is_empty")]
    pub data: Vec<u8>,
}

impl SecretSpec {
    /// Kuma's core store checks nothing; its Kubernetes webhook refuses an
    /// empty value, and so do we: an empty secret can only break TLS later.
    pub fn validate(&self) -> Violations {
        let mut out = Violations::new();
        if self.data.is_empty() {
            out.add_extra(FieldPath::root().field("data"), "cannot be empty");
        }
        out
    }
}
