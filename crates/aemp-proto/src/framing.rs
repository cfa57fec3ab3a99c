//! Message framing: how messages are laid out in the byte stream of the data phase.
//!
//! Each direction of a connection uses its own framing: we send in the framing we chose from
//! the peer's list, the peer sends in the framing it named in its auth line (reference §4.9).
//! Two framings exist:
//!
//! - [`Framing::Json`]: concatenated compact JSON texts, each an array, no delimiter. Perl
//!   AnyEvent::MP 1.30 speaks it.
//! - [`Framing::Cbor`]: concatenated CBOR data items (RFC 8949), each an array. aemp offers it
//!   first, so two aemp nodes use it.
//!
//! A message on the wire is `[destination port name, elements...]`; [`Frame`] is that pair.
//! Encoders append to a caller's buffer, so many messages can be batched into one write;
//! decoders take bytes from a growing buffer and refuse any message above their size limit
//! before allocating it.
//!
//! ```
//! use aemp_proto::framing::{Frame, FrameDecoder, Framing};
//! use aemp_proto::{Message, Value};
//! use bytes::BytesMut;
//!
//! let mut wire = Vec::new();
//! for framing in [Framing::Json, Framing::Cbor] {
//!     wire.clear();
//!     let msg = Message::new(vec![Value::from("0123456789")]);
//!     framing.encode("sink", &msg, &mut wire);
//!     framing.encode("sink", &msg, &mut wire);
//!
//!     let mut buf = BytesMut::from(&wire[..]);
//!     let mut decoder = FrameDecoder::new(framing, 64 * 1024 * 1024);
//!     let frame = decoder.decode(&mut buf)?.expect("a whole message is buffered");
//!     assert_eq!(frame, Frame::new("sink", msg.clone()));
//!     assert!(decoder.decode(&mut buf)?.is_some());
//!     assert!(decoder.decode(&mut buf)?.is_none()); // need more bytes
//! }
//! # Ok::<(), aemp_proto::DecodeError>(())
//! ```

use std::fmt;
use std::str::FromStr;

use bytes::BytesMut;

use crate::error::DecodeError;
use crate::value::{Message, Value, kind_of};

pub mod cbor;
pub mod json;

/// A framing format, as named in the greeting and the auth line.
#[derive(Clone, Copy, Debug, Eq, Hash, PartialEq)]
#[non_exhaustive]
pub enum Framing {
    /// Concatenated JSON texts (`json`), understood by Perl nodes.
    Json,
    /// Concatenated CBOR data items (`cbor`), aemp's binary framing.
    Cbor,
}

impl Framing {
    /// The name used on the wire.
    pub fn name(self) -> &'static str {
        match self {
            Self::Json => "json",
            Self::Cbor => "cbor",
        }
    }

    /// Appends one message to `out`.
    pub fn encode(self, port: &str, message: &[Value], out: &mut Vec<u8>) {
        match self {
            Self::Json => json::encode_frame(port, message, out),
            Self::Cbor => cbor::encode_frame(port, message, out),
        }
    }

    /// Appends the empty array `[]`, the keepalive no-op (reference §4.10–4.11).
    pub fn encode_keepalive(self, out: &mut Vec<u8>) {
        match self {
            Self::Json => out.extend_from_slice(b"[]"),
            Self::Cbor => out.push(0x80),
        }
    }
}

impl fmt::Display for Framing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Framing {
    type Err = UnknownFraming;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "json" => Ok(Self::Json),
            "cbor" => Ok(Self::Cbor),
            _ => Err(UnknownFraming(s.to_owned())),
        }
    }
}

/// A framing name this implementation does not speak (such as Perl's `storable`).
#[derive(Clone, Debug, Eq, PartialEq, thiserror::Error)]
#[error("unknown framing {0:?}")]
pub struct UnknownFraming(pub String);

/// One message as it travels: the destination port name and the message elements.
///
/// The port name is the part after `#` (the node is implied by the connection); `""` is the
/// node port. The keepalive `[]` decodes as a frame for the node port with no elements, which
/// the node port ignores, exactly as `[""]`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Frame {
    /// The destination port name (without the node ID).
    pub port: String,
    /// The message elements.
    pub message: Message,
}

impl Frame {
    /// Creates a frame.
    pub fn new(port: impl Into<String>, message: impl Into<Message>) -> Self {
        Self {
            port: port.into(),
            message: message.into(),
        }
    }

    /// `true` for a frame with no destination and no elements: a keepalive.
    pub fn is_keepalive(&self) -> bool {
        self.port.is_empty() && self.message.is_empty()
    }
}

/// Incremental decoder for one direction of a connection.
///
/// Follows the `tokio_util::codec::Decoder` contract: `Ok(Some(frame))` consumes one message
/// from the front of the buffer, `Ok(None)` means more bytes are needed, and `Err` means the
/// stream is broken and the connection must be closed. The decoder remembers how far it has
/// scanned, so a large message arriving in many reads is scanned once, not once per read.
#[derive(Debug)]
pub struct FrameDecoder {
    inner: DecoderKind,
}

#[derive(Debug)]
enum DecoderKind {
    Json(json::JsonDecoder),
    Cbor(cbor::CborDecoder),
}

impl FrameDecoder {
    /// Creates a decoder that refuses messages larger than `max_message_size` bytes on the
    /// wire. The limit bounds how much a peer can make us buffer and allocate; SPEC §2
    /// suggests 64 MiB.
    pub fn new(framing: Framing, max_message_size: usize) -> Self {
        let inner = match framing {
            Framing::Json => DecoderKind::Json(json::JsonDecoder::new(max_message_size)),
            Framing::Cbor => DecoderKind::Cbor(cbor::CborDecoder::new(max_message_size)),
        };
        Self { inner }
    }

    /// The framing this decoder reads.
    pub fn framing(&self) -> Framing {
        match self.inner {
            DecoderKind::Json(_) => Framing::Json,
            DecoderKind::Cbor(_) => Framing::Cbor,
        }
    }

    /// Decodes the next message from the front of `buf`.
    ///
    /// # Errors
    ///
    /// Any [`DecodeError`]: the peer sent something that is not a message in this framing, or
    /// a message over the size limit. The connection cannot continue after an error.
    pub fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<Frame>, DecodeError> {
        match &mut self.inner {
            DecoderKind::Json(d) => d.decode(buf),
            DecoderKind::Cbor(d) => d.decode(buf),
        }
    }
}

/// Maximum nesting depth of arrays and maps accepted by both decoders (JSON::XS's default).
pub const MAX_DEPTH: usize = 512;

/// Turns the first element of a wire message into a destination port name.
///
/// Perl stringifies the first element (reference §4.10), so numbers and `null` are accepted;
/// arrays and maps cannot name a port.
pub(crate) fn destination_from_value(v: Value) -> Result<String, DecodeError> {
    match v {
        Value::String(s) => Ok(s),
        Value::Array(_) | Value::Map(_) => Err(DecodeError::BadDestination { found: kind_of(&v) }),
        other => Ok(other
            .to_perl_string()
            .map(std::borrow::Cow::into_owned)
            .unwrap_or_default()),
    }
}
