//! One Adam update of a parameter in one pass: the moments and the
//! parameter rewritten in place.
//!
//! burn's `Adam` composes the update from eleven tensor operations, each
//! a pass over the whole parameter into a new allocation, on one thread:
//! 15 ms of a 272 ms CMC step. Here each value takes the very operations
//! burn's take, in the same order and in `f32` (no fused multiply-add), so
//! the updated parameters and moments are burn's bit for bit; the values
//! are independent of each other, so the parallel blocks change nothing.

use rayon::prelude::*;

/// The scalars of one step, each as burn's `Adam` rounds it to `f32`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AdamStep {
    pub beta_1: f32,
    pub beta_2: f32,
    /// `sqrt(1 - beta_2^t) / (1 - beta_1^t)` at step `t`.
    pub combined_factor: f32,
    /// `epsilon * sqrt(1 - beta_2^t)`.
    pub epsilon: f32,
    /// The learning rate.
    pub lr: f32,
}

impl AdamStep {
    /// Step `time` (1 for the first) with the learning rate `lr`, the
    /// scalars computed as burn's `AdaptiveMomentum::transform` computes them.
    pub fn new(beta_1: f32, beta_2: f32, epsilon: f32, time: usize, lr: f64) -> Self {
        let t = time as i32;
        let bias_correction2_sqrt = (1.0 - beta_2.powi(t)).sqrt();
        let combined_factor = bias_correction2_sqrt / (1.0 - beta_1.powi(t));
        AdamStep { beta_1, beta_2, combined_factor, epsilon: epsilon * bias_correction2_sqrt, lr: lr as f32 }
    }
}

/// Values per parallel block: fixed, so the work never depends on the
/// thread count (nor could the results: each value is on its own).
const BLOCK: usize = 16_384;

/// Updates `param`, `moment_1` and `moment_2` in place from the gradient
/// `grad` (all the same length). `first`: the parameter's first step,
/// whose moments start from the gradient alone (their inputs are then
/// ignored), as burn starts them.
pub fn update(param: &mut [f32], grad: &[f32], moment_1: &mut [f32], moment_2: &mut [f32], s: &AdamStep, first: bool) {
    let n = param.len();
    assert!(grad.len() == n && moment_1.len() == n && moment_2.len() == n, "Adam's parameter, gradient and moments differ in length");
    param
        .par_chunks_mut(BLOCK)
        .zip(grad.par_chunks(BLOCK))
        .zip(moment_1.par_chunks_mut(BLOCK))
        .zip(moment_2.par_chunks_mut(BLOCK))
        .for_each(|(((p, g), m1), m2)| update_block(p, g, m1, m2, s, first));
}

fn update_block(param: &mut [f32], grad: &[f32], moment_1: &mut [f32], moment_2: &mut [f32], s: &AdamStep, first: bool) {
    let (f1, f2) = (1.0 - s.beta_1, 1.0 - s.beta_2);
    for (((p, &g), m1), m2) in param.iter_mut().zip(grad).zip(moment_1.iter_mut()).zip(moment_2.iter_mut()) {
        // burn: `m1 * beta_1 + g * (1 - beta_1)`, or `g * (1 - beta_1)` at first.
        *m1 = if first { g * f1 } else { *m1 * s.beta_1 + g * f1 };
        // burn: `m2 * beta_2 + g^2 * (1 - beta_2)`, `square` being `g * g`.
        *m2 = if first { (g * g) * f2 } else { *m2 * s.beta_2 + (g * g) * f2 };
        let step = (*m1 * s.combined_factor) / (m2.sqrt() + s.epsilon);
        *p -= step * s.lr;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// burn's composition, operation by operation, one pass each.
    fn composed(p: &[f32], g: &[f32], m1: &[f32], m2: &[f32], s: &AdamStep, first: bool) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
        let map = |a: &[f32], f: &dyn Fn(f32) -> f32| a.iter().map(|&v| f(v)).collect::<Vec<f32>>();
        let zip = |a: &[f32], b: &[f32], f: &dyn Fn(f32, f32) -> f32| a.iter().zip(b).map(|(&x, &y)| f(x, y)).collect::<Vec<f32>>();
        let g1 = map(g, &|v| v * (1.0 - s.beta_1));
        let g2 = map(&map(g, &|v| v * v), &|v| v * (1.0 - s.beta_2));
        let (m1, m2) = match first {
            true => (g1, g2),
            false => (zip(&map(m1, &|v| v * s.beta_1), &g1, &|a, b| a + b), zip(&map(m2, &|v| v * s.beta_2), &g2, &|a, b| a + b)),
        };
        let denominator = map(&map(&m2, &|v| v.sqrt()), &|v| v + s.epsilon);
        let step = zip(&map(&m1, &|v| v * s.combined_factor), &denominator, &|a, b| a / b);
        let p = zip(p, &map(&step, &|v| v * s.lr), &|a, b| a - b);
        (p, m1, m2)
    }

    #[test]
    fn each_value_is_the_composed_operations_value() {
        let n = 2 * BLOCK + 77;
        let wave = |k: f32| (0..n).map(move |i| ((i as f32 * k).sin() * 3.0).powi(3) * 1e-2).collect::<Vec<f32>>();
        let (p, g, m1) = (wave(0.37), wave(1.91), wave(0.73));
        let m2: Vec<f32> = wave(2.3).iter().map(|v| v * v).collect();
        for (time, first) in [(1, true), (2, false), (37, false)] {
            let s = AdamStep::new(0.9, 0.999, 1e-8, time, 1e-3);
            let (mut q, mut n1, mut n2) = (p.clone(), m1.clone(), m2.clone());
            update(&mut q, &g, &mut n1, &mut n2, &s, first);
            let (ep, e1, e2) = composed(&p, &g, &m1, &m2, &s, first);
            let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<u32>>();
            assert_eq!((bits(&q), bits(&n1), bits(&n2)), (bits(&ep), bits(&e1), bits(&e2)), "step {time}");
            assert_ne!(bits(&q), bits(&p), "the parameters moved");
        }
    }
}
