//! The `json` framing: concatenated compact JSON texts, each an array (reference §4.9–4.10).
//!
//! Every message is one JSON text `[destination port name, elements...]`, written back to back
//! with no delimiter and no length prefix: `["sink","a"]["","mon1","x"]`. Perl's reader skips
//! whitespace between texts, and so does [`JsonDecoder`]. The empty array `[]` is the keepalive
//! no-op; it decodes as a [`Frame`] for the node port `""` with no elements.
//!
//! The encoder writes compact JSON, escaping only `"`, `\` and control characters. A
//! [`Value::Bytes`] travels the way Perl sends byte strings: as a JSON string of code points
//! U+0000–U+00FF, one per byte, so it decodes as a [`Value::String`] on the other side.
//!
//! The decoder is incremental and hand-written. It scans each byte of a text once to find
//! where the text ends (tracking nesting depth and strings), refuses texts over its size limit
//! or nested deeper than [`MAX_DEPTH`] before parsing them, and only then parses the complete
//! text into [`Value`]s, strictly by RFC 8259.
//!
//! ```
//! use aemp_proto::framing::Frame;
//! use aemp_proto::framing::json::{JsonDecoder, encode_frame};
//! use aemp_proto::Value;
//! use bytes::BytesMut;
//!
//! let mut wire = Vec::new();
//! encode_frame("sink", &[Value::from("hi"), Value::from(-7)], &mut wire);
//! assert_eq!(wire, br#"["sink","hi",-7]"#);
//!
//! // Texts may be separated by whitespace and may arrive in pieces.
//! let mut buf = BytesMut::from(&b"[]\n[\"echo\",1.5"[..]);
//! let mut decoder = JsonDecoder::new(1024);
//! assert!(decoder.decode(&mut buf)?.is_some_and(|f| f.is_keepalive()));
//! assert_eq!(decoder.decode(&mut buf)?, None); // the second text is incomplete
//! buf.extend_from_slice(b",null]");
//! let frame = decoder.decode(&mut buf)?.expect("a whole message");
//! assert_eq!(frame, Frame::new("echo", vec![Value::Float(1.5), Value::Null]));
//! # Ok::<(), aemp_proto::DecodeError>(())
//! ```

use std::io::Write as _;

use bytes::{Buf as _, BytesMut};

use crate::error::DecodeError;
use crate::framing::{Frame, Framing, MAX_DEPTH, destination_from_value};
use crate::value::{Message, Value};

// ------------------------------------------------------------------------------------------------
// Byte classification shared by the scanner, the parser and the encoder
// ------------------------------------------------------------------------------------------------

/// For every byte: 0 if it may appear raw inside a JSON string, otherwise the letter of its
/// short escape (`"`, `\`, `b`, `t`, `n`, `f`, `r`) or `u` for the `\u00XX` form.
const ESCAPE: [u8; 256] = {
    let mut table = [0_u8; 256];
    let mut i = 0;
    while i < 0x20 {
        table[i] = b'u';
        i += 1;
    }
    table[0x08] = b'b';
    table[0x09] = b't';
    table[0x0a] = b'n';
    table[0x0c] = b'f';
    table[0x0d] = b'r';
    table[b'"' as usize] = b'"';
    table[b'\\' as usize] = b'\\';
    table
};

const HEX_DIGITS: &[u8; 16] = b"0123456789abcdef";

/// `0x0101…01`: a byte value repeated over a word.
const ONES: u64 = u64::from_ne_bytes([1; 8]);
/// The high bit of every byte of a word.
const HIGHS: u64 = ONES * 0x80;

/// Whether one of the eight bytes of `word` is `"`, `\` or below 0x20. Returns a mask whose
/// lowest set bit lies in the lowest such byte (for a little-endian `word`).
#[inline]
fn special_mask(word: u64) -> u64 {
    // The classic "has zero byte" / "has byte less than n" tricks. Borrows only propagate
    // upwards from a true hit, so the lowest flagged byte is always a true hit.
    let quote = word ^ (ONES * u64::from(b'"'));
    let backslash = word ^ (ONES * u64::from(b'\\'));
    let hits = (quote.wrapping_sub(ONES) & !quote)
        | (backslash.wrapping_sub(ONES) & !backslash)
        | (word.wrapping_sub(ONES * 0x20) & !word);
    hits & HIGHS
}

/// Index of the first byte at or after `start` that is `"`, `\` or a control character
/// (below 0x20), or `bytes.len()` if there is none. Eight bytes at a time.
#[inline]
fn find_special(bytes: &[u8], start: usize) -> usize {
    let mut tail = bytes.get(start..).unwrap_or_default();
    let mut offset = start;
    // Long runs: 32 bytes per step, tested together.
    while let Some((block, rest)) = tail.split_first_chunk::<32>() {
        let mut any = 0;
        for word in block.chunks_exact(8) {
            let mut w = [0_u8; 8];
            w.copy_from_slice(word);
            any |= special_mask(u64::from_le_bytes(w));
        }
        if any != 0 {
            break;
        }
        tail = rest;
        offset += 32;
    }
    let mut chunks = tail.chunks_exact(8);
    for chunk in &mut chunks {
        let mut word = [0_u8; 8];
        word.copy_from_slice(chunk);
        let mask = special_mask(u64::from_le_bytes(word));
        if mask != 0 {
            return offset + (mask.trailing_zeros() / 8) as usize;
        }
        offset += 8;
    }
    chunks
        .remainder()
        .iter()
        .position(|&b| ESCAPE[usize::from(b)] != 0)
        .map_or(bytes.len(), |p| offset + p)
}

#[inline]
fn is_whitespace(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\r')
}

fn malformed(offset: usize, reason: &'static str) -> DecodeError {
    DecodeError::Malformed {
        framing: Framing::Json,
        offset,
        reason,
    }
}

/// The error for a text whose first byte is `first` (not `[`).
fn not_an_array(first: u8) -> DecodeError {
    let found = match first {
        b'{' => "object",
        b'"' => "string",
        b'-' | b'0'..=b'9' => "number",
        b't' | b'f' => "boolean",
        b'n' => "null",
        _ => return malformed(0, "expected '[' at the start of a message"),
    };
    DecodeError::NotAnArray { found }
}

// ------------------------------------------------------------------------------------------------
// Decoder
// ------------------------------------------------------------------------------------------------

/// Incremental decoder for the `json` framing.
///
/// Follows the contract of [`FrameDecoder::decode`](crate::framing::FrameDecoder::decode). It
/// keeps the state of a structural scan (bytes scanned, nesting depth, inside a string, after a
/// backslash) of the message being received, so a message arriving in many small reads is
/// scanned once in total; the message is parsed once it is complete.
#[derive(Debug)]
pub struct JsonDecoder {
    /// Size limit of one text in bytes.
    max: usize,
    /// Bytes of the current text scanned so far (0: no text started; the buffer starts at the
    /// text's `[` otherwise).
    scanned: usize,
    /// Open arrays and objects at `scanned`.
    depth: usize,
    /// `scanned` is inside a string.
    in_string: bool,
    /// The byte before `scanned` is the backslash of an escape inside a string.
    escape: bool,
}

