//! `tg_table`: a lock-free keyed table of buckets or fixed windows in caller memory (docs/semantics.md#key-tables).
//!
//! # Memory layout
//!
//! The caller provides `tg_table_size(capacity, tiers)` bytes aligned to `TG_TABLE_ALIGN`
//! (`TG_TABLE_SIZE(capacity, tiers)` is the same number as a constant expression). The table's
//! whole state lives there — header (magic, layout version, size, parameters, checksum,
//! counters), tiers and slots in groups of five — as 64-bit words holding **no pointers**, only
//! offsets (see the core's `tollgate::table` docs for the word-by-word layout):
//!
//! | bytes | content |
//! |---|---|
//! | 0 .. `TG_TABLE_HEADER_SIZE` | header |
//! | then `tiers` × `TG_TABLE_TIER_SIZE` | the tiers, rounded up to a group |
//! | then ⌈`capacity` / 5⌉ × `TG_TABLE_GROUP_SIZE` | groups of 5 slots (128 bytes each) |
//!
//! `tg_table_init_buckets` / `tg_table_init_windows` check everything (NULL, alignment, size,
//! tiers, policy) before writing anything. Nothing is allocated and there is no `_free`.
//!
//! A `tg_table *` is the memory's address. Because the memory holds no pointers, a **copy**
//! (`memcpy`, a file written and read back) of a table no one is using is an independent table
//! at its new address, and one memory mapped at two addresses (two processes, or two `mmap`s
//! of one file) is **one table** seen from both: `tg_table_attach` checks a table initialised
//! elsewhere and returns its pointer at this address.

use core::ffi::c_void;
use core::ptr::NonNull;

use tollgate::key::{Key, Seed};
use tollgate::table::{
    self, AtomicU64, AttachError, FullPolicy, Table, TableQuota, GROUP_SLOTS, GROUP_WORDS,
    HEADER_WORDS, MAX_TIERS, TIER_WORDS,
};
use tollgate::{Decision, Error, Outcome, Quota, WindowQuota};

use crate::boundary::{guard, guard_value, try_bytes, Out};
use crate::decision::{check_error, tg_decision, tg_outcome};
use crate::quota::{self, tg_quota};
use crate::status::tg_status;

/// The alignment a table's memory needs, in bytes: 128, so that no group of slots straddles a
/// cache line and each group is one 128-byte block.
pub const TG_TABLE_ALIGN: usize = 128;
/// Bytes of a table's header.
pub const TG_TABLE_HEADER_SIZE: usize = 192;
/// Bytes per tier in a table's memory.
pub const TG_TABLE_TIER_SIZE: usize = 64;
/// Bytes per group of slots: 128 (two cache lines).
pub const TG_TABLE_GROUP_SIZE: usize = 128;
/// Slots per group: 5, so 25.6 bytes per slot. A slot holds one key; at a load of 0.8 (keys
/// active within one drain time, over slots) that is 32 bytes per key.
pub const TG_TABLE_GROUP_SLOTS: usize = 5;
/// The most tiers a table can have.
pub const TG_TABLE_MAX_TIERS: usize = 256;

const _: () = {
    assert!(TG_TABLE_HEADER_SIZE == HEADER_WORDS * 8);
    assert!(TG_TABLE_TIER_SIZE == TIER_WORDS * 8);
    assert!(TG_TABLE_GROUP_SIZE == GROUP_WORDS * 8);
    assert!(TG_TABLE_GROUP_SLOTS == GROUP_SLOTS);
    assert!(TG_TABLE_MAX_TIERS == MAX_TIERS);
    assert!(size_of::<AtomicU64>() == 8);
    assert!(table::ALIGN == TG_TABLE_ALIGN);
};

/// A keyed table living in caller memory (see `tg_table_size`). Opaque: C only holds the
/// pointer `tg_table_init_*` or `tg_table_attach` returns, which is the start of the memory.
/// Decisions are lock-free and safe from any number of threads (and processes sharing the
/// memory) at once; decisions on different keys never wait for each other.
pub struct tg_table {
    _opaque: [u8; 0],
}

/// A key of the table: an exact 128-bit value, `hi` the high 64 bits and `lo` the low 64 bits.
/// Equal keys share one bucket; distinct keys never do. Make one with `tg_key_pair` or
/// `tg_key_triple` (exact packings; use one per table), or hash anything else with
/// `tg_table_key_bytes`, `tg_table_key_parts` or `tg_table_key_triple`.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct tg_key {
    /// Bits 64..128 of the key.
    pub hi: u64,
    /// Bits 0..64 of the key.
    pub lo: u64,
}

impl From<Key> for tg_key {
    fn from(k: Key) -> tg_key {
        let v = k.get();
        #[allow(clippy::cast_possible_truncation)] // each half, on purpose
        tg_key {
            hi: (v >> 64) as u64,
            lo: v as u64,
        }
    }
}

impl From<tg_key> for Key {
    fn from(k: tg_key) -> Key {
        Key::new((u128::from(k.hi) << 64) | u128::from(k.lo))
    }
}

/// A fixed-window quota, plain data: at most `limit` units per `window` ticks, windows starting
/// at ticks ≡ `offset` (mod `window`). Checked when used (`tg_table_init_windows`).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct tg_window_quota {
    /// N: units allowed per window (1 ..= `TG_WINDOW_MAX_LIMIT`).
    pub limit: u64,
    /// W: the window length in ticks (≥ 1).
    pub window: u64,
    /// o: where windows start, modulo the window (< `window`).
    pub offset: u64,
}

impl tg_window_quota {
    /// The quota, checked as `tg_table_init_windows` checks a tier.
    pub(crate) fn checked(&self) -> Result<WindowQuota, tg_status> {
        Ok(WindowQuota::new(self.limit, self.window)?.with_offset(self.offset)?)
    }
}

