//! Authentication: the four auth methods, token construction and constant-time verification
//! (reference §4.6–4.7).
//!
//! The transcript of a side is its own two greeting lines followed by the peer's, each ended
//! by LF: `T_own = L1 LF L2 LF P1 LF P2 LF`. Tokens:
//!
//! | method | token |
//! |---|---|
//! | `hmac_md6_64_256` | `hex(HMAC_MD6(key = T_own, message = MD6-256(secret)))`, 64-byte block |
//! | `tls_md6_64_256` | `hex(MD6-256(T_own))`, only inside TLS |
//! | `tls_anon` | empty, only inside TLS |
//! | `cleartext` | `hex(secret)` |
//!
//! The HMAC key is the transcript and the message is the hashed secret. The Perl POD reads the
//! other way round, but the code (and every captured session) does it this way.
//!
//! ```
//! use aemp_proto::auth::{AuthMethod, Secret, Transcript};
//!
//! let secret = Secret::new("geheim");
//! let t = Transcript::new("aemp;1;a;hmac_md6_64_256;json", "nonceA", "aemp;1;b;hmac_md6_64_256;json", "nonceB");
//! let token = AuthMethod::HmacMd6.token(&t.own(), Some(&secret), true).expect("producible");
//! // The peer computes the same value from its point of view (its `peer()` transcript).
//! assert!(AuthMethod::HmacMd6.verify(&token, &t.own(), Some(&secret), true));
//! ```

use std::fmt;
use std::str::FromStr;

use crate::md6::{hmac_md6_256, md6_256};

/// An authentication method named in greetings and auth lines.
#[derive(Clone, Copy, Debug, Eq, Hash, PartialEq)]
#[non_exhaustive]
pub enum AuthMethod {
    /// `tls_md6_64_256`: inside TLS, the token is the MD6 of the transcript.
    TlsMd6,
    /// `hmac_md6_64_256`: HMAC-MD6 of the hashed shared secret, keyed by the transcript.
    HmacMd6,
    /// `tls_anon`: inside TLS, no token. Accepted only when configured.
    TlsAnon,
    /// `cleartext`: the secret in hex. Accepted only when configured.
    Cleartext,
}

impl AuthMethod {
    /// All methods, in Perl's default preference order.
    pub const ALL: [Self; 4] = [Self::TlsMd6, Self::HmacMd6, Self::TlsAnon, Self::Cleartext];

    /// The name used on the wire.
    pub fn name(self) -> &'static str {
        match self {
            Self::TlsMd6 => "tls_md6_64_256",
            Self::HmacMd6 => "hmac_md6_64_256",
            Self::TlsAnon => "tls_anon",
            Self::Cleartext => "cleartext",
        }
    }

    /// `true` for the methods that only work inside TLS.
    pub fn needs_tls(self) -> bool {
        matches!(self, Self::TlsMd6 | Self::TlsAnon)
    }

    /// `true` for the methods that need the shared secret.
    pub fn needs_secret(self) -> bool {
        matches!(self, Self::HmacMd6 | Self::Cleartext)
    }

    /// Whether this side can produce a token with this method.
    pub fn is_producible(self, secret: Option<&Secret>, tls_active: bool) -> bool {
        (!self.needs_tls() || tls_active) && (!self.needs_secret() || secret.is_some())
    }

    /// Computes the token this side sends, given its own transcript.
    ///
    /// Returns `None` if the method cannot be produced (it needs TLS that is not active, or a
    /// secret that is not configured).
    pub fn token(self, own: &[u8], secret: Option<&Secret>, tls_active: bool) -> Option<String> {
        if !self.is_producible(secret, tls_active) {
            return None;
        }
        Some(match self {
            Self::TlsMd6 => hex(&md6_256(own)),
            Self::TlsAnon => String::new(),
            Self::HmacMd6 => hex(&hmac_md6_256(own, &secret?.hashed())),
            Self::Cleartext => hex(&secret?.0),
        })
    }

    /// Verifies a token received from the peer, given the peer's transcript (`T_peer`).
    ///
    /// The comparison takes the same time wherever the first difference is.
    pub fn verify(
        self,
        token: &str,
        peer: &[u8],
        secret: Option<&Secret>,
        tls_active: bool,
    ) -> bool {
        match self.token(peer, secret, tls_active) {
            Some(expected) => constant_time_eq(expected.as_bytes(), token.as_bytes()),
            None => false,
        }
    }
}

impl fmt::Display for AuthMethod {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for AuthMethod {
    type Err = UnknownAuthMethod;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|m| m.name() == s)
            .ok_or_else(|| UnknownAuthMethod(s.to_owned()))
    }
}

/// An auth method name this implementation does not know.
#[derive(Clone, Debug, Eq, PartialEq, thiserror::Error)]
#[error("unknown auth method {0:?}")]
pub struct UnknownAuthMethod(pub String);

/// The shared secret. Its `Debug` output never shows the value.
#[derive(Clone, Eq, PartialEq)]
pub struct Secret(Vec<u8>);

impl Secret {
    /// Wraps a secret (any string; Perl uses its bytes as they are).
    pub fn new(secret: impl Into<Vec<u8>>) -> Self {
        Self(secret.into())
    }

    /// MD6-256 of the secret: the message the HMAC authenticates.
    pub fn hashed(&self) -> [u8; 32] {
        md6_256(&self.0)
    }

    /// The secret's bytes.
    pub fn expose(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(..)")
    }
}

/// Both sides' greeting lines, from which the two transcripts are built.
#[derive(Clone, Debug)]
pub struct Transcript {
    own: Vec<u8>,
    peer_first: Vec<u8>,
}

