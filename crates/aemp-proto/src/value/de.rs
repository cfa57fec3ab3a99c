//! `serde::Deserializer` over a borrowed [`Value`], and `Deserialize` for [`Value`].
//!
//! `&'de Value` is a `Deserializer<'de>`: `T::deserialize(&value)` works, and `&'de str` or
//! `&'de [u8]` fields borrow from the value. Besides the exact shapes, the deserializer accepts
//! what a Perl node sends for the same logical value (see the [module docs](super)):
//!
//! - integers from `Int`/`UInt`, from a `Float` with an integral value, and from a `String`
//!   holding a decimal integer (`"1"`);
//! - floats from `Float`, `Int`/`UInt` and numeric strings;
//! - strings from `String`, from numbers, booleans and `Null` stringified like Perl does (see
//!   [`Value::to_perl_string`]), and from `Bytes` holding UTF-8;
//! - byte strings from `Bytes`, from a `String` whose characters are all ≤ U+00FF (one char
//!   per byte: how Perl byte strings travel over JSON), and from an `Array` of small integers;
//! - booleans from `Bool`, the integers `0`/`1` and the strings `""`, `"0"` and `"1"`;
//! - structs from a `Map` of fields or an `Array` of the fields in order;
//! - enums as serde_json writes them: `"Variant"` or `{"Variant": content}`.

use std::fmt;
use std::num::IntErrorKind;
use std::slice;

use serde::de::{
    self, DeserializeSeed, Deserializer, EnumAccess, Expected, IntoDeserializer, MapAccess,
    SeqAccess, Unexpected, VariantAccess, Visitor,
};
use serde::forward_to_deserialize_any;

use crate::value::{Value, ValueError, kind_of};

/// Converts a [`Value`] into any `Deserialize` type.
///
/// ```
/// use aemp_proto::{Value, value::from_value};
///
/// let v = Value::Array(vec![Value::from("7"), Value::from(2.0)]);
/// let (a, b): (u32, u8) = from_value(&v)?; // Perl's numeric string and integral float
/// assert_eq!((a, b), (7, 2));
/// # Ok::<(), aemp_proto::ValueError>(())
/// ```
///
/// # Errors
///
/// Returns [`ValueError`] if the value does not have the shape `T` expects.
pub fn from_value<T: de::DeserializeOwned>(value: &Value) -> Result<T, ValueError> {
    from_ref(value)
}

/// Deserializes a borrowed value (strings may be borrowed from it).
pub(crate) fn from_ref<'de, T: de::Deserialize<'de>>(value: &'de Value) -> Result<T, ValueError> {
    T::deserialize(value)
}

/// Deserializes a slice of values as a sequence.
pub(crate) fn from_slice<'de, T: de::Deserialize<'de>>(
    values: &'de [Value],
) -> Result<T, ValueError> {
    T::deserialize(SliceDeserializer(values))
}

impl de::Error for ValueError {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        Self::Custom(msg.to_string())
    }

    fn invalid_type(unexp: Unexpected<'_>, exp: &dyn Expected) -> Self {
        let found = match unexp {
            Unexpected::Bool(_) => "boolean",
            Unexpected::Unsigned(_) | Unexpected::Signed(_) => "integer",
            Unexpected::Float(_) => "float",
            Unexpected::Char(_) => "character",
            Unexpected::Str(_) => "string",
            Unexpected::Bytes(_) => "bytes",
            Unexpected::Unit => "null",
            Unexpected::Option => "option",
            Unexpected::NewtypeStruct => "newtype struct",
            Unexpected::Seq => "array",
            Unexpected::Map => "map",
            Unexpected::Enum => "enum",
            Unexpected::UnitVariant => "unit variant",
            Unexpected::NewtypeVariant => "newtype variant",
            Unexpected::TupleVariant => "tuple variant",
            Unexpected::StructVariant => "struct variant",
            Unexpected::Other(other) => {
                return Self::Custom(format!("invalid type: {other}, expected {exp}"));
            }
        };
        Self::InvalidType {
            expected: exp.to_string(),
            found,
        }
    }
}

