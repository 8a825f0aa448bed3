//! Shared regions: sharing, the same decisions as private limiters, mismatches, permissions,
//! racing creators (threads here; processes in `shared_torture`), leases.

// Short names for handles (a, b, c) and paths (p) read best in these scenarios.
#![allow(clippy::many_single_char_names)]

use std::fs;
use std::io::Write as _;
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;

use proptest::prelude::*;
use tollgate::key::{Key, Seed};
use tollgate::shared::{
    Create, Kind, Options, RegionError, SharedBucket, SharedBucketTable, SharedLeases, SharedLog,
    SharedWindow, SharedWindowTable,
};
use tollgate::table::FullPolicy;
use tollgate::{Error, FixedWindow, LeakyBucket, Outcome, Quota, SlidingLog, WindowQuota};

/// A fresh path in the temporary directory, removed on drop.
struct TempPath(PathBuf);

impl TempPath {
    fn new(name: &str) -> TempPath {
        static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let p =
            std::env::temp_dir().join(format!("tollgate-test-{name}-{}-{n}", std::process::id()));
        let _ = fs::remove_file(&p);
        TempPath(p)
    }
}

impl Drop for TempPath {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.0);
    }
}

const SECOND: u64 = 1_000_000_000;

fn shopbase() -> Quota {
    Quota::new(30, 2, SECOND).unwrap()
}

#[test]
fn two_handles_on_one_path_share_one_bucket() {
    let p = TempPath::new("bucket");
    let a = SharedBucket::open(&p.0, shopbase(), &Options::new()).unwrap();
    let b = SharedBucket::open(&p.0, shopbase(), &Options::new()).unwrap();
    assert!(a.created());
    assert!(!b.created());
    for i in 0..30 {
        let h = if i % 2 == 0 { &a } else { &b };
        let d = h.decide(0, 1).unwrap();
        assert!(d.is_allowed());
        assert_eq!(d.used, i + 1);
    }
    let d = a.decide(0, 1).unwrap();
    assert_eq!(
        (d.outcome, d.retry_after),
        (Outcome::Limited, Some(SECOND / 2))
    );
    assert!(b.decide(SECOND / 2, 1).unwrap().is_allowed());
    // The state survives every handle: a later process opens the same bucket.
    drop((a, b));
    let c = SharedBucket::open(&p.0, shopbase(), &Options::new()).unwrap();
    assert_eq!(c.peek(SECOND / 2, 1).unwrap().used, 30);
    c.reset();
    assert!(c.is_drained(0));
    // The mode is exactly 0600, whatever the umask.
    assert_eq!(
        fs::metadata(&p.0).unwrap().permissions().mode() & 0o777,
        0o600
    );
}

#[test]
fn anonymous_regions_and_every_kind() {
    let w = SharedWindow::anonymous(WindowQuota::new(50, SECOND).unwrap()).unwrap();
    assert!(w.created());
    for _ in 0..50 {
        assert!(w.decide(10, 1).unwrap().is_allowed());
    }
    let d = w.decide(10, 1).unwrap();
    assert_eq!(
        (d.outcome, d.retry_after),
        (Outcome::Limited, Some(SECOND - 10))
    );
    assert!(w.decide(SECOND, 1).unwrap().is_allowed());
    assert!(!w.is_drained(SECOND));
    w.reset();
    assert!(w.is_drained(SECOND));

    let log = SharedLog::anonymous(WindowQuota::new(2, 10).unwrap()).unwrap();
    assert!(log.decide(0, 1).unwrap().is_allowed());
    assert!(log.decide(5, 1).unwrap().is_allowed());
    let d = log.decide(9, 1).unwrap();
    assert_eq!(
        (d.outcome, d.retry_after, d.reset_after),
        (Outcome::Limited, Some(1), 6)
    );
    assert!(log.decide(10, 1).unwrap().is_allowed());
    assert_eq!(log.decide(10, 3).unwrap().outcome, Outcome::Never);
    assert_eq!(log.decide(10, 0), Err(Error::ZeroCost));
    assert!(matches!(
        SharedLog::anonymous(WindowQuota::new(65_536, 10).unwrap()),
        Err(RegionError::Engine(Error::CapacityExceeded))
    ));
}