impl JsonDecoder {
    /// Creates a decoder that refuses messages over `max` bytes (leading whitespace not
    /// counted).
    pub fn new(max: usize) -> Self {
        Self {
            max,
            scanned: 0,
            depth: 0,
            in_string: false,
            escape: false,
        }
    }

    /// Decodes the next message from the front of `buf`.
    ///
    /// `Ok(Some(frame))` consumes exactly one message and the whitespace before it;
    /// `Ok(None)` means more bytes are needed (leading whitespace may have been consumed); see
    /// [`FrameDecoder::decode`](crate::framing::FrameDecoder::decode).
    ///
    /// # Errors
    ///
    /// [`DecodeError::NotAnArray`] or [`DecodeError::Malformed`] as soon as a text does not
    /// start with `[`; [`DecodeError::TooLarge`] as soon as more than `max` bytes of a text are
    /// buffered without its end; [`DecodeError::TooDeep`] for nesting beyond
    /// [`MAX_DEPTH`]; [`DecodeError::Malformed`] for invalid JSON (including invalid UTF-8);
    /// [`DecodeError::BadDestination`] if the first element is an array or object.
    pub fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<Frame>, DecodeError> {
        if self.scanned == 0 {
            let skip = buf
                .iter()
                .position(|&b| !is_whitespace(b))
                .unwrap_or(buf.len());
            buf.advance(skip);
            match buf.first() {
                None => return Ok(None),
                Some(b'[') => {}
                Some(&first) => return Err(not_an_array(first)),
            }
            self.scanned = 1;
            self.depth = 1;
            self.in_string = false;
            self.escape = false;
        }
        let limit = buf.len().min(self.max);
        let window = buf.get(..limit).unwrap_or_default();
        let Some(end) = self.scan(window)? else {
            if buf.len() > self.max {
                return Err(DecodeError::TooLarge { max: self.max });
            }
            return Ok(None);
        };
        self.scanned = 0;
        let text = buf.get(..end).unwrap_or_default();
        let frame = parse_frame(text)?;
        buf.advance(end);
        Ok(Some(frame))
    }

    /// Continues the structural scan of the current text over `bytes` (the buffered text, up
    /// to the size limit). Returns the length of the text once its closing bracket is found.
    fn scan(&mut self, bytes: &[u8]) -> Result<Option<usize>, DecodeError> {
        let mut i = self.scanned;
        let mut depth = self.depth;
        let mut in_string = self.in_string;
        if self.escape {
            if i >= bytes.len() {
                return Ok(None);
            }
            // The escaped byte cannot end the string.
            i += 1;
            self.escape = false;
        }
        loop {
            if in_string {
                i = find_special(bytes, i);
                match bytes.get(i) {
                    Some(b'"') => {
                        in_string = false;
                        i += 1;
                    }
                    Some(b'\\') => {
                        if i + 1 < bytes.len() {
                            i += 2;
                        } else {
                            i += 1;
                            self.escape = true;
                            break;
                        }
                    }
                    // A control character: invalid, but the parser reports it.
                    Some(_) => i += 1,
                    None => break,
                }
            } else {
                let Some(&b) = bytes.get(i) else { break };
                i += 1;
                match b {
                    b'"' => in_string = true,
                    b'[' | b'{' => {
                        depth += 1;
                        if depth > MAX_DEPTH {
                            return Err(DecodeError::TooDeep { max: MAX_DEPTH });
                        }
                    }
                    b']' | b'}' => {
                        // `depth >= 1` while a text is being scanned: it starts at 1 and the
                        // text ends when it drops to 0.
                        depth = depth.saturating_sub(1);
                        if depth == 0 {
                            return Ok(Some(i));
                        }
                    }
                    _ => {}
                }
            }
        }
        self.scanned = i;
        self.depth = depth;
        self.in_string = in_string;
        Ok(None)
    }
}

/// Parses one complete JSON text of any kind into a [`Value`].
///
/// Whitespace around the value is allowed; anything else after it is an error. Objects become
/// [`Value::Map`]s with [`Value::String`] keys in text order (duplicates kept); integers become
/// [`Value::Int`] (or [`Value::UInt`] above `i64::MAX`); other numbers [`Value::Float`].
///
/// ```
/// use aemp_proto::framing::json::decode_value;
/// use aemp_proto::Value;
///
/// let v = decode_value(br#" {"a": [1, -2.5e0, "\u00e9"]} "#)?;
/// let expected = Value::Array(vec![1.into(), Value::Float(-2.5), "é".into()]);
/// assert_eq!(v, Value::Map(vec![("a".into(), expected)]));
/// # Ok::<(), aemp_proto::DecodeError>(())
/// ```
///
/// # Errors
///
/// [`DecodeError::Malformed`] for invalid JSON, trailing garbage or invalid UTF-8;
/// [`DecodeError::TooDeep`] for nesting beyond [`MAX_DEPTH`].
pub fn decode_value(text: &[u8]) -> Result<Value, DecodeError> {
    let mut p = Parser { b: text, pos: 0 };
    p.skip_ws();
    let value = p.value(0)?;
    p.skip_ws();
    if p.pos != text.len() {
        return Err(p.err("trailing characters after the JSON text"));
    }
    Ok(value)
}

/// Parses one complete message text `[destination, elements...]` into a frame.
fn parse_frame(text: &[u8]) -> Result<Frame, DecodeError> {
    let mut p = Parser { b: text, pos: 0 };
    p.skip_ws();
    match p.peek() {
        Some(b'[') => p.pos += 1,
        Some(first) => return Err(not_an_array(first)),
        None => return Err(p.err("unexpected end of input")),
    }
    p.skip_ws();
    let frame = if p.peek() == Some(b']') {
        p.pos += 1;
        Frame::default()
    } else {
        // The destination is parsed apart from the rest, so the elements need no shifting.
        let port = if p.peek() == Some(b'"') {
            p.pos += 1;
            p.string()?
        } else {
            destination_from_value(p.value(1)?)?
        };
        // Filled in place: a small message needs no allocation for its elements.
        let mut message = Message::empty();
        p.skip_ws();
        if p.eat_separator(b']')? {
            p.skip_ws();
            loop {
                message.push(p.element(1)?);
                p.skip_ws();
                if !p.eat_separator(b']')? {
                    break;
                }
                p.skip_ws();
            }
        }
        Frame { port, message }
    };
    p.skip_ws();
    if p.pos != text.len() {
        return Err(p.err("trailing characters after the message"));
    }
    Ok(frame)
}

