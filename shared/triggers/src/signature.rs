//! Webhook signatures: HMAC-SHA256 over `"{timestamp}.{body}"` with the trigger's secret.
//!
//! A sender sets `X-Weft-Timestamp: <unix seconds>` and `X-Weft-Signature: sha256=<hex>`. The
//! receiver refuses timestamps outside the replay window (both directions, for clock skew),
//! compares in constant time, and records accepted signatures so each is accepted once.

use sha2::{Digest as _, Sha256};
use subtle::ConstantTimeEq as _;

pub const TIMESTAMP_HEADER: &str = "x-weft-timestamp";
pub const SIGNATURE_HEADER: &str = "x-weft-signature";
/// How far a delivery's timestamp may be from the receiver's clock.
pub const REPLAY_WINDOW_SECONDS: i64 = 300;

/// HMAC-SHA256 (RFC 2104) with the `sha2` crate the workspace already builds.
pub fn hmac_sha256(key: &[u8], message: &[u8]) -> [u8; 32] {
    const BLOCK: usize = 64;
    let mut k = [0u8; BLOCK];
    if key.len() > BLOCK {
        k[..32].copy_from_slice(&Sha256::digest(key));
    } else {
        k[..key.len()].copy_from_slice(key);
    }
    let mut inner = Sha256::new();
    inner.update(k.map(|b| b ^ 0x36));
    inner.update(message);
    let inner = inner.finalize();
    let mut outer = Sha256::new();
    outer.update(k.map(|b| b ^ 0x5c));
    outer.update(inner);
    outer.finalize().into()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The `X-Weft-Signature` value for `body` sent at `timestamp`.
pub fn sign(secret: &[u8], timestamp: i64, body: &[u8]) -> String {
    let mut message = timestamp.to_string().into_bytes();
    message.push(b'.');
    message.extend_from_slice(body);
    format!("sha256={}", hex(&hmac_sha256(secret, &message)))
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("missing {0} header")]
    Missing(&'static str),
    #[error("the X-Weft-Timestamp header must be unix seconds")]
    BadTimestamp,
    #[error("the timestamp is outside the {REPLAY_WINDOW_SECONDS} s replay window; sign with the current time")]
    TooOld,
    #[error("the signature does not match the body and timestamp")]
    Mismatch,
}

/// Checks a delivery. `now` is unix seconds.
pub fn verify(
    secret: &[u8],
    timestamp: Option<&str>,
    signature: Option<&str>,
    body: &[u8],
    now: i64,
) -> Result<(), SignatureError> {
    let timestamp = timestamp.ok_or(SignatureError::Missing("X-Weft-Timestamp"))?;
    let signature = signature.ok_or(SignatureError::Missing("X-Weft-Signature"))?;
    let ts: i64 = timestamp.trim().parse().map_err(|_| SignatureError::BadTimestamp)?;
    if (now - ts).abs() > REPLAY_WINDOW_SECONDS {
        return Err(SignatureError::TooOld);
    }
    let expected = sign(secret, ts, body);
    if expected.as_bytes().ct_eq(signature.trim().as_bytes()).into() { Ok(()) } else { Err(SignatureError::Mismatch) }
}

/// A new random webhook secret, as the hex text the sender uses as the HMAC key.
pub fn new_secret() -> String {
    let bytes: [u8; 32] = rand::random();
    format!("whsec_{}", hex(&bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc4231_case_2() {
        let mac = hmac_sha256(b"Jefe", b"what do ya want for nothing?");
        assert_eq!(hex(&mac), "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
    }

    #[test]
    fn rfc4231_case_6_long_key() {
        let mac = hmac_sha256(&[0xaa; 131], b"Test Using Larger Than Block-Size Key - Hash Key First");
        assert_eq!(hex(&mac), "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54");
    }

    #[test]
    fn verify_checks_window_and_signature() {
        let s = sign(b"k", 1000, b"{}");
        assert_eq!(verify(b"k", Some("1000"), Some(&s), b"{}", 1100), Ok(()));
        assert_eq!(verify(b"k", Some("1000"), Some(&s), b"{ }", 1100), Err(SignatureError::Mismatch));
        assert_eq!(verify(b"x", Some("1000"), Some(&s), b"{}", 1100), Err(SignatureError::Mismatch));
        assert_eq!(verify(b"k", Some("1000"), Some(&s), b"{}", 1301), Err(SignatureError::TooOld));
        assert_eq!(verify(b"k", Some("abc"), Some(&s), b"{}", 1000), Err(SignatureError::BadTimestamp));
        assert_eq!(verify(b"k", None, Some(&s), b"{}", 1000), Err(SignatureError::Missing("X-Weft-Timestamp")));
    }
}
