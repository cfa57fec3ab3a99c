//! The sans-IO core of the AEMP wire protocol (AnyEvent::MP 1.30 compatible).
//!
//! This crate knows every byte aemp nodes and Perl AnyEvent::MP nodes exchange, and nothing
//! about sockets, clocks or randomness: time and nonces are passed in, bytes go in and come
//! out. The runtime crate `aemp` drives it over tokio; tests and fuzzers drive it in memory.
//!
//! # Protocol in three phases
//!
//! ```text
//!  node A                                                    node B
//!  ──────                                                    ──────
//!  greeting line 1: aemp;1;<node>;<auth list>;<framings>;k=v…  ──►   (both sides send
//!  greeting line 2: <nonce>                                    ──►    at once; symmetric)
//!                         ◄── the same two lines from B
//!  [ both greetings carry tls=1 → TLS starts here; lower nonce line = TLS client ]
//!  auth line: <method>;<token>;<framing A sends>               ──►
//!                         ◄── B's auth line
//!  data phase: messages [port, elements…] in the chosen framings, each direction its own
//! ```
//!
//! # Layout
//!
//! - [`id`]: [`NodeId`], [`PortId`], the port-name generator.
//! - [`value`]: [`Value`], the dynamic message value, and [`Message`], with serde support.
//! - [`md6`]: MD6-256 and HMAC-MD6 in pure Rust.
//! - [`greeting`]: greeting lines and the auth line, parse and format.
//! - [`auth`]: auth methods, token construction, constant-time verification.
//! - [`handshake`]: the handshake state machine ([`Handshake`]).
//! - [`framing`]: the `json` and `cbor` message framings, encoders and incremental decoders.
//! - [`fuzzing`]: fuzz bodies (unstable, for `fuzz/` and tests).
//!
//! # Feature flags
//!
//! None: every part of the protocol is always compiled in.

#![warn(missing_docs)]
#![doc(test(attr(deny(warnings))))]

pub mod auth;
pub mod error;
pub mod framing;
#[doc(hidden)]
pub mod fuzzing;
pub mod greeting;
pub mod handshake;
pub mod id;
pub mod md6;
pub mod value;

pub use error::DecodeError;
pub use framing::{Frame, FrameDecoder, Framing};
pub use handshake::{Handshake, HandshakeConfig, HandshakeError};
pub use id::{IdError, NodeId, PortId, PortNameGenerator};
pub use value::{Message, Value, ValueError};
