//! Request paths and queries as the gateway judges them: one spelling per resource, so that a
//! caller cannot mint new keys (or reach another route) by spelling a path differently.
//!
//! [`normalize`] turns a request path into its one normal form, or refuses it (HTTP 400):
//! - percent escapes of unreserved characters (`A–Z a–z 0–9 - . _ ~`) are decoded
//!   (`/a/%73` is `/a/s`); other escapes are kept with upper-case hex (`%c3%a9` is `%C3%A9`);
//! - repeated slashes are one (`/a//b` is `/a/b`);
//! - dot segments are resolved (`/a/./b/../c` is `/a/c`, `%2e%2e` included);
//! - refused: an escaped `/`, `\` or `%`, an escaped control character, a malformed escape, a
//!   `..` above the root, a raw `\`, `;` (path parameters, which some servers strip and others
//!   keep) or any character outside RFC 3986's path characters, a path not starting with `/`.
//!
//! A trailing slash is kept in the forwarded path; key parts taken from the path ignore it
//! ([`trimmed`]).

use std::fmt;

/// Why a path was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PathError {
    /// Not starting with `/`.
    NotAbsolute,
    /// A `%` not followed by two hex digits.
    BadEscape,
    /// An escaped `/`, `\`, `%` or control character.
    ForbiddenEscape,
    /// A character outside RFC 3986's path characters, a `\` or a `;`.
    ForbiddenCharacter,
    /// A `..` above the root.
    AboveRoot,
}

impl fmt::Display for PathError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            PathError::NotAbsolute => "the path must start with /",
            PathError::BadEscape => "a % must be followed by two hex digits",
            PathError::ForbiddenEscape => "escaped /, \\, % or control characters are refused",
            PathError::ForbiddenCharacter => {
                "path parameters (;), \\ and non-URL characters are refused"
            }
            PathError::AboveRoot => "the path climbs above the root (..)",
        })
    }
}

impl std::error::Error for PathError {}

fn unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~')
}

/// Raw bytes allowed in a path segment (RFC 3986 `pchar` without `;`, and without `%`, which
/// is handled as an escape).
fn raw_ok(b: u8) -> bool {
    unreserved(b)
        || matches!(
            b,
            b'!' | b'$' | b'&' | b'\'' | b'(' | b')' | b'*' | b'+' | b',' | b'=' | b':' | b'@'
        )
}

fn hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// The normal form of `path` (see the module docs).
pub fn normalize(path: &str) -> Result<String, PathError> {
    let bytes = path.as_bytes();
    if bytes.first() != Some(&b'/') {
        return Err(PathError::NotAbsolute);
    }
    // Decode segment by segment.
    let mut segments: Vec<String> = Vec::new();
    let mut seg = String::new();
    let mut pos = 0;
    let finish = |seg: &mut String, segments: &mut Vec<String>| -> Result<bool, PathError> {
        let s = std::mem::take(seg);
        match s.as_str() {
            "" | "." => Ok(true),
            ".." => {
                if segments.pop().is_none() {
                    return Err(PathError::AboveRoot);
                }
                Ok(true)
            }
            _ => {
                segments.push(s);
                Ok(false)
            }
        }
    };
    while pos < bytes.len() {
        let byte = bytes[pos];
        match byte {
            b'/' => {
                finish(&mut seg, &mut segments)?;
                pos += 1;
            }
            b'%' => {
                let (Some(hi), Some(lo)) = (
                    bytes.get(pos + 1).copied().and_then(hex),
                    bytes.get(pos + 2).copied().and_then(hex),
                ) else {
                    return Err(PathError::BadEscape);
                };
                let decoded = hi * 16 + lo;
                if unreserved(decoded) {
                    seg.push(char::from(decoded));
                } else if decoded < 0x20
                    || decoded == 0x7f
                    || matches!(decoded, b'/' | b'\\' | b'%')
                {
                    return Err(PathError::ForbiddenEscape);
                } else {
                    seg.push('%');
                    seg.push(char::from(b"0123456789ABCDEF"[usize::from(hi)]));
                    seg.push(char::from(b"0123456789ABCDEF"[usize::from(lo)]));
                }
                pos += 3;
            }
            _ if raw_ok(byte) => {
                seg.push(char::from(byte));
                pos += 1;
            }
            _ => return Err(PathError::ForbiddenCharacter),
        }
    }
    // The last segment empty, `.` or `..`: the path names a directory.
    let trailing = finish(&mut seg, &mut segments)?;
    let mut out = String::with_capacity(path.len());
    for s in &segments {
        out.push('/');
        out.push_str(s);
    }
    if out.is_empty() || trailing {
        out.push('/');
    }
    Ok(out)
}

/// `path` without its trailing slash (key parts ignore it): `/a/b/` → `/a/b`; `/` stays.
pub fn trimmed(path: &str) -> &str {
    if path.len() > 1 {
        path.strip_suffix('/').unwrap_or(path)
    } else {
        path
    }
}

