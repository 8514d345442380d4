//! `cmkm store pack` and `cmkm store unpack`: a suite's finished runs as one
//! archive, to go on with a long suite in another sitting or on another
//! machine (README, "Across sittings and machines").

use super::harness::{prepare, SuiteArgs};
use crate::harness::archive;
use anyhow::{Context, Result};
use std::path::PathBuf;

#[derive(clap::Subcommand, Debug)]
pub enum StoreCommand {
    /// Pack a suite's finished runs into a gzip-compressed tar: every file
    /// but checkpoints, except those of trainings that unfinished runs
    /// still need.
    Pack {
        #[command(flatten)]
        suite: SuiteArgs,
        /// Archive to write [default: <reports>/<suite>/runs.tar.gz].
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Unpack an archive of `cmkm store pack` into the suite's results, so
    /// that `cmkm reproduce` goes on from its runs and `cmkm report` uses
    /// them. Runs already in the results are left as they are.
    Unpack {
        #[command(flatten)]
        suite: SuiteArgs,
        /// Archive to read [default: <reports>/<suite>/runs.tar.gz].
        #[arg(long)]
        archive: Option<PathBuf>,
    },
}

pub fn run(cmd: StoreCommand) -> Result<i32> {
    match cmd {
        StoreCommand::Pack { suite, out } => {
            let p = prepare(&suite)?;
            let out = out.unwrap_or_else(|| suite.reports.join(&p.suite.decl.name).join("runs.tar.gz"));
            let m = archive::pack(&p, &out)?;
            let bytes = std::fs::metadata(&out).with_context(|| format!("{}: the archive just written cannot be read", out.display()))?.len();
            outln!("{}", out.display());
            eprintln!(
                "packed {} of {} planned runs of suite '{}' ({:.1} MB), with the checkpoints of {} training(s) that unfinished runs need",
                m.runs.len(),
                p.runs.len(),
                m.suite,
                bytes as f64 / 1e6,
                m.checkpoints.len()
            );
            if !m.missing_checkpoints.is_empty() {
                eprintln!(
                    "warning: unfinished runs need the checkpoints of run(s) {}, which are not in {}: those runs will fail unless the trainings' folders are removed there first, so that `cmkm reproduce` trains them again",
                    m.missing_checkpoints.join(", "),
                    p.store.root.display()
                );
            }
            Ok(0)
        }
        StoreCommand::Unpack { suite, archive: path } => {
            let p = prepare(&suite)?;
            let path = path.unwrap_or_else(|| suite.reports.join(&p.suite.decl.name).join("runs.tar.gz"));
            let u = archive::unpack(&p, &path)?;
            eprintln!(
                "{}: {} run(s) placed into {} ({} already there), with {} training checkpoint(s)",
                path.display(),
                u.placed,
                p.store.root.display(),
                u.already_done,
                u.checkpoints
            );
            if !u.unplanned.is_empty() {
                eprintln!("note: the suite's current plan has none of these runs (its YAML changed since): {}", u.unplanned.join(", "));
            }
            Ok(0)
        }
    }
}
