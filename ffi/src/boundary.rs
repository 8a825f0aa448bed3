//! The boundary between C and Rust: the panic boundary every exported function runs inside, the
//! one place pointers from C are checked, and the storage of Rust values inside the fixed-size
//! structs C declares.
//!
//! # Objects in C memory
//!
//! A C limiter (`tg_bucket`, `tg_window`, ...) is an array of `uint64_t` words of a fixed size.
//! Inside, the library keeps a [`Slot`]: a magic word naming the type, then the Rust value. A
//! zeroed struct (the `TG_*_INIT` macros, or any C `static`) has no magic, so every function
//! answers `TG_STATUS_UNINITIALIZED` until the type's `_init` function has run; a struct of
//! another type, or of garbage, is refused the same way. Compile-time asserts in each module tie
//! the C struct's size and alignment to its slot.
//!
//! An object that is not lock-free (`tg_sliding_log`, the client toolkit's pacers, backoffs and
//! retry budgets) is stored as an [`Exclusive`] value: one caller at a time, a second one is told
//! `TG_STATUS_BUSY`. [`with`] and [`init_with`] check its pointer and run a closure on it.

use core::cell::UnsafeCell;
use core::ffi::c_char;
use core::mem::{align_of, MaybeUninit};
use core::ptr::NonNull;
use core::sync::atomic::{AtomicU32, Ordering};

use crate::status::tg_status;

/// Runs `f` inside the panic boundary: in hosted builds (feature `std`) a panic is caught and
/// answered `TG_STATUS_PANIC`, never unwound into C. The no_std build relies on the core being
/// panic-free (its panic handler is the firmware's, see the crate docs).
pub(crate) fn guard(f: impl FnOnce() -> Result<(), tg_status>) -> tg_status {
    let result = guard_value(Err(tg_status::Panic), f);
    match result {
        Ok(()) => tg_status::Ok,
        Err(status) => status,
    }
}

/// [`guard`] for a function that returns a value: `on_panic` is returned if `f` panics.
pub(crate) fn guard_value<T>(on_panic: T, f: impl FnOnce() -> T) -> T {
    #[cfg(feature = "std")]
    {
        std::panic::catch_unwind(core::panic::AssertUnwindSafe(f)).unwrap_or(on_panic)
    }
    #[cfg(not(feature = "std"))]
    {
        drop(on_panic);
        f()
    }
}

/// Checks a pointer C passed for reading: not NULL, aligned for `T`.
///
/// # Safety
///
/// If `ptr` is not NULL and aligned it must point to a `T` valid for reads and not written by
/// anyone else for the lifetime `'a`, except through interior mutability.
pub(crate) unsafe fn try_ref<'a, T>(ptr: *const T) -> Result<&'a T, tg_status> {
    if ptr.is_null() {
        return Err(tg_status::NullPointer);
    }
    if !ptr.is_aligned() {
        return Err(tg_status::Misaligned);
    }
    // SAFETY: not NULL and aligned (checked above); valid for reads by the caller's contract.
    Ok(unsafe { &*ptr })
}

/// An out-parameter checked up front (not NULL, aligned) and written only on success.
pub(crate) struct Out<T>(NonNull<T>);

impl<T> Out<T> {
    /// Checks `ptr` without writing it.
    ///
    /// # Safety
    ///
    /// If `ptr` is not NULL and aligned it must be valid for a write of `T` when
    /// [`Out::set`] is called.
    pub(crate) unsafe fn new(ptr: *mut T) -> Result<Out<T>, tg_status> {
        let Some(p) = NonNull::new(ptr) else {
            return Err(tg_status::NullPointer);
        };
        if !ptr.is_aligned() {
            return Err(tg_status::Misaligned);
        }
        Ok(Out(p))
    }

    /// Writes the value (the old one is overwritten, not dropped: out types are plain data).
    pub(crate) fn set(self, value: T) {
        // SAFETY: checked not NULL and aligned in `new`, valid for writes by its contract.
        unsafe { self.0.as_ptr().write(value) }
    }
}

/// Bytes C passed as `(pointer, length)`: NULL is accepted with length 0.
///
/// # Safety
///
/// If `ptr` is not NULL it must be valid for reads of `len` bytes for `'a`.
pub(crate) unsafe fn try_bytes<'a>(ptr: *const u8, len: usize) -> Result<&'a [u8], tg_status> {
    if ptr.is_null() {
        return if len == 0 {
            Ok(&[])
        } else {
            Err(tg_status::NullPointer)
        };
    }
    if isize::try_from(len).is_err() {
        return Err(tg_status::InvalidArgument);
    }
    // SAFETY: not NULL, `len` fits isize, valid for `len` bytes by the caller's contract; u8 has
    // alignment 1.
    Ok(unsafe { core::slice::from_raw_parts(ptr, len) })
}

