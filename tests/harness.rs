//! Suites: planning with dependencies and content-addressed run ids, and a
//! tiny suite reproduced end to end, resumable and idempotent.

use crate::common;

use cmkm::harness::runner::prepare;
use cmkm::harness::workers::Workers;
use common::write_tiny_suite as write_suite;
use std::collections::BTreeMap;
use std::path::Path;

fn ids(dir: &Path, results: &Path) -> BTreeMap<String, String> {
    let p = prepare(&dir.join("suite.yaml"), results).unwrap();
    p.runs.iter().map(|r| (r.label.clone(), r.id.clone())).collect()
}

#[test]
fn editing_a_method_replans_only_what_depends_on_it() {
    let dir = tempfile::tempdir().unwrap();
    write_suite(dir.path(), 0.003);
    let before = ids(dir.path(), &dir.path().join("results"));
    // 4 trainings; fine-tuning: si 1, ss 1, cmkm 3; retrieval 4; label
    // fractions 5, plus the random and supervised baselines of sup.
    assert_eq!(before.len(), 4 + 5 + 4 + 5 + 2, "{before:#?}");
    let order: Vec<String> = prepare(&dir.path().join("suite.yaml"), &dir.path().join("results")).unwrap().runs.iter().map(|r| r.label.clone()).collect();
    let pos = |l: &str| order.iter().position(|x| x == l).unwrap();
    assert!(pos("train si seed 3") < pos("train cmkm seed 3") && pos("train ss seed 3") < pos("train cmkm seed 3"));
    write_suite(dir.path(), 0.001);
    let after = ids(dir.path(), &dir.path().join("results"));
    for (label, id) in &before {
        let changed = after[label] != *id;
        assert_eq!(changed, label.contains("cmkm"), "{label}");
    }
}

#[test]
fn a_tiny_suite_reproduces_once_and_then_does_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let suite = write_suite(dir.path(), 0.003);
    let results = dir.path().join("results");
    let p = prepare(&suite, &results).unwrap();
    let (done, failed) = p.reproduce(true).unwrap();
    assert_eq!((done, failed), (p.runs.len(), 0));
    for r in &p.runs {
        let d = p.store.dir(&r.id);
        assert!(d.join("record.json").is_file() && d.join("plan.json").is_file(), "{}", r.label);
    }
    // No staging folders or locks are left behind.
    let leftovers: Vec<_> = std::fs::read_dir(results.join("runs")).unwrap().flatten().filter(|e| e.file_name().to_string_lossy().starts_with('.')).collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
    let start = std::time::Instant::now();
    let again = prepare(&suite, &results).unwrap();
    assert_eq!(again.reproduce(true).unwrap(), (p.runs.len(), 0));
    assert!(start.elapsed().as_secs() < 20, "a finished suite is skipped quickly");
    assert!(again.describe(std::path::Path::new("no-reports"), Workers::new(Some(1), 2)).lines().filter(|l| l.contains(" done ")).count() == p.runs.len());
    check_report(dir.path(), &suite, &results);
}

/// One run store for every suite: a second suite planning the same runs
/// finds them done, and runs kept per suite by an earlier cmkm move into
/// the shared store when a suite is next prepared.
#[test]
fn suites_share_one_run_store_and_a_per_suite_store_is_adopted() {
    let dir = tempfile::tempdir().unwrap();
    let suite = write_suite(dir.path(), 0.003);
    let results = dir.path().join("results");
    let p = prepare(&suite, &results).unwrap();
    assert_eq!(p.reproduce(true).unwrap(), (p.runs.len(), 0));
    // Another suite with the same trainings and only the retrieval protocol.
    let text = std::fs::read_to_string(&suite).unwrap().replace("name: tiny", "name: tiny-retrieval");
    let fine_tuning = text.lines().find(|l| l.contains("fine_tuning")).unwrap().to_string();
    let fractions = text.lines().find(|l| l.contains("label_fractions")).unwrap().to_string();
    let other = dir.path().join("other.yaml");
    std::fs::write(&other, text.replace(&format!("{fine_tuning}\n"), "").replace(&format!("{fractions}\n"), "")).unwrap();
    let q = prepare(&other, &results).unwrap();
    assert!(q.runs.len() < p.runs.len());
    assert!(q.runs.iter().all(|r| q.store.is_done(&r.id)), "every run of the second suite was done by the first");
    // The per-suite layout of earlier versions: results/tiny/runs/<id>.
    let legacy = dir.path().join("legacy");
    std::fs::create_dir_all(legacy.join("tiny")).unwrap();
    std::fs::rename(results.join("runs"), legacy.join("tiny/runs")).unwrap();
    let again = prepare(&suite, &legacy).unwrap();
    assert!(again.runs.iter().all(|r| again.store.is_done(&r.id)));
    assert!(legacy.join("runs").is_dir() && again.store.dir(&again.runs[0].id).starts_with(legacy.join("runs")));
    let left = std::fs::read_dir(legacy.join("tiny/runs")).unwrap().flatten().filter(|e| e.path().join("record.json").is_file()).count();
    assert_eq!(left, 0, "every finished run moved");
    // A suite may not take the store's own folder names.
    let bad = dir.path().join("bad.yaml");
    std::fs::write(&bad, std::fs::read_to_string(&suite).unwrap().replace("name: tiny", "name: runs")).unwrap();
    let e = format!("{:#}", prepare(&bad, &results).err().unwrap());
    assert!(e.contains("may not be called 'runs'"), "{e}");
}

