//! Why a region could not be created or opened.

use core::fmt;

use super::Kind;

/// Why a shared region could not be created or opened. Each variant names the difference
/// between what was asked for and what was found; nothing was mapped when one is returned.
#[derive(Debug)]
#[non_exhaustive]
pub enum RegionError {
    /// A system call failed (`open`, `link`, `mmap`, ...): the path does not exist
    /// ([`Create::Existing`](super::Create::Existing)), already exists
    /// ([`Create::New`](super::Create::New)), is not accessible, or memory ran out.
    Io(std::io::Error),
    /// The parameters are invalid before any region is involved (a zero quota, a capacity too
    /// large).
    Engine(crate::Error),
    /// This platform's 64- or 128-bit atomics are not lock-free, so they cannot be shared
    /// between processes.
    NotLockFree,
    /// The path is not a regular file (a directory, a device, a symbolic link).
    NotAFile,
    /// The file is shorter than a region's header: truncated, or not a region.
    Truncated {
        /// The file's size in bytes.
        size: u64,
    },
    /// The file does not start with a region's magic number: it is not a tollgate region.
    NotARegion,
    /// The region was written with another layout version.
    LayoutVersion {
        /// The region's layout version.
        found: u64,
        /// This library's.
        expected: u64,
    },
    /// The region holds another kind of limiter.
    Kind {
        /// The kind in the region (`None`: a kind this library does not know).
        found: Option<Kind>,
        /// The kind asked for.
        expected: Kind,
    },
    /// The header's initialisation word is not set: the file was not built by this library.
    NotInitialised,
    /// The header's checksum does not match: the header was overwritten.
    Corrupt,
    /// A key table region's table block fails the checks of
    /// [`Table::attach`](crate::table::Table::attach), or differs from what the region's
    /// header records: the block was overwritten.
    Table(crate::table::AttachError),
    /// The region holds the same kind of limiter with another parameter.
    Mismatch {
        /// The parameter's name (`burst`, `count`, `period`, `limit`, `window`, ...).
        field: &'static str,
        /// Its value in the region.
        found: u64,
        /// The value asked for.
        expected: u64,
    },
    /// The region's size differs from the size its parameters need.
    Size {
        /// The file's (or the header's) size in bytes.
        found: u64,
        /// The size the parameters need.
        expected: u64,
    },
    /// The file belongs to another user.
    Owner {
        /// The file's owner.
        found: u32,
        /// The effective user id of this process.
        expected: u32,
    },
    /// The file grants permissions beyond the mode asked for.
    Permissions {
        /// The file's permission bits.
        found: u32,
        /// The most that was allowed ([`Options::mode`](super::Options::mode)).
        allowed: u32,
    },
}

impl fmt::Display for RegionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RegionError::Io(e) => write!(f, "shared region: {e}"),
            RegionError::Engine(e) => write!(f, "shared region: {e}"),
            RegionError::NotLockFree => {
                f.write_str("shared region: this platform's atomics are not lock-free")
            }
            RegionError::NotAFile => f.write_str("shared region: the path is not a regular file"),
            RegionError::Truncated { size } => write!(
                f,
                "shared region: the file has {size} bytes, less than a region's header"
            ),
            RegionError::NotARegion => {
                f.write_str("shared region: the file is not a tollgate region (no magic number)")
            }
            RegionError::LayoutVersion { found, expected } => write!(
                f,
                "shared region: layout version {found}, this library reads {expected}"
            ),
            RegionError::Kind { found, expected } => match found {
                Some(k) => write!(f, "shared region: holds a {k}, not a {expected}"),
                None => write!(f, "shared region: holds an unknown kind, not a {expected}"),
            },
            RegionError::NotInitialised => f.write_str("shared region: header not initialised"),
            RegionError::Corrupt => f.write_str("shared region: header checksum mismatch"),
            RegionError::Table(e) => write!(f, "shared region: {e}"),
            RegionError::Mismatch {
                field,
                found,
                expected,
            } => write!(
                f,
                "shared region: {field} is {found} in the region, {expected} was asked for"
            ),
            RegionError::Size { found, expected } => write!(
                f,
                "shared region: {found} bytes, the parameters need {expected}"
            ),
            RegionError::Owner { found, expected } => write!(
                f,
                "shared region: owned by uid {found}, this process runs as uid {expected}"
            ),
            RegionError::Permissions { found, allowed } => write!(
                f,
                "shared region: mode {found:03o} grants more than the {allowed:03o} asked for"
            ),
        }
    }
}

impl std::error::Error for RegionError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            RegionError::Io(e) => Some(e),
            RegionError::Engine(e) => Some(e),
            RegionError::Table(e) => Some(e),
            _ => None,
        }
    }
}

impl From<std::io::Error> for RegionError {
    fn from(e: std::io::Error) -> Self {
        RegionError::Io(e)
    }
}

impl From<crate::Error> for RegionError {
    fn from(e: crate::Error) -> Self {
        RegionError::Engine(e)
    }
}
