//! `tg_table`: a lock-free keyed table of buckets or fixed windows in caller memory (SPEC §10).
//!
//! # Memory layout
//!
//! The caller provides `tg_table_size(capacity, tiers)` bytes aligned to `TG_TABLE_ALIGN`
//! (`TG_TABLE_SIZE(capacity, tiers)` is the same number as a constant expression):
//!
//! | bytes | content |
//! |---|---|
//! | 0 .. `TG_TABLE_HEADER_SIZE` | the table (a magic word, the core `Table`) |
//! | then `tiers` × `TG_TABLE_TIER_SIZE` | a copy of the tiers |
//! | then `capacity` × `TG_TABLE_SLOT_SIZE` | the slots (32 bytes each, 16-byte aligned) |
//!
//! `tg_table_init_buckets` / `tg_table_init_windows` check everything (NULL, alignment, size,
//! tiers, policy) before writing anything; the table then refers only to that memory, which
//! must stay in place and untouched for as long as the table is used. Nothing is allocated and
//! there is no `_free`: the memory is the caller's.

use core::ffi::c_void;
use core::mem::{align_of, size_of};
use core::ptr::NonNull;

use tollgate::key::{Key, Seed};
use tollgate::table::{FullPolicy, Slot, Table, TableQuota, MAX_TIERS};
use tollgate::{Decision, Quota, WindowQuota};

use crate::boundary::{self, guard, guard_value, try_bytes, Out};
use crate::decision::tg_decision;
use crate::quota::{self, tg_quota};
use crate::status::tg_status;

/// The alignment a table's memory needs, in bytes.
pub const TG_TABLE_ALIGN: usize = 16;
/// Bytes at the start of a table's memory for the table itself.
pub const TG_TABLE_HEADER_SIZE: usize = 256;
/// Bytes per tier in a table's memory.
pub const TG_TABLE_TIER_SIZE: usize = 64;
/// Bytes per slot in a table's memory. A slot holds one key; keep the load (keys active within
/// one drain time, over slots) at or under 0.7: about 46 bytes per key.
pub const TG_TABLE_SLOT_SIZE: usize = 32;
/// The most tiers a table can have.
pub const TG_TABLE_MAX_TIERS: usize = 256;

const _: () = {
    assert!(size_of::<Header>() <= TG_TABLE_HEADER_SIZE);
    assert!(align_of::<Header>() <= TG_TABLE_ALIGN);
    assert!(TG_TABLE_HEADER_SIZE.is_multiple_of(TG_TABLE_ALIGN));
    assert!(size_of::<Quota>() <= TG_TABLE_TIER_SIZE && align_of::<Quota>() <= TG_TABLE_ALIGN);
    assert!(size_of::<WindowQuota>() <= TG_TABLE_TIER_SIZE);
    assert!(align_of::<WindowQuota>() <= TG_TABLE_ALIGN);
    assert!(TG_TABLE_TIER_SIZE.is_multiple_of(TG_TABLE_ALIGN));
    assert!(size_of::<Slot>() == TG_TABLE_SLOT_SIZE && align_of::<Slot>() <= TG_TABLE_ALIGN);
    assert!(TG_TABLE_MAX_TIERS == MAX_TIERS);
};

/// A keyed table living in caller memory (see `tg_table_size`). Opaque: C only holds the
/// pointer `tg_table_init_*` returns, which is the start of the memory. Decisions are lock-free
/// and safe from any number of threads at once; decisions on different keys never wait for
/// each other.
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

