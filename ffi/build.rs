//! Gives the shared library its SONAME on ELF platforms: `libtollgate.so.MAJOR` from 1.0 on, and
//! `libtollgate.so.0.MINOR` before 1.0, where a minor release may change the C ABI (the
//! versioning policy is in CHANGELOG.md). `scripts/install.sh` installs the usual symlink chain
//! (`libtollgate.so` → SONAME → the full version) next to it.

fn main() {
    let os = std::env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    let elf = matches!(
        os.as_str(),
        "linux" | "android" | "freebsd" | "netbsd" | "openbsd" | "dragonfly" | "illumos"
    );
    if elf {
        let major = std::env::var("CARGO_PKG_VERSION_MAJOR").unwrap_or_default();
        let minor = std::env::var("CARGO_PKG_VERSION_MINOR").unwrap_or_default();
        let abi = if major == "0" {
            format!("0.{minor}")
        } else {
            major
        };
        println!("cargo:rustc-cdylib-link-arg=-Wl,-soname,libtollgate.so.{abi}");
    }
    println!("cargo:rerun-if-changed=build.rs");
}
