//! Executing planned runs: one at a time (`cmkm run`, for cluster fan-out)
//! or everything missing in dependency order (`cmkm reproduce`). A run that
//! fails (e.g. a diverging loss) is recorded with its reason and the suite
//! goes on with what does not depend on it.

use super::estimate::Timings;
use super::plan::{plan, PlannedRun, Step};
use super::steps::RunEnv;
use super::store::{ClaimOutcome, Hardware, RunRecordFile, RunStatus, RunStore};
use super::suite::Suite;
use super::workers::{wall_time, Workers};
use crate::data::Dataset;
use crate::methods::devices;
use crate::models::InputShape;
use crate::training::{format_duration, Progress};
use anyhow::{bail, Context, Result};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// A suite ready to run: its plan, dataset and store.
pub struct Prepared {
    pub suite: Suite,
    pub dataset: Dataset,
    pub runs: Vec<PlannedRun>,
    pub store: RunStore,
}

/// Loads a suite, its dataset, and plans it against the run store in
/// `results` (shared by every suite: `results/runs/<id>`).
pub fn prepare(suite_path: &Path, results: &Path) -> Result<Prepared> {
    prepare_with(suite_path, results, None)
}

/// As [`prepare`], on another dataset declaration than the suite's: the
/// suite is then named `<suite>-<dataset name>`, so its runs and reports
/// stay apart from the suite's own.
pub fn prepare_with(suite_path: &Path, results: &Path, dataset: Option<&Path>) -> Result<Prepared> {
    let mut suite = Suite::from_file(suite_path)?;
    if let Some(path) = dataset {
        suite.dataset_path = path.to_path_buf();
    }
    let decl = suite.dataset_decl()?;
    if dataset.is_some() {
        suite.decl.name = format!("{}-{}", suite.decl.name, decl.name);
    }
    let dataset = Dataset::load(&decl, &[])?;
    dataset.ensure_clean()?;
    suite.check_against(&dataset)?;
    let fingerprint = crate::data::fingerprint::fingerprint(&dataset)?;
    let runs = plan(&suite, &fingerprint)?;
    let store = RunStore::new(results.to_path_buf());
    let adopted = store.adopt_suite_stores()?;
    if adopted > 0 {
        eprintln!(
            "moved {adopted} finished run(s) from per-suite folders under {} into the shared run store {}",
            store.root.display(),
            store.root.join("runs").display()
        );
    }
    Ok(Prepared { suite, dataset, runs, store })
}

impl Prepared {
    /// The planned run with this id (a unique prefix is enough).
    pub fn find(&self, id: &str) -> Result<&PlannedRun> {
        let hits: Vec<&PlannedRun> = self.runs.iter().filter(|r| r.id.starts_with(id)).collect();
        match hits.as_slice() {
            [one] => Ok(one),
            [] => bail!("suite '{}' plans no run {id} (see `cmkm plan`)", self.suite.decl.name),
            _ => bail!("run id prefix {id} is ambiguous"),
        }
    }

    /// Executes one run whose dependencies are done, unless another process
    /// holds its lock ([`Executed::Busy`]) or has finished it meanwhile.
    pub fn execute(&self, run: &PlannedRun, quiet: bool) -> Result<Executed> {
        self.execute_announced(run, quiet, || {})
    }

    /// [`Self::execute`], calling `started` once this process holds the
    /// run, before it starts: so that of two workers reaching a run
    /// together only the one that runs it says so.
    fn execute_announced(&self, run: &PlannedRun, quiet: bool, started: impl FnOnce()) -> Result<Executed> {
        if let Some(dep) = run.depends_on.iter().find(|d| !self.store.is_done(d)) {
            bail!("run {} ({}) needs run {dep} first", run.id, run.label);
        }
        let claim = match self.store.claim(&run.id)? {
            ClaimOutcome::Claimed(c) => c,
            ClaimOutcome::Busy => return Ok(Executed::Busy),
            ClaimOutcome::Done => return Ok(Executed::AlreadyDone),
        };
        started();
        let start = Instant::now();
        let performed = catch_panic(|| {
            crate::faults::at_run_start(&run.label)?;
            self.perform(run, &claim.staging, quiet)
        });
        performed.with_context(|| format!("run {} ({})", run.id, run.label))?;
        let seconds = start.elapsed().as_secs_f64();
        claim.commit(&RunRecordFile { id: run.id.clone(), label: run.label.clone(), seconds, hardware: Hardware::current() })?;
        Ok(Executed::Ran(seconds))
    }

