//! Valid, stride-1 convolution of channels-last `(B, H, W, C_in)` images
//! with a channels-first `(C_out, C_in, KH, KW)` weight, on plain slices.
//!
//! Samples are cut into a fixed number of chunks (set by the shape, never by
//! the thread count, so results do not depend on it). Each chunk builds its
//! own im2col block, small enough to stay in cache, and multiplies it with
//! one gemm call; the backward pass rebuilds the block instead of keeping
//! every layer's patches alive between the passes.

use crate::{chunks_of, direct, winograd};
use rayon::prelude::*;

/// Sizes of one convolution.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConvShape {
    pub batch: usize,
    pub height: usize,
    pub width: usize,
    pub c_in: usize,
    pub c_out: usize,
    pub kh: usize,
    pub kw: usize,
}

impl ConvShape {
    pub fn h_out(&self) -> usize {
        self.height + 1 - self.kh
    }
    pub fn w_out(&self) -> usize {
        self.width + 1 - self.kw
    }
    /// Output positions per sample (rows of its im2col block).
    fn positions(&self) -> usize {
        self.h_out() * self.w_out()
    }
    /// Length of one patch: KH x KW x C_in.
    fn depth(&self) -> usize {
        self.kh * self.kw * self.c_in
    }
    fn image(&self) -> usize {
        self.height * self.width * self.c_in
    }
    fn pointwise(&self) -> bool {
        self.kh == 1 && self.kw == 1
    }
    pub fn output_len(&self) -> usize {
        self.batch * self.positions() * self.c_out
    }
}

/// The weight as the `(KH x KW x C_in, C_out)` matrix that multiplies
/// patches in (row, column, channel) order.
fn weight_matrix(weight: &[f32], s: &ConvShape) -> Vec<f32> {
    let mut m = vec![0.0; s.depth() * s.c_out];
    for co in 0..s.c_out {
        for ci in 0..s.c_in {
            for i in 0..s.kh {
                for j in 0..s.kw {
                    m[((i * s.kw + j) * s.c_in + ci) * s.c_out + co] = weight[((co * s.c_in + ci) * s.kh + i) * s.kw + j];
                }
            }
        }
    }
    m
}

/// The inverse of [`weight_matrix`], for the weight gradient.
fn weight_from_matrix(m: &[f32], s: &ConvShape) -> Vec<f32> {
    let mut weight = vec![0.0; m.len()];
    for co in 0..s.c_out {
        for ci in 0..s.c_in {
            for i in 0..s.kh {
                for j in 0..s.kw {
                    weight[((co * s.c_in + ci) * s.kh + i) * s.kw + j] = m[((i * s.kw + j) * s.c_in + ci) * s.c_out + co];
                }
            }
        }
    }
    weight
}

/// im2col of `images` (whole samples): one row per output position, each
/// window row a contiguous copy of `KW x C_in` values. Built by appending,
/// so the block is written once (no zeroing first).
fn im2col(images: &[f32], s: &ConvShape) -> Vec<f32> {
    let (samples, run) = (images.len() / s.image(), s.kw * s.c_in);
    let mut out = Vec::with_capacity(samples * s.positions() * s.depth());
    for n in 0..samples {
        for y in 0..s.h_out() {
            for x in 0..s.w_out() {
                for i in 0..s.kh {
                    let start = n * s.image() + ((y + i) * s.width + x) * s.c_in;
                    out.extend_from_slice(&images[start..start + run]);
                }
            }
        }
    }
    out
}

/// Adds every patch row of `d_patches` back onto the window it came from.
fn col2im_add(d_patches: &[f32], s: &ConvShape, d_images: &mut [f32]) {
    let (w_out, depth, run) = (s.w_out(), s.depth(), s.kw * s.c_in);
    let positions = (0..d_images.len() / s.image()).flat_map(|n| (0..s.h_out()).flat_map(move |y| (0..w_out).map(move |x| (n, y, x))));
    for (row, (n, y, x)) in d_patches.chunks_exact(depth).zip(positions) {
        for i in 0..s.kh {
            let start = n * s.image() + ((y + i) * s.width + x) * s.c_in;
            for (d, g) in d_images[start..start + run].iter_mut().zip(&row[i * run..(i + 1) * run]) {
                *d += g;
            }
        }
    }
}

