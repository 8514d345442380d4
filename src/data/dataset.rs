//! Loading a declared dataset into memory: discovery, parallel reading of
//! every file, shape and finiteness checks, and one-time preprocessing.

use crate::data::clip::{clip_from_layout, count_non_finite, Clip};
use crate::data::declaration::{DatasetDecl, Format, ModalityDecl, ModalityKind};
use crate::data::layouts::{discover, Dropped, Failure};
use crate::data::recordings::{UnlabelledWindow, WindowReport};
pub use crate::data::sample::SampleMeta;
use crate::data::splits::Split;
use crate::data::standardize::Standardization;
use crate::data::transforms::apply_steps;
use crate::data::{formats, synth};
use anyhow::{bail, Result};
use rayon::prelude::*;
use serde::Serialize;
use std::path::{Path, PathBuf};

/// A file holding non-finite values.
#[derive(Debug, Clone, Serialize)]
pub struct NonFinite {
    pub file: PathBuf,
    pub count: usize,
}

/// A dataset in memory: raw clips of every usable sample, per modality.
#[derive(Debug)]
pub struct Dataset {
    pub decl: DatasetDecl,
    /// Declarations of the loaded modalities, in the requested order.
    pub modalities: Vec<ModalityDecl>,
    pub meta: Vec<SampleMeta>,
    /// `clips[m][i]`: modality `m` of sample `i`, canonical (T, J, C).
    pub clips: Vec<Vec<Clip>>,
    /// Samples missing from some modality.
    pub dropped: Vec<Dropped>,
    /// Files that could not be loaded (their samples are not in `meta`).
    pub failed: Vec<Failure>,
    /// Files in modality folders that are not data files.
    pub ignored: Vec<PathBuf>,
    /// Loaded files holding NaN or infinite values.
    pub non_finite: Vec<NonFinite>,
    /// Windows without a label, for pre-training only (format `recordings`
    /// with `windows: {unlabelled: pretrain}`): never in `meta`, so never in
    /// a split, a label fraction or an evaluation.
    pub unlabelled: Vec<UnlabelledWindow>,
    /// What cutting recordings into windows did (format `recordings`).
    pub windows: Option<WindowReport>,
}

/// A dataset's clips ready for training under one split: preprocessed,
/// standardised with statistics of the split's training samples, and
/// followed by the unlabelled pre-training windows of the training split.
#[derive(Debug)]
pub struct Prepared {
    /// `clips[m][i]`: samples `0..meta.len()`, then `pretrain_only`.
    pub clips: Vec<Vec<Clip>>,
    /// Indices (past the labelled samples) of unlabelled training windows.
    pub pretrain_only: Vec<usize>,
    /// The fitted statistics, per standardised modality.
    pub standardization: Vec<Standardization>,
}

