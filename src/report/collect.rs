//! Reading a suite's finished runs from the run store into long-format
//! frames: one row per evaluated number, labelled with the method,
//! approach, modality group and seed it belongs to.

use super::frame::{Frame, FrameBuilder};
use crate::data::declaration::MainMetric;
use crate::harness::runner::Prepared;
use crate::harness::steps::{Results, Step};
use crate::harness::store::RunRecordFile;
use anyhow::{bail, Context, Result};
use std::path::PathBuf;

/// The frames a report is built from.
pub struct Collected {
    /// Classification results (fine-tuning and supervised training): method,
    /// approach, modality, seed, run, accuracy, f1_macro, main.
    pub classification: Frame,
    /// Retrieval: method, approach, seed, setting, p_at_1, p_at_5, p_at_10, map.
    pub retrieval: Frame,
    /// Label fractions: method, approach, modality, seed, fraction, repetition, main.
    pub fractions: Frame,
    /// (fraction, smaller fraction) pairs whose subsets coincided, so the
    /// result of the smaller one was reused.
    pub coinciding: Vec<(f64, f64)>,
    /// SSL training curves: method, seed, epoch, train_loss.
    pub curves: Frame,
    /// Every finished run: run, label, step, method, seed, seconds, epochs.
    pub timings: Frame,
    /// Planned runs not finished yet, and those that failed.
    pub missing: usize,
    pub failed: Vec<String>,
    /// Each distinct machine (and thread count, version) the finished runs
    /// ran on, in order of first appearance, with its number of runs: a
    /// suite carried across sittings may have run on several.
    pub machines: Vec<MachineRuns>,
}

/// One machine of [`Collected::machines`] and how many runs it finished.
#[derive(Debug, Clone, serde::Serialize)]
pub struct MachineRuns {
    #[serde(flatten)]
    pub hardware: crate::harness::store::Hardware,
    pub runs: usize,
}

/// The distinct machines of some runs' `hardware`, in order of first appearance.
fn machines<'a>(hardware: impl IntoIterator<Item = &'a crate::harness::store::Hardware>) -> Vec<MachineRuns> {
    let mut machines: Vec<MachineRuns> = vec![];
    for h in hardware {
        match machines.iter_mut().find(|m| m.hardware == *h) {
            Some(m) => m.runs += 1,
            None => machines.push(MachineRuns { hardware: h.clone(), runs: 1 }),
        }
    }
    machines
}

/// One finished run with what the report needs to label it.
struct Finished<'a> {
    id: &'a str,
    /// The run name it is reported under (a sweep variant's, for one).
    method: &'a str,
    /// Whether `method` is the run's own rather than one in its `also`
    /// (timings and machines count each run once).
    primary: bool,
    seed: u64,
    step: &'a Step,
    dir: PathBuf,
    record: RunRecordFile,
}

/// Display name of a method's approach: the suite's `approach`, or the
/// paper's name for its kind.
pub fn approach(p: &Prepared, method: &str) -> String {
    if let Some(a) = p.suite.entry(method).and_then(|m| m.approach.clone()) {
        return a;
    }
    // Every suite method's kind was checked when the suite loaded; "?" is unreachable.
    let config = p.suite.methods.get(method).or_else(|| p.suite.sweeps.get(method).map(|s| &s.base));
    config.and_then(|m| m.method().ok()).map_or("?", |m| m.display_name()).to_string()
}

/// The paper's modality group: the modality's name capitalised, or
/// `Multimodal` for more than one.
pub fn modality_group(modalities: &[String]) -> String {
    match modalities {
        [one] => {
            let mut c = one.chars();
            c.next().map(|f| f.to_uppercase().collect::<String>() + c.as_str()).unwrap_or_default()
        }
        _ => "Multimodal".to_string(),
    }
}

