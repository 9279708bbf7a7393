//! Mesh mTLS: the gateway's upstream TLS to mesh peers, cross-mesh listeners,
//! and the two SDS secrets they use: the gateway's identity certificate
//! (`identity_cert:secret:<mesh>`) and the mesh CA (`mesh_ca:secret:<mesh>`;
//! `mesh_ca:secret:all` bundles every mesh's CA for cross-mesh listeners).
//!
//! Kuma's control plane generates the identity certificate; so does this
//! crate, from the CA of the mesh's enabled backend: a `builtin` backend's CA
//! is read from the Secrets Kuma stores it in (`<mesh>.ca-builtin-cert-<backend>`
//! and `<mesh>.ca-builtin-key-<backend>`), a `provided` one from its `conf.cert`
//! and `conf.key`. Issuing is deterministic, so the same resources give the
//! same bytes: the key is derived from the CA key and the identity, the
//! signature is deterministic (RFC 6979 ECDSA or PKCS#1 v1.5 RSA).
//!
//! The identity rotates: it is valid for 24 h (or the backend's
//! `dpCert.rotation.expiration`, as in Kuma) and issued anew at 80 % of its
//! life. Time is cut into issuance windows of 80 % of the validity; the
//! certificate of the window an instant falls in starts at the window's
//! start (less 5 minutes for clock skew) and ends a validity later, so
//! every replica of a control plane, given the same resources and an instant
//! in the same window, issues the same bytes. The key is derived from the CA
//! key, the identity and the window, so it is never reused across
//! issuances.

use envoy_types::pb::envoy::config::core::v3::{
    DataSource as EnvoyDataSource, TransportSocket, data_source::Specifier,
};
use envoy_types::pb::envoy::extensions::transport_sockets::tls::v3::{
    CertificateValidationContext, CommonTlsContext, DownstreamTlsContext, SdsSecretConfig, Secret,
    SubjectAltNameMatcher, TlsCertificate, UpstreamTlsContext, common_tls_context, secret,
    subject_alt_name_matcher::SanType,
};
use envoy_types::pb::envoy::r#type::matcher::v3::{StringMatcher, string_matcher::MatchPattern};
use kuma_model::mesh::MeshSpec;
use kuma_model::{DataSource, Kind, ResourceSet, SERVICE_TAG, Spec, Tags};
use p256::ecdsa::signature::{Keypair, Signer};
use sha2::{Digest, Sha256};
use x509_cert::builder::{Builder, CertificateBuilder, Profile};
use x509_cert::der::asn1::Ia5String;
use x509_cert::der::{DecodePem, EncodePem, pem::LineEnding};

use std::time::{Duration, SystemTime, UNIX_EPOCH};
use x509_cert::ext::pkix::name::GeneralName;
use x509_cert::ext::pkix::{
    AuthorityKeyIdentifier, BasicConstraints, ExtendedKeyUsage, KeyUsage, KeyUsages, SubjectAltName,
    SubjectKeyIdentifier,
};
use x509_cert::serial_number::SerialNumber;
use x509_cert::spki::{DynSignatureAlgorithmIdentifier, EncodePublicKey, SubjectPublicKeyInfoOwned};
use x509_cert::{Certificate, name::Name};

use crate::pb::{self, boolv};
use crate::snapshot::GatewaySnapshot;

/// The SDS name of every mesh's CA bundle (cross-mesh listeners).
pub(crate) const ALL_MESHES_CA: &str = "mesh_ca:secret:all";

/// The SDS name of the gateway's identity certificate in `mesh`.
pub(crate) fn identity_secret(mesh: &str) -> String {
    format!("identity_cert:secret:{mesh}")
}

/// The SDS name of `mesh`'s CA.
pub(crate) fn ca_secret(mesh: &str) -> String {
    format!("mesh_ca:secret:{mesh}")
}

/// True when `mesh` has mTLS on.
pub(crate) fn enabled(set: &ResourceSet, mesh: &str) -> bool {
    set.mesh(mesh).is_some_and(MeshSpec::mtls_enabled)
}

