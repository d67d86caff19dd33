//! API keys for machines: `weft_<prefix>_<secret>`.
//!
//! The prefix (12 hex characters) finds the row; only a SHA-256 of the secret (32 random bytes)
//! is stored, and comparisons are constant-time. A fast hash is enough because the secret has
//! 256 bits of entropy, unlike a password.

use base64::Engine as _;
use rand::RngCore as _;
use sha2::{Digest as _, Sha256};
use subtle::ConstantTimeEq as _;

/// Every API key starts with this, so a leaked key is easy to recognise (and scan for).
pub const API_KEY_PREFIX: &str = "weft_";

/// A freshly generated key: `plaintext` is shown to its creator once.
#[derive(Debug, Clone)]
pub struct ApiKey {
    pub plaintext: String,
    pub prefix: String,
    pub secret_hash: Vec<u8>,
}

impl ApiKey {
    pub fn generate() -> Self {
        let mut rng = rand::rng();
        let mut prefix = [0u8; 6];
        rng.fill_bytes(&mut prefix);
        let mut secret = [0u8; 32];
        rng.fill_bytes(&mut secret);
        let prefix: String = prefix.iter().map(|b| format!("{b:02x}")).collect();
        let secret = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(secret);
        Self { plaintext: format!("{API_KEY_PREFIX}{prefix}_{secret}"), secret_hash: hash_secret(&secret), prefix }
    }
}

/// A presented key split into its parts (not yet checked against the store).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParsedApiKey {
    pub prefix: String,
    pub secret: String,
}

impl ParsedApiKey {
    pub fn parse(s: &str) -> Option<Self> {
        let rest = s.strip_prefix(API_KEY_PREFIX)?;
        let (prefix, secret) = rest.split_once('_')?;
        let prefix_ok = prefix.len() == 12 && prefix.bytes().all(|b| b.is_ascii_hexdigit());
        let secret_ok =
            secret.len() == 43 && secret.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        (prefix_ok && secret_ok).then(|| Self { prefix: prefix.to_owned(), secret: secret.to_owned() })
    }
}

pub fn hash_secret(secret: &str) -> Vec<u8> {
    Sha256::digest(secret.as_bytes()).to_vec()
}

/// Constant-time check of a presented secret against a stored hash.
pub fn verify_secret(secret: &str, stored_hash: &[u8]) -> bool {
    hash_secret(secret).ct_eq(stored_hash).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_keys_parse_and_verify() {
        let key = ApiKey::generate();
        let parsed = ParsedApiKey::parse(&key.plaintext).expect("parses");
        assert_eq!(parsed.prefix, key.prefix);
        assert!(verify_secret(&parsed.secret, &key.secret_hash));
        assert!(!verify_secret("x", &key.secret_hash));
        assert_ne!(ApiKey::generate().plaintext, key.plaintext);
        assert_eq!(ParsedApiKey::parse("weft_zz_abc"), None);
        assert_eq!(ParsedApiKey::parse(&key.plaintext[1..]), None);
    }
}
