//! `tg_shared`: one limiter in memory shared by the processes of one host (Unix).
//!
//! A `tg_shared` is a handle, in the caller's memory like every tollgate object, on a **region**:
//! a file at a path the caller chooses (typically under `/dev/shm`) or, with a NULL path, an
//! anonymous shared mapping that the children this process forks afterwards share. Every
//! process that opens the same path with the same parameters decides on the same limiter.
//! The handle is copied into a child by `fork` and works there as it is.

use core::ffi::{c_char, CStr};
use core::fmt::Write as _;
use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use tollgate::key::Seed;
use tollgate::shared::{
    Create, Lease, Options, RegionError, SharedBucket, SharedBucketTable, SharedLeases, SharedLog,
    SharedTable, SharedWindow, SharedWindowTable,
};
use tollgate::table::{TableQuota, MAX_TIERS};
use tollgate::{Decision, Error, Quota, WindowQuota};

use crate::boundary::{self, guard, init_target, object, Out, Stored};
use crate::decision::tg_decision;
use crate::quota::{self, tg_quota};
use crate::status::tg_status;
use crate::table::{policy_from, tg_table, tg_window_quota, try_array};

/// Words (`uint64_t`) in a `tg_shared`.
pub const TG_SHARED_WORDS: usize = 24;

/// A handle on a limiter in shared memory: a leaky bucket, a fixed window, a sliding log, a
/// concurrency limit with leases or a key table, shared by every process that maps its region.
///
/// Fixed-size plain memory: `tg_shared s = TG_SHARED_INIT;` then one `tg_shared_open_*`
/// function; `tg_shared_close` unmaps it (the region and its state stay for other processes).
/// Decisions are lock-free and safe from any number of threads and processes at once; open and
/// close need the handle to themselves. A process killed at any instant never blocks the others
/// nor makes the limiter admit more than its quota. The fields are private.
#[repr(C, align(8))]
pub struct tg_shared {
    _private: [u64; TG_SHARED_WORDS],
}

/// Whether a `tg_shared_open_*` function creates the region, opens an existing one, or either.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum tg_create {
    /// Open the region if the path exists, else create it. Of several processes racing, exactly
    /// one creates it and the others open it.
    IfMissing = 0,
    /// Create the region; an existing path is `TG_STATUS_REGION_EXISTS`.
    New = 1,
    /// Open an existing region; a missing path is `TG_STATUS_REGION_NOT_FOUND`.
    Existing = 2,
}

/// A permit of a shared concurrency limit, valid until `deadline` unless released or renewed.
/// Plain data: it may be passed to another process, which may release it.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct tg_lease {
    /// The permit's slot.
    pub slot: u32,
    /// Always 0.
    pub reserved: u32,
    /// The slot's generation when the lease was granted.
    pub generation: u64,
    /// The tick at which the lease expires unless renewed.
    pub deadline: u64,
}

/// Bytes in `tg_region_error.message`, its NUL included.
pub const TG_REGION_ERROR_MESSAGE_SIZE: usize = 160;

/// What a failed `tg_shared_open_*` call found, for a message that names the difference
/// (written only when the call fails and the pointer is not NULL).
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct tg_region_error {
    /// The status the call returned.
    pub status: u32,
    /// Always 0.
    pub reserved: u32,
    /// The value found in the region (the parameter, layout version, size in bytes, owner uid,
    /// permission bits) or, for `TG_STATUS_REGION_IO`, the `errno`; 0 when not applicable.
    pub found: u64,
    /// The value asked for or expected; 0 when not applicable.
    pub expected: u64,
    /// A NUL-terminated English sentence, for example
    /// `"shared region: burst is 30 in the region, 31 was asked for"`.
    pub message: [c_char; TG_REGION_ERROR_MESSAGE_SIZE],
}

/// The limiter a `tg_shared` holds.
#[derive(Debug)]
enum Held {
    Bucket(SharedBucket),
    Window(SharedWindow),
    Log(SharedLog),
    Leases(SharedLeases),
    BucketTable(SharedBucketTable),
    WindowTable(SharedWindowTable),
}

impl Stored for Held {
    type C = tg_shared;
    const MAGIC: u64 = boundary::magic(*b"tgshared");
}

const _: () = assert!(boundary::fits::<Held>());

