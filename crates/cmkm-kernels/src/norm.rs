//! Training-mode batch norm over the last axis of a `(N, C)` view, with an
//! optional ReLU folded in: one pass for the statistics, one for the output,
//! two for the gradients, where the composed tensor operations take a dozen.
//!
//! Rows are reduced in fixed blocks whose partial sums are added in block
//! order, so results do not depend on the thread count.

use crate::written;
use rayon::prelude::*;

/// Rows per reduction block.
const BLOCK: usize = 1024;

/// Rows per f32 partial sum: short enough that f32 loses nothing that
/// matters, long enough that the inner loops stay plain vector adds.
const RUN: usize = 16;

/// Per-column sums over all rows, in f64: `f` adds a run of at most
/// [`RUN`] rows (given as a row range) into a zeroed f32 accumulator of
/// `width` columns; runs are added into their block's f64 sums, blocks in
/// block order.
pub(super) fn column_sums(rows: usize, width: usize, f: impl Fn(std::ops::Range<usize>, &mut [f32]) + Sync) -> Vec<f64> {
    let blocks: Vec<Vec<f64>> = (0..rows.div_ceil(BLOCK))
        .into_par_iter()
        .map(|b| {
            let (mut acc, mut part) = (vec![0.0; width], vec![0.0; width]);
            let end = ((b + 1) * BLOCK).min(rows);
            for start in (b * BLOCK..end).step_by(RUN) {
                part.fill(0.0);
                f(start..(start + RUN).min(end), &mut part);
                acc.iter_mut().zip(&part).for_each(|(a, p)| *a += *p as f64);
            }
            acc
        })
        .collect();
    blocks.into_iter().fold(vec![0.0; width], |mut total, block| {
        total.iter_mut().zip(block).for_each(|(t, b)| *t += b);
        total
    })
}

/// Rows per run of [`moments`]: enough to make the f64 merge of each run
/// cheap, few enough to stay in L1 for the second sum.
const MOMENT_RUN: usize = 64;

/// Count, mean and sum of squared deviations of each column of some rows,
/// in f64, merged run by run (Chan et al.'s pairwise update).
struct Spread {
    n: f64,
    mean: Vec<f64>,
    m2: Vec<f64>,
}

impl Spread {
    fn new(width: usize) -> Self {
        Spread { n: 0.0, mean: vec![0.0; width], m2: vec![0.0; width] }
    }