/// The two kinds of table.
enum Kind {
    Buckets(Table<'static, Quota>),
    Windows(Table<'static, WindowQuota>),
}

/// What sits at the start of a table's memory.
#[repr(C)]
struct Header {
    magic: u64,
    kind: Kind,
}

const MAGIC: u64 = boundary::magic(*b"tg_table");

/// The bytes a table of `capacity` slots and `tiers` tiers needs, if representable.
fn size_for(capacity: usize, tiers: usize) -> Option<usize> {
    TG_TABLE_HEADER_SIZE
        .checked_add(tiers.checked_mul(TG_TABLE_TIER_SIZE)?)?
        .checked_add(capacity.checked_mul(TG_TABLE_SLOT_SIZE)?)
}

/// The bytes of memory a table of `capacity` slots and `tiers` tiers needs (equal to
/// `TG_TABLE_SIZE(capacity, tiers)`), or 0 if there is no such table: `capacity` 0, `tiers`
/// 0 or above `TG_TABLE_MAX_TIERS`, or a size that does not fit `size_t`.
#[unsafe(no_mangle)]
pub extern "C" fn tg_table_size(capacity: usize, tiers: usize) -> usize {
    guard_value(0, || {
        if capacity == 0 || tiers == 0 || tiers > TG_TABLE_MAX_TIERS {
            return 0;
        }
        size_for(capacity, tiers).unwrap_or(0)
    })
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
unsafe fn try_array<'a, T>(ptr: *const T, len: usize) -> Result<&'a [T], tg_status> {
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

/// The checks shared by both initialisers; returns the memory's start.
fn check_memory(
    memory: *mut c_void,
    memory_size: usize,
    capacity: usize,
    tier_count: usize,
) -> Result<NonNull<u8>, tg_status> {
    let base = NonNull::new(memory.cast::<u8>()).ok_or(tg_status::NullPointer)?;
    if !(base.as_ptr() as usize).is_multiple_of(TG_TABLE_ALIGN) {
        return Err(tg_status::Misaligned);
    }
    if capacity == 0 {
        return Err(tg_status::CapacityExceeded);
    }
    if tier_count == 0 || tier_count > TG_TABLE_MAX_TIERS {
        return Err(tg_status::InvalidArgument);
    }
    match size_for(capacity, tier_count) {
        Some(need) if memory_size >= need => Ok(base),
        _ => Err(tg_status::BufferTooSmall),
    }
}

fn policy_from(policy: u32) -> Result<FullPolicy, tg_status> {
    match policy {
        0 => Ok(FullPolicy::FailClosed),
        1 => Ok(FullPolicy::FailOpen),
        _ => Err(tg_status::InvalidArgument),
    }
}

/// Writes the tiers, the slots and the header into checked memory.
///
/// # Safety
///
/// `base` is aligned to `TG_TABLE_ALIGN` and valid for exclusive writes of
/// `size_for(capacity, tier_count)` bytes for as long as the returned table is used.
unsafe fn build<Q: TableQuota + Copy + 'static>(
    base: NonNull<u8>,
    capacity: usize,
    tier_count: usize,
    tier: impl Fn(usize) -> Result<Q, tg_status>,
    seed: Seed,
    policy: FullPolicy,
    kind: impl FnOnce(Table<'static, Q>) -> Kind,
) -> Result<(), tg_status> {
    // Every tier is checked before the first byte is written, so an error leaves the memory
    // untouched. (Tiers are read twice rather than collected: no large stack buffer.)
    for i in 0..tier_count {
        tier(i)?;
    }
    // Aligned: every offset below is a multiple of TG_TABLE_ALIGN.
    #[allow(clippy::cast_ptr_alignment)]
    // SAFETY: within the checked memory (header, then tiers, then slots); every offset is a
    // multiple of TG_TABLE_ALIGN, which covers the alignment of Q and Slot (asserted above).
    let (tier_ptr, slot_ptr) = unsafe {
        let t = base.as_ptr().add(TG_TABLE_HEADER_SIZE);
        (
            t.cast::<Q>(),
            t.add(tier_count * TG_TABLE_TIER_SIZE).cast::<Slot>(),
        )
    };
    for i in 0..tier_count {
        let q = tier(i)?;
        // SAFETY: the tier area holds `tier_count` values of at most TG_TABLE_TIER_SIZE bytes.
        unsafe { tier_ptr.add(i).write(q) };
    }
    for i in 0..capacity {
        // SAFETY: the slot area holds `capacity` slots.
        unsafe { slot_ptr.add(i).write(Slot::new()) };
    }
    // SAFETY: initialised just now, in memory the caller keeps in place and untouched for as
    // long as the table is used (this function's contract), so 'static is the caller's promise.
    let (tiers, slots): (&'static [Q], &'static [Slot]) = unsafe {
        (
            core::slice::from_raw_parts(tier_ptr, tier_count),
            core::slice::from_raw_parts(slot_ptr, capacity),
        )
    };
    let table = Table::new(slots, tiers, seed)?.with_policy(policy);
    // SAFETY: the header area is the first TG_TABLE_HEADER_SIZE bytes, aligned.
    unsafe {
        base.cast::<Header>().write(Header {
            magic: MAGIC,
            kind: kind(table),
        });
    }
    Ok(())
}

/// Initialises a table of leaky buckets (SPEC §3) in `memory`: `capacity` slots, and the tiers
/// `tiers[0 .. tier_count]` (copied: the array may go away afterwards) that decisions name by
/// index. `policy` is a `tg_full_policy`. `seed_k0`, `seed_k1` are the table's secret hash seed:
/// pick them at random when the process starts (a fixed seed lets an attacker aim keys at one
/// slot). On success `*out_table` is the table (at `memory`).
///
/// Errors, all checked before anything is written: `TG_STATUS_NULL_POINTER` (`memory`, `tiers`,
/// `out_table`), `TG_STATUS_MISALIGNED` (`memory` not aligned to `TG_TABLE_ALIGN`, or
/// `tiers`), `TG_STATUS_BUFFER_TOO_SMALL` (`memory_size` below `tg_table_size(capacity,
/// tier_count)`), `TG_STATUS_CAPACITY_EXCEEDED` (`capacity` 0), `TG_STATUS_INVALID_ARGUMENT`
/// (`tier_count` 0 or above `TG_TABLE_MAX_TIERS`, an unknown policy),
/// `TG_STATUS_UNINITIALIZED` (a tier).
///
/// # Safety
///
/// `memory` is NULL or valid for reads and writes of `memory_size` bytes, used by nothing else
/// during the call and, after success, only through the table for as long as it is used;
/// `tiers` is NULL or valid for reads of `tier_count` `tg_quota`s and does not overlap
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
        let base = check_memory(memory, memory_size, capacity, tier_count)?;
        // SAFETY: forwarded contract.
        let out = unsafe { Out::new(out_table) }?;
        let policy = policy_from(policy)?;
        // SAFETY: forwarded contract.
        let given = unsafe { try_array(tiers, tier_count) }?;
        let seed = Seed::new(seed_k0, seed_k1);
        // SAFETY: an element of the checked array.
        let tier = |i: usize| unsafe { quota::read(&raw const given[i]) };
        // SAFETY: memory checked (not NULL, aligned, large enough), exclusive by the contract.
        unsafe {
            build(
                base,
                capacity,
                tier_count,
                tier,
                seed,
                policy,
                Kind::Buckets,
            )
        }?;
        out.set(base.as_ptr().cast());
        Ok(())
    })
}

/// Initialises a table of fixed windows (SPEC §4) in `memory`, as `tg_table_init_buckets` with
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
        let base = check_memory(memory, memory_size, capacity, tier_count)?;
        // SAFETY: forwarded contract.
        let out = unsafe { Out::new(out_table) }?;
        let policy = policy_from(policy)?;
        // SAFETY: forwarded contract.
        let given = unsafe { try_array(tiers, tier_count) }?;
        let tier = |i: usize| {
            let w = given[i];
            Ok(WindowQuota::new(w.limit, w.window)?.with_offset(w.offset)?)
        };
        let seed = Seed::new(seed_k0, seed_k1);
        // SAFETY: memory checked (not NULL, aligned, large enough), exclusive by the contract.
        unsafe {
            build(
                base,
                capacity,
                tier_count,
                tier,
                seed,
                policy,
                Kind::Windows,
            )
        }?;
        out.set(base.as_ptr().cast());
        Ok(())
    })
}

