//! The `slack` node function: posts one message to Slack, through an incoming webhook or the Web
//! API's `chat.postMessage`.
//!
//! Config (`data` of a `slack` node, templates already resolved):
//! - `connection` (required): the *name* of a tenant secret. Its value decides the mode: a token
//!   (`xoxb-…` bot, or `xoxp-…` user) posts with `chat.postMessage` to
//!   `{WEFT_SLACK_API_URL}/chat.postMessage` (default `https://slack.com/api`) with
//!   `Authorization: Bearer <token>`; an http(s) URL (`https://hooks.slack.com/services/…`) is an
//!   incoming webhook the message is posted to. Any other value is `Config.Invalid`.
//! - `channel`: a channel id or `#name`; required with a token. With a webhook it is passed on
//!   (a legacy webhook honours it, an app's webhook posts to its own channel).
//! - `text`, `blocks` (an array of Block Kit blocks, passed through as is), at least one of them;
//!   `thread_ts` (a string) replies in a thread.
//! - `timeout_seconds` (default 10, at most 300): the whole call, including any wait for a rate
//!   limit.
//!
//! Output: `{"ok": true, "channel": "C…", "ts": "…"}` with a token (Slack's channel id and message
//! ts, to reply in the thread), `{"ok": true}` with a webhook (Slack's webhook answers just `ok`;
//! any 2xx counts, for Slack-compatible receivers).
//!
//! Errors (stable names, `node_contract::error_names`):
//! - `Slack.Api`: Slack refused the message: `{"ok": false, "error": "channel_not_found"}`
//!   (with HTTP 200, as the Web API answers errors), or a webhook's plain-text refusal such as
//!   `no_service` (404) or `invalid_payload` (400). The message carries Slack's error string.
//!   Never retried: the same message would be refused again.
//! - `Slack.RateLimited`: 429. The function first waits out `Retry-After` (at most
//!   `WEFT_SLACK_MAX_RETRY_AFTER_SECONDS`, default 30, and never past the node's timeout), then
//!   fails saying how long it waited, so the default Retry that follows starts after Slack's
//!   window instead of spending its attempts inside it.
//! - `Slack.Connect`: 5xx, connection failures and timeouts. Retried by default.
//! - `Slack.ForbiddenAddress`: the webhook's (or the API URL's) host is a loopback, private,
//!   link-local or metadata address not allow-listed in `WEFT_HTTP_ALLOW`.
//! - `Config.Invalid` naming the field; `Secret.NotFound` / `Secret.Unavailable` from the lookup.
//!
//! **Address guard.** Every connection goes through `net-guard`, as in the `http` function: host
//! names are checked by the client's DNS resolver on the addresses they resolve to (and the
//! connection uses exactly those), IP literals before connecting; the client ignores system
//! proxies and follows no redirect (a 3xx is `Slack.Api`). The operator's API URL is guarded
//! too, so even a misconfigured `WEFT_SLACK_API_URL` cannot reach the metadata service.
//! A webhook must be https: plain http only to an IP address allow-listed in `WEFT_HTTP_ALLOW`
//! (a local Slack stand-in), since the URL is a credential and the message tenant data. The
//! webhook's host is not restricted to `hooks.slack.com`, so Slack-compatible receivers work;
//! the guard is what keeps it off internal addresses.
//!
//! **Secrets.** The token or webhook URL is read per call for the tenant owning the execution
//! (`tenant_secrets::resolve_connection`) and scrubbed (`***`) from the output and every error
//! message: the value itself, and for a webhook also its path and the path's last segment (the
//! part that is the credential), which a server may echo without the rest. Errors name the
//! webhook by its host only, and transport errors are taken without their URL.

mod message;
mod response;
mod settings;

use std::sync::Arc;
use std::time::Duration;

use node_contract::{NodeError, NodeEvent, NodeFunction, error_names};
use reqwest::{StatusCode, Url};
use serde_json::Value;
use tenant_secrets::{Connected, NoSecrets, Scrubber, SecretResolver};
use tokio::time::Instant;

