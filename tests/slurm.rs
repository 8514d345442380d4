//! Suites on a real Slurm: a one-node cluster on 127.0.0.1 started by
//! `scripts/slurm-cluster.sh` (which installs Debian's Slurm and munge when
//! they are missing) in a fresh folder per test, and stopped by its pid
//! files when the test ends. No mock: `cmkm slurm submit` calls the real
//! sbatch, the jobs run the real `cmkm run`.

use crate::common;

use cmkm::harness::runner::prepare;
use common::write_tiny_suite;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// One cluster at a time: the machine has two cores.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// How long a test waits for its jobs before it fails.
const JOBS_DEADLINE: Duration = Duration::from_secs(900);

struct Cluster {
    dir: tempfile::TempDir,
}

impl Cluster {
    /// A fresh cluster, or `None` (the test skipped, unless CI requires
    /// Slurm) where it cannot start: its daemons run as root.
    fn start(test: &str) -> Option<Cluster> {
        // SAFETY: geteuid has no preconditions and cannot fail.
        if unsafe { libc::geteuid() } != 0 {
            common::skip(test, "the one-node test cluster runs its daemons as root (and installs Slurm with apt-get)", "CMKM_REQUIRE_SLURM");
            return None;
        }
        let dir = tempfile::tempdir().unwrap();
        // Two free loopback ports, released just before the daemons bind them.
        let ports: Vec<String> = {
            let a = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            let b = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            vec![a.local_addr().unwrap().port().to_string(), b.local_addr().unwrap().port().to_string()]
        };
        let out = Command::new(script()).arg("start").arg(dir.path()).args(&ports).output().unwrap();
        assert!(out.status.success(), "the test cluster did not start:\n{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        Some(Cluster { dir })
    }

    fn conf(&self) -> PathBuf {
        self.dir.path().join("slurm.conf")
    }

    /// `cmkm` talking to this cluster.
    fn cmkm(&self) -> Command {
        let mut c = common::cmkm();
        c.env("SLURM_CONF", self.conf());
        c
    }

    /// Job ids Slurm lists as queued or running.
    fn queue(&self) -> Vec<String> {
        let out = Command::new("squeue").env("SLURM_CONF", self.conf()).args(["--noheader", "--array", "--format=%i %T"]).output().unwrap();
        assert!(out.status.success(), "squeue: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).lines().map(str::to_string).collect()
    }

    /// Waits until every job has left the queue; fails with the suite's
    /// status after [`JOBS_DEADLINE`].
    fn wait_for_jobs(&self, status: impl Fn() -> String) -> Duration {
        let start = Instant::now();
        loop {
            let queue = self.queue();
            if queue.is_empty() {
                return start.elapsed();
            }
            assert!(start.elapsed() < JOBS_DEADLINE, "jobs still queued after {JOBS_DEADLINE:?}: {queue:?}\n{}", status());
            std::thread::sleep(Duration::from_millis(500));
        }
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let out = Command::new(script()).arg("stop").arg(self.dir.path()).output();
        if !out.as_ref().is_ok_and(|o| o.status.success()) {
            eprintln!("stopping the test cluster in {}: {out:?}", self.dir.path().display());
        }
    }
}

fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/slurm-cluster.sh")
}

fn run_ok(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap();
    assert!(out.status.success(), "{cmd:?} failed:\n{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn submit(cluster: &Cluster, suite: &Path, results: &Path, reports: &Path) -> String {
    run_ok(cluster.cmkm().args(["slurm", "submit"]).arg(suite).arg("--results").arg(results).arg("--reports").arg(reports).args([
        "--cpus-per-task",
        "1",
        "--max-parallel",
        "2",
    ]))
}

fn slurm_status(cluster: &Cluster, suite: &Path, results: &Path) -> String {
    run_ok(cluster.cmkm().args(["slurm", "status"]).arg(suite).arg("--results").arg(results))
}

/// `N to submit` from a submission's first line.
fn submitted(out: &str) -> usize {
    let first = out.lines().next().unwrap_or_default();
    let before = first.split(" to submit").next().filter(|_| first.contains(" to submit")).unwrap_or_else(|| panic!("no count in {out}"));
    before.rsplit(' ').next().unwrap().parse().unwrap()
}

#[test]
fn the_tiny_suite_through_slurm_matches_a_local_reproduce_bit_for_bit() {
    let _one = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let Some(cluster) = Cluster::start("the_tiny_suite_through_slurm_matches_a_local_reproduce_bit_for_bit") else { return };
    let dir = tempfile::tempdir().unwrap();
    let suite = write_tiny_suite(dir.path(), 0.003);
    let local = dir.path().join("local");
    let start = Instant::now();
    let p = prepare(&suite, &local).unwrap();
    assert_eq!(p.reproduce(true).unwrap(), (p.runs.len(), 0));
    let local_time = start.elapsed();

    let (results, reports) = (dir.path().join("slurm"), dir.path().join("reports"));
    let start = Instant::now();
    let out = submit(&cluster, &suite, &results, &reports);
    assert_eq!(submitted(&out), p.runs.len(), "{out}");
    // Submitting again while the jobs are queued or done submits nothing.
    let again = submit(&cluster, &suite, &results, &reports);
    assert_eq!(submitted(&again), 0, "{again}");
    cluster.wait_for_jobs(|| slurm_status(&cluster, &suite, &results));
    let slurm_time = start.elapsed();
    eprintln!("tiny suite ({} runs): local reproduce {:.1} s, through Slurm {:.1} s", p.runs.len(), local_time.as_secs_f64(), slurm_time.as_secs_f64());

    let status = slurm_status(&cluster, &suite, &results);
    assert!(status.contains(&format!("store: {} done", p.runs.len())), "{status}");
    assert_eq!(status.lines().filter(|l| l.starts_with("  ") && l.contains(" COMPLETED ")).count(), p.runs.len(), "{status}");
    assert!(status.contains("report job") && status.contains(": COMPLETED"), "{status}");
    assert!(reports.join("tiny/main_table.md").is_file(), "the report job wrote the report");
    for r in &p.runs {
        let log = std::fs::read_to_string(results.join("tiny/slurm/logs").join(format!("{}.log", r.id))).unwrap();
        assert!(log.contains(&format!("run {}", r.id)) && log.contains("done"), "{log}");
    }
    let compare = common::cmkm().arg("compare").arg(&local).arg(&results).args(["--max-diff", "0"]).output().unwrap();
    assert_eq!(compare.status.code(), Some(0), "{}{}", String::from_utf8_lossy(&compare.stdout), String::from_utf8_lossy(&compare.stderr));
}

#[test]
fn a_failed_run_cancels_its_dependants_and_a_second_submit_runs_only_what_is_missing() {
    let _one = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let Some(cluster) = Cluster::start("a_failed_run_cancels_its_dependants_and_a_second_submit_runs_only_what_is_missing") else { return };
    let dir = tempfile::tempdir().unwrap();
    let suite = write_tiny_suite(dir.path(), 1e30); // CMC-CMKM diverges
    let (results, reports) = (dir.path().join("results"), dir.path().join("reports"));
    submit(&cluster, &suite, &results, &reports);
    cluster.wait_for_jobs(|| slurm_status(&cluster, &suite, &results));

    let p = prepare(&suite, &results).unwrap();
    let status = slurm_status(&cluster, &suite, &results);
    let line = |label: &str| status.lines().find(|l| l.ends_with(&format!(" {label}"))).unwrap_or_else(|| panic!("{label} in {status}")).to_string();
    let train = p.runs.iter().find(|r| r.label == "train cmkm seed 3").unwrap();
    let reason = p.store.failure(&train.id).expect("the diverging run is recorded as failed");
    assert!(reason.contains("non-finite"), "{reason}");
    assert_eq!(line(&train.label).matches("FAILED").count(), 2, "failed in the store and in Slurm: {status}");
    for r in &p.runs {
        let l = line(&r.label);
        if r.depends_on.contains(&train.id) {
            assert!(l.contains(" todo ") && l.contains(" CANCELLED "), "a dependant of the failed run is cancelled by Slurm: {l}");
        } else if r.id != train.id {
            assert!(p.store.is_done(&r.id) && l.contains(" COMPLETED "), "an independent run finishes: {l}");
        }
    }
    let report = status.lines().find(|l| l.contains("report job")).unwrap();
    assert!(report.contains("COMPLETED"), "the report job runs after the others ended, whatever their state: {report}");
    // Submitting again unchanged holds the failed run and its dependants back.
    let again = submit(&cluster, &suite, &results, &reports);
    let held = 1 + p.runs.iter().filter(|r| r.depends_on.contains(&train.id)).count();
    assert!(submitted(&again) == 0 && again.contains(&format!("# {held} run(s) failed earlier or need one that did: held back")), "{again}");

    // Fix the learning rate: only CMC-CMKM's runs (new ids) are missing.
    write_tiny_suite(dir.path(), 0.003);
    let fixed = prepare(&suite, &results).unwrap();
    let missing: BTreeSet<&str> = fixed.runs.iter().filter(|r| !fixed.store.is_done(&r.id)).map(|r| r.id.as_str()).collect();
    assert!(!missing.is_empty() && fixed.runs.iter().filter(|r| missing.contains(r.id.as_str())).all(|r| r.label.contains("cmkm")));
    let out = submit(&cluster, &suite, &results, &reports);
    assert_eq!(submitted(&out), missing.len(), "{out}");
    let record: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(results.join("tiny/slurm/jobs.json")).unwrap()).unwrap();
    let second_jobs: BTreeSet<String> = out.lines().filter_map(|l| l.strip_prefix("job ")).map(|l| l.split(':').next().unwrap().to_string()).collect();
    let resubmitted: BTreeSet<&str> = record["runs"]
        .as_object()
        .unwrap()
        .iter()
        .filter(|(_, j)| second_jobs.contains(j["job"].as_str().unwrap().split('_').next().unwrap()))
        .map(|(id, _)| id.as_str())
        .collect();
    assert_eq!(resubmitted, missing, "the second submission holds exactly the missing runs");
    cluster.wait_for_jobs(|| slurm_status(&cluster, &suite, &results));
    assert!(fixed.runs.iter().all(|r| fixed.store.is_done(&r.id)), "{}", slurm_status(&cluster, &suite, &results));
}

/// The `runs=(...)` list of each array script and the `afterok` edges of
/// each sbatch line of a dry run, as run ids.
fn dry_run_edges(out: &str) -> (Vec<Vec<String>>, BTreeMap<String, BTreeSet<String>>) {
    let arrays: Vec<Vec<String>> =
        out.lines().filter_map(|l| l.strip_prefix("runs=(")).map(|l| l.trim_end_matches(')').split(' ').map(str::to_string).collect()).collect();
    let mut deps: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for line in out.lines().filter(|l| l.starts_with("ARRAY_")) {
        let k: usize = line["ARRAY_".len()..line.find('=').unwrap()].parse().unwrap();
        let after: BTreeSet<String> = match line.split_whitespace().find_map(|w| w.strip_prefix("--dependency=afterok:")) {
            Some(list) => list
                .split(':')
                .map(|job| {
                    // ${ARRAY_j}_t
                    let (array, task) = job.trim_start_matches("${ARRAY_").split_once("}_").unwrap();
                    arrays[array.parse::<usize>().unwrap()][task.parse::<usize>().unwrap()].clone()
                })
                .collect(),
            None => BTreeSet::new(),
        };
        assert_eq!(after.is_empty(), !line.contains("--kill-on-invalid-dep=yes"), "{line}");
        for id in &arrays[k] {
            deps.insert(id.clone(), after.clone());
        }
    }
    (arrays, deps)
}

#[test]
fn a_dry_run_of_the_paper_suite_has_the_plans_dependency_edges() {
    check_dry_run("paper-utd", 156, "7 paper rows and 2 non-contrastive baselines, 3 seeds");
}

/// A sweep goes out as arrays like any suite: each variant's training after
/// its miners, its evaluations after it.
#[test]
fn a_dry_run_of_the_ablation_sweep_has_the_plans_dependency_edges() {
    check_dry_run("ablation-cmkm-utd", 156, "12 CMC-CMKM variants and 2 miners, 3 seeds, with their fine-tunings");
}

fn check_dry_run(name: &str, expected: usize, why: &str) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let results = tempfile::tempdir().unwrap();
    let suite = root.join(format!("experiments/{name}.yaml"));
    let reports = root.join("reports");
    let plan = run_ok(common::cmkm().arg("plan").arg(&suite).arg("--results").arg(results.path()).arg("--reports").arg(&reports).arg("--json"));
    let plan: serde_json::Value = serde_json::from_str(&plan).unwrap();
    let runs = plan["runs"].as_array().unwrap();
    assert_eq!(runs.len(), expected, "{why}");
    let out = run_ok(
        common::cmkm()
            .args(["slurm", "submit", "--dry-run", "--max-parallel", "4"])
            .arg(&suite)
            .arg("--results")
            .arg(results.path())
            .arg("--reports")
            .arg(&reports),
    );
    let (arrays, deps) = dry_run_edges(&out);
    assert_eq!(arrays.iter().map(Vec::len).sum::<usize>(), runs.len(), "every run in exactly one array");
    for r in runs {
        let id = r["id"].as_str().unwrap();
        let expected: BTreeSet<String> = r["depends_on"].as_array().unwrap().iter().map(|d| d.as_str().unwrap().to_string()).collect();
        assert_eq!(deps[id], expected, "{}", r["label"]);
        assert_eq!(r["status"], "todo");
    }
    assert_eq!(out.matches("#SBATCH --array=").count(), arrays.len());
    assert!(out.lines().filter(|l| l.starts_with("#SBATCH --array=")).all(|l| l.ends_with("%4")), "the throttle is on every array");
    assert!(out.contains("REPORT=$(sbatch --parsable --dependency=afterany:"), "{out}");
    // Nothing was written: a dry run submits and records nothing.
    assert!(!results.path().join(format!("{name}/slurm")).exists());
    eprintln!("{name} dry run: {} runs in {} arrays + a report job", runs.len(), arrays.len());
}
