//! The one error type of the engine.
//!
//! Every fallible function in this crate returns [`Error`]. Decisions are not errors: a request
//! that is over the limit is a successful call whose [`Decision`](crate::Decision) says so. An
//! `Error` means the call itself was wrong (a zero cost, a clock outside the quota's exact span,
//! a quota that cannot be represented, a buffer too small).

use core::fmt;

/// Why a call could not be carried out. Nothing was changed when an `Error` is returned.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Error {
    /// A quota's burst (bucket size) or window limit is zero.
    ZeroBurst,
    /// A quota's count (requests per period) is zero.
    ZeroCount,
    /// A quota's period or window is zero ticks.
    ZeroPeriod,
    /// `burst × period` (the bucket's tolerance in exact units) does not fit 64 bits.
    QuotaOverflow,
    /// The quota's exact arithmetic would reach less far in time than required; see
    /// [`Quota::with_min_span`](crate::Quota::with_min_span) and
    /// [`Quota::approximate`](crate::Quota::approximate).
    SpanTooShort,
    /// A window offset is not smaller than the window.
    OffsetOutOfRange,
    /// A cost of zero was asked for. Use `peek` to look without spending.
    ZeroCost,
    /// `now` lies beyond the quota's exact span ([`Quota::exact_span`](crate::Quota::exact_span)).
    ClockOutOfRange,
    /// A fixed-capacity structure cannot hold what was asked (for example a sliding log whose
    /// limit exceeds its capacity, or a table given no slots).
    CapacityExceeded,
    /// A concurrency permit was released that was never acquired.
    NotAcquired,
    /// An output buffer is too small; the value is the length that was needed.
    BufferTooSmall(usize),
    /// A header value or other text input could not be parsed.
    Malformed,
    /// An argument is outside its documented range (for example `ticks_per_second == 0`, or a
    /// duration that is not a whole number of ticks or whose ticks do not fit 64 bits).
    InvalidArgument,
}

impl Error {
    /// A short static description, the same text `Display` prints.
    pub const fn as_str(&self) -> &'static str {
        match self {
            Error::ZeroBurst => "burst (or window limit) must be at least 1",
            Error::ZeroCount => "count must be at least 1",
            Error::ZeroPeriod => "period (or window) must be at least 1 tick",
            Error::QuotaOverflow => "burst x period does not fit the 64-bit state",
            Error::SpanTooShort => {
                "the quota's exact arithmetic spans less time than required (use an approximate quota or a coarser clock)"
            }
            Error::OffsetOutOfRange => "window offset must be smaller than the window",
            Error::ZeroCost => "cost must be at least 1",
            Error::ClockOutOfRange => "now is beyond the quota's exact span",
            Error::CapacityExceeded => "fixed capacity exceeded",
            Error::NotAcquired => "release without a matching acquire",
            Error::BufferTooSmall(_) => "output buffer too small",
            Error::Malformed => "malformed input",
            Error::InvalidArgument => "argument out of range",
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::BufferTooSmall(n) => write!(f, "output buffer too small: {n} bytes needed"),
            other => f.write_str(other.as_str()),
        }
    }
}

#[cfg(feature = "std")]
impl std::error::Error for Error {}
