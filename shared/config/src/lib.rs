//! Weft's typed configuration, read from `WEFT_*` environment variables and validated once at
//! start-up.
//!
//! [`Config::from_env`] reports *every* problem at once, each naming the variable and the fix, so
//! an operator fixes a deployment in one round. Nothing here does IO beyond reading the
//! environment; the values are checked for shape (URLs, base64, numbers), not reachability.

use std::collections::{BTreeMap, HashMap};
use std::fmt;

use base64::Engine as _;

/// Everything the api function and `weft serve` need: every section.
#[derive(Clone)]
pub struct Config {
    pub database: DatabaseConfig,
    pub redis: RedisConfig,
    pub jwt: JwtConfig,
    /// `WEFT_SECRETS_KEY`: 32 bytes, base64 (standard alphabet, padded or not).
    pub secrets_key: [u8; 32],
    pub sfn: SfnConfig,
    /// `WEFT_SFN_ACCESS_KEY_ID` and `WEFT_SFN_SECRET_ACCESS_KEY`: the credentials `weft serve`'s
    /// own Step Functions endpoint accepts (SigV4), for clients such as boto3 or the AWS CLI.
    /// `None` (both unset): `weft serve` generates random ones at each start, known only to its
    /// own api.
    pub sfn_endpoint_credentials: Option<SfnEndpointCredentials>,
    pub api: ApiConfig,
    pub recorder: RecorderConfig,
    /// `WEFT_EVENT_BUS_NAME` (optional): the EventBridge bus (name or ARN) the api publishes its
    /// domain events to after its writes. Unset: events stay in the outbox for another relay
    /// (`weft serve` publishes to its Redis stream whatever this says).
    pub event_bus_name: Option<String>,
}

/// What the execution domain alone needs: the recorder and trigger functions read only this
/// (no JWT issuer, no secrets key).
#[derive(Debug, Clone)]
pub struct ExecutionsConfig {
    pub database: DatabaseConfig,
    /// `WEFT_REDIS_URL`, optional here: without it events are recorded in Postgres only.
    pub redis: Option<RedisConfig>,
    pub sfn: SfnConfig,
    /// `WEFT_EVENT_BUS_NAME` (optional): the EventBridge bus the recorder (and trigger) functions
    /// publish domain events to after their writes.
    pub event_bus_name: Option<String>,
}

/// Postgres.
#[derive(Clone)]
pub struct DatabaseConfig {
    /// `WEFT_DATABASE_URL`: a `postgres://` URL.
    pub url: String,
    /// `WEFT_DATABASE_MAX_CONNECTIONS` (default 20): the api's pool (request handlers; `weft
    /// serve` sizes the starts' pool the same), or the one pool of a function.
    pub max_connections: u32,
    /// `WEFT_ENGINE_DATABASE_MAX_CONNECTIONS` (default 20): `weft serve`'s Step Functions
    /// endpoint (history and outcomes of running executions) and in-process functions. A pool of
    /// its own, so a burst of requests cannot starve running executions, nor they the requests.
    pub engine_max_connections: u32,
    /// `WEFT_RECORDER_DATABASE_MAX_CONNECTIONS` (default 10): `weft serve`'s recorder and sweeper.
    pub recorder_max_connections: u32,
}

impl fmt::Debug for DatabaseConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DatabaseConfig")
            .field("url", &redact_url(&self.url))
            .field("max_connections", &self.max_connections)
            .field("engine_max_connections", &self.engine_max_connections)
            .field("recorder_max_connections", &self.recorder_max_connections)
            .finish()
    }
}

/// Redis.
#[derive(Clone)]
pub struct RedisConfig {
    /// `WEFT_REDIS_URL`: a `redis://` or `rediss://` URL.
    pub url: String,
}

impl fmt::Debug for RedisConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisConfig").field("url", &redact_url(&self.url)).finish()
    }
}

