//! The dynamic message value and the message type.
//!
//! AEMP messages are arrays of dynamically typed values, as in Perl. [`Value`] is that value;
//! [`Message`] is one message (the elements after the destination port). Both convert from and
//! to any `serde` type:
//!
//! ```
//! use aemp_proto::{Message, Value};
//!
//! let msg = Message::from_serialize(&("ping", 7_u32, [1.5_f64, 2.5]))?;
//! assert_eq!(msg[0], Value::from("ping"));
//! let (tag, n, floats): (String, u32, Vec<f64>) = msg.decode()?;
//! assert_eq!((tag.as_str(), n, floats), ("ping", 7, vec![1.5, 2.5]));
//! # Ok::<(), aemp_proto::ValueError>(())
//! ```
//!
//! # Perl's habits
//!
//! A Perl node may send the same logical value as a string or as a number (`"1"` or `1`), and it
//! sends byte strings as JSON strings of code points U+0000–U+00FF. Decoding into Rust types
//! therefore accepts a numeric string where a number is expected, a number where a string is
//! expected, and a string of code points ≤ U+00FF where bytes are expected.
//! [`Value::to_perl_string`] gives the string Perl would compare a tag with.

use std::borrow::Cow;
use std::fmt;
use std::ops::{Deref, DerefMut};

use smallvec::SmallVec;

mod de;
mod ser;

pub use de::from_value;
pub use ser::to_value;

/// One dynamically typed value inside a message.
///
/// Integers are kept in a canonical form: every integer that fits an `i64` is [`Value::Int`];
/// [`Value::UInt`] holds only values above `i64::MAX`. The `From` conversions and all decoders
/// keep that form, and equality treats `Int(5)` and `UInt(5)` as equal anyway.
#[derive(Clone, Debug, Default)]
pub enum Value {
    /// No value (JSON `null`, Perl `undef`).
    #[default]
    Null,
    /// A boolean.
    Bool(bool),
    /// A signed integer.
    Int(i64),
    /// An unsigned integer above `i64::MAX`.
    UInt(u64),
    /// A double-precision float.
    Float(f64),
    /// A text string.
    String(String),
    /// A byte string. In JSON it travels as a string of code points U+0000–U+00FF.
    Bytes(Vec<u8>),
    /// An array.
    Array(Vec<Self>),
    /// A map, in insertion order. JSON maps have string keys; CBOR maps may have any key.
    Map(Vec<(Self, Self)>),
}

impl Value {
    /// Returns the string if this is a [`Value::String`].
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Self::String(s) => Some(s),
            _ => None,
        }
    }

    /// Returns the value as an `i64` if it is an integer that fits.
    pub fn as_i64(&self) -> Option<i64> {
        match *self {
            Self::Int(i) => Some(i),
            Self::UInt(u) => i64::try_from(u).ok(),
            _ => None,
        }
    }

    /// Returns the value as a `u64` if it is a non-negative integer.
    pub fn as_u64(&self) -> Option<u64> {
        match *self {
            Self::Int(i) => u64::try_from(i).ok(),
            Self::UInt(u) => Some(u),
            _ => None,
        }
    }

    /// Returns the value as an `f64` if it is a number (integers are converted).
    #[allow(clippy::cast_precision_loss)] // Intended: Perl numbers are doubles too.
    pub fn as_f64(&self) -> Option<f64> {
        match *self {
            Self::Int(i) => Some(i as f64),
            Self::UInt(u) => Some(u as f64),
            Self::Float(f) => Some(f),
            _ => None,
        }
    }

    /// Returns the elements if this is an array.
    pub fn as_array(&self) -> Option<&[Self]> {
        match self {
            Self::Array(a) => Some(a),
            _ => None,
        }
    }

    /// Returns `true` for [`Value::Null`].
    pub fn is_null(&self) -> bool {
        matches!(self, Self::Null)
    }

    /// Looks up a string key in a map (the first entry with that key).
    ///
    /// ```
    /// use aemp_proto::Value;
    /// let v = Value::Map(vec![(Value::from("k"), Value::from(1))]);
    /// assert_eq!(v.get("k"), Some(&Value::from(1)));
    /// assert_eq!(v.get("x"), None);
    /// ```
    pub fn get(&self, key: &str) -> Option<&Self> {
        match self {
            Self::Map(entries) => entries
                .iter()
                .find(|(k, _)| k.as_str() == Some(key))
                .map(|(_, v)| v),
            _ => None,
        }
    }

    /// The string Perl would see when it uses this value as a hash key or compares it as a
    /// string: integers in decimal, floats like Perl's `%.15g`, `null` as `""`, booleans as
    /// `"1"`/`""`, byte strings as their code points.
    ///
    /// Returns `None` for arrays and maps, which have no useful string form.
    ///
    /// ```
    /// use aemp_proto::Value;
    /// assert_eq!(Value::from(1).to_perl_string().as_deref(), Some("1"));
    /// assert_eq!(Value::from("1").to_perl_string().as_deref(), Some("1"));
    /// assert_eq!(Value::Float(0.1).to_perl_string().as_deref(), Some("0.1"));
    /// assert_eq!(Value::Null.to_perl_string().as_deref(), Some(""));
    /// ```
    pub fn to_perl_string(&self) -> Option<Cow<'_, str>> {
        Some(match self {
            Self::Null => Cow::Borrowed(""),
            Self::Bool(true) => Cow::Borrowed("1"),
            Self::Bool(false) => Cow::Borrowed(""),
            Self::Int(i) => Cow::Owned(i.to_string()),
            Self::UInt(u) => Cow::Owned(u.to_string()),
            Self::Float(f) => Cow::Owned(perl_float(*f)),
            Self::String(s) => Cow::Borrowed(s.as_str()),
            Self::Bytes(b) => Cow::Owned(b.iter().map(|&b| char::from(b)).collect()),
            Self::Array(_) | Self::Map(_) => return None,
        })
    }

    /// Compares this value with a tag the way Perl compares strings: `1`, `1.0` and `"1"` all
    /// match the tag `"1"`.
    ///
    /// ```
    /// use aemp_proto::Value;
    /// assert!(Value::from(1).matches_tag("1"));
    /// assert!(Value::from("ping").matches_tag("ping"));
    /// assert!(!Value::from("ping").matches_tag("pong"));
    /// ```
    pub fn matches_tag(&self, tag: &str) -> bool {
        match self {
            Self::String(s) => s == tag,
            other => other.to_perl_string().is_some_and(|s| s == tag),
        }
    }

    /// Converts the value into any `Deserialize` type.
    ///
    /// # Errors
    ///
    /// Returns [`ValueError`] if the value does not have the shape `T` expects.
    pub fn decode<'de, T: serde::Deserialize<'de>>(&'de self) -> Result<T, ValueError> {
        de::from_ref(self)
    }
}