/// `cmkm report` on the finished tiny suite: every table and plot, numbers
/// that are the runs' own, byte-identical on a second report; `cmkm plan`
/// estimates a fresh store from the report's timings; `cmkm compare`.
fn check_report(dir: &Path, suite: &Path, results: &Path) {
    let reports = dir.join("reports");
    let report = || {
        let out = common::cmkm().arg("report").arg(suite).arg("--results").arg(results).arg("--reports").arg(&reports).output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    };
    report();
    let r = reports.join("tiny");
    for f in ["main_table", "claims", "retrieval", "label_fractions"] {
        for ext in ["md", "csv", "tex"] {
            assert!(r.join(format!("{f}.{ext}")).is_file(), "{f}.{ext}");
        }
    }
    for f in ["main_metric", "confusion_best", "label_fractions", "claims", "retrieval", "ssl_loss"] {
        assert!(std::fs::read(r.join(format!("{f}.png"))).unwrap().starts_with(b"\x89PNG"), "{f}.png");
        assert!(std::fs::read_to_string(r.join(format!("{f}.svg"))).unwrap().contains("<svg"), "{f}.svg");
    }
    // The SimCLR skeleton row is the fine-tuning run's accuracy, beside the paper's 95.11.
    let p = prepare(suite, results).unwrap();
    let ft = p.runs.iter().find(|r| r.label == "fine-tune ss skeleton seed 3").unwrap();
    let m: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(p.store.dir(&ft.id).join("metrics.json")).unwrap()).unwrap();
    let acc = 100.0 * m["accuracy"].as_f64().unwrap();
    let table = std::fs::read_to_string(r.join("main_table.csv")).unwrap();
    let row = table.lines().find(|l| l.starts_with("Skeleton,SimCLR,ss,")).unwrap_or_else(|| panic!("{table}"));
    assert_eq!(row, format!("Skeleton,SimCLR,ss,{acc:.2},1,95.11,{:+.2}", acc - 95.11));
    assert_eq!(table.lines().count(), 1 + 6, "sup, si, ss and cmkm x3: {table}");
    // The label-fraction table has the SSL rows and both baselines of sup.
    let fractions = std::fs::read_to_string(r.join("label_fractions.csv")).unwrap();
    for row in ["Skeleton,Supervised,sup,", "Skeleton,Random init,sup,", "Multimodal,CMC-CMKM,cmkm,"] {
        assert!(fractions.lines().any(|l| l.starts_with(row)), "{row} in {fractions}");
    }
    // The claims table: the paper's orderings between the tiny suite's
    // approaches, on full labels and on the label fraction.
    let claims = std::fs::read_to_string(r.join("claims.csv")).unwrap();
    for row in ["Inertial,cmkm > si,all,", "Skeleton,cmkm > ss,all,", "Skeleton,cmkm > sup,all,", "Skeleton,cmkm > sup,50%,", "Skeleton,ss > sup,all,"] {
        assert!(claims.lines().any(|l| l.starts_with(row)), "{row} in {claims}");
    }
    let first = std::fs::read(r.join("main_table.md")).unwrap();
    report();
    assert_eq!(first, std::fs::read(r.join("main_table.md")).unwrap());
    // The runs' small files are enough for the report: a copy of the store
    // without its checkpoints (as carried between machines or sittings)
    // gives the same tables.
    let small = dir.join("small");
    copy_without_checkpoints(results, &small);
    let out = common::cmkm().arg("report").arg(suite).arg("--results").arg(&small).arg("--reports").arg(dir.join("small-reports")).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    for f in ["main_table.csv", "claims.csv", "retrieval.csv", "label_fractions.csv", "timings.csv"] {
        assert_eq!(std::fs::read(r.join(f)).unwrap(), std::fs::read(dir.join("small-reports/tiny").join(f)).unwrap(), "{f} without checkpoints");
    }
    // A fresh store gets estimates for every run from the report's timings.
    let fresh = prepare(suite, &dir.join("fresh")).unwrap();
    let (one, two) = (fresh.overview(&reports, Workers::new(Some(1), 2)), fresh.overview(&reports, Workers::new(Some(2), 2)));
    assert!(one.runs.iter().all(|r| r.estimate_seconds.is_some()), "every run has a recorded timing");
    let serial = |o: &cmkm::harness::runner::PlanOverview| o.runs.iter().filter_map(|r| r.estimate_seconds).sum::<f64>();
    // One worker runs one run after the other; two overlap independent runs.
    assert!((one.wall_seconds_left - serial(&one)).abs() < 1e-6 * serial(&one) && serial(&one) > 0.0, "{} vs {}", one.wall_seconds_left, serial(&one));
    assert!(two.wall_seconds_left < serial(&two), "{} vs {}", two.wall_seconds_left, serial(&two));
    let text = fresh.describe(&reports, Workers::new(Some(2), 2));
    assert!(text.contains("expected wall time") && text.contains("2 worker(s) of 1 thread(s)") && !text.contains("no recorded timing"), "{text}");
    // compare: identical stores agree exactly; a changed metric is found.
    let compare = |b: &Path| common::cmkm().arg("compare").arg(results).arg(b).args(["--max-diff", "0"]).output().unwrap();
    assert_eq!(compare(results).status.code(), Some(0));
    let copy = dir.join("copy");
    copy_dir(results, &copy);
    let path = copy.join("runs").join(&ft.id).join("metrics.json");
    let mut v: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    v["accuracy"] = serde_json::json!(m["accuracy"].as_f64().unwrap() + 0.25);
    std::fs::write(&path, v.to_string()).unwrap();
    let out = compare(&copy);
    assert_eq!(out.status.code(), Some(4));
    assert!(String::from_utf8_lossy(&out.stdout).contains("+0.250000"), "{}", String::from_utf8_lossy(&out.stdout));
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap().flatten() {
        let target = to.join(e.file_name());
        if e.path().is_dir() {
            copy_dir(&e.path(), &target);
        } else {
            std::fs::copy(e.path(), &target).unwrap();
        }
    }
}

/// The files whose contents must not depend on interruptions.
fn outcomes(results: &Path) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for run in std::fs::read_dir(results.join("runs")).unwrap().flatten().filter(|e| !e.file_name().to_string_lossy().starts_with('.')) {
        for f in ["metrics.json", "retrieval.json", "label_fractions.json"] {
            if let Ok(text) = std::fs::read_to_string(run.path().join(f)) {
                out.insert(format!("{}/{f}", run.file_name().to_string_lossy()), text);
            }
        }
    }
    out
}

/// One uninterrupted reproduction of the tiny suite, shared by the tests of
/// this binary: (suite folder kept alive, outcomes).
fn reference() -> &'static (tempfile::TempDir, BTreeMap<String, String>) {
    static REF: std::sync::OnceLock<(tempfile::TempDir, BTreeMap<String, String>)> = std::sync::OnceLock::new();
    REF.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let suite = write_suite(dir.path(), 0.003);
        let results = dir.path().join("reference");
        assert_eq!(prepare(&suite, &results).unwrap().reproduce(true).unwrap().1, 0);
        let out = outcomes(&results);
        (dir, out)
    })
}

/// `cmkm reproduce` with one process (the default is one worker per core).
fn reproduce_cmd(results: &Path, suite: &Path) -> std::process::Command {
    reproduce_with_jobs(results, suite, 1)
}

fn reproduce_with_jobs(results: &Path, suite: &Path, jobs: u32) -> std::process::Command {
    let mut cmd = common::cmkm();
    cmd.args(["reproduce", "--quiet", "--jobs", &jobs.to_string(), "--results"]).arg(results).arg(suite);
    cmd
}

/// Copies the folder `from` to `to`, leaving out every `.safetensors` file.
fn copy_without_checkpoints(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap().flatten() {
        let (path, target) = (entry.path(), to.join(entry.file_name()));
        if path.is_dir() {
            copy_without_checkpoints(&path, &target);
        } else if path.extension().is_none_or(|e| e != "safetensors") {
            std::fs::copy(&path, &target).unwrap();
        }
    }
}

/// Names in `runs/` starting with a dot: staging folders and locks.
fn leftovers(results: &Path) -> Vec<String> {
    std::fs::read_dir(results.join("runs")).unwrap().flatten().map(|e| e.file_name().to_string_lossy().to_string()).filter(|n| n.starts_with('.')).collect()
}

/// Every run folder present is complete and its JSON files parse.
fn assert_no_partial_runs(results: &Path, context: &str) {
    let Ok(entries) = std::fs::read_dir(results.join("runs")) else { return };
    for e in entries.flatten().filter(|e| !e.file_name().to_string_lossy().starts_with('.')) {
        assert!(e.path().join("record.json").is_file(), "{context}: partial run folder {}", e.path().display());
        for f in std::fs::read_dir(e.path()).unwrap().flatten() {
            let name = f.file_name().to_string_lossy().to_string();
            assert!(!name.starts_with('.'), "{context}: temporary file {name} in {}", e.path().display());
            if name.ends_with(".json") {
                let text = std::fs::read_to_string(f.path()).unwrap();
                serde_json::from_str::<serde_json::Value>(&text).unwrap_or_else(|err| panic!("{context}: corrupt {}: {err}", f.path().display()));
            }
        }
    }
}

#[test]
fn a_reproduce_killed_at_many_points_resumes_to_identical_results_without_partial_files() {
    let (_, expected) = reference();
    let dir = tempfile::tempdir().unwrap();
    let suite = write_suite(dir.path(), 0.003);
    let results = dir.path().join("killed");
    // Seeded pseudo-random kill delays (xorshift), 10 kill points.
    let mut state = 0x9E37_79B9_7F4A_7C15u64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    // Up to 10 kills, each of a child still running when killed (a child
    // that finished the suite on its own ends the loop): a kill that comes
    // after the exit would test nothing.
    let mut kills = 0;
    for k in 0..10 {
        let delay_ms = 700 + next() % 1800;
        let mut child = reproduce_cmd(&results, &suite).stderr(std::process::Stdio::null()).spawn().unwrap();
        std::thread::sleep(std::time::Duration::from_millis(delay_ms));
        if let Some(status) = child.try_wait().unwrap() {
            assert!(status.success(), "kill point {}: the reproduce exited on its own with {status}", k + 1);
            break;
        }
        child.kill().unwrap(); // SIGKILL, while it runs
        let status = child.wait().unwrap();
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(status.signal(), Some(9), "kill point {}: the child died of the kill", k + 1);
        kills += 1;
        assert_no_partial_runs(&results, &format!("kill {} after {delay_ms} ms", k + 1));
    }
    assert!(kills >= 5, "only {kills} kills hit a running reproduce");
    let out = reproduce_cmd(&results, &suite).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(leftovers(&results).is_empty(), "staging folders or locks left: {:?}", leftovers(&results));
    assert_no_partial_runs(&results, "after the resume");
    assert_eq!(*expected, outcomes(&results));
}

