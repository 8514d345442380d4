//! TEMPORARY STUB (replaced by the kinematic generator).
pub const GENERATOR_VERSION: u32 = 0;
pub const NUM_ACTIONS: usize = 27;
pub const NUM_SUBJECTS: usize = 8;
pub struct Recording { pub inertial: Vec<[f64; 6]>, pub skeleton: Vec<[[f64; 3]; 20]> }
pub fn record(_seed: u64, action: usize, subject: usize, trial: usize) -> Recording {
    let f = action as f64 + subject as f64 * 0.1 + trial as f64 * 0.01;
    Recording {
        inertial: (0..150).map(|i| { let x = (i as f64 * 0.1 * f).sin(); [x, x, 1.0, x, x, x] }).collect(),
        skeleton: (0..90).map(|i| { let mut fr = [[0.0; 3]; 20]; for (j, p) in fr.iter_mut().enumerate() { *p = [j as f64 * 0.1, (i as f64 * 0.05 * f).sin() + j as f64 * 0.05, 3.0]; } fr }).collect(),
    }
}
