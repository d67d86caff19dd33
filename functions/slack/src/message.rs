//! The node's config read into what is posted: the target (a bot token or a webhook URL, from
//! the connection secret's value) and the JSON message. Every bad field is `Config.Invalid`
//! naming it; messages about the connection never quote its value.

use std::net::IpAddr;
use std::time::Duration;

use net_guard::Guard;
use node_contract::NodeError;
use reqwest::Url;
use serde_json::{Map, Value};

/// The longest `timeout_seconds` a node may ask for.
const MAX_TIMEOUT_SECONDS: f64 = 300.0;

/// Where the message goes, decided by the shape of the connection secret's value.
pub(crate) enum Target {
    /// A Slack token (`xoxb-…` bot, `xoxp-…` user): `chat.postMessage` with it as the bearer.
    Token(String),
    /// An incoming-webhook URL (`https://hooks.slack.com/services/…`): the message is posted to it.
    Webhook(Url),
}

impl Target {
    pub(crate) fn parse(connection: &str) -> Result<Self, NodeError> {
        let value = connection.trim();
        if value.starts_with("xoxb-") || value.starts_with("xoxp-") {
            // What goes into a header: refuse here rather than as an opaque builder error.
            if !value.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') {
                return Err(NodeError::config(
                    "connection",
                    "the secret looks like a Slack token but has characters a token never has",
                ));
            }
            return Ok(Self::Token(value.to_owned()));
        }
        match Url::parse(value) {
            Ok(url) if matches!(url.scheme(), "http" | "https") && url.host_str().is_some() => Ok(Self::Webhook(url)),
            _ => Err(NodeError::config(
                "connection",
                "the secret must hold a Slack bot token (`xoxb-…`) or an incoming-webhook URL (`https://hooks.slack.com/services/…`)",
            )),
        }
    }

    /// Plain http to a webhook is refused (the URL is a credential and the message is tenant
    /// data), except to an address the operator allow-listed: a local Slack stand-in in tests.
    /// Runs after the address guard, so a forbidden address is reported as such.
    pub(crate) fn check_scheme(&self, guard: &Guard) -> Result<(), NodeError> {
        let Self::Webhook(url) = self else { return Ok(()) };
        if url.scheme() == "https" {
            return Ok(());
        }
        let host = url.host_str().unwrap_or_default();
        let allow_listed = host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<IpAddr>()
            .is_ok_and(|ip| guard.allow.iter().any(|p| p.contains(ip)));
        if allow_listed {
            return Ok(());
        }
        Err(NodeError::config(
            "connection",
            format!(
                "the webhook URL must be https (plain http only to an address allow-listed in WEFT_HTTP_ALLOW, not {host})"
            ),
        ))
    }
}

/// The message as posted, and how long the whole call may take.
pub(crate) struct Message {
    pub(crate) body: Value,
    pub(crate) timeout: Duration,
}

impl Message {
    /// Reads `channel`, `text`, `blocks`, `thread_ts` and `timeout_seconds`. A `null` field is
    /// absent (a template may resolve to null).
    pub(crate) fn parse(
        config: &Map<String, Value>,
        target: &Target,
        default_timeout: Duration,
    ) -> Result<Self, NodeError> {
        let channel = string(config, "channel")?;
        let text = string(config, "text")?;
        let thread_ts = string(config, "thread_ts")?;
        let blocks = match config.get("blocks") {
            None | Some(Value::Null) => None,
            Some(Value::Array(items)) if items.is_empty() => None,
            Some(Value::Array(items)) => Some(items.clone()),
            Some(_) => return Err(NodeError::config("blocks", "must be an array of Block Kit blocks")),
        };
        if channel.is_none() && matches!(target, Target::Token(_)) {
            return Err(NodeError::config(
                "channel",
                "is required with a bot token: a channel id (`C0123…`) or name (`#general`)",
            ));
        }
        if text.is_none() && blocks.is_none() {
            return Err(NodeError::config("text", "is required unless `blocks` is given (Slack needs one of them)"));
        }
        let timeout = match config.get("timeout_seconds") {
            None | Some(Value::Null) => default_timeout,
            Some(v) => v
                .as_f64()
                .filter(|s| *s > 0.0 && *s <= MAX_TIMEOUT_SECONDS)
                .and_then(|s| Duration::try_from_secs_f64(s).ok())
                .ok_or_else(|| {
                    NodeError::config(
                        "timeout_seconds",
                        format!("must be a number of seconds in (0, {MAX_TIMEOUT_SECONDS}]"),
                    )
                })?,
        };
        let mut body = Map::new();
        // An app's webhook posts to its own channel and ignores `channel`; a legacy one honours it.
        for (key, value) in [("channel", channel), ("text", text), ("thread_ts", thread_ts)] {
            if let Some(v) = value {
                body.insert(key.to_owned(), Value::String(v));
            }
        }
        if let Some(blocks) = blocks {
            body.insert("blocks".to_owned(), Value::Array(blocks));
        }
        Ok(Self { body: Value::Object(body), timeout })
    }
}