/// The table at `table`, checked.
///
/// # Safety
///
/// `table` is NULL or points to memory of at least `TG_TABLE_HEADER_SIZE` bytes valid for reads;
/// if initialised, by `tg_table_init_*`, and not re-initialised while the reference is used.
unsafe fn kind<'a>(table: *const tg_table) -> Result<&'a Kind, tg_status> {
    let header = table.cast::<Header>();
    if header.is_null() {
        return Err(tg_status::NullPointer);
    }
    if !(header as usize).is_multiple_of(TG_TABLE_ALIGN) {
        return Err(tg_status::Misaligned);
    }
    // SAFETY: not NULL, aligned, valid for reads (contract); the magic is read as a plain u64
    // (any bytes are valid) before anything else.
    let magic = unsafe { header.cast::<u64>().read() };
    if magic != MAGIC {
        return Err(tg_status::Uninitialized);
    }
    // SAFETY: the magic is written only by `build`, together with the header.
    Ok(unsafe { &(*header).kind })
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
/// answers. A key that changes tier keeps its level. A new key that finds no room gets the
/// table's full policy (`TG_OUTCOME_OVERLOADED`, or allowed with `TG_DECISION_FAIL_OPEN`),
/// counted in `tg_table_get_stats`.
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
        Kind::Buckets(t) => *t.seed(),
        Kind::Windows(t) => *t.seed(),
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

    /// Table memory, aligned as a caller must align it.
    #[repr(C, align(16))]
    struct Mem([u8; 256 + 64 + 8 * 32]);

    fn quota(burst: u64, count: u64, period: u64) -> tg_quota {
        let mut q = MaybeUninit::<tg_quota>::uninit();
        // SAFETY: a valid out-parameter.
        let s = unsafe { quota::tg_quota_init(q.as_mut_ptr(), burst, count, period) };
        assert_eq!(s, tg_status::Ok);
        // SAFETY: initialised on success.
        unsafe { q.assume_init() }
    }

    #[test]
    fn sizes_match_the_layout() {
        assert_eq!(tg_table_size(8, 1), size_of::<Mem>());
        assert_eq!(tg_table_size(0, 1), 0);
        assert_eq!(tg_table_size(usize::MAX / 16, 1), 0);
        assert_eq!(
            tg_table_align(),
            align_of::<Slot>().max(align_of::<Header>())
        );
    }

    #[test]
    fn refusals_write_nothing_and_a_table_decides() {
        let mut mem = Mem([0x5a; 256 + 64 + 8 * 32]);
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
        }
    }
}
