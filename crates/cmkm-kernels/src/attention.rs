//! Multi-head self-attention up to its output projection, as one
//! operation: `softmax(Q K^T / sqrt(d_k))`, dropout on those weights, times
//! `V`, for every head of every sample, with `Q`, `K` and `V` from one
//! product of the tokens with the three projections side by side.
//!
//! Composed from burn's operations this was three narrow products, a
//! reshape and a copy per projection, two batched products of 44 x 64
//! matrices, a softmax of five passes and a dropout, each with its own
//! backward operation: in a CMC step the attention and its backward took
//! about as long as the feed-forward's forward pass. Here the three
//! projections are one product (direct kernel, 384 columns), and each
//! sample's heads are worked through while their rows are in L1, every
//! inner loop a contiguous run of 8-lane fused multiply-adds.
//!
//! Samples are independent, each computed by one thread in a fixed order;
//! the weight gradients are one product over all tokens. Results do not
//! depend on the thread count.

use crate::direct;
use crate::mask::Mask;
use rayon::prelude::*;

/// Sizes of one attention: `batch x tokens` rows of width `d_model`,
/// split into `heads` heads of `d_model / heads` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AttentionShape {
    pub batch: usize,
    pub tokens: usize,
    pub d_model: usize,
    pub heads: usize,
}

impl AttentionShape {
    fn d_k(&self) -> usize {
        self.d_model / self.heads
    }
    /// All tokens of all samples.
    pub fn rows(&self) -> usize {
        self.batch * self.tokens
    }
    /// Attention weights per sample: one `tokens x tokens` map per head.
    fn weights_per_sample(&self) -> usize {
        self.heads * self.tokens * self.tokens
    }
}

/// What the forward pass keeps for the backward pass: the projections
/// `(rows, 3 d_model)` (each row `q | k | v`), the softmax weights and the
/// same after dropout (both `(batch, heads, tokens, tokens)`).
#[derive(Debug, Clone)]
pub struct Saved {
    pub qkv: Vec<f32>,
    pub weights: Vec<f32>,
    pub dropped: Vec<f32>,
}

/// The three `(d_model, d_model)` projections side by side, `(d_model,
/// 3 d_model)`, each row `wq | wk | wv`; and their biases the same way.
pub fn joined(parts: [&[f32]; 3], d: usize) -> Vec<f32> {
    let rows = parts[0].len() / d;
    (0..rows).flat_map(|r| parts.iter().flat_map(move |p| p[r * d..(r + 1) * d].iter().copied())).collect()
}

/// `x (rows, depth) @ m + bias`, `m` a `(depth, c_out)` matrix given with
/// its (row, column) strides: the direct kernel where it runs, else gemm.
fn linear(x: &[f32], depth: usize, m: (&[f32], usize, usize), c_out: usize, bias: &[f32]) -> Vec<f32> {
    let rows = x.len() / depth.max(1);
    if direct::available(&direct::pointwise(rows, depth, c_out)) {
        return direct::product(x, depth, m, c_out, bias);
    }
    let mut y = super::conv::product(rows, c_out, depth, (x, depth as isize, 1), (m.0, m.1 as isize, m.2 as isize), gemm::Parallelism::Rayon(0));
    y.par_chunks_mut(c_out).for_each(|row| row.iter_mut().zip(bias).for_each(|(y, b)| *y += b));
    y
}

/// The attention's output before the output projection, `(rows,
/// d_model)`, and what its backward pass needs. `w` is [`joined`]'s
/// projection matrix, `bias` its biases; `mask` the dropout on the
/// attention weights, element `i` of the flattened `(batch, heads, tokens,
/// tokens)` weights as burn's layout numbers them.
pub fn forward(x: &[f32], w: &[f32], bias: &[f32], s: &AttentionShape, mask: Mask) -> (Vec<f32>, Saved) {
    let d = s.d_model;
    let qkv = linear(x, d, (w, 3 * d, 1), 3 * d, bias);
    let per_sample = s.weights_per_sample();
    let (mut weights, mut dropped) = (vec![0.0; s.batch * per_sample], vec![0.0; s.batch * per_sample]);
    let mut context = vec![0.0; s.rows() * d];
    let fma = direct::cpu_supported();
    context.par_chunks_mut(s.tokens * d).zip(weights.par_chunks_mut(per_sample)).zip(dropped.par_chunks_mut(per_sample)).enumerate().for_each(
        |(b, ((context, weights), dropped))| {
            let qkv = &qkv[b * s.tokens * 3 * d..][..s.tokens * 3 * d];
            let sample = Sample { s, qkv, first: b * per_sample, mask };
            #[cfg(target_arch = "x86_64")]
            if fma {
                // SAFETY: the CPU has AVX2 and FMA (`direct::cpu_supported`).
                unsafe { forward_fma(&sample, weights, dropped, context) };
                return;
            }
            let _ = fma;
            sample.forward::<false>(weights, dropped, context);
        },
    );
    (context, Saved { qkv, weights, dropped })
}

