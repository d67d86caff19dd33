//! The node's config (`query`, `params`, `read_only`, `max_rows`, `timeout_seconds`) and the
//! connection URL from the tenant's secret, both validated before anything connects.

use std::time::Duration;

use node_contract::NodeError;
use serde_json::{Map, Value};
use sqlx::postgres::{PgConnectOptions, PgSslMode};

use crate::params::Param;
use crate::settings::Settings;

/// Postgres refuses more bind parameters than this (the count is a u16 on the wire).
const MAX_PARAMS: usize = 65_535;
/// The longest SQL text accepted; Step Functions payloads are 256 KiB anyway.
const MAX_SQL_BYTES: usize = 1 << 20;

/// One statement to run.
#[derive(Debug)]
pub(crate) struct Request {
    pub sql: String,
    pub params: Vec<Param>,
    pub read_only: bool,
    pub max_rows: usize,
    /// Postgres' `statement_timeout` for the statement.
    pub timeout: Duration,
}

impl Request {
    pub fn parse(config: &Map<String, Value>, settings: &Settings) -> Result<Self, NodeError> {
        let sql = match config.get("query") {
            Some(Value::String(s)) if s.trim().is_empty() => return Err(NodeError::config("query", "is empty")),
            Some(Value::String(s)) if s.len() > MAX_SQL_BYTES => {
                return Err(NodeError::config("query", format!("is longer than {MAX_SQL_BYTES} bytes")));
            }
            Some(Value::String(s)) => s.clone(),
            Some(_) => return Err(NodeError::config("query", "must be a string of SQL")),
            None => return Err(NodeError::config("query", "is required: the SQL statement to run")),
        };
        let params = match config.get("params") {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::Array(items)) if items.len() > MAX_PARAMS => {
                return Err(NodeError::config("params", format!("has more than {MAX_PARAMS} values")));
            }
            Some(Value::Array(items)) => {
                items.iter().enumerate().map(|(i, v)| Param::from_json(v, i)).collect::<Result<_, _>>()?
            }
            Some(_) => return Err(NodeError::config("params", "must be an array (bound as $1, $2, ...)")),
        };
        let read_only = match config.get("read_only") {
            None | Some(Value::Null) => false,
            Some(Value::Bool(b)) => *b,
            Some(_) => return Err(NodeError::config("read_only", "must be true or false")),
        };
        let ceiling = settings.max_rows_ceiling;
        let max_rows = match config.get("max_rows") {
            None | Some(Value::Null) => settings.default_max_rows,
            Some(v) => match v.as_u64() {
                Some(n) if n >= 1 && n <= ceiling as u64 => n as usize,
                _ => return Err(NodeError::config("max_rows", format!("must be an integer from 1 to {ceiling}"))),
            },
        };
        let max = settings.max_timeout.as_secs_f64();
        let timeout = match config.get("timeout_seconds") {
            None | Some(Value::Null) => settings.default_timeout,
            Some(v) => match v.as_f64() {
                // Postgres counts statement_timeout in whole milliseconds; 0 would mean "none".
                Some(s) if s >= 0.001 && s <= max => Duration::from_millis((s * 1000.0).round() as u64),
                _ => return Err(NodeError::config("timeout_seconds", format!("must be a number from 0.001 to {max}"))),
            },
        };
        Ok(Self { sql, params, read_only, max_rows, timeout })
    }
}

/// Where and how to connect, from the connection URL. Never printed: it holds the password.
pub(crate) struct Target {
    pub host: String,
    pub port: u16,
    user: String,
    password: String,
    database: String,
    ssl_mode: PgSslMode,
    application_name: String,
}

/// `Config.Invalid` about the connection secret. Messages describe the URL, never quote it.
fn bad(problem: impl std::fmt::Display) -> NodeError {
    NodeError::config("connection", format!("the connection secret's URL {problem}"))
}

impl Target {
    /// Parses `postgres://user:password@host:port/database?sslmode=...`. Only what can be checked
    /// by the address guard is accepted: one TCP host in the authority, no Unix socket, no
    /// `host`/`hostaddr` parameters, and no parameter naming a file of this process (certificates).
    pub fn parse(connection: &str) -> Result<Self, NodeError> {
        let url =
            url::Url::parse(connection.trim()).map_err(|_| bad("is not a URL (postgres://user:password@host/db)"))?;
        if !matches!(url.scheme(), "postgres" | "postgresql") {
            return Err(bad("must start with postgres:// or postgresql://"));
        }
        let host = match url.host_str() {
            None | Some("") => return Err(bad("has no host (a Unix socket cannot be used)")),
            Some(h) => decode(h)?,
        };
        if host.starts_with('/') || host.contains(['/', '\\']) {
            return Err(bad("names a Unix socket, which cannot be used"));
        }
        if host.contains(',') {
            return Err(bad("names several hosts; give exactly one"));
        }
        let port = url.port().unwrap_or(5432);
        let user = decode(url.username())?;
        if user.is_empty() {
            return Err(bad("has no user name"));
        }
        let password = decode(url.password().unwrap_or(""))?;
        let path = decode(url.path().trim_start_matches('/'))?;
        let database = if path.is_empty() { user.clone() } else { path };
        let mut target = Self {
            host,
            port,
            user,
            password,
            database,
            ssl_mode: PgSslMode::Prefer,
            application_name: "weft-database".to_owned(),
        };
        for (key, value) in url.query_pairs() {
            match &*key {
                "sslmode" | "ssl-mode" => {
                    target.ssl_mode = match &*value {
                        "disable" => PgSslMode::Disable,
                        "allow" => PgSslMode::Allow,
                        "prefer" => PgSslMode::Prefer,
                        "require" => PgSslMode::Require,
                        "verify-ca" => PgSslMode::VerifyCa,
                        // The function connects to the address the guard checked, and sqlx verifies
                        // the certificate against the address it dials, so the host name cannot be.
                        "verify-full" => {
                            return Err(bad(
                                "asks for sslmode=verify-full, which this function cannot honour: it connects to \
                                 the IP address the address guard checked, so the certificate's host name is not \
                                 verified; use sslmode=verify-ca (chain verified) or require",
                            ));
                        }
                        _ => return Err(bad("has an unknown sslmode (disable, allow, prefer, require, verify-ca)")),
                    }
                }
                "application_name" => target.application_name = value.into_owned(),
                // libpq's; the function's own connect timeout applies.
                "connect_timeout" => {}
                "host" | "hostaddr" => {
                    return Err(bad(format!(
                        "sets `{key}`: the host must be the URL's authority, where the address guard checks it"
                    )));
                }
                "user" | "password" | "dbname" | "port" => {
                    return Err(bad(format!("sets `{key}` as a parameter: put it in the URL itself")));
                }
                _ => {
                    return Err(bad(format!(
                        "has the parameter `{key}`, which is not supported (sslmode, application_name, connect_timeout)"
                    )));
                }
            }
        }
        Ok(target)
    }

