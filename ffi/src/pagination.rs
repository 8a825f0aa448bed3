//! The deep-pagination rule (docs/semantics.md#deep-pagination): a GET whose `limit × page` exceeds a maximum is answered
//! `TG_OUTCOME_NEVER` (HTTP 429). The product is exact: one that would overflow 64 bits exceeds
//! the maximum, it never wraps.

use core::ffi::c_char;

use tollgate::pagination;

use crate::boundary::{guard, try_bytes, Out};
use crate::decision::tg_outcome;
use crate::status::tg_status;

/// ShopBase's maximum offset, 100 000.
pub const TG_PAGINATION_DEFAULT_MAX_OFFSET: u64 = 100_000;

const _: () = assert!(TG_PAGINATION_DEFAULT_MAX_OFFSET == pagination::DEFAULT_MAX_OFFSET);

/// `TG_OUTCOME_NEVER` if `limit × page > max_offset` (computed exactly), else
/// `TG_OUTCOME_ALLOWED`: `limit=250&page=401` → 100 250 → never; `page=400` → allowed.
///
/// Errors: `TG_STATUS_NULL_POINTER`, `TG_STATUS_MISALIGNED`.
///
/// # Safety
///
/// `out_outcome` is NULL or valid for a write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tg_pagination_check(
    limit: u64,
    page: u64,
    max_offset: u64,
    out_outcome: *mut tg_outcome,
) -> tg_status {
    guard(|| {
        // SAFETY: forwarded contract.
        let out = unsafe { Out::new(out_outcome) }?;
        out.set(pagination::check(limit, page, max_offset).into());
        Ok(())
    })
}

/// `tg_pagination_check` on a URL query string (`limit=250&page=401`, without the `?`;
/// `query_len` bytes, no NUL needed). A missing `limit` or `page` is not pagination: allowed. A
/// parameter given twice counts by its largest value.
///
/// Errors: `TG_STATUS_MALFORMED` for a `limit` or `page` value that is not a decimal number
/// fitting 64 bits (a gateway answers 400), `TG_STATUS_NULL_POINTER`, `TG_STATUS_MISALIGNED`.
///
/// # Safety
///
/// `query` is NULL (with `query_len` 0) or valid for reads of `query_len` bytes; `out_outcome`
/// is NULL or valid for a write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tg_pagination_check_query(
    query: *const c_char,
    query_len: usize,
    max_offset: u64,
    out_outcome: *mut tg_outcome,
) -> tg_status {
    guard(|| {
        // SAFETY: forwarded contract.
        let out = unsafe { Out::new(out_outcome) }?;
        // SAFETY: forwarded contract.
        let query = unsafe { try_bytes(query.cast::<u8>(), query_len) }?;
        out.set(pagination::check_query(query, max_offset)?.into());
        Ok(())
    })
}
