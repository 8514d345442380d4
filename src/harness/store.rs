//! The run store: one folder per run under `results/<suite>/runs/<id>/`,
//! written in a staging folder and renamed into place when complete, so a
//! run killed at any point leaves either nothing or a complete result. A
//! lock (an OS file lock, released even when its process is killed) keeps
//! two processes from running the same run at once.

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};
use std::io::Write;
use std::path::PathBuf;

/// Written last into a run folder: what ran, how long it took, on what.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunRecordFile {
    pub id: String,
    pub label: String,
    pub seconds: f64,
    pub hardware: Hardware,
}

/// "1 thread", "2 threads".
pub fn threads_phrase(threads: usize) -> String {
    if threads == 1 {
        "1 thread".to_string()
    } else {
        format!("{threads} threads")
    }
}

/// The machine a run ran on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hardware {
    pub cpu: String,
    pub cores: usize,
    pub threads: usize,
    /// The GPU adapter the runs computed on (`--device gpu`), as
    /// [`crate::device::Adapter::describe`] names it; `None`: the CPU
    /// backend, whatever GPU the machine has.
    pub gpu: Option<String>,
    pub os: String,
    pub crate_version: String,
}

impl Hardware {
    /// "CPU (N cores, M threads), OS, cmkm VERSION", and ", on GPU ..."
    /// where the runs computed on one, for report notes.
    pub fn describe(&self) -> String {
        let gpu = self.gpu.as_ref().map(|g| format!(", on GPU {g}")).unwrap_or_default();
        format!("{} ({} cores, {}), {}, cmkm {}{gpu}", self.cpu, self.cores, threads_phrase(self.threads), self.os, self.crate_version)
    }

    /// This machine.
    pub fn current() -> Self {
        // The CPU's name describes the machine; where /proc/cpuinfo cannot
        // be read (not Linux) the architecture stands in, and says so.
        let cpu = std::fs::read_to_string("/proc/cpuinfo")
            .ok()
            .and_then(|t| t.lines().find(|l| l.starts_with("model name")).and_then(|l| l.split(':').nth(1)).map(|s| s.trim().to_string()))
            .unwrap_or_else(|| std::env::consts::ARCH.to_string());
        Hardware {
            cpu,
            cores: std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
            threads: rayon::current_num_threads(),
            gpu: crate::device::opened_adapter().map(crate::device::Adapter::describe),
            os: format!("{} {}", std::env::consts::OS, std::env::consts::ARCH),
            crate_version: env!("CARGO_PKG_VERSION").to_string(),
        }
    }
}

/// Where a planned run stands in the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RunStatus {
    /// Finished: its folder holds its record.
    Done,
    /// Not started, or killed before it finished.
    Todo,
    /// Its last attempt failed (the reason is in `failed/<id>.txt`).
    Failed,
    /// A live process holds its lock and is running it now.
    Locked,
}

impl RunStatus {
    /// The word `cmkm plan` prints.
    pub fn word(self) -> &'static str {
        match self {
            RunStatus::Done => "done",
            RunStatus::Todo => "todo",
            RunStatus::Failed => "FAILED",
            RunStatus::Locked => "locked",
        }
    }
}

/// The run store: one results folder for every suite, runs found by their
/// content-addressed ids (`runs/<id>/`, failures in `failed/<id>.txt`), so a
/// suite that plans a run another suite finished finds it done. A suite's
/// own files (its Slurm records) live in `<root>/<suite name>/`.
pub struct RunStore {
    pub root: PathBuf,
}

/// Folder names of the store itself, which no suite may take.
pub const RESERVED_NAMES: [&str; 2] = ["runs", "failed"];

/// A run's lock: an OS file lock (`flock`) on `runs/.<id>.lock`, so a
/// process killed at any point releases it with its file descriptors. The
/// file is removed while still locked, on release.
pub struct RunLock {
    file: std::fs::File,
    path: PathBuf,
}

impl Drop for RunLock {
    fn drop(&mut self) {
        // Unlink before unlocking: whoever locks the old inode afterwards
        // sees that the path no longer leads to it and retries.
        let _ = std::fs::remove_file(&self.path);
        let _ = self.file.unlock();
    }
}

/// A claimed run: its staging folder and its lock, released on drop.
pub struct Claim {
    pub staging: PathBuf,
    final_dir: PathBuf,
    failure: PathBuf,
    _lock: RunLock,
}

/// What [`RunStore::claim`] found.
pub enum ClaimOutcome {
    /// This process now owns the run.
    Claimed(Claim),
    /// A live process holds the run's lock; try again later.
    Busy,
    /// The run finished (possibly in another process) before the lock came.
    Done,
}

impl RunStore {
    pub fn new(root: PathBuf) -> Self {
        RunStore { root }
    }

    /// The folder of a suite's own files (Slurm records).
    pub fn suite_dir(&self, suite: &str) -> PathBuf {
        self.root.join(suite)
    }

