//! MD6-256 in pure Rust and HMAC-MD6 with a 64-byte block (reference §4.7).
//!
//! AEMP authenticates with MD6, Ron Rivest's 2008 SHA-3 candidate, exactly as Perl's
//! `Digest::MD6` 0.11 (a wrapper around the MIT reference code) and `Digest::HMAC_MD6` compute it.
//! Only the parameters AEMP uses are implemented: a 256-bit digest (d = 256), no key, the default
//! mode L = 64 and the default r = 40 + d/4 = 104 rounds.
//!
//! # How MD6 works
//!
//! **Compression.** The compression function maps n = 89 input words (64-bit, big-endian) to
//! c = 16 output words. The input is `Q ‖ K ‖ U ‖ V ‖ B`:
//!
//! | words | name | content |
//! |---|---|---|
//! | 15 | Q | constant: the first 960 bits of the fractional part of √6 |
//! | 8 | K | the key, zero here (no key) |
//! | 1 | U | node ID: tree level ℓ (8 bits) ‖ index of the node within its level (56 bits) |
//! | 1 | V | control word: 0 (4) ‖ r (12) ‖ L (8) ‖ z (4) ‖ p (16) ‖ key length (8) ‖ d (12) |
//! | 64 | B | 512 bytes of data, zero-padded; p counts the padding bits, z = 1 only at the root |
//!
//! The 89 words seed a non-linear feedback shift register that runs r rounds of 16 steps; each
//! step computes one new word from the words 17, 18, 21, 31, 67 and 89 positions back, a round
//! constant and a per-step shift pair. The last 16 words computed are the output.
//!
//! **Mode of operation.** With L = 64 MD6 hashes a 4-ary Merkle tree. The message is cut into
//! 512-byte leaves (level 1; the empty message still makes one all-padding leaf). Each node of
//! level ℓ + 1 compresses the 16-word outputs of up to 4 consecutive nodes of level ℓ, padded
//! with zeros. The first level with a single node holds the root, compressed with z = 1; the
//! digest is the last 256 bits of the root's output.
//!
//! [`Md6_256`] computes this incrementally: it buffers one leaf and, for every upper level, up to
//! four child outputs, so memory stays bounded (a few KiB) whatever the input length. As in the
//! reference code, a full block is only compressed once more input is known to follow, so
//! the node that ends up as the root is compressed last, with z = 1.
//!
//! # Example
//!
//! ```
//! use aemp_proto::md6::{hmac_md6_256, md6_256, to_hex, Md6_256};
//!
//! assert_eq!(
//!     to_hex(&md6_256(b"abc")),
//!     "230637d4e6845cf0d092b558e87625f03881dd53a7439da34cf3b94ed0d8b2c5"
//! );
//!
//! let mut hasher = Md6_256::new();
//! hasher.update(b"a");
//! hasher.update(b"bc");
//! assert_eq!(hasher.finalize(), md6_256(b"abc"));
//!
//! assert_eq!(
//!     to_hex(&hmac_md6_256(b"key", b"message")),
//!     "afa1764e5004478e98fec7dafc263e3bd2e2ee27186be3d1079805dbb4a81de6"
//! );
//! ```

use std::fmt;

/// Length of an MD6-256 digest in bytes.
pub const DIGEST_LEN: usize = 32;

/// Block size of [`hmac_md6_256`] in bytes (the `64` in AEMP's `hmac_md6_64_256`).
pub const HMAC_BLOCK_LEN: usize = 64;

/// Digest length d in bits.
const D_BITS: u64 = 256;
/// Number of rounds r = 40 + d/4.
const ROUNDS: usize = 40 + (D_BITS as usize) / 4;
/// Mode parameter L: the tree may be up to 64 levels high, so MD6's sequential mode never runs.
const MODE_L: u64 = 64;

/// Words in a compression input (n).
const N: usize = 89;
/// Words in a compression output (c).
const C: usize = 16;
/// Data words per compression (b).
const B: usize = 64;
/// Data bytes per compression.
const BLOCK_BYTES: usize = B * 8;
/// Child outputs an upper-level node takes (b / c).
const FAN_IN: usize = B / C;
/// Length of the whole feedback shift register: the input and every word computed.
const REGISTER: usize = N + ROUNDS * C;