/// Kuma's SNI for a mesh destination: `service{k=v,...}` over the other
/// destination tags plus `mesh`, sorted.
pub(crate) fn sni(destination: &Tags, mesh: &str) -> String {
    let mut extra: Tags =
        destination.iter().filter(|(k, _)| *k != SERVICE_TAG).map(|(k, v)| (k.clone(), v.clone())).collect();
    extra.insert("mesh".into(), mesh.into());
    let extra: Vec<String> = extra.iter().map(|(k, v)| format!("{k}={v}")).collect();
    format!("{}{{{}}}", destination.get(SERVICE_TAG).map_or("", String::as_str), extra.join(","))
}

fn sds(name: &str) -> SdsSecretConfig {
    SdsSecretConfig { name: name.into(), sds_config: Some(pb::ads()) }
}

/// The upstream TLS of a cluster to a mesh peer: the gateway's identity, the
/// mesh CA, the SPIFFE ids the peer may present (`sans`) and SNI;
/// `params`: TLS versions and ciphers a `MeshTLS` sets.
pub(crate) fn upstream(
    mesh: &str,
    sans: Vec<String>,
    sni: String,
    params: Option<envoy_types::pb::envoy::extensions::transport_sockets::tls::v3::TlsParameters>,
) -> TransportSocket {
    let validation = CertificateValidationContext {
        match_typed_subject_alt_names: sans
            .into_iter()
            .map(|san| SubjectAltNameMatcher {
                san_type: SanType::Uri as i32,
                matcher: Some(StringMatcher { match_pattern: Some(MatchPattern::Exact(san)), ..Default::default() }),
                ..Default::default()
            })
            .collect(),
        ..Default::default()
    };
    let context = UpstreamTlsContext {
        common_tls_context: Some(CommonTlsContext {
            tls_params: params,
            alpn_protocols: vec!["kuma".into()],
            tls_certificate_sds_secret_configs: vec![sds(&identity_secret(mesh))],
            validation_context_type: Some(common_tls_context::ValidationContextType::CombinedValidationContext(
                common_tls_context::CombinedCertificateValidationContext {
                    default_validation_context: Some(validation),
                    validation_context_sds_secret_config: Some(sds(&ca_secret(mesh))),
                    ..Default::default()
                },
            )),
            ..Default::default()
        }),
        sni,
        ..Default::default()
    };
    pb::transport_socket("envoy.transport_sockets.tls", &context)
}

/// The downstream mTLS of a cross-mesh listener: clients of any mesh, with
/// a certificate from any mesh CA.
pub(crate) fn cross_mesh_downstream(mesh: &str) -> TransportSocket {
    let context = DownstreamTlsContext {
        common_tls_context: Some(CommonTlsContext {
            tls_certificate_sds_secret_configs: vec![sds(&identity_secret(mesh))],
            validation_context_type: Some(common_tls_context::ValidationContextType::CombinedValidationContext(
                common_tls_context::CombinedCertificateValidationContext {
                    default_validation_context: Some(CertificateValidationContext::default()),
                    validation_context_sds_secret_config: Some(sds(ALL_MESHES_CA)),
                    ..Default::default()
                },
            )),
            ..Default::default()
        }),
        require_client_certificate: boolv(true),
        ..Default::default()
    };
    pb::transport_socket("envoy.transport_sockets.tls", &context)
}

/// A mesh CA: its certificate and private key, PEM.
#[derive(Debug, Clone)]
struct Ca {
    cert_pem: String,
    key_pem: String,
}

fn bytes(set: &ResourceSet, mesh: &str, source: &DataSource) -> Result<Vec<u8>, String> {
    match source {
        DataSource::Inline(b) => Ok(b.clone()),
        DataSource::InlineString(s) => Ok(s.clone().into_bytes()),
        DataSource::Secret(name) => match set.get(Kind::Secret, mesh, name).map(|r| &r.spec) {
            Some(Spec::Secret(s)) => Ok(s.data.clone()),
            _ => Err(format!("Secret {mesh}/{name} not found")),
        },
        DataSource::File(path) => Err(format!("file {path:?}: a mesh CA is read from a secret or inline")),
        _ => Err("a kind of data source this translator does not know".into()),
    }
}

fn pem_text(data: Vec<u8>, what: &str) -> Result<String, String> {
    String::from_utf8(data).map_err(|_| format!("{what} is not PEM text"))
}