    /// The driver's options for connecting to `ip`, the address the guard permitted. Every field
    /// is set here so none comes from the process environment (`PGPASSWORD` and friends).
    pub fn options(&self, ip: std::net::IpAddr) -> PgConnectOptions {
        let options = PgConnectOptions::new_without_pgpass()
            .host(&ip.to_string())
            .port(self.port)
            .username(&self.user)
            .password(&self.password)
            .database(&self.database)
            .ssl_mode(self.ssl_mode)
            .application_name(&self.application_name)
            .statement_cache_capacity(64);
        sqlx::ConnectOptions::disable_statement_logging(options)
    }
}

/// Percent-decoded URL text (the driver would decode it the same way).
fn decode(s: &str) -> Result<String, NodeError> {
    url::form_urlencoded::parse(format!("x={}", s.replace('+', "%2B")).as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())
        .ok_or_else(|| bad("has bad percent-encoding"))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn connection_urls_are_checked_before_connecting() {
        let t = Target::parse("postgres://u:p%40ss@db.example.com:6543/app?sslmode=require").unwrap();
        assert_eq!(
            (t.host.as_str(), t.port, t.user.as_str(), t.password.as_str()),
            ("db.example.com", 6543, "u", "p@ss")
        );
        assert_eq!(t.database, "app");
        let t = Target::parse("postgresql://u@[::1]/").unwrap();
        assert_eq!((t.host.as_str(), t.database.as_str()), ("[::1]", "u"));
        for (url, needle) in [
            ("mysql://u@h/db", "postgres://"),
            ("postgres:///db", "no host"),
            ("postgres://%2Ftmp%2Fsock/db", "Unix socket"),
            ("postgres://u@h/db?host=/tmp", "`host`"),
            ("postgres://u@h/db?hostaddr=10.0.0.1", "`hostaddr`"),
            ("postgres://u@h/db?sslrootcert=/etc/passwd", "`sslrootcert`"),
            ("postgres://u@h/db?sslmode=verify-full", "verify-full"),
            ("postgres://u@h1,h2/db", "several hosts"),
            ("postgres://h/db", "no user"),
            ("not a url", "not a URL"),
        ] {
            let e = Target::parse(url).err().unwrap_or_else(|| panic!("{url} was accepted"));
            assert_eq!(e.name, "Config.Invalid");
            assert!(e.message.starts_with("config.connection:") && e.message.contains(needle), "{url}: {}", e.message);
        }
        // A password never appears in a refusal.
        let e = Target::parse("postgres://u:hunter2@h/db?sslmode=bogus").err().unwrap();
        assert!(!e.message.contains("hunter2"), "{}", e.message);
    }

    #[test]
    fn requests_are_validated_by_field() {
        let s = Settings::default();
        let parse = |v: Value| Request::parse(v.as_object().unwrap(), &s);
        let r = parse(serde_json::json!({"query": "select 1"})).unwrap();
        assert_eq!((r.max_rows, r.timeout, r.read_only), (1000, Duration::from_secs(30), false));
        for (config, field) in [
            (serde_json::json!({}), "config.query"),
            (serde_json::json!({"query": " "}), "config.query"),
            (serde_json::json!({"query": "x", "params": {"a": 1}}), "config.params"),
            (serde_json::json!({"query": "x", "max_rows": 10_001}), "config.max_rows"),
            (serde_json::json!({"query": "x", "max_rows": 0}), "config.max_rows"),
            (serde_json::json!({"query": "x", "timeout_seconds": 0}), "config.timeout_seconds"),
            (serde_json::json!({"query": "x", "timeout_seconds": "5"}), "config.timeout_seconds"),
            (serde_json::json!({"query": "x", "read_only": "yes"}), "config.read_only"),
            (serde_json::json!({"query": "x", "params": [18446744073709551615u64]}), "config.params[0]"),
        ] {
            let e = parse(config.clone()).unwrap_err();
            assert_eq!(e.name, "Config.Invalid");
            assert!(e.message.starts_with(field), "{config}: {}", e.message);
        }
    }
}
