//! loom models of every CAS loop: `LeakyBucket::decide`/`peek`, `FixedWindow::decide`/`peek`,
//! `ConcurrencyLimit::try_acquire`/`release`, with two and three threads; and
//! `WrappingClock::now` racing a counter that wraps.
//!
//! For every interleaving loom explores, the answers the threads got (and what the limiter
//! answers afterwards) must be exactly those of some sequential order of the same calls, run
//! through a sequential reference: the plain model where every order keeps time non-decreasing,
//! otherwise the same limiter type driven by one thread (whose sequential behaviour, backward
//! clocks included, the proptests prove against the model). So the total admitted equals some
//! sequential order's total, and no reported number is torn.
//!
//! Run with `bash scripts/test-loom.sh` (`RUSTFLAGS="--cfg loom"`, its own target directory).
#![cfg(loom)]

use tollgate_models as models;
use tollgate_models::Model as _;

use loom::sync::atomic::{AtomicU32, Ordering};
use loom::sync::Arc;
use loom::thread;
use tollgate::{
    ConcurrencyLimit, Decision, Error, FixedWindow, LeakyBucket, Quota, WindowQuota, WrappingClock,
};

/// One call on a limiter.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Call {
    Decide(u64, u64),
    Peek(u64, u64),
    Acquire,
    /// `release()` without a matching acquire.
    Release,
    /// `release()` of the slot this thread's last `Acquire` got, if it got one.
    ReleaseHeld,
}

/// What a call answered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Answer {
    Decision(Result<Decision, Error>),
    Released(Result<(), Error>),
}

/// A limiter as the threads see it.
trait Limiter: Send + Sync + 'static {
    fn call(&self, call: Call) -> Answer;
}

impl Limiter for LeakyBucket {
    fn call(&self, call: Call) -> Answer {
        match call {
            Call::Decide(now, cost) => Answer::Decision(self.decide(now, cost)),
            Call::Peek(now, cost) => Answer::Decision(self.peek(now, cost)),
            other => unreachable!("{other:?} on a bucket"),
        }
    }
}

impl Limiter for FixedWindow {
    fn call(&self, call: Call) -> Answer {
        match call {
            Call::Decide(now, cost) => Answer::Decision(self.decide(now, cost)),
            Call::Peek(now, cost) => Answer::Decision(self.peek(now, cost)),
            other => unreachable!("{other:?} on a window"),
        }
    }
}

impl Limiter for ConcurrencyLimit {
    fn call(&self, call: Call) -> Answer {
        match call {
            Call::Acquire => Answer::Decision(Ok(self.try_acquire())),
            Call::Release | Call::ReleaseHeld => Answer::Released(self.release()),
            other => unreachable!("{other:?} on a concurrency limit"),
        }
    }
}

/// A sequential reference: answers calls one at a time, and can be copied mid-run.
trait Reference: Clone {
    fn call(&mut self, call: Call) -> Answer;
}

impl Reference for models::Gcra {
    fn call(&mut self, call: Call) -> Answer {
        match call {
            Call::Decide(now, cost) => Answer::Decision(self.decide(now, cost)),
            Call::Peek(now, cost) => Answer::Decision(self.peek(now, cost)),
            other => unreachable!("{other:?} on a bucket"),
        }
    }
}

impl Reference for models::FixedWindow {
    fn call(&mut self, call: Call) -> Answer {
        match call {
            Call::Decide(now, cost) => Answer::Decision(self.decide(now, cost)),
            Call::Peek(now, cost) => Answer::Decision(self.peek(now, cost)),
            other => unreachable!("{other:?} on a window"),
        }
    }
}

impl Reference for models::Concurrency {
    fn call(&mut self, call: Call) -> Answer {
        match call {
            Call::Acquire => Answer::Decision(Ok(self.try_acquire())),
            Call::Release | Call::ReleaseHeld => Answer::Released(self.release()),
            other => unreachable!("{other:?} on a concurrency limit"),
        }
    }
}

/// The limiter itself, driven by one thread: copied by replaying its calls into a fresh one.
struct Sequential<L> {
    make: fn() -> L,
    limiter: L,
    log: Vec<Call>,
}

impl<L: Limiter> Sequential<L> {
    fn new(make: fn() -> L) -> Self {
        Sequential {
            make,
            limiter: make(),
            log: Vec::new(),
        }
    }
}

impl<L: Limiter> Clone for Sequential<L> {
    fn clone(&self) -> Self {
        let mut copy = Sequential::new(self.make);
        for &call in &self.log {
            copy.call(call);
        }
        copy
    }
}

impl<L: Limiter> Reference for Sequential<L> {
    fn call(&mut self, call: Call) -> Answer {
        self.log.push(call);
        self.limiter.call(call)
    }
}

type History = Vec<(Call, Answer)>;

