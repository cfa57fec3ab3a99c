//! `serde::Serializer` that builds a [`Value`]. (Implementation in progress.)

use crate::value::{Value, ValueError};

/// Converts any `Serialize` value into a [`Value`].
///
/// # Errors
///
/// Returns [`ValueError::Custom`] if the `Serialize` implementation reports an error.
pub fn to_value<T: serde::Serialize + ?Sized>(_value: &T) -> Result<Value, ValueError> {
    todo!("value serializer")
}
