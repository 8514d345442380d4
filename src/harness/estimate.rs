//! Wall-time estimates for planned runs from recorded step timings: the
//! finished runs of every suite under the results folder and the timings
//! committed with reports (`reports/<suite>/timings.csv`), as seconds per
//! unit of work (epoch of training or fine-tuning; one retrieval), per step
//! kind and method. So `cmkm plan` can say how long a full suite will take
//! from a quick suite's timings on the same kind of machine. Each timing
//! keeps the thread count it ran with; an estimate for another count is
//! scaled by [`thread_scale`]. Timings of runs with the same units of work
//! (the same schedule) come first: a 100-epoch fine-tuning that stops early
//! runs at another mean rate per scheduled epoch than a 20-epoch one, and
//! a label-fraction sweep's coinciding subsets and early stopping differ
//! with its length too.

use super::plan::{PlannedRun, Step};
use super::steps::Work;
use super::store::RunRecordFile;
use super::workers::thread_scale;
use std::collections::BTreeMap;
use std::path::Path;

/// Seconds per unit of work, by (step kind, method), each with the thread
/// count it was timed with (0: unknown) and the run's units of work.
#[derive(Debug, Default)]
pub struct Timings {
    rates: BTreeMap<(String, String), Vec<Rate>>,
    /// Distinct CPUs the timings came from.
    pub cpus: Vec<String>,
}

impl Timings {
    /// Reads every recorded timing in the run store `results` (all suites) and
    /// `reports` (committed `timings.csv` files). Unreadable files are
    /// skipped: an estimate is a convenience, never a result.
    pub fn gather(results: &Path, reports: &Path) -> Self {
        let mut t = Timings::default();
        for run in subdirs(&results.join("runs")) {
            t.add_run(&run);
        }
        for suite in subdirs(reports) {
            t.add_csv(&suite.join("timings.csv"));
        }
        t
    }

    fn add(&mut self, step: &str, method: &str, units: f64, seconds: f64, cpu: &str, threads: usize) {
        if units > 0.0 && seconds.is_finite() && seconds >= 0.0 {
            self.rates.entry((step.to_string(), method.to_string())).or_default().push(Rate { seconds: seconds / units, threads, units });
            if !self.cpus.iter().any(|c| c == cpu) {
                self.cpus.push(cpu.to_string());
            }
        }
    }

    /// A finished run: its step from `plan.json`, its time from `record.json`.
    /// Timings only feed estimates: a run folder (of any suite under the
    /// results folder) whose files cannot be read gives none, so the
    /// estimate shows "?" rather than planning failing on another suite's
    /// damaged folder; no number stands in for it.
    fn add_run(&mut self, dir: &Path) {
        #[derive(serde::Deserialize)]
        struct PlanFile {
            step: Step,
        }
        let plan: Option<PlanFile> = crate::fsutil::read_json(&dir.join("plan.json")).ok();
        let record: Option<RunRecordFile> = crate::fsutil::read_json(&dir.join("record.json")).ok();
        if let (Some(plan), Some(record)) = (plan, record) {
            let w = plan.step.kind().work();
            self.add(w.kind, w.method, w.units, record.seconds, &record.hardware.cpu, record.hardware.threads);
        }
    }

    /// The rows of a committed report's `timings.csv` (rows that do not
    /// parse give no timing, as in [`Self::add_run`]; a missing thread count,
    /// from reports older than the column, is 0: "unknown").
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
    /// recorded rate x its units), else from the work its step says stands
    /// in for it ([`crate::harness::steps::RunStep::stand_in`]: a supervised
    /// label-fraction baseline never seen before, from the method's full
    /// training scaled by the subset sizes).
    pub fn estimate(&self, run: &PlannedRun, threads: usize) -> Option<f64> {
        let Work { kind, method, units } = run.step.kind().work();
        if let Some(rate) = self.rate(kind, method, threads, units) {
            return Some(units * rate);
        }
        let (stand_in, times) = run.step.kind().stand_in()?;
        Some(self.rate(stand_in.kind, stand_in.method, threads, stand_in.units)? * stand_in.units * times)
    }

