//! A 1 x 1 convolution from a few input channels, batch norm (training
//! statistics) and ReLU as one operation: the co-occurrence streams' first
//! layer, `(B x T x J, 3)` -> `(B x T x J, 64)`.
//!
//! Composed, its 64-channel output is written by the convolution, read for
//! the statistics, read and written by the normalisation, and backwards
//! read and written three more times, for almost no arithmetic (16 MB per
//! stream at batch 64). Here the batch statistics come from the input's
//! mean and covariance (`mean_c = w_c . mu + b_c`, `var_c = w_c^T S w_c`),
//! the layer folds to `relu(A x + B)`, and the backward pass needs one read
//! of the output gradient: per channel the sums of `g` and `g x` give the
//! gradients of the weight, bias, gamma and beta (and of the input).

use rayon::prelude::*;

/// Rows per parallel block; partial sums are added in block order.
const BLOCK: usize = 2048;

/// Sizes: `rows` positions of `c_in` values, `c_out` output channels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PointShape {
    pub rows: usize,
    pub c_in: usize,
    pub c_out: usize,
}

/// The input's per-channel mean and (biased) covariance, in f64.
fn input_moments(x: &[f32], s: &PointShape) -> (Vec<f64>, Vec<f64>) {
    let k = s.c_in;
    let n = s.rows as f64;
    let sums: Vec<f64> = x
        .par_chunks(BLOCK * k)
        .map(|b| {
            b.chunks_exact(k).fold(vec![0.0; k], |mut a, r| {
                a.iter_mut().zip(r).for_each(|(a, v)| *a += *v as f64);
                a
            })
        })
        .collect::<Vec<_>>()
        .into_iter()
        .fold(vec![0.0; k], |mut t, b| {
            t.iter_mut().zip(b).for_each(|(t, b)| *t += b);
            t
        });
    let mu: Vec<f64> = sums.iter().map(|s| s / n).collect();
    let cov: Vec<f64> = x
        .par_chunks(BLOCK * k)
        .map(|b| {
            b.chunks_exact(k).fold(vec![0.0; k * k], |mut a, r| {
                for i in 0..k {
                    for j in 0..k {
                        a[i * k + j] += (r[i] as f64 - mu[i]) * (r[j] as f64 - mu[j]);
                    }
                }
                a
            })
        })
        .collect::<Vec<_>>()
        .into_iter()
        .fold(vec![0.0; k * k], |mut t, b| {
            t.iter_mut().zip(b).for_each(|(t, b)| *t += b);
            t
        });
    (mu, cov.into_iter().map(|c| c / n).collect())
}

/// The batch mean and biased variance of each output channel of the
/// convolution (weight `(C_out, C_in)`, bias `C_out`) over `x`.
pub fn moments(x: &[f32], w: &[f32], b: &[f32], s: &PointShape) -> (Vec<f32>, Vec<f32>) {
    let (mu, cov) = input_moments(x, s);
    let k = s.c_in;
    let mean = (0..s.c_out).map(|c| (b[c] as f64 + (0..k).map(|i| w[c * k + i] as f64 * mu[i]).sum::<f64>()) as f32).collect();
    let var = (0..s.c_out)
        .map(|c| {
            let wc = &w[c * k..(c + 1) * k];
            let v: f64 = (0..k).flat_map(|i| (0..k).map(move |j| (i, j))).map(|(i, j)| wc[i] as f64 * cov[i * k + j] * wc[j] as f64).sum();
            v.max(0.0) as f32
        })
        .collect();
    (mean, var)
}

/// The folded layer: `relu(A_c . x + B_c)` per output channel, `A` as
/// `(C_in, C_out)` (rows of output channels, so the channel loops run
/// over contiguous lanes) and `B` as f32, and `k_c = gamma_c / s_c`.
struct Folded {
    a: Vec<f32>,
    b: Vec<f32>,
    k: Vec<f32>,
    inv_std: Vec<f32>,
}

fn folded(w: &[f32], bias: &[f32], (mean, var): (&[f32], &[f32]), gamma: &[f32], beta: &[f32], epsilon: f64, s: &PointShape) -> Folded {
    let inv_std: Vec<f32> = var.iter().map(|v| (1.0 / (*v as f64 + epsilon).sqrt()) as f32).collect();
    let k: Vec<f32> = gamma.iter().zip(&inv_std).map(|(g, i)| g * i).collect();
    let a = (0..s.c_in * s.c_out).map(|e| k[e % s.c_out] * w[(e % s.c_out) * s.c_in + e / s.c_out]).collect();
    let b = (0..s.c_out).map(|c| k[c] * (bias[c] - mean[c]) + beta[c]).collect();
    Folded { a, b, k, inv_std }
}

