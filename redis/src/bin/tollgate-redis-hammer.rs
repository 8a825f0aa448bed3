//! Load on one key from one process: `tollgate-redis-hammer URL PREFIX KEY BURST REQUESTS [hybrid]`.
//!
//! Sends REQUESTS decisions of cost 1 at `now = 0` on KEY under a bucket of BURST that does not
//! drain during the run, and prints `admitted A denied D`. The concurrency tests start several
//! of these at once: together they must admit exactly BURST.

use std::process::ExitCode;
use std::time::Duration;

use tollgate::Quota;
use tollgate_redis::{Config, HybridLimiter, RedisLimiter};

enum Node {
    Shared(RedisLimiter),
    Hybrid(HybridLimiter),
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    if args.len() < 6 {
        eprintln!("usage: tollgate-redis-hammer URL PREFIX KEY BURST REQUESTS [hybrid]");
        return ExitCode::from(2);
    }
    let (Ok(burst), Ok(requests)) = (args[4].parse::<u64>(), args[5].parse::<u64>()) else {
        eprintln!("BURST and REQUESTS are integers");
        return ExitCode::from(2);
    };
    let hybrid = args.get(6).is_some_and(|a| a == "hybrid");
    let mut config = Config::new(args[1].as_str(), 1_000);
    config.prefix.clone_from(&args[2]);
    config.timeout = Duration::from_secs(10);
    let Ok(quota) = Quota::with_min_span(burst, 1, 1 << 40, 0) else {
        eprintln!("invalid BURST");
        return ExitCode::from(2);
    };
    let limiter = match RedisLimiter::new(config) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    let node = if hybrid {
        Node::Hybrid(HybridLimiter::new(limiter, 16))
    } else {
        Node::Shared(limiter)
    };
    let (mut admitted, mut denied) = (0u64, 0u64);
    for _ in 0..requests {
        let d = match &node {
            Node::Shared(s) => s.decide(&args[3], quota, 0, 1),
            Node::Hybrid(h) => h.decide(&args[3], quota, 0, 1),
        };
        match d {
            Ok(d) if d.outcome.is_allowed() && d.verdict.is_allowed() => admitted += 1,
            Ok(d) if d.outcome == tollgate::Outcome::Limited => denied += 1,
            other => {
                eprintln!("unexpected answer: {other:?}");
                return ExitCode::FAILURE;
            }
        }
    }
    println!("admitted {admitted} denied {denied}");
    ExitCode::SUCCESS
}