/// The error for a value of the wrong kind.
fn invalid_type(value: &Value, exp: &dyn Expected) -> ValueError {
    ValueError::InvalidType {
        expected: exp.to_string(),
        found: kind_of(value),
    }
}

/// The error for a value of an accepted kind that still does not fit (`"abc"` for a number).
fn invalid_value(unexp: Unexpected<'_>, exp: &dyn Expected) -> ValueError {
    <ValueError as de::Error>::invalid_value(unexp, exp)
}

/// The error for a number outside the target type's range.
fn out_of_range(value: &Value) -> ValueError {
    let shown = value.to_perl_string().unwrap_or_default().into_owned();
    ValueError::OutOfRange(shown)
}

/// An integer of any width a [`Value`] can carry, before narrowing to the target type.
enum Wide {
    Signed(i128),
    /// Only above `i128::MAX` (possible for floats and strings).
    Unsigned(u128),
}

/// 2^127 as a float: the first float above `i128::MAX`.
const TWO_POW_127: f64 = 170_141_183_460_469_231_731_687_303_715_884_105_728.0;

/// Reads an integer from `Int`/`UInt`, an integral `Float` or a decimal `String`.
fn wide_integer(value: &Value, exp: &dyn Expected) -> Result<Wide, ValueError> {
    match value {
        Value::Int(i) => Ok(Wide::Signed(i128::from(*i))),
        Value::UInt(u) => Ok(Wide::Signed(i128::from(*u))),
        Value::Float(f) => {
            let f = *f;
            if !f.is_finite() || f.fract() != 0.0 {
                Err(invalid_value(Unexpected::Float(f), exp))
            } else if (-TWO_POW_127..TWO_POW_127).contains(&f) {
                // Exact: `f` is integral and inside the range of i128.
                #[allow(clippy::cast_possible_truncation)]
                Ok(Wide::Signed(f as i128))
            } else if (TWO_POW_127..2.0 * TWO_POW_127).contains(&f) {
                #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
                Ok(Wide::Unsigned(f as u128))
            } else {
                Err(out_of_range(value))
            }
        }
        Value::String(s) => match s.parse::<i128>() {
            Ok(n) => Ok(Wide::Signed(n)),
            Err(e) if *e.kind() == IntErrorKind::PosOverflow => s
                .parse::<u128>()
                .map(Wide::Unsigned)
                .map_err(|_| out_of_range(value)),
            Err(e) if *e.kind() == IntErrorKind::NegOverflow => Err(out_of_range(value)),
            Err(_) => Err(invalid_value(Unexpected::Str(s), exp)),
        },
        _ => Err(invalid_type(value, exp)),
    }
}

/// Reads an integer (see [`wide_integer`]) and narrows it to `T`.
fn integer<T: TryFrom<i128> + TryFrom<u128>>(
    value: &Value,
    exp: &dyn Expected,
) -> Result<T, ValueError> {
    let narrowed = match wide_integer(value, exp)? {
        Wide::Signed(n) => T::try_from(n).ok(),
        Wide::Unsigned(n) => T::try_from(n).ok(),
    };
    narrowed.ok_or_else(|| out_of_range(value))
}

/// Reads a float from `Float`, `Int`/`UInt` or a numeric `String`.
fn float(value: &Value, exp: &dyn Expected) -> Result<f64, ValueError> {
    match value {
        Value::String(s) => s
            .parse::<f64>()
            .map_err(|_| invalid_value(Unexpected::Str(s), exp)),
        other => other.as_f64().ok_or_else(|| invalid_type(value, exp)),
    }
}

/// Maps a string of code points ≤ U+00FF to bytes, one byte per character.
fn code_points_to_bytes(s: &str, exp: &dyn Expected) -> Result<Vec<u8>, ValueError> {
    s.chars()
        .map(|c| {
            u8::try_from(c).map_err(|_| {
                ValueError::Custom(format!(
                    "invalid value: string with character U+{:04X} above U+00FF, expected {exp}",
                    u32::from(c)
                ))
            })
        })
        .collect()
}

/// `Expected` text for an exact number of elements.
struct ExpectedLen(usize);

