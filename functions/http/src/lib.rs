//! The `http` node function: one HTTP request, its response as `{status, headers, body}`.
//!
//! Config (`data` of an `http` node, templates already resolved): `method` (default `GET`), `url`,
//! `headers` {name: value}, `query` {name: value | [values]}, `body` (a string is sent as text, any
//! other JSON value as JSON), `timeout_seconds` (default 30, for the whole call including
//! redirects and the body), `follow_redirects` (default true), `max_redirects` (default 5),
//! `max_response_bytes` (default and ceiling from the settings), `response_format`
//! (`auto` | `json` | `text`; `auto` parses the body as JSON when the content type says JSON and
//! it parses, else returns text), `fail_on_status` (default true: 4xx and 5xx fail as
//! `Http.Status4xx` / `Http.Status5xx`).
//!
//! **SSRF guard.** Requests to loopback, private, link-local, carrier-grade NAT, multicast,
//! reserved and cloud metadata addresses are refused (`Http.ForbiddenAddress`) unless the address
//! is in the allow-list (`WEFT_HTTP_ALLOW`, e.g. `127.0.0.1,10.1.0.0/16`). The check runs on the
//! addresses a host name *resolves to* (inside the client's resolver, so the connection uses
//! exactly the addresses that were checked: no DNS rebinding window), on IP-literal hosts before
//! any connection, and again on every redirect hop, which this function follows itself. System
//! proxies are ignored, since a proxy would resolve names out of the guard's sight.
//!
//! **Secrets.** `{{ secrets.NAME }}` in any string of the config is resolved at call time by the
//! function's [`SecretResolver`] for the tenant owning the execution (`tenant-secrets`; the
//! Lambda reads them from Postgres, `weft serve` passes its own resolver, `weft run` a file),
//! never from the process environment. Every resolved value is scrubbed (`***`) from the
//! function's error message and output, so a URL in "connection refused", a header echoed by the
//! server or a 4xx body quoting the token never enters execution state, history or logs.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use node_contract::{NodeError, NodeEvent, NodeFunction, error_names, kind_of};
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use reqwest::{Method, StatusCode, Url};
use serde_json::{Map, Value};
use tenant_secrets::{NoSecrets, Resolved, Scrubber, SecretResolver};

/// An address or prefix (`10.0.0.0/8`, `::1`) the SSRF guard lets through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Prefix {
    addr: IpAddr,
    len: u8,
}

impl Prefix {
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.addr, canonical(ip)) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = u32::MAX.checked_shl(32 - u32::from(self.len)).unwrap_or(0);
                u32::from(net) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = u128::MAX.checked_shl(128 - u32::from(self.len)).unwrap_or(0);
                u128::from(net) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
    }
}

impl std::str::FromStr for Prefix {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (addr, len) = match s.trim().split_once('/') {
            Some((a, l)) => (a, Some(l)),
            None => (s.trim(), None),
        };
        let addr: IpAddr = addr.parse().map_err(|_| format!("`{s}` is not an IP address or prefix"))?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let len = match len {
            None => max,
            Some(l) => {
                l.parse::<u8>().ok().filter(|l| *l <= max).ok_or_else(|| format!("`{s}` has a bad prefix length"))?
            }
        };
        Ok(Self { addr: canonical(addr), len })
    }
}

/// IPv4-mapped IPv6 addresses (`::ffff:127.0.0.1`) are checked as the IPv4 address they are.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

/// Whether the SSRF guard refuses `ip` when it is not allow-listed.
pub fn is_forbidden(ip: IpAddr) -> bool {
    match canonical(ip) {
        IpAddr::V4(v4) => forbidden_v4(v4),
        IpAddr::V6(v6) => forbidden_v6(v6),
    }
}

