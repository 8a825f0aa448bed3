//! The region header, and creating / opening regions.
//!
//! Header words (little or native endian: a region is shared on one host only):
//!
//! | word | content |
//! |---|---|
//! | 0 | magic `TGSHARED` |
//! | 1 | layout version |
//! | 2 | creating library version, `major << 32 \| minor << 16 \| patch` |
//! | 3 | kind ([`Kind`]) |
//! | 4 | size of the whole region in bytes |
//! | 5 | checksum (FNV-1a) of words 0–4 and 8–31 |
//! | 6 | initialisation word: [`READY`] once the header is complete |
//! | 7 | reserved, zero |
//! | 8–31 | the kind's parameters, zero-padded |
//!
//! The limiter's state starts at byte [`HEADER_BYTES`] (a multiple of 128, so a key table's
//! memory block is aligned as it needs); every kind's initial state is all zeros, which is what
//! a new file or an anonymous mapping holds.
//!
//! Key tables (kinds 5 and 6) record their capacity, tier count, full-table policy and epoch in
//! words 8–11, a digest of their tiers in word 12 and a digest of their hash seed in word 13;
//! the table's own memory block, which follows the header, carries the tiers, the seed and its
//! own checksum (see [`SharedTable`](super::SharedTable)).

use core::fmt;
use core::fmt::Write as _;
use std::fs::{File, OpenOptions};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicU32 as StdAtomicU32;

use portable_atomic::{AtomicU128, AtomicU64, Ordering};

use super::region::Mapping;
use super::{Create, Options, RegionError};

/// The layout version this library reads and writes. A region of another version is refused.
pub const LAYOUT_VERSION: u64 = 1;

const MAGIC: u64 = u64::from_le_bytes(*b"TGSHARED");
/// The initialisation word's value once the header is complete.
pub(crate) const READY: u64 = u64::from_le_bytes(*b"TGREADY!");
/// The header's size; the state follows.
pub(crate) const HEADER_BYTES: usize = 256;
const PARAM_WORDS: usize = 24;

/// What a region holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
#[repr(u8)]
pub enum Kind {
    /// A leaky bucket ([`SharedBucket`](super::SharedBucket)).
    Bucket = 1,
    /// A fixed window ([`SharedWindow`](super::SharedWindow)).
    Window = 2,
    /// A sliding window log ([`SharedLog`](super::SharedLog)).
    Log = 3,
    /// A concurrency limit with leases ([`SharedLeases`](super::SharedLeases)).
    Leases = 4,
    /// A key table of leaky buckets ([`SharedBucketTable`](super::SharedBucketTable)).
    BucketTable = 5,
    /// A key table of fixed windows ([`SharedWindowTable`](super::SharedWindowTable)).
    WindowTable = 6,
}

impl Kind {
    fn from_word(w: u64) -> Option<Kind> {
        Some(match w {
            1 => Kind::Bucket,
            2 => Kind::Window,
            3 => Kind::Log,
            4 => Kind::Leases,
            5 => Kind::BucketTable,
            6 => Kind::WindowTable,
            _ => return None,
        })
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Kind::Bucket => "leaky bucket",
            Kind::Window => "fixed window",
            Kind::Log => "sliding log",
            Kind::Leases => "concurrency limit",
            Kind::BucketTable => "bucket table",
            Kind::WindowTable => "window table",
        })
    }
}

/// Writes a new region's initial state (into the temporary file or anonymous mapping, before
/// anyone else can see it).
pub(crate) type InitState<'a> = &'a dyn Fn(&[AtomicU64]) -> Result<(), crate::Error>;

/// What a caller asks for: a kind, its named parameters, and the size of its state.
pub(crate) struct Layout<'a> {
    pub(crate) kind: Kind,
    /// Every parameter a region this caller creates records.
    pub(crate) params: &'a [(&'static str, u64)],
    /// How many of `params` (from the first) an opened region must match: the rest are the
    /// creator's choice (a table's random seed), which an opener adopts.
    pub(crate) checked: usize,
    pub(crate) state_bytes: usize,
    /// The initial state, if not all zeros.
    pub(crate) init: Option<InitState<'a>>,
}

impl<'a> Layout<'a> {
    /// A layout whose every parameter must match and whose initial state is all zeros.
    pub(crate) const fn new(
        kind: Kind,
        params: &'a [(&'static str, u64)],
        state_bytes: usize,
    ) -> Layout<'a> {
        Layout {
            kind,
            params,
            checked: params.len(),
            state_bytes,
            init: None,
        }
    }

    fn total(&self) -> usize {
        HEADER_BYTES + self.state_bytes.next_multiple_of(16)
    }

    fn header(&self) -> [u64; 32] {
        let mut h = [0u64; 32];
        h[0] = MAGIC;
        h[1] = LAYOUT_VERSION;
        h[2] = library_version();
        h[3] = self.kind as u64;
        h[4] = self.total() as u64;
        for (i, &(_, v)) in self.params.iter().enumerate() {
            h[8 + i] = v;
        }
        h[5] = checksum(&h);
        h
    }
}

