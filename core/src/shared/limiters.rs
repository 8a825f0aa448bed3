//! The one-word limiters in a region: leaky bucket and fixed window.

use std::path::Path;

use portable_atomic::AtomicU64;

use super::header::{Kind, Layout, Region};
use super::{Options, RegionError};
use crate::atomic::Ordering;
use crate::gcra;
use crate::{fixed_window, Decision, Error, Outcome, Quota, WindowQuota};

fn bucket_params(q: &Quota) -> [(&'static str, u64); 6] {
    [
        ("burst", q.burst()),
        ("count", q.count()),
        ("period", q.period()),
        ("unit", q.unit()),
        ("interval", q.interval()),
        ("exact", u64::from(q.is_exact())),
    ]
}

fn window_params(q: &WindowQuota) -> [(&'static str, u64); 3] {
    [
        ("limit", q.limit()),
        ("window", q.window()),
        ("offset", q.offset()),
    ]
}

/// A leaky bucket ([`LeakyBucket`](crate::LeakyBucket)) in shared memory: the same decisions,
/// shared by every process that maps the region. One atomic word, lock-free; a process killed
/// at any instant has either made its compare-and-swap or not.
#[derive(Debug)]
pub struct SharedBucket {
    quota: Quota,
    region: Region,
}

impl SharedBucket {
    /// Creates or opens (per `options`) the bucket at `path`. An existing region must hold a
    /// bucket with exactly this quota.
    pub fn open(
        path: impl AsRef<Path>,
        quota: Quota,
        options: &Options,
    ) -> Result<SharedBucket, RegionError> {
        let params = bucket_params(&quota);
        let region = Region::named(path.as_ref(), &layout(Kind::Bucket, &params), *options)?;
        Ok(SharedBucket { quota, region })
    }

    /// A new bucket in an anonymous shared mapping: shared with the children this process
    /// forks afterwards.
    pub fn anonymous(quota: Quota) -> Result<SharedBucket, RegionError> {
        let params = bucket_params(&quota);
        let region = Region::anonymous(&layout(Kind::Bucket, &params))?;
        Ok(SharedBucket { quota, region })
    }

    #[inline]
    fn cell(&self) -> &AtomicU64 {
        &self.region.state()[0]
    }

    /// The quota.
    pub const fn quota(&self) -> &Quota {
        &self.quota
    }

    /// As [`LeakyBucket::decide`](crate::LeakyBucket::decide).
    #[inline]
    pub fn decide(&self, now: u64, cost: u64) -> Result<Decision, Error> {
        gcra::decide_in(self.cell(), &self.quota, now, cost)
    }

    /// As [`LeakyBucket::check`](crate::LeakyBucket::check): the outcome alone.
    #[inline]
    pub fn check(&self, now: u64, cost: u64) -> Result<Outcome, Error> {
        gcra::check_in(self.cell(), &self.quota, now, cost)
    }

    /// As [`LeakyBucket::peek`](crate::LeakyBucket::peek).
    #[inline]
    pub fn peek(&self, now: u64, cost: u64) -> Result<Decision, Error> {
        gcra::peek_in(self.cell(), &self.quota, now, cost)
    }

    /// `true` if the bucket is empty at `now`.
    pub fn is_drained(&self, now: u64) -> bool {
        gcra::is_drained(self.cell().load(Ordering::Acquire), &self.quota, now)
    }

    /// Empties the bucket for every process (an operator's reset).
    pub fn reset(&self) {
        self.cell().store(0, Ordering::Release);
    }

    /// `true` if this handle created the region (of several racing creators, exactly one
    /// does); `false` if it opened an existing one.
    pub fn created(&self) -> bool {
        self.region.created()
    }

    /// The version of the library that created the region, `major << 32 | minor << 16 | patch`.
    pub fn creator_version(&self) -> u64 {
        self.region.creator_version()
    }
}

/// A fixed window ([`FixedWindow`](crate::FixedWindow)) in shared memory: one atomic word,
/// lock-free, the same decisions for every process that maps it.
#[derive(Debug)]
pub struct SharedWindow {
    quota: WindowQuota,
    region: Region,
}

impl SharedWindow {
    /// Creates or opens (per `options`) the window at `path`. An existing region must hold a
    /// window with exactly this quota.
    pub fn open(
        path: impl AsRef<Path>,
        quota: WindowQuota,
        options: &Options,
    ) -> Result<SharedWindow, RegionError> {
        let params = window_params(&quota);
        let region = Region::named(path.as_ref(), &layout(Kind::Window, &params), *options)?;
        Ok(SharedWindow { quota, region })
    }

    /// A new window in an anonymous shared mapping (shared with children forked afterwards).
    pub fn anonymous(quota: WindowQuota) -> Result<SharedWindow, RegionError> {
        let params = window_params(&quota);
        let region = Region::anonymous(&layout(Kind::Window, &params))?;
        Ok(SharedWindow { quota, region })
    }

    #[inline]
    fn cell(&self) -> &AtomicU64 {
        &self.region.state()[0]
    }

    /// The quota.
    pub const fn quota(&self) -> &WindowQuota {
        &self.quota
    }

    /// As [`FixedWindow::decide`](crate::FixedWindow::decide).
    #[inline]
    pub fn decide(&self, now: u64, cost: u64) -> Result<Decision, Error> {
        fixed_window::decide_in(self.cell(), &self.quota, now, cost)
    }

    /// As [`FixedWindow::check`](crate::FixedWindow::check): the outcome alone.
    #[inline]
    pub fn check(&self, now: u64, cost: u64) -> Result<Outcome, Error> {
        fixed_window::check_in(self.cell(), &self.quota, now, cost)
    }

    /// As [`FixedWindow::peek`](crate::FixedWindow::peek).
    #[inline]
    pub fn peek(&self, now: u64, cost: u64) -> Result<Decision, Error> {
        fixed_window::peek_in(self.cell(), &self.quota, now, cost)
    }

    /// `true` if nothing counts in the window at `now`.
    pub fn is_drained(&self, now: u64) -> bool {
        fixed_window::is_drained(self.cell().load(Ordering::Acquire), &self.quota, now)
    }

    /// Forgets every count for every process (an operator's reset).
    pub fn reset(&self) {
        self.cell().store(0, Ordering::Release);
    }

    /// `true` if this handle created the region (of several racing creators, exactly one
    /// does); `false` if it opened an existing one.
    pub fn created(&self) -> bool {
        self.region.created()
    }

    /// The version of the library that created the region.
    pub fn creator_version(&self) -> u64 {
        self.region.creator_version()
    }
}

pub(crate) fn layout<'a>(kind: Kind, params: &'a [(&'static str, u64)]) -> Layout<'a> {
    Layout::new(kind, params, 16)
}
