//! Run archives (`cmkm store pack`, `cmkm store unpack`): a suite's finished
//! runs in one gzip-compressed tar file, to carry a suite that outgrows one
//! sitting to the next machine, or to publish the runs behind a report so
//! that others can `cmkm report` or `cmkm compare` from them.
//!
//! An archive holds every finished run's files except checkpoints
//! (records, metrics, predictions, curves, summaries: all that `cmkm
//! report` and `cmkm compare` read). The one exception is the checkpoint of
//! a finished training that an unfinished planned run still needs, so that
//! the next sitting goes on where this one stopped instead of training
//! again. A manifest names the suite, the crate version and the runs. Run
//! ids include the crate version, so an archive resumes a suite only under
//! the version that wrote it; unpacking under another is an error.

use super::plan::PlannedRun;
use super::runner::Prepared;
use anyhow::{bail, ensure, Context, Result};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The manifest's name inside an archive (its first entry).
pub const MANIFEST: &str = "cmkm-archive.json";

/// What an archive holds.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Manifest {
    /// The suite's name (`name:` in its YAML).
    pub suite: String,
    /// The crate version that ran the runs (part of every run id).
    pub crate_version: String,
    /// Run id -> label of every run in the archive.
    pub runs: BTreeMap<String, String>,
    /// Trainings whose checkpoints are in the archive, because unfinished
    /// runs depend on them.
    pub checkpoints: Vec<String>,
    /// Trainings that unfinished runs depend on but whose checkpoints were
    /// missing from the store (e.g. it was itself unpacked without them):
    /// their dependants cannot run from this archive.
    #[serde(default)]
    pub missing_checkpoints: Vec<String>,
}

/// Packs the finished runs of `p`'s store into `out` (written to a
/// temporary file first, so a failure never leaves half an archive).
pub fn pack(p: &Prepared, out: &Path) -> Result<Manifest> {
    let done: Vec<&PlannedRun> = p.runs.iter().filter(|r| p.store.is_done(&r.id)).collect();
    if done.is_empty() {
        bail!("suite '{}': no finished run in {} to pack", p.suite.decl.name, p.store.root.display());
    }
    let needed = needed_checkpoints(p);
    let mut checkpoints = vec![];
    let mut missing = vec![];
    for id in needed {
        if checkpoint_files(&p.store.dir(&id))?.is_empty() {
            missing.push(id);
        } else {
            checkpoints.push(id);
        }
    }
    let manifest = Manifest {
        suite: p.suite.decl.name.clone(),
        crate_version: env!("CARGO_PKG_VERSION").to_string(),
        runs: done.iter().map(|r| (r.id.clone(), r.label.clone())).collect(),
        checkpoints,
        missing_checkpoints: missing,
    };
    let tmp = crate::fsutil::output_temp_file(out)?;
    let gz = flate2::write::GzEncoder::new(tmp, flate2::Compression::best());
    let mut tar = tar::Builder::new(gz);
    tar.mode(tar::HeaderMode::Deterministic);
    append_bytes(&mut tar, MANIFEST, serde_json::to_string_pretty(&manifest)?.as_bytes())?;
    for run in &done {
        let keep_checkpoints = manifest.checkpoints.contains(&run.id);
        let root = p.store.dir(&run.id);
        for file in files_under(&root)? {
            if is_checkpoint(&file) && !keep_checkpoints {
                continue;
            }
            let name = Path::new("runs").join(&run.id).join(file.strip_prefix(&root)?);
            tar.append_path_with_name(&file, &name).with_context(|| format!("{}: cannot add to the archive", file.display()))?;
        }
    }
    let tmp = tar.into_inner()?.finish().with_context(|| format!("{}: cannot write the archive", out.display()))?;
    tmp.as_file().sync_all()?;
    crate::faults::at("write");
    tmp.persist(out).with_context(|| format!("{}: cannot move the archive into place", out.display()))?;
    Ok(manifest)
}

/// Finished trainings that an unfinished planned run depends on.
fn needed_checkpoints(p: &Prepared) -> BTreeSet<String> {
    p.runs.iter().filter(|r| !p.store.is_done(&r.id)).flat_map(|r| r.depends_on.iter()).filter(|d| p.store.is_done(d)).cloned().collect()
}

fn is_checkpoint(path: &Path) -> bool {
    path.extension().is_some_and(|e| e == "safetensors")
}

/// The checkpoint files anywhere under a run folder.
fn checkpoint_files(dir: &Path) -> Result<Vec<PathBuf>> {
    Ok(files_under(dir)?.into_iter().filter(|f| is_checkpoint(f)).collect())
}

/// Every file under `dir`, in sorted order (so archives are reproducible).
fn files_under(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut out = vec![];
    let mut entries: Vec<PathBuf> =
        std::fs::read_dir(dir).with_context(|| format!("{}: cannot list", dir.display()))?.map(|e| e.map(|e| e.path())).collect::<std::io::Result<_>>()?;
    entries.sort();
    for path in entries {
        if path.is_dir() {
            out.extend(files_under(&path)?);
        } else {
            out.push(path);
        }
    }
    Ok(out)
}

