//! The load program: clients that stay under the gateway's limits, and clients that do not.
//!
//! All run at once against a running gateway, each on its own app id so their buckets are
//! separate:
//! - **toolkit** (app 1001): `tollgate::client` as an app would use it. ShopBase: one [`Pacer`]
//!   per shop over a leaky-bucket mirror with a jitter margin ([`safe_burst`]), synced from
//!   `X-Sb-Shop-Api-Call-Limit` and `Retry-After`, shared by several workers. TikTok Shop: one
//!   pacer per API over a sliding log of 50 in 1 s + jitter ([`safe_window`]). Failures go
//!   through [`next_step`]: 429/503/transport errors are retried after exponential backoff with
//!   full jitter (never before `Retry-After`), while a shared [`RetryBudget`] allows.
//! - **naive** (app 2002): sends at a fixed rate above the limit, ignores every header, and
//!   retries a 429 at once, twice.
//! - **burst** (app 3003): every 2 s, many requests at the same instant on distinct shops, so
//!   the rate limits admit them all and only the concurrency cap can refuse: 503, not 429.

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tollgate::client::{
    next_step, parse_call_limit, parse_retry_after, safe_burst, safe_window, seconds_to_ticks,
    Backoff, Class, Jitter, Mirror, Next, Pace, Pacer, RetryBudget, SplitMix64,
};
use tollgate::clock::StdClock;
use tollgate::presets::{shopbase, tiktok_shop};
use tollgate::{LeakyBucket, SlidingLog};

use crate::client::{Client, Reply};
/// Ticks per second of the load program's clock ([`tollgate::clock::StdClock`], nanoseconds).
pub const TPS: u64 = tollgate::clock::StdClock::TICKS_PER_SECOND;

/// App id of the toolkit client.
pub const TOOLKIT_APP: u64 = 1001;
/// App id of the naive client.
pub const NAIVE_APP: u64 = 2002;
/// App id of the burst client.
pub const BURST_APP: u64 = 3003;
/// The TikTok Shop APIs the clients call.
pub const TIKTOK_APIS: [&str; 2] = ["product/search", "order/search"];

/// What the load program runs.
#[derive(Clone, Debug)]
pub struct LoadConfig {
    /// The gateway.
    pub target: SocketAddr,
    /// How long the traffic runs.
    pub duration: Duration,
    /// The network jitter the toolkit's margins cover.
    pub jitter: Duration,
    /// ShopBase shops per client.
    pub shops: u64,
    /// Toolkit workers per ShopBase shop and per TikTok Shop API.
    pub workers: u64,
    /// Requests per burst (0: no burst client).
    pub burst: u64,
    /// Seed of the toolkit's jitter.
    pub seed: u64,
}

impl Default for LoadConfig {
    fn default() -> LoadConfig {
        LoadConfig {
            target: SocketAddr::from(([127, 0, 0, 1], 8080)),
            duration: Duration::from_secs(15),
            jitter: Duration::from_millis(100),
            shops: 3,
            workers: 3,
            burst: 48,
            seed: 0x5eed,
        }
    }
}

/// The usage text of the load binary.
pub const USAGE: &str = "\
tollgate-load: drive a running tollgate-gateway with a toolkit client, a naive client and bursts

  --target HOST:PORT   the gateway (default 127.0.0.1:8080)
  --duration S         seconds of traffic (default 15)
  --jitter-ms N        network jitter the toolkit's safety margins cover (default 100)
  --shops N            ShopBase shops per client (default 3)
  --workers N          toolkit workers per shop and per TikTok API (default 3)
  --burst N            simultaneous requests every 2 s to trip the concurrency cap (default 48, 0 = off)
  --seed N             seed of the backoff jitter (default 24301)
  --check              exit 1 unless the toolkit got no 429 and every lane some 200s
";

