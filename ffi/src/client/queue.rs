//! `tg_request_queue`: a lock-free queue of request ids released at a pacer's times.

use tollgate::client::{Mirror, Pacer, Release, RequestQueue};
use tollgate::LeakyBucket;

use super::pacer::{tg_bucket_pacer, tg_log_pacer, Log};
use crate::boundary::{self, guard, init_target, object, with, Exclusive, Out, Stored};
use crate::status::tg_status;

/// The most request ids a `tg_request_queue` holds.
pub const TG_REQUEST_QUEUE_CAPACITY: usize = 64;

/// Words (`uint64_t`) in a `tg_request_queue`.
pub const TG_REQUEST_QUEUE_WORDS: usize = 131;

/// A lock-free multi-producer, multi-consumer queue of up to `TG_REQUEST_QUEUE_CAPACITY` request
/// ids (a `uint64_t` each: an index into your own table of requests, a handle), released at a
/// pacer's times by `tg_request_queue_release_bucket` / `_log`: producers on any thread push;
/// a dispatcher holding the pacer releases.
///
/// A producer pre-empted in the middle of a push holds back the ids behind it: pop and release
/// report empty until it resumes — nothing blocks, spins or is lost; try again at the next tick.
///
/// Fixed-size plain memory (about 1 KiB): `static tg_request_queue q = TG_REQUEST_QUEUE_INIT;`
/// then `tg_request_queue_init` once before sharing it. Nothing is allocated. The fields are
/// private.
#[repr(C, align(8))]
pub struct tg_request_queue {
    _private: [u64; TG_REQUEST_QUEUE_WORDS],
}

type Queue = RequestQueue<TG_REQUEST_QUEUE_CAPACITY>;

impl Stored for Queue {
    type C = tg_request_queue;
    const MAGIC: u64 = boundary::magic(*b"tgrqueue");
}

const _: () = assert!(boundary::fits::<Queue>());

/// What a release hands out (`tg_release.action`).
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum tg_release_action {
    /// Send request `id` at `at` (normally `now`); the pacer has counted it.
    Send = 0,
    /// Requests are waiting, but the pacer allows the next one only at `at`.
    Wait = 1,
    /// Nothing is queued.
    Empty = 2,
}

/// The answer of `tg_request_queue_release_*`.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct tg_release {
    /// A `tg_release_action`.
    pub action: u32,
    /// Always 0; keeps the 64-bit fields aligned in every language.
    pub reserved: u32,
    /// For `TG_RELEASE_ACTION_SEND`: the request id that was pushed; 0 otherwise.
    pub id: u64,
    /// For `TG_RELEASE_ACTION_SEND`: when to send; for `TG_RELEASE_ACTION_WAIT`: when to ask
    /// again; 0 for `TG_RELEASE_ACTION_EMPTY`.
    pub at: u64,
}

impl From<Release> for tg_release {
    fn from(r: Release) -> tg_release {
        let (action, id, at) = match r {
            Release::Send { id, at } => (tg_release_action::Send, id, at),
            Release::Wait(at) => (tg_release_action::Wait, 0, at),
            Release::Empty => (tg_release_action::Empty, 0, 0),
        };
        tg_release {
            action: action as u32,
            reserved: 0,
            id,
            at,
        }
    }
}

/// Initialises an empty queue.
///
/// Errors: `TG_STATUS_NULL_POINTER`, `TG_STATUS_MISALIGNED`.
///
/// # Safety
///
/// `queue` is NULL or points to a `tg_request_queue` valid for writes, which no other thread
/// uses during the call.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tg_request_queue_init(queue: *mut tg_request_queue) -> tg_status {
    guard(|| {
        // SAFETY: forwarded contract.
        let target = unsafe { init_target::<Queue>(queue) }?;
        boundary::init(target, Queue::new());
        Ok(())
    })
}

/// Adds `id` at the back. Lock-free; safe from any number of threads.
///
/// Errors: `TG_STATUS_CAPACITY_EXCEEDED` (the queue is full: nothing was added),
/// `TG_STATUS_NULL_POINTER`, `TG_STATUS_MISALIGNED`, `TG_STATUS_UNINITIALIZED`.
///
/// # Safety
///
/// `queue` is NULL or points to a `tg_request_queue` valid for reads and writes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tg_request_queue_push(queue: *mut tg_request_queue, id: u64) -> tg_status {
    guard(|| {
        // SAFETY: forwarded contract.
        let q = unsafe { object::<Queue>(queue) }?;
        q.push(id).map_err(|_| tg_status::CapacityExceeded)
    })
}

