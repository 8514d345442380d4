//! `cmkm data inspect`: what a dataset holds and what is wrong with it.

use crate::data::dataset::NonFinite;
use crate::data::declaration::{Format, ModalityKind};
use crate::data::layouts::{Dropped, Failure};
use crate::data::recordings::WindowReport;
use crate::data::Dataset;
use serde::Serialize;
use std::collections::BTreeMap;
use std::fmt::Write;
use std::path::PathBuf;

/// Shapes and health of one modality.
#[derive(Debug, Serialize)]
pub struct ModalityReport {
    pub name: String,
    pub kind: ModalityKind,
    pub channels: usize,
    pub joints: usize,
    /// Shortest and longest sequence, in time steps.
    pub frames_min: usize,
    pub frames_max: usize,
    pub non_finite_values: usize,
}

/// Sample counts of one protocol, or why it cannot be split.
#[derive(Debug, Serialize)]
pub struct ProtocolReport {
    /// Split name -> samples.
    pub samples: BTreeMap<String, usize>,
    /// Split name -> subjects present.
    pub subjects: BTreeMap<String, Vec<u32>>,
    /// Split name -> samples per class, in class order.
    pub per_class: BTreeMap<String, Vec<usize>>,
    pub error: Option<String>,
}

/// The whole report; `--json` prints it as is.
#[derive(Debug, Serialize)]
pub struct InspectReport {
    pub dataset: String,
    pub format: Format,
    pub root: PathBuf,
    /// Usable samples: present in every modality and loaded without error.
    pub samples: usize,
    pub per_class: BTreeMap<String, usize>,
    pub per_subject: BTreeMap<u32, usize>,
    pub modalities: Vec<ModalityReport>,
    pub protocols: BTreeMap<String, ProtocolReport>,
    pub dropped: Vec<Dropped>,
    pub ignored: Vec<PathBuf>,
    pub non_finite: Vec<NonFinite>,
    pub failed: Vec<Failure>,
    /// Recordings read, windows kept and dropped by reason (format
    /// `recordings`; its samples are the labelled windows).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub windows: Option<WindowReport>,
}

impl InspectReport {
    /// Builds the report of a loaded dataset.
    pub fn new(ds: &Dataset) -> Self {
        let classes = &ds.decl.classes;
        let mut per_class: BTreeMap<String, usize> = BTreeMap::new();
        let mut per_subject = BTreeMap::new();
        for m in &ds.meta {
            *per_class.entry(format!("{:02} {}", m.label + 1, classes[m.label])).or_default() += 1;
            *per_subject.entry(m.subject).or_default() += 1;
        }
        let modalities = ds
            .modalities
            .iter()
            .zip(&ds.clips)
            .map(|(m, clips)| ModalityReport {
                name: m.name.clone(),
                kind: m.kind,
                channels: m.channels,
                joints: m.joint_count(),
                // A modality without samples reports 0 frames (its sample count says 0 too).
                frames_min: clips.iter().map(|c| c.dim().0).min().unwrap_or(0),
                frames_max: clips.iter().map(|c| c.dim().0).max().unwrap_or(0),
                non_finite_values: clips.iter().map(crate::data::clip::count_non_finite).sum(),
            })
            .collect();
        let protocols = ds.decl.protocols.iter().map(|(name, p)| (name.clone(), protocol_report(ds, p))).collect();
        InspectReport {
            dataset: ds.decl.name.clone(),
            format: ds.decl.format,
            root: ds.decl.root.clone(),
            samples: ds.len(),
            per_class,
            per_subject,
            modalities,
            protocols,
            dropped: ds.dropped.clone(),
            ignored: ds.ignored.clone(),
            non_finite: ds.non_finite.clone(),
            failed: ds.failed.clone(),
            windows: ds.windows.clone(),
        }
    }

    /// True when something is wrong: failed files, non-finite values or a
    /// protocol that cannot be split.
    pub fn has_problems(&self) -> bool {
        !self.failed.is_empty() || !self.non_finite.is_empty() || self.protocols.values().any(|p| p.error.is_some())
    }

