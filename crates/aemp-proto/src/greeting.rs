//! The handshake lines: greeting line 1, the nonce line and the auth line (reference §4.2,
//! §4.3, §4.8).
//!
//! ```
//! use aemp_proto::greeting::{AuthLine, Greeting};
//!
//! let line = "aemp;1;seed;tls_md6_64_256,hmac_md6_64_256;json,storable;provider=AE-1.30";
//! let greeting: Greeting = line.parse()?;
//! assert_eq!(greeting.node.as_str(), "seed");
//! assert_eq!(greeting.framings, ["json", "storable"]);
//! assert_eq!(greeting.pair("provider"), Some(Some("AE-1.30")));
//! assert_eq!(greeting.to_string(), line);
//!
//! let auth: AuthLine = "hmac_md6_64_256;5ad9;json".parse()?;
//! assert_eq!(auth.framing, "json");
//! # Ok::<(), aemp_proto::greeting::GreetingError>(())
//! ```

use std::fmt;
use std::str::FromStr;

use crate::id::{IdError, NodeId};

/// Greeting line 1: `<protocol>;<version>;<nodeid>;<auth-list>;<framing-list>[;<key>=<value>]…`.
///
/// Fields are kept as sent; the [`Handshake`](crate::Handshake) decides what they mean. The
/// lists keep unknown entries (a Perl node lists `storable`, for instance).
#[derive(Clone, Debug, Eq, PartialEq)]
pub struct Greeting {
    /// The protocol name; `aemp` for node connections.
    pub protocol: String,
    /// The protocol version; Perl 1.30 sends `1` and compares numerically.
    pub version: String,
    /// The sender's node ID.
    pub node: NodeId,
    /// Auth methods the sender accepts, in its order of preference.
    pub auth: Vec<String>,
    /// Framings the sender can receive, in its order of preference.
    pub framings: Vec<String>,
    /// The `key=value` pairs in the order sent; a key without `=` has no value.
    pub pairs: Vec<(String, Option<String>)>,
}

impl Greeting {
    /// Looks up a `key=value` pair: `None` if absent, `Some(None)` for a bare key.
    pub fn pair(&self, key: &str) -> Option<Option<&str>> {
        self.pairs
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_deref())
    }

    /// `true` if the pair `tls` is present with an integer value of 1 (`tls=1.0` counts), as
    /// Perl decides whether the peer wants TLS (reference §4.5).
    pub fn wants_tls(&self) -> bool {
        self.pair("tls")
            .flatten()
            .is_some_and(|v| perl_int(v) == Some(1))
    }

    /// `true` if the version field is numerically 1 (Perl's `!= 1` check, reference §4.2).
    pub fn is_version_1(&self) -> bool {
        self.version.trim().parse::<f64>().is_ok_and(|v| v == 1.0)
    }
}

/// Perl's `int()` of a numeric string: the integer part of its leading number.
fn perl_int(s: &str) -> Option<i64> {
    let f: f64 = s.trim().parse().ok()?;
    if f.is_finite() {
        #[allow(clippy::cast_possible_truncation)] // Truncation is what Perl's int() does.
        Some(f.trunc() as i64)
    } else {
        None
    }
}

impl FromStr for Greeting {
    type Err = GreetingError;

    fn from_str(line: &str) -> Result<Self, Self::Err> {
        check_line(line)?;
        let mut fields = line.split(';');
        let mut next = || fields.next().ok_or(GreetingError::TooFewFields);
        let protocol = next()?.to_owned();
        let version = next()?.to_owned();
        let node = NodeId::new(next()?).map_err(GreetingError::BadNodeId)?;
        let auth = split_list(next()?);
        let framings = split_list(next()?);
        let pairs = fields
            .filter_map(|field| match field.split_once('=') {
                // Perl's /^([^=]+)(?:=(.*))?/ needs a non-empty key.
                Some(("", _)) => None,
                Some((k, v)) => Some((k.to_owned(), Some(v.to_owned()))),
                None if field.is_empty() => None,
                None => Some((field.to_owned(), None)),
            })
            .collect();
        Ok(Self {
            protocol,
            version,
            node,
            auth,
            framings,
            pairs,
        })
    }
}

