//! `serde::Serializer` that builds a [`Value`], and `Serialize` for [`Value`].
//!
//! The mapping follows `serde_json::to_value`, except that byte strings stay [`Value::Bytes`]
//! and integers keep their full 64-bit range in canonical form (see [`Value`]):
//!
//! | Rust / serde data model               | [`Value`]                                  |
//! |---------------------------------------|--------------------------------------------|
//! | `bool`                                | `Bool`                                     |
//! | integers (`i128`/`u128` if they fit)  | `Int`, or `UInt` above `i64::MAX`          |
//! | `f32`, `f64`                          | `Float`                                    |
//! | `char`, `str`                         | `String`                                   |
//! | bytes                                 | `Bytes`                                    |
//! | unit, `None`, unit struct             | `Null`                                     |
//! | `Some(x)`, newtype struct             | `x`                                        |
//! | seq, tuple, tuple struct              | `Array`                                    |
//! | map                                   | `Map` (keys become values too)             |
//! | struct                                | `Map` with string keys                     |
//! | unit variant                          | `String(variant)`                          |
//! | newtype / tuple / struct variant      | `Map { variant: x / Array / Map }`         |

use std::fmt::Display;

use serde::ser::{self, Serialize, SerializeMap as _, SerializeSeq as _};

use crate::value::{Value, ValueError};

/// Converts any `Serialize` value into a [`Value`].
///
/// ```
/// use aemp_proto::{Value, value::to_value};
///
/// let v = to_value(&(1_u8, "two", [3.5_f64]))?;
/// assert_eq!(
///     v,
///     Value::Array(vec![
///         Value::from(1),
///         Value::from("two"),
///         Value::Array(vec![Value::Float(3.5)]),
///     ])
/// );
/// # Ok::<(), aemp_proto::ValueError>(())
/// ```
///
/// # Errors
///
/// Returns [`ValueError::OutOfRange`] for an `i128`/`u128` that fits neither `i64` nor `u64`,
/// and [`ValueError::Custom`] if the `Serialize` implementation reports an error.
pub fn to_value<T: Serialize + ?Sized>(value: &T) -> Result<Value, ValueError> {
    value.serialize(ValueSerializer)
}

impl ser::Error for ValueError {
    fn custom<T: Display>(msg: T) -> Self {
        Self::Custom(msg.to_string())
    }
}

impl Serialize for Value {
    fn serialize<S: ser::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Self::Null => serializer.serialize_unit(),
            Self::Bool(b) => serializer.serialize_bool(*b),
            Self::Int(i) => serializer.serialize_i64(*i),
            Self::UInt(u) => serializer.serialize_u64(*u),
            Self::Float(f) => serializer.serialize_f64(*f),
            Self::String(s) => serializer.serialize_str(s),
            Self::Bytes(b) => serializer.serialize_bytes(b),
            Self::Array(items) => {
                let mut seq = serializer.serialize_seq(Some(items.len()))?;
                for item in items {
                    seq.serialize_element(item)?;
                }
                seq.end()
            }
            Self::Map(entries) => {
                let mut map = serializer.serialize_map(Some(entries.len()))?;
                for (key, value) in entries {
                    map.serialize_entry(key, value)?;
                }
                map.end()
            }
        }
    }
}

/// The serializer behind [`to_value`].
struct ValueSerializer;

/// Upper bound for capacities taken from `len` hints, so a lying hint cannot allocate much.
const MAX_PREALLOC: usize = 4096;

fn with_capacity<T>(len: Option<usize>) -> Vec<T> {
    Vec::with_capacity(len.unwrap_or(0).min(MAX_PREALLOC))
}

/// A one-entry map `{variant: content}`, serde_json's representation of a non-unit variant.
fn variant_map(variant: &'static str, content: Value) -> Value {
    Value::Map(vec![(Value::String(variant.to_owned()), content)])
}

