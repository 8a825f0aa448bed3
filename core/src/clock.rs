//! Clocks (docs/semantics.md#time). The engine never reads a clock: the caller passes `now` in ticks. This
//! module helps the caller produce good ticks.
//!
//! - [`WrappingClock`] turns a wrapping 32-bit counter (a 1 kHz SysTick count that wraps every
//!   49.7 days, a free-running timer) into a monotonic `u64`, lock-free and usable from interrupt
//!   context.
//! - `StdClock` (feature `std`) reads `std::time::Instant` as nanoseconds since its creation.

use crate::atomic::{const_fn, AtomicU64, Ordering};

/// Extends a wrapping 32-bit tick counter to a monotonic 64-bit one.
///
/// Correct as long as [`WrappingClock::now`] is called at least once per wrap period of the
/// counter (2³² ticks: 49.7 days of a millisecond counter, 53.7 s of an 80 MHz cycle counter).
/// Lock-free (one CAS loop, no lock) and safe to call from an interrupt handler and the main loop
/// at once: the raw counter is read after the last extended value is loaded, so a read
/// interrupted by another caller is retried with a fresh read, never mistaken for a wrap.
///
/// ```
/// use tollgate::WrappingClock;
/// static CLOCK: WrappingClock = WrappingClock::new();
/// let mut hw: u32 = u32::MAX - 5; // a hardware counter about to wrap
/// let before = CLOCK.now(|| hw);
/// hw = hw.wrapping_add(10); // it wrapped
/// let after = CLOCK.now(|| hw);
/// assert_eq!(after - before, 10);
/// ```
#[derive(Debug)]
pub struct WrappingClock {
    last: AtomicU64,
}

impl Default for WrappingClock {
    fn default() -> Self {
        WrappingClock::new()
    }
}

impl WrappingClock {
    const_fn! {
        /// A clock whose first reading is the raw counter's value (as if the counter had not yet
        /// wrapped).
        pub fn new() -> WrappingClock {
            WrappingClock { last: AtomicU64::new(0) }
        }
    }

    /// The current time: the last extended value advanced by how far the raw counter moved since
    /// (modulo 2³²). `read` returns the raw counter; it may be called more than once.
    pub fn now(&self, mut read: impl FnMut() -> u32) -> u64 {
        let mut last = self.last.load(Ordering::Acquire);
        loop {
            let raw = read();
            // Truncation intended: the low 32 bits are the counter's value at `last`.
            #[allow(clippy::cast_possible_truncation)]
            let moved = raw.wrapping_sub(last as u32);
            let now = last.wrapping_add(u64::from(moved));
            if moved == 0 {
                return now;
            }
            match self
                .last
                .compare_exchange_weak(last, now, Ordering::AcqRel, Ordering::Acquire)
            {
                Ok(_) => return now,
                Err(actual) => last = actual,
            }
        }
    }

    /// The latest extended value, without reading the counter.
    pub fn last(&self) -> u64 {
        self.last.load(Ordering::Acquire)
    }
}

/// A monotonic nanosecond clock from `std::time::Instant`, starting at 0 when created.
#[cfg(feature = "std")]
#[derive(Debug, Clone, Copy)]
pub struct StdClock {
    origin: std::time::Instant,
}

#[cfg(feature = "std")]
impl Default for StdClock {
    fn default() -> Self {
        StdClock::new()
    }
}

#[cfg(feature = "std")]
impl StdClock {
    /// Ticks per second of this clock (nanoseconds).
    pub const TICKS_PER_SECOND: u64 = 1_000_000_000;

    /// A clock reading 0 now.
    pub fn new() -> StdClock {
        StdClock {
            origin: std::time::Instant::now(),
        }
    }

    /// Nanoseconds since the clock was created (saturating after 584 years).
    pub fn now(&self) -> u64 {
        u64::try_from(self.origin.elapsed().as_nanos()).unwrap_or(u64::MAX)
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn extends_across_many_wraps() {
        let clock = WrappingClock::new();
        let mut truth: u64 = 0;
        let mut step = 1u64;
        while truth < 5 * (1u64 << 32) {
            truth += step;
            #[allow(clippy::cast_possible_truncation)]
            let raw = truth as u32;
            assert_eq!(clock.now(|| raw), truth);
            step = (step * 7 + 13) % (1 << 31);
        }
        assert_eq!(clock.last(), truth);
    }

    #[test]
    fn a_reading_interrupted_by_another_caller_is_not_taken_for_a_wrap() {
        let clock = WrappingClock::new();
        assert_eq!(clock.now(|| 100), 100);
        // The first read is interrupted: an "interrupt handler" advances the clock to 200 before
        // our CAS; our first raw value (150) is stale, the retry reads 210.
        let mut reads = 0;
        let now = clock.now(|| {
            reads += 1;
            if reads == 1 {
                assert_eq!(clock.now(|| 200), 200);
                150
            } else {
                210
            }
        });
        assert_eq!(now, 210);
        assert_eq!(reads, 2);
    }

    #[cfg(feature = "std")]
    #[test]
    fn std_clock_is_monotonic() {
        let c = StdClock::new();
        let a = c.now();
        let b = c.now();
        assert!(b >= a);
    }
}