#[test]
fn two_concurrent_reproduces_share_the_work_without_duplicates() {
    let (_, expected) = reference();
    let dir = tempfile::tempdir().unwrap();
    let suite = write_suite(dir.path(), 0.003);
    let results = dir.path().join("shared");
    let a = reproduce_cmd(&results, &suite).stderr(std::process::Stdio::piped()).spawn().unwrap();
    let b = reproduce_cmd(&results, &suite).stderr(std::process::Stdio::piped()).spawn().unwrap();
    let (a, b) = (a.wait_with_output().unwrap(), b.wait_with_output().unwrap());
    let logs = format!("{}\n---\n{}", String::from_utf8_lossy(&a.stderr), String::from_utf8_lossy(&b.stderr));
    assert!(a.status.success() && b.status.success(), "{logs}");
    assert!(!logs.contains("FAILED") && !logs.contains("panicked"), "{logs}");
    // Every run executed exactly once across the two processes.
    let runs = prepare(&suite, &results).unwrap().runs.len();
    assert_eq!(logs.matches("] done in ").count(), runs, "{logs}");
    assert!(leftovers(&results).is_empty(), "{:?}", leftovers(&results));
    assert!(!results.join("failed").exists(), "{logs}");
    assert_no_partial_runs(&results, "concurrent");
    assert_eq!(*expected, outcomes(&results));
}

#[test]
fn reproduce_with_two_workers_gives_the_same_results_each_run_once() {
    let (_, expected) = reference();
    let dir = tempfile::tempdir().unwrap();
    let suite = write_suite(dir.path(), 0.003);
    let results = dir.path().join("jobs");
    let out = reproduce_with_jobs(&results, &suite, 2).output().unwrap();
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{log}");
    assert!(log.contains("2 workers with "), "{log}");
    // Every run, worker 0's included, ran on its share of the cores.
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    let p = prepare(&suite, &results).unwrap();
    for r in &p.runs {
        let record: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(p.store.dir(&r.id).join("record.json")).unwrap()).unwrap();
        assert_eq!(record["hardware"]["threads"].as_u64(), Some((cores / 2).max(1) as u64), "{}", r.label);
    }
    let runs = p.runs.len();
    assert_eq!(log.matches("] done in ").count(), runs, "every run executed exactly once across the workers: {log}");
    assert!(leftovers(&results).is_empty(), "{:?}", leftovers(&results));
    assert_eq!(*expected, outcomes(&results), "the worker count changes no result");
}

#[test]
fn a_diverging_run_with_two_workers_fails_once_and_its_dependants_are_skipped() {
    let dir = tempfile::tempdir().unwrap();
    let suite = write_suite(dir.path(), 1e30);
    let results = dir.path().join("results");
    let out = reproduce_with_jobs(&results, &suite, 2).output().unwrap();
    let log = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{log}");
    assert_eq!(log.matches("FAILED: ").count(), 1, "the diverging training runs once: {log}");
    let p = prepare(&suite, &results).unwrap();
    for r in &p.runs {
        assert_eq!(p.store.is_done(&r.id), !r.label.contains("cmkm"), "{}: {log}", r.label);
    }
}

#[test]
fn a_diverging_run_is_recorded_as_failed_with_its_epoch_and_the_suite_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    let suite = write_suite(dir.path(), 1e30); // CMC-CMKM with a learning rate of 1e30
    let results = dir.path().join("results");
    let out = reproduce_cmd(&results, &suite).output().unwrap();
    let log = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "failed runs give status 3: {log}");
    assert!(!log.contains("panicked"), "{log}");
    let p = prepare(&suite, &results).unwrap();
    let train = p.runs.iter().find(|r| r.label == "train cmkm seed 3").unwrap();
    let reason = p.store.failure(&train.id).expect("the diverging run is recorded as failed");
    assert!(reason.contains("non-finite") && reason.contains("at epoch 1,"), "{reason}");
    for r in &p.runs {
        let cmkm = r.label.contains("cmkm");
        assert_eq!(p.store.is_done(&r.id), !cmkm, "{}: every other run completes", r.label);
    }
    assert!(p.describe(Path::new("no-reports"), Workers::new(Some(1), 2)).contains("FAILED"));
}

/// `cmkm store <action>` on the tiny suite, with its results folder.
fn store_cmd(action: &str, results: &Path, suite: &Path, archive: &Path) -> std::process::Output {
    let flag = if action == "pack" { "--out" } else { "--archive" };
    common::cmkm().args(["store", action, "--results"]).arg(results).arg(flag).arg(archive).arg(suite).output().unwrap()
}

/// Entry names of a gzip-compressed tar.
fn archive_entries(archive: &Path) -> Vec<String> {
    let mut tar = tar::Archive::new(flate2::read::GzDecoder::new(std::fs::File::open(archive).unwrap()));
    tar.entries().unwrap().map(|e| e.unwrap().path().unwrap().to_string_lossy().to_string()).collect()
}

#[test]
fn a_suite_carried_to_another_store_in_an_archive_finishes_with_the_same_results() {
    let (_, expected) = reference();
    let dir = tempfile::tempdir().unwrap();
    let suite = write_suite(dir.path(), 0.003);
    let first = dir.path().join("first");
    let p = prepare(&suite, &first).unwrap();
    // The first sitting: the first half of the plan (which is in dependency order).
    let cut = p.runs.len() / 2;
    for r in &p.runs[..cut] {
        p.execute(r, true).unwrap();
    }
    let archive = dir.path().join("carry/runs.tar.gz");
    let out = store_cmd("pack", &first, &suite, &archive);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    // Every finished run travels; checkpoints only of the trainings that
    // the unfinished runs need.
    let entries = archive_entries(&archive);
    assert_eq!(entries[0], "cmkm-archive.json");
    let run_of = |e: &String| e.split('/').nth(1).unwrap_or_default().to_string();
    let packed: std::collections::BTreeSet<String> = entries[1..].iter().map(run_of).collect();
    let finished: std::collections::BTreeSet<String> = p.runs[..cut].iter().map(|r| r.id.clone()).collect();
    assert_eq!(packed, finished);
    let needed: std::collections::BTreeSet<String> = p.runs[cut..].iter().flat_map(|r| r.depends_on.clone()).filter(|d| finished.contains(d)).collect();
    let with_checkpoints: std::collections::BTreeSet<String> = entries.iter().filter(|e| e.ends_with(".safetensors")).map(run_of).collect();
    assert!(!needed.is_empty(), "the cut leaves dependants of finished trainings");
    assert_eq!(with_checkpoints, needed);
    // The second sitting, in another results folder.
    let second = dir.path().join("second");
    let out = store_cmd("unpack", &second, &suite, &archive);
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success() && log.contains(&format!("{cut} run(s) placed")), "{log}");
    let out = reproduce_cmd(&second, &suite).output().unwrap();
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{log}");
    assert_eq!(log.matches("] done in ").count(), p.runs.len() - cut, "only the runs left ran: {log}");
    assert_eq!(*expected, outcomes(&second));
    // Unpacking again changes nothing.
    let out = store_cmd("unpack", &second, &suite, &archive);
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success() && log.contains(&format!("0 run(s) placed into {} ({cut} already there)", second.display())), "{log}");
}

