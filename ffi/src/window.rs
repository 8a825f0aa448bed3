//! `tg_window`: a fixed-window counter (docs/semantics.md#fixed-window).

use tollgate::{FixedWindow, WindowQuota};

use crate::boundary::{self, guard, init_target, object, object_mut, Out, Stored};
use crate::decision::{check_on, decide_on, tg_decision};
use crate::status::tg_status;

/// Words (`uint64_t`) in a `tg_window`.
pub const TG_WINDOW_WORDS: usize = 5;

/// The largest window limit: 2^32 − 1 units.
pub const TG_WINDOW_MAX_LIMIT: u64 = 0xFFFF_FFFF;

const _: () = assert!(TG_WINDOW_MAX_LIMIT == WindowQuota::MAX_LIMIT);

/// A fixed-window counter: at most `limit` cost units per window of `window` ticks; windows
/// start at every tick s with s ≡ `offset` (mod `window`). Known and documented: up to
/// 2 × `limit` can pass in a span of `window` ticks that straddles a window edge (use a
/// `tg_bucket` or a `tg_sliding_log` where that matters).
///
/// Fixed-size plain memory: `static tg_window w = TG_WINDOW_INIT;` then `tg_window_init` once
/// before sharing it; until then every call answers `TG_STATUS_UNINITIALIZED`. Decisions are
/// lock-free and safe from any number of threads at once; `tg_window_init` and
/// `tg_window_set_quota` need the window to themselves. Nothing is allocated; there is no
/// `_free`. The fields are private.
#[repr(C, align(8))]
pub struct tg_window {
    _private: [u64; TG_WINDOW_WORDS],
}

impl Stored for FixedWindow {
    type C = tg_window;
    const MAGIC: u64 = boundary::magic(*b"tgwindow");
}

const _: () = assert!(boundary::fits::<FixedWindow>());

fn window_quota(limit: u64, window: u64, offset: u64) -> Result<WindowQuota, tollgate::Error> {
    WindowQuota::new(limit, window)?.with_offset(offset)
}

/// Initialises an empty window counter of `limit` units per `window` ticks, windows starting at
/// ticks ≡ `offset` (mod `window`; 0 aligns them to tick 0). May be called again to start over.
///
/// Errors: `TG_STATUS_ZERO_BURST` (limit 0), `TG_STATUS_ZERO_PERIOD` (window 0),
/// `TG_STATUS_QUOTA_OVERFLOW` (limit above `TG_WINDOW_MAX_LIMIT`),
/// `TG_STATUS_OFFSET_OUT_OF_RANGE` (offset ≥ window), `TG_STATUS_NULL_POINTER`,
/// `TG_STATUS_MISALIGNED`. Written only on success.
///
/// # Safety
///
/// `window_counter` is NULL or points to a `tg_window` valid for writes, which no other thread
/// uses during the call.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tg_window_init(
    window_counter: *mut tg_window,
    limit: u64,
    window: u64,
    offset: u64,
) -> tg_status {
    guard(|| {
        // SAFETY: forwarded contract.
        let target = unsafe { init_target::<FixedWindow>(window_counter) }?;
        boundary::init(
            target,
            FixedWindow::new(window_quota(limit, window, offset)?),
        );
        Ok(())
    })
}

/// Decides on a request of `cost` at `now`: admitted iff the window's count plus `cost` fits the
/// limit; a denial uses up nothing; a cost above the limit is `TG_OUTCOME_NEVER`. A `now` in an
/// earlier window than the latest one seen is judged in the latest window.
///
/// Errors: `TG_STATUS_ZERO_COST`, `TG_STATUS_CLOCK_OUT_OF_RANGE` (beyond `tg_window_span`),
/// `TG_STATUS_NULL_POINTER`, `TG_STATUS_MISALIGNED`, `TG_STATUS_UNINITIALIZED`.
///
/// # Safety
///
/// `window_counter` is NULL or points to a `tg_window` valid for reads and writes (any number of
/// threads may decide at once); `out` is NULL or valid for a write of a `tg_decision`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tg_window_decide(
    window_counter: *mut tg_window,
    now: u64,
    cost: u64,
    out: *mut tg_decision,
) -> tg_status {
    // SAFETY: forwarded contract.
    unsafe { decide_on::<FixedWindow>(window_counter, out, |w| w.decide(now, cost)) }
}

/// The outcome alone of `tg_window_decide`: the same state change, no numbers. Returns the
/// `tg_outcome` (0 to 3) or, on error, the negated `tg_status` (as `tg_bucket_check`).
///
/// # Safety
///
/// `window_counter` is NULL or points to a `tg_window` valid for reads and writes (any number of
/// threads may decide at once).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tg_window_check(
    window_counter: *mut tg_window,
    now: u64,
    cost: u64,
) -> i32 {
    // SAFETY: forwarded contract.
    unsafe { check_on::<FixedWindow>(window_counter, |w| w.check(now, cost)) }
}

