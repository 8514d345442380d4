//! Step times of a method's objective on one fixed batch (`cmkm bench`):
//! the training loop's step phase by phase, and its validation pass, with
//! none of its schedule.

use super::Objective;
use burn::module::Module;
use burn::prelude::Device;
use std::time::Instant;

/// Milliseconds of each timed step and validation pass.
#[derive(Debug, Clone, Default)]
pub struct StepTimes {
    /// Whole steps: forward, backward and Adam update.
    pub total: Vec<f64>,
    /// Augmentation, encoders and loss.
    pub forward: Vec<f64>,
    pub backward: Vec<f64>,
    pub adam: Vec<f64>,
    /// Validation passes of the evaluation-mode model over the validation split.
    pub validation: Vec<f64>,
}

/// Times `steps` optimisation steps of `model` on `batch` after one warm-up
/// step, then as many validation passes after one warm-up pass. The CPU
/// backend is eager, so each phase is finished when it returns; on a GPU
/// each phase is waited for before its clock stops.
pub fn time_steps<O: Objective>(objective: &O, mut model: O::Model, batch: &[usize], steps: usize, device: &Device) -> StepTimes {
    let mut optimizer = super::adam::Adam::new(1e-8).init(None);
    let mut t = StepTimes::default();
    let ms = |since: Instant| 1e3 * since.elapsed().as_secs_f64();
    for i in 0..=steps {
        let start = Instant::now();
        let step = objective.step(&model, batch, i as u64);
        let _ = crate::device::sync(device);
        let forward = ms(start);
        let mark = Instant::now();
        let grads = step.gradients(&model);
        let _ = crate::device::sync(device);
        let backward = ms(mark);
        let mark = Instant::now();
        model = optimizer.step(1e-3, model, grads);
        let _ = crate::device::sync(device);
        let adam = ms(mark);
        if i > 0 {
            t.total.push(ms(start));
            t.forward.push(forward);
            t.backward.push(backward);
            t.adam.push(adam);
        }
    }
    let valid = model.valid();
    for i in 0..=steps {
        let start = Instant::now();
        let _ = objective.validate(&valid);
        if i > 0 {
            t.validation.push(ms(start));
        }
    }
    t
}