/// Q: the first 960 bits of the fractional part of √6.
const Q: [u64; 15] = [
    0x7311_c281_2425_cfa0,
    0x6432_2864_34aa_c8e7,
    0xb604_50e9_ef68_b7c1,
    0xe8fb_2390_8d9f_06f1,
    0xdd2e_76cb_a691_e5bf,
    0x0cd0_d63b_2c30_bc41,
    0x1f8c_cf68_2305_8f8a,
    0x54e5_ed5b_88e3_775d,
    0x4ad1_2aae_0a6d_6031,
    0x3e7f_16bb_8822_2e0d,
    0x8af8_671d_3fb5_0c2c,
    0x995a_d117_8bd2_5c31,
    0xc878_c1dd_04c4_b633,
    0x3b72_066c_7a15_52ac,
    0x0d6f_3522_631e_ffcb,
];

/// Tap positions t0..t5: how far back a step reads the register.
const T0: usize = 17;
const T1: usize = 18;
const T2: usize = 21;
const T3: usize = 31;
const T4: usize = 67;
const T5: usize = 89;

/// Right-shift amount of each of the 16 steps of a round.
const RIGHT_SHIFTS: [u32; C] = [10, 5, 13, 10, 11, 12, 2, 7, 14, 15, 7, 13, 11, 7, 6, 12];
/// Left-shift amount of each of the 16 steps of a round.
const LEFT_SHIFTS: [u32; C] = [11, 24, 9, 16, 15, 9, 27, 15, 6, 2, 29, 8, 15, 5, 31, 9];

/// Round constant of the first round.
const S0: u64 = 0x0123_4567_89ab_cdef;
/// Mask of the round-constant recurrence S' = (S <<< 1) ⊕ (S ∧ S*).
const S_MASK: u64 = 0x7311_c281_2425_cfa0;

/// The MD6 compression function with this module's fixed parameters (d, r, L, no key).
///
/// `level` and `index` name the node (U), `last` sets z, `pad_bits` is p, the number of
/// zero-padding bits at the end of `data`.
fn compress(level: u64, index: u64, last: bool, pad_bits: u64, data: &[u64; B]) -> [u64; C] {
    let node_id = (level << 56) | (index & ((1 << 56) - 1));
    let control = ((ROUNDS as u64) << 48)
        | (MODE_L << 40)
        | (u64::from(last) << 36)
        | ((pad_bits & 0xffff) << 20)
        | D_BITS;

    let mut a = [0u64; REGISTER];
    a[..Q.len()].copy_from_slice(&Q);
    // a[15..23] is the key K: all zero.
    a[23] = node_id;
    a[24] = control;
    a[N - B..N].copy_from_slice(data);

    let mut s = S0;
    // Round by round, over a window of the register holding the 89 words before the round and
    // the 16 it computes; fixed-size windows let the compiler drop the bounds checks in a round.
    for start in (0..ROUNDS).map(|r| r * C) {
        if let Some((window, _)) = a[start..].split_first_chunk_mut::<{ N + C }>() {
            round(window, s);
        }
        s = s.rotate_left(1) ^ (s & S_MASK);
    }

    let mut out = [0u64; C];
    out.copy_from_slice(&a[REGISTER - C..]);
    out
}

/// One round: computes `w[N..N + C]` from `w[..N]` with round constant `s`.
#[inline(always)]
fn round(w: &mut [u64; N + C], s: u64) {
    for step in 0..C {
        let i = N + step;
        let mut x = s ^ w[i - T5] ^ w[i - T0] ^ (w[i - T1] & w[i - T2]) ^ (w[i - T3] & w[i - T4]);
        x ^= x >> RIGHT_SHIFTS[step];
        w[i] = x ^ (x << LEFT_SHIFTS[step]);
    }
}

/// One upper tree level (ℓ ≥ 2) under construction: the outputs of up to four children.
#[derive(Clone)]
struct Level {
    /// The children's outputs so far, zero after them.
    words: [u64; B],
    /// How many children's outputs `words` holds (0..4; a full level is compressed at once).
    children: usize,
    /// Index within the level of the node being filled.
    index: u64,
}

impl Level {
    const fn new() -> Self {
        Self {
            words: [0; B],
            children: 0,
            index: 0,
        }
    }

    /// Appends one child's output. The caller makes sure there is room.
    fn push(&mut self, chunk: &[u64; C]) {
        if let Some(slot) = self
            .words
            .get_mut(self.children * C..(self.children + 1) * C)
        {
            slot.copy_from_slice(chunk);
            self.children += 1;
        }
    }

