//! The JWT verifier with a JWKS served by a real HTTP server on 127.0.0.1 (no database): algorithm
//! confusion, tokens without `kid`, other algorithms, key rotation and an unreachable JWKS.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use auth::{AuthError, JwksClient, JwtSettings, JwtVerifier};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};
use tokio::sync::Mutex;

const RSA_PRIVATE: &[u8] = include_bytes!("data/rsa_private.pem");
const RSA_PUBLIC: &[u8] = include_bytes!("data/rsa_public.pem");
const OTHER_PRIVATE: &[u8] = include_bytes!("data/other_private.pem");
const JWKS: &str = include_str!("data/jwks.json");
const JWKS_OTHER: &str = include_str!("data/jwks-other.json");
const ISSUER: &str = "https://issuer.test";
const AUDIENCE: &str = "weft";

/// What the JWKS server answers, and how often it was asked.
struct Jwks {
    body: Mutex<Option<String>>,
    hits: AtomicUsize,
}

/// Serves `body` at /jwks (a 503 while it is `None`); returns the URL and the handle.
async fn serve(body: Option<String>) -> (String, Arc<Jwks>) {
    let state = Arc::new(Jwks { body: Mutex::new(body), hits: AtomicUsize::new(0) });
    let s = state.clone();
    let app = axum::Router::new().route(
        "/jwks",
        axum::routing::get(move || {
            let s = s.clone();
            async move {
                s.hits.fetch_add(1, Ordering::SeqCst);
                match s.body.lock().await.clone() {
                    Some(b) => (axum::http::StatusCode::OK, [("content-type", "application/json")], b),
                    None => {
                        (axum::http::StatusCode::SERVICE_UNAVAILABLE, [("content-type", "text/plain")], String::new())
                    }
                }
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (format!("http://{addr}/jwks"), state)
}

fn verifier(jwks: Option<JwksClient>, hs256: Option<&[u8]>) -> JwtVerifier {
    JwtVerifier::new(JwtSettings {
        hs256_secret: hs256.map(<[u8]>::to_vec),
        jwks,
        issuer: ISSUER.into(),
        audience: AUDIENCE.into(),
        leeway_seconds: 0,
    })
}

fn claims() -> Value {
    let now = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    json!({"sub": "u1", "tenant": "acme", "role": "editor", "iss": ISSUER, "aud": AUDIENCE, "exp": now + 600})
}

fn sign(alg: Algorithm, key: &EncodingKey, kid: Option<&str>) -> String {
    let mut header = Header::new(alg);
    header.kid = kid.map(str::to_owned);
    jsonwebtoken::encode(&header, &claims(), key).expect("sign")
}

fn hmac(secret: &[u8]) -> EncodingKey {
    EncodingKey::from_secret(secret).expect("hmac key")
}

fn rs256(pem: &[u8], kid: Option<&str>) -> String {
    sign(Algorithm::RS256, &EncodingKey::from_rsa_pem(pem).expect("pem"), kid)
}

fn b64(s: &str) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s)
}

/// A JWKS whose one key has no `kid`.
fn without_kid(jwks: &str) -> String {
    let mut v: Value = serde_json::from_str(jwks).expect("jwks");
    if let Some(k) = v["keys"][0].as_object_mut() {
        k.remove("kid");
    }
    v.to_string()
}

#[tokio::test]
async fn with_only_a_jwks_hs256_tokens_are_refused_even_signed_with_the_public_key() {
    let (url, _) = serve(Some(JWKS.into())).await;
    let v = verifier(Some(JwksClient::new(url)), None);
    let confused = sign(Algorithm::HS256, &hmac(RSA_PUBLIC), Some("test-key-1"));
    assert_eq!(v.verify(&confused).await, Err(AuthError::AlgorithmNotAccepted));
    // Also with the key's text trimmed, as some attacks do, and without a kid.
    let trimmed = sign(Algorithm::HS256, &hmac(String::from_utf8_lossy(RSA_PUBLIC).trim().as_bytes()), None);
    assert_eq!(v.verify(&trimmed).await, Err(AuthError::AlgorithmNotAccepted));
    // The genuine RS256 token works.
    assert_eq!(v.verify(&rs256(RSA_PRIVATE, Some("test-key-1"))).await.map(|p| p.tenant), Ok("acme".to_owned()));
    // With both configured, the public key is still only an RSA key: the HMAC check fails.
    let both =
        verifier(Some(JwksClient::new(serve(Some(JWKS.into())).await.0)), Some(b"0123456789abcdef0123456789abcdef"));
    assert_eq!(both.verify(&confused).await, Err(AuthError::BadSignature));
}

#[tokio::test]
async fn other_algorithms_are_refused() {
    let (url, _) = serve(Some(JWKS.into())).await;
    let v = verifier(Some(JwksClient::new(url)), Some(b"0123456789abcdef0123456789abcdef"));
    let rsa = EncodingKey::from_rsa_pem(RSA_PRIVATE).expect("pem");
    for alg in [Algorithm::RS384, Algorithm::RS512, Algorithm::PS256, Algorithm::PS512] {
        let t = sign(alg, &rsa, Some("test-key-1"));
        assert_eq!(v.verify(&t).await, Err(AuthError::AlgorithmNotAccepted), "{alg:?}");
    }
    for alg in [Algorithm::HS384, Algorithm::HS512] {
        let t = sign(alg, &hmac(b"0123456789abcdef0123456789abcdef"), None);
        assert_eq!(v.verify(&t).await, Err(AuthError::AlgorithmNotAccepted), "{alg:?}");
    }
    // Algorithms jsonwebtoken does not know (`none`, `ES256K`) do not even parse.
    let body = b64(&claims().to_string());
    for alg in ["none", "None", "ES256K", ""] {
        let t = format!("{}.{body}.", b64(&format!(r#"{{"alg":"{alg}","typ":"JWT"}}"#)));
        assert_eq!(v.verify(&t).await, Err(AuthError::Malformed), "{alg}");
    }
}

#[tokio::test]
async fn rs256_without_kid_uses_the_only_key_and_is_refused_with_several() {
    // One key, published with a kid: a token without kid is checked against it.
    let (url, _) = serve(Some(JWKS.into())).await;
    let v = verifier(Some(JwksClient::new(url)), None);
    assert!(v.verify(&rs256(RSA_PRIVATE, None)).await.is_ok());
    assert_eq!(v.verify(&rs256(OTHER_PRIVATE, None)).await, Err(AuthError::BadSignature));
    // One key published without a kid: the same.
    let (url, _) = serve(Some(without_kid(JWKS))).await;
    let v = verifier(Some(JwksClient::new(url)), None);
    assert!(v.verify(&rs256(RSA_PRIVATE, None)).await.is_ok());
    // ... but a token naming a kid the set does not have is unknown.
    assert_eq!(v.verify(&rs256(RSA_PRIVATE, Some("test-key-1"))).await, Err(AuthError::UnknownKey));
    // Two keys: no way to choose.
    let mut two: Value = serde_json::from_str(JWKS).expect("jwks");
    let other: Value = serde_json::from_str(JWKS_OTHER).expect("jwks");
    two["keys"].as_array_mut().expect("keys").push(other["keys"][0].clone());
    let (url, _) = serve(Some(two.to_string())).await;
    let v = verifier(Some(JwksClient::new(url)), None);
    assert_eq!(v.verify(&rs256(RSA_PRIVATE, None)).await, Err(AuthError::UnknownKey));
    assert!(v.verify(&rs256(RSA_PRIVATE, Some("test-key-1"))).await.is_ok());
    assert!(v.verify(&rs256(OTHER_PRIVATE, Some("test-key-2"))).await.is_ok());
}

#[tokio::test]
async fn a_rotated_key_is_fetched_once_and_made_up_kids_do_not_hammer_the_provider() {
    let (url, server) = serve(Some(JWKS.into())).await;
    // No wait between refreshes: a new kid refetches at once.
    let v = verifier(Some(JwksClient::new(url.clone()).with_refresh(Duration::from_secs(3600), Duration::ZERO)), None);
    assert!(v.verify(&rs256(RSA_PRIVATE, Some("test-key-1"))).await.is_ok());
    assert_eq!(server.hits.load(Ordering::SeqCst), 1);
    *server.body.lock().await = Some(JWKS_OTHER.into());
    assert!(v.verify(&rs256(OTHER_PRIVATE, Some("test-key-2"))).await.is_ok());
    assert_eq!(server.hits.load(Ordering::SeqCst), 2);
    // The old key is gone from the set, so its tokens are now refused.
    assert_eq!(v.verify(&rs256(RSA_PRIVATE, Some("test-key-1"))).await, Err(AuthError::UnknownKey));
    // Cached keys are used without asking again.
    let before = server.hits.load(Ordering::SeqCst);
    for _ in 0..5 {
        assert!(v.verify(&rs256(OTHER_PRIVATE, Some("test-key-2"))).await.is_ok());
    }
    assert_eq!(server.hits.load(Ordering::SeqCst), before);

    // With the default pause between refreshes, a burst of made-up kids costs one fetch.
    let (url, server) = serve(Some(JWKS.into())).await;
    let v = verifier(Some(JwksClient::new(url)), None);
    assert!(v.verify(&rs256(RSA_PRIVATE, Some("test-key-1"))).await.is_ok());
    for i in 0..20 {
        let t = rs256(RSA_PRIVATE, Some(&format!("made-up-{i}")));
        assert_eq!(v.verify(&t).await, Err(AuthError::UnknownKey));
    }
    assert_eq!(server.hits.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn an_unreachable_jwks_is_keys_unavailable_and_cached_keys_keep_working() {
    // Nothing listens on the port: no keys yet, so the caller is told to retry later.
    let dead = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        format!("http://{}/jwks", l.local_addr().expect("addr"))
    };
    let v = verifier(Some(JwksClient::new(dead)), None);
    let err = v.verify(&rs256(RSA_PRIVATE, Some("test-key-1"))).await;
    assert_eq!(err, Err(AuthError::KeysUnavailable));
    assert_eq!(AuthError::KeysUnavailable.code(), "auth_unavailable");

    // A JWKS that answers 503: the same.
    let (url, server) = serve(None).await;
    let v = verifier(Some(JwksClient::new(url).with_refresh(Duration::ZERO, Duration::from_secs(3600))), None);
    assert_eq!(v.verify(&rs256(RSA_PRIVATE, Some("test-key-1"))).await, Err(AuthError::KeysUnavailable));
    // It was asked once, not once per request.
    assert_eq!(v.verify(&rs256(RSA_PRIVATE, Some("test-key-1"))).await, Err(AuthError::KeysUnavailable));
    assert_eq!(server.hits.load(Ordering::SeqCst), 1);

    // Keys fetched while it was up keep working after it goes down, even once they are stale
    // (TTL zero), and the failing provider is asked once per pause, not per request.
    let (url, server) = serve(Some(JWKS.into())).await;
    let v = verifier(Some(JwksClient::new(url).with_refresh(Duration::ZERO, Duration::ZERO)), None);
    assert!(v.verify(&rs256(RSA_PRIVATE, Some("test-key-1"))).await.is_ok());
    *server.body.lock().await = None;
    assert!(v.verify(&rs256(RSA_PRIVATE, Some("test-key-1"))).await.is_ok());
    assert_eq!(v.verify(&rs256(OTHER_PRIVATE, Some("test-key-2"))).await, Err(AuthError::UnknownKey));

    let (url, server) = serve(Some(JWKS.into())).await;
    let client = JwksClient::new(url).with_refresh(Duration::ZERO, Duration::from_secs(3600));
    let v = verifier(Some(client), None);
    assert!(v.verify(&rs256(RSA_PRIVATE, Some("test-key-1"))).await.is_ok());
    *server.body.lock().await = None;
    for _ in 0..10 {
        assert!(v.verify(&rs256(RSA_PRIVATE, Some("test-key-1"))).await.is_ok());
    }
    assert_eq!(server.hits.load(Ordering::SeqCst), 1, "no refetch within the pause");
}