#[test]
fn unpacking_a_damaged_or_foreign_archive_is_an_error_naming_it_and_places_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let suite = write_suite(dir.path(), 0.003);
    let first = dir.path().join("first");
    let p = prepare(&suite, &first).unwrap();
    p.execute(&p.runs[0], true).unwrap();
    let archive = dir.path().join("runs.tar.gz");
    assert!(store_cmd("pack", &first, &suite, &archive).status.success());
    let bytes = std::fs::read(&archive).unwrap();
    let truncated = dir.path().join("truncated.tar.gz");
    std::fs::write(&truncated, &bytes[..bytes.len() * 2 / 3]).unwrap();
    let garbage = dir.path().join("garbage.tar.gz");
    std::fs::write(&garbage, b"not an archive at all").unwrap();
    // A manifest from another version of cmkm.
    let foreign = dir.path().join("foreign.tar.gz");
    {
        let manifest = br#"{"suite": "tiny", "crate_version": "0.0.1", "runs": {}, "checkpoints": []}"#;
        let mut tar = tar::Builder::new(flate2::write::GzEncoder::new(std::fs::File::create(&foreign).unwrap(), flate2::Compression::fast()));
        let mut header = tar::Header::new_gnu();
        header.set_size(manifest.len() as u64);
        header.set_mode(0o644);
        header.set_cksum();
        tar.append_data(&mut header, "cmkm-archive.json", &manifest[..]).unwrap();
        tar.into_inner().unwrap().finish().unwrap();
    }
    let second = dir.path().join("second");
    for (archive, why) in
        [(&truncated, "corrupt or truncated"), (&garbage, ""), (&foreign, "made by cmkm 0.0.1"), (&dir.path().join("absent.tar.gz"), "cannot open")]
    {
        let out = store_cmd("unpack", &second, &suite, archive);
        let log = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{log}");
        assert!(log.contains(&archive.display().to_string()) && log.contains(why) && !log.contains("panicked"), "{log}");
        let placed = std::fs::read_dir(second.join("runs")).map(|d| d.flatten().count()).unwrap_or(0);
        assert_eq!(placed, 0, "{}: nothing is placed", archive.display());
    }
}

/// The tiny suite in a fresh folder whose results hold the reference's runs
/// as another suite, so that `cmkm plan` has timings to estimate from:
/// (folder kept alive, suite file, results folder).
/// A fresh store for the tiny suite, with the reference run's timings as a
/// committed report's `timings.csv` (the store shares runs between suites,
/// so timings copied into it would be finished runs).
fn suite_with_timings() -> (tempfile::TempDir, std::path::PathBuf, std::path::PathBuf) {
    let (reference_dir, _) = reference();
    let dir = tempfile::tempdir().unwrap();
    let suite = write_suite(dir.path(), 0.003);
    let results = dir.path().join("results");
    let out = common::cmkm()
        .args(["report", "--results"])
        .arg(reference_dir.path().join("reference"))
        .arg("--reports")
        .arg(dir.path().join("reports"))
        .arg(&suite)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    (dir, suite, results)
}

/// [`reproduce_with_jobs`] estimating from the reports next to `results`.
fn reproduce_timed(results: &Path, suite: &Path, jobs: u32) -> std::process::Command {
    let mut cmd = reproduce_with_jobs(results, suite, jobs);
    cmd.arg("--reports").arg(results.parent().unwrap().join("reports"));
    cmd
}

#[test]
fn a_time_limit_starts_no_run_expected_to_end_after_it() {
    let (_dir, suite, results) = suite_with_timings();
    for jobs in [1, 2] {
        let out = reproduce_timed(&results, &suite, jobs).args(["--time-limit", "0"]).output().unwrap();
        let log = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{log}");
        assert!(log.contains("not started: train ") && log.contains("the time limit ends in 0s"), "{log}");
        assert!(!log.contains("] done in "), "{log}");
        assert!(
            !results.join("runs").exists()
                || std::fs::read_dir(results.join("runs")).unwrap().flatten().all(|e| e.file_name().to_string_lossy().starts_with('.')),
            "{log}"
        );
    }
    let out = reproduce_timed(&results, &suite, 1).args(["--time-limit", "1:00:00"]).output().unwrap();
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success() && !log.contains("not started"), "{log}");
    let bad = reproduce_timed(&results, &suite, 1).args(["--time-limit", "1:75"]).output().unwrap();
    assert!(!bad.status.success() && String::from_utf8_lossy(&bad.stderr).contains("expected MINUTES, MM:SS or HH:MM:SS"));
}

#[test]
fn a_run_in_flight_elsewhere_when_the_time_limit_comes_is_left_to_its_owner() {
    let (_dir, suite, results) = suite_with_timings();
    let p = prepare(&suite, &results).unwrap();
    let held = p.runs.iter().find(|r| r.label == "train si seed 3").unwrap();
    // This test process holds the run, as another worker would while training it.
    let claim = p.store.claim(&held.id).unwrap();
    assert!(matches!(claim, cmkm::harness::store::ClaimOutcome::Claimed(_)));
    let out = reproduce_timed(&results, &suite, 1).args(["--time-limit", "0:10"]).output().unwrap();
    drop(claim);
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{log}");
    // Tried once, found busy, then neither retried with a new start line nor
    // reported as "not started" when the limit drew near.
    assert_eq!(log.matches("being run by another process").count(), 1, "{log}");
    assert_eq!(log.matches(&format!("{} ({})", held.label, held.id)).count(), 1, "{log}");
    // That one line says another process runs it: a worker that does not
    // hold a run never prints its start line.
    assert!(!log.contains(&format!("{} ({}) | elapsed", held.label, held.id)), "{log}");
    assert!(!p.store.is_done(&held.id), "{log}");
}

/// The runs that need `id`, directly or through others, and `id` itself.
fn with_dependants(p: &cmkm::harness::runner::Prepared, id: &str) -> std::collections::BTreeSet<String> {
    let mut out = std::collections::BTreeSet::from([id.to_string()]);
    for r in &p.runs {
        if r.depends_on.iter().any(|d| out.contains(d)) {
            out.insert(r.id.clone());
        }
    }
    out
}

#[test]
fn a_run_that_panics_or_errors_fails_alone_and_a_resume_does_not_enter_it_again() {
    let (_, expected) = reference();
    for (fault, label, says) in
        [("panic@run:train si seed", "train si seed 3", "panicked at src/faults.rs"), ("error@run:retrieval ss", "retrieval ss seed 3", "injected error")]
    {
        let dir = tempfile::tempdir().unwrap();
        let suite = write_suite(dir.path(), 0.003);
        let results = dir.path().join("results");
        let out = reproduce_cmd(&results, &suite).env("CMKM_FAULT", fault).output().unwrap();
        let log = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(3), "{fault}: failed runs give status 3: {log}");
        let p = prepare(&suite, &results).unwrap();
        let failing = p.runs.iter().find(|r| r.label == label).unwrap();
        let reason = p.store.failure(&failing.id).unwrap_or_else(|| panic!("{fault}: no failure recorded: {log}"));
        assert!(reason.contains(says) && reason.contains(label), "{fault}: {reason}");
        let skipped = with_dependants(&p, &failing.id);
        for r in &p.runs {
            assert_eq!(p.store.is_done(&r.id), !skipped.contains(&r.id), "{fault}: {} ({log})", r.label);
        }
        // A resume without the fault neither panics nor enters the failed run.
        let out = reproduce_cmd(&results, &suite).output().unwrap();
        let log = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(3), "{fault}: {log}");
        assert!(log.contains("failed in an earlier sitting") && !log.contains("thread '") && !log.contains("] done in "), "{fault}: {log}");
        // `--retry-failed` runs it and its dependants, to the results of an uninterrupted suite.
        let out = reproduce_cmd(&results, &suite).arg("--retry-failed").output().unwrap();
        assert!(out.status.success(), "{fault}: {}", String::from_utf8_lossy(&out.stderr));
        assert!(p.store.failure(&failing.id).is_none(), "{fault}: the failure record goes once the run is done");
        assert_eq!(*expected, outcomes(&results), "{fault}");
    }
}