impl Expected for ExpectedLen {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "an array of {} elements", self.0)
    }
}

/// Lets `visitor` read `values` as a sequence; elements it leaves unread are an error.
fn visit_array<'de, V: Visitor<'de>>(
    values: &'de [Value],
    visitor: V,
    exp: &dyn Expected,
) -> Result<V::Value, ValueError> {
    let mut seq = SeqDeserializer {
        iter: values.iter(),
    };
    let out = visitor.visit_seq(&mut seq)?;
    if seq.iter.len() == 0 {
        Ok(out)
    } else {
        Err(de::Error::invalid_length(values.len(), exp))
    }
}

/// Lets `visitor` read `entries` as a map; entries it leaves unread are an error.
fn visit_map<'de, V: Visitor<'de>>(
    entries: &'de [(Value, Value)],
    visitor: V,
) -> Result<V::Value, ValueError> {
    let mut map = MapDeserializer {
        iter: entries.iter(),
        value: None,
    };
    let out = visitor.visit_map(&mut map)?;
    if map.iter.len() == 0 {
        Ok(out)
    } else {
        Err(de::Error::invalid_length(
            entries.len(),
            &"fewer entries in map",
        ))
    }
}

/// Lets `visitor` read a byte string as a sequence of `u8` (for `Vec<u8>` and `[u8; N]`).
fn visit_byte_seq<'de, V: Visitor<'de>>(
    bytes: &'de [u8],
    visitor: V,
    exp: &dyn Expected,
) -> Result<V::Value, ValueError> {
    let mut seq = de::value::SeqDeserializer::<_, ValueError>::new(bytes.iter().copied());
    let out = visitor.visit_seq(&mut seq)?;
    seq.end()
        .map_err(|_| de::Error::invalid_length(bytes.len(), exp))?;
    Ok(out)
}

macro_rules! deserialize_integer {
    ($($method:ident => $visit:ident: $t:ty),* $(,)?) => {$(
        fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ValueError> {
            let n = integer::<$t>(self, &visitor)?;
            visitor.$visit(n)
        }
    )*};
}

