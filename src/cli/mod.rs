//! The `cmkm` command line: one subcommand per job, each a thin layer over
//! the library.

/// `print!` that returns an error instead of panicking when standard output
/// cannot be written (a closed pipe, a full disk, `> /dev/full`).
macro_rules! out {
    ($($arg:tt)*) => { crate::cli::write_stdout(&format!($($arg)*))? };
}

/// `println!` that returns an error instead of panicking; see [`out!`].
macro_rules! outln {
    ($($arg:tt)*) => { crate::cli::write_stdout(&format!("{}\n", format_args!($($arg)*)))? };
}

mod bench;
mod data;
mod devices;
mod evaluate;
mod harness;
mod slurm;
mod store;
mod train;

use clap::{Parser, Subcommand};
use std::path::PathBuf;

/// Benchmark harness for self-supervised multimodal human activity
/// recognition: CMC-CMKM against SimCLR, CMC and supervised baselines.
#[derive(Parser, Debug)]
#[command(name = "cmkm", version, about, long_about = None)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
    /// Where to compute: cpu (burn's CPU backend, the default), gpu (the
    /// first hardware GPU through wgpu: Vulkan, Metal or DirectX 12) or
    /// gpu:N (adapter N of `cmkm devices`, software ones included). A GPU
    /// run's id and record say so; workers and Slurm jobs inherit it.
    #[arg(long, global = true, default_value = "cpu")]
    pub device: crate::device::DeviceChoice,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Write the synthetic UTD-MHAD set (the embedded default data): the real
    /// release's layout and MAT files, 861 trials of kinematically simulated
    /// skeleton and wrist/thigh IMU motion.
    Synth {
        /// Output folder (created; an earlier synthetic set there is replaced).
        #[arg(long)]
        out: PathBuf,
        /// Generator seed: the same seed gives byte-identical files.
        #[arg(long, default_value_t = 0)]
        seed: u64,
    },
    /// Inspect and check datasets.
    #[command(subcommand)]
    Data(data::DataCommand),
    /// Train one method (supervised, SimCLR, CMC or CMC-CMKM) on a dataset;
    /// writes the checkpoint (SafeTensors), resolved config, per-epoch curves
    /// and timings to a run folder.
    Train(train::TrainArgs),
    /// Evaluate a run's encoders: fine-tuning, activity retrieval, label
    /// fractions (docs/method.md section 8).
    #[command(subcommand)]
    Evaluate(evaluate::EvaluateCommand),
    /// Print the runs a suite expands to (methods x evaluations x seeds, with
    /// dependencies), which are done, and the time left from recorded timings.
    Plan(harness::PlanArgs),
    /// Execute exactly one planned run (its dependencies must be done), e.g.
    /// from a cluster job array over a shared results folder.
    Run {
        #[command(flatten)]
        suite: harness::SuiteArgs,
        /// Run id (or a unique prefix) from `cmkm plan`.
        #[arg(long = "run")]
        id: String,
        #[arg(long)]
        quiet: bool,
        /// When another process holds the run's lock, wait for it (and exit
        /// 0 if it finishes the run) instead of failing at once.
        #[arg(long)]
        wait: bool,
    },
    /// Run whatever a suite is missing, in dependency order; finished runs
    /// are skipped, failures recorded and the suite goes on.
    Reproduce(harness::ReproduceArgs),
    /// Aggregate a suite's finished runs into the paper's table (with the
    /// paper's numbers beside), retrieval and label-fraction tables
    /// (Markdown, CSV, LaTeX) and plots (PNG, SVG) under <reports>/<suite>/.
    Report(harness::SuiteArgs),
    /// The same runs from two results folders (two machines or versions)
    /// side by side: metric differences and wall-time ratios per run.
    Compare(harness::CompareArgs),
    /// Run a suite on a Slurm cluster: submit its missing runs as dependent
    /// job arrays, or show their jobs' states.
    #[command(subcommand)]
    Slurm(slurm::SlurmCommand),
    /// Carry a suite's finished runs to another sitting or machine: pack
    /// them into one archive, or unpack one into the results.
    #[command(subcommand)]
    Store(store::StoreCommand),
    /// Time the paper's training steps (CMC, CMC-CMKM, SimCLR), encoder
    /// forward throughput and one epoch of data preparation on this machine.
    Bench(bench::BenchArgs),
    /// List the devices cmkm can compute on: the CPU and each GPU adapter
    /// wgpu reaches (name, graphics API, type, driver), numbered for
    /// `--device gpu:N`.
    Devices {
        /// Print the list as JSON.
        #[arg(long)]
        json: bool,
    },
}