    /// Compresses the node at tree level `level` and makes room for the next one.
    fn compress(&mut self, level: u64, last: bool) -> [u64; C] {
        let pad_bits = (FAN_IN.saturating_sub(self.children) * C * 64) as u64;
        let out = compress(level, self.index, last, pad_bits, &self.words);
        self.words = [0; B];
        self.children = 0;
        self.index = self.index.wrapping_add(1);
        out
    }
}

/// Incremental MD6-256 (d = 256, L = 64, r = 104, no key), byte-for-byte compatible with
/// Perl's `Digest::MD6` (`md6_256`).
///
/// Memory is bounded: one 512-byte leaf plus, per tree level above it, the outputs of up to four
/// children; a level is only allocated once the input needs it (more than 2 KiB of input).
///
/// ```
/// use aemp_proto::md6::{md6_256, Md6_256};
///
/// let mut hasher = Md6_256::new();
/// hasher.update(b"hello ");
/// hasher.update(b"world");
/// assert_eq!(hasher.finalize(), md6_256(b"hello world"));
/// ```
#[derive(Clone)]
pub struct Md6_256 {
    /// The current leaf's data; bytes from `leaf_len` on are not meaningful.
    leaf: [u8; BLOCK_BYTES],
    /// How many bytes of `leaf` hold data.
    leaf_len: usize,
    /// Index of the current leaf (leaves compressed so far).
    leaf_index: u64,
    /// Tree levels 2, 3, …: `upper[0]` is level 2. Empty until the first leaf is compressed.
    upper: Vec<Level>,
}

impl Md6_256 {
    /// A hasher that has seen no input yet.
    pub const fn new() -> Self {
        Self {
            leaf: [0; BLOCK_BYTES],
            leaf_len: 0,
            leaf_index: 0,
            upper: Vec::new(),
        }
    }

    /// Feeds `data` to the hash. Calls may split the input anywhere: the result only depends on
    /// the concatenation of everything fed.
    pub fn update(&mut self, mut data: &[u8]) {
        while !data.is_empty() {
            if self.leaf_len == BLOCK_BYTES {
                // The leaf is full and more input follows, so it is not the root.
                let chunk = self.compress_leaf(false);
                self.push_up(&chunk);
            }
            let take = (BLOCK_BYTES - self.leaf_len).min(data.len());
            let (head, rest) = data.split_at(take);
            self.leaf[self.leaf_len..self.leaf_len + take].copy_from_slice(head);
            self.leaf_len += take;
            data = rest;
        }
    }

    /// Feeds `data` and returns the hasher, for chaining.
    #[must_use]
    pub fn chain(mut self, data: &[u8]) -> Self {
        self.update(data);
        self
    }

    /// Finishes the hash and returns the 32-byte digest.
    #[must_use]
    pub fn finalize(mut self) -> [u8; DIGEST_LEN] {
        // The root is the last node compressed: the leaf if no leaf has been compressed yet,
        // otherwise the node of the highest level. Every level gets at least one child's output
        // on the way up (the leaf holds data, or nothing would have been compressed), so the
        // padding counts are right and the top level ends up with 2..4 children.
        let root = if self.upper.is_empty() {
            self.compress_leaf(true)
        } else {
            let mut chunk = self.compress_leaf(false);
            let top = self.upper.len() - 1;
            for (depth, level) in self.upper.iter_mut().enumerate() {
                level.push(&chunk);
                chunk = level.compress(depth as u64 + 2, depth == top);
            }
            chunk
        };
        let mut digest = [0u8; DIGEST_LEN];
        for (bytes, word) in digest.chunks_exact_mut(8).zip(&root[C - DIGEST_LEN / 8..]) {
            bytes.copy_from_slice(&word.to_be_bytes());
        }
        digest
    }

    /// Compresses the current leaf (level 1) and starts the next one.
    fn compress_leaf(&mut self, last: bool) -> [u64; C] {
        let mut words = [0u64; B];
        for (word, bytes) in words.iter_mut().zip(self.leaf[..self.leaf_len].chunks(8)) {
            let mut be = [0u8; 8];
            be[..bytes.len()].copy_from_slice(bytes);
            *word = u64::from_be_bytes(be);
        }
        let pad_bits = ((BLOCK_BYTES - self.leaf_len) * 8) as u64;
        let out = compress(1, self.leaf_index, last, pad_bits, &words);
        self.leaf_len = 0;
        self.leaf_index = self.leaf_index.wrapping_add(1);
        out
    }

