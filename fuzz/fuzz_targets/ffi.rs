//! Every C ABI entry point (`tg_*`, the `ffi/` crate) with arbitrary arguments: NULL,
//! misaligned and uninitialised objects, objects of another type, short and NULL buffers with
//! any length, arbitrary decisions, names, queries and key bytes, arbitrary table memory sizes
//! and capacities — in arbitrary order, on objects that live across calls.
//!
//! The ffi crate is built as an rlib here by `fuzz/ffi-shim` (a package whose `[lib]` is
//! `ffi/src/lib.rs` under the name `tollgate_ffi`): the same sources, instrumented for coverage
//! and AddressSanitizer with the rest of the target, and called as Rust functions. (The ffi
//! crate itself has no rlib: its `libtollgate.rlib` would collide with the core's.)
//!
//! The memory the calls get is always valid for what the documentation asks of the caller
//! (a pointer into an arena with room for the object, a length no longer than the buffer); what
//! varies is everything the library must check. A call that takes two objects gets two distinct
//! ones. Checked after every call: no panic was caught
//! at the boundary (`TG_STATUS_PANIC`), every status is a known one, and a decision
//! out-parameter is written only on success.
#![no_main]

use core::ffi::c_void;
use std::ptr;

use libfuzzer_sys::arbitrary::{self, Arbitrary};
use libfuzzer_sys::fuzz_target;
use tollgate_ffi::bucket::*;
use tollgate_ffi::client::*;
use tollgate_ffi::clock::*;
use tollgate_ffi::concurrency::*;
use tollgate_ffi::decision::*;
use tollgate_ffi::header::*;
use tollgate_ffi::pagination::*;
use tollgate_ffi::presets::*;
use tollgate_ffi::quota::*;
use tollgate_ffi::sliding_log::*;
use tollgate_ffi::status::*;
use tollgate_ffi::table::*;
use tollgate_ffi::version::*;
use tollgate_ffi::window::*;
use tollgate_fuzz::gen::Param;

const ARENA: usize = 4096;
const ARENAS: usize = 4;
const TABLE_ARENA: usize = 64 * 1024;

#[repr(C, align(64))]
struct Arena([u8; ARENA]);

#[repr(C, align(128))]
struct TableArena([u8; TABLE_ARENA]);

/// Where an object pointer points: NULL, or into one of the object arenas at an offset (0 is
/// aligned for every type; 1..=7 is misaligned for all of them). Every arena has room for the
/// largest object from any of these offsets.
#[derive(Arbitrary, Debug, Clone, Copy)]
enum Obj {
    Null,
    At(u8, u8),
}

/// An out-parameter: NULL, or into the out arena at an offset.
#[derive(Arbitrary, Debug, Clone, Copy)]
enum OutP {
    Null,
    At(u8),
}

/// A `(pointer, length)` buffer: NULL with any length, or a buffer of `len` bytes (a prefix of
/// a real buffer: short, empty or exact), at an offset.
#[derive(Arbitrary, Debug, Clone, Copy)]
enum Buf {
    Null(u16),
    At(u8, u16),
}

/// A table pointer: the last table initialised, NULL, an object arena (never a table), or the
/// table arena at an offset.
#[derive(Arbitrary, Debug, Clone, Copy)]
enum TableP {
    Current,
    Null,
    Obj(Obj),
    Arena(u8),
}