/// The status, found and expected values of a region error.
fn describe(e: &RegionError) -> (tg_status, u64, u64) {
    use std::io::ErrorKind;
    match e {
        RegionError::Io(io) => match io.kind() {
            ErrorKind::NotFound => (tg_status::RegionNotFound, 0, 0),
            ErrorKind::AlreadyExists => (tg_status::RegionExists, 0, 0),
            ErrorKind::PermissionDenied => (tg_status::RegionAccessDenied, 0, 0),
            _ => {
                let errno = io.raw_os_error().and_then(|n| u64::try_from(n).ok());
                (tg_status::RegionIo, errno.unwrap_or(0), 0)
            }
        },
        RegionError::Engine(e) => (tg_status::from(*e), 0, 0),
        RegionError::NotLockFree => (tg_status::RegionNotLockFree, 0, 0),
        RegionError::NotAFile => (tg_status::RegionNotAFile, 0, 0),
        RegionError::Truncated { size } => (tg_status::RegionTruncated, *size, 0),
        RegionError::NotARegion => (tg_status::RegionNotARegion, 0, 0),
        RegionError::LayoutVersion { found, expected } => {
            (tg_status::RegionLayoutVersion, *found, *expected)
        }
        RegionError::Kind { found, expected } => (
            tg_status::RegionKind,
            found.map_or(0, |k| k as u64),
            *expected as u64,
        ),
        RegionError::NotInitialised => (tg_status::RegionNotInitialised, 0, 0),
        RegionError::Corrupt | RegionError::Table(_) => (tg_status::RegionCorrupt, 0, 0),
        RegionError::Mismatch {
            found, expected, ..
        } => (tg_status::RegionMismatch, *found, *expected),
        RegionError::Size { found, expected } => (tg_status::RegionSize, *found, *expected),
        RegionError::Owner { found, expected } => (
            tg_status::RegionOwner,
            u64::from(*found),
            u64::from(*expected),
        ),
        RegionError::Permissions { found, allowed } => (
            tg_status::RegionPermissions,
            u64::from(*found),
            u64::from(*allowed),
        ),
        _ => (tg_status::Unknown, 0, 0),
    }
}

/// Writes into a fixed buffer, truncating, always leaving room for the NUL.
struct Message<'a> {
    buf: &'a mut [c_char; TG_REGION_ERROR_MESSAGE_SIZE],
    len: usize,
}

impl core::fmt::Write for Message<'_> {
    fn write_str(&mut self, s: &str) -> core::fmt::Result {
        for &b in s.as_bytes() {
            if self.len + 1 >= self.buf.len() {
                break;
            }
            self.buf[self.len] = c_char::from_ne_bytes([b]); // i8 or u8, by platform
            self.len += 1;
        }
        Ok(())
    }
}

/// The arguments of every `tg_shared_open_*` function, checked, and the region opened by
/// `open` (a path, or NULL for an anonymous region).
///
/// # Safety
///
/// `shared` is NULL or valid for writes of a `tg_shared`; `path` is NULL or a NUL-terminated
/// string; `err` is NULL or valid for a write of a `tg_region_error`.
unsafe fn open_with(
    shared: *mut tg_shared,
    path: *const c_char,
    mode: u32,
    create: u32,
    err: *mut tg_region_error,
    open: impl FnOnce(Option<&Path>, &Options) -> Result<Held, RegionError>,
) -> tg_status {
    let status = guard(|| {
        // SAFETY: forwarded contract.
        let target = unsafe { init_target::<Held>(shared) }?;
        let create = match create {
            0 => Create::IfMissing,
            1 => Create::New,
            2 => Create::Existing,
            _ => return Err(tg_status::InvalidArgument),
        };
        if mode > 0o777 {
            return Err(tg_status::InvalidArgument);
        }
        let mode = if mode == 0 { 0o600 } else { mode };
        let path = if path.is_null() {
            None
        } else {
            // SAFETY: not NULL, NUL-terminated by the caller's contract.
            let bytes = unsafe { CStr::from_ptr(path) }.to_bytes();
            Some(Path::new(OsStr::from_bytes(bytes)))
        };
        let options = Options::new().mode(mode).create(create);
        match open(path, &options) {
            Ok(held) => {
                boundary::init(target, held);
                Ok(())
            }
            Err(e) => {
                let (status, found, expected) = describe(&e);
                if !err.is_null() && err.is_aligned() {
                    let mut report = tg_region_error {
                        status: status as u32,
                        reserved: 0,
                        found,
                        expected,
                        message: [0; TG_REGION_ERROR_MESSAGE_SIZE],
                    };
                    let mut m = Message {
                        buf: &mut report.message,
                        len: 0,
                    };
                    let _ = write!(m, "{e}");
                    // SAFETY: not NULL, aligned, valid for a write by the caller's contract.
                    unsafe { err.write(report) };
                }
                Err(status)
            }
        }
    });
    status
}

