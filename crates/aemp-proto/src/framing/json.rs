//! The `json` framing: concatenated compact JSON texts, each an array (reference §4.9–4.10).
//! (Implementation in progress.)

use bytes::BytesMut;

use crate::error::DecodeError;
use crate::framing::Frame;
use crate::value::Value;

/// Incremental decoder for the `json` framing.
#[derive(Debug)]
pub struct JsonDecoder {
    max: usize,
}

impl JsonDecoder {
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
        todo!("json decoder")
    }
}

/// Appends one message `[port, elements...]` as compact JSON.
pub fn encode_frame(_port: &str, _elements: &[Value], _out: &mut Vec<u8>) {
    todo!("json encoder")
}

/// Appends one value as compact JSON.
pub fn encode_value(_value: &Value, _out: &mut Vec<u8>) {
    todo!("json encoder")
}
