//! Fuzz bodies and an in-memory handshake harness. **Not a stable API.**
//!
//! The `fuzz/` crate's targets are one-line calls of these functions, and the unit tests call
//! them too, so they stay compiled and exercised on the stable toolchain. Each body feeds
//! arbitrary bytes to one parser and checks invariants that must hold for every input; a panic
//! is a bug.

use std::time::{Duration, Instant};

use bytes::BytesMut;

use crate::auth::{AuthMethod, Secret};
use crate::framing::{Frame, FrameDecoder, Framing};
use crate::greeting::{AuthLine, Greeting, Nonce};
use crate::handshake::{
    Event, Handshake, HandshakeConfig, HandshakeError, Session, TlsMode, TlsRole,
};

/// Greeting line 1: parsing never panics, and what parses formats back to an equivalent line.
pub fn fuzz_greeting(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(g) = text.parse::<Greeting>() {
        let again: Greeting = g
            .to_string()
            .parse()
            .unwrap_or_else(|e| panic!("formatted greeting does not parse: {e}"));
        assert_eq!(again, g, "greeting round trip");
        let _ = (g.wants_tls(), g.is_version_1());
    }
}

/// The auth line: parsing never panics; parsed lines round-trip in their first three fields.
pub fn fuzz_auth_line(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(a) = text.parse::<AuthLine>() {
        // Fields come from splitting at ';', so they hold none and the line round-trips.
        assert_eq!(a.to_string().parse::<AuthLine>().ok(), Some(a));
    }
}

/// The `json` frame decoder over arbitrary bytes, fed in arbitrary splits.
pub fn fuzz_json_decoder(data: &[u8]) {
    fuzz_decoder(Framing::Json, data);
}

/// The `cbor` frame decoder over arbitrary bytes, fed in arbitrary splits.
pub fn fuzz_cbor_decoder(data: &[u8]) {
    fuzz_decoder(Framing::Cbor, data);
}

/// Decodes `data` fed whole and fed in chunks (the first byte picks the chunk size); both
/// must give the same frames and the same verdict. Every decoded frame must re-encode and
/// decode to itself (for JSON: once the JSON-only normalisation has happened).
fn fuzz_decoder(framing: Framing, data: &[u8]) {
    const MAX: usize = 4096;
    let (chunk, data) = match data.split_first() {
        Some((&c, rest)) => (usize::from(c % 16) + 1, rest),
        None => return,
    };
    let whole = decode_all(framing, MAX, &[data]);
    let chunks: Vec<&[u8]> = data.chunks(chunk).collect();
    let split = decode_all(framing, MAX, &chunks);
    // Frames are compared by their CBOR encoding, which is exact and treats NaN as equal to
    // itself (`Value`'s `==` does not).
    assert_eq!(whole.1, split.1, "decoding depends on read boundaries");
    assert_eq!(
        canonical(&whole.0),
        canonical(&split.0),
        "decoding depends on read boundaries"
    );
    for frame in whole.0 {
        let mut wire = Vec::new();
        framing.encode(&frame.port, &frame.message, &mut wire);
        let (again, err) = decode_all(framing, usize::MAX, &[&wire]);
        assert!(err.is_none(), "re-encoded frame does not decode: {err:?}");
        assert_eq!(again.len(), 1);
        if framing == Framing::Cbor {
            assert_eq!(canonical(&again), canonical(&[frame]), "cbor round trip");
        }
    }
}

/// The CBOR bytes of a list of frames: an exact, NaN-stable form for comparisons.
fn canonical(frames: &[Frame]) -> Vec<u8> {
    let mut out = Vec::new();
    for f in frames {
        Framing::Cbor.encode(&f.port, &f.message, &mut out);
    }
    out
}

/// Feeds `chunks` to one decoder; returns the frames and the error that stopped it, if any.
fn decode_all(
    framing: Framing,
    max: usize,
    chunks: &[&[u8]],
) -> (Vec<Frame>, Option<crate::DecodeError>) {
    let mut decoder = FrameDecoder::new(framing, max);
    let mut buf = BytesMut::new();
    let mut frames = Vec::new();
    for chunk in chunks {
        buf.extend_from_slice(chunk);
        loop {
            match decoder.decode(&mut buf) {
                Ok(Some(f)) => frames.push(f),
                Ok(None) => break,
                Err(e) => return (frames, Some(e)),
            }
        }
    }
    (frames, None)
}