/// Opens (or creates, per `create`, a `tg_create`) a leaky bucket with `quota` (from a
/// `tg_quota_init*` function) at `path`, or in an anonymous shared mapping when `path` is NULL
/// (shared with the children this process forks afterwards). `mode` is the permission bits of
/// a region this call creates and the most an opened one may grant; 0 means `0600`
/// (owner-only). An existing region must hold a bucket with exactly this quota.
///
/// Errors: the `TG_STATUS_REGION_*` statuses (with details in `*err` if not NULL),
/// `TG_STATUS_INVALID_ARGUMENT` (`mode` above 0777, an unknown `create`),
/// `TG_STATUS_NULL_POINTER`, `TG_STATUS_MISALIGNED`, `TG_STATUS_UNINITIALIZED` (the quota).
///
/// # Safety
///
/// `shared` is NULL or valid for writes of a `tg_shared` not open (or closed), used by no other
/// thread during the call; `path` is NULL or a NUL-terminated string; `quota` is NULL or points
/// to a `tg_quota`; `err` is NULL or valid for a write of a `tg_region_error`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tg_shared_open_bucket(
    shared: *mut tg_shared,
    path: *const c_char,
    quota: *const tg_quota,
    mode: u32,
    create: u32,
    err: *mut tg_region_error,
) -> tg_status {
    // SAFETY: forwarded contract.
    let q: Result<Quota, tg_status> = guard_read(|| unsafe { quota::read(quota) });
    let q = match q {
        Ok(q) => q,
        Err(s) => return s,
    };
    // SAFETY: forwarded contract.
    unsafe {
        open_with(shared, path, mode, create, err, |p, o| {
            Ok(Held::Bucket(match p {
                Some(p) => SharedBucket::open(p, q, o)?,
                None => SharedBucket::anonymous(q)?,
            }))
        })
    }
}

fn guard_read<T>(f: impl FnOnce() -> Result<T, tg_status>) -> Result<T, tg_status> {
    boundary::guard_value(Err(tg_status::Panic), f)
}

/// Opens (or creates) a fixed window of at most `limit` units per `window` ticks, windows
/// starting at ticks ≡ `offset` (mod `window`), as `tg_shared_open_bucket` does a bucket.
///
/// Errors: as `tg_shared_open_bucket`, and those of `tg_window_init` for the quota.
///
/// # Safety
///
/// As `tg_shared_open_bucket`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tg_shared_open_window(
    shared: *mut tg_shared,
    path: *const c_char,
    limit: u64,
    window: u64,
    offset: u64,
    mode: u32,
    create: u32,
    err: *mut tg_region_error,
) -> tg_status {
    let q = match WindowQuota::new(limit, window).and_then(|q| q.with_offset(offset)) {
        Ok(q) => q,
        Err(e) => return e.into(),
    };
    // SAFETY: forwarded contract.
    unsafe {
        open_with(shared, path, mode, create, err, |p, o| {
            Ok(Held::Window(match p {
                Some(p) => SharedWindow::open(p, q, o)?,
                None => SharedWindow::anonymous(q)?,
            }))
        })
    }
}

/// Opens (or creates) a strict sliding-window log of at most `limit` units (at most 65 535) in
/// any `window` ticks, as `tg_shared_open_bucket` does a bucket. Unlike `tg_sliding_log`, it
/// takes any number of callers at once: it is lock-free.
///
/// Errors: as `tg_shared_open_bucket`; `TG_STATUS_CAPACITY_EXCEEDED` for a limit above 65 535.
///
/// # Safety
///
/// As `tg_shared_open_bucket`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tg_shared_open_log(
    shared: *mut tg_shared,
    path: *const c_char,
    limit: u64,
    window: u64,
    mode: u32,
    create: u32,
    err: *mut tg_region_error,
) -> tg_status {
    let q = match WindowQuota::new(limit, window) {
        Ok(q) => q,
        Err(e) => return e.into(),
    };
    // SAFETY: forwarded contract.
    unsafe {
        open_with(shared, path, mode, create, err, |p, o| {
            Ok(Held::Log(match p {
                Some(p) => SharedLog::open(p, q, o)?,
                None => SharedLog::anonymous(q)?,
            }))
        })
    }
}

/// Opens (or creates) a concurrency limit of `max` permits (at most 65 536) held as leases of
/// at most `max_lease` ticks, as `tg_shared_open_bucket` does a bucket. A lease not released
/// by its deadline is free for the next caller, so a process that dies holding permits never
/// wedges the limit.
///
/// Errors: as `tg_shared_open_bucket`; `TG_STATUS_CAPACITY_EXCEEDED` for `max` above 65 536,
/// `TG_STATUS_INVALID_ARGUMENT` for `max_lease` 0.
///
/// # Safety
///
/// As `tg_shared_open_bucket`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tg_shared_open_leases(
    shared: *mut tg_shared,
    path: *const c_char,
    max: u32,
    max_lease: u64,
    mode: u32,
    create: u32,
    err: *mut tg_region_error,
) -> tg_status {
    // SAFETY: forwarded contract.
    unsafe {
        open_with(shared, path, mode, create, err, |p, o| {
            Ok(Held::Leases(match p {
                Some(p) => SharedLeases::open(p, max, max_lease, o)?,
                None => SharedLeases::anonymous(max, max_lease)?,
            }))
        })
    }
}