/// Which data a command trains or evaluates on, and with which seed.
#[derive(clap::Args, Debug, Clone)]
pub struct DataArgs {
    /// Dataset declaration (YAML).
    #[arg(long, default_value = "experiments/datasets/synthetic-utd.yaml")]
    pub dataset: PathBuf,
    /// Protocol (split) of the dataset.
    #[arg(long, default_value = "cross_subject")]
    pub protocol: String,
    /// Run seed: initialisation, batch order, augmentation, subsets.
    #[arg(long, default_value_t = 28)]
    pub seed: u64,
}

/// Clap parser of a count that must be at least 1 (epochs, repetitions):
/// `--epochs 0` is refused before any work, as a suite's `epochs: 0` is.
pub fn at_least_one(text: &str) -> Result<usize, String> {
    match text.parse::<usize>() {
        Ok(0) => Err("must be at least 1".into()),
        Ok(n) => Ok(n),
        Err(e) => Err(e.to_string()),
    }
}

/// Clap parser of a label fraction: a number in (0, 1].
pub fn label_fraction(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(f) if f > 0.0 && f <= 1.0 => Ok(f),
        Ok(f) => Err(format!("{f} is not in (0, 1]")),
        Err(e) => Err(e.to_string()),
    }
}

/// Runs the CLI and returns the process exit code.
pub fn main() -> i32 {
    let cli = Cli::parse();
    let ready = cmkm_kernels::isa::check_switches().map_err(anyhow::Error::msg).and_then(|_| crate::device::select(cli.device));
    if let Err(e) = ready {
        eprintln!("error: {e:#}");
        return 1;
    }
    let result = match cli.command {
        Command::Synth { out, seed } => data::synth(&out, seed),
        Command::Data(cmd) => data::run(cmd),
        Command::Train(args) => open_device().and_then(|_| train::run(args)),
        Command::Evaluate(cmd) => open_device().and_then(|_| evaluate::run(cmd)),
        Command::Plan(args) => harness::plan(args),
        Command::Run { suite, id, quiet, wait } => open_device().and_then(|_| harness::run_one(suite, &id, quiet, wait)),
        Command::Reproduce(args) => harness::reproduce(args),
        Command::Report(args) => harness::report(args),
        Command::Compare(args) => harness::compare(args),
        Command::Slurm(cmd) => slurm::run(cmd),
        Command::Store(cmd) => store::run(cmd),
        Command::Bench(args) => open_device().and_then(|_| bench::run(args)),
        Command::Devices { json } => devices::list(json),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            1
        }
    }
}

/// Opens the `--device` of a command that computes, before any work, and
/// says which GPU it is where it is one.
pub fn open_device() -> anyhow::Result<()> {
    let selected = crate::device::open()?;
    if selected.adapter.is_some() {
        eprintln!("device: {}", crate::device::describe());
    }
    Ok(())
}

/// Writes `text` to standard output and flushes it; an error (e.g. ENOSPC on
/// `/dev/full`) is returned with context rather than panicking as `print!` does.
pub fn write_stdout(text: &str) -> anyhow::Result<()> {
    use anyhow::Context;
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes()).and_then(|_| out.flush()).context("cannot write to standard output")
}
