//! Label fractions (semi-supervised evaluation): 1, 5, 10, 25, 50% of the
//! train split per class (at least one sample per class), several
//! repetitions with different samples, each evaluated by a caller-given
//! training (fine-tuning on cached features, or a supervised baseline).
//! Standard deviations are sample standard deviations (n - 1).

use crate::data::splits::label_fraction_split;
use crate::metrics::ClassificationMetrics;
use crate::protocols::{FrozenEncoders, HeadTraining, LabelSubsets};
use crate::training::TrainData;
use anyhow::Result;
use serde::{Deserialize, Serialize};

/// The paper's fractions.
pub const PAPER_FRACTIONS: [f64; 5] = [0.01, 0.05, 0.10, 0.25, 0.50];

/// One repetition at one fraction.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FractionRun {
    pub fraction: f64,
    pub repetition: u64,
    pub train_samples: usize,
    pub accuracy: f64,
    pub f1_macro: f64,
    pub main_metric: f64,
    /// The smaller fraction whose subset at this repetition is the very
    /// same (e.g. 1%, 5% and 10% all keep one sample per class of a small
    /// train split): its result was reused, not computed again.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub same_subset_as: Option<f64>,
}

/// Mean and standard deviation over the repetitions of one fraction.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FractionSummary {
    pub fraction: f64,
    pub repetitions: usize,
    pub main_metric_mean: f64,
    pub main_metric_std: f64,
    pub accuracy_mean: f64,
    pub accuracy_std: f64,
    pub f1_macro_mean: f64,
    pub f1_macro_std: f64,
}

/// Runs `evaluate(train_subset, fraction, repetition)` for every fraction
/// and repetition; subsets come from `label_fraction_split` with `seed`.
/// A subset already evaluated at this repetition for another fraction (the
/// subsets of one repetition are nested, so equal per-class counts give the
/// same samples) is not evaluated again: its metrics stand, and
/// `reuse(earlier_fraction, fraction, repetition)` lets the caller copy
/// what it wrote.
pub fn run_label_fractions(
    data: &TrainData,
    subsets: &LabelSubsets,
    seed: u64,
    mut evaluate: impl FnMut(&[usize], f64, u64) -> Result<ClassificationMetrics>,
    mut reuse: impl FnMut(f64, f64, u64) -> Result<()>,
) -> Result<(Vec<FractionRun>, Vec<FractionSummary>)> {
    let mut runs = vec![];
    let mut summaries = vec![];
    let mut seen: Vec<(u64, Vec<usize>, f64, ClassificationMetrics)> = vec![];
    for &fraction in subsets.fractions {
        let mut these = vec![];
        for repetition in 0..subsets.repetitions {
            let subset = label_fraction_split(&data.labels, &data.split.train, fraction, seed, repetition)?;
            let earlier = seen.iter().find(|(r, s, _, _)| *r == repetition && *s == subset).map(|(_, _, f, m)| (*f, m.clone()));
            let (m, same_subset_as) = match earlier {
                Some((f, m)) => {
                    reuse(f, fraction, repetition)?;
                    (m, Some(f))
                }
                None => {
                    let m = evaluate(&subset, fraction, repetition)?;
                    seen.push((repetition, subset.clone(), fraction, m.clone()));
                    (m, None)
                }
            };
            let main = m.main(data.main_metric);
            these.push(FractionRun {
                fraction,
                repetition,
                train_samples: subset.len(),
                accuracy: m.accuracy,
                f1_macro: m.f1_macro,
                main_metric: main,
                same_subset_as,
            });
        }
        let stats = |f: fn(&FractionRun) -> f64| mean_std(&these.iter().map(f).collect::<Vec<_>>());
        let (main_metric_mean, main_metric_std) = stats(|r| r.main_metric);
        let (accuracy_mean, accuracy_std) = stats(|r| r.accuracy);
        let (f1_macro_mean, f1_macro_std) = stats(|r| r.f1_macro);
        summaries.push(FractionSummary {
            fraction,
            repetitions: these.len(),
            main_metric_mean,
            main_metric_std,
            accuracy_mean,
            accuracy_std,
            f1_macro_mean,
            f1_macro_std,
        });
        runs.extend(these);
    }
    Ok((runs, summaries))
}