/// The CA of `mesh`'s enabled backend.
fn mesh_ca(set: &ResourceSet, mesh: &str) -> Result<Ca, String> {
    let mtls = set.mesh(mesh).and_then(|m| m.mtls.as_ref()).ok_or_else(|| format!("mesh {mesh:?} has no mTLS"))?;
    let backend = mtls
        .backends
        .iter()
        .find(|b| b.name == mtls.enabled_backend)
        .ok_or_else(|| format!("mtls.enabledBackend {:?} is not among mtls.backends", mtls.enabled_backend))?;
    let (cert, key) = match backend.kind.as_str() {
        "builtin" => {
            let secret = |part: &str| DataSource::Secret(format!("{mesh}.ca-builtin-{part}-{}", backend.name));
            let missing = |e: String| {
                format!(
                    "{e}: the builtin CA of backend {:?} (Kuma stores it in Secrets {mesh}.ca-builtin-cert-{1} and \
                     {mesh}.ca-builtin-key-{1}; export them with kumactl)",
                    backend.name, backend.name
                )
            };
            (bytes(set, mesh, &secret("cert")).map_err(missing)?, bytes(set, mesh, &secret("key")).map_err(missing)?)
        }
        "provided" => {
            let conf = backend.conf.as_ref().ok_or("provided CA backend without conf")?;
            let source = |field: &str| -> Result<DataSource, String> {
                let value =
                    conf.get(field).cloned().ok_or_else(|| format!("provided CA backend without conf.{field}"))?;
                serde_json::from_value(value).map_err(|e| format!("conf.{field}: {e}"))
            };
            (bytes(set, mesh, &source("cert")?)?, bytes(set, mesh, &source("key")?)?)
        }
        other => return Err(format!("CA backend type {other:?} is not supported (builtin or provided)")),
    };
    Ok(Ca { cert_pem: pem_text(cert, "CA certificate")?, key_pem: pem_text(key, "CA key")? })
}

/// Who the certificate is for: a data plane's tags in a mesh, in one
/// issuance window.
struct Identity<'a> {
    mesh: &'a str,
    tags: &'a Tags,
    /// The issuance window (see the module docs).
    window: Window,
}

/// The identity's validity when the CA backend sets none.
pub(crate) const DEFAULT_VALIDITY: Duration = Duration::from_secs(24 * 3600);
/// Certificates start this much before their window, for clocks behind.
const BACKDATE: Duration = Duration::from_secs(300);

/// One issuance window: its number, and when its certificate starts, ends
/// and is replaced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Window {
    number: u64,
    not_before: SystemTime,
    not_after: SystemTime,
    /// The start of the next window: when the certificate is issued anew.
    pub(crate) renew_at: SystemTime,
}

impl Window {
    /// The window `at` falls in, for certificates valid for `validity`.
    pub(crate) fn at(at: SystemTime, validity: Duration) -> Window {
        let period = (validity.as_secs() * 4 / 5).max(1);
        let secs = at.duration_since(UNIX_EPOCH).unwrap_or_default().as_secs();
        let number = secs / period;
        let start = UNIX_EPOCH + Duration::from_secs(number * period);
        Window {
            number,
            not_before: start.checked_sub(BACKDATE).unwrap_or(UNIX_EPOCH),
            not_after: start + validity,
            renew_at: start + Duration::from_secs(period),
        }
    }
}

/// The identity validity a CA backend asks for (`dpCert.rotation.expiration`).
fn validity(set: &ResourceSet, mesh: &str) -> Duration {
    let backend = set
        .mesh(mesh)
        .and_then(|m| m.mtls.as_ref())
        .and_then(|mtls| mtls.backends.iter().find(|b| b.name == mtls.enabled_backend));
    backend
        .and_then(|b| b.dp_cert.as_ref())
        .and_then(|d| d.get("rotation")?.get("expiration")?.as_str().map(str::to_string))
        .and_then(|text| text.parse::<kuma_model::Duration>().ok())
        .and_then(|d| u64::try_from(d.as_nanos()).ok().filter(|n| *n >= 1_000_000_000))
        .map_or(DEFAULT_VALIDITY, Duration::from_nanos)
}

