//! The `email` node function: one message sent over SMTP (lettre), its id and recipients back.
//!
//! **Config** (`data` of an `email` node, templates already resolved):
//! - `connection` (required): the *name* of a tenant secret whose value is an SMTP URL, in the
//!   form of lettre's `AsyncSmtpTransport::from_url`: `smtps://user:pass@smtp.example.com` (implicit
//!   TLS, port 465), `smtp://user:pass@smtp.example.com?tls=required` (STARTTLS, port 587),
//!   `smtp://host:port` (no TLS, port 25: local relays and tests only). See [`smtp_url`].
//! - `from` (required), `to`, `cc`, `bcc`, `reply_to`: `user@example.com` or
//!   `Name <user@example.com>`, each a string or an array of strings. At least one recipient,
//!   at most [`mail::MAX_RECIPIENTS`]. `bcc` recipients get the message (they are in the SMTP
//!   envelope) but no `Bcc` header is written.
//! - `subject`, `body` (plain text) and/or `html`: at least one of `body`/`html`; both make a
//!   `multipart/alternative` message.
//! - `timeout_seconds` (default 30, at most 900): for the whole send, connection included, and
//!   for each SMTP command.
//!
//! Every address is validated, and a CR or LF in `from`, `to`, `cc`, `bcc`, `reply_to` or
//! `subject` is refused (header injection), before any connection is opened.
//!
//! **Output**: `{"message_id": "<uuid@from-domain>", "accepted": ["a@example.com", ...]}`:
//! the `Message-ID` header this function set, and the envelope recipients (to, cc, bcc) the
//! server accepted. lettre stops at the first refused recipient, so a success means every
//! recipient was accepted and `accepted` is all of them.
//!
//! **Errors** ([`node_contract::error_names`]):
//! - `Email.Connect`: refused, DNS failure, TLS failure, timeout, or a 4xx reply (the server's
//!   "try later"); retried by default.
//! - `Email.Auth`: the server refused the credentials (454, 530, 534, 535, 538) or offers no
//!   mechanism lettre speaks. (A 530 that asks for STARTTLS is `Email.Rejected`: the URL lacks
//!   `tls=required`.)
//! - `Email.Rejected`: any other 5xx reply (a refused sender, recipient or message), with the
//!   reply code and the server's text, e.g. `answered 550: 5.1.1 no such user`.
//! - `Email.ForbiddenAddress`: the SMTP host resolves only to loopback, private, link-local or
//!   metadata addresses that `WEFT_HTTP_ALLOW` does not allow-list.
//! - `Config.Invalid` (naming the field), `Secret.NotFound` / `Secret.Unavailable` (the connection
//!   secret).
//!
//! **Address guard.** The URL's host is resolved through [`net_guard::Guard::resolve`] and the
//! transport is built for the first permitted address itself, so nothing resolves the name again
//! (no DNS-rebinding window); TLS still checks the certificate against (and sends SNI for) the
//! URL's host name. This is why the URL is parsed here ([`smtp_url`]) rather than by lettre's
//! `from_url`: lettre would connect to the name.
//!
//! **Pooling.** Transports (each with lettre's connection pool) are cached per connection URL,
//! pinned address and timeout, in a small LRU map ([`transport::CACHED_TRANSPORTS`]) keyed by a
//! SHA-256 of those, so a warm Lambda reuses its SMTP connections across invocations. A send
//! cut short by the timeout drops its transport (its pooled connection may be mid-transaction).
//! lettre's pool parks at most [`transport::POOL_SIZE`] idle connections but does not limit how
//! many are open at once: one per concurrent send (a Lambda runs one invocation at a time).
//!
//! **TLS** is rustls with the Mozilla roots (lettre's `webpki-roots` feature, so a Lambda image
//! needs no CA bundle); [`EmailFunction::with_root_certificate`] adds a private CA.
//!
//! **Secrets.** The connection secret is resolved for the tenant owning the execution
//! ([`tenant_secrets::resolve_connection`]); its value and its password (as written and decoded)
//! are scrubbed from every output and error message.

pub mod mail;
pub mod smtp_url;
pub mod transport;

use std::sync::Arc;

use lettre::AsyncTransport as _;
use net_guard::{Guard, Refused};
use node_contract::{NodeError, NodeEvent, NodeFunction, error_names};
use serde_json::{Value, json};
use tenant_secrets::{Connected, NoSecrets, SecretResolver};

use mail::Mail;
use smtp_url::SmtpUrl;
use transport::Transports;

/// The guard's allow-list from the environment is bad.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct SettingsError(String);

