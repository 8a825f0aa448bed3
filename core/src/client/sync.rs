//! Reading a server's rate-limit headers (docs/semantics.md#client-toolkit), without allocation, trusting nothing.
//!
//! - `X-Sb-Shop-Api-Call-Limit: 22/30` → [`CallLimit`] `{ used: 22, limit: 30 }`
//!   ([`parse_call_limit`]);
//! - `Retry-After: 120` or `Retry-After: Fri, 31 Dec 1999 23:59:59 GMT` → whole seconds to wait
//!   from the caller's current Unix time ([`parse_retry_after`]); all three HTTP-date forms of
//!   RFC 9110 §5.6.7 are read (IMF-fixdate, and the obsolete RFC 850 and asctime forms).
//!
//! Anything else — stray characters, a number beyond 64 bits, `used > limit`, a limit of 0,
//! February 30th, a weekday that does not match its date — is [`Error::Malformed`]: reported,
//! never trusted, never a panic. Optional whitespace (space, tab) around a value is allowed.
//! [`Pacer::observe_call_limit`](super::Pacer::observe_call_limit) and
//! [`Pacer::block_until`](super::Pacer::block_until) apply the values to a client's mirror.

use crate::Error;

/// A `used/limit` pair as in ShopBase's `X-Sb-Shop-Api-Call-Limit: 22/30`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct CallLimit {
    /// Units the server counted as used, this request included.
    pub used: u64,
    /// The server's capacity (its bucket size).
    pub limit: u64,
}

impl CallLimit {
    /// `limit − used`: what the server says is left.
    pub const fn remaining(&self) -> u64 {
        self.limit - self.used
    }
}

/// Trims optional whitespace (SP, HTAB) from both ends.
fn trim(mut v: &[u8]) -> &[u8] {
    while let [b' ' | b'\t', rest @ ..] = v {
        v = rest;
    }
    while let [rest @ .., b' ' | b'\t'] = v {
        v = rest;
    }
    v
}

/// A non-empty run of ASCII digits as a `u64`; `Malformed` on anything else or overflow.
fn number(digits: &[u8]) -> Result<u64, Error> {
    if digits.is_empty() {
        return Err(Error::Malformed);
    }
    digits.iter().try_fold(0u64, |acc, &b| {
        if !b.is_ascii_digit() {
            return Err(Error::Malformed);
        }
        acc.checked_mul(10)
            .and_then(|v| v.checked_add(u64::from(b - b'0')))
            .ok_or(Error::Malformed)
    })
}

/// Parses a `used/limit` header value such as `22/30`.
///
/// ```
/// use tollgate::client::{parse_call_limit, CallLimit};
/// use tollgate::Error;
/// assert_eq!(parse_call_limit(b"22/30"), Ok(CallLimit { used: 22, limit: 30 }));
/// assert_eq!(parse_call_limit(b" 30/30 "), Ok(CallLimit { used: 30, limit: 30 }));
/// assert_eq!(parse_call_limit(b"31/30"), Err(Error::Malformed));
/// assert_eq!(parse_call_limit(b"22 / 30"), Err(Error::Malformed));
/// ```
pub fn parse_call_limit(value: &[u8]) -> Result<CallLimit, Error> {
    let v = trim(value);
    let slash = v.iter().position(|&b| b == b'/').ok_or(Error::Malformed)?;
    let used = number(&v[..slash])?;
    let limit = number(&v[slash + 1..])?;
    if limit == 0 || used > limit {
        return Err(Error::Malformed);
    }
    Ok(CallLimit { used, limit })
}