/// `z = A . x + B` of one row, all channels, into `z`.
#[inline(always)]
fn affine(f: &Folded, x: &[f32], z: &mut [f32]) {
    z.copy_from_slice(&f.b);
    for (&v, a) in x.iter().zip(f.a.chunks_exact(z.len())) {
        z.iter_mut().zip(a).for_each(|(z, a)| *z += a * v);
    }
}

/// The layer's output `(rows, C_out)`.
#[allow(clippy::too_many_arguments)]
pub fn forward(x: &[f32], w: &[f32], bias: &[f32], stats: (&[f32], &[f32]), gamma: &[f32], beta: &[f32], epsilon: f64, s: &PointShape) -> Vec<f32> {
    let f = folded(w, bias, stats, gamma, beta, epsilon, s);
    let mut y = vec![0.0f32; s.rows * s.c_out];
    y.par_chunks_mut(BLOCK * s.c_out).zip(x.par_chunks(BLOCK * s.c_in)).for_each(|(y, x)| {
        #[cfg(target_arch = "x86_64")]
        if crate::isa::avx2() {
            // SAFETY: `isa::avx2` is true only on a CPU with AVX2.
            return unsafe { forward_block_avx2(&f, x, y) };
        }
        forward_block(&f, x, y);
    });
    y
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn forward_block_avx2(f: &Folded, x: &[f32], y: &mut [f32]) {
    forward_block(f, x, y)
}

#[inline(always)]
fn forward_block(f: &Folded, x: &[f32], y: &mut [f32]) {
    let c_in = f.a.len() / f.b.len();
    for (y, x) in y.chunks_exact_mut(f.b.len()).zip(x.chunks_exact(c_in)) {
        affine(f, x, y);
        y.iter_mut().for_each(|v| *v = v.max(0.0));
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn gradient_sums_avx2(f: &Folded, x: &[f32], dy: &[f32]) -> Vec<f64> {
    gradient_sums(f, x, dy)
}

/// A block's per-channel sums of `g` (the gradient where the ReLU passed)
/// and of `g x_i` (as `(C_in, C_out)`), each channel loop over contiguous
/// lanes with a select, not a branch (the ReLU's cut is a coin toss).
#[inline(always)]
fn gradient_sums(f: &Folded, x: &[f32], dy: &[f32]) -> Vec<f64> {
    let c = f.b.len();
    let c_in = f.a.len() / c;
    let mut total = vec![0.0f64; c * (1 + c_in)];
    let mut part = vec![0.0f32; c * (1 + c_in)];
    let mut z = vec![0.0f32; c];
    // f32 sums over runs of 64 rows, runs added in f64.
    for (dy, x) in dy.chunks(64 * c).zip(x.chunks(64 * c_in)) {
        part.fill(0.0);
        let (sum_g, sum_gx) = part.split_at_mut(c);
        for (dy, x) in dy.chunks_exact(c).zip(x.chunks_exact(c_in)) {
            affine(f, x, &mut z);
            z.iter_mut().zip(dy).for_each(|(z, g)| *z = if *z > 0.0 { *g } else { 0.0 });
            sum_g.iter_mut().zip(&z).for_each(|(s, g)| *s += g);
            for (&v, s) in x.iter().zip(sum_gx.chunks_exact_mut(c)) {
                s.iter_mut().zip(&z).for_each(|(s, g)| *s += g * v);
            }
        }
        total.iter_mut().zip(&part).for_each(|(t, p)| *t += *p as f64);
    }
    total
}

/// Gradients of [`forward`] (the statistics being functions of `w`, `b`
/// and `x`) given `dy`: the input's (when `input_grad`), the weight's,
/// the bias's, gamma's and beta's.
#[allow(clippy::too_many_arguments, clippy::type_complexity)]
pub fn backward(
    x: &[f32],
    dy: &[f32],
    w: &[f32],
    bias: &[f32],
    stats: (&[f32], &[f32]),
    gamma: &[f32],
    beta: &[f32],
    epsilon: f64,
    s: &PointShape,
    input_grad: bool,
) -> (Option<Vec<f32>>, Vec<f32>, Vec<f32>, Vec<f32>, Vec<f32>) {
    let f = folded(w, bias, stats, gamma, beta, epsilon, s);
    let (k_in, c) = (s.c_in, s.c_out);
    let (mu, cov) = input_moments(x, s);
    // Per channel: sum of g, sums of g x_i (g: dy where the ReLU passed).
    let width = c * (1 + k_in);
    let blocks: Vec<Vec<f64>> = dy
        .par_chunks(BLOCK * c)
        .zip(x.par_chunks(BLOCK * k_in))
        .map(|(dy, x)| {
            #[cfg(target_arch = "x86_64")]
            if crate::isa::avx2() {
                // SAFETY: `isa::avx2` is true only on a CPU with AVX2.
                return unsafe { gradient_sums_avx2(&f, x, dy) };
            }
            gradient_sums(&f, x, dy)
        })
        .collect();
    let sums = blocks.into_iter().fold(vec![0.0f64; width], |mut t, b| {
        t.iter_mut().zip(b).for_each(|(t, b)| *t += b);
        t
    });
    let n = s.rows as f64;
    let (sum_g, sum_gx_by_input) = sums.split_at(c);
    // (C_out, C_in), as the weight
    let sum_gx: Vec<f64> = (0..c * k_in).map(|e| sum_gx_by_input[(e % k_in) * c + e / k_in]).collect();
    let (mut dw, mut db, mut d_gamma) = (vec![0.0f32; c * k_in], vec![0.0f32; c], vec![0.0f32; c]);
    let (mut mean_g, mut mean_gxhat) = (vec![0.0f64; c], vec![0.0f64; c]);
    for ch in 0..c {
        let wc: Vec<f64> = w[ch * k_in..(ch + 1) * k_in].iter().map(|v| *v as f64).collect();
        let inv_std = f.inv_std[ch] as f64;
        // sum of g * xhat, xhat = w . (x - mu) * inv_std
        let s_gxhat: f64 = (0..k_in).map(|i| wc[i] * (sum_gx[ch * k_in + i] - mu[i] * sum_g[ch])).sum::<f64>() * inv_std;
        mean_g[ch] = sum_g[ch] / n;
        mean_gxhat[ch] = s_gxhat / n;
        d_gamma[ch] = s_gxhat as f32;
        let k = f.k[ch] as f64;
        // dW_c = k (sum g x - mean_g N mu - mean_gxhat N S w_c inv_std)
        for i in 0..k_in {
            let s_w: f64 = (0..k_in).map(|j| cov[i * k_in + j] * wc[j]).sum();
            dw[ch * k_in + i] = (k * (sum_gx[ch * k_in + i] - mean_g[ch] * n * mu[i] - mean_gxhat[ch] * n * s_w * inv_std)) as f32;
        }
        // db_c = k (sum g - N mean_g - mean_gxhat sum xhat), sum xhat = 0
        db[ch] = (k * (sum_g[ch] - n * mean_g[ch])) as f32;
    }
    let d_beta: Vec<f32> = sum_g.iter().map(|v| *v as f32).collect();
    let dx = input_grad.then(|| {
        let mut dx = vec![0.0f32; s.rows * k_in];
        let (mean_g, mean_gxhat): (Vec<f32>, Vec<f32>) = (mean_g.iter().map(|v| *v as f32).collect(), mean_gxhat.iter().map(|v| *v as f32).collect());
        let mean = stats.0;
        dx.par_chunks_mut(BLOCK * k_in).zip(dy.par_chunks(BLOCK * c)).zip(x.par_chunks(BLOCK * k_in)).for_each(|((dx, dy), x)| {
            let mut z = vec![0.0f32; c];
            for ((dx, g), x) in dx.chunks_exact_mut(k_in).zip(dy.chunks_exact(c)).zip(x.chunks_exact(k_in)) {
                affine(&f, x, &mut z);
                for ch in 0..c {
                    let conv = bias[ch] + (0..k_in).map(|i| w[ch * k_in + i] * x[i]).sum::<f32>();
                    let g = if z[ch] > 0.0 { g[ch] } else { 0.0 };
                    let xhat = (conv - mean[ch]) * f.inv_std[ch];
                    let dz = f.k[ch] * (g - mean_g[ch] - xhat * mean_gxhat[ch]);
                    for i in 0..k_in {
                        dx[i] += dz * w[ch * k_in + i];
                    }
                }
            }
        });
        dx
    });
    (dx, dw, db, d_gamma, d_beta)
}
