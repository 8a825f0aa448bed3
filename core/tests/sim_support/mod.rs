//! Shared machinery of the simulations: simulated time (an event queue), seeded randomness,
//! and small helpers. Each `sim_*.rs` test uses part of it.
#![allow(dead_code)] // each simulation uses only some of these helpers

use std::cmp::Ordering;
use std::collections::BinaryHeap;

pub(crate) use tollgate::client::{Random, SplitMix64};

/// Ticks are microseconds.
pub(crate) const SEC: u64 = 1_000_000;
/// One millisecond in ticks.
pub(crate) const MS: u64 = 1_000;

struct Entry<E> {
    at: u64,
    seq: u64,
    event: E,
}

impl<E> PartialEq for Entry<E> {
    fn eq(&self, other: &Self) -> bool {
        (self.at, self.seq) == (other.at, other.seq)
    }
}
impl<E> Eq for Entry<E> {}
impl<E> PartialOrd for Entry<E> {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl<E> Ord for Entry<E> {
    // Earliest first; ties in the order they were scheduled.
    fn cmp(&self, other: &Self) -> Ordering {
        (other.at, other.seq).cmp(&(self.at, self.seq))
    }
}

/// A discrete-event simulation clock: events come out in time order, ties first-in first-out.
pub(crate) struct Sim<E> {
    queue: BinaryHeap<Entry<E>>,
    seq: u64,
    /// The time of the event being handled.
    pub(crate) now: u64,
}

impl<E> Sim<E> {
    pub(crate) fn new() -> Self {
        Sim {
            queue: BinaryHeap::new(),
            seq: 0,
            now: 0,
        }
    }

    /// Schedules `event` at `at` (never in the past).
    pub(crate) fn at(&mut self, at: u64, event: E) {
        assert!(at >= self.now, "an event in the past: {at} < {}", self.now);
        self.seq += 1;
        self.queue.push(Entry {
            at,
            seq: self.seq,
            event,
        });
    }

