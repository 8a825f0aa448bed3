//! Fixtures shared by the key-table tests that run random operations (`table_model.rs`,
//! `table_batch.rs`): tiers, zeroed memory, a small key space spread over 128 bits.
#![allow(dead_code)] // each test uses only some of these

use std::sync::atomic::Ordering;

use proptest::prelude::*;
use tollgate::key::Key;
use tollgate::table::{self, AtomicU64, FullPolicy};
use tollgate::{Quota, WindowQuota};

/// Three bucket tiers of different bursts, rates and units.
pub(crate) fn bucket_tiers() -> [Quota; 3] {
    [
        Quota::new(3, 1, 10).unwrap(),
        Quota::new(5, 2, 10).unwrap(),
        Quota::new(1, 1, 7).unwrap(),
    ]
}

/// Three window tiers of different limits, lengths and offsets.
pub(crate) fn window_tiers() -> [WindowQuota; 3] {
    [
        WindowQuota::new(3, 10).unwrap(),
        WindowQuota::new(5, 20).unwrap(),
        WindowQuota::new(2, 7).unwrap().with_offset(3).unwrap(),
    ]
}

/// Zeroed memory for a table of `capacity` slots (rounded up to groups of 5) and `tiers` tiers.
pub(crate) fn memory(capacity: usize, tiers: usize) -> Vec<AtomicU64> {
    (0..table::words(capacity, tiers))
        .map(|_| AtomicU64::new(0))
        .collect()
}

/// The words of a table's memory, to compare two tables word for word.
pub(crate) fn words(m: &[AtomicU64]) -> Vec<u64> {
    m.iter().map(|w| w.load(Ordering::Relaxed)).collect()
}

/// Spreads the small key space over the whole 128 bits.
pub(crate) fn key_of(k: u8) -> Key {
    Key::new(u128::from(k).wrapping_mul(0x9e37_79b9_7f4a_7c15_f39c_c060_5ced_c835) ^ 0x55)
}

/// Either full-table policy.
pub(crate) fn policy() -> impl Strategy<Value = FullPolicy> {
    prop_oneof![Just(FullPolicy::FailClosed), Just(FullPolicy::FailOpen)]
}
