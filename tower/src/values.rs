//! Header values on the hot path, as `HeaderValue`s.
//!
//! The numbers come from tollgate (`header::ceil_seconds`, `header::retry_after_seconds`); the
//! text is the same as tollgate's `header::write_*` functions give (a test compares them on
//! many values), assembled with `itoa` instead of `core::fmt`, which costs several times more
//! per request.

use http::header::{HeaderName, HeaderValue};
use tollgate::{header, Decision};

/// `RateLimit`.
pub(crate) const RATELIMIT: HeaderName = HeaderName::from_static("ratelimit");
/// `RateLimit-Policy`.
pub(crate) const RATELIMIT_POLICY: HeaderName = HeaderName::from_static("ratelimit-policy");
/// `X-Sb-Shop-Api-Call-Limit`.
pub(crate) const CALL_LIMIT: HeaderName = HeaderName::from_static("x-sb-shop-api-call-limit");
/// `X-Tollgate-Shadow`.
pub(crate) const SHADOW: HeaderName = HeaderName::from_static(crate::layer::SHADOW_HEADER);

/// A small stack buffer for one header value.
struct Buf {
    bytes: [u8; 128],
    len: usize,
}

impl Buf {
    fn new() -> Buf {
        Buf {
            bytes: [0; 128],
            len: 0,
        }
    }

    /// Appends `s`; `None` if it does not fit.
    fn push(&mut self, s: &[u8]) -> Option<()> {
        let end = self.len.checked_add(s.len())?;
        self.bytes.get_mut(self.len..end)?.copy_from_slice(s);
        self.len = end;
        Some(())
    }

    fn number(&mut self, n: u64) -> Option<()> {
        self.push(itoa::Buffer::new().format(n).as_bytes())
    }

    fn value(&self) -> Option<HeaderValue> {
        HeaderValue::from_bytes(&self.bytes[..self.len]).ok()
    }
}

/// `"{name}";r={remaining};t={⌈reset_after / tps⌉}`, given `"{name}";r=` as `prefix`.
pub(crate) fn ratelimit(prefix: &[u8], d: &Decision, tps: u64) -> Option<HeaderValue> {
    let t = header::ceil_seconds(d.reset_after, tps).ok()?;
    let mut b = Buf::new();
    b.push(prefix)?;
    b.number(d.remaining)?;
    b.push(b";t=")?;
    b.number(t)?;
    b.value()
}

/// `{used}/{limit}`.
pub(crate) fn call_limit(d: &Decision) -> Option<HeaderValue> {
    let mut b = Buf::new();
    b.number(d.used)?;
    b.push(b"/")?;
    b.number(d.limit)?;
    b.value()
}

/// The `Retry-After` seconds of a refusal, if it has one.
pub(crate) fn retry_after(d: &Decision, tps: u64) -> Option<HeaderValue> {
    let s = header::retry_after_seconds(d, tps).ok()??;
    let mut b = Buf::new();
    b.number(s)?;
    b.value()
}

/// The `prefix` argument of [`ratelimit`] for the policy `name`.
pub(crate) fn ratelimit_prefix(name: &str) -> Vec<u8> {
    format!("\"{name}\";r=").into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;
    use tollgate::client::{Random, SplitMix64};
    use tollgate::Outcome;

    fn core_value(
        write: impl FnOnce(&mut [u8]) -> Result<usize, tollgate::Error>,
    ) -> Option<HeaderValue> {
        let mut buf = [0u8; 128];
        let n = write(&mut buf).ok()?;
        HeaderValue::from_bytes(&buf[..n]).ok()
    }

    #[test]
    fn the_same_text_as_tollgates_writers() {
        let mut rng = SplitMix64::new(7);
        let edges = [
            0,
            1,
            9,
            10,
            999,
            1_000,
            1_000_000_000,
            u64::MAX - 1,
            u64::MAX,
        ];
        let pick = |rng: &mut SplitMix64| {
            if rng.up_to(3) == 0 {
                edges[usize::try_from(rng.up_to(8)).unwrap()]
            } else {
                rng.next_u64() >> rng.up_to(63)
            }
        };
        for i in 0..20_000 {
            let limit = pick(&mut rng);
            let used = rng.up_to(limit);
            let outcome = [
                Outcome::Allowed,
                Outcome::Limited,
                Outcome::Overloaded,
                Outcome::Never,
            ][usize::try_from(i % 4).unwrap()];
            let d = Decision {
                outcome,
                verdict: outcome,
                limit,
                used,
                remaining: limit - used,
                retry_after: if outcome == Outcome::Never {
                    None
                } else {
                    Some(pick(&mut rng))
                },
                reset_after: pick(&mut rng),
                flags: 0,
            };
            let tps =
                [1, 1_000, 1_000_000_000, pick(&mut rng).max(1)][usize::try_from(i % 4).unwrap()];
            for name in ["api", "shopbase", "a b-c.d"] {
                assert_eq!(
                    ratelimit(&ratelimit_prefix(name), &d, tps),
                    core_value(|b| header::write_ratelimit(name, &d, tps, b)),
                    "{d:?} {tps}"
                );
            }
            assert_eq!(
                call_limit(&d),
                core_value(|b| header::write_shop_api_call_limit(&d, b))
            );
            let core_retry =
                core_value(|b| header::write_retry_after(&d, tps, b)).filter(|v| !v.is_empty());
            assert_eq!(retry_after(&d, tps), core_retry, "{d:?} {tps}");
        }
    }
}
