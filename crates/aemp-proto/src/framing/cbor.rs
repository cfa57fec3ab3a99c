//! The `cbor` framing: concatenated CBOR data items (RFC 8949), each an array.
//!
//! aemp's binary framing between Rust nodes. Every message is one CBOR data item, an array
//! `[destination port name, elements...]`, and messages follow each other with no delimiter.
//! The empty array `[]` (the single byte `0x80`) is the keepalive and decodes as a [`Frame`]
//! with the port `""` and no elements.
//!
//! ```
//! use aemp_proto::framing::cbor::{CborDecoder, decode_value, encode_frame};
//! use aemp_proto::{Frame, Value};
//! use bytes::BytesMut;
//!
//! let mut wire = Vec::new();
//! encode_frame("sink", &[Value::from("0123456789")], &mut wire);
//! assert_eq!(wire[..6], [0x82, 0x64, b's', b'i', b'n', b'k']);
//!
//! let mut decoder = CborDecoder::new(64 * 1024 * 1024);
//! let mut buf = BytesMut::from(&wire[..9]); // a partial read
//! assert_eq!(decoder.decode(&mut buf)?, None);
//! buf.extend_from_slice(&wire[9..]); // the rest arrives
//! let frame = decoder.decode(&mut buf)?.expect("a whole message is buffered");
//! assert_eq!(frame, Frame::new("sink", vec![Value::from("0123456789")]));
//! assert!(buf.is_empty());
//!
//! // The decoder accepts more than the encoder writes, such as half-precision floats.
//! assert_eq!(decode_value(&[0xf9, 0x3c, 0x00])?, Value::Float(1.0));
//! # Ok::<(), aemp_proto::DecodeError>(())
//! ```
//!
//! # Values
//!
//! | [`Value`]        | written as                          | also accepted on input          |
//! |------------------|-------------------------------------|---------------------------------|
//! | `Null`           | simple value 22 (`0xf6`)            | undefined (`0xf7`)              |
//! | `Bool`           | `0xf4`, `0xf5`                      |                                 |
//! | `Int`, `UInt`    | major type 0 (≥ 0) or 1 (< 0)       | non-shortest heads              |
//! | `Float`          | double precision (`0xfb`), always   | half and single precision       |
//! | `String`         | text string (major type 3)          | indefinite length (chunked)     |
//! | `Bytes`          | byte string (major type 2)          | indefinite length (chunked)     |
//! | `Array`          | array (major type 4)                | indefinite length               |
//! | `Map`            | map (major type 5), keys any value  | indefinite length               |
//!
//! The encoder writes definite lengths and shortest-form heads only. Floats are always written
//! as doubles: exact for every `f64`, and cheaper than searching for a shorter lossless form.
//!
//! # Limits and choices
//!
//! - Tags (major type 6) are accepted and ignored: a tagged item decodes as the item itself,
//!   so bignums (tags 2 and 3) come out as [`Value::Bytes`] and a date (tag 0) as a string. A
//!   tag may also precede the message array (such as the self-described CBOR tag 55799).
//! - Negative integers below `i64::MIN` are refused as [`DecodeError::Malformed`]: [`Value`]
//!   has no type for them, and a float would silently lose precision. Integers above
//!   `i64::MAX` decode as [`Value::UInt`]; all others as [`Value::Int`].
//! - Simple values other than false, true, null and undefined are refused.
//! - Text strings must be valid UTF-8; each chunk of an indefinite-length text string must be
//!   valid on its own (RFC 8949 §3.2.3).
//! - Arrays, maps and tags may nest at most [`MAX_DEPTH`] levels, the message array counting
//!   as the first; deeper input fails with [`DecodeError::TooDeep`].
//! - A message larger than the decoder's limit fails with [`DecodeError::TooLarge`] as soon as
//!   a head shows it cannot fit (a declared string length or element count, or the bytes
//!   scanned so far), before it is buffered or anything is allocated for it.
//!
//! # Decoding
//!
//! When a message starts at the front of the buffer, [`CborDecoder`] first simply tries to parse
//! it into [`Value`]s: if it is entirely buffered, that is all. Otherwise a resumable scanner
//! takes over: it checks the structure and finds where the message ends, keeping its position
//! and a stack of open containers between calls, so a message arriving in many reads is scanned
//! once (and parsed once more when complete). Both passes are linear in the message size.

use bytes::{Buf, BytesMut};

use crate::error::DecodeError;
use crate::framing::{Frame, Framing, MAX_DEPTH, destination_from_value};
use crate::value::{Message, Value};

const MAJOR_UINT: u8 = 0;
const MAJOR_NINT: u8 = 1;
const MAJOR_BYTES: u8 = 2;
const MAJOR_TEXT: u8 = 3;
const MAJOR_ARRAY: u8 = 4;
const MAJOR_MAP: u8 = 5;
const MAJOR_TAG: u8 = 6;
const MAJOR_SIMPLE: u8 = 7;

/// Additional information 31: indefinite length, or "break" in major type 7.
const INDEFINITE: u8 = 31;
/// The "break" stop code ending indefinite-length items.
const BREAK: u8 = 0xff;

const R_RESERVED: &str = "reserved additional information";
const R_TRUNCATED: &str = "truncated data item";
const R_INDEFINITE: &str = "indefinite length on an integer or tag";
const R_BREAK: &str = "unexpected break";
const R_ODD_MAP: &str = "indefinite-length map ends after a key";
const R_CHUNK: &str = "indefinite-length string chunk is not a definite string of its type";
const R_INT_RANGE: &str = "integer out of range";
const R_SIMPLE: &str = "unknown simple value";
const R_UTF8: &str = "invalid UTF-8 in text string";
const R_TRAILING: &str = "trailing bytes after the data item";

fn malformed(offset: usize, reason: &'static str) -> DecodeError {
    DecodeError::Malformed {
        framing: Framing::Cbor,
        offset,
        reason,
    }
}

fn too_deep() -> DecodeError {
    DecodeError::TooDeep { max: MAX_DEPTH }
}

// ------------------------------------------------------------------------------------------
// Encoding
// ------------------------------------------------------------------------------------------

