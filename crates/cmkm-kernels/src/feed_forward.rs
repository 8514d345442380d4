//! The Transformer's position-wise feed-forward block as one operation:
//! `y = dropout(relu(x W1 + b1)) W2 + b2` over all tokens `(N, d)`.
//!
//! Its hidden activation is the largest tensor of the inertial encoder
//! (`N x 2048`). Composed, it is written and read again by the bias, the
//! ReLU, the mask and its product, forwards and backwards; here the biases
//! ride in the products and ReLU with dropout is one in-place pass. The
//! backward pass needs only the hidden output `h`: the gradient flows where
//! `h > 0`, scaled as dropout scaled it.
//!
//! About half of `h` is zero, and its gradient is zero at the same places:
//! where [`sparse`] runs, the four products that broadcast `h` or its
//! gradient skip those zeros, found from `h`'s bit pattern (taken while
//! each block of `h` is in cache). Only `x W1` and the hidden gradient
//! `dy W2^T` stay dense.

use crate::direct;
use crate::mask::Mask;
use crate::norm::column_sums;
use crate::sparse::{self, Pattern};
use rayon::prelude::*;

/// Elements per parallel work block (the dropout mask's block, too).
const BLOCK: usize = 1 << 16;

/// Sizes of one block: `rows` tokens of width `d`, hidden width `hidden`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FeedForwardShape {
    pub rows: usize,
    pub d: usize,
    pub hidden: usize,
}

/// Row-major `dst (m, n) = [dst +] lhs (m, k) @ rhs (k, n)` on all threads.
fn gemm(m: usize, n: usize, k: usize, dst: &mut [f32], accumulate: bool, lhs: (&[f32], isize, isize), rhs: (&[f32], isize, isize)) {
    super::conv::gemm_with(m, n, k, dst, accumulate, lhs, rhs, gemm::Parallelism::Rayon(0));
}

/// `rows` copies of `bias`.
fn rows_of(bias: &[f32], rows: usize) -> Vec<f32> {
    let mut out = vec![0.0; rows * bias.len()];
    out.par_chunks_mut(bias.len() * 256).for_each(|block| block.chunks_exact_mut(bias.len()).for_each(|row| row.copy_from_slice(bias)));
    out
}

/// `lhs @ rhs` into a new buffer, on all threads.
fn product(m: usize, n: usize, k: usize, lhs: (&[f32], isize, isize), rhs: (&[f32], isize, isize)) -> Vec<f32> {
    super::conv::product(m, n, k, lhs, rhs, gemm::Parallelism::Rayon(0))
}

/// Whether the products onto `d` columns (the output, the input
/// gradient) run as [`direct`] tiles: faster than gemm where d is narrow.
fn narrow_products_direct(s: &FeedForwardShape) -> bool {
    direct::available(&direct::pointwise(s.rows, s.hidden, s.d))
}

/// Whether the products onto `hidden` columns (the hidden activation,
/// its gradient) run as [`direct::product_blocked`], their elementwise
/// passes fused in.
fn wide_products_direct(s: &FeedForwardShape) -> bool {
    direct::available(&direct::pointwise(s.rows, s.d, s.hidden))
}

/// ReLU and dropout on `rows` of the hidden layer starting at row `first`
/// (its bias already added when `bias` is `None`).
fn relu_dropout(rows: &mut [f32], first: usize, hidden: usize, bias: Option<&[f32]>, mask: Mask) {
    for (r, row) in rows.chunks_exact_mut(hidden).enumerate() {
        let at = (first + r) * hidden;
        match bias {
            Some(b1) => mask.apply(at, row, |j, v, kept| *v = if kept { (*v + b1[j]).max(0.0) * mask.scale } else { 0.0 }),
            None => mask.apply(at, row, |_, v, kept| *v = if kept { v.max(0.0) * mask.scale } else { 0.0 }),
        }
    }
}

/// Whether the products with `h` or its gradient as the broadcast factor
/// skip their zeros ([`sparse`]).
fn sparse_products(s: &FeedForwardShape) -> bool {
    sparse::available(s.d)
}

