//! Training-mode batch norm over the last axis of a `(N, C)` view, with an
//! optional ReLU folded in: one pass for the statistics, one for the output,
//! two for the gradients, where the composed tensor operations take a dozen.
//!
//! Rows are reduced in fixed blocks whose partial sums are added in block
//! order, so results do not depend on the thread count.

use super::uninit;
use rayon::prelude::*;

/// Rows per reduction block.
const BLOCK: usize = 1024;

/// Per-channel sums of `f(row)` over all rows, in f64.
fn column_sums(rows: usize, channels: usize, f: impl Fn(usize, &mut [f64]) + Sync) -> Vec<f64> {
    let blocks: Vec<Vec<f64>> = (0..rows.div_ceil(BLOCK))
        .into_par_iter()
        .map(|b| {
            let mut acc = vec![0.0; channels];
            (b * BLOCK..((b + 1) * BLOCK).min(rows)).for_each(|r| f(r, &mut acc));
            acc
        })
        .collect();
    blocks.into_iter().fold(vec![0.0; channels], |mut total, block| {
        total.iter_mut().zip(block).for_each(|(t, b)| *t += b);
        total
    })
}

/// Batch mean and biased variance of every channel (column) of `x`.
pub fn moments(x: &[f32], channels: usize) -> (Vec<f32>, Vec<f32>) {
    let rows = x.len() / channels;
    let sums = column_sums(rows, channels, |r, acc| acc.iter_mut().zip(&x[r * channels..(r + 1) * channels]).for_each(|(a, v)| *a += *v as f64));
    let mean: Vec<f64> = sums.iter().map(|s| s / rows as f64).collect();
    let squares = column_sums(rows, channels, |r, acc| {
        for ((a, v), m) in acc.iter_mut().zip(&x[r * channels..(r + 1) * channels]).zip(&mean) {
            let d = *v as f64 - m;
            *a += d * d;
        }
    });
    (mean.iter().map(|&m| m as f32).collect(), squares.iter().map(|s| (s / rows as f64) as f32).collect())
}

/// Normalisation constants of one channel: `y = x * scale + shift`.
fn affine(mean: &[f32], var: &[f32], gamma: &[f32], beta: &[f32], epsilon: f64) -> (Vec<f32>, Vec<f32>) {
    let scale: Vec<f32> = var.iter().zip(gamma).map(|(v, g)| g / (*v as f64 + epsilon).sqrt() as f32).collect();
    let shift = beta.iter().zip(mean).zip(&scale).map(|((b, m), s)| b - m * s).collect();
    (scale, shift)
}

/// `relu?(gamma * (x - mean) / sqrt(var + epsilon) + beta)`.
pub fn forward(x: &[f32], stats: (&[f32], &[f32]), gamma: &[f32], beta: &[f32], epsilon: f64, relu: bool) -> Vec<f32> {
    let channels = gamma.len();
    let (scale, shift) = affine(stats.0, stats.1, gamma, beta, epsilon);
    let mut y = uninit(x.len());
    y.par_chunks_mut(BLOCK * channels).zip(x.par_chunks(BLOCK * channels)).for_each(|(y, x)| {
        for (y, x) in y.chunks_exact_mut(channels).zip(x.chunks_exact(channels)) {
            for (((y, x), s), t) in y.iter_mut().zip(x).zip(&scale).zip(&shift) {
                let v = x * s + t;
                *y = if relu { v.max(0.0) } else { v };
            }
        }
    });
    y
}

