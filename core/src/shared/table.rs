//! Key tables in a region: one bucket (or fixed window) per key, shared by processes.

use std::path::Path;

use super::header::{self, Kind, Layout, Region};
use super::processes;
use super::region::HeldTable;
use super::{Options, RegionError};
use crate::key::{Key, Seed};
use crate::table::{
    self, AttachError, FullPolicy, Table, TableHeader, TableKind, TableQuota, TableStats,
};
use crate::{Decision, Error, Outcome, Quota, WindowQuota};

/// A key [`Table`] in shared memory: the same lock-free table (a bucket or fixed window per
/// key, tiers, the full-table policy), shared by every process that maps the region — so
/// several worker processes of one server enforce **one** limit per key, not one each.
///
/// The table's memory block is position-independent (offsets only), so each process maps the
/// region wherever its kernel puts it and decides on the same slots.
///
/// # Parameters and the seed
///
/// Opening an existing region compares the capacity (rounded up to a multiple of 5 slots, as
/// every table is), the tiers, the full-table policy and the seed with what the caller asks
/// for, and refuses any difference with a [`RegionError::Mismatch`] naming it (`capacity`,
/// `tier count`, `full-table policy`, `epoch`, `tiers (digest)`, `seed (digest)`). The region's own table block
/// is then checked as [`Table::attach`] does (its checksum covers every tier and the seed).
///
/// The hash seed must be the same in every process and secret from clients (see
/// [`key`](crate::key)). Pass `None` to let the region hold it: the process that creates the
/// region draws a seed from the operating system's randomness, and every process that opens
/// it adopts that seed ([`SharedTable::seed`] returns it, for keys hashed from bytes). Pass
/// `Some(seed)` to require a particular one.
///
/// # Processes that die
///
/// A process killed at any instant never blocks the others and never makes the table admit
/// more than its exact bound (see [`table`](crate::table)). One killed in the middle of
/// inserting a new key — between claiming an empty slot and marking it — leaves that slot
/// busy; the table records the claiming process's id, and the next insertion that meets the
/// slot empties it once the kernel reports that process gone (an exited child is gone once its
/// parent has reaped it). The table's memory records the pid namespace of those ids
/// ([`Table::claim_namespace`]), so this holds for decisions through the C and Python APIs too,
/// which make their handles from the memory ([`table_claimants`](super::table_claimants)). This needs every process to share the creator's pid namespace: a
/// process in another namespace (another container sharing the file) can use the table, but
/// its own interrupted claims stay busy until [`Table::recover`] runs while no one else uses
/// the table.
///
/// # Handles
///
/// [`SharedTable::table`] returns the table's [`Table`] handle (a small `Copy` value checked
/// once, at open), for as long as the `SharedTable` is borrowed: every [`Table`] method works
/// on it. [`decide`](SharedTable::decide), [`check`](SharedTable::check) and
/// [`peek`](SharedTable::peek) are there directly as well.
///
/// ```
/// # #[cfg(unix)] {
/// use tollgate::key::Key;
/// use tollgate::shared::{Options, SharedBucketTable};
/// use tollgate::table::FullPolicy;
/// use tollgate::Quota;
/// let path = std::env::temp_dir().join(format!("tollgate-doc-table-{}", std::process::id()));
/// let tiers = [Quota::new(30, 2, 1_000_000_000)?]; // ShopBase: 30, draining 2/s, ns clock
/// let a = SharedBucketTable::open(&path, 1000, &tiers, None, FullPolicy::FailClosed, &Options::new())?;
/// let b = SharedBucketTable::open(&path, 1000, &tiers, None, FullPolicy::FailClosed, &Options::new())?;
/// assert_eq!(a.seed(), b.seed()); // the seed the creator drew, adopted
/// let shop = Key::pair(7, 42);
/// for _ in 0..15 {
///     assert!(a.decide(shop, 0, 0, 1)?.is_allowed());
///     assert!(b.table().decide(shop, 0, 0, 1)?.is_allowed());
/// }
/// assert!(!a.decide(shop, 0, 0, 1)?.is_allowed()); // 30 for the key in all, not 30 each
/// assert!(b.decide(Key::pair(7, 43), 0, 0, 1)?.is_allowed()); // another shop: its own bucket
/// # std::fs::remove_file(&path)?;
/// # }
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct SharedTable<Q: TableQuota + 'static> {
    held: HeldTable<Q>,
    created: bool,
}

/// A key table of leaky buckets in shared memory.
pub type SharedBucketTable = SharedTable<Quota>;

/// A key table of fixed windows in shared memory.
pub type SharedWindowTable = SharedTable<WindowQuota>;