/// The tiers of a key table from C, checked (each tier's own status on failure), copied into
/// an array on the stack (at most `TG_TABLE_MAX_TIERS`; no heap).
fn stack_tiers<Q: TableQuota + Copy>(
    count: usize,
    tier: impl Fn(usize) -> Result<Q, tg_status>,
    open: impl FnOnce(&[Q]) -> tg_status,
) -> tg_status {
    if count == 0 || count > MAX_TIERS {
        return tg_status::InvalidArgument;
    }
    let first = match tier(0) {
        Ok(q) => q,
        Err(s) => return s,
    };
    let mut all = [first; MAX_TIERS];
    for (i, slot) in all.iter_mut().enumerate().take(count).skip(1) {
        match tier(i) {
            Ok(q) => *slot = q,
            Err(s) => return s,
        }
    }
    open(&all[..count])
}

/// The seed a caller names: NULL for the region's own (drawn at random by its creator).
///
/// # Safety
///
/// `seed` is NULL or points to two `uint64_t`.
unsafe fn seed_from(seed: *const u64) -> Result<Option<Seed>, tg_status> {
    if seed.is_null() {
        return Ok(None);
    }
    // SAFETY: forwarded contract: not NULL, two words.
    let w = unsafe { try_array(seed, 2) }?;
    Ok(Some(Seed::new(w[0], w[1])))
}

/// Opens a key table of either kind into `shared`: the arguments checked, the C tiers
/// (`tiers[0 .. tier_count]` of `C`) converted by `tier`, and the table wrapped by `wrap`.
///
/// # Safety
///
/// As `tg_shared_open_bucket_table`, with `tiers` valid for reads of `tier_count` `C`s.
#[allow(clippy::too_many_arguments)] // the C function's arguments, passed through
unsafe fn open_table<C, Q: TableQuota + Copy>(
    shared: *mut tg_shared,
    path: *const c_char,
    capacity: usize,
    tiers: *const C,
    tier_count: usize,
    policy: u32,
    seed: *const u64,
    mode: u32,
    create: u32,
    err: *mut tg_region_error,
    tier: impl Fn(&C) -> Result<Q, tg_status>,
    wrap: fn(SharedTable<Q>) -> Held,
) -> tg_status {
    let args = guard_read(|| {
        // SAFETY: forwarded contract.
        let given = unsafe { try_array(tiers, tier_count) }?;
        // SAFETY: forwarded contract.
        let seed = unsafe { seed_from(seed) }?;
        Ok((given, seed, policy_from(policy)?))
    });
    let (given, seed, policy) = match args {
        Ok(a) => a,
        Err(s) => return s,
    };
    let each = |i: usize| guard_read(|| tier(&given[i]));
    stack_tiers(tier_count, each, |t: &[Q]| {
        // SAFETY: forwarded contract.
        unsafe {
            open_with(shared, path, mode, create, err, |p, o| {
                Ok(wrap(match p {
                    Some(p) => SharedTable::open(p, capacity, t, seed, policy, o)?,
                    None => SharedTable::anonymous(capacity, t, seed, policy)?,
                }))
            })
        }
    })
}

/// Opens (or creates, per `create`) a key table of leaky buckets at `path`, or in an anonymous
/// shared mapping when `path` is NULL, as `tg_shared_open_bucket` does a bucket: `capacity`
/// slots (rounded up to a multiple of 5), the tiers `tiers[0 .. tier_count]` and the
/// `tg_full_policy` `policy`, as `tg_table_init_buckets` takes them. `seed` is NULL (the
/// region's seed: its creator draws one from the operating system's randomness, and every
/// process that opens the region uses it) or two `uint64_t` (k0, k1) the region must hold.
/// Then `tg_shared_table` gives the `tg_table *` every `tg_table_*` function takes, valid
/// until `tg_shared_close`. An existing region must hold a bucket table with exactly these
/// parameters; `err` names the first that differs (`capacity`, `tier count`,
/// `full-table policy`, `tiers (digest)`, `seed (digest)`).
///
/// Errors: as `tg_shared_open_bucket`, and those of `tg_table_init_buckets` for the
/// parameters; `TG_STATUS_REGION_CORRUPT` for a table block that fails its checks.
///
/// # Safety
///
/// As `tg_shared_open_bucket`; `tiers` is NULL or valid for reads of `tier_count`
/// `tg_quota`s; `seed` is NULL or valid for reads of two `uint64_t`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tg_shared_open_bucket_table(
    shared: *mut tg_shared,
    path: *const c_char,
    capacity: usize,
    tiers: *const tg_quota,
    tier_count: usize,
    policy: u32,
    seed: *const u64,
    mode: u32,
    create: u32,
    err: *mut tg_region_error,
) -> tg_status {
    // SAFETY: forwarded contract.
    unsafe {
        open_table(
            shared,
            path,
            capacity,
            tiers,
            tier_count,
            policy,
            seed,
            mode,
            create,
            err,
            // SAFETY: a reference to an element of the checked array.
            |q| quota::read(core::ptr::from_ref(q)),
            Held::BucketTable,
        )
    }
}

