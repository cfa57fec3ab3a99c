//! Error types of the protocol crate, one per failure domain.

use crate::framing::Framing;

/// Why a byte stream could not be decoded into messages.
///
/// Every variant means the peer sent something that is not a valid message stream; the
/// connection must be closed (and its monitors fired) after any of them.
#[derive(Clone, Debug, Eq, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// A message is larger than the decoder's limit. Raise the limit if the peer is trusted to
    /// send such messages.
    #[error("message exceeds the limit of {max} bytes")]
    TooLarge {
        /// The configured limit.
        max: usize,
    },
    /// The bytes are not valid in this framing.
    #[error("malformed {framing} at byte {offset}: {reason}")]
    Malformed {
        /// The framing being decoded.
        framing: Framing,
        /// Offset of the problem from the start of the message.
        offset: usize,
        /// What was wrong.
        reason: &'static str,
    },
    /// Arrays and maps are nested deeper than [`MAX_DEPTH`](crate::framing::MAX_DEPTH).
    #[error("message nested deeper than {max} levels")]
    TooDeep {
        /// The nesting limit.
        max: usize,
    },
    /// A message is a valid value but not an array.
    #[error("message is a {found}, not an array")]
    NotAnArray {
        /// The kind of value received.
        found: &'static str,
    },
    /// The first element of a message (the destination port) is an array or map.
    #[error("message destination is a {found}, not a port name")]
    BadDestination {
        /// The kind of value received.
        found: &'static str,
    },
}