    /// Adds `n` more rows whose columns have these means and squared
    /// deviations.
    fn merge(&mut self, n: f64, mean: impl Iterator<Item = f64>, m2: impl Iterator<Item = f64>) {
        let total = self.n + n;
        for (((a_mean, a_m2), b_mean), b_m2) in self.mean.iter_mut().zip(self.m2.iter_mut()).zip(mean).zip(m2) {
            let delta = b_mean - *a_mean;
            *a_mean += delta * n / total;
            *a_m2 += b_m2 + delta * delta * self.n * n / total;
        }
        self.n = total;
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn block_spread_avx2(block: &[f32], channels: usize) -> Spread {
    block_spread(block, channels)
}

/// The [`Spread`] of a block of rows, run by run.
#[inline(always)]
fn block_spread(block: &[f32], channels: usize) -> Spread {
    let mut spread = Spread::new(channels);
    let (mut mean, mut m2) = (vec![0.0f32; channels], vec![0.0f32; channels]);
    for run in block.chunks(MOMENT_RUN * channels) {
        let n = run.len() / channels;
        // Deviations from the run's first row: exact for nearby values, so
        // a large common offset does not round the run's mean.
        let first = &run[..channels];
        mean.fill(0.0);
        for row in run.chunks_exact(channels) {
            mean.iter_mut().zip(row).zip(first).for_each(|((m, v), k)| *m += v - k);
        }
        mean.iter_mut().for_each(|m| *m /= n as f32);
        m2.fill(0.0);
        for row in run.chunks_exact(channels) {
            m2.iter_mut().zip(row).zip(first).zip(&mean).for_each(|(((q, v), k), m)| *q += (v - k - m) * (v - k - m));
        }
        spread.merge(n as f64, mean.iter().zip(first).map(|(&m, &k)| k as f64 + m as f64), m2.iter().map(|&q| q as f64));
    }
    spread
}

/// Batch mean and biased variance of every channel (column) of `x`, reading
/// it once: the deviations of each run of 64 rows from its first row are
/// summed, then their squared deviations from their mean while the run is
/// in L1, and the runs merged in f64. As exact as two passes over the whole
/// activation, which read every normalised tensor twice (in a one-thread
/// CMC step the moments took 13.4 ms that way, 11.3 ms this way). Blocks
/// of rows in parallel, merged in block order.
pub fn moments(x: &[f32], channels: usize) -> (Vec<f32>, Vec<f32>) {
    let rows = x.len() / channels;
    let blocks: Vec<Spread> = (0..rows.div_ceil(BLOCK))
        .into_par_iter()
        .map(|b| {
            let block = &x[b * BLOCK * channels..((b + 1) * BLOCK).min(rows) * channels];
            #[cfg(target_arch = "x86_64")]
            if crate::isa::avx2() {
                // SAFETY: `isa::avx2` is true only on a CPU with AVX2.
                return unsafe { block_spread_avx2(block, channels) };
            }
            block_spread(block, channels)
        })
        .collect();
    let total = blocks.into_iter().fold(Spread::new(channels), |mut total, b| {
        total.merge(b.n, b.mean.into_iter(), b.m2.into_iter());
        total
    });
    let n = total.n;
    (total.mean.iter().map(|&m| if n > 0.0 { m as f32 } else { f32::NAN }).collect(), total.m2.iter().map(|&q| (q / n) as f32).collect())
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
    let floor = if relu { 0.0 } else { f32::NEG_INFINITY };
    let span = BLOCK * channels;
    // SAFETY: each block's rows are whole (x holds whole rows) and every
    // value of every row is written.
    unsafe {
        written(x.len(), span, |block, y| {
            let x = &x[block * span..][..y.len()];
            crate::isa::vectorised(
                #[inline(always)]
                || {
                    for (y, x) in y.chunks_exact_mut(channels).zip(x.chunks_exact(channels)) {
                        for (((y, x), s), t) in y.iter_mut().zip(x).zip(&scale).zip(&shift) {
                            y.write((x * s + t).max(floor));
                        }
                    }
                },
            )
        })
    }
}

/// Gradients of [`forward`] with respect to `x`, `gamma` and `beta`, the
/// batch statistics being functions of `x`. Where the ReLU cut the output
/// is recomputed from `x` exactly as [`forward`] computed it, so the output
/// itself is not read again: these passes are bound by memory traffic.
#[allow(clippy::too_many_arguments)]
pub fn backward(x: &[f32], dy: &[f32], stats: (&[f32], &[f32]), gamma: &[f32], beta: &[f32], epsilon: f64, relu: bool) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
    match relu {
        true => backward_cut::<true>(x, dy, stats, gamma, beta, epsilon),
        false => backward_cut::<false>(x, dy, stats, gamma, beta, epsilon),
    }
}

/// [`backward`], compiled apart with and without the ReLU so neither
/// channel loop carries the other's work.
fn backward_cut<const RELU: bool>(x: &[f32], dy: &[f32], stats: (&[f32], &[f32]), gamma: &[f32], beta: &[f32], epsilon: f64) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
    let channels = gamma.len();
    let rows = x.len() / channels;
    let mean = stats.0;
    let inv_std: Vec<f32> = stats.1.iter().map(|v| (1.0 / (*v as f64 + epsilon).sqrt()) as f32).collect();
    let (scale, shift) = affine(stats.0, stats.1, gamma, beta, epsilon);
    // The gradient reaching the normalisation: dy, cut where the ReLU gave
    // 0 (the forward pass's `max(x * scale + shift, 0)` was not positive).
    let cut = |x: f32, scale: f32, shift: f32, g: f32| if RELU && !(x * scale + shift > 0.0) { 0.0 } else { g };
    let sums = column_sums(rows, 2 * channels, |range, part| {
        let (sum_g, sum_gx) = part.split_at_mut(channels);
        let (mean, inv_std, scale, shift) = (&mean[..channels], &inv_std[..channels], &scale[..channels], &shift[..channels]);
        for row in range {
            let at = row * channels..(row + 1) * channels;
            // Zipped, not indexed, so the channel loop vectorises.
            let lanes = sum_g.iter_mut().zip(sum_gx.iter_mut()).zip(&x[at.clone()]).zip(&dy[at]).zip(mean).zip(inv_std).zip(scale).zip(shift);
            for (((((((sum_g, sum_gx), &x), &dy), &mean), &inv_std), &scale), &shift) in lanes {
                let g = cut(x, scale, shift, dy);
                *sum_g += g;
                *sum_gx += g * (x - mean) * inv_std;
            }
        }
    });
    let (sum_g, sum_gx) = sums.split_at(channels);
    let d_beta: Vec<f32> = sum_g.iter().map(|&s| s as f32).collect();
    let d_gamma: Vec<f32> = sum_gx.iter().map(|&s| s as f32).collect();
    let mean_g: Vec<f32> = sum_g.iter().map(|s| (s / rows as f64) as f32).collect();
    let mean_gx: Vec<f32> = sum_gx.iter().map(|s| (s / rows as f64) as f32).collect();
    // dx = k * (g - mean_g - (x - mean) * inv_std * mean_gx), with x - mean
    // taken first: folding the mean into one offset cancels badly where a
    // channel's mean is large against its spread.
    let k: Vec<f32> = gamma.iter().zip(&inv_std).map(|(g, s)| g * s).collect();
    let slope: Vec<f32> = (0..channels).map(|c| inv_std[c] * mean_gx[c]).collect();
    let span = BLOCK * channels;
    // SAFETY: as in `forward`, every value of every (whole) row is written.
    let dx = unsafe {
        written(x.len(), span, |block, dx| {
            let (x, dy) = (&x[block * span..][..dx.len()], &dy[block * span..][..dx.len()]);
            let (k, slope, mean, mean_g) = (&k[..channels], &slope[..channels], &mean[..channels], &mean_g[..channels]);
            let (scale, shift) = (&scale[..channels], &shift[..channels]);
            for ((dx, x), dy) in dx.chunks_exact_mut(channels).zip(x.chunks_exact(channels)).zip(dy.chunks_exact(channels)) {
                let lanes = dx.iter_mut().zip(x).zip(dy).zip(k).zip(slope).zip(mean).zip(mean_g).zip(scale.iter().zip(shift));
                for (((((((dx, &x), &dy), &k), &slope), &mean), &mean_g), (&scale, &shift)) in lanes {
                    dx.write(k * (cut(x, scale, shift, dy) - mean_g - (x - mean) * slope));
                }
            }
        })
    };
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
    /// A channel whose mean dwarfs its spread, its first row (the shift)
    /// far out in the tail: the one-pass moments agree with a two-pass
    /// reference in f64 to float precision.
    #[test]
    fn moments_keep_their_precision_where_the_mean_dwarfs_the_spread() {
        let rows = 5000;
        let x: Vec<f32> = (0..rows)
            .flat_map(|r| {
                let noise = values(1, r)[0];
                [if r == 0 { 100.5 } else { 100.0 + 0.1 * noise }, noise]
            })
            .collect();
        let (m, v) = moments(&x, 2);
        for c in 0..2 {
            let column: Vec<f64> = x.iter().skip(c).step_by(2).map(|v| *v as f64).collect();
            let mean = column.iter().sum::<f64>() / rows as f64;
            let var = column.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / rows as f64;
            assert!((m[c] as f64 - mean).abs() <= 1e-6 * mean.abs().max(1.0), "mean {} vs {mean}", m[c]);
            assert!((v[c] as f64 - var).abs() <= 1e-4 * var, "variance {} vs {var}", v[c]);
        }
    }