/// An output buffer C passed as `(pointer, size)`: NULL is accepted with size 0 (to measure).
///
/// # Safety
///
/// If `ptr` is not NULL it must be valid for writes of `len` bytes for `'a`, and not accessed by
/// anyone else meanwhile.
pub(crate) unsafe fn try_bytes_mut<'a>(
    ptr: *mut u8,
    len: usize,
) -> Result<&'a mut [u8], tg_status> {
    if ptr.is_null() {
        return if len == 0 {
            Ok(&mut [])
        } else {
            Err(tg_status::NullPointer)
        };
    }
    if isize::try_from(len).is_err() {
        return Err(tg_status::InvalidArgument);
    }
    // SAFETY: not NULL, `len` fits isize, valid and exclusive for `len` bytes by the caller's
    // contract; u8 has alignment 1.
    Ok(unsafe { core::slice::from_raw_parts_mut(ptr, len) })
}

/// A Rust value inside a C struct: a magic word naming the type, then the value, initialised
/// only when the magic matches.
#[repr(C)]
pub(crate) struct Slot<T> {
    magic: u64,
    value: MaybeUninit<T>,
}

/// A Rust type that lives in a C struct `C` of fixed size.
pub(crate) trait Stored: Sized {
    /// The C struct.
    type C;
    /// The magic word that marks an initialised `C`: eight ASCII letters, never 0.
    const MAGIC: u64;
}

/// Eight ASCII bytes as a magic word.
pub(crate) const fn magic(name: [u8; 8]) -> u64 {
    u64::from_le_bytes(name)
}

/// Compile-time check that a Rust value's slot fits its C struct, in size and alignment. The C
/// structs are `#[repr(C, align(8))]`, which the header spells `TG_ALIGNED(8)`: on targets whose
/// C `uint64_t` is aligned to 4 (i386), that is what makes a C object on the stack or in a struct
/// aligned for the 8-byte atomics inside.
pub(crate) const fn fits<T: Stored>() -> bool {
    size_of::<Slot<T>>() <= size_of::<T::C>() && align_of::<Slot<T>>() <= align_of::<T::C>()
}

use core::mem::size_of;

/// Checks a C object pointer and returns the value inside.
///
/// # Safety
///
/// If `ptr` is not NULL and aligned it must point to memory of `size_of::<T::C>()` bytes valid
/// for reads during `'a`; if initialised, it must have been by [`init`] with the same `T`, and not
/// be re-initialised during `'a`.
pub(crate) unsafe fn object<'a, T: Stored>(ptr: *const T::C) -> Result<&'a T, tg_status> {
    let slot = ptr.cast::<Slot<T>>();
    // SAFETY: forwarded contract; a `Slot<T>` fits `T::C` (checked at compile time), its magic is
    // a plain u64 (any bytes are valid) and its value is MaybeUninit.
    let slot = unsafe { try_ref(slot) }?;
    if slot.magic != T::MAGIC {
        return Err(tg_status::Uninitialized);
    }
    // SAFETY: the magic is only written by `init`, together with the value.
    Ok(unsafe { slot.value.assume_init_ref() })
}

/// Checks a C object pointer for exclusive use and returns the value inside.
///
/// # Safety
///
/// As [`object`], and no other reference to the object may exist during `'a`: the caller (C)
/// must not use the object from another thread meanwhile.
pub(crate) unsafe fn object_mut<'a, T: Stored>(ptr: *mut T::C) -> Result<&'a mut T, tg_status> {
    let slot = ptr.cast::<Slot<T>>();
    if slot.is_null() {
        return Err(tg_status::NullPointer);
    }
    if !slot.is_aligned() {
        return Err(tg_status::Misaligned);
    }
    // SAFETY: not NULL, aligned, valid and exclusive by the caller's contract.
    let slot = unsafe { &mut *slot };
    if slot.magic != T::MAGIC {
        return Err(tg_status::Uninitialized);
    }
    // SAFETY: the magic is only written by `init`, together with the value.
    Ok(unsafe { slot.value.assume_init_mut() })
}

/// Checks a C object pointer for initialisation (NULL, alignment) without reading it.
///
/// # Safety
///
/// If `ptr` is not NULL and aligned it must be valid for writes of `size_of::<T::C>()` bytes.
pub(crate) unsafe fn init_target<T: Stored>(ptr: *mut T::C) -> Result<Out<Slot<T>>, tg_status> {
    // SAFETY: forwarded contract; a `Slot<T>` fits `T::C` (checked at compile time).
    unsafe { Out::new(ptr.cast::<Slot<T>>()) }
}

/// Writes an initialised slot: the value and its magic.
pub(crate) fn init<T: Stored>(target: Out<Slot<T>>, value: T) {
    target.set(Slot {
        magic: T::MAGIC,
        value: MaybeUninit::new(value),
    });
}

/// Takes the value out of an initialised C object and marks it uninitialised (for objects that
/// own a resource, closed by a `_close` function). A second call answers
/// `TG_STATUS_UNINITIALIZED`.
///
/// # Safety
///
/// As [`object_mut`].
#[cfg(all(feature = "shared", unix))]
pub(crate) unsafe fn take<T: Stored>(ptr: *mut T::C) -> Result<T, tg_status> {
    let slot = ptr.cast::<Slot<T>>();
    if slot.is_null() {
        return Err(tg_status::NullPointer);
    }
    if !slot.is_aligned() {
        return Err(tg_status::Misaligned);
    }
    // SAFETY: not NULL, aligned, valid and exclusive by the caller's contract.
    let slot = unsafe { &mut *slot };
    if slot.magic != T::MAGIC {
        return Err(tg_status::Uninitialized);
    }
    slot.magic = 0;
    // SAFETY: the magic was set, so the value is initialised; clearing the magic first means
    // it is read out exactly once.
    Ok(unsafe { slot.value.assume_init_read() })
}

