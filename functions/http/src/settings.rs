//! Process-wide settings, read once at start: the SSRF guard's allow-list
//! (`WEFT_HTTP_ALLOW`), the response size ceiling (`WEFT_HTTP_MAX_RESPONSE_BYTES`), and the
//! defaults a node's config may override (timeout, redirects).

use std::time::Duration;

use net_guard::{Guard, parse_allow};

/// Process-wide settings, read once at start.
#[derive(Clone)]
pub struct Settings {
    pub guard: Guard,
    pub default_timeout: Duration,
    /// Default and ceiling of `max_response_bytes`.
    pub max_response_bytes: usize,
    pub default_max_redirects: u32,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            guard: Guard::default(),
            default_timeout: Duration::from_secs(30),
            // Lambda responses are capped at 6 MB and Step Functions payloads at 256 KiB.
            max_response_bytes: 5 << 20,
            default_max_redirects: 5,
        }
    }
}

impl std::fmt::Debug for Settings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Settings")
            .field("guard", &self.guard)
            .field("default_timeout", &self.default_timeout)
            .field("max_response_bytes", &self.max_response_bytes)
            .field("default_max_redirects", &self.default_max_redirects)
            .finish_non_exhaustive()
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
    /// Reads `WEFT_HTTP_ALLOW` (comma-separated addresses or prefixes) and
    /// `WEFT_HTTP_MAX_RESPONSE_BYTES` over the defaults.
    pub fn from_env() -> Result<Self, SettingsError> {
        let guard = Guard::from_env().map_err(|problem| SettingsError { name: Guard::ENV, problem })?;
        let mut settings = Self { guard, ..Self::default() };
        if let Ok(n) = std::env::var("WEFT_HTTP_MAX_RESPONSE_BYTES") {
            settings.max_response_bytes = n.trim().parse().map_err(|_| SettingsError {
                name: "WEFT_HTTP_MAX_RESPONSE_BYTES",
                problem: format!("`{n}` is not a byte count"),
            })?;
        }
        Ok(settings)
    }

    /// Settings that allow `prefixes` (e.g. `["127.0.0.1"]` in tests).
    pub fn allowing(prefixes: &[&str]) -> Result<Self, SettingsError> {
        let guard = Guard {
            allow: parse_allow(&prefixes.join(",")).map_err(|problem| SettingsError { name: "allow", problem })?,
        };
        Ok(Self { guard, ..Self::default() })
    }
}
