//! `tg_status`: what every fallible C function returns.
//!
//! Values are explicit and never reused: a retired value stays listed here as a comment. Errors
//! of the engine map one-to-one from `tollgate::Error` (1–99); errors of the C boundary itself
//! start at 100.

use tollgate::Error;

use crate::boundary::guard_value;

/// The result of a call. `TG_STATUS_OK` (0) is success; anything else means the call was refused
/// and changed nothing, and its out-parameters were not written. A request over the limit is not
/// an error: it is a successful call whose `tg_decision` says so.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum tg_status {
    /// Success.
    Ok = 0,
    /// A quota's burst (bucket size) or window limit is zero.
    ZeroBurst = 1,
    /// A quota's count (requests per period) is zero.
    ZeroCount = 2,
    /// A quota's period or window is zero ticks.
    ZeroPeriod = 3,
    /// burst × period (the bucket's capacity in exact units) does not fit 64 bits, or a window
    /// limit is above `TG_WINDOW_MAX_LIMIT`.
    QuotaOverflow = 4,
    /// The quota's exact arithmetic would reach less far in time than required: use
    /// `tg_quota_init_approximate`, a smaller `min_span`, or a coarser clock.
    SpanTooShort = 5,
    /// A window offset is not smaller than the window.
    OffsetOutOfRange = 6,
    /// A cost of zero was asked for. Use a `_peek` function to look without spending.
    ZeroCost = 7,
    /// `now` lies beyond the quota's exact span (`tg_quota_exact_span`).
    ClockOutOfRange = 8,
    /// A fixed-capacity structure cannot hold what was asked (a sliding log limit above
    /// `TG_SLIDING_LOG_CAPACITY`, a table given too few slots).
    CapacityExceeded = 9,
    /// A concurrency permit was released that was never acquired.
    NotAcquired = 10,
    /// An output buffer is too small; the function's length out-parameter says what is needed.
    BufferTooSmall = 11,
    /// A header value or query string could not be parsed.
    Malformed = 12,
    /// An argument is outside its documented range (for example `ticks_per_second == 0`, an
    /// unknown `tg_outcome`, a header name with a quote in it).
    InvalidArgument = 13,
    /// A pointer argument was NULL.
    NullPointer = 100,
    /// A pointer argument was not aligned for its type (`TG_TABLE_ALIGN`, or 8 for limiters).
    Misaligned = 101,
    /// A limiter struct was used before its `_init` function ran (it is zeroed, or garbage, or
    /// another type).
    Uninitialized = 102,
    /// A bug: the library panicked; the panic was caught at the boundary (hosted builds only).
    /// The object involved may hold a stale but valid state.
    Panic = 103,
    /// An object that allows one caller at a time (`tg_sliding_log`) was used by two at once.
    /// Nothing was done; serialise the calls.
    Busy = 104,
    /// An engine error this version of the C ABI has no code for (a newer core). Never expected.
    Unknown = 105,
    /// A key table's memory holds a table this library cannot use as it is: another layout
    /// version, a size larger than the memory given, a parameter out of range, a damaged tier,
    /// or a checksum that does not match its parameters.
    LayoutMismatch = 106,
    /// The operating system supplied no random bytes (`tg_seed_random`), or the library was
    /// built without `std` (firmware) and has no source of randomness.
    RandomUnavailable = 107,
    /// Shared regions (200–299). A system call on a shared region failed (`open`, `link`,
    /// `mmap`, ...) for a reason without its own status below; `tg_region_error.found` holds
    /// the `errno`.
    RegionIo = 200,
    /// The region's path does not exist (opening with `TG_CREATE_EXISTING`).
    RegionNotFound = 201,
    /// The region's path exists already (creating with `TG_CREATE_NEW`).
    RegionExists = 202,
    /// The operating system denied access to the region's path or directory.
    RegionAccessDenied = 203,
    /// This platform's atomics are not lock-free, so limiters cannot be shared between
    /// processes.
    RegionNotLockFree = 204,
    /// The region's path is not a regular file (a directory, a device, a symbolic link).
    RegionNotAFile = 205,
    /// The file is shorter than a region's header: truncated, or not a region.
    RegionTruncated = 206,
    /// The file is not a tollgate region (no magic number).
    RegionNotARegion = 207,
    /// The region has another layout version than this library.
    RegionLayoutVersion = 208,
    /// The region holds another kind of limiter, or the call does not apply to the kind it
    /// holds (a decision on a concurrency limit, a lease from a bucket).
    RegionKind = 209,
    /// The region's header was never completed (not built by this library).
    RegionNotInitialised = 210,
    /// The region's header checksum does not match: it was overwritten.
    RegionCorrupt = 211,
    /// The region holds the same kind of limiter with another parameter;
    /// `tg_region_error.message` names it.
    RegionMismatch = 212,
    /// The region's size differs from what its parameters need.
    RegionSize = 213,
    /// The region's file belongs to another user.
    RegionOwner = 214,
    /// The region's file grants permissions beyond the mode asked for.
    RegionPermissions = 215,
}