    /// The next event, advancing `now` to its time.
    pub(crate) fn next(&mut self) -> Option<E> {
        let e = self.queue.pop()?;
        self.now = e.at;
        Some(e.event)
    }
}

/// A uniform latency in `0..=max` ticks.
pub(crate) fn latency(rng: &mut SplitMix64, max: u64) -> u64 {
    rng.up_to(max)
}

/// Seconds with three decimals, for the printed tables.
pub(crate) fn secs(ticks: u64) -> String {
    format!("{}.{:03}", ticks / SEC, ticks % SEC / MS)
}

use tollgate::client::{
    next_step, parse_retry_after, Backoff, Class, GiveUp, Mirror, Next, Pace, Pacer, RetryBudget,
};
use tollgate::{FixedWindow, LeakyBucket, Outcome};

/// The Unix time at simulated tick 0 (for `Retry-After` dates).
pub(crate) const EPOCH_UNIX: u64 = 1_780_000_000;

/// What a simulated server answers.
pub(crate) struct Response {
    pub(crate) status: u16,
    /// `X-Sb-Shop-Api-Call-Limit`, if the server sends it.
    pub(crate) call_limit: Option<String>,
    /// `Retry-After`, if the server sends it.
    pub(crate) retry_after: Option<String>,
}

/// A simulated API server enforcing its vendor's rules with the engine's own limiters.
pub(crate) trait Server {
    fn handle(&mut self, now: u64, rng: &mut SplitMix64) -> Response;
}

/// ShopBase: a leaky bucket of 30 draining 2 per second per (app, shop), the call-limit header
/// on every answer, `Retry-After` (whole seconds, at least 1) on a 429.
pub(crate) struct ShopBase {
    pub(crate) bucket: LeakyBucket,
}

impl ShopBase {
    pub(crate) fn new() -> Self {
        ShopBase {
            bucket: LeakyBucket::new(tollgate::Quota::new(30, 2, SEC).unwrap()),
        }
    }
}

impl Server for ShopBase {
    fn handle(&mut self, now: u64, _: &mut SplitMix64) -> Response {
        let d = self.bucket.decide(now, 1).unwrap();
        let call_limit = Some(format!("{}/{}", d.used, d.limit));
        match d.outcome {
            Outcome::Allowed => Response {
                status: 200,
                call_limit,
                retry_after: None,
            },
            _ => Response {
                status: 429,
                call_limit,
                retry_after: Some(d.retry_after.unwrap().div_ceil(SEC).max(1).to_string()),
            },
        }
    }
}

/// TikTok Shop: a fixed window of 50 per second per (app, shop, api), its edges at an offset the
/// client does not know; no count header, no `Retry-After`.
pub(crate) struct TikTok {
    pub(crate) window: FixedWindow,
}

impl TikTok {
    pub(crate) fn new(offset: u64) -> Self {
        let q = tollgate::WindowQuota::new(50, SEC).unwrap();
        TikTok {
            window: FixedWindow::new(q.with_offset(offset).unwrap()),
        }
    }
}

impl Server for TikTok {
    fn handle(&mut self, now: u64, _: &mut SplitMix64) -> Response {
        let status = if self.window.decide(now, 1).unwrap().is_allowed() {
            200
        } else {
            429
        };
        Response {
            status,
            call_limit: None,
            retry_after: None,
        }
    }
}

/// A faulty front: sheds `per_mille`/1000 of the calls with 503 before they reach the server.
pub(crate) struct Shedding<S> {
    pub(crate) inner: S,
    pub(crate) per_mille: u64,
}

impl<S: Server> Server for Shedding<S> {
    fn handle(&mut self, now: u64, rng: &mut SplitMix64) -> Response {
        if rng.up_to(999) < self.per_mille {
            return Response {
                status: 503,
                call_limit: None,
                retry_after: None,
            };
        }
        self.inner.handle(now, rng)
    }
}

/// The app: how many workers, how many calls, the network, and the client.
pub(crate) struct App<M> {
    pub(crate) workers: usize,
    pub(crate) calls: u64,
    /// Each leg of a call (request, response) takes a latency uniform in `0..=latency` ticks.
    pub(crate) latency: u64,
    pub(crate) seed: u64,
    /// `Some`: the toolkit client (pacer, header sync, backoff, retry budget); `None`: a naive
    /// client that sends as soon as a worker is free and, on a 429 or 503, waits the
    /// `Retry-After` (or `naive_wait`) and sends again.
    pub(crate) pacer: Option<Pacer<M>>,
    pub(crate) backoff: Backoff,
    pub(crate) budget: RetryBudget<6>,
    pub(crate) naive_wait: u64,
}

/// What happened.
#[derive(Debug, Default)]
pub(crate) struct Report {
    pub(crate) ok: u64,
    pub(crate) failed: u64,
    pub(crate) status_429: u64,
    pub(crate) status_503: u64,
    pub(crate) retries: u64,
    pub(crate) budget_refusals: u64,
    /// Time the last successful answer reached the app.
    pub(crate) makespan: u64,
    /// Server-side times of the admitted calls, in order.
    pub(crate) admitted: Vec<u64>,
    /// App-side times of successes and of granted retries (for budget checks).
    pub(crate) successes_at: Vec<u64>,
    pub(crate) retries_at: Vec<u64>,
    /// Malformed headers met by the client (the servers here never send one).
    pub(crate) malformed: u64,
}

impl Report {
    /// Admitted calls per second after the first `skip`, between the first and the last
    /// admission, in thousandths of a call per second.
    pub(crate) fn sustained_milli_per_sec(&self, skip: usize) -> u64 {
        let (first, last) = (self.admitted[0], *self.admitted.last().unwrap());
        let n = (self.admitted.len() - skip) as u128;
        u64::try_from(n * 1000 * u128::from(SEC) / u128::from((last - first).max(1))).unwrap()
    }
}

enum Ev {
    /// A worker looks for work or retries.
    Wake(usize),
    /// A call reaches the server.
    Arrive { worker: usize, sent_at: u64 },
    /// The answer reaches the app.
    Answer {
        worker: usize,
        sent_at: u64,
        response: Response,
    },
}

/// Runs the app against `server` until every call has succeeded or been given up.
// One event loop, read top to bottom, is clearer than one split across helpers.
#[allow(clippy::too_many_lines)]
pub(crate) fn run<S: Server, M: Mirror>(mut app: App<M>, mut server: S) -> Report {
    let mut sim: Sim<Ev> = Sim::new();
    let mut network = SplitMix64::new(app.seed);
    let mut jitter = SplitMix64::new(app.seed ^ 0x9e37_79b9);
    let mut srv_rng = SplitMix64::new(app.seed.rotate_left(17));
    let mut jobs_left = app.calls;
    let mut current: Vec<Option<tollgate::client::Retries>> = vec![None; app.workers];
    let mut report = Report::default();
    for w in 0..app.workers {
        sim.at(0, Ev::Wake(w));
    }
    while let Some(ev) = sim.next() {
        let now = sim.now;
        match ev {
            Ev::Wake(w) => {
                if current[w].is_none() {
                    if jobs_left == 0 {
                        continue;
                    }
                    jobs_left -= 1;
                    current[w] = Some(app.backoff.start());
                }
                let pace = match app.pacer.as_mut() {
                    Some(p) => p.acquire(now, 1).unwrap(),
                    None => Pace::Send,
                };
                match pace {
                    Pace::Send => {
                        let at = now + latency(&mut network, app.latency);
                        sim.at(
                            at,
                            Ev::Arrive {
                                worker: w,
                                sent_at: now,
                            },
                        );
                    }
                    Pace::Wait(t) => sim.at(t, Ev::Wake(w)),
                    Pace::Never => unreachable!("cost 1 fits every mirror"),
                }
            }
            Ev::Arrive { worker, sent_at } => {
                let response = server.handle(now, &mut srv_rng);
                if response.status == 200 {
                    report.admitted.push(now);
                }
                let at = now + latency(&mut network, app.latency);
                sim.at(
                    at,
                    Ev::Answer {
                        worker,
                        sent_at,
                        response,
                    },
                );
            }
            Ev::Answer {
                worker,
                sent_at,
                response,
            } => {
                match response.status {
                    429 => report.status_429 += 1,
                    503 => report.status_503 += 1,
                    _ => {}
                }
                let now_unix = EPOCH_UNIX + now / SEC;
                let retry_after = response
                    .retry_after
                    .as_deref()
                    .and_then(|v| parse_retry_after(v.as_bytes(), now_unix).ok())
                    .map(|s| s * SEC);
                let Some(pacer) = app.pacer.as_mut() else {
                    // The naive client.
                    if response.status == 200 {
                        report.ok += 1;
                        report.makespan = now;
                        current[worker] = None;
                        sim.at(now, Ev::Wake(worker));
                    } else {
                        report.retries += 1;
                        sim.at(
                            now + retry_after.unwrap_or(app.naive_wait),
                            Ev::Wake(worker),
                        );
                    }
                    continue;
                };
                if pacer
                    .sync(
                        sent_at,
                        now,
                        now_unix,
                        SEC,
                        response.call_limit.as_deref().map(str::as_bytes),
                        response.retry_after.as_deref().map(str::as_bytes),
                    )
                    .is_err()
                {
                    report.malformed += 1;
                }
                let retries = current[worker].as_mut().unwrap();
                let step = next_step(
                    Class::of_status(response.status),
                    now,
                    retry_after,
                    retries,
                    &mut app.budget,
                    &mut jitter,
                );
                match step {
                    Next::Done => {
                        report.ok += 1;
                        report.makespan = now;
                        report.successes_at.push(now);
                        current[worker] = None;
                        sim.at(now, Ev::Wake(worker));
                    }
                    Next::RetryAt(t) => {
                        report.retries += 1;
                        report.retries_at.push(now);
                        sim.at(t, Ev::Wake(worker));
                    }
                    Next::GiveUp(why) => {
                        if why == GiveUp::BudgetExhausted {
                            report.budget_refusals += 1;
                        }
                        report.failed += 1;
                        current[worker] = None;
                        sim.at(now, Ev::Wake(worker));
                    }
                }
            }
        }
    }
    report
}

/// `num / den` as a percentage with two decimals, in integer arithmetic.
pub(crate) fn pct(num: u64, den: u64) -> String {
    let hundredths = u128::from(num) * 10_000 / u128::from(den.max(1));
    format!("{}.{:02} %", hundredths / 100, hundredths % 100)
}