fn forbidden_v4(ip: Ipv4Addr) -> bool {
    let [a, b, c, _] = ip.octets();
    ip.is_unspecified()
        || a == 0                                    // "this network"
        || ip.is_loopback()                          // 127.0.0.0/8
        || ip.is_private()                           // 10/8, 172.16/12, 192.168/16
        || ip.is_link_local()                        // 169.254/16, incl. 169.254.169.254 metadata
        || (a == 100 && (64..128).contains(&b))      // 100.64/10 carrier-grade NAT (Alibaba metadata 100.100.100.200)
        || (a == 192 && b == 0 && c == 0)            // 192.0.0/24 IETF protocol assignments
        || (a == 198 && (b == 18 || b == 19))        // 198.18/15 benchmarking
        || ip.is_multicast()                         // 224/4
        || a >= 240                                  // 240/4 reserved and broadcast
        || ip == Ipv4Addr::new(168, 63, 129, 16) // Azure wire server / metadata
}

fn forbidden_v6(ip: Ipv6Addr) -> bool {
    let seg = ip.segments();
    // Addresses that embed an IPv4 address are judged by it: NAT64 64:ff9b::/96, 6to4 2002::/16.
    let embedded = |hi: u16, lo: u16| Ipv4Addr::from((u32::from(hi) << 16) | u32::from(lo));
    ip.is_unspecified()
        || ip.is_loopback()
        || (seg[0] & 0xfe00) == 0xfc00                              // fc00::/7 unique local, incl. fd00:ec2::254 metadata
        || (seg[0] & 0xffc0) == 0xfe80                              // fe80::/10 link-local
        || (seg[0] & 0xffc0) == 0xfec0                              // fec0::/10 deprecated site-local
        || ip.is_multicast()
        || (seg[0] == 0x64 && seg[1] == 0xff9b && seg[2..6] == [0; 4] && forbidden_v4(embedded(seg[6], seg[7])))
        || (seg[0] == 0x2002 && forbidden_v4(embedded(seg[1], seg[2])))
        || (seg[..6] == [0; 6] && forbidden_v4(embedded(seg[6], seg[7]))) // deprecated IPv4-compatible ::a.b.c.d
}

/// The guard: forbidden addresses minus the allow-list.
#[derive(Debug, Clone, Default)]
pub struct Guard {
    pub allow: Vec<Prefix>,
}

impl Guard {
    pub fn permits(&self, ip: IpAddr) -> bool {
        !is_forbidden(ip) || self.allow.iter().any(|p| p.contains(ip))
    }
}

/// The resolver reqwest uses: resolves with the system resolver, then keeps only permitted addresses.
struct GuardedResolver {
    guard: Arc<Guard>,
}

/// The error the resolver fails with when every address of a name is forbidden; found again in
/// reqwest's error chain to report `Http.ForbiddenAddress`.
#[derive(Debug, thiserror::Error)]
#[error("`{host}` resolves only to forbidden addresses ({addrs}); allow-list them with WEFT_HTTP_ALLOW if intended")]
struct ForbiddenHost {
    host: String,
    addrs: String,
}