/// The handshake machine fed arbitrary peer bytes: it must never panic, must consume nothing
/// past the lines it needs, and must end up waiting, failed or established.
///
/// The first byte selects our configuration (TLS or not, which auth methods) and the chunk
/// size; the rest is what the "peer" sends.
pub fn fuzz_handshake(data: &[u8]) {
    let Some((&selector, input)) = data.split_first() else {
        return;
    };
    let mut config = HandshakeConfig::new(node("fuzz-us"));
    if selector & 1 != 0 {
        config.secret = Some(Secret::new("fuzz-secret"));
    }
    if selector & 2 != 0 {
        config.tls = TlsMode::Enabled;
    }
    if selector & 4 != 0 {
        config.auth_accept = AuthMethod::ALL.to_vec();
        config.auth_offer = AuthMethod::ALL.to_vec();
    }
    let chunk = usize::from(selector >> 4) + 1;
    let now = Instant::now();
    let mut hs = Handshake::new(&config, Nonce::from_random(&[0x55; 66]), None, now);
    for piece in input.chunks(chunk) {
        if hs.handle_input(piece, now).is_err() {
            break;
        }
        while let Some(event) = hs.poll_event() {
            let result = match event {
                Event::PeerGreeting { .. } => hs.accept_peer(now),
                Event::StartTls { .. } => {
                    drop(hs.take_buffered());
                    hs.tls_established(now)
                }
                Event::Established(_) => Ok(()),
            };
            if result.is_err() {
                break;
            }
        }
        while hs.poll_transmit().is_some() {}
    }
    // Whatever happened, the deadline still ends a handshake that did not complete.
    let later = now + Duration::from_secs(3600);
    if !hs.is_established() {
        assert!(hs.handle_timeout(later).is_err());
        assert_eq!(hs.poll_timeout(), None);
    }
}

/// One side of an in-memory handshake, with what happened to it.
#[derive(Debug)]
pub struct Side {
    /// The machine.
    pub handshake: Handshake,
    /// Whether this side accepts the peer's greeting.
    pub approve: bool,
    /// The TLS role asked for, once [`Event::StartTls`] came.
    pub tls_role: Option<TlsRole>,
    /// Set while TLS was asked for but not yet reported established.
    tls_pending: bool,
    /// The session, once established.
    pub session: Option<Session>,
    /// The error that ended this side.
    pub error: Option<HandshakeError>,
    /// Bytes received after the handshake (the data phase).
    pub data: BytesMut,
    /// Every byte this side sent, in order (the wire transcript of this direction).
    pub sent: Vec<u8>,
}

impl Side {
    /// Wraps a machine; the side approves its peer unless told otherwise.
    pub fn new(handshake: Handshake) -> Self {
        Self {
            handshake,
            approve: true,
            tls_role: None,
            tls_pending: false,
            session: None,
            error: None,
            data: BytesMut::new(),
            sent: Vec::new(),
        }
    }

    fn input(&mut self, bytes: &[u8], chunk: usize, now: Instant) {
        if self.error.is_some() {
            return;
        }
        if self.session.is_some() {
            self.data.extend_from_slice(bytes);
            return;
        }
        for piece in bytes.chunks(chunk.max(1)) {
            if let Err(e) = self.handshake.handle_input(piece, now) {
                self.error = Some(e);
                return;
            }
        }
    }

    fn events(&mut self, now: Instant) -> bool {
        let mut progress = false;
        while let Some(event) = self.handshake.poll_event() {
            progress = true;
            let result = match event {
                Event::PeerGreeting { .. } if self.approve => self.handshake.accept_peer(now),
                Event::PeerGreeting { .. } => Err(self.handshake.refuse_peer("not approved")),
                Event::StartTls { role } => {
                    self.tls_role = Some(role);
                    self.tls_pending = true;
                    Ok(())
                }
                Event::Established(session) => {
                    self.session = Some(*session);
                    self.data = self.handshake.take_buffered();
                    Ok(())
                }
            };
            if let Err(e) = result {
                self.error = Some(e);
            }
        }
        progress
    }
}