/// The region parameters of a table: compared on open in this order. The last, the seed's
/// digest, only when the caller names a seed.
fn params(expected: &TableHeader, tiers_digest: u64, seed_digest: u64) -> [(&'static str, u64); 6] {
    [
        ("capacity", expected.capacity as u64),
        ("tier count", expected.tier_count as u64),
        ("full-table policy", expected.policy as u64),
        ("epoch", expected.epoch),
        ("tiers (digest)", tiers_digest),
        ("seed (digest)", seed_digest),
    ]
}

impl<Q: TableQuota + 'static> SharedTable<Q> {
    /// Creates or opens (per `options`) the table at `path`: `capacity` slots (rounded up to a
    /// multiple of 5), these `tiers`, `seed` (`None`: the region's own, see the type's docs)
    /// and full-table `policy`. An existing region must hold a table of this kind with exactly
    /// these parameters.
    ///
    /// Errors: [`RegionError::Engine`] for parameters no table takes (those of
    /// [`Table::init`]); the other [`RegionError`]s as for every region.
    pub fn open(
        path: impl AsRef<Path>,
        capacity: usize,
        tiers: &[Q],
        seed: Option<Seed>,
        policy: FullPolicy,
        options: &Options,
    ) -> Result<SharedTable<Q>, RegionError> {
        Self::build(Some(path.as_ref()), capacity, tiers, seed, policy, *options)
    }

    /// A new table in an anonymous shared mapping: shared with the children this process forks
    /// afterwards (as nginx's master or gunicorn's arbiter do). `None` draws a random seed.
    pub fn anonymous(
        capacity: usize,
        tiers: &[Q],
        seed: Option<Seed>,
        policy: FullPolicy,
    ) -> Result<SharedTable<Q>, RegionError> {
        Self::build(None, capacity, tiers, seed, policy, Options::new())
    }

    fn build(
        path: Option<&Path>,
        capacity: usize,
        tiers: &[Q],
        seed: Option<Seed>,
        policy: FullPolicy,
        options: Options,
    ) -> Result<SharedTable<Q>, RegionError> {
        let words = table::words(capacity, tiers.len());
        let no_seed = Seed::new(0, 0);
        // Validates capacity and tiers; the checksum with a zero seed is the tiers' digest.
        let expected = Table::expected_header(capacity, tiers, no_seed, policy, 0)
            .map_err(RegionError::Engine)?;
        // The creator's seed when none is named (used only if this call creates the region).
        let chosen = match seed {
            Some(s) => s,
            None => Seed::random()?,
        };
        let seed_digest = Table::expected_header(capacity, tiers, chosen, policy, 0)
            .map_err(RegionError::Engine)?
            .checksum;
        let params = params(&expected, expected.checksum, seed_digest);
        let init = |state: &[table::AtomicU64]| -> Result<(), Error> {
            let t = Table::init(&state[..words], tiers, chosen, policy)?;
            processes::record_process_claims(&t);
            Ok(())
        };
        let kind = match expected.kind {
            TableKind::Buckets => Kind::BucketTable,
            TableKind::Windows => Kind::WindowTable,
        };
        let mut layout = Layout::new(kind, &params, words * 8);
        layout.init = Some(&init);
        if seed.is_none() {
            layout.checked = params.len() - 1; // adopt the region's seed
        }
        let region = match path {
            Some(p) => Region::named(p, &layout, options)?,
            None => Region::anonymous(&layout)?,
        };
        let (map, created) = region.into_parts();
        let held = HeldTable::new(map, header::HEADER_BYTES / 8, |state| {
            let t = Table::<Q>::attach(&state[..words]).map_err(RegionError::Table)?;
            // The block must be what the region's header promises: the parameters asked for,
            // the seed included when one was named.
            let want = Table::expected_header(capacity, tiers, seed.unwrap_or(t.seed()), policy, 0)
                .map_err(RegionError::Engine)?;
            // Everything compared here was compared with the region's header already, so a
            // difference means the block was overwritten after the header was written.
            let found = t.header();
            if found != want {
                return Err(RegionError::Table(AttachError::Checksum {
                    recorded: found.checksum,
                    computed: want.checksum,
                }));
            }
            Ok(match processes::table_claimants(&t) {
                Some(c) => t.with_claimants(c),
                None => t,
            })
        })?;
        Ok(SharedTable { held, created })
    }

    /// The table's handle, for as long as `self` is borrowed: every [`Table`] method.
    #[inline]
    pub fn table(&self) -> Table<'_, Q> {
        self.held.table()
    }

    /// As [`Table::decide`].
    #[inline]
    pub fn decide(&self, key: Key, tier: usize, now: u64, cost: u64) -> Result<Decision, Error> {
        self.table().decide(key, tier, now, cost)
    }

    /// As [`Table::check`]: the outcome alone.
    #[inline]
    pub fn check(&self, key: Key, tier: usize, now: u64, cost: u64) -> Result<Outcome, Error> {
        self.table().check(key, tier, now, cost)
    }

    /// As [`Table::peek`].
    #[inline]
    pub fn peek(&self, key: Key, tier: usize, now: u64, cost: u64) -> Result<Decision, Error> {
        self.table().peek(key, tier, now, cost)
    }

    /// As [`Table::stats`].
    pub fn stats(&self) -> TableStats {
        self.table().stats()
    }

    /// The table's hash seed (the one named at open, or the region's), for keys hashed from
    /// bytes ([`Seed::key_bytes`]) exactly as the other processes hash them.
    pub fn seed(&self) -> Seed {
        self.table().seed()
    }

    /// `true` if this handle created the region (of several racing creators, exactly one
    /// does); `false` if it opened an existing one.
    pub fn created(&self) -> bool {
        self.created
    }

    /// The version of the library that created the region, `major << 32 | minor << 16 | patch`.
    pub fn creator_version(&self) -> u64 {
        header::creator_version(self.held.mapping())
    }
}
