//! The declaration of a dataset of continuous recordings (format
//! `recordings`): where each modality's recordings are, where their labels
//! are, and how they are cut into windows. Leaf types, read from the
//! dataset's YAML beside [`crate::data::declaration::DatasetDecl`].

use anyhow::{bail, Result};
use serde::{Deserialize, Serialize};

/// Where one modality's recordings are and which columns they hold.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RecordingDecl {
    /// File pattern under the dataset root, one file per recording, with
    /// placeholders for what identifies it: `{subject}` (required),
    /// `{session}`, `{trial}`, `{scene}`, each matching a decimal number
    /// (`RawData/acc_exp{session}_user{subject}.txt`).
    pub files: String,
    /// The channel columns (0-based), in order; default: every column but
    /// the time and label columns. A skeleton's columns are joint-major
    /// (joint 0's channels, then joint 1's...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub columns: Option<Vec<usize>>,
    /// Column of time stamps; without one, samples are `1 / sample_rate`
    /// apart from time 0.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time_column: Option<usize>,
    /// Unit of the time column.
    #[serde(default, skip_serializing_if = "TimeUnit::is_seconds")]
    pub time_unit: TimeUnit,
    /// A step between time stamps longer than this many sample periods
    /// (at `sample_rate`) is a gap that no window crosses.
    #[serde(default = "default_max_gap", skip_serializing_if = "is_default_max_gap")]
    pub max_gap: f64,
}

fn default_max_gap() -> f64 {
    1.5
}

fn is_default_max_gap(v: &f64) -> bool {
    *v == default_max_gap()
}

/// Unit of a time column.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TimeUnit {
    #[default]
    S,
    Ms,
    Us,
    Ns,
}

impl TimeUnit {
    /// Seconds per unit.
    pub fn seconds(self) -> f64 {
        match self {
            TimeUnit::S => 1.0,
            TimeUnit::Ms => 1e-3,
            TimeUnit::Us => 1e-6,
            TimeUnit::Ns => 1e-9,
        }
    }

    fn is_seconds(&self) -> bool {
        *self == TimeUnit::S
    }
}

/// Where the labels of recordings are: a column of per-time-step codes in
/// one modality's files, or interval files.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LabelsDecl {
    /// Column (0-based) of a label code per time step.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub column: Option<usize>,
    /// The modality whose files hold `column`; default the first one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub modality: Option<String>,
    /// Labelled intervals, in files of their own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub intervals: Option<IntervalsDecl>,
    /// The code of each class, in class order; default 1, 2, ... (1-based
    /// indices into `classes`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub codes: Option<Vec<i64>>,
    /// Codes that mean "no label" (PAMAP2's 0, "transient activities").
    /// Time outside every interval is unlabelled too.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub unlabelled: Vec<i64>,
}

/// Files of labelled intervals, one row per interval.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IntervalsDecl {
    /// A file under the root, or a pattern with the recordings'
    /// placeholders (one file per recording).
    pub file: String,
    /// What each column is: `start`, `end`, `label` (required), a
    /// placeholder name (`subject`, `session`, `trial`, `scene`) naming the
    /// recording, or `_` for a column to ignore.
    pub columns: Vec<String>,
    /// Unit of `start` and `end`.
    pub unit: IntervalUnit,
    /// The number of a recording's first sample (HAPT counts from 1);
    /// `unit: samples` only.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub first_sample: u64,
}

fn is_zero(v: &u64) -> bool {
    *v == 0
}

/// Unit of interval bounds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IntervalUnit {
    /// Sample numbers of the first modality, `start` and `end` both included.
    Samples,
    /// Seconds on the recording's time axis, `[start, end)`.
    Seconds,
}

/// How recordings are cut into windows.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WindowsDecl {
    /// Window length, in `unit`.
    pub length: f64,
    /// Distance between window starts, in `unit`.
    pub stride: f64,
    /// `samples` (of the first modality) or `seconds`.
    pub unit: WindowUnit,
    /// How a window gets its label from its time steps' labels.
    pub label: LabelRule,
    /// `majority` only: the smallest share of time steps the majority label
    /// must have, else the window is dropped as mixed (default 0.5).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_fraction: Option<f64>,
    /// What windows without a label are for.
    #[serde(default, skip_serializing_if = "UnlabelledUse::is_drop")]
    pub unlabelled: UnlabelledUse,
}

/// Unit of window length and stride.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WindowUnit {
    Samples,
    Seconds,
}

