//! Kuma's dataplane tokens: RS256 JWTs that name a data plane (`Name`,
//! `Mesh`, `Tags`, `Type`), signed with a mesh's signing key.
//!
//! Signing keys are `Secret`s of the mesh named
//! `dataplane-token-signing-key-<mesh>-<serial>` whose data is an RSA
//! private key in PEM (PKCS#1 `RSA PRIVATE KEY`, as `kumactl generate
//! signing-key` writes it; PKCS#8 is read too); the serial is the token's
//! `kid`, and the newest key (the highest serial) signs new tokens, so keys
//! rotate by adding one. Revoked token ids (`jti`) are listed,
//! comma-separated, in the Secret `dataplane-token-revocations-<mesh>`.
//! This is how Kuma 2.x keeps them (Kuma's own docs), so exported signing
//! keys and tokens keep working. Kuma's legacy HS256 key (a Secret named
//! without a serial) is not read.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use kuma_xds_gen::kuma_model::{Kind, ResourceSet, Spec};
use rsa::pkcs1::{DecodeRsaPrivateKey, EncodeRsaPrivateKey};
use rsa::pkcs8::DecodePrivateKey;
use rsa::traits::PublicKeyParts;
use serde::{Deserialize, Serialize};

/// The name prefix of a mesh's signing-key Secrets (`<prefix><mesh>-<serial>`).
pub const SIGNING_KEY_PREFIX: &str = "dataplane-token-signing-key-";
/// The name prefix of a mesh's revocation Secret (`<prefix><mesh>`).
pub const REVOCATIONS_PREFIX: &str = "dataplane-token-revocations-";
/// How far token times may be off from this server's clock.
pub const CLOCK_SKEW: Duration = Duration::from_secs(60);

/// Why a token was not issued or not accepted. Messages never contain the
/// token or key material.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TokenError {
    /// A signing key could not be read or made.
    #[error("signing key {key_id}: {message}")]
    Key {
        /// The key's id (its serial).
        key_id: String,
        /// What is wrong.
        message: String,
    },
    /// The token is malformed, badly signed, expired or revoked.
    #[error("{0}")]
    Invalid(String),
}

/// The claims of a dataplane token, as Kuma writes them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DataplaneClaims {
    /// The data plane's name.
    #[serde(rename = "Name", default)]
    pub name: String,
    /// Its mesh.
    #[serde(rename = "Mesh", default)]
    pub mesh: String,
    /// Tags the data plane must carry: each key present, its values among these.
    #[serde(rename = "Tags", default)]
    pub tags: BTreeMap<String, Vec<String>>,
    /// `dataplane`, `ingress`, `egress`, or empty (Kuma does not check it).
    #[serde(rename = "Type", default)]
    pub kind: String,
    /// When set, the data plane's `kuma.io/workload` label must equal it.
    #[serde(rename = "Workload", default)]
    pub workload: String,
    /// The token id, for revocation.
    pub jti: String,
    /// Issued at (seconds since the Unix epoch).
    pub iat: u64,
    /// Not before.
    pub nbf: u64,
    /// Expires at.
    pub exp: u64,
}

impl DataplaneClaims {
    /// Claims for data plane `name` in `mesh`, valid from `now` for
    /// `valid_for`, with a fresh random id. As Kuma does, issue and start
    /// times are set 5 s early, for clocks slightly behind.
    pub fn new(
        name: &str,
        mesh: &str,
        tags: BTreeMap<String, Vec<String>>,
        now: SystemTime,
        valid_for: Duration,
    ) -> Self {
        let now = now.duration_since(UNIX_EPOCH).unwrap_or_default().as_secs();
        DataplaneClaims {
            name: name.into(),
            mesh: mesh.into(),
            tags,
            kind: "dataplane".into(),
            workload: String::new(),
            jti: random_id(),
            iat: now.saturating_sub(5),
            nbf: now.saturating_sub(5),
            exp: now.saturating_add(valid_for.as_secs()),
        }
    }
}

/// A UUID-shaped random id (version 4 layout) from the OS's randomness.
fn random_id() -> String {
    use rsa::rand_core::{OsRng, RngCore};
    let mut b = [0u8; 16];
    OsRng.fill_bytes(&mut b);
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!("{}-{}-{}-{}-{}", &hex[..8], &hex[8..12], &hex[12..16], &hex[16..20], &hex[20..])
}

/// An RSA signing key and its id.
pub struct SigningKey {
    key_id: String,
    private: rsa::RsaPrivateKey,
}

impl std::fmt::Debug for SigningKey {
    /// The id only: never the key.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKey").field("key_id", &self.key_id).finish_non_exhaustive()
    }
}

impl SigningKey {
    /// A new 2048-bit key (Kuma's size) with id `key_id`.
    pub fn generate(key_id: &str) -> Result<Self, TokenError> {
        let private = rsa::RsaPrivateKey::new(&mut rsa::rand_core::OsRng, 2048)
            .map_err(|e| TokenError::Key { key_id: key_id.into(), message: e.to_string() })?;
        Ok(SigningKey { key_id: key_id.into(), private })
    }