/// Opens (or creates) a key table of fixed windows, as `tg_shared_open_bucket_table` does one
/// of buckets, with tiers of `tg_window_quota` (as `tg_table_init_windows` takes them).
///
/// Errors: those of `tg_shared_open_bucket_table` and of `tg_table_init_windows`.
///
/// # Safety
///
/// As `tg_shared_open_bucket_table`, with `tiers` valid for reads of `tier_count`
/// `tg_window_quota`s.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tg_shared_open_window_table(
    shared: *mut tg_shared,
    path: *const c_char,
    capacity: usize,
    tiers: *const tg_window_quota,
    tier_count: usize,
    policy: u32,
    seed: *const u64,
    mode: u32,
    create: u32,
    err: *mut tg_region_error,
) -> tg_status {
    // SAFETY: forwarded contract.
    unsafe {
        open_table(
            shared,
            path,
            capacity,
            tiers,
            tier_count,
            policy,
            seed,
            mode,
            create,
            err,
            tg_window_quota::checked,
            Held::WindowTable,
        )
    }
}

/// The key table a handle holds, as the `tg_table *` every `tg_table_*` function takes (its
/// address in this process's mapping of the region). It stays valid until `tg_shared_close`
/// on this handle; a `fork`ed child that inherited the handle may use it as well.
///
/// Errors: `TG_STATUS_REGION_KIND` (not a key table), `TG_STATUS_NULL_POINTER`,
/// `TG_STATUS_MISALIGNED`, `TG_STATUS_UNINITIALIZED`.
///
/// # Safety
///
/// `shared` is NULL or points to an open `tg_shared`; `out_table` is NULL or valid for a
/// write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tg_shared_table(
    shared: *const tg_shared,
    out_table: *mut *mut tg_table,
) -> tg_status {
    guard(|| {
        // SAFETY: forwarded contract.
        let held = unsafe { object::<Held>(shared) }?;
        // SAFETY: forwarded contract.
        let out = unsafe { Out::new(out_table) }?;
        let mem = match held {
            Held::BucketTable(t) => t.table().memory().as_ptr(),
            Held::WindowTable(t) => t.table().memory().as_ptr(),
            _ => return Err(tg_status::RegionKind),
        };
        out.set(mem.cast_mut().cast::<tg_table>());
        Ok(())
    })
}

/// Unmaps the region from this process. The region, its file and its state stay for the other
/// processes (remove the file to remove the limiter). A second close, or a close of a handle
/// never opened, is `TG_STATUS_UNINITIALIZED`.
///
/// Errors: `TG_STATUS_NULL_POINTER`, `TG_STATUS_MISALIGNED`, `TG_STATUS_UNINITIALIZED`.
///
/// # Safety
///
/// `shared` is NULL or points to a `tg_shared` valid for reads and writes, which **no other
/// thread uses during or after the call** (until it is opened again).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tg_shared_close(shared: *mut tg_shared) -> tg_status {
    guard(|| {
        // SAFETY: forwarded contract (exclusive use).
        drop(unsafe { boundary::take::<Held>(shared) }?);
        Ok(())
    })
}

/// Runs a decision on the bucket, window or log a handle holds.
///
/// # Safety
///
/// `shared` is NULL or points to a `tg_shared` valid for reads; `out` is NULL or valid for a
/// write of a `tg_decision`.
unsafe fn decide_held(
    shared: *const tg_shared,
    out: *mut tg_decision,
    now: u64,
    cost: u64,
    peek: bool,
) -> tg_status {
    guard(|| {
        // SAFETY: forwarded contract.
        let held = unsafe { object::<Held>(shared) }?;
        // SAFETY: forwarded contract.
        let out = unsafe { Out::new(out) }?;
        let d: Result<Decision, Error> = match (held, peek) {
            (Held::Bucket(b), false) => b.decide(now, cost),
            (Held::Bucket(b), true) => b.peek(now, cost),
            (Held::Window(w), false) => w.decide(now, cost),
            (Held::Window(w), true) => w.peek(now, cost),
            (Held::Log(l), false) => l.decide(now, cost),
            (Held::Log(l), true) => l.peek(now, cost),
            (Held::Leases(_) | Held::BucketTable(_) | Held::WindowTable(_), _) => {
                return Err(tg_status::RegionKind);
            }
        };
        out.set(tg_decision::from(d?));
        Ok(())
    })
}

