//! The README's "Staying under someone else's limit" example, kept compiling and true: one
//! request paced, sent, synced and retried against a fake ShopBase on a simulated clock.

use std::cell::Cell;

use tollgate::client::{next_step, safe_burst, Backoff, Class, Jitter, Next, Pace, Pacer};
use tollgate::client::{parse_retry_after, RetryBudget, SplitMix64};
use tollgate::{LeakyBucket, Quota};

const SECOND: u64 = 1_000; // a millisecond clock

struct Answer {
    status: u16,
    call_limit: Option<String>,
    retry_after: Option<String>,
}

#[test]
fn readme_example() -> Result<(), tollgate::Error> {
    // The fake world: a clock, and a ShopBase server that is already full.
    let clock = Cell::new(0u64);
    let server = LeakyBucket::new(Quota::new(30, 2, SECOND)?);
    server.raise_level_to(0, 30)?;
    let send = |now: u64| {
        let d = server.decide(now + 50, 1).unwrap(); // 50 ms on the way
        clock.set(now + 100); // and back
        Answer {
            status: if d.is_allowed() { 200 } else { 429 },
            call_limit: Some(format!("{}/{}", d.used, d.limit)),
            retry_after: d
                .retry_after
                .filter(|&r| r > 0)
                .map(|r| r.div_ceil(SECOND).to_string()),
        }
    };
    let unix_now = |t: u64| 1_780_000_000 + t / SECOND;

    // --- the README example ---
    // ShopBase: a bucket of 30 draining 2/s; up to 200 ms of network jitter: a mirror of 29.
    let mut pacer = Pacer::new(LeakyBucket::new(safe_burst(
        &Quota::new(30, 2, SECOND)?,
        200,
    )?));
    let backoff = Backoff::new(250, 30 * SECOND, 8, Jitter::Full)?;
    let mut budget: RetryBudget<6> = RetryBudget::new(60 * SECOND, 100, 5)?; // 10 % + 5 a minute
    let mut rng = SplitMix64::new(0x5eed);

    let mut retries = backoff.start();
    let mut attempts = 0;
    loop {
        let sent_at = clock.get();
        match pacer.acquire(sent_at, 1)? {
            Pace::Wait(t) => clock.set(t), // sleep until t
            Pace::Never => unreachable!("a cost of 1 always fits"),
            Pace::Send => {
                attempts += 1;
                let answer = send(sent_at);
                let now = clock.get();
                let (limit, after) = (answer.call_limit.as_deref(), answer.retry_after.as_deref());
                // Raise the mirror to the server's count; block until Retry-After.
                pacer.sync(
                    sent_at,
                    now,
                    unix_now(now),
                    SECOND,
                    limit.map(str::as_bytes),
                    after.map(str::as_bytes),
                )?;
                let retry_after = after
                    .map(|v| parse_retry_after(v.as_bytes(), unix_now(now)))
                    .transpose()?
                    .map(|s| s * SECOND);
                match next_step(
                    Class::of_status(answer.status),
                    now,
                    retry_after,
                    &mut retries,
                    &mut budget,
                    &mut rng,
                ) {
                    Next::Done => break,
                    Next::RetryAt(t) => clock.set(t), // sleep until t
                    Next::GiveUp(why) => panic!("gave up: {why:?}"),
                }
            }
        }
    }
    // --- end of the example ---

    // The server was full: one 429 ("Retry-After: 1", "30/30"), then the retry got through.
    assert_eq!(attempts, 2);
    assert!(clock.get() >= 1_100);
    Ok(())
}
