//! Multi-process torture of shared regions. This binary is its own worker: the supervisor runs
//! it again with `TOLLGATE_TORTURE_ROLE` set.
//!
//! 1. **Racing creators**: rounds of processes that create-or-open one path at the same instant,
//!    some of them killed at once; exactly one survivor created the region (or a killed one
//!    did), and everyone agrees on one state.
//! 2. **Limiters**: workers hammer twelve keys (four leaky buckets, two sliding logs, one fixed
//!    window, each in its own region; three keys of one bucket key table with three tiers; two
//!    keys of one window key table) on `CLOCK_MONOTONIC` nanoseconds, while the supervisor
//!    SIGKILLs random workers at random moments and starts new ones. Each worker reports every
//!    decision through a pipe: `p key` before deciding, `a key cost` or `d key` after. A worker
//!    killed between the two leaves an unresolved `p`: that decision may or may not have been
//!    admitted. The check: every key's admitted units counted from `a` lines are at most the
//!    exact bound for its quota over the run, and each key admits again once drained.
//! 3. **Leases**: workers take, hold and release (or abandon) leases of one concurrency limit
//!    while being killed. Each grant is reported (`g slot generation deadline now`) and each
//!    release announced before it is made (`r slot generation`). The check: no (slot,
//!    generation) is granted twice, and a slot is granted again only after its previous lease
//!    was released or had expired at the new grant's `now`; the limit still grants all its
//!    permits at the end.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use std::rc::Rc;

use tollgate::shared::{
    Options, SharedBucket, SharedBucketTable, SharedLeases, SharedLog, SharedWindow,
    SharedWindowTable,
};
use tollgate::table::FullPolicy;
use tollgate::{Quota, WindowQuota};

const MS: u64 = 1_000_000;
const SECOND: u64 = 1_000_000_000;
const WORKERS: usize = 6;
const LIMITER_RUN: u64 = 14 * SECOND;
const LEASE_RUN: u64 = 8 * SECOND;
const LEASE_MAX: u32 = 3;
const LEASE_TICKS: u64 = 40 * MS;

fn now() -> u64 {
    let t = rustix::time::clock_gettime(rustix::time::ClockId::Monotonic);
    u64::try_from(t.tv_sec).unwrap() * SECOND + u64::try_from(t.tv_nsec).unwrap()
}

/// xorshift64*: enough randomness for schedules, seeded per process.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Rng {
        Rng(seed | 1)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) % n
    }
}

/// The limiters under test: one region per key, or a key of a shared key table.
enum Key {
    Bucket(SharedBucket),
    Log(SharedLog),
    Window(SharedWindow),
    /// A key of a bucket table, its tier, and that tier's quota.
    InBucketTable(Rc<SharedBucketTable>, tollgate::key::Key, usize, Quota),
    /// A key of a window table, its tier, and that tier's quota.
    InWindowTable(
        Rc<SharedWindowTable>,
        tollgate::key::Key,
        usize,
        WindowQuota,
    ),
}

fn bucket_quotas() -> [Quota; 4] {
    [
        Quota::new(20, 50, SECOND).unwrap(),
        Quota::new(5, 3, SECOND).unwrap(),
        Quota::new(100, 1_000, SECOND).unwrap(),
        Quota::new(1, 7, SECOND).unwrap(),
    ]
}

fn log_quotas() -> [WindowQuota; 2] {
    [
        WindowQuota::new(16, 100 * MS).unwrap(),
        WindowQuota::new(5, 40 * MS).unwrap(),
    ]
}

fn window_quota() -> WindowQuota {
    WindowQuota::new(40, 250 * MS).unwrap()
}

/// Slots of the shared key tables: a few groups, so keys share groups and probe.
const TABLE_SLOTS: usize = 15;

const KEYS: usize = 12;

