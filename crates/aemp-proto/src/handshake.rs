//! (in progress)
/// Handshake.
pub struct Handshake;
/// Config.
pub struct HandshakeConfig;
/// Error.
#[derive(Debug)]
pub struct HandshakeError;