/// The HTTP API's own settings.
#[derive(Debug, Clone)]
pub struct ApiConfig {
    pub rate_limit: RateLimitConfig,
    /// `WEFT_MAX_BODY_BYTES` (default 1 MiB): larger request bodies are refused with 413.
    pub max_body_bytes: usize,
    /// `WEFT_CACHE_L1_CAPACITY` (default 10,000 entries).
    pub cache_l1_capacity: usize,
    /// `WEFT_CACHE_L1_TTL_MS` (default 1,000): how long another instance may serve a stale
    /// mutable entry after a write elsewhere. Immutable entries (versions) never go stale.
    pub cache_l1_ttl_ms: u64,
    /// `WEFT_CACHE_L2_TTL_SECONDS` (default 300).
    pub cache_l2_ttl_seconds: u64,
    /// `WEFT_FUNCTION_ARNS`: a JSON object of node type → Lambda `FunctionName` (ARN) that
    /// published state machines invoke, e.g. `{"http": "arn:aws:lambda:...:function:weft-http"}`
    /// (the SAM template sets it from its function resources). Types left out keep the
    /// compiler's default `${<Type>FunctionArn}` placeholder, which `weft serve`'s local
    /// functions understand but AWS does not.
    pub function_arns: BTreeMap<String, String>,
    /// `WEFT_SYNC_WAIT_MS` (default 30,000; 1 to 900,000): how long `?wait=true` waits for a result.
    pub sync_wait_ms: u64,
    /// `WEFT_SSE_WAIT_MS` (default 20,000; 1 to 900,000): how long one SSE response waits for
    /// events before it ends with a `retry:` hint.
    pub sse_wait_ms: u64,
}

/// `weft serve`'s recorder loop.
#[derive(Debug, Clone)]
pub struct RecorderConfig {
    /// `WEFT_RECORDER_INTERVAL_MS` (default 250; 1 to 60,000): how often an execution whose
    /// history changed is recorded again.
    pub interval_ms: u64,
}

// Secrets must never end up in logs, so Debug is written by hand.
impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Config")
            .field("database", &self.database)
            .field("redis", &self.redis)
            .field("jwt", &self.jwt)
            .field("secrets_key", &"<redacted>")
            .field("sfn", &self.sfn)
            .field("sfn_endpoint_credentials", &self.sfn_endpoint_credentials)
            .field("api", &self.api)
            .field("recorder", &self.recorder)
            .field("event_bus_name", &self.event_bus_name)
            .finish()
    }
}

/// How bearer tokens are verified. At least one of the two keys is configured; when both are,
/// the token's `alg` picks the key, and each key accepts only its own algorithm.
#[derive(Clone)]
pub struct JwtConfig {
    /// `WEFT_JWT_SECRET`: HS256 shared secret (at least 32 bytes).
    pub hs256_secret: Option<Vec<u8>>,
    /// `WEFT_JWKS_URL`: RS256 public keys.
    pub jwks_url: Option<String>,
    /// `WEFT_JWT_ISSUER`: required `iss`.
    pub issuer: String,
    /// `WEFT_JWT_AUDIENCE`: required `aud`.
    pub audience: String,
    /// `WEFT_JWT_LEEWAY_SECONDS` (default 30): clock skew allowed on `exp` and `nbf`.
    pub leeway_seconds: u64,
}

impl fmt::Debug for JwtConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JwtConfig")
            .field("hs256_secret", &self.hs256_secret.as_ref().map(|_| "<redacted>"))
            .field("jwks_url", &self.jwks_url)
            .field("issuer", &self.issuer)
            .field("audience", &self.audience)
            .field("leeway_seconds", &self.leeway_seconds)
            .finish()
    }
}

/// Where publishing goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SfnConfig {
    /// Store compiled versions only (no `WEFT_SFN_ENDPOINT` and `WEFT_SFN_ENABLED` unset).
    Off,
    /// Create and update state machines through `aws-sdk-sfn`.
    On {
        /// `WEFT_SFN_ENDPOINT`: endpoint override (local Step Functions); `None` means AWS.
        endpoint: Option<String>,
        /// `WEFT_SFN_ROLE_ARN`: the execution role given to created state machines.
        role_arn: String,
        /// `WEFT_SFN_REGION` (default `us-east-1` with an endpoint, else from the AWS config).
        region: Option<String>,
    },
}

/// An access key id and secret for SigV4. `Debug` hides the secret.
#[derive(Clone, PartialEq, Eq)]
pub struct SfnEndpointCredentials {
    /// 16 to 128 characters of `[A-Za-z0-9_]` (AWS's shape).
    pub access_key_id: String,
    /// 20 to 128 visible ASCII characters.
    pub secret_access_key: String,
}