impl Identity<'_> {
    fn service(&self) -> &str {
        self.tags.get(SERVICE_TAG).map_or("", String::as_str)
    }

    /// A digest over the CA, the identity and a purpose.
    fn digest(&self, purpose: &[u8], ca: &[u8], counter: u32) -> [u8; 32] {
        let mut hash = Sha256::new().chain_update(purpose).chain_update([0]).chain_update(ca).chain_update([0]);
        hash.update(self.mesh.as_bytes());
        for (k, v) in self.tags {
            hash.update([0]);
            hash.update(k.as_bytes());
            hash.update([0]);
            hash.update(v.as_bytes());
        }
        hash.update(counter.to_be_bytes());
        hash.update(self.window.number.to_be_bytes());
        hash.finalize().into()
    }

    /// Kuma's identity names: the SPIFFE id of the service and a
    /// `kuma://<tag>/<value>` URI per tag, which Kuma's permission checks on
    /// other tags (zone, version, ...) match.
    fn uris(&self) -> Vec<String> {
        let mut uris = vec![format!("spiffe://{}/{}", self.mesh, self.service())];
        uris.extend(self.tags.iter().map(|(k, v)| format!("kuma://{k}/{v}")));
        uris
    }
}

/// The identity's private key: a P-256 scalar derived from the CA key and
/// the identity, so that issuing again gives the same certificate.
fn derived_key(ca: &Ca, id: &Identity<'_>) -> p256::SecretKey {
    (0u32..)
        .find_map(|counter| {
            p256::SecretKey::from_slice(&id.digest(b"kuma-gateway identity key", ca.key_pem.as_bytes(), counter)).ok()
        })
        .expect("a valid scalar")
}

/// The CA certificate's own key identifier, which the issued certificate
/// must name as its authority key (computed from the key it differs between
/// tools: Go 1.25 uses truncated SHA-256 where openssl uses SHA-1).
fn subject_key_id(ca_cert: &Certificate) -> Option<x509_cert::der::asn1::OctetString> {
    use x509_cert::der::Decode;
    let ext = ca_cert
        .tbs_certificate
        .extensions
        .as_ref()?
        .iter()
        .find(|e| e.extn_id == x509_cert::der::oid::db::rfc5280::ID_CE_SUBJECT_KEY_IDENTIFIER)?;
    SubjectKeyIdentifier::from_der(ext.extn_value.as_bytes()).ok().map(|k| k.0)
}

fn issue_with<S, Sig>(
    ca_cert: &Certificate,
    signer: &S,
    spki: SubjectPublicKeyInfoOwned,
    id: &Identity<'_>,
) -> Result<String, String>
where
    S: Keypair + DynSignatureAlgorithmIdentifier + Signer<Sig>,
    S::VerifyingKey: EncodePublicKey,
    Sig: x509_cert::spki::SignatureBitStringEncoding,
{
    let ca_spki = SubjectPublicKeyInfoOwned::from_key(signer.verifying_key()).map_err(|e| e.to_string())?;
    if ca_spki != ca_cert.tbs_certificate.subject_public_key_info {
        return Err("the CA key does not belong to the CA certificate".into());
    }
    let mut serial: [u8; 16] =
        id.digest(b"kuma-gateway identity serial", ca_cert.tbs_certificate.serial_number.as_bytes(), 0)[..16]
            .try_into()
            .expect("16 bytes");
    serial[0] = (serial[0] & 0x7f) | 0x01;
    let err = |e: x509_cert::builder::Error| format!("issuing the identity certificate: {e}");
    let serial = SerialNumber::new(&serial).map_err(|e| e.to_string())?;
    let subject_key = {
        use x509_cert::der::referenced::OwnedToRef;
        SubjectKeyIdentifier::try_from(spki.owned_to_ref()).map_err(|e| e.to_string())?
    };
    // Extensions written out (not x509-cert's leaf profile) so that the
    // authority key id is the CA's own, whatever hash made it.
    let profile = Profile::Manual { issuer: Some(ca_cert.tbs_certificate.subject.clone()) };
    // The window's validity, within the CA's own.
    let ca_validity = ca_cert.tbs_certificate.validity;
    let time = |t: SystemTime| x509_cert::time::Time::try_from(t).map_err(|e| format!("certificate time: {e}"));
    let not_before = id.window.not_before.max(ca_validity.not_before.to_system_time());
    let not_after = id.window.not_after.min(ca_validity.not_after.to_system_time());
    let validity = x509_cert::time::Validity { not_before: time(not_before)?, not_after: time(not_after)? };
    let mut builder = CertificateBuilder::new(profile, serial, validity, Name::default(), spki, signer).map_err(err)?;
    builder.add_extension(&BasicConstraints { ca: false, path_len_constraint: None }).map_err(err)?;
    builder.add_extension(&KeyUsage(KeyUsages::DigitalSignature | KeyUsages::KeyEncipherment)).map_err(err)?;
    builder.add_extension(&subject_key).map_err(err)?;
    if let Some(key_identifier) = subject_key_id(ca_cert) {
        builder
            .add_extension(&AuthorityKeyIdentifier {
                key_identifier: Some(key_identifier),
                authority_cert_issuer: None,
                authority_cert_serial_number: None,
            })
            .map_err(err)?;
    }
    let names = id
        .uris()
        .into_iter()
        .map(|u| Ia5String::new(&u).map(GeneralName::UniformResourceIdentifier))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("identity names: {e}"))?;
    builder.add_extension(&SubjectAltName(names)).map_err(err)?;
    builder
        .add_extension(&ExtendedKeyUsage(vec![
            x509_cert::der::oid::db::rfc5280::ID_KP_SERVER_AUTH,
            x509_cert::der::oid::db::rfc5280::ID_KP_CLIENT_AUTH,
        ]))
        .map_err(err)?;
    let cert = builder.build::<Sig>().map_err(err)?;
    cert.to_pem(LineEnding::LF).map_err(|e| e.to_string())
}

