//! The `cbor` framing: concatenated CBOR data items (RFC 8949), each an array.
//! (Implementation in progress.)

use bytes::BytesMut;

use crate::error::DecodeError;
use crate::framing::Frame;
use crate::value::Value;

/// Incremental decoder for the `json` framing.
#[derive(Debug)]
pub struct CborDecoder {
    max: usize,
}

impl CborDecoder {
    /// Creates a decoder refusing messages over `max` bytes.
    pub fn new(max: usize) -> Self {
        Self { max }
    }

    /// See [`crate::framing::FrameDecoder::decode`].
    ///
    /// # Errors
    ///
    /// See [`crate::framing::FrameDecoder::decode`].
    pub fn decode(&mut self, _buf: &mut BytesMut) -> Result<Option<Frame>, DecodeError> {
        let _ = self.max;
        todo!("cbor decoder")
    }
}

/// Appends one message `[port, elements...]` as CBOR.
pub fn encode_frame(_port: &str, _elements: &[Value], _out: &mut Vec<u8>) {
    todo!("cbor encoder")
}
