//! A fixed-capacity, lock-free request queue that releases requests at the pacer's times, for
//! apps that stagger work from several producers (docs/semantics.md#client-toolkit; "stagger requests in a queue", as
//! both vendors' pages advise).
//!
//! Producers on any thread or interrupt [`push`](RequestQueue::push) request ids (a `u64`: an
//! index into the caller's own table of requests, a pointer-sized handle); a dispatcher holding
//! the [`Pacer`] calls [`release`](RequestQueue::release) and gets the next id when the pacer
//! allows, or the time to come back.
//!
//! # The queue
//!
//! Dmitry Vyukov's bounded MPMC queue (the algorithm `heapless::mpmc` and crossbeam's
//! `ArrayQueue` use), written here with safe atomics: each cell holds a sequence number and the
//! id, both `AtomicU64`, so the crate stays `forbid(unsafe_code)`, the capacity is any power of
//! two, it builds wherever the engine's atomics do (portable-atomic), and it runs on loom's
//! atomics under `--cfg loom`. Each push and pop claims a position with one CAS; no call waits
//! for another. As in every Vyukov queue, a producer pre-empted between claiming a cell and
//! publishing its id holds back the ids behind it: `pop` reports empty (and `push` full) until
//! it resumes — it never blocks, spins or loses an id. (heapless 0.9 deprecates its own
//! `mpmc::Queue` for this reason; here it is documented instead, and the dispatcher simply
//! tries again at its next tick.)

use crate::atomic::{AtomicU64, Ordering};
use crate::Error;

use super::{Mirror, Pacer};

#[derive(Debug)]
struct Cell {
    /// Vyukov's sequence number minus the cell's index, so that a new queue is all zeros.
    seq: AtomicU64,
    id: AtomicU64,
}

impl Cell {
    crate::atomic::const_fn! {
        fn new() -> Cell {
            Cell { seq: AtomicU64::new(0), id: AtomicU64::new(0) }
        }
    }
}

/// What [`RequestQueue::release`] hands out.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Release {
    /// Send this request at `at` (normally the `now` asked about; later only if a shared mirror
    /// was taken by someone else meanwhile). The pacer has counted it.
    Send {
        /// The request id that was pushed.
        id: u64,
        /// When to send it, in ticks.
        at: u64,
    },
    /// Requests are waiting, but the pacer allows the next one only at this time.
    Wait(u64),
    /// Nothing is queued.
    Empty,
}

/// A lock-free multi-producer, multi-consumer queue of `N` request ids (`N` a power of two,
/// at least 2).
///
/// ```
/// use tollgate::client::{Pacer, Release, RequestQueue};
/// use tollgate::{LeakyBucket, Quota};
/// static QUEUE: RequestQueue<8> = RequestQueue::new();
/// let mut pacer = Pacer::new(LeakyBucket::new(Quota::new(2, 1, 1_000).unwrap()));
/// for id in [10, 11, 12] {
///     QUEUE.push(id).unwrap(); // from any thread
/// }
/// assert_eq!(QUEUE.release(&mut pacer, 0).unwrap(), Release::Send { id: 10, at: 0 });
/// assert_eq!(QUEUE.release(&mut pacer, 0).unwrap(), Release::Send { id: 11, at: 0 });
/// assert_eq!(QUEUE.release(&mut pacer, 0).unwrap(), Release::Wait(1_000));
/// assert_eq!(QUEUE.release(&mut pacer, 1_000).unwrap(), Release::Send { id: 12, at: 1_000 });
/// assert_eq!(QUEUE.release(&mut pacer, 5_000).unwrap(), Release::Empty);
/// ```
#[derive(Debug)]
pub struct RequestQueue<const N: usize> {
    cells: [Cell; N],
    head: AtomicU64,
    tail: AtomicU64,
}

impl<const N: usize> Default for RequestQueue<N> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const N: usize> RequestQueue<N> {
    const MASK: u64 = {
        assert!(
            N >= 2 && N.is_power_of_two(),
            "capacity must be a power of two, at least 2"
        );
        N as u64 - 1
    };

    /// An empty queue; it can be a `static`.
    #[cfg(not(loom))]
    pub const fn new() -> Self {
        let _ = Self::MASK; // the capacity check, at compile time
        RequestQueue {
            cells: [const { Cell::new() }; N],
            head: AtomicU64::new(0),
            tail: AtomicU64::new(0),
        }
    }