fn open_keys(dir: &Path) -> Vec<Key> {
    let o = Options::new();
    let mut keys = Vec::new();
    for (i, q) in bucket_quotas().into_iter().enumerate() {
        keys.push(Key::Bucket(
            SharedBucket::open(dir.join(format!("bucket{i}")), q, &o).unwrap(),
        ));
    }
    for (i, q) in log_quotas().into_iter().enumerate() {
        keys.push(Key::Log(
            SharedLog::open(dir.join(format!("log{i}")), q, &o).unwrap(),
        ));
    }
    keys.push(Key::Window(
        SharedWindow::open(dir.join("window"), window_quota(), &o).unwrap(),
    ));
    let tiers = bucket_quotas();
    let table = Rc::new(
        SharedBucketTable::open(
            dir.join("table"),
            TABLE_SLOTS,
            &tiers,
            None,
            FullPolicy::FailClosed,
            &o,
        )
        .unwrap(),
    );
    for (key, tier) in [((1, 1), 0), ((1, 2), 1), ((2, 7), 3)] {
        let k = tollgate::key::Key::pair(key.0, key.1);
        keys.push(Key::InBucketTable(Rc::clone(&table), k, tier, tiers[tier]));
    }
    let wtiers = [window_quota()];
    let wtable = Rc::new(
        SharedWindowTable::open(
            dir.join("wtable"),
            TABLE_SLOTS,
            &wtiers,
            None,
            FullPolicy::FailClosed,
            &o,
        )
        .unwrap(),
    );
    for key in [(9, 9), (9, 10)] {
        let k = tollgate::key::Key::pair(key.0, key.1);
        keys.push(Key::InWindowTable(Rc::clone(&wtable), k, 0, wtiers[0]));
    }
    keys
}

impl Key {
    fn decide(&self, now: u64, cost: u64) -> bool {
        match self {
            Key::Bucket(b) => b.decide(now, cost),
            Key::Log(l) => l.decide(now, cost),
            Key::Window(w) => w.decide(now, cost),
            Key::InBucketTable(t, k, tier, _) => t.decide(*k, *tier, now, cost),
            Key::InWindowTable(t, k, tier, _) => t.decide(*k, *tier, now, cost),
        }
        .unwrap()
        .is_allowed()
    }

    /// The most units this key may admit to requests at times in `[t0, t1]`.
    fn bound(&self, t0: u64, t1: u64) -> u64 {
        let span = t1 - t0;
        let bucket = |q: &Quota| q.burst() + q.count() * span / q.period();
        let window = |q: &WindowQuota| q.limit() * (t1 / q.window() - t0 / q.window() + 1);
        match self {
            Key::Bucket(b) => bucket(b.quota()),
            Key::InBucketTable(_, _, _, q) => bucket(q),
            Key::InWindowTable(_, _, _, q) => window(q),
            // Any half-open window of W holds at most N: the ticks t0..=t1 are covered by
            // ⌈(span + 1) / W⌉ such windows.
            Key::Log(l) => l.quota().limit() * (span + 1).div_ceil(l.quota().window()),
            // At most N per window, for every window that meets [t0, t1].
            Key::Window(w) => window(w.quota()),
        }
    }

    /// When a key admits again for certain if asked at or after `t1 + this`.
    fn drain(&self) -> u64 {
        match self {
            Key::Bucket(b) => b.quota().drain_ticks() + 1,
            Key::Log(l) => l.quota().window() + 1,
            Key::Window(w) => w.quota().window() + 1,
            Key::InBucketTable(_, _, _, q) => q.drain_ticks() + 1,
            Key::InWindowTable(_, _, _, q) => q.window() + 1,
        }
    }
}

fn limiter_worker(dir: &Path, end: u64, seed: u64) {
    let keys = open_keys(dir);
    let mut rng = Rng::new(seed);
    let mut out = std::io::stdout().lock();
    loop {
        let t = now();
        if t >= end {
            break;
        }
        let k = usize::try_from(rng.below(KEYS as u64)).unwrap();
        let cost = if matches!(keys[k], Key::Log(_)) {
            1 + rng.below(2)
        } else {
            1
        };
        writeln!(out, "p {k} {t}").unwrap();
        if keys[k].decide(t, cost) {
            writeln!(out, "a {k} {cost}").unwrap();
        } else {
            writeln!(out, "d {k}").unwrap();
        }
    }
}

fn lease_worker(dir: &Path, end: u64, seed: u64) {
    let leases =
        SharedLeases::open(dir.join("leases"), LEASE_MAX, SECOND, &Options::new()).unwrap();
    let mut rng = Rng::new(seed);
    let mut out = std::io::stdout().lock();
    loop {
        let t = now();
        if t >= end {
            break;
        }
        let (_, lease) = leases.try_acquire(t, LEASE_TICKS).unwrap();
        let Some(lease) = lease else {
            std::thread::sleep(Duration::from_micros(200));
            continue;
        };
        writeln!(
            out,
            "g {} {} {} {t}",
            lease.slot, lease.generation, lease.deadline
        )
        .unwrap();
        std::thread::sleep(Duration::from_micros(rng.below(3_000)));
        // One lease in fifty is abandoned, as a hung request would.
        if rng.below(50) == 0 {
            continue;
        }
        writeln!(out, "r {} {}", lease.slot, lease.generation).unwrap();
        // Expired and taken over meanwhile: the release is refused and changes nothing.
        let _ = leases.release(&lease);
    }
}