/// Collects the finished runs of a prepared suite.
pub fn collect(p: &Prepared) -> Result<Collected> {
    let mut finished = vec![];
    let mut failed = vec![];
    let mut missing = 0;
    for run in &p.runs {
        if p.store.is_done(&run.id) {
            let dir = p.store.dir(&run.id);
            let record: RunRecordFile = crate::fsutil::read_json(&dir.join("record.json"))?;
            for (k, method) in std::iter::once(&run.method).chain(&run.also).enumerate() {
                finished.push(Finished { id: &run.id, method, primary: k == 0, seed: run.seed, step: &run.step, dir: dir.clone(), record: record.clone() });
            }
        } else {
            missing += 1;
            if p.store.failure(&run.id).is_some() {
                failed.push(run.label.clone());
            }
        }
    }
    let (fractions, coinciding) = fractions(p, &finished)?;
    Ok(Collected {
        classification: classification(p, &finished, p.dataset.decl.main_metric)?,
        retrieval: retrieval(p, &finished)?,
        fractions,
        coinciding,
        curves: curves(p, &finished)?,
        timings: timings(&finished)?,
        missing,
        failed,
        machines: machines(finished.iter().filter(|f| f.primary).map(|f| &f.record.hardware)),
    })
}

fn classification(p: &Prepared, runs: &[Finished], main_metric: MainMetric) -> Result<Frame> {
    let mut c = FrameBuilder::default();
    for f in runs {
        let Results::Classification { modalities } = f.step.kind().results() else { continue };
        let method = f.method;
        let m = crate::protocols::read_metrics(&f.dir)?;
        let n = p.dataset.decl.classes.len();
        if m.confusion.len() != n || m.confusion.iter().any(|row| row.len() != n) {
            bail!("{}: the confusion matrix is not {n} x {n} (the dataset's classes)", f.dir.join(crate::protocols::METRICS_FILE).display());
        }
        c.text("method", method);
        c.text("approach", approach(p, method));
        c.text("modality", modality_group(modalities));
        c.text("run", f.id);
        c.number("seed", f.seed as f64);
        c.number("accuracy", m.accuracy);
        c.number("f1_macro", m.f1_macro);
        c.number("main", m.main(main_metric));
        c.number("validation", crate::protocols::read_validation(&f.dir)?.unwrap_or(f64::NAN));
    }
    c.build(&["method", "approach", "modality", "run"], &["seed", "accuracy", "f1_macro", "main", "validation"])
}

fn retrieval(p: &Prepared, runs: &[Finished]) -> Result<Frame> {
    let mut c = FrameBuilder::default();
    for f in runs {
        let Results::Retrieval = f.step.kind().results() else { continue };
        let method = f.method;
        for (setting, m) in crate::protocols::retrieval::read_retrieval(&f.dir)? {
            c.text("method", method);
            c.text("approach", approach(p, method));
            c.text("setting", setting);
            c.number("seed", f.seed as f64);
            c.number("p_at_1", m.precision_at_1);
            c.number("p_at_5", m.precision_at_5);
            c.number("p_at_10", m.precision_at_10);
            c.number("map", m.mean_average_precision);
        }
    }
    c.build(&["method", "approach", "setting"], &["seed", "p_at_1", "p_at_5", "p_at_10", "map"])
}

/// The label-fraction frame, and every (fraction, same_subset_as) pair the
/// runs recorded (fractions whose subsets coincided), read in one pass.
fn fractions(p: &Prepared, runs: &[Finished]) -> Result<(Frame, Vec<(f64, f64)>)> {
    let mut c = FrameBuilder::default();
    let mut pairs: Vec<(f64, f64)> = vec![];
    for f in runs {
        let method = f.method;
        let Results::LabelFractions { modalities, random_init, .. } = f.step.kind().results() else { continue };
        let approach_name = if random_init { "Random init".to_string() } else { approach(p, method) };
        for r in crate::protocols::label_fractions::read_label_fractions(&f.dir)?.runs {
            c.text("method", method);
            c.text("approach", approach_name.as_str());
            c.text("modality", modality_group(modalities));
            c.number("seed", f.seed as f64);
            c.number("fraction", r.fraction);
            c.number("repetition", r.repetition as f64);
            c.number("main", r.main_metric);
            if let Some(same) = r.same_subset_as {
                let pair = (r.fraction, same);
                if !pairs.contains(&pair) {
                    pairs.push(pair);
                }
            }
        }
    }
    pairs.sort_by(|a, b| a.0.total_cmp(&b.0));
    Ok((c.build(&["method", "approach", "modality"], &["seed", "fraction", "repetition", "main"])?, pairs))
}

