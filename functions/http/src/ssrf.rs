//! The SSRF guard as the http function applies it (the guard itself is the `net-guard` crate).
//!
//! The check runs in three places, which together cover every connection the function makes:
//!
//! - on the addresses a host name *resolves to*, inside the client's resolver
//!   ([`net_guard::resolver`]), so the connection uses exactly the addresses that were checked and
//!   there is no DNS rebinding window; a name with only forbidden addresses fails with
//!   `ForbiddenHost`, which [`net_guard::is_forbidden_host`] finds again in reqwest's error chain;
//! - on IP-literal hosts, which never reach a resolver, before any connection
//!   ([`check_literal`]);
//! - again on every redirect hop, since the function follows redirects itself (the client's own
//!   redirect policy is off).
//!
//! System proxies are ignored (the client is built with `no_proxy`), since a proxy would resolve
//! names out of the guard's sight.

use net_guard::Guard;
use node_contract::{NodeError, error_names};
use reqwest::Url;

/// IP-literal hosts never reach the resolver, so they are checked here before connecting.
pub(crate) fn check_literal(guard: &Guard, url: &Url) -> Result<(), NodeError> {
    let host = url.host_str().unwrap_or_default();
    guard.check_ip_host(host).map_err(|_| {
        NodeError::new(
            error_names::HTTP_FORBIDDEN_ADDRESS,
            format!(
                "{url}: {host} is a loopback, private, link-local or metadata address; allow-list it with WEFT_HTTP_ALLOW if intended"
            ),
        )
    })
}
