//! The checks every test firmware runs, whatever the core: limiters in `static`s, driven by a
//! wrapping 32-bit tick counter extended to `u64` by `tollgate::WrappingClock`, each decision
//! compared with the value docs/semantics.md says it must have.
//!
//! Two kinds of check:
//! - scripted: a simulated 32-bit counter starting just below its wrap, so exact times (and so
//!   exact expected values) are known, and every run crosses the wrap;
//! - interrupt: the hardware tick counter (incremented by the timer interrupt), with the interrupt
//!   handler deciding on the same bucket or window as the main loop. Those checks assert exact
//!   totals (admitted by main + admitted by the handler = the quota's exact bound).
//!
//! The platform provides printing, the timer and the interrupt handler's call to
//! [`on_timer_tick`]; it reports through [`Report`].

use core::fmt;
use core::sync::atomic::{AtomicBool, AtomicU32, Ordering};

use tollgate::key::{Key, Seed};
use tollgate::table::{self, BucketTable, FullPolicy, TableMemory};
use tollgate::{
    Decision, Error, FixedWindow, LeakyBucket, Outcome, Quota, WindowQuota, WrappingClock,
};

/// A quota for a `static`: a construction error is a compile-time error.
const fn quota(burst: u64, count: u64, period: u64) -> Quota {
    match Quota::new(burst, count, period) {
        Ok(q) => q,
        Err(_) => panic!("invalid quota"),
    }
}

/// A window quota for a `static`.
const fn window(limit: u64, ticks: u64) -> WindowQuota {
    match WindowQuota::new(limit, ticks) {
        Ok(q) => q,
        Err(_) => panic!("invalid window quota"),
    }
}

// ---------------------------------------------------------------------------------------------
// The hardware clock: a 32-bit count of timer interrupts, wrapping, extended to u64.

/// The raw hardware tick counter, written only by the timer interrupt. It starts 300 ticks
/// before its wrap, so every run crosses the wrap while the interrupt checks are running.
pub static TICKS: AtomicU32 = AtomicU32::new(u32::MAX - 300);

/// Extends [`TICKS`] to a monotonic `u64`; read by the main loop and the interrupt handler.
pub static CLOCK: WrappingClock = WrappingClock::new();

/// The current time in ticks.
pub fn now() -> u64 {
    CLOCK.now(|| TICKS.load(Ordering::Relaxed))
}

/// Where the first reading of [`CLOCK`] lies: the raw counter's start.
const CLOCK_START: u64 = (u32::MAX - 300) as u64;

// ---------------------------------------------------------------------------------------------
// What the interrupt handler decides on.

/// Shared by the main loop and the timer interrupt: burst 64, draining 3 per 2 ticks.
pub static SHARED_BUCKET: LeakyBucket = LeakyBucket::new(quota(64, 3, 2));
/// Shared by the main loop and the timer interrupt: 1 000 per window of 2⁴⁰ ticks (one window for
/// the whole run), so the exact bound is 1 000.
pub static SHARED_WINDOW: FixedWindow = FixedWindow::new(window(1_000, 1 << 40));

/// The key table's tiers: ShopBase (30, 2 per 1 000 ticks) and a premium tier with twice the
/// burst at the same rate (a level carries over unchanged between them: docs/semantics.md#quota-changes).
static TIERS: [Quota; 2] = [quota(30, 2, 1_000), quota(60, 2, 1_000)];
/// The key table's memory: header, two tiers and 15 slots (three groups of five), 768 bytes.
static TABLE_MEMORY: TableMemory<{ table::words(15, 2) }> = TableMemory::new();
/// A second small table, for the key the main loop and the handler share on the real clock
/// ([`TABLE_MEMORY`]'s table runs on the simulated clock, whose times lie ahead of the real
/// one): one group of five slots.
static SHARED_MEMORY: TableMemory<{ table::words(5, 1) }> = TableMemory::new();
/// The shared table's one tier: the shared bucket's quota.
static SHARED_TIERS: [Quota; 1] = [quota(64, 3, 2)];