/// Appends one message `[port, elements...]` as CBOR.
///
/// Writes the array head, the port as a text string and the elements, straight into `out`.
/// The output uses definite lengths and shortest-form heads; see the [module
/// documentation](self) for how each [`Value`] is written.
///
/// ```
/// use aemp_proto::Value;
/// use aemp_proto::framing::cbor::encode_frame;
///
/// let mut out = Vec::new();
/// encode_frame("sink", &[Value::from(1)], &mut out);
/// assert_eq!(out, [0x82, 0x64, b's', b'i', b'n', b'k', 0x01]);
/// ```
pub fn encode_frame(port: &str, elements: &[Value], out: &mut Vec<u8>) {
    out.reserve(port.len() + 2 * elements.len() + 4);
    write_head(out, MAJOR_ARRAY, elements.len() as u64 + 1);
    write_head(out, MAJOR_TEXT, port.len() as u64);
    out.extend_from_slice(port.as_bytes());
    for element in elements {
        encode_value(element, out);
    }
}

/// Appends one value as a CBOR data item.
///
/// Definite lengths, shortest-form heads, floats as doubles; see the [module
/// documentation](self). Recurses once per level of nesting in `value`.
///
/// ```
/// use aemp_proto::Value;
/// use aemp_proto::framing::cbor::encode_value;
///
/// let mut out = Vec::new();
/// encode_value(&Value::Array(vec![Value::from(-1), Value::Null]), &mut out);
/// assert_eq!(out, [0x82, 0x20, 0xf6]);
/// ```
pub fn encode_value(value: &Value, out: &mut Vec<u8>) {
    match value {
        Value::Null => out.push(0xf6),
        Value::Bool(false) => out.push(0xf4),
        Value::Bool(true) => out.push(0xf5),
        &Value::Int(i) if i >= 0 => write_head(out, MAJOR_UINT, i.unsigned_abs()),
        // -1 - i, which is !i in two's complement; never negative for a negative i.
        &Value::Int(i) => write_head(out, MAJOR_NINT, (!i).unsigned_abs()),
        &Value::UInt(u) => write_head(out, MAJOR_UINT, u),
        Value::Float(f) => {
            out.push(0xfb);
            out.extend_from_slice(&f.to_bits().to_be_bytes());
        }
        Value::String(s) => {
            write_head(out, MAJOR_TEXT, s.len() as u64);
            out.extend_from_slice(s.as_bytes());
        }
        Value::Bytes(b) => {
            write_head(out, MAJOR_BYTES, b.len() as u64);
            out.extend_from_slice(b);
        }
        Value::Array(items) => {
            write_head(out, MAJOR_ARRAY, items.len() as u64);
            for item in items {
                encode_value(item, out);
            }
        }
        Value::Map(entries) => {
            write_head(out, MAJOR_MAP, entries.len() as u64);
            for (key, item) in entries {
                encode_value(key, out);
                encode_value(item, out);
            }
        }
    }
}

/// Writes a head in its shortest form.
#[inline]
fn write_head(out: &mut Vec<u8>, major: u8, arg: u64) {
    let m = major << 5;
    if arg < 24 {
        out.push(m | arg as u8);
    } else if let Ok(a) = u8::try_from(arg) {
        out.extend_from_slice(&[m | 24, a]);
    } else if let Ok(a) = u16::try_from(arg) {
        let [b0, b1] = a.to_be_bytes();
        out.extend_from_slice(&[m | 25, b0, b1]);
    } else if let Ok(a) = u32::try_from(arg) {
        let [b0, b1, b2, b3] = a.to_be_bytes();
        out.extend_from_slice(&[m | 26, b0, b1, b2, b3]);
    } else {
        out.push(m | 27);
        out.extend_from_slice(&arg.to_be_bytes());
    }
}

// ------------------------------------------------------------------------------------------
// Heads
// ------------------------------------------------------------------------------------------

/// A decoded head: the initial byte split up, its argument, and its length in bytes.
#[derive(Clone, Copy, Debug)]
struct Head {
    major: u8,
    info: u8,
    arg: u64,
    len: usize,
}

/// The length of a head whose additional information is `info`, `None` if reserved (28–30).
#[inline]
fn head_len(info: u8) -> Option<usize> {
    match info {
        0..=23 | INDEFINITE => Some(1),
        24 => Some(2),
        25 => Some(3),
        26 => Some(5),
        27 => Some(9),
        _ => None,
    }
}

/// Decodes the head at the start of `bytes`: `Ok(None)` if `bytes` ends inside it, `Err(())`
/// for reserved additional information.
#[inline]
fn read_head(bytes: &[u8]) -> Result<Option<Head>, ()> {
    let Some((&initial, rest)) = bytes.split_first() else {
        return Ok(None);
    };
    let major = initial >> 5;
    let info = initial & 0x1f;
    let (arg, len) = match info {
        0..=23 => (u64::from(info), 1),
        INDEFINITE => (0, 1),
        24 => match rest.first() {
            Some(&b) => (u64::from(b), 2),
            None => return Ok(None),
        },
        25 => match rest.first_chunk::<2>() {
            Some(&b) => (u64::from(u16::from_be_bytes(b)), 3),
            None => return Ok(None),
        },
        26 => match rest.first_chunk::<4>() {
            Some(&b) => (u64::from(u32::from_be_bytes(b)), 5),
            None => return Ok(None),
        },
        27 => match rest.first_chunk::<8>() {
            Some(&b) => (u64::from_be_bytes(b), 9),
            None => return Ok(None),
        },
        _ => return Err(()),
    };
    Ok(Some(Head {
        major,
        info,
        arg,
        len,
    }))
}

/// The error for a first head that is not an array (or a tag before one), from its initial
/// byte split into `major` and `info` (28–30 excluded).
fn not_an_array(major: u8, info: u8, offset: usize) -> DecodeError {
    let found = match (major, info) {
        (MAJOR_UINT | MAJOR_NINT | MAJOR_TAG, INDEFINITE) => {
            return malformed(offset, R_INDEFINITE);
        }
        (MAJOR_SIMPLE, INDEFINITE) => return malformed(offset, R_BREAK),
        (MAJOR_SIMPLE, 0..=19 | 24) => return malformed(offset, R_SIMPLE),
        (MAJOR_UINT | MAJOR_NINT, _) => "integer",
        (MAJOR_BYTES, _) => "bytes",
        (MAJOR_TEXT, _) => "string",
        (MAJOR_ARRAY, _) => "array",
        (MAJOR_MAP, _) => "map",
        (MAJOR_TAG, _) => "tag",
        (_, 20 | 21) => "boolean",
        (_, 22 | 23) => "null",
        _ => "float",
    };
    DecodeError::NotAnArray { found }
}