impl Transcript {
    /// Builds the transcripts from our two lines and the peer's two lines (without line ends).
    pub fn new(own1: &str, own2: &str, peer1: &str, peer2: &str) -> Self {
        let join = |parts: [&str; 4]| {
            let mut t = Vec::with_capacity(parts.iter().map(|p| p.len() + 1).sum());
            for p in parts {
                t.extend_from_slice(p.as_bytes());
                t.push(b'\n');
            }
            t
        };
        Self {
            own: join([own1, own2, peer1, peer2]),
            peer_first: join([peer1, peer2, own1, own2]),
        }
    }

    /// `T_own`: our lines first; used for the token we send.
    pub fn own(&self) -> &[u8] {
        &self.own
    }

    /// `T_peer`: the peer's lines first; used to verify the token we receive.
    pub fn peer(&self) -> &[u8] {
        &self.peer_first
    }
}

/// Picks the method we send: the first entry of the peer's list that is in our `offer` and
/// that we can produce (reference §4.6). Unknown names in the peer's list are skipped.
///
/// Perl takes the first entry in its offer and gives up if it cannot produce it; skipping to
/// the next producible one is never worse and avoids Perl's TLS ordering trap.
pub fn choose_method(
    peer_list: &[String],
    offer: &[AuthMethod],
    secret: Option<&Secret>,
    tls_active: bool,
) -> Option<AuthMethod> {
    peer_list
        .iter()
        .filter_map(|name| name.parse::<AuthMethod>().ok())
        .find(|m| offer.contains(m) && m.is_producible(secret, tls_active))
}

/// Compares two byte strings in time that depends only on their lengths.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let diff = a.iter().zip(b).fold(0_u8, |acc, (x, y)| acc | (x ^ y));
    // black_box keeps the optimiser from turning the fold into an early-exit comparison.
    std::hint::black_box(diff) == 0
}

/// Lowercase hex.
pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for &b in bytes {
        s.push(char::from(DIGITS[usize::from(b >> 4)]));
        s.push(char::from(DIGITS[usize::from(b & 15)]));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t() -> Transcript {
        Transcript::new("a1", "a2", "b1", "b2")
    }

    #[test]
    fn transcripts_put_the_right_side_first() {
        assert_eq!(t().own(), b"a1\na2\nb1\nb2\n");
        assert_eq!(t().peer(), b"b1\nb2\na1\na2\n");
    }

    #[test]
    fn method_names_round_trip() {
        for m in AuthMethod::ALL {
            assert_eq!(m.name().parse::<AuthMethod>(), Ok(m));
        }
        assert!("storable".parse::<AuthMethod>().is_err());
    }

    #[test]
    fn producibility() {
        let s = Secret::new("x");
        assert!(AuthMethod::HmacMd6.is_producible(Some(&s), false));
        assert!(!AuthMethod::HmacMd6.is_producible(None, true));
        assert!(!AuthMethod::TlsMd6.is_producible(Some(&s), false));
        assert!(AuthMethod::TlsAnon.is_producible(None, true));
        assert_eq!(AuthMethod::TlsMd6.token(b"t", Some(&s), false), None);
    }

    #[test]
    fn cleartext_and_anon_tokens() {
        let s = Secret::new("geheim");
        assert_eq!(
            AuthMethod::Cleartext.token(b"ignored", Some(&s), false),
            Some("67656865696d".to_owned())
        );
        assert_eq!(
            AuthMethod::TlsAnon.token(b"x", None, true),
            Some(String::new())
        );
        assert!(AuthMethod::TlsAnon.verify("", b"x", None, true));
        assert!(!AuthMethod::TlsAnon.verify("", b"x", None, false));
    }

    #[test]
    fn verification_rejects_wrong_tokens() {
        let s = Secret::new("geheim");
        let tok = AuthMethod::HmacMd6
            .token(t().own(), Some(&s), false)
            .unwrap();
        // The peer verifies with its T_peer, which is our T_own.
        assert!(AuthMethod::HmacMd6.verify(&tok, t().own(), Some(&s), false));
        assert!(!AuthMethod::HmacMd6.verify(&tok, t().peer(), Some(&s), false));
        assert!(!AuthMethod::HmacMd6.verify(&tok, t().own(), Some(&Secret::new("x")), false));
        assert!(!AuthMethod::HmacMd6.verify(&tok[1..], t().own(), Some(&s), false));
        assert!(!AuthMethod::HmacMd6.verify(&tok, t().own(), None, false));
    }

    #[test]
    fn choosing_follows_the_peer_order_and_skips_what_we_cannot_produce() {
        let perl: Vec<String> = AuthMethod::ALL
            .iter()
            .map(|m| m.name().to_owned())
            .collect();
        let offer = [AuthMethod::TlsMd6, AuthMethod::HmacMd6];
        let s = Secret::new("x");
        assert_eq!(
            choose_method(&perl, &offer, Some(&s), true),
            Some(AuthMethod::TlsMd6)
        );
        assert_eq!(
            choose_method(&perl, &offer, Some(&s), false),
            Some(AuthMethod::HmacMd6)
        );
        assert_eq!(choose_method(&perl, &offer, None, false), None);
        let hmac_first = vec!["hmac_md6_64_256".to_owned(), "tls_md6_64_256".to_owned()];
        assert_eq!(
            choose_method(&hmac_first, &offer, None, true),
            Some(AuthMethod::TlsMd6)
        );
        assert_eq!(
            choose_method(&["storable".to_owned()], &offer, Some(&s), false),
            None
        );
    }

    #[test]
    fn constant_time_comparison() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"ab"));
        assert!(constant_time_eq(b"", b""));
    }

    #[test]
    fn secrets_do_not_leak_through_debug() {
        assert_eq!(format!("{:?}", Secret::new("hunter2")), "Secret(..)");
    }
}
