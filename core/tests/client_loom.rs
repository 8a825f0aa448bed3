//! loom models of the client toolkit's lock-free pieces: the request queue (its push and pop
//! CAS loops, on the crate's own atomics, which are loom's under `--cfg loom`) and
//! `LeakyBucket::raise_level_to` racing `decide`.
//!
//! Run with `RUSTFLAGS="--cfg loom" cargo test -p tollgate --release --test client_loom
//! --target-dir target/loom` (or through `scripts/test-loom.sh` if it picks this file up).
#![cfg(loom)]

use loom::sync::Arc;
use loom::thread;
use tollgate::client::RequestQueue;
use tollgate::{LeakyBucket, Quota};

/// Two producers and a consumer at once: every id comes out exactly once, and each producer's
/// ids in the order it pushed them. (No thread spins: the consumer pops twice while the
/// producers run, then the rest is drained after they finish.)
#[test]
fn two_producers_one_consumer_exactly_once() {
    loom::model(|| {
        let q: Arc<RequestQueue<4>> = Arc::new(RequestQueue::new());
        let producers: Vec<_> = [&[1u64, 2][..], &[10][..]]
            .into_iter()
            .map(|ids| {
                let q = Arc::clone(&q);
                thread::spawn(move || ids.iter().for_each(|&id| q.push(id).unwrap()))
            })
            .collect();
        let mut got: Vec<u64> = [q.pop(), q.pop()].into_iter().flatten().collect();
        for p in producers {
            p.join().unwrap();
        }
        while let Some(id) = q.pop() {
            got.push(id);
        }
        let pos = |id| got.iter().position(|&g| g == id);
        assert!(pos(1).unwrap() < pos(2).unwrap(), "{got:?}");
        let mut sorted = got.clone();
        sorted.sort_unstable();
        assert_eq!(sorted, [1, 2, 10]);
    });
}

/// Two consumers race for two ids: each id goes to exactly one of them.
#[test]
fn two_consumers_never_share_an_id() {
    loom::model(|| {
        let q: Arc<RequestQueue<2>> = Arc::new(RequestQueue::new());
        q.push(7).unwrap();
        let producer = {
            let q = Arc::clone(&q);
            thread::spawn(move || q.push(8).unwrap())
        };
        let consumer = {
            let q = Arc::clone(&q);
            thread::spawn(move || q.pop())
        };
        let mine = q.pop();
        producer.join().unwrap();
        let theirs = consumer.join().unwrap();
        let mut all: Vec<u64> = [mine, theirs, q.pop(), q.pop()]
            .into_iter()
            .flatten()
            .collect();
        all.sort_unstable();
        assert_eq!(all, [7, 8]);
    });
}

/// A header sync racing a decision: the level ends at least at the raised value, and the
/// decision is one a sequential order would have given.
#[test]
fn raise_level_races_decide() {
    loom::model(|| {
        let b = Arc::new(LeakyBucket::new(Quota::new(3, 1, 1_000).unwrap()));
        let raiser = {
            let b = Arc::clone(&b);
            thread::spawn(move || b.raise_level_to(0, 2).unwrap())
        };
        let d = b.decide(0, 2).unwrap();
        raiser.join().unwrap();
        let used = b.peek(0, 1).unwrap().used;
        if d.is_allowed() {
            // Decided first (level 2), then raised to 2: no change; or raised first: 2 + 2 > 3.
            assert_eq!((d.used, used), (2, 2));
        } else {
            assert_eq!(used, 2);
        }
    });
}