    fn perform(&self, run: &PlannedRun, out: &Path, quiet: bool) -> Result<()> {
        crate::fsutil::write_atomic(&out.join("plan.json"), serde_json::to_string_pretty(run)?.as_bytes())?;
        let env = RunEnv {
            dataset: &self.dataset,
            store: &self.store,
            protocol: &self.suite.decl.protocol,
            seed: run.seed,
            device: devices().1,
            progress: Progress { label: run.label.clone(), quiet },
        };
        run.step.kind().perform(&env, out)
    }

    /// Runs everything missing, in plan order; failures (errors and panics
    /// alike) are recorded and skipped along with what depends on them.
    /// Runs locked by another live process (a second `cmkm reproduce` on
    /// the same results) are left to it and revisited, with what depends on
    /// them, until they are done or their process is gone. Returns (done,
    /// failed).
    pub fn reproduce(&self, quiet: bool) -> Result<(usize, usize)> {
        self.reproduce_sitting(&Sitting::new(quiet))
    }

    /// [`Prepared::reproduce`] as one sitting: possibly one of several
    /// worker processes started at `sitting.since` (`cmkm reproduce --jobs
    /// N`), where a failure any of them recorded since then is final for
    /// all of them, so no run fails twice and dependants of a failed run are
    /// skipped everywhere. A failure recorded by an earlier sitting is final
    /// too (the run's id changes with its inputs, so the same id would fail
    /// the same way) unless `sitting.retry_failed`. With a [`Deadline`], a
    /// run expected to end after it is not started, nor are its dependants:
    /// they stay to do, for the next sitting.
    pub fn reproduce_sitting(&self, sitting: &Sitting) -> Result<(usize, usize)> {
        let (quiet, since, deadline) = (sitting.quiet, sitting.since, sitting.deadline);
        crate::fsutil::ensure_writable_dir(&self.store.root)?;
        self.store.clean_stale();
        let total = self.runs.len();
        let mut failed: Vec<String> = vec![];
        let mut deferred: Vec<String> = vec![];
        // Runs in flight in another process when the deadline excluded them here.
        let mut left_to_owner: Vec<String> = vec![];
        let start = Instant::now();
        let mut pending: Vec<(usize, &PlannedRun)> = self.runs.iter().enumerate().collect();
        let mut announced_wait = std::collections::BTreeSet::new();
        while !pending.is_empty() {
            let mut waiting = vec![];
            let mut progressed = false;
            for (k, run) in pending {
                if self.store.is_done(&run.id) {
                    continue;
                }
                if self.store.failed_since(&run.id, since) && !failed.contains(&run.id) {
                    eprintln!("[{}/{total}] {} ({}) failed in another worker", k + 1, run.label, run.id);
                    failed.push(run.id.clone());
                    progressed = true;
                    continue;
                }
                if !sitting.retry_failed && !failed.contains(&run.id) {
                    if let Some(reason) = self.store.failure(&run.id) {
                        let first = reason.lines().next().unwrap_or("");
                        eprintln!(
                            "[{}/{total}] {} ({}) failed in an earlier sitting ({first}); not run again without --retry-failed",
                            k + 1,
                            run.label,
                            run.id
                        );
                        failed.push(run.id.clone());
                        progressed = true;
                        continue;
                    }
                }
                if let Some(dep) = run.depends_on.iter().find(|d| failed.contains(d) || self.store.failed_since(d, since)) {
                    eprintln!("[{}/{total}] skip {} ({}): its dependency {dep} failed", k + 1, run.label, run.id);
                    failed.push(run.id.clone());
                    progressed = true;
                    continue;
                }
                if run.depends_on.iter().any(|d| deferred.contains(d) || left_to_owner.contains(d)) {
                    deferred.push(run.id.clone());
                    continue;
                }
                if run.depends_on.iter().any(|d| !self.store.is_done(d)) {
                    waiting.push((k, run)); // a dependency is being run elsewhere
                    continue;
                }
                let in_flight_elsewhere = announced_wait.contains(&run.id);
                if let Some(why) = deadline.and_then(|d| d.excludes(&run.id)) {
                    if in_flight_elsewhere {
                        // Another process holds it and finishes it: not a run left for later.
                        left_to_owner.push(run.id.clone());
                    } else {
                        eprintln!("[{}/{total}] not started: {} ({}) {why}", k + 1, run.label, run.id);
                        deferred.push(run.id.clone());
                    }
                    continue;
                }
                let announce = || eprintln!("[{}/{total}] {} ({}) | elapsed {}", k + 1, run.label, run.id, format_duration(start.elapsed().as_secs_f64()));
                match self.execute_announced(run, quiet, announce) {
                    Ok(Executed::Ran(s)) => {
                        eprintln!("[{}/{total}] done in {}", k + 1, format_duration(s));
                        progressed = true;
                    }
                    Ok(Executed::AlreadyDone) => {
                        eprintln!("[{}/{total}] finished by another process", k + 1);
                        progressed = true;
                    }
                    Ok(Executed::Busy) => {
                        if announced_wait.insert(run.id.clone()) {
                            eprintln!("[{}/{total}] {} ({}) is being run by another process; coming back to it", k + 1, run.label, run.id);
                        }
                        waiting.push((k, run));
                    }
                    Err(e) => {
                        let reason = format!("{e:#}");
                        eprintln!("[{}/{total}] FAILED: {reason}", k + 1);
                        self.store.record_failure(&run.id, &reason)?;
                        failed.push(run.id.clone());
                        progressed = true;
                    }
                }
            }
            if !progressed && !waiting.is_empty() {
                std::thread::sleep(std::time::Duration::from_millis(200));
            }
            pending = waiting;
        }
        if !deferred.is_empty() {
            eprintln!("{} run(s) not started within the time limit; `cmkm reproduce` again goes on with them", deferred.len());
        }
        Ok((self.runs.iter().filter(|r| self.store.is_done(&r.id)).count(), failed.len()))
    }

