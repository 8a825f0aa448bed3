//! Header parsers (docs/semantics.md#client-toolkit): random bytes never panic and never yield an untrustworthy value;
//! every valid value round-trips, in all three HTTP-date forms.

use proptest::prelude::*;
use tollgate::client::{parse_call_limit, parse_retry_after, CallLimit};
use tollgate::Error;

const DAYS: [&str; 7] = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"];
const LONG_DAYS: [&str; 7] = [
    "Sunday",
    "Monday",
    "Tuesday",
    "Wednesday",
    "Thursday",
    "Friday",
    "Saturday",
];
const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];
/// Year 9999's last second.
const MAX_DATE: u64 = 253_402_300_799;

/// Unix seconds → (year, month 1-12, day, hour, minute, second, weekday 0 = Sunday), by
/// counting years and months one by one (independent of the crate's arithmetic).
fn civil(t: u64) -> (u64, usize, u64, u64, u64, u64, usize) {
    let leap = |y: u64| (y.is_multiple_of(4) && !y.is_multiple_of(100)) || y.is_multiple_of(400);
    let mut days = t / 86_400;
    let secs = t % 86_400;
    let weekday = usize::try_from((days + 4) % 7).unwrap();
    let mut year = 1970;
    loop {
        let len = if leap(year) { 366 } else { 365 };
        if days < len {
            break;
        }
        days -= len;
        year += 1;
    }
    let lens = [
        31,
        if leap(year) { 29 } else { 28 },
        31,
        30,
        31,
        30,
        31,
        31,
        30,
        31,
        30,
        31,
    ];
    let mut month = 0;
    while days >= lens[month] {
        days -= lens[month];
        month += 1;
    }
    (
        year,
        month + 1,
        days + 1,
        secs / 3600,
        secs / 60 % 60,
        secs % 60,
        weekday,
    )
}

fn imf(t: u64) -> String {
    let (year, month, day, hour, min, sec, wday) = civil(t);
    format!(
        "{}, {day:02} {} {year:04} {hour:02}:{min:02}:{sec:02} GMT",
        DAYS[wday],
        MONTHS[month - 1]
    )
}

fn rfc850(t: u64) -> String {
    let (year, month, day, hour, min, sec, wday) = civil(t);
    format!(
        "{}, {day:02}-{}-{:02} {hour:02}:{min:02}:{sec:02} GMT",
        LONG_DAYS[wday],
        MONTHS[month - 1],
        year % 100
    )
}

fn asctime(t: u64) -> String {
    let (year, month, day, hour, min, sec, wday) = civil(t);
    format!(
        "{} {} {day:>2} {hour:02}:{min:02}:{sec:02} {year:04}",
        DAYS[wday],
        MONTHS[month - 1]
    )
}

#[test]
fn the_formatter_of_these_tests_is_right() {
    assert_eq!(imf(784_111_777), "Sun, 06 Nov 1994 08:49:37 GMT");
    assert_eq!(rfc850(784_111_777), "Sunday, 06-Nov-94 08:49:37 GMT");
    assert_eq!(asctime(784_111_777), "Sun Nov  6 08:49:37 1994");
    assert_eq!(imf(MAX_DATE), "Fri, 31 Dec 9999 23:59:59 GMT");
    assert_eq!(imf(951_782_400), "Tue, 29 Feb 2000 00:00:00 GMT");
}

proptest! {
    #[test]
    fn random_bytes_never_panic_and_call_limits_are_consistent(bytes in proptest::collection::vec(any::<u8>(), 0..40)) {
        if let Ok(c) = parse_call_limit(&bytes) {
            prop_assert!(c.limit >= 1 && c.used <= c.limit);
            // Only outer blanks, digits and one slash can have produced it.
            let inner: Vec<u8> = bytes.iter().copied().filter(|b| !b" \t".contains(b)).collect();
            prop_assert!(inner.iter().all(|b| b.is_ascii_digit() || *b == b'/'));
            prop_assert_eq!(inner.split(|b| *b == b'/').count(), 2);
        }
        let _ = parse_retry_after(&bytes, 0);
        let _ = parse_retry_after(&bytes, u64::MAX);
    }

    #[test]
    fn date_shaped_garbage_never_panics(
        t in 0u64..=MAX_DATE,
        form in 0usize..3,
        pos in 0usize..40,
        byte: u8,
        now: u64,
    ) {
        let mut v = match form { 0 => imf(t), 1 => rfc850(t), _ => asctime(t) }.into_bytes();
        if pos < v.len() {
            v[pos] = byte;
        } else {
            v.truncate(pos % (v.len() + 1));
        }
        if let Ok(s) = parse_retry_after(&v, now) {
            // Whatever parsed is a real date no later than year 9999, or plain digits.
            let digits = v.iter().filter(|b| !b" \t".contains(b)).all(u8::is_ascii_digit);
            prop_assert!(s <= MAX_DATE || digits);
        }
    }

    #[test]
    fn call_limits_round_trip(limit in 1u64..=u64::MAX, frac in 0u64..=1000, pad in 0usize..3) {
        let used = u64::try_from(u128::from(limit) * u128::from(frac) / 1000).unwrap();
        let ws = [" ", "\t", "  \t"][pad];
        let text = format!("{ws}{used}/{limit}{ws}");
        prop_assert_eq!(parse_call_limit(text.as_bytes()), Ok(CallLimit { used, limit }));
        let over = format!("{}/{limit}", u128::from(limit) + 1);
        prop_assert_eq!(parse_call_limit(over.as_bytes()), Err(Error::Malformed));
    }

    #[test]
    fn delay_seconds_round_trip(s: u64) {
        prop_assert_eq!(parse_retry_after(s.to_string().as_bytes(), 12_345), Ok(s));
        let too_big = format!("{s}0000000000000000000000");
        prop_assert_eq!(parse_retry_after(too_big.as_bytes(), 0), Err(Error::Malformed));
    }

    #[test]
    fn http_dates_round_trip_in_all_three_forms(t in 0u64..=MAX_DATE, back in 0u64..10_000_000) {
        let now = t.saturating_sub(back);
        let wait = t - now;
        prop_assert_eq!(parse_retry_after(imf(t).as_bytes(), now), Ok(wait));
        prop_assert_eq!(parse_retry_after(asctime(t).as_bytes(), now), Ok(wait));
        prop_assert_eq!(parse_retry_after(rfc850(t).as_bytes(), now), Ok(wait));
        // A date in the past is "now".
        prop_assert_eq!(parse_retry_after(imf(t).as_bytes(), t + back + 1), Ok(0));
    }

    #[test]
    fn a_wrong_weekday_is_malformed(t in 0u64..=MAX_DATE, shift in 1usize..7) {
        let (_, _, _, _, _, _, wd) = civil(t);
        let good = imf(t);
        let bad = format!("{}{}", DAYS[(wd + shift) % 7], &good[3..]);
        prop_assert_eq!(parse_retry_after(bad.as_bytes(), 0), Err(Error::Malformed));
    }
}
