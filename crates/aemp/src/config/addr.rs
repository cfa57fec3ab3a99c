//! Bind and seed address specs (reference §5.5): `host:port`, `[v6]:port`, bare IPv6,
//! `host port`, a bare port (this host's name), `*` for every interface; lists may be
//! comma-separated.

use std::net::{IpAddr, Ipv4Addr, SocketAddr, ToSocketAddrs};

/// The port used when a spec has none (AEMP's customary port; Perl 1.30 used 0, which made a
/// seed without a port useless).
pub const DEFAULT_PORT: u16 = 4040;

/// A parsed address spec, before name resolution.
#[derive(Clone, Debug, Eq, PartialEq)]
pub struct Spec {
    /// The host: `None` for `*` (every interface).
    pub host: Option<String>,
    /// The port (`*` or `0`: any free port).
    pub port: u16,
}

/// Parses one address spec (no commas). An empty spec or a bare port means this host's name
/// ([`hostname`](super::hostname)).
///
/// ```
/// use aemp::config::{parse_spec, DEFAULT_PORT};
///
/// assert_eq!(parse_spec("127.0.0.1:4041")?.port, 4041);
/// assert_eq!(parse_spec("[::1]")?.host.as_deref(), Some("::1"));
/// assert_eq!(parse_spec("seed.example")?.port, DEFAULT_PORT);
/// assert_eq!(parse_spec("*:*")?.host, None);
/// assert!(parse_spec("host:port").is_err());
/// # Ok::<(), String>(())
/// ```
///
/// # Errors
///
/// A message saying what is wrong.
pub fn parse_spec(spec: &str) -> Result<Spec, String> {
    let spec = spec.trim();
    if spec.is_empty() {
        return Ok(Spec {
            host: Some(super::hostname()),
            port: DEFAULT_PORT,
        });
    }
    if spec.bytes().all(|b| b.is_ascii_digit()) {
        return Ok(Spec {
            host: Some(super::hostname()),
            port: parse_port(spec)?,
        });
    }
    let (host, port) = if let Some(rest) = spec.strip_prefix('[') {
        let (host, after) = rest
            .split_once(']')
            .ok_or_else(|| "missing ']' after an IPv6 address".to_owned())?;
        host.parse::<std::net::Ipv6Addr>()
            .map_err(|_| format!("{host:?} is not an IPv6 address"))?;
        let port = match after {
            "" => None,
            _ => Some(
                after
                    .strip_prefix(':')
                    .ok_or_else(|| format!("unexpected {after:?} after ']'"))?,
            ),
        };
        (host, port)
    } else if spec.matches(':').count() > 1 {
        spec.parse::<std::net::Ipv6Addr>()
            .map_err(|_| format!("{spec:?} is not an IPv6 address (write [addr]:port)"))?;
        (spec, None)
    } else if let Some((host, port)) = spec.split_once(':').or_else(|| spec.split_once(' ')) {
        (host.trim(), Some(port.trim()))
    } else {
        (spec, None)
    };
    if host.is_empty() {
        return Err("the host is missing".to_owned());
    }
    let port = match port {
        None => DEFAULT_PORT,
        Some(p) => parse_port(p)?,
    };
    Ok(Spec {
        host: (host != "*").then(|| host.to_owned()),
        port,
    })
}

fn parse_port(port: &str) -> Result<u16, String> {
    if port == "*" {
        return Ok(0);
    }
    port.parse()
        .map_err(|_| format!("{port:?} is not a port number (0-65535 or *)"))
}

/// Splits comma-separated list entries.
fn components(specs: &[String]) -> impl Iterator<Item = &str> {
    specs
        .iter()
        .flat_map(|s| s.split(','))
        .map(str::trim)
        .filter(|s| !s.is_empty())
}

fn resolve(spec: &Spec) -> std::io::Result<Vec<SocketAddr>> {
    match &spec.host {
        None => Ok(vec![SocketAddr::new(
            IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            spec.port,
        )]),
        Some(host) => match host.parse::<IpAddr>() {
            Ok(ip) => Ok(vec![SocketAddr::new(ip, spec.port)]),
            Err(_) => Ok((host.as_str(), spec.port).to_socket_addrs()?.collect()),
        },
    }
}

/// Resolves bind specs to listen addresses, in list order, without repeats. `*` binds every
/// IPv4 interface with one listener (`0.0.0.0`); names are looked up in DNS (every address).
///
/// # Errors
///
/// `(spec, reason)` for the first spec that does not parse or resolve.
pub fn resolve_binds(specs: &[String]) -> Result<Vec<SocketAddr>, (String, String)> {
    resolve_all(specs, true)
}

