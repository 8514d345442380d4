//! Running a suite on a Slurm cluster: `cmkm slurm submit` turns the runs a
//! suite is missing into dependent job arrays whose tasks each call `cmkm
//! run` on the shared run store, and `cmkm slurm status` shows each run's
//! store status beside its job's Slurm state.
//!
//! The store does the bookkeeping it already does for `cmkm reproduce`: a
//! run is content-addressed, claimed under a lock and committed by a rename,
//! so a job that dies leaves nothing half-written and a job whose run is
//! already done exits at once. Slurm adds the ordering: each array waits
//! (`afterok`) for exactly the tasks its runs need, and
//! `--kill-on-invalid-dep=yes` cancels the dependants of a failed run
//! instead of leaving them pending.

pub mod arrays;
pub mod record;
pub mod scheduler;

use self::arrays::{job_arrays, Dependency, JobArray};
use self::record::{RunJob, SubmissionRecord};
use crate::device::DeviceChoice;
use crate::harness::runner::{PlanEntry, Prepared};
use crate::harness::store::RunStatus;
use crate::harness::workers::Workers;
use anyhow::{bail, Context, Result};
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// A job's time limit.
#[derive(Debug, Clone, PartialEq)]
pub enum TimeLimit {
    /// From `cmkm plan`'s estimate of the array's longest run: 1.5 times it
    /// plus 10 minutes.
    Auto,
    /// As given, in a format `sbatch --time` takes.
    Fixed(String),
}

impl std::str::FromStr for TimeLimit {
    type Err = String;
    /// `auto`, `MINUTES`, `HH:MM:SS` or `D-HH:MM:SS`.
    fn from_str(s: &str) -> Result<Self, String> {
        if s == "auto" {
            return Ok(TimeLimit::Auto);
        }
        let clock = s.split_once('-').map_or(s, |(days, rest)| if days.bytes().all(|b| b.is_ascii_digit()) && !days.is_empty() { rest } else { "x" });
        let parts: Vec<&str> = clock.split(':').collect();
        if parts.len() <= 3 && parts.iter().all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit())) {
            Ok(TimeLimit::Fixed(s.to_string()))
        } else {
            Err(format!("time limit {s:?}: expected auto, MINUTES, HH:MM:SS or D-HH:MM:SS"))
        }
    }
}

/// What every job of a submission asks Slurm for.
#[derive(Debug, Clone)]
pub struct JobResources {
    pub partition: Option<String>,
    pub time: TimeLimit,
    pub cpus_per_task: Option<u32>,
    pub mem: Option<String>,
    /// Generic resources, e.g. `gpu:1` on a GPU partition.
    pub gres: Option<String>,
    /// At most this many tasks of one array run at once (`--array=...%N`).
    pub max_parallel: Option<u32>,
    /// Further `sbatch` options, each written as an `#SBATCH` line.
    pub sbatch_args: Vec<String>,
}

/// How a job runs one run of the suite: `<cmkm> run <suite> --results ...
/// --run <id> --wait`, from `workdir`. Paths are absolute, as the nodes see
/// them (a filesystem shared by the nodes).
#[derive(Debug, Clone)]
pub struct JobCommand {
    pub cmkm: PathBuf,
    pub workdir: PathBuf,
    pub suite: PathBuf,
    pub results: PathBuf,
    pub reports: PathBuf,
    pub dataset: Option<PathBuf>,
    /// `--device` of every job (left off for the CPU).
    pub device: DeviceChoice,
}

/// The time limit used when `--time auto` finds no recorded timing.
const UNKNOWN_TIME: &str = "1-00:00:00";

