//! Construction and decisions with arbitrary parameters and times: no panic, no overflow (the
//! fuzz build has overflow checks on), every refusal a named error, every decision internally
//! consistent.
#![no_main]

use libfuzzer_sys::arbitrary::{self, Arbitrary};
use libfuzzer_sys::fuzz_target;
use tollgate::{
    ConcurrencyLimit, Error, FixedWindow, LeakyBucket, Outcome, Quota, SlidingLog, WindowQuota,
};
use tollgate_fuzz::check_invariants;
use tollgate_fuzz::gen::{Param, SmallParam};

#[derive(Arbitrary, Debug)]
enum Call {
    Decide(Param, SmallParam),
    Peek(Param, SmallParam),
    IsDrained(Param),
    Reset,
}

#[derive(Arbitrary, Debug)]
enum Input {
    Bucket {
        burst: Param,
        count: Param,
        period: Param,
        min_span: Param,
        approximate: bool,
        calls: Vec<Call>,
    },
    Window {
        limit: Param,
        window: Param,
        offset: Param,
        calls: Vec<Call>,
    },
    Log {
        limit: SmallParam,
        window: Param,
        calls: Vec<Call>,
    },
    Concurrency {
        max: u32,
        acquire: Vec<bool>,
    },
}

fn check_result(r: Result<tollgate::Decision, Error>, cost: u64) {
    match r {
        Ok(d) => {
            check_invariants(&d);
            assert_eq!(
                d.outcome == Outcome::Never,
                cost > d.limit,
                "{d:?} for cost {cost}"
            );
        }
        Err(Error::ZeroCost) => assert_eq!(cost, 0),
        Err(Error::ClockOutOfRange) => {}
        Err(e) => panic!("unexpected {e:?}"),
    }
}

fuzz_target!(|input: Input| match input {
    Input::Bucket {
        burst,
        count,
        period,
        min_span,
        approximate,
        calls,
    } => {
        let (b, c, p, m) = (burst.get(), count.get(), period.get(), min_span.get());
        let q = if approximate {
            Quota::approximate(b, c, p, m)
        } else {
            Quota::with_min_span(b, c, p, m)
        };
        let q = match q {
            Ok(q) => q,
            Err(Error::ZeroBurst) => return assert_eq!(b, 0),
            Err(Error::ZeroCount) => return assert!(b != 0 && c == 0),
            Err(Error::ZeroPeriod) => return assert!(b != 0 && c != 0 && p == 0),
            Err(Error::QuotaOverflow | Error::SpanTooShort) => return,
            Err(e) => panic!("unexpected {e:?}"),
        };
        assert!(q.exact_span() >= m);
        assert_eq!((q.burst(), q.count(), q.period()), (b, c, p));
        let _ = q.drain_ticks();
        let bucket = LeakyBucket::new(q);
        for call in calls.iter().take(64) {
            match *call {
                Call::Decide(now, cost) => {
                    check_result(bucket.decide(now.get(), cost.get()), cost.get())
                }
                Call::Peek(now, cost) => {
                    check_result(bucket.peek(now.get(), cost.get()), cost.get())
                }
                Call::IsDrained(now) => {
                    let _ = bucket.is_drained(now.get());
                }
                Call::Reset => bucket.reset(),
            }
        }
    }
    Input::Window {
        limit,
        window,
        offset,
        calls,
    } => {
        let (n, w, o) = (limit.get(), window.get(), offset.get());
        let q = match WindowQuota::new(n, w).and_then(|q| q.with_offset(o)) {
            Ok(q) => q,
            Err(Error::ZeroBurst) => return assert_eq!(n, 0),
            Err(Error::ZeroPeriod) => return assert!(n != 0 && w == 0),
            Err(Error::QuotaOverflow) => return assert!(n > WindowQuota::MAX_LIMIT),
            Err(Error::OffsetOutOfRange) => return assert!(o >= w),
            Err(e) => panic!("unexpected {e:?}"),
        };
        let fixed = FixedWindow::new(q);
        let span = fixed.span();
        for call in calls.iter().take(64) {
            match *call {
                Call::Decide(now, cost) | Call::Peek(now, cost) => {
                    let (now, cost) = (now.get(), cost.get());
                    let r = if matches!(call, Call::Decide(..)) {
                        fixed.decide(now, cost)
                    } else {
                        fixed.peek(now, cost)
                    };
                    if r == Err(Error::ClockOutOfRange) {
                        assert!(now > span, "{now} within span {span}");
                    } else if cost != 0 {
                        assert!(now <= span, "{now} beyond span {span} accepted");
                    }
                    check_result(r, cost);
                }
                Call::IsDrained(now) => {
                    let _ = fixed.is_drained(now.get());
                }
                Call::Reset => fixed.reset(),
            }
        }
    }
    Input::Log {
        limit,
        window,
        calls,
    } => {
        let (n, w) = (limit.get(), window.get());
        let q = match WindowQuota::new(n, w) {
            Ok(q) => q,
            Err(_) => return,
        };
        let mut log = match SlidingLog::<32>::new(q) {
            Ok(log) => log,
            Err(e) => return assert!(e == Error::CapacityExceeded && n > 32),
        };
        for call in calls.iter().take(64) {
            match *call {
                Call::Decide(now, cost) => {
                    let r = log.decide(now.get(), cost.get());
                    assert_ne!(r, Err(Error::ClockOutOfRange));
                    check_result(r, cost.get());
                }
                Call::Peek(now, cost) => {
                    let r = log.peek(now.get(), cost.get());
                    check_result(r, cost.get());
                    let _ = log.next_admit_time(now.get(), cost.get());
                }
                Call::IsDrained(now) => assert!(log.used(now.get()) <= n),
                Call::Reset => log.reset(),
            }
        }
    }
    Input::Concurrency { max, acquire } => {
        let limit = ConcurrencyLimit::new(max);
        let mut held = 0u32;
        for &a in acquire.iter().take(256) {
            if a {
                let d = limit.try_acquire();
                check_invariants(&d);
                if held < max {
                    assert_eq!(d.outcome, Outcome::Allowed);
                    held += 1;
                } else {
                    assert_eq!(d.outcome, Outcome::Overloaded);
                }
            } else if held > 0 {
                assert_eq!(limit.release(), Ok(()));
                held -= 1;
            } else {
                assert_eq!(limit.release(), Err(Error::NotAcquired));
            }
            assert_eq!(limit.in_flight(), held);
        }
    }
});
