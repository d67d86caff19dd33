//! Process-wide settings, read once at start.
//!
//! - `WEFT_MILVUS_URL` (default `http://127.0.0.1:19530`): the Milvus (or milvus-lite) gRPC
//!   endpoint; `https://` for TLS.
//! - `WEFT_MILVUS_TOKEN` (optional): `user:password` or an API key, sent as Milvus' token.
//! - `OPENAI_BASE_URL`, `OPENAI_API_KEY`: the embeddings provider ([`model_client::Provider::from_env`]).
//! - `WEFT_VECTOR_EMBED_BATCH` (default 64, 1 to 2048): texts per embeddings request.
//! - `WEFT_MODEL_PRICES`: the price table the outputs' `cost_usd` comes from, as for `fn-llm`
//!   ([`model_client::Prices::from_json`]: the built-in list prices, overridden and extended).
//!
//! These are operator configuration, not tenant input, so they are not passed through the address
//! guard (`WEFT_HTTP_ALLOW`): a tenant cannot choose another Milvus or embeddings endpoint.

use std::time::Duration;

use model_client::{Prices, Provider};

/// The default `WEFT_MILVUS_URL`.
pub const DEFAULT_MILVUS_URL: &str = "http://127.0.0.1:19530";

/// Process-wide settings.
#[derive(Clone)]
pub struct Settings {
    pub milvus_url: String,
    pub milvus_token: Option<String>,
    /// Connecting to Milvus (the first call of a process, or the first after a failure).
    pub connect_timeout: Duration,
    /// One Milvus call, retries included.
    pub rpc_timeout: Duration,
    pub provider: Provider,
    pub embed_batch: usize,
    pub prices: Prices,
}

impl std::fmt::Debug for Settings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Settings")
            .field("milvus_url", &self.milvus_url)
            .field("milvus_token", &self.milvus_token.as_ref().map(|_| "***"))
            .field("connect_timeout", &self.connect_timeout)
            .field("rpc_timeout", &self.rpc_timeout)
            .field("provider", &self.provider)
            .field("embed_batch", &self.embed_batch)
            .finish_non_exhaustive()
    }
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            milvus_url: DEFAULT_MILVUS_URL.to_owned(),
            milvus_token: None,
            connect_timeout: Duration::from_secs(10),
            rpc_timeout: Duration::from_secs(30),
            provider: Provider::default(),
            embed_batch: 64,
            prices: Prices::default(),
        }
    }
}

/// A setting read from the environment has a bad value.
#[derive(Debug, thiserror::Error)]
#[error("{name}: {problem}")]
pub struct SettingsError {
    pub name: &'static str,
    pub problem: String,
}

impl Settings {
    /// The settings at `milvus_url` with embeddings from `provider` (tests, `weft run`).
    pub fn new(milvus_url: impl Into<String>, provider: Provider) -> Self {
        Self { milvus_url: milvus_url.into(), provider, ..Self::default() }
    }

    /// Reads the variables listed in the module docs over the defaults.
    pub fn from_env() -> Result<Self, SettingsError> {
        let get = |name: &str| std::env::var(name).ok().map(|v| v.trim().to_owned()).filter(|v| !v.is_empty());
        let mut settings = Self { provider: Provider::from_env(), ..Self::default() };
        if let Some(url) = get("WEFT_MILVUS_URL") {
            settings.milvus_url = url;
        }
        check_url(&settings.milvus_url).map_err(|problem| SettingsError { name: "WEFT_MILVUS_URL", problem })?;
        settings.milvus_token = get("WEFT_MILVUS_TOKEN");
        if let Some(n) = get("WEFT_VECTOR_EMBED_BATCH") {
            settings.embed_batch =
                n.parse::<usize>().ok().filter(|n| (1..=2048).contains(n)).ok_or_else(|| SettingsError {
                    name: "WEFT_VECTOR_EMBED_BATCH",
                    problem: format!("`{n}` is not a number from 1 to 2048"),
                })?;
        }
        if let Some(json) = get("WEFT_MODEL_PRICES") {
            settings.prices = Prices::from_json(&json)
                .map_err(|e| SettingsError { name: "WEFT_MODEL_PRICES", problem: e.to_string() })?;
        }
        Ok(settings)
    }
}

fn check_url(url: &str) -> Result<(), String> {
    let parsed = reqwest::Url::parse(url).map_err(|e| format!("`{url}` is not a URL: {e}"))?;
    if !matches!(parsed.scheme(), "http" | "https") || parsed.host_str().is_none() {
        return Err(format!("`{url}` must be an http(s) URL with a host (Milvus' gRPC endpoint)"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        assert!(check_url("http://127.0.0.1:19530").is_ok());
        assert!(check_url("https://milvus.internal").is_ok());
        assert!(check_url("tcp://x:1").is_err());
        assert!(check_url("nope").is_err());
        let s = Settings { milvus_token: Some("root:Milvus".into()), ..Settings::default() };
        assert!(!format!("{s:?}").contains("root:Milvus"));
    }
}