/// What a table answers when a new key finds no room within its probe bound.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum tg_full_policy {
    /// Refuse: outcome and verdict `TG_OUTCOME_OVERLOADED` (HTTP 503). The safe default.
    FailClosed = 0,
    /// Let the request through: outcome `TG_OUTCOME_ALLOWED`, verdict `TG_OUTCOME_OVERLOADED`,
    /// flag `TG_DECISION_FAIL_OPEN`.
    FailOpen = 1,
}

/// A snapshot of a table's counters (each exact; read one after the other).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct tg_table_stats {
    /// Slots in the table.
    pub capacity: u64,
    /// Slots holding a key now.
    pub occupied: u64,
    /// Slots taken from a drained key for a new one, since initialisation.
    pub reclaimed: u64,
    /// Decisions answered by the full-table policy for lack of room, since initialisation.
    pub rejected: u64,
}

/// A handle on the table in some memory, of either kind.
enum Kind<'a> {
    Buckets(Table<'a, Quota>),
    Windows(Table<'a, WindowQuota>),
}

/// The bytes a table of `capacity` slots and `tiers` tiers needs (0 if none).
fn size_for(capacity: usize, tiers: usize) -> usize {
    match table::bytes(capacity, tiers) {
        usize::MAX => 0,
        n if isize::try_from(n).is_err() => 0,
        n => n,
    }
}

/// The bytes of memory a table of `capacity` slots and `tiers` tiers needs (equal to
/// `TG_TABLE_SIZE(capacity, tiers)`), or 0 if there is no such table: `capacity` 0, `tiers`
/// 0 or above `TG_TABLE_MAX_TIERS`, or a size that does not fit `size_t`. The table holds
/// `capacity` rounded up to a multiple of 5 slots.
#[unsafe(no_mangle)]
pub extern "C" fn tg_table_size(capacity: usize, tiers: usize) -> usize {
    guard_value(0, || size_for(capacity, tiers))
}

/// The alignment a table's memory needs, in bytes (equal to `TG_TABLE_ALIGN`).
#[unsafe(no_mangle)]
pub extern "C" fn tg_table_align() -> usize {
    guard_value(TG_TABLE_ALIGN, || TG_TABLE_ALIGN)
}

/// A typed array from C: NULL is refused, alignment checked.
///
/// # Safety
///
/// If `ptr` is not NULL and aligned it must be valid for reads of `len` values of `T`.
pub(crate) unsafe fn try_array<'a, T>(ptr: *const T, len: usize) -> Result<&'a [T], tg_status> {
    if ptr.is_null() {
        return Err(tg_status::NullPointer);
    }
    if !ptr.is_aligned() {
        return Err(tg_status::Misaligned);
    }
    if len
        .checked_mul(size_of::<T>())
        .is_none_or(|n| isize::try_from(n).is_err())
    {
        return Err(tg_status::InvalidArgument);
    }
    // SAFETY: not NULL, aligned, at most isize::MAX bytes, valid by the caller's contract.
    Ok(unsafe { core::slice::from_raw_parts(ptr, len) })
}

/// The memory as words: NULL and misalignment refused.
///
/// # Safety
///
/// `memory` is NULL or valid for reads and writes of `bytes` bytes (at most `isize::MAX`) for
/// `'a`, and only accessed atomically by others meanwhile.
unsafe fn words<'a>(memory: *const c_void, bytes: usize) -> Result<&'a [AtomicU64], tg_status> {
    let base = NonNull::new(memory.cast_mut()).ok_or(tg_status::NullPointer)?;
    if !(base.as_ptr() as usize).is_multiple_of(TG_TABLE_ALIGN) {
        return Err(tg_status::Misaligned);
    }
    // SAFETY: aligned (128 ≥ 8), valid for `bytes` bytes by the contract; `AtomicU64` has the
    // size and alignment of `u64` and any bits are a valid value.
    Ok(unsafe { core::slice::from_raw_parts(base.as_ptr().cast::<AtomicU64>(), bytes / 8) })
}

/// The checks shared by both initialisers; returns the table's exact memory.
///
/// # Safety
///
/// As [`words`] for `memory_size` bytes.
unsafe fn check_memory<'a>(
    memory: *mut c_void,
    memory_size: usize,
    capacity: usize,
    tier_count: usize,
) -> Result<&'a [AtomicU64], tg_status> {
    if memory.is_null() {
        return Err(tg_status::NullPointer);
    }
    if !(memory as usize).is_multiple_of(TG_TABLE_ALIGN) {
        return Err(tg_status::Misaligned);
    }
    if capacity == 0 {
        return Err(tg_status::CapacityExceeded);
    }
    if tier_count == 0 || tier_count > TG_TABLE_MAX_TIERS {
        return Err(tg_status::InvalidArgument);
    }
    match size_for(capacity, tier_count) {
        // SAFETY: forwarded contract; `need` ≤ `memory_size` bytes.
        need if need != 0 && memory_size >= need => unsafe { words(memory, need) },
        _ => Err(tg_status::BufferTooSmall),
    }
}

pub(crate) fn policy_from(policy: u32) -> Result<FullPolicy, tg_status> {
    match policy {
        0 => Ok(FullPolicy::FailClosed),
        1 => Ok(FullPolicy::FailOpen),
        _ => Err(tg_status::InvalidArgument),
    }
}

/// Checks every tier (its own status on failure), then initialises the table, reading the
/// tiers again one by one (no array of them on the stack).
fn build<Q: TableQuota + Copy>(
    mem: &[AtomicU64],
    tier_count: usize,
    tier: impl Fn(usize) -> Result<Q, tg_status>,
    seed: Seed,
    policy: FullPolicy,
) -> Result<(), tg_status> {
    for i in 0..tier_count {
        tier(i)?;
    }
    let t = Table::init_from_fn(mem, tier_count, |i| tier(i).ok(), seed, policy, 0)?;
    // Process ids as claimants, as the shared regions' tables have: a process that dies
    // mid-insert in memory several processes map loses no slot for good (see `with_claimants`).
    #[cfg(all(feature = "shared", unix))]
    tollgate::shared::record_process_claims(&t);
    #[cfg(not(all(feature = "shared", unix)))]
    let _ = t;
    Ok(())
}