#[test]
fn cmkm_run_records_a_panicking_run_as_failed_and_exits_non_zero() {
    let dir = tempfile::tempdir().unwrap();
    let suite = write_suite(dir.path(), 0.003);
    let results = dir.path().join("results");
    let p = prepare(&suite, &results).unwrap();
    let run = p.runs.iter().find(|r| r.label == "train sup seed 3").unwrap();
    let out = common::cmkm()
        .args(["run", "--quiet", "--results"])
        .arg(&results)
        .arg(&suite)
        .args(["--run", &run.id])
        .env("CMKM_FAULT", "panic@run:train sup")
        .output()
        .unwrap();
    let log = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{log}");
    assert!(log.contains("FAILED; recorded in"), "{log}");
    assert!(p.store.failure(&run.id).is_some_and(|r| r.contains("injected panic")), "{log}");
    assert!(!p.store.is_done(&run.id) && leftovers(&results).is_empty(), "{:?}", leftovers(&results));
}

/// A run file the report reads with its type: a renamed, mistyped or
/// missing field, a confusion matrix of the wrong size, or a truncated
/// file fails `cmkm report` and `cmkm compare` with the file and the field,
/// never a 0 or a gap in a table.
#[test]
fn malformed_run_files_fail_the_report_naming_the_file_and_the_field() {
    let (reference_dir, _) = reference();
    let p = prepare(&reference_dir.path().join("suite.yaml"), &reference_dir.path().join("reference")).unwrap();
    let dir_of = |label: &str| p.runs.iter().find(|r| r.label == label).map(|r| r.id.clone()).unwrap();
    let (fine_tune, retrieval, fractions) =
        (dir_of("fine-tune ss skeleton seed 3"), dir_of("retrieval si seed 3"), dir_of("label-fractions cmkm inertial seed 3"));
    type Damage = fn(&str) -> String;
    let cases: [(&str, &str, Damage, &str); 5] = [
        (&fine_tune, "metrics.json", |t| t.replace("\"accuracy\"", "\"acc\""), "missing field `accuracy`"),
        (&fine_tune, "metrics.json", |t| t.replace("\"f1_macro\": ", "\"f1_macro\": \"high\", \"old_f1\": "), "f1_macro"),
        (&fine_tune, "metrics.json", |t| t.replacen("[\n    [", "[\n    [1, 2],\n    [", 1), "confusion matrix is not"),
        (&retrieval, "retrieval.json", |t| t[..t.len() / 2].to_string(), "retrieval.json"),
        (&fractions, "label_fractions.json", |t| t.replace("\"main_metric\"", "\"main\""), "missing field `main_metric`"),
    ];
    for (k, (id, file, damage, says)) in cases.into_iter().enumerate() {
        let dir = tempfile::tempdir().unwrap();
        let results = dir.path().join("results");
        copy_dir(&reference_dir.path().join("reference"), &results);
        let path = results.join("runs").join(id).join(file);
        let text = std::fs::read_to_string(&path).unwrap();
        let damaged = damage(&text);
        assert_ne!(damaged, text, "case {k}: the damage changes the file");
        std::fs::write(&path, damaged).unwrap();
        let suite = reference_dir.path().join("suite.yaml");
        let out = common::cmkm().arg("report").arg(&suite).arg("--results").arg(&results).arg("--reports").arg(dir.path().join("reports")).output().unwrap();
        let log = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "case {k}: {log}");
        assert!(log.contains(&format!("{id}/{file}")) && log.contains(says) && !log.contains("panicked"), "case {k}: expected {says:?}: {log}");
        if !says.contains("confusion") {
            let out = common::cmkm().arg("compare").arg(&results).arg(reference_dir.path().join("reference")).output().unwrap();
            let log = String::from_utf8_lossy(&out.stderr);
            assert_eq!(out.status.code(), Some(1), "case {k}: compare: {log}");
            assert!(log.contains(&format!("{id}/{file}")), "case {k}: compare: {log}");
        }
    }
    // A truncated run record fails the report naming it; a foreign folder
    // in the store (no run of the suite) is left alone and changes nothing.
    let dir = tempfile::tempdir().unwrap();
    let results = dir.path().join("results");
    copy_dir(&reference_dir.path().join("reference"), &results);
    let suite = reference_dir.path().join("suite.yaml");
    let report = |to: &str| common::cmkm().arg("report").arg(&suite).arg("--results").arg(&results).arg("--reports").arg(dir.path().join(to)).output().unwrap();
    assert!(report("before").status.success());
    let foreign = results.join("runs/00000000deadbeef");
    std::fs::create_dir_all(&foreign).unwrap();
    std::fs::write(foreign.join("record.json"), "{ not json").unwrap();
    std::fs::write(results.join("runs/stray.txt"), "x").unwrap();
    assert!(report("foreign").status.success());
    for f in ["main_table.csv", "retrieval.csv", "label_fractions.csv", "claims.csv"] {
        assert_eq!(std::fs::read(dir.path().join("before/tiny").join(f)).unwrap(), std::fs::read(dir.path().join("foreign/tiny").join(f)).unwrap(), "{f}");
    }
    let record = results.join("runs").join(&retrieval).join("record.json");
    let text = std::fs::read_to_string(&record).unwrap();
    std::fs::write(&record, &text[..text.len() / 3]).unwrap();
    let out = report("truncated");
    let log = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{log}");
    assert!(log.contains(&format!("{retrieval}/record.json")) && log.contains("not the expected JSON"), "{log}");
}

/// Runs `cmd` with `CMKM_FAULT=kill@<point>:<n>`; true when the fault
/// killed it (SIGKILL), false when it finished first (exit 0).
fn killed_at(cmd: &mut std::process::Command, point: &str, n: u64) -> bool {
    let out = cmd.env("CMKM_FAULT", format!("kill@{point}:{n}")).output().unwrap();
    use std::os::unix::process::ExitStatusExt;
    match out.status.signal() {
        Some(9) => true,
        _ => {
            assert!(out.status.success(), "kill@{point}:{n}: exited with {} without the kill: {}", out.status, String::from_utf8_lossy(&out.stderr));
            false
        }
    }
}

/// Files of a folder with their bytes (no hidden ones), and the hidden ones' names.
fn folder_files(dir: &Path) -> (BTreeMap<String, Vec<u8>>, Vec<String>) {
    let (mut files, mut hidden) = (BTreeMap::new(), vec![]);
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let name = e.file_name().to_string_lossy().to_string();
        if name.starts_with('.') {
            hidden.push(name);
        } else if e.path().is_file() {
            files.insert(name, std::fs::read(e.path()).unwrap());
        }
    }
    (files, hidden)
}

