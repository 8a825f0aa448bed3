//! Contention study, after the AWS Architecture Blog's "Exponential Backoff and
//! Jitter": N clients race to update one resource with optimistic concurrency. An attempt reads
//! the resource at t and writes at t + 10 ms; the write succeeds iff no other write succeeded in
//! between; otherwise the client backs off (base 10 ms, cap 2 s, no attempt limit) and tries
//! again. Per jitter strategy: the total calls and the time until every client has succeeded,
//! averaged over seeds. The table is printed (and copied in docs/client.md).
//!
//! Run with `cargo test -p tollgate --test sim_contention -- --nocapture` to see the figures.

mod sim_support;

use sim_support::{secs, Sim, SplitMix64, MS, SEC};
use tollgate::client::{Backoff, Jitter, Retries};

const ROUND_TRIP: u64 = 10 * MS;
const SEEDS: u64 = 5;

/// (total calls, completion time) for `clients` racing with `jitter`.
fn race(clients: usize, jitter: Jitter, seed: u64) -> (u64, u64) {
    let policy = Backoff::new(10 * MS, 2 * SEC, u32::MAX, jitter).unwrap();
    let mut rng = SplitMix64::new(seed);
    let mut retries: Vec<Retries> = vec![policy.start(); clients];
    // Events: a client's write lands, carrying the time it read the resource.
    let mut sim: Sim<(usize, u64)> = Sim::new();
    for c in 0..clients {
        sim.at(ROUND_TRIP, (c, 0));
    }
    let mut last_success: Option<u64> = None;
    let (mut calls, mut done) = (0u64, 0usize);
    while let Some((c, read_at)) = sim.next() {
        calls += 1;
        let now = sim.now;
        if last_success.is_none_or(|s| s <= read_at) {
            last_success = Some(now);
            done += 1;
            if done == clients {
                return (calls, now);
            }
        } else {
            let delay = retries[c].next_delay(None, &mut rng).unwrap();
            sim.at(now + delay + ROUND_TRIP, (c, now + delay));
        }
    }
    unreachable!("every client succeeds eventually")
}

fn name(j: Jitter) -> &'static str {
    match j {
        Jitter::None => "none",
        Jitter::Full => "full",
        Jitter::Equal => "equal",
        Jitter::Decorrelated => "decorrelated",
    }
}

#[test]
fn contention_study_per_jitter_strategy() {
    let strategies = [
        Jitter::None,
        Jitter::Full,
        Jitter::Equal,
        Jitter::Decorrelated,
    ];
    println!(
        "| clients | jitter | calls (mean of {SEEDS} seeds) | calls per client | completion (s) |"
    );
    println!("|---|---|---|---|---|");
    for clients in [5usize, 10, 25, 50, 100] {
        let n = clients as u64;
        let mut calls_by = Vec::new();
        for j in strategies {
            let (mut calls, mut time) = (0, 0);
            for seed in 0..SEEDS {
                let (c, t) = race(clients, j, seed);
                calls += c;
                time += t;
            }
            let (calls, time) = (calls / SEEDS, time / SEEDS);
            println!(
                "| {clients} | {} | {calls} | {}.{:02} | {} |",
                name(j),
                calls / n,
                calls * 100 / n % 100,
                secs(time)
            );
            calls_by.push((j, calls, time));
        }
        // No jitter: everyone collides every round and exactly one wins it, so the calls are
        // N + (N − 1) + … + 1.
        assert_eq!(calls_by[0].1, n * (n + 1) / 2);
        // With many clients each jittered strategy needs fewer calls than no jitter, as in the
        // article.
        if clients >= 25 {
            for &(j, calls, _) in &calls_by[1..] {
                assert!(calls < calls_by[0].1, "{} used {calls} calls", name(j));
            }
        }
    }
}

#[test]
fn a_lone_client_succeeds_at_once() {
    for j in [
        Jitter::None,
        Jitter::Full,
        Jitter::Equal,
        Jitter::Decorrelated,
    ] {
        assert_eq!(race(1, j, 0), (1, ROUND_TRIP));
    }
}
