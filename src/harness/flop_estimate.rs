//! Estimates for runs no recorded timing covers (a new method, dataset or
//! machine): each run's floating-point work, counted from its
//! configuration as `cmkm bench` counts it (each method's [`crate::methods::Method::flops`]),
//! over a rate. The rate is calibrated on the runs of the same plan that
//! recorded timings do cover (per step kind, else over all of them); with
//! none, it is this machine's measured multiply-add peak times its threads
//! times [`PEAK_SHARE`]. These estimates are rough and marked as such.

use crate::methods::config::MethodConfig;
use crate::methods::flops::MethodFlops;
use crate::methods::ModelSpec;
use crate::models::InputShape;
use std::collections::BTreeMap;

/// The share of the measured peak assumed where no timing calibrates the
/// rate: the training passes ran at 52-65% of the peak on an AVX2 CPU and
/// at about a third of it on an AVX-512 one (docs/performance.md), and
/// evaluation runs do less arithmetic per second than trainings.
pub const PEAK_SHARE: f64 = 0.3;

/// The dataset facts a run's work depends on.
pub struct WorkContext<'a> {
    /// Input shape of each dataset modality after preprocessing.
    pub shapes: BTreeMap<String, InputShape>,
    pub classes: usize,
    /// Train, validation and test samples of the suite's protocol.
    pub train: usize,
    pub val: usize,
    pub test: usize,
    /// The configuration of every planned training, by run id: what the
    /// evaluations of its encoders run.
    pub trained: BTreeMap<&'a str, &'a MethodConfig>,
}

impl WorkContext<'_> {
    fn shapes_of(&self, modalities: &[String]) -> Option<Vec<InputShape>> {
        modalities.iter().map(|m| self.shapes.get(m).copied()).collect()
    }

    /// The per-sample FLOPs of `config`'s parts on `modalities`.
    pub fn flops_of(&self, config: &MethodConfig, modalities: &[String]) -> Option<MethodFlops> {
        let shapes = self.shapes_of(modalities)?;
        MethodFlops::of(&ModelSpec { method: config, modalities, shapes: &shapes, classes: self.classes }).ok()
    }

    /// The configuration of the planned training `id`.
    pub fn trained_config(&self, id: &str) -> Option<&MethodConfig> {
        self.trained.get(id).copied()
    }

    /// A training's FLOPs on `train` samples: its steps and validation passes.
    pub fn training(&self, config: &MethodConfig, train: usize) -> Option<f64> {
        let method = config.method().ok()?;
        let shapes = self.shapes_of(&config.modalities)?;
        let spec = ModelSpec { method: config, modalities: &config.modalities, shapes: &shapes, classes: self.classes };
        let batch = config.schedule.batch_size.max(1);
        let steps = if method.self_supervised() { train / batch } else { train.div_ceil(batch) };
        let epoch = steps as f64 * method.flops(&spec, batch).ok()?.step as f64 + method.flops(&spec, self.val).ok()?.validation as f64;
        Some(config.schedule.epochs as f64 * epoch)
    }

    /// Heads trained on cached features: the encoders once over every
    /// sample, then the heads' epochs on `train` samples.
    pub fn heads(&self, config: &MethodConfig, modalities: &[String], epochs: usize, train: f64) -> Option<f64> {
        let m = self.flops_of(config, modalities)?;
        let samples = (self.train + self.val + self.test) as f64;
        let encoders: f64 = m.encoders.iter().sum::<u64>() as f64;
        Some(samples * encoders + epochs as f64 * 3.0 * (train + self.val as f64) * m.fusion as f64)
    }

    /// A label-fraction sweep's work: the encoders once over every
    /// sample, then each fraction's heads `repetitions` times.
    pub fn fractions(&self, config: &MethodConfig, modalities: &[String], fractions: &[f64], repetitions: u64, epochs: usize) -> Option<f64> {
        let once = self.heads(config, modalities, 0, 0.0)?;
        let heads: Option<Vec<f64>> = fractions.iter().map(|f| Some(self.heads(config, modalities, epochs, f * self.train as f64)? - once)).collect();
        Some(once + repetitions as f64 * heads?.iter().sum::<f64>())
    }
}

/// FLOP per second for each step kind, calibrated on runs with both an
/// estimate from recorded timings and a FLOP count.
pub struct FlopRate {
    by_kind: BTreeMap<&'static str, f64>,
    all: Option<f64>,
    /// Where no timing calibrates: the measured peak x threads x [`PEAK_SHARE`].
    peak: f64,
}

impl FlopRate {
    /// From (step kind, FLOPs, seconds) of runs that have both; `peak` is
    /// called only when nothing calibrates.
    pub fn calibrate(known: &[(&'static str, f64, f64)], threads: usize, peak: impl FnOnce() -> f64) -> Self {
        let mut sums: BTreeMap<&'static str, (f64, f64)> = BTreeMap::new();
        for &(kind, flops, seconds) in known.iter().filter(|k| k.1 > 0.0 && k.2 > 0.0) {
            let s = sums.entry(kind).or_default();
            s.0 += flops;
            s.1 += seconds;
        }
        let by_kind = sums.iter().map(|(k, (f, s))| (*k, f / s)).collect();
        let (f, s) = sums.values().fold((0.0, 0.0), |a, b| (a.0 + b.0, a.1 + b.1));
        let all = (s > 0.0).then(|| f / s);
        let peak = if all.is_some() { 0.0 } else { peak() * threads.max(1) as f64 * PEAK_SHARE };
        FlopRate { by_kind, all, peak }
    }

    /// Seconds for `flops` of a run of step `kind`.
    pub fn seconds(&self, kind: &str, flops: f64) -> f64 {
        let rate = self.by_kind.get(kind).copied().or(self.all).unwrap_or(self.peak);
        flops / rate.max(1.0)
    }

    /// How the rate was found, for `cmkm plan`'s note.
    pub fn describe(&self) -> String {
        match self.all {
            Some(all) => format!("calibrated on this plan's timed runs: {:.1} GFLOP/s over all of them", all / 1e9),
            None => format!("{:.1} GFLOP/s: {PEAK_SHARE} x this machine's measured peak (no timed run to calibrate on)", self.peak / 1e9),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_come_from_the_same_kind_then_all_kinds_then_the_peak() {
        let r = FlopRate::calibrate(&[("train", 10e9, 1.0), ("train", 30e9, 1.0), ("retrieval", 1e9, 1.0)], 2, || panic!("not needed"));
        assert_eq!(r.seconds("train", 20e9), 1.0);
        assert_eq!(r.seconds("fine_tune", 41e9), 3.0, "all kinds: 41 GFLOP in 3 s");
        let peak = FlopRate::calibrate(&[], 2, || 100e9);
        assert_eq!(peak.seconds("train", 60e9), 1.0, "100 GFLOP/s x 2 threads x 0.3");
    }
}
