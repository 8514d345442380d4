//! Dataset loading on generated fixtures: the UTD-MHAD, MMAct and manifest
//! formats, and every kind of broken input the loaders must name.

use crate::common;

use cmkm::data::declaration::Format;
use cmkm::data::formats::{mat::write_mat_double, npy::write_npy_f32};
use cmkm::data::{Dataset, DatasetDecl};
use common::*;

fn utd(dir: &std::path::Path) -> DatasetDecl {
    DatasetDecl::builtin(Format::UtdMhad, dir).unwrap()
}

#[test]
fn utd_layout_loads_and_preprocesses_to_spec_shapes() {
    let dir = tempfile::tempdir().unwrap();
    write_utd_fixture(dir.path(), 2, 8, 2);
    let ds = Dataset::load(&utd(dir.path()), &[]).unwrap();
    ds.ensure_clean().unwrap();
    assert_eq!(ds.len(), 32);
    assert_eq!(ds.clips[0][0].dim(), (40, 1, 6));
    assert_eq!(ds.clips[1][0].dim(), (30, 20, 3));
    let pre = ds.preprocess();
    assert_eq!(pre[0][0].dim(), (50, 1, 6));
    assert_eq!(pre[1][0].dim(), (50, 20, 3));
    // Skeleton normalisation: joint 2 at the origin and |j1 - j2| = 1 in frame 0.
    let s = &pre[1][5];
    assert!((0..3).all(|c| s[[0, 2, c]].abs() < 0.05), "resampling keeps joint 2 near the origin");
    let split = ds.decl.protocol("cross_subject").unwrap().split(&ds.meta).unwrap();
    assert_eq!((split.train.len(), split.val.len(), split.test.len()), (12, 4, 16));
}

#[test]
fn broken_mat_files_are_named_with_their_reason() {
    let dir = tempfile::tempdir().unwrap();
    write_utd_fixture(dir.path(), 1, 2, 2);
    let root = dir.path();
    // Truncated, garbage, wrong variable, wrong shape, and a NaN.
    let p = root.join("Skeleton/a1_s1_t1_skeleton.mat");
    let bytes = std::fs::read(&p).unwrap();
    std::fs::write(&p, &bytes[..bytes.len() / 2]).unwrap();
    std::fs::write(root.join("Inertial/a1_s1_t2_inertial.mat"), b"this is not a MAT file at all").unwrap();
    write_mat_double(&root.join("Inertial/a1_s2_t1_inertial.mat"), "d_depth", &[40, 6], &wave(240, 0.0), false).unwrap();
    write_mat_double(&root.join("Skeleton/a1_s2_t2_skeleton.mat"), "d_skel", &[20, 2, 30], &wave(1200, 0.0), false).unwrap();
    let out = cmkm().args(["data", "inspect", "--json", "--format", "utd-mhad", "--dir"]).arg(root).output().unwrap();
    assert_eq!(out.status.code(), Some(2), "inspect must fail: {}", String::from_utf8_lossy(&out.stderr));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["samples"], 0);
    let failed = report["failed"].as_array().unwrap();
    let reason = |file: &str| {
        failed
            .iter()
            .find(|f| f["file"].as_str().unwrap().ends_with(file))
            .map(|f| f["reason"].as_str().unwrap().to_string())
            .unwrap_or_else(|| panic!("{file} not reported: {failed:?}"))
    };
    assert!(reason("a1_s1_t1_skeleton.mat").contains("truncated"));
    assert!(reason("a1_s1_t2_inertial.mat").contains("not a MAT"));
    assert!(reason("a1_s2_t1_inertial.mat").contains("'d_iner' not found"));
    assert!(reason("a1_s2_t2_skeleton.mat").contains("20 joints x 2 channels"));
}

