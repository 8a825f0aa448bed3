//! loom models of the shared sliding log's protocol (`src/log_ring.rs`): the claim word, the
//! unit slots and helping, with participants racing and stopping mid-claim.
//!
//! loom has no 128-bit atomic, so each cell here is a loom `Mutex<u128>`: one load or one
//! compare-and-swap per lock, which loom explores as one step in every interleaving. (The mutex
//! makes each cell sequentially consistent: these models check the protocol's interleavings,
//! not weaker orderings of the cells' acquire/release operations.)
//!
//! Run with the other loom models: `bash scripts/test-loom.sh`.
#![cfg(loom)]

use loom::sync::{Arc, Mutex};
use loom::thread;
use tollgate::log_ring::{pack, unpack, Cell128, Log};
use tollgate::{Outcome, WindowQuota};

/// A 128-bit cell as a loom mutex: each operation is one step.
struct Cell(Mutex<u128>);

impl Cell128 for Cell {
    fn load(&self) -> u128 {
        *self.0.lock().unwrap()
    }
    fn compare_exchange(&self, current: u128, new: u128) -> Result<u128, u128> {
        let mut v = self.0.lock().unwrap();
        if *v == current {
            *v = new;
            Ok(current)
        } else {
            Err(*v)
        }
    }
}

/// A log of `limit` units: its claim word and slots.
struct Cells {
    claim: Cell,
    slots: Vec<Cell>,
}

impl Cells {
    fn new(limit: usize) -> Arc<Cells> {
        Arc::new(Cells {
            claim: Cell(Mutex::new(0)),
            slots: (0..limit).map(|_| Cell(Mutex::new(0))).collect(),
        })
    }
    fn log(&self) -> Log<'_, Cell> {
        Log {
            claim: &self.claim,
            slots: &self.slots,
        }
    }
}

fn model(f: impl Fn() + Sync + Send + 'static) {
    let mut b = loom::model::Builder::new();
    if b.preemption_bound.is_none() {
        b.preemption_bound = Some(3);
    }
    b.check(f);
}

/// Two threads each ask for 1 unit twice at one instant, on a log of 3: exactly 3 admitted,
/// and the log then holds 3 units at that time.
#[test]
fn racing_admissions_never_exceed_the_limit() {
    model(|| {
        let q = WindowQuota::new(3, 10).unwrap();
        let cells = Cells::new(3);
        let other = {
            let cells = Arc::clone(&cells);
            thread::spawn(move || {
                (0..2)
                    .filter(|_| cells.log().judge(&q, 5, 1, true).unwrap().is_allowed())
                    .count()
            })
        };
        let mine = (0..2)
            .filter(|_| cells.log().judge(&q, 5, 1, true).unwrap().is_allowed())
            .count();
        assert_eq!(mine + other.join().unwrap(), 3);
        let d = cells.log().judge(&q, 5, 1, false).unwrap();
        assert_eq!((d.outcome, d.used), (Outcome::Limited, 3));
    });
}

/// A claimant stopped forever right after its claim (2 units at time 4, none written) while
/// two threads decide: each finishes the claim, counts its units, and exactly one more unit is
/// admitted (limit 3). The stopped claim's units leave the window at 14.
#[test]
fn a_claim_left_unwritten_is_finished_by_racing_callers() {
    model(|| {
        let q = WindowQuota::new(3, 10).unwrap();
        let cells = Cells::new(3);
        let log = cells.log();
        let cur = log.claim.load();
        let (k, _, _) = unpack(cur);
        log.claim.compare_exchange(cur, pack(k + 2, 2, 4)).unwrap();
        let other = {
            let cells = Arc::clone(&cells);
            thread::spawn(move || cells.log().judge(&q, 6, 1, true).unwrap().is_allowed())
        };
        let mine = cells.log().judge(&q, 6, 1, true).unwrap().is_allowed();
        let theirs = other.join().unwrap();
        assert!(mine ^ theirs, "exactly one admitted: {mine} {theirs}");
        assert_eq!(cells.log().time_of(0), Some(4));
        assert_eq!(cells.log().time_of(1), Some(4));
        assert_eq!(cells.log().judge(&q, 13, 1, false).unwrap().used, 3);
        assert_eq!(cells.log().judge(&q, 14, 2, false).unwrap().used, 1);
    });
}

/// A denial recording a later time races an admission: the admission is counted once, the
/// recorded time is the later one, and no unit is lost or doubled.
#[test]
fn a_denial_recording_time_races_an_admission() {
    model(|| {
        let q = WindowQuota::new(2, 10).unwrap();
        let cells = Cells::new(2);
        assert!(cells.log().judge(&q, 0, 1, true).unwrap().is_allowed());
        let other = {
            let cells = Arc::clone(&cells);
            // Cost 2 with one unit in the window: denied, and records time 3.
            thread::spawn(move || cells.log().judge(&q, 3, 2, true).unwrap().outcome)
        };
        let mine = cells.log().judge(&q, 2, 1, true).unwrap();
        assert_eq!(other.join().unwrap(), Outcome::Limited);
        assert!(mine.is_allowed());
        let (k, _, t) = unpack(cells.log().claim.load());
        assert_eq!((k, t), (2, 3));
        assert_eq!(cells.log().judge(&q, 3, 1, false).unwrap().used, 2);
    });
}