/// The version of the library that created the region in `map`.
pub(crate) fn creator_version(map: &Mapping) -> u64 {
    map.words()[2].load(Ordering::Acquire)
}

fn library_version() -> u64 {
    let part = |s: &str| s.parse::<u64>().unwrap_or(0);
    (part(env!("CARGO_PKG_VERSION_MAJOR")) << 32)
        | (part(env!("CARGO_PKG_VERSION_MINOR")) << 16)
        | part(env!("CARGO_PKG_VERSION_PATCH"))
}

/// FNV-1a over words 0–4 and 8–31 (not the checksum, the initialisation word or word 7).
fn checksum(h: &[u64; 32]) -> u64 {
    let mut x: u64 = 0xcbf2_9ce4_8422_2325;
    for (i, w) in h.iter().enumerate() {
        if (5..8).contains(&i) {
            continue;
        }
        for b in w.to_le_bytes() {
            x ^= u64::from(b);
            x = x.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
    x
}

/// A mapped, checked region: the header is complete and matches the layout asked for.
#[derive(Debug)]
pub(crate) struct Region {
    map: Mapping,
    created: bool,
}

impl Region {
    /// The state's 64-bit words (after the header).
    #[inline]
    pub(crate) fn state(&self) -> &[AtomicU64] {
        &self.map.words()[HEADER_BYTES / 8..]
    }

    /// The state's 128-bit words (after the header).
    #[inline]
    pub(crate) fn state128(&self) -> &[AtomicU128] {
        self.map.words128(HEADER_BYTES)
    }

    /// The version of the library that created the region, `major << 32 | minor << 16 | patch`.
    pub(crate) fn creator_version(&self) -> u64 {
        creator_version(&self.map)
    }

    /// The mapping, and whether this call created the region.
    pub(crate) fn into_parts(self) -> (Mapping, bool) {
        (self.map, self.created)
    }

    /// `true` if this call created the region, `false` if it opened an existing one.
    pub(crate) fn created(&self) -> bool {
        self.created
    }

    /// Creates an anonymous shared region (shared with children forked after this call).
    pub(crate) fn anonymous(layout: &Layout<'_>) -> Result<Region, RegionError> {
        check_lock_free()?;
        let map = Mapping::anonymous(layout.total())?;
        init_state(&map, layout)?;
        write_header(&map, layout);
        Ok(Region { map, created: true })
    }

    /// Creates or opens the named region at `path`.
    pub(crate) fn named(
        path: &Path,
        layout: &Layout<'_>,
        options: Options,
    ) -> Result<Region, RegionError> {
        check_lock_free()?;
        match options.create {
            Create::Existing => open_existing(path, layout, options),
            Create::New => create(path, layout, options).and_then(|r| {
                r.ok_or_else(|| {
                    RegionError::Io(std::io::Error::from(std::io::ErrorKind::AlreadyExists))
                })
            }),
            Create::IfMissing => {
                // A few rounds: the region may be removed between a failed create and the open.
                for _ in 0..8 {
                    match open_existing(path, layout, options) {
                        Err(RegionError::Io(e)) if e.kind() == std::io::ErrorKind::NotFound => {}
                        other => return other,
                    }
                    if let Some(r) = create(path, layout, options)? {
                        return Ok(r);
                    }
                }
                open_existing(path, layout, options)
            }
        }
    }
}

fn check_lock_free() -> Result<(), RegionError> {
    if AtomicU64::is_lock_free() && AtomicU128::is_lock_free() {
        Ok(())
    } else {
        Err(RegionError::NotLockFree)
    }
}

/// Runs the layout's state initialiser, if any, on the state words (after the header).
fn init_state(map: &Mapping, layout: &Layout<'_>) -> Result<(), RegionError> {
    match layout.init {
        Some(init) => init(&map.words()[HEADER_BYTES / 8..]).map_err(RegionError::Engine),
        None => Ok(()),
    }
}

fn write_header(map: &Mapping, layout: &Layout<'_>) {
    let words = map.words();
    for (w, v) in words.iter().zip(layout.header()) {
        w.store(v, Ordering::Relaxed);
    }
    // Last, and released: whoever sees READY sees the whole header.
    words[6].store(READY, Ordering::Release);
}

/// Builds the region in a temporary file beside `path` and links it into place. `None` if the
/// path exists already (another creator won); the temporary file is removed either way.
fn create(
    path: &Path,
    layout: &Layout<'_>,
    options: Options,
) -> Result<Option<Region>, RegionError> {
    static COUNTER: StdAtomicU32 = StdAtomicU32::new(0);
    let n = COUNTER.fetch_add(1, core::sync::atomic::Ordering::Relaxed);
    // `<path>.tmp.<pid>.<n>`, built on the stack (no heap allocation for paths that fit).
    let mut buf = [0u8; 512];
    let mut w = Cursor {
        buf: &mut buf,
        len: 0,
    };
    w.push(path.as_os_str().as_bytes());
    let _ = write!(w, ".tmp.{}.{n}", std::process::id());
    let tmp: PathBuf;
    let tmp_path: &Path = if w.len < w.buf.len() {
        Path::new(std::ffi::OsStr::from_bytes(&w.buf[..w.len]))
    } else {
        let mut name = path.as_os_str().to_os_string();
        name.push(std::format!(".tmp.{}.{n}", std::process::id()));
        tmp = PathBuf::from(name);
        &tmp
    };
    let tmp = tmp_path;
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create_new(true)
        .mode(options.mode)
        .custom_flags(rustix::fs::OFlags::NOFOLLOW.bits().cast_signed())
        .open(tmp)?;
    let built = (|| {
        // The mode exactly as asked: `open` applied the umask.
        file.set_permissions(std::fs::Permissions::from_mode(options.mode))?;
        file.set_len(layout.total() as u64)?;
        let map = Mapping::file(&file, layout.total())?;
        init_state(&map, layout)?;
        write_header(&map, layout);
        match std::fs::hard_link(tmp, path) {
            Ok(()) => Ok(Some(Region { map, created: true })),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(None),
            Err(e) => Err(RegionError::Io(e)),
        }
    })();
    let _ = std::fs::remove_file(tmp);
    built
}

/// A byte buffer that records overflow by filling up completely.
struct Cursor<'a> {
    buf: &'a mut [u8; 512],
    len: usize,
}

impl Cursor<'_> {
    fn push(&mut self, bytes: &[u8]) {
        for &b in bytes {
            if self.len == self.buf.len() {
                return;
            }
            self.buf[self.len] = b;
            self.len += 1;
        }
    }
}