/// Decides on a request of `cost` at `now` with the bucket, window or log the handle holds,
/// exactly as `tg_bucket_decide`, `tg_window_decide` or `tg_sliding_log_decide` would.
///
/// Errors: `TG_STATUS_REGION_KIND` (a concurrency limit: use `tg_shared_acquire`; a key
/// table: use `tg_shared_table` and the `tg_table_*` functions),
/// `TG_STATUS_ZERO_COST`, `TG_STATUS_CLOCK_OUT_OF_RANGE`, `TG_STATUS_NULL_POINTER`,
/// `TG_STATUS_MISALIGNED`, `TG_STATUS_UNINITIALIZED`.
///
/// # Safety
///
/// `shared` is NULL or points to an open `tg_shared` (any number of threads may decide at
/// once); `out` is NULL or valid for a write of a `tg_decision`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tg_shared_decide(
    shared: *const tg_shared,
    now: u64,
    cost: u64,
    out: *mut tg_decision,
) -> tg_status {
    // SAFETY: forwarded contract.
    unsafe { decide_held(shared, out, now, cost, false) }
}

/// Would a request of `cost` be admitted at `now`? Spends nothing.
///
/// Errors: as `tg_shared_decide`.
///
/// # Safety
///
/// As `tg_shared_decide`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tg_shared_peek(
    shared: *const tg_shared,
    now: u64,
    cost: u64,
    out: *mut tg_decision,
) -> tg_status {
    // SAFETY: forwarded contract.
    unsafe { decide_held(shared, out, now, cost, true) }
}

/// Empties a shared bucket or window for every process (an operator's reset).
///
/// Errors: `TG_STATUS_REGION_KIND` (a log, a concurrency limit or a key table),
/// `TG_STATUS_NULL_POINTER`, `TG_STATUS_MISALIGNED`, `TG_STATUS_UNINITIALIZED`.
///
/// # Safety
///
/// `shared` is NULL or points to an open `tg_shared`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tg_shared_reset(shared: *const tg_shared) -> tg_status {
    guard(|| {
        // SAFETY: forwarded contract.
        match unsafe { object::<Held>(shared) }? {
            Held::Bucket(b) => b.reset(),
            Held::Window(w) => w.reset(),
            Held::Log(_) | Held::Leases(_) | Held::BucketTable(_) | Held::WindowTable(_) => {
                return Err(tg_status::RegionKind);
            }
        }
        Ok(())
    })
}

/// Whether this handle's open created the region (`true`; of several racing creators exactly
/// one did) or opened an existing one (`false`).
///
/// Errors: `TG_STATUS_NULL_POINTER`, `TG_STATUS_MISALIGNED`, `TG_STATUS_UNINITIALIZED`.
///
/// # Safety
///
/// `shared` is NULL or points to an open `tg_shared`; `out_created` is NULL or valid for a
/// write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tg_shared_created(
    shared: *const tg_shared,
    out_created: *mut bool,
) -> tg_status {
    guard(|| {
        // SAFETY: forwarded contract.
        let held = unsafe { object::<Held>(shared) }?;
        // SAFETY: forwarded contract.
        let out = unsafe { Out::new(out_created) }?;
        out.set(match held {
            Held::Bucket(b) => b.created(),
            Held::Window(w) => w.created(),
            Held::Log(l) => l.created(),
            Held::Leases(l) => l.created(),
            Held::BucketTable(t) => t.created(),
            Held::WindowTable(t) => t.created(),
        });
        Ok(())
    })
}

fn leases(held: &Held) -> Result<&SharedLeases, tg_status> {
    match held {
        Held::Leases(l) => Ok(l),
        _ => Err(tg_status::RegionKind),
    }
}

/// Takes a permit of a shared concurrency limit at `now` for `lease_ticks` ticks
/// (1 ≤ `lease_ticks` ≤ the limit's `max_lease`). The decision goes to `*out`; when it is
/// `TG_OUTCOME_ALLOWED` the lease goes to `*lease` (release it with `tg_shared_release`, or let
/// it expire). A refusal is `TG_OUTCOME_OVERLOADED` (HTTP 503) with `retry_after` the ticks
/// until the first lease expires.
///
/// Errors: `TG_STATUS_REGION_KIND` (not a concurrency limit), `TG_STATUS_INVALID_ARGUMENT`
/// (`lease_ticks`), `TG_STATUS_CLOCK_OUT_OF_RANGE` (`now + lease_ticks` overflows),
/// `TG_STATUS_NULL_POINTER`, `TG_STATUS_MISALIGNED`, `TG_STATUS_UNINITIALIZED`; nothing is
/// taken then.
///
/// # Safety
///
/// `shared` is NULL or points to an open `tg_shared`; `out` and `lease` are NULL or valid for
/// a write of their types.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tg_shared_acquire(
    shared: *const tg_shared,
    now: u64,
    lease_ticks: u64,
    out: *mut tg_decision,
    lease: *mut tg_lease,
) -> tg_status {
    guard(|| {
        // SAFETY: forwarded contract.
        let l = leases(unsafe { object::<Held>(shared) }?)?;
        // SAFETY: forwarded contract.
        let out = unsafe { Out::new(out) }?;
        // SAFETY: forwarded contract.
        let lease_out = unsafe { Out::new(lease) }?;
        let (d, granted) = l.try_acquire(now, lease_ticks)?;
        if let Some(g) = granted {
            lease_out.set(tg_lease {
                slot: g.slot,
                reserved: 0,
                generation: g.generation,
                deadline: g.deadline,
            });
        }
        out.set(tg_decision::from(d));
        Ok(())
    })
}

