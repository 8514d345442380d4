//! The embedded default data: a synthetic UTD-MHAD written in the real
//! release's layout (`Inertial/aA_sS_tT_inertial.mat` with `d_iner`,
//! `Skeleton/aA_sS_tT_skeleton.mat` with `d_skel`), so one loader serves real
//! and synthetic data. The motion itself comes from [`motion`]: a kinematic
//! body driven by per-action joint-angle trajectories, observed by a virtual
//! Kinect and a virtual IMU.

pub mod hapt;
pub mod motion;

use crate::data::formats::mat::encode_mat_double;
use anyhow::{bail, Context, Result};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// Trials missing from the public UTD-MHAD release, mirrored here.
pub const MISSING_TRIALS: [(usize, usize, usize); 3] = [(8, 1, 4), (23, 6, 4), (27, 8, 4)];
/// Trials per subject and action.
pub const TRIALS: usize = 4;
const STAMP: &str = "cmkm-synth.json";

/// What generated a folder: checked before reusing or replacing it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stamp {
    pub generator_version: u32,
    pub seed: u64,
    pub samples: usize,
}

/// Every (action, subject, trial) of the release, in order.
pub fn sample_keys() -> Vec<(usize, usize, usize)> {
    let mut keys = vec![];
    for a in 1..=motion::NUM_ACTIONS {
        for s in 1..=motion::NUM_SUBJECTS {
            for t in 1..=TRIALS {
                if !MISSING_TRIALS.contains(&(a, s, t)) {
                    keys.push((a, s, t));
                }
            }
        }
    }
    keys
}

/// Writes the synthetic set for `seed` into `out` (created; must not exist
/// or be empty, or be an earlier synthetic set, which is replaced).
///
/// The set is built in a sibling temporary folder and renamed into place, so
/// an interrupted run never leaves a half-written dataset behind.
pub fn generate(out: &Path, seed: u64) -> Result<Stamp> {
    generate_as(out, seed, Layout::UtdMhad)
}

/// How a generated set is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    /// UTD-MHAD's release: `Inertial/` and `Skeleton/` MAT files.
    UtdMhad,
    /// A manifest (`manifest.csv`: sample_id, label, subject, trial, then
    /// one path per modality) of NPY arrays: `accel/` and `gyro/` (the
    /// inertial signal split into two 3-channel series, stored T x 3 and
    /// 3 x T) and `skeleton/` (T x 20 x 3), as a user's own data may come.
    Manifest,
    /// Continuous recordings in HAPT's layout ([`hapt`]): per experiment
    /// and user, `RawData/acc_expXX_userYY.txt` and `gyro_...` (white-space
    /// separated, 50 Hz) and one `RawData/labels.txt` of labelled intervals.
    Hapt,
}

impl Layout {
    /// The path whose presence marks a set written in this layout.
    fn marker(self) -> &'static str {
        match self {
            Layout::UtdMhad => "Inertial",
            Layout::Manifest => MANIFEST,
            Layout::Hapt => hapt::LABELS,
        }
    }
}

/// The file whose presence marks a manifest-layout set.
pub const MANIFEST: &str = "manifest.csv";

/// [`generate`] in either layout.
pub fn generate_as(out: &Path, seed: u64, layout: Layout) -> Result<Stamp> {
    check_replaceable(out)?;
    let parent = out.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    std::fs::create_dir_all(parent).with_context(|| format!("{}: cannot create directory", parent.display()))?;
    let tmp =
        tempfile::Builder::new().prefix(".synth-").tempdir_in(parent).with_context(|| format!("{}: cannot create a temporary folder", parent.display()))?;
    let folders: &[&str] = match layout {
        Layout::UtdMhad => &["Inertial", "Skeleton"],
        Layout::Manifest => &["accel", "gyro", "skeleton"],
        Layout::Hapt => &["RawData"],
    };
    for sub in folders {
        std::fs::create_dir_all(tmp.path().join(sub))?;
    }
    let keys = sample_keys();
    let written = match layout {
        Layout::UtdMhad => keys.par_iter().try_for_each(|&(a, s, t)| write_trial(tmp.path(), seed, a, s, t)),
        Layout::Manifest => keys.par_iter().try_for_each(|&(a, s, t)| write_manifest_trial(tmp.path(), seed, a, s, t)),
        Layout::Hapt => hapt::write(tmp.path(), seed),
    };
    written.with_context(|| format!("{}: cannot write the synthetic set (nothing was put in place)", out.display()))?;
    if layout == Layout::Manifest {
        let mut csv = String::from("sample_id,label,subject,trial,accel,gyro,skeleton\n");
        for &(a, s, t) in &keys {
            let id = format!("a{a}_s{s}_t{t}");
            csv.push_str(&format!("{id},{a},{s},{t},accel/{id}.npy,gyro/{id}.npy,skeleton/{id}.npy\n"));
        }
        write_new(&tmp.path().join(MANIFEST), csv.as_bytes())?;
    }
    let stamp = Stamp { generator_version: motion::GENERATOR_VERSION, seed, samples: keys.len() };
    crate::fsutil::write_atomic(&tmp.path().join(STAMP), serde_json::to_string_pretty(&stamp)?.as_bytes())?;
    if out.exists() {
        std::fs::remove_dir_all(out).with_context(|| format!("{}: cannot replace the old synthetic set", out.display()))?;
    }
    let tmp = tmp.keep();
    std::fs::rename(&tmp, out).with_context(|| format!("{}: cannot move the generated set into place", out.display()))?;
    Ok(stamp)
}