impl fmt::Debug for SfnEndpointCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SfnEndpointCredentials")
            .field("access_key_id", &self.access_key_id)
            .field("secret_access_key", &"<redacted>")
            .finish()
    }
}

/// Per-tenant fixed-window limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimitConfig {
    /// `WEFT_RATE_LIMIT` (default 1,200; 0 disables limiting).
    pub requests: u64,
    /// `WEFT_RATE_LIMIT_WINDOW_SECONDS` (default 60).
    pub window_seconds: u64,
}

/// Every problem found, one per line.
#[derive(Debug, thiserror::Error)]
#[error("invalid configuration:\n{}", .problems.iter().map(|p| format!("  - {p}")).collect::<Vec<_>>().join("\n"))]
pub struct ConfigError {
    pub problems: Vec<String>,
}

impl Config {
    /// Reads the process environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_vars(std::env::vars())
    }

    /// Reads the given variables (tests pass their own; later pairs override earlier ones).
    pub fn from_vars(
        vars: impl IntoIterator<Item = (impl Into<String>, impl Into<String>)>,
    ) -> Result<Self, ConfigError> {
        read(vars, |r| Config {
            database: r.database(),
            redis: r.redis(true).unwrap_or(RedisConfig { url: String::new() }),
            jwt: r.jwt(),
            secrets_key: r.secrets_key().unwrap_or_default(),
            sfn: r.sfn(true),
            sfn_endpoint_credentials: r.sfn_endpoint_credentials(),
            api: r.api(),
            recorder: RecorderConfig { interval_ms: r.number("WEFT_RECORDER_INTERVAL_MS", 250, 1, 60_000) },
            event_bus_name: r.event_bus_name(),
        })
    }
}

impl ExecutionsConfig {
    /// Reads the process environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_vars(std::env::vars())
    }

    /// Reads the given variables (later pairs override earlier ones).
    pub fn from_vars(
        vars: impl IntoIterator<Item = (impl Into<String>, impl Into<String>)>,
    ) -> Result<Self, ConfigError> {
        read(vars, |r| ExecutionsConfig {
            database: r.database(),
            redis: r.redis(false),
            sfn: r.sfn(false),
            event_bus_name: r.event_bus_name(),
        })
    }
}

/// Reads the `WEFT_*` variables of `vars` with `sections`, then reports every problem at once.
fn read<T>(
    vars: impl IntoIterator<Item = (impl Into<String>, impl Into<String>)>,
    sections: impl FnOnce(&mut Reader<'_>) -> T,
) -> Result<T, ConfigError> {
    let vars: HashMap<String, String> =
        vars.into_iter().map(|(k, v)| (k.into(), v.into())).filter(|(k, _)| k.starts_with("WEFT_")).collect();
    let mut r = Reader { vars: &vars, problems: Vec::new() };
    let value = sections(&mut r);
    r.finish()?;
    Ok(value)
}

struct Reader<'a> {
    vars: &'a HashMap<String, String>,
    problems: Vec<String>,
}

