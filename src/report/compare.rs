//! `cmkm compare`: the same runs from two results folders (two machines,
//! two versions) side by side: each run's headline metrics and their
//! difference, and the ratio of wall times.

use super::table::Table;
use crate::harness::store::{Hardware, RunRecordFile};
use anyhow::{bail, Context, Result};
use std::collections::BTreeMap;
use std::path::Path;

/// One finished run found under a results folder.
#[derive(Debug, Clone)]
pub struct FoundRun {
    pub id: String,
    pub seconds: f64,
    pub hardware: Hardware,
    /// Headline numbers by name (accuracy, f1_macro, retrieval mAP per
    /// setting, label-fraction mean).
    pub metrics: BTreeMap<String, f64>,
}

/// Finished runs under `root` (a results folder or a suite's folder),
/// keyed by "suite/label" so that runs match across versions whose run ids
/// differ.
pub fn find_runs(root: &Path) -> Result<BTreeMap<String, FoundRun>> {
    if !root.is_dir() {
        bail!("{}: not a folder", root.display());
    }
    let mut out = BTreeMap::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let record = dir.join("record.json");
        if record.is_file() {
            let rec: RunRecordFile =
                serde_json::from_str(&std::fs::read_to_string(&record)?).with_context(|| format!("{}: bad run record", record.display()))?;
            let suite = suite_key(root, &dir);
            out.insert(
                format!("{suite}{}", rec.label),
                FoundRun { id: rec.id, seconds: rec.seconds, hardware: rec.hardware, metrics: headline_metrics(&dir)? },
            );
            continue;
        }
        let entries = std::fs::read_dir(&dir).with_context(|| format!("{}: cannot list", dir.display()))?;
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().to_string();
            if e.path().is_dir() && !name.starts_with('.') && name != "data" {
                stack.push(e.path());
            }
        }
    }
    Ok(out)
}

/// The suite folder of `<suite>/runs/<id>` relative to the folder given on
/// the command line (`quick-utd/` under a results folder, nothing when a
/// suite's own folder was given), so that `results` matches `results` and
/// `results/quick-utd` matches any copy of it, whatever its name.
fn suite_key(root: &Path, run_dir: &Path) -> String {
    let suite = run_dir.parent().and_then(Path::parent).unwrap_or(run_dir);
    match suite.strip_prefix(root) {
        Ok(rel) if rel.as_os_str().is_empty() => String::new(),
        Ok(rel) => format!("{}/", rel.display()),
        Err(_) => String::new(),
    }
}

/// The headline metrics of a run folder: accuracy and macro F1
/// (classification), mAP per setting (retrieval), the main metric's mean
/// per fraction (label fractions), from whichever of those files it holds.
/// A file present but unreadable is an error naming it.
fn headline_metrics(dir: &Path) -> Result<BTreeMap<String, f64>> {
    let mut m = BTreeMap::new();
    if dir.join(crate::protocols::METRICS_FILE).is_file() {
        let metrics = crate::protocols::read_metrics(dir)?;
        m.insert("accuracy".to_string(), metrics.accuracy);
        m.insert("f1_macro".to_string(), metrics.f1_macro);
    }
    if dir.join(crate::protocols::retrieval::RETRIEVAL_FILE).is_file() {
        for (setting, r) in crate::protocols::retrieval::read_retrieval(dir)? {
            m.insert(format!("mAP {setting}"), r.mean_average_precision);
        }
    }
    if dir.join(crate::protocols::label_fractions::LABEL_FRACTIONS_FILE).is_file() {
        for s in crate::protocols::label_fractions::read_label_fractions(dir)?.summary {
            m.insert(format!("main @ {}%", super::suite_tables::fraction_label(s.fraction)), s.main_metric_mean);
        }
    }
    Ok(m)
}

/// The comparison: a table of every metric of every run found in both
/// folders, the largest absolute metric difference, and the runs found in
/// only one of them.
pub struct Comparison {
    pub table: Table,
    pub max_abs_diff: f64,
    pub only_a: Vec<String>,
    pub only_b: Vec<String>,
    pub hardware: (Option<Hardware>, Option<Hardware>),
    pub total_seconds: (f64, f64),
}

/// Compares the runs under two results folders.
pub fn compare(a: &Path, b: &Path) -> Result<Comparison> {
    let (ra, rb) = (find_runs(a)?, find_runs(b)?);
    let mut table = Table::new(&["run", "same id", "metric", "A", "B", "B - A", "seconds A", "seconds B", "time B/A"]);
    let mut max_abs_diff: f64 = 0.0;
    let mut total_seconds = (0.0, 0.0);
    for (key, x) in &ra {
        let Some(y) = rb.get(key) else { continue };
        total_seconds.0 += x.seconds;
        total_seconds.1 += y.seconds;
        let times = [format!("{:.2}", x.seconds), format!("{:.2}", y.seconds), format!("{:.3}", y.seconds / x.seconds.max(1e-9))];
        let same = if x.id == y.id { "yes" } else { "no" };
        let names: Vec<&String> = x.metrics.keys().chain(y.metrics.keys().filter(|k| !x.metrics.contains_key(*k))).collect();
        if names.is_empty() {
            table.push([vec![key.clone(), same.into(), "—".into(), "".into(), "".into(), "".into()], times.to_vec()].concat());
        }
        for name in names {
            let (va, vb) = (x.metrics.get(name), y.metrics.get(name));
            let cell = |v: Option<&f64>| v.map(|v| format!("{v:.6}")).unwrap_or_else(|| "missing".into());
            let diff = match (va, vb) {
                (Some(p), Some(q)) => {
                    max_abs_diff = max_abs_diff.max((q - p).abs());
                    format!("{:+.6}", q - p)
                }
                _ => {
                    max_abs_diff = f64::INFINITY;
                    "missing".into()
                }
            };
            table.push([vec![key.clone(), same.into(), name.clone(), cell(va), cell(vb), diff], times.to_vec()].concat());
        }
    }
    let only = |p: &BTreeMap<String, FoundRun>, q: &BTreeMap<String, FoundRun>| p.keys().filter(|k| !q.contains_key(*k)).cloned().collect::<Vec<_>>();
    let hw = |r: &BTreeMap<String, FoundRun>| r.values().next().map(|f| f.hardware.clone());
    Ok(Comparison { max_abs_diff, only_a: only(&ra, &rb), only_b: only(&rb, &ra), hardware: (hw(&ra), hw(&rb)), total_seconds, table })
}

/// A results folder as given on the command line, for messages.
pub fn describe_side(label: &str, path: &Path, hw: &Option<Hardware>) -> String {
    match hw {
        // `describe` names a GPU itself ("on GPU ...").
        Some(h) => format!("{label}: {} — {}{}", path.display(), h.describe(), if h.gpu.is_some() { "" } else { ", CPU backend" }),
        None => format!("{label}: {} — no finished runs", path.display()),
    }
}