impl fmt::Display for Greeting {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{};{};{};{};{}",
            self.protocol,
            self.version,
            self.node,
            self.auth.join(","),
            self.framings.join(",")
        )?;
        for (k, v) in &self.pairs {
            match v {
                Some(v) => write!(f, ";{k}={v}")?,
                None => write!(f, ";{k}")?,
            }
        }
        Ok(())
    }
}

fn split_list(field: &str) -> Vec<String> {
    field
        .split(',')
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

/// Greeting line 2: the nonce, which makes every transcript unique.
///
/// Perl sends 66 random bytes in standard base64 (88 characters); any line without CR or LF
/// is accepted from a peer (reference §4.3).
#[derive(Clone, Debug, Eq, Hash, PartialEq)]
pub struct Nonce(String);

impl Nonce {
    /// Makes a nonce line from 66 random bytes, base64-encoded as Perl does.
    pub fn from_random(bytes: &[u8; 66]) -> Self {
        Self(base64(bytes))
    }

    /// Wraps a nonce line received from a peer.
    ///
    /// # Errors
    ///
    /// Returns [`GreetingError::ForbiddenChar`] if the line contains CR or LF.
    pub fn from_line(line: &str) -> Result<Self, GreetingError> {
        check_line(line)?;
        Ok(Self(line.to_owned()))
    }

    /// The nonce line.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The auth line: `<method>;<token>;<framing>[;…]` (reference §4.8).
#[derive(Clone, Debug, Eq, PartialEq)]
pub struct AuthLine {
    /// The auth method the sender chose (from our list).
    pub method: String,
    /// The token, lowercase hex (empty for `tls_anon`).
    pub token: String,
    /// The framing the sender will send in.
    pub framing: String,
}

impl FromStr for AuthLine {
    type Err = GreetingError;

    /// Parses an auth line; fields after the third are ignored, as Perl does.
    fn from_str(line: &str) -> Result<Self, Self::Err> {
        check_line(line)?;
        let mut fields = line.split(';');
        let mut next = || fields.next().ok_or(GreetingError::TooFewFields);
        Ok(Self {
            method: next()?.to_owned(),
            token: next()?.to_owned(),
            framing: next()?.to_owned(),
        })
    }
}

impl fmt::Display for AuthLine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{};{};{}", self.method, self.token, self.framing)
    }
}

/// Why a handshake line could not be parsed.
#[derive(Clone, Debug, Eq, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum GreetingError {
    /// The line has fewer fields than its format requires (5 for a greeting, 3 for an auth
    /// line).
    #[error("line has too few ';'-separated fields")]
    TooFewFields,
    /// The node ID field is not a valid node ID.
    #[error("invalid node id in greeting: {0}")]
    BadNodeId(#[source] IdError),
    /// The line contains CR or LF, or another control character.
    #[error("line contains the control character {0:?}")]
    ForbiddenChar(char),
}

fn check_line(line: &str) -> Result<(), GreetingError> {
    match line.chars().find(|c| c.is_control()) {
        Some(c) => Err(GreetingError::ForbiddenChar(c)),
        None => Ok(()),
    }
}

