//! Fixture builders shared by the integration tests.
#![allow(dead_code)]

use cmkm::data::declaration::Format;
use cmkm::data::formats::{mat::write_mat_double, npy::write_npy_f32};
use cmkm::data::{Dataset, DatasetDecl};
use cmkm::methods::config::MethodConfig;
use cmkm::methods::{train, TrainOptions, TrainSummary};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// A test that cannot run here because a service or device is missing:
/// under `require` (an environment variable CI sets, e.g.
/// `CMKM_REQUIRE_GPU`) that is a failure; otherwise the skip is said on
/// stderr and appended to the file `CMKM_SKIP_LOG` names, which `make test`
/// prints at its end, so that a skip never passes unseen.
pub fn skip(test: &str, why: &str, require: &str) {
    if std::env::var_os(require).is_some() {
        panic!("{test}: {require} is set, but {why}");
    }
    let line = format!("SKIPPED {test}: {why} (set {require}=1 to make this a failure)");
    eprintln!("{line}");
    if let Some(log) = std::env::var_os("CMKM_SKIP_LOG") {
        use std::io::Write;
        let mut f = std::fs::OpenOptions::new().create(true).append(true).open(log).expect("the skip log opens");
        writeln!(f, "{line}").expect("the skip log is written");
    }
}

/// The `cmkm` binary built for these tests.
pub fn cmkm() -> std::process::Command {
    std::process::Command::new(env!("CARGO_BIN_EXE_cmkm"))
}

/// Path of a shipped declaration.
pub fn declaration(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("experiments/datasets").join(name)
}

/// The shipped `experiments/` folder.
pub fn experiments() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("experiments")
}

/// A smooth, finite test signal.
pub fn wave(n: usize, phase: f64) -> Vec<f64> {
    (0..n).map(|i| (i as f64 * 0.3 + phase).sin()).collect()
}

/// Writes a tiny UTD-MHAD layout: `actions` x `subjects` x `trials`, T = 40
/// inertial rows and 30 skeleton frames; the skeleton file is compressed
/// for odd trials so both MAT encodings are read.
pub fn write_utd_fixture(root: &Path, actions: usize, subjects: usize, trials: usize) {
    for a in 1..=actions {
        for s in 1..=subjects {
            for t in 1..=trials {
                let phase = (a * 100 + s * 10 + t) as f64;
                let iner = wave(40 * 6, phase);
                let p = root.join(format!("Inertial/a{a}_s{s}_t{t}_inertial.mat"));
                write_mat_double(&p, "d_iner", &[40, 6], &iner, false).unwrap();
                let skel: Vec<f64> = wave(20 * 3 * 30, phase).iter().enumerate().map(|(i, v)| v + (i % 20) as f64).collect();
                let p = root.join(format!("Skeleton/a{a}_s{s}_t{t}_skeleton.mat"));
                write_mat_double(&p, "d_skel", &[20, 3, 30], &skel, t % 2 == 1).unwrap();
            }
        }
    }
}

/// Writes an MMAct layout: CSV inertial (header + 12 columns) and NPY
/// skeletons (17 x 2 x T) for the given (action, subject, scene, session).
pub fn write_mmact_fixture(root: &Path, samples: &[(usize, u32, u32, u32)]) {
    std::fs::create_dir_all(root.join("Inertial")).unwrap();
    for &(a, s, sc, ses) in samples {
        let id = format!("a{a}_s{s}_t1_ses{ses}_sc{sc}");
        let mut csv = String::from("pax,pay,paz,wax,way,waz,gx,gy,gz,ox,oy,oz\n");
        for r in 0..45 {
            let row: Vec<String> = (0..12).map(|c| format!("{}", ((r * 12 + c) as f64 * 0.1).sin())).collect();
            csv.push_str(&row.join(","));
            csv.push('\n');
        }
        std::fs::write(root.join(format!("Inertial/{id}.csv")), csv).unwrap();
        let skel: Vec<f32> = (0..17 * 2 * 25).map(|i| (i as f32 * 0.01).cos()).collect();
        write_npy_f32(&root.join(format!("Skeleton/{id}.npy")), &[17, 2, 25], &skel).unwrap();
    }
}