impl LoadConfig {
    /// Parses the load program's flags (without the program name). Returns the config and
    /// whether `--check` was given.
    pub fn from_args<I: IntoIterator<Item = String>>(
        args: I,
    ) -> Result<(LoadConfig, bool), String> {
        let mut c = LoadConfig::default();
        let mut check = false;
        let mut args = args.into_iter();
        while let Some(arg) = args.next() {
            if arg == "--check" {
                check = true;
                continue;
            }
            let mut value = || args.next().ok_or(format!("{arg} needs a value"));
            let num = |v: String| {
                v.parse::<u64>()
                    .map_err(|_| format!("{arg}: not a number: {v:?}"))
            };
            match arg.as_str() {
                "--target" => {
                    let v = value()?;
                    c.target = v
                        .parse()
                        .map_err(|_| format!("--target HOST:PORT, got {v:?}"))?;
                }
                "--duration" => {
                    let v = value()?;
                    let s: f64 = v.parse().map_err(|_| format!("--duration: {v:?}"))?;
                    if !(s.is_finite() && s > 0.0) {
                        return Err("--duration must be positive".into());
                    }
                    c.duration = Duration::from_secs_f64(s);
                }
                "--jitter-ms" => c.jitter = Duration::from_millis(num(value()?)?),
                "--shops" => c.shops = num(value()?)?.max(1),
                "--workers" => c.workers = num(value()?)?.max(1),
                "--burst" => c.burst = num(value()?)?,
                "--seed" => c.seed = num(value()?)?,
                _ => return Err(format!("unknown argument {arg:?} (try --help)")),
            }
        }
        Ok((c, check))
    }
}

/// Counts of one client on one policy.
#[derive(Clone, Debug, Default)]
pub struct LaneStats {
    /// Requests sent, retries included.
    pub calls: u64,
    /// 200 answers.
    pub ok: u64,
    /// 429 answers.
    pub limited: u64,
    /// 503 answers.
    pub overloaded: u64,
    /// Other statuses.
    pub other: u64,
    /// Transport errors.
    pub transport: u64,
    /// Retries sent.
    pub retries: u64,
    /// Requests given up (retries or budget exhausted).
    pub gave_up: u64,
    /// One answer of each status: `(status, ShopBase used, header line)`.
    pub samples: Vec<(u16, u64, String)>,
}

/// One client on one policy.
#[derive(Debug)]
pub struct Lane {
    /// `toolkit`, `naive` or `burst`.
    pub client: &'static str,
    /// `shopbase`, `tiktok`.
    pub policy: &'static str,
    /// Keys (shops, APIs) the lane spreads over.
    pub keys: u64,
    /// The counts.
    pub stats: Mutex<LaneStats>,
}

impl Lane {
    fn new(client: &'static str, policy: &'static str, keys: u64) -> Arc<Lane> {
        Arc::new(Lane {
            client,
            policy,
            keys,
            stats: Mutex::new(LaneStats::default()),
        })
    }

    fn with<T>(&self, f: impl FnOnce(&mut LaneStats) -> T) -> T {
        f(&mut self.stats.lock().unwrap_or_else(PoisonError::into_inner))
    }

    fn record(&self, r: &Result<Reply, crate::client::TransportError>) {
        self.with(|s| {
            s.calls += 1;
            match r {
                Err(_) => s.transport += 1,
                Ok(reply) => {
                    match reply.status {
                        200 => s.ok += 1,
                        429 => s.limited += 1,
                        503 => s.overloaded += 1,
                        _ => s.other += 1,
                    }
                    // One sample per status; for a 200, the one that reported the fullest
                    // ShopBase bucket (how close the client came to the limit).
                    let used = call_limit_used(reply);
                    match s.samples.iter_mut().find(|(st, _, _)| *st == reply.status) {
                        None => s.samples.push((reply.status, used, sample_headers(reply))),
                        Some(sample) if reply.status == 200 && used > sample.1 => {
                            *sample = (reply.status, used, sample_headers(reply));
                        }
                        Some(_) => {}
                    }
                }
            }
        });
    }

    /// A snapshot of the counts.
    pub fn snapshot(&self) -> LaneStats {
        self.with(|s| s.clone())
    }
}

/// The `used` of a ShopBase `X-Sb-Shop-Api-Call-Limit` header (0 if absent).
fn call_limit_used(reply: &Reply) -> u64 {
    reply
        .header("x-sb-shop-api-call-limit")
        .and_then(|v| parse_call_limit(v).ok())
        .map_or(0, |c| c.used)
}

fn sample_headers(reply: &Reply) -> String {
    let mut out = String::new();
    for name in [
        "x-sb-shop-api-call-limit",
        "retry-after",
        "ratelimit",
        "ratelimit-policy",
    ] {
        if let Some(v) = reply.headers.get(name).and_then(|v| v.to_str().ok()) {
            let shown = match name {
                "x-sb-shop-api-call-limit" => "X-Sb-Shop-Api-Call-Limit",
                "retry-after" => "Retry-After",
                "ratelimit" => "RateLimit",
                _ => "RateLimit-Policy",
            };
            if !out.is_empty() {
                out += "  ";
            }
            let _ = write!(out, "{shown}: {v}");
        }
    }
    out
}

