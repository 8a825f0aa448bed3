//! Header values (docs/semantics.md#header-values), formatted without allocation into a caller buffer.
//!
//! Each `write_*` function returns the number of bytes written, or
//! [`Error::BufferTooSmall(needed)`](Error::BufferTooSmall) with the length it needs — having
//! written nothing. Nothing is ever truncated silently. Values only; the header names are
//! constants here ([`SHOP_API_CALL_LIMIT`], [`RETRY_AFTER`], [`RATELIMIT`],
//! [`RATELIMIT_POLICY`]).
//!
//! ```
//! use tollgate::{header, LeakyBucket, Quota};
//! let tps = 1_000; // a millisecond clock
//! let bucket = LeakyBucket::new(Quota::new(30, 2, tps)?);
//! let d = bucket.decide(0, 22)?;
//! let mut buf = [0u8; 64];
//! let n = header::write_shop_api_call_limit(&d, &mut buf)?;
//! assert_eq!(&buf[..n], b"22/30");
//! let n = header::write_ratelimit("shopbase", &d, tps, &mut buf)?;
//! assert_eq!(&buf[..n], b"\"shopbase\";r=8;t=11");
//! let n = header::write_ratelimit_policy_bucket("shopbase", bucket.quota(), tps, &mut buf)?;
//! assert_eq!(&buf[..n], b"\"shopbase\";q=30;w=15");
//! # Ok::<(), tollgate::Error>(())
//! ```

use core::fmt::{self, Write};

use crate::{Decision, Error, Outcome, Quota, WindowQuota};

/// `X-Sb-Shop-Api-Call-Limit`: ShopBase's `used/limit` header.
pub const SHOP_API_CALL_LIMIT: &str = "X-Sb-Shop-Api-Call-Limit";
/// `Retry-After`, in whole seconds.
pub const RETRY_AFTER: &str = "Retry-After";
/// `RateLimit`, the IETF draft's remaining/reset field.
pub const RATELIMIT: &str = "RateLimit";
/// `RateLimit-Policy`, the IETF draft's quota/window field.
pub const RATELIMIT_POLICY: &str = "RateLimit-Policy";

/// ⌈ticks / ticks_per_second⌉. [`Error::InvalidArgument`] if `ticks_per_second` is 0.
pub const fn ceil_seconds(ticks: u64, ticks_per_second: u64) -> Result<u64, Error> {
    if ticks_per_second == 0 {
        return Err(Error::InvalidArgument);
    }
    Ok(ticks.div_ceil(ticks_per_second))
}

/// The `Retry-After` seconds for a decision: `None` when it was allowed or can never pass (no
/// header), else ⌈retry_after / ticks_per_second⌉ but at least 1 — a denial never says 0.
/// An `Overloaded` decision with no known time gets 1.
pub const fn retry_after_seconds(
    d: &Decision,
    ticks_per_second: u64,
) -> Result<Option<u64>, Error> {
    if ticks_per_second == 0 {
        return Err(Error::InvalidArgument);
    }
    match (d.outcome, d.retry_after) {
        (Outcome::Allowed | Outcome::Never, _) => Ok(None),
        (_, None) => Ok(Some(1)),
        (_, Some(ticks)) => {
            let s = ticks.div_ceil(ticks_per_second);
            Ok(Some(if s == 0 { 1 } else { s }))
        }
    }
}

/// The `RateLimit-Policy` window of a leaky bucket: the time a full bucket takes to drain,
/// ⌈B·P / C / ticks_per_second⌉ seconds (ShopBase: 15).
pub const fn bucket_window_seconds(quota: &Quota, ticks_per_second: u64) -> Result<u64, Error> {
    ceil_seconds(quota.drain_ticks(), ticks_per_second)
}

/// The `RateLimit-Policy` window of a fixed or sliding window: ⌈W / ticks_per_second⌉ seconds.
pub const fn window_seconds(quota: &WindowQuota, ticks_per_second: u64) -> Result<u64, Error> {
    ceil_seconds(quota.window(), ticks_per_second)
}

