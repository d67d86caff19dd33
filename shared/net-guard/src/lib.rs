//! The address guard: which IP addresses a tenant's node may connect to.
//!
//! Loopback, private, link-local, carrier-grade NAT, multicast, reserved and cloud metadata
//! addresses are refused unless allow-listed (`WEFT_HTTP_ALLOW`, e.g. `127.0.0.1,10.1.0.0/16`).
//! IPv4-mapped, NAT64, 6to4 and IPv4-compatible IPv6 addresses are judged by the IPv4 address they
//! embed. Every node function that opens a connection to an address a graph chose goes through
//! it: `http` (every redirect hop too), `slack` webhooks, `database` hosts.
//!
//! Two ways in, both of which leave no DNS-rebinding window:
//! - [`Guard::resolve`]: resolve a host and keep only permitted addresses, then connect to exactly
//!   those (the `database` function hands them to its driver as the host address);
//! - with the `reqwest` feature, [`resolver`]: a reqwest DNS resolver doing the same inside the
//!   client, whose refusal ([`ForbiddenHost`]) [`is_forbidden_host`] finds again in an error chain.
//!   IP literals never reach a resolver: check them with [`Guard::check_ip_host`] first.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

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
    /// Whether a connection to `ip` is allowed.
    pub fn permits(&self, ip: IpAddr) -> bool {
        !is_forbidden(ip) || self.allow.iter().any(|p| p.contains(ip))
    }
}

impl Guard {
    /// The variable [`Guard::from_env`] reads.
    pub const ENV: &'static str = "WEFT_HTTP_ALLOW";

    /// The allow-list of `WEFT_HTTP_ALLOW` (unset: nothing allow-listed); the error says what is
    /// wrong with its value.
    pub fn from_env() -> Result<Self, String> {
        match std::env::var(Self::ENV) {
            Ok(list) => Ok(Self { allow: parse_allow(&list)? }),
            Err(_) => Ok(Self::default()),
        }
    }

    /// Refuses an IP-literal `host` (brackets allowed) the guard does not permit; names are not
    /// checked here (they are at resolution).
    pub fn check_ip_host(&self, host: &str) -> Result<(), ForbiddenHost> {
        match host.trim_start_matches('[').trim_end_matches(']').parse::<IpAddr>() {
            Ok(ip) if !self.permits(ip) => Err(ForbiddenHost { host: host.to_owned(), addrs: ip.to_string() }),
            _ => Ok(()),
        }
    }

    /// Resolves `host` (a name or an IP literal) and keeps the permitted addresses; fails when
    /// there are none ([`Refused::Forbidden`] when the name resolved only to forbidden ones).
    pub async fn resolve(&self, host: &str, port: u16) -> Result<Vec<SocketAddr>, Refused> {
        let bare = host.trim_start_matches('[').trim_end_matches(']');
        let all: Vec<SocketAddr> = tokio::net::lookup_host((bare, port))
            .await
            .map_err(|e| Refused::Resolve { host: host.to_owned(), reason: e.to_string() })?
            .collect();
        let permitted: Vec<SocketAddr> = all.iter().copied().filter(|a| self.permits(a.ip())).collect();
        if permitted.is_empty() {
            if all.is_empty() {
                return Err(Refused::Resolve { host: host.to_owned(), reason: "no addresses".into() });
            }
            let addrs = all.iter().map(|a| a.ip().to_string()).collect::<Vec<_>>().join(", ");
            return Err(Refused::Forbidden(ForbiddenHost { host: host.to_owned(), addrs }));
        }
        Ok(permitted)
    }
}

/// Why [`Guard::resolve`] returned no address.
#[derive(Debug, thiserror::Error)]
pub enum Refused {
    #[error(transparent)]
    Forbidden(ForbiddenHost),
    #[error("`{host}` could not be resolved: {reason}")]
    Resolve { host: String, reason: String },
}

/// A host whose every address is forbidden.
#[derive(Debug, thiserror::Error)]
#[error(
    "`{host}` resolves only to forbidden addresses ({addrs}): loopback, private, link-local or metadata; allow-list them with WEFT_HTTP_ALLOW if intended"
)]
pub struct ForbiddenHost {
    pub host: String,
    pub addrs: String,
}

/// The allow-list: comma-separated addresses or prefixes.
pub fn parse_allow(list: &str) -> Result<Vec<Prefix>, String> {
    list.split(',').map(str::trim).filter(|s| !s.is_empty()).map(str::parse).collect()
}

#[cfg(feature = "reqwest")]
mod reqwest_resolver {
    use std::net::SocketAddr;
    use std::sync::Arc;

    use super::{ForbiddenHost, Guard};

    /// The resolver reqwest uses: resolves with the system resolver, then keeps only permitted addresses.
    struct GuardedResolver {
        guard: Arc<Guard>,
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

    /// The resolver a reqwest client is built with: the guard applied to every name it resolves.
    /// Build the client with `no_proxy()` too (a proxy would resolve names out of the guard's sight).
    pub fn resolver(guard: Arc<Guard>) -> Arc<impl reqwest::dns::Resolve + 'static> {
        Arc::new(GuardedResolver { guard })
    }

    /// A reqwest client builder for connections a graph chooses: the guard's resolver, no
    /// system proxy (it would resolve names out of the guard's sight) and no redirects (a
    /// function that follows them checks every hop itself).
    pub fn client_builder(guard: Arc<Guard>) -> reqwest::ClientBuilder {
        reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).no_proxy().dns_resolver(resolver(guard))
    }

    /// Whether `err` (one error of a chain) is the resolver's refusal of a host.
    pub fn is_forbidden_host(err: &(dyn std::error::Error + 'static)) -> bool {
        err.downcast_ref::<ForbiddenHost>().is_some()
    }
}

#[cfg(feature = "reqwest")]
pub use reqwest_resolver::{client_builder, is_forbidden_host, resolver};

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