/// Gradients of [`forward`] given the gradient `dc` of its output: the
/// input's (when `input_grad`), the joined projection matrix's and the
/// joined biases'.
pub fn backward(x: &[f32], w: &[f32], dc: &[f32], saved: &Saved, s: &AttentionShape, mask: Mask, input_grad: bool) -> (Option<Vec<f32>>, Vec<f32>, Vec<f32>) {
    let d = s.d_model;
    let per_sample = s.weights_per_sample();
    let mut dqkv = vec![0.0; s.rows() * 3 * d];
    let fma = direct::cpu_supported();
    dqkv.par_chunks_mut(s.tokens * 3 * d).enumerate().for_each(|(b, dqkv)| {
        let qkv = &saved.qkv[b * s.tokens * 3 * d..][..s.tokens * 3 * d];
        let (weights, dropped) = (&saved.weights[b * per_sample..][..per_sample], &saved.dropped[b * per_sample..][..per_sample]);
        let dc = &dc[b * s.tokens * d..][..s.tokens * d];
        let sample = Sample { s, qkv, first: b * per_sample, mask };
        #[cfg(target_arch = "x86_64")]
        if fma {
            // SAFETY: the CPU has AVX2 and FMA (`direct::cpu_supported`).
            unsafe { backward_fma(&sample, weights, dropped, dc, dqkv) };
            return;
        }
        let _ = fma;
        sample.backward::<false>(weights, dropped, dc, dqkv);
    });
    let dw = super::conv::product(d, 3 * d, s.rows(), (x, 1, d as isize), (&dqkv, 3 * d as isize, 1), gemm::Parallelism::Rayon(0));
    let db = super::feed_forward::bias_grad(&dqkv, 3 * d);
    let dx = input_grad.then(|| linear(&dqkv, 3 * d, (w, 1, 3 * d), d, &vec![0.0; d]));
    (dx, dw, db)
}