/// Initialises a table of leaky buckets (docs/semantics.md#leaky-bucket) in `memory`: `capacity` slots (rounded up
/// to a multiple of 5), and the tiers `tiers[0 .. tier_count]` (copied into the memory: the
/// array may go away afterwards) that decisions name by index. `policy` is a
/// `tg_full_policy`. `seed_k0`, `seed_k1` are the table's secret hash seed: draw them with
/// `tg_seed_random` when the process starts (a fixed seed lets an attacker aim keys at one
/// group). On success `*out_table` is the table (at `memory`).
///
/// Errors, all checked before anything is written: `TG_STATUS_NULL_POINTER` (`memory`, `tiers`,
/// `out_table`), `TG_STATUS_MISALIGNED` (`memory` not aligned to `TG_TABLE_ALIGN`, or
/// `tiers`), `TG_STATUS_BUFFER_TOO_SMALL` (`memory_size` below `tg_table_size(capacity,
/// tier_count)`), `TG_STATUS_CAPACITY_EXCEEDED` (`capacity` 0), `TG_STATUS_INVALID_ARGUMENT`
/// (`tier_count` 0 or above `TG_TABLE_MAX_TIERS`, an unknown policy),
/// `TG_STATUS_UNINITIALIZED` (a tier), `TG_STATUS_SPAN_TOO_SHORT` (a tier whose bucket does
/// not fit the table's state bits).
///
/// Processes that die (hosted Unix builds, the default; not no_std/firmware builds): the table
/// records the calling process's pid namespace (Linux; where it cannot be read, nothing), as a
/// `tg_shared` table does. Every `tg_table_*` call on the memory, in any process of that
/// namespace that maps it, then writes its process id into a slot it claims for a new key, and
/// an insertion that meets a slot still claimed by a process that has exited (and been reaped
/// by its parent) empties it: a process killed between claiming a slot and writing its key
/// loses no slot for good. A live process's claim is never undone (threads of one process share
/// its id; one cannot stop alone). Processes in another pid namespace use the table as before,
/// but their own interrupted claims stay busy. Every process using one memory should use a
/// library built this way.
///
/// # Safety
///
/// `memory` is NULL or valid for reads and writes of `memory_size` bytes, used by nothing else
/// during the call (no other process may attach before it returns) and, after success, only
/// through table functions for as long as it is used; `tiers` is NULL or valid for reads of `tier_count` `tg_quota`s and does not overlap
/// `memory`; `out_table` is NULL or valid for a write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tg_table_init_buckets(
    memory: *mut c_void,
    memory_size: usize,
    capacity: usize,
    tiers: *const tg_quota,
    tier_count: usize,
    policy: u32,
    seed_k0: u64,
    seed_k1: u64,
    out_table: *mut *mut tg_table,
) -> tg_status {
    guard(|| {
        // SAFETY: forwarded contract.
        let mem = unsafe { check_memory(memory, memory_size, capacity, tier_count) }?;
        // SAFETY: forwarded contract.
        let out = unsafe { Out::new(out_table) }?;
        let policy = policy_from(policy)?;
        // SAFETY: forwarded contract.
        let given = unsafe { try_array(tiers, tier_count) }?;
        // SAFETY: an element of the checked array.
        let tier = |i: usize| unsafe { quota::read(&raw const given[i]) };
        build(mem, tier_count, tier, Seed::new(seed_k0, seed_k1), policy)?;
        out.set(memory.cast());
        Ok(())
    })
}

/// Initialises a table of fixed windows (docs/semantics.md#fixed-window) in `memory`, as `tg_table_init_buckets` with
/// tiers of `tg_window_quota`.
///
/// Errors: those of `tg_table_init_buckets` (without `TG_STATUS_UNINITIALIZED`), and for a bad
/// tier `TG_STATUS_ZERO_BURST`, `TG_STATUS_ZERO_PERIOD`, `TG_STATUS_QUOTA_OVERFLOW` or
/// `TG_STATUS_OFFSET_OUT_OF_RANGE`.
///
/// # Safety
///
/// As `tg_table_init_buckets`, with `tiers` valid for reads of `tier_count`
/// `tg_window_quota`s.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tg_table_init_windows(
    memory: *mut c_void,
    memory_size: usize,
    capacity: usize,
    tiers: *const tg_window_quota,
    tier_count: usize,
    policy: u32,
    seed_k0: u64,
    seed_k1: u64,
    out_table: *mut *mut tg_table,
) -> tg_status {
    guard(|| {
        // SAFETY: forwarded contract.
        let mem = unsafe { check_memory(memory, memory_size, capacity, tier_count) }?;
        // SAFETY: forwarded contract.
        let out = unsafe { Out::new(out_table) }?;
        let policy = policy_from(policy)?;
        // SAFETY: forwarded contract.
        let given = unsafe { try_array(tiers, tier_count) }?;
        let tier = |i: usize| given[i].checked();
        build(mem, tier_count, tier, Seed::new(seed_k0, seed_k1), policy)?;
        out.set(memory.cast());
        Ok(())
    })
}

/// The status for a refused attach.
fn attach_status(e: AttachError) -> tg_status {
    match e {
        AttachError::Magic => tg_status::Uninitialized,
        _ => tg_status::LayoutMismatch,
    }
}