/// SIGKILL at 50+ deterministic points (CMKM_FAULT) spread over training
/// epochs, run file writes and commits (`cmkm reproduce`), report writes
/// (`cmkm report`), archive writes (`cmkm store pack`) and run placements
/// (`cmkm store unpack`): after each kill nothing is partial, nothing
/// written before is lost, and the resumed suite, report and unpacked
/// store are bit-identical to uninterrupted ones.
#[test]
fn sigkills_at_fifty_points_of_training_evaluation_report_and_store_writes_lose_nothing() {
    let (reference_dir, expected) = reference();
    let dir = tempfile::tempdir().unwrap();
    let suite = write_suite(dir.path(), 0.003);
    let results = dir.path().join("killed");
    let mut state = 0x2545_F491_4F6C_DD1Du64;
    let mut draw = move |below: u64| {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        1 + state % below
    };
    let mut kills: BTreeMap<&str, usize> = BTreeMap::new();
    // 1. The suite, killed at an epoch end, a file write or a commit in turn
    // (each a drawn count into the resumed process), until it finishes.
    let points = [("epoch", 4), ("write", 8), ("commit", 2)];
    let mut finished = false;
    for cycle in 0..150 {
        let (point, range) = points[cycle % points.len()];
        let before = outcomes_if_any(&results);
        if !killed_at(&mut reproduce_cmd(&results, &suite), point, draw(range)) {
            finished = true;
            break;
        }
        *kills.entry(point).or_default() += 1;
        assert_no_partial_runs(&results, &format!("reproduce kill {cycle} at {point}"));
        let after = outcomes_if_any(&results);
        assert!(before.iter().all(|(k, v)| after.get(k) == Some(v)), "reproduce kill {cycle}: a finished run's file changed or went");
    }
    assert!(finished, "the suite did not finish within 150 kills");
    assert_eq!(*expected, outcomes(&results), "the resumed suite equals an uninterrupted one");
    assert!(leftovers(&results).is_empty(), "{:?}", leftovers(&results));
    // 2. The report, killed at each of its file writes in turn.
    let reports = dir.path().join("reports");
    let report = || {
        let mut cmd = common::cmkm();
        cmd.arg("report").arg(&suite).arg("--results").arg(&results).arg("--reports").arg(&reports).stdout(std::process::Stdio::null());
        cmd
    };
    let mut n = 1;
    while killed_at(&mut report(), "write", n) {
        *kills.entry("report write").or_default() += 1;
        n += 1;
    }
    let (partial_free, hidden) = folder_files(&reports.join("tiny"));
    assert!(hidden.is_empty(), "the finished report removed what killed ones left: {hidden:?}");
    let uninterrupted = dir.path().join("reports-uninterrupted");
    let out = common::cmkm()
        .arg("report")
        .arg(&suite)
        .arg("--results")
        .arg(reference_dir.path().join("reference"))
        .arg("--reports")
        .arg(&uninterrupted)
        .output()
        .unwrap();
    assert!(out.status.success());
    let (reference_report, _) = folder_files(&uninterrupted.join("tiny"));
    for (name, bytes) in &reference_report {
        // Timings differ between two sittings (the page embeds them); every other file is the same.
        if name != "timings.csv" && name != "index.html" {
            assert_eq!(partial_free.get(name), Some(bytes), "report file {name}");
        }
    }
    assert_eq!(partial_free.keys().collect::<Vec<_>>(), reference_report.keys().collect::<Vec<_>>());
    // 3. The archive: a kill before it moves into place leaves the old one.
    let archive = dir.path().join("runs.tar.gz");
    let pack = || {
        let mut cmd = common::cmkm();
        cmd.args(["store", "pack", "--results"]).arg(&results).arg(&suite).arg("--out").arg(&archive).stdout(std::process::Stdio::null());
        cmd
    };
    assert!(pack().output().unwrap().status.success());
    let packed = std::fs::read(&archive).unwrap();
    for _ in 0..3 {
        assert!(killed_at(&mut pack(), "write", 1));
        *kills.entry("archive write").or_default() += 1;
        assert_eq!(std::fs::read(&archive).unwrap(), packed, "the archive written before is intact");
    }
    // 4. Unpacking into a fresh store, killed at each run's placement in turn.
    let fresh = dir.path().join("unpacked");
    let unpack = || {
        let mut cmd = common::cmkm();
        cmd.args(["store", "unpack", "--results"])
            .arg(&fresh)
            .arg(&suite)
            .arg("--archive")
            .arg(&archive)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null());
        cmd
    };
    let placed =
        |store: &Path| std::fs::read_dir(store.join("runs")).map_or(0, |d| d.flatten().filter(|e| !e.file_name().to_string_lossy().starts_with('.')).count());
    let mut unpack_kills = 0;
    while killed_at(&mut unpack(), "commit", 2) {
        unpack_kills += 1;
        assert_no_partial_runs(&fresh, "unpack kill");
        assert_eq!(placed(&fresh), unpack_kills, "each killed unpack placed one run whole before the kill");
    }
    kills.insert("unpack placement", unpack_kills);
    assert_eq!(*expected, outcomes(&fresh), "the unpacked store equals the uninterrupted suite");
    let total: usize = kills.values().sum();
    eprintln!("kills: {kills:?}, {total} in all");
    assert!(total >= 50, "only {total} kills: {kills:?}");
    for phase in ["epoch", "write", "commit", "report write", "archive write", "unpack placement"] {
        assert!(kills.get(phase).is_some_and(|&k| k >= 1), "no kill at {phase}: {kills:?}");
    }
}

/// [`outcomes`] of a store that may not have a run yet.
fn outcomes_if_any(results: &Path) -> BTreeMap<String, String> {
    if results.join("runs").is_dir() {
        outcomes(results)
    } else {
        BTreeMap::new()
    }
}

/// The tiny suite with `cmkm` swept by `sweep` (YAML written inside its entry).
fn write_swept_suite(dir: &Path, sweep: &str) -> std::path::PathBuf {
    let suite = write_suite(dir, 0.003);
    let text = std::fs::read_to_string(&suite).unwrap();
    let swept = text.replace(
        "cmkm: {file: cmkm.yaml, pretrained: {inertial: si, skeleton: ss}}",
        &format!("cmkm: {{file: cmkm.yaml, pretrained: {{inertial: si, skeleton: ss}}, {sweep}}}"),
    );
    assert_ne!(swept, text);
    std::fs::write(&suite, swept).unwrap();
    suite
}

fn plan_json(suite: &Path, results: &Path) -> Vec<serde_json::Value> {
    let out = common::cmkm().arg("plan").arg(suite).arg("--results").arg(results).arg("--json").output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let plan: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    plan["runs"].as_array().unwrap().clone()
}

/// The issue's check: a 3 x 2 grid plans six CMC-CMKM trainings, each with
/// its own id and its evaluations; the point equal to the method file is
/// the unswept method's very run, and every other method keeps its ids.
#[test]
fn a_grid_sweep_plans_one_training_per_point_and_the_file_as_written_keeps_its_runs() {
    let dir = tempfile::tempdir().unwrap();
    let results = dir.path().join("results");
    let plain = plan_json(&write_suite(dir.path(), 0.003), &results);
    let suite = write_swept_suite(dir.path(), "sweep: {loss.mining_k: [1, 2, 3], loss.intra_lambda: [0.0, 1.0]}");
    let swept = plan_json(&suite, &results);
    let trainings: Vec<&serde_json::Value> = swept.iter().filter(|r| r["step"] == "train" && r["method"].as_str().unwrap().starts_with("cmkm[")).collect();
    let mut names: Vec<&str> = trainings.iter().map(|r| r["method"].as_str().unwrap()).collect();
    names.sort();
    assert_eq!(
        names,
        [
            "cmkm[mining_k=1,intra_lambda=0.0]",
            "cmkm[mining_k=1,intra_lambda=1.0]",
            "cmkm[mining_k=2,intra_lambda=0.0]",
            "cmkm[mining_k=2,intra_lambda=1.0]",
            "cmkm[mining_k=3,intra_lambda=0.0]",
            "cmkm[mining_k=3,intra_lambda=1.0]"
        ]
    );
    let ids: std::collections::BTreeSet<&str> = trainings.iter().map(|r| r["id"].as_str().unwrap()).collect();
    assert_eq!(ids.len(), 6, "six distinct run ids");
    // Each variant gets the suite's evaluations: 3 fine-tunings, retrieval, 3 label-fraction runs.
    for name in &names {
        assert_eq!(swept.iter().filter(|r| r["method"] == *name).count(), 1 + 3 + 1 + 3, "{name}");
    }
    // The file as written (mining_k 1, intra_lambda 1.0) is the unswept cmkm's runs.
    let by_label = |runs: &[serde_json::Value]| -> BTreeMap<String, String> {
        runs.iter()
            .map(|r| (r["label"].as_str().unwrap().replace("cmkm[mining_k=1,intra_lambda=1.0]", "cmkm"), r["id"].as_str().unwrap().to_string()))
            .collect()
    };
    let (before, after) = (by_label(&plain), by_label(&swept));
    for (label, id) in &before {
        assert_eq!(after.get(label), Some(id), "{label} keeps its run");
    }
    assert_eq!(swept.len(), plain.len() + 5 * 8);
}

