//! The pacer (docs/semantics.md#client-toolkit): its "next send" time is exact, it honours Retry-After, its sync never
//! lowers the mirror, and — the point of it all — the jitter margins keep a server that
//! enforces the real rules from ever refusing a paced request, whatever the delays in `0..=J`
//! and whatever the server's window alignment.

use proptest::prelude::*;
use tollgate::client::{safe_burst, safe_window, CallLimit, Pace, Pacer};
use tollgate::{Error, FixedWindow, LeakyBucket, Quota, SlidingLog, WindowQuota};

/// Sends `gaps.len()` requests through `pacer`: each wants to go `gap` ticks after the previous
/// send and goes at the pacer's earliest time from then. Returns the send times.
fn paced_sends<M: tollgate::client::Mirror>(pacer: &mut Pacer<M>, gaps: &[u64]) -> Vec<u64> {
    let mut t = 0;
    let mut sends = Vec::new();
    for &gap in gaps {
        t += gap;
        loop {
            match pacer.acquire(t, 1).unwrap() {
                Pace::Send => break,
                Pace::Wait(at) => {
                    assert!(at > t);
                    t = at;
                }
                Pace::Never => panic!("cost 1 is never Never"),
            }
        }
        sends.push(t);
    }
    sends
}

/// Arrival times: each send delayed by its own delay in 0..=jitter, in the order they arrive.
fn arrivals(sends: &[u64], delays: &[u64], jitter: u64) -> Vec<u64> {
    let mut a: Vec<u64> = sends
        .iter()
        .zip(delays)
        .map(|(&s, &d)| s + d % (jitter + 1))
        .collect();
    a.sort_unstable();
    a
}