impl Dataset {
    /// Loads the named modalities (all declared ones when empty), reading the
    /// files in parallel. Per-file problems are collected, not fatal: see
    /// [`Dataset::ensure_clean`] for callers that need every file.
    pub fn load(decl: &DatasetDecl, modalities: &[String]) -> Result<Self> {
        let mods: Vec<&ModalityDecl> =
            if modalities.is_empty() { decl.modalities.iter().collect() } else { modalities.iter().map(|n| decl.modality(n)).collect::<Result<_>>()? };
        if let Some(s) = &decl.synthetic {
            let layout = match decl.format {
                Format::Manifest => synth::Layout::Manifest,
                Format::UtdMhad => synth::Layout::UtdMhad,
                Format::Recordings => synth::Layout::Hapt,
                other => anyhow::bail!("dataset '{}': `synthetic` data is written in the utd-mhad, manifest or recordings format, not {other:?}", decl.name),
            };
            synth::ensure_generated(&decl.root, s.seed, layout)?;
        }
        if !decl.root.is_dir() {
            bail!("{}: dataset root does not exist or is not a directory", decl.root.display());
        }
        if decl.format == Format::Recordings {
            return Self::load_recordings(decl, mods);
        }
        let found = discover(decl, &mods)?;
        let loaded: Vec<Result<Vec<Clip>, Failure>> =
            found.entries.par_iter().map(|e| e.files.iter().zip(&mods).map(|(f, m)| load_clip(decl.format, f, m)).collect()).collect();
        let mut ds = Dataset {
            decl: decl.clone(),
            modalities: mods.iter().map(|m| (*m).clone()).collect(),
            meta: vec![],
            clips: vec![vec![]; mods.len()],
            dropped: found.dropped,
            failed: found.failed,
            ignored: found.ignored,
            non_finite: vec![],
            unlabelled: vec![],
            windows: None,
        };
        for (entry, result) in found.entries.into_iter().zip(loaded) {
            match result {
                Ok(clips) => {
                    for ((m, clip), file) in clips.into_iter().enumerate().zip(&entry.files) {
                        let count = count_non_finite(&clip);
                        if count > 0 {
                            ds.non_finite.push(NonFinite { file: file.clone(), count });
                        }
                        ds.clips[m].push(clip);
                    }
                    ds.meta.push(entry.meta);
                }
                Err(f) => ds.failed.push(f),
            }
        }
        Ok(ds)
    }

    /// Cuts a dataset of recordings into windows (non-finite values fail
    /// their recording there, naming the file and row).
    fn load_recordings(decl: &DatasetDecl, mods: Vec<&ModalityDecl>) -> Result<Self> {
        let loaded: Vec<usize> = mods.iter().map(|m| decl.modalities.iter().position(|d| d.name == m.name).expect("a declared modality")).collect();
        let mut cut = crate::data::recordings::load(decl, &loaded)?;
        // The order of every other format; a million windows sort in a
        // fraction of a second.
        cut.samples.par_sort_by(|(a, _), (b, _)| a.order(b));
        let mut clips = vec![Vec::with_capacity(cut.samples.len()); mods.len()];
        let mut meta = Vec::with_capacity(cut.samples.len());
        for (m, sample) in cut.samples {
            for (k, clip) in sample.into_iter().enumerate() {
                clips[k].push(clip);
            }
            meta.push(m);
        }
        Ok(Dataset {
            decl: decl.clone(),
            modalities: mods.iter().map(|m| (*m).clone()).collect(),
            meta,
            clips,
            dropped: cut.missing,
            failed: cut.failed,
            ignored: vec![],
            non_finite: vec![],
            unlabelled: cut.unlabelled,
            windows: Some(cut.report),
        })
    }

    /// Number of usable samples.
    pub fn len(&self) -> usize {
        self.meta.len()
    }

    /// True when no sample is usable.
    pub fn is_empty(&self) -> bool {
        self.meta.is_empty()
    }

    /// Errors unless every file loaded and holds only finite values: training
    /// must never silently run on a subset or on NaNs.
    pub fn ensure_clean(&self) -> Result<()> {
        if let Some(f) = self.failed.first() {
            bail!("{} file(s) failed to load; first: {}: {}", self.failed.len(), f.file.display(), f.reason);
        }
        if let Some(f) = self.non_finite.first() {
            bail!("{} file(s) hold NaN/Inf values; first: {} ({} values)", self.non_finite.len(), f.file.display(), f.count);
        }
        if self.is_empty() {
            bail!("{}: no usable samples", self.decl.root.display());
        }
        Ok(())
    }

    /// Index of a loaded modality by name.
    pub fn modality_index(&self, name: &str) -> Result<usize> {
        match self.modalities.iter().position(|m| m.name == name) {
            Some(i) => Ok(i),
            None => bail!("modality '{name}' was not loaded"),
        }
    }

    /// Applies each modality's declared preprocessing to every sample (in
    /// parallel), once: per modality, canonical time-major clips ready for
    /// augmentation and batching.
    pub fn preprocess(&self) -> Vec<Vec<Clip>> {
        self.modalities.iter().zip(&self.clips).map(|(m, clips)| preprocess_clips(m, clips.par_iter())).collect()
    }

