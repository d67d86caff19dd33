//! Encryption at rest for tenant secrets.
//!
//! AES-256-GCM with a random 96-bit nonce per value. The tenant id and the secret's name are
//! the associated data, so a ciphertext copied into another tenant's row (or renamed) fails to
//! decrypt instead of leaking. No IO here: callers store `(nonce, ciphertext)`.

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use rand::RngCore as _;

/// Why a value could not be sealed or opened. Deliberately without detail: the cause is either
/// a wrong key or tampered data, and saying which helps only an attacker.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SecretsError {
    #[error("the secret could not be decrypted (wrong WEFT_SECRETS_KEY or tampered data)")]
    Decrypt,
    #[error("the secret could not be encrypted")]
    Encrypt,
}

/// A sealed value as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sealed {
    pub nonce: Vec<u8>,
    pub ciphertext: Vec<u8>,
}

/// The key from `WEFT_SECRETS_KEY`.
#[derive(Clone)]
pub struct SecretsKey {
    cipher: Aes256Gcm,
}

impl std::fmt::Debug for SecretsKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretsKey(<redacted>)")
    }
}

impl SecretsKey {
    pub fn new(key: &[u8; 32]) -> Self {
        Self { cipher: Aes256Gcm::new(key.into()) }
    }

    pub fn seal(&self, tenant: &str, name: &str, plaintext: &[u8]) -> Result<Sealed, SecretsError> {
        let mut nonce = [0u8; 12];
        rand::rng().fill_bytes(&mut nonce);
        let aad = associated_data(tenant, name);
        let ciphertext = self
            .cipher
            .encrypt(Nonce::from_slice(&nonce), Payload { msg: plaintext, aad: &aad })
            .map_err(|_| SecretsError::Encrypt)?;
        Ok(Sealed { nonce: nonce.to_vec(), ciphertext })
    }

    pub fn open(&self, tenant: &str, name: &str, sealed: &Sealed) -> Result<Vec<u8>, SecretsError> {
        if sealed.nonce.len() != 12 {
            return Err(SecretsError::Decrypt);
        }
        let aad = associated_data(tenant, name);
        self.cipher
            .decrypt(Nonce::from_slice(&sealed.nonce), Payload { msg: &sealed.ciphertext, aad: &aad })
            .map_err(|_| SecretsError::Decrypt)
    }
}

// Length-prefixing keeps ("ab", "c") and ("a", "bc") distinct.
fn associated_data(tenant: &str, name: &str) -> Vec<u8> {
    let mut aad = Vec::with_capacity(tenant.len() + name.len() + 16);
    aad.extend_from_slice(b"weft-secret-v1");
    aad.extend_from_slice(&(tenant.len() as u32).to_be_bytes());
    aad.extend_from_slice(tenant.as_bytes());
    aad.extend_from_slice(name.as_bytes());
    aad
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_binding() {
        let key = SecretsKey::new(&[7u8; 32]);
        let sealed = key.seal("acme", "API_TOKEN", b"hunter2").expect("seal");
        assert_ne!(sealed.ciphertext, b"hunter2");
        assert_eq!(key.open("acme", "API_TOKEN", &sealed).expect("open"), b"hunter2");
        // Another tenant, another name, another key, or a flipped bit: all refused.
        assert_eq!(key.open("evil", "API_TOKEN", &sealed), Err(SecretsError::Decrypt));
        assert_eq!(key.open("acme", "OTHER", &sealed), Err(SecretsError::Decrypt));
        assert_eq!(SecretsKey::new(&[8u8; 32]).open("acme", "API_TOKEN", &sealed), Err(SecretsError::Decrypt));
        let mut tampered = sealed.clone();
        tampered.ciphertext[0] ^= 1;
        assert_eq!(key.open("acme", "API_TOKEN", &tampered), Err(SecretsError::Decrypt));
        // Nonces are fresh per seal.
        let again = key.seal("acme", "API_TOKEN", b"hunter2").expect("seal");
        assert_ne!(again.nonce, sealed.nonce);
    }
}
