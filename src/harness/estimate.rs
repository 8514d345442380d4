//! Wall-time estimates for planned runs from recorded step timings: the
//! finished runs of every suite under the results folder and the timings
//! committed with reports (`reports/<suite>/timings.csv`), as seconds per
//! unit of work (epoch of training or fine-tuning; one retrieval), per step
//! kind and method. So `cmkm plan` can say how long a full suite will take
//! from a quick suite's timings on the same kind of machine. Each timing
//! keeps the thread count it ran with; an estimate for another count is
//! scaled by [`thread_scale`].

use super::plan::{PlannedRun, Step};
use super::store::RunRecordFile;
use super::workers::thread_scale;
use std::collections::BTreeMap;
use std::path::Path;

/// Seconds per unit of work, by (step kind, method), each with the thread
/// count it was timed with (0: unknown).
#[derive(Debug, Default)]
pub struct Timings {
    rates: BTreeMap<(String, String), Vec<(f64, usize)>>,
    /// Distinct CPUs the timings came from.
    pub cpus: Vec<String>,
}

/// A run's step kind, method and units of work.
pub fn work(step: &Step) -> (&'static str, &str, f64) {
    match step {
        Step::Train { method, config, .. } => ("train", method, config.schedule.epochs as f64),
        Step::FineTune { method, epochs, .. } => ("fine_tune", method, *epochs as f64),
        Step::Retrieval { method, .. } => ("retrieval", method, 1.0),
        Step::LabelFractions { method, epochs, fractions, repetitions, .. } => {
            ("label_fractions", method, (*epochs * fractions.len()) as f64 * *repetitions as f64)
        }
        Step::SupervisedFractions { method, config, fractions, repetitions } => {
            ("supervised_fractions", method, (config.schedule.epochs * fractions.len()) as f64 * *repetitions as f64)
        }
        Step::RandomFractions { method, epochs, fractions, repetitions, .. } => {
            ("random_fractions", method, (*epochs * fractions.len()) as f64 * *repetitions as f64)
        }
    }
}

impl Timings {
    /// Reads every recorded timing under `results` (all suites) and
    /// `reports` (committed `timings.csv` files). Unreadable files are
    /// skipped: an estimate is a convenience, never a result.
    pub fn gather(results: &Path, reports: &Path) -> Self {
        let mut t = Timings::default();
        for suite in subdirs(results) {
            for run in subdirs(&suite.join("runs")) {
                t.add_run(&run);
            }
        }
        for suite in subdirs(reports) {
            t.add_csv(&suite.join("timings.csv"));
        }
        t
    }

    fn add(&mut self, step: &str, method: &str, units: f64, seconds: f64, cpu: &str, threads: usize) {
        if units > 0.0 && seconds.is_finite() && seconds >= 0.0 {
            self.rates.entry((step.to_string(), method.to_string())).or_default().push((seconds / units, threads));
            if !self.cpus.iter().any(|c| c == cpu) {
                self.cpus.push(cpu.to_string());
            }
        }
    }

    /// A finished run: its step from `plan.json`, its time from `record.json`.
    fn add_run(&mut self, dir: &Path) {
        #[derive(serde::Deserialize)]
        struct PlanFile {
            step: Step,
        }
        let read = |name: &str| std::fs::read_to_string(dir.join(name)).ok();
        let plan: Option<PlanFile> = read("plan.json").and_then(|t| serde_json::from_str(&t).ok());
        let record: Option<RunRecordFile> = read("record.json").and_then(|t| serde_json::from_str(&t).ok());
        if let (Some(plan), Some(record)) = (plan, record) {
            let (kind, method, units) = work(&plan.step);
            self.add(kind, method, units, record.seconds, &record.hardware.cpu, record.hardware.threads);
        }
    }

    fn add_csv(&mut self, path: &Path) {
        let Ok(mut reader) = csv::Reader::from_path(path) else { return };
        let Ok(headers) = reader.headers().cloned() else { return };
        let col = |name: &str| headers.iter().position(|h| h == name);
        let (Some(step), Some(method), Some(epochs), Some(seconds), Some(cpu)) = (col("step"), col("method"), col("epochs"), col("seconds"), col("cpu")) else {
            return;
        };
        let threads = col("threads");
        for row in reader.records().flatten() {
            let units = if &row[step] == "retrieval" { Some(1.0) } else { row[epochs].parse().ok() };
            if let (Some(units), Ok(s)) = (units, row[seconds].parse::<f64>()) {
                let threads = threads.and_then(|t| row[t].parse::<f64>().ok()).map_or(0, |t| t as usize);
                self.add(&row[step], &row[method], units, s, &row[cpu], threads);
            }
        }
    }

    /// Estimated seconds for a planned run on `threads` threads (mean
    /// recorded rate x its units). A supervised label-fraction baseline
    /// never seen before is estimated from the method's full training,
    /// scaled by the subset sizes.
    pub fn estimate(&self, run: &PlannedRun, threads: usize) -> Option<f64> {
        let (kind, method, units) = work(&run.step);
        if let Some(rate) = self.rate(kind, method, threads) {
            return Some(units * rate);
        }
        match &run.step {
            Step::SupervisedFractions { config, fractions, repetitions, .. } => {
                Some(self.rate("train", method, threads)? * config.schedule.epochs as f64 * *repetitions as f64 * fractions.iter().sum::<f64>())
            }
            _ => None,
        }
    }

    /// The mean rate of the timings taken with `threads` threads, else of
    /// all of them scaled to `threads`.
    fn rate(&self, kind: &str, method: &str, threads: usize) -> Option<f64> {
        let rates = self.rates.get(&(kind.to_string(), method.to_string()))?;
        let same: Vec<f64> = rates.iter().filter(|r| r.1 == threads).map(|r| r.0).collect();
        let scaled: Vec<f64> = if same.is_empty() { rates.iter().map(|&(r, t)| r * thread_scale(t, threads)).collect() } else { same };
        Some(scaled.iter().sum::<f64>() / scaled.len() as f64)
    }
}

fn subdirs(dir: &Path) -> Vec<std::path::PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else { return vec![] };
    let mut out: Vec<_> =
        entries.flatten().map(|e| e.path()).filter(|p| p.is_dir() && !p.file_name().is_some_and(|n| n.to_string_lossy().starts_with('.'))).collect();
    out.sort();
    out
}
