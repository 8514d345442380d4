//! `cmkm bench`: step times of the paper's architectures on this machine
//! (CMC, CMC-CMKM, SimCLR per encoder), forward throughput per encoder and
//! one epoch of data preparation and augmentation, and this crate's own
//! layers against burn's ([`kernels`]), each after warm-up, as median and
//! spread. Numbers, not assertions: they are compared across
//! machines and versions, never checked in tests.

pub mod efficiency;
mod kernels;

use crate::data::Dataset;
use crate::device::devices;
use crate::methods::config::MethodConfig;
use crate::methods::Context;
use crate::training::batches::{batch_tensor, epoch_batches};
use crate::training::timing::StepTimes;
use crate::training::TrainData;
use anyhow::Result;
use serde::Serialize;
use std::collections::BTreeMap;
use std::time::Instant;

/// What to measure.
#[derive(Debug, Clone)]
pub struct BenchOptions {
    /// Training batch size (paper: 64).
    pub batch: usize,
    /// Timed steps per figure, after one warm-up step.
    pub steps: usize,
    /// Batch of the forward-throughput figures (256).
    pub forward_batch: usize,
    pub protocol: String,
    pub seed: u64,
    /// Figure groups to measure ([`GROUPS`]); empty means all.
    pub only: Vec<String>,
}

/// The figure groups `--only` selects from.
pub const GROUPS: [&str; 8] = ["data", "cmc", "cmkm", "simclr_inertial", "simclr_skeleton", "supervised_multimodal", "forward", "kernels"];

/// Errors on a `--only` name that is not one of [`GROUPS`].
pub fn check_groups(only: &[String]) -> Result<()> {
    match only.iter().find(|g| !GROUPS.contains(&g.as_str())) {
        Some(unknown) => anyhow::bail!("unknown figure group {unknown:?} in --only; the groups are {}", GROUPS.join(", ")),
        None => Ok(()),
    }
}

impl BenchOptions {
    fn wants(&self, group: &str) -> bool {
        self.only.is_empty() || self.only.iter().any(|g| g == group)
    }
}

/// Median and spread of one figure, in milliseconds.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Timing {
    pub median: f64,
    pub min: f64,
    pub max: f64,
}

impl Timing {
    fn of(mut samples: Vec<f64>) -> Self {
        samples.sort_by(f64::total_cmp);
        let n = samples.len();
        let median = if n % 2 == 1 { samples[n / 2] } else { 0.5 * (samples[n / 2 - 1] + samples[n / 2]) };
        Timing { median, min: samples[0], max: samples[n - 1] }
    }
}

/// Every figure by name (`cmc_step_ms`, ...), in milliseconds, plus the
/// forward throughputs in samples per second, and the FLOP rate of each
/// step and forward figure against the machine's peak ([`efficiency`]).
#[derive(Debug, Clone, Serialize)]
pub struct BenchReport {
    pub timings: BTreeMap<String, Timing>,
    pub throughput: BTreeMap<String, f64>,
    /// GFLOP/s of a figure's median, by the figure's name.
    pub gflop_per_s: BTreeMap<String, f64>,
    /// The multiply-add peak of one thread times the threads, GFLOP/s,
    /// timed with the widest FMA the kernels may use ([`Self::peak_isa`]).
    pub peak_gflop_per_s: f64,
    /// The instruction set the peak was timed with ("AVX-512, 16-lane FMA").
    pub peak_isa: String,
    /// The kernels' level ([`cmkm_kernels::isa::describe`]): what the
    /// figures ran with.
    pub kernel_isa: String,
    pub batch: usize,
    pub steps: usize,
    pub threads: usize,
    pub hardware: crate::harness::store::Hardware,
}

impl BenchReport {
    /// One flat JSON object: `<name>_ms` medians, `<name>_samples_per_s`,
    /// the spread of each timing, threads and the hardware record.
    pub fn json(&self) -> anyhow::Result<serde_json::Value> {
        let mut obj = serde_json::Map::new();
        for (name, t) in &self.timings {
            obj.insert(name.clone(), t.median.into());
        }
        for (name, v) in &self.throughput {
            obj.insert(name.clone(), (*v).into());
        }
        for (name, v) in &self.gflop_per_s {
            obj.insert(format!("{}_gflop_per_s", name.trim_end_matches("_ms")), (*v).into());
        }
        obj.insert("peak_gflop_per_s".into(), self.peak_gflop_per_s.into());
        obj.insert("peak_isa".into(), self.peak_isa.clone().into());
        obj.insert("kernel_isa".into(), self.kernel_isa.clone().into());
        obj.insert("spread_ms".into(), serde_json::to_value(&self.timings)?);
        obj.insert("batch".into(), self.batch.into());
        obj.insert("steps".into(), self.steps.into());
        obj.insert("threads".into(), self.threads.into());
        obj.insert("hardware".into(), serde_json::to_value(&self.hardware)?);
        Ok(serde_json::Value::Object(obj))
    }
}