/// Parses a `Retry-After` value — delay-seconds or an HTTP-date — into whole seconds from
/// `now_unix` (the caller's current Unix time in seconds). A date in the past is 0 seconds.
///
/// ```
/// use tollgate::client::parse_retry_after;
/// use tollgate::Error;
/// assert_eq!(parse_retry_after(b"120", 0), Ok(120));
/// // 1994-11-06 08:49:37 UTC is Unix time 784 111 777.
/// let date = b"Sun, 06 Nov 1994 08:49:37 GMT";
/// assert_eq!(parse_retry_after(date, 784_111_777 - 30), Ok(30));
/// assert_eq!(parse_retry_after(b"Sunday, 06-Nov-94 08:49:37 GMT", 784_111_770), Ok(7));
/// assert_eq!(parse_retry_after(b"Sun Nov  6 08:49:37 1994", 784_111_777), Ok(0));
/// assert_eq!(parse_retry_after(date, 784_111_777 + 5), Ok(0)); // already past
/// assert_eq!(parse_retry_after(b"Mon, 06 Nov 1994 08:49:37 GMT", 0), Err(Error::Malformed));
/// assert_eq!(parse_retry_after(b"-1", 0), Err(Error::Malformed));
/// ```
pub fn parse_retry_after(value: &[u8], now_unix: u64) -> Result<u64, Error> {
    let v = trim(value);
    if v.first().is_some_and(u8::is_ascii_digit) {
        return number(v);
    }
    let date = parse_http_date(v, now_unix)?;
    // `date` is at most year 9999, well inside i64; now_unix may be anything.
    let now = i128::from(now_unix);
    let wait = i128::from(date) - now;
    Ok(u64::try_from(wait.max(0)).unwrap_or(0))
}

/// `seconds` on a clock of `ticks_per_second`, saturating at `u64::MAX`.
///
/// ```
/// assert_eq!(tollgate::client::seconds_to_ticks(3, 1_000), 3_000);
/// assert_eq!(tollgate::client::seconds_to_ticks(u64::MAX, 2), u64::MAX);
/// ```
pub const fn seconds_to_ticks(seconds: u64, ticks_per_second: u64) -> u64 {
    seconds.saturating_mul(ticks_per_second)
}

const MONTHS: [&[u8; 3]; 12] = [
    b"Jan", b"Feb", b"Mar", b"Apr", b"May", b"Jun", b"Jul", b"Aug", b"Sep", b"Oct", b"Nov", b"Dec",
];
const DAYS: [&[u8]; 7] = [b"Sun", b"Mon", b"Tue", b"Wed", b"Thu", b"Fri", b"Sat"];
const LONG_DAYS: [&[u8]; 7] = [
    b"Sunday",
    b"Monday",
    b"Tuesday",
    b"Wednesday",
    b"Thursday",
    b"Friday",
    b"Saturday",
];