fn curves(p: &Prepared, runs: &[Finished]) -> Result<Frame> {
    let mut c = FrameBuilder::default();
    for f in runs {
        let Results::Pretraining = f.step.kind().results() else { continue };
        let method = f.method;
        let path = f.dir.join("curves.csv");
        let mut reader = csv::Reader::from_path(&path).with_context(|| format!("{}: cannot read", path.display()))?;
        let headers = reader.headers()?.clone();
        let col = |name: &str| headers.iter().position(|h| h == name).with_context(|| format!("{}: no column '{name}'", path.display()));
        let (epoch, loss) = (col("epoch")?, col("train_loss")?);
        for row in reader.records() {
            let row = row.with_context(|| format!("{}: bad row", path.display()))?;
            let parse = |i: usize| row[i].parse::<f64>().with_context(|| format!("{}: '{}' is not a number", path.display(), &row[i]));
            c.text("method", method);
            c.text("approach", approach(p, method));
            c.number("seed", f.seed as f64);
            c.number("epoch", parse(epoch)?);
            c.number("train_loss", parse(loss)?);
        }
    }
    c.build(&["method", "approach"], &["seed", "epoch", "train_loss"])
}

fn timings(runs: &[Finished]) -> Result<Frame> {
    let mut c = FrameBuilder::default();
    for f in runs.iter().filter(|f| f.primary) {
        // Units of work (epochs; epochs x fractions x repetitions); retrieval has none.
        let crate::harness::steps::Work { kind: step, method, units } = f.step.kind().work();
        let epochs = if step == "retrieval" { 0 } else { units as usize };
        c.text("run", f.id);
        c.text("label", f.record.label.as_str());
        c.text("step", step);
        c.text("method", method);
        c.text("cpu", f.record.hardware.cpu.as_str());
        c.number("seed", f.seed as f64);
        c.number("seconds", f.record.seconds);
        c.number("epochs", epochs as f64);
        c.number("threads", f.record.hardware.threads as f64);
    }
    c.build(&["run", "label", "step", "method", "cpu"], &["seed", "seconds", "epochs", "threads"])
}

#[cfg(test)]
mod tests {
    use super::machines;
    use crate::harness::store::Hardware;

    fn machine(cpu: &str, threads: usize) -> Hardware {
        Hardware { cpu: cpu.into(), cores: 2, threads, gpu: None, os: "linux x86_64".into(), crate_version: "0.13.0".into() }
    }

    #[test]
    fn runs_on_several_machines_are_counted_per_machine_in_order_of_first_appearance() {
        let runs = [machine("AMD EPYC", 1), machine("Intel Xeon", 1), machine("AMD EPYC", 1), machine("AMD EPYC", 2)];
        let found: Vec<(String, usize, usize)> = machines(&runs).into_iter().map(|m| (m.hardware.cpu, m.hardware.threads, m.runs)).collect();
        assert_eq!(found, [("AMD EPYC".into(), 1, 2), ("Intel Xeon".into(), 1, 1), ("AMD EPYC".into(), 2, 1)]);
        let json = serde_json::to_value(machines(&runs[..1])).unwrap();
        assert_eq!(json[0]["cpu"], "AMD EPYC");
        assert_eq!(json[0]["runs"], 1);
    }
}
