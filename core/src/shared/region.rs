//! The crate's only unsafe code: mapping shared memory and viewing it as atomics.
//!
//! A [`Mapping`] owns one `MAP_SHARED` mapping (of a file, or anonymous) from `mmap` until
//! `munmap` in `Drop`. Everything else in `shared` works on the `&[AtomicU64]` /
//! `&[AtomicU128]` views handed out here, with safe code; [`Held`] keeps a view that borrows a
//! mapping (a key table's handle) together with the mapping itself.
#![allow(unsafe_code)]

use core::ffi::c_void;
use core::ptr::NonNull;
use std::fs::File;

use portable_atomic::{AtomicU128, AtomicU64};
use rustix::mm::{MapFlags, ProtFlags};

use crate::table::{Table, TableQuota};

/// The page-aligned start of every mapping is at least this aligned; the views need 16.
const MIN_ALIGN: usize = 16;

/// One shared, readable and writable mapping of `len` bytes, unmapped on drop.
#[derive(Debug)]
pub(crate) struct Mapping {
    ptr: NonNull<u8>,
    len: usize,
}

// SAFETY: the mapping is plain shared memory accessed only through atomics (the views below);
// it belongs to no thread, and moving or sharing the owner between threads is what the atomics
// are for.
unsafe impl Send for Mapping {}
// SAFETY: as above: every access through `&Mapping` is an atomic load, store or CAS.
unsafe impl Sync for Mapping {}

impl Mapping {
    /// Maps the first `len` bytes of `file` shared, read and write.
    pub(crate) fn file(file: &File, len: usize) -> std::io::Result<Mapping> {
        if len == 0 || !len.is_multiple_of(MIN_ALIGN) {
            return Err(std::io::Error::from(std::io::ErrorKind::InvalidInput));
        }
        // SAFETY: a fresh mapping at an address the kernel chooses (null hint, no MAP_FIXED), so
        // it aliases no Rust object. The file may be shorter than `len` (another process may
        // truncate it); callers check the size first, and the memory is only ever accessed
        // through atomics, which is how other processes' concurrent writes must be read.
        let ptr = unsafe {
            rustix::mm::mmap(
                core::ptr::null_mut(),
                len,
                ProtFlags::READ | ProtFlags::WRITE,
                MapFlags::SHARED,
                file,
                0,
            )
        }?;
        Ok(Mapping::from_raw(ptr, len))
    }

    /// A zero-filled anonymous shared mapping of `len` bytes: shared with the children this
    /// process forks after creating it.
    pub(crate) fn anonymous(len: usize) -> std::io::Result<Mapping> {
        if len == 0 || !len.is_multiple_of(MIN_ALIGN) {
            return Err(std::io::Error::from(std::io::ErrorKind::InvalidInput));
        }
        // SAFETY: a fresh anonymous mapping at an address the kernel chooses: it aliases no Rust
        // object, and the kernel fills it with zeros.
        let ptr = unsafe {
            rustix::mm::mmap_anonymous(
                core::ptr::null_mut(),
                len,
                ProtFlags::READ | ProtFlags::WRITE,
                MapFlags::SHARED,
            )
        }?;
        Ok(Mapping::from_raw(ptr, len))
    }

    fn from_raw(ptr: *mut c_void, len: usize) -> Mapping {
        // mmap never returns null on success (MAP_FAILED is reported as an error by rustix), and
        // its address is page-aligned.
        let ptr = NonNull::new(ptr.cast::<u8>()).expect("mmap returned null");
        debug_assert_eq!(ptr.as_ptr() as usize % MIN_ALIGN, 0);
        Mapping { ptr, len }
    }

    /// The whole mapping as 64-bit atomics.
    #[allow(clippy::cast_ptr_alignment)] // the mapping is page-aligned
    #[inline]
    pub(crate) fn words(&self) -> &[AtomicU64] {
        // SAFETY: `ptr` is page-aligned (≥ 8), valid for `len` bytes for as long as `self`
        // lives (unmapped only in `Drop`), and `len` is a multiple of 16. `AtomicU64` has the
        // size and alignment of `u64` and no invalid bit patterns, and all access (here and in
        // other processes) is atomic, so a shared reference to it is sound.
        unsafe { core::slice::from_raw_parts(self.ptr.as_ptr().cast::<AtomicU64>(), self.len / 8) }
    }

    /// The mapping from byte `offset` (a multiple of 16) to its end as 128-bit atomics.
    #[allow(clippy::cast_ptr_alignment)] // page-aligned plus a multiple of 16
    #[inline]
    pub(crate) fn words128(&self, offset: usize) -> &[AtomicU128] {
        assert!(
            offset.is_multiple_of(16) && offset <= self.len,
            "offset out of range"
        );
        // SAFETY: `ptr + offset` is 16-aligned and in bounds (checked above); the `len - offset`
        // bytes after it stay mapped while `self` lives. `AtomicU128` has the size and
        // alignment of `u128` (16) and no invalid bit patterns; all access is atomic. The
        // 64-bit view of the same bytes is used only for the header, never for this range.
        unsafe {
            core::slice::from_raw_parts(
                self.ptr.as_ptr().add(offset).cast::<AtomicU128>(),
                (self.len - offset) / 16,
            )
        }
    }
}

/// A mapping together with a key table's handle on its words, so the handle is made (and the
/// table checked) once and stored beside the memory it borrows. The handle is handed out only
/// for as long as the pair is borrowed.
pub(crate) struct HeldTable<Q: TableQuota + 'static> {
    // Declared first, so dropped first: the handle never outlives the mapping.
    table: Table<'static, Q>,
    map: Mapping,
}

impl<Q: TableQuota + 'static> HeldTable<Q> {
    /// Makes the handle from the mapping's words from 64-bit word `from` to the end (`make`
    /// initialises or checks the table there); on an error the mapping is unmapped.
    pub(crate) fn new<E>(
        map: Mapping,
        from: usize,
        make: impl FnOnce(&'static [AtomicU64]) -> Result<Table<'static, Q>, E>,
    ) -> Result<HeldTable<Q>, E> {
        let all = map.words();
        // SAFETY: the mapping stays at its address until `munmap` in its `Drop`, however the
        // `Mapping` value moves, and `HeldTable` drops `table` before `map` (and `Table` has no
        // `Drop`). The `'static` slice reaches callers only inside `table`, which `table()`
        // hands out with the lifetime of a borrow of `self` (a `Table` is covariant in its
        // lifetime), so no copy of it outlives the mapping.
        let words: &'static [AtomicU64] =
            unsafe { core::slice::from_raw_parts(all.as_ptr(), all.len()) };
        let table = make(&words[from..])?;
        Ok(HeldTable { table, map })
    }

    /// The table's handle, for as long as `self` is borrowed.
    #[inline]
    pub(crate) fn table(&self) -> Table<'_, Q> {
        self.table
    }

    /// The mapping.
    pub(crate) fn mapping(&self) -> &Mapping {
        &self.map
    }
}

impl<Q: TableQuota + 'static> core::fmt::Debug for HeldTable<Q> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("HeldTable")
            .field("table", &self.table)
            .finish_non_exhaustive()
    }
}

impl Drop for Mapping {
    fn drop(&mut self) {
        // SAFETY: `ptr`/`len` are exactly what mmap returned, unmapped once, here; every view
        // borrowed `self`, so none outlives this call.
        let _ = unsafe { rustix::mm::munmap(self.ptr.as_ptr().cast::<c_void>(), self.len) };
    }
}