/// The `email` function's handler; holds the transports (and their pools) for all invocations.
#[derive(Clone)]
pub struct EmailFunction {
    guard: Arc<Guard>,
    secrets: Arc<dyn SecretResolver>,
    transports: Arc<Transports>,
}

impl std::fmt::Debug for EmailFunction {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmailFunction").field("guard", &self.guard).field("transports", &self.transports).finish()
    }
}

impl EmailFunction {
    /// A function whose SMTP hosts go through `guard`, with no secret store (see
    /// [`Self::with_secrets`]).
    pub fn new(guard: Guard) -> Self {
        Self { guard: Arc::new(guard), secrets: Arc::new(NoSecrets), transports: Arc::default() }
    }

    /// The guard's allow-list from `WEFT_HTTP_ALLOW`.
    pub fn from_env() -> Result<Self, SettingsError> {
        let guard = Guard::from_env().map_err(|e| SettingsError(format!("{}: {e}", Guard::ENV)))?;
        Ok(Self::new(guard))
    }

    /// Resolves the `connection` secret through `resolver` (the default, [`NoSecrets`], has none).
    pub fn with_secrets(mut self, resolver: Arc<dyn SecretResolver>) -> Self {
        self.secrets = resolver;
        self
    }

    /// Also trusts the CA certificate(s) in `pem` for SMTP servers' TLS certificates (a private CA;
    /// the tests' own). Starts a fresh transport cache, so every transport built after trusts it.
    pub fn with_root_certificate(mut self, pem: &[u8]) -> Result<Self, SettingsError> {
        let cert = lettre::transport::smtp::client::Certificate::from_pem(pem)
            .map_err(|e| SettingsError(format!("root certificate: {e}")))?;
        let mut transports = Transports::default();
        transports.extra_roots = self.transports.extra_roots.iter().cloned().chain([cert]).collect();
        self.transports = Arc::new(transports);
        Ok(self)
    }

    /// How many transports are cached (for tests of the reuse).
    pub fn cached_transports(&self) -> usize {
        self.transports.len()
    }

    pub async fn run(&self, event: NodeEvent) -> Result<Value, NodeError> {
        let Connected { config, connection, scrubber } =
            tenant_secrets::resolve_connection(&*self.secrets, &event, "connection").await?;
        let event = NodeEvent { config, ..event };
        let outcome = match event.config_object().and_then(Mail::parse) {
            Err(e) => Err(e),
            Ok(mail) => self.send(&connection, mail).await,
        };
        scrubber.result(outcome)
    }

    async fn send(&self, connection: &str, mail: Mail) -> Result<Value, NodeError> {
        let url = SmtpUrl::parse(connection)?;
        let server = if url.host.contains(':') {
            format!("[{}]:{}", url.host, url.port)
        } else {
            format!("{}:{}", url.host, url.port)
        };
        let timeout = mail.timeout;
        let deadline = tokio::time::Instant::now() + timeout;
        let timed_out =
            || NodeError::new(error_names::EMAIL_CONNECT, format!("smtp {server}: no reply within {timeout:?}"));

        let addrs = match tokio::time::timeout_at(deadline, self.guard.resolve(&url.host, url.port)).await {
            Err(_) => return Err(timed_out()),
            Ok(Ok(addrs)) => addrs,
            Ok(Err(Refused::Forbidden(f))) => {
                return Err(NodeError::new(error_names::EMAIL_FORBIDDEN_ADDRESS, format!("smtp {server}: {f}")));
            }
            Ok(Err(e @ Refused::Resolve { .. })) => {
                return Err(NodeError::new(error_names::EMAIL_CONNECT, format!("smtp {server}: {e}")));
            }
        };
        // `resolve` never returns an empty list; the first permitted address is the one pinned.
        let Some(&addr) = addrs.first() else {
            return Err(NodeError::new(error_names::EMAIL_CONNECT, format!("smtp {server}: no address")));
        };
        let key = transport::key(connection, addr, timeout);
        let transport = self.transports.get_or_build(key, &url, addr, timeout)?;
        let Mail { message, message_id, recipients, .. } = mail;
        match tokio::time::timeout_at(deadline, transport.send(message)).await {
            Err(_) => {
                self.transports.evict(&key);
                Err(timed_out())
            }
            // Not logged here: a server's reply may quote what it was sent; the error goes
            // through the scrubber first.
            Ok(Err(e)) => Err(transport::send_error(&e, &server)),
            Ok(Ok(_response)) => Ok(json!({"message_id": message_id, "accepted": recipients})),
        }
    }
}

impl NodeFunction for EmailFunction {
    fn handle(&self, event: NodeEvent) -> impl Future<Output = Result<Value, NodeError>> + Send {
        self.run(event)
    }
}