/// The first certificate of a PEM bundle (a provided CA may carry its chain).
fn first_certificate(pem: &str) -> &str {
    const END: &str = "-----END CERTIFICATE-----";
    pem.find(END).map_or(pem, |i| &pem[..i + END.len()]).trim_start()
}

/// Issues the identity certificate of `id`: (certificate chain PEM, key PEM).
/// The chain is the certificate followed by the CA's PEM bundle, so that
/// peers also get any intermediate a provided CA comes with.
/// `at` is the issuance instant; `None` issues at the start of the CA's
/// validity (what [`crate::translate`] does, so that its output depends on
/// the resources only). Also returns when the certificate is due anew.
fn issue(
    ca: &Ca,
    mesh: &str,
    tags: &Tags,
    at: Option<SystemTime>,
    validity: Duration,
) -> Result<(String, String, SystemTime), String> {
    use p256::pkcs8::{DecodePrivateKey, EncodePrivateKey};
    let ca_cert = Certificate::from_pem(first_certificate(&ca.cert_pem)).map_err(|e| format!("CA certificate: {e}"))?;
    let ca_validity = ca_cert.tbs_certificate.validity;
    let (ca_start, ca_end) = (ca_validity.not_before.to_system_time(), ca_validity.not_after.to_system_time());
    let at = at.unwrap_or(ca_start);
    if at < ca_start || at >= ca_end {
        return Err(format!(
            "the mesh CA certificate is not valid at the issuance time ({}s after 1970; it is valid from {} to {})",
            at.duration_since(UNIX_EPOCH).unwrap_or_default().as_secs(),
            ca_validity.not_before,
            ca_validity.not_after
        ));
    }
    let window = Window::at(at, validity);
    let id = &Identity { mesh, tags, window };
    let key = derived_key(ca, id);
    let spki = SubjectPublicKeyInfoOwned::from_key(key.public_key()).map_err(|e| e.to_string())?;
    let key_pem = key.to_pkcs8_pem(LineEnding::LF).map_err(|e| e.to_string())?.to_string();
    let cert = if let Ok(k) =
        p256::SecretKey::from_pkcs8_pem(&ca.key_pem).or_else(|_| p256::SecretKey::from_sec1_pem(&ca.key_pem))
    {
        let signer = p256::ecdsa::SigningKey::from(k);
        issue_with::<_, p256::ecdsa::DerSignature>(&ca_cert, &signer, spki, id)?
    } else {
        use rsa::pkcs1::DecodeRsaPrivateKey;
        let k = rsa::RsaPrivateKey::from_pkcs8_pem(&ca.key_pem)
            .or_else(|_| rsa::RsaPrivateKey::from_pkcs1_pem(&ca.key_pem))
            .map_err(|_| "CA key: neither a P-256 nor an RSA private key (PEM)".to_string())?;
        let signer = rsa::pkcs1v15::SigningKey::<Sha256>::new(k);
        issue_with::<_, rsa::pkcs1v15::Signature>(&ca_cert, &signer, spki, id)?
    };
    Ok((format!("{cert}{}\n", ca.cert_pem.trim()), key_pem, window.renew_at))
}

