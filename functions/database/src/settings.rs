//! Process-wide settings, read once at start: the address guard's allow-list (`WEFT_HTTP_ALLOW`,
//! shared with the other node functions), the row ceiling (`WEFT_DATABASE_MAX_ROWS`) and the
//! bounds of a node's `timeout_seconds`.

use std::time::Duration;

use net_guard::{Guard, parse_allow};

/// Process-wide settings, read once at start.
#[derive(Debug, Clone)]
pub struct Settings {
    pub guard: Guard,
    /// The most a node's `max_rows` may ask for.
    pub max_rows_ceiling: usize,
    /// `max_rows` when the node does not say (at most the ceiling).
    pub default_max_rows: usize,
    pub default_timeout: Duration,
    /// The longest `timeout_seconds` accepted: a Lambda runs 15 minutes at most.
    pub max_timeout: Duration,
    /// How long opening a connection (TCP, TLS, authentication) may take, at most the statement timeout.
    pub connect_timeout: Duration,
    /// Connections kept per connection string (and address).
    pub connections_per_pool: usize,
    /// Connection strings with a pool kept at once; the least recently used is closed beyond that.
    pub max_pools: usize,
    /// An idle connection older than this is closed instead of reused.
    pub idle_timeout: Duration,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            guard: Guard::default(),
            max_rows_ceiling: 10_000,
            default_max_rows: 1_000,
            default_timeout: Duration::from_secs(30),
            max_timeout: Duration::from_secs(900),
            connect_timeout: Duration::from_secs(10),
            connections_per_pool: 3,
            max_pools: 16,
            idle_timeout: Duration::from_secs(60),
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

/// libpq variables sqlx reads as defaults for *every* connection: a deployment credential there
/// would be offered to every tenant's server, so the function refuses to start with them set.
const CREDENTIAL_VARIABLES: &[&str] = &["PGSSLCERT", "PGSSLKEY"];

impl Settings {
    /// Reads `WEFT_HTTP_ALLOW` (comma-separated addresses or prefixes the guard lets through) and
    /// `WEFT_DATABASE_MAX_ROWS` (the `max_rows` ceiling, default 10,000) over the defaults.
    pub fn from_env() -> Result<Self, SettingsError> {
        let mut settings = Self::default();
        if let Ok(list) = std::env::var("WEFT_HTTP_ALLOW") {
            settings.guard.allow =
                parse_allow(&list).map_err(|problem| SettingsError { name: "WEFT_HTTP_ALLOW", problem })?;
        }
        if let Ok(n) = std::env::var("WEFT_DATABASE_MAX_ROWS") {
            settings.max_rows_ceiling = n.trim().parse().ok().filter(|n| *n > 0).ok_or_else(|| SettingsError {
                name: "WEFT_DATABASE_MAX_ROWS",
                problem: format!("`{n}` is not a positive row count"),
            })?;
            settings.default_max_rows = settings.default_max_rows.min(settings.max_rows_ceiling);
        }
        for name in CREDENTIAL_VARIABLES {
            if std::env::var_os(name).is_some() {
                return Err(SettingsError {
                    name,
                    problem: "must not be set for the database function: the driver would present it to every \
                              tenant's server"
                        .into(),
                });
            }
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
