//! Simulation, a faulty server: the ShopBase server behind a front that sheds 5 % of
//! the calls with 503. The toolkit client (pacer, backoff with full jitter, retry budget) must
//! see every call eventually succeed, with no 429, and its retries within the budget.
//!
//! Run with `cargo test -p tollgate --test sim_faulty -- --nocapture` to see the figures.

mod sim_support;

use sim_support::{pct, run, secs, App, Shedding, ShopBase, MS, SEC};
use tollgate::client::{safe_burst, Backoff, Jitter, Pacer, RetryBudget};
use tollgate::{LeakyBucket, Quota};

const CALLS: u64 = 4_000;
/// The budget: 10 % of the successes of the last minute, plus 5.
const WINDOW: u64 = 60 * SEC;
const PER_MILLE: u64 = 100;
const FLOOR: u64 = 5;

#[test]
fn every_call_eventually_succeeds_and_retries_stay_within_the_budget() {
    let mirror = safe_burst(&Quota::new(30, 2, SEC).unwrap(), 200 * MS).unwrap();
    for seed in [11, 12] {
        let app = App {
            workers: 8,
            calls: CALLS,
            latency: 200 * MS,
            seed,
            pacer: Some(Pacer::new(LeakyBucket::new(mirror))),
            backoff: Backoff::new(500 * MS, 30 * SEC, 8, Jitter::Full).unwrap(),
            budget: RetryBudget::new(WINDOW, 100, FLOOR).unwrap(),
            naive_wait: SEC,
        };
        let server = Shedding {
            inner: ShopBase::new(),
            per_mille: 50,
        };
        let r = run(app, server);
        println!(
            "faulty ShopBase (5 % shed with 503, seed {seed}): {} calls ok, {} x 503, {} retries \
             ({} of the calls), {} x 429, {} refused by the budget, done at {} s",
            r.ok,
            r.status_503,
            r.retries,
            pct(r.retries, CALLS),
            r.status_429,
            r.budget_refusals,
            secs(r.makespan)
        );
        assert_eq!((r.ok, r.failed, r.budget_refusals), (CALLS, 0, 0));
        assert_eq!(r.status_429, 0);
        assert!(r.status_503 > 0, "the front shed nothing?");
        // Every 503 was retried, and only those.
        assert_eq!(r.retries, r.status_503);
        // The budget's bound, from the outside: the retries granted in any window of W never
        // exceed the floor plus 10 % of the successes of the 2 W before its end (each grant was
        // judged on the window ending at its own time, inside that span).
        for (i, &t) in r.retries_at.iter().enumerate() {
            let from = t.saturating_sub(WINDOW);
            let retries = r.retries_at[..=i].iter().filter(|&&x| x > from).count() as u64;
            let earned_from = t.saturating_sub(2 * WINDOW);
            let successes = r
                .successes_at
                .iter()
                .filter(|&&x| x > earned_from && x <= t)
                .count() as u64;
            assert!(
                retries <= FLOOR + successes * PER_MILLE / 1000,
                "{retries} retries in the minute before {} s, {successes} successes",
                secs(t)
            );
        }
    }
}