/// Standard base64 with padding (RFC 4648), as Perl's MIME::Base64 without line breaks.
fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk.first().copied().unwrap_or(0),
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                // The index is a 6-bit value.
                out.push(char::from(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const PERL: &str = "aemp;1;seed;tls_md6_64_256,hmac_md6_64_256,tls_anon,cleartext;json,storable;\
                        peeraddr=127.0.0.1:32918;provider=AE-1.30";

    #[test]
    fn parses_a_perl_greeting() {
        let g: Greeting = PERL.parse().unwrap();
        assert_eq!(g.protocol, "aemp");
        assert!(g.is_version_1());
        assert_eq!(g.node.as_str(), "seed");
        assert_eq!(
            g.auth,
            ["tls_md6_64_256", "hmac_md6_64_256", "tls_anon", "cleartext"]
        );
        assert_eq!(g.framings, ["json", "storable"]);
        assert_eq!(g.pair("peeraddr"), Some(Some("127.0.0.1:32918")));
        assert_eq!(g.pair("missing"), None);
        assert!(!g.wants_tls());
        assert_eq!(g.to_string(), PERL);
    }

    #[test]
    fn too_few_fields() {
        assert_eq!(
            "aemp;1;seed;hmac_md6_64_256".parse::<Greeting>(),
            Err(GreetingError::TooFewFields)
        );
        assert_eq!("".parse::<Greeting>(), Err(GreetingError::TooFewFields));
    }

    #[test]
    fn bad_node_id() {
        assert!(matches!(
            "aemp;1;;hmac;json".parse::<Greeting>(),
            Err(GreetingError::BadNodeId(IdError::Empty))
        ));
        assert!(matches!(
            "aemp;1;a b;hmac;json".parse::<Greeting>(),
            Err(GreetingError::BadNodeId(_))
        ));
    }

    #[test]
    fn control_characters_are_refused() {
        assert_eq!(
            "aemp;1;x;hmac;json\r".parse::<Greeting>(),
            Err(GreetingError::ForbiddenChar('\r'))
        );
        assert_eq!(
            Nonce::from_line("ab\ncd"),
            Err(GreetingError::ForbiddenChar('\n'))
        );
        assert!("m;t;j\u{0}".parse::<AuthLine>().is_err());
    }

    #[test]
    fn pairs_without_values_and_empty_keys() {
        let g: Greeting = "aemp;1;x;;;tls=1.0;bare;=nokey;;k=a=b".parse().unwrap();
        assert!(g.auth.is_empty() && g.framings.is_empty());
        assert!(g.wants_tls());
        assert_eq!(g.pair("bare"), Some(None));
        assert_eq!(g.pair("k"), Some(Some("a=b")));
        assert_eq!(g.pairs.len(), 3);
    }

    #[test]
    fn tls_pair_is_read_as_an_integer() {
        for (v, want) in [
            ("1", true),
            ("1.0", true),
            ("1.9", true),
            ("0", false),
            ("x", false),
        ] {
            let g: Greeting = format!("aemp;1;x;a;json;tls={v}").parse().unwrap();
            assert_eq!(g.wants_tls(), want, "tls={v}");
        }
    }

    #[test]
    fn versions_compare_numerically() {
        for (v, want) in [
            ("1", true),
            ("1.0", true),
            (" 1", true),
            ("0", false),
            ("2", false),
        ] {
            let g: Greeting = format!("aemp;{v};x;a;json").parse().unwrap();
            assert_eq!(g.is_version_1(), want, "{v:?}");
        }
        let g: Greeting = "aemp;one;x;a;json".parse().unwrap();
        assert!(!g.is_version_1());
    }

    #[test]
    fn auth_lines() {
        let a: AuthLine = "hmac_md6_64_256;abcd;json;extra=1".parse().unwrap();
        assert_eq!(a.method, "hmac_md6_64_256");
        assert_eq!(a.token, "abcd");
        assert_eq!(a.framing, "json");
        assert_eq!(a.to_string(), "hmac_md6_64_256;abcd;json");
        let anon: AuthLine = "tls_anon;;json".parse().unwrap();
        assert_eq!(anon.token, "");
        assert_eq!(
            "hmac_md6_64_256;abcd".parse::<AuthLine>(),
            Err(GreetingError::TooFewFields)
        );
    }

    #[test]
    fn nonce_is_88_characters_of_base64() {
        let n = Nonce::from_random(&[0xff; 66]);
        assert_eq!(n.as_str().len(), 88);
        assert!(n.as_str().chars().all(|c| c == '/'));
        assert_eq!(base64(b"f"), "Zg==");
        assert_eq!(base64(b"fo"), "Zm8=");
        assert_eq!(base64(b"foo"), "Zm9v");
        assert_eq!(base64(b"foobar"), "Zm9vYmFy");
    }
}
