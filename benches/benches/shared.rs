//! A limiter in shared memory against the same limiter in private memory, and two processes
//! against two threads, on one key and on disjoint keys.
//!
//! Every decision is admitted (a bucket of 2³² at one request per tick, caller tick as in
//! `contention`), so every one is a CAS. Group `shared_one`: one thread, `LeakyBucket` in
//! process memory against `SharedBucket` in an anonymous shared mapping and in a named region
//! under `/dev/shm`. Group `shared_two`: two threads on `SharedBucket`s, and two
//! processes (this binary started again as a worker, told what to run through its stdin),
//! each on the same region (one key) or each on its own (disjoint keys), released together.
//! Each thread or process times its own loop; reported is the slower one's time per decision.
//!
//! Key tables likewise (interleaved only): a `BucketTable` in process memory against a
//! `SharedBucketTable` in an anonymous mapping and in a named region, 1 000 keys present, each
//! decision on the next key; and two threads or two processes on one key or on disjoint keys
//! of one shared table.

use std::hint::black_box;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::Barrier;
use std::time::{Duration, Instant};

use criterion::{criterion_group, Criterion};
use tollgate::key::{Key, Seed};
use tollgate::shared::{Options, SharedBucket, SharedBucketTable};
use tollgate::table::{self, BucketTable, FullPolicy};
use tollgate::{LeakyBucket, Quota};
use tollgate_benches::Padded;

fn quota() -> Quota {
    Quota::new(u64::from(u32::MAX), 1, 1).expect("quota")
}

// Each loop is its own function, so every case's loop is compiled alike wherever it is called.
#[inline(never)]
fn decide_private(bucket: &LeakyBucket, now: u64, iters: u64) {
    for _ in 0..iters {
        black_box(
            bucket
                .decide(black_box(now), 1)
                .is_ok_and(|d| d.is_allowed()),
        );
    }
}

#[inline(never)]
fn decide_shared(bucket: &SharedBucket, now: u64, iters: u64) {
    for _ in 0..iters {
        black_box(
            bucket
                .decide(black_box(now), 1)
                .is_ok_and(|d| d.is_allowed()),
        );
    }
}

/// Keys present in the benchmarked tables, and their slots.
const TABLE_KEYS: u64 = 1_000;
const TABLE_SLOTS: usize = 1_250;

fn table_key(i: u64) -> Key {
    Key::pair(7, i)
}

/// Decisions on keys `first, first + step, ...` (mod `TABLE_KEYS`) of a table.
#[inline(never)]
fn decide_table(t: &BucketTable<'_>, now: u64, iters: u64, first: u64, step: u64) {
    let mut k = first;
    for _ in 0..iters {
        black_box(
            t.decide(table_key(black_box(k)), 0, black_box(now), 1)
                .is_ok_and(|d| d.is_allowed()),
        );
        k = (k + step) % TABLE_KEYS;
    }
}

fn open_table(path: &Path) -> SharedBucketTable {
    SharedBucketTable::open(
        path,
        TABLE_SLOTS,
        &[quota()],
        Some(Seed::new(1, 2)),
        FullPolicy::FailClosed,
        &Options::new(),
    )
    .expect("region")
}

/// A region path on tmpfs (`/dev/shm`) where there is one, as the docs advise: a region in a
/// file on disk pays page faults whenever the kernel writes the dirty page back.
fn region_path(name: &str) -> PathBuf {
    let shm = Path::new("/dev/shm");
    let dir = if shm.is_dir() {
        shm.to_path_buf()
    } else {
        std::env::temp_dir()
    };
    dir.join(format!("tollgate-bench-{name}-{}", std::process::id()))
}

/// A worker process deciding on the region at a path, on command.
struct Worker {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
}

impl Worker {
    fn start(path: &Path) -> Worker {
        Worker::spawn(path, false)
    }

    /// A worker deciding on the key table at `path`.
    fn start_table(path: &Path) -> Worker {
        Worker::spawn(path, true)
    }

    fn spawn(path: &Path, table: bool) -> Worker {
        let mut command = Command::new(std::env::current_exe().expect("exe"));
        if table {
            command.env("TOLLGATE_BENCH_TABLE", "1");
        }
        let mut child = command
            .env("TOLLGATE_BENCH_WORKER", path)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("worker");
        let stdin = child.stdin.take().expect("stdin");
        let stdout = BufReader::new(child.stdout.take().expect("stdout"));
        Worker {
            child,
            stdin,
            stdout,
        }
    }