/// [`joined`] undone: the three `(rows, d)` parts of a `(rows, 3 d)` matrix.
pub fn split(m: &[f32], d: usize) -> [Vec<f32>; 3] {
    std::array::from_fn(|part| m.chunks_exact(3 * d).flat_map(|row| row[part * d..(part + 1) * d].iter().copied()).collect())
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn forward_fma(sample: &Sample, weights: &mut [f32], dropped: &mut [f32], context: &mut [f32]) {
    sample.forward::<true>(weights, dropped, context)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn backward_fma(sample: &Sample, weights: &[f32], dropped: &[f32], dc: &[f32], dqkv: &mut [f32]) {
    sample.backward::<true>(weights, dropped, dc, dqkv)
}

/// Values per vector lane group; every per-head matrix below has its
/// rows padded to a multiple of this, with zeros.
const LANES: usize = 8;

/// A row-major matrix of `rows` rows of `width` values, `width` padded
/// to whole lane groups (the padding zero unless said otherwise).
struct Padded {
    values: Vec<f32>,
    width: usize,
}

impl Padded {
    fn new(rows: usize, columns: usize) -> Self {
        let width = columns.next_multiple_of(LANES);
        Padded { values: vec![0.0; rows * width], width }
    }

    fn row(&self, r: usize) -> &[f32] {
        &self.values[r * self.width..(r + 1) * self.width]
    }

    fn row_mut(&mut self, r: usize) -> &mut [f32] {
        &mut self.values[r * self.width..(r + 1) * self.width]
    }

    /// Columns `at..at + n` of the first `rows` rows of a `(_, stride)`
    /// matrix, as they are (`transpose` false) or transposed.
    fn fill_from(&mut self, m: &[f32], stride: usize, at: usize, n: usize, rows: usize, transpose: bool) {
        for r in 0..rows {
            for (c, v) in m[r * stride + at..][..n].iter().enumerate() {
                match transpose {
                    false => self.values[r * self.width + c] = *v,
                    true => self.values[c * self.width + r] = *v,
                }
            }
        }
    }
}

/// `out (rows, out.width) = a (rows, depth) @ b (depth, b.width)`, the
/// first `depth` columns of `a`'s rows and rows of `b` taken; `out` and
/// `b` equally wide. Register tiles of 3 rows x 32 columns where the CPU
/// has FMA (`FMA`), each value's products added in depth order.
#[inline(always)]
fn product<const FMA: bool>(a: &Padded, rows: usize, depth: usize, b: &Padded, out: &mut Padded) {
    assert!(
        b.width == out.width
            && a.width >= depth
            && b.values.len() >= depth * b.width
            && a.values.len() >= rows * a.width
            && out.values.len() >= rows * out.width
    );
    #[cfg(target_arch = "x86_64")]
    if FMA {
        // SAFETY: FMA is true only where the CPU has AVX2 and FMA; every
        // row and column read or written lies inside the asserted lengths.
        unsafe { tiles::product(a.values.as_ptr(), a.width, rows, depth, b.values.as_ptr(), b.width, out.values.as_mut_ptr()) };
        return;
    }
    for r in 0..rows {
        let (a_row, o) = (&a.values[r * a.width..][..depth], &mut out.values[r * out.width..][..out.width]);
        o.fill(0.0);
        for (k, &v) in a_row.iter().enumerate() {
            o.iter_mut().zip(b.row(k)).for_each(|(o, b)| *o += v * b);
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod tiles {
    use super::LANES;
    use std::arch::x86_64::*;

    /// One tile: `R` rows x `V` lane groups, summed over `depth`.
    #[inline(always)]
    unsafe fn tile<const R: usize, const V: usize>(a: *const f32, a_width: usize, depth: usize, b: *const f32, width: usize, out: *mut f32) {
        let mut acc = [[_mm256_setzero_ps(); V]; R];
        for k in 0..depth {
            let row = b.add(k * width);
            let bv: [__m256; V] = std::array::from_fn(|v| _mm256_loadu_ps(row.add(v * LANES)));
            for (r, acc) in acc.iter_mut().enumerate() {
                let x = _mm256_broadcast_ss(&*a.add(r * a_width + k));
                for v in 0..V {
                    acc[v] = _mm256_fmadd_ps(x, bv[v], acc[v]);
                }
            }
        }
        for (r, acc) in acc.iter().enumerate() {
            for (v, acc) in acc.iter().enumerate() {
                _mm256_storeu_ps(out.add(r * width + v * LANES), *acc);
            }
        }
    }

    /// The tiles of `R` rows across all columns: 4 lane groups at a time,
    /// then what is left.
    #[inline(always)]
    unsafe fn strip<const R: usize>(a: *const f32, a_width: usize, depth: usize, b: *const f32, width: usize, out: *mut f32) {
        let mut c = 0;
        while c + 4 * LANES <= width {
            tile::<R, 4>(a, a_width, depth, b.add(c), width, out.add(c));
            c += 4 * LANES;
        }
        match (width - c) / LANES {
            3 => tile::<R, 3>(a, a_width, depth, b.add(c), width, out.add(c)),
            2 => tile::<R, 2>(a, a_width, depth, b.add(c), width, out.add(c)),
            1 => tile::<R, 1>(a, a_width, depth, b.add(c), width, out.add(c)),
            _ => {}
        }
    }

    /// See [`super::product`].
    #[target_feature(enable = "avx2,fma")]
    pub unsafe fn product(a: *const f32, a_width: usize, rows: usize, depth: usize, b: *const f32, width: usize, out: *mut f32) {
        let mut r = 0;
        while r + 3 <= rows {
            strip::<3>(a.add(r * a_width), a_width, depth, b, width, out.add(r * width));
            r += 3;
        }
        match rows - r {
            2 => strip::<2>(a.add(r * a_width), a_width, depth, b, width, out.add(r * width)),
            1 => strip::<1>(a.add(r * a_width), a_width, depth, b, width, out.add(r * width)),
            _ => {}
        }
    }
}

/// `softmax(row / root)`, as burn's softmax computes it (max subtracted).
#[inline(always)]
fn softmax_scaled(row: &mut [f32], root: f32) {
    let mut max = f32::NEG_INFINITY;
    for v in row.iter_mut() {
        *v /= root;
        max = max.max(*v);
    }
    let mut sum = 0.0;
    for v in row.iter_mut() {
        *v = (*v - max).exp();
        sum += *v;
    }
    row.iter_mut().for_each(|v| *v /= sum);
}

/// One sample's attention: its `(tokens, 3 d_model)` projections, and
/// where its weights start in the dropout mask's numbering.
struct Sample<'a> {
    s: &'a AttentionShape,
    qkv: &'a [f32],
    first: usize,
    mask: Mask,
}

impl Sample<'_> {
    /// A weight row (or its gradient) through the dropout mask.
    fn drop_out(&self, at: usize, row: &mut [f32]) {
        if self.mask.keep < 1.0 {
            let scale = self.mask.scale;
            self.mask.apply(self.first + at, row, |_, v, kept| *v = if kept { *v * scale } else { 0.0 });
        }
    }

    /// Head `h`'s query, key or value (`part` 0, 1, 2) columns, padded,
    /// as they are or transposed.
    fn head(&self, part: usize, h: usize, transpose: bool) -> Padded {
        let (t, d, dk) = (self.s.tokens, self.s.d_model, self.s.d_k());
        let mut m = if transpose { Padded::new(dk, t) } else { Padded::new(t.next_multiple_of(LANES), dk) };
        m.fill_from(self.qkv, 3 * d, part * d + h * dk, dk, t, transpose);
        m
    }

    #[inline(always)]
    fn forward<const FMA: bool>(&self, weights: &mut [f32], dropped: &mut [f32], context: &mut [f32]) {
        let (t, d, dk) = (self.s.tokens, self.s.d_model, self.s.d_k());
        let root = (dk as f32).sqrt();
        let (mut scores, mut kept, mut out) = (Padded::new(t, t), Padded::new(t, t), Padded::new(t, dk));
        for h in 0..self.s.heads {
            let (query, keys, values) = (self.head(0, h, false), self.head(1, h, true), self.head(2, h, false));
            product::<FMA>(&query, t, dk, &keys, &mut scores);
            for i in 0..t {
                let at = (h * t + i) * t;
                let row = &mut weights[at..at + t];
                row.copy_from_slice(&scores.row(i)[..t]);
                softmax_scaled(row, root);
                let k = &mut kept.row_mut(i)[..t];
                k.copy_from_slice(row);
                self.drop_out(at, k);
                dropped[at..at + t].copy_from_slice(k);
            }
            product::<FMA>(&kept, t, t, &values, &mut out);
            for i in 0..t {
                context[i * d + h * dk..][..dk].copy_from_slice(&out.row(i)[..dk]);
            }
        }
    }

    /// This sample's projection gradients into `dqkv`.
    #[inline(always)]
    fn backward<const FMA: bool>(&self, weights: &[f32], dropped: &[f32], dc: &[f32], dqkv: &mut [f32]) {
        let (t, d, dk) = (self.s.tokens, self.s.d_model, self.s.d_k());
        let root = (dk as f32).sqrt();
        let rows = t.next_multiple_of(LANES);
        let (mut g, mut dp, mut kept_t, mut ds_t) = (Padded::new(rows, dk), Padded::new(t, t), Padded::new(t, t), Padded::new(t, t));
        let mut out = Padded::new(t, dk);
        for h in 0..self.s.heads {
            let (query, keys, values_t) = (self.head(0, h, false), self.head(1, h, false), self.head(2, h, true));
            g.fill_from(dc, d, h * dk, dk, t, false);
            let map = &dropped[h * t * t..(h + 1) * t * t];
            kept_t.fill_from(map, t, 0, t, t, true);
            // Through `context = dropped V`: into V, and back to the weights.
            product::<FMA>(&kept_t, t, t, &g, &mut out);
            scatter(&out, t, dk, &mut dqkv[2 * d + h * dk..], 3 * d);
            product::<FMA>(&g, t, dk, &values_t, &mut dp);
            // Through dropout, softmax and the 1 / sqrt(d_k) scaling.
            for i in 0..t {
                let at = (h * t + i) * t;
                let row = &mut dp.row_mut(i)[..t];
                self.drop_out(at, row);
                let p = &weights[at..at + t];
                let flow: f32 = row.iter().zip(p).map(|(g, p)| g * p).sum();
                row.iter_mut().zip(p).for_each(|(g, p)| *g = p * (*g - flow) / root);
            }
            // Into Q (dS K) and K (dS^T Q).
            product::<FMA>(&dp, t, t, &keys, &mut out);
            scatter(&out, t, dk, &mut dqkv[h * dk..], 3 * d);
            ds_t.fill_from(&dp.values, dp.width, 0, t, t, true);
            product::<FMA>(&ds_t, t, t, &query, &mut out);
            scatter(&out, t, dk, &mut dqkv[d + h * dk..], 3 * d);
        }
    }
}

/// The first `n` columns of the first `rows` rows of `m` into the rows of
/// `dst`, `stride` apart.
fn scatter(m: &Padded, rows: usize, n: usize, dst: &mut [f32], stride: usize) {
    for r in 0..rows {
        dst[r * stride..][..n].copy_from_slice(&m.row(r)[..n]);
    }
}