    /// Hands a non-root node's output to its parent level, compressing every level that fills
    /// up (more input follows, so none of them is the root).
    fn push_up(&mut self, chunk: &[u64; C]) {
        let mut chunk = *chunk;
        let mut depth = 0;
        loop {
            if depth == self.upper.len() {
                self.upper.push(Level::new());
            }
            let Some(level) = self.upper.get_mut(depth) else {
                return;
            };
            level.push(&chunk);
            if level.children < FAN_IN {
                return;
            }
            chunk = level.compress(depth as u64 + 2, false);
            depth += 1;
        }
    }
}

impl Default for Md6_256 {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for Md6_256 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never print buffered input: it may be secret (HMAC keys, shared secrets).
        f.debug_struct("Md6_256")
            .field("leaves", &self.leaf_index)
            .field("levels", &(self.upper.len() + 1))
            .finish_non_exhaustive()
    }
}

/// MD6 with a 256-bit digest and default parameters (mode L = 64, r = 40 + d/4 = 104 rounds,
/// empty key), as Perl's `Digest::MD6::md6_256`.
///
/// ```
/// use aemp_proto::md6::{md6_256, to_hex};
///
/// assert_eq!(
///     to_hex(&md6_256(b"")),
///     "bca38b24a804aa37d821d31af00f5598230122c5bbfc4c4ad5ed40e4258f04ca"
/// );
/// ```
#[must_use]
pub fn md6_256(data: &[u8]) -> [u8; DIGEST_LEN] {
    Md6_256::new().chain(data).finalize()
}

/// HMAC over MD6-256 with a 64-byte block, exactly as Perl's `Digest::HMAC_MD6` computes it
/// (`hmac_md6(message, key, 64, 256)`, `Digest::HMAC` semantics).
///
/// A key longer than 64 bytes is first replaced by its MD6-256 digest; the key is then
/// zero-padded to 64 bytes and the result is
/// `MD6-256((key ⊕ 0x5c…) ‖ MD6-256((key ⊕ 0x36…) ‖ message))`.
///
/// ```
/// use aemp_proto::md6::{hmac_md6_256, to_hex};
///
/// assert_eq!(
///     to_hex(&hmac_md6_256(b"key", b"message")),
///     "afa1764e5004478e98fec7dafc263e3bd2e2ee27186be3d1079805dbb4a81de6"
/// );
/// ```
#[must_use]
pub fn hmac_md6_256(key: &[u8], message: &[u8]) -> [u8; DIGEST_LEN] {
    let mut block = [0u8; HMAC_BLOCK_LEN];
    if key.len() > HMAC_BLOCK_LEN {
        block[..DIGEST_LEN].copy_from_slice(&md6_256(key));
    } else {
        block[..key.len()].copy_from_slice(key);
    }
    let pad = |byte: u8| block.map(|k| k ^ byte);
    let inner = Md6_256::new().chain(&pad(0x36)).chain(message).finalize();
    Md6_256::new().chain(&pad(0x5c)).chain(&inner).finalize()
}