/// Converts an IEEE 754 half-precision float to `f64` (exactly: every half is a double).
fn f16_to_f64(half: u16) -> f64 {
    let sign = u64::from(half >> 15) << 63;
    let exponent = u64::from((half >> 10) & 0x1f);
    let mantissa = u64::from(half & 0x3ff);
    let bits = match exponent {
        // Zero or subnormal: mantissa · 2^-24, exact in a double.
        0 => {
            let magnitude = f64::from(half & 0x3ff) * f64::from_bits((1023 - 24) << 52);
            sign | magnitude.to_bits()
        }
        // Infinity or NaN (the payload is kept).
        0x1f => sign | (0x7ff << 52) | (mantissa << 42),
        // Normal: rebias the exponent from 15 to 1023, widen the mantissa from 10 to 52 bits.
        _ => sign | ((exponent + 1023 - 15) << 52) | (mantissa << 42),
    };
    f64::from_bits(bits)
}

// ------------------------------------------------------------------------------------------
// The resumable scanner
// ------------------------------------------------------------------------------------------

/// A container the scanner is inside of.
#[derive(Clone, Copy, Debug)]
enum Open {
    /// A definite-length array or map, with this many items still expected (map keys and
    /// values counted separately); always ≥ 1.
    Items(u64),
    /// An indefinite-length array.
    Array,
    /// An indefinite-length map; `odd` after a key whose value has not been seen yet.
    Map { odd: bool },
    /// An indefinite-length string of this major type: definite chunks until a break.
    Chunks(u8),
    /// A tag, awaiting its item.
    Tag,
}

/// Finds the end of the message at the front of the buffer, one head at a time, resumably.
#[derive(Debug, Default)]
struct Scanner {
    /// Offset of the next head from the start of the message. Lies beyond the buffered bytes
    /// while the rest of a string's content is awaited.
    pos: usize,
    /// The containers (and tags) open at `pos`, outermost first; at most [`MAX_DEPTH`] of them
    /// plus one [`Open::Chunks`].
    stack: Vec<Open>,
    /// The message array's head has been read.
    in_root: bool,
    /// The whole message has been scanned; it ends at `pos`.
    done: bool,
}

impl Scanner {
    /// Scans on from where the last call stopped. Returns the length of the message once it is
    /// entirely in `buf`, `None` if more bytes are needed.
    #[inline]
    fn scan(&mut self, buf: &[u8], max: usize) -> Result<Option<usize>, DecodeError> {
        if self.pos == 0 && buf.is_empty() {
            return Ok(None);
        }
        loop {
            if self.done {
                return Ok((buf.len() >= self.pos).then_some(self.pos));
            }
            let start = self.pos;
            // The message is unfinished, so it needs at least one more byte.
            if start >= max {
                return Err(DecodeError::TooLarge { max });
            }
            let Some(&initial) = buf.get(start) else {
                return Ok(None);
            };
            let (major, info) = (initial >> 5, initial & 0x1f);
            let Some(len) = head_len(info) else {
                return Err(malformed(start, R_RESERVED));
            };
            if !self.in_root && major != MAJOR_ARRAY && major != MAJOR_TAG {
                return Err(not_an_array(major, info, start));
            }
            if len > max - start {
                return Err(DecodeError::TooLarge { max });
            }
            let head = match buf.get(start..).map(read_head) {
                Some(Ok(Some(head))) => head,
                Some(Ok(None)) | None => return Ok(None),
                Some(Err(())) => return Err(malformed(start, R_RESERVED)),
            };
            self.pos = start + head.len;
            self.step(head, start, max)?;
        }
    }

    /// Accounts for one head that starts at `start`; `self.pos` is already past it.
    #[inline]
    fn step(&mut self, head: Head, start: usize, max: usize) -> Result<(), DecodeError> {
        if let Some(&Open::Chunks(string_major)) = self.stack.last() {
            if head.major == MAJOR_SIMPLE && head.info == INDEFINITE {
                self.stack.pop();
                self.item_done();
                return Ok(());
            }
            if head.major != string_major || head.info == INDEFINITE {
                return Err(malformed(start, R_CHUNK));
            }
            return self.skip(head.arg, max);
        }
        match (head.major, head.info) {
            (MAJOR_UINT | MAJOR_NINT | MAJOR_TAG, INDEFINITE) => {
                return Err(malformed(start, R_INDEFINITE));
            }
            (MAJOR_SIMPLE, INDEFINITE) => return self.close_indefinite(start),
            (MAJOR_SIMPLE, 0..=19 | 24) => return Err(malformed(start, R_SIMPLE)),
            _ => {}
        }
        match head.major {
            MAJOR_NINT if head.arg > i64::MAX as u64 => Err(malformed(start, R_INT_RANGE)),
            MAJOR_BYTES | MAJOR_TEXT if head.info == INDEFINITE => {
                self.stack.push(Open::Chunks(head.major));
                Ok(())
            }
            MAJOR_BYTES | MAJOR_TEXT => {
                self.skip(head.arg, max)?;
                self.item_done();
                Ok(())
            }
            MAJOR_ARRAY | MAJOR_MAP => {
                // Only the first array can be met before the message array (see `scan`).
                self.in_root = true;
                if self.stack.len() >= MAX_DEPTH {
                    return Err(too_deep());
                }
                let is_map = head.major == MAJOR_MAP;
                if head.info == INDEFINITE {
                    self.stack.push(if is_map {
                        Open::Map { odd: false }
                    } else {
                        Open::Array
                    });
                    return Ok(());
                }
                let items = if is_map {
                    head.arg.checked_mul(2)
                } else {
                    Some(head.arg)
                };
                // Every item takes at least one byte.
                match items {
                    Some(0) => self.item_done(),
                    Some(n) if n <= (max - self.pos) as u64 => self.stack.push(Open::Items(n)),
                    _ => return Err(DecodeError::TooLarge { max }),
                }
                Ok(())
            }
            MAJOR_TAG => {
                if self.stack.len() >= MAX_DEPTH {
                    return Err(too_deep());
                }
                self.stack.push(Open::Tag);
                Ok(())
            }
            // Unsigned and negative integers, false, true, null, undefined, floats.
            _ => {
                self.item_done();
                Ok(())
            }
        }
    }

    /// Skips `len` bytes of string content, which need not be buffered yet.
    #[inline]
    fn skip(&mut self, len: u64, max: usize) -> Result<(), DecodeError> {
        match usize::try_from(len) {
            Ok(len) if len <= max - self.pos => {
                self.pos += len;
                Ok(())
            }
            _ => Err(DecodeError::TooLarge { max }),
        }
    }

