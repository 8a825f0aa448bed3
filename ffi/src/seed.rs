//! `tg_seed_random`: a key table's secret seed from the operating system's randomness.

use crate::boundary::{guard, Out};
use crate::status::tg_status;

/// Draws a key table's secret seed (`seed_k0`, `seed_k1` of `tg_table_init_buckets` and
/// `tg_table_init_windows`) from the operating system's randomness: on success
/// `out_k0_k1[0]` is k0 and `out_k0_k1[1]` is k1. Call it once when the process starts.
///
/// Errors: `TG_STATUS_NULL_POINTER`, `TG_STATUS_MISALIGNED` (`out_k0_k1` not aligned to 8),
/// `TG_STATUS_RANDOM_UNAVAILABLE` (the operating system supplied no random bytes, or the
/// library was built without `std`, as for firmware: there, take a seed from the hardware's
/// random number generator).
///
/// # Safety
///
/// `out_k0_k1` is NULL or valid for a write of two `uint64_t`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tg_seed_random(out_k0_k1: *mut u64) -> tg_status {
    guard(|| {
        // SAFETY: forwarded contract (two words, so an array of two).
        let out = unsafe { Out::new(out_k0_k1.cast::<[u64; 2]>()) }?;
        out.set(draw()?);
        Ok(())
    })
}

#[cfg(feature = "std")]
fn draw() -> Result<[u64; 2], tg_status> {
    let seed = tollgate::key::Seed::random().map_err(|_| tg_status::RandomUnavailable)?;
    Ok(seed.halves())
}

#[cfg(not(feature = "std"))]
fn draw() -> Result<[u64; 2], tg_status> {
    Err(tg_status::RandomUnavailable)
}

#[cfg(all(test, feature = "std"))]
mod tests {
    use super::*;

    #[test]
    fn draws_differ_and_bad_pointers_are_refused() {
        let mut a = [0u64; 2];
        let mut b = [0u64; 2];
        // SAFETY: two writable words each.
        unsafe {
            assert_eq!(tg_seed_random(a.as_mut_ptr()), tg_status::Ok);
            assert_eq!(tg_seed_random(b.as_mut_ptr()), tg_status::Ok);
        }
        assert_ne!(a, b);
        assert_ne!(a, [0, 0]);
        // SAFETY: NULL is checked before any write.
        let null = unsafe { tg_seed_random(core::ptr::null_mut()) };
        assert_eq!(null, tg_status::NullPointer);
        let mut words = [0u64; 3];
        // Misaligned on purpose: the function must refuse it.
        #[allow(clippy::cast_ptr_alignment)]
        let odd = words
            .as_mut_ptr()
            .cast::<u8>()
            .wrapping_add(1)
            .cast::<u64>();
        // SAFETY: misalignment is checked before any write.
        assert_eq!(unsafe { tg_seed_random(odd) }, tg_status::Misaligned);
        assert_eq!(words, [0; 3]);
    }
}