fn method(text: &str) -> Result<MethodConfig> {
    crate::config::parse_yaml(text)
}

/// The paper's method files by figure name, embedded so that the bench
/// measures the same architectures wherever it runs; CMC's first (its
/// modalities are the data figures' and its encoders the forward ones').
fn paper_methods() -> Result<[(&'static str, MethodConfig); 5]> {
    Ok([
        ("cmc", method(include_str!("../../experiments/methods/cmc.yaml"))?),
        (
            "cmkm",
            crate::methods::config::MethodFiles::parse_embedded(&[
                include_str!("../../experiments/methods/cmc-cmkm.yaml"),
                include_str!("../../experiments/methods/cmc.yaml"),
            ])?,
        ),
        ("simclr_inertial", method(include_str!("../../experiments/methods/simclr-inertial.yaml"))?),
        ("simclr_skeleton", method(include_str!("../../experiments/methods/simclr-skeleton.yaml"))?),
        ("supervised_multimodal", method(include_str!("../../experiments/methods/supervised-multimodal.yaml"))?),
    ])
}

/// Records `<name>_step_ms`, its phases `<name>_step_forward_ms`,
/// `<name>_step_backward_ms`, `<name>_step_adam_ms`, and
/// `<name>_validation_ms`.
fn record(timings: &mut BTreeMap<String, Timing>, name: &str, t: StepTimes) {
    timings.insert(format!("{name}_step_ms"), Timing::of(t.total));
    timings.insert(format!("{name}_step_forward_ms"), Timing::of(t.forward));
    timings.insert(format!("{name}_step_backward_ms"), Timing::of(t.backward));
    timings.insert(format!("{name}_step_adam_ms"), Timing::of(t.adam));
    timings.insert(format!("{name}_validation_ms"), Timing::of(t.validation));
}

/// Runs every figure on `ds` (the synthetic UTD-MHAD by default).
pub fn run_bench(ds: &Dataset, opts: &BenchOptions, progress: impl Fn(&str)) -> Result<BenchReport> {
    check_groups(&opts.only)?;
    let methods = paper_methods()?;
    let cmc = &methods[0].1;
    let mut timings = BTreeMap::new();
    let mut throughput = BTreeMap::new();
    let mut flops: BTreeMap<String, u64> = BTreeMap::new();
    progress("the floating-point peak");
    let peak_gflop_per_s = cmkm_kernels::peak::flops_per_second(1.0) / 1e9 * rayon::current_num_threads() as f64;
    let (train_device, eval_device) = devices();
    let _exclusive = crate::training::exclusive();
    crate::device::seed(&train_device, opts.seed);

    progress("data preparation");
    let start = Instant::now();
    let data = TrainData::new(ds, &cmc.modalities, &opts.protocol)?;
    let prep_ms = 1e3 * start.elapsed().as_secs_f64();
    let batch: Vec<usize> = data.split.train.iter().copied().take(opts.batch).collect();
    anyhow::ensure!(batch.len() == opts.batch, "the train split has {} samples, fewer than the batch of {}", data.split.train.len(), opts.batch);
    if opts.wants("data") {
        time_data(&data, cmc, opts, prep_ms, &eval_device, &mut timings);
    }
    for (name, config) in methods.iter().filter(|(name, _)| opts.wants(name)) {
        progress(name);
        let own;
        let data = match config.modalities == data.modalities {
            true => &data,
            false => {
                own = TrainData::new(ds, &config.modalities, &opts.protocol)?;
                &own
            }
        };
        time_method(name, config, data, &batch, opts, &mut timings, &mut flops)?;
    }
    let ctx = Context { method: cmc, data: &data, seed: opts.seed, train_device: train_device.clone(), eval_device: eval_device.clone(), pretrained: vec![] };
    let wide: Vec<usize> = (0..opts.forward_batch).map(|i| data.split.train[i % data.split.train.len()]).collect();
    for (m, modality) in data.modalities.iter().enumerate().filter(|_| opts.wants("forward")) {
        let kind = cmc.encoders[modality].kind_name();
        let name = format!("{kind}_forward_ms");
        progress(&name);
        let encoder = ctx.spec().encoder(m, &eval_device)?;
        let x = batch_tensor(&data.clips[m], &wide, &[], None, &eval_device);
        let samples: Vec<f64> = (0..=opts.steps)
            .map(|_| {
                let start = Instant::now();
                let _ = encoder.forward(x.clone()).into_data();
                1e3 * start.elapsed().as_secs_f64()
            })
            .skip(1)
            .collect();
        let t = Timing::of(samples);
        flops.insert(name.clone(), opts.forward_batch as u64 * cmc.encoders[modality].forward_flops(data.shapes[m])?);
        throughput.insert(format!("{kind}_forward_samples_per_s"), opts.forward_batch as f64 / (t.median / 1e3));
        timings.insert(name, t);
    }
    // The kernels group times the CPU backend's own layers against burn's.
    if opts.wants("kernels") && crate::device::is_host(&train_device) {
        progress("kernels");
        kernels::time_kernels(opts.steps, &train_device, &mut timings);
    }
    let gflop_per_s = flops.iter().filter_map(|(name, &f)| timings.get(name).map(|t| (name.clone(), efficiency::gflop_per_s(f, t.median)))).collect();
    Ok(BenchReport {
        timings,
        throughput,
        gflop_per_s,
        peak_gflop_per_s,
        peak_isa: cmkm_kernels::peak::isa().to_string(),
        kernel_isa: cmkm_kernels::isa::describe(),
        batch: opts.batch,
        steps: opts.steps,
        threads: rayon::current_num_threads(),
        hardware: crate::harness::store::Hardware::current(),
    })
}

/// The figures of one method, asked of its [`crate::methods::Method`]: a
/// training step on `batch` (and its phases) and a validation pass, with
/// the model and objective its training builds, and their FLOPs. A method
/// that mines with pretrained encoders gets randomly initialised ones: a
/// step's cost does not depend on their weights.
fn time_method(
    name: &str,
    config: &MethodConfig,
    data: &TrainData,
    batch: &[usize],
    opts: &BenchOptions,
    timings: &mut BTreeMap<String, Timing>,
    flops: &mut BTreeMap<String, u64>,
) -> Result<()> {
    let method = config.method()?;
    let (train_device, eval_device) = devices();
    let mut ctx = Context { method: config, data, seed: opts.seed, train_device, eval_device, pretrained: vec![] };
    if method.uses_pretrained() {
        ctx.pretrained = (0..data.modalities.len()).map(|m| ctx.spec().encoder(m, &ctx.eval_device)).collect::<Result<_>>()?;
    }
    record(timings, name, method.time_steps(&ctx, batch, opts.steps)?);
    flops.insert(format!("{name}_step_ms"), method.flops(&ctx.spec(), batch.len())?.step);
    flops.insert(format!("{name}_validation_ms"), method.flops(&ctx.spec(), data.split.val.len())?.validation);
    Ok(())
}

/// One epoch of batch assembly with augmentation, and the data figures.
fn time_data(
    data: &TrainData,
    method: &MethodConfig,
    opts: &BenchOptions,
    prep_ms: f64,
    device: &burn::prelude::Device,
    timings: &mut BTreeMap<String, Timing>,
) {
    let augment = |epoch: u64| {
        for b in epoch_batches(&data.split.train, opts.batch, true, opts.seed, epoch) {
            for (m, name) in data.modalities.iter().enumerate() {
                let _ = batch_tensor(&data.clips[m], &b, method.augmentation(name), Some((opts.seed, name, epoch)), device);
            }
        }
    };
    augment(0);
    let augment_ms: Vec<f64> = (1..=opts.steps as u64)
        .map(|e| {
            let start = Instant::now();
            augment(e);
            1e3 * start.elapsed().as_secs_f64()
        })
        .collect();
    let augment_t = Timing::of(augment_ms);
    timings.insert("augment_epoch_ms".into(), augment_t);
    timings.insert("data_epoch_ms".into(), Timing { median: prep_ms + augment_t.median, min: prep_ms + augment_t.min, max: prep_ms + augment_t.max });
    timings.insert("data_preprocess_ms".into(), Timing { median: prep_ms, min: prep_ms, max: prep_ms });
}
