//! `cmkm plan`, `cmkm run`, `cmkm reproduce`: suites.

use crate::harness::runner::{prepare, Executed};
use anyhow::{bail, Result};
use std::path::PathBuf;

/// Options shared by the suite commands.
#[derive(clap::Args, Debug)]
pub struct SuiteArgs {
    /// Suite file (YAML), e.g. experiments/quick-utd.yaml.
    pub suite: PathBuf,
    /// Results folder; the suite's runs go to <results>/<suite name>/.
    #[arg(long, default_value = "results")]
    pub results: PathBuf,
}

pub fn plan(args: SuiteArgs) -> Result<i32> {
    let p = prepare(&args.suite, &args.results)?;
    out!("{}", p.describe());
    Ok(0)
}

pub fn run_one(args: SuiteArgs, id: &str, quiet: bool) -> Result<i32> {
    let p = prepare(&args.suite, &args.results)?;
    let run = p.find(id)?;
    if p.store.is_done(&run.id) {
        eprintln!("run {} ({}) is already done", run.id, run.label);
        return Ok(0);
    }
    match p.execute(run, quiet)? {
        Executed::Busy => bail!("run {} ({}) is being run by another process (its lock {} is held); try again when it finishes", run.id, run.label, p.store.root.join("runs").join(format!(".{}.lock", run.id)).display()),
        Executed::AlreadyDone => eprintln!("run {} ({}) was finished by another process", run.id, run.label),
        Executed::Ran(_) => eprintln!("run {} ({}) done: {}", run.id, run.label, p.store.dir(&run.id).display()),
    }
    Ok(0)
}

pub fn reproduce(args: SuiteArgs, quiet: bool) -> Result<i32> {
    let p = prepare(&args.suite, &args.results)?;
    let (done, failed) = p.reproduce(quiet)?;
    eprintln!("suite {}: {done} of {} runs done, {failed} failed", p.suite.decl.name, p.runs.len());
    Ok(if failed > 0 { 3 } else { 0 })
}
