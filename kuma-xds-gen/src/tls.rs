//! Server certificates of HTTPS and TLS listeners, as SDS secrets.

use envoy_types::pb::envoy::config::core::v3::{DataSource as EnvoyDataSource, data_source::Specifier};
use envoy_types::pb::envoy::extensions::transport_sockets::tls::v3::{Secret, TlsCertificate, secret};
use kuma_model::{DataSource, Kind, ResourceSet, Spec};

/// A PEM bundle split into its certificates and its one private key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PemBundle {
    /// The certificate chain, in the order written.
    pub certificates: String,
    /// The private key.
    pub key: String,
    /// `rsa` or `ecdsa`.
    pub key_type: &'static str,
}

/// Splits a PEM bundle as Kuma's `NewServerSecret` does, with its messages.
pub(crate) fn split_pem(text: &str) -> Result<PemBundle, String> {
    let mut certificates = String::new();
    let mut key: Option<(String, &'static str)> = None;
    let mut rest = text;
    while let Some(start) = rest.find("-----BEGIN ") {
        let after = &rest[start + 11..];
        // The label is checked before it is used in any message: with a
        // broken header, what follows "BEGIN " is key material.
        let label = after
            .find("-----")
            .map(|end| &after[..end])
            .filter(|l| l.len() <= 64 && l.bytes().all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b' '))
            .ok_or("malformed PEM header: expected -----BEGIN <LABEL>----- on one line")?;
        let end_marker = format!("-----END {label}-----");
        let end = rest.find(&end_marker).ok_or_else(|| format!("PEM block {label:?} has no end"))?;
        let block = &rest[start..end + end_marker.len()];
        rest = &rest[end + end_marker.len()..];
        let key_type = match label {
            "CERTIFICATE" => {
                certificates.push_str(block);
                certificates.push('\n');
                continue;
            }
            "RSA PRIVATE KEY" => "rsa",
            "EC PRIVATE KEY" => "ecdsa",
            "PRIVATE KEY" => pkcs8_key_type(block),
            other => return Err(format!("unsupported PEM block {other:?}")),
        };
        if key.is_some() {
            return Err("secret contains multiple private keys".into());
        }
        key = Some((format!("{block}\n"), key_type));
    }
    if certificates.is_empty() {
        return Err("missing server certificate".into());
    }
    let (key, key_type) = key.ok_or("missing private key")?;
    // Kuma ends the chain with a blank line; kept so the output matches.
    certificates.push('\n');
    Ok(PemBundle { certificates, key, key_type })
}

/// PKCS#8 keys name their algorithm by OID; id-ecPublicKey means ECDSA.
fn pkcs8_key_type(block: &str) -> &'static str {
    use base64::Engine as _;
    const EC_OID: [u8; 9] = [0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01];
    let body: String = block.lines().filter(|l| !l.starts_with("-----")).collect();
    match base64::engine::general_purpose::STANDARD.decode(body.trim()) {
        Ok(der) if der.windows(EC_OID.len()).any(|w| w == EC_OID) => "ecdsa",
        _ => "rsa",
    }
}

fn inline(text: String) -> Option<EnvoyDataSource> {
    Some(EnvoyDataSource { specifier: Some(Specifier::InlineString(text)), ..Default::default() })
}

/// The SDS secret for one listener certificate and its name
/// (`cert.<rsa|ecdsa>:<source kind>:<source id>`, as Kuma names them).
/// `File` sources are read by Envoy itself (the bundle holds key and chain).
pub(crate) fn server_secret(
    set: &ResourceSet,
    mesh: &str,
    source: &DataSource,
    hostnames: &[&str],
) -> Result<(String, Secret), String> {
    let (id, bundle) = match source {
        DataSource::File(path) => {
            let file = |p: &str| {
                Some(EnvoyDataSource { specifier: Some(Specifier::Filename(p.to_string())), ..Default::default() })
            };
            let name = format!("cert.rsa:file:{path}");
            let cert = TlsCertificate { certificate_chain: file(path), private_key: file(path), ..Default::default() };
            return Ok((name.clone(), Secret { name, r#type: Some(secret::Type::TlsCertificate(cert)) }));
        }
        DataSource::Secret(name) => {
            let Some(Spec::Secret(s)) = set.get(Kind::Secret, mesh, name).map(|r| &r.spec) else {
                return Err(format!("secret {name:?} not found in mesh {mesh:?}"));
            };
            (name.clone(), String::from_utf8_lossy(&s.data).into_owned())
        }
        DataSource::Inline(bytes) => (hostnames.join(","), String::from_utf8_lossy(bytes).into_owned()),
        DataSource::InlineString(text) => (hostnames.join(","), text.clone()),
        _ => return Err("a kind of data source this translator does not know".into()),
    };
    let pem = split_pem(&bundle)?;
    let name = format!("cert.{}:{}:{id}", pem.key_type, source.kind());
    let cert = TlsCertificate {
        certificate_chain: inline(pem.certificates),
        private_key: inline(pem.key),
        ..Default::default()
    };
    Ok((name.clone(), Secret { name, r#type: Some(secret::Type::TlsCertificate(cert)) }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_broken_header_never_echoes_the_key() {
        let secret = "MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7";
        let text = format!(
            "-----BEGIN CERTIFICATE-----\nAA==\n-----END CERTIFICATE-----\n-----BEGIN PRIVATE KEY\n{secret}\n-----END PRIVATE KEY-----\n"
        );
        let err = split_pem(&text).err().unwrap();
        assert_eq!(err, "malformed PEM header: expected -----BEGIN <LABEL>----- on one line");
        assert!(!err.contains(secret));
    }

    #[test]
    fn a_bundle_without_a_key_is_refused() {
        let err = split_pem("-----BEGIN CERTIFICATE-----\nAA==\n-----END CERTIFICATE-----\n").err().unwrap();
        assert_eq!(err, "missing private key");
    }

    #[test]
    fn pem_errors_as_kuma() {
        let cert = "-----BEGIN CERTIFICATE-----\nAA==\n-----END CERTIFICATE-----\n";
        let rsa = "-----BEGIN RSA PRIVATE KEY-----\nAA==\n-----END RSA PRIVATE KEY-----\n";
        let ec = "-----BEGIN EC PRIVATE KEY-----\nAA==\n-----END EC PRIVATE KEY-----\n";
        assert_eq!(split_pem(&format!("{rsa}{cert}")).unwrap().key_type, "rsa");
        assert_eq!(split_pem(&format!("{cert}{ec}")).unwrap().key_type, "ecdsa");
        assert_eq!(split_pem(rsa).unwrap_err(), "missing server certificate");
        assert_eq!(split_pem(&format!("{rsa}{ec}{cert}")).unwrap_err(), "secret contains multiple private keys");
        assert_eq!(
            split_pem("-----BEGIN FOO-----\nAA==\n-----END FOO-----\n").unwrap_err(),
            "unsupported PEM block \"FOO\""
        );
    }
}
