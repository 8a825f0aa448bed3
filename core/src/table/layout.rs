//! The table's memory: header, tiers, groups of slots — one block of 64-bit words, no pointers.

use core::fmt;

use super::{hash, FullPolicy, TableQuota, GROUP_SLOTS, GROUP_WORDS, MAX_TIERS};
use crate::atomic::{AtomicU64, Ordering};
use crate::key::Seed;
use crate::Error;

/// "TGKEYTAB", little-endian: the first word of an initialised table.
pub const MAGIC: u64 = u64::from_le_bytes(*b"TGKEYTAB");

/// The layout this version of the library writes and reads. Version 1 was the table of 32-byte
/// slots with pointers to its tiers; it has no header in this form.
pub const LAYOUT_VERSION: u64 = 2;

/// Words of the header.
pub const HEADER_WORDS: usize = 24;

/// Words per tier.
pub const TIER_WORDS: usize = 8;

/// The memory's alignment for the layout's promise that no group straddles a cache line:
/// 128 bytes (a group is 128 bytes). The table works at any 8-byte alignment.
pub const ALIGN: usize = 128;

// Header words (each a u64).
pub(super) const H_MAGIC: usize = 0;
pub(super) const H_VERSION: usize = 1;
pub(super) const H_WORDS: usize = 2;
pub(super) const H_KIND: usize = 3;
pub(super) const H_CAPACITY: usize = 4;
pub(super) const H_TIERS: usize = 5;
pub(super) const H_POLICY: usize = 6;
pub(super) const H_SEED0: usize = 7;
pub(super) const H_SEED1: usize = 8;
pub(super) const H_EPOCH: usize = 9;
pub(super) const H_HASH0: usize = 10;
pub(super) const H_HASH1: usize = 11;
pub(super) const H_CHECKSUM: usize = 12;
/// The pid namespace whose process ids claims record (0: claims record no process ids); set
/// by a shared region's creator, outside the checksum.
pub(super) const H_CLAIM_NAMESPACE: usize = 13;
// Words 14..16 are zero (reserved). The counters sit on their own cache line (words 16..24),
// away from the parameters every decision reads.
pub(super) const H_WATERMARK: usize = 16;
pub(super) const H_CLAIMS: usize = 17;
pub(super) const H_OCCUPIED: usize = 18;
pub(super) const H_RECLAIMED: usize = 19;
pub(super) const H_REJECTED: usize = 20;

/// Where the tiers start (words).
pub(super) const TIERS_AT: usize = HEADER_WORDS;

/// Where the groups start for `tiers` tiers (words, a multiple of a group).
pub(super) const fn groups_at(tiers: usize) -> usize {
    let end = TIERS_AT + tiers * TIER_WORDS;
    end.div_ceil(GROUP_WORDS) * GROUP_WORDS
}

/// The groups a capacity of `capacity` slots needs.
pub(super) const fn groups_for(capacity: usize) -> usize {
    capacity.div_ceil(GROUP_SLOTS)
}

/// The number of 64-bit words a table of at least `capacity` slots and `tiers` tiers needs:
/// header, tiers and ⌈capacity / 5⌉ groups of 16 words. `usize::MAX` when there is no such
/// table (`capacity` 0, `tiers` 0 or above [`MAX_TIERS`], or a size that does not fit) — no
/// memory is that large, so [`Table::init`](super::Table::init) then refuses it.
pub const fn words(capacity: usize, tiers: usize) -> usize {
    if capacity == 0 || tiers == 0 || tiers > MAX_TIERS {
        return usize::MAX;
    }
    let groups = groups_for(capacity);
    match groups.checked_mul(GROUP_WORDS) {
        Some(g) => match g.checked_add(groups_at(tiers)) {
            // The byte size must fit too.
            Some(w) if w <= usize::MAX / 8 => w,
            _ => usize::MAX,
        },
        None => usize::MAX,
    }
}

/// [`words`] in bytes (`usize::MAX` when there is no such table).
pub const fn bytes(capacity: usize, tiers: usize) -> usize {
    match words(capacity, tiers) {
        usize::MAX => usize::MAX,
        w => w * 8,
    }
}

