//! How `cmkm reproduce` shares the machine among worker processes (their
//! count and threads, starting them, waiting for them), and the wall time a
//! plan takes with them.
//!
//! The suites' trainings are small (batches of 27 to 128 samples), so one
//! thread per process beats more threads per run: on the 2-core AMD EPYC VM
//! a supervised label-fraction training took 38.0 s with two threads and
//! 66.4 s with one, while two one-thread trainings side by side took 60 s
//! for both (0.79x of one after the other); the quick suite with two
//! workers took 0.76x of one process (docs/performance.md). The default is
//! therefore one worker per core.

/// Worker processes and threads per worker.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Workers {
    pub jobs: usize,
    pub threads: usize,
}

impl Workers {
    /// `jobs` workers (default: one per core) sharing `cores`, `cores / jobs`
    /// threads each (at least one).
    pub fn new(jobs: Option<usize>, cores: usize) -> Self {
        let cores = cores.max(1);
        let jobs = jobs.unwrap_or(cores).max(1);
        Workers { jobs, threads: (cores / jobs).max(1) }
    }

    /// This machine's cores, as the runs see them.
    pub fn cores() -> usize {
        std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1)
    }
}

/// The exponent of [`thread_scale`]: fitted to the 1.75x a training took
/// with one thread instead of two (66.4 s against 38.0 s; 2^0.81 = 1.75).
pub const THREAD_EXPONENT: f64 = 0.8;

/// How a run's time scales when it runs on `to` threads after being timed
/// on `from`: `(from / to)^0.8` (1 when either is unknown, i.e. 0).
pub fn thread_scale(from: usize, to: usize) -> f64 {
    if from == 0 || to == 0 {
        return 1.0;
    }
    (from as f64 / to as f64).powf(THREAD_EXPONENT)
}

/// Wall time of the runs not yet done, as `cmkm reproduce` works through
/// them with `jobs` workers: each free worker takes the first run in plan
/// order whose dependencies are done, and waits when none is ready.
/// `seconds[i]` is run i's time (done runs are skipped, their dependants
/// free to start), `depends[i]` the indices it waits for.
pub fn wall_time(seconds: &[f64], depends: &[Vec<usize>], done: &[bool], jobs: usize) -> f64 {
    let n = seconds.len();
    let mut finish: Vec<Option<f64>> = (0..n).map(|i| done[i].then_some(0.0)).collect();
    let mut started = done.to_vec();
    let mut free_at = vec![0.0f64; jobs.max(1)];
    loop {
        // The worker free first takes the first ready run at that moment.
        let (w, now) = free_at.iter().copied().enumerate().min_by(|a, b| a.1.total_cmp(&b.1)).expect("at least one worker");
        let ready = |i: usize| !started[i] && depends[i].iter().all(|&d| finish[d].is_some_and(|f| f <= now));
        match (0..n).find(|&i| ready(i)) {
            Some(i) => {
                // Ready means every dependency finished by `now`.
                started[i] = true;
                finish[i] = Some(now + seconds[i]);
                free_at[w] = now + seconds[i];
            }
            None => {
                // Nothing ready now: wait for the next run to finish (or stop).
                let next = finish.iter().flatten().copied().filter(|&f| f > now).fold(f64::INFINITY, f64::min);
                if !next.is_finite() {
                    break;
                }
                free_at[w] = next;
            }
        }
    }
    finish.iter().flatten().copied().fold(0.0, f64::max)
}

/// What the `cmkm reproduce` that starts workers was given, for its copies.
pub struct WorkerArgs<'a> {
    pub suite: &'a std::path::Path,
    pub results: &'a std::path::Path,
    pub reports: &'a std::path::Path,
    /// Another dataset declaration than the suite's.
    pub dataset: Option<&'a std::path::Path>,
    pub retry_failed: bool,
    pub time_limit: Option<std::time::Duration>,
}

/// Sizes rayon's global thread pool of this process: worker 0 must do it
/// before anything uses rayon (loading the suite's data does, and would fix
/// the pool at every core, beside the other workers).
pub fn size_thread_pool(threads: usize) -> anyhow::Result<()> {
    use anyhow::Context as _;
    rayon::ThreadPoolBuilder::new().num_threads(threads).build_global().context("cannot size the thread pool")
}