fn creator(path: &Path, start: u64, kind: &str) {
    while now() < start {
        std::hint::spin_loop();
    }
    let (created, admitted) = if kind == "bucket" {
        let b =
            SharedBucket::open(path, Quota::new(30, 1, SECOND).unwrap(), &Options::new()).unwrap();
        let n = (0..10)
            .filter(|_| b.decide(0, 1).unwrap().is_allowed())
            .count();
        (b.created(), n)
    } else {
        let l =
            SharedLog::open(path, WindowQuota::new(30, SECOND).unwrap(), &Options::new()).unwrap();
        let n = (0..10)
            .filter(|_| l.decide(0, 1).unwrap().is_allowed())
            .count();
        (l.created(), n)
    };
    println!("{} {admitted}", u8::from(created));
}

/// What the supervisor learned from one worker's pipe.
#[derive(Default)]
struct Report {
    admitted: [u64; KEYS],
    admitted_decisions: u64,
    denied: [u64; KEYS],
    unresolved: [u64; KEYS],
    pending_lines: u64,
    /// The earliest and latest `now` this worker decided at.
    first: u64,
    last: u64,
    grants: Vec<(u64, u64, u64, u64)>,
    releases: Vec<(u64, u64)>,
}

fn read_report(child: &mut Child) -> std::thread::JoinHandle<Report> {
    let stdout = child.stdout.take().unwrap();
    std::thread::spawn(move || {
        let mut r = Report {
            first: u64::MAX,
            ..Report::default()
        };
        let mut pending = None;
        for line in BufReader::new(stdout).lines() {
            let line = line.unwrap();
            let f: Vec<u64> = line[2..].split(' ').map(|x| x.parse().unwrap()).collect();
            let key = |i: usize| usize::try_from(f[i]).unwrap();
            match &line[..1] {
                "p" => {
                    assert!(pending.is_none(), "two decisions at once");
                    pending = Some(key(0));
                    r.pending_lines += 1;
                    r.first = r.first.min(f[1]);
                    r.last = r.last.max(f[1]);
                }
                "a" => {
                    assert_eq!(pending.take(), Some(key(0)));
                    r.admitted[key(0)] += f[1];
                    r.admitted_decisions += 1;
                }
                "d" => {
                    assert_eq!(pending.take(), Some(key(0)));
                    r.denied[key(0)] += 1;
                }
                "g" => r.grants.push((f[0], f[1], f[2], f[3])),
                "r" => r.releases.push((f[0], f[1])),
                other => panic!("unexpected line {other}"),
            }
        }
        if let Some(k) = pending {
            r.unresolved[k] += 1;
        }
        r
    })
}

fn spawn(role: &str, dir: &Path, end: u64, seed: u64) -> Child {
    Command::new(std::env::current_exe().unwrap())
        .env("TOLLGATE_TORTURE_ROLE", role)
        .env("TOLLGATE_TORTURE_DIR", dir)
        .env("TOLLGATE_TORTURE_END", end.to_string())
        .env("TOLLGATE_TORTURE_SEED", seed.to_string())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap()
}

/// Runs `role` workers until `run` ns have passed, killing one at random every 20–220 ms and
/// starting a replacement. Returns every worker's report, the kill count and the run's span.
fn hammer(role: &str, dir: &Path, run: u64, rng: &mut Rng) -> (Vec<Report>, u64, u64, u64) {
    let t0 = now();
    let end = t0 + run;
    let mut workers: Vec<(Child, std::thread::JoinHandle<Report>)> = Vec::new();
    let start = |rng: &mut Rng| {
        let mut c = spawn(role, dir, end, rng.below(u64::MAX));
        let h = read_report(&mut c);
        (c, h)
    };
    for _ in 0..WORKERS {
        workers.push(start(rng));
    }
    let mut reports = Vec::new();
    let mut kills = 0;
    // Stop killing a little before the end, so the last replacements get to work.
    while now() + 400 * MS < end {
        std::thread::sleep(Duration::from_millis(20 + rng.below(200)));
        let i = usize::try_from(rng.below(workers.len() as u64)).unwrap();
        let (mut c, h) = workers.swap_remove(i);
        c.kill().unwrap(); // SIGKILL
        c.wait().unwrap();
        reports.push(h.join().unwrap());
        kills += 1;
        workers.push(start(rng));
    }
    for (mut c, h) in workers {
        assert!(c.wait().unwrap().success(), "a worker failed");
        reports.push(h.join().unwrap());
    }
    (reports, kills, t0, now())
}