/// The hidden activation `h`, the output `y`, and where `h` is non-zero
/// when the backward pass will skip its zeros ([`sparse_products`]).
pub fn forward(x: &[f32], w1: &[f32], b1: &[f32], w2: &[f32], b2: &[f32], s: &FeedForwardShape, mask: Mask) -> (Vec<f32>, Vec<f32>, Option<Pattern>) {
    let (d, hidden) = (s.d as isize, s.hidden as isize);
    // Bias, ReLU and dropout in one pass over the product, and the
    // pattern of each block while it is in cache.
    let (h, pattern) = if wide_products_direct(s) {
        let mut pattern = sparse_products(s).then(|| Pattern::empty(s.rows, s.hidden));
        let shared = pattern.as_mut().map(Pattern::shared);
        let h = direct::product_blocked(x, s.d, (w1, s.hidden, 1), s.hidden, b1, |first, rows| {
            relu_dropout(rows, first, s.hidden, None, mask);
            if let Some(shared) = &shared {
                // SAFETY: the blocks are disjoint rows of `pattern`, which
                // outlives the product.
                unsafe { Pattern::set_rows(shared, first, rows) };
            }
        });
        (h, pattern)
    } else {
        let mut h = product(s.rows, s.hidden, s.d, (x, d, 1), (w1, hidden, 1));
        let rows_per_block = (BLOCK / s.hidden).max(1);
        h.par_chunks_mut(rows_per_block * s.hidden).enumerate().for_each(|(block, rows)| relu_dropout(rows, block * rows_per_block, s.hidden, Some(b1), mask));
        let pattern = sparse_products(s).then(|| Pattern::of(&h, s.hidden));
        (h, pattern)
    };
    // The narrow output product (d = 128 of 2048).
    let y = if let Some(pattern) = &pattern {
        sparse::rows_product(&h, pattern, w2, b2)
    } else if narrow_products_direct(s) {
        direct::product(&h, s.hidden, (w2, s.d, 1), s.d, b2)
    } else {
        let mut y = rows_of(b2, s.rows);
        gemm(s.rows, s.d, s.hidden, &mut y, true, (&h, hidden, 1), (w2, d, 1));
        y
    };
    (h, y, pattern)
}

/// Column sums of a `(rows, width)` matrix, as f32.
pub(super) fn bias_grad(g: &[f32], width: usize) -> Vec<f32> {
    let sums = column_sums(g.len() / width, width, |range, part| {
        for row in g[range.start * width..range.end * width].chunks_exact(width) {
            part.iter_mut().zip(row).for_each(|(p, v)| *p += v);
        }
    });
    sums.into_iter().map(|v| v as f32).collect()
}

/// Gradients of [`forward`] given `dy`: `x` (when `input_grad`), `W1`,
/// `b1`, `W2`, `b2`; `h` and its `pattern` are what [`forward`] returned.
#[allow(clippy::type_complexity)]
pub fn backward(
    x: &[f32],
    (h, pattern): (&[f32], Option<&Pattern>),
    (w1, w2): (&[f32], &[f32]),
    dy: &[f32],
    s: &FeedForwardShape,
    scale: f32,
    input_grad: bool,
) -> (Option<Vec<f32>>, Vec<f32>, Vec<f32>, Vec<f32>, Vec<f32>) {
    let (d, hidden) = (s.d as isize, s.hidden as isize);
    // The gradient dz is zero wherever h is, so h's pattern is its too.
    let columns = pattern.map(Pattern::transposed);
    let dw2 = match &columns {
        Some(columns) => sparse::columns_product(h, columns, dy, s.d),
        None => product(s.hidden, s.d, s.rows, (h, 1, hidden), (dy, d, 1)),
    };
    let (dz, db1) = hidden_grad(h, w2, dy, s, scale);
    let dw1 = match &columns {
        Some(columns) => sparse::transpose(&sparse::columns_product(&dz, columns, x, s.d), s.hidden, s.d),
        None => product(s.d, s.hidden, s.rows, (x, 1, d), (&dz, hidden, 1)),
    };
    let dx = input_grad.then(|| match pattern {
        Some(pattern) => sparse::rows_product(&dz, pattern, &sparse::transpose(w1, s.d, s.hidden), &vec![0.0; s.d]),
        None if narrow_products_direct(s) => direct::product(&dz, s.hidden, (w1, 1, s.hidden), s.d, &vec![0.0; s.d]),
        None => product(s.rows, s.d, s.hidden, (&dz, hidden, 1), (w1, 1, hidden)),
    });
    (dx, dw1, db1, dw2, bias_grad(dy, s.d))
}

