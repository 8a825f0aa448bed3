//! One limit across the processes of one host: limiters in shared memory (std, Unix; feature
//! `shared`). The semantics are in `docs/semantics.md#shared-regions`.
//!
//! A **region** is one mapping of shared memory holding one limiter. It is either
//! - **named**: a file at a path the caller chooses, typically under `/dev/shm` (memory, not
//!   disk); every process that opens the same path with the same parameters shares the limiter.
//!   A file on a disk file system works too, but each time the kernel writes the dirty page
//!   back the next decision takes a page fault: prefer tmpfs;
//! - **anonymous**: a shared mapping of no file, shared with the children the process forks
//!   after creating it (as nginx's master or gunicorn's arbiter do before forking workers).
//!
//! A named region is also inherited across `fork`. Every limiter works in a region exactly as it
//! does in private memory (the same decisions and numbers), with the same lock-free algorithms:
//! [`SharedBucket`] and [`SharedWindow`] are one atomic word; [`SharedLog`] is a lock-free log
//! of admitted units; [`SharedLeases`] is a concurrency limit whose permits are **leases** that
//! expire, so a process that dies holding permits never wedges the limit; [`SharedTable`]
//! ([`SharedBucketTable`], [`SharedWindowTable`]) is a key table — a bucket or window per
//! key — whose lock-free slots every process shares.
//!
//! # A process may die at any instruction
//!
//! No structure here has a lock. A decision is one compare-and-swap that either happened or did
//! not; a sliding-log admission publishes its claim and the admitted units' time in one CAS, and
//! any later caller finishes writing them (see [`SharedLog`]); a lease not released by its
//! deadline is free for the next caller. A creator killed while initialising leaves no region
//! at the path at all: a region is built in a temporary file next to the path and linked into
//! place only when complete (`link(2)` fails if the path exists, so exactly one of several
//! racing creators wins, and the others open the winner's region). A creator killed at the wrong
//! moment may leave its temporary file, named `<path>.tmp.<pid>.<n>`, which nothing reads.
//!
//! # The header
//!
//! The first 256 bytes of a region record a magic number, the layout version, the version of
//! the library that created it, the limiter kind, every parameter (quota, capacity, lease
//! bound), the region's size, a checksum of all that, and an initialisation word written last.
//! Opening compares every one with what the caller asked for; any difference is a
//! [`RegionError`] that names it. A region is never reinterpreted.
//!
//! # Trust boundary
//!
//! Every process that can write a region can change any decision it makes: admit everything,
//! refuse everything, or corrupt its state (which is then refused when its header no longer
//! checks, or decided on as whatever state it holds — never outside the region's memory).
//! Regions are therefore created owner-only (mode `0600`) by default; [`Options::mode`] widens
//! that for a group of cooperating users. Opening checks that the file belongs to the effective
//! user and grants no permission beyond the mode asked for. Truncating a mapped region (only its
//! owner can) makes the processes that map it fault (`SIGBUS`): the owner is trusted not to.
//!
//! # Clocks
//!
//! Every process must pass `now` from the same clock: on Linux `CLOCK_MONOTONIC` (what
//! `std::time::Instant` reads) is one clock for the whole host.
//!
//! ```
//! # #[cfg(unix)] {
//! use tollgate::shared::{Options, SharedBucket};
//! use tollgate::Quota;
//! let path = std::env::temp_dir().join(format!("tollgate-doc-{}", std::process::id()));
//! let quota = Quota::new(30, 2, 1_000_000_000)?; // ShopBase: 30, draining 2/s, ns clock
//! let a = SharedBucket::open(&path, quota, &Options::new())?;
//! let b = SharedBucket::open(&path, quota, &Options::new())?; // another process, typically
//! for _ in 0..15 {
//!     assert!(a.decide(0, 1)?.is_allowed());
//!     assert!(b.decide(0, 1)?.is_allowed());
//! }
//! assert!(!a.decide(0, 1)?.is_allowed()); // 30 in all, not 30 each
//! # std::fs::remove_file(&path)?;
//! # }
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod error;
mod header;
mod leases;
mod limiters;
mod log;
mod processes;
mod region;
mod table;

pub use error::RegionError;
pub use header::{Kind, LAYOUT_VERSION};
pub use leases::{Lease, SharedLeases};
pub use limiters::{SharedBucket, SharedWindow};
pub use log::{SharedLog, LOG_MAX_LIMIT};
pub use processes::{record_process_claims, table_claimants};
pub use table::{SharedBucketTable, SharedTable, SharedWindowTable};

/// Whether to create a named region, open an existing one, or either.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Create {
    /// Open the region if the path exists, else create it (the default). Of several processes
    /// racing, exactly one creates it; the others open it.
    #[default]
    IfMissing,
    /// Create the region; an existing path is an error (`AlreadyExists`).
    New,
    /// Open an existing region; a missing path is an error (`NotFound`).
    Existing,
}

/// How a named region is created and checked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Options {
    mode: u32,
    create: Create,
}

impl Default for Options {
    fn default() -> Self {
        Options::new()
    }
}

impl Options {
    /// Owner-only (`0600`), create if missing.
    pub const fn new() -> Options {
        Options {
            mode: 0o600,
            create: Create::IfMissing,
        }
    }

    /// The permission bits of a region this process creates (`umask` does not apply), and the
    /// most an opened region may grant: opening one whose mode has any bit outside `mode` is
    /// [`RegionError::Permissions`]. Bits above `0o777` are ignored.
    #[must_use]
    pub const fn mode(mut self, mode: u32) -> Options {
        self.mode = mode & 0o777;
        self
    }

    /// Whether to create, open or either (default [`Create::IfMissing`]).
    #[must_use]
    pub const fn create(mut self, create: Create) -> Options {
        self.create = create;
        self
    }

    /// The permission bits asked for.
    pub const fn get_mode(&self) -> u32 {
        self.mode
    }
}