#[test]
fn leases_expire_and_release_only_what_they_name() {
    let l = SharedLeases::anonymous(2, 100).unwrap();
    assert_eq!(l.try_acquire(0, 0), Err(Error::InvalidArgument));
    assert_eq!(l.try_acquire(0, 101), Err(Error::InvalidArgument));
    assert_eq!(l.try_acquire(u64::MAX, 1), Err(Error::ClockOutOfRange));
    let (d, a) = l.try_acquire(0, 10).unwrap();
    assert_eq!((d.outcome, d.used, d.limit), (Outcome::Allowed, 1, 2));
    let a = a.unwrap();
    let (_, b) = l.try_acquire(0, 50).unwrap();
    let mut b = b.unwrap();
    let (d, none) = l.try_acquire(5, 10).unwrap();
    assert_eq!((d.outcome, d.retry_after), (Outcome::Overloaded, Some(5)));
    assert_eq!(d.outcome.http_status(), Some(503));
    assert!(none.is_none());
    assert_eq!(l.in_flight(5), 2);
    // `a` was never released (its holder died): at its deadline the permit is free again.
    assert_eq!(l.in_flight(10), 1);
    let (d, c) = l.try_acquire(10, 10).unwrap();
    assert!(d.is_allowed());
    let c = c.unwrap();
    assert_eq!(c.slot, a.slot);
    // The old lease releases nothing of the new holder's.
    assert_eq!(l.release(&a), Err(Error::NotAcquired));
    assert_eq!(l.in_flight(10), 2);
    l.release(&c).unwrap();
    assert_eq!(l.release(&c), Err(Error::NotAcquired));
    // Renewal extends an unexpired lease only.
    l.renew(&mut b, 40, 100).unwrap();
    assert_eq!(b.deadline, 140);
    assert_eq!(l.in_flight(139), 1);
    assert_eq!(l.renew(&mut b, 140, 10), Err(Error::NotAcquired));
    // An expired lease nobody took may still be released.
    l.release(&b).unwrap();
    assert_eq!(l.in_flight(0), 0);
    let zero = SharedLeases::anonymous(0, 10).unwrap();
    let (d, none) = zero.try_acquire(0, 1).unwrap();
    assert_eq!((d.outcome, d.retry_after), (Outcome::Overloaded, None));
    assert!(none.is_none());
}