#[test]
fn non_finite_values_and_missing_modalities_are_reported() {
    let dir = tempfile::tempdir().unwrap();
    write_utd_fixture(dir.path(), 2, 2, 1);
    let mut iner = wave(240, 0.0);
    iner[7] = f64::NAN;
    iner[8] = f64::INFINITY;
    write_mat_double(&dir.path().join("Inertial/a1_s1_t1_inertial.mat"), "d_iner", &[40, 6], &iner, false).unwrap();
    std::fs::remove_file(dir.path().join("Skeleton/a2_s2_t1_skeleton.mat")).unwrap();
    std::fs::write(dir.path().join("Skeleton/README.txt"), "notes").unwrap();
    let ds = Dataset::load(&utd(dir.path()), &[]).unwrap();
    assert_eq!(ds.len(), 3);
    assert_eq!(ds.dropped.len(), 1);
    assert_eq!((ds.dropped[0].id.as_str(), ds.dropped[0].missing.clone()), ("a2_s2_t1", vec!["skeleton".to_string()]));
    assert_eq!(ds.non_finite.len(), 1);
    assert_eq!(ds.non_finite[0].count, 2);
    assert_eq!(ds.ignored.len(), 1);
    let err = ds.ensure_clean().unwrap_err().to_string();
    assert!(err.contains("a1_s1_t1_inertial.mat") && err.contains("NaN"), "{err}");
    // Asking for the inertial modality alone keeps the sample that lacks a skeleton.
    let only = Dataset::load(&utd(dir.path()), &["inertial".into()]).unwrap();
    assert_eq!((only.len(), only.dropped.len()), (4, 0));
}

#[test]
fn mmact_layout_and_both_protocols() {
    let dir = tempfile::tempdir().unwrap();
    let mut samples = vec![];
    for s in 1..=20u32 {
        for a in [1usize, 36] {
            for sc in 1..=4u32 {
                samples.push((a, s, sc, 1u32));
            }
        }
    }
    write_mmact_fixture(dir.path(), &samples);
    let decl = DatasetDecl::builtin(Format::Mmact, dir.path()).unwrap();
    let ds = Dataset::load(&decl, &[]).unwrap();
    ds.ensure_clean().unwrap();
    assert_eq!(ds.len(), 160);
    assert_eq!(ds.clips[0][0].dim(), (45, 1, 12));
    assert_eq!(ds.clips[1][0].dim(), (25, 17, 2));
    assert_eq!(ds.meta[0].scene, Some(1));
    let xs = decl.protocol("cross_subject").unwrap().split(&ds.meta).unwrap();
    assert_eq!((xs.train.len(), xs.val.len(), xs.test.len()), (96, 24, 32)); // subject 16 unused
    let xc = decl.protocol("cross_scene").unwrap().split(&ds.meta).unwrap();
    assert_eq!((xc.train.len(), xc.val.len(), xc.test.len()), (96, 24, 40));
    assert!(xc.test.iter().all(|&i| ds.meta[i].scene == Some(2)));
    let pre = ds.preprocess();
    assert_eq!(pre[1][0].dim(), (50, 17, 2));
}

const MANIFEST_DECL: &str = "\
name: toy
format: manifest
root: .
modalities:
  - {name: accel, kind: series, channels: 3, sample_rate: 50, layout: TC, preprocess: [{name: resample, length: 50}]}
  - {name: gyro, kind: series, channels: 3, sample_rate: 50, layout: CT}
classes: [sit, stand]
protocols:
  random: {stratified: {seed: 1, val_fraction: 0.25, test_fraction: 0.25}}
main_metric: f1_macro
";

#[test]
fn manifest_format_reads_npy_and_csv_with_names_or_numbers() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    std::fs::write(root.join("toy.yaml"), MANIFEST_DECL).unwrap();
    let mut manifest = String::from("sample_id,label,subject,trial,accel,gyro\n");
    for i in 0..9 {
        let label = if i % 2 == 0 { "sit".to_string() } else { "2".to_string() };
        let acc: Vec<f32> = (0..60 * 3).map(|k| (k + i) as f32).collect();
        write_npy_f32(&root.join(format!("acc{i}.npy")), &[60, 3], &acc).unwrap();
        let gyro_row = |r: usize| (0..20).map(|k| format!("{}", r * 100 + k + i)).collect::<Vec<_>>().join(",");
        std::fs::write(root.join(format!("g{i}.csv")), format!("{}\n{}\n{}\n", gyro_row(0), gyro_row(1), gyro_row(2))).unwrap();
        let gyro = if i == 8 { String::new() } else { format!("g{i}.csv") };
        manifest.push_str(&format!("x{i},{label},{},1,acc{i}.npy,{gyro}\n", i % 3 + 1));
    }
    std::fs::write(root.join("manifest.csv"), &manifest).unwrap();
    let decl = DatasetDecl::from_file(&root.join("toy.yaml")).unwrap();
    let ds = Dataset::load(&decl, &[]).unwrap();
    ds.ensure_clean().unwrap();
    assert_eq!(ds.len(), 8);
    assert_eq!(ds.dropped[0].id, "x8");
    assert_eq!(ds.clips[1][0].dim(), (20, 1, 3)); // CT layout transposed to time-major
    assert_eq!(ds.clips[1][0][[1, 0, 2]], 201.0);
    assert_eq!(ds.meta.iter().filter(|m| m.label == 1).count(), 4);
    // A duplicate id is an error naming the line.
    manifest.push_str("x0,sit,1,1,acc0.npy,g0.csv\n");
    std::fs::write(root.join("manifest.csv"), &manifest).unwrap();
    let err = format!("{:#}", Dataset::load(&decl, &[]).unwrap_err());
    assert!(err.contains("line 11") && err.contains("duplicate sample_id 'x0'"), "{err}");
}

