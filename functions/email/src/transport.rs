//! SMTP transports pinned to a guard-checked address, cached (with their connection pools)
//! across the invocations of a warm Lambda, and lettre's errors mapped to the stable names.

use std::net::SocketAddr;
use std::num::NonZeroUsize;
use std::sync::Mutex;
use std::time::Duration;

use lettre::Tokio1Executor;
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::transport::smtp::{AsyncSmtpTransport, PoolConfig};
use node_contract::{NodeError, error_names};
use sha2::{Digest, Sha256};

use crate::smtp_url::{SmtpUrl, TlsMode};

pub type Transport = AsyncSmtpTransport<Tokio1Executor>;

/// Transports kept per process: a Lambda serves one tenant's node after another, and each
/// distinct connection URL has its own pool; the least recently used is dropped (its idle
/// connections are closed) beyond this.
pub const CACHED_TRANSPORTS: usize = 16;
/// Connections per transport (lettre's pool size).
pub const POOL_SIZE: u32 = 8;

/// What identifies a transport: the URL (as a SHA-256, so the map holds no password and two
/// tenants' URLs cannot collide), the address it is pinned to, and the command timeout.
type Key = [u8; 32];

pub struct Transports {
    cache: Mutex<lru::LruCache<Key, Transport>>,
    /// Trusted in addition to the Mozilla roots (webpki-roots) lettre loads.
    pub extra_roots: Vec<Certificate>,
}

impl Default for Transports {
    fn default() -> Self {
        let cap = NonZeroUsize::new(CACHED_TRANSPORTS).unwrap_or(NonZeroUsize::MIN);
        Self { cache: Mutex::new(lru::LruCache::new(cap)), extra_roots: Vec::new() }
    }
}

impl std::fmt::Debug for Transports {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let len = self.cache.lock().map(|c| c.len()).unwrap_or_default();
        write!(f, "Transports({len} cached)")
    }
}

pub fn key(connection: &str, addr: SocketAddr, timeout: Duration) -> Key {
    let mut h = Sha256::new();
    h.update(connection.as_bytes());
    h.update([0]);
    h.update(addr.to_string().as_bytes());
    h.update([0]);
    h.update(timeout.as_nanos().to_le_bytes());
    h.finalize().into()
}

impl Transports {
    /// The cached transport for `key`, or one built from `url` pinned to `addr`.
    pub fn get_or_build(
        &self,
        key: Key,
        url: &SmtpUrl,
        addr: SocketAddr,
        timeout: Duration,
    ) -> Result<Transport, NodeError> {
        // A poisoned lock only means another invocation panicked mid-insert; the map is intact.
        let mut cache = self.cache.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(t) = cache.get(&key) {
            return Ok(t.clone());
        }
        let transport = build(url, addr, timeout, &self.extra_roots)?;
        cache.put(key, transport.clone());
        Ok(transport)
    }

    /// Forgets `key`'s transport: after a send was cut short by the timeout its pooled connection
    /// may be mid-transaction, so the whole pool goes (lettre closes its connections on drop).
    pub fn evict(&self, key: &Key) {
        let mut cache = self.cache.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        cache.pop(key);
    }

    pub fn len(&self) -> usize {
        self.cache.lock().map(|c| c.len()).unwrap_or_default()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// lettre connects to the `server` string it is given, so the transport is built for the checked
/// IP address (no second DNS lookup, no rebinding window), while the TLS parameters keep the
/// URL's host as the name the certificate must match (and the SNI sent).
fn build(url: &SmtpUrl, addr: SocketAddr, timeout: Duration, roots: &[Certificate]) -> Result<Transport, NodeError> {
    let tls_params = || {
        let builder =
            roots.iter().fold(TlsParameters::builder(url.host.clone()), |b, root| b.add_root_certificate(root.clone()));
        builder
            .build()
            .map_err(|e| NodeError::config("connection", format!("TLS cannot be set up for host `{}`: {e}", url.host)))
    };
    let tls = match url.tls {
        TlsMode::None => Tls::None,
        TlsMode::Opportunistic => Tls::Opportunistic(tls_params()?),
        TlsMode::Required => Tls::Required(tls_params()?),
        TlsMode::Wrapper => Tls::Wrapper(tls_params()?),
    };
    let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(addr.ip().to_string())
        .port(addr.port())
        .tls(tls)
        .timeout(Some(timeout))
        .pool_config(PoolConfig::new().max_size(POOL_SIZE));
    if let Some(c) = &url.credentials {
        builder = builder.credentials(c.clone());
    }
    if let Some(name) = &url.hello_name {
        builder = builder.hello_name(name.clone());
    }
    Ok(builder.build())
}

/// SMTP reply codes that mean the credentials were refused or are required (RFC 4954 §6:
/// 530 authentication required, 534 mechanism too weak, 535 credentials invalid, 538 encryption
/// required for the mechanism, 454 temporary authentication failure).
const AUTH_CODES: &[&str] = &["454", "530", "534", "535", "538"];

/// The node error for a failed send to `server` (`host:port`, never the URL).
pub fn send_error(e: &lettre::transport::smtp::Error, server: &str) -> NodeError {
    let text = e.to_string();
    if let Some(code) = e.status() {
        let code = code.to_string();
        let reply = reply_text(&text);
        // 530 is also "must issue STARTTLS first": the URL lacks `tls=required`, not a credential
        // problem.
        let wants_tls = code == "530" && reply.to_ascii_uppercase().contains("TLS");
        let name = if AUTH_CODES.contains(&code.as_str()) && !wants_tls {
            error_names::EMAIL_AUTH
        } else if code.starts_with('4') {
            // A 4xx reply is the server saying "try again later" (greylisting, rate limits,
            // mailbox busy): retryable like a connection failure.
            error_names::EMAIL_CONNECT
        } else {
            error_names::EMAIL_REJECTED
        };
        return NodeError::new(name, format!("smtp {server} answered {code}: {reply}"));
    }
    if text.contains("No compatible authentication mechanism") {
        return NodeError::new(
            error_names::EMAIL_AUTH,
            format!("smtp {server} offers no authentication mechanism lettre supports (PLAIN, LOGIN, XOAUTH2)"),
        );
    }
    if e.is_client() {
        // lettre refusing the message itself (e.g. non-ASCII addresses without SMTPUTF8).
        return NodeError::new(error_names::EMAIL_REJECTED, format!("smtp {server}: {text}"));
    }
    let what = if e.is_timeout() {
        "timed out"
    } else if e.is_tls() {
        "TLS failed"
    } else {
        "connection failed"
    };
    NodeError::new(error_names::EMAIL_CONNECT, format!("smtp {server}: {what}: {text}"))
}

/// lettre writes `permanent error (550): <text>`; the code is already in the message.
fn reply_text(display: &str) -> &str {
    display.split_once("): ").map_or(display, |(_, t)| t)
}