impl ser::Serializer for ValueSerializer {
    type Ok = Value;
    type Error = ValueError;
    type SerializeSeq = ArrayBuilder;
    type SerializeTuple = ArrayBuilder;
    type SerializeTupleStruct = ArrayBuilder;
    type SerializeTupleVariant = VariantArrayBuilder;
    type SerializeMap = MapBuilder;
    type SerializeStruct = MapBuilder;
    type SerializeStructVariant = VariantMapBuilder;

    fn serialize_bool(self, v: bool) -> Result<Value, ValueError> {
        Ok(Value::Bool(v))
    }

    fn serialize_i8(self, v: i8) -> Result<Value, ValueError> {
        Ok(Value::Int(i64::from(v)))
    }

    fn serialize_i16(self, v: i16) -> Result<Value, ValueError> {
        Ok(Value::Int(i64::from(v)))
    }

    fn serialize_i32(self, v: i32) -> Result<Value, ValueError> {
        Ok(Value::Int(i64::from(v)))
    }

    fn serialize_i64(self, v: i64) -> Result<Value, ValueError> {
        Ok(Value::Int(v))
    }

    fn serialize_i128(self, v: i128) -> Result<Value, ValueError> {
        if let Ok(i) = i64::try_from(v) {
            Ok(Value::Int(i))
        } else if let Ok(u) = u64::try_from(v) {
            Ok(Value::UInt(u))
        } else {
            Err(ValueError::OutOfRange(v.to_string()))
        }
    }

    fn serialize_u8(self, v: u8) -> Result<Value, ValueError> {
        Ok(Value::from_u64(u64::from(v)))
    }

    fn serialize_u16(self, v: u16) -> Result<Value, ValueError> {
        Ok(Value::from_u64(u64::from(v)))
    }

    fn serialize_u32(self, v: u32) -> Result<Value, ValueError> {
        Ok(Value::from_u64(u64::from(v)))
    }

    fn serialize_u64(self, v: u64) -> Result<Value, ValueError> {
        Ok(Value::from_u64(v))
    }

    fn serialize_u128(self, v: u128) -> Result<Value, ValueError> {
        u64::try_from(v)
            .map(Value::from_u64)
            .map_err(|_| ValueError::OutOfRange(v.to_string()))
    }

    fn serialize_f32(self, v: f32) -> Result<Value, ValueError> {
        Ok(Value::Float(f64::from(v)))
    }

    fn serialize_f64(self, v: f64) -> Result<Value, ValueError> {
        Ok(Value::Float(v))
    }

    fn serialize_char(self, v: char) -> Result<Value, ValueError> {
        Ok(Value::String(v.to_string()))
    }

    fn serialize_str(self, v: &str) -> Result<Value, ValueError> {
        Ok(Value::String(v.to_owned()))
    }

    fn serialize_bytes(self, v: &[u8]) -> Result<Value, ValueError> {
        Ok(Value::Bytes(v.to_vec()))
    }

    fn serialize_none(self) -> Result<Value, ValueError> {
        Ok(Value::Null)
    }

    fn serialize_some<T: Serialize + ?Sized>(self, value: &T) -> Result<Value, ValueError> {
        value.serialize(self)
    }

    fn serialize_unit(self) -> Result<Value, ValueError> {
        Ok(Value::Null)
    }

    fn serialize_unit_struct(self, _name: &'static str) -> Result<Value, ValueError> {
        Ok(Value::Null)
    }

    fn serialize_unit_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
    ) -> Result<Value, ValueError> {
        Ok(Value::String(variant.to_owned()))
    }

    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        _name: &'static str,
        value: &T,
    ) -> Result<Value, ValueError> {
        value.serialize(self)
    }

    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
        value: &T,
    ) -> Result<Value, ValueError> {
        Ok(variant_map(variant, to_value(value)?))
    }

    fn serialize_seq(self, len: Option<usize>) -> Result<ArrayBuilder, ValueError> {
        Ok(ArrayBuilder {
            items: with_capacity(len),
        })
    }

    fn serialize_tuple(self, len: usize) -> Result<ArrayBuilder, ValueError> {
        self.serialize_seq(Some(len))
    }

    fn serialize_tuple_struct(
        self,
        _name: &'static str,
        len: usize,
    ) -> Result<ArrayBuilder, ValueError> {
        self.serialize_seq(Some(len))
    }

    fn serialize_tuple_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
        len: usize,
    ) -> Result<VariantArrayBuilder, ValueError> {
        Ok(VariantArrayBuilder {
            variant,
            items: with_capacity(Some(len)),
        })
    }

    fn serialize_map(self, len: Option<usize>) -> Result<MapBuilder, ValueError> {
        Ok(MapBuilder {
            entries: with_capacity(len),
            key: None,
        })
    }

    fn serialize_struct(self, _name: &'static str, len: usize) -> Result<MapBuilder, ValueError> {
        self.serialize_map(Some(len))
    }

    fn serialize_struct_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
        len: usize,
    ) -> Result<VariantMapBuilder, ValueError> {
        Ok(VariantMapBuilder {
            variant,
            entries: with_capacity(Some(len)),
        })
    }
}