/// Row-major `dst (m, n) = [dst +] lhs (m, k) @ rhs (k, n)`, each operand
/// given as (values, row stride, column stride).
fn gemm(m: usize, n: usize, k: usize, dst: &mut [f32], accumulate: bool, lhs: (&[f32], isize, isize), rhs: (&[f32], isize, isize)) {
    gemm_with(m, n, k, dst, accumulate, lhs, rhs, gemm::Parallelism::None);
}

/// `lhs (m, k) @ rhs (k, n)` into a new row-major buffer, written once
/// (never zeroed first).
pub(super) fn product(m: usize, n: usize, k: usize, lhs: (&[f32], isize, isize), rhs: (&[f32], isize, isize), parallelism: gemm::Parallelism) -> Vec<f32> {
    if k == 0 {
        return vec![0.0; m * n];
    }
    assert!(lhs.0.len() >= m * k && rhs.0.len() >= k * n);
    let mut dst = Vec::with_capacity(m * n);
    // SAFETY: with `read_dst` false and k > 0, gemm writes every one of the
    // m x n elements (row stride n, column stride 1) without reading them;
    // only then is the length set. Operand strides as in `gemm_with`.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            dst.as_mut_ptr(),
            1,
            n as isize,
            false,
            lhs.0.as_ptr(),
            lhs.2,
            lhs.1,
            rhs.0.as_ptr(),
            rhs.2,
            rhs.1,
            1.0,
            1.0,
            false,
            false,
            false,
            parallelism,
        );
        dst.set_len(m * n);
    }
    dst
}

/// [`gemm`] with the given parallelism.
#[allow(clippy::too_many_arguments)]
pub(super) fn gemm_with(
    m: usize,
    n: usize,
    k: usize,
    dst: &mut [f32],
    accumulate: bool,
    lhs: (&[f32], isize, isize),
    rhs: (&[f32], isize, isize),
    parallelism: gemm::Parallelism,
) {
    assert!(dst.len() >= m * n && lhs.0.len() >= m * k && rhs.0.len() >= k * n);
    // SAFETY: the strides address only elements inside each slice: callers
    // pass the (rows, columns) strides of row-major or transposed row-major
    // matrices whose slices hold exactly m x k, k x n and m x n values.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            dst.as_mut_ptr(),
            1,
            n as isize,
            accumulate,
            lhs.0.as_ptr(),
            lhs.2,
            lhs.1,
            rhs.0.as_ptr(),
            rhs.2,
            rhs.1,
            1.0,
            1.0,
            false,
            false,
            false,
            parallelism,
        )
    }
}

/// Forward pass: `(B, H', W', C_out)` output of `x` (contiguous
/// channels-last) with `weight` (channels-first) and `bias`.
pub fn forward(x: &[f32], weight: &[f32], bias: &[f32], s: &ConvShape) -> Vec<f32> {
    forward_by(Lowering::best(s), x, weight, bias, s)
}

/// How a convolution becomes products: [`winograd`] tiles, [`direct`]
/// windows, or im2col blocks multiplied by gemm. All give the same values
/// up to rounding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lowering {
    Winograd,
    Direct,
    Im2col,
}

impl Lowering {
    /// Winograd, else direct, where this CPU and shape allow it.
    pub fn best(s: &ConvShape) -> Self {
        if winograd::available(s) {
            Lowering::Winograd
        } else if direct::available(s) {
            Lowering::Direct
        } else {
            Lowering::Im2col
        }
    }
}