/// Would a request of `cost` be admitted at `now`? Spends nothing.
///
/// Errors: as `tg_window_decide`.
///
/// # Safety
///
/// As `tg_window_decide`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tg_window_peek(
    window_counter: *mut tg_window,
    now: u64,
    cost: u64,
    out: *mut tg_decision,
) -> tg_status {
    // SAFETY: forwarded contract.
    unsafe { decide_on::<FixedWindow>(window_counter, out, |w| w.peek(now, cost)) }
}

/// Whether nothing counts against the limit at `now`.
///
/// Errors: `TG_STATUS_NULL_POINTER`, `TG_STATUS_MISALIGNED`, `TG_STATUS_UNINITIALIZED`.
///
/// # Safety
///
/// `window_counter` is NULL or points to a `tg_window` valid for reads; `out_drained` is NULL or
/// valid for a write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tg_window_is_drained(
    window_counter: *const tg_window,
    now: u64,
    out_drained: *mut bool,
) -> tg_status {
    guard(|| {
        // SAFETY: forwarded contract.
        let w = unsafe { object::<FixedWindow>(window_counter) }?;
        // SAFETY: forwarded contract.
        let out = unsafe { Out::new(out_drained) }?;
        out.set(w.is_drained(now));
        Ok(())
    })
}

/// The largest `now` this window counter accepts: offset + (2^(64−k) − 1) × window − 1 with
/// k = ⌊log2 limit⌋ + 1 bits for the count (saturated at `UINT64_MAX`).
///
/// Errors: `TG_STATUS_NULL_POINTER`, `TG_STATUS_MISALIGNED`, `TG_STATUS_UNINITIALIZED`.
///
/// # Safety
///
/// `window_counter` is NULL or points to a `tg_window` valid for reads; `out_span` is NULL or
/// valid for a write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tg_window_span(
    window_counter: *const tg_window,
    out_span: *mut u64,
) -> tg_status {
    guard(|| {
        // SAFETY: forwarded contract.
        let w = unsafe { object::<FixedWindow>(window_counter) }?;
        // SAFETY: forwarded contract.
        let out = unsafe { Out::new(out_span) }?;
        out.set(w.span());
        Ok(())
    })
}

/// Forgets all counts (an operator's reset). Safe while other threads decide.
///
/// Errors: `TG_STATUS_NULL_POINTER`, `TG_STATUS_MISALIGNED`, `TG_STATUS_UNINITIALIZED`.
///
/// # Safety
///
/// `window_counter` is NULL or points to a `tg_window` valid for reads and writes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tg_window_reset(window_counter: *mut tg_window) -> tg_status {
    guard(|| {
        // SAFETY: forwarded contract.
        unsafe { object::<FixedWindow>(window_counter) }?.reset();
        Ok(())
    })
}

/// Changes the quota at `now`; the stored window's count carries over (capped at the new
/// limit: no free burst). A stored window that is over starts anew in the new quota's current
/// window; any other, even with a count of zero, goes into the new quota's window holding the
/// stored window's last tick (or `now`, if later), so the stored window never ends sooner
/// (docs/semantics.md#quota-changes).
///
/// Errors: those of `tg_window_init`, `TG_STATUS_CLOCK_OUT_OF_RANGE`,
/// `TG_STATUS_UNINITIALIZED`. Nothing changes on error.
///
/// # Safety
///
/// `window_counter` is NULL or points to a `tg_window` valid for reads and writes that **no
/// other thread uses during the call**.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tg_window_set_quota(
    window_counter: *mut tg_window,
    limit: u64,
    window: u64,
    offset: u64,
    now: u64,
) -> tg_status {
    guard(|| {
        // SAFETY: forwarded contract (exclusive use).
        let w = unsafe { object_mut::<FixedWindow>(window_counter) }?;
        w.set_quota(window_quota(limit, window, offset)?, now)?;
        Ok(())
    })
}

/// The window counter's quota: limit, window and offset.
///
/// Errors: `TG_STATUS_NULL_POINTER` (any pointer), `TG_STATUS_MISALIGNED`,
/// `TG_STATUS_UNINITIALIZED`.
///
/// # Safety
///
/// `window_counter` is NULL or points to a `tg_window` valid for reads; each out pointer is NULL
/// or valid for a write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tg_window_params(
    window_counter: *const tg_window,
    out_limit: *mut u64,
    out_window: *mut u64,
    out_offset: *mut u64,
) -> tg_status {
    guard(|| {
        // SAFETY: forwarded contract (each out pointer).
        let (l, w, o) = unsafe {
            (
                Out::new(out_limit)?,
                Out::new(out_window)?,
                Out::new(out_offset)?,
            )
        };
        // SAFETY: forwarded contract.
        let q = unsafe { object::<FixedWindow>(window_counter) }?.quota();
        l.set(q.limit());
        w.set(q.window());
        o.set(q.offset());
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_c_struct_holds_exactly_a_window_on_this_host() {
        assert_eq!(
            size_of::<boundary::Slot<FixedWindow>>(),
            size_of::<tg_window>()
        );
    }
}