/// A `limit` or `page` value that is not a decimal u64.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MalformedPage;

impl fmt::Display for MalformedPage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("limit and page must be decimal u64 numbers")
    }
}

impl std::error::Error for MalformedPage {}

/// The deep-pagination rule on a query string, after decoding it as servers do (`+`, percent
/// escapes, in names and values): `Ok(true)` if `limit × page` (exact, never wrapping) exceeds
/// `max_offset`. A parameter given twice counts by its largest value. `Err` for a `limit` or
/// `page` value that is not a decimal u64 (HTTP 400).
pub fn deep_page(query: &str, max_offset: u64) -> Result<bool, MalformedPage> {
    let mut limit: Option<u64> = None;
    let mut page: Option<u64> = None;
    for (name, value) in form_urlencoded::parse(query.as_bytes()) {
        let slot = match name.as_ref() {
            "limit" => &mut limit,
            "page" => &mut page,
            _ => continue,
        };
        if value.is_empty() || value.len() > 20 || !value.bytes().all(|b| b.is_ascii_digit()) {
            return Err(MalformedPage);
        }
        let v: u64 = value.parse().map_err(|_| MalformedPage)?;
        *slot = Some(slot.map_or(v, |old| old.max(v)));
    }
    Ok(match (limit, page) {
        (Some(l), Some(p)) => {
            tollgate::pagination::check(l, p, max_offset) == tollgate::Outcome::Never
        }
        _ => false,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spellings_of_one_path_are_one_path() {
        for p in [
            "/a/b",
            "/a//b",
            "/a/./b",
            "/a/%62",
            "/a/x/../b",
            "/a/x/%2e%2e/b",
            "/a/x/%2E./b",
            "//a///b",
            "/./a/b",
            "/%61/b",
        ] {
            assert_eq!(normalize(p).as_deref(), Ok("/a/b"), "{p}");
        }
        assert_eq!(normalize("/a/b/").as_deref(), Ok("/a/b/"));
        assert_eq!(trimmed("/a/b/"), "/a/b");
        assert_eq!(normalize("/a/b/.").as_deref(), Ok("/a/b/"));
        assert_eq!(normalize("/").as_deref(), Ok("/"));
        assert_eq!(normalize("//").as_deref(), Ok("/"));
        assert_eq!(normalize("/a/..").as_deref(), Ok("/"));
        assert_eq!(normalize("/%c3%a9").as_deref(), Ok("/%C3%A9"));
        assert_eq!(
            normalize("/a:b@c!$&'()*+,=").as_deref(),
            Ok("/a:b@c!$&'()*+,=")
        );
        assert_eq!(
            normalize("/tiktok/../shopbase/x").as_deref(),
            Ok("/shopbase/x")
        );
    }

    #[test]
    fn ambiguous_paths_are_refused() {
        for (p, e) in [
            ("a/b", PathError::NotAbsolute),
            ("/a%2fb", PathError::ForbiddenEscape),
            ("/a%5cb", PathError::ForbiddenEscape),
            ("/a%25b", PathError::ForbiddenEscape),
            ("/a%00b", PathError::ForbiddenEscape),
            ("/a%zz", PathError::BadEscape),
            ("/a%2", PathError::BadEscape),
            ("/a;v=1", PathError::ForbiddenCharacter),
            ("/a\\b", PathError::ForbiddenCharacter),
            ("/a b", PathError::ForbiddenCharacter),
            ("/a\"b", PathError::ForbiddenCharacter),
            ("/..", PathError::AboveRoot),
            ("/a/../../b", PathError::AboveRoot),
            ("/%2e%2e/x", PathError::AboveRoot),
        ] {
            assert_eq!(normalize(p), Err(e), "{p}");
        }
    }

    #[test]
    fn pagination_reads_the_decoded_query() {
        assert_eq!(deep_page("limit=250&page=401", 100_000), Ok(true));
        assert_eq!(deep_page("limit=250&page=400", 100_000), Ok(false));
        assert_eq!(deep_page("li%6Dit=250&page=401", 100_000), Ok(true));
        assert_eq!(deep_page("limit=250&p%61ge=4%301", 100_000), Ok(true));
        assert_eq!(deep_page("limit=250&page=1&page=401", 100_000), Ok(true));
        assert_eq!(
            deep_page("limit=18446744073709551615&page=2", 100_000),
            Ok(true)
        );
        assert_eq!(deep_page("limit=abc&page=1", 100_000), Err(MalformedPage));
        assert_eq!(deep_page("limit=%2B5&page=1", 100_000), Err(MalformedPage));
        assert_eq!(deep_page("limit=+5&page=1", 100_000), Err(MalformedPage));
        assert_eq!(deep_page("limit=250", 100_000), Ok(false));
        assert_eq!(deep_page("", 100_000), Ok(false));
    }
}