impl<'de> Deserializer<'de> for &'de Value {
    type Error = ValueError;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ValueError> {
        match self {
            Value::Null => visitor.visit_unit(),
            Value::Bool(b) => visitor.visit_bool(*b),
            Value::Int(i) => visitor.visit_i64(*i),
            Value::UInt(u) => visitor.visit_u64(*u),
            Value::Float(f) => visitor.visit_f64(*f),
            Value::String(s) => visitor.visit_borrowed_str(s),
            Value::Bytes(b) => visitor.visit_borrowed_bytes(b),
            Value::Array(items) => visit_array(items, visitor, &"fewer elements in array"),
            Value::Map(entries) => visit_map(entries, visitor),
        }
    }

    fn deserialize_bool<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ValueError> {
        match self {
            Value::Bool(b) => visitor.visit_bool(*b),
            Value::Int(0) => visitor.visit_bool(false),
            Value::Int(1) => visitor.visit_bool(true),
            Value::Int(i) => Err(invalid_value(Unexpected::Signed(*i), &visitor)),
            Value::UInt(u) => Err(invalid_value(Unexpected::Unsigned(*u), &visitor)),
            Value::String(s) => match s.as_str() {
                "" | "0" => visitor.visit_bool(false),
                "1" => visitor.visit_bool(true),
                _ => Err(invalid_value(Unexpected::Str(s), &visitor)),
            },
            other => Err(invalid_type(other, &visitor)),
        }
    }

    deserialize_integer! {
        deserialize_i8 => visit_i8: i8,
        deserialize_i16 => visit_i16: i16,
        deserialize_i32 => visit_i32: i32,
        deserialize_i64 => visit_i64: i64,
        deserialize_i128 => visit_i128: i128,
        deserialize_u8 => visit_u8: u8,
        deserialize_u16 => visit_u16: u16,
        deserialize_u32 => visit_u32: u32,
        deserialize_u64 => visit_u64: u64,
        deserialize_u128 => visit_u128: u128,
    }

    fn deserialize_f32<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ValueError> {
        let f = float(self, &visitor)?;
        #[allow(clippy::cast_possible_truncation)] // Intended: f32 is asked for.
        visitor.visit_f32(f as f32)
    }

    fn deserialize_f64<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ValueError> {
        let f = float(self, &visitor)?;
        visitor.visit_f64(f)
    }

    fn deserialize_char<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ValueError> {
        match self {
            Value::String(s) => {
                let mut chars = s.chars();
                match (chars.next(), chars.next()) {
                    (Some(c), None) => visitor.visit_char(c),
                    _ => Err(invalid_value(Unexpected::Str(s), &visitor)),
                }
            }
            other => Err(invalid_type(other, &visitor)),
        }
    }

    fn deserialize_str<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ValueError> {
        match self {
            Value::String(s) => visitor.visit_borrowed_str(s),
            Value::Bytes(b) => match std::str::from_utf8(b) {
                Ok(s) => visitor.visit_borrowed_str(s),
                Err(_) => Err(invalid_value(Unexpected::Bytes(b), &visitor)),
            },
            Value::Array(_) | Value::Map(_) => Err(invalid_type(self, &visitor)),
            // A number, boolean or null where Perl meant a string: use Perl's string form.
            scalar => match scalar.to_perl_string() {
                Some(std::borrow::Cow::Borrowed(s)) => visitor.visit_borrowed_str(s),
                Some(std::borrow::Cow::Owned(s)) => visitor.visit_string(s),
                None => Err(invalid_type(scalar, &visitor)),
            },
        }
    }

    fn deserialize_string<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ValueError> {
        self.deserialize_str(visitor)
    }

    fn deserialize_bytes<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ValueError> {
        match self {
            Value::Bytes(b) => visitor.visit_borrowed_bytes(b),
            // ASCII maps to the same bytes, so they can be borrowed.
            Value::String(s) if s.is_ascii() => visitor.visit_borrowed_bytes(s.as_bytes()),
            Value::String(s) => {
                let bytes = code_points_to_bytes(s, &visitor)?;
                visitor.visit_byte_buf(bytes)
            }
            Value::Array(items) => visit_array(items, visitor, &"fewer elements in array"),
            other => Err(invalid_type(other, &visitor)),
        }
    }

    fn deserialize_byte_buf<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ValueError> {
        self.deserialize_bytes(visitor)
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ValueError> {
        match self {
            Value::Null => visitor.visit_none(),
            other => visitor.visit_some(other),
        }
    }

    fn deserialize_unit<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ValueError> {
        match self {
            Value::Null => visitor.visit_unit(),
            other => Err(invalid_type(other, &visitor)),
        }
    }

    fn deserialize_unit_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, ValueError> {
        self.deserialize_unit(visitor)
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, ValueError> {
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_seq<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ValueError> {
        match self {
            Value::Array(items) => visit_array(items, visitor, &"fewer elements in array"),
            Value::Bytes(b) => visit_byte_seq(b, visitor, &"fewer elements in array"),
            other => Err(invalid_type(other, &visitor)),
        }
    }

    fn deserialize_tuple<V: Visitor<'de>>(
        self,
        len: usize,
        visitor: V,
    ) -> Result<V::Value, ValueError> {
        match self {
            Value::Array(items) => visit_array(items, visitor, &ExpectedLen(len)),
            Value::Bytes(b) => visit_byte_seq(b, visitor, &ExpectedLen(len)),
            other => Err(invalid_type(other, &visitor)),
        }
    }

    fn deserialize_tuple_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        len: usize,
        visitor: V,
    ) -> Result<V::Value, ValueError> {
        self.deserialize_tuple(len, visitor)
    }

    fn deserialize_map<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ValueError> {
        match self {
            Value::Map(entries) => visit_map(entries, visitor),
            other => Err(invalid_type(other, &visitor)),
        }
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, ValueError> {
        match self {
            Value::Map(entries) => visit_map(entries, visitor),
            Value::Array(items) => visit_array(items, visitor, &ExpectedLen(fields.len())),
            other => Err(invalid_type(other, &visitor)),
        }
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, ValueError> {
        match self {
            Value::String(_) | Value::Int(_) | Value::UInt(_) => {
                visitor.visit_enum(EnumDeserializer {
                    variant: self,
                    content: None,
                })
            }
            Value::Map(entries) => match entries.as_slice() {
                [(variant, content)] => visitor.visit_enum(EnumDeserializer {
                    variant,
                    content: Some(content),
                }),
                _ => Err(invalid_value(
                    Unexpected::Map,
                    &"a map with a single key (the variant name)",
                )),
            },
            other => Err(invalid_type(other, &visitor)),
        }
    }

    fn deserialize_identifier<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ValueError> {
        match self {
            Value::String(s) => visitor.visit_borrowed_str(s),
            Value::Bytes(b) => visitor.visit_borrowed_bytes(b),
            Value::Int(i) => match u64::try_from(*i) {
                Ok(index) => visitor.visit_u64(index),
                Err(_) => Err(invalid_value(Unexpected::Signed(*i), &visitor)),
            },
            Value::UInt(u) => visitor.visit_u64(*u),
            other => Err(invalid_type(other, &visitor)),
        }
    }

    fn deserialize_ignored_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ValueError> {
        visitor.visit_unit()
    }
}

impl<'de> IntoDeserializer<'de, ValueError> for &'de Value {
    type Deserializer = Self;

    fn into_deserializer(self) -> Self {
        self
    }
}

/// Deserializes a slice of values (a message's elements) as one sequence.
struct SliceDeserializer<'de>(&'de [Value]);