/// Checks a table another process (or an earlier run, or another mapping) initialised in
/// `memory`, and returns it at this address in `*out_table`: magic, layout version, the size it
/// records against `memory_size`, every tier and the checksum of all parameters. Reads only.
/// Use it once per mapping; the other table functions then take the pointer as is.
///
/// Errors: `TG_STATUS_NULL_POINTER`, `TG_STATUS_MISALIGNED`, `TG_STATUS_UNINITIALIZED` (no
/// table there), `TG_STATUS_LAYOUT_MISMATCH` (another layout version, a recorded size larger
/// than `memory_size`, a parameter out of range, a tier that is not a valid quota, a checksum
/// that does not match).
///
/// # Safety
///
/// `memory` is NULL or valid for reads and writes of `memory_size` bytes for as long as the
/// table is used, accessed by others only through table functions; `out_table` is NULL or
/// valid for a write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tg_table_attach(
    memory: *mut c_void,
    memory_size: usize,
    out_table: *mut *mut tg_table,
) -> tg_status {
    guard(|| {
        if isize::try_from(memory_size).is_err() {
            return Err(tg_status::InvalidArgument);
        }
        // SAFETY: forwarded contract.
        let mem = unsafe { words(memory, memory_size) }?;
        // SAFETY: forwarded contract.
        let out = unsafe { Out::new(out_table) }?;
        match kind_word(mem) {
            Some(1) => drop(Table::<Quota>::attach(mem).map_err(attach_status)?),
            Some(2) => drop(Table::<WindowQuota>::attach(mem).map_err(attach_status)?),
            Some(_) => return Err(tg_status::LayoutMismatch),
            None => return Err(tg_status::Uninitialized),
        }
        out.set(memory.cast());
        Ok(())
    })
}

/// The kind word of an initialised table (`None` without the magic).
fn kind_word(mem: &[AtomicU64]) -> Option<u64> {
    use core::sync::atomic::Ordering;
    let magic = mem.first()?.load(Ordering::Acquire);
    (magic == table::MAGIC).then(|| mem.get(3).map_or(0, |w| w.load(Ordering::Relaxed)))
}

/// The table at `table`, with the cheap checks (magic, version, kind, size).
///
/// # Safety
///
/// `table` is NULL or points to memory valid for reads of `TG_TABLE_HEADER_SIZE` bytes; if it
/// holds a table's magic, to a table from `tg_table_init_*` or `tg_table_attach`, valid for
/// reads and writes of the size its header records, for `'a`.
unsafe fn kind<'a>(table: *const tg_table) -> Result<Kind<'a>, tg_status> {
    // SAFETY: forwarded contract: the header is readable.
    let header = unsafe { words(table.cast(), TG_TABLE_HEADER_SIZE) }?;
    let Some(kind) = kind_word(header) else {
        return Err(tg_status::Uninitialized);
    };
    let size = header[2].load(core::sync::atomic::Ordering::Relaxed);
    let bytes = usize::try_from(size)
        .ok()
        .and_then(|w| w.checked_mul(8))
        .filter(|b| isize::try_from(*b).is_ok() && *b >= TG_TABLE_HEADER_SIZE)
        .ok_or(tg_status::LayoutMismatch)?;
    // SAFETY: forwarded contract: an initialised table is valid for the size it records.
    let mem = unsafe { words(table.cast(), bytes) }?;
    Ok(match kind {
        1 => Kind::Buckets(with_claimants(Table::open(mem).map_err(attach_status)?)),
        2 => Kind::Windows(with_claimants(Table::open(mem).map_err(attach_status)?)),
        _ => return Err(tg_status::LayoutMismatch),
    })
}

/// The handle with the claimants recorded in the table (process ids: by a shared region, or by
/// `tg_table_init_*` in a hosted Unix build), so a slot left busy by a process that exited is
/// taken again whichever API decides. Builds without the `shared` feature (no_std, firmware)
/// neither record nor use claimants.
#[inline]
fn with_claimants<Q: TableQuota>(t: Table<'_, Q>) -> Table<'_, Q> {
    #[cfg(all(feature = "shared", unix))]
    if let Some(c) = tollgate::shared::table_claimants(&t) {
        return t.with_claimants(c);
    }
    t
}

/// # Safety
///
/// As [`kind`]; `out` is NULL or valid for a write of a `tg_decision`.
unsafe fn judge(
    table: *const tg_table,
    key: tg_key,
    tier: usize,
    out: *mut tg_decision,
    peek: bool,
    now: u64,
    cost: u64,
) -> tg_status {
    guard(|| {
        // SAFETY: forwarded contract.
        let t = unsafe { kind(table) }?;
        // SAFETY: forwarded contract.
        let out = unsafe { Out::new(out) }?;
        let key = Key::from(key);
        let d: Decision = match (t, peek) {
            (Kind::Buckets(t), false) => t.decide(key, tier, now, cost)?,
            (Kind::Buckets(t), true) => t.peek(key, tier, now, cost)?,
            (Kind::Windows(t), false) => t.decide(key, tier, now, cost)?,
            (Kind::Windows(t), true) => t.peek(key, tier, now, cost)?,
        };
        out.set(tg_decision::from(d));
        Ok(())
    })
}

/// Decides on a request of `cost` at `now` for `key`, whose quota is the table's tier number
/// `tier`: exactly what a `tg_bucket` (or `tg_window`) of that quota holding the key's history
/// answers. A key that changes tier keeps its history, converted as `tg_bucket_set_quota`
/// (`tg_window_set_quota`) converts it. A new key that finds no room gets the table's full
/// policy (`TG_OUTCOME_OVERLOADED`, or allowed with `TG_DECISION_FAIL_OPEN`), counted in
/// `tg_table_get_stats`.
///
/// Errors: `TG_STATUS_INVALID_ARGUMENT` (`tier` out of range), `TG_STATUS_ZERO_COST`,
/// `TG_STATUS_CLOCK_OUT_OF_RANGE`, `TG_STATUS_NULL_POINTER`, `TG_STATUS_MISALIGNED`,
/// `TG_STATUS_UNINITIALIZED`. An error changes nothing.
///
/// # Safety
///
/// `table` is NULL or a table from `tg_table_init_*` (or memory of at least
/// `TG_TABLE_HEADER_SIZE` readable bytes); `out` is NULL or valid for a write of a
/// `tg_decision`. Any number of threads may decide at once.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tg_table_decide(
    table: *mut tg_table,
    key: tg_key,
    tier: usize,
    now: u64,
    cost: u64,
    out: *mut tg_decision,
) -> tg_status {
    // SAFETY: forwarded contract.
    unsafe { judge(table, key, tier, out, false, now, cost) }
}

