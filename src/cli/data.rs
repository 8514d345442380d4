//! `cmkm synth` and `cmkm data ...`.

use anyhow::{bail, Result};
use clap::Subcommand;
use cmkm_data::declaration::DatasetDecl;
use cmkm_data::inspect::InspectReport;
use cmkm_data::Dataset;
use std::path::{Path, PathBuf};
use std::time::Instant;

use crate::data as cmkm_data;

#[derive(Subcommand, Debug)]
pub enum DataCommand {
    /// Count samples per split, subject and class, report shape ranges,
    /// NaN/Inf values, dropped samples and files that failed to load (each
    /// with its reason). Exits non-zero if any file failed, holds non-finite
    /// values, or a protocol cannot be split.
    Inspect {
        /// Dataset declaration (YAML). Or use --format with a folder.
        declaration: Option<PathBuf>,
        /// Inspect a folder with the built-in declaration of this format
        /// (utd-mhad or mmact).
        #[arg(long, value_name = "FORMAT", requires = "dir")]
        format: Option<String>,
        /// Folder to inspect with --format.
        #[arg(long)]
        dir: Option<PathBuf>,
        /// Print one JSON object (with at least `samples` and `failed`).
        #[arg(long)]
        json: bool,
    },
    /// 1-nearest-neighbour test accuracy per modality on flattened
    /// preprocessed features: the difficulty calibration of a dataset.
    Baseline {
        /// Dataset declaration (YAML).
        declaration: PathBuf,
        /// Protocol to split by.
        #[arg(long, default_value = "cross_subject")]
        protocol: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
}

pub fn synth(out: &Path, seed: u64) -> Result<i32> {
    let start = Instant::now();
    let stamp = cmkm_data::synth::generate(out, seed)?;
    eprintln!("wrote {} synthetic UTD-MHAD trials to {} in {:.1} s (seed {seed})", stamp.samples, out.display(), start.elapsed().as_secs_f64());
    Ok(0)
}

pub fn run(cmd: DataCommand) -> Result<i32> {
    match cmd {
        DataCommand::Inspect { declaration, format, dir, json } => {
            let decl = match (declaration, format, dir) {
                (Some(path), None, None) => DatasetDecl::from_file(&path)?,
                (None, Some(format), Some(dir)) => DatasetDecl::builtin(format.parse()?, &dir)?,
                _ => bail!("give either a declaration file or --format FORMAT --dir DIR"),
            };
            let ds = Dataset::load(&decl, &[])?;
            let report = InspectReport::new(&ds);
            if json {
                outln!("{}", serde_json::to_string_pretty(&report)?);
            } else {
                out!("{}", report.to_text());
            }
            Ok(if report.has_problems() { 2 } else { 0 })
        }
        DataCommand::Baseline { declaration, protocol, json } => {
            let decl = DatasetDecl::from_file(&declaration)?;
            let ds = Dataset::load(&decl, &[])?;
            let results = cmkm_data::baseline::nearest_neighbour_baseline(&ds, &protocol)?;
            if json {
                outln!("{}", serde_json::to_string_pretty(&results)?);
            } else {
                for r in results {
                    outln!("1-NN {:<10} {}: {:.2}% ({} queries, {} gallery)", r.modality, r.protocol, 100.0 * r.accuracy, r.queries, r.gallery);
                }
            }
            Ok(0)
        }
    }
}