/// Runs a thread's program, recording each call and answer.
fn run_program(limiter: &dyn Limiter, program: &[Call]) -> History {
    let mut history = Vec::new();
    let mut held = false;
    for &call in program {
        if call == Call::ReleaseHeld && !held {
            continue;
        }
        let answer = limiter.call(call);
        if call == Call::Acquire {
            held = matches!(answer, Answer::Decision(Ok(d)) if d.is_allowed());
        }
        if call == Call::ReleaseHeld {
            held = false;
        }
        history.push((call, answer));
    }
    history
}

/// Is there an order of the threads' histories (each kept in program order), followed by
/// `after`, in which the reference gives every recorded answer?
fn some_order_explains<R: Reference>(
    reference: &R,
    histories: &[History],
    next: &mut [usize],
    after: &History,
) -> bool {
    let mut done = true;
    for t in 0..histories.len() {
        let Some(&(call, answer)) = histories[t].get(next[t]) else {
            continue;
        };
        done = false;
        let mut r = reference.clone();
        if r.call(call) != answer {
            continue;
        }
        next[t] += 1;
        let found = some_order_explains(&r, histories, next, after);
        next[t] -= 1;
        if found {
            return true;
        }
    }
    if !done {
        return false;
    }
    let mut r = reference.clone();
    after.iter().all(|&(call, answer)| r.call(call) == answer)
}

/// Explores every interleaving of `programs` on a limiter made by `make`, after `setup` calls,
/// and checks each against the sequential reference made by `reference`.
fn check<L: Limiter, R: Reference + 'static>(
    make: fn() -> L,
    reference: fn() -> R,
    setup: &'static [Call],
    programs: &'static [&'static [Call]],
    after: &'static [Call],
) {
    loom::model(move || {
        let limiter = Arc::new(make());
        let mut base = reference();
        for &call in setup {
            assert_eq!(limiter.call(call), base.call(call), "setup {call:?}");
        }
        let handles: Vec<_> = programs
            .iter()
            .map(|&program| {
                let limiter = Arc::clone(&limiter);
                thread::spawn(move || run_program(&*limiter, program))
            })
            .collect();
        let histories: Vec<History> = handles.into_iter().map(|h| h.join().unwrap()).collect();
        let finals: History = after.iter().map(|&c| (c, limiter.call(c))).collect();
        let mut next = vec![0; histories.len()];
        assert!(
            some_order_explains(&base, &histories, &mut next, &finals),
            "no sequential order explains {histories:#?} then {finals:#?}"
        );
    });
}

// Leaky bucket: B = 2, one per 10 ticks.

fn bucket() -> LeakyBucket {
    LeakyBucket::new(Quota::new(2, 1, 10).unwrap())
}

fn bucket_model() -> models::Gcra {
    models::Gcra::new(2, 1, 10).unwrap()
}

fn bucket_itself() -> Sequential<LeakyBucket> {
    Sequential::new(bucket)
}

#[test]
fn bucket_two_threads_two_decisions_each_at_one_time() {
    check(
        bucket,
        bucket_model,
        &[],
        &[
            &[Call::Decide(0, 1), Call::Decide(0, 1)],
            &[Call::Decide(0, 1), Call::Decide(0, 1)],
        ],
        &[Call::Peek(0, 1)],
    );
}

#[test]
fn bucket_two_threads_decide_and_peek_racing() {
    check(
        bucket,
        bucket_model,
        &[Call::Decide(3, 1)],
        &[
            &[Call::Decide(5, 1), Call::Peek(5, 2)],
            &[Call::Peek(5, 1), Call::Decide(5, 1)],
        ],
        &[Call::Peek(5, 1)],
    );
}

#[test]
fn bucket_two_threads_with_clocks_apart() {
    // The threads' clocks disagree: some orders step time back.
    check(
        bucket,
        bucket_itself,
        &[Call::Decide(0, 2)],
        &[
            &[Call::Decide(15, 1), Call::Peek(30, 2)],
            &[Call::Decide(10, 1), Call::Decide(12, 1)],
        ],
        &[Call::Peek(30, 1)],
    );
}

#[test]
fn bucket_three_threads_one_call_each() {
    check(
        bucket,
        bucket_model,
        &[],
        &[
            &[Call::Decide(0, 1)],
            &[Call::Decide(0, 2)],
            &[Call::Decide(0, 1)],
        ],
        &[Call::Peek(0, 1)],
    );
}

#[test]
fn bucket_three_threads_decide_peek_and_drained_time() {
    // A peek at a later time into a drained bucket records that time in the state.
    check(
        bucket,
        bucket_itself,
        &[Call::Decide(0, 1)],
        &[
            &[Call::Peek(40, 1)],
            &[Call::Decide(8, 1)],
            &[Call::Decide(5, 1)],
        ],
        &[Call::Peek(40, 2)],
    );
}