impl reqwest::dns::Resolve for GuardedResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let guard = self.guard.clone();
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let all: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let permitted: Vec<SocketAddr> = all.iter().copied().filter(|a| guard.permits(a.ip())).collect();
            if permitted.is_empty() && !all.is_empty() {
                let addrs = all.iter().map(|a| a.ip().to_string()).collect::<Vec<_>>().join(", ");
                return Err(Box::new(ForbiddenHost { host, addrs }) as Box<dyn std::error::Error + Send + Sync>);
            }
            Ok(Box::new(permitted.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

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
        let mut settings = Self::default();
        if let Ok(list) = std::env::var("WEFT_HTTP_ALLOW") {
            settings.guard.allow =
                parse_allow(&list).map_err(|problem| SettingsError { name: "WEFT_HTTP_ALLOW", problem })?;
        }
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

pub fn parse_allow(list: &str) -> Result<Vec<Prefix>, String> {
    list.split(',').map(str::trim).filter(|s| !s.is_empty()).map(str::parse).collect()
}

/// The `http` function's handler; holds one connection-pooling client for all invocations.
#[derive(Clone)]
pub struct HttpFunction {
    client: reqwest::Client,
    settings: Arc<Settings>,
    secrets: Arc<dyn SecretResolver>,
}

impl HttpFunction {
    pub fn new(settings: Settings) -> Result<Self, SettingsError> {
        let guard = Arc::new(settings.guard.clone());
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .dns_resolver(Arc::new(GuardedResolver { guard }))
            .user_agent(concat!("weft-http/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| SettingsError { name: "client", problem: e.to_string() })?;
        Ok(Self { client, settings: Arc::new(settings), secrets: Arc::new(NoSecrets) })
    }

    /// The http settings from the environment, and no secret store (see [`Self::with_secrets`]).
    pub fn from_env() -> Result<Self, SettingsError> {
        Self::new(Settings::from_env()?)
    }

    /// Resolves `{{ secrets.NAME }}` through `resolver` (the default, [`NoSecrets`], has none).
    pub fn with_secrets(mut self, resolver: Arc<dyn SecretResolver>) -> Self {
        self.secrets = resolver;
        self
    }

    pub async fn run(&self, event: NodeEvent) -> Result<Value, NodeError> {
        let Resolved { config, scrubber } = tenant_secrets::resolve_config(&*self.secrets, &event).await?;
        let event = NodeEvent { config, ..event };
        let outcome = match event.config_object().and_then(|c| Request::parse(c, &self.settings)) {
            Err(e) => Err(e),
            Ok(request) => {
                let timeout = request.timeout;
                match tokio::time::timeout(timeout, self.send(request, &scrubber)).await {
                    Ok(outcome) => outcome,
                    Err(_) => Err(NodeError::new(
                        error_names::HTTP_TIMEOUT,
                        format!("no complete response within {} ms", timeout.as_millis()),
                    )),
                }
            }
        };
        scrubber.result(outcome)
    }

    async fn send(&self, request: Request, scrubber: &Scrubber) -> Result<Value, NodeError> {
        let Request {
            mut method,
            mut url,
            headers,
            mut body,
            follow_redirects,
            max_redirects,
            max_bytes,
            format,
            fail_on_status,
            ..
        } = request;
        let mut headers = headers;
        let mut hops = 0u32;
        let response = loop {
            self.check_literal(&url)?;
            let mut builder = self.client.request(method.clone(), url.clone()).headers(headers.clone());
            if let Some(b) = &body {
                builder = builder.body(b.clone());
            }
            let response = builder.send().await.map_err(|e| transport_error(&e, &method, &url))?;
            let location = response.headers().get(reqwest::header::LOCATION).and_then(|l| l.to_str().ok());
            match (follow_redirects && response.status().is_redirection(), location) {
                (true, Some(location)) => {
                    hops += 1;
                    if hops > max_redirects {
                        return Err(NodeError::new(
                            error_names::HTTP_TOO_MANY_REDIRECTS,
                            format!("{method} {url}: more than {max_redirects} redirects"),
                        ));
                    }
                    let next = url.join(location).map_err(|e| {
                        NodeError::new(
                            error_names::HTTP_CONNECT,
                            format!("{url} redirected to a bad location `{location}`: {e}"),
                        )
                    })?;
                    if !matches!(next.scheme(), "http" | "https") {
                        return Err(NodeError::new(
                            error_names::HTTP_CONNECT,
                            format!("{url} redirected to a non-HTTP URL {next}"),
                        ));
                    }
                    // Browsers' rules: 303, and 301/302 after POST, become a GET without body.
                    let status = response.status();
                    if status == StatusCode::SEE_OTHER
                        || (matches!(status, StatusCode::MOVED_PERMANENTLY | StatusCode::FOUND)
                            && method == Method::POST)
                    {
                        if method != Method::HEAD {
                            method = Method::GET;
                        }
                        body = None;
                        headers.remove(reqwest::header::CONTENT_TYPE);
                        headers.remove(reqwest::header::CONTENT_LENGTH);
                    }
                    // Credentials never follow a redirect to another origin.
                    if next.origin() != url.origin() {
                        headers.remove(reqwest::header::AUTHORIZATION);
                        headers.remove(reqwest::header::COOKIE);
                        headers.remove(reqwest::header::PROXY_AUTHORIZATION);
                    }
                    url = next;
                }
                _ => break response,
            }
        };
        let status = response.status();
        let response_headers = headers_json(response.headers());
        let content_type = response
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_ascii_lowercase();
        let bytes = read_capped(response, max_bytes, &method, &url).await?;
        let body = decode_body(&bytes, &content_type, format, &method, &url)?;
        if fail_on_status && (status.is_client_error() || status.is_server_error()) {
            let name =
                if status.is_server_error() { error_names::HTTP_STATUS_5XX } else { error_names::HTTP_STATUS_4XX };
            // Scrubbed before it is cut, so a secret at the cut cannot survive in part.
            let text = scrubber.text(&String::from_utf8_lossy(&bytes));
            let snippet: String = text.chars().take(300).collect();
            return Err(NodeError::new(name, format!("{method} {url} returned {status}: {snippet}")));
        }
        Ok(serde_json::json!({"status": status.as_u16(), "headers": response_headers, "body": body}))
    }

    /// IP-literal hosts never reach the resolver, so they are checked here before connecting.
    fn check_literal(&self, url: &Url) -> Result<(), NodeError> {
        let host = url.host_str().unwrap_or_default();
        let Ok(ip) = host.trim_start_matches('[').trim_end_matches(']').parse::<IpAddr>() else {
            return Ok(());
        };
        if self.settings.guard.permits(ip) {
            Ok(())
        } else {
            Err(NodeError::new(
                error_names::HTTP_FORBIDDEN_ADDRESS,
                format!(
                    "{url}: {ip} is a loopback, private, link-local or metadata address; allow-list it with WEFT_HTTP_ALLOW if intended"
                ),
            ))
        }
    }
}

impl NodeFunction for HttpFunction {
    fn handle(&self, event: NodeEvent) -> impl Future<Output = Result<Value, NodeError>> + Send {
        self.run(event)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    Auto,
    Json,
    Text,
}

struct Request {
    method: Method,
    url: Url,
    headers: HeaderMap,
    body: Option<Vec<u8>>,
    timeout: Duration,
    follow_redirects: bool,
    max_redirects: u32,
    max_bytes: usize,
    format: Format,
    fail_on_status: bool,
}

impl Request {
    fn parse(config: &Map<String, Value>, settings: &Settings) -> Result<Self, NodeError> {
        let get = |k: &str| config.get(k).filter(|v| !v.is_null());
        let method = match get("method") {
            None => Method::GET,
            Some(Value::String(m)) => Method::from_bytes(m.trim().to_ascii_uppercase().as_bytes())
                .map_err(|_| NodeError::config("method", format!("`{m}` is not an HTTP method")))?,
            Some(other) => {
                return Err(NodeError::config("method", format!("expected a string, got {}", kind_of(other))));
            }
        };
        let url = match get("url") {
            Some(Value::String(u)) => Url::parse(u.trim())
                .map_err(|e| NodeError::config("url", format!("`{u}` is not an absolute URL: {e}")))?,
            Some(other) => {
                return Err(NodeError::config("url", format!("expected a string, got {}", kind_of(other))));
            }
            None => return Err(NodeError::config("url", "missing")),
        };
        if !matches!(url.scheme(), "http" | "https") {
            return Err(NodeError::config("url", format!("`{url}`: only http and https are supported")));
        }
        let mut url = url;
        match get("query") {
            None => {}
            Some(Value::Object(query)) => {
                let mut pairs = url.query_pairs_mut();
                for (k, v) in query {
                    let values = match v {
                        Value::Array(vs) => vs.iter().collect(),
                        one => vec![one],
                    };
                    for v in values {
                        match scalar_text(v) {
                            Some(text) => {
                                pairs.append_pair(k, &text);
                            }
                            None if v.is_null() => {}
                            None => {
                                return Err(NodeError::config(
                                    &format!("query.{k}"),
                                    "expected a string, number or boolean",
                                ));
                            }
                        }
                    }
                }
            }
            Some(other) => {
                return Err(NodeError::config("query", format!("expected an object, got {}", kind_of(other))));
            }
        }
        if url.query() == Some("") {
            url.set_query(None);
        }
        let mut headers = HeaderMap::new();
        match get("headers") {
            None => {}
            Some(Value::Object(hs)) => {
                for (k, v) in hs {
                    let Some(text) = scalar_text(v) else {
                        if v.is_null() {
                            continue;
                        }
                        return Err(NodeError::config(&format!("headers.{k}"), "expected a string, number or boolean"));
                    };
                    let name = HeaderName::from_bytes(k.as_bytes())
                        .map_err(|_| NodeError::config(&format!("headers.{k}"), "not a valid header name"))?;
                    let value = HeaderValue::from_str(&text)
                        .map_err(|_| NodeError::config(&format!("headers.{k}"), "not a valid header value"))?;
                    headers.append(name, value);
                }
            }
            Some(other) => {
                return Err(NodeError::config("headers", format!("expected an object, got {}", kind_of(other))));
            }
        }
        let body = match get("body") {
            None => None,
            Some(Value::String(text)) => {
                headers
                    .entry(reqwest::header::CONTENT_TYPE)
                    .or_insert(HeaderValue::from_static("text/plain; charset=utf-8"));
                Some(text.clone().into_bytes())
            }
            Some(json) => {
                headers.entry(reqwest::header::CONTENT_TYPE).or_insert(HeaderValue::from_static("application/json"));
                Some(serde_json::to_vec(json).map_err(|e| NodeError::config("body", e))?)
            }
        };
        let timeout = match get("timeout_seconds") {
            None => settings.default_timeout,
            Some(v) => match v.as_f64() {
                Some(s) if s > 0.0 && s <= 900.0 => Duration::from_secs_f64(s),
                _ => {
                    return Err(NodeError::config("timeout_seconds", "must be a number of seconds in (0, 900]"));
                }
            },
        };
        let flag = |k: &str, default: bool| match get(k) {
            None => Ok(default),
            Some(Value::Bool(b)) => Ok(*b),
            Some(other) => Err(NodeError::config(k, format!("expected a boolean, got {}", kind_of(other)))),
        };
        let count = |k: &str, default: u64, max: u64| match get(k) {
            None => Ok(default),
            Some(v) => v
                .as_u64()
                .filter(|n| *n <= max)
                .ok_or_else(|| NodeError::config(k, format!("must be an integer from 0 to {max}"))),
        };
        let format = match get("response_format").map(|v| v.as_str()) {
            None | Some(Some("auto")) => Format::Auto,
            Some(Some("json")) => Format::Json,
            Some(Some("text")) => Format::Text,
            Some(_) => {
                return Err(NodeError::config("response_format", "must be `auto`, `json` or `text`"));
            }
        };
        let max_bytes = settings.max_response_bytes as u64;
        Ok(Self {
            method,
            url,
            headers,
            body,
            timeout,
            follow_redirects: flag("follow_redirects", true)?,
            max_redirects: count("max_redirects", u64::from(settings.default_max_redirects), 50)? as u32,
            max_bytes: count("max_response_bytes", max_bytes, max_bytes)? as usize,
            format,
            fail_on_status: flag("fail_on_status", true)?,
        })
    }
}

fn scalar_text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// Response headers as a JSON object with lower-case names; repeated headers are joined with `, `
/// (as RFC 9110 allows), except `set-cookie`, which becomes an array.
fn headers_json(headers: &HeaderMap) -> Value {
    let mut out = Map::new();
    for name in headers.keys() {
        let values: Vec<String> =
            headers.get_all(name).iter().map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned()).collect();
        let value = if name == reqwest::header::SET_COOKIE && values.len() > 1 {
            Value::Array(values.into_iter().map(Value::String).collect())
        } else {
            Value::String(values.join(", "))
        };
        out.insert(name.as_str().to_owned(), value);
    }
    Value::Object(out)
}

async fn read_capped(
    mut response: reqwest::Response,
    max: usize,
    method: &Method,
    url: &Url,
) -> Result<Vec<u8>, NodeError> {
    let too_large = || {
        NodeError::new(
            error_names::HTTP_BODY_TOO_LARGE,
            format!("{method} {url}: the response body is larger than {max} bytes"),
        )
    };
    if response.content_length().is_some_and(|n| n > max as u64) {
        return Err(too_large());
    }
    let mut bytes = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(|e| transport_error(&e, method, url))? {
        if bytes.len() + chunk.len() > max {
            return Err(too_large());
        }
        bytes.extend_from_slice(&chunk);
    }
    Ok(bytes)
}

fn decode_body(
    bytes: &[u8],
    content_type: &str,
    format: Format,
    method: &Method,
    url: &Url,
) -> Result<Value, NodeError> {
    let text = || Value::String(String::from_utf8_lossy(bytes).into_owned());
    match format {
        Format::Text => Ok(text()),
        Format::Json if bytes.iter().all(u8::is_ascii_whitespace) => Ok(Value::Null),
        Format::Json => serde_json::from_slice(bytes).map_err(|e| {
            NodeError::new(
                error_names::HTTP_INVALID_RESPONSE,
                format!("{method} {url}: the response body is not JSON: {e}"),
            )
        }),
        Format::Auto if content_type.contains("json") => Ok(serde_json::from_slice(bytes).unwrap_or_else(|_| text())),
        Format::Auto => Ok(text()),
    }
}

/// Names a transport failure: forbidden address (from the resolver), timeout, or connection.
fn transport_error(e: &reqwest::Error, method: &Method, url: &Url) -> NodeError {
    let mut chain = String::new();
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(e);
    let mut forbidden = false;
    while let Some(err) = source {
        if err.downcast_ref::<ForbiddenHost>().is_some() {
            forbidden = true;
        }
        if !chain.is_empty() {
            chain.push_str(": ");
        }
        chain.push_str(&err.to_string());
        source = err.source();
    }
    let name = if forbidden {
        error_names::HTTP_FORBIDDEN_ADDRESS
    } else if e.is_timeout() {
        error_names::HTTP_TIMEOUT
    } else {
        error_names::HTTP_CONNECT
    };
    NodeError::new(name, format!("{method} {url}: {chain}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("an address")
    }

    #[test]
    fn forbidden_ranges() {
        for a in [
            "127.0.0.1",
            "10.0.0.1",
            "172.16.5.4",
            "192.168.1.1",
            "169.254.169.254",
            "0.0.0.0",
            "100.100.100.200",
            "168.63.129.16",
            "255.255.255.255",
            "::1",
            "::",
            "fd00:ec2::254",
            "fe80::1",
            "::ffff:127.0.0.1",
            "::ffff:169.254.169.254",
            "64:ff9b::a9fe:a9fe",
            "2002:7f00:1::",
            "::7f00:1",
        ] {
            assert!(is_forbidden(ip(a)), "{a} should be forbidden");
        }
        for a in ["93.184.215.14", "1.1.1.1", "2606:4700:4700::1111", "172.32.0.1", "100.128.0.1"] {
            assert!(!is_forbidden(ip(a)), "{a} should be allowed");
        }
    }

    #[test]
    fn allow_list_prefixes() {
        let g = Guard { allow: parse_allow("127.0.0.1, 10.1.0.0/16,::1").expect("valid") };
        assert!(g.permits(ip("127.0.0.1")));
        assert!(g.permits(ip("::ffff:127.0.0.1")));
        assert!(!g.permits(ip("127.0.0.2")));
        assert!(g.permits(ip("10.1.200.3")));
        assert!(!g.permits(ip("10.2.0.1")));
        assert!(g.permits(ip("::1")));
        assert!(parse_allow("10.0.0.0/33").is_err());
        assert!(parse_allow("localhost").is_err());
    }
}