    /// Moves the finished runs and failure records that an earlier cmkm
    /// (0.13.0 before the shared store) kept per suite in
    /// `<root>/<suite>/runs` and `<root>/<suite>/failed`, for every suite
    /// folder under the root, into the shared store, each under its run's
    /// lock; a run already in the shared store stays as it is. Returns how
    /// many runs moved.
    pub fn adopt_suite_stores(&self) -> Result<usize> {
        let Ok(entries) = std::fs::read_dir(&self.root) else { return Ok(0) };
        let mut suites: Vec<PathBuf> = entries.flatten().map(|e| e.path()).filter(|p| p.join("runs").is_dir()).collect();
        suites.retain(|p| !p.file_name().is_some_and(|n| RESERVED_NAMES.iter().any(|r| n == *r)));
        suites.sort();
        suites.iter().map(|old| self.adopt(old)).sum()
    }

    fn adopt(&self, old: &std::path::Path) -> Result<usize> {
        let mut moved = 0;
        for path in finished_runs(&old.join("runs")) {
            let id = path.file_name().and_then(|n| n.to_str()).unwrap_or_default().to_string();
            if self.place(&id, &path)? {
                moved += 1;
            }
        }
        if let Ok(entries) = std::fs::read_dir(old.join("failed")) {
            for e in entries.flatten() {
                let id = e.file_name().to_string_lossy().trim_end_matches(".txt").to_string();
                if !self.is_done(&id) && self.failure(&id).is_none() {
                    std::fs::create_dir_all(self.root.join("failed"))?;
                    std::fs::rename(e.path(), self.failure_path(&id)).with_context(|| format!("{}: cannot move the failure record", e.path().display()))?;
                }
            }
        }
        Ok(moved)
    }

    /// Folder of a finished run.
    pub fn dir(&self, id: &str) -> PathBuf {
        self.root.join("runs").join(id)
    }

    /// True when the run finished (its folder exists with its record).
    pub fn is_done(&self, id: &str) -> bool {
        self.dir(id).join("record.json").is_file()
    }

    /// Where the run stands: done, running under a live process's lock,
    /// failed last time, or still to do. Probing a lock never creates one.
    pub fn status(&self, id: &str) -> RunStatus {
        if self.is_done(id) {
            RunStatus::Done
        } else if self.is_locked(id) {
            RunStatus::Locked
        } else if self.failure(id).is_some() {
            RunStatus::Failed
        } else {
            RunStatus::Todo
        }
    }

    /// True when a live process holds the run's lock.
    fn is_locked(&self, id: &str) -> bool {
        let Ok(file) = std::fs::File::open(self.lock_path(id)) else { return false };
        matches!(file.try_lock_shared(), Err(std::fs::TryLockError::WouldBlock))
    }

    /// Why the run failed last time, if it did.
    /// A record that exists but cannot be read still marks the run failed.
    pub fn failure(&self, id: &str) -> Option<String> {
        let path = self.failure_path(id);
        match std::fs::read_to_string(&path) {
            Ok(reason) => Some(reason),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => Some(format!("(the failure record {} cannot be read: {e})", path.display())),
        }
    }

    /// True when the run's failure was recorded at or after `since` (by
    /// this process or a sibling worker of the same `cmkm reproduce --jobs`).
    pub fn failed_since(&self, id: &str, since: std::time::SystemTime) -> bool {
        std::fs::metadata(self.failure_path(id)).and_then(|m| m.modified()).is_ok_and(|t| t >= since)
    }

    /// Where a failed run's reason is recorded.
    pub fn failure_path(&self, id: &str) -> PathBuf {
        self.root.join("failed").join(format!("{id}.txt"))
    }

    /// The run's lock file.
    pub fn lock_path(&self, id: &str) -> PathBuf {
        self.root.join("runs").join(format!(".{id}.lock"))
    }

    /// Takes the run's lock without waiting; `None` when a live process holds it.
    fn try_lock(&self, id: &str) -> Result<Option<RunLock>> {
        let runs = self.root.join("runs");
        std::fs::create_dir_all(&runs).with_context(|| format!("{}: cannot create the results folder", runs.display()))?;
        let path = self.lock_path(id);
        loop {
            let file = std::fs::OpenOptions::new()
                .create(true)
                .truncate(false)
                .write(true)
                .open(&path)
                .with_context(|| format!("run {id}: cannot open the lock {}", path.display()))?;
            match file.try_lock() {
                Ok(()) => {}
                Err(std::fs::TryLockError::WouldBlock) => return Ok(None),
                Err(std::fs::TryLockError::Error(e)) => return Err(e).with_context(|| format!("run {id}: cannot lock {}", path.display())),
            }
            // The holder we waited for may have unlinked the file meanwhile.
            use std::os::unix::fs::MetadataExt;
            let ours = file.metadata()?;
            match std::fs::metadata(&path) {
                Ok(m) if m.ino() == ours.ino() && m.dev() == ours.dev() => {
                    let mut lock = RunLock { file, path };
                    lock.file.set_len(0)?;
                    writeln!(lock.file, "{}", std::process::id())?;
                    return Ok(Some(lock));
                }
                _ => continue,
            }
        }
    }