fn racing_creators(dir: &Path, rng: &mut Rng) {
    let rounds = 40;
    let per_round = 5;
    let mut killed_total = 0;
    for round in 0..rounds {
        let kind = if round % 2 == 0 { "bucket" } else { "log" };
        let path = dir.join(format!("race{round}"));
        let start = now() + 80 * MS;
        let mut children: Vec<Child> = (0..per_round)
            .map(|_| {
                Command::new(std::env::current_exe().unwrap())
                    .env("TOLLGATE_TORTURE_ROLE", "creator")
                    .env("TOLLGATE_TORTURE_PATH", &path)
                    .env("TOLLGATE_TORTURE_END", start.to_string())
                    .env("TOLLGATE_TORTURE_KIND", kind)
                    .stdout(Stdio::piped())
                    .spawn()
                    .unwrap()
            })
            .collect();
        // In every other round one creator is killed around the moment they all start.
        let victim = (round % 4 >= 2).then(|| usize::try_from(rng.below(per_round)).unwrap());
        if let Some(v) = victim {
            let delay = 80 * MS - 200_000 + rng.below(600_000);
            std::thread::sleep(Duration::from_nanos(delay));
            children[v].kill().unwrap();
            killed_total += 1;
        }
        let mut created = 0;
        let mut admitted = 0;
        for (i, c) in children.into_iter().enumerate() {
            let out = c.wait_with_output().unwrap();
            if Some(i) == victim && !out.status.success() {
                continue;
            }
            assert!(out.status.success(), "round {round}: a creator failed");
            let s = String::from_utf8(out.stdout).unwrap();
            let f: Vec<usize> = s.split_whitespace().map(|x| x.parse().unwrap()).collect();
            created += f[0];
            admitted += f[1];
        }
        assert!(created <= 1, "round {round}: {created} creators");
        if victim.is_none() {
            assert_eq!(created, 1, "round {round}: nobody created the region");
            assert_eq!(admitted, 30, "round {round}: {admitted} admitted of 30");
        } else {
            assert!(admitted <= 30, "round {round}: {admitted} admitted of 30");
        }
        // Whoever won, the region is complete and agrees with the parameters.
        if kind == "bucket" {
            let b = SharedBucket::open(&path, Quota::new(30, 1, SECOND).unwrap(), &Options::new())
                .unwrap();
            assert!(b.peek(0, 1).unwrap().used >= admitted as u64);
        } else {
            SharedLog::open(
                &path,
                WindowQuota::new(30, SECOND).unwrap(),
                &Options::new(),
            )
            .unwrap();
        }
    }
    // Creators killed before linking leave only their temporary files.
    let leftovers = std::fs::read_dir(dir)
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .file_name()
                .to_string_lossy()
                .contains(".tmp.")
        })
        .count();
    println!(
        "racing creators: {rounds} rounds of {per_round} processes, {killed_total} killed at the start; \
         one creator per round, one state; {leftovers} temporary files left by killed creators"
    );
}

fn limiters(dir: &Path, rng: &mut Rng) {
    let (reports, kills, _, end) = hammer("limiter", dir, LIMITER_RUN, rng);
    // The exact span of the decisions: from the earliest `now` any worker decided at to the
    // latest.
    let t0 = reports.iter().map(|r| r.first).min().unwrap();
    let t1 = reports.iter().map(|r| r.last).max().unwrap();
    assert!(t1 < end);
    let keys = open_keys(dir);
    let mut decisions = 0;
    let mut unresolved_total = 0;
    for (k, key) in keys.iter().enumerate() {
        let admitted: u64 = reports.iter().map(|r| r.admitted[k]).sum();
        let denied: u64 = reports.iter().map(|r| r.denied[k]).sum();
        let unresolved: u64 = reports.iter().map(|r| r.unresolved[k]).sum();
        let bound = key.bound(t0, t1);
        decisions += denied + unresolved;
        unresolved_total += unresolved;
        println!(
            "key {k}: {admitted} units admitted (≤ {bound}), {denied} denied, {unresolved} unresolved"
        );
        assert!(
            admitted <= bound,
            "key {k}: {admitted} admitted, bound {bound}"
        );
        // Under pressure: the keys were hammered, so each admitted a good part of its bound
        // (the check above is not met by admitting little).
        assert!(
            admitted * 2 >= bound,
            "key {k} was not saturated: {admitted} of {bound}"
        );
        assert!(key.decide(t1 + key.drain(), 1), "key {k} no longer admits");
    }
    // Counters add up: every decision begun was admitted, denied, or cut off by a kill.
    for r in &reports {
        let ended =
            r.admitted_decisions + r.denied.iter().sum::<u64>() + r.unresolved.iter().sum::<u64>();
        assert_eq!(ended, r.pending_lines);
        decisions += r.admitted_decisions;
    }
    println!(
        "limiters: {} processes ({WORKERS} at a time), {kills} SIGKILLs, {decisions} decisions in {} ms \
         ({unresolved_total} cut off by a kill), every key within its exact bound and usable after",
        reports.len(),
        (t1 - t0) / MS
    );
}