    /// The `(T, J, C)` dimensions of each loaded modality's clips after
    /// preprocessing, from its first sample alone (`None` without samples):
    /// what sizes models need, without preprocessing the whole dataset.
    pub fn preprocessed_dims(&self) -> Option<Vec<(usize, usize, usize)>> {
        self.modalities.iter().zip(&self.clips).map(|(m, clips)| Some(preprocess_clips(m, clips.get(..1)?.par_iter())[0].dim())).collect()
    }

    /// The clips of every sample ready for training under `split`:
    /// preprocessed, then standardised where a modality declares it with
    /// statistics of `split.train` alone (so validation and test data never
    /// shape a training input), then the unlabelled windows of the training
    /// split's recordings appended, preprocessed and standardised alike.
    pub fn prepare(&self, split: &Split, protocol: &crate::data::splits::ProtocolDecl) -> Result<Prepared> {
        let mut pretrain = vec![];
        for w in &self.unlabelled {
            if protocol.trains_on(&w.id, &w.attributes)? {
                pretrain.push(w);
            }
        }
        let n = self.meta.len();
        let mut clips = vec![];
        let mut standardization = vec![];
        for (k, m) in self.modalities.iter().enumerate() {
            let mut all = preprocess_clips(m, self.clips[k].par_iter().chain(pretrain.par_iter().map(|w| &w.clips[k])));
            if let Some(per) = m.standardize {
                let stats = Standardization::fit(&m.name, per, &all, &split.train)?;
                all.par_iter_mut().for_each(|c| stats.apply(c));
                standardization.push(stats);
            }
            clips.push(all);
        }
        Ok(Prepared { clips, pretrain_only: (n..n + pretrain.len()).collect(), standardization })
    }
}

/// Applies `m`'s declared preprocessing to each clip, in parallel.
fn preprocess_clips<'a>(m: &ModalityDecl, clips: impl IndexedParallelIterator<Item = &'a Clip>) -> Vec<Clip> {
    clips
        .enumerate()
        .map(|(i, clip)| {
            // Preprocessing is deterministic; the stream only exists to
            // satisfy the pipeline's signature.
            let mut rng = crate::rng::stream(0, "preprocess", i as u64);
            apply_steps(&m.preprocess, clip.clone(), &mut rng)
        })
        .collect()
}

/// Reads one file of modality `m` and checks its shape.
fn load_clip(format: Format, file: &Path, m: &ModalityDecl) -> Result<Clip, Failure> {
    let fail = |reason: String| Failure { file: file.to_path_buf(), reason };
    let variable = m.variable.as_deref();
    let array = match (format, m.kind) {
        (Format::CzuMhad, ModalityKind::Series) => formats::czu::read_sensors(file, variable.unwrap_or("sensor")),
        (Format::CzuMhad, ModalityKind::Skeleton) => formats::czu::read_skeleton(file, variable.unwrap_or("skeleton"), m.joint_count()),
        _ => formats::read_array(file, variable),
    };
    let array = array.map_err(|e| Failure::from_error(file, &e))?;
    let clip = clip_from_layout(array, &m.layout).map_err(|e| fail(e.to_string()))?;
    let (t, j, c) = clip.dim();
    if j != m.joint_count() || c != m.channels {
        let found = if m.joints.is_some() { format!("{j} joints x {c} channels") } else { format!("{c} channels") };
        let want = if m.joints.is_some() { format!("{} joints x {} channels", m.joint_count(), m.channels) } else { format!("{} channels", m.channels) };
        return Err(fail(format!("modality '{}': found {found}, declared {want} (layout {})", m.name, m.layout)));
    }
    if t < 2 {
        return Err(fail(format!("modality '{}': sequence has {t} time steps (need at least 2)", m.name)));
    }
    Ok(clip)
}
