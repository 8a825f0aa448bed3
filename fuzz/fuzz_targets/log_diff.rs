//! Differential: arbitrary operation sequences on a `SlidingLog` against the reference model,
//! which keeps every admitted entry and computes `retry_after` from its definition (the least
//! wait after which the window leaves room), not by walking the ring.
#![no_main]

use libfuzzer_sys::arbitrary::{self, Arbitrary};
use libfuzzer_sys::fuzz_target;
use tollgate::state::Mode;
use tollgate::{Error, SlidingLog, WindowQuota};
use tollgate_fuzz::check_invariants;
use tollgate_fuzz::gen::{Param, Tick};
use tollgate_models::{Model as _, SlidingLog as LogModel};

const CAP: usize = 16;

#[derive(Arbitrary, Debug)]
enum Op {
    Decide(Tick, u8),
    Peek(Tick, u8),
    Used(Tick),
    NextAdmit(Tick, u8),
    Reset,
}

#[derive(Arbitrary, Debug)]
struct Input {
    limit: u8,
    window: Param,
    ops: Vec<Op>,
}

fuzz_target!(|input: Input| {
    let n = u64::from(input.limit % 24);
    let Ok(q) = WindowQuota::new(n, input.window.get()) else {
        return;
    };
    let mut log = match SlidingLog::<CAP>::new(q) {
        Ok(log) => log,
        Err(e) => return assert!(e == Error::CapacityExceeded && n > CAP as u64),
    };
    let mut model = LogModel::new(n, q.window()).expect("the engine accepted it");
    let mut now = 0u64;
    // Costs 0..=limit+1: zero (an error), the valid range, and one above (Never).
    let cost_of = |c: u8| u64::from(c) % (n + 2);
    for op in input.ops.iter().take(256) {
        match *op {
            Op::Decide(tick, c) | Op::Peek(tick, c) => {
                now = tick.apply(now);
                let cost = cost_of(c);
                let mode = if matches!(op, Op::Decide(..)) {
                    Mode::Decide
                } else {
                    Mode::Peek
                };
                let got = match mode {
                    Mode::Decide => log.decide(now, cost),
                    Mode::Peek => log.peek(now, cost),
                };
                let got = got.inspect(check_invariants);
                let want = model.judge(now, cost, mode);
                assert_eq!(got, want, "{op:?} at {now} on {model:?}");
            }
            Op::Used(tick) => {
                now = tick.apply(now);
                assert_eq!(log.used(now), model.used(now), "used at {now} on {model:?}");
            }
            Op::NextAdmit(tick, c) => {
                now = tick.apply(now);
                let cost = cost_of(c);
                let want = model.next_admit_time(now, cost);
                assert_eq!(
                    log.next_admit_time(now, cost),
                    want,
                    "at {now} on {model:?}"
                );
            }
            Op::Reset => {
                log.reset();
                model.reset();
            }
        }
    }
});