/// Removes from `runs` those recorded as failed and every run that needs
/// one of them, directly or not; returns how many.
fn hold_back_failed(runs: &mut Vec<PlanEntry>) -> usize {
    let mut held: std::collections::BTreeSet<String> = runs.iter().filter(|r| r.status == RunStatus::Failed).map(|r| r.id.clone()).collect();
    // Plan order is a dependency order: one pass reaches every dependant.
    for r in runs.iter() {
        if r.depends_on.iter().any(|d| held.contains(d)) {
            held.insert(r.id.clone());
        }
    }
    let before = runs.len();
    runs.retain(|r| !held.contains(&r.id));
    before - runs.len()
}

/// What `cmkm slurm submit` adds to the runs' jobs.
#[derive(Debug, Clone, Copy, Default)]
pub struct SubmitChoices {
    /// A report job after every array (`afterany`).
    pub report: bool,
    /// Only return the scripts and `sbatch` lines.
    pub dry_run: bool,
    /// Submit again the runs recorded as failed (and what needs them); by
    /// default they are held back, as `cmkm reproduce` does not re-enter them.
    pub retry_failed: bool,
}

/// `cmkm slurm submit`: submits the runs `p` is missing (not done, not
/// failed unless `choices.retry_failed`, and not queued under an earlier
/// submission's live job), one job array per set of runs waiting for the
/// same runs, and optionally a report job after all of them. Returns what
/// to print.
pub fn submit(p: &Prepared, command: &JobCommand, resources: &JobResources, choices: SubmitChoices) -> Result<String> {
    let SubmitChoices { report, dry_run, retry_failed } = choices;
    // Each job runs one run on its --cpus-per-task (Slurm's default: 1).
    let threads = resources.cpus_per_task.map_or(1, |n| n as usize);
    let dir = p.store.suite_dir(&p.suite.decl.name).join("slurm");
    let record_path = dir.join("jobs.json");
    let mut record = SubmissionRecord::load(&record_path)?;
    // Slurm first, then the store: a job that ends in between has committed
    // its run before it ended, so the run reads as done rather than as
    // neither done nor queued (and submitted a second time).
    let states = earlier_job_states(&record, dry_run)?;
    let mut overview = p.overview(&command.reports, Workers { jobs: resources.max_parallel.map_or(1, |n| n as usize).max(1), threads });
    let held = if retry_failed { 0 } else { hold_back_failed(&mut overview.runs) };
    let queued = queued_runs(&record, &states, &overview.runs);
    let arrays = job_arrays(&overview.runs, &queued)?;
    let done = overview.runs.iter().filter(|r| r.status == RunStatus::Done).count();
    let mut out = String::new();
    let todo: usize = arrays.iter().map(|a| a.runs.len()).sum();
    writeln!(
        out,
        "# suite {}: {} runs; {done} done, {} queued or running under earlier jobs, {todo} to submit in {} job array(s)",
        overview.suite,
        overview.runs.len() + held,
        queued.len(),
        arrays.len()
    )?;
    if held > 0 {
        writeln!(out, "# {held} run(s) failed earlier or need one that did: held back (`cmkm slurm status` says why; --retry-failed submits them)")?;
    }
    if arrays.is_empty() {
        return Ok(out);
    }
    let submission = next_submission_dir(&dir)?;
    let logs = dir.join("logs");
    let scripts: Vec<(PathBuf, String)> = arrays
        .iter()
        .enumerate()
        .map(|(k, a)| (submission.join(format!("array-{k}.sh")), array_script(&overview.suite, k, a, command, resources, &logs)))
        .collect();
    let report_script = report.then(|| (submission.join("report.sh"), report_script(&overview.suite, command, resources, &logs)));
    if dry_run {
        for (path, text) in scripts.iter().chain(report_script.iter()) {
            writeln!(out, "# ==== {} ====\n{text}", path.display())?;
        }
        writeln!(out, "# ==== sbatch ====")?;
        for (k, ((path, _), array)) in scripts.iter().zip(&arrays).enumerate() {
            let deps: String = dependency_options(&array.after, |k| format!("${{ARRAY_{k}}}")).iter().map(|o| format!(" {o}")).collect();
            writeln!(out, "ARRAY_{k}=$(sbatch --parsable{deps} {})", shell_quote(path))?;
        }
        if let Some((path, _)) = &report_script {
            let after: Vec<String> = (0..arrays.len()).map(|k| format!("${{ARRAY_{k}}}")).chain(queued.values().cloned()).collect();
            writeln!(out, "REPORT=$(sbatch --parsable --dependency=afterany:{} {})", after.join(":"), shell_quote(path))?;
        }
        return Ok(out);
    }
    for path in [&submission, &logs] {
        std::fs::create_dir_all(path).with_context(|| format!("{}: cannot create the folder", path.display()))?;
    }
    for (path, text) in scripts.iter().chain(report_script.iter()) {
        write_script(path, text)?;
    }
    let mut job_ids: Vec<String> = vec![];
    for ((path, _), array) in scripts.iter().zip(&arrays) {
        let options = dependency_options(&array.after, |k| job_ids[k].clone());
        let job = scheduler::sbatch(path, &options).with_context(|| {
            format!("submitting {} (the record {} keeps the {} array(s) submitted before it)", path.display(), record_path.display(), job_ids.len())
        })?;
        for (task, run) in array.runs.iter().enumerate() {
            record.runs.insert(
                run.id.clone(),
                RunJob { job: format!("{job}_{task}"), label: run.label.clone(), script: path.clone(), log: logs.join(format!("{}.log", run.id)) },
            );
        }
        record.save(&record_path)?;
        writeln!(out, "job {job}: {} ({} run(s)){}", path.display(), array.runs.len(), describe_after(&array.after, &job_ids))?;
        job_ids.push(job);
    }
    if let Some((path, _)) = &report_script {
        let after: Vec<String> = job_ids.iter().cloned().chain(queued.values().cloned()).collect();
        let job = scheduler::sbatch(path, &[format!("--dependency=afterany:{}", after.join(":"))])?;
        record.report_job = Some(job.clone());
        record.save(&record_path)?;
        writeln!(out, "job {job}: {} (cmkm report, after every job above)", path.display())?;
    }
    writeln!(out, "# scripts in {}, logs in {}, record {}; `cmkm slurm status` follows the jobs", submission.display(), logs.display(), record_path.display())?;
    Ok(out)
}