impl<'de> Deserializer<'de> for SliceDeserializer<'de> {
    type Error = ValueError;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ValueError> {
        visit_array(self.0, visitor, &"fewer elements in the message")
    }

    fn deserialize_tuple<V: Visitor<'de>>(
        self,
        len: usize,
        visitor: V,
    ) -> Result<V::Value, ValueError> {
        visit_array(self.0, visitor, &ExpectedLen(len))
    }

    fn deserialize_tuple_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        len: usize,
        visitor: V,
    ) -> Result<V::Value, ValueError> {
        self.deserialize_tuple(len, visitor)
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, ValueError> {
        visit_array(self.0, visitor, &ExpectedLen(fields.len()))
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ValueError> {
        visitor.visit_some(self)
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, ValueError> {
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_ignored_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ValueError> {
        visitor.visit_unit()
    }

    forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf unit
        unit_struct seq map enum identifier
    }
}

/// Gives a visitor the elements of an array one by one.
struct SeqDeserializer<'de> {
    iter: slice::Iter<'de, Value>,
}

impl<'de> SeqAccess<'de> for SeqDeserializer<'de> {
    type Error = ValueError;

    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, ValueError> {
        self.iter.next().map(|v| seed.deserialize(v)).transpose()
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.iter.len())
    }
}

/// Gives a visitor the entries of a map one by one.
struct MapDeserializer<'de> {
    iter: slice::Iter<'de, (Value, Value)>,
    /// The value of the entry whose key was just read.
    value: Option<&'de Value>,
}

impl<'de> MapAccess<'de> for MapDeserializer<'de> {
    type Error = ValueError;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, ValueError> {
        match self.iter.next() {
            Some((key, value)) => {
                self.value = Some(value);
                seed.deserialize(key).map(Some)
            }
            None => Ok(None),
        }
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(
        &mut self,
        seed: V,
    ) -> Result<V::Value, ValueError> {
        match self.value.take() {
            Some(value) => seed.deserialize(value),
            None => Err(ValueError::Custom(
                "map value requested before its key".to_owned(),
            )),
        }
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.iter.len())
    }
}

/// An enum written as `"Variant"` (`content: None`) or `{"Variant": content}`.
struct EnumDeserializer<'de> {
    variant: &'de Value,
    content: Option<&'de Value>,
}

impl<'de> EnumAccess<'de> for EnumDeserializer<'de> {
    type Error = ValueError;
    type Variant = VariantDeserializer<'de>;

    fn variant_seed<V: DeserializeSeed<'de>>(
        self,
        seed: V,
    ) -> Result<(V::Value, VariantDeserializer<'de>), ValueError> {
        let variant = seed.deserialize(self.variant)?;
        Ok((variant, VariantDeserializer(self.content)))
    }
}

