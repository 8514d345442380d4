//! `cmkm bench`: step and data timings on this machine.

use crate::bench::{run_bench, BenchOptions};
use crate::data::{Dataset, DatasetDecl};
use anyhow::Result;
use std::path::PathBuf;

/// Options of `cmkm bench`.
#[derive(clap::Args, Debug)]
pub struct BenchArgs {
    /// Print one JSON object (figures in milliseconds, throughputs in
    /// samples/s, threads and hardware) instead of a table.
    #[arg(long)]
    pub json: bool,
    /// Training batch size of the step figures.
    #[arg(long, default_value_t = 64)]
    pub batch: usize,
    /// Timed repetitions per figure (after one warm-up). On a shared VM a
    /// median of 3 moved by 10-20% between runs; 7 keeps the whole bench
    /// under a minute.
    #[arg(long, default_value_t = 7)]
    pub steps: usize,
    /// Batch of the forward-throughput figures.
    #[arg(long, default_value_t = 256)]
    pub forward_batch: usize,
    /// Dataset declaration (the synthetic UTD-MHAD by default).
    #[arg(long, default_value = "experiments/datasets/synthetic-utd.yaml")]
    pub dataset: PathBuf,
    #[arg(long, default_value = "cross_subject")]
    pub protocol: String,
    /// Measure only these groups (comma-separated): data, cmc, cmkm,
    /// simclr_inertial, simclr_skeleton, supervised_multimodal (a step and
    /// one validation pass), forward, kernels (our layers against burn's).
    /// All by default.
    #[arg(long, value_delimiter = ',')]
    pub only: Vec<String>,
}

pub fn run(args: BenchArgs) -> Result<i32> {
    anyhow::ensure!(args.batch >= 2 && args.steps >= 1 && args.forward_batch >= 1, "--batch must be at least 2, --steps and --forward-batch at least 1");
    crate::bench::check_groups(&args.only)?;
    let decl = DatasetDecl::from_file(&args.dataset)?;
    let ds = Dataset::load(&decl, &[])?;
    let opts = BenchOptions {
        batch: args.batch,
        steps: args.steps,
        forward_batch: args.forward_batch,
        protocol: args.protocol.clone(),
        seed: 28,
        only: args.only.clone(),
    };
    let quiet = args.json;
    let report = run_bench(&ds, &opts, |what| {
        if !quiet {
            eprintln!("measuring {what} ...");
        }
    })?;
    if args.json {
        outln!("{}", serde_json::to_string_pretty(&report.json()?)?);
        return Ok(0);
    }
    let machine = crate::harness::store::Hardware { threads: report.threads, ..report.hardware.clone() };
    outln!("{}; batch {}, {} timed steps after 1 warm-up", machine.describe(), report.batch, report.steps);
    outln!("{:<40} {:>10} {:>10} {:>10}", "figure", "median", "min", "max");
    for (name, t) in &report.timings {
        outln!("{name:<40} {:>10.1} {:>10.1} {:>10.1}", t.median, t.min, t.max);
    }
    for (name, v) in &report.throughput {
        outln!("{name:<40} {v:>10.1}");
    }
    // The peak is the CPU's: a share of it says nothing of a GPU's figures.
    let on_gpu = report.hardware.gpu.is_some();
    outln!("{:<40} {:>10} {:>10}", "figure", "GFLOP/s", if on_gpu { "" } else { "of peak" });
    for (name, v) in &report.gflop_per_s {
        let share = if on_gpu { String::new() } else { format!("{:>9.0}%", 100.0 * v / report.peak_gflop_per_s) };
        outln!("{:<40} {v:>10.1} {share}", name.trim_end_matches("_ms"));
    }
    let threads = crate::harness::store::threads_phrase(report.threads);
    outln!("{:<40} {:>10.1}   (the CPU's multiply-add chains, {}, {threads})", "peak", report.peak_gflop_per_s, report.peak_isa);
    outln!("kernels: {} (the figures above ran with it; matrix products are the gemm crate's, which picks its own)", report.kernel_isa);
    Ok(0)
}