#[test]
fn unknown_yaml_keys_name_the_file_and_key() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.yaml");
    std::fs::write(&path, MANIFEST_DECL.replace("main_metric", "main_metrc")).unwrap();
    let err = format!("{:#}", DatasetDecl::from_file(&path).unwrap_err());
    assert!(err.contains("bad.yaml") && err.contains("main_metrc"), "{err}");
    std::fs::write(&path, MANIFEST_DECL.replace("length: 50", "length: 50, sigma: 2")).unwrap();
    let err = format!("{:#}", DatasetDecl::from_file(&path).unwrap_err());
    assert!(err.contains("bad.yaml") && err.contains("sigma"), "{err}");
    std::fs::write(&path, MANIFEST_DECL.replace("layout: CT", "layout: CTJ")).unwrap();
    let err = format!("{:#}", DatasetDecl::from_file(&path).unwrap_err());
    assert!(err.contains("gyro") && err.contains("layout"), "{err}");
}

/// The shipped example manifest is generated on first use and reads as the
/// synthetic UTD-MHAD does: the same samples and labels, the accelerometer
/// (stored T x 3) and gyroscope (stored 3 x T) equal to the UTD set's six
/// inertial channels, the skeleton (stored T x 20 x 3) to its skeleton.
#[test]
fn the_example_manifest_is_the_synthetic_set_as_a_manifest_of_npy_arrays() {
    let dir = tempfile::tempdir().unwrap();
    let decl = cmkm::data::DatasetDecl::from_file(&common::example_declaration(dir.path(), "example-manifest")).unwrap();
    let ds = cmkm::data::Dataset::load(&decl, &[]).unwrap();
    ds.ensure_clean().unwrap();
    let utd = common::dataset();
    assert_eq!(ds.len(), utd.len());
    for (i, m) in ds.meta.iter().enumerate() {
        let u = utd.meta.iter().position(|x| x.id == m.id).unwrap();
        assert_eq!((m.label, m.subject), (utd.meta[u].label, utd.meta[u].subject), "{}", m.id);
        let (accel, gyro, skeleton) = (&ds.clips[0][i], &ds.clips[1][i], &ds.clips[2][i]);
        let (inertial, utd_skeleton) = (&utd.clips[0][u], &utd.clips[1][u]);
        assert_eq!(accel.dim(), (inertial.dim().0, 1, 3));
        for t in 0..accel.dim().0 {
            for c in 0..3 {
                assert_eq!(accel[[t, 0, c]], inertial[[t, 0, c]], "{} accel", m.id);
                assert_eq!(gyro[[t, 0, c]], inertial[[t, 0, c + 3]], "{} gyro", m.id);
            }
        }
        assert_eq!(skeleton.dim(), utd_skeleton.dim());
        assert!(skeleton.iter().zip(utd_skeleton.iter()).all(|(a, b)| a == b), "{} skeleton", m.id);
    }
    let split = decl.split("by_subject", &ds.meta).unwrap();
    assert!(split.train.iter().all(|&i| ds.meta[i].subject <= 4) && split.test.iter().all(|&i| ds.meta[i].subject >= 6));
}

