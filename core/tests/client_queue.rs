//! The lock-free request queue (docs/semantics.md#client-toolkit): a sequential model check, a multi-threaded
//! exactly-once check, and release at the pacer's times.

use std::collections::VecDeque;
use std::sync::Arc;
use std::thread;

use proptest::prelude::*;
use tollgate::client::{Pacer, Release, RequestQueue};
use tollgate::{LeakyBucket, Quota};

proptest! {
    #[test]
    fn behaves_like_a_bounded_fifo(ops in proptest::collection::vec(proptest::option::of(any::<u64>()), 0..400)) {
        let q: RequestQueue<8> = RequestQueue::new();
        let mut model = VecDeque::new();
        for op in ops {
            if let Some(id) = op {
                let expected = if model.len() < 8 {
                    model.push_back(id);
                    Ok(())
                } else {
                    Err(id)
                };
                prop_assert_eq!(q.push(id), expected);
            } else {
                prop_assert_eq!(q.pop(), model.pop_front());
            }
            prop_assert_eq!(q.len(), model.len());
            prop_assert_eq!(q.is_empty(), model.is_empty());
        }
    }
}

#[test]
fn many_producers_many_consumers_every_id_exactly_once_in_order() {
    const PRODUCERS: u64 = 4;
    const PER_PRODUCER: u64 = 20_000;
    let q: Arc<RequestQueue<64>> = Arc::new(RequestQueue::new());
    let producers: Vec<_> = (0..PRODUCERS)
        .map(|p| {
            let q = Arc::clone(&q);
            thread::spawn(move || {
                for i in 0..PER_PRODUCER {
                    let mut id = p << 32 | i;
                    while let Err(back) = q.push(id) {
                        id = back;
                        thread::yield_now();
                    }
                }
            })
        })
        .collect();
    let consumers: Vec<_> = (0..2)
        .map(|_| {
            let q = Arc::clone(&q);
            thread::spawn(move || {
                let mut got = Vec::new();
                let mut idle = 0u32;
                while idle < 100_000 {
                    if let Some(id) = q.pop() {
                        got.push(id);
                        idle = 0;
                    } else {
                        idle += 1;
                        thread::yield_now();
                    }
                }
                got
            })
        })
        .collect();
    for p in producers {
        p.join().unwrap();
    }
    let mut all = Vec::new();
    for c in consumers {
        let got = c.join().unwrap();
        // Each consumer sees each producer's ids in the order they were pushed.
        for p in 0..PRODUCERS {
            let mine: Vec<u64> = got.iter().copied().filter(|id| id >> 32 == p).collect();
            assert!(
                mine.windows(2).all(|w| w[0] < w[1]),
                "producer {p} reordered"
            );
        }
        all.extend(got);
    }
    while let Some(id) = q.pop() {
        all.push(id);
    }
    all.sort_unstable();
    let expected: Vec<u64> = (0..PRODUCERS)
        .flat_map(|p| (0..PER_PRODUCER).map(move |i| p << 32 | i))
        .collect();
    assert_eq!(all, expected);
}

#[test]
fn a_full_queue_hands_the_id_back() {
    let q: RequestQueue<2> = RequestQueue::new();
    assert_eq!(q.capacity(), 2);
    assert_eq!(q.push(1), Ok(()));
    assert_eq!(q.push(2), Ok(()));
    assert_eq!(q.push(3), Err(3));
    assert_eq!(q.pop(), Some(1));
    assert_eq!(q.push(3), Ok(()));
    assert_eq!((q.pop(), q.pop(), q.pop()), (Some(2), Some(3), None));
}

/// Producers push from several threads; one dispatcher releases in simulated time. Every id
/// comes out once, and the release times are exactly what a server with the same bucket admits.
#[test]
fn releases_follow_the_pacer_and_a_server_admits_them_all() {
    static QUEUE: RequestQueue<128> = RequestQueue::new();
    let quota = Quota::new(10, 4, 1_000).unwrap();
    let producers: Vec<_> = (0..4u64)
        .map(|p| thread::spawn(move || (0..30).for_each(|i| QUEUE.push(p * 100 + i).unwrap())))
        .collect();
    for p in producers {
        p.join().unwrap();
    }
    let mut pacer = Pacer::new(LeakyBucket::new(quota));
    let server = LeakyBucket::new(quota);
    let mut now = 0;
    let mut released = Vec::new();
    loop {
        match QUEUE.release(&mut pacer, now).unwrap() {
            Release::Send { id, at } => {
                assert_eq!(at, now);
                assert!(server.decide(at, 1).unwrap().is_allowed());
                released.push((id, at));
            }
            Release::Wait(t) => {
                assert!(t > now);
                now = t;
            }
            Release::Empty => break,
        }
    }
    assert_eq!(released.len(), 120);
    // 10 at once, then one every 250 ticks: the last of 120 at (120 − 10) · 250.
    assert_eq!(released.last().unwrap().1, 110 * 250);
    let mut ids: Vec<u64> = released.iter().map(|&(id, _)| id).collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), 120);
}
