//! Who is calling: bearer JWTs (HS256 with a shared secret, RS256 with keys from a JWKS URL) and
//! API keys for machines, both resolved to a [`Principal`] with a tenant and a [`Role`].
//!
//! Architecture invariant: the algorithm is chosen by the *configured key*, never trusted from
//! the token. A token whose header says HS256 is checked only against the HS256 secret and one
//! that says RS256 only against JWKS keys, so an RSA public key can never be used as an HMAC
//! secret (HS/RS confusion), and `alg: none` is not an algorithm this crate knows.

mod api_key;
mod jwks;

use std::sync::Arc;

use jsonwebtoken::{Algorithm, DecodingKey, Validation, errors::ErrorKind};
use serde::{Deserialize, Serialize};

pub use api_key::{API_KEY_PREFIX, ApiKey, ParsedApiKey, hash_secret, verify_secret};
pub use jwks::JwksClient;

/// What a caller may do. Ordered: each role can do everything the previous one can.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Read workflows, versions, secret names.
    Viewer,
    /// Also create, change, publish and delete workflows.
    Editor,
    /// Also manage secrets and API keys.
    Admin,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Viewer => "viewer",
            Self::Editor => "editor",
            Self::Admin => "admin",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "viewer" => Some(Self::Viewer),
            "editor" => Some(Self::Editor),
            "admin" => Some(Self::Admin),
            _ => None,
        }
    }
}

/// How the caller proved who it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Method {
    Jwt,
    ApiKey { id: String },
}

/// An authenticated caller. Every repository call takes `tenant` from here.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    pub tenant: String,
    pub subject: String,
    pub role: Role,
    pub method: Method,
}

impl Principal {
    /// `Err(AuthError::Forbidden)` unless the caller has at least `needed`.
    pub fn require(&self, needed: Role) -> Result<(), AuthError> {
        if self.role >= needed { Ok(()) } else { Err(AuthError::Forbidden { needed }) }
    }
}

/// The claims Weft reads. `iss`, `aud`, `exp` and `nbf` are checked by `jsonwebtoken` before
/// these are looked at.
///
/// Every field is optional here so that a missing claim is reported by name (by the validation
/// or below) rather than as an unreadable token.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Claims {
    pub sub: Option<String>,
    pub tenant: Option<String>,
    pub role: Option<String>,
    pub iss: Option<String>,
    pub aud: Option<serde_json::Value>,
    pub exp: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub nbf: Option<u64>,
}

/// Every way authentication fails. Messages are safe to show the caller: they say what is wrong
/// with the credential, never anything about the server.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum AuthError {
    #[error("missing credentials: send `Authorization: Bearer <token or API key>`")]
    Missing,
    #[error("the Authorization header must be `Bearer <token>`")]
    BadScheme,
    #[error("the token is malformed or uses an unsupported algorithm (HS256 and RS256 are accepted)")]
    Malformed,
    #[error("the token's algorithm is not accepted by this server")]
    AlgorithmNotAccepted,
    #[error("the token's signature is invalid")]
    BadSignature,
    #[error("the token has expired")]
    Expired,
    #[error("the token is not valid yet (nbf is in the future)")]
    NotYetValid,
    #[error("the token's audience is not accepted")]
    BadAudience,
    #[error("the token's issuer is not accepted")]
    BadIssuer,
    #[error("the token lacks a valid `{0}` claim")]
    BadClaim(&'static str),
    #[error("the token's signing key is unknown")]
    UnknownKey,
    #[error("the signing keys could not be fetched; retrying later may help")]
    KeysUnavailable,
    #[error("the API key is invalid or revoked")]
    BadApiKey,
    #[error("this needs the `{}` role or higher", .needed.as_str())]
    Forbidden { needed: Role },
}

impl AuthError {
    /// A stable machine-readable code for the error body.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Forbidden { .. } => "forbidden",
            Self::KeysUnavailable => "auth_unavailable",
            Self::Expired => "token_expired",
            _ => "unauthorized",
        }
    }
}

/// Verifies JWTs with the configured keys. Cheap to clone.
#[derive(Clone)]
pub struct JwtVerifier {
    inner: Arc<Inner>,
}

struct Inner {
    hs256: Option<DecodingKey>,
    jwks: Option<JwksClient>,
    issuer: String,
    audience: String,
    leeway: u64,
}

/// Settings for [`JwtVerifier::new`].
pub struct JwtSettings {
    pub hs256_secret: Option<Vec<u8>>,
    pub jwks: Option<JwksClient>,
    pub issuer: String,
    pub audience: String,
    pub leeway_seconds: u64,
}

impl JwtVerifier {
    pub fn new(settings: JwtSettings) -> Self {
        Self {
            inner: Arc::new(Inner {
                // An HMAC key accepts any bytes; the `Result` only matters for other key kinds.
                hs256: settings.hs256_secret.and_then(|s| DecodingKey::from_secret(&s).ok()),
                jwks: settings.jwks,
                issuer: settings.issuer,
                audience: settings.audience,
                leeway: settings.leeway_seconds,
            }),
        }
    }

