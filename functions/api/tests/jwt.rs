//! Every JWT refusal case, against the real router with an HS256 secret and a JWKS served by a
//! real HTTP server on 127.0.0.1.

mod common;

use axum::http::StatusCode;
use common::*;
use serde_json::json;

async fn app_with_jwks() -> Option<TestApp> {
    let url = jwks_server().await;
    setup_with(Options { jwks_url: Some(url), ..Options::default() }).await
}

async fn status_of(app: &TestApp, token: &str) -> (StatusCode, String, String) {
    let r = app.call("GET", "/v1/workflows", Some(token), None).await;
    let code = r.body["error"]["code"].as_str().unwrap_or("").to_owned();
    let message = r.body["error"]["message"].as_str().unwrap_or("").to_owned();
    (r.status, code, message)
}

#[tokio::test]
async fn valid_hs256_and_rs256_tokens_are_accepted() {
    let Some(app) = app_with_jwks().await else { return };
    assert_eq!(status_of(&app, &token("acme", "viewer")).await.0, StatusCode::OK);
    let rs = sign_rs(&claims("acme", "viewer"), RSA_PRIVATE, "test-key-1");
    assert_eq!(status_of(&app, &rs).await.0, StatusCode::OK);
    // `aud` may also be a list that contains ours.
    let mut c = claims("acme", "viewer");
    c["aud"] = json!(["other", AUDIENCE]);
    assert_eq!(status_of(&app, &sign_hs(&c, SECRET)).await.0, StatusCode::OK);
}

#[tokio::test]
async fn every_bad_token_is_refused_with_401() {
    let Some(app) = app_with_jwks().await else { return };
    let base = claims("acme", "admin");
    let with = |key: &str, value: serde_json::Value| {
        let mut c = base.clone();
        c[key] = value;
        c
    };
    let without = |key: &str| {
        let mut c = base.clone();
        c.as_object_mut().expect("object").remove(key);
        c
    };
    let none_token = format!("{}.{}.", b64(r#"{"alg":"none","typ":"JWT"}"#), b64(&base.to_string()));
    let none_upper = format!("{}.{}.", b64(r#"{"alg":"NONE","typ":"JWT"}"#), b64(&base.to_string()));
    let cases: Vec<(&str, String, &str)> = vec![
        ("expired", sign_hs(&with("exp", json!(now() - 3600)), SECRET), "expired"),
        ("not yet valid", sign_hs(&with("nbf", json!(now() + 3600)), SECRET), "not valid yet"),
        ("wrong secret", sign_hs(&base, b"another-secret-0123456789abcdef-0123"), "signature"),
        ("alg none", none_token, "malformed"),
        ("alg NONE", none_upper, "malformed"),
        // HS/RS confusion: an HS256 token whose "secret" is the server's RSA public key.
        ("HS256 signed with the RSA public key", sign_hs(&base, RSA_PUBLIC), "signature"),
        ("RS256 signed by another key", sign_rs(&base, OTHER_PRIVATE, "test-key-1"), "signature"),
        ("RS256 with an unknown kid", sign_rs(&base, RSA_PRIVATE, "nope"), "signing key is unknown"),
        ("wrong audience", sign_hs(&with("aud", json!("someone-else")), SECRET), "audience"),
        ("wrong issuer", sign_hs(&with("iss", json!("https://evil.test")), SECRET), "issuer"),
        ("no exp", sign_hs(&without("exp"), SECRET), "exp"),
        ("no tenant", sign_hs(&without("tenant"), SECRET), "tenant"),
        ("no sub", sign_hs(&without("sub"), SECRET), "sub"),
        ("no aud", sign_hs(&without("aud"), SECRET), "aud"),
        ("no iss", sign_hs(&without("iss"), SECRET), "iss"),
        ("bad tenant", sign_hs(&with("tenant", json!("a b")), SECRET), "tenant"),
        ("unknown role", sign_hs(&with("role", json!("root")), SECRET), "role"),
        ("garbage", "not.a.jwt".to_owned(), "malformed"),
        (
            "tampered payload",
            {
                let t = sign_hs(&base, SECRET);
                let parts: Vec<&str> = t.split('.').collect();
                format!("{}.{}.{}", parts[0], b64(&with("tenant", json!("victim")).to_string()), parts[2])
            },
            "signature",
        ),
    ];
    for (name, token, needle) in cases {
        let (status, code, message) = status_of(&app, &token).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{name}: {code} {message}");
        assert!(code == "unauthorized" || code == "token_expired", "{name}: {code}");
        assert!(message.contains(needle), "{name}: message `{message}` lacks `{needle}`");
    }
}

#[tokio::test]
async fn rs256_is_refused_without_jwks_and_hs256_only_with_the_secret() {
    // No JWKS configured: RS256 tokens have no key to be checked against.
    let Some(app) = setup().await else { return };
    let rs = sign_rs(&claims("acme", "viewer"), RSA_PRIVATE, "test-key-1");
    let (status, _, message) = status_of(&app, &rs).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(message.contains("algorithm"), "{message}");
    // Other HMAC sizes are not accepted either.
    let hs512 = jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS512),
        &claims("acme", "viewer"),
        &jsonwebtoken::EncodingKey::from_secret(SECRET).expect("key"),
    )
    .expect("sign");
    assert_eq!(status_of(&app, &hs512).await.0, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn missing_and_malformed_headers_are_401_with_json() {
    let Some(app) = setup().await else { return };
    let r = app.call("GET", "/v1/workflows", None, None).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert_eq!(r.headers["www-authenticate"], "Bearer");
    assert!(r.body["error"]["message"].as_str().expect("message").contains("Authorization"));
    let req = axum::http::Request::builder()
        .uri("/v1/workflows")
        .header("authorization", "Basic dXNlcjpwYXNz")
        .body(axum::body::Body::empty())
        .expect("request");
    let r = app.raw(req).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert_eq!(r.body["error"]["code"], "unauthorized");
}
