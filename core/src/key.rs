//! Keys of the key table (docs/semantics.md#key-tables): exact 128-bit keys, and a seeded hash for anything longer.
//!
//! # Exact keys
//!
//! A [`Key`] is an exact 128-bit value: two keys share a bucket only if they are equal.
//! [`Key::pair`] packs an (app, shop) pair of `u64` ids and [`Key::triple`] an (app, shop, api)
//! triple whose app and api ids fit 32 bits; both are injective (distinct inputs, distinct keys).
//! Use one packing per table: `Key::pair(a, s)` and `Key::triple(..)` can coincide.
//!
//! # Hashed keys
//!
//! Byte strings and keys of more parts ([`Seed::key_bytes`], [`Seed::key_parts`],
//! [`Seed::key_triple`]) are folded to 128 bits with **SipHash-2-4-128** keyed by the table's
//! secret 128-bit [`Seed`], with a domain byte and the length in front, so byte strings and
//! integer parts never share an input. Distinct inputs collide only if SipHash-2-4-128 collides:
//! about 2⁻¹²⁸ per pair, and an attacker who does not know the seed cannot aim for it.
//!
//! # Slot index
//!
//! The key table places a key by a seeded multiply-fold hash whose two secrets are derived
//! from the seed by **SipHash-1-3** of fixed inputs, keyed by the seed with each half XOR-ed with
//! a constant (so the index and the hashed keys use different keys); see the table's module
//! docs. Pick the seed at random when the process starts (for example from `getrandom`); a
//! fixed seed is only for tests.

use core::fmt;
use core::hash::Hasher;

use siphasher::sip::SipHasher13;
use siphasher::sip128::{Hasher128, SipHasher24};

/// An exact 128-bit key of the key table. Equal keys share one bucket; distinct keys never do.
///
/// ```
/// use tollgate::key::Key;
/// let k = Key::pair(7, 42); // (app 7, shop 42)
/// assert_eq!(k.get(), (7u128 << 64) | 42);
/// assert_ne!(Key::pair(7, 42), Key::pair(42, 7));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Key(u128);

impl Key {
    /// The key with this exact value.
    pub const fn new(value: u128) -> Key {
        Key(value)
    }

    /// The key's value.
    pub const fn get(self) -> u128 {
        self.0
    }

    /// An (app, shop) pair, exactly: `app` in the high 64 bits, `shop` in the low 64 bits.
    pub const fn pair(app: u64, shop: u64) -> Key {
        Key(((app as u128) << 64) | shop as u128)
    }

    /// An (app, shop, api) triple, exactly: `app` in bits 96..128, `api` in bits 64..96, `shop`
    /// in bits 0..64. For ids that do not fit, hash them with [`Seed::key_triple`].
    pub const fn triple(app: u32, shop: u64, api: u32) -> Key {
        Key(((app as u128) << 96) | ((api as u128) << 64) | shop as u128)
    }
}

impl From<u128> for Key {
    fn from(value: u128) -> Key {
        Key(value)
    }
}

/// Domain bytes: what a hashed input is, so different kinds of input never collide by layout.
const DOMAIN_BYTES: u8 = 1;
const DOMAIN_PARTS: u8 = 2;
/// XOR-ed into the seed for the slot-index hash ("tg.index", "tg.slots").
const INDEX_TWEAK: (u64, u64) = (0x7467_2e69_6e64_6578, 0x7467_2e73_6c6f_7473);

/// A table's secret 128-bit hash seed: it keys the slot index and the hashed keys.
///
/// `Debug` does not print it.
///
/// ```
/// use tollgate::key::Seed;
/// let seed = Seed::new(0x0123_4567_89ab_cdef, 0xfedc_ba98_7654_3210); // pick at random!
/// let a = seed.key_bytes(b"shop-1.example");
/// assert_eq!(a, seed.key_bytes(b"shop-1.example"));
/// assert_ne!(a, seed.key_bytes(b"shop-2.example"));
/// assert_ne!(a, Seed::new(1, 2).key_bytes(b"shop-1.example"));
/// ```
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Seed {
    k0: u64,
    k1: u64,
}

impl fmt::Debug for Seed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Seed(..)")
    }
}

impl Seed {
    /// A seed from two 64-bit halves (SipHash's k0 and k1).
    pub const fn new(k0: u64, k1: u64) -> Seed {
        Seed { k0, k1 }
    }