/// Collects the elements of a sequence, tuple or tuple struct into a [`Value::Array`].
struct ArrayBuilder {
    items: Vec<Value>,
}

impl ser::SerializeSeq for ArrayBuilder {
    type Ok = Value;
    type Error = ValueError;

    fn serialize_element<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), ValueError> {
        self.items.push(to_value(value)?);
        Ok(())
    }

    fn end(self) -> Result<Value, ValueError> {
        Ok(Value::Array(self.items))
    }
}

impl ser::SerializeTuple for ArrayBuilder {
    type Ok = Value;
    type Error = ValueError;

    fn serialize_element<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), ValueError> {
        ser::SerializeSeq::serialize_element(self, value)
    }

    fn end(self) -> Result<Value, ValueError> {
        ser::SerializeSeq::end(self)
    }
}

impl ser::SerializeTupleStruct for ArrayBuilder {
    type Ok = Value;
    type Error = ValueError;

    fn serialize_field<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), ValueError> {
        ser::SerializeSeq::serialize_element(self, value)
    }

    fn end(self) -> Result<Value, ValueError> {
        ser::SerializeSeq::end(self)
    }
}

/// Collects the fields of a tuple variant into `{variant: [fields…]}`.
struct VariantArrayBuilder {
    variant: &'static str,
    items: Vec<Value>,
}

impl ser::SerializeTupleVariant for VariantArrayBuilder {
    type Ok = Value;
    type Error = ValueError;

    fn serialize_field<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), ValueError> {
        self.items.push(to_value(value)?);
        Ok(())
    }

    fn end(self) -> Result<Value, ValueError> {
        Ok(variant_map(self.variant, Value::Array(self.items)))
    }
}

/// Collects the entries of a map or the fields of a struct into a [`Value::Map`].
struct MapBuilder {
    entries: Vec<(Value, Value)>,
    /// The key given to `serialize_key`, waiting for its value.
    key: Option<Value>,
}

impl ser::SerializeMap for MapBuilder {
    type Ok = Value;
    type Error = ValueError;

    fn serialize_key<T: Serialize + ?Sized>(&mut self, key: &T) -> Result<(), ValueError> {
        self.key = Some(to_value(key)?);
        Ok(())
    }

    fn serialize_value<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), ValueError> {
        let key = self.key.take().ok_or_else(|| {
            ValueError::Custom("serialize_value called before serialize_key".to_owned())
        })?;
        self.entries.push((key, to_value(value)?));
        Ok(())
    }

    fn serialize_entry<K: Serialize + ?Sized, V: Serialize + ?Sized>(
        &mut self,
        key: &K,
        value: &V,
    ) -> Result<(), ValueError> {
        self.entries.push((to_value(key)?, to_value(value)?));
        Ok(())
    }

    fn end(self) -> Result<Value, ValueError> {
        if self.key.is_some() {
            return Err(ValueError::Custom(
                "map ended after a key without its value".to_owned(),
            ));
        }
        Ok(Value::Map(self.entries))
    }
}

impl ser::SerializeStruct for MapBuilder {
    type Ok = Value;
    type Error = ValueError;

    fn serialize_field<T: Serialize + ?Sized>(
        &mut self,
        key: &'static str,
        value: &T,
    ) -> Result<(), ValueError> {
        self.serialize_entry(key, value)
    }

