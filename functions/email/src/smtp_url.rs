//! The connection secret: an SMTP URL in the form of lettre's `AsyncSmtpTransport::from_url`,
//! parsed here rather than by lettre so the transport can be pointed at the address the guard
//! checked while TLS still verifies the certificate against the URL's host name.
//!
//! | URL | TLS | default port |
//! |---|---|---|
//! | `smtps://user:pass@host` | implicit TLS | 465 |
//! | `smtp://user:pass@host?tls=required` | STARTTLS, required | 587 |
//! | `smtp://user:pass@host?tls=opportunistic` | STARTTLS when offered (not safe against a man in the middle) | 587 |
//! | `smtp://host` | none (local relays and tests only) | 25 |
//!
//! User and password are percent-decoded; a path (`smtp://host/ehlo.example`) is the EHLO name.
//! Problems are `Config.Invalid` naming `connection`, and never quote the URL (it holds the
//! password).

use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::extension::ClientId;
use node_contract::NodeError;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TlsMode {
    None,
    Opportunistic,
    Required,
    Wrapper,
}

/// A parsed SMTP URL.
pub struct SmtpUrl {
    /// As written in the URL (IPv6 literals without brackets): what the guard resolves and what
    /// the server's certificate must name.
    pub host: String,
    pub port: u16,
    pub tls: TlsMode,
    pub credentials: Option<Credentials>,
    pub hello_name: Option<ClientId>,
}

impl std::fmt::Debug for SmtpUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SmtpUrl")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("tls", &self.tls)
            .field("credentials", &self.credentials.as_ref().map(|_| "***"))
            .finish_non_exhaustive()
    }
}

fn invalid(problem: &str) -> NodeError {
    NodeError::config("connection", format!("the connection secret {problem}"))
}

impl SmtpUrl {
    pub fn parse(connection: &str) -> Result<Self, NodeError> {
        let url = url::Url::parse(connection.trim())
            .map_err(|_| invalid("is not a URL (expected e.g. smtps://user:pass@smtp.example.com)"))?;
        let tls = url.query_pairs().find(|(k, _)| k == "tls").map(|(_, v)| v.into_owned());
        let (tls, default_port) = match (url.scheme(), tls.as_deref()) {
            ("smtp", None) => (TlsMode::None, 25),
            ("smtp", Some("required")) => (TlsMode::Required, 587),
            ("smtp", Some("opportunistic")) => (TlsMode::Opportunistic, 587),
            ("smtps", None | Some("wrapper" | "required")) => (TlsMode::Wrapper, 465),
            ("smtp" | "smtps", Some(_)) => {
                return Err(invalid("has an unknown `tls` parameter (use `required` or `opportunistic`)"));
            }
            _ => return Err(invalid("must be an smtp:// or smtps:// URL")),
        };
        let host = match url.host() {
            Some(url::Host::Domain(d)) => d.to_owned(),
            Some(url::Host::Ipv4(ip)) => ip.to_string(),
            Some(url::Host::Ipv6(ip)) => ip.to_string(),
            None => return Err(invalid("has no host")),
        };
        let decode = |s: &str| {
            percent_decode(s).ok_or_else(|| invalid("has a user or password that is not UTF-8 once percent-decoded"))
        };
        let credentials = match url.password() {
            Some(password) => Some(Credentials::new(decode(url.username())?, decode(password)?)),
            None if !url.username().is_empty() => return Err(invalid("has a user but no password")),
            None => None,
        };
        let path = url.path().trim_matches('/');
        let hello_name = (!path.is_empty()).then(|| ClientId::Domain(path.to_owned()));
        Ok(Self { host, port: url.port().unwrap_or(default_port), tls, credentials, hello_name })
    }
}

/// `%XX` sequences decoded (a `%` not followed by two hex digits stays as it is), as lettre
/// decodes a URL's user and password.
fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let hex = |b: u8| (b as char).to_digit(16);
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && let (Some(h), Some(l)) =
                (bytes.get(i + 1).copied().and_then(hex), bytes.get(i + 2).copied().and_then(hex))
        {
            // Two hex digits: at most 0xff, so the cast is exact.
            out.push((h * 16 + l) as u8);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn schemes_ports_and_credentials() {
        let u = SmtpUrl::parse("smtp://user:p%40ss@smtp.example.com?tls=required").unwrap();
        assert_eq!((u.host.as_str(), u.port, u.tls), ("smtp.example.com", 587, TlsMode::Required));
        assert!(u.credentials.is_some());
        let u = SmtpUrl::parse("smtps://u:p@[::1]").unwrap();
        assert_eq!((u.host.as_str(), u.port, u.tls), ("::1", 465, TlsMode::Wrapper));
        let u = SmtpUrl::parse("smtp://127.0.0.1:2525/ehlo.example").unwrap();
        assert_eq!((u.host.as_str(), u.port, u.tls), ("127.0.0.1", 2525, TlsMode::None));
        assert!(u.credentials.is_none() && u.hello_name.is_some());
        assert_eq!(percent_decode("p%40ss%2").unwrap(), "p@ss%2");
        assert_eq!(percent_decode("%e2%82%ac").unwrap(), "€");
    }

    #[test]
    fn bad_urls_never_quote_the_secret() {
        for bad in [
            "http://u:hunter2@h",
            "smtp://u:hunter2@h?tls=maybe",
            "hunter2",
            "smtp://u@h",
            "smtp://u:%ff%fe@h",
            "smtp:///nohost-hunter2",
        ] {
            let e = SmtpUrl::parse(bad).unwrap_err();
            assert_eq!(e.name, "Config.Invalid", "{bad}");
            assert!(e.message.starts_with("config.connection:"), "{e:?}");
            assert!(!e.message.contains("hunter2") && !e.message.contains("%ff"), "{e:?}");
        }
    }
}