    /// Claims a run for this process: takes its lock, removes what killed
    /// earlier attempts left, and prepares an empty staging folder. A run
    /// locked by a live process is [`ClaimOutcome::Busy`], one finished
    /// meanwhile is [`ClaimOutcome::Done`].
    pub fn claim(&self, id: &str) -> Result<ClaimOutcome> {
        let Some(lock) = self.try_lock(id)? else { return Ok(ClaimOutcome::Busy) };
        if self.is_done(id) {
            return Ok(ClaimOutcome::Done);
        }
        self.remove_staging(id);
        let staging = self.root.join("runs").join(format!(".{id}.staging-{}", std::process::id()));
        std::fs::create_dir_all(&staging).with_context(|| format!("{}: cannot create the staging folder", staging.display()))?;
        Ok(ClaimOutcome::Claimed(Claim { staging, final_dir: self.dir(id), failure: self.failure_path(id), _lock: lock }))
    }

    /// Moves a finished run's folder `from` (with its record, e.g. unpacked
    /// from an archive) into place under the run's lock. False, with the
    /// store untouched, when the run is already done here; an error when a
    /// live process is running it.
    pub fn place(&self, id: &str, from: &std::path::Path) -> Result<bool> {
        let Some(_lock) = self.try_lock(id)? else { anyhow::bail!("run {id}: a live process is running it in {}", self.root.display()) };
        if self.is_done(id) {
            return Ok(false);
        }
        self.remove_staging(id);
        let dir = self.dir(id);
        crate::faults::at("commit");
        if dir.exists() {
            std::fs::remove_dir_all(&dir)?; // an unfinished leftover without record
        }
        std::fs::rename(from, &dir).with_context(|| format!("{}: cannot move the run into place", dir.display()))?;
        let _ = std::fs::remove_file(self.failure_path(id));
        Ok(true)
    }

    /// Staging folders of run `id` (the caller holds its lock, so whoever
    /// wrote them is gone).
    fn remove_staging(&self, id: &str) {
        let Ok(entries) = std::fs::read_dir(self.root.join("runs")) else { return };
        let prefix = format!(".{id}.staging-");
        for e in entries.flatten().filter(|e| e.file_name().to_string_lossy().starts_with(&prefix)) {
            let _ = std::fs::remove_dir_all(e.path());
        }
    }

    /// Records a failure (the suite goes on; `plan` shows it).
    pub fn record_failure(&self, id: &str, reason: &str) -> Result<()> {
        crate::fsutil::write_atomic(&self.failure_path(id), reason.as_bytes())
    }

    /// Removes the staging folders and lock files of killed processes: those
    /// of every run whose lock is free (runs of live processes are untouched).
    pub fn clean_stale(&self) {
        let Ok(entries) = std::fs::read_dir(self.root.join("runs")) else { return };
        let mut ids = std::collections::BTreeSet::new();
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().to_string();
            let Some(rest) = name.strip_prefix('.') else { continue };
            let id = rest.split_once(".staging-").map(|(id, _)| id).or_else(|| rest.strip_suffix(".lock"));
            if let Some(id) = id {
                ids.insert(id.to_string());
            }
        }
        for id in ids {
            if let Ok(Some(_lock)) = self.try_lock(&id) {
                self.remove_staging(&id);
            }
        }
    }
}

/// The finished run folders (holding their record) under `runs`.
fn finished_runs(runs: &std::path::Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(runs) else { return vec![] };
    let mut out: Vec<PathBuf> = entries
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.join("record.json").is_file() && !p.file_name().is_some_and(|n| n.to_string_lossy().starts_with('.')))
        .collect();
    out.sort();
    out
}

impl Claim {
    /// Writes the record and moves the staging folder into place; a failure
    /// recorded by an earlier attempt is removed.
    pub fn commit(self, record: &RunRecordFile) -> Result<()> {
        crate::fsutil::write_atomic(&self.staging.join("record.json"), serde_json::to_string_pretty(record)?.as_bytes())?;
        crate::faults::at("commit");
        if self.final_dir.exists() {
            std::fs::remove_dir_all(&self.final_dir)?; // an unfinished leftover without record
        }
        std::fs::rename(&self.staging, &self.final_dir).with_context(|| format!("{}: cannot move the finished run into place", self.final_dir.display()))?;
        let _ = std::fs::remove_file(&self.failure);
        Ok(())
    }
}

impl Drop for Claim {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.staging);
    }
}
