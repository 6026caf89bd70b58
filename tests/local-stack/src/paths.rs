//! Where the repository and the compiled function binaries are.

use std::path::{Path, PathBuf};

/// The workspace root: this crate lives in `<root>/tests/local-stack`.
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .nth(2)
        .expect("crate sits two levels below the workspace root")
        .to_path_buf()
}

/// Directory holding the function binaries.
///
/// `PASSCODE_BIN_DIR` wins outright. Otherwise the first of these that holds a
/// `reset-passcode` binary: the profile directory of the running executable
/// (so a test or quick start built with `--release` or into another target
/// directory finds its siblings), `$CARGO_TARGET_DIR/debug`, and
/// `<workspace root>/target/debug`. When none does, the `debug` directory of
/// the target directory cargo would use, so spawning names a sensible path.
pub fn bin_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("PASSCODE_BIN_DIR") {
        return PathBuf::from(dir);
    }
    let root = workspace_root();
    let mut candidates = Vec::new();
    if let Some(dir) = running_profile_dir() {
        candidates.push(dir);
    }
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(|dir| root.join(dir))
        .unwrap_or_else(|| root.join("target"));
    let fallback = target.join("debug");
    candidates.push(fallback.clone());
    candidates.push(root.join("target").join("debug"));
    candidates
        .into_iter()
        .find(|dir| dir.join("reset-passcode").is_file())
        .unwrap_or(fallback)
}

/// `target/<profile>` of the running executable: its own directory, or the
/// parent of `deps/` for test binaries.
fn running_profile_dir() -> Option<PathBuf> {
    let exe = std::env::current_exe().ok()?;
    let dir = exe.parent()?;
    if dir.file_name().is_some_and(|name| name == "deps") {
        dir.parent().map(Path::to_path_buf)
    } else {
        Some(dir.to_path_buf())
    }
}