/// `tg_table_decide` with only scalars crossing the boundary: the key as its two halves
/// (`key_hi`, `key_lo`: the `hi` and `lo` of a `tg_key`; for an (app, shop) pair packed as
/// `tg_key_pair` does, simply `app` and `shop`), and the outcome returned. When `out` is NULL
/// only the outcome is computed — the cheapest call, with no numbers and no division on the
/// usual path; when it is not, the full decision is written there too (as `tg_table_decide`
/// would). The state changes exactly as `tg_table_decide`'s.
///
/// Returns the `tg_outcome` (0 to 3; `TG_OUTCOME_ALLOWED` with a fail-open table's room
/// answer) or, on error, a negative value: the negated `tg_status` (the errors of
/// `tg_table_decide`, and `-TG_STATUS_MISALIGNED` for a misaligned `out`). An error changes
/// nothing.
///
/// # Safety
///
/// As `tg_table_decide`; `out` is NULL or valid for a write of a `tg_decision`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tg_table_check(
    table: *mut tg_table,
    key_hi: u64,
    key_lo: u64,
    tier: usize,
    now: u64,
    cost: u64,
    out: *mut tg_decision,
) -> i32 {
    let key = tg_key {
        hi: key_hi,
        lo: key_lo,
    };
    if !out.is_null() {
        // SAFETY: forwarded contract.
        let status = unsafe { judge(table, key, tier, out, false, now, cost) };
        if status != tg_status::Ok {
            return check_error(status);
        }
        // SAFETY: `judge` succeeded, so `out` is valid, aligned and was written.
        return unsafe { (*out).outcome }.cast_signed();
    }
    guard_value(check_error(tg_status::Panic), || {
        // SAFETY: forwarded contract.
        let t = match unsafe { kind(table) } {
            Ok(t) => t,
            Err(status) => return check_error(status),
        };
        let key = Key::from(key);
        let outcome = match t {
            Kind::Buckets(t) => t.check(key, tier, now, cost),
            Kind::Windows(t) => t.check(key, tier, now, cost),
        };
        match outcome {
            Ok(o) => tg_outcome::from(o) as i32,
            Err(e) => check_error(tg_status::from(e)),
        }
    })
}

/// Many outcome-only decisions in one call, for callers that decide in bulk: for each `i` below
/// `n`, exactly `tg_table_check(table, keys_hi[i], keys_lo[i], tier, now, cost, NULL)`, in order,
/// its result written to `out_results[i]` (a `tg_outcome`, or a negated `tg_status` for that
/// request alone). `n` may be 0. Faster than the calls one by one, most of all in a table larger
/// than the processor's cache: the groups of several keys are loaded together, so their memory
/// accesses overlap.
///
/// Errors (nothing decided, nothing written): `TG_STATUS_NULL_POINTER` (an array NULL while
/// `n > 0`), `TG_STATUS_MISALIGNED`, `TG_STATUS_UNINITIALIZED` (the table), and
/// `TG_STATUS_INVALID_ARGUMENT` for `n` larger than any array can be.
///
/// # Safety
///
/// As `tg_table_decide`; `keys_hi` and `keys_lo` are NULL or valid for reads of `n` `uint64_t`,
/// `out_results` NULL or valid for writes of `n` `int32_t`, none overlapping.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tg_table_check_many(
    table: *mut tg_table,
    keys_hi: *const u64,
    keys_lo: *const u64,
    n: usize,
    tier: usize,
    now: u64,
    cost: u64,
    out_results: *mut i32,
) -> tg_status {
    guard(|| {
        // SAFETY: forwarded contract.
        let (t, hi, lo) = unsafe { many(table, keys_hi, keys_lo, n) }?;
        // SAFETY: forwarded contract: NULL or valid for `n` writes, overlapping no input.
        let out = unsafe { slice_out(out_results, n) }?;
        let mut outcomes: [Result<Outcome, Error>; CHUNK] = [Ok(Outcome::Allowed); CHUNK];
        in_chunks::<CHUNK>(hi, lo, |at, keys| {
            let outcomes = &mut outcomes[..keys.len()];
            // An error of the whole call is each request's: what `tg_table_check` answers.
            let whole = match t {
                Kind::Buckets(t) => t.check_many(keys, tier, now, cost, outcomes),
                Kind::Windows(t) => t.check_many(keys, tier, now, cost, outcomes),
            };
            for (o, &r) in out[at..].iter_mut().zip(outcomes.iter()) {
                *o = match whole.and(r) {
                    Ok(outcome) => tg_outcome::from(outcome) as i32,
                    Err(e) => check_error(tg_status::from(e)),
                };
            }
        });
        Ok(())
    })
}

/// What both bulk calls check first: the table, then its two arrays of key halves.
///
/// # Safety
///
/// As [`kind`] for `table`; `keys_hi` and `keys_lo` are NULL or valid for reads of `n`
/// `uint64_t`, not written meanwhile.
unsafe fn many<'a>(
    table: *const tg_table,
    keys_hi: *const u64,
    keys_lo: *const u64,
    n: usize,
) -> Result<(Kind<'a>, &'a [u64], &'a [u64]), tg_status> {
    // SAFETY: forwarded contract.
    let t = unsafe { kind(table) }?;
    // SAFETY: forwarded contract: NULL or valid for `n` reads each.
    let hi = unsafe { slice_in(keys_hi, n) }?;
    // SAFETY: as above.
    let lo = unsafe { slice_in(keys_lo, n) }?;
    Ok((t, hi, lo))
}

/// Keys `tg_table_check_many` hands to the table at a time.
const CHUNK: usize = 16;

/// Keys `tg_table_decide_many` hands to the table at a time (fewer: a decision is larger).
const DECIDE_CHUNK: usize = 8;