/// What Slurm says of the jobs of earlier submissions (none asked where
/// there were none). A dry run without a reachable Slurm assumes none.
fn earlier_job_states(record: &SubmissionRecord, dry_run: bool) -> Result<BTreeMap<String, String>> {
    if record.runs.is_empty() {
        return Ok(BTreeMap::new());
    }
    match scheduler::job_states(&record.array_jobs()) {
        Ok(states) => Ok(states),
        Err(e) if dry_run => {
            eprintln!("warning: {e:#}; assuming no earlier job is still queued");
            Ok(BTreeMap::new())
        }
        Err(e) => Err(e.context("cannot tell which earlier jobs are still queued")),
    }
}

/// Runs not done whose recorded job Slurm still lists as queued or running
/// (`states`): run id -> job.
fn queued_runs(record: &SubmissionRecord, states: &BTreeMap<String, String>, runs: &[PlanEntry]) -> BTreeMap<String, String> {
    runs.iter()
        .filter(|r| r.status != RunStatus::Done)
        .filter_map(|r| record.runs.get(&r.id).filter(|j| scheduler::live(states, &j.job)).map(|j| (r.id.clone(), j.job.clone())))
        .collect()
}

/// `--dependency=afterok:...` and `--kill-on-invalid-dep=yes`, or nothing
/// for an array that waits for nothing; `array_job(k)` names array `k` of
/// this submission.
fn dependency_options(after: &[Dependency], array_job: impl Fn(usize) -> String) -> Vec<String> {
    if after.is_empty() {
        return vec![];
    }
    let jobs: Vec<String> = after
        .iter()
        .map(|d| match d {
            Dependency::Submitted { array, task } => format!("{}_{task}", array_job(*array)),
            Dependency::Queued(job) => job.clone(),
        })
        .collect();
    vec![format!("--dependency=afterok:{}", jobs.join(":")), "--kill-on-invalid-dep=yes".into()]
}

