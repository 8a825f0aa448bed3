//! `tg_wrapping_clock`: extends a wrapping 32-bit tick counter (a 1 kHz SysTick count, a
//! free-running timer) to a monotonic 64-bit one (docs/semantics.md#time).

use core::ffi::c_void;

use tollgate::WrappingClock;

use crate::boundary::{self, guard, init_target, object, Out, Stored};
use crate::status::tg_status;

/// Words (`uint64_t`) in a `tg_wrapping_clock`.
pub const TG_WRAPPING_CLOCK_WORDS: usize = 2;

/// Reads the raw 32-bit counter; `context` is the pointer given to `tg_wrapping_clock_now`. It
/// may be called more than once per `tg_wrapping_clock_now` (a read interrupted by another
/// caller is retried with a fresh read), so it must have no side effects beyond reading.
pub type tg_read_counter = Option<unsafe extern "C" fn(context: *mut c_void) -> u32>;

/// A monotonic 64-bit clock over a wrapping 32-bit counter, correct as long as
/// `tg_wrapping_clock_now` is called at least once per wrap period of the counter (2^32 ticks:
/// 49.7 days of a millisecond counter). Lock-free and safe to call from an interrupt handler and
/// the main loop at once.
///
/// Fixed-size plain memory: `static tg_wrapping_clock c = TG_WRAPPING_CLOCK_INIT;` then
/// `tg_wrapping_clock_init` once. The fields are private.
#[repr(C, align(8))]
pub struct tg_wrapping_clock {
    _private: [u64; TG_WRAPPING_CLOCK_WORDS],
}

impl Stored for WrappingClock {
    type C = tg_wrapping_clock;
    const MAGIC: u64 = boundary::magic(*b"tgwclock");
}

const _: () = assert!(boundary::fits::<WrappingClock>());

/// Initialises the clock: its first reading is the raw counter's value (as if the counter had
/// not yet wrapped).
///
/// Errors: `TG_STATUS_NULL_POINTER`, `TG_STATUS_MISALIGNED`.
///
/// # Safety
///
/// `clock` is NULL or points to a `tg_wrapping_clock` valid for writes, which no other thread or
/// interrupt uses during the call.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tg_wrapping_clock_init(clock: *mut tg_wrapping_clock) -> tg_status {
    guard(|| {
        // SAFETY: forwarded contract.
        let target = unsafe { init_target::<WrappingClock>(clock) }?;
        boundary::init(target, WrappingClock::new());
        Ok(())
    })
}

/// The current time in ticks: the last extended value advanced by how far the raw counter moved
/// since (modulo 2^32). `read(context)` returns the raw counter.
///
/// Errors: `TG_STATUS_NULL_POINTER` (`clock`, `read` or `out_now`; `context` may be NULL),
/// `TG_STATUS_MISALIGNED`, `TG_STATUS_UNINITIALIZED`.
///
/// # Safety
///
/// `clock` is NULL or points to a `tg_wrapping_clock` valid for reads and writes; `read` is NULL
/// or a function safe to call with `context`; `out_now` is NULL or valid for a write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tg_wrapping_clock_now(
    clock: *mut tg_wrapping_clock,
    read: tg_read_counter,
    context: *mut c_void,
    out_now: *mut u64,
) -> tg_status {
    guard(|| {
        // SAFETY: forwarded contract.
        let c = unsafe { object::<WrappingClock>(clock) }?;
        // SAFETY: forwarded contract.
        let out = unsafe { Out::new(out_now) }?;
        let read = read.ok_or(tg_status::NullPointer)?;
        // SAFETY: `read` is safe to call with `context` (this function's contract).
        out.set(c.now(|| unsafe { read(context) }));
        Ok(())
    })
}

/// The latest extended value, without reading the counter.
///
/// Errors: `TG_STATUS_NULL_POINTER`, `TG_STATUS_MISALIGNED`, `TG_STATUS_UNINITIALIZED`.
///
/// # Safety
///
/// `clock` is NULL or points to a `tg_wrapping_clock` valid for reads; `out_last` is NULL or
/// valid for a write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tg_wrapping_clock_last(
    clock: *const tg_wrapping_clock,
    out_last: *mut u64,
) -> tg_status {
    guard(|| {
        // SAFETY: forwarded contract.
        let c = unsafe { object::<WrappingClock>(clock) }?;
        // SAFETY: forwarded contract.
        let out = unsafe { Out::new(out_last) }?;
        out.set(c.last());
        Ok(())
    })
}