fn to_lease(l: &tg_lease) -> Lease {
    Lease {
        slot: l.slot,
        generation: l.generation,
        deadline: l.deadline,
    }
}

/// Returns a permit. `TG_STATUS_NOT_ACQUIRED` if the lease was already released, or expired
/// and another caller took the permit; nothing changes then.
///
/// Errors: `TG_STATUS_NOT_ACQUIRED`, `TG_STATUS_REGION_KIND`, `TG_STATUS_INVALID_ARGUMENT` (a
/// slot out of range), `TG_STATUS_NULL_POINTER`, `TG_STATUS_MISALIGNED`,
/// `TG_STATUS_UNINITIALIZED`.
///
/// # Safety
///
/// `shared` is NULL or points to an open `tg_shared`; `lease` is NULL or points to a
/// `tg_lease`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tg_shared_release(
    shared: *const tg_shared,
    lease: *const tg_lease,
) -> tg_status {
    guard(|| {
        // SAFETY: forwarded contract.
        let l = leases(unsafe { object::<Held>(shared) }?)?;
        // SAFETY: forwarded contract.
        let lease = unsafe { boundary::try_ref(lease) }?;
        l.release(&to_lease(lease))?;
        Ok(())
    })
}

/// Extends an unexpired lease to `now + lease_ticks` and updates `lease->deadline`.
///
/// Errors: `TG_STATUS_NOT_ACQUIRED` (released, or expired at `now`), and those of
/// `tg_shared_acquire` and `tg_shared_release`.
///
/// # Safety
///
/// `shared` is NULL or points to an open `tg_shared`; `lease` is NULL or points to a
/// `tg_lease` valid for reads and writes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tg_shared_renew(
    shared: *const tg_shared,
    lease: *mut tg_lease,
    now: u64,
    lease_ticks: u64,
) -> tg_status {
    guard(|| {
        // SAFETY: forwarded contract.
        let l = leases(unsafe { object::<Held>(shared) }?)?;
        if lease.is_null() {
            return Err(tg_status::NullPointer);
        }
        if !lease.is_aligned() {
            return Err(tg_status::Misaligned);
        }
        // SAFETY: not NULL, aligned, valid for reads and writes by the caller's contract.
        let c = unsafe { &mut *lease };
        let mut r = to_lease(c);
        l.renew(&mut r, now, lease_ticks)?;
        c.deadline = r.deadline;
        Ok(())
    })
}

