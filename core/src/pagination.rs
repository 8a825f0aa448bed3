//! Request-shape rule: deep pagination (docs/semantics.md#deep-pagination).
//!
//! A GET whose offset `limit × page` exceeds a maximum (100 000 by default, ShopBase's) is
//! answered [`Outcome::Never`] (HTTP 429): retrying cannot help. The product is computed exactly
//! in 128 bits, so a product that would overflow 64 bits exceeds the maximum — it never wraps to a
//! small number. Whether the request is a GET is the caller's to check.
//!
//! ```
//! use tollgate::{pagination, Outcome};
//! let max = pagination::DEFAULT_MAX_OFFSET;
//! assert_eq!(pagination::check(250, 401, max), Outcome::Never); // 100 250
//! assert_eq!(pagination::check(250, 400, max), Outcome::Allowed); // 100 000
//! assert_eq!(pagination::check_query(b"page=401&limit=250", max), Ok(Outcome::Never));
//! ```

use crate::{Error, Outcome};

/// ShopBase's maximum offset.
pub const DEFAULT_MAX_OFFSET: u64 = 100_000;

/// [`Outcome::Never`] if `limit × page > max_offset`, else [`Outcome::Allowed`].
pub const fn check(limit: u64, page: u64, max_offset: u64) -> Outcome {
    if (limit as u128) * (page as u128) > max_offset as u128 {
        Outcome::Never
    } else {
        Outcome::Allowed
    }
}

/// [`check`] on a URL query string (`limit=250&page=401`, without the `?`). A missing `limit` or
/// `page` is not pagination: allowed. A parameter given twice counts by its largest value.
/// [`Error::Malformed`] for a `limit` or `page` value that is not a decimal number fitting 64 bits
/// (a gateway answers 400).
pub fn check_query(query: &[u8], max_offset: u64) -> Result<Outcome, Error> {
    let mut limit: Option<u64> = None;
    let mut page: Option<u64> = None;
    for pair in query.split(|&b| b == b'&') {
        let mut kv = pair.splitn(2, |&b| b == b'=');
        let key = kv.next().unwrap_or(&[]);
        let slot = match key {
            b"limit" => &mut limit,
            b"page" => &mut page,
            _ => continue,
        };
        let value = parse_u64(kv.next().unwrap_or(&[]))?;
        *slot = Some(slot.map_or(value, |old| old.max(value)));
    }
    Ok(match (limit, page) {
        (Some(l), Some(p)) => check(l, p, max_offset),
        _ => Outcome::Allowed,
    })
}

/// A plain decimal u64: digits only, at least one, no sign, no overflow.
pub(crate) fn parse_u64(digits: &[u8]) -> Result<u64, Error> {
    if digits.is_empty() {
        return Err(Error::Malformed);
    }
    let mut value: u64 = 0;
    for &b in digits {
        if !b.is_ascii_digit() {
            return Err(Error::Malformed);
        }
        value = value
            .checked_mul(10)
            .and_then(|v| v.checked_add(u64::from(b - b'0')))
            .ok_or(Error::Malformed)?;
    }
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spec_examples_100_250_is_never_and_100_000_is_allowed() {
        assert_eq!(check(250, 401, DEFAULT_MAX_OFFSET), Outcome::Never);
        assert_eq!(check(250, 401, DEFAULT_MAX_OFFSET).http_status(), Some(429));
        assert_eq!(check(250, 400, DEFAULT_MAX_OFFSET), Outcome::Allowed);
    }

    #[test]
    fn an_overflowing_product_exceeds_and_never_wraps() {
        // 2^32 × 2^32 = 2^64 wraps to 0 in u64 arithmetic.
        assert_eq!(check(1 << 32, 1 << 32, DEFAULT_MAX_OFFSET), Outcome::Never);
        assert_eq!(check(u64::MAX, u64::MAX, u64::MAX), Outcome::Never);
        assert_eq!(check(u64::MAX, 1, u64::MAX), Outcome::Allowed);
        assert_eq!(check(u64::MAX, 0, 0), Outcome::Allowed);
    }

    #[test]
    fn query_strings() {
        let max = DEFAULT_MAX_OFFSET;
        assert_eq!(check_query(b"limit=250&page=401", max), Ok(Outcome::Never));
        assert_eq!(
            check_query(b"fields=id&limit=250&page=400", max),
            Ok(Outcome::Allowed)
        );
        assert_eq!(check_query(b"limit=250", max), Ok(Outcome::Allowed));
        assert_eq!(check_query(b"", max), Ok(Outcome::Allowed));
        assert_eq!(
            check_query(b"page=1&page=401&limit=250", max),
            Ok(Outcome::Never)
        );
        assert_eq!(check_query(b"limit=-1&page=2", max), Err(Error::Malformed));
        assert_eq!(check_query(b"limit=&page=2", max), Err(Error::Malformed));
        assert_eq!(
            check_query(b"limit=18446744073709551616&page=0", max),
            Err(Error::Malformed)
        );
        assert_eq!(
            check_query(b"limit=18446744073709551615&page=1", u64::MAX),
            Ok(Outcome::Allowed)
        );
    }
}