    fn send(&mut self, line: &str) {
        writeln!(self.stdin, "{line}").expect("send");
        self.stdin.flush().expect("flush");
    }

    fn receive(&mut self) -> String {
        let mut line = String::new();
        self.stdout.read_line(&mut line).expect("receive");
        line.trim().to_owned()
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Both workers run `iters` decisions at `now`, released together; the slower one's own time
/// (each times its loop, so a coordinator descheduled at the wrong moment cannot shrink it).
fn two_processes(workers: &mut [Worker; 2], iters: u64, now: u64) -> Duration {
    two_processes_with(workers, iters, now, &["", ""])
}

/// [`two_processes`] with a suffix for each worker's command (a table's first key and step).
fn two_processes_with(
    workers: &mut [Worker; 2],
    iters: u64,
    now: u64,
    extra: &[&str; 2],
) -> Duration {
    for (w, e) in workers.iter_mut().zip(extra) {
        w.send(&format!("{iters} {now}{e}"));
    }
    for w in workers.iter_mut() {
        assert_eq!(w.receive(), "ready");
    }
    for w in workers.iter_mut() {
        w.send("go");
    }
    let nanos = workers
        .iter_mut()
        .map(|w| w.receive().parse::<u64>().expect("nanoseconds"))
        .max()
        .unwrap_or(0);
    Duration::from_nanos(nanos)
}

/// Two threads run `work(thread, iters)`, released together by a barrier; the slower one's own
/// time, measured as `two_processes` measures processes.
fn two_threads_timed(iters: u64, work: &(dyn Fn(usize, u64) + Sync)) -> Duration {
    let barrier = Barrier::new(2);
    std::thread::scope(|scope| {
        let handles: Vec<_> = (0..2)
            .map(|thread| {
                let barrier = &barrier;
                scope.spawn(move || {
                    barrier.wait();
                    let start = Instant::now();
                    work(thread, iters);
                    start.elapsed()
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("thread"))
            .max()
            .unwrap_or(Duration::ZERO)
    })
}

/// The worker's side: `iters now`, answer `ready`, wait for `go`, decide, answer the time.
fn worker(path: &Path) {
    let table = std::env::var_os("TOLLGATE_BENCH_TABLE").is_some();
    let held_table = table.then(|| open_table(path));
    let bucket = if table {
        None
    } else {
        Some(SharedBucket::open(path, quota(), &Options::new()).expect("region"))
    };
    let stdin = std::io::stdin();
    let mut lines = stdin.lock().lines();
    let mut out = std::io::stdout().lock();
    while let Some(Ok(line)) = lines.next() {
        let mut parts = line.split(' ').map(|p| p.parse::<u64>().expect("number"));
        let (iters, now) = (parts.next().expect("iters"), parts.next().expect("now"));
        // Tables: the first key and the step between keys (0: one key).
        let (first, step) = (parts.next().unwrap_or(0), parts.next().unwrap_or(0));
        writeln!(out, "ready").expect("ready");
        out.flush().expect("flush");
        if !matches!(lines.next(), Some(Ok(go)) if go == "go") {
            return;
        }
        let start = Instant::now();
        match (&bucket, &held_table) {
            (Some(b), _) => decide_shared(b, now, iters),
            (None, Some(t)) => decide_table(&t.table(), now, iters, first, step),
            (None, None) => return,
        }
        writeln!(out, "{}", start.elapsed().as_nanos()).expect("time");
        out.flush().expect("flush");
    }
}

fn shared_one(c: &mut Criterion) {
    let mut g = c.benchmark_group("shared_one");
    let private = Padded(LeakyBucket::new(quota()));
    let anonymous = SharedBucket::anonymous(quota()).expect("region");
    let path = region_path("one");
    let named = SharedBucket::open(&path, quota(), &Options::new()).expect("region");
    let mut now = 0u64;
    g.bench_function("private", |b| {
        b.iter_custom(|iters| {
            now += 1 << 34;
            let t = Instant::now();
            decide_private(&private.0, now, iters);
            t.elapsed()
        });
    });
    g.bench_function("shared_anonymous", |b| {
        b.iter_custom(|iters| {
            now += 1 << 34;
            let t = Instant::now();
            decide_shared(&anonymous, now, iters);
            t.elapsed()
        });
    });
    g.bench_function("shared_named", |b| {
        b.iter_custom(|iters| {
            now += 1 << 34;
            let t = Instant::now();
            decide_shared(&named, now, iters);
            t.elapsed()
        });
    });
    g.finish();
    let _ = std::fs::remove_file(path);
}

fn shared_two(c: &mut Criterion) {
    let mut g = c.benchmark_group("shared_two");
    let one = SharedBucket::anonymous(quota()).expect("region");
    let apart = [
        SharedBucket::anonymous(quota()).expect("region"),
        SharedBucket::anonymous(quota()).expect("region"),
    ];
    let mut now = 0u64;
    g.bench_function("threads_one_key", |b| {
        b.iter_custom(|iters| {
            now += 1 << 34;
            two_threads_timed(iters, &|_, n| decide_shared(&one, now, n))
        });
    });
    g.bench_function("threads_disjoint_keys", |b| {
        b.iter_custom(|iters| {
            now += 1 << 34;
            two_threads_timed(iters, &|t, n| decide_shared(&apart[t], now, n))
        });
    });
    let (p0, p1) = (region_path("two-a"), region_path("two-b"));
    let mut same = [Worker::start(&p0), Worker::start(&p0)];
    g.bench_function("processes_one_key", |b| {
        b.iter_custom(|iters| {
            now += 1 << 34;
            two_processes(&mut same, iters, now)
        });
    });
    drop(same);
    let mut disjoint = [Worker::start(&p0), Worker::start(&p1)];
    g.bench_function("processes_disjoint_keys", |b| {
        b.iter_custom(|iters| {
            now += 1 << 34;
            two_processes(&mut disjoint, iters, now)
        });
    });
    drop(disjoint);
    g.finish();
    let _ = std::fs::remove_file(p0);
    let _ = std::fs::remove_file(p1);
}

/// The same comparisons with the cases **interleaved**: round after round, each case runs
/// `ROUND` decisions in turn, and the median round of each is kept. Criterion measures one case
/// after the other for seconds each, so on a machine whose load changes (other jobs on these 2
/// vCPUs) its ratios between cases carry that change; interleaving gives every case the same
/// conditions. Printed as `interleaved/<case>: <ns> ns per decision`.
fn interleaved() {
    const ROUND: u64 = 1_000_000;
    const ROUNDS: u64 = 101;
    let private = Padded(LeakyBucket::new(quota()));
    let anonymous = SharedBucket::anonymous(quota()).expect("region");
    let path = region_path("interleaved");
    let named = SharedBucket::open(&path, quota(), &Options::new()).expect("region");
    let apart = [
        SharedBucket::anonymous(quota()).expect("region"),
        SharedBucket::anonymous(quota()).expect("region"),
    ];
    let (p0, p1) = (region_path("il-a"), region_path("il-b"));
    let mut same = [Worker::start(&p0), Worker::start(&p0)];
    let mut disjoint = [Worker::start(&p0), Worker::start(&p1)];
    let mut all: [Vec<Duration>; 7] = Default::default();
    let mut now = 1u64 << 40;
    for _ in 0..ROUNDS {
        let mut times = [Duration::ZERO; 7];
        now += 1 << 34;
        let t = Instant::now();
        decide_private(&private.0, now, ROUND);
        times[0] = t.elapsed();
        now += 1 << 34;
        let t = Instant::now();
        decide_shared(&anonymous, now, ROUND);
        times[1] = t.elapsed();
        now += 1 << 34;
        let t = Instant::now();
        decide_shared(&named, now, ROUND);
        times[2] = t.elapsed();
        now += 1 << 34;
        times[3] = two_threads_timed(ROUND, &|_, n| decide_shared(&anonymous, now, n));
        now += 1 << 34;
        times[4] = two_threads_timed(ROUND, &|t, n| decide_shared(&apart[t], now, n));
        now += 1 << 34;
        times[5] = two_processes(&mut same, ROUND, now);
        now += 1 << 34;
        times[6] = two_processes(&mut disjoint, ROUND, now);
        for (v, t) in all.iter_mut().zip(times) {
            v.push(t);
        }
    }
    report("", &mut all, ROUND);
    drop((same, disjoint));
    for p in [path, p0, p1] {
        let _ = std::fs::remove_file(p);
    }
}

/// Key tables, interleaved as [`interleaved`]: one thread on a private table and on shared ones
/// (1 000 keys, a different key each decision), then two threads and two processes on one key
/// and on disjoint keys (even keys for one, odd for the other) of one shared table.
fn interleaved_tables() {
    const ROUND: u64 = 1_000_000;
    const ROUNDS: u64 = 51;
    // Aligned as a region's table is (to 128 bytes), so the comparison is of the memory alone.
    static MEMORY: table::TableMemory<{ table::words(TABLE_SLOTS, 1) }> = table::TableMemory::new();
    let private = BucketTable::init(
        MEMORY.words(),
        &[quota()],
        Seed::new(1, 2),
        FullPolicy::FailClosed,
    )
    .expect("table");
    let anonymous = SharedBucketTable::anonymous(
        TABLE_SLOTS,
        &[quota()],
        Some(Seed::new(1, 2)),
        FullPolicy::FailClosed,
    )
    .expect("region");
    let path = region_path("tables");
    let named = open_table(&path);
    let mut now = 1u64 << 40;
    for t in [private, anonymous.table(), named.table()] {
        decide_table(&t, now, TABLE_KEYS, 0, 1);
    }
    let mut workers = [Worker::start_table(&path), Worker::start_table(&path)];
    let mut all: [Vec<Duration>; 7] = Default::default();
    for _ in 0..ROUNDS {
        let mut times = [Duration::ZERO; 7];
        for (i, t) in [private, anonymous.table(), named.table()]
            .iter()
            .enumerate()
        {
            now += 1 << 34;
            let start = Instant::now();
            decide_table(t, now, ROUND, 0, 1);
            times[i] = start.elapsed();
        }
        let shared = named.table();
        now += 1 << 34;
        times[3] = two_threads_timed(ROUND, &|_, n| decide_table(&shared, now, n, 5, 0));
        now += 1 << 34;
        times[4] = two_threads_timed(ROUND, &|t, n| decide_table(&shared, now, n, t as u64, 2));
        now += 1 << 34;
        times[5] = two_processes_with(&mut workers, ROUND, now, &[" 5 0", " 5 0"]);
        now += 1 << 34;
        times[6] = two_processes_with(&mut workers, ROUND, now, &[" 0 2", " 1 2"]);
        for (v, t) in all.iter_mut().zip(times) {
            v.push(t);
        }
    }
    report("table_", &mut all, ROUND);
    drop(workers);
    let _ = std::fs::remove_file(path);
}

/// The seven cases each group measures, in the order of its `[Vec<Duration>; 7]`.
const CASES: [&str; 7] = [
    "private",
    "shared_anonymous",
    "shared_named",
    "threads_one_key",
    "threads_disjoint_keys",
    "processes_one_key",
    "processes_disjoint_keys",
];

/// Prints each case's median round as `interleaved/<prefix><case>: <ns> ns per decision`, and
/// the ratios of cases 1 and 2 (the shared ones) to case 0 (the private one).
fn report(prefix: &str, all: &mut [Vec<Duration>; 7], round: u64) {
    let cases = CASES;
    let median: Vec<Duration> = all
        .iter_mut()
        .map(|v| {
            v.sort_unstable();
            v[v.len() / 2]
        })
        .collect();
    // Nanoseconds per decision, to a tenth: exact in u128, printed as a decimal.
    let per = |d: Duration| d.as_nanos() * 10 / u128::from(round);
    for (name, &m) in cases.iter().zip(&median) {
        let tenths = per(m);
        println!(
            "interleaved/{prefix}{name}: {}.{} ns per decision",
            tenths / 10,
            tenths % 10
        );
    }
    let ratio = |a: Duration, b: Duration| a.as_nanos() * 100 / b.as_nanos().max(1);
    let (r1, r2) = (ratio(median[1], median[0]), ratio(median[2], median[0]));
    println!(
        "interleaved/ratio {prefix}{}/{prefix}{}: {}.{:02}x, {prefix}{}/{prefix}{}: {}.{:02}x",
        cases[1],
        cases[0],
        r1 / 100,
        r1 % 100,
        cases[2],
        cases[0],
        r2 / 100,
        r2 % 100
    );
}

criterion_group!(benches, shared_one, shared_two);

fn main() {
    if let Some(path) = std::env::var_os("TOLLGATE_BENCH_WORKER") {
        worker(Path::new(&path));
        return;
    }
    benches();
    Criterion::default().configure_from_args().final_summary();
    // Only in a real run (`cargo bench`), not when the test command runs the bench as a test.
    if std::env::args().any(|a| a == "--bench") {
        interleaved();
        interleaved_tables();
    }
}