/// Generates the set into `root` unless an identical one (same generator
/// version, seed and layout) is already there.
pub fn ensure_generated(root: &Path, seed: u64, layout: Layout) -> Result<()> {
    let same_layout = root.join(layout.marker()).exists();
    if same_layout && read_stamp(root).is_some_and(|s| s.seed == seed && s.generator_version == motion::GENERATOR_VERSION) {
        return Ok(());
    }
    generate_as(root, seed, layout).map(|_| ())
}

/// The stamp of a generated set; one missing or unreadable means the set is
/// generated again (over whatever is there), never used as is.
fn read_stamp(root: &Path) -> Option<Stamp> {
    let text = std::fs::read_to_string(root.join(STAMP)).ok()?;
    serde_json::from_str(&text).ok()
}

fn check_replaceable(out: &Path) -> Result<()> {
    if !out.exists() || read_stamp(out).is_some() {
        return Ok(());
    }
    let empty = std::fs::read_dir(out).map(|mut d| d.next().is_none()).unwrap_or(false);
    if !empty {
        bail!("{}: exists, is not empty and is not a synthetic set written by cmkm; refusing to overwrite it", out.display());
    }
    Ok(())
}

/// Path of one trial's file of the given modality folder and suffix.
pub fn trial_path(root: &Path, folder: &str, (a, s, t): (usize, usize, usize), suffix: &str) -> PathBuf {
    root.join(folder).join(format!("a{a}_s{s}_t{t}_{suffix}.mat"))
}

fn write_trial(root: &Path, seed: u64, a: usize, s: usize, t: usize) -> Result<()> {
    let rec = motion::record(seed, a, s, t);
    // d_iner: T x 6, column-major.
    let rows = rec.inertial.len();
    let iner: Vec<f64> = (0..6).flat_map(|c| rec.inertial.iter().map(move |r| r[c])).collect();
    write_new(&trial_path(root, "Inertial", (a, s, t), "inertial"), &encode_mat_double("d_iner", &[rows, 6], &iner, false)?)?;
    // d_skel: 20 x 3 x T, column-major (joint fastest, then axis, then frame).
    let frames = rec.skeleton.len();
    let skel: Vec<f64> = rec.skeleton.iter().flat_map(|f| (0..3).flat_map(move |c| f.iter().map(move |j| j[c]))).collect();
    write_new(&trial_path(root, "Skeleton", (a, s, t), "skeleton"), &encode_mat_double("d_skel", &[20, 3, frames], &skel, true)?)
}

fn write_manifest_trial(root: &Path, seed: u64, a: usize, s: usize, t: usize) -> Result<()> {
    let rec = motion::record(seed, a, s, t);
    let id = format!("a{a}_s{s}_t{t}");
    let rows = rec.inertial.len();
    let series = |c0: usize, channels_first: bool| -> Vec<f32> {
        match channels_first {
            false => rec.inertial.iter().flat_map(|r| (c0..c0 + 3).map(move |c| r[c] as f32)).collect(),
            true => (c0..c0 + 3).flat_map(|c| rec.inertial.iter().map(move |r| r[c] as f32)).collect(),
        }
    };
    let npy = crate::data::formats::npy::write_npy_f32;
    npy(&root.join(format!("accel/{id}.npy")), &[rows, 3], &series(0, false))?;
    npy(&root.join(format!("gyro/{id}.npy")), &[3, rows], &series(3, true))?;
    let skel: Vec<f32> = rec.skeleton.iter().flat_map(|f| f.iter().flat_map(|j| j.iter().map(|v| *v as f32))).collect();
    npy(&root.join(format!("skeleton/{id}.npy")), &[rec.skeleton.len(), 20, 3], &skel)
}

/// Plain write: files go into the staging folder, which becomes visible
/// only by the final rename, so per-file atomicity would buy nothing.
pub(crate) fn write_new(path: &Path, bytes: &[u8]) -> Result<()> {
    std::fs::write(path, bytes).with_context(|| format!("{}: write failed", path.display()))
}