    /// Handles a break at `start`.
    fn close_indefinite(&mut self, start: usize) -> Result<(), DecodeError> {
        match self.stack.last() {
            Some(Open::Array | Open::Map { odd: false }) => {
                self.stack.pop();
                self.item_done();
                Ok(())
            }
            Some(Open::Map { odd: true }) => Err(malformed(start, R_ODD_MAP)),
            _ => Err(malformed(start, R_BREAK)),
        }
    }

    /// Records that one complete item has been scanned, closing every container it completes.
    #[inline]
    fn item_done(&mut self) {
        while let Some(top) = self.stack.last_mut() {
            match top {
                Open::Items(n) if *n > 1 => {
                    *n -= 1;
                    return;
                }
                Open::Items(_) | Open::Tag => {
                    self.stack.pop();
                }
                Open::Map { odd } => {
                    *odd = !*odd;
                    return;
                }
                Open::Array | Open::Chunks(_) => return,
            }
        }
        self.done = true;
    }

    /// No byte of the current message has been scanned yet.
    fn is_fresh(&self) -> bool {
        self.pos == 0 && !self.done && !self.in_root && self.stack.is_empty()
    }

    fn reset(&mut self) {
        self.pos = 0;
        self.stack.clear();
        self.in_root = false;
        self.done = false;
    }
}

// ------------------------------------------------------------------------------------------
// The parser
// ------------------------------------------------------------------------------------------

/// Builds [`Value`]s from one data item. It checks everything the scanner checks except the
/// size limit (which the slice it is given enforces), so it is safe on input the scanner has not
/// seen; unlike the scanner it treats running out of bytes as an error.
struct Parser<'a> {
    data: &'a [u8],
    pos: usize,
}

impl<'a> Parser<'a> {
    fn new(data: &'a [u8]) -> Self {
        Self { data, pos: 0 }
    }

    fn rest(&self) -> &'a [u8] {
        self.data.get(self.pos..).unwrap_or_default()
    }

    #[inline]
    fn head(&mut self) -> Result<Head, DecodeError> {
        match read_head(self.rest()) {
            Ok(Some(head)) => {
                self.pos += head.len;
                Ok(head)
            }
            Ok(None) => Err(malformed(self.pos, R_TRUNCATED)),
            Err(()) => Err(malformed(self.pos, R_RESERVED)),
        }
    }

    /// Consumes a break if one comes next.
    #[inline]
    fn at_break(&mut self) -> bool {
        if self.rest().first() == Some(&BREAK) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    /// Takes `len` bytes of string content.
    #[inline]
    fn take(&mut self, len: u64) -> Result<&'a [u8], DecodeError> {
        let rest = self.rest();
        match usize::try_from(len).ok().and_then(|len| rest.get(..len)) {
            Some(bytes) => {
                self.pos += bytes.len();
                Ok(bytes)
            }
            None => Err(malformed(self.pos, R_TRUNCATED)),
        }
    }

    /// A capacity for `count` items of at least `size` bytes each: never more than the
    /// remaining bytes can hold, whatever the head claims.
    fn capacity(&self, count: u64, size: usize) -> usize {
        let fits = self.rest().len() / size;
        usize::try_from(count).map_or(fits, |count| count.min(fits))
    }

    /// Parses one item whose nesting depth (counting arrays, maps and tags) is `depth`.
    fn value(&mut self, mut depth: usize) -> Result<Value, DecodeError> {
        loop {
            let start = self.pos;
            let head = self.head()?;
            return match (head.major, head.info) {
                (MAJOR_UINT | MAJOR_NINT | MAJOR_TAG, INDEFINITE) => {
                    Err(malformed(start, R_INDEFINITE))
                }
                (MAJOR_UINT, _) => Ok(Value::from_u64(head.arg)),
                (MAJOR_NINT, _) => match i64::try_from(head.arg) {
                    Ok(n) => Ok(Value::Int(-1 - n)),
                    Err(_) => Err(malformed(start, R_INT_RANGE)),
                },
                (MAJOR_BYTES, INDEFINITE) => self.chunks(MAJOR_BYTES).map(Value::Bytes),
                (MAJOR_BYTES, _) => Ok(Value::Bytes(self.take(head.arg)?.to_vec())),
                (MAJOR_TEXT, INDEFINITE) => {
                    let bytes = self.chunks(MAJOR_TEXT)?;
                    // Every chunk was checked, so this cannot fail.
                    String::from_utf8(bytes)
                        .map(Value::String)
                        .map_err(|_| malformed(start, R_UTF8))
                }
                (MAJOR_TEXT, _) => {
                    let offset = self.pos;
                    let bytes = self.take(head.arg)?;
                    Ok(Value::String(utf8(bytes, offset)?.to_owned()))
                }
                (MAJOR_ARRAY, _) => self.array(head, depth).map(Value::Array),
                (MAJOR_MAP, _) => self.map(head, depth).map(Value::Map),
                (MAJOR_TAG, _) => {
                    if depth > MAX_DEPTH {
                        return Err(too_deep());
                    }
                    depth += 1;
                    continue;
                }
                (_, 20) => Ok(Value::Bool(false)),
                (_, 21) => Ok(Value::Bool(true)),
                (_, 22 | 23) => Ok(Value::Null),
                // The head is 3, 5 or 9 bytes long, so the argument fits.
                (_, 25) => Ok(Value::Float(f16_to_f64(head.arg as u16))),
                (_, 26) => Ok(Value::Float(f64::from(f32::from_bits(head.arg as u32)))),
                (_, 27) => Ok(Value::Float(f64::from_bits(head.arg))),
                (_, INDEFINITE) => Err(malformed(start, R_BREAK)),
                _ => Err(malformed(start, R_SIMPLE)),
            };
        }
    }

    /// The chunks of an indefinite-length string of major type `major`, concatenated.
    fn chunks(&mut self, major: u8) -> Result<Vec<u8>, DecodeError> {
        let mut out = Vec::new();
        loop {
            if self.at_break() {
                return Ok(out);
            }
            let start = self.pos;
            let head = self.head()?;
            if head.major != major || head.info == INDEFINITE {
                return Err(malformed(start, R_CHUNK));
            }
            let offset = self.pos;
            let chunk = self.take(head.arg)?;
            if major == MAJOR_TEXT {
                utf8(chunk, offset)?;
            }
            out.extend_from_slice(chunk);
        }
    }

    fn array(&mut self, head: Head, depth: usize) -> Result<Vec<Value>, DecodeError> {
        if depth > MAX_DEPTH {
            return Err(too_deep());
        }
        if head.info == INDEFINITE {
            let mut items = Vec::new();
            while !self.at_break() {
                items.push(self.value(depth + 1)?);
            }
            Ok(items)
        } else {
            let mut items = Vec::with_capacity(self.capacity(head.arg, 1));
            for _ in 0..head.arg {
                items.push(self.value(depth + 1)?);
            }
            Ok(items)
        }
    }

    fn map(&mut self, head: Head, depth: usize) -> Result<Vec<(Value, Value)>, DecodeError> {
        if depth > MAX_DEPTH {
            return Err(too_deep());
        }
        if head.info == INDEFINITE {
            let mut entries = Vec::new();
            while !self.at_break() {
                let key = self.value(depth + 1)?;
                let value = self.value(depth + 1)?;
                entries.push((key, value));
            }
            Ok(entries)
        } else {
            let mut entries = Vec::with_capacity(self.capacity(head.arg, 2));
            for _ in 0..head.arg {
                let key = self.value(depth + 1)?;
                let value = self.value(depth + 1)?;
                entries.push((key, value));
            }
            Ok(entries)
        }
    }

    /// Parses a whole message: optional tags, then `[port, elements...]`.
    fn frame(&mut self) -> Result<Frame, DecodeError> {
        let mut depth = 1;
        let head = loop {
            let start = self.pos;
            let head = self.head()?;
            match (head.major, head.info) {
                (MAJOR_ARRAY, _) => break head,
                (MAJOR_TAG, info) if info != INDEFINITE => {
                    if depth > MAX_DEPTH {
                        return Err(too_deep());
                    }
                    depth += 1;
                }
                _ => return Err(not_an_array(head.major, head.info, start)),
            }
        };
        if depth > MAX_DEPTH {
            return Err(too_deep());
        }
        let frame = if head.info == INDEFINITE {
            if self.at_break() {
                Frame::default()
            } else {
                let port = self.port(depth + 1)?;
                let mut message = Message::empty();
                while !self.at_break() {
                    message.push(self.value(depth + 1)?);
                }
                Frame { port, message }
            }
        } else if head.arg == 0 {
            Frame::default()
        } else {
            let port = self.port(depth + 1)?;
            // Filled in place: a small message needs no allocation for its elements.
            let mut message = Message::with_capacity(self.capacity(head.arg - 1, 1));
            for _ in 1..head.arg {
                message.push(self.value(depth + 1)?);
            }
            Frame { port, message }
        };
        Ok(frame)
    }

    /// Parses the first element of a message, the destination port.
    #[inline]
    fn port(&mut self, depth: usize) -> Result<String, DecodeError> {
        // Fast path: a short definite text string, the usual case.
        if let Some(&initial) = self.rest().first()
            && initial >> 5 == MAJOR_TEXT
            && initial & 0x1f < 24
        {
            self.pos += 1;
            let offset = self.pos;
            let bytes = self.take(u64::from(initial & 0x1f))?;
            return Ok(utf8(bytes, offset)?.to_owned());
        }
        destination_from_value(self.value(depth)?)
    }

    /// Fails unless every byte has been consumed.
    fn finish(&self) -> Result<(), DecodeError> {
        if self.pos == self.data.len() {
            Ok(())
        } else {
            Err(malformed(self.pos, R_TRAILING))
        }
    }
}