/// The clock and the run's bounds, shared by every worker.
#[derive(Debug)]
struct Run {
    clock: StdClock,
    target: SocketAddr,
    deadline: u64,
}

impl Run {
    async fn sleep_to(&self, t: u64) {
        let now = self.clock.now();
        if t > now {
            tokio::time::sleep(Duration::from_nanos(t - now)).await;
        }
    }
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// What the toolkit workers of one key share.
struct Shared<M> {
    pacer: Mutex<Pacer<M>>,
    budget: Arc<Mutex<RetryBudget<10>>>,
}

/// A toolkit worker: pace, send, sync, classify, back off — until the deadline.
async fn toolkit_worker<M: Mirror>(
    run: Arc<Run>,
    lane: Arc<Lane>,
    shared: Arc<Shared<M>>,
    path: String,
    shop: u64,
    seed: u64,
) {
    let mut client = Client::new(run.target);
    let mut rng = SplitMix64::new(seed);
    let Ok(backoff) = Backoff::new(100 * TPS / 1000, 5 * TPS, 6, Jitter::Full) else {
        return;
    };
    let mut retries = backoff.start();
    loop {
        let now = run.clock.now();
        if now >= run.deadline {
            return;
        }
        let pace = lock(&shared.pacer).acquire(now, 1);
        match pace {
            Ok(Pace::Send) => {}
            Ok(Pace::Wait(t)) if t < run.deadline => {
                run.sleep_to(t).await;
                continue;
            }
            _ => return,
        }
        let sent_at = now;
        let result = client.get(&path, TOOLKIT_APP, shop).await;
        let done = run.clock.now();
        lane.record(&result);
        let (class, retry_after) = match &result {
            Ok(reply) => {
                let ra = reply.header("retry-after");
                let unix = unix_now();
                // A malformed header is reported and not applied: nothing to do but go on.
                let _ = lock(&shared.pacer).sync(
                    sent_at,
                    done,
                    unix,
                    TPS,
                    reply.header("x-sb-shop-api-call-limit"),
                    ra,
                );
                let ra_ticks = ra
                    .and_then(|v| parse_retry_after(v, unix).ok())
                    .map(|s| seconds_to_ticks(s, TPS));
                (Class::of_status(reply.status), ra_ticks)
            }
            Err(_) => (Class::of_transport_error(), None),
        };
        let next = {
            let mut budget = lock(&shared.budget);
            next_step(
                class,
                done,
                retry_after,
                &mut retries,
                &mut budget,
                &mut rng,
            )
        };
        match next {
            Next::Done => retries = backoff.start(),
            Next::RetryAt(t) => {
                lane.with(|s| s.retries += 1);
                run.sleep_to(t).await;
            }
            Next::GiveUp(_) => {
                lane.with(|s| s.gave_up += 1);
                retries = backoff.start();
            }
        }
    }
}

/// A naive worker: one request every `interval` from `offset`, a 429 retried at once twice.
async fn naive_worker(
    run: Arc<Run>,
    lane: Arc<Lane>,
    path: String,
    shop: u64,
    interval: Duration,
    offset: Duration,
) {
    let mut client = Client::new(run.target);
    let step = u64::try_from(interval.as_nanos()).unwrap_or(u64::MAX);
    let mut next = run.clock.now() + u64::try_from(offset.as_nanos()).unwrap_or(0);
    while next < run.deadline {
        run.sleep_to(next).await;
        for attempt in 0..3 {
            let result = client.get(&path, NAIVE_APP, shop).await;
            lane.record(&result);
            let limited = matches!(&result, Ok(r) if r.status == 429);
            if !limited || attempt == 2 || run.clock.now() >= run.deadline {
                break;
            }
            lane.with(|s| s.retries += 1);
        }
        next = (next + step).max(run.clock.now());
    }
}

/// The burst client: `n` connections that send at the same instant, every 2 s.
async fn burst_client(run: Arc<Run>, lane: Arc<Lane>, n: u64) {
    let mut clients: Vec<Client> = (0..n).map(|_| Client::new(run.target)).collect();
    for c in &mut clients {
        let _ = c.connect().await;
    }
    let mut at = run.clock.now() + TPS;
    while at < run.deadline {
        run.sleep_to(at).await;
        let mut tasks = Vec::new();
        for (i, mut c) in clients.drain(..).enumerate() {
            let lane = Arc::clone(&lane);
            tasks.push(tokio::spawn(async move {
                let r = c
                    .get("/tiktok/product/detail", BURST_APP, 10_000 + i as u64)
                    .await;
                lane.record(&r);
                c
            }));
        }
        for t in tasks {
            if let Ok(c) = t.await {
                clients.push(c);
            }
        }
        at += 2 * TPS;
    }
}

/// Runs every client against `config.target` and returns the lanes when the time is up.
pub async fn run(config: &LoadConfig) -> Result<Vec<Arc<Lane>>, tollgate::Error> {
    let clock = StdClock::new();
    let duration = u64::try_from(config.duration.as_nanos()).unwrap_or(u64::MAX);
    let jitter = u64::try_from(config.jitter.as_nanos()).unwrap_or(u64::MAX);
    let run = Arc::new(Run {
        clock,
        target: config.target,
        deadline: clock.now().saturating_add(duration),
    });
    let shops = config.shops;
    let apis = TIKTOK_APIS.len() as u64;
    let lanes = [
        Lane::new("toolkit", "shopbase", shops),
        Lane::new("naive", "shopbase", shops),
        Lane::new("toolkit", "tiktok", apis),
        Lane::new("naive", "tiktok", apis),
        Lane::new("burst", "tiktok", config.burst),
    ];
    let [tk_sb, nv_sb, tk_tt, nv_tt, burst] = &lanes;
    // Retries up to 10 % of the successes of the last 10 s, plus 5.
    let budget = Arc::new(Mutex::new(RetryBudget::new(10 * TPS, 100, 5)?));
    let mirror_quota = safe_burst(&shopbase::quota(TPS)?, jitter)?;
    let window_quota = safe_window(&tiktok_shop::server_quota(TPS)?, jitter)?;
    let mut tasks = Vec::new();
    let mut seed = config.seed;
    for shop in 1..=shops {
        let shared = Arc::new(Shared {
            pacer: Mutex::new(Pacer::new(LeakyBucket::new(mirror_quota))),
            budget: Arc::clone(&budget),
        });
        for w in 0..config.workers {
            seed = seed.wrapping_add(0x9e37_79b9);
            let path = format!("/shopbase/admin/products.json?limit=50&page={}", w + 1);
            tasks.push(tokio::spawn(toolkit_worker(
                Arc::clone(&run),
                Arc::clone(tk_sb),
                Arc::clone(&shared),
                path,
                shop,
                seed,
            )));
        }
        // Naive: 8 per second, four times the drain rate.
        tasks.push(tokio::spawn(naive_worker(
            Arc::clone(&run),
            Arc::clone(nv_sb),
            "/shopbase/admin/products.json?limit=50&page=1".to_owned(),
            shop,
            Duration::from_millis(125),
            Duration::from_millis(17 * shop),
        )));
    }
    for api in TIKTOK_APIS {
        let shared = Arc::new(Shared {
            pacer: Mutex::new(Pacer::new(SlidingLog::<
                { tiktok_shop::CLIENT_LOG_CAPACITY },
            >::new(window_quota)?)),
            budget: Arc::clone(&budget),
        });
        let path = format!("/tiktok/{api}");
        for _ in 0..config.workers {
            seed = seed.wrapping_add(0x9e37_79b9);
            tasks.push(tokio::spawn(toolkit_worker(
                Arc::clone(&run),
                Arc::clone(tk_tt),
                Arc::clone(&shared),
                path.clone(),
                1,
                seed,
            )));
        }
        // Naive: 75 per second (3 workers, one every 40 ms each), 1.5 times the limit.
        for k in 0..3 {
            tasks.push(tokio::spawn(naive_worker(
                Arc::clone(&run),
                Arc::clone(nv_tt),
                path.clone(),
                1,
                Duration::from_millis(40),
                Duration::from_millis(13 * k),
            )));
        }
    }
    if config.burst > 0 {
        tasks.push(tokio::spawn(burst_client(
            Arc::clone(&run),
            Arc::clone(burst),
            config.burst,
        )));
    }
    for t in tasks {
        let _ = t.await;
    }
    Ok(lanes.to_vec())
}

/// The most 200s a key can get in `secs` seconds, per second: a ShopBase bucket starts with
/// room for 30 and drains 2/s; a run of `secs` touches at most ⌈secs⌉ + 1 TikTok Shop windows
/// of 50 (the gateway's windows are not aligned with the run).
fn allowed_per_second(policy: &str, secs: f64) -> f64 {
    match policy {
        "shopbase" => (30.0 + 2.0 * secs) / secs,
        _ => 50.0 * (secs.ceil() + 1.0) / secs,
    }
}

/// The run's description, above the table.
fn intro(config: &LoadConfig) -> String {
    let secs = config.duration.as_secs_f64();
    let mut out = String::new();
    let _ = writeln!(
        out,
        "tollgate demo: {secs:.0} s of traffic against the gateway at {} (real time, real HTTP)",
        config.target
    );
    let _ = writeln!(
        out,
        "  toolkit: pacer + header sync + backoff with full jitter + retry budget, {} workers per key, margins for {} ms of jitter",
        config.workers,
        config.jitter.as_millis()
    );
    let _ = writeln!(
        out,
        "  naive: fixed rate above the limit (ShopBase 8/s, TikTok 75/s per key), ignores headers, retries a 429 at once"
    );
    let _ = writeln!(
        out,
        "  burst: {} requests at once every 2 s on distinct shops: only the concurrency cap can refuse them\n",
        config.burst
    );
    out
}

/// The summary table, the sample headers and the verdict.
pub fn summary(config: &LoadConfig, lanes: &[Arc<Lane>]) -> String {
    let secs = config.duration.as_secs_f64();
    let mut out = intro(config);
    let _ = writeln!(
        out,
        "{:<8} {:<9} {:>4} {:>6} {:>6} {:>6} {:>6} {:>7} {:>7}  {:>13}  {:>13}",
        "client",
        "policy",
        "keys",
        "calls",
        "200",
        "429",
        "503",
        "retries",
        "gave up",
        "200/s per key",
        "max/s per key"
    );
    for lane in lanes {
        let s = lane.snapshot();
        if lane.keys == 0 {
            continue;
        }
        #[allow(clippy::cast_precision_loss)] // counts far below 2^52
        let achieved = s.ok as f64 / lane.keys as f64 / secs;
        let allowed = if lane.client == "burst" {
            "(cap)".to_owned()
        } else {
            format!("{:.2}", allowed_per_second(lane.policy, secs))
        };
        let _ = writeln!(
            out,
            "{:<8} {:<9} {:>4} {:>6} {:>6} {:>6} {:>6} {:>7} {:>7}  {:>13.2}  {:>13}",
            lane.client,
            lane.policy,
            lane.keys,
            s.calls,
            s.ok,
            s.limited,
            s.overloaded,
            s.retries,
            s.gave_up,
            achieved,
            allowed
        );
        if s.other + s.transport > 0 {
            let _ = writeln!(
                out,
                "         ({} other statuses, {} transport errors)",
                s.other, s.transport
            );
        }
    }
    let _ = writeln!(
        out,
        "max/s per key: the most a key can get in the run (ShopBase: 30 + 2/s; TikTok Shop: 50 in each of the ⌈{secs:.0}⌉ + 1 windows the run touches)"
    );
    let _ = writeln!(
        out,
        "\nsample headers (for 200, the fullest ShopBase bucket seen):"
    );
    for lane in lanes {
        let s = lane.snapshot();
        let mut samples = s.samples.clone();
        samples.sort_by_key(|(st, _, _)| *st);
        for (status, _, line) in samples {
            let _ = writeln!(
                out,
                "  {:<7} {:<8} {status}  {line}",
                lane.client, lane.policy
            );
        }
    }
    let toolkit_429: u64 = lanes
        .iter()
        .filter(|l| l.client == "toolkit")
        .map(|l| l.snapshot().limited)
        .sum();
    let naive_429: u64 = lanes
        .iter()
        .filter(|l| l.client == "naive")
        .map(|l| l.snapshot().limited)
        .sum();
    let _ = writeln!(
        out,
        "\nverdict: toolkit got {toolkit_429} × 429, naive got {naive_429} × 429; 503s come from the concurrency cap, not the rate limits"
    );
    out
}

/// `--check`: the toolkit got no 429, and every lane got some 200s.
pub fn check(lanes: &[Arc<Lane>]) -> Result<(), String> {
    for lane in lanes {
        let s = lane.snapshot();
        if lane.keys > 0 && s.ok == 0 {
            return Err(format!("{} {}: no 200 at all", lane.client, lane.policy));
        }
        if lane.client == "toolkit" && s.limited > 0 {
            return Err(format!(
                "toolkit {}: {} × 429 (expected none)",
                lane.policy, s.limited
            ));
        }
    }
    Ok(())
}
