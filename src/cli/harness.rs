//! `cmkm plan`, `cmkm run`, `cmkm reproduce`, `cmkm report`, `cmkm
//! compare`: suites and their results.

use crate::harness::runner::{prepare_with, Deadline, Executed, Prepared, Sitting};
use crate::harness::store::RunStatus;
use crate::harness::workers::{size_thread_pool, spawn_workers, wait_for_workers, WorkerArgs, Workers, RUNS_FAILED};
use anyhow::{bail, Result};
use std::path::PathBuf;

/// Options shared by the suite commands.
#[derive(clap::Args, Debug)]
pub struct SuiteArgs {
    /// Suite file (YAML), e.g. experiments/quick-utd.yaml.
    pub suite: PathBuf,
    /// Results folder: the run store every suite shares (<results>/runs/<id>, failures under <results>/failed/).
    #[arg(long, default_value = "results")]
    pub results: PathBuf,
    /// Reports folder: `cmkm report` writes <reports>/<suite>/, `cmkm plan`
    /// reads recorded timings from its <suite>/timings.csv files.
    #[arg(long, default_value = "reports")]
    pub reports: PathBuf,
    /// Run the suite on this dataset declaration instead of its own; the
    /// suite is then named <suite>-<dataset name> in results and reports.
    #[arg(long)]
    pub dataset: Option<PathBuf>,
}

pub(super) fn prepare(args: &SuiteArgs) -> Result<Prepared> {
    prepare_with(&args.suite, &args.results, args.dataset.as_deref())
}

/// Options of `cmkm plan`.
#[derive(clap::Args, Debug)]
pub struct PlanArgs {
    #[command(flatten)]
    pub suite: SuiteArgs,
    /// Print the plan as JSON (every run's id, label, step, method, seed,
    /// status, dependencies and time estimate), for scripts and schedulers.
    #[arg(long)]
    pub json: bool,
    /// Estimate for this many `cmkm reproduce` workers (default: as
    /// `cmkm reproduce`, one per core).
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=256))]
    pub jobs: Option<u32>,
}

pub fn plan(args: PlanArgs) -> Result<i32> {
    let p = prepare(&args.suite)?;
    let workers = Workers::new(args.jobs.map(|j| j as usize), Workers::cores());
    if args.json {
        outln!("{}", serde_json::to_string_pretty(&p.overview(&args.suite.reports, workers))?);
    } else {
        out!("{}", p.describe(&args.suite.reports, workers));
    }
    Ok(0)
}

/// How often `cmkm run --wait` looks again at a run another process holds.
const BUSY_POLL: std::time::Duration = std::time::Duration::from_secs(2);

/// `cmkm run`: one planned run. A run that fails is recorded as failed in
/// the store (as `cmkm reproduce` does) and the exit status is non-zero, so
/// a scheduler sees the failure and cancels what depends on it.
pub fn run_one(args: SuiteArgs, id: &str, quiet: bool, wait: bool) -> Result<i32> {
    let p = prepare(&args)?;
    let run = p.find(id)?;
    if p.store.is_done(&run.id) {
        eprintln!("run {} ({}) is already done", run.id, run.label);
        return Ok(0);
    }
    if let Some(dep) = run.depends_on.iter().find(|d| !p.store.is_done(d)) {
        bail!("run {} ({}) needs run {dep} first", run.id, run.label);
    }
    let mut announced = false;
    loop {
        match p.execute(run, quiet) {
            Ok(Executed::Busy) if wait => {
                if !std::mem::replace(&mut announced, true) {
                    eprintln!("run {} ({}) is being run by another process; waiting for it", run.id, run.label);
                }
                std::thread::sleep(BUSY_POLL);
            }
            Ok(Executed::Busy) => bail!(
                "run {} ({}) is being run by another process (its lock {} is held); try again when it finishes, or pass --wait",
                run.id,
                run.label,
                p.store.lock_path(&run.id).display()
            ),
            Ok(Executed::AlreadyDone) => {
                eprintln!("run {} ({}) was finished by another process", run.id, run.label);
                return Ok(0);
            }
            Ok(Executed::Ran(_)) => {
                eprintln!("run {} ({}) done: {}", run.id, run.label, p.store.dir(&run.id).display());
                return Ok(0);
            }
            Err(e) => {
                p.store.record_failure(&run.id, &format!("{e:#}"))?;
                eprintln!("run {} ({}) FAILED; recorded in {}", run.id, run.label, p.store.failure_path(&run.id).display());
                return Err(e);
            }
        }
    }
}