/// Checks UTF-8; `offset` is where `bytes` start in the message, for the error.
#[inline]
fn utf8(bytes: &[u8], offset: usize) -> Result<&str, DecodeError> {
    std::str::from_utf8(bytes).map_err(|e| malformed(offset + e.valid_up_to(), R_UTF8))
}

/// Decodes exactly one complete CBOR data item of any kind.
///
/// Accepts everything the [`CborDecoder`] accepts inside a message (see the [module
/// documentation](self)); nesting is limited to [`MAX_DEPTH`], but there is no size limit
/// beyond the length of `item`.
///
/// ```
/// use aemp_proto::Value;
/// use aemp_proto::framing::cbor::decode_value;
///
/// // An indefinite-length array holding 1 and a two-chunk text string.
/// let item = [0x9f, 0x01, 0x7f, 0x61, b'a', 0x61, b'b', 0xff, 0xff];
/// assert_eq!(
///     decode_value(&item)?,
///     Value::Array(vec![Value::from(1), Value::from("ab")])
/// );
/// # Ok::<(), aemp_proto::DecodeError>(())
/// ```
///
/// # Errors
///
/// [`DecodeError::Malformed`] if `item` is not one well-formed data item of the supported
/// kinds (including when it is truncated or followed by more bytes), and
/// [`DecodeError::TooDeep`] if it nests too deeply.
pub fn decode_value(item: &[u8]) -> Result<Value, DecodeError> {
    let mut parser = Parser::new(item);
    let value = parser.value(1)?;
    parser.finish()?;
    Ok(value)
}

// ------------------------------------------------------------------------------------------
// The frame decoder
// ------------------------------------------------------------------------------------------

/// Incremental decoder for the `cbor` framing.
///
/// Keeps how far it has scanned the message at the front of the buffer, so each byte is
/// scanned once however the message is split into reads. After an error the stream is broken
/// and the decoder must not be used again.
#[derive(Debug)]
pub struct CborDecoder {
    max: usize,
    scanner: Scanner,
}

impl CborDecoder {
    /// Creates a decoder refusing messages over `max` bytes.
    pub fn new(max: usize) -> Self {
        Self {
            max,
            scanner: Scanner::default(),
        }
    }

