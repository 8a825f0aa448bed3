//! Differential: arbitrary operation sequences on a `FixedWindow` against the reference model;
//! every decision, error and `is_drained` must be equal.
#![no_main]

use libfuzzer_sys::arbitrary::{self, Arbitrary};
use libfuzzer_sys::fuzz_target;
use tollgate::state::Mode;
use tollgate::{FixedWindow, WindowQuota};
use tollgate_fuzz::check_invariants;
use tollgate_fuzz::gen::{Param, SmallParam, Tick};
use tollgate_models::{FixedWindow as WindowModel, Model as _};

#[derive(Arbitrary, Debug, Clone, Copy)]
struct Spec {
    limit: SmallParam,
    window: Param,
    offset: Param,
}

impl Spec {
    fn build(self) -> Option<(WindowQuota, WindowModel)> {
        let (n, w) = (self.limit.get(), self.window.get());
        let q = WindowQuota::new(n, w).ok()?;
        let o = self.offset.get() % w;
        let q = q.with_offset(o).expect("offset below window");
        let model = WindowModel::new(n, w, o).expect("the engine accepted it");
        Some((q, model))
    }
}

#[derive(Arbitrary, Debug)]
enum Op {
    Decide(Tick, SmallParam),
    Peek(Tick, SmallParam),
    IsDrained(Tick),
    Reset,
    SetQuota(Tick, Spec),
}

#[derive(Arbitrary, Debug)]
struct Input {
    quota: Spec,
    ops: Vec<Op>,
}

fuzz_target!(|input: Input| {
    let Some((q, mut model)) = input.quota.build() else {
        return;
    };
    let mut window = FixedWindow::new(q);
    assert_eq!(window.span(), model.span);
    let mut now = 0u64;
    for op in input.ops.iter().take(256) {
        match *op {
            Op::Decide(tick, cost) | Op::Peek(tick, cost) => {
                now = tick.apply(now);
                let cost = cost.get();
                let mode = if matches!(op, Op::Decide(..)) {
                    Mode::Decide
                } else {
                    Mode::Peek
                };
                let got = match mode {
                    Mode::Decide => window.decide(now, cost),
                    Mode::Peek => window.peek(now, cost),
                };
                let got = got.inspect(check_invariants);
                let want = model.judge(now, cost, mode);
                assert_eq!(got, want, "{op:?} at {now} on {model:?}");
            }
            Op::IsDrained(tick) => {
                now = tick.apply(now);
                assert_eq!(
                    window.is_drained(now),
                    model.is_drained(now),
                    "{model:?} at {now}"
                );
            }
            Op::Reset => {
                window.reset();
                model.reset();
            }
            Op::SetQuota(tick, spec) => {
                now = tick.apply(now);
                let Some((q, next)) = spec.build() else {
                    continue;
                };
                let got = window.set_quota(q, now);
                let want = model.set_quota(&next, now);
                assert_eq!(got, want, "set_quota at {now}");
                if got.is_ok() {
                    assert_eq!(window.span(), model.span);
                }
            }
        }
    }
});