/// Options of `cmkm reproduce`.
#[derive(clap::Args, Debug)]
pub struct ReproduceArgs {
    #[command(flatten)]
    pub suite: SuiteArgs,
    /// No per-epoch progress lines.
    #[arg(long)]
    pub quiet: bool,
    /// Worker processes sharing the suite's runs, each with cores / N
    /// threads; default one per core (these small trainings gain more from
    /// processes than from threads). Results do not depend on it (each run
    /// is seeded and claimed by one worker).
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=256))]
    pub jobs: Option<u32>,
    /// Start no run expected (from `cmkm plan`'s estimates) to end after
    /// this much wall time from the start, nor what depends on it: for a
    /// sitting or job of fixed length. MINUTES, MM:SS or HH:MM:SS. Finished
    /// runs are kept; running `cmkm reproduce` again goes on with the rest.
    #[arg(long, value_parser = parse_wall_time)]
    pub time_limit: Option<std::time::Duration>,
    /// Run again the runs an earlier sitting recorded as failed (by default
    /// they stay failed: their ids change with their inputs, so the same id
    /// fails the same way unless something outside them, e.g. a full disk,
    /// was the cause).
    #[arg(long)]
    pub retry_failed: bool,
    /// Internal: run as a worker of a `--jobs` parent started at this time
    /// (nanoseconds since the Unix epoch).
    #[arg(long, hide = true)]
    pub worker_since: Option<u64>,
}

pub fn reproduce(args: ReproduceArgs) -> Result<i32> {
    use std::time::{Duration, SystemTime, UNIX_EPOCH};
    let Workers { jobs, threads } = Workers::new(args.jobs.map(|j| j as usize), Workers::cores());
    if jobs > 1 && args.worker_since.is_none() {
        // This process is worker 0. Its thread pool is sized before anything
        // uses rayon: loading the suite's data does, and would fix the pool at
        // every core (before 0.13.0 worker 0 ran on all cores beside the others).
        size_thread_pool(threads)?;
    }
    super::open_device()?;
    let p = prepare(&args.suite)?;
    let since = match args.worker_since {
        Some(nanos) => UNIX_EPOCH + Duration::from_nanos(nanos),
        None => SystemTime::now(),
    };
    let deadline = args.time_limit.map(|limit| Deadline {
        at: since + limit,
        // The time limit trusts recorded timings only, not FLOP-based guesses.
        estimates: p
            .overview(&args.suite.reports, Workers { jobs, threads })
            .runs
            .into_iter()
            .filter(|r| !r.estimate_from_flops)
            .filter_map(|r| Some((r.id, r.estimate_seconds?)))
            .collect(),
    });
    // A worker started by a parent runs the runs itself (its thread count
    // comes from the parent, through RAYON_NUM_THREADS).
    let sitting = Sitting { quiet: args.quiet, since, deadline: deadline.as_ref(), retry_failed: args.retry_failed };
    if jobs == 1 || args.worker_since.is_some() {
        let (done, failed) = p.reproduce_sitting(&sitting)?;
        eprintln!("suite {}: {done} of {} runs done, {failed} failed", p.suite.decl.name, p.runs.len());
        return Ok(if failed > 0 { RUNS_FAILED } else { 0 });
    }
    let s = &args.suite;
    let worker_args = WorkerArgs {
        suite: &s.suite,
        results: &s.results,
        reports: &s.reports,
        dataset: s.dataset.as_deref(),
        retry_failed: args.retry_failed,
        time_limit: args.time_limit,
    };
    let workers = spawn_workers(&worker_args, jobs, since, threads)?;
    eprintln!("suite {}: {jobs} workers with {threads} thread(s) each", p.suite.decl.name);
    let own = p.reproduce_sitting(&sitting);
    let waited = wait_for_workers(workers);
    own?;
    waited?;
    let done = p.runs.iter().filter(|r| p.store.is_done(&r.id)).count();
    let failed = p.runs.iter().filter(|r| p.store.status(&r.id) == RunStatus::Failed).count();
    let left = p.runs.len() - done - failed;
    eprintln!("suite {}: {done} of {} runs done, {failed} failed, {left} skipped or not started", p.suite.decl.name, p.runs.len());
    // Runs left without a failure are dependants of failed runs, or were
    // not started because of the time limit.
    Ok(if failed > 0 || (left > 0 && args.time_limit.is_none()) { RUNS_FAILED } else { 0 })
}