    /// Checks the signature, `exp`, `nbf`, `iss` and `aud`, then the Weft claims.
    pub async fn verify(&self, token: &str) -> Result<Principal, AuthError> {
        let header = jsonwebtoken::decode_header(token).map_err(|_| AuthError::Malformed)?;
        let key = match header.alg {
            Algorithm::HS256 => self.inner.hs256.clone().ok_or(AuthError::AlgorithmNotAccepted)?,
            Algorithm::RS256 => {
                let jwks = self.inner.jwks.as_ref().ok_or(AuthError::AlgorithmNotAccepted)?;
                // No `kid`: only a JWKS with exactly one key can say which key that is.
                jwks.key(header.kid.as_deref()).await?
            }
            _ => return Err(AuthError::AlgorithmNotAccepted),
        };
        let mut validation = Validation::new(header.alg);
        validation.algorithms = vec![header.alg];
        validation.leeway = self.inner.leeway;
        validation.validate_exp = true;
        validation.validate_nbf = true;
        validation.set_audience(&[&self.inner.audience]);
        validation.set_issuer(&[&self.inner.issuer]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        let data = jsonwebtoken::decode::<Claims>(token, &key, &validation).map_err(|err| match err.kind() {
            ErrorKind::ExpiredSignature => AuthError::Expired,
            ErrorKind::ImmatureSignature => AuthError::NotYetValid,
            ErrorKind::InvalidAudience => AuthError::BadAudience,
            ErrorKind::InvalidIssuer => AuthError::BadIssuer,
            ErrorKind::InvalidSignature => AuthError::BadSignature,
            ErrorKind::InvalidAlgorithm => AuthError::AlgorithmNotAccepted,
            ErrorKind::MissingRequiredClaim(claim) => match claim.as_str() {
                "exp" => AuthError::BadClaim("exp"),
                "iss" => AuthError::BadClaim("iss"),
                "aud" => AuthError::BadClaim("aud"),
                _ => AuthError::BadClaim("sub"),
            },
            _ => AuthError::Malformed,
        })?;
        let claims = data.claims;
        let role = claims.role.as_deref().and_then(Role::parse).ok_or(AuthError::BadClaim("role"))?;
        let tenant = claims.tenant.filter(|t| valid_tenant(t)).ok_or(AuthError::BadClaim("tenant"))?;
        let subject = claims.sub.filter(|s| !s.is_empty() && s.len() <= 256).ok_or(AuthError::BadClaim("sub"))?;
        Ok(Principal { tenant, subject, role, method: Method::Jwt })
    }
}

/// Tenant ids end up in keys, logs and state machine tags: keep them short and plain.
pub fn valid_tenant(t: &str) -> bool {
    !t.is_empty()
        && t.len() <= 128
        && t.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':'))
}

/// A credential pulled from the request headers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Credential<'a> {
    Jwt(&'a str),
    ApiKey(ParsedApiKey),
}

/// Reads `Authorization: Bearer ...` (a JWT or a `weft_` API key) or `X-Api-Key`.
pub fn credential<'a>(authorization: Option<&'a str>, x_api_key: Option<&'a str>) -> Result<Credential<'a>, AuthError> {
    if let Some(key) = x_api_key {
        return ParsedApiKey::parse(key.trim()).map(Credential::ApiKey).ok_or(AuthError::BadApiKey);
    }
    let header = authorization.ok_or(AuthError::Missing)?;
    let (scheme, value) = header.trim().split_once(' ').ok_or(AuthError::BadScheme)?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Err(AuthError::BadScheme);
    }
    let value = value.trim();
    if value.starts_with(API_KEY_PREFIX) {
        return ParsedApiKey::parse(value).map(Credential::ApiKey).ok_or(AuthError::BadApiKey);
    }
    if value.is_empty() {
        return Err(AuthError::Missing);
    }
    Ok(Credential::Jwt(value))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_are_ordered() {
        let p = Principal { tenant: "t".into(), subject: "s".into(), role: Role::Editor, method: Method::Jwt };
        assert!(p.require(Role::Viewer).is_ok());
        assert!(p.require(Role::Editor).is_ok());
        assert_eq!(p.require(Role::Admin), Err(AuthError::Forbidden { needed: Role::Admin }));
    }

    #[test]
    fn credentials_from_headers() {
        assert_eq!(credential(None, None), Err(AuthError::Missing));
        assert_eq!(credential(Some("Basic abc"), None), Err(AuthError::BadScheme));
        assert_eq!(credential(Some("Bearer a.b.c"), None), Ok(Credential::Jwt("a.b.c")));
        assert_eq!(credential(Some("Bearer weft_nope"), None), Err(AuthError::BadApiKey));
        let key = ApiKey::generate();
        assert!(matches!(credential(Some(&format!("Bearer {}", key.plaintext)), None), Ok(Credential::ApiKey(_))));
        assert!(matches!(credential(None, Some(&key.plaintext)), Ok(Credential::ApiKey(_))));
    }

    #[test]
    fn tenant_ids_are_plain() {
        assert!(valid_tenant("acme-42"));
        assert!(!valid_tenant(""));
        assert!(!valid_tenant("a b"));
        assert!(!valid_tenant(&"x".repeat(129)));
    }
}