/// The content of an enum variant, if there is any.
struct VariantDeserializer<'de>(Option<&'de Value>);

impl<'de> VariantAccess<'de> for VariantDeserializer<'de> {
    type Error = ValueError;

    fn unit_variant(self) -> Result<(), ValueError> {
        match self.0 {
            None | Some(Value::Null) => Ok(()),
            Some(other) => Err(invalid_type(other, &"unit variant")),
        }
    }

    fn newtype_variant_seed<T: DeserializeSeed<'de>>(
        self,
        seed: T,
    ) -> Result<T::Value, ValueError> {
        match self.0 {
            Some(content) => seed.deserialize(content),
            None => Err(de::Error::invalid_type(
                Unexpected::UnitVariant,
                &"newtype variant",
            )),
        }
    }

    fn tuple_variant<V: Visitor<'de>>(
        self,
        len: usize,
        visitor: V,
    ) -> Result<V::Value, ValueError> {
        match self.0 {
            Some(content) => content.deserialize_tuple(len, visitor),
            None => Err(de::Error::invalid_type(
                Unexpected::UnitVariant,
                &"tuple variant",
            )),
        }
    }

    fn struct_variant<V: Visitor<'de>>(
        self,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, ValueError> {
        match self.0 {
            Some(content) => content.deserialize_struct("", fields, visitor),
            None => Err(de::Error::invalid_type(
                Unexpected::UnitVariant,
                &"struct variant",
            )),
        }
    }
}

impl<'de> de::Deserialize<'de> for Value {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(ValueVisitor)
    }
}

/// Builds a [`Value`] from whatever the deserializer offers.
struct ValueVisitor;