/// The keys of two arrays of halves, `N` at a time on the stack (also on firmware), each chunk
/// passed with its first index to `each`. The table's batched calls take them from there: their
/// groups are loaded together (`Table::check_many`).
fn in_chunks<const N: usize>(hi: &[u64], lo: &[u64], mut each: impl FnMut(usize, &[Key])) {
    let mut keys = [Key::new(0); N];
    for (c, (hi, lo)) in hi.chunks(N).zip(lo.chunks(N)).enumerate() {
        for ((k, &h), &l) in keys.iter_mut().zip(hi).zip(lo) {
            *k = Key::from(tg_key { hi: h, lo: l });
        }
        each(c * N, &keys[..hi.len().min(lo.len())]);
    }
}

/// Many full decisions in one call: for each `i` below `n`, exactly
/// `tg_table_check(table, keys_hi[i], keys_lo[i], tier, now, cost, &out_decisions[i])`, in
/// order. `out_results[i]` gets the `tg_outcome` or, for an error of that request alone, the
/// negated `tg_status`; `out_decisions[i]` gets the decision when `out_results[i] >= 0`, and is
/// left as it was otherwise. `n` may be 0. Like `tg_table_check_many`, it loads several keys'
/// groups together, which makes it faster than the calls one by one in a table larger than the
/// processor's cache.
///
/// Errors (nothing decided, nothing written): `TG_STATUS_NULL_POINTER` (an array NULL while
/// `n > 0`), `TG_STATUS_MISALIGNED`, `TG_STATUS_UNINITIALIZED` (the table), and
/// `TG_STATUS_INVALID_ARGUMENT` for `n` larger than any array can be.
///
/// # Safety
///
/// As `tg_table_decide`; `keys_hi` and `keys_lo` are NULL or valid for reads of `n` `uint64_t`,
/// `out_decisions` NULL or valid for writes of `n` `tg_decision`s and `out_results` of `n`
/// `int32_t`, none overlapping.
#[unsafe(no_mangle)]
#[allow(clippy::too_many_arguments)] // the arrays and the request's scalars, as check_many
pub unsafe extern "C" fn tg_table_decide_many(
    table: *mut tg_table,
    keys_hi: *const u64,
    keys_lo: *const u64,
    n: usize,
    tier: usize,
    now: u64,
    cost: u64,
    out_decisions: *mut tg_decision,
    out_results: *mut i32,
) -> tg_status {
    guard(|| {
        // SAFETY: forwarded contract.
        let (t, hi, lo) = unsafe { many(table, keys_hi, keys_lo, n) }?;
        // SAFETY: forwarded contract: NULL or valid for `n` writes, overlapping no other array.
        let decisions = unsafe { slice_out(out_decisions, n) }?;
        // SAFETY: as above.
        let results = unsafe { slice_out(out_results, n) }?;
        let mut got: [Result<Decision, Error>; DECIDE_CHUNK] =
            [Err(Error::InvalidArgument); DECIDE_CHUNK];
        in_chunks::<DECIDE_CHUNK>(hi, lo, |at, keys| {
            let got = &mut got[..keys.len()];
            // An error of the whole call is each request's: what `tg_table_check` answers.
            let whole = match t {
                Kind::Buckets(t) => t.decide_many(keys, tier, now, cost, got),
                Kind::Windows(t) => t.decide_many(keys, tier, now, cost, got),
            };
            let outs = decisions[at..].iter_mut().zip(results[at..].iter_mut());
            for ((d, r), &g) in outs.zip(got.iter()) {
                match whole.and(g) {
                    Ok(decision) => {
                        *d = tg_decision::from(decision);
                        *r = tg_outcome::from(decision.outcome) as i32;
                    }
                    Err(e) => *r = check_error(tg_status::from(e)),
                }
            }
        });
        Ok(())
    })
}

/// `n` values from C: an empty slice for `n == 0` (any pointer), else checked (not NULL,
/// aligned, a size that fits).
///
/// # Safety
///
/// `ptr` is NULL or valid for reads of `n` `T`s, not written meanwhile.
unsafe fn slice_in<'a, T>(ptr: *const T, n: usize) -> Result<&'a [T], tg_status> {
    if n == 0 {
        return Ok(&[]);
    }
    check_array(ptr, n)?;
    // SAFETY: not NULL, aligned, a size that fits (checked); valid by the caller's contract.
    Ok(unsafe { core::slice::from_raw_parts(ptr, n) })
}

/// [`slice_in`] for an output array.
///
/// # Safety
///
/// `ptr` is NULL or valid for writes of `n` `T`s, used by no one else meanwhile.
unsafe fn slice_out<'a, T>(ptr: *mut T, n: usize) -> Result<&'a mut [T], tg_status> {
    if n == 0 {
        return Ok(&mut []);
    }
    check_array(ptr.cast_const(), n)?;
    // SAFETY: not NULL, aligned, a size that fits (checked); exclusive by the caller's contract.
    Ok(unsafe { core::slice::from_raw_parts_mut(ptr, n) })
}

fn check_array<T>(ptr: *const T, n: usize) -> Result<(), tg_status> {
    if ptr.is_null() {
        return Err(tg_status::NullPointer);
    }
    if !ptr.is_aligned() {
        return Err(tg_status::Misaligned);
    }
    match n.checked_mul(core::mem::size_of::<T>()) {
        Some(bytes) if isize::try_from(bytes).is_ok() => Ok(()),
        _ => Err(tg_status::InvalidArgument),
    }
}

/// `tg_table_peek` with the key as its two halves (see `tg_table_check`), for bindings that
/// pass no struct by value.
///
/// Errors: as `tg_table_peek`.
///
/// # Safety
///
/// As `tg_table_peek`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tg_table_peek_key(
    table: *mut tg_table,
    key_hi: u64,
    key_lo: u64,
    tier: usize,
    now: u64,
    cost: u64,
    out: *mut tg_decision,
) -> tg_status {
    let key = tg_key {
        hi: key_hi,
        lo: key_lo,
    };
    // SAFETY: forwarded contract.
    unsafe { judge(table, key, tier, out, true, now, cost) }
}

