//! The synthetic motion as continuous recordings in HAPT's layout (Reyes-Ortiz
//! et al., "Smartphone-Based Recognition of Human Activities and Postural
//! Transitions", 2016): per experiment, the trials of one subject played one
//! after another with unlabelled transitions between them, written as
//! `RawData/acc_expXX_userYY.txt` and `RawData/gyro_expXX_userYY.txt`
//! (three white-space separated columns at 50 Hz) and one
//! `RawData/labels.txt` of `experiment user activity start end` rows,
//! sample numbers counted from 1, both ends included.

use crate::data::synth::{motion, write_new, MISSING_TRIALS, TRIALS};
use anyhow::Result;
use rayon::prelude::*;
use std::fmt::Write;
use std::path::Path;

/// The interval file, relative to the set's root.
pub const LABELS: &str = "RawData/labels.txt";
/// Samples of unlabelled transition before each trial (1.5 s at 50 Hz).
pub const TRANSITION: usize = 75;
/// Experiments per subject; experiment `k` holds trials `2k - 1` and `2k`.
pub const EXPERIMENTS_PER_SUBJECT: usize = TRIALS / 2;

/// One experiment: its rows and its labelled intervals.
struct Experiment {
    number: usize,
    subject: usize,
    rows: Vec<[f64; 6]>,
    /// (action, first sample, last sample), 1-based.
    intervals: Vec<(usize, usize, usize)>,
}

/// Writes every experiment under `root` (which holds `RawData/`).
pub fn write(root: &Path, seed: u64) -> Result<()> {
    let plan: Vec<(usize, usize)> = (1..=motion::NUM_SUBJECTS).flat_map(|s| (1..=EXPERIMENTS_PER_SUBJECT).map(move |k| (s, k))).collect();
    let experiments: Vec<Experiment> = plan.par_iter().map(|&(s, k)| experiment(seed, s, k)).collect();
    let mut labels = String::new();
    for e in &experiments {
        let name = |sensor: &str| root.join(format!("RawData/{sensor}_exp{:02}_user{:02}.txt", e.number, e.subject));
        write_new(&name("acc"), columns(&e.rows, 0).as_bytes())?;
        write_new(&name("gyro"), columns(&e.rows, 3).as_bytes())?;
        for (a, first, last) in &e.intervals {
            let _ = writeln!(labels, "{} {} {a} {first} {last}", e.number, e.subject);
        }
    }
    write_new(&root.join(LABELS), labels.as_bytes())
}

/// Subject `s`'s experiment `k`: each action's trials `2k - 1` and `2k` in
/// turn, each after a transition that blends the previous trial's last
/// reading into the next one's first.
fn experiment(seed: u64, s: usize, k: usize) -> Experiment {
    let mut rows: Vec<[f64; 6]> = vec![];
    let mut intervals = vec![];
    for a in 1..=motion::NUM_ACTIONS {
        for t in [2 * k - 1, 2 * k] {
            if MISSING_TRIALS.contains(&(a, s, t)) {
                continue;
            }
            let trial = motion::record(seed, a, s, t).inertial;
            let from = rows.last().copied().unwrap_or(trial[0]);
            for i in 0..TRANSITION {
                let w = (i + 1) as f64 / (TRANSITION + 1) as f64;
                rows.push(std::array::from_fn(|c| from[c] * (1.0 - w) + trial[0][c] * w));
            }
            intervals.push((a, rows.len() + 1, rows.len() + trial.len()));
            rows.extend(trial);
        }
    }
    Experiment { number: (s - 1) * EXPERIMENTS_PER_SUBJECT + k, subject: s, rows, intervals }
}

/// Three columns from `c0`, space separated, one row per line.
fn columns(rows: &[[f64; 6]], c0: usize) -> String {
    let mut out = String::with_capacity(rows.len() * 40);
    for r in rows {
        let _ = writeln!(out, "{:.8} {:.8} {:.8}", r[c0], r[c0 + 1], r[c0 + 2]);
    }
    out
}