fn describe_after(after: &[Dependency], job_ids: &[String]) -> String {
    let opts = dependency_options(after, |k| job_ids[k].clone());
    opts.first().map(|o| format!(", {}", o.trim_start_matches("--dependency="))).unwrap_or_default()
}

/// `slurm/submit-NNN`, numbered after the existing ones.
fn next_submission_dir(dir: &Path) -> Result<PathBuf> {
    let taken = match std::fs::read_dir(dir) {
        Ok(entries) => entries.flatten().filter(|e| e.file_name().to_string_lossy().starts_with("submit-")).count(),
        Err(_) => 0,
    };
    Ok(dir.join(format!("submit-{:03}", taken + 1)))
}

fn write_script(path: &Path, text: &str) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    crate::fsutil::write_atomic(path, text.as_bytes())?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).with_context(|| format!("{}: cannot make it executable", path.display()))
}

/// Single-quotes `s` for bash.
pub fn shell_quote(s: impl AsRef<std::ffi::OsStr>) -> String {
    format!("'{}'", s.as_ref().to_string_lossy().replace('\'', r"'\''"))
}

/// `#SBATCH` lines every job of the submission shares.
fn resource_lines(resources: &JobResources, time: &str) -> String {
    let mut lines = format!("#SBATCH --time={time}\n");
    let mut add = |name: &str, value: &Option<String>| {
        if let Some(v) = value {
            lines.push_str(&format!("#SBATCH --{name}={v}\n"));
        }
    };
    add("partition", &resources.partition);
    add("cpus-per-task", &resources.cpus_per_task.map(|n| n.to_string()));
    add("mem", &resources.mem);
    add("gres", &resources.gres);
    for arg in &resources.sbatch_args {
        lines.push_str(&format!("#SBATCH {arg}\n"));
    }
    lines
}

/// The time limit of an array under `--time auto`: its longest run's
/// estimate x 1.5 + 10 minutes, in whole minutes.
fn array_time(array: &JobArray, time: &TimeLimit) -> String {
    match time {
        TimeLimit::Fixed(t) => t.clone(),
        TimeLimit::Auto => {
            // A job's time limit trusts recorded timings only, not FLOP-based guesses.
            let estimates: Option<Vec<f64>> = array.runs.iter().map(|r| r.estimate_seconds.filter(|_| !r.estimate_from_flops)).collect();
            match estimates {
                Some(e) => slurm_minutes(e.iter().cloned().fold(0.0, f64::max) * 1.5 + 600.0),
                None => UNKNOWN_TIME.to_string(),
            }
        }
    }
}

/// Seconds as `D-HH:MM:00`, rounded up to the minute.
fn slurm_minutes(seconds: f64) -> String {
    let minutes = (seconds / 60.0).ceil().max(1.0) as u64;
    format!("{}-{:02}:{:02}:00", minutes / 1440, minutes % 1440 / 60, minutes % 60)
}

/// The `cmkm` options naming the suite, its stores and dataset.
fn suite_options(c: &JobCommand) -> String {
    let mut s = format!("{} --results {} --reports {}", shell_quote(&c.suite), shell_quote(&c.results), shell_quote(&c.reports));
    if let Some(d) = &c.dataset {
        s.push_str(&format!(" --dataset {}", shell_quote(d)));
    }
    if c.device != DeviceChoice::Cpu {
        s.push_str(&format!(" --device {}", c.device));
    }
    s
}

