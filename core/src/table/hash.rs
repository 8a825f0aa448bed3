//! The home group of a key: a seeded multiply-fold hash.
//!
//! `h = fold(fold(lo ⊕ a, hi ⊕ b) ⊕ b, M ⊕ a)` where `fold(x, y)` is the 128-bit product of x
//! and y with its halves XOR-ed together, `hi`/`lo` are the key's halves, `M` is a fixed odd
//! constant and (a, b) are two 64-bit secrets derived from the table's [`Seed`] by SipHash-1-3
//! when the table is initialised (and kept in its header). The group is `⌊h · groups / 2⁶⁴⌋`.
//!
//! Two multiplications: a few nanoseconds, where SipHash-1-3 took about 14 ns and, at a million
//! keys, delayed the memory access that dominates a decision. It is not a cryptographic hash:
//! keys stay exact 128-bit values compared in full, so a collision only lengthens a probe, and
//! the probe bound caps that (a key that finds no room gets the table's full policy, counted).
//! Without the secrets an attacker cannot line keys up: keys crafted so that the unseeded fold
//! maps them all to one group (for example every key with `lo = 0`, whose first fold is 0 for
//! any `hi`) spread over the table like any others once (a, b) are random; a test checks it.

use crate::key::{Key, Seed};

/// An odd constant (the fractional bits of π).
const M: u64 = 0x243f_6a88_85a3_08d3;

/// Keys whose SipHash-1-3 under the seed gives the secrets (arbitrary, fixed).
const DERIVE: [u128; 2] = [0x7467_6b65_7973_2e61, 0x7467_6b65_7973_2e62];

/// The two secrets of the home hash, derived from the seed.
pub(super) fn secrets(seed: &Seed) -> [u64; 2] {
    [
        seed.slot_hash(Key::new(DERIVE[0])),
        seed.slot_hash(Key::new(DERIVE[1])),
    ]
}

#[inline]
#[allow(clippy::cast_possible_truncation)] // the halves, on purpose
const fn fold(x: u64, y: u64) -> u64 {
    let p = (x as u128) * (y as u128);
    (p as u64) ^ ((p >> 64) as u64)
}

/// The 64-bit home hash of `key` under `secrets`.
#[inline]
#[allow(clippy::cast_possible_truncation)] // the halves, on purpose
pub(super) const fn hash(secrets: [u64; 2], key: Key) -> u64 {
    let v = key.get();
    let (hi, lo) = ((v >> 64) as u64, v as u64);
    fold(
        fold(lo ^ secrets[0], hi ^ secrets[1]) ^ secrets[1],
        M ^ secrets[0],
    )
}

/// The home group of `key` among `groups` (≥ 1).
#[inline]
#[allow(clippy::cast_possible_truncation)] // < groups, a usize
pub(super) const fn home(secrets: [u64; 2], key: Key, groups: usize) -> usize {
    ((hash(secrets, key) as u128 * groups as u128) >> 64) as usize
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Keys crafted against the unseeded hash (all with `lo = 0`: the first fold is 0, so all
    /// land in one group) spread out with random secrets: no group gets more than a few.
    #[test]
    fn keys_crafted_against_the_unseeded_hash_spread_with_a_seed() {
        let groups = 4096;
        let crafted = |i: u64| Key::pair(i.wrapping_mul(0x9e37_79b9_7f4a_7c15), 0);
        let unseeded = home([0, 0], crafted(1), groups);
        assert!((0..1000).all(|i| home([0, 0], crafted(i), groups) == unseeded));
        for s in 0..8u64 {
            let secrets = secrets(&Seed::new(s.wrapping_mul(0x1234_5678_9abc_def1), !s));
            let mut load = [0u32; 4096];
            for i in 0..4096 {
                load[home(secrets, crafted(i), groups)] += 1;
            }
            // 4096 keys into 4096 groups: a random hash's fullest group holds about 7.
            let max = load.iter().max().copied().unwrap_or(0);
            assert!(max <= 12, "seed {s}: a group got {max} crafted keys");
        }
    }

    #[test]
    fn home_is_in_range() {
        let secrets = secrets(&Seed::new(1, 2));
        for groups in [1usize, 2, 3, 1000, usize::MAX] {
            for k in 0..100u128 {
                assert!(home(secrets, Key::new(k << 64 | k), groups) < groups);
            }
        }
    }
}
