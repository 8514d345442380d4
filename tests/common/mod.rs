//! Fixture builders shared by the integration tests.
#![allow(dead_code)]

use cmkm::data::formats::{mat::write_mat_double, npy::write_npy_f32};
use std::path::{Path, PathBuf};

/// The `cmkm` binary built for these tests.
pub fn cmkm() -> std::process::Command {
    std::process::Command::new(env!("CARGO_BIN_EXE_cmkm"))
}

/// Path of a shipped declaration.
pub fn declaration(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("experiments/datasets").join(name)
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
