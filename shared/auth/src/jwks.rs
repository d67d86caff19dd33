//! RS256 signing keys from a JWKS URL, cached in process.
//!
//! Keys are refreshed when they are older than the TTL, or when a token names an unknown `kid`
//! (key rotation), but at most once per `min_refresh` so that tokens with made-up `kid`s cannot
//! make the server hammer the identity provider.

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
    fetched_at: Option<Instant>,
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

    /// The RSA key with this `kid`.
    pub async fn key(&self, kid: &str) -> Result<DecodingKey, AuthError> {
        let mut state = self.state.lock().await;
        let age = state.fetched_at.map(|t| t.elapsed());
        let stale = age.is_none_or(|a| a > self.ttl);
        let may_refresh = age.is_none_or(|a| a > self.min_refresh);
        if stale || (!state.keys.contains_key(kid) && may_refresh) {
            match self.fetch().await {
                Ok(keys) => {
                    state.keys = keys;
                    state.fetched_at = Some(Instant::now());
                }
                Err(err) => {
                    tracing::warn!(url = %self.url, error = %err, "fetching JWKS failed");
                    // Serve the keys we have; only fail when we have none.
                    if state.keys.is_empty() {
                        return Err(AuthError::KeysUnavailable);
                    }
                }
            }
        }
        state.keys.get(kid).cloned().ok_or(AuthError::UnknownKey)
    }

    async fn fetch(&self) -> Result<HashMap<String, DecodingKey>, String> {
        let response = self.http.get(&self.url).send().await.map_err(|e| e.to_string())?;
        if !response.status().is_success() {
            return Err(format!("status {}", response.status()));
        }
        let set: JwkSet = response.json().await.map_err(|e| e.to_string())?;
        let mut keys = HashMap::new();
        for jwk in set.keys {
            // Only RSA keys meant for RS256 (or unlabelled) are used, so a JWKS that also
            // publishes other keys cannot widen what this server accepts.
            let rsa = matches!(jwk.algorithm, AlgorithmParameters::RSA(_));
            let alg_ok = matches!(jwk.common.key_algorithm, None | Some(KeyAlgorithm::RS256));
            let Some(kid) = jwk.common.key_id.clone() else { continue };
            if !(rsa && alg_ok) {
                continue;
            }
            if let Ok(key) = DecodingKey::from_jwk(&jwk) {
                keys.insert(kid, key);
            }
        }
        Ok(keys)
    }
}
