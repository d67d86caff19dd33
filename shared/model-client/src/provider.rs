//! Where the model API is and how to authenticate to it.

use std::fmt;
use std::time::Duration;

/// The OpenAI API, the default base URL of the OpenAI SDKs.
pub const OPENAI_BASE_URL: &str = "https://api.openai.com/v1";

/// The default [`Provider::timeout`].
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(120);

/// The default [`Provider::max_response_bytes`]: large enough for a batch of big embeddings.
pub const DEFAULT_MAX_RESPONSE_BYTES: usize = 32 * 1024 * 1024;

/// An OpenAI-compatible endpoint.
///
/// `Debug` never shows the API key (it prints `Some("***")`), so a provider can be logged.
#[derive(Clone, PartialEq, Eq)]
pub struct Provider {
    /// The API root, e.g. `https://api.openai.com/v1` or `http://127.0.0.1:8080/v1`; the client
    /// appends `/chat/completions` and `/embeddings`. A trailing slash is ignored.
    pub base_url: String,
    /// Sent as `Authorization: Bearer <key>`; `None` sends no `Authorization` header (local servers).
    pub api_key: Option<String>,
    /// Non-streaming calls: the whole call (connect, request, body). Streaming calls: the time to the
    /// response headers, then the longest silence between two chunks. `None`: no limit of our own
    /// (the caller's `reqwest::Client` may still have one).
    pub timeout: Option<Duration>,
    /// The most bytes read from one response (a whole stream included); beyond, `Llm.BadResponse`.
    pub max_response_bytes: usize,
}

impl Default for Provider {
    fn default() -> Self {
        Self {
            base_url: OPENAI_BASE_URL.to_owned(),
            api_key: None,
            timeout: Some(DEFAULT_TIMEOUT),
            max_response_bytes: DEFAULT_MAX_RESPONSE_BYTES,
        }
    }
}

impl Provider {
    /// A provider at `base_url`, no key, default limits.
    pub fn new(base_url: impl Into<String>) -> Self {
        Self { base_url: base_url.into(), ..Self::default() }
    }

    /// The OpenAI SDK conventions: `OPENAI_BASE_URL` (default `https://api.openai.com/v1`) and
    /// `OPENAI_API_KEY` (unset or empty: no key).
    pub fn from_env() -> Self {
        let get = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
        Self {
            base_url: get("OPENAI_BASE_URL").unwrap_or_else(|| OPENAI_BASE_URL.to_owned()),
            api_key: get("OPENAI_API_KEY"),
            ..Self::default()
        }
    }

    pub fn with_api_key(mut self, key: impl Into<String>) -> Self {
        self.api_key = Some(key.into());
        self
    }

    pub fn with_timeout(mut self, timeout: Option<Duration>) -> Self {
        self.timeout = timeout;
        self
    }

    pub fn with_max_response_bytes(mut self, max: usize) -> Self {
        self.max_response_bytes = max;
        self
    }
}

impl fmt::Debug for Provider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Provider")
            .field("base_url", &self.base_url)
            .field("api_key", &self.api_key.as_ref().map(|_| "***"))
            .field("timeout", &self.timeout)
            .field("max_response_bytes", &self.max_response_bytes)
            .finish()
    }
}

/// A [`Provider`] that cannot be used: the field and what is wrong with it (the lead maps it to
/// `Config.Invalid` naming the field).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{field}` {problem}")]
pub struct ProviderError {
    pub field: &'static str,
    pub problem: String,
}