#[derive(Arbitrary, Debug)]
enum Op {
    Zero(u8),
    // Quotas.
    QuotaInit(Obj, Param, Param, Param),
    QuotaInitMinSpan(Obj, Param, Param, Param, Param),
    QuotaInitApproximate(Obj, Param, Param, Param, Param),
    QuotaExactSpan(Obj, OutP),
    QuotaDrainTicks(Obj, OutP),
    QuotaIsExact(Obj, OutP),
    QuotaParams(Obj, OutP, OutP, OutP),
    // Bucket.
    BucketInit(Obj, Param, Param, Param),
    BucketInitQuota(Obj, Obj),
    BucketDecide(Obj, Param, Param, OutP),
    BucketCheck(Obj, Param, Param),
    WindowCheck(Obj, Param, Param),
    LogCheck(Obj, Param, Param),
    BucketPeek(Obj, Param, Param, OutP),
    BucketIsDrained(Obj, Param, OutP),
    BucketReset(Obj),
    BucketSetQuota(Obj, Obj, Param),
    BucketQuota(Obj, OutP),
    // Window.
    WindowInit(Obj, Param, Param, Param),
    WindowDecide(Obj, Param, Param, OutP),
    WindowPeek(Obj, Param, Param, OutP),
    WindowIsDrained(Obj, Param, OutP),
    WindowSpan(Obj, OutP),
    WindowReset(Obj),
    WindowSetQuota(Obj, Param, Param, Param, Param),
    WindowParams(Obj, OutP, OutP, OutP),
    // Sliding log.
    LogInit(Obj, Param, Param),
    LogDecide(Obj, Param, Param, OutP),
    LogPeek(Obj, Param, Param, OutP),
    LogNextAdmit(Obj, Param, Param, OutP),
    LogUsed(Obj, Param, OutP),
    LogReset(Obj),
    // Concurrency.
    ConcurrencyInit(Obj, u32),
    ConcurrencyAcquire(Obj, OutP),
    ConcurrencyRelease(Obj),
    ConcurrencyInFlight(Obj, OutP, OutP),
    // Wrapping clock.
    ClockInit(Obj),
    ClockNow(Obj, bool, bool, u32, OutP),
    ClockLast(Obj, OutP),
    // Decisions and headers.
    SetDecision(u8, [u32; 4], [u64; 5]),
    DecisionShadow(OutP),
    HttpStatus(u32, OutP),
    ShopApiCallLimit(OutP, Buf, OutP),
    RetryAfterSeconds(OutP, Param, OutP),
    RetryAfter(OutP, Param, Buf, OutP),
    RateLimit(OutP, Buf, Param, Buf, OutP),
    RateLimitPolicy(Buf, Param, Param, Buf, OutP),
    RateLimitPolicyBucket(Obj, Buf, Param, Buf, OutP),
    RateLimitPolicyWindow(Param, Param, Buf, Param, Buf, OutP),
    // Pagination.
    PaginationCheck(Param, Param, Param, OutP),
    PaginationCheckQuery(Buf, Param, OutP),
    // Presets.
    PresetShopbaseQuota(Param, Obj),
    PresetShopbaseBucket(Obj, Param),
    PresetTiktokWindow(Obj, Param),
    PresetTiktokLog(Obj, Param, Param),
    // Table.
    TableSize(u64, u64),
    TableInitBuckets(u8, u32, u16, Obj, u8, u32, u64, u64, OutP),
    TableInitWindows(u8, u32, u16, bool, u8, u32, u64, u64, OutP),
    TableDecide(TableP, u64, u64, u16, Param, Param, OutP),
    TablePeek(TableP, u64, u64, u16, Param, Param, OutP),
    TableCheck(TableP, u64, u64, u16, Param, Param, Option<OutP>),
    TablePeekKey(TableP, u64, u64, u16, Param, Param, OutP),
    TableCheckMany(TableP, Vec<(u64, u64)>, u16, Param, Param),
    TableDecideMany(TableP, Vec<(u64, u64)>, u16, Param, Param),
    TableStats(TableP, OutP),
    TableProbeLen(TableP, u64, u64, OutP),
    KeyPair(u64, u64),
    KeyTriple(u32, u64, u32),
    TableKeyBytes(TableP, Buf, OutP),
    TableKeyParts(TableP, Buf, OutP),
    TableKeyTriple(TableP, u64, u64, u64, OutP),
    // Client toolkit: pacers.
    BucketPacerInit(Obj, Param, Param, Param, Param),
    BucketPacerNextSend(Obj, Param, Param, OutP),
    BucketPacerAcquire(Obj, Param, Param, OutP),
    BucketPacerReserve(Obj, Param, Param, OutP),
    BucketPacerObserve(Obj, Param, Param, Param),
    BucketPacerBlockUntil(Obj, Param),
    BucketPacerSync(Obj, [Param; 4], Buf, Buf),
    LogPacerInit(Obj, Param, Param, Param),
    LogPacerNextSend(Obj, Param, Param, OutP),
    LogPacerAcquire(Obj, Param, Param, OutP),
    LogPacerReserve(Obj, Param, Param, OutP),
    LogPacerObserve(Obj, Param, Param, Param),
    LogPacerBlockUntil(Obj, Param),
    LogPacerSync(Obj, [Param; 4], Buf, Buf),
    // Client toolkit: parsers, backoff, budget, retry, queue.
    CallLimitParse(Buf, OutP),
    RetryAfterParse(Buf, u64, OutP),
    BackoffInit(Obj, Param, Param, u32, u32, u64),
    BackoffNextDelay(Obj, Param, OutP, OutP),
    BackoffRetries(Obj, OutP),
    BackoffReset(Obj),
    BudgetInit(Obj, Param, u32, Param),
    BudgetRecordSuccess(Obj, Param),
    BudgetAvailable(Obj, Param, OutP),
    BudgetTryRetry(Obj, Param, OutP),
    ClassOfStatus(u32, OutP),
    ClassOfOutcome(u32, OutP),
    ClassOfTransportError(OutP),
    RetryNextStep(u32, Param, Param, Obj, Obj, OutP),
    QueueInit(Obj),
    QueuePush(Obj, u64),
    QueuePop(Obj, OutP, OutP),
    QueueLen(Obj, OutP),
    QueueReleaseBucket(Obj, Obj, Param, OutP),
    QueueReleaseLog(Obj, Obj, Param, OutP),
    // Statics.
    StatusStr(u32),
    Version,
}

#[derive(Arbitrary, Debug)]
struct Input {
    bytes: Vec<u8>,
    window_tiers: [(u64, u64, u64); 4],
    ops: Vec<Op>,
}

struct World {
    arenas: Box<[Arena; ARENAS]>,
    out: Box<Arena>,
    decisions: Box<Arena>,
    table_arena: Box<TableArena>,
    table: *mut tg_table,
    bytes: Vec<u8>,
    counter: u32,
}

impl World {
    fn obj<T>(&mut self, o: Obj) -> *mut T {
        match o {
            Obj::Null => ptr::null_mut(),
            Obj::At(i, off) => {
                let arena = &mut self.arenas[usize::from(i) % ARENAS].0;
                arena[usize::from(off % 8)..].as_mut_ptr().cast()
            }
        }
    }

    /// Two object pointers for one call, never into the same arena (the functions taking two
    /// objects require two distinct ones).
    fn two<A, B>(&mut self, a: Obj, b: Obj) -> (*mut A, *mut B) {
        let b = match (a, b) {
            (Obj::At(i, _), Obj::At(j, off))
                if usize::from(i) % ARENAS == usize::from(j) % ARENAS =>
            {
                Obj::At(j.wrapping_add(1), off)
            }
            _ => b,
        };
        (self.obj(a), self.obj(b))
    }