fn leases(dir: &Path, rng: &mut Rng) {
    let (reports, kills, _, t1) = hammer("lease", dir, LEASE_RUN, rng);
    let mut grants: HashMap<(u64, u64), (u64, u64)> = HashMap::new();
    let mut released = std::collections::HashSet::new();
    for r in &reports {
        for &(slot, generation, deadline, at) in &r.grants {
            assert!(
                grants.insert((slot, generation), (deadline, at)).is_none(),
                "slot {slot} generation {generation} granted twice"
            );
        }
        released.extend(r.releases.iter().copied());
    }
    let mut checked = 0;
    for (&(slot, generation), &(_, at)) in &grants {
        if let Some(&(prev_deadline, _)) = grants.get(&(slot, generation - 1)) {
            if !released.contains(&(slot, generation - 1)) {
                assert!(
                    at >= prev_deadline,
                    "slot {slot}: generation {generation} granted at {at}, before the unreleased \
                     previous lease expired at {prev_deadline}"
                );
            }
            checked += 1;
        }
    }
    assert!(u32::try_from(grants.keys().map(|k| k.0).max().unwrap()).unwrap() < LEASE_MAX);
    // Not wedged: once every lease has expired, all permits are there.
    let l = SharedLeases::open(dir.join("leases"), LEASE_MAX, SECOND, &Options::new()).unwrap();
    let later = t1 + LEASE_TICKS;
    assert_eq!(l.in_flight(later), 0);
    for _ in 0..LEASE_MAX {
        assert!(l.try_acquire(later, 1).unwrap().0.is_allowed());
    }
    let abandoned = grants.len() - released.len();
    println!(
        "leases: {} processes, {kills} SIGKILLs, {} grants of {LEASE_MAX} permits, {abandoned} never \
         released (abandoned or killed), {checked} successive grants checked: a permit is granted \
         again only after release or expiry; all permits free after the longest lease",
        reports.len(),
        grants.len(),
    );
}

fn main() {
    let env = |k: &str| std::env::var(k).unwrap();
    match std::env::var("TOLLGATE_TORTURE_ROLE").as_deref() {
        Ok("limiter") => {
            let dir = PathBuf::from(env("TOLLGATE_TORTURE_DIR"));
            limiter_worker(
                &dir,
                env("TOLLGATE_TORTURE_END").parse().unwrap(),
                env("TOLLGATE_TORTURE_SEED").parse().unwrap(),
            );
            return;
        }
        Ok("lease") => {
            let dir = PathBuf::from(env("TOLLGATE_TORTURE_DIR"));
            lease_worker(
                &dir,
                env("TOLLGATE_TORTURE_END").parse().unwrap(),
                env("TOLLGATE_TORTURE_SEED").parse().unwrap(),
            );
            return;
        }
        Ok("creator") => {
            creator(
                Path::new(&env("TOLLGATE_TORTURE_PATH")),
                env("TOLLGATE_TORTURE_END").parse().unwrap(),
                &env("TOLLGATE_TORTURE_KIND"),
            );
            return;
        }
        _ => {}
    }
    let dir = std::env::temp_dir().join(format!("tollgate-torture-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let mut rng = Rng::new(now() ^ u64::from(std::process::id()));
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        racing_creators(&dir, &mut rng);
        limiters(&dir, &mut rng);
        leases(&dir, &mut rng);
    }));
    let _ = std::fs::remove_dir_all(&dir);
    match result {
        Ok(()) => println!("shared torture: 3 passed, 0 failed"),
        Err(e) => {
            println!("shared torture: 0 passed, 1 failed");
            std::panic::resume_unwind(e);
        }
    }
}