/// `--time-limit`: MINUTES, MM:SS or HH:MM:SS.
fn parse_wall_time(s: &str) -> Result<std::time::Duration, String> {
    let parts: Option<Vec<u64>> = s.split(':').map(|p| p.parse().ok()).collect();
    let seconds = match parts.as_deref() {
        Some([m]) => m * 60,
        Some([m, s]) if *s < 60 => m * 60 + s,
        Some([h, m, s]) if *m < 60 && *s < 60 => h * 3600 + m * 60 + s,
        _ => return Err(format!("time limit {s:?}: expected MINUTES, MM:SS or HH:MM:SS")),
    };
    Ok(std::time::Duration::from_secs(seconds))
}

pub fn report(args: SuiteArgs) -> Result<i32> {
    let p = prepare(&args)?;
    let r = crate::report::write_report(&p, &args.reports)?;
    for f in &r.files {
        outln!("{}", r.dir.join(f).display());
    }
    if r.missing > 0 {
        eprintln!(
            "note: {} planned run(s) of suite '{}' are not finished; the report covers the finished ones (`cmkm plan` lists them)",
            r.missing, p.suite.decl.name
        );
    }
    Ok(0)
}

/// Options of `cmkm compare`.
#[derive(clap::Args, Debug)]
pub struct CompareArgs {
    /// Results folder A (e.g. results/ from one machine, or results/quick-utd).
    pub a: PathBuf,
    /// Results folder B.
    pub b: PathBuf,
    /// Also write compare.md/.csv/.tex here.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Exit with status 4 when a metric differs by more than this (e.g. 0
    /// to check bit-identical results), or a run is missing on one side.
    #[arg(long)]
    pub max_diff: Option<f64>,
}

pub fn compare(args: CompareArgs) -> Result<i32> {
    use crate::report::compare::{compare, describe_side};
    let c = compare(&args.a, &args.b)?;
    outln!("{}", describe_side("A", &args.a, &c.hardware.0));
    outln!("{}", describe_side("B", &args.b, &c.hardware.1));
    outln!("");
    out!("{}", c.table.markdown());
    outln!("");
    let (ta, tb) = c.total_seconds;
    outln!(
        "{} run(s) in both; total wall time A {ta:.1} s, B {tb:.1} s (B/A {:.3}); largest metric difference {:.3e}",
        c.table.rows.iter().map(|r| &r[0]).collect::<std::collections::BTreeSet<_>>().len(),
        tb / ta.max(1e-9),
        c.max_abs_diff
    );
    for (side, runs) in [("A", &c.only_a), ("B", &c.only_b)] {
        if !runs.is_empty() {
            outln!("only in {side}: {}", runs.join(", "));
        }
    }
    if let Some(dir) = &args.out {
        std::fs::create_dir_all(dir)?;
        c.table.write_all(
            dir,
            "compare",
            "Run comparison",
            &format!("{}\n\n{}\n", describe_side("A", &args.a, &c.hardware.0), describe_side("B", &args.b, &c.hardware.1)),
        )?;
    }
    match args.max_diff {
        Some(limit) if c.max_abs_diff > limit || !c.only_a.is_empty() || !c.only_b.is_empty() => {
            eprintln!("error: results differ by more than {limit} (largest difference {:.3e}) or runs are missing on one side", c.max_abs_diff);
            Ok(4)
        }
        _ => Ok(0),
    }
}
