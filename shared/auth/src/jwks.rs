//! RS256 signing keys from a JWKS URL, cached in process.
//!
//! Keys are refreshed when they are older than the TTL, or when a token names an unknown `kid`
//! (key rotation), but at most one fetch is *attempted* per `min_refresh`, successful or not, so
//! that tokens with made-up `kid`s or an identity provider that is down cannot make every request
//! wait on a fetch. When a refresh fails, the keys already fetched stay in use; with none fetched
//! yet, verification fails with [`AuthError::KeysUnavailable`] (the API's `auth_unavailable`).
//!
//! A token without a `kid` is checked against the JWKS's only key when it publishes exactly one
//! usable key (as identity providers with a single key may omit `kid`); with several keys there
//! is no way to choose, and it is refused as [`AuthError::UnknownKey`].
//!
//! Tested in `shared/auth/tests/jwks.rs` against a JWKS served on 127.0.0.1.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use jsonwebtoken::DecodingKey;
use jsonwebtoken::jwk::{AlgorithmParameters, JwkSet, KeyAlgorithm};
use tokio::sync::Mutex;

use crate::AuthError;

#[derive(Clone)]
pub struct JwksClient {
    url: String,
    http: reqwest::Client,
    ttl: Duration,
    min_refresh: Duration,
    state: Arc<Mutex<State>>,
}

#[derive(Default)]
struct State {
    keys: HashMap<String, DecodingKey>,
    /// Usable keys published without a `kid`.
    unnamed: Vec<DecodingKey>,
    fetched_at: Option<Instant>,
    attempted_at: Option<Instant>,
}

struct Keys {
    named: HashMap<String, DecodingKey>,
    unnamed: Vec<DecodingKey>,
}

impl JwksClient {
    pub fn new(url: impl Into<String>) -> Self {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(5))
            .build()
            .unwrap_or_else(|_| reqwest::Client::new());
        Self {
            url: url.into(),
            http,
            ttl: Duration::from_secs(300),
            min_refresh: Duration::from_secs(10),
            state: Arc::new(Mutex::new(State::default())),
        }
    }

    /// Keys older than `ttl` are refetched; fetches are attempted at most once per
    /// `min_refresh` (defaults: 300 s and 10 s).
    pub fn with_refresh(mut self, ttl: Duration, min_refresh: Duration) -> Self {
        self.ttl = ttl;
        self.min_refresh = min_refresh;
        self
    }

    /// The RSA key with this `kid`, or the only key when the token has none.
    pub async fn key(&self, kid: Option<&str>) -> Result<DecodingKey, AuthError> {
        let mut state = self.state.lock().await;
        let stale = state.fetched_at.is_none_or(|t| t.elapsed() > self.ttl);
        let unknown = kid.is_some_and(|k| !state.keys.contains_key(k));
        let may_try = state.attempted_at.is_none_or(|t| t.elapsed() >= self.min_refresh);
        if (stale || unknown) && may_try {
            state.attempted_at = Some(Instant::now());
            match self.fetch().await {
                Ok(keys) => {
                    state.keys = keys.named;
                    state.unnamed = keys.unnamed;
                    state.fetched_at = Some(Instant::now());
                }
                // Serve the keys we have; only fail when we never had any.
                Err(err) => tracing::warn!(url = %self.url, error = %err, "fetching JWKS failed"),
            }
        }
        if state.fetched_at.is_none() {
            return Err(AuthError::KeysUnavailable);
        }
        match kid {
            Some(k) => state.keys.get(k).cloned().ok_or(AuthError::UnknownKey),
            None => match (state.keys.len(), state.unnamed.as_slice()) {
                (1, []) => state.keys.values().next().cloned().ok_or(AuthError::UnknownKey),
                (0, [only]) => Ok(only.clone()),
                _ => Err(AuthError::UnknownKey),
            },
        }
    }

    async fn fetch(&self) -> Result<Keys, String> {
        let response = self.http.get(&self.url).send().await.map_err(|e| e.to_string())?;
        if !response.status().is_success() {
            return Err(format!("status {}", response.status()));
        }
        let set: JwkSet = response.json().await.map_err(|e| e.to_string())?;
        let mut keys = Keys { named: HashMap::new(), unnamed: Vec::new() };
        for jwk in set.keys {
            // Only RSA keys meant for RS256 (or unlabelled) are used, so a JWKS that also
            // publishes other keys cannot widen what this server accepts.
            let rsa = matches!(jwk.algorithm, AlgorithmParameters::RSA(_));
            let alg_ok = matches!(jwk.common.key_algorithm, None | Some(KeyAlgorithm::RS256));
            if !(rsa && alg_ok) {
                continue;
            }
            let Ok(key) = DecodingKey::from_jwk(&jwk) else { continue };
            match jwk.common.key_id.clone() {
                Some(kid) => {
                    keys.named.insert(kid, key);
                }
                None => keys.unnamed.push(key),
            }
        }
        Ok(keys)
    }
}