/// Initialises both tables in their `static` memory (a fixed, public seed: this is a test).
/// Runs first in [`key_table_scripted`], before the handler uses the shared table.
fn init_tables(r: &mut Report) {
    let t = BucketTable::init(
        TABLE_MEMORY.words(),
        &TIERS,
        Seed::new(0x5eed_0001, 0xcafe_0002),
        FullPolicy::FailClosed,
    );
    r.eq("table: init", t.map(|t| t.capacity()), Ok(15));
    let t = BucketTable::init(
        SHARED_MEMORY.words(),
        &SHARED_TIERS,
        Seed::new(0x5eed_0003, 0xcafe_0004),
        FullPolicy::FailClosed,
    );
    r.eq("table: shared init", t.map(|t| t.capacity()), Ok(5));
}

/// A handle on the scripted table (cheap: reads the header).
fn table() -> Result<BucketTable<'static>, Error> {
    BucketTable::open(TABLE_MEMORY.words()).map_err(|_| Error::InvalidArgument)
}

/// A handle on the table the main loop and the handler share.
fn shared_table() -> Result<BucketTable<'static>, Error> {
    BucketTable::open(SHARED_MEMORY.words()).map_err(|_| Error::InvalidArgument)
}
/// The key the main loop and the handler share in the shared table.
const SHARED_KEY: Key = Key::pair(1, 1);

/// A limiter the main loop and the handler share.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Shared {
    /// [`SHARED_BUCKET`].
    Bucket = 1,
    /// [`SHARED_WINDOW`].
    Window = 2,
    /// [`SHARED_KEY`] in the shared table.
    TableKey = 3,
}

impl Shared {
    fn decide(self, now: u64) -> Result<Decision, Error> {
        match self {
            Shared::Bucket => SHARED_BUCKET.decide(now, 1),
            Shared::Window => SHARED_WINDOW.decide(now, 1),
            Shared::TableKey => shared_table()?.decide(SHARED_KEY, 0, now, 1),
        }
    }

    fn from_u32(v: u32) -> Option<Shared> {
        match v {
            1 => Some(Shared::Bucket),
            2 => Some(Shared::Window),
            3 => Some(Shared::TableKey),
            _ => None,
        }
    }
}

/// Which limiter the handler hammers: 0 none, else a [`Shared`].
static ISR_TARGET: AtomicU32 = AtomicU32::new(0);
/// Requests the handler got admitted (written by the handler only).
static ISR_ADMITTED: AtomicU32 = AtomicU32::new(0);
/// Decisions the handler took (written by the handler only).
static ISR_DECISIONS: AtomicU32 = AtomicU32::new(0);
/// Set by the main loop while it is inside a decision on a shared limiter.
static MAIN_DECIDING: AtomicBool = AtomicBool::new(false);
/// Handler runs that interrupted the main loop in the middle of a decision (handler-written).
static INTERRUPTED_MAIN: AtomicU32 = AtomicU32::new(0);
/// Errors the handler saw (handler-written).
static ISR_ERRORS: AtomicU32 = AtomicU32::new(0);

/// Single-writer increment: only one context writes each counter, so load + store is exact and
/// needs no read-modify-write (which the Cortex-M0 does not have).
fn bump(counter: &AtomicU32) {
    counter.store(
        counter.load(Ordering::Relaxed).wrapping_add(1),
        Ordering::Relaxed,
    );
}