#[test]
fn opening_with_other_parameters_names_the_difference() {
    let p = TempPath::new("mismatch");
    let opts = Options::new();
    SharedBucket::open(&p.0, shopbase(), &opts).unwrap();
    let err = |q: Quota| SharedBucket::open(&p.0, q, &opts).unwrap_err();
    let e = err(Quota::new(31, 2, SECOND).unwrap());
    assert!(
        matches!(
            e,
            RegionError::Mismatch {
                field: "burst",
                found: 30,
                expected: 31
            }
        ),
        "{e}"
    );
    assert_eq!(
        e.to_string(),
        "shared region: burst is 30 in the region, 31 was asked for"
    );
    let e = err(Quota::new(30, 3, SECOND).unwrap());
    assert!(
        matches!(e, RegionError::Mismatch { field: "count", .. }),
        "{e}"
    );
    let e = err(Quota::new(30, 2, 1_000).unwrap());
    assert!(
        matches!(
            e,
            RegionError::Mismatch {
                field: "period",
                ..
            }
        ),
        "{e}"
    );
    let e = SharedWindow::open(&p.0, WindowQuota::new(30, SECOND).unwrap(), &opts).unwrap_err();
    assert!(
        matches!(
            e,
            RegionError::Kind {
                found: Some(Kind::Bucket),
                expected: Kind::Window
            }
        ),
        "{e}"
    );
    // Log capacity and lease parameters are checked the same way.
    let lp = TempPath::new("mismatch-log");
    SharedLog::open(&lp.0, WindowQuota::new(8, 100).unwrap(), &opts).unwrap();
    let e = SharedLog::open(&lp.0, WindowQuota::new(9, 100).unwrap(), &opts).unwrap_err();
    assert!(
        matches!(
            e,
            RegionError::Mismatch {
                field: "limit",
                found: 8,
                expected: 9
            }
        ),
        "{e}"
    );
    let cp = TempPath::new("mismatch-leases");
    SharedLeases::open(&cp.0, 4, 1_000, &opts).unwrap();
    let e = SharedLeases::open(&cp.0, 4, 2_000, &opts).unwrap_err();
    assert!(
        matches!(
            e,
            RegionError::Mismatch {
                field: "max_lease",
                ..
            }
        ),
        "{e}"
    );
    // Create::New refuses an existing path; Create::Existing a missing one.
    let e = SharedBucket::open(&p.0, shopbase(), &opts.create(Create::New)).unwrap_err();
    assert!(matches!(&e, RegionError::Io(io) if io.kind() == std::io::ErrorKind::AlreadyExists));
    let missing = TempPath::new("missing");
    let e = SharedBucket::open(&missing.0, shopbase(), &opts.create(Create::Existing)).unwrap_err();
    assert!(matches!(&e, RegionError::Io(io) if io.kind() == std::io::ErrorKind::NotFound));
}

/// Rewrites one 64-bit word of a region file.
fn poke(path: &PathBuf, word: usize, value: u64) {
    let mut bytes = fs::read(path).unwrap();
    bytes[word * 8..word * 8 + 8].copy_from_slice(&value.to_ne_bytes());
    fs::write(path, bytes).unwrap();
}

#[test]
fn wrong_size_truncated_garbage_layout_version_and_corrupt_files_are_refused() {
    let opts = Options::new();
    let p = TempPath::new("files");
    SharedBucket::open(&p.0, shopbase(), &opts).unwrap();
    let good = fs::read(&p.0).unwrap();
    let open = || SharedBucket::open(&p.0, shopbase(), &opts).unwrap_err();

    // One byte too many: the file's size differs from what the parameters need.
    fs::OpenOptions::new()
        .append(true)
        .open(&p.0)
        .unwrap()
        .write_all(&[0])
        .unwrap();
    let e = open();
    assert!(
        matches!(e, RegionError::Size { found, expected } if found == expected + 1),
        "{e}"
    );
    // Shorter than a header.
    fs::write(&p.0, &good[..100]).unwrap();
    assert!(matches!(open(), RegionError::Truncated { size: 100 }));
    // Garbage of the right size.
    let garbage: Vec<u8> = (0..good.len())
        .map(|i| u8::try_from((i * 7 + 3) % 251).unwrap())
        .collect();
    fs::write(&p.0, &garbage).unwrap();
    assert!(matches!(open(), RegionError::NotARegion));
    // A zero-filled file (a creator that never wrote its header).
    fs::write(&p.0, vec![0; good.len()]).unwrap();
    assert!(matches!(open(), RegionError::NotARegion));
    // Another layout version.
    fs::write(&p.0, &good).unwrap();
    poke(&p.0, 1, 2);
    assert!(matches!(
        open(),
        RegionError::LayoutVersion {
            found: 2,
            expected: 1
        }
    ));
    // A header whose initialisation word was never set.
    fs::write(&p.0, &good).unwrap();
    poke(&p.0, 6, 0);
    assert!(matches!(open(), RegionError::NotInitialised));
    // A parameter overwritten behind the checksum's back.
    fs::write(&p.0, &good).unwrap();
    poke(&p.0, 8, 31);
    assert!(matches!(open(), RegionError::Corrupt));
    // The header's size word differs: also caught by the checksum, so rewrite both.
    fs::write(&p.0, &good).unwrap();
    assert!(SharedBucket::open(&p.0, shopbase(), &opts).is_ok());
    // A directory and a symbolic link are not regions.
    let d = TempPath::new("dir");
    fs::create_dir(&d.0).unwrap();
    assert!(matches!(
        SharedBucket::open(&d.0, shopbase(), &opts.create(Create::Existing)).unwrap_err(),
        RegionError::NotAFile | RegionError::Io(_)
    ));
    fs::remove_dir(&d.0).unwrap();
    let l = TempPath::new("link");
    std::os::unix::fs::symlink(&p.0, &l.0).unwrap();
    assert!(matches!(
        SharedBucket::open(&l.0, shopbase(), &opts).unwrap_err(),
        RegionError::NotAFile
    ));
}