impl<'de> Visitor<'de> for ValueVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any value")
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Value, E> {
        Ok(Value::Int(v))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Value, E> {
        Ok(Value::from_u64(v))
    }

    fn visit_i128<E: de::Error>(self, v: i128) -> Result<Value, E> {
        if let Ok(i) = i64::try_from(v) {
            Ok(Value::Int(i))
        } else if let Ok(u) = u64::try_from(v) {
            Ok(Value::UInt(u))
        } else {
            Err(E::custom(format_args!(
                "number {v} out of range for the target type"
            )))
        }
    }

    fn visit_u128<E: de::Error>(self, v: u128) -> Result<Value, E> {
        match u64::try_from(v) {
            Ok(u) => Ok(Value::from_u64(u)),
            Err(_) => Err(E::custom(format_args!(
                "number {v} out of range for the target type"
            ))),
        }
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Value, E> {
        Ok(Value::Float(v))
    }

    fn visit_char<E: de::Error>(self, v: char) -> Result<Value, E> {
        Ok(Value::String(v.to_string()))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }

    fn visit_bytes<E: de::Error>(self, v: &[u8]) -> Result<Value, E> {
        Ok(Value::Bytes(v.to_vec()))
    }

    fn visit_byte_buf<E: de::Error>(self, v: Vec<u8>) -> Result<Value, E> {
        Ok(Value::Bytes(v))
    }

    fn visit_none<E: de::Error>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        de::Deserialize::deserialize(deserializer)
    }

    fn visit_unit<E: de::Error>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_newtype_struct<D: Deserializer<'de>>(
        self,
        deserializer: D,
    ) -> Result<Value, D::Error> {
        de::Deserialize::deserialize(deserializer)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(4096));
        while let Some(item) = seq.next_element()? {
            items.push(item);
        }
        Ok(Value::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut entries = Vec::with_capacity(map.size_hint().unwrap_or(0).min(4096));
        while let Some(entry) = map.next_entry()? {
            entries.push(entry);
        }
        Ok(Value::Map(entries))
    }
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;

    use super::*;

    fn s(v: &str) -> Value {
        Value::String(v.to_owned())
    }

    #[test]
    fn any_dispatches_on_the_variant() {
        let v = Value::Array(vec![
            Value::Null,
            Value::Bool(true),
            Value::Int(-1),
            Value::UInt(u64::MAX),
            Value::Float(0.5),
            s("x"),
            Value::Bytes(vec![1, 2]),
            Value::Map(vec![(Value::Int(1), s("one"))]),
        ]);
        assert_eq!(Value::deserialize(&v).unwrap(), v);
        let big = Value::deserialize(&Value::UInt(u64::MAX)).unwrap();
        assert!(matches!(big, Value::UInt(u64::MAX)));
    }

    #[test]
    fn integers_from_perl_shapes() {
        assert_eq!(from_value::<u32>(&s("42")).unwrap(), 42);
        assert_eq!(from_value::<i8>(&s("-128")).unwrap(), -128);
        assert_eq!(from_value::<i64>(&Value::Float(3.0)).unwrap(), 3);
        assert_eq!(
            from_value::<u64>(&Value::Float(1e19)).unwrap(),
            10_000_000_000_000_000_000
        );
        assert_eq!(from_value::<u64>(&Value::UInt(u64::MAX)).unwrap(), u64::MAX);
        assert_eq!(from_value::<i64>(&Value::Int(i64::MIN)).unwrap(), i64::MIN);
        assert_eq!(
            from_value::<u128>(&s("340282366920938463463374607431768211455")).unwrap(),
            u128::MAX
        );
        assert_eq!(from_value::<i128>(&Value::Int(-5)).unwrap(), -5_i128);
    }

    #[test]
    fn integer_errors() {
        assert_eq!(
            from_value::<u8>(&Value::Int(256)).unwrap_err(),
            ValueError::OutOfRange("256".to_owned())
        );
        assert_eq!(
            from_value::<u32>(&Value::Int(-1)).unwrap_err(),
            ValueError::OutOfRange("-1".to_owned())
        );
        assert_eq!(
            from_value::<i64>(&Value::UInt(u64::MAX)).unwrap_err(),
            ValueError::OutOfRange("18446744073709551615".to_owned())
        );
        assert_eq!(
            from_value::<u64>(&s("99999999999999999999999999999999999999999")).unwrap_err(),
            ValueError::OutOfRange("99999999999999999999999999999999999999999".to_owned())
        );
        assert_eq!(
            from_value::<i128>(&Value::Float(1e300)).unwrap_err(),
            ValueError::OutOfRange("1e+300".to_owned())
        );
        let e = from_value::<u32>(&Value::Float(1.5)).unwrap_err();
        assert_eq!(
            e.to_string(),
            "invalid value: floating point `1.5`, expected u32"
        );
        let e = from_value::<u32>(&s("1x")).unwrap_err();
        assert_eq!(e.to_string(), "invalid value: string \"1x\", expected u32");
        assert_eq!(
            from_value::<u32>(&Value::Array(vec![])).unwrap_err(),
            ValueError::InvalidType {
                expected: "u32".to_owned(),
                found: "array"
            }
        );
        assert!(from_value::<u32>(&Value::Float(f64::NAN)).is_err());
    }

    #[test]
    fn floats_strings_bools() {
        assert_eq!(from_value::<f64>(&Value::Int(2)).unwrap(), 2.0);
        assert_eq!(from_value::<f64>(&s("2.5")).unwrap(), 2.5);
        assert_eq!(from_value::<f32>(&s("-1e2")).unwrap(), -100.0);
        assert_eq!(from_value::<String>(&Value::Int(1)).unwrap(), "1");
        assert_eq!(from_value::<String>(&Value::Float(0.1)).unwrap(), "0.1");
        assert_eq!(from_value::<String>(&Value::Null).unwrap(), "");
        assert_eq!(from_value::<String>(&Value::Bool(true)).unwrap(), "1");
        assert_eq!(
            from_value::<String>(&Value::Bytes(b"ok".to_vec())).unwrap(),
            "ok"
        );
        assert!(from_value::<String>(&Value::Bytes(vec![0xff])).is_err());
        assert!(!from_value::<bool>(&s("0")).unwrap());
        assert!(!from_value::<bool>(&s("")).unwrap());
        assert!(from_value::<bool>(&s("1")).unwrap());
        assert!(from_value::<bool>(&Value::Int(1)).unwrap());
        assert!(!from_value::<bool>(&Value::Int(0)).unwrap());
        assert!(from_value::<bool>(&Value::Int(2)).is_err());
        assert!(from_value::<bool>(&s("yes")).is_err());
        assert_eq!(from_value::<char>(&s("é")).unwrap(), 'é');
        assert!(from_value::<char>(&s("ab")).is_err());
    }

    #[test]
    fn byte_strings() {
        #[derive(Debug)]
        struct Bytes(Vec<u8>);
        impl<'de> Deserialize<'de> for Bytes {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                struct V;
                impl<'de> Visitor<'de> for V {
                    type Value = Vec<u8>;
                    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                        f.write_str("bytes")
                    }
                    fn visit_bytes<E: de::Error>(self, v: &[u8]) -> Result<Vec<u8>, E> {
                        Ok(v.to_vec())
                    }
                    fn visit_seq<A: SeqAccess<'de>>(self, mut a: A) -> Result<Vec<u8>, A::Error> {
                        let mut out = Vec::new();
                        while let Some(b) = a.next_element()? {
                            out.push(b);
                        }
                        Ok(out)
                    }
                }
                d.deserialize_byte_buf(V).map(Bytes)
            }
        }
        let b: Bytes = from_value(&s("a\u{ff}\u{0}")).unwrap();
        assert_eq!(b.0, [b'a', 0xff, 0]);
        let b: Bytes = from_value(&Value::Bytes(vec![1, 2])).unwrap();
        assert_eq!(b.0, [1, 2]);
        let b: Bytes = from_value(&Value::Array(vec![Value::Int(3)])).unwrap();
        assert_eq!(b.0, [3]);
        let e = from_value::<Bytes>(&s("\u{100}")).unwrap_err();
        assert_eq!(
            e.to_string(),
            "invalid value: string with character U+0100 above U+00FF, expected bytes"
        );
        assert_eq!(
            from_value::<Vec<u8>>(&Value::Bytes(vec![7, 8])).unwrap(),
            [7, 8]
        );
        assert_eq!(
            from_value::<[u8; 2]>(&Value::Bytes(vec![7, 8])).unwrap(),
            [7, 8]
        );
        assert!(from_value::<[u8; 3]>(&Value::Bytes(vec![7, 8])).is_err());
        assert!(from_value::<[u8; 1]>(&Value::Bytes(vec![7, 8])).is_err());
    }

    #[test]
    fn slices_are_sequences_with_checked_length() {
        let values = [s("ping"), Value::Int(7)];
        let (tag, n): (&str, u32) = from_slice(&values).unwrap();
        assert_eq!((tag, n), ("ping", 7));
        let e = from_slice::<(String, u32, u8)>(&values).unwrap_err();
        assert_eq!(
            e.to_string(),
            "invalid length 2, expected a tuple of size 3"
        );
        let e = from_slice::<(String,)>(&values).unwrap_err();
        assert_eq!(
            e.to_string(),
            "invalid length 2, expected an array of 1 elements"
        );
        assert_eq!(from_slice::<Vec<Value>>(&values).unwrap(), values);
    }

    #[test]
    fn never_panics_on_odd_shapes() {
        let odd = [
            Value::Null,
            Value::Map(vec![]),
            Value::Map(vec![(Value::Null, Value::Null), (Value::Null, Value::Null)]),
            Value::Array(vec![Value::Array(vec![])]),
            Value::Float(f64::INFINITY),
            Value::Float(-0.0),
            Value::UInt(u64::MAX),
            s(""),
        ];
        for v in &odd {
            let _ = from_ref::<Option<(u8, String)>>(v);
            let _ = from_ref::<std::collections::HashMap<String, bool>>(v);
            let _ = from_ref::<char>(v);
            let _ = from_ref::<()>(v);
            let _ = from_ref::<i128>(v);
            let _ = from_ref::<Vec<u8>>(v);
            let _ = from_ref::<Value>(v);
        }
    }
}
