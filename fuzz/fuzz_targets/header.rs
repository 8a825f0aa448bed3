//! Header values and the parsers of text from the network, on arbitrary input:
//! - every `tollgate::header` formatter, on arbitrary decisions, names, clocks and buffer sizes,
//!   against `format!` of the docs/semantics.md#header-values text: the exact bytes, or `BufferTooSmall(needed)` with
//!   the buffer untouched (nothing is ever truncated);
//! - the client's `parse_call_limit` and `parse_retry_after` on arbitrary bytes against small
//!   reference parsers, and on header values this target formats itself (a `used/limit` value,
//!   an IMF-fixdate from a Unix time) — they must read back what was written;
//! - `pagination::check_query` on arbitrary bytes against a reference (exact u128 product).
#![no_main]

use libfuzzer_sys::arbitrary::{self, Arbitrary};
use libfuzzer_sys::fuzz_target;
use tollgate::client::{parse_call_limit, parse_retry_after, CallLimit};
use tollgate::{header, pagination, Decision, Error, Outcome, Quota, WindowQuota};
use tollgate_fuzz::gen::Param;

#[derive(Arbitrary, Debug)]
enum Input {
    Format {
        outcome: u8,
        used: Param,
        limit: Param,
        retry_after: Option<Param>,
        reset_after: Param,
        tps: Param,
        name: Vec<u8>,
        buf_len: u8,
        quota: (Param, Param, Param),
    },
    CallLimit(Vec<u8>),
    CallLimitRoundTrip(u64, u64, u8, u8),
    RetryAfter(Vec<u8>, u64),
    RetryDate(u32, u64),
    Query(Vec<u8>, Param),
}

/// Runs a formatter into a buffer of `len` bytes pre-filled with a marker and checks it against
/// the expected text (or expected error).
fn expect(
    len: usize,
    want: Result<String, Error>,
    write: impl FnOnce(&mut [u8]) -> Result<usize, Error>,
) {
    let mut buf = vec![0xA5u8; len];
    let got = write(&mut buf);
    match want {
        Err(e) => {
            assert_eq!(got, Err(e));
            assert!(buf.iter().all(|&b| b == 0xA5), "written on error");
        }
        Ok(text) if text.len() > len => {
            assert_eq!(got, Err(Error::BufferTooSmall(text.len())), "{text:?}");
            assert!(buf.iter().all(|&b| b == 0xA5), "written on BufferTooSmall");
        }
        Ok(text) => {
            assert_eq!(got, Ok(text.len()), "{text:?}");
            assert_eq!(&buf[..text.len()], text.as_bytes());
            assert!(
                buf[text.len()..].iter().all(|&b| b == 0xA5),
                "written past the end"
            );
        }
    }
}

fn valid_name(name: &str) -> bool {
    name.bytes()
        .all(|b| (0x20..0x7f).contains(&b) && b != b'"' && b != b'\\')
}

fn ceil(a: u64, b: u64) -> u64 {
    a.div_ceil(b)
}

/// Reference: `used/limit`, each a non-empty run of digits fitting u64, limit ≥ 1, used ≤ limit,
/// optional SP/HTAB around the whole value.
fn call_limit_model(v: &[u8]) -> Option<CallLimit> {
    let s = std::str::from_utf8(v).ok()?;
    let s = s.trim_matches(|c| c == ' ' || c == '\t');
    let (a, b) = s.split_once('/')?;
    let num = |t: &str| -> Option<u64> {
        if t.is_empty() || !t.bytes().all(|c| c.is_ascii_digit()) {
            return None;
        }
        t.parse().ok()
    };
    let (used, limit) = (num(a)?, num(b)?);
    (limit != 0 && used <= limit).then_some(CallLimit { used, limit })
}