/// The script of job array `k`: task `i` runs `array.runs[i]` with `cmkm
/// run --wait` (a run held by another process is waited for, a run already
/// done exits 0), appending to the run's own log.
fn array_script(suite: &str, k: usize, array: &JobArray, c: &JobCommand, r: &JobResources, logs: &Path) -> String {
    let n = array.runs.len();
    let range = if n == 1 { "0".to_string() } else { format!("0-{}", n - 1) };
    let throttle = r.max_parallel.map(|m| format!("%{m}")).unwrap_or_default();
    let mut s = format!("#!/bin/bash\n# cmkm {} slurm submit: suite {suite}, job array {k}, one task per run:\n", env!("CARGO_PKG_VERSION"));
    for (i, run) in array.runs.iter().enumerate() {
        s.push_str(&format!("#   task {i}: {} {}\n", run.id, run.label));
    }
    s.push_str(&format!(
        "#SBATCH --job-name=cmkm-{suite}-{k}\n#SBATCH --array={range}{throttle}\n#SBATCH --output={}\n",
        logs.join("slurm-%A_%a.out").display()
    ));
    s.push_str(&resource_lines(r, &array_time(array, &r.time)));
    let ids: Vec<&str> = array.runs.iter().map(|r| r.id.as_str()).collect();
    s.push_str(&format!(
        "set -euo pipefail\nruns=({})\nrun=${{runs[$SLURM_ARRAY_TASK_ID]}}\nexec >>{}/\"$run.log\" 2>&1\necho \"== $(date -u +%FT%TZ) job ${{SLURM_ARRAY_JOB_ID}}_${{SLURM_ARRAY_TASK_ID}} on $(hostname): run $run\"\n",
        ids.join(" "),
        shell_quote(logs)
    ));
    s.push_str("if [[ -n ${SLURM_CPUS_PER_TASK:-} ]]; then export RAYON_NUM_THREADS=$SLURM_CPUS_PER_TASK; fi\n");
    s.push_str(&format!("cd {}\nexec {} run {} --run \"$run\" --wait\n", shell_quote(&c.workdir), shell_quote(&c.cmkm), suite_options(c)));
    s
}

/// The report job's script: `cmkm report` once every run's job has ended.
fn report_script(suite: &str, c: &JobCommand, r: &JobResources, logs: &Path) -> String {
    let time = match &r.time {
        TimeLimit::Fixed(t) => t.clone(),
        TimeLimit::Auto => "0-00:30:00".into(),
    };
    let mut s = format!("#!/bin/bash\n# cmkm {} slurm submit: suite {suite}, the report after every run's job\n", env!("CARGO_PKG_VERSION"));
    s.push_str(&format!("#SBATCH --job-name=cmkm-{suite}-report\n#SBATCH --output={}\n", logs.join("report-%j.log").display()));
    let mut plain = r.clone();
    plain.gres = None; // a report needs no accelerator
    s.push_str(&resource_lines(&plain, &time));
    s.push_str(&format!("set -euo pipefail\ncd {}\nexec {} report {}\n", shell_quote(&c.workdir), shell_quote(&c.cmkm), suite_options(c)));
    s
}

