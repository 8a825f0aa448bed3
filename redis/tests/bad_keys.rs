//! One bad key never fails the node: a key holding another type (`WRONGTYPE`) or a garbage
//! state is repaired as full, deterministically, under either policy; a command Redis refuses
//! for one key (here `NOPERM` from an ACL) is answered by the policy for that request alone.
//! In every case the other keys of the same batch keep their exact answers, the connection and
//! the circuit are untouched, and nothing is admitted that a full bucket would not admit.

mod common;

use redis::Commands;
use tollgate::{Decision, Error, FixedWindow, LeakyBucket, Outcome, Quota, WindowQuota};
use tollgate_redis::{Config, FailurePolicy, RedisLimiter, Request};

const SECOND: u64 = 1_000;

fn limiter(prefix: &str, policy: FailurePolicy, url: String) -> RedisLimiter {
    let mut config = Config::new(url, SECOND);
    prefix.clone_into(&mut config.prefix);
    config.policy = policy;
    config.timeout = std::time::Duration::from_secs(5);
    RedisLimiter::new(config).unwrap()
}

/// What a bucket repaired as full at `now` answers: the core's bucket, filled at `now`.
fn full_bucket(q: Quota, now: u64) -> LeakyBucket {
    let b = LeakyBucket::new(q);
    assert!(b.decide(now, q.burst()).unwrap().is_allowed());
    b
}

fn full_window(q: WindowQuota, now: u64) -> FixedWindow {
    let w = FixedWindow::new(q);
    assert!(w.decide(now, q.limit()).unwrap().is_allowed());
    w
}

#[test]
#[ignore = "needs a Redis server: scripts/test-redis.sh"]
fn wrongtype_and_garbage_states_are_repaired_as_full_while_other_keys_stay_exact() {
    let q = Quota::new(5, 1, SECOND).unwrap();
    let w = WindowQuota::new(4, SECOND).unwrap();
    for policy in [FailurePolicy::Open, FailurePolicy::Closed] {
        let prefix = common::fresh_prefix("badkeys");
        let l = limiter(&prefix, policy, common::url());
        let mut con = common::connection();
        let bk = |k: &str| format!("{prefix}b:{k}");
        let wk = |k: &str| format!("{prefix}w:{k}");
        // Bad buckets: another type, a state above u64, a non-number, a negative number, a
        // leading zero, a missing fingerprint, a missing state, a fingerprint not of this crate.
        let _: () = con.set(bk("string"), "x").unwrap();
        let _: () = con.rpush(bk("list"), "x").unwrap();
        let fp = "5:1:1000";
        for (name, fields) in [
            ("huge", vec![("s", "99999999999999999999999"), ("q", fp)]),
            ("u64max+1", vec![("s", "18446744073709551616"), ("q", fp)]),
            ("text", vec![("s", "abc"), ("q", fp)]),
            ("negative", vec![("s", "-5"), ("q", fp)]),
            ("leading0", vec![("s", "01"), ("q", fp)]),
            ("no-q", vec![("s", "0")]),
            ("no-s", vec![("q", fp)]),
            ("foreign", vec![("s", "0"), ("q", "made-by-someone-else")]),
        ] {
            let _: () = con.hset_multiple(bk(name), &fields).unwrap();
        }
        // Bad windows: another type, a count above N, a bad index, a foreign fingerprint.
        let _: () = con.set(wk("string"), "x").unwrap();
        let wfp = "4:1000:0";
        for (name, fields) in [
            ("over", vec![("i", "1"), ("c", "5"), ("q", wfp)]),
            (
                "huge",
                vec![("i", "1"), ("c", "99999999999999999999"), ("q", wfp)],
            ),
            ("index", vec![("i", "x"), ("c", "0"), ("q", wfp)]),
            ("foreign", vec![("i", "1"), ("c", "0"), ("q", "???")]),
        ] {
            let _: () = con.hset_multiple(wk(name), &fields).unwrap();
        }
        let bad_buckets = [
            "string", "list", "huge", "u64max+1", "text", "negative", "leading0", "no-q", "no-s",
            "foreign",
        ];
        let bad_windows = ["string", "over", "huge", "index", "foreign"];
        let healthy: Vec<String> = (0..20).map(|i| format!("good{i}")).collect();

        let now = 100;
        let mut batch: Vec<Request<'_>> = Vec::new();
        for k in &healthy {
            batch.push(Request::decide(k, q, now, 1));
        }
        for k in bad_buckets {
            batch.push(Request::decide(k, q, now, 1));
        }
        for k in &healthy {
            batch.push(Request::decide(k, w, now, 1));
        }
        for k in bad_windows {
            batch.push(Request::decide(k, w, now, 1));
        }
        let got = l.decide_batch(&batch);
        let good_bucket = LeakyBucket::new(q).decide(now, 1);
        let good_window = FixedWindow::new(w).decide(now, 1);
        let repaired_bucket = full_bucket(q, now).decide(now, 1);
        let repaired_window = full_window(w, now).decide(now, 1);
        let mut expected: Vec<Result<Decision, Error>> = Vec::new();
        expected.extend(healthy.iter().map(|_| good_bucket));
        expected.extend(bad_buckets.iter().map(|_| repaired_bucket));
        expected.extend(healthy.iter().map(|_| good_window));
        expected.extend(bad_windows.iter().map(|_| repaired_window));
        assert_eq!(got, expected, "{policy:?}");
        assert_eq!(repaired_bucket.unwrap().outcome, Outcome::Limited);
        assert_eq!(repaired_window.unwrap().outcome, Outcome::Limited);
        let stats = l.stats();
        assert_eq!(
            (stats.failures, stats.policy_answers, stats.server_errors),
            (0, 0, 0),
            "{stats:?}"
        );
        assert_eq!(
            stats.repaired,
            (bad_buckets.len() + bad_windows.len()) as u64
        );

        // Repaired keys then follow the exact rule from a full bucket (window): one at a time
        // as the bucket drains, the next window fresh; and they are repaired only once.
        for k in bad_buckets {
            let reference = full_bucket(q, now);
            for t in [now, now + 999, now + 1_000, now + 1_000, now + 2_500] {
                assert_eq!(l.decide(k, q, t, 1), reference.decide(t, 1), "{k} at {t}");
            }
        }
        for k in bad_windows {
            let reference = full_window(w, now);
            for t in [now, 999, 1_000, 1_001, 1_500] {
                assert_eq!(l.decide(k, w, t, 1), reference.decide(t, 1), "{k} at {t}");
            }
        }
        assert_eq!(
            l.stats().repaired,
            (bad_buckets.len() + bad_windows.len()) as u64
        );
        // The repaired keys expire once drained, like any other.
        let ttl: i64 = con.pttl(bk("string")).unwrap();
        assert!(ttl > 0, "{ttl}");
    }
}