    /// An empty queue.
    #[cfg(loom)]
    pub fn new() -> Self {
        let _ = Self::MASK;
        RequestQueue {
            cells: core::array::from_fn(|_| Cell::new()),
            head: AtomicU64::new(0),
            tail: AtomicU64::new(0),
        }
    }

    /// `N`.
    pub const fn capacity(&self) -> usize {
        N
    }

    fn cell(&self, pos: u64) -> (&Cell, u64) {
        let index = pos & Self::MASK;
        // index < N, so it is a valid usize index.
        (&self.cells[usize::try_from(index).unwrap_or(0)], index)
    }

    /// Adds `id` at the back; `Err(id)` if the queue is full.
    pub fn push(&self, id: u64) -> Result<(), u64> {
        let mut pos = self.tail.load(Ordering::Relaxed);
        loop {
            let (cell, index) = self.cell(pos);
            let seq = cell.seq.load(Ordering::Acquire).wrapping_add(index);
            // The wrapped difference read as signed: 0 free for `pos`, < 0 still full from the
            // previous lap (the queue is full), > 0 taken by another producer.
            match seq.wrapping_sub(pos).cast_signed().cmp(&0) {
                core::cmp::Ordering::Equal => {
                    match self.tail.compare_exchange_weak(
                        pos,
                        pos.wrapping_add(1),
                        Ordering::Relaxed,
                        Ordering::Relaxed,
                    ) {
                        Ok(_) => {
                            cell.id.store(id, Ordering::Relaxed);
                            cell.seq
                                .store(pos.wrapping_add(1).wrapping_sub(index), Ordering::Release);
                            return Ok(());
                        }
                        Err(actual) => pos = actual,
                    }
                }
                core::cmp::Ordering::Less => return Err(id),
                core::cmp::Ordering::Greater => pos = self.tail.load(Ordering::Relaxed),
            }
        }
    }

    /// Takes the id at the front, if any.
    pub fn pop(&self) -> Option<u64> {
        let mut pos = self.head.load(Ordering::Relaxed);
        loop {
            let (cell, index) = self.cell(pos);
            let seq = cell.seq.load(Ordering::Acquire).wrapping_add(index);
            // 0: filled for `pos`; < 0: not filled yet (empty); > 0: taken by another consumer.
            match seq.wrapping_sub(pos.wrapping_add(1)).cast_signed().cmp(&0) {
                core::cmp::Ordering::Equal => {
                    match self.head.compare_exchange_weak(
                        pos,
                        pos.wrapping_add(1),
                        Ordering::Relaxed,
                        Ordering::Relaxed,
                    ) {
                        Ok(_) => {
                            let id = cell.id.load(Ordering::Relaxed);
                            cell.seq.store(
                                pos.wrapping_add(N as u64).wrapping_sub(index),
                                Ordering::Release,
                            );
                            return Some(id);
                        }
                        Err(actual) => pos = actual,
                    }
                }
                core::cmp::Ordering::Less => return None,
                core::cmp::Ordering::Greater => pos = self.head.load(Ordering::Relaxed),
            }
        }
    }

    /// Ids pushed and not yet popped, at some moment during the call (a snapshot).
    pub fn len(&self) -> usize {
        let head = self.head.load(Ordering::Acquire);
        let tail = self.tail.load(Ordering::Acquire);
        usize::try_from(tail.wrapping_sub(head).min(N as u64)).unwrap_or(N)
    }

    /// `true` if [`len`](RequestQueue::len) is 0.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Releases the next request if `pacer` allows one (of cost 1) at `now`: [`Release::Send`]
    /// with its id; else [`Release::Wait`] with the pacer's time, leaving the queue as it is;
    /// [`Release::Empty`] if nothing is queued. The pacer's slot is booked before the id is
    /// taken, so an error never loses an id; if another consumer empties the queue in between,
    /// the booked slot goes unused (slower, never over the limit).
    pub fn release<M: Mirror>(&self, pacer: &mut Pacer<M>, now: u64) -> Result<Release, Error> {
        if self.is_empty() {
            return Ok(Release::Empty);
        }
        match pacer.next_send(now, 1)? {
            Some(t) if t > now => return Ok(Release::Wait(t)),
            // A capacity of at least 1 always admits a cost of 1 eventually.
            None => return Err(Error::CapacityExceeded),
            Some(_) => {}
        }
        let Some(at) = pacer.reserve(now, 1)? else {
            return Err(Error::CapacityExceeded);
        };
        Ok(match self.pop() {
            Some(id) => Release::Send { id, at },
            None => Release::Empty,
        })
    }
}