    /// The output pass runs in the widest lanes the CPU has
    /// ([`crate::isa::vectorised`]): each value is still `x * scale +
    /// shift` then the ReLU, as one value at a time computes it, bit for
    /// bit (no fused multiply-add), over whole 16-lane groups and a tail.
    #[test]
    fn output_pass_is_the_one_value_at_a_time_pass_bit_for_bit() {
        for channels in [32, 37] {
            let x = values(1500 * channels, 5);
            let (gamma, beta) = (values(channels, 6), values(channels, 7));
            let (m, v) = moments(&x, channels);
            for relu in [false, true] {
                let y = forward(&x, (&m, &v), &gamma, &beta, 1e-5, relu);
                let (scale, shift) = affine(&m, &v, &gamma, &beta, 1e-5);
                for (i, (y, x)) in y.iter().zip(&x).enumerate() {
                    let (s, t) = (std::hint::black_box(scale[i % channels]), shift[i % channels]);
                    let expected = if relu { (x * s + t).max(0.0) } else { x * s + t };
                    assert_eq!(y.to_bits(), expected.to_bits(), "value {i}, {channels} channels, relu {relu}, on {}", crate::isa::describe());
                }
            }
        }
    }

    #[test]
    fn backward_matches_finite_differences_with_and_without_relu() {
        let channels = 3;
        let x = values(2500 * channels, 7);
        let (gamma, beta) = (vec![0.5, 1.5, -1.0], vec![0.1, -0.2, 0.3]);
        // Not a copy of x (seeds below 256 give the same values): with dy = x
        // the true dx is about 0 and f32 rounding of the loss dominates.
        let dy = values(x.len(), 9 << 20);
        for relu in [false, true] {
            let (m, v) = moments(&x, channels);
            let y = forward(&x, (&m, &v), &gamma, &beta, 1e-5, relu);
            let (dx, dg, db) = backward(&x, &dy, (&m, &v), &gamma, &beta, 1e-5, relu);
            let h = 2e-2;
            let diff = |f: &dyn Fn(f32) -> f64| ((f(h) - f(-h)) / (2.0 * h as f64)) as f32;
            // Points away from the ReLU's kink, where differences are exact.
            let points = [0, 1, 4000, x.len() - 1].map(|i| (0..x.len()).map(|k| (i + k) % x.len()).find(|&j| y[j].abs() > 0.05).unwrap());
            for i in points {
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
