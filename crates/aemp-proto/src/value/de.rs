//! `serde::Deserializer` over a borrowed [`Value`]. (Implementation in progress.)

use crate::value::{Value, ValueError};

/// Converts a [`Value`] into any `Deserialize` type.
///
/// # Errors
///
/// Returns [`ValueError`] if the value does not have the shape `T` expects.
pub fn from_value<T: serde::de::DeserializeOwned>(value: &Value) -> Result<T, ValueError> {
    from_ref(value)
}

/// Deserializes a borrowed value (strings may be borrowed from it).
pub(crate) fn from_ref<'de, T: serde::Deserialize<'de>>(
    _value: &'de Value,
) -> Result<T, ValueError> {
    todo!("value deserializer")
}

/// Deserializes a slice of values as a sequence.
pub(crate) fn from_slice<'de, T: serde::Deserialize<'de>>(
    _values: &'de [Value],
) -> Result<T, ValueError> {
    todo!("value deserializer")
}