/// Variants whose resolved method is the same are one run, listed once in
/// the plan with the other variant in its `also`; a one-at-a-time sweep
/// names only the key that moved and folds the file's own values into `[base]`.
#[test]
fn identical_variants_share_their_runs_and_one_at_a_time_moves_one_key() {
    let dir = tempfile::tempdir().unwrap();
    let results = dir.path().join("results");
    // `loss` is set after `loss.mining_k`, so both variants end with K = 3.
    let suite = write_swept_suite(dir.path(), "sweep: {loss.mining_k: [1, 2], loss: [{temperature: 0.1, mining_k: 3, intra_lambda: 1.0}]}");
    let runs = plan_json(&suite, &results);
    let trainings: Vec<&serde_json::Value> = runs.iter().filter(|r| r["step"] == "train" && r["method"].as_str().unwrap().starts_with("cmkm[")).collect();
    assert_eq!(trainings.len(), 1, "{trainings:#?}");
    assert_eq!(trainings[0]["also"].as_array().unwrap().len(), 1);
    let ids: std::collections::BTreeSet<&str> = runs.iter().map(|r| r["id"].as_str().unwrap()).collect();
    assert_eq!(ids.len(), runs.len(), "no run is planned twice");

    let suite = write_swept_suite(
        dir.path(),
        "search: one_at_a_time, sweep: {loss.mining_k: [0, 1, 2], loss.intra_lambda: [0.0, 1.0], loss.symmetric_mining: [null, true]}",
    );
    let p = prepare(&suite, &results).unwrap();
    let names: Vec<&str> = p.suite.sweeps["cmkm"].variants.iter().map(|v| v.name.as_str()).collect();
    assert_eq!(names, ["cmkm[base]", "cmkm[mining_k=0]", "cmkm[mining_k=2]", "cmkm[intra_lambda=0.0]", "cmkm[symmetric_mining=true]"]);
    assert_eq!(p.suite.methods["cmkm[base]"], p.suite.sweeps["cmkm"].base, "the base point is the file as written");
}

/// Bad sweeps fail when the suite loads, naming the suite file, the line
/// and the key.
#[test]
fn a_bad_sweep_is_an_error_at_plan_time_naming_the_file_line_and_key() {
    let dir = tempfile::tempdir().unwrap();
    let results = dir.path().join("results");
    let cases = [
        ("sweep: {loss.mining_kk: [1, 2]}", "mining_kk"),
        ("sweep: {loss.mining_k: 2}", "needs a list"),
        ("sweep: {loss.mining_k: [1, 1]}", "twice"),
        ("sweep: {kind: [cmc]}", "cannot be swept"),
        ("sweep: {schedule.batch_sise: [8]}", "batch_sise"),
        ("samples: 2, sweep: {loss.mining_k: [1, 2]}", "samples"),
        ("search: random, samples: 5, sweep: {loss.mining_k: [1, 2]}", "between 1 and the grid's 2 points"),
        ("search: one_at_a_time", "applies to a `sweep`"),
    ];
    for (sweep, expected) in cases {
        let suite = write_swept_suite(dir.path(), sweep);
        let err = format!("{:#}", prepare(&suite, &results).err().unwrap_or_else(|| panic!("{sweep} was accepted")));
        assert!(err.contains(expected), "{sweep}: {err}");
        assert!(err.contains("suite.yaml") && err.contains("line 9"), "{sweep}: {err}");
    }
    // A key another kind reads, swept on a SimCLR method.
    let suite = write_suite(dir.path(), 0.003);
    let text = std::fs::read_to_string(&suite).unwrap().replace("si: {file: si.yaml}", "si: {file: si.yaml, sweep: {loss.mining_k: [1, 2]}}");
    std::fs::write(&suite, text).unwrap();
    let err = format!("{:#}", prepare(&suite, &results).err().expect("SimCLR reads no mining_k"));
    assert!(err.contains("mining_k") && err.contains("line 7"), "{err}");
    // A swept miner: which variant would mine?
    let text = std::fs::read_to_string(&suite).unwrap().replace("sweep: {loss.mining_k: [1, 2]}", "sweep: {loss.temperature: [0.1, 0.2]}");
    std::fs::write(&suite, text).unwrap();
    let err = format!("{:#}", prepare(&suite, &results).err().expect("a swept miner"));
    assert!(err.contains("swept") && err.contains("`si`"), "{err}");
}

/// A swept suite end to end: the report's sweep table lists every variant
/// with its validation and test figures and marks the one validation
/// chose; the main table reports the swept method as that variant.
#[test]
fn a_swept_suite_reports_every_variant_and_the_one_chosen_on_validation() {
    let dir = tempfile::tempdir().unwrap();
    let results = dir.path().join("results");
    let suite = write_swept_suite(dir.path(), "sweep: {loss.mining_k: [1, 2]}");
    let text = std::fs::read_to_string(&suite).unwrap() + "claims:\n  - {a: \"cmkm[mining_k=2]\", b: \"cmkm[mining_k=1]\"}\n";
    std::fs::write(&suite, text).unwrap();
    let p = prepare(&suite, &results).unwrap();
    assert_eq!(p.reproduce(true).unwrap(), (p.runs.len(), 0));
    let reports = dir.path().join("reports");
    cmkm::report::write_report(&p, &reports).unwrap();
    let sweep = std::fs::read_to_string(reports.join("tiny/sweep_cmkm.csv")).unwrap();
    let rows: Vec<&str> = sweep.lines().skip(1).collect();
    assert_eq!(rows.len(), 2 * 3, "two variants, three modality rows: {sweep}");
    let chosen: Vec<&str> = rows.iter().filter(|r| r.ends_with(",yes")).map(|r| r.split(',').next().unwrap()).collect();
    assert!(chosen.len() == 3 && chosen.iter().all(|c| *c == chosen[0]), "{sweep}");
    // The chosen variant's best validation, recomputed from the run files.
    let validation = |name: &str| -> f64 {
        let vals: Vec<f64> = p
            .runs
            .iter()
            .filter(|r| r.method == name && matches!(r.step, cmkm::harness::plan::Step::FineTune(_)))
            .map(|r| cmkm::protocols::read_validation(&p.store.dir(&r.id)).unwrap().expect("recorded"))
            .collect();
        vals.iter().sum::<f64>() / vals.len() as f64
    };
    let (v1, v2) = (validation("cmkm[mining_k=1]"), validation("cmkm[mining_k=2]"));
    assert_eq!(chosen[0], if v2 > v1 { "cmkm[mining_k=2]" } else { "cmkm[mining_k=1]" }, "{v1} {v2}");
    let main = std::fs::read_to_string(reports.join("tiny/main_table.md")).unwrap();
    let table_rows = main.lines().filter(|l| l.starts_with('|'));
    assert!(main.contains("| cmkm |") && table_rows.clone().all(|l| !l.contains("cmkm[")) && main.contains(&format!("`{}`", chosen[0])), "{main}");
    let claims = std::fs::read_to_string(reports.join("tiny/claims.csv")).unwrap();
    assert!(claims.contains("cmkm[mining_k=2] > cmkm[mining_k=1]"), "{claims}");
    for f in ["sweep_cmkm_mining_k.png", "sweep_cmkm_mining_k.svg", "sweep_cmkm.md", "sweep_cmkm.tex"] {
        assert!(reports.join("tiny").join(f).is_file(), "{f}");
    }
    check_page_in_a_browser(&reports.join("tiny"));
}

