//! Suites: planning with dependencies and content-addressed run ids, and a
//! tiny suite reproduced end to end, resumable and idempotent.

mod common;

use cmkm::harness::runner::prepare;
use common::{dataset, ENCODERS};
use std::collections::BTreeMap;
use std::path::Path;

/// Writes a tiny suite (tiny models, 1-2 epochs) over the synthetic data.
fn write_suite(dir: &Path, cmc_lr: f64) -> std::path::PathBuf {
    let yaml = std::fs::read_to_string(common::declaration("utd-mhad.yaml")).unwrap();
    std::fs::write(dir.join("data.yaml"), yaml.replace("root: /data/UTD-MHAD", &format!("root: {}", dataset().decl.root.display()))).unwrap();
    let method = |name: &str, head: &str, mods: &[&str], lr: f64| {
        let mut text = format!("name: {name}\n{head}\nmodalities: {mods:?}\n{ENCODERS}");
        text = text.replace("lr: 0.003", &format!("lr: {lr}"));
        // Keep only this method's modalities in the shared blocks.
        let m: cmkm::methods::config::MethodConfig = {
            let mut m: cmkm::methods::config::MethodConfig = cmkm::config::parse_yaml(&text).unwrap();
            m.encoders.retain(|k, _| mods.contains(&k.as_str()));
            m.augmentations.retain(|k, _| mods.contains(&k.as_str()));
            m.schedule.epochs = 1;
            m
        };
        std::fs::write(dir.join(format!("{name}.yaml")), serde_yaml::to_string(&m).unwrap()).unwrap();
    };
    method("sup", "kind: supervised", &["skeleton"], 0.003);
    method("si", "kind: simclr\nloss: {temperature: 0.1}", &["inertial"], 0.003);
    method("ss", "kind: simclr\nloss: {temperature: 0.5}", &["skeleton"], 0.003);
    method("cmkm", "kind: cmkm\nloss: {temperature: 0.1, mining_k: 1, intra_lambda: 1.0}", &["inertial", "skeleton"], cmc_lr);
    let suite = "name: tiny\ndataset: data.yaml\nprotocol: cross_subject\nseeds: [3]\nmethods:\n  sup: {file: sup.yaml}\n  si: {file: si.yaml}\n  ss: {file: ss.yaml}\n  cmkm: {file: cmkm.yaml, pretrained: {inertial: si, skeleton: ss}}\nevaluations:\n  fine_tuning: {epochs: 2}\n  retrieval: true\n  label_fractions: {fractions: [0.5], repetitions: 1, epochs: 2}\n";
    std::fs::write(dir.join("suite.yaml"), suite).unwrap();
    dir.join("suite.yaml")
}

fn ids(dir: &Path, results: &Path) -> BTreeMap<String, String> {
    let p = prepare(&dir.join("suite.yaml"), results).unwrap();
    p.runs.iter().map(|r| (r.label.clone(), r.id.clone())).collect()
}

#[test]
fn editing_a_method_replans_only_what_depends_on_it() {
    let dir = tempfile::tempdir().unwrap();
    write_suite(dir.path(), 0.003);
    let before = ids(dir.path(), &dir.path().join("results"));
    // 4 trainings; fine-tuning: si 1, ss 1, cmkm 3; retrieval 4; label fractions 5.
    assert_eq!(before.len(), 4 + 5 + 4 + 5, "{before:#?}");
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
    let leftovers: Vec<_> = std::fs::read_dir(results.join("tiny/runs")).unwrap().flatten().filter(|e| e.file_name().to_string_lossy().starts_with('.')).collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
    let start = std::time::Instant::now();
    let again = prepare(&suite, &results).unwrap();
    assert_eq!(again.reproduce(true).unwrap(), (p.runs.len(), 0));
    assert!(start.elapsed().as_secs() < 20, "a finished suite is skipped quickly");
    assert!(again.describe().lines().filter(|l| l.contains(" done ")).count() == p.runs.len());
}

/// The files whose contents must not depend on interruptions.
fn outcomes(results: &Path) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for run in std::fs::read_dir(results.join("tiny/runs")).unwrap().flatten() {
        for f in ["metrics.json", "retrieval.json", "label_fractions.json"] {
            if let Ok(text) = std::fs::read_to_string(run.path().join(f)) {
                out.insert(format!("{}/{f}", run.file_name().to_string_lossy()), text);
            }
        }
    }
    out
}

#[test]
fn a_killed_reproduce_resumes_to_identical_results_without_partial_files() {
    let dir = tempfile::tempdir().unwrap();
    let suite = write_suite(dir.path(), 0.003);
    let reference = dir.path().join("reference");
    prepare(&suite, &reference).unwrap().reproduce(true).unwrap();
    let results = dir.path().join("killed");
    for delay_ms in [1500u64, 6000] {
        let mut child = common::cmkm().args(["reproduce", "--quiet", "--results"]).arg(&results).arg(&suite).stderr(std::process::Stdio::null()).spawn().unwrap();
        std::thread::sleep(std::time::Duration::from_millis(delay_ms));
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        // Every run folder present is complete.
        if let Ok(entries) = std::fs::read_dir(results.join("tiny/runs")) {
            for e in entries.flatten().filter(|e| !e.file_name().to_string_lossy().starts_with('.')) {
                assert!(e.path().join("record.json").is_file(), "partial run folder {}", e.path().display());
            }
        }
    }
    let out = common::cmkm().args(["reproduce", "--quiet", "--results"]).arg(&results).arg(&suite).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let leftovers: Vec<_> = std::fs::read_dir(results.join("tiny/runs")).unwrap().flatten().filter(|e| e.file_name().to_string_lossy().starts_with('.')).collect();
    assert!(leftovers.is_empty(), "staging folders or locks left: {leftovers:?}");
    assert_eq!(outcomes(&reference), outcomes(&results));
}