/// A hand-written dataset in HAPT's layout: users 1-3, one experiment each,
/// 20 samples per file at 50 Hz; `labels.txt` labels samples 1-8 with
/// class 1 and 11-20 with class 2 (9 and 10 are a transition). Returns the
/// declaration's path.
fn write_hapt_fixture(dir: &std::path::Path, windows: &str) -> std::path::PathBuf {
    let raw = dir.join("RawData");
    std::fs::create_dir_all(&raw).unwrap();
    let mut labels = String::new();
    for user in 1..=3u32 {
        for sensor in ["acc", "gyro"] {
            let rows: String = (0..20).map(|i| format!("{} {} {}\n", i + 100 * user as usize, -(i as f64) * 0.5, user)).collect();
            std::fs::write(raw.join(format!("{sensor}_exp{user:02}_user{user:02}.txt")), rows).unwrap();
        }
        labels.push_str(&format!("{user} {user} 1 1 8\n{user} {user} 2 11 20\n"));
    }
    std::fs::write(raw.join("labels.txt"), labels).unwrap();
    let series = |name: &str, sensor: &str| {
        format!("  - {{name: {name}, kind: series, channels: 3, sample_rate: 50, layout: TC, standardize: channel, recording: {{files: 'RawData/{sensor}_exp{{session}}_user{{subject}}.txt'}}}}\n")
    };
    let yaml = format!(
        "name: hapt-fixture\nformat: recordings\nroot: .\nmodalities:\n{}{}labels:\n  intervals: {{file: RawData/labels.txt, columns: [session, subject, label, start, end], unit: samples, first_sample: 1}}\nwindows: {windows}\nclasses: [one, two]\nprotocols:\n  by_user:\n    train: {{subjects: [1]}}\n    val: {{subjects: [2]}}\n    test: {{subjects: [3]}}\nmain_metric: accuracy\n",
        series("accel", "acc"),
        series("gyro", "gyro")
    );
    let path = dir.join("hapt.yaml");
    std::fs::write(&path, yaml).unwrap();
    path
}

#[test]
fn hapt_layout_recordings_are_cut_into_labelled_windows_split_by_user() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_hapt_fixture(dir.path(), "{length: 4, stride: 4, unit: samples, label: majority, min_fraction: 0.75, unlabelled: pretrain}");
    let ds = Dataset::load(&DatasetDecl::from_file(&path).unwrap(), &[]).unwrap();
    ds.ensure_clean().unwrap();
    // Per user: samples 1-4 and 5-8 are class 1, 13-16 and 17-20 class 2;
    // 9-12 is half transition, half class 2: mixed at 0.75.
    assert_eq!(ds.len(), 12);
    let w = ds.windows.as_ref().unwrap();
    assert_eq!((w.recordings, w.windows, w.dropped.mixed_labels, w.dropped.gap), (3, 12, 3, 0));
    let first = ds.meta.iter().position(|m| m.id == "s1_ses1_w00001").unwrap();
    assert_eq!((ds.meta[first].label, ds.meta[first].subject, ds.meta[first].session), (0, 1, Some(1)));
    // Window 1 is samples 5-8 (rows 4..8): accel's first column is row + 100.
    assert_eq!(ds.clips[0][first].dim(), (4, 1, 3));
    assert_eq!(ds.clips[0][first][[0, 0, 0]], 104.0);
    let split = ds.decl.split("by_user", &ds.meta).unwrap();
    assert_eq!((split.train.len(), split.val.len(), split.test.len()), (4, 4, 4));
    assert!(split.test.iter().all(|&i| ds.meta[i].subject == 3));
    // With centre labels the transition window is unlabelled: kept for pre-training only.
    let path = write_hapt_fixture(dir.path(), "{length: 4, stride: 2, unit: samples, label: center, unlabelled: pretrain}");
    let ds = Dataset::load(&DatasetDecl::from_file(&path).unwrap(), &[]).unwrap();
    let w = ds.windows.as_ref().unwrap();
    assert_eq!(w.unlabelled_kept.values().sum::<usize>(), ds.unlabelled.len());
    assert_eq!(ds.unlabelled.len(), 3, "per user, window 3: samples 7-10, centred on sample 9");
    assert!(ds.meta.iter().all(|m| !ds.unlabelled.iter().any(|u| u.id == m.id)));
    let data = cmkm::training::TrainData::new(&ds, &["accel".into(), "gyro".into()], "by_user").unwrap();
    assert_eq!(data.pretrain_only.len(), 1, "only the training user's unlabelled window");
    assert_eq!(data.labels.len(), ds.len(), "unlabelled windows have no label entry");
    assert_eq!(data.pretraining().len(), data.split.train.len() + 1);
    assert_eq!(data.clips[0].len(), ds.len() + 1);
}