/// A recursive-descent parser over one complete text. Recursion is bounded by [`MAX_DEPTH`].
struct Parser<'a> {
    b: &'a [u8],
    pos: usize,
}

impl Parser<'_> {
    fn err(&self, reason: &'static str) -> DecodeError {
        malformed(self.pos, reason)
    }

    #[inline]
    fn peek(&self) -> Option<u8> {
        self.b.get(self.pos).copied()
    }

    #[inline]
    fn skip_ws(&mut self) {
        while self.peek().is_some_and(is_whitespace) {
            self.pos += 1;
        }
    }

    /// After an element: consumes `,` (returns `true`: another element follows) or `close`
    /// (returns `false`).
    #[inline]
    fn eat_separator(&mut self, close: u8) -> Result<bool, DecodeError> {
        match self.peek() {
            Some(b',') => {
                self.pos += 1;
                Ok(true)
            }
            Some(b) if b == close => {
                self.pos += 1;
                Ok(false)
            }
            None => Err(self.err("unexpected end of input")),
            Some(_) if close == b']' => Err(self.err("expected ',' or ']'")),
            Some(_) => Err(self.err("expected ',' or '}'")),
        }
    }

    /// [`Self::value`] with the common case, a string, inlined into the caller.
    #[inline]
    fn element(&mut self, depth: usize) -> Result<Value, DecodeError> {
        if self.peek() == Some(b'"') {
            self.pos += 1;
            return self.string().map(Value::String);
        }
        self.value(depth)
    }

    /// Parses a value starting at `pos` (no leading whitespace); `depth` is the number of
    /// arrays and objects around it.
    fn value(&mut self, depth: usize) -> Result<Value, DecodeError> {
        match self.peek() {
            Some(b'"') => {
                self.pos += 1;
                self.string().map(Value::String)
            }
            Some(b'-' | b'0'..=b'9') => self.number(),
            Some(b'[') => self.array(depth + 1),
            Some(b'{') => self.object(depth + 1),
            Some(b't') => self.literal(b"true", Value::Bool(true)),
            Some(b'f') => self.literal(b"false", Value::Bool(false)),
            Some(b'n') => self.literal(b"null", Value::Null),
            Some(_) => Err(self.err("expected a value")),
            None => Err(self.err("unexpected end of input")),
        }
    }

    fn literal(&mut self, word: &[u8], value: Value) -> Result<Value, DecodeError> {
        if self.b.get(self.pos..self.pos + word.len()) == Some(word) {
            self.pos += word.len();
            Ok(value)
        } else {
            Err(self.err("invalid literal"))
        }
    }

    /// Parses an array at `pos` (the `[`) nested at `depth`.
    fn array(&mut self, depth: usize) -> Result<Value, DecodeError> {
        if depth > MAX_DEPTH {
            return Err(DecodeError::TooDeep { max: MAX_DEPTH });
        }
        self.pos += 1;
        self.skip_ws();
        let mut elements = Vec::new();
        if self.peek() == Some(b']') {
            self.pos += 1;
            return Ok(Value::Array(elements));
        }
        loop {
            elements.push(self.element(depth)?);
            self.skip_ws();
            if !self.eat_separator(b']')? {
                return Ok(Value::Array(elements));
            }
            self.skip_ws();
        }
    }

    /// Parses an object at `pos` (the `{`) nested at `depth`.
    fn object(&mut self, depth: usize) -> Result<Value, DecodeError> {
        if depth > MAX_DEPTH {
            return Err(DecodeError::TooDeep { max: MAX_DEPTH });
        }
        self.pos += 1;
        self.skip_ws();
        let mut entries = Vec::new();
        if self.peek() == Some(b'}') {
            self.pos += 1;
            return Ok(Value::Map(entries));
        }
        loop {
            if self.peek() != Some(b'"') {
                return Err(self.err("expected a string key"));
            }
            self.pos += 1;
            let key = self.string()?;
            self.skip_ws();
            if self.peek() != Some(b':') {
                return Err(self.err("expected ':'"));
            }
            self.pos += 1;
            self.skip_ws();
            let value = self.element(depth)?;
            entries.push((Value::String(key), value));
            self.skip_ws();
            if !self.eat_separator(b'}')? {
                return Ok(Value::Map(entries));
            }
            self.skip_ws();
        }
    }

    /// Validates the raw (unescaped) part `start..end` of a string.
    fn raw_str(&self, start: usize, end: usize) -> Result<&str, DecodeError> {
        let raw = self.b.get(start..end).unwrap_or_default();
        std::str::from_utf8(raw).map_err(|e| malformed(start + e.valid_up_to(), "invalid UTF-8"))
    }

    /// Parses the rest of a string; `pos` is just after the opening quote.
    #[inline]
    fn string(&mut self) -> Result<String, DecodeError> {
        let start = self.pos;
        let end = find_special(self.b, start);
        if self.b.get(end) == Some(&b'"') {
            // Fast path: no escapes.
            let s = self.raw_str(start, end)?.to_owned();
            self.pos = end + 1;
            return Ok(s);
        }
        self.escaped_string(start, end)
    }

    /// The slow path of [`Self::string`]: `start..end` is a raw run and `end` is not a `"`.
    fn escaped_string(&mut self, mut start: usize, mut end: usize) -> Result<String, DecodeError> {
        // Every escape is at least as long as what it produces, so the text bounds this.
        let mut out = String::with_capacity(end - start + 16);
        loop {
            // A run ends before an ASCII byte, so validating runs one by one is the same as
            // validating the whole string.
            out.push_str(self.raw_str(start, end)?);
            self.pos = end;
            match self.b.get(end) {
                Some(b'"') => {
                    self.pos += 1;
                    return Ok(out);
                }
                Some(b'\\') => {
                    self.pos += 1;
                    self.escape(&mut out)?;
                }
                Some(_) => return Err(self.err("control character in string")),
                None => return Err(self.err("unterminated string")),
            }
            start = self.pos;
            end = find_special(self.b, start);
        }
    }

    /// Decodes one escape; `pos` is just after the backslash.
    fn escape(&mut self, out: &mut String) -> Result<(), DecodeError> {
        let c = match self.peek() {
            Some(b'"') => '"',
            Some(b'\\') => '\\',
            Some(b'/') => '/',
            Some(b'b') => '\u{8}',
            Some(b'f') => '\u{c}',
            Some(b'n') => '\n',
            Some(b'r') => '\r',
            Some(b't') => '\t',
            Some(b'u') => {
                self.pos += 1;
                let unit = self.hex4()?;
                let code = match unit {
                    0xD800..=0xDBFF => {
                        if self.b.get(self.pos..self.pos + 2) != Some(b"\\u") {
                            return Err(self.err("lone surrogate in \\u escape"));
                        }
                        self.pos += 2;
                        let low = self.hex4()?;
                        if !(0xDC00..=0xDFFF).contains(&low) {
                            return Err(self.err("lone surrogate in \\u escape"));
                        }
                        0x10000 + ((unit - 0xD800) << 10) + (low - 0xDC00)
                    }
                    0xDC00..=0xDFFF => return Err(self.err("lone surrogate in \\u escape")),
                    _ => unit,
                };
                let c = char::from_u32(code).ok_or_else(|| self.err("invalid \\u escape"))?;
                out.push(c);
                return Ok(());
            }
            Some(_) => return Err(self.err("invalid escape")),
            None => return Err(self.err("unterminated string")),
        };
        self.pos += 1;
        out.push(c);
        Ok(())
    }

    /// Reads four hex digits at `pos`.
    fn hex4(&mut self) -> Result<u32, DecodeError> {
        let digits = self
            .b
            .get(self.pos..self.pos + 4)
            .ok_or_else(|| self.err("truncated \\u escape"))?;
        let mut value = 0;
        for &d in digits {
            let nibble = match d {
                b'0'..=b'9' => d - b'0',
                b'a'..=b'f' => d - b'a' + 10,
                b'A'..=b'F' => d - b'A' + 10,
                _ => return Err(self.err("invalid hex digit in \\u escape")),
            };
            value = value << 4 | u32::from(nibble);
        }
        self.pos += 4;
        Ok(value)
    }

    /// Consumes a run of ASCII digits and returns how many there were.
    #[inline]
    fn digits(&mut self) -> usize {
        let start = self.pos;
        while self.peek().is_some_and(|b| b.is_ascii_digit()) {
            self.pos += 1;
        }
        self.pos - start
    }

    /// Parses a number at `pos` (a `-` or a digit).
    fn number(&mut self) -> Result<Value, DecodeError> {
        let start = self.pos;
        let negative = self.peek() == Some(b'-');
        if negative {
            self.pos += 1;
        }
        // Integer part, accumulated while it fits a u64.
        let mut magnitude: Option<u64> = Some(0);
        match self.peek() {
            Some(b'0') => {
                self.pos += 1;
                if self.peek().is_some_and(|b| b.is_ascii_digit()) {
                    return Err(self.err("leading zero in number"));
                }
            }
            Some(b'1'..=b'9') => {
                while let Some(d @ b'0'..=b'9') = self.peek() {
                    magnitude = magnitude
                        .and_then(|m| m.checked_mul(10))
                        .and_then(|m| m.checked_add(u64::from(d - b'0')));
                    self.pos += 1;
                }
            }
            _ => return Err(self.err("expected a digit")),
        }
        let mut integral = true;
        if self.peek() == Some(b'.') {
            self.pos += 1;
            if self.digits() == 0 {
                return Err(self.err("expected a digit after '.'"));
            }
            integral = false;
        }
        if let Some(b'e' | b'E') = self.peek() {
            self.pos += 1;
            if let Some(b'+' | b'-') = self.peek() {
                self.pos += 1;
            }
            if self.digits() == 0 {
                return Err(self.err("expected a digit in the exponent"));
            }
            integral = false;
        }
        if integral {
            match (negative, magnitude) {
                (false, Some(m)) => return Ok(Value::from_u64(m)),
                (true, Some(m)) => {
                    if let Some(i) = 0_i64.checked_sub_unsigned(m) {
                        return Ok(Value::Int(i));
                    }
                }
                _ => {}
            }
        }
        // Fractions, exponents and integers beyond 64 bits: let the standard library round.
        let text = self.b.get(start..self.pos).unwrap_or_default();
        std::str::from_utf8(text)
            .ok()
            .and_then(|s| s.parse::<f64>().ok())
            .map(Value::Float)
            .ok_or_else(|| malformed(start, "invalid number"))
    }
}

