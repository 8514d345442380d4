//! Dataset declarations: what a dataset is, where its files are and how it
//! is split, written in YAML so that a new dataset needs no code.

pub use crate::data::modality::{ModalityKind, ModalityShape};
pub use crate::data::recordings::decl::{LabelsDecl, RecordingDecl, WindowsDecl};
use crate::data::splits::ProtocolDecl;
pub use crate::data::standardize::StandardizePer;
use crate::data::transforms::TransformStep;
pub use crate::metrics::MainMetric;
use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// How the files of a dataset are laid out on disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Format {
    /// `<dir>/aA_sS_tT<suffix>` per modality (the UTD-MHAD release).
    UtdMhad,
    /// `<dir>/aA_sS_tT_sesX_scY<suffix>` per modality (MMAct, preprocessed).
    Mmact,
    /// `<dir>/xS_aA_tT<suffix>` per modality (CZU-MHAD, as the fork of the
    /// reference reads it: [`crate::data::formats::czu`]).
    CzuMhad,
    /// A CSV manifest listing each sample and one array file per modality.
    Manifest,
    /// Continuous recordings (one file per subject, session and modality)
    /// cut into windows: see [`crate::data::recordings`].
    Recordings,
}

impl std::str::FromStr for Format {
    type Err = anyhow::Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "utd-mhad" => Ok(Format::UtdMhad),
            "mmact" => Ok(Format::Mmact),
            "czu-mhad" => Ok(Format::CzuMhad),
            "manifest" => Ok(Format::Manifest),
            "recordings" => Ok(Format::Recordings),
            _ => bail!("unknown format '{s}' (expected utd-mhad, mmact, czu-mhad, manifest or recordings)"),
        }
    }
}

/// One modality of a dataset.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModalityDecl {
    /// Name used by methods to refer to it (`inertial`, `skeleton`, `accel`...).
    pub name: String,
    pub kind: ModalityKind,
    /// Channels per joint (xyz = 3) or per time step for series.
    pub channels: usize,
    /// Number of joints (skeletons only).
    #[serde(default)]
    pub joints: Option<usize>,
    /// Sampling rate in Hz (informative; preprocessing resamples to a length).
    pub sample_rate: f64,
    /// Folder under the dataset root (utd-mhad, mmact).
    #[serde(default)]
    pub dir: Option<String>,
    /// File name after the sample id, e.g. `_inertial.mat` or `.csv` (utd-mhad, mmact).
    #[serde(default)]
    pub suffix: Option<String>,
    /// Variable holding the array in `.mat` files (`d_iner`, `d_skel`).
    #[serde(default)]
    pub variable: Option<String>,
    /// Axis order of the stored array, letters T (time), J (joint), C (channel):
    /// `TC` for a T x 6 inertial matrix, `JCT` for UTD's 20 x 3 x T skeleton.
    pub layout: String,
    /// Deterministic preprocessing applied once after loading (docs/method.md section 2).
    #[serde(default)]
    pub preprocess: Vec<TransformStep>,
    /// Standardisation after `preprocess`, its statistics fitted on the
    /// training split alone ([`crate::data::standardize`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub standardize: Option<StandardizePer>,
    /// Where the recordings are (format `recordings`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recording: Option<RecordingDecl>,
}

impl ModalityDecl {
    /// Joints per frame: 1 for series.
    pub fn joint_count(&self) -> usize {
        self.joints.unwrap_or(1)
    }

    /// What the transforms check a pipeline against.
    pub fn shape(&self) -> ModalityShape {
        ModalityShape { kind: self.kind, channels: self.channels, joints: self.joint_count() }
    }
}

/// Marks a declaration as the output of `cmkm synth`, so it can be generated
/// when missing and fingerprinted by generator version and seed.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SyntheticDecl {
    pub seed: u64,
}

/// A whole dataset declaration.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatasetDecl {
    pub name: String,
    pub format: Format,
    /// Data root; relative paths are taken from the declaration's folder.
    pub root: PathBuf,
    /// Manifest CSV (format `manifest`), relative to `root`; default `manifest.csv`.
    #[serde(default)]
    pub manifest: Option<PathBuf>,
    pub modalities: Vec<ModalityDecl>,
    /// Class names in label order; labels in files are 1-based indices into it.
    pub classes: Vec<String>,
    pub protocols: BTreeMap<String, ProtocolDecl>,
    pub main_metric: MainMetric,
    #[serde(default)]
    pub synthetic: Option<SyntheticDecl>,
    /// Where the labels of recordings are (format `recordings`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub labels: Option<LabelsDecl>,
    /// How recordings are cut into windows (format `recordings`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub windows: Option<WindowsDecl>,
    /// The file it was read from (not part of the declaration; for messages).
    #[serde(skip)]
    pub source: Option<PathBuf>,
}

impl DatasetDecl {
    /// Loads a declaration file, resolving `root` against the file's folder,
    /// and checks it for consistency.
    pub fn from_file(path: &Path) -> Result<Self> {
        let mut decl: DatasetDecl = crate::config::read_yaml(path)?;
        if decl.root.is_relative() {
            let base = path.parent().unwrap_or(Path::new(""));
            decl.root = crate::fsutil::normalize(&base.join(&decl.root));
        }
        decl.validate().with_context(|| format!("{}", path.display()))?;
        decl.source = Some(path.to_path_buf());
        Ok(decl)
    }