    /// A seed drawn from the operating system's randomness (`getrandom(2)` on Linux,
    /// `getentropy` on macOS, `ProcessPrng` on Windows): what a key table should use, drawn
    /// once when the process starts. Feature `std`.
    ///
    /// Fails only if the operating system cannot supply random bytes (for example a Linux
    /// kernel whose random pool is not yet initialised, with no fallback allowed); the error
    /// carries the operating system's error code when there is one.
    ///
    /// ```
    /// use tollgate::key::Seed;
    /// let seed = Seed::random()?;
    /// assert_ne!(seed, Seed::random()?); // two draws of 128 bits differ
    /// # Ok::<(), std::io::Error>(())
    /// ```
    #[cfg(feature = "std")]
    pub fn random() -> Result<Seed, std::io::Error> {
        let mut bytes = [0u8; 16];
        getrandom::fill(&mut bytes)?;
        Ok(Seed::from_bytes(bytes))
    }

    /// A seed from 16 bytes: k0 from bytes 0..8 and k1 from bytes 8..16, little-endian.
    pub const fn from_bytes(bytes: [u8; 16]) -> Seed {
        let [a0, a1, a2, a3, a4, a5, a6, a7, b0, b1, b2, b3, b4, b5, b6, b7] = bytes;
        Seed {
            k0: u64::from_le_bytes([a0, a1, a2, a3, a4, a5, a6, a7]),
            k1: u64::from_le_bytes([b0, b1, b2, b3, b4, b5, b6, b7]),
        }
    }

    /// The key of a byte string: SipHash-2-4-128 of `[1] ‖ len (u64 LE) ‖ bytes`.
    pub fn key_bytes(&self, bytes: &[u8]) -> Key {
        let mut h = SipHasher24::new_with_keys(self.k0, self.k1);
        h.write(&[DOMAIN_BYTES]);
        h.write(&(bytes.len() as u64).to_le_bytes());
        h.write(bytes);
        Key(h.finish128().as_u128())
    }

    /// The key of a sequence of integer parts: SipHash-2-4-128 of
    /// `[2] ‖ count (u64 LE) ‖ each part (u64 LE)`.
    pub fn key_parts(&self, parts: &[u64]) -> Key {
        let mut h = SipHasher24::new_with_keys(self.k0, self.k1);
        h.write(&[DOMAIN_PARTS]);
        h.write(&(parts.len() as u64).to_le_bytes());
        for part in parts {
            h.write(&part.to_le_bytes());
        }
        Key(h.finish128().as_u128())
    }

    /// An (app, shop, api) triple of 64-bit ids: [`Seed::key_parts`] of the three.
    pub fn key_triple(&self, app: u64, shop: u64, api: u64) -> Key {
        self.key_parts(&[app, shop, api])
    }

    /// The seed's two halves (k0, k1), as [`Seed::new`] takes them: to store a seed, or to
    /// hand it to another binding of the same table.
    pub const fn halves(&self) -> [u64; 2] {
        [self.k0, self.k1]
    }

    /// The 64-bit slot hash of a key (see the module docs).
    pub(crate) fn slot_hash(&self, key: Key) -> u64 {
        let mut h = SipHasher13::new_with_keys(self.k0 ^ INDEX_TWEAK.0, self.k1 ^ INDEX_TWEAK.1);
        h.write(&key.0.to_le_bytes());
        h.finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packings_are_exact_and_injective() {
        assert_eq!(Key::pair(1, 2).get(), (1 << 64) | 2);
        assert_eq!(
            Key::triple(u32::MAX, 5, 3).get(),
            (u128::from(u32::MAX) << 96) | (3 << 64) | 5
        );
        assert_ne!(Key::triple(1, 2, 3), Key::triple(3, 2, 1));
        assert_eq!(Key::from(9u128), Key::new(9));
    }

    #[test]
    fn hashed_keys_depend_on_the_seed_and_the_domain() {
        let s = Seed::from_bytes([7; 16]);
        assert_eq!(s, Seed::new(0x0707_0707_0707_0707, 0x0707_0707_0707_0707));
        assert_ne!(s.key_triple(1, 2, 3), s.key_triple(3, 2, 1));
        assert_ne!(s.key_parts(&[]), s.key_bytes(&[]));
        assert_ne!(s.key_parts(&[0]), s.key_bytes(&[0; 8]));
        assert_ne!(s.key_triple(1, 2, 3), Seed::new(0, 0).key_triple(1, 2, 3));
    }

    #[cfg(feature = "std")]
    #[test]
    fn random_seeds_differ() {
        let a = Seed::random().unwrap();
        let b = Seed::random().unwrap();
        assert_ne!(a, b);
        assert_ne!(a, Seed::new(0, 0));
    }
}
