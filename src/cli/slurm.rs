//! `cmkm slurm submit` and `cmkm slurm status`: a suite on a Slurm cluster.

use super::harness::SuiteArgs;
use crate::harness::runner::prepare_with;
use crate::harness::slurm::{check_resources, JobCommand, JobResources, TimeLimit};
use anyhow::{Context, Result};
use std::path::{Path, PathBuf};

#[derive(clap::Subcommand, Debug)]
pub enum SlurmCommand {
    /// Submit the runs a suite is missing as dependent job arrays (one task
    /// per run, each calling `cmkm run`), then a job that writes the report.
    /// Runs done or still queued under an earlier submission are left out.
    /// The results folder must be on a filesystem every node sees.
    Submit(SubmitArgs),
    /// Each run's store status beside its job's Slurm state.
    Status(SuiteArgs),
}

/// Options of `cmkm slurm submit`.
#[derive(clap::Args, Debug)]
pub struct SubmitArgs {
    #[command(flatten)]
    pub suite: SuiteArgs,
    /// Partition (queue) to submit to; the cluster's default otherwise.
    #[arg(long)]
    pub partition: Option<String>,
    /// Time limit of each job: `auto` (from `cmkm plan`'s estimate of the
    /// array's longest run, x 1.5 + 10 minutes; a day where no timing is
    /// recorded), or MINUTES, HH:MM:SS, D-HH:MM:SS.
    #[arg(long, default_value = "auto")]
    pub time: TimeLimit,
    /// CPUs per run; also the run's thread count (RAYON_NUM_THREADS).
    #[arg(long)]
    pub cpus_per_task: Option<u32>,
    /// Memory per run, as sbatch takes it (e.g. 8G).
    #[arg(long)]
    pub mem: Option<String>,
    /// Generic resources per run, e.g. gpu:1 on a GPU partition.
    #[arg(long)]
    pub gres: Option<String>,
    /// At most this many runs of one array at once (`--array=...%N`).
    #[arg(long)]
    pub max_parallel: Option<u32>,
    /// A further sbatch option for every job, e.g. --sbatch-arg=--account=lab
    /// (repeatable).
    #[arg(long = "sbatch-arg", allow_hyphen_values = true)]
    pub sbatch_args: Vec<String>,
    /// No report job at the end.
    #[arg(long)]
    pub no_report: bool,
    /// The cmkm binary the jobs run (default: this one); it must be at this
    /// path on every node.
    #[arg(long)]
    pub cmkm: Option<PathBuf>,
    /// Print the job scripts and the sbatch lines; submit nothing, write
    /// nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Submit again the runs recorded as failed, and what needs them (by
    /// default they are held back: resubmitting would fail them the same
    /// way unless something outside their inputs was the cause).
    #[arg(long)]
    pub retry_failed: bool,
}

pub fn run(cmd: SlurmCommand) -> Result<i32> {
    match cmd {
        SlurmCommand::Submit(args) => submit(args),
        SlurmCommand::Status(args) => {
            let p = super::harness::prepare(&args)?;
            out!("{}", crate::harness::slurm::status(&p, &args.reports)?);
            Ok(0)
        }
    }
}

fn absolute(path: &Path) -> Result<PathBuf> {
    std::path::absolute(path).with_context(|| format!("{}: cannot make the path absolute", path.display()))
}

fn submit(args: SubmitArgs) -> Result<i32> {
    let resources = JobResources {
        partition: args.partition,
        time: args.time,
        cpus_per_task: args.cpus_per_task,
        mem: args.mem,
        gres: args.gres,
        max_parallel: args.max_parallel,
        sbatch_args: args.sbatch_args,
    };
    check_resources(&resources)?;
    let s = &args.suite;
    let cmkm = match args.cmkm {
        Some(path) => absolute(&path)?,
        None => std::env::current_exe().context("cannot tell where this cmkm binary is; pass --cmkm")?,
    };
    let command = JobCommand {
        cmkm,
        workdir: absolute(Path::new("."))?,
        suite: absolute(&s.suite)?,
        results: absolute(&s.results)?,
        reports: absolute(&s.reports)?,
        dataset: s.dataset.as_deref().map(absolute).transpose()?,
        device: crate::device::chosen(),
    };
    let p = prepare_with(&command.suite, &command.results, command.dataset.as_deref())?;
    if !args.dry_run {
        crate::fsutil::ensure_writable_dir(&p.store.root)?;
    }
    let choices = crate::harness::slurm::SubmitChoices { report: !args.no_report, dry_run: args.dry_run, retry_failed: args.retry_failed };
    out!("{}", crate::harness::slurm::submit(&p, &command, &resources, choices)?);
    Ok(0)
}