/// [`forward`] by the given lowering (direct must be available).
pub fn forward_by(lowering: Lowering, x: &[f32], weight: &[f32], bias: &[f32], s: &ConvShape) -> Vec<f32> {
    match lowering {
        Lowering::Winograd => return winograd::forward(x, weight, bias, s),
        Lowering::Direct => return direct_forward(x, weight, bias, s),
        Lowering::Im2col => {}
    }
    let wm = weight_matrix(weight, s);
    let (per_sample, depth) = (s.positions() * s.c_out, s.depth());
    let mut out = vec![0.0; s.output_len()];
    let chunk = chunks_of(s.batch, s.positions() * depth);
    out.par_chunks_mut(chunk * per_sample).zip(x.par_chunks(chunk * s.image())).for_each(|(out, images)| {
        let rows = out.len() / s.c_out;
        for row in out.chunks_exact_mut(s.c_out) {
            row.copy_from_slice(bias);
        }
        let patches;
        let lhs = if s.pointwise() {
            images
        } else {
            patches = im2col(images, s);
            &patches
        };
        gemm(rows, s.c_out, depth, out, true, (lhs, depth as isize, 1), (&wm, s.c_out as isize, 1));
    });
    out
}

/// [`forward`] by [`direct`] convolution, in the same sample chunks.
fn direct_forward(x: &[f32], weight: &[f32], bias: &[f32], s: &ConvShape) -> Vec<f32> {
    let panels = direct::matrix_panels(&weight_matrix(weight, s), s.depth(), s.c_out, (s.c_out, 1));
    direct::forward_all(x, &panels, bias, s)
}

/// Gradients of [`forward`] given the output gradient `dy`: the input's
/// (when `input_grad`), the weight's (channels-first) and the bias's.
pub fn backward(x: &[f32], weight: &[f32], dy: &[f32], s: &ConvShape, input_grad: bool) -> (Option<Vec<f32>>, Vec<f32>, Vec<f32>) {
    backward_by(Lowering::best(s), x, weight, dy, s, input_grad)
}

/// [`backward`] by the given lowering. Direct, the input gradient is
/// direct too where [`direct::input_grad_available`], else (and by
/// im2col) a gemm product spread back by col2im.
pub fn backward_by(lowering: Lowering, x: &[f32], weight: &[f32], dy: &[f32], s: &ConvShape, input_grad: bool) -> (Option<Vec<f32>>, Vec<f32>, Vec<f32>) {
    if lowering == Lowering::Winograd {
        return winograd::backward(x, weight, dy, s, input_grad);
    }
    let wm = weight_matrix(weight, s);
    let (per_sample, depth, c_out) = (s.positions() * s.c_out, s.depth(), s.c_out);
    let chunk = chunks_of(s.batch, s.positions() * depth);
    let mut dx = input_grad.then(|| vec![0.0f32; s.batch * s.image()]);
    // One (weight, bias) gradient per chunk, summed in chunk order below.
    let windows = (lowering == Lowering::Direct).then(|| direct::Windows::new(s));
    let direct_input = (input_grad && windows.is_some() && direct::input_grad_available(s)).then(|| direct::InputGradPanels::new(&wm, s));
    let work = |images: &[f32], dy: &[f32], dx: Option<&mut [f32]>| {
        let rows = dy.len() / c_out;
        let dw = match &windows {
            Some(windows) => direct::weight_grad(images, windows, dy, s),
            None => {
                let patches = (!s.pointwise()).then(|| im2col(images, s));
                let lhs = patches.as_deref().unwrap_or(images);
                product(depth, c_out, rows, (lhs, 1, depth as isize), (dy, c_out as isize, 1), gemm::Parallelism::None)
            }
        };
        let db = bias_grad(dy, c_out);
        if let Some(dx) = dx {
            if let (Some(windows), Some(weights)) = (&windows, &direct_input) {
                direct::input_grad(dy, windows, weights, s, dx);
            } else if s.pointwise() {
                gemm(rows, depth, c_out, dx, false, (dy, c_out as isize, 1), (&wm, 1, c_out as isize));
            } else {
                let dp = product(rows, depth, c_out, (dy, c_out as isize, 1), (&wm, 1, c_out as isize), gemm::Parallelism::None);
                col2im_add(&dp, s, dx);
            }
        }
        (dw, db)
    };
    let partial: Vec<(Vec<f32>, Vec<f32>)> = match dx.as_mut() {
        Some(dx) => x
            .par_chunks(chunk * s.image())
            .zip(dy.par_chunks(chunk * per_sample))
            .zip(dx.par_chunks_mut(chunk * s.image()))
            .map(|((images, dy), dx)| work(images, dy, Some(dx)))
            .collect(),
        None => x.par_chunks(chunk * s.image()).zip(dy.par_chunks(chunk * per_sample)).map(|(images, dy)| work(images, dy, None)).collect(),
    };
    let (mut dwm, mut db) = (vec![0.0f32; depth * c_out], vec![0.0f32; c_out]);
    for (dw_c, db_c) in &partial {
        dwm.iter_mut().zip(dw_c).for_each(|(a, b)| *a += b);
        db.iter_mut().zip(db_c).for_each(|(a, b)| *a += b);
    }
    (dx, weight_from_matrix(&dwm, s), db)
}