#[test]
fn changing_only_test_subject_data_changes_no_training_input() {
    let windows = "{length: 4, stride: 2, unit: samples, label: center, unlabelled: pretrain}";
    let load = |dir: &std::path::Path| {
        let ds = Dataset::load(&DatasetDecl::from_file(&dir.join("hapt.yaml")).unwrap(), &[]).unwrap();
        cmkm::training::TrainData::new(&ds, &["accel".into(), "gyro".into()], "by_user").unwrap()
    };
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    write_hapt_fixture(a.path(), windows);
    write_hapt_fixture(b.path(), windows);
    // User 3 is the test split: scale its accelerometer by 1000.
    let file = b.path().join("RawData/acc_exp03_user03.txt");
    let scaled: String = std::fs::read_to_string(&file)
        .unwrap()
        .lines()
        .map(|l| l.split(' ').map(|v| (v.parse::<f64>().unwrap() * 1000.0).to_string()).collect::<Vec<_>>().join(" ") + "\n")
        .collect();
    std::fs::write(&file, scaled).unwrap();
    let (da, db) = (load(a.path()), load(b.path()));
    assert_eq!(da.standardization, db.standardization);
    assert_eq!(da.standardization.len(), 2);
    assert_eq!(da.standardization[0].fitted_on, da.split.train.len());
    assert_eq!(da.split, db.split);
    for m in 0..2 {
        for &i in da.pretraining().iter().chain(&da.split.val) {
            assert_eq!(da.clips[m][i], db.clips[m][i], "sample {}", da.sample_ids[i]);
        }
    }
    assert!(da.split.test.iter().any(|&i| da.clips[0][i] != db.clips[0][i]), "the test data did change");
    // Training inputs are standardised: zero mean per channel on the training split.
    let mean: f64 = da.split.train.iter().map(|&i| da.clips[0][i].iter().step_by(3).map(|&v| v as f64).sum::<f64>()).sum::<f64>();
    assert!(mean.abs() < 1e-4, "{mean}");
}

#[test]
fn bad_recordings_are_errors_naming_the_file_and_the_problem() {
    let windows = "{length: 4, stride: 4, unit: samples, label: pure}";
    let inspect = |dir: &std::path::Path| {
        let out = cmkm().args(["data", "inspect"]).arg(dir.join("hapt.yaml")).output().unwrap();
        (out.status.code(), String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr))
    };
    let fresh = || {
        let d = tempfile::tempdir().unwrap();
        write_hapt_fixture(d.path(), windows);
        d
    };
    let (code, text) = inspect(fresh().path());
    assert_eq!(code, Some(0), "{text}");
    let cases: [(&str, &str, &str, &str); 4] = [
        ("RawData/acc_exp02_user02.txt", "202 -1 2\n", "202 nan 2\n", "non-finite value(s); the first is NaN at row 3"),
        ("RawData/gyro_exp01_user01.txt", "101 -0.5 1\n", "101 -0.5\n", "line 2: 2 columns, expected 3"),
        ("RawData/labels.txt", "2 2 1 1 8\n", "2 2 1 1 12\n", "overlaps"),
        ("RawData/labels.txt", "3 3 2 11 20\n", "3 3 5 11 20\n", "outside the 2 declared classes"),
    ];
    for (file, from, to, want) in cases {
        let d = fresh();
        let path = d.path().join(file);
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.contains(from), "{file}: {from:?}");
        std::fs::write(&path, text.replacen(from, to, 1)).unwrap();
        let (code, text) = inspect(d.path());
        assert_ne!(code, Some(0), "{file}: {text}");
        assert!(text.contains(want), "{file}: {want}: {text}");
        let stem = std::path::Path::new(file).file_name().unwrap().to_string_lossy().to_string();
        assert!(text.contains(&stem), "{file} named: {text}");
    }
    // A label file entry for a recording that has no files is an error too.
    let d = fresh();
    let labels = d.path().join("RawData/labels.txt");
    let text = std::fs::read_to_string(&labels).unwrap() + "9 9 1 1 4\n";
    std::fs::write(&labels, text).unwrap();
    let (code, text) = inspect(d.path());
    assert_ne!(code, Some(0));
    assert!(text.contains("labels.txt:7") && text.contains("s9_ses9"), "{text}");
}