fn string(config: &Map<String, Value>, field: &str) -> Result<Option<String>, NodeError> {
    match config.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.is_empty() => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) if field == "thread_ts" => {
            // A number would lose digits: Slack's ts is a string such as "1700000000.000100".
            Err(NodeError::config(field, "must be a string (Slack's message ts, e.g. \"1700000000.000100\")"))
        }
        Some(_) => Err(NodeError::config(field, "must be a string")),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use node_contract::error_names;
    use serde_json::json;

    fn parse(config: Value, target: &Target) -> Result<Message, NodeError> {
        Message::parse(config.as_object().unwrap(), target, Duration::from_secs(10))
    }

    fn field_of(e: NodeError) -> String {
        assert_eq!(e.name, error_names::CONFIG_INVALID, "{e:?}");
        e.message.split(':').next().unwrap().to_owned()
    }

    #[test]
    fn targets_by_shape() {
        assert!(matches!(Target::parse("xoxb-1-2-abc").unwrap(), Target::Token(t) if t == "xoxb-1-2-abc"));
        assert!(matches!(Target::parse(" https://hooks.slack.com/services/T/B/x\n").unwrap(), Target::Webhook(_)));
        for bad in ["hunter2", "ftp://hooks.slack.com/x", "xoxb-bad token", "mailto:a@b"] {
            let e = Target::parse(bad).err().unwrap();
            assert!(!e.message.contains(bad), "{e:?}");
            assert_eq!(field_of(e), "config.connection");
        }
    }

    #[test]
    fn plain_http_webhooks_only_to_allow_listed_addresses() {
        let guard = Guard { allow: net_guard::parse_allow("127.0.0.1").unwrap() };
        let t = |u: &str| Target::parse(u).unwrap();
        assert!(t("http://127.0.0.1:9/services/x").check_scheme(&guard).is_ok());
        assert!(t("https://hooks.slack.com/services/x").check_scheme(&Guard::default()).is_ok());
        for refused in ["http://hooks.slack.com/services/x", "http://localhost:9/x", "http://1.1.1.1/x"] {
            assert_eq!(field_of(t(refused).check_scheme(&guard).err().unwrap()), "config.connection");
        }
        assert!(Target::Token("xoxb-1".into()).check_scheme(&Guard::default()).is_ok());
    }

    #[test]
    fn message_fields() {
        let token = Target::Token("xoxb-1".into());
        let hook = Target::parse("https://hooks.slack.com/services/x").unwrap();
        let m = parse(
            json!({"channel": "#c", "text": "hi", "thread_ts": "1.2", "blocks": [{"type": "divider"}],
            "timeout_seconds": 2.5, "connection": "S"}),
            &token,
        )
        .unwrap();
        assert_eq!(m.body, json!({"channel": "#c", "text": "hi", "thread_ts": "1.2", "blocks": [{"type": "divider"}]}));
        assert_eq!(m.timeout, Duration::from_millis(2500));
        assert_eq!(parse(json!({"text": "hi", "channel": null}), &hook).unwrap().body, json!({"text": "hi"}));
        assert_eq!(parse(json!({"text": "hi"}), &hook).unwrap().timeout, Duration::from_secs(10));

        assert_eq!(field_of(parse(json!({"text": "hi"}), &token).err().unwrap()), "config.channel");
        assert_eq!(field_of(parse(json!({"channel": "#c"}), &token).err().unwrap()), "config.text");
        assert_eq!(field_of(parse(json!({"text": "", "blocks": []}), &hook).err().unwrap()), "config.text");
        assert_eq!(field_of(parse(json!({"text": 5}), &hook).err().unwrap()), "config.text");
        assert_eq!(field_of(parse(json!({"text": "x", "blocks": {}}), &hook).err().unwrap()), "config.blocks");
        assert_eq!(field_of(parse(json!({"text": "x", "thread_ts": 1.5}), &hook).err().unwrap()), "config.thread_ts");
        for t in [json!(0), json!(-1), json!(301), json!("5")] {
            let e = parse(json!({"text": "x", "timeout_seconds": t}), &hook).err().unwrap();
            assert_eq!(field_of(e), "config.timeout_seconds");
        }
    }
}