    /// The mean rate of the timings of runs with these `units` of work if
    /// any, else of all; among those, of the ones taken with `threads`
    /// threads, else of all of them scaled to `threads`.
    fn rate(&self, kind: &str, method: &str, threads: usize, units: f64) -> Option<f64> {
        let all = self.rates.get(&(kind.to_string(), method.to_string()))?;
        let alike: Vec<&Rate> = all.iter().filter(|r| r.units == units).collect();
        let rates: Vec<&Rate> = if alike.is_empty() { all.iter().collect() } else { alike };
        let same: Vec<f64> = rates.iter().filter(|r| r.threads == threads).map(|r| r.seconds).collect();
        let scaled: Vec<f64> = if same.is_empty() { rates.iter().map(|r| r.seconds * thread_scale(r.threads, threads)).collect() } else { same };
        Some(scaled.iter().sum::<f64>() / scaled.len() as f64)
    }
}

/// One recorded timing: seconds per unit of work, on `threads` threads
/// (0: unknown), of a run with `units` units of work.
#[derive(Debug, Clone, Copy)]
struct Rate {
    seconds: f64,
    threads: usize,
    units: f64,
}

fn subdirs(dir: &Path) -> Vec<std::path::PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else { return vec![] };
    let mut out: Vec<_> =
        entries.flatten().map(|e| e.path()).filter(|p| p.is_dir() && !p.file_name().is_some_and(|n| n.to_string_lossy().starts_with('.'))).collect();
    out.sort();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fine_tune(epochs: usize) -> PlannedRun {
        let step = Step::FineTune(crate::harness::steps::FineTuneStep {
            method: "m".into(),
            encoders: "e".into(),
            modalities: vec!["x".into()],
            epochs,
            head: Default::default(),
            frozen: Default::default(),
        });
        PlannedRun { id: "r".into(), label: "fine-tune m".into(), method: "m".into(), also: vec![], seed: 1, step, depends_on: vec![] }
    }

    #[test]
    fn runs_with_the_same_schedule_set_the_rate_and_others_fall_back_to_all() {
        let mut t = Timings::default();
        t.add("fine_tune", "m", 20.0, 20.0, "cpu", 1); // 1 s per epoch, 20 epochs
        t.add("fine_tune", "m", 100.0, 30.0, "cpu", 1); // stopped early: 0.3 s per scheduled epoch
        assert_eq!(t.estimate(&fine_tune(100), 1), Some(30.0));
        assert_eq!(t.estimate(&fine_tune(20), 1), Some(20.0));
        // No run of 50 epochs: the mean rate of both, 0.65 s.
        assert!((t.estimate(&fine_tune(50), 1).unwrap() - 32.5).abs() < 1e-9);
        // Among alike runs, the thread count still picks, then scales.
        t.add("fine_tune", "m", 100.0, 50.0, "cpu", 2);
        assert_eq!(t.estimate(&fine_tune(100), 2), Some(50.0));
        assert_eq!(t.estimate(&fine_tune(100), 1), Some(30.0));
    }

    /// A supervised label-fraction baseline with no timing of its own is
    /// its method's full training per repetition, scaled by the fractions.
    #[test]
    fn a_supervised_baseline_never_run_is_estimated_from_its_training() {
        let config: crate::methods::config::MethodConfig = serde_yaml::from_str(
            "name: sup\nkind: supervised\nmodalities: [x]\nencoders: {x: {type: cnn1d}}\nschedule: {epochs: 10, batch_size: 4, lr: 0.001, plateau_patience: 5}\n",
        )
        .unwrap();
        let step = Step::SupervisedFractions(crate::harness::steps::SupervisedFractionsStep {
            method: "sup".into(),
            config,
            fractions: vec![0.1, 0.5],
            repetitions: 3,
        });
        let run = PlannedRun { id: "r".into(), label: "fractions sup".into(), method: "sup".into(), also: vec![], seed: 1, step, depends_on: vec![] };
        let mut t = Timings::default();
        assert_eq!(t.estimate(&run, 1), None);
        // A training of 10 epochs at 2 s per epoch: 3 repetitions x
        // (0.1 + 0.5) x 10 epochs x 2 s.
        t.add("train", "sup", 10.0, 20.0, "cpu", 1);
        assert!((t.estimate(&run, 1).unwrap() - 36.0).abs() < 1e-9);
        // A timing of its own kind wins.
        t.add("supervised_fractions", "sup", 60.0, 6.0, "cpu", 1);
        assert_eq!(t.estimate(&run, 1), Some(6.0));
    }
}
