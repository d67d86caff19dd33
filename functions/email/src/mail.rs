//! The node's config → a lettre [`Message`], validated before any connection is opened.

use std::time::Duration;

use lettre::Message;
use lettre::message::header::ContentType;
use lettre::message::{Mailbox, MultiPart, SinglePart};
use node_contract::{NodeError, kind_of};
use serde_json::{Map, Value};

/// Default of `timeout_seconds`.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
/// Ceiling of `timeout_seconds`: a Lambda runs 15 minutes at most.
pub const MAX_TIMEOUT_SECONDS: f64 = 900.0;
/// Recipients (to + cc + bcc) per message; providers refuse more than about this many anyway,
/// and a graph should not turn one node into a mass mailer.
pub const MAX_RECIPIENTS: usize = 100;

/// A message ready to send, and what the function reports about it.
pub struct Mail {
    pub message: Message,
    pub message_id: String,
    /// Every envelope recipient (to, cc, bcc), in that order.
    pub recipients: Vec<String>,
    pub timeout: Duration,
}

impl Mail {
    /// Validates `config` and builds the message. Every problem is `Config.Invalid` naming the
    /// field (and the offending address); nothing here touches the network.
    pub fn parse(config: &Map<String, Value>) -> Result<Self, NodeError> {
        let from = mailbox("from", required_str(config, "from")?)?;
        let to = mailboxes(config, "to")?;
        let cc = mailboxes(config, "cc")?;
        let bcc = mailboxes(config, "bcc")?;
        let reply_to = match config.get("reply_to") {
            None | Some(Value::Null) => Vec::new(),
            Some(_) => mailboxes(config, "reply_to")?,
        };
        let count = to.len() + cc.len() + bcc.len();
        if count == 0 {
            return Err(NodeError::config("to", "at least one recipient is required (in `to`, `cc` or `bcc`)"));
        }
        if count > MAX_RECIPIENTS {
            return Err(NodeError::config("to", format!("{count} recipients: at most {MAX_RECIPIENTS} per message")));
        }
        let subject = match config.get("subject") {
            None | Some(Value::Null) => String::new(),
            Some(Value::String(s)) => {
                no_line_breaks("subject", s)?;
                s.clone()
            }
            Some(other) => {
                return Err(NodeError::config("subject", format!("must be a string, got {}", kind_of(other))));
            }
        };
        let text = optional_str(config, "body")?;
        let html = optional_str(config, "html")?;
        let timeout = timeout(config)?;

        // Message-ID: a fresh id at the sender's domain (RFC 5322 3.6.4 wants it globally unique;
        // the domain part says who minted it).
        let message_id = format!("<{}@{}>", uuid::Uuid::new_v4(), from.email.domain());
        let mut builder = Message::builder().from(from).subject(subject).message_id(Some(message_id.clone()));
        let mut recipients = Vec::with_capacity(count);
        for m in to {
            recipients.push(m.email.to_string());
            builder = builder.to(m);
        }
        for m in cc {
            recipients.push(m.email.to_string());
            builder = builder.cc(m);
        }
        for m in bcc {
            // The envelope carries it; lettre drops the Bcc header when it builds the message.
            recipients.push(m.email.to_string());
            builder = builder.bcc(m);
        }
        for m in reply_to {
            builder = builder.reply_to(m);
        }
        let built = match (text, html) {
            (Some(text), Some(html)) => builder.multipart(MultiPart::alternative_plain_html(text, html)),
            (Some(text), None) => builder.singlepart(SinglePart::builder().header(ContentType::TEXT_PLAIN).body(text)),
            (None, Some(html)) => builder.singlepart(SinglePart::builder().header(ContentType::TEXT_HTML).body(html)),
            (None, None) => return Err(NodeError::config("body", "`body` (text) or `html` (or both) is required")),
        };
        let message = built.map_err(|e| NodeError::config("to", format!("the message cannot be built: {e}")))?;
        Ok(Self { message, message_id, recipients, timeout })
    }
}

fn required_str<'a>(config: &'a Map<String, Value>, field: &str) -> Result<&'a str, NodeError> {
    match config.get(field) {
        Some(Value::String(s)) if !s.trim().is_empty() => Ok(s),
        Some(Value::String(_)) | None | Some(Value::Null) => Err(NodeError::config(field, "is required")),
        Some(other) => Err(NodeError::config(field, format!("must be a string, got {}", kind_of(other)))),
    }
}

fn optional_str(config: &Map<String, Value>, field: &str) -> Result<Option<String>, NodeError> {
    match config.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(other) => Err(NodeError::config(field, format!("must be a string, got {}", kind_of(other)))),
    }
}

/// A string or an array of strings; absent or null is none.
fn mailboxes(config: &Map<String, Value>, field: &str) -> Result<Vec<Mailbox>, NodeError> {
    match config.get(field) {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::String(s)) => Ok(vec![mailbox(field, s)?]),
        Some(Value::Array(items)) => items
            .iter()
            .enumerate()
            .map(|(i, item)| match item {
                Value::String(s) => mailbox(&format!("{field}[{i}]"), s),
                other => Err(NodeError::config(
                    &format!("{field}[{i}]"),
                    format!("must be an email address (a string), got {}", kind_of(other)),
                )),
            })
            .collect(),
        Some(other) => Err(NodeError::config(
            field,
            format!("must be an email address or an array of them, got {}", kind_of(other)),
        )),
    }
}

/// One address, `user@example.com` or `Name <user@example.com>`.
fn mailbox(field: &str, s: &str) -> Result<Mailbox, NodeError> {
    // Checked before parsing: a line break in a header value would start a new header (or the
    // body) in the message, whatever the parser makes of the rest.
    no_line_breaks(field, s)?;
    let bad = || NodeError::config(field, format!("`{}` is not an email address", shown(s)));
    // lettre's parser takes one mailbox and refuses anything after it (`a@x.com, b@y.com`).
    s.trim().parse().map_err(|_| bad())
}

fn no_line_breaks(field: &str, s: &str) -> Result<(), NodeError> {
    if s.contains(['\r', '\n']) {
        return Err(NodeError::config(field, format!("`{}` contains a line break (CR or LF)", shown(s))));
    }
    Ok(())
}

/// A bad value as an error quotes it: line breaks escaped, at most 200 characters.
fn shown(s: &str) -> String {
    let escaped = s.escape_debug().to_string();
    let mut out: String = escaped.chars().take(200).collect();
    if out.len() < escaped.len() {
        out.push('…');
    }
    out
}

fn timeout(config: &Map<String, Value>) -> Result<Duration, NodeError> {
    match config.get("timeout_seconds") {
        None | Some(Value::Null) => Ok(DEFAULT_TIMEOUT),
        Some(Value::Number(n)) => match n.as_f64() {
            Some(s) if s > 0.0 && s <= MAX_TIMEOUT_SECONDS => Ok(Duration::from_secs_f64(s)),
            _ => Err(NodeError::config(
                "timeout_seconds",
                format!("must be a number of seconds above 0 and at most {MAX_TIMEOUT_SECONDS}"),
            )),
        },
        Some(other) => Err(NodeError::config("timeout_seconds", format!("must be a number, got {}", kind_of(other)))),
    }
}