fn inline(text: &str) -> Option<EnvoyDataSource> {
    Some(EnvoyDataSource { specifier: Some(Specifier::InlineBytes(text.as_bytes().to_vec())), ..Default::default() })
}

fn ca_bundle_secret(name: &str, pem: &str) -> Secret {
    Secret {
        name: name.into(),
        r#type: Some(secret::Type::ValidationContext(CertificateValidationContext {
            trusted_ca: inline(pem),
            ..Default::default()
        })),
    }
}

/// Adds the identity and CA secrets of a data plane with `tags` in `mesh` when something
/// uses them (mTLS clusters, `used`, or cross-mesh listeners, which also get
/// every mesh's CA) and the mesh has mTLS on.
pub(crate) fn add_secrets(
    set: &ResourceSet,
    mesh: &str,
    tags: &Tags,
    (used, cross_mesh): (bool, bool),
    at: Option<SystemTime>,
    out: &mut GatewaySnapshot,
) -> Result<(), String> {
    if !enabled(set, mesh) || !(used || cross_mesh) {
        return Ok(());
    }
    let ca = mesh_ca(set, mesh)?;
    let (cert, key, renew_at) = issue(&ca, mesh, tags, at, validity(set, mesh))?;
    // Without a clock (`translate`), nothing is due anew.
    if at.is_some() {
        out.refresh_at = Some(out.refresh_at.map_or(renew_at, |r| r.min(renew_at)));
    }
    let identity = identity_secret(mesh);
    out.secrets.insert(
        identity.clone(),
        Secret {
            name: identity,
            r#type: Some(secret::Type::TlsCertificate(TlsCertificate {
                certificate_chain: inline(&cert),
                private_key: inline(&key),
                ..Default::default()
            })),
        },
    );
    out.secrets.insert(ca_secret(mesh), ca_bundle_secret(&ca_secret(mesh), &ca.cert_pem));
    if cross_mesh {
        // In mesh name order, so the bundle is stable.
        let mut meshes: Vec<&str> = set.of_kind(Kind::Mesh).map(|m| m.meta.name.as_str()).collect();
        meshes.sort_unstable();
        let mut all = String::new();
        for m in meshes {
            if enabled(set, m)
                && let Ok(ca) = mesh_ca(set, m)
            {
                all.push_str(ca.cert_pem.trim_end());
                all.push('\n');
            }
        }
        out.secrets.insert(ALL_MESHES_CA.into(), ca_bundle_secret(ALL_MESHES_CA, &all));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sni_is_the_service_and_the_other_tags_with_the_mesh() {
        let tags = [("kuma.io/service".to_string(), "echo".to_string()), ("version".into(), "2".into())].into();
        assert_eq!(sni(&tags, "default"), "echo{mesh=default,version=2}");
    }

    fn set_with_ca(cert: &str, key: &str) -> ResourceSet {
        use base64::Engine as _;
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../testdata/certs");
        let data = |f: &str| base64::engine::general_purpose::STANDARD.encode(std::fs::read(dir.join(f)).unwrap());
        let text = format!(
            "type: Mesh\nname: default\nmtls: {{enabledBackend: ca-1, backends: [{{name: ca-1, type: builtin}}]}}\n---\n\
             type: Secret\nname: default.ca-builtin-cert-ca-1\ndata: {}\n---\n\
             type: Secret\nname: default.ca-builtin-key-ca-1\ndata: {}\n",
            data(cert),
            data(key)
        );
        ResourceSet::load([("ca.yaml", text.as_str())], kuma_model::UnknownFields::Reject).unwrap().0
    }

    fn tags(service: &str) -> Tags {
        [(SERVICE_TAG.to_string(), service.to_string()), ("kuma.io/zone".to_string(), "z1".to_string())].into()
    }

    fn identity(set: &ResourceSet, service: &str) -> Certificate {
        let mut out = GatewaySnapshot::default();
        add_secrets(set, "default", &tags(service), (true, false), None, &mut out).unwrap();
        let Some(secret::Type::TlsCertificate(t)) = &out.secrets["identity_cert:secret:default"].r#type else {
            panic!("no identity")
        };
        let Some(Specifier::InlineBytes(pem)) = &t.certificate_chain.as_ref().unwrap().specifier else { panic!() };
        // The issued certificate, then the CA's bundle.
        let pem = std::str::from_utf8(pem).unwrap();
        assert_eq!(pem.matches("BEGIN CERTIFICATE").count(), 2);
        Certificate::from_pem(first_certificate(pem)).unwrap()
    }

    #[test]
    fn identities_rotate_by_window_with_a_new_key_each_time() {
        let set = set_with_ca("mesh-ca-ec.crt", "mesh-ca-ec.key");
        let issued_err = |at: SystemTime| {
            add_secrets(&set, "default", &tags("edge"), (true, false), Some(at), &mut GatewaySnapshot::default())
                .unwrap_err()
        };
        let issued = |at: Option<SystemTime>| {
            let mut out = GatewaySnapshot::default();
            add_secrets(&set, "default", &tags("edge"), (true, false), at, &mut out).unwrap();
            let Some(secret::Type::TlsCertificate(t)) = &out.secrets[&identity_secret("default")].r#type else {
                panic!("a certificate")
            };
            let pem = |d: &Option<EnvoyDataSource>| match d.as_ref().and_then(|d| d.specifier.clone()) {
                Some(Specifier::InlineBytes(b)) => String::from_utf8(b).unwrap(),
                _ => panic!("inline"),
            };
            (pem(&t.certificate_chain), pem(&t.private_key), out.refresh_at.unwrap_or(UNIX_EPOCH))
        };
        // The test CA's validity starts at `start`.
        let ca = Certificate::from_pem(first_certificate(
            &std::fs::read_to_string(
                std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../testdata/certs/mesh-ca-ec.crt"),
            )
            .unwrap(),
        ))
        .unwrap();
        let start = ca.tbs_certificate.validity.not_before.to_system_time() + Duration::from_secs(3600);
        let window = Window::at(start, DEFAULT_VALIDITY);
        // Any instant of a window gives the same bytes; the next window a
        // new certificate and a new key.
        let (cert, key, renew) = issued(Some(start));
        assert_eq!(renew, window.renew_at);
        assert_eq!(issued(Some(renew - Duration::from_secs(1))).0, cert);
        let (next_cert, next_key, _) = issued(Some(renew));
        assert_ne!(next_cert, cert);
        assert_ne!(next_key, key, "a key is never reused across issuances");
        let validity = Certificate::from_pem(first_certificate(&cert)).unwrap().tbs_certificate.validity;
        assert_eq!(validity.not_after.to_system_time(), window.not_after);
        let since = |a: SystemTime, b: SystemTime| a.duration_since(b).unwrap();
        assert_eq!(since(validity.not_after.to_system_time(), window.not_before), DEFAULT_VALIDITY + BACKDATE);
        assert_eq!(
            since(renew, window.not_before + BACKDATE),
            DEFAULT_VALIDITY * 4 / 5,
            "issued anew at 80 % of its life"
        );
        // The CA backend's dpCert.rotation.expiration sets the validity.
        // (An hour: windows of 48 minutes; 36,000 s falls in the one of 34,560 s.)
        let w = Window::at(UNIX_EPOCH + Duration::from_secs(36_000), Duration::from_secs(3600));
        let t = |s| UNIX_EPOCH + Duration::from_secs(s);
        assert_eq!((w.not_before, w.not_after, w.renew_at), (t(34_560 - 300), t(34_560 + 3600), t(34_560 + 2880)));
        // Before the CA's validity: an error, not a certificate that never is.
        assert!(issued_err(UNIX_EPOCH).contains("not valid at the issuance time"));
    }

    #[test]
    fn identities_are_issued_deterministically_from_rsa_and_ecdsa_cas() {
        for (cert, key) in [("mesh-ca-rsa.crt", "mesh-ca-rsa.key"), ("mesh-ca-ec.crt", "mesh-ca-ec.key")] {
            let set = set_with_ca(cert, key);
            let a = identity(&set, "edge");
            assert_eq!(a, identity(&set, "edge"), "{cert}: issuing again gives the same certificate");
            assert_ne!(a.tbs_certificate.serial_number, identity(&set, "other").tbs_certificate.serial_number);
            let ca = Certificate::from_pem(std::fs::read(format!("../testdata/certs/{cert}")).unwrap()).unwrap();
            assert_eq!(a.tbs_certificate.issuer, ca.tbs_certificate.subject);
            let der = x509_cert::der::Encode::to_der(&a).unwrap();
            let uri = b"spiffe://default/edge";
            assert!(der.windows(uri.len()).any(|w| w == uri), "{cert}: the SPIFFE id is a SAN");
        }
    }

    #[test]
    fn the_authority_key_id_is_the_cas_own_and_every_tag_is_named() {
        use x509_cert::der::{Decode, Encode};
        let set = set_with_ca("mesh-ca-ec.crt", "mesh-ca-ec.key");
        let leaf = identity(&set, "edge");
        let ca = Certificate::from_pem(std::fs::read("../testdata/certs/mesh-ca-ec.crt").unwrap()).unwrap();
        let ext = |c: &Certificate, oid| {
            c.tbs_certificate.extensions.iter().flatten().find(|e| e.extn_id == oid).map(|e| e.extn_value.clone())
        };
        let ski = SubjectKeyIdentifier::from_der(
            ext(&ca, x509_cert::der::oid::db::rfc5280::ID_CE_SUBJECT_KEY_IDENTIFIER).unwrap().as_bytes(),
        )
        .unwrap();
        let aki = AuthorityKeyIdentifier::from_der(
            ext(&leaf, x509_cert::der::oid::db::rfc5280::ID_CE_AUTHORITY_KEY_IDENTIFIER).unwrap().as_bytes(),
        )
        .unwrap();
        assert_eq!(aki.key_identifier, Some(ski.0));
        let der = leaf.to_der().unwrap();
        for uri in ["spiffe://default/edge", "kuma://kuma.io/service/edge", "kuma://kuma.io/zone/z1"] {
            assert!(der.windows(uri.len()).any(|w| w == uri.as_bytes()), "{uri}");
        }
    }

    #[test]
    fn nothing_is_issued_unless_used() {
        let set = set_with_ca("mesh-ca-ec.crt", "mesh-ca-ec.key");
        let mut out = GatewaySnapshot::default();
        add_secrets(&set, "default", &tags("edge"), (false, false), None, &mut out).unwrap();
        assert!(out.secrets.is_empty());
        add_secrets(&set, "default", &tags("edge"), (false, true), None, &mut out).unwrap();
        let names: Vec<&str> = out.secrets.keys().map(String::as_str).collect();
        assert_eq!(names, ["identity_cert:secret:default", "mesh_ca:secret:all", "mesh_ca:secret:default"]);
    }

    #[test]
    fn a_missing_ca_is_named() {
        let set = set_with_ca("mesh-ca-ec.crt", "mesh-ca-ec.key");
        let without_key = set.iter().filter(|r| r.meta.name != "default.ca-builtin-key-ca-1").cloned();
        let set = ResourceSet::from_resources(without_key).unwrap().0;
        let err = add_secrets(&set, "default", &tags("edge"), (true, false), None, &mut GatewaySnapshot::default())
            .unwrap_err();
        assert!(err.starts_with("Secret default/default.ca-builtin-key-ca-1 not found: the builtin CA"), "{err}");
    }

    #[test]
    fn a_foreign_key_is_refused() {
        let set = set_with_ca("mesh-ca-ec.crt", "mesh-ca-rsa.key");
        let err = add_secrets(&set, "default", &tags("edge"), (true, false), None, &mut GatewaySnapshot::default())
            .unwrap_err();
        assert_eq!(err, "the CA key does not belong to the CA certificate");
    }
}