/// Days from 1970-01-01 to the given civil date (proleptic Gregorian; Howard Hinnant's
/// `days_from_civil`).
const fn days_from_civil(year: i64, month: u64, day: u64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400; // 0..=399
    let m = month.cast_signed();
    let mp = if m > 2 { m - 3 } else { m + 9 };
    let doy = (153 * mp + 2) / 5 + day.cast_signed() - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

const fn is_leap(year: i64) -> bool {
    (year % 4 == 0 && year % 100 != 0) || year % 400 == 0
}

const fn days_in_month(year: i64, month: u64) -> u64 {
    match month {
        2 if is_leap(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// 0 = Sunday.
fn weekday(days: i64) -> usize {
    // 1970-01-01 was a Thursday; the remainder is in 0..7.
    usize::try_from((days + 4).rem_euclid(7)).unwrap_or(0)
}

/// Exactly `n` ASCII digits.
fn fixed_digits(v: &[u8], n: usize) -> Result<u64, Error> {
    match v.get(..n) {
        Some(d) if d.len() == n => number(d),
        _ => Err(Error::Malformed),
    }
}

fn month_of(name: &[u8]) -> Result<u64, Error> {
    MONTHS
        .iter()
        .zip(1u64..)
        .find(|(m, _)| m.as_slice() == name)
        .map(|(_, n)| n)
        .ok_or(Error::Malformed)
}

/// `HH:MM:SS` into seconds of the day (a leap second 60 is accepted, as RFC 9110 allows).
fn time_of_day(v: &[u8]) -> Result<u64, Error> {
    if v.len() != 8 || v[2] != b':' || v[5] != b':' {
        return Err(Error::Malformed);
    }
    let (h, m, s) = (
        fixed_digits(v, 2)?,
        fixed_digits(&v[3..], 2)?,
        fixed_digits(&v[6..], 2)?,
    );
    if h > 23 || m > 59 || s > 60 {
        return Err(Error::Malformed);
    }
    Ok(h * 3600 + m * 60 + s)
}

/// A validated date and time of day, checked against its weekday, as Unix seconds (may be
/// negative before 1970).
fn instant(year: i64, month: u64, day: u64, seconds: u64, wday: usize) -> Result<i64, Error> {
    if day == 0 || day > days_in_month(year, month) {
        return Err(Error::Malformed);
    }
    let days = days_from_civil(year, month, day);
    if weekday(days) != wday {
        return Err(Error::Malformed);
    }
    // An RFC 850 year is taken near the caller's `now`, which may be absurdly far out.
    days.checked_mul(86_400)
        .and_then(|t| t.checked_add(seconds.cast_signed()))
        .ok_or(Error::Malformed)
}

/// The calendar year (UTC) of a Unix time.
fn year_of(unix: u64) -> i64 {
    let days = i64::try_from(unix / 86_400).unwrap_or(i64::MAX / 2);
    // 365.2425 days a year on average; off by at most one, corrected below.
    let mut year = 1970 + days * 400 / 146_097;
    while days_from_civil(year, 1, 1) > days {
        year -= 1;
    }
    while days_from_civil(year + 1, 1, 1) <= days {
        year += 1;
    }
    year
}

/// Parses the three HTTP-date forms into Unix seconds.
fn parse_http_date(v: &[u8], now_unix: u64) -> Result<i64, Error> {
    // IMF-fixdate: "Sun, 06 Nov 1994 08:49:37 GMT" (29 bytes).
    if v.len() == 29 && v[3] == b',' {
        let wday = DAYS
            .iter()
            .position(|d| *d == &v[..3])
            .ok_or(Error::Malformed)?;
        if v[4] != b' ' || v[7] != b' ' || v[11] != b' ' || v[16] != b' ' || &v[25..] != b" GMT" {
            return Err(Error::Malformed);
        }
        let day = fixed_digits(&v[5..7], 2)?;
        let month = month_of(&v[8..11])?;
        let year = fixed_digits(&v[12..16], 4)?.cast_signed();
        return instant(year, month, day, time_of_day(&v[17..25])?, wday);
    }
    // asctime: "Sun Nov  6 08:49:37 1994" (24 bytes; the day is space-padded).
    if v.len() == 24 && v[3] == b' ' {
        let wday = DAYS
            .iter()
            .position(|d| *d == &v[..3])
            .ok_or(Error::Malformed)?;
        if v[7] != b' ' || v[10] != b' ' || v[19] != b' ' {
            return Err(Error::Malformed);
        }
        let month = month_of(&v[4..7])?;
        let day = match v[8] {
            b' ' => fixed_digits(&v[9..10], 1)?,
            _ => fixed_digits(&v[8..10], 2)?,
        };
        let year = fixed_digits(&v[20..24], 4)?.cast_signed();
        return instant(year, month, day, time_of_day(&v[11..19])?, wday);
    }
    // RFC 850: "Sunday, 06-Nov-94 08:49:37 GMT".
    let comma = v.iter().position(|&b| b == b',').ok_or(Error::Malformed)?;
    let wday = LONG_DAYS
        .iter()
        .position(|d| *d == &v[..comma])
        .ok_or(Error::Malformed)?;
    let rest = &v[comma..];
    if rest.len() != 24
        || rest[1] != b' '
        || rest[4] != b'-'
        || rest[8] != b'-'
        || rest[11] != b' '
        || &rest[20..] != b" GMT"
    {
        return Err(Error::Malformed);
    }
    let day = fixed_digits(&rest[2..4], 2)?;
    let month = month_of(&rest[5..8])?;
    let yy = fixed_digits(&rest[9..11], 2)?.cast_signed();
    // RFC 9110: a two-digit year more than 50 years in the future is the most recent past year
    // with the same last two digits: the latest year ≡ yy (mod 100) not after now + 50.
    let latest = year_of(now_unix) + 50;
    let year = latest - (latest - yy).rem_euclid(100);
    instant(year, month, day, time_of_day(&rest[12..20])?, wday)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_days_known_values() {
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(days_from_civil(2000, 3, 1), 11_017);
        assert_eq!(days_from_civil(1969, 12, 31), -1);
        assert_eq!(weekday(0), 4);
        assert_eq!(days_from_civil(9999, 12, 31), 2_932_896);
        assert!(is_leap(2000) && !is_leap(1900) && is_leap(2024));
    }

    #[test]
    fn malformed_dates() {
        for bad in [
            &b""[..],
            b"   ",
            b"Sun, 06 Nov 1994 08:49:37 UTC",
            b"Sun, 06 Nov 1994 24:00:00 GMT",
            b"Sun, 31 Apr 1994 08:49:37 GMT",
            b"Tue, 29 Feb 2022 08:49:37 GMT",
            b"Sun, 6 Nov 1994 08:49:37 GMT",
            b"Sun, 06 nov 1994 08:49:37 GMT",
            b"Sunday, 06-Nov-1994 08:49:37 GMT",
            b"Sun Nov 06 08:49:37 94",
            b"12a",
            b"1 2",
            b"99999999999999999999999",
        ] {
            assert_eq!(parse_retry_after(bad, 0), Err(Error::Malformed), "{bad:?}");
        }
        assert_eq!(
            parse_retry_after(b"Tue, 29 Feb 2000 00:00:00 GMT", 951_782_400),
            Ok(0)
        );
        assert_eq!(parse_retry_after(b"\t5 ", 0), Ok(5));
    }

    #[test]
    fn call_limit_edge_cases() {
        assert_eq!(
            parse_call_limit(b"0/1"),
            Ok(CallLimit { used: 0, limit: 1 })
        );
        assert_eq!(
            parse_call_limit(b"18446744073709551615/18446744073709551615").map(|c| c.remaining()),
            Ok(0)
        );
        for bad in [
            &b"0/0"[..],
            b"/30",
            b"22/",
            b"22",
            b"22/30/1",
            b"+1/30",
            b"1/18446744073709551616",
            b"2 2/30",
        ] {
            assert_eq!(parse_call_limit(bad), Err(Error::Malformed), "{bad:?}");
        }
    }

    #[test]
    fn rfc850_two_digit_years() {
        assert_eq!(year_of(0), 1970);
        assert_eq!(year_of(946_684_799), 1999);
        assert_eq!(year_of(946_684_800), 2000);
        // In 1999, "00" is 2000; in 2026, "94" is 1994, and "70" (44 years ahead) is 2070.
        let now_1999 = 946_684_700;
        assert_eq!(
            parse_retry_after(b"Saturday, 01-Jan-00 00:00:00 GMT", now_1999),
            Ok(100)
        );
        let now_2026 = 1_780_000_000;
        assert!(parse_retry_after(b"Sunday, 06-Nov-94 08:49:37 GMT", now_2026) == Ok(0));
        // 2070-01-01 was... is a Wednesday.
        let secs = parse_retry_after(b"Wednesday, 01-Jan-70 00:00:00 GMT", now_2026).unwrap();
        assert_eq!(secs, 3_155_760_000 - now_2026);
    }
}