fn append_bytes<W: std::io::Write>(tar: &mut tar::Builder<W>, name: &str, bytes: &[u8]) -> Result<()> {
    let mut header = tar::Header::new_gnu();
    header.set_size(bytes.len() as u64);
    header.set_mode(0o644);
    header.set_mtime(0);
    header.set_cksum();
    tar.append_data(&mut header, name, bytes)?;
    Ok(())
}

/// What [`unpack`] did.
#[derive(Debug, Clone, Default)]
pub struct Unpacked {
    /// Runs placed into the store.
    pub placed: usize,
    /// Runs the store already had (left as they were).
    pub already_done: usize,
    /// Runs of the archive that the suite's current plan does not have
    /// (its YAML changed since the archive was written): placed anyway,
    /// unused by `cmkm report`.
    pub unplanned: Vec<String>,
    /// Trainings whose checkpoints came along.
    pub checkpoints: usize,
}

/// The name prefix of an unpack's temporary folder in the store.
const UNPACK_PREFIX: &str = ".unpack-";

/// Unpacks an archive written by [`pack`] into `p`'s store. The archive
/// must be of the same suite and crate version; each run is extracted
/// whole into a temporary folder and moved into place under its lock, so
/// a failure leaves the store as it was (runs already placed stay).
pub fn unpack(p: &Prepared, archive: &Path) -> Result<Unpacked> {
    let at = |what: String| format!("{}: {what}", archive.display());
    let file = std::fs::File::open(archive).with_context(|| at("cannot open the archive".into()))?;
    crate::fsutil::ensure_writable_dir(&p.store.root)?;
    // The folders of unpacks killed before they finished (one unpack into a
    // store at a time: a second one started meanwhile would lose its folder
    // and fail, never place half a run).
    crate::fsutil::remove_leftovers(&p.store.root, UNPACK_PREFIX)?;
    let tmp = tempfile::Builder::new().prefix(UNPACK_PREFIX).tempdir_in(&p.store.root).with_context(|| at("cannot create a temporary folder".into()))?;
    let mut tar = tar::Archive::new(flate2::read::GzDecoder::new(file));
    let mut manifest: Option<Manifest> = None;
    for entry in tar.entries().with_context(|| at("not a gzip-compressed tar archive".into()))? {
        let mut entry = entry.with_context(|| at("corrupt or truncated archive".into()))?;
        let path = entry.path().with_context(|| at("an entry has an unreadable name".into()))?.into_owned();
        if path == Path::new(MANIFEST) {
            let mut text = String::new();
            std::io::Read::read_to_string(&mut entry, &mut text).with_context(|| at("cannot read the manifest".into()))?;
            let m: Manifest = serde_json::from_str(&text).with_context(|| at(format!("{MANIFEST} is not a valid manifest")))?;
            check_manifest(p, &m).with_context(|| at("cannot resume from this archive".into()))?;
            manifest = Some(m);
            continue;
        }
        let Some(m) = &manifest else { bail!(at(format!("{MANIFEST} must come first; is this a cmkm archive?"))) };
        let id = run_of(&path).filter(|id| m.runs.contains_key(*id));
        ensure!(id.is_some(), at(format!("entry {} is not under runs/<id>/ of a run the manifest lists", path.display())));
        let placed = entry.unpack_in(tmp.path()).with_context(|| at(format!("corrupt or truncated archive: cannot extract {}", path.display())))?;
        ensure!(placed, at(format!("entry {} points outside the archive's folder", path.display())));
    }
    let m = manifest.with_context(|| at(format!("no {MANIFEST}: not a cmkm archive")))?;
    let planned: BTreeSet<&str> = p.runs.iter().map(|r| r.id.as_str()).collect();
    let mut result = Unpacked { checkpoints: m.checkpoints.len(), ..Default::default() };
    for id in m.runs.keys() {
        let from = tmp.path().join("runs").join(id);
        ensure!(from.join("record.json").is_file(), at(format!("run {id} has no record.json")));
        if !planned.contains(id.as_str()) {
            result.unplanned.push(format!("{id} ({})", m.runs[id]));
        }
        match p.store.place(id, &from)? {
            true => result.placed += 1,
            false => result.already_done += 1,
        }
    }
    Ok(result)
}

fn check_manifest(p: &Prepared, m: &Manifest) -> Result<()> {
    let version = env!("CARGO_PKG_VERSION");
    ensure!(m.suite == p.suite.decl.name, "it holds runs of suite '{}', not '{}'", m.suite, p.suite.decl.name);
    ensure!(
        m.crate_version == version,
        "its runs were made by cmkm {} and this is cmkm {version}; run ids include the version, so none of them would be reused (check out {} to go on with it)",
        m.crate_version,
        m.crate_version
    );
    Ok(())
}

/// The run id of an entry `runs/<id>/...`.
fn run_of(path: &Path) -> Option<&str> {
    let mut parts = path.components();
    match (parts.next(), parts.next(), parts.next()) {
        (Some(std::path::Component::Normal(runs)), Some(std::path::Component::Normal(id)), Some(_)) if runs == "runs" => id.to_str(),
        _ => None,
    }
}