// ------------------------------------------------------------------------------------------------
// Encoder
// ------------------------------------------------------------------------------------------------

/// Appends one message `[port, elements...]` as compact JSON.
///
/// ```
/// use aemp_proto::framing::json::encode_frame;
/// use aemp_proto::Value;
///
/// let mut out = Vec::new();
/// encode_frame("", &[Value::from("mon1"), Value::Null], &mut out);
/// assert_eq!(out, br#"["","mon1",null]"#);
/// ```
pub fn encode_frame(port: &str, elements: &[Value], out: &mut Vec<u8>) {
    out.push(b'[');
    write_str(port.as_bytes(), out);
    for element in elements {
        out.push(b',');
        encode_value(element, out);
    }
    out.push(b']');
}

/// Appends one value as compact JSON.
///
/// Strings escape only `"`, `\` and control characters. [`Value::Bytes`] become a string of
/// code points U+0000–U+00FF (Perl's byte strings). Finite floats use Rust's shortest
/// round-trip form, which always has a `.` or an exponent (`1.0`, `0.1`, `1e300`), so they
/// decode as floats again; NaN and infinities become `null`. Map keys that are not strings are
/// stringified like Perl does (see [`Value::to_perl_string`]); array and map keys become their
/// JSON text.
///
/// ```
/// use aemp_proto::framing::json::encode_value;
/// use aemp_proto::Value;
///
/// let mut out = Vec::new();
/// let v = Value::Array(vec![Value::Float(1.0), Value::Bytes(vec![0x41, 0xe9]), "\"\n".into()]);
/// encode_value(&v, &mut out);
/// assert_eq!(out, r#"[1.0,"Aé","\"\n"]"#.as_bytes());
/// ```
pub fn encode_value(value: &Value, out: &mut Vec<u8>) {
    match value {
        Value::Null => out.extend_from_slice(b"null"),
        Value::Bool(true) => out.extend_from_slice(b"true"),
        Value::Bool(false) => out.extend_from_slice(b"false"),
        Value::Int(i) => {
            if *i < 0 {
                out.push(b'-');
            }
            write_u64(i.unsigned_abs(), out);
        }
        Value::UInt(u) => write_u64(*u, out),
        Value::Float(f) => write_f64(*f, out),
        Value::String(s) => write_str(s.as_bytes(), out),
        Value::Bytes(bytes) => write_bytes(bytes, out),
        Value::Array(elements) => {
            out.push(b'[');
            for (i, element) in elements.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                encode_value(element, out);
            }
            out.push(b']');
        }
        Value::Map(entries) => {
            out.push(b'{');
            for (i, (key, value)) in entries.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_key(key, out);
                out.push(b':');
                encode_value(value, out);
            }
            out.push(b'}');
        }
    }
}