/// The slots a table in `words` words with `tiers` tiers holds (0 if none fit).
pub const fn capacity_in(words: usize, tiers: usize) -> usize {
    let at = groups_at(tiers);
    if words < at {
        return 0;
    }
    (words - at) / GROUP_WORDS * GROUP_SLOTS
}

/// Memory for a table of `N` words ([`words`]), aligned to [`ALIGN`], zeroed: a `static` works.
///
/// ```
/// use tollgate::table::{self, BucketTable, FullPolicy, TableMemory};
/// use tollgate::{key::Seed, Quota};
/// static MEMORY: TableMemory<{ table::words(100, 1) }> = TableMemory::new();
/// let tiers = [Quota::new(10, 1, 1_000)?];
/// let t = BucketTable::init(MEMORY.words(), &tiers, Seed::new(1, 2), FullPolicy::FailClosed)?;
/// assert_eq!(t.capacity(), 100);
/// # Ok::<(), tollgate::Error>(())
/// ```
#[repr(C, align(128))]
pub struct TableMemory<const N: usize> {
    words: [AtomicU64; N],
}

impl<const N: usize> TableMemory<N> {
    /// Zeroed memory.
    #[cfg(not(loom))]
    pub const fn new() -> TableMemory<N> {
        TableMemory {
            words: [const { AtomicU64::new(0) }; N],
        }
    }

    /// Zeroed memory.
    #[cfg(loom)]
    pub fn new() -> TableMemory<N> {
        TableMemory {
            words: core::array::from_fn(|_| AtomicU64::new(0)),
        }
    }

    /// The words, for [`Table::init`](super::Table::init) and
    /// [`Table::attach`](super::Table::attach).
    pub const fn words(&self) -> &[AtomicU64; N] {
        &self.words
    }
}

impl<const N: usize> Default for TableMemory<N> {
    fn default() -> Self {
        TableMemory::new()
    }
}

impl<const N: usize> fmt::Debug for TableMemory<N> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TableMemory").field("words", &N).finish()
    }
}

/// Which kind of table a memory block holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum TableKind {
    /// Leaky buckets, tiers of [`Quota`](crate::Quota).
    Buckets = 1,
    /// Fixed windows, tiers of [`WindowQuota`](crate::WindowQuota).
    Windows = 2,
}

/// The parameters recorded in a table's header: what a shared-memory layer compares before it
/// lets a process use a table another one initialised. Two tables with equal headers were
/// initialised with the same capacity, tiers, seed, policy and epoch (the checksum covers the
/// tiers and the seed).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct TableHeader {
    /// [`LAYOUT_VERSION`] of the library that initialised it.
    pub layout_version: u64,
    /// The table's size in 64-bit words ([`words`]).
    pub words: usize,
    /// Buckets or windows.
    pub kind: TableKind,
    /// Slots (a multiple of 5).
    pub capacity: usize,
    /// Tiers.
    pub tier_count: usize,
    /// The full-table policy.
    pub policy: FullPolicy,
    /// The epoch: the tick the table's clock starts at (see the module docs).
    pub epoch: u64,
    /// The checksum of all parameters (kind, capacity, tiers, policy, seed, epoch, size).
    pub checksum: u64,
}

impl TableHeader {
    /// The name of the first field in which `self` and `other` differ, or `None` if equal.
    pub fn first_difference(&self, other: &TableHeader) -> Option<&'static str> {
        if self.layout_version != other.layout_version {
            Some("layout version")
        } else if self.words != other.words {
            Some("size")
        } else if self.kind != other.kind {
            Some("kind")
        } else if self.capacity != other.capacity {
            Some("capacity")
        } else if self.tier_count != other.tier_count {
            Some("tier count")
        } else if self.policy != other.policy {
            Some("full-table policy")
        } else if self.epoch != other.epoch {
            Some("epoch")
        } else if self.checksum != other.checksum {
            Some("tiers or seed (checksum)")
        } else {
            None
        }
    }
}