proptest! {
    #[test]
    fn a_safe_burst_mirror_never_overflows_the_servers_bucket(
        burst in 1u64..40,
        count in 1u64..6,
        period in 50u64..3_000,
        jitter in 0u64..3_000,
        gaps in proptest::collection::vec(prop_oneof![3 => Just(0u64), 1 => 0u64..2_000], 1..200),
        delays in proptest::collection::vec(any::<u64>(), 200),
    ) {
        let server_quota = Quota::new(burst, count, period).unwrap();
        let Ok(mirror) = safe_burst(&server_quota, jitter) else {
            // Not even one request of burst is left: the margin is refused, not silently zero.
            prop_assert!(jitter * count > (burst - 1) * period);
            return Ok(());
        };
        prop_assert_eq!(mirror.burst(), burst - (jitter * count).div_ceil(period));
        let mut pacer = Pacer::new(LeakyBucket::new(mirror));
        let sends = paced_sends(&mut pacer, &gaps);
        let server = LeakyBucket::new(server_quota);
        for a in arrivals(&sends, &delays, jitter) {
            let d = server.decide(a, 1).unwrap();
            prop_assert!(d.is_allowed(), "refused at {} (sends {:?})", a, sends);
        }
    }

    #[test]
    fn a_safe_window_mirror_never_overflows_a_fixed_or_sliding_window(
        limit in 1u64..40,
        window in 10u64..3_000,
        offset_frac in 0u64..1_000,
        jitter in 0u64..3_000,
        gaps in proptest::collection::vec(prop_oneof![3 => Just(0u64), 1 => 0u64..2_000], 1..200),
        delays in proptest::collection::vec(any::<u64>(), 200),
    ) {
        let quota = WindowQuota::new(limit, window).unwrap();
        let offset = window * offset_frac / 1_000;
        let fixed = FixedWindow::new(quota.with_offset(offset).unwrap());
        let mut sliding: SlidingLog<64> = SlidingLog::new(quota).unwrap();
        let mut pacer = Pacer::new(SlidingLog::<64>::new(safe_window(&quota, jitter).unwrap()).unwrap());
        let sends = paced_sends(&mut pacer, &gaps);
        for a in arrivals(&sends, &delays, jitter) {
            prop_assert!(fixed.decide(a, 1).unwrap().is_allowed(), "fixed window refused at {}", a);
            prop_assert!(sliding.decide(a, 1).unwrap().is_allowed(), "sliding log refused at {}", a);
        }
    }

    #[test]
    fn next_send_is_the_earliest_admitting_time(
        gaps in proptest::collection::vec(0u64..700, 0..60),
        probe in 0u64..20_000,
        block in proptest::option::of(0u64..20_000),
    ) {
        let mut pacer = Pacer::new(LeakyBucket::new(Quota::new(5, 2, 1_000).unwrap()));
        let _ = paced_sends(&mut pacer, &gaps);
        if let Some(b) = block {
            pacer.block_until(b);
        }
        let t = pacer.next_send(probe, 1).unwrap().unwrap();
        prop_assert!(t >= probe && t >= pacer.blocked_until());
        let mirror = pacer.mirror();
        prop_assert!(mirror.peek(t, 1).unwrap().is_allowed());
        if t > probe && t > pacer.blocked_until() {
            prop_assert!(!mirror.peek(t - 1, 1).unwrap().is_allowed());
        }
        // Acquiring before t waits until exactly t; at t it sends.
        if t > probe {
            prop_assert_eq!(pacer.acquire(probe, 1).unwrap(), Pace::Wait(t));
        }
        prop_assert_eq!(pacer.acquire(t, 1).unwrap(), Pace::Send);
    }

    #[test]
    fn sync_raises_to_the_servers_remaining_and_never_lowers(
        sends in 0u64..30,
        used_frac in 0u64..=100,
        at in 0u64..20_000,
        margin in 0u64..5,
    ) {
        let server = Quota::new(30, 2, 1_000).unwrap();
        let mirror = Quota::new(30 - margin, 2, 1_000).unwrap();
        let mut pacer = Pacer::new(LeakyBucket::new(mirror));
        for _ in 0..sends.min(30 - margin) {
            prop_assert_eq!(pacer.acquire(0, 1).unwrap(), Pace::Send);
        }
        let before = pacer.mirror().peek(at, 1).unwrap();
        let used = server.burst() * used_frac / 100;
        pacer.observe_call_limit(at, CallLimit { used, limit: 30 }).unwrap();
        let after = pacer.mirror().peek(at, 1).unwrap();
        prop_assert!(after.used >= before.used);
        prop_assert!(after.remaining <= 30 - used);
        prop_assert_eq!(after.used, before.used.max(used.saturating_sub(margin)));
    }
}

#[test]
fn retry_after_blocks_every_send_until_it_passes() {
    let mut pacer = Pacer::new(LeakyBucket::new(Quota::new(30, 2, 1_000).unwrap()));
    pacer
        .sync(0, 100, 1_700_000_000, 1_000, None, Some(b"3"))
        .unwrap();
    assert_eq!(pacer.blocked_until(), 3_100);
    for t in [100, 1_000, 3_099] {
        assert_eq!(pacer.acquire(t, 1).unwrap(), Pace::Wait(3_100));
    }
    assert_eq!(pacer.acquire(3_100, 1).unwrap(), Pace::Send);
    // A shorter block later does not shorten it; an HTTP-date works the same way.
    pacer.block_until(5);
    assert_eq!(pacer.blocked_until(), 3_100);
    pacer
        .sync(
            0,
            4_000,
            784_111_770,
            1_000,
            None,
            Some(b"Sun, 06 Nov 1994 08:49:37 GMT"),
        )
        .unwrap();
    assert_eq!(pacer.blocked_until(), 11_000);
}

#[test]
fn malformed_headers_are_reported_and_not_applied() {
    let mut pacer = Pacer::new(LeakyBucket::new(Quota::new(30, 2, 1_000).unwrap()));
    let r = pacer.sync(0, 0, 0, 1_000, Some(b"31/30"), Some(b"2"));
    assert_eq!(r, Err(Error::Malformed));
    assert_eq!(pacer.mirror().peek(0, 1).unwrap().used, 0);
    assert_eq!(pacer.blocked_until(), 2_000); // the valid header was applied
    let r = pacer.sync(0, 0, 0, 1_000, Some(b"22/30"), Some(b"soon"));
    assert_eq!(r, Err(Error::Malformed));
    assert_eq!(pacer.mirror().peek(0, 1).unwrap().used, 22);
    assert_eq!(pacer.blocked_until(), 2_000);
}

