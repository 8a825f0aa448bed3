//! The library's version at run time. The header's `TG_VERSION_*` macros give it at compile
//! time; a test ties both to Cargo.toml.

use crate::boundary::guard_value;

const fn parse(digits: &str) -> u32 {
    let bytes = digits.as_bytes();
    let mut value = 0;
    let mut i = 0;
    while i < bytes.len() {
        value = value * 10 + (bytes[i] - b'0') as u32;
        i += 1;
    }
    value
}

pub(crate) const MAJOR: u32 = parse(env!("CARGO_PKG_VERSION_MAJOR"));
pub(crate) const MINOR: u32 = parse(env!("CARGO_PKG_VERSION_MINOR"));
pub(crate) const PATCH: u32 = parse(env!("CARGO_PKG_VERSION_PATCH"));
pub(crate) const NUMBER: u32 = MAJOR * 10_000 + MINOR * 100 + PATCH;
const STRING: &str = concat!(env!("CARGO_PKG_VERSION"), "\0");

/// The library's version as MAJOR × 10000 + MINOR × 100 + PATCH, the same formula as
/// `TG_VERSION_NUMBER`: compare the two to detect a header that does not match the library.
#[unsafe(no_mangle)]
pub extern "C" fn tg_version_number() -> u32 {
    guard_value(NUMBER, || NUMBER)
}

/// The library's version as a static NUL-terminated string, `"MAJOR.MINOR.PATCH"`, equal to
/// `TG_VERSION_STRING` for a matching header. Never NULL; never free it.
#[unsafe(no_mangle)]
pub extern "C" fn tg_version_string() -> *const core::ffi::c_char {
    guard_value(STRING.as_ptr().cast(), || STRING.as_ptr().cast())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The value of `#define NAME value` in the checked-in header.
    fn define(header: &str, name: &str) -> String {
        let prefix = format!("#define {name} ");
        let line = header
            .lines()
            .find(|l| l.starts_with(&prefix))
            .unwrap_or_else(|| panic!("{name} is not defined in include/tollgate.h"));
        line[prefix.len()..].trim().to_string()
    }

    #[test]
    fn header_macros_and_runtime_version_match_cargo_toml() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../include/tollgate.h");
        let header = std::fs::read_to_string(path).expect("include/tollgate.h");
        let num = |name| define(&header, name).parse::<u32>().expect(name);
        let (major, minor, patch_part) = (
            num("TG_VERSION_MAJOR"),
            num("TG_VERSION_MINOR"),
            num("TG_VERSION_PATCH"),
        );
        let cargo: Vec<u32> = env!("CARGO_PKG_VERSION")
            .split('.')
            .map(|p| p.parse().unwrap())
            .collect();
        assert_eq!(vec![major, minor, patch_part], cargo);
        // The number, not just its parts (PATCH included).
        let expected = cargo[0] * 10_000 + cargo[1] * 100 + cargo[2];
        assert_eq!(tg_version_number(), expected);
        let number = define(&header, "TG_VERSION_NUMBER");
        // The macro is an expression of the parts; evaluate it the way the C test does not need.
        assert!(
            number == expected.to_string()
                || number
                    == "(TG_VERSION_MAJOR * 10000 + TG_VERSION_MINOR * 100 + TG_VERSION_PATCH)",
            "TG_VERSION_NUMBER is {number}"
        );
        assert_eq!(
            define(&header, "TG_VERSION_STRING"),
            format!("\"{}\"", env!("CARGO_PKG_VERSION"))
        );
        // SAFETY: a static NUL-terminated string.
        let s = unsafe { core::ffi::CStr::from_ptr(tg_version_string()) };
        assert_eq!(s.to_str().unwrap(), env!("CARGO_PKG_VERSION"));
    }
}