/// Would a request of `cost` for `key` be admitted at `now`? Spends nothing; the numbers
/// describe the key's current level. A peek records its time and tier in the key's bucket as
/// the single limiters do, so it inserts a new key (and gets the full policy's answer when there
/// is no room).
///
/// Errors: as `tg_table_decide`.
///
/// # Safety
///
/// As `tg_table_decide`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tg_table_peek(
    table: *mut tg_table,
    key: tg_key,
    tier: usize,
    now: u64,
    cost: u64,
    out: *mut tg_decision,
) -> tg_status {
    // SAFETY: forwarded contract.
    unsafe { judge(table, key, tier, out, true, now, cost) }
}

/// The table's counters: capacity, occupied slots, reclaimed slots, full-policy answers.
///
/// Errors: `TG_STATUS_NULL_POINTER`, `TG_STATUS_MISALIGNED`, `TG_STATUS_UNINITIALIZED`.
///
/// # Safety
///
/// `table` as for `tg_table_decide`; `out` is NULL or valid for a write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tg_table_get_stats(
    table: *const tg_table,
    out: *mut tg_table_stats,
) -> tg_status {
    guard(|| {
        // SAFETY: forwarded contract.
        let t = unsafe { kind(table) }?;
        // SAFETY: forwarded contract.
        let out = unsafe { Out::new(out) }?;
        let s = match t {
            Kind::Buckets(t) => t.stats(),
            Kind::Windows(t) => t.stats(),
        };
        out.set(tg_table_stats {
            capacity: s.capacity as u64,
            occupied: s.occupied,
            reclaimed: s.reclaimed,
            rejected: s.rejected,
        });
        Ok(())
    })
}

/// How many slots a lookup of `key` reads to find it (1 = its home slot), or 0 if the key is
/// not in the table. For tests and monitoring of probe lengths.
///
/// Errors: `TG_STATUS_NULL_POINTER`, `TG_STATUS_MISALIGNED`, `TG_STATUS_UNINITIALIZED`.
///
/// # Safety
///
/// `table` as for `tg_table_decide`; `out_len` is NULL or valid for a write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tg_table_probe_len(
    table: *const tg_table,
    key: tg_key,
    out_len: *mut usize,
) -> tg_status {
    guard(|| {
        // SAFETY: forwarded contract.
        let t = unsafe { kind(table) }?;
        // SAFETY: forwarded contract.
        let out = unsafe { Out::new(out_len) }?;
        let key = Key::from(key);
        let len = match t {
            Kind::Buckets(t) => t.probe_len(key),
            Kind::Windows(t) => t.probe_len(key),
        };
        out.set(len.unwrap_or(0));
        Ok(())
    })
}

/// The table's seed, for the hashed keys.
///
/// # Safety
///
/// As [`kind`].
unsafe fn seed(table: *const tg_table) -> Result<Seed, tg_status> {
    // SAFETY: forwarded contract.
    Ok(match unsafe { kind(table) }? {
        Kind::Buckets(t) => t.seed(),
        Kind::Windows(t) => t.seed(),
    })
}

/// The exact key of an (app, shop) pair: `app` in the high 64 bits, `shop` in the low.
#[unsafe(no_mangle)]
pub extern "C" fn tg_key_pair(app: u64, shop: u64) -> tg_key {
    guard_value(tg_key { hi: app, lo: shop }, || Key::pair(app, shop).into())
}

/// The exact key of an (app, shop, api) triple whose app and api ids fit 32 bits: `app` in bits
/// 96..128, `api` in bits 64..96, `shop` in bits 0..64. For wider ids use `tg_table_key_triple`.
#[unsafe(no_mangle)]
pub extern "C" fn tg_key_triple(app: u32, shop: u64, api: u32) -> tg_key {
    guard_value(tg_key { hi: 0, lo: 0 }, || {
        Key::triple(app, shop, api).into()
    })
}

/// The key of a byte string (a shop's domain, an API token), hashed with the table's secret
/// seed (SipHash-2-4-128): distinct strings collide with probability about 2^-128.
///
/// Errors: `TG_STATUS_NULL_POINTER` (`bytes` NULL with `len` > 0, `out`),
/// `TG_STATUS_MISALIGNED`, `TG_STATUS_UNINITIALIZED`.
///
/// # Safety
///
/// `table` as for `tg_table_decide`; `bytes` is NULL (with `len` 0) or valid for reads of `len`
/// bytes; `out` is NULL or valid for a write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tg_table_key_bytes(
    table: *const tg_table,
    bytes: *const u8,
    len: usize,
    out: *mut tg_key,
) -> tg_status {
    guard(|| {
        // SAFETY: forwarded contract.
        let seed = unsafe { seed(table) }?;
        // SAFETY: forwarded contract.
        let out = unsafe { Out::new(out) }?;
        // SAFETY: forwarded contract.
        let bytes = unsafe { try_bytes(bytes, len) }?;
        out.set(seed.key_bytes(bytes).into());
        Ok(())
    })
}

/// The key of any number of 64-bit ids, hashed with the table's secret seed.
///
/// Errors: `TG_STATUS_NULL_POINTER` (`parts` NULL with `count` > 0, `out`),
/// `TG_STATUS_MISALIGNED` (`table`, `parts`, `out`), `TG_STATUS_UNINITIALIZED`.
///
/// # Safety
///
/// `table` as for `tg_table_decide`; `parts` is NULL (with `count` 0) or valid for reads of
/// `count` `uint64_t`s; `out` is NULL or valid for a write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tg_table_key_parts(
    table: *const tg_table,
    parts: *const u64,
    count: usize,
    out: *mut tg_key,
) -> tg_status {
    guard(|| {
        // SAFETY: forwarded contract.
        let seed = unsafe { seed(table) }?;
        // SAFETY: forwarded contract.
        let out = unsafe { Out::new(out) }?;
        let parts: &[u64] = if parts.is_null() && count == 0 {
            &[]
        } else {
            // SAFETY: forwarded contract.
            unsafe { try_array(parts, count) }?
        };
        out.set(seed.key_parts(parts).into());
        Ok(())
    })
}