/// Days since 1970-01-01 to (year, month, day), the proleptic Gregorian calendar.
fn civil(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

/// An IMF-fixdate (RFC 9110 §5.6.7) for a Unix time.
fn imf_fixdate(t: u64) -> String {
    const DAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let days = (t / 86_400) as i64;
    let secs = t % 86_400;
    let (y, m, d) = civil(days);
    format!(
        "{}, {:02} {} {:04} {:02}:{:02}:{:02} GMT",
        DAYS[(days % 7) as usize],
        d,
        MONTHS[m as usize - 1],
        y,
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    )
}

/// Reference for the query rule: `limit` and `page` by their largest value, digits only.
fn query_model(q: &[u8], max: u64) -> Result<Outcome, Error> {
    let (mut limit, mut page) = (None::<u64>, None::<u64>);
    for pair in q.split(|&b| b == b'&') {
        let (k, v) = match pair.iter().position(|&b| b == b'=') {
            Some(i) => (&pair[..i], &pair[i + 1..]),
            None => (pair, &pair[pair.len()..]),
        };
        let slot = match k {
            b"limit" => &mut limit,
            b"page" => &mut page,
            _ => continue,
        };
        if v.is_empty() || !v.iter().all(u8::is_ascii_digit) {
            return Err(Error::Malformed);
        }
        let value: u64 = std::str::from_utf8(v)
            .ok()
            .and_then(|s| s.parse().ok())
            .ok_or(Error::Malformed)?;
        *slot = Some(slot.map_or(value, |old: u64| old.max(value)));
    }
    Ok(match (limit, page) {
        (Some(l), Some(p)) if u128::from(l) * u128::from(p) > u128::from(max) => Outcome::Never,
        _ => Outcome::Allowed,
    })
}

fuzz_target!(|input: Input| match input {
    Input::Format {
        outcome,
        used,
        limit,
        retry_after,
        reset_after,
        tps,
        name,
        buf_len,
        quota,
    } => {
        let outcome = match outcome % 4 {
            0 => Outcome::Allowed,
            1 => Outcome::Limited,
            2 => Outcome::Overloaded,
            _ => Outcome::Never,
        };
        let (used, limit) = (used.get(), limit.get());
        let d = Decision {
            outcome,
            verdict: outcome,
            limit,
            used,
            remaining: limit.saturating_sub(used),
            retry_after: retry_after.map(Param::get),
            reset_after: reset_after.get(),
            flags: 0,
        };
        let tps = tps.get();
        let len = usize::from(buf_len);
        expect(len, Ok(format!("{used}/{limit}")), |b| {
            header::write_shop_api_call_limit(&d, b)
        });
        let seconds = match (tps, outcome, d.retry_after) {
            (0, _, _) => Err(Error::InvalidArgument),
            (_, Outcome::Allowed | Outcome::Never, _) => Ok(None),
            (_, _, None) => Ok(Some(1)),
            (_, _, Some(t)) => Ok(Some(ceil(t, tps).max(1))),
        };
        assert_eq!(header::retry_after_seconds(&d, tps), seconds);
        let want = seconds.map(|s| s.map_or(String::new(), |s| s.to_string()));
        expect(len, want, |b| header::write_retry_after(&d, tps, b));
        let name = String::from_utf8_lossy(&name).into_owned();
        let named = |text: String| {
            if valid_name(&name) {
                Ok(text)
            } else {
                Err(Error::InvalidArgument)
            }
        };
        let want = if tps == 0 {
            named(String::new()).and(Err(Error::InvalidArgument))
        } else {
            named(format!(
                "\"{name}\";r={};t={}",
                d.remaining,
                ceil(d.reset_after, tps)
            ))
        };
        expect(len, want, |b| header::write_ratelimit(&name, &d, tps, b));
        let want = named(format!("\"{name}\";q={limit};w={used}"));
        expect(len, want, |b| {
            header::write_ratelimit_policy(&name, limit, used, b)
        });
        if let Ok(q) = Quota::with_min_span(quota.0.get(), quota.1.get(), quota.2.get(), 0) {
            let want = if tps == 0 {
                named(String::new()).and(Err(Error::InvalidArgument))
            } else {
                // w = ⌈B·P / C / tps⌉ with B·P / C rounded up first (drain_ticks).
                let drain = (u128::from(q.burst()) * u128::from(q.period()))
                    .div_ceil(u128::from(q.count()));
                let w = drain.div_ceil(u128::from(tps));
                named(format!("\"{name}\";q={};w={w}", q.burst()))
            };
            expect(len, want, |b| {
                header::write_ratelimit_policy_bucket(&name, &q, tps, b)
            });
        }
        if let Ok(q) = WindowQuota::new(quota.0.get(), quota.1.get()) {
            let want = if tps == 0 {
                named(String::new()).and(Err(Error::InvalidArgument))
            } else {
                named(format!(
                    "\"{name}\";q={};w={}",
                    q.limit(),
                    ceil(q.window(), tps)
                ))
            };
            expect(len, want, |b| {
                header::write_ratelimit_policy_window(&name, &q, tps, b)
            });
        }
    }
    Input::CallLimit(bytes) => {
        let got = parse_call_limit(&bytes);
        assert_eq!(
            got.ok(),
            call_limit_model(&bytes),
            "{:?}",
            String::from_utf8_lossy(&bytes)
        );
        if let Err(e) = got {
            assert_eq!(e, Error::Malformed);
        }
    }
    Input::CallLimitRoundTrip(used, limit, lead, trail) => {
        let (used, limit) = (used.min(limit), limit.max(1));
        let ws = |n: u8| " \t".repeat(usize::from(n % 3));
        let text = format!("{}{used}/{limit}{}", ws(lead), ws(trail));
        assert_eq!(
            parse_call_limit(text.as_bytes()),
            Ok(CallLimit { used, limit })
        );
    }
    Input::RetryAfter(bytes, now) => {
        let got = parse_retry_after(&bytes, now);
        let trimmed: &[u8] = {
            let s = bytes.as_slice();
            let start = s
                .iter()
                .position(|&b| b != b' ' && b != b'\t')
                .unwrap_or(s.len());
            let end = s
                .iter()
                .rposition(|&b| b != b' ' && b != b'\t')
                .map_or(start, |i| i + 1);
            &s[start..end.max(start)]
        };
        if trimmed.first().is_some_and(u8::is_ascii_digit) {
            let want = if trimmed.iter().all(u8::is_ascii_digit) {
                std::str::from_utf8(trimmed)
                    .unwrap()
                    .parse::<u64>()
                    .map_err(|_| Error::Malformed)
            } else {
                Err(Error::Malformed)
            };
            assert_eq!(got, want);
        } else if let Err(e) = got {
            assert_eq!(e, Error::Malformed);
        }
    }
    Input::RetryDate(t, now) => {
        // Any Unix time up to 2106 (u32 seconds), formatted as an IMF-fixdate.
        let t = u64::from(t);
        let date = imf_fixdate(t);
        let want = t.saturating_sub(now);
        assert_eq!(parse_retry_after(date.as_bytes(), now), Ok(want), "{date}");
    }
    Input::Query(bytes, max) => {
        let max = max.get();
        assert_eq!(
            pagination::check_query(&bytes, max),
            query_model(&bytes, max)
        );
    }
});