    /// See [`crate::framing::FrameDecoder::decode`].
    ///
    /// # Errors
    ///
    /// See [`crate::framing::FrameDecoder::decode`]. The top-level item must be an array
    /// ([`DecodeError::NotAnArray`] otherwise, as soon as its first byte arrives) whose first
    /// element names a port ([`DecodeError::BadDestination`] for an array or a map).
    pub fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<Frame>, DecodeError> {
        if self.scanner.is_fresh() {
            // Fast path: parse straight away; this succeeds when the whole message is buffered
            // and valid, and then checks everything the scanner would (the window enforces the
            // size limit). Otherwise the scanner starts over, so the bytes of a message are
            // parsed at most once before it is complete, and errors are the scanner's.
            let window = buf.get(..self.max).unwrap_or(&buf[..]);
            let mut parser = Parser::new(window);
            if let Ok(frame) = parser.frame() {
                buf.advance(parser.pos);
                return Ok(Some(frame));
            }
        }
        let Some(end) = self.scanner.scan(buf, self.max)? else {
            return Ok(None);
        };
        self.scanner.reset();
        let mut parser = Parser::new(buf.get(..end).unwrap_or_default());
        let frame = parser.frame();
        let finished = parser.finish();
        buf.advance(end);
        let frame = frame?;
        finished?;
        Ok(Some(frame))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(s: &str) -> Vec<u8> {
        let s: String = s.chars().filter(|c| !c.is_whitespace()).collect();
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    /// Decodes `bytes` with a fresh decoder allowing `max` bytes.
    fn decode_with(max: usize, bytes: &[u8]) -> Result<Option<Frame>, DecodeError> {
        CborDecoder::new(max).decode(&mut BytesMut::from(bytes))
    }

    fn decode(bytes: &[u8]) -> Result<Option<Frame>, DecodeError> {
        decode_with(1 << 20, bytes)
    }

    fn is_malformed(result: Result<Option<Frame>, DecodeError>, at: usize, why: &str) -> bool {
        matches!(result, Err(DecodeError::Malformed { framing: Framing::Cbor, offset, reason })
            if offset == at && reason == why)
    }

    fn nested_arrays(depth: usize) -> Vec<u8> {
        // The message array, `depth - 1` nested one-element arrays, then a 0 inside.
        let mut bytes = vec![0x82, 0x60];
        bytes.extend(std::iter::repeat_n(0x81, depth - 1));
        bytes.push(0x00);
        bytes
    }

    #[test]
    fn decodes_a_small_message() {
        let bytes = hex("82 64 73696e6b 6a 30313233343536373839");
        let frame = decode(&bytes).unwrap().unwrap();
        assert_eq!(frame, Frame::new("sink", vec![Value::from("0123456789")]));
    }

    #[test]
    fn keepalive_is_an_empty_frame() {
        for bytes in [&[0x80][..], &[0x9f, 0xff], &[0xd9, 0xd9, 0xf7, 0x80]] {
            let frame = decode(bytes).unwrap().unwrap();
            assert!(frame.is_keepalive(), "{bytes:x?}");
        }
    }

    #[test]
    fn destination_is_stringified() {
        let frame = decode(&[0x82, 0x01, 0xf6]).unwrap().unwrap();
        assert_eq!(frame, Frame::new("1", vec![Value::Null]));
        let frame = decode(&[0x81, 0xf6]).unwrap().unwrap();
        assert_eq!(frame, Frame::new("", vec![]));
        let frame = decode(&[0x9f, 0x63, b'a', b'b', b'c', 0x20, 0xff])
            .unwrap()
            .unwrap();
        assert_eq!(frame, Frame::new("abc", vec![Value::from(-1)]));
    }

    #[test]
    fn empty_buffer_needs_more() {
        assert_eq!(decode(&[]), Ok(None));
    }

    #[test]
    fn truncated_message_needs_more() {
        let bytes = hex("83 64 73696e6b 19 0100 7a 00000003 616263");
        for cut in 0..bytes.len() {
            assert_eq!(decode(&bytes[..cut]), Ok(None), "cut at {cut}");
        }
        let frame = decode(&bytes).unwrap().unwrap();
        assert_eq!(
            frame,
            Frame::new("sink", vec![Value::from(256), Value::from("abc")])
        );
    }

    #[test]
    fn leaves_the_next_message_in_the_buffer() {
        let mut buf = BytesMut::from(&[0x81, 0x60, 0x80, 0x82][..]);
        let mut decoder = CborDecoder::new(100);
        assert_eq!(decoder.decode(&mut buf), Ok(Some(Frame::default())));
        assert_eq!(&buf[..], [0x80, 0x82]);
        assert_eq!(decoder.decode(&mut buf), Ok(Some(Frame::default())));
        assert_eq!(decoder.decode(&mut buf), Ok(None));
        assert_eq!(&buf[..], [0x82]);
    }

    #[test]
    fn scanner_resumes_where_it_stopped() {
        // 100 000 one-byte items arriving in 4 KiB reads: every call scans only the new bytes.
        let count = 100_000_u32;
        let mut wire = vec![0x9a];
        wire.extend_from_slice(&(count + 1).to_be_bytes());
        wire.push(0x60);
        wire.extend(std::iter::repeat_n(0x07, count as usize));
        let mut decoder = CborDecoder::new(1 << 20);
        let mut buf = BytesMut::new();
        let mut chunks = wire.chunks(4096).peekable();
        while let Some(chunk) = chunks.next() {
            buf.extend_from_slice(chunk);
            let result = decoder.decode(&mut buf).unwrap();
            if chunks.peek().is_some() {
                assert!(result.is_none());
                assert_eq!(decoder.scanner.pos, buf.len());
                assert_eq!(decoder.scanner.stack.len(), 1);
            } else {
                let frame = result.unwrap();
                assert_eq!(frame.message.len(), count as usize);
                assert_eq!(decoder.scanner.pos, 0);
            }
        }
        assert!(buf.is_empty());
    }

    #[test]
    fn string_content_is_skipped_not_buffered_first() {
        // Once the head of a long string is scanned, the scanner waits for its end.
        let mut wire = vec![0x82, 0x60, 0x79, 0x10, 0x00];
        wire.extend(std::iter::repeat_n(b'x', 0x1000));
        let mut decoder = CborDecoder::new(1 << 20);
        let mut buf = BytesMut::from(&wire[..10]);
        assert_eq!(decoder.decode(&mut buf), Ok(None));
        assert_eq!(decoder.scanner.pos, wire.len());
        assert!(decoder.scanner.done);
        buf.extend_from_slice(&wire[10..]);
        let frame = decoder.decode(&mut buf).unwrap().unwrap();
        assert_eq!(frame.message[0].as_str().map(str::len), Some(0x1000));
    }

    #[test]
    fn message_of_exactly_max_bytes_is_accepted() {
        let bytes = hex("82 64 73696e6b 6a 30313233343536373839");
        assert!(decode_with(bytes.len(), &bytes).unwrap().is_some());
        assert_eq!(
            decode_with(bytes.len() - 1, &bytes),
            Err(DecodeError::TooLarge {
                max: bytes.len() - 1
            })
        );
    }

    #[test]
    fn f16_conversion() {
        assert_eq!(f16_to_f64(0x0000).to_bits(), 0.0_f64.to_bits());
        assert_eq!(f16_to_f64(0x8000).to_bits(), (-0.0_f64).to_bits());
        assert_eq!(f16_to_f64(0x3c00), 1.0);
        assert_eq!(f16_to_f64(0x3e00), 1.5);
        assert_eq!(f16_to_f64(0xc400), -4.0);
        assert_eq!(f16_to_f64(0x7bff), 65504.0);
        assert_eq!(f16_to_f64(0x0001), 5.960_464_477_539_063e-8);
        assert_eq!(f16_to_f64(0x03ff), 6.097_555_160_522_461e-5);
        assert_eq!(f16_to_f64(0x0400), 6.103_515_625e-5);
        assert_eq!(f16_to_f64(0x8001), -5.960_464_477_539_063e-8);
        assert_eq!(f16_to_f64(0x7c00), f64::INFINITY);
        assert_eq!(f16_to_f64(0xfc00), f64::NEG_INFINITY);
        assert!(f16_to_f64(0x7e00).is_nan());
        assert!(f16_to_f64(0x7c01).is_nan());
    }

    #[test]
    fn encoder_uses_shortest_heads() {
        let cases: [(Value, &str); 14] = [
            (Value::from(0), "00"),
            (Value::from(23), "17"),
            (Value::from(24), "1818"),
            (Value::from(255), "18ff"),
            (Value::from(256), "190100"),
            (Value::from(65_536), "1a00010000"),
            (Value::from(1_u64 << 32), "1b0000000100000000"),
            (Value::from(-1), "20"),
            (Value::from(-24), "37"),
            (Value::from(-25), "3818"),
            (Value::from(i64::MIN), "3b7fffffffffffffff"),
            (Value::UInt(u64::MAX), "1bffffffffffffffff"),
            (Value::Float(1.1), "fb3ff199999999999a"),
            (Value::Float(1.0), "fb3ff0000000000000"),
        ];
        for (value, expected) in cases {
            let mut out = Vec::new();
            encode_value(&value, &mut out);
            assert_eq!(out, hex(expected), "{value:?}");
        }
    }

    // ---- one test per rejected input ----

    #[test]
    fn rejects_non_array_message() {
        let cases: [(&[u8], &str); 9] = [
            (&[0x01], "integer"),
            (&[0x38], "integer"), // only the first byte has arrived
            (&[0x41], "bytes"),
            (&[0x7f], "string"),
            (&[0xa0], "map"),
            (&[0xf5], "boolean"),
            (&[0xf6], "null"),
            (&[0xfb], "float"),
            (&[0xc0, 0x01], "integer"),
        ];
        for (bytes, found) in cases {
            assert_eq!(
                decode(bytes),
                Err(DecodeError::NotAnArray { found }),
                "{bytes:x?}"
            );
        }
    }

    #[test]
    fn rejects_truncated_head_in_a_single_value() {
        for bytes in [
            &[0x18][..],
            &[0x19, 0x01],
            &[0x1a, 1, 2, 3],
            &[0x1b, 1, 2, 3, 4, 5, 6],
        ] {
            let err = decode_value(bytes).unwrap_err();
            assert_eq!(err, malformed(0, R_TRUNCATED), "{bytes:x?}");
        }
        assert_eq!(decode_value(&[]), Err(malformed(0, R_TRUNCATED)));
        assert_eq!(decode_value(&[0x82, 0x01]), Err(malformed(2, R_TRUNCATED)));
        assert_eq!(decode_value(&[0x63, b'a']), Err(malformed(1, R_TRUNCATED)));
        assert_eq!(decode_value(&[0x9f, 0x01]), Err(malformed(2, R_TRUNCATED)));
    }

    #[test]
    fn rejects_trailing_bytes_after_a_single_value() {
        assert_eq!(decode_value(&[0x01, 0x02]), Err(malformed(1, R_TRAILING)));
    }

    #[test]
    fn rejects_reserved_additional_information() {
        for major in 0..8_u8 {
            for info in 28..=30_u8 {
                let initial = major << 5 | info;
                assert!(
                    is_malformed(decode(&[initial]), 0, R_RESERVED),
                    "{initial:#x}"
                );
                assert!(is_malformed(decode(&[0x82, 0x60, initial]), 2, R_RESERVED));
                assert_eq!(decode_value(&[initial]), Err(malformed(0, R_RESERVED)));
            }
        }
    }

    #[test]
    fn rejects_garbage_head_indefinite_integer_or_tag() {
        for initial in [0x1f, 0x3f, 0xdf] {
            assert!(is_malformed(decode(&[initial]), 0, R_INDEFINITE));
            assert!(is_malformed(
                decode(&[0x82, 0x60, initial]),
                2,
                R_INDEFINITE
            ));
            assert_eq!(decode_value(&[initial]), Err(malformed(0, R_INDEFINITE)));
        }
    }

    #[test]
    fn rejects_stray_break() {
        assert!(is_malformed(decode(&[0xff]), 0, R_BREAK));
        assert!(is_malformed(decode(&[0x82, 0x60, 0xff]), 2, R_BREAK));
        assert!(is_malformed(decode(&[0x82, 0x60, 0xc1, 0xff]), 3, R_BREAK));
        assert!(is_malformed(decode(&[0x82, 0x60, 0x81, 0xff]), 3, R_BREAK));
        assert!(is_malformed(
            decode(&[0x9f, 0x60, 0xa1, 0x01, 0xff]),
            4,
            R_BREAK
        ));
        assert_eq!(decode_value(&[0xff]), Err(malformed(0, R_BREAK)));
        assert_eq!(
            decode_value(&[0x82, 0x01, 0xff]),
            Err(malformed(2, R_BREAK))
        );
    }

    #[test]
    fn rejects_break_after_a_map_key() {
        assert!(is_malformed(
            decode(&[0x82, 0x60, 0xbf, 0x01, 0xff]),
            4,
            R_ODD_MAP
        ));
        assert_eq!(
            decode_value(&[0xbf, 0x01, 0xff]),
            Err(malformed(2, R_BREAK))
        );
    }

    #[test]
    fn rejects_bad_utf8() {
        let bytes = [0x82, 0x60, 0x63, b'a', 0xc3, 0x28];
        assert!(is_malformed(decode(&bytes), 4, R_UTF8));
        assert_eq!(decode_value(&bytes[2..]), Err(malformed(2, R_UTF8)));
        // In the port name, and split across the chunks of an indefinite-length string.
        assert!(is_malformed(decode(&[0x81, 0x61, 0xff]), 2, R_UTF8));
        let split = [0x82, 0x60, 0x7f, 0x61, 0xc3, 0x61, 0xbc, 0xff];
        assert!(is_malformed(decode(&split), 4, R_UTF8));
    }

    #[test]
    fn rejects_bad_indefinite_chunk_type() {
        let cases: [&[u8]; 5] = [
            &[0x5f, 0x61, b'a', 0xff],       // text chunk in a byte string
            &[0x7f, 0x41, b'a', 0xff],       // byte chunk in a text string
            &[0x7f, 0x7f, 0xff, 0xff],       // nested indefinite chunk
            &[0x5f, 0xc0, 0x41, b'a', 0xff], // tagged chunk
            &[0x5f, 0x01, 0xff],             // integer chunk
        ];
        for item in cases {
            let mut bytes = vec![0x82, 0x60];
            bytes.extend_from_slice(item);
            assert!(is_malformed(decode(&bytes), 3, R_CHUNK), "{item:x?}");
            assert_eq!(decode_value(item), Err(malformed(1, R_CHUNK)));
        }
    }

    #[test]
    fn rejects_negative_int_out_of_range() {
        let bytes = hex("82 60 3b 8000000000000000");
        assert!(is_malformed(decode(&bytes), 2, R_INT_RANGE));
        assert_eq!(decode_value(&bytes[2..]), Err(malformed(0, R_INT_RANGE)));
        let min = decode_value(&hex("3b 7fffffffffffffff")).unwrap();
        assert_eq!(min, Value::Int(i64::MIN));
    }

    #[test]
    fn rejects_unknown_simple_value() {
        for item in [
            &[0xe0][..],
            &[0xf3],
            &[0xf8, 0x10],
            &[0xf8, 0x20],
            &[0xf8, 0xff],
        ] {
            let mut bytes = vec![0x82, 0x60];
            bytes.extend_from_slice(item);
            assert!(is_malformed(decode(&bytes), 2, R_SIMPLE), "{item:x?}");
            assert!(is_malformed(decode(item), 0, R_SIMPLE), "{item:x?}");
            assert_eq!(decode_value(item), Err(malformed(0, R_SIMPLE)));
        }
    }

    #[test]
    fn rejects_too_deep() {
        assert!(decode(&nested_arrays(MAX_DEPTH)).unwrap().is_some());
        assert_eq!(
            decode(&nested_arrays(MAX_DEPTH + 1)),
            Err(DecodeError::TooDeep { max: MAX_DEPTH })
        );
        // An empty array counts too; the error comes before the message is complete.
        let mut bytes = nested_arrays(MAX_DEPTH + 1);
        bytes.pop();
        *bytes.last_mut().unwrap() = 0x80;
        assert_eq!(decode(&bytes), Err(DecodeError::TooDeep { max: MAX_DEPTH }));
        let mut open = nested_arrays(MAX_DEPTH + 1);
        open.pop();
        assert_eq!(decode(&open), Err(DecodeError::TooDeep { max: MAX_DEPTH }));
        // Tags count as levels.
        let mut tags = vec![0x82, 0x60];
        tags.extend(std::iter::repeat_n(0xc0, MAX_DEPTH));
        assert_eq!(decode(&tags), Err(DecodeError::TooDeep { max: MAX_DEPTH }));
        tags.pop();
        tags.push(0x00);
        assert!(decode(&tags).unwrap().is_some());
        // The single-value parser has the same limit.
        let deep = &nested_arrays(MAX_DEPTH + 2)[2..];
        assert_eq!(
            decode_value(deep),
            Err(DecodeError::TooDeep { max: MAX_DEPTH })
        );
        assert!(decode_value(&nested_arrays(MAX_DEPTH + 1)[2..]).is_ok());
    }

    #[test]
    fn rejects_declared_string_length_over_max() {
        // Only the head has arrived; the declared length alone decides.
        let bytes = hex("82 60 5a 00100000");
        assert_eq!(
            decode_with(1024, &bytes),
            Err(DecodeError::TooLarge { max: 1024 })
        );
        let bytes = hex("82 60 7b ffffffffffffffff");
        assert_eq!(
            decode_with(1024, &bytes),
            Err(DecodeError::TooLarge { max: 1024 })
        );
        let chunked = hex("82 60 5f 41 00 5a 00100000");
        assert_eq!(
            decode_with(1024, &chunked),
            Err(DecodeError::TooLarge { max: 1024 })
        );
    }

    #[test]
    fn rejects_long_array_over_max() {
        // A declared element count that cannot fit, before any element has arrived.
        let bytes = hex("9a 00100000");
        assert_eq!(
            decode_with(1024, &bytes),
            Err(DecodeError::TooLarge { max: 1024 })
        );
        let bytes = hex("82 60 bb ffffffffffffffff");
        assert_eq!(
            decode_with(1024, &bytes),
            Err(DecodeError::TooLarge { max: 1024 })
        );
        // An indefinite-length array grows past the limit: refused at byte `max`.
        let mut bytes = vec![0x9f, 0x60];
        bytes.extend(std::iter::repeat_n(0x00, 2000));
        assert_eq!(
            decode_with(1024, &bytes),
            Err(DecodeError::TooLarge { max: 1024 })
        );
        let mut decoder = CborDecoder::new(1024);
        let mut buf = BytesMut::from(&bytes[..1024]);
        assert_eq!(
            decoder.decode(&mut buf),
            Err(DecodeError::TooLarge { max: 1024 })
        );
    }

    #[test]
    fn rejects_bad_destination() {
        assert_eq!(
            decode(&[0x82, 0x80, 0x01]),
            Err(DecodeError::BadDestination { found: "array" })
        );
        assert_eq!(
            decode(&[0x81, 0xa1, 0x01, 0x02]),
            Err(DecodeError::BadDestination { found: "map" })
        );
        assert_eq!(
            decode(&[0x9f, 0xc0, 0x9f, 0xff, 0xff]),
            Err(DecodeError::BadDestination { found: "array" })
        );
    }

    #[test]
    fn bad_destination_still_consumes_the_message() {
        let mut buf = BytesMut::from(&[0x81, 0x80, 0x80][..]);
        let mut decoder = CborDecoder::new(100);
        assert!(decoder.decode(&mut buf).is_err());
        assert_eq!(&buf[..], [0x80]);
    }
}