#[test]
fn a_sliding_log_mirror_takes_in_a_count_too() {
    let q = WindowQuota::new(50, 1_000).unwrap();
    let mut pacer = Pacer::new(SlidingLog::<50>::new(q).unwrap());
    assert_eq!(pacer.acquire(0, 1).unwrap(), Pace::Send);
    pacer
        .observe_call_limit(
            10,
            CallLimit {
                used: 50,
                limit: 50,
            },
        )
        .unwrap();
    // Full: the real entry at 0 leaves first (at 1 000), then the 49 phantoms at 10 (1 010).
    assert_eq!(pacer.next_send(20, 1).unwrap(), Some(1_000));
    assert_eq!(pacer.next_send(20, 2).unwrap(), Some(1_010));
    let mut reserved = Pacer::new(SlidingLog::<50>::new(q).unwrap());
    for i in 0..50 {
        assert_eq!(reserved.reserve(0, 1).unwrap(), Some(0), "{i}");
    }
    assert_eq!(reserved.reserve(0, 1).unwrap(), Some(1_000));
    assert_eq!(reserved.reserve(0, 51).unwrap(), None);
}

#[test]
fn reserve_books_consecutive_slots_on_a_bucket() {
    static SHARED: LeakyBucket = LeakyBucket::new(match Quota::new(1, 1, 100) {
        Ok(q) => q,
        Err(_) => panic!(),
    });
    let mut pacer = Pacer::new(LeakyBucket::new(Quota::new(2, 2, 1_000).unwrap()));
    let slots: Vec<_> = (0..5)
        .map(|_| pacer.reserve(0, 1).unwrap().unwrap())
        .collect();
    assert_eq!(slots, [0, 0, 500, 1_000, 1_500]);
    // A shared static mirror works the same way through `&LeakyBucket`.
    let mut a = Pacer::new(&SHARED);
    let mut b = Pacer::new(&SHARED);
    assert_eq!(a.acquire(0, 1).unwrap(), Pace::Send);
    assert_eq!(b.acquire(0, 1).unwrap(), Pace::Wait(100));
    assert_eq!(b.reserve(0, 1).unwrap(), Some(100));
    assert_eq!(a.next_send(0, 1).unwrap(), Some(200));
}

/// Why the margin: an exact mirror of ShopBase's bucket is overrun by 200 ms of jitter (30
/// sends at 0 that arrive late, then one sent at 500 ms that arrives at once), and the safe
/// burst of 29 is not.
#[test]
fn an_exact_mirror_is_overrun_by_jitter_and_the_safe_burst_is_not() {
    let server_quota = Quota::new(30, 2, 1_000).unwrap(); // milliseconds
    let run = |mirror: Quota| {
        let mut pacer = Pacer::new(LeakyBucket::new(mirror));
        let sends = paced_sends(
            &mut pacer,
            &vec![0; usize::try_from(mirror.burst()).unwrap() + 1],
        );
        let server = LeakyBucket::new(server_quota);
        // Every request of the burst is delayed 200 ms; the next one, sent at 500 ms, none.
        let (burst, last) = sends.split_at(sends.len() - 1);
        assert_eq!(last, [500]);
        let mut refused = 0;
        for &s in burst {
            refused += u32::from(!server.decide(s + 200, 1).unwrap().is_allowed());
        }
        refused + u32::from(!server.decide(last[0], 1).unwrap().is_allowed())
    };
    assert_eq!(run(server_quota), 1);
    assert_eq!(run(safe_burst(&server_quota, 200).unwrap()), 0);
}
