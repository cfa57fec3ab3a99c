//! MD6-256 in pure Rust and HMAC-MD6 with a 64-byte block (reference §4.7).
//! (Implementation in progress.)

/// MD6 with a 256-bit digest and default parameters (mode L = 64, r = 104 rounds, no key).
pub fn md6_256(_data: &[u8]) -> [u8; 32] {
    todo!("md6")
}

/// HMAC over MD6-256 with a 64-byte block, as Digest::HMAC_MD6 computes it.
pub fn hmac_md6_256(_key: &[u8], _message: &[u8]) -> [u8; 32] {
    todo!("hmac md6")
}
