//! Sizes of the release `bootstrap` files, per architecture.
//!
//! `cargo lambda build --release [--arm64|--x86-64]` leaves the binary in
//! `<target>/<triple>/release/<fn>` and copies it to
//! `<target>/lambda/<fn>/bootstrap` (both architectures share that path, so
//! the ELF header says which one is there). Without cargo-lambda output for
//! x86_64, the host release binary (same profile) stands in.

use std::path::{Path, PathBuf};
use std::time::SystemTime;

use serde::Serialize;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Arch {
    Arm64,
    X86_64,
}

impl Arch {
    fn triple(self) -> &'static str {
        match self {
            Arch::Arm64 => "aarch64-unknown-linux-gnu",
            Arch::X86_64 => "x86_64-unknown-linux-gnu",
        }
    }

    /// ELF `e_machine`.
    fn machine(self) -> u16 {
        match self {
            Arch::Arm64 => 0xB7,
            Arch::X86_64 => 0x3E,
        }
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct Size {
    pub bytes: u64,
    pub path: PathBuf,
    /// `cargo-lambda` or `host release build`.
    pub source: &'static str,
    /// Older than the host release binary being benchmarked: built from
    /// older sources, perhaps.
    pub older_than_benchmarked_binary: bool,
}

/// The `bootstrap` of `function` for `arch`, looked for in `target_dirs`;
/// `host_binary` stands in for x86_64 on an x86_64 host.
pub fn bootstrap_size(
    function: &str,
    arch: Arch,
    target_dirs: &[PathBuf],
    host_binary: &Path,
) -> Option<Size> {
    let reference = modified(host_binary);
    let found = |path: PathBuf, source: &'static str| {
        let bytes = std::fs::metadata(&path).ok()?.len();
        let older = match (modified(&path), reference) {
            (Some(built), Some(reference)) => built < reference,
            _ => false,
        };
        Some(Size {
            bytes,
            path,
            source,
            older_than_benchmarked_binary: older,
        })
    };
    for dir in target_dirs {
        let bootstrap = dir.join("lambda").join(function).join("bootstrap");
        if elf_machine(&bootstrap) == Some(arch.machine()) {
            return found(bootstrap, "cargo-lambda");
        }
        let built = dir.join(arch.triple()).join("release").join(function);
        if elf_machine(&built) == Some(arch.machine()) {
            return found(built, "cargo-lambda");
        }
    }
    if elf_machine(host_binary) == Some(arch.machine()) {
        return found(host_binary.to_path_buf(), "host release build");
    }
    None
}

fn modified(path: &Path) -> Option<SystemTime> {
    std::fs::metadata(path).ok()?.modified().ok()
}

fn elf_machine(path: &Path) -> Option<u16> {
    use std::io::Read as _;
    let mut header = [0u8; 20];
    std::fs::File::open(path)
        .ok()?
        .read_exact(&mut header)
        .ok()?;
    // Little-endian ELF only (both Lambda architectures are).
    if &header[..4] != b"\x7fELF" || header[5] != 1 {
        return None;
    }
    Some(u16::from_le_bytes([header[18], header[19]]))
}