/// Called by the platform's timer interrupt handler on every tick: advances the hardware
/// counter, then — while an interrupt check runs — takes decisions on the shared limiter.
/// Decides on odd ticks only, so the main loop gets the capacity that frees up on even ticks and
/// both contexts keep competing for the same state.
pub fn on_timer_tick() {
    let raw = TICKS.load(Ordering::Relaxed).wrapping_add(1);
    TICKS.store(raw, Ordering::Relaxed);
    let Some(target) = Shared::from_u32(ISR_TARGET.load(Ordering::Acquire)) else {
        return;
    };
    if raw % 2 == 0 {
        return;
    }
    if MAIN_DECIDING.load(Ordering::Relaxed) {
        bump(&INTERRUPTED_MAIN);
    }
    let t = now();
    for _ in 0..2 {
        let d = target.decide(t);
        bump(&ISR_DECISIONS);
        match d {
            Ok(d) if d.is_allowed() => bump(&ISR_ADMITTED),
            Ok(_) => {}
            Err(_) => bump(&ISR_ERRORS),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Reporting.

/// Counts checks and prints one line per check.
pub struct Report {
    /// Checks that held.
    pub passed: u32,
    /// Checks that did not.
    pub failed: u32,
    print: fn(fmt::Arguments<'_>),
}

impl Report {
    /// A report printing through `print` (one call per line, no newline included).
    pub const fn new(print: fn(fmt::Arguments<'_>)) -> Report {
        Report {
            passed: 0,
            failed: 0,
            print,
        }
    }

    /// Prints one line.
    pub fn line(&self, args: fmt::Arguments<'_>) {
        (self.print)(args);
    }

    /// Records `got == expected` for the check `name`.
    pub fn eq<T: PartialEq + fmt::Debug>(&mut self, name: &str, got: T, expected: T) {
        if got == expected {
            self.passed += 1;
        } else {
            self.failed += 1;
            self.line(format_args!(
                "FAIL {name}: got {got:?}, expected {expected:?}"
            ));
        }
    }

    /// Records that `cond` holds for the check `name`.
    pub fn truth(&mut self, name: &str, cond: bool) {
        self.eq(name, cond, true);
    }

    /// Prints a group's result.
    pub fn group(&self, name: &str, failed_before: u32) {
        let verdict = if self.failed == failed_before {
            "ok"
        } else {
            "FAILED"
        };
        self.line(format_args!("{verdict} {name}"));
    }

    /// Prints the verdict line the harness looks for and says whether everything held.
    pub fn finish(&self, target: &str) -> bool {
        if self.failed == 0 {
            self.line(format_args!(
                "tollgate firmware {target}: PASS ({} checks)",
                self.passed
            ));
        } else {
            self.line(format_args!(
                "tollgate firmware {target}: FAIL ({} of {} checks failed)",
                self.failed,
                self.passed + self.failed
            ));
        }
        self.failed == 0
    }
}

/// The numbers of a decision worth comparing, as one tuple.
fn nums(d: &Decision) -> (Outcome, u64, u64, Option<u64>, u64) {
    (d.outcome, d.used, d.remaining, d.retry_after, d.reset_after)
}

// ---------------------------------------------------------------------------------------------
// Scripted checks, on a simulated 32-bit counter (exact times, exact expectations).

/// ShopBase's bucket (docs/semantics.md#leaky-bucket): 30, draining 2 per second, on a 1 kHz tick.
static SHOPBASE: LeakyBucket = LeakyBucket::new(quota(30, 2, 1_000));
/// TikTok Shop's window (docs/semantics.md#vendor-presets): 50 per second, on a 1 kHz tick.
static TIKTOK: FixedWindow = FixedWindow::new(window(50, 1_000));
/// The simulated counter's extender.
static SIM_CLOCK: WrappingClock = WrappingClock::new();

/// A simulated hardware counter: a `u32` that the check advances by hand.
struct SimCounter(u32);

impl SimCounter {
    fn now(&self) -> u64 {
        let raw = self.0;
        SIM_CLOCK.now(|| raw)
    }
    fn advance(&mut self, ticks: u32) -> u64 {
        self.0 = self.0.wrapping_add(ticks);
        self.now()
    }
}

/// The ShopBase example of docs/semantics.md#reported-numbers, across a wrap of the 32-bit counter.
pub fn leaky_bucket_scripted(r: &mut Report) {
    let before = r.failed;
    let mut hw = SimCounter(u32::MAX - 99);
    let t0 = hw.now();
    r.eq(
        "bucket: first reading is the raw counter",
        t0,
        u64::from(u32::MAX - 99),
    );
    for i in 1..=30u64 {
        let d = SHOPBASE.decide(t0, 1);
        r.eq(
            "bucket: burst admitted",
            d.map(|d| nums(&d)),
            Ok((Outcome::Allowed, i, 30 - i, Some(0), i * 500)),
        );
    }
    let d = SHOPBASE.decide(t0, 1);
    // The 31st request at t0 is denied; it would pass half a second (500 ticks) later.
    let expected_retry = if cfg!(feature = "wrong-expectation") {
        501
    } else {
        500
    };
    r.eq(
        "bucket: 31st denied, retry after 500",
        d.map(|d| nums(&d)),
        Ok((Outcome::Limited, 30, 0, Some(expected_retry), 15_000)),
    );
    // 499 ticks later it still does not pass; at 500 it does. The counter wraps in between.
    let t = hw.advance(499);
    r.eq(
        "bucket: one tick early",
        SHOPBASE.peek(t, 1).map(|d| d.outcome),
        Ok(Outcome::Limited),
    );
    let t = hw.advance(1);
    r.truth(
        "bucket: counter wrapped",
        hw.0 < 1_000 && t > u64::from(u32::MAX),
    );
    r.eq("bucket: time across the wrap", t - t0, 500);
    r.eq(
        "bucket: admitted on time",
        SHOPBASE.decide(t, 1).map(|d| nums(&d)),
        Ok((Outcome::Allowed, 30, 0, Some(0), 15_000)),
    );
    // Ten seconds later the level is 30 - 20 = 10: "10/30".
    let t = hw.advance(10_000);
    r.eq(
        "bucket: 10 s later",
        SHOPBASE.peek(t, 1).map(|d| (d.used, d.limit, d.remaining)),
        Ok((10, 30, 20)),
    );
    r.eq(
        "bucket: cost above burst is never",
        SHOPBASE.decide(t, 31).map(|d| (d.outcome, d.retry_after)),
        Ok((Outcome::Never, None)),
    );
    r.eq(
        "bucket: zero cost is an error",
        SHOPBASE.decide(t, 0).map(|d| d.outcome),
        Err(Error::ZeroCost),
    );
    r.eq(
        "bucket: cost 20 fits",
        SHOPBASE.decide(t, 20).map(|d| d.used),
        Ok(30),
    );
    r.group("leaky bucket (scripted, across a 32-bit wrap)", before);
}

/// docs/semantics.md#fixed-window on TikTok Shop's window.
pub fn fixed_window_scripted(r: &mut Report) {
    let before = r.failed;
    let mut hw = SimCounter(u32::MAX - 99);
    // Continue the simulated timeline well past the bucket's checks, to a known window edge:
    // windows start at multiples of 1 000 ticks; go 250 ticks into one.
    let t = hw.advance(0);
    let into = t % 1_000;
    let t = hw.advance(u32::try_from(1_000 - into + 250).unwrap_or(0));
    r.eq("window: 250 ticks into a window", t % 1_000, 250);
    for i in 1..=50u64 {
        r.eq(
            "window: 50 admitted",
            TIKTOK.decide(t, 1).map(|d| nums(&d)),
            Ok((Outcome::Allowed, i, 50 - i, Some(0), 750)),
        );
    }
    let t = hw.advance(100);
    r.eq(
        "window: 51st denied until the window ends",
        TIKTOK.decide(t, 1).map(|d| nums(&d)),
        Ok((Outcome::Limited, 50, 0, Some(650), 650)),
    );
    let t = hw.advance(650);
    r.eq(
        "window: next window admits",
        TIKTOK.decide(t, 1).map(|d| nums(&d)),
        Ok((Outcome::Allowed, 1, 49, Some(0), 1_000)),
    );
    r.eq(
        "window: cost above limit is never",
        TIKTOK.decide(t, 51).map(|d| (d.outcome, d.retry_after)),
        Ok((Outcome::Never, None)),
    );
    r.group("fixed window (scripted)", before);
}

/// docs/semantics.md#quota-changes on a 15-slot table in a `static`: keys apart, tiers keep the level, a full table
/// fails closed, drained slots are reclaimed.
pub fn key_table_scripted(r: &mut Report) {
    let before = r.failed;
    init_tables(r);
    let Ok(table) = table() else {
        r.eq("table: open", false, true);
        return;
    };
    let mut hw = SimCounter(u32::MAX - 99);
    let t = hw.advance(0);
    let shop = Key::pair(7, 42);
    for i in 1..=30u64 {
        r.eq(
            "table: burst admitted",
            table.decide(shop, 0, t, 1).map(|d| nums(&d)),
            Ok((Outcome::Allowed, i, 30 - i, Some(0), i * 500)),
        );
    }
    r.eq(
        "table: 31st denied",
        table.decide(shop, 0, t, 1).map(|d| nums(&d)),
        Ok((Outcome::Limited, 30, 0, Some(500), 15_000)),
    );
    r.eq(
        "table: another key is apart",
        table
            .decide(Key::pair(7, 43), 0, t, 1)
            .map(|d| (d.outcome, d.used)),
        Ok((Outcome::Allowed, 1)),
    );
    r.eq(
        "table: premium tier keeps the level",
        table
            .decide(shop, 1, t, 1)
            .map(|d| (d.outcome, d.used, d.limit)),
        Ok((Outcome::Allowed, 31, 60)),
    );
    // Fill the remaining 13 slots (15 slots, all within the probe window), then one key more.
    let mut admitted = 0;
    for k in 0..13u64 {
        if table
            .decide(Key::pair(100, k), 0, t, 1)
            .is_ok_and(|d| d.is_allowed())
        {
            admitted += 1;
        }
    }
    r.eq("table: 15 keys fit 15 slots", admitted, 13);
    r.eq("table: occupied", table.stats().occupied, 15);
    r.eq(
        "table: a 16th key fails closed",
        table
            .decide(Key::pair(200, 0), 0, t, 1)
            .map(|d| (d.outcome, d.verdict)),
        Ok((Outcome::Overloaded, Outcome::Overloaded)),
    );
    r.eq("table: rejection counted", table.stats().rejected, 1);
    // 16 s later every key has drained (one request: 0.5 s; 31 in the premium tier: 15.5 s).
    // A new key takes a drained slot.
    let t = hw.advance(16_000);
    r.eq(
        "table: a drained slot is reclaimed",
        table
            .decide(Key::pair(200, 0), 0, t, 1)
            .map(|d| (d.outcome, d.used)),
        Ok((Outcome::Allowed, 1)),
    );
    r.eq("table: reclaim counted", table.stats().reclaimed, 1);
    r.eq("table: still 15 keys", table.stats().occupied, 15);
    r.group("key table (scripted, 15 slots in a static)", before);
}

// ---------------------------------------------------------------------------------------------
// Checks on the real timer.

/// Waits until the hardware counter has wrapped; the extended clock must never step back and
/// must end past 2³².
pub fn clock_across_hardware_wrap(r: &mut Report) {
    let before = r.failed;
    let first = now();
    r.truth(
        "clock: starts at the raw counter",
        first >= CLOCK_START && first < CLOCK_START + 300,
    );
    let mut last = first;
    let mut steps_back = 0u32;
    let mut samples = 0u32;
    while last <= u64::from(u32::MAX) + 20 {
        let t = now();
        if t < last {
            steps_back += 1;
        }
        last = t;
        samples = samples.wrapping_add(1);
    }
    r.eq("clock: never steps back", steps_back, 0);
    r.truth(
        "clock: raw counter wrapped",
        TICKS.load(Ordering::Relaxed) < 1_000,
    );
    r.truth("clock: extended past 2^32", last > u64::from(u32::MAX));
    r.line(format_args!(
        "  clock: {samples} readings from {first} to {last}"
    ));
    r.group("wrapping clock on the hardware tick counter", before);
}

/// Main loop and timer interrupt decide on one leaky bucket (`target`: [`SHARED_BUCKET`] or
/// [`SHARED_KEY`] in the shared table, both burst 64 draining 3 per 2 ticks) for `ticks` ticks. With
/// demand never letting the bucket empty, the exact bound is
/// `burst + ⌊(t_end − t_first) · count / period⌋`, where the main loop fills the bucket at
/// `t_first` and, after the handler stops, takes decisions at `t_end` until one is denied.
pub fn bucket_shared_with_interrupt(r: &mut Report, target: Shared, ticks: u64) {
    let before = r.failed;
    let (name, q) = match target {
        Shared::TableKey => ("table key", SHARED_TIERS[0]),
        _ => ("shared bucket", *SHARED_BUCKET.quota()),
    };
    let isr_before = u64::from(ISR_ADMITTED.load(Ordering::Relaxed));
    let interrupted_before = INTERRUPTED_MAIN.load(Ordering::Relaxed);
    let decisions_before = ISR_DECISIONS.load(Ordering::Relaxed);
    // Fill the bucket at t_first, before the handler joins: from then on demand never lets it
    // empty (a level of 1 would drain within a tick and lose the fraction of credit that the
    // bound counts).
    let t_first = now();
    let mut main_admitted = 0u64;
    let mut errors = 0u32;
    while target.decide(t_first).is_ok_and(|d| d.is_allowed()) {
        main_admitted += 1;
    }
    r.eq(
        "shared bucket: filled at the start",
        main_admitted,
        q.burst(),
    );
    ISR_TARGET.store(target as u32, Ordering::Release);
    loop {
        let t = now();
        if t >= t_first + ticks {
            break;
        }
        MAIN_DECIDING.store(true, Ordering::Relaxed);
        let d = target.decide(t);
        MAIN_DECIDING.store(false, Ordering::Relaxed);
        match d {
            Ok(d) if d.is_allowed() => main_admitted += 1,
            Ok(_) => {}
            Err(_) => errors += 1,
        }
    }
    ISR_TARGET.store(0, Ordering::Release);
    // The handler may still be in its last run: it is not, once a tick has passed.
    let stop = now();
    while now() < stop + 2 {}
    // Fill the bucket at t_end: decide until denied.
    let t_end = now();
    while target.decide(t_end).is_ok_and(|d| d.is_allowed()) {
        main_admitted += 1;
    }
    let isr_admitted = u64::from(ISR_ADMITTED.load(Ordering::Relaxed)) - isr_before;
    let bound = q.burst() + (t_end - t_first) * q.count() / q.period();
    r.eq(
        "shared bucket: main + interrupt = exact bound",
        main_admitted + isr_admitted,
        bound,
    );
    r.eq("shared bucket: no errors in main", errors, 0);
    r.eq(
        "shared bucket: no errors in the handler",
        ISR_ERRORS.load(Ordering::Relaxed),
        0,
    );
    r.truth("shared bucket: the handler got some", isr_admitted > 0);
    r.truth(
        "shared bucket: main got some after the first burst",
        main_admitted > q.burst(),
    );
    let interrupted = INTERRUPTED_MAIN.load(Ordering::Relaxed) - interrupted_before;
    r.truth(
        "shared bucket: the handler interrupted main mid-decision",
        interrupted > 0,
    );
    r.line(format_args!(
        "  {name}: {} ticks, main {main_admitted} + handler {isr_admitted} = {} (bound {bound}); handler decisions {}, {interrupted} of them inside a main decision",
        t_end - t_first,
        main_admitted + isr_admitted,
        ISR_DECISIONS.load(Ordering::Relaxed) - decisions_before
    ));
    match target {
        Shared::TableKey => r.group(
            "key table: one key shared by main loop and timer interrupt",
            before,
        ),
        _ => r.group(
            "leaky bucket shared by main loop and timer interrupt",
            before,
        ),
    }
}

/// Main loop and timer interrupt decide on [`SHARED_WINDOW`] (one window for the whole run)
/// until it is full: together they get exactly its limit.
pub fn window_shared_with_interrupt(r: &mut Report) {
    let before = r.failed;
    let isr_before = ISR_ADMITTED.load(Ordering::Relaxed);
    let interrupted_before = INTERRUPTED_MAIN.load(Ordering::Relaxed);
    ISR_TARGET.store(Shared::Window as u32, Ordering::Release);
    let mut main_admitted = 0u64;
    let mut errors = 0u32;
    // Spread main's demand over ticks (at most a few per tick) so the handler competes.
    let mut last_tick = now();
    let mut this_tick = 0u32;
    loop {
        let t = now();
        if t != last_tick {
            last_tick = t;
            this_tick = 0;
        }
        if this_tick >= 3 {
            continue;
        }
        this_tick += 1;
        MAIN_DECIDING.store(true, Ordering::Relaxed);
        let d = SHARED_WINDOW.decide(t, 1);
        MAIN_DECIDING.store(false, Ordering::Relaxed);
        match d {
            Ok(d) if d.is_allowed() => main_admitted += 1,
            Ok(d) if d.outcome == Outcome::Limited => break,
            Ok(_) => {}
            Err(_) => errors += 1,
        }
    }
    ISR_TARGET.store(0, Ordering::Release);
    let stop = now();
    while now() < stop + 2 {}
    let isr_admitted = u64::from(ISR_ADMITTED.load(Ordering::Relaxed) - isr_before);
    let limit = SHARED_WINDOW.quota().limit();
    r.eq(
        "shared window: main + interrupt = limit",
        main_admitted + isr_admitted,
        limit,
    );
    r.eq(
        "shared window: reported used",
        SHARED_WINDOW.peek(now(), 1).map(|d| d.used),
        Ok(limit),
    );
    r.eq("shared window: no errors", errors, 0);
    r.truth(
        "shared window: both got some",
        main_admitted > 0 && isr_admitted > 0,
    );
    let interrupted = INTERRUPTED_MAIN.load(Ordering::Relaxed) - interrupted_before;
    r.line(format_args!(
        "  shared window: main {main_admitted} + handler {isr_admitted} = {limit}; {interrupted} handler runs inside a main decision"
    ));
    r.group(
        "fixed window shared by main loop and timer interrupt",
        before,
    );
}
