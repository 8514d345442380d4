//! Datasets of continuous recordings (format `recordings`): one file per
//! subject, session and modality, as PAMAP2, WISDM, HAPT or mHealth ship
//! them, with labels per time step or as intervals, cut once into windows
//! on load. The windows are the dataset's samples: splits, methods and
//! protocols see them as they see UTD-MHAD's trials.
//!
//! The window grid is a property of the dataset: it is cut on every
//! declared modality, whichever ones a method loads, so that a window has
//! one id and one label for every method.

pub mod decl;
pub mod labels;
pub mod pattern;
pub mod read;
pub mod windows;

use crate::data::clip::Clip;
use crate::data::declaration::DatasetDecl;
use crate::data::layouts::{Dropped as MissingModality, Failure};
use crate::data::sample::{Attributes, SampleMeta};
use anyhow::{bail, Context, Result};
use decl::{LabelsDecl, RecordingDecl, WindowsDecl};
use labels::{Intervals, Timeline};
use pattern::{Pattern, RecordingKey};
use rayon::prelude::*;
use read::Track;
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::PathBuf;
use windows::{Cut, LabelSource};

/// A window without a label, kept for self-supervised pre-training.
#[derive(Debug, Clone)]
pub struct UnlabelledWindow {
    pub id: String,
    pub attributes: Attributes,
    /// One clip per loaded modality.
    pub clips: Vec<Clip>,
}

/// What cutting the recordings did, for `cmkm data inspect`.
#[derive(Debug, Clone, Default, Serialize)]
pub struct WindowReport {
    /// Recordings found in every modality and read.
    pub recordings: usize,
    /// Labelled windows kept.
    pub windows: usize,
    /// Unlabelled windows kept for pre-training, per subject.
    pub unlabelled_kept: BTreeMap<u32, usize>,
    /// Windows not kept, by reason.
    pub dropped: windows::Dropped,
    /// Recordings shorter than one window.
    pub too_short: Vec<String>,
    /// Interval files read.
    pub label_files: Vec<PathBuf>,
}

/// The windows of a dataset of recordings.
#[derive(Debug, Default)]
pub struct Loaded {
    /// Labelled windows, with one clip per loaded modality.
    pub samples: Vec<(SampleMeta, Vec<Clip>)>,
    pub unlabelled: Vec<UnlabelledWindow>,
    /// Recordings missing some modality.
    pub missing: Vec<MissingModality>,
    /// Recordings that could not be used, and why.
    pub failed: Vec<Failure>,
    pub report: WindowReport,
}

/// The recording settings of a declaration, checked together.
pub struct Layout<'a> {
    pub patterns: Vec<Pattern>,
    pub recordings: Vec<&'a RecordingDecl>,
    pub labels: &'a LabelsDecl,
    pub windows: &'a WindowsDecl,
    /// The modality whose files hold the label column (or whose samples
    /// interval bounds count), as an index into the declared modalities.
    pub label_modality: usize,
}

impl<'a> Layout<'a> {
    /// Checks that a `recordings` declaration is complete and consistent.
    pub fn of(decl: &'a DatasetDecl) -> Result<Self> {
        let (Some(labels), Some(windows)) = (&decl.labels, &decl.windows) else {
            bail!("format recordings needs 'labels' and 'windows'");
        };
        labels.validate(decl.classes.len())?;
        windows.validate()?;
        let mut patterns = vec![];
        let mut recordings = vec![];
        for m in &decl.modalities {
            let rec = m.recording.as_ref().with_context(|| format!("modality '{}': format recordings needs 'recording: {{files: ...}}'", m.name))?;
            let p = Pattern::parse(&rec.files).with_context(|| format!("modality '{}'", m.name))?;
            if !p.placeholders().contains(&"subject") {
                bail!("modality '{}': the pattern '{}' has no {{subject}}", m.name, rec.files);
            }
            if let Some(first) = patterns.first().map(Pattern::placeholders).filter(|f| *f != p.placeholders()) {
                bail!(
                    "modality '{}': its pattern names {:?}, the first modality's {first:?}: a recording must be named alike in every modality",
                    m.name,
                    p.placeholders()
                );
            }
            if !(m.layout == "TC" || m.layout == "TJC") {
                bail!("modality '{}': a recording's rows are time steps: layout TC (series) or TJC (skeleton, joint-major columns), not {}", m.name, m.layout);
            }
            if !(rec.max_gap.is_finite() && rec.max_gap >= 1.0) {
                bail!("modality '{}': max_gap is in sample periods and must be at least 1", m.name);
            }
            patterns.push(p);
            recordings.push(rec);
        }
        let label_modality = match &labels.modality {
            Some(name) => decl.modalities.iter().position(|m| &m.name == name).with_context(|| format!("labels: no modality '{name}'"))?,
            None => 0,
        };
        if let (Some(c), Some(cols)) = (labels.column, &recordings[label_modality].columns) {
            if cols.contains(&c) {
                bail!("labels: column {c} is also a channel column of modality '{}'", decl.modalities[label_modality].name);
            }
        }
        Ok(Layout { patterns, recordings, labels, windows, label_modality })
    }
}