/// Takes the id at the front without asking a pacer (to cancel or drain): `*out_found` is true
/// and `*out_id` the id, or `*out_found` is false and `*out_id` 0 if nothing is queued.
/// Lock-free; safe from any number of threads.
///
/// Errors: `TG_STATUS_NULL_POINTER`, `TG_STATUS_MISALIGNED`, `TG_STATUS_UNINITIALIZED` (the outs
/// are checked before anything is taken).
///
/// # Safety
///
/// `queue` is NULL or points to a `tg_request_queue` valid for reads and writes; `out_found` and
/// `out_id` are NULL or valid for writes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tg_request_queue_pop(
    queue: *mut tg_request_queue,
    out_found: *mut bool,
    out_id: *mut u64,
) -> tg_status {
    guard(|| {
        // SAFETY: forwarded contract.
        let q = unsafe { object::<Queue>(queue) }?;
        // SAFETY: forwarded contract.
        let found = unsafe { Out::new(out_found) }?;
        // SAFETY: forwarded contract.
        let id = unsafe { Out::new(out_id) }?;
        let popped = q.pop();
        found.set(popped.is_some());
        id.set(popped.unwrap_or(0));
        Ok(())
    })
}

/// Ids pushed and not yet taken, at some moment during the call, written to `*out_len`.
///
/// Errors: `TG_STATUS_NULL_POINTER`, `TG_STATUS_MISALIGNED`, `TG_STATUS_UNINITIALIZED`.
///
/// # Safety
///
/// `queue` is NULL or points to a `tg_request_queue` valid for reads; `out_len` is NULL or
/// valid for a write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tg_request_queue_len(
    queue: *const tg_request_queue,
    out_len: *mut usize,
) -> tg_status {
    guard(|| {
        // SAFETY: forwarded contract.
        let q = unsafe { object::<Queue>(queue) }?;
        // SAFETY: forwarded contract.
        let out = unsafe { Out::new(out_len) }?;
        out.set(q.len());
        Ok(())
    })
}

/// # Safety
///
/// `queue` is NULL or valid for reads and writes of a `tg_request_queue`; `pacer` is NULL or
/// valid for reads and writes of its C struct; `out` is NULL or valid for a write.
unsafe fn release_with<M: Mirror>(
    queue: *mut tg_request_queue,
    pacer: *mut <Exclusive<Pacer<M>> as Stored>::C,
    now: u64,
    out: *mut tg_release,
) -> tg_status
where
    Exclusive<Pacer<M>>: Stored,
{
    guard(|| {
        // SAFETY: forwarded contract.
        let q = unsafe { object::<Queue>(queue) }?;
        // SAFETY: forwarded contract.
        let out = unsafe { Out::new(out) }?;
        // SAFETY: forwarded contract.
        let r = unsafe { with(pacer, |p| Ok(q.release(p, now)?)) }?;
        out.set(tg_release::from(r));
        Ok(())
    })
}

/// Releases the next request (of cost 1) if `pacer` allows one at `now`:
/// `TG_RELEASE_ACTION_SEND` with its id (the pacer has counted it); `TG_RELEASE_ACTION_WAIT`
/// with the pacer's time, the queue left as it is; `TG_RELEASE_ACTION_EMPTY` if nothing is
/// queued. Several dispatchers may share the queue (each pacer one caller at a time).
///
/// Errors: `TG_STATUS_CLOCK_OUT_OF_RANGE`, `TG_STATUS_BUSY` (the pacer),
/// `TG_STATUS_NULL_POINTER`, `TG_STATUS_MISALIGNED`, `TG_STATUS_UNINITIALIZED` (either object).
/// No id is lost on an error.
///
/// # Safety
///
/// `queue` is NULL or points to a `tg_request_queue` valid for reads and writes; `pacer` is NULL
/// or points to a `tg_bucket_pacer` valid for reads and writes; `out` is NULL or valid for a
/// write of a `tg_release`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tg_request_queue_release_bucket(
    queue: *mut tg_request_queue,
    pacer: *mut tg_bucket_pacer,
    now: u64,
    out: *mut tg_release,
) -> tg_status {
    // SAFETY: forwarded contract.
    unsafe { release_with::<LeakyBucket>(queue, pacer, now, out) }
}

/// As `tg_request_queue_release_bucket`, paced by a `tg_log_pacer`.
///
/// Errors: `TG_STATUS_BUSY` (the pacer), `TG_STATUS_NULL_POINTER`, `TG_STATUS_MISALIGNED`,
/// `TG_STATUS_UNINITIALIZED` (either object).
///
/// # Safety
///
/// As `tg_request_queue_release_bucket`, with `pacer` a `tg_log_pacer`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tg_request_queue_release_log(
    queue: *mut tg_request_queue,
    pacer: *mut tg_log_pacer,
    now: u64,
    out: *mut tg_release,
) -> tg_status {
    // SAFETY: forwarded contract.
    unsafe { release_with::<Log>(queue, pacer, now, out) }
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::mem::size_of;

    #[test]
    fn the_c_struct_holds_exactly_its_value_on_this_host() {
        use boundary::Slot;
        assert_eq!(size_of::<Slot<Queue>>(), size_of::<tg_request_queue>());
    }
}