/// Loads a report's `index.html` in headless Chromium (Debian's `chromium`)
/// and checks the page as the browser built it: one table per Markdown
/// table of the folder plus the timings, every SVG figure inline, no
/// reference outside the folder. Without Chromium the check is skipped
/// with a message, unless `CMKM_REQUIRE_BROWSER` is set (CI), where a
/// missing browser fails it.
fn check_page_in_a_browser(dir: &Path) {
    let page = dir.join("index.html");
    let text = std::fs::read_to_string(&page).unwrap();
    let external = ["src=\"http", "href=\"http", "<script", "<link", "<img"];
    assert!(external.iter().all(|e| !text.contains(e)), "the page is self-contained");
    let browser = std::process::Command::new("chromium")
        .args(["--headless", "--no-sandbox", "--disable-gpu", "--dump-dom"])
        .arg(format!("file://{}", page.display()))
        .output();
    let dom = match browser {
        Ok(out) if out.status.success() => String::from_utf8(out.stdout).unwrap(),
        other => {
            let why = match other {
                Ok(out) => format!("chromium failed: {}", String::from_utf8_lossy(&out.stderr)),
                Err(e) => format!("no chromium ({e}); Debian: apt-get install chromium"),
            };
            common::skip("the browser check of a report page", &why, "CMKM_REQUIRE_BROWSER");
            return;
        }
    };
    let count = |ext: &str| std::fs::read_dir(dir).unwrap().flatten().filter(|e| e.path().extension().is_some_and(|x| x == ext)).count();
    assert_eq!(dom.matches("<table").count(), count("md") + 1, "a table per Markdown table, and the timings");
    assert_eq!(dom.matches("<svg").count(), count("svg"), "every figure inline");
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let name = entry.file_name().to_string_lossy().to_string();
        if let Some(stem) = name.strip_suffix(".md") {
            assert!(dom.contains(&format!("<section id=\"{stem}\">")) && dom.contains(&format!("href=\"{stem}.csv\"")), "{stem}");
        }
    }
}

/// Every run id of the committed reports stands: planning the shipped
/// suites (whose method files extend each other) gives the ids their
/// `timings.csv` recorded.
#[test]
fn the_shipped_suites_keep_every_committed_run_id() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let results = tempfile::tempdir().unwrap();
    for name in ["paper-utd", "paper-utd-frozen-training", "quick-utd"] {
        let p = prepare(&root.join(format!("experiments/{name}.yaml")), results.path()).unwrap();
        let planned: std::collections::BTreeSet<&str> = p.runs.iter().map(|r| r.id.as_str()).collect();
        let timings = std::fs::read_to_string(root.join(format!("reports/{name}/timings.csv"))).unwrap();
        let committed: Vec<&str> = timings.lines().skip(1).map(|l| l.split(',').next().unwrap()).collect();
        assert_eq!(committed.len(), p.runs.len(), "{name}");
        assert!(committed.iter().all(|id| planned.contains(id)), "{name}: a committed run id is no longer planned");
    }
}

/// A suite on a dataset with no recorded timing: every run gets an estimate
/// from its FLOPs, marked as such, and the plan says how the rate was found.
#[test]
fn a_suite_without_recorded_timings_is_estimated_from_its_flops() {
    let dir = tempfile::tempdir().unwrap();
    let data = common::example_declaration(dir.path(), "example-manifest");
    let suite = Path::new(env!("CARGO_MANIFEST_DIR")).join("experiments/example-manifest.yaml");
    let plan = |json: bool| {
        let mut c = common::cmkm();
        c.arg("plan")
            .arg(&suite)
            .arg("--dataset")
            .arg(&data)
            .arg("--results")
            .arg(dir.path().join("results"))
            .arg("--reports")
            .arg(dir.path().join("no-reports"));
        if json {
            c.arg("--json");
        }
        let out = c.output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout).unwrap()
    };
    let overview: serde_json::Value = serde_json::from_str(&plan(true)).unwrap();
    let runs = overview["runs"].as_array().unwrap();
    assert_eq!(runs.len(), 2 + 3 + 2, "two trainings, CMC's three fine-tunings, two retrievals");
    for r in runs {
        assert_eq!(r["estimate_from_flops"], true, "{}", r["label"]);
        assert!(r["estimate_seconds"].as_f64().unwrap() > 0.0, "{}", r["label"]);
    }
    assert!(overview["flop_rate"].as_str().unwrap().contains("peak"), "{}", overview["flop_rate"]);
    let text = plan(false);
    assert!(text.contains("~") && text.contains("*: 7 run(s) with no recorded timing, estimated from their FLOPs"), "{text}");
}

/// The example recordings (HAPT's layout, interval labels), declared in
/// YAML alone, cut into windows, split by user, standardised on the
/// training users, trained and evaluated by a suite: each run done, the
/// statistics in the training's record, the unlabelled windows in the
/// self-supervised training only.
#[test]
fn a_suite_on_continuous_recordings_trains_and_evaluates_from_yaml_alone() {
    let dir = tempfile::tempdir().unwrap();
    let data = common::example_declaration(dir.path(), "example-recordings");
    let encoders = "encoders:\n  accel: {type: cnn_transformer, channels: [8, 16], feed_forward: 32, layers: 1}\n  gyro: {type: cnn_transformer, channels: [8, 16], feed_forward: 32, layers: 1}\nschedule: {epochs: 1, batch_size: 64, lr: 0.003, plateau_patience: 20}\n";
    let views = "augmentations:\n  accel: [{name: jitter, sigma: 0.5, p: 0.75}, {name: scale, sigma: 0.5, p: 0.75}]\n  gyro: [{name: jitter, sigma: 0.5, p: 0.75}]\nprojection: {hidden: 32, out: 16}\nloss: {temperature: 0.1}\n";
    std::fs::write(dir.path().join("sup.yaml"), format!("name: sup\nkind: supervised\nmodalities: [accel, gyro]\n{encoders}")).unwrap();
    std::fs::write(dir.path().join("cmc.yaml"), format!("name: cmc\nkind: cmc\nmodalities: [accel, gyro]\n{encoders}{views}")).unwrap();
    let suite = dir.path().join("suite.yaml");
    let text = format!(
        "name: rec\ndataset: {}\nprotocol: by_user\nseeds: [3]\nmethods:\n  sup: {{file: sup.yaml}}\n  cmc: {{file: cmc.yaml}}\nevaluations:\n  fine_tuning: {{epochs: 1}}\n  retrieval: true\n",
        data.display()
    );
    std::fs::write(&suite, text).unwrap();
    let results = dir.path().join("results");
    let p = prepare(&suite, &results).unwrap();
    assert_eq!(p.reproduce(true).unwrap(), (p.runs.len(), 0));
    assert_eq!(p.runs.len(), 2 + 3 + 2);
    let train = |label: &str| p.runs.iter().find(|r| r.label == label).unwrap();
    let split = p.dataset.decl.split("by_user", &p.dataset.meta).unwrap();
    for label in ["train cmc seed 3", "train sup seed 3"] {
        let record = cmkm::methods::read_record(&p.store.dir(&train(label).id)).unwrap();
        assert_eq!(record.standardization.len(), 2, "{label}");
        assert!(record.standardization.iter().all(|s| s.fitted_on == split.train.len() && s.mean.len() == 3), "{label}");
    }
    // The example keeps unlabelled windows: the training users' ones join
    // CMC's epochs (more batches than the labelled training split gives).
    let data = cmkm::training::TrainData::new(&p.dataset, &["accel".into(), "gyro".into()], "by_user").unwrap();
    assert!(!data.pretrain_only.is_empty());
    assert!(data.pretrain_only.iter().all(|&i| i >= data.labels.len()));
    let metrics = p.store.dir(&train("train sup seed 3").id).join("metrics.json");
    assert!(metrics.is_file(), "the supervised training is evaluated on the test users");
    // A suite may leave the unlabelled windows out: another fingerprint,
    // other ids for the trainings, no pre-training-only windows.
    std::fs::write(&suite, std::fs::read_to_string(&suite).unwrap() + "unlabelled_windows: drop\n").unwrap();
    let q = prepare(&suite, &results).unwrap();
    assert!(q.dataset.unlabelled.is_empty());
    assert!(q.runs.iter().all(|r| p.runs.iter().all(|o| o.id != r.id)));
    // On a dataset without windows the key is an error naming the suite's line.
    let utd = common::write_tiny_suite(dir.path(), 0.003);
    std::fs::write(&utd, std::fs::read_to_string(&utd).unwrap() + "unlabelled_windows: pretrain\n").unwrap();
    let e = format!("{:#}", prepare(&utd, &results).err().unwrap());
    assert!(e.contains("unlabelled_windows") && e.contains("nothing is unlabelled") && e.contains("suite.yaml"), "{e}");
}