/// The number of unexpired leases of a shared concurrency limit at `now`.
///
/// Errors: `TG_STATUS_REGION_KIND`, `TG_STATUS_NULL_POINTER`, `TG_STATUS_MISALIGNED`,
/// `TG_STATUS_UNINITIALIZED`.
///
/// # Safety
///
/// `shared` is NULL or points to an open `tg_shared`; `out_in_flight` is NULL or valid for a
/// write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tg_shared_in_flight(
    shared: *const tg_shared,
    now: u64,
    out_in_flight: *mut u32,
) -> tg_status {
    guard(|| {
        // SAFETY: forwarded contract.
        let l = leases(unsafe { object::<Held>(shared) }?)?;
        // SAFETY: forwarded contract.
        let out = unsafe { Out::new(out_in_flight) }?;
        out.set(l.in_flight(now));
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::mem::MaybeUninit;

    fn empty() -> tg_shared {
        tg_shared {
            _private: [0; TG_SHARED_WORDS],
        }
    }

    #[test]
    fn the_c_struct_holds_a_handle() {
        assert!(size_of::<boundary::Slot<Held>>() <= size_of::<tg_shared>());
    }

    #[test]
    #[allow(clippy::many_single_char_names)] // handles a, b, c; quota q; decision d
    fn a_bucket_through_the_c_functions_and_a_mismatch_named() {
        let path = std::env::temp_dir().join(format!("tollgate-ffi-{}", std::process::id()));
        let _ = std::fs::remove_file(&path);
        let cpath = std::ffi::CString::new(path.as_os_str().as_bytes()).unwrap();
        let mut q = MaybeUninit::<tg_quota>::uninit();
        let mut q2 = MaybeUninit::<tg_quota>::uninit();
        let (mut a, mut b) = (empty(), empty());
        let mut d = MaybeUninit::<tg_decision>::uninit();
        let mut err = MaybeUninit::<tg_region_error>::uninit();
        // SAFETY: valid pointers to local memory and a NUL-terminated path.
        unsafe {
            assert_eq!(
                crate::quota::tg_quota_init(q.as_mut_ptr(), 3, 1, 1000),
                tg_status::Ok
            );
            assert_eq!(
                crate::quota::tg_quota_init(q2.as_mut_ptr(), 4, 1, 1000),
                tg_status::Ok
            );
            assert_eq!(
                tg_shared_decide(&raw const a, 0, 1, d.as_mut_ptr()),
                tg_status::Uninitialized
            );
            let open = |s: *mut tg_shared, q: *const tg_quota, e: *mut tg_region_error| {
                tg_shared_open_bucket(s, cpath.as_ptr(), q, 0, 0, e)
            };
            assert_eq!(
                open(&raw mut a, q.as_ptr(), err.as_mut_ptr()),
                tg_status::Ok
            );
            assert_eq!(
                open(&raw mut b, q.as_ptr(), err.as_mut_ptr()),
                tg_status::Ok
            );
            let mut created = false;
            assert_eq!(
                tg_shared_created(&raw const a, &raw mut created),
                tg_status::Ok
            );
            assert!(created);
            for _ in 0..3 {
                assert_eq!(
                    tg_shared_decide(&raw const b, 0, 1, d.as_mut_ptr()),
                    tg_status::Ok
                );
                assert_eq!(d.assume_init().outcome, 0);
            }
            assert_eq!(
                tg_shared_decide(&raw const a, 0, 1, d.as_mut_ptr()),
                tg_status::Ok
            );
            assert_eq!(d.assume_init().outcome, 1);
            let mut c = empty();
            assert_eq!(
                open(&raw mut c, q2.as_ptr(), err.as_mut_ptr()),
                tg_status::RegionMismatch
            );
            let e = err.assume_init();
            assert_eq!((e.status, e.found, e.expected), (212, 3, 4));
            let msg = CStr::from_ptr(e.message.as_ptr()).to_str().unwrap();
            assert_eq!(
                msg,
                "shared region: burst is 3 in the region, 4 was asked for"
            );
            assert_eq!(tg_shared_close(&raw mut a), tg_status::Ok);
            assert_eq!(tg_shared_close(&raw mut a), tg_status::Uninitialized);
            assert_eq!(tg_shared_close(&raw mut b), tg_status::Ok);
            assert_eq!(
                tg_shared_open_bucket(
                    &raw mut c,
                    cpath.as_ptr(),
                    q.as_ptr(),
                    0,
                    3,
                    err.as_mut_ptr()
                ),
                tg_status::InvalidArgument
            );
        }
        std::fs::remove_file(&path).unwrap();
    }

    #[test]
    fn leases_through_the_c_functions() {
        let mut s = empty();
        let mut d = MaybeUninit::<tg_decision>::uninit();
        let mut lease = MaybeUninit::<tg_lease>::uninit();
        // SAFETY: valid pointers to local memory.
        unsafe {
            assert_eq!(
                tg_shared_open_leases(
                    &raw mut s,
                    core::ptr::null(),
                    1,
                    100,
                    0,
                    0,
                    core::ptr::null_mut()
                ),
                tg_status::Ok
            );
            assert_eq!(
                tg_shared_decide(&raw const s, 0, 1, d.as_mut_ptr()),
                tg_status::RegionKind
            );
            assert_eq!(
                tg_shared_acquire(&raw const s, 0, 10, d.as_mut_ptr(), lease.as_mut_ptr()),
                tg_status::Ok
            );
            assert_eq!(d.assume_init().outcome, 0);
            let mut l = lease.assume_init();
            assert_eq!(
                tg_shared_renew(&raw const s, &raw mut l, 5, 20),
                tg_status::Ok
            );
            assert_eq!(l.deadline, 25);
            let mut n = 0;
            assert_eq!(
                tg_shared_in_flight(&raw const s, 24, &raw mut n),
                tg_status::Ok
            );
            assert_eq!(n, 1);
            assert_eq!(tg_shared_release(&raw const s, &raw const l), tg_status::Ok);
            assert_eq!(
                tg_shared_release(&raw const s, &raw const l),
                tg_status::NotAcquired
            );
            assert_eq!(tg_shared_close(&raw mut s), tg_status::Ok);
        }
    }
}
