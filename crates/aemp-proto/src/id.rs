//! Node IDs, port IDs and the port-name generator (reference §1.1–1.2).
//!
//! ```
//! use aemp_proto::{NodeId, PortId};
//!
//! let port: PortId = "seed#KX7Dv0h8nK2DyFCY.b".parse()?;
//! assert_eq!(port.node().as_str(), "seed");
//! assert_eq!(port.name(), "KX7Dv0h8nK2DyFCY.b");
//! assert!(!port.is_node_port());
//!
//! let node: NodeId = "seed".parse()?;
//! assert_eq!(PortId::node_port(node.clone()).to_string(), "seed");
//! assert!("bad#node".parse::<NodeId>().is_err());
//! # Ok::<(), aemp_proto::IdError>(())
//! ```

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

/// A node ID: a non-empty string without `#`, `;`, `,`, control characters or whitespace,
/// and not `"0"` (which Perl treats as false).
///
/// Cheap to clone (reference-counted).
#[derive(Clone, Eq, Ord, PartialOrd)]
pub struct NodeId(Arc<str>);

impl std::hash::Hash for NodeId {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        // Consistent with `PartialEq`: equal IDs have equal strings.
        self.0.hash(state);
    }
}

impl PartialEq for NodeId {
    fn eq(&self, other: &Self) -> bool {
        // Clones of one ID share the allocation: the common case needs no string compare.
        Arc::ptr_eq(&self.0, &other.0) || self.0 == other.0
    }
}

impl NodeId {
    /// Validates and wraps a node ID.
    ///
    /// # Errors
    ///
    /// Returns [`IdError`] if `id` breaks one of the rules above or is longer than
    /// [`MAX_ID_LEN`] bytes.
    pub fn new(id: &str) -> Result<Self, IdError> {
        validate_node(id)?;
        Ok(Self(Arc::from(id)))
    }

    /// The ID as a string.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// `true` if both are clones of one `NodeId` value (not merely equal strings).
    pub fn same_allocation(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

impl fmt::Debug for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "NodeId({:?})", &*self.0)
    }
}

impl fmt::Display for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for NodeId {
    type Err = IdError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::new(s)
    }
}

impl AsRef<str> for NodeId {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

/// A port ID: `node#name`, or the bare node ID for the node port.
///
/// The name is opaque (it is whatever the owning node generated) but may not contain control
/// characters. Cheap to clone.
#[derive(Clone)]
pub struct PortId {
    node: NodeId,
    /// Empty for the node port.
    name: Arc<str>,
    /// A lookup hint the owning runtime may attach (0 = none); not part of the identity.
    hint: u64,
}

impl PartialEq for PortId {
    fn eq(&self, other: &Self) -> bool {
        self.node == other.node && self.name == other.name
    }
}

impl Eq for PortId {}

impl std::hash::Hash for PortId {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.node.hash(state);
        self.name.hash(state);
    }
}

impl PartialOrd for PortId {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for PortId {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (&self.node, &self.name).cmp(&(&other.node, &other.name))
    }
}

impl PortId {
    /// Builds a port ID from a node and a port name. An empty name is the node port.
    ///
    /// # Errors
    ///
    /// Returns [`IdError`] if the name contains control characters or is too long.
    pub fn new(node: NodeId, name: &str) -> Result<Self, IdError> {
        validate_name(name)?;
        Ok(Self {
            node,
            name: Arc::from(name),
            hint: 0,
        })
    }

    /// Attaches a lookup hint: an opaque number the runtime that owns the port can use to
    /// find it without parsing the name. Only that runtime should set it: a wrong hint on an
    /// ID that shares the runtime's `NodeId` allocation misdirects messages. It does not take part in equality, hashing,
    /// ordering or display, and IDs parsed from text carry none (0).
    #[doc(hidden)]
    #[must_use]
    pub fn with_hint(mut self, hint: u64) -> Self {
        self.hint = hint;
        self
    }

    /// The lookup hint attached by [`with_hint`](Self::with_hint), or 0.
    pub fn hint(&self) -> u64 {
        self.hint
    }

    /// The node port of `node` (its ID is the bare node ID).
    pub fn node_port(node: NodeId) -> Self {
        Self {
            node,
            name: Arc::from(""),
            hint: 0,
        }
    }

    /// The node this port lives on.
    pub fn node(&self) -> &NodeId {
        &self.node
    }

    /// The port name (the part after `#`); empty for the node port.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// `true` if this is a node port.
    pub fn is_node_port(&self) -> bool {
        self.name.is_empty()
    }
}