/// Writes a map key as a JSON string.
fn write_key(key: &Value, out: &mut Vec<u8>) {
    match key {
        Value::String(s) => write_str(s.as_bytes(), out),
        Value::Bytes(bytes) => write_bytes(bytes, out),
        other => match other.to_perl_string() {
            Some(s) => write_str(s.as_bytes(), out),
            None => {
                let mut text = Vec::new();
                encode_value(other, &mut text);
                write_str(&text, out);
            }
        },
    }
}

/// Writes `n` in decimal.
#[inline]
fn write_u64(mut n: u64, out: &mut Vec<u8>) {
    if n < 10 {
        // `n < 10`, so the cast keeps the value.
        out.push(b'0' + n as u8);
        return;
    }
    let mut digits = [0_u8; 20];
    let mut i = digits.len();
    while n > 0 {
        i -= 1;
        // `n % 10 < 10`, so the cast keeps the value.
        digits[i] = b'0' + (n % 10) as u8;
        n /= 10;
    }
    out.extend_from_slice(digits.get(i..).unwrap_or_default());
}

/// Writes a float in its shortest round-trip form, or `null` if it is not finite.
fn write_f64(f: f64, out: &mut Vec<u8>) {
    if f.is_finite() {
        // `{:?}` always writes a `.` or an exponent (`1.0`, `1e300`, `5e-324`), never `inf`
        // or `NaN` for a finite value, and writing to a `Vec` cannot fail.
        let _ = write!(out, "{f:?}");
    } else {
        out.extend_from_slice(b"null");
    }
}

/// Writes the escape sequence of a byte whose [`ESCAPE`] entry is not 0.
#[inline]
fn write_escape(b: u8, out: &mut Vec<u8>) {
    match ESCAPE[usize::from(b)] {
        b'u' => out.extend_from_slice(&[
            b'\\',
            b'u',
            b'0',
            b'0',
            HEX_DIGITS[usize::from(b >> 4)],
            HEX_DIGITS[usize::from(b & 0xf)],
        ]),
        short => out.extend_from_slice(&[b'\\', short]),
    }
}

/// Writes UTF-8 text as a JSON string.
#[inline]
fn write_str(s: &[u8], out: &mut Vec<u8>) {
    out.reserve(s.len() + 2);
    out.push(b'"');
    let mut start = 0;
    loop {
        let end = find_special(s, start);
        out.extend_from_slice(s.get(start..end).unwrap_or_default());
        let Some(&b) = s.get(end) else { break };
        write_escape(b, out);
        start = end + 1;
    }
    out.push(b'"');
}