/// Writes `{used}/{limit}` (e.g. `22/30`).
pub fn write_shop_api_call_limit(d: &Decision, buf: &mut [u8]) -> Result<usize, Error> {
    write_all(buf, format_args!("{}/{}", d.used, d.limit))
}

/// Writes the `Retry-After` seconds (see [`retry_after_seconds`]); `Ok(0)` and nothing written
/// when the decision calls for no `Retry-After` header.
pub fn write_retry_after(
    d: &Decision,
    ticks_per_second: u64,
    buf: &mut [u8],
) -> Result<usize, Error> {
    match retry_after_seconds(d, ticks_per_second)? {
        None => Ok(0),
        Some(s) => write_all(buf, format_args!("{s}")),
    }
}

/// Writes `"{name}";r={remaining};t={s}` with s = ⌈reset_after / ticks_per_second⌉.
/// `name` must be printable ASCII without `"` or `\` (a structured-field string), else
/// [`Error::InvalidArgument`].
pub fn write_ratelimit(
    name: &str,
    d: &Decision,
    ticks_per_second: u64,
    buf: &mut [u8],
) -> Result<usize, Error> {
    check_name(name)?;
    let t = ceil_seconds(d.reset_after, ticks_per_second)?;
    write_all(buf, format_args!("\"{name}\";r={};t={t}", d.remaining))
}

/// Writes `"{name}";q={limit};w={window_seconds}`.
pub fn write_ratelimit_policy(
    name: &str,
    limit: u64,
    window_seconds: u64,
    buf: &mut [u8],
) -> Result<usize, Error> {
    check_name(name)?;
    write_all(buf, format_args!("\"{name}\";q={limit};w={window_seconds}"))
}

/// [`write_ratelimit_policy`] for a leaky bucket: q = B, w = [`bucket_window_seconds`].
pub fn write_ratelimit_policy_bucket(
    name: &str,
    quota: &Quota,
    ticks_per_second: u64,
    buf: &mut [u8],
) -> Result<usize, Error> {
    let w = bucket_window_seconds(quota, ticks_per_second)?;
    write_ratelimit_policy(name, quota.burst(), w, buf)
}

/// [`write_ratelimit_policy`] for a fixed or sliding window: q = N, w = ⌈W / ticks_per_second⌉.
pub fn write_ratelimit_policy_window(
    name: &str,
    quota: &WindowQuota,
    ticks_per_second: u64,
    buf: &mut [u8],
) -> Result<usize, Error> {
    let w = window_seconds(quota, ticks_per_second)?;
    write_ratelimit_policy(name, quota.limit(), w, buf)
}

fn check_name(name: &str) -> Result<(), Error> {
    if name
        .bytes()
        .all(|b| (0x20..0x7f).contains(&b) && b != b'"' && b != b'\\')
    {
        Ok(())
    } else {
        Err(Error::InvalidArgument)
    }
}

/// Counts the bytes of `args`.
struct Counter(usize);

impl Write for Counter {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        self.0 += s.len();
        Ok(())
    }
}

/// Writes into a slice known to be large enough.
struct Slice<'a> {
    buf: &'a mut [u8],
    len: usize,
}

impl Write for Slice<'_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let end = self.len + s.len();
        let dst = self.buf.get_mut(self.len..end).ok_or(fmt::Error)?;
        dst.copy_from_slice(s.as_bytes());
        self.len = end;
        Ok(())
    }
}