impl fmt::Debug for PortId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PortId({:?})", self.to_string())
    }
}

impl fmt::Display for PortId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.name.is_empty() {
            f.write_str(self.node.as_str())
        } else {
            write!(f, "{}#{}", self.node, self.name)
        }
    }
}

impl FromStr for PortId {
    type Err = IdError;

    /// Parses `node#name` (split at the first `#`) or a bare node ID.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.split_once('#') {
            Some((node, name)) => Self::new(NodeId::new(node)?, name),
            None => Ok(Self::node_port(NodeId::new(s)?)),
        }
    }
}

impl From<NodeId> for PortId {
    fn from(node: NodeId) -> Self {
        Self::node_port(node)
    }
}

impl serde::Serialize for NodeId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de> serde::Deserialize<'de> for NodeId {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        Self::new(&s).map_err(serde::de::Error::custom)
    }
}

impl serde::Serialize for PortId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for PortId {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// Generates port names that are never reused: `<base62 of 96 random bits>.<counter>`.
///
/// The random part comes from the caller (this crate has no RNG), so it is unique per process
/// run and node; the counter makes names unique within the run (reference §1.2, SPEC promise 3).
///
/// ```
/// use aemp_proto::PortNameGenerator;
/// let mut names = PortNameGenerator::new([7; 12]);
/// let a = names.next_name();
/// let b = names.next_name();
/// assert_ne!(a, b);
/// assert!(a.starts_with(names.prefix()));
/// ```
#[derive(Clone, Debug)]
pub struct PortNameGenerator {
    prefix: String,
    counter: u64,
}

impl PortNameGenerator {
    /// Creates a generator from 96 random bits.
    pub fn new(random: [u8; 12]) -> Self {
        Self {
            prefix: base62(&random),
            counter: 0,
        }
    }

    /// The random prefix shared by every name of this generator.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// Returns the counter value the next name will carry.
    pub fn counter(&self) -> u64 {
        self.counter
    }

    /// Returns a new, never before returned, port name.
    pub fn next_name(&mut self) -> String {
        let name = format_name(&self.prefix, self.counter);
        self.counter += 1;
        name
    }
}

/// Formats a generated port name from its prefix and counter.
pub fn format_name(prefix: &str, counter: u64) -> String {
    let mut name = String::with_capacity(prefix.len() + 12);
    name.push_str(prefix);
    name.push('.');
    push_base62(&mut name, u128::from(counter));
    name
}

/// Decodes the counter part of a name made by [`format_name`] (base 62, no leading zeros):
/// `None` for anything `format_name` never writes.
///
/// ```
/// use aemp_proto::id::{format_name, parse_counter};
/// let name = format_name("P", 12345);
/// assert_eq!(parse_counter(name.strip_prefix("P.").unwrap()), Some(12345));
/// assert_eq!(parse_counter("01"), None);
/// ```
pub fn parse_counter(digits: &str) -> Option<u64> {
    if digits.is_empty() || digits.len() > 11 {
        return None;
    }
    let mut n: u64 = 0;
    for b in digits.bytes() {
        let d = match b {
            b'0'..=b'9' => b - b'0',
            b'A'..=b'Z' => b - b'A' + 10,
            b'a'..=b'z' => b - b'a' + 36,
            _ => return None,
        };
        n = n.checked_mul(62)?.checked_add(u64::from(d))?;
    }
    // format_name never writes leading zeros; a name with them is not one of ours.
    (digits.len() == 1 || !digits.starts_with('0')).then_some(n)
}

/// Encodes bytes as a big-endian integer in base 62 (digits `0-9A-Za-z`), as Perl's
/// `alnumbits` does with Math::GMP.
pub fn base62(bytes: &[u8; 12]) -> String {
    let mut n: u128 = 0;
    for &b in bytes {
        n = (n << 8) | u128::from(b);
    }
    let mut s = String::with_capacity(17);
    push_base62(&mut s, n);
    s
}

fn push_base62(out: &mut String, mut n: u128) {
    const DIGITS: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    let mut buf = [0_u8; 24];
    let mut i = buf.len();
    loop {
        i -= 1;
        // The remainder is < 62, so the index is in range.
        buf[i] = DIGITS[(n % 62) as usize];
        n /= 62;
        if n == 0 {
            break;
        }
    }
    out.extend(buf[i..].iter().map(|&b| char::from(b)));
}

/// Why a node or port ID was refused.
#[derive(Clone, Debug, Eq, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum IdError {
    /// A node ID must not be empty.
    #[error("node id is empty")]
    Empty,
    /// `"0"` is false in Perl, so Perl nodes cannot use it as a node ID.
    #[error("node id \"0\" is not allowed (it is false in Perl)")]
    Zero,
    /// The ID contains a character that would break the wire format.
    #[error("{what} contains the forbidden character {ch:?}")]
    ForbiddenChar {
        /// `"node id"` or `"port name"`.
        what: &'static str,
        /// The offending character.
        ch: char,
    },
    /// The ID is longer than [`MAX_ID_LEN`].
    #[error("{what} is longer than {MAX_ID_LEN} bytes")]
    TooLong {
        /// `"node id"` or `"port name"`.
        what: &'static str,
    },
}

