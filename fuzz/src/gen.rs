//! Input shapes: parameters and clock moves that land near the edges (zero, one, powers of two,
//! `u64::MAX`) more often than uniform bytes would.

use libfuzzer_sys::arbitrary::{self, Arbitrary};

/// A 64-bit parameter: small values, powers of two and their neighbours, or anything.
#[derive(Arbitrary, Clone, Copy, Debug)]
pub enum Param {
    /// 0..=255.
    Small(u8),
    /// 0..=65 535.
    Mid(u16),
    /// 2^(e mod 64).
    Pow2(u8),
    /// 2^(e mod 64) - 1.
    Pow2Minus1(u8),
    /// 2^(e mod 64) + 1.
    Pow2Plus1(u8),
    /// A nanosecond-clock second, times a small factor.
    Seconds(u8),
    /// Any value.
    Any(u64),
}

impl Param {
    /// The value.
    pub fn get(self) -> u64 {
        match self {
            Param::Small(v) => u64::from(v),
            Param::Mid(v) => u64::from(v),
            Param::Pow2(e) => 1u64 << (e % 64),
            Param::Pow2Minus1(e) => (1u64 << (e % 64)) - 1,
            Param::Pow2Plus1(e) => (1u64 << (e % 64)).wrapping_add(1),
            Param::Seconds(k) => u64::from(k) * 1_000_000_000,
            Param::Any(v) => v,
        }
    }
}

/// A small parameter (never zero unless asked for): costs, bursts, limits.
#[derive(Arbitrary, Clone, Copy, Debug)]
pub enum SmallParam {
    /// 0..=7, zero included (an invalid cost).
    Tiny(u8),
    /// 1..=256.
    Small(u8),
    /// Any value, through [`Param`].
    Wide(Param),
}

impl SmallParam {
    /// The value.
    pub fn get(self) -> u64 {
        match self {
            SmallParam::Tiny(v) => u64::from(v % 8),
            SmallParam::Small(v) => u64::from(v) + 1,
            SmallParam::Wide(p) => p.get(),
        }
    }
}

/// A move of the caller's clock, relative to the previous `now` or absolute.
#[derive(Arbitrary, Clone, Copy, Debug)]
pub enum Tick {
    /// The same tick again.
    Same,
    /// A few ticks later.
    Fwd(u8),
    /// Up to 2^32 ticks later.
    FwdFar(u32),
    /// Up to 2^64 ticks later (saturating).
    FwdHuge(u64),
    /// Up to 65 535 ticks back (saturating at 0): a clock that steps back.
    Back(u16),
    /// Anywhere.
    Abs(Param),
}

impl Tick {
    /// The next `now` after `now`.
    pub fn apply(self, now: u64) -> u64 {
        match self {
            Tick::Same => now,
            Tick::Fwd(d) => now.saturating_add(u64::from(d)),
            Tick::FwdFar(d) => now.saturating_add(u64::from(d)),
            Tick::FwdHuge(d) => now.saturating_add(d),
            Tick::Back(d) => now.saturating_sub(u64::from(d)),
            Tick::Abs(p) => p.get(),
        }
    }
}