    /// An out pointer; the out arena is refilled with a marker first, so an unchanged marker
    /// after a failed call shows nothing was written.
    fn out<T>(&mut self, o: OutP) -> *mut T {
        self.out.0.fill(0xA5);
        match o {
            OutP::Null => ptr::null_mut(),
            OutP::At(off) => self.out.0[usize::from(off % 8)..].as_mut_ptr().cast(),
        }
    }

    fn out_untouched(&self) -> bool {
        self.out.0.iter().all(|&b| b == 0xA5)
    }

    /// A decision pointer into the decisions arena (arbitrary plain data), or NULL.
    fn decision(&mut self, o: OutP) -> *mut tg_decision {
        match o {
            OutP::Null => ptr::null_mut(),
            OutP::At(off) => {
                // Any offset that keeps it aligned to 8; a misaligned one for odd offsets.
                let off = usize::from(off % 64);
                self.decisions.0[off..].as_mut_ptr().cast()
            }
        }
    }

    /// A `(pointer, length)` input over the fuzzer's bytes.
    fn input(&self, b: Buf) -> (*const u8, usize) {
        match b {
            Buf::Null(len) => (ptr::null(), usize::from(len % 4)),
            Buf::At(off, len) => {
                let off = usize::from(off).min(self.bytes.len());
                let rest = &self.bytes[off..];
                (rest.as_ptr(), usize::from(len).min(rest.len()))
            }
        }
    }

    /// A `(pointer, length)` output buffer within the out arena, clear of the out-parameters.
    fn output(&mut self, b: Buf) -> (*mut u8, usize) {
        match b {
            Buf::Null(len) => (ptr::null_mut(), usize::from(len % 4)),
            Buf::At(off, len) => {
                // Past the first KiB, where out-parameters go: the two never overlap.
                let rest = &mut self.out.0[1024 + usize::from(off)..];
                (rest.as_mut_ptr(), usize::from(len).min(rest.len()))
            }
        }
    }

    fn table(&mut self, t: TableP) -> *mut tg_table {
        match t {
            TableP::Current => self.table,
            TableP::Null => ptr::null_mut(),
            TableP::Obj(o) => self.obj(o),
            TableP::Arena(off) => self.table_arena.0[usize::from(off % 16)..]
                .as_mut_ptr()
                .cast(),
        }
    }
}

/// The counter a wrapping clock reads: the `u32` at `context`, or 0 for NULL.
unsafe extern "C" fn read_counter(context: *mut c_void) -> u32 {
    if context.is_null() {
        0
    } else {
        // SAFETY: the fuzz target passes a pointer to its own `u32` counter.
        unsafe { *context.cast::<u32>() }
    }
}

fn check(status: tg_status) -> tg_status {
    assert_ne!(
        status,
        tg_status::Panic,
        "a panic was caught at the boundary"
    );
    assert_ne!(status, tg_status::Unknown, "an engine error had no status");
    let text = unsafe { std::ffi::CStr::from_ptr(tg_status_str(status as u32)) };
    assert_ne!(text.to_bytes(), b"unknown status");
    status
}

/// The bulk calls' arrays of key halves: at most 64 keys, low halves below 64 as in the other
/// table operations.
fn key_halves(keys: &[(u64, u64)]) -> (Vec<u64>, Vec<u64>) {
    let keys = &keys[..keys.len().min(64)];
    keys.iter().map(|&(hi, lo)| (hi, lo % 64)).unzip()
}

/// An outcome-only call's result: a `tg_outcome` (0 to 3) or a negated status that `check`
/// accepts.
fn check_outcome(r: i32) {
    if r < 0 {
        let code = r.unsigned_abs();
        assert_ne!(
            code,
            tg_status::Panic as u32,
            "a panic was caught at the boundary"
        );
        assert_ne!(
            code,
            tg_status::Unknown as u32,
            "an engine error had no status"
        );
        let text = unsafe { std::ffi::CStr::from_ptr(tg_status_str(code)) };
        assert_ne!(text.to_bytes(), b"unknown status", "not a status: {code}");
    } else {
        assert!(r <= 3, "an outcome out of range: {r}");
    }
}

/// A call whose out-parameter (in the out arena) must be written only on success.
fn check_out(world: &World, status: tg_status) {
    if check(status) != tg_status::Ok {
        assert!(world.out_untouched(), "out-parameter written on {status:?}");
    }
}