/// The bias gradient of the output gradient rows `dy`: their column sums,
/// row by row in order (one chunk's share; chunks are summed in order).
pub(super) fn bias_grad(dy: &[f32], c_out: usize) -> Vec<f32> {
    let mut db = vec![0.0f32; c_out];
    for row in dy.chunks_exact(c_out) {
        db.iter_mut().zip(row).for_each(|(b, g)| *b += g);
    }
    db
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Direct nested-loop convolution, the definition.
    fn reference(x: &[f32], w: &[f32], b: &[f32], s: &ConvShape) -> Vec<f32> {
        let mut y = Vec::new();
        for n in 0..s.batch {
            for oy in 0..s.h_out() {
                for ox in 0..s.w_out() {
                    for co in 0..s.c_out {
                        let mut acc = b[co];
                        for ci in 0..s.c_in {
                            for i in 0..s.kh {
                                for j in 0..s.kw {
                                    acc += x[((n * s.height + oy + i) * s.width + ox + j) * s.c_in + ci] * w[((co * s.c_in + ci) * s.kh + i) * s.kw + j];
                                }
                            }
                        }
                        y.push(acc);
                    }
                }
            }
        }
        y
    }

    fn values(n: usize, seed: u32) -> Vec<f32> {
        (0..n).map(|i| (((i as u32).wrapping_mul(2654435761).wrapping_add(seed) >> 8) % 1000) as f32 / 500.0 - 1.0).collect()
    }

    fn close(a: &[f32], b: &[f32]) {
        assert_eq!(a.len(), b.len());
        for (x, y) in a.iter().zip(b) {
            assert!((x - y).abs() <= 1e-4 * (1.0 + y.abs()), "{x} vs {y}");
        }
    }

    /// im2col + gemm shapes, then direct ones (outputs a multiple of 16
    /// channels; positions and patch lengths that are and are not
    /// multiples of the six-row tile), the last three with direct input
    /// gradients (kernel-row runs of 32 values; of 60: groups of 16 at 0,
    /// 16, 32 and 44, the last overlapping the one before; and of 480,
    /// in panels of 1440 patch elements, deeper than L1 holds). The last
    /// two run by Winograd too: a single output row, and an odd output
    /// height and width (tiles over both edges).
    const SHAPES: [ConvShape; 9] = [
        ConvShape { batch: 5, height: 6, width: 7, c_in: 3, c_out: 4, kh: 3, kw: 2 },
        ConvShape { batch: 3, height: 4, width: 5, c_in: 6, c_out: 2, kh: 1, kw: 1 },
        ConvShape { batch: 3, height: 7, width: 6, c_in: 5, c_out: 32, kh: 3, kw: 1 },
        ConvShape { batch: 2, height: 6, width: 5, c_in: 3, c_out: 16, kh: 2, kw: 2 },
        ConvShape { batch: 2, height: 3, width: 4, c_in: 3, c_out: 16, kh: 1, kw: 1 },
        ConvShape { batch: 3, height: 4, width: 9, c_in: 16, c_out: 32, kh: 2, kw: 2 },
        ConvShape { batch: 2, height: 5, width: 6, c_in: 20, c_out: 16, kh: 3, kw: 3 },
        ConvShape { batch: 8, height: 3, width: 4, c_in: 160, c_out: 48, kh: 3, kw: 3 },
        ConvShape { batch: 3, height: 9, width: 9, c_in: 32, c_out: 32, kh: 3, kw: 3 },
    ];

    /// The direct shapes above do take the direct path wherever the CPU
    /// allows it (so the tests below cover it on CI's x86-64 machines).
    #[test]
    fn outputs_of_sixteen_channels_take_the_direct_path_on_avx2_cpus() {
        let cpu = crate::isa::avx2_fma();
        for s in SHAPES {
            assert_eq!(direct::available(&s), cpu && s.c_out % 16 == 0, "{s:?}");
            assert_eq!(direct::input_grad_available(&s), cpu && s.c_in >= 16, "{s:?}");
        }
    }

    #[test]
    fn forward_is_the_direct_convolution() {
        for s in SHAPES {
            let (x, w, b) = (values(s.batch * s.image(), 1), values(s.c_out * s.depth(), 2), values(s.c_out, 3));
            let expected = reference(&x, &w, &b, &s);
            close(&forward(&x, &w, &b, &s), &expected);
            close(&forward_by(Lowering::Im2col, &x, &w, &b, &s), &expected);
            if direct::available(&s) {
                close(&forward_by(Lowering::Direct, &x, &w, &b, &s), &expected);
            }
        }
    }

    #[test]
    fn every_lowering_gives_the_same_gradients() {
        for s in SHAPES.into_iter().filter(direct::available) {
            let (x, w, dy) = (values(s.batch * s.image(), 1), values(s.c_out * s.depth(), 2), values(s.output_len(), 4));
            let im2col = backward_by(Lowering::Im2col, &x, &w, &dy, &s, true);
            let others = [Lowering::Direct, Lowering::Winograd].into_iter().filter(|&l| l != Lowering::Winograd || winograd::available(&s));
            for lowering in others {
                let (dx, dw, db) = backward_by(lowering, &x, &w, &dy, &s, true);
                close(&dw, &im2col.1);
                close(&dx.unwrap(), im2col.0.as_ref().unwrap());
                close(&db, &im2col.2);
                assert!(backward_by(lowering, &x, &w, &dy, &s, false).0.is_none());
            }
        }
    }

    /// 3 x 3 kernels on whole groups of 16 input channels take the
    /// Winograd path where direct runs (the 20-channel shape does not).
    #[test]
    fn three_by_three_kernels_on_sixteens_of_channels_take_winograd() {
        for s in SHAPES {
            let expected = s.kh == 3 && s.kw == 3 && s.c_in % 16 == 0 && direct::available(&s);
            assert_eq!(Lowering::best(&s) == Lowering::Winograd, expected, "{s:?}");
        }
    }

    /// The gradients are those of `sum(dy * forward(x))`, a linear function
    /// of each argument: compared with finite differences, exact for it.
    #[test]
    fn backward_is_the_gradient_of_the_forward_pass() {
        for s in SHAPES {
            let (x, w, b) = (values(s.batch * s.image(), 1), values(s.c_out * s.depth(), 2), values(s.c_out, 3));
            let dy = values(s.output_len(), 4);
            let loss = |x: &[f32], w: &[f32], b: &[f32]| -> f64 { reference(x, w, b, &s).iter().zip(&dy).map(|(y, g)| (*y as f64) * (*g as f64)).sum() };
            let (dx, dw, db) = backward(&x, &w, &dy, &s, true);
            let base = loss(&x, &w, &b);
            let probe = |v: &[f32], i: usize, f: &dyn Fn(&[f32]) -> f64| {
                let mut v = v.to_vec();
                v[i] += 1.0;
                (f(&v) - base) as f32
            };
            for i in [0, x.len() / 2, x.len() - 1] {
                close(&[dx.as_ref().unwrap()[i]], &[probe(&x, i, &|v| loss(v, &w, &b))]);
            }
            for i in [0, w.len() / 3, w.len() - 1] {
                close(&[dw[i]], &[probe(&w, i, &|v| loss(&x, v, &b))]);
            }
            close(&[db[1]], &[probe(&b, 1, &|v| loss(&x, &w, v))]);
            assert!(backward(&x, &w, &dy, &s, false).0.is_none());
        }
    }
}