/// Measures first, then writes: all or nothing.
fn write_all(buf: &mut [u8], args: fmt::Arguments<'_>) -> Result<usize, Error> {
    let mut counter = Counter(0);
    counter
        .write_fmt(args)
        .map_err(|_| Error::InvalidArgument)?;
    if counter.0 > buf.len() {
        return Err(Error::BufferTooSmall(counter.0));
    }
    let mut out = Slice { buf, len: 0 };
    out.write_fmt(args).map_err(|_| Error::InvalidArgument)?;
    Ok(out.len)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::LeakyBucket;

    const S: u64 = 1_000_000_000;

    fn limited(retry: u64) -> Decision {
        Decision::plain(Outcome::Limited, 30, 30, Some(retry), 15 * S)
    }

    #[test]
    fn shopbase_header_29_of_30_then_9_of_30() {
        let b = LeakyBucket::new(Quota::new(30, 2, S).unwrap());
        let d = b.decide(0, 29).unwrap();
        let mut buf = [0u8; 16];
        let n = write_shop_api_call_limit(&d, &mut buf).unwrap();
        assert_eq!(&buf[..n], b"29/30");
        let d = b.peek(10 * S, 1).unwrap();
        let n = write_shop_api_call_limit(&d, &mut buf).unwrap();
        assert_eq!(&buf[..n], b"9/30");
    }

    #[test]
    fn retry_after_rounds_up_and_is_never_zero_for_a_denial() {
        let mut buf = [0u8; 8];
        let n = write_retry_after(&limited(S / 2), S, &mut buf).unwrap();
        assert_eq!(&buf[..n], b"1");
        let n = write_retry_after(&limited(S + 1), S, &mut buf).unwrap();
        assert_eq!(&buf[..n], b"2");
        assert_eq!(retry_after_seconds(&limited(0), S), Ok(Some(1)));
        let allowed = Decision::plain(Outcome::Allowed, 30, 1, Some(0), S / 2);
        assert_eq!(write_retry_after(&allowed, S, &mut buf), Ok(0));
        let never = Decision::plain(Outcome::Never, 30, 0, None, 0);
        assert_eq!(retry_after_seconds(&never, S), Ok(None));
        assert_eq!(
            retry_after_seconds(&limited(1), 0),
            Err(Error::InvalidArgument)
        );
    }

    #[test]
    fn ratelimit_fields() {
        let mut buf = [0u8; 64];
        let n = write_ratelimit("tiktok", &limited(S), S, &mut buf).unwrap();
        assert_eq!(&buf[..n], b"\"tiktok\";r=0;t=15");
        let q = WindowQuota::new(50, S).unwrap();
        let n = write_ratelimit_policy_window("tiktok", &q, S, &mut buf).unwrap();
        assert_eq!(&buf[..n], b"\"tiktok\";q=50;w=1");
        let q = Quota::new(30, 2, S).unwrap();
        let n = write_ratelimit_policy_bucket("shopbase", &q, S, &mut buf).unwrap();
        assert_eq!(&buf[..n], b"\"shopbase\";q=30;w=15");
        // w rounds up: 7 drained at 2/s takes 3.5 s.
        let q = Quota::new(7, 2, S).unwrap();
        assert_eq!(bucket_window_seconds(&q, S), Ok(4));
        assert_eq!(
            write_ratelimit("bad\"name", &limited(1), S, &mut buf),
            Err(Error::InvalidArgument)
        );
        assert_eq!(
            write_ratelimit("tab\tname", &limited(1), S, &mut buf),
            Err(Error::InvalidArgument)
        );
    }

    #[test]
    fn a_short_buffer_reports_the_needed_length_and_writes_nothing() {
        let d = Decision::plain(Outcome::Allowed, 30, 22, Some(0), 0);
        let mut buf = [b'x'; 4];
        assert_eq!(
            write_shop_api_call_limit(&d, &mut buf),
            Err(Error::BufferTooSmall(5))
        );
        assert_eq!(&buf, b"xxxx");
        let mut exact = [0u8; 5];
        assert_eq!(write_shop_api_call_limit(&d, &mut exact), Ok(5));
        let big = Decision::plain(Outcome::Allowed, u64::MAX, u64::MAX, Some(0), 0);
        assert_eq!(
            write_shop_api_call_limit(&big, &mut []),
            Err(Error::BufferTooSmall(41))
        );
    }
}