fn run(input: Input) {
    let mut w = World {
        arenas: Box::new([const { Arena([0; ARENA]) }; ARENAS]),
        out: Box::new(Arena([0; ARENA])),
        decisions: Box::new(Arena([0; ARENA])),
        table_arena: Box::new(TableArena([0; TABLE_ARENA])),
        table: ptr::null_mut(),
        bytes: input.bytes,
        counter: 0,
    };
    let window_tiers: Vec<tg_window_quota> = input
        .window_tiers
        .iter()
        .map(|&(limit, window, offset)| tg_window_quota {
            limit,
            window,
            offset,
        })
        .collect();
    for op in input.ops.into_iter().take(128) {
        // SAFETY (every call below): each pointer is NULL or points into an arena of this world
        // with room for its type from that offset; each length is within its buffer; no object
        // is used by two calls at once (one thread).
        unsafe {
            match op {
                Op::Zero(i) => w.arenas[usize::from(i) % ARENAS].0.fill(0),
                Op::QuotaInit(o, b, c, p) => {
                    check(tg_quota_init(w.obj(o), b.get(), c.get(), p.get()));
                }
                Op::QuotaInitMinSpan(o, b, c, p, m) => {
                    check(tg_quota_init_min_span(
                        w.obj(o),
                        b.get(),
                        c.get(),
                        p.get(),
                        m.get(),
                    ));
                }
                Op::QuotaInitApproximate(o, b, c, p, m) => {
                    let q = w.obj(o);
                    check(tg_quota_init_approximate(
                        q,
                        b.get(),
                        c.get(),
                        p.get(),
                        m.get(),
                    ));
                }
                Op::QuotaExactSpan(o, out) => {
                    let (q, out) = (w.obj(o), w.out(out));
                    check_out(&w, tg_quota_exact_span(q, out));
                }
                Op::QuotaDrainTicks(o, out) => {
                    let (q, out) = (w.obj(o), w.out(out));
                    check_out(&w, tg_quota_drain_ticks(q, out));
                }
                Op::QuotaIsExact(o, out) => {
                    let (q, out) = (w.obj(o), w.out(out));
                    check_out(&w, tg_quota_is_exact(q, out));
                }
                Op::QuotaParams(o, a, b, c) => {
                    let q = w.obj(o);
                    let (a, b, c): (*mut u64, *mut u64, *mut u64) = (w.out(a), w.out(b), w.out(c));
                    let (b, c) = (offset(b, a, 8), offset(c, a, 16));
                    check_out(&w, tg_quota_params(q, a, b, c));
                }
                Op::BucketInit(o, b, c, p) => {
                    check(tg_bucket_init(w.obj(o), b.get(), c.get(), p.get()));
                }
                Op::BucketInitQuota(o, q) => {
                    let (b, q) = w.two(o, q);
                    check(tg_bucket_init_quota(b, q));
                }
                Op::BucketDecide(o, now, cost, out) => {
                    let (b, out) = (w.obj(o), w.out(out));
                    check_out(&w, tg_bucket_decide(b, now.get(), cost.get(), out));
                }
                Op::BucketCheck(o, now, cost) => {
                    check_outcome(tg_bucket_check(w.obj(o), now.get(), cost.get()));
                }
                Op::WindowCheck(o, now, cost) => {
                    check_outcome(tg_window_check(w.obj(o), now.get(), cost.get()));
                }
                Op::LogCheck(o, now, cost) => {
                    check_outcome(tg_sliding_log_check(w.obj(o), now.get(), cost.get()));
                }
                Op::BucketPeek(o, now, cost, out) => {
                    let (b, out) = (w.obj(o), w.out(out));
                    check_out(&w, tg_bucket_peek(b, now.get(), cost.get(), out));
                }
                Op::BucketIsDrained(o, now, out) => {
                    let (b, out) = (w.obj(o), w.out(out));
                    check_out(&w, tg_bucket_is_drained(b, now.get(), out));
                }
                Op::BucketReset(o) => {
                    check(tg_bucket_reset(w.obj(o)));
                }
                Op::BucketSetQuota(o, q, now) => {
                    let (b, q) = w.two(o, q);
                    check(tg_bucket_set_quota(b, q, now.get()));
                }
                Op::BucketQuota(o, out) => {
                    let (b, out) = (w.obj(o), w.out(out));
                    check_out(&w, tg_bucket_quota(b, out));
                }
                Op::WindowInit(o, n, win, off) => {
                    check(tg_window_init(w.obj(o), n.get(), win.get(), off.get()));
                }
                Op::WindowDecide(o, now, cost, out) => {
                    let (x, out) = (w.obj(o), w.out(out));
                    check_out(&w, tg_window_decide(x, now.get(), cost.get(), out));
                }
                Op::WindowPeek(o, now, cost, out) => {
                    let (x, out) = (w.obj(o), w.out(out));
                    check_out(&w, tg_window_peek(x, now.get(), cost.get(), out));
                }
                Op::WindowIsDrained(o, now, out) => {
                    let (x, out) = (w.obj(o), w.out(out));
                    check_out(&w, tg_window_is_drained(x, now.get(), out));
                }
                Op::WindowSpan(o, out) => {
                    let (x, out) = (w.obj(o), w.out(out));
                    check_out(&w, tg_window_span(x, out));
                }
                Op::WindowReset(o) => {
                    check(tg_window_reset(w.obj(o)));
                }
                Op::WindowSetQuota(o, n, win, off, now) => {
                    let x = w.obj(o);
                    check(tg_window_set_quota(
                        x,
                        n.get(),
                        win.get(),
                        off.get(),
                        now.get(),
                    ));
                }
                Op::WindowParams(o, a, b, c) => {
                    let x = w.obj(o);
                    let (a, b, c): (*mut u64, *mut u64, *mut u64) = (w.out(a), w.out(b), w.out(c));
                    let (b, c) = (offset(b, a, 8), offset(c, a, 16));
                    check_out(&w, tg_window_params(x, a, b, c));
                }
                Op::LogInit(o, n, win) => {
                    check(tg_sliding_log_init(w.obj(o), n.get(), win.get()));
                }
                Op::LogDecide(o, now, cost, out) => {
                    let (x, out) = (w.obj(o), w.out(out));
                    check_out(&w, tg_sliding_log_decide(x, now.get(), cost.get(), out));
                }
                Op::LogPeek(o, now, cost, out) => {
                    let (x, out) = (w.obj(o), w.out(out));
                    check_out(&w, tg_sliding_log_peek(x, now.get(), cost.get(), out));
                }
                Op::LogNextAdmit(o, now, cost, out) => {
                    let (x, out) = (w.obj(o), w.out(out));
                    check_out(
                        &w,
                        tg_sliding_log_next_admit_time(x, now.get(), cost.get(), out),
                    );
                }
                Op::LogUsed(o, now, out) => {
                    let (x, out) = (w.obj(o), w.out(out));
                    check_out(&w, tg_sliding_log_used(x, now.get(), out));
                }
                Op::LogReset(o) => {
                    check(tg_sliding_log_reset(w.obj(o)));
                }
                Op::ConcurrencyInit(o, max) => {
                    check(tg_concurrency_init(w.obj(o), max));
                }
                Op::ConcurrencyAcquire(o, out) => {
                    let (x, out) = (w.obj(o), w.out(out));
                    let status = tg_concurrency_acquire(x, out);
                    // A refusal is a decision too (TG_STATUS_OK with an Overloaded outcome).
                    check_out(&w, status);
                }
                Op::ConcurrencyRelease(o) => {
                    check(tg_concurrency_release(w.obj(o)));
                }
                Op::ConcurrencyInFlight(o, a, b) => {
                    let x = w.obj(o);
                    let (a, b): (*mut u32, *mut u32) = (w.out(a), w.out(b));
                    let b = offset(b, a, 4);
                    check_out(&w, tg_concurrency_in_flight(x, a, b));
                }
                Op::ClockInit(o) => {
                    check(tg_wrapping_clock_init(w.obj(o)));
                }
                Op::ClockNow(o, with_read, with_context, counter, out) => {
                    w.counter = w.counter.wrapping_add(counter);
                    let read: tg_read_counter = if with_read { Some(read_counter) } else { None };
                    let context: *mut c_void = if with_context {
                        ptr::addr_of_mut!(w.counter).cast()
                    } else {
                        ptr::null_mut()
                    };
                    let (x, out) = (w.obj(o), w.out(out));
                    check_out(&w, tg_wrapping_clock_now(x, read, context, out));
                }
                Op::ClockLast(o, out) => {
                    let (x, out) = (w.obj(o), w.out(out));
                    check_out(&w, tg_wrapping_clock_last(x, out));
                }
                Op::SetDecision(off, words, longs) => {
                    let at = usize::from(off % 64) & !7;
                    let mut raw = [0u8; 56];
                    for (i, v) in words.iter().enumerate() {
                        raw[i * 4..i * 4 + 4].copy_from_slice(&v.to_ne_bytes());
                    }
                    for (i, v) in longs.iter().enumerate() {
                        raw[16 + i * 8..24 + i * 8].copy_from_slice(&v.to_ne_bytes());
                    }
                    w.decisions.0[at..at + 56].copy_from_slice(&raw);
                }
                Op::DecisionShadow(d) => {
                    check(tg_decision_shadow(w.decision(d)));
                }
                Op::HttpStatus(outcome, out) => {
                    let out = w.out(out);
                    check_out(&w, tg_outcome_http_status(outcome, out));
                }
                Op::ShopApiCallLimit(d, buf, out_len) => {
                    let d = w.decision(d);
                    let out_len: *mut usize = w.out(out_len);
                    let (p, len) = w.output(buf);
                    check(tg_header_shop_api_call_limit(d, p.cast(), len, out_len));
                }
                Op::RetryAfterSeconds(d, tps, out) => {
                    let d = w.decision(d);
                    let out = w.out(out);
                    check_out(&w, tg_header_retry_after_seconds(d, tps.get(), out));
                }
                Op::RetryAfter(d, tps, buf, out_len) => {
                    let d = w.decision(d);
                    let out_len: *mut usize = w.out(out_len);
                    let (p, len) = w.output(buf);
                    check(tg_header_retry_after(d, tps.get(), p.cast(), len, out_len));
                }
                Op::RateLimit(d, name, tps, buf, out_len) => {
                    let d = w.decision(d);
                    let (n, n_len) = w.input(name);
                    let out_len: *mut usize = w.out(out_len);
                    let (p, len) = w.output(buf);
                    check(tg_header_ratelimit(
                        d,
                        n.cast(),
                        n_len,
                        tps.get(),
                        p.cast(),
                        len,
                        out_len,
                    ));
                }
                Op::RateLimitPolicy(name, limit, secs, buf, out_len) => {
                    let (n, n_len) = w.input(name);
                    let out_len: *mut usize = w.out(out_len);
                    let (p, len) = w.output(buf);
                    check(tg_header_ratelimit_policy(
                        n.cast(),
                        n_len,
                        limit.get(),
                        secs.get(),
                        p.cast(),
                        len,
                        out_len,
                    ));
                }
                Op::RateLimitPolicyBucket(q, name, tps, buf, out_len) => {
                    let q = w.obj(q);
                    let (n, n_len) = w.input(name);
                    let out_len: *mut usize = w.out(out_len);
                    let (p, len) = w.output(buf);
                    check(tg_header_ratelimit_policy_bucket(
                        q,
                        n.cast(),
                        n_len,
                        tps.get(),
                        p.cast(),
                        len,
                        out_len,
                    ));
                }
                Op::RateLimitPolicyWindow(limit, win, name, tps, buf, out_len) => {
                    let (n, n_len) = w.input(name);
                    let out_len: *mut usize = w.out(out_len);
                    let (p, len) = w.output(buf);
                    check(tg_header_ratelimit_policy_window(
                        limit.get(),
                        win.get(),
                        n.cast(),
                        n_len,
                        tps.get(),
                        p.cast(),
                        len,
                        out_len,
                    ));
                }
                Op::PaginationCheck(l, p, max, out) => {
                    let out = w.out(out);
                    check_out(&w, tg_pagination_check(l.get(), p.get(), max.get(), out));
                }
                Op::PaginationCheckQuery(q, max, out) => {
                    let (p, len) = w.input(q);
                    let out = w.out(out);
                    check_out(&w, tg_pagination_check_query(p.cast(), len, max.get(), out));
                }
                Op::PresetShopbaseQuota(tps, q) => {
                    check(tg_preset_shopbase_quota(tps.get(), w.obj(q)));
                }
                Op::PresetShopbaseBucket(o, tps) => {
                    check(tg_preset_shopbase_bucket_init(w.obj(o), tps.get()));
                }
                Op::PresetTiktokWindow(o, tps) => {
                    check(tg_preset_tiktok_shop_window_init(w.obj(o), tps.get()));
                }
                Op::PresetTiktokLog(o, tps, jitter) => {
                    check(tg_preset_tiktok_shop_client_log_init(
                        w.obj(o),
                        tps.get(),
                        jitter.get(),
                    ));
                }
                Op::TableSize(capacity, tiers) => {
                    let size = tg_table_size(capacity as usize, tiers as usize);
                    // Header and tiers rounded up to a 128-byte group, then groups of 5 slots.
                    let head = (192 + (tiers as u128) * 64).div_ceil(128) * 128;
                    let want = head + (capacity as u128).div_ceil(5) * 128;
                    if capacity == 0 || tiers == 0 || tiers > 256 || want > isize::MAX as u128 {
                        assert_eq!(size, 0);
                    } else {
                        assert_eq!(size as u128, want);
                    }
                    assert_eq!(tg_table_align(), 128);
                }
                Op::TableInitBuckets(off, size, capacity, tiers, count, policy, k0, k1, out) => {
                    let memory = w.table_arena.0[usize::from(off % 16)..].as_mut_ptr();
                    let room = TABLE_ARENA - usize::from(off % 16);
                    let size = (size as usize).min(room);
                    // At most the tier quotas that fit the arena from that offset.
                    let tiers_ptr: *const tg_quota = w.obj(tiers);
                    let fit = if tiers_ptr.is_null() {
                        4
                    } else {
                        ARENA / 2 / 72
                    };
                    let count = usize::from(count) % (fit + 1);
                    let out: *mut *mut tg_table = w.out(out);
                    let status = tg_table_init_buckets(
                        memory.cast(),
                        size,
                        usize::from(capacity),
                        tiers_ptr,
                        count,
                        policy % 3,
                        k0,
                        k1,
                        out,
                    );
                    check_out(&w, status);
                    if status == tg_status::Ok {
                        w.table = out.read_unaligned();
                    }
                }
                Op::TableInitWindows(off, size, capacity, null, count, policy, k0, k1, out) => {
                    let memory = w.table_arena.0[usize::from(off % 16)..].as_mut_ptr();
                    let room = TABLE_ARENA - usize::from(off % 16);
                    let size = (size as usize).min(room);
                    let tiers = if null {
                        ptr::null()
                    } else {
                        window_tiers.as_ptr()
                    };
                    let count = usize::from(count) % (window_tiers.len() + 1);
                    let out: *mut *mut tg_table = w.out(out);
                    let status = tg_table_init_windows(
                        memory.cast(),
                        size,
                        usize::from(capacity),
                        tiers,
                        count,
                        policy % 3,
                        k0,
                        k1,
                        out,
                    );
                    check_out(&w, status);
                    if status == tg_status::Ok {
                        w.table = out.read_unaligned();
                    }
                }
                Op::TableDecide(t, hi, lo, tier, now, cost, out) => {
                    let (t, out) = (w.table(t), w.out(out));
                    let key = tg_key { hi, lo: lo % 64 };
                    let s =
                        tg_table_decide(t, key, usize::from(tier % 6), now.get(), cost.get(), out);
                    check_out(&w, s);
                }
                Op::TablePeek(t, hi, lo, tier, now, cost, out) => {
                    let (t, out) = (w.table(t), w.out(out));
                    let key = tg_key { hi, lo: lo % 64 };
                    let s =
                        tg_table_peek(t, key, usize::from(tier % 6), now.get(), cost.get(), out);
                    check_out(&w, s);
                }
                Op::TableCheck(t, hi, lo, tier, now, cost, out) => {
                    let t = w.table(t);
                    let out = out.map_or(ptr::null_mut(), |o| w.out(o));
                    let r = tg_table_check(
                        t,
                        hi,
                        lo % 64,
                        usize::from(tier % 6),
                        now.get(),
                        cost.get(),
                        out,
                    );
                    check_outcome(r);
                    if r < 0 && !out.is_null() {
                        assert!(w.out_untouched(), "out-parameter written on {r}");
                    }
                }
                Op::TablePeekKey(t, hi, lo, tier, now, cost, out) => {
                    let (t, out) = (w.table(t), w.out(out));
                    let s = tg_table_peek_key(
                        t,
                        hi,
                        lo % 64,
                        usize::from(tier % 6),
                        now.get(),
                        cost.get(),
                        out,
                    );
                    check_out(&w, s);
                }
                Op::TableCheckMany(t, keys, tier, now, cost) => {
                    let t = w.table(t);
                    let (hi, lo) = key_halves(&keys);
                    let mut out = vec![i32::MIN; hi.len()];
                    let s = tg_table_check_many(
                        t,
                        hi.as_ptr(),
                        lo.as_ptr(),
                        hi.len(),
                        usize::from(tier % 6),
                        now.get(),
                        cost.get(),
                        out.as_mut_ptr(),
                    );
                    if check(s) == tg_status::Ok {
                        out.iter().for_each(|&r| check_outcome(r));
                    } else {
                        assert!(
                            out.iter().all(|&r| r == i32::MIN),
                            "results written on {s:?}"
                        );
                    }
                }
                Op::TableDecideMany(t, keys, tier, now, cost) => {
                    let t = w.table(t);
                    let (hi, lo) = key_halves(&keys);
                    let mut out = vec![i32::MIN; hi.len()];
                    let blank = tg_decision {
                        outcome: 0,
                        verdict: 0,
                        flags: 0,
                        reserved: 0,
                        limit: 0,
                        used: 0,
                        remaining: 0,
                        retry_after: 0,
                        reset_after: 0,
                    };
                    let mut decisions = vec![blank; hi.len()];
                    let s = tg_table_decide_many(
                        t,
                        hi.as_ptr(),
                        lo.as_ptr(),
                        hi.len(),
                        usize::from(tier % 6),
                        now.get(),
                        cost.get(),
                        decisions.as_mut_ptr(),
                        out.as_mut_ptr(),
                    );
                    if check(s) == tg_status::Ok {
                        for (&r, d) in out.iter().zip(&decisions) {
                            check_outcome(r);
                            // A decision is written exactly for a request that got an outcome
                            // (a table's limit is never 0).
                            if r < 0 {
                                assert_eq!(*d, blank, "decision written on {r}");
                            } else {
                                assert!(d.outcome.cast_signed() == r && d.limit != 0, "{d:?}");
                            }
                        }
                    } else {
                        assert!(
                            out.iter().all(|&r| r == i32::MIN),
                            "results written on {s:?}"
                        );
                    }
                }
                Op::TableStats(t, out) => {
                    let (t, out) = (w.table(t), w.out(out));
                    check_out(&w, tg_table_get_stats(t, out));
                }
                Op::TableProbeLen(t, hi, lo, out) => {
                    let (t, out) = (w.table(t), w.out(out));
                    check_out(&w, tg_table_probe_len(t, tg_key { hi, lo }, out));
                }
                Op::KeyPair(app, shop) => {
                    assert_eq!(tg_key_pair(app, shop), tg_key { hi: app, lo: shop });
                }
                Op::KeyTriple(app, shop, api) => {
                    let k = tg_key_triple(app, shop, api);
                    assert_eq!(
                        k,
                        tg_key {
                            hi: (u64::from(app) << 32) | u64::from(api),
                            lo: shop
                        }
                    );
                }
                Op::TableKeyBytes(t, b, out) => {
                    let t = w.table(t);
                    let (p, len) = w.input(b);
                    let out = w.out(out);
                    check_out(&w, tg_table_key_bytes(t, p, len, out));
                }
                Op::TableKeyParts(t, b, out) => {
                    let t = w.table(t);
                    let (p, len) = w.input(b);
                    let out = w.out(out);
                    // `len / 8` whole u64s; the pointer may be misaligned for u64.
                    check_out(&w, tg_table_key_parts(t, p.cast(), len / 8, out));
                }
                Op::TableKeyTriple(t, a, s, i, out) => {
                    let t = w.table(t);
                    let out = w.out(out);
                    check_out(&w, tg_table_key_triple(t, a, s, i, out));
                }
                Op::BucketPacerInit(o, b, c, p, j) => {
                    check(tg_bucket_pacer_init(
                        w.obj(o),
                        b.get(),
                        c.get(),
                        p.get(),
                        j.get(),
                    ));
                }
                Op::BucketPacerNextSend(o, now, cost, out) => {
                    let (x, out) = (w.obj(o), w.out(out));
                    check_out(&w, tg_bucket_pacer_next_send(x, now.get(), cost.get(), out));
                }
                Op::BucketPacerAcquire(o, now, cost, out) => {
                    let (x, out) = (w.obj(o), w.out(out));
                    check_out(&w, tg_bucket_pacer_acquire(x, now.get(), cost.get(), out));
                }
                Op::BucketPacerReserve(o, now, cost, out) => {
                    let (x, out) = (w.obj(o), w.out(out));
                    check_out(&w, tg_bucket_pacer_reserve(x, now.get(), cost.get(), out));
                }
                Op::BucketPacerObserve(o, sent, used, limit) => {
                    let x = w.obj(o);
                    check(tg_bucket_pacer_observe_call_limit(
                        x,
                        sent.get(),
                        used.get(),
                        limit.get(),
                    ));
                }
                Op::BucketPacerBlockUntil(o, until) => {
                    check(tg_bucket_pacer_block_until(w.obj(o), until.get()));
                }
                Op::BucketPacerSync(o, [sent, now, unix, tps], limit, retry) => {
                    let x = w.obj(o);
                    let ((l, l_len), (r, r_len)) = (w.input(limit), w.input(retry));
                    check(tg_bucket_pacer_sync(
                        x,
                        sent.get(),
                        now.get(),
                        unix.get(),
                        tps.get(),
                        l.cast(),
                        l_len,
                        r.cast(),
                        r_len,
                    ));
                }
                Op::LogPacerInit(o, n, win, j) => {
                    check(tg_log_pacer_init(w.obj(o), n.get(), win.get(), j.get()));
                }
                Op::LogPacerNextSend(o, now, cost, out) => {
                    let (x, out) = (w.obj(o), w.out(out));
                    check_out(&w, tg_log_pacer_next_send(x, now.get(), cost.get(), out));
                }
                Op::LogPacerAcquire(o, now, cost, out) => {
                    let (x, out) = (w.obj(o), w.out(out));
                    check_out(&w, tg_log_pacer_acquire(x, now.get(), cost.get(), out));
                }
                Op::LogPacerReserve(o, now, cost, out) => {
                    let (x, out) = (w.obj(o), w.out(out));
                    check_out(&w, tg_log_pacer_reserve(x, now.get(), cost.get(), out));
                }
                Op::LogPacerObserve(o, sent, used, limit) => {
                    let x = w.obj(o);
                    check(tg_log_pacer_observe_call_limit(
                        x,
                        sent.get(),
                        used.get(),
                        limit.get(),
                    ));
                }
                Op::LogPacerBlockUntil(o, until) => {
                    check(tg_log_pacer_block_until(w.obj(o), until.get()));
                }
                Op::LogPacerSync(o, [sent, now, unix, tps], limit, retry) => {
                    let x = w.obj(o);
                    let ((l, l_len), (r, r_len)) = (w.input(limit), w.input(retry));
                    check(tg_log_pacer_sync(
                        x,
                        sent.get(),
                        now.get(),
                        unix.get(),
                        tps.get(),
                        l.cast(),
                        l_len,
                        r.cast(),
                        r_len,
                    ));
                }
                Op::CallLimitParse(b, out) => {
                    let (p, len) = w.input(b);
                    let out = w.out(out);
                    check_out(&w, tg_call_limit_parse(p.cast(), len, out));
                }
                Op::RetryAfterParse(b, unix, out) => {
                    let (p, len) = w.input(b);
                    let out = w.out(out);
                    check_out(&w, tg_retry_after_parse(p.cast(), len, unix, out));
                }
                Op::BackoffInit(o, base, cap, max, jitter, seed) => {
                    let x = w.obj(o);
                    check(tg_backoff_init(x, base.get(), cap.get(), max, jitter, seed));
                }
                Op::BackoffNextDelay(o, retry_after, a, b) => {
                    let x = w.obj(o);
                    let (a, b): (*mut bool, *mut u64) = (w.out(a), w.out(b));
                    let b = if a.is_null() {
                        b
                    } else {
                        a.cast::<u8>().wrapping_add(40).cast()
                    };
                    check_out(&w, tg_backoff_next_delay(x, retry_after.get(), a, b));
                }
                Op::BackoffRetries(o, out) => {
                    let (x, out) = (w.obj(o), w.out(out));
                    check_out(&w, tg_backoff_retries(x, out));
                }
                Op::BackoffReset(o) => {
                    check(tg_backoff_reset(w.obj(o)));
                }
                Op::BudgetInit(o, window, per_mille, floor) => {
                    check(tg_retry_budget_init(
                        w.obj(o),
                        window.get(),
                        per_mille,
                        floor.get(),
                    ));
                }
                Op::BudgetRecordSuccess(o, now) => {
                    check(tg_retry_budget_record_success(w.obj(o), now.get()));
                }
                Op::BudgetAvailable(o, now, out) => {
                    let (x, out) = (w.obj(o), w.out(out));
                    check_out(&w, tg_retry_budget_available(x, now.get(), out));
                }
                Op::BudgetTryRetry(o, now, out) => {
                    let (x, out) = (w.obj(o), w.out(out));
                    check_out(&w, tg_retry_budget_try_retry(x, now.get(), out));
                }
                Op::ClassOfStatus(status, out) => {
                    let out = w.out(out);
                    check_out(&w, tg_retry_class_of_status(status, out));
                }
                Op::ClassOfOutcome(outcome, out) => {
                    let out = w.out(out);
                    check_out(&w, tg_retry_class_of_outcome(outcome, out));
                }
                Op::ClassOfTransportError(out) => {
                    let out = w.out(out);
                    check_out(&w, tg_retry_class_of_transport_error(out));
                }
                Op::RetryNextStep(class, now, retry_after, backoff, budget, out) => {
                    let (b, g) = w.two(backoff, budget);
                    let out = w.out(out);
                    let s = tg_retry_next_step(class, now.get(), retry_after.get(), b, g, out);
                    check_out(&w, s);
                }
                Op::QueueInit(o) => {
                    check(tg_request_queue_init(w.obj(o)));
                }
                Op::QueuePush(o, id) => {
                    check(tg_request_queue_push(w.obj(o), id));
                }
                Op::QueuePop(o, a, b) => {
                    let x = w.obj(o);
                    let (a, b): (*mut bool, *mut u64) = (w.out(a), w.out(b));
                    let b = if a.is_null() {
                        b
                    } else {
                        a.cast::<u8>().wrapping_add(40).cast()
                    };
                    check_out(&w, tg_request_queue_pop(x, a, b));
                }
                Op::QueueLen(o, out) => {
                    let (x, out) = (w.obj(o), w.out(out));
                    check_out(&w, tg_request_queue_len(x, out));
                }
                Op::QueueReleaseBucket(q, p, now, out) => {
                    let (q, p) = w.two(q, p);
                    let out = w.out(out);
                    check_out(&w, tg_request_queue_release_bucket(q, p, now.get(), out));
                }
                Op::QueueReleaseLog(q, p, now, out) => {
                    let (q, p) = w.two(q, p);
                    let out = w.out(out);
                    check_out(&w, tg_request_queue_release_log(q, p, now.get(), out));
                }
                Op::StatusStr(status) => {
                    let s = std::ffi::CStr::from_ptr(tg_status_str(status));
                    assert!(!s.to_bytes().is_empty());
                }
                Op::Version => {
                    let n = tg_version_number();
                    let s = std::ffi::CStr::from_ptr(tg_version_string())
                        .to_str()
                        .unwrap();
                    let parts: Vec<u32> = s.split('.').map(|p| p.parse().unwrap()).collect();
                    assert_eq!(n, parts[0] * 10_000 + parts[1] * 100 + parts[2]);
                }
            }
        }
    }
}

/// Several out-parameters of one call share the out arena: place them 8 bytes apart after the
/// first (NULL stays NULL).
fn offset<T>(p: *mut T, first: *mut T, by: usize) -> *mut T {
    if p.is_null() || first.is_null() {
        p
    } else {
        first.cast::<u8>().wrapping_add(by + 32).cast()
    }
}

fuzz_target!(|input: Input| run(input));