impl From<Error> for tg_status {
    fn from(e: Error) -> tg_status {
        match e {
            Error::ZeroBurst => tg_status::ZeroBurst,
            Error::ZeroCount => tg_status::ZeroCount,
            Error::ZeroPeriod => tg_status::ZeroPeriod,
            Error::QuotaOverflow => tg_status::QuotaOverflow,
            Error::SpanTooShort => tg_status::SpanTooShort,
            Error::OffsetOutOfRange => tg_status::OffsetOutOfRange,
            Error::ZeroCost => tg_status::ZeroCost,
            Error::ClockOutOfRange => tg_status::ClockOutOfRange,
            Error::CapacityExceeded => tg_status::CapacityExceeded,
            Error::NotAcquired => tg_status::NotAcquired,
            Error::BufferTooSmall(_) => tg_status::BufferTooSmall,
            Error::Malformed => tg_status::Malformed,
            Error::InvalidArgument => tg_status::InvalidArgument,
            _ => tg_status::Unknown,
        }
    }
}

impl tg_status {
    /// Every status, in order of value.
    pub(crate) const ALL: [tg_status; 38] = [
        tg_status::Ok,
        tg_status::ZeroBurst,
        tg_status::ZeroCount,
        tg_status::ZeroPeriod,
        tg_status::QuotaOverflow,
        tg_status::SpanTooShort,
        tg_status::OffsetOutOfRange,
        tg_status::ZeroCost,
        tg_status::ClockOutOfRange,
        tg_status::CapacityExceeded,
        tg_status::NotAcquired,
        tg_status::BufferTooSmall,
        tg_status::Malformed,
        tg_status::InvalidArgument,
        tg_status::NullPointer,
        tg_status::Misaligned,
        tg_status::Uninitialized,
        tg_status::Panic,
        tg_status::Busy,
        tg_status::Unknown,
        tg_status::LayoutMismatch,
        tg_status::RandomUnavailable,
        tg_status::RegionIo,
        tg_status::RegionNotFound,
        tg_status::RegionExists,
        tg_status::RegionAccessDenied,
        tg_status::RegionNotLockFree,
        tg_status::RegionNotAFile,
        tg_status::RegionTruncated,
        tg_status::RegionNotARegion,
        tg_status::RegionLayoutVersion,
        tg_status::RegionKind,
        tg_status::RegionNotInitialised,
        tg_status::RegionCorrupt,
        tg_status::RegionMismatch,
        tg_status::RegionSize,
        tg_status::RegionOwner,
        tg_status::RegionPermissions,
    ];

    /// The status with this value, if it is one.
    pub(crate) fn from_u32(value: u32) -> Option<tg_status> {
        tg_status::ALL.into_iter().find(|s| *s as u32 == value)
    }