/// `cmkm slurm status`: each run's store status beside its job's Slurm
/// state, then the counts of each.
pub fn status(p: &Prepared, reports: &Path) -> Result<String> {
    let record_path = p.store.suite_dir(&p.suite.decl.name).join("slurm").join("jobs.json");
    let record = SubmissionRecord::load(&record_path)?;
    let states = if record.runs.is_empty() {
        BTreeMap::new()
    } else {
        scheduler::job_states(&record.array_jobs()).context("cannot read the jobs' states from Slurm")?
    };
    // The store after Slurm, as `submit` reads them: a job Slurm saw end
    // has committed its run by then.
    let overview = p.overview(reports, Workers::new(Some(1), Workers::cores()));
    let mut out = format!("suite {} ({} runs) -> {}; jobs from {}\n", overview.suite, overview.runs.len(), overview.results.display(), record_path.display());
    let mut store_counts: BTreeMap<&str, usize> = BTreeMap::new();
    let mut slurm_counts: BTreeMap<String, usize> = BTreeMap::new();
    for r in &overview.runs {
        let (job, state) = match record.runs.get(&r.id) {
            Some(j) => (j.job.clone(), states.get(&j.job).cloned().unwrap_or_else(|| "unknown".into())),
            None => ("-".into(), "-".into()),
        };
        *store_counts.entry(r.status.word()).or_default() += 1;
        *slurm_counts.entry(state.clone()).or_default() += 1;
        writeln!(out, "  {}  {:<6}  {:<12} {:<12} {}", r.id, r.status.word(), job, state, r.label)?;
    }
    if let Some(job) = &record.report_job {
        writeln!(out, "  report job {job}: {}", states.get(job).map_or("unknown", String::as_str))?;
    }
    let join = |m: Vec<(String, usize)>| m.into_iter().map(|(k, n)| format!("{n} {k}")).collect::<Vec<_>>().join(", ");
    writeln!(out, "store: {}", join(store_counts.into_iter().map(|(k, n)| (k.to_string(), n)).collect()))?;
    writeln!(out, "slurm: {} (unknown: Slurm no longer lists the job; -: never submitted)", join(slurm_counts.into_iter().collect()))?;
    Ok(out)
}

/// Rejects option values that would break the generated `#SBATCH` lines.
pub fn check_resources(r: &JobResources) -> Result<()> {
    for arg in &r.sbatch_args {
        if !arg.starts_with('-') || arg.contains('\n') {
            bail!("--sbatch-arg {arg:?}: expected one sbatch option such as --account=lab or --qos=short");
        }
    }
    for (name, v) in [("partition", &r.partition), ("mem", &r.mem), ("gres", &r.gres)] {
        if v.as_ref().is_some_and(|v| v.is_empty() || v.contains(char::is_whitespace)) {
            bail!("--{name} {v:?}: expected one word", v = v.as_deref().unwrap_or_default());
        }
    }
    if r.max_parallel == Some(0) || r.cpus_per_task == Some(0) {
        bail!("--max-parallel and --cpus-per-task must be at least 1");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn time_limits_parse_and_round_up() {
        assert_eq!("auto".parse::<TimeLimit>(), Ok(TimeLimit::Auto));
        for ok in ["90", "01:30:00", "2-00:00:00", "30:00"] {
            assert_eq!(ok.parse::<TimeLimit>(), Ok(TimeLimit::Fixed(ok.into())), "{ok}");
        }
        for bad in ["", "1h", "x-01:00:00", "1:2:3:4", "-5"] {
            assert!(bad.parse::<TimeLimit>().is_err(), "{bad}");
        }
        assert_eq!(slurm_minutes(61.0), "0-00:02:00");
        assert_eq!(slurm_minutes(25.0 * 3600.0), "1-01:00:00");
    }

    /// Every job computes on the submitting command's `--device`; the CPU
    /// adds nothing, so CPU job scripts stay as they were.
    #[test]
    fn jobs_inherit_the_device() {
        let command = |device| JobCommand {
            cmkm: "/bin/cmkm".into(),
            workdir: "/w".into(),
            suite: "/w/s.yaml".into(),
            results: "/w/r".into(),
            reports: "/w/p".into(),
            dataset: None,
            device,
        };
        assert_eq!(suite_options(&command(DeviceChoice::Cpu)), "'/w/s.yaml' --results '/w/r' --reports '/w/p'");
        assert_eq!(suite_options(&command(DeviceChoice::Gpu)), "'/w/s.yaml' --results '/w/r' --reports '/w/p' --device gpu");
        assert!(suite_options(&command(DeviceChoice::Adapter(1))).ends_with(" --device gpu:1"));
    }

    #[test]
    fn quoting_survives_quotes() {
        assert_eq!(shell_quote("/a b/it's"), r"'/a b/it'\''s'");
    }
}