    fn end(self) -> Result<Value, ValueError> {
        ser::SerializeMap::end(self)
    }
}

/// Collects the fields of a struct variant into `{variant: {field: value…}}`.
struct VariantMapBuilder {
    variant: &'static str,
    entries: Vec<(Value, Value)>,
}

impl ser::SerializeStructVariant for VariantMapBuilder {
    type Ok = Value;
    type Error = ValueError;

    fn serialize_field<T: Serialize + ?Sized>(
        &mut self,
        key: &'static str,
        value: &T,
    ) -> Result<(), ValueError> {
        self.entries
            .push((Value::String(key.to_owned()), to_value(value)?));
        Ok(())
    }

    fn end(self) -> Result<Value, ValueError> {
        Ok(variant_map(self.variant, Value::Map(self.entries)))
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    fn s(v: &str) -> Value {
        Value::String(v.to_owned())
    }

    #[test]
    fn primitives() {
        assert_eq!(to_value(&true).unwrap(), Value::Bool(true));
        assert_eq!(to_value(&-5_i8).unwrap(), Value::Int(-5));
        assert_eq!(to_value(&i64::MIN).unwrap(), Value::Int(i64::MIN));
        assert!(matches!(to_value(&7_u64).unwrap(), Value::Int(7)));
        assert!(matches!(
            to_value(&u64::MAX).unwrap(),
            Value::UInt(u64::MAX)
        ));
        assert_eq!(to_value(&1.5_f32).unwrap(), Value::Float(1.5));
        assert_eq!(to_value(&'x').unwrap(), s("x"));
        assert_eq!(to_value("hi").unwrap(), s("hi"));
        assert_eq!(to_value(&()).unwrap(), Value::Null);
        assert_eq!(to_value(&None::<u8>).unwrap(), Value::Null);
        assert_eq!(to_value(&Some(3_u8)).unwrap(), Value::Int(3));
    }

    #[test]
    fn wide_integers_are_canonical_or_out_of_range() {
        assert!(matches!(to_value(&-3_i128).unwrap(), Value::Int(-3)));
        assert!(matches!(to_value(&3_u128).unwrap(), Value::Int(3)));
        assert!(matches!(
            to_value(&i128::from(u64::MAX)).unwrap(),
            Value::UInt(u64::MAX)
        ));
        assert_eq!(
            to_value(&(i128::from(i64::MIN) - 1)).unwrap_err(),
            ValueError::OutOfRange("-9223372036854775809".to_owned())
        );
        assert_eq!(
            to_value(&(u128::from(u64::MAX) + 1)).unwrap_err(),
            ValueError::OutOfRange("18446744073709551616".to_owned())
        );
    }

    #[test]
    fn sequences_and_maps() {
        assert_eq!(
            to_value(&vec![1_u8, 2]).unwrap(),
            Value::Array(vec![Value::Int(1), Value::Int(2)])
        );
        let mut m = BTreeMap::new();
        m.insert(2_u8, "b");
        m.insert(1_u8, "a");
        assert_eq!(
            to_value(&m).unwrap(),
            Value::Map(vec![(Value::Int(1), s("a")), (Value::Int(2), s("b"))])
        );
    }

    #[test]
    fn value_serializes_to_itself() {
        let v = Value::Map(vec![
            (s("a"), Value::Array(vec![Value::Null, Value::Bool(false)])),
            (Value::Int(1), Value::Bytes(vec![0, 255])),
            (Value::UInt(u64::MAX), Value::Float(-0.5)),
        ]);
        assert_eq!(to_value(&v).unwrap(), v);
    }

    #[test]
    fn errors_from_serialize_impls_are_custom() {
        struct Failing;
        impl Serialize for Failing {
            fn serialize<S: ser::Serializer>(&self, _: S) -> Result<S::Ok, S::Error> {
                Err(ser::Error::custom("nope"))
            }
        }
        assert_eq!(
            to_value(&vec![Failing]).unwrap_err(),
            ValueError::Custom("nope".to_owned())
        );
    }
}