    /// Every planned run with its status and time estimate, from recorded
    /// step timings (finished runs of any suite under the results folder,
    /// and the `timings.csv` of committed reports under `reports`): what
    /// `cmkm plan` prints and `cmkm plan --json` and the Slurm submitter read.
    /// Estimates are for runs on `workers.threads` threads, and the wall
    /// time left for `workers.jobs` workers taking the runs in plan order.
    pub fn overview(&self, reports: &Path, workers: Workers) -> PlanOverview {
        let timings = Timings::gather(&self.store.root, reports);
        let runs = self
            .runs
            .iter()
            .map(|r| {
                let step = r.step.kind().work().kind;
                PlanEntry {
                    id: r.id.clone(),
                    label: r.label.clone(),
                    step,
                    method: r.method.clone(),
                    also: r.also.clone(),
                    seed: r.seed,
                    status: self.store.status(&r.id),
                    depends_on: r.depends_on.clone(),
                    estimate_seconds: timings.estimate(r, workers.threads),
                    estimate_from_flops: false,
                }
            })
            .collect();
        let (runs, flop_rate) = self.with_flop_estimates(runs, workers.threads);
        let mut o = PlanOverview {
            flop_rate,
            suite: self.suite.decl.name.clone(),
            results: self.store.root.clone(),
            runs,
            timing_cpus: timings.cpus,
            workers,
            wall_seconds_left: 0.0,
        };
        o.wall_seconds_left = o.wall_time_left();
        o
    }