/// Starts `jobs - 1` copies of this binary's `cmkm reproduce` as workers of
/// the sitting that started at `since`, each with `threads` threads (through
/// `RAYON_NUM_THREADS`), on the device this process chose.
pub fn spawn_workers(args: &WorkerArgs, jobs: usize, since: std::time::SystemTime, threads: usize) -> anyhow::Result<Vec<std::process::Child>> {
    use anyhow::Context as _;
    let exe = std::env::current_exe().context("cannot tell where this cmkm binary is to start workers")?;
    let nanos = since.duration_since(std::time::UNIX_EPOCH).context("the system clock is set before 1970")?.as_nanos() as u64;
    (1..jobs)
        .map(|_| {
            let mut cmd = std::process::Command::new(&exe);
            cmd.arg("reproduce").arg(args.suite).arg("--results").arg(args.results).arg("--reports").arg(args.reports);
            if let Some(d) = args.dataset {
                cmd.arg("--dataset").arg(d);
            }
            if args.retry_failed {
                cmd.arg("--retry-failed");
            }
            cmd.args(["--quiet", "--worker-since", &nanos.to_string()]).env("RAYON_NUM_THREADS", threads.to_string());
            if crate::device::chosen() != crate::device::DeviceChoice::Cpu {
                cmd.args(["--device", &crate::device::chosen().arg()]);
            }
            if let Some(limit) = args.time_limit {
                let t = limit.as_secs();
                cmd.args(["--time-limit", &format!("{}:{:02}:{:02}", t / 3600, t / 60 % 60, t % 60)]);
            }
            cmd.spawn().context("cannot start a worker process")
        })
        .collect()
}

/// Exit status of a worker whose runs (some of them) failed: the failures
/// are in the store, so the sitting goes on.
pub const RUNS_FAILED: i32 = 3;

/// Waits for every worker. A worker that exits other than successfully or
/// with [`RUNS_FAILED`] is an error naming it.
pub fn wait_for_workers(workers: Vec<std::process::Child>) -> anyhow::Result<()> {
    let mut errors = vec![];
    for (k, mut child) in workers.into_iter().enumerate() {
        match child.wait() {
            Ok(status) if status.success() || status.code() == Some(RUNS_FAILED) => {}
            Ok(status) => errors.push(format!("worker {} exited with {status}", k + 1)),
            Err(e) => errors.push(format!("worker {}: {e}", k + 1)),
        }
    }
    if !errors.is_empty() {
        anyhow::bail!("{}", errors.join("; "));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_worker_per_core_by_default_and_threads_share_the_cores() {
        assert_eq!(Workers::new(None, 2), Workers { jobs: 2, threads: 1 });
        assert_eq!(Workers::new(Some(1), 2), Workers { jobs: 1, threads: 2 });
        assert_eq!(Workers::new(Some(4), 2), Workers { jobs: 4, threads: 1 });
        assert_eq!(Workers::new(None, 0), Workers { jobs: 1, threads: 1 });
        assert!((thread_scale(2, 1) - 2f64.powf(0.8)).abs() < 1e-12 && thread_scale(2, 2) == 1.0 && thread_scale(0, 1) == 1.0);
    }

    #[test]
    fn wall_time_follows_dependencies_and_plan_order() {
        // a (10 s) -> c (5 s); b (4 s) independent; d (1 s) after b.
        let seconds = [10.0, 4.0, 5.0, 1.0];
        let depends = vec![vec![], vec![], vec![0], vec![1]];
        let none = [false; 4];
        assert_eq!(wall_time(&seconds, &depends, &none, 1), 20.0);
        // Two workers: a on one; b then d on the other; c after a: 15 s.
        assert_eq!(wall_time(&seconds, &depends, &none, 2), 15.0);
        // Done runs cost nothing and free their dependants.
        assert_eq!(wall_time(&seconds, &depends, &[true, false, false, false], 2), 5.0);
        assert_eq!(wall_time(&seconds, &depends, &[true; 4], 3), 0.0);
    }
}