impl Reader<'_> {
    fn finish(self) -> Result<(), ConfigError> {
        if self.problems.is_empty() { Ok(()) } else { Err(ConfigError { problems: self.problems }) }
    }

    fn database(&mut self) -> DatabaseConfig {
        DatabaseConfig {
            url: self.url("WEFT_DATABASE_URL", &["postgres", "postgresql"]).unwrap_or_default(),
            max_connections: self.number("WEFT_DATABASE_MAX_CONNECTIONS", 20, 1, 1_000) as u32,
            engine_max_connections: self.number("WEFT_ENGINE_DATABASE_MAX_CONNECTIONS", 20, 1, 1_000) as u32,
            recorder_max_connections: self.number("WEFT_RECORDER_DATABASE_MAX_CONNECTIONS", 10, 1, 1_000) as u32,
        }
    }

    /// `WEFT_REDIS_URL`; when not `required`, unset is `None` (a malformed value is still a problem).
    fn redis(&mut self, required: bool) -> Option<RedisConfig> {
        if !required && self.optional("WEFT_REDIS_URL").is_none() {
            return None;
        }
        self.url("WEFT_REDIS_URL", &["redis", "rediss"]).map(|url| RedisConfig { url })
    }

    fn jwt(&mut self) -> JwtConfig {
        let hs256_secret = self.optional("WEFT_JWT_SECRET").map(|s| s.as_bytes().to_vec());
        if let Some(secret) = &hs256_secret
            && secret.len() < 32
        {
            self.problem(
                "WEFT_JWT_SECRET is shorter than 32 bytes; use a long random value (e.g. `openssl rand -base64 48`)",
            );
        }
        let jwks_url = self.optional("WEFT_JWKS_URL");
        if let Some(url) = &jwks_url
            && !(url.starts_with("https://") || url.starts_with("http://"))
        {
            self.problem(format!("WEFT_JWKS_URL must be an http(s) URL, got `{url}`"));
        }
        if hs256_secret.is_none() && jwks_url.is_none() {
            self.problem("set WEFT_JWT_SECRET (HS256) or WEFT_JWKS_URL (RS256) so tokens can be verified");
        }
        let issuer = self.required("WEFT_JWT_ISSUER", "the `iss` every token must carry");
        let audience = self.required("WEFT_JWT_AUDIENCE", "the `aud` every token must carry");
        let leeway_seconds = self.number("WEFT_JWT_LEEWAY_SECONDS", 30, 0, 300);
        JwtConfig {
            hs256_secret,
            jwks_url,
            issuer: issuer.unwrap_or_default(),
            audience: audience.unwrap_or_default(),
            leeway_seconds,
        }
    }

    /// The Step Functions section; `publishes`: this process creates state machines, so AWS
    /// needs a real execution role.
    fn sfn(&mut self, publishes: bool) -> SfnConfig {
        let endpoint = self.optional("WEFT_SFN_ENDPOINT");
        if !self.boolean("WEFT_SFN_ENABLED", endpoint.is_some()) {
            return SfnConfig::Off;
        }
        let role_arn = self
            .optional("WEFT_SFN_ROLE_ARN")
            .unwrap_or_else(|| "arn:aws:iam::000000000000:role/weft-state-machine".to_owned());
        if publishes && endpoint.is_none() && role_arn.starts_with("arn:aws:iam::000000000000:") {
            self.problem("WEFT_SFN_ROLE_ARN is required when publishing to AWS Step Functions");
        }
        let region = self.optional("WEFT_SFN_REGION");
        SfnConfig::On { endpoint, role_arn, region }
    }

    fn api(&mut self) -> ApiConfig {
        ApiConfig {
            rate_limit: RateLimitConfig {
                requests: self.number("WEFT_RATE_LIMIT", 1_200, 0, u64::MAX),
                window_seconds: self.number("WEFT_RATE_LIMIT_WINDOW_SECONDS", 60, 1, 86_400),
            },
            max_body_bytes: self.number("WEFT_MAX_BODY_BYTES", 1024 * 1024, 1024, 64 * 1024 * 1024) as usize,
            cache_l1_capacity: self.number("WEFT_CACHE_L1_CAPACITY", 10_000, 1, 10_000_000) as usize,
            cache_l1_ttl_ms: self.number("WEFT_CACHE_L1_TTL_MS", 1_000, 0, 3_600_000),
            cache_l2_ttl_seconds: self.number("WEFT_CACHE_L2_TTL_SECONDS", 300, 1, 86_400),
            function_arns: self.function_arns("WEFT_FUNCTION_ARNS"),
            sync_wait_ms: self.number("WEFT_SYNC_WAIT_MS", 30_000, 1, 900_000),
            sse_wait_ms: self.number("WEFT_SSE_WAIT_MS", 20_000, 1, 900_000),
        }
    }

    /// `WEFT_EVENT_BUS_NAME`: an EventBridge bus name (1 to 256 of `A-Za-z0-9._-/`) or its ARN.
    fn event_bus_name(&mut self) -> Option<String> {
        const NAME: &str = "WEFT_EVENT_BUS_NAME";
        let v = self.optional(NAME)?;
        let ok = if v.starts_with("arn:") {
            v.len() <= 1600 && v.split(':').count() == 6 && v.contains(":event-bus/")
        } else {
            v.len() <= 256 && v.bytes().all(|b| b.is_ascii_alphanumeric() || b"._-/".contains(&b))
        };
        if !ok {
            self.problem(format!(
                "{NAME} must be an EventBridge bus name (1 to 256 of A-Z, a-z, 0-9, '.', '_', '-', '/') or a bus ARN \
                 (arn:aws:events:<region>:<account>:event-bus/<name>), got `{v}`"
            ));
            return None;
        }
        Some(v)
    }

    fn problem(&mut self, p: impl Into<String>) {
        self.problems.push(p.into());
    }

    fn optional(&self, name: &str) -> Option<String> {
        self.vars.get(name).map(|v| v.trim().to_owned()).filter(|v| !v.is_empty())
    }

    fn required(&mut self, name: &str, what: &str) -> Option<String> {
        let v = self.optional(name);
        if v.is_none() {
            self.problem(format!("{name} is not set: it is {what}"));
        }
        v
    }

    fn url(&mut self, name: &str, schemes: &[&str]) -> Option<String> {
        let v = self.required(name, &format!("a {}:// URL", schemes[0]))?;
        let ok = schemes.iter().any(|s| v.starts_with(&format!("{s}://")));
        if !ok {
            self.problem(format!(
                "{name} must start with {}, got `{}`",
                schemes.iter().map(|s| format!("{s}://")).collect::<Vec<_>>().join(" or "),
                redact_url(&v)
            ));
            return None;
        }
        Some(v)
    }

    fn number(&mut self, name: &str, default: u64, min: u64, max: u64) -> u64 {
        let Some(v) = self.optional(name) else { return default };
        match v.parse::<u64>() {
            Ok(n) if (min..=max).contains(&n) => n,
            _ => {
                self.problem(format!("{name} must be a whole number from {min} to {max}, got `{v}`"));
                default
            }
        }
    }

    /// A JSON object of function node type → non-empty function name.
    fn function_arns(&mut self, name: &str) -> BTreeMap<String, String> {
        let Some(v) = self.optional(name) else { return BTreeMap::new() };
        let map: BTreeMap<String, String> = match serde_json::from_str(&v) {
            Ok(map) => map,
            Err(err) => {
                self.problem(format!(
                    "{name} must be a JSON object of node type to Lambda function ARN, \
                     e.g. {{\"http\": \"arn:aws:lambda:us-east-1:123456789012:function:weft-http\"}}: {err}"
                ));
                return BTreeMap::new();
            }
        };
        for (node_type, function) in &map {
            if node_contract::logical_id(node_type).is_none() {
                let known: Vec<&str> = node_contract::FUNCTIONS.iter().map(|(t, _)| *t).collect();
                self.problem(format!(
                    "{name}: `{node_type}` is not a node type that runs as a function (one of: {})",
                    known.join(", ")
                ));
            } else if function.trim().is_empty() {
                self.problem(format!("{name}: the function for `{node_type}` is empty"));
            }
        }
        map
    }

    fn boolean(&mut self, name: &str, default: bool) -> bool {
        let Some(v) = self.optional(name) else { return default };
        match v.to_ascii_lowercase().as_str() {
            "1" | "true" | "yes" | "on" => true,
            "0" | "false" | "no" | "off" => false,
            _ => {
                self.problem(format!("{name} must be true or false, got `{v}`"));
                default
            }
        }
    }

    /// Both of `WEFT_SFN_ACCESS_KEY_ID` and `WEFT_SFN_SECRET_ACCESS_KEY`, or neither.
    fn sfn_endpoint_credentials(&mut self) -> Option<SfnEndpointCredentials> {
        const ID: &str = "WEFT_SFN_ACCESS_KEY_ID";
        const SECRET: &str = "WEFT_SFN_SECRET_ACCESS_KEY";
        match (self.optional(ID), self.optional(SECRET)) {
            (None, None) => None,
            (Some(_), None) => {
                self.problem(format!("{ID} is set but {SECRET} is not: set both (the Step Functions endpoint's SigV4 credentials) or neither"));
                None
            }
            (None, Some(_)) => {
                self.problem(format!("{SECRET} is set but {ID} is not: set both (the Step Functions endpoint's SigV4 credentials) or neither"));
                None
            }
            (Some(access_key_id), Some(secret_access_key)) => {
                let mut ok = true;
                let id_shape = access_key_id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
                if !(16..=128).contains(&access_key_id.len()) || !id_shape {
                    self.problem(format!("{ID} must be 16 to 128 characters of A-Z, a-z, 0-9 or _ (like an AWS access key id), got `{access_key_id}`"));
                    ok = false;
                }
                // The value is a secret: say what is wrong with it, never what it is.
                if !(20..=128).contains(&secret_access_key.len())
                    || !secret_access_key.bytes().all(|b| b.is_ascii_graphic())
                {
                    self.problem(format!(
                        "{SECRET} must be 20 to 128 visible ASCII characters (no spaces); generate one with `openssl rand -base64 30`"
                    ));
                    ok = false;
                }
                ok.then_some(SfnEndpointCredentials { access_key_id, secret_access_key })
            }
        }
    }

    fn secrets_key(&mut self) -> Option<[u8; 32]> {
        let v = self.required("WEFT_SECRETS_KEY", "32 random bytes in base64 (e.g. `openssl rand -base64 32`)")?;
        let engines = [base64::engine::general_purpose::STANDARD, base64::engine::general_purpose::STANDARD_NO_PAD];
        let bytes = engines.iter().find_map(|e| e.decode(&v).ok());
        match bytes.map(<[u8; 32]>::try_from) {
            Some(Ok(key)) => Some(key),
            Some(Err(bytes)) => {
                self.problem(format!(
                    "WEFT_SECRETS_KEY must decode to exactly 32 bytes, got {}; generate one with `openssl rand -base64 32`",
                    bytes.len()
                ));
                None
            }
            None => {
                self.problem("WEFT_SECRETS_KEY is not valid base64; generate one with `openssl rand -base64 32`");
                None
            }
        }
    }
}