#[test]
fn looser_permissions_and_another_owner_are_refused() {
    let p = TempPath::new("perm");
    SharedBucket::open(&p.0, shopbase(), &Options::new().mode(0o640)).unwrap();
    assert_eq!(
        fs::metadata(&p.0).unwrap().permissions().mode() & 0o777,
        0o640
    );
    let e = SharedBucket::open(&p.0, shopbase(), &Options::new()).unwrap_err();
    assert!(
        matches!(
            e,
            RegionError::Permissions {
                found: 0o640,
                allowed: 0o600
            }
        ),
        "{e}"
    );
    assert_eq!(
        e.to_string(),
        "shared region: mode 640 grants more than the 600 asked for"
    );
    // A stricter file than asked is fine.
    fs::set_permissions(&p.0, fs::Permissions::from_mode(0o600)).unwrap();
    SharedBucket::open(&p.0, shopbase(), &Options::new().mode(0o660)).unwrap();
    // Another owner: only root can give a file away, which is how CI runs this suite.
    let me = rustix_uid();
    if me == 0 {
        std::os::unix::fs::chown(&p.0, Some(12_345), None).unwrap();
        let e = SharedBucket::open(&p.0, shopbase(), &Options::new()).unwrap_err();
        assert!(
            matches!(
                e,
                RegionError::Owner {
                    found: 12_345,
                    expected: 0
                }
            ),
            "{e}"
        );
    } else {
        eprintln!("not root: the other-owner case needs chown and is checked as root only");
    }
}

fn rustix_uid() -> u32 {
    use std::os::unix::fs::MetadataExt;
    // The owner of a file this process creates is its effective user id.
    let p = TempPath::new("uid");
    fs::write(&p.0, b"").unwrap();
    fs::metadata(&p.0).unwrap().uid()
}

#[test]
fn racing_threads_create_one_region() {
    for round in 0..50 {
        let p = TempPath::new(&format!("race{round}"));
        let created: Vec<bool> = std::thread::scope(|s| {
            let hs: Vec<_> = (0..4)
                .map(|_| {
                    s.spawn(|| {
                        let b = SharedBucket::open(&p.0, shopbase(), &Options::new()).unwrap();
                        let admitted = (0..20).filter(|_| b.decide(0, 1).unwrap().is_allowed());
                        assert!(admitted.count() <= 20);
                        b.created()
                    })
                })
                .collect();
            hs.into_iter().map(|h| h.join().unwrap()).collect()
        });
        assert_eq!(created.iter().filter(|&&c| c).count(), 1, "round {round}");
        let b = SharedBucket::open(&p.0, shopbase(), &Options::new()).unwrap();
        assert_eq!(b.peek(0, 1).unwrap().used, 30, "round {round}");
    }
}

#[derive(Clone, Debug)]
enum Op {
    Decide(u64, u64),
    Peek(u64, u64),
}

fn ops() -> impl Strategy<Value = Vec<Op>> {
    prop::collection::vec(
        (any::<bool>(), 0u64..40, 0u64..6).prop_map(|(d, dt, c)| {
            if d {
                Op::Decide(dt, c)
            } else {
                Op::Peek(dt, c)
            }
        }),
        1..200,
    )
}