/// The key of an (app, shop, api) triple of any 64-bit ids, hashed with the table's secret seed
/// (for ids too wide for `tg_key_triple`).
///
/// Errors: `TG_STATUS_NULL_POINTER`, `TG_STATUS_MISALIGNED`, `TG_STATUS_UNINITIALIZED`.
///
/// # Safety
///
/// `table` as for `tg_table_decide`; `out` is NULL or valid for a write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tg_table_key_triple(
    table: *const tg_table,
    app: u64,
    shop: u64,
    api: u64,
    out: *mut tg_key,
) -> tg_status {
    guard(|| {
        // SAFETY: forwarded contract.
        let seed = unsafe { seed(table) }?;
        // SAFETY: forwarded contract.
        let out = unsafe { Out::new(out) }?;
        out.set(seed.key_triple(app, shop, api).into());
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decision::tg_outcome;
    use core::mem::MaybeUninit;

    const SIZE: usize = 256 + 128 * 2;

    /// Table memory, aligned as a caller must align it.
    #[repr(C, align(128))]
    struct Mem([u8; SIZE]);

    fn quota(burst: u64, count: u64, period: u64) -> tg_quota {
        let mut q = MaybeUninit::<tg_quota>::uninit();
        // SAFETY: a valid out-parameter.
        let s = unsafe { quota::tg_quota_init(q.as_mut_ptr(), burst, count, period) };
        assert_eq!(s, tg_status::Ok);
        // SAFETY: initialised on success.
        unsafe { q.assume_init() }
    }

    /// A hosted Linux build records the creating process's pid namespace (table header word
    /// 13), so every handle on the memory gets process claimants (tests/c/test_table.c kills
    /// a forked claimant).
    #[cfg(all(feature = "shared", target_os = "linux"))]
    #[test]
    fn init_records_this_process_pid_namespace() {
        use std::os::unix::fs::MetadataExt as _;
        let mut mem = Mem([0; SIZE]);
        let tiers = [quota(2, 1, 1000)];
        let mut table: *mut tg_table = core::ptr::null_mut();
        let base = mem.0.as_mut_ptr().cast::<c_void>();
        // SAFETY: valid pointers.
        let status = unsafe {
            tg_table_init_buckets(base, SIZE, 8, tiers.as_ptr(), 1, 0, 1, 2, &raw mut table)
        };
        assert_eq!(status, tg_status::Ok);
        let ns = std::fs::metadata("/proc/self/ns/pid").unwrap().ino();
        assert_eq!(
            u64::from_ne_bytes(mem.0[13 * 8..14 * 8].try_into().unwrap()),
            ns
        );
    }

    #[test]
    fn sizes_match_the_layout() {
        assert_eq!(tg_table_size(8, 1), size_of::<Mem>());
        assert_eq!(tg_table_size(10, 1), size_of::<Mem>());
        assert_eq!(tg_table_size(0, 1), 0);
        assert_eq!(tg_table_size(usize::MAX / 16, 1), 0);
        assert_eq!(tg_table_align(), 128);
    }

    #[test]
    fn refusals_write_nothing_and_a_table_decides() {
        let mut mem = Mem([0x5a; SIZE]);
        let tiers = [quota(2, 1, 1000)];
        let mut table: *mut tg_table = core::ptr::null_mut();
        let base = mem.0.as_mut_ptr().cast::<c_void>();
        let size = mem.0.len();
        // SAFETY: valid pointers; every call but the last is refused.
        unsafe {
            let status = tg_table_init_buckets(
                base,
                size - 1,
                8,
                tiers.as_ptr(),
                1,
                0,
                1,
                2,
                &raw mut table,
            );
            assert_eq!(status, tg_status::BufferTooSmall);
            let status =
                tg_table_init_buckets(base, size, 8, tiers.as_ptr(), 1, 9, 1, 2, &raw mut table);
            assert_eq!(status, tg_status::InvalidArgument);
            let zero = MaybeUninit::<tg_quota>::zeroed().assume_init();
            let status =
                tg_table_init_buckets(base, size, 8, &raw const zero, 1, 0, 1, 2, &raw mut table);
            assert_eq!(status, tg_status::Uninitialized);
            assert!(mem.0.iter().all(|&b| b == 0x5a) && table.is_null());
            let mut out = MaybeUninit::<tg_decision>::uninit();
            let key = tg_key_pair(7, 42);
            let status = tg_table_decide(base.cast(), key, 0, 0, 1, out.as_mut_ptr());
            assert_eq!(status, tg_status::Uninitialized);
            let mut attached: *mut tg_table = core::ptr::null_mut();
            let status = tg_table_attach(base, size, &raw mut attached);
            assert_eq!(status, tg_status::Uninitialized);

            let status =
                tg_table_init_buckets(base, size, 8, tiers.as_ptr(), 1, 0, 1, 2, &raw mut table);
            assert_eq!(status, tg_status::Ok);
            assert_eq!(table.cast::<c_void>(), base);
            for expected in [
                tg_outcome::Allowed,
                tg_outcome::Allowed,
                tg_outcome::Limited,
            ] {
                assert_eq!(
                    tg_table_decide(table, key, 0, 0, 1, out.as_mut_ptr()),
                    tg_status::Ok
                );
                assert_eq!(out.assume_init().outcome, expected as u32);
            }
            let mut counters = MaybeUninit::<tg_table_stats>::uninit();
            assert_eq!(
                tg_table_get_stats(table, counters.as_mut_ptr()),
                tg_status::Ok
            );
            assert_eq!(counters.assume_init().occupied, 1);
            assert_eq!(counters.assume_init().capacity, 10);
            assert_eq!(
                tg_table_attach(base, size, &raw mut attached),
                tg_status::Ok
            );
            assert_eq!(attached, table);
            assert_eq!(
                tg_table_attach(base, size - 8, &raw mut attached),
                tg_status::LayoutMismatch
            );
        }
    }
}
