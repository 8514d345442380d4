//! The `cmkm` command line: one subcommand per job, each a thin layer over
//! the library.

mod data;
mod evaluate;
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
    /// fractions (SPEC section 8).
    #[command(subcommand)]
    Evaluate(evaluate::EvaluateCommand),
}

/// Runs the CLI and returns the process exit code.
pub fn main() -> i32 {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Synth { out, seed } => data::synth(&out, seed),
        Command::Data(cmd) => data::run(cmd),
        Command::Train(args) => train::run(args),
        Command::Evaluate(cmd) => evaluate::run(cmd),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            1
        }
    }
}