/// Formats a float like Perl's default number stringification (`%.15g`).
fn perl_float(f: f64) -> String {
    if f.is_nan() {
        return "NaN".to_owned();
    }
    if f.is_infinite() {
        return if f > 0.0 { "Inf" } else { "-Inf" }.to_owned();
    }
    if f == 0.0 {
        return "0".to_owned();
    }
    // %.15g: 15 significant digits, exponent form when exp < -4 or exp >= 15.
    let sci = format!("{f:.14e}");
    let (mantissa, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let trim = |s: &str| -> String {
        if s.contains('.') {
            s.trim_end_matches('0').trim_end_matches('.').to_owned()
        } else {
            s.to_owned()
        }
    };
    if !(-4..15).contains(&exp) {
        let sign = if exp < 0 { '-' } else { '+' };
        format!("{}e{sign}{:02}", trim(mantissa), exp.abs())
    } else {
        let decimals = usize::try_from(14 - exp).unwrap_or(0);
        trim(&format!("{f:.decimals$}"))
    }
}

impl PartialEq for Value {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (Self::Null, Self::Null) => true,
            (Self::Bool(a), Self::Bool(b)) => a == b,
            (Self::Int(_) | Self::UInt(_), Self::Int(_) | Self::UInt(_)) => {
                self.as_i64() == other.as_i64() && self.as_u64() == other.as_u64()
            }
            (Self::Float(a), Self::Float(b)) => a == b,
            (Self::String(a), Self::String(b)) => a == b,
            (Self::Bytes(a), Self::Bytes(b)) => a == b,
            (Self::Array(a), Self::Array(b)) => a == b,
            (Self::Map(a), Self::Map(b)) => a == b,
            _ => false,
        }
    }
}

impl fmt::Display for Value {
    /// Displays the value as compact JSON (bytes as a string of code points).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut out = Vec::new();
        crate::framing::json::encode_value(self, &mut out);
        f.write_str(&String::from_utf8_lossy(&out))
    }
}

macro_rules! from_signed {
    ($($t:ty),*) => {$(
        impl From<$t> for Value {
            fn from(v: $t) -> Self {
                Self::Int(i64::from(v))
            }
        }
    )*};
}
from_signed!(i8, i16, i32, i64);

macro_rules! from_unsigned {
    ($($t:ty),*) => {$(
        impl From<$t> for Value {
            fn from(v: $t) -> Self {
                Self::from_u64(u64::from(v))
            }
        }
    )*};
}
from_unsigned!(u8, u16, u32, u64);