/// How a window's label follows from its time steps' labels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LabelRule {
    /// The label at the window's centre.
    Center,
    /// The most frequent label, if it covers at least `min_fraction`.
    Majority,
    /// The label every time step shares; mixed windows are dropped.
    Pure,
}

/// What unlabelled windows are used for.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UnlabelledUse {
    /// Not used (counted by `cmkm data inspect`).
    #[default]
    Drop,
    /// Self-supervised pre-training on the training split's subjects only:
    /// never a supervised head, a label fraction or an evaluation.
    Pretrain,
}

impl UnlabelledUse {
    fn is_drop(&self) -> bool {
        *self == UnlabelledUse::Drop
    }
}

impl WindowsDecl {
    /// Checks the numbers.
    pub fn validate(&self) -> Result<()> {
        if !(self.length.is_finite() && self.length > 0.0 && self.stride.is_finite() && self.stride > 0.0) {
            bail!("windows: length and stride must be positive");
        }
        if self.unit == WindowUnit::Samples && (self.length.fract() != 0.0 || self.stride.fract() != 0.0) {
            bail!("windows: length and stride in samples must be whole numbers");
        }
        match (self.label, self.min_fraction) {
            (LabelRule::Majority, Some(f)) if !(f > 0.0 && f <= 1.0) => bail!("windows: min_fraction must be in (0, 1]"),
            (LabelRule::Center | LabelRule::Pure, Some(_)) => bail!("windows: min_fraction is only for label: majority"),
            _ => Ok(()),
        }
    }

    /// The majority rule's threshold.
    pub fn min_fraction(&self) -> f64 {
        self.min_fraction.unwrap_or(0.5)
    }
}

impl LabelsDecl {
    /// Checks that exactly one source is given and the codes make sense.
    pub fn validate(&self, classes: usize) -> Result<()> {
        match (&self.column, &self.intervals) {
            (Some(_), Some(_)) => bail!("labels: give either 'column' or 'intervals', not both"),
            (None, None) => bail!("labels: give 'column' (a label per time step) or 'intervals'"),
            (None, Some(_)) if self.modality.is_some() => bail!("labels: 'modality' is only for 'column'"),
            _ => {}
        }
        if let Some(codes) = &self.codes {
            if codes.len() != classes {
                bail!("labels: {} codes for {classes} classes", codes.len());
            }
            if let Some(c) = crate::config::first_repeated(codes) {
                bail!("labels: code {c} is given twice");
            }
            if let Some(c) = self.unlabelled.iter().find(|c| codes.contains(c)) {
                bail!("labels: code {c} is both a class and unlabelled");
            }
        }
        if let Some(i) = &self.intervals {
            i.validate()?;
        }
        Ok(())
    }

    /// The class of a numeric code: `Ok(None)` for an unlabelled code.
    pub fn class_of(&self, code: i64, classes: usize) -> Result<Option<usize>> {
        if self.unlabelled.contains(&code) {
            return Ok(None);
        }
        let class = match &self.codes {
            Some(codes) => codes.iter().position(|&c| c == code),
            None => usize::try_from(code).ok().filter(|&c| c >= 1 && c <= classes).map(|c| c - 1),
        };
        match class {
            Some(c) => Ok(Some(c)),
            None if self.codes.is_some() => bail!("label code {code} is not a declared class code nor unlabelled"),
            None => bail!("label {code} is outside the {classes} declared classes (1..={classes}) and not declared unlabelled"),
        }
    }
}

impl IntervalsDecl {
    fn validate(&self) -> Result<()> {
        const KNOWN: [&str; 8] = ["start", "end", "label", "subject", "session", "trial", "scene", "_"];
        if let Some(c) = self.columns.iter().find(|c| !KNOWN.contains(&c.as_str())) {
            bail!("labels.intervals: unknown column '{c}' (expected one of {KNOWN:?})");
        }
        for need in ["start", "end", "label"] {
            if !self.columns.iter().any(|c| c == need) {
                bail!("labels.intervals: no '{need}' column");
            }
        }
        if let Some(c) = crate::config::first_repeated(&self.columns.iter().filter(|c| *c != "_").collect::<Vec<_>>()) {
            bail!("labels.intervals: column '{c}' named twice");
        }
        if self.unit == IntervalUnit::Seconds && self.first_sample != 0 {
            bail!("labels.intervals: first_sample is only for unit: samples");
        }
        Ok(())
    }

    /// Position of a named column.
    pub fn column(&self, name: &str) -> Option<usize> {
        self.columns.iter().position(|c| c == name)
    }
}