/// Finds the recordings of `decl`, reads them and cuts them into windows,
/// returning the clips of the modalities `loaded` (indices into the
/// declared modalities), recordings in parallel.
pub fn load(decl: &DatasetDecl, loaded: &[usize]) -> Result<Loaded> {
    let layout = Layout::of(decl).with_context(|| decl.origin())?;
    let mut files: BTreeMap<RecordingKey, Vec<Option<PathBuf>>> = BTreeMap::new();
    for (m, p) in layout.patterns.iter().enumerate() {
        for (key, path) in p.find(&decl.root)? {
            files.entry(key).or_insert_with(|| vec![None; decl.modalities.len()])[m] = Some(path);
        }
    }
    let mut out = Loaded::default();
    let mut complete: Vec<(RecordingKey, Vec<PathBuf>)> = vec![];
    for (key, paths) in files {
        let missing: Vec<String> = paths.iter().zip(&decl.modalities).filter(|(p, _)| p.is_none()).map(|(_, m)| m.name.clone()).collect();
        if missing.is_empty() {
            complete.push((key, paths.into_iter().flatten().collect()));
        } else {
            out.missing.push(MissingModality { id: key.id(), missing });
        }
    }
    let intervals = match &layout.labels.intervals {
        Some(i) => {
            let keys: Vec<RecordingKey> = complete.iter().map(|(k, _)| *k).collect();
            labels::read_intervals(&decl.root, i, layout.labels, &decl.classes, &keys, &layout.patterns[0].placeholders())?
        }
        None => Intervals::default(),
    };
    let cuts: Vec<Result<Cut, Failure>> = complete.par_iter().map(|(key, paths)| cut_recording(decl, &layout, key, paths, &intervals, loaded)).collect();
    out.report.label_files = intervals.files.clone();
    for ((key, _), cut) in complete.iter().zip(cuts) {
        match cut {
            Ok(cut) => add_cut(&mut out, key, cut),
            Err(f) => out.failed.push(f),
        }
    }
    Ok(out)
}

fn cut_recording(decl: &DatasetDecl, layout: &Layout, key: &RecordingKey, paths: &[PathBuf], intervals: &Intervals, loaded: &[usize]) -> Result<Cut, Failure> {
    let mut tracks: Vec<Track> = vec![];
    for (m, (modality, path)) in decl.modalities.iter().zip(paths).enumerate() {
        let label_column = if m == layout.label_modality { layout.labels.column } else { None };
        let track = read::read_track(path, modality, layout.recordings[m], label_column).map_err(|e| Failure::from_error(path, &e))?;
        tracks.push(track);
    }
    let timeline: Timeline = match (&tracks[layout.label_modality].codes, &layout.labels.intervals) {
        (Some(codes), _) => labels::from_codes(codes, layout.labels, decl.classes.len()).map_err(|e| Failure::from_error(&paths[layout.label_modality], &e))?,
        (None, Some(d)) => {
            let none = vec![];
            let list = intervals.by_recording.get(key).unwrap_or(&none);
            labels::from_intervals(list, d, &tracks[0]).map_err(|e| Failure::from_error(&paths[0], &e.context("its labelled intervals")))?
        }
        (None, None) => unreachable!("Layout::of requires a label column or intervals"),
    };
    let refs: Vec<&Track> = tracks.iter().collect();
    let source = LabelSource { modality: layout.label_modality, timeline: &timeline };
    Ok(windows::cut(&refs, loaded, &source, layout.windows))
}

fn add_cut(out: &mut Loaded, key: &RecordingKey, cut: Cut) {
    out.report.recordings += 1;
    out.report.dropped.add(&cut.dropped);
    if cut.too_short {
        out.report.too_short.push(key.id());
    }
    for w in cut.windows {
        let id = format!("{}_w{:05}", key.id(), w.index);
        match w.label {
            Some(label) => {
                out.report.windows += 1;
                let a = key.attributes();
                let meta = SampleMeta { id, label, subject: a.subject, trial: a.trial, scene: a.scene, session: a.session };
                out.samples.push((meta, w.clips));
            }
            None => {
                *out.report.unlabelled_kept.entry(key.subject()).or_default() += 1;
                out.unlabelled.push(UnlabelledWindow { id, attributes: key.attributes(), clips: w.clips });
            }
        }
    }
}