impl core::fmt::Write for Cursor<'_> {
    fn write_str(&mut self, s: &str) -> core::fmt::Result {
        self.push(s.as_bytes());
        Ok(())
    }
}

fn open_existing(
    path: &Path,
    layout: &Layout<'_>,
    options: Options,
) -> Result<Region, RegionError> {
    let file = File::options()
        .read(true)
        .write(true)
        .custom_flags(rustix::fs::OFlags::NOFOLLOW.bits().cast_signed())
        .open(path)
        .map_err(|e| {
            // O_NOFOLLOW on a symbolic link: ELOOP.
            if e.raw_os_error() == Some(rustix::io::Errno::LOOP.raw_os_error()) {
                RegionError::NotAFile
            } else {
                RegionError::Io(e)
            }
        })?;
    let meta = file.metadata()?;
    if !meta.is_file() {
        return Err(RegionError::NotAFile);
    }
    let me = rustix::process::geteuid().as_raw();
    if meta.uid() != me {
        return Err(RegionError::Owner {
            found: meta.uid(),
            expected: me,
        });
    }
    let mode = meta.mode() & 0o777;
    if mode & !options.mode != 0 {
        return Err(RegionError::Permissions {
            found: mode,
            allowed: options.mode,
        });
    }
    let size = meta.len();
    if size < HEADER_BYTES as u64 {
        return Err(RegionError::Truncated { size });
    }
    // Map the header alone first: the rest is mapped only once its size is known to be right.
    let head = Mapping::file(&file, HEADER_BYTES)?;
    check_header(&head, layout, size)?;
    drop(head);
    let map = Mapping::file(&file, layout.total())?;
    check_header(&map, layout, size)?;
    Ok(Region {
        map,
        created: false,
    })
}

fn check_header(map: &Mapping, layout: &Layout<'_>, file_size: u64) -> Result<(), RegionError> {
    let words = map.words();
    let ready = words[6].load(Ordering::Acquire);
    let mut h = [0u64; 32];
    for (v, w) in h.iter_mut().zip(words) {
        *v = w.load(Ordering::Relaxed);
    }
    if h[0] != MAGIC {
        return Err(RegionError::NotARegion);
    }
    if h[1] != LAYOUT_VERSION {
        return Err(RegionError::LayoutVersion {
            found: h[1],
            expected: LAYOUT_VERSION,
        });
    }
    if ready != READY {
        return Err(RegionError::NotInitialised);
    }
    if h[5] != checksum(&h) {
        return Err(RegionError::Corrupt);
    }
    if h[3] != layout.kind as u64 {
        return Err(RegionError::Kind {
            found: Kind::from_word(h[3]),
            expected: layout.kind,
        });
    }
    for (i, &(field, expected)) in layout.params[..layout.checked].iter().enumerate() {
        let found = h[8 + i];
        if found != expected {
            return Err(RegionError::Mismatch {
                field,
                found,
                expected,
            });
        }
    }
    let expected = layout.total() as u64;
    if h[4] != expected {
        return Err(RegionError::Size {
            found: h[4],
            expected,
        });
    }
    if file_size != expected {
        return Err(RegionError::Size {
            found: file_size,
            expected,
        });
    }
    debug_assert!(layout.params.len() <= PARAM_WORDS);
    Ok(())
}
