//! Max-pooling of channels-last `(B, H, W, C)` images over non-overlapping
//! `KH x KW` windows (stride = kernel, no padding, floor mode), remembering
//! which input won each window so the backward pass is a scatter.

use rayon::prelude::*;
use std::mem::MaybeUninit;

/// Sizes of one pooling.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolShape {
    pub batch: usize,
    pub height: usize,
    pub width: usize,
    pub channels: usize,
    pub kh: usize,
    pub kw: usize,
}

impl PoolShape {
    pub fn h_out(&self) -> usize {
        self.height / self.kh
    }
    pub fn w_out(&self) -> usize {
        self.width / self.kw
    }
    fn image(&self) -> usize {
        self.height * self.width * self.channels
    }
    fn pooled(&self) -> usize {
        self.h_out() * self.w_out() * self.channels
    }
    /// Where window element `i * KW + j` of output `(oy, ox)` starts in
    /// its sample (channel 0).
    fn input_at(&self, oy: usize, ox: usize, element: usize) -> usize {
        let (i, j) = (element / self.kw, element % self.kw);
        ((oy * self.kh + i) * self.width + ox * self.kw + j) * self.channels
    }
}

/// `if take { a } else { b }` by bit masks: x86 compilers turn a select
/// in a scalar loop into a branch, and with real activations the window's
/// winner is a coin toss.
#[inline(always)]
fn pick(take: bool, a: u32, b: u32) -> u32 {
    let mask = (take as u32).wrapping_neg();
    (a & mask) | (b & !mask)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn forward_sample_avx2(x: &[f32], y: &mut [f32], winner: &mut [u16], s: &PoolShape) {
    forward_sample(x, y, winner, s)
}

/// One sample's windows. Winners are kept as 32-bit lanes while a window
/// is searched, so that the channel loop holds one lane width and
/// vectorises (selects, not branches: with 16-bit winners it ran scalar
/// and, on real activations, mispredicted; in a CMC step that took four
/// times what the benchmark's regular data gave).
#[inline(always)]
fn forward_sample(x: &[f32], y: &mut [f32], winner: &mut [u16], s: &PoolShape) {
    let c = s.channels;
    let mut which = vec![0u32; c];
    for (o, (y, winner)) in y.chunks_exact_mut(c).zip(winner.chunks_exact_mut(c)).enumerate() {
        let (oy, ox) = (o / s.w_out(), o % s.w_out());
        let first = s.input_at(oy, ox, 0);
        y.copy_from_slice(&x[first..first + c]);
        which.fill(0);
        for element in 1..s.kh * s.kw {
            let at = s.input_at(oy, ox, element);
            for ((y, w), v) in y.iter_mut().zip(which.iter_mut()).zip(&x[at..at + c]) {
                let better = *v > *y;
                *y = if better { *v } else { *y };
                *w = if better { element as u32 } else { *w };
            }
        }
        winner.iter_mut().zip(&which).for_each(|(o, w)| *o = *w as u16);
    }
}

/// The pooled images and, for every output value, which element of its
/// window (`i * KW + j`) it came from; the first maximum wins ties. A
/// window element, not an input index: two bytes written per value, and
/// no index arithmetic in the channel loop.
pub fn forward(x: &[f32], s: &PoolShape) -> (Vec<f32>, Vec<u16>) {
    assert!(s.kh * s.kw <= usize::from(u16::MAX), "pooling windows of {} x {} are too large", s.kh, s.kw);
    let (mut y, mut winner) = (vec![0.0; s.batch * s.pooled()], vec![0u16; s.batch * s.pooled()]);
    y.par_chunks_mut(s.pooled()).zip(winner.par_chunks_mut(s.pooled())).zip(x.par_chunks(s.image())).for_each(|((y, winner), x)| {
        #[cfg(target_arch = "x86_64")]
        if crate::isa::avx2() {
            // SAFETY: `isa::avx2` is true only on a CPU with AVX2.
            unsafe { forward_sample_avx2(x, y, winner, s) };
            return;
        }
        forward_sample(x, y, winner, s);
    });
    (y, winner)
}

/// The input gradient: each output gradient goes to its window's winner,
/// every other input (and the rows and columns no window covers) gets 0;
/// each window element written once, by masks (see [`pick`]).
pub fn backward(dy: &[f32], winner: &[u16], s: &PoolShape) -> Vec<f32> {
    // SAFETY: `backward_sample` writes every value of its sample (each
    // window element once, the rows and columns no window covers with 0).
    unsafe {
        crate::written(s.batch * s.image(), s.image(), |n, dx| {
            let (dy, winner) = (&dy[n * s.pooled()..][..s.pooled()], &winner[n * s.pooled()..][..s.pooled()]);
            #[cfg(target_arch = "x86_64")]
            if crate::isa::avx2() {
                // SAFETY: `isa::avx2` is true only on a CPU with AVX2.
                return backward_sample_avx2(dy, winner, s, dx);
            }
            backward_sample(dy, winner, s, dx);
        })
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn backward_sample_avx2(dy: &[f32], winner: &[u16], s: &PoolShape, dx: &mut [MaybeUninit<f32>]) {
    backward_sample(dy, winner, s, dx)
}

/// One sample's input gradient, every value written once: each window
/// element its gradient or 0 (by masks, see [`pick`]), the remainder rows
/// and columns that no window covers 0. No zeroed buffer first: that was
/// a pass over every pooled activation's gradient.
#[inline(always)]
fn backward_sample(dy: &[f32], winner: &[u16], s: &PoolShape, dx: &mut [MaybeUninit<f32>]) {
    let c = s.channels;
    let (covered_h, covered_w) = (s.h_out() * s.kh, s.w_out() * s.kw);
    for (r, row) in dx.chunks_exact_mut(s.width * c).enumerate() {
        let uncovered = if r < covered_h { &mut row[covered_w * c..] } else { row };
        uncovered.iter_mut().for_each(|v| _ = v.write(0.0));
    }
    for (o, (dy, winner)) in dy.chunks_exact(c).zip(winner.chunks_exact(c)).enumerate() {
        let (oy, ox) = (o / s.w_out(), o % s.w_out());
        for element in 0..s.kh * s.kw {
            let at = s.input_at(oy, ox, element);
            for ((dx, g), &w) in dx[at..at + c].iter_mut().zip(dy).zip(winner) {
                dx.write(f32::from_bits(pick(u32::from(w) == element as u32, g.to_bits(), 0)));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pools_windows_drops_the_remainder_and_routes_gradients_to_the_maxima() {
        // One sample, 3 x 5 x 2 channels, 2 x 2 windows: rows 0-1, columns 0-3.
        let s = PoolShape { batch: 1, height: 3, width: 5, channels: 2, kh: 2, kw: 2 };
        let x: Vec<f32> = (0..30).map(|i| ((i * 7) % 11) as f32).collect();
        let (y, winner) = forward(&x, &s);
        let at = |h: usize, w: usize, c: usize| x[(h * 5 + w) * 2 + c];
        let mut expected = Vec::new();
        for ox in 0..2 {
            for c in 0..2 {
                expected.push([at(0, 2 * ox, c), at(0, 2 * ox + 1, c), at(1, 2 * ox, c), at(1, 2 * ox + 1, c)].into_iter().fold(f32::MIN, f32::max));
            }
        }
        assert_eq!(y, expected);
        let dx = backward(&[1.0, 2.0, 3.0, 4.0], &winner, &s);
        assert_eq!(dx.iter().sum::<f32>(), 10.0);
        // Every other input, the uncovered last row and column included, is 0.
        assert_eq!(dx.iter().filter(|&&g| g != 0.0).count(), 4);
        for (k, &w) in winner.iter().enumerate() {
            let (i, j, ox, c) = (usize::from(w) / 2, usize::from(w) % 2, k / 2, k % 2);
            let input = (i * 5 + 2 * ox + j) * 2 + c;
            assert_eq!(x[input], y[k]);
            assert_eq!(dx[input], (k + 1) as f32);
        }
    }
}
