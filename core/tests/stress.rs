//! Threads hammering one limiter: the totals are exactly what the quota allows.
//!
//! Two threads decide on one limiter a million times each, over a simulated clock that advances
//! in phases: in phase k both threads decide at tick T_k, each more often than the quota
//! refills between phases. Whichever thread reaches a phase first fills the limiter at T_k; a
//! thread still in an earlier phase is judged at the later time (never more leniently). So
//! however the threads interleave, the total admitted equals the reference model's for one
//! thread's schedule run sequentially — the bound the quota allows.

use tollgate_models as models;
use tollgate_models::Model as _;

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::Barrier;
use std::thread;

use tollgate::{ConcurrencyLimit, Error, FixedWindow, LeakyBucket, Outcome, Quota, WindowQuota};

/// Decisions per thread.
const PER_THREAD: u64 = 1_000_000;

const THREADS: usize = 2;

/// Runs `work(thread index)` on `THREADS` threads started together; returns their results.
fn on_threads<T: Send>(work: impl Fn(usize) -> T + Sync) -> Vec<T> {
    let start = Barrier::new(THREADS);
    thread::scope(|s| {
        let handles: Vec<_> = (0..THREADS)
            .map(|i| {
                let (start, work) = (&start, &work);
                s.spawn(move || {
                    start.wait();
                    work(i)
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    })
}

#[test]
fn two_threads_on_one_leaky_bucket_admit_exactly_the_quota() {
    // B = 10, 3 per 1 000 ticks; phases 777 ticks apart drain 2.331 units, refilled by the
    // 8 decisions each thread makes per phase.
    let (burst, count, period) = (10, 3, 1_000);
    let (gap, per_phase) = (777u64, 8u64);
    let phases = PER_THREAD / per_phase;
    let bucket = LeakyBucket::new(Quota::new(burst, count, period).unwrap());

    let mut model = models::Gcra::new(burst, count, period).unwrap();
    let mut bound = 0u64;
    for k in 0..phases {
        for _ in 0..per_phase {
            bound += u64::from(model.decide(k * gap, 1).unwrap().is_allowed());
        }
    }
    let last = (phases - 1) * gap;
    assert_eq!(bound, burst + count * last / period);

    let admitted = on_threads(|_| {
        let mut admitted = 0u64;
        for k in 0..phases {
            for _ in 0..per_phase {
                let d = bucket.decide(k * gap, 1).unwrap();
                assert!(d.used <= burst && d.remaining == burst - d.used);
                match d.outcome {
                    Outcome::Allowed => admitted += 1,
                    Outcome::Limited => assert!(d.retry_after.unwrap() > 0),
                    other => panic!("unexpected {other:?}"),
                }
            }
        }
        admitted
    });
    assert_eq!(
        admitted.iter().sum::<u64>(),
        bound,
        "per thread: {admitted:?}"
    );
    // The bucket ends full at the last phase.
    assert_eq!(bucket.peek(last, 1).unwrap().outcome, Outcome::Limited);
}

#[test]
fn a_shared_advancing_clock_never_lets_threads_exceed_the_quota() {
    // Every decision takes the next tick of a shared clock; threads may present their ticks out
    // of order, which the bucket judges at the latest tick: never more than the quota allows.
    let (burst, count, period) = (5, 1, 7);
    let bucket = LeakyBucket::new(Quota::new(burst, count, period).unwrap());
    let clock = AtomicU64::new(0);
    let admitted = on_threads(|_| {
        let mut admitted = 0u64;
        for _ in 0..PER_THREAD {
            let now = clock.fetch_add(1, Ordering::Relaxed);
            admitted += u64::from(bucket.decide(now, 1).unwrap().is_allowed());
        }
        admitted
    });
    let total: u64 = admitted.iter().sum();
    let last = clock.load(Ordering::Relaxed) - 1;
    assert!(
        total <= burst + count * last / period,
        "{total} admitted by tick {last}"
    );
    // And not absurdly fewer: the quota was saturated most of the time.
    assert!(
        total >= count * last / period / 2,
        "{total} admitted by tick {last}"
    );
}

#[test]
fn two_threads_on_one_fixed_window_admit_exactly_n_per_window() {
    let (limit, window, offset) = (5u64, 100u64, 37u64);
    let per_phase = 8u64;
    let phases = PER_THREAD / per_phase;
    let w = FixedWindow::new(
        WindowQuota::new(limit, window)
            .unwrap()
            .with_offset(offset)
            .unwrap(),
    );
    let at = |k: u64| offset + k * window + (k * 31) % window;

    let mut model = models::FixedWindow::new(limit, window, offset).unwrap();
    let mut bound = 0u64;
    for k in 0..phases {
        for _ in 0..per_phase {
            bound += u64::from(model.decide(at(k), 1).unwrap().is_allowed());
        }
    }
    assert_eq!(bound, limit * phases);

    let admitted = on_threads(|_| {
        let mut admitted = 0u64;
        for k in 0..phases {
            for _ in 0..per_phase {
                let d = w.decide(at(k), 1).unwrap();
                assert!(d.used <= limit);
                admitted += u64::from(d.is_allowed());
            }
        }
        admitted
    });
    assert_eq!(
        admitted.iter().sum::<u64>(),
        bound,
        "per thread: {admitted:?}"
    );
}

#[test]
fn two_threads_on_one_concurrency_limit_never_exceed_it_and_balance() {
    for max in [1u32, 3] {
        let limit = ConcurrencyLimit::new(max);
        let inside = AtomicU32::new(0);
        let counts = on_threads(|i| {
            let (mut admitted, mut refused) = (0u64, 0u64);
            for n in 0..PER_THREAD {
                // Alternate the two APIs: a bare acquire/release pair and a Permit.
                if (n + i as u64).is_multiple_of(2) {
                    let d = limit.try_acquire();
                    assert!(d.used <= u64::from(max));
                    if d.is_allowed() {
                        let now_inside = inside.fetch_add(1, Ordering::SeqCst) + 1;
                        assert!(now_inside <= max, "{now_inside} in flight, max {max}");
                        inside.fetch_sub(1, Ordering::SeqCst);
                        limit.release().unwrap();
                        admitted += 1;
                    } else {
                        assert_eq!(d.outcome, Outcome::Overloaded);
                        refused += 1;
                    }
                } else {
                    match limit.acquire() {
                        Ok(permit) => {
                            let now_inside = inside.fetch_add(1, Ordering::SeqCst) + 1;
                            assert!(now_inside <= max, "{now_inside} in flight, max {max}");
                            inside.fetch_sub(1, Ordering::SeqCst);
                            drop(permit);
                            admitted += 1;
                        }
                        Err(d) => {
                            assert_eq!((d.outcome, d.used), (Outcome::Overloaded, u64::from(max)));
                            refused += 1;
                        }
                    }
                }
            }
            (admitted, refused)
        });
        let total: u64 = counts.iter().map(|&(a, r)| a + r).sum();
        assert_eq!(total, PER_THREAD * THREADS as u64);
        // Every admitted slot was given back exactly once: nothing in flight, nothing to release.
        assert_eq!(limit.in_flight(), 0);
        assert_eq!(limit.release(), Err(Error::NotAcquired));
        if usize::try_from(max).unwrap() >= THREADS {
            // With a slot for every thread, nobody is ever refused.
            assert!(counts.iter().all(|&(_, r)| r == 0), "{counts:?}");
        }
    }
}