    /// Fills in the estimates recorded timings leave open from each run's
    /// FLOPs ([`super::flop_estimate`]), marked as such; returns how the
    /// rate was found when any was needed.
    fn with_flop_estimates(&self, mut runs: Vec<PlanEntry>, threads: usize) -> (Vec<PlanEntry>, Option<String>) {
        if runs.iter().all(|r| r.estimate_seconds.is_some()) {
            return (runs, None);
        }
        // Shapes from one preprocessed sample per modality and the split's
        // sizes: preparing every sample would cost as much as a run's start.
        let ds = &self.dataset;
        let (Some(dims), Ok(split)) = (ds.preprocessed_dims(), ds.decl.split(&self.suite.decl.protocol, &ds.meta)) else { return (runs, None) };
        let shapes = ds.modalities.iter().zip(dims).map(|(m, (t, j, c))| (m.name.clone(), InputShape { channels: c, frames: t, joints: j })).collect();
        let context = super::flop_estimate::WorkContext {
            shapes,
            classes: ds.decl.classes.len(),
            train: split.train.len(),
            val: split.val.len(),
            test: split.test.len(),
            trained: self
                .runs
                .iter()
                .filter_map(|r| match &r.step {
                    Step::Train(t) => Some((r.id.as_str(), &t.config)),
                    _ => None,
                })
                .collect(),
        };
        let flops: Vec<Option<f64>> = self.runs.iter().map(|r| r.step.kind().flops(&context)).collect();
        let known: Vec<(&'static str, f64, f64)> = runs.iter().zip(&flops).filter_map(|(e, f)| Some((e.step, (*f)?, e.estimate_seconds?))).collect();
        let rate = super::flop_estimate::FlopRate::calibrate(&known, threads, || cmkm_kernels::peak::flops_per_second(0.2));
        for (entry, f) in runs.iter_mut().zip(&flops) {
            if let (None, Some(f)) = (entry.estimate_seconds, f) {
                entry.estimate_seconds = Some(rate.seconds(entry.step, *f));
                entry.estimate_from_flops = true;
            }
        }
        (runs, Some(rate.describe()))
    }

    /// Lines of `cmkm plan`: each run with its status and dependencies, and
    /// the expected wall time of what is left (see [`Prepared::overview`]).
    pub fn describe(&self, reports: &Path, workers: Workers) -> String {
        let o = self.overview(reports, workers);
        let mut out = format!("suite {} ({} runs) -> {}\n", o.suite, o.runs.len(), o.results.display());
        for (method, sweep) in &self.suite.sweeps {
            let names: Vec<&str> = sweep.variants.iter().map(|v| v.name.as_str()).collect();
            out.push_str(&format!(
                "sweep {method} ({} over {}): {} variant(s): {}\n",
                sweep.search.name(),
                sweep.keys.join(", "),
                names.len(),
                names.join(" ")
            ));
        }
        for r in &o.runs {
            let mark = if r.estimate_from_flops { "*" } else { "" };
            let guess = r.estimate_seconds.map(|s| format!("~{}{mark}", format_duration(s))).unwrap_or_else(|| "?".into());
            let deps = if r.depends_on.is_empty() { String::new() } else { format!("  after {}", r.depends_on.join(", ")) };
            out.push_str(&format!("  {}  {:<6} {:>9}  {}{deps}\n", r.id, r.status.word(), guess, r.label));
        }
        let (total, left, unknown) = o.totals();
        let w = o.workers;
        out.push_str(&format!(
            "expected wall time: {} left with {} worker(s) of {} thread(s) (`--jobs {}`); the runs take {} on {} thread(s) each ({} for the whole suite)",
            format_duration(o.wall_seconds_left),
            w.jobs,
            w.threads,
            w.jobs,
            format_duration(left),
            w.threads,
            format_duration(total)
        ));
        if unknown > 0 {
            out.push_str(&format!(" + {unknown} run(s) with no recorded timing for their step and method"));
        }
        if let Some(rate) = &o.flop_rate {
            let n = o.runs.iter().filter(|r| r.estimate_from_flops).count();
            out.push_str(&format!("\n(*: {n} run(s) with no recorded timing, estimated from their FLOPs at {rate}; rough)"));
        }
        if !o.timing_cpus.is_empty() {
            out.push_str(&format!("\n(per-epoch rates recorded on {}; other machines and datasets differ)", o.timing_cpus.join(", ")));
        }
        if crate::device::run_key().is_some() {
            out.push_str(&format!(
                "\n(planned for --device {}: the rates are of whatever device recorded them, the CPU backend for the shipped reports)",
                crate::device::chosen()
            ));
        }
        out.push('\n');
        out
    }
}

/// How one `cmkm reproduce` process goes through a suite
/// ([`Prepared::reproduce_sitting`]).
pub struct Sitting<'a> {
    /// No per-epoch progress lines.
    pub quiet: bool,
    /// When the sitting (its first worker) started: failures recorded since
    /// then are final for every worker of it.
    pub since: std::time::SystemTime,
    /// Runs expected to end after it are not started.
    pub deadline: Option<&'a Deadline>,
    /// Run again the runs whose failure an earlier sitting recorded
    /// (`--retry-failed`: after fixing what failed them outside their
    /// inputs, e.g. a full disk).
    pub retry_failed: bool,
}

impl Sitting<'_> {
    /// A sitting starting now, without deadline or retries.
    pub fn new(quiet: bool) -> Self {
        Sitting { quiet, since: std::time::SystemTime::now(), deadline: None, retry_failed: false }
    }
}

/// Runs `f`, turning a panic inside it (on this thread or a rayon worker
/// it waits for) into an error with the panic's message and where the hook
/// saw it: a bug met by one run fails that run, not the suite. The panic
/// hook still prints its usual line, so the log keeps it too.
fn catch_panic<T>(f: impl FnOnce() -> Result<T>) -> Result<T> {
    static LOCATION: std::sync::Mutex<Option<String>> = std::sync::Mutex::new(None);
    static HOOK: std::sync::Once = std::sync::Once::new();
    HOOK.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if let Some(l) = info.location() {
                *LOCATION.lock().unwrap_or_else(|p| p.into_inner()) = Some(format!("{}:{}", l.file(), l.line()));
            }
            previous(info);
        }));
    });
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)) {
        Ok(result) => result,
        Err(payload) => {
            let message = payload.downcast_ref::<&str>().map(|s| s.to_string()).or_else(|| payload.downcast_ref::<String>().cloned());
            let at = LOCATION.lock().unwrap_or_else(|p| p.into_inner()).take().map(|l| format!(" at {l}")).unwrap_or_default();
            bail!("panicked{at}: {}", message.as_deref().unwrap_or("(no message)"))
        }
    }
}