/// The hidden layer's gradient `dz` (before ReLU and dropout) and b1's.
fn hidden_grad(h: &[f32], w2: &[f32], dy: &[f32], s: &FeedForwardShape, scale: f32) -> (Vec<f32>, Vec<f32>) {
    let d = s.d as isize;
    // The gradient flows where h > 0, scaled as dropout scaled it.
    let flow = |dz: &mut [f32], h: &[f32]| dz.iter_mut().zip(h).for_each(|(g, h)| *g = if *h > 0.0 { *g * scale } else { 0.0 });
    if wide_products_direct(s) {
        // b1's gradient, the column sums of dz, taken from each block while
        // it is in cache (a separate pass read all of dz again): per block
        // in f32, then in block order in f64.
        let blocks = std::sync::Mutex::new(Vec::new());
        let dz = direct::product_blocked(dy, s.d, (w2, 1, s.d), s.hidden, &vec![0.0; s.hidden], |first, rows| {
            flow(rows, &h[first * s.hidden..]);
            let mut sums = vec![0.0f32; s.hidden];
            for row in rows.chunks_exact(s.hidden) {
                sums.iter_mut().zip(row).for_each(|(s, g)| *s += g);
            }
            blocks.lock().expect("no block panics while holding the lock").push((first, sums));
        });
        let mut blocks = blocks.into_inner().expect("no block panicked");
        blocks.sort_by_key(|b| b.0);
        let mut db1 = vec![0.0f64; s.hidden];
        for (_, sums) in &blocks {
            db1.iter_mut().zip(sums).for_each(|(t, s)| *t += *s as f64);
        }
        (dz, db1.into_iter().map(|v| v as f32).collect())
    } else {
        let mut dz = product(s.rows, s.hidden, s.d, (dy, d, 1), (w2, 1, d));
        dz.par_chunks_mut(BLOCK).zip(h.par_chunks(BLOCK)).for_each(|(dz, h)| flow(dz, h));
        let db1 = bias_grad(&dz, s.hidden);
        (dz, db1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values(n: usize, seed: u32) -> Vec<f32> {
        (0..n).map(|i| (((i as u32).wrapping_mul(2654435761).wrapping_add(seed) >> 8) % 1000) as f32 / 500.0 - 1.0).collect()
    }

    /// Row by row, the definition.
    fn reference(x: &[f32], w1: &[f32], b1: &[f32], w2: &[f32], b2: &[f32], s: &FeedForwardShape, mask: Mask) -> Vec<f32> {
        let mut y = Vec::new();
        for r in 0..s.rows {
            let h: Vec<f32> = (0..s.hidden)
                .map(|j| {
                    let z = b1[j] + (0..s.d).map(|k| x[r * s.d + k] * w1[k * s.hidden + j]).sum::<f32>();
                    if mask.kept(r * s.hidden + j) {
                        z.max(0.0) * mask.scale
                    } else {
                        0.0
                    }
                })
                .collect();
            y.extend((0..s.d).map(|k| b2[k] + (0..s.hidden).map(|j| h[j] * w2[j * s.d + k]).sum::<f32>()));
        }
        y
    }

    /// For d = 4 (gemm), d = 16 (narrow products direct on AVX2 CPUs) and
    /// hidden = 32 too (wide ones direct, in blocks: 50 rows make two
    /// full blocks of 24 and a short one).
    #[test]
    fn forward_and_backward_match_the_definition_and_its_finite_differences() {
        for s in
            [FeedForwardShape { rows: 7, d: 4, hidden: 9 }, FeedForwardShape { rows: 7, d: 16, hidden: 9 }, FeedForwardShape { rows: 50, d: 16, hidden: 32 }]
        {
            let mask = Mask::new(11, 0.7);
            let (x, w1, b1) = (values(s.rows * s.d, 1), values(s.d * s.hidden, 2), values(s.hidden, 3));
            let (w2, b2, dy) = (values(s.hidden * s.d, 4), values(s.d, 5), values(s.rows * s.d, 6));
            let (h, y, pattern) = forward(&x, &w1, &b1, &w2, &b2, &s, mask);
            assert!(pattern.is_none());
            let expected = reference(&x, &w1, &b1, &w2, &b2, &s, mask);
            y.iter().zip(&expected).for_each(|(a, b)| assert!((a - b).abs() < 1e-4, "{a} vs {b}"));
            assert!(h.contains(&0.0) && h.iter().any(|&v| v > 0.0));
            let (dx, dw1, db1, dw2, db2) = backward(&x, (&h, None), (&w1, &w2), &dy, &s, mask.scale, true);
            let loss = |x: &[f32], w1: &[f32], b1: &[f32], w2: &[f32], b2: &[f32]| -> f64 {
                reference(x, w1, b1, w2, b2, &s, mask).iter().zip(&dy).map(|(y, g)| *y as f64 * *g as f64).sum()
            };
            let eps = 1e-3;
            let numeric = |v: &[f32], i: usize, f: &dyn Fn(&[f32]) -> f64| {
                let (mut up, mut down) = (v.to_vec(), v.to_vec());
                up[i] += eps;
                down[i] -= eps;
                ((f(&up) - f(&down)) / (2.0 * eps as f64)) as f32
            };
            let check = |analytic: f32, numeric: f32| assert!((analytic - numeric).abs() < 1e-2 * (1.0 + numeric.abs()), "{analytic} vs {numeric}");
            let dx = dx.unwrap();
            for i in [0, 13, s.rows * s.d - 1] {
                check(dx[i], numeric(&x, i, &|v| loss(v, &w1, &b1, &w2, &b2)));
            }
            for i in [0, 17, s.d * s.hidden - 1] {
                check(dw1[i], numeric(&w1, i, &|v| loss(&x, v, &b1, &w2, &b2)));
                check(dw2[i], numeric(&w2, i, &|v| loss(&x, &w1, &b1, v, &b2)));
            }
            for (i, &analytic) in db1.iter().enumerate() {
                check(analytic, numeric(&b1, i, &|v| loss(&x, &w1, v, &w2, &b2)));
            }
            check(db2[2], numeric(&b2, 2, &|v| loss(&x, &w1, &b1, &w2, v)));
        }
    }

    /// Where the products skip h's zeros (64 output columns on AVX2 CPUs):
    /// the output is the definition's and every gradient the dense
    /// products', for a hidden width in whole 16s (pattern taken block by
    /// block) and one that is not (pattern taken afterwards).
    #[test]
    fn products_that_skip_zeros_match_the_dense_ones() {
        for s in [FeedForwardShape { rows: 50, d: 64, hidden: 96 }, FeedForwardShape { rows: 70, d: 64, hidden: 100 }] {
            let mask = Mask::new(5, 0.8);
            let (x, w1, b1) = (values(s.rows * s.d, 1), values(s.d * s.hidden, 2), values(s.hidden, 3));
            let (w2, b2, dy) = (values(s.hidden * s.d, 4), values(s.d, 5), values(s.rows * s.d, 6));
            let (h, y, pattern) = forward(&x, &w1, &b1, &w2, &b2, &s, mask);
            let expected = reference(&x, &w1, &b1, &w2, &b2, &s, mask);
            y.iter().zip(&expected).for_each(|(a, b)| assert!((a - b).abs() < 1e-4 * (1.0 + b.abs()), "{a} vs {b}"));
            assert_eq!(sparse::available(s.d), crate::isa::avx2_fma(), "zeros are skipped exactly where the ISA allows");
            let Some(pattern) = pattern else {
                // The portable path: dense products, checked against the definition above.
                assert!(!sparse::available(s.d), "a pattern wherever the products can skip zeros");
                let dense = backward(&x, (&h, None), (&w1, &w2), &dy, &s, mask.scale, true);
                assert!(dense.0.is_some_and(|dx| dx.iter().all(|v| v.is_finite())));
                continue;
            };
            assert_eq!(pattern, Pattern::of(&h, s.hidden));
            assert!((0.2..0.6).contains(&pattern.density()), "density {}", pattern.density());
            let (dx, dw1, db1, dw2, db2) = backward(&x, (&h, Some(&pattern)), (&w1, &w2), &dy, &s, mask.scale, true);
            let dense = backward(&x, (&h, None), (&w1, &w2), &dy, &s, mask.scale, true);
            let close = |a: &[f32], b: &[f32]| a.iter().zip(b).all(|(a, b)| (a - b).abs() <= 1e-4 * (1.0 + b.abs()));
            assert!(close(&dx.unwrap(), &dense.0.unwrap()) && close(&dw1, &dense.1) && close(&dw2, &dense.3));
            assert_eq!((db1, db2), (dense.2, dense.4));
        }
    }
}