/// Gradients of [`forward`] with respect to `x`, `gamma` and `beta`, the
/// batch statistics being functions of `x`. `y` is the forward output (its
/// zeros mark where the ReLU cut the gradient).
pub fn backward(x: &[f32], y: &[f32], dy: &[f32], stats: (&[f32], &[f32]), gamma: &[f32], epsilon: f64, relu: bool) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
    let channels = gamma.len();
    let rows = x.len() / channels;
    let inv_std: Vec<f32> = stats.1.iter().map(|v| (1.0 / (*v as f64 + epsilon).sqrt()) as f32).collect();
    let grad = |i: usize| if relu && y[i] <= 0.0 { 0.0 } else { dy[i] };
    let sums = column_sums(rows, 2 * channels, |r, acc| {
        let (sum_g, sum_gx) = acc.split_at_mut(channels);
        for c in 0..channels {
            let i = r * channels + c;
            let g = grad(i) as f64;
            sum_g[c] += g;
            sum_gx[c] += g * ((x[i] - stats.0[c]) * inv_std[c]) as f64;
        }
    });
    let (sum_g, sum_gx) = sums.split_at(channels);
    let d_beta: Vec<f32> = sum_g.iter().map(|&s| s as f32).collect();
    let d_gamma: Vec<f32> = sum_gx.iter().map(|&s| s as f32).collect();
    let mean_g: Vec<f32> = sum_g.iter().map(|s| (s / rows as f64) as f32).collect();
    let mean_gx: Vec<f32> = sum_gx.iter().map(|s| (s / rows as f64) as f32).collect();
    let mut dx = uninit(x.len());
    let span = BLOCK * channels;
    dx.par_chunks_mut(span).enumerate().for_each(|(b, dx)| {
        for (r, dx) in dx.chunks_exact_mut(channels).enumerate() {
            let at = b * span + r * channels;
            for (c, d) in dx.iter_mut().enumerate() {
                let x_hat = (x[at + c] - stats.0[c]) * inv_std[c];
                *d = gamma[c] * inv_std[c] * (grad(at + c) - mean_g[c] - x_hat * mean_gx[c]);
            }
        }
    });
    (dx, d_gamma, d_beta)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values(n: usize, seed: u32) -> Vec<f32> {
        (0..n).map(|i| (((i as u32).wrapping_mul(2654435761).wrapping_add(seed) >> 8) % 1000) as f32 / 250.0 - 1.5).collect()
    }

    fn loss(x: &[f32], gamma: &[f32], beta: &[f32], dy: &[f32], relu: bool) -> f64 {
        let (m, v) = moments(x, gamma.len());
        forward(x, (&m, &v), gamma, beta, 1e-5, relu).iter().zip(dy).map(|(y, g)| *y as f64 * *g as f64).sum()
    }

    #[test]
    fn moments_are_the_column_mean_and_biased_variance() {
        let x = [1.0, 10.0, 3.0, 10.0, 5.0, 40.0];
        let (m, v) = moments(&x, 2);
        assert_eq!(m, vec![3.0, 20.0]);
        assert_eq!(v, vec![8.0 / 3.0, 200.0]);
    }

    /// Central differences in f32 on a 2500 x 3 batch (several blocks).
    #[test]
    fn backward_matches_finite_differences_with_and_without_relu() {
        let channels = 3;
        let x = values(2500 * channels, 7);
        let (gamma, beta) = (vec![0.5, 1.5, -1.0], vec![0.1, -0.2, 0.3]);
        let dy = values(x.len(), 9);
        for relu in [false, true] {
            let (m, v) = moments(&x, channels);
            let y = forward(&x, (&m, &v), &gamma, &beta, 1e-5, relu);
            let (dx, dg, db) = backward(&x, &y, &dy, (&m, &v), &gamma, 1e-5, relu);
            let h = 1e-2;
            let diff = |f: &dyn Fn(f32) -> f64| ((f(h) - f(-h)) / (2.0 * h as f64)) as f32;
            for i in [0, 1, 4000, x.len() - 1] {
                let shifted = |d: f32| {
                    let mut x = x.clone();
                    x[i] += d;
                    loss(&x, &gamma, &beta, &dy, relu)
                };
                let numeric = diff(&shifted);
                assert!((dx[i] - numeric).abs() < 2e-2 * (1.0 + numeric.abs()), "dx[{i}] {} vs {numeric}", dx[i]);
            }
            for c in 0..channels {
                let g = diff(&|d| {
                    let mut gamma = gamma.clone();
                    gamma[c] += d;
                    loss(&x, &gamma, &beta, &dy, relu)
                });
                let b = diff(&|d| {
                    let mut beta = beta.clone();
                    beta[c] += d;
                    loss(&x, &gamma, &beta, &dy, relu)
                });
                assert!((dg[c] - g).abs() < 1e-2 * (1.0 + g.abs()), "dgamma {} vs {g}", dg[c]);
                assert!((db[c] - b).abs() < 1e-2 * (1.0 + b.abs()), "dbeta {} vs {b}", db[c]);
            }
        }
    }
}