/// When a time-limited `cmkm reproduce` must be done (`--time-limit`), and
/// how long each run is expected to take.
pub struct Deadline {
    pub at: std::time::SystemTime,
    /// Run id -> expected seconds ([`Prepared::overview`]); a run without an
    /// estimate is started whatever the time.
    pub estimates: BTreeMap<String, f64>,
}

impl Deadline {
    /// Why run `id` should not start now, if it should not: it is expected
    /// to end after the deadline.
    fn excludes(&self, id: &str) -> Option<String> {
        let expected = *self.estimates.get(id)?;
        let left = self.at.duration_since(std::time::SystemTime::now()).map_or(0.0, |d| d.as_secs_f64());
        (expected > left).then(|| format!("is expected to take {} and the time limit ends in {}", format_duration(expected), format_duration(left)))
    }
}

/// A suite's plan as `cmkm plan --json` prints it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct PlanOverview {
    pub suite: String,
    /// The suite's run store.
    pub results: PathBuf,
    /// Every run, in dependency order.
    pub runs: Vec<PlanEntry>,
    /// The CPUs the timings behind the estimates were recorded on.
    pub timing_cpus: Vec<String>,
    /// The workers the estimates are for.
    pub workers: Workers,
    /// Expected wall time of the runs left with those workers (runs without
    /// an estimate count 0).
    pub wall_seconds_left: f64,
    /// How the rate of the FLOP-based estimates was found, where any run
    /// needed one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub flop_rate: Option<String>,
}

/// One run of [`PlanOverview`].
#[derive(Debug, Clone, serde::Serialize)]
pub struct PlanEntry {
    pub id: String,
    pub label: String,
    /// Step kind: train, fine_tune, retrieval, label_fractions,
    /// supervised_fractions or random_fractions.
    pub step: &'static str,
    /// The suite method, or the sweep variant, whose run this is.
    pub method: String,
    /// Other sweep variants the same run stands for.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub also: Vec<String>,
    pub seed: u64,
    pub status: RunStatus,
    /// Ids of the runs that must be done first.
    pub depends_on: Vec<String>,
    /// Expected seconds from recorded timings, else from the run's FLOPs;
    /// `None` when neither applies.
    pub estimate_seconds: Option<f64>,
    /// Whether the estimate comes from the run's FLOPs (no recorded timing
    /// of its step and method).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub estimate_from_flops: bool,
}

impl PlanOverview {
    /// (expected seconds of the whole suite, of what is left, runs left
    /// without an estimate).
    pub fn totals(&self) -> (f64, f64, usize) {
        let total = self.runs.iter().filter_map(|r| r.estimate_seconds).sum();
        let pending = self.runs.iter().filter(|r| !matches!(r.status, RunStatus::Done | RunStatus::Failed));
        let (mut left, mut unknown) = (0.0, 0);
        for r in pending {
            match r.estimate_seconds {
                Some(s) => left += s,
                None => unknown += 1,
            }
        }
        (total, left, unknown)
    }

    /// The wall time of the runs left, with [`PlanOverview::workers`] taking
    /// them in plan order (failed runs count as finished).
    fn wall_time_left(&self) -> f64 {
        let index: BTreeMap<&str, usize> = self.runs.iter().enumerate().map(|(i, r)| (r.id.as_str(), i)).collect();
        // Documented on the field: runs without an estimate count 0, and `cmkm plan` says how many there are.
        let seconds: Vec<f64> = self.runs.iter().map(|r| r.estimate_seconds.unwrap_or(0.0)).collect();
        let depends: Vec<Vec<usize>> = self.runs.iter().map(|r| r.depends_on.iter().filter_map(|d| index.get(d.as_str()).copied()).collect()).collect();
        let done: Vec<bool> = self.runs.iter().map(|r| matches!(r.status, RunStatus::Done | RunStatus::Failed)).collect();
        wall_time(&seconds, &depends, &done, self.workers.jobs)
    }
}

/// What [`Prepared::execute`] did.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Executed {
    /// Ran and committed the run, in this many seconds.
    Ran(f64),
    /// Another live process holds the run's lock.
    Busy,
    /// Another process finished it before this one got the lock.
    AlreadyDone,
}