    /// Checks the declaration's internal consistency.
    pub fn validate(&self) -> Result<()> {
        if self.modalities.is_empty() {
            bail!("no modalities declared");
        }
        if self.classes.is_empty() {
            bail!("no classes declared");
        }
        let mut seen = std::collections::BTreeSet::new();
        for m in &self.modalities {
            if !seen.insert(&m.name) {
                bail!("modality '{}' declared twice", m.name);
            }
            validate_modality(self.format, m).with_context(|| format!("modality '{}'", m.name))?;
        }
        for (name, p) in &self.protocols {
            p.validate().with_context(|| format!("protocol '{name}'"))?;
        }
        if self.format == Format::Recordings {
            crate::data::recordings::Layout::of(self)?;
        } else if self.labels.is_some() || self.windows.is_some() {
            bail!("'labels' and 'windows' are for format recordings, not {:?}", self.format);
        }
        Ok(())
    }

    /// The modality called `name`.
    pub fn modality(&self, name: &str) -> Result<&ModalityDecl> {
        self.modalities.iter().find(|m| m.name == name).with_context(|| {
            let names: Vec<&str> = self.modalities.iter().map(|m| m.name.as_str()).collect();
            format!("dataset '{}' has no modality '{name}' (it has {names:?})", self.name)
        })
    }

    /// The split of `samples` under protocol `name`; errors (an empty split,
    /// a class missing from the train split...) name the declaration file and
    /// the protocol.
    pub fn split(&self, name: &str, samples: &[crate::data::sample::SampleMeta]) -> Result<crate::data::splits::Split> {
        self.protocol(name)?.split(samples).with_context(|| format!("{}: protocol '{name}'", self.origin()))
    }

    /// Where the declaration came from, for messages: its file, or its name.
    pub fn origin(&self) -> String {
        match &self.source {
            Some(p) => p.display().to_string(),
            None => format!("dataset '{}'", self.name),
        }
    }

    /// The protocol called `name`.
    pub fn protocol(&self, name: &str) -> Result<&ProtocolDecl> {
        self.protocols.get(name).with_context(|| {
            let names: Vec<&String> = self.protocols.keys().collect();
            format!("dataset '{}' has no protocol '{name}' (it has {names:?})", self.name)
        })
    }

    /// The shipped declaration of `format`, rooted at `dir` (used by
    /// `cmkm data inspect --format`). Manifests have none: their modalities
    /// must be declared.
    pub fn builtin(format: Format, dir: &Path) -> Result<Self> {
        let text = match format {
            Format::UtdMhad => include_str!("../../experiments/datasets/utd-mhad.yaml"),
            Format::Mmact => include_str!("../../experiments/datasets/mmact.yaml"),
            Format::CzuMhad => include_str!("../../experiments/datasets/czu-mhad.yaml"),
            Format::Manifest | Format::Recordings => bail!("a {format:?} dataset needs a declaration file naming its modalities (see README)"),
        };
        let mut decl: DatasetDecl = crate::config::parse_yaml(text).context("built-in declaration")?;
        decl.root = dir.to_path_buf();
        decl.validate()?;
        Ok(decl)
    }

    /// Path of the manifest CSV (format `manifest`).
    pub fn manifest_path(&self) -> PathBuf {
        self.root.join(self.manifest.as_deref().unwrap_or(Path::new("manifest.csv")))
    }
}

fn validate_modality(format: Format, m: &ModalityDecl) -> Result<()> {
    let want: &[char] = match m.kind {
        ModalityKind::Series => &['T', 'C'],
        ModalityKind::Skeleton => &['T', 'J', 'C'],
    };
    let mut letters: Vec<char> = m.layout.chars().collect();
    letters.sort();
    let mut expected = want.to_vec();
    expected.sort();
    if letters != expected {
        bail!("layout '{}' must be an ordering of the letters {:?} for a {:?} modality", m.layout, want, m.kind);
    }
    if m.kind == ModalityKind::Skeleton && m.joints.is_none() {
        bail!("a skeleton modality needs 'joints'");
    }
    if m.kind == ModalityKind::Series && m.joints.is_some() {
        bail!("'joints' is only for skeleton modalities");
    }
    if m.channels == 0 || m.joint_count() == 0 {
        bail!("channels and joints must be positive");
    }
    if matches!(format, Format::UtdMhad | Format::Mmact | Format::CzuMhad) && (m.dir.is_none() || m.suffix.is_none()) {
        bail!("format {format:?} needs 'dir' and 'suffix' for every modality");
    }
    if format != Format::Recordings && m.recording.is_some() {
        bail!("'recording' is for format recordings, not {format:?}");
    }
    if format == Format::Recordings && (m.dir.is_some() || m.suffix.is_some() || m.variable.is_some()) {
        bail!("format recordings finds files by 'recording: {{files: ...}}', not by 'dir', 'suffix' or 'variable'");
    }
    if format == Format::CzuMhad {
        let want = if m.kind == ModalityKind::Series { "TC" } else { "TJC" };
        if m.layout != want
            || m.variable.is_none()
            || (m.kind == ModalityKind::Series && !m.channels.is_multiple_of(crate::data::formats::czu::SENSOR_CHANNELS))
        {
            bail!("format czu-mhad reads its files into T x (6 x sensors) series (layout TC) and T x joints x 3 skeletons (layout TJC), from the 'variable' named (sensor, skeleton)");
        }
    }
    if !(m.sample_rate.is_finite() && m.sample_rate > 0.0) {
        bail!("sample_rate must be positive");
    }
    for step in &m.preprocess {
        step.transform.check(&m.shape())?;
    }
    Ok(())
}