proptest! {
    /// Every shared limiter decides exactly as its private counterpart, clocks stepping back
    /// included.
    #[test]
    fn shared_limiters_decide_as_private_ones(ops in ops(), limit in 1u64..6, window in 1u64..30) {
        let wq = WindowQuota::new(limit, window).unwrap();
        let mut private_log: SlidingLog<8> = SlidingLog::new(wq).unwrap();
        let shared_log = SharedLog::anonymous(wq).unwrap();
        let bq = Quota::new(limit, 1, window).unwrap();
        let private_bucket = LeakyBucket::new(bq);
        let shared_bucket = SharedBucket::anonymous(bq).unwrap();
        let private_window = FixedWindow::new(wq);
        let shared_window = SharedWindow::anonymous(wq).unwrap();
        // Twins driven through the outcome-only `check`: the same outcomes, the same state.
        let checked_bucket = SharedBucket::anonymous(bq).unwrap();
        let checked_window = SharedWindow::anonymous(wq).unwrap();
        let mut now = 100u64;
        for (i, op) in ops.iter().enumerate() {
            let (dt, cost, decide) = match *op {
                Op::Decide(dt, c) => (dt, c, true),
                Op::Peek(dt, c) => (dt, c, false),
            };
            // Mostly forward, every seventh step back.
            now = if i % 7 == 6 { now.saturating_sub(dt) } else { now + dt };
            if decide {
                prop_assert_eq!(shared_log.decide(now, cost), private_log.decide(now, cost));
                let b = private_bucket.decide(now, cost);
                prop_assert_eq!(shared_bucket.decide(now, cost), b);
                prop_assert_eq!(checked_bucket.check(now, cost), b.map(|d| d.outcome));
                let w = private_window.decide(now, cost);
                prop_assert_eq!(shared_window.decide(now, cost), w);
                prop_assert_eq!(checked_window.check(now, cost), w.map(|d| d.outcome));
            } else {
                prop_assert_eq!(shared_log.peek(now, cost), private_log.peek(now, cost));
                let b = private_bucket.peek(now, cost);
                prop_assert_eq!(shared_bucket.peek(now, cost), b);
                prop_assert_eq!(checked_bucket.peek(now, cost), b);
                let w = private_window.peek(now, cost);
                prop_assert_eq!(shared_window.peek(now, cost), w);
                prop_assert_eq!(checked_window.peek(now, cost), w);
            }
        }
    }
}