    /// The key in `pem` (PKCS#1 `RSA PRIVATE KEY`, as Kuma writes it, or
    /// PKCS#8 `PRIVATE KEY`).
    pub fn from_pem(key_id: &str, pem: &str) -> Result<Self, TokenError> {
        let private = rsa::RsaPrivateKey::from_pkcs1_pem(pem)
            .or_else(|_| rsa::RsaPrivateKey::from_pkcs8_pem(pem))
            .map_err(|_| TokenError::Key {
                key_id: key_id.into(),
                message: "not an RSA private key in PEM (RSA PRIVATE KEY or PRIVATE KEY)".into(),
            })?;
        Ok(SigningKey { key_id: key_id.into(), private })
    }

    /// The key as PKCS#1 PEM, as Kuma stores it in the signing-key Secret.
    pub fn to_pem(&self) -> Result<String, TokenError> {
        self.private
            .to_pkcs1_pem(rsa::pkcs1::LineEnding::LF)
            .map(|p| p.to_string())
            .map_err(|e| TokenError::Key { key_id: self.key_id.clone(), message: e.to_string() })
    }

    /// The id (`kid`) tokens signed with it carry.
    pub fn key_id(&self) -> &str {
        &self.key_id
    }

    /// A token carrying `claims`, signed with this key.
    pub fn issue(&self, claims: &DataplaneClaims) -> Result<String, TokenError> {
        let der = self
            .private
            .to_pkcs1_der()
            .map_err(|e| TokenError::Key { key_id: self.key_id.clone(), message: e.to_string() })?;
        let header = Header { kid: Some(self.key_id.clone()), ..Header::new(Algorithm::RS256) };
        jsonwebtoken::encode(&header, claims, &EncodingKey::from_rsa_der(der.as_bytes()))
            .map_err(|e| TokenError::Key { key_id: self.key_id.clone(), message: e.to_string() })
    }

    fn decoding_key(&self) -> DecodingKey {
        let public = self.private.to_public_key();
        DecodingKey::from_rsa_raw_components(&public.n().to_bytes_be(), &public.e().to_bytes_be())
    }
}

/// The signing keys of `mesh` in `set`, newest (highest serial) first, and
/// a message for every signing-key Secret that could not be read.
pub fn signing_keys(set: &ResourceSet, mesh: &str) -> (Vec<SigningKey>, Vec<String>) {
    let prefix = format!("{SIGNING_KEY_PREFIX}{mesh}-");
    let mut keys = Vec::new();
    let mut problems = Vec::new();
    for r in set.in_mesh(Kind::Secret, mesh) {
        // The key id is the suffix as written (so a token naming `0002`
        // finds `...-0002`); the newest key is the one with the highest number.
        let Some(key_id) = r.meta.name.strip_prefix(&prefix) else { continue };
        let Ok(serial) = key_id.parse::<u64>() else { continue };
        let Spec::Secret(secret) = &r.spec else { continue };
        let pem = String::from_utf8_lossy(&secret.data);
        match SigningKey::from_pem(key_id, &pem) {
            Ok(k) => keys.push((serial, k)),
            Err(e) => problems.push(format!("{}: Secret {}/{}: {e}", r.meta.location, mesh, r.meta.name)),
        }
    }
    keys.sort_by_key(|(serial, _)| std::cmp::Reverse(*serial));
    (keys.into_iter().map(|(_, k)| k).collect(), problems)
}

/// The key id (`kid`) a token names, read without checking anything else.
pub fn key_id_of(token: &str) -> Option<String> {
    jsonwebtoken::decode_header(token).ok()?.kid
}

/// The signing key of `mesh` with id `key_id`: the Secret
/// `dataplane-token-signing-key-<mesh>-<key_id>`, as Kuma looks it up (only
/// that one key is parsed).
pub fn signing_key(set: &ResourceSet, mesh: &str, key_id: &str) -> Option<Result<SigningKey, TokenError>> {
    let r = set.get(Kind::Secret, mesh, &format!("{SIGNING_KEY_PREFIX}{mesh}-{key_id}"))?;
    let Spec::Secret(secret) = &r.spec else { return None };
    Some(SigningKey::from_pem(key_id, &String::from_utf8_lossy(&secret.data)))
}

/// The revoked token ids of `mesh`: the comma-separated list in the Secret
/// `dataplane-token-revocations-<mesh>` (blanks around ids are ignored).
pub fn revoked_ids(set: &ResourceSet, mesh: &str) -> BTreeSet<String> {
    match set.get(Kind::Secret, mesh, &format!("{REVOCATIONS_PREFIX}{mesh}")).map(|r| &r.spec) {
        Some(Spec::Secret(s)) => String::from_utf8_lossy(&s.data)
            .split(',')
            .map(str::trim)
            .filter(|id| !id.is_empty())
            .map(str::to_string)
            .collect(),
        _ => BTreeSet::new(),
    }
}