/// Label fractions with an evaluation head on cached encoder `features`:
/// each repetition's `metrics.json` and `predictions.csv` go to
/// `out/f<fraction>-r<repetition>/`, the summary to `out/label_fractions.json`.
pub fn cached_label_fractions(
    features: &[Vec<Vec<f32>>],
    data: &TrainData,
    subsets: &LabelSubsets,
    training: &HeadTraining,
    out: &std::path::Path,
) -> Result<(Vec<FractionRun>, Vec<FractionSummary>)> {
    let quiet = crate::training::Progress { label: String::new(), quiet: true };
    let evaluate = |subset: &[usize], f, r| {
        let result = crate::protocols::fine_tuning::fine_tune_cached(features, data, subset, training, &quiet)?;
        result.write(&out.join(format!("f{f}-r{r}")), serde_json::json!({ "fraction": f, "repetition": r }))?;
        Ok(result.metrics)
    };
    let (runs, summary) = run_label_fractions(data, subsets, training.seed, evaluate, |from, to, r| copy_repetition(out, from, to, r))?;
    write_summary(out, &runs, &summary)?;
    Ok((runs, summary))
}

/// Label fractions on the frozen encoders of `set` in the
/// `training.frozen` mode: on their cached features
/// ([`cached_label_fractions`]; `device` computes the cache) or with them
/// run in every step ([`FrozenEncoders::Training`], as the reference
/// evaluates). Writes as [`cached_label_fractions`].
pub fn frozen_label_fractions(
    set: &crate::protocols::EncoderSet,
    data: &TrainData,
    subsets: &LabelSubsets,
    training: &HeadTraining,
    device: &burn::prelude::Device,
    out: &std::path::Path,
) -> Result<(Vec<FractionRun>, Vec<FractionSummary>)> {
    match training.frozen {
        FrozenEncoders::Eval => cached_label_fractions(&set.features(data, device)?, data, subsets, training, out),
        FrozenEncoders::Training => encoder_label_fractions(set, data, subsets, training, out),
    }
}

/// Label fractions with the frozen encoders of `set` run in every step
/// ([`fine_tune_encoders`](crate::protocols::fine_tuning::fine_tune_encoders)),
/// each repetition from the encoders as given.
fn encoder_label_fractions(
    set: &crate::protocols::EncoderSet,
    data: &TrainData,
    subsets: &LabelSubsets,
    training: &HeadTraining,
    out: &std::path::Path,
) -> Result<(Vec<FractionRun>, Vec<FractionSummary>)> {
    let quiet = crate::training::Progress { label: String::new(), quiet: true };
    let evaluate = |subset: &[usize], f, r| {
        let result = crate::protocols::fine_tuning::fine_tune_encoders(set, data, subset, training, false, &quiet)?;
        result.write(&out.join(format!("f{f}-r{r}")), serde_json::json!({ "fraction": f, "repetition": r, "frozen": training.frozen }))?;
        Ok(result.metrics)
    };
    let (runs, summary) = run_label_fractions(data, subsets, training.seed, evaluate, |from, to, r| copy_repetition(out, from, to, r))?;
    write_summary(out, &runs, &summary)?;
    Ok((runs, summary))
}

/// The supervised baseline (docs/method.md section 8): `method` trained from scratch on each
/// label subset with its own schedule; each repetition's run folder goes to
/// `out/f<fraction>-r<repetition>/`, the summary to `out/label_fractions.json`.
pub fn supervised_label_fractions(
    method: &crate::methods::config::MethodConfig,
    ds: &crate::data::Dataset,
    data: &TrainData,
    protocol: &str,
    subsets: &LabelSubsets,
    seed: u64,
    out: &std::path::Path,
) -> Result<(Vec<FractionRun>, Vec<FractionSummary>)> {
    let evaluate = |subset: &[usize], f, r| {
        let opts = crate::methods::TrainOptions {
            protocol: protocol.to_string(),
            seed,
            out: out.join(format!("f{f}-r{r}")),
            quiet: true,
            train_subset: Some(subset.to_vec()),
        };
        crate::methods::train(method, ds, &opts)?.test.ok_or_else(|| anyhow::anyhow!("method '{}' is not supervised: it has no test metrics", method.name))
    };
    let (runs, summary) = run_label_fractions(data, subsets, seed, evaluate, |from, to, r| copy_repetition(out, from, to, r))?;
    write_summary(out, &runs, &summary)?;
    Ok((runs, summary))
}