/// A value for one caller at a time: a flag, then the value. The storage of every object C may
/// call from several threads but that is not lock-free (`tg_sliding_log`, the pacers, backoffs
/// and retry budgets): a second caller arriving while one is inside gets `TG_STATUS_BUSY`.
pub(crate) struct Exclusive<T> {
    busy: AtomicU32,
    value: UnsafeCell<T>,
}

impl<T> Exclusive<T> {
    pub(crate) const fn new(value: T) -> Exclusive<T> {
        Exclusive {
            busy: AtomicU32::new(0),
            value: UnsafeCell::new(value),
        }
    }

    /// Runs `f` on the value if no one else is inside, else `TG_STATUS_BUSY`.
    pub(crate) fn with<R>(
        &self,
        f: impl FnOnce(&mut T) -> Result<R, tg_status>,
    ) -> Result<R, tg_status> {
        /// Releases the flag even if `f` panics.
        struct Release<'a>(&'a AtomicU32);
        impl Drop for Release<'_> {
            fn drop(&mut self) {
                self.0.store(0, Ordering::Release);
            }
        }
        if self
            .busy
            .compare_exchange(0, 1, Ordering::Acquire, Ordering::Relaxed)
            .is_err()
        {
            return Err(tg_status::Busy);
        }
        let _release = Release(&self.busy);
        // SAFETY: the flag was 0 and is now ours: no other reference to the value exists until
        // it is released (every access goes through `with`).
        f(unsafe { &mut *self.value.get() })
    }
}

/// Checks a C object pointer and runs `f` on the value inside, one caller at a time.
///
/// # Safety
///
/// As [`object`].
pub(crate) unsafe fn with<T, R>(
    ptr: *const <Exclusive<T> as Stored>::C,
    f: impl FnOnce(&mut T) -> Result<R, tg_status>,
) -> Result<R, tg_status>
where
    Exclusive<T>: Stored,
{
    // SAFETY: forwarded contract.
    unsafe { object::<Exclusive<T>>(ptr) }?.with(f)
}

/// Checks a C object pointer and initialises it with `make()`'s value, written only on success.
///
/// # Safety
///
/// As [`init_target`]; no other thread uses the object during the call.
pub(crate) unsafe fn init_with<T>(
    ptr: *mut <Exclusive<T> as Stored>::C,
    make: impl FnOnce() -> Result<T, tg_status>,
) -> tg_status
where
    Exclusive<T>: Stored,
{
    guard(|| {
        // SAFETY: forwarded contract.
        let target = unsafe { init_target::<Exclusive<T>>(ptr) }?;
        init(target, Exclusive::new(make()?));
        Ok(())
    })
}

/// Header bytes C passed as `(pointer, length)`: `None` for a NULL pointer with length 0 (the
/// header was absent).
///
/// # Safety
///
/// As [`try_bytes`].
pub(crate) unsafe fn header_value<'a>(
    ptr: *const c_char,
    len: usize,
) -> Result<Option<&'a [u8]>, tg_status> {
    if ptr.is_null() {
        return if len == 0 {
            Ok(None)
        } else {
            Err(tg_status::NullPointer)
        };
    }
    // SAFETY: forwarded contract.
    unsafe { try_bytes(ptr.cast::<u8>(), len) }.map(Some)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(feature = "std")]
    #[test]
    fn a_panic_is_caught_and_answered_panic() {
        let status = guard(|| panic!("inside the boundary"));
        assert_eq!(status, tg_status::Panic);
        assert_eq!(guard_value(7, || -> i32 { panic!("value") }), 7);
        assert_eq!(guard(|| Ok(())), tg_status::Ok);
        assert_eq!(guard(|| Err(tg_status::ZeroCost)), tg_status::ZeroCost);
    }

    #[test]
    fn pointers_are_checked() {
        // SAFETY: NULL and misaligned pointers are refused before any access.
        unsafe {
            assert!(matches!(
                try_ref::<u64>(core::ptr::null()),
                Err(tg_status::NullPointer)
            ));
            let words = [0u64; 2];
            #[allow(clippy::cast_ptr_alignment)]
            let odd = words.as_ptr().cast::<u8>().wrapping_add(1).cast::<u64>();
            assert!(matches!(try_ref(odd), Err(tg_status::Misaligned)));
        }
    }

    #[test]
    fn a_second_caller_is_told_busy_and_nothing_happens() {
        let cell = Exclusive::new(5u64);
        let inner = cell.with(|v| {
            *v += 1;
            Ok(cell.with(|w| {
                *w += 1;
                Ok(())
            }))
        });
        assert!(matches!(inner, Ok(Err(tg_status::Busy))));
        assert_eq!(cell.with(|v| Ok(*v)), Ok(6));
    }
}