    /// The NUL-terminated description.
    pub(crate) const fn text(self) -> &'static [u8] {
        match self {
            tg_status::Ok => b"ok\0",
            tg_status::ZeroBurst => b"burst (or window limit) must be at least 1\0",
            tg_status::ZeroCount => b"count must be at least 1\0",
            tg_status::ZeroPeriod => b"period (or window) must be at least 1 tick\0",
            tg_status::QuotaOverflow => {
                b"burst x period (or the window limit) does not fit the 64-bit state\0"
            }
            tg_status::SpanTooShort => {
                b"the quota's exact arithmetic spans less time than required (use an approximate quota or a coarser clock)\0"
            }
            tg_status::OffsetOutOfRange => b"window offset must be smaller than the window\0",
            tg_status::ZeroCost => b"cost must be at least 1\0",
            tg_status::ClockOutOfRange => b"now is beyond the quota's exact span\0",
            tg_status::CapacityExceeded => b"fixed capacity exceeded\0",
            tg_status::NotAcquired => b"release without a matching acquire\0",
            tg_status::BufferTooSmall => b"output buffer too small\0",
            tg_status::Malformed => b"malformed input\0",
            tg_status::InvalidArgument => b"argument out of range\0",
            tg_status::NullPointer => b"NULL pointer argument\0",
            tg_status::Misaligned => b"misaligned pointer argument\0",
            tg_status::Uninitialized => b"object not initialised (call its _init function)\0",
            tg_status::Panic => b"internal error: the library panicked (a bug)\0",
            tg_status::Busy => b"object in use by another caller\0",
            tg_status::Unknown => b"unknown engine error\0",
            tg_status::LayoutMismatch => {
                b"key table memory holds another layout, size, parameters or checksum\0"
            }
            tg_status::RandomUnavailable => b"the operating system supplied no random bytes\0",
            tg_status::RegionIo => b"shared region: a system call failed\0",
            tg_status::RegionNotFound => b"shared region: no such file\0",
            tg_status::RegionExists => b"shared region: the file exists already\0",
            tg_status::RegionAccessDenied => b"shared region: access denied\0",
            tg_status::RegionNotLockFree => {
                b"shared region: this platform's atomics are not lock-free\0"
            }
            tg_status::RegionNotAFile => b"shared region: the path is not a regular file\0",
            tg_status::RegionTruncated => b"shared region: the file is shorter than a header\0",
            tg_status::RegionNotARegion => b"shared region: the file is not a tollgate region\0",
            tg_status::RegionLayoutVersion => b"shared region: another layout version\0",
            tg_status::RegionKind => b"shared region: another kind of limiter\0",
            tg_status::RegionNotInitialised => b"shared region: header not initialised\0",
            tg_status::RegionCorrupt => b"shared region: header checksum mismatch\0",
            tg_status::RegionMismatch => b"shared region: a parameter differs\0",
            tg_status::RegionSize => b"shared region: wrong size for its parameters\0",
            tg_status::RegionOwner => b"shared region: owned by another user\0",
            tg_status::RegionPermissions => {
                b"shared region: permissions looser than the mode asked for\0"
            }
        }
    }
}

/// A static, NUL-terminated English description of a status. Any value is accepted: one that is
/// not a `tg_status` (from a newer library, or garbage) gets `"unknown status"`. Never NULL;
/// never free it.
#[unsafe(no_mangle)]
pub extern "C" fn tg_status_str(status: u32) -> *const core::ffi::c_char {
    const UNKNOWN: &[u8] = b"unknown status\0";
    guard_value(UNKNOWN.as_ptr().cast(), || {
        tg_status::from_u32(status)
            .map_or(UNKNOWN, tg_status::text)
            .as_ptr()
            .cast()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_explicit_and_unique_and_every_text_is_terminated() {
        for (i, s) in tg_status::ALL.iter().enumerate() {
            assert_eq!(tg_status::from_u32(*s as u32), Some(*s));
            assert!(tg_status::ALL[..i].iter().all(|o| *o as u32 != *s as u32));
            let text = s.text();
            assert_eq!(text.last(), Some(&0));
            assert!(!text[..text.len() - 1].contains(&0));
        }
        assert_eq!(tg_status::Ok as u32, 0);
        assert_eq!(tg_status::NullPointer as u32, 100);
        assert_eq!(tg_status::from_u32(14), None);
        assert_eq!(tg_status::from_u32(u32::MAX), None);
    }

    #[test]
    fn every_engine_error_has_its_own_status() {
        let errors = [
            Error::ZeroBurst,
            Error::ZeroCount,
            Error::ZeroPeriod,
            Error::QuotaOverflow,
            Error::SpanTooShort,
            Error::OffsetOutOfRange,
            Error::ZeroCost,
            Error::ClockOutOfRange,
            Error::CapacityExceeded,
            Error::NotAcquired,
            Error::BufferTooSmall(3),
            Error::Malformed,
            Error::InvalidArgument,
        ];
        for (i, e) in errors.iter().enumerate() {
            let s = tg_status::from(*e);
            assert_eq!(s as usize, i + 1, "{e:?}");
        }
    }

    #[test]
    fn status_str_maps_unknown_values() {
        // SAFETY: tg_status_str returns a static NUL-terminated string.
        let text = |v| unsafe { core::ffi::CStr::from_ptr(tg_status_str(v)) }.to_bytes();
        assert_eq!(text(0), b"ok");
        assert_eq!(text(7), b"cost must be at least 1");
        assert_eq!(text(99), b"unknown status");
        assert_eq!(text(u32::MAX), b"unknown status");
    }
}