    /// Human-readable rendering.
    pub fn to_text(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(s, "dataset {} ({:?}) at {}", self.dataset, self.format, self.root.display());
        let _ = writeln!(s, "usable samples: {}", self.samples);
        if let Some(w) = &self.windows {
            windows_text(&mut s, w);
        }
        for m in &self.modalities {
            let _ = writeln!(
                s,
                "  {:<10} {:?}: {} channels x {} joints, {}..{} time steps, {} non-finite values",
                m.name, m.kind, m.channels, m.joints, m.frames_min, m.frames_max, m.non_finite_values
            );
        }
        let _ = writeln!(s, "per subject: {}", join(self.per_subject.iter().map(|(k, v)| format!("s{k}={v}"))));
        let _ = writeln!(s, "per class:");
        for (k, v) in &self.per_class {
            let _ = writeln!(s, "  {k:<22} {v}");
        }
        for (name, p) in &self.protocols {
            match &p.error {
                Some(e) => {
                    let _ = writeln!(s, "protocol {name}: ERROR {e}");
                }
                None => {
                    let parts = p.samples.iter().map(|(k, v)| format!("{k}={v} (subjects {:?})", p.subjects[k]));
                    let _ = writeln!(s, "protocol {name}: {}", join(parts));
                }
            }
        }
        let missing = if self.windows.is_some() { "recordings dropped (missing a modality)" } else { "dropped (missing a modality)" };
        list(&mut s, missing, self.dropped.iter().map(|d| format!("{}: missing {}", d.id, d.missing.join(", "))));
        list(&mut s, "ignored files", self.ignored.iter().map(|p| p.display().to_string()));
        list(&mut s, "files with NaN/Inf", self.non_finite.iter().map(|n| format!("{}: {} values", n.file.display(), n.count)));
        list(&mut s, "FAILED files", self.failed.iter().map(|f| format!("{}: {}", f.file.display(), f.reason)));
        s
    }
}

fn protocol_report(ds: &Dataset, p: &crate::data::splits::ProtocolDecl) -> ProtocolReport {
    let mut r = ProtocolReport { samples: BTreeMap::new(), subjects: BTreeMap::new(), per_class: BTreeMap::new(), error: None };
    match p.split(&ds.meta) {
        Err(e) => r.error = Some(e.to_string()),
        Ok(split) => {
            for (name, idx) in split.named() {
                let mut subjects: Vec<u32> = idx.iter().map(|&i| ds.meta[i].subject).collect();
                subjects.sort_unstable();
                subjects.dedup();
                let mut counts = vec![0; ds.decl.classes.len()];
                idx.iter().for_each(|&i| counts[ds.meta[i].label] += 1);
                r.samples.insert(name.into(), idx.len());
                r.subjects.insert(name.into(), subjects);
                r.per_class.insert(name.into(), counts);
            }
        }
    }
    r
}

fn windows_text(s: &mut String, w: &WindowReport) {
    let unlabelled: usize = w.unlabelled_kept.values().sum();
    let _ = writeln!(s, "recordings read: {}; labelled windows: {}; unlabelled windows kept for pre-training: {unlabelled}", w.recordings, w.windows);
    if unlabelled > 0 {
        let _ = writeln!(s, "  unlabelled per subject: {}", join(w.unlabelled_kept.iter().map(|(k, v)| format!("s{k}={v}"))));
    }
    let d = &w.dropped;
    let _ = writeln!(s, "windows dropped: {} (mixed labels {}, gap {}, unlabelled {})", d.total(), d.mixed_labels, d.gap, d.unlabelled);
    if !w.too_short.is_empty() {
        let _ = writeln!(s, "recordings shorter than one window ({}): {}", w.too_short.len(), w.too_short.join(", "));
    }
    if !w.label_files.is_empty() {
        let _ = writeln!(s, "interval files: {}", join(w.label_files.iter().map(|p| p.display().to_string())));
    }
}

fn join(items: impl Iterator<Item = String>) -> String {
    items.collect::<Vec<_>>().join(", ")
}

fn list(s: &mut String, title: &str, items: impl ExactSizeIterator<Item = String>) {
    if items.len() == 0 {
        return;
    }
    let _ = writeln!(s, "{title} ({}):", items.len());
    for item in items {
        let _ = writeln!(s, "  {item}");
    }
}
