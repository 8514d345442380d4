//! File-system helpers shared by every writer in the crate.

use anyhow::{Context, Result};
use std::io::Write;
use std::path::{Component, Path, PathBuf};

/// Writes `bytes` to `path` so that readers see either the old file or the
/// complete new one: a temp file in the same directory, synced, then renamed.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let mut tmp = output_temp_file(path)?;
    tmp.write_all(bytes).and_then(|_| tmp.as_file().sync_all()).with_context(|| format!("{}: write failed", path.display()))?;
    crate::faults::at("write");
    tmp.persist(path).with_context(|| format!("{}: cannot move the finished file into place", path.display()))?;
    Ok(())
}

/// Reads the JSON file at `path` into `T`: a missing file, bad JSON or a
/// missing or mistyped field is an error naming the file (and the field).
pub fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T> {
    let text = std::fs::read_to_string(path).with_context(|| format!("{}: cannot read", path.display()))?;
    let mut reader = serde_json::Deserializer::from_str(&text);
    // The error names the field ("f1_macro: invalid type ..."), not just a column.
    serde_path_to_error::deserialize(&mut reader).map_err(|e| {
        let at = e.path().to_string();
        let field = if at == "." { String::new() } else { format!("`{at}`: ") };
        anyhow::anyhow!("{}: not the expected JSON: {field}{}", path.display(), e.inner())
    })
}

/// Writes `value` as pretty JSON, atomically, through a JSON value: its
/// keys sorted, as every run file of cmkm has them (so a typed writer gives
/// the bytes the untyped one gave).
pub fn write_json(path: &Path, value: &impl serde::Serialize) -> Result<()> {
    let json = serde_json::to_value(value).with_context(|| format!("{}: cannot be written as JSON", path.display()))?;
    write_atomic(path, serde_json::to_string_pretty(&json)?.as_bytes())
}

/// The name prefix of the temporary files [`write_atomic`] renames into
/// place: one found later was left by a killed process.
pub const PARTIAL_PREFIX: &str = ".cmkm-partial-";

/// Removes what killed writers left in `dir`: the files and folders whose
/// names start with `prefix` ([`PARTIAL_PREFIX`] for [`write_atomic`]'s
/// files), for a writer that owns the folder (`cmkm report` its report
/// folder, `cmkm store unpack` the store's unpack folders). Returns how
/// many were removed.
pub fn remove_leftovers(dir: &Path, prefix: &str) -> Result<usize> {
    let Ok(entries) = std::fs::read_dir(dir) else { return Ok(0) }; // no folder yet: nothing left in it
    let mut removed = 0;
    for entry in entries {
        let path = entry.with_context(|| format!("{}: cannot list", dir.display()))?.path();
        if !path.file_name().is_some_and(|n| n.to_string_lossy().starts_with(prefix)) {
            continue;
        }
        let gone = if path.is_dir() { std::fs::remove_dir_all(&path) } else { std::fs::remove_file(&path) };
        gone.with_context(|| format!("{}: cannot remove what a killed writer left", path.display()))?;
        removed += 1;
    }
    Ok(removed)
}

/// A temporary file for the output `path`, in its folder (created if
/// missing) so that it can be moved into place once complete, with the
/// permissions a file created directly would get (0644 less the umask on
/// Unix; tempfile's own 0600 would hide reports and run records from the
/// rest of a group sharing a results folder).
pub fn output_temp_file(path: &Path) -> Result<tempfile::NamedTempFile> {
    let dir = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).with_context(|| format!("{}: cannot create directory", dir.display()))?;
    let mut builder = tempfile::Builder::new();
    builder.prefix(PARTIAL_PREFIX);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        builder.permissions(std::fs::Permissions::from_mode(0o644));
    }
    builder.tempfile_in(dir).with_context(|| format!("{}: cannot create a temporary file", dir.display()))
}

/// Creates `dir` if needed and checks that a file can be written in it, so
/// that a read-only or mistyped output folder is reported before any work
/// is done rather than after an hour of training.
pub fn ensure_writable_dir(dir: &Path) -> Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("{}: cannot create the output folder", dir.display()))?;
    let probe = tempfile::Builder::new().prefix(".write-probe").tempfile_in(dir);
    probe.with_context(|| format!("{}: the output folder is not writable", dir.display()))?;
    Ok(())
}

/// Removes `.` and `name/..` pairs without touching the file system, so
/// paths built from declaration folders read cleanly in messages.
pub fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir if matches!(out.components().next_back(), Some(Component::Normal(_))) => {
                out.pop();
            }
            other => out.push(other),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn normalize_drops_dot_and_parent_pairs() {
        let n = super::normalize(std::path::Path::new("experiments/datasets/../../results/./data"));
        assert_eq!(n, std::path::Path::new("results/data"));
        assert_eq!(super::normalize(std::path::Path::new("../a/../b")), std::path::Path::new("../b"));
    }

    #[cfg(unix)]
    #[test]
    fn files_written_atomically_get_the_permissions_of_a_file_created_directly() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        std::fs::File::create(dir.path().join("direct")).unwrap();
        super::write_atomic(&dir.path().join("atomic"), b"x").unwrap();
        assert_eq!(mode(&dir.path().join("atomic")), mode(&dir.path().join("direct")));
    }
}