/// Writes a byte string as a JSON string of code points U+0000–U+00FF.
fn write_bytes(bytes: &[u8], out: &mut Vec<u8>) {
    out.reserve(bytes.len() + 2);
    out.push(b'"');
    for &b in bytes {
        if b >= 0x80 {
            out.extend_from_slice(&[0xc0 | (b >> 6), 0x80 | (b & 0x3f)]);
        } else if ESCAPE[usize::from(b)] != 0 {
            write_escape(b, out);
        } else {
            out.push(b);
        }
    }
    out.push(b'"');
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode_all(input: &[u8]) -> Result<Vec<Frame>, DecodeError> {
        let mut decoder = JsonDecoder::new(1 << 20);
        let mut buf = BytesMut::from(input);
        let mut frames = Vec::new();
        while let Some(frame) = decoder.decode(&mut buf)? {
            frames.push(frame);
        }
        Ok(frames)
    }

    fn decode_one(input: &[u8]) -> Result<Option<Frame>, DecodeError> {
        JsonDecoder::new(1 << 20).decode(&mut BytesMut::from(input))
    }

    fn reason(err: DecodeError) -> &'static str {
        match err {
            DecodeError::Malformed {
                framing: Framing::Json,
                reason,
                ..
            } => reason,
            other => panic!("expected Malformed, got {other:?}"),
        }
    }

    fn malformed_reason(input: &[u8]) -> &'static str {
        reason(decode_one(input).expect_err("input must be rejected"))
    }

    fn encoded(value: &Value) -> String {
        let mut out = Vec::new();
        encode_value(value, &mut out);
        String::from_utf8(out).unwrap()
    }

    // --- rejected inputs ---------------------------------------------------------------------

    #[test]
    fn rejects_object_message() {
        assert_eq!(
            decode_one(b"{\"a\":1}"),
            Err(DecodeError::NotAnArray { found: "object" })
        );
    }

    #[test]
    fn rejects_non_array_messages_at_first_byte() {
        // Only the first byte is needed: the rest never arrives.
        for (input, found) in [
            (&b"\"str"[..], "string"),
            (b"12", "number"),
            (b"-", "number"),
            (b"t", "boolean"),
            (b"f", "boolean"),
            (b"n", "null"),
        ] {
            assert_eq!(
                decode_one(input),
                Err(DecodeError::NotAnArray { found }),
                "{input:?}"
            );
        }
        assert_eq!(
            malformed_reason(b"  ]"),
            "expected '[' at the start of a message"
        );
        assert_eq!(
            malformed_reason(b"x"),
            "expected '[' at the start of a message"
        );
    }

    #[test]
    fn rejects_non_array_value_after_a_message() {
        let mut decoder = JsonDecoder::new(100);
        let mut buf = BytesMut::from(&b"[\"a\"] 5"[..]);
        assert!(decoder.decode(&mut buf).unwrap().is_some());
        assert_eq!(
            decoder.decode(&mut buf),
            Err(DecodeError::NotAnArray { found: "number" })
        );
    }

    #[test]
    fn rejects_unterminated_string() {
        // The scanner never finds the end; at EOF it is just incomplete...
        assert_eq!(decode_one(b"[\"abc"), Ok(None));
        // ...and as a complete value it is an error.
        assert_eq!(
            reason(decode_value(b"\"abc").unwrap_err()),
            "unterminated string"
        );
        assert_eq!(
            reason(decode_value(b"\"ab\\n").unwrap_err()),
            "unterminated string"
        );
    }

    #[test]
    fn rejects_bad_escape() {
        assert_eq!(malformed_reason(br#"["a\x"]"#), "invalid escape");
        assert_eq!(malformed_reason(br#"["a\'"]"#), "invalid escape");
        assert_eq!(
            malformed_reason(br#"["\u12G4"]"#),
            "invalid hex digit in \\u escape"
        );
        assert_eq!(
            reason(decode_value(br#""\u12"#).unwrap_err()),
            "truncated \\u escape"
        );
    }

    #[test]
    fn rejects_lone_surrogates() {
        for input in [
            &br#"["\ud800"]"#[..],
            br#"["\udc00"]"#,
            br#"["\ud800x"]"#,
            br#"["\ud800\n"]"#,
            br#"["\ud800\ud800"]"#,
            br#"["\udbff\u0041"]"#,
        ] {
            assert_eq!(malformed_reason(input), "lone surrogate in \\u escape");
        }
    }

    #[test]
    fn rejects_control_characters_in_strings() {
        assert_eq!(
            malformed_reason(b"[\"a\nb\"]"),
            "control character in string"
        );
        assert_eq!(
            malformed_reason(b"[\"a\\n\x01\"]"),
            "control character in string"
        );
        assert_eq!(
            malformed_reason(b"[\"\x1f\"]"),
            "control character in string"
        );
    }

    #[test]
    fn rejects_bad_numbers() {
        assert_eq!(malformed_reason(b"[01]"), "leading zero in number");
        assert_eq!(malformed_reason(b"[-01]"), "leading zero in number");
        assert_eq!(malformed_reason(b"[1.]"), "expected a digit after '.'");
        assert_eq!(malformed_reason(b"[1.e5]"), "expected a digit after '.'");
        assert_eq!(malformed_reason(b"[-]"), "expected a digit");
        assert_eq!(malformed_reason(b"[-a]"), "expected a digit");
        assert_eq!(malformed_reason(b"[+1]"), "expected a value");
        assert_eq!(malformed_reason(b"[.5]"), "expected a value");
        assert_eq!(
            malformed_reason(b"[1e]"),
            "expected a digit in the exponent"
        );
        assert_eq!(
            malformed_reason(b"[1e+]"),
            "expected a digit in the exponent"
        );
        assert_eq!(malformed_reason(b"[1x]"), "expected ',' or ']'");
        assert_eq!(malformed_reason(b"[0x10]"), "expected ',' or ']'");
    }

    #[test]
    fn rejects_trailing_commas() {
        assert_eq!(malformed_reason(b"[\"a\",]"), "expected a value");
        assert_eq!(malformed_reason(b"[\"a\",1,]"), "expected a value");
        assert_eq!(malformed_reason(b"[\"a\",[1,]]"), "expected a value");
        assert_eq!(
            malformed_reason(b"[\"a\",{\"k\":1,}]"),
            "expected a string key"
        );
        assert_eq!(malformed_reason(b"[,]"), "expected a value");
    }

    #[test]
    fn rejects_missing_colon() {
        assert_eq!(malformed_reason(b"[\"a\",{\"k\" 1}]"), "expected ':'");
        assert_eq!(malformed_reason(b"[\"a\",{\"k\"}]"), "expected ':'");
        assert_eq!(malformed_reason(b"[\"a\",{1:2}]"), "expected a string key");
    }

    #[test]
    fn rejects_missing_commas_and_mismatched_brackets() {
        assert_eq!(malformed_reason(b"[\"a\" \"b\"]"), "expected ',' or ']'");
        assert_eq!(
            malformed_reason(b"[\"a\",{\"k\":1 \"l\":2}]"),
            "expected ',' or '}'"
        );
        assert_eq!(malformed_reason(b"[\"a\"}"), "expected ',' or ']'");
        assert_eq!(malformed_reason(b"[\"a\",[1}]"), "expected ',' or ']'");
    }

    #[test]
    fn rejects_bad_literals() {
        for input in [
            &b"[tru]"[..],
            b"[nul]",
            b"[falsy]",
            b"[True]",
            b"[\"a\",nil]",
        ] {
            let r = malformed_reason(input);
            assert!(
                r == "invalid literal" || r == "expected a value",
                "{input:?}: {r}"
            );
        }
        assert_eq!(malformed_reason(b"[truex]"), "expected ',' or ']'");
    }

    #[test]
    fn rejects_invalid_utf8() {
        let err = decode_one(b"[\"ab\xff\"]").unwrap_err();
        assert_eq!(
            err,
            DecodeError::Malformed {
                framing: Framing::Json,
                offset: 4,
                reason: "invalid UTF-8"
            }
        );
        // Truncated sequence, overlong encoding, encoded surrogate, also after an escape.
        for input in [
            &b"[\"\xc3\"]"[..],
            b"[\"\xc0\xaf\"]",
            b"[\"\xed\xa0\x80\"]",
            b"[\"\\n\xe9\"]",
            b"[\"a\",{\"\xff\":1}]",
        ] {
            assert_eq!(malformed_reason(input), "invalid UTF-8", "{input:?}");
        }
        // Outside strings, non-ASCII bytes are just unexpected.
        assert_eq!(malformed_reason(b"[\xff]"), "expected a value");
    }

    #[test]
    fn rejects_too_deep() {
        let deep = |n: usize| {
            let mut v = vec![b'['; n];
            v.extend(std::iter::repeat_n(b']', n));
            v
        };
        // 512 levels are fine (the message itself is level 1).
        let mut ok = b"[\"p\",".to_vec();
        ok.extend(deep(MAX_DEPTH - 1));
        ok.push(b']');
        let frame = decode_one(&ok).unwrap().unwrap();
        assert_eq!(frame.message.len(), 1);
        let mut too_deep = b"[\"p\",".to_vec();
        too_deep.extend(deep(MAX_DEPTH));
        too_deep.push(b']');
        assert_eq!(
            decode_one(&too_deep),
            Err(DecodeError::TooDeep { max: MAX_DEPTH })
        );
        // 513 are refused by the scanner as soon as the 513th bracket arrives.
        assert_eq!(
            decode_one(&vec![b'['; MAX_DEPTH + 1]),
            Err(DecodeError::TooDeep { max: MAX_DEPTH })
        );
        // Objects count too; brackets inside strings do not.
        let mut mixed = b"[\"[[[[\",".to_vec();
        mixed.extend(std::iter::repeat_n(&b"{\"k\":"[..], MAX_DEPTH).flatten());
        assert_eq!(
            decode_one(&mixed),
            Err(DecodeError::TooDeep { max: MAX_DEPTH })
        );
        // decode_value checks depth on its own, without a scanner in front.
        assert!(decode_value(&deep(MAX_DEPTH)).is_ok());
        assert_eq!(
            decode_value(&deep(MAX_DEPTH + 1)),
            Err(DecodeError::TooDeep { max: MAX_DEPTH })
        );
        assert_eq!(
            decode_value(&deep(100_000)),
            Err(DecodeError::TooDeep { max: MAX_DEPTH })
        );
    }

    #[test]
    fn rejects_too_large_before_completion() {
        let mut decoder = JsonDecoder::new(16);
        let mut buf = BytesMut::from(&b"   [\"0123456789ab"[..]);
        // 14 bytes of text after the whitespace: still allowed to grow.
        assert_eq!(decoder.decode(&mut buf), Ok(None));
        buf.extend_from_slice(b"c\"");
        // 16 bytes, no end yet: the text could still end with the next byte.
        assert_eq!(decoder.decode(&mut buf), Ok(None));
        buf.extend_from_slice(b"]");
        // 17 bytes: too large, even though the text is complete.
        assert_eq!(
            decoder.decode(&mut buf),
            Err(DecodeError::TooLarge { max: 16 })
        );

        // A text of exactly `max` bytes is accepted.
        let mut decoder = JsonDecoder::new(16);
        let mut buf = BytesMut::from(&b"[\"0123456789ab\"]"[..]);
        assert!(decoder.decode(&mut buf).unwrap().is_some());

        // An endless string is refused once it passes the limit, not at its end.
        let mut decoder = JsonDecoder::new(1000);
        let mut buf = BytesMut::from(&b"[\""[..]);
        let mut result = Ok(None);
        for _ in 0..1000 {
            buf.extend_from_slice(b"x");
            result = decoder.decode(&mut buf);
            if result.is_err() {
                break;
            }
        }
        assert_eq!(result, Err(DecodeError::TooLarge { max: 1000 }));
        assert_eq!(buf.len(), 1001);

        // A zero limit refuses everything but whitespace.
        let mut decoder = JsonDecoder::new(0);
        assert_eq!(decoder.decode(&mut BytesMut::from(&b"  "[..])), Ok(None));
        assert_eq!(
            decoder.decode(&mut BytesMut::from(&b"[]"[..])),
            Err(DecodeError::TooLarge { max: 0 })
        );
    }

    #[test]
    fn rejects_bad_destination() {
        assert_eq!(
            decode_one(b"[[\"a\"],1]"),
            Err(DecodeError::BadDestination { found: "array" })
        );
        assert_eq!(
            decode_one(b"[{},1]"),
            Err(DecodeError::BadDestination { found: "map" })
        );
    }

    #[test]
    fn rejects_trailing_garbage_in_decode_value() {
        assert_eq!(
            reason(decode_value(b"[1] x").unwrap_err()),
            "trailing characters after the JSON text"
        );
        assert_eq!(
            reason(decode_value(b"1 2").unwrap_err()),
            "trailing characters after the JSON text"
        );
        assert_eq!(
            reason(decode_value(b"").unwrap_err()),
            "unexpected end of input"
        );
        assert_eq!(
            reason(decode_value(b"  ").unwrap_err()),
            "unexpected end of input"
        );
    }

    #[test]
    fn reports_offsets_from_the_start_of_the_message() {
        let err = decode_all(b"[\"a\"]\n  [\"b\",tru]").unwrap_err();
        assert_eq!(
            err,
            DecodeError::Malformed {
                framing: Framing::Json,
                offset: 5,
                reason: "invalid literal"
            }
        );
    }

    // --- accepted inputs ---------------------------------------------------------------------

    #[test]
    fn destinations_are_stringified_like_perl() {
        let port = |input: &[u8]| decode_one(input).unwrap().unwrap().port;
        assert_eq!(port(b"[\"sink\"]"), "sink");
        assert_eq!(port(b"[12,\"x\"]"), "12");
        assert_eq!(port(b"[-1.5]"), "-1.5");
        assert_eq!(port(b"[null]"), "");
        assert_eq!(port(b"[true]"), "1");
        assert_eq!(port(b"[false]"), "");
    }

    #[test]
    fn keepalive_decodes_as_empty_frame() {
        let frames = decode_all(b"[][ ]\n[\t]").unwrap();
        assert_eq!(frames.len(), 3);
        assert!(frames.iter().all(Frame::is_keepalive));
        assert_eq!(frames[0], Frame::default());
    }

    #[test]
    fn whitespace_is_allowed_everywhere_between_tokens() {
        let input = b" \r\n\t[ \"p\" , 1 , [ ] , { } , { \"k\" : [ true , null ] } ] \n";
        let frames = decode_all(input).unwrap();
        assert_eq!(
            frames,
            vec![Frame::new(
                "p",
                vec![
                    Value::Int(1),
                    Value::Array(vec![]),
                    Value::Map(vec![]),
                    Value::Map(vec![(
                        "k".into(),
                        Value::Array(vec![Value::Bool(true), Value::Null])
                    )]),
                ]
            )]
        );
    }

    #[test]
    fn whitespace_only_input_is_consumed() {
        let mut decoder = JsonDecoder::new(10);
        let mut buf = BytesMut::from(&b" \n\r\t "[..]);
        assert_eq!(decoder.decode(&mut buf), Ok(None));
        assert!(buf.is_empty());
        // Trailing whitespace after a message stays until the next call.
        let mut buf = BytesMut::from(&b"[] \n"[..]);
        assert!(decoder.decode(&mut buf).unwrap().is_some());
        assert_eq!(&buf[..], b" \n");
    }

    #[test]
    fn numbers_decode_canonically() {
        let v = |text: &str| decode_value(text.as_bytes()).unwrap();
        assert_eq!(v("0"), Value::Int(0));
        assert!(matches!(v("-0"), Value::Int(0)));
        assert!(matches!(v("9223372036854775807"), Value::Int(i64::MAX)));
        assert!(matches!(
            v("9223372036854775808"),
            Value::UInt(0x8000_0000_0000_0000)
        ));
        assert!(matches!(v("18446744073709551615"), Value::UInt(u64::MAX)));
        assert!(matches!(v("-9223372036854775808"), Value::Int(i64::MIN)));
        let float = |text: &str| match v(text) {
            Value::Float(f) => f,
            other => panic!("{text} decoded as {other:?}"),
        };
        assert_eq!(float("18446744073709551616"), 18_446_744_073_709_551_616.0);
        assert_eq!(float("-9223372036854775809"), -9_223_372_036_854_775_808.0);
        assert_eq!(float("1.0"), 1.0);
        assert!(float("-0.0") == 0.0 && float("-0.0").is_sign_negative());
        assert_eq!(float("1E2"), 100.0);
        assert_eq!(float("1e-2"), 0.01);
        assert_eq!(float("2.5e+3"), 2500.0);
        assert_eq!(float("1795652928.58523"), 1_795_652_928.585_23);
        assert_eq!(float("1e400"), f64::INFINITY);
        // Correct rounding on a hard case.
        assert_eq!(float("2.2250738585072011e-308"), 2.225_073_858_507_201e-308);
    }

    #[test]
    fn strings_decode_all_escapes() {
        let v =
            decode_value(br#""a\"b\\c\/d\be\ff\ng\rh\ti\u0000\u00e9\u20AC\ud83d\ude00""#).unwrap();
        assert_eq!(v, Value::from("a\"b\\c/d\u{8}e\u{c}f\ng\rh\ti\0é€😀"));
        assert_eq!(
            decode_value("\"héllo €😀\"".as_bytes()).unwrap(),
            Value::from("héllo €😀")
        );
    }

    #[test]
    fn objects_keep_order_and_duplicates() {
        let v = decode_value(br#"{"b":1,"a":2,"b":3}"#).unwrap();
        assert_eq!(
            v,
            Value::Map(vec![
                ("b".into(), 1.into()),
                ("a".into(), 2.into()),
                ("b".into(), 3.into()),
            ])
        );
    }

    #[test]
    fn several_messages_in_one_buffer() {
        let frames = decode_all(br#"["a",1]["b",[2]]  ["",{"k":"v"}]"#).unwrap();
        assert_eq!(
            frames,
            vec![
                Frame::new("a", vec![Value::Int(1)]),
                Frame::new("b", vec![Value::Array(vec![Value::Int(2)])]),
                Frame::new("", vec![Value::Map(vec![("k".into(), "v".into())])]),
            ]
        );
    }

    #[test]
    fn partial_buffers_resume_including_split_escapes() {
        let input = br#" ["p\"\\]","x\u00e9\"]y",{"[":"]"},[[]]] "#;
        for split in 0..=input.len() {
            let mut decoder = JsonDecoder::new(1000);
            let mut buf = BytesMut::from(&input[..split]);
            let mut frames = Vec::new();
            if let Some(f) = decoder.decode(&mut buf).unwrap() {
                frames.push(f);
            }
            buf.extend_from_slice(&input[split..]);
            while let Some(f) = decoder.decode(&mut buf).unwrap() {
                frames.push(f);
            }
            assert_eq!(frames.len(), 1, "split at {split}");
            assert_eq!(frames[0].port, "p\"\\]");
            assert_eq!(frames[0].message[0], Value::from("xé\"]y"));
        }
    }

    #[test]
    fn scans_each_byte_once_across_small_reads() {
        let mut wire = Vec::new();
        let big = "ab\\\"[{".repeat(20_000);
        encode_frame("p", &[Value::from(big.as_str()), Value::Int(1)], &mut wire);
        let mut decoder = JsonDecoder::new(1 << 20);
        let mut buf = BytesMut::new();
        let mut frame = None;
        for (i, &b) in wire.iter().enumerate() {
            buf.extend_from_slice(&[b]);
            if let Some(f) = decoder.decode(&mut buf).unwrap() {
                assert_eq!(i, wire.len() - 1);
                frame = Some(f);
            } else {
                // The state records exactly what is buffered: nothing is scanned twice.
                assert_eq!(decoder.scanned, i + 1);
            }
        }
        let frame = frame.unwrap();
        assert_eq!(frame.message[0], Value::from(big.as_str()));
        assert_eq!(decoder.scanned, 0);
    }

    // --- encoder -----------------------------------------------------------------------------

    #[test]
    fn encodes_compactly() {
        let v = Value::Array(vec![
            Value::Null,
            Value::Bool(true),
            Value::Bool(false),
            Value::Int(0),
            Value::Int(-42),
            Value::Int(i64::MIN),
            Value::UInt(u64::MAX),
            Value::Float(1.5),
            Value::Map(vec![("k".into(), Value::Array(vec![]))]),
        ]);
        assert_eq!(
            encoded(&v),
            r#"[null,true,false,0,-42,-9223372036854775808,18446744073709551615,1.5,{"k":[]}]"#
        );
        let mut out = Vec::new();
        encode_frame("sink", &[Value::from("0123456789")], &mut out);
        assert_eq!(out, br#"["sink","0123456789"]"#);
        out.clear();
        encode_frame("", &[], &mut out);
        assert_eq!(out, br#"[""]"#);
    }

    #[test]
    fn escapes_strings_minimally() {
        assert_eq!(
            encoded(&Value::from(
                "a\"b\\c/\u{8}\u{c}\n\r\t\0\u{1f}\u{7f}é€😀\u{2028}"
            )),
            "\"a\\\"b\\\\c/\\b\\f\\n\\r\\t\\u0000\\u001f\u{7f}é€😀\u{2028}\""
        );
        // Long strings take the word-at-a-time path.
        let long = format!("{}\"{}", "x".repeat(37), "y".repeat(9));
        assert_eq!(
            encoded(&Value::from(long.as_str())),
            format!("\"{}\\\"{}\"", "x".repeat(37), "y".repeat(9))
        );
    }

    #[test]
    fn encodes_bytes_as_code_points() {
        let bytes: Vec<u8> = (0..=255).collect();
        let text = encoded(&Value::Bytes(bytes.clone()));
        let expected: String = bytes.iter().map(|&b| char::from(b)).collect();
        assert_eq!(
            decode_value(text.as_bytes()).unwrap(),
            Value::String(expected)
        );
        assert_eq!(
            encoded(&Value::Bytes(vec![b'"', 0xff, 0])),
            "\"\\\"ÿ\\u0000\""
        );
    }

    #[test]
    fn encodes_floats_as_json_floats() {
        for (f, text) in [
            (1.0, "1.0"),
            (1.5, "1.5"),
            (0.1, "0.1"),
            (-0.0, "-0.0"),
            (1e300, "1e300"),
            (1e-7, "1e-7"),
            (5e-324, "5e-324"),
            (f64::MAX, "1.7976931348623157e308"),
            (1e16, "1e16"),
            (123_456_789.125, "123456789.125"),
        ] {
            assert_eq!(encoded(&Value::Float(f)), text);
            let back = decode_value(text.as_bytes());
            assert!(matches!(back, Ok(Value::Float(g)) if g.to_bits() == f.to_bits()));
        }
        for f in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
            assert_eq!(encoded(&Value::Float(f)), "null");
        }
    }

    #[test]
    fn encodes_non_string_keys_like_perl() {
        let v = Value::Map(vec![
            (Value::Int(1), Value::Null),
            (Value::Float(0.5), Value::Null),
            (Value::Null, Value::Null),
            (Value::Bool(true), Value::Null),
            (Value::Bytes(vec![0xe9]), Value::Null),
            (Value::Array(vec![Value::from("a")]), Value::Null),
        ]);
        assert_eq!(
            encoded(&v),
            r#"{"1":null,"0.5":null,"":null,"1":null,"é":null,"[\"a\"]":null}"#
        );
    }

    #[test]
    fn special_mask_finds_the_first_special_byte() {
        for len in 0..80 {
            for pos in 0..=len {
                for special in [b'"', b'\\', 0, 0x1f] {
                    let mut s = vec![b'a'; len];
                    // Bytes that must not count: 0x20, 0x7f, high bytes, neighbours.
                    for (i, b) in s.iter_mut().enumerate() {
                        *b = [b' ', 0x7f, 0xff, b'#', b'[', 0x80, b']', 0xdc][i % 8];
                    }
                    if pos < len {
                        s[pos] = special;
                        if pos + 1 < len {
                            s[pos + 1] = b'"';
                        }
                    }
                    assert_eq!(find_special(&s, 0), pos, "len {len} pos {pos}");
                }
            }
        }
        assert_eq!(find_special(b"abc", 7), 3);
    }
}
