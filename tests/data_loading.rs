//! Dataset loading on generated fixtures: the UTD-MHAD, MMAct and manifest
//! formats, and every kind of broken input the loaders must name.

mod common;

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
    let decl = cmkm::data::DatasetDecl::from_file(&common::example_manifest_declaration(dir.path())).unwrap();
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