#[test]
fn threads_never_overfill_a_shared_log() {
    // 4 threads, each 20 000 decisions of cost 1..3 on one log of 7 per 50 ticks, on a shared
    // clock that advances by one tick every 16 decisions: any (t − 50, t] holds at most 7 units.
    let log = SharedLog::anonymous(WindowQuota::new(7, 50).unwrap()).unwrap();
    let clock = std::sync::atomic::AtomicU64::new(0);
    let admitted: Vec<Vec<(u64, u64)>> = std::thread::scope(|s| {
        let hs: Vec<_> = (0..4u64)
            .map(|id| {
                let (log, clock) = (&log, &clock);
                s.spawn(move || {
                    let mut mine = Vec::new();
                    for i in 0..20_000u64 {
                        let now = clock.fetch_add(1, std::sync::atomic::Ordering::SeqCst) / 16;
                        let cost = 1 + (i + id) % 3;
                        let d = log.decide(now, cost).unwrap();
                        if d.is_allowed() {
                            // The units are recorded at the latest time the log has seen,
                            // which may be later than this caller's `now`:
                            // reset_after = recorded + window − now.
                            mine.push((now + d.reset_after - 50, cost));
                        }
                    }
                    mine
                })
            })
            .collect();
        hs.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let mut all: Vec<(u64, u64)> = admitted.into_iter().flatten().collect();
    all.sort_unstable();
    let total: u64 = all.iter().map(|&(_, c)| c).sum();
    let mut worst = 0;
    for (i, &(t, _)) in all.iter().enumerate() {
        let in_window: u64 = all[..=i]
            .iter()
            .rev()
            .take_while(|&&(u, _)| u + 50 > t)
            .map(|&(_, c)| c)
            .sum();
        worst = worst.max(in_window);
    }
    assert!(total > 7 * (80_000 / 16 / 50) / 2, "admitted only {total}");
    assert!(worst <= 7, "a window held {worst} units");
}

fn tiers() -> [Quota; 2] {
    [shopbase(), Quota::new(60, 2, SECOND).unwrap()]
}

#[test]
fn two_handles_share_a_key_table_and_the_creators_seed() {
    let p = TempPath::new("table");
    let opts = Options::new();
    let fc = FullPolicy::FailClosed;
    let a = SharedBucketTable::open(&p.0, 100, &tiers(), None, fc, &opts).unwrap();
    let b = SharedBucketTable::open(&p.0, 100, &tiers(), None, fc, &opts).unwrap();
    assert!(a.created() && !b.created());
    assert_eq!(a.seed(), b.seed(), "the opener adopts the creator's seed");
    assert_eq!(a.table().capacity(), 100);
    let shop = Key::pair(7, 42);
    // The same decisions as a private table, shared: 30 for the key in all.
    for i in 0..30 {
        let h = if i % 2 == 0 { &a } else { &b };
        assert!(h.decide(shop, 0, 0, 1).unwrap().is_allowed());
    }
    assert_eq!(b.check(shop, 0, 0, 1).unwrap(), Outcome::Limited);
    let d = a.peek(shop, 0, SECOND / 2, 1).unwrap();
    assert_eq!((d.used, d.limit), (29, 30));
    // Another key has its own bucket; the premium tier carries the level over.
    assert!(b.decide(Key::pair(7, 43), 0, 0, 1).unwrap().is_allowed());
    let d = b.decide(shop, 1, 0, 1).unwrap();
    assert_eq!((d.outcome, d.used, d.limit), (Outcome::Allowed, 31, 60));
    assert_eq!(a.stats().occupied, 2);
    assert_eq!(a.stats(), b.table().stats());
    // Hashed keys agree across handles, because the seed does.
    assert_eq!(a.seed().key_bytes(b"shop-9"), b.seed().key_bytes(b"shop-9"));
    // Naming the region's seed opens it; naming another is refused by name.
    let s = a.seed();
    SharedBucketTable::open(&p.0, 100, &tiers(), Some(s), fc, &opts).unwrap();
    let e =
        SharedBucketTable::open(&p.0, 100, &tiers(), Some(Seed::new(1, 2)), fc, &opts).unwrap_err();
    assert!(
        matches!(
            e,
            RegionError::Mismatch {
                field: "seed (digest)",
                ..
            }
        ),
        "{e}"
    );
    // Another region draws another seed.
    let q = TempPath::new("table2");
    let c = SharedBucketTable::open(&q.0, 100, &tiers(), None, fc, &opts).unwrap();
    assert_ne!(c.seed(), a.seed());
    // A named seed is used as given.
    let r = TempPath::new("table3");
    let d = SharedBucketTable::open(&r.0, 100, &tiers(), Some(Seed::new(5, 6)), fc, &opts).unwrap();
    assert_eq!(d.seed(), Seed::new(5, 6));
}

#[test]
fn a_key_table_region_names_each_difference() {
    let p = TempPath::new("table-mismatch");
    let opts = Options::new();
    let fc = FullPolicy::FailClosed;
    SharedBucketTable::open(&p.0, 100, &tiers(), None, fc, &opts).unwrap();
    let field = |e: RegionError| match e {
        RegionError::Mismatch { field, .. } => field,
        other => panic!("{other}"),
    };
    let open = |cap: usize, t: &[Quota], policy| {
        SharedBucketTable::open(&p.0, cap, t, None, policy, &opts).unwrap_err()
    };
    assert_eq!(field(open(200, &tiers(), fc)), "capacity");
    // 98 rounds up to 100 slots, as every table does: the same table.
    SharedBucketTable::open(&p.0, 98, &tiers(), None, fc, &opts).unwrap();
    assert_eq!(field(open(100, &tiers()[..1], fc)), "tier count");
    assert_eq!(
        field(open(100, &tiers(), FullPolicy::FailOpen)),
        "full-table policy"
    );
    let other = [shopbase(), Quota::new(60, 5, SECOND).unwrap()];
    assert_eq!(field(open(100, &other, fc)), "tiers (digest)");
    let e = SharedWindowTable::open(
        &p.0,
        100,
        &[WindowQuota::new(50, SECOND).unwrap()],
        None,
        fc,
        &opts,
    )
    .unwrap_err();
    assert!(
        matches!(
            e,
            RegionError::Kind {
                found: Some(Kind::BucketTable),
                expected: Kind::WindowTable
            }
        ),
        "{e}"
    );
    let e = SharedBucket::open(&p.0, shopbase(), &opts).unwrap_err();
    assert!(matches!(e, RegionError::Kind { .. }), "{e}");
    // Parameters no table takes are the engine's errors, before any file is made.
    let q = TempPath::new("table-engine");
    let e = SharedBucketTable::open(&q.0, 0, &tiers(), None, fc, &opts).unwrap_err();
    assert!(
        matches!(e, RegionError::Engine(Error::CapacityExceeded)),
        "{e}"
    );
    let e = SharedBucketTable::open(&q.0, 10, &[], None, fc, &opts).unwrap_err();
    assert!(
        matches!(e, RegionError::Engine(Error::InvalidArgument)),
        "{e}"
    );
    assert!(!q.0.exists());
}

#[test]
fn a_key_table_block_overwritten_behind_its_header_is_refused() {
    let p = TempPath::new("table-corrupt");
    let opts = Options::new();
    let fc = FullPolicy::FailClosed;
    SharedBucketTable::open(&p.0, 10, &tiers(), None, fc, &opts).unwrap();
    // The region header is 32 words; the table's header follows, then its tiers (word 24 of
    // the table: the first tier's burst).
    poke(&p.0, 32 + 24, 31);
    let e = SharedBucketTable::open(&p.0, 10, &tiers(), None, fc, &opts).unwrap_err();
    assert!(matches!(e, RegionError::Table(_)), "{e}");
}

#[test]
fn anonymous_key_tables_of_both_kinds() {
    let fc = FullPolicy::FailOpen;
    let t = SharedBucketTable::anonymous(5, &tiers(), None, fc).unwrap();
    assert!(t.created());
    for k in 0..5 {
        assert!(t.decide(Key::pair(1, k), 0, 0, 1).unwrap().is_allowed());
    }
    assert_eq!(t.stats().occupied, 5);
    // Full: the sixth key gets the full policy (fail open: allowed, flagged).
    let d = t.decide(Key::pair(1, 5), 0, 0, 1).unwrap();
    assert!(d.is_allowed() && d.verdict == Outcome::Overloaded);
    let w = SharedWindowTable::anonymous(
        10,
        &[WindowQuota::new(50, SECOND).unwrap()],
        Some(Seed::new(1, 1)),
        FullPolicy::FailClosed,
    )
    .unwrap();
    for _ in 0..50 {
        assert!(w.decide(Key::pair(2, 2), 0, 0, 1).unwrap().is_allowed());
    }
    assert_eq!(w.check(Key::pair(2, 2), 0, 1, 1).unwrap(), Outcome::Limited);
    assert!(w
        .decide(Key::pair(2, 2), 0, SECOND, 1)
        .unwrap()
        .is_allowed());
}

#[test]
fn racing_threads_create_one_key_table() {
    let p = TempPath::new("table-race");
    let created: usize = std::thread::scope(|s| {
        let hs: Vec<_> = (0..6)
            .map(|_| {
                s.spawn(|| {
                    let t = SharedBucketTable::open(
                        &p.0,
                        50,
                        &tiers(),
                        None,
                        FullPolicy::FailClosed,
                        &Options::new(),
                    )
                    .unwrap();
                    let n = (0..10)
                        .filter(|_| t.decide(Key::pair(1, 1), 0, 0, 1).unwrap().is_allowed())
                        .count();
                    (usize::from(t.created()), n)
                })
            })
            .collect();
        let r: Vec<_> = hs.into_iter().map(|h| h.join().unwrap()).collect();
        assert_eq!(
            r.iter().map(|x| x.1).sum::<usize>(),
            30,
            "one bucket for the key"
        );
        r.iter().map(|x| x.0).sum()
    });
    assert_eq!(created, 1);
}

/// Writes one 64-bit word of a region file in place (the file stays mapped by open handles).
fn poke_in_place(path: &PathBuf, word: usize, value: u64) {
    use std::os::unix::fs::FileExt as _;
    let f = fs::OpenOptions::new().write(true).open(path).unwrap();
    f.write_all_at(&value.to_ne_bytes(), (word * 8) as u64)
        .unwrap();
}

/// The id of a process that has exited and been reaped.
fn dead_pid() -> u32 {
    let mut child = std::process::Command::new("true").spawn().unwrap();
    let pid = child.id();
    child.wait().unwrap();
    pid
}

/// A busy slot word as an insertion leaves it right after its claim: tag busy (1), tier 0,
/// claim version `claimant << 30 | sequence`.
fn busy_word(claimant: u32, sequence: u64) -> u64 {
    (((u64::from(claimant) << 30) | sequence) << 11) | 1
}

/// Region words before the first group of a one-tier table: the region header (32), the
/// table's header (24) and its tier (8).
const FIRST_SLOT: usize = 32 + 24 + 8;

/// Five keys into a five-slot table whose last slot was left busy by `claimant`: how many
/// found room.
fn fill_around_busy_slot(p: &TempPath, claimant: u32, namespace: Option<u64>) -> (usize, u64) {
    let t = SharedBucketTable::open(
        &p.0,
        5,
        &[shopbase()],
        None,
        FullPolicy::FailClosed,
        &Options::new(),
    )
    .unwrap();
    drop(t);
    if let Some(ns) = namespace {
        // The table's claim namespace (table header word 13): as if created in another pid
        // namespace.
        poke_in_place(&p.0, 32 + 13, ns);
    }
    let t = SharedBucketTable::open(
        &p.0,
        5,
        &[shopbase()],
        None,
        FullPolicy::FailClosed,
        &Options::new(),
    )
    .unwrap();
    poke_in_place(&p.0, FIRST_SLOT + 4, busy_word(claimant, 3));
    let admitted = (1..=5)
        .filter(|&k| t.decide(Key::pair(1, k), 0, 0, 1).unwrap().is_allowed())
        .count();
    (admitted, t.stats().occupied)
}

#[test]
fn a_slot_left_busy_by_a_process_that_exited_is_taken_again() {
    // The claimant is gone: the fifth key takes its slot.
    let p = TempPath::new("table-dead-claimant");
    assert_eq!(fill_around_busy_slot(&p, dead_pid(), None), (5, 5));
    // The claimant is alive (this process, as if mid-insert on another thread): its slot
    // stays busy, and the fifth key finds no room (fail closed).
    let p = TempPath::new("table-live-claimant");
    assert_eq!(fill_around_busy_slot(&p, std::process::id(), None), (4, 4));
    // The region was created in another pid namespace: process ids cannot be checked, so the
    // slot stays busy even though the id names no process here.
    let p = TempPath::new("table-foreign-claimant");
    assert_eq!(fill_around_busy_slot(&p, dead_pid(), Some(12345)), (4, 4));
}