/// Hides the password of a URL such as `postgres://user:pass@host/db`.
pub fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else { return url.to_owned() };
    let Some((userinfo, host)) = rest.split_once('@') else { return url.to_owned() };
    match userinfo.split_once(':') {
        Some((user, _)) => format!("{scheme}://{user}:***@{host}"),
        None => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base() -> Vec<(&'static str, &'static str)> {
        vec![
            ("WEFT_DATABASE_URL", "postgres://u:pw@127.0.0.1:5432/weft"),
            ("WEFT_REDIS_URL", "redis://127.0.0.1:6379"),
            ("WEFT_JWT_SECRET", "0123456789abcdef0123456789abcdef"),
            ("WEFT_JWT_ISSUER", "https://issuer.test"),
            ("WEFT_JWT_AUDIENCE", "weft"),
            ("WEFT_SECRETS_KEY", "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="),
        ]
    }

    #[test]
    fn valid_config_with_defaults() {
        let c = Config::from_vars(base()).expect("valid");
        assert_eq!(c.secrets_key[31], 31);
        assert_eq!(c.api.rate_limit, RateLimitConfig { requests: 1_200, window_seconds: 60 });
        assert_eq!(c.sfn, SfnConfig::Off);
        assert_eq!(c.api.max_body_bytes, 1024 * 1024);
        assert_eq!((c.api.sync_wait_ms, c.api.sse_wait_ms, c.recorder.interval_ms), (30_000, 20_000, 250));
        assert_eq!(c.database.url, "postgres://u:pw@127.0.0.1:5432/weft");
        assert_eq!(c.redis.url, "redis://127.0.0.1:6379");
        let debug = format!("{c:?}");
        assert!(!debug.contains("pw@"), "password leaked: {debug}");
        assert!(!debug.contains("0123456789abcdef"), "jwt secret leaked: {debug}");
    }

    #[test]
    fn function_arns_are_a_checked_map_of_function_node_types() {
        let mut vars = base();
        vars.push(("WEFT_FUNCTION_ARNS", r#"{"http": "arn:aws:lambda:us-east-1:1:function:weft-http"}"#));
        let c = Config::from_vars(vars).expect("valid");
        assert_eq!(
            c.api.function_arns.get("http").map(String::as_str),
            Some("arn:aws:lambda:us-east-1:1:function:weft-http")
        );
        assert!(Config::from_vars(base()).expect("valid").api.function_arns.is_empty());

        for (bad, says) in [
            ("[1]", "must be a JSON object"),
            (r#"{"condition": "x"}"#, "`condition` is not a node type that runs as a function"),
            (r#"{"code": " "}"#, "the function for `code` is empty"),
        ] {
            let mut vars = base();
            vars.push(("WEFT_FUNCTION_ARNS", bad));
            let err = Config::from_vars(vars).expect_err(bad).to_string();
            assert!(err.contains("WEFT_FUNCTION_ARNS") && err.contains(says), "{bad}: {err}");
        }
    }

    #[test]
    fn overrides_apply() {
        let mut vars = base();
        vars.push(("WEFT_RATE_LIMIT", "5"));
        vars.push(("WEFT_RATE_LIMIT_WINDOW_SECONDS", "1"));
        vars.push(("WEFT_SFN_ENDPOINT", "http://127.0.0.1:8083"));
        let c = Config::from_vars(vars).expect("valid");
        assert_eq!(c.api.rate_limit, RateLimitConfig { requests: 5, window_seconds: 1 });
        assert!(matches!(c.sfn, SfnConfig::On { endpoint: Some(ref e), .. } if e == "http://127.0.0.1:8083"));
    }

    #[test]
    fn every_problem_is_reported_at_once() {
        let vars = vec![
            ("WEFT_DATABASE_URL", "mysql://x"),
            ("WEFT_SECRETS_KEY", "c2hvcnQ="),
            ("WEFT_RATE_LIMIT", "lots"),
            ("HOME", "/root"),
        ];
        let err = Config::from_vars(vars).expect_err("invalid");
        let text = err.to_string();
        for needle in [
            "WEFT_DATABASE_URL must start with postgres://",
            "WEFT_REDIS_URL is not set",
            "set WEFT_JWT_SECRET (HS256) or WEFT_JWKS_URL (RS256)",
            "WEFT_JWT_ISSUER is not set",
            "WEFT_JWT_AUDIENCE is not set",
            "WEFT_SECRETS_KEY must decode to exactly 32 bytes, got 5",
            "WEFT_RATE_LIMIT must be a whole number",
        ] {
            assert!(text.contains(needle), "missing `{needle}` in:\n{text}");
        }
        assert_eq!(err.problems.len(), 7, "{text}");
    }

    #[test]
    fn waits_and_the_recorder_interval_are_validated_not_silently_defaulted() {
        let mut vars = base();
        vars.extend([("WEFT_SYNC_WAIT_MS", "1500"), ("WEFT_SSE_WAIT_MS", "250"), ("WEFT_RECORDER_INTERVAL_MS", "20")]);
        let c = Config::from_vars(vars).expect("valid");
        assert_eq!((c.api.sync_wait_ms, c.api.sse_wait_ms, c.recorder.interval_ms), (1_500, 250, 20));
        for (name, bad) in
            [("WEFT_SYNC_WAIT_MS", "soon"), ("WEFT_SSE_WAIT_MS", "0"), ("WEFT_RECORDER_INTERVAL_MS", "-5")]
        {
            let mut vars = base();
            vars.push((name, bad));
            let err = Config::from_vars(vars).expect_err(name).to_string();
            assert!(err.contains(&format!("{name} must be a whole number from")), "{name}: {err}");
        }
    }

    #[test]
    fn the_execution_domain_needs_no_jwt_nor_secrets_key() {
        let only = [("WEFT_DATABASE_URL", "postgres://u:pw@127.0.0.1:5432/weft"), ("WEFT_SFN_ENABLED", "true")];
        let c = ExecutionsConfig::from_vars(only).expect("valid without JWT, secrets key or Redis");
        assert!(c.redis.is_none());
        // It publishes nothing, so AWS without an explicit role is fine here (not for the api).
        assert!(matches!(c.sfn, SfnConfig::On { endpoint: None, .. }));
        assert!(!format!("{c:?}").contains("pw@"));
        let err = ExecutionsConfig::from_vars([("WEFT_REDIS_URL", "http://x")]).expect_err("invalid").to_string();
        assert!(
            err.contains("WEFT_DATABASE_URL is not set") && err.contains("WEFT_REDIS_URL must start with redis://"),
            "{err}"
        );
    }

    #[test]
    fn short_jwt_secret_and_bad_jwks_url_are_refused() {
        let mut vars = base();
        vars.push(("WEFT_JWT_SECRET", "short"));
        vars.push(("WEFT_JWKS_URL", "file:///etc/keys"));
        let err = Config::from_vars(vars).expect_err("invalid");
        assert_eq!(err.problems.len(), 2, "{err}");
    }

    #[test]
    fn sfn_endpoint_credentials_are_both_or_neither_and_well_formed() {
        assert_eq!(Config::from_vars(base()).expect("valid").sfn_endpoint_credentials, None);
        let mut vars = base();
        vars.push(("WEFT_SFN_ACCESS_KEY_ID", "AKIDWEFTLOCAL000"));
        vars.push(("WEFT_SFN_SECRET_ACCESS_KEY", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"));
        let c = Config::from_vars(vars).expect("valid");
        let creds = c.sfn_endpoint_credentials.clone().expect("credentials");
        assert_eq!(creds.access_key_id, "AKIDWEFTLOCAL000");
        assert_eq!(creds.secret_access_key, "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY");
        let debug = format!("{c:?}");
        assert!(debug.contains("AKIDWEFTLOCAL000") && !debug.contains("EXAMPLEKEY"), "secret leaked: {debug}");

        for (id, secret, says) in [
            (Some("AKIDWEFTLOCAL000"), None, "WEFT_SFN_ACCESS_KEY_ID is set but WEFT_SFN_SECRET_ACCESS_KEY is not"),
            (
                None,
                Some("wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"),
                "WEFT_SFN_SECRET_ACCESS_KEY is set but WEFT_SFN_ACCESS_KEY_ID is not",
            ),
            (
                Some("short"),
                Some("wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"),
                "WEFT_SFN_ACCESS_KEY_ID must be 16 to 128",
            ),
            (
                Some("AKID/WEFT/LOCAL/000"),
                Some("wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"),
                "WEFT_SFN_ACCESS_KEY_ID must be 16 to 128",
            ),
            (Some("AKIDWEFTLOCAL000"), Some("tooshort"), "WEFT_SFN_SECRET_ACCESS_KEY must be 20 to 128"),
            (
                Some("AKIDWEFTLOCAL000"),
                Some("has spaces in the middle of it"),
                "WEFT_SFN_SECRET_ACCESS_KEY must be 20 to 128",
            ),
        ] {
            let mut vars = base();
            vars.extend(id.map(|v| ("WEFT_SFN_ACCESS_KEY_ID", v)));
            vars.extend(secret.map(|v| ("WEFT_SFN_SECRET_ACCESS_KEY", v)));
            let err = Config::from_vars(vars).expect_err(says).to_string();
            assert!(err.contains(says), "{says}: {err}");
            assert!(!err.contains("tooshort") && !err.contains("has spaces"), "the secret is in the error: {err}");
        }
    }

    #[test]
    fn the_event_bus_is_optional_and_checked() {
        assert_eq!(Config::from_vars(base()).expect("valid").event_bus_name, None);
        let only = [("WEFT_DATABASE_URL", "postgres://127.0.0.1/weft")];
        assert_eq!(ExecutionsConfig::from_vars(only).expect("valid").event_bus_name, None);
        for good in ["weft-events", "arn:aws:events:us-east-1:123456789012:event-bus/weft-events"] {
            let mut vars = base();
            vars.push(("WEFT_EVENT_BUS_NAME", good));
            assert_eq!(Config::from_vars(vars).expect(good).event_bus_name.as_deref(), Some(good));
            let vars = [only[0], ("WEFT_EVENT_BUS_NAME", good)];
            assert_eq!(ExecutionsConfig::from_vars(vars).expect(good).event_bus_name.as_deref(), Some(good));
        }
        for bad in ["my bus", "arn:aws:sqs:us-east-1:1:queue"] {
            let mut vars = base();
            vars.push(("WEFT_EVENT_BUS_NAME", bad));
            let err = Config::from_vars(vars).expect_err(bad).to_string();
            assert!(err.contains("WEFT_EVENT_BUS_NAME must be an EventBridge bus name"), "{bad}: {err}");
        }
    }

    #[test]
    fn aws_publishing_needs_a_role() {
        let mut vars = base();
        vars.push(("WEFT_SFN_ENABLED", "true"));
        let err = Config::from_vars(vars).expect_err("invalid");
        assert!(err.to_string().contains("WEFT_SFN_ROLE_ARN is required"), "{err}");
    }
}
