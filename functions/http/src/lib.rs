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
//! **SSRF guard** (the `net-guard` crate, applied in `src/ssrf.rs`). Requests to loopback, private, link-local, carrier-grade NAT,
//! multicast, reserved and cloud metadata addresses are refused (`Http.ForbiddenAddress`) unless
//! the address is in the allow-list (`WEFT_HTTP_ALLOW`), checked on the addresses a name resolves
//! to, on IP literals and on every redirect hop, which this function follows itself.
//!
//! **Secrets.** `{{ secrets.NAME }}` in any string of the config is resolved at call time by the
//! function's [`SecretResolver`] for the tenant owning the execution (`tenant-secrets`; the
//! Lambda reads them from Postgres, `weft serve` passes its own resolver, `weft run` a file),
//! never from the process environment. Every resolved value is scrubbed (`***`) from the
//! function's error message and output, so a URL in "connection refused", a header echoed by the
//! server or a 4xx body quoting the token never enters execution state, history or logs.

mod request;
mod response;
mod settings;
mod ssrf;

use std::sync::Arc;

use node_contract::{NodeError, NodeEvent, NodeFunction, error_names};
use reqwest::{Method, StatusCode};
use serde_json::Value;
use tenant_secrets::{NoSecrets, Resolved, Scrubber, SecretResolver};

pub use net_guard::{Guard, Prefix, is_forbidden, parse_allow};
use request::Request;
use response::{decode_body, headers_json, read_capped, transport_error};
pub use settings::{Settings, SettingsError};

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
        let client = net_guard::client_builder(guard)
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
            ssrf::check_literal(&self.settings.guard, &url)?;
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
}

impl NodeFunction for HttpFunction {
    fn handle(&self, event: NodeEvent) -> impl Future<Output = Result<Value, NodeError>> + Send {
        self.run(event)
    }
}