/// Lowercase hexadecimal of `bytes`, as AEMP puts digests on the wire.
///
/// ```
/// assert_eq!(aemp_proto::md6::to_hex(&[0x00, 0xab, 0x7f]), "00ab7f");
/// ```
#[must_use]
pub fn to_hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut hex = String::with_capacity(bytes.len() * 2);
    for &byte in bytes {
        hex.push(char::from(DIGITS[usize::from(byte >> 4)]));
        hex.push(char::from(DIGITS[usize::from(byte & 0xf)]));
    }
    hex
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A deliberately different formulation of the MD6 tree: hash all leaves, then reduce level
    /// by level in groups of four until a level has one node, which is the root.
    fn tree_model(data: &[u8]) -> [u8; DIGEST_LEN] {
        let leaves: Vec<&[u8]> = if data.is_empty() {
            vec![&[]]
        } else {
            data.chunks(512).collect()
        };
        let words_of = |leaf: &[u8]| {
            let mut padded = [0u8; BLOCK_BYTES];
            padded[..leaf.len()].copy_from_slice(leaf);
            let mut words = [0u64; B];
            for (word, bytes) in words.iter_mut().zip(padded.chunks_exact(8)) {
                *word = u64::from_be_bytes(bytes.try_into().unwrap());
            }
            words
        };
        let single = leaves.len() == 1;
        let mut outputs: Vec<[u64; C]> = leaves
            .iter()
            .enumerate()
            .map(|(i, leaf)| {
                let pad = (BLOCK_BYTES - leaf.len()) as u64 * 8;
                compress(1, i as u64, single, pad, &words_of(leaf))
            })
            .collect();
        let mut level = 2;
        while outputs.len() > 1 {
            let root = outputs.len() <= FAN_IN;
            outputs = outputs
                .chunks(FAN_IN)
                .enumerate()
                .map(|(i, kids)| {
                    let mut words = [0u64; B];
                    for (slot, kid) in words.chunks_exact_mut(C).zip(kids) {
                        slot.copy_from_slice(kid);
                    }
                    let pad = ((FAN_IN - kids.len()) * C * 64) as u64;
                    compress(level, i as u64, root, pad, &words)
                })
                .collect();
            level += 1;
        }
        let mut digest = [0u8; DIGEST_LEN];
        for (bytes, word) in digest.chunks_exact_mut(8).zip(&outputs[0][12..]) {
            bytes.copy_from_slice(&word.to_be_bytes());
        }
        digest
    }

    /// xorshift64*: deterministic pseudo-random numbers for chunk splits and test data.
    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
        }

        fn below(&mut self, n: usize) -> usize {
            (self.next() % n as u64) as usize
        }

        fn bytes(&mut self, len: usize) -> Vec<u8> {
            (0..len).map(|_| (self.next() >> 56) as u8).collect()
        }
    }

    /// Hashes `data` fed in random pieces (including empty ones), mostly short, sometimes long.
    fn hash_in_pieces(data: &[u8], rng: &mut Rng) -> [u8; DIGEST_LEN] {
        let mut hasher = Md6_256::new();
        let mut rest = data;
        while !rest.is_empty() {
            let max = if rng.below(4) == 0 { 2048 } else { 40 };
            let take = rng.below(max + 1).min(rest.len());
            let (piece, tail) = rest.split_at(take);
            hasher.update(piece);
            rest = tail;
        }
        hasher.update(&[]);
        hasher.finalize()
    }

    #[test]
    fn known_digests() {
        const SECRET: &[u8] = b"8ugxrtw6H5tKnfPWfaSr4HGhE8MoJXmzTT1BWq7sLut\
                                NcD0IbXprQlZjIbl7MBKoeklG3IEfY9GlJthC0pENzk";
        assert_eq!(
            to_hex(&md6_256(b"")),
            "bca38b24a804aa37d821d31af00f5598230122c5bbfc4c4ad5ed40e4258f04ca"
        );
        assert_eq!(
            to_hex(&md6_256(b"abc")),
            "230637d4e6845cf0d092b558e87625f03881dd53a7439da34cf3b94ed0d8b2c5"
        );
        assert_eq!(
            to_hex(&md6_256(SECRET)),
            "21bbec58f7330e200e0ff56a96dd6451aae049a4ce6c59b4fd0b7dcc101136c7"
        );
    }

    #[test]
    fn known_hmacs() {
        assert_eq!(
            to_hex(&hmac_md6_256(b"key", b"message")),
            "afa1764e5004478e98fec7dafc263e3bd2e2ee27186be3d1079805dbb4a81de6"
        );
        assert_eq!(
            to_hex(&hmac_md6_256(b"key", b"data")),
            "d47ad7f69305ad00bbf681d81a25742bcf5f6b3a2010e23767f23d37339eb596"
        );
    }

    #[test]
    fn hmac_key_handling() {
        let mut rng = Rng(0x1234_5678_9abc_def1);
        let message = rng.bytes(100);
        // A key of up to 64 bytes is zero-padded: trailing zeros make no difference.
        let key = rng.bytes(40);
        let mut padded = key.clone();
        padded.resize(HMAC_BLOCK_LEN, 0);
        assert_eq!(
            hmac_md6_256(&key, &message),
            hmac_md6_256(&padded, &message)
        );
        // A longer key is replaced by its digest.
        for len in [65, 100, 512, 513, 3000] {
            let key = rng.bytes(len);
            assert_eq!(
                hmac_md6_256(&key, &message),
                hmac_md6_256(&md6_256(&key), &message)
            );
        }
        // Exactly 64 bytes is used as is, not hashed.
        let key = rng.bytes(64);
        assert_ne!(
            hmac_md6_256(&key, &message),
            hmac_md6_256(&md6_256(&key), &message)
        );
        // The definition, spelt out.
        let key = rng.bytes(200);
        let mut block = md6_256(&key).to_vec();
        block.resize(HMAC_BLOCK_LEN, 0);
        let ipad: Vec<u8> = block
            .iter()
            .map(|b| b ^ 0x36)
            .chain(message.clone())
            .collect();
        let inner = md6_256(&ipad);
        let opad: Vec<u8> = block.iter().map(|b| b ^ 0x5c).chain(inner).collect();
        assert_eq!(hmac_md6_256(&key, &message), md6_256(&opad));
    }

    #[test]
    fn streaming_matches_one_shot_for_short_inputs() {
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        let data = rng.bytes(3000);
        for len in 0..=data.len() {
            let input = &data[..len];
            let one_shot = md6_256(input);
            assert_eq!(hash_in_pieces(input, &mut rng), one_shot, "length {len}");
            if len % 97 == 0 || len % 512 <= 1 || len % 512 == 511 {
                assert_eq!(tree_model(input), one_shot, "length {len}");
            }
        }
    }

    #[test]
    fn streaming_matches_tree_model_at_level_boundaries() {
        let mut rng = Rng(0x0bad_cafe_f00d_beef);
        let data = rng.bytes(512 * 4usize.pow(4) + 1000);
        // Leaf counts of 4^k ± 1: where the tree gets another level.
        for leaves in [4, 16, 64, 256] {
            for len in [leaves * 512 - 1, leaves * 512, leaves * 512 + 1] {
                let input = &data[..len];
                let expected = tree_model(input);
                assert_eq!(md6_256(input), expected, "length {len}");
                assert_eq!(hash_in_pieces(input, &mut rng), expected, "length {len}");
            }
        }
    }

    #[test]
    fn large_input_in_uneven_pieces() {
        let mut rng = Rng(42);
        let data = rng.bytes(1024 * 1024 + 12345);
        let expected = tree_model(&data);
        assert_eq!(md6_256(&data), expected);
        let mut hasher = Md6_256::new();
        for piece in data.chunks(4093) {
            hasher.update(piece);
        }
        assert_eq!(hasher.finalize(), expected);
    }

    /// Test data for [`reference_control_flow_values`]: byte k is `31 k + ⌊k / 251⌋` mod 256.
    fn pattern(len: usize) -> Vec<u8> {
        (0..len).map(|k| (k * 31 + k / 251) as u8).collect()
    }

    /// Digests from a line-by-line transliteration (Python, outside this repository) of the
    /// reference `md6_update` / `md6_process` / `md6_final` control flow. The Perl-made vectors
    /// stop at 1000 bytes (two tree levels); these go up to eight levels (2 MiB + 1 byte), around
    /// every 4^k-leaf boundary on the way.
    #[test]
    fn reference_control_flow_values() {
        const VALUES: &[(usize, &str)] = &[
            (
                0,
                "bca38b24a804aa37d821d31af00f5598230122c5bbfc4c4ad5ed40e4258f04ca",
            ),
            (
                1,
                "9ad49987050501dd2d6363036bbf88264b66aa659f3afd8145adc4cd56901c81",
            ),
            (
                511,
                "69439b006416b071cb11f9de1404bf5ea682e3ad964e97228e1a64dd5c754c33",
            ),
            (
                512,
                "673f047e3e6ad9c4c6f80807b77b1b891cfc72c7c171f9d80959108144038328",
            ),
            (
                513,
                "386109d5d42e69ac1d86940f434e42b6eacf4938cf3281f8d8e5207d004de7e1",
            ),
            (
                2047,
                "268343ebe364e29a919f33edd7ffb9aa1ca36615a7a870a015abdf88385f7a09",
            ),
            (
                2048,
                "380f035930be08d6fb2cd9c92d6e8f3c72f5078a52b295c835751e1c19ec89bc",
            ),
            (
                2049,
                "9add0e3e2057244ded18e10574abb1075d6b1c9e2fc95e4020e09e1ab0294e97",
            ),
            (
                8191,
                "f860b836e41180d062c60512a998407afaa692e14c46a1f220f0a5def0aa75e2",
            ),
            (
                8192,
                "ddadad3994f76b6db1e49d8c9dbc16b19c067151c9b66babadad96371c6700e2",
            ),
            (
                8193,
                "727d01903ed101f3cf03db02192c9d38f273d37cb71f567929b5fcb34f55f582",
            ),
            (
                32767,
                "636f13ff1e158d9f3f140b3a04351acfb906a85c304906c18c87f2533ee857c6",
            ),
            (
                32768,
                "76e4abbf8a964cc985d5cc23c8782446a6838a26a539c34cba6eb3132c68a34a",
            ),
            (
                32769,
                "b091a61a0c62630ea4a558085a5573debb006f97a0942b7c2243a215b781292c",
            ),
            (
                131071,
                "8c749de67ba81c6ccc0d2dbde7bb9ad40e7c4fe9c26ec75a0671cef5207c6f45",
            ),
            (
                131072,
                "153249960ffd377852ac3a7a98b20fba281571fc98a2b4764c59529ab1841eee",
            ),
            (
                131073,
                "c332ef000ff570fe04a19615e475316c5b9e22a7a275ac673332da00086d5617",
            ),
            (
                524287,
                "ed1bc1fc344b2dbdc30444bd372067b9421cee8c4acc092b23479aba2398d296",
            ),
            (
                524288,
                "6cd7c324d0de5f7db9359596735957006cf025d9e9b37cfcff8a9396b1422c74",
            ),
            (
                524289,
                "0fc5c1b1f0ab880436ac264934ff05346ae42e0be193d3f22da6f1069ea02881",
            ),
            (
                1060921,
                "e137f213236e0a409931c8dd2afc47c26f598cdfc2ab7e6a33f6d90ec2f59595",
            ),
            (
                2097153,
                "2116f7c63951a36977eaa695321ff979185c755e4df99c2a73540ecf649e498f",
            ),
        ];
        let mut rng = Rng(7);
        for &(len, hex) in VALUES {
            let data = pattern(len);
            assert_eq!(to_hex(&md6_256(&data)), hex, "length {len}");
            if len < 200_000 {
                assert_eq!(
                    to_hex(&hash_in_pieces(&data, &mut rng)),
                    hex,
                    "length {len}"
                );
            }
        }
    }

    /// Timing, not a check:
    /// `cargo test --release -p aemp-proto --lib md6::tests::timing -- --ignored --nocapture`.
    #[test]
    #[ignore = "timing report, run explicitly in release mode"]
    fn timing() {
        use std::time::Instant;
        let mib = pattern(1 << 20);
        let start = Instant::now();
        let digest = md6_256(&mib);
        let elapsed = start.elapsed();
        eprintln!("MD6-256 of 1 MiB: {elapsed:?} ({})", to_hex(&digest));

        let handshake = pattern(600);
        let rounds = 2000;
        let start = Instant::now();
        for _ in 0..rounds {
            std::hint::black_box(md6_256(std::hint::black_box(&handshake)));
        }
        eprintln!("MD6-256 of 600 bytes: {:?} each", start.elapsed() / rounds);

        let key = pattern(300);
        let start = Instant::now();
        for _ in 0..rounds {
            std::hint::black_box(hmac_md6_256(&key, std::hint::black_box(&handshake[..32])));
        }
        eprintln!(
            "AEMP HMAC token (300-byte key): {:?} each",
            start.elapsed() / rounds
        );
    }

    #[test]
    fn clone_forks_the_state() {
        let mut hasher = Md6_256::new();
        hasher.update(&[7; 3000]);
        let fork = hasher.clone();
        hasher.update(b"x");
        assert_eq!(fork.finalize(), md6_256(&[7; 3000]));
        let mut expected = vec![7; 3000];
        expected.push(b'x');
        assert_eq!(hasher.finalize(), md6_256(&expected));
        assert_eq!(Md6_256::default().finalize(), md6_256(b""));
        assert!(format!("{:?}", Md6_256::new()).starts_with("Md6_256"));
    }

    #[test]
    fn hex() {
        assert_eq!(to_hex(&[]), "");
        assert_eq!(to_hex(&[0x01, 0x23, 0xab, 0xff]), "0123abff");
    }
}