use message::{Message, Target};
pub use settings::{DEFAULT_API_URL, Settings, SettingsError};

/// The `slack` function's handler; holds one connection-pooling client for all invocations.
#[derive(Clone)]
pub struct SlackFunction {
    client: reqwest::Client,
    settings: Arc<Settings>,
    secrets: Arc<dyn SecretResolver>,
}

impl std::fmt::Debug for SlackFunction {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SlackFunction").field("settings", &self.settings).finish_non_exhaustive()
    }
}

impl SlackFunction {
    pub fn new(settings: Settings) -> Result<Self, SettingsError> {
        let guard = Arc::new(settings.guard.clone());
        let client = net_guard::client_builder(guard)
            .user_agent(concat!("weft-slack/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| SettingsError { name: "client", problem: e.to_string() })?;
        Ok(Self { client, settings: Arc::new(settings), secrets: Arc::new(NoSecrets) })
    }

    /// The settings from the environment, and no secret store (see [`Self::with_secrets`]).
    pub fn from_env() -> Result<Self, SettingsError> {
        Self::new(Settings::from_env()?)
    }

    /// Resolves the connection secret (and `{{ secrets.NAME }}`) through `resolver`.
    pub fn with_secrets(mut self, resolver: Arc<dyn SecretResolver>) -> Self {
        self.secrets = resolver;
        self
    }

    pub async fn run(&self, event: NodeEvent) -> Result<Value, NodeError> {
        let Connected { config, connection, scrubber } =
            tenant_secrets::resolve_connection(&*self.secrets, &event, "connection").await?;
        let outcome = self.post(&config, &connection).await;
        connection_scrubber(&connection).result(scrubber.result(outcome))
    }

    async fn post(&self, config: &Value, connection: &str) -> Result<Value, NodeError> {
        let Value::Object(config) = config else {
            return Err(NodeError::new(error_names::CONFIG_INVALID, "config: expected an object"));
        };
        let target = Target::parse(connection)?;
        let message = Message::parse(config, &target, self.settings.default_timeout)?;
        let (url, what) = match &target {
            Target::Token(_) => {
                let url = self.settings.post_message_url().map_err(|e| {
                    NodeError::new(error_names::SLACK_CONNECT, format!("WEFT_SLACK_API_URL is unusable: {e}"))
                })?;
                let what = format!("chat.postMessage at {}", url.host_str().unwrap_or_default());
                (url, what)
            }
            Target::Webhook(url) => (url.clone(), format!("the webhook at {}", url.host_str().unwrap_or_default())),
        };
        // IP literals never reach the guarded resolver.
        let host = url.host_str().unwrap_or_default();
        self.settings.guard.check_ip_host(host).map_err(|_| {
            NodeError::new(
                error_names::SLACK_FORBIDDEN_ADDRESS,
                format!(
                    "{what}: {host} is a loopback, private, link-local or metadata address; allow-list it with WEFT_HTTP_ALLOW if intended"
                ),
            )
        })?;
        target.check_scheme(&self.settings.guard)?;

        let deadline = Instant::now() + message.timeout;
        let timed_out = || {
            NodeError::new(
                error_names::SLACK_CONNECT,
                format!("{what}: no answer within {} s", seconds(message.timeout)),
            )
        };
        let body = serde_json::to_vec(&message.body).map_err(|e| {
            NodeError::new(error_names::CONFIG_INVALID, format!("config: the message is not JSON: {e}"))
        })?;
        let mut request = self
            .client
            .post(url.clone())
            .header(reqwest::header::CONTENT_TYPE, "application/json; charset=utf-8")
            .body(body);
        if let Target::Token(token) = &target {
            request = request.bearer_auth(token);
        }
        let response = match tokio::time::timeout_at(deadline, request.send()).await {
            Err(_) => return Err(timed_out()),
            Ok(Err(e)) => return Err(response::transport_error(e, &what)),
            Ok(Ok(r)) => r,
        };
        let status = response.status();
        if status == StatusCode::TOO_MANY_REQUESTS {
            let asked = response::retry_after(response.headers());
            drop(response);
            return Err(self.wait_out(asked, deadline, &what).await);
        }
        let bytes = match tokio::time::timeout_at(deadline, response::read_capped(response)).await {
            Err(_) => return Err(timed_out()),
            Ok(Err(e)) => return Err(response::transport_error(e, &what)),
            Ok(Ok(b)) => b,
        };
        if status.is_server_error() {
            return Err(response::server_error(&what, status, &bytes));
        }
        match &target {
            Target::Token(_) => response::api_outcome(status, &bytes),
            Target::Webhook(url) => response::webhook_outcome(status, url.host_str().unwrap_or_default(), &bytes),
        }
    }

    /// Sleeps out a 429's `Retry-After` (capped by the setting and the node's deadline) and
    /// returns the error saying how long it waited.
    async fn wait_out(&self, asked: Duration, deadline: Instant, what: &str) -> NodeError {
        let left = deadline.saturating_duration_since(Instant::now());
        let (wait, cap) = if asked > self.settings.max_retry_after.min(left) {
            if self.settings.max_retry_after <= left {
                (self.settings.max_retry_after, " (capped by WEFT_SLACK_MAX_RETRY_AFTER_SECONDS)")
            } else {
                (left, " (capped by the node's timeout)")
            }
        } else {
            (asked, "")
        };
        tokio::time::sleep(wait).await;
        NodeError::new(
            error_names::SLACK_RATE_LIMITED,
            format!(
                "{what} answered 429 (rate limited, Retry-After {} s); waited {} s{cap} before failing, so a retry now respects Slack's window",
                seconds(asked),
                seconds(wait)
            ),
        )
    }
}

fn seconds(d: Duration) -> String {
    let s = d.as_secs_f64();
    if s.fract() == 0.0 { format!("{s:.0}") } else { format!("{s:.1}") }
}

/// What the connection's own scrubber misses: the value as used (trimmed of the whitespace a
/// pasted secret often ends with), and a webhook URL's path and its last segment (the secret
/// part of `/services/T…/B…/<secret>`), each a credential on its own that a server may echo
/// without the scheme and host.
fn connection_scrubber(connection: &str) -> Scrubber {
    let value = connection.trim();
    let mut needles = vec![value.to_owned()];
    if let Ok(url) = Url::parse(value)
        && matches!(url.scheme(), "http" | "https")
    {
        let path = url.path();
        let last = path.trim_end_matches('/').rsplit('/').next().unwrap_or_default();
        needles.push(url.as_str().to_owned());
        if path.len() > 1 {
            needles.extend([path.to_owned(), path.trim_start_matches('/').to_owned()]);
        }
        // Short segments are words, not secrets; scrubbing them would mangle unrelated text.
        if last.len() >= 8 {
            needles.push(last.to_owned());
        }
        needles.extend(url.query().map(str::to_owned));
    }
    Scrubber::new(needles.iter().map(String::as_str))
}

impl NodeFunction for SlackFunction {
    fn handle(&self, event: NodeEvent) -> impl Future<Output = Result<Value, NodeError>> + Send {
        self.run(event)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn webhook_paths_are_scrubbed_alone() {
        let s = connection_scrubber("https://hooks.slack.com/services/T0001/B0002/XXXXsecretYYYY\n");
        assert_eq!(s.text("got /services/T0001/B0002/XXXXsecretYYYY"), "got ***");
        assert_eq!(s.text("token XXXXsecretYYYY"), "token ***");
        assert_eq!(s.text("services T0001"), "services T0001");
        assert_eq!(connection_scrubber(" xoxb-1-2-3\n").text("Bearer xoxb-1-2-3"), "Bearer ***");
    }

    #[test]
    fn seconds_read_naturally() {
        assert_eq!(seconds(Duration::from_secs(30)), "30");
        assert_eq!(seconds(Duration::from_millis(1500)), "1.5");
    }
}