/// Two handshakes wired back to back in memory, with TLS simulated as a pass-through: when
/// both sides ask for TLS in opposite roles, both are told it is established.
#[derive(Debug)]
pub struct HandshakePair {
    /// The first side (conventionally the dialler).
    pub a: Side,
    /// The second side.
    pub b: Side,
    /// Deliver bytes in pieces of this size (1 = one byte at a time).
    pub chunk: usize,
    /// The time passed to both machines.
    pub now: Instant,
}

impl HandshakePair {
    /// Creates a pair from two configurations, with distinct fixed nonces.
    pub fn new(a: &HandshakeConfig, b: &HandshakeConfig, now: Instant) -> Self {
        Self::with_nonces(a, b, [b'a'; 66], [b'b'; 66], now)
    }

    /// Creates a pair with the given random bytes for the two nonces.
    pub fn with_nonces(
        a: &HandshakeConfig,
        b: &HandshakeConfig,
        nonce_a: [u8; 66],
        nonce_b: [u8; 66],
        now: Instant,
    ) -> Self {
        Self {
            a: Side::new(Handshake::new(a, Nonce::from_random(&nonce_a), None, now)),
            b: Side::new(Handshake::new(b, Nonce::from_random(&nonce_b), None, now)),
            chunk: usize::MAX,
            now,
        }
    }

    /// Exchanges bytes and handles events until nothing moves any more.
    pub fn drive(&mut self) {
        let now = self.now;
        loop {
            let mut progress = pump(&mut self.a, &mut self.b, self.chunk, now);
            progress |= pump(&mut self.b, &mut self.a, self.chunk, now);
            progress |= self.a.events(now);
            progress |= self.b.events(now);
            if self.a.tls_pending && self.b.tls_pending {
                assert_ne!(
                    self.a.tls_role, self.b.tls_role,
                    "both sides chose one TLS role"
                );
                for side in [&mut self.a, &mut self.b] {
                    side.tls_pending = false;
                    let early = side.handshake.take_buffered();
                    let result = side
                        .handshake
                        .tls_established(now)
                        .and_then(|()| side.handshake.handle_input(&early, now));
                    if let Err(e) = result {
                        side.error = Some(e);
                    }
                }
                progress = true;
            }
            if !progress {
                return;
            }
        }
    }
}

/// Moves everything `from` wants to transmit into `to`; `true` if anything moved.
fn pump(from: &mut Side, to: &mut Side, chunk: usize, now: Instant) -> bool {
    let mut progress = false;
    while let Some(bytes) = from.handshake.poll_transmit() {
        progress = true;
        from.sent.extend_from_slice(&bytes);
        to.input(&bytes, chunk, now);
    }
    progress
}

fn node(id: &str) -> crate::NodeId {
    crate::NodeId::new(id).unwrap_or_else(|e| panic!("fixed node id {id:?} is valid: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    const NASTY: &[&[u8]] = &[
        b"",
        b"\x00",
        b"aemp;1;x;hmac_md6_64_256;json\n",
        b";;;;;;;\n\n\n",
        b"aemp;1;peer;hmac_md6_64_256,tls_md6_64_256;json,cbor;tls=1\nnonce\nhmac_md6_64_256;00;json\n",
        b"[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[",
        b"[\"a\",1,2.5,{\"k\":[null,true]}]",
        b"\x82\x64sink\x6a0123456789",
        b"\x9f\x9f\x9f\x9f\xff",
        b"\xbb\xff\xff\xff\xff\xff\xff\xff\xff",
        b"\x5b\xff\xff\xff\xff\xff\xff\xff\xff",
    ];

    #[test]
    fn greeting_body_survives_nasty_inputs() {
        for input in NASTY {
            fuzz_greeting(input);
            fuzz_auth_line(input);
        }
        fuzz_greeting(b"aemp;1;x;a,b;json;k=v;bare");
    }

    #[test]
    fn handshake_body_survives_nasty_inputs() {
        for input in NASTY {
            for selector in [0_u8, 1, 3, 7, 0xf1, 0x25] {
                let mut data = vec![selector];
                data.extend_from_slice(input);
                fuzz_handshake(&data);
            }
        }
    }

    #[test]
    fn decoder_bodies_survive_nasty_inputs() {
        for input in NASTY {
            for selector in [0_u8, 1, 7] {
                let mut data = vec![selector];
                data.extend_from_slice(input);
                fuzz_json_decoder(&data);
                fuzz_cbor_decoder(&data);
            }
        }
    }
}