/// Why [`Table::attach`](super::Table::attach) refused a block of memory. Nothing was written.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum AttachError {
    /// The first word is not [`MAGIC`]: not an initialised table.
    Magic,
    /// Initialised by a library with another layout.
    LayoutVersion {
        /// The version found.
        found: u64,
    },
    /// A table of the other kind (buckets versus windows); `found` is the recorded kind word.
    Kind {
        /// The kind word found.
        found: u64,
    },
    /// The header records a size other than the memory's (or one that does not fit it).
    Size {
        /// The size recorded, in words.
        recorded: u64,
        /// The memory's size, in words.
        memory: usize,
    },
    /// A recorded parameter is out of range or inconsistent with the size; names which.
    Parameter(&'static str),
    /// A recorded tier is not a quota the library would build; `error` is why.
    Tier {
        /// The tier's index.
        index: usize,
        /// What its constructor says.
        error: Error,
    },
    /// The checksum does not match the parameters: the header was changed or damaged.
    Checksum {
        /// The checksum recorded.
        recorded: u64,
        /// The checksum of the parameters found.
        computed: u64,
    },
}

impl fmt::Display for AttachError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AttachError::Magic => f.write_str("not an initialised key table (magic)"),
            AttachError::LayoutVersion { found } => write!(
                f,
                "key table layout version {found}, this library reads {LAYOUT_VERSION}"
            ),
            AttachError::Kind { found } => write!(f, "key table of another kind ({found})"),
            AttachError::Size { recorded, memory } => write!(
                f,
                "key table of {recorded} words recorded, memory of {memory} words"
            ),
            AttachError::Parameter(name) => write!(f, "key table parameter out of range: {name}"),
            AttachError::Tier { index, error } => write!(f, "key table tier {index}: {error}"),
            AttachError::Checksum { recorded, computed } => write!(
                f,
                "key table checksum {recorded:#x} does not match its parameters ({computed:#x})"
            ),
        }
    }
}

#[cfg(feature = "std")]
impl std::error::Error for AttachError {}

/// The bits a member word keeps for the bucket state with `tiers` tiers: 63 minus the bits of
/// the largest tier index.
pub(super) const fn state_bits(tiers: usize) -> u32 {
    let tier_bits = if tiers <= 1 {
        0
    } else {
        usize::BITS - (tiers - 1).leading_zeros()
    };
    63 - tier_bits
}

/// A 64-bit mix (the SplitMix64 finaliser).
const fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// The checksum of a sequence of parameter words.
pub(super) fn checksum_of(words: impl Iterator<Item = u64>) -> u64 {
    let mut h: u64 = 0x7467_2e63_6865_636b;
    for (i, w) in words.enumerate() {
        h = mix(h ^ w).wrapping_add(i as u64);
    }
    h
}

/// The checksum of the parameter words in `mem` (header words 1..12, then the tiers).
pub(super) fn checksum(mem: &[AtomicU64], tiers: usize) -> u64 {
    let params = (H_VERSION..H_CHECKSUM).chain(TIERS_AT..TIERS_AT + tiers * TIER_WORDS);
    checksum_of(params.map(|i| mem.get(i).map_or(0, |w| w.load(Ordering::Relaxed))))
}

/// Writes a table into `mem` (which must be exclusively the caller's during the call).
/// `tier(i)` gives tier `i` for `i < tier_count` (`None`: an invalid argument); it is called
/// twice per tier, so no array of tiers is needed (firmware stacks are small).
pub(super) fn write<Q: TableQuota>(
    mem: &[AtomicU64],
    tier_count: usize,
    tier: impl Fn(usize) -> Option<Q>,
    seed: &Seed,
    policy: FullPolicy,
    epoch: u64,
) -> Result<(), Error> {
    if tier_count == 0 || tier_count > MAX_TIERS {
        return Err(Error::InvalidArgument);
    }
    let capacity = capacity_in(mem.len(), tier_count);
    if capacity == 0 {
        return Err(Error::CapacityExceeded);
    }
    let bits = state_bits(tier_count);
    // Every tier is checked before the first word is written.
    for i in 0..tier_count {
        tier(i).ok_or(Error::InvalidArgument)?.encode(bits)?;
    }
    let used = groups_at(tier_count) + capacity / GROUP_SLOTS * GROUP_WORDS;
    mem[H_MAGIC].store(0, Ordering::Release);
    for w in &mem[1..used] {
        w.store(0, Ordering::Relaxed);
    }
    for i in 0..tier_count {
        // Checked above.
        let words = tier(i).ok_or(Error::InvalidArgument)?.encode(bits)?;
        for (j, w) in words.iter().enumerate() {
            mem[TIERS_AT + i * TIER_WORDS + j].store(*w, Ordering::Relaxed);
        }
    }
    let [s0, s1] = seed.halves();
    let [h0, h1] = hash::secrets(seed);
    let params = [
        (H_VERSION, LAYOUT_VERSION),
        (H_WORDS, used as u64),
        (H_KIND, Q::KIND as u64),
        (H_CAPACITY, capacity as u64),
        (H_TIERS, tier_count as u64),
        (H_POLICY, policy as u64),
        (H_SEED0, s0),
        (H_SEED1, s1),
        (H_EPOCH, epoch),
        (H_HASH0, h0),
        (H_HASH1, h1),
    ];
    for (i, v) in params {
        mem[i].store(v, Ordering::Relaxed);
    }
    // Claim versions start at 1, so a control word is never all zero unless empty.
    mem[H_CLAIMS].store(1, Ordering::Relaxed);
    let sum = checksum(mem, tier_count);
    mem[H_CHECKSUM].store(sum, Ordering::Relaxed);
    // Published last: whoever reads the magic with acquire sees everything above.
    mem[H_MAGIC].store(MAGIC, Ordering::Release);
    Ok(())
}