#[test]
#[ignore = "needs a Redis server: scripts/test-redis.sh"]
fn a_window_repaired_in_a_later_window_keeps_that_window() {
    // A stored index ahead of now (a node whose clock leads) with a count above N: the repair
    // fills the stored (later) window, not now's, so no window gets a free burst.
    let w = WindowQuota::new(4, SECOND).unwrap();
    let prefix = common::fresh_prefix("laterwindow");
    let l = limiter(&prefix, FailurePolicy::Open, common::url());
    let mut con = common::connection();
    let _: () = con
        .hset_multiple(
            format!("{prefix}w:k"),
            &[("i", "5"), ("c", "9"), ("q", "4:1000:0")],
        )
        .unwrap();
    let reference = full_window(w, 4_500); // window 5 full
    for t in [100, 2_000, 4_999, 5_000, 5_001] {
        assert_eq!(l.decide("k", w, t, 1), reference.decide(t, 1), "at {t}");
    }
    assert_eq!(l.stats().repaired, 1);
}

#[test]
#[ignore = "needs a Redis server: scripts/test-redis.sh"]
fn a_command_refused_for_one_key_is_answered_by_the_policy_for_that_request_alone() {
    // An ACL user allowed only keys under `{prefix}b:good*`: Redis answers NOPERM for any other
    // key, a per-command error the scripts cannot repair.
    let prefix = common::fresh_prefix("noperm");
    let user = format!("tg{}", std::process::id());
    let mut admin = common::connection();
    let _: () = redis::cmd("ACL")
        .arg("SETUSER")
        .arg(&user)
        .arg("reset")
        .arg("on")
        .arg(">pw")
        .arg(format!("~{prefix}b:good*"))
        .arg("+@all")
        .query(&mut admin)
        .unwrap();
    let url = format!("redis://{user}:pw@127.0.0.1:{}/", common::port());
    let q = Quota::new(3, 1, SECOND).unwrap();
    for policy in [FailurePolicy::Open, FailurePolicy::Closed] {
        let l = limiter(&prefix, policy, url.clone());
        let tag = format!("{policy:?}");
        let good: Vec<String> = (0..20).map(|i| format!("good{tag}{i}")).collect();
        let reference = LeakyBucket::new(q);
        let mut expected = Vec::new();
        let mut batch = Vec::new();
        for _ in 0..4 {
            for k in &good {
                batch.push(Request::decide(k, q, 0, 1));
            }
            batch.push(Request::decide("bad", q, 0, 1));
            // Each good key's round-th decision: 3 admitted, then denied.
            expected.push(reference.decide(0, 1));
        }
        let got = l.decide_batch(&batch);
        let per_round = good.len() + 1;
        for (round, e) in expected.iter().enumerate() {
            for i in 0..good.len() {
                assert_eq!(
                    got[round * per_round + i],
                    *e,
                    "{tag} round {round} key {i}"
                );
            }
            let bad = got[round * per_round + good.len()].unwrap();
            assert_eq!(bad, l.policy_decision(&q.into()), "{tag}");
            match policy {
                FailurePolicy::Open => assert!(bad.is_fail_open()),
                FailurePolicy::Closed => assert_eq!(bad.outcome, Outcome::Overloaded),
            }
        }
        let stats = l.stats();
        assert_eq!(
            stats.failures, 0,
            "{tag}: the circuit stayed closed: {stats:?}"
        );
        assert_eq!((stats.server_errors, stats.policy_answers), (4, 4), "{tag}");
        assert_eq!(stats.round_trips, 1, "{tag}");
        // The next call goes to Redis at once (no retry interval), on the same connection.
        let d = l.decide(&good[0], q, 3_000, 1).unwrap();
        assert_eq!(d, LeakyBucket::new(q).decide(0, 1).unwrap());
        assert_eq!(l.stats().round_trips, 2, "{tag}");
        let d = l.decide("bad", q, 0, 1).unwrap();
        assert_eq!(d, l.policy_decision(&q.into()));
        assert_eq!(l.stats().failures, 0);
    }
    let _: () = redis::cmd("ACL")
        .arg("DELUSER")
        .arg(&user)
        .query(&mut admin)
        .unwrap();
}