impl From<usize> for Value {
    fn from(v: usize) -> Self {
        Self::from_u64(v as u64)
    }
}

impl From<isize> for Value {
    fn from(v: isize) -> Self {
        Self::Int(v as i64)
    }
}

impl Value {
    /// Builds an integer value in canonical form.
    pub fn from_u64(v: u64) -> Self {
        match i64::try_from(v) {
            Ok(i) => Self::Int(i),
            Err(_) => Self::UInt(v),
        }
    }
}

impl From<bool> for Value {
    fn from(v: bool) -> Self {
        Self::Bool(v)
    }
}

impl From<f64> for Value {
    fn from(v: f64) -> Self {
        Self::Float(v)
    }
}

impl From<f32> for Value {
    fn from(v: f32) -> Self {
        Self::Float(f64::from(v))
    }
}

impl From<&str> for Value {
    fn from(v: &str) -> Self {
        Self::String(v.to_owned())
    }
}

impl From<String> for Value {
    fn from(v: String) -> Self {
        Self::String(v)
    }
}

impl From<Vec<Self>> for Value {
    fn from(v: Vec<Self>) -> Self {
        Self::Array(v)
    }
}

impl From<crate::PortId> for Value {
    /// A port ID travels as its string form `node#name`, as in AEMP.
    fn from(port: crate::PortId) -> Self {
        Self::String(port.to_string())
    }
}

impl From<&crate::PortId> for Value {
    fn from(port: &crate::PortId) -> Self {
        Self::String(port.to_string())
    }
}

impl From<crate::NodeId> for Value {
    fn from(node: crate::NodeId) -> Self {
        Self::String(node.as_str().to_owned())
    }
}

impl From<&crate::NodeId> for Value {
    fn from(node: &crate::NodeId) -> Self {
        Self::String(node.as_str().to_owned())
    }
}

impl<T: Into<Self>> From<Option<T>> for Value {
    fn from(v: Option<T>) -> Self {
        v.map_or(Self::Null, Into::into)
    }
}

/// One AEMP message: the elements that follow the destination port.
///
/// A message dereferences to `[Value]`, so `msg[0]` is its first element (usually the tag).
/// Up to [`Message::INLINE`] elements are stored inline, so a small message of scalars costs
/// no heap allocation.
///
/// ```
/// use aemp_proto::{Message, Value};
/// let mut msg = Message::from(vec![Value::from("tag")]);
/// msg.push(Value::from(1));
/// assert_eq!(msg.len(), 2);
/// let elements: Vec<Value> = msg.into_inner();
/// assert_eq!(elements[1], Value::from(1));
/// ```
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Message(SmallVec<[Value; INLINE]>);

impl Message {
    /// How many elements a message holds without a heap allocation.
    pub const INLINE: usize = INLINE;

    /// Creates a message from its elements.
    pub fn new(elements: Vec<Value>) -> Self {
        Self(SmallVec::from_vec(elements))
    }

    /// An empty message.
    pub fn empty() -> Self {
        Self(SmallVec::new())
    }

    /// An empty message with room for `n` elements (inline, without allocating, up to
    /// [`Message::INLINE`]).
    pub fn with_capacity(n: usize) -> Self {
        Self(SmallVec::with_capacity(n))
    }

    /// Builds a message from any value that serializes as a sequence (a tuple, array or `Vec`).
    ///
    /// # Errors
    ///
    /// Returns [`ValueError`] if `value` does not serialize to an array.
    pub fn from_serialize<T: serde::Serialize + ?Sized>(value: &T) -> Result<Self, ValueError> {
        match to_value(value)? {
            Value::Array(elements) => Ok(Self::new(elements)),
            other => Err(ValueError::NotAnArray(kind_of(&other))),
        }
    }

    /// Decodes the whole message (as an array) into any `Deserialize` type, typically a tuple.
    ///
    /// # Errors
    ///
    /// Returns [`ValueError`] if the message does not have the shape `T` expects.
    pub fn decode<'de, T: serde::Deserialize<'de>>(&'de self) -> Result<T, ValueError> {
        de::from_slice(&self.0)
    }

    /// Decodes element `index` into any `Deserialize` type.
    ///
    /// # Errors
    ///
    /// Returns [`ValueError::MissingElement`] if the message is shorter, or a shape error.
    pub fn decode_element<'de, T: serde::Deserialize<'de>>(
        &'de self,
        index: usize,
    ) -> Result<T, ValueError> {
        self.0
            .get(index)
            .ok_or(ValueError::MissingElement(index))?
            .decode()
    }

    /// Appends an element.
    pub fn push(&mut self, value: Value) {
        self.0.push(value);
    }

    /// Appends elements.
    pub fn extend(&mut self, values: impl IntoIterator<Item = Value>) {
        self.0.extend(values);
    }