/// `out/f<to>-r<r>/` as a copy of `out/f<from>-r<r>/` (same subset, same
/// result), checkpoints left out: `same_subset_as.txt` names the original.
fn copy_repetition(out: &std::path::Path, from: f64, to: f64, r: u64) -> Result<()> {
    use anyhow::Context;
    let (src, dst) = (out.join(format!("f{from}-r{r}")), out.join(format!("f{to}-r{r}")));
    std::fs::create_dir_all(&dst).with_context(|| format!("{}: cannot create the folder", dst.display()))?;
    for entry in std::fs::read_dir(&src).with_context(|| format!("{}: cannot read the repetition to reuse", src.display()))? {
        let path = entry?.path();
        let name = path.file_name().unwrap_or_default(); // entries of read_dir always have a name
        if path.is_file() && !name.to_string_lossy().ends_with(".safetensors") {
            std::fs::copy(&path, dst.join(name)).with_context(|| format!("{}: cannot copy into {}", path.display(), dst.display()))?;
        }
    }
    crate::fsutil::write_atomic(&dst.join("same_subset_as.txt"), format!("f{from}-r{r}\n").as_bytes())
}

/// Randomly initialised encoders of `method` (the random-encoder baseline
/// of docs/method.md section 8), drawn from `seed` under the training lock
/// (burn's generator is global to the process).
pub fn random_encoders(
    method: &crate::methods::config::MethodConfig,
    data: &TrainData,
    seed: u64,
    device: &burn::prelude::Device,
) -> Result<crate::protocols::EncoderSet> {
    let _exclusive = crate::training::exclusive();
    crate::device::seed(device, seed);
    crate::protocols::EncoderSet::random(method, &data.shapes, device)
}

/// `label_fractions.json`: the per-fraction summary and every run.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LabelFractionsFile {
    pub summary: Vec<FractionSummary>,
    pub runs: Vec<FractionRun>,
}

/// The name of a label-fraction run's results file.
pub const LABEL_FRACTIONS_FILE: &str = "label_fractions.json";

/// Writes `label_fractions.json`: the per-fraction summary and every run.
pub fn write_summary(out: &std::path::Path, runs: &[FractionRun], summary: &[FractionSummary]) -> Result<()> {
    crate::fsutil::write_json(&out.join(LABEL_FRACTIONS_FILE), &LabelFractionsFile { summary: summary.to_vec(), runs: runs.to_vec() })
}

/// Reads a run's `label_fractions.json`.
pub fn read_label_fractions(dir: &std::path::Path) -> Result<LabelFractionsFile> {
    crate::fsutil::read_json(&dir.join(LABEL_FRACTIONS_FILE))
}

/// Mean and sample standard deviation (0 for a single value).
pub fn mean_std(values: &[f64]) -> (f64, f64) {
    let n = values.len() as f64;
    let mean = values.iter().sum::<f64>() / n.max(1.0);
    if values.len() < 2 {
        return (mean, 0.0);
    }
    let var = values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1.0);
    (mean, var.sqrt())
}

#[cfg(test)]
mod tests {
    #[test]
    fn mean_and_sample_std() {
        let (m, s) = super::mean_std(&[1.0, 2.0, 3.0, 4.0]);
        assert_eq!(m, 2.5);
        assert!((s - (5.0f64 / 3.0).sqrt()).abs() < 1e-12);
        assert_eq!(super::mean_std(&[0.7]), (0.7, 0.0));
    }
}