/// Resolves seed specs to addresses, in list order, without repeats (a seed needs a host:
/// `*` is refused).
///
/// # Errors
///
/// `(spec, reason)` for the first spec that does not parse or resolve.
pub fn resolve_seeds(specs: &[String]) -> Result<Vec<SocketAddr>, (String, String)> {
    resolve_all(specs, false)
}

fn resolve_all(specs: &[String], binds: bool) -> Result<Vec<SocketAddr>, (String, String)> {
    let mut out: Vec<SocketAddr> = Vec::new();
    for spec in components(specs) {
        let fail = |reason: String| (spec.to_owned(), reason);
        let parsed = parse_spec(spec).map_err(fail)?;
        if !binds && parsed.host.is_none() {
            return Err(fail(
                "a seed needs a host name or address, not '*'".to_owned(),
            ));
        }
        if !binds && parsed.port == 0 {
            return Err(fail("a seed needs a port".to_owned()));
        }
        let addrs = resolve(&parsed).map_err(|e| fail(e.to_string()))?;
        if addrs.is_empty() {
            return Err(fail("the name has no addresses".to_owned()));
        }
        for addr in addrs {
            if !out.contains(&addr) {
                out.push(addr);
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(host: Option<&str>, port: u16) -> Spec {
        Spec {
            host: host.map(str::to_owned),
            port,
        }
    }

    #[test]
    fn forms() {
        assert_eq!(parse_spec("1.2.3.4:5").unwrap(), spec(Some("1.2.3.4"), 5));
        assert_eq!(parse_spec("1.2.3.4").unwrap(), spec(Some("1.2.3.4"), 4040));
        assert_eq!(parse_spec("[::1]:7").unwrap(), spec(Some("::1"), 7));
        assert_eq!(parse_spec("[::1]").unwrap(), spec(Some("::1"), 4040));
        assert_eq!(parse_spec("fe80::1").unwrap(), spec(Some("fe80::1"), 4040));
        assert_eq!(parse_spec("host 99").unwrap(), spec(Some("host"), 99));
        assert_eq!(parse_spec("*").unwrap(), spec(None, 4040));
        assert_eq!(parse_spec("*:*").unwrap(), spec(None, 0));
        assert_eq!(parse_spec("*:0").unwrap(), spec(None, 0));
        let name = super::super::hostname();
        assert_eq!(parse_spec("4041").unwrap(), spec(Some(&name), 4041));
        assert_eq!(parse_spec("").unwrap(), spec(Some(&name), 4040));
    }

    #[test]
    fn bad_specs_say_why() {
        for (bad, why) in [
            ("host:port", "not a port"),
            ("host:70000", "not a port"),
            ("[::1", "missing ']'"),
            ("[nope]:1", "not an IPv6"),
            ("[::1]x", "unexpected"),
            ("1:2:zz", "not an IPv6"),
            (":4040", "host is missing"),
            ("99999", "not a port"),
        ] {
            let e = parse_spec(bad).unwrap_err();
            assert!(e.contains(why), "{bad}: {e}");
        }
    }

    #[test]
    fn lists_are_split_deduplicated_and_ordered() {
        let specs = vec![
            "127.0.0.1:1, 127.0.0.2:2".to_owned(),
            "127.0.0.1:1".to_owned(),
            "[::1]:3".to_owned(),
        ];
        let addrs = resolve_binds(&specs).unwrap();
        let want: Vec<SocketAddr> = ["127.0.0.1:1", "127.0.0.2:2", "[::1]:3"]
            .iter()
            .map(|s| s.parse().unwrap())
            .collect();
        assert_eq!(addrs, want);
        assert_eq!(
            resolve_binds(&["*:0".to_owned()]).unwrap(),
            ["0.0.0.0:0".parse().unwrap()]
        );
        assert!(
            resolve_seeds(&["localhost:9".to_owned()])
                .unwrap()
                .iter()
                .all(|a| a.port() == 9 && a.ip().is_loopback())
        );
    }

    #[test]
    fn seeds_need_a_host_and_a_port() {
        let e = resolve_seeds(&["*:4040".to_owned()]).unwrap_err();
        assert!(e.1.contains("needs a host"), "{e:?}");
        let e = resolve_seeds(&["127.0.0.1:0".to_owned()]).unwrap_err();
        assert!(e.1.contains("needs a port"), "{e:?}");
        let e = resolve_seeds(&["no-such-host.invalid:1".to_owned()]).unwrap_err();
        assert_eq!(e.0, "no-such-host.invalid:1");
    }
}