    /// Removes and returns the first element (`None` if empty). Linear in the length.
    pub fn take_first(&mut self) -> Option<Value> {
        (!self.0.is_empty()).then(|| self.0.remove(0))
    }

    /// The elements as a `Vec`.
    pub fn into_inner(self) -> Vec<Value> {
        self.0.into_vec()
    }
}

impl fmt::Display for Message {
    /// Displays the message as a compact JSON array.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut out = Vec::new();
        out.push(b'[');
        for (i, v) in self.0.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            crate::framing::json::encode_value(v, &mut out);
        }
        out.push(b']');
        f.write_str(&String::from_utf8_lossy(&out))
    }
}

impl Deref for Message {
    type Target = [Value];

    fn deref(&self) -> &Self::Target {
        &self.0
    }
}

impl DerefMut for Message {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.0
    }
}

impl From<Vec<Value>> for Message {
    fn from(v: Vec<Value>) -> Self {
        Self::new(v)
    }
}

impl<const N: usize> From<[Value; N]> for Message {
    /// Builds a message from an array of values, inline when it fits.
    fn from(values: [Value; N]) -> Self {
        if N <= INLINE {
            // Fill the inline buffer directly: the common small message costs no loop.
            let mut it = values.into_iter();
            let buf = [it.next().unwrap_or_default(), it.next().unwrap_or_default()];
            return Self(SmallVec::from_buf_and_len(buf, N));
        }
        Self(values.into_iter().collect())
    }
}

impl FromIterator<Value> for Message {
    fn from_iter<I: IntoIterator<Item = Value>>(iter: I) -> Self {
        Self(iter.into_iter().collect())
    }
}

impl IntoIterator for Message {
    type Item = Value;
    type IntoIter = smallvec::IntoIter<[Value; INLINE]>;

    fn into_iter(self) -> Self::IntoIter {
        self.0.into_iter()
    }
}

impl<'a> IntoIterator for &'a Message {
    type Item = &'a Value;
    type IntoIter = std::slice::Iter<'a, Value>;

    fn into_iter(self) -> Self::IntoIter {
        self.0.iter()
    }
}

/// Elements stored inline in a [`Message`].
const INLINE: usize = 2;

/// Why a value could not be converted to or from a Rust type.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum ValueError {
    /// A message was built from something that is not a sequence.
    #[error("a message must serialize to an array, got {0}")]
    NotAnArray(&'static str),
    /// The message has fewer elements than the element asked for.
    #[error("message has no element {0}")]
    MissingElement(usize),
    /// The value does not have the shape the target type expects.
    #[error("invalid type: expected {expected}, found {found}")]
    InvalidType {
        /// What the target type wanted.
        expected: String,
        /// The kind of value found.
        found: &'static str,
    },
    /// A number does not fit the target type.
    #[error("number {0} out of range for the target type")]
    OutOfRange(String),
    /// Any other error reported by a `Serialize` or `Deserialize` implementation.
    #[error("{0}")]
    Custom(String),
}

/// A short name of a value's kind, for error messages.
pub(crate) fn kind_of(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Int(_) | Value::UInt(_) => "integer",
        Value::Float(_) => "float",
        Value::String(_) => "string",
        Value::Bytes(_) => "bytes",
        Value::Array(_) => "array",
        Value::Map(_) => "map",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn perl_float_formatting() {
        assert_eq!(perl_float(1.5), "1.5");
        assert_eq!(perl_float(1_795_652_928.585_23), "1795652928.58523");
        assert_eq!(perl_float(1e15), "1e+15");
        assert_eq!(perl_float(123_456_789_012_345.0), "123456789012345");
        assert_eq!(perl_float(0.0001), "0.0001");
        assert_eq!(perl_float(0.00001), "1e-05");
        assert_eq!(perl_float(-2.0), "-2");
        assert_eq!(perl_float(f64::NAN), "NaN");
        assert_eq!(perl_float(f64::NEG_INFINITY), "-Inf");
    }

    #[test]
    fn integers_are_canonical_and_compare_equal() {
        assert_eq!(Value::from(5_u64), Value::Int(5));
        assert_eq!(Value::from(u64::MAX), Value::UInt(u64::MAX));
        assert_eq!(Value::UInt(5), Value::Int(5));
        assert_ne!(Value::Int(-1), Value::UInt(u64::MAX));
        assert_ne!(Value::Int(1), Value::Float(1.0));
    }

    #[test]
    fn tags_match_after_stringification() {
        assert!(Value::Int(1).matches_tag("1"));
        assert!(Value::Float(1.0).matches_tag("1"));
        assert!(Value::Null.matches_tag(""));
        assert!(!Value::Array(vec![]).matches_tag(""));
    }
}
