//! Runs one benchmark case `n` times, for instruction counts under callgrind, which do not
//! depend on machine load: `scripts/instructions.sh` runs every case with two values of `n` and
//! prints (instructions(n₂) − instructions(n₁)) / (n₂ − n₁), the cost of one call with set-up
//! and process start taken out.
//!
//! ```text
//! instructions CASE N
//! ```
//!
//! Cases: `direct/{allow,deny}/{tollgate_check,tollgate_full,governor_fake_clock}`,
//! `window/{allow,deny}/{tollgate_check,tollgate_full}`.

use std::hint::black_box;
use std::num::NonZeroU32;
use std::process::ExitCode;
use std::time::Duration;

use governor::clock::FakeRelativeClock;
use governor::{Quota as GQuota, RateLimiter};
use tollgate::{FixedWindow, LeakyBucket, Quota, WindowQuota};

const HOUR_NS: u64 = 3_600_000_000_000;

fn run(case: &str, n: u64) -> Result<u64, String> {
    // Every allowing case admits all n requests at one `now`; every denying case is full.
    let allowing = || LeakyBucket::new(Quota::new(u64::MAX >> 8, 1, 1).expect("quota"));
    let refusing = || {
        let b = LeakyBucket::new(Quota::new(1, 1, HOUR_NS).expect("quota"));
        assert!(b.check(0, 1).is_ok());
        b
    };
    let window = |limit| FixedWindow::new(WindowQuota::new(limit, 1_000_000).expect("quota"));
    let mut allowed = 0u64;
    let mut count = |ok: bool| allowed += u64::from(ok);
    match case {
        "direct/allow/tollgate_check" | "direct/deny/tollgate_check" => {
            let b = if case.contains("allow") {
                allowing()
            } else {
                refusing()
            };
            for _ in 0..n {
                count(
                    b.check(black_box(1), 1)
                        .is_ok_and(tollgate::Outcome::is_allowed),
                );
            }
        }
        "direct/allow/tollgate_full" | "direct/deny/tollgate_full" => {
            let b = if case.contains("allow") {
                allowing()
            } else {
                refusing()
            };
            for _ in 0..n {
                count(black_box(b.decide(black_box(1), 1)).is_ok_and(|d| d.is_allowed()));
            }
        }
        "direct/allow/governor_fake_clock" | "direct/deny/governor_fake_clock" => {
            let clock = FakeRelativeClock::default();
            let quota = if case.contains("allow") {
                GQuota::with_period(Duration::from_nanos(1))
                    .expect("quota")
                    .allow_burst(NonZeroU32::MAX)
            } else {
                GQuota::with_period(Duration::from_nanos(HOUR_NS)).expect("quota")
            };
            let limiter = RateLimiter::direct_with_clock(quota, clock.clone());
            if case.contains("deny") {
                assert!(limiter.check().is_ok());
            }
            clock.advance(Duration::from_nanos(1));
            for _ in 0..n {
                count(black_box(limiter.check()).is_ok());
            }
        }
        "window/allow/tollgate_check" | "window/deny/tollgate_check" => {
            let w = window(if case.contains("allow") {
                u64::from(u32::MAX)
            } else {
                1
            });
            for _ in 0..n {
                count(
                    w.check(black_box(1), 1)
                        .is_ok_and(tollgate::Outcome::is_allowed),
                );
            }
        }
        "window/allow/tollgate_full" | "window/deny/tollgate_full" => {
            let w = window(if case.contains("allow") {
                u64::from(u32::MAX)
            } else {
                1
            });
            for _ in 0..n {
                count(black_box(w.decide(black_box(1), 1)).is_ok_and(|d| d.is_allowed()));
            }
        }
        _ => return Err(format!("unknown case {case}")),
    }
    Ok(allowed)
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    let (Some(case), Some(Ok(n))) = (args.get(1), args.get(2).map(|n| n.parse::<u64>())) else {
        eprintln!("usage: instructions CASE N");
        return ExitCode::from(2);
    };
    match run(case, n) {
        Ok(allowed) => {
            println!("{case}: {n} calls, {allowed} allowed");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("{e}");
            ExitCode::from(2)
        }
    }
}
