//! Simulation, TikTok Shop rules: 32 workers against a server that enforces a fixed
//! window of 50 per second (the engine's own `FixedWindow`) whose window edges sit at a random
//! offset the client does not know, with no count header. Network latency, each way, uniform in
//! 0..=J. The toolkit paces with a sliding log of 50 over W + M (M the margin): M = J is
//! provably safe, so it must get zero 429s; with J = 10 ms it must still sustain ≥ 97 % of 50/s.
//! The table of margin vs sustained rate vs 429s is printed (and copied in docs/client.md). A
//! naive client runs the same workload for contrast.
//!
//! Run with `cargo test -p tollgate --test sim_tiktok -- --nocapture` to see the figures.

mod sim_support;

use sim_support::{pct, run, App, Random, Report, SplitMix64, TikTok, MS, SEC};
use tollgate::client::{safe_window, Backoff, Jitter, Pacer, RetryBudget};
use tollgate::{SlidingLog, WindowQuota};

const CALLS: u64 = 5_000;
const LIMIT: u64 = 50;

fn app(pacer: Option<Pacer<SlidingLog<50>>>, latency: u64, seed: u64) -> App<SlidingLog<50>> {
    App {
        workers: 32,
        calls: CALLS,
        latency,
        seed,
        pacer,
        backoff: Backoff::new(100 * MS, 5 * SEC, 10, Jitter::Full).unwrap(),
        budget: RetryBudget::new(10 * SEC, 200, 20).unwrap(),
        naive_wait: SEC,
    }
}

/// One run: the toolkit with margin `margin` against jitter `jitter`, a server offset drawn
/// from the seed.
fn paced(jitter: u64, margin: u64, seed: u64) -> Report {
    let server = WindowQuota::new(LIMIT, SEC).unwrap();
    let mirror = SlidingLog::new(safe_window(&server, margin).unwrap()).unwrap();
    let offset = SplitMix64::new(seed).up_to(SEC - 1);
    run(
        app(Some(Pacer::new(mirror)), jitter, seed),
        TikTok::new(offset),
    )
}

fn row(jitter: u64, margin: u64, r: &Report) -> String {
    let rate = r.sustained_milli_per_sec(usize::try_from(LIMIT).unwrap());
    format!(
        "| 0–{} ms | {} ms | {}.{:02} /s | {} | {} | {} |",
        jitter / MS,
        margin / MS,
        rate / 1000,
        rate % 1000 / 10,
        pct(rate, LIMIT * 1000),
        r.status_429,
        r.failed
    )
}

fn table(jitter: u64, margins: &[u64]) -> Vec<(u64, Report)> {
    println!("| jitter J | margin M | sustained | of 50/s | 429s | calls given up |");
    println!("|---|---|---|---|---|---|");
    margins
        .iter()
        .map(|&m| {
            let r = paced(jitter, m * MS, 7);
            println!("{}", row(jitter, m * MS, &r));
            (m * MS, r)
        })
        .collect()
}

#[test]
fn large_jitter_the_safe_margin_gets_zero_429s() {
    let runs = table(200 * MS, &[0, 50, 100, 150, 200]);
    for (margin, r) in &runs {
        assert_eq!(r.ok + r.failed, CALLS);
        if *margin >= 200 * MS {
            assert_eq!((r.status_429, r.failed), (0, 0), "margin {margin}");
        }
    }
    // And whatever the window alignment: more seeds, more offsets, the safe margin.
    for seed in 100..104 {
        let r = paced(200 * MS, 200 * MS, seed);
        assert_eq!((r.ok, r.status_429), (CALLS, 0), "seed {seed}");
    }
}

#[test]
fn small_jitter_the_safe_margin_sustains_97_percent() {
    let runs = table(10 * MS, &[0, 2, 5, 8, 10]);
    let (_, safe) = runs.iter().find(|(m, _)| *m == 10 * MS).unwrap();
    assert_eq!((safe.ok, safe.status_429), (CALLS, 0));
    let rate = safe.sustained_milli_per_sec(usize::try_from(LIMIT).unwrap());
    assert!(rate * 100 >= 97 * LIMIT * 1000, "{rate} mcalls/s");
    // Never faster than the server's own limit allows.
    assert!(rate <= LIMIT * 1000);
    for seed in 200..204 {
        let r = paced(10 * MS, 10 * MS, seed);
        assert_eq!((r.ok, r.status_429), (CALLS, 0), "seed {seed}");
    }
}

/// The same workload without the toolkit: send whenever a worker is free; on a 429 (no
/// Retry-After here) wait one second and send again.
#[test]
fn naive_client_for_contrast() {
    let offset = SplitMix64::new(7).up_to(SEC - 1);
    let r = run(app(None, 200 * MS, 7), TikTok::new(offset));
    let rate = r.sustained_milli_per_sec(usize::try_from(LIMIT).unwrap());
    println!(
        "TikTok Shop naive: {} calls ok, {} x 429 ({} of the calls made), sustained {}.{:02} /s",
        r.ok,
        r.status_429,
        pct(r.status_429, r.status_429 + r.ok),
        rate / 1000,
        rate % 1000 / 10
    );
    assert_eq!(r.ok, CALLS);
    assert!(r.status_429 > 0);
}
