//! Process-wide settings, read once at start: the address guard's allow-list (`WEFT_HTTP_ALLOW`,
//! shared with the `http` function), the Web API base URL (`WEFT_SLACK_API_URL`) and the longest
//! `Retry-After` the function waits out (`WEFT_SLACK_MAX_RETRY_AFTER_SECONDS`).

use std::time::Duration;

use net_guard::{Guard, parse_allow};
use reqwest::Url;

/// Slack's Web API.
pub const DEFAULT_API_URL: &str = "https://slack.com/api";

/// Process-wide settings, read once at start.
#[derive(Debug, Clone)]
pub struct Settings {
    pub guard: Guard,
    /// `chat.postMessage` is posted to `{api_url}/chat.postMessage`.
    pub api_url: Url,
    /// The longest `Retry-After` waited out before `Slack.RateLimited` (never past the node's
    /// timeout either).
    pub max_retry_after: Duration,
    /// `timeout_seconds` when the node's config has none.
    pub default_timeout: Duration,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            guard: Guard::default(),
            api_url: api_url(DEFAULT_API_URL).unwrap_or_else(|_| unreachable!("the default API URL parses")),
            max_retry_after: Duration::from_secs(30),
            default_timeout: Duration::from_secs(10),
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
    /// Reads `WEFT_HTTP_ALLOW`, `WEFT_SLACK_API_URL` and `WEFT_SLACK_MAX_RETRY_AFTER_SECONDS`
    /// over the defaults.
    pub fn from_env() -> Result<Self, SettingsError> {
        let guard = Guard::from_env().map_err(|problem| SettingsError { name: Guard::ENV, problem })?;
        let mut settings = Self { guard, ..Self::default() };
        if let Ok(url) = std::env::var("WEFT_SLACK_API_URL") {
            settings.api_url =
                api_url(&url).map_err(|problem| SettingsError { name: "WEFT_SLACK_API_URL", problem })?;
        }
        if let Ok(n) = std::env::var("WEFT_SLACK_MAX_RETRY_AFTER_SECONDS") {
            settings.max_retry_after =
                n.trim().parse::<f64>().ok().and_then(|s| Duration::try_from_secs_f64(s).ok()).ok_or_else(|| {
                    SettingsError {
                        name: "WEFT_SLACK_MAX_RETRY_AFTER_SECONDS",
                        problem: format!("`{n}` is not a number of seconds"),
                    }
                })?;
        }
        Ok(settings)
    }

    /// Settings that allow `prefixes` (e.g. `["127.0.0.1"]` in tests) and post `chat.postMessage`
    /// under `api_url`.
    pub fn allowing(prefixes: &[&str], api: &str) -> Result<Self, SettingsError> {
        let guard = Guard {
            allow: parse_allow(&prefixes.join(",")).map_err(|problem| SettingsError { name: "allow", problem })?,
        };
        let api_url = api_url(api).map_err(|problem| SettingsError { name: "api_url", problem })?;
        Ok(Self { guard, api_url, ..Self::default() })
    }

    /// Where `chat.postMessage` is posted.
    pub(crate) fn post_message_url(&self) -> Result<Url, String> {
        let base = self.api_url.as_str().trim_end_matches('/');
        Url::parse(&format!("{base}/chat.postMessage")).map_err(|e| e.to_string())
    }
}

/// An http(s) base URL; set by the operator, so plain http is allowed (a local Slack stand-in),
/// but the address guard still applies to it on every call.
fn api_url(s: &str) -> Result<Url, String> {
    let url = Url::parse(s.trim()).map_err(|e| format!("`{s}` is not a URL: {e}"))?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return Err(format!("`{s}` must be an http(s) URL with a host"));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(format!("`{s}` must not have a query or fragment"));
    }
    Ok(url)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn api_urls() {
        let s = Settings::default();
        assert_eq!(s.post_message_url().unwrap().as_str(), "https://slack.com/api/chat.postMessage");
        let s = Settings::allowing(&["127.0.0.1"], "http://127.0.0.1:9/api/").unwrap();
        assert_eq!(s.post_message_url().unwrap().as_str(), "http://127.0.0.1:9/api/chat.postMessage");
        assert!(api_url("ftp://slack.com/api").is_err());
        assert!(api_url("not a url").is_err());
        assert!(api_url("https://slack.com/api?x=1").is_err());
    }
}