/// The claims of `token` when it is signed by one of `keys` (found by its
/// `kid`), within its times (give or take [`CLOCK_SKEW`]) at `now`, and not
/// revoked.
pub fn verify(
    token: &str,
    keys: &[&SigningKey],
    revoked: &BTreeSet<String>,
    now: SystemTime,
) -> Result<DataplaneClaims, TokenError> {
    let invalid = |m: &str| TokenError::Invalid(m.to_string());
    let header = jsonwebtoken::decode_header(token).map_err(|_| invalid("not a JWT"))?;
    if header.alg != Algorithm::RS256 {
        return Err(invalid("the token is not signed with RS256"));
    }
    let kid = header.kid.ok_or_else(|| invalid("the token has no key id (kid)"))?;
    let key = keys
        .iter()
        .find(|k| k.key_id == kid)
        .ok_or_else(|| TokenError::Invalid(format!("no signing key {kid:?} in the token's mesh")))?;
    // Times are checked below against `now`, not the library's clock.
    let mut validation = Validation::new(Algorithm::RS256);
    validation.validate_exp = false;
    validation.validate_nbf = false;
    validation.required_spec_claims = BTreeSet::new().into_iter().collect();
    let claims = jsonwebtoken::decode::<DataplaneClaims>(token, &key.decoding_key(), &validation)
        .map_err(|e| match e.kind() {
            jsonwebtoken::errors::ErrorKind::InvalidSignature => invalid("bad signature"),
            _ => invalid("malformed token claims"),
        })?
        .claims;
    let now = now.duration_since(UNIX_EPOCH).unwrap_or_default().as_secs();
    let skew = CLOCK_SKEW.as_secs();
    if claims.exp.saturating_add(skew) < now {
        return Err(invalid("the token has expired"));
    }
    if claims.nbf > now.saturating_add(skew) {
        return Err(invalid("the token is not valid yet"));
    }
    if revoked.contains(&claims.jti) {
        return Err(TokenError::Invalid(format!("token {} is revoked", claims.jti)));
    }
    Ok(claims)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims(now: SystemTime) -> DataplaneClaims {
        DataplaneClaims::new("gw", "default", BTreeMap::new(), now, Duration::from_secs(3600))
    }

    #[test]
    fn issued_tokens_verify_and_only_with_their_key() {
        let now = SystemTime::now();
        let key = SigningKey::generate("1").unwrap();
        let token = key.issue(&claims(now)).unwrap();
        let got = verify(&token, &[&key], &BTreeSet::new(), now).unwrap();
        assert_eq!((got.name.as_str(), got.mesh.as_str(), got.kind.as_str()), ("gw", "default", "dataplane"));
        let other = SigningKey::generate("1").unwrap();
        assert_eq!(verify(&token, &[&other], &BTreeSet::new(), now), Err(TokenError::Invalid("bad signature".into())));
        let unknown = SigningKey::generate("2").unwrap();
        assert!(verify(&token, &[&unknown], &BTreeSet::new(), now).unwrap_err().to_string().contains("no signing key"));
    }

    #[test]
    fn times_and_revocations_are_checked() {
        let now = SystemTime::now();
        let key = SigningKey::generate("1").unwrap();
        let token = key.issue(&claims(now)).unwrap();
        let later = now + Duration::from_secs(3600) + CLOCK_SKEW + Duration::from_secs(1);
        assert_eq!(verify(&token, &[&key], &BTreeSet::new(), later).unwrap_err().to_string(), "the token has expired");
        let earlier = now - CLOCK_SKEW * 3;
        assert!(verify(&token, &[&key], &BTreeSet::new(), earlier).is_err());
        let jti = verify(&token, &[&key], &BTreeSet::new(), now).unwrap().jti;
        let revoked = BTreeSet::from([jti]);
        assert!(verify(&token, &[&key], &revoked, now).unwrap_err().to_string().contains("revoked"));
    }

    #[test]
    fn keys_round_trip_through_pem_and_never_show_in_debug() {
        let key = SigningKey::generate("7").unwrap();
        let pem = key.to_pem().unwrap();
        assert!(pem.starts_with("-----BEGIN RSA PRIVATE KEY-----"));
        let back = SigningKey::from_pem("7", &pem).unwrap();
        let token = back.issue(&claims(SystemTime::now())).unwrap();
        assert!(verify(&token, &[&key], &BTreeSet::new(), SystemTime::now()).is_ok());
        assert_eq!(format!("{back:?}"), "SigningKey { key_id: \"7\", .. }");
        assert!(
            SigningKey::from_pem("8", "-----BEGIN RSA PRIVATE KEY-----\nnope\n")
                .unwrap_err()
                .to_string()
                .starts_with("signing key 8:")
        );
    }
}
