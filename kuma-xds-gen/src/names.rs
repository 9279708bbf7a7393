//! Names of the generated resources, as Kuma gives them, so that Envoy stats,
//! admin dumps and Kuma's golden files line up.

use kuma_model::{SERVICE_TAG, Tags};
use sha2::{Digest, Sha256};

/// `<gateway>:<PROTOCOL>:<port>`, for example `edge-gateway:HTTP:8080`.
pub(crate) fn listener(gateway: &str, protocol: &str, port: u32) -> String {
    format!("{gateway}:{protocol}:{port}")
}

/// The route configuration of a listener's host group: `<listener>:<key>`
/// (`<listener>:*` for HTTP, `<listener>:<hostname>` for HTTPS).
pub(crate) fn route_configuration(listener: &str, key: &str) -> String {
    format!("{listener}:{key}")
}

/// A mesh service cluster for a destination reached from a host:
/// `<service>-<16 hex>` (just `<service>` when the destination is only a
/// service tag and there are no host tags, as for delegated outbounds), the hex being the first 8 bytes of SHA-256 over
/// `k+v` of the sorted destination tags, then of the sorted host tags. The
/// same service gets one cluster per distinct listener tag set, which is how
/// policies can differ per listener.
pub(crate) fn cluster(destination: &Tags, host_tags: &Tags) -> String {
    let service = destination.get(SERVICE_TAG).map_or("", String::as_str);
    if destination.len() == 1 && host_tags.is_empty() {
        return service.to_string();
    }
    let mut hash = Sha256::new();
    for (k, v) in destination.iter().chain(host_tags.iter()) {
        hash.update(k.as_bytes());
        hash.update(v.as_bytes());
    }
    let digest = hash.finalize();
    let mut name = String::with_capacity(service.len() + 17);
    name.push_str(service);
    name.push('-');
    const HEX: &[u8; 16] = b"0123456789abcdef";
    for b in &digest[..8] {
        name.push(char::from(HEX[usize::from(b >> 4)]));
        name.push(char::from(HEX[usize::from(b & 15)]));
    }
    name
}

/// Go's `http.CanonicalHeaderKey`: `set-header-one` → `Set-Header-One`.
/// Names with characters outside a token are returned unchanged, as Go does.
pub(crate) fn canonical_header(name: &str) -> String {
    let token = |c: char| c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~".contains(c);
    if !name.chars().all(token) {
        return name.to_string();
    }
    let mut upper = true;
    name.chars()
        .map(|c| {
            let out = if upper { c.to_ascii_uppercase() } else { c.to_ascii_lowercase() };
            upper = c == '-';
            out
        })
        .collect()
}

/// The header Kuma carries the source's tags in (`&key=value&...&`).
pub(crate) const KUMA_TAGS_HEADER: &str = "x-kuma-tags";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cluster_names_hash_destination_and_host_tags() {
        use kuma_model::tags::tags_of;
        let dest = tags_of([("kuma.io/service", "echo-service")]);
        let host = tags_of([("kuma.io/service", "gateway-default"), ("port", "http/8080")]);
        assert_eq!(cluster(&dest, &host), "echo-service-9f149ed9e14091ca");
    }

    #[test]
    fn headers_are_canonical_like_go() {
        assert_eq!(canonical_header("set-header-one"), "Set-Header-One");
        assert_eq!(canonical_header("X-FOO"), "X-Foo");
        assert_eq!(canonical_header(":authority"), ":authority");
    }
}