/// CZU-MHAD fixtures written by SciPy's MAT writer (tests/fixtures/czu-mhad,
/// make_fixtures.py): cmkm's reader gives what the fork's readers give
/// (their arrays saved beside them), and the fork's split by subject.
#[test]
fn czu_mhad_reads_as_the_fork_reads_it() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/czu-mhad");
    let ds = Dataset::load(&DatasetDecl::builtin(Format::CzuMhad, &root).unwrap(), &[]).unwrap();
    ds.ensure_clean().unwrap();
    assert_eq!(ds.len(), 10);
    let close = |got: f32, want: f64, what: &str| assert!((got as f64 - want).abs() <= 1e-5 * want.abs().max(1.0), "{what}: {got} vs the fork's {want}");
    for (i, meta) in ds.meta.iter().enumerate() {
        let expected = |m: &str| cmkm::data::formats::npy::read_npy(&root.join(format!("expected/{}_{m}.npy", meta.id))).unwrap();
        let inertial = expected("inertial");
        let clip = &ds.clips[0][i];
        assert_eq!((clip.dim().0, clip.dim().2), (inertial.shape()[0], 60), "{}", meta.id);
        for ((t, _, c), &v) in clip.indexed_iter() {
            close(v, inertial[[t, c]], &format!("{} inertial ({t}, {c})", meta.id));
        }
        let skeleton = expected("skeleton"); // 25 x 3 x T
        let clip = &ds.clips[1][i];
        assert_eq!(clip.dim(), (skeleton.shape()[2], 25, 3), "{}", meta.id);
        for ((t, j, c), &v) in clip.indexed_iter() {
            close(v, skeleton[[j, c, t]], &format!("{} skeleton ({t}, {j}, {c})", meta.id));
        }
    }
    let first = ds.meta.iter().find(|m| m.id == "x4_a2_t1").unwrap();
    assert_eq!((first.subject, first.label, first.trial), (4, 1, Some(1)));
    let split = ds.decl.split("cross_subject", &ds.meta).unwrap();
    let subjects = |idx: &[usize]| idx.iter().map(|&i| ds.meta[i].subject).collect::<std::collections::BTreeSet<_>>();
    assert_eq!(subjects(&split.train), [1, 2].into());
    assert_eq!(subjects(&split.val), [3].into());
    assert_eq!(subjects(&split.test), [4, 5].into());
}

#[test]
fn a_czu_mhad_file_without_its_cell_or_with_a_bad_sensor_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let fixtures = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/czu-mhad");
    for sub in ["Inertial", "Skeleton"] {
        std::fs::create_dir_all(dir.path().join(sub)).unwrap();
        for f in ["x1_a1_t1.mat", "x3_a1_t1.mat", "x4_a1_t1.mat"] {
            std::fs::copy(fixtures.join(sub).join(f), dir.path().join(sub).join(f)).unwrap();
        }
    }
    // A numeric `sensor` instead of a cell; a skeleton with 99 columns.
    write_mat_double(&dir.path().join("Inertial/x3_a1_t1.mat"), "sensor", &[30, 7], &[0.5; 210], false).unwrap();
    write_mat_double(&dir.path().join("Skeleton/x4_a1_t1.mat"), "skeleton", &[20, 99], &[0.5; 1980], true).unwrap();
    let ds = Dataset::load(&DatasetDecl::builtin(Format::CzuMhad, dir.path()).unwrap(), &[]).unwrap();
    assert_eq!(ds.len(), 1);
    let reason = |f: &str| ds.failed.iter().find(|x| x.file.ends_with(f)).map(|x| x.reason.clone()).unwrap_or_default();
    assert!(reason("Inertial/x3_a1_t1.mat").contains("not a cell array"), "{:?}", ds.failed);
    assert!(reason("Skeleton/x4_a1_t1.mat").contains("expected T x 100"), "{:?}", ds.failed);
    assert!(ds.ensure_clean().is_err());
}

/// README's example declaration of recordings is one cmkm accepts.
#[test]
fn the_readme_recordings_example_is_a_valid_declaration() {
    let readme = std::fs::read_to_string(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md")).unwrap();
    let start = readme.find("```yaml\nname: my-hapt").expect("README shows the HAPT example") + "```yaml\n".len();
    let yaml = &readme[start..start + readme[start..].find("```").unwrap()];
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("my-hapt.yaml");
    std::fs::write(&path, yaml).unwrap();
    let decl = DatasetDecl::from_file(&path).unwrap();
    assert_eq!((decl.format, decl.modalities.len(), decl.classes.len()), (Format::Recordings, 2, 12));
}