/// Reads the header cheaply (magic, version, kind, size, ranges): what every view checks.
pub(super) fn read_header<Q: TableQuota>(mem: &[AtomicU64]) -> Result<TableHeader, AttachError> {
    if mem.len() < HEADER_WORDS {
        return Err(AttachError::Size {
            recorded: 0,
            memory: mem.len(),
        });
    }
    if mem[H_MAGIC].load(Ordering::Acquire) != MAGIC {
        return Err(AttachError::Magic);
    }
    let word = |i: usize| mem[i].load(Ordering::Relaxed);
    let version = word(H_VERSION);
    if version != LAYOUT_VERSION {
        return Err(AttachError::LayoutVersion { found: version });
    }
    let kind = word(H_KIND);
    if kind != Q::KIND as u64 {
        return Err(AttachError::Kind { found: kind });
    }
    let recorded = word(H_WORDS);
    let size = usize::try_from(recorded)
        .ok()
        .filter(|&w| w <= mem.len())
        .ok_or(AttachError::Size {
            recorded,
            memory: mem.len(),
        })?;
    let tier_count = usize::try_from(word(H_TIERS))
        .ok()
        .filter(|&t| (1..=MAX_TIERS).contains(&t))
        .ok_or(AttachError::Parameter("tier count"))?;
    let capacity = usize::try_from(word(H_CAPACITY))
        .ok()
        .filter(|&c| c > 0 && c % GROUP_SLOTS == 0)
        .ok_or(AttachError::Parameter("capacity"))?;
    if groups_at(tier_count).checked_add(capacity / GROUP_SLOTS * GROUP_WORDS) != Some(size) {
        return Err(AttachError::Parameter("capacity"));
    }
    let policy = match word(H_POLICY) {
        0 => FullPolicy::FailClosed,
        1 => FullPolicy::FailOpen,
        _ => return Err(AttachError::Parameter("full-table policy")),
    };
    let kind = if Q::KIND == TableKind::Buckets {
        TableKind::Buckets
    } else {
        TableKind::Windows
    };
    Ok(TableHeader {
        layout_version: version,
        words: size,
        kind,
        capacity,
        tier_count,
        policy,
        epoch: word(H_EPOCH),
        checksum: word(H_CHECKSUM),
    })
}

/// The full check of [`Table::attach`](super::Table::attach): the header, every tier, the
/// checksum.
pub(super) fn check<Q: TableQuota>(mem: &[AtomicU64]) -> Result<TableHeader, AttachError> {
    let header = read_header::<Q>(mem)?;
    let bits = state_bits(header.tier_count);
    for index in 0..header.tier_count {
        let mut words = [0u64; TIER_WORDS];
        for (j, w) in words.iter_mut().enumerate() {
            *w = mem[TIERS_AT + index * TIER_WORDS + j].load(Ordering::Relaxed);
        }
        Q::check(&words, bits).map_err(|error| AttachError::Tier { index, error })?;
    }
    let computed = checksum(mem, header.tier_count);
    if computed != header.checksum {
        return Err(AttachError::Checksum {
            recorded: header.checksum,
            computed,
        });
    }
    Ok(header)
}