#[test]
fn bucket_three_threads_two_calls_each() {
    check(
        bucket,
        bucket_model,
        &[Call::Decide(0, 1)],
        &[
            &[Call::Decide(4, 1), Call::Peek(4, 1)],
            &[Call::Peek(4, 2), Call::Decide(4, 1)],
            &[Call::Decide(4, 1), Call::Decide(4, 1)],
        ],
        &[Call::Peek(4, 1)],
    );
}

// Fixed window: N = 2, windows of 10 ticks. The model is exact for any order (docs/semantics.md#fixed-window).

fn window() -> FixedWindow {
    FixedWindow::new(WindowQuota::new(2, 10).unwrap())
}

fn window_model() -> models::FixedWindow {
    models::FixedWindow::new(2, 10, 0).unwrap()
}

#[test]
fn window_two_threads_two_decisions_each() {
    check(
        window,
        window_model,
        &[],
        &[
            &[Call::Decide(3, 1), Call::Decide(4, 1)],
            &[Call::Decide(3, 1), Call::Decide(5, 1)],
        ],
        &[Call::Peek(9, 1)],
    );
}

#[test]
fn window_two_threads_across_an_edge() {
    check(
        window,
        window_model,
        &[Call::Decide(8, 1)],
        &[
            &[Call::Decide(9, 1), Call::Peek(12, 2)],
            &[Call::Decide(11, 2), Call::Decide(9, 1)],
        ],
        &[Call::Peek(19, 1)],
    );
}

#[test]
fn window_three_threads_one_call_each() {
    check(
        window,
        window_model,
        &[],
        &[
            &[Call::Decide(5, 2)],
            &[Call::Decide(15, 1)],
            &[Call::Peek(25, 1)],
        ],
        &[Call::Peek(25, 2)],
    );
}

// Concurrency limit.

fn one_slot() -> ConcurrencyLimit {
    ConcurrencyLimit::new(1)
}

fn two_slots() -> ConcurrencyLimit {
    ConcurrencyLimit::new(2)
}

#[test]
fn concurrency_two_threads_acquire_and_release() {
    check(
        one_slot,
        || models::Concurrency::new(1),
        &[],
        &[
            &[
                Call::Acquire,
                Call::ReleaseHeld,
                Call::Acquire,
                Call::ReleaseHeld,
            ],
            &[Call::Acquire, Call::ReleaseHeld],
        ],
        &[Call::Release],
    );
}

#[test]
fn concurrency_three_threads_with_a_stray_release() {
    check(
        two_slots,
        || models::Concurrency::new(2),
        &[],
        &[
            &[Call::Acquire, Call::ReleaseHeld],
            &[Call::Acquire],
            &[Call::Release],
        ],
        &[Call::Acquire],
    );
}

#[test]
fn concurrency_three_threads_contend_for_two_slots() {
    check(
        two_slots,
        || models::Concurrency::new(2),
        &[],
        &[
            &[Call::Acquire, Call::ReleaseHeld],
            &[Call::Acquire, Call::ReleaseHeld],
            &[Call::Acquire, Call::ReleaseHeld],
        ],
        &[Call::Release],
    );
}

// Wrapping clock: two readers race a 32-bit counter that wraps (MAX − 1 → MAX → 0).

#[test]
fn wrapping_clock_readers_racing_a_wrap_never_see_a_false_wrap() {
    loom::model(|| {
        let start = u32::MAX - 1;
        let hw = Arc::new(AtomicU32::new(start));
        let clock = Arc::new(WrappingClock::new());
        assert_eq!(clock.now(|| hw.load(Ordering::Acquire)), u64::from(start));
        let readers: Vec<_> = [2, 1]
            .into_iter()
            .map(|reads| {
                let (hw, clock) = (Arc::clone(&hw), Arc::clone(&clock));
                thread::spawn(move || {
                    (0..reads)
                        .map(|_| clock.now(|| hw.load(Ordering::Acquire)))
                        .collect::<Vec<u64>>()
                })
            })
            .collect();
        let ticker = {
            let hw = Arc::clone(&hw);
            thread::spawn(move || {
                hw.fetch_add(1, Ordering::Release);
                hw.fetch_add(1, Ordering::Release);
            })
        };
        ticker.join().unwrap();
        let first = u64::from(start);
        for reader in readers {
            let seen = reader.join().unwrap();
            // Each value is one the counter really had, extended: never off by a wrap.
            assert!(
                seen.iter().all(|&t| (first..=first + 2).contains(&t)),
                "{seen:?}"
            );
            assert!(seen.windows(2).all(|w| w[0] <= w[1]), "{seen:?}");
        }
        assert_eq!(clock.now(|| hw.load(Ordering::Acquire)), first + 2);
    });
}
