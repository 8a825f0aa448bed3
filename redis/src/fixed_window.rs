//! The fixed window (docs/semantics.md#fixed-window) split between the caller and Redis: how it
//! names a quota in Redis.
//!
//! The state is the core's `tollgate::state::window::State` (window index, count), stored as two
//! fields. The caller computes the index of `now`'s window (`window::index_of`); the script
//! compares indices as decimal strings (no arithmetic at all) and adds the cost to a count of
//! at most 2³² − 1 (exact in a double). The decision and every reported number are then
//! `tollgate::state::window::step` on the state the script decided on: the core's arithmetic,
//! not a copy.

use tollgate::WindowQuota;

/// The quota's fingerprint stored next to the state: `N:W:o`.
pub(crate) fn fingerprint(quota: &WindowQuota) -> String {
    format!("{}:{}:{}", quota.limit(), quota.window(), quota.offset())
}

/// The quota named by a fingerprint written by [`fingerprint`], or `None` for anything else.
pub(crate) fn parse_fingerprint(fingerprint: &str) -> Option<WindowQuota> {
    let mut parts = fingerprint.split(':').map(str::parse::<u64>);
    let (Some(Ok(n)), Some(Ok(w)), Some(Ok(o)), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return None;
    };
    WindowQuota::new(n, w).ok()?.with_offset(o).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprints_round_trip_and_reject_invalid_quotas() {
        let q = WindowQuota::new(50, 1_000).unwrap().with_offset(7).unwrap();
        assert_eq!(fingerprint(&q), "50:1000:7");
        assert_eq!(parse_fingerprint(&fingerprint(&q)), Some(q));
        assert_eq!(parse_fingerprint("0:1000:0"), None);
        assert_eq!(parse_fingerprint("5:10:10"), None);
        assert_eq!(parse_fingerprint("5:10"), None);
    }
}