fn validate_node(id: &str) -> Result<(), IdError> {
    if id.is_empty() {
        return Err(IdError::Empty);
    }
    if id == "0" {
        return Err(IdError::Zero);
    }
    if id.len() > MAX_ID_LEN {
        return Err(IdError::TooLong { what: "node id" });
    }
    if let Some(ch) = id
        .chars()
        .find(|&c| matches!(c, '#' | ';' | ',') || c.is_whitespace() || c.is_control())
    {
        return Err(IdError::ForbiddenChar {
            what: "node id",
            ch,
        });
    }
    Ok(())
}

fn validate_name(name: &str) -> Result<(), IdError> {
    if name.len() > MAX_ID_LEN {
        return Err(IdError::TooLong { what: "port name" });
    }
    if let Some(ch) = name.chars().find(|c| c.is_control()) {
        return Err(IdError::ForbiddenChar {
            what: "port name",
            ch,
        });
    }
    Ok(())
}

/// Longest accepted node ID or port name, in bytes. Perl imposes no limit, but a greeting
/// line must fit in 4 KiB, and no real ID comes near this.
pub const MAX_ID_LEN: usize = 1024;

#[cfg(test)]
mod tests {
    #[test]
    fn base62_counters_round_trip() {
        use super::{format_name, parse_counter};
        for n in [0_u64, 1, 61, 62, 12345, u64::from(u32::MAX), u64::MAX] {
            let name = format_name("P", n);
            let digits = name.strip_prefix("P.").unwrap();
            assert_eq!(parse_counter(digits), Some(n), "{name}");
        }
        assert_eq!(parse_counter("01"), None);
        assert_eq!(parse_counter(""), None);
        assert_eq!(parse_counter("a-b"), None);
        assert_eq!(parse_counter("zzzzzzzzzzzz"), None);
    }

    use super::*;

    #[test]
    fn node_ids() {
        assert!(NodeId::new("anon/KX7Dv0h8nK2DyFCY").is_ok());
        assert!(NodeId::new("host.example:4040").is_ok());
        assert_eq!(NodeId::new(""), Err(IdError::Empty));
        assert_eq!(NodeId::new("0"), Err(IdError::Zero));
        for bad in ["a#b", "a;b", "a,b", "a b", "a\nb", "a\rb", "a\tb"] {
            assert!(
                matches!(NodeId::new(bad), Err(IdError::ForbiddenChar { .. })),
                "{bad:?}"
            );
        }
        assert_eq!(
            NodeId::new(&"x".repeat(MAX_ID_LEN + 1)),
            Err(IdError::TooLong { what: "node id" })
        );
    }

    #[test]
    fn port_ids() {
        let p: PortId = "n#a#b".parse().unwrap();
        assert_eq!(p.node().as_str(), "n");
        assert_eq!(p.name(), "a#b");
        assert_eq!(p.to_string(), "n#a#b");
        let np: PortId = "n".parse().unwrap();
        assert!(np.is_node_port());
        let np2: PortId = "n#".parse().unwrap();
        assert_eq!(np, np2);
        assert!("#x".parse::<PortId>().is_err());
        assert!("n#a\nb".parse::<PortId>().is_err());
    }

    #[test]
    fn base62_matches_gmp_style() {
        assert_eq!(base62(&[0; 12]), "0");
        let mut one = [0; 12];
        one[11] = 61;
        assert_eq!(base62(&one), "z");
        one[11] = 62;
        assert_eq!(base62(&one), "10");
        assert_eq!(base62(&[0xff; 12]).len(), 17);
    }

    #[test]
    fn generated_names_are_unique_and_valid() {
        let mut g = PortNameGenerator::new([1; 12]);
        let names: std::collections::HashSet<_> = (0..1000).map(|_| g.next_name()).collect();
        assert_eq!(names.len(), 1000);
        for n in &names {
            PortId::new(NodeId::new("x").unwrap(), n).unwrap();
            assert!(!n.contains(['#', ';', ' ']));
        }
    }
}