/// The synthetic set, generated once for this test binary.
pub fn dataset() -> &'static Dataset {
    static DS: OnceLock<Dataset> = OnceLock::new();
    DS.get_or_init(|| {
        // Cargo's scratch folder for integration tests: reused across runs
        // (regenerated only when the generator changes), never leaked in /tmp.
        let root = Path::new(env!("CARGO_TARGET_TMPDIR")).join("synthetic-utd-seed0");
        cmkm::data::synth::ensure_generated(&root, 0, cmkm::data::synth::Layout::UtdMhad).unwrap();
        Dataset::load(&DatasetDecl::builtin(Format::UtdMhad, &root).unwrap(), &[]).unwrap()
    })
}

pub const ENCODERS: &str = "
encoders:
  inertial: {type: cnn_transformer, channels: [8, 16], feed_forward: 32, layers: 1}
  skeleton: {type: co_occurrence, point_channels: 8, cooccurrence_channels: [8, 16], fused_channels: [16, 32]}
projection: {hidden: 32, out: 16}
augmentations:
  inertial: [{name: jitter, sigma: 0.5, p: 0.75}, {name: scale, sigma: 0.5, p: 0.75}, {name: permute, max_segments: 3, p: 0.75}]
  skeleton: [{name: jitter, sigma: 0.05}, {name: rotate, max_degrees: 10, step_degrees: 2, p: 0.75}, {name: random_crop, min_fraction: 0.8, max_fraction: 0.9, resize_to: 50, p: 0.75}]
schedule: {epochs: 4, batch_size: 32, lr: 0.003, plateau_patience: 20}
";

pub fn method(head: &str, modalities: &[&str]) -> MethodConfig {
    let mut m: MethodConfig = cmkm::config::parse_yaml(&format!("{head}\n{ENCODERS}")).unwrap();
    let keep = |k: &String| modalities.contains(&k.as_str());
    m.encoders.retain(|k, _| keep(k));
    m.augmentations.retain(|k, _| keep(k));
    m
}

pub fn run(m: &MethodConfig, out: &Path) -> TrainSummary {
    let opts = TrainOptions { protocol: "cross_subject".into(), seed: 5, out: out.to_path_buf(), quiet: true, train_subset: None };
    train(m, dataset(), &opts).unwrap()
}

/// Writes a tiny suite (tiny models, 1-2 epochs) over the synthetic data:
/// `dir/suite.yaml` (suite `tiny`), its method files and dataset
/// declaration. `cmc_lr` is CMC-CMKM's learning rate (1e30 makes it fail).
pub fn write_tiny_suite(dir: &Path, cmc_lr: f64) -> std::path::PathBuf {
    let yaml = std::fs::read_to_string(declaration("utd-mhad.yaml")).unwrap();
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
    let suite = "name: tiny\ndataset: data.yaml\nprotocol: cross_subject\nseeds: [3]\nmethods:\n  sup: {file: sup.yaml}\n  si: {file: si.yaml}\n  ss: {file: ss.yaml}\n  cmkm: {file: cmkm.yaml, pretrained: {inertial: si, skeleton: ss}}\nevaluations:\n  fine_tuning: {epochs: 2}\n  retrieval: true\n  label_fractions: {fractions: [0.5], repetitions: 1, epochs: 2, baselines: [random, supervised]}\n";
    std::fs::write(dir.join("suite.yaml"), suite).unwrap();
    dir.join("suite.yaml")
}

/// A shipped example's declaration (`example-manifest`,
/// `example-recordings`) with its root in Cargo's scratch folder (generated
/// there on first load), written to `dir`.
pub fn example_declaration(dir: &Path, name: &str) -> PathBuf {
    let text = std::fs::read_to_string(declaration(&format!("{name}.yaml"))).unwrap();
    let root = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("{name}-seed0"));
    let shipped = format!("root: ../../results/data/{name}-seed0");
    assert!(text.contains(&shipped), "{name}: the shipped root moved");
    let text = text.replace(&shipped, &format!("root: {}", root.display()));
    let path = dir.join(format!("{name}.yaml"));
    std::fs::write(&path, text).unwrap();
    path
}
